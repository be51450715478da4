//! The pieces of the read loop both roles share: drain the machine, write everything, and
//! feed what the socket reads.
//!
//! Writes are never raced against commands or timers (a half-written message cannot be
//! taken back). A client does keep *reading* while a write is blocked: with large requests
//! and replies pipelined, a client that only writes and a server that only writes would
//! each wait for the other to read, forever. Each `write` call is cancel-safe, so racing
//! it against a read loses nothing.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use netconf_proto::{CloseReason, Error, Event, Machine, Output};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Any byte stream a session can run on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

const READ_BUFFER: usize = 64 * 1024;

/// How a session ended; shared with the other adapters.
pub(crate) use netconf_proto::SessionEnd as Ended;

pub(crate) struct Conn {
    pub reader: ReadHalf<Box<dyn AsyncStream>>,
    writer: WriteHalf<Box<dyn AsyncStream>>,
    pub machine: Box<dyn Machine + Send>,
    pub buf: Box<[u8]>,
    pub events: VecDeque<Event>,
    pub closed: Option<CloseReason>,
    io_error: Option<(ErrorKind, String)>,
    write_timeout: Option<Duration>,
    /// Keep reading while a write is blocked (the client role; see the module docs).
    read_while_writing: bool,
    /// The read side reached EOF or failed; nothing more will be read.
    read_done: bool,
}

impl Conn {
    pub fn new(
        stream: Box<dyn AsyncStream>,
        machine: Box<dyn Machine + Send>,
        write_timeout: Option<Duration>,
        read_while_writing: bool,
    ) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Conn {
            reader,
            writer,
            machine,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            events: VecDeque::new(),
            closed: None,
            io_error: None,
            write_timeout,
            read_while_writing,
            read_done: false,
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
        let give_up = self.write_timeout.map(|t| Instant::now() + t);
        let mut written = 0;
        while written < bytes.len() {
            enum Step {
                Wrote(io::Result<usize>),
                Read(io::Result<usize>),
                TimedOut,
            }
            let reading = self.read_while_writing && !self.read_done;
            let step = tokio::select! {
                n = self.writer.write(&bytes[written..]) => Step::Wrote(n),
                n = self.reader.read(&mut self.buf), if reading => Step::Read(n),
                () = sleep(give_up) => Step::TimedOut,
            };
            match step {
                Step::Wrote(Ok(0)) => return Err(ErrorKind::WriteZero.into()),
                Step::Wrote(Ok(n)) => written += n,
                Step::Wrote(Err(e)) => return Err(e),
                Step::Read(read) => self.on_read(read),
                Step::TimedOut => {
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        "the peer stopped reading: write timed out",
                    ))
                }
            }
        }
        self.writer.flush().await
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
            Ok(0) => {
                self.read_done = true;
                self.machine.handle_eof(now)
            }
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
                self.read_done = true;
                self.machine.handle_eof(now)
            }
            Err(e) => {
                self.read_done = true;
                self.transport_failed(e)
            }
        }
    }

    /// How the session ended, once it has.
    pub fn ended(&self) -> Option<Ended> {
        if let Some((kind, what)) = &self.io_error {
            return Some(Ended::Io(*kind, what.clone()));
        }
        self.closed.clone().map(Ended::Close)
    }

    /// The error callers see once the session has closed.
    pub fn closed_error(&self) -> Option<Error> {
        self.ended().map(|e| e.error())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// Waits until `deadline`, or forever.
pub(crate) async fn sleep(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
