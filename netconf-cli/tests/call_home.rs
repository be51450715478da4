//! Issue 16 from the command line: call home (RFC 8071) over real loopback TLS and SSH.
//!
//! `netconf listen` (the manager) against a device made with the library
//! (`Server::call_home`); `netconf serve --call-home` (the device) against the library's
//! `CallHomeListener`; and the two commands against each other. A device whose certificate
//! or host key is wrong is refused with a message naming why, before any NETCONF request
//! reaches it. Every wait is a deadlock guard; nothing is timed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use common::{closed_port, lines_of, netconf, run, wait_for, ChildGuard, Out, TempDir};
use netconf_blocking::call_home::{
    CallHome, CallHomeListener, CallHomeOptions, CallHomeTransport, DeviceIdentity, Reconnect,
};
use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::ssh::keys::generate_ed25519;
use netconf_blocking::ssh::known_hosts::fingerprint;
use netconf_blocking::ssh::{
    PrivateKey, SshClientOptions, SshServer, SshServerOptions, StaticAuth,
};
use netconf_blocking::tls::ClientTlsOptions;
use netconf_blocking::{Reply, Server};
use netconf_tests::certs::{Pki, PkiFiles};

/// How long anything may take before the test calls it a deadlock.
const GUARD: Duration = Duration::from_secs(60);
const NS: &str = "urn:test:call-home";
const DEVICE_DATA: &str = "<device xmlns=\"urn:test:call-home\">r1</device>";

/// Quick retries, so that a device calling before the manager listens is not kept waiting
/// for the 1 s default.
fn quick() -> Reconnect {
    Reconnect::new().backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A library device answering get-config with [`DEVICE_DATA`], counting requests.
fn device(requests: Arc<AtomicUsize>) -> Server {
    Server::new(ServerOptions::new(), move |_request, _info| {
        requests.fetch_add(1, Ordering::SeqCst);
        Reply::data(format!("<device xmlns=\"{NS}\">r1</device>")).unwrap()
    })
}

fn device_ssh(key: Option<PrivateKey>) -> SshServer {
    let options = match key {
        Some(key) => {
            SshServerOptions::default().host_key(netconf_blocking::ssh::HostKey::Key(Box::new(key)))
        }
        None => SshServerOptions::default(),
    };
    SshServer::new(options, StaticAuth::new().user("admin", "pw")).unwrap()
}

/// A running `netconf listen`: the port it printed, its stderr lines so far.
struct Listening {
    port: u16,
    stderr: Receiver<String>,
    child: ChildGuard,
}

impl Listening {
    /// Starts `netconf listen` on 127.0.0.1, any free port, with `args` (global options and
    /// the command); waits until it listens.
    fn start(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Listening {
        let mut cmd = netconf();
        cmd.args([
            "listen",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--wait",
            "60",
        ])
        .args(["--timeout", "20"]);
        tweak(&mut cmd);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning netconf listen");
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let child = ChildGuard(Some(child));
        let seen = wait_for(&stderr, "listening for call home over ");
        let port = seen
            .last()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {seen:#?}"));
        Listening {
            port,
            stderr,
            child,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for the command to finish: its exit status, stdout and all of its stderr.
    fn finish(self) -> Out {
        let mut out = self.child.wait_output(GUARD);
        let mut stderr = String::new();
        while let Ok(line) = self.stderr.recv_timeout(GUARD) {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        out.stderr = stderr;
        out
    }
}

/// The TLS options of a `netconf` manager: verify devices with `trust`'s CA, present
/// `identity`'s client certificate.
fn tls_args(cmd: &mut Command, trust: &PkiFiles, identity: &PkiFiles) {
    cmd.arg("--tls")
        .arg("--ca")
        .arg(&trust.ca_cert)
        .arg("--cert")
        .arg(&identity.client_cert)
        .arg("--key")
        .arg(&identity.client_key);
}

fn known_hosts_line(dir: &TempDir, key: &str) -> PathBuf {
    dir.file("known_hosts", &format!("[127.0.0.1]:830 {key}\n"))
}

fn openssh(key: &PrivateKey) -> String {
    key.public_key().to_openssh().unwrap()
}

#[test]
fn listen_over_tls_runs_the_command_against_the_device_that_calls() {
    let pki = Pki::generate();
    let dir = TempDir::new("listen-tls");
    let files = pki.write_to_dir(dir.path()).unwrap();
    let listening = Listening::start(&["get-config", "--source", "running"], |cmd| {
        tls_args(cmd, &files, &files)
    });
    let requests = Arc::new(AtomicUsize::new(0));
    let device = device(requests.clone());
    let calls = device
        .call_home(
            &[&listening.addr()],
            CallHomeTransport::Tls(pki.server_tls_options()),
            quick(),
        )
        .unwrap();
    let out = listening.finish();
    out.ok();
    assert_eq!(out.stdout, format!("{DEVICE_DATA}\n"));
    assert!(
        out.stderr.contains("call home from 127.0.0.1:")
            && out.stderr.contains(": certificate subject ")
            && out.stderr.contains("CN=localhost")
            && out.stderr.contains("issuer ")
            && out.stderr.contains("CN=netconf-tests CA"),
        "{}",
        out.stderr
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    calls.stop();
    device.shutdown();
}

#[test]
fn listen_over_ssh_checks_known_hosts_under_port_830_or_a_pinned_key() {
    let key = generate_ed25519();
    let dir = TempDir::new("listen-ssh");
    let known_hosts = known_hosts_line(&dir, &openssh(&key));
    let requests = Arc::new(AtomicUsize::new(0));
    let device = device(requests.clone());
    let ssh = device_ssh(Some(key.clone()));
    let mut calls: Option<CallHome> = None;
    let fp = fingerprint(key.public_key());
    let pinned = ["--host-key-fingerprint", fp.as_str()];
    let by_known_hosts = ["--known-hosts", known_hosts.to_str().unwrap()];
    for check in [&by_known_hosts[..], &pinned[..]] {
        let listening = Listening::start(&["get-config"], |cmd| {
            cmd.args(["--ssh", "--user", "admin", "--password", "pw"])
                .args(check);
        });
        if let Some(old) = calls.take() {
            old.stop();
        }
        calls = Some(
            device
                .call_home(
                    &[&listening.addr()],
                    CallHomeTransport::Ssh(ssh.clone()),
                    quick(),
                )
                .unwrap(),
        );
        let out = listening.finish();
        out.ok();
        assert_eq!(out.stdout, format!("{DEVICE_DATA}\n"), "{check:?}");
        assert!(
            out.stderr
                .contains(&format!(": host key {fp} (ssh-ed25519)")),
            "{check:?}: {}",
            out.stderr
        );
    }
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    calls.unwrap().stop();
    device.shutdown();
}

#[test]
fn listen_refuses_a_device_with_the_wrong_host_key_or_ca_before_any_request() {
    let requests = Arc::new(AtomicUsize::new(0));
    let device = device(requests.clone());
    let dir = TempDir::new("listen-refused");

    // SSH: known_hosts has another key for the device.
    let other = generate_ed25519();
    let known_hosts = known_hosts_line(&dir, &openssh(&other));
    let listening = Listening::start(&["get-config"], |cmd| {
        cmd.args([
            "--ssh",
            "--user",
            "admin",
            "--password",
            "pw",
            "--known-hosts",
        ])
        .arg(&known_hosts);
    });
    let key = generate_ed25519();
    let calls = device
        .call_home(
            &[&listening.addr()],
            CallHomeTransport::Ssh(device_ssh(Some(key.clone()))),
            quick(),
        )
        .unwrap();
    let out = listening.finish();
    out.code(2);
    assert_eq!(out.stdout, "");
    let offered = fingerprint(key.public_key());
    assert!(
        out.stderr.contains("netconf: call home from 127.0.0.1:")
            && out.stderr.contains("failed: host key for ")
            && out.stderr.contains(&format!("changed: offered {offered}"))
            && out.stderr.contains("man-in-the-middle"),
        "{}",
        out.stderr
    );
    calls.stop();

    // SSH: a pinned fingerprint that is not the device's.
    let listening = Listening::start(&["hello"], |cmd| {
        cmd.args(["--ssh", "--user", "admin", "--password", "pw"])
            .args(["--host-key-fingerprint", &fingerprint(other.public_key())]);
    });
    let calls = device
        .call_home(
            &[&listening.addr()],
            CallHomeTransport::Ssh(device_ssh(Some(key))),
            quick(),
        )
        .unwrap();
    let out = listening.finish();
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "does not match the pinned fingerprint: offered {offered}"
        )),
        "{}",
        out.stderr
    );
    calls.stop();

    // TLS: the device's certificate is from a CA the manager does not trust.
    let pki = Pki::generate();
    let stranger = Pki::other_ca();
    let ours = pki.write_to_dir(dir.path()).unwrap();
    let listening = Listening::start(&["get-config"], |cmd| tls_args(cmd, &ours, &ours));
    let calls = device
        .call_home(
            &[&listening.addr()],
            CallHomeTransport::Tls(stranger.server_tls_options()),
            quick(),
        )
        .unwrap();
    let out = listening.finish();
    out.code(2);
    assert!(
        out.stderr.contains("netconf: call home from 127.0.0.1:")
            && out.stderr.contains(&format!(
                "failed: server certificate not trusted by --ca {}",
                ours.ca_cert.display()
            )),
        "{}",
        out.stderr
    );
    calls.stop();
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "a refused device got a request"
    );
    device.shutdown();
}

/// A running `netconf serve --call-home ...` and its banner.
struct Calling {
    banner: Vec<String>,
    _child: ChildGuard,
}

impl Calling {
    /// Starts `netconf serve` with `args`; waits for its banner up to a line containing
    /// `until`.
    fn start(args: &[&str], tweak: impl FnOnce(&mut Command), until: &str) -> Calling {
        let mut cmd = netconf();
        cmd.arg("serve").args(args);
        tweak(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawning netconf serve");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let child = ChildGuard(Some(child));
        let banner = wait_for(&stdout, until);
        Calling {
            banner,
            _child: child,
        }
    }

    fn says(&self, line: &str) -> bool {
        self.banner.iter().any(|l| l == line)
    }
}

fn server_files(cmd: &mut Command, files: &PkiFiles) {
    cmd.arg("--ca")
        .arg(&files.ca_cert)
        .arg("--cert")
        .arg(&files.server_cert)
        .arg("--key")
        .arg(&files.server_key);
}

fn host_key_file(dir: &TempDir, key: &PrivateKey) -> PathBuf {
    dir.file(
        "host_ed25519",
        &key.to_openssh(Default::default())
            .expect("OpenSSH encoding"),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn serve_calls_home_to_a_library_listener_and_again_after_each_session() {
    // TLS.
    let pki = Pki::generate();
    let dir = TempDir::new("serve-calls");
    let files = pki.write_to_dir(dir.path()).unwrap();
    let options = CallHomeOptions::tls(pki.client_tls_options());
    let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
    let manager = listener.local_addr().to_string();
    // --port: it listens as well.
    let serve = Calling::start(
        &["--call-home", &manager, "--port", "0"],
        |cmd| server_files(cmd, &files),
        "calling home over TLS",
    );
    assert!(
        serve.says(&format!("calling home over TLS to {manager}")),
        "{:#?}",
        serve.banner
    );
    let port = serve
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("listening on 127.0.0.1:"))
        .unwrap_or_else(|| panic!("not listening: {:#?}", serve.banner));
    let dialled = netconf_blocking::Client::connect_tls(
        &format!("127.0.0.1:{port}"),
        &ClientTlsOptions::new()
            .ca_file(&files.ca_cert)
            .client_cert_files(&files.client_cert, &files.client_key),
    )
    .unwrap();
    dialled.call(&GetConfig::new(Datastore::Running)).unwrap();
    dialled.close().unwrap();
    for _ in 0..2 {
        let called = listener
            .accept_timeout(GUARD)
            .expect("deadlock guard: serve did not call")
            .unwrap();
        match &called.device.identity {
            DeviceIdentity::Certificate(der) => assert_eq!(*der, pki.server_cert_der()),
            other => panic!("expected a certificate, got {other:?}"),
        }
        let data = called
            .client
            .call(&GetConfig::new(Datastore::Running))
            .unwrap();
        assert!(data.as_str().contains("demo-router"), "{data}");
        called.client.close().unwrap();
    }
    drop(serve);

    // SSH, the device identified by the host key it was given.
    let key = generate_ed25519();
    let host_key = host_key_file(&dir, &key);
    let fp = fingerprint(key.public_key());
    let options = CallHomeOptions::ssh(
        SshClientOptions::new("admin")
            .password("pw")
            .host_key_fingerprint(fp.clone()),
    );
    let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
    let manager = listener.local_addr().to_string();
    let serve = Calling::start(
        &[
            "--ssh",
            "--ssh-user",
            "admin:pw",
            "--host-key",
            path(&host_key),
            "--call-home",
            &manager,
            "--reconnect-period",
            "1",
        ],
        |_| {},
        "netconf listen --ssh",
    );
    assert!(
        serve.says(&format!("calling home over SSH to {manager}"))
            && serve.says(&format!("ssh fingerprint: {fp}"))
            && !serve.banner.iter().any(|l| l.contains("listening")),
        "{:#?}",
        serve.banner
    );
    // Periodic: a second call a second after the first session ended.
    for _ in 0..2 {
        let called = listener
            .accept_timeout(GUARD)
            .expect("deadlock guard: serve did not call")
            .unwrap();
        match &called.device.identity {
            DeviceIdentity::HostKey { fingerprint, .. } => assert_eq!(*fingerprint, fp),
            other => panic!("expected a host key, got {other:?}"),
        }
        let data = called
            .client
            .call(&GetConfig::new(Datastore::Running))
            .unwrap();
        assert!(data.as_str().contains("demo-router"), "{data}");
        called.client.close().unwrap();
    }
}

#[test]
fn listen_and_serve_call_home_against_each_other() {
    // TLS: the manager presents the client certificate, serve's CA signed it.
    let pki = Pki::generate();
    let dir = TempDir::new("cli-both");
    let files = pki.write_to_dir(dir.path()).unwrap();
    let listening = Listening::start(
        &[
            "get-config",
            "--subtree",
            "<system xmlns=\"urn:example:netconf-cli-demo\"/>",
        ],
        |cmd| tls_args(cmd, &files, &files),
    );
    let _serve = Calling::start(
        &["--call-home", &listening.addr()],
        |cmd| server_files(cmd, &files),
        "calling home over TLS",
    );
    let out = listening.finish();
    out.ok();
    assert_eq!(
        out.stdout,
        "<system xmlns=\"urn:example:netconf-cli-demo\"><hostname>demo-router</hostname></system>\n"
    );
    assert!(out.stderr.contains("CN=localhost"), "{}", out.stderr);

    // SSH, pinned by the fingerprint serve prints; a batch in the one session.
    let key = generate_ed25519();
    let host_key = host_key_file(&dir, &key);
    let fp = fingerprint(key.public_key());
    let steps = dir.file(
        "steps.txt",
        "edit-config --config '<system xmlns=\"urn:example:netconf-cli-demo\"><hostname>called-home</hostname></system>'\n\
         get-config --subtree '<system xmlns=\"urn:example:netconf-cli-demo\"/>'\n",
    );
    let listening = Listening::start(&["batch", path(&steps)], |cmd| {
        cmd.args(["--ssh", "--user", "admin", "--password", "pw"])
            .args(["--host-key-fingerprint", &fp]);
    });
    let serve = Calling::start(
        &[
            "--ssh",
            "--ssh-user",
            "admin:pw",
            "--host-key",
            path(&host_key),
            "--call-home",
            &listening.addr(),
        ],
        |_| {},
        "netconf listen --ssh",
    );
    assert!(
        serve.says(&format!(
            "  netconf listen --ssh --port {} --user admin --password pw --host-key-fingerprint {fp} hello",
            listening.port
        )),
        "{:#?}",
        serve.banner
    );
    let out = listening.finish();
    out.ok();
    assert_eq!(
        out.stdout,
        "<ok/>\n<system xmlns=\"urn:example:netconf-cli-demo\"><hostname>called-home</hostname></system>\n"
    );
    assert!(
        out.stderr.contains(&format!("host key {fp} (ssh-ed25519)")),
        "{}",
        out.stderr
    );

    // A manager pinning another key refuses the same device.
    let other = fingerprint(generate_ed25519().public_key());
    let listening = Listening::start(&["hello"], |cmd| {
        cmd.args(["--ssh", "--user", "admin", "--password", "pw"])
            .args(["--host-key-fingerprint", &other]);
    });
    let _serve = Calling::start(
        &[
            "--ssh",
            "--ssh-user",
            "admin:pw",
            "--host-key",
            path(&host_key),
            "--call-home",
            &listening.addr(),
        ],
        |_| {},
        "netconf listen --ssh",
    );
    let out = listening.finish();
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "does not match the pinned fingerprint: offered {fp}, expected {other}"
        )),
        "{}",
        out.stderr
    );
    drop(serve);

    // And a manager trusting another CA refuses serve's certificate.
    let stranger_dir = TempDir::new("stranger");
    let stranger = Pki::other_ca().write_to_dir(stranger_dir.path()).unwrap();
    let listening = Listening::start(&["hello"], |cmd| tls_args(cmd, &stranger, &stranger));
    let _serve = Calling::start(
        &["--call-home", &listening.addr()],
        |cmd| server_files(cmd, &files),
        "calling home over TLS",
    );
    let out = listening.finish();
    out.code(2);
    assert!(
        out.stderr
            .contains("server certificate not trusted by --ca"),
        "{}",
        out.stderr
    );
}

#[test]
fn serve_gives_up_after_max_attempts_and_listen_after_wait() {
    let dir = TempDir::new("give-up");
    let manager = format!("127.0.0.1:{}", closed_port());
    let mut cmd = netconf();
    cmd.args([
        "serve",
        "--call-home",
        &manager,
        "--max-attempts",
        "2",
        "--pki-dir",
    ])
    .arg(dir.path());
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.starts_with(&format!(
            "netconf: call home to {manager}: gave up after 2 failed calls in a row"
        )),
        "{}",
        out.stderr
    );

    let mut cmd = netconf();
    cmd.args(["--tls", "--ca"])
        .arg(dir.path().join("ca.pem"))
        .args([
            "listen",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--wait",
            "1",
            "hello",
        ]);
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.contains("no device called home to 127.0.0.1:")
            && out.stderr.contains("within 1 s (--wait)"),
        "{}",
        out.stderr
    );
}

#[test]
fn listen_checks_its_command_before_listening() {
    let out = run(netconf().args(["listen", "--port", "0", "serve"]));
    out.code(2);
    assert!(
        out.stderr.contains("\"serve\" cannot run there"),
        "{}",
        out.stderr
    );
    let out = run(netconf().args(["listen", "--port", "0", "hello", "--timeout", "3"]));
    out.code(2);
    assert!(
        out.stderr.contains("global options such as --tls"),
        "{}",
        out.stderr
    );
    let out = run(netconf().args(["--tls", "listen", "--port", "0", "get-config", "-o", "/"]));
    out.code(2);
    assert!(out.stderr.contains("cannot write -o /"), "{}", out.stderr);
    let out = run(netconf().args(["serve", "--ssh", "--tls", "--call-home", "127.0.0.1"]));
    out.code(2);
    assert!(out.stderr.contains("one transport"), "{}", out.stderr);
}
