//! What an async runtime lends the loops: spawning, timers and TCP. Everything else (the
//! loops, the channels, the I/O on a stream) is runtime-neutral futures code.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed future, as runtimes take and give them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A way into a runtime from any thread: runs the function it is given where the
/// runtime's timers and sockets can be made (see [`Runtime::entry`]).
pub type Entry = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// What [`Listener::accept`] gives: a connection and its peer's address.
pub type Accepted<'a> =
    Pin<Box<dyn Future<Output = io::Result<(BoxStream, SocketAddr)>> + Send + 'a>>;

/// Any futures-io byte stream a session can run on (TCP, TLS's transport, an SSH channel,
/// a Unix socket...).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A stream the runtime made, boxed.
pub type BoxStream = Box<dyn AsyncStream>;

/// A bound TCP listener of the runtime.
pub trait Listener: Send + 'static {
    /// The next connection.
    fn accept(&mut self) -> Accepted<'_>;
}

/// An async runtime, as the loops need it. Implemented by `netconf-tokio` and
/// `netconf-smol`; a type, not a value, so that `Client<Tokio>` is a name.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(task: BoxFuture<()>);
    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> BoxFuture<()>;
    /// Opens a TCP connection (Nagle off).
    fn connect(host: String, port: u16) -> BoxFuture<io::Result<BoxStream>>;
    /// Binds a TCP listener.
    fn bind(addrs: Vec<SocketAddr>) -> BoxFuture<io::Result<(Box<dyn Listener>, SocketAddr)>>;
    /// Taken where a client session is made: how a caller, on any thread, enters this
    /// runtime to poll the session's loop itself (so that it writes its own request
    /// without waking the loop's task first). `None`: callers leave everything to the
    /// loop's task. The default runs the poll as it is, for runtimes whose timers and
    /// sockets work from any thread.
    fn entry() -> Option<Entry> {
        Some(Arc::new(|poll: &mut dyn FnMut()| poll()))
    }
    /// Runs an SSH step (russh is tokio-only): on the caller's tokio runtime, or on
    /// `netconf-ssh`'s shared one.
    #[cfg(feature = "ssh")]
    fn ssh<T: Send + 'static>(
        step: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<io::Result<T>>;
}

/// How a runtime takes a stream of its own kind (tokio's `AsyncRead`, futures-io's)
/// into the futures-io stream the loops run on: constructors taking a caller's stream
/// accept every `S` their runtime adopts, so `netconf_tokio::Client::from_stream` takes a
/// tokio stream and `netconf_smol::Client::from_stream` a futures-io one.
pub trait Adopt<S>: Runtime {
    /// `stream`, as the loops read and write it.
    fn adopt(stream: S) -> BoxStream;
}

/// Waits until `deadline`, or forever.
pub(crate) async fn sleep<R: Runtime>(deadline: Option<Instant>) {
    match deadline {
        Some(d) => R::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// `f` when `enabled`, else a future that never completes (a disabled `select!` branch).
pub(crate) async fn when<T>(enabled: bool, f: impl Future<Output = T>) -> T {
    if enabled {
        f.await
    } else {
        std::future::pending().await
    }
}
