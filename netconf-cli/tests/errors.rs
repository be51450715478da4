//! Transport, TLS and file errors: exit status 2 and a message that names the cause.

mod common;

use std::net::TcpListener;

use common::{closed_port, netconf, run, Serve, TempDir};

#[test]
fn refused_connection() {
    let serve = Serve::start(&[]);
    let port = closed_port();
    let out = run(serve.cmd(&["hello"]).args(["--port", &port.to_string()]));
    out.code(2);
    assert_eq!(
        out.stderr,
        format!("netconf: cannot connect to 127.0.0.1:{port}: connection refused\n")
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn server_certificate_from_another_ca() {
    let serve = Serve::start(&[]);
    let other = Serve::start(&[]);
    let out = run(serve.cmd(&["get-config"]).arg("--ca").arg(&other.ca));
    out.code(2);
    let expected = format!(
        "netconf: server certificate not trusted by --ca {} (invalid peer certificate: UnknownIssuer)\n",
        other.ca.display()
    );
    assert_eq!(out.stderr, expected);
}

#[test]
fn client_certificate_from_another_ca() {
    let serve = Serve::start(&[]);
    let other = Serve::start(&[]);
    let out = run(serve
        .cmd(&["hello"])
        .arg("--cert")
        .arg(&other.cert)
        .arg("--key")
        .arg(&other.key));
    out.code(2);
    assert!(
        out.stderr.starts_with(&format!(
            "netconf: the server refused our client certificate --cert {}",
            other.cert.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn no_client_certificate() {
    let serve = Serve::start(&[]);
    let mut cmd = netconf();
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &serve.port.to_string(),
        "--ca",
    ])
    .arg(&serve.ca)
    .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.starts_with(
            "netconf: the server requires a client certificate: pass --cert and --key"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_and_bad_files() {
    let serve = Serve::start(&[]);
    let out = run(serve.cmd(&["hello"]).args(["--ca", "/nonexistent/ca.pem"]));
    out.code(2);
    assert!(out
        .stderr
        .starts_with("netconf: cannot read --ca /nonexistent/ca.pem: "));
    let out = run(serve.cmd(&["hello"]).args(["--key", "/nonexistent/k.pem"]));
    out.code(2);
    assert!(out
        .stderr
        .starts_with("netconf: cannot read --key /nonexistent/k.pem: "));
    let out = serve.run(&["edit-config", "--config", "/nonexistent/edit.xml"]);
    out.code(2);
    assert!(out
        .stderr
        .starts_with("netconf: cannot read --config /nonexistent/edit.xml: "));

    // A key that is not a CA certificate.
    let out = run(serve.cmd(&["hello"]).arg("--ca").arg(&serve.key));
    out.code(2);
    assert!(
        out.stderr.contains("--ca") && out.stderr.contains("bad CA certificate"),
        "{}",
        out.stderr
    );

    let dir = TempDir::new("bad");
    let broken = dir.file("broken.xml", "<interfaces><interface></interfaces>");
    let out = serve.run(&["edit-config", "--config", broken.to_str().unwrap()]);
    out.code(2);
    assert!(out.stderr.contains("not well-formed"), "{}", out.stderr);

    // SSH is the default: without credentials nothing is dialled.
    let mut cmd = netconf();
    cmd.args(["--port", &serve.port.to_string(), "--user", "u", "hello"]);
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr
            .starts_with("netconf: no SSH credentials: pass --password P"),
        "{}",
        out.stderr
    );
    // TLS asked for, without a CA.
    let mut cmd = netconf();
    cmd.args(["--port", &serve.port.to_string(), "--tls", "hello"]);
    let out = run(&mut cmd);
    out.code(2);
    assert!(out.stderr.contains("pass --ca FILE"), "{}", out.stderr);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Serve::start(&[]);
    let started = std::time::Instant::now();
    let out = run(serve
        .cmd(&["hello"])
        .args(["--port", &port.to_string(), "--timeout", "1"]));
    out.code(2);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(listener);
}

#[test]
fn usage_errors_exit_2() {
    let out = run(netconf().args(["get-config", "--source", "nowhere"]));
    out.code(2);
    assert!(out
        .stderr
        .contains("is not running, candidate, startup or a URL"));
    let out = run(netconf().args(["commit", "--persist", "x"]));
    out.code(2);
    let out = run(netconf().arg("frobnicate"));
    out.code(2);
}

#[test]
fn help_documents_commands_and_the_edit_rule() {
    let out = run(netconf().arg("--help"));
    out.ok();
    for cmd in [
        "hello",
        "get",
        "get-config",
        "get-data",
        "edit-config",
        "copy-config",
        "delete-config",
        "lock",
        "unlock",
        "validate",
        "commit",
        "cancel-commit",
        "discard-changes",
        "kill-session",
        "get-schema",
        "rpc",
        "subscribe",
        "serve",
        "demo",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "{cmd} missing from --help"
        );
    }
    assert!(
        out.stdout.contains("NETCONF_HOST")
            || run(netconf().args(["hello", "--help"]))
                .stdout
                .contains("NETCONF_HOST")
    );
    let out = run(netconf().args(["serve", "--help"]));
    out.ok();
    assert!(out.stdout.contains("The edit rule"));
    assert!(out.stdout.contains("nc:operation=\"replace\""));
}
