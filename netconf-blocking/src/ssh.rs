//! NETCONF over SSH (RFC 6242), feature `ssh`: the `netconf-ssh` types these APIs take,
//! re-exported so that no direct dependency is needed, and the SSH constructors of
//! [`Client`] and [`Server`].
//!
//! # How SSH runs under threads
//! russh is tokio-only, and its objects must stay on the tokio runtime that created them.
//! So every SSH connection lives on `netconf-ssh`'s [shared runtime]: a small tokio runtime
//! on two threads of its own, started on first use, running russh and the channel's drain
//! task. Our threads see the channel as a [`BlockingStream`]: `Read + Write` with clones,
//! timeouts and a waking `shutdown`, whose calls poll the channel *on the calling thread*
//! (a read parks the thread until the drain task wakes it). So the session's reading and
//! writing threads work exactly as over TCP, with no pump task, socket pair or extra copy
//! in between: bytes the peer sent wait only in the channel's bounded buffer, and the
//! blocked read wakes the moment they arrive (the drain rule).
//!
//! [shared runtime]: netconf_ssh::runtime

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::time::Duration;

use netconf_proto::address::split_host_port;
use netconf_proto::client::ClientOptions;
use netconf_proto::Error;
use netconf_ssh::blocking::{self as ssh_blocking, BlockingListener};

use crate::client::Client;
use crate::serve::Server;
use crate::transport::Transport;

pub use netconf_ssh::blocking::{BlockingSession, BlockingStream};
pub use netconf_ssh::russh::keys::{PrivateKey, PublicKey};
pub use netconf_ssh::{
    keys, known_hosts, Algorithms, AuthFuture, Authenticator, ChannelOptions,
    ClientOptions as SshClientOptions, Error as SshError, HostKey, HostKeyCheck, KeySource,
    ServerOptions as SshServerOptions, SshServer, StaticAuth, TimeoutKind as SshTimeoutKind,
    NETCONF_SSH_PORT,
};

impl Transport for BlockingStream {
    fn try_clone_transport(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(self.clone()))
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        BlockingStream::set_write_timeout(self, timeout);
        Ok(())
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        BlockingStream::set_read_timeout(self, timeout);
        Ok(())
    }
    fn shutdown(&self) {
        BlockingStream::shutdown(self);
    }
    fn wait_readable(&self) -> io::Result<bool> {
        BlockingStream::wait_readable(self)
    }
    fn can_wait_readable(&self) -> bool {
        true
    }
}

impl Client {
    /// Connects over SSH (RFC 6242; port 830 unless `addr` names one) with default NETCONF
    /// options.
    ///
    /// The SSH steps keep `ssh`'s deadlines (connect and key exchange, authentication,
    /// subsystem start: 30 s each unless set), each failing as `Error::Timeout` of its
    /// kind; any other SSH failure is `Error::Ssh` with the [`SshError`] as its source
    /// (downcast it to match), a failed TCP connect `Error::Io`.
    pub fn connect_ssh(addr: &str, ssh: &SshClientOptions) -> Result<Client, Error> {
        Client::connect_ssh_with(addr, ssh, &ClientOptions::new())
    }

    /// Connects over SSH with `options`.
    pub fn connect_ssh_with(
        addr: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (host, port) = split_host_port(addr, NETCONF_SSH_PORT)?;
        let stream = ssh_blocking::connect(host, port, ssh)?;
        Client::from_stream_with(stream, options)
    }

    /// NETCONF over SSH on a TCP connection the caller already has: RFC 8071 call home
    /// (the device dialled us; we are still the SSH client). `host` (`host` or
    /// `host:port`, port 830 by default) names the server for the host-key check
    /// (`[host]:port` in known_hosts unless the port is 22) and for messages.
    pub fn connect_ssh_over(
        stream: TcpStream,
        host: &str,
        ssh: &SshClientOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (host, port) = split_host_port(host, NETCONF_SSH_PORT)?;
        let stream = ssh_blocking::connect_tcp(stream, host, port, ssh)?;
        Client::from_stream_with(stream, options)
    }
}

impl Server {
    /// Listens for NETCONF over SSH (RFC 6242) on `addr` and serves every session whose
    /// `netconf` subsystem started (on threads of its own) until [`Server::shutdown`]: the
    /// same handler, registry and session cap as the TLS listeners, with the user name
    /// `ssh`'s [`Authenticator`] returned as [`SessionInfo::username`]. `ssh` may be shared
    /// by several listeners and [`Server::serve_ssh`] calls (its connection cap covers them
    /// all). Returns the bound address.
    ///
    /// [`SessionInfo::username`]: crate::server::SessionInfo::username
    pub fn listen_ssh(
        &self,
        addr: impl ToSocketAddrs,
        ssh: &SshServer,
    ) -> Result<SocketAddr, Error> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let mut sessions = BlockingListener::new(ssh, listener)?;
        self.add_ssh_stop(sessions.stopper());
        let server = self.clone();
        self.spawn_thread("netconf-ssh-accept", move || {
            while let Some(session) = sessions.accept() {
                if server.stopping().load(Ordering::SeqCst) {
                    session.stream.shutdown();
                    return;
                }
                // Admitted here, and served by its loop's thread: no thread waits for it.
                let peer = session.peer;
                let served = server.serve_plaintext_session(
                    session.stream,
                    Some(session.username),
                    peer,
                    true,
                );
                if let Err(e) = served {
                    tracing::debug!(?peer, error = %e, "SSH session not served");
                }
            }
        });
        Ok(local)
    }

    /// Serves one NETCONF-over-SSH session on a TCP connection the caller already has (RFC
    /// 8071 call home: we dialled the manager, yet run SSH as the server): the SSH
    /// handshake and authentication through `ssh`, then the session, on this thread, until
    /// it ends.
    pub fn serve_ssh(
        &self,
        stream: TcpStream,
        ssh: &SshServer,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let session = ssh_blocking::accept_tcp(ssh, stream, peer)?;
        self.serve_stream(session.stream, Some(session.username), session.peer)
    }
}
