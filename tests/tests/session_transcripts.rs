//! Split invariance: a session must report the same events however the byte stream is cut.
//!
//! Each test builds a transcript of what one side sends (the server's hello, replies and
//! notifications for a client; the client's hello and rpcs for a server) and feeds it to
//! fresh sessions whole, byte by byte, split at every offset into two pieces, with empty
//! pieces, and on a grid of three-piece splits (see [`split_variants`]). Every run must
//! produce exactly the events of the whole run, and each event must come out of the very
//! `handle_input` call that completes its message (nothing is held back until more bytes
//! arrive). [`feed_split`] drains after every piece and checks the drainage guarantee.
//!
//! # Why client transcripts come in two parts
//! A client can only `send_rpc` once established, and a reply is matched against the rpcs
//! in flight, so a correct server can never put a reply in the same read as its hello. A
//! client transcript is therefore a `hello` part (the server's hello plus whatever may
//! legitimately share its read: notifications, filler) and a `rest` part (the replies),
//! with the rpcs sent in between. Each part is cut in every way while the other is fed
//! whole. The hello/reply boundary is covered by [`hello_and_unsolicited_reply_in_one_read`]
//! (the reply is correctly rejected as unknown) and, in the other direction, by the server
//! transcripts, where the client's hello and its first rpcs really do share one read.

use std::time::Instant;

use netconf_proto::capabilities::{Capabilities, BASE_1_0, BASE_1_1};
use netconf_proto::operations::{Datastore, Get, GetConfig};
use netconf_proto::{Config, Event, Output, Reply, ReplyContent, Session};
use netconf_tests::pair::{drain, feed_split, split_variants, Fed, Pair};

const NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const NS_NOTIF: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

/// A byte stream plus where each event-producing message ends in it.
#[derive(Debug, Clone, Default)]
struct Transcript {
    bytes: Vec<u8>,
    /// End offset (exclusive) of every message that produces exactly one event.
    ends: Vec<usize>,
}

impl Transcript {
    fn new() -> Self {
        Self::default()
    }

    /// A framed message that produces one event.
    fn message(mut self, framed: Vec<u8>) -> Self {
        self.bytes.extend(framed);
        self.ends.push(self.bytes.len());
        self
    }

    /// Bytes that produce no event (filler between messages).
    fn silent(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }
}

/// `xml` followed by the end-of-message delimiter.
fn eom(xml: &str) -> Vec<u8> {
    let mut out = xml.as_bytes().to_vec();
    out.extend_from_slice(b"]]>]]>");
    out
}

/// `xml` in chunked framing, a new chunk starting at each byte offset in `cuts` (which may
/// fall inside a UTF-8 character: chunks are octets).
fn chunks(xml: &str, cuts: &[usize]) -> Vec<u8> {
    let bytes = xml.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        out.extend_from_slice(format!("\n#{}\n", end - start).as_bytes());
        out.extend_from_slice(&bytes[start..end]);
        start = end;
    }
    out.extend_from_slice(b"\n##\n");
    out
}

/// Byte offset of `needle` inside `xml`, plus `delta` (to land inside a character).
fn at(xml: &str, needle: &str, delta: usize) -> usize {
    xml.find(needle).expect("needle present") + delta
}

fn server_hello(session_id: u32, bases: &[&str]) -> String {
    let mut caps: String = bases
        .iter()
        .map(|b| format!("<capability>{b}</capability>"))
        .collect();
    caps.push_str("<capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>");
    caps.push_str("<capability>http://example.com/m?module=m&amp;revision=2024-01-01</capability>");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hello xmlns=\"{NS}\">\n  <capabilities>{caps}</capabilities>\n  <session-id>{session_id}</session-id>\n</hello>"
    )
}

fn client_hello(bases: &[&str]) -> String {
    let caps: String = bases
        .iter()
        .map(|b| format!("<capability>{b}</capability>"))
        .collect();
    format!("<hello xmlns=\"{NS}\"><capabilities>{caps}</capabilities></hello>")
}

fn reply_data(id: &str, data: &str) -> String {
    format!("<rpc-reply message-id=\"{id}\" xmlns=\"{NS}\"><data>{data}</data></rpc-reply>")
}

fn reply_ok(id: &str) -> String {
    format!("<rpc-reply message-id=\"{id}\" xmlns=\"{NS}\"><ok/></rpc-reply>")
}

fn notification(time: &str, content: &str) -> String {
    format!(
        "<notification xmlns=\"{NS_NOTIF}\"><eventTime>{time}</eventTime>{content}</notification>"
    )
}

/// Data with multi-byte UTF-8, CDATA sections whose bytes start the `]]>]]>` delimiter
/// without completing it (`]]>]]<`, `]]]>`), and escaped delimiter look-alikes.
const DATA_UTF8: &str = "<top xmlns=\"urn:example:t\"><name>café é</name><emoji>😀😀</emoji>\
<c><![CDATA[a]]>]]<![CDATA[x]]]></c><m>]]&gt;]]&gt; &lt;tag&gt; &amp;</m></top>";

const EVENT: &str = "<event xmlns=\"urn:example:e\"><msg>Grüße 😀</msg></event>";

/// About 3 KB of data, so chunk headers such as `\n#1234\n` occur.
fn big_data() -> String {
    let mut s = String::from("<big xmlns=\"urn:example:b\">");
    for i in 0..80 {
        s.push_str(&format!("<item><k>{i}</k><v>ünïcødé 😀 {i}</v></item>"));
    }
    s.push_str("</big>");
    s
}

/// One line per event, for readable expectations.
fn describe(ev: &Event) -> String {
    match ev {
        Event::Established {
            session_id,
            framing,
            ..
        } => format!("established {session_id} {framing:?}"),
        Event::Reply { id, reply } => {
            let mut s = match &reply.content {
                ReplyContent::Ok => format!("reply {id} ok"),
                ReplyContent::Data(d) => format!("reply {id} data {d}"),
                ReplyContent::Other(x) => format!("reply {id} other {x}"),
                ReplyContent::Empty => format!("reply {id} empty"),
                other => format!("reply {id} {other:?}"),
            };
            for e in &reply.errors {
                s.push_str(&format!(" error {e}"));
            }
            s
        }
        Event::Notification(n) => format!("notification {} {}", n.event_time, n.content),
        Event::Rpc { request, .. } => format!(
            "rpc {} {}{} {}",
            request.message_id,
            if request.operation.namespace == NS {
                ""
            } else {
                "(other ns) "
            },
            request.operation.name,
            request.body
        ),
        Event::RpcTimedOut { id } => format!("timed out {id}"),
        Event::MessageRejected { error } => format!("rejected {error}"),
        Event::Closed { reason } => format!("closed {reason:?}"),
        other => format!("{other:?}"),
    }
}

fn describe_all(events: &[Event]) -> Vec<String> {
    events.iter().map(describe).collect()
}

/// Checks that after each piece exactly the messages completed so far have their events.
fn assert_prompt(t: &Transcript, splits: &[usize], fed: &Fed) {
    let piece_ends = splits.iter().copied().chain([t.bytes.len()]);
    for (i, end) in piece_ends.enumerate() {
        let complete = t.ends.iter().filter(|&&e| e <= end).count();
        assert_eq!(
            fed.events_after_piece[i], complete,
            "splits {splits:?}: after the piece ending at byte {end}, {complete} messages are \
             complete but {} events came out",
            fed.events_after_piece[i]
        );
    }
}

/// A client fed `hello` cut at `hello_splits`, then made to send `rpcs` `<get>`s, then fed
/// `rest` cut at `rest_splits`.
fn run_client(
    config: &Config,
    hello: &Transcript,
    hello_splits: &[usize],
    rpcs: usize,
    rest: &Transcript,
    rest_splits: &[usize],
) -> (Fed, Fed) {
    let now = Instant::now();
    let mut client = Session::client(config.clone(), now);
    drain(&mut client);
    let a = feed_split(&mut client, &hello.bytes, hello_splits, now);
    for _ in 0..rpcs {
        client.send_rpc(&Get::new(), now).expect("established");
    }
    drain(&mut client);
    let b = feed_split(&mut client, &rest.bytes, rest_splits, now);
    (a, b)
}

/// Runs a client transcript under every split of each part and checks the events against
/// `expected` (whole run) and against the whole run (every other run). Returns the events.
fn check_client(
    config: &Config,
    hello: &Transcript,
    rpcs: usize,
    rest: &Transcript,
    expected: &[String],
) -> Vec<Event> {
    let (a, b) = run_client(config, hello, &[], rpcs, rest, &[]);
    assert_eq!(a.error, None);
    assert_eq!(b.error, None);
    let whole: Vec<Event> = a.events.iter().chain(&b.events).cloned().collect();
    assert_eq!(describe_all(&whole), expected);
    assert_prompt(hello, &[], &a);
    assert_prompt(rest, &[], &b);

    for splits in split_variants(hello.bytes.len()) {
        let (a2, b2) = run_client(config, hello, &splits, rpcs, rest, &[]);
        assert_eq!(a2.events, a.events, "hello part split at {splits:?}");
        assert_eq!(b2.events, b.events, "hello part split at {splits:?}");
        assert_prompt(hello, &splits, &a2);
    }
    for splits in split_variants(rest.bytes.len()) {
        let (a2, b2) = run_client(config, hello, &[], rpcs, rest, &splits);
        assert_eq!(a2.events, a.events);
        assert_eq!(b2.events, b.events, "rest split at {splits:?}");
        assert_eq!(b2.error, None);
        assert_prompt(rest, &splits, &b2);
    }
    whole
}

/// Runs a server transcript under every split; the events and every byte the server sends
/// must not depend on the split. Returns the whole run.
fn check_server(config: &Config, t: &Transcript, expected: &[String]) -> Fed {
    let run = |splits: &[usize]| {
        let now = Instant::now();
        let mut server = Session::server(config.clone(), 9, now);
        feed_split(&mut server, &t.bytes, splits, now)
    };
    let whole = run(&[]);
    assert_eq!(whole.error, None);
    assert_eq!(describe_all(&whole.events), expected);
    assert_prompt(t, &[], &whole);
    for splits in split_variants(t.bytes.len()) {
        let fed = run(&splits);
        assert_eq!(fed.events, whole.events, "split at {splits:?}");
        assert_eq!(fed.transmitted, whole.transmitted, "split at {splits:?}");
        assert_eq!(fed.error, None);
        assert_prompt(t, &splits, &fed);
    }
    whole
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn base10_only() -> Config {
    Config::client().with_capabilities(Capabilities::new([BASE_1_0]))
}

#[test]
fn base10_replies_and_notifications_two_per_read() {
    let hello = Transcript::new()
        .message(eom(&server_hello(17, &[BASE_1_0])))
        .message(eom(&notification("2026-01-01T00:00:00Z", EVENT)));
    let error_reply = format!(
        "<rpc-reply message-id=\"3\" xmlns=\"{NS}\"><rpc-error><error-type>application</error-type>\
<error-tag>invalid-value</error-tag><error-severity>error</error-severity>\
<error-message xml:lang=\"en\">ungültig 😀</error-message></rpc-error></rpc-reply>"
    );
    let rest = Transcript::new()
        .message(eom(&reply_data("1", DATA_UTF8)))
        .message(eom(&notification("2026-01-01T00:00:01Z", EVENT)))
        .message(eom(&reply_ok("2")))
        .message(eom(&error_reply));
    let expected = [
        "established 17 EndOfMessage".to_string(),
        format!("notification 2026-01-01T00:00:00Z {EVENT}"),
        format!("reply 1 data {DATA_UTF8}"),
        format!("notification 2026-01-01T00:00:01Z {EVENT}"),
        "reply 2 ok".into(),
        "reply 3 empty error error invalid-value (application): ungültig 😀".into(),
    ];
    // A client offering both versions and one offering base:1.0 only end up the same.
    check_client(&Config::client(), &hello, 3, &rest, &expected);
    check_client(&base10_only(), &hello, 3, &rest, &expected);
}

#[test]
fn base11_multi_chunk_messages_and_utf8_across_chunks() {
    let big = big_data();
    let reply1 = reply_data("1", &big);
    assert!(reply1.len() > 2 * 1234 + 100);
    // `\n#1234\n`, a chunk boundary inside a 4-byte character, and a one-byte chunk.
    let emoji_after_1234 = 1234 + reply1[1234..].find('😀').unwrap() + 2;
    let reply1_cuts = [1234, emoji_after_1234, emoji_after_1234 + 1];
    let notif = notification("2026-01-01T00:00:00Z", EVENT);
    let notif_cuts = [at(&notif, "ü", 1), at(&notif, "😀", 1)];
    let reply2 = format!(
        "<nc:rpc-reply xmlns:nc=\"{NS}\" message-id=\"2\"><nc:data>{DATA_UTF8}</nc:data></nc:rpc-reply>"
    );
    let reply3 = reply_ok("3");

    let hello = Transcript::new()
        .message(eom(&server_hello(4_000_000_000, &[BASE_1_0, BASE_1_1])))
        // The first chunked message shares the hello's read: the framing switches mid-read.
        .message(chunks(&notif, &notif_cuts));
    let rest = Transcript::new()
        .message(chunks(&reply1, &reply1_cuts))
        .message(chunks(&notif, &[]))
        .message(chunks(
            &reply2,
            &[at(&reply2, "é", 1), at(&reply2, "]]>", 2)],
        ))
        .message(chunks(&reply3, &[1]));
    let expected = [
        "established 4000000000 Chunked".to_string(),
        format!("notification 2026-01-01T00:00:00Z {EVENT}"),
        format!("reply 1 data {big}"),
        format!("notification 2026-01-01T00:00:00Z {EVENT}"),
        format!("reply 2 data {DATA_UTF8}"),
        "reply 3 ok".into(),
    ];
    assert!(rest.bytes.windows(7).any(|w| w == b"\n#1234\n"));
    check_client(&Config::client(), &hello, 3, &rest, &expected);
}

#[test]
fn base11_peer_that_keeps_end_of_message_framing_is_accepted() {
    let hello = Transcript::new().message(eom(&server_hello(5, &[BASE_1_0, BASE_1_1])));
    let expected = strings(&[
        "established 5 Chunked",
        "reply 1 ok",
        "reply 2 data <x xmlns=\"urn:x\">é</x>",
    ]);
    // Straight into `<`, and after a newline (which looks like a chunk header's start).
    for lead in [&b""[..], b"\n", b"\r\n", b" \t\0\n\n"] {
        let rest = Transcript::new()
            .silent(lead)
            .message(eom(&reply_ok("1")))
            .message(eom(&reply_data("2", "<x xmlns=\"urn:x\">é</x>")));
        check_client(&Config::client(), &hello, 2, &rest, &expected);
    }
}

#[test]
fn whitespace_between_messages() {
    let expected = strings(&["established 5 EndOfMessage", "reply 1 ok", "reply 2 ok"]);
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_0])))
        .silent(b"\n");
    let rest = Transcript::new()
        .silent(b"\r\n\t ")
        .message(eom(&reply_ok("1")))
        .silent(b"\n")
        .message(eom(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            reply_ok("2")
        )))
        .silent(b"\n\n");
    check_client(&Config::client(), &hello, 2, &rest, &expected);

    let expected = strings(&["established 5 Chunked", "reply 1 ok", "reply 2 ok"]);
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_1])))
        .silent(b"\r");
    // Whitespace before the `\n` of the next chunk header, or more newlines.
    let rest = Transcript::new()
        .silent(b"\r\t ")
        .message(chunks(&reply_ok("1"), &[]))
        .silent(b"\n\n")
        .message(chunks(&reply_ok("2"), &[]))
        .silent(b" \r\n");
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn nul_bytes_between_chunked_messages() {
    let expected = strings(&["established 5 Chunked", "reply 1 ok", "reply 2 ok"]);
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_1])))
        .silent(b"\0\0");
    // NULs before the `\n` of the next chunk header.
    let rest = Transcript::new()
        .silent(b"\0")
        .message(chunks(&reply_ok("1"), &[]))
        .silent(b"\0\0 \0")
        .message(chunks(&reply_ok("2"), &[]))
        .silent(b"\0");
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn filler_after_a_newline_between_chunked_messages() {
    let expected = strings(&["established 5 Chunked", "reply 1 ok", "reply 2 ok"]);
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_1])))
        .silent(b"\n ");
    let rest = Transcript::new()
        .silent(b"\n")
        .message(chunks(&reply_ok("1"), &[]))
        .silent(b"\n\0\r\n")
        .message(chunks(&reply_ok("2"), &[]));
    check_client(&Config::client(), &hello, 2, &rest, &expected);

    // A base:1.1 peer that falls back to `]]>]]>` after a newline and an indent.
    let hello = Transcript::new().message(eom(&server_hello(5, &[BASE_1_1])));
    let rest = Transcript::new()
        .silent(b"\n  ")
        .message(eom(&reply_ok("1")))
        .message(eom(&reply_ok("2")));
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn nul_bytes_between_end_of_message_messages() {
    let expected = strings(&["established 5 EndOfMessage", "reply 1 ok", "reply 2 ok"]);
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_0])))
        .silent(b"\0\0");
    let rest = Transcript::new()
        .silent(b"\0")
        .message(eom(&reply_ok("1")))
        .silent(b"\0\0\n\0")
        .message(eom(&reply_ok("2")));
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn ambiguous_reply_without_message_id_is_rejected_and_the_session_goes_on() {
    for base in [BASE_1_0, BASE_1_1] {
        let frame = |xml: &str| match base {
            BASE_1_0 => eom(xml),
            _ => chunks(xml, &[]),
        };
        let hello_xml = server_hello(5, &[base]);
        let hello = Transcript::new().message(eom(&hello_xml));
        let bad = format!("<rpc-reply xmlns=\"{NS}\"><ok/></rpc-reply>");
        let rest = Transcript::new()
            .message(frame(&bad))
            .message(frame(&reply_ok("1")));
        let offset = hello.bytes.len();
        let framing = if base == BASE_1_0 {
            "EndOfMessage"
        } else {
            "Chunked"
        };
        let expected = [
            format!("established 5 {framing}"),
            format!("rejected <rpc-reply> without a message-id (message at byte {offset})"),
            "reply 1 ok".into(),
        ];
        // Two RPCs in flight: which one an id-less reply answers is ambiguous, so it is
        // rejected (with one in flight it is matched to it: tests/tests/device_quirks.rs).
        let events = check_client(&Config::client(), &hello, 2, &rest, &expected);
        assert!(matches!(
            &events[1],
            Event::MessageRejected { error: netconf_proto::ProtocolError::MissingMessageId { offset: o } }
                if *o == offset as u64
        ));
    }
}

#[test]
fn reply_with_unknown_message_id_is_rejected() {
    let hello = Transcript::new().message(eom(&server_hello(5, &[BASE_1_0, BASE_1_1])));
    let rest = Transcript::new()
        .message(chunks(&reply_ok("99"), &[]))
        .message(chunks(&reply_ok("not-a-number"), &[]))
        .message(chunks(&reply_ok("1"), &[]));
    let start = hello.bytes.len();
    let second = start + chunks(&reply_ok("99"), &[]).len();
    let expected = [
        "established 5 Chunked".to_string(),
        format!("rejected <rpc-reply> for unknown message-id \"99\" (message at byte {start})"),
        format!(
            "rejected <rpc-reply> for unknown message-id \"not-a-number\" (message at byte {second})"
        ),
        "reply 1 ok".into(),
    ];
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn hello_and_unsolicited_reply_in_one_read() {
    // A reply can only share the hello's read if nothing was asked yet: it is rejected as
    // unknown, and the same id works once the rpc has really been sent.
    let hello = Transcript::new()
        .message(eom(&server_hello(5, &[BASE_1_0, BASE_1_1])))
        .message(chunks(&notification("2026-01-01T00:00:00Z", EVENT), &[]))
        .message(chunks(&reply_ok("1"), &[]));
    let rest = Transcript::new().message(chunks(&reply_ok("1"), &[]));
    let offset = hello.bytes.len() - chunks(&reply_ok("1"), &[]).len();
    let expected = [
        "established 5 Chunked".to_string(),
        format!("notification 2026-01-01T00:00:00Z {EVENT}"),
        format!("rejected <rpc-reply> for unknown message-id \"1\" (message at byte {offset})"),
        "reply 1 ok".into(),
    ];
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

#[test]
fn server_hello_and_rpcs_in_one_read_base11() {
    let rpc1 = format!(
        "<rpc message-id=\"101\" xmlns=\"{NS}\"><get-config><source><running/></source></get-config></rpc>"
    );
    let rpc2 = format!(
        "<nc:rpc xmlns:nc=\"{NS}\" message-id=\"a b\" nc:extra=\"x\"><nc:edit-config>\
<nc:target><nc:candidate/></nc:target><nc:config><top xmlns=\"urn:example:t\">\
<name>café 😀</name></top></nc:config></nc:edit-config></nc:rpc>"
    );
    let rpc3 = format!("<rpc message-id=\"103\" xmlns=\"{NS}\"><close-session/></rpc>");
    let t = Transcript::new()
        .message(eom(&client_hello(&[BASE_1_0, BASE_1_1])))
        .message(chunks(&rpc1, &[7]))
        .message(chunks(
            &rpc2,
            &[at(&rpc2, "é", 1), at(&rpc2, "é", 2), at(&rpc2, "😀", 3)],
        ))
        // Its reply waits for the two before it, so it produces no event yet.
        .silent(&chunks(&rpc3, &[]));
    let body2 = &rpc2[rpc2.find("<nc:edit-config").unwrap()..rpc2.find("</nc:rpc>").unwrap()];
    let expected = [
        "established 9 Chunked".to_string(),
        "rpc 101 get-config <get-config><source><running/></source></get-config>".into(),
        format!("rpc a b edit-config {body2}"),
    ];
    let whole = check_server(&Config::server(), &t, &expected);
    // What the server sent: only its hello. The `<ok/>` to close-session waits until the two
    // requests before it are answered (RFC 6241 section 4.5; tests/server_reply_order.rs).
    let sent = String::from_utf8(whole.transmitted).unwrap();
    assert!(sent.starts_with("<?xml"), "{sent}");
    assert!(!sent.contains("rpc-reply"), "{sent}");
}

#[test]
fn server_hello_and_rpcs_in_one_read_base10() {
    let rpc = |id: &str| {
        format!("<rpc message-id=\"{id}\" xmlns=\"{NS}\"><get><filter type=\"subtree\"><top xmlns=\"urn:example:t\"><name>é</name></top></filter></get></rpc>")
    };
    let t = Transcript::new()
        .message(eom(&client_hello(&[BASE_1_0])))
        .silent(b"\n")
        .message(eom(&rpc("1")))
        .message(eom(&rpc("2")));
    let body = "<get><filter type=\"subtree\"><top xmlns=\"urn:example:t\"><name>é</name></top></filter></get>";
    let expected = [
        "established 9 EndOfMessage".to_string(),
        format!("rpc 1 get {body}"),
        format!("rpc 2 get {body}"),
    ];
    check_server(&Config::server(), &t, &expected);
}

#[test]
fn server_answers_rpc_without_message_id_and_goes_on() {
    let t = Transcript::new()
        .message(eom(&client_hello(&[BASE_1_0, BASE_1_1])))
        .silent(&chunks(&format!("<rpc xmlns=\"{NS}\"><get/></rpc>"), &[]))
        .message(chunks(
            &format!("<rpc message-id=\"7\" xmlns=\"{NS}\"><get/></rpc>"),
            &[],
        ));
    let whole = check_server(
        &Config::server(),
        &t,
        &strings(&["established 9 Chunked", "rpc 7 get <get/>"]),
    );
    let sent = String::from_utf8(whole.transmitted).unwrap();
    let hello_end = sent.find("]]>]]>").unwrap() + 6;
    let reply = &sent[hello_end..];
    assert!(
        reply.starts_with("\n#"),
        "chunked after the hellos: {reply}"
    );
    for needle in [
        "<rpc-error>",
        "<error-type>rpc</error-type>",
        "<error-tag>missing-attribute</error-tag>",
        "<bad-attribute>message-id</bad-attribute>",
        "<bad-element>rpc</bad-element>",
    ] {
        assert!(reply.contains(needle), "{needle} missing from {reply}");
    }
}

/// The bytes a real client session sends, fed to a server in every split: the client's
/// hello and its first rpcs leave in ONE transmit when the server's hello arrived before
/// the client was first drained.
#[test]
fn client_session_output_fed_to_server_in_every_split() {
    let now = Instant::now();
    let mut client = Session::client(Config::client(), now);
    let mut server = Session::server(Config::server(), 3, now);
    let server_hello = drain(&mut server).transmitted;
    client.handle_input(&server_hello, now).unwrap();
    let established = drain(&mut client);
    assert!(matches!(
        established.events[..],
        [Event::Established { .. }]
    ));
    // The hello was already taken by that drain; queue two rpcs and take them too.
    client.send_rpc(&Get::new(), now).unwrap();
    client
        .send_rpc(&GetConfig::new(Datastore::Running), now)
        .unwrap();
    let mut stream = established.transmitted;
    stream.extend(drain(&mut client).transmitted);

    let t = Transcript {
        ends: Vec::new(),
        bytes: stream,
    };
    let run = |splits: &[usize]| {
        let mut server = Session::server(Config::server(), 3, now);
        feed_split(&mut server, &t.bytes, splits, now)
    };
    let whole = run(&[]);
    assert_eq!(
        describe_all(&whole.events),
        [
            "established 3 Chunked",
            "rpc 1 get <get/>",
            "rpc 2 get-config <get-config><source><running/></source></get-config>"
        ]
    );
    for splits in split_variants(t.bytes.len()) {
        let fed = run(&splits);
        assert_eq!(fed.events, whole.events, "split at {splits:?}");
        assert_eq!(fed.transmitted, whole.transmitted);
    }
}

/// The same exchange through a [`Pair`], as a sanity check of the harness the other test
/// files use.
#[test]
fn pair_round_trip() {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let id = pair.client_rpc(&GetConfig::new(Datastore::Running));
    let answered = pair.serve_with(|req| {
        assert!(req.operation.is_base("get-config"));
        Reply::data(format!("<x xmlns=\"urn:x\">{}</x>", req.message_id)).unwrap()
    });
    assert_eq!(answered, 1);
    let events = pair.take_client_events();
    assert_eq!(
        describe_all(&events),
        [format!("reply {id} data <x xmlns=\"urn:x\">{id}</x>")]
    );
    assert!(pair.take_server_events().is_empty());
}

#[test]
fn offsets_after_filler_do_not_depend_on_splits() {
    let hello = Transcript::new().message(eom(&server_hello(5, &[BASE_1_0])));
    let bad = format!("<rpc-reply xmlns=\"{NS}\"><ok/></rpc-reply>");
    let rest = Transcript::new()
        .silent(b"\n  ")
        .message(eom(&bad))
        .message(eom(&reply_ok("1")));
    // The message starts at its `<`, as in chunked framing where filler is skipped.
    let offset = hello.bytes.len() + 3;
    let expected = [
        "established 5 EndOfMessage".to_string(),
        format!("rejected <rpc-reply> without a message-id (message at byte {offset})"),
        "reply 1 ok".into(),
    ];
    check_client(&Config::client(), &hello, 2, &rest, &expected);
}

/// The drainage guarantee, spelled out once without the helpers: after `Wait`, polling
/// again gives the same `Wait`, and its deadline is the session's next deadline.
#[test]
fn wait_is_terminal_after_every_input() {
    let now = Instant::now();
    let mut client = Session::client(Config::client(), now);
    let hello = eom(&server_hello(5, &[BASE_1_0, BASE_1_1]));
    let mut stream = hello.clone();
    stream.extend(chunks(&notification("t1", EVENT), &[]));
    stream.extend(chunks(&notification("t2", EVENT), &[]));
    let poll_all = |client: &mut Session| {
        let mut outputs = Vec::new();
        loop {
            match client.poll_output() {
                Output::Wait(deadline) => {
                    assert_eq!(deadline, client.next_deadline());
                    for _ in 0..3 {
                        assert_eq!(client.poll_output(), Output::Wait(deadline));
                    }
                    return outputs;
                }
                other => outputs.push(other),
            }
        }
    };
    // Our hello is waiting from the start.
    assert!(matches!(poll_all(&mut client)[..], [Output::Transmit(_)]));
    // Hello and two notifications in one read: all three events before the first Wait.
    client.handle_input(&stream, now).unwrap();
    let outputs = poll_all(&mut client);
    assert!(
        matches!(
            outputs[..],
            [
                Output::Event(Event::Established { .. }),
                Output::Event(Event::Notification(_)),
                Output::Event(Event::Notification(_))
            ]
        ),
        "{outputs:?}"
    );
    // A command's bytes come out before Wait too, and set the rpc deadline.
    let _id = client.send_rpc(&Get::new(), now).unwrap();
    assert!(matches!(poll_all(&mut client)[..], [Output::Transmit(_)]));
    assert!(client.next_deadline().is_some());
    // Half a message: nothing to deliver yet, and Wait still means drained.
    let reply = chunks(&reply_ok("1"), &[]);
    client.handle_input(&reply[..10], now).unwrap();
    assert!(poll_all(&mut client).is_empty());
    client.handle_input(&reply[10..], now).unwrap();
    assert!(matches!(
        poll_all(&mut client)[..],
        [Output::Event(Event::Reply { .. })]
    ));
    assert_eq!(client.next_deadline(), None);
}
