//! The tokio adapter against the blocking one, both ways, over real TLS on loopback:
//! the tokio `Client` against `netconf_blocking::Server` (its handler is sync, its sessions
//! run on threads), and `netconf_blocking::Client` (in `spawn_blocking`) against the tokio
//! `Server`. Both servers answer with the same little datastore below.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::xml::escape_text;
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tokio::operations::{
    CreateSubscription, Datastore, EditConfig, GetConfig, InlineConfig, KillSession, Lock, Unlock,
};
use netconf_tokio::server::ServerOptions;
use netconf_tokio::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_tokio::{ClientOptions, Config, Error, Reply, Request, RpcError};
use tokio_stream::Stream;

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:cross";
const CAPABILITY: &str = "urn:test:cross:capability:1.0";

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
            "netconf-tokio-cross-{tag}-{}-{n}-{nanos}",
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

/// Polls `condition` every 10 ms for up to 2 s.
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

fn server_config() -> Config {
    Config::server()
        .with_capability("urn:ietf:params:netconf:capability:notification:1.0")
        .with_capability(CAPABILITY)
}

/// The datastore both servers serve: one hostname, and a lock.
struct Store {
    hostname: Mutex<String>,
    locked_by: Mutex<Option<u32>>,
    operations: Mutex<Vec<String>>,
}

impl Store {
    fn new() -> Arc<Store> {
        Arc::new(Store {
            hostname: Mutex::new("r1".into()),
            locked_by: Mutex::new(None),
            operations: Mutex::new(Vec::new()),
        })
    }

    fn operations(&self) -> Vec<String> {
        self.operations.lock().unwrap().clone()
    }

    /// The handler, synchronous so that both servers can run it.
    fn answer(&self, request: &Request, session_id: u32) -> Reply {
        self.operations
            .lock()
            .unwrap()
            .push(request.operation.name.clone());
        match request.operation.name.as_str() {
            "get-config" => Reply::data(format!(
                "<system xmlns=\"{NS}\"><hostname>{}</hostname></system>",
                escape_text(&self.hostname.lock().unwrap())
            ))
            .expect("data"),
            "edit-config" => match request.body.child_text("hostname") {
                Some(name) => {
                    *self.hostname.lock().unwrap() = name;
                    Reply::Ok
                }
                None => Reply::error(RpcError::new(
                    ErrorType::Application,
                    ErrorTag::MissingElement,
                )),
            },
            "lock" => {
                let mut holder = self.locked_by.lock().unwrap();
                match *holder {
                    Some(other) if other != session_id => Reply::error(
                        RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
                            .with_info_xml(&format!("<session-id>{other}</session-id>"))
                            .expect("info"),
                    ),
                    _ => {
                        *holder = Some(session_id);
                        Reply::Ok
                    }
                }
            }
            "unlock" => {
                let mut holder = self.locked_by.lock().unwrap();
                if *holder == Some(session_id) {
                    *holder = None;
                    Reply::Ok
                } else {
                    Reply::error(RpcError::new(
                        ErrorType::Protocol,
                        ErrorTag::OperationFailed,
                    ))
                }
            }
            _ => Reply::Ok,
        }
    }
}

fn edit_hostname(name: &str) -> EditConfig {
    EditConfig::new(
        Datastore::Running,
        InlineConfig::new(format!(
            "<system xmlns=\"{NS}\"><hostname>{}</hostname></system>",
            escape_text(name)
        ))
        .expect("config"),
    )
}

fn hostname(data: &netconf_tokio::XmlPayload) -> Option<String> {
    data.child_text("hostname")
}

fn event_time(i: usize) -> String {
    format!("2026-03-04T05:06:{i:02}Z")
}

fn event(i: usize) -> String {
    format!("<changed xmlns=\"{NS}\"><seq>{i}</seq><who>a &amp; b</who></changed>")
}

// ---------------------------------------------------------------------------------------
// tokio client -> blocking server

async fn tokio_client_against_blocking_server() {
    let pki = TestPki::new("tokio-to-blocking");
    let store = Store::new();
    let s = store.clone();
    let server = netconf_blocking::Server::new(
        ServerOptions::new().config(server_config()),
        move |request, info| s.answer(request, info.session_id),
    );
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls())
        .expect("bind")
        .to_string();
    let server = Arc::new(server);

    // hello
    let client = netconf_tokio::Client::connect_tls(&addr, &pki.client_tls())
        .await
        .expect("connect");
    assert!(client.session_id() >= 1);
    assert!(client.capabilities().contains_uri(CAPABILITY));
    assert!(client.capabilities().has_notification());
    assert_eq!(client.framing(), netconf_proto::Framing::Chunked);
    assert_eq!(server.sessions(), vec![client.session_id()]);

    // get-config, edit-config, get-config
    let get = GetConfig::new(Datastore::Running);
    let data = client.call(&get).await.expect("get-config");
    assert_eq!(hostname(&data).as_deref(), Some("r1"));
    client
        .call(&edit_hostname("edge <1> & co"))
        .await
        .expect("edit-config");
    let data = client.call(&get).await.expect("get-config");
    assert_eq!(hostname(&data).as_deref(), Some("edge <1> & co"));

    // lock / unlock, with a second (tokio) session denied meanwhile
    client
        .call(&Lock::new(Datastore::Running))
        .await
        .expect("lock");
    let second = netconf_tokio::Client::connect_tls(&addr, &pki.client_tls())
        .await
        .expect("second connect");
    match second.call(&Lock::new(Datastore::Running)).await {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors[0].tag, ErrorTag::LockDenied);
            let holder = errors[0]
                .info
                .as_ref()
                .and_then(|i| i.child_text("session-id"));
            assert_eq!(holder, Some(client.session_id().to_string()));
        }
        other => panic!("expected lock-denied, got {other:?}"),
    }
    client
        .call(&Unlock::new(Datastore::Running))
        .await
        .expect("unlock");
    second
        .call(&Lock::new(Datastore::Running))
        .await
        .expect("lock after unlock");
    second
        .call(&Unlock::new(Datastore::Running))
        .await
        .expect("unlock");
    second.close().await.expect("close");

    // notifications, pushed by the blocking server from another thread
    let mut notifications = client.notifications();
    client
        .call(&CreateSubscription::new())
        .await
        .expect("create-subscription");
    let notifier = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            (0..5)
                .map(|i| server.notify(&event_time(i), &event(i)).expect("notify"))
                .collect::<Vec<_>>()
        })
    };
    for i in 0..5 {
        let n = next(&mut notifications)
            .await
            .expect("stream")
            .expect("no lag");
        assert_eq!(n.event_time, event_time(i));
        assert_eq!(n.content.child_text("seq"), Some(i.to_string()));
        assert_eq!(n.content.child_text("who").as_deref(), Some("a & b"));
    }
    assert_eq!(notifier.await.expect("notifier"), vec![1; 5]);
    // An rpc after the notifications still gets its reply.
    let data = client.call(&get).await.expect("get-config");
    assert_eq!(hostname(&data).as_deref(), Some("edge <1> & co"));

    // close
    client.close().await.expect("close");
    assert!(eventually(|| client.is_closed()).await);
    assert!(
        eventually(|| server.sessions().is_empty()).await,
        "the blocking server still lists {:?}",
        server.sessions()
    );
    assert!(store.operations().iter().all(|op| op != "close-session"));
    // The blocking shutdown joins threads: off the runtime.
    let server = Arc::try_unwrap(server).expect("no other server handle");
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_against_blocking_server_multi_thread() {
    guarded(tokio_client_against_blocking_server()).await
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_client_against_blocking_server_current_thread() {
    guarded(tokio_client_against_blocking_server()).await
}

// ---------------------------------------------------------------------------------------
// blocking client -> tokio server

async fn blocking_client_against_tokio_server() {
    let pki = TestPki::new("blocking-to-tokio");
    let store = Store::new();
    let s = store.clone();
    let server = netconf_tokio::Server::new(
        ServerOptions::new().config(server_config()),
        move |request, info| {
            let reply = s.answer(&request, info.session_id);
            async move { reply }
        },
    );
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls())
        .await
        .expect("bind")
        .to_string();
    let tls = pki.client_tls();

    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel::<u32>();
    let blocking = tokio::task::spawn_blocking(move || {
        // hello
        let client = netconf_blocking::Client::connect_tls_with(
            &addr,
            &tls,
            &ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
        )
        .expect("blocking connect");
        assert!(client.session_id() >= 1);
        assert!(client.capabilities().contains_uri(CAPABILITY));
        assert_eq!(client.framing(), netconf_proto::Framing::Chunked);

        // get-config, edit-config, get-config
        let get = GetConfig::new(Datastore::Running);
        let data = client.call(&get).expect("get-config");
        assert_eq!(hostname(&data).as_deref(), Some("r1"));
        client
            .call(&edit_hostname("core & <2>"))
            .expect("edit-config");
        let data = client.call(&get).expect("get-config");
        assert_eq!(hostname(&data).as_deref(), Some("core & <2>"));

        // pipelined: two requests out, replies collected in reverse order
        let first = client.send(&get).expect("send");
        let second = client.send(&edit_hostname("core-3")).expect("send");
        client.recv(second).expect("edit reply");
        let data = client.recv(first).expect("get reply");
        assert_eq!(
            data.data()
                .and_then(|d| d.child_text("hostname"))
                .as_deref(),
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
            .send(client.session_id())
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
        }
        let data = client.call(&get).expect("get-config after notifications");
        assert_eq!(hostname(&data).as_deref(), Some("core-3"));

        // close
        client.close().expect("close");
    });

    let session_id = subscribed_rx
        .await
        .expect("the blocking client failed before subscribing");
    assert_eq!(server.sessions(), vec![session_id]);
    for i in 0..5 {
        assert_eq!(server.notify(&event_time(i), &event(i)).expect("notify"), 1);
    }
    blocking.await.expect("the blocking client failed");
    assert!(
        eventually(|| server.sessions().is_empty()).await,
        "the tokio server still lists {:?}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_against_tokio_server_multi_thread() {
    guarded(blocking_client_against_tokio_server()).await
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_client_against_tokio_server_current_thread() {
    guarded(blocking_client_against_tokio_server()).await
}

/// Both directions at once: a tokio client and a blocking client on the tokio server, and
/// the tokio client killing the blocking client's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_kills_a_blocking_clients_session() {
    guarded(async {
        let pki = TestPki::new("kill");
        let store = Store::new();
        let s = store.clone();
        let server = netconf_tokio::Server::new(
            ServerOptions::new().config(server_config()),
            move |request, info| {
                let reply = s.answer(&request, info.session_id);
                async move { reply }
            },
        );
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls())
            .await
            .expect("bind")
            .to_string();
        let tls = pki.client_tls();
        let (id_tx, id_rx) = tokio::sync::oneshot::channel::<u32>();
        let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
        let blocking = {
            let addr = addr.clone();
            let tls = tls.clone();
            tokio::task::spawn_blocking(move || {
                let client = netconf_blocking::Client::connect_tls_with(
                    &addr,
                    &tls,
                    &ClientOptions::new().rpc_timeout(Some(Duration::from_secs(5))),
                )
                .expect("connect");
                id_tx.send(client.session_id()).expect("send id");
                killed_rx
                    .recv_timeout(Duration::from_secs(5))
                    .expect("kill signal");
                client.call(&GetConfig::new(Datastore::Running))
            })
        };
        let victim = id_rx.await.expect("blocking client connected");
        let killer = netconf_tokio::Client::connect_tls(&addr, &tls)
            .await
            .expect("connect");
        killer
            .call(&KillSession::new(victim).expect("a valid session-id"))
            .await
            .expect("kill-session");
        assert!(eventually(|| server.sessions() == vec![killer.session_id()]).await);
        killed_tx.send(()).expect("signal");
        let result = blocking.await.expect("blocking thread");
        assert!(result.is_err(), "a killed session answered: {result:?}");
        killer.close().await.expect("close");
        server.shutdown().await;
    })
    .await
}
