//! Fuzz harness: pure functions over `&[u8]` that drive `netconf-proto` with arbitrary input
//! and panic when an invariant breaks.
//!
//! Each function is called by the cargo-fuzz target of the same name (`fuzz/fuzz_targets/`)
//! and, on stable, by `tests/tests/fuzz_corpus_replay.rs`, which replays every corpus file,
//! so an input that crashed once stays a regression test.
//!
//! | function | what the bytes are | what is checked |
//! |---|---|---|
//! | [`framing_decoder`] | framing, size limit, split plan, stream | progress on every step, offsets, limit, split invariance, `]]>]]>` reference model, encode/decode round trip |
//! | [`client_session`] | options, split plan, what the server sends after a valid hello | drainage, `Closed` once and last, sticky errors, replies matched once, split invariance |
//! | [`server_session`] | options, split plan, what the client sends after a valid hello | the same, every rpc answered, and a client accepts everything the server wrote |
//! | [`envelope_parser`] | wrapper mode, one message | the envelope and `rpc-error` parsers through a session; payload accessors |
//! | [`tls_session`] | mode, split plan, ciphertext or plaintext | after a real handshake: never panics, TLS errors close the session, TLS delivers exactly what plaintext would |
//! | [`roundtrip`] | framing, split plan, a list of messages | encoded by a server, decoded by a client under splits: identical |
//!
//! Input layout shared by most functions: a flags byte, then a *split plan* (one count byte
//! `n % 16`, then `n` piece lengths; pieces cycle through the lengths, a zero length is an empty
//! piece), then the payload. A seed with flags `0x00` and count `0x00` is "defaults, fed whole".
//!
//! Nothing here reads the clock except once per call for a base `Instant`; later times are
//! offsets from it, so a run is deterministic.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use netconf_proto::capabilities::{Capabilities, BASE_1_0, BASE_1_1};
use netconf_proto::framing::{self, FrameDecoder, Framing, Piece, EOM_DELIMITER};
use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
use netconf_proto::operations::{Get, RpcBody};
use netconf_proto::rustls::pki_types::ServerName;
use netconf_proto::rustls::{ClientConfig, ServerConfig, ServerConnection};
use netconf_proto::xml::escape_text;
use netconf_proto::{
    check_reply, CloseReason, Config, Event, Machine, MessageId, Output, ProtocolError, Reply,
    ReplyContent, RpcError, RpcReply, Session, TlsSession, XmlPayload,
};

use crate::certs::Pki;

const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// The session-id the simulated servers announce.
const SESSION_ID: u32 = 4242;

/// Small enough for the fuzzer to hit, large enough for a hello.
const SMALL_MAX_MESSAGE: usize = 512;

/// Upper bound on `poll_output` calls in one drain: beyond it the session is spinning.
const MAX_POLLS: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// Reading the input
// ---------------------------------------------------------------------------------------

/// A cursor over the fuzz input; reading past the end yields zeros / empty slices.
#[derive(Debug, Clone, Copy)]
struct Source<'a> {
    data: &'a [u8],
}

impl<'a> Source<'a> {
    fn new(data: &'a [u8]) -> Self {
        Source { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }

    /// A split plan: a count byte (mod 16), then that many piece lengths.
    fn plan(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte() % 16);
        self.take(n)
    }
}

/// Cut offsets (ascending, each below `len`) for a `len`-byte stream: pieces cycle through
/// `lens`, a zero length giving an empty piece. No lengths: the stream goes whole.
fn cuts(lens: &[u8], len: usize) -> Vec<usize> {
    if lens.iter().all(|&l| l == 0) {
        // Only empty pieces, then everything.
        return lens.iter().map(|_| 0).collect();
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    for &l in lens.iter().cycle() {
        pos += usize::from(l);
        if pos >= len {
            break;
        }
        out.push(pos);
    }
    out
}

/// `bytes` cut at `cuts` (as made by [`cuts`]).
fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        out.push(&bytes[start..end]);
        start = end;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn eom(xml: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + EOM_DELIMITER.len());
    out.extend_from_slice(xml.as_bytes());
    out.extend_from_slice(EOM_DELIMITER);
    out
}

fn capabilities(base_1_1: bool) -> Capabilities {
    if base_1_1 {
        Capabilities::new([BASE_1_0, BASE_1_1])
    } else {
        Capabilities::new([BASE_1_0])
    }
}

/// A server `<hello>` in the style of RFC 6241 section 8.1 (declaration, whitespace).
fn server_hello(base_1_1: bool) -> String {
    let mut caps = format!("\n    <capability>{BASE_1_0}</capability>");
    if base_1_1 {
        caps.push_str(&format!("\n    <capability>{BASE_1_1}</capability>"));
    }
    caps.push_str("\n    <capability>urn:ietf:params:netconf:capability:startup:1.0</capability>");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hello xmlns=\"{NS_BASE}\">\n  \
         <capabilities>{caps}\n  </capabilities>\n  <session-id>{SESSION_ID}</session-id>\n</hello>"
    )
}

// ---------------------------------------------------------------------------------------
// Driving a session with the invariants checked
// ---------------------------------------------------------------------------------------

/// What a session produced, compared between runs fed the same bytes under different splits.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    events: Vec<Event>,
    transmitted: Vec<u8>,
    /// The first error an input call returned.
    error: Option<ProtocolError>,
}

/// A [`Machine`] (plain [`Session`] or [`TlsSession`]) whose every input is followed by a full
/// drain that checks the output contract.
#[derive(Debug)]
struct Driver<M: Machine> {
    m: M,
    obs: Observed,
    closed_seen: bool,
}

type OnEvent<'a, M> = &'a mut dyn FnMut(&mut M, &Event);

impl<M: Machine> Driver<M> {
    fn new(m: M) -> Self {
        Driver {
            m,
            obs: Observed::default(),
            closed_seen: false,
        }
    }

    /// Feeds transport bytes and drains. Errors must be sticky and close the session.
    fn input(&mut self, data: &[u8], now: Instant, on_event: OnEvent<'_, M>) {
        let result = self.m.handle_transport(data, now);
        match (result, &self.obs.error) {
            (Ok(()), None) => {}
            (Ok(()), Some(first)) => panic!("input accepted after failing with {first:?}"),
            (Err(e), None) => {
                assert!(
                    self.m.session().is_closed(),
                    "a protocol error left the session open: {e:?}"
                );
                assert_eq!(
                    self.m.session().error(),
                    Some(&e),
                    "the returned error is not the session's error"
                );
                self.obs.error = Some(e);
            }
            (Err(e), Some(first)) => assert_eq!(&e, first, "protocol errors must be sticky"),
        }
        self.drain(on_event);
    }

    fn eof(&mut self, now: Instant, on_event: OnEvent<'_, M>) {
        self.m.handle_eof(now);
        assert!(self.m.session().is_closed(), "EOF must close the session");
        self.drain(on_event);
    }

    fn timeout(&mut self, now: Instant, on_event: OnEvent<'_, M>) {
        self.m.handle_timeout(now);
        self.drain(on_event);
        if let Some(deadline) = self.m.session().next_deadline() {
            assert!(
                deadline > now,
                "handle_timeout left a deadline that has passed"
            );
        }
    }

    /// Polls until `Wait`, checking: nothing after `Closed`, `Closed` at most once and only
    /// when the session is closed, `Wait` is stable, and a closed session wants no timer.
    fn drain(&mut self, on_event: OnEvent<'_, M>) {
        for _ in 0..MAX_POLLS {
            match self.m.poll_output() {
                Output::Transmit(bytes) => {
                    assert!(!self.closed_seen, "Transmit after Event::Closed");
                    self.obs.transmitted.extend_from_slice(&bytes);
                }
                Output::Event(ev) => {
                    assert!(!self.closed_seen, "event after Event::Closed: {ev:?}");
                    // Debug formatting (payload truncation at a char boundary) must not panic.
                    let _ = format!("{ev:?}");
                    if let Event::Closed { reason } = &ev {
                        self.closed_seen = true;
                        assert!(self.m.session().is_closed(), "Closed from an open session");
                        if let CloseReason::Protocol(e) = reason {
                            assert_eq!(self.m.session().error(), Some(e), "Closed reason");
                        }
                    }
                    on_event(&mut self.m, &ev);
                    self.obs.events.push(ev);
                }
                Output::Wait(deadline) => {
                    assert_eq!(
                        self.m.poll_output(),
                        Output::Wait(deadline),
                        "drainage guarantee broken: poll_output after Wait returned more"
                    );
                    assert_eq!(
                        self.closed_seen,
                        self.m.session().is_closed(),
                        "a closed session must have delivered Event::Closed before Wait"
                    );
                    if self.closed_seen {
                        assert_eq!(deadline, None, "a closed session asks for a timer");
                    }
                    return;
                }
                other => panic!("an output the harness does not know: {other:?}"),
            }
        }
        panic!("poll_output never returned Wait");
    }
}

fn ignore<M>(_: &mut M, _: &Event) {}

/// Checks what a client reported about its RPCs: every reply or timeout names an RPC that was
/// sent, and each RPC ends at most once.
fn check_rpc_outcomes(events: &[Event], sent: &[MessageId]) {
    let mut done = HashSet::new();
    for ev in events {
        let id = match ev {
            Event::Reply { id, reply } => {
                check_reply_payloads(reply);
                *id
            }
            Event::RpcTimedOut { id } => *id,
            Event::Notification(n) => {
                check_payload(&n.content, None);
                continue;
            }
            _ => continue,
        };
        assert!(sent.contains(&id), "event for an RPC never sent: {ev:?}");
        assert!(done.insert(id), "RPC {id} ended twice: {ev:?}");
    }
}

/// Payload accessors must not panic, and a payload is a slice of its message.
fn check_payload(p: &XmlPayload, message: Option<&[u8]>) {
    assert_eq!(p.as_str().len(), p.len(), "payload is not valid UTF-8");
    let _ = p.text();
    let _ = p.child_text("a");
    let _ = p.is_blank();
    let _ = format!("{p:?} {p}");
    if let (Some(message), false) = (message, p.is_empty()) {
        let (m, b) = (message.as_ptr() as usize, p.bytes().as_ptr() as usize);
        assert!(
            b >= m && b + p.len() <= m + message.len(),
            "payload is not a slice of its message"
        );
    }
}

fn check_reply_payloads(reply: &RpcReply) {
    match &reply.content {
        ReplyContent::Data(p) | ReplyContent::Other(p) => check_payload(p, Some(&reply.raw)),
        _ => {}
    }
    for e in &reply.errors {
        let _ = e.to_string();
        if let Some(info) = &e.info {
            check_payload(info, Some(&reply.raw));
        }
    }
    let _ = check_reply(reply.clone()).map_err(|e| e.to_string());
}

/// A client session whose hello exchange with a well-behaved server is done.
fn established_client(config: Config, base_1_1: bool, now: Instant) -> Driver<Session> {
    let mut d = Driver::new(Session::client(config, now));
    d.drain(&mut ignore);
    d.input(&eom(&server_hello(base_1_1)), now, &mut ignore);
    assert!(
        matches!(
            d.obs.events.as_slice(),
            [Event::Established {
                session_id: SESSION_ID,
                ..
            }]
        ),
        "the client did not accept a valid hello: {:?}",
        d.obs.events
    );
    d.obs = Observed::default();
    d
}

// ---------------------------------------------------------------------------------------
// framing_decoder
// ---------------------------------------------------------------------------------------

const FRAMING_LIMITS: [usize; 4] = [1 << 20, 64, 256, 4096];

/// What a decoder made of a stream.
#[derive(Debug, Default, PartialEq)]
struct Deframed {
    messages: Vec<Vec<u8>>,
    /// Body bytes of the message in progress at the end.
    partial: Vec<u8>,
    error: Option<ProtocolError>,
    fell_back: bool,
}

/// Decodes `stream` cut at `cuts`, checking every step.
fn deframe(framing: Framing, max: usize, stream: &[u8], cuts: &[usize]) -> Deframed {
    let mut dec = FrameDecoder::new(max);
    dec.set_framing(framing);
    let mut out = Deframed::default();
    let mut consumed = 0usize;
    'pieces: for piece in pieces(stream, cuts) {
        if piece.is_empty() {
            match dec.decode(piece) {
                Ok((0, Piece::Data(&[]))) => {}
                other => panic!("decoding empty input gave {other:?}"),
            }
            continue;
        }
        let mut rest = piece;
        let mut idle = 0;
        while !rest.is_empty() {
            let framing_before = dec.framing();
            let (n, step) = match dec.decode(rest) {
                Ok(step) => step,
                Err(e) => {
                    // What a failed step had seen is unspecified; compare messages and error.
                    out.error = Some(e);
                    out.partial.clear();
                    break 'pieces;
                }
            };
            assert!(n <= rest.len(), "consumed {n} of {} bytes", rest.len());
            let progressed = n > 0
                || matches!(step, Piece::End)
                || matches!(step, Piece::Data(d) if !d.is_empty())
                || dec.framing() != framing_before;
            assert!(
                progressed,
                "a decode step neither consumed nor produced anything"
            );
            if n == 0 {
                idle += 1;
                assert!(idle <= 8, "the decoder spins without consuming input");
            } else {
                idle = 0;
            }
            match step {
                Piece::Data(d) => out.partial.extend_from_slice(d),
                Piece::End => out.messages.push(std::mem::take(&mut out.partial)),
            }
            rest = &rest[n..];
            consumed += n;
            assert_eq!(
                dec.offset(),
                consumed as u64,
                "offset is not the bytes consumed"
            );
            assert!(
                dec.message_len() <= max,
                "message_len {} exceeds the limit {max}",
                dec.message_len()
            );
        }
    }
    if out.error.is_none() {
        assert_eq!(consumed, stream.len());
    }
    out.fell_back = dec.fell_back_to_end_of_message();
    out
}

fn is_interstitial(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// `m` without the whitespace and NULs before it (filler between messages).
fn strip_filler(m: &[u8]) -> &[u8] {
    let start = m
        .iter()
        .position(|&b| !is_interstitial(b))
        .unwrap_or(m.len());
    &m[start..]
}

/// RFC 6242 framing decoder ([`FrameDecoder`]).
///
/// Layout: flags (bit 0: chunked, else end-of-message; bits 1-2: size limit 1 MiB, 64, 256 or
/// 4096 bytes; bit 3: *encode mode*), split plan, payload. In normal mode the payload is the
/// stream: every step must consume input or produce something, offsets count consumed bytes,
/// `message_len` stays within the limit, and the result must be the same fed whole, byte by
/// byte and under the plan; end-of-message decoding must also match a reference split at every
/// `]]>]]>` (filler before a message dropped). In encode mode the payload is a list of messages
/// (a length byte, then that many bytes), framed first (chunk sizes from the split plan), which
/// must decode to themselves.
pub fn framing_decoder(data: &[u8]) {
    let mut src = Source::new(data);
    let flags = src.byte();
    let framing = if flags & 1 == 1 {
        Framing::Chunked
    } else {
        Framing::EndOfMessage
    };
    let plan = src.plan();
    if flags & 8 != 0 {
        return framing_round_trip(framing, plan, src);
    }
    let max = FRAMING_LIMITS[usize::from((flags >> 1) & 3)];
    let stream = src.rest();

    let split = deframe(framing, max, stream, &cuts(plan, stream.len()));
    let whole = deframe(framing, max, stream, &[]);
    assert_eq!(whole, split, "decoding depends on how the input is split");
    let bytewise = deframe(framing, max, stream, &(1..stream.len()).collect::<Vec<_>>());
    assert_eq!(whole, bytewise, "decoding byte by byte differs");

    for m in &whole.messages {
        assert!(
            m.len() <= max,
            "a {}-byte message passed the limit {max}",
            m.len()
        );
    }

    if framing == Framing::EndOfMessage {
        // Reference model: split at every leftmost `]]>]]>`; whitespace and NULs before a
        // message belong to no message.
        let mut expected = Vec::new();
        let mut rest = stream;
        while let Some(at) = find(rest, EOM_DELIMITER) {
            expected.push(strip_filler(&rest[..at]).to_vec());
            rest = &rest[at + EOM_DELIMITER.len()..];
        }
        let rest = strip_filler(rest);
        assert!(
            expected.starts_with(&whole.messages),
            "end-of-message decoding disagrees with splitting at ]]>]]>"
        );
        if whole.error.is_none() {
            assert_eq!(whole.messages, expected);
            let held = rest.len() - whole.partial.len();
            assert!(
                rest.starts_with(&whole.partial)
                    && held < EOM_DELIMITER.len()
                    && EOM_DELIMITER.starts_with(&rest[whole.partial.len()..]),
                "the partial message is not the stream's tail minus a delimiter prefix"
            );
        }
    }
}

/// Encode mode of [`framing_decoder`].
fn framing_round_trip(framing: Framing, plan: &[u8], mut src: Source<'_>) {
    let mut messages = Vec::new();
    while !src.is_empty() {
        let len = usize::from(src.byte());
        let m = src.take(len);
        let keep = match framing {
            // Only messages whose first `]]>]]>` is their own delimiter can be framed.
            Framing::EndOfMessage => find(&eom_bytes(m), EOM_DELIMITER) == Some(m.len()),
            // An empty message has no chunked form: a chunk size of zero is not allowed (and
            // `framing::encode` emits a bare `\n##\n` for it, which no decoder accepts).
            Framing::Chunked => !m.is_empty(),
            _ => false,
        };
        if keep {
            messages.push(m.to_vec());
        }
    }
    let mut expected = messages.clone();
    if framing == Framing::EndOfMessage {
        // Whitespace and NULs before an end-of-message message are filler, not content.
        for m in &mut expected {
            *m = strip_filler(m).to_vec();
        }
    }
    let sizes: Vec<usize> = plan.iter().filter(|&&l| l > 0).map(|&l| l.into()).collect();
    let mut stream = Vec::new();
    for m in &messages {
        if framing == Framing::Chunked && !sizes.is_empty() {
            let mut at = 0;
            for &size in sizes.iter().cycle() {
                let end = (at + size).min(m.len());
                stream.extend_from_slice(format!("\n#{}\n", end - at).as_bytes());
                stream.extend_from_slice(&m[at..end]);
                at = end;
                if at == m.len() {
                    break;
                }
            }
            stream.extend_from_slice(b"\n##\n");
        } else {
            let mut out = bytes::BytesMut::new();
            framing::encode(framing, m, &mut out).expect("kept messages hold no delimiter");
            stream.extend_from_slice(&out);
        }
    }
    for cut in [cuts(plan, stream.len()), Vec::new()] {
        let got = deframe(framing, 1 << 20, &stream, &cut);
        assert_eq!(got.error, None, "a correctly framed stream was refused");
        assert!(
            !got.fell_back,
            "fell back to end-of-message on a chunked stream"
        );
        assert!(got.partial.is_empty(), "bytes left after the last message");
        assert_eq!(
            got.messages, expected,
            "framing round trip changed the messages"
        );
    }
}

fn eom_bytes(m: &[u8]) -> Vec<u8> {
    let mut v = m.to_vec();
    v.extend_from_slice(EOM_DELIMITER);
    v
}

// ---------------------------------------------------------------------------------------
// client_session
// ---------------------------------------------------------------------------------------

/// Options of [`client_session`], from its flags byte.
#[derive(Debug, Clone, Copy)]
struct ClientOptions {
    base_1_1: bool,
    rpcs: usize,
    close: bool,
    small: bool,
    timeout: bool,
    eof: bool,
}

impl ClientOptions {
    fn from_flags(f: u8) -> Self {
        ClientOptions {
            base_1_1: f & 1 != 0,
            rpcs: usize::from((f >> 1) & 7),
            close: f & 0x10 != 0,
            small: f & 0x20 != 0,
            timeout: f & 0x40 != 0,
            eof: f & 0x80 != 0,
        }
    }
}

fn run_client(opts: ClientOptions, stream: &[u8], cuts: &[usize], now: Instant) -> Observed {
    let mut config = Config::client();
    if opts.small {
        config = config.with_max_message_size(SMALL_MAX_MESSAGE);
    }
    let mut d = established_client(config, opts.base_1_1, now);
    let mut sent = Vec::new();
    for _ in 0..opts.rpcs {
        sent.push(
            d.m.send_rpc(&Get::new(), now)
                .expect("send_rpc when established"),
        );
    }
    if opts.close {
        sent.extend(d.m.close(now));
    }
    d.drain(&mut ignore);
    for piece in pieces(stream, cuts) {
        d.input(piece, now, &mut ignore);
    }
    if opts.timeout {
        d.timeout(now + Duration::from_secs(61), &mut ignore);
    }
    if opts.eof {
        d.eof(now, &mut ignore);
    }
    check_rpc_outcomes(&d.obs.events, &sent);
    if opts.timeout {
        assert_eq!(d.m.rpcs_in_flight(), 0, "an RPC outlived its timeout");
    }
    d.obs
}

/// A client session fed a valid server hello, then the payload as what the server sends.
///
/// Layout: flags (bit 0: the server offers base:1.1, so the payload is chunked; bits 1-3: RPCs
/// in flight, message-ids 1..; bit 4: close-session in flight after them; bit 5: a 512-byte
/// message limit; bit 6: a timeout after 61 s at the end; bit 7: EOF at the end), split plan,
/// payload. The same run fed whole must give the same events.
pub fn client_session(data: &[u8]) {
    let mut src = Source::new(data);
    let opts = ClientOptions::from_flags(src.byte());
    let plan = src.plan();
    let stream = src.rest();
    let now = Instant::now();
    let split = run_client(opts, stream, &cuts(plan, stream.len()), now);
    let whole = run_client(opts, stream, &[], now);
    assert_eq!(
        whole, split,
        "the client's events depend on how its input is split"
    );
}

// ---------------------------------------------------------------------------------------
// server_session
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ServerRun {
    obs: Observed,
    /// message-ids answered, in order.
    answered: Vec<String>,
}

fn run_server(flags: u8, hello: &[u8], stream: &[u8], cuts: &[usize], now: Instant) -> ServerRun {
    let mut config = Config::server();
    if flags & 2 != 0 {
        config = config.with_max_message_size(SMALL_MAX_MESSAGE);
    }
    let mut d = Driver::new(Session::server(config, SESSION_ID, now));
    let mut answered = Vec::new();
    let mut answer = |s: &mut Session, ev: &Event| {
        let Event::Rpc { id, request } = ev else {
            return;
        };
        check_payload(&request.body, None);
        let _ = request.body.child_text("session-id");
        match s.send_reply(*id, Reply::Ok) {
            Ok(()) => answered.push(request.message_id.clone()),
            Err(netconf_proto::UsageError::Closed) if s.is_closed() => {}
            Err(e) => panic!("could not answer {request:?}: {e:?}"),
        }
    };
    d.drain(&mut answer);
    d.input(hello, now, &mut answer);
    assert!(
        matches!(d.obs.events.as_slice(), [Event::Established { .. }]),
        "the server did not accept a valid hello: {:?}",
        d.obs.events
    );
    for piece in pieces(stream, cuts) {
        d.input(piece, now, &mut answer);
    }
    if flags & 4 != 0 {
        d.m.close(now);
        d.drain(&mut answer);
    }
    if flags & 8 != 0 {
        d.timeout(now + Duration::from_secs(3600), &mut answer);
    }
    if flags & 16 != 0 {
        d.eof(now, &mut answer);
    }
    ServerRun {
        obs: d.obs,
        answered,
    }
}

/// A server session fed a valid client hello, then the payload as what the client sends;
/// every `Event::Rpc` is answered with `<ok/>`.
///
/// Layout: flags (bit 0: the client offers base:1.1; bit 1: a 512-byte message limit; bit 2:
/// close at the end; bit 3: a timeout at the end; bit 4: EOF at the end), split plan, payload.
/// Besides the session contract and split invariance, everything the server wrote must be
/// accepted by a client: the replies parse and echo the requests' message-ids.
pub fn server_session(data: &[u8]) {
    let mut src = Source::new(data);
    let flags = src.byte();
    let plan = src.plan();
    let stream = src.rest();
    let now = Instant::now();

    let client_config = Config::client().with_capabilities(capabilities(flags & 1 != 0));
    let mut checker = Driver::new(Session::client(client_config, now));
    checker.drain(&mut ignore);
    let hello = std::mem::take(&mut checker.obs.transmitted);

    let split = run_server(flags, &hello, stream, &cuts(plan, stream.len()), now);
    let whole = run_server(flags, &hello, stream, &[], now);
    assert_eq!(
        whole.obs.events, split.obs.events,
        "the server's events depend on input splits"
    );
    assert_eq!(whole.obs.error, split.obs.error);
    if split.obs.error.is_none() {
        // Not compared after a fatal error: an rpc that arrives in the same read as the fault
        // is delivered after the session closed and can no longer be answered (send_reply
        // returns UsageError::Closed), while fed in an earlier read it is answered.
        assert_eq!(
            whole.obs.transmitted, split.obs.transmitted,
            "the server's output depends on input splits"
        );
    }

    // A client (with no RPC in flight) reads everything the server wrote.
    checker.input(&split.obs.transmitted, now, &mut ignore);
    let events = &checker.obs.events;
    assert!(
        matches!(events.first(), Some(Event::Established { .. })),
        "the client did not accept the server's hello: {events:?}"
    );
    let mut echoed = Vec::new();
    for ev in &events[1..] {
        match ev {
            Event::MessageRejected {
                error: ProtocolError::UnknownMessageId { message_id, .. },
            } => echoed.push(message_id.clone()),
            Event::MessageRejected {
                error: ProtocolError::MissingMessageId { .. },
            } => {}
            other => panic!("the server wrote something a client refuses: {other:?}"),
        }
    }
    let mut rest = echoed.iter();
    for id in &split.answered {
        assert!(
            rest.any(|e| e == id),
            "the reply to message-id {id:?} did not echo it (replies echoed {echoed:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------
// envelope_parser
// ---------------------------------------------------------------------------------------

/// One message through the envelope parser of an established session.
///
/// Layout: a mode byte, then the XML. Mode bits 0-1: 0 = the XML is the whole message to a
/// client; 1 = it is the content of `<rpc-reply message-id="1">`; 2 = the content of an
/// `<rpc-error>` in such a reply; 3 = the whole message to a server (an `<rpc>`). Bit 2:
/// chunked framing (one chunk) instead of end-of-message. The client has RPCs 1-3 in flight.
pub fn envelope_parser(data: &[u8]) {
    let mut src = Source::new(data);
    let mode = src.byte();
    let xml = src.rest();
    let now = Instant::now();
    let chunked = mode & 4 != 0;
    let mut message = Vec::with_capacity(xml.len() + 128);
    let open = format!("<rpc-reply message-id=\"1\" xmlns=\"{NS_BASE}\">");
    match mode & 3 {
        1 => {
            message.extend_from_slice(open.as_bytes());
            message.extend_from_slice(xml);
            message.extend_from_slice(b"</rpc-reply>");
        }
        2 => {
            message.extend_from_slice(open.as_bytes());
            message.extend_from_slice(b"<rpc-error>");
            message.extend_from_slice(xml);
            message.extend_from_slice(b"</rpc-error></rpc-reply>");
        }
        _ => message.extend_from_slice(xml),
    }
    let mut framed = bytes::BytesMut::new();
    if chunked && message.is_empty() {
        return; // no chunked form
    }
    if chunked {
        framing::encode(Framing::Chunked, &message, &mut framed).expect("chunked frames anything");
    } else {
        // Raw, not through the encoder: a peer may send a delimiter inside a message (the
        // encoder refuses to), and the server must cope with what it then sees.
        framed.extend_from_slice(&message);
        framed.extend_from_slice(framing::EOM_DELIMITER);
    }

    if mode & 3 == 3 {
        let mut d = Driver::new(Session::server(Config::server(), SESSION_ID, now));
        let mut hello_from = Session::client(
            Config::client().with_capabilities(capabilities(chunked)),
            now,
        );
        let Output::Transmit(hello) = hello_from.poll_output() else {
            panic!("a new client has no hello to send")
        };
        d.drain(&mut ignore);
        d.input(&hello, now, &mut ignore);
        let mut answer = |s: &mut Session, ev: &Event| {
            if let Event::Rpc { id, request } = ev {
                check_payload(&request.body, None);
                let _ = request.operation.is_base("get");
                let _ = s.send_reply(*id, Reply::Ok);
            }
        };
        d.input(&framed, now, &mut answer);
        d.eof(now, &mut answer);
        return;
    }

    let mut d = established_client(Config::client(), chunked, now);
    let sent: Vec<MessageId> = (0..3)
        .map(|_| d.m.send_rpc(&Get::new(), now).expect("send_rpc"))
        .collect();
    d.drain(&mut ignore);
    d.input(&framed, now, &mut ignore);
    d.eof(now, &mut ignore);
    check_rpc_outcomes(&d.obs.events, &sent);
    for ev in &d.obs.events {
        if let Event::Reply { reply, .. } = ev {
            let _ = reply.data().map(XmlPayload::as_str);
            let _ = reply.has_errors();
        }
    }
}

// ---------------------------------------------------------------------------------------
// tls_session
// ---------------------------------------------------------------------------------------

/// rustls configurations from one PKI, generated once per process (key generation is slow).
#[derive(Debug)]
struct TlsFixture {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn tls_fixture() -> &'static TlsFixture {
    static FIXTURE: OnceLock<TlsFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pki = Pki::generate();
        TlsFixture {
            client: pki.client_config(true),
            server: pki.server_config(true),
        }
    })
}

/// Moves a `TlsSession` client's bytes into a rustls server and back until the client's
/// NETCONF session is established.
fn tls_established(base_1_1: bool, now: Instant) -> (Driver<TlsSession>, ServerConnection) {
    let fx = tls_fixture();
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    let client = TlsSession::client(fx.client.clone(), name, Config::client(), now)
        .expect("a TLS client from a valid config");
    let mut server = ServerConnection::new(fx.server.clone()).expect("a TLS server");
    let mut d = Driver::new(client);
    let mut hello_sent = false;
    for _ in 0..32 {
        d.drain(&mut ignore);
        let to_server = std::mem::take(&mut d.obs.transmitted);
        server_receive(&mut server, &to_server);
        if !server.is_handshaking() && !hello_sent {
            server
                .writer()
                .write_all(&eom(&server_hello(base_1_1)))
                .expect("buffer the server hello");
            hello_sent = true;
        }
        let to_client = server_send(&mut server);
        if to_client.is_empty() && to_server.is_empty() {
            break;
        }
        d.input(&to_client, now, &mut ignore);
        if !d.obs.events.is_empty() {
            break;
        }
    }
    assert!(
        matches!(d.obs.events.as_slice(), [Event::Established { .. }]),
        "the TLS client did not establish: {:?}",
        d.obs.events
    );
    d.drain(&mut ignore);
    let to_server = std::mem::take(&mut d.obs.transmitted);
    server_receive(&mut server, &to_server);
    d.obs = Observed::default();
    (d, server)
}

/// Feeds ciphertext to the rustls server and discards the plaintext it yields.
fn server_receive(server: &mut ServerConnection, mut ciphertext: &[u8]) {
    while !ciphertext.is_empty() {
        server
            .read_tls(&mut ciphertext)
            .expect("read_tls from a slice");
        server
            .process_new_packets()
            .expect("the TLS server accepts the client's records");
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = server.reader().read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn server_send(server: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out).expect("write_tls into a Vec");
    }
    out
}

/// A `TlsSession` client after a real in-memory TLS 1.3 handshake (mutual X.509, certificates
/// from [`crate::certs`]) and hello exchange, then fed the payload.
///
/// Layout: flags (bits 0-1 mode: 0 = the payload is raw ciphertext; 1 = the payload is plaintext
/// the server encrypts, one write per plan piece; 2 = like 1 with one ciphertext byte flipped;
/// 3 = like 1 followed by the payload again as raw ciphertext; bit 2: EOF at the end; bit 3: the
/// server offers base:1.1; bit 4: two RPCs in flight; bit 5, mode 1: again on a second
/// session drained with `poll_event` alone, its RPCs never handed out, which must give the
/// same events: a client whose writer is full takes replies ahead of its own output), a
/// position byte pair and a mask byte for mode 2, split plan, payload.
///
/// The session must never panic; raw or tampered ciphertext ends in `Closed` with a protocol
/// (TLS) error, or leaves it waiting. In mode 1 the TLS session must deliver exactly the events
/// a plain [`Session`] gives for the same plaintext: nothing stranded inside TLS.
pub fn tls_session(data: &[u8]) {
    let mut src = Source::new(data);
    let flags = src.byte();
    let pos = usize::from(u16::from_le_bytes([src.byte(), src.byte()]));
    let mask = src.byte() | 1;
    let plan = src.plan();
    let payload = src.rest();
    let mode = flags & 3;
    let eof = flags & 4 != 0;
    let base_1_1 = flags & 8 != 0;
    let rpcs = if flags & 16 != 0 { 2 } else { 0 };
    let now = Instant::now();

    let (mut d, mut server) = tls_established(base_1_1, now);
    let mut sent = Vec::new();
    for _ in 0..rpcs {
        sent.push(
            d.m.session_mut()
                .send_rpc(&Get::new(), now)
                .expect("send_rpc"),
        );
    }
    d.drain(&mut ignore);
    d.obs.transmitted.clear();

    let mut ciphertext = Vec::new();
    if mode == 0 {
        ciphertext.extend_from_slice(payload);
    } else {
        for piece in pieces(payload, &cuts(plan, payload.len())) {
            server.writer().write_all(piece).expect("buffer plaintext");
            ciphertext.extend(server_send(&mut server));
        }
        if mode == 2 && !ciphertext.is_empty() {
            let at = pos % ciphertext.len();
            ciphertext[at] ^= mask;
        }
        if mode == 3 {
            ciphertext.extend_from_slice(payload);
        }
    }
    for piece in pieces(&ciphertext, &cuts(plan, ciphertext.len())) {
        d.input(piece, now, &mut ignore);
    }
    if eof {
        d.eof(now, &mut ignore);
    }
    check_rpc_outcomes(&d.obs.events, &sent);
    if let Some(Event::Closed { reason }) = d.obs.events.last() {
        match (mode, reason) {
            (_, CloseReason::Protocol(_)) => {}
            (_, CloseReason::Eof) if eof => {}
            (1 | 3, CloseReason::Eof) => {} // the plaintext may end in a close_notify-free EOF
            (_, other) => panic!("ciphertext from the peer closed the session with {other:?}"),
        }
    }

    if mode == 1 {
        // The same plaintext through a plain session.
        let mut plain = established_client(Config::client(), base_1_1, now);
        let sent_plain: Vec<MessageId> = (0..rpcs)
            .map(|_| plain.m.send_rpc(&Get::new(), now).expect("send_rpc"))
            .collect();
        assert_eq!(sent, sent_plain);
        plain.drain(&mut ignore);
        plain.input(payload, now, &mut ignore);
        if eof {
            plain.eof(now, &mut ignore);
        }
        assert_eq!(
            d.obs.events, plain.obs.events,
            "TLS delivered something else than the plaintext does"
        );
        assert_eq!(d.obs.error, plain.obs.error);
    }

    if mode == 1 && flags & 32 != 0 {
        let (mut e, mut server) = tls_established(base_1_1, now);
        for _ in 0..rpcs {
            e.m.session_mut()
                .send_rpc(&Get::new(), now)
                .expect("send_rpc");
        }
        let mut ciphertext = Vec::new();
        for piece in pieces(payload, &cuts(plan, payload.len())) {
            server.writer().write_all(piece).expect("buffer plaintext");
            ciphertext.extend(server_send(&mut server));
        }
        let mut events = std::mem::take(&mut e.obs.events); // the handshake's
        for piece in pieces(&ciphertext, &cuts(plan, ciphertext.len())) {
            let _ = e.m.handle_ciphertext(piece, now);
            events.extend(std::iter::from_fn(|| e.m.poll_event()));
        }
        if eof {
            e.m.handle_eof(now);
            events.extend(std::iter::from_fn(|| e.m.poll_event()));
        }
        assert_eq!(
            events, d.obs.events,
            "events taken ahead of the output differ from those behind it"
        );
    }
}

// ---------------------------------------------------------------------------------------
// roundtrip
// ---------------------------------------------------------------------------------------

/// One message of a round trip.
#[derive(Debug, Clone)]
enum Spec {
    /// `<data>` holding escaped text.
    DataText(String),
    /// `<data>` holding one element with escaped text.
    DataElement(String),
    /// `<data>` followed by a comment (the parser's slow path), via `Reply::raw`.
    DataThenComment(String, String),
    Ok,
    Error(RpcError),
    Notification {
        time: String,
        content: String,
    },
    /// A raw `<rpc>` operation from the client, answered `<ok/>`.
    Rpc(String),
}

/// Characters for texts compared after XML unescaping: specials, multi-byte, inner
/// whitespace; no `\r` (XML normalises line ends).
const ALPHABET: [char; 24] = [
    'a', 'b', 'Z', '0', '9', ' ', '<', '>', '&', '"', '\'', ']', 'é', 'ß', '😀', '\n', '\t', '-',
    ':', '/', '=', '#', ';', '.',
];

fn alphabet_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()])
        .collect()
}

/// Arbitrary text (invalid UTF-8 replaced).
fn lossy_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What XML 1.0 makes of line ends.
fn normalize_eol(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

const ERROR_TYPES: [&str; 5] = ["transport", "rpc", "protocol", "application", "x-custom"];
const ERROR_TAGS: [&str; 8] = [
    "in-use",
    "invalid-value",
    "too-big",
    "missing-attribute",
    "lock-denied",
    "operation-failed",
    "malformed-message",
    "x-vendor-tag",
];

fn read_spec(src: &mut Source<'_>) -> Spec {
    let kind = src.byte();
    let len = usize::from(src.byte());
    let raw = src.take(len);
    let element = |text: &str| format!("<t xmlns=\"urn:fuzz\">{}</t>", escape_text(text));
    match kind % 7 {
        0 => Spec::DataText(lossy_text(raw)),
        1 => Spec::DataElement(element(&lossy_text(raw))),
        2 => {
            let comment: String = alphabet_text(raw)
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect();
            Spec::DataThenComment(element(&lossy_text(raw)), comment)
        }
        3 => Spec::Ok,
        4 => {
            let third = raw.len() / 3;
            let mut e = RpcError::new(
                ErrorType::parse(ERROR_TYPES[usize::from(kind / 7) % ERROR_TYPES.len()]),
                ErrorTag::parse(ERROR_TAGS[usize::from(kind / 35) % ERROR_TAGS.len()]),
            )
            .with_message(alphabet_text(&raw[..third]));
            if kind & 0x80 != 0 {
                e = e.with_severity(ErrorSeverity::Warning);
            }
            if third > 0 {
                e = e
                    .with_app_tag(alphabet_text(&raw[third..2 * third]))
                    .with_path(alphabet_text(&raw[2 * third..]));
            }
            Spec::Error(e)
        }
        5 => Spec::Notification {
            time: raw
                .iter()
                .take(8)
                .map(|&b| b"0123456789T:-.Z+"[usize::from(b) % 16] as char)
                .collect(),
            content: element(&lossy_text(raw)),
        },
        _ => Spec::Rpc(element(&lossy_text(raw))),
    }
}

/// Structured round trip: messages encoded by a server [`Session`] and decoded by a client
/// session under the input's splits must come back identical.
///
/// Layout: flags (bit 0: both sides offer base:1.1, so chunked framing), split plan, then
/// messages: a kind byte, a length byte and that many bytes of text each. Kind mod 7: 0 `<data>`
/// with escaped text, 1 `<data>` with an element, 2 the same followed by a comment (the
/// parser's slow path), 3 `<ok/>`, 4 an `<rpc-error>` (type, tag and severity from the kind
/// byte), 5 a notification, 6 a raw `<rpc>` from the client answered `<ok/>`.
pub fn roundtrip(data: &[u8]) {
    let mut src = Source::new(data);
    let flags = src.byte();
    let plan = src.plan();
    let mut specs = Vec::new();
    while !src.is_empty() && specs.len() < 64 {
        specs.push(read_spec(&mut src));
    }
    let now = Instant::now();
    let base_1_1 = flags & 1 != 0;
    let mut client = Driver::new(Session::client(
        Config::client().with_capabilities(capabilities(base_1_1)),
        now,
    ));
    let mut server = Driver::new(Session::server(Config::server(), SESSION_ID, now));
    client.drain(&mut ignore);
    server.drain(&mut ignore);
    let hello = std::mem::take(&mut client.obs.transmitted);
    server.input(&hello, now, &mut ignore);
    let hello = std::mem::take(&mut server.obs.transmitted);
    client.input(&hello, now, &mut ignore);
    for side in [&client.obs.events, &server.obs.events] {
        assert!(
            matches!(side.as_slice(), [Event::Established { .. }]),
            "{side:?}"
        );
    }
    client.obs = Observed::default();
    server.obs = Observed::default();

    // Encode: the server's output accumulates; rpcs go to the server as they are sent.
    let mut expected = Vec::new();
    for spec in &specs {
        if let Spec::Notification { time, content } = spec {
            server
                .m
                .send_notification(time, content)
                .expect("send_notification with a well-formed fragment");
            server.drain(&mut ignore);
            expected.push(spec.clone());
            continue;
        }
        let body = match spec {
            Spec::Rpc(body) => body.clone(),
            _ => "<get/>".to_owned(),
        };
        let op = RpcBody::raw(body.clone()).expect("a well-formed operation");
        let id = client
            .m
            .send_rpc_with_timeout(&op, None, now)
            .expect("send_rpc");
        client.drain(&mut ignore);
        let rpc = std::mem::take(&mut client.obs.transmitted);
        server.input(&rpc, now, &mut ignore);
        let (request_id, request) = match server.obs.events.pop() {
            Some(Event::Rpc { id, request }) if server.obs.events.is_empty() => (id, request),
            other => panic!("the server did not receive our rpc: {other:?}"),
        };
        assert_eq!(request.message_id, id.to_string());
        assert_eq!(request.body.as_str(), body, "the rpc's operation changed");
        let reply = match spec {
            Spec::DataText(text) => {
                Reply::data(escape_text(text)).expect("escaped text is a well-formed fragment")
            }
            Spec::DataElement(xml) => Reply::data(xml.as_str()).expect("well-formed"),
            Spec::DataThenComment(xml, comment) => {
                Reply::raw(format!("<data>{xml}</data><!--{comment}-->")).expect("well-formed")
            }
            Spec::Error(e) => Reply::error(e.clone()),
            _ => Reply::Ok,
        };
        server.m.send_reply(request_id, reply).expect("send_reply");
        server.drain(&mut ignore);
        expected.push(spec.clone());
    }
    assert!(server.obs.events.is_empty(), "{:?}", server.obs.events);
    assert_eq!(server.obs.error, None);

    // Decode under the input's splits.
    let wire = std::mem::take(&mut server.obs.transmitted);
    for piece in pieces(&wire, &cuts(plan, wire.len())) {
        client.input(piece, now, &mut ignore);
    }
    assert_eq!(
        client.obs.error, None,
        "the client refused what the server sent"
    );
    let events = &client.obs.events;
    assert_eq!(events.len(), expected.len(), "{events:?}");
    let mut next_id = 1;
    for (ev, spec) in events.iter().zip(&expected) {
        if let Spec::Notification { time, content } = spec {
            match ev {
                Event::Notification(n) => {
                    assert_eq!(&n.event_time, time);
                    assert_eq!(n.content.as_str(), content);
                }
                other => panic!("expected a notification, got {other:?}"),
            }
            continue;
        }
        let Event::Reply { id, reply } = ev else {
            panic!("expected a reply for {spec:?}, got {ev:?}");
        };
        assert_eq!(*id, MessageId(next_id), "replies out of order");
        next_id += 1;
        check_reply_payloads(reply);
        match spec {
            Spec::DataText(text) => {
                let data = reply.data().expect("a data reply");
                assert_eq!(data.as_str(), escape_text(text));
                assert_eq!(
                    data.text().expect("escaped text"),
                    normalize_eol(text),
                    "the text did not survive"
                );
            }
            Spec::DataElement(xml) | Spec::DataThenComment(xml, _) => {
                assert_eq!(reply.data().expect("a data reply").as_str(), xml);
            }
            Spec::Ok | Spec::Rpc(_) => assert_eq!(reply.content, ReplyContent::Ok),
            Spec::Error(e) => {
                assert_eq!(reply.content, ReplyContent::Empty);
                let [got] = reply.errors.as_slice() else {
                    panic!("expected one rpc-error: {reply:?}");
                };
                let mut want = e.clone();
                want.app_tag = want.app_tag.map(|s| s.trim().to_owned());
                want.path = want.path.map(|s| s.trim().to_owned());
                assert_eq!(got, &want, "the rpc-error changed");
                assert_eq!(reply.has_errors(), e.is_error());
            }
            Spec::Notification { .. } => unreachable!("handled above"),
        }
        if !matches!(spec, Spec::Error(_)) {
            assert!(reply.errors.is_empty(), "unexpected rpc-error: {reply:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// streamed_reply
// ---------------------------------------------------------------------------------------

/// What a client made of a reply to its one RPC.
#[derive(Debug, PartialEq)]
enum StreamedOutcome {
    /// The reply streamed: its content, and whether it completed.
    Streamed { content: Vec<u8>, complete: bool },
    /// The reply came whole (no `<data>` to stream), as this event.
    Whole(Vec<Event>),
}

/// Feeds `message` (framed) to a client whose RPC 1 is streamed, cut at `cuts`.
fn run_streamed(base_1_1: bool, message: &[u8], cuts: &[usize], now: Instant) -> StreamedOutcome {
    let mut d = established_client(Config::client(), base_1_1, now);
    d.m.send_rpc_streamed(&Get::new(), None, now)
        .expect("send_rpc_streamed");
    d.drain(&mut ignore);
    d.obs = Observed::default();
    for piece in pieces(message, cuts) {
        d.input(piece, now, &mut ignore);
    }
    let events = std::mem::take(&mut d.obs.events);
    if !matches!(events.first(), Some(Event::DataStart { .. })) {
        return StreamedOutcome::Whole(events);
    }
    let mut content = Vec::new();
    let mut complete = false;
    for e in &events[1..] {
        match e {
            Event::DataPiece { data, .. } => {
                assert!(std::str::from_utf8(data).is_ok(), "a piece is not UTF-8");
                assert!(!complete, "content after DataEnd");
                content.extend_from_slice(data);
            }
            Event::DataEnd { .. } => complete = true,
            Event::Closed { .. } => {}
            other => panic!("unexpected event in a streamed reply: {other:?}"),
        }
    }
    StreamedOutcome::Streamed { content, complete }
}

/// A client with one streamed RPC (message-id 1) fed one message from the server.
///
/// Layout: flags (bit 0: base:1.1 chunked framing), split plan, the message. Streaming is
/// split-invariant, hands out only UTF-8, and when the same message received whole is a
/// `<data>` reply, a completed stream handed out exactly its content.
pub fn streamed_reply(data: &[u8]) {
    let mut src = Source::new(data);
    let base_1_1 = src.byte() & 1 != 0;
    let plan = src.plan();
    let xml = src.rest();
    let mut framed = bytes::BytesMut::new();
    if base_1_1 {
        if xml.is_empty() {
            return;
        }
        framing::encode(Framing::Chunked, xml, &mut framed).expect("chunked frames anything");
    } else {
        framed.extend_from_slice(xml);
        framed.extend_from_slice(EOM_DELIMITER);
    }
    let now = Instant::now();
    let split = run_streamed(base_1_1, &framed, &cuts(plan, framed.len()), now);
    let whole = run_streamed(base_1_1, &framed, &[], now);
    assert_eq!(whole, split, "streaming depends on how the input is split");

    // The same message received whole by a client that did not ask to stream.
    let mut d = established_client(Config::client(), base_1_1, now);
    d.m.send_rpc(&Get::new(), now).expect("send_rpc");
    d.drain(&mut ignore);
    d.obs = Observed::default();
    d.input(&framed, now, &mut ignore);
    let data = d.obs.events.iter().find_map(|e| match e {
        Event::Reply { reply, .. } if reply.errors.is_empty() => match &reply.content {
            ReplyContent::Data(p) => Some(p.as_str().to_owned()),
            _ => None,
        },
        _ => None,
    });
    if let (
        Some(data),
        StreamedOutcome::Streamed {
            content,
            complete: true,
        },
    ) = (data, &whole)
    {
        assert_eq!(
            String::from_utf8_lossy(content),
            data,
            "streamed content differs from the whole reply's <data>"
        );
    }
}
