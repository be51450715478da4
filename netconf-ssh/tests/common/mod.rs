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

/// What a [`raw_server`] does when the subsystem is requested. It gets the
/// russh session (to send before/after the reply) and the channel.
pub type OnSubsystem = std::sync::Arc<
    dyn Fn(
            netconf_ssh::russh::ChannelId,
            &mut netconf_ssh::russh::server::Session,
            netconf_ssh::russh::Channel<netconf_ssh::russh::server::Msg>,
        ) + Send
        + Sync,
>;

/// A plain russh server (password "u"/"p") whose subsystem behaviour is
/// scripted: for peers that misbehave in ways our own server never would.
/// Returns its address and a known_hosts file for it.
pub async fn raw_server(dir: &Path, on_subsystem: OnSubsystem) -> (SocketAddr, PathBuf) {
    use netconf_ssh::russh::server::{Auth, Msg, Session};
    use netconf_ssh::russh::{self, Channel, ChannelId};
    use std::sync::Arc;

    struct H {
        chan: Option<Channel<Msg>>,
        on: OnSubsystem,
    }
    impl russh::server::Handler for H {
        type Error = russh::Error;
        async fn auth_password(&mut self, u: &str, p: &str) -> Result<Auth, Self::Error> {
            Ok(if u == "u" && p == "p" {
                Auth::Accept
            } else {
                Auth::reject()
            })
        }
        async fn channel_open_session(
            &mut self,
            channel: Channel<Msg>,
            reply: russh::server::ChannelOpenHandle,
            _s: &mut Session,
        ) -> Result<(), Self::Error> {
            reply.accept().await;
            self.chan = Some(channel);
            Ok(())
        }
        async fn subsystem_request(
            &mut self,
            id: ChannelId,
            _name: &str,
            session: &mut Session,
        ) -> Result<(), Self::Error> {
            let chan = self.chan.take().unwrap();
            (self.on)(id, session, chan);
            Ok(())
        }
    }
    let key = netconf_ssh::keys::generate_ed25519();
    let line = key.public_key().to_openssh().unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::from_millis(10),
        ..Default::default()
    });
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let h = H {
                chan: None,
                on: on_subsystem.clone(),
            };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(run) = russh::server::run_stream(config, s, h).await {
                    let _ = run.await;
                }
            });
        }
    });
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:{} {line}\n", addr.port())).unwrap();
    (addr, kh)
}

/// Reads until EOF or error; returns what was read and how it ended.
pub async fn read_to_end(s: &mut SshStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}
