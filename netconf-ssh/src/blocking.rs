//! SSH for threads that block: what the blocking adapter needs, with every russh object on
//! the [shared runtime](crate::runtime).
//!
//! [`BlockingStream`] is an [`SshStream`] as `std::io::Read + Write`, with the rest of what
//! a blocking NETCONF loop uses from a socket: clones (one thread reads, one writes), read
//! and write timeouts, and a `shutdown` that wakes a thread blocked in `read`. A read or
//! write polls the `SshStream` *on the calling thread* ([`runtime::block_on`]), so there is
//! no pump task, no socket pair and no extra copy between the SSH channel and the loop:
//! bytes the peer sent wait only in the channel's own bounded buffer, and a read blocked on
//! it wakes the moment they arrive (the drain rule). Timeouts are tokio timers on the
//! shared runtime.
//!
//! The connect and accept functions run the handshake as a task on the shared runtime and
//! wait for it; [`BlockingListener`] accepts sessions with a stop switch.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;

use crate::runtime;
use crate::{ClientOptions, Error, Readiness, ServerSession, SshListener, SshServer, SshStream};

struct Shared {
    reader: Mutex<Option<ReadHalf<SshStream>>>,
    writer: Mutex<Option<WriteHalf<SshStream>>>,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    /// `true` once shut down: blocked reads return 0, writes fail.
    closed: watch::Sender<bool>,
    peer: String,
    /// Waits for input without the read half (see [`BlockingStream::wait_readable`]).
    readiness: Readiness,
}

/// An [`SshStream`] for blocking threads; see the [module docs](self). Clones share the
/// stream (like `TcpStream::try_clone`). The SSH channel closes when [`shutdown`] is
/// called or the last clone is dropped (on any thread).
///
/// [`shutdown`]: BlockingStream::shutdown
#[derive(Clone)]
pub struct BlockingStream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BlockingStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingStream")
            .field("peer", &self.shared.peer)
            .field("closed", &*self.shared.closed.borrow())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("SSH {what} timed out"))
}

impl BlockingStream {
    pub fn new(stream: SshStream) -> Self {
        let peer = stream.peer().to_owned();
        let readiness = stream.readiness();
        let (reader, writer) = tokio::io::split(stream);
        BlockingStream {
            shared: Arc::new(Shared {
                reader: Mutex::new(Some(reader)),
                writer: Mutex::new(Some(writer)),
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                closed: watch::Sender::new(false),
                peer,
                readiness,
            }),
        }
    }

    /// The peer, as used in error messages.
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// Bounds how long one read may block (`TimedOut` then); `None`: forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        *lock(&self.shared.read_timeout) = timeout;
    }

    /// Waits until a read would not block (bytes or the end of the peer's data are there,
    /// or the stream was shut down) without reading anything, at most the read timeout:
    /// `Ok(false)` when that passed. It does not take the read half: another thread may
    /// read meanwhile (a blocking NETCONF client's caller reading its own reply while the
    /// session's reading thread waits here), as with `TcpStream::peek`.
    pub fn wait_readable(&self) -> io::Result<bool> {
        if self.is_closed() {
            return Ok(true);
        }
        let timeout = *lock(&self.shared.read_timeout);
        let readiness = self.shared.readiness.clone();
        let mut closed = self.shared.closed.subscribe();
        runtime::block_on(async move {
            let ready = async {
                tokio::select! {
                    biased;
                    _ = closed.wait_for(|c| *c) => {}
                    () = readiness.readable() => {}
                }
            };
            match timeout {
                Some(t) => tokio::time::timeout(t, ready).await.is_ok(),
                None => {
                    ready.await;
                    true
                }
            }
        })
    }

    /// Bounds how long one write may block (`TimedOut` then); `None`: forever.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        *lock(&self.shared.write_timeout) = timeout;
    }

    /// Closes the stream in both directions: a thread blocked in `read` gets end of stream,
    /// one blocked in `write` `BrokenPipe`, later calls the same. The SSH channel and
    /// connection are closed (behind the data already written) as soon as no thread is
    /// inside a call.
    pub fn shutdown(&self) {
        self.shared.closed.send_replace(true);
        // Halves in use are dropped by their thread as its call returns.
        if let Ok(mut r) = self.shared.reader.try_lock() {
            r.take();
        }
        if let Ok(mut w) = self.shared.writer.try_lock() {
            w.take();
        }
    }

    fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut half = lock(&self.shared.reader);
        let Some(reader) = half.as_mut().filter(|_| !self.is_closed()) else {
            half.take();
            return Ok(0);
        };
        let timeout = *lock(&self.shared.read_timeout);
        let mut closed = self.shared.closed.subscribe();
        let result = runtime::block_on(async {
            let read = async {
                tokio::select! {
                    biased;
                    _ = closed.wait_for(|c| *c) => Ok(0),
                    r = reader.read(buf) => r,
                }
            };
            match timeout {
                Some(t) => tokio::time::timeout(t, read)
                    .await
                    .unwrap_or_else(|_| Err(timed_out("read"))),
                None => read.await,
            }
        })?;
        if self.is_closed() {
            half.take();
        }
        result
    }
}

impl Write for BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let broken = || {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the SSH stream was shut down".to_owned(),
            )
        };
        let mut half = lock(&self.shared.writer);
        let Some(writer) = half.as_mut().filter(|_| !self.is_closed()) else {
            half.take();
            return Err(broken());
        };
        let timeout = *lock(&self.shared.write_timeout);
        let mut closed = self.shared.closed.subscribe();
        let result = runtime::block_on(async {
            let write = async {
                tokio::select! {
                    biased;
                    _ = closed.wait_for(|c| *c) => Err(broken()),
                    r = writer.write(buf) => r,
                }
            };
            match timeout {
                Some(t) => tokio::time::timeout(t, write)
                    .await
                    .unwrap_or_else(|_| Err(timed_out("write"))),
                None => write.await,
            }
        })?;
        if self.is_closed() {
            half.take();
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write went to russh's queue already; nothing of ours to flush.
        Ok(())
    }
}

/// Dials `host:port` on the shared runtime and waits for the NETCONF channel.
pub fn connect(host: &str, port: u16, opts: &ClientOptions) -> Result<BlockingStream, Error> {
    let (host, opts) = (host.to_owned(), opts.clone());
    let stream = run(async move { crate::connect(&host, port, &opts).await })??;
    Ok(BlockingStream::new(stream))
}

/// The SSH client over a TCP connection the caller has (RFC 8071 call home: the device
/// dialled us); `host` and `port` name the server for the host-key check.
pub fn connect_tcp(
    tcp: std::net::TcpStream,
    host: &str,
    port: u16,
    opts: &ClientOptions,
) -> Result<BlockingStream, Error> {
    let (host, opts) = (host.to_owned(), opts.clone());
    let stream = run(async move {
        let tcp = from_std(tcp)?;
        crate::connect_stream(tcp, &host, port, &opts).await
    })??;
    Ok(BlockingStream::new(stream))
}

/// The SSH server over a TCP connection the caller has (RFC 8071 call home: we dialled the
/// manager); returns the session once its subsystem runs.
pub fn accept_tcp(
    server: &SshServer,
    tcp: std::net::TcpStream,
    peer: Option<SocketAddr>,
) -> Result<BlockingSession, Error> {
    let server = server.clone();
    let session = run(async move {
        let tcp = from_std(tcp)?;
        server.accept_stream(tcp, peer).await
    })??;
    Ok(BlockingSession::from(session))
}

/// A [`ServerSession`] for blocking threads.
#[derive(Debug)]
#[non_exhaustive]
pub struct BlockingSession {
    /// The NETCONF user name the [`Authenticator`](crate::Authenticator) returned.
    pub username: String,
    /// The remote address, when known.
    pub peer: Option<SocketAddr>,
    /// The byte channel; shutting it down (or dropping every clone) closes the connection.
    pub stream: BlockingStream,
}

impl From<ServerSession> for BlockingSession {
    fn from(s: ServerSession) -> Self {
        BlockingSession {
            username: s.username,
            peer: s.peer,
            stream: BlockingStream::new(s.stream),
        }
    }
}

fn from_std(tcp: std::net::TcpStream) -> Result<tokio::net::TcpStream, Error> {
    let io = |source| Error::Io {
        what: "preparing the TCP connection".into(),
        source,
    };
    tcp.set_nonblocking(true).map_err(io)?;
    let _ = tcp.set_nodelay(true);
    tokio::net::TcpStream::from_std(tcp).map_err(io)
}

fn run<F>(fut: F) -> Result<F::Output, Error>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime::run(fut).map_err(|source| Error::Io {
        what: "starting the netconf-ssh runtime".into(),
        source,
    })
}

/// Accepts SSH sessions on a `std` listener for blocking threads; [`ListenerStop`] ends a
/// blocked [`BlockingListener::accept`] from another thread.
#[derive(Debug)]
pub struct BlockingListener {
    inner: SshListener,
    stop: watch::Sender<bool>,
}

/// Stops a [`BlockingListener`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct ListenerStop(watch::Sender<bool>);

impl ListenerStop {
    /// Wakes the listener's `accept` with `None`, now and from now on.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl BlockingListener {
    /// Starts accepting on `listener` (handshakes run on the shared runtime).
    pub fn new(server: &SshServer, listener: std::net::TcpListener) -> Result<Self, Error> {
        let server = server.clone();
        let inner = run(async move { server.listen_std(listener) })??;
        Ok(BlockingListener {
            inner,
            stop: watch::Sender::new(false),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr()
    }

    /// A switch that makes `accept` return `None`.
    pub fn stopper(&self) -> ListenerStop {
        ListenerStop(self.stop.clone())
    }

    /// Waits for the next session whose subsystem runs; `None` once stopped.
    pub fn accept(&mut self) -> Option<BlockingSession> {
        let mut stop = self.stop.subscribe();
        let inner = &mut self.inner;
        let session = runtime::block_on(async {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                s = inner.accept() => s,
            }
        })
        .ok()
        .flatten()?;
        Some(BlockingSession::from(session))
    }
}
