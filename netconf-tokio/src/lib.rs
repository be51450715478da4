//! An async NETCONF client and server over TLS (RFC 6241, RFC 7589) on tokio, built on the
//! sans-IO [`netconf_proto`] core.
//!
//! The [`Client`] is a `Clone + Send + Sync` handle: any number of tasks may have RPCs in
//! flight on one session, each matched to its reply by message-id. The connection is driven
//! by a [`Driver`] future, spawned for you by `connect_tls`, or returned by
//! `connect_tls_with_driver` for executors of your choice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netconf_tokio::Error> {
//! use netconf_tokio::operations::{Datastore, GetConfig};
//! use netconf_tokio::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new().ca_file("ca.pem").client_cert_files("client.pem", "client.key");
//! let client = netconf_tokio::Client::connect_tls("192.0.2.1", &tls).await?;
//! let config = client.get_config(&GetConfig::new(Datastore::Running)).await?;
//! println!("{config}");
//! client.close().await
//! # }
//! ```

mod client;
mod connection;
mod server;

pub use client::{Client, ClientBuilder, Driver, Lagged, Notifications, DEFAULT_TLS_PORT};
pub use connection::AsyncStream;
pub use server::{Server, ServerBuilder, ServerHandle, SessionInfo};

pub use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
pub use netconf_proto::{
    check_reply, operations, tls, Capabilities, Capability, Config, Error, MessageId, Notification,
    Reply, ReplyContent, Request, RpcError, RpcReply, XmlPayload,
};
pub use netconf_proto::{CloseReason, Framing};
