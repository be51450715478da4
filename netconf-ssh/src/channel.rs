//! The NETCONF byte channel over one SSH session channel: always drained,
//! explicitly bounded.
//!
//! # The trap this module exists for
//!
//! russh 0.65 handles an incoming `SSH_MSG_CHANNEL_DATA` in its connection
//! task like this (`client/encrypted.rs`, `server/encrypted.rs`):
//!
//! 1. it debits the receive window and, once less than half of
//!    `Config::window_size` (2 MiB) is left, immediately sends a
//!    `WINDOW_ADJUST` back to the full size: the window is re-granted when data
//!    *arrives*, not when the application *reads* it;
//! 2. it then `send(..).await`s the data into the channel's bounded queue
//!    (`channel_buffer_size`, 100 messages of up to 32 KiB).
//!
//! If nobody reads that queue, step 2 parks the *whole connection task*. It
//! then reads nothing more from the socket, so the peer's `WINDOW_ADJUST`s
//! for data *we* send are never seen, our writes stop when our send window
//! runs out, and a layer above that only reads once its write finished (our
//! servers write a reply before reading the next request) never reads again:
//! the connection wedges in both directions. There is no public API in 0.65
//! to withhold the window until data is consumed (`Handler::adjust_window`
//! only changes the server's target, and is consulted only when data arrives;
//! the client ignores it), so SSH-level flow control tied to consumption is
//! not available. (Upstream PR #730, "gate WINDOW_ADJUST on consumption",
//! proposes exactly that; it is not in 0.65.)
//!
//! # The design
//!
//! * A drain task, spawned on the runtime that owns the connection, owns
//!   russh's `ChannelReadHalf` and pulls every message out of it as soon as it
//!   arrives, so russh's 100-message queue never fills and its connection task
//!   never parks on it: the peer's window adjusts are always processed and our
//!   writes always progress while the peer reads.
//! * Data goes into *our* queue whose size is bounded in bytes
//!   ([`ChannelOptions::read_buffer_limit`], 16 MiB by default) by a semaphore:
//!   the drain acquires one permit per byte before queueing, the reader
//!   releases them as it copies bytes out.
//! * Only when the layer above has left `read_buffer_limit` bytes unread does
//!   the drain stop pulling. That is the one backpressure russh 0.65 offers
//!   (its connection task parks and TCP pushes back on the peer); it is the
//!   right behaviour for a slow consumer of a large reply, and it is only
//!   reached by a layer above that leaves more than the limit unread while it
//!   waits for its own write. Set the limit above the largest message a peer
//!   may send while you are writing (netconf-proto's maximum message size is
//!   the natural value). A warning is logged the first time the limit is hit.
//! * Writes go through russh's own `ChannelTx` (window-aware, one copy into a
//!   `Bytes` per packet). Its waits are on `tokio::sync` primitives, which any
//!   executor can poll. Because a window wait in `ChannelTx` is not woken when
//!   the connection dies, the drain task marks the channel closed and wakes a
//!   parked writer itself, so a write never hangs on a dead connection.
//! * `CHANNEL_EOF` and `CHANNEL_CLOSE` become a clean end of stream (read
//!   returns 0); losing the connection without either becomes an
//!   `UnexpectedEof` error wrapping [`Error::ConnectionLost`](crate::Error).
//!   A write after the peer closed the channel fails with `BrokenPipe`.
//!
//! # What was measured
//!
//! On the 2-core development machine, debug build, loopback, our client
//! against our server (`tests/wedge.rs`), each end writing 10 MiB and only
//! then reading:
//! * raw russh channels (`make_writer`/`make_reader`, nothing draining, the
//!   ignored test `raw_russh_channels_wedge`): wedged in 4 of 4 runs, no
//!   progress for 10 s, the writers stuck after 0.3-4.3 MiB (client) and
//!   3.1-5.3 MiB (server): the 2 MiB window, 100 queued packets and socket
//!   buffers, then nothing;
//! * through this layer: 3 of 3 runs per test run complete in about 0.26 s
//!   each, the unread backlog peaking at 5-10 MiB per side (under the 16 MiB
//!   default limit).
//!
//! `tests/transfer.rs`: 100 MB each way at once completes in 2-4.5 s
//! (debug build); with a 1 MiB limit and a paused reader, the backlog stays
//! at or under 1 MiB and every byte then arrives in order. Against OpenSSH's
//! sshd with `cat` as the subsystem (`tests/openssh.rs`), writing 10 MiB
//! before reading any of the echo completes as well.
//!
//! # Runtimes
//!
//! The russh `Handle`, the `ChannelReadHalf` and the `ChannelWriteHalf` live
//! in tasks on the tokio runtime that ran the handshake: the drain task, and a
//! keeper task that acts when the stream is dropped (the client sends EOF
//! behind its data, waits up to 10 s for the server to close the channel, then
//! disconnects; the server closes the channel and leaves ending the connection
//! to the client, disconnecting itself after 10 s). Neither side drops the
//! connection while the other may still be reading: a reset would discard
//! what the other had not read yet. The [`SshStream`] holds only russh's `ChannelTx` writer, whose drop
//! merely notifies a `tokio::sync::Notify`, and `tokio::sync` channels. So the
//! stream may be polled from another executor (smol through a compat layer,
//! a plain thread parking on a waker: `tests/server.rs`) and dropped on any
//! thread, but that tokio runtime must keep running as long as the stream is
//! used: the blocking adapter keeps one on a helper thread. What must never
//! happen is dropping russh's `ChannelStream` (from `Channel::into_stream`)
//! outside a runtime: its close-on-drop calls `tokio::spawn` and panics; this
//! crate does not use it. The futures of [`connect`](crate::connect) and
//! [`SshServer`](crate::SshServer) must run inside the runtime too (they spawn
//! there), e.g. through `Handle::block_on` or a compat layer that enters it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use russh::{Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::Error;

/// The default bound on bytes received but not yet read by the layer above.
pub const DEFAULT_READ_BUFFER_LIMIT: usize = 16 * 1024 * 1024;
/// Below one SSH packet the drain could never queue a full packet.
const MIN_READ_BUFFER_LIMIT: usize = 64 * 1024;

/// Settings of the channel layer, shared by client and server options.
///
/// `#[non_exhaustive]` because more knobs (a write-side bound, stderr
/// handling) may follow; build it with [`ChannelOptions::default`] and the
/// setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// Bytes received but not yet read that we hold before we stop pulling
    /// from russh (see the module docs for why this must exceed what the
    /// layer above leaves unread while it writes).
    pub read_buffer_limit: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            read_buffer_limit: DEFAULT_READ_BUFFER_LIMIT,
        }
    }
}

impl ChannelOptions {
    /// Sets [`ChannelOptions::read_buffer_limit`] (at least 64 KiB).
    pub fn read_buffer_limit(mut self, bytes: usize) -> Self {
        self.read_buffer_limit = bytes;
        self
    }

    fn limit(&self) -> usize {
        self.read_buffer_limit.clamp(
            MIN_READ_BUFFER_LIMIT,
            Semaphore::MAX_PERMITS.min(u32::MAX as usize),
        )
    }
}

enum Chunk {
    Data(Bytes),
    Eof,
    Lost,
}

/// State both the stream and the drain task look at.
struct Shared {
    peer: String,
    /// The channel is closed or the connection is gone: writes must fail.
    closed: AtomicBool,
    write_waker: Mutex<Option<Waker>>,
    buffered: AtomicUsize,
    high_water: AtomicUsize,
    /// The end of the peer's data (EOF, or the connection lost) is queued for the reader.
    input_ended: AtomicBool,
    /// Told whenever data or the end is queued for the reader (see [`Readiness`]).
    input: Notify,
}

impl Shared {
    /// Bytes or the end are there: a read would not wait.
    fn has_input(&self) -> bool {
        self.buffered.load(Ordering::SeqCst) > 0 || self.input_ended.load(Ordering::SeqCst)
    }

    /// The reader has something more to take.
    fn input_queued(&self, ended: bool) {
        if ended {
            self.input_ended.store(true, Ordering::SeqCst);
        }
        self.input.notify_waiters();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(w) = self
            .write_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            w.wake();
        }
    }
}

/// A NETCONF byte stream over one SSH channel running a subsystem.
///
/// `AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static`, so the tokio
/// adapter can use it directly, the smol adapter through a compat layer and
/// the blocking adapter through a helper runtime. Dropping it closes the
/// channel and the SSH connection (done by a task on the owning runtime).
pub struct SshStream {
    rx: mpsc::UnboundedReceiver<Chunk>,
    current: Bytes,
    end: Option<bool>, // Some(true) = clean EOF, Some(false) = connection lost
    permits: Arc<Semaphore>,
    writer: Pin<Box<dyn AsyncWrite + Send + Sync>>,
    shared: Arc<Shared>,
    // Dropping this tells the keeper task to close the channel and connection.
    _keeper: oneshot::Sender<()>,
}

impl std::fmt::Debug for SshStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshStream")
            .field("peer", &self.shared.peer)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl SshStream {
    /// The peer this channel goes to, as used in error messages.
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// Bytes received from the peer and not yet read.
    pub fn buffered(&self) -> usize {
        self.shared.buffered.load(Ordering::Relaxed)
    }

    /// The largest number of unread bytes held at any time, for tests and
    /// diagnostics of the bound.
    pub fn buffered_high_water(&self) -> usize {
        self.shared.high_water.load(Ordering::Relaxed)
    }

    /// A handle that waits until a read would not block, without reading: kept apart from
    /// the stream, so one thread can wait on it while another holds the read half.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.shared.clone())
    }
}

/// Waits until bytes from the peer, or the end of its data, wait to be read
/// ([`SshStream::readiness`]).
#[derive(Clone)]
pub struct Readiness(Arc<Shared>);

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("peer", &self.0.peer)
            .field("has_input", &self.0.has_input())
            .finish()
    }
}

impl Readiness {
    /// Returns once a read of the stream would not wait (bytes, or the end, are there).
    pub async fn readable(&self) {
        loop {
            // Registered before the test: data queued in between still wakes us.
            let notified = self.0.input.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.has_input() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for SshStream {
    fn drop(&mut self) {
        // Wake a drain task waiting for room: nobody will read any more.
        self.permits.close();
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.current.is_empty() {
                let n = this.current.len().min(buf.remaining());
                buf.put_slice(&this.current[..n]);
                this.current.advance(n);
                this.shared.buffered.fetch_sub(n, Ordering::Relaxed);
                this.permits.add_permits(n);
                return Poll::Ready(Ok(()));
            }
            match this.end {
                Some(true) => return Poll::Ready(Ok(())),
                Some(false) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        Error::ConnectionLost {
                            peer: this.shared.peer.clone(),
                        },
                    )))
                }
                None => {}
            }
            match std::task::ready!(this.rx.poll_recv(cx)) {
                Some(Chunk::Data(b)) => this.current = b,
                Some(Chunk::Eof) => this.end = Some(true),
                Some(Chunk::Lost) | None => this.end = Some(false),
            }
        }
    }
}

impl SshStream {
    fn closed_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("SSH channel to {} is closed", self.shared.peer),
        )
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.shared.closed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(self.closed_error()));
        }
        match self.writer.as_mut().poll_write(cx, buf) {
            Poll::Pending => {
                *self
                    .shared
                    .write_waker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                if self.shared.closed.load(Ordering::SeqCst) {
                    return Poll::Ready(Err(self.closed_error()));
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_flush(cx)
    }

    /// Sends `CHANNEL_EOF`: the peer reads end-of-stream, we may still read.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        self.writer.as_mut().poll_shutdown(cx)
    }
}

/// What the client or server keeps after wiring a channel: the stream to hand
/// out, the subsystem reply (client), and the pieces its keeper task owns.
pub(crate) struct Wired<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> {
    pub stream: SshStream,
    pub reply: oneshot::Receiver<bool>,
    pub write_half: ChannelWriteHalf<S>,
    pub dropped: oneshot::Receiver<()>,
    /// Resolves (with an error) once the drain task ended: the peer closed the
    /// channel or the connection is gone.
    pub drained: oneshot::Receiver<()>,
}

/// How long the side that ended a session waits for the other to finish
/// reading: the server for the client to end the connection after the channel
/// was closed, the client for the server to close the channel after our EOF.
pub(crate) const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Splits a russh channel, spawns its drain task on the current runtime and
/// returns the stream. Must be called inside the runtime that owns the
/// connection.
pub(crate) fn wire<S>(channel: Channel<S>, opts: &ChannelOptions, peer: String) -> Wired<S>
where
    S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let (read_half, write_half) = channel.split();
    let writer = write_half.make_writer();
    let (tx, rx) = mpsc::unbounded_channel();
    let limit = opts.limit();
    let permits = Arc::new(Semaphore::new(limit));
    let shared = Arc::new(Shared {
        peer,
        closed: AtomicBool::new(false),
        write_waker: Mutex::new(None),
        buffered: AtomicUsize::new(0),
        high_water: AtomicUsize::new(0),
        input_ended: AtomicBool::new(false),
        input: Notify::new(),
    });
    let (reply_tx, reply_rx) = oneshot::channel();
    let (permits2, shared2) = (permits.clone(), shared.clone());
    let (keep_tx, keep_rx) = oneshot::channel();
    let (drained_tx, drained_rx) = oneshot::channel();
    tokio::spawn(async move {
        drain(read_half, tx, permits2, shared2, reply_tx, limit).await;
        drop(drained_tx);
    });
    Wired {
        stream: SshStream {
            rx,
            current: Bytes::new(),
            end: None,
            permits,
            writer: Box::pin(writer),
            shared,
            _keeper: keep_tx,
        },
        reply: reply_rx,
        write_half,
        dropped: keep_rx,
        drained: drained_rx,
    }
}

/// Pulls every message out of russh's per-channel queue as it arrives, so
/// russh's connection task never parks on it (see the module docs). Runs
/// until the channel is closed or the connection is gone, even after the
/// stream was dropped (then data is discarded), so russh's queue can never
/// fill while the keeper closes the channel.
async fn drain(
    mut read_half: ChannelReadHalf,
    tx: mpsc::UnboundedSender<Chunk>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    reply: oneshot::Sender<bool>,
    limit: usize,
) {
    let mut reply = Some(reply);
    let mut eof = false;
    let mut warned = false;
    let mut reader_gone = false;
    loop {
        match read_half.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if data.is_empty() || reader_gone {
                    continue;
                }
                let n = data.len().min(limit);
                if !warned && permits.available_permits() < n {
                    warned = true;
                    tracing::warn!(
                        peer = %shared.peer,
                        limit,
                        "SSH read buffer full: the layer above has not read {} bytes; \
                         no longer reading from the connection until it does",
                        limit - permits.available_permits()
                    );
                }
                match permits.acquire_many(n as u32).await {
                    Ok(p) => p.forget(),
                    Err(_) => {
                        // The stream was dropped: nobody reads any more.
                        reader_gone = true;
                        continue;
                    }
                }
                let now = shared.buffered.fetch_add(n, Ordering::Relaxed) + n;
                shared.high_water.fetch_max(now, Ordering::Relaxed);
                if tx.send(Chunk::Data(data)).is_err() {
                    reader_gone = true;
                }
                shared.input_queued(false);
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                // stderr of a subsystem is not NETCONF; log it, never mix it in.
                tracing::debug!(peer = %shared.peer, ext, len = data.len(), "ignoring SSH extended data");
            }
            Some(ChannelMsg::Eof) => {
                if !eof {
                    eof = true;
                    let _ = tx.send(Chunk::Eof);
                    shared.input_queued(true);
                }
            }
            Some(ChannelMsg::Close) => {
                if !eof {
                    let _ = tx.send(Chunk::Eof);
                    shared.input_queued(true);
                }
                break;
            }
            Some(ChannelMsg::Success) => {
                if let Some(r) = reply.take() {
                    let _ = r.send(true);
                }
            }
            Some(ChannelMsg::Failure) => {
                if let Some(r) = reply.take() {
                    let _ = r.send(false);
                }
            }
            Some(_) => {}
            None => {
                // russh dropped its end: the connection is gone.
                if !eof {
                    let _ = tx.send(Chunk::Lost);
                    shared.input_queued(true);
                }
                break;
            }
        }
    }
    shared.close();
}
