//! smol, as the shared loops need it: smol's global executor, async-io's timers,
//! async-net's TCP, and `netconf-ssh`'s shared runtime for russh (which is tokio-only).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use netconf_async::{Accepted, Adopt, AsyncStream, BoxFuture, BoxStream, Listener, Runtime};

/// The smol runtime: tasks on smol's global executor (or a spawner you give the server),
/// timers from async-io, sockets from async-net.
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl Runtime for Smol {
    fn spawn(task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn sleep_until(deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }

    fn connect(host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let tcp = async_net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp) as BoxStream)
        })
    }

    fn bind(addrs: Vec<SocketAddr>) -> BoxFuture<io::Result<(Box<dyn Listener>, SocketAddr)>> {
        Box::pin(async move {
            let listener = async_net::TcpListener::bind(&addrs[..]).await?;
            let local = listener.local_addr()?;
            Ok((Box::new(SmolListener(listener)) as Box<dyn Listener>, local))
        })
    }

    #[cfg(feature = "ssh")]
    fn ssh<T: Send + 'static>(
        step: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<io::Result<T>> {
        // russh needs tokio: its connections live on netconf-ssh's two-thread runtime, the
        // sessions' loops here (the SshStream they get is futures-io).
        Box::pin(netconf_ssh::runtime::spawn(step))
    }
}

impl<S: AsyncStream + 'static> Adopt<S> for Smol {
    fn adopt(stream: S) -> BoxStream {
        Box::new(stream)
    }
}

struct SmolListener(async_net::TcpListener);

impl Listener for SmolListener {
    fn accept(&mut self) -> Accepted<'_> {
        Box::pin(async move {
            let (tcp, peer) = self.0.accept().await?;
            // Requests and replies are whole messages: do not hold their tails back.
            let _ = tcp.set_nodelay(true);
            Ok((Box::new(tcp) as BoxStream, peer))
        })
    }
}
