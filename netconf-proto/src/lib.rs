//! A sans-IO NETCONF core: RFC 6241 sessions, RFC 6242 framing, and the typed operations,
//! for both the client and the server role.
//!
//! Nothing in this crate opens a socket, reads a clock, spawns a thread or sleeps. A
//! [`Session`] takes bytes and the current time in, and hands out bytes to send, events and
//! the next deadline. That makes one state machine serve every runtime (the
//! `netconf-blocking`, `netconf-tokio` and `netconf-smol` adapters are thin loops around it)
//! and makes every behaviour testable byte by byte with a virtual clock.
//!
//! # The run loop
//!
//! Drain [`Session::poll_output`] after **every** input and command, until it returns
//! [`Output::Wait`]. `Wait` is a promise: the session then holds no complete message, no
//! undelivered event and no unsent byte, so a loop that only blocks after `Wait` can never
//! strand a message.
//!
//! ```
//! use std::time::Instant;
//! use netconf_proto::operations::{Datastore, GetConfig};
//! use netconf_proto::{Config, Event, Output, Session};
//!
//! let now = Instant::now();
//! let mut client = Session::client(Config::client(), now);
//! let mut server = Session::server(Config::server(), 7, now);
//!
//! // One step of a loop: move every byte each side wants to send to the other side,
//! // and collect the events. A real adapter writes to a socket instead.
//! fn drain(from: &mut Session, to: &mut Session, now: Instant) -> Vec<Event> {
//!     let mut events = Vec::new();
//!     loop {
//!         match from.poll_output() {
//!             Output::Transmit(bytes) => to.handle_input(&bytes, now).expect("valid peer"),
//!             Output::Event(ev) => events.push(ev),
//!             Output::Wait(_deadline) => return events,
//!             _ => {} // outputs added in later versions
//!         }
//!     }
//! }
//!
//! drain(&mut client, &mut server, now); // client hello -> server
//! drain(&mut server, &mut client, now); // server hello -> client
//! let events = drain(&mut client, &mut server, now);
//! assert!(matches!(events[0], Event::Established { session_id: 7, .. }));
//!
//! let id = client.send_rpc(&GetConfig::new(Datastore::Running), now)?;
//! drain(&mut client, &mut server, now); // the rpc -> server
//! for ev in drain(&mut server, &mut client, now) {
//!     if let Event::Rpc { id, request } = ev {
//!         assert!(request.operation.is_base("get-config"));
//!         server.send_reply(id, netconf_proto::Reply::data("<top xmlns=\"urn:x\"/>")?)?;
//!     }
//! }
//! drain(&mut server, &mut client, now); // the reply -> client
//! match drain(&mut client, &mut server, now).pop() {
//!     Some(Event::Reply { id: got, reply }) => {
//!         assert_eq!(got, id);
//!         assert_eq!(reply.data().unwrap().as_str(), "<top xmlns=\"urn:x\"/>");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), netconf_proto::UsageError>(())
//! ```
//!
//! Time is always passed in: [`Session::handle_timeout`] is called when the deadline from
//! `Wait` passes, and turns it into [`Event::RpcTimedOut`] or a hello timeout.
//!
//! # Errors
//! A [`ProtocolError`] is the peer's fault: it is fatal and sticky, and the session ends with
//! [`Event::Closed`] after delivering everything received before the fault. A
//! [`UsageError`] is the caller's fault and changes nothing.
//!
//! # Payloads
//! The envelope is parsed with quick-xml; `<data>`, an rpc's operation and notification
//! content are handed out as raw XML ([`XmlPayload`], a zero-copy `bytes::Bytes` slice) for
//! the XML or YANG library of the caller's choice.
#![forbid(unsafe_code)]
pub mod address;
pub mod call_home;
pub mod capabilities;
pub mod client;
pub mod client_error;
pub mod error;
pub mod framing;
pub mod id_map;
pub mod machine;
pub mod message;
pub mod operations;
pub mod quirks;
pub mod xml;

pub use error::{ProtocolError, TlsError, UsageError};
pub mod config;
mod receive_buffer;
pub mod server;
pub mod session;
mod stream;
#[cfg(feature = "rustls")]
pub mod tls;

pub use capabilities::{Capabilities, Capability};
pub use client_error::{check_reply, Error, SessionEnd, TimeoutKind};
pub use config::Config;
pub use framing::Framing;
pub use machine::Machine;
pub use message::{Notification, Reply, ReplyContent, Request, RpcError, RpcReply, XmlPayload};
pub use quirks::{Quirk, QuirkCounts};
#[cfg(feature = "rustls")]
pub use rustls;
pub use session::{CloseReason, Event, MessageId, Output, RequestId, Role, Session, State};
#[cfg(feature = "rustls")]
pub use tls::TlsSession;

/// What every adapter re-exports at its root (`pub use netconf_proto::adapter::*`): the
/// core types its signatures use, so that users of an adapter need no direct dependency on
/// this crate. Listed once here, so the adapters cannot drift apart.
pub mod adapter {
    pub use crate::capabilities::{BaseVersion, DefaultsMode, ModuleCapability};
    pub use crate::client::{ClientOptions, Lagged, NotificationItem, Progress};
    pub use crate::message::{ErrorMessage, ErrorSeverity, ErrorTag, ErrorType, NamespaceBinding};
    #[cfg(feature = "rustls")]
    pub use crate::tls;
    pub use crate::{
        operations, Capabilities, Capability, CloseReason, Config, Error, Framing, MessageId,
        Notification, ProtocolError, Quirk, QuirkCounts, Reply, ReplyContent, Request, RequestId,
        RpcError, RpcReply, SessionEnd, TimeoutKind, TlsError, UsageError, XmlPayload,
    };

    /// Server options and the session information handlers receive.
    pub mod server {
        pub use crate::server::{Refusal, ServerOptions, SessionInfo};
    }
}
