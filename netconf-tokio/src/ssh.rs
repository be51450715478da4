//! NETCONF over SSH (RFC 6242), feature `ssh`: the `netconf-ssh` types these APIs take,
//! re-exported so that no direct dependency is needed, and the SSH constructors of
//! [`Client`] and [`Server`].
//!
//! SSH runs natively on the caller's tokio runtime: russh's tasks and ours are spawned on
//! the runtime that runs `connect_ssh` or `listen_ssh`, which must keep running as long as
//! the session does.

use std::net::SocketAddr;

use netconf_proto::address::split_host_port;
use netconf_proto::client::ClientOptions;
use netconf_proto::Error;
use tokio::net::{TcpListener, ToSocketAddrs};

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
    /// options and spawns the driver on the current tokio runtime.
    ///
    /// The SSH steps keep `ssh`'s deadlines (connect and key exchange, authentication,
    /// subsystem start: 30 s each unless set), each failing as `Error::Timeout` of its
    /// kind; any other SSH failure is `Error::Ssh` with the [`SshError`] as its source
    /// (downcast it to match), a failed TCP connect `Error::Io`.
    pub async fn connect_ssh(addr: &str, ssh: &SshClientOptions) -> Result<Client, Error> {
        Client::connect_ssh_with(addr, ssh, &ClientOptions::new()).await
    }

    /// Connects over SSH with `options` and spawns the driver.
    pub async fn connect_ssh_with(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) = Client::connect_ssh_with_driver(addr, ssh, options).await?;
        tokio::spawn(driver);
        Ok(client)
    }

    /// Connects over SSH and returns the driver for the caller to spawn (or await). The SSH
    /// connection itself lives on the runtime that runs this call.
    pub async fn connect_ssh_with_driver(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let (host, port) = split_host_port(addr, NETCONF_SSH_PORT)?;
        let stream = netconf_ssh::connect(host, port, ssh).await?;
        Client::from_stream_with_driver(stream, options).await
    }

    /// NETCONF over SSH on a stream the caller already has: RFC 8071 call home (the device
    /// dialled us; we are still the SSH client), a proxy tunnel. `host` (`host` or
    /// `host:port`, port 830 by default) names the server for the host-key check
    /// (`[host]:port` in known_hosts unless the port is 22) and for messages. Spawns the
    /// driver.
    pub async fn connect_ssh_over(
        stream: impl AsyncStream + 'static,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) =
            Client::connect_ssh_over_with_driver(stream, host, ssh, options).await?;
        tokio::spawn(driver);
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
        let stream = netconf_ssh::connect_stream(stream, host, port, ssh).await?;
        Client::from_stream_with_driver(stream, options).await
    }
}

impl Server {
    /// Listens for NETCONF over SSH (RFC 6242) on `addr` and serves every session whose
    /// `netconf` subsystem started, on a task of its own, until [`Server::shutdown`]: the
    /// same handler, registry and session cap as the TLS listeners, with the user name
    /// `ssh`'s [`Authenticator`] returned as [`SessionInfo::username`]. `ssh` may be shared
    /// by several listeners and [`Server::serve_ssh`] calls (its connection cap covers them
    /// all). Returns the bound address.
    ///
    /// [`SessionInfo::username`]: crate::server::SessionInfo::username
    pub async fn listen_ssh(
        &self,
        addr: impl ToSocketAddrs,
        ssh: &SshServer,
    ) -> Result<SocketAddr, Error> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let mut sessions = ssh.listen(listener);
        let mut stop = self.stop_signal();
        let server = self.clone();
        self.spawn_task(async move {
            loop {
                if *stop.borrow_and_update() {
                    return;
                }
                let session = tokio::select! {
                    s = sessions.accept() => s,
                    _ = stop.changed() => return,
                };
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
    /// and authentication through `ssh`, then the session, until it ends.
    pub async fn serve_ssh(
        &self,
        stream: impl AsyncStream + 'static,
        ssh: &SshServer,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let session = ssh.accept_stream(stream, peer).await?;
        self.serve_stream(session.stream, Some(session.username), session.peer)
            .await
    }
}
