//! What the async adapters promise beyond one request and its reply, on each async runtime
//! (tokio and smol: every test runs on both), over real TLS on loopback (issue 12):
//! kill-session and shutdown abort handlers that never return, `notify` never waits for a
//! subscriber that stops reading, the session cap, the TLS handshake timeout, panicking hooks
//! leave no stale session, a client without subscribers keeps no notifications, and progress
//! callbacks. Sessions over a Unix socket and over TLS on a stream the caller connected take
//! each runtime's own stream types, so they stay in each adapter's
//! `tests/server_and_transports.rs`.
//!
//! Every test runs under a deadlock guard; none measures time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, StreamExt};
use netconf_async::adapter::operations::{CreateSubscription, Datastore, GetConfig, KillSession};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::tls::{ClientTlsOptions, ServerTlsOptions};
use netconf_async::adapter::{ClientOptions, Config, Driver, Error, ErrorTag, Reply, Request};
use netconf_async::{BoxStream, Client, Runtime, Server};
use netconf_tests::certs::Pki;

netconf_tests::on_each_runtime!(
    kill_session_of_a_busy_session_aborts_its_handler,
    shutdown_returns_while_a_handler_never_returns,
    notify_never_blocks_on_a_subscriber_that_stops_reading,
    a_connection_beyond_max_sessions_is_closed_and_a_freed_slot_is_reused,
    a_tls_handshake_that_never_starts_is_closed_after_the_handshake_timeout,
    a_panicking_cert_to_name_hook_leaves_no_stale_session,
    a_panicking_on_session_end_hook_leaves_no_stale_session,
    a_handler_panicking_before_its_future_fails_only_its_request,
    a_client_keeps_no_notifications_when_nobody_subscribed,
    progress_is_reported_with_growing_byte_counts_during_a_large_reply,
);

const GUARD: Duration = Duration::from_secs(20);
const NS: &str = "urn:test:async-server";
const NOTIFICATION_CAPABILITY: &str = "urn:ietf:params:netconf:capability:notification:1.0";

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    futures_lite::future::or(async { Some(body.await) }, async {
        async_io::Timer::after(GUARD).await;
        None
    })
    .await
    .expect("deadlock guard: the test did not finish in time")
}

/// `fut`, or a panic naming `what` if it does not finish within a few seconds.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    netconf_tests::deadline::within(Duration::from_secs(5), what, fut).await
}

/// Polls `condition` every 10 ms (on the runtime's timer) for up to 5 s.
async fn eventually<R: Runtime>(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        R::sleep_until(Instant::now() + Duration::from_millis(10)).await;
    }
    condition()
}

/// Runs `task` on the runtime at once; completes with its output (a task that panicked
/// fails the test here).
fn spawn<R: Runtime, T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (done, finished) = ::smol::channel::bounded(1);
    R::spawn(Box::pin(async move {
        let _ = done.send(task.await).await;
    }));
    async move { finished.recv().await.expect("the task panicked") }
}

/// A raw TCP connection to `addr` on the runtime's own TCP stream.
async fn raw_tcp<R: Runtime>(addr: &str) -> BoxStream {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    R::connect(addr.ip().to_string(), addr.port())
        .await
        .expect("tcp")
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
            server: pki.server_tls_options(),
            client: pki.client_tls_options(),
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
    entered: ::smol::channel::Sender<u32>,
    /// `<hang>` handlers dropped before they finished (they never finish).
    dropped: Arc<AtomicUsize>,
    handled: AtomicUsize,
}

impl Probe {
    fn new() -> (Arc<Probe>, ::smol::channel::Receiver<u32>) {
        let (entered, rx) = ::smol::channel::unbounded();
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

fn new_server<R: Runtime>(options: ServerOptions, probe: &Arc<Probe>) -> Server<R> {
    let probe = probe.clone();
    Server::new(options, move |request, info| {
        handle(request, info, probe.clone())
    })
}

async fn listen<R: Runtime>(server: &Server<R>, tls: &Tls) -> String {
    server
        .listen_tls("127.0.0.1:0", &tls.server)
        .await
        .expect("listen")
        .to_string()
}

async fn connect<R: Runtime>(addr: &str, tls: &Tls) -> Client<R> {
    within("connect", Client::connect_tls(addr, &tls.client))
        .await
        .expect("connect")
}

fn hang() -> String {
    format!("<hang xmlns=\"{NS}\"/>")
}

// ---------------------------------------------------------------------------------------
// kill-session and shutdown abort handlers

async fn kill_session_of_a_busy_session_aborts_its_handler<R: Runtime>() {
    let tls = Tls::new();
    let (probe, entered) = Probe::new();
    let server = new_server::<R>(ServerOptions::new().config(server_config()), &probe);
    let addr = listen(&server, &tls).await;
    let killer = connect::<R>(&addr, &tls).await;
    let victim = connect::<R>(&addr, &tls).await;
    let mut victim_notifications = victim.notifications();

    // The victim's handler is busy, for ever.
    let busy = {
        let victim = victim.clone();
        spawn::<R, _>(async move { victim.rpc_raw(&hang()).await })
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
        eventually::<R>(|| probe.dropped.load(Ordering::SeqCst) == 1).await,
        "the busy handler was not aborted"
    );
    // ...and its session is closed: its client sees the end.
    let result = within("the busy request", busy).await;
    assert!(result.is_err(), "a killed session answered: {result:?}");
    assert!(eventually::<R>(|| victim.is_closed()).await);
    assert!(
        within("the notification stream", victim_notifications.next())
            .await
            .is_none()
    );
    assert!(eventually::<R>(|| server.sessions() == vec![killer.session_id()]).await);
    killer
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("the killer goes on");
    killer.close().await.expect("close");
    within("shutdown", server.shutdown()).await;
}

async fn shutdown_returns_while_a_handler_never_returns<R: Runtime>() {
    let tls = Tls::new();
    let (probe, entered) = Probe::new();
    let server = new_server::<R>(ServerOptions::new(), &probe);
    let addr = listen(&server, &tls).await;
    let client = connect::<R>(&addr, &tls).await;
    let busy = {
        let client = client.clone();
        spawn::<R, _>(async move { client.rpc_raw(&hang()).await })
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
    assert!(eventually::<R>(|| probe.dropped.load(Ordering::SeqCst) == 1).await);
    let result = within("the busy request", busy).await;
    assert!(result.is_err(), "{result:?}");
    assert!(eventually::<R>(|| client.is_closed()).await);
    // Nothing is accepted any more.
    let late = within(
        "a connection after shutdown",
        Client::<R>::connect_tls(&addr, &tls.client),
    )
    .await;
    assert!(late.is_err(), "{late:?}");
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

async fn notify_never_blocks_on_a_subscriber_that_stops_reading<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let options = ServerOptions::new()
        .config(server_config())
        .notification_queue(16);
    let server = new_server::<R>(options, &probe);
    let addr = listen(&server, &tls).await;

    // The stuck subscriber: subscribes, then its driver is never polled again.
    let (stuck, driver) = within(
        "connect",
        Client::<R>::connect_tls_with_driver(&addr, &tls.client, &ClientOptions::new()),
    )
    .await
    .expect("connect");
    let (driver, switch) = PauseSwitch::wrap(driver);
    let stuck_driver = spawn::<R, _>(driver);
    stuck
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");
    switch.pause();

    // The reading subscriber forwards every notification's sequence number.
    let reader = connect::<R>(&addr, &tls).await;
    let mut notifications = reader.notifications();
    reader
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");
    let (got_tx, got) = ::smol::channel::unbounded::<usize>();
    let reading = spawn::<R, _>(async move {
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
        eventually::<R>(|| stuck.is_closed()).await,
        "the disconnected client did not see its session end"
    );
    within("the stuck driver finishing", stuck_driver).await;
    reader.close().await.expect("close");
    within("the reader finishing", reading).await;
    within("shutdown", server.shutdown()).await;
}

// ---------------------------------------------------------------------------------------
// The session cap and the handshake timeout

async fn a_connection_beyond_max_sessions_is_closed_and_a_freed_slot_is_reused<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let server = new_server::<R>(ServerOptions::new().max_sessions(1), &probe);
    let addr = listen(&server, &tls).await;
    let first = connect::<R>(&addr, &tls).await;
    assert_eq!(server.sessions(), vec![first.session_id()]);

    // Beyond the cap: closed before any session exists.
    let refused = within(
        "a connection beyond the cap",
        Client::<R>::connect_tls(&addr, &tls.client),
    )
    .await;
    assert!(refused.is_err(), "a session beyond the cap: {refused:?}");
    assert_eq!(server.sessions(), vec![first.session_id()]);
    // A raw TCP connection beyond the cap is closed without a byte.
    let mut raw = raw_tcp::<R>(&addr).await;
    let mut buf = [0u8; 64];
    let read = within("the refused connection closing", raw.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(probe.handled.load(Ordering::SeqCst), 0);

    // The slot, once freed, serves the next client.
    first.close().await.expect("close");
    assert!(eventually::<R>(|| server.sessions().is_empty()).await);
    let next_client = connect::<R>(&addr, &tls).await;
    next_client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("get-config in the freed slot");
    assert_eq!(server.sessions(), vec![next_client.session_id()]);
    next_client.close().await.expect("close");
    within("shutdown", server.shutdown()).await;
}

async fn a_tls_handshake_that_never_starts_is_closed_after_the_handshake_timeout<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let options = ServerOptions::new()
        .max_sessions(1)
        .handshake_timeout(Duration::from_secs(1));
    let server = new_server::<R>(options, &probe);
    let addr = listen(&server, &tls).await;

    // A TCP client that sends nothing holds the only slot until the timeout.
    let mut silent = raw_tcp::<R>(&addr).await;
    assert!(eventually::<R>(|| server.sessions().len() == 1).await);
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
    assert!(eventually::<R>(|| server.sessions().is_empty()).await);

    // The slot is free again.
    let client = connect::<R>(&addr, &tls).await;
    client.close().await.expect("close");
    within("shutdown", server.shutdown()).await;
}

// ---------------------------------------------------------------------------------------
// Panicking hooks and handlers leave no stale session

async fn a_panicking_cert_to_name_hook_leaves_no_stale_session<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let options = ServerOptions::new().cert_to_name(|_| panic!("cert_to_name panics"));
    let server = new_server::<R>(options, &probe);
    let addr = listen(&server, &tls).await;
    for _ in 0..3 {
        match within("connect", Client::<R>::connect_tls(&addr, &tls.client)).await {
            Err(e) => eprintln!("refused: {e}"),
            Ok(client) => {
                let r = client.call(&GetConfig::new(Datastore::Running)).await;
                assert!(r.is_err(), "{r:?}");
            }
        }
    }
    assert!(
        eventually::<R>(|| server.sessions().is_empty()).await,
        "stale sessions: {:?}",
        server.sessions()
    );
    assert_eq!(probe.handled.load(Ordering::SeqCst), 0);
    within("shutdown", server.shutdown()).await;
}

async fn a_panicking_on_session_end_hook_leaves_no_stale_session<R: Runtime>() {
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
    let server = new_server::<R>(options.max_sessions(2), &probe);
    let addr = listen(&server, &tls).await;
    // More sessions than the cap, one after the other: each slot must be freed.
    for round in 0..4 {
        let client = connect::<R>(&addr, &tls).await;
        client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        client.close().await.expect("close");
        assert!(
            eventually::<R>(|| server.sessions().is_empty()).await,
            "round {round}: stale sessions {:?}",
            server.sessions()
        );
    }
    assert!(eventually::<R>(|| ended.load(Ordering::SeqCst) == 4).await);
    within("shutdown", server.shutdown()).await;
}

/// A handler whose synchronous part panics (before it returns its future) costs its one
/// request, like a panic inside the future: the session goes on, nothing goes stale.
async fn a_handler_panicking_before_its_future_fails_only_its_request<R: Runtime>() {
    let tls = Tls::new();
    let server = Server::<R>::new(ServerOptions::new(), |request: Request, _info| {
        if request.operation.name == "boom" {
            panic!("the handler panics before returning a future");
        }
        async { Reply::Ok }
    });
    let addr = listen(&server, &tls).await;
    let client = connect::<R>(&addr, &tls).await;
    match within(
        "the panicking request",
        client.rpc_raw(&format!("<boom xmlns=\"{NS}\"/>")),
    )
    .await
    {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors[0].tag, ErrorTag::OperationFailed)
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
    assert!(eventually::<R>(|| server.sessions().is_empty()).await);
    within("shutdown", server.shutdown()).await;
}

// ---------------------------------------------------------------------------------------
// The client: notification memory and progress

async fn a_client_keeps_no_notifications_when_nobody_subscribed<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let options = ServerOptions::new()
        .config(server_config())
        .notification_queue(16 * 1024);
    let server = new_server::<R>(options, &probe);
    let addr = listen(&server, &tls).await;
    let client = connect::<R>(&addr, &tls).await;
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
}

async fn progress_is_reported_with_growing_byte_counts_during_a_large_reply<R: Runtime>() {
    let tls = Tls::new();
    let (probe, _entered) = Probe::new();
    let server = new_server::<R>(ServerOptions::new(), &probe);
    let addr = listen(&server, &tls).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let options = {
        let seen = seen.clone();
        ClientOptions::new().on_progress(move |p| seen.lock().unwrap().push(p.received))
    };
    let client = within(
        "connect",
        Client::<R>::connect_tls_with(&addr, &tls.client, &options),
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
}
