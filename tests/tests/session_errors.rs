//! Every way a session can fail, and how it reports it.
//!
//! A peer that breaks the protocol must produce its named [`ProtocolError`], returned by the
//! `handle_input` that saw it (and by every later one), and end the event stream with exactly
//! one `Event::Closed { reason: CloseReason::Protocol(that error) }`, after the events of
//! everything received before the bad bytes. Every byte-level case runs under all the splits
//! of [`split_variants`], so the error (offsets included) must not depend on how the bytes
//! were cut. Misuse of the API is a [`UsageError`] that changes nothing.

use std::time::{Duration, Instant};

use netconf_proto::capabilities::{Capabilities, BASE_1_0, BASE_1_1};
use netconf_proto::operations::{Datastore, Get, GetConfig};
use netconf_proto::{
    CloseReason, Config, Event, MessageId, ProtocolError, Reply, ReplyContent, Session, State,
    UsageError,
};
use netconf_tests::pair::{drain, feed_split, split_variants, Fed, Pair};

const NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const NS_NOTIF: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

// ----- transcript pieces -----

fn eom(xml: &str) -> Vec<u8> {
    let mut out = xml.as_bytes().to_vec();
    out.extend_from_slice(b"]]>]]>");
    out
}

fn chunk(xml: &str) -> Vec<u8> {
    let mut out = format!("\n#{}\n", xml.len()).into_bytes();
    out.extend_from_slice(xml.as_bytes());
    out.extend_from_slice(b"\n##\n");
    out
}

fn caps(bases: &[&str]) -> String {
    bases
        .iter()
        .map(|b| format!("<capability>{b}</capability>"))
        .collect()
}

fn server_hello(bases: &[&str]) -> String {
    format!(
        "<hello xmlns=\"{NS}\"><capabilities>{}</capabilities><session-id>12</session-id></hello>",
        caps(bases)
    )
}

fn client_hello(bases: &[&str]) -> String {
    format!(
        "<hello xmlns=\"{NS}\"><capabilities>{}</capabilities></hello>",
        caps(bases)
    )
}

fn reply_ok(id: u64) -> String {
    format!("<rpc-reply message-id=\"{id}\" xmlns=\"{NS}\"><ok/></rpc-reply>")
}

fn rpc(id: &str) -> String {
    format!("<rpc message-id=\"{id}\" xmlns=\"{NS}\"><get/></rpc>")
}

fn notification() -> String {
    format!(
        "<notification xmlns=\"{NS_NOTIF}\"><eventTime>2026-01-01T00:00:00Z</eventTime>\
<event xmlns=\"urn:e\"/></notification>"
    )
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ----- harness -----

/// The variant name and stream offset of an error, to compare errors without their prose.
fn kind(e: &ProtocolError) -> (&'static str, Option<u64>) {
    match e {
        ProtocolError::BadChunkHeader { offset, .. } => ("BadChunkHeader", Some(*offset)),
        ProtocolError::ChunkSizeOutOfRange { offset, .. } => ("ChunkSizeOutOfRange", Some(*offset)),
        ProtocolError::MessageTooLarge { offset, .. } => ("MessageTooLarge", Some(*offset)),
        ProtocolError::TruncatedMessage { offset, .. } => ("TruncatedMessage", Some(*offset)),
        ProtocolError::InvalidUtf8 { offset, .. } => ("InvalidUtf8", Some(*offset)),
        ProtocolError::MalformedMessage { offset, .. } => ("MalformedMessage", Some(*offset)),
        ProtocolError::DoctypeNotAllowed { offset } => ("DoctypeNotAllowed", Some(*offset)),
        ProtocolError::ExpectedHello { offset, .. } => ("ExpectedHello", Some(*offset)),
        ProtocolError::DuplicateHello { offset } => ("DuplicateHello", Some(*offset)),
        ProtocolError::NoCommonBase { .. } => ("NoCommonBase", None),
        ProtocolError::BadSessionId(_) => ("BadSessionId", None),
        ProtocolError::UnexpectedMessage { offset, .. } => ("UnexpectedMessage", Some(*offset)),
        ProtocolError::MissingMessageId { offset } => ("MissingMessageId", Some(*offset)),
        ProtocolError::UnknownMessageId { offset, .. } => ("UnknownMessageId", Some(*offset)),
        ProtocolError::HelloTimeout => ("HelloTimeout", None),
        ProtocolError::StalledMidMessage { offset, .. } => ("StalledMidMessage", Some(*offset)),
        ProtocolError::Tls(_) => ("Tls", None),
        ProtocolError::HelloTooLarge { .. } => ("HelloTooLarge", None),
        ProtocolError::TooManyCapabilities { .. } => ("TooManyCapabilities", None),
        _ => ("unknown", None),
    }
}

/// Asserts `events` ends with the one and only `Closed`, carrying `reason`.
fn assert_closed_last(events: &[Event], reason: &CloseReason) {
    let closed = events
        .iter()
        .filter(|e| matches!(e, Event::Closed { .. }))
        .count();
    assert_eq!(closed, 1, "exactly one Closed: {events:?}");
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: reason.clone()
        }),
        "Closed must be last"
    );
}

/// Checks a failed feed: an error was returned, and it is the reason of the last event.
fn assert_failed(fed: &Fed) -> ProtocolError {
    let e = fed.error.clone().expect("handle_input must fail");
    assert_closed_last(&fed.events, &CloseReason::Protocol(e.clone()));
    e
}

/// Feeds `bytes` to sessions made by `make` under every split; all runs must fail the same
/// way. Returns the events (before `Closed`) and the error of the whole run.
fn fails_in_every_split(
    mut make: impl FnMut() -> Session,
    bytes: &[u8],
) -> (Vec<Event>, ProtocolError) {
    let now = Instant::now();
    let whole = feed_split(&mut make(), bytes, &[], now);
    let error = assert_failed(&whole);
    for splits in split_variants(bytes.len()) {
        let fed = feed_split(&mut make(), bytes, &splits, now);
        assert_eq!(fed.error.as_ref(), Some(&error), "split at {splits:?}");
        assert_eq!(fed.events, whole.events, "split at {splits:?}");
    }
    let mut events = whole.events;
    events.pop();
    (events, error)
}

/// A client that has received the hello of a server offering `bases` and sent `rpcs` gets.
/// Returns it with the number of bytes it has received (where the next offset starts).
fn established_client(config: &Config, bases: &[&str], rpcs: usize) -> (Session, u64) {
    let now = Instant::now();
    let mut client = Session::client(config.clone(), now);
    let hello = eom(&server_hello(bases));
    client.handle_input(&hello, now).expect("valid hello");
    let events = drain(&mut client).events;
    assert!(
        matches!(events[..], [Event::Established { .. }]),
        "{events:?}"
    );
    for _ in 0..rpcs {
        client.send_rpc(&Get::new(), now).expect("send_rpc");
    }
    drain(&mut client);
    (client, hello.len() as u64)
}

/// `bytes` to an established client (chunked framing when `bases` allow) under every split.
fn client_fails(bases: &[&str], rpcs: usize, bytes: &[u8]) -> (Vec<Event>, ProtocolError, u64) {
    client_fails_with(&Config::client(), bases, rpcs, bytes)
}

fn client_fails_with(
    config: &Config,
    bases: &[&str],
    rpcs: usize,
    bytes: &[u8],
) -> (Vec<Event>, ProtocolError, u64) {
    let base = established_client(config, bases, rpcs).1;
    let (events, error) = fails_in_every_split(|| established_client(config, bases, rpcs).0, bytes);
    (events, error, base)
}

fn is_reply(ev: &Event, want: u64) -> bool {
    matches!(ev, Event::Reply { id, .. } if *id == MessageId(want))
}

const BOTH: &[&str] = &[BASE_1_0, BASE_1_1];

// ----- framing -----

#[test]
fn bad_chunk_headers() {
    let good = chunk(&reply_ok(1));
    let cases: &[(&[u8], &str, u64)] = &[
        (b"\n#0\n", "ChunkSizeOutOfRange", 2),
        (b"\n#01\n", "ChunkSizeOutOfRange", 2),
        (b"\n#4294967296\n", "ChunkSizeOutOfRange", 11),
        (b"\n#99999999999999999999999\n", "ChunkSizeOutOfRange", 11),
        (b"\n#x\n", "BadChunkHeader", 2),
        (b"\n#-1\n", "BadChunkHeader", 2),
        (b"\n# 5\n", "BadChunkHeader", 2),
        (b"\n#1a\n", "BadChunkHeader", 3),
        (b"\n#5 \n", "BadChunkHeader", 3),
        (b"\n#5\r\n", "BadChunkHeader", 3),
        // The LF ending the size is missing.
        (b"\n#5<rpc-reply", "BadChunkHeader", 3),
        // The LF starting the header is missing.
        (b"#5\n<ok/>", "BadChunkHeader", 0),
        // End-of-chunks with no chunk before it, and a broken end-of-chunks marker.
        (b"\n##\n", "BadChunkHeader", 3),
        (b"\n#3\nabc\n##x", "BadChunkHeader", 10),
        // Chunk data longer than the header said.
        (b"\n#3\nabcd", "BadChunkHeader", 7),
        (b"\n#3\nabc\nX", "BadChunkHeader", 8),
    ];
    for &(bad, want, at) in cases {
        // A valid reply first, in the same read: it is delivered, then the session closes.
        let (events, error, base) = client_fails(BOTH, 1, &cat(&[&good, bad]));
        assert_eq!(events.len(), 1, "{bad:?}: {events:?}");
        assert!(is_reply(&events[0], 1), "{bad:?}: {events:?}");
        let at = base + good.len() as u64 + at;
        assert_eq!(
            kind(&error),
            (want, Some(at)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_huge_chunk_claim_is_refused_before_its_data() {
    // 4294967295 is a legal chunk size but far above the default 1 GiB limit: refused as
    // soon as the header ends, without allocating or waiting for the data.
    let (client, base) = established_client(&Config::client(), BOTH, 0);
    let mut client = client;
    let fed = feed_split(&mut client, b"\n#4294967295\n", &[], Instant::now());
    let error = assert_failed(&fed);
    assert_eq!(kind(&error), ("MessageTooLarge", Some(base)));
    assert!(
        matches!(error, ProtocolError::MessageTooLarge { limit, .. } if limit == 1 << 30),
        "{error:?}"
    );
}

#[test]
fn messages_larger_than_the_limit() {
    let limit = 400;
    let config = Config::client().with_max_message_size(limit);
    // A reply of exactly `limit` bytes is fine, one byte more is not.
    let reply_of = |len: usize| {
        let r = reply_ok(1);
        let pad = len - r.len();
        format!("{}{}", r, " ".repeat(pad))
    };
    assert_eq!(reply_of(limit).len(), limit);

    for bases in [&[BASE_1_0][..], BOTH] {
        let frame = |xml: &str| {
            if bases.len() == 2 {
                chunk(xml)
            } else {
                eom(xml)
            }
        };
        // Exactly at the limit: delivered, in every split.
        let (_, base) = established_client(&config, bases, 1);
        let at_limit = frame(&reply_of(limit));
        for splits in split_variants(at_limit.len()) {
            let (mut client, _) = established_client(&config, bases, 1);
            let fed = feed_split(&mut client, &at_limit, &splits, Instant::now());
            assert_eq!(fed.error, None, "{bases:?} split at {splits:?}");
            assert!(is_reply(&fed.events[0], 1));
        }
        // One byte over, after a valid notification in the same read.
        let over = cat(&[&frame(&notification()), &frame(&reply_of(limit + 1))]);
        let (events, error, _) = client_fails_with(&config, bases, 1, &over);
        assert!(matches!(events[..], [Event::Notification(_)]), "{events:?}");
        let start = base + frame(&notification()).len() as u64;
        assert_eq!(kind(&error), ("MessageTooLarge", Some(start)), "{bases:?}");
        assert!(matches!(error, ProtocolError::MessageTooLarge { limit: l, .. } if l == limit));
    }

    // Chunked: the sum of the chunks counts, and the header alone is enough to refuse.
    let (mut client, base) = established_client(&config, BOTH, 1);
    let fed = feed_split(
        &mut client,
        format!("\n#300\n{}\n#101\n", "x".repeat(300)).as_bytes(),
        &[],
        Instant::now(),
    );
    assert_eq!(kind(&assert_failed(&fed)), ("MessageTooLarge", Some(base)));

    // End-of-message framing: refused once limit + 1 bytes are in, delimiter or not.
    let (mut client, base) = established_client(&config, &[BASE_1_0], 1);
    let fed = feed_split(
        &mut client,
        "x".repeat(limit + 1).as_bytes(),
        &[],
        Instant::now(),
    );
    assert_eq!(kind(&assert_failed(&fed)), ("MessageTooLarge", Some(base)));

    // The hello is held to the limit too, and to its own (smaller) one.
    let hello = server_hello(BOTH);
    let small = Config::client().with_max_message_size(hello.len() - 1);
    let (events, error) = fails_in_every_split(
        || Session::client(small.clone(), Instant::now()),
        &eom(&hello),
    );
    assert!(events.is_empty());
    assert_eq!(kind(&error), ("HelloTooLarge", None));
    let small_hello = Config::client().with_max_hello_size(hello.len() - 1);
    let (_, error) = fails_in_every_split(
        || Session::client(small_hello.clone(), Instant::now()),
        &eom(&hello),
    );
    assert_eq!(
        error,
        ProtocolError::HelloTooLarge {
            limit: hello.len() - 1
        }
    );
}

#[test]
fn message_size_limit_does_not_depend_on_splits() {
    let limit = 400;
    let config = Config::client().with_max_message_size(limit);
    let r = reply_ok(1);
    let at_limit = format!("{r}{}", " ".repeat(limit - r.len()));
    let bytes = cat(&[b"\n", &eom(&at_limit)]);
    let (mut client, _) = established_client(&config, &[BASE_1_0], 1);
    let whole = feed_split(&mut client, &bytes, &[], Instant::now());
    for splits in split_variants(bytes.len()) {
        let (mut client, _) = established_client(&config, &[BASE_1_0], 1);
        let fed = feed_split(&mut client, &bytes, &splits, Instant::now());
        assert_eq!(fed.error, whole.error, "split at {splits:?}");
        assert_eq!(fed.events, whole.events, "split at {splits:?}");
    }
}

// ----- message content -----

#[test]
fn document_type_declarations_are_refused() {
    let good = chunk(&reply_ok(1));
    for doctype in [
        "<!DOCTYPE rpc-reply>".to_string(),
        "<!DOCTYPE rpc-reply [<!ENTITY x \"boom\">]>".to_string(),
        "<!DOCTYPE rpc-reply [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>"
            .to_string(),
        "<!DOCTYPE rpc-reply SYSTEM \"file:///etc/passwd\">".to_string(),
    ] {
        let bad = format!(
            "<?xml version=\"1.0\"?>{doctype}<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><data>&x;</data></rpc-reply>"
        );
        let (events, error, base) = client_fails(BOTH, 2, &cat(&[&good, &chunk(&bad)]));
        assert!(is_reply(&events[0], 1) && events.len() == 1, "{events:?}");
        let at = base + good.len() as u64;
        assert_eq!(kind(&error), ("DoctypeNotAllowed", Some(at)), "{doctype}");
    }
    // In a hello too.
    let hello = format!("<!DOCTYPE hello>{}", server_hello(BOTH));
    let (events, error) = fails_in_every_split(
        || Session::client(Config::client(), Instant::now()),
        &eom(&hello),
    );
    assert!(events.is_empty());
    assert_eq!(kind(&error), ("DoctypeNotAllowed", Some(0)));
}

#[test]
fn undeclared_entities_in_the_envelope_are_refused() {
    let hello = format!(
        "<hello xmlns=\"{NS}\"><capabilities><capability>&xxe;</capability></capabilities>\
<session-id>1</session-id></hello>"
    );
    let (_, error) = fails_in_every_split(
        || Session::client(Config::client(), Instant::now()),
        &eom(&hello),
    );
    assert_eq!(kind(&error), ("MalformedMessage", Some(0)));
}

#[test]
fn invalid_utf8_is_refused() {
    let good = chunk(&reply_ok(1));
    let prefix = format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><data><a>caf");
    for bad_bytes in [
        &b"\xff"[..],
        b"\xc3",             // a lead byte without its continuation
        b"\xc0\xaf",         // an overlong encoding of '/'
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // above U+10FFFF
    ] {
        let mut msg = prefix.clone().into_bytes();
        msg.extend_from_slice(bad_bytes);
        msg.extend_from_slice(b"</a></data></rpc-reply>");
        let mut framed = format!("\n#{}\n", msg.len()).into_bytes();
        framed.extend_from_slice(&msg);
        framed.extend_from_slice(b"\n##\n");
        let (events, error, base) = client_fails(BOTH, 2, &cat(&[&good, &framed]));
        assert!(is_reply(&events[0], 1) && events.len() == 1, "{events:?}");
        assert_eq!(
            error,
            ProtocolError::InvalidUtf8 {
                offset: base + good.len() as u64,
                error_offset: prefix.len(),
            },
            "{bad_bytes:?}"
        );
    }
}

#[test]
fn malformed_xml_is_refused() {
    let good = eom(&reply_ok(1));
    for bad in [
        // Wrong end tag, missing end tag, content after the root, text before it.
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><ok/></rpc>"),
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><ok/>"),
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><ok/></rpc-reply><ok/>"),
        format!("junk<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><ok/></rpc-reply>"),
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\"><ok></rpc-reply>"),
        // (An undeclared prefix and an rpc-error without its mandatory leaves are tolerated
        // device quirks since issue 13; tests/tests/device_quirks.rs checks that strict
        // mode refuses them.)
        "<".to_string(),
    ] {
        let (events, error, base) = client_fails(&[BASE_1_0], 2, &cat(&[&good, &eom(&bad)]));
        assert!(
            is_reply(&events[0], 1) && events.len() == 1,
            "{bad}: {events:?}"
        );
        let at = base + good.len() as u64;
        assert_eq!(kind(&error), ("MalformedMessage", Some(at)), "{bad}");
    }
}

#[test]
fn malformed_attributes_on_the_envelope_are_refused() {
    let good = eom(&reply_ok(1));
    for bad in [
        format!("<rpc-reply message-id=\"2\" message-id=\"3\" xmlns=\"{NS}\"><ok/></rpc-reply>"),
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\" a=\"1\" a=\"2\"><ok/></rpc-reply>"),
        format!("<rpc-reply message-id=\"2\" xmlns=\"{NS}\" junk><ok/></rpc-reply>"),
    ] {
        let (events, error, base) = client_fails(&[BASE_1_0], 2, &cat(&[&good, &eom(&bad)]));
        assert!(
            is_reply(&events[0], 1) && events.len() == 1,
            "{bad}: {events:?}"
        );
        let at = base + good.len() as u64;
        assert_eq!(kind(&error), ("MalformedMessage", Some(at)), "{bad}");
    }
    // A server would echo the attributes into its reply, making its own output malformed.
    let hello = eom(&client_hello(BOTH));
    let bad = chunk(&format!(
        "<rpc message-id=\"1\" xmlns=\"{NS}\" junk><get/></rpc>"
    ));
    let (events, error) = fails_in_every_split(
        || Session::server(Config::server(), 3, Instant::now()),
        &cat(&[&hello, &bad]),
    );
    assert!(
        matches!(events[..], [Event::Established { .. }]),
        "{events:?}"
    );
    assert_eq!(kind(&error), ("MalformedMessage", Some(hello.len() as u64)));
}

#[test]
fn unexpected_messages_are_refused() {
    let good = chunk(&reply_ok(1));
    // A client receiving an <rpc>, or an element NETCONF does not define.
    for bad in [
        rpc("5"),
        "<rpc-reply message-id=\"2\" xmlns=\"urn:not-netconf\"><ok/></rpc-reply>".to_string(),
        "<foo xmlns=\"urn:x\"/>".to_string(),
    ] {
        let (events, error, base) = client_fails(BOTH, 2, &cat(&[&good, &chunk(&bad)]));
        assert!(is_reply(&events[0], 1) && events.len() == 1, "{events:?}");
        let at = base + good.len() as u64;
        assert_eq!(kind(&error), ("UnexpectedMessage", Some(at)), "{bad}");
    }
    // A server receiving an <rpc-reply> or a <notification>.
    let hello = eom(&client_hello(BOTH));
    for bad in [reply_ok(1), notification()] {
        let bytes = cat(&[&hello, &chunk(&rpc("1")), &chunk(&bad)]);
        let (events, error) = fails_in_every_split(
            || Session::server(Config::server(), 3, Instant::now()),
            &bytes,
        );
        assert!(
            matches!(events[..], [Event::Established { .. }, Event::Rpc { .. }]),
            "{events:?}"
        );
        let at = (hello.len() + chunk(&rpc("1")).len()) as u64;
        assert_eq!(kind(&error), ("UnexpectedMessage", Some(at)), "{bad}");
    }
}

#[test]
fn server_tells_the_client_why_before_closing() {
    // An established server answers a malformed message with malformed-message, then closes.
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let bad = chunk(&format!("<rpc message-id=\"9\" xmlns=\"{NS}\"><get></rpc>"));
    let result = pair.server.handle_input(&bad, pair.now);
    assert!(matches!(
        result,
        Err(ProtocolError::MalformedMessage { .. })
    ));
    pair.drive();
    let server_events = pair.take_server_events();
    assert_closed_last(&server_events, &CloseReason::Protocol(result.unwrap_err()));
    // The client gets the error reply, which names no message-id, so it is rejected.
    let client_events = pair.take_client_events();
    assert!(
        matches!(
            client_events[..],
            [Event::MessageRejected {
                error: ProtocolError::MissingMessageId { .. }
            }]
        ),
        "{client_events:?}"
    );
    assert!(pair.client.is_established());
}

// ----- the hello exchange -----

#[test]
fn a_message_before_the_hello() {
    let fresh_client = || Session::client(Config::client(), Instant::now());
    for (msg, element) in [(reply_ok(1), "rpc-reply"), (notification(), "notification")] {
        let bytes = cat(&[&eom(&msg), &eom(&server_hello(BOTH))]);
        let (events, error) = fails_in_every_split(fresh_client, &bytes);
        assert!(events.is_empty());
        assert_eq!(
            error,
            ProtocolError::ExpectedHello {
                offset: 0,
                element: element.into()
            }
        );
    }
    let bytes = eom(&rpc("1"));
    let (_, error) = fails_in_every_split(
        || Session::server(Config::server(), 3, Instant::now()),
        &bytes,
    );
    assert!(
        matches!(&error, ProtocolError::ExpectedHello { element, .. } if element == "rpc"),
        "{error:?}"
    );
}

#[test]
fn a_second_hello() {
    let hello = server_hello(BOTH);
    let first = eom(&hello);
    for second in [chunk(&hello), eom(&hello)] {
        let bytes = cat(&[&first, &chunk(&notification()), &second]);
        let (events, error) =
            fails_in_every_split(|| Session::client(Config::client(), Instant::now()), &bytes);
        assert!(
            matches!(
                events[..],
                [Event::Established { .. }, Event::Notification(_)]
            ),
            "{events:?}"
        );
        let at = (first.len() + chunk(&notification()).len()) as u64;
        assert_eq!(error, ProtocolError::DuplicateHello { offset: at });
    }
    // A server receiving the client's hello twice.
    let hello = eom(&client_hello(&[BASE_1_0]));
    let (_, error) = fails_in_every_split(
        || Session::server(Config::server(), 3, Instant::now()),
        &cat(&[&hello, &hello]),
    );
    assert_eq!(
        error,
        ProtocolError::DuplicateHello {
            offset: hello.len() as u64
        }
    );
}

#[test]
fn no_common_base_version() {
    let base10_client = Config::client().with_capabilities(Capabilities::new([BASE_1_0]));
    let cases = [
        (Config::client(), server_hello(&[]), ""),
        (
            Config::client(),
            server_hello(&["urn:ietf:params:netconf:base:2.0"]),
            "",
        ),
        (base10_client, server_hello(&[BASE_1_1]), "1.1"),
    ];
    for (config, hello, peer) in cases {
        let (events, error) = fails_in_every_split(
            || Session::client(config.clone(), Instant::now()),
            &eom(&hello),
        );
        assert!(events.is_empty());
        assert_eq!(error, ProtocolError::NoCommonBase { peer: peer.into() });
    }
    // A hello without <capabilities> at all is malformed.
    let hello = format!("<hello xmlns=\"{NS}\"><session-id>1</session-id></hello>");
    let (_, error) = fails_in_every_split(
        || Session::client(Config::client(), Instant::now()),
        &eom(&hello),
    );
    assert_eq!(kind(&error), ("MalformedMessage", Some(0)));
}

#[test]
fn bad_session_ids() {
    let client = || Session::client(Config::client(), Instant::now());
    let caps = caps(BOTH);
    for session_id in [
        "",
        "<session-id>0</session-id>",
        "<session-id>abc</session-id>",
        "<session-id>4294967296</session-id>",
        "<session-id/>",
        "<session-id>1</session-id><session-id>2</session-id>",
    ] {
        let hello = format!(
            "<hello xmlns=\"{NS}\"><capabilities>{caps}</capabilities>{session_id}</hello>"
        );
        let (events, error) = fails_in_every_split(client, &eom(&hello));
        assert!(events.is_empty());
        assert_eq!(
            kind(&error),
            ("BadSessionId", None),
            "{session_id}: {error:?}"
        );
    }
    // A client's hello must not carry one.
    let hello = format!(
        "<hello xmlns=\"{NS}\"><capabilities>{caps}</capabilities><session-id>5</session-id></hello>"
    );
    let (_, error) = fails_in_every_split(
        || Session::server(Config::server(), 3, Instant::now()),
        &eom(&hello),
    );
    assert_eq!(kind(&error), ("BadSessionId", None), "{error:?}");
}

#[test]
fn hello_timeout() {
    let t0 = Instant::now();
    let config = Config::client().with_hello_timeout(Duration::from_secs(10));
    let mut client = Session::client(config, t0);
    let deadline = t0 + Duration::from_secs(10);
    assert_eq!(drain(&mut client).deadline, Some(deadline));
    // Early and repeated calls are harmless.
    client.handle_timeout(t0);
    client.handle_timeout(deadline - Duration::from_nanos(1));
    let d = drain(&mut client);
    assert!(d.events.is_empty() && d.deadline == Some(deadline));
    client.handle_timeout(deadline);
    let d = drain(&mut client);
    assert_closed_last(
        &d.events,
        &CloseReason::Protocol(ProtocolError::HelloTimeout),
    );
    assert_eq!(d.deadline, None);
    assert_eq!(client.error(), Some(&ProtocolError::HelloTimeout));

    // In a pair whose hellos were never delivered: both sides time out.
    let mut pair = Pair::new(
        Config::client().with_hello_timeout(Duration::from_secs(3)),
        Config::server().with_hello_timeout(Duration::from_secs(5)),
    );
    pair.advance(Duration::from_secs(4));
    let client_events = pair.take_client_events();
    assert_closed_last(
        &client_events,
        &CloseReason::Protocol(ProtocolError::HelloTimeout),
    );
    // The client's hello went out when the pair was driven after the timeout; the server
    // got it in time.
    assert!(pair.server.is_established());

    // Once established, the hello deadline is gone.
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    assert_eq!(pair.client.next_deadline(), None);
    pair.advance(Duration::from_secs(3600));
    assert!(pair.take_client_events().is_empty());
}

// ----- end of stream -----

#[test]
fn eof_in_the_middle_of_a_message() {
    let reply = chunk(&reply_ok(1));
    let reply_eom = eom(&reply_ok(1));
    let cases: Vec<(&[&str], Vec<u8>)> = vec![
        (BOTH, reply[..reply.len() / 2].to_vec()),
        (BOTH, b"\n#12".to_vec()),
        (BOTH, b"\n#".to_vec()),
        (BOTH, reply[..reply.len() - 1].to_vec()),
        (&[BASE_1_0], reply_eom[..reply_eom.len() / 2].to_vec()),
        (&[BASE_1_0], reply_eom[..reply_eom.len() - 1].to_vec()),
        (&[BASE_1_0], reply_eom[..reply_eom.len() - 6].to_vec()),
    ];
    for (bases, partial) in cases {
        let prefix = if bases.len() == 2 {
            chunk(&notification())
        } else {
            eom(&notification())
        };
        let bytes = cat(&[&prefix, &partial]);
        for splits in split_variants(bytes.len()) {
            let now = Instant::now();
            let (mut client, base) = established_client(&Config::client(), bases, 1);
            let mut fed = feed_split(&mut client, &bytes, &splits, now);
            assert_eq!(fed.error, None);
            assert!(client.is_receiving());
            client.handle_eof(now);
            fed.events.extend(drain(&mut client).events);
            assert!(
                matches!(fed.events[0], Event::Notification(_)),
                "{:?}",
                fed.events
            );
            let Some(Event::Closed {
                reason: CloseReason::Protocol(error),
            }) = fed.events.last()
            else {
                panic!("{:?}", fed.events)
            };
            let at = base + prefix.len() as u64;
            assert_eq!(kind(error), ("TruncatedMessage", Some(at)), "{partial:?}");
            assert_closed_last(&fed.events, &CloseReason::Protocol(error.clone()));
            assert_eq!(fed.events.len(), 2);
        }
    }
    // In the middle of the hello.
    let now = Instant::now();
    let mut client = Session::client(Config::client(), now);
    client.handle_input(b"<hello xmlns", now).unwrap();
    client.handle_eof(now);
    let events = drain(&mut client).events;
    assert!(matches!(
        events[..],
        [Event::Closed {
            reason: CloseReason::Protocol(ProtocolError::TruncatedMessage {
                offset: 0,
                received: 12
            })
        }]
    ));
}

#[test]
fn eof_between_messages() {
    let cases: Vec<(&[&str], Vec<u8>)> = vec![
        (BOTH, chunk(&reply_ok(1))),
        (BOTH, cat(&[&chunk(&reply_ok(1)), b"\n"])),
        (BOTH, cat(&[&chunk(&reply_ok(1)), b"\r\0 \n"])),
        (&[BASE_1_0], eom(&reply_ok(1))),
        (&[BASE_1_0], cat(&[&eom(&reply_ok(1)), b"\r\n "])),
    ];
    for (bases, bytes) in cases {
        let now = Instant::now();
        let (mut client, _) = established_client(&Config::client(), bases, 1);
        let mut fed = feed_split(&mut client, &bytes, &[], now);
        assert!(!client.is_receiving());
        client.handle_eof(now);
        fed.events.extend(drain(&mut client).events);
        assert!(is_reply(&fed.events[0], 1));
        assert_closed_last(&fed.events, &CloseReason::Eof);
        assert_eq!(fed.events.len(), 2);
    }
    // Before anything arrived.
    let now = Instant::now();
    let mut server = Session::server(Config::server(), 1, now);
    server.handle_eof(now);
    assert_closed_last(&drain(&mut server).events, &CloseReason::Eof);
}

// ----- rpc timeouts -----

#[test]
fn rpc_timeout_then_late_reply_is_discarded() {
    let timeout = Duration::from_secs(5);
    let mut pair = Pair::new(
        Config::client().with_rpc_timeout(Some(timeout)),
        Config::server(),
    );
    pair.establish();
    let t0 = pair.now;
    let id = pair.client_rpc(&Get::new());
    assert_eq!(pair.client.next_deadline(), Some(t0 + timeout));
    let request = match pair.take_server_events().as_slice() {
        [Event::Rpc { id, .. }] => *id,
        other => panic!("{other:?}"),
    };

    pair.advance(timeout - Duration::from_millis(1));
    assert!(pair.take_client_events().is_empty());
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.take_client_events(), [Event::RpcTimedOut { id }]);
    assert_eq!(pair.client.state(), State::Established);
    assert_eq!(pair.client.rpcs_in_flight(), 0);
    assert_eq!(pair.client.next_deadline(), None);

    // The late reply is dropped without a word.
    pair.server.send_reply(request, Reply::Ok).unwrap();
    pair.drive();
    assert!(pair.take_client_events().is_empty());
    assert!(pair.client.is_established());

    // And the session goes on.
    let id2 = pair.client_rpc(&Get::new());
    pair.serve_with(|_| Reply::Ok);
    assert!(matches!(
        pair.take_client_events()[..],
        [Event::Reply { id, ref reply }] if id == id2 && reply.content == ReplyContent::Ok
    ));
}

#[test]
fn rpc_timeouts_fire_in_deadline_order() {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let now = pair.now;
    let mut send = |secs: Option<u64>| {
        pair.client
            .send_rpc_with_timeout(&Get::new(), secs.map(Duration::from_secs), now)
            .unwrap()
    };
    let a = send(Some(3));
    let b = send(Some(1));
    let forever = send(None);
    let c = send(Some(2));
    pair.drive();
    pair.advance(Duration::from_secs(3600));
    assert_eq!(
        pair.take_client_events(),
        [b, c, a].map(|id| Event::RpcTimedOut { id })
    );
    assert_eq!(pair.client.rpcs_in_flight(), 1);
    // The one without a timeout is still answered.
    pair.serve_with(|_| Reply::Ok);
    assert!(matches!(
        pair.take_client_events()[..],
        [Event::Reply { id, .. }] if id == forever
    ));
}

#[test]
fn cancelled_rpc_reply_is_discarded() {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let id = pair.client_rpc(&Get::new());
    assert!(pair.client.cancel_rpc(id));
    assert!(!pair.client.cancel_rpc(id));
    pair.serve_with(|_| Reply::Ok);
    assert!(pair.take_client_events().is_empty());
    assert_eq!(pair.client.next_deadline(), None);
}

/// Issue 11 item 1: an RPC timeout fails that RPC only. A `lock` with a short timeout
/// queued behind a large reply that is still arriving times out, and the large reply still
/// arrives (before the fix, the session closed with StalledMidMessage and lost it).
#[test]
fn rpc_timeout_while_the_peer_is_mid_message_fails_only_that_rpc() {
    for framing_bases in [&[BASE_1_0][..], BOTH] {
        let mut pair = Pair::new(
            Config::client()
                .with_rpc_timeout(Some(Duration::from_secs(60)))
                .with_stall_timeout(Some(Duration::from_secs(30))),
            Config::server().with_capabilities(Capabilities::new(framing_bases.iter().copied())),
        );
        pair.establish();
        let get = pair.client_rpc(&Get::new());
        let lock = pair
            .client
            .send_rpc_with_timeout(
                &netconf_proto::operations::Lock::new(Datastore::Running),
                Some(Duration::from_secs(5)),
                pair.now,
            )
            .unwrap();
        pair.drive();
        let requests: Vec<_> = pair
            .take_server_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Rpc { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(requests.len(), 2);
        let big = format!("<x xmlns=\"urn:x\">{}</x>", "y".repeat(100_000));
        pair.server
            .send_reply(requests[0], Reply::data(big.clone()).unwrap())
            .unwrap();
        pair.server.send_reply(requests[1], Reply::Ok).unwrap();
        let replies = drain(&mut pair.server).transmitted;
        // The large reply trickles in: a piece every second, 10 s in all.
        let pieces: Vec<&[u8]> = replies.chunks(replies.len() / 10 + 1).collect();
        let mut events = Vec::new();
        for piece in pieces {
            pair.advance(Duration::from_secs(1));
            events.extend(pair.take_client_events());
            pair.client.handle_input(piece, pair.now).unwrap();
            events.extend(drain(&mut pair.client).events);
        }
        assert_eq!(events[0], Event::RpcTimedOut { id: lock }, "{events:?}");
        assert!(
            matches!(&events[1], Event::Reply { id, reply } if *id == get
                && reply.data().unwrap().as_str() == big),
            "{events:?}"
        );
        // The lock's late reply was dropped without a word; the session goes on.
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(pair.client.state(), State::Established);
    }
}

/// A stall is its own deadline: no byte for the stall timeout while in the middle of a
/// message, whatever the RPC timeouts.
#[test]
fn a_peer_silent_mid_message_for_the_stall_timeout_stalls_the_session() {
    for framing_bases in [&[BASE_1_0][..], BOTH] {
        let stall = Duration::from_secs(20);
        let mut pair = Pair::new(
            Config::client()
                .with_rpc_timeout(None)
                .with_stall_timeout(Some(stall)),
            Config::server().with_capabilities(Capabilities::new(framing_bases.iter().copied())),
        );
        pair.establish();
        pair.client_rpc(&Get::new());
        let request = match pair.take_server_events().as_slice() {
            [Event::Rpc { id, .. }] => *id,
            other => panic!("{other:?}"),
        };
        pair.server
            .send_reply(request, Reply::data("<x xmlns=\"urn:x\"/>").unwrap())
            .unwrap();
        let reply = drain(&mut pair.server).transmitted;
        let half = &reply[..reply.len() / 2];
        pair.client.handle_input(half, pair.now).unwrap();
        assert!(pair.client.is_receiving());
        assert_eq!(pair.client.next_deadline(), Some(pair.now + stall));

        pair.advance(stall - Duration::from_millis(1));
        assert!(pair.take_client_events().is_empty());
        pair.advance(Duration::from_millis(1));
        let events = pair.take_client_events();
        let Some(Event::Closed {
            reason: CloseReason::Protocol(error),
        }) = events.last()
        else {
            panic!("{events:?}")
        };
        assert!(
            matches!(error, ProtocolError::StalledMidMessage { received, idle, .. }
                if *received > 0 && *idle == stall),
            "{error:?}"
        );
        assert_closed_last(&events, &CloseReason::Protocol(error.clone()));
        assert_eq!(events.len(), 1);
    }
}

// ----- closing -----

#[test]
fn close_session_round_trip() {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let id = pair.client.close(pair.now).expect("close-session sent");
    assert_eq!(pair.client.state(), State::Closing);
    assert_eq!(pair.client.close(pair.now), None, "only once");
    pair.drive();
    let client_events = pair.take_client_events();
    assert!(
        matches!(
            &client_events[..],
            [Event::Reply { id: got, reply }, Event::Closed { reason: CloseReason::CloseSession }]
                if *got == id && reply.content == ReplyContent::Ok
        ),
        "{client_events:?}"
    );
    // The server answered by itself: no Rpc event for close-session.
    assert_eq!(
        pair.take_server_events(),
        [Event::Closed {
            reason: CloseReason::CloseSession
        }]
    );
    assert!(pair.client.is_closed() && pair.server.is_closed());
    assert_eq!(pair.client.next_deadline(), None);
}

#[test]
fn close_without_an_answer_and_before_establishment() {
    // The close-session reply never comes: the session closes at the close timeout, which
    // applies whatever the RPC timeout (issue 11 item 6: with no RPC timeout it waited
    // forever).
    for rpc_timeout in [None, Some(Duration::from_secs(600))] {
        let close = Duration::from_secs(3);
        let config = Config::client()
            .with_rpc_timeout(rpc_timeout)
            .with_close_timeout(close);
        let (mut client, _) = established_client(&config, BOTH, 0);
        let now = Instant::now();
        client.close(now).unwrap();
        let d = drain(&mut client);
        assert!(String::from_utf8_lossy(&d.transmitted).contains("<close-session/>"));
        assert!(d.events.is_empty());
        assert_eq!(d.deadline, Some(now + close));
        client.handle_timeout(now + close);
        assert_closed_last(&drain(&mut client).events, &CloseReason::CloseTimedOut);
    }
    let now = Instant::now();

    // Before the hello exchange, and on a server, close() ends the session at once.
    let mut client = Session::client(Config::client(), now);
    assert_eq!(client.close(now), None);
    assert_closed_last(&drain(&mut client).events, &CloseReason::Local);
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    assert_eq!(pair.server.close(pair.now), None);
    pair.drive();
    assert_closed_last(&pair.take_server_events(), &CloseReason::Local);
}

// ----- usage errors -----

/// What a usage error must leave alone.
fn snapshot(s: &Session) -> (State, usize, Option<Instant>, bool, Option<ProtocolError>) {
    (
        s.state(),
        s.rpcs_in_flight(),
        s.next_deadline(),
        s.is_receiving(),
        s.error().cloned(),
    )
}

/// Runs `misuse` on a drained session, checks that it fails and changes nothing observable
/// (no bytes, no events, same state), and returns the error.
fn misuse<T: std::fmt::Debug>(
    s: &mut Session,
    call: impl FnOnce(&mut Session) -> Result<T, UsageError>,
) -> UsageError {
    let d = drain(s);
    assert!(
        d.events.is_empty() && d.transmitted.is_empty(),
        "drain first: {d:?}"
    );
    let before = snapshot(s);
    let error = call(s).expect_err("misuse must fail");
    assert_eq!(snapshot(s), before, "{error:?} changed the session");
    let d = drain(s);
    assert!(
        d.events.is_empty() && d.transmitted.is_empty(),
        "{error:?}: {d:?}"
    );
    error
}

#[test]
fn usage_errors_change_nothing() {
    let now = Instant::now();
    let get = Get::new();
    let event = "<e xmlns=\"urn:e\"/>";
    let time = "2026-01-01T00:00:00Z";

    // Before the hello exchange.
    let mut client = Session::client(Config::client(), now);
    drain(&mut client);
    let e = misuse(&mut client, |s| s.send_rpc(&get, now));
    assert_eq!(e, UsageError::NotEstablished);
    // The failed call consumed no message-id.
    client.handle_input(&eom(&server_hello(BOTH)), now).unwrap();
    assert_eq!(client.send_rpc(&get, now), Ok(MessageId(1)));
    drain(&mut client);

    // The server's commands on a client.
    let stray = server_request_id();
    let e = misuse(&mut client, |s| s.send_reply(stray, Reply::Ok));
    assert_eq!(e, UsageError::WrongRole("send_reply", "server"));
    let e = misuse(&mut client, |s| s.send_notification(time, event));
    assert_eq!(e, UsageError::WrongRole("send_notification", "server"));

    // A server before the hello exchange, and the client's command on a server.
    let mut server = Session::server(Config::server(), 3, now);
    drain(&mut server);
    let e = misuse(&mut server, |s| s.send_notification(time, event));
    assert_eq!(e, UsageError::NotEstablished);
    let e = misuse(&mut server, |s| s.send_rpc(&get, now));
    assert_eq!(e, UsageError::WrongRole("send_rpc", "client"));

    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    // A handle from another session names no request here.
    let e = misuse(&mut pair.server, |s| s.send_reply(stray, Reply::Ok));
    assert_eq!(e, UsageError::UnknownRequest(stray));
    let e = misuse(&mut pair.server, |s| s.send_notification(time, "<e>"));
    assert!(matches!(e, UsageError::MalformedXml(_)), "{e:?}");

    // A request can be answered once.
    pair.client_rpc(&GetConfig::new(Datastore::Running));
    let request = match pair.take_server_events().as_slice() {
        [Event::Rpc { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    pair.server.send_reply(request, Reply::Ok).unwrap();
    pair.drive();
    let e = misuse(&mut pair.server, |s| s.send_reply(request, Reply::Ok));
    assert_eq!(e, UsageError::UnknownRequest(request));

    // After closing.
    pair.client.close(pair.now).unwrap();
    pair.drive();
    assert!(pair.client.is_closed() && pair.server.is_closed());
    let e = misuse(&mut pair.client, |s| s.send_rpc(&get, now));
    assert_eq!(e, UsageError::Closed);
    let e = misuse(&mut pair.server, |s| s.send_reply(request, Reply::Ok));
    assert_eq!(e, UsageError::Closed);
    let e = misuse(&mut pair.server, |s| s.send_notification(time, event));
    assert_eq!(e, UsageError::Closed);

    // While closing (close-session sent, not answered).
    let (mut client, _) = established_client(&Config::client(), BOTH, 0);
    client.close(now).unwrap();
    drain(&mut client);
    assert_eq!(client.state(), State::Closing);
    let e = misuse(&mut client, |s| s.send_rpc(&get, now));
    assert_eq!(e, UsageError::Closed);
}

// ----- the server's lenient paths -----

#[test]
fn server_answers_rpc_without_message_id_and_survives() {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    // Hand-written: the client session always sets a message-id.
    let bad = chunk(&format!("<rpc xmlns=\"{NS}\"><get/></rpc>"));
    pair.server.handle_input(&bad, pair.now).unwrap();
    pair.drive();
    assert!(pair.take_server_events().is_empty());
    assert!(pair.server.is_established());
    let events = pair.take_client_events();
    let [Event::MessageRejected {
        error: ProtocolError::MissingMessageId { .. },
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    // The answer is a missing-attribute rpc-error naming the attribute.
    let mut server = Session::server(Config::server(), 3, pair.now);
    server
        .handle_input(&cat(&[&eom(&client_hello(BOTH)), &bad]), pair.now)
        .unwrap();
    let sent = String::from_utf8(drain(&mut server).transmitted).unwrap();
    let answer = &sent[sent.find("]]>]]>").unwrap() + 6..];
    for needle in [
        "<error-type>rpc</error-type>",
        "<error-tag>missing-attribute</error-tag>",
        "<error-severity>error</error-severity>",
        "<bad-attribute>message-id</bad-attribute>",
    ] {
        assert!(answer.contains(needle), "{needle} not in {answer}");
    }

    // And the next rpc is served normally.
    let id = pair.client_rpc(&Get::new());
    pair.serve_with(|_| Reply::Ok);
    assert!(matches!(pair.take_client_events()[..], [Event::Reply { id: got, .. }] if got == id));
}

// ----- Closed is final -----

#[test]
fn closed_is_reported_exactly_once() {
    let now = Instant::now();
    let later = now + Duration::from_secs(100_000);
    // After a protocol error.
    let (mut client, _) = established_client(&Config::client(), BOTH, 2);
    let err = client.handle_input(b"\n#0\n", now).unwrap_err();
    let mut events = drain(&mut client).events;
    client.handle_eof(now);
    client.handle_timeout(later);
    client.abort();
    assert_eq!(client.close(now), None);
    assert_eq!(
        client.handle_input(&chunk(&reply_ok(1)), now),
        Err(err.clone())
    );
    client.handle_eof(now);
    events.extend(drain(&mut client).events);
    assert_closed_last(&events, &CloseReason::Protocol(err));
    assert_eq!(events.len(), 1);
    assert_eq!(client.rpcs_in_flight(), 0);

    // After EOF, after abort, after a hello timeout.
    let finishers: [fn(&mut Session, Instant); 3] = [
        |s, now| s.handle_eof(now),
        |s, _| s.abort(),
        |s, now| s.handle_timeout(now + Duration::from_secs(3600)),
    ];
    for finish in finishers {
        let mut s = Session::client(Config::client(), now);
        finish(&mut s, now);
        let mut events = drain(&mut s).events;
        s.handle_eof(now);
        s.abort();
        s.handle_timeout(later);
        assert_eq!(s.close(now), None);
        assert_eq!(
            s.handle_input(&eom(&server_hello(BOTH)), now).is_ok(),
            s.error().is_none()
        );
        events.extend(drain(&mut s).events);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Closed { .. }))
                .count(),
            1,
            "{events:?}"
        );
        assert!(matches!(events.last(), Some(Event::Closed { .. })));
        assert!(s.is_closed());
        assert_eq!(s.next_deadline(), None);
    }

    // After close-session, with the server's EOF arriving too.
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    pair.client.close(pair.now);
    pair.drive();
    pair.client.handle_eof(pair.now);
    pair.server.handle_eof(pair.now);
    pair.client.abort();
    pair.drive();
    assert_closed_last(&pair.take_client_events(), &CloseReason::CloseSession);
    assert_closed_last(&pair.take_server_events(), &CloseReason::CloseSession);
}

/// A request handle from a session of its own (valid there, unknown anywhere else).
fn server_request_id() -> netconf_proto::RequestId {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    pair.client_rpc(&Get::new());
    match pair.take_server_events().as_slice() {
        [Event::Rpc { id, .. }] => *id,
        other => panic!("{other:?}"),
    }
}
