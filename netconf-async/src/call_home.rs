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

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;
use netconf_proto::call_home::{jitter_seed, CallHomeSchedule, Next, Outcome};
use netconf_proto::client::ClientOptions;
use netconf_proto::rustls::pki_types::CertificateDer;
use netconf_proto::{Error, TimeoutKind};

pub use netconf_proto::call_home::{
    CallHomeEnd, ConnectionType, Device, DeviceError, DeviceFilter, DeviceIdentity,
    ListenerTransport, Reconnect, CALL_HOME_SSH_PORT, CALL_HOME_TLS_PORT,
};

use crate::client::Client;
use crate::runtime::{BoxStream, Listener, Runtime};
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
        let (arrive, arrivals) = async_channel::bounded(options.get_max_handshakes());
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
    let (permits, returned) = async_channel::bounded::<()>(options.get_max_handshakes());
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
            // A listener dropped meanwhile: the client (if any) is dropped, which closes it.
            let _ = arrive.send(arrival).await;
            // Only now: devices nobody accepts count against the cap.
            let _ = returned.try_recv();
        }));
    }
}

/// Runs the handshake and the hello with one calling device.
async fn answer<R: Runtime>(
    stream: BoxStream,
    peer: SocketAddr,
    options: &CallHomeOptions,
) -> Result<CalledHome<R>, Error> {
    let gate = options.gate(peer);
    let client_options = options.get_client_options();
    let (client, driver) = match options.transport() {
        ListenerTransport::Tls(tls) => {
            let gate = gate.clone();
            let config = tls.build_call_home(Arc::new(move |cert: &CertificateDer<'_>| {
                gate.decide(DeviceIdentity::Certificate(cert.clone().into_owned()))
            }))?;
            let name = tls.server_name_for(&peer.ip().to_string())?;
            Client::<R>::tls_with_config(stream, config, name, client_options).await?
        }
        #[cfg(not(feature = "ssh"))]
        ListenerTransport::Ssh(never) => match *never {},
        #[cfg(feature = "ssh")]
        ListenerTransport::Ssh(ssh) => {
            let gate = gate.clone();
            let ssh = ssh
                .clone()
                .host_key_filter(move |key| gate.decide(netconf_ssh::device_identity(key)));
            ssh_client::<R>(stream, peer, ssh, client_options).await?
        }
    };
    R::spawn(Box::pin(driver));
    // Both transports verify the peer before the session can be established.
    let device = gate
        .device()
        .ok_or(Error::Timeout(TimeoutKind::Handshake))?;
    Ok(CalledHome { client, device })
}

#[cfg(feature = "ssh")]
async fn ssh_client<R: Runtime>(
    stream: BoxStream,
    peer: SocketAddr,
    ssh: crate::ssh::SshClientOptions,
    options: &ClientOptions,
) -> Result<(Client<R>, crate::connection::Driver), Error> {
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
                    // The manager's address, when it is configured as one (a name is
                    // resolved by the dial, which does not say to what): errors and the
                    // session's info name it.
                    let peer = host
                        .parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| std::net::SocketAddr::new(ip, *port));
                    match &side {
                        Side::Tls(config) => {
                            server.serve_tls_boxed(stream, config.clone(), peer).await
                        }
                        #[cfg(feature = "ssh")]
                        Side::Ssh(ssh) => {
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
                let random = jitter_seed();
                next = match outcome {
                    None => break Some(CallHomeEnd::Stopped),
                    Some(Ok(())) => {
                        *sessions.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        tracing::info!(manager = %host, "call home session ended; calling again");
                        schedule.next(Outcome::SessionEnded, random)
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
