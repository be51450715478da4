//! A condition variable that knows whether anyone waits on it.
//!
//! Every drain of a session and every piece written tells the session's waiters that
//! something changed; with a small RPC that is several times per round trip, and most of
//! those times nobody waits. `Condvar::notify_all` is a system call even then, and telling
//! of the writer's progress would take the session's lock: counting the waiters skips both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, MutexGuard};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Signal {
    condvar: Condvar,
    /// Threads between [`Signal::waiting`] and the end of their wait.
    waiters: AtomicUsize,
}

/// A thread counted as waiting on a [`Signal`], from before it first tests its condition
/// until it is done waiting.
pub(crate) struct Waiting<'a>(&'a Signal);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Signal {
    /// Counts this thread as a waiter. Take it before testing the condition the first time
    /// and hold it through every [`Signal::wait`]: a notifier that sees no waiter skips the
    /// notification, which is only safe if a thread that is about to wait is counted before
    /// it reads the state it waits on.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(self)
    }

    /// Waits until notified (or spuriously); hold a [`Waiting`] from before the test.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        debug_assert!(self.has_waiters(), "wait without `waiting()`");
        self.condvar.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// [`Signal::wait`], at most `timeout`.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        debug_assert!(self.has_waiters(), "wait without `waiting()`");
        self.condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Whether a thread waits, or is about to test its condition and maybe wait.
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Wakes every waiter, if there is one. Call it with the lock held; or, after changing
    /// an atomic the waiters test, check [`Signal::has_waiters`] and then take the lock
    /// (so the notification cannot fall between a waiter's test and its wait) and call this.
    pub fn notify_all(&self) {
        if self.has_waiters() {
            self.condvar.notify_all();
        }
    }

    /// Wakes one waiter, if there is one.
    pub fn notify_one(&self) {
        if self.has_waiters() {
            self.condvar.notify_one();
        }
    }
}
