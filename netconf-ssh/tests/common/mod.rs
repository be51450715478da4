//! Shared helpers for the loopback SSH tests: a server of ours on 127.0.0.1,
//! known_hosts files, keys made by ssh-keygen, and the gate for tests that
//! need OpenSSH binaries.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netconf_ssh::{ServerOptions, SshListener, SshServer, SshStream, StaticAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Deadlock guard: generous, never a timing assertion.
pub const GUARD: Duration = Duration::from_secs(60);

pub async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no progress within {GUARD:?} (hang)"),
    }
}

/// Whether `bin` can be run. With NETCONF_INTEROP=require a missing binary
/// fails the test; otherwise the caller skips with a message.
pub fn have(bin: &str) -> bool {
    let found = which(bin).is_some();
    if !found {
        if std::env::var("NETCONF_INTEROP").as_deref() == Ok("require") {
            panic!("{bin} is required (NETCONF_INTEROP=require) but not installed");
        }
        eprintln!("SKIP: {bin} not installed (apt-get install openssh-client openssh-server)");
    }
    found
}

pub fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).exists().then(|| PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.exists())
}

/// Makes a key with ssh-keygen: `kind` is `ed25519`, `rsa`, `ecdsa`;
/// `pem` selects `-m PEM`. Returns the private key path (public key at `.pub`).
pub fn keygen(dir: &Path, name: &str, kind: &str, pem: bool, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new(which("ssh-keygen").expect("ssh-keygen"));
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    if pem {
        cmd.args(["-m", "PEM"]);
    }
    let out = cmd.output().expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

pub fn public_key(path: &Path) -> netconf_ssh::russh::keys::PublicKey {
    netconf_ssh::keys::load_public_key(&path.with_extension("pub")).unwrap()
}

/// Our server on 127.0.0.1, any free port, fast auth rejections.
pub async fn start_server(
    opts: ServerOptions,
    auth: StaticAuth,
) -> (SshServer, SshListener, SocketAddr) {
    let server = SshServer::new(opts.auth_rejection_time(Duration::from_millis(10)), auth).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = server.listen(tcp);
    (server, listener, addr)
}

/// A known_hosts file with the server's key under `[127.0.0.1]:port`.
pub fn known_hosts_for(dir: &Path, server: &SshServer, addr: SocketAddr) -> PathBuf {
    let path = dir.join("known_hosts");
    let key = server.host_public_key().to_openssh().unwrap();
    std::fs::write(&path, format!("[127.0.0.1]:{} {}\n", addr.port(), key)).unwrap();
    path
}

/// Serves one session at a time: echoes everything back until EOF.
pub fn spawn_echo(mut listener: SshListener) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut users = Vec::new();
        while let Some(s) = listener.accept().await {
            users.push(s.username.clone());
            let (_, stream) = s.into_parts();
            tokio::spawn(echo(stream));
        }
        users
    })
}

pub async fn echo(stream: SshStream) {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// Writes `msg`, reads back exactly as many bytes.
pub async fn roundtrip(stream: &mut SshStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).await.unwrap();
    back
}

/// A deterministic pseudo-random payload (xorshift), so corruption and
/// reordering are visible.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// FNV-1a, enough to compare two 100 MB streams.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Checksum(u64, u64);

impl Checksum {
    pub fn new() -> Self {
        Checksum(0xcbf29ce484222325, 0)
    }
    pub fn update(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100000001b3);
        }
        self.1 += data.len() as u64;
    }
}
