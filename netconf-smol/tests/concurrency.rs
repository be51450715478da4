//! One smol `Client` session shared by many smol tasks, against the blocking `Server` (which
//! needs no runtime: a thread per session, requests answered one at a time in arrival order):
//! pipelining, reply matching, cancelled and timed-out requests, notifications interleaved
//! with replies, slow notification consumers, and what dropping every handle does.
//!
//! The server's handler echoes a leaf of each request (and its message-id), so every reply
//! can be checked against the request it answers. Requests in `slow` mode wait in the
//! handler for a permit the test hands out, which makes "the reply comes after its caller
//! went away" certain rather than likely.
//!
//! Every test body runs on its own thread under a 10 s deadlock guard.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::StreamExt;
use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::tls::{PemSource, ServerTlsOptions};
use netconf_blocking::Server;
use netconf_smol::operations::{CreateSubscription, Datastore, GetConfig, RpcBody};
use netconf_smol::tls::ClientTlsOptions;
use netconf_smol::{Client, ClientOptions, Error, Lagged, Reply, Request, RpcReply};
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tests::hostile_tls::{Hostile, HostileServer, Outcome};

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:smol-concurrency";

/// Runs `body` on its own thread and fails if it has not finished within [`GUARD`].
fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("guarded-test-body".into())
        .spawn(move || {
            body();
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

/// `Some(fut's output)`, or `None` if it takes longer than `limit` (the future is dropped).
async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// `fut`, or a panic naming `what` if it takes longer than `limit`.
async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    timeout(limit, fut)
        .await
        .unwrap_or_else(|| panic!("{what}: did not finish within {limit:?}"))
}

async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

/// A fresh PKI in its own temp dir (removed on drop).
struct TestPki {
    pki: Pki,
    files: PkiFiles,
    dir: PathBuf,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "netconf-smol-concurrency-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("creating the temp dir");
        let pki = Pki::generate();
        let files = pki.write_to_dir(&dir).expect("writing the PKI");
        TestPki { pki, files, dir }
    }

    fn client_tls(&self) -> ClientTlsOptions {
        ClientTlsOptions::new()
            .ca_file(&self.files.ca_cert)
            .client_cert_files(&self.files.client_cert, &self.files.client_key)
    }

    fn server_tls(&self) -> ServerTlsOptions {
        ServerTlsOptions::new(
            PemSource::file(&self.files.server_cert),
            PemSource::file(&self.files.server_key),
            PemSource::file(&self.files.ca_cert),
        )
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the handler shares with the test.
struct State {
    /// Permits for `slow` requests.
    gate: Mutex<usize>,
    gate_changed: Condvar,
    /// One message each time a `slow` request enters the handler.
    slow_entered: async_channel::Sender<()>,
    slow_entered_rx: async_channel::Receiver<()>,
    slow_handled: AtomicUsize,
    handled: AtomicUsize,
}

impl State {
    fn new() -> Arc<State> {
        let (slow_entered, slow_entered_rx) = async_channel::unbounded();
        Arc::new(State {
            gate: Mutex::new(0),
            gate_changed: Condvar::new(),
            slow_entered,
            slow_entered_rx,
            slow_handled: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
        })
    }

    fn add_permits(&self, n: usize) {
        *self.gate.lock().unwrap_or_else(|p| p.into_inner()) += n;
        self.gate_changed.notify_all();
    }

    fn acquire(&self) {
        let mut permits = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        while *permits == 0 {
            permits = self
                .gate_changed
                .wait(permits)
                .unwrap_or_else(|p| p.into_inner());
        }
        *permits -= 1;
    }
}

/// Opens the gate for good when dropped, so that a failing test never leaves a session
/// thread parked in the handler (the server's shutdown joins those threads).
struct OpenGateOnDrop(Arc<State>);

impl Drop for OpenGateOnDrop {
    fn drop(&mut self) {
        self.0.add_permits(1 << 20);
    }
}

/// `<echo>` with a tag to echo back and a mode, fast or slow.
fn echo(tag: &str, mode: &str) -> String {
    format!("<echo xmlns=\"{NS}\"><tag>{tag}</tag><mode>{mode}</mode></echo>")
}

/// The handler: accepts create-subscription, echoes `<tag>` and the message-id of anything
/// else; `slow` requests wait for the gate first.
fn handle(request: &Request, state: &State) -> Reply {
    if request.operation.name == "create-subscription" {
        return Reply::Ok;
    }
    state.handled.fetch_add(1, Ordering::SeqCst);
    let tag = request.body.child_text("tag").unwrap_or_default();
    if request.body.child_text("mode").as_deref() == Some("slow") {
        let _ = state.slow_entered.try_send(());
        state.acquire();
        state.slow_handled.fetch_add(1, Ordering::SeqCst);
    }
    Reply::data(format!(
        "<echoed xmlns=\"{NS}\"><tag>{tag}</tag><message-id>{}</message-id></echoed>",
        request.message_id
    ))
    .expect("well-formed reply")
}

/// The server and the address it listens on.
struct TestServer {
    server: Server,
    addr: String,
}

impl std::ops::Deref for TestServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

fn start_server(pki: &TestPki, state: &Arc<State>) -> TestServer {
    let state = state.clone();
    let server = Server::new(
        ServerOptions::new(),
        move |request: &Request, _: &SessionInfo| handle(request, &state),
    );
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls())
        .expect("bind")
        .to_string();
    TestServer { server, addr }
}

async fn connect(pki: &TestPki, server: &TestServer, options: ClientOptions) -> Client {
    within(
        Duration::from_secs(2),
        "establishing the session",
        Client::connect_tls_with(&server.addr, &pki.client_tls(), &options),
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
async fn sessions_empty_within(server: &Server, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.sessions().is_empty() {
            return true;
        }
        sleep(Duration::from_millis(10)).await;
    }
    server.sessions().is_empty()
}

#[test]
fn five_hundred_rpcs_from_fifty_smol_tasks_each_get_their_own_reply() {
    guarded(|| {
        let pki = TestPki::new("five-hundred");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new()).await;
            let tasks: Vec<_> = (0..50)
                .map(|task| {
                    let client = client.clone();
                    smol::spawn(async move {
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
                for id in task.await {
                    assert!(ids.insert(id), "a message-id was answered twice");
                }
            }
            assert_eq!(ids.len(), 500, "replies lost");
            assert_eq!(state.handled.load(Ordering::SeqCst), 500);
            client.close().await.expect("close");
            assert!(sessions_empty_within(&server, Duration::from_secs(2)).await);
        });
        server.shutdown();
    })
}

#[test]
fn cancelled_requests_do_not_desynchronise_later_ones() {
    guarded(|| {
        let pki = TestPki::new("cancel");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new()).await;
            let mut slow_sent = 0;

            // 1. A slow request, dropped once the server is working on it: its reply is
            //    certain to come after its caller went away.
            {
                let xml = echo("slow-0", "slow");
                let raced =
                    futures_lite::future::or(async { Some(client.rpc_raw(&xml).await) }, async {
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
            // 3. Slow requests in tasks that get cancelled (dropping a smol Task cancels it).
            let cancelled: Vec<_> = (6..=8)
                .map(|i| {
                    let client = client.clone();
                    smol::spawn(
                        async move { client.rpc_raw(&echo(&format!("slow-{i}"), "slow")).await },
                    )
                })
                .collect();
            slow_sent += cancelled.len();
            sleep(Duration::from_millis(20)).await;
            for task in cancelled {
                assert!(task.cancel().await.is_none(), "a gated request completed");
            }

            // 4. Fresh requests, queued behind every abandoned one; then open the gate.
            let fresh: Vec<_> = (0..20)
                .map(|i| {
                    let client = client.clone();
                    smol::spawn(async move {
                        let tag = format!("fresh-{i}");
                        let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                        check_echo(&reply, &tag);
                    })
                })
                .collect();
            sleep(Duration::from_millis(20)).await;
            state.add_permits(100);
            for task in fresh {
                within(Duration::from_secs(5), "a fresh request", task).await;
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
        });
        server.shutdown();
    })
}

#[test]
fn per_rpc_timeout_then_session_still_usable() {
    guarded(|| {
        let pki = TestPki::new("timeout");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            // A long default timeout, overridden per rpc below.
            let client = connect(
                &pki,
                &server,
                ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
            )
            .await;

            let slow = RpcBody::raw(echo("slow", "slow")).expect("xml");
            let started = Instant::now();
            match client
                .rpc_with_timeout(&slow, Some(Duration::from_millis(200)))
                .await
            {
                Err(Error::Timeout(_)) => {}
                other => panic!("expected a timeout, got {other:?}"),
            }
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(180) && waited < Duration::from_secs(2),
                "timed out after {waited:?}"
            );

            // Queued behind the gated one on the server; a longer per-rpc timeout and none.
            let long = {
                let client = client.clone();
                smol::spawn(async move {
                    let op = RpcBody::raw(echo("long", "fast")).expect("xml");
                    client
                        .rpc_with_timeout(&op, Some(Duration::from_secs(5)))
                        .await
                })
            };
            let forever = {
                let client = client.clone();
                smol::spawn(async move {
                    let op = RpcBody::raw(echo("forever", "fast")).expect("xml");
                    client.rpc_with_timeout(&op, None).await
                })
            };
            sleep(Duration::from_millis(300)).await;
            state.add_permits(1);
            check_echo(&long.await.expect("long rpc"), "long");
            check_echo(&forever.await.expect("rpc without timeout"), "forever");
            assert_eq!(state.slow_handled.load(Ordering::SeqCst), 1);

            // A gated rpc timing out with the client's default timeout.
            let short = ClientOptions::new().rpc_timeout(Some(Duration::from_millis(150)));
            let client2 = connect(&pki, &server, short).await;
            let started = Instant::now();
            match client2.rpc_raw(&echo("slow-2", "slow")).await {
                Err(Error::Timeout(_)) => {}
                other => panic!("expected a timeout, got {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(2));
            state.add_permits(1);
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
        });
        server.shutdown();
    })
}

fn event_time(i: usize) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)
}

fn seq_content(i: usize) -> String {
    format!("<seq xmlns=\"{NS}\"><n>{i}</n><text>event &amp; {i}</text></seq>")
}

#[test]
fn notifications_interleaved_with_replies_arrive_in_order() {
    guarded(|| {
        let pki = TestPki::new("notif");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new()).await;
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
                    smol::spawn(async move {
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
                    let sent = server
                        .notify(&event_time(i), &seq_content(i))
                        .expect("notify");
                    assert_eq!(sent, 1);
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
                within(Duration::from_secs(5), "the background rpcs", task).await;
            }

            // Nothing more is pending.
            let extra = timeout(Duration::from_millis(100), notifications.next()).await;
            assert!(extra.is_none(), "unexpected extra notification: {extra:?}");
            client.close().await.expect("close");
        });
        server.shutdown();
    })
}

#[test]
fn slow_notification_consumer_lags_then_continues() {
    guarded(|| {
        let pki = TestPki::new("lag");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new().notification_buffer(4)).await;
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
            // A round trip: the server wrote the notifications before this reply, so once the
            // reply is here every notification has reached the unread subscriber.
            let reply = client.rpc_raw(&echo("barrier", "fast")).await.expect("rpc");
            check_echo(&reply, "barrier");

            // The slow consumer's bounded queue kept the first 4; the other 16 were dropped,
            // not buffered without bound.
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
        });
        server.shutdown();
    })
}

/// Dropping the last `Client` handle must end the session politely: the driver sends
/// `<close-session>` and the server forgets the session.
#[test]
fn dropping_every_client_closes_the_session() {
    guarded(|| {
        let pki = TestPki::new("drop-all");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new()).await;
            let clones: Vec<Client> = (0..5).map(|_| client.clone()).collect();
            let tasks: Vec<_> = clones
                .into_iter()
                .enumerate()
                .map(|(t, client)| {
                    smol::spawn(async move {
                        let tag = format!("c{t}");
                        let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                        check_echo(&reply, &tag);
                        // `client` is dropped with the task.
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            assert_eq!(server.sessions().len(), 1);
            drop(client);
            assert!(
                sessions_empty_within(&server, Duration::from_secs(2)).await,
                "the session stayed open after every Client handle was dropped: {:?}",
                server.sessions()
            );
        });
        server.shutdown();
    })
}

/// The same, seen from a server that records what arrives: it is a `<close-session>`, not
/// just a dropped socket.
#[test]
fn dropping_every_client_sends_close_session() {
    guarded(|| {
        let pki = TestPki::new("drop-all-hostile");
        let server = HostileServer::start(Hostile::Normal, &pki.pki).expect("server");
        let addr = server.addr().to_string();
        smol::block_on(async {
            let client = within(
                Duration::from_secs(2),
                "establishing the session",
                Client::connect_tls(&addr, &pki.client_tls()),
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
        });
        let log = server
            .wait_for_first_outcome(Duration::from_secs(2))
            .expect("the connection was still open 2 s after every Client was dropped");
        assert!(log.close_session, "no close-session: {log:?}");
        assert_eq!(log.outcome, Some(Outcome::ClosedAfterCloseSession));
        server.stop();
    })
}

/// A consumer looping over `notifications()` must see the stream end once the session is
/// gone, even while a `Client` handle is still alive (the consumer task usually holds one).
#[test]
fn notification_stream_ends_with_the_session() {
    guarded(|| {
        let pki = TestPki::new("notif-end");
        let state = State::new();
        let server = start_server(&pki, &state);
        let _open = OpenGateOnDrop(state.clone());
        smol::block_on(async {
            let client = connect(&pki, &server, ClientOptions::new()).await;
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
        });
        server.shutdown();
    })
}
