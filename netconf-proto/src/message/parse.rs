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

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{
    Namespace, NamespaceError, NamespaceResolver, PrefixDeclaration, QName, ResolveResult,
};
use quick_xml::{Reader, XmlVersion};

use super::payload::{NamespaceBinding, XmlPayload};
use super::plain_attributes::PlainAttributes;
use super::rpc_error::{ErrorMessage, ErrorSeverity, ErrorTag, ErrorType, RpcError};
use super::{
    Hello, Message, Notification, OperationName, ReplyContent, ReplyEnvelope, Request, RpcReply,
};
use crate::capabilities::Capabilities;
use crate::quirks::Quirk;
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
    /// Strict mode refused something otherwise tolerated.
    Strict(Quirk),
}

/// Limits the parser enforces on what the peer sends, and whether it tolerates quirks.
#[derive(Debug, Clone)]
pub(crate) struct ParseLimits {
    pub max_capabilities: usize,
    pub strict: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_capabilities: crate::config::DEFAULT_MAX_CAPABILITIES,
            strict: false,
        }
    }
}

/// A parsed message and the quirks tolerated in it.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub message: Message,
    pub quirks: Vec<Quirk>,
}

/// In-scope namespace declarations accepted at once. quick-xml's default (128) refuses
/// devices that declare every module's namespace on `<data>`; resolving a prefix scans the
/// bindings, so the limit also bounds the cost of each resolved envelope element.
const MAX_NAMESPACE_BINDINGS: usize = 4096;

type Result<T> = std::result::Result<T, ParseError>;

fn malformed(what: impl Into<String>) -> ParseError {
    ParseError::Malformed(what.into())
}

/// What parsing keeps from one message to the next, so that a small message costs few
/// allocations: the namespace resolver's buffers, and the last snapshot of in-scope
/// declarations (every message of a session usually declares the same ones).
pub(crate) struct ParseScratch {
    pub(super) resolver: NamespaceResolver,
    declares: Vec<bool>,
    pub(super) last_scope: Option<Arc<[NamespaceBinding]>>,
}

impl Default for ParseScratch {
    fn default() -> Self {
        let mut resolver = NamespaceResolver::default();
        resolver.set_max_namespace_bindings(MAX_NAMESPACE_BINDINGS);
        ParseScratch {
            resolver,
            declares: Vec::new(),
            last_scope: None,
        }
    }
}

impl std::fmt::Debug for ParseScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParseScratch").finish_non_exhaustive()
    }
}

impl ParseScratch {
    /// The buffers grow with what a message declares and nests, at most its size: those
    /// a message larger than this grew are not kept for the next.
    const KEEP: usize = 64 * 1024;

    pub(super) fn reset(&mut self) {
        self.resolver.set_level(0);
        self.declares.clear();
    }

    /// Bytes of namespace text the scratch holds on to between messages.
    #[cfg(test)]
    pub(crate) fn retained_namespace_bytes(&self) -> usize {
        self.last_scope
            .iter()
            .flat_map(|scope| scope.iter())
            .map(|b| b.prefix.len() + b.uri.len())
            .sum()
    }

    /// The last snapshot goes too: its strings came from the message (a peer's 8 MiB
    /// namespace URI must not stay for the life of the session).
    fn shrink_after(&mut self, message_len: usize) {
        if message_len > Self::KEEP {
            *self = ParseScratch::default();
        }
    }
}

/// Parses one complete message.
#[cfg(test)]
pub(crate) fn parse_message(message: Bytes, limits: &ParseLimits) -> Result<Parsed> {
    parse_message_with(message, limits, &mut ParseScratch::default())
}

/// Parses one complete message, with the session's [`ParseScratch`].
pub(crate) fn parse_message_with(
    message: Bytes,
    limits: &ParseLimits,
    scratch: &mut ParseScratch,
) -> Result<Parsed> {
    scratch.reset();
    let len = message.len();
    let parsed = parse_into(message, limits, scratch, true);
    scratch.shrink_after(len);
    parsed
}

/// Parses one complete message with the full parser only, never the fast path (to test
/// the fast path against).
#[cfg(test)]
pub(crate) fn parse_message_full(message: Bytes, limits: &ParseLimits) -> Result<Parsed> {
    parse_into(message, limits, &mut ParseScratch::default(), false)
}

fn parse_into(
    message: Bytes,
    limits: &ParseLimits,
    scratch: &mut ParseScratch,
    fast: bool,
) -> Result<Parsed> {
    let mut quirks = Vec::new();
    if let Some(encoding) = declared_encoding(&message) {
        check_encoding(&encoding, &message, limits, &mut quirks)?;
    }
    let text = std::str::from_utf8(&message).map_err(|e| ParseError::InvalidUtf8 {
        error_offset: e.valid_up_to(),
    })?;
    if fast {
        if let Some(message) = super::fast_path::parse(&message, text, scratch) {
            return Ok(Parsed { message, quirks });
        }
    }
    let mut p = Parser {
        quirks,
        text,
        message: &message,
        reader: Reader::from_str(text),
        resolver: &mut scratch.resolver,
        pending_pop: None,
        limits,
        scope: None,
        last_scope: &mut scratch.last_scope,
        declares: &mut scratch.declares,
        generation: 0,
    };
    p.reader.config_mut().check_end_names = true;
    let (root, empty) = p.root()?;
    let (mut ns, name) = p.resolve(&root)?;
    let root_qname = root.name().0;
    // An envelope element in no namespace means what its name says (older Junos, Juniper
    // SRC, some NX-OS replies).
    if ns.is_empty() && matches!(name, "hello" | "rpc" | "rpc-reply" | "notification") {
        p.tolerate(Quirk::NoNamespaceEnvelope)?;
        ns = Cow::Borrowed(if name == "notification" {
            NS_NOTIFICATION
        } else {
            NS_BASE
        });
    }
    let msg = match (ns.as_ref(), name) {
        (NS_BASE, "hello") if !empty => Message::Hello(p.hello()?),
        (NS_BASE, "rpc") => Message::Rpc(p.rpc(&root, root_qname, empty)?),
        (NS_BASE, "rpc-reply") => Message::RpcReply(p.rpc_reply(&root, root_qname, empty)?),
        (NS_NOTIFICATION, "notification") if !empty => {
            Message::Notification(p.notification(root_qname)?)
        }
        (NS_BASE, "hello") | (NS_NOTIFICATION, "notification") => {
            return Err(malformed(format!("<{name}> must not be empty")))
        }
        _ => {
            return Err(ParseError::Unexpected {
                element: name.to_owned(),
                namespace: ns.into_owned(),
            })
        }
    };
    Ok(Parsed {
        message: msg,
        quirks: p.quirks,
    })
}

/// The `encoding` of an XML declaration at the start of the message (after a byte-order
/// mark or whitespace), if it names one.
fn declared_encoding(message: &[u8]) -> Option<String> {
    let head = &message[..message.len().min(512)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let decl = head[start..].strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(decl, b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let (_, after) = decl.split_once("encoding")?;
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = after[1..].split(quote).next()?;
    Some(value.to_ascii_lowercase())
}

/// NETCONF is UTF-8 (RFC 6241 section 3). Devices that declare ISO-8859-1 or US-ASCII
/// while sending ASCII mean the same bytes; anything else is refused, by name.
fn check_encoding(
    encoding: &str,
    message: &[u8],
    limits: &ParseLimits,
    quirks: &mut Vec<Quirk>,
) -> Result<()> {
    match encoding {
        "utf-8" | "utf8" => Ok(()),
        "iso-8859-1" | "latin1" | "latin-1" | "us-ascii" | "ascii" | "iso-8859-15" => {
            if let Some(at) = message.iter().position(|b| !b.is_ascii()) {
                return Err(malformed(format!(
                    "the message declares encoding {encoding:?} and has a non-ASCII byte at \
                     byte {at}; NETCONF messages are UTF-8 (RFC 6241 section 3)"
                )));
            }
            if limits.strict {
                return Err(ParseError::Strict(Quirk::NonUtf8EncodingDeclared));
            }
            quirks.push(Quirk::NonUtf8EncodingDeclared);
            Ok(())
        }
        other => Err(malformed(format!(
            "the message declares encoding {other:?}; NETCONF messages are UTF-8 \
             (RFC 6241 section 3)"
        ))),
    }
}

/// A scope that ends at the next read (as quick-xml's `NsReader` ends it).
#[derive(Clone, Copy)]
struct PendingPop {
    /// The scope declared namespaces: a snapshot taken after it ends differs.
    declared: bool,
    /// It was closed by an end tag, so nothing read after it is inside it: a snapshot for
    /// what follows leaves it out at once. (An empty element's own declarations stay for
    /// its payload: an empty `<data xmlns:a="..."/>`, or the first element of an output.)
    by_end_tag: bool,
}

struct Parser<'a> {
    text: &'a str,
    message: &'a Bytes,
    reader: Reader<&'a [u8]>,
    /// The in-scope namespace declarations, kept as quick-xml's `NsReader` keeps them (a
    /// scope pushed at each start tag, popped at the read after its end tag), in a resolver
    /// the session reuses.
    resolver: &'a mut NamespaceResolver,
    /// The last element read was empty or an end tag: its scope ends at the next read.
    pending_pop: Option<PendingPop>,
    limits: &'a ParseLimits,
    /// The last snapshot of in-scope namespace declarations and the `generation` it was
    /// taken at, shared by every payload taken in the same scope (20,000 `<error-info>`s
    /// under one `<rpc-reply>` share one).
    scope: Option<(u64, Arc<[NamespaceBinding]>)>,
    /// The snapshot the session's previous message took, reused when equal.
    last_scope: &'a mut Option<Arc<[NamespaceBinding]>>,
    /// For each element open now, whether it declared namespaces.
    declares: &'a mut Vec<bool>,
    /// Quirks tolerated so far.
    quirks: Vec<Quirk>,
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
        self.end_pending_scope();
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(ParseError::Doctype),
            Ok(ev) => {
                match &ev {
                    Event::Start(s) => {
                        let declares = self.push_scope(s)?;
                        self.generation += u64::from(declares);
                        self.declares.push(declares);
                    }
                    Event::Empty(s) => {
                        let declares = self.push_scope(s)?;
                        self.pending_pop = Some(PendingPop {
                            declared: declares,
                            by_end_tag: false,
                        });
                        self.generation += u64::from(declares);
                    }
                    Event::End(_) => {
                        self.pending_pop = Some(PendingPop {
                            declared: self.declares.pop().unwrap_or(true),
                            by_end_tag: true,
                        });
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

    /// Ends the scope that ends at this read. The snapshot changes then, not when the end
    /// tag is read: until the scope ends its declarations are still in the resolver.
    fn end_pending_scope(&mut self) {
        if let Some(pending) = self.pending_pop.take() {
            self.resolver.pop();
            self.generation += u64::from(pending.declared);
        }
    }

    /// Opens the scope of an element's namespace declarations; whether it may declare
    /// any. Most elements declare none: their attributes are not tokenized for it.
    fn push_scope(&mut self, start: &BytesStart<'_>) -> Result<bool> {
        let declares = declares_namespaces(start);
        let pushed = if !declares {
            push_empty_scope(self.resolver)
        } else {
            match PlainAttributes::read(start.attributes_raw()) {
                Some(plain) => push_plain(self.resolver, &plain),
                None => self.resolver.push(start),
            }
        };
        pushed.map(|()| declares).map_err(|e| {
            malformed(format!(
                "{} (at byte {} of the message)",
                quick_xml::Error::from(e),
                self.reader.buffer_position()
            ))
        })
    }

    /// Records a tolerated quirk, or refuses it in strict mode.
    fn tolerate(&mut self, quirk: Quirk) -> Result<()> {
        if self.limits.strict {
            return Err(ParseError::Strict(quirk));
        }
        if !self.quirks.contains(&quirk) {
            self.quirks.push(quirk);
        }
        Ok(())
    }

    /// The element's namespace and local name. A prefix never declared leaves the element
    /// in no namespace, for the envelope to recognise by its local name (a quirk). The
    /// namespaces the envelope uses are not copied.
    fn resolve<'n>(&mut self, start: &'n BytesStart<'_>) -> Result<(Cow<'static, str>, &'n str)> {
        match resolve_element(self.resolver, start.name()) {
            Ok(resolved) => Ok(resolved),
            Err(prefix) => {
                if self.limits.strict {
                    return Err(malformed(format!(
                        "undeclared namespace prefix {prefix:?} on <{}>",
                        start.name().0
                    )));
                }
                self.tolerate(Quirk::UndeclaredPrefix)?;
                Ok((Cow::Borrowed(""), start.local_name().into_inner()))
            }
        }
    }

    /// Whether `(ns, name)` is the envelope element `want` of namespace `in_ns`; in no
    /// namespace it is, as a quirk.
    fn is(&mut self, (ns, name): &(Cow<'_, str>, &str), in_ns: &str, want: &str) -> Result<bool> {
        if *name != want {
            return Ok(false);
        }
        if ns == in_ns {
            return Ok(true);
        }
        if ns.is_empty() {
            self.tolerate(Quirk::NoNamespaceEnvelope)?;
            return Ok(true);
        }
        Ok(false)
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
        let name = start.name();
        let skipped = self
            .reader
            .read_to_end(name)
            .map(drop)
            .map_err(|e| malformed(format!("{e} (inside <{}>)", name.0)));
        self.resolver.pop();
        skipped
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
        if self.pending_pop.is_some_and(|p| p.by_end_tag) {
            self.end_pending_scope();
        }
        if let Some((generation, scope)) = &self.scope {
            if *generation == self.generation {
                return scope.clone();
            }
        }
        let snapshot = snapshot(self.resolver, self.last_scope);
        self.scope = Some((self.generation, snapshot.clone()));
        snapshot
    }

    fn payload(&mut self, range: std::ops::Range<usize>) -> XmlPayload {
        XmlPayload::new(self.message.slice(range), self.namespaces())
    }

    /// Fast path: if the message ends `</child></root>`, where the child's end tag comes at
    /// or after `from`, returns the offsets of `</child` and `</root`.
    fn tail(&self, child_qname: &str, root_qname: &str, from: usize) -> Option<(usize, usize)> {
        tail(self.text, child_qname, root_qname, from)
    }

    fn hello(&mut self) -> Result<Hello> {
        let mut capabilities = Capabilities::default();
        let mut session_id = None;
        let mut saw_capabilities = false;
        loop {
            match self.next()? {
                Event::Start(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_BASE, "capabilities")? {
                        saw_capabilities = true;
                        self.capabilities(&mut capabilities)?;
                    } else if self.is(&element, NS_BASE, "session-id")? {
                        let text = self.text_content("session-id")?;
                        if session_id.is_some() {
                            return Err(ParseError::BadSessionId(
                                "<hello> carries more than one <session-id>".into(),
                            ));
                        }
                        session_id = Some(parse_session_id(&text)?);
                    } else {
                        self.skip(&s)?;
                    }
                }
                Event::Empty(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_BASE, "session-id")? {
                        return Err(ParseError::BadSessionId(
                            "<hello> has an empty <session-id>".into(),
                        ));
                    }
                    saw_capabilities |= self.is(&element, NS_BASE, "capabilities")?;
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
                Event::Start(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_BASE, "capability")? {
                        seen += 1;
                        if seen > self.limits.max_capabilities {
                            return Err(ParseError::TooManyCapabilities {
                                limit: self.limits.max_capabilities,
                            });
                        }
                        caps.push(self.text_content("capability")?)
                    } else {
                        self.skip(&s)?;
                    }
                }
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(malformed("<capabilities> is not closed")),
                _ => {}
            }
        }
    }

    fn rpc(&mut self, root: &BytesStart<'a>, root_qname: &str, empty: bool) -> Result<Request> {
        let message_id = message_id(root)?.ok_or(ParseError::MissingRpcMessageId)?;
        let reply_envelope = ReplyEnvelope::new(root_qname, root.attributes_raw());
        if empty {
            return Err(malformed("<rpc> without an operation"));
        }
        loop {
            let before = self.pos();
            match self.next()? {
                Event::Start(s) => {
                    let operation = self.operation_name(&s)?;
                    let op_qname = s.name().0;
                    let namespaces = self.namespaces();
                    let end = match self.tail(op_qname, root_qname, self.pos()) {
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
                        reply_envelope,
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
                        reply_envelope,
                    });
                }
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) | Event::Eof => return Err(malformed("<rpc> without an operation")),
                _ => return Err(malformed("text where the operation of <rpc> should be")),
            }
        }
    }

    fn operation_name(&mut self, start: &BytesStart<'_>) -> Result<OperationName> {
        let (namespace, name) = self.resolve(start)?;
        Ok(OperationName {
            namespace: namespace.into_owned(),
            name: name.to_owned(),
        })
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
                Event::Empty(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_BASE, "ok")? {
                        reply.content = ReplyContent::Ok;
                    } else if self.is(&element, NS_BASE, "rpc-error")? {
                        self.tolerate(Quirk::RpcErrorMissingLeaves)?;
                        reply.errors.push(unknown_rpc_error());
                    } else if element.1 == "data" {
                        reply.content = ReplyContent::Data(self.payload(0..0))
                    } else {
                        return self.other_output(reply, before, root_qname, None);
                    }
                }
                Event::Start(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_BASE, "ok")? {
                        self.skip(&s)?;
                        reply.content = ReplyContent::Ok;
                    } else if self.is(&element, NS_BASE, "rpc-error")? {
                        let error = self.rpc_error()?;
                        reply.errors.push(error);
                    } else if element.1 == "data" {
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
                    } else {
                        return self.other_output(reply, before, root_qname, Some(&s));
                    }
                }
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
    /// `<rpc-error>`s among it at the top level (Junos mixes warnings into its output) are
    /// also delivered typed; the search for them is one `memmem` pass when there are none.
    fn other_output(
        &mut self,
        mut reply: RpcReply,
        start: usize,
        root_qname: &str,
        opened: Option<&BytesStart<'_>>,
    ) -> Result<RpcReply> {
        let namespaces = self.namespaces();
        let end = match end_tag_before(self.text, root_qname, self.text.len()) {
            Some(root_close) => root_close,
            None => return Err(malformed("<rpc-reply> does not end with its end tag")),
        };
        let end = self.text[..end]
            .trim_end_matches(is_xml_space)
            .len()
            .max(start);
        if memchr::memmem::find(&self.text.as_bytes()[start..end], b"rpc-error").is_some() {
            if let Some(s) = opened {
                self.skip(s)?;
            }
            loop {
                match self.next()? {
                    Event::Start(s) => {
                        let element = self.resolve(&s)?;
                        if self.is(&element, NS_BASE, "rpc-error")? {
                            let error = self.rpc_error()?;
                            reply.errors.push(error);
                        } else {
                            self.skip(&s)?;
                        }
                    }
                    Event::Empty(s) => {
                        let element = self.resolve(&s)?;
                        if self.is(&element, NS_BASE, "rpc-error")? {
                            self.tolerate(Quirk::RpcErrorMissingLeaves)?;
                            reply.errors.push(unknown_rpc_error());
                        }
                    }
                    Event::End(_) => break,
                    Event::Eof => return Err(malformed("<rpc-reply> is not closed")),
                    _ => {}
                }
            }
        }
        reply.content =
            ReplyContent::Other(XmlPayload::new(self.message.slice(start..end), namespaces));
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
                    // By local name: the leaves are known, and devices get their namespaces
                    // wrong more often than their names.
                    let name = s.local_name().into_inner().to_owned();
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
        // A leaf the RFC requires but the device left out stays visible as unknown (an empty
        // `Other`), and a missing severity counts as an error (fail closed).
        if error_type.is_none() || tag.is_none() || severity.is_none() {
            self.tolerate(Quirk::RpcErrorMissingLeaves)?;
        }
        let unknown = unknown_rpc_error();
        error.error_type = error_type.unwrap_or(unknown.error_type);
        error.tag = tag.unwrap_or(unknown.tag);
        error.severity = severity.unwrap_or(unknown.severity);
        Ok(error)
    }

    fn notification(&mut self, root_qname: &str) -> Result<Notification> {
        let event_time = loop {
            match self.next()? {
                Event::Start(s) => {
                    let element = self.resolve(&s)?;
                    if self.is(&element, NS_NOTIFICATION, "eventTime")? {
                        break self.text_content("eventTime")?.trim().to_owned();
                    }
                    return Err(malformed("<notification> must start with <eventTime>"));
                }
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

/// The declarations in `resolver`'s scope as a shared snapshot (see [`reuse_or_snapshot`]).
pub(super) fn snapshot(
    resolver: &NamespaceResolver,
    last: &mut Option<Arc<[NamespaceBinding]>>,
) -> Arc<[NamespaceBinding]> {
    let bindings = || {
        resolver
            .bindings()
            .filter_map(|(prefix, uri)| match prefix {
                PrefixDeclaration::Default => Some(("", uri.0)),
                PrefixDeclaration::Named("xml") => None,
                PrefixDeclaration::Named(p) => Some((p, uri.0)),
            })
    };
    reuse_or_snapshot(bindings, last)
}

/// The declarations `bindings` lists, `(prefix, URI)` with `""` for the default namespace,
/// as a shared snapshot: `last` when it holds the same (every message of a session usually
/// declares the same ones), else a new one, which becomes `last`.
pub(super) fn reuse_or_snapshot<'b, I>(
    bindings: impl Fn() -> I,
    last: &mut Option<Arc<[NamespaceBinding]>>,
) -> Arc<[NamespaceBinding]>
where
    I: Iterator<Item = (&'b str, &'b str)>,
{
    // Compared in one pass, and only against a small snapshot: walking quick-xml's
    // bindings is quadratic in their number.
    let same_as_last = last.as_ref().filter(|last| {
        let mut now = bindings();
        last.len() <= 16
            && last.iter().all(|b| {
                now.next()
                    .is_some_and(|(prefix, uri)| b.prefix == prefix && b.uri == uri)
            })
            && now.next().is_none()
    });
    let snapshot: Arc<[NamespaceBinding]> = match same_as_last {
        Some(last) => last.clone(),
        None => bindings()
            .map(|(prefix, uri)| NamespaceBinding {
                prefix: prefix.to_owned(),
                uri: uri.to_owned(),
            })
            .collect(),
    };
    *last = Some(snapshot.clone());
    snapshot
}

/// Opens a scope that declares nothing.
fn push_empty_scope(resolver: &mut NamespaceResolver) -> std::result::Result<(), NamespaceError> {
    let level = resolver
        .level()
        .checked_add(1)
        .ok_or(NamespaceError::TooDeeplyNested(usize::from(u16::MAX)))?;
    resolver.set_level(level);
    Ok(())
}

/// Opens a scope with the declarations among plain attributes, as
/// `NamespaceResolver::push` would from the same start tag.
pub(super) fn push_plain(
    resolver: &mut NamespaceResolver,
    attributes: &PlainAttributes<'_>,
) -> std::result::Result<(), NamespaceError> {
    push_empty_scope(resolver)?;
    for (name, value) in attributes.iter() {
        if let Some(prefix) = QName(name).as_namespace_binding() {
            resolver.add(prefix, Namespace(value))?;
        }
    }
    Ok(())
}

/// An element's namespace and local name, the namespaces the envelope uses not copied;
/// `Err` with the prefix when it was never declared.
pub(super) fn resolve_element<'n>(
    resolver: &NamespaceResolver,
    qname: QName<'n>,
) -> std::result::Result<(Cow<'static, str>, &'n str), String> {
    let local = qname.local_name().into_inner();
    match resolver.resolve_element(qname).0 {
        ResolveResult::Bound(ns) if ns.0 == NS_BASE => Ok((Cow::Borrowed(NS_BASE), local)),
        ResolveResult::Bound(ns) if ns.0 == NS_NOTIFICATION => {
            Ok((Cow::Borrowed(NS_NOTIFICATION), local))
        }
        ResolveResult::Bound(ns) => Ok((Cow::Owned(ns.0.to_owned()), local)),
        ResolveResult::Unbound => Ok((Cow::Borrowed(""), local)),
        ResolveResult::Unknown(prefix) => Err(prefix),
    }
}

/// The message-id attribute. Every attribute is checked, since a server echoes them all
/// back in its reply and must not echo malformed XML.
fn message_id(start: &BytesStart<'_>) -> Result<Option<String>> {
    if let Some(plain) = PlainAttributes::read(start.attributes_raw()) {
        return Ok(plain.get("message-id").map(str::to_owned));
    }
    // The usual envelope has two or three attributes: their names are compared here, on
    // the stack, rather than by quick-xml's duplicate check, which allocates. Past this
    // many, or on a duplicate (for its error), quick-xml checks them all.
    const FEW: usize = 16;
    let mut seen: [&[u8]; FEW] = [&[]; FEW];
    let mut id = None;
    for (count, attr) in start.attributes().with_checks(false).enumerate() {
        // A malformed attribute: the checked pass reports what quick-xml sees first (a
        // duplicate before a bad value after it).
        let Ok(attr) = attr else {
            return message_id_checked(start);
        };
        let key = attr.key.0.as_bytes();
        if count == FEW || seen[..count].contains(&key) {
            return message_id_checked(start);
        }
        seen[count] = key;
        let raw: &str = &attr.value;
        // Only a reference or a literal tab or line break changes in normalization (or
        // can be malformed).
        let plain =
            memchr::memchr3(b'&', b'\t', b'\n', raw.as_bytes()).is_none() && !raw.contains('\r');
        if plain {
            if key == b"message-id" {
                id = Some(raw.to_owned());
            }
            continue;
        }
        let value = normalized(start, &attr)?;
        if key == b"message-id" {
            id = Some(value.into_owned());
        }
    }
    Ok(id)
}

/// [`message_id`] with quick-xml's own duplicate check over any number of attributes.
fn message_id_checked(start: &BytesStart<'_>) -> Result<Option<String>> {
    let mut id = None;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| bad_attribute(start, e))?;
        let value = normalized(start, &attr)?;
        if attr.key.0 == "message-id" {
            id = Some(value.into_owned());
        }
    }
    Ok(id)
}

fn bad_attribute(start: &BytesStart<'_>, e: impl std::fmt::Display) -> ParseError {
    malformed(format!("bad attribute on <{}>: {e}", start.name().0))
}

fn normalized<'v>(
    start: &BytesStart<'_>,
    attr: &'v quick_xml::events::attributes::Attribute<'_>,
) -> Result<Cow<'v, str>> {
    attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| {
        malformed(format!(
            "bad value of {} on <{}>: {e}",
            attr.key.0,
            start.name().0
        ))
    })
}

/// An `<rpc-error>` whose leaves are all unknown: type, tag and severity empty `Other`s.
fn unknown_rpc_error() -> RpcError {
    RpcError::new(
        ErrorType::Other(String::new()),
        ErrorTag::Other(String::new()),
    )
    .with_severity(ErrorSeverity::Other(String::new()))
}

/// Whether the element may carry an `xmlns` or `xmlns:*` attribute: its attributes' text
/// holds `xmlns`. An attribute value that merely contains it only costs a needless fresh
/// snapshot (see `Parser::namespaces`); the attributes are not tokenized again.
fn declares_namespaces(start: &BytesStart<'_>) -> bool {
    static XMLNS: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"xmlns"));
    XMLNS.find(start.attributes_raw().as_bytes()).is_some()
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

pub(super) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(super) fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

fn trim_range(text: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let s = &text[range.clone()];
    let start = range.start + (s.len() - s.trim_start_matches(is_xml_space).len());
    let end = range.start + s.trim_end_matches(is_xml_space).len();
    start..end.max(start)
}

/// If `text` ends `</child></root>` (whitespace aside), where the child's end tag comes at
/// or after `from`: the offsets of `</child` and `</root`.
pub(super) fn tail(
    text: &str,
    child_qname: &str,
    root_qname: &str,
    from: usize,
) -> Option<(usize, usize)> {
    let root_close = end_tag_before(text, root_qname, text.len())?;
    let child_close = end_tag_before(text, child_qname, root_close)?;
    (child_close >= from).then_some((child_close, root_close))
}

/// If `text[..end]` ends (ignoring whitespace) with the end tag `</qname>`, where it starts.
pub(super) fn end_tag_before(text: &str, qname: &str, end: usize) -> Option<usize> {
    let t = text.get(..end)?.trim_end_matches(is_xml_space);
    let t = t.strip_suffix('>')?.trim_end_matches(is_xml_space);
    let t = t.strip_suffix(qname)?;
    t.strip_suffix("</").map(str::len)
}
