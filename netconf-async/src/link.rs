//! The byte stream under a session, as the loops use it: reads into one buffer, and writes
//! that can keep reading while they wait.
//!
//! A client keeps *reading* while a write is blocked: with large requests and replies
//! pipelined, a client that only writes and a server that only writes would each wait for
//! the other to read, forever. A TLS server does not: a client that sends and never reads
//! must meet TCP backpressure, not an ever-growing queue of requests. Each `write` and
//! `read` is cancel-safe, so racing them loses nothing.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::Receiver;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use crate::budget::Budget;
use crate::runtime::{sleep, when, AsyncStream, Runtime};

const READ_BUFFER: usize = 64 * 1024;

/// Where a write that keeps reading hands what it read; it answers how the write goes on.
pub(crate) type OnRead<'a> = &'a mut (dyn FnMut(io::Result<&[u8]>) -> AfterRead + Send);

/// What a write that reads meanwhile does after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRead {
    /// Go on reading.
    Read,
    /// Stop reading until resumed (a streamed reply's window is full): the peer may wait
    /// for us to read before it reads again, so the write timeout waits too.
    Pause,
    /// The session ended: the write stops at once, with [`stopped`]'s error, rather than
    /// wait for a peer that may never read the rest.
    Stop,
}

/// The error of a write its reader stopped ([`AfterRead::Stop`]): the bytes not written
/// are abandoned with the session.
pub(crate) fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the session ended during the write",
    )
}

impl AfterRead {
    /// `Read` while `wants_read`, else `Pause`.
    pub fn reading_if(wants_read: bool) -> AfterRead {
        if wants_read {
            AfterRead::Read
        } else {
            AfterRead::Pause
        }
    }
}

pub(crate) struct Link<R> {
    reader: ReadHalf<Box<dyn AsyncStream>>,
    writer: WriteHalf<Box<dyn AsyncStream>>,
    buf: Box<[u8]>,
    write_timeout: Option<Duration>,
    read_done: bool,
    /// The loop's budget, spent by the loop at each step and by a write at each pass, so
    /// that a peer always ready to be read (or a transport always ready to take more)
    /// cannot keep either in one poll. `None` (the hello exchange): nothing is counted.
    budget: Option<Arc<Budget>>,
    runtime: PhantomData<R>,
}

impl<R: Runtime> Link<R> {
    pub fn new(stream: Box<dyn AsyncStream>, write_timeout: Option<Duration>) -> Self {
        let (reader, writer) = futures_lite::io::split(stream);
        Link {
            reader,
            writer,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            write_timeout,
            read_done: false,
            budget: None,
            runtime: PhantomData,
        }
    }

    /// From now on, [`Link::step`] and every pass of a write spend from `budget`.
    pub fn spend_from(&mut self, budget: Arc<Budget>) {
        self.budget = Some(budget);
    }

    /// Spends a step of the loop's budget, yielding first if this poll has none left.
    pub async fn step(&self) {
        if let Some(budget) = &self.budget {
            budget.step().await;
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
    /// as long as it answers [`AfterRead::Read`].
    /// A write that makes no progress for the write timeout fails with `TimedOut`.
    pub async fn write_all(&mut self, bytes: &[u8], on_read: Option<OnRead<'_>>) -> io::Result<()> {
        self.write_all_resuming(bytes, on_read, true, None).await
    }

    /// Like [`Link::write_all`], reading from the start only if `reading`; while `on_read`
    /// (or `reading`) said no, a signal on `resume` starts reading again (the client: a
    /// streamed reply's reader made room).
    pub async fn write_all_resuming(
        &mut self,
        bytes: &[u8],
        mut on_read: Option<OnRead<'_>>,
        reading: bool,
        resume: Option<&Receiver<()>>,
    ) -> io::Result<()> {
        enum Step {
            Wrote(io::Result<usize>),
            Read(io::Result<usize>),
            Resume,
            TimedOut,
        }
        let write_timeout = self.write_timeout;
        // The write timeout runs from the last progress. Its deadline is fixed only when a
        // write has to wait: most writes complete at once, and reading the clock twice
        // for each was a tenth of a small RPC's cost in this loop.
        let mut give_up: Option<Instant> = None;
        let mut written = 0;
        let mut keep_reading = reading;
        while written < bytes.len() {
            self.step().await;
            let reading = on_read.is_some() && !self.read_done && keep_reading;
            // Not reading on purpose: the peer may be waiting for us to read before it reads
            // again, so no progress is no sign of a dead peer until reading resumes.
            let paused = on_read.is_some() && !self.read_done && !keep_reading;
            let waits_for_resume = paused && resume.is_some();
            let deadline = &mut give_up;
            let Link {
                reader,
                writer,
                buf,
                ..
            } = self;
            let step = async { Step::Wrote(writer.write(&bytes[written..]).await) }
                .or(when(reading, async { Step::Read(reader.read(buf).await) }))
                .or(when(paused, async {
                    match resume {
                        Some(resume) if resume.recv().await.is_ok() => Step::Resume,
                        _ => std::future::pending().await,
                    }
                }))
                .or(async {
                    let at = match write_timeout {
                        Some(t) if !waits_for_resume => {
                            Some(*deadline.get_or_insert_with(|| Instant::now() + t))
                        }
                        _ => None,
                    };
                    sleep::<R>(at).await;
                    Step::TimedOut
                })
                .await;
            match step {
                Step::Wrote(n) => match n? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => {
                        written += n;
                        give_up = None;
                    }
                },
                Step::Read(r) => {
                    // The write was polled first and waits: its timeout runs even while
                    // reads keep coming (the timer's branch is then never polled).
                    if let Some(t) = write_timeout {
                        let now = Instant::now();
                        if now >= *give_up.get_or_insert(now + t) {
                            return Err(write_timed_out());
                        }
                    }
                    if matches!(r, Ok(0) | Err(_)) {
                        self.read_done = true;
                    }
                    if let Some(f) = on_read.as_mut() {
                        match f(r.map(|n| &self.buf[..n])) {
                            AfterRead::Read => keep_reading = true,
                            AfterRead::Pause => keep_reading = false,
                            AfterRead::Stop => return Err(stopped()),
                        }
                    }
                }
                Step::Resume => {
                    keep_reading = true;
                    give_up = None;
                }
                Step::TimedOut => return Err(write_timed_out()),
            }
        }
        self.writer.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.writer.close().await;
    }
}

fn write_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer stopped reading: write timed out",
    )
}
