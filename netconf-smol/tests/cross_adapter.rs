//! The smol client against every adapter's server, over real TLS on loopback: the tokio
//! `Server` (on a multi-thread tokio runtime owned by the test), the blocking `Server`
//! (threads only) and the smol `Server` (on smol's global executor). One scenario runs
//! against each: hello, get-config, edit-config, lock/unlock (with a second session holding
//! the lock), create-subscription and a notification, kill-session of one session by
//! another, close.
//!
//! Then `from_stream_with_driver` over a plain `async_net::TcpStream` to a peer written here:
//! a `netconf_proto::Session` in the server role, driven by hand on a std thread.
//!
//! Every test body runs on its own thread under a 10 s deadlock guard.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::StreamExt;
use netconf_proto::capabilities::{BASE_1_0, BASE_1_1};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::{Capabilities, CloseReason, Event, Framing, Output, Session};
use netconf_smol::operations::{
    CreateSubscription, Datastore, EditConfig, GetConfig, InlineConfig, KillSession, Lock, Unlock,
};
use netconf_smol::server::{ServerOptions, SessionInfo};
use netconf_smol::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_smol::{Client, ClientOptions, Config, Error, Reply, Request, RpcError, RpcReply};
use netconf_tests::certs::{Pki, PkiFiles};

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:smol-cross";
const CANDIDATE: &str = "urn:ietf:params:netconf:capability:candidate:1.0";
const NOTIFICATION: &str = "urn:ietf:params:netconf:capability:notification:1.0";

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

/// `fut`, or a panic naming `what` if it takes longer than `limit`.
async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("{what}: did not finish within {limit:?}"))
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
            "netconf-smol-cross-{tag}-{}-{n}-{nanos}",
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

fn server_config() -> Config {
    Config::server()
        .with_capability(CANDIDATE)
        .with_capability(NOTIFICATION)
}

/// A one-leaf running datastore and its lock, shared by every session of a server.
#[derive(Default)]
struct Store {
    value: Mutex<String>,
    lock_holder: Mutex<Option<u32>>,
}

fn error(tag: ErrorTag, message: &str) -> Reply {
    Reply::error(RpcError::new(ErrorType::Protocol, tag).with_message(message))
}

/// The handler both servers run.
fn handle(request: &Request, session_id: u32, store: &Store) -> Reply {
    match request.operation.name.as_str() {
        "get-config" => {
            let value = store
                .value
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let value = value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            Reply::data(format!("<top xmlns=\"{NS}\"><v>{value}</v></top>"))
                .expect("well-formed data")
        }
        "edit-config" => match request.body.child_text("v") {
            Some(v) => {
                *store.value.lock().unwrap_or_else(|p| p.into_inner()) = v;
                Reply::Ok
            }
            None => error(ErrorTag::MissingElement, "no <v> in the edit"),
        },
        "lock" => {
            let mut holder = store.lock_holder.lock().unwrap_or_else(|p| p.into_inner());
            match *holder {
                Some(other) => Reply::error(
                    RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
                        .with_message("the running datastore is locked")
                        .with_info_xml(&format!("<session-id>{other}</session-id>"))
                        .expect("well-formed error-info"),
                ),
                None => {
                    *holder = Some(session_id);
                    Reply::Ok
                }
            }
        }
        "unlock" => {
            let mut holder = store.lock_holder.lock().unwrap_or_else(|p| p.into_inner());
            if *holder == Some(session_id) {
                *holder = None;
                Reply::Ok
            } else {
                error(ErrorTag::OperationFailed, "not locked by this session")
            }
        }
        "create-subscription" => Reply::Ok,
        other => error(
            ErrorTag::OperationNotSupported,
            &format!("{other} is not supported"),
        ),
    }
}

/// What the scenario needs from a server, whichever adapter runs it.
struct ServerOps<'a> {
    notify: &'a dyn Fn(&str, &str) -> usize,
    sessions: &'a dyn Fn() -> Vec<u32>,
    /// Whether `notify` returns the number of subscribed sessions only (documented for both
    /// servers).
    notify_counts_subscribers_only: bool,
}

impl ServerOps<'_> {
    async fn wait_sessions(&self, what: &str, pred: impl Fn(&[u32]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let sessions = (self.sessions)();
            if pred(&sessions) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: server sessions still {sessions:?} after 2 s"
            );
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    }
}

fn rpc_errors(result: Result<(), Error>, what: &str) -> Vec<RpcError> {
    match result {
        Err(Error::Rpc(errors)) => errors,
        other => panic!("{what}: expected an rpc-error, got {other:?}"),
    }
}

/// Polls `is_closed` for up to 2 s.
async fn wait_closed(client: &Client) -> bool {
    for _ in 0..200 {
        if client.is_closed() {
            return true;
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    client.is_closed()
}

/// The scenario every server must pass with the smol client.
async fn scenario(addr: &str, pki: &TestPki, server: ServerOps<'_>) {
    let tls = pki.client_tls();
    let connect = || {
        within(
            Duration::from_secs(2),
            "establishing the session",
            Client::connect_tls(addr, &tls),
        )
    };
    let a = connect().await.expect("connect a");
    let b = connect().await.expect("connect b");

    // Hello.
    assert_ne!(a.session_id(), 0);
    assert_ne!(a.session_id(), b.session_id());
    server
        .wait_sessions("both sessions open", |s| {
            s.contains(&a.session_id()) && s.contains(&b.session_id())
        })
        .await;
    for client in [&a, &b] {
        let caps = client.capabilities();
        assert!(caps.contains_uri(BASE_1_0), "{caps:?}");
        assert!(caps.contains_uri(BASE_1_1), "{caps:?}");
        assert!(caps.has_candidate(), "{caps:?}");
        assert!(caps.has_notification(), "{caps:?}");
        assert_eq!(client.framing(), Framing::Chunked);
    }

    // get-config, edit-config, get-config again (from the other session).
    let get = GetConfig::new(Datastore::Running);
    let data = a.call(&get).await.expect("get-config");
    assert_eq!(data.child_text("v").as_deref(), Some(""), "{data}");
    let edit = EditConfig::new(
        Datastore::Running,
        InlineConfig::new(format!("<top xmlns=\"{NS}\"><v>42 &amp; more</v></top>"))
            .expect("well-formed config"),
    );
    a.call(&edit).await.expect("edit-config");
    let data = b.call(&get).await.expect("get-config after edit");
    assert_eq!(data.child_text("v").as_deref(), Some("42 & more"), "{data}");

    // lock / unlock, contended by the second session.
    a.call(&Lock::new(Datastore::Running)).await.expect("lock");
    let errors = rpc_errors(
        b.call(&Lock::new(Datastore::Running)).await,
        "b locks a's lock",
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].tag, ErrorTag::LockDenied);
    let info = errors[0].info.as_ref().expect("error-info");
    assert_eq!(
        info.child_text("session-id"),
        Some(a.session_id().to_string())
    );
    let errors = rpc_errors(
        b.call(&Unlock::new(Datastore::Running)).await,
        "b unlocks a's lock",
    );
    assert_eq!(errors[0].tag, ErrorTag::OperationFailed);
    a.call(&Unlock::new(Datastore::Running))
        .await
        .expect("unlock");
    b.call(&Lock::new(Datastore::Running))
        .await
        .expect("lock after unlock");
    b.call(&Unlock::new(Datastore::Running))
        .await
        .expect("unlock b");
    // An operation the server does not know is an rpc-error, and the session goes on.
    let unknown = a.rpc_raw("<frobnicate xmlns=\"urn:x\"/>").await.map(drop);
    assert_eq!(
        rpc_errors(unknown, "unknown operation")[0].tag,
        ErrorTag::OperationNotSupported
    );

    // create-subscription + notify -> notification (to the subscribed session only).
    let mut notifications = a.notifications();
    a.call(&CreateSubscription::new())
        .await
        .expect("create-subscription");
    let mut b_notifications = b.notifications();
    let content = format!("<changed xmlns=\"{NS}\"><n>1</n><what>a &lt; b</what></changed>");
    let sent = (server.notify)("2026-01-01T00:00:00Z", &content);
    if server.notify_counts_subscribers_only {
        assert_eq!(sent, 1);
    } else {
        assert!(sent >= 1, "{sent}");
    }
    let n = within(
        Duration::from_secs(2),
        "the notification",
        notifications.next(),
    )
    .await
    .expect("notification stream ended")
    .expect("lagged");
    assert_eq!(n.event_time, "2026-01-01T00:00:00Z");
    assert_eq!(n.content.child_text("n").as_deref(), Some("1"));
    assert_eq!(n.content.child_text("what").as_deref(), Some("a < b"));
    // b did not subscribe: nothing for it.
    let stray = futures_lite::future::or(async { Some(b_notifications.next().await) }, async {
        async_io::Timer::after(Duration::from_millis(200)).await;
        None
    })
    .await;
    assert!(stray.is_none(), "an unsubscribed session got {stray:?}");
    drop(b_notifications);
    // RPCs still work with a subscription active.
    a.call(&get).await.expect("get-config after notify");

    // kill-session: b ends a; a's calls then fail promptly.
    b.call(&KillSession::new(a.session_id()).expect("a valid session-id"))
        .await
        .expect("kill-session");
    assert!(wait_closed(&a).await, "a killed session stayed open");
    let after = within(
        Duration::from_secs(1),
        "an rpc on a killed session",
        a.call(&get),
    )
    .await;
    assert!(after.is_err(), "{after:?}");
    server
        .wait_sessions("the killed session gone", |s| !s.contains(&a.session_id()))
        .await;

    // close.
    let b_id = b.session_id();
    within(Duration::from_secs(2), "close", b.close())
        .await
        .expect("close");
    assert!(wait_closed(&b).await);
    assert!(b.call(&get).await.is_err(), "an rpc after close");
    server
        .wait_sessions("every session closed", |s| !s.contains(&b_id))
        .await;
}

#[test]
fn smol_client_against_the_tokio_server() {
    guarded(|| {
        let pki = TestPki::new("tokio");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let store = Arc::new(Store::default());
        let server = netconf_tokio::Server::new(
            ServerOptions::new().config(server_config()),
            move |request, info| {
                let store = store.clone();
                async move { handle(&request, info.session_id, &store) }
            },
        );
        let addr = runtime
            .block_on(server.listen_tls("127.0.0.1:0", &pki.server_tls()))
            .expect("bind")
            .to_string();
        smol::block_on(scenario(
            &addr,
            &pki,
            ServerOps {
                notify: &|time, content| server.notify(time, content).expect("notify"),
                sessions: &|| server.sessions(),
                notify_counts_subscribers_only: true,
            },
        ));
        runtime.block_on(server.shutdown());
        runtime.shutdown_timeout(Duration::from_secs(1));
    })
}

/// `Server::notify` is documented to return how many *subscribed* sessions the
/// notification was queued for.
#[test]
fn tokio_server_notify_counts_subscribed_sessions_only() {
    guarded(|| {
        let pki = TestPki::new("tokio-notify-count");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let store = Arc::new(Store::default());
        let server = netconf_tokio::Server::new(
            ServerOptions::new().config(server_config()),
            move |request, info| {
                let store = store.clone();
                async move { handle(&request, info.session_id, &store) }
            },
        );
        let addr = runtime
            .block_on(server.listen_tls("127.0.0.1:0", &pki.server_tls()))
            .expect("bind")
            .to_string();
        let tls = pki.client_tls();
        smol::block_on(async {
            let subscribed = Client::connect_tls(&addr, &tls).await.expect("connect");
            let idle = Client::connect_tls(&addr, &tls).await.expect("connect");
            subscribed
                .call(&CreateSubscription::new())
                .await
                .expect("create-subscription");
            let sent = server
                .notify("2026-01-01T00:00:00Z", &format!("<e xmlns=\"{NS}\"/>"))
                .expect("notify");
            assert_eq!(sent, 1, "one session of two subscribed");
            subscribed.close().await.expect("close");
            idle.close().await.expect("close");
        });
        runtime.block_on(server.shutdown());
        runtime.shutdown_timeout(Duration::from_secs(1));
    })
}

#[test]
fn smol_client_against_the_smol_server() {
    guarded(|| {
        let pki = TestPki::new("smol");
        let store = Arc::new(Store::default());
        let server = netconf_smol::Server::new(
            ServerOptions::new().config(server_config()),
            move |request, info| {
                let store = store.clone();
                async move { handle(&request, info.session_id, &store) }
            },
        );
        let addr = smol::block_on(server.listen_tls("127.0.0.1:0", &pki.server_tls()))
            .expect("bind")
            .to_string();
        smol::block_on(scenario(
            &addr,
            &pki,
            ServerOps {
                notify: &|time, content| server.notify(time, content).expect("notify"),
                sessions: &|| server.sessions(),
                notify_counts_subscribers_only: true,
            },
        ));
        smol::block_on(server.shutdown());
    })
}

#[test]
fn smol_client_against_the_blocking_server() {
    guarded(|| {
        let pki = TestPki::new("blocking");
        let store = Arc::new(Store::default());
        let server = netconf_blocking::Server::new(
            ServerOptions::new().config(server_config()),
            move |request: &Request, info: &SessionInfo| handle(request, info.session_id, &store),
        );
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls())
            .expect("bind")
            .to_string();
        smol::block_on(scenario(
            &addr,
            &pki,
            ServerOps {
                notify: &|time, content| server.notify(time, content).expect("notify"),
                sessions: &|| server.sessions(),
                notify_counts_subscribers_only: true,
            },
        ));
        server.shutdown();
    })
}

// ---------------------------------------------------------------------------------------------
// A plain-TCP peer: netconf-proto's server session, driven by hand.

/// Accepts one connection and serves it with a hand-driven `Session::server`: every rpc but
/// close-session gets a `<data>` reply numbering it. Returns how the session ended.
fn plain_peer(
    listener: TcpListener,
    session_id: u32,
    config: Config,
) -> JoinHandle<Result<CloseReason, String>> {
    std::thread::Builder::new()
        .name("plain-netconf-peer".into())
        .spawn(move || {
            let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
            let (mut stream, _) = listener.accept().map_err(|e| fail("accept", &e))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| fail("socket setup", &e))?;
            let mut session = Session::server(config, session_id, Instant::now());
            let mut buf = vec![0u8; 16 * 1024];
            let mut answered = 0usize;
            loop {
                let reason = loop {
                    match session.poll_output() {
                        Output::Transmit(bytes) => {
                            stream.write_all(&bytes).map_err(|e| fail("write", &e))?
                        }
                        Output::Event(Event::Rpc { id, request }) => {
                            let reply = Reply::data(format!(
                                "<top xmlns=\"{NS}\"><served-by>hand-driven</served-by>\
                                 <op>{}</op><n>{answered}</n></top>",
                                request.operation.name
                            ))
                            .expect("well-formed data");
                            answered += 1;
                            session
                                .send_reply(id, reply)
                                .map_err(|e| fail("send_reply", &e))?;
                        }
                        Output::Event(Event::Closed { reason }) => break Some(reason),
                        Output::Event(_) => {}
                        Output::Wait(_) => break None,
                        _ => {}
                    }
                };
                if let Some(reason) = reason {
                    // Everything is written (Closed is the last output); half-close, then
                    // read until the client closes too so no RST can eat the last reply.
                    let _ = stream.shutdown(Shutdown::Write);
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    return Ok(reason);
                }
                let now = Instant::now();
                match stream.read(&mut buf) {
                    Ok(0) => session.handle_eof(now),
                    Ok(n) => {
                        if let Err(e) = session.handle_input(&buf[..n], now) {
                            return Err(fail("protocol error from the client", &e));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(fail("read", &e)),
                }
            }
        })
        .expect("spawning the peer thread")
}

fn bind_loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    (listener, addr)
}

/// Joins the peer thread without blocking the executor, within 2 s.
async fn peer_result(peer: JoinHandle<Result<CloseReason, String>>) -> CloseReason {
    within(
        Duration::from_secs(2),
        "the plain peer finishing",
        smol::unblock(move || peer.join()),
    )
    .await
    .expect("the peer thread panicked")
    .unwrap_or_else(|e| panic!("the plain peer failed: {e}"))
}

fn check_plain_data(data: &str, n: usize) {
    assert!(
        data.contains("<served-by>hand-driven</served-by>"),
        "{data}"
    );
    assert!(data.contains("<op>get-config</op>"), "{data}");
    assert!(data.contains(&format!("<n>{n}</n>")), "{data}");
}

#[test]
fn from_stream_with_driver_over_plain_tcp_to_a_hand_driven_session() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let peer = plain_peer(listener, 77, Config::server());
        smol::block_on(async {
            let stream = async_net::TcpStream::connect(addr).await.expect("connect");
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");
            let driver = smol::spawn(driver);
            assert_eq!(client.session_id(), 77);
            assert_eq!(client.framing(), Framing::Chunked);
            assert!(client.capabilities().contains_uri(BASE_1_1));

            let get = GetConfig::new(Datastore::Running);
            for n in 0..3 {
                let data = within(Duration::from_secs(2), "get-config", client.call(&get))
                    .await
                    .expect("get-config");
                check_plain_data(data.as_str(), n);
            }
            within(Duration::from_secs(2), "close", client.close())
                .await
                .expect("close");
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert!(client.is_closed());
            assert_eq!(peer_result(peer).await, CloseReason::CloseSession);
        });
    })
}

/// The same over async-std's executor, against a peer that only speaks base:1.0, so the
/// session stays in end-of-message framing.
#[test]
fn from_stream_with_driver_on_async_std_to_a_base10_peer() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let config = Config::server().with_capabilities(Capabilities::new([BASE_1_0]));
        let peer = plain_peer(listener, 78, config);
        async_std::task::block_on(async {
            let stream = async_net::TcpStream::connect(addr).await.expect("connect");
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");
            let driver = async_std::task::spawn(driver);
            assert_eq!(client.session_id(), 78);
            assert_eq!(client.framing(), Framing::EndOfMessage);

            let get = GetConfig::new(Datastore::Running);
            let (x, y) = futures_lite::future::zip(client.call(&get), client.call(&get)).await;
            let both = format!("{}{}", x.expect("first"), y.expect("second"));
            assert!(
                both.contains("<n>0</n>") && both.contains("<n>1</n>"),
                "{both}"
            );
            within(Duration::from_secs(2), "close", client.close())
                .await
                .expect("close");
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert_eq!(peer_result(peer).await, CloseReason::CloseSession);
        });
    })
}

/// A stream whose writes start failing when told to.
struct FailingWrites {
    inner: async_net::TcpStream,
    fail: Arc<AtomicBool>,
}

impl AsyncRead for FailingWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FailingWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.fail.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "injected write failure",
            )));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

type RpcFuture<'a> = Pin<Box<dyn Future<Output = Result<RpcReply, Error>> + Send + 'a>>;

/// RPCs already queued for the driver when the transport fails must all fail, not wait
/// forever: a caller has no timeout of its own (the driver enforces RPC timeouts).
#[test]
fn rpcs_queued_when_the_transport_fails_all_fail() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let peer = plain_peer(listener, 79, Config::server());
        smol::block_on(async {
            let inner = async_net::TcpStream::connect(addr).await.expect("connect");
            let fail = Arc::new(AtomicBool::new(false));
            let stream = FailingWrites {
                inner,
                fail: fail.clone(),
            };
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");

            // Five rpcs handed to the (not yet running) driver.
            let get = GetConfig::new(Datastore::Running);
            let mut rpcs: Vec<RpcFuture<'_>> = (0..5)
                .map(|_| Box::pin(client.rpc(&get)) as RpcFuture<'_>)
                .collect();
            for rpc in &mut rpcs {
                assert!(
                    futures_lite::future::poll_once(rpc).await.is_none(),
                    "an rpc finished before the driver ran"
                );
            }
            // The transport breaks; the driver fails on its first write.
            fail.store(true, Ordering::SeqCst);
            let driver = smol::spawn(driver);
            for (i, rpc) in rpcs.into_iter().enumerate() {
                let result = within(
                    Duration::from_secs(2),
                    &format!("queued rpc {i} after the transport failed"),
                    rpc,
                )
                .await;
                assert!(result.is_err(), "rpc {i}: {result:?}");
            }
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert!(client.is_closed());
            let later = within(
                Duration::from_secs(1),
                "an rpc after the failure",
                client.call(&get),
            )
            .await;
            assert!(later.is_err(), "{later:?}");
            drop(client);
            // The peer saw the client go away.
            assert_eq!(peer_result(peer).await, CloseReason::Eof);
        });
    })
}
