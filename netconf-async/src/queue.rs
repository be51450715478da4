//! A queue from many senders to one task: the client's commands (from every `Client`
//! handle to the connection driver), and each server session's notifications and kill
//! switch.
//!
//! `async_channel` did this job, but its receiver registered an event listener whenever it
//! waited (an allocation, a list and its lock), and polling it again took locks of its
//! own; for a small RPC that cost more than the rest of the loop's turn. Here a waiting
//! receiver leaves its waker in an [`AtomicWaker`], a sender wakes it only if it waits, and
//! polling an empty queue is one atomic load: the loops poll their queues many times a
//! turn (each `or` of futures polls every branch), 17 times per small RPC's round trip
//! over tokio (client and server), and each poll took the lock.
//!
//! The queue closes when the last sender is dropped (the receiver gets `None` after what
//! was sent) or when the receiver closes it or is dropped (sends then fail).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

struct State<T> {
    queue: VecDeque<T>,
    /// At most this many items wait; `None`: unbounded (the client's callers bound it).
    bound: Option<usize>,
    senders: usize,
    closed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The receiver's waker while it waits for a command.
    receiver: AtomicWaker,
    /// False only while the queue is empty and open with senders left: the receiver has
    /// nothing to take or learn. Changed only under the lock, read without it; a sender
    /// sets it before waking the receiver, which looks again after registering its waker.
    ready: AtomicBool,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A new queue without a bound: its first sender and its receiver.
pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    queue(None)
}

/// A new queue holding at most `bound` items (at least one).
pub(crate) fn bounded<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    queue(Some(bound.max(1)))
}

fn queue<T>(bound: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            bound,
            senders: 1,
            closed: false,
        }),
        receiver: AtomicWaker::new(),
        ready: AtomicBool::new(false),
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// Why an item was not queued; it comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    /// The queue holds its bound.
    Full(T),
    /// The receiver closed the queue or is gone.
    Closed(T),
}

/// Queues items.
pub(crate) struct Sender<T>(Arc<Shared<T>>);

impl<T> Sender<T> {
    /// Queues `item` without waiting.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.0.state();
            if state.closed {
                return Err(TrySendError::Closed(item));
            }
            if state.bound.is_some_and(|bound| state.queue.len() >= bound) {
                return Err(TrySendError::Full(item));
            }
            state.queue.push_back(item);
            self.0.ready.store(true, Ordering::Release);
        }
        self.0.receiver.wake();
        Ok(())
    }

    /// The receiver closed the queue or is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.state().closed
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.state().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.0.state();
            state.senders -= 1;
            if state.senders == 0 {
                self.0.ready.store(true, Ordering::Release);
            }
            state.senders == 0
        };
        if last {
            self.0.receiver.wake();
        }
    }
}

/// The receiving task's end.
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone (or the queue was closed) and
    /// nothing is left in it.
    pub(crate) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(ready) = self.ready() {
            return Poll::Ready(ready);
        }
        self.0.receiver.register(cx.waker());
        // An item sent between the check and the registration woke nobody: look again.
        match self.ready() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// An item, or `Some(None)` if none can come any more, or `None` to wait.
    fn ready(&self) -> Option<Option<T>> {
        if !self.0.ready.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.0.state();
        let ended = state.closed || state.senders == 0;
        let item = state.queue.pop_front();
        if state.queue.is_empty() && !ended {
            self.0.ready.store(false, Ordering::Release);
        }
        match item {
            Some(item) => Some(Some(item)),
            None if ended => Some(None),
            None => None,
        }
    }

    /// An item already queued.
    pub(crate) fn try_recv(&self) -> Option<T> {
        self.0.state().queue.pop_front()
    }

    /// Refuses further items; those already queued stay for [`Receiver::try_recv`].
    pub(crate) fn close(&self) {
        self.0.state().closed = true;
        self.0.ready.store(true, Ordering::Release);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let unanswered = {
            let mut state = self.0.state();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        // Items nobody will take (a command's caller learns of the end as it drops).
        drop(unanswered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn commands_arrive_in_order_and_wake_the_waiting_receiver() {
        let (tx, rx) = unbounded();
        let worker = std::thread::spawn(move || {
            futures_lite::future::block_on(async {
                let mut got = Vec::new();
                while let Some(n) = rx.recv().await {
                    got.push(n);
                }
                got
            })
        });
        for n in 0..1000 {
            tx.try_send(n).expect("open");
            if n % 100 == 0 {
                // Let the receiver catch up and wait, so that sends also wake it.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(tx);
        assert_eq!(
            worker.join().expect("receiver"),
            (0..1000).collect::<Vec<_>>()
        );
    }

    /// Senders on two threads race the receiver's check of its `ready` flag (read without
    /// the lock): each sends an item and waits for the receiver to acknowledge it before
    /// sending the next, so a lost wake-up leaves that sender waiting (its 10 s guard
    /// fails) instead of being rescued by later items or by the end of the queue.
    #[test]
    fn racing_senders_never_leave_the_receiver_asleep_with_items_queued() {
        const SENDERS: usize = 2;
        const EACH: usize = 20_000;
        let (tx, rx) = unbounded::<(usize, usize)>();
        let (acks, waits): (Vec<_>, Vec<_>) =
            (0..SENDERS).map(|_| std::sync::mpsc::channel()).unzip();
        let receiver = std::thread::spawn(move || {
            futures_lite::future::block_on(async {
                let mut seen = 0;
                while let Some((sender, n)) = rx.recv().await {
                    acks[sender].send(n).expect("the sender waits");
                    seen += 1;
                }
                seen
            })
        });
        let senders: Vec<_> = waits
            .into_iter()
            .enumerate()
            .map(|(s, acked)| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for n in 0..EACH {
                        tx.try_send((s, n)).expect("open");
                        let ack = acked
                            .recv_timeout(Duration::from_secs(10))
                            .unwrap_or_else(|_| panic!("item {n} of sender {s} never arrived"));
                        assert_eq!(ack, n);
                    }
                })
            })
            .collect();
        drop(tx);
        for sender in senders {
            sender.join().expect("every item was acknowledged");
        }
        assert_eq!(receiver.join().expect("receiver"), SENDERS * EACH);
    }

    #[test]
    fn a_receiver_that_closes_its_queue_takes_what_is_left_then_ends() {
        use futures_lite::future::{block_on, poll_once};
        let (tx, rx) = unbounded();
        // One poll each: what is there must be taken at once, without waiting for a wake.
        block_on(async {
            assert_eq!(poll_once(rx.recv()).await, None, "nothing sent yet");
            tx.try_send(1).expect("open");
            assert_eq!(poll_once(rx.recv()).await, Some(Some(1)));
            rx.close();
            assert_eq!(
                poll_once(rx.recv()).await,
                Some(None),
                "closed and empty: the end"
            );
        });
        drop(tx);
    }

    #[test]
    fn the_last_sender_gone_ends_the_queue_after_what_was_sent() {
        let (tx, rx) = unbounded();
        let tx2 = tx.clone();
        tx.try_send(1).expect("open");
        drop(tx);
        tx2.try_send(2).expect("open");
        drop(tx2);
        futures_lite::future::block_on(async {
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(rx.recv().await, Some(2));
            assert_eq!(rx.recv().await, None);
        });
    }

    #[test]
    fn a_closed_or_dropped_receiver_refuses_commands() {
        let (tx, rx) = unbounded();
        tx.try_send(1).expect("open");
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), None);
        let (tx, rx) = unbounded::<u8>();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[test]
    fn a_bounded_queue_refuses_past_its_bound_until_taken_from() {
        let (tx, rx) = bounded(2);
        tx.try_send(1).expect("room");
        tx.try_send(2).expect("room");
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        tx.try_send(3).expect("room again");
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
    }
}
