//! The blocking `Client` against the blocking `Server`, over real TLS on loopback.
//!
//! The server's handler is a tiny in-memory datastore (running, candidate, startup, one lock,
//! a pending confirmed commit) that records every request it sees, so each test can check
//! both what the client got back and what went over the wire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netconf_blocking::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DeleteConfig, DiscardChanges,
    EditConfig, EditData, Filter, Get, GetConfig, GetData, GetSchema, InlineConfig, KillSession,
    Lock, NmdaDatastore, RpcBody, SchemaFormat, Source, Unlock, Validate,
};
use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_blocking::{
    Client, ClientOptions, Config, Error, Reply, ReplyContent, Request, RpcError, Server,
};
use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
use netconf_proto::xml::{escape_text, NS_BASE, NS_MONITORING, NS_NMDA, NS_NOTIFICATION};
use netconf_proto::{CloseReason, Event, Output, Session};
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tests::deadline::with_deadline;

// ---------------------------------------------------------------------------------------------
// Harness

/// Polls `condition` every 10 ms for up to `timeout` (for state another thread updates).
fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh PKI written to its own temporary directory, removed on drop.
struct TestPki {
    pki: Pki,
    dir: PathBuf,
    files: PkiFiles,
}

impl TestPki {
    fn new(pki: Pki) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netconf-blocking-client-server-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("creating the PKI directory");
        let files = pki.write_to_dir(&dir).expect("writing the PKI");
        TestPki { pki, dir, files }
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

/// One request as the handler saw it.
#[derive(Clone, Debug)]
struct Seen {
    namespace: String,
    name: String,
    body: String,
    session_id: u32,
    username: Option<String>,
}

/// The in-memory datastore behind the test server.
#[derive(Debug, Default)]
struct Store {
    running: String,
    candidate: String,
    startup: Option<String>,
    lock_owner: Option<u32>,
    confirmed_pending: bool,
    seen: Vec<Seen>,
}

const INITIAL_CONFIG: &str = "<top xmlns=\"urn:x\"><v>1</v></top>";
const STATE_DATA: &str = "<state xmlns=\"urn:x\"><up>true</up></state>";
const URN_X: &str = "urn:x";

/// The YANG module get-schema returns: full of characters XML must escape.
const YANG: &str = "module example {\n  namespace \"urn:x\";\n  prefix x;\n  \
description \"a < b && c > d, <tags> & 'quotes' \\\"too\\\"\";\n  leaf v { type string; }\n}\n";

/// The content of the first `<tag ...>...</tag>` in `xml` (up to the last closing tag).
fn inner<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    let start = loop {
        let at = from + xml[from..].find(&open)?;
        let after = at + open.len();
        match xml[after..].chars().next()? {
            '>' => break after + 1,
            ' ' => break after + xml[after..].find('>')? + 1,
            _ => from = after,
        }
    };
    let end = xml.rfind(&format!("</{tag}>"))?;
    (end >= start).then(|| &xml[start..end])
}

/// Which datastore the `<target>` or `<source>` of an operation names.
fn named_datastore(body: &str, wrapper: &str) -> Option<&'static str> {
    let section = inner(body, wrapper)?;
    ["running", "candidate", "startup"]
        .into_iter()
        .find(|ds| section.contains(&format!("<{ds}/>")))
        .or_else(|| section.contains("<config").then_some("inline"))
}

fn error(error_type: ErrorType, tag: ErrorTag, message: &str) -> Reply {
    Reply::error(RpcError::new(error_type, tag).with_message(message))
}

fn data(xml: String) -> Reply {
    Reply::data(xml).expect("well-formed test data")
}

impl Store {
    fn datastore(&mut self, name: &str) -> Option<&mut String> {
        match name {
            "running" => Some(&mut self.running),
            "candidate" => Some(&mut self.candidate),
            "startup" => self.startup.as_mut(),
            _ => None,
        }
    }

    fn answer(&mut self, request: &Request, info: &SessionInfo) -> Reply {
        let body = request.body.as_str();
        let me = info.session_id;
        match (
            request.operation.namespace.as_str(),
            request.operation.name.as_str(),
        ) {
            (NS_BASE, "get") => data(format!("{}{STATE_DATA}", self.running)),
            (NS_BASE, "get-config") => match named_datastore(body, "source") {
                Some("candidate") => data(self.candidate.clone()),
                Some("startup") => match &self.startup {
                    Some(config) => data(config.clone()),
                    None => error(ErrorType::Application, ErrorTag::InvalidValue, "no startup"),
                },
                _ => data(self.running.clone()),
            },
            (NS_BASE, "edit-config") => {
                let target = named_datastore(body, "target").unwrap_or("running");
                if target == "running" && self.lock_owner.is_some_and(|owner| owner != me) {
                    return error(ErrorType::Protocol, ErrorTag::InUse, "running is locked");
                }
                let config = inner(body, "config").unwrap_or_default().to_owned();
                match self.datastore(target) {
                    Some(ds) => {
                        *ds = config;
                        Reply::Ok
                    }
                    None => error(ErrorType::Protocol, ErrorTag::InvalidValue, "bad target"),
                }
            }
            (NS_BASE, "copy-config") => {
                let source = match named_datastore(body, "source") {
                    Some("inline") => inner(body, "config").map(str::to_owned),
                    Some(name) => self.datastore(name).map(|ds| ds.clone()),
                    None => None,
                };
                let Some(source) = source else {
                    return error(ErrorType::Protocol, ErrorTag::InvalidValue, "bad source");
                };
                match named_datastore(body, "target") {
                    Some("startup") => self.startup = Some(source),
                    Some("running") => self.running = source,
                    Some("candidate") => self.candidate = source,
                    _ => return error(ErrorType::Protocol, ErrorTag::InvalidValue, "bad target"),
                }
                Reply::Ok
            }
            (NS_BASE, "delete-config") => match named_datastore(body, "target") {
                Some("startup") if self.startup.is_some() => {
                    self.startup = None;
                    Reply::Ok
                }
                Some("running") => error(
                    ErrorType::Protocol,
                    ErrorTag::OperationFailed,
                    "the running configuration cannot be deleted",
                ),
                _ => error(
                    ErrorType::Protocol,
                    ErrorTag::InvalidValue,
                    "nothing to delete",
                ),
            },
            (NS_BASE, "lock") => match self.lock_owner {
                Some(owner) => Reply::error(
                    RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
                        .with_message(format!("locked by session {owner}"))
                        .with_info_xml(&format!("<session-id>{owner}</session-id>"))
                        .expect("well-formed error-info"),
                ),
                None => {
                    self.lock_owner = Some(me);
                    Reply::Ok
                }
            },
            (NS_BASE, "unlock") => {
                if self.lock_owner == Some(me) {
                    self.lock_owner = None;
                    Reply::Ok
                } else {
                    error(
                        ErrorType::Protocol,
                        ErrorTag::OperationFailed,
                        "not locked by you",
                    )
                }
            }
            (NS_BASE, "commit") => {
                self.confirmed_pending = body.contains("<confirmed/>");
                self.running = self.candidate.clone();
                Reply::Ok
            }
            (NS_BASE, "cancel-commit") => {
                if std::mem::take(&mut self.confirmed_pending) {
                    Reply::Ok
                } else {
                    error(
                        ErrorType::Protocol,
                        ErrorTag::OperationFailed,
                        "no confirmed commit",
                    )
                }
            }
            (NS_BASE, "discard-changes") => {
                self.candidate = self.running.clone();
                Reply::Ok
            }
            (NS_BASE, "validate") => {
                if body.contains("invalid") {
                    Reply::error(
                        RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                            .with_path("/x:top/x:v")
                            .with_message("v must be a number"),
                    )
                } else {
                    Reply::Ok
                }
            }
            (NS_MONITORING, "get-schema") => {
                match request.body.child_text("identifier").as_deref() {
                    Some("example") => Reply::raw(format!(
                        "<data xmlns=\"{NS_MONITORING}\">{}</data>",
                        escape_text(YANG)
                    ))
                    .expect("escaped YANG is a text fragment"),
                    _ => error(
                        ErrorType::Application,
                        ErrorTag::InvalidValue,
                        "no such schema",
                    ),
                }
            }
            (NS_NMDA, "get-data") => Reply::raw(format!(
                "<data xmlns=\"{NS_NMDA}\">{}{STATE_DATA}</data>",
                self.running
            ))
            .expect("well-formed get-data reply"),
            (NS_NMDA, "edit-data") => {
                let config = inner(body, "config").unwrap_or_default().to_owned();
                if body.contains(":running<") {
                    self.running = config;
                } else if body.contains(":candidate<") {
                    self.candidate = config;
                } else {
                    return error(ErrorType::Protocol, ErrorTag::InvalidValue, "bad datastore");
                }
                Reply::Ok
            }
            (NS_NOTIFICATION, "create-subscription") => Reply::Ok,
            (URN_X, "my-rpc") => {
                let arg: u64 = request
                    .body
                    .child_text("arg")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                Reply::raw(format!("<result xmlns=\"urn:x\">{}</result>", arg * 2)).expect("raw")
            }
            (URN_X, "echo") => {
                let n = request.body.child_text("n").unwrap_or_default();
                Reply::raw(format!(
                    "<echoed xmlns=\"urn:x\"><n>{}</n></echoed>",
                    escape_text(&n)
                ))
                .expect("raw")
            }
            (URN_X, "whoami") => Reply::raw(format!(
                "<user xmlns=\"urn:x\">{}</user>",
                escape_text(info.username.as_deref().unwrap_or("-"))
            ))
            .expect("raw"),
            (URN_X, "fail") => Reply::Errors(vec![
                RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                    .with_app_tag("too-large")
                    .with_path("/x:top/x:v")
                    .with_message("v > 10 & v < 0 are both wrong")
                    .with_info_xml("<bad-element>v</bad-element>")
                    .expect("well-formed error-info"),
                RpcError::new(ErrorType::Protocol, ErrorTag::OperationFailed)
                    .with_severity(ErrorSeverity::Warning)
                    .with_message("just a warning"),
            ]),
            (URN_X, "warn") => Reply::error(
                RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
                    .with_severity(ErrorSeverity::Warning)
                    .with_message("only a warning"),
            ),
            _ => error(
                ErrorType::Protocol,
                ErrorTag::OperationNotSupported,
                "unknown operation",
            ),
        }
    }
}

/// A running test server and its datastore.
struct TestServer {
    handle: Server,
    addr: std::net::SocketAddr,
    store: Arc<Mutex<Store>>,
    pki: TestPki,
}

impl TestServer {
    fn start() -> TestServer {
        Self::start_with(|options| options)
    }

    fn start_with(setup: impl FnOnce(ServerOptions) -> ServerOptions) -> TestServer {
        let pki = TestPki::new(Pki::generate());
        let store = Arc::new(Mutex::new(Store {
            running: INITIAL_CONFIG.into(),
            candidate: INITIAL_CONFIG.into(),
            ..Store::default()
        }));
        let config = Config::server()
            .with_capability("urn:ietf:params:netconf:capability:candidate:1.0")
            .with_capability("urn:ietf:params:netconf:capability:xpath:1.0")
            .with_capability("urn:ietf:params:netconf:capability:notification:1.0");
        let options = setup(ServerOptions::new().config(config));
        let handler_store = store.clone();
        let handle = Server::new(options, move |request: &Request, info: &SessionInfo| {
            let mut store = lock(&handler_store);
            store.seen.push(Seen {
                namespace: request.operation.namespace.clone(),
                name: request.operation.name.clone(),
                body: request.body.as_str().to_owned(),
                session_id: info.session_id,
                username: info.username.clone(),
            });
            if request.operation.namespace == URN_X && request.operation.name == "slow" {
                // Sleep without holding the store, so other sessions are not blocked.
                drop(store);
                let ms = request
                    .body
                    .child_text("ms")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                std::thread::sleep(Duration::from_millis(ms));
                return Reply::data("<slow-result xmlns=\"urn:x\"/>").expect("data");
            }
            store.answer(request, info)
        });
        let addr = handle
            .listen_tls("127.0.0.1:0", &pki.server_tls())
            .expect("binding the server");
        TestServer {
            handle,
            addr,
            store,
            pki,
        }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    fn options() -> ClientOptions {
        ClientOptions::new().config(
            Config::client()
                .with_hello_timeout(Duration::from_secs(3))
                .with_rpc_timeout(Some(Duration::from_secs(3)))
                .with_close_timeout(Duration::from_secs(2)),
        )
    }

    fn connect(&self, tls: &ClientTlsOptions, options: &ClientOptions) -> Result<Client, Error> {
        Client::connect_tls_with(&self.addr(), tls, options)
    }

    fn client(&self) -> Client {
        self.connect(&self.pki.client_tls(), &Self::options())
            .expect("connecting")
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Bodies of the requests named `name` (any namespace), in order.
    fn seen(&self, name: &str) -> Vec<Seen> {
        self.store()
            .seen
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    fn last_body(&self, name: &str) -> String {
        self.seen(name)
            .pop()
            .unwrap_or_else(|| panic!("the server saw no <{name}>"))
            .body
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn rpc_errors(result: Result<impl std::fmt::Debug, Error>) -> Vec<RpcError> {
    match result {
        Err(Error::Rpc(errors)) => errors,
        other => panic!("expected an rpc-error, got {other:?}"),
    }
}

fn config(xml: &str) -> InlineConfig {
    InlineConfig::new(xml).expect("well-formed config")
}

// ---------------------------------------------------------------------------------------------
// Session basics

#[test]
fn hello_capabilities_and_session_id() {
    with_deadline(10, || {
        let server = TestServer::start();
        let started = Instant::now();
        let client = server.client();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(client.session_id() > 0);
        assert_eq!(server.handle.sessions(), vec![client.session_id()]);
        let caps = client.capabilities();
        assert!(
            caps.has_candidate() && caps.has_xpath() && caps.has_notification(),
            "{caps:?}"
        );
        assert_eq!(client.framing(), netconf_proto::Framing::Chunked);
        assert!(!client.is_closed());
        client.close().expect("close");
    });
}

#[test]
fn get_and_get_config_with_filters() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();

        let all = client.call(&Get::new()).expect("get");
        assert_eq!(all.as_str(), format!("{INITIAL_CONFIG}{STATE_DATA}"));

        let subtree = Filter::subtree("<top xmlns=\"urn:x\"><v/></top>").expect("filter");
        let filtered = client
            .call(&Get::new().filter(subtree))
            .expect("get with a subtree filter");
        assert!(filtered.as_str().contains("<v>1</v>"));
        let body = server.last_body("get");
        assert!(
            body.contains("<filter type=\"subtree\"><top xmlns=\"urn:x\"><v/></top></filter>"),
            "{body}"
        );

        let running = client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        assert_eq!(running.as_str(), INITIAL_CONFIG);
        assert_eq!(running.to_string(), INITIAL_CONFIG);

        let xpath = Filter::xpath("/x:top/x:v[. < 5]")
            .with_namespace("x", "urn:x")
            .expect("xpath");
        let candidate = client
            .call(&GetConfig::new(Datastore::Candidate).filter(xpath))
            .expect("get-config with an xpath filter");
        assert_eq!(candidate.as_str(), INITIAL_CONFIG);
        let body = server.last_body("get-config");
        assert!(body.contains("<candidate/>"), "{body}");
        assert!(body.contains("xmlns:x=\"urn:x\""), "{body}");
        assert!(body.contains("type=\"xpath\""), "{body}");
        assert!(body.contains("select=\"/x:top/x:v[. &lt; 5]\""), "{body}");

        let subtree = Filter::subtree("<top xmlns=\"urn:x\"/>").expect("filter");
        client
            .call(&GetConfig::new(Datastore::Running).filter(subtree))
            .expect("get-config with a subtree filter");
        assert!(server
            .last_body("get-config")
            .contains("<filter type=\"subtree\">"));
        client.close().expect("close");
    });
}

#[test]
fn edit_copy_delete_and_validate() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();

        let new = "<top xmlns=\"urn:x\"><v>2</v></top>";
        client
            .call(&EditConfig::new(Datastore::Running, config(new)))
            .expect("edit-config");
        assert_eq!(server.store().running, new);
        let body = server.last_body("edit-config");
        assert!(body.contains("<target><running/></target>"), "{body}");
        assert_eq!(
            client
                .call(&GetConfig::new(Datastore::Running))
                .expect("get")
                .as_str(),
            new
        );

        // copy-config running -> startup, then delete-config startup.
        client
            .call(&CopyConfig::new(Datastore::Startup, Datastore::Running))
            .expect("copy");
        assert_eq!(server.store().startup.as_deref(), Some(new));
        let startup = client
            .call(&GetConfig::new(Datastore::Startup))
            .expect("startup");
        assert_eq!(startup.as_str(), new);
        // copy-config with inline configuration.
        let inline = "<top xmlns=\"urn:x\"><v>3</v></top>";
        client
            .call(&CopyConfig::new(
                Datastore::Candidate,
                Source::Config(config(inline)),
            ))
            .expect("copy inline");
        assert_eq!(server.store().candidate, inline);

        client
            .call(&DeleteConfig::new(Datastore::Startup))
            .expect("delete-config startup");
        assert_eq!(server.store().startup, None);
        let errors = rpc_errors(client.call(&DeleteConfig::new(Datastore::Running)));
        assert_eq!(errors[0].tag, ErrorTag::OperationFailed);
        assert!(server.last_body("delete-config").contains("<running/>"));

        client
            .call(&Validate::new(Datastore::Candidate))
            .expect("validate candidate");
        let bad = config("<top xmlns=\"urn:x\"><v>invalid</v></top>");
        let errors = rpc_errors(client.call(&Validate::new(Source::Config(bad))));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].error_type, ErrorType::Application);
        assert_eq!(errors[0].tag, ErrorTag::InvalidValue);
        assert_eq!(errors[0].path.as_deref(), Some("/x:top/x:v"));
        assert!(server.last_body("validate").contains("<config>"));

        // The session is still fine after rpc-errors.
        client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config after errors");
        client.close().expect("close");
    });
}

#[test]
fn lock_unlock_and_lock_denied() {
    with_deadline(10, || {
        let server = TestServer::start();
        let a = server.client();
        let b = server.client();
        assert_ne!(a.session_id(), b.session_id());

        a.call(&Lock::new(Datastore::Running)).expect("A locks");
        let errors = rpc_errors(b.call(&Lock::new(Datastore::Running)));
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert_eq!(e.error_type, ErrorType::Protocol);
        assert_eq!(e.tag, ErrorTag::LockDenied);
        assert_eq!(e.severity, ErrorSeverity::Error);
        let info = e.info.as_ref().expect("lock-denied carries error-info");
        assert_eq!(
            info.child_text("session-id"),
            Some(a.session_id().to_string())
        );
        assert_eq!(
            e.message.as_ref().map(|m| m.text.as_str()),
            Some(format!("locked by session {}", a.session_id()).as_str())
        );

        // B cannot edit running while A holds the lock, nor unlock A's lock.
        let edit = EditConfig::new(Datastore::Running, config("<top xmlns=\"urn:x\"/>"));
        assert_eq!(rpc_errors(b.call(&edit))[0].tag, ErrorTag::InUse);
        assert_eq!(
            rpc_errors(b.call(&Unlock::new(Datastore::Running)))[0].tag,
            ErrorTag::OperationFailed
        );

        a.call(&Unlock::new(Datastore::Running)).expect("A unlocks");
        b.call(&Lock::new(Datastore::Running))
            .expect("B locks after A unlocked");
        b.call(&Unlock::new(Datastore::Running)).expect("B unlocks");
        assert!(server
            .last_body("lock")
            .contains("<target><running/></target>"));
        a.close().expect("close A");
        b.close().expect("close B");
    });
}

#[test]
fn candidate_commit_confirmed_cancel_and_discard() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let v5 = "<top xmlns=\"urn:x\"><v>5</v></top>";
        client
            .call(&EditConfig::new(Datastore::Candidate, config(v5)))
            .expect("edit");
        assert_eq!(server.store().running, INITIAL_CONFIG);

        client.call(&Commit::new()).expect("commit");
        assert_eq!(server.store().running, v5);
        assert_eq!(server.last_body("commit"), "<commit/>");

        let confirmed = Commit::confirmed()
            .confirm_timeout(60)
            .expect("timeout")
            .persist("tok");
        client.call(&confirmed).expect("confirmed commit");
        let body = server.last_body("commit");
        assert!(body.contains("<confirmed/>"), "{body}");
        assert!(
            body.contains("<confirm-timeout>60</confirm-timeout>"),
            "{body}"
        );
        assert!(body.contains("<persist>tok</persist>"), "{body}");
        assert!(server.store().confirmed_pending);

        client
            .call(&CancelCommit::new().persist_id("tok"))
            .expect("cancel-commit");
        assert!(server
            .last_body("cancel-commit")
            .contains("<persist-id>tok</persist-id>"));
        assert!(!server.store().confirmed_pending);
        let errors = rpc_errors(client.call(&CancelCommit::new()));
        assert_eq!(errors[0].tag, ErrorTag::OperationFailed);

        let v6 = "<top xmlns=\"urn:x\"><v>6</v></top>";
        client
            .call(&EditConfig::new(Datastore::Candidate, config(v6)))
            .expect("edit");
        assert_eq!(server.store().candidate, v6);
        client
            .call(&DiscardChanges::new())
            .expect("discard-changes");
        assert_eq!(server.store().candidate, v5);
        assert_eq!(server.seen("discard-changes").len(), 1);
        client.close().expect("close");
    });
}

#[test]
fn kill_session() {
    with_deadline(10, || {
        let server = TestServer::start();
        let a = server.client();
        let b = server.client();
        let (a_id, b_id) = (a.session_id(), b.session_id());

        // Killing oneself is refused: use close-session.
        let errors = rpc_errors(a.call(&KillSession::new(a_id).expect("session-id")));
        assert_eq!(errors[0].tag, ErrorTag::InvalidValue);
        // So is killing a session that does not exist.
        let errors = rpc_errors(a.call(&KillSession::new(999_999).expect("session-id")));
        assert_eq!(errors[0].tag, ErrorTag::InvalidValue);

        a.call(&KillSession::new(b_id).expect("session-id"))
            .expect("A kills B");
        assert!(
            eventually(Duration::from_secs(2), || !server
                .handle
                .sessions()
                .contains(&b_id)),
            "B's session is gone from the server: {:?}",
            server.handle.sessions()
        );

        let started = Instant::now();
        let result = b.call(&GetConfig::new(Datastore::Running));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(result, Err(Error::Closed(_) | Error::Io(_))),
            "B after the kill: {result:?}"
        );
        assert!(b.is_closed());
        let again = b.call(&GetConfig::new(Datastore::Running));
        assert!(
            matches!(again, Err(Error::Closed(_) | Error::Io(_))),
            "{again:?}"
        );
        b.close().expect("closing a killed session is fine");

        // A is unaffected; kill-session never reached the handler.
        a.call(&GetConfig::new(Datastore::Running))
            .expect("A still works");
        assert!(server.seen("kill-session").is_empty());
        assert_eq!(server.handle.sessions(), vec![a_id]);
        a.close().expect("close A");
    });
}

#[test]
fn get_schema_returns_unescaped_text() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let op = GetSchema::new("example")
            .version("2026-01-01")
            .format(SchemaFormat::Yang);
        let text = client.call(&op).expect("get-schema");
        assert_eq!(text, YANG);
        let seen = server.seen("get-schema").pop().expect("seen");
        assert_eq!(seen.namespace, NS_MONITORING);
        assert!(
            seen.body.contains("<identifier>example</identifier>"),
            "{}",
            seen.body
        );
        assert!(
            seen.body.contains("<version>2026-01-01</version>"),
            "{}",
            seen.body
        );
        assert!(seen.body.contains("<format>yang</format>"), "{}", seen.body);

        let errors = rpc_errors(client.call(&GetSchema::new("missing")));
        assert_eq!(errors[0].tag, ErrorTag::InvalidValue);
        client.close().expect("close");
    });
}

#[test]
fn nmda_get_data_and_edit_data() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let filter = Filter::subtree("<top xmlns=\"urn:x\"/>").expect("filter");
        let op = GetData::new(NmdaDatastore::Operational)
            .filter(filter)
            .config_filter(true);
        let got = client.call(&op).expect("get-data");
        assert_eq!(got.as_str(), format!("{INITIAL_CONFIG}{STATE_DATA}"));
        let seen = server.seen("get-data").pop().expect("seen");
        assert_eq!(seen.namespace, NS_NMDA);
        assert!(
            seen.body.contains(":operational</datastore>"),
            "{}",
            seen.body
        );
        assert!(seen.body.contains("subtree-filter"), "{}", seen.body);
        assert!(
            seen.body.contains("<config-filter>true</config-filter>"),
            "{}",
            seen.body
        );

        let v9 = "<top xmlns=\"urn:x\"><v>9</v></top>";
        client
            .call(&EditData::new(NmdaDatastore::Running, config(v9)))
            .expect("edit-data");
        assert_eq!(server.store().running, v9);
        let seen = server.seen("edit-data").pop().expect("seen");
        assert_eq!(seen.namespace, NS_NMDA);
        client.close().expect("close");
    });
}

#[test]
fn notifications() {
    with_deadline(10, || {
        let server = TestServer::start();
        let subscriber = server.client();
        let bystander = server.client();
        assert_eq!(
            server
                .handle
                .notify("2026-01-01T00:00:00Z", "<early xmlns=\"urn:x\"/>")
                .expect("notify"),
            0
        );

        // Subscribe to the client's stream before create-subscription, so nothing is missed.
        let notifications = subscriber.notifications();
        let bystander_notifications = bystander.notifications();
        subscriber
            .call(&CreateSubscription::new())
            .expect("create-subscription");
        let seen = server.seen("create-subscription").pop().expect("seen");
        assert_eq!(seen.namespace, NS_NOTIFICATION);

        let sent = server
            .handle
            .notify(
                "2026-01-01T00:00:01Z",
                "<event xmlns=\"urn:x\"><n>0</n></event>",
            )
            .expect("notify");
        assert_eq!(sent, 1, "only the subscribed session gets it");
        let started = Instant::now();
        let n = notifications
            .recv_timeout(Duration::from_secs(2))
            .expect("the session is open")
            .expect("a notification")
            .expect("not lagged");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(n.event_time, "2026-01-01T00:00:01Z");
        assert!(
            n.content
                .as_str()
                .contains("<event xmlns=\"urn:x\"><n>0</n></event>"),
            "{:?}",
            n.content
        );

        // Malformed content is refused before anything is sent.
        assert!(server
            .handle
            .notify("2026-01-01T00:00:02Z", "<broken>")
            .is_err());

        for i in 1..=3 {
            let content = format!("<event xmlns=\"urn:x\"><n>{i}</n></event>");
            assert_eq!(
                server
                    .handle
                    .notify("2026-01-01T00:00:03Z", &content)
                    .expect("notify"),
                1
            );
        }
        // Each item is Ok: none was dropped (a dropped one would show up as `Err(Lagged)`).
        let got: Vec<_> = (0..3)
            .map(|_| {
                let n = notifications.recv().expect("the session is open");
                n.expect("notification").content.as_str().to_owned()
            })
            .collect();
        for (i, content) in got.iter().enumerate() {
            assert!(content.contains(&format!("<n>{}</n>", i + 1)), "{content}");
        }
        let none = notifications
            .recv_timeout(Duration::from_millis(100))
            .expect("no error");
        assert!(none.is_none(), "{none:?}");

        // RPCs still work on a subscribed session, with notifications interleaved.
        server
            .handle
            .notify(
                "2026-01-01T00:00:04Z",
                "<event xmlns=\"urn:x\"><n>4</n></event>",
            )
            .expect("notify");
        subscriber
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        let n = notifications
            .recv_timeout(Duration::from_secs(2))
            .expect("ok")
            .expect("n4")
            .expect("not lagged");
        assert!(n.content.as_str().contains("<n>4</n>"));

        // The bystander never subscribed and got nothing.
        let none = bystander_notifications
            .recv_timeout(Duration::from_millis(50))
            .expect("no error");
        assert!(none.is_none());

        // The iterator ends when the session ends.
        let subscriber_id = subscriber.session_id();
        bystander
            .call(&KillSession::new(subscriber_id).expect("session-id"))
            .expect("kill the subscriber");
        let rest: Vec<_> = notifications.collect();
        assert!(rest.is_empty(), "{rest:?}");
        assert!(eventually(Duration::from_secs(2), || subscriber.is_closed()));
        // A stream taken after the end ends at once.
        assert!(subscriber.notifications().recv().is_none());
        bystander.close().expect("close");
    });
}

#[test]
fn rpc_raw_and_custom_rpc() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let reply = client
            .rpc_raw("<my-rpc xmlns=\"urn:x\"><arg>21</arg></my-rpc>")
            .expect("rpc_raw");
        match &reply.content {
            ReplyContent::Other(payload) => {
                assert_eq!(payload.as_str(), "<result xmlns=\"urn:x\">42</result>")
            }
            other => panic!("expected custom output, got {other:?}"),
        }
        assert!(reply.errors.is_empty());
        let seen = server.seen("my-rpc").pop().expect("seen");
        assert_eq!(seen.namespace, URN_X);

        // rpc() with a prepared body, same thing.
        let body = RpcBody::raw("<my-rpc xmlns=\"urn:x\"><arg>1</arg></my-rpc>").expect("body");
        let reply = client.rpc(&body).expect("rpc");
        assert!(matches!(&reply.content, ReplyContent::Other(p) if p.as_str().contains(">2<")));

        // Malformed XML is a usage error and nothing is sent.
        let before = server.store().seen.len();
        assert!(matches!(
            client.rpc_raw("<my-rpc xmlns=\"urn:x\">"),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            client.rpc_raw("<p:my-rpc/>"),
            Err(Error::Usage(_))
        ));
        client
            .rpc_raw("<whoami xmlns=\"urn:x\"/>")
            .expect("the session still works");
        assert_eq!(server.store().seen.len(), before + 1);

        // An operation the server does not know.
        let errors = rpc_errors(client.rpc_raw("<nope xmlns=\"urn:y\"/>"));
        assert_eq!(errors[0].tag, ErrorTag::OperationNotSupported);
        client.close().expect("close");
    });
}

#[test]
fn rpc_errors_are_typed() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let err = client
            .rpc_raw("<fail xmlns=\"urn:x\"/>")
            .expect_err("an rpc-error");
        assert_eq!(err.rpc_errors().map(<[_]>::len), Some(2));
        let text = err.to_string();
        assert!(text.contains("invalid-value"), "{text}");
        let errors = rpc_errors(Err::<(), _>(err));
        let e = &errors[0];
        assert_eq!(e.error_type, ErrorType::Application);
        assert_eq!(e.tag, ErrorTag::InvalidValue);
        assert_eq!(e.severity, ErrorSeverity::Error);
        assert_eq!(e.app_tag.as_deref(), Some("too-large"));
        assert_eq!(e.path.as_deref(), Some("/x:top/x:v"));
        assert_eq!(
            e.message.as_ref().map(|m| m.text.as_str()),
            Some("v > 10 & v < 0 are both wrong")
        );
        let info = e.info.as_ref().expect("error-info");
        assert_eq!(info.child_text("bad-element").as_deref(), Some("v"));
        assert!(e.is_error());
        let w = &errors[1];
        assert_eq!(w.error_type, ErrorType::Protocol);
        assert_eq!(w.tag, ErrorTag::OperationFailed);
        assert_eq!(w.severity, ErrorSeverity::Warning);
        assert!(!w.is_error());

        // Warnings alone are not an error.
        let reply = client
            .rpc_raw("<warn xmlns=\"urn:x\"/>")
            .expect("a warning is not an error");
        assert_eq!(reply.errors.len(), 1);
        assert_eq!(reply.errors[0].severity, ErrorSeverity::Warning);
        assert_eq!(
            reply.errors[0].message.as_ref().map(|m| m.text.as_str()),
            Some("only a warning")
        );
        client.close().expect("close");
    });
}

#[test]
fn pipelining_replies_matched_in_any_order() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let ids: Vec<_> = (0..20)
            .map(|i| {
                let body =
                    RpcBody::raw(format!("<echo xmlns=\"urn:x\"><n>{i}</n></echo>")).expect("body");
                client.send(&body).expect("send")
            })
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 20, "distinct message-ids");
        for (i, id) in ids.iter().enumerate().rev() {
            let reply = client.recv(*id).expect("recv");
            assert_eq!(reply.message_id.as_deref(), Some(id.to_string().as_str()));
            match &reply.content {
                ReplyContent::Other(p) => {
                    assert_eq!(
                        p.as_str(),
                        format!("<echoed xmlns=\"urn:x\"><n>{i}</n></echoed>")
                    )
                }
                other => panic!("reply {i}: {other:?}"),
            }
        }
        assert_eq!(server.seen("echo").len(), 20);
        client.close().expect("close");
    });
}

/// Many threads calling on one session at once (more than the few a caller writes for
/// itself: a crowd leaves its requests to the writing thread, several per write) each get
/// their own reply, every time.
#[test]
fn many_threads_calling_at_once_each_get_their_own_reply() {
    with_deadline(60, || {
        let server = TestServer::start();
        let client = server.client();
        let threads: Vec<_> = (0..32)
            .map(|t| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let n = format!("{t}-{i}");
                        let body = RpcBody::raw(format!("<echo xmlns=\"urn:x\"><n>{n}</n></echo>"))
                            .expect("body");
                        match client.rpc(&body).expect("rpc").content {
                            ReplyContent::Other(p) => assert_eq!(
                                p.as_str(),
                                format!("<echoed xmlns=\"urn:x\"><n>{n}</n></echoed>")
                            ),
                            other => panic!("call {n}: {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a calling thread");
        }
        assert_eq!(server.seen("echo").len(), 32 * 50);
        client.close().expect("close");
    });
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[test]
fn cert_to_name_username_reaches_the_handler() {
    with_deadline(10, || {
        // The hook records the chain it was given; it is compared with the client's
        // certificate below.
        let calls = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let hook_calls = calls.clone();
        let server = TestServer::start_with(move |b| {
            b.cert_to_name(move |chain| {
                lock(&hook_calls).push(
                    chain
                        .first()
                        .map(|c| c.as_ref().to_vec())
                        .unwrap_or_default(),
                );
                (!chain.is_empty()).then(|| "admin".to_owned())
            })
        });
        let client = server.client();
        let reply = client.rpc_raw("<whoami xmlns=\"urn:x\"/>").expect("whoami");
        match &reply.content {
            ReplyContent::Other(p) => assert_eq!(p.as_str(), "<user xmlns=\"urn:x\">admin</user>"),
            other => panic!("{other:?}"),
        }
        let seen = server.seen("whoami").pop().expect("seen");
        assert_eq!(seen.username.as_deref(), Some("admin"));
        assert_eq!(seen.session_id, client.session_id());
        let calls = lock(&calls).clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0],
            server.pki.pki.client_cert_der().as_ref(),
            "the hook got the client's certificate"
        );
        client.close().expect("close");
    });
}

#[test]
fn cert_to_name_none_disconnects() {
    with_deadline(10, || {
        let server = TestServer::start_with(|b| b.cert_to_name(|_| None));
        let started = Instant::now();
        // RFC 7589: the certificate is mapped before our hello goes out, so an unmapped
        // client never even learns the server's capabilities: connecting itself fails.
        let outcome = server
            .connect(&server.pki.client_tls(), &TestServer::options())
            .map(|client| client.session_id());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                outcome,
                Err(Error::Closed(_) | Error::Io(_) | Error::Tls(_))
            ),
            "an unmapped client must be disconnected: {outcome:?}"
        );
        assert!(
            server.store().seen.is_empty(),
            "no request of an unmapped client reaches the handler"
        );
        assert!(eventually(Duration::from_secs(2), || server
            .handle
            .sessions()
            .is_empty()));
    });
}

#[test]
fn wrong_ca_is_refused() {
    with_deadline(10, || {
        let server = TestServer::start();
        let other = TestPki::new(Pki::other_ca());
        // Our client certificate is fine, but we trust another CA.
        let tls = ClientTlsOptions::new()
            .ca_file(&other.files.ca_cert)
            .client_cert_files(&server.pki.files.client_cert, &server.pki.files.client_key);
        let started = Instant::now();
        match server.connect(&tls, &TestServer::options()) {
            Err(Error::Tls(e)) => {
                let msg = e.to_string();
                assert!(msg.to_lowercase().contains("certificate"), "{msg}")
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(eventually(Duration::from_secs(2), || server
            .handle
            .sessions()
            .is_empty()));
    });
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    with_deadline(10, || {
        let server = TestServer::start();
        let other = TestPki::new(Pki::other_ca());
        let tls = ClientTlsOptions::new()
            .ca_file(&server.pki.files.ca_cert)
            .client_cert_files(&other.files.client_cert, &other.files.client_key);
        let started = Instant::now();
        let outcome = server
            .connect(&tls, &TestServer::options())
            .and_then(|client| client.call(&GetConfig::new(Datastore::Running)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                outcome,
                Err(Error::Tls(_) | Error::Closed(_) | Error::Io(_))
            ),
            "{outcome:?}"
        );
        assert!(server.store().seen.is_empty());
    });
}

#[test]
fn missing_client_certificate_is_refused() {
    with_deadline(10, || {
        let server = TestServer::start();
        let tls = ClientTlsOptions::new().ca_file(&server.pki.files.ca_cert);
        let started = Instant::now();
        let outcome = server
            .connect(&tls, &TestServer::options())
            .and_then(|client| client.call(&GetConfig::new(Datastore::Running)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not a hang: {:?}",
            started.elapsed()
        );
        match outcome {
            Err(Error::Tls(e)) => {
                let msg = e.to_string();
                assert!(msg.to_lowercase().contains("certificate"), "{msg}")
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
        assert!(server.store().seen.is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// Timeouts and the end of a session

#[test]
fn slow_handler_times_out_and_the_session_stays_usable() {
    with_deadline(10, || {
        let server = TestServer::start();
        let rpc_timeout = Duration::from_millis(300);
        let client = server
            .connect(
                &server.pki.client_tls(),
                &TestServer::options().rpc_timeout(Some(rpc_timeout)),
            )
            .expect("connect");

        let started = Instant::now();
        let result = client.rpc_raw("<slow xmlns=\"urn:x\"><ms>700</ms></slow>");
        let elapsed = started.elapsed();
        assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
        assert!(
            elapsed >= rpc_timeout && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert!(
            !client.is_closed(),
            "a timed-out RPC does not end the session"
        );

        // The server is still busy with the slow request; give the next RPC room. Its reply
        // comes after the late one, which must be discarded, not mistaken for this one.
        let id = client
            .send_with_timeout(
                &GetConfig::new(Datastore::Running),
                Some(Duration::from_secs(3)),
            )
            .expect("send");
        let reply = client.recv(id).expect("the next RPC works");
        assert_eq!(reply.data().map(|d| d.as_str()), Some(INITIAL_CONFIG));

        // And with the default (short) timeout again, now that the server is idle.
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        assert_eq!(data.as_str(), INITIAL_CONFIG);
        client.close().expect("close");
    });
}

#[test]
fn close_sends_close_session_and_the_server_forgets_the_session() {
    with_deadline(10, || {
        let server = TestServer::start();
        let client = server.client();
        let keep = server.client();
        let id = client.session_id();
        assert!(server.handle.sessions().contains(&id));
        let started = Instant::now();
        client.close().expect("close");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "close-session answered at once"
        );
        // `close` used to consume the client; now it takes `&self` (clones share the
        // session), so what follows a close must fail at once instead of being impossible.
        assert!(client.is_closed());
        let after = client.call(&GetConfig::new(Datastore::Running));
        assert!(matches!(after, Err(Error::Closed(_))), "{after:?}");
        client.close().expect("closing twice is fine");
        assert!(
            eventually(Duration::from_secs(2), || !server
                .handle
                .sessions()
                .contains(&id)),
            "{:?}",
            server.handle.sessions()
        );
        assert_eq!(server.handle.sessions(), vec![keep.session_id()]);
        // close-session is handled by the core, never by the handler.
        assert!(server.seen("close-session").is_empty());

        // Dropping without close releases the socket; the server notices too.
        let keep_id = keep.session_id();
        drop(keep);
        assert!(eventually(Duration::from_secs(2), || !server
            .handle
            .sessions()
            .contains(&keep_id)));
    });
}

#[test]
fn server_shutdown_ends_client_sessions() {
    with_deadline(10, || {
        let TestServer {
            handle,
            addr,
            store: _store,
            pki,
        } = TestServer::start();
        let client =
            Client::connect_tls_with(&addr.to_string(), &pki.client_tls(), &TestServer::options())
                .expect("connect");
        client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        let started = Instant::now();
        handle.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "shutdown took {:?}",
            started.elapsed()
        );
        let result = client.call(&GetConfig::new(Datastore::Running));
        assert!(
            matches!(result, Err(Error::Closed(_) | Error::Io(_))),
            "{result:?}"
        );
        client.close().expect("close after the server left");
    });
}

// ---------------------------------------------------------------------------------------------
// from_stream over plain TCP

/// A NETCONF server on plain TCP: `netconf_proto::Session` driven by hand. Answers every rpc
/// with `data`; returns the operation names it saw and how the session ended.
fn plain_tcp_peer(
    listener: TcpListener,
    data: &'static str,
) -> JoinHandle<(Vec<String>, CloseReason)> {
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut session = Session::server(Config::server(), 77, Instant::now());
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            loop {
                match session.poll_output() {
                    Output::Transmit(bytes) => socket.write_all(&bytes).expect("write"),
                    Output::Event(Event::Rpc { id, request }) => {
                        seen.push(request.operation.name.clone());
                        let reply = Reply::data(data).expect("data");
                        session.send_reply(id, reply).expect("reply");
                    }
                    Output::Event(Event::Closed { reason }) => {
                        // Everything queued before Closed has been written above.
                        return (seen, reason);
                    }
                    Output::Wait(_) => break,
                    _ => {}
                }
            }
            match socket.read(&mut buf) {
                Ok(0) => session.handle_eof(Instant::now()),
                Ok(n) => {
                    let _ = session.handle_input(&buf[..n], Instant::now());
                }
                Err(e) => panic!("plain peer read: {e}"),
            }
        }
    })
}

#[test]
fn from_stream_over_plain_tcp() {
    with_deadline(10, || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let data = "<top xmlns=\"urn:x\"><v>plain</v></top>";
        let peer = plain_tcp_peer(listener, data);

        let stream = TcpStream::connect(addr).expect("connect");
        let client = Client::from_stream_with(
            stream,
            &ClientOptions::new()
                .hello_timeout(Duration::from_secs(3))
                .rpc_timeout(Some(Duration::from_secs(3))),
        )
        .expect("hello over plain TCP");
        assert_eq!(client.session_id(), 77);
        assert_eq!(client.framing(), netconf_proto::Framing::Chunked);
        let got = client
            .call(&GetConfig::new(Datastore::Running))
            .expect("get-config");
        assert_eq!(got.as_str(), data);
        let got = client.call(&Get::new()).expect("get");
        assert_eq!(got.as_str(), data);
        client.close().expect("close");

        let (seen, reason) = peer.join().expect("the plain peer");
        assert_eq!(seen, ["get-config", "get"]);
        assert_eq!(reason, CloseReason::CloseSession);
    });
}
