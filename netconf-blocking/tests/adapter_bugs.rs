//! The blocking adapter's bugs from issue 12, each over real TLS on loopback (or a Unix
//! socket, for the plaintext transport), each with a deadlock guard and no timing assertion.
//! The doc comment of every test says how the old adapter (before the sans-IO client and
//! server cores) failed it.
//!
//! The pipelined 32 MB edit-config behind a get, which needs the tokio server too, lives in
//! `tests/tests/peer_that_never_reads.rs` (an adapter's tests do not depend on another
//! adapter).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netconf_blocking::operations::{
    CreateSubscription, Datastore, GetConfig, KillSession, Rpc, RpcBody,
};
use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::{
    Client, ClientOptions, CloseReason, Config, Error, MessageId, Reply, Request, Server,
    UsageError,
};
use netconf_proto::rustls;
use netconf_proto::rustls::pki_types::ServerName;
use netconf_tests::certs::Pki;
use netconf_tests::deadline::with_deadline;

// ---------------------------------------------------------------------------------------------
// Harness

/// Polls `condition` every 10 ms for up to `timeout` (for state another thread updates).
fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const DATA: &str = "<top xmlns=\"urn:x\"><v>1</v></top>";

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .hello_timeout(Duration::from_secs(5))
        .rpc_timeout(Some(Duration::from_secs(10)))
}

/// get-config answers [`DATA`]; `<block/>` never returns (until `release` is dropped, so
/// the test's threads end with the test); anything else is `<ok/>`.
fn answer(request: &Request, release: &Mutex<mpsc::Receiver<()>>) -> Reply {
    match request.operation.name.as_str() {
        "get-config" => Reply::data(DATA).expect("data"),
        "block" => {
            let _ = release.lock().map(|rx| rx.recv());
            Reply::Ok
        }
        _ => Reply::Ok,
    }
}

/// A blocking server on 127.0.0.1 with [`answer`] as its handler. Dropping the returned
/// sender releases every blocked handler.
fn start(pki: &Pki, options: ServerOptions) -> (Server, String, mpsc::Sender<()>) {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release = Arc::new(Mutex::new(release_rx));
    let server = Server::new(options, move |request: &Request, _info: &SessionInfo| {
        answer(request, &release)
    });
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .expect("listening on 127.0.0.1");
    (server, addr.to_string(), release_tx)
}

fn connect(pki: &Pki, addr: &str) -> Result<Client, Error> {
    Client::connect_tls_with(addr, &pki.client_tls_options(), &client_options())
}

fn notification_config() -> Config {
    Config::server().with_capability("urn:ietf:params:netconf:capability:notification:1.0")
}

// ---------------------------------------------------------------------------------------------
// send / recv

/// `send` must not return `Ok` when its write failed. The old client wrote in `send` and,
/// when the write failed (the server had closed the connection: a reset), noted the error
/// for later and still returned `Ok(id)`. Now `send` returns once the request is written,
/// and a request that could not be written is an error.
#[test]
fn send_after_the_server_closed_is_an_error() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (server, addr, _release) = start(&pki, ServerOptions::new());
        let client = connect(&pki, &addr).expect("connect");
        client
            .call(&GetConfig::new(Datastore::Running))
            .expect("the session works");
        server.shutdown();
        // 8 MB cannot all be written to a peer that has closed: whether the client first
        // hears the end of the stream or the write fails, `send` must say so.
        let big = RpcBody::raw(format!(
            "<edit xmlns=\"urn:x\">{}</edit>",
            "x".repeat(8 << 20)
        ))
        .expect("body");
        let result = client.send(&big);
        assert!(
            matches!(result, Err(Error::Closed(_) | Error::Io(_))),
            "send to a closed server: {result:?}"
        );
        assert!(client.is_closed());
        // And so is every later one, at once.
        let again = client.send(&GetConfig::new(Datastore::Running));
        assert!(again.is_err(), "{again:?}");
    });
}

/// `recv(id)` for an id whose reply was already taken, or that was never sent, is a usage
/// error at once. The old client waited for a reply that could never come (forever: `recv`
/// had no deadline of its own), so this test hit its deadlock guard.
#[test]
fn recv_of_an_unknown_or_taken_id_is_a_usage_error() {
    with_deadline(20, || {
        let pki = Pki::generate();
        let (server, addr, _release) = start(&pki, ServerOptions::new());
        let client = connect(&pki, &addr).expect("connect");
        let id = client
            .send(&GetConfig::new(Datastore::Running))
            .expect("send");
        let reply = client.recv(id).expect("the reply");
        assert_eq!(reply.data().map(|d| d.as_str()), Some(DATA));

        match client.recv(id) {
            Err(Error::Usage(UsageError::UnknownMessageId(n))) => assert_eq!(n, id.0),
            other => panic!("recv of a reply already taken: {other:?}"),
        }
        let never = MessageId(id.0 + 1000);
        match client.recv(never) {
            Err(Error::Usage(UsageError::UnknownMessageId(n))) => assert_eq!(n, never.0),
            other => panic!("recv of an id never sent: {other:?}"),
        }
        // The session is unharmed.
        client
            .call(&GetConfig::new(Datastore::Running))
            .expect("still usable");
        client.close().expect("close");
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------------------------
// notify and a subscriber that never reads

/// A TLS client that says hello (base:1.0), creates a subscription, reads the `<ok/>` and
/// then never reads again, holding the connection open.
fn subscribe_and_stop_reading(
    pki: &Pki,
    addr: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let conn = rustls::ClientConnection::new(
        pki.client_config(true),
        ServerName::try_from("127.0.0.1").expect("name"),
    )
    .expect("TLS client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>\
<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<create-subscription xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"/></rpc>]]>]]>",
    )
    .expect("hello and create-subscription");
    tls.flush().expect("flush");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("</rpc-reply>") {
        let n = tls.read(&mut buf).expect("reading the hello and the reply");
        assert!(
            n > 0,
            "the server closed before answering create-subscription"
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("<ok/>"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    tls
}

/// `notify` with one subscriber that never reads must not delay another session's replies
/// nor the other subscribers. The old server wrote each notification to each subscriber in
/// turn, under the session's lock, with a 60 s write timeout: once the silent subscriber's
/// socket buffers were full, `notify` blocked (and with it every reply of that session and
/// the notifications of everyone else), so this test hit its deadlock guard. Now `notify`
/// only queues, and disconnects a subscriber that has let too much go unwritten.
#[test]
fn a_subscriber_that_never_reads_delays_nobody() {
    with_deadline(120, || {
        let pki = Pki::generate();
        let options = ServerOptions::new()
            .config(notification_config())
            // 16 notifications' worth of unwritten bytes (64 KiB) before a subscriber is cut.
            .notification_queue(16);
        let (server, addr, _release) = start(&pki, options);

        let silent = subscribe_and_stop_reading(&pki, &addr);
        let reader = connect(&pki, &addr).expect("the reading subscriber");
        let notifications = reader.notifications();
        reader
            .call(&CreateSubscription::new())
            .expect("create-subscription");
        let bystander = connect(&pki, &addr).expect("a session that only calls");
        let silent_id = {
            let ids = server.sessions();
            assert_eq!(ids.len(), 3, "{ids:?}");
            *ids.iter()
                .find(|id| **id != reader.session_id() && **id != bystander.session_id())
                .expect("the silent subscriber's session")
        };

        let pad = "p".repeat(32 * 1024);
        let mut cut_at = None;
        for i in 0..4000usize {
            let content = format!("<e xmlns=\"urn:x\"><i>{i}</i><pad>{pad}</pad></e>");
            let sent = server
                .notify("2026-01-01T00:00:00Z", &content)
                .expect("notify");
            assert!(sent >= 1, "notification {i} reached nobody");
            // The reading subscriber gets every notification, in order.
            let n = notifications
                .recv()
                .expect("the reading subscriber's session is open")
                .expect("not lagged");
            assert!(
                n.content.as_str().contains(&format!("<i>{i}</i>")),
                "notification {i} out of order"
            );
            // The other session's replies are not held up.
            if i % 25 == 0 {
                let data = bystander
                    .call(&GetConfig::new(Datastore::Running))
                    .expect("a reply while a subscriber does not read");
                assert_eq!(data.as_str(), DATA);
            }
            if cut_at.is_none() && !server.sessions().contains(&silent_id) {
                cut_at = Some(i);
            }
            if cut_at.is_some_and(|at| i >= at + 20) {
                break;
            }
        }
        let cut_at = cut_at.expect("the subscriber that never reads was never disconnected");
        println!("the silent subscriber was disconnected after {cut_at} notifications");
        assert!(server.sessions().contains(&reader.session_id()));
        assert!(server.sessions().contains(&bystander.session_id()));
        drop(silent);
        reader.close().expect("close");
        bystander.close().expect("close");
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------------------------
// Handlers beside the loop: kill-session and shutdown

/// kill-session of a session whose handler is busy answers `<ok/>` and ends the target at
/// once (RFC 6241 7.9): its client hears the end, the server forgets it. The old server ran
/// the handler on the session's thread, so the target stayed in `sessions()` (and its thread
/// alive) until the handler returned: never, here.
#[test]
fn kill_session_of_a_busy_session_ends_it() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (server, addr, release) = start(&pki, ServerOptions::new());
        let killer = connect(&pki, &addr).expect("connect");
        let busy = connect(&pki, &addr).expect("connect");
        let busy_id = busy.session_id();
        let id = busy
            .send(&RpcBody::raw("<block xmlns=\"urn:x\"/>").expect("body"))
            .expect("send");

        killer
            .call(&KillSession::new(busy_id).expect("session-id"))
            .expect("kill-session answers ok");
        assert!(
            eventually(Duration::from_secs(5), || !server
                .sessions()
                .contains(&busy_id)),
            "the killed session is still registered: {:?}",
            server.sessions()
        );
        // The busy request is answered with the end of the session, not left waiting.
        let result = busy.recv(id);
        assert!(
            matches!(result, Err(Error::Closed(_) | Error::Io(_))),
            "{result:?}"
        );
        assert!(busy.is_closed());
        killer
            .call(&GetConfig::new(Datastore::Running))
            .expect("the killer is unaffected");
        killer.close().expect("close");
        server.shutdown();
        drop(release);
    });
}

/// `shutdown()` returns while a handler never returns; the client of that handler's session
/// hears the end. The old server joined every session thread, one of them stuck in the
/// handler, so `shutdown()` never returned and this test hit its deadlock guard.
#[test]
fn shutdown_returns_while_a_handler_never_does() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (server, addr, release) = start(&pki, ServerOptions::new());
        let client = connect(&pki, &addr).expect("connect");
        let id = client
            .send(&RpcBody::raw("<block xmlns=\"urn:x\"/>").expect("body"))
            .expect("send");
        // Make sure the handler is running before shutting down.
        let other = connect(&pki, &addr).expect("connect");
        other
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        server.shutdown();
        assert!(server.sessions().is_empty(), "{:?}", server.sessions());
        let result = client.recv(id);
        assert!(
            matches!(result, Err(Error::Closed(_) | Error::Io(_))),
            "{result:?}"
        );
        // A server that shut down refuses new sessions.
        assert!(connect(&pki, &addr).is_err());
        drop(release);
    });
}

/// Requests pipelined behind a handler that never returns still get handled. Requests that
/// arrive together are served by one handler thread in turn (a thread per small request
/// costs more than the request); one stuck behind a slow handler gets a thread of its own
/// after a short grace. Without that rescue the get-config's handler never runs while the
/// first one blocks, and this test hits its guard.
#[test]
fn a_request_behind_a_handler_that_never_returns_is_handled() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (ran_tx, ran_rx) = mpsc::channel::<String>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let ran_tx = Mutex::new(ran_tx);
        let release_rx = Mutex::new(release_rx);
        let server = Server::new(
            ServerOptions::new(),
            move |request: &Request, _info: &SessionInfo| {
                let name = request.operation.name.clone();
                let _ = ran_tx.lock().map(|tx| tx.send(name.clone()));
                if name == "block" {
                    let _ = release_rx.lock().map(|rx| rx.recv());
                    return Reply::Ok;
                }
                Reply::data(DATA).expect("data")
            },
        );
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls_options())
            .expect("listening")
            .to_string();
        let client = connect(&pki, &addr).expect("connect");
        let blocked = client
            .send(&RpcBody::raw("<block xmlns=\"urn:x\"/>").expect("body"))
            .expect("send");
        let behind: Vec<MessageId> = (0..3)
            .map(|_| {
                client
                    .send(&GetConfig::new(Datastore::Running))
                    .expect("send")
            })
            .collect();
        let guard = Duration::from_secs(10);
        assert_eq!(ran_rx.recv_timeout(guard).as_deref(), Ok("block"));
        for _ in &behind {
            assert_eq!(
                ran_rx.recv_timeout(guard).as_deref(),
                Ok("get-config"),
                "a request waits for another's handler"
            );
        }
        // Replies keep the order of the requests: the first is released, then all arrive.
        release_tx.send(()).expect("release");
        client.recv(blocked).expect("the blocked request's reply");
        for id in behind {
            let reply = client.recv(id).expect("reply");
            let data = <GetConfig as Rpc>::output(reply).expect("data");
            assert_eq!(data.as_str(), DATA);
        }
        client.close().expect("close");
        server.shutdown();
    });
}

/// A reply is not held back behind the next request's handler for longer than a short
/// grace. The thread serving a session's queue of requests holds a reply while the next
/// request waits, to write the replies together; when that next handler blocks, the
/// session's thread writes the held reply. The two requests arrive in one TLS record, so
/// they are queued together; without the session's thread writing it, the get-config's
/// reply waits for the blocked handler and this test hits its guard.
#[test]
fn a_reply_is_not_held_behind_a_handler_that_blocks() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let server = Server::new(
            ServerOptions::new(),
            move |request: &Request, _info: &SessionInfo| {
                if request.operation.name == "block" {
                    let _ = release_rx.lock().map(|rx| rx.recv());
                    return Reply::Ok;
                }
                Reply::data(DATA).expect("data")
            },
        );
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls_options())
            .expect("listening")
            .to_string();
        let tcp = TcpStream::connect(&addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let conn = rustls::ClientConnection::new(
            pki.client_config(true),
            ServerName::try_from("127.0.0.1").expect("name"),
        )
        .expect("TLS client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut read_until = |tls: &mut rustls::StreamOwned<_, TcpStream>, what: &str| {
            while !String::from_utf8_lossy(&seen).contains(what) {
                let n = tls.read(&mut buf).unwrap_or_else(|e| {
                    panic!(
                        "waiting for {what}: {e}; got {}",
                        String::from_utf8_lossy(&seen)
                    )
                });
                assert!(n > 0, "the server closed before sending {what}");
                seen.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&seen).into_owned()
        };
        tls.write_all(
            b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>",
        )
        .expect("hello");
        tls.flush().expect("flush");
        read_until(&mut tls, "</hello>");
        // One write: one TLS record, one read on the server, both requests queued at once.
        tls.write_all(
            b"<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<get-config><source><running/></source></get-config></rpc>]]>]]>\
<rpc message-id=\"2\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<block xmlns=\"urn:x\"/></rpc>]]>]]>",
        )
        .expect("two requests");
        tls.flush().expect("flush");
        let got = read_until(&mut tls, "</rpc-reply>");
        assert!(
            got.contains("message-id=\"1\"") && got.contains(DATA),
            "the get-config's reply: {got}"
        );
        assert!(!got.contains("message-id=\"2\""), "{got}");
        release_tx.send(()).expect("release");
        let got = read_until(&mut tls, "message-id=\"2\"");
        assert!(got.ends_with("]]>]]>") || got.contains("<ok/>"), "{got}");
        server.shutdown();
    });
}

/// A peer that resets the connection while nobody waits for a reply ends the session: the
/// reading thread, which waits for readability without reading (so that a caller may read
/// its own reply), notices the reset by itself. The core takes a reset as the end of the
/// stream.
#[test]
fn a_reset_while_nobody_waits_ends_the_session_with_the_reset() {
    with_deadline(30, || {
        const HELLO: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
            <capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>\
            </capabilities><session-id>4</session-id></hello>]]>]]>";
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let peer = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream.write_all(HELLO.as_bytes()).expect("hello");
            // Wait for the client's hello and leave it unread: closing then sends a reset.
            stream.peek(&mut [0u8; 1]).expect("the client's hello");
            drop(stream);
        });
        let client =
            Client::from_stream(TcpStream::connect(addr).expect("connect")).expect("established");
        peer.join().expect("peer");
        assert!(
            eventually(Duration::from_secs(10), || client.is_closed()),
            "the reset went unnoticed"
        );
        let e = client
            .call(&GetConfig::new(Datastore::Running))
            .expect_err("the session is over");
        assert!(matches!(&e, Error::Closed(CloseReason::Eof)), "{e:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// Admission: session cap, handshake timeout, hooks that panic

/// `max_sessions` caps the sessions served at once; a connection beyond it is refused and a
/// freed place is taken again. The old server had no cap (and no such option: this did not
/// compile against it): a thread per TCP connection, before TLS.
#[test]
fn max_sessions_caps_the_sessions() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let (server, addr, _release) = start(&pki, ServerOptions::new().max_sessions(2));
        let a = connect(&pki, &addr).expect("first");
        let b = connect(&pki, &addr).expect("second");
        let refused = connect(&pki, &addr);
        assert!(refused.is_err(), "a third session was served");
        assert_eq!(server.sessions().len(), 2);
        a.close().expect("close");
        assert!(eventually(Duration::from_secs(5), || server
            .sessions()
            .len()
            == 1));
        let c = connect(&pki, &addr).expect("a freed place is taken");
        c.call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        b.close().expect("close");
        c.close().expect("close");
        server.shutdown();
    });
}

/// A TCP client that never starts the TLS handshake is disconnected after the handshake
/// timeout and leaves no session behind. The old server had no handshake timeout: the
/// connection (and its thread) stayed until the client left, and this test's read waited
/// for its own 20 s limit and failed.
#[test]
fn a_silent_tcp_client_is_disconnected_after_the_handshake_timeout() {
    with_deadline(40, || {
        let pki = Pki::generate();
        let (server, addr, _release) = start(
            &pki,
            ServerOptions::new().handshake_timeout(Duration::from_millis(300)),
        );
        let mut silent = TcpStream::connect(&addr).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        // The server may say why (a TLS alert) before it closes: read to the end.
        let mut buf = [0u8; 64];
        let mut received = 0;
        let end = loop {
            match silent.read(&mut buf) {
                Ok(n) if n > 0 && received < 1024 => received += n,
                other => break other,
            }
        };
        assert!(
            matches!(end, Ok(0))
                || matches!(&end, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "the silent client was not disconnected: {end:?} after {received} bytes"
        );
        assert!(eventually(Duration::from_secs(5), || server
            .sessions()
            .is_empty()));
        // The server is unharmed.
        let client = connect(&pki, &addr).expect("connect");
        client.close().expect("close");
        server.shutdown();
    });
}

/// A `cert_to_name` hook that panics refuses the client and leaves no stale entry in
/// `sessions()`. The old server registered the session first and let the panic unwind its
/// session thread past the removal, leaving the entry (and a clone of the socket, so the
/// client only gave up at its hello timeout) behind.
#[test]
fn a_panicking_cert_to_name_leaves_no_session() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let calls = Arc::new(AtomicUsize::new(0));
        let hook_calls = calls.clone();
        let options = ServerOptions::new().cert_to_name(move |_chain| {
            hook_calls.fetch_add(1, Ordering::SeqCst);
            panic!("a cert_to_name hook that panics")
        });
        let (server, addr, _release) = start(&pki, options);
        let outcome = connect(&pki, &addr);
        assert!(
            outcome.is_err(),
            "a client the hook did not name was served"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            eventually(Duration::from_secs(5), || server.sessions().is_empty()),
            "stale sessions: {:?}",
            server.sessions()
        );
        server.shutdown();
    });
}

/// An `on_session_end` hook that panics leaves no stale entry in `sessions()`, is called
/// for every session, and the server goes on serving. (The old blocking server happened to
/// remove the entry before it called the hook, so this one passed there too; the stale entry
/// of the issue came from the cert-to-name path, above. It guards the new server, where the
/// registry entry, the hook and the session's threads are all ended on every path.)
#[test]
fn a_panicking_on_session_end_leaves_no_session() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let ended = Arc::new(AtomicUsize::new(0));
        let hook_ended = ended.clone();
        let options = ServerOptions::new().on_session_end(move |_info| {
            hook_ended.fetch_add(1, Ordering::SeqCst);
            panic!("an on_session_end hook that panics")
        });
        let (server, addr, _release) = start(&pki, options);
        for _ in 0..3 {
            let client = connect(&pki, &addr).expect("connect");
            client
                .call(&GetConfig::new(Datastore::Running))
                .expect("get-config");
            client.close().expect("close");
        }
        assert!(
            eventually(Duration::from_secs(5), || server.sessions().is_empty()),
            "stale sessions: {:?}",
            server.sessions()
        );
        assert!(eventually(Duration::from_secs(5), || ended
            .load(Ordering::SeqCst)
            == 3));
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------------------------
// Any byte stream

/// The client over a Unix socket (`from_stream`) against `Server::serve_stream` on the
/// other end, whose username the transport vouches for. (The old adapter had neither a
/// plaintext server nor a client that was not TCP: this did not compile.)
#[cfg(unix)]
#[test]
fn client_and_server_over_a_unix_socket() {
    use std::os::unix::net::UnixStream;
    with_deadline(30, || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler_seen = seen.clone();
        let server = Server::new(ServerOptions::new(), move |request, info| {
            handler_seen
                .lock()
                .expect("seen")
                .push((request.operation.name.clone(), info.username.clone()));
            Reply::data(DATA).expect("data")
        });
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        let serving = {
            let server = server.clone();
            std::thread::spawn(move || server.serve_stream(theirs, Some("unix-user".into()), None))
        };
        let client = Client::from_stream_with(ours, &client_options()).expect("hello");
        assert!(client.session_id() > 0);
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        assert_eq!(data.as_str(), DATA);
        client.close().expect("close");
        serving
            .join()
            .expect("serve_stream did not panic")
            .expect("serve_stream ends cleanly");
        assert_eq!(
            seen.lock().expect("seen").clone(),
            vec![("get-config".to_owned(), Some("unix-user".to_owned()))]
        );
        assert!(server.sessions().is_empty());
    });
}

/// `serve_stream` returns once its session ends, even while a handler of that session never
/// returns. A session's loop runs quick handlers on its own thread (no hand-off per small
/// RPC); that thread must never be the caller's, which `serve_stream` and call home hold
/// until the session ends. With the loop on the caller's thread, the blocked handler kept
/// `serve_stream` from returning and this test hit its guard.
#[test]
fn serve_stream_returns_at_the_end_of_its_session_while_a_handler_never_does() {
    use std::os::unix::net::UnixStream;
    with_deadline(30, || {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release = Mutex::new(release_rx);
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let started = Mutex::new(started_tx);
        let server = Server::new(ServerOptions::new(), move |request, _info| {
            let _ = started.lock().map(|tx| tx.send(()));
            answer(request, &release)
        });
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        let serving = {
            let server = server.clone();
            std::thread::spawn(move || server.serve_stream(theirs, None, None))
        };
        let client = Client::from_stream_with(ours, &client_options()).expect("hello");
        let blocked = client
            .send(&RpcBody::raw("<block xmlns=\"urn:x\"/>").expect("body"))
            .expect("send");
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the handler runs");
        // The client goes away: the session ends with the handler still blocked.
        drop(client);
        serving
            .join()
            .expect("serve_stream did not panic")
            .expect("serve_stream ends cleanly");
        assert!(server.sessions().is_empty(), "{:?}", server.sessions());
        let _ = blocked;
        drop(release_tx);
        server.shutdown();
    });
}

/// TLS over streams the caller already has: the client dials TCP itself and runs TLS with
/// `connect_tls_over`; the server accepts the TCP connection itself and runs TLS with
/// `serve_tls` (what call home needs). (Neither existed in the old adapter.)
#[test]
fn tls_over_the_callers_streams() {
    with_deadline(30, || {
        let pki = Pki::generate();
        let server = Server::new(ServerOptions::new(), |request, _info| {
            if request.operation.name == "get-config" {
                Reply::data_unchecked(Bytes::from_static(DATA.as_bytes()))
            } else {
                Reply::Ok
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = {
            let server = server.clone();
            let tls = pki.server_tls_options();
            std::thread::spawn(move || {
                let (stream, peer) = listener.accept().expect("accept");
                server.serve_tls(stream, &tls, Some(peer))
            })
        };
        let stream = TcpStream::connect(addr).expect("connect");
        let client = Client::connect_tls_over(
            stream,
            "127.0.0.1",
            &pki.client_tls_options(),
            &client_options(),
        )
        .expect("TLS and hello over our own stream");
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        assert_eq!(data.as_str(), DATA);
        client.close().expect("close");
        serving
            .join()
            .expect("serve_tls did not panic")
            .expect("serve_tls ends cleanly");
        assert!(server.sessions().is_empty());
    });
}
