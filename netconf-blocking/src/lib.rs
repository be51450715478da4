//! A blocking NETCONF client and server, built on the sans-IO [`netconf_proto`] core: the
//! loops and `std`'s I/O, nothing else.
//!
//! Each session uses its stream from a reading thread and a writing thread, so a slow
//! reader on the other side never stops us reading; callers wait for their own results and
//! keep the session's deadlines while they wait. The [`Client`] is `Clone + Send + Sync`:
//! several threads may have RPCs in flight on one session.
//!
//! ```no_run
//! use netconf_blocking::Client;
//! use netconf_blocking::operations::{Datastore, GetConfig};
//! use netconf_blocking::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new()
//!     .ca_file("ca.pem")
//!     .client_cert_files("client.pem", "client.key");
//! let client = Client::connect_tls("192.0.2.1:6513", &tls)?;
//! println!("session-id {}", client.session_id());
//! let config = client.call(&GetConfig::new(Datastore::Running))?;
//! println!("{config}");
//! client.close()?;
//! # Ok::<(), netconf_blocking::Error>(())
//! ```
//!
//! Over SSH (feature `ssh`, on by default), the transport nearly every device speaks. The
//! SSH connection lives on a small tokio runtime that `netconf-ssh` keeps on two threads
//! of its own (russh needs tokio); the session's threads read and write it directly (see
//! [`ssh`]):
//!
//! ```no_run
//! use netconf_blocking::operations::{Datastore, GetConfig};
//! use netconf_blocking::ssh::SshClientOptions;
//! use netconf_blocking::Client;
//!
//! // Host keys are checked against this known_hosts file; `.password(..)`,
//! // `.key_file(..)` and `.agent(true)` choose how to log in.
//! let ssh = SshClientOptions::new("admin")
//!     .password("secret")
//!     .known_hosts("/home/ops/.ssh/known_hosts");
//! let client = Client::connect_ssh("192.0.2.1", &ssh)?; // port 830
//! println!("{}", client.call(&GetConfig::new(Datastore::Running))?);
//! client.close()?;
//! # Ok::<(), netconf_blocking::Error>(())
//! ```
//!
//! A server with one handler for TLS and SSH listeners side by side; the SSH user name is
//! the session's `username`:
//!
//! ```no_run
//! use netconf_blocking::server::ServerOptions;
//! use netconf_blocking::ssh::{HostKey, SshServer, SshServerOptions, StaticAuth};
//! use netconf_blocking::{Reply, Server};
//!
//! let server = Server::new(ServerOptions::new(), |request, session| {
//!     println!("{:?} asks for {}", session.username, request.operation.name);
//!     Reply::Ok
//! });
//! let ssh = SshServer::new(
//!     SshServerOptions::default().host_key(HostKey::file("/etc/netconf/ssh_host_ed25519_key")),
//!     StaticAuth::new().user("admin", "secret"),
//! )?;
//! server.listen_ssh("0.0.0.0:830", &ssh)?;
//! # Ok::<(), netconf_blocking::Error>(())
//! ```

mod answer;
mod client;
mod serve;
#[cfg(feature = "ssh")]
pub mod ssh;
mod stream;
mod transport;
mod workers;
mod writer;

pub use answer::Answer;
pub use client::{Client, Ended, Notifications, DEFAULT_TLS_PORT};
pub use serve::Server;
pub use stream::DataReader;
pub use transport::Transport;

pub use netconf_proto::capabilities::{BaseVersion, DefaultsMode, ModuleCapability};
pub use netconf_proto::client::{ClientOptions, Lagged, NotificationItem, Progress};
pub use netconf_proto::message::{
    ErrorMessage, ErrorSeverity, ErrorTag, ErrorType, NamespaceBinding,
};
pub use netconf_proto::{
    operations, tls, Capabilities, Capability, CloseReason, Config, Error, Framing, MessageId,
    Notification, ProtocolError, Reply, ReplyContent, Request, RequestId, RpcError, RpcReply,
    SessionEnd, TimeoutKind, TlsError, UsageError, XmlPayload,
};

/// Server options and the session information handlers receive.
pub mod server {
    pub use netconf_proto::server::{Refusal, ServerOptions, SessionInfo};
}
