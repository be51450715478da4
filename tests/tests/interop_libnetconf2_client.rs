//! Interop: libnetconf2 2.0.24's client API (`tests/interop/nc_client.c`, compiled by the
//! test, connecting with `nc_connect_tls`) against our blocking, tokio and smol servers.
//!
//! libnetconf2 builds a YANG context before it sends anything. It finds the modules either
//! in its search path (a scratch copy of `tests/interop/yang/`) or, when the server announces
//! ietf-netconf-monitoring, by `<get-schema>` from our server, writing what it fetched into
//! its search path (a scratch directory, never a system one). One test takes each path.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.

#[path = "../interop/harness.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{OurServer, Scratch, ToyStore, BIG_BYTES};

fn setup(test: &str) -> Option<(Scratch, std::path::PathBuf)> {
    let mode = harness::mode(test)?;
    let bin = harness::need(mode, test, harness::c_peer("nc_client"))?;
    Some((Scratch::new(test), bin))
}

/// Where the client finds its YANG modules.
#[derive(Debug, Clone, Copy)]
enum Schemas {
    /// Its search path holds the shipped modules; the server offers no `<get-schema>`.
    Shipped,
    /// Its search path is empty; the server announces ietf-netconf-monitoring and answers
    /// `<get-schema>`.
    Fetched,
}

fn operations(test: &str, start: fn(&Scratch, &ToyStore) -> OurServer, schemas: Schemas) {
    let Some((scratch, bin)) = setup(test) else {
        return;
    };
    let (store, search_path) = match schemas {
        Schemas::Shipped => (ToyStore::new(), &scratch.schema_dir),
        Schemas::Fetched => (ToyStore::new().serving_schemas(), &scratch.empty_schema_dir),
    };
    let server = start(&scratch, &store);
    let mut cmd = Command::new(&bin);
    harness::client_args(&mut cmd, &scratch, server.port());
    cmd.arg("--schemas").arg(search_path);
    cmd.args(["--tag", "libnetconf2"]);
    let out = harness::run_client(&mut cmd, Duration::from_secs(60));
    println!("{}", out.describe());
    let who = format!("libnetconf2 client vs {} ({schemas:?})", server.name());
    harness::check_client_operations(&who, &out, &store, "libnetconf2");
    let asked: Vec<String> = store
        .ops()
        .into_iter()
        .filter(|op| op == "get-schema")
        .collect();
    match schemas {
        Schemas::Shipped => assert!(asked.is_empty(), "{who}: asked for schemas: {asked:?}"),
        Schemas::Fetched => {
            assert!(!asked.is_empty(), "{who}: never sent <get-schema>");
            // What libnetconf2 fetched, it wrote into its search path: the scratch copy.
            let written: Vec<_> = std::fs::read_dir(search_path)
                .expect("the fetched-schema directory")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                written.iter().any(|f| f.starts_with("ietf-netconf@")),
                "{who}: fetched ietf-netconf was not written to the scratch search path: {written:?}"
            );
        }
    }
}

fn big(test: &str, start: fn(&Scratch, &ToyStore) -> OurServer) {
    let Some((scratch, bin)) = setup(test) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&scratch, &store);
    let mut cmd = Command::new(&bin);
    harness::client_args(&mut cmd, &scratch, server.port());
    cmd.arg("--schemas").arg(&scratch.schema_dir);
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
        Schemas::Shipped,
    );
}

#[test]
fn libnetconf2_client_operations_against_tokio_server() {
    operations(
        "libnetconf2_client_operations_against_tokio_server",
        OurServer::tokio,
        Schemas::Shipped,
    );
}

#[test]
fn libnetconf2_client_fetches_schemas_from_blocking_server() {
    operations(
        "libnetconf2_client_fetches_schemas_from_blocking_server",
        OurServer::blocking,
        Schemas::Fetched,
    );
}

#[test]
fn libnetconf2_client_fetches_schemas_from_tokio_server() {
    operations(
        "libnetconf2_client_fetches_schemas_from_tokio_server",
        OurServer::tokio,
        Schemas::Fetched,
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

#[test]
fn libnetconf2_client_operations_against_smol_server() {
    operations(
        "libnetconf2_client_operations_against_smol_server",
        OurServer::smol,
        Schemas::Shipped,
    );
}

#[test]
fn libnetconf2_client_fetches_schemas_from_smol_server() {
    operations(
        "libnetconf2_client_fetches_schemas_from_smol_server",
        OurServer::smol,
        Schemas::Fetched,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_from_smol_server() {
    big(
        "libnetconf2_client_10mb_get_config_from_smol_server",
        OurServer::smol,
    );
}
