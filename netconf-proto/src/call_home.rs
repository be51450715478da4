//! RFC 8071 call home, the part every adapter shares: when a server that calls its manager
//! dials next, and which manager.
//!
//! A device behind NAT opens the TCP connection to its manager (port 4334 for SSH, 4335 for
//! TLS), then acts as the SSH or TLS *server* and the NETCONF server on it. What happens when
//! the manager is down or the session ends follows the `call-home` container of the
//! ietf-netconf-server YANG module in spirit: a persistent or periodic connection, managers
//! tried in turn, exponential backoff with jitter between failed attempts so that a fleet
//! of devices does not reconnect in lockstep after an outage, and an optional limit.
//!
//! [`CallHomeSchedule`] is sans-IO: the adapter reports what happened and sleeps for as
//! long as it is told. It takes the randomness for the jitter as an argument so that it is
//! deterministic under test.

use std::fmt;
// A peer address is a plain value from `core` (no socket, no I/O), so the pure core can name
// where a session came from.
use core::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Error;

/// The IANA port for NETCONF call home over SSH (RFC 8071).
pub const CALL_HOME_SSH_PORT: u16 = 4334;
/// The IANA port for NETCONF call home over TLS (RFC 8071).
pub const CALL_HOME_TLS_PORT: u16 = 4335;

/// How long the connection to the manager is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionType {
    /// Always connected: a session that ends is replaced at once (after
    /// [`Reconnect::initial_backoff`], so a manager that hangs up at once is not hammered).
    Persistent,
    /// Connected from time to time: after a session ends, the next call is `period` later.
    Periodic {
        /// From the end of one session to the next call.
        period: Duration,
    },
}

/// When a calling server dials again. Defaults: persistent; backoff from 1 s doubling to
/// 60 s with up to half of each wait taken off at random; no limit on attempts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Reconnect {
    /// Persistent or periodic.
    pub connection: ConnectionType,
    /// The wait after the first failure (and between persistent sessions).
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// The share of each wait that may be taken off at random, in `0.0..=1.0`.
    pub jitter: f64,
    /// Consecutive failed attempts (over all managers) after which the server gives up;
    /// `None`: never. A session that was established resets the count.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            connection: ConnectionType::Persistent,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            jitter: 0.5,
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The defaults (persistent).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reconnects `period` after each session ends instead of at once.
    pub fn periodic(mut self, period: Duration) -> Self {
        self.connection = ConnectionType::Periodic { period };
        self
    }

    /// The backoff: `initial` after the first failure, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The share of each wait taken off at random (clamped to `0.0..=1.0`).
    pub fn jitter(mut self, share: f64) -> Self {
        self.jitter = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// Gives up after `attempts` consecutive failures (`None`: never).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }
}

/// What the last call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The manager could not be reached, or the TLS/SSH handshake or the hello failed.
    Failed,
    /// A NETCONF session was established and has now ended.
    SessionEnded,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// Dial manager number `manager` (an index into the caller's list) after `after`.
    Call {
        /// Which manager.
        manager: usize,
        /// How long to wait first.
        after: Duration,
    },
    /// `max_attempts` consecutive attempts failed: stop calling.
    GiveUp,
}

/// Which manager a calling server dials next and when (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CallHomeSchedule {
    strategy: Reconnect,
    managers: usize,
    current: usize,
    failures: u32,
}

impl CallHomeSchedule {
    /// A schedule over `managers` managers (at least one), starting with the first.
    pub fn new(strategy: Reconnect, managers: usize) -> Self {
        CallHomeSchedule {
            strategy,
            managers: managers.max(1),
            current: 0,
            failures: 0,
        }
    }

    /// The first call: the first manager, at once.
    pub fn first(&self) -> Next {
        Next::Call {
            manager: 0,
            after: Duration::ZERO,
        }
    }

    /// Consecutive failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The next call after `outcome`. `random` is any uniformly random `u64`: it picks the
    /// jitter.
    pub fn next(&mut self, outcome: Outcome, random: u64) -> Next {
        let s = &self.strategy;
        let wait = match outcome {
            Outcome::SessionEnded => {
                // The manager that last took us stays first (YANG `last-connected`).
                self.failures = 0;
                match s.connection {
                    ConnectionType::Persistent => jittered(s.initial_backoff, s.jitter, random),
                    ConnectionType::Periodic { period } => period,
                }
            }
            Outcome::Failed => {
                self.failures = self.failures.saturating_add(1);
                if s.max_attempts.is_some_and(|max| self.failures >= max) {
                    return Next::GiveUp;
                }
                self.current = (self.current + 1) % self.managers;
                let doublings = (self.failures - 1).min(31);
                let backoff = s
                    .initial_backoff
                    .checked_mul(1 << doublings)
                    .unwrap_or(s.max_backoff)
                    .min(s.max_backoff);
                jittered(backoff, s.jitter, random)
            }
        };
        Next::Call {
            manager: self.current,
            after: wait,
        }
    }
}

/// `wait` less a random share of up to `jitter` of it.
fn jittered(wait: Duration, jitter: f64, random: u64) -> Duration {
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64; // uniform in [0, 1)
    let factor = 1.0 - jitter.clamp(0.0, 1.0) * fraction;
    // Float seconds lose precision near Duration::MAX: never wait longer than asked.
    Duration::try_from_secs_f64(wait.as_secs_f64() * factor)
        .unwrap_or(wait)
        .min(wait)
}

/// A device that called home, as verified during the handshake.
#[derive(Debug, Clone)]
pub struct Device {
    /// Where its connection came from.
    pub peer: SocketAddr,
    /// Who it proved to be.
    pub identity: DeviceIdentity,
}

/// How a device proved who it is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceIdentity {
    /// Its TLS end-entity certificate, which chains to the listener's CA roots.
    #[cfg(feature = "rustls")]
    Certificate(rustls::pki_types::CertificateDer<'static>),
    /// Its SSH host key, which passed the listener's host-key check.
    HostKey {
        /// `SHA256:...`, as `ssh-keygen -l` prints it (what one pins).
        fingerprint: String,
        /// The key in OpenSSH form (`ssh-ed25519 AAAA...`), as known_hosts holds it.
        openssh: String,
    },
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "rustls")]
            DeviceIdentity::Certificate(der) => {
                write!(f, "Certificate({} bytes of DER)", der.len())
            }
            DeviceIdentity::HostKey { fingerprint, .. } => write!(f, "HostKey({fingerprint})"),
        }
    }
}

/// Decides whether a verified device may go on.
pub type DeviceFilter = Arc<dyn Fn(&Device) -> bool + Send + Sync>;

/// One calling device's way through the handshake: the transport's verifier hands it the
/// identity it verified; the filter, if any, decides; the identity is kept for the caller.
/// Shared by every adapter, so that a device is judged the same way on each.
pub struct DeviceGate {
    peer: SocketAddr,
    filter: Option<DeviceFilter>,
    verified: Mutex<Option<DeviceIdentity>>,
}

impl fmt::Debug for DeviceGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceGate")
            .field("peer", &self.peer)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

impl DeviceGate {
    /// The gate for a device calling from `peer`.
    pub fn new(peer: SocketAddr, filter: Option<DeviceFilter>) -> Arc<Self> {
        Arc::new(DeviceGate {
            peer,
            filter,
            verified: Mutex::new(None),
        })
    }

    /// The transport verified `identity`: whether the device may go on.
    pub fn decide(&self, identity: DeviceIdentity) -> bool {
        let device = Device {
            peer: self.peer,
            identity,
        };
        let accepted = self.filter.as_ref().is_none_or(|f| f(&device));
        if accepted {
            *self.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(device.identity);
        }
        accepted
    }

    /// The device, once it passed; `None` if no transport check ever ran (a bug in the
    /// adapter, reported as an error rather than an unidentified device).
    pub fn device(&self) -> Option<Device> {
        let identity = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(Device {
            peer: self.peer,
            identity,
        })
    }
}

/// A device whose call failed: refused by the filter, a wrong certificate or host key, a
/// failed handshake or hello. The listener goes on.
#[derive(Debug)]
pub struct DeviceError {
    /// Where the connection came from.
    pub peer: SocketAddr,
    /// What went wrong.
    pub error: Error,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call home from {}: {}", self.peer, self.error)
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why a server stopped calling home.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallHomeEnd {
    /// Stopped by its handle or by the server's shutdown.
    Stopped,
    /// `max_attempts` consecutive calls failed; the last failure.
    GaveUp(Error),
}

/// How a call-home listener (the manager) secures each device's connection: TLS with
/// these options, or SSH with the adapter's SSH client options `S`.
///
/// Not `non_exhaustive`: RFC 8071 defines call home for these two transports only.
#[cfg(feature = "rustls")]
#[derive(Clone)]
pub enum ListenerTransport<S> {
    /// TLS as the client (call home port 4335).
    Tls(crate::tls::ClientTlsOptions),
    /// SSH as the client (call home port 4334).
    Ssh(S),
}

#[cfg(feature = "rustls")]
impl<S> fmt::Debug for ListenerTransport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerTransport::Tls(_) => f.write_str("Tls"),
            ListenerTransport::Ssh(_) => f.write_str("Ssh"),
        }
    }
}

/// How a call-home listener talks to the devices that call. The adapters name it with
/// their SSH options: `netconf_tokio::call_home::CallHomeOptions`.
#[cfg(feature = "rustls")]
#[derive(Clone)]
pub struct CallHomeOptions<S> {
    transport: ListenerTransport<S>,
    client: crate::client::ClientOptions,
    filter: Option<DeviceFilter>,
    handshakes: usize,
}

#[cfg(feature = "rustls")]
impl<S> fmt::Debug for CallHomeOptions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHomeOptions")
            .field("transport", &self.transport)
            .field("client", &self.client)
            .field("filter", &self.filter.as_ref().map(|_| "Fn"))
            .field("handshakes", &self.handshakes)
            .finish()
    }
}

#[cfg(feature = "rustls")]
impl<S> CallHomeOptions<S> {
    /// Devices calling over TLS. Their certificates must chain to `tls`'s CA roots; names
    /// are not checked (a device that called has no name we dialled) unless `tls` sets a
    /// `server_name`. We present `tls`'s client certificate.
    pub fn tls(tls: crate::tls::ClientTlsOptions) -> Self {
        Self::with(ListenerTransport::Tls(tls))
    }

    /// Devices calling over SSH. Their host keys are checked as `ssh` says, with the
    /// device's address and port 830 as its name (`[192.0.2.1]:830` in known_hosts: the
    /// entry a dialled connection to the device records).
    pub fn ssh(ssh: S) -> Self {
        Self::with(ListenerTransport::Ssh(ssh))
    }

    fn with(transport: ListenerTransport<S>) -> Self {
        CallHomeOptions {
            transport,
            client: crate::client::ClientOptions::new(),
            filter: None,
            handshakes: 16,
        }
    }

    /// The NETCONF client options of every session.
    pub fn client_options(mut self, options: crate::client::ClientOptions) -> Self {
        self.client = options;
        self
    }

    /// Has `filter` decide on each verified device, during the handshake: a refused
    /// device learns nothing (no client certificate, no SSH credentials, no hello).
    pub fn filter(mut self, filter: impl Fn(&Device) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// How many devices may be in their handshake at once (16): more wait in the kernel's
    /// backlog, so a flood of slow callers cannot take unbounded memory or threads.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.handshakes = n.max(1);
        self
    }

    /// TLS or SSH, and its options.
    pub fn transport(&self) -> &ListenerTransport<S> {
        &self.transport
    }

    /// The NETCONF client options.
    pub fn get_client_options(&self) -> &crate::client::ClientOptions {
        &self.client
    }

    /// The gate one device calling from `peer` passes through.
    pub fn gate(&self, peer: SocketAddr) -> Arc<DeviceGate> {
        DeviceGate::new(peer, self.filter.clone())
    }

    /// The handshake cap.
    pub fn get_max_handshakes(&self) -> usize {
        self.handshakes
    }
}

/// How a calling server (the device) secures its connection to the manager: TLS with
/// these options, or SSH with the adapter's SSH server `S`.
///
/// Not `non_exhaustive`: RFC 8071 defines call home for these two transports only.
#[cfg(feature = "rustls")]
#[derive(Clone)]
pub enum CallHomeTransport<S> {
    /// TLS as the server (call home port 4335).
    Tls(crate::tls::ServerTlsOptions),
    /// SSH as the server (call home port 4334).
    Ssh(S),
}

#[cfg(feature = "rustls")]
impl<S> fmt::Debug for CallHomeTransport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallHomeTransport::Tls(_) => f.write_str("Tls"),
            CallHomeTransport::Ssh(_) => f.write_str("Ssh"),
        }
    }
}

#[cfg(feature = "rustls")]
impl<S> CallHomeTransport<S> {
    /// The IANA call-home port of this transport.
    pub fn default_port(&self) -> u16 {
        match self {
            CallHomeTransport::Tls(_) => CALL_HOME_TLS_PORT,
            CallHomeTransport::Ssh(_) => CALL_HOME_SSH_PORT,
        }
    }

    /// `managers` (`host` or `host:port`) with this transport's default port filled in.
    pub fn managers(&self, managers: &[&str]) -> Result<Vec<(String, u16)>, Error> {
        let port = self.default_port();
        let managers = managers
            .iter()
            .map(|m| crate::address::split_host_port(m, port).map(|(h, p)| (h.to_owned(), p)))
            .collect::<Result<Vec<_>, _>>()?;
        if managers.is_empty() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "call home needs at least one manager address",
            )));
        }
        Ok(managers)
    }
}

/// A uniformly random `u64` for the jitter, from the standard library's per-process
/// random keys (no dependency, no clock-derived seed).
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn failures_back_off_doubling_to_the_cap_and_rotate_managers() {
        let strategy = Reconnect::new().backoff(S, 8 * S).jitter(0.0);
        let mut schedule = CallHomeSchedule::new(strategy, 2);
        assert_eq!(
            schedule.first(),
            Next::Call {
                manager: 0,
                after: Duration::ZERO
            }
        );
        let waits: Vec<Next> = (0..5).map(|_| schedule.next(Outcome::Failed, 0)).collect();
        let expect = [(1, 1), (0, 2), (1, 4), (0, 8), (1, 8)];
        for (got, (manager, secs)) in waits.iter().zip(expect) {
            assert_eq!(
                *got,
                Next::Call {
                    manager,
                    after: secs * S
                }
            );
        }
        // A session resets the backoff and keeps the manager that took us.
        assert_eq!(
            schedule.next(Outcome::SessionEnded, 0),
            Next::Call {
                manager: 1,
                after: S
            }
        );
        assert_eq!(
            schedule.next(Outcome::Failed, 0),
            Next::Call {
                manager: 0,
                after: S
            }
        );
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_share() {
        let strategy = Reconnect::new().backoff(4 * S, 4 * S).jitter(0.5);
        let mut schedule = CallHomeSchedule::new(strategy, 1);
        for random in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX] {
            let Next::Call { after, .. } = schedule.next(Outcome::Failed, random) else {
                panic!("gave up without a limit");
            };
            assert!(
                after <= 4 * S && after > 2 * S - Duration::from_millis(1),
                "{after:?}"
            );
        }
        let spread: std::collections::HashSet<Duration> = [1u64 << 60, 1 << 62, 3 << 62]
            .into_iter()
            .map(|r| match schedule.next(Outcome::Failed, r) {
                Next::Call { after, .. } => after,
                Next::GiveUp => unreachable!(),
            })
            .collect();
        assert_eq!(spread.len(), 3, "different randomness, different waits");
    }

    #[test]
    fn max_attempts_counts_consecutive_failures_only() {
        let strategy = Reconnect::new().max_attempts(Some(3)).jitter(0.0);
        let mut schedule = CallHomeSchedule::new(strategy, 1);
        assert!(matches!(
            schedule.next(Outcome::Failed, 0),
            Next::Call { .. }
        ));
        assert!(matches!(
            schedule.next(Outcome::Failed, 0),
            Next::Call { .. }
        ));
        assert!(matches!(
            schedule.next(Outcome::SessionEnded, 0),
            Next::Call { .. }
        ));
        assert!(matches!(
            schedule.next(Outcome::Failed, 0),
            Next::Call { .. }
        ));
        assert!(matches!(
            schedule.next(Outcome::Failed, 0),
            Next::Call { .. }
        ));
        assert_eq!(schedule.next(Outcome::Failed, 0), Next::GiveUp);
    }

    #[test]
    fn periodic_waits_its_period_after_a_session() {
        let strategy = Reconnect::new().periodic(300 * S);
        let mut schedule = CallHomeSchedule::new(strategy, 1);
        assert_eq!(
            schedule.next(Outcome::SessionEnded, u64::MAX),
            Next::Call {
                manager: 0,
                after: 300 * S
            }
        );
    }

    #[test]
    fn huge_backoffs_saturate() {
        let strategy = Reconnect::new()
            .backoff(Duration::from_secs(u64::MAX / 4), Duration::MAX)
            .jitter(0.0);
        let mut schedule = CallHomeSchedule::new(strategy, 1);
        for _ in 0..40 {
            assert!(matches!(
                schedule.next(Outcome::Failed, 0),
                Next::Call { .. }
            ));
        }
    }
}
