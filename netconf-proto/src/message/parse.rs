//! Envelope parsing.
//!
//! The envelope is tokenized with quick-xml. A payload that ends the message (a reply's
//! `<data>`, an rpc's operation, a notification's content) is located from the *end* of the
//! message instead: a well-formed message ends with the root's end tag, so if the bytes
//! before `</rpc-reply>` are `</data>`, the payload is everything between `<data ...>` and
//! there. That is O(1) however large the payload. When the tail does not have that shape
//! (a comment after `</data>`, a sibling element), the parser falls back to skipping the
//! element with the tokenizer, which is linear and still copies nothing. The payload's
//! own well-formedness is left to the caller's XML parser; the whole message is always
//! checked to be UTF-8.

use std::sync::Arc;

use bytes::Bytes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, QName, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::payload::{NamespaceBinding, XmlPayload};
use super::rpc_error::{ErrorMessage, ErrorSeverity, ErrorTag, ErrorType, RpcError};
use super::{Hello, Message, Notification, OperationName, ReplyContent, Request, RpcReply};
use crate::capabilities::Capabilities;
use crate::xml::{resolve_reference, NS_BASE, NS_NOTIFICATION};

/// Why a message could not be parsed. The session adds the message's stream offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    InvalidUtf8 {
        error_offset: usize,
    },
    Doctype,
    Malformed(String),
    Unexpected {
        element: String,
        namespace: String,
    },
    BadSessionId(String),
    /// An `<rpc>` without message-id: a server answers it with `missing-attribute`.
    MissingRpcMessageId,
    TooManyCapabilities {
        limit: usize,
    },
}

/// Limits the parser enforces on what the peer sends.
#[derive(Debug, Clone)]
pub(crate) struct ParseLimits {
    pub max_capabilities: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_capabilities: crate::config::DEFAULT_MAX_CAPABILITIES,
        }
    }
}

/// In-scope namespace declarations accepted at once. quick-xml's default (128) refuses
/// devices that declare every module's namespace on `<data>`; resolving a prefix scans the
/// bindings, so the limit also bounds the cost of each resolved envelope element.
const MAX_NAMESPACE_BINDINGS: usize = 4096;

type Result<T> = std::result::Result<T, ParseError>;

fn malformed(what: impl Into<String>) -> ParseError {
    ParseError::Malformed(what.into())
}

/// Parses one complete message.
pub(crate) fn parse_message(message: Bytes, limits: &ParseLimits) -> Result<Message> {
    let text = std::str::from_utf8(&message).map_err(|e| ParseError::InvalidUtf8 {
        error_offset: e.valid_up_to(),
    })?;
    let mut p = Parser {
        text,
        message: &message,
        reader: NsReader::from_str(text),
        limits,
        scope: None,
        declares: Vec::new(),
        generation: 0,
    };
    p.reader.config_mut().check_end_names = true;
    p.reader
        .resolver_mut()
        .set_max_namespace_bindings(MAX_NAMESPACE_BINDINGS);
    let (root, empty) = p.root()?;
    let (ns, name) = p.resolve(&root)?;
    let root_qname = root.name().0.to_owned();
    let msg = match (ns.as_str(), name.as_str()) {
        (NS_BASE, "hello") if !empty => Message::Hello(p.hello()?),
        (NS_BASE, "rpc") => Message::Rpc(p.rpc(&root, &root_qname, empty)?),
        (NS_BASE, "rpc-reply") => Message::RpcReply(p.rpc_reply(&root, &root_qname, empty)?),
        (NS_NOTIFICATION, "notification") if !empty => {
            Message::Notification(p.notification(&root_qname)?)
        }
        (NS_BASE, "hello") | (NS_NOTIFICATION, "notification") => {
            return Err(malformed(format!("<{name}> must not be empty")))
        }
        _ => {
            return Err(ParseError::Unexpected {
                element: name,
                namespace: ns,
            })
        }
    };
    Ok(msg)
}

struct Parser<'a> {
    text: &'a str,
    message: &'a Bytes,
    reader: NsReader<&'a [u8]>,
    limits: &'a ParseLimits,
    /// The last snapshot of in-scope namespace declarations and the `generation` it was
    /// taken at, shared by every payload taken in the same scope (20,000 `<error-info>`s
    /// under one `<rpc-reply>` share one).
    scope: Option<(u64, Arc<[NamespaceBinding]>)>,
    /// For each element open now, whether it declared namespaces.
    declares: Vec<bool>,
    /// Changes whenever the in-scope declarations may have: an element that declares
    /// namespaces was opened or closed. Taking a snapshot costs quick-xml's binding
    /// iteration (quadratic in the declarations), so it is taken again only then.
    generation: u64,
}

impl<'a> Parser<'a> {
    fn pos(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn next(&mut self) -> Result<Event<'a>> {
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(ParseError::Doctype),
            Ok(ev) => {
                match &ev {
                    Event::Start(s) => {
                        let declares = declares_namespaces(s);
                        self.generation += u64::from(declares);
                        self.declares.push(declares);
                    }
                    Event::Empty(s) => self.generation += 2 * u64::from(declares_namespaces(s)),
                    Event::End(_) => {
                        self.generation += u64::from(self.declares.pop().unwrap_or(true));
                    }
                    _ => {}
                }
                Ok(ev)
            }
            Err(e) => Err(malformed(format!(
                "{e} (at byte {} of the message)",
                self.reader.error_position()
            ))),
        }
    }

    /// The element's namespace and local name.
    fn resolve(&self, start: &BytesStart<'_>) -> Result<(String, String)> {
        let (ns, local) = self.reader.resolver().resolve_element(start.name());
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.0.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(malformed(format!(
                    "undeclared namespace prefix {prefix:?} on <{}>",
                    start.name().0
                )))
            }
        };
        Ok((ns, local.into_inner().to_owned()))
    }

    /// Skips the prolog (declaration, comments, PIs, whitespace) and returns the root start tag.
    fn root(&mut self) -> Result<(BytesStart<'a>, bool)> {
        loop {
            match self.next()? {
                Event::Start(s) => return Ok((s, false)),
                Event::Empty(s) => return Ok((s, true)),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Eof => return Err(malformed("empty message")),
                _ => return Err(malformed("content before the root element")),
            }
        }
    }

    /// Reads the text content of the element just opened, up to its end tag.
    fn text_content(&mut self, element: &str) -> Result<String> {
        let mut out = String::new();
        loop {
            match self.next()? {
                Event::Text(t) => out.push_str(&t.xml10_content()),
                Event::CData(c) => out.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => out.push(resolve_reference(&r).map_err(malformed)?),
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) => return Ok(out),
                Event::Eof => return Err(malformed(format!("<{element}> is not closed"))),
                _ => return Err(malformed(format!("unexpected element inside <{element}>"))),
            }
        }
    }

    /// Skips the rest of the element just opened.
    fn skip(&mut self, start: &BytesStart<'_>) -> Result<()> {
        // The skipped element closes inside `read_to_end`: its declarations leave scope.
        self.generation += u64::from(self.declares.pop().unwrap_or(true));
        let name = start.name().0.to_owned();
        self.reader
            .read_to_end(QName(&name))
            .map(drop)
            .map_err(|e| malformed(format!("{e} (inside <{name}>)")))
    }

    /// Reads to the root's end tag, allowing only whitespace, comments and PIs, then to EOF.
    fn expect_root_end(&mut self, after: &str) -> Result<()> {
        loop {
            match self.next()? {
                Event::End(_) => break,
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Eof => return Err(malformed("the root element is not closed")),
                _ => return Err(malformed(format!("unexpected content after {after}"))),
            }
        }
        self.expect_eof()
    }

    fn expect_eof(&mut self) -> Result<()> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                _ => return Err(malformed("content after the root element")),
            }
        }
    }

    /// The declarations in scope now, as a shared snapshot taken again only when an element
    /// that declares namespaces was opened or closed since the last one, so memory and time
    /// stay linear in the message.
    fn namespaces(&mut self) -> Arc<[NamespaceBinding]> {
        if let Some((generation, scope)) = &self.scope {
            if *generation == self.generation {
                return scope.clone();
            }
        }
        let snapshot: Arc<[NamespaceBinding]> = self
            .reader
            .resolver()
            .bindings()
            .filter_map(|(prefix, uri)| match prefix {
                PrefixDeclaration::Default => Some(("", uri.0)),
                PrefixDeclaration::Named("xml") => None,
                PrefixDeclaration::Named(p) => Some((p, uri.0)),
            })
            .map(|(prefix, uri)| NamespaceBinding {
                prefix: prefix.to_owned(),
                uri: uri.to_owned(),
            })
            .collect();
        self.scope = Some((self.generation, snapshot.clone()));
        snapshot
    }

    fn payload(&mut self, range: std::ops::Range<usize>) -> XmlPayload {
        XmlPayload::new(self.message.slice(range), self.namespaces())
    }

    /// Fast path: if the message ends `</child></root>`, where the child's end tag comes at
    /// or after `from`, returns the offsets of `</child` and `</root`.
    fn tail(&self, child_qname: &str, root_qname: &str, from: usize) -> Option<(usize, usize)> {
        let root_close = end_tag_before(self.text, root_qname, self.text.len())?;
        let child_close = end_tag_before(self.text, child_qname, root_close)?;
        (child_close >= from).then_some((child_close, root_close))
    }

    fn hello(&mut self) -> Result<Hello> {
        let mut capabilities = Capabilities::default();
        let mut session_id = None;
        let mut saw_capabilities = false;
        loop {
            match self.next()? {
                Event::Start(s) => match self.resolve(&s)? {
                    (ns, name) if ns == NS_BASE && name == "capabilities" => {
                        saw_capabilities = true;
                        self.capabilities(&mut capabilities)?;
                    }
                    (ns, name) if ns == NS_BASE && name == "session-id" => {
                        let text = self.text_content("session-id")?;
                        if session_id.is_some() {
                            return Err(ParseError::BadSessionId(
                                "<hello> carries more than one <session-id>".into(),
                            ));
                        }
                        session_id = Some(parse_session_id(&text)?);
                    }
                    _ => self.skip(&s)?,
                },
                Event::Empty(s) => {
                    let (ns, name) = self.resolve(&s)?;
                    if ns == NS_BASE && name == "session-id" {
                        return Err(ParseError::BadSessionId(
                            "<hello> has an empty <session-id>".into(),
                        ));
                    }
                    saw_capabilities |= ns == NS_BASE && name == "capabilities";
                }
                Event::End(_) => break,
                Event::Eof => return Err(malformed("<hello> is not closed")),
                _ => {}
            }
        }
        self.expect_eof()?;
        if !saw_capabilities {
            return Err(malformed("<hello> has no <capabilities>"));
        }
        Ok(Hello {
            capabilities,
            session_id,
        })
    }

    fn capabilities(&mut self, caps: &mut Capabilities) -> Result<()> {
        let mut seen = 0usize;
        loop {
            match self.next()? {
                Event::Start(s) => match self.resolve(&s)? {
                    (ns, name) if ns == NS_BASE && name == "capability" => {
                        seen += 1;
                        if seen > self.limits.max_capabilities {
                            return Err(ParseError::TooManyCapabilities {
                                limit: self.limits.max_capabilities,
                            });
                        }
                        caps.push(self.text_content("capability")?)
                    }
                    _ => self.skip(&s)?,
                },
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(malformed("<capabilities> is not closed")),
                _ => {}
            }
        }
    }

    fn rpc(&mut self, root: &BytesStart<'a>, root_qname: &str, empty: bool) -> Result<Request> {
        let message_id = message_id(root)?.ok_or(ParseError::MissingRpcMessageId)?;
        let prefix = root_qname.strip_suffix("rpc").unwrap_or_default();
        let attrs = root.attributes_raw();
        let reply_open = format!("<{prefix}rpc-reply{attrs}>");
        let reply_close = format!("</{prefix}rpc-reply>");
        if empty {
            return Err(malformed("<rpc> without an operation"));
        }
        loop {
            let before = self.pos();
            match self.next()? {
                Event::Start(s) => {
                    let operation = self.operation_name(&s)?;
                    let op_qname = s.name().0.to_owned();
                    let namespaces = self.namespaces();
                    let end = match self.tail(&op_qname, root_qname, self.pos()) {
                        Some((_, root_close)) => {
                            self.text[..root_close].trim_end_matches(is_xml_space).len()
                        }
                        None => {
                            self.skip(&s)?;
                            let end = self.pos();
                            self.expect_root_end("the operation in <rpc>")?;
                            end
                        }
                    };
                    let body = XmlPayload::new(self.message.slice(before..end), namespaces);
                    return Ok(Request {
                        message_id,
                        operation,
                        body,
                        reply_open,
                        reply_close,
                    });
                }
                Event::Empty(s) => {
                    let operation = self.operation_name(&s)?;
                    let body = self.payload(before..self.pos());
                    self.expect_root_end("the operation in <rpc>")?;
                    return Ok(Request {
                        message_id,
                        operation,
                        body,
                        reply_open,
                        reply_close,
                    });
                }
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) | Event::Eof => return Err(malformed("<rpc> without an operation")),
                _ => return Err(malformed("text where the operation of <rpc> should be")),
            }
        }
    }

    fn operation_name(&self, start: &BytesStart<'_>) -> Result<OperationName> {
        let (namespace, name) = self.resolve(start)?;
        Ok(OperationName { namespace, name })
    }

    fn rpc_reply(
        &mut self,
        root: &BytesStart<'a>,
        root_qname: &str,
        empty: bool,
    ) -> Result<RpcReply> {
        let message_id = message_id(root)?;
        let raw = self.message.clone();
        let mut reply = RpcReply {
            message_id,
            content: ReplyContent::Empty,
            errors: Vec::new(),
            raw,
        };
        if empty {
            return Ok(reply);
        }
        loop {
            let before = self.pos();
            match self.next()? {
                Event::Empty(s) => match self.resolve(&s)? {
                    (ns, name) if ns == NS_BASE && name == "ok" => reply.content = ReplyContent::Ok,
                    (ns, name) if ns == NS_BASE && name == "rpc-error" => {
                        return Err(malformed("empty <rpc-error>"));
                    }
                    (_, name) if name == "data" => {
                        reply.content = ReplyContent::Data(self.payload(0..0))
                    }
                    _ => return self.other_output(reply, before, root_qname),
                },
                Event::Start(s) => match self.resolve(&s)? {
                    (ns, name) if ns == NS_BASE && name == "ok" => {
                        self.skip(&s)?;
                        reply.content = ReplyContent::Ok;
                    }
                    (ns, name) if ns == NS_BASE && name == "rpc-error" => {
                        reply.errors.push(self.rpc_error()?)
                    }
                    (_, name) if name == "data" => {
                        let start = self.pos();
                        let qname = s.name().0.to_owned();
                        if let Some((data_close, _)) = self.tail(&qname, root_qname, start) {
                            reply.content = ReplyContent::Data(self.payload(start..data_close));
                            return Ok(reply);
                        }
                        let namespaces = self.namespaces();
                        self.skip(&s)?;
                        let end = self.text[..self.pos()]
                            .rfind("</")
                            .unwrap_or(start)
                            .max(start);
                        reply.content = ReplyContent::Data(XmlPayload::new(
                            self.message.slice(start..end),
                            namespaces,
                        ));
                    }
                    _ => return self.other_output(reply, before, root_qname),
                },
                Event::End(_) => break,
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(malformed("<rpc-reply> is not closed")),
                _ => return Err(malformed("unexpected text in <rpc-reply>")),
            }
        }
        self.expect_eof()?;
        Ok(reply)
    }

    /// Output of a custom RPC: everything from `start` to the end of `<rpc-reply>`, raw.
    fn other_output(
        &mut self,
        mut reply: RpcReply,
        start: usize,
        root_qname: &str,
    ) -> Result<RpcReply> {
        let namespaces = self.namespaces();
        let end = match end_tag_before(self.text, root_qname, self.text.len()) {
            Some(root_close) => root_close,
            None => return Err(malformed("<rpc-reply> does not end with its end tag")),
        };
        reply.content = ReplyContent::Other(XmlPayload::new(
            self.message.slice(
                start
                    ..self.text[..end]
                        .trim_end_matches(is_xml_space)
                        .len()
                        .max(start),
            ),
            namespaces,
        ));
        Ok(reply)
    }

    fn rpc_error(&mut self) -> Result<RpcError> {
        let mut error_type = None;
        let mut tag = None;
        let mut severity = None;
        let mut error = RpcError::new(ErrorType::Rpc, ErrorTag::OperationFailed);
        loop {
            match self.next()? {
                Event::Start(s) => {
                    let (_, name) = self.resolve(&s)?;
                    match name.as_str() {
                        "error-type" => {
                            error_type = Some(ErrorType::parse(&self.text_content(&name)?))
                        }
                        "error-tag" => tag = Some(ErrorTag::parse(&self.text_content(&name)?)),
                        "error-severity" => {
                            severity = Some(ErrorSeverity::parse(&self.text_content(&name)?))
                        }
                        "error-app-tag" => {
                            error.app_tag = Some(self.text_content(&name)?.trim().to_owned())
                        }
                        "error-path" => {
                            error.path = Some(self.text_content(&name)?.trim().to_owned())
                        }
                        "error-message" => {
                            let lang = s
                                .attributes()
                                .flatten()
                                .find(|a| a.key.0 == "xml:lang")
                                .and_then(|a| {
                                    a.normalized_value(XmlVersion::Implicit1_0)
                                        .ok()
                                        .map(|v| v.into_owned())
                                });
                            error.message = Some(ErrorMessage {
                                text: self.text_content(&name)?,
                                lang,
                            });
                        }
                        "error-info" => {
                            let start = self.pos();
                            let namespaces = self.namespaces();
                            self.skip(&s)?;
                            let end = self.text[..self.pos()]
                                .rfind("</")
                                .unwrap_or(start)
                                .max(start);
                            error.info =
                                Some(XmlPayload::new(self.message.slice(start..end), namespaces));
                        }
                        _ => self.skip(&s)?,
                    }
                }
                Event::End(_) => break,
                Event::Eof => return Err(malformed("<rpc-error> is not closed")),
                _ => {}
            }
        }
        error.error_type =
            error_type.ok_or_else(|| malformed("<rpc-error> without <error-type>"))?;
        error.tag = tag.ok_or_else(|| malformed("<rpc-error> without <error-tag>"))?;
        error.severity =
            severity.ok_or_else(|| malformed("<rpc-error> without <error-severity>"))?;
        Ok(error)
    }

    fn notification(&mut self, root_qname: &str) -> Result<Notification> {
        let event_time = loop {
            match self.next()? {
                Event::Start(s) => match self.resolve(&s)? {
                    (ns, name) if ns == NS_NOTIFICATION && name == "eventTime" => {
                        break self.text_content("eventTime")?.trim().to_owned();
                    }
                    _ => return Err(malformed("<notification> must start with <eventTime>")),
                },
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(malformed("<notification> must start with <eventTime>")),
            }
        };
        let start = self.pos();
        let namespaces = self.namespaces();
        let end = match end_tag_before(self.text, root_qname, self.text.len()) {
            Some(root_close) if root_close >= start => root_close,
            _ => loop {
                let before = self.pos();
                match self.next()? {
                    Event::Start(s) => self.skip(&s)?,
                    Event::End(_) => {
                        self.expect_eof()?;
                        break before;
                    }
                    Event::Eof => return Err(malformed("<notification> is not closed")),
                    _ => {}
                }
            },
        };
        let content = trim_range(self.text, start..end);
        Ok(Notification {
            event_time,
            content: XmlPayload::new(self.message.slice(content), namespaces),
        })
    }
}

/// The message-id attribute. Every attribute is checked, since a server echoes them all
/// back in its reply and must not echo malformed XML.
fn message_id(start: &BytesStart<'_>) -> Result<Option<String>> {
    let mut id = None;
    for attr in start.attributes() {
        let attr =
            attr.map_err(|e| malformed(format!("bad attribute on <{}>: {e}", start.name().0)))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                malformed(format!(
                    "bad value of {} on <{}>: {e}",
                    attr.key.0,
                    start.name().0
                ))
            })?;
        if attr.key.0 == "message-id" {
            id = Some(value.into_owned());
        }
    }
    Ok(id)
}

/// Whether the element carries an `xmlns` or `xmlns:*` attribute.
fn declares_namespaces(start: &BytesStart<'_>) -> bool {
    start.attributes().flatten().any(|a| {
        let key = a.key.0;
        key == "xmlns" || key.starts_with("xmlns:")
    })
}

fn parse_session_id(text: &str) -> Result<u32> {
    match text.trim().parse::<u32>() {
        Ok(id) if id >= 1 => Ok(id),
        _ => Err(ParseError::BadSessionId(format!(
            "<session-id> {:?} is not a number in 1..4294967295",
            text.trim()
        ))),
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

fn trim_range(text: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let s = &text[range.clone()];
    let start = range.start + (s.len() - s.trim_start_matches(is_xml_space).len());
    let end = range.start + s.trim_end_matches(is_xml_space).len();
    start..end.max(start)
}

/// If `text[..end]` ends (ignoring whitespace) with the end tag `</qname>`, where it starts.
fn end_tag_before(text: &str, qname: &str, end: usize) -> Option<usize> {
    let t = text.get(..end)?.trim_end_matches(is_xml_space);
    let t = t.strip_suffix('>')?.trim_end_matches(is_xml_space);
    let t = t.strip_suffix(qname)?;
    t.strip_suffix("</").map(str::len)
}
