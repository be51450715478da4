//! Each async runtime's client (tokio and smol: every test runs on both) against every
//! adapter's server, and the blocking client against each runtime's server, over real TLS
//! on loopback. The servers answer from the same little datastore below.
//!
//! - One scenario runs with the runtime's client against the tokio `Server` (on a tokio
//!   runtime of its own, whichever runtime runs the client), the smol `Server` (on smol's
//!   global executor) and the blocking `Server` (threads only): hello, get-config,
//!   edit-config, lock/unlock (with a second session holding the lock), an unknown
//!   operation, create-subscription and notifications pushed from another thread,
//!   kill-session of one session by another, close.
//! - The blocking `Client` (on a blocking thread) against the runtime's `Server`, and the
//!   runtime's client killing a blocking client's session.
//! - What the runtime's `Server::notify` delivers and counts: subscribed sessions only.
//!
//! The blocking-server and blocking-client tests run on tokio's current-thread runtime too
//! (module `tokio_current_thread`). Sessions on a stream the caller connected take each
//! runtime's own stream types, so they stay in the adapters' tests.
//!
//! Every test runs under a 10 s deadlock guard.

use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use netconf_async::adapter::operations::{
    CreateSubscription, Datastore, EditConfig, GetConfig, InlineConfig, KillSession, Lock, Unlock,
};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::{
    ClientOptions, Config, Error, ErrorTag, ErrorType, Framing, Reply, Request, RpcError,
};
use netconf_async::{Client, Runtime, Server};
use netconf_proto::capabilities::{BASE_1_0, BASE_1_1};
use netconf_proto::xml::escape_text;
use netconf_tests::certs::Pki;
use netconf_tests::deadline::{timeout, within};

netconf_tests::on_each_runtime!(
    client_against_the_tokio_server,
    client_against_the_smol_server,
    client_against_the_blocking_server,
    blocking_client_against_the_server,
    client_kills_a_blocking_clients_session,
    notifications_only_reach_subscribed_sessions,
    notify_counts_only_subscribed_sessions,
);

/// The tests with a blocking peer, with every task of the tokio side on the one thread of
/// tokio's current-thread runtime.
mod tokio_current_thread {
    fn run(test: impl std::future::Future<Output = ()>) {
        let rt = ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(super::guarded(test));
    }

    #[test]
    fn client_against_the_blocking_server() {
        run(super::client_against_the_blocking_server::<
            netconf_tokio::Tokio,
        >());
    }

    #[test]
    fn blocking_client_against_the_server() {
        run(super::blocking_client_against_the_server::<
            netconf_tokio::Tokio,
        >());
    }
}

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:cross";
const CAPABILITY: &str = "urn:test:cross:capability:1.0";
const CANDIDATE: &str = "urn:ietf:params:netconf:capability:candidate:1.0";
const NOTIFICATION: &str = "urn:ietf:params:netconf:capability:notification:1.0";

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    within(GUARD, "the test (deadlock guard)", body).await
}

/// Polls `condition` every 10 ms (on the runtime's timer) for up to 2 s.
async fn eventually<R: Runtime>(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        R::sleep_until(Instant::now() + Duration::from_millis(10)).await;
    }
    condition()
}

/// Connects the runtime's client within 2 s.
async fn connect<R: Runtime>(addr: &str, pki: &Pki) -> Client<R> {
    within(
        Duration::from_secs(2),
        "establishing the session",
        Client::connect_tls(addr, &pki.client_tls_options()),
    )
    .await
    .expect("connect")
}

fn server_config() -> Config {
    Config::server()
        .with_capability(CANDIDATE)
        .with_capability(NOTIFICATION)
        .with_capability(CAPABILITY)
}

/// A one-leaf running datastore and its lock, shared by every session of a server, and
/// the operations its handler saw.
#[derive(Default)]
struct Store {
    value: Mutex<String>,
    lock_holder: Mutex<Option<u32>>,
    operations: Mutex<Vec<String>>,
}

fn error(tag: ErrorTag, message: &str) -> Reply {
    Reply::error(RpcError::new(ErrorType::Protocol, tag).with_message(message))
}

impl Store {
    fn new() -> Arc<Store> {
        Arc::new(Store::default())
    }

    fn operations(&self) -> Vec<String> {
        self.operations.lock().unwrap().clone()
    }

    /// The handler, synchronous so that every server can run it.
    fn answer(&self, request: &Request, session_id: u32) -> Reply {
        self.operations
            .lock()
            .unwrap()
            .push(request.operation.name.clone());
        match request.operation.name.as_str() {
            "get-config" => Reply::data(format!(
                "<top xmlns=\"{NS}\"><v>{}</v></top>",
                escape_text(&self.value.lock().unwrap())
            ))
            .expect("well-formed data"),
            "edit-config" => match request.body.child_text("v") {
                Some(v) => {
                    *self.value.lock().unwrap() = v;
                    Reply::Ok
                }
                None => error(ErrorTag::MissingElement, "no <v> in the edit"),
            },
            "lock" => {
                let mut holder = self.lock_holder.lock().unwrap();
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
                let mut holder = self.lock_holder.lock().unwrap();
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
}

/// A runtime's server answering from `store` (its tasks run on the runtime).
fn async_server<S: Runtime>(store: &Arc<Store>) -> Server<S> {
    let store = store.clone();
    Server::new(
        ServerOptions::new().config(server_config()),
        move |request, info| {
            let reply = store.answer(&request, info.session_id);
            async move { reply }
        },
    )
}

/// The blocking server answering from `store` (its sessions run on threads).
fn blocking_server(store: &Arc<Store>) -> netconf_blocking::Server {
    let store = store.clone();
    netconf_blocking::Server::new(
        ServerOptions::new().config(server_config()),
        move |request: &Request, info: &SessionInfo| store.answer(request, info.session_id),
    )
}

fn edit_value(value: &str) -> EditConfig {
    EditConfig::new(
        Datastore::Running,
        InlineConfig::new(format!(
            "<top xmlns=\"{NS}\"><v>{}</v></top>",
            escape_text(value)
        ))
        .expect("well-formed config"),
    )
}

fn event_time(i: usize) -> String {
    format!("2026-03-04T05:06:{i:02}Z")
}

fn event(i: usize) -> String {
    format!(
        "<changed xmlns=\"{NS}\"><seq>{i}</seq><who>a &amp; b</who><what>a &lt; b</what></changed>"
    )
}

/// `Server::notify`: how many sessions the notification was queued for.
type Notify = dyn Fn(&str, &str) -> usize + Send + Sync;

/// What the scenario needs from a server, whichever adapter runs it.
#[derive(Clone)]
struct ServerOps {
    notify: Arc<Notify>,
    sessions: Arc<dyn Fn() -> Vec<u32> + Send + Sync>,
}

impl ServerOps {
    fn of_async<S: Runtime>(server: &Server<S>) -> ServerOps {
        let (a, b) = (server.clone(), server.clone());
        ServerOps {
            notify: Arc::new(move |time, content| a.notify(time, content).expect("notify")),
            sessions: Arc::new(move || b.sessions()),
        }
    }

    fn of_blocking(server: &netconf_blocking::Server) -> ServerOps {
        let (a, b) = (server.clone(), server.clone());
        ServerOps {
            notify: Arc::new(move |time, content| a.notify(time, content).expect("notify")),
            sessions: Arc::new(move || b.sessions()),
        }
    }

    async fn wait_sessions<R: Runtime>(&self, what: &str, pred: impl Fn(&[u32]) -> bool) {
        let sessions = || (self.sessions)();
        assert!(
            eventually::<R>(|| pred(&sessions())).await,
            "{what}: server sessions still {:?} after 2 s",
            sessions()
        );
    }
}

fn rpc_errors(result: Result<(), Error>, what: &str) -> Vec<RpcError> {
    match result {
        Err(Error::Rpc(errors)) => errors,
        other => panic!("{what}: expected an rpc-error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The runtime's client against every server

/// The scenario every server must pass with the runtime's client.
async fn scenario<R: Runtime>(addr: &str, pki: &Pki, server: &ServerOps, store: &Store) {
    // Hello. A server lists a session by the time its client has the server's hello.
    let a = connect::<R>(addr, pki).await;
    assert_ne!(a.session_id(), 0);
    assert_eq!((server.sessions)(), vec![a.session_id()]);
    let b = connect::<R>(addr, pki).await;
    assert_ne!(a.session_id(), b.session_id());
    server
        .wait_sessions::<R>("both sessions open", |s| {
            s.contains(&a.session_id()) && s.contains(&b.session_id())
        })
        .await;
    for client in [&a, &b] {
        let caps = client.capabilities();
        assert!(caps.contains_uri(BASE_1_0), "{caps:?}");
        assert!(caps.contains_uri(BASE_1_1), "{caps:?}");
        assert!(caps.contains_uri(CAPABILITY), "{caps:?}");
        assert!(caps.has_candidate(), "{caps:?}");
        assert!(caps.has_notification(), "{caps:?}");
        assert_eq!(client.framing(), Framing::Chunked);
    }

    // get-config, edit-config (text that needs escaping), get-config again from both
    // sessions.
    let get = GetConfig::new(Datastore::Running);
    let data = a.call(&get).await.expect("get-config");
    assert_eq!(data.child_text("v").as_deref(), Some(""), "{data}");
    a.call(&edit_value("edge <1> & co"))
        .await
        .expect("edit-config");
    let data = b.call(&get).await.expect("get-config after edit");
    assert_eq!(
        data.child_text("v").as_deref(),
        Some("edge <1> & co"),
        "{data}"
    );
    let data = a.call(&get).await.expect("get-config after edit");
    assert_eq!(
        data.child_text("v").as_deref(),
        Some("edge <1> & co"),
        "{data}"
    );

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

    // create-subscription, then notifications pushed from another thread: each queued for
    // the subscribed session only, and all arriving in order.
    let mut notifications = a.notifications();
    a.call(&CreateSubscription::new())
        .await
        .expect("create-subscription");
    let mut b_notifications = b.notifications();
    let notifier = {
        let notify = server.notify.clone();
        ::smol::unblock(move || {
            (0..5)
                .map(|i| notify(&event_time(i), &event(i)))
                .collect::<Vec<_>>()
        })
    };
    for i in 0..5 {
        let n = within(
            Duration::from_secs(2),
            "a notification",
            notifications.next(),
        )
        .await
        .expect("notification stream ended")
        .expect("lagged");
        assert_eq!(n.event_time, event_time(i));
        assert_eq!(n.content.child_text("seq"), Some(i.to_string()));
        assert_eq!(n.content.child_text("who").as_deref(), Some("a & b"));
        assert_eq!(n.content.child_text("what").as_deref(), Some("a < b"));
    }
    assert_eq!(notifier.await, vec![1; 5]);
    // b did not subscribe: nothing for it.
    let stray = timeout(Duration::from_millis(200), b_notifications.next()).await;
    assert!(stray.is_none(), "an unsubscribed session got {stray:?}");
    drop(b_notifications);
    // RPCs still work with a subscription active, after the notifications.
    let data = a
        .call(&get)
        .await
        .expect("get-config after the notifications");
    assert_eq!(
        data.child_text("v").as_deref(),
        Some("edge <1> & co"),
        "{data}"
    );

    // kill-session: b ends a; a's calls then fail promptly.
    b.call(&KillSession::new(a.session_id()).expect("a valid session-id"))
        .await
        .expect("kill-session");
    assert!(
        eventually::<R>(|| a.is_closed()).await,
        "a killed session stayed open"
    );
    let after = within(
        Duration::from_secs(1),
        "an rpc on a killed session",
        a.call(&get),
    )
    .await;
    assert!(after.is_err(), "{after:?}");
    server
        .wait_sessions::<R>("the killed session gone", |s| !s.contains(&a.session_id()))
        .await;

    // close.
    within(Duration::from_secs(2), "close", b.close())
        .await
        .expect("close");
    assert!(eventually::<R>(|| b.is_closed()).await);
    assert!(b.call(&get).await.is_err(), "an rpc after close");
    server
        .wait_sessions::<R>("every session closed", |s| s.is_empty())
        .await;
    // The server answers close-session and kill-session itself.
    let operations = store.operations();
    assert!(
        operations
            .iter()
            .all(|op| op != "close-session" && op != "kill-session"),
        "{operations:?}"
    );
}

async fn client_against_the_tokio_server<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    // The server's tasks run on a tokio runtime of its own, whichever runtime runs the
    // client.
    let runtime = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = async_server::<netconf_tokio::Tokio>(&store);
    let addr = {
        let server = server.clone();
        let tls = pki.server_tls_options();
        runtime
            .spawn(async move { server.listen_tls("127.0.0.1:0", &tls).await })
            .await
            .expect("the listening task")
            .expect("bind")
            .to_string()
    };
    scenario::<R>(&addr, &pki, &ServerOps::of_async(&server), &store).await;
    runtime
        .spawn(async move { server.shutdown().await })
        .await
        .expect("shutdown");
    runtime.shutdown_background();
}

async fn client_against_the_smol_server<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = async_server::<netconf_smol::Smol>(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    scenario::<R>(&addr, &pki, &ServerOps::of_async(&server), &store).await;
    server.shutdown().await;
}

async fn client_against_the_blocking_server<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = blocking_server(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .expect("bind")
        .to_string();
    scenario::<R>(&addr, &pki, &ServerOps::of_blocking(&server), &store).await;
    // The blocking shutdown joins threads: off the runtime.
    ::smol::unblock(move || server.shutdown()).await;
}

// ---------------------------------------------------------------------------------------
// The blocking client against the runtime's server

async fn blocking_client_against_the_server<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = async_server::<R>(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    let tls = pki.client_tls_options();

    let (subscribed_tx, subscribed_rx) = ::smol::channel::bounded::<u32>(1);
    let blocking = ::smol::unblock(move || {
        // hello
        let client = netconf_blocking::Client::connect_tls_with(
            &addr,
            &tls,
            &ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
        )
        .expect("blocking connect");
        assert!(client.session_id() >= 1);
        assert!(client.capabilities().contains_uri(CAPABILITY));
        assert_eq!(client.framing(), Framing::Chunked);

        // get-config, edit-config, get-config
        let get = GetConfig::new(Datastore::Running);
        let data = client.call(&get).expect("get-config");
        assert_eq!(data.child_text("v").as_deref(), Some(""));
        client.call(&edit_value("core & <2>")).expect("edit-config");
        let data = client.call(&get).expect("get-config");
        assert_eq!(data.child_text("v").as_deref(), Some("core & <2>"));

        // pipelined: two requests out, replies collected in reverse order
        let first = client.send(&get).expect("send");
        let second = client.send(&edit_value("core-3")).expect("send");
        client.recv(second).expect("edit reply");
        let data = client.recv(first).expect("get reply");
        assert_eq!(
            data.data().and_then(|d| d.child_text("v")).as_deref(),
            Some("core & <2>")
        );

        // lock / unlock, and an rpc-error for unlocking what we do not hold
        client.call(&Lock::new(Datastore::Running)).expect("lock");
        client
            .call(&Unlock::new(Datastore::Running))
            .expect("unlock");
        match client.call(&Unlock::new(Datastore::Running)) {
            Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::OperationFailed),
            other => panic!("expected an rpc-error, got {other:?}"),
        }

        // notifications
        let notifications = client.notifications();
        client
            .call(&CreateSubscription::new())
            .expect("create-subscription");
        subscribed_tx
            .send_blocking(client.session_id())
            .expect("the test is waiting");
        for i in 0..5 {
            let n = notifications
                .recv_timeout(Duration::from_secs(5))
                .expect("the session ended")
                .unwrap_or_else(|| panic!("notification {i} did not arrive"))
                .expect("no lag");
            assert_eq!(n.event_time, event_time(i));
            assert_eq!(n.content.child_text("seq"), Some(i.to_string()));
            assert_eq!(n.content.child_text("who").as_deref(), Some("a & b"));
            assert_eq!(n.content.child_text("what").as_deref(), Some("a < b"));
        }
        let data = client.call(&get).expect("get-config after notifications");
        assert_eq!(data.child_text("v").as_deref(), Some("core-3"));

        // close
        client.close().expect("close");
    });

    let session_id = subscribed_rx
        .recv()
        .await
        .expect("the blocking client failed before subscribing");
    assert_eq!(server.sessions(), vec![session_id]);
    for i in 0..5 {
        assert_eq!(server.notify(&event_time(i), &event(i)).expect("notify"), 1);
    }
    blocking.await;
    assert!(
        eventually::<R>(|| server.sessions().is_empty()).await,
        "the server still lists {:?}",
        server.sessions()
    );
    assert_eq!(
        store.operations(),
        [
            "get-config",
            "edit-config",
            "get-config",
            "get-config",
            "edit-config",
            "lock",
            "unlock",
            "unlock",
            "create-subscription",
            "get-config"
        ]
    );
    server.shutdown().await;
}

/// Both directions at once: the runtime's client and a blocking client on the runtime's
/// server, and the runtime's client killing the blocking client's session.
async fn client_kills_a_blocking_clients_session<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = async_server::<R>(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    let (id_tx, id_rx) = ::smol::channel::bounded::<u32>(1);
    let (killed_tx, killed_rx) = mpsc::channel::<()>();
    let blocking = {
        let addr = addr.clone();
        let tls = pki.client_tls_options();
        ::smol::unblock(move || {
            let client = netconf_blocking::Client::connect_tls_with(
                &addr,
                &tls,
                &ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
            )
            .expect("connect");
            id_tx.send_blocking(client.session_id()).expect("send id");
            killed_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("kill signal");
            client.call(&GetConfig::new(Datastore::Running))
        })
    };
    let victim = id_rx.recv().await.expect("blocking client connected");
    let killer = connect::<R>(&addr, &pki).await;
    killer
        .call(&KillSession::new(victim).expect("a valid session-id"))
        .await
        .expect("kill-session");
    assert!(eventually::<R>(|| server.sessions() == vec![killer.session_id()]).await);
    killed_tx.send(()).expect("signal");
    let result = blocking.await;
    assert!(result.is_err(), "a killed session answered: {result:?}");
    killer.close().await.expect("close");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// What the runtime's server's notify delivers and counts

/// Notifications go to subscribed sessions only; malformed content is refused.
async fn notifications_only_reach_subscribed_sessions<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = async_server::<R>(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    let subscribed = connect::<R>(&addr, &pki).await;
    let idle = connect::<R>(&addr, &pki).await;
    let mut sub_stream = subscribed.notifications();
    let mut idle_stream = idle.notifications();
    // Before anyone subscribes nothing is delivered.
    server
        .notify("2026-01-01T00:00:00Z", &format!("<early xmlns=\"{NS}\"/>"))
        .expect("notify");
    subscribed
        .call(&CreateSubscription::new())
        .await
        .expect("subscribe");
    server
        .notify("2026-01-01T00:00:01Z", &format!("<ping xmlns=\"{NS}\"/>"))
        .expect("notify");
    let n = within(
        Duration::from_secs(2),
        "the notification",
        sub_stream.next(),
    )
    .await
    .expect("stream")
    .expect("lag");
    assert!(n.content.as_str().contains("ping"), "{n:?}");
    let nothing = timeout(Duration::from_millis(200), idle_stream.next()).await;
    assert!(nothing.is_none(), "an unsubscribed session got {nothing:?}");
    // Malformed content is refused up front.
    assert!(server.notify("2026-01-01T00:00:02Z", "<unclosed>").is_err());
    subscribed.close().await.expect("close");
    idle.close().await.expect("close");
    server.shutdown().await;
}

/// `Server::notify` is documented to return how many *subscribed* sessions the
/// notification was queued for.
async fn notify_counts_only_subscribed_sessions<R: Runtime>() {
    let pki = Pki::generate();
    let store = Store::new();
    let server = async_server::<R>(&store);
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("bind")
        .to_string();
    let subscribed = connect::<R>(&addr, &pki).await;
    let idle = connect::<R>(&addr, &pki).await;
    subscribed
        .call(&CreateSubscription::new())
        .await
        .expect("create-subscription");
    let sent = server
        .notify("2026-01-01T00:00:00Z", &format!("<e xmlns=\"{NS}\"/>"))
        .expect("notify");
    assert_eq!(sent, 1, "notify() counted sessions that are not subscribed");
    subscribed.close().await.expect("close");
    idle.close().await.expect("close");
    server.shutdown().await;
}
