//! The byte stream under a session, as the loops use it: reads into one buffer, and writes
//! that can keep reading while they wait (the client role: see `netconf-tokio`'s link for
//! why a client must and a server must not).

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

/// Any futures-io byte stream a session can run on (async-net, `Async<TcpStream>`,
/// async-std streams, an SSH channel...).
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
    read_done: bool,
}

impl Link {
    pub fn new(stream: Box<dyn AsyncStream>, write_timeout: Option<Duration>) -> Self {
        let (reader, writer) = futures_lite::io::split(stream);
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

    pub async fn read(&mut self) -> io::Result<usize> {
        let r = self.reader.read(&mut self.buf).await;
        if matches!(r, Ok(0) | Err(_)) {
            self.read_done = true;
        }
        r
    }

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
        enum Step {
            Wrote(io::Result<usize>),
            Read(io::Result<usize>),
            TimedOut,
        }
        let deadline = |t: Option<Duration>| t.map(|t| Instant::now() + t);
        let mut give_up = deadline(self.write_timeout);
        let mut written = 0;
        let mut keep_reading = true;
        while written < bytes.len() {
            let reading = on_read.is_some() && !self.read_done && keep_reading;
            let Link {
                reader,
                writer,
                buf,
                ..
            } = self;
            let step = async { Step::Wrote(writer.write(&bytes[written..]).await) }
                .or(when(reading, async { Step::Read(reader.read(buf).await) }))
                .or(async {
                    sleep(give_up).await;
                    Step::TimedOut
                })
                .await;
            match step {
                Step::Wrote(n) => match n? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => {
                        written += n;
                        give_up = deadline(self.write_timeout);
                    }
                },
                Step::Read(r) => {
                    if matches!(r, Ok(0) | Err(_)) {
                        self.read_done = true;
                    }
                    if let Some(f) = on_read.as_mut() {
                        keep_reading = f(r.map(|n| &self.buf[..n]));
                    }
                }
                Step::TimedOut => {
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
        let _ = self.writer.close().await;
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

/// Waits until `deadline`, or forever.
pub(crate) async fn sleep(deadline: Option<Instant>) {
    match deadline {
        Some(d) => {
            async_io::Timer::at(d).await;
        }
        None => std::future::pending().await,
    }
}
