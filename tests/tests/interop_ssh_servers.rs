//! Interop over SSH (RFC 6242): our three clients (`Client::connect_ssh_with` of
//! netconf-blocking, netconf-tokio and netconf-smol) against three independent SSH servers,
//! each started by the test on 127.0.0.1:
//!
//! * libnetconf2 2.0.24's own SSH endpoint (`tests/interop/nc_server.c`, libssh 0.10);
//! * yuma123's netconfd (Debian `netconfd` 2.13) behind OpenSSH's sshd, whose `netconf`
//!   subsystem is yuma's `netconf-subsystem` relaying to netconfd's UNIX socket;
//! * libnetconf2's server in stdio mode (`nc_server --stdio`) as sshd's `netconf` subsystem:
//!   OpenSSH's SSH layer, libnetconf2's NETCONF layer.
//!
//! Host keys are always checked, against a known_hosts file in the test's scratch directory.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.

#[path = "../interop/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Scratch, SshKeys, BIG_BYTES, SSH_PASSWORD, SSH_USER};
use netconf_proto::client::ClientOptions;
use netconf_proto::message::ErrorTag;
use netconf_proto::operations::{
    Commit, CreateSubscription, Datastore, DiscardChanges, EditConfig, Get, GetConfig, GetSchema,
    InlineConfig, Lock, Rpc, SchemaFormat, Unlock, Validate,
};
use netconf_proto::{Error, Framing};
use tokio_stream::StreamExt;

const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";
const CANDIDATE: &str = "urn:ietf:params:netconf:capability:candidate:1.0";
/// SSH handshake, authentication, subsystem and hello exchange with a local peer.
const HELLO_LIMIT: Duration = Duration::from_secs(2);
/// An async test that takes longer than this has hung: fail it with the peers' logs.
const TEST_LIMIT: Duration = Duration::from_secs(120);

fn greeting(text: &str) -> InlineConfig {
    InlineConfig::new(format!(
        "<interop xmlns=\"urn:example:interop\"><greeting>{text}</greeting></interop>"
    ))
    .expect("well-formed")
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn options() -> ClientOptions {
    ClientOptions::new().hello_timeout(Duration::from_secs(5))
}

/// Runs `body` on a fresh tokio runtime, failing after [`TEST_LIMIT`] with `logs()`.
fn on_tokio<F: std::future::Future<Output = ()>>(test: &str, logs: impl Fn() -> String, body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
            panic!("{test} hung for {TEST_LIMIT:?}:\n{}", logs());
        }
    })
}

/// Runs `body` on smol, failing after [`TEST_LIMIT`] with `logs()`.
fn on_smol<F: std::future::Future<Output = ()>>(test: &str, logs: impl Fn() -> String, body: F) {
    smol::block_on(smol::future::or(body, async {
        smol::Timer::after(TEST_LIMIT).await;
        panic!("{test} hung for {TEST_LIMIT:?}:\n{}", logs())
    }))
}

fn check_schema(text: &str, module: &str) {
    assert!(
        text.contains(&format!("module {module} {{")),
        "get-schema {module} returned something else: {:.300}",
        text
    );
}

fn check_unknown_schema(result: Result<String, Error>) {
    match result {
        Err(Error::Rpc(errors)) => {
            assert!(!errors.is_empty(), "an rpc-error without errors");
            println!("get-schema of an unknown module: {errors:?}");
        }
        other => panic!("get-schema of an unknown module: expected an rpc-error, got {other:?}"),
    }
}

/// The 10 MB document closes after its last entry (netconfd puts `<nacm>` after it).
fn check_big(data: &str, client: &str, server: &str, took: Duration, note: &str) {
    assert!(
        data.len() >= BIG_BYTES,
        "{client}: 10 MB get-config from {server} returned only {} bytes",
        data.len()
    );
    let closed = data.rfind("</item>").zip(data.rfind("</interop>"));
    assert!(
        closed.is_some_and(|(item, end)| item < end),
        "{client}: the 10 MB reply is cut: ...{}",
        &data[data.len().saturating_sub(200)..]
    );
    harness::record_timing(client, server, data.len(), took.as_secs_f64(), note);
}

// ---- libnetconf2: its own SSH endpoint, and stdio behind sshd -------------------------------

/// The operations against a libnetconf2 server (same answers over both transports), written
/// once for the three clients: `$aw` is `.await` for the async ones and nothing for blocking.
macro_rules! libnetconf2_operations {
    ($c:expr, $tag:expr, $($aw:tt)*) => {{
        let c = $c;
        let tag: &str = $tag;
        assert_ne!(c.session_id(), 0);
        assert!(c.capabilities().contains_uri(BASE_1_1));
        assert!(c.capabilities().contains_uri(CANDIDATE));
        assert_eq!(c.framing(), Framing::Chunked);

        let running = GetConfig::new(Datastore::Running);
        let data = c.call(&running)$($aw)*.expect("get-config");
        assert!(data.as_str().contains("hello from libnetconf2"), "{data}");
        let state = c.call(&Get::new())$($aw)*.expect("get");
        assert!(state.as_str().contains("<uptime>42</uptime>"), "{state}");

        let set = format!("set by {tag}");
        c.call(&EditConfig::new(Datastore::Running, greeting(&set)))$($aw)*
            .expect("edit-config running");
        let data = c.call(&running)$($aw)*.expect("get-config after edit");
        assert!(data.as_str().contains(&set), "{data}");

        c.call(&Lock::new(Datastore::Running))$($aw)*.expect("lock");
        c.call(&Unlock::new(Datastore::Running))$($aw)*.expect("unlock");
        let committed = format!("committed by {tag}");
        c.call(&EditConfig::new(Datastore::Candidate, greeting(&committed)))$($aw)*
            .expect("edit-config candidate");
        c.call(&Commit::new())$($aw)*.expect("commit");
        let data = c.call(&running)$($aw)*.expect("get-config after commit");
        assert!(data.as_str().contains(&committed), "{data}");
        c.call(&DiscardChanges::new())$($aw)*.expect("discard-changes");
        c.call(&Validate::new(Datastore::Running))$($aw)*.expect("validate");

        check_schema(
            &c.call(&GetSchema::new("ietf-netconf"))$($aw)*.expect("get-schema"),
            "ietf-netconf",
        );
        check_schema(
            &c.call(
                &GetSchema::new("ietf-netconf")
                    .version("2013-09-29")
                    .format(SchemaFormat::Yang),
            )$($aw)*
            .expect("get-schema again"),
            "ietf-netconf",
        );
        let unknown = c.call(&GetSchema::new("no-such-module"))$($aw)*;
        if let Err(Error::Rpc(errors)) = &unknown {
            assert_eq!(errors[0].tag, ErrorTag::InvalidValue, "{errors:?}");
        }
        check_unknown_schema(unknown);
        c.call(&running)$($aw)*.expect("get-config after an rpc-error");
        committed
    }};
}

/// Three requests in flight on one SSH channel (async clients).
async fn async_pipelined<G, S, D>(get_config: G, get: S, schema: D, committed: &str)
where
    G: std::future::Future<Output = Result<netconf_proto::XmlPayload, Error>>,
    S: std::future::Future<Output = Result<netconf_proto::XmlPayload, Error>>,
    D: std::future::Future<Output = Result<String, Error>>,
{
    let (a, b, d) = tokio::join!(get_config, get, schema);
    assert!(a
        .expect("pipelined get-config")
        .as_str()
        .contains(committed));
    assert!(b.expect("pipelined get").as_str().contains("<uptime>"));
    check_schema(&d.expect("pipelined get-schema"), "ietf-netconf-monitoring");
}

/// Gate + keys + libnetconf2's SSH endpoint.
fn lnc_ssh_setup(
    test: &str,
    data_size: Option<usize>,
) -> Option<(Scratch, SshKeys, harness::Peer, u16)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::c_peer("nc_server"))?;
    harness::need(mode, test, harness::which("ssh-keygen"))?;
    let scratch = Scratch::new(test);
    let keys = SshKeys::new(&scratch).expect("ssh keys");
    let (server, port) = harness::start_nc_server_ssh(&scratch, &keys, data_size)
        .unwrap_or_else(|e| panic!("{test}: the libnetconf2 SSH server did not start: {e}"));
    Some((scratch, keys, server, port))
}

fn password_login(keys: &SshKeys, port: u16) -> netconf_ssh::ClientOptions {
    harness::our_ssh_options(keys, port, SSH_USER).password(SSH_PASSWORD)
}

#[test]
fn tokio_client_operations_over_ssh_against_libnetconf2() {
    let test = "tokio_client_operations_over_ssh_against_libnetconf2";
    let Some((_scratch, keys, server, port)) = lnc_ssh_setup(test, None) else {
        return;
    };
    on_tokio(test, || server.log_text(), async {
        let t = Instant::now();
        let c = netconf_tokio::Client::connect_ssh_with(
            &addr(port),
            &password_login(&keys, port),
            &options(),
        )
        .await
        .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", server.log_text()));
        let took = t.elapsed();
        println!("tokio: established over SSH with libnetconf2 in {took:?}");
        assert!(took < HELLO_LIMIT, "SSH + hello took {took:?}");
        let committed = libnetconf2_operations!(&c, "tokio over ssh", .await);
        let (running, get, schema) = (
            GetConfig::new(Datastore::Running),
            Get::new(),
            GetSchema::new("ietf-netconf-monitoring"),
        );
        async_pipelined(c.call(&running), c.call(&get), c.call(&schema), &committed).await;
        c.close().await.expect("close-session");
        assert!(
            c.call(&Get::new()).await.is_err(),
            "a closed client answers"
        );
    });
    let log = server.stop();
    assert!(
        log.contains("password login as netconf accepted"),
        "libnetconf2 did not see a password login:\n{log}"
    );
}

#[test]
fn smol_client_operations_over_ssh_against_libnetconf2() {
    let test = "smol_client_operations_over_ssh_against_libnetconf2";
    let Some((_scratch, keys, server, port)) = lnc_ssh_setup(test, None) else {
        return;
    };
    on_smol(test, || server.log_text(), async {
        let t = Instant::now();
        let c = netconf_smol::Client::connect_ssh_with(
            &addr(port),
            &password_login(&keys, port),
            &options(),
        )
        .await
        .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", server.log_text()));
        let took = t.elapsed();
        println!("smol: established over SSH with libnetconf2 in {took:?}");
        assert!(took < HELLO_LIMIT, "SSH + hello took {took:?}");
        let committed = libnetconf2_operations!(&c, "smol over ssh", .await);
        let (running, get, schema) = (
            GetConfig::new(Datastore::Running),
            Get::new(),
            GetSchema::new("ietf-netconf-monitoring"),
        );
        async_pipelined(c.call(&running), c.call(&get), c.call(&schema), &committed).await;
        c.close().await.expect("close-session");
    });
}

#[test]
fn blocking_client_operations_over_ssh_against_libnetconf2() {
    let test = "blocking_client_operations_over_ssh_against_libnetconf2";
    let Some((_scratch, keys, server, port)) = lnc_ssh_setup(test, None) else {
        return;
    };
    let t = Instant::now();
    let c = netconf_blocking::Client::connect_ssh_with(
        &addr(port),
        &password_login(&keys, port),
        &options(),
    )
    .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", server.log_text()));
    let took = t.elapsed();
    println!("blocking: established over SSH with libnetconf2 in {took:?}");
    assert!(took < HELLO_LIMIT, "SSH + hello took {took:?}");
    let committed = libnetconf2_operations!(&c, "blocking over ssh",);
    // Pipelined: three requests written before any reply is read, replies taken in reverse.
    let ids = [
        c.send(&GetConfig::new(Datastore::Running)).expect("send"),
        c.send(&Get::new()).expect("send"),
        c.send(&GetSchema::new("ietf-netconf-monitoring"))
            .expect("send"),
    ];
    let schema =
        GetSchema::output(c.recv(ids[2]).expect("pipelined get-schema")).expect("schema text");
    check_schema(&schema, "ietf-netconf-monitoring");
    assert!(c
        .recv(ids[1])
        .expect("pipelined get")
        .data()
        .is_some_and(|d| d.as_str().contains("<uptime>")));
    assert!(c
        .recv(ids[0])
        .expect("pipelined get-config")
        .data()
        .is_some_and(|d| d.as_str().contains(&committed)));
    c.close().expect("close-session");
}

/// The `netconf_ssh::Error` inside an adapter's error.
fn ssh_cause(e: &Error) -> Option<&netconf_ssh::Error> {
    match e {
        Error::Ssh(inner) => inner.downcast_ref::<netconf_ssh::Error>(),
        _ => None,
    }
}

/// Public-key login, and what a real peer lets us check about refusals: unknown host key
/// (nothing recorded), changed host key (even with accept-new; the message names the file and
/// line), wrong password. Through the tokio client's `connect_ssh`, so the adapter's error
/// mapping is checked too.
#[test]
fn tokio_client_over_ssh_keys_and_refusals_against_libnetconf2() {
    let test = "tokio_client_over_ssh_keys_and_refusals_against_libnetconf2";
    let Some((scratch, keys, server, port)) = lnc_ssh_setup(test, None) else {
        return;
    };
    on_tokio(test, || server.log_text(), async {
        let ssh = harness::our_ssh_options(&keys, port, SSH_USER).key_file(&keys.user_key);
        let c = netconf_tokio::Client::connect_ssh_with(&addr(port), &ssh, &options())
            .await
            .unwrap_or_else(|e| panic!("publickey login: {e}\n{}", server.log_text()));
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert!(data.as_str().contains("hello from libnetconf2"), "{data}");
        c.close().await.expect("close-session");

        let empty = scratch.dir.join("known_hosts-empty");
        std::fs::write(&empty, "").expect("empty known_hosts");
        let ssh = netconf_ssh::ClientOptions::new(SSH_USER)
            .password(SSH_PASSWORD)
            .known_hosts(&empty);
        let e = netconf_tokio::Client::connect_ssh(&addr(port), &ssh)
            .await
            .expect_err("a host with no known_hosts entry was trusted");
        match ssh_cause(&e) {
            Some(netconf_ssh::Error::UnknownHostKey { offered, .. }) => {
                assert_eq!(offered, &keys.host_fingerprint)
            }
            _ => panic!("unknown host key: expected UnknownHostKey, got {e:?}"),
        }
        assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");

        let wrong = keys.wrong_known_hosts_for(port);
        let ssh = netconf_ssh::ClientOptions::new(SSH_USER)
            .password(SSH_PASSWORD)
            .known_hosts(&wrong)
            .accept_new_host_keys(true);
        let e = netconf_tokio::Client::connect_ssh(&addr(port), &ssh)
            .await
            .expect_err("a changed host key was accepted");
        match ssh_cause(&e) {
            Some(cause @ netconf_ssh::Error::HostKeyChanged { .. }) => {
                let text = cause.to_string();
                assert!(
                    text.contains(&keys.host_fingerprint) && text.contains("line 1"),
                    "{text}"
                );
                println!("changed host key: {text}");
            }
            _ => panic!("changed host key: expected HostKeyChanged, got {e:?}"),
        }

        let ssh = harness::our_ssh_options(&keys, port, SSH_USER).password("not the password");
        let e = netconf_tokio::Client::connect_ssh(&addr(port), &ssh)
            .await
            .expect_err("a wrong password was accepted");
        match ssh_cause(&e) {
            Some(cause @ netconf_ssh::Error::AuthFailed { .. }) => {
                println!("wrong password: {cause}")
            }
            _ => panic!("wrong password: expected AuthFailed, got {e:?}"),
        }
    });
}

#[test]
fn tokio_client_10mb_get_config_over_ssh_from_libnetconf2() {
    let test = "tokio_client_10mb_get_config_over_ssh_from_libnetconf2";
    let Some((_scratch, keys, server, port)) = lnc_ssh_setup(test, Some(BIG_BYTES)) else {
        return;
    };
    on_tokio(test, || server.log_text(), async {
        let c = netconf_tokio::Client::connect_ssh(&addr(port), &password_login(&keys, port))
            .await
            .expect("connect");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        let took = t.elapsed();
        assert!(data.as_str().matches("<item>").count() > 90_000);
        check_big(
            data.as_str(),
            "netconf-tokio/ssh",
            "libnetconf2/ssh",
            took,
            "",
        );
        c.close().await.expect("close-session");
    });
}

#[test]
fn smol_client_10mb_get_config_over_ssh_from_libnetconf2() {
    let test = "smol_client_10mb_get_config_over_ssh_from_libnetconf2";
    let Some((_scratch, keys, server, port)) = lnc_ssh_setup(test, Some(BIG_BYTES)) else {
        return;
    };
    on_smol(test, || server.log_text(), async {
        let c = netconf_smol::Client::connect_ssh(&addr(port), &password_login(&keys, port))
            .await
            .expect("connect");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        let took = t.elapsed();
        assert!(data.as_str().matches("<item>").count() > 90_000);
        check_big(
            data.as_str(),
            "netconf-smol/ssh",
            "libnetconf2/ssh",
            took,
            "",
        );
        c.close().await.expect("close-session");
    });
}

#[test]
fn blocking_client_10mb_get_config_over_ssh_from_libnetconf2() {
    let test = "blocking_client_10mb_get_config_over_ssh_from_libnetconf2";
    let Some((_scratch, keys, _server, port)) = lnc_ssh_setup(test, Some(BIG_BYTES)) else {
        return;
    };
    let c = netconf_blocking::Client::connect_ssh(&addr(port), &password_login(&keys, port))
        .expect("connect");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("10 MB get-config");
    let took = t.elapsed();
    assert!(data.as_str().matches("<item>").count() > 90_000);
    check_big(
        data.as_str(),
        "netconf-blocking/ssh",
        "libnetconf2/ssh",
        took,
        "",
    );
    c.close().expect("close-session");
}

/// Gate + sshd with libnetconf2's stdio server as its subsystem.
fn stdio_setup(
    test: &str,
    data_size: Option<usize>,
) -> Option<(Scratch, SshKeys, harness::Peer, u16)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::c_peer("nc_server"))?;
    harness::need(mode, test, harness::which("sshd"))?;
    harness::need(mode, test, harness::which("ssh-keygen"))?;
    let scratch = Scratch::new(test);
    let keys = SshKeys::new(&scratch).expect("ssh keys");
    let (sshd, port) = harness::start_nc_server_stdio(&scratch, &keys, data_size)
        .unwrap_or_else(|e| panic!("{test}: sshd did not start: {e}"));
    Some((scratch, keys, sshd, port))
}

fn stdio_logs(scratch: &Scratch, sshd: &harness::Peer) -> String {
    format!(
        "--- sshd\n{}\n--- nc_server --stdio\n{}",
        sshd.log_text(),
        std::fs::read_to_string(scratch.dir.join("nc_server-stdio.log")).unwrap_or_default()
    )
}

/// sshd authenticates the user running the tests, by key.
fn key_login(keys: &SshKeys, port: u16) -> netconf_ssh::ClientOptions {
    harness::our_ssh_options(keys, port, &harness::current_user()).key_file(&keys.user_key)
}

#[test]
fn tokio_client_operations_against_libnetconf2_stdio_behind_sshd() {
    let test = "tokio_client_operations_against_libnetconf2_stdio_behind_sshd";
    let Some((scratch, keys, sshd, port)) = stdio_setup(test, None) else {
        return;
    };
    on_tokio(test, || stdio_logs(&scratch, &sshd), async {
        let t = Instant::now();
        let c = netconf_tokio::Client::connect_ssh_with(
            &addr(port),
            &key_login(&keys, port),
            &options(),
        )
        .await
        .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", stdio_logs(&scratch, &sshd)));
        let took = t.elapsed();
        println!("tokio: established with sshd + libnetconf2 stdio in {took:?}");
        assert!(took < HELLO_LIMIT, "SSH + hello took {took:?}");
        let committed = libnetconf2_operations!(&c, "tokio via sshd", .await);
        let (running, get, schema) = (
            GetConfig::new(Datastore::Running),
            Get::new(),
            GetSchema::new("ietf-netconf-monitoring"),
        );
        async_pipelined(c.call(&running), c.call(&get), c.call(&schema), &committed).await;
        c.close().await.expect("close-session");
    });
}

#[test]
fn tokio_client_10mb_get_config_from_libnetconf2_stdio_behind_sshd() {
    let test = "tokio_client_10mb_get_config_from_libnetconf2_stdio_behind_sshd";
    let Some((scratch, keys, sshd, port)) = stdio_setup(test, Some(BIG_BYTES)) else {
        return;
    };
    on_tokio(test, || stdio_logs(&scratch, &sshd), async {
        let c = netconf_tokio::Client::connect_ssh(&addr(port), &key_login(&keys, port))
            .await
            .expect("connect");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        let took = t.elapsed();
        assert!(data.as_str().matches("<item>").count() > 90_000);
        check_big(
            data.as_str(),
            "netconf-tokio/ssh",
            "libnetconf2-stdio/sshd",
            took,
            "",
        );
        c.close().await.expect("close-session");
    });
}

#[test]
fn blocking_client_10mb_get_config_from_libnetconf2_stdio_behind_sshd() {
    let test = "blocking_client_10mb_get_config_from_libnetconf2_stdio_behind_sshd";
    let Some((_scratch, keys, _sshd, port)) = stdio_setup(test, Some(BIG_BYTES)) else {
        return;
    };
    let c = netconf_blocking::Client::connect_ssh(&addr(port), &key_login(&keys, port))
        .expect("connect");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("10 MB get-config");
    let took = t.elapsed();
    assert!(data.as_str().matches("<item>").count() > 90_000);
    check_big(
        data.as_str(),
        "netconf-blocking/ssh",
        "libnetconf2-stdio/sshd",
        took,
        "",
    );
    c.close().expect("close-session");
}

// ---- yuma123 netconfd behind sshd -------------------------------------------------------------

fn yuma_setup(test: &str) -> Option<(Scratch, SshKeys, harness::Yuma)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::netconfd_prerequisites())?;
    harness::need(mode, test, harness::which("sshd"))?;
    harness::need(mode, test, harness::which("ssh-keygen"))?;
    let scratch = Scratch::new(test);
    let keys = SshKeys::new(&scratch).expect("ssh keys");
    let yuma = harness::start_yuma(&scratch, &keys)
        .unwrap_or_else(|e| panic!("{test}: netconfd/sshd did not start: {e}"));
    Some((scratch, keys, yuma))
}

fn yuma_logs(yuma: &harness::Yuma) -> String {
    format!(
        "--- sshd\n{}\n--- netconfd\n{}",
        yuma.sshd.log_text(),
        yuma.netconfd.log_text()
    )
}

/// netconfd's defaults: target candidate (running is written by commit only), no startup.
#[test]
fn tokio_client_operations_against_yuma123_netconfd() {
    let test = "tokio_client_operations_against_yuma123_netconfd";
    let Some((_scratch, keys, yuma)) = yuma_setup(test) else {
        return;
    };
    on_tokio(test, || yuma_logs(&yuma), async {
        let t = Instant::now();
        let c = netconf_tokio::Client::connect_ssh_with(
            &addr(yuma.port),
            &key_login(&keys, yuma.port),
            &options(),
        )
        .await
        .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", yuma_logs(&yuma)));
        let took = t.elapsed();
        println!("tokio: established with sshd + netconfd in {took:?}");
        assert!(took < HELLO_LIMIT, "SSH + hello took {took:?}");
        assert_ne!(c.session_id(), 0);
        assert!(c.capabilities().contains_uri(BASE_1_1));
        assert!(c.capabilities().contains_uri(CANDIDATE));
        assert_eq!(c.framing(), Framing::Chunked);
        println!("netconfd announced {} capabilities", c.capabilities().len());

        // Notifications: netconfd reports each commit as <netconf-config-change>.
        let mut notifications = c.notifications();
        c.call(&CreateSubscription::new())
            .await
            .expect("create-subscription");

        let running = GetConfig::new(Datastore::Running);
        let empty = c.call(&running).await.expect("get-config");
        assert!(
            !empty.as_str().contains("<greeting>"),
            "running is not empty at start: {empty}"
        );
        c.call(&Lock::new(Datastore::Candidate))
            .await
            .expect("lock candidate");
        c.call(&EditConfig::new(
            Datastore::Candidate,
            greeting("committed by tokio over ssh"),
        ))
        .await
        .expect("edit-config candidate");
        let candidate = c
            .call(&GetConfig::new(Datastore::Candidate))
            .await
            .expect("get-config candidate");
        assert!(
            candidate.as_str().contains("committed by tokio over ssh"),
            "{candidate}"
        );
        c.call(&Commit::new()).await.expect("commit");
        c.call(&Unlock::new(Datastore::Candidate))
            .await
            .expect("unlock candidate");
        let data = c.call(&running).await.expect("get-config after commit");
        assert!(
            data.as_str().contains("committed by tokio over ssh"),
            "{data}"
        );

        let note = tokio::time::timeout(Duration::from_secs(10), notifications.next())
            .await
            .expect("no notification within 10 s of the commit")
            .expect("the notification stream ended")
            .expect("lagged");
        println!("notification at {}: {:.300}", note.event_time, note.content);
        assert!(
            note.content.as_str().contains("netconf-config-change"),
            "{}",
            note.content
        );

        // netconfd 2.13 quirk: after <validate> of candidate, the next <commit> answers <ok/>
        // and changes nothing (without the validate it commits). Recorded, not asserted.
        c.call(&EditConfig::new(
            Datastore::Candidate,
            greeting("validated"),
        ))
        .await
        .expect("edit-config candidate");
        c.call(&Validate::new(Datastore::Candidate))
            .await
            .expect("validate candidate");
        c.call(&Commit::new()).await.expect("commit after validate");
        let data = c.call(&running).await.expect("get-config after commit");
        if data.as_str().contains("validated") {
            println!("netconfd committed after a validate");
        } else {
            println!(
                "KNOWN-PEER-BUG netconfd: <commit> after <validate> answered <ok/> and changed nothing"
            );
            c.call(&Commit::new()).await.expect("commit again");
        }

        // An edit that is discarded never reaches running.
        c.call(&EditConfig::new(
            Datastore::Candidate,
            greeting("discarded"),
        ))
        .await
        .expect("edit-config candidate");
        c.call(&DiscardChanges::new())
            .await
            .expect("discard-changes");
        let data = c.call(&running).await.expect("get-config after discard");
        assert!(!data.as_str().contains("discarded"), "{data}");

        // Running is not writable directly on netconfd's default target: an rpc-error, and
        // the session goes on.
        match c
            .call(&EditConfig::new(Datastore::Running, greeting("direct")))
            .await
        {
            Err(Error::Rpc(errors)) => println!("edit-config running: {errors:?}"),
            other => panic!("edit-config running: expected an rpc-error, got {other:?}"),
        }
        c.call(&Lock::new(Datastore::Running))
            .await
            .expect("lock running");
        c.call(&Unlock::new(Datastore::Running))
            .await
            .expect("unlock running");

        let state = c.call(&Get::new()).await.expect("get");
        assert!(
            state.as_str().contains("netconf-state") || state.as_str().contains("<sessions>"),
            "get returned no monitoring state: {:.500}",
            state
        );
        check_schema(
            &c.call(&GetSchema::new("interop"))
                .await
                .expect("get-schema interop"),
            "interop",
        );
        check_unknown_schema(c.call(&GetSchema::new("no-such-module")).await);

        let (get, schema) = (Get::new(), GetSchema::new("ietf-netconf-monitoring"));
        let (a, b, d) = tokio::join!(c.call(&running), c.call(&get), c.call(&schema));
        assert!(a
            .expect("pipelined get-config")
            .as_str()
            .contains("committed by tokio over ssh"));
        b.expect("pipelined get");
        check_schema(&d.expect("pipelined get-schema"), "ietf-netconf-monitoring");

        c.close().await.expect("close-session");
    });
}

/// netconfd keeps configuration only as its YANG modules describe it: the 10 MB are 100 list
/// entries of about 100 kB each, loaded with ten 1 MB edit-configs and one commit (one 10 MB
/// edit-config gets `resource-denied`: netconfd caps its input buffers; and 90 000 small
/// entries take minutes, its list inserts being quadratic).
fn yuma_edits() -> Vec<InlineConfig> {
    let value = "the quick brown fox jumps over the lazy dog ".repeat(2300);
    (0..10)
        .map(|batch| {
            let items: String = (batch * 10..batch * 10 + 10)
                .map(|i| format!("<item><name>item-{i:03}</name><value>{value}</value></item>"))
                .collect();
            InlineConfig::new(format!(
                "<interop xmlns=\"urn:example:interop\"><bulk>{items}</bulk></interop>"
            ))
            .expect("well-formed")
        })
        .collect()
}

fn check_yuma_big(data: &str, client: &str, took: Duration) {
    assert_eq!(
        data.matches("<item>").count(),
        100,
        "entries missing from netconfd's reply"
    );
    check_big(
        data,
        client,
        "yuma123-netconfd/sshd",
        took,
        "100 entries of 100 kB",
    );
}

#[test]
fn tokio_client_10mb_get_config_from_yuma123_netconfd() {
    let test = "tokio_client_10mb_get_config_from_yuma123_netconfd";
    let Some((_scratch, keys, yuma)) = yuma_setup(test) else {
        return;
    };
    on_tokio(test, || yuma_logs(&yuma), async {
        let c = netconf_tokio::Client::connect_ssh(&addr(yuma.port), &key_login(&keys, yuma.port))
            .await
            .expect("connect");
        let setup = Instant::now();
        for (batch, edit) in yuma_edits().into_iter().enumerate() {
            c.call(&EditConfig::new(Datastore::Candidate, edit))
                .await
                .unwrap_or_else(|e| panic!("edit-config batch {batch}: {e}"));
        }
        c.call(&Commit::new()).await.expect("commit");
        println!("10 MB loaded into netconfd in {:?}", setup.elapsed());
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        check_yuma_big(data.as_str(), "netconf-tokio/ssh", t.elapsed());
        c.close().await.expect("close-session");
    });
}

#[test]
fn smol_client_10mb_get_config_from_yuma123_netconfd() {
    let test = "smol_client_10mb_get_config_from_yuma123_netconfd";
    let Some((_scratch, keys, yuma)) = yuma_setup(test) else {
        return;
    };
    on_smol(test, || yuma_logs(&yuma), async {
        let c = netconf_smol::Client::connect_ssh(&addr(yuma.port), &key_login(&keys, yuma.port))
            .await
            .expect("connect");
        for (batch, edit) in yuma_edits().into_iter().enumerate() {
            c.call(&EditConfig::new(Datastore::Candidate, edit))
                .await
                .unwrap_or_else(|e| panic!("edit-config batch {batch}: {e}"));
        }
        c.call(&Commit::new()).await.expect("commit");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        check_yuma_big(data.as_str(), "netconf-smol/ssh", t.elapsed());
        c.close().await.expect("close-session");
    });
}

#[test]
fn blocking_client_10mb_get_config_from_yuma123_netconfd() {
    let test = "blocking_client_10mb_get_config_from_yuma123_netconfd";
    let Some((_scratch, keys, yuma)) = yuma_setup(test) else {
        return;
    };
    let c = netconf_blocking::Client::connect_ssh(&addr(yuma.port), &key_login(&keys, yuma.port))
        .unwrap_or_else(|e| panic!("SSH + hello: {e}\n{}", yuma_logs(&yuma)));
    for (batch, edit) in yuma_edits().into_iter().enumerate() {
        c.call(&EditConfig::new(Datastore::Candidate, edit))
            .unwrap_or_else(|e| panic!("edit-config batch {batch}: {e}"));
    }
    c.call(&Commit::new()).expect("commit");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("10 MB get-config");
    check_yuma_big(data.as_str(), "netconf-blocking/ssh", t.elapsed());
    c.close().expect("close-session");
}
