//! A server's watchdog: takes a session's loop back from a thread stuck in a handler.
//!
//! A session's loop runs the requests it reads on its own thread, one after another, and
//! reads again once they are answered: handing each batch to another thread cost more than
//! the handlers of small RPCs (two thread switches and a wake-up per batch). A handler may
//! block, though, and meanwhile nobody would read the session, keep its deadlines or rescue
//! the requests queued behind the handler. So the loop's thread parks the loop's state
//! (a [`Baton`](crate::serve)) before it runs handlers, and takes it back after; this
//! thread looks at every session's parked loop a few times per grace period and, once a
//! loop has been parked for a grace, hands it to a thread of its own. (Go's runtime retakes
//! a processor from a thread blocked in a system call the same way.)
//!
//! The thread ticks only while some session runs handlers; after a while without, it
//! sleeps until a session wakes it ([`Watchdog::serving`]).

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::pending::GRACE;

/// A session the watchdog looks at.
pub(crate) trait Watched: Send + Sync {
    /// Hands the loop to a thread of its own if it has been parked for too long at `now`.
    fn check(&self, now: Instant) -> Check;
}

/// What [`Watched::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The loop runs (reads, or waits to).
    Running,
    /// The loop is parked: its thread runs handlers (or it was just handed over).
    Parked,
    /// The session is over: forget it.
    Gone,
}

/// How often the watchdog looks while sessions run handlers: a loop is handed on between
/// one and two graces after it was parked.
const TICK: Duration = GRACE;
/// Ticks without a parked loop before the watchdog sleeps until woken (about 0.4 s).
const IDLE_TICKS: u32 = 200;
/// How long a sleeping watchdog waits before it looks whether its server is gone.
const SLEEP: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    watched: Mutex<Vec<Arc<dyn Watched>>>,
    /// The thread sleeps (or is about to): a session starting handlers must wake it.
    asleep: AtomicBool,
    /// The thread was started.
    started: AtomicBool,
    wake: Condvar,
    /// Guards the sleep; holds whether a wake-up came.
    woken: Mutex<bool>,
}

impl Shared {
    fn watched(&self) -> MutexGuard<'_, Vec<Arc<dyn Watched>>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn woken(&self) -> MutexGuard<'_, bool> {
        self.woken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at every session once; whether any loop is parked. Forgets ended sessions.
    fn sweep(&self) -> bool {
        // Checked without the list's lock: a check may start a thread.
        let sessions = self.watched().clone();
        let now = Instant::now();
        let mut parked = false;
        let mut gone = Vec::new();
        for session in sessions {
            match session.check(now) {
                Check::Running => {}
                Check::Parked => parked = true,
                Check::Gone => gone.push(session),
            }
        }
        if !gone.is_empty() {
            self.watched()
                .retain(|w| !gone.iter().any(|g| Arc::ptr_eq(g, w)));
        }
        parked
    }
}

impl Watchdog {
    /// Watches `session` from now until it is dropped. Starts the thread on first use.
    pub fn watch(&self, session: Arc<dyn Watched>) {
        self.shared.watched().push(session);
        if !self.shared.started.swap(true, Ordering::SeqCst) {
            let shared = Arc::downgrade(&self.shared);
            let started = std::thread::Builder::new()
                .name("netconf-watchdog".into())
                .spawn(move || run(shared));
            if let Err(e) = started {
                // Handlers that block then hold their session's loop until they return.
                tracing::error!(error = %e, "cannot start the server's watchdog thread");
            }
        }
    }

    /// A session's loop has just been parked to run handlers: wake the thread if it sleeps.
    /// Call it after parking (the thread looks again after it marks itself asleep).
    pub fn serving(&self) {
        fence(Ordering::SeqCst);
        if self.shared.asleep.load(Ordering::Relaxed) {
            let mut woken = self.shared.woken();
            *woken = true;
            self.shared.wake.notify_one();
        }
    }
}

fn run(shared: Weak<Shared>) {
    let mut idle = 0;
    loop {
        std::thread::sleep(TICK);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.sweep() {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        // Marked before the last look: a session parking after that look sees the mark.
        *shared.woken() = false;
        shared.asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !shared.sweep() {
            let woken = shared.woken();
            if !*woken {
                drop(shared.wake.wait_timeout(woken, SLEEP));
            }
        }
        shared.asleep.store(false, Ordering::SeqCst);
        idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A session whose loop is parked from `since` and handed over once `GRACE` passed.
    struct Fake {
        since: Mutex<Option<Instant>>,
        taken: AtomicUsize,
    }

    impl Watched for Fake {
        fn check(&self, now: Instant) -> Check {
            let mut since = self.since.lock().unwrap();
            match *since {
                Some(t) if now >= t + GRACE => {
                    *since = None;
                    self.taken.fetch_add(1, Ordering::SeqCst);
                    Check::Parked
                }
                Some(_) => Check::Parked,
                None => Check::Running,
            }
        }
    }

    fn wait_taken(fake: &Fake, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while fake.taken.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the parked loop was never taken over"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_loop_parked_for_a_grace_is_taken_over_even_after_the_watchdog_slept() {
        let dog = Watchdog::default();
        let fake = Arc::new(Fake {
            since: Mutex::new(None),
            taken: AtomicUsize::new(0),
        });
        dog.watch(fake.clone());
        *fake.since.lock().unwrap() = Some(Instant::now());
        dog.serving();
        wait_taken(&fake, 1);
        // Long enough without a parked loop for the thread to sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dog.shared.asleep.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the watchdog never slept");
            std::thread::sleep(Duration::from_millis(5));
        }
        *fake.since.lock().unwrap() = Some(Instant::now());
        let t = Instant::now();
        dog.serving();
        wait_taken(&fake, 2);
        assert!(
            t.elapsed() < SLEEP,
            "woken by `serving`, not by its own timeout: {:?}",
            t.elapsed()
        );
    }
}
