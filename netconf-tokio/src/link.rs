//! The byte stream under a session, as the loops use it: reads into one buffer, and writes
//! that can keep reading while they wait.
//!
//! A client keeps *reading* while a write is blocked: with large requests and replies
//! pipelined, a client that only writes and a server that only writes would each wait for
//! the other to read, forever. A server does not: a client that sends and never reads must
//! meet TCP backpressure, not an ever-growing queue of requests. Each `write` and `read`
//! call is cancel-safe, so racing them loses nothing.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Any byte stream a session can run on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

const READ_BUFFER: usize = 64 * 1024;

/// Where a write that keeps reading hands what it read; it answers whether to go on
/// reading during this write.
pub(crate) type OnRead<'a> = &'a mut (dyn FnMut(io::Result<&[u8]>) -> bool + Send);

pub(crate) struct Link {
    reader: ReadHalf<Box<dyn AsyncStream>>,
    writer: WriteHalf<Box<dyn AsyncStream>>,
    buf: Box<[u8]>,
    write_timeout: Option<Duration>,
    /// The read side reached its end or failed: nothing more will be read.
    read_done: bool,
}

impl Link {
    pub fn new(stream: Box<dyn AsyncStream>, write_timeout: Option<Duration>) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Link {
            reader,
            writer,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            write_timeout,
            read_done: false,
        }
    }

    pub fn can_read(&self) -> bool {
        !self.read_done
    }

    /// One read; the bytes are then in [`Link::last_read`].
    pub async fn read(&mut self) -> io::Result<usize> {
        let r = self.reader.read(&mut self.buf).await;
        if matches!(r, Ok(0) | Err(_)) {
            self.read_done = true;
        }
        r
    }

    /// What a read returned, as the cores take it.
    pub fn bytes(&self, read: io::Result<usize>) -> io::Result<&[u8]> {
        read.map(|n| &self.buf[..n])
    }

    /// Writes all of `bytes`. With `on_read`, reads meanwhile and hands every read to it,
    /// until it answers `false`.
    /// A write that makes no progress for the write timeout fails with `TimedOut`.
    pub async fn write_all(
        &mut self,
        bytes: &[u8],
        mut on_read: Option<OnRead<'_>>,
    ) -> io::Result<()> {
        let mut written = 0;
        let mut keep_reading = true;
        let deadline = |t: Option<Duration>| t.map(|t| Instant::now() + t);
        let mut give_up = deadline(self.write_timeout);
        while written < bytes.len() {
            let reading = on_read.is_some() && !self.read_done && keep_reading;
            tokio::select! {
                n = self.writer.write(&bytes[written..]) => match n? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => {
                        written += n;
                        give_up = deadline(self.write_timeout);
                    }
                },
                r = self.reader.read(&mut self.buf), if reading => {
                    if matches!(r, Ok(0) | Err(_)) {
                        self.read_done = true;
                    }
                    if let Some(f) = on_read.as_mut() {
                        keep_reading = f(r.map(|n| &self.buf[..n]));
                    }
                }
                () = sleep(give_up) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer stopped reading: write timed out",
                    ))
                }
            }
        }
        self.writer.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// `fut`'s output if it is ready at once; `None` (and `fut` dropped) if it would wait.
pub(crate) async fn now_or_never<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Waits until `deadline`, or forever.
pub(crate) async fn sleep(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
