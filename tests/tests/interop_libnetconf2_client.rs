//! Interop: libnetconf2 2.0.24's client API (`tests/interop/nc_client.c`, compiled by the
//! test, connecting with `nc_connect_tls`) against our blocking and tokio servers.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.

#[path = "../interop/harness.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{OurServer, Scratch, ToyStore, BIG_BYTES};

fn setup(test: &str) -> Option<(Scratch, std::path::PathBuf)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::nacm_dir())?;
    let bin = harness::need(mode, test, harness::c_peer("nc_client"))?;
    Some((Scratch::new(test), bin))
}

fn operations(test: &str, start: fn(&Scratch, &ToyStore) -> OurServer) {
    let Some((scratch, bin)) = setup(test) else {
        return;
    };
    let store = ToyStore::new();
    let server = start(&scratch, &store);
    let mut cmd = Command::new(&bin);
    harness::client_args(&mut cmd, &scratch, server.port());
    cmd.args(["--tag", "libnetconf2"]);
    let out = harness::run_client(&mut cmd, Duration::from_secs(60));
    println!("{}", out.describe());
    harness::check_client_operations(
        &format!("libnetconf2 client vs {}", server.name()),
        &out,
        &store,
        "libnetconf2",
    );
}

fn big(test: &str, start: fn(&Scratch, &ToyStore) -> OurServer) {
    let Some((scratch, bin)) = setup(test) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&scratch, &store);
    let mut cmd = Command::new(&bin);
    harness::client_args(&mut cmd, &scratch, server.port());
    cmd.arg("--big").arg(BIG_BYTES.to_string());
    let out = harness::run_client(&mut cmd, Duration::from_secs(120));
    println!("{}", out.describe());
    assert!(
        out.ok(),
        "libnetconf2 client, 10 MB get-config:\n{}",
        out.describe()
    );
    let bytes: usize = out
        .field("BIG", "bytes")
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let secs: f64 = out
        .field("BIG", "seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1.0);
    assert!(bytes >= BIG_BYTES, "{}", out.describe());
    harness::record_timing(
        "libnetconf2 (C)",
        server.name(),
        bytes,
        secs,
        "bytes=<data> as libyang re-prints it",
    );
    assert_eq!(out.line("CLOSE"), Some("ok"));
}

#[test]
fn libnetconf2_client_operations_against_blocking_server() {
    operations(
        "libnetconf2_client_operations_against_blocking_server",
        OurServer::blocking,
    );
}

#[test]
fn libnetconf2_client_operations_against_tokio_server() {
    operations(
        "libnetconf2_client_operations_against_tokio_server",
        OurServer::tokio,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_from_blocking_server() {
    big(
        "libnetconf2_client_10mb_get_config_from_blocking_server",
        OurServer::blocking,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_from_tokio_server() {
    big(
        "libnetconf2_client_10mb_get_config_from_tokio_server",
        OurServer::tokio,
    );
}
