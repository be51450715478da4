//! The usual envelopes, read without a tokenizer.
//!
//! A session of small RPCs sends the same few shapes of message over and over: an `<rpc>`
//! with one operation, an `<rpc-reply>` with `<data>` or `<ok/>`. For those, quick-xml's
//! reader was most of the cost of parsing (a reader and its buffers per message, each tag
//! tokenized byte by byte). This module reads those shapes with one scan of the two start
//! tags they need, and gives exactly what the full parser gives (a proptest compares the
//! two). Anything else returns `None`, and the full parser reads the message from the
//! start: a comment or processing instruction in the envelope, an attribute that is not
//! plain, a name that is not ASCII, anything the full parser would record as a quirk,
//! `<rpc-error>`, other output, `<hello>`, `<notification>`, and every error.

use std::sync::Arc;

use bytes::Bytes;

use super::parse::{end_tag_before, is_blank, is_xml_space, reuse_or_snapshot, tail, ParseScratch};
use super::plain_attributes::{is_name_char, is_name_start, skip_space, PlainAttributes, FEW};
use super::{
    Message, NamespaceBinding, OperationName, ReplyContent, ReplyEnvelope, Request, RpcReply,
    XmlPayload,
};
use crate::xml::NS_BASE;

/// Parses `message` (whose `text` is known to be UTF-8) if it has one of the usual shapes.
/// Only `scratch`'s last snapshot of declarations is used (and replaced).
pub(super) fn parse(message: &Bytes, text: &str, scratch: &mut ParseScratch) -> Option<Message> {
    let root = Tag::read(text, prolog_end(text)?)?;
    let mut scope = Scope::default();
    scope.push(&root)?;
    match scope.resolve(root.qname)? {
        (ns, "rpc") if ns == NS_BASE => {
            rpc(message, text, &root, &mut scope, scratch).map(Message::Rpc)
        }
        (ns, "rpc-reply") if ns == NS_BASE => {
            rpc_reply(message, text, &root, &mut scope, scratch).map(Message::RpcReply)
        }
        _ => None,
    }
}

/// An `<rpc>` with one operation and nothing else.
fn rpc<'a>(
    message: &Bytes,
    text: &'a str,
    root: &Tag<'a>,
    scope: &mut Scope<'a>,
    scratch: &mut ParseScratch,
) -> Option<Request> {
    if root.empty {
        return None;
    }
    let message_id = root.attributes.get("message-id")?.to_owned();
    let op = Tag::read(text, skip_space(text.as_bytes(), root.end))?;
    scope.push(&op)?;
    let (namespace, name) = scope.resolve(op.qname)?;
    let end = if op.empty {
        only_space_to_root_end(text, op.end, root.qname)?;
        op.end
    } else {
        let (_, root_close) = tail(text, op.qname, root.qname, op.end)?;
        text[..root_close].trim_end_matches(is_xml_space).len()
    };
    let namespaces = scope.snapshot(&mut scratch.last_scope);
    let reply_envelope = ReplyEnvelope::new(root.qname, root.attributes_raw);
    Some(Request {
        message_id,
        operation: OperationName {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        body: XmlPayload::new(message.slice(op.start..end), namespaces),
        reply_envelope,
    })
}

/// An `<rpc-reply>` that is empty, or holds `<ok/>`, `<data/>` or one `<data>` element.
fn rpc_reply<'a>(
    message: &Bytes,
    text: &'a str,
    root: &Tag<'a>,
    scope: &mut Scope<'a>,
    scratch: &mut ParseScratch,
) -> Option<RpcReply> {
    let mut reply = RpcReply {
        message_id: root.attributes.get("message-id").map(str::to_owned),
        content: ReplyContent::Empty,
        errors: Vec::new(),
        raw: message.clone(),
    };
    if root.empty {
        return Some(reply);
    }
    let child = Tag::read(text, skip_space(text.as_bytes(), root.end))?;
    scope.push(&child)?;
    let (ns, name) = scope.resolve(child.qname)?;
    match (child.empty, name) {
        (true, "ok") if ns == NS_BASE => reply.content = ReplyContent::Ok,
        (true, "data") => {
            reply.content = ReplyContent::Data(XmlPayload::new(
                message.slice(0..0),
                scope.snapshot(&mut scratch.last_scope),
            ));
        }
        (false, "data") => {
            let (data_close, _) = tail(text, child.qname, root.qname, child.end)?;
            reply.content = ReplyContent::Data(XmlPayload::new(
                message.slice(child.end..data_close),
                scope.snapshot(&mut scratch.last_scope),
            ));
            return Some(reply);
        }
        // `<ok>` with content or in no namespace (a quirk), `<rpc-error>`, other output.
        _ => return None,
    }
    only_space_to_root_end(text, child.end, root.qname)?;
    Some(reply)
}

/// A start tag whose name is ASCII and whose attributes are all plain.
struct Tag<'a> {
    /// Where its `<` is.
    start: usize,
    qname: &'a str,
    /// The text between the name and the `>` or `/>`, as quick-xml's `attributes_raw`.
    attributes_raw: &'a str,
    attributes: PlainAttributes<'a>,
    empty: bool,
    /// Just after its `>`.
    end: usize,
}

impl<'a> Tag<'a> {
    fn read(text: &'a str, start: usize) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.get(start) != Some(&b'<') || !is_name_start(*bytes.get(start + 1)?) {
            return None;
        }
        let mut name_end = start + 2;
        while bytes.get(name_end).is_some_and(|b| is_name_char(*b)) {
            name_end += 1;
        }
        let (attributes, raw_len, empty) = PlainAttributes::read_tag(&text[name_end..])?;
        let close = name_end + raw_len;
        Some(Tag {
            start,
            qname: &text[start + 1..name_end],
            attributes_raw: &text[name_end..close],
            attributes,
            empty,
            end: close + if empty { 2 } else { 1 },
        })
    }
}

/// Where the root's start tag may begin: after an XML declaration at the very start, if
/// there is one, and whitespace.
fn prolog_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    if let Some(rest) = text.strip_prefix("<?xml") {
        if !rest.starts_with([' ', '\t', '\r', '\n']) {
            return None;
        }
        let declaration = &rest[..memchr::memmem::find(rest.as_bytes(), b"?>")?];
        if declaration.contains(['<', '>']) {
            return None;
        }
        at = 5 + declaration.len() + 2;
    }
    Some(skip_space(bytes, at))
}

/// The namespace declarations of the root and of the one element in it that the fast path
/// reads, resolved on the stack: quick-xml's resolver cost a fifth of a small message's
/// parsing. What quick-xml treats apart is left to the full parser: a declaration of the
/// `xml` or `xmlns` prefix or of their URIs, an empty URI (which undeclares), a prefix
/// that is empty or holds a colon, and a name with such a prefix.
#[derive(Default)]
struct Scope<'a> {
    /// `(prefix, URI)` in the order declared, the root's first; `""` is the default
    /// namespace. A later declaration of a prefix hides an earlier one.
    declared: [(&'a str, &'a str); 2 * FEW],
    len: usize,
}

impl<'a> Scope<'a> {
    /// Adds `tag`'s declarations, as quick-xml's `NamespaceResolver::push` would.
    fn push(&mut self, tag: &Tag<'a>) -> Option<()> {
        for (name, uri) in tag.attributes.iter() {
            let prefix = if name == "xmlns" {
                ""
            } else if let Some(prefix) = name.strip_prefix("xmlns:") {
                if !ordinary_prefix(prefix) {
                    return None;
                }
                prefix
            } else {
                continue; // an attribute (`xmlnsx` too)
            };
            if uri.is_empty() || uri == XML_URI || uri == XMLNS_URI {
                return None;
            }
            *self.declared.get_mut(self.len)? = (prefix, uri);
            self.len += 1;
        }
        Some(())
    }

    /// An element's namespace (`""` when it has none) and local name; `None` when its
    /// prefix was never declared (the full parser's error) or is not ordinary.
    fn resolve(&self, qname: &'a str) -> Option<(&'a str, &'a str)> {
        // A byte scan: `split_once` searches with memchr, which costs more on a short name.
        let (prefix, local) = match qname.bytes().position(|b| b == b':') {
            Some(colon) => {
                let (prefix, local) = (&qname[..colon], &qname[colon + 1..]);
                if !ordinary_prefix(prefix) || has_colon(local) {
                    return None;
                }
                (prefix, local)
            }
            None => ("", qname),
        };
        match self.declared[..self.len]
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
        {
            Some((_, uri)) => Some((uri, local)),
            None if prefix.is_empty() => Some(("", local)),
            None => None,
        }
    }

    /// The declarations in scope, as the full parser's snapshot lists them (in the order
    /// declared, those hidden left out).
    fn snapshot(&self, last: &mut Option<Arc<[NamespaceBinding]>>) -> Arc<[NamespaceBinding]> {
        let declared = &self.declared[..self.len];
        let in_scope = || {
            declared
                .iter()
                .enumerate()
                .filter(|(i, (prefix, _))| !declared[i + 1..].iter().any(|(p, _)| p == prefix))
                .map(|(_, binding)| *binding)
        };
        reuse_or_snapshot(in_scope, last)
    }
}

/// The URIs bound to the reserved prefixes `xml` and `xmlns`.
const XML_URI: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_URI: &str = "http://www.w3.org/2000/xmlns/";

/// A prefix the fast path resolves itself: not empty, no colon, not reserved.
fn ordinary_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && !has_colon(prefix) && prefix != "xml" && prefix != "xmlns"
}

fn has_colon(name: &str) -> bool {
    name.bytes().any(|b| b == b':')
}

/// Checks that only whitespace follows `from` up to the root's end tag, and only
/// whitespace after it.
fn only_space_to_root_end(text: &str, from: usize, root_qname: &str) -> Option<()> {
    let root_close = end_tag_before(text, root_qname, text.len())?;
    (root_close >= from && is_blank(&text[from..root_close])).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse::{parse_message_full, ParseLimits};
    use proptest::prelude::*;

    const BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

    fn fast(text: &str) -> Option<Message> {
        parse(
            &Bytes::copy_from_slice(text.as_bytes()),
            text,
            &mut ParseScratch::default(),
        )
    }

    /// Both parsers agree on `text`, and the fast path read it.
    fn assert_fast(text: &str) {
        let full = parse_message_full(Bytes::copy_from_slice(text.as_bytes()), &Default::default())
            .expect("the full parser reads it");
        assert!(full.quirks.is_empty());
        assert_eq!(fast(text), Some(full.message), "{text}");
    }

    #[test]
    fn reads_what_our_own_client_and_server_send() {
        assert_fast(&format!(
            r#"<rpc message-id="1" xmlns="{BASE}"><get-config><source><running/></source></get-config></rpc>"#
        ));
        assert_fast(&format!(
            r#"<rpc-reply message-id="1" xmlns="{BASE}"><data><top xmlns="urn:bench"><n>1</n></top></data></rpc-reply>"#
        ));
        assert_fast(&format!(
            r#"<rpc-reply message-id="2" xmlns="{BASE}"><ok/></rpc-reply>"#
        ));
        assert_fast(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<nc:rpc-reply xmlns:nc=\"{BASE}\" \
             message-id='9' xmlns:if=\"urn:if\">\n  <nc:data xmlns:x=\"urn:x\"/>\n</nc:rpc-reply >\n"
        ));
        assert_fast(&format!(
            r#"<rpc message-id="3" xmlns="{BASE}"><close-session/></rpc>"#
        ));
    }

    #[test]
    fn leaves_the_rest_to_the_full_parser() {
        for text in [
            format!(r#"<!-- hi --><rpc-reply message-id="1" xmlns="{BASE}"><ok/></rpc-reply>"#),
            format!(r#"<rpc-reply message-id="1" xmlns="{BASE}"><ok/><!-- hi --></rpc-reply>"#),
            format!(r#"<rpc-reply message-id="a&amp;b" xmlns="{BASE}"><ok/></rpc-reply>"#),
            r#"<rpc-reply message-id="1"><ok/></rpc-reply>"#.to_owned(),
            format!(r#"<rpc-reply message-id="1" xmlns="{BASE}"><rpc-error/></rpc-reply>"#),
            format!(r#"<rpc-reply message-id="1" xmlns="{BASE}"><ok/><ok/></rpc-reply>"#),
            format!(r#"<rpc-reply message-id="1" xmlns="{BASE}"><x:ok/></rpc-reply>"#),
            format!(r#"<rpc xmlns="{BASE}"><get/></rpc>"#),
            format!(r#"<rpc message-id="1" xmlns="{BASE}"/>"#),
            format!(r#"<hello xmlns="{BASE}"><capabilities/></hello>"#),
            format!(r#"<rpc message-id="1" xmlns="{BASE}"><get/></rpcx>"#),
        ] {
            assert_eq!(fast(&text), None, "{text}");
        }
    }

    fn pick(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        proptest::sample::select(options)
    }

    /// Mostly `usual`, now and then one of `others`.
    fn mostly(
        usual: &'static str,
        others: &'static [&'static str],
    ) -> impl Strategy<Value = &'static str> {
        prop_oneof![6 => Just(usual), 1 => pick(others)]
    }

    /// A start tag: `<`, a prefix, a name, some attributes, then `>` or `/>`.
    fn start_tag(
        prefixes: &'static [&'static str],
        names: &'static [&'static str],
        attributes: &'static [&'static str],
    ) -> impl Strategy<Value = (String, bool)> {
        (
            pick(prefixes),
            pick(names),
            proptest::collection::vec(pick(attributes), 0..3),
            pick(&["", " ", "\n"]),
            prop_oneof![5 => Just(false), 1 => Just(true)],
        )
            .prop_map(|(prefix, name, attributes, space, empty)| {
                let end = if empty { "/>" } else { ">" };
                (
                    format!("<{prefix}{name}{}{space}{end}", attributes.concat()),
                    empty,
                )
            })
    }

    /// A root start tag, usually the envelope done right: a prefix and its declaration
    /// of the base namespace, a message-id, and perhaps other attributes.
    fn root_tag() -> impl Strategy<Value = (String, bool)> {
        let extra = &[
            " message-id=\"101\"",
            " message-id='7'",
            " message-id=\"a&amp;b\"",
            " xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"",
            " xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"",
            " xmlns=\"urn:other\"",
            " xmlns:x=\"urn:x\"",
            "\n\ta='1'",
            " b=\"x\ty\"",
            "b=\"1\"",
            " c=\"a>b\"",
            // What the fast path's scope leaves to the full parser, and an attribute
            // that only starts like a declaration.
            " xmlns=\"\"",
            " xmlns:x=\"\"",
            " xmlns:xml=\"http://www.w3.org/XML/1998/namespace\"",
            " xmlns:y=\"http://www.w3.org/2000/xmlns/\"",
            " xmlnsx=\"1\"",
        ];
        let right = (
            pick(&["", "nc:"]),
            pick(&["rpc", "rpc-reply", "rpc-reply", "hello"]),
            pick(&[" message-id=\"101\"", " message-id='7'", ""]),
            proptest::collection::vec(pick(extra), 0..2),
            pick(&["", " ", "\n"]),
            prop_oneof![8 => Just(false), 1 => Just(true)],
            any::<bool>(),
        )
            .prop_map(|(prefix, name, id, extra, space, empty, id_first)| {
                let declaration = match prefix {
                    "" => " xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"",
                    _ => " xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"",
                };
                let (first, second) = if id_first {
                    (id, declaration)
                } else {
                    (declaration, id)
                };
                let end = if empty { "/>" } else { ">" };
                (
                    format!(
                        "<{prefix}{name}{first}{second}{}{space}{end}",
                        extra.concat()
                    ),
                    empty,
                )
            });
        prop_oneof![
            3 => right,
            1 => start_tag(&["", "nc:", "x:"], &["rpc", "rpc-reply", "hello", "rpcx"], extra),
        ]
    }

    /// An element in the root: a start tag, content, and an end tag (not always right).
    fn child() -> impl Strategy<Value = ((String, bool), &'static str, &'static str)> {
        (
            start_tag(
                &["", "", "", "nc:", "x:", "y:", "xml:", "x:y:"],
                &[
                    "get-config",
                    "ok",
                    "ok",
                    "data",
                    "data",
                    "data",
                    "rpc-error",
                    "other",
                ],
                &[
                    " xmlns:if=\"urn:if\"",
                    " xmlns=\"urn:d\"",
                    " xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"",
                    " xmlns:x=\"urn:x2\"",
                    " xmlns=\"\"",
                    " xmlns:y=\"\"",
                    " a=\"&lt;\"",
                    " b=\"1\"",
                    " b='2'",
                    " c=\"1\"",
                ],
            ),
            pick(&[
                "",
                "<top xmlns=\"urn:t\"><n>1</n></top>",
                "text",
                "<ok/>",
                "</x>",
            ]),
            mostly("same", &["</other>", "</data >", ""]),
        )
    }

    /// Messages near the shapes the fast path reads, and many that it must leave alone.
    fn envelope() -> impl Strategy<Value = String> {
        (
            pick(&[
                "",
                "",
                "",
                "",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<?xml version='1.0'?>\n",
                "\n  ",
                "<!-- c -->",
                "<?pi x?>",
                " <?xml version=\"1.0\"?>",
                "<?xml version=\"1.0\"?><?xml version=\"1.0\"?>",
            ]),
            root_tag(),
            mostly("", &["\n  ", "<!-- c -->", "x"]),
            prop_oneof![
                6 => proptest::collection::vec(child(), 1..=1),
                1 => proptest::collection::vec(child(), 0..3),
            ],
            mostly("", &["\n", "<!-- c -->", "<x/>"]),
            mostly("same", &["same ", "</other>", ""]),
            mostly("", &["\n", "<!-- t -->", "x"]),
        )
            .prop_map(
                |(prolog, (root, root_empty), between, children, after, root_end, trailing)| {
                    let root_qname = root[1..]
                        .split([' ', '\n', '>', '/'])
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let mut text = format!("{prolog}{root}");
                    if root_empty {
                        return text + trailing;
                    }
                    text.push_str(between);
                    for ((child, child_empty), content, end) in children {
                        text.push_str(&child);
                        if !child_empty {
                            let qname = child[1..]
                                .split([' ', '\n', '>', '/'])
                                .next()
                                .unwrap_or_default();
                            text.push_str(content);
                            match end {
                                "same" => text.push_str(&format!("</{qname}>")),
                                other => text.push_str(other),
                            }
                        }
                    }
                    text.push_str(after);
                    match root_end {
                        "same" => text.push_str(&format!("</{root_qname}>")),
                        "same " => text.push_str(&format!("</{root_qname} >")),
                        other => text.push_str(other),
                    }
                    text + trailing
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16384))]
        /// Whatever the fast path reads, the full parser reads the same, with no quirk and
        /// no error.
        #[test]
        fn agrees_with_the_full_parser(text in envelope()) {
            if let Some(fast) = fast(&text) {
                let full = parse_message_full(
                    Bytes::copy_from_slice(text.as_bytes()),
                    &ParseLimits::default(),
                );
                let full = match full {
                    Ok(full) => full,
                    Err(e) => return Err(TestCaseError::fail(format!("{text:?}: {e:?}"))),
                };
                prop_assert!(full.quirks.is_empty(), "{:?}: {:?}", text, full.quirks);
                prop_assert_eq!(Some(fast), Some(full.message), "{:?}", text);
            }
        }
    }

    /// Envelopes the fast path reads, for [`mutated`] to damage.
    const VALID: &[&str] = &[
        r#"<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-config><source><running/></source></get-config></rpc>"#,
        r#"<rpc message-id="2" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><close-session/></rpc>"#,
        r#"<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id='3'><nc:get/></nc:rpc>"#,
        r#"<rpc-reply message-id="4" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>"#,
        r#"<rpc-reply message-id="5" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data/></rpc-reply>"#,
        r#"<rpc-reply message-id="6" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data xmlns:if="urn:if"><if:a>1</if:a></data></rpc-reply>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="7"><nc:data>x</nc:data></nc:rpc-reply>"#,
        r#"<rpc-reply message-id="8" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>"#,
    ];

    /// Pieces inserted into a valid envelope: markup that changes what it means.
    const PIECES: &[&str] = &[
        "<",
        ">",
        "/",
        "/>",
        "</",
        "=",
        "\"",
        "'",
        " ",
        "\n",
        "\t",
        ":",
        "nc:",
        "x:",
        " xmlns=\"\"",
        " xmlns:=\"u\"",
        " xmlns:nc=\"urn:x\"",
        " a=\"1\"",
        " a='&amp;'",
        "<!-- c -->",
        "<?pi?>",
        "<![CDATA[<ok/>]]>",
        "<?xml version=\"1.0\"?>",
        "&",
        "&lt;",
        "é",
        "\u{85}",
        "\u{feff}",
        "\0",
        "<ok/>",
        "<data>",
        "</data>",
        "<rpc-error/>",
        "</rpc-reply>",
        "</rpc>",
    ];

    /// A valid envelope with a few pieces inserted and characters deleted.
    fn mutated() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(VALID),
            proptest::collection::vec(
                (
                    any::<proptest::sample::Index>(),
                    proptest::option::of(pick(PIECES)),
                ),
                0..4,
            ),
        )
            .prop_map(|(valid, edits)| {
                let mut text = valid.to_owned();
                for (at, piece) in edits {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    match piece {
                        Some(piece) => text.insert_str(at, piece),
                        None if at < text.len() => {
                            text.remove(at);
                        }
                        None => {}
                    }
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]
        /// On damaged envelopes, parsing as a session does (the fast path first) gives
        /// exactly what the full parser alone gives: the same message and quirks, or the
        /// same error; and the fast path never reads one the full parser refuses.
        #[test]
        fn damaged_envelopes_parse_as_the_full_parser_says(text in mutated()) {
            let bytes = Bytes::copy_from_slice(text.as_bytes());
            let limits = ParseLimits::default();
            let full = parse_message_full(bytes.clone(), &limits);
            let session = crate::message::parse_message(bytes, &limits);
            match (&session, &full) {
                (Ok(session), Ok(full)) => {
                    prop_assert_eq!(&session.message, &full.message, "{:?}", text);
                    prop_assert_eq!(&session.quirks, &full.quirks, "{:?}", text);
                }
                (Err(session), Err(full)) => prop_assert_eq!(session, full, "{:?}", text),
                _ => prop_assert!(false, "{:?}: {:?} / {:?}", text, session, full),
            }
            // A declared encoding is checked before the fast path runs (the check above
            // covers it); called alone here, the fast path does not look at it.
            if let Some(fast) = fast(&text).filter(|_| !text.contains("encoding")) {
                let full = full.expect("the full parser reads what the fast path read");
                prop_assert!(full.quirks.is_empty(), "{:?}: {:?}", text, full.quirks);
                prop_assert_eq!(fast, full.message, "{:?}", text);
            }
        }
    }
}
