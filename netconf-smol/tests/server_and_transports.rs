//! What the smol adapter promises beyond one request and its reply, over real TLS on
//! loopback (issue 12), with the smol `Server` and `Client` on smol's global executor:
//! kill-session and shutdown abort handlers that never return, `notify` never waits for a
//! subscriber that stops reading, the session cap, the TLS handshake timeout, panicking hooks
//! leave no stale session, a client without subscribers keeps no notifications, progress
//! callbacks, and sessions over a Unix socket and over TLS on a stream the caller connected.
//!
//! Every test body runs on its own thread under a deadlock guard; none measures time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, StreamExt};
use netconf_smol::operations::{CreateSubscription, Datastore, GetConfig, KillSession};
use netconf_smol::server::{ServerOptions, SessionInfo};
use netconf_smol::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_smol::{Client, ClientOptions, Config, Driver, Error, Reply, Request, Server};
use netconf_tests::certs::Pki;

const GUARD: Duration = Duration::from_secs(20);
const NS: &str = "urn:test:smol-server";
const NOTIFICATION_CAPABILITY: &str = "urn:ietf:params:netconf:capability:notification:1.0";

/// Runs `body` under `smol::block_on` on its own thread; fails if it has not finished within
/// [`GUARD`].
fn guarded(body: impl Future<Output = ()> + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("guarded-test-body".into())
        .spawn(move || {
            smol::block_on(body);
            let _ = done.send(());
        })
        .expect("spawning the test thread");
    match finished.recv_timeout(GUARD) {
        Ok(()) => thread.join().expect("the test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ended without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: the test did not finish within {GUARD:?}")
        }
    }
}

/// `fut`, or a panic naming `what` if it does not finish within a few seconds.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(Duration::from_secs(5)).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("{what}: not done within 5 s"))
}

/// Polls `condition` every 10 ms for up to 5 s.
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    condition()
}

/// Certificates in memory: nothing is written to disk.
struct Tls {
    server: ServerTlsOptions,
    client: ClientTlsOptions,
}

impl Tls {
    fn new() -> Tls {
        let pki = Pki::generate();
        Tls {
            server: ServerTlsOptions::new(
                PemSource::pem(pki.server_cert_pem.clone()),
                PemSource::pem(pki.server_key_pem.clone()),
                PemSource::pem(pki.ca_pem.clone()),
            ),
            client: ClientTlsOptions::new()
                .ca_pem(pki.ca_pem.clone())
                .client_cert_pem(pki.client_cert_pem.clone(), pki.client_key_pem.clone()),
        }
    }
}

fn server_config() -> Config {
    Config::server().with_capability(NOTIFICATION_CAPABILITY)
}

/// Records that the future holding it was dropped (a handler aborted mid-await).
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the handler shares with the test.
struct Probe {
    /// The session-id of every `<hang>` request as its handler starts.
    entered: async_channel::Sender<u32>,
    /// `<hang>` handlers dropped before they finished (they never finish).
    dropped: Arc<AtomicUsize>,
    handled: AtomicUsize,
}

impl Probe {
    fn new() -> (Arc<Probe>, async_channel::Receiver<u32>) {
        let (entered, rx) = async_channel::unbounded();
        let probe = Probe {
            entered,
            dropped: Arc::new(AtomicUsize::new(0)),
            handled: AtomicUsize::new(0),
        };
        (Arc::new(probe), rx)
    }
}

/// `<hang>` never returns; `<big><size>n</size></big>` answers n bytes of data; `<whoami>`
/// answers the session's username; anything else `<ok/>`.
async fn handle(request: Request, info: SessionInfo, probe: Arc<Probe>) -> Reply {
    probe.handled.fetch_add(1, Ordering::SeqCst);
    match request.operation.name.as_str() {
        "hang" => {
            let _guard = DropGuard(probe.dropped.clone());
            let _ = probe.entered.try_send(info.session_id);
            std::future::pending::<()>().await;
            unreachable!("pending() never completes")
        }
        "big" => {
            let size = request
                .body
                .child_text("size")
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or_default();
            Reply::data(format!("<big xmlns=\"{NS}\">{}</big>", "b".repeat(size))).unwrap()
        }
        "whoami" => Reply::data(format!(
            "<user xmlns=\"{NS}\">{}</user>",
            info.username.as_deref().unwrap_or("(none)")
        ))
        .unwrap(),
        "get-config" => Reply::data(format!("<top xmlns=\"{NS}\"/>")).unwrap(),
        _ => Reply::Ok,
    }
}

fn new_server(options: ServerOptions, probe: &Arc<Probe>) -> Server {
    let probe = probe.clone();
    Server::new(options, move |request, info| {
        handle(request, info, probe.clone())
    })
}

async fn listen(server: &Server, tls: &Tls) -> String {
    server
        .listen_tls("127.0.0.1:0", &tls.server)
        .await
        .expect("listen")
        .to_string()
}

async fn connect(addr: &str, tls: &Tls) -> Client {
    within("connect", Client::connect_tls(addr, &tls.client))
        .await
        .expect("connect")
}

fn hang() -> String {
    format!("<hang xmlns=\"{NS}\"/>")
}

// ---------------------------------------------------------------------------------------
// kill-session and shutdown abort handlers

#[test]
fn kill_session_of_a_busy_session_aborts_its_handler() {
    guarded(async {
        let tls = Tls::new();
        let (probe, entered) = Probe::new();
        let server = new_server(ServerOptions::new().config(server_config()), &probe);
        let addr = listen(&server, &tls).await;
        let killer = connect(&addr, &tls).await;
        let victim = connect(&addr, &tls).await;
        let mut victim_notifications = victim.notifications();

        // The victim's handler is busy, for ever.
        let busy = {
            let victim = victim.clone();
            smol::spawn(async move { victim.rpc_raw(&hang()).await })
        };
        let id = within("the handler starting", entered.recv())
            .await
            .expect("entered");
        assert_eq!(id, victim.session_id());

        // kill-session is answered <ok/> although the target is busy...
        within(
            "kill-session",
            killer.call(&KillSession::new(victim.session_id()).unwrap()),
        )
        .await
        .expect("kill-session answers ok");
        // ...the target's handler is aborted...
        assert!(
            eventually(|| probe.dropped.load(Ordering::SeqCst) == 1).await,
            "the busy handler was not aborted"
        );
        // ...and its session is closed: its client sees the end.
        let result = within("the busy request", busy).await;
        assert!(result.is_err(), "a killed session answered: {result:?}");
        assert!(eventually(|| victim.is_closed()).await);
        assert!(
            within("the notification stream", victim_notifications.next())
                .await
                .is_none()
        );
        assert!(eventually(|| server.sessions() == vec![killer.session_id()]).await);
        killer
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("the killer goes on");
        killer.close().await.expect("close");
        within("shutdown", server.shutdown()).await;
    })
}

#[test]
fn shutdown_returns_while_a_handler_never_returns() {
    guarded(async {
        let tls = Tls::new();
        let (probe, entered) = Probe::new();
        let server = new_server(ServerOptions::new(), &probe);
        let addr = listen(&server, &tls).await;
        let client = connect(&addr, &tls).await;
        let busy = {
            let client = client.clone();
            smol::spawn(async move { client.rpc_raw(&hang()).await })
        };
        within("the handler starting", entered.recv())
            .await
            .expect("entered");

        within(
            "shutdown with a handler that never returns",
            server.shutdown(),
        )
        .await;
        assert!(server.sessions().is_empty());
        assert!(eventually(|| probe.dropped.load(Ordering::SeqCst) == 1).await);
        let result = within("the busy request", busy).await;
        assert!(result.is_err(), "{result:?}");
        assert!(eventually(|| client.is_closed()).await);
        // Nothing is accepted any more.
        let late = within(
            "a connection after shutdown",
            Client::connect_tls(&addr, &tls.client),
        )
        .await;
        assert!(late.is_err(), "{late:?}");
    })
}

// ---------------------------------------------------------------------------------------
// notify and a subscriber that stops reading

/// A driver the test can stop polling: the session's socket stays open but nobody reads
/// it, as with a client stuck in its own code. `resume` lets it run again.
struct Pausable {
    driver: Driver,
    paused: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Future for Pausable {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.paused.load(Ordering::SeqCst) {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut self.driver).poll(cx)
    }
}

struct PauseSwitch {
    paused: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl PauseSwitch {
    fn wrap(driver: Driver) -> (Pausable, PauseSwitch) {
        let paused = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None));
        (
            Pausable {
                driver,
                paused: paused.clone(),
                waker: waker.clone(),
            },
            PauseSwitch { paused, waker },
        )
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
}

/// The reader's notifications arrive complete and in order.
fn expect_seq(seq: usize, received: &mut usize) {
    assert_eq!(seq, *received, "the reader lost or reordered notifications");
    *received += 1;
}

fn event_time(i: usize) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)
}

#[test]
fn notify_never_blocks_on_a_subscriber_that_stops_reading() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let options = ServerOptions::new()
            .config(server_config())
            .notification_queue(16);
        let server = new_server(options, &probe);
        let addr = listen(&server, &tls).await;

        // The stuck subscriber: subscribes, then its driver is never polled again.
        let (stuck, driver) = within(
            "connect",
            Client::connect_tls_with_driver(&addr, &tls.client, &ClientOptions::new()),
        )
        .await
        .expect("connect");
        let (driver, switch) = PauseSwitch::wrap(driver);
        let stuck_driver = smol::spawn(driver);
        stuck
            .call(&CreateSubscription::new())
            .await
            .expect("subscribe");
        switch.pause();

        // The reading subscriber forwards every notification's sequence number.
        let reader = connect(&addr, &tls).await;
        let mut notifications = reader.notifications();
        reader
            .call(&CreateSubscription::new())
            .await
            .expect("subscribe");
        let (got_tx, got) = async_channel::unbounded::<usize>();
        let reading = smol::spawn(async move {
            while let Some(n) = notifications.next().await {
                let n = n.expect("the reading subscriber lagged");
                let seq = n.content.child_text("seq").expect("seq");
                if got_tx.send(seq.parse().expect("a number")).await.is_err() {
                    break;
                }
            }
        });

        // Notifications of 4 KiB, at most 8 unread by the reader at any time: the stuck
        // session's socket buffers fill, then its queue, then it is disconnected. notify
        // never waits meanwhile (a notify that blocked would hang the test here).
        let padding = "p".repeat(4096);
        let content =
            |i: usize| format!("<tick xmlns=\"{NS}\"><seq>{i}</seq><pad>{padding}</pad></tick>");
        let mut sent = 0;
        let mut received = 0;
        while server.sessions().contains(&stuck.session_id()) {
            assert!(sent < 5000, "the stuck subscriber was never disconnected");
            while sent - received >= 8 {
                let seq = within("the reader's next notification", got.recv())
                    .await
                    .expect("the reader stopped");
                expect_seq(seq, &mut received);
            }
            server
                .notify(&event_time(sent), &content(sent))
                .expect("notify");
            sent += 1;
        }
        eprintln!("the stuck subscriber was disconnected after {sent} notifications");
        // The reader keeps receiving, and is now the only subscriber.
        for _ in 0..100 {
            while sent - received >= 8 {
                let seq = within("the reader's next notification", got.recv())
                    .await
                    .expect("the reader stopped");
                expect_seq(seq, &mut received);
            }
            assert_eq!(
                server
                    .notify(&event_time(sent), &content(sent))
                    .expect("notify"),
                1
            );
            sent += 1;
        }
        while received < sent {
            let seq = within("the reader's last notifications", got.recv())
                .await
                .expect("the reader stopped");
            expect_seq(seq, &mut received);
        }
        assert!(!reader.is_closed());
        assert_eq!(server.sessions(), vec![reader.session_id()]);

        // Once it reads again, the stuck client finds its session ended.
        switch.resume();
        assert!(
            eventually(|| stuck.is_closed()).await,
            "the disconnected client did not see its session end"
        );
        within("the stuck driver finishing", stuck_driver).await;
        reader.close().await.expect("close");
        within("the reader finishing", reading).await;
        within("shutdown", server.shutdown()).await;
    })
}

// ---------------------------------------------------------------------------------------
// The session cap and the handshake timeout

#[test]
fn a_connection_beyond_max_sessions_is_closed_and_a_freed_slot_is_reused() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let server = new_server(ServerOptions::new().max_sessions(1), &probe);
        let addr = listen(&server, &tls).await;
        let first = connect(&addr, &tls).await;
        assert_eq!(server.sessions(), vec![first.session_id()]);

        // Beyond the cap: closed before any session exists.
        let refused = within(
            "a connection beyond the cap",
            Client::connect_tls(&addr, &tls.client),
        )
        .await;
        assert!(refused.is_err(), "a session beyond the cap: {refused:?}");
        assert_eq!(server.sessions(), vec![first.session_id()]);
        // A raw TCP connection beyond the cap is closed without a byte.
        let mut raw = async_net::TcpStream::connect(&addr).await.expect("tcp");
        let mut buf = [0u8; 64];
        let read = within("the refused connection closing", raw.read(&mut buf)).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(probe.handled.load(Ordering::SeqCst), 0);

        // The slot, once freed, serves the next client.
        first.close().await.expect("close");
        assert!(eventually(|| server.sessions().is_empty()).await);
        let next_client = connect(&addr, &tls).await;
        next_client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config in the freed slot");
        assert_eq!(server.sessions(), vec![next_client.session_id()]);
        next_client.close().await.expect("close");
        within("shutdown", server.shutdown()).await;
    })
}

#[test]
fn a_tls_handshake_that_never_starts_is_closed_after_the_handshake_timeout() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let options = ServerOptions::new()
            .max_sessions(1)
            .handshake_timeout(Duration::from_secs(1));
        let server = new_server(options, &probe);
        let addr = listen(&server, &tls).await;

        // A TCP client that sends nothing holds the only slot until the timeout.
        let mut silent = async_net::TcpStream::connect(&addr).await.expect("tcp");
        assert!(eventually(|| server.sessions().len() == 1).await);
        let mut buf = [0u8; 1024];
        within("the silent connection closing", async {
            loop {
                match silent.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {} // a TLS alert, say
                }
            }
        })
        .await;
        assert!(eventually(|| server.sessions().is_empty()).await);

        // The slot is free again.
        let client = connect(&addr, &tls).await;
        client.close().await.expect("close");
        within("shutdown", server.shutdown()).await;
    })
}

// ---------------------------------------------------------------------------------------
// Panicking hooks and handlers leave no stale session

#[test]
fn a_panicking_cert_to_name_hook_leaves_no_stale_session() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let options = ServerOptions::new().cert_to_name(|_| panic!("cert_to_name panics"));
        let server = new_server(options, &probe);
        let addr = listen(&server, &tls).await;
        for _ in 0..3 {
            match within("connect", Client::connect_tls(&addr, &tls.client)).await {
                Err(e) => eprintln!("refused: {e}"),
                Ok(client) => {
                    let r = client.call(&GetConfig::new(Datastore::Running)).await;
                    assert!(r.is_err(), "{r:?}");
                }
            }
        }
        assert!(
            eventually(|| server.sessions().is_empty()).await,
            "stale sessions: {:?}",
            server.sessions()
        );
        assert_eq!(probe.handled.load(Ordering::SeqCst), 0);
        within("shutdown", server.shutdown()).await;
    })
}

#[test]
fn a_panicking_on_session_end_hook_leaves_no_stale_session() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let ended = Arc::new(AtomicUsize::new(0));
        let options = {
            let ended = ended.clone();
            ServerOptions::new().on_session_end(move |_| {
                ended.fetch_add(1, Ordering::SeqCst);
                panic!("on_session_end panics")
            })
        };
        let server = new_server(options.max_sessions(2), &probe);
        let addr = listen(&server, &tls).await;
        // More sessions than the cap, one after the other: each slot must be freed.
        for round in 0..4 {
            let client = connect(&addr, &tls).await;
            client
                .call(&GetConfig::new(Datastore::Running))
                .await
                .expect("get-config");
            client.close().await.expect("close");
            assert!(
                eventually(|| server.sessions().is_empty()).await,
                "round {round}: stale sessions {:?}",
                server.sessions()
            );
        }
        assert!(eventually(|| ended.load(Ordering::SeqCst) == 4).await);
        within("shutdown", server.shutdown()).await;
    })
}

/// A handler whose synchronous part panics (before it returns its future) costs its one
/// request, like a panic inside the future: the session goes on, nothing goes stale.
#[test]
fn a_handler_panicking_before_its_future_fails_only_its_request() {
    guarded(async {
        let tls = Tls::new();
        let server = Server::new(ServerOptions::new(), |request: Request, _info| {
            if request.operation.name == "boom" {
                panic!("the handler panics before returning a future");
            }
            async { Reply::Ok }
        });
        let addr = listen(&server, &tls).await;
        let client = connect(&addr, &tls).await;
        match within(
            "the panicking request",
            client.rpc_raw(&format!("<boom xmlns=\"{NS}\"/>")),
        )
        .await
        {
            Err(Error::Rpc(errors)) => {
                assert_eq!(errors[0].tag, netconf_smol::ErrorTag::OperationFailed)
            }
            other => panic!("expected operation-failed, got {other:?}"),
        }
        within(
            "the next request",
            client.rpc_raw(&format!("<fine xmlns=\"{NS}\"/>")),
        )
        .await
        .expect("the session survives");
        assert_eq!(server.sessions(), vec![client.session_id()]);
        client.close().await.expect("close");
        assert!(eventually(|| server.sessions().is_empty()).await);
        within("shutdown", server.shutdown()).await;
    })
}

// ---------------------------------------------------------------------------------------
// The client: notification memory and progress

#[test]
fn a_client_keeps_no_notifications_when_nobody_subscribed() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let options = ServerOptions::new()
            .config(server_config())
            .notification_queue(16 * 1024);
        let server = new_server(options, &probe);
        let addr = listen(&server, &tls).await;
        let client = connect(&addr, &tls).await;
        // Subscribed at the server, but nobody called notifications().
        client
            .call(&CreateSubscription::new())
            .await
            .expect("create-subscription");
        const SENT: usize = 10_000;
        for i in 0..SENT {
            let content = format!("<old xmlns=\"{NS}\"><seq>{i}</seq></old>");
            assert_eq!(server.notify(&event_time(i), &content).expect("notify"), 1);
        }
        // A round trip: the server writes what it queued before this reply, so every one
        // of the 10,000 has reached the client when the reply does.
        client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");

        // A subscriber from now on sees only what is sent from now on: nothing was kept.
        let mut notifications = client.notifications();
        let content = format!("<new xmlns=\"{NS}\"/>");
        server.notify(&event_time(0), &content).expect("notify");
        let first = within("the new notification", notifications.next())
            .await
            .expect("stream")
            .expect("not lagged: nothing was queued for this subscriber");
        assert!(first.content.as_str().contains("<new"), "{first:?}");
        client.close().await.expect("close");
        within("shutdown", server.shutdown()).await;
    })
}

#[test]
fn progress_is_reported_with_growing_byte_counts_during_a_large_reply() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let server = new_server(ServerOptions::new(), &probe);
        let addr = listen(&server, &tls).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let options = {
            let seen = seen.clone();
            ClientOptions::new().on_progress(move |p| seen.lock().unwrap().push(p.received))
        };
        let client = within(
            "connect",
            Client::connect_tls_with(&addr, &tls.client, &options),
        )
        .await
        .expect("connect");
        seen.lock().unwrap().clear();

        const SIZE: usize = 4 << 20;
        let reply = client
            .rpc_raw(&format!("<big xmlns=\"{NS}\"><size>{SIZE}</size></big>"))
            .await
            .expect("the large reply");
        assert!(reply.data().expect("data").as_str().len() > SIZE);
        let seen = seen.lock().unwrap().clone();
        // Reads while the reply was arriving report how much of it had arrived.
        let arriving: Vec<usize> = seen.iter().copied().filter(|&n| n > 0).collect();
        assert!(arriving.len() >= 2, "progress calls: {seen:?}");
        // (A read that ends inside a TLS record may add no plaintext: never less, though.)
        assert!(
            arriving.windows(2).all(|w| w[0] <= w[1]) && arriving[0] < arriving[arriving.len() - 1],
            "the byte counts did not grow: {arriving:?}"
        );
        assert!(
            *arriving.last().unwrap() > SIZE / 2,
            "progress stopped early: {arriving:?}"
        );
        client.close().await.expect("close");
        within("shutdown", server.shutdown()).await;
    })
}

// ---------------------------------------------------------------------------------------
// Other transports: a Unix socket, TLS over a stream the caller connected

#[test]
fn a_client_over_a_unix_socket_against_serve_stream() {
    guarded(async {
        let dir = std::env::temp_dir().join(format!(
            "netconf-smol-unix-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("netconf.sock");
        let listener = async_net::unix::UnixListener::bind(&path).expect("bind");
        let (probe, _entered) = Probe::new();
        let server = new_server(ServerOptions::new(), &probe);
        let serving = {
            let server = server.clone();
            smol::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                server
                    .serve_stream(stream, Some("alice".into()), None)
                    .await
            })
        };
        let stream = async_net::unix::UnixStream::connect(&path)
            .await
            .expect("connect");
        let client = within("the hello exchange", Client::from_stream(stream))
            .await
            .expect("hello");
        assert!(client.session_id() >= 1);
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let reply = client
            .rpc_raw(&format!("<whoami xmlns=\"{NS}\"/>"))
            .await
            .expect("whoami");
        assert_eq!(
            reply.data().and_then(|d| d.child_text("user")).as_deref(),
            Some("alice")
        );
        client.close().await.expect("close");
        within("serve_stream returning", serving)
            .await
            .expect("serve_stream");
        assert!(server.sessions().is_empty());
        within("shutdown", server.shutdown()).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
}

#[test]
fn tls_over_a_stream_the_caller_connected() {
    guarded(async {
        let tls = Tls::new();
        let (probe, _entered) = Probe::new();
        let server = new_server(ServerOptions::new(), &probe);
        // The test accepts the TCP connection and hands it to the server...
        let listener = async_net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = {
            let server = server.clone();
            let tls = tls.server.clone();
            smol::spawn(async move {
                let (stream, peer) = listener.accept().await.expect("accept");
                server.serve_tls(stream, &tls, Some(peer)).await
            })
        };
        // ...and connects the TCP stream the client runs TLS over.
        let stream = async_net::TcpStream::connect(addr).await.expect("connect");
        let client = within(
            "the TLS and hello exchange",
            Client::connect_tls_over(stream, "localhost", &tls.client, &ClientOptions::new()),
        )
        .await
        .expect("connect_tls_over");
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert!(data.as_str().contains(NS), "{data}");
        client.close().await.expect("close");
        within("serve_tls returning", serving)
            .await
            .expect("serve_tls");
        assert!(server.sessions().is_empty());
        within("shutdown", server.shutdown()).await;
    })
}
