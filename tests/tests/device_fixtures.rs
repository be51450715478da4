//! Replays the device message corpus (`tests/fixtures/devices/`, issue 13) through a client
//! [`Session`], whole and byte by byte, and checks each fixture against its manifest row.
//!
//! # The manifest
//! `tests/fixtures/devices/MANIFEST.md` holds one table row per replay (between the
//! `expectations:begin` and `expectations:end` markers). A row names the fixture file, what
//! kind of message it is, which server hello precedes it, how it is framed, what to do with its
//! message-id, bytes to put before and after it on the wire, the quirks it exercises, and two
//! outcomes: `today` (what the code on the branch does) and `want` (what issue 13 asks for).
//!
//! # Outcomes
//! An outcome is the events the session produced for the fixture, as space-separated tokens
//! (the hello of a reply fixture is not listed, nor a clean end of stream):
//! - `hello:<eom|chunked>:<caps>:mods=<n>`: established; `<caps>` are the standard
//!   capabilities the `Capabilities::has_*` family reports (`+`-joined, `none` if none), `n`
//!   the number of YANG module capabilities;
//! - `reply:<ok|data|other|empty>[:e<E>w<W>[u<U>]]`: a reply with E errors, W warnings and
//!   U errors of a severity outside the RFC's enumeration;
//! - `notification`;
//! - `rejected:<ProtocolError variant>`: `MessageRejected`, the session goes on;
//! - `refused:<ProtocolError variant>`: the session closed with that error;
//! - `-`: no event at all.
//!
//! # Expected failures: the one place to flip
//! A row whose `today` differs from `want` is an expected failure: the test passes while the
//! session still produces `today`, and prints it. When the tolerance of issue 13 lands and a
//! row starts producing `want`, the test fails with "now meets want": set that row's `today`
//! to its `want` (the list of expected failures is exactly the rows where the two differ).
//! Any other outcome fails the test.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use netconf_proto::message::ErrorSeverity;
use netconf_proto::operations::{Datastore, GetConfig};
use netconf_proto::{
    CloseReason, Config, Event, Framing, MessageId, ProtocolError, ReplyContent, RpcError, Session,
};
use netconf_tests::pair::{drain, feed_split};

const BASE10: &str = "urn:ietf:params:netconf:base:1.0";
const BASE11: &str = "urn:ietf:params:netconf:base:1.1";
const EOM: &[u8] = b"]]>]]>";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/devices")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A server `<hello>`.
    Hello,
    /// An `<rpc-reply>`, answering the one rpc the test sends after the hello.
    Reply,
    /// A `<notification>`.
    Notification,
    /// A message the server sends instead of its hello (must be refused).
    PreHello,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgId {
    /// Replace the value of the root's message-id with the id of our rpc.
    Rewrite,
    /// The stored message has no message-id (its source dropped it): add ours.
    Insert,
    /// Leave the message as it is.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Eom,
    /// Chunked framing; `Some(n)`: chunks of at most n bytes, `None`: one chunk.
    Chunked(Option<usize>),
}

#[derive(Debug, Clone)]
struct Row {
    id: String,
    file: String,
    kind: Kind,
    /// `std10`, `std11` or a fixture file with the server hello.
    hello: String,
    wire: Wire,
    msgid: MsgId,
    before: Vec<u8>,
    after: Vec<u8>,
    quirks: Vec<String>,
    today: String,
    want: String,
}

/// Parses `\n`, `\r`, `\t`, `\0`, `\\` and `\xHH` escapes (`-` alone means nothing).
fn unescape(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("\\xHH");
                    out.push(u8::from_str_radix(hex, 16).expect("\\xHH"));
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// The table rows between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, as trimmed cells
/// with surrounding backticks removed; the header and separator rows are skipped.
fn table(manifest: &str, name: &str) -> Vec<Vec<String>> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = manifest.find(&begin).expect("table begin marker") + begin.len();
    let stop = start + manifest[start..].find(&end).expect("table end marker");
    manifest[start..stop]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

fn manifest() -> (Vec<Row>, BTreeSet<String>) {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.md")).expect("MANIFEST.md");
    let vocabulary: BTreeSet<String> = table(&text, "quirks")
        .into_iter()
        .map(|cells| cells[0].clone())
        .collect();
    let rows = table(&text, "expectations")
        .into_iter()
        .map(|c| {
            assert_eq!(c.len(), 11, "expectation row with {} cells: {c:?}", c.len());
            Row {
                id: c[0].clone(),
                file: c[1].clone(),
                kind: match c[2].as_str() {
                    "hello" => Kind::Hello,
                    "reply" => Kind::Reply,
                    "notification" => Kind::Notification,
                    "prehello" => Kind::PreHello,
                    other => panic!("{}: unknown kind {other:?}", c[0]),
                },
                hello: c[3].clone(),
                wire: match c[4].as_str() {
                    "eom" => Wire::Eom,
                    "chunked" => Wire::Chunked(None),
                    other => match other.strip_prefix("chunked/") {
                        Some(n) => Wire::Chunked(Some(n.parse().expect("chunk size"))),
                        None => panic!("{}: unknown framing {other:?}", c[0]),
                    },
                },
                msgid: match c[5].as_str() {
                    "rewrite" => MsgId::Rewrite,
                    "insert" => MsgId::Insert,
                    "keep" => MsgId::Keep,
                    other => panic!("{}: unknown msgid handling {other:?}", c[0]),
                },
                before: unescape(&c[6]),
                after: unescape(&c[7]),
                quirks: c[8]
                    .split(',')
                    .map(str::trim)
                    .filter(|q| !q.is_empty() && *q != "-")
                    .map(str::to_owned)
                    .collect(),
                today: c[9].clone(),
                want: c[10].clone(),
            }
        })
        .collect();
    (rows, vocabulary)
}

fn read_fixture(file: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Where the root element's start tag begins and ends (`<` .. after `>`).
fn root_tag(msg: &[u8]) -> (usize, usize) {
    let mut i = 0;
    loop {
        let lt = i + msg[i..]
            .iter()
            .position(|&b| b == b'<')
            .expect("a root element");
        match msg.get(lt + 1) {
            Some(b'?') => i = lt + find(&msg[lt..], b"?>").expect("end of PI") + 2,
            Some(b'!') if msg[lt..].starts_with(b"<!--") => {
                i = lt + find(&msg[lt..], b"-->").expect("end of comment") + 3
            }
            Some(b'!') => i = lt + 2, // DOCTYPE: leave it for the session to refuse
            _ => {
                return (
                    lt,
                    lt + find(&msg[lt..], b">").expect("end of root tag") + 1,
                )
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Applies the row's message-id handling; `id` is the message-id our rpc got.
fn with_message_id(msg: &[u8], how: MsgId, id: &str, row: &str) -> Vec<u8> {
    let (start, end) = root_tag(msg);
    let tag = &msg[start..end];
    let mut out = Vec::with_capacity(msg.len() + 24);
    match how {
        MsgId::Keep => return msg.to_vec(),
        MsgId::Rewrite => {
            let at = find(tag, b"message-id=")
                .unwrap_or_else(|| panic!("{row}: rewrite, but the root has no message-id"));
            let quote_at = start + at + b"message-id=".len();
            let quote = msg[quote_at];
            let close = quote_at
                + 1
                + msg[quote_at + 1..]
                    .iter()
                    .position(|&b| b == quote)
                    .expect("closing quote");
            out.extend_from_slice(&msg[..=quote_at]);
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&msg[close..]);
        }
        MsgId::Insert => {
            assert!(
                find(tag, b"message-id=").is_none(),
                "{row}: insert, but the root already has a message-id"
            );
            let name_end = start
                + 1
                + tag[1..]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
                    .expect("root name");
            out.extend_from_slice(&msg[..name_end]);
            out.extend_from_slice(format!(" message-id=\"{id}\"").as_bytes());
            out.extend_from_slice(&msg[name_end..]);
        }
    }
    out
}

fn frame(msg: &[u8], wire: Wire) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 32);
    match wire {
        Wire::Eom => {
            out.extend_from_slice(msg);
            out.extend_from_slice(EOM);
        }
        Wire::Chunked(size) => {
            for chunk in msg.chunks(size.unwrap_or(msg.len()).max(1)) {
                out.extend_from_slice(format!("\n#{}\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(b"\n##\n");
        }
    }
    out
}

/// A server hello advertising only `bases` (plus :candidate), as most servers send it.
fn standard_hello(bases: &[&str]) -> Vec<u8> {
    let caps: String = bases
        .iter()
        .chain(&["urn:ietf:params:netconf:capability:candidate:1.0"])
        .map(|c| format!("<capability>{c}</capability>"))
        .collect();
    format!(
        "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>{caps}</capabilities><session-id>4711</session-id></hello>"
    )
    .into_bytes()
}

#[derive(Debug, Clone, Copy)]
enum Split {
    Whole,
    ByteByByte,
}

fn cuts(len: usize, split: Split) -> Vec<usize> {
    match split {
        Split::Whole => Vec::new(),
        Split::ByteByByte => (1..len).collect(),
    }
}

/// Everything the session reported for one row, fed in one way.
#[derive(Debug, PartialEq)]
struct Replay {
    events: Vec<Event>,
    /// How many of `events` came from the hello part.
    hello_events: usize,
}

fn replay(row: &Row, split: Split) -> Replay {
    let now = Instant::now();
    let mut session = Session::client(Config::client(), now);
    drain(&mut session);
    let fixture = read_fixture(&row.file);
    let mut events = Vec::new();

    let first = match row.kind {
        Kind::Hello | Kind::PreHello => {
            let mut b = row.before.clone();
            b.extend(frame(&fixture, Wire::Eom));
            b.extend_from_slice(&row.after);
            b
        }
        Kind::Reply | Kind::Notification => {
            let hello = match row.hello.as_str() {
                "std10" => standard_hello(&[BASE10]),
                "std11" => standard_hello(&[BASE10, BASE11]),
                file => read_fixture(file),
            };
            frame(&hello, Wire::Eom)
        }
    };
    events.extend(feed_split(&mut session, &first, &cuts(first.len(), split), now).events);
    let hello_events = events.len();

    if matches!(row.kind, Kind::Reply | Kind::Notification) {
        let mut id = String::from("1");
        if row.kind == Kind::Reply && session.is_established() {
            let sent = session
                .send_rpc(&GetConfig::new(Datastore::Running), now)
                .expect("send_rpc");
            assert_eq!(sent, MessageId(1));
            id = sent.to_string();
            drain(&mut session);
        }
        let message = with_message_id(&fixture, row.msgid, &id, &row.id);
        let mut rest = row.before.clone();
        rest.extend(frame(&message, row.wire));
        rest.extend_from_slice(&row.after);
        events.extend(feed_split(&mut session, &rest, &cuts(rest.len(), split), now).events);
    }
    session.handle_eof(now);
    events.extend(drain(&mut session).events);
    Replay {
        events,
        hello_events,
    }
}

fn variant(e: &ProtocolError) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

fn hello_token(framing: Framing, caps: &netconf_proto::Capabilities) -> String {
    let mut names = Vec::new();
    for (has, name) in [
        (caps.has_candidate(), "candidate"),
        (caps.confirmed_commit().is_some(), "confirmed-commit"),
        (caps.has_interleave(), "interleave"),
        (caps.has_notification(), "notification"),
        (caps.has_rollback_on_error(), "rollback-on-error"),
        (caps.has_startup(), "startup"),
        (caps.url_schemes().is_some(), "url"),
        (caps.validate().is_some(), "validate"),
        (caps.with_defaults().is_some(), "with-defaults"),
        (caps.has_writable_running(), "writable-running"),
        (caps.has_xpath(), "xpath"),
    ] {
        if has {
            names.push(name);
        }
    }
    let framing = match framing {
        Framing::EndOfMessage => "eom",
        Framing::Chunked => "chunked",
        _ => "other",
    };
    let caps_list = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join("+")
    };
    format!("{framing}:{caps_list}:mods={}", caps.modules().count())
}

fn error_counts(errors: &[RpcError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    // `e` counts what `RpcError::is_error` says; `u` (severities outside the RFC's
    // enumeration) is informational and may overlap `e`.
    let e = errors.iter().filter(|e| e.is_error()).count();
    let w = errors
        .iter()
        .filter(|e| e.severity == ErrorSeverity::Warning)
        .count();
    let u = errors
        .iter()
        .filter(|e| matches!(e.severity, ErrorSeverity::Other(_)))
        .count();
    let mut out = format!(":e{e}w{w}");
    if u > 0 {
        let _ = write!(out, "u{u}");
    }
    out
}

/// The outcome string of a replay (see the module docs).
fn outcome(row: &Row, r: &Replay) -> String {
    let skip_hello = matches!(row.kind, Kind::Reply | Kind::Notification);
    let mut tokens = Vec::new();
    for (i, ev) in r.events.iter().enumerate() {
        let token = match ev {
            Event::Established { .. } if skip_hello && i < r.hello_events => continue,
            Event::Established {
                peer_capabilities,
                framing,
                ..
            } => format!("hello:{}", hello_token(*framing, peer_capabilities)),
            Event::Reply { reply, .. } => {
                let content = match reply.content {
                    ReplyContent::Ok => "ok",
                    ReplyContent::Data(_) => "data",
                    ReplyContent::Other(_) => "other",
                    ReplyContent::Empty => "empty",
                    _ => "unknown",
                };
                format!("reply:{content}{}", error_counts(&reply.errors))
            }
            Event::Notification(_) => "notification".to_owned(),
            Event::MessageRejected { error } => format!("rejected:{}", variant(error)),
            Event::Closed {
                reason: CloseReason::Eof,
            } => continue,
            Event::Closed {
                reason: CloseReason::Protocol(e),
            } => format!("refused:{}", variant(e)),
            Event::Closed { reason } => format!("closed:{reason:?}"),
            Event::RpcTimedOut { .. } => "timeout".to_owned(),
            Event::Rpc { .. } => "rpc".to_owned(),
            other => format!("{other:?}"),
        };
        tokens.push(token);
    }
    if tokens.is_empty() {
        "-".to_owned()
    } else {
        tokens.join(" ")
    }
}

#[test]
fn device_fixtures_replay() {
    let (rows, _) = manifest();
    let mut report = String::new();
    let mut failures = Vec::new();
    let mut expected_failures = Vec::new();
    let mut meets_want = 0;
    for row in &rows {
        let whole = replay(row, Split::Whole);
        let bytewise = replay(row, Split::ByteByByte);
        if whole != bytewise {
            failures.push(format!(
                "{}: byte-by-byte replay differs from the whole one\n  whole: {:?}\n  bytes: {:?}",
                row.id, whole.events, bytewise.events
            ));
            continue;
        }
        let got = outcome(row, &whole);
        let _ = writeln!(report, "{:<52} {}", row.id, got);
        if got == row.want {
            if row.today == row.want {
                meets_want += 1;
            } else {
                failures.push(format!(
                    "{}: now meets want ({got}); set its `today` to `{}` in MANIFEST.md",
                    row.id, row.want
                ));
            }
        } else if got == row.today {
            expected_failures.push(format!(
                "{}: today {got}, want {} (quirks: {})",
                row.id,
                row.want,
                row.quirks.join(", ")
            ));
        } else {
            let why = if let Some(Event::Closed {
                reason: CloseReason::Protocol(e),
            }) = whole.events.last()
            {
                format!(" [{e}]")
            } else {
                String::new()
            };
            failures.push(format!(
                "{}: got {got}{why}, manifest says today {} / want {}",
                row.id, row.today, row.want
            ));
        }
    }
    println!("device fixtures: {} replays\n{report}", rows.len());
    println!(
        "{meets_want} meet `want`; {} expected failures (today != want):",
        expected_failures.len()
    );
    for x in &expected_failures {
        println!("  XFAIL {x}");
    }
    assert!(
        failures.is_empty(),
        "{} unexpected result(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn manifest_matches_the_corpus() {
    let (rows, vocabulary) = manifest();
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    let mut ids = BTreeSet::new();
    let mut referenced = BTreeSet::new();
    for row in &rows {
        assert!(ids.insert(row.id.clone()), "duplicate row id {}", row.id);
        assert!(
            corpus_dir().join(&row.file).is_file(),
            "{}: no file {}",
            row.id,
            row.file
        );
        referenced.insert(row.file.clone());
        if !matches!(row.hello.as_str(), "std10" | "std11" | "-") {
            assert!(
                corpus_dir().join(&row.hello).is_file(),
                "{}: no hello {}",
                row.id,
                row.hello
            );
            referenced.insert(row.hello.clone());
        }
        for q in &row.quirks {
            assert!(
                vocabulary.contains(q),
                "{}: quirk {q:?} is not in the vocabulary",
                row.id
            );
        }
        assert!(
            !row.today.is_empty() && !row.want.is_empty(),
            "{}: empty outcome",
            row.id
        );
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "MANIFEST.md")
        .collect();
    let unlisted: Vec<_> = on_disk.difference(&referenced).collect();
    assert!(
        unlisted.is_empty(),
        "fixtures without a manifest row: {unlisted:?}"
    );
}
