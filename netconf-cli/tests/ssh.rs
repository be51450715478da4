//! SSH, the default transport, over real loopback SSH: `netconf serve --ssh` and client
//! commands; wrong password; unknown host key refused; --accept-new-host-key records it;
//! changed key refused; pinned fingerprints; key logins with --host-key/--authorized-keys;
//! both transports from one serve; the NETCONF_* variables. Every known_hosts file is a
//! temporary one given with --known-hosts (or NETCONF_KNOWN_HOSTS).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{lines_of, netconf, run, wait_for, ChildGuard, Out, TempDir};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret";

/// A running `netconf serve --ssh` and what it printed.
#[derive(Debug)]
struct SshServe {
    port: u16,
    fingerprint: String,
    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...`
    known_hosts_line: String,
    /// What serve printed, line by line, up to the known_hosts line.
    banner: Vec<String>,
    log: mpsc::Receiver<String>,
    _child: ChildGuard,
}

impl SshServe {
    /// `netconf serve --ssh --port 0 --ssh-user admin:s3cret` plus `extra`.
    fn start(extra: &[&str]) -> SshServe {
        let mut args = vec!["--ssh-user", "admin:s3cret"];
        args.extend_from_slice(extra);
        SshServe::start_args(&args)
    }

    /// `netconf serve --ssh --port 0` plus `args`.
    fn start_args(args: &[&str]) -> SshServe {
        let mut cmd = netconf();
        cmd.args(["serve", "--ssh", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning netconf serve --ssh");
        let stdout = child.stdout.take().expect("stdout");
        let log = lines_of(child.stderr.take().expect("stderr"));
        let guard = ChildGuard(Some(child));
        let lines = lines_of(stdout);
        let banner = wait_for(&lines, "ssh known_hosts: ");
        let value = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line in {banner:#?}"))
                .trim()
                .to_owned()
        };
        SshServe {
            port: value("ssh: listening on 127.0.0.1:")
                .parse()
                .expect("a port"),
            fingerprint: value("ssh fingerprint: "),
            known_hosts_line: value("ssh known_hosts: "),
            log,
            banner,
            _child: guard,
        }
    }

    /// A known_hosts file in `dir` that holds this server's key.
    fn known_hosts(&self, dir: &TempDir) -> PathBuf {
        dir.file(
            &format!("known_hosts-{}", self.port),
            &format!("{}\n", self.known_hosts_line),
        )
    }

    /// A client command for this server: no transport flag (SSH is the default), the user
    /// and password, `known_hosts`, a 20 s limit.
    fn cmd(&self, known_hosts: &Path, args: &[&str]) -> Command {
        let mut cmd = netconf();
        cmd.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--user", USER, "--password", PASSWORD, "--known-hosts"])
            .arg(known_hosts)
            .args(["--timeout", "20"])
            .args(args);
        cmd
    }
}

fn stderr_starts(out: &Out, prefix: &str) {
    assert!(
        out.stderr.starts_with(prefix),
        "stderr should start with {prefix:?}: {out:#?}"
    );
}

#[test]
fn serve_ssh_and_client_commands() {
    let serve = SshServe::start(&[]);
    let dir = TempDir::new("ssh-commands");
    let kh = serve.known_hosts(&dir);
    assert!(
        serve.fingerprint.starts_with("SHA256:"),
        "{:?}",
        serve.banner
    );

    let out = run(&mut serve.cmd(&kh, &["--format", "pretty", "hello"]));
    out.ok();
    assert!(out.stdout.contains("session-id: 1"), "{}", out.stdout);
    assert!(out.stdout.contains("chunked (base:1.1)"), "{}", out.stdout);

    let out = run(&mut serve.cmd(&kh, &["get-config"]));
    out.ok();
    assert!(out.stdout.contains("<name>eth0</name>"), "{}", out.stdout);

    let edit = r#"<interfaces xmlns="urn:example:netconf-cli-demo"><interface><name>eth1</name><description>set over ssh</description></interface></interfaces>"#;
    let out = run(&mut serve.cmd(
        &kh,
        &[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            edit,
            "--lock",
            "--commit",
        ],
    ));
    out.ok();
    let out = run(&mut serve.cmd(&kh, &["get-config"]));
    out.ok();
    assert!(out.stdout.contains("set over ssh"), "{}", out.stdout);

    // Several commands in one SSH session.
    let out = common::run_with_stdin(
        &mut serve.cmd(&kh, &["batch", "-"]),
        "lock --target candidate\ndiscard-changes\nunlock --target candidate\n",
    );
    out.ok();

    // The server logged each request, of sessions that logged in over SSH.
    let log: Vec<String> = serve.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("edit-config: ok")),
        "serve log: {log:#?}"
    );
    // Nothing was written to known_hosts.
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("{}\n", serve.known_hosts_line)
    );
}

#[test]
fn wrong_password_is_refused() {
    let serve = SshServe::start(&[]);
    let dir = TempDir::new("ssh-password");
    let kh = serve.known_hosts(&dir);
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--port", &serve.port.to_string()])
        .args(["--user", USER, "--password", "not-it", "--known-hosts"])
        .arg(&kh)
        .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    stderr_starts(
        &out,
        &format!(
            "netconf: authentication as \"admin\" to 127.0.0.1:{} failed: tried password",
            serve.port
        ),
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn unknown_host_key_is_refused_and_nothing_recorded() {
    let serve = SshServe::start(&[]);
    let dir = TempDir::new("ssh-unknown");
    // No file at all, then an empty one.
    let missing = dir.path().join("known_hosts");
    let out = run(&mut serve.cmd(&missing, &["hello"]));
    out.code(2);
    stderr_starts(
        &out,
        &format!(
            "netconf: host key for 127.0.0.1:{} is unknown: offered {}, no entry in {}",
            serve.port,
            serve.fingerprint,
            missing.display()
        ),
    );
    assert!(
        out.stderr.contains("--accept-new-host-key"),
        "{}",
        out.stderr
    );
    assert!(!missing.exists(), "a refused host key was recorded");

    let empty = dir.file("empty", "");
    let out = run(&mut serve.cmd(&empty, &["hello"]));
    out.code(2);
    assert!(out.stderr.contains("is unknown"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
}

#[test]
fn accept_new_host_key_records_it() {
    let serve = SshServe::start(&[]);
    let dir = TempDir::new("ssh-accept-new");
    // In a directory that does not exist yet, as ~/.ssh may not.
    let kh = dir.path().join("ssh").join("known_hosts");
    let out = run(&mut serve.cmd(&kh, &["--accept-new-host-key", "hello"]));
    out.ok();
    let recorded = std::fs::read_to_string(&kh).expect("known_hosts written");
    assert_eq!(recorded.trim_end(), serve.known_hosts_line, "{recorded}");
    // Known from now on, without the flag; and recorded once.
    run(&mut serve.cmd(&kh, &["hello"])).ok();
    run(&mut serve.cmd(&kh, &["--accept-new-host-key", "hello"])).ok();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), recorded);
}

#[test]
fn changed_host_key_is_refused_even_with_accept_new() {
    let first = SshServe::start(&[]);
    let second = SshServe::start(&[]);
    assert_ne!(first.fingerprint, second.fingerprint);
    let dir = TempDir::new("ssh-changed");
    // The second server's address with the first server's key: what a changed key, or a
    // man in the middle, looks like.
    let first_key = first
        .known_hosts_line
        .split_once(' ')
        .expect("name and key")
        .1;
    let kh = dir.file(
        "known_hosts",
        &format!("# ours\n[127.0.0.1]:{} {first_key}\n", second.port),
    );
    for extra in [&[][..], &["--accept-new-host-key"][..]] {
        let mut cmd = second.cmd(&kh, extra);
        cmd.arg("hello");
        let out = run(&mut cmd);
        out.code(2);
        stderr_starts(
            &out,
            &format!(
                "netconf: host key for 127.0.0.1:{} changed: offered {}, {} line 2 has {}",
                second.port,
                second.fingerprint,
                kh.display(),
                first.fingerprint
            ),
        );
        assert!(out.stderr.contains("delete line 2"), "{}", out.stderr);
    }
    assert!(!std::fs::read_to_string(&kh)
        .unwrap()
        .contains(&second.known_hosts_line));
}

#[test]
fn pinned_fingerprint() {
    let serve = SshServe::start(&[]);
    let pin = |fp: &str| {
        let mut cmd = netconf();
        cmd.args(["--host", "127.0.0.1", "--port", &serve.port.to_string()])
            .args(["--user", USER, "--password", PASSWORD])
            .args(["--host-key-fingerprint", fp, "hello"]);
        run(&mut cmd)
    };
    pin(&serve.fingerprint).ok();
    let out = pin("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    out.code(2);
    assert!(
        out.stderr.contains("does not match the pinned fingerprint"),
        "{}",
        out.stderr
    );
}

#[test]
fn key_login_with_host_key_and_authorized_keys_files() {
    use netconf_blocking::ssh::keys::generate_ed25519;
    let dir = TempDir::new("ssh-keys");
    let host = generate_ed25519();
    let user = generate_ed25519();
    let write_private = |name: &str, key: &netconf_blocking::ssh::PrivateKey| {
        let text = key
            .to_openssh(Default::default())
            .expect("OpenSSH encoding");
        dir.file(name, &text)
    };
    let host_key = write_private("host_ed25519", &host);
    let user_key = write_private("id_ed25519", &user);
    let authorized = dir.file(
        "authorized_keys",
        &format!(
            "{} me@test\n",
            user.public_key().to_openssh().expect("OpenSSH encoding")
        ),
    );
    let serve = SshServe::start_args(&[
        "--ssh-user",
        "ops",
        "--authorized-keys",
        authorized.to_str().unwrap(),
        "--host-key",
        host_key.to_str().unwrap(),
    ]);
    let expected = netconf_blocking::ssh::known_hosts::fingerprint(host.public_key());
    assert_eq!(serve.fingerprint, expected, "--host-key was not used");
    let kh = serve.known_hosts(&dir);
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--port", &serve.port.to_string()])
        .args(["--user", "ops", "--key"])
        .arg(&user_key)
        .arg("--known-hosts")
        .arg(&kh)
        .arg("get-config");
    let out = run(&mut cmd);
    out.ok();
    assert!(out.stdout.contains("<name>eth0</name>"), "{}", out.stdout);

    // A key the server does not know.
    let other = write_private("other_ed25519", &generate_ed25519());
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--port", &serve.port.to_string()])
        .args(["--user", "ops", "--key"])
        .arg(&other)
        .arg("--known-hosts")
        .arg(&kh)
        .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.contains("authentication as \"ops\""),
        "{}",
        out.stderr
    );
}

#[test]
fn serve_without_users_makes_up_a_password() {
    let serve = SshServe::start_args(&[]);
    let password = serve
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("ssh password: "))
        .expect("a generated password is printed")
        .to_owned();
    assert!(serve.banner.iter().any(|l| l == "ssh user: admin"));
    let dir = TempDir::new("ssh-generated");
    let kh = serve.known_hosts(&dir);
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--port", &serve.port.to_string()])
        .args(["--user", "admin", "--password", &password, "--known-hosts"])
        .arg(&kh)
        .arg("hello");
    run(&mut cmd).ok();
}

#[test]
fn serve_both_transports_share_the_datastores() {
    let dir = TempDir::new("ssh-both");
    let mut cmd = netconf();
    cmd.args(["serve", "--ssh", "--tls", "--port", "0", "--pki-dir"])
        .arg(dir.path().join("pki"))
        .args(["--ssh-user", "admin:s3cret", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning netconf serve --ssh --tls");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    let _guard = ChildGuard(Some(child));
    let seen = wait_for(&lines, "key: ");
    let value = |prefix: &str| {
        seen.iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {seen:#?}"))
            .trim()
            .to_owned()
    };
    let ssh_port = value("ssh: listening on 127.0.0.1:");
    let tls_port = value("listening on 127.0.0.1:");
    assert_ne!(ssh_port, tls_port);
    let kh = dir.file("known_hosts", &format!("{}\n", value("ssh known_hosts: ")));

    let edit =
        r#"<system xmlns="urn:example:netconf-cli-demo"><hostname>both-ways</hostname></system>"#;
    let mut over_ssh = netconf();
    over_ssh
        .args(["--host", "127.0.0.1", "--port", &ssh_port])
        .args(["--user", USER, "--password", PASSWORD, "--known-hosts"])
        .arg(&kh)
        .args(["edit-config", "--config", edit]);
    run(&mut over_ssh).ok();

    let mut over_tls = netconf();
    over_tls
        .args(["--host", "127.0.0.1", "--port", &tls_port])
        .arg("--ca")
        .arg(value("ca: "))
        .arg("--cert")
        .arg(value("cert: "))
        .arg("--key")
        .arg(value("key: "))
        .arg("get-config");
    let out = run(&mut over_tls);
    out.ok();
    assert!(out.stdout.contains("both-ways"), "{}", out.stdout);
}

#[test]
fn environment_variables_configure_ssh() {
    let serve = SshServe::start(&[]);
    let dir = TempDir::new("ssh-env");
    let kh = dir.path().join("known_hosts");
    let mut cmd = netconf();
    cmd.env("NETCONF_HOST", "127.0.0.1")
        .env("NETCONF_PORT", serve.port.to_string())
        .env("NETCONF_USER", USER)
        .env("NETCONF_PASSWORD", PASSWORD)
        .env("NETCONF_KNOWN_HOSTS", &kh)
        .env("NETCONF_ACCEPT_NEW_HOST_KEY", "true")
        .arg("hello");
    run(&mut cmd).ok();
    assert!(std::fs::read_to_string(&kh)
        .unwrap()
        .contains(&serve.known_hosts_line));
}

#[test]
fn ssh_is_the_default_transport_on_port_830() {
    let dir = TempDir::new("ssh-default");
    let kh = dir.path().join("known_hosts");
    let mut cmd = netconf();
    cmd.args([
        "--host",
        "127.0.0.1",
        "--user",
        USER,
        "--password",
        PASSWORD,
    ])
    .arg("--known-hosts")
    .arg(&kh)
    .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    // Nothing listens on 830 here (if something does, it is not us: still a failure that
    // names the address).
    assert!(
        out.stderr.contains("127.0.0.1:830"),
        "SSH on 830 expected: {}",
        out.stderr
    );
    // --tls: TLS on 6513.
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--tls", "--ca"])
        .arg(dir.file("ca.pem", "not a certificate"))
        .arg("hello");
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.contains("127.0.0.1:6513") || out.stderr.contains("--ca"),
        "TLS on 6513 expected: {}",
        out.stderr
    );
    let mut cmd = netconf();
    cmd.args(["--ssh", "--tls", "hello"]);
    let out = run(&mut cmd);
    out.code(2);
    assert!(out.stderr.contains("choose one"), "{}", out.stderr);
}

#[test]
fn serve_rejects_bad_ssh_options() {
    let out = run(netconf().args(["serve", "--ssh", "--port", "0", "--ssh-user", "nopassword"]));
    out.code(2);
    assert!(out.stderr.contains("has no password"), "{}", out.stderr);
    let out = run(netconf().args([
        "serve",
        "--ssh",
        "--port",
        "0",
        "--host-key",
        "/nonexistent/host_key",
    ]));
    out.code(2);
    assert!(
        out.stderr
            .starts_with("netconf: --host-key /nonexistent/host_key"),
        "{}",
        out.stderr
    );
    let out = run(netconf().args([
        "serve",
        "--ssh",
        "--tls",
        "--port",
        "8830",
        "--ssh-port",
        "8830",
    ]));
    out.code(2);
    assert!(out.stderr.contains("--ssh-port"), "{}", out.stderr);
}
