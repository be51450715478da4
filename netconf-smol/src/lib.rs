//! An async NETCONF client over TLS (RFC 6241, RFC 7589) for any futures-io runtime:
//! smol, async-io, and async-std (deprecated upstream in favour of smol). Built on the
//! sans-IO [`netconf_proto`] core, it has the same API and guarantees as `netconf-tokio`:
//! a `Clone + Send + Sync` [`Client`] with pipelined RPCs matched by message-id, cancel-safe
//! requests, per-RPC timeouts, and a bounded notification stream.
//!
//! The connection runs in a [`Driver`] future. `connect_tls` spawns it on smol's global
//! executor (feature `smol`, on by default); `connect_tls_with_driver` hands it to you for any
//! executor. Timers come from `async-io`.
//!
//! ```no_run
//! # fn main() -> Result<(), netconf_smol::Error> { smol::block_on(async {
//! use netconf_smol::operations::{Datastore, GetConfig};
//! use netconf_smol::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new().ca_file("ca.pem").client_cert_files("client.pem", "client.key");
//! let client = netconf_smol::Client::connect_tls("192.0.2.1", &tls).await?;
//! println!("{}", client.get_config(&GetConfig::new(Datastore::Running)).await?);
//! client.close().await
//! # }) }
//! ```
//!
//! There is no smol `Server` yet: the blocking and tokio servers serve every client, and a
//! third copy of the server loop is not worth its upkeep until someone needs it.

mod client;
mod connection;

pub use client::{Client, ClientBuilder, Driver, Lagged, Notifications, DEFAULT_TLS_PORT};
pub use connection::AsyncStream;

pub use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
pub use netconf_proto::{
    check_reply, operations, tls, Capabilities, Capability, Config, Error, MessageId, Notification,
    Reply, ReplyContent, Request, RpcError, RpcReply, XmlPayload,
};
pub use netconf_proto::{CloseReason, Framing};
