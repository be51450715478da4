//! The server side: accept SSH connections (or run over a stream we dialed,
//! for RFC 8071 call home), authenticate through the caller's callbacks,
//! start only the NETCONF subsystem, and hand out one [`ServerSession`] per
//! connection.
//!
//! Everything a NETCONF server does not need is refused: shells, exec, ptys,
//! forwarding, other subsystems, a second channel. A connection that has not
//! reached a running subsystem within [`ServerOptions::handshake_timeout`] is
//! dropped, and at most [`ServerOptions::max_connections`] connections exist
//! at once (those over the cap are closed right after accept), so
//! unauthenticated peers cannot pile up.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Response, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::algorithms::Algorithms;
use crate::channel::{self, ChannelOptions, SshStream, Wired};
use crate::error::TimeoutKind;
use crate::known_hosts::fingerprint;
use crate::{keys, Error};

/// What an [`Authenticator`] returns: `Some(netconf_username)` to accept.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

/// Decides who may log in, and as which NETCONF user.
///
/// The returned name is what NETCONF access control sees (RFC 6241 section
/// 2.2: the SSH user name is the NETCONF user name unless the server maps
/// it). Both methods refuse by default, so implement only what you accept.
/// Public keys reach [`Authenticator::public_key`] only after russh verified
/// the client's signature.
pub trait Authenticator: Send + Sync + 'static {
    /// `password` and `keyboard-interactive` logins.
    fn password<'a>(&'a self, user: &'a str, password: &'a str) -> AuthFuture<'a> {
        let _ = (user, password);
        Box::pin(async { None })
    }

    /// `publickey` logins, with a verified key.
    fn public_key<'a>(&'a self, user: &'a str, key: &'a PublicKey) -> AuthFuture<'a> {
        let _ = (user, key);
        Box::pin(async { None })
    }
}

/// A fixed table of users: passwords and authorized keys, the SSH user name
/// becoming the NETCONF user name. What the CLI's `serve` needs.
#[derive(Default, Clone)]
pub struct StaticAuth {
    passwords: HashMap<String, String>,
    keys: Vec<(String, PublicKey)>,
}

impl std::fmt::Debug for StaticAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticAuth")
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl StaticAuth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `user` with `password`.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.passwords.insert(user.into(), password.into());
        self
    }

    /// Allows `user` with `key`.
    pub fn authorized_key(mut self, user: impl Into<String>, key: PublicKey) -> Self {
        self.keys.push((user.into(), key));
        self
    }

    /// Allows `user` with every key of an OpenSSH authorized_keys file.
    pub fn authorized_keys_file(mut self, user: &str, path: &Path) -> Result<Self, Error> {
        for k in keys::load_authorized_keys(path)? {
            self.keys.push((user.to_owned(), k));
        }
        Ok(self)
    }
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

impl Authenticator for StaticAuth {
    fn password<'a>(&'a self, user: &'a str, password: &'a str) -> AuthFuture<'a> {
        let ok = self
            .passwords
            .get(user)
            .is_some_and(|p| same_secret(p.as_bytes(), password.as_bytes()));
        Box::pin(async move { ok.then(|| user.to_owned()) })
    }

    fn public_key<'a>(&'a self, user: &'a str, key: &'a PublicKey) -> AuthFuture<'a> {
        let ok = self
            .keys
            .iter()
            .any(|(u, k)| u == user && k.key_data() == key.key_data());
        Box::pin(async move { ok.then(|| user.to_owned()) })
    }
}

/// Where the server's host key comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum HostKey {
    /// An OpenSSH or PEM private key file.
    File {
        path: PathBuf,
        passphrase: Option<String>,
    },
    /// A key already loaded.
    Key(Box<PrivateKey>),
    /// A fresh ed25519 key: clients will see a new host key at every start,
    /// fine for tests and demos, not for a server people pin.
    Generate,
}

impl HostKey {
    /// An unencrypted OpenSSH or PEM private key file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        HostKey::File {
            path: path.into(),
            passphrase: None,
        }
    }
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKey::File { path, .. } => f.debug_struct("File").field("path", path).finish(),
            HostKey::Key(k) => f.debug_tuple("Key").field(&k.algorithm()).finish(),
            HostKey::Generate => f.write_str("Generate"),
        }
    }
}

/// Server settings.
///
/// `#[non_exhaustive]` so options can be added without breaking callers:
/// start from [`ServerOptions::default`] and chain the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    pub host_key: HostKey,
    /// The one subsystem we start (`netconf`).
    pub subsystem: String,
    /// Connections (authenticated or not) allowed at once.
    pub max_connections: usize,
    /// From accept to a running subsystem.
    pub handshake_timeout: Duration,
    /// Every failed authentication answer takes this long, so guesses are slow
    /// and timing says nothing.
    pub auth_rejection_time: Duration,
    pub max_auth_attempts: usize,
    pub algorithms: Algorithms,
    pub channel: ChannelOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            host_key: HostKey::Generate,
            subsystem: "netconf".into(),
            max_connections: 64,
            handshake_timeout: Duration::from_secs(30),
            auth_rejection_time: Duration::from_secs(1),
            max_auth_attempts: 6,
            algorithms: Algorithms::default(),
            channel: ChannelOptions::default(),
        }
    }
}

impl ServerOptions {
    pub fn host_key(mut self, k: HostKey) -> Self {
        self.host_key = k;
        self
    }
    pub fn host_key_file(self, path: impl Into<PathBuf>) -> Self {
        self.host_key(HostKey::File {
            path: path.into(),
            passphrase: None,
        })
    }
    pub fn subsystem(mut self, name: impl Into<String>) -> Self {
        self.subsystem = name.into();
        self
    }
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }
    pub fn auth_rejection_time(mut self, d: Duration) -> Self {
        self.auth_rejection_time = d;
        self
    }
    pub fn max_auth_attempts(mut self, n: usize) -> Self {
        self.max_auth_attempts = n;
        self
    }
    pub fn algorithms(mut self, a: Algorithms) -> Self {
        self.algorithms = a;
        self
    }
    pub fn channel(mut self, c: ChannelOptions) -> Self {
        self.channel = c;
        self
    }
}

/// One authenticated connection with its NETCONF subsystem running.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerSession {
    /// The NETCONF user name the [`Authenticator`] returned.
    pub username: String,
    /// The remote address, when known.
    pub peer: Option<SocketAddr>,
    /// The byte channel; dropping it closes the connection.
    pub stream: SshStream,
}

impl ServerSession {
    pub fn into_parts(self) -> (String, SshStream) {
        (self.username, self.stream)
    }
}

struct Inner {
    config: Arc<russh::server::Config>,
    opts: ServerOptions,
    auth: Arc<dyn Authenticator>,
    slots: Arc<Semaphore>,
    host_public: PublicKey,
}

/// An SSH server for NETCONF; cheap to clone, shared by listeners and call
/// home connections so the connection cap covers them all.
#[derive(Clone)]
pub struct SshServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshServer")
            .field("host_key", &self.host_key_fingerprint())
            .field("opts", &self.inner.opts)
            .finish()
    }
}

impl SshServer {
    /// Loads or generates the host key; fails on an unreadable key file.
    pub fn new(opts: ServerOptions, auth: impl Authenticator) -> Result<Self, Error> {
        let key = match &opts.host_key {
            HostKey::File { path, passphrase } => {
                keys::load_private_key(path, passphrase.as_deref())?
            }
            HostKey::Key(k) => (**k).clone(),
            HostKey::Generate => keys::generate_ed25519(),
        };
        let host_public = key.public_key().clone();
        let config = russh::server::Config {
            methods: MethodSet::from(
                &[
                    MethodKind::PublicKey,
                    MethodKind::Password,
                    MethodKind::KeyboardInteractive,
                ][..],
            ),
            auth_rejection_time: opts.auth_rejection_time,
            // OpenSSH clients probe with "none" first; answering that fast is
            // harmless (it reveals nothing).
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![key],
            max_auth_attempts: opts.max_auth_attempts,
            // NETCONF sessions idle for long (notification subscriptions);
            // liveness is the NETCONF layer's business.
            inactivity_timeout: None,
            preferred: opts.algorithms.preferred(&[]),
            nodelay: true,
            ..russh::server::Config::default()
        };
        Ok(SshServer {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                slots: Arc::new(Semaphore::new(opts.max_connections.max(1))),
                opts,
                auth: Arc::new(auth),
                host_public,
            }),
        })
    }

    /// The public half of the host key, for a client's known_hosts.
    pub fn host_public_key(&self) -> &PublicKey {
        &self.inner.host_public
    }

    /// `SHA256:...` of the host key, to show operators and to pin.
    pub fn host_key_fingerprint(&self) -> String {
        fingerprint(&self.inner.host_public)
    }

    /// Runs the server side over a stream we already have: RFC 8071 call
    /// home, where we dialed the manager but are still the SSH server.
    /// Returns once the subsystem runs.
    pub async fn accept_stream<S>(
        &self,
        stream: S,
        peer: Option<SocketAddr>,
    ) -> Result<ServerSession, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let permit = self.inner.slots.clone().try_acquire_owned().map_err(|_| {
            Error::Config(format!(
                "connection limit of {} reached",
                self.inner.opts.max_connections
            ))
        })?;
        handshake(self.inner.clone(), stream, peer, permit).await
    }

    /// Accepts connections from `listener` in a background task, each
    /// handshake running on its own; [`SshListener::accept`] yields the
    /// sessions that reached a running subsystem. Failed handshakes are logged
    /// and never returned.
    pub fn listen(&self, listener: TcpListener) -> SshListener {
        let local = listener.local_addr().ok();
        let (tx, rx) = mpsc::channel(16);
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "SSH accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
                    tracing::warn!(%addr, limit = inner.opts.max_connections, "SSH connection refused: limit reached");
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let inner = inner.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match handshake(inner, tcp, Some(addr), permit).await {
                        Ok(s) => {
                            let _ = tx.send(s).await;
                        }
                        Err(e) => tracing::info!(%addr, error = %e, "SSH handshake failed"),
                    }
                });
            }
        });
        SshListener { rx, task, local }
    }

    /// [`SshServer::listen`] on a `std` listener (made non-blocking here), for callers
    /// without tokio: run it inside the runtime that is to own the connections (e.g.
    /// through [`runtime::run`](crate::runtime::run)).
    pub fn listen_std(&self, listener: std::net::TcpListener) -> Result<SshListener, Error> {
        let io = |source| Error::Io {
            what: "preparing the SSH listener".into(),
            source,
        };
        listener.set_nonblocking(true).map_err(io)?;
        let listener = TcpListener::from_std(listener).map_err(io)?;
        Ok(self.listen(listener))
    }
}

/// Sessions accepted by [`SshServer::listen`]. Dropping it stops accepting;
/// sessions already handed out live on.
#[derive(Debug)]
pub struct SshListener {
    rx: mpsc::Receiver<ServerSession>,
    task: JoinHandle<()>,
    local: Option<SocketAddr>,
}

impl SshListener {
    /// The next session whose subsystem runs.
    pub async fn accept(&mut self) -> Option<ServerSession> {
        self.rx.recv().await
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

impl Drop for SshListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Ready = (String, Wired<Msg>, ChannelId);

async fn handshake<S>(
    inner: Arc<Inner>,
    stream: S,
    peer: Option<SocketAddr>,
    permit: OwnedSemaphorePermit,
) -> Result<ServerSession, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_s = peer.map_or_else(|| "call-home peer".to_owned(), |p| p.to_string());
    let after = inner.opts.handshake_timeout;
    let timeout = || Error::Timeout {
        kind: TimeoutKind::Handshake,
        peer: peer_s.clone(),
        after,
    };
    let deadline = tokio::time::Instant::now() + after;
    let (ready_tx, ready_rx) = oneshot::channel();
    let handler = ServerHandler {
        auth: inner.auth.clone(),
        subsystem: inner.opts.subsystem.clone(),
        channel_opts: inner.opts.channel.clone(),
        peer: peer_s.clone(),
        user: None,
        pending: None,
        ready: Some(ready_tx),
    };
    let mut running = tokio::time::timeout_at(
        deadline,
        russh::server::run_stream(inner.config.clone(), stream, handler),
    )
    .await
    .map_err(|_| timeout())?
    .map_err(|e| Error::ssh("handshake", &peer_s, e))?;
    let handle = running.handle();

    let ready: Ready = match tokio::time::timeout_at(deadline, ready_rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            // The session ended before a subsystem ran: report why.
            let why = tokio::time::timeout(Duration::from_secs(1), &mut running).await;
            return Err(match why {
                Ok(Err(e)) => Error::ssh("handshake", &peer_s, e),
                _ => Error::ChannelClosed {
                    peer: peer_s.clone(),
                    name: inner.opts.subsystem.clone(),
                },
            });
        }
        Err(_) => {
            let _ = handle
                .disconnect(
                    Disconnect::ByApplication,
                    "handshake timeout".into(),
                    "en".into(),
                )
                .await;
            return Err(timeout());
        }
    };
    let (username, wired, _id) = ready;
    let dropped = wired.dropped;
    let write_half = wired.write_half;
    // The keeper holds the connection slot for the connection's lifetime and
    // closes channel and connection on this runtime when the stream is dropped.
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            _ = dropped => {
                // Close the channel (behind the data already written) and let
                // the client end the connection, as SSH clients do when their
                // last channel closes. Disconnecting at once would be legal,
                // but OpenSSH's client exits on a disconnect without writing
                // out what it had received (tests/openssh.rs caught that).
                // End of data and an exit status first, as sshd does for a subsystem
                // that exits: `ssh -s` then exits 0 instead of 255.
                let _ = write_half.eof().await;
                let _ = write_half.exit_status(0).await;
                let _ = write_half.close().await;
                if tokio::time::timeout(channel::CLOSE_LINGER, &mut running).await.is_err() {
                    let _ = handle
                        .disconnect(Disconnect::ByApplication, "NETCONF session ended".into(), "en".into())
                        .await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut running).await;
                }
            }
            _ = &mut running => {}
        }
    });
    Ok(ServerSession {
        username,
        peer,
        stream: wired.stream,
    })
}

/// russh's per-connection callbacks.
struct ServerHandler {
    auth: Arc<dyn Authenticator>,
    subsystem: String,
    channel_opts: ChannelOptions,
    peer: String,
    /// The NETCONF user, once authenticated.
    user: Option<String>,
    /// The one session channel, wired, waiting for its subsystem request.
    pending: Option<(ChannelId, Wired<Msg>)>,
    ready: Option<oneshot::Sender<Ready>>,
}

impl ServerHandler {
    fn decided(&mut self, user: Option<String>) -> Auth {
        match user {
            Some(u) => {
                self.user = Some(u);
                Auth::Accept
            }
            None => Auth::reject(),
        }
    }
}

impl russh::server::Handler for ServerHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let decided = self.auth.password(user, password).await;
        Ok(self.decided(decided))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let decided = self.auth.public_key(user, key.public_key).await;
        Ok(self.decided(decided))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Borrowed(&[(Cow::Borrowed("Password: "), false)]),
            });
        };
        let answer = response.next().unwrap_or_default();
        let Ok(password) = std::str::from_utf8(&answer) else {
            return Ok(Auth::reject());
        };
        let decided = self.auth.password(user, password).await;
        Ok(self.decided(decided))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // NETCONF needs one channel; refusing more keeps the accounting simple.
        if self.pending.is_some() || self.ready.is_none() || self.user.is_none() {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        reply.accept().await;
        let id = channel.id();
        let wired = channel::wire(channel, &self.channel_opts, self.peer.clone());
        self.pending = Some((id, wired));
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ours = matches!(&self.pending, Some((id, _)) if *id == channel);
        if !ours || name != self.subsystem {
            tracing::info!(peer = %self.peer, subsystem = name, "subsystem refused");
            session.channel_failure(channel)?;
            return Ok(());
        }
        session.channel_success(channel)?;
        if let (Some((id, wired)), Some(ready), Some(user)) =
            (self.pending.take(), self.ready.take(), self.user.clone())
        {
            let _ = ready.send((user, wired, id));
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }
}
