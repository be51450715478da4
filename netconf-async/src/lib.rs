//! The async NETCONF client and server, written once for every runtime.
//!
//! `netconf-tokio` and `netconf-smol` are this crate instantiated with their [`Runtime`]:
//! the loops around [`netconf_proto`]'s sans-IO cores ([`ClientCore`], [`ServerSession`]),
//! on futures-io streams, with the runtime lending only spawning, timers and TCP. Use one
//! of those crates; depend on this one to write an adapter for another runtime.
//!
//! What every adapter guarantees comes from here:
//! - **Full drainage.** The client's driver and each server session read whenever the
//!   core wants input and hand every byte to the core at once; TLS records rustls holds
//!   and bytes waiting in an SSH channel are drained before the loop waits on the socket
//!   again, so a peer's message never sits unseen.
//! - **No write-write deadlock.** A client keeps reading while a large request is being
//!   written; a plaintext (SSH) server session does too.
//! - **Bounded memory.** Notifications queue per subscriber up to a bound (then `Lagged`),
//!   streamed replies stop reading at `ClientOptions::stream_window` of unread content,
//!   servers cap pending requests and sessions.
//! - **No loop holds a thread.** Each poll of a client's loop or a server session takes a
//!   few steps at most (an event read, a batch of requests, a pass of a write), then
//!   yields: a peer that never stops sending cannot keep a caller waiting in its call, nor
//!   the other tasks on the loop's thread from running, on any runtime and any stream.
//!
//! [`ClientCore`]: netconf_proto::client::ClientCore
//! [`ServerSession`]: netconf_proto::server::ServerSession

mod budget;
pub mod call_home;
mod client;
mod connection;
mod data;
mod link;
mod queue;
mod runtime;
mod serve;
#[cfg(feature = "ssh")]
pub mod ssh;

pub use call_home::{CallHome, CallHomeListener, CallHomeOptions, CallHomeTransport, Reconnect};
pub use client::{Client, Notifications, DEFAULT_TLS_PORT};
pub use connection::Driver;
pub use data::DataStream;
pub use runtime::{Accepted, Adopt, AsyncStream, BoxFuture, BoxStream, Entry, Listener, Runtime};
pub use serve::{Answer, PieceStream, Server, Spawner};

/// What every adapter built on this crate re-exports at its root (`pub use
/// netconf_async::adapter::*`): the types its signatures use, so that users need no direct
/// dependency on netconf-proto or netconf-async.
pub mod adapter {
    pub use crate::{Answer, DataStream, Driver, Notifications, PieceStream, DEFAULT_TLS_PORT};

    pub use netconf_proto::adapter::*;

    /// Call home (RFC 8071) in both roles: the options and results of the
    /// `CallHomeListener` and of `Server::call_home`.
    pub mod call_home {
        pub use crate::call_home::{
            CallHome, CallHomeEnd, CallHomeOptions, CallHomeTransport, ConnectionType, Device,
            DeviceError, DeviceFilter, DeviceIdentity, ListenerTransport, Reconnect,
            CALL_HOME_SSH_PORT, CALL_HOME_TLS_PORT,
        };
    }
}
