//! NETCONF call home (RFC 8071), both roles, on threads.
//!
//! A device behind NAT or a firewall, or one provisioning itself, opens the TCP connection
//! to its manager: port 4334 for SSH, 4335 for TLS. Then the roles flip back: the manager,
//! which accepted the connection, is the TLS or SSH *client* and the NETCONF client; the
//! device is the server of both.
//!
//! - Manager side: a [`CallHomeListener`] accepts devices, runs TLS or SSH as the client on
//!   each connection (a thread per handshake, at most `max_handshakes` at once), verifying
//!   the device first (RFC 8071 section 3.1), and yields each established [`Client`] with
//!   the [`Device`] it is. A filter decides on every device during the handshake, before
//!   our credentials or any NETCONF byte reach it.
//! - Device side: [`Server::call_home`] dials the manager from a thread of its own, serves
//!   the session as any other, and calls again when it ends or fails, as its [`Reconnect`]
//!   strategy says.
//!
//! The decisions (who may pass, when to call again) are netconf-proto's, shared with the
//! async adapters.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use netconf_proto::call_home::{jitter_seed, CallHomeSchedule, Next, Outcome};
use netconf_proto::client::ClientOptions;
use netconf_proto::rustls::pki_types::CertificateDer;
use netconf_proto::{CloseReason, Error, TimeoutKind};

pub use netconf_proto::call_home::{
    CallHomeEnd, ConnectionType, Device, DeviceError, DeviceFilter, DeviceIdentity,
    ListenerTransport, Reconnect, CALL_HOME_SSH_PORT, CALL_HOME_TLS_PORT,
};

use crate::client::{connect_tcp, Client};
use crate::serve::Server;

/// How a [`CallHomeListener`] talks to the devices that call (TLS, or SSH with
/// `netconf-ssh`'s client options).
#[cfg(feature = "ssh")]
pub type CallHomeOptions = netconf_proto::call_home::CallHomeOptions<crate::ssh::SshClientOptions>;
/// How a [`CallHomeListener`] talks to the devices that call (TLS; SSH needs feature `ssh`).
#[cfg(not(feature = "ssh"))]
pub type CallHomeOptions = netconf_proto::call_home::CallHomeOptions<std::convert::Infallible>;

/// How a calling server secures its connection to the manager (TLS, or SSH as
/// `netconf-ssh`'s server).
#[cfg(feature = "ssh")]
pub type CallHomeTransport = netconf_proto::call_home::CallHomeTransport<crate::ssh::SshServer>;
/// How a calling server secures its connection to the manager (TLS; SSH needs feature
/// `ssh`).
#[cfg(not(feature = "ssh"))]
pub type CallHomeTransport = netconf_proto::call_home::CallHomeTransport<std::convert::Infallible>;

/// A device that called home and whose session is established.
#[derive(Debug)]
pub struct CalledHome {
    /// The NETCONF session, as from any constructor.
    pub client: Client,
    /// Who called.
    pub device: Device,
}

type Arrival = Result<CalledHome, DeviceError>;

/// Accepts devices that call home; see the [module docs](self). Dropping it stops
/// accepting (sessions already handed out live on).
#[derive(Debug)]
pub struct CallHomeListener {
    arrivals: Receiver<Arrival>,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

// A refused device is as ordinary an outcome here as an accepted one, and each is read
// once: boxing the error would cost more than moving it.
#[allow(clippy::result_large_err)]
impl CallHomeListener {
    /// Listens on `addr` (`0.0.0.0:4335` for TLS, `:4334` for SSH are the IANA ports).
    pub fn bind(addr: impl ToSocketAddrs, options: &CallHomeOptions) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (arrive, arrivals) = sync_channel(options.get_max_handshakes());
        let (options, stopping) = (options.clone(), stop.clone());
        std::thread::Builder::new()
            .name("netconf-call-home".into())
            .spawn(move || accept_loop(listener, &options, &arrive, &stopping))?;
        Ok(CallHomeListener {
            arrivals,
            local,
            stop,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next device that called: its established session, or why its call failed.
    pub fn accept(&self) -> Result<CalledHome, DeviceError> {
        self.arrivals.recv().unwrap_or_else(|_| Err(self.gone()))
    }

    /// Like [`CallHomeListener::accept`], giving up after `timeout` (`None`).
    pub fn accept_timeout(&self, timeout: Duration) -> Option<Result<CalledHome, DeviceError>> {
        match self.arrivals.recv_timeout(timeout) {
            Ok(arrival) => Some(arrival),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(self.gone())),
        }
    }

    /// The accept thread ended (it does not while we live; never a panic either way).
    fn gone(&self) -> DeviceError {
        DeviceError {
            peer: self.local,
            error: Error::Closed(CloseReason::Local),
        }
    }
}

impl Drop for CallHomeListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread out of `accept` with a connection of our own.
        let mut wake = self.local;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    }
}

fn accept_loop(
    listener: TcpListener,
    options: &CallHomeOptions,
    arrive: &SyncSender<Arrival>,
    stop: &AtomicBool,
) {
    // Handshakes in progress hold a permit; at the cap we stop accepting.
    let (permits, returned) = sync_channel::<()>(options.get_max_handshakes());
    let returned = Arc::new(Mutex::new(returned));
    let mut failures = 0u32;
    loop {
        if permits.send(()).is_err() {
            return;
        }
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                failures = 0;
                accepted
            }
            Err(e) => {
                let _ = returned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .try_recv();
                // EMFILE and friends: back off (5 ms doubling to 1 s) instead of spinning.
                let wait =
                    Duration::from_millis(5u64 << failures.min(8)).min(Duration::from_secs(1));
                failures += 1;
                tracing::warn!(error = %e, ?wait, "call home accept failed; backing off");
                std::thread::sleep(wait);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (options, arrive, done) = (options.clone(), arrive.clone(), returned.clone());
        let spawned = std::thread::Builder::new()
            .name("netconf-call-home-device".into())
            .spawn(move || {
                let arrival =
                    answer(tcp, peer, &options).map_err(|error| DeviceError { peer, error });
                if let Err(e) = &arrival {
                    tracing::info!(%peer, error = %e.error, "call home refused or failed");
                }
                // A listener dropped meanwhile: the client (if any) is dropped, which closes it.
                let _ = arrive.send(arrival);
                // Only now: devices nobody accepts count against the cap.
                let _ = done.lock().unwrap_or_else(|p| p.into_inner()).try_recv();
            });
        if let Err(e) = spawned {
            let _ = returned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_recv();
            tracing::warn!(%peer, error = %e, "no thread for a calling device");
        }
    }
}

/// Runs the handshake and the hello with one calling device.
fn answer(
    tcp: TcpStream,
    peer: SocketAddr,
    options: &CallHomeOptions,
) -> Result<CalledHome, Error> {
    let gate = options.gate(peer);
    let client_options = options.get_client_options();
    let client = match options.transport() {
        ListenerTransport::Tls(tls) => {
            let check = gate.clone();
            let config = tls.build_call_home(Arc::new(move |cert: &CertificateDer<'_>| {
                check.decide(DeviceIdentity::Certificate(cert.clone().into_owned()))
            }))?;
            let name = tls.server_name_for(&peer.ip().to_string())?;
            Client::tls_with_config(Box::new(tcp), config, name, client_options)?
        }
        #[cfg(not(feature = "ssh"))]
        ListenerTransport::Ssh(never) => match *never {},
        #[cfg(feature = "ssh")]
        ListenerTransport::Ssh(ssh) => {
            let check = gate.clone();
            let ssh = ssh
                .clone()
                .host_key_filter(move |key| check.decide(netconf_ssh::device_identity(key)));
            let host = peer.ip().to_string();
            let stream = netconf_ssh::blocking::connect_tcp(
                tcp,
                &host,
                netconf_ssh::NETCONF_SSH_PORT,
                &ssh,
            )?;
            Client::from_stream_with(stream, client_options)?
        }
    };
    // Both transports verify the peer before the session can be established.
    let device = gate
        .device()
        .ok_or(Error::Timeout(TimeoutKind::Handshake))?;
    Ok(CalledHome { client, device })
}

/// A server calling a manager home; see [`Server::call_home`]. Dropping it does not stop
/// the calls (the server's shutdown does); [`CallHome::stop`] does.
#[derive(Debug, Clone)]
pub struct CallHome {
    shared: Arc<Calling>,
}

#[derive(Debug, Default)]
struct Calling {
    state: Mutex<CallingState>,
    changed: Condvar,
    sessions: AtomicU64,
}

#[derive(Debug, Default)]
struct CallingState {
    stop: bool,
    /// The calling thread has finished.
    done: bool,
    ended: Option<CallHomeEnd>,
    /// The connection in use, shut down by `stop` so that the session ends at once.
    current: Option<TcpStream>,
}

impl Calling {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallingState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CallHome {
    /// Stops calling: the session in progress, if any, ends with it.
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        st.stop = true;
        if let Some(tcp) = st.current.take() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
        self.shared.changed.notify_all();
    }

    /// Waits until the server stops calling, and says why (the first caller learns the
    /// reason; later ones `Stopped`).
    pub fn wait(&self) -> CallHomeEnd {
        let mut st = self.shared.lock();
        loop {
            if st.done {
                return st.ended.take().unwrap_or(CallHomeEnd::Stopped);
            }
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// How many NETCONF sessions with a manager have been established so far.
    pub fn sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::SeqCst)
    }
}

impl Server {
    /// Calls home (RFC 8071) from a thread of its own: dials the first of `managers`
    /// (`host` or `host:port`; port 4335 for TLS, 4334 for SSH unless given), runs TLS or
    /// SSH as the server on the connection and serves the NETCONF session like any other
    /// (same handler, registry and notifications). When the session ends or a call fails,
    /// calls again as `reconnect` says, trying the managers in turn, until
    /// [`CallHome::stop`], the server's shutdown, or `max_attempts`.
    pub fn call_home(
        &self,
        managers: &[&str],
        transport: CallHomeTransport,
        reconnect: Reconnect,
    ) -> Result<CallHome, Error> {
        let managers = transport.managers(managers)?;
        // A TLS configuration that cannot be built fails here, not on every call.
        enum Side {
            Tls(Arc<netconf_proto::rustls::ServerConfig>),
            #[cfg(feature = "ssh")]
            Ssh(crate::ssh::SshServer),
        }
        let side = match transport {
            CallHomeTransport::Tls(tls) => Side::Tls(tls.build()?),
            #[cfg(feature = "ssh")]
            CallHomeTransport::Ssh(ssh) => Side::Ssh(ssh),
            #[cfg(not(feature = "ssh"))]
            CallHomeTransport::Ssh(never) => match never {},
        };
        let handle = CallHome {
            shared: Arc::default(),
        };
        let shared = handle.shared.clone();
        let server = self.clone();
        let stopper = handle.clone();
        self.on_shutdown(move || stopper.stop());
        let connect_timeout = ClientOptions::new().get_connect_timeout();
        std::thread::Builder::new()
            .name("netconf-calling-home".into())
            .spawn(move || {
                let stopped = || shared.lock().stop || server.stopping().load(Ordering::SeqCst);
                let mut schedule = CallHomeSchedule::new(reconnect, managers.len());
                let mut next = schedule.first();
                let mut last_error: Option<Error> = None;
                let end = loop {
                    let (manager, after) = match next {
                        Next::Call { manager, after } => (manager, after),
                        _ => {
                            break CallHomeEnd::GaveUp(
                                last_error.take().unwrap_or(Error::Closed(CloseReason::Eof)),
                            )
                        }
                    };
                    // Until the call is due, or `stop` (the handle's or the server's
                    // shutdown) wakes us.
                    let until = Instant::now() + after;
                    let mut st = shared.lock();
                    while !st.stop {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        st = shared
                            .changed
                            .wait_timeout(st, until - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    drop(st);
                    if stopped() {
                        break CallHomeEnd::Stopped;
                    }
                    let (host, port) = &managers[manager];
                    let call = connect_tcp(host, *port, connect_timeout).and_then(|tcp| {
                        shared.lock().current = Some(tcp.try_clone()?);
                        if stopped() {
                            return Ok(());
                        }
                        let peer = tcp.peer_addr().ok();
                        match &side {
                            Side::Tls(config) => server.serve_tls_inner(tcp, config.clone(), peer),
                            #[cfg(feature = "ssh")]
                            Side::Ssh(ssh) => {
                                let session = netconf_ssh::blocking::accept_tcp(ssh, tcp, peer)?;
                                server.serve_plaintext(session.stream, Some(session.username), session.peer)
                            }
                        }
                    });
                    shared.lock().current = None;
                    if stopped() {
                        break CallHomeEnd::Stopped;
                    }
                    next = match call {
                        Ok(()) => {
                            shared.sessions.fetch_add(1, Ordering::SeqCst);
                            tracing::info!(manager = %host, "call home session ended; calling again");
                            schedule.next(Outcome::SessionEnded, jitter_seed())
                        }
                        Err(e) => {
                            tracing::info!(manager = %host, error = %e, "call home failed");
                            last_error = Some(e);
                            schedule.next(Outcome::Failed, jitter_seed())
                        }
                    };
                };
                let mut st = shared.lock();
                st.ended = Some(end);
                st.done = true;
                shared.changed.notify_all();
            })?;
        Ok(handle)
    }
}
