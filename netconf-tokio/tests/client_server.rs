//! The tokio `Client` against the tokio `Server` over real TLS on loopback: every operation,
//! rpc-error mapping, certificate handling, timeouts, closing and shutting down, and
//! `from_stream` against a hand-driven plain-TCP peer.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
use netconf_proto::xml::{escape_text, NS_BASE, NS_MONITORING, NS_NMDA, NS_NOTIFICATION};
use netconf_proto::{CloseReason, Event, Output, Session};
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tokio::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DefaultOperation,
    DeleteConfig, DiscardChanges, EditConfig, EditData, ErrorOption, Filter, Get, GetConfig,
    GetData, GetSchema, InlineConfig, KillSession, Lock, NmdaDatastore, SchemaFormat, TestOption,
    Unlock, Validate,
};
use netconf_tokio::server::{ServerOptions, SessionInfo};
use netconf_tokio::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_tokio::{
    Client, ClientOptions, Config, Error, Reply, ReplyContent, Request, RpcError, Server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::Stream;

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:client-server";
const SCHEMA_TEXT: &str =
    "module ex {\n  namespace \"urn:ex\";\n  description \"a < b & c > d\";\n}\n";

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish within 10 s");
}

/// A fresh PKI in its own temp dir (removed on drop).
struct TestPki {
    pki: Pki,
    files: PkiFiles,
    dir: PathBuf,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        Self::from_pki(tag, Pki::generate())
    }

    fn from_pki(tag: &str, pki: Pki) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "netconf-tokio-client-server-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("creating the temp dir");
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
        "stall" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Reply::Ok
        }
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

struct Harness {
    pki: TestPki,
    recorder: Arc<Recorder>,
    server: Server,
    addr: String,
}

impl Harness {
    async fn start(tag: &str) -> Harness {
        Self::start_with(tag, |o| o).await
    }

    async fn start_with(
        tag: &str,
        customize: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> Harness {
        let pki = TestPki::new(tag);
        let recorder = Arc::new(Recorder::default());
        let r = recorder.clone();
        let config = Config::server()
            .with_capability("urn:ietf:params:netconf:capability:candidate:1.0")
            .with_capability("urn:ietf:params:netconf:capability:notification:1.0");
        let server = Server::new(
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

    async fn client(&self) -> Client {
        self.client_with(ClientOptions::new()).await
    }

    async fn client_with(&self, options: ClientOptions) -> Client {
        Client::connect_tls_with(&self.addr, &self.pki.client_tls(), &options)
            .await
            .expect("connect")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_reaches_the_handler() {
    guarded(async {
        let h = Harness::start("ops").await;
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
            let n = next(&mut notifications)
                .await
                .expect("stream")
                .expect("no lag");
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
        assert!(eventually(|| h.server.sessions().is_empty()).await);
        h.server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_error_becomes_a_typed_error() {
    guarded(async {
        let h = Harness::start("rpc-error").await;
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_session_ends_the_other_session() {
    guarded(async {
        let h = Harness::start("kill").await;
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
            eventually(|| victim.is_closed()).await,
            "the victim's session stayed open"
        );
        let result = victim.call(&GetConfig::new(Datastore::Running)).await;
        assert!(result.is_err(), "{result:?}");
        assert!(eventually(|| h.server.sessions() == vec![killer.session_id()]).await);
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_to_name_username_reaches_the_handler() {
    guarded(async {
        let expected = Arc::new(Mutex::new(None));
        let e2 = expected.clone();
        let h = Harness::start_with("cert-to-name", move |b| {
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_to_name_none_disconnects() {
    guarded(async {
        let h = Harness::start_with("no-name", |b| b.cert_to_name(|_| None)).await;
        // The server's hello may already be out when the mapping runs, so either the connect
        // fails or the session ends right after it.
        match Client::connect_tls(&h.addr, &h.pki.client_tls()).await {
            Err(e) => eprintln!("connect refused: {e}"),
            Ok(client) => {
                let result = client.call(&GetConfig::new(Datastore::Running)).await;
                assert!(
                    result.is_err(),
                    "an unmapped client got an answer: {result:?}"
                );
                assert!(eventually(|| client.is_closed()).await);
            }
        }
        assert_eq!(
            h.recorder.count(),
            0,
            "the handler ran for an unmapped client"
        );
        assert!(eventually(|| h.server.sessions().is_empty()).await);
        h.server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_from_another_ca_is_refused() {
    guarded(async {
        let h = Harness::start("wrong-ca").await;
        let other = TestPki::from_pki("other-ca", Pki::other_ca());
        // Trusts the other CA (but presents a certificate the server accepts).
        let tls = ClientTlsOptions::new()
            .ca_file(&other.files.ca_cert)
            .client_cert_files(&h.pki.files.client_cert, &h.pki.files.client_key);
        match Client::connect_tls(&h.addr, &tls).await {
            Err(Error::Tls(what)) => eprintln!("refused: {what}"),
            other => panic!("expected Error::Tls, got {other:?}"),
        }
        // A server name the certificate does not carry is refused too.
        let tls = h.pki.client_tls().server_name("not-the-server.example");
        assert!(matches!(
            Client::connect_tls(&h.addr, &tls).await,
            Err(Error::Tls(_))
        ));
        assert_eq!(h.recorder.count(), 0);
        h.server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_refused() {
    guarded(async {
        let h = Harness::start("no-client-cert").await;
        let tls = ClientTlsOptions::new().ca_file(&h.pki.files.ca_cert);
        let result =
            tokio::time::timeout(Duration::from_secs(5), Client::connect_tls(&h.addr, &tls))
                .await
                .expect("the refusal must not hang");
        match result {
            Err(Error::Tls(what)) => eprintln!("refused: {what}"),
            other => panic!("expected Error::Tls, got {other:?}"),
        }
        // A client certificate from another CA is refused as well.
        let other = TestPki::from_pki("other-client", Pki::other_ca());
        let tls = ClientTlsOptions::new()
            .ca_file(&h.pki.files.ca_cert)
            .client_cert_files(&other.files.client_cert, &other.files.client_key);
        let result = Client::connect_tls(&h.addr, &tls).await;
        assert!(matches!(result, Err(Error::Tls(_))), "{result:?}");
        assert_eq!(h.recorder.count(), 0);
        assert!(eventually(|| h.server.sessions().is_empty()).await);
        h.server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handler_times_out_and_the_session_stays_usable() {
    guarded(async {
        let h = Harness::start("stall").await;
        let client = h
            .client_with(ClientOptions::new().rpc_timeout(Some(Duration::from_millis(200))))
            .await;
        let started = Instant::now();
        match client.rpc_raw(&format!("<stall xmlns=\"{NS}\"/>")).await {
            Err(Error::Timeout(_)) => {}
            other => panic!("expected Error::Timeout, got {other:?}"),
        }
        // Well before the stalled handler answers (3 s): the timeout, not the reply, ended it.
        assert!(started.elapsed() < Duration::from_millis(2500));
        assert!(!client.is_closed());
        // Replies come in order, so this one waits for the stalled handler (3 s).
        let data = client
            .rpc_with_timeout(
                &GetConfig::new(Datastore::Running),
                Some(Duration::from_secs(10)),
            )
            .await
            .expect("the session is usable after a timeout");
        assert_eq!(
            data.data()
                .and_then(|d| d.child_text("hostname"))
                .as_deref(),
            Some("r1")
        );
        // And with the default timeout again, now that the server is idle.
        client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        client.close().await.expect("close");
        h.server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_graceful_server_shutdown() {
    guarded(async {
        let h = Harness::start("shutdown").await;
        let a = h.client().await;
        let b = h.client().await;
        let c = h.client().await;
        assert_eq!(h.server.sessions().len(), 3);

        // close(): clean, idempotent, and later calls fail.
        a.close().await.expect("close");
        a.close().await.expect("second close");
        assert!(a.is_closed());
        assert!(a.call(&GetConfig::new(Datastore::Running)).await.is_err());
        assert!(eventually(|| h.server.sessions().len() == 2).await);

        // Shutdown ends every session; clients see it without sending anything.
        let Harness { server, .. } = h;
        tokio::time::timeout(Duration::from_secs(3), server.shutdown())
            .await
            .expect("shutdown hung");
        assert!(
            eventually(|| b.is_closed() && c.is_closed()).await,
            "clients did not see the shutdown"
        );
        let e = b
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect_err("after shutdown");
        eprintln!("after shutdown: {e}");
        assert!(!matches!(e, Error::Timeout(_)));
        c.close().await.expect("close after the server went away");
    })
    .await
}

/// `close()` "waits until the driver has closed" the session, so `is_closed()` is true as
/// soon as it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_closed_as_soon_as_close_returns() {
    guarded(async {
        let h = Harness::start("is-closed").await;
        for round in 0..20 {
            let client = h.client().await;
            client.close().await.expect("close");
            assert!(
                client.is_closed(),
                "round {round}: close() returned, is_closed() is false"
            );
        }
        h.server.shutdown().await;
    })
    .await
}

/// Dropping every clone of a Client ends the session politely: the driver sends
/// close-session, and the server forgets the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_client_closes_the_session() {
    guarded(async {
        let h = Harness::start("drop").await;
        let client = h.client().await;
        let clone = client.clone();
        client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert_eq!(h.server.sessions().len(), 1);
        drop(client);
        // One clone left: the session stays.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(h.server.sessions().len(), 1);
        clone
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("clone still works");
        drop(clone);
        assert!(
            eventually(|| h.server.sessions().is_empty()).await,
            "the session outlived every client handle"
        );
        h.server.shutdown().await;
    })
    .await
}

/// A minimal NETCONF server over plain TCP: a `netconf_proto::Session` driven by hand.
/// Answers every rpc with `<data>` naming the operation; returns the operations seen and
/// why the session ended.
async fn plain_peer(listener: tokio::net::TcpListener) -> (Vec<String>, CloseReason) {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut session = Session::server(Config::server(), 77, Instant::now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = Vec::new();
    loop {
        let mut requests = Vec::new();
        let mut closed = None;
        loop {
            match session.poll_output() {
                Output::Transmit(bytes) => socket.write_all(&bytes).await.expect("write"),
                Output::Event(Event::Rpc { id, request }) => requests.push((id, request)),
                Output::Event(Event::Closed { reason }) => closed = Some(reason),
                Output::Event(_) => {}
                Output::Wait(_) => break,
                _ => {}
            }
        }
        if let Some(reason) = closed {
            let _ = socket.shutdown().await;
            return (seen, reason);
        }
        if !requests.is_empty() {
            for (id, request) in requests {
                seen.push(request.operation.name.clone());
                let reply = Reply::data(format!(
                    "<plain xmlns=\"{NS}\"><op>{}</op></plain>",
                    request.operation.name
                ))
                .expect("data");
                session.send_reply(id, reply).expect("send_reply");
            }
            continue;
        }
        let n = socket.read(&mut buf).await.expect("read");
        if n == 0 {
            session.handle_eof(Instant::now());
        } else {
            session
                .handle_input(&buf[..n], Instant::now())
                .expect("the client speaks NETCONF");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn from_stream_over_plain_tcp() {
    guarded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(plain_peer(listener));
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let client = Client::from_stream(stream).await.expect("hello exchange");
        assert_eq!(client.session_id(), 77);
        assert_eq!(client.framing(), netconf_proto::Framing::Chunked);

        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert_eq!(data.child_text("op").as_deref(), Some("get-config"));
        let get = Get::new();
        let custom = format!("<custom xmlns=\"{NS}\"/>");
        let (a, b) = tokio::join!(client.call(&get), client.rpc_raw(&custom));
        assert_eq!(a.expect("get").child_text("op").as_deref(), Some("get"));
        assert_eq!(
            b.expect("custom")
                .data()
                .and_then(|d| d.child_text("op"))
                .as_deref(),
            Some("custom")
        );
        client.close().await.expect("close");
        let (seen, reason) = peer.await.expect("peer task");
        assert_eq!(seen, ["get-config", "get", "custom"]);
        assert_eq!(reason, CloseReason::CloseSession);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_stream_with_driver_over_plain_tcp() {
    guarded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(plain_peer(listener));
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (client, driver) = Client::from_stream_with_driver(stream, &ClientOptions::new())
            .await
            .expect("hello exchange");
        let driver = tokio::spawn(driver);
        let data = client.call(&Get::new()).await.expect("get");
        assert_eq!(data.child_text("op").as_deref(), Some("get"));
        client.close().await.expect("close");
        driver.await.expect("driver");
        let (seen, reason) = peer.await.expect("peer task");
        assert_eq!(seen, ["get"]);
        assert_eq!(reason, CloseReason::CloseSession);
    })
    .await
}

/// A handler that panics costs its one request, answered with operation-failed; the
/// session goes on, and so do the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_fails_only_its_request() {
    guarded(async {
        let h = Harness::start("panic").await;
        let victim = h.client().await;
        let other = h.client().await;
        let result = victim.rpc_raw(&format!("<panic xmlns=\"{NS}\"/>")).await;
        match &result {
            Err(Error::Rpc(errors)) => {
                assert_eq!(
                    errors[0].tag,
                    netconf_proto::message::ErrorTag::OperationFailed
                )
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
            eventually(|| h.server.sessions() == alive).await,
            "sessions() = {:?}, expected {alive:?}",
            h.server.sessions()
        );
        victim.close().await.expect("close");
        other.close().await.expect("close");
        third.close().await.expect("close");
        h.server.shutdown().await;
    })
    .await
}
