//! The client side: dial (or take a stream), verify the host key,
//! authenticate, start the subsystem, hand out the byte channel.
//!
//! Every step has its own deadline ([`ClientOptions::connect_timeout`] and
//! friends) because the failure that hurts in automation is a connect that
//! never returns. The returned [`SshStream`] is only handed out after the
//! server *confirmed* the subsystem, so the first NETCONF bytes we send (the
//! hello) cannot reach a server that has not started it; bytes the server
//! sends before its confirmation are kept, not dropped.
//!
//! Run these futures inside the tokio runtime that is to own the connection
//! (`tokio::spawn`, `Runtime::block_on`, or a compat layer that enters it):
//! the russh tasks are spawned there and must live as long as the stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{Config, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::{PrivateKey, PublicKey};
use russh::Disconnect;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::algorithms::Algorithms;
use crate::channel::{self, ChannelOptions, SshStream};
use crate::error::TimeoutKind;
use crate::known_hosts::{self, fingerprint, Verdict};
use crate::{auth, Error};

/// The NETCONF port for SSH (RFC 6242).
pub const NETCONF_SSH_PORT: u16 = 830;

/// How the server's host key is checked.
///
/// `#[non_exhaustive]`: host certificates (`@cert-authority`) may be added.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostKeyCheck {
    /// Look the key up in an OpenSSH known_hosts file (`None`:
    /// `$HOME/.ssh/known_hosts`). With `accept_new`, a host with no entry is
    /// trusted and recorded, like `StrictHostKeyChecking=accept-new`. A
    /// changed key is refused either way.
    KnownHosts {
        path: Option<PathBuf>,
        accept_new: bool,
    },
    /// Accept exactly the key with this fingerprint (`SHA256:...`, as
    /// `ssh-keygen -l` prints it).
    Fingerprint(String),
    /// Accept any key. Only for labs and tests: anyone on the path can read
    /// and change the session.
    InsecureAcceptAny,
}

/// A private key to offer.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// An OpenSSH or PEM file, loaded at connect time.
    File {
        path: PathBuf,
        passphrase: Option<String>,
    },
    /// A key already in memory.
    Key(Arc<PrivateKey>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File { path, passphrase } => f
                .debug_struct("File")
                .field("path", path)
                .field("passphrase", &passphrase.as_ref().map(|_| "***"))
                .finish(),
            KeySource::Key(k) => f.debug_tuple("Key").field(&k.algorithm()).finish(),
        }
    }
}

/// The caller's decision on a server's host key, after the configured check passed it.
pub type HostKeyFilter = Arc<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// A server's host key as RFC 8071 call home reports the device that called.
pub fn device_identity(key: &PublicKey) -> netconf_proto::call_home::DeviceIdentity {
    netconf_proto::call_home::DeviceIdentity::HostKey {
        fingerprint: fingerprint(key),
        openssh: key.to_openssh().unwrap_or_default(),
    }
}

/// Everything a client connection needs besides the address.
///
/// `#[non_exhaustive]` so options can be added without breaking callers:
/// start from [`ClientOptions::new`] and chain the setters.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    pub user: String,
    /// Decides on a host key that passed [`ClientOptions::host_key`]'s check (see
    /// [`ClientOptions::host_key_filter`]).
    pub host_key_filter: Option<HostKeyFilter>,
    pub password: Option<String>,
    pub keys: Vec<KeySource>,
    /// Offer the keys of the agent at `SSH_AUTH_SOCK`.
    pub agent: bool,
    pub host_key: HostKeyCheck,
    /// `netconf` (RFC 6242); some NX-OS releases used `xmlagent`.
    pub subsystem: String,
    pub connect_timeout: Duration,
    pub auth_timeout: Duration,
    pub subsystem_timeout: Duration,
    pub algorithms: Algorithms,
    pub channel: ChannelOptions,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("keys", &self.keys)
            .field("agent", &self.agent)
            .field("host_key", &self.host_key)
            .field(
                "host_key_filter",
                &self.host_key_filter.as_ref().map(|_| "Fn"),
            )
            .field("subsystem", &self.subsystem)
            .field("connect_timeout", &self.connect_timeout)
            .field("auth_timeout", &self.auth_timeout)
            .field("subsystem_timeout", &self.subsystem_timeout)
            .field("algorithms", &self.algorithms)
            .field("channel", &self.channel)
            .finish()
    }
}

impl ClientOptions {
    /// Options for `user`: host keys checked against `~/.ssh/known_hosts`,
    /// subsystem `netconf`, 30 s per step, no credentials yet.
    pub fn new(user: impl Into<String>) -> Self {
        ClientOptions {
            user: user.into(),
            host_key_filter: None,
            password: None,
            keys: Vec::new(),
            agent: false,
            host_key: HostKeyCheck::KnownHosts {
                path: None,
                accept_new: false,
            },
            subsystem: "netconf".into(),
            connect_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(30),
            subsystem_timeout: Duration::from_secs(30),
            algorithms: Algorithms::default(),
            channel: ChannelOptions::default(),
        }
    }

    /// Has `filter` decide on the server's host key once the configured check passed it,
    /// during key exchange: a refused server (`Error::HostKeyRefused`) never sees our
    /// credentials. Call home uses it to accept or refuse a device by its key.
    pub fn host_key_filter(
        mut self,
        filter: impl Fn(&PublicKey) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.host_key_filter = Some(Arc::new(filter));
        self
    }

    /// Password, used for `password` and `keyboard-interactive`.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds an unencrypted private key file.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.keys.push(KeySource::File {
            path: path.into(),
            passphrase: None,
        });
        self
    }

    /// Adds a passphrase-protected private key file.
    pub fn key_file_with_passphrase(
        mut self,
        path: impl Into<PathBuf>,
        passphrase: impl Into<String>,
    ) -> Self {
        self.keys.push(KeySource::File {
            path: path.into(),
            passphrase: Some(passphrase.into()),
        });
        self
    }

    /// Adds a key already loaded.
    pub fn key(mut self, key: PrivateKey) -> Self {
        self.keys.push(KeySource::Key(Arc::new(key)));
        self
    }

    /// Offers the keys held by the agent at `SSH_AUTH_SOCK`.
    pub fn agent(mut self, yes: bool) -> Self {
        self.agent = yes;
        self
    }

    /// Checks host keys against this known_hosts file (keeps `accept_new`).
    pub fn known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        let accept_new = matches!(
            self.host_key,
            HostKeyCheck::KnownHosts {
                accept_new: true,
                ..
            }
        );
        self.host_key = HostKeyCheck::KnownHosts {
            path: Some(path.into()),
            accept_new,
        };
        self
    }

    /// Trusts and records the key of a host that has no known_hosts entry.
    pub fn accept_new_host_keys(mut self, yes: bool) -> Self {
        let path = match &self.host_key {
            HostKeyCheck::KnownHosts { path, .. } => path.clone(),
            _ => None,
        };
        self.host_key = HostKeyCheck::KnownHosts {
            path,
            accept_new: yes,
        };
        self
    }

    /// Accepts only the key with this `SHA256:...` fingerprint.
    pub fn host_key_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.host_key = HostKeyCheck::Fingerprint(fingerprint.into());
        self
    }

    /// Accepts any host key. Insecure; for labs and tests.
    pub fn insecure_accept_any_host_key(mut self) -> Self {
        self.host_key = HostKeyCheck::InsecureAcceptAny;
        self
    }

    /// Subsystem name (default `netconf`).
    pub fn subsystem(mut self, name: impl Into<String>) -> Self {
        self.subsystem = name.into();
        self
    }

    /// Deadline for TCP connect plus key exchange.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Deadline for authentication.
    pub fn auth_timeout(mut self, d: Duration) -> Self {
        self.auth_timeout = d;
        self
    }

    /// Deadline for opening the channel and starting the subsystem.
    pub fn subsystem_timeout(mut self, d: Duration) -> Self {
        self.subsystem_timeout = d;
        self
    }

    /// Algorithm opt-ins (legacy SHA-1).
    pub fn algorithms(mut self, a: Algorithms) -> Self {
        self.algorithms = a;
        self
    }

    /// Channel layer settings (read buffer bound).
    pub fn channel(mut self, c: ChannelOptions) -> Self {
        self.channel = c;
        self
    }

    fn known_hosts_path(&self) -> Option<PathBuf> {
        match &self.host_key {
            HostKeyCheck::KnownHosts { path: Some(p), .. } => Some(p.clone()),
            HostKeyCheck::KnownHosts { path: None, .. } => {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"))
            }
            _ => None,
        }
    }
}

/// Why russh's handler stopped: its own error, or our refusal of the host key.
#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    Refused(Box<Error>),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

/// russh's client callbacks: only the host key check matters to us; channel
/// data is handled by the drain task (see [`crate::channel`]).
pub(crate) struct ClientHandler {
    check: HostKeyCheck,
    filter: Option<HostKeyFilter>,
    known_hosts: Option<PathBuf>,
    entry_name: String,
    peer: String,
}

impl ClientHandler {
    fn verify(&self, key: &PublicKey) -> Result<(), Error> {
        self.check(key)?;
        match &self.filter {
            Some(filter) if !filter(key) => Err(Error::HostKeyRefused {
                host: self.peer.clone(),
                offered: fingerprint(key),
            }),
            _ => Ok(()),
        }
    }

    fn check(&self, key: &PublicKey) -> Result<(), Error> {
        let offered = fingerprint(key);
        let host = self.peer.clone();
        match &self.check {
            HostKeyCheck::InsecureAcceptAny => {
                tracing::warn!(%host, %offered, "host key accepted without checking");
                Ok(())
            }
            HostKeyCheck::Fingerprint(expected) => {
                let want = expected.trim();
                let want = want.strip_prefix("SHA256:").unwrap_or(want);
                let got = offered.strip_prefix("SHA256:").unwrap_or(&offered);
                if want.trim_end_matches('=') == got.trim_end_matches('=') {
                    Ok(())
                } else {
                    Err(Error::HostKeyMismatch {
                        host,
                        offered,
                        expected: expected.clone(),
                    })
                }
            }
            HostKeyCheck::KnownHosts { accept_new, .. } => {
                let Some(path) = self.known_hosts.clone() else {
                    return Err(Error::Config(
                        "no known_hosts file: HOME is not set; give a path, a fingerprint, \
                         or accept any key explicitly"
                            .into(),
                    ));
                };
                let verdict =
                    known_hosts::check(&path, &self.entry_name, key).map_err(|source| {
                        Error::KnownHosts {
                            path: path.clone(),
                            what: "cannot read",
                            source,
                        }
                    })?;
                match verdict {
                    Verdict::Known => Ok(()),
                    Verdict::Changed { line, known } => Err(Error::HostKeyChanged {
                        host,
                        offered,
                        known,
                        path,
                        line,
                    }),
                    // Accepting a new key type for a host we know under
                    // another type would let an attacker pick the type.
                    Verdict::OtherTypes { line, known } if *accept_new => {
                        Err(Error::HostKeyChanged {
                            host,
                            offered,
                            known,
                            path,
                            line,
                        })
                    }
                    Verdict::Revoked { line } => Err(Error::HostKeyRevoked {
                        host,
                        offered,
                        path,
                        line,
                    }),
                    Verdict::Unknown if *accept_new => {
                        known_hosts::record(&path, &self.entry_name, key).map_err(|source| {
                            Error::KnownHosts {
                                path: path.clone(),
                                what: "cannot record the new host key",
                                source,
                            }
                        })?;
                        tracing::info!(%host, %offered, file = %path.display(), "new host key recorded");
                        Ok(())
                    }
                    Verdict::Unknown | Verdict::OtherTypes { .. } => Err(Error::UnknownHostKey {
                        host,
                        offered,
                        path,
                    }),
                }
            }
        }
    }
}

impl russh::client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self
                .verify(key)
                .map(|()| true)
                .map_err(|e| HandlerError::Refused(Box::new(e))),
            // We never advertise certificate host-key algorithms.
            _ => Err(HandlerError::Refused(Box::new(Error::Config(format!(
                "{} presented a host certificate, which is not supported",
                self.peer
            ))))),
        }
    }
}

fn peer_name(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn deadline<T>(
    kind: TimeoutKind,
    after: Duration,
    peer: &str,
    f: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(after, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            kind,
            peer: peer.to_owned(),
            after,
        }),
    }
}

/// Dials `host:port` (830 is [`NETCONF_SSH_PORT`]) and returns the NETCONF
/// byte channel once the subsystem runs.
pub async fn connect(host: &str, port: u16, opts: &ClientOptions) -> Result<SshStream, Error> {
    let peer = peer_name(host, port);
    let start = tokio::time::Instant::now();
    let tcp = deadline(TimeoutKind::Connect, opts.connect_timeout, &peer, async {
        TcpStream::connect((host, port))
            .await
            .map_err(|source| Error::Connect {
                peer: peer.clone(),
                source,
            })
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let left = opts.connect_timeout.saturating_sub(start.elapsed());
    run(tcp, host, port, opts, peer, left).await
}

/// Runs the client over a stream the caller already has: a TCP connection we
/// accepted for RFC 8071 call home, a proxy tunnel, a test pipe. `host` and
/// `port` name the server for host-key lookup and messages.
pub async fn connect_stream<S>(
    stream: S,
    host: &str,
    port: u16,
    opts: &ClientOptions,
) -> Result<SshStream, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = peer_name(host, port);
    run(stream, host, port, opts, peer, opts.connect_timeout).await
}

async fn run<S>(
    stream: S,
    host: &str,
    port: u16,
    opts: &ClientOptions,
    peer: String,
    kex_time: Duration,
) -> Result<SshStream, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let entry_name = known_hosts::host_entry_name(host, port);
    let known_hosts = opts.known_hosts_path();
    let known_algs = known_hosts
        .as_deref()
        .map(|p| known_hosts::known_algorithms(p, &entry_name))
        .unwrap_or_default();
    let config = Arc::new(Config {
        preferred: opts.algorithms.preferred(&known_algs),
        nodelay: true,
        ..Config::default()
    });
    let handler = ClientHandler {
        check: opts.host_key.clone(),
        filter: opts.host_key_filter.clone(),
        known_hosts,
        entry_name,
        peer: peer.clone(),
    };

    let mut handle = deadline(TimeoutKind::Connect, kex_time, &peer, async {
        russh::client::connect_stream(config, stream, handler)
            .await
            .map_err(|e| match e {
                HandlerError::Refused(e) => *e,
                HandlerError::Ssh(e) => Error::ssh("key exchange", &peer, e),
            })
    })
    .await?;

    deadline(
        TimeoutKind::Auth,
        opts.auth_timeout,
        &peer,
        auth::authenticate(&mut handle, opts, &peer),
    )
    .await?;

    deadline(
        TimeoutKind::Subsystem,
        opts.subsystem_timeout,
        &peer,
        start_subsystem(handle, opts, &peer),
    )
    .await
}

async fn start_subsystem(
    handle: Handle<ClientHandler>,
    opts: &ClientOptions,
    peer: &str,
) -> Result<SshStream, Error> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| Error::ssh("opening the session channel", peer, e))?;
    // Wired before the request goes out, so the drain task is already
    // collecting anything the server sends ahead of its reply.
    let wired = channel::wire(channel, &opts.channel, peer.to_owned());
    wired
        .write_half
        .request_subsystem(true, opts.subsystem.as_str())
        .await
        .map_err(|e| Error::ssh("requesting the subsystem", peer, e))?;
    match wired.reply.await {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::SubsystemRefused {
                peer: peer.to_owned(),
                name: opts.subsystem.clone(),
            })
        }
        Err(_) => {
            return Err(Error::ChannelClosed {
                peer: peer.to_owned(),
                name: opts.subsystem.clone(),
            })
        }
    }
    let write_half = wired.write_half;
    let (dropped, drained) = (wired.dropped, wired.drained);
    // The keeper owns the russh handle on this runtime; when the stream is
    // dropped (anywhere) it ends the channel and the connection here.
    tokio::spawn(async move {
        let _ = dropped.await;
        // EOF goes through the same queue as our data, so it leaves after it.
        // Then, as `ssh -s` does, wait for the server to close the channel:
        // it does so once it has read everything. Disconnecting at once would
        // make our kernel answer the server's next packet (a window adjust)
        // with a reset, and a reset discards whatever the server had not read
        // yet, the tail of our last message (tests/transfer.rs caught that).
        let _ = write_half.eof().await;
        if tokio::time::timeout(channel::CLOSE_LINGER, drained)
            .await
            .is_err()
        {
            let _ = write_half.close().await;
        }
        let _ = handle
            .disconnect(Disconnect::ByApplication, "NETCONF session ended", "en")
            .await;
    });
    Ok(wired.stream)
}
