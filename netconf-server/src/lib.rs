//! The datastore logic every NETCONF server needs, whatever its data model, as a sans-IO
//! library: running, candidate and startup behind a [`Backend`] trait (in memory by
//! default), per-session locks, confirmed commit with persist and rollback, subtree
//! filtering, edit-config with every operation and error-option, with-defaults, and the
//! RFC 6470 notifications those changes cause.
//!
//! Nothing here reads a clock, opens a socket, spawns a thread or sleeps: time comes in as
//! `now`, the confirmed-commit timeout is a deadline the caller drives, and notifications
//! are values the caller sends. See [`Server`] for the calls an adapter makes.
//!
//! ```
//! use std::time::Instant;
//! use netconf_server::{tree, MemoryBackend, Server, SessionInfo};
//! use netconf_proto::Reply;
//!
//! let seed = tree::parse(r#"<system xmlns="urn:example"><hostname>r1</hostname></system>"#, &[], 16)?;
//! let mut server = Server::new(MemoryBackend::new(seed));
//! let alice = SessionInfo::new(1).with_username("alice".to_owned());
//! let nc = [(String::new(), "urn:ietf:params:xml:ns:netconf:base:1.0".to_owned())];
//! let now = Instant::now();
//!
//! let reply = server.handle_operation(&alice, "<lock><target><running/></target></lock>", &nc, now);
//! assert_eq!(reply, Reply::Ok);
//! let edit = r#"<edit-config><target><running/></target><config>
//!     <system xmlns="urn:example"><hostname>r2</hostname></system></config></edit-config>"#;
//! assert_eq!(server.handle_operation(&alice, edit, &nc, now), Reply::Ok);
//! // The change of running, as RFC 6470 <netconf-config-change>, to send to subscribers.
//! let note = server.poll_notification().expect("running changed");
//! assert!(note.content().contains("<operation>replace</operation>"));
//! // Ending the session releases its lock.
//! server.session_ended(1, now);
//! # Ok::<(), netconf_server::tree::ParseError>(())
//! ```
#![forbid(unsafe_code)]

mod backend;
pub mod datastore;
pub mod defaults;
pub mod diff;
pub mod edit;
mod errors;
pub mod filter;
mod locks;
pub mod notification;
mod options;
mod server;
mod session;
pub mod tree;

pub use backend::{Backend, MemoryBackend, Schema};
pub use datastore::Datastore;
pub use notification::{event_time, Notification};
pub use options::{Options, MAX_DEPTH_CEILING};
pub use server::Server;
pub use session::SessionInfo;
pub use tree::Element;
