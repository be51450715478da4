//! The error type the adapters' client and server APIs return, shared so that code written
//! against one runtime's client handles errors the same way on another.

use std::io;

use thiserror::Error;

use crate::error::{ProtocolError, TlsError, UsageError};
use crate::message::{RpcError, RpcReply};
use crate::session::CloseReason;

/// Everything a NETCONF operation can fail with, one variant per cause.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with `<rpc-error>` (severity error). Warnings alone are not errors.
    #[error("{}", format_rpc_errors(.0))]
    Rpc(Vec<RpcError>),
    /// Connecting or reading/writing the transport failed.
    #[error("transport: {0}")]
    Io(#[from] io::Error),
    /// The TLS configuration could not be built (certificate files, keys, ...).
    #[cfg(feature = "rustls")]
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] crate::tls::TlsConfigError),
    /// The TLS layer failed (certificate not trusted, bad record, ...); the rustls error is
    /// its [`source`](std::error::Error::source) when rustls reported it.
    #[error("TLS: {0}")]
    Tls(#[source] TlsError),
    /// The SSH transport failed (host key refused, authentication failed, subsystem refused,
    /// key exchange failed...). The `netconf_ssh::Error` is the source: downcast it
    /// (`e.downcast_ref::<netconf_ssh::Error>()`) to match on the cause. SSH timeouts are
    /// [`Error::Timeout`], TCP connect failures [`Error::Io`].
    #[error("SSH: {0}")]
    Ssh(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The peer broke the NETCONF protocol.
    #[error("protocol: {0}")]
    Protocol(#[source] ProtocolError),
    /// Something did not happen in time; the kind says what.
    #[error("timed out: {0}")]
    Timeout(TimeoutKind),
    /// The API was used wrongly.
    #[error("usage: {0}")]
    Usage(#[from] UsageError),
    /// The session has ended.
    #[error("session closed: {}", describe_close(.0))]
    Closed(CloseReason),
}

/// What did not happen in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The TCP connection was not established.
    Connect,
    /// The TLS or SSH handshake did not finish.
    Handshake,
    /// The peer's `<hello>` did not arrive.
    Hello,
    /// No reply to an RPC within its timeout.
    Rpc,
    /// No reply to `<close-session>` within the close timeout.
    Close,
    /// The peer stopped reading: a write could not finish.
    Write,
    /// The peer stopped sending in the middle of a message.
    Stall,
    /// SSH user authentication did not finish.
    Auth,
    /// The SSH server did not start the NETCONF subsystem.
    Subsystem,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "the TCP connection was not established",
            TimeoutKind::Handshake => "the TLS or SSH handshake did not finish",
            TimeoutKind::Hello => "the peer's <hello> did not arrive",
            TimeoutKind::Rpc => "no reply to the RPC within its timeout",
            TimeoutKind::Close => "no reply to <close-session> within the close timeout",
            TimeoutKind::Write => "the peer stopped reading: a write could not finish",
            TimeoutKind::Stall => "the peer stopped sending in the middle of a message",
            TimeoutKind::Auth => "SSH authentication did not finish",
            TimeoutKind::Subsystem => "the SSH server did not start the NETCONF subsystem",
        })
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Tls(e) => Error::Tls(e),
            ProtocolError::HelloTimeout => Error::Timeout(TimeoutKind::Hello),
            ProtocolError::HandshakeTimeout => Error::Timeout(TimeoutKind::Handshake),
            ProtocolError::StalledMidMessage { .. } => Error::Timeout(TimeoutKind::Stall),
            e => Error::Protocol(e),
        }
    }
}

impl Error {
    /// The error a caller sees for a session that closed for `reason`.
    pub fn from_close(reason: &CloseReason) -> Self {
        match reason {
            CloseReason::Protocol(e) => Error::from(e.clone()),
            CloseReason::CloseTimedOut => Error::Timeout(TimeoutKind::Close),
            other => Error::Closed(other.clone()),
        }
    }

    /// The timeout kind, if this is a timeout.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self {
            Error::Timeout(kind) => Some(*kind),
            Error::Protocol(ProtocolError::StalledMidMessage { .. }) => Some(TimeoutKind::Stall),
            _ => None,
        }
    }

    /// The `<rpc-error>`s, if this is an rpc-error reply.
    pub fn rpc_errors(&self) -> Option<&[RpcError]> {
        match self {
            Error::Rpc(errors) => Some(errors),
            _ => None,
        }
    }
}

/// How a session ended, kept by an adapter so every later call gets the same precise error
/// (an `io::Error` is not `Clone`, so the kind and text are kept instead).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The session closed, for this reason.
    Close(CloseReason),
    /// The transport failed.
    Io(io::ErrorKind, String),
    /// Something did not happen in time (a write to a peer that stopped reading, say).
    Timeout(TimeoutKind),
}

impl SessionEnd {
    /// The error a caller sees for a session that ended this way.
    pub fn error(&self) -> Error {
        match self {
            SessionEnd::Close(reason) => Error::from_close(reason),
            SessionEnd::Io(kind, what) => Error::Io(io::Error::new(*kind, what.clone())),
            SessionEnd::Timeout(kind) => Error::Timeout(*kind),
        }
    }
}

/// Turns a reply into `Ok(reply)`, or `Err(Error::Rpc)` when it carries an error-severity
/// `<rpc-error>`.
pub fn check_reply(reply: RpcReply) -> Result<RpcReply, Error> {
    if reply.has_errors() {
        Err(Error::Rpc(reply.errors))
    } else {
        Ok(reply)
    }
}

fn format_rpc_errors(errors: &[RpcError]) -> String {
    let mut out = String::from("rpc-error: ");
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&e.to_string());
    }
    out
}

fn describe_close(reason: &CloseReason) -> String {
    match reason {
        CloseReason::CloseSession => "close-session completed".into(),
        CloseReason::Eof => "the peer closed the connection".into(),
        CloseReason::Local => "closed locally".into(),
        CloseReason::CloseTimedOut => "no reply to <close-session> in time".into(),
        CloseReason::Protocol(e) => e.to_string(),
    }
}
