//! A condition variable that knows whether anyone waits on it.
//!
//! Every drain of a session and every piece written tells the session's waiters that
//! something changed; with a small RPC that is several times per round trip, and most of
//! those times nobody waits. `Condvar::notify_all` is a system call even then, and telling
//! of the writer's progress would take the session's lock: counting the waiters skips both.
//!
//! Two counts: the threads that intend to wait ([`Signal::waiting`], taken before their
//! first test, so that a notifier changing an atomic without the lock can skip the lock
//! when nobody is counted), and the threads asleep in the condition variable right now. A
//! notification wakes only the sleepers: a counted thread that is awake (testing, or doing
//! the work the notification reports, as the session's loop does when it drains) will test
//! again before it sleeps. Half the system calls of a pipelined session's loop went to
//! waking nobody.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, MutexGuard};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Signal {
    condvar: Condvar,
    /// Threads between [`Signal::waiting`] and the end of their wait.
    waiters: AtomicUsize,
    /// Threads inside the condition variable's wait. Changed with the waiters' lock held
    /// (a wait takes it back before it returns), so a notifier that holds the lock, or that
    /// made its change under it, reads a count that includes every thread it must wake.
    sleeping: AtomicUsize,
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
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        let guard = self.condvar.wait(guard).unwrap_or_else(|p| p.into_inner());
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// [`Signal::wait`], at most `timeout`.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        debug_assert!(self.has_waiters(), "wait without `waiting()`");
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        let guard = self
            .condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// Whether a thread waits, or is about to test its condition and maybe wait.
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Wakes every sleeping waiter, if there is one. Call it with the lock held, or after
    /// changing the waiters' state under it; or, after changing an atomic the waiters test,
    /// check [`Signal::has_waiters`] and then take the lock (so the notification cannot fall
    /// between a waiter's test and its wait) and call this.
    pub fn notify_all(&self) {
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            self.condvar.notify_all();
        }
    }

    /// Wakes one sleeping waiter, if there is one (as [`Signal::notify_all`]).
    pub fn notify_one(&self) {
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            self.condvar.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Instant;

    /// How long a test waits for what should happen at once before it gives up.
    const GUARD: Duration = Duration::from_secs(5);

    #[derive(Default)]
    struct State {
        /// The waiter holds the lock from setting this until its wait releases it.
        waiting: bool,
        changed: bool,
    }

    /// A thread counted by `waiting()` before it tests its condition, waiting for `changed`;
    /// once it waits, another thread sets `changed` under the mutex and calls `notify`.
    /// Whether the waiter saw the change before its wait of [`GUARD`] ran out (after that
    /// it would see the change without having been woken). `after_unlock`: the notifier
    /// releases the mutex before it notifies (as a drain waking its callers does).
    fn waiter_is_woken(notify: fn(&Signal), after_unlock: bool) -> bool {
        let shared = Arc::new((Mutex::new(State::default()), Signal::default()));
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (lock, signal) = &*shared;
                let deadline = Instant::now() + GUARD;
                let _counted = signal.waiting();
                let mut state = lock.lock().unwrap();
                state.waiting = true;
                loop {
                    let now = Instant::now();
                    // Seen only once the wait timed out at the deadline: not woken.
                    if state.changed || now >= deadline {
                        return state.changed && now < deadline;
                    }
                    state = signal.wait_timeout(state, deadline - now);
                }
            })
        };
        let (lock, signal) = &*shared;
        let deadline = Instant::now() + GUARD;
        loop {
            let mut state = lock.lock().unwrap();
            if state.waiting {
                // The waiter set it and kept the lock until its wait let go of it.
                assert!(signal.has_waiters());
                state.changed = true;
                if after_unlock {
                    drop(state);
                }
                notify(signal);
                break;
            }
            drop(state);
            assert!(
                Instant::now() < deadline,
                "the waiter never started waiting"
            );
            thread::sleep(Duration::from_millis(1));
        }
        waiter.join().unwrap()
    }

    #[test]
    fn notify_all_wakes_a_counted_waiter() {
        assert!(
            waiter_is_woken(Signal::notify_all, false),
            "waiter not woken"
        );
    }

    #[test]
    fn notify_one_wakes_a_counted_waiter() {
        assert!(
            waiter_is_woken(Signal::notify_one, false),
            "waiter not woken"
        );
    }

    #[test]
    fn a_notification_after_the_change_and_the_unlock_wakes_the_sleeper() {
        assert!(
            waiter_is_woken(Signal::notify_one, true),
            "waiter not woken"
        );
        assert!(
            waiter_is_woken(Signal::notify_all, true),
            "waiter not woken"
        );
    }

    #[test]
    fn only_sleepers_count_for_a_notification() {
        let signal = Signal::default();
        let lock = Mutex::new(());
        let _counted = signal.waiting();
        assert_eq!(signal.sleeping.load(Ordering::SeqCst), 0, "counted, awake");
        let guard = signal.wait_timeout(lock.lock().unwrap(), Duration::from_millis(1));
        assert_eq!(signal.sleeping.load(Ordering::SeqCst), 0, "awake again");
        drop(guard);
    }

    #[test]
    fn has_waiters_counts_the_guards() {
        let signal = Signal::default();
        assert!(!signal.has_waiters());
        let first = signal.waiting();
        assert!(signal.has_waiters());
        drop(first);
        assert!(!signal.has_waiters());

        let first = signal.waiting();
        let second = signal.waiting();
        assert!(signal.has_waiters());
        drop(first);
        assert!(signal.has_waiters(), "one guard still lives");
        drop(second);
        assert!(!signal.has_waiters());
    }

    #[test]
    fn notifying_nobody_is_harmless() {
        let signal = Signal::default();
        signal.notify_all();
        signal.notify_one();
        assert!(!signal.has_waiters());
        // Counted but not yet blocked (still testing its condition): the notification is
        // lost, harmlessly, as the waiter finds the change when it tests.
        let lock = Mutex::new(());
        let _counted = signal.waiting();
        signal.notify_all();
        let _guard = signal.wait_timeout(lock.lock().unwrap(), Duration::from_millis(1));
    }
}
