//! One error type for every way an SSH transport can fail.
//!
//! Each variant names the peer and the step that failed, because a NETCONF
//! operator reading a log line usually has dozens of devices and needs to know
//! *which* one refused *what* without turning on tracing. The underlying
//! `russh::Error`, `russh::keys::Error` or `io::Error` is kept as the source so
//! callers that care can still match on it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Which deadline expired; a separate type so adapters can map each to their
/// own timeout kinds without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// TCP connect plus SSH key exchange and host-key check.
    Connect,
    /// User authentication.
    Auth,
    /// Opening the session channel and starting the subsystem.
    Subsystem,
    /// Server side: the whole handshake from accept to subsystem start.
    Handshake,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect and key exchange",
            TimeoutKind::Auth => "authentication",
            TimeoutKind::Subsystem => "subsystem start",
            TimeoutKind::Handshake => "SSH handshake",
        })
    }
}

/// Everything that can go wrong while setting up or running an SSH transport.
///
/// `#[non_exhaustive]`: new failure modes (certificates, GSSAPI) will get
/// their own variants rather than being squeezed into existing ones.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("TCP connect to {peer} failed")]
    Connect {
        peer: String,
        #[source]
        source: io::Error,
    },

    /// A deadline from the options expired.
    #[error("{kind} with {peer} timed out after {after:?}")]
    Timeout {
        kind: TimeoutKind,
        peer: String,
        after: Duration,
    },

    /// The SSH protocol itself failed (key exchange, MAC, disconnect...).
    #[error("SSH {step} with {peer} failed")]
    Ssh {
        step: &'static str,
        peer: String,
        #[source]
        source: russh::Error,
    },

    /// The server's host key is not in known_hosts and the policy does not
    /// allow learning it.
    #[error("host key for {host} is unknown: offered {offered}, no entry in {path}")]
    UnknownHostKey {
        host: String,
        offered: String,
        path: PathBuf,
    },

    /// The server offered a key different from the one recorded: always fatal,
    /// whatever the policy, because this is what a man-in-the-middle looks like.
    #[error("host key for {host} changed: offered {offered}, {path} line {line} has {known}")]
    HostKeyChanged {
        host: String,
        offered: String,
        known: String,
        path: PathBuf,
        line: usize,
    },

    /// The offered key is marked `@revoked` in known_hosts.
    #[error("host key for {host} is revoked: offered {offered}, {path} line {line}")]
    HostKeyRevoked {
        host: String,
        offered: String,
        path: PathBuf,
        line: usize,
    },

    /// The host key passed the check, but the caller's filter refused the server (call
    /// home: a device not accepted).
    #[error("host key for {host} refused by the filter: offered {offered}")]
    HostKeyRefused { host: String, offered: String },

    /// The offered key does not match the pinned fingerprint.
    #[error("host key for {host} does not match the pinned fingerprint: offered {offered}, expected {expected}")]
    HostKeyMismatch {
        host: String,
        offered: String,
        expected: String,
    },

    /// known_hosts could not be read or the new key could not be recorded.
    #[error("known_hosts file {path}: {what}")]
    KnownHosts {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// Every configured authentication method was refused.
    #[error(
        "authentication as {user:?} to {peer} failed: tried {tried}; server accepts {offered}"
    )]
    AuthFailed {
        user: String,
        peer: String,
        tried: String,
        offered: String,
    },

    /// A private key file could not be read or decrypted.
    #[error("private key {path}: cannot load")]
    Key {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },

    /// The SSH agent could not be reached or failed to sign.
    #[error("ssh-agent: {what}")]
    Agent {
        what: String,
        #[source]
        source: Option<russh::keys::Error>,
    },

    /// The server answered the subsystem request with a failure.
    #[error("{peer} refused the SSH subsystem {name:?}")]
    SubsystemRefused { peer: String, name: String },

    /// The server closed the channel before answering the subsystem request.
    #[error("{peer} closed the SSH channel before answering the subsystem request {name:?}")]
    ChannelClosed { peer: String, name: String },

    /// The SSH connection ended without the channel being closed first.
    #[error("SSH connection to {peer} was lost before the channel was closed")]
    ConnectionLost { peer: String },

    /// A server-side option is unusable (e.g. an unreadable host key).
    #[error("SSH configuration: {0}")]
    Config(String),

    /// Local I/O failed (reading a key file, binding, accepting).
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn ssh(step: &'static str, peer: &str, source: russh::Error) -> Self {
        Error::Ssh {
            step,
            peer: peer.to_owned(),
            source,
        }
    }
}

impl From<Error> for io::Error {
    /// Adapters speak `io::Error` in their read loops; keep our error inside
    /// so it can be downcast again.
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Connect { source, .. } | Error::Io { source, .. } => source.kind(),
            Error::AuthFailed { .. }
            | Error::UnknownHostKey { .. }
            | Error::HostKeyChanged { .. }
            | Error::HostKeyRevoked { .. }
            | Error::HostKeyMismatch { .. }
            | Error::HostKeyRefused { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

impl From<Error> for netconf_proto::Error {
    /// What the adapters return: a deadline is a `Timeout` of the matching kind (the peer
    /// and the duration are logged, since the kind has no room for them), a failed TCP
    /// connect is `Io` as for TLS, everything else is `Ssh` with this error as its source.
    fn from(e: Error) -> Self {
        use netconf_proto::TimeoutKind as Kind;
        match e {
            Error::Timeout { kind, peer, after } => {
                tracing::debug!(%peer, ?after, "SSH {kind} timed out");
                netconf_proto::Error::Timeout(match kind {
                    TimeoutKind::Connect => Kind::Connect,
                    TimeoutKind::Auth => Kind::Auth,
                    TimeoutKind::Subsystem => Kind::Subsystem,
                    TimeoutKind::Handshake => Kind::Handshake,
                })
            }
            Error::Connect { .. } => netconf_proto::Error::Io(io::Error::from(e)),
            e => netconf_proto::Error::Ssh(Box::new(e)),
        }
    }
}
