//! NETCONF call home (RFC 8071), both roles.
//!
//! A device behind NAT or a firewall, or one provisioning itself, opens the TCP connection
//! to its manager: port 4334 for SSH, 4335 for TLS. Then the roles flip back: the manager,
//! which accepted the connection, is the TLS or SSH *client* and the NETCONF client; the
//! device is the server of both.
//!
//! - Manager side: a [`CallHomeListener`] accepts devices, runs TLS or SSH as the client on
//!   each connection, verifying the device first (RFC 8071 section 3.1), and yields each
//!   established [`Client`] with the [`Device`] it is. A filter decides on every device
//!   during the handshake, before our credentials or any NETCONF byte reach it.
//! - Device side: [`Server::call_home`] dials the manager, serves the session as any
//!   other, and calls again when it ends or fails, as its [`Reconnect`] strategy says.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;
use netconf_proto::address::split_host_port;
use netconf_proto::call_home::{CallHomeSchedule, Next, Outcome};
use netconf_proto::client::ClientOptions;
use netconf_proto::rustls::pki_types::CertificateDer;
use netconf_proto::tls::{ClientTlsOptions, ServerTlsOptions};
use netconf_proto::{Error, TimeoutKind};

pub use netconf_proto::call_home::{
    ConnectionType, Reconnect, CALL_HOME_SSH_PORT, CALL_HOME_TLS_PORT,
};

use crate::client::{Client, Driver};
use crate::runtime::{BoxStream, Listener, Runtime};
use crate::serve::Server;

/// A device that called home, as verified during the handshake.
#[derive(Debug, Clone)]
pub struct Device {
    /// Where its connection came from.
    pub peer: SocketAddr,
    /// Who it proved to be.
    pub identity: DeviceIdentity,
}

/// How a device proved who it is.
#[derive(Clone)]
#[non_exhaustive]
pub enum DeviceIdentity {
    /// Its TLS end-entity certificate, which chains to the listener's CA roots.
    Certificate(CertificateDer<'static>),
    /// Its SSH host key, which passed the listener's host-key check.
    #[cfg(feature = "ssh")]
    HostKey(crate::ssh::PublicKey),
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceIdentity::Certificate(der) => {
                write!(f, "Certificate({} bytes of DER)", der.len())
            }
            #[cfg(feature = "ssh")]
            DeviceIdentity::HostKey(key) => {
                write!(f, "HostKey({})", netconf_ssh::known_hosts::fingerprint(key))
            }
        }
    }
}

/// Decides whether a verified device may go on.
pub type DeviceFilter = Arc<dyn Fn(&Device) -> bool + Send + Sync>;

#[derive(Clone)]
enum Transport {
    Tls(ClientTlsOptions),
    #[cfg(feature = "ssh")]
    Ssh(crate::ssh::SshClientOptions),
}

/// How a [`CallHomeListener`] talks to the devices that call.
#[derive(Clone)]
#[non_exhaustive]
pub struct CallHomeOptions {
    transport: Transport,
    client: ClientOptions,
    filter: Option<DeviceFilter>,
    handshakes: usize,
}

impl fmt::Debug for CallHomeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Tls(_) => "tls",
            #[cfg(feature = "ssh")]
            Transport::Ssh(_) => "ssh",
        };
        f.debug_struct("CallHomeOptions")
            .field("transport", &transport)
            .field("client", &self.client)
            .field("filter", &self.filter.as_ref().map(|_| "Fn"))
            .field("handshakes", &self.handshakes)
            .finish()
    }
}

impl CallHomeOptions {
    /// Devices calling over TLS. Their certificates must chain to `tls`'s CA roots; names
    /// are not checked (a device that called has no name we dialled) unless `tls` sets a
    /// `server_name`. We present `tls`'s client certificate.
    pub fn tls(tls: ClientTlsOptions) -> Self {
        Self::with(Transport::Tls(tls))
    }

    /// Devices calling over SSH. Their host keys are checked as `ssh` says, with the
    /// device's address and port 830 as its name (`[192.0.2.1]:830` in known_hosts: the
    /// entry a dialled connection to the device records).
    #[cfg(feature = "ssh")]
    pub fn ssh(ssh: crate::ssh::SshClientOptions) -> Self {
        Self::with(Transport::Ssh(ssh))
    }

    fn with(transport: Transport) -> Self {
        CallHomeOptions {
            transport,
            client: ClientOptions::new(),
            filter: None,
            handshakes: 16,
        }
    }

    /// The NETCONF client options of every session.
    pub fn client_options(mut self, options: ClientOptions) -> Self {
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
    /// backlog, so a flood of slow callers cannot take unbounded memory.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.handshakes = n.max(1);
        self
    }
}

/// A device that called home and whose session is established.
pub struct CalledHome<R> {
    /// The NETCONF session, as from any constructor.
    pub client: Client<R>,
    /// Who called.
    pub device: Device,
}

impl<R> fmt::Debug for CalledHome<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalledHome")
            .field("client", &self.client)
            .field("device", &self.device)
            .finish()
    }
}

/// A device whose call failed: unreachable identity, refused by the filter, a failed
/// handshake or hello. The listener goes on.
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

/// Accepts devices that call home; see the [module docs](self). Dropping it stops
/// accepting (sessions already handed out live on).
pub struct CallHomeListener<R> {
    arrivals: Receiver<Result<CalledHome<R>, DeviceError>>,
    local: SocketAddr,
    _stop: Sender<()>,
}

impl<R> fmt::Debug for CallHomeListener<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHomeListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> CallHomeListener<R> {
    /// Listens on `addr` (`0.0.0.0:4335` for TLS, `:4334` for SSH are the IANA ports).
    /// Each device's handshake runs on a task of its own, so a slow one holds up no other.
    pub async fn bind(addr: impl ToSocketAddrs, options: &CallHomeOptions) -> Result<Self, Error> {
        let (listener, local) = R::bind(addr.to_socket_addrs()?.collect()).await?;
        let (stop, stopped) = async_channel::bounded(1);
        let (arrive, arrivals) = async_channel::bounded(options.handshakes);
        R::spawn(Box::pin(accept_loop::<R>(
            listener,
            options.clone(),
            arrive,
            stopped,
        )));
        Ok(CallHomeListener {
            arrivals,
            local,
            _stop: stop,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next device that called: its established session, or why its call failed.
    pub async fn accept(&mut self) -> Result<CalledHome<R>, DeviceError> {
        match self.arrivals.recv().await {
            Ok(arrival) => arrival,
            // The accept loop never ends while we hold `_stop`; this is unreachable in
            // practice, but never a panic.
            Err(_) => Err(DeviceError {
                peer: self.local,
                error: Error::Closed(netconf_proto::CloseReason::Local),
            }),
        }
    }
}

async fn accept_loop<R: Runtime>(
    mut listener: Box<dyn Listener>,
    options: CallHomeOptions,
    arrive: Sender<Result<CalledHome<R>, DeviceError>>,
    stopped: Receiver<()>,
) {
    // Handshakes in progress hold a permit; at the cap we stop accepting.
    let (permits, returned) = async_channel::bounded::<()>(options.handshakes);
    let mut failures = 0u32;
    loop {
        let permit = async { permits.send(()).await.ok() }
            .or(async {
                let _ = stopped.recv().await;
                None
            })
            .await;
        if permit.is_none() {
            return;
        }
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                let _ = stopped.recv().await;
                None
            })
            .await;
        let (stream, peer) = match accepted {
            None => return,
            Some(Ok(accepted)) => {
                failures = 0;
                accepted
            }
            Some(Err(e)) => {
                let _ = returned.try_recv();
                let wait =
                    Duration::from_millis(5u64 << failures.min(8)).min(Duration::from_secs(1));
                failures += 1;
                tracing::warn!(error = %e, ?wait, "call home accept failed; backing off");
                R::sleep_until(Instant::now() + wait).await;
                continue;
            }
        };
        let (options, arrive, returned) = (options.clone(), arrive.clone(), returned.clone());
        R::spawn(Box::pin(async move {
            let arrival = answer::<R>(stream, peer, &options)
                .await
                .map_err(|error| DeviceError { peer, error });
            if let Err(e) = &arrival {
                tracing::info!(%peer, error = %e.error, "call home refused or failed");
            }
            let _ = returned.try_recv();
            // A listener dropped meanwhile: the client (if any) is dropped, which closes it.
            let _ = arrive.send(arrival).await;
        }));
    }
}

/// Runs the handshake and the hello with one calling device.
async fn answer<R: Runtime>(
    stream: BoxStream,
    peer: SocketAddr,
    options: &CallHomeOptions,
) -> Result<CalledHome<R>, Error> {
    let seen: Arc<Mutex<Option<DeviceIdentity>>> = Arc::default();
    let decide = {
        let (seen, filter) = (seen.clone(), options.filter.clone());
        move |identity: DeviceIdentity| {
            let device = Device { peer, identity };
            let ok = filter.as_ref().is_none_or(|f| f(&device));
            if ok {
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(device.identity);
            }
            ok
        }
    };
    let (client, driver) = match &options.transport {
        Transport::Tls(tls) => {
            let config = tls.build_call_home(Arc::new(move |cert: &CertificateDer<'_>| {
                decide(DeviceIdentity::Certificate(cert.clone().into_owned()))
            }))?;
            let name = tls.server_name_for(&peer.ip().to_string())?;
            Client::<R>::tls_with_config(stream, config, name, &options.client).await?
        }
        #[cfg(feature = "ssh")]
        Transport::Ssh(ssh) => {
            let ssh = ssh
                .clone()
                .host_key_filter(move |key| decide(DeviceIdentity::HostKey(key.clone())));
            ssh_client::<R>(stream, peer, ssh, &options.client).await?
        }
    };
    R::spawn(Box::pin(driver));
    let identity = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        // Both transports verify the peer before the session can be established.
        .ok_or(Error::Timeout(TimeoutKind::Handshake))?;
    Ok(CalledHome {
        client,
        device: Device { peer, identity },
    })
}

#[cfg(feature = "ssh")]
async fn ssh_client<R: Runtime>(
    stream: BoxStream,
    peer: SocketAddr,
    ssh: crate::ssh::SshClientOptions,
    options: &ClientOptions,
) -> Result<(Client<R>, Driver), Error> {
    let host = peer.ip().to_string();
    let channel = R::ssh(async move {
        netconf_ssh::connect_stream(
            netconf_ssh::compat::TokioIo(stream),
            &host,
            netconf_ssh::NETCONF_SSH_PORT,
            &ssh,
        )
        .await
    })
    .await
    .map_err(Error::Io)??;
    Client::<R>::plaintext(Box::new(channel), options).await
}

/// How a calling server secures its connection to the manager.
#[derive(Clone)]
#[non_exhaustive]
pub enum CallHomeTransport {
    /// TLS as the server (call home port 4335).
    Tls(ServerTlsOptions),
    /// SSH as the server (call home port 4334).
    #[cfg(feature = "ssh")]
    Ssh(crate::ssh::SshServer),
}

impl fmt::Debug for CallHomeTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallHomeTransport::Tls(_) => f.write_str("Tls"),
            #[cfg(feature = "ssh")]
            CallHomeTransport::Ssh(_) => f.write_str("Ssh"),
        }
    }
}

impl CallHomeTransport {
    fn default_port(&self) -> u16 {
        match self {
            CallHomeTransport::Tls(_) => CALL_HOME_TLS_PORT,
            #[cfg(feature = "ssh")]
            CallHomeTransport::Ssh(_) => CALL_HOME_SSH_PORT,
        }
    }
}

/// Why a server stopped calling home.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallHomeEnd {
    /// [`CallHome::stop`] or the server's shutdown.
    Stopped,
    /// `max_attempts` consecutive calls failed; the last failure.
    GaveUp(Error),
}

/// A server calling a manager home; see [`Server::call_home`]. Dropping it does not stop
/// the calls (the server's shutdown does); [`CallHome::stop`] does.
#[derive(Debug)]
pub struct CallHome {
    stop: Sender<()>,
    ended: Receiver<CallHomeEnd>,
    sessions: Arc<Mutex<u64>>,
}

impl CallHome {
    /// Stops calling: the session in progress, if any, ends with it.
    pub fn stop(&self) {
        self.stop.close();
    }

    /// Waits until the server stops calling, and says why.
    pub async fn ended(&self) -> CallHomeEnd {
        self.ended.recv().await.unwrap_or(CallHomeEnd::Stopped)
    }

    /// How many NETCONF sessions with a manager have been established so far.
    pub fn sessions(&self) -> u64 {
        *self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<R: Runtime> Server<R> {
    /// Calls home (RFC 8071): dials the first of `managers` (`host` or `host:port`; port
    /// 4335 for TLS, 4334 for SSH unless given), runs TLS or SSH as the server on the
    /// connection and serves the NETCONF session like any other (same handler, registry
    /// and notifications). When the session ends or a call fails, calls again as
    /// `reconnect` says, trying the managers in turn.
    pub fn call_home(
        &self,
        managers: &[&str],
        transport: CallHomeTransport,
        reconnect: Reconnect,
    ) -> Result<CallHome, Error> {
        let port = transport.default_port();
        let managers = managers
            .iter()
            .map(|m| split_host_port(m, port).map(|(h, p)| (h.to_owned(), p)))
            .collect::<Result<Vec<_>, _>>()?;
        if managers.is_empty() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "call home needs at least one manager address",
            )));
        }
        // A TLS configuration that cannot be built fails here, not on every call.
        let tls = match &transport {
            CallHomeTransport::Tls(tls) => Some(tls.build()?),
            #[cfg(feature = "ssh")]
            CallHomeTransport::Ssh(_) => None,
        };
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (end, ended) = async_channel::bounded(1);
        let sessions: Arc<Mutex<u64>> = Arc::default();
        let handle = CallHome {
            stop,
            ended,
            sessions: sessions.clone(),
        };
        let server = self.clone();
        let shutdown = self.stop_signal();
        self.spawn_task(async move {
            let mut schedule = CallHomeSchedule::new(reconnect, managers.len());
            let mut next = schedule.first();
            let mut last_error: Option<Error> = None;
            let stopping = || async {
                async {
                    let _ = stopped.recv().await;
                }
                .or(async {
                    let _ = shutdown.recv().await;
                })
                .await
            };
            let result = loop {
                let (manager, after) = match next {
                    Next::Call { manager, after } => (manager, after),
                    _ => break None,
                };
                let slept = async {
                    R::sleep_until(Instant::now() + after).await;
                    true
                }
                .or(async {
                    stopping().await;
                    false
                })
                .await;
                if !slept {
                    break Some(CallHomeEnd::Stopped);
                }
                let (host, port) = &managers[manager];
                let call = async {
                    // Within ClientOptions' connect timeout (30 s), like any dial.
                    let stream =
                        crate::client::connect::<R>(host, *port, &ClientOptions::new()).await?;
                    let peer = None;
                    match &transport {
                        CallHomeTransport::Tls(_) => {
                            let config = tls.clone().expect("built above for TLS");
                            server.serve_tls_boxed(stream, config, peer).await
                        }
                        #[cfg(feature = "ssh")]
                        CallHomeTransport::Ssh(ssh) => {
                            let ssh = ssh.clone();
                            let session = R::ssh(async move {
                                ssh.accept_stream(netconf_ssh::compat::TokioIo(stream), peer)
                                    .await
                            })
                            .await
                            .map_err(Error::Io)??;
                            server
                                .serve_plaintext(
                                    Box::new(session.stream),
                                    Some(session.username),
                                    session.peer,
                                )
                                .await
                        }
                    }
                };
                let outcome = async { Some(call.await) }
                    .or(async {
                        stopping().await;
                        None
                    })
                    .await;
                let random = RandomState::new().hash_one(Instant::now());
                next = match outcome {
                    None => break Some(CallHomeEnd::Stopped),
                    Some(Ok(true)) => {
                        *sessions.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        tracing::info!(manager = %host, "call home session ended; calling again");
                        schedule.next(Outcome::SessionEnded, random)
                    }
                    Some(Ok(false)) => {
                        tracing::info!(manager = %host, "call home: no session established");
                        last_error = Some(Error::Closed(netconf_proto::CloseReason::Eof));
                        schedule.next(Outcome::Failed, random)
                    }
                    Some(Err(e)) => {
                        tracing::info!(manager = %host, error = %e, "call home failed");
                        last_error = Some(e);
                        schedule.next(Outcome::Failed, random)
                    }
                };
            };
            let _ = end.try_send(result.unwrap_or_else(|| {
                CallHomeEnd::GaveUp(
                    last_error
                        .take()
                        .unwrap_or(Error::Closed(netconf_proto::CloseReason::Eof)),
                )
            }));
        });
        Ok(handle)
    }
}
