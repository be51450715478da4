//! Every client command of the built `netconf` binary against `netconf serve`, over TLS.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{lines_of, netconf, run, run_with_stdin, wait_for, ChildGuard, Serve, TempDir};
use netconf_blocking::operations::{CreateSubscription, Datastore, Lock};

const NS: &str = "urn:example:netconf-cli-demo";
const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// Subscribes `client` to notifications (RFC 5277 create-subscription).
fn subscribe(client: &netconf_blocking::Client) -> netconf_blocking::Notifications {
    let notifications = client.notifications();
    client.call(&CreateSubscription::new()).unwrap();
    notifications
}

/// The content of the next `n` notifications (RFC 6470 config changes and confirmed-commit
/// events, in the order the server made them).
fn notifications(subscription: &netconf_blocking::Notifications, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            subscription
                .recv_timeout(Duration::from_secs(20))
                .expect("the session is open")
                .expect("a notification in time")
                .expect("no notification lost")
                .content
                .as_str()
                .to_owned()
        })
        .collect()
}

#[test]
fn hello_groups_capabilities_and_prints_xml_when_piped() {
    let serve = Serve::start(&[]);
    let out = serve.run(&["hello", "--format", "pretty"]);
    out.ok();
    for needle in [
        "session-id: ",
        "framing:    chunked (base:1.1)",
        "base (2):",
        "1.1  urn:ietf:params:netconf:base:1.1",
        "standard (",
        ":candidate:1.0",
        ":notification:1.0",
        "modules (",
        "netconf-cli-demo            2025-01-01  urn:example:netconf-cli-demo",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in {}", out.stdout);
    }
    assert!(
        !out.stdout.contains(":xpath:"),
        "xpath is not implemented, so not advertised"
    );
    // stdout is a pipe here: xml is the default.
    let out = serve.run(&["hello"]);
    out.ok();
    assert!(out
        .stdout
        .starts_with(&format!("<hello xmlns=\"{NC}\"><capabilities>")));
    assert!(out.stdout.contains("<session-id>"));
}

#[test]
fn get_config_with_subtree_filters_from_inline_file_and_stdin() {
    let serve = Serve::start(&[]);
    let all = serve.run(&["get-config"]);
    all.ok();
    assert!(all
        .stdout
        .starts_with(&format!("<interfaces xmlns=\"{NS}\">")));
    assert!(all.stdout.contains("<hostname>demo-router</hostname>"));

    let filter =
        format!("<interfaces xmlns=\"{NS}\"><interface><name>eth1</name></interface></interfaces>");
    let out = serve.run(&["get-config", "--source", "running", "--subtree", &filter]);
    out.ok();
    assert!(out.stdout.contains("<name>eth1</name>") && !out.stdout.contains("eth0"));

    let dir = TempDir::new("filter");
    let file = dir.file("filter.xml", "<?xml version=\"1.0\"?>\n<system/>\n");
    let out = serve.run(&["get-config", "--subtree", file.to_str().unwrap()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("<system xmlns=\"{NS}\"><hostname>demo-router</hostname></system>\n")
    );

    let out = run_with_stdin(
        &mut serve.cmd(&["get-config", "--source", "candidate", "--subtree", "-"]),
        "<interfaces><interface><name/></interface></interfaces>",
    );
    out.ok();
    assert_eq!(
        out.stdout,
        format!("<interfaces xmlns=\"{NS}\"><interface><name>eth0</name></interface><interface><name>eth1</name></interface></interfaces>\n")
    );
    // An empty filter selects nothing.
    let out = serve.run(&["get-config", "--subtree", "<filter/>"]);
    out.ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn get_and_get_data() {
    let serve = Serve::start(&[]);
    let out = serve.run(&["get"]);
    out.ok();
    assert!(out.stdout.contains("<hostname>demo-router</hostname>"));
    assert!(out
        .stdout
        .contains("<identifier>netconf-cli-demo</identifier>"));
    let out = serve.run(&[
        "get",
        "--subtree",
        "<netconf-state/>",
        "--with-defaults",
        "report-all",
    ]);
    out.ok();
    assert!(!out.stdout.contains("hostname") && out.stdout.contains("<schemas>"));

    let out = serve.run(&[
        "get-data",
        "--datastore",
        "operational",
        "--subtree",
        "<system/>",
    ]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("<system xmlns=\"{NS}\"><hostname>demo-router</hostname></system>\n")
    );
    let out = serve.run(&["get-data", "--datastore", "candidate"]);
    out.ok();
    assert!(out.stdout.contains("eth0") && !out.stdout.contains("netconf-state"));
}

#[test]
fn edit_candidate_validate_commit_and_discard() {
    let serve = Serve::start(&[]);
    let dir = TempDir::new("edit");
    let edit = dir.file(
        "edit.xml",
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <config xmlns=\"{NC}\" xmlns:nc=\"{NC}\">\n\
               <interfaces xmlns=\"{NS}\">\n\
                 <interface nc:operation=\"delete\"><name>eth0</name></interface>\n\
                 <interface><name>eth1</name><mtu>9000</mtu></interface>\n\
               </interfaces>\n\
             </config>\n"
        ),
    );
    serve
        .run(&[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            edit.to_str().unwrap(),
        ])
        .ok();
    let candidate = serve.run(&["get-config", "--source", "candidate"]);
    assert!(!candidate.stdout.contains("eth0") && candidate.stdout.contains("<mtu>9000</mtu>"));
    let running = serve.run(&["get-config"]);
    assert!(
        running.stdout.contains("eth0"),
        "running is untouched before commit"
    );

    serve.run(&["validate"]).ok();
    serve.run(&["validate", "--source", "running"]).ok();
    serve
        .run(&["validate", "--config", &format!("<x xmlns=\"{NS}\"/>")])
        .ok();
    serve.run(&["commit"]).ok();
    let running = serve.run(&["get-config"]);
    assert_eq!(running.stdout, candidate.stdout);

    // Another change, then discard-changes takes candidate back to running.
    let out = run_with_stdin(
        &mut serve.cmd(&["edit-config", "--target", "candidate", "--config", "-"]),
        &format!("<system xmlns=\"{NS}\"><hostname>changed</hostname></system>"),
    );
    out.ok();
    assert!(serve
        .run(&["get-config", "--source", "candidate"])
        .stdout
        .contains("changed"));
    serve.run(&["discard-changes"]).ok();
    assert_eq!(
        serve.run(&["get-config", "--source", "candidate"]).stdout,
        running.stdout
    );
}

#[test]
fn edit_options_and_rpc_errors() {
    let serve = Serve::start(&[]);
    // delete of something absent: data-missing, exit 1, a readable line.
    let missing = format!(
        "<interfaces xmlns=\"{NS}\" xmlns:nc=\"{NC}\"><interface nc:operation=\"delete\"><name>eth9</name></interface></interfaces>"
    );
    let out = serve.run(&["edit-config", "--target", "running", "--config", &missing]);
    out.code(1);
    assert_eq!(
        out.stderr,
        "rpc-error: error data-missing (application) at /interfaces/interface[name='eth9']: delete: the element does not exist\n"
    );
    assert_eq!(out.stdout, "");

    // test-only changes nothing.
    let change = format!("<system xmlns=\"{NS}\"><hostname>t</hostname></system>");
    serve
        .run(&[
            "edit-config",
            "--config",
            &change,
            "--test-option",
            "test-only",
        ])
        .ok();
    assert!(serve.run(&["get-config"]).stdout.contains("demo-router"));

    // rollback-on-error keeps nothing of a failing edit; continue-on-error keeps the rest.
    let mixed = format!(
        "<config xmlns:nc=\"{NC}\"><system xmlns=\"{NS}\"><hostname>r2</hostname></system>\
         <system xmlns=\"{NS}\" nc:operation=\"create\"/></config>"
    );
    serve
        .run(&[
            "edit-config",
            "--config",
            &mixed,
            "--error-option",
            "rollback-on-error",
        ])
        .code(1);
    assert!(serve.run(&["get-config"]).stdout.contains("demo-router"));
    let out = serve.run(&[
        "edit-config",
        "--config",
        &mixed,
        "--error-option",
        "continue-on-error",
    ]);
    out.code(1);
    assert!(out.stderr.contains("data-exists"));
    assert!(serve
        .run(&["get-config"])
        .stdout
        .contains("<hostname>r2</hostname>"));

    // default-operation replace replaces the whole datastore.
    serve
        .run(&[
            "edit-config",
            "--config",
            &change,
            "--default-operation",
            "replace",
        ])
        .ok();
    assert_eq!(
        serve.run(&["get-config"]).stdout,
        format!("<system xmlns=\"{NS}\"><hostname>t</hostname></system>\n")
    );
    // default-operation none ignores data without an operation.
    serve
        .run(&[
            "edit-config",
            "--config",
            &format!("<x xmlns=\"{NS}\"/>"),
            "--default-operation",
            "none",
        ])
        .ok();
    assert!(!serve.run(&["get-config"]).stdout.contains("<x"));
}

#[test]
fn copy_and_delete_config() {
    let serve = Serve::start(&[]);
    serve.run(&["delete-config", "--target", "startup"]).ok();
    assert_eq!(serve.run(&["get-config", "--source", "startup"]).stdout, "");
    serve
        .run(&["copy-config", "--target", "startup", "--source", "running"])
        .ok();
    assert!(serve
        .run(&["get-config", "--source", "startup"])
        .stdout
        .contains("eth0"));
    serve
        .run(&[
            "copy-config",
            "--target",
            "candidate",
            "--config",
            &format!("<config xmlns=\"{NC}\"><only xmlns=\"{NS}\"/></config>"),
        ])
        .ok();
    assert_eq!(
        serve.run(&["get-config", "--source", "candidate"]).stdout,
        format!("<only xmlns=\"{NS}\"/>\n")
    );
    let out = serve.run(&["delete-config", "--target", "running"]);
    out.code(1);
    assert!(
        out.stderr.contains("operation-not-supported") && out.stderr.contains("cannot be deleted")
    );
    let out = serve.run(&[
        "copy-config",
        "--target",
        "running",
        "--source",
        "file:///tmp/x.xml",
    ]);
    out.code(1);
    assert!(out.stderr.contains(":url"));
}

#[test]
fn locks_are_enforced_per_session_and_kill_session_releases_them() {
    let serve = Serve::start(&[]);
    let holder = serve.library_client();
    holder
        .call(&Lock::new(Datastore::Candidate))
        .expect("library client locks candidate");
    let id = holder.session_id().to_string();

    let out = serve.run(&["lock", "--target", "candidate"]);
    out.code(1);
    assert!(
        out.stderr
            .starts_with("rpc-error: error lock-denied (protocol)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("(session-id {id})")),
        "{}",
        out.stderr
    );

    let change = format!("<system xmlns=\"{NS}\"><hostname>x</hostname></system>");
    let out = serve.run(&["edit-config", "--target", "candidate", "--config", &change]);
    out.code(1);
    assert!(out.stderr.contains("in-use") && out.stderr.contains(&format!("session-id {id}")));
    serve.run(&["discard-changes"]).code(1);
    serve.run(&["commit"]).code(1);
    let out = serve.run(&["unlock", "--target", "candidate"]);
    out.code(1);
    assert!(out.stderr.contains("operation-failed"));

    // Running is not locked: edits there still work.
    serve
        .run(&["edit-config", "--target", "running", "--config", &change])
        .ok();

    serve.run(&["kill-session", &id]).ok();
    serve.run(&["lock", "--target", "candidate"]).ok();
    serve.run(&["kill-session", "4000"]).code(1);
    drop(holder);
}

#[test]
fn a_lock_of_a_closed_session_is_released() {
    let serve = Serve::start(&[]);
    let holder = serve.library_client();
    holder.call(&Lock::new(Datastore::Running)).unwrap();
    serve.run(&["lock"]).code(1);
    holder.close().unwrap();
    serve.run(&["lock"]).ok();
    serve.run(&["unlock"]).code(1); // the lock ended with the command's session
}

#[test]
fn confirmed_commit_cancel_and_timeout_rollback() {
    let serve = Serve::start(&[]);
    let change = format!("<system xmlns=\"{NS}\"><hostname>new</hostname></system>");
    serve
        .run(&["edit-config", "--target", "candidate", "--config", &change])
        .ok();

    // Persistent confirmed commit, then cancelled from another session.
    serve
        .run(&[
            "commit",
            "--confirmed",
            "--confirm-timeout",
            "60",
            "--persist",
            "tok",
        ])
        .ok();
    assert!(serve.run(&["get-config"]).stdout.contains("new"));
    let out = serve.run(&["cancel-commit"]);
    out.code(1);
    assert!(out.stderr.contains("persist-id"));
    serve.run(&["cancel-commit", "--persist-id", "tok"]).ok();
    assert!(serve.run(&["get-config"]).stdout.contains("demo-router"));
    serve.run(&["cancel-commit"]).code(1);

    // Confirmed and then confirmed again with --persist-id: it stays.
    serve
        .run(&["commit", "--confirmed", "--persist", "p2"])
        .ok();
    serve.run(&["commit", "--persist-id", "p2"]).ok();
    serve.run(&["cancel-commit", "--persist-id", "p2"]).code(1);
    assert!(serve.run(&["get-config"]).stdout.contains("new"));

    // A confirmed commit not confirmed in time is rolled back, which subscribers see.
    let watcher = serve.library_client();
    let subscription = subscribe(&watcher);
    serve
        .run(&[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            &format!("<system xmlns=\"{NS}\"><hostname>brief</hostname></system>"),
        ])
        .ok();
    serve
        .run(&[
            "commit",
            "--confirmed",
            "--confirm-timeout",
            "1",
            "--persist",
            "p3",
        ])
        .ok();
    let seen = notifications(&subscription, 4);
    assert!(seen[0].contains("<netconf-config-change") && seen[0].contains("<session-id>"));
    assert!(seen[1].contains("<confirm-event>start</confirm-event><timeout>1</timeout>"));
    assert!(
        seen[2].contains("<changed-by><server/></changed-by>"),
        "{seen:?}"
    );
    assert!(seen[3].contains("<confirm-event>timeout</confirm-event>"));
    assert!(serve
        .run(&["get-config"])
        .stdout
        .contains("<hostname>new</hostname>"));
}

#[test]
fn a_confirmed_commit_without_persist_ends_with_its_session() {
    let serve = Serve::start(&[]);
    let watcher = serve.library_client();
    let subscription = subscribe(&watcher);
    let change = format!("<system xmlns=\"{NS}\"><hostname>fleeting</hostname></system>");
    serve
        .run(&["edit-config", "--target", "candidate", "--config", &change])
        .ok();
    let out = serve.run(&["commit", "--confirmed"]);
    out.ok();
    assert!(out.stderr.contains("use --persist ID"), "{}", out.stderr);
    let seen = notifications(&subscription, 4);
    assert!(seen[0].contains("<session-id>"));
    assert!(seen[1].contains("<confirm-event>start</confirm-event>"));
    assert!(seen[2].contains("<server/>"), "{seen:?}");
    assert!(seen[3].contains("<confirm-event>cancel</confirm-event>"));
    assert!(serve.run(&["get-config"]).stdout.contains("demo-router"));
}

#[test]
fn get_schema_to_stdout_and_file() {
    let serve = Serve::start(&[]);
    let out = serve.run(&["get-schema", "netconf-cli-demo"]);
    out.ok();
    assert!(out.stdout.starts_with("module netconf-cli-demo {"));
    assert!(out
        .stdout
        .contains("namespace \"urn:example:netconf-cli-demo\";"));
    let dir = TempDir::new("schema");
    let file = dir.path().join("demo.yang");
    serve
        .run(&[
            "get-schema",
            "netconf-cli-demo",
            "--version",
            "2025-01-01",
            "--schema-format",
            "yang",
            "-o",
            file.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out.stdout);
    let out = serve.run(&["get-schema", "ietf-nothing"]);
    out.code(1);
    assert!(out.stderr.contains("invalid-value") && out.stderr.contains("no schema"));
}

#[test]
fn raw_rpc_from_file_stdin_and_inline() {
    let serve = Serve::start(&[]);
    let dir = TempDir::new("rpc");
    let file = dir.file(
        "rpc.xml",
        &format!(
            "<?xml version=\"1.0\"?>\n<nc:rpc xmlns:nc=\"{NC}\" message-id=\"7\">\n  \
             <nc:get-config><nc:source><nc:running/></nc:source>\
             <nc:filter type=\"subtree\"><system xmlns=\"{NS}\"/></nc:filter></nc:get-config>\n</nc:rpc>\n"
        ),
    );
    let out = serve.run(&["rpc", file.to_str().unwrap()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("<system xmlns=\"{NS}\"><hostname>demo-router</hostname></system>\n")
    );
    let out = run_with_stdin(
        &mut serve.cmd(&["rpc", "-"]),
        &format!("<discard-changes xmlns=\"{NC}\"/>"),
    );
    out.ok();
    assert_eq!(out.stdout, "<ok/>\n");
    let out = serve.run(&["rpc", "<frobnicate xmlns=\"urn:x\"/>"]);
    out.code(1);
    assert!(out.stderr.contains("operation-not-supported"));
    let out = serve.run(&["rpc", "<broken>"]);
    out.code(2);
    assert!(out.stderr.contains("not well-formed"));
}

#[test]
fn subscribe_prints_notifications_as_they_arrive() {
    let serve = Serve::start(&[]);
    for format in ["xml", "pretty"] {
        let mut child = serve
            .cmd(&[
                "subscribe",
                "--stream",
                "NETCONF",
                "--count",
                "1",
                "--format",
                format,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = lines_of(child.stderr.take().unwrap());
        let guard = ChildGuard(Some(child));
        wait_for(&stderr, "subscribed to NETCONF");
        serve
            .run(&[
                "edit-config",
                "--config",
                &format!("<system xmlns=\"{NS}\"><hostname>{format}</hostname></system>"),
            ])
            .ok();
        let out = guard.wait_output(Duration::from_secs(20));
        out.ok();
        match format {
            "xml" => {
                assert!(out.stdout.starts_with(
                    "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"><eventTime>"
                ));
                assert!(out.stdout.contains("<netconf-config-change xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-notifications\">"));
                assert!(out
                    .stdout
                    .contains("/demo:system/demo:hostname</target><operation>replace</operation>"));
            }
            _ => {
                assert!(out.stdout.starts_with("notification at "));
                assert!(out.stdout.contains("\n  <changed-by>\n"));
            }
        }
    }
    let out = serve.run(&["subscribe", "--stream", "OTHER"]);
    out.code(1);
    assert!(out.stderr.contains("no stream"));
}

#[test]
fn pretty_output_indents_and_keeps_text() {
    let dir = TempDir::new("pretty");
    let data = dir.file(
        "data.xml",
        "<data xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
         <top xmlns=\"urn:t\"><a>x &amp; y &lt; z</a><b>  spaced  </b><c><d>1</d></c></top></data>",
    );
    let serve = Serve::start(&["--data", data.to_str().unwrap()]);
    let out = serve.run(&["get-config", "--format", "pretty"]);
    out.ok();
    assert_eq!(
        out.stdout,
        "<top xmlns=\"urn:t\">\n  <a>x &amp; y &lt; z</a>\n  <b>  spaced  </b>\n  <c>\n    <d>1</d>\n  </c>\n</top>\n"
    );
    let out = serve.run(&["get-config", "--format", "xml"]);
    assert_eq!(
        out.stdout,
        "<top xmlns=\"urn:t\"><a>x &amp; y &lt; z</a><b>  spaced  </b><c><d>1</d></c></top>\n"
    );
    let out = serve.run(&["commit", "--format", "pretty"]);
    assert_eq!(out.stdout, "ok\n");
}

#[test]
fn settings_from_the_environment() {
    let serve = Serve::start(&[]);
    let env = |cmd: &mut std::process::Command| {
        cmd.env("NETCONF_HOST", "127.0.0.1")
            .env("NETCONF_PORT", serve.port.to_string())
            .env("NETCONF_CA", &serve.ca)
            .env("NETCONF_CERT", &serve.cert)
            .env("NETCONF_KEY", &serve.key)
            .env("NETCONF_TIMEOUT", "20");
    };
    let mut cmd = netconf();
    env(&mut cmd);
    cmd.args(["get-config", "--subtree", "<system/>"]);
    let out = run(&mut cmd);
    out.ok();
    assert!(out.stdout.starts_with("<system"));

    let mut cmd = netconf();
    env(&mut cmd);
    cmd.env("NETCONF_FORMAT", "pretty").arg("hello");
    assert!(run(&mut cmd).ok().stdout.starts_with("session-id: "));

    // The certificate holds 127.0.0.1 and localhost; a server name it lacks is refused.
    let mut cmd = netconf();
    env(&mut cmd);
    cmd.env("NETCONF_SERVER_NAME", "localhost").arg("hello");
    run(&mut cmd).ok();
    let mut cmd = netconf();
    env(&mut cmd);
    cmd.env("NETCONF_SERVER_NAME", "router.example")
        .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr
            .contains("not valid for the name \"router.example\""),
        "{}",
        out.stderr
    );

    // Flags win over the environment.
    let mut cmd = netconf();
    env(&mut cmd);
    cmd.env("NETCONF_PORT", "1")
        .args(["--port", &serve.port.to_string(), "hello"]);
    run(&mut cmd).ok();
}

#[test]
fn serve_takes_its_certificates_from_flags_only() {
    // Client settings in the environment must not become the server's identity.
    let first = Serve::start(&[]);
    let second = Serve::start_with(&[], |cmd| {
        cmd.env("NETCONF_CA", "/nonexistent/ca.pem")
            .env("NETCONF_CERT", "/nonexistent/cert.pem")
            .env("NETCONF_KEY", "/nonexistent/key.pem")
            .env("NETCONF_PORT", "1");
    });
    second.run(&["hello"]).ok();

    // Explicit server certificates: the first server's PKI files.
    let pki = first.ca.parent().unwrap();
    let mut cmd = netconf();
    cmd.args(["serve", "--port", "0", "--ca"])
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("server.pem"))
        .arg("--key")
        .arg(pki.join("server.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let _guard = ChildGuard(Some(child));
    let seen = wait_for(&lines, "listening on 127.0.0.1:");
    let port = seen.last().unwrap().rsplit(':').next().unwrap().to_owned();
    let out = run(first
        .cmd(&["hello", "--format", "pretty"])
        .args(["--port", &port]));
    out.ok();

    let out = run(netconf().args(["serve", "--port", "0", "--ca", "ca.pem"]));
    out.code(2);
    assert!(out.stderr.contains("all of --ca"));
    let out = run(netconf().args(["serve", "--port", "0", "--data", "/nonexistent.xml"]));
    out.code(2);
    assert!(out.stderr.contains("cannot read --data /nonexistent.xml"));
}
