//! tokio, as the shared loops need it: spawning, timers, TCP, and SSH on the caller's own
//! runtime (russh is tokio-native, so no second runtime is involved).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use netconf_async::{Accepted, Adopt, BoxFuture, BoxStream, Entry, Listener, Runtime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The tokio runtime: the one running the call that spawns (`connect_tls`, `listen_tls`,
/// ...), which must keep running as long as the session does.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

/// Any tokio byte stream a session can run on (a `TcpStream`, a `UnixStream`, a TLS or
/// SSH stream of your own, `tokio::io::duplex` in tests).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

impl Runtime for Tokio {
    fn spawn(task: BoxFuture<()>) {
        tokio::spawn(task);
    }

    fn sleep_until(deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn connect(host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp.compat()) as BoxStream)
        })
    }

    fn bind(addrs: Vec<SocketAddr>) -> BoxFuture<io::Result<(Box<dyn Listener>, SocketAddr)>> {
        Box::pin(async move {
            let listener = TcpListener::bind(&addrs[..]).await?;
            let local = listener.local_addr()?;
            Ok((
                Box::new(TokioListener(listener)) as Box<dyn Listener>,
                local,
            ))
        })
    }

    /// The runtime this client is made in: a caller's turn at the session's loop enters
    /// it, so that the timers the loop makes are this runtime's even when the caller
    /// runs outside it (or in another one, which may end first). The session's socket is
    /// that runtime's too, so the session cannot outlive it anyway.
    /// (The handle keeps the runtime's I/O and timer driver allocated until the last
    /// `Client` of the session is dropped.)
    fn entry() -> Option<Entry> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(Arc::new(move |poll: &mut dyn FnMut()| {
            let _inside = handle.enter();
            poll();
        }))
    }

    #[cfg(feature = "ssh")]
    fn ssh<T: Send + 'static>(
        step: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<io::Result<T>> {
        // russh's tasks go to the runtime running this step: ours.
        Box::pin(async move { Ok(step.await) })
    }
}

impl<S: AsyncStream> Adopt<S> for Tokio {
    fn adopt(stream: S) -> BoxStream {
        Box::new(stream.compat())
    }
}

struct TokioListener(TcpListener);

impl Listener for TokioListener {
    fn accept(&mut self) -> Accepted<'_> {
        Box::pin(async move {
            let (tcp, peer) = self.0.accept().await?;
            // Requests and replies are whole messages: do not hold their tails back.
            let _ = tcp.set_nodelay(true);
            Ok((Box::new(tcp.compat()) as BoxStream, peer))
        })
    }
}
