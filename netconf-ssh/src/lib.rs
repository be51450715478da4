//! NETCONF over SSH (RFC 6242) on russh, once for every adapter.
//!
//! The client ([`connect`], [`connect_stream`]) and the server
//! ([`SshServer`]) both end in an [`SshStream`]: the NETCONF byte channel,
//! `AsyncRead + AsyncWrite + Unpin + Send + 'static`, over which the
//! adapters run the sans-IO `netconf-proto` session exactly as over TLS.
//!
//! What this crate takes care of so the adapters do not have to:
//! * the channel layer ([`channel`]): russh's channel queue is always
//!   drained into a buffer of ours with an explicit byte bound, so a layer
//!   above that stops reading cannot wedge the connection (see the module
//!   docs for the russh behaviour and the measurements);
//! * host keys ([`HostKeyCheck`]): OpenSSH known_hosts by default (hashed
//!   entries, `[host]:port`, several key types), accept-new, a pinned
//!   fingerprint, or an explicit insecure mode; a changed key is always
//!   refused, naming both fingerprints and the known_hosts line;
//! * authentication: password, keyboard-interactive (answering password
//!   prompts, as Junos and IOS XR ask), key files (OpenSSH, PEM, with
//!   passphrase) and ssh-agent on the client; password, keyboard-interactive
//!   and public keys through an [`Authenticator`] on the server;
//! * algorithms ([`Algorithms`]): russh's defaults plus `ecdh-sha2-nistp*`;
//!   SHA-1 only on request;
//! * waiting for the subsystem's confirmation before handing out the
//!   channel, keeping data that arrives before it.
//!
//! # Runtime
//! Everything runs on tokio. Call [`connect`] / [`SshServer::listen`] inside
//! the runtime that is to own the connection: russh's tasks, our drain task
//! and a keeper task live there. The returned stream holds no russh object
//! whose drop needs a runtime, so it may be polled from another executor
//! (smol through `async-compat`) and dropped on any thread, as long as that
//! runtime keeps running (the blocking adapter keeps one on a helper thread).
//!
//! The smol and blocking adapters, which have no tokio runtime of their own, use the
//! [shared runtime](runtime) this crate keeps on two threads of its own.
//!
//! # Errors in the adapters
//! `From<Error> for netconf_proto::Error`: a timeout becomes `Error::Timeout` with the
//! matching kind, a failed TCP connect `Error::Io` (same `io::ErrorKind`, this error
//! inside), anything else `Error::Ssh` with this error as its source.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use netconf_ssh::{connect, ClientOptions, ServerOptions, SshServer, StaticAuth};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // Client: host key checked against the given known_hosts file.
//! let opts = ClientOptions::new("admin")
//!     .password("secret")
//!     .known_hosts("/home/ops/.ssh/known_hosts");
//! let mut chan = connect("192.0.2.1", netconf_ssh::NETCONF_SSH_PORT, &opts).await?;
//! chan.write_all(b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"/>]]>]]>").await?;
//!
//! // Server: one ServerSession per connection whose subsystem runs.
//! let server = SshServer::new(ServerOptions::default(), StaticAuth::new().user("admin", "secret"))?;
//! println!("host key {}", server.host_key_fingerprint());
//! let mut listener = server.listen(tokio::net::TcpListener::bind("127.0.0.1:8830").await?);
//! while let Some(session) = listener.accept().await {
//!     let (user, mut stream) = session.into_parts();
//!     tokio::spawn(async move {
//!         let mut buf = vec![0u8; 65536];
//!         while let Ok(n) = stream.read(&mut buf).await {
//!             if n == 0 { break; }
//!             // hand &buf[..n] to the netconf-proto session of `user`
//!         }
//!         drop(user);
//!     });
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod algorithms;
mod auth;
pub mod blocking;
pub mod channel;
mod client;
#[cfg(feature = "futures-io")]
pub mod compat;
mod error;
pub mod keys;
pub mod known_hosts;
pub mod runtime;
mod server;

pub use algorithms::Algorithms;
pub use channel::{ChannelOptions, Readiness, SshStream, DEFAULT_READ_BUFFER_LIMIT};
pub use client::{
    connect, connect_stream, device_identity, ClientOptions, HostKeyCheck, HostKeyFilter,
    KeySource, NETCONF_SSH_PORT,
};
pub use error::{Error, TimeoutKind};
pub use server::{
    AuthFuture, Authenticator, HostKey, ServerOptions, ServerSession, SshListener, SshServer,
    StaticAuth,
};

/// The russh version we are built on, for callers that need its key types
/// (`russh::keys::PublicKey`, `PrivateKey`).
pub use russh;

#[cfg(test)]
mod tests {
    /// The adapters rely on these bounds; keep them from regressing silently.
    #[test]
    fn stream_bounds() {
        fn check<
            T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync + 'static,
        >() {
        }
        check::<crate::SshStream>();
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::SshServer>();
        send_sync::<crate::Error>();
    }
}
