//! Issue 13: what real devices get wrong, tolerated when the meaning is unambiguous,
//! counted on the session, and refused by `Config::strict()`; real protocol violations stay
//! refused. (The device corpus in `tests/fixtures/devices/` replays the real messages; these
//! tests pin each quirk's bookkeeping and the strict switch, byte by byte.)

use std::time::Instant;

use netconf_proto::operations::Get;
use netconf_proto::{CloseReason, Config, Event, ProtocolError, Quirk, Session};
use netconf_tests::pair::{drain, feed_split, split_variants};

const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

fn hello_10() -> String {
    format!(
        "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>urn:ietf:params:netconf:base:1.0\
         </capability></capabilities><session-id>5</session-id></hello>]]>]]>"
    )
}

/// A client that sent one RPC, fed `stream` after its hello, in every split; returns the
/// events (identical in every split) and the session.
fn client_fed(config: &Config, hello: &str, stream: &str) -> (Vec<Event>, Session) {
    let bytes = format!("{hello}{stream}");
    let mut first: Option<(Vec<Event>, Session)> = None;
    for splits in split_variants(bytes.len()).into_iter().step_by(7) {
        let mut client = Session::client(config.clone(), Instant::now());
        drain(&mut client);
        // The RPC goes out once the hello is in: feed the hello first.
        let hello_len = hello.len();
        let fed = feed_split(
            &mut client,
            &bytes.as_bytes()[..hello_len],
            &[],
            Instant::now(),
        );
        let mut events = fed.events;
        if client.is_established() {
            client.send_rpc(&Get::new(), Instant::now()).unwrap();
            drain(&mut client);
        }
        let rest: Vec<usize> = splits
            .iter()
            .filter(|&&s| s > hello_len)
            .map(|s| s - hello_len)
            .collect();
        let fed = feed_split(
            &mut client,
            &bytes.as_bytes()[hello_len..],
            &rest,
            Instant::now(),
        );
        events.extend(fed.events);
        match &first {
            None => first = Some((events, client)),
            Some((e, _)) => assert_eq!(&events, e, "splits {splits:?} changed the events"),
        }
    }
    first.expect("at least one split")
}

fn assert_tolerated(hello: &str, stream: &str, quirk: Quirk) -> Vec<Event> {
    let (events, client) = client_fed(&Config::client(), hello, stream);
    assert_eq!(
        client.quirks().count(quirk),
        1,
        "{quirk} not counted once: {:?}; events {events:?}",
        client.quirks()
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Closed {
                reason: CloseReason::Protocol(_)
            }
        )),
        "{quirk}: {events:?}"
    );
    let (events_strict, strict) = client_fed(&Config::client().strict(), hello, stream);
    if quirk == Quirk::MissingMessageId {
        // Strict: the reply matches nothing, so it is rejected (the session goes on).
        assert!(
            events_strict
                .iter()
                .any(|e| matches!(e, Event::MessageRejected { .. })),
            "{events_strict:?}"
        );
        return events;
    }
    assert!(
        matches!(strict.error(), Some(ProtocolError::Quirk { quirk: q, .. }) if *q == quirk)
            || matches!(strict.error(), Some(ProtocolError::MalformedMessage { .. })),
        "strict mode must refuse {quirk}: {:?} {events_strict:?}",
        strict.error()
    );
    events
}

#[test]
fn pre_rfc_base_urn_negotiates_base_1_0() {
    let hello = format!(
        "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>urn:ietf:params:xml:ns:netconf:base:1.0</capability>\
         <capability>urn:ietf:params:xml:ns:netconf:capability:candidate:1.0</capability></capabilities>\
         <session-id>5</session-id></hello>]]>]]>"
    );
    let events = assert_tolerated(&hello, "", Quirk::PreRfcBaseUrn);
    assert!(
        matches!(&events[0], Event::Established { peer_capabilities, .. }
        if peer_capabilities.has_candidate())
    );
}

#[test]
fn envelope_in_no_namespace() {
    let events = assert_tolerated(
        &hello_10(),
        "<rpc-reply message-id=\"1\"><ok/></rpc-reply>]]>]]>",
        Quirk::NoNamespaceEnvelope,
    );
    assert!(matches!(&events[1], Event::Reply { reply, .. } if reply.errors.is_empty()));
}

#[test]
fn undeclared_prefix_on_the_envelope() {
    let events = assert_tolerated(
        &hello_10(),
        "<nc:rpc-reply message-id=\"1\"><nc:ok/></nc:rpc-reply>]]>]]>",
        Quirk::UndeclaredPrefix,
    );
    assert!(matches!(&events[1], Event::Reply { .. }));
}

#[test]
fn rpc_error_without_its_leaves_is_delivered() {
    let events = assert_tolerated(
        &hello_10(),
        &format!(
            "<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\"><rpc-error><error-severity>warning\
             </error-severity><error-message>uncommitted changes discarded</error-message>\
             </rpc-error><ok/></rpc-reply>]]>]]>"
        ),
        Quirk::RpcErrorMissingLeaves,
    );
    let Event::Reply { reply, .. } = &events[1] else {
        panic!("{events:?}")
    };
    assert!(!reply.has_errors(), "a warning stays a warning");
    assert_eq!(
        reply.errors[0].tag.as_str(),
        "",
        "the missing tag is visible"
    );
}

#[test]
fn reply_without_message_id_matches_the_only_rpc() {
    let events = assert_tolerated(
        &hello_10(),
        &format!("<rpc-reply xmlns=\"{NS_BASE}\"><ok/></rpc-reply>]]>]]>"),
        Quirk::MissingMessageId,
    );
    assert!(matches!(&events[1], Event::Reply { id, .. } if id.0 == 1));
}

#[test]
fn latin1_declared_on_ascii() {
    assert_tolerated(
        &hello_10(),
        &format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rpc-reply message-id=\"1\" \
             xmlns=\"{NS_BASE}\"><ok/></rpc-reply>]]>]]>"
        ),
        Quirk::NonUtf8EncodingDeclared,
    );
}

#[test]
fn banner_before_the_hello() {
    let hello = format!(
        "Welcome to router r1.\nUnauthorized access prohibited.\n{}",
        hello_10()
    );
    let events = assert_tolerated(&hello, "", Quirk::BannerBeforeHello);
    assert!(matches!(events[0], Event::Established { .. }));
}

#[test]
fn text_after_the_last_message_at_end_of_stream() {
    // End-of-message framing: the text becomes an unfinished message.
    let hello = hello_10();
    let stream = format!(
        "<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\"><ok/></rpc-reply>]]>]]>\nConnection closed by foreign host.\n"
    );
    let mut client = Session::client(Config::client(), Instant::now());
    drain(&mut client);
    client
        .handle_input(hello.as_bytes(), Instant::now())
        .unwrap();
    client.send_rpc(&Get::new(), Instant::now()).unwrap();
    drain(&mut client);
    client
        .handle_input(stream.as_bytes(), Instant::now())
        .unwrap();
    client.handle_eof(Instant::now());
    let events = drain(&mut client).events;
    assert!(
        matches!(
            events[..],
            [
                Event::Reply { .. },
                Event::Closed {
                    reason: CloseReason::Eof
                }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(client.quirks().count(Quirk::TrailingGarbage), 1);
}

#[test]
fn text_after_a_chunked_message_is_held_until_end_of_stream_and_bounded() {
    let hello = format!(
        "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>urn:ietf:params:netconf:base:1.1\
         </capability></capabilities><session-id>5</session-id></hello>]]>]]>"
    );
    let reply = format!("<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\"><ok/></rpc-reply>");
    let framed = format!("\n#{}\n{reply}\n##\n", reply.len());
    let run = |garbage: &str, eof: bool| {
        let mut client = Session::client(Config::client(), Instant::now());
        drain(&mut client);
        client
            .handle_input(hello.as_bytes(), Instant::now())
            .unwrap();
        client.send_rpc(&Get::new(), Instant::now()).unwrap();
        drain(&mut client);
        let result = client.handle_input(format!("{framed}{garbage}").as_bytes(), Instant::now());
        if eof {
            client.handle_eof(Instant::now());
        }
        (result, drain(&mut client).events, client)
    };
    let (result, events, client) = run("% Connection closed\n", true);
    assert!(result.is_ok());
    assert!(
        matches!(
            events.last(),
            Some(Event::Closed {
                reason: CloseReason::Eof
            })
        ),
        "{events:?}"
    );
    assert!(matches!(events[0], Event::Reply { .. }), "{events:?}");
    assert_eq!(client.quirks().count(Quirk::TrailingGarbage), 1);
    // More than a few KiB of it is not a closing remark: the chunk header error stands.
    let (result, events, _) = run(&"x".repeat(5000), false);
    assert!(
        matches!(result, Err(ProtocolError::BadChunkHeader { .. })),
        "{result:?}"
    );
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            reason: CloseReason::Protocol(ProtocolError::BadChunkHeader { .. })
        })
    ));
}

/// What was refused for a real protocol violation stays refused.
#[test]
fn real_violations_stay_refused() {
    let cases: Vec<(String, &str)> = vec![
        (
            format!("<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\"><ok/></rpc-reply>]]>]]>"),
            "ExpectedHello",
        ),
        (
            format!("{}<!DOCTYPE x><rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\"><ok/></rpc-reply>]]>]]>", hello_10()),
            "DoctypeNotAllowed",
        ),
        (
            format!("{}<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\">\u{e9}", hello_10())
                .replace('\u{e9}', "\u{0}")
                + "]]>]]>",
            "MalformedMessage",
        ),
    ];
    for (stream, want) in cases {
        let mut client = Session::client(Config::client(), Instant::now());
        drain(&mut client);
        let err = client.handle_input(stream.as_bytes(), Instant::now());
        let got = format!("{err:?}");
        assert!(got.contains(want), "{want}: got {got}");
    }
    // Invalid UTF-8 and a bad chunk header in the middle of a message.
    let mut client = Session::client(Config::client(), Instant::now());
    drain(&mut client);
    let mut bytes = hello_10().into_bytes();
    bytes.extend_from_slice(b"<rpc-reply message-id=\"1\">\xff</rpc-reply>]]>]]>");
    assert!(matches!(
        client.handle_input(&bytes, Instant::now()),
        Err(ProtocolError::InvalidUtf8 { .. })
    ));
    let chunked_hello = format!(
        "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>urn:ietf:params:netconf:base:1.1\
         </capability></capabilities><session-id>5</session-id></hello>]]>]]>"
    );
    let mut client = Session::client(Config::client(), Instant::now());
    drain(&mut client);
    let stream = format!("{chunked_hello}\n#12\n<rpc-reply m\n#x\n");
    assert!(matches!(
        client.handle_input(stream.as_bytes(), Instant::now()),
        Err(ProtocolError::BadChunkHeader { .. })
    ));
}
