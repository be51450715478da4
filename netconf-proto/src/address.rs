//! Parsing the `host`, `host:port` and `[v6]:port` forms people type for a device.

use crate::error::UsageError;

/// The IANA port for NETCONF over TLS (RFC 7589).
pub const DEFAULT_TLS_PORT: u16 = 6513;

/// Splits an address into host and port; the port defaults to `default_port`. A bare IPv6
/// address (`::1`) is taken whole, since its colons are not a port separator.
pub fn split_host_port(addr: &str, default_port: u16) -> Result<(&str, u16), UsageError> {
    let bad = || UsageError::InvalidValue {
        what: "address",
        why: format!("{addr:?} is not host, host:port or [v6]:port"),
    };
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if rest.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host, port));
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, port.parse().map_err(|_| bad())?)),
        _ => Ok((addr, default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("10.0.0.1", 6513).unwrap(),
            ("10.0.0.1", 6513)
        );
        assert_eq!(
            split_host_port("router:830", 6513).unwrap(),
            ("router", 830)
        );
        assert_eq!(split_host_port("[::1]:6514", 6513).unwrap(), ("::1", 6514));
        assert_eq!(split_host_port("[::1]", 6513).unwrap(), ("::1", 6513));
        assert_eq!(split_host_port("::1", 6513).unwrap(), ("::1", 6513));
        assert!(split_host_port("h:x", 6513).is_err());
        assert!(split_host_port("[::1]x", 6513).is_err());
    }
}
