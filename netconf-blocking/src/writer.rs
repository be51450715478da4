//! Writing a session's transmits, in order, without ever making the thread that holds the
//! session wait for a slow reader.
//!
//! Bytes go into a queue. A caller that has just queued a small message (an `<rpc>`, a
//! handler's reply) writes it on its own thread when nobody else is writing
//! ([`Writer::write_here`]): the bytes leave without waking another thread, which on a
//! small RPC costs more than the RPC itself. Everything else, and whatever a caller cannot
//! write at once (the peer's receive window is full), is written by the session's writing
//! thread. One writer at a time holds the `writing` role, so pieces leave in queue order.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::signal::Signal;
use crate::transport::Transport;

/// A caller writes its own bytes only when no more than this is queued: a large message
/// takes long to write, and the writing thread is there for it.
const INLINE_MAX: usize = 64 * 1024;
/// How long a caller's write may wait for the peer before the writing thread takes over
/// the rest: a caller must not stall for a peer that stopped reading.
const INLINE_WAIT: Duration = Duration::from_millis(5);

/// At most this many pieces, or about this many bytes, go in one vectored write (Linux
/// takes up to 1024 slices; a few dozen small messages is what piles up in practice).
const BATCH_PIECES: usize = 64;
const BATCH_BYTES: usize = 256 * 1024;

/// Over TLS a session encrypts its messages only while less than this waits to be written;
/// the rest waits in the core as the message's own plaintext (a large `Bytes`), and is
/// encrypted as the writer makes room (down to [`PACE_RESUME`]). Encrypting eagerly held
/// a second, encrypted copy of every large message, and delayed its first byte by the time
/// it took to encrypt all of it. (A plaintext stream's transmits are the message's own
/// `Bytes`: nothing to pace.)
pub(crate) const PACE: usize = 512 * 1024;
pub(crate) const PACE_RESUME: usize = 256 * 1024;

type OnError = Box<dyn FnOnce(io::Error) + Send>;

/// The queue between a session and whoever writes its bytes.
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    /// The writing thread sleeps on it. Every change it waits for is made under `queue`'s
    /// lock, so telling it is a system call only while it sleeps: with many callers queuing
    /// requests, most find it awake.
    ready: Signal,
    /// Touched only by the holder of the `writing` role.
    out: Mutex<Out>,
    write_timeout: Option<Duration>,
    on_written: Box<dyn Fn() + Send + Sync>,
    on_error: Mutex<Option<OnError>>,
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
    /// A thread is writing (the writing thread, or a caller writing its own bytes).
    writing: bool,
    /// No more pieces: the thread ends once the queue is empty.
    closing: bool,
    /// Shut the transport down once everything is written (the session ended).
    shutdown_after: bool,
}

struct Out {
    transport: Box<dyn Transport>,
    /// The write timeout the transport has now (callers and the thread wait differently).
    timeout: Option<Duration>,
    /// The pieces being written, kept (empty) between writes: a fresh `Vec` cost an
    /// allocation per write.
    batch: Vec<Bytes>,
}

impl Writer {
    /// Starts the writing thread on `transport`. `on_written` is told after every piece
    /// written (the backlog shrank); `on_error` once if a write fails or times out, after
    /// which the transport is shut down so the reading thread wakes. Both may be called on
    /// a caller's thread (one that called [`Writer::write_here`]) with no lock held.
    pub fn spawn(
        transport: Box<dyn Transport>,
        write_timeout: Option<Duration>,
        on_written: impl Fn() + Send + Sync + 'static,
        on_error: impl FnOnce(io::Error) + Send + 'static,
    ) -> io::Result<Arc<Writer>> {
        transport.set_write_timeout(write_timeout)?;
        let writer = Arc::new(Writer {
            queue: Mutex::new(Queue {
                pieces: VecDeque::new(),
                writing: false,
                closing: false,
                shutdown_after: false,
            }),
            ready: Signal::default(),
            out: Mutex::new(Out {
                transport,
                timeout: write_timeout,
                batch: Vec::new(),
            }),
            write_timeout,
            on_written: Box::new(on_written),
            on_error: Mutex::new(Some(Box::new(on_error))),
            queued: AtomicUsize::new(0),
            pieces: AtomicUsize::new(0),
            pushed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        });
        let w = writer.clone();
        std::thread::Builder::new()
            .name("netconf-writer".into())
            .spawn(move || w.run())?;
        Ok(writer)
    }

    /// Queues bytes for the writing thread; never blocks.
    pub fn push(&self, bytes: Bytes) {
        if self.enqueue(bytes) {
            self.ready.notify_all();
        }
    }

    /// Queues bytes that the caller will write itself with [`Writer::write_here`] once it
    /// has released the session's lock (so the reading thread is never held up by a write);
    /// never blocks. Past [`INLINE_MAX`] the writing thread is woken at once instead: a
    /// large message is the writing thread's anyway, and it must not wait until the whole
    /// of it is encrypted (the first byte of a large prebuilt reply waited for that).
    pub fn queue(&self, bytes: Bytes) {
        if self.enqueue(bytes) && self.queued.load(Ordering::SeqCst) > INLINE_MAX {
            self.ready.notify_all();
        }
    }

    /// Queues; true if no one is writing (someone must be told).
    fn enqueue(&self, bytes: Bytes) -> bool {
        self.queued.fetch_add(bytes.len(), Ordering::SeqCst);
        self.pieces.fetch_add(1, Ordering::SeqCst);
        let mut q = self.lock();
        self.pushed.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        q.pieces.push_back(bytes);
        !q.writing
    }

    /// Writes what is queued on this thread if no one else is writing and it is small;
    /// otherwise leaves it to the one writing, or to the writing thread. Call it with no
    /// session lock held: it may wait (briefly) for the peer.
    pub fn write_here(&self) {
        let mut q = self.lock();
        if q.writing || q.pieces.is_empty() {
            return;
        }
        if self.queued.load(Ordering::SeqCst) > INLINE_MAX {
            drop(q);
            self.ready.notify_all();
            return;
        }
        q.writing = true;
        drop(q);
        self.write_queued(Some(INLINE_WAIT));
    }

    /// Has the writing thread write what is queued, unless someone is writing it already:
    /// bytes a thread queued to write itself and then could not (see `pending.rs`).
    pub fn kick(&self) {
        let q = self.lock();
        if !q.writing && !q.pieces.is_empty() {
            drop(q);
            self.ready.notify_all();
        }
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

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writing thread: takes the `writing` role whenever there is something to write
    /// and no caller holds it; ends once closing with nothing left.
    fn run(&self) {
        loop {
            let counted = self.ready.waiting();
            let mut q = self.lock();
            loop {
                if !q.writing && !q.pieces.is_empty() {
                    break;
                }
                if !q.writing && q.closing {
                    let shutdown = q.shutdown_after;
                    drop(q);
                    if shutdown {
                        self.out().transport.shutdown();
                    }
                    return;
                }
                q = self.ready.wait(q);
            }
            q.writing = true;
            drop(q);
            drop(counted);
            self.write_queued(None);
        }
    }

    /// Writes queued pieces in order while holding the `writing` role, and gives it up when
    /// the queue is empty. `wait_at_most`: a caller's thread, which hands the rest to the
    /// writing thread rather than wait longer than that for the peer.
    fn write_queued(&self, wait_at_most: Option<Duration>) {
        let mut out = self.out();
        let timeout = wait_at_most.or(self.write_timeout);
        if out.timeout != timeout {
            // Best effort: a transport that cannot change it keeps the one it has.
            let _ = out.transport.set_write_timeout(timeout);
            out.timeout = timeout;
        }
        let mut batch = std::mem::take(&mut out.batch);
        loop {
            {
                let mut q = self.lock();
                take_batch(&mut q.pieces, &mut batch);
                if batch.is_empty() {
                    out.batch = batch;
                    q.writing = false;
                    let closing = q.closing;
                    drop(q);
                    if closing {
                        self.ready.notify_all();
                    }
                    return;
                }
            }
            let (done, result) = write_pieces(&mut *out.transport, &batch);
            self.queued.fetch_sub(done, Ordering::SeqCst);
            self.written.fetch_add(done as u64, Ordering::SeqCst);
            let e = match result {
                Ok(()) => {
                    self.pieces.fetch_sub(batch.len(), Ordering::SeqCst);
                    batch.clear();
                    (self.on_written)();
                    continue;
                }
                Err(e) => e,
            };
            // The pieces written whole are done; the rest of the batch is not.
            let rest = unwritten(&mut batch, done);
            self.pieces
                .fetch_sub(batch.len() - rest.len(), Ordering::SeqCst);
            let waited = matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            );
            if waited && wait_at_most.is_some() {
                // The peer is slow to read: the writing thread writes the rest, with the
                // session's own write timeout, from the exact byte where this write stopped.
                let mut q = self.lock();
                for piece in rest.into_iter().rev() {
                    q.pieces.push_front(piece);
                }
                q.writing = false;
                drop(q);
                drop(out);
                if done > 0 {
                    (self.on_written)();
                }
                self.ready.notify_all();
                return;
            }
            self.pieces.fetch_sub(rest.len(), Ordering::SeqCst);
            let dropped_here: usize = rest.iter().map(Bytes::len).sum();
            self.queued.fetch_sub(dropped_here, Ordering::SeqCst);
            let e = if waited {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer stopped reading: write timed out",
                )
            } else {
                e
            };
            {
                let mut q = self.lock();
                q.closing = true;
                q.writing = false;
                let dropped: usize = q.pieces.iter().map(|p| p.len()).sum();
                self.pieces.fetch_sub(q.pieces.len(), Ordering::SeqCst);
                q.pieces.clear();
                self.queued.fetch_sub(dropped, Ordering::SeqCst);
            }
            // The session hears why first, before any waiter learns that the write failed
            // (a caller of `send` woken by `failed` alone would find no result yet and
            // report a local close), and before shutting the transport wakes the reading
            // thread with an end of stream, which would otherwise be taken as the cause.
            let on_error = self
                .on_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(on_error) = on_error {
                on_error(e);
            }
            self.failed.store(true, Ordering::SeqCst);
            (self.on_written)();
            out.transport.shutdown();
            drop(out);
            self.ready.notify_all();
            return;
        }
    }
}

/// Moves the pieces at the queue's front into `batch`, as many as one vectored write takes:
/// several small messages queued together (callers' requests, a handler's replies) leave in
/// one system call instead of one each.
fn take_batch(queue: &mut VecDeque<Bytes>, batch: &mut Vec<Bytes>) {
    let mut bytes = 0;
    while batch.len() < BATCH_PIECES && bytes < BATCH_BYTES {
        let Some(piece) = queue.pop_front() else {
            break;
        };
        bytes += piece.len();
        batch.push(piece);
    }
}

/// What of `batch` is not written once `done` bytes of it were: the piece cut short from
/// where it stopped, and those after it.
fn unwritten(batch: &mut [Bytes], mut done: usize) -> Vec<Bytes> {
    let mut rest = Vec::new();
    for piece in batch.iter() {
        if done >= piece.len() {
            done -= piece.len();
        } else {
            rest.push(piece.slice(done..));
            done = 0;
        }
    }
    rest
}

/// Writes all of `pieces`, in order, with vectored writes, and flushes; how much was
/// written either way, so a write that timed out part-way can be resumed where it stopped.
fn write_pieces(transport: &mut dyn Transport, pieces: &[Bytes]) -> (usize, io::Result<()>) {
    if let [piece] = pieces {
        return write_piece(transport, piece);
    }
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut left = &mut slices[..];
    let mut done = 0;
    while !left.is_empty() {
        match transport.write_vectored(left) {
            Ok(0) => {
                return (
                    done,
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the transport accepted no more bytes",
                    )),
                )
            }
            Ok(n) => {
                done += n;
                IoSlice::advance_slices(&mut left, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, transport.flush())
}

/// Writes all of `piece` and flushes; how much was written either way, so a write that
/// timed out part-way can be resumed where it stopped.
fn write_piece(transport: &mut dyn Transport, piece: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < piece.len() {
        match transport.write(&piece[done..]) {
            Ok(0) => {
                return (
                    done,
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the transport accepted no more bytes",
                    )),
                )
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, transport.flush())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    /// A caller's write to a peer that stopped reading gives up after `INLINE_WAIT`, part
    /// of a piece possibly written, and the writing thread resumes exactly there: once the
    /// peer reads, every byte arrives once and in order.
    #[test]
    fn a_caller_hands_a_blocked_write_to_the_thread_without_losing_order() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let writer = Writer::spawn(Box::new(client), None, || {}, |e| panic!("{e}")).unwrap();

        // Small pieces, numbered, written by "callers" until one could not leave at once.
        let piece_len = 1000;
        let mut sent = Vec::new();
        let started = Instant::now();
        let mut n: u32 = 0;
        while writer.backlog() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the socket never filled"
            );
            let piece: Vec<u8> = (0..piece_len).map(|i| (n as usize * 7 + i) as u8).collect();
            sent.extend_from_slice(&piece);
            writer.queue(Bytes::from(piece));
            let t = Instant::now();
            writer.write_here();
            // Deadlock guard, not timing: a caller never waits for the peer for long.
            assert!(t.elapsed() < Duration::from_secs(2), "the caller was stuck");
            n += 1;
        }
        // A few more while the thread holds the rest: they queue behind it.
        for _ in 0..3 {
            let piece: Vec<u8> = (0..piece_len).map(|i| (n as usize * 7 + i) as u8).collect();
            sent.extend_from_slice(&piece);
            writer.queue(Bytes::from(piece));
            writer.write_here();
            n += 1;
        }
        let mut received = vec![0u8; sent.len()];
        peer.read_exact(&mut received).unwrap();
        assert!(received == sent, "bytes lost, repeated or reordered");
        assert_eq!(writer.is_written(writer.mark()), Some(true));
        assert_eq!(writer.backlog(), 0);
        writer.finish();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    /// Small pieces queued together leave in one vectored write; a caller's batch cut short
    /// in the middle (the peer stopped reading) is resumed by the writing thread at the
    /// exact byte, in the middle of whichever piece it stopped in.
    #[test]
    fn a_batch_cut_short_resumes_at_the_exact_byte() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let writer = Writer::spawn(Box::new(client), None, || {}, |e| panic!("{e}")).unwrap();
        // Batches of 40 pieces of odd sizes (so a cut rarely falls on a piece's end), each
        // written by a "caller", until one could not leave at once.
        let mut sent = Vec::new();
        let mut n = 0usize;
        let started = Instant::now();
        let mut queue_batch = |writer: &Writer, sent: &mut Vec<u8>| {
            for _ in 0..40 {
                let len = 500 + n % 977;
                let piece: Vec<u8> = (0..len).map(|i| (n * 31 + i) as u8).collect();
                sent.extend_from_slice(&piece);
                writer.queue(Bytes::from(piece));
                n += 1;
            }
        };
        while writer.backlog() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the socket never filled"
            );
            queue_batch(&writer, &mut sent);
            assert!(writer.backlog() <= INLINE_MAX);
            writer.write_here();
        }
        // More behind the thread's remainder.
        queue_batch(&writer, &mut sent);
        writer.write_here();
        let mut received = vec![0u8; sent.len()];
        peer.read_exact(&mut received).unwrap();
        assert!(received == sent, "bytes lost, repeated or reordered");
        assert_eq!(writer.is_written(writer.mark()), Some(true));
        assert_eq!(writer.pieces(), 0);
        assert_eq!(writer.backlog(), 0);
        writer.finish();
    }

    /// Past `INLINE_MAX`, bytes queued for the caller to write wake the writing thread at
    /// once: a handler encrypting a large reply does not hold its first bytes back until it
    /// has finished and calls `write_here`. Here nobody calls it, and everything arrives.
    #[test]
    fn a_large_queue_is_written_without_waiting_for_its_caller() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        // Deadlock guard: bytes that never leave fail the read instead of hanging.
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = Writer::spawn(Box::new(client), None, || {}, |e| panic!("{e}")).unwrap();
        // The writing thread writes something, and is then left to go back to sleep (not a
        // timing assertion: without the wake-up the test fails whenever it slept).
        writer.push(Bytes::from_static(b"first"));
        let mut first = [0u8; 5];
        peer.read_exact(&mut first).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // Each piece alone is past `INLINE_MAX`: whenever the writing thread has emptied
        // the queue and gone back to sleep, the next piece still wakes it. (Pieces of half
        // that size failed now and then: the thread wrote the first ones, slept, and the last
        // one alone was under the bound, left for a `write_here` this test never calls.)
        let mut sent = Vec::new();
        for n in 0..4usize {
            let piece: Vec<u8> = (0..INLINE_MAX + 1).map(|i| (n * 13 + i) as u8).collect();
            sent.extend_from_slice(&piece);
            writer.queue(Bytes::from(piece));
        }
        let mut received = vec![0u8; sent.len()];
        peer.read_exact(&mut received)
            .expect("the writing thread wrote the large queue");
        assert!(received == sent, "bytes lost, repeated or reordered");
        writer.finish();
    }

    #[test]
    fn unwritten_cuts_the_batch_where_the_write_stopped() {
        let mut batch = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"hi"),
        ];
        assert_eq!(unwritten(&mut batch, 0), batch.clone());
        assert_eq!(
            unwritten(&mut batch, 3),
            vec![Bytes::from_static(b"defg"), Bytes::from_static(b"hi")]
        );
        assert_eq!(
            unwritten(&mut batch, 5),
            vec![Bytes::from_static(b"fg"), Bytes::from_static(b"hi")]
        );
        assert_eq!(unwritten(&mut batch, 8), vec![Bytes::from_static(b"i")]);
        assert!(unwritten(&mut batch, 9).is_empty());
    }
}
