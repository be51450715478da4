//! Who reads a client session's transport: the thread waiting for the reply, when it can.
//!
//! The reading role (`State::reading`) is held by one thread at a time. A caller waiting
//! for its result takes it when nobody holds it and reads for itself: the reply wakes the
//! very thread that wants it, as with a plain socket, instead of waking a reading thread
//! that then wakes the caller (two thread switches per small RPC instead of one). When the
//! caller has its result it hands the role to another caller still waiting, if any.
//!
//! The session's reading thread covers everything else: notifications, streamed replies
//! (their readers wait on the buffer, not the transport), the end of the session, and
//! deadlines while nobody waits. So that it never sits in a `read` a caller could have done,
//! it first waits for the transport to be readable without consuming anything
//! ([`Transport::wait_readable`]) and takes the role only then, if nobody took it meanwhile.
//! While a caller holds the role it sleeps, looking again at least every [`LINGER`]: a
//! caller that gives the role up with nobody to take it does not wake it, since the next
//! call usually takes it again at once (a `send` now and its `recv` later, a loop of calls).
//! What that may delay by up to `LINGER` is a notification arriving just after a call.
//! Transports that cannot wait for readability (a `Transport` of the caller's that keeps
//! the default) are read by the reading thread alone.

use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crate::client::{Inner, State};
use crate::signal::Signal;
use crate::transport::{ReadTimeout, Transport};

/// How long the reading thread leaves the transport to callers before it looks again.
pub(crate) const LINGER: Duration = Duration::from_millis(10);
/// A zero read timeout means "forever" to std: a deadline that has just passed waits this.
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);
const READ_BUFFER: usize = 64 * 1024;

/// The transport's read side, used only by the holder of the reading role.
pub(crate) struct ReadSide {
    transport: Box<dyn Transport>,
    buf: Vec<u8>,
    armed: ReadTimeout,
    /// The callers to wake after a read, swapped with the state's list: both keep their
    /// room, so waking allocates nothing.
    waking: Vec<Arc<Signal>>,
}

impl ReadSide {
    pub fn new(transport: Box<dyn Transport>) -> Self {
        ReadSide {
            transport,
            buf: vec![0u8; READ_BUFFER],
            armed: ReadTimeout::default(),
            waking: Vec::new(),
        }
    }

    fn timeout(&mut self, deadline: Option<Instant>) {
        let timeout = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(MIN_READ_TIMEOUT)
        });
        self.armed.arm(&*self.transport, timeout);
    }
}

impl Inner {
    /// One read by the holder of the reading role, with the state unlocked: feeds the core
    /// and wakes those whose results arrived (after releasing the lock, so that they do not
    /// at once block on it). True once the transport is done (end of stream, an error).
    pub(crate) fn read_once(&self, deadline: Option<Instant>) -> bool {
        let mut side = self.read_side();
        let side = &mut *side;
        side.timeout(deadline);
        let read = side.transport.read(&mut side.buf);
        let mut st = self.lock();
        let now = Instant::now();
        let stop = match read {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                st.core.handle_timeout(now);
                false
            }
            read => {
                let stop = matches!(read, Ok(0))
                    || matches!(&read, Err(e) if e.kind() != io::ErrorKind::Interrupted);
                st.core.handle_read(read.map(|n| &side.buf[..n]), now);
                stop
            }
        };
        st.wake_later = true;
        self.drain(&mut st);
        st.wake_later = false;
        std::mem::swap(&mut st.to_wake, &mut side.waking);
        drop(st);
        for waker in side.waking.drain(..) {
            waker.notify_one();
        }
        stop
    }

    /// Whether this waiting caller may take the reading role now: only a lone waiter for
    /// a result does. With many (threads sharing the client), the reading thread serves them
    /// all: passing the role from caller to caller would wake each twice.
    pub(crate) fn may_lead(&self, st: &State) -> bool {
        self.callers_read
            && !st.reading
            && st.wakers.len() <= 1
            && st.ended.is_none()
            && st.core.wants_read()
    }

    /// Gives the reading role up. A caller still waiting for its result takes it over;
    /// with none, the reading thread is woken if a streamed reply, a subscriber or another
    /// waiter needs reading now (otherwise it looks again within [`LINGER`]).
    pub(crate) fn release_read(&self, st: &mut State) {
        st.reading = false;
        let mut waiting = st
            .wakers
            .iter()
            .filter(|(ticket, _)| !st.results.contains_key(ticket));
        match (waiting.next(), waiting.next()) {
            // The one caller still waiting reads for itself.
            (Some((_, next)), None) => next.notify_one(),
            // Many: the reading thread serves them.
            (Some(_), Some(_)) => self.reader_wake.notify_all(),
            (None, _) => {
                if st.other_waiters > 0 || st.subscribed || self.streams.load(Ordering::SeqCst) > 0
                {
                    self.reader_wake.notify_all();
                }
            }
        }
    }
}

/// The session's reading thread (see the module's doc). It keeps the session's deadlines
/// too, so a stall or a close timeout ends the session even while no caller waits. While a
/// streamed reply's reader has a window's worth of content unread nobody reads (the core
/// says so); the reader's progress wakes this thread.
pub(crate) fn read_loop(inner: &Inner, watcher: Box<dyn Transport>) {
    loop {
        let mut st = inner.lock();
        {
            let _counted = inner.reader_wake.waiting();
            loop {
                // Marked before asking, so a reader consuming meanwhile sees it and wakes us.
                inner.read_paused.store(true, Ordering::SeqCst);
                if st.ended.is_some() {
                    return;
                }
                let now = Instant::now();
                if st.deadline.is_some_and(|d| d <= now) {
                    st.core.handle_timeout(now);
                    inner.drain(&mut st);
                    continue;
                }
                let wait = if !st.core.wants_read() {
                    // A streamed reply's reader has a window's worth to read.
                    st.deadline
                } else if st.reading {
                    // A caller reads; look again later, in case it leaves nobody reading.
                    inner.read_paused.store(false, Ordering::SeqCst);
                    Some(st.deadline.map_or(now + LINGER, |d| d.min(now + LINGER)))
                } else {
                    inner.read_paused.store(false, Ordering::SeqCst);
                    break;
                };
                st = match wait {
                    Some(d) => inner.reader_wake.wait_timeout(st, d - now),
                    None => inner.reader_wake.wait(st),
                };
            }
        }
        if inner.callers_read {
            // Wait for bytes without holding the role, so that a caller may take it
            // meanwhile; with the read timeout of the session's deadline.
            drop(st);
            if let Ok(mut side) = inner.read_side.try_lock() {
                let deadline = inner.lock().deadline;
                side.timeout(deadline);
            }
            let readable = watcher.wait_readable();
            st = inner.lock();
            match readable {
                // A caller took the role, or a deadline passed: look again.
                _ if st.reading => continue,
                Ok(false) => continue,
                Ok(true) => {}
                // The transport failed (a reset). The socket reports an error once: a read
                // now would see a plain end of stream, so the session hears it from here.
                Err(e) => {
                    st.core.handle_read(Err(e), Instant::now());
                    inner.drain(&mut st);
                    continue;
                }
            }
            if !st.core.wants_read() || st.ended.is_some() {
                continue;
            }
        }
        st.reading = true;
        let deadline = st.deadline;
        drop(st);
        let stop = inner.read_once(deadline);
        let mut st = inner.lock();
        inner.release_read(&mut st);
        if stop {
            return;
        }
        drop(st);
    }
}

/// The role for a caller that waits for something in [`Inner::wait_on`]: reads while it
/// waits if nobody else does.
pub(crate) fn lead_while_waiting<'a>(
    inner: &'a Inner,
    mut st: MutexGuard<'a, State>,
    leading: &mut bool,
) -> (MutexGuard<'a, State>, bool) {
    if !*leading && !inner.may_lead(&st) {
        if inner.callers_read && !st.reading {
            // Nobody reads and this caller may not: the reading thread must.
            inner.reader_wake.notify_all();
        }
        return (st, false);
    }
    if *leading && (st.ended.is_some() || !st.core.wants_read()) {
        inner.release_read(&mut st);
        *leading = false;
        return (st, false);
    }
    st.reading = true;
    *leading = true;
    let deadline = st.deadline;
    drop(st);
    let stop = inner.read_once(deadline);
    let mut st = inner.lock();
    if stop {
        inner.release_read(&mut st);
        *leading = false;
    }
    (st, true)
}
