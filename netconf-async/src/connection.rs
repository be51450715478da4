//! The client's connection loop as a future that more than one task may poll: the driver
//! task, and a caller that has just queued a request.
//!
//! Why: with only the driver task polling, every request from a caller outside the
//! runtime (`block_on`) woke the driver task on another thread before a byte was written:
//! a thread hand-off per request on top of the one that brings the reply back, about a
//! third of a small RPC's time. Now a caller whose request finds nobody polling takes one
//! turn itself: the loop takes the request, encrypts it and writes it on the caller's own
//! thread, and the caller goes back to waiting for its reply. (The client lets only a
//! caller that waits alone do this: with requests in flight the driver runs soon anyway,
//! and writes all that was queued meanwhile at once.)
//!
//! A caller takes a single turn and never waits for the loop: the driver task stays the
//! one that reads, times out and answers, so a caller that stops being polled (a future
//! kept but not awaited) holds nobody up.
//!
//! Every turn polls the loop with the connection's own waker, never the poller's, so each
//! registration it leaves (the socket, a timer, the command queue) wakes the connection:
//! - while nobody polls, the wake goes to the driver task;
//! - during a turn it is only noted, and the turn's end hands it to the driver task, so a
//!   wake that arrives while a caller polls is never lost with the caller.
//!
//! Every poll has a [`Budget`] of steps (an event handled, a batch of commands taken): a
//! caller's is a few, the driver's more. A loop that spends it yields, so a peer whose
//! notifications never stop cannot keep a caller in its turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

use crate::budget::Budget;
use crate::runtime::{BoxFuture, Entry};

/// Someone holds a [`Turn`].
const POLLING: u8 = 1;
/// The connection was woken since the current turn began.
const NOTIFIED: u8 = 2;

/// Steps a caller's turn may take: its own command, and the little that arrived meanwhile.
const CALLER_STEPS: u32 = 4;
/// Steps the driver may take in one poll before it lets its thread's other tasks run: a
/// read is up to 64 KiB, so at most a megabyte or so is parsed between yields.
const DRIVER_STEPS: u32 = 16;

/// Where the connection's waker sends its wakes.
struct Signal {
    state: AtomicU8,
    /// The driver task's waker.
    driver: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let before = self.state.fetch_or(NOTIFIED, Ordering::SeqCst);
        if before & POLLING == 0 {
            self.driver.wake();
        }
    }
}

/// The loop, its waker, and how to enter its runtime.
pub(crate) struct Connection {
    signal: Arc<Signal>,
    /// `signal` as a waker, made once: registrations compare equal and are not renewed.
    waker: Waker,
    /// `None` once the loop has finished (or its driver was dropped).
    future: Mutex<Option<BoxFuture<()>>>,
    /// What the loop may spend in the current poll.
    budget: Arc<Budget>,
    /// How a caller's turn enters the runtime the loop belongs to (timers it makes must be
    /// that runtime's); `None`: callers take no turns.
    entry: Option<Entry>,
}

impl Connection {
    /// The connection of the loop `make` builds around the budget it is to spend.
    pub fn new(
        make: impl FnOnce(Arc<Budget>) -> BoxFuture<()>,
        entry: Option<Entry>,
    ) -> Arc<Connection> {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(0),
            driver: AtomicWaker::new(),
        });
        let budget = Arc::new(Budget::default());
        Arc::new(Connection {
            waker: Waker::from(signal.clone()),
            signal,
            future: Mutex::new(Some(make(budget.clone()))),
            budget,
            entry,
        })
    }

    /// The turn, if nobody holds it.
    fn try_turn(&self) -> Option<Turn<'_>> {
        let state = &self.signal.state;
        let mut now = state.load(Ordering::SeqCst);
        loop {
            if now & POLLING != 0 {
                return None;
            }
            match state.compare_exchange_weak(
                now,
                now | POLLING,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(Turn { connection: self }),
                Err(actual) => now = actual,
            }
        }
    }

    /// Runs `queue` (which hands the loop a command), then, if nobody else is polling the
    /// loop, polls it once on this thread so that the command is carried out at once.
    /// Otherwise whoever polls sees the command's wake.
    pub fn queue_and_poll<T>(&self, queue: impl FnOnce() -> T) -> T {
        let turn = self
            .entry
            .as_ref()
            .and_then(|entry| Some((entry, self.try_turn()?)));
        // Queued with the turn held, the command's wake is only noted: the driver task is
        // not woken for what this poll is about to do.
        let queued = queue();
        if let Some((entry, mut turn)) = turn {
            entry(&mut || {
                let _ = turn.poll(CALLER_STEPS);
            });
        }
        queued
    }

    /// Drops the loop where it stands (its driver was dropped): its waiters hear that the
    /// session is gone.
    fn abandon(&self) {
        let future = self
            .future
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(future);
    }
}

/// The right to poll the loop, held by one poller at a time. Ending it hands the wakes
/// that arrived during it to the driver task.
struct Turn<'a> {
    connection: &'a Connection,
}

impl Turn<'_> {
    /// Polls the loop once, letting it take up to `steps`; `Ready` once it has finished.
    fn poll(&mut self, steps: u32) -> Poll<()> {
        let connection = self.connection;
        // Whatever woke the connection before this poll, the poll sees.
        connection
            .signal
            .state
            .fetch_and(!NOTIFIED, Ordering::SeqCst);
        let mut slot = match connection.future.lock() {
            Ok(slot) => slot,
            // The loop panicked in an earlier turn: it cannot be resumed.
            Err(poisoned) => {
                let mut slot = poisoned.into_inner();
                *slot = None;
                slot
            }
        };
        let Some(future) = slot.as_mut() else {
            // Finished (or gone with a panic): the driver finishes too.
            connection.signal.driver.wake();
            return Poll::Ready(());
        };
        connection.budget.set(steps);
        let mut cx = Context::from_waker(&connection.waker);
        match future.as_mut().poll(&mut cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                *slot = None;
                // The driver task finishes too, if this was a caller's turn.
                connection.signal.driver.wake();
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let before = self
            .connection
            .signal
            .state
            .fetch_and(!(POLLING | NOTIFIED), Ordering::SeqCst);
        // A turn that ends in a panic (a bug in the loop, which is then gone with the
        // poisoned lock) wakes the driver too, or nothing would: it must finish.
        if before & NOTIFIED != 0 || std::thread::panicking() {
            self.connection.signal.driver.wake();
        }
    }
}

/// The connection's read loop as a future. Spawn it (or await it) on any executor; it
/// finishes when the session ends. Dropping it ends the session at once.
#[must_use = "the session makes no progress unless the driver runs"]
pub struct Driver {
    connection: Arc<Connection>,
}

impl Driver {
    pub(crate) fn new(connection: Arc<Connection>) -> Driver {
        Driver { connection }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let connection = &self.connection;
        connection.signal.driver.register(cx.waker());
        match connection.try_turn() {
            Some(mut turn) => turn.poll(DRIVER_STEPS),
            // A caller is taking its turn; its end wakes us if anything happened meanwhile.
            None => Poll::Pending,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.connection.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use crate::queue;

    fn inline() -> Option<Entry> {
        Some(Arc::new(|f: &mut dyn FnMut()| f()))
    }

    /// Joins the driver's thread, failing with `stalled` if it has not finished within
    /// `guard` (a deadlock guard only).
    fn join_within(runner: std::thread::JoinHandle<()>, guard: Duration, stalled: &str) {
        let give_up = std::time::Instant::now() + guard;
        while !runner.is_finished() {
            assert!(std::time::Instant::now() < give_up, "{stalled}");
            std::thread::sleep(Duration::from_millis(1));
        }
        runner.join().expect("driver");
    }

    /// A loop that counts the commands it takes, as the client's loop takes requests.
    fn counting(rx: queue::Receiver<u32>, taken: Arc<AtomicUsize>) -> BoxFuture<()> {
        Box::pin(async move {
            while rx.recv().await.is_some() {
                taken.fetch_add(1, Ordering::SeqCst);
            }
        })
    }

    #[test]
    fn a_callers_turn_carries_out_its_command_without_the_driver() {
        let (tx, rx) = queue::unbounded();
        let taken = Arc::new(AtomicUsize::new(0));
        let connection = Connection::new(|_| counting(rx, taken.clone()), inline());
        // No driver polls at all: the caller's own turn must take the command.
        connection.queue_and_poll(|| tx.try_send(1).expect("open"));
        assert_eq!(taken.load(Ordering::SeqCst), 1);
        connection.queue_and_poll(|| tx.try_send(2).expect("open"));
        assert_eq!(taken.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn without_an_entry_callers_only_queue() {
        let (tx, rx) = queue::unbounded();
        let taken = Arc::new(AtomicUsize::new(0));
        let connection = Connection::new(|_| counting(rx, taken.clone()), None);
        connection.queue_and_poll(|| tx.try_send(1).expect("open"));
        assert_eq!(taken.load(Ordering::SeqCst), 0);
        // The driver takes it.
        let driver = Driver::new(connection.clone());
        let runner = std::thread::spawn(move || futures_lite::future::block_on(driver));
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        while taken.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the driver took nothing"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(tx);
        runner.join().expect("driver");
    }

    /// Callers on many threads take turns while the driver runs on its own: every command
    /// is taken, none is lost to a wake that arrived during somebody else's turn, and the
    /// driver finishes once the last sender is gone.
    #[test]
    fn wakes_during_turns_reach_the_driver() {
        let (tx, rx) = queue::unbounded();
        let taken = Arc::new(AtomicUsize::new(0));
        let connection = Connection::new(|_| counting(rx, taken.clone()), inline());
        let driver = Driver::new(connection.clone());
        let runner = std::thread::spawn(move || futures_lite::future::block_on(driver));
        let callers: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                let connection = connection.clone();
                std::thread::spawn(move || {
                    for n in 0..5_000 {
                        if n % 2 == 0 {
                            connection.queue_and_poll(|| tx.try_send(t).expect("open"));
                        } else {
                            // A plain send: only the driver (or a turn) can take it.
                            tx.try_send(t).expect("open");
                        }
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().expect("caller");
        }
        drop(tx);
        // The driver must end once everything is taken.
        join_within(runner, Duration::from_secs(10), "the driver never finished");
        assert_eq!(taken.load(Ordering::SeqCst), 20_000);
    }

    /// A bug that panics in the loop during a caller's turn: the panic is the caller's, the
    /// loop is gone (its queue refuses), and the driver finishes rather than wait forever.
    #[test]
    fn a_panic_in_a_callers_turn_ends_the_driver() {
        let (tx, rx) = queue::unbounded::<u32>();
        let future: BoxFuture<()> = Box::pin(async move {
            while let Some(n) = rx.recv().await {
                assert_ne!(n, 99, "a bug in the loop");
            }
        });
        let connection = Connection::new(|_| future, inline());
        let driver = Driver::new(connection.clone());
        let runner = std::thread::spawn(move || futures_lite::future::block_on(driver));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connection.queue_and_poll(|| tx.try_send(99).expect("open"))
        }));
        assert!(caught.is_err(), "the panic reaches the caller");
        join_within(
            runner,
            Duration::from_secs(5),
            "the driver never finished after the loop panicked",
        );
        assert!(tx.try_send(1).is_err(), "the loop and its queue are gone");
    }

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A loop that, once started, never waits (a peer that always has more), spending its
    /// budget as the client's loop does: each poll takes only its steps, and the rest goes
    /// to the driver.
    #[test]
    fn a_loop_that_never_waits_takes_a_polls_steps_and_hands_the_rest_to_the_driver() {
        let (tx, rx) = queue::unbounded::<()>();
        let steps = Arc::new(AtomicUsize::new(0));
        let taken = steps.clone();
        let connection = Connection::new(
            |budget| {
                Box::pin(async move {
                    let _start = rx.recv().await;
                    loop {
                        budget.step().await;
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            },
            inline(),
        );
        let mut driver = Driver::new(connection.clone());
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
        assert_eq!(steps.load(Ordering::SeqCst), 0, "waiting to start");

        connection.queue_and_poll(|| tx.try_send(()).expect("open"));
        assert_eq!(steps.load(Ordering::SeqCst), CALLER_STEPS as usize);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the rest is the driver's"
        );

        assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
        assert_eq!(
            steps.load(Ordering::SeqCst),
            (CALLER_STEPS + DRIVER_STEPS) as usize
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2, "the driver is due again");
    }

    #[test]
    fn dropping_the_driver_drops_the_loop() {
        let (tx, rx) = queue::unbounded::<u32>();
        let taken = Arc::new(AtomicUsize::new(0));
        let connection = Connection::new(|_| counting(rx, taken), inline());
        drop(Driver::new(connection.clone()));
        // The loop held the receiver: with it gone, the queue refuses.
        assert!(tx.try_send(1).is_err());
    }
}
