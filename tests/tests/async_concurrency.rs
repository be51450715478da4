//! One `Client` session shared by many tasks, against the same runtime's `Server`, on each
//! async runtime (tokio and smol: every test runs on both) over real TLS on loopback:
//! pipelining, reply matching, cancelled and timed-out requests, notifications interleaved
//! with replies, slow notification consumers, what dropping every handle does, and a
//! throughput measurement. The thousand-rpc test also runs on tokio's current-thread
//! runtime.
//!
//! The server's handler echoes a leaf of each request (and its message-id), so every reply
//! can be checked against the request it answers. Requests in `slow` mode wait in the
//! handler for a permit the test hands out, which makes "the reply comes after its caller
//! went away" certain rather than likely (the server answers in request order, so every
//! later reply waits behind a gated one).
//!
//! Every test runs under a deadlock guard.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::smol::channel::{Receiver, Sender};
use ::smol::lock::Semaphore;
use futures_lite::StreamExt;
use netconf_async::adapter::operations::{CreateSubscription, Datastore, GetConfig, RpcBody};
use netconf_async::adapter::server::ServerOptions;
use netconf_async::adapter::{ClientOptions, Config, Error, Lagged, Reply, Request, RpcReply};
use netconf_async::{Adopt, Client, Runtime, Server};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::{timeout, within};
use netconf_tests::hostile_tls::{Hostile, HostileServer, Outcome};

netconf_tests::on_each_runtime!(
    thousand_rpcs_from_hundred_tasks_each_get_their_own_reply,
    cancelled_requests_do_not_steal_later_replies,
    per_rpc_timeout_then_session_still_usable,
    a_short_timeout_behind_a_long_one_fires_on_time,
    notifications_interleaved_with_replies_arrive_in_order,
    notification_stream_ends_with_the_session,
    slow_notification_consumer_lags_then_continues,
    dropping_every_client_closes_the_session,
    dropping_every_client_sends_close_session,
    throughput_64_in_flight,
    large_requests_and_replies_few_in_flight,
    large_pipelined_requests_and_replies_do_not_deadlock,
    a_caller_writes_its_own_request_while_the_driver_waits,
    callers_on_threads_outside_the_runtime_share_the_session,
    a_flood_of_notifications_holds_neither_a_caller_nor_the_drivers_thread,
    a_client_that_never_stops_sending_does_not_hold_its_sessions_thread,
    a_flooding_peer_that_stops_reading_times_the_write_out,
);

/// The same thousand rpcs from a hundred tasks, with every task (the client's driver, the
/// server's sessions) on the one thread of tokio's current-thread runtime.
#[test]
fn thousand_rpcs_on_the_current_thread_runtime() {
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(guarded(
        thousand_rpcs_from_hundred_tasks_each_get_their_own_reply::<netconf_tokio::Tokio>(),
    ));
}

const GUARD: Duration = Duration::from_secs(20);
const NS: &str = "urn:test:concurrency";

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    within(GUARD, "the test (deadlock guard)", body).await
}

/// Waits `d` on the runtime's timer.
async fn sleep<R: Runtime>(d: Duration) {
    R::sleep_until(Instant::now() + d).await;
}

/// A task running on the runtime.
struct Task<T> {
    output: Receiver<T>,
    abort: Sender<()>,
}

impl<T> Task<T> {
    /// Its output (a task that panicked fails the test here).
    async fn join(self) -> T {
        // `self.abort` lives until the output is here: the task is not cancelled.
        self.output.recv().await.expect("the task panicked")
    }

    /// Cancels it (drops its future where it waits); its output if it finished first.
    async fn abort(self) -> Option<T> {
        let _ = self.abort.try_send(());
        self.output.recv().await.ok()
    }
}

/// Runs `task` on the runtime at once.
fn spawn<R: Runtime, T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Task<T> {
    let (done, output) = ::smol::channel::bounded(1);
    let (abort, aborted) = ::smol::channel::bounded::<()>(1);
    R::spawn(Box::pin(async move {
        let finished = futures_lite::future::or(async { Some(task.await) }, async {
            if aborted.recv().await.is_err() {
                // The handle was dropped without aborting: run to the end.
                std::future::pending::<()>().await;
            }
            None
        })
        .await;
        if let Some(output) = finished {
            let _ = done.send(output).await;
        }
    }));
    Task { output, abort }
}

/// What the handler shares with the test.
struct State {
    /// `slow` requests wait here for a permit the test hands out.
    gate: Semaphore,
    /// One message each time a `slow` request enters the handler.
    slow_entered: Sender<()>,
    slow_entered_rx: Receiver<()>,
    slow_handled: AtomicUsize,
    /// Requests handled, create-subscription aside.
    handled: AtomicUsize,
}

impl State {
    fn new() -> Arc<State> {
        let (slow_entered, slow_entered_rx) = ::smol::channel::unbounded();
        Arc::new(State {
            gate: Semaphore::new(0),
            slow_entered,
            slow_entered_rx,
            slow_handled: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
        })
    }
}

/// `<echo>` with a tag to echo back and a mode, fast or slow.
fn echo(tag: &str, mode: &str) -> String {
    format!("<echo xmlns=\"{NS}\"><tag>{tag}</tag><mode>{mode}</mode></echo>")
}

/// The handler: accepts create-subscription, echoes `<tag>` and the message-id of anything
/// else; `slow` requests wait for the gate first; `<pad-reply>n</pad-reply>` adds n bytes
/// of padding to the reply.
async fn handle(request: Request, state: Arc<State>) -> Reply {
    if request.operation.name == "create-subscription" {
        return Reply::Ok;
    }
    state.handled.fetch_add(1, Ordering::SeqCst);
    let tag = request.body.child_text("tag").unwrap_or_default();
    if request.body.child_text("mode").as_deref() == Some("slow") {
        let _ = state.slow_entered.try_send(());
        state.gate.acquire().await.forget();
        state.slow_handled.fetch_add(1, Ordering::SeqCst);
    }
    let pad = request
        .body
        .child_text("pad-reply")
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| "p".repeat(n))
        .unwrap_or_default();
    Reply::data(format!(
        "<echoed xmlns=\"{NS}\"><tag>{tag}</tag><message-id>{}</message-id><pad>{pad}</pad></echoed>",
        request.message_id
    ))
    .expect("well-formed reply")
}

/// The server, the address it listens on, and the PKI both ends use.
struct TestServer<R: Runtime> {
    server: Server<R>,
    addr: String,
    pki: Pki,
}

impl<R: Runtime> std::ops::Deref for TestServer<R> {
    type Target = Server<R>;
    fn deref(&self) -> &Server<R> {
        &self.server
    }
}

async fn start_server<R: Runtime>(pki: &Pki, state: &Arc<State>) -> TestServer<R> {
    // A hundred tasks pipeline on one session: let every request wait for its handler
    // instead of being refused with resource-denied beyond the default 64.
    let config = Config::server().with_max_pending_requests(1024);
    let state = state.clone();
    let server = Server::new(
        ServerOptions::new().config(config),
        move |request, _info| handle(request, state.clone()),
    );
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    TestServer {
        server,
        addr,
        pki: pki.clone(),
    }
}

async fn connect<R: Runtime>(server: &TestServer<R>, options: ClientOptions) -> Client<R> {
    within(
        Duration::from_secs(2),
        "establishing the session",
        Client::connect_tls_with(&server.addr, &server.pki.client_tls_options(), &options),
    )
    .await
    .expect("connect")
}

/// Checks that `reply` echoes `tag`; returns the echoed message-id.
fn check_echo(reply: &RpcReply, tag: &str) -> String {
    let data = reply
        .data()
        .unwrap_or_else(|| panic!("no <data> in the reply to {tag}: {reply:?}"));
    assert_eq!(
        data.child_text("tag").as_deref(),
        Some(tag),
        "reply delivered to the wrong caller"
    );
    let echoed_id = data.child_text("message-id").expect("echoed message-id");
    assert_eq!(
        reply.message_id.as_deref(),
        Some(echoed_id.as_str()),
        "the reply's message-id differs from the request's"
    );
    echoed_id
}

/// Polls the server's session list until it is empty, for up to `limit`.
async fn sessions_empty_within<R: Runtime>(server: &Server<R>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.sessions().is_empty() {
            return true;
        }
        sleep::<R>(Duration::from_millis(10)).await;
    }
    server.sessions().is_empty()
}

async fn thousand_rpcs_from_hundred_tasks_each_get_their_own_reply<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;

    let tasks: Vec<_> = (0..100)
        .map(|task| {
            let client = client.clone();
            spawn::<R, _>(async move {
                let mut ids = Vec::new();
                for i in 0..10 {
                    let tag = format!("t{task}-{i}");
                    let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                    ids.push(check_echo(&reply, &tag));
                }
                ids
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        for id in task.join().await {
            assert!(ids.insert(id), "a message-id was answered twice");
        }
    }
    assert_eq!(ids.len(), 1000, "replies lost");
    assert_eq!(state.handled.load(Ordering::SeqCst), 1000);
    client.close().await.expect("close");
    assert!(sessions_empty_within(&server, Duration::from_secs(2)).await);
    server.shutdown().await;
}

/// A caller whose request finds the loop idle writes the request itself: here the driver
/// has not run at all, yet the server's handler gets the request; the reply comes once the
/// driver runs.
async fn a_caller_writes_its_own_request_while_the_driver_waits<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let (client, driver) = within(
        Duration::from_secs(2),
        "establishing the session",
        Client::<R>::connect_tls_with_driver(
            &server.addr,
            &server.pki.client_tls_options(),
            &ClientOptions::new(),
        ),
    )
    .await
    .expect("connect");
    let xml = echo("written-by-its-caller", "slow");
    let mut call = Box::pin(client.rpc_raw(&xml));
    assert!(
        futures_lite::future::poll_once(&mut call).await.is_none(),
        "answered before anyone read the reply"
    );
    within(
        Duration::from_secs(5),
        "the request reaching the server's handler with the driver not yet run",
        state.slow_entered_rx.recv(),
    )
    .await
    .expect("the state lives");
    state.gate.add_permits(1);
    let driver = spawn::<R, _>(driver);
    let reply = within(Duration::from_secs(5), "the reply", call)
        .await
        .expect("rpc");
    check_echo(&reply, "written-by-its-caller");
    client.close().await.expect("close");
    within(
        Duration::from_secs(2),
        "the driver finishing",
        driver.join(),
    )
    .await;
    server.shutdown().await;
}

/// Callers on plain threads, each blocking on its calls with an executor of its own (no
/// runtime context: a tokio timer made there would panic), share one session with tasks
/// on the runtime. Their turns at the loop enter the session's runtime; every reply reaches
/// its own caller. First one thread calls alone (so each of its calls takes a turn), then
/// four threads and a task at once.
async fn callers_on_threads_outside_the_runtime_share_the_session<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let (done, finished) = ::smol::channel::unbounded::<Result<usize, String>>();
    let alone = calls_from_a_thread(&client, "alone", done.clone());
    let calls = finished.recv().await.expect("a report");
    assert_eq!(calls, Ok(50));
    alone.join().expect("joined after it reported");

    let threads: Vec<_> = (0..4)
        .map(|thread| calls_from_a_thread(&client, &format!("thread{thread}"), done.clone()))
        .collect();
    drop(done);
    let task = {
        let client = client.clone();
        spawn::<R, _>(async move {
            for i in 0..50 {
                let tag = format!("task-{i}");
                let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                check_echo(&reply, &tag);
            }
        })
    };
    let mut calls = 0;
    while let Ok(result) = finished.recv().await {
        calls += result.unwrap_or_else(|panic| panic!("a calling thread failed: {panic}"));
    }
    task.join().await;
    for thread in threads {
        thread.join().expect("joined after it reported");
    }
    assert_eq!(calls, 200);
    assert_eq!(state.handled.load(Ordering::SeqCst), 300);
    client.close().await.expect("close");
    server.shutdown().await;
}

/// A thread making 50 calls, each with a timeout of its own (the loop makes a timer for
/// it), blocking on each with `futures-lite`'s executor; it reports how many succeeded, or
/// why it panicked.
fn calls_from_a_thread<R: Runtime>(
    client: &Client<R>,
    name: &str,
    done: Sender<Result<usize, String>>,
) -> std::thread::JoinHandle<()> {
    let client = client.clone();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let calls = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 0..50 {
                let tag = format!("{name}-{i}");
                let reply = futures_lite::future::block_on(client.rpc_with_timeout(
                    &RpcBody::raw(echo(&tag, "fast")).expect("well-formed"),
                    Some(Duration::from_secs(10)),
                ))
                .expect("rpc from a plain thread");
                check_echo(&reply, &tag);
            }
            50
        }));
        let _ = done.send_blocking(calls.map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    })
}

async fn cancelled_requests_do_not_steal_later_replies<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let mut slow_sent = 0;

    // 1. A slow request, dropped once the server is working on it: its reply is certain to
    //    come after its caller went away.
    {
        let xml = echo("slow-0", "slow");
        let raced = futures_lite::future::or(async { Some(client.rpc_raw(&xml).await) }, async {
            state.slow_entered_rx.recv().await.expect("the state lives");
            None
        })
        .await;
        assert!(raced.is_none(), "the gated request was answered: {raced:?}");
        slow_sent += 1;
    }
    // 2. Slow requests abandoned by a 10 ms timeout (queued behind the first one).
    for i in 1..=5 {
        let r = timeout(
            Duration::from_millis(10),
            client.rpc_raw(&echo(&format!("slow-{i}"), "slow")),
        )
        .await;
        assert!(r.is_none(), "slow-{i} was answered: {r:?}");
        slow_sent += 1;
    }
    // 3. Slow requests in tasks that get aborted.
    let aborted: Vec<_> = (6..=8)
        .map(|i| {
            let client = client.clone();
            spawn::<R, _>(async move { client.rpc_raw(&echo(&format!("slow-{i}"), "slow")).await })
        })
        .collect();
    slow_sent += aborted.len();
    sleep::<R>(Duration::from_millis(20)).await;
    for task in aborted {
        let completed = task.abort().await;
        assert!(
            completed.is_none(),
            "an aborted task completed: {completed:?}"
        );
    }

    // 4. Fresh requests, queued behind every abandoned one; then open the gate.
    let fresh: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            spawn::<R, _>(async move {
                let tag = format!("fresh-{i}");
                let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                check_echo(&reply, &tag);
            })
        })
        .collect();
    sleep::<R>(Duration::from_millis(20)).await;
    state.gate.add_permits(100);
    for task in fresh {
        within(Duration::from_secs(5), "a fresh request", task.join()).await;
    }
    // The server did answer the abandoned requests: their late replies were discarded.
    let slow_handled = state.slow_handled.load(Ordering::SeqCst);
    assert!(slow_handled >= 1, "no late reply was produced");
    assert!(slow_handled <= slow_sent);
    eprintln!("{slow_handled} of {slow_sent} abandoned requests reached the server");

    // 5. The session is still in step.
    for i in 0..50 {
        let tag = format!("after-{i}");
        let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
        check_echo(&reply, &tag);
    }
    client.close().await.expect("close");
    server.shutdown().await;
}

async fn per_rpc_timeout_then_session_still_usable<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    // A long default timeout, overridden per rpc below.
    let client = connect(
        &server,
        ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
    )
    .await;

    let slow = RpcBody::raw(echo("slow", "slow")).expect("xml");
    let waited = time_out_after_200_ms(&client, &slow).await;
    assert!(
        waited >= Duration::from_millis(180) && waited < Duration::from_secs(2),
        "timed out after {waited:?}"
    );

    // Queued behind the gated one on the server; a longer per-rpc timeout and none at all.
    let long = spawn_echo(&client, "long", "fast", Some(Duration::from_secs(5)));
    let forever = spawn_echo(&client, "forever", "fast", None);
    sleep::<R>(Duration::from_millis(300)).await;
    state.gate.add_permits(1);
    check_echo(&long.join().await.expect("long rpc"), "long");
    check_echo(
        &forever.join().await.expect("rpc without timeout"),
        "forever",
    );
    assert_eq!(state.slow_handled.load(Ordering::SeqCst), 1);

    // A gated rpc timing out with the client's default timeout.
    let short = ClientOptions::new().rpc_timeout(Some(Duration::from_millis(150)));
    let client2 = connect(&server, short).await;
    let started = Instant::now();
    match client2.rpc_raw(&echo("slow-2", "slow")).await {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    state.gate.add_permits(1);
    let reply = client2
        .rpc_with_timeout(
            &RpcBody::raw(echo("next", "fast")).expect("xml"),
            Some(Duration::from_secs(5)),
        )
        .await
        .expect("the session survives a timeout");
    check_echo(&reply, "next");

    client.close().await.expect("close");
    client2.close().await.expect("close");
    server.shutdown().await;
}

/// Sends `op` with a 200 ms timeout, which must expire; how long that took.
/// An echo rpc (`echo(id, mode)`) with its own timeout, sent from a task of its own.
fn spawn_echo<R: Runtime>(
    client: &Client<R>,
    id: &'static str,
    mode: &'static str,
    timeout: Option<Duration>,
) -> Task<Result<RpcReply, Error>> {
    let client = client.clone();
    spawn::<R, _>(async move {
        let op = RpcBody::raw(echo(id, mode)).expect("xml");
        client.rpc_with_timeout(&op, timeout).await
    })
}

async fn time_out_after_200_ms<R: Runtime>(client: &Client<R>, op: &RpcBody) -> Duration {
    let started = Instant::now();
    match client
        .rpc_with_timeout(op, Some(Duration::from_millis(200)))
        .await
    {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    started.elapsed()
}

/// A request with a short timeout sent while one with a long timeout is in flight times out
/// after its own: a session loop that kept one timer between turns would have to arm it
/// again for the earlier deadline.
async fn a_short_timeout_behind_a_long_one_fires_on_time<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let long = spawn_echo(&client, "long", "slow", Some(Duration::from_secs(30)));
    // The long one is in flight (its deadline armed) before the short one is sent.
    sleep::<R>(Duration::from_millis(100)).await;
    let short = RpcBody::raw(echo("short", "fast")).expect("xml");
    let waited = time_out_after_200_ms(&client, &short).await;
    assert!(
        waited >= Duration::from_millis(180) && waited < Duration::from_secs(5),
        "timed out after {waited:?}, not after its own 200 ms"
    );
    state.gate.add_permits(1);
    check_echo(&long.join().await.expect("the long rpc"), "long");
    client.close().await.expect("close");
    server.shutdown().await;
}

fn event_time(i: usize) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)
}

fn seq_content(i: usize) -> String {
    format!("<seq xmlns=\"{NS}\"><n>{i}</n><text>event &amp; {i}</text></seq>")
}

async fn notifications_interleaved_with_replies_arrive_in_order<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let mut notifications = client.notifications();
    client
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");

    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 10;
    // Replies in flight from other tasks the whole time.
    let background: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            spawn::<R, _>(async move {
                for i in 0..50 {
                    let tag = format!("bg{t}-{i}");
                    let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                    check_echo(&reply, &tag);
                }
            })
        })
        .collect();
    for round in 0..ROUNDS {
        let tag = format!("round-{round}");
        let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
        check_echo(&reply, &tag);
        for k in 0..PER_ROUND {
            let i = round * PER_ROUND + k;
            let queued = server
                .notify(&event_time(i), &seq_content(i))
                .expect("notify");
            assert_eq!(queued, 1);
        }
    }
    for i in 0..ROUNDS * PER_ROUND {
        let n = within(
            Duration::from_secs(2),
            "a notification",
            notifications.next(),
        )
        .await
        .expect("stream ended")
        .unwrap_or_else(|lag| panic!("lagged at {i}: {lag}"));
        assert_eq!(n.event_time, event_time(i));
        assert_eq!(
            n.content.child_text("n"),
            Some(i.to_string()),
            "out of order"
        );
        assert_eq!(n.content.child_text("text"), Some(format!("event & {i}")));
    }
    for task in background {
        within(Duration::from_secs(5), "the background rpcs", task.join()).await;
    }

    // Nothing more is pending.
    let extra = timeout(Duration::from_millis(100), notifications.next()).await;
    assert!(extra.is_none(), "unexpected extra notification: {extra:?}");
    client.close().await.expect("close");
    server.shutdown().await;
}

/// A consumer looping over `notifications()` must not wait forever once the session is
/// gone, even while a `Client` handle is still alive (the usual case: the consumer task
/// holds one).
async fn notification_stream_ends_with_the_session<R: Runtime>() {
    let pki = Pki::generate();
    let state = State::new();
    let server = start_server::<R>(&pki, &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let mut notifications = client.notifications();
    client
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");
    server
        .notify(&event_time(0), &seq_content(0))
        .expect("notify");
    let n = within(
        Duration::from_secs(2),
        "a notification",
        notifications.next(),
    )
    .await
    .expect("one")
    .expect("no lag");
    assert_eq!(n.content.child_text("n").as_deref(), Some("0"));

    // The server goes away; the client handle stays alive.
    server.shutdown().await;
    let end = within(
        Duration::from_secs(2),
        "the notification stream ending after the session ended",
        notifications.next(),
    )
    .await;
    assert!(end.is_none(), "{end:?}");
    assert!(client.is_closed());

    // Same after a clean close.
    let server = start_server::<R>(&pki, &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let mut notifications = client.notifications();
    client
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");
    client.close().await.expect("close");
    let end = within(
        Duration::from_secs(2),
        "the notification stream ending after close()",
        notifications.next(),
    )
    .await;
    assert!(end.is_none(), "{end:?}");
    server.shutdown().await;
}

async fn slow_notification_consumer_lags_then_continues<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new().notification_buffer(4)).await;
    let mut slow = client.notifications();
    client
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");

    const SENT: usize = 20;
    const BUFFER: usize = 4;
    for i in 0..SENT {
        server
            .notify(&event_time(i), &seq_content(i))
            .expect("notify");
    }
    // A round trip: the server writes the notifications it queued before this reply, so
    // once the reply is here every notification has reached the unread subscriber.
    let reply = client.rpc_raw(&echo("barrier", "fast")).await.expect("rpc");
    check_echo(&reply, "barrier");

    // The slow consumer's bounded queue kept the first 4; the other 16 were dropped, not
    // buffered without bound.
    for i in 0..BUFFER {
        let n = slow
            .next()
            .await
            .expect("stream ended")
            .unwrap_or_else(|lag| panic!("lagged before the queue was read: {lag}"));
        assert_eq!(n.content.child_text("n"), Some(i.to_string()));
    }
    // It is told how many it lost before its next notification, and goes on.
    for i in SENT..SENT + 3 {
        server
            .notify(&event_time(i), &seq_content(i))
            .expect("notify");
        if i == SENT {
            match within(Duration::from_secs(2), "the lag report", slow.next())
                .await
                .expect("stream ended")
            {
                Err(Lagged(n)) => assert_eq!(n, (SENT - BUFFER) as u64),
                Ok(n) => panic!("expected Lagged first, got {n:?}"),
            }
        }
        let n = within(
            Duration::from_secs(2),
            "a notification after the lag",
            slow.next(),
        )
        .await
        .expect("stream ended")
        .expect("lagged again");
        assert_eq!(n.content.child_text("n"), Some(i.to_string()));
    }
    // RPCs are unaffected by the lagging consumer.
    let reply = client
        .rpc_raw(&echo("after-lag", "fast"))
        .await
        .expect("rpc");
    check_echo(&reply, "after-lag");
    client.close().await.expect("close");
    server.shutdown().await;
}

/// Dropping the last `Client` handle must end the session politely: the driver sends
/// `<close-session>` and the server forgets the session.
async fn dropping_every_client_closes_the_session<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let tasks: Vec<_> = (0..5)
        .map(|t| {
            let client = client.clone();
            spawn::<R, _>(async move {
                let tag = format!("c{t}");
                let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                check_echo(&reply, &tag);
                // `client` is dropped with the task.
            })
        })
        .collect();
    for task in tasks {
        task.join().await;
    }
    assert_eq!(server.sessions().len(), 1);
    drop(client);
    assert!(
        sessions_empty_within(&server, Duration::from_secs(2)).await,
        "the session stayed open after every Client handle was dropped: {:?}",
        server.sessions()
    );
    server.shutdown().await;
}

/// The same, seen from a server that records what arrives: it is a `<close-session>`, not
/// just a dropped socket.
async fn dropping_every_client_sends_close_session<R: Runtime>() {
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(Hostile::Normal, &pki).expect("server"));
    let addr = server.addr().to_string();
    let client = within(
        Duration::from_secs(2),
        "establishing the session",
        Client::<R>::connect_tls(&addr, &pki.client_tls_options()),
    )
    .await
    .expect("connect");
    let other = client.clone();
    other
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("get-config");
    drop(other);
    drop(client);
    // The wait blocks: on a thread of its own, off the runtime's.
    let log = {
        let server = server.clone();
        ::smol::unblock(move || server.wait_for_first_outcome(Duration::from_secs(2))).await
    }
    .expect("the connection was still open 2 s after every Client was dropped");
    assert!(log.close_session, "no close-session: {log:?}");
    assert_eq!(log.outcome, Some(Outcome::ClosedAfterCloseSession));
    ::smol::unblock(move || server.stop()).await;
}

/// Runs `total` echo rpcs with `in_flight` concurrent callers; returns the elapsed time.
async fn run_pipelined<R: Runtime>(
    client: &Client<R>,
    total: usize,
    in_flight: usize,
    pad: usize,
) -> Duration {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let client = client.clone();
            let counter = counter.clone();
            spawn::<R, _>(async move {
                loop {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let tag = format!("p{i}");
                    let xml = if pad == 0 {
                        echo(&tag, "fast")
                    } else {
                        let padding = "q".repeat(pad);
                        format!(
                            "<echo xmlns=\"{NS}\"><tag>{tag}</tag><mode>fast</mode>\
                             <pad-reply>{pad}</pad-reply><padding>{padding}</padding></echo>"
                        )
                    };
                    let reply = client.rpc_raw(&xml).await.expect("rpc");
                    check_echo(&reply, &tag);
                    if pad > 0 {
                        let got = reply
                            .data()
                            .and_then(|d| d.child_text("pad"))
                            .map(|p| p.len());
                        assert_eq!(got, Some(pad));
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.join().await;
    }
    started.elapsed()
}

async fn throughput_64_in_flight<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    // Warm-up.
    run_pipelined(&client, 200, 64, 0).await;
    const TOTAL: usize = 2000;
    let elapsed = run_pipelined(&client, TOTAL, 64, 0).await;
    let rate = TOTAL as f64 / elapsed.as_secs_f64();
    println!(
        "throughput ({}): {TOTAL} RPCs with 64 in flight in {elapsed:?}: {rate:.0} RPCs/s \
         (debug_assertions: {})",
        std::any::type_name::<R>(),
        cfg!(debug_assertions)
    );
    assert_eq!(state.handled.load(Ordering::SeqCst), 200 + TOTAL);
    client.close().await.expect("close");
    server.shutdown().await;
}

/// Large requests and replies with a few in flight (the socket buffers absorb them).
async fn large_requests_and_replies_few_in_flight<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    let elapsed = run_pipelined(&client, 16, 4, 1 << 20).await;
    eprintln!("16 x 1 MiB requests and replies, 4 in flight: {elapsed:?}");
    client.close().await.expect("close");
    server.shutdown().await;
}

/// Many large requests in flight while large replies come back: the client must keep
/// reading replies while it writes requests, or both sides end up blocked in a write
/// (each peer's socket buffers full of data the other does not read). 48 MiB each way takes
/// about 1 s with up to 8 in flight; with 16 or more it hangs until the 60 s write timeout.
async fn large_pipelined_requests_and_replies_do_not_deadlock<R: Runtime>() {
    let state = State::new();
    let server = start_server::<R>(&Pki::generate(), &state).await;
    let client = connect(&server, ClientOptions::new()).await;
    const SIZE: usize = 1 << 20;
    let elapsed = run_pipelined(&client, 48, 48, SIZE).await;
    eprintln!("48 x 1 MiB requests and replies, all in flight: {elapsed:?}");
    client.close().await.expect("close");
    server.shutdown().await;
}

/// A peer that says hello (base:1.0, end-of-message framing) and then sends one message
/// for ever, always ready to be read: the worst case of a device's event stream, or of a
/// client pipelining requests. What it is sent it takes and forgets.
struct Flood {
    /// What is still to come of the hello (then of the current message).
    pending: &'static [u8],
    each: &'static [u8],
    /// Messages begun so far.
    sent: Arc<AtomicUsize>,
    /// Once set, it takes nothing more of what it is sent (its window is full), and never
    /// says when it will.
    jammed: Arc<std::sync::atomic::AtomicBool>,
}

const SERVER_HELLO: &[u8] = b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>\
<session-id>7</session-id></hello>]]>]]>";
const NOTIFICATION: &[u8] =
    b"<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">\
<eventTime>2026-12-01T00:00:00Z</eventTime><tick xmlns=\"urn:test:flood\"/></notification>]]>]]>";
const CLIENT_HELLO: &[u8] = b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>\
</hello>]]>]]>";
const GET: &[u8] =
    b"<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get/></rpc>]]>]]>";

impl Flood {
    fn new(hello: &'static [u8], each: &'static [u8], sent: Arc<AtomicUsize>) -> Flood {
        Flood {
            pending: hello,
            each,
            sent,
            jammed: Arc::default(),
        }
    }

    /// Setting the flag it returns makes it stop taking what it is sent.
    fn jam(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.jammed.clone()
    }

    fn write(&self, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        if self.jammed.load(Ordering::SeqCst) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(Ok(buf.len()))
        }
    }

    /// Fills `buf`, up to a TLS record's worth: there is always more.
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let len = buf.len().min(16 * 1024);
        let buf = &mut buf[..len];
        let mut at = 0;
        while at < buf.len() {
            if self.pending.is_empty() {
                self.pending = self.each;
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            let n = self.pending.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            at += n;
        }
        at
    }
}
impl futures_lite::AsyncRead for Flood {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(self.get_mut().fill(buf)))
    }
}

impl futures_lite::AsyncWrite for Flood {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write(buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl ::tokio::io::AsyncRead for Flood {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut ::tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        std::task::Poll::Ready(Ok(()))
    }
}

impl ::tokio::io::AsyncWrite for Flood {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write(buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A deadlock guard for a poll that may never return (so no timer on the test's thread
/// can fire): unless dropped within a few seconds, it aborts the test binary with a message
/// saying what never returned. (A plain failure cannot be had: the unwinding test would
/// wait for the loop's lock, which the poll that never returns holds.)
struct Watchdog(Arc<std::sync::atomic::AtomicBool>);

impl Watchdog {
    fn new(what: &str) -> Watchdog {
        use std::io::Write;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watched = done.clone();
        let what = what.to_owned();
        std::thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(5);
            while !watched.load(Ordering::SeqCst) {
                if Instant::now() > give_up {
                    // Past the test harness's capture, which an abort would swallow.
                    let _ = writeln!(std::io::stderr(), "deadlock guard: {what} never returned");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `future` ten times, letting another task on the thread run in between; the polls
/// must return (under a [`Watchdog`]).
async fn share_the_thread<F: Future + Unpin>(what: &str, future: &mut F) {
    let _watchdog = Watchdog::new(what);
    for _ in 0..10 {
        let _ = futures_lite::future::poll_once(&mut *future).await;
        futures_lite::future::yield_now().await;
    }
}

/// A peer whose notifications never stop, and are always ready to be read:
/// - a call whose request finds the loop idle takes a turn at it, and that turn must end
///   after a few steps (the caller must not handle the flood);
/// - the driver must yield its thread now and then to the thread's other tasks;
/// - the flood still reaches a subscriber.
async fn a_flood_of_notifications_holds_neither_a_caller_nor_the_drivers_thread<R>()
where
    R: Runtime + Adopt<Flood>,
{
    let sent = Arc::new(AtomicUsize::new(0));
    let (client, driver) = within(
        Duration::from_secs(2),
        "the hello",
        Client::<R>::from_stream_with_driver(
            Flood::new(SERVER_HELLO, NOTIFICATION, sent.clone()),
            &ClientOptions::new(),
        ),
    )
    .await
    .expect("hello");
    let mut notifications = client.notifications();

    // The call's first poll: its turn at the idle loop writes the request, then must give
    // the flood back.
    let before_turn = sent.load(Ordering::Relaxed);
    let mut call = Box::pin(client.rpc_raw("<get/>"));
    {
        let _watchdog = Watchdog::new("a caller's turn at a flooded loop");
        let polled = futures_lite::future::poll_once(&mut call).await;
        assert!(polled.is_none(), "the flood never answers: {polled:?}");
    }
    let after_turn = sent.load(Ordering::Relaxed);
    assert!(
        after_turn > before_turn,
        "the turn read nothing of the flood"
    );

    let mut driver = Box::pin(driver);
    share_the_thread("the flooded driver", &mut driver).await;
    assert!(
        sent.load(Ordering::Relaxed) > after_turn,
        "the driver read on"
    );

    // The flood reaches a subscriber (one slower than the flood: it lags, and the stream
    // says so, then goes on).
    let spawned = spawn::<R, _>(driver);
    let mut received = 0;
    while received < 1_000 {
        let next = within(
            Duration::from_secs(5),
            "a notification",
            notifications.next(),
        )
        .await
        .unwrap_or_else(|| panic!("the stream ended after {received}"));
        if let Ok(notification) = next {
            assert_eq!(notification.event_time, "2026-12-01T00:00:00Z");
            received += 1;
        }
    }
    drop(call);
    drop(client);
    spawned.abort().await;
}

/// A client that pipelines requests without end, always ready to be read: the server's
/// session must yield its thread now and then to the thread's other tasks (other sessions,
/// on smol's one-thread executor), and keeps answering.
async fn a_client_that_never_stops_sending_does_not_hold_its_sessions_thread<R>()
where
    R: Runtime + Adopt<Flood>,
{
    let answered = Arc::new(AtomicUsize::new(0));
    let counted = answered.clone();
    let server = Server::<R>::new(ServerOptions::new(), move |_request, _info| {
        counted.fetch_add(1, Ordering::Relaxed);
        async { Reply::Ok }
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let mut session =
        Box::pin(server.serve_stream(Flood::new(CLIENT_HELLO, GET, sent.clone()), None, None));
    share_the_thread("the flooded server session", &mut session).await;
    assert!(sent.load(Ordering::Relaxed) > 0, "the session read");
    assert!(answered.load(Ordering::Relaxed) > 0, "the session answered");
    drop(session);
    server.shutdown().await;
}

/// A peer that floods us with notifications and stops taking what we send: the caller's
/// turn, which finds its write waiting and the flood always ready, must still end after a
/// few steps, and the write must time out (the write timeout runs while reads keep
/// coming), failing the call with the session.
async fn a_flooding_peer_that_stops_reading_times_the_write_out<R>()
where
    R: Runtime + Adopt<Flood>,
{
    let flood = Flood::new(SERVER_HELLO, NOTIFICATION, Arc::default());
    let jam = flood.jam();
    let options = ClientOptions::new().write_timeout(Some(Duration::from_millis(300)));
    let (client, driver) = within(
        Duration::from_secs(2),
        "the hello",
        Client::<R>::from_stream_with_driver(flood, &options),
    )
    .await
    .expect("hello");
    jam.store(true, Ordering::SeqCst);
    let mut call = Box::pin(client.rpc_raw("<get/>"));
    {
        let _watchdog = Watchdog::new("a caller's turn writing to a jammed, flooding peer");
        let polled = futures_lite::future::poll_once(&mut call).await;
        assert!(polled.is_none(), "answered: {polled:?}");
    }
    let driver = spawn::<R, _>(driver);
    let failed = within(Duration::from_secs(10), "the write timing out", call)
        .await
        .expect_err("nothing could be written");
    assert!(
        failed.to_string().contains("the peer stopped reading"),
        "{failed}"
    );
    within(
        Duration::from_secs(5),
        "the driver finishing",
        driver.join(),
    )
    .await;
}
