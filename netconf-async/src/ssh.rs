//! NETCONF over SSH (RFC 6242), feature `ssh`: the SSH constructors of [`Client`] and
//! [`Server`], and the `netconf-ssh` types they take.
//!
//! russh is tokio-only and its objects must stay on the tokio runtime that created them,
//! so every SSH step (connect, key exchange, authentication, the accept loop) runs through
//! [`Runtime::ssh`]: on the caller's tokio runtime under `netconf-tokio`, on
//! `netconf-ssh`'s small shared runtime under any other. What comes back is an
//! [`SshStream`], which holds no russh object and implements futures-io, so the session's
//! loop polls it on the adapter's executor like a TCP or TLS stream, with no copy and no
//! task in between. Bytes the peer sent wait in its bounded buffer only until the loop's
//! next read, which they wake: the drain rule holds.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use futures_lite::FutureExt;
use netconf_proto::address::split_host_port;
use netconf_proto::client::ClientOptions;
use netconf_proto::Error;
use netconf_ssh::compat::TokioIo;

use crate::client::Client;
use crate::connection::Driver;
use crate::runtime::{Adopt, Runtime};
use crate::serve::Server;

pub use netconf_ssh::russh::keys::{PrivateKey, PublicKey};
pub use netconf_ssh::{
    keys, known_hosts, Algorithms, AuthFuture, Authenticator, ChannelOptions,
    ClientOptions as SshClientOptions, Error as SshError, HostKey, HostKeyCheck, HostKeyFilter,
    KeySource, Readiness, ServerOptions as SshServerOptions, SshServer, SshStream, StaticAuth,
    TimeoutKind as SshTimeoutKind, NETCONF_SSH_PORT,
};

/// A runtime failure around an SSH step (its task panicked or the runtime is gone).
fn lost(e: io::Error) -> Error {
    Error::Io(e)
}

impl<R: Runtime> Client<R> {
    /// Connects over SSH (RFC 6242; port 830 unless `addr` names one) with default NETCONF
    /// options and spawns the driver on the runtime.
    ///
    /// The SSH steps keep `ssh`'s deadlines (connect and key exchange, authentication,
    /// subsystem start: 30 s each unless set), each failing as `Error::Timeout` of its
    /// kind; any other SSH failure is `Error::Ssh` with the [`SshError`] as its source
    /// (downcast it to match), a failed TCP connect `Error::Io`.
    pub async fn connect_ssh(addr: &str, ssh: &SshClientOptions) -> Result<Self, Error> {
        Self::connect_ssh_with(addr, ssh, &ClientOptions::new()).await
    }

    /// Connects over SSH with `options` and spawns the driver on the runtime.
    pub async fn connect_ssh_with(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Self, Error> {
        let (client, driver) = Self::connect_ssh_with_driver(addr, ssh, options).await?;
        R::spawn(Box::pin(driver));
        Ok(client)
    }

    /// Connects over SSH and returns the driver for the caller to spawn (or await).
    pub async fn connect_ssh_with_driver(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error> {
        let (host, port) = split_host_port(addr, NETCONF_SSH_PORT)?;
        let (host, ssh) = (host.to_owned(), ssh.clone());
        let stream = R::ssh(async move { netconf_ssh::connect(&host, port, &ssh).await })
            .await
            .map_err(lost)??;
        Self::plaintext(Box::new(stream), options).await
    }

    /// NETCONF over SSH on a stream the caller already has: RFC 8071 call home (the device
    /// dialled us; we are still the SSH client), a proxy tunnel. `host` (`host` or
    /// `host:port`, port 830 by default) names the server for the host-key check
    /// (`[host]:port` in known_hosts unless the port is 22) and for messages. Spawns the
    /// driver on the runtime.
    pub async fn connect_ssh_over<S>(
        stream: S,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Self, Error>
    where
        R: Adopt<S>,
    {
        let (client, driver) =
            Self::connect_ssh_over_with_driver(stream, host, ssh, options).await?;
        R::spawn(Box::pin(driver));
        Ok(client)
    }

    /// Like [`Client::connect_ssh_over`], returning the driver instead of spawning it.
    pub async fn connect_ssh_over_with_driver<S>(
        stream: S,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error>
    where
        R: Adopt<S>,
    {
        let stream = R::adopt(stream);
        let (host, port) = split_host_port(host, NETCONF_SSH_PORT)?;
        let (host, ssh) = (host.to_owned(), ssh.clone());
        let stream = R::ssh(async move {
            netconf_ssh::connect_stream(TokioIo(stream), &host, port, &ssh).await
        })
        .await
        .map_err(lost)??;
        Self::plaintext(Box::new(stream), options).await
    }
}

impl<R: Runtime> Server<R> {
    /// Listens for NETCONF over SSH (RFC 6242) on `addr` and serves every session whose
    /// `netconf` subsystem started, on a task of its own, until [`Server::shutdown`]: the
    /// same handler, registry and session cap as the TLS listeners, with the user name
    /// `ssh`'s [`Authenticator`] returned as the session's `username`. `ssh` may be shared
    /// by several listeners and [`Server::serve_ssh`] calls (its connection cap covers them
    /// all). Returns the bound address.
    pub async fn listen_ssh(
        &self,
        addr: impl ToSocketAddrs,
        ssh: &SshServer,
    ) -> Result<SocketAddr, Error> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let listener = std::net::TcpListener::bind(&addrs[..])?;
        let local = listener.local_addr()?;
        let ssh = ssh.clone();
        let mut sessions = R::ssh(async move { ssh.listen_std(listener) })
            .await
            .map_err(lost)??;
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
                let served = server.clone();
                server.spawn_task(async move {
                    let (username, peer, stream) = (session.username, session.peer, session.stream);
                    if let Err(e) = served
                        .serve_plaintext(Box::new(stream), Some(username), peer)
                        .await
                    {
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
    pub async fn serve_ssh<S>(
        &self,
        stream: S,
        ssh: &SshServer,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error>
    where
        R: Adopt<S>,
    {
        let (ssh, stream) = (ssh.clone(), R::adopt(stream));
        let session = R::ssh(async move { ssh.accept_stream(TokioIo(stream), peer).await })
            .await
            .map_err(lost)??;
        self.serve_plaintext(
            Box::new(session.stream),
            Some(session.username),
            session.peer,
        )
        .await
    }
}
