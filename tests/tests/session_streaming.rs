//! Issue 15 in the core: a streamed reply's `<data>` content handed out as it arrives (the
//! envelope stripped, whatever the splits), and a server's streamed answer framed piece by
//! piece; the session never holds the message. Memory is measured with a counting
//! allocator, not timed.

#![allow(unsafe_code)] // the counting allocator below

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use netconf_proto::capabilities::{Capabilities, BASE_1_0, BASE_1_1};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::operations::{Datastore, Get, GetConfig};
use netconf_proto::{Config, Event, MessageId, Reply, RpcError, Session, UsageError};
use netconf_tests::pair::{drain, Pair};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pair(bases: &[&'static str]) -> Pair {
    let mut pair = Pair::new(
        Config::client(),
        Config::server().with_capabilities(Capabilities::new(bases.iter().copied())),
    );
    pair.establish();
    pair
}

/// The server's request handle for the one request it received.
fn request(pair: &mut Pair) -> netconf_proto::RequestId {
    match pair.take_server_events().as_slice() {
        [Event::Rpc { id, .. }] => *id,
        other => panic!("{other:?}"),
    }
}

/// What the client made of `wire`, fed in pieces of `size`.
fn client_events(client: &mut Session, wire: &[u8], size: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for piece in wire.chunks(size.max(1)) {
        client.handle_input(piece, Instant::now()).unwrap();
        events.extend(drain(client).events);
    }
    events
}

/// The content of a streamed reply, from its events; checks their order.
fn streamed_content(id: MessageId, events: &[Event]) -> String {
    assert!(
        matches!(events.first(), Some(Event::DataStart { id: i }) if *i == id),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::DataEnd { id: i }) if *i == id),
        "{events:?}"
    );
    let mut content = String::new();
    for e in &events[1..events.len() - 1] {
        match e {
            Event::DataPiece { id: i, data } if *i == id => {
                content.push_str(std::str::from_utf8(data).expect("pieces are UTF-8"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    content
}

const CONTENT: &str = "<top xmlns=\"urn:x\"><a>é</a><data>nested</data><b>\u{1F600}</b></top>\n";

#[test]
fn a_whole_data_reply_is_handed_out_in_pieces_under_every_split() {
    for bases in [&[BASE_1_0][..], &[BASE_1_1]] {
        let mut p = pair(bases);
        let id = p
            .client
            .send_rpc_streamed(&GetConfig::new(Datastore::Running), None, p.now)
            .unwrap();
        p.drive();
        let rid = request(&mut p);
        p.server
            .send_reply(rid, Reply::data(CONTENT).unwrap())
            .unwrap();
        let wire = drain(&mut p.server).transmitted;
        // Byte by byte and in other sizes: every cut inside the envelope's closing tags.
        for size in [1, 2, 3, 7, 64, wire.len()] {
            let mut q = pair(bases);
            let qid = q
                .client
                .send_rpc_streamed(&GetConfig::new(Datastore::Running), None, q.now)
                .unwrap();
            q.drive();
            let qr = request(&mut q);
            q.server
                .send_reply(qr, Reply::data(CONTENT).unwrap())
                .unwrap();
            let qwire = drain(&mut q.server).transmitted;
            let events = client_events(&mut q.client, &qwire, size);
            assert_eq!(
                streamed_content(qid, &events),
                CONTENT,
                "{bases:?} size {size}"
            );
        }
        let events = client_events(&mut p.client, &wire, 5);
        assert_eq!(streamed_content(id, &events), CONTENT);
    }
}

#[test]
fn a_streamed_answer_is_framed_piece_by_piece_and_received_streamed() {
    for bases in [&[BASE_1_0][..], &[BASE_1_1]] {
        let mut p = pair(bases);
        let id = p
            .client
            .send_rpc_streamed(&GetConfig::new(Datastore::Running), None, p.now)
            .unwrap();
        p.drive();
        let rid = request(&mut p);
        p.server.send_reply_streamed(rid).unwrap();
        assert_eq!(p.server.stream_ready(), Some(rid));
        // Notifications wait for the stream's end.
        assert_eq!(
            p.server
                .send_notification("2026-01-01T00:00:00Z", "<e xmlns=\"urn:e\"/>"),
            Err(UsageError::StreamInProgress)
        );
        let pieces = ["<top xmlns=\"urn:x\">", "<a>é</a>", "</top>"];
        for piece in pieces {
            let piece = Bytes::from_static(piece.as_bytes());
            p.server.send_reply_piece(rid, piece.clone()).unwrap();
            // The piece goes to the transport as it is: the very same buffer.
            let out: Vec<_> = std::iter::from_fn(|| match p.server.poll_output() {
                netconf_proto::Output::Transmit(b) => Some(b),
                _ => None,
            })
            .collect();
            assert!(
                out.iter().any(|b| b.as_ptr() == piece.as_ptr()),
                "the piece was copied"
            );
            let events = {
                let mut ev = Vec::new();
                for b in &out {
                    p.client.handle_input(b, p.now).unwrap();
                    ev.extend(drain(&mut p.client).events);
                }
                ev
            };
            let _ = events;
        }
        p.server.end_reply_stream(rid).unwrap();
        p.server
            .send_notification("2026-01-01T00:00:00Z", "<e xmlns=\"urn:e\"/>")
            .unwrap();
        p.drive();
        let events = p.take_client_events();
        // The stream's end, then the notification that waited for it.
        assert!(
            matches!(events.last(), Some(Event::Notification(_))),
            "{events:?}"
        );
        assert!(matches!(&events[events.len() - 2], Event::DataEnd { id: i } if *i == id));
    }
}

#[test]
fn a_streamed_rpc_answered_with_an_rpc_error_gets_a_typed_reply() {
    let mut p = pair(&[BASE_1_1]);
    let id = p
        .client
        .send_rpc_streamed(&Get::new(), None, p.now)
        .unwrap();
    p.drive();
    let rid = request(&mut p);
    p.server
        .send_reply(
            rid,
            Reply::error(RpcError::new(ErrorType::Application, ErrorTag::TooBig)),
        )
        .unwrap();
    p.drive();
    match p.take_client_events().as_slice() {
        [Event::Reply { id: i, reply }] if *i == id => {
            assert_eq!(reply.errors[0].tag, ErrorTag::TooBig)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cancelled_stream_is_discarded_and_the_session_goes_on() {
    let mut p = pair(&[BASE_1_1]);
    let id = p
        .client
        .send_rpc_streamed(&Get::new(), None, p.now)
        .unwrap();
    let next = p.client.send_rpc(&Get::new(), p.now).unwrap();
    p.drive();
    let ids: Vec<_> = p
        .take_server_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Rpc { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    p.server.send_reply_streamed(ids[0]).unwrap();
    p.server
        .send_reply_piece(ids[0], Bytes::from_static(b"<x xmlns=\"urn:x\">"))
        .unwrap();
    p.drive();
    assert!(matches!(
        p.take_client_events()[..],
        [Event::DataStart { .. }, Event::DataPiece { .. }]
    ));
    assert!(p.client.cancel_rpc(id));
    p.server
        .send_reply_piece(ids[0], Bytes::from(vec![b'y'; 100_000]))
        .unwrap();
    p.server
        .send_reply_piece(ids[0], Bytes::from_static(b"</x>"))
        .unwrap();
    p.server.end_reply_stream(ids[0]).unwrap();
    p.server.send_reply(ids[1], Reply::Ok).unwrap();
    p.drive();
    match p.take_client_events().as_slice() {
        [Event::Reply { id: i, .. }] if *i == next => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_notification_between_streamed_replies_flows() {
    let mut p = pair(&[BASE_1_1]);
    let first = p
        .client
        .send_rpc_streamed(&Get::new(), None, p.now)
        .unwrap();
    p.drive();
    let rid = request(&mut p);
    p.server
        .send_notification("2026-01-01T00:00:00Z", "<e xmlns=\"urn:e\"/>")
        .unwrap();
    p.server
        .send_reply(rid, Reply::data(CONTENT).unwrap())
        .unwrap();
    p.drive();
    let events = p.take_client_events();
    assert!(matches!(events[0], Event::Notification(_)));
    assert_eq!(streamed_content(first, &events[1..]), CONTENT);
}

/// The core never holds a streamed message: 64 MiB flow through with the live heap a few
/// MiB above where it started.
#[test]
fn a_large_streamed_reply_is_never_held() {
    let _m = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = pair(&[BASE_1_1]);
    let id = p
        .client
        .send_rpc_streamed(&Get::new(), None, p.now)
        .unwrap();
    p.drive();
    let rid = request(&mut p);
    p.server.send_reply_streamed(rid).unwrap();
    drain_into_client(&mut p);
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let piece = Bytes::from(vec![b'z'; 256 * 1024]);
    let mut received = 0usize;
    p.server
        .send_reply_piece(rid, Bytes::from_static(b"<big xmlns=\"urn:b\">"))
        .unwrap();
    for _ in 0..256 {
        p.server.send_reply_piece(rid, piece.clone()).unwrap();
        received += drain_into_client(&mut p);
    }
    p.server
        .send_reply_piece(rid, Bytes::from_static(b"</big>"))
        .unwrap();
    p.server.end_reply_stream(rid).unwrap();
    received += drain_into_client(&mut p);
    assert_eq!(
        received,
        256 * 256 * 1024 + "<big xmlns=\"urn:b\"></big>".len()
    );
    let peak = PEAK.load(Ordering::SeqCst) - base;
    assert!(
        peak < 4 << 20,
        "peak {peak} bytes above the start for 64 MiB streamed"
    );
    let _ = id;
}

/// Moves the server's output to the client in 64 KiB reads; returns the content bytes the
/// client handed out (dropping them, as a consumer would).
fn drain_into_client(p: &mut Pair) -> usize {
    let mut received = 0;
    loop {
        match p.server.poll_output() {
            netconf_proto::Output::Transmit(bytes) => {
                for piece in bytes.chunks(64 * 1024) {
                    p.client.handle_input(piece, p.now).unwrap();
                    while let netconf_proto::Output::Event(e) = p.client.poll_output() {
                        if let Event::DataPiece { data, .. } = e {
                            received += data.len();
                        }
                    }
                }
            }
            netconf_proto::Output::Wait(_) => return received,
            _ => {}
        }
    }
}

/// The client core stops wanting input while a streamed reply's consumer has a window's
/// worth waiting, and wants it again once the consumer reads: the bound adapters rely on.
/// A streamed reply's consumer, as an adapter keeps it: a [`DataBuffer`] behind a lock.
struct BufferSink(std::sync::Arc<std::sync::Mutex<netconf_proto::client::DataBuffer>>);

impl netconf_proto::client::DataSink for BufferSink {
    fn start(&mut self) {
        self.0.lock().unwrap().start()
    }
    fn data(&mut self, data: Bytes) -> bool {
        self.0.lock().unwrap().push(data)
    }
    fn end(&mut self, result: Result<Option<netconf_proto::RpcReply>, netconf_proto::Error>) {
        self.0.lock().unwrap().end(result)
    }
    fn backlog(&self) -> usize {
        self.0.lock().unwrap().backlog()
    }
}

type StreamingCore = netconf_proto::client::ClientCore<(), (), BufferSink>;

/// Hands everything `core` has to send to `server`.
fn core_to_server(core: &mut StreamingCore, server: &mut Session, now: Instant) {
    use netconf_proto::client::ClientOutput;
    loop {
        match core.poll() {
            ClientOutput::Transmit(b) => server.handle_input(&b, now).unwrap(),
            ClientOutput::Wait(_) => return,
            _ => {}
        }
    }
}

/// A client core (with `options`) and a server session past their hellos, the client's
/// streamed `<get>` sent, and the server's reply begun: `<x xmlns="urn:x">` and 150,000
/// bytes of content queued to send, the rest up to the test. Also the reply's consumer, and
/// the server's request handle.
fn streamed_get(
    options: &netconf_proto::client::ClientOptions,
    now: Instant,
) -> (
    StreamingCore,
    Session,
    std::sync::Arc<std::sync::Mutex<netconf_proto::client::DataBuffer>>,
    netconf_proto::RequestId,
) {
    use netconf_proto::client::DataBuffer;
    let mut core: StreamingCore = netconf_proto::client::ClientCore::new(
        Box::new(Session::client(options.session_config().clone(), now)),
        options,
    );
    let mut server = Session::server(Config::server(), 3, now);
    core_to_server(&mut core, &mut server, now);
    let hello = drain(&mut server).transmitted;
    core.handle_read(Ok(&hello), now);
    let buffer = std::sync::Arc::new(std::sync::Mutex::new(DataBuffer::new()));
    core.submit_streamed(&Get::new(), None, BufferSink(buffer.clone()), now);
    core_to_server(&mut core, &mut server, now);
    let rid = match drain(&mut server).events.as_slice() {
        [.., Event::Rpc { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    server.send_reply_streamed(rid).unwrap();
    server
        .send_reply_piece(rid, Bytes::from_static(b"<x xmlns=\"urn:x\">"))
        .unwrap();
    server
        .send_reply_piece(rid, Bytes::from(vec![b'y'; 150_000]))
        .unwrap();
    (core, server, buffer, rid)
}

#[test]
fn the_client_core_holds_reading_back_at_the_stream_window() {
    use netconf_proto::client::{ClientOptions, ClientOutput};

    let now = Instant::now();
    let options = ClientOptions::new().stream_window(100_000);
    let (mut core, mut server, buffer, rid) = streamed_get(&options, now);
    server
        .send_reply_piece(rid, Bytes::from_static(b"</x>"))
        .unwrap();
    server.end_reply_stream(rid).unwrap();
    let wire = drain(&mut server).transmitted;
    assert!(core.wants_read());
    // The adapter reads while the core wants to; the consumer is slow.
    let mut at = 0;
    while at < wire.len() && core.wants_read() {
        let end = (at + 16 * 1024).min(wire.len());
        core.handle_read(Ok(&wire[at..end]), now);
        at = end;
        while !matches!(core.poll(), ClientOutput::Wait(_)) {}
    }
    assert!(at < wire.len(), "the window did not hold reading back");
    assert!(buffer.lock().unwrap().backlog() >= 100_000);
    // The consumer reads; reading resumes and the rest arrives.
    let mut content = Vec::new();
    while let Some(p) = buffer.lock().unwrap().pop() {
        content.extend_from_slice(&p);
    }
    assert!(core.wants_read());
    core.handle_read(Ok(&wire[at..]), now);
    while !matches!(core.poll(), ClientOutput::Wait(_)) {}
    let mut b = buffer.lock().unwrap();
    while let Some(p) = b.pop() {
        content.extend_from_slice(&p);
    }
    assert!(matches!(b.take_end(), Some(Ok(None))));
    assert_eq!(content.len(), "<x xmlns=\"urn:x\"></x>".len() + 150_000);
}

/// A streamed request on a session that is closing fails with how the session ends (as a
/// plain one does), not with a usage error the caller could not have avoided.
#[test]
fn a_streamed_request_on_a_closing_session_fails_with_the_session_end() {
    use netconf_proto::client::{ClientCore, ClientOptions, ClientOutput, DataSink};
    use std::sync::{Arc, Mutex};

    type Ended = Arc<Mutex<Option<Result<Option<netconf_proto::RpcReply>, netconf_proto::Error>>>>;
    struct Sink(Ended);
    impl DataSink for Sink {
        fn start(&mut self) {}
        fn data(&mut self, _: Bytes) -> bool {
            true
        }
        fn end(&mut self, result: Result<Option<netconf_proto::RpcReply>, netconf_proto::Error>) {
            *self.0.lock().unwrap() = Some(result);
        }
        fn backlog(&self) -> usize {
            0
        }
    }

    let now = Instant::now();
    let options = ClientOptions::new();
    let mut core: ClientCore<(), (), Sink> = ClientCore::new(
        Box::new(Session::client(options.session_config().clone(), now)),
        &options,
    );
    let mut server = Session::server(Config::server(), 3, now);
    while let ClientOutput::Transmit(b) = core.poll() {
        server.handle_input(&b, now).unwrap();
    }
    core.handle_read(Ok(&drain(&mut server).transmitted), now);
    while !matches!(core.poll(), ClientOutput::Wait(_)) {}
    core.close((), now);
    let ended: Ended = Arc::default();
    core.submit_streamed(&Get::new(), None, Sink(ended.clone()), now);
    let result = ended
        .lock()
        .unwrap()
        .take()
        .expect("the sink was ended at once");
    assert!(
        matches!(result, Err(netconf_proto::Error::Closed(_))),
        "{result:?}"
    );
}

/// A large prebuilt `<data>` reply is queued as the very `Bytes` the server gave (never
/// copied: the first bytes can leave while the rest waits, and the payload is held once),
/// and the client reads back exactly that content, under both framings.
#[test]
fn a_large_prebuilt_reply_is_queued_not_copied() {
    use netconf_proto::Output;
    // Megabytes allocated here would show in the memory tests' peak.
    let _m = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    for bases in [&[BASE_1_0][..], &[BASE_1_0, BASE_1_1][..]] {
        let mut p = pair(bases);
        let id = p.client.send_rpc(&Get::new(), p.now).unwrap();
        p.drive();
        let rid = request(&mut p);
        let mut content = String::from("<big xmlns=\"urn:x\">");
        while content.len() < 1 << 20 {
            content.push_str("<i>0123456789</i>");
        }
        content.push_str("</big>");
        let payload = Bytes::from(content.clone());
        p.server
            .send_reply(rid, Reply::data_unchecked(payload.clone()))
            .unwrap();
        let mut wire = Vec::new();
        let mut shared = false;
        loop {
            match p.server.poll_output() {
                Output::Transmit(bytes) => {
                    shared |= bytes.as_ptr() == payload.as_ptr() && bytes.len() == payload.len();
                    wire.extend_from_slice(&bytes);
                }
                Output::Wait(_) => break,
                _ => {}
            }
        }
        assert!(shared, "the payload was copied ({bases:?})");
        p.client.handle_input(&wire, p.now).unwrap();
        p.drive();
        match p.take_client_events().as_slice() {
            [Event::Reply { id: got, reply }] => {
                assert_eq!(*got, id);
                assert_eq!(reply.data().unwrap().as_str(), content);
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A server that goes silent mid-reply just after the consumer caught up (reading resumed,
/// and nothing more came) has stalled: the session must end within about two stall
/// timeouts. Before, the flag set while reading was held back stayed set until data came,
/// so every deadline restarted the stall clock and the session waited for ever.
#[test]
fn a_server_silent_after_reading_resumed_stalls_the_session() {
    use netconf_proto::client::{ClientOptions, ClientOutput};
    use std::time::Duration;

    let start = Instant::now();
    let stall = Duration::from_secs(1);
    let options = ClientOptions::new()
        .config(Config::client().with_stall_timeout(Some(stall)))
        .stream_window(100_000);
    let (mut core, mut server, buffer, _) = streamed_get(&options, start);
    // ... and nothing more: no `</x>`, no end of the reply.
    let wire = drain(&mut server).transmitted;
    core.handle_read(Ok(&wire), start);
    while !matches!(core.poll(), ClientOutput::Wait(_)) {}
    assert!(!core.wants_read(), "the window holds reading back");
    // Held back for a while: not a stall (our choice).
    let mut now = start + 3 * stall;
    core.handle_timeout(now);
    assert!(!core.is_ended(), "held back, the session ended");
    // The consumer catches up; reading resumes and nothing arrives.
    while buffer.lock().unwrap().pop().is_some() {}
    let resumed = now;
    for _ in 0..10 {
        assert!(core.wants_read());
        let deadline = loop {
            match core.poll() {
                ClientOutput::Wait(deadline) => break deadline,
                ClientOutput::Ended(_) => break None,
                _ => {}
            }
        };
        if core.is_ended() {
            break;
        }
        now = deadline.expect("a stall deadline while mid-reply");
        core.handle_timeout(now);
    }
    assert!(
        core.is_ended(),
        "a silent server mid-reply never stalled the session"
    );
    assert!(
        now <= resumed + 2 * stall,
        "stalled {:?} after reading resumed",
        now - resumed
    );
}
