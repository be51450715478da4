//! What failed, in words a person can act on, and the exit status that goes with it:
//! 1 for `<rpc-error>` replies, 2 for everything else.

use std::io::ErrorKind;
use std::path::Path;

use netconf_blocking::ssh::SshError;
use netconf_blocking::{Error, RpcError, TimeoutKind};
use netconf_proto::tls::TlsConfigError;
use netconf_proto::CloseReason;

use crate::args::Transport;

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with `<rpc-error>`s (exit 1).
    Rpc(Vec<RpcError>),
    /// Anything else (exit 2).
    Fatal(String),
    /// Already reported on stderr; exit with this status.
    Reported(u8),
}

impl CliError {
    pub fn fatal(message: impl Into<String>) -> Self {
        CliError::Fatal(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Rpc(_) => 1,
            CliError::Fatal(_) => 2,
            CliError::Reported(code) => *code,
        }
    }
}

/// Where the client was going, to name things in messages.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub transport: Transport,
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub server_name: Option<&'a str>,
    pub timeout: Option<u64>,
}

impl Target<'_> {
    /// `host:port`, `[v6]:port` for an IPv6 address.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn ca_name(&self) -> String {
        self.ca
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the CA".into())
    }
}

/// An error while connecting (TCP, TLS or SSH handshake, hello).
pub fn connect_error(e: Error, t: &Target<'_>) -> CliError {
    match e {
        Error::Io(io) => {
            let what = io.to_string();
            if what.starts_with("connecting to ")
                || what.starts_with("TCP connect to ")
                || io.kind() == ErrorKind::ConnectionRefused
            {
                CliError::fatal(format!(
                    "cannot connect to {}: {}",
                    t.addr(),
                    io_cause(io.kind(), &what)
                ))
            } else if what.contains("lookup")
                || what.contains("resolve")
                || what.contains("has no address")
                || what.contains("failed to lookup")
            {
                CliError::fatal(format!("cannot resolve host {}: {what}", t.host))
            } else if t.transport == Transport::Ssh {
                CliError::fatal(format!(
                    "connection to {} failed during the SSH handshake: {what}",
                    t.addr()
                ))
            } else {
                CliError::fatal(format!(
                    "connection to {} failed during the handshake: {what} \
                     (the server may have refused the client certificate --cert)",
                    t.addr()
                ))
            }
        }
        Error::Closed(CloseReason::Eof) if t.transport == Transport::Ssh => {
            CliError::fatal(format!(
                "the NETCONF subsystem on {} ended before its <hello>",
                t.addr()
            ))
        }
        Error::Closed(CloseReason::Eof) => CliError::fatal(format!(
            "{} closed the connection before its <hello>: it may have refused the client \
             certificate (--cert) or not speak NETCONF over TLS on this port",
            t.addr()
        )),
        Error::Timeout(what) => CliError::fatal(format!(
            "timed out connecting to {}: {what}{}",
            t.addr(),
            timeout_hint(t)
        )),
        Error::Ssh(cause) => CliError::fatal(ssh_message(cause.as_ref(), t)),
        e => from_error(e, t),
    }
}

/// An SSH failure, with what to do about it.
fn ssh_message(cause: &(dyn std::error::Error + 'static), t: &Target<'_>) -> String {
    let Some(e) = cause.downcast_ref::<SshError>() else {
        return format!("SSH with {} failed: {}", t.addr(), chain(cause));
    };
    match e {
        SshError::UnknownHostKey { .. } => format!(
            "{e}; check the fingerprint with the device's administrator, then pass \
             --accept-new-host-key to record it (or --host-key-fingerprint to pin it)"
        ),
        SshError::HostKeyChanged { path, line, .. } => format!(
            "{e}; refused: this is what a man-in-the-middle looks like. If the device's key \
             really changed, delete line {line} of {}",
            path.display()
        ),
        SshError::AuthFailed { .. } => format!("{e} (check --user, --password and --key)"),
        SshError::SubsystemRefused { .. } => {
            format!("{e}: NETCONF may not be enabled there, or it uses another name (--subsystem)")
        }
        SshError::Key { path, source } => format!(
            "--key {}: cannot load the private key: {source}{}",
            path.display(),
            if source.to_string().contains("crypt") {
                " (wrong or missing --key-passphrase?)"
            } else {
                ""
            }
        ),
        other => chain(other),
    }
}

/// An error and its sources, `: `-separated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// An error of an established session (or of connecting, after [`connect_error`]).
pub fn from_error(e: Error, t: &Target<'_>) -> CliError {
    match e {
        Error::Rpc(errors) => CliError::Rpc(errors),
        Error::Tls(what) => CliError::fatal(tls_message(&what.to_string(), t)),
        Error::TlsConfig(c) => CliError::fatal(tls_config_message(&c, t)),
        Error::Io(io) => CliError::fatal(format!("connection to {} failed: {io}", t.addr())),
        Error::Ssh(cause) => CliError::fatal(ssh_message(cause.as_ref(), t)),
        Error::Timeout(what @ (TimeoutKind::Auth | TimeoutKind::Subsystem)) => {
            CliError::fatal(format!(
                "timed out connecting to {}: {what}{}",
                t.addr(),
                timeout_hint(t)
            ))
        }
        Error::Timeout(what) => CliError::fatal(format!("timed out: {what}{}", timeout_hint(t))),
        Error::Closed(reason) => CliError::fatal(format!(
            "the session with {} ended: {}",
            t.addr(),
            Error::Closed(reason)
                .to_string()
                .trim_start_matches("session closed: ")
        )),
        Error::Protocol(p) => {
            CliError::fatal(format!("{} broke the NETCONF protocol: {p}", t.addr()))
        }
        Error::Usage(u) => CliError::fatal(format!("invalid request: {u}")),
        other => CliError::fatal(other.to_string()),
    }
}

fn timeout_hint(t: &Target<'_>) -> String {
    match t.timeout {
        Some(s) => format!(" (--timeout {s} s)"),
        None => " (raise it with --timeout SECS)".into(),
    }
}

fn io_cause(kind: ErrorKind, what: &str) -> String {
    match kind {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => what
            .split_once(": ")
            .map(|(_, cause)| cause.to_owned())
            .unwrap_or_else(|| what.to_owned()),
    }
}

/// rustls's words for a failed handshake, turned into what to check.
fn tls_message(what: &str, t: &Target<'_>) -> String {
    let name = t.server_name.unwrap_or(t.host);
    let has = |needles: &[&str]| needles.iter().any(|n| what.contains(n));
    if has(&["UnknownIssuer", "BadSignature"]) && what.contains("invalid peer certificate") {
        format!(
            "server certificate not trusted by --ca {} ({what})",
            t.ca_name()
        )
    } else if has(&["NotValidForName", "not valid for name"]) {
        format!(
            "server certificate is not valid for the name {name:?} ({what}); \
             connect by a name it holds or pass --server-name"
        )
    } else if has(&["Expired", "expired", "NotValidYet", "not valid yet"]) {
        format!("server certificate is outside its validity period ({what})")
    } else if has(&["CertificateRequired"]) {
        format!("the server requires a client certificate: pass --cert and --key ({what})")
    } else if what.contains("alert")
        && has(&[
            "UnknownCA",
            "BadCertificate",
            "UnsupportedCertificate",
            "CertificateExpired",
            "CertificateRevoked",
            "AccessDenied",
            "DecryptError",
        ])
    {
        let cert = t
            .cert
            .map(|p| format!(" {}", p.display()))
            .unwrap_or_default();
        format!("the server refused our client certificate --cert{cert} ({what})")
    } else {
        format!("TLS with {} failed: {what}", t.addr())
    }
}

fn tls_config_message(e: &TlsConfigError, t: &Target<'_>) -> String {
    match e {
        TlsConfigError::NoRoots => {
            "no CA certificate: pass --ca FILE (or set NETCONF_CA) to verify the server".into()
        }
        TlsConfigError::Pem { what, error, .. } => {
            let (option, path) = match *what {
                "CA certificate" => ("--ca", t.ca),
                "client certificate" => ("--cert", t.cert),
                _ => ("--key", None),
            };
            let path = path
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default();
            format!("{option}{path}: bad {what}: {error}")
        }
        TlsConfigError::InvalidServerName(name) => {
            format!("{name:?} is not a valid TLS server name: pass --server-name")
        }
        TlsConfigError::Rustls(e) if e.to_string().contains("KeyMismatch") => format!(
            "--cert{} and --key{} do not belong together ({e})",
            t.cert
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default(),
            t.key
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default(),
        ),
        other => format!("TLS configuration: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target<'static> {
        Target {
            host: "127.0.0.1",
            port: 6513,
            transport: Transport::Tls,
            ca: Some(Path::new("ca.pem")),
            cert: Some(Path::new("client.pem")),
            key: None,
            server_name: None,
            timeout: None,
        }
    }

    #[test]
    fn names_the_cause() {
        let t = target();
        let msg = |e| match connect_error(e, &t) {
            CliError::Fatal(m) => m,
            other => panic!("not a fatal error: {other:?}"),
        };
        assert_eq!(
            msg(Error::Io(std::io::Error::new(
                ErrorKind::ConnectionRefused,
                "connecting to 127.0.0.1:6513: Connection refused (os error 111)"
            ))),
            "cannot connect to 127.0.0.1:6513: connection refused"
        );
        assert!(msg(Error::Tls(netconf_blocking::TlsError::new(
            "invalid peer certificate: UnknownIssuer"
        )))
        .starts_with("server certificate not trusted by --ca ca.pem"));
        assert!(msg(Error::Tls(netconf_blocking::TlsError::new(
            "received fatal alert: UnknownCA"
        )))
        .starts_with("the server refused our client certificate --cert client.pem"));
        assert!(msg(Error::TlsConfig(TlsConfigError::NoRoots)).contains("--ca"));
    }
}
