//! Interop with OpenSSH: our client against `sshd` (with `Subsystem netconf
//! /bin/cat` as an echo peer), and OpenSSH's `ssh -s ... netconf` against our
//! server. Run when the binaries exist; with NETCONF_INTEROP=require a
//! missing binary fails the test; otherwise the test prints SKIP and passes.
//! Everything listens on 127.0.0.1 and is written under a temp dir (except
//! `/run/sshd`, sshd's privilege-separation directory, created if missing
//! when running as root).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use netconf_ssh::{connect, Algorithms, ClientOptions, Error, ServerOptions, StaticAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An sshd we started; killed (by its own pid) when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user_key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts sshd with an ECDSA host key (and the given extra config lines),
/// accepting the returned user key for the current user.
async fn start_sshd(host_key_type: &str, extra: &str) -> Option<Sshd> {
    let sshd = which("sshd");
    if sshd.is_none() || !have("ssh-keygen") {
        have("sshd");
        return None;
    }
    let sshd = sshd.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host_key = keygen(dir.path(), "host_key", host_key_type, false, "");
    let user_key = keygen(dir.path(), "id_ed25519", "ed25519", false, "");
    std::fs::copy(
        user_key.with_extension("pub"),
        dir.path().join("authorized_keys"),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nSubsystem netconf /bin/cat\n{extra}\n",
            hk = host_key.display(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    if current_user() == "root" {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("sshd.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let s = Sshd {
        child,
        port,
        dir,
        user_key,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "sshd did not listen on {port}: {}",
        std::fs::read_to_string(s.dir.path().join("sshd.log")).unwrap_or_default()
    );
}

impl Sshd {
    fn known_hosts(&self) -> PathBuf {
        let pubkey = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, pubkey)).unwrap();
        path
    }

    fn opts(&self) -> ClientOptions {
        ClientOptions::new(current_user())
            .key_file(&self.user_key)
            .known_hosts(self.known_hosts())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

#[tokio::test]
async fn our_client_against_sshd_echo() {
    let Some(sshd) = start_sshd("ecdsa", "").await else {
        return;
    };
    let mut s = guard("connect", connect("127.0.0.1", sshd.port, &sshd.opts()))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", error_chain(&e), sshd.log()));
    assert_eq!(
        guard("echo", roundtrip(&mut s, b"<hello/>]]>]]>")).await,
        b"<hello/>]]>]]>"
    );
    // cat ends when we send EOF, and sshd then closes the channel: clean EOF.
    s.shutdown().await.unwrap();
    let (rest, end) = guard("eof", read_to_end(&mut s)).await;
    end.unwrap();
    assert!(rest.is_empty());
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(&format!(" <- {s}"));
        cur = s.source();
    }
    out
}

/// 10 MiB written to `cat` before reading any of the echo back: sshd's and
/// cat's buffers fill, our layer must keep absorbing so sshd's window
/// adjusts for our data keep arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_sshd_10mib_write_then_read() {
    let Some(sshd) = start_sshd("ed25519", "").await else {
        return;
    };
    let mut s = guard("connect", connect("127.0.0.1", sshd.port, &sshd.opts()))
        .await
        .unwrap();
    let data = payload(10 << 20, 5);
    guard("write 10 MiB", s.write_all(&data)).await.unwrap();
    let mut back = vec![0u8; data.len()];
    guard("read 10 MiB", s.read_exact(&mut back)).await.unwrap();
    assert!(back == data);
}

/// A server that offers only ecdh-sha2-nistp256 (like some NX-OS releases).
#[tokio::test]
async fn sshd_with_only_nistp256_kex() {
    let Some(sshd) = start_sshd("ecdsa", "KexAlgorithms ecdh-sha2-nistp256").await else {
        return;
    };
    let mut s = guard("connect", connect("127.0.0.1", sshd.port, &sshd.opts()))
        .await
        .unwrap_or_else(|e| panic!("{e}{}\n{}", error_chain(&e), sshd.log()));
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
}

/// diffie-hellman-group14-sha1 only: refused by default, reached with the
/// explicit legacy option.
#[tokio::test]
async fn sshd_with_only_group14_sha1_needs_the_legacy_option() {
    let Some(sshd) = start_sshd("ecdsa", "KexAlgorithms diffie-hellman-group14-sha1").await else {
        return;
    };
    let err = guard("connect", connect("127.0.0.1", sshd.port, &sshd.opts()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Ssh { .. }), "{err:?}");
    let legacy = sshd
        .opts()
        .algorithms(Algorithms::default().legacy_sha1(true));
    let mut s = guard("connect", connect("127.0.0.1", sshd.port, &legacy))
        .await
        .unwrap_or_else(|e| panic!("{e}{}\n{}", error_chain(&e), sshd.log()));
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
}

#[tokio::test]
async fn sshd_accept_new_records_ecdsa_key() {
    let Some(sshd) = start_sshd("ecdsa", "").await else {
        return;
    };
    let kh = sshd.dir.path().join("learned_known_hosts");
    let o = ClientOptions::new(current_user())
        .key_file(&sshd.user_key)
        .known_hosts(&kh)
        .accept_new_host_keys(true);
    guard("connect", connect("127.0.0.1", sshd.port, &o))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{} ecdsa-sha2-nistp256 ", sshd.port)),
        "{text}"
    );
    // OpenSSH's own client accepts what we recorded.
    if which("ssh-keygen").is_some() {
        let out = Command::new(which("ssh-keygen").unwrap())
            .arg("-F")
            .arg(format!("[127.0.0.1]:{}", sshd.port))
            .arg("-f")
            .arg(&kh)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen -F does not find the recorded key"
        );
    }
}

/// OpenSSH's client against our server, with a key of `kind`.
async fn openssh_client_against_our_server(kind: &str) {
    if !have("ssh") || !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), &format!("id_{kind}"), kind, false, "");
    let (server, mut listener, addr) = start_server(
        ServerOptions::default(),
        StaticAuth::new().authorized_key("netconf-user", public_key(&key)),
    )
    .await;
    let kh = known_hosts_for(dir.path(), &server, addr);
    let server_task = tokio::spawn(async move {
        let s = listener.accept().await.unwrap();
        assert_eq!(s.username, "netconf-user");
        echo(s.stream).await;
    });
    let ssh = which("ssh").unwrap();
    let port = addr.port().to_string();
    let mut child = tokio::process::Command::new(ssh)
        .args(["-F", "/dev/null", "-T", "-s", "-p", &port, "-i"])
        .arg(&key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "netconf-user@127.0.0.1",
            "netconf",
        ])
        .env("HOME", dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let msg = payload(1 << 20, 9);
    let m2 = msg.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&m2).await.unwrap();
        drop(stdin); // EOF: our echo then shuts down, ssh exits
    });
    let out = guard("ssh client", child.wait_with_output()).await.unwrap();
    writer.await.unwrap();
    assert!(
        out.stdout == msg,
        "ssh got {} bytes back; status {:?}; stderr: {}",
        out.stdout.len(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    guard("server", server_task).await.unwrap();
}

#[tokio::test]
async fn openssh_client_ed25519_against_our_server() {
    openssh_client_against_our_server("ed25519").await;
}

#[tokio::test]
async fn openssh_client_rsa_against_our_server() {
    openssh_client_against_our_server("rsa").await;
}

/// OpenSSH asking for a subsystem we do not run gets a refusal, not a hang.
#[tokio::test]
async fn openssh_client_other_subsystem_refused() {
    if !have("ssh") || !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519", "ed25519", false, "");
    let (server, _listener, addr) = start_server(
        ServerOptions::default(),
        StaticAuth::new().authorized_key("u", public_key(&key)),
    )
    .await;
    let kh = known_hosts_for(dir.path(), &server, addr);
    let out = guard(
        "ssh",
        tokio::process::Command::new(which("ssh").unwrap())
            .args([
                "-F",
                "/dev/null",
                "-T",
                "-s",
                "-p",
                &addr.port().to_string(),
                "-i",
            ])
            .arg(&key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "u@127.0.0.1",
                "sftp",
            ])
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("subsystem request failed"), "{err}");
    let _ = Path::new("");
}
