//! An async NETCONF client and server for any futures-io runtime: smol, async-io, and
//! async-std (deprecated upstream in favour of smol). Built on the sans-IO
//! [`netconf_proto`] core, with the same API and guarantees as `netconf-tokio`: a
//! `Clone + Send + Sync` [`Client`] with pipelined RPCs matched by message-id, cancel-safe
//! requests, per-RPC timeouts, a bounded notification stream; a [`Server`] whose handlers
//! run beside each session's loop.
//!
//! The loops are `netconf-async`'s, written once for every runtime; this crate lends them
//! smol. The client's connection runs in a [`Driver`] future: `connect_tls` spawns it on
//! smol's global executor; the `*_with_driver` constructors hand it to you for any
//! executor. The server takes a spawner (`Server::with_spawner`) for the same reason.
//! Timers come from `async-io`.
//!
//! Over SSH, russh (tokio-only) runs on a small tokio runtime that `netconf-ssh` keeps on
//! two threads of its own; the session's loop polls the resulting futures-io stream on
//! your executor, with no copy and no task in between.
//!
//! ```no_run
//! # fn main() -> Result<(), netconf_smol::Error> { smol::block_on(async {
//! use netconf_smol::operations::{Datastore, GetConfig};
//! use netconf_smol::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new().ca_file("ca.pem").client_cert_files("client.pem", "client.key");
//! let client = netconf_smol::Client::connect_tls("192.0.2.1", &tls).await?;
//! println!("{}", client.call(&GetConfig::new(Datastore::Running)).await?);
//! client.close().await
//! # }) }
//! ```
//!
//! Over SSH (feature `ssh`, on by default), the transport nearly every device speaks. The
//! SSH connection lives on a small tokio runtime that `netconf-ssh` keeps on two threads
//! of its own (russh needs tokio); the session runs on your executor (see [`ssh`]):
//!
//! ```no_run
//! # fn main() -> Result<(), netconf_smol::Error> { smol::block_on(async {
//! use netconf_smol::operations::{Datastore, GetConfig};
//! use netconf_smol::ssh::SshClientOptions;
//!
//! let ssh = SshClientOptions::new("admin")
//!     .password("secret")
//!     .known_hosts("/home/ops/.ssh/known_hosts");
//! let client = netconf_smol::Client::connect_ssh("192.0.2.1", &ssh).await?; // port 830
//! println!("{}", client.call(&GetConfig::new(Datastore::Running)).await?);
//! client.close().await
//! # }) }
//! ```
//!
//! A server with one handler for TLS and SSH listeners side by side:
//!
//! ```no_run
//! # fn main() -> Result<(), netconf_smol::Error> { smol::block_on(async {
//! use netconf_smol::server::ServerOptions;
//! use netconf_smol::ssh::{SshServer, SshServerOptions, StaticAuth};
//! use netconf_smol::{Reply, Server};
//!
//! let server = Server::new(ServerOptions::new(), |request, session| async move {
//!     println!("{:?} asks for {}", session.username, request.operation.name);
//!     Reply::Ok
//! });
//! let ssh = SshServer::new(SshServerOptions::default(), StaticAuth::new().user("admin", "secret"))?;
//! println!("host key {}", ssh.host_key_fingerprint());
//! server.listen_ssh("127.0.0.1:830", &ssh).await?;
//! # Ok(()) }) }
//! ```

mod runtime;

pub use runtime::Smol;

/// A NETCONF client session on smol; see [`netconf_async::Client`] for its methods.
pub type Client = netconf_async::Client<Smol>;
/// Accepts devices that call home (RFC 8071); see [`netconf_async::CallHomeListener`].
pub type CallHomeListener = netconf_async::CallHomeListener<Smol>;
/// A device that called home, with its session.
pub type CalledHome = netconf_async::call_home::CalledHome<Smol>;

/// A NETCONF server on smol; see [`netconf_async::Server`] for its methods.
pub type Server = netconf_async::Server<Smol>;

pub use netconf_async::adapter::*;
pub use netconf_async::{AsyncStream, Spawner};

/// NETCONF over SSH (RFC 6242), feature `ssh`: the `netconf-ssh` types the SSH
/// constructors (`Client::connect_ssh*`, `Server::listen_ssh`, `Server::serve_ssh`) take.
///
/// russh is tokio-only, and its objects must stay on the tokio runtime that created them.
/// So every SSH connection lives on `netconf-ssh`'s shared runtime: a small tokio runtime
/// on two threads of its own, started on first use. The connect, the accept loop and the
/// handshakes run there as tasks, which we await from any executor. What comes back is an
/// `SshStream`: it holds no russh object whose drop needs a runtime and implements
/// futures-io, so the session's loop polls it on *your* executor exactly like a TCP or TLS
/// stream. Bytes the peer sent wait in its bounded buffer only until the loop's next read,
/// which they wake: the drain rule holds.
#[cfg(feature = "ssh")]
pub mod ssh {
    pub use netconf_async::ssh::*;
}
