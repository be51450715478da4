//! The built `netconf` binary against the library's blocking `Server`, whose handler records
//! each request: every command sends the operation it should, replies print as they should.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{lines_of, netconf, run, run_with_stdin, wait_for, ChildGuard, Out, TempDir};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::{Config, Reply, RpcError, Server};
use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
use netconf_tests::certs::{Pki, PkiFiles};

/// A library server on 127.0.0.1 with a recording handler.
struct Lib {
    server: Server,
    port: u16,
    files: PkiFiles,
    _dir: TempDir,
    seen: Arc<Mutex<Vec<String>>>,
}

const BIG: usize = 2 << 20;

fn answer(op: &str) -> Reply {
    match op {
        "get" | "get-config" | "get-data" => {
            Reply::data(format!("<r xmlns=\"urn:r\"><op>{op}</op></r>")).unwrap()
        }
        "get-schema" => Reply::data("module m {\n  namespace &quot;urn:m&quot;;\n}\n").unwrap(),
        "big" => Reply::data(format!("<big xmlns=\"urn:b\">{}</big>", "x".repeat(BIG))).unwrap(),
        "compute" => Reply::raw("<result xmlns=\"urn:x\">42</result>").unwrap(),
        "fail" => Reply::Errors(vec![
            RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                .with_path("/x:top/x:mtu")
                .with_message("mtu out of range")
                .with_info_xml("<bad-element>mtu</bad-element>")
                .unwrap(),
            RpcError::new(ErrorType::Protocol, ErrorTag::OperationFailed),
        ]),
        "warn" => Reply::Errors(vec![RpcError::new(
            ErrorType::Application,
            ErrorTag::OperationFailed,
        )
        .with_severity(ErrorSeverity::Warning)
        .with_message("just so you know")]),
        _ => Reply::Ok,
    }
}

impl Lib {
    fn start() -> Lib {
        let pki = Pki::generate();
        let dir = TempDir::new("lib");
        let files = pki.write_to_dir(dir.path()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let tls = pki.server_tls_options();
        let config = Config::server()
            .with_capability("urn:ietf:params:netconf:capability:xpath:1.0")
            .with_capability("urn:ietf:params:netconf:capability:candidate:1.0")
            .with_capability("urn:x:m?module=m&revision=2020-02-02&features=f1,f2");
        let server = Server::new(
            ServerOptions::new().config(config),
            move |request, _info| {
                let body = request.body.as_str().to_owned();
                log.lock().unwrap().push(body.clone());
                answer(&request.operation.name)
            },
        );
        let port = server.listen_tls("127.0.0.1:0", &tls).unwrap().port();
        Lib {
            server,
            port,
            files,
            _dir: dir,
            seen,
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = netconf();
        cmd.args(["--port", &self.port.to_string()])
            .arg("--ca")
            .arg(&self.files.ca_cert)
            .arg("--cert")
            .arg(&self.files.client_cert)
            .arg("--key")
            .arg(&self.files.client_key)
            .args(["--host", "localhost", "--timeout", "20"])
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        run(&mut self.cmd(args))
    }

    /// The last request body received.
    fn last(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    #[track_caller]
    fn sent(&self, args: &[&str], fragments: &[&str]) -> Out {
        let out = self.run(args);
        let body = self.last();
        for f in fragments {
            assert!(body.contains(f), "{args:?}: {f:?} not in {body}");
        }
        out
    }
}

#[test]
fn retrieval_commands_send_filters_and_options() {
    let lib = Lib::start();
    let out = lib.sent(
        &["get", "--xpath", "/t:top/t:a", "--ns", "t=urn:t"],
        &[
            "<get>",
            "type=\"xpath\"",
            "select=\"/t:top/t:a\"",
            "xmlns:t=\"urn:t\"",
        ],
    );
    out.ok();
    assert_eq!(out.stdout, "<r xmlns=\"urn:r\"><op>get</op></r>\n");
    lib.sent(
        &[
            "get-config",
            "--source",
            "candidate",
            "--with-defaults",
            "report-all-tagged",
        ],
        &[
            "<source><candidate/></source>",
            ">report-all-tagged</with-defaults>",
        ],
    )
    .ok();
    lib.sent(
        &["get-config", "--subtree", "<top xmlns=\"urn:t\"><a/></top>"],
        &["<filter type=\"subtree\"><top xmlns=\"urn:t\"><a/></top></filter>"],
    )
    .ok();
    lib.sent(
        &[
            "get-data",
            "--datastore",
            "operational",
            "--config-filter",
            "false",
            "--max-depth",
            "3",
            "--with-defaults",
            "trim",
            "--xpath",
            "/t:a",
            "--ns",
            "t=urn:t",
        ],
        &[
            "<datastore>ds:operational</datastore>",
            "<xpath-filter xmlns:t=\"urn:t\">/t:a</xpath-filter>",
            "<config-filter>false</config-filter>",
            "<max-depth>3</max-depth>",
            "<with-defaults>trim</with-defaults>",
        ],
    )
    .ok();
    let out = lib.run(&["get", "--ns", "t=urn:t"]);
    out.code(2);
    let out = lib.run(&["get", "--xpath", "/a", "--ns", "oops"]);
    out.code(2);
    assert!(out.stderr.contains("PREFIX=URI"));
}

#[test]
fn editing_commands_send_their_parameters() {
    let lib = Lib::start();
    lib.sent(
        &[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            "<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><a xmlns=\"urn:a\" xc:operation=\"remove\"/></config>",
            "--default-operation",
            "none",
            "--test-option",
            "test-then-set",
            "--error-option",
            "continue-on-error",
        ],
        &[
            "<target><candidate/></target>",
            "<default-operation>none</default-operation>",
            "<test-option>test-then-set</test-option>",
            "<error-option>continue-on-error</error-option>",
            "<config xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><a xmlns=\"urn:a\" xc:operation=\"remove\"/></config>",
        ],
    )
    .ok();
    lib.sent(
        &["copy-config", "--target", "startup", "--source", "running"],
        &["<target><startup/></target><source><running/></source>"],
    )
    .ok();
    lib.sent(
        &[
            "copy-config",
            "--target",
            "file:///backup.xml",
            "--config",
            "<a xmlns=\"urn:a\"/>",
        ],
        &[
            "<target><url>file:///backup.xml</url></target>",
            "<source><config><a xmlns=\"urn:a\"/></config></source>",
        ],
    )
    .ok();
    lib.sent(
        &["delete-config", "--target", "startup"],
        &["<delete-config><target><startup/></target></delete-config>"],
    )
    .ok();
    lib.sent(
        &["lock", "--target", "candidate"],
        &["<lock><target><candidate/></target></lock>"],
    )
    .ok();
    lib.sent(
        &["unlock"],
        &["<unlock><target><running/></target></unlock>"],
    )
    .ok();
    lib.sent(
        &["validate"],
        &["<validate><source><candidate/></source></validate>"],
    )
    .ok();
    lib.sent(
        &["validate", "--config", "<a xmlns=\"urn:a\"/>"],
        &["<validate><source><config><a xmlns=\"urn:a\"/></config></source></validate>"],
    )
    .ok();
    lib.sent(&["discard-changes"], &["<discard-changes/>"]).ok();
}

#[test]
fn commit_variants() {
    let lib = Lib::start();
    lib.sent(&["commit"], &["<commit/>"]).ok();
    lib.sent(
        &["commit", "--confirmed", "--confirm-timeout", "30", "--persist", "p1"],
        &["<commit><confirmed/><confirm-timeout>30</confirm-timeout><persist>p1</persist></commit>"],
    )
    .ok();
    lib.sent(
        &["commit", "--persist-id", "p1"],
        &["<commit><persist-id>p1</persist-id></commit>"],
    )
    .ok();
    lib.sent(&["cancel-commit"], &["<cancel-commit/>"]).ok();
    lib.sent(
        &["cancel-commit", "--persist-id", "p1"],
        &["<cancel-commit><persist-id>p1</persist-id></cancel-commit>"],
    )
    .ok();
    let out = lib.run(&["commit", "--confirmed", "--confirm-timeout", "0"]);
    out.code(2);
}

#[test]
fn hello_shows_modules_with_revision_and_features() {
    let lib = Lib::start();
    let out = lib.run(&["hello", "--format", "pretty"]);
    out.ok();
    assert!(out.stdout.contains(":xpath:1.0"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("m  2020-02-02  urn:x:m  features: f1,f2"),
        "{}",
        out.stdout
    );
}

#[test]
fn kill_session_get_schema_and_raw_rpcs() {
    let lib = Lib::start();
    // kill-session is answered by the server itself: session 4000 does not exist.
    let out = lib.run(&["kill-session", "4000"]);
    out.code(1);
    assert_eq!(
        out.stderr,
        "rpc-error: error invalid-value (protocol): no session 4000\n"
    );

    let dir = TempDir::new("schema");
    let file = dir.path().join("m.yang");
    lib.sent(
        &[
            "get-schema",
            "m",
            "--version",
            "2020-02-02",
            "--schema-format",
            "yin",
            "-o",
            file.to_str().unwrap(),
        ],
        &[
            "<get-schema xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\">",
            "<identifier>m</identifier><version>2020-02-02</version><format>yin</format>",
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "module m {\n  namespace \"urn:m\";\n}\n"
    );

    let out = lib.run(&["rpc", "<compute xmlns=\"urn:x\"><n>6</n></compute>"]);
    out.ok();
    assert_eq!(out.stdout, "<result xmlns=\"urn:x\">42</result>\n");

    let out = run_with_stdin(
        &mut lib.cmd(&["rpc", "-", "--format", "pretty"]),
        "<fail xmlns=\"urn:x\"/>",
    );
    out.code(1);
    assert_eq!(
        out.stderr,
        "rpc-error: error invalid-value (application) at /x:top/x:mtu: mtu out of range (bad-element mtu)\n\
         rpc-error: error operation-failed (protocol)\n"
    );

    let out = lib.run(&["rpc", "<warn xmlns=\"urn:x\"/>"]);
    out.ok();
    assert_eq!(
        out.stderr,
        "rpc-error: warning operation-failed (application): just so you know\n"
    );
}

#[test]
fn large_replies_arrive_whole() {
    let lib = Lib::start();
    let out = lib.run(&["rpc", "<big xmlns=\"urn:x\"/>"]);
    out.ok();
    assert_eq!(
        out.stdout.len(),
        BIG + "<big xmlns=\"urn:b\"></big>\n".len()
    );
    // stderr is not a terminal: no size line.
    assert_eq!(out.stderr, "");
}

#[test]
fn subscribe_with_stream_and_filter_prints_server_notifications() {
    let lib = Lib::start();
    let mut child = lib
        .cmd(&[
            "subscribe",
            "--stream",
            "alarms",
            "--xpath",
            "/a:alarm",
            "--ns",
            "a=urn:a",
            "--count",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(child.stderr.take().unwrap());
    let guard = ChildGuard(Some(child));
    wait_for(&stderr, "subscribed to alarms");
    let body = lib.last();
    assert!(
        body.contains("<stream>alarms</stream>") && body.contains("select=\"/a:alarm\""),
        "{body}"
    );
    assert_eq!(
        lib.server
            .notify("2024-01-01T00:00:00Z", "<alarm xmlns=\"urn:a\">1</alarm>")
            .unwrap(),
        1
    );
    lib.server
        .notify("2024-01-01T00:00:01Z", "<alarm xmlns=\"urn:a\">2</alarm>")
        .unwrap();
    let out = guard.wait_output(Duration::from_secs(20));
    out.ok();
    assert_eq!(
        out.stdout,
        "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"><eventTime>2024-01-01T00:00:00Z</eventTime><alarm xmlns=\"urn:a\">1</alarm></notification>\n\
         <notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"><eventTime>2024-01-01T00:00:01Z</eventTime><alarm xmlns=\"urn:a\">2</alarm></notification>\n"
    );

    let out = lib.run(&["subscribe", "--start-time", "yesterday"]);
    out.code(2);
    assert!(out.stderr.contains("RFC 3339"), "{}", out.stderr);
}

#[test]
fn server_that_closes_mid_subscription() {
    let lib = Lib::start();
    let mut child = lib
        .cmd(&["subscribe"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(child.stderr.take().unwrap());
    let guard = ChildGuard(Some(child));
    wait_for(&stderr, "subscribed");
    lib.server.shutdown();
    let out = guard.wait_output(Duration::from_secs(20));
    out.code(2);
}
