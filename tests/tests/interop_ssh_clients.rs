//! Interop over SSH (RFC 6242): independent SSH clients against our server, started by the
//! test on 127.0.0.1.
//!
//! * ncclient 0.7 (`manager.connect`, paramiko) and netconf-client 3.6 (`connect_ssh`,
//!   paramiko), through `tests/interop/py_client.py`;
//! * libnetconf2 2.0.24's client (`nc_connect_ssh`, libssh), through `tests/interop/nc_client.c`;
//! * OpenSSH's own client, `ssh -s ... netconf`, fed a hello and RPCs on stdin.
//!
//! Our servers are the three adapters' `Server::listen_ssh` with one netconf-ssh `SshServer`
//! (host key and users from the test's scratch directory). Every client checks our host key
//! (a fingerprint, a base64 key or a known_hosts file in the scratch directory); none may use
//! an agent or files under HOME.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.

#[path = "../interop/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{OurServer, Outcome, Scratch, SshKeys, ToyStore, BIG_BYTES, SSH_PASSWORD, SSH_USER};
use netconf_proto::operations::{Datastore, GetConfig};

/// When ncclient finishes a 10 MB reply it takes 10-15 s; past this it has stalled.
const PY_BIG_LIMIT: Duration = Duration::from_secs(60);

fn ssh_setup(test: &str) -> Option<(harness::Mode, Scratch, SshKeys)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::which("ssh-keygen"))?;
    let scratch = Scratch::new(test);
    let keys = SshKeys::new(&scratch).expect("ssh keys");
    Some((mode, scratch, keys))
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

/// After an external client, the server still serves: our blocking client
/// (`connect_ssh`) gets the get-config reply from it.
fn server_still_serves(keys: &SshKeys, server: &OurServer, big: bool) {
    let ssh = harness::our_ssh_options(keys, server.port(), SSH_USER).password(SSH_PASSWORD);
    let c = netconf_blocking::Client::connect_ssh(&format!("127.0.0.1:{}", server.port()), &ssh)
        .expect("a new SSH session after the external client");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("get-config after the external client");
    if big {
        assert!(data.len() >= BIG_BYTES);
        harness::record_timing(
            "netconf-blocking/ssh",
            server.name(),
            data.len(),
            t.elapsed().as_secs_f64(),
            "(same server, right after the external client)",
        );
    }
    c.close().expect("close-session");
}

type Start = fn(&SshKeys, &ToyStore) -> OurServer;

// ---- Python: ncclient and netconf-client over paramiko -------------------------------------

fn py_client(python: &PathBuf, lib: &str, keys: &SshKeys, port: u16) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(harness::interop_src().join("py_client.py"))
        .args(["--lib", lib, "--transport", "ssh", "--port"])
        .arg(port.to_string())
        .args([
            "--user",
            SSH_USER,
            "--password",
            SSH_PASSWORD,
            "--hostkey-b64",
        ])
        .arg(keys.host_b64());
    cmd
}

fn python_operations(test: &str, lib: &str, start: Start) {
    let Some((mode, _scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(python) = harness::need(mode, test, harness::venv_python()) else {
        return;
    };
    let store = ToyStore::new();
    let server = start(&keys, &store);
    let mut cmd = py_client(&python, lib, &keys, server.port());
    cmd.args(["--tag", lib]);
    let out = harness::run_client(&mut cmd, Duration::from_secs(60));
    println!("{}", out.describe());
    harness::check_client_operations(&format!("{lib} vs {}", server.name()), &out, &store, lib);
    wait_sessions_gone(&server);
    server_still_serves(&keys, &server, false);
}

fn check_big(client: &str, server: &str, out: &Outcome, note: &str) {
    assert!(out.ok(), "{client}, 10 MB get-config:\n{}", out.describe());
    let bytes: usize = out
        .field("BIG", "bytes")
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let secs: f64 = out
        .field("BIG", "seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1.0);
    assert!(bytes >= BIG_BYTES, "{}", out.describe());
    harness::record_timing(client, server, bytes, secs, note);
    assert_eq!(out.line("CLOSE"), Some("ok"));
}

fn python_big(test: &str, lib: &str, start: Start) {
    let Some((mode, _scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(python) = harness::need(mode, test, harness::venv_python()) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&keys, &store);
    let mut cmd = py_client(&python, lib, &keys, server.port());
    cmd.arg("--big")
        .arg(BIG_BYTES.to_string())
        .arg("--timeout")
        .arg(PY_BIG_LIMIT.as_secs().to_string());
    let out = harness::run_client(&mut cmd, PY_BIG_LIMIT + Duration::from_secs(15));
    println!("{}", out.describe());
    check_big(
        &format!("{lib}/ssh"),
        server.name(),
        &out,
        "bytes=whole <rpc-reply>",
    );
    wait_sessions_gone(&server);
    server_still_serves(&keys, &server, true);
}

/// The same 10 MB from libnetconf2's SSH server: the reference for our server's cells.
fn python_big_from_libnetconf2(test: &str, lib: &str) {
    let Some((mode, scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(python) = harness::need(mode, test, harness::venv_python()) else {
        return;
    };
    let Some(_) = harness::need(mode, test, harness::c_peer("nc_server")) else {
        return;
    };
    let (server, port) = harness::start_nc_server_ssh(&scratch, &keys, Some(BIG_BYTES))
        .unwrap_or_else(|e| panic!("{test}: the libnetconf2 SSH server did not start: {e}"));
    let mut cmd = py_client(&python, lib, &keys, port);
    cmd.arg("--big")
        .arg(BIG_BYTES.to_string())
        .arg("--timeout")
        .arg(PY_BIG_LIMIT.as_secs().to_string());
    let out = harness::run_client(&mut cmd, PY_BIG_LIMIT + Duration::from_secs(15));
    println!("{}", out.describe());
    check_big(
        &format!("{lib}/ssh"),
        "libnetconf2/ssh",
        &out,
        "bytes=whole <rpc-reply> (reference: no code of ours)",
    );
    drop(server);
}

#[test]
fn ncclient_operations_over_ssh_against_blocking_server() {
    python_operations(
        "ncclient_operations_over_ssh_against_blocking_server",
        "ncclient",
        OurServer::blocking_ssh,
    );
}

#[test]
fn ncclient_operations_over_ssh_against_tokio_server() {
    python_operations(
        "ncclient_operations_over_ssh_against_tokio_server",
        "ncclient",
        OurServer::tokio_ssh,
    );
}

#[test]
fn ncclient_operations_over_ssh_against_smol_server() {
    python_operations(
        "ncclient_operations_over_ssh_against_smol_server",
        "ncclient",
        OurServer::smol_ssh,
    );
}

#[test]
fn ncclient_10mb_get_config_over_ssh_from_blocking_server() {
    python_big(
        "ncclient_10mb_get_config_over_ssh_from_blocking_server",
        "ncclient",
        OurServer::blocking_ssh,
    );
}

#[test]
fn ncclient_10mb_get_config_over_ssh_from_tokio_server() {
    python_big(
        "ncclient_10mb_get_config_over_ssh_from_tokio_server",
        "ncclient",
        OurServer::tokio_ssh,
    );
}

#[test]
fn ncclient_10mb_get_config_over_ssh_from_smol_server() {
    python_big(
        "ncclient_10mb_get_config_over_ssh_from_smol_server",
        "ncclient",
        OurServer::smol_ssh,
    );
}

#[test]
fn netconf_client_operations_over_ssh_against_blocking_server() {
    python_operations(
        "netconf_client_operations_over_ssh_against_blocking_server",
        "netconf-client",
        OurServer::blocking_ssh,
    );
}

#[test]
fn netconf_client_operations_over_ssh_against_tokio_server() {
    python_operations(
        "netconf_client_operations_over_ssh_against_tokio_server",
        "netconf-client",
        OurServer::tokio_ssh,
    );
}

#[test]
fn netconf_client_operations_over_ssh_against_smol_server() {
    python_operations(
        "netconf_client_operations_over_ssh_against_smol_server",
        "netconf-client",
        OurServer::smol_ssh,
    );
}

#[test]
fn netconf_client_10mb_get_config_over_ssh_from_blocking_server() {
    python_big(
        "netconf_client_10mb_get_config_over_ssh_from_blocking_server",
        "netconf-client",
        OurServer::blocking_ssh,
    );
}

#[test]
fn netconf_client_10mb_get_config_over_ssh_from_tokio_server() {
    python_big(
        "netconf_client_10mb_get_config_over_ssh_from_tokio_server",
        "netconf-client",
        OurServer::tokio_ssh,
    );
}

#[test]
fn netconf_client_10mb_get_config_over_ssh_from_smol_server() {
    python_big(
        "netconf_client_10mb_get_config_over_ssh_from_smol_server",
        "netconf-client",
        OurServer::smol_ssh,
    );
}

#[test]
fn ncclient_10mb_get_config_over_ssh_from_libnetconf2_server() {
    python_big_from_libnetconf2(
        "ncclient_10mb_get_config_over_ssh_from_libnetconf2_server",
        "ncclient",
    );
}

#[test]
fn netconf_client_10mb_get_config_over_ssh_from_libnetconf2_server() {
    python_big_from_libnetconf2(
        "netconf_client_10mb_get_config_over_ssh_from_libnetconf2_server",
        "netconf-client",
    );
}

// ---- libnetconf2's client (libssh) -------------------------------------------------------------

/// How the C client logs in.
#[derive(Debug, Clone, Copy)]
enum Login {
    Password,
    PublicKey,
}

fn nc_client(bin: &PathBuf, keys: &SshKeys, port: u16, login: Login, schemas: &PathBuf) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--transport", "ssh", "--port"])
        .arg(port.to_string())
        .args(["--user", SSH_USER, "--hostkey-sha256"])
        .arg(&keys.host_fingerprint)
        .arg("--schemas")
        .arg(schemas);
    match login {
        Login::Password => {
            cmd.args(["--password", SSH_PASSWORD]);
        }
        Login::PublicKey => {
            cmd.arg("--pubkey")
                .arg(keys.user_key.with_extension("pub"))
                .arg("--privkey")
                .arg(&keys.user_key);
        }
    }
    cmd
}

/// libnetconf2's client over SSH; with `fetch`, its schema search path starts empty and our
/// server announces ietf-netconf-monitoring and answers `<get-schema>`.
fn libnetconf2_operations(test: &str, start: Start, login: Login, fetch: bool) {
    let Some((mode, scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(bin) = harness::need(mode, test, harness::c_peer("nc_client")) else {
        return;
    };
    let (store, search_path) = if fetch {
        (ToyStore::new().serving_schemas(), &scratch.empty_schema_dir)
    } else {
        (ToyStore::new(), &scratch.schema_dir)
    };
    let server = start(&keys, &store);
    let mut cmd = nc_client(&bin, &keys, server.port(), login, search_path);
    cmd.args(["--tag", "libnetconf2"]);
    let out = harness::run_client(&mut cmd, Duration::from_secs(60));
    println!("{}", out.describe());
    let who = format!("libnetconf2 client ({login:?}) vs {}", server.name());
    harness::check_client_operations(&who, &out, &store, "libnetconf2");
    assert!(
        out.stderr.contains("matches"),
        "{who}: the client did not check our host key:\n{}",
        out.describe()
    );
    let asked = store.ops().iter().filter(|op| *op == "get-schema").count();
    if fetch {
        assert!(asked > 0, "{who}: never sent <get-schema>");
        let written: Vec<_> = std::fs::read_dir(search_path)
            .expect("the fetched-schema directory")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            written.iter().any(|f| f.starts_with("ietf-netconf@")),
            "{who}: fetched ietf-netconf was not written to the scratch search path: {written:?}"
        );
    } else {
        assert_eq!(asked, 0, "{who}: asked for schemas");
    }
    wait_sessions_gone(&server);
}

fn libnetconf2_big(test: &str, start: Start) {
    let Some((mode, scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(bin) = harness::need(mode, test, harness::c_peer("nc_client")) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&keys, &store);
    let mut cmd = nc_client(
        &bin,
        &keys,
        server.port(),
        Login::Password,
        &scratch.schema_dir,
    );
    cmd.arg("--big").arg(BIG_BYTES.to_string());
    let out = harness::run_client(&mut cmd, Duration::from_secs(120));
    println!("{}", out.describe());
    check_big(
        "libnetconf2/ssh (C)",
        server.name(),
        &out,
        "bytes=<data> as libyang re-prints it",
    );
    wait_sessions_gone(&server);
}

#[test]
fn libnetconf2_client_operations_over_ssh_against_blocking_server() {
    libnetconf2_operations(
        "libnetconf2_client_operations_over_ssh_against_blocking_server",
        OurServer::blocking_ssh,
        Login::Password,
        false,
    );
}

#[test]
fn libnetconf2_client_publickey_fetches_schemas_over_ssh_from_blocking_server() {
    libnetconf2_operations(
        "libnetconf2_client_publickey_fetches_schemas_over_ssh_from_blocking_server",
        OurServer::blocking_ssh,
        Login::PublicKey,
        true,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_over_ssh_from_blocking_server() {
    libnetconf2_big(
        "libnetconf2_client_10mb_get_config_over_ssh_from_blocking_server",
        OurServer::blocking_ssh,
    );
}

#[test]
fn libnetconf2_client_operations_over_ssh_against_tokio_server() {
    libnetconf2_operations(
        "libnetconf2_client_operations_over_ssh_against_tokio_server",
        OurServer::tokio_ssh,
        Login::Password,
        false,
    );
}

#[test]
fn libnetconf2_client_publickey_fetches_schemas_over_ssh_from_tokio_server() {
    libnetconf2_operations(
        "libnetconf2_client_publickey_fetches_schemas_over_ssh_from_tokio_server",
        OurServer::tokio_ssh,
        Login::PublicKey,
        true,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_over_ssh_from_tokio_server() {
    libnetconf2_big(
        "libnetconf2_client_10mb_get_config_over_ssh_from_tokio_server",
        OurServer::tokio_ssh,
    );
}

#[test]
fn libnetconf2_client_operations_over_ssh_against_smol_server() {
    libnetconf2_operations(
        "libnetconf2_client_operations_over_ssh_against_smol_server",
        OurServer::smol_ssh,
        Login::Password,
        false,
    );
}

#[test]
fn libnetconf2_client_publickey_fetches_schemas_over_ssh_from_smol_server() {
    libnetconf2_operations(
        "libnetconf2_client_publickey_fetches_schemas_over_ssh_from_smol_server",
        OurServer::smol_ssh,
        Login::PublicKey,
        true,
    );
}

#[test]
fn libnetconf2_client_10mb_get_config_over_ssh_from_smol_server() {
    libnetconf2_big(
        "libnetconf2_client_10mb_get_config_over_ssh_from_smol_server",
        OurServer::smol_ssh,
    );
}

// ---- OpenSSH's client: `ssh -s ... netconf` ------------------------------------------------------

/// Whether `ssh -s` ended well: OpenSSH's client exits with the remote `exit-status`, which
/// netconf-ssh's server sends (0) before it closes the channel.
fn openssh_finished(out: &Outcome) {
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(0),
        "ssh -s failed:\n{:.3000}",
        out.describe()
    );
}

/// `ssh -s` to our server as [`SSH_USER`] with the user key, our host key from a scratch
/// known_hosts, and nothing from HOME, the agent or the system's ssh_config.
fn openssh(keys: &SshKeys, port: u16) -> Command {
    let mut cmd = Command::new(harness::which("ssh").expect("ssh"));
    cmd.args(["-F", "/dev/null", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            keys.known_hosts_for(port).display()
        ))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ])
        .arg(&keys.user_key)
        .arg("-p")
        .arg(port.to_string())
        .args(["-s", &format!("{SSH_USER}@127.0.0.1"), "netconf"]);
    cmd
}

const HELLO_1_0: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>";
const HELLO_1_1: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability>\
    <capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>";

fn rpc(id: u32, body: &str) -> String {
    format!(
        "<rpc message-id=\"{id}\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{body}</rpc>"
    )
}

fn chunked(message: &str) -> String {
    format!("\n#{}\n{message}\n##\n", message.len())
}

const GET_CONFIG: &str = "<get-config><source><running/></source></get-config>";

/// Splits what the server sent into its messages: the hello (end-of-message framed), then
/// either end-of-message framed messages or chunked ones.
fn messages(stdout: &str, chunked_after_hello: bool) -> Vec<String> {
    let (hello, rest) = stdout
        .split_once("]]>]]>")
        .unwrap_or_else(|| panic!("no hello in {stdout:.500}"));
    let mut out = vec![hello.to_owned()];
    if !chunked_after_hello {
        out.extend(
            rest.split("]]>]]>")
                .filter(|m| !m.trim().is_empty())
                .map(str::to_owned),
        );
        return out;
    }
    let mut rest = rest;
    let mut current = String::new();
    while let Some(at) = rest.find("\n#") {
        rest = &rest[at + 2..];
        if let Some(after) = rest.strip_prefix("#\n") {
            out.push(std::mem::take(&mut current));
            rest = after;
            continue;
        }
        let (len, after) = rest.split_once('\n').expect("a chunk header");
        let len: usize = len.parse().expect("a chunk size");
        current.push_str(&after[..len]);
        rest = &after[len..];
    }
    out
}

/// Hello, get-config and close-session written at once on ssh's stdin (so the hello and the
/// first RPC reach our server in one piece), then EOF.
/// How `ssh -s` gets its stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdin {
    /// Everything at once, then EOF, as `printf ... | ssh -s host netconf` does: the hello and
    /// the first RPC reach our server in one piece, and the client's EOF right behind them.
    Piped,
    /// Everything at once, EOF only after the close-session reply (a person at a terminal).
    Held,
}

/// Hello, get-config and close-session written at once on ssh's stdin.
fn openssh_session(test: &str, start: Start, base_1_1: bool, stdin: Stdin) {
    let Some((mode, _scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(_) = harness::need(mode, test, harness::which("ssh")) else {
        return;
    };
    let store = ToyStore::new();
    let server = start(&keys, &store);
    let input = if base_1_1 {
        format!(
            "{HELLO_1_1}{}{}",
            chunked(&rpc(1, GET_CONFIG)),
            chunked(&rpc(2, "<close-session/>"))
        )
    } else {
        format!(
            "{HELLO_1_0}{}]]>]]>{}]]>]]>",
            rpc(1, GET_CONFIG),
            rpc(2, "<close-session/>")
        )
    };
    let mut cmd = openssh(&keys, server.port());
    let limit = Duration::from_secs(30);
    let out = match stdin {
        Stdin::Piped => harness::run_client_with_stdin(&mut cmd, Some(input.into_bytes()), limit),
        Stdin::Held => harness::run_client_interactive(&mut cmd, input.as_bytes(), "<ok/>", limit),
    };
    println!("{}", out.describe());
    openssh_finished(&out);
    let msgs = messages(&out.stdout, base_1_1);
    assert!(msgs[0].contains("<session-id>"), "hello: {}", msgs[0]);
    assert!(
        msgs[0].contains("urn:ietf:params:netconf:base:1.1"),
        "our server offers base:1.1"
    );
    assert_eq!(msgs.len(), 3, "hello and two replies expected: {msgs:#?}");
    assert!(
        msgs[1].contains("message-id=\"1\"") && msgs[1].contains(harness::OUR_GREETING),
        "get-config reply: {}",
        msgs[1]
    );
    assert!(
        msgs[2].contains("message-id=\"2\"") && msgs[2].contains("<ok/>"),
        "close-session reply: {}",
        msgs[2]
    );
    assert_eq!(store.ops(), ["get-config"]);
    wait_sessions_gone(&server);
}

/// The 10 MB reply through OpenSSH's client: the whole `ssh -s` run (connect, key exchange,
/// hello, get-config, close) is timed, so it bounds the transport's share from above.
fn openssh_big(test: &str, start: Start) {
    let Some((mode, _scratch, keys)) = ssh_setup(test) else {
        return;
    };
    let Some(_) = harness::need(mode, test, harness::which("ssh")) else {
        return;
    };
    let store = ToyStore::with_big(BIG_BYTES);
    let server = start(&keys, &store);
    let input = format!(
        "{HELLO_1_1}{}{}",
        chunked(&rpc(1, GET_CONFIG)),
        chunked(&rpc(2, "<close-session/>"))
    );
    let out = harness::run_client_interactive(
        &mut openssh(&keys, server.port()),
        input.as_bytes(),
        "<ok/>",
        Duration::from_secs(60),
    );
    openssh_finished(&out);
    let msgs = messages(&out.stdout, true);
    assert_eq!(msgs.len(), 3, "hello and two replies expected");
    assert!(
        msgs[1].len() >= BIG_BYTES,
        "reply of {} bytes",
        msgs[1].len()
    );
    assert!(msgs[1].trim_end().ends_with("</rpc-reply>"));
    assert!(msgs[2].contains("<ok/>"));
    harness::record_timing(
        "OpenSSH-ssh-s",
        server.name(),
        msgs[1].len(),
        out.elapsed.as_secs_f64(),
        "whole ssh run: connect+auth+hello+get-config+close; bytes=whole <rpc-reply>",
    );
    wait_sessions_gone(&server);
}

#[test]
fn openssh_client_base10_piped_against_blocking_server() {
    openssh_session(
        "openssh_client_base10_piped_against_blocking_server",
        OurServer::blocking_ssh,
        false,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_piped_against_blocking_server() {
    openssh_session(
        "openssh_client_base11_piped_against_blocking_server",
        OurServer::blocking_ssh,
        true,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_interactive_against_blocking_server() {
    openssh_session(
        "openssh_client_base11_interactive_against_blocking_server",
        OurServer::blocking_ssh,
        true,
        Stdin::Held,
    );
}

#[test]
fn openssh_client_10mb_get_config_from_blocking_server() {
    openssh_big(
        "openssh_client_10mb_get_config_from_blocking_server",
        OurServer::blocking_ssh,
    );
}

#[test]
fn openssh_client_base10_piped_against_tokio_server() {
    openssh_session(
        "openssh_client_base10_piped_against_tokio_server",
        OurServer::tokio_ssh,
        false,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_piped_against_tokio_server() {
    openssh_session(
        "openssh_client_base11_piped_against_tokio_server",
        OurServer::tokio_ssh,
        true,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_interactive_against_tokio_server() {
    openssh_session(
        "openssh_client_base11_interactive_against_tokio_server",
        OurServer::tokio_ssh,
        true,
        Stdin::Held,
    );
}

#[test]
fn openssh_client_10mb_get_config_from_tokio_server() {
    openssh_big(
        "openssh_client_10mb_get_config_from_tokio_server",
        OurServer::tokio_ssh,
    );
}

#[test]
fn openssh_client_base10_piped_against_smol_server() {
    openssh_session(
        "openssh_client_base10_piped_against_smol_server",
        OurServer::smol_ssh,
        false,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_piped_against_smol_server() {
    openssh_session(
        "openssh_client_base11_piped_against_smol_server",
        OurServer::smol_ssh,
        true,
        Stdin::Piped,
    );
}

#[test]
fn openssh_client_base11_interactive_against_smol_server() {
    openssh_session(
        "openssh_client_base11_interactive_against_smol_server",
        OurServer::smol_ssh,
        true,
        Stdin::Held,
    );
}

#[test]
fn openssh_client_10mb_get_config_from_smol_server() {
    openssh_big(
        "openssh_client_10mb_get_config_from_smol_server",
        OurServer::smol_ssh,
    );
}
