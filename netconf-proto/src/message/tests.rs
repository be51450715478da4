use bytes::Bytes;

use super::*;
use crate::capabilities::BaseVersion;
use crate::quirks::Quirk;

fn parse(xml: &str) -> Result<Message, ParseError> {
    parse_message(
        Bytes::copy_from_slice(xml.as_bytes()),
        &ParseLimits::default(),
    )
    .map(|p| p.message)
}

fn reply(xml: &str) -> RpcReply {
    match parse(xml) {
        Ok(Message::RpcReply(r)) => r,
        other => panic!("not a reply: {other:?}"),
    }
}

#[test]
fn hello_from_server() {
    let Ok(Message::Hello(h)) = parse(
        r#"<?xml version="1.0" encoding="UTF-8"?>
        <hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
          <capabilities>
            <capability>urn:ietf:params:netconf:base:1.1</capability>
            <capability>
              urn:ietf:params:netconf:capability:startup:1.0
            </capability>
          </capabilities>
          <session-id>4</session-id>
        </hello>"#,
    ) else {
        panic!()
    };
    assert_eq!(h.session_id, Some(4));
    assert_eq!(h.capabilities.base_versions(), vec![BaseVersion::V1_1]);
    assert!(h.capabilities.has_startup());
}

#[test]
fn hello_with_prefix_and_bad_session_ids() {
    let Ok(Message::Hello(h)) = parse(
        r#"<nc:hello xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><nc:capabilities><nc:capability>urn:ietf:params:netconf:base:1.0</nc:capability></nc:capabilities></nc:hello>"#,
    ) else {
        panic!()
    };
    assert_eq!(h.session_id, None);
    for bad in ["0", "x", "4294967296", ""] {
        let xml = format!(
            r#"<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities/><session-id>{bad}</session-id></hello>"#
        );
        assert!(
            matches!(parse(&xml), Err(ParseError::BadSessionId(_))),
            "{bad:?}"
        );
    }
    let twice = r#"<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities/><session-id>1</session-id><session-id>2</session-id></hello>"#;
    assert!(matches!(parse(twice), Err(ParseError::BadSessionId(_))));
}

#[test]
fn reply_with_data_is_a_zero_copy_slice() {
    let xml = r#"<rpc-reply message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data><top xmlns="urn:x"><a>1 &lt; 2</a></top></data></rpc-reply>"#;
    let r = reply(xml);
    assert_eq!(r.message_id.as_deref(), Some("101"));
    let data = r.data().unwrap();
    assert_eq!(data.as_str(), r#"<top xmlns="urn:x"><a>1 &lt; 2</a></top>"#);
    assert_eq!(
        data.bytes().as_ptr(),
        r.raw[xml.find("<top").unwrap()..].as_ptr()
    );
    assert!(!r.has_errors());
}

#[test]
fn reply_data_with_trailing_comment_uses_the_tokenizer() {
    let r = reply(
        r#"<nc:rpc-reply message-id="7" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><nc:data><x/></nc:data><!-- c --></nc:rpc-reply>"#,
    );
    assert_eq!(r.data().unwrap().as_str(), "<x/>");
    assert_eq!(r.data().unwrap().namespaces()[0].prefix, "nc");
}

#[test]
fn reply_ok_and_empty_data() {
    assert_eq!(reply(r#"<rpc-reply message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>"#).content, ReplyContent::Ok);
    let r = reply(
        r#"<rpc-reply message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data/></rpc-reply>"#,
    );
    assert!(r.data().unwrap().is_empty());
}

#[test]
fn reply_errors_fully_typed() {
    // RFC 6241 section 4.3, second example (two errors).
    let r = reply(
        r#"<rpc-reply message-id="101"
          xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"
          xmlns:xc="urn:ietf:params:xml:ns:netconf:base:1.0">
          <rpc-error>
            <error-type>application</error-type>
            <error-tag>invalid-value</error-tag>
            <error-severity>error</error-severity>
            <error-path xmlns:t="http://example.com/schema/1.2/config">
              /t:top/t:interface[t:name="Ethernet0/0"]/t:mtu
            </error-path>
            <error-message xml:lang="en">
              MTU value 25000 is not within range 256..9192
            </error-message>
          </rpc-error>
          <rpc-error>
            <error-type>application</error-type>
            <error-tag>invalid-value</error-tag>
            <error-severity>error</error-severity>
            <error-app-tag>acme-x</error-app-tag>
            <error-info><bad-element>x &amp; y</bad-element></error-info>
          </rpc-error>
        </rpc-reply>"#,
    );
    assert!(r.has_errors());
    assert_eq!(r.content, ReplyContent::Empty);
    let [a, b] = &r.errors[..] else { panic!() };
    assert_eq!(a.error_type, ErrorType::Application);
    assert_eq!(a.tag, ErrorTag::InvalidValue);
    assert_eq!(a.severity, ErrorSeverity::Error);
    assert_eq!(
        a.path.as_deref(),
        Some(r#"/t:top/t:interface[t:name="Ethernet0/0"]/t:mtu"#)
    );
    let m = a.message.as_ref().unwrap();
    assert_eq!(
        m.text.trim(),
        "MTU value 25000 is not within range 256..9192"
    );
    assert_eq!(m.lang.as_deref(), Some("en"));
    assert_eq!(b.app_tag.as_deref(), Some("acme-x"));
    assert_eq!(
        b.info.as_ref().unwrap().as_str(),
        "<bad-element>x &amp; y</bad-element>"
    );
    assert_eq!(
        a.to_string(),
        "error invalid-value (application) at /t:top/t:interface[t:name=\"Ethernet0/0\"]/t:mtu: MTU value 25000 is not within range 256..9192"
    );
}

#[test]
fn rpc_error_round_trips_through_the_writer() {
    let e = RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
        .with_message("locked by <3>")
        .with_info_xml("<session-id>3</session-id>")
        .unwrap();
    let mut xml = String::from(
        r#"<rpc-reply message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">"#,
    );
    e.write_xml(&mut xml);
    xml.push_str("</rpc-reply>");
    let mut got = reply(&xml).errors;
    // The parsed info also records the reply's namespace scope; compare the XML itself.
    let info = got[0].info.take().unwrap();
    assert_eq!(info.as_str(), "<session-id>3</session-id>");
    assert_eq!(info.namespaces()[0].uri, crate::xml::NS_BASE);
    assert_eq!(got, vec![RpcError { info: None, ..e }]);
}

#[test]
fn rpc_request_and_echoed_attributes() {
    let Ok(Message::Rpc(req)) = parse(
        r#"<rpc message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:ex="http://example.net/content/1.0" ex:user-id="fred">
             <get-config><source><running/></source></get-config>
           </rpc>"#,
    ) else {
        panic!()
    };
    assert_eq!(req.message_id, "101");
    assert!(req.operation.is_base("get-config"));
    assert_eq!(
        req.body.as_str(),
        "<get-config><source><running/></source></get-config>"
    );
    let mut out = bytes::BytesMut::new();
    encode::write_reply(&req, &Reply::Ok, &mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"<rpc-reply message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:ex="http://example.net/content/1.0" ex:user-id="fred"><ok/></rpc-reply>"#
    );
}

#[test]
fn rpc_with_prefixed_and_empty_operation() {
    let Ok(Message::Rpc(req)) = parse(
        r#"<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="x"><nc:close-session/></nc:rpc>"#,
    ) else {
        panic!()
    };
    assert!(req.operation.is_base("close-session"));
    assert_eq!(
        req.reply_envelope.open(),
        r#"<nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="x">"#
    );
    let Ok(Message::Rpc(req)) = parse(
        r#"<rpc message-id="2" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><my-op xmlns="urn:acme"><a/></my-op><!--x--></rpc>"#,
    ) else {
        panic!()
    };
    assert_eq!(
        req.operation,
        OperationName {
            namespace: "urn:acme".into(),
            name: "my-op".into()
        }
    );
    assert_eq!(req.body.as_str(), r#"<my-op xmlns="urn:acme"><a/></my-op>"#);
}

#[test]
fn notification_content() {
    let Ok(Message::Notification(n)) = parse(
        r#"<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">
             <eventTime>2007-07-08T00:01:00Z</eventTime>
             <event xmlns="http://example.com/event/1.0"><eventClass>fault</eventClass></event>
           </notification>"#,
    ) else {
        panic!()
    };
    assert_eq!(n.event_time, "2007-07-08T00:01:00Z");
    assert_eq!(
        n.content.as_str(),
        r#"<event xmlns="http://example.com/event/1.0"><eventClass>fault</eventClass></event>"#
    );
}

#[test]
fn refusals() {
    assert_eq!(
        parse(r#"<!DOCTYPE x [<!ENTITY a "b">]><rpc-reply/>"#),
        Err(ParseError::Doctype)
    );
    assert!(matches!(
        parse_message(
            Bytes::from_static(b"<rpc-reply>\xff</rpc-reply>"),
            &ParseLimits::default()
        ),
        Err(ParseError::InvalidUtf8 { error_offset: 11 })
    ));
    assert!(matches!(
        parse("<rpc-reply xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><ok/>"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        parse("<rpc-reply xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><ok></rpc-reply>"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        parse("<foo xmlns='urn:x'/>"),
        Err(ParseError::Unexpected { .. })
    ));
    // An envelope in no namespace is tolerated (issue 13: older Junos), but not in strict
    // mode, and an unknown root in no namespace is still not NETCONF.
    let strict = ParseLimits {
        strict: true,
        ..ParseLimits::default()
    };
    assert!(matches!(
        parse_message(Bytes::from_static(b"<rpc-reply/>"), &ParseLimits::default()),
        Ok(Parsed { message: Message::RpcReply(_), quirks }) if quirks == [Quirk::NoNamespaceEnvelope]
    ));
    assert!(matches!(
        parse_message(Bytes::from_static(b"<rpc-reply/>"), &strict),
        Err(ParseError::Strict(Quirk::NoNamespaceEnvelope))
    ));
    assert!(matches!(
        parse("<foo/>"),
        Err(ParseError::Unexpected { .. })
    ));
    assert!(matches!(parse(""), Err(ParseError::Malformed(_))));
    assert_eq!(
        parse("<rpc xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><get/></rpc>"),
        Err(ParseError::MissingRpcMessageId)
    );
}

/// One session's messages share a [`ParseScratch`]: nothing one message declared, or left
/// open by failing, is in scope in the next, and a payload's namespaces are its own
/// message's even when the previous message's snapshot is reused.
#[test]
fn a_session_s_messages_share_parse_buffers_but_no_scope() {
    let limits = ParseLimits::default();
    let mut scratch = ParseScratch::default();
    let mut parse = |xml: &str| {
        parse_message_with(
            Bytes::copy_from_slice(xml.as_bytes()),
            &limits,
            &mut scratch,
        )
    };
    let data = |parsed: Result<Parsed, ParseError>| match parsed.map(|p| p.message) {
        Ok(Message::RpcReply(RpcReply {
            content: ReplyContent::Data(d),
            ..
        })) => d,
        other => panic!("not a data reply: {other:?}"),
    };
    let base = r#"xmlns="urn:ietf:params:xml:ns:netconf:base:1.0""#;
    let first = data(parse(&format!(
        r#"<rpc-reply message-id="1" {base} xmlns:a="urn:a"><data><a:x/></data></rpc-reply>"#
    )));
    let bound = |d: &XmlPayload, prefix: &str| {
        d.namespaces()
            .iter()
            .find(|b| b.prefix == prefix)
            .map(|b| b.uri.clone())
    };
    assert_eq!(bound(&first, "a").as_deref(), Some("urn:a"));

    // The same declarations: the same snapshot, shared.
    let again = data(parse(&format!(
        r#"<rpc-reply message-id="2" {base} xmlns:a="urn:a"><data><a:y/></data></rpc-reply>"#
    )));
    assert!(std::ptr::eq(first.namespaces(), again.namespaces()));

    // A message that fails with `b` in scope (its `<data>` is not closed).
    assert!(parse(&format!(
        r#"<rpc-reply message-id="3" {base} xmlns:b="urn:b"><data><b:z>"#
    ))
    .is_err());

    // Neither `a` nor `b` is declared any more; `a` is now something else.
    let next = data(parse(&format!(
        r#"<rpc-reply message-id="4" {base} xmlns:a="urn:other"><data><a:x/></data></rpc-reply>"#
    )));
    assert_eq!(bound(&next, "a").as_deref(), Some("urn:other"));
    assert_eq!(bound(&next, "b"), None);

    // An envelope prefix declared only by the failed message is undeclared again.
    let parsed = parse("<b:rpc-reply message-id=\"5\" xmlns:b=\"urn:b\"/>");
    assert!(
        matches!(parsed, Err(ParseError::Unexpected { .. })),
        "{parsed:?}"
    );
    let parsed = parse("<b:rpc-reply message-id=\"6\"/>").expect("undeclared prefix tolerated");
    assert!(parsed.quirks.contains(&Quirk::UndeclaredPrefix));
    assert!(matches!(parsed.message, Message::RpcReply(_)));
}

/// The message-id and the attributes a server echoes: references resolved, whitespace
/// normalized, duplicates and malformed values refused, with few or many attributes.
#[test]
fn message_id_attributes_are_checked_however_many() {
    let base = r#"xmlns="urn:ietf:params:xml:ns:netconf:base:1.0""#;
    let id = |attrs: &str| match parse(&format!("<rpc-reply {attrs} {base}><ok/></rpc-reply>")) {
        Ok(Message::RpcReply(r)) => Ok(r.message_id),
        Err(e) => Err(format!("{e:?}")),
        other => panic!("{other:?}"),
    };
    assert_eq!(id(r#"message-id="7""#), Ok(Some("7".into())));
    assert_eq!(id(r#"message-id="a&amp;b""#), Ok(Some("a&b".into())));
    assert_eq!(id("message-id=\"a\tb\""), Ok(Some("a b".into())));
    assert_eq!(id(r#"x="1""#), Ok(None));
    let bad_value = id(r#"message-id="a&b""#).unwrap_err();
    assert!(bad_value.contains("bad value of message-id"), "{bad_value}");
    // Any attribute's value is checked, not only the message-id's.
    assert!(id(r#"message-id="1" other="&nope;""#).is_err());
    let duplicate = id(r#"message-id="1" message-id="2""#).unwrap_err();
    assert!(duplicate.contains("bad attribute"), "{duplicate}");

    let many: String = (0..40).map(|i| format!(r#" a{i}="{i}""#)).collect();
    assert_eq!(
        id(&format!(r#"{many} message-id="9""#)),
        Ok(Some("9".into()))
    );
    let duplicate_late = id(&format!(r#"{many} a39="again" message-id="9""#)).unwrap_err();
    assert!(duplicate_late.contains("bad attribute"), "{duplicate_late}");
    let duplicate_early = id(&format!(r#"a1="x" {many}"#)).unwrap_err();
    assert!(
        duplicate_early.contains("bad attribute"),
        "{duplicate_early}"
    );
}

/// A large message's namespace text is not kept by the session once the message is gone:
/// a later message that takes no snapshot must not leave the 1 MiB URI pinned.
#[test]
fn a_large_message_s_namespaces_are_not_kept_for_the_next() {
    let limits = ParseLimits::default();
    let mut scratch = ParseScratch::default();
    let base = r#"xmlns="urn:ietf:params:xml:ns:netconf:base:1.0""#;
    let huge = "u".repeat(1 << 20);
    let big = format!(r#"<rpc-reply message-id="1" {base} xmlns:x="{huge}"><data/></rpc-reply>"#);
    let parsed = parse_message_with(Bytes::from(big), &limits, &mut scratch).expect("big");
    drop(parsed);
    let ok = format!(r#"<rpc-reply message-id="2" {base}><ok/></rpc-reply>"#);
    parse_message_with(Bytes::from(ok), &limits, &mut scratch).expect("ok");
    assert!(
        scratch.retained_namespace_bytes() < 1024,
        "{} bytes kept",
        scratch.retained_namespace_bytes()
    );
}

/// What quick-xml reports first is what the peer hears: a duplicate attribute before the
/// malformed value that follows it.
#[test]
fn a_duplicate_attribute_is_named_before_a_bad_value_after_it() {
    let err = parse(
        r#"<rpc-reply message-id="1" message-id=2 xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>"#,
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("duplicated"), "{err:?}");
}

/// The namespaces of a payload are those in scope where it starts: a sibling before it
/// that declared (and closed) the same prefix does not lend it its binding.
#[test]
fn a_closed_sibling_s_declarations_are_out_of_scope() {
    let base = "urn:ietf:params:xml:ns:netconf:base:1.0";
    let r = reply(&format!(
        r#"<rpc-reply xmlns="{base}" xmlns:a="urn:a" message-id="1"><data xmlns:a="urn:WRONG"/><a:foo/></rpc-reply>"#
    ));
    let ReplyContent::Other(other) = &r.content else {
        panic!("{:?}", r.content)
    };
    let bindings_of_a = |payload: &XmlPayload| -> Vec<String> {
        payload
            .namespaces()
            .iter()
            .filter(|b| b.prefix == "a")
            .map(|b| b.uri.clone())
            .collect()
    };
    assert_eq!(bindings_of_a(other), ["urn:a"]);

    let Ok(Message::Notification(n)) = parse(
        r#"<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0" xmlns:a="urn:a"><eventTime xmlns:a="urn:WRONG">2026-12-01T00:00:00Z</eventTime><a:ev/></notification>"#,
    ) else {
        panic!("not a notification")
    };
    assert_eq!(bindings_of_a(&n.content), ["urn:a"]);
}
