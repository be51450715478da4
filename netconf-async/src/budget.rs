//! How much a loop may do in one poll.
//!
//! Why: a peer that always has more (notifications that never stop, requests pipelined
//! without end over a fast link, a streamed answer whose source is always ready) would
//! otherwise keep a loop inside one poll for as long as it lasts: a caller in its turn at
//! the client's loop, or every other task on the loop's thread. tokio's cooperative budget
//! covers only tokio's own sockets; smol has none, and neither has a stream the caller
//! hands us.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The steps a loop may still take in the current poll: whoever polls sets it afresh, the
/// loop spends one per step and yields once none is left.
#[derive(Debug, Default)]
pub(crate) struct Budget(AtomicU32);

impl Budget {
    /// Spends a step, yielding first (which wakes the poller: the rest is its next poll's)
    /// if this poll has none left.
    pub async fn step(&self) {
        while !self.spend() {
            futures_lite::future::yield_now().await;
        }
    }

    /// Spends a step; `false` when none was left.
    fn spend(&self) -> bool {
        // Only the poller touches it (one poll at a time): no read-modify-write race.
        let left = self.0.load(Ordering::Relaxed);
        if left == 0 {
            return false;
        }
        self.0.store(left - 1, Ordering::Relaxed);
        true
    }

    pub fn set(&self, steps: u32) {
        self.0.store(steps, Ordering::Relaxed);
    }
}

/// A future given `steps` afresh at each poll.
pub(crate) struct Budgeted<F> {
    budget: Arc<Budget>,
    steps: u32,
    future: Pin<Box<F>>,
}

/// The future `make` builds around the budget it is to spend, given `steps` per poll.
pub(crate) fn budgeted<F: Future>(steps: u32, make: impl FnOnce(Arc<Budget>) -> F) -> Budgeted<F> {
    let budget = Arc::new(Budget::default());
    Budgeted {
        future: Box::pin(make(budget.clone())),
        budget,
        steps,
    }
}

impl<F: Future> Future for Budgeted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.budget.set(self.steps);
        self.future.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_loop_that_never_waits_takes_its_steps_per_poll() {
        let steps = Arc::new(AtomicUsize::new(0));
        let taken = steps.clone();
        let mut future = budgeted(3, |budget| async move {
            loop {
                budget.step().await;
                taken.fetch_add(1, Ordering::SeqCst);
            }
        });
        for poll in 1..=4 {
            let polled =
                futures_lite::future::block_on(futures_lite::future::poll_once(&mut future));
            assert!(polled.is_none());
            assert_eq!(steps.load(Ordering::SeqCst), 3 * poll);
        }
    }
}
