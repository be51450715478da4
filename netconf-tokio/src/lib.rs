//! An async NETCONF client and server on tokio, built on the sans-IO [`netconf_proto`]
//! core. The loops are `netconf-async`'s, written once for every runtime; this crate lends
//! them tokio (tasks, timers, TCP, SSH on your runtime) and takes tokio streams.
//!
//! The [`Client`] is a `Clone + Send + Sync` handle: any number of tasks may have RPCs in
//! flight on one session, each matched to its reply by message-id. The connection is driven
//! by a [`Driver`] future, spawned for you by `connect_tls`, or returned by the
//! `*_with_driver` constructors for executors of your choice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netconf_tokio::Error> {
//! use netconf_tokio::operations::{Datastore, GetConfig};
//! use netconf_tokio::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new().ca_file("ca.pem").client_cert_files("client.pem", "client.key");
//! let client = netconf_tokio::Client::connect_tls("192.0.2.1", &tls).await?;
//! let config = client.call(&GetConfig::new(Datastore::Running)).await?;
//! println!("{config}");
//! client.close().await
//! # }
//! ```
//!
//! Over SSH (feature `ssh`, on by default), the transport nearly every device speaks:
//!
//! ```no_run
//! # async fn demo() -> Result<(), netconf_tokio::Error> {
//! use netconf_tokio::operations::{Datastore, GetConfig};
//! use netconf_tokio::ssh::SshClientOptions;
//!
//! // Host keys are checked against this known_hosts file; `.password(..)`, `.key_file(..)`
//! // and `.agent(true)` choose how to log in.
//! let ssh = SshClientOptions::new("admin")
//!     .password("secret")
//!     .known_hosts("/home/ops/.ssh/known_hosts");
//! let client = netconf_tokio::Client::connect_ssh("192.0.2.1", &ssh).await?; // port 830
//! println!("{}", client.call(&GetConfig::new(Datastore::Running)).await?);
//! client.close().await
//! # }
//! ```
//!
//! A [`Server`] serves TLS listeners and streams the caller hands it with one handler:
//!
//! ```no_run
//! # async fn demo() -> Result<(), netconf_tokio::Error> {
//! use netconf_tokio::server::ServerOptions;
//! use netconf_tokio::tls::{PemSource, ServerTlsOptions};
//! use netconf_tokio::{Reply, Server};
//!
//! let tls = ServerTlsOptions::new(
//!     PemSource::file("server.pem"),
//!     PemSource::file("server.key"),
//!     PemSource::file("ca.pem"),
//! );
//! let server = Server::new(ServerOptions::new(), |request, _session| async move {
//!     match request.operation.name.as_str() {
//!         "get-config" => Reply::data("<top xmlns=\"urn:example\"/>").unwrap(),
//!         _ => Reply::Ok,
//!     }
//! });
//! let addr = server.listen_tls("127.0.0.1:6513", &tls).await?;
//! # let _ = addr;
//!
//! // The same handler over SSH (feature `ssh`), side by side with TLS; the SSH user name
//! // is the session's `username`.
//! use netconf_tokio::ssh::{HostKey, SshServer, SshServerOptions, StaticAuth};
//! let ssh = SshServer::new(
//!     SshServerOptions::default().host_key(HostKey::file("ssh_host_ed25519_key")),
//!     StaticAuth::new().user("admin", "secret"),
//! )?;
//! server.listen_ssh("127.0.0.1:830", &ssh).await?;
//! # Ok(())
//! # }
//! ```

mod runtime;

pub use runtime::{AsyncStream, Tokio};

/// A NETCONF client session on tokio; see [`netconf_async::Client`] for its methods.
pub type Client = netconf_async::Client<Tokio>;
/// Accepts devices that call home (RFC 8071); see [`netconf_async::CallHomeListener`].
pub type CallHomeListener = netconf_async::CallHomeListener<Tokio>;
/// A device that called home, with its session.
pub type CalledHome = netconf_async::call_home::CalledHome<Tokio>;

/// A NETCONF server on tokio; see [`netconf_async::Server`] for its methods.
pub type Server = netconf_async::Server<Tokio>;

pub use netconf_async::adapter::*;

/// NETCONF over SSH (RFC 6242), feature `ssh`: the `netconf-ssh` types the SSH
/// constructors (`Client::connect_ssh*`, `Server::listen_ssh`, `Server::serve_ssh`) take.
///
/// SSH runs natively on the caller's tokio runtime: russh's tasks are spawned on the
/// runtime that runs `connect_ssh` or `listen_ssh`, which must keep running as long as the
/// session does.
#[cfg(feature = "ssh")]
pub mod ssh {
    pub use netconf_async::ssh::*;
}
