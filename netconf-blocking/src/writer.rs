//! The writing thread of a session: it takes the transmits the loop produces, in order, and
//! writes them, so that the thread holding the session never blocks on a slow reader.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::transport::Transport;

/// The queue between a session and its writing thread.
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Bytes queued and not yet written: what a slow reader costs us.
    queued: AtomicUsize,
    /// Pieces queued and not yet written (the one being written included).
    pieces: AtomicUsize,
    /// Bytes ever queued, and ever written: a caller that queued up to `pushed` knows its
    /// bytes are out once `written` reaches that.
    pushed: AtomicU64,
    written: AtomicU64,
    /// The writes failed: nothing queued will be written any more.
    failed: AtomicBool,
}

struct Queue {
    pieces: VecDeque<Bytes>,
    /// No more pieces: the thread ends once the queue is empty.
    closing: bool,
    /// Shut the transport down once everything is written (the session ended).
    shutdown_after: bool,
}

impl Writer {
    /// Starts the writing thread on `transport`. `on_written` is told after every piece
    /// written (the backlog shrank); `on_error` once if a write fails or times out, after
    /// which the transport is shut down so the reading thread wakes.
    pub fn spawn(
        transport: Box<dyn Transport>,
        write_timeout: Option<Duration>,
        on_written: impl Fn() + Send + 'static,
        on_error: impl FnOnce(io::Error) + Send + 'static,
    ) -> io::Result<Arc<Writer>> {
        transport.set_write_timeout(write_timeout)?;
        let writer = Arc::new(Writer {
            queue: Mutex::new(Queue {
                pieces: VecDeque::new(),
                closing: false,
                shutdown_after: false,
            }),
            ready: Condvar::new(),
            queued: AtomicUsize::new(0),
            pieces: AtomicUsize::new(0),
            pushed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        });
        let w = writer.clone();
        std::thread::Builder::new()
            .name("netconf-writer".into())
            .spawn(move || w.run(transport, on_written, on_error))?;
        Ok(writer)
    }

    /// Queues bytes to write; never blocks.
    pub fn push(&self, bytes: Bytes) {
        self.queued.fetch_add(bytes.len(), Ordering::SeqCst);
        self.pieces.fetch_add(1, Ordering::SeqCst);
        let mut q = self.lock();
        self.pushed.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        q.pieces.push_back(bytes);
        drop(q);
        self.ready.notify_all();
    }

    /// Bytes queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Pieces (transmits) queued and not yet written.
    pub fn pieces(&self) -> usize {
        self.pieces.load(Ordering::SeqCst)
    }

    /// How many bytes were ever queued: pass it to [`Writer::is_written`] later.
    pub fn mark(&self) -> u64 {
        self.pushed.load(Ordering::SeqCst)
    }

    /// Whether everything queued up to `mark` was written (`Some(true)`), is still waiting
    /// (`Some(false)`), or never will be: the writes failed (`None`).
    pub fn is_written(&self, mark: u64) -> Option<bool> {
        if self.written.load(Ordering::SeqCst) >= mark {
            Some(true)
        } else if self.failed.load(Ordering::SeqCst) {
            None
        } else {
            Some(false)
        }
    }

    /// Writes what is queued, then shuts the transport down and ends the thread.
    pub fn finish(&self) {
        let mut q = self.lock();
        q.closing = true;
        q.shutdown_after = true;
        drop(q);
        self.ready.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(
        &self,
        mut transport: Box<dyn Transport>,
        on_written: impl Fn(),
        on_error: impl FnOnce(io::Error),
    ) {
        loop {
            let next = {
                let mut q = self.lock();
                loop {
                    if let Some(piece) = q.pieces.pop_front() {
                        break Some(piece);
                    }
                    if q.closing {
                        break None;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(piece) = next else { break };
            let result = transport.write_all(&piece).and_then(|()| transport.flush());
            self.queued.fetch_sub(piece.len(), Ordering::SeqCst);
            self.pieces.fetch_sub(1, Ordering::SeqCst);
            let e = match result {
                Ok(()) => {
                    self.written.fetch_add(piece.len() as u64, Ordering::SeqCst);
                    on_written();
                    continue;
                }
                Err(e) => e,
            };
            let e = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer stopped reading: write timed out",
                ),
                _ => e,
            };
            {
                let mut q = self.lock();
                q.closing = true;
                let dropped: usize = q.pieces.iter().map(|p| p.len()).sum();
                self.pieces.fetch_sub(q.pieces.len(), Ordering::SeqCst);
                q.pieces.clear();
                self.queued.fetch_sub(dropped, Ordering::SeqCst);
            }
            // The session hears why first, before any waiter learns that the write failed
            // (a caller of `send` woken by `failed` alone would find no result yet and
            // report a local close), and before shutting the transport wakes the reading
            // thread with an end of stream, which would otherwise be taken as the cause.
            on_error(e);
            self.failed.store(true, Ordering::SeqCst);
            on_written();
            transport.shutdown();
            return;
        }
        if self.lock().shutdown_after {
            transport.shutdown();
        }
    }
}
