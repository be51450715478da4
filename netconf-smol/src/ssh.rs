//! NETCONF over SSH (RFC 6242), feature `ssh`: the `netconf-ssh` types these APIs take,
//! re-exported so that no direct dependency is needed, and the SSH constructors of
//! [`Client`] and [`Server`].
//!
//! # How SSH runs under smol
//! russh is tokio-only, and its objects must stay on the tokio runtime that created them.
//! So every SSH connection lives on `netconf-ssh`'s [shared runtime]: a small tokio runtime
//! on two threads of its own, started on first use. The connect, the accept loop and the
//! handshakes run there as tasks, which we await from any executor (a tokio `JoinHandle`
//! is an ordinary future). What comes back is the [`SshStream`]: it holds no russh object
//! whose drop needs a runtime, its waits are on `tokio::sync` primitives, and it
//! implements futures-io, so the session's loop polls it on *your* executor exactly like a
//! TCP or TLS stream, with no copy and no task in between. Bytes the peer sent wait in its
//! bounded buffer only until the loop's next read, which they wake: the drain rule holds.
//!
//! [shared runtime]: netconf_ssh::runtime

use std::net::SocketAddr;

use async_net::AsyncToSocketAddrs;
use futures_lite::FutureExt;
use netconf_proto::address::split_host_port;
use netconf_proto::client::ClientOptions;
use netconf_proto::Error;
use netconf_ssh::compat::TokioIo;
use netconf_ssh::runtime;

use crate::client::{Client, Driver};
use crate::link::AsyncStream;
use crate::serve::Server;

pub use netconf_ssh::russh::keys::{PrivateKey, PublicKey};
pub use netconf_ssh::{
    keys, known_hosts, Algorithms, AuthFuture, Authenticator, ChannelOptions,
    ClientOptions as SshClientOptions, Error as SshError, HostKey, HostKeyCheck, KeySource,
    ServerOptions as SshServerOptions, SshServer, SshStream, StaticAuth,
    TimeoutKind as SshTimeoutKind, NETCONF_SSH_PORT,
};

impl Client {
    /// Connects over SSH (RFC 6242; port 830 unless `addr` names one) with default NETCONF
    /// options and spawns the driver on smol's global executor.
    ///
    /// The SSH steps keep `ssh`'s deadlines (connect and key exchange, authentication,
    /// subsystem start: 30 s each unless set), each failing as `Error::Timeout` of its
    /// kind; any other SSH failure is `Error::Ssh` with the [`SshError`] as its source
    /// (downcast it to match), a failed TCP connect `Error::Io`.
    #[cfg(feature = "smol")]
    pub async fn connect_ssh(addr: &str, ssh: &SshClientOptions) -> Result<Client, Error> {
        Client::connect_ssh_with(addr, ssh, &ClientOptions::new()).await
    }

    /// Connects over SSH with `options` and spawns the driver on smol's global executor.
    #[cfg(feature = "smol")]
    pub async fn connect_ssh_with(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) = Client::connect_ssh_with_driver(addr, ssh, options).await?;
        smol::spawn(driver).detach();
        Ok(client)
    }

    /// Connects over SSH and returns the driver for the caller to spawn on any executor.
    pub async fn connect_ssh_with_driver(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let (host, port) = split_host_port(addr, NETCONF_SSH_PORT)?;
        let (host, ssh) = (host.to_owned(), ssh.clone());
        let stream =
            runtime::spawn(async move { netconf_ssh::connect(&host, port, &ssh).await }).await??;
        Client::from_stream_with_driver(stream, options).await
    }

    /// NETCONF over SSH on a stream the caller already has: RFC 8071 call home (the device
    /// dialled us; we are still the SSH client), a proxy tunnel. `host` (`host` or
    /// `host:port`, port 830 by default) names the server for the host-key check and for
    /// messages. Spawns the driver on smol's global executor.
    #[cfg(feature = "smol")]
    pub async fn connect_ssh_over(
        stream: impl AsyncStream + 'static,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) =
            Client::connect_ssh_over_with_driver(stream, host, ssh, options).await?;
        smol::spawn(driver).detach();
        Ok(client)
    }

    /// Like [`Client::connect_ssh_over`], returning the driver instead of spawning it.
    pub async fn connect_ssh_over_with_driver(
        stream: impl AsyncStream + 'static,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let (host, port) = split_host_port(host, NETCONF_SSH_PORT)?;
        let (host, ssh) = (host.to_owned(), ssh.clone());
        let stream = runtime::spawn(async move {
            netconf_ssh::connect_stream(TokioIo(stream), &host, port, &ssh).await
        })
        .await??;
        Client::from_stream_with_driver(stream, options).await
    }
}

impl Server {
    /// Listens for NETCONF over SSH (RFC 6242) on `addr` and serves every session whose
    /// `netconf` subsystem started, on a task of its own, until [`Server::shutdown`]: the
    /// same handler, registry and session cap as the TLS listeners, with the user name
    /// `ssh`'s [`Authenticator`] returned as [`SessionInfo::username`]. `ssh` may be shared
    /// by several listeners and [`Server::serve_ssh`] calls. Returns the bound address.
    ///
    /// The socket and the SSH handshakes live on `netconf-ssh`'s shared tokio runtime; the
    /// sessions run on this server's executor.
    ///
    /// [`SessionInfo::username`]: crate::server::SessionInfo::username
    pub async fn listen_ssh(
        &self,
        addr: impl AsyncToSocketAddrs,
        ssh: &SshServer,
    ) -> Result<SocketAddr, Error> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs().await?.collect();
        let ssh = ssh.clone();
        let listener = std::net::TcpListener::bind(&addrs[..])?;
        let local = listener.local_addr()?;
        let mut sessions = runtime::spawn(async move { ssh.listen_std(listener) }).await??;
        let stop = self.stop_signal();
        let server = self.clone();
        self.spawn_task(async move {
            loop {
                let session = async { sessions.accept().await }
                    .or(async {
                        let _ = stop.recv().await;
                        None
                    })
                    .await;
                let Some(session) = session else { return };
                let server2 = server.clone();
                server.spawn_task(async move {
                    let (username, peer, stream) = (session.username, session.peer, session.stream);
                    if let Err(e) = server2.serve_stream(stream, Some(username), peer).await {
                        tracing::debug!(?peer, error = %e, "SSH session not served");
                    }
                });
            }
        });
        Ok(local)
    }

    /// Serves one NETCONF-over-SSH session on a stream the caller already has (RFC 8071
    /// call home: we dialled the manager, yet run SSH as the server): the SSH handshake
    /// and authentication through `ssh` (on `netconf-ssh`'s shared runtime), then the
    /// session, until it ends.
    pub async fn serve_ssh(
        &self,
        stream: impl AsyncStream + 'static,
        ssh: &SshServer,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let ssh = ssh.clone();
        let session =
            runtime::spawn(async move { ssh.accept_stream(TokioIo(stream), peer).await }).await??;
        self.serve_stream(session.stream, Some(session.username), session.peer)
            .await
    }
}
