//! The pieces of the read loop both roles share: drain the machine, write everything
//! (awaited to completion, never raced inside `select!`, since a half-written message
//! cannot be taken back), and feed what the socket reads.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use netconf_proto::{CloseReason, Error, Event, Machine, Output};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Any byte stream a session can run on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

const READ_BUFFER: usize = 64 * 1024;

pub(crate) struct Conn {
    pub stream: Box<dyn AsyncStream>,
    pub machine: Box<dyn Machine + Send>,
    pub buf: Box<[u8]>,
    pub events: VecDeque<Event>,
    pub closed: Option<CloseReason>,
    io_error: Option<(ErrorKind, String)>,
    write_timeout: Option<Duration>,
}

impl Conn {
    pub fn new(
        stream: Box<dyn AsyncStream>,
        machine: Box<dyn Machine + Send>,
        write_timeout: Option<Duration>,
    ) -> Self {
        Conn {
            stream,
            machine,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            events: VecDeque::new(),
            closed: None,
            io_error: None,
            write_timeout,
        }
    }

    /// Drains the machine to `Wait`, writing every byte; returns the next deadline.
    pub async fn flush(&mut self) -> Option<Instant> {
        loop {
            match self.machine.poll_output() {
                Output::Transmit(bytes) => {
                    if self.io_error.is_none() {
                        if let Err(e) = self.write_all(&bytes).await {
                            // After the session ended, failing to send our last bytes (the
                            // close_notify to a peer already gone) is not the caller's news.
                            if self.machine.session().is_closed() {
                                tracing::debug!(error = %e, "write after the session closed failed");
                            } else {
                                self.transport_failed(e);
                            }
                        }
                    }
                }
                Output::Event(Event::Closed { reason }) => {
                    self.closed = Some(reason.clone());
                    self.events.push_back(Event::Closed { reason });
                }
                Output::Event(ev) => self.events.push_back(ev),
                Output::Wait(deadline) => return deadline,
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match self.write_timeout {
            Some(t) => tokio::time::timeout(t, write).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "the peer stopped reading: write timed out",
                ))
            }),
            None => write.await,
        }
    }

    fn transport_failed(&mut self, e: io::Error) {
        tracing::debug!(error = %e, "transport failed");
        self.io_error = Some((e.kind(), e.to_string()));
        self.machine.session_mut().abort();
    }

    /// Feeds the result of one socket read to the machine.
    pub fn on_read(&mut self, read: io::Result<usize>) {
        let now = Instant::now();
        match read {
            Ok(0) => self.machine.handle_eof(now),
            Ok(n) => {
                if let Err(e) = self.machine.handle_transport(&self.buf[..n], now) {
                    tracing::debug!(error = %e, "protocol error from the peer");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ) =>
            {
                self.machine.handle_eof(now)
            }
            Err(e) => self.transport_failed(e),
        }
    }

    /// The error callers see once the session has closed.
    pub fn closed_error(&self) -> Option<Error> {
        if let Some((kind, what)) = &self.io_error {
            return Some(Error::Io(io::Error::new(*kind, what.clone())));
        }
        self.closed.as_ref().map(Error::from_close)
    }

    /// Waits until `deadline` (tokio time), or forever.
    pub async fn sleep(deadline: Option<Instant>) {
        match deadline {
            Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
            None => std::future::pending().await,
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
