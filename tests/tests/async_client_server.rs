//! Each async runtime's `Client` against the same runtime's `Server` (tokio and smol: every
//! test runs on both) over real TLS on loopback: every operation and what reaches the
//! handler, rpc-error mapping, kill-session, certificate handling (cert-to-name, a server
//! or client from another CA, a client without a certificate), closing and shutting down,
//! and a panicking handler.
//!
//! The TLS options load the PKI from PEM files in a temp dir, as deployments do.
//! `from_stream` against a hand-driven plain-TCP peer takes each runtime's own stream
//! types, so it stays in `netconf-tokio/tests/client_server.rs` (and
//! `netconf-smol/tests/cross_adapter.rs`). A handler that outlives the per-rpc timeout and
//! dropping every `Client` handle are in `async_concurrency.rs`.
//!
//! Every test runs under a 10 s deadlock guard; none measures time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use netconf_async::adapter::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DefaultOperation,
    DeleteConfig, DiscardChanges, EditConfig, EditData, ErrorOption, Filter, Get, GetConfig,
    GetData, GetSchema, InlineConfig, KillSession, Lock, NmdaDatastore, SchemaFormat, TestOption,
    Unlock, Validate,
};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_async::adapter::{
    ClientOptions, Config, Error, ErrorSeverity, ErrorTag, ErrorType, Reply, ReplyContent, Request,
    RpcError,
};
use netconf_async::{Client, Runtime, Server};
use netconf_proto::xml::{escape_text, NS_BASE, NS_MONITORING, NS_NMDA, NS_NOTIFICATION};
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tests::deadline::within;

netconf_tests::on_each_runtime!(
    every_operation_reaches_the_handler,
    rpc_error_becomes_a_typed_error,
    kill_session_ends_the_other_session,
    cert_to_name_username_reaches_the_handler,
    cert_to_name_none_disconnects,
    server_from_another_ca_is_refused,
    client_without_certificate_is_refused,
    close_and_graceful_server_shutdown,
    is_closed_as_soon_as_close_returns,
    panicking_handler_fails_only_its_request,
);

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:client-server";
const SCHEMA_TEXT: &str =
    "module ex {\n  namespace \"urn:ex\";\n  description \"a < b & c > d\";\n}\n";

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

/// A fresh PKI written to its own temp dir (removed on drop).
struct TestPki {
    pki: Pki,
    files: PkiFiles,
    _dir: tempfile::TempDir,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        Self::from_pki(tag, Pki::generate())
    }

    fn from_pki(tag: &str, pki: Pki) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netconf-client-server-{tag}-"))
            .tempdir()
            .expect("creating the temp dir");
        let files = pki.write_to_dir(dir.path()).expect("writing the PKI");
        TestPki {
            pki,
            files,
            _dir: dir,
        }
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

/// What the handler saw, and the little state it keeps (who holds the lock).
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(Request, SessionInfo)>>,
    locked_by: Mutex<Option<u32>>,
}

impl Recorder {
    fn last(&self) -> (Request, SessionInfo) {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request reached the handler")
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn typed_error() -> RpcError {
    RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
        .with_app_tag("too-many-widgets")
        .with_path("/t:top/t:widget[t:name='w&1']")
        .with_message("widgets < 10 & > 0 please")
        .with_info_xml(&format!(
            "<bad-element>widget</bad-element><detail xmlns=\"{NS}\">x</detail>"
        ))
        .expect("well-formed info")
}

async fn handle(request: Request, info: SessionInfo, recorder: Arc<Recorder>) -> Reply {
    recorder
        .requests
        .lock()
        .unwrap()
        .push((request.clone(), info.clone()));
    let me = info.session_id;
    let data = |xml: String| Reply::data(xml).expect("well-formed data");
    match request.operation.name.as_str() {
        "get" => data(format!("<state xmlns=\"{NS}\"><uptime>42</uptime></state>")),
        "get-config" => data(format!("<top xmlns=\"{NS}\"><hostname>r1</hostname></top>")),
        "get-data" => data(format!(
            "<interfaces xmlns=\"{NS}\"><if>eth0</if></interfaces>"
        )),
        "get-schema" => data(
            SCHEMA_TEXT
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;"),
        ),
        "lock" => {
            let mut holder = recorder.locked_by.lock().unwrap();
            match *holder {
                Some(other) if other != me => Reply::error(
                    RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
                        .with_message("lock held by another session")
                        .with_info_xml(&format!("<session-id>{other}</session-id>"))
                        .expect("info"),
                ),
                _ => {
                    *holder = Some(me);
                    Reply::Ok
                }
            }
        }
        "unlock" => {
            let mut holder = recorder.locked_by.lock().unwrap();
            if *holder == Some(me) {
                *holder = None;
                Reply::Ok
            } else {
                Reply::error(RpcError::new(
                    ErrorType::Protocol,
                    ErrorTag::OperationFailed,
                ))
            }
        }
        "fail" => Reply::Errors(vec![
            typed_error(),
            RpcError::new(ErrorType::Rpc, ErrorTag::Other("my-own-tag".into()))
                .with_severity(ErrorSeverity::Warning),
        ]),
        "warn" => Reply::error(
            RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
                .with_severity(ErrorSeverity::Warning)
                .with_message("just a warning"),
        ),
        "panic" => panic!("handler panics on purpose"),
        "whoami" => data(format!(
            "<user xmlns=\"{NS}\">{}</user>",
            info.username.as_deref().unwrap_or("(none)")
        )),
        "echo" => Reply::raw(format!(
            "<echoed xmlns=\"{NS}\">{}</echoed>",
            escape_text(&request.body.child_text("v").unwrap_or_default())
        ))
        .expect("well-formed raw reply"),
        _ => Reply::Ok,
    }
}

struct Harness<R: Runtime> {
    pki: TestPki,
    recorder: Arc<Recorder>,
    server: Server<R>,
    addr: String,
}

impl<R: Runtime> Harness<R> {
    async fn start(tag: &str) -> Harness<R> {
        Self::start_with(tag, |o| o).await
    }

    async fn start_with(
        tag: &str,
        customize: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> Harness<R> {
        let pki = TestPki::new(tag);
        let recorder = Arc::new(Recorder::default());
        let r = recorder.clone();
        let config = Config::server()
            .with_capability("urn:ietf:params:netconf:capability:candidate:1.0")
            .with_capability("urn:ietf:params:netconf:capability:notification:1.0");
        let server = Server::<R>::new(
            customize(ServerOptions::new().config(config)),
            move |request, info| handle(request, info, r.clone()),
        );
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls())
            .await
            .expect("bind")
            .to_string();
        Harness {
            pki,
            recorder,
            server,
            addr,
        }
    }

    async fn client(&self) -> Client<R> {
        self.client_with(ClientOptions::new()).await
    }

    async fn client_with(&self, options: ClientOptions) -> Client<R> {
        Client::connect_tls_with(&self.addr, &self.pki.client_tls(), &options)
            .await
            .expect("connect")
    }
}

async fn every_operation_reaches_the_handler<R: Runtime>() {
    let h = Harness::<R>::start("ops").await;
    let client = h.client().await;
    assert!(client.session_id() >= 1);
    assert!(client.capabilities().has_candidate());
    assert!(client.capabilities().has_notification());
    let last_body = || {
        let (request, _) = h.recorder.last();
        request.body.as_str().to_owned()
    };
    let last_op = || {
        let (request, _) = h.recorder.last();
        (request.operation.namespace, request.operation.name)
    };

    // get with a subtree filter, then with an XPath filter.
    let filter = Filter::subtree(format!("<state xmlns=\"{NS}\"><uptime/></state>")).unwrap();
    let data = client.call(&Get::new().filter(filter)).await.expect("get");
    assert_eq!(data.child_text("uptime").as_deref(), Some("42"));
    assert_eq!(last_op(), (NS_BASE.to_owned(), "get".to_owned()));
    let body = last_body();
    assert!(body.contains("<filter type=\"subtree\">"), "{body}");
    assert!(
        body.contains(&format!("<state xmlns=\"{NS}\"><uptime/></state>")),
        "{body}"
    );

    let filter = Filter::xpath("/t:state/t:uptime[. > 1]")
        .with_namespace("t", NS)
        .unwrap();
    client
        .call(&Get::new().filter(filter))
        .await
        .expect("get xpath");
    let body = last_body();
    assert!(body.contains("type=\"xpath\""), "{body}");
    assert!(
        body.contains("select=\"/t:state/t:uptime[. &gt; 1]\""),
        "{body}"
    );
    assert!(body.contains(&format!("xmlns:t=\"{NS}\"")), "{body}");

    // get-config
    let data = client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("get-config");
    assert_eq!(
        data.as_str(),
        format!("<top xmlns=\"{NS}\"><hostname>r1</hostname></top>")
    );
    assert!(last_body().contains("<source><running/></source>"));

    // edit-config with every option
    let config = InlineConfig::new(format!(
        "<top xmlns=\"{NS}\"><hostname>r2 &amp; co</hostname></top>"
    ))
    .unwrap();
    client
        .call(
            &EditConfig::new(Datastore::Candidate, config)
                .default_operation(DefaultOperation::Replace)
                .test_option(TestOption::TestThenSet)
                .error_option(ErrorOption::RollbackOnError),
        )
        .await
        .expect("edit-config");
    let (request, _) = h.recorder.last();
    assert!(request.operation.is_base("edit-config"));
    assert_eq!(
        request.body.child_text("hostname").as_deref(),
        Some("r2 & co")
    );
    assert_eq!(
        request.body.child_text("default-operation").as_deref(),
        Some("replace")
    );
    assert_eq!(
        request.body.child_text("test-option").as_deref(),
        Some("test-then-set")
    );
    assert_eq!(
        request.body.child_text("error-option").as_deref(),
        Some("rollback-on-error")
    );
    assert!(request
        .body
        .as_str()
        .contains("<target><candidate/></target>"));

    // copy-config, delete-config
    client
        .call(&CopyConfig::new(Datastore::Startup, Datastore::Running))
        .await
        .expect("copy-config");
    let body = last_body();
    assert!(
        body.contains("<target><startup/></target>")
            && body.contains("<source><running/></source>"),
        "{body}"
    );
    client
        .call(&DeleteConfig::new(Datastore::Startup))
        .await
        .expect("delete-config");
    assert_eq!(last_op().1, "delete-config");
    assert!(last_body().contains("<target><startup/></target>"));

    // lock / unlock
    client
        .call(&Lock::new(Datastore::Candidate))
        .await
        .expect("lock");
    assert_eq!(last_op(), (NS_BASE.to_owned(), "lock".to_owned()));
    assert!(last_body().contains("<target><candidate/></target>"));
    client
        .call(&Unlock::new(Datastore::Candidate))
        .await
        .expect("unlock");
    assert_eq!(last_op().1, "unlock");

    // commit: plain, confirmed with timeout and persist, confirming by persist-id
    client.call(&Commit::new()).await.expect("commit");
    assert_eq!(last_op().1, "commit");
    client
        .call(
            &Commit::confirmed()
                .confirm_timeout(30)
                .unwrap()
                .persist("tok-1"),
        )
        .await
        .expect("confirmed commit");
    let (request, _) = h.recorder.last();
    assert_eq!(request.body.child_text("confirmed").as_deref(), Some(""));
    assert_eq!(
        request.body.child_text("confirm-timeout").as_deref(),
        Some("30")
    );
    assert_eq!(request.body.child_text("persist").as_deref(), Some("tok-1"));
    client
        .call(&Commit::new().persist_id("tok-1"))
        .await
        .expect("confirming commit");
    assert_eq!(
        h.recorder.last().0.body.child_text("persist-id").as_deref(),
        Some("tok-1")
    );

    // cancel-commit, discard-changes, validate
    client
        .call(&CancelCommit::new().persist_id("tok-2"))
        .await
        .expect("cancel-commit");
    assert_eq!(last_op().1, "cancel-commit");
    assert_eq!(
        h.recorder.last().0.body.child_text("persist-id").as_deref(),
        Some("tok-2")
    );
    client
        .call(&DiscardChanges::new())
        .await
        .expect("discard-changes");
    assert_eq!(last_op().1, "discard-changes");
    client
        .call(&Validate::new(Datastore::Candidate))
        .await
        .expect("validate");
    assert_eq!(last_op().1, "validate");
    assert!(last_body().contains("<source><candidate/></source>"));

    // get-schema: the text comes back unescaped
    let schema = client
        .call(
            &GetSchema::new("ex")
                .version("2026-01-01")
                .format(SchemaFormat::Yang),
        )
        .await
        .expect("get-schema");
    assert_eq!(schema, SCHEMA_TEXT);
    let (request, _) = h.recorder.last();
    assert_eq!(request.operation.namespace, NS_MONITORING);
    assert_eq!(request.operation.name, "get-schema");
    assert_eq!(request.body.child_text("identifier").as_deref(), Some("ex"));
    assert_eq!(
        request.body.child_text("version").as_deref(),
        Some("2026-01-01")
    );
    assert_eq!(request.body.child_text("format").as_deref(), Some("yang"));

    // get-data / edit-data (NMDA)
    let filter = Filter::subtree(format!("<interfaces xmlns=\"{NS}\"/>")).unwrap();
    let data = client
        .call(&GetData::new(NmdaDatastore::Operational).filter(filter))
        .await
        .expect("get-data");
    assert_eq!(data.child_text("if").as_deref(), Some("eth0"));
    let (request, _) = h.recorder.last();
    assert_eq!(request.operation.namespace, NS_NMDA);
    assert_eq!(
        request.body.child_text("datastore").as_deref(),
        Some("ds:operational")
    );
    assert!(request.body.as_str().contains("<subtree-filter>"));
    client
        .call(&EditData::new(
            NmdaDatastore::Running,
            InlineConfig::new(format!("<top xmlns=\"{NS}\"><hostname>r3</hostname></top>"))
                .unwrap(),
        ))
        .await
        .expect("edit-data");
    let (request, _) = h.recorder.last();
    assert_eq!(request.operation.namespace, NS_NMDA);
    assert_eq!(request.operation.name, "edit-data");
    assert_eq!(request.body.child_text("hostname").as_deref(), Some("r3"));

    // create-subscription, then notifications
    let mut notifications = client.notifications();
    client
        .call(&CreateSubscription::new().stream("NETCONF"))
        .await
        .expect("create-subscription");
    let (request, _) = h.recorder.last();
    assert_eq!(request.operation.namespace, NS_NOTIFICATION);
    assert_eq!(
        request.body.child_text("stream").as_deref(),
        Some("NETCONF")
    );
    for i in 0..3 {
        let sent = h
            .server
            .notify(
                &format!("2026-02-03T04:05:0{i}Z"),
                &format!("<alarm xmlns=\"{NS}\"><id>{i}</id></alarm>"),
            )
            .expect("notify");
        assert_eq!(sent, 1);
    }
    for i in 0..3 {
        let n = notifications.next().await.expect("stream").expect("no lag");
        assert_eq!(n.event_time, format!("2026-02-03T04:05:0{i}Z"));
        assert_eq!(n.content.child_text("id"), Some(i.to_string()));
    }

    // rpc_raw: a custom operation with custom output
    let reply = client
        .rpc_raw(&format!(
            "<echo xmlns=\"{NS}\"><v>hello &lt;world&gt;</v></echo>"
        ))
        .await
        .expect("rpc_raw");
    match &reply.content {
        ReplyContent::Other(payload) => assert_eq!(
            payload.as_str(),
            format!("<echoed xmlns=\"{NS}\">hello &lt;world&gt;</echoed>")
        ),
        other => panic!("expected raw output, got {other:?}"),
    }
    assert_eq!(last_op(), (NS.to_owned(), "echo".to_owned()));
    // rpc_raw refuses malformed XML before sending anything.
    let before = h.recorder.count();
    assert!(matches!(
        client.rpc_raw("<echo>").await,
        Err(Error::Usage(_))
    ));
    assert_eq!(h.recorder.count(), before);

    client.close().await.expect("close");
    assert!(eventually::<R>(|| h.server.sessions().is_empty()).await);
    h.server.shutdown().await;
}

async fn rpc_error_becomes_a_typed_error<R: Runtime>() {
    let h = Harness::<R>::start("rpc-error").await;
    let client = h.client().await;
    let errors = match client.rpc_raw(&format!("<fail xmlns=\"{NS}\"/>")).await {
        Err(Error::Rpc(errors)) => errors,
        other => panic!("expected Error::Rpc, got {other:?}"),
    };
    assert_eq!(errors.len(), 2);
    let e = &errors[0];
    assert_eq!(e.error_type, ErrorType::Application);
    assert_eq!(e.tag, ErrorTag::OperationFailed);
    assert_eq!(e.severity, ErrorSeverity::Error);
    assert_eq!(e.app_tag.as_deref(), Some("too-many-widgets"));
    assert_eq!(
        e.path.as_deref().map(str::trim),
        Some("/t:top/t:widget[t:name='w&1']")
    );
    let message = e.message.as_ref().expect("error-message");
    assert_eq!(message.text, "widgets < 10 & > 0 please");
    assert_eq!(message.lang.as_deref(), Some("en"));
    let info = e.info.as_ref().expect("error-info");
    assert_eq!(info.child_text("bad-element").as_deref(), Some("widget"));
    assert_eq!(info.child_text("detail").as_deref(), Some("x"));
    assert_eq!(errors[1].tag, ErrorTag::Other("my-own-tag".into()));
    assert_eq!(errors[1].severity, ErrorSeverity::Warning);

    // The typed helpers fail the same way.
    let err = client.call(&Lock::new(Datastore::Running)).await;
    assert!(err.is_ok());
    let other = h.client().await;
    match other.call(&Lock::new(Datastore::Running)).await {
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
    let e = other
        .call(&Unlock::new(Datastore::Running))
        .await
        .expect_err("not the holder");
    assert!(e.rpc_errors().is_some());

    // A warning alone is not a failure.
    let reply = client
        .rpc_raw(&format!("<warn xmlns=\"{NS}\"/>"))
        .await
        .expect("a warning is not an error");
    assert_eq!(reply.errors.len(), 1);
    assert!(!reply.has_errors());

    // The session is fine after rpc-errors.
    client
        .call(&Unlock::new(Datastore::Running))
        .await
        .expect("unlock");
    client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("get-config");
    client.close().await.expect("close");
    other.close().await.expect("close");
    h.server.shutdown().await;
}

async fn kill_session_ends_the_other_session<R: Runtime>() {
    let h = Harness::<R>::start("kill").await;
    let killer = h.client().await;
    let victim = h.client().await;
    let victim_id = victim.session_id();
    assert_ne!(killer.session_id(), victim_id);
    assert_eq!(h.server.sessions().len(), 2);

    // A session cannot kill itself, nor an unknown one.
    let e = killer
        .call(&KillSession::new(killer.session_id()).expect("a valid session-id"))
        .await
        .expect_err("self-kill");
    assert_eq!(e.rpc_errors().unwrap()[0].tag, ErrorTag::InvalidValue);
    let e = killer
        .call(&KillSession::new(9999).expect("a valid session-id"))
        .await
        .expect_err("unknown session");
    assert_eq!(e.rpc_errors().unwrap()[0].tag, ErrorTag::InvalidValue);
    // kill-session 0 is refused by the builder.
    assert!(matches!(
        KillSession::new(0).map_err(Error::from),
        Err(Error::Usage(_))
    ));

    killer
        .call(&KillSession::new(victim_id).expect("a valid session-id"))
        .await
        .expect("kill-session");
    assert!(
        eventually::<R>(|| victim.is_closed()).await,
        "the victim's session stayed open"
    );
    let result = victim.call(&GetConfig::new(Datastore::Running)).await;
    assert!(result.is_err(), "{result:?}");
    assert!(eventually::<R>(|| h.server.sessions() == vec![killer.session_id()]).await);
    // The handler never saw kill-session.
    assert!(h
        .recorder
        .requests
        .lock()
        .unwrap()
        .iter()
        .all(|(r, _)| r.operation.name != "kill-session"));

    killer
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("killer lives");
    killer.close().await.expect("close");
    h.server.shutdown().await;
}

async fn cert_to_name_username_reaches_the_handler<R: Runtime>() {
    let expected = Arc::new(Mutex::new(None));
    let e2 = expected.clone();
    let h = Harness::<R>::start_with("cert-to-name", move |b| {
        b.cert_to_name(move |chain| {
            let want = e2.lock().unwrap().clone();
            (chain.first().cloned() == want).then(|| "admin-from-cert".to_owned())
        })
    })
    .await;
    *expected.lock().unwrap() = Some(h.pki.pki.client_cert_der());
    let client = h.client().await;
    let reply = client
        .rpc_raw(&format!("<whoami xmlns=\"{NS}\"/>"))
        .await
        .expect("whoami");
    assert_eq!(
        reply.data().and_then(|d| d.child_text("user")).as_deref(),
        Some("admin-from-cert")
    );
    let (_, info) = h.recorder.last();
    assert_eq!(info.username.as_deref(), Some("admin-from-cert"));
    assert_eq!(info.session_id, client.session_id());
    assert!(info.peer.expect("a TCP peer").ip().is_loopback());
    client.close().await.expect("close");
    h.server.shutdown().await;
}

async fn cert_to_name_none_disconnects<R: Runtime>() {
    let h = Harness::<R>::start_with("no-name", |b| b.cert_to_name(|_| None)).await;
    // The server's hello may already be out when the mapping runs, so either the connect
    // fails or the session ends right after it.
    match Client::<R>::connect_tls(&h.addr, &h.pki.client_tls()).await {
        Err(e) => eprintln!("connect refused: {e}"),
        Ok(client) => {
            let result = client.call(&GetConfig::new(Datastore::Running)).await;
            assert!(
                result.is_err(),
                "an unmapped client got an answer: {result:?}"
            );
            assert!(eventually::<R>(|| client.is_closed()).await);
        }
    }
    assert_eq!(
        h.recorder.count(),
        0,
        "the handler ran for an unmapped client"
    );
    assert!(eventually::<R>(|| h.server.sessions().is_empty()).await);
    h.server.shutdown().await;
}

async fn server_from_another_ca_is_refused<R: Runtime>() {
    let h = Harness::<R>::start("wrong-ca").await;
    let other = TestPki::from_pki("other-ca", Pki::other_ca());
    // Trusts the other CA (but presents a certificate the server accepts).
    let tls = ClientTlsOptions::new()
        .ca_file(&other.files.ca_cert)
        .client_cert_files(&h.pki.files.client_cert, &h.pki.files.client_key);
    match Client::<R>::connect_tls(&h.addr, &tls).await {
        Err(Error::Tls(what)) => eprintln!("refused: {what}"),
        other => panic!("expected Error::Tls, got {other:?}"),
    }
    // A server name the certificate does not carry is refused too.
    let tls = h.pki.client_tls().server_name("not-the-server.example");
    assert!(matches!(
        Client::<R>::connect_tls(&h.addr, &tls).await,
        Err(Error::Tls(_))
    ));
    assert_eq!(h.recorder.count(), 0);
    h.server.shutdown().await;
}

async fn client_without_certificate_is_refused<R: Runtime>() {
    let h = Harness::<R>::start("no-client-cert").await;
    let tls = ClientTlsOptions::new().ca_file(&h.pki.files.ca_cert);
    let result = within(
        Duration::from_secs(5),
        "the refusal",
        Client::<R>::connect_tls(&h.addr, &tls),
    )
    .await;
    match result {
        Err(Error::Tls(what)) => eprintln!("refused: {what}"),
        other => panic!("expected Error::Tls, got {other:?}"),
    }
    // A client certificate from another CA is refused as well.
    let other = TestPki::from_pki("other-client", Pki::other_ca());
    let tls = ClientTlsOptions::new()
        .ca_file(&h.pki.files.ca_cert)
        .client_cert_files(&other.files.client_cert, &other.files.client_key);
    let result = Client::<R>::connect_tls(&h.addr, &tls).await;
    assert!(matches!(result, Err(Error::Tls(_))), "{result:?}");
    assert_eq!(h.recorder.count(), 0);
    assert!(eventually::<R>(|| h.server.sessions().is_empty()).await);
    h.server.shutdown().await;
}

async fn close_and_graceful_server_shutdown<R: Runtime>() {
    let h = Harness::<R>::start("shutdown").await;
    let a = h.client().await;
    let b = h.client().await;
    let c = h.client().await;
    assert_eq!(h.server.sessions().len(), 3);

    // close(): clean, idempotent, and later calls fail.
    a.close().await.expect("close");
    a.close().await.expect("second close");
    assert!(a.is_closed());
    assert!(a.call(&GetConfig::new(Datastore::Running)).await.is_err());
    assert!(eventually::<R>(|| h.server.sessions().len() == 2).await);

    // Shutdown ends every session; clients see it without sending anything.
    let Harness { server, .. } = h;
    within(Duration::from_secs(3), "shutdown", server.shutdown()).await;
    assert!(
        eventually::<R>(|| b.is_closed() && c.is_closed()).await,
        "clients did not see the shutdown"
    );
    let e = b
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect_err("after shutdown");
    eprintln!("after shutdown: {e}");
    assert!(!matches!(e, Error::Timeout(_)));
    c.close().await.expect("close after the server went away");
}

/// `close()` "waits until the driver has closed" the session, so `is_closed()` is true as
/// soon as it returns.
async fn is_closed_as_soon_as_close_returns<R: Runtime>() {
    let h = Harness::<R>::start("is-closed").await;
    for round in 0..20 {
        let client = h.client().await;
        client.close().await.expect("close");
        assert!(
            client.is_closed(),
            "round {round}: close() returned, is_closed() is false"
        );
    }
    h.server.shutdown().await;
}

/// A handler that panics costs its one request, answered with operation-failed; the
/// session goes on, and so do the others.
async fn panicking_handler_fails_only_its_request<R: Runtime>() {
    let h = Harness::<R>::start("panic").await;
    let victim = h.client().await;
    let other = h.client().await;
    let result = victim.rpc_raw(&format!("<panic xmlns=\"{NS}\"/>")).await;
    match &result {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors[0].tag, ErrorTag::OperationFailed)
        }
        other => panic!("expected operation-failed, got {other:?}"),
    }
    victim
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("the session survives its handler's panic");
    other
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("other sessions are unaffected");
    let third = h.client().await;
    third
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("new sessions are accepted");
    let alive = vec![victim.session_id(), other.session_id(), third.session_id()];
    assert!(
        eventually::<R>(|| h.server.sessions() == alive).await,
        "sessions() = {:?}, expected {alive:?}",
        h.server.sessions()
    );
    victim.close().await.expect("close");
    other.close().await.expect("close");
    third.close().await.expect("close");
    h.server.shutdown().await;
}
