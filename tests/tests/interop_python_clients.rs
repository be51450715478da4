//! Interop: the Python clients ncclient 0.7.x (`manager.connect_tls`) and netconf-client 3.6.x
//! (`connect_tls` + `Manager`) against our blocking, tokio and smol servers, driven by
//! `tests/interop/py_client.py` in the venv that `tests/interop/install` makes.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.
//!
//! ncclient's TLS read loop can strand decrypted bytes inside OpenSSL (it `select()`s on the
//! socket, then reads 4096 bytes): a TLS record larger than one such read stalls it. Our
//! servers therefore cap record plaintext at 4096 bytes (`ServerTlsOptions::max_record_plaintext`),
//! and the 10 MB test requires ncclient to finish against them. After every client the test
//! checks that our server is unharmed (its session is cleaned up, new clients are served).

#[path = "../interop/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{OurServer, Outcome, Scratch, ToyStore, BIG_BYTES};
use netconf_proto::operations::{Datastore, GetConfig};

/// How long ncclient may take for the 10 MB reply before we call it stalled. When it does
/// finish it takes 11-15 s here (its first large reply is slow), so 45 s tells the two apart.
const NCCLIENT_BIG_LIMIT: Duration = Duration::from_secs(45);

fn setup(test: &str) -> Option<(Scratch, PathBuf)> {
    let mode = harness::mode(test)?;
    let python = harness::need(mode, test, harness::venv_python())?;
    Some((Scratch::new(test), python))
}

fn py_client(python: &PathBuf, lib: &str, scratch: &Scratch, port: u16) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(harness::interop_src().join("py_client.py"))
        .args(["--lib", lib]);
    harness::client_args(&mut cmd, scratch, port);
    cmd
}

fn operations(test: &str, lib: &str, start: fn(&Scratch, &ToyStore) -> OurServer) {
    let Some((scratch, python)) = setup(test) else {
        return;
    };
    let store = ToyStore::new();
    let server = start(&scratch, &store);
    let mut cmd = py_client(&python, lib, &scratch, server.port());
    cmd.args(["--tag", lib]);
    let out = harness::run_client(&mut cmd, Duration::from_secs(60));
    println!("{}", out.describe());
    harness::check_client_operations(&format!("{lib} vs {}", server.name()), &out, &store, lib);
    wait_sessions_gone(&server);
}

/// Our server must drop the session once the client is gone (closed or killed).
fn wait_sessions_gone(server: &OurServer) {
    let start = Instant::now();
    while !server.sessions().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}: sessions {:?} still open 10 s after the client went away",
            server.name(),
            server.sessions()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After a client finished (or was killed), the server still serves: our own blocking client
/// gets the 10 MB reply from it.
fn server_still_serves(scratch: &Scratch, server: &OurServer) {
    let c = netconf_blocking::Client::connect_tls(
        &format!("127.0.0.1:{}", server.port()),
        &harness::client_tls(scratch),
    )
    .expect("a new session after the Python client");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("get-config after the Python client");
    assert!(data.len() >= BIG_BYTES);
    harness::record_timing(
        "netconf-blocking",
        server.name(),
        data.len(),
        t.elapsed().as_secs_f64(),
        "(same server, right after the Python client)",
    );
    c.close().expect("close-session");
}

/// Runs `lib`'s 10 MB get-config against `port`; returns the outcome and whether it stalled.
fn run_big(python: &PathBuf, lib: &str, scratch: &Scratch, port: u16) -> (Outcome, bool) {
    let limit = if lib == "ncclient" {
        NCCLIENT_BIG_LIMIT
    } else {
        Duration::from_secs(90)
    };
    let mut cmd = py_client(python, lib, scratch, port);
    cmd.arg("--big")
        .arg(BIG_BYTES.to_string())
        .arg("--timeout")
        .arg(limit.as_secs().to_string());
    let out = harness::run_client(&mut cmd, limit + Duration::from_secs(15));
    println!("{}", out.describe());
    let stalled = out.status.is_none()
        || out
            .line("FAIL")
            .is_some_and(|why| why.starts_with("BIG") && why.contains("Timeout"));
    (out, stalled)
}

/// Checks a finished 10 MB run and records its timing.
fn check_big(lib: &str, server: &str, out: &Outcome) {
    assert!(out.ok(), "{lib}, 10 MB get-config:\n{}", out.describe());
    let bytes: usize = out
        .field("BIG", "bytes")
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let secs: f64 = out
        .field("BIG", "seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1.0);
    assert!(bytes >= BIG_BYTES, "{}", out.describe());
    harness::record_timing(lib, server, bytes, secs, "bytes=whole <rpc-reply>");
    assert_eq!(out.line("CLOSE"), Some("ok"));
}

fn big(test: &str, lib: &str, start: fn(&Scratch, &ToyStore) -> OurServer) {
    let Some((scratch, python)) = setup(test) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&scratch, &store);
    let (out, stalled) = run_big(&python, lib, &scratch, server.port());
    // Our servers keep each TLS record within one 4096-byte read, so ncclient's read loop
    // cannot strand the end of a reply: a stall here is our regression, not ncclient's.
    assert!(
        !stalled,
        "{lib} did not finish the 10 MB get-config within {NCCLIENT_BIG_LIMIT:?} against {}",
        server.name()
    );
    check_big(lib, server.name(), &out);
    // Whatever the client did, our server cleans up and keeps serving.
    wait_sessions_gone(&server);
    server_still_serves(&scratch, &server);
}

/// The same 10 MB get-config from libnetconf2's server: the reference for our servers' cells.
fn big_from_libnetconf2(test: &str, lib: &str) {
    let Some(mode) = harness::mode(test) else {
        return;
    };
    let Some(python) = harness::need(mode, test, harness::venv_python()) else {
        return;
    };
    let Some(_) = harness::need(mode, test, harness::c_peer("nc_server")) else {
        return;
    };
    let scratch = Scratch::new(test);
    let (server, port) = harness::start_nc_server(&scratch, Some(BIG_BYTES))
        .unwrap_or_else(|e| panic!("{test}: the libnetconf2 server did not start: {e}"));
    let (out, stalled) = run_big(&python, lib, &scratch, port);
    if lib == "ncclient" && stalled {
        // Not expected (libnetconf2 sends the end-of-chunks mark in a record of its own, so
        // nothing is left inside OpenSSL), but a peer-versus-peer cell: record it only.
        println!("KNOWN-PEER-BUG ncclient stalled on libnetconf2's 10 MB reply too");
        harness::record_timing(
            "ncclient",
            "libnetconf2",
            0,
            out.elapsed.as_secs_f64(),
            "STALLED",
        );
        return;
    }
    check_big(lib, "libnetconf2", &out);
    drop(server);
}

#[test]
fn ncclient_10mb_get_config_from_libnetconf2_server() {
    big_from_libnetconf2(
        "ncclient_10mb_get_config_from_libnetconf2_server",
        "ncclient",
    );
}

#[test]
fn netconf_client_10mb_get_config_from_libnetconf2_server() {
    big_from_libnetconf2(
        "netconf_client_10mb_get_config_from_libnetconf2_server",
        "netconf-client",
    );
}

#[test]
fn ncclient_operations_against_blocking_server() {
    operations(
        "ncclient_operations_against_blocking_server",
        "ncclient",
        OurServer::blocking,
    );
}

#[test]
fn ncclient_operations_against_tokio_server() {
    operations(
        "ncclient_operations_against_tokio_server",
        "ncclient",
        OurServer::tokio,
    );
}

#[test]
fn netconf_client_operations_against_blocking_server() {
    operations(
        "netconf_client_operations_against_blocking_server",
        "netconf-client",
        OurServer::blocking,
    );
}

#[test]
fn netconf_client_operations_against_tokio_server() {
    operations(
        "netconf_client_operations_against_tokio_server",
        "netconf-client",
        OurServer::tokio,
    );
}

#[test]
fn ncclient_10mb_get_config_from_blocking_server() {
    big(
        "ncclient_10mb_get_config_from_blocking_server",
        "ncclient",
        OurServer::blocking,
    );
}

#[test]
fn ncclient_10mb_get_config_from_tokio_server() {
    big(
        "ncclient_10mb_get_config_from_tokio_server",
        "ncclient",
        OurServer::tokio,
    );
}

#[test]
fn netconf_client_10mb_get_config_from_blocking_server() {
    big(
        "netconf_client_10mb_get_config_from_blocking_server",
        "netconf-client",
        OurServer::blocking,
    );
}

#[test]
fn netconf_client_10mb_get_config_from_tokio_server() {
    big(
        "netconf_client_10mb_get_config_from_tokio_server",
        "netconf-client",
        OurServer::tokio,
    );
}

#[test]
fn ncclient_operations_against_smol_server() {
    operations(
        "ncclient_operations_against_smol_server",
        "ncclient",
        OurServer::smol,
    );
}

#[test]
fn netconf_client_operations_against_smol_server() {
    operations(
        "netconf_client_operations_against_smol_server",
        "netconf-client",
        OurServer::smol,
    );
}

#[test]
fn ncclient_10mb_get_config_from_smol_server() {
    big(
        "ncclient_10mb_get_config_from_smol_server",
        "ncclient",
        OurServer::smol,
    );
}

#[test]
fn netconf_client_10mb_get_config_from_smol_server() {
    big(
        "netconf_client_10mb_get_config_from_smol_server",
        "netconf-client",
        OurServer::smol,
    );
}
