//! A blocking NETCONF client and server, built on the sans-IO [`netconf_proto`] core: the
//! loops and `std`'s I/O, nothing else.
//!
//! Each session has a reading thread and a writing thread, so a slow reader on the other
//! side never stops us reading; a caller writes its own small request, and (over TCP and
//! TLS) reads its own reply when nobody else is reading, so a small RPC costs about what a
//! plain socket's round trip does. Callers keep the session's deadlines while they wait.
//! The [`Client`] is `Clone + Send + Sync`: several threads may have RPCs in flight on one
//! session. A [`Server`] session reads and runs its handlers on one thread while they are
//! quick (no hand-off per small RPC), and writes on another; a handler that blocks keeps
//! its thread, and within a few milliseconds the server's watchdog has the session read on
//! another, so kill-session, shutdown and the requests behind the handler never wait for it.
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
//! Replies too large to hold (the operational state of a large router runs to gigabytes)
//! can be streamed: [`Client::call_streamed`] returns once the reply has begun, and its
//! [`DataReader`] hands out the content of `<data>` as it arrives, through
//! [`std::io::Read`] or as [`Bytes`](bytes::Bytes) pieces. While the reader has a window's
//! worth unread (4 MiB by default, [`ClientOptions::stream_window`]) the session stops
//! reading the socket, so memory stays bounded whatever the reply's size. On the server
//! side a handler may answer with an [`Answer`]: an iterator of pieces or a reader, pulled
//! as the transport takes them.
//!
//! ```no_run
//! use std::io::BufWriter;
//! use netconf_blocking::operations::{Datastore, GetConfig};
//! use netconf_blocking::server::ServerOptions;
//! use netconf_blocking::tls::ClientTlsOptions;
//! use netconf_blocking::{Answer, Client, Reply, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = ClientTlsOptions::new()
//!     .ca_file("ca.pem")
//!     .client_cert_files("client.pem", "client.key");
//! let client = Client::connect_tls("192.0.2.1:6513", &tls)?;
//!
//! // To a file, in bounded memory; an <rpc-error> is `Err(Error::Rpc(..))` here.
//! let mut reply = client.call_streamed(&GetConfig::new(Datastore::Running))?;
//! let mut file = BufWriter::new(std::fs::File::create("running.xml")?);
//! // A failure mid-reply (the session ended, the server stalled) is an `io::Error`
//! // whose inner error is the `netconf_blocking::Error`.
//! let bytes = std::io::copy(&mut reply, &mut file)?;
//! println!("{bytes} bytes of configuration");
//!
//! // Or piece by piece; dropping the reader early discards the rest of the reply and
//! // keeps the session.
//! let mut reply = client.call_streamed(&GetConfig::new(Datastore::Running))?;
//! for piece in reply.pieces().take(3) {
//!     println!("{} bytes", piece?.len());
//! }
//! drop(reply);
//! client.close()?;
//!
//! // A server generating its answer as it is sent: memory stays at a few pieces.
//! let server = Server::new(ServerOptions::new(), |request, _session| {
//!     if request.operation.name != "get-config" {
//!         return Answer::from(Reply::Ok);
//!     }
//!     let rows = (0..50_000_000u64)
//!         .map(|i| Ok(format!("<row xmlns=\"urn:example\"><n>{i}</n></row>").into()));
//!     Answer::stream(rows)
//! });
//! # let _ = server;
//! # Ok(())
//! # }
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
pub mod call_home;
mod client;
mod pending;
mod reading;
mod serve;
mod signal;
#[cfg(feature = "ssh")]
pub mod ssh;
mod stream;
mod transport;
mod watchdog;
mod workers;
mod writer;

pub use answer::Answer;
pub use call_home::{CallHomeListener, CalledHome};
pub use client::{Client, Ended, Notifications, DEFAULT_TLS_PORT};
pub use serve::Server;
pub use stream::{DataReader, Pieces};
pub use transport::Transport;

pub use netconf_proto::adapter::*;
