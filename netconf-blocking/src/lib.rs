//! A blocking NETCONF client and server over TLS (RFC 6241, RFC 7589), built on the
//! sans-IO [`netconf_proto`] core.
//!
//! ```no_run
//! use netconf_blocking::Client;
//! use netconf_blocking::operations::{Datastore, GetConfig};
//! use netconf_blocking::tls::ClientTlsOptions;
//!
//! let tls = ClientTlsOptions::new()
//!     .ca_file("ca.pem")
//!     .client_cert_files("client.pem", "client.key");
//! let mut client = Client::connect_tls("192.0.2.1:6513", &tls)?;
//! println!("session-id {}", client.session_id());
//! let config = client.get_config(&GetConfig::new(Datastore::Running))?;
//! println!("{config}");
//! client.close()?;
//! # Ok::<(), netconf_blocking::Error>(())
//! ```

mod client;
mod connection;
mod server;
mod transport;

pub use client::{Client, ClientBuilder, Notifications, DEFAULT_TLS_PORT};
pub use server::{Server, ServerBuilder, ServerHandle, SessionInfo};
pub use transport::{NoTimeouts, Transport};

pub use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
pub use netconf_proto::{
    check_reply, operations, tls, Capabilities, Capability, Config, Error, MessageId, Notification,
    Reply, ReplyContent, Request, RpcError, RpcReply, XmlPayload,
};
pub use netconf_proto::{CloseReason, Framing};
