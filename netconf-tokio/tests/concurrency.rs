//! One tokio `Client` session shared by many tasks, against our tokio `Server`: pipelining,
//! reply matching, cancelled and timed-out requests, notifications interleaved with replies,
//! slow notification consumers, and a throughput measurement.
//!
//! The server's handler echoes a leaf of each request (and its message-id), so every reply
//! can be checked against the request it answers.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tokio::operations::{CreateSubscription, RpcBody};
use netconf_tokio::server::ServerOptions;
use netconf_tokio::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_tokio::{
    Client, ClientOptions, Config, Error, Lagged, Reply, Request, RpcReply, Server,
};
use tokio::sync::{Notify, Semaphore};
use tokio_stream::Stream;

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:concurrency";

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish within 10 s");
}

/// A fresh PKI in its own temp dir (removed on drop).
struct TestPki {
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
            "netconf-tokio-concurrency-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("creating the temp dir");
        let files = Pki::generate().write_to_dir(&dir).expect("writing the PKI");
        TestPki { files, dir }
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

/// `StreamExt::next` without the extra dependency.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// What the handler shares with the test.
struct State {
    /// `slow` requests wait here for a permit the test hands out.
    gate: Semaphore,
    /// Signalled each time a `slow` request enters the handler.
    slow_entered: Notify,
    slow_handled: AtomicUsize,
    handled: AtomicUsize,
}

impl Default for State {
    fn default() -> Self {
        State {
            gate: Semaphore::new(0),
            slow_entered: Notify::new(),
            slow_handled: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
        }
    }
}

/// `<echo>` with a tag to echo back, `mode` fast or slow, and optional padding.
fn echo(tag: &str, mode: &str) -> String {
    format!("<echo xmlns=\"{NS}\"><tag>{tag}</tag><mode>{mode}</mode></echo>")
}

/// The handler: echoes `<tag>` and the message-id; `slow` requests wait for the gate;
/// `<pad-reply>n</pad-reply>` adds n bytes of padding to the reply.
async fn handle(request: Request, state: Arc<State>) -> Reply {
    state.handled.fetch_add(1, Ordering::SeqCst);
    if request.operation.name == "create-subscription" {
        return Reply::Ok;
    }
    let tag = request.body.child_text("tag").unwrap_or_default();
    if request.body.child_text("mode").as_deref() == Some("slow") {
        state.slow_entered.notify_one();
        state
            .gate
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
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

async fn start_server(pki: &TestPki, state: Arc<State>) -> TestServer {
    // A hundred tasks pipeline on one session: let every request wait for its handler
    // instead of being refused with resource-denied beyond the default 64.
    let config = Config::server().with_max_pending_requests(1024);
    let server = Server::new(
        ServerOptions::new().config(config),
        move |request, _info| handle(request, state.clone()),
    );
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls())
        .await
        .expect("bind")
        .to_string();
    TestServer { server, addr }
}

async fn connect(pki: &TestPki, server: &TestServer, options: ClientOptions) -> Client {
    Client::connect_tls_with(&server.addr, &pki.client_tls(), &options)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_rpcs_from_hundred_tasks_each_get_their_own_reply() {
    guarded(async {
        let pki = TestPki::new("thousand");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;

        let mut tasks = Vec::new();
        for task in 0..100 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..10 {
                    let tag = format!("t{task}-{i}");
                    let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                    ids.push(check_echo(&reply, &tag));
                }
                ids
            }));
        }
        let mut ids = HashSet::new();
        for task in tasks {
            for id in task.await.expect("task panicked") {
                assert!(ids.insert(id), "a message-id was answered twice");
            }
        }
        assert_eq!(ids.len(), 1000, "replies lost");
        assert_eq!(state.handled.load(Ordering::SeqCst), 1000);
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn thousand_rpcs_on_the_current_thread_runtime() {
    guarded(async {
        let pki = TestPki::new("thousand-ct");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..100 {
            let client = client.clone();
            tasks.spawn(async move {
                for i in 0..10 {
                    let tag = format!("t{task}-{i}");
                    let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                    check_echo(&reply, &tag);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task panicked");
        }
        assert_eq!(state.handled.load(Ordering::SeqCst), 1000);
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_do_not_steal_later_replies() {
    guarded(async {
        let pki = TestPki::new("cancel");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        let mut slow_sent = 0;

        // 1. A slow request, dropped (select!) once the server is working on it: its reply
        //    is certain to come after its caller went away.
        {
            let xml = echo("slow-0", "slow");
            let rpc = client.rpc_raw(&xml);
            tokio::select! {
                r = rpc => panic!("the gated request was answered: {r:?}"),
                () = state.slow_entered.notified() => {}
            }
            slow_sent += 1;
        }
        // 2. Slow requests abandoned by a 10 ms timeout (queued behind the first one).
        for i in 1..=5 {
            let r = tokio::time::timeout(
                Duration::from_millis(10),
                client.rpc_raw(&echo(&format!("slow-{i}"), "slow")),
            )
            .await;
            assert!(r.is_err(), "slow-{i} was answered: {r:?}");
            slow_sent += 1;
        }
        // 3. Slow requests in tasks that get aborted.
        let mut aborted = Vec::new();
        for i in 6..=8 {
            let client = client.clone();
            aborted.push(tokio::spawn(async move {
                client.rpc_raw(&echo(&format!("slow-{i}"), "slow")).await
            }));
            slow_sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for task in &aborted {
            task.abort();
        }
        for task in aborted {
            let err = task.await.expect_err("an aborted task completed");
            assert!(err.is_cancelled());
        }

        // 4. Fresh requests, queued behind every abandoned one; then open the gate.
        let mut fresh = Vec::new();
        for i in 0..20 {
            let client = client.clone();
            fresh.push(tokio::spawn(async move {
                let tag = format!("fresh-{i}");
                let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                check_echo(&reply, &tag);
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        state.gate.add_permits(100);
        for task in fresh {
            task.await.expect("a fresh request got a wrong or no reply");
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_rpc_timeout_then_session_still_usable() {
    guarded(async {
        let pki = TestPki::new("timeout");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        // A short default timeout, overridden per rpc below.
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

        // Queued behind the gated one on the server; a longer per-rpc timeout and none at all.
        let c1 = client.clone();
        let long = tokio::spawn(async move {
            let op = RpcBody::raw(echo("long", "fast")).expect("xml");
            c1.rpc_with_timeout(&op, Some(Duration::from_secs(5))).await
        });
        let c2 = client.clone();
        let forever = tokio::spawn(async move {
            let op = RpcBody::raw(echo("forever", "fast")).expect("xml");
            c2.rpc_with_timeout(&op, None).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        state.gate.add_permits(1);
        check_echo(&long.await.expect("task").expect("long rpc"), "long");
        check_echo(
            &forever.await.expect("task").expect("rpc without timeout"),
            "forever",
        );
        assert_eq!(state.slow_handled.load(Ordering::SeqCst), 1);

        // A gated rpc timing out with the client's default timeout.
        let short = ClientOptions::new().rpc_timeout(Some(Duration::from_millis(150)));
        let client2 = connect(&pki, &server, short).await;
        match client2.rpc_raw(&echo("slow-2", "slow")).await {
            Err(Error::Timeout(_)) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
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
    })
    .await
}

fn event_time(i: usize) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)
}

fn seq_content(i: usize) -> String {
    format!("<seq xmlns=\"{NS}\"><n>{i}</n><text>event &amp; {i}</text></seq>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_interleaved_with_replies_arrive_in_order() {
    guarded(async {
        let pki = TestPki::new("notif");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;

        let mut notifications = client.notifications();
        client
            .call(&CreateSubscription::new())
            .await
            .expect("subscribe");

        const ROUNDS: usize = 20;
        const PER_ROUND: usize = 10;
        // Replies in flight from other tasks the whole time.
        let background = {
            let client = client.clone();
            tokio::spawn(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for t in 0..4 {
                    let client = client.clone();
                    tasks.spawn(async move {
                        for i in 0..50 {
                            let tag = format!("bg{t}-{i}");
                            let reply = client.rpc_raw(&echo(&tag, "fast")).await.expect("rpc");
                            check_echo(&reply, &tag);
                        }
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.expect("background task");
                }
            })
        };
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
            let n = next(&mut notifications)
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
        background.await.expect("background rpcs");

        // Nothing more is pending.
        let extra =
            tokio::time::timeout(Duration::from_millis(100), next(&mut notifications)).await;
        assert!(extra.is_err(), "unexpected extra notification: {extra:?}");
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}

/// A consumer looping over `notifications()` must not wait forever once the session is
/// gone, even while a `Client` handle is still alive (the usual case: the consumer task
/// holds one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_stream_ends_with_the_session() {
    guarded(async {
        let pki = TestPki::new("notif-end");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        let mut notifications = client.notifications();
        client
            .call(&CreateSubscription::new())
            .await
            .expect("subscribe");
        server
            .notify(&event_time(0), &seq_content(0))
            .expect("notify");
        let n = next(&mut notifications)
            .await
            .expect("one")
            .expect("no lag");
        assert_eq!(n.content.child_text("n").as_deref(), Some("0"));

        // The server goes away; the client handle stays alive.
        server.shutdown().await;
        let end = tokio::time::timeout(Duration::from_secs(2), next(&mut notifications))
            .await
            .expect("the notification stream did not end after the session ended");
        assert!(end.is_none(), "{end:?}");
        assert!(client.is_closed());

        // Same after a clean close.
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        let mut notifications = client.notifications();
        client.close().await.expect("close");
        let end = tokio::time::timeout(Duration::from_secs(2), next(&mut notifications))
            .await
            .expect("the notification stream did not end after close()");
        assert!(end.is_none(), "{end:?}");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_notification_consumer_lags_then_continues() {
    guarded(async {
        let pki = TestPki::new("lag");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
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
        // A round trip: the server writes the notifications it queued before this reply, so
        // once the reply is here every notification has reached the unread subscriber.
        let reply = client.rpc_raw(&echo("barrier", "fast")).await.expect("rpc");
        check_echo(&reply, "barrier");

        // The slow consumer's bounded queue kept the first 4; the other 16 were dropped, not
        // buffered without bound.
        for i in 0..BUFFER {
            let n = next(&mut slow)
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
                match next(&mut slow).await.expect("stream ended") {
                    Err(Lagged(n)) => assert_eq!(n, (SENT - BUFFER) as u64),
                    Ok(n) => panic!("expected Lagged first, got {n:?}"),
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(2), next(&mut slow))
                .await
                .expect("no notification after the lag")
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
    })
    .await
}

/// Runs `total` echo rpcs with `in_flight` concurrent callers; returns the elapsed time.
async fn run_pipelined(client: &Client, total: usize, in_flight: usize, pad: usize) -> Duration {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let client = client.clone();
        let counter = counter.clone();
        tasks.spawn(async move {
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
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("pipelined task");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_64_in_flight() {
    guarded(async {
        let pki = TestPki::new("throughput");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        // Warm-up.
        run_pipelined(&client, 200, 64, 0).await;
        const TOTAL: usize = 2000;
        let elapsed = run_pipelined(&client, TOTAL, 64, 0).await;
        let rate = TOTAL as f64 / elapsed.as_secs_f64();
        println!(
            "throughput: {TOTAL} RPCs with 64 in flight in {elapsed:?}: {rate:.0} RPCs/s \
             (debug_assertions: {})",
            cfg!(debug_assertions)
        );
        assert_eq!(state.handled.load(Ordering::SeqCst), 200 + TOTAL);
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}

/// Large requests and replies with a few in flight (the socket buffers absorb them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_and_replies_few_in_flight() {
    guarded(async {
        let pki = TestPki::new("large-few");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        let elapsed = run_pipelined(&client, 16, 4, 1 << 20).await;
        eprintln!("16 x 1 MiB requests and replies, 4 in flight: {elapsed:?}");
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}

/// Many large requests in flight while large replies come back: the client must keep
/// reading replies while it writes requests, or both sides end up blocked in a write
/// (each peer's socket buffers full of data the other does not read). 48 MiB each way takes
/// about 1 s with up to 8 in flight; with 16 or more it hangs until the 60 s write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pipelined_requests_and_replies_do_not_deadlock() {
    guarded(async {
        let pki = TestPki::new("large");
        let state = Arc::new(State::default());
        let server = start_server(&pki, state.clone()).await;
        let client = connect(&pki, &server, ClientOptions::new()).await;
        const SIZE: usize = 1 << 20;
        let elapsed = run_pipelined(&client, 48, 48, SIZE).await;
        eprintln!("48 x 1 MiB requests and replies, all in flight: {elapsed:?}");
        client.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}
