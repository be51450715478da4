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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::pending::GRACE;

/// A session the watchdog looks at.
pub(crate) trait Watched: Send + Sync {
    /// A cheap look (a few atomic loads): the watchdog makes it for every session it
    /// watches, every tick, with its list locked.
    fn check(&self, now: Instant) -> Check;
    /// Hands the loop to a thread of its own if it is still parked since a grace before
    /// `now` (after [`Check::Overdue`], without the list's lock).
    fn hand_over(&self, now: Instant);
}

/// What [`Watched::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The loop runs (reads, or waits to).
    Running,
    /// The loop is parked: its thread runs handlers.
    Parked,
    /// The loop has been parked for a grace: hand it over.
    Overdue,
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
    /// The thread is started, or being started.
    started: AtomicBool,
    /// The thread was started (and runs until its server is gone).
    running: AtomicBool,
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

    /// Looks at every session once, hands over the overdue loops; whether any loop is
    /// parked. Forgets ended sessions.
    fn sweep(&self) -> bool {
        let now = Instant::now();
        let mut parked = false;
        let mut overdue = Vec::new();
        self.watched().retain(|session| match session.check(now) {
            Check::Running => true,
            Check::Parked => {
                parked = true;
                true
            }
            Check::Overdue => {
                parked = true;
                overdue.push(session.clone());
                true
            }
            Check::Gone => false,
        });
        // Without the list's lock: handing over starts a thread.
        for session in overdue {
            session.hand_over(now);
        }
        parked
    }
}

impl Watchdog {
    /// Watches `session` until it says it is gone. Starts the thread on first use (and
    /// again if it could not start before).
    pub fn watch(&self, session: Arc<dyn Watched>) {
        self.shared.watched().push(session);
        if !self.shared.started.swap(true, Ordering::SeqCst) {
            let shared = Arc::downgrade(&self.shared);
            let started = std::thread::Builder::new()
                .name("netconf-watchdog".into())
                .spawn(move || run(shared));
            match started {
                Ok(_) => self.shared.running.store(true, Ordering::SeqCst),
                Err(e) => {
                    // Handlers that block hold their session's loop until they return, until
                    // a later session starts the thread.
                    tracing::error!(error = %e, "cannot start the server's watchdog thread");
                    self.shared.started.store(false, Ordering::SeqCst);
                }
            }
        }
    }

    /// Whether the thread runs (it may have failed to start, for lack of threads).
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }

    /// A session's loop has just been parked to run handlers (its [`Watched::check`] says
    /// so from now on): wake the thread if it sleeps.
    pub fn serving(&self) {
        if self.shared.asleep.load(Ordering::SeqCst) {
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
        // Asleep until a session parks its loop. Marked before the last look (both
        // sequentially consistent: a session parking after that look sees the mark).
        *shared.woken() = false;
        shared.asleep.store(true, Ordering::SeqCst);
        loop {
            if shared.sweep() {
                break;
            }
            let woken = shared.woken();
            if *woken {
                break;
            }
            let (woken, _) = shared
                .wake
                .wait_timeout(woken, SLEEP)
                .unwrap_or_else(|p| p.into_inner());
            if *woken {
                break;
            }
            drop(woken);
            // Timed out: still asleep, unless the server is gone.
            if Arc::strong_count(&shared) == 1 {
                return;
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

    /// A session whose loop is parked from `since`, and handed over once a grace passed.
    #[derive(Default)]
    struct Fake {
        since: Mutex<Option<Instant>>,
        taken: AtomicUsize,
        looks: AtomicUsize,
    }

    impl Watched for Fake {
        fn check(&self, now: Instant) -> Check {
            self.looks.fetch_add(1, Ordering::SeqCst);
            match *self.since.lock().unwrap() {
                Some(t) if now >= t + GRACE => Check::Overdue,
                Some(_) => Check::Parked,
                None => Check::Running,
            }
        }

        fn hand_over(&self, _now: Instant) {
            if self.since.lock().unwrap().take().is_some() {
                self.taken.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Polls `condition` for up to 5 s.
    fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_loop_parked_for_a_grace_is_handed_over_even_after_the_watchdog_slept() {
        let dog = Watchdog::default();
        let fake = Arc::new(Fake::default());
        dog.watch(fake.clone());
        *fake.since.lock().unwrap() = Some(Instant::now());
        dog.serving();
        eventually("the parked loop was never handed over", || {
            fake.taken.load(Ordering::SeqCst) == 1
        });
        eventually("the watchdog never slept", || {
            dog.shared.asleep.load(Ordering::SeqCst)
        });
        *fake.since.lock().unwrap() = Some(Instant::now());
        let t = Instant::now();
        dog.serving();
        eventually("the parked loop was never handed over", || {
            fake.taken.load(Ordering::SeqCst) == 2
        });
        assert!(
            t.elapsed() < SLEEP,
            "woken by `serving`, not by its own timeout: {:?}",
            t.elapsed()
        );
    }

    /// Asleep, the watchdog looks once per `SLEEP`, not once per tick: it was found to
    /// wake 145 times a second on a server with nothing to watch (each timed-out sleep
    /// restarted the idle ticks).
    #[test]
    fn an_idle_watchdog_stays_asleep() {
        let dog = Watchdog::default();
        let fake = Arc::new(Fake::default());
        dog.watch(fake.clone());
        eventually("the watchdog never slept", || {
            dog.shared.asleep.load(Ordering::SeqCst)
        });
        let before = fake.looks.load(Ordering::SeqCst);
        std::thread::sleep(SLEEP * 2 + SLEEP / 2);
        let looks = fake.looks.load(Ordering::SeqCst) - before;
        assert!(looks <= 4, "{looks} looks in 2.5 s of sleep");
        assert!(dog.shared.asleep.load(Ordering::SeqCst));
    }
}
