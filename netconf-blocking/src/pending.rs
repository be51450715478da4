//! A session's requests waiting for their handler, served in arrival order by one thread at
//! a time.
//!
//! Requests that arrive together (a client pipelining) are handed to one handler thread as
//! a queue, which runs them one after another: waking a thread per request costs more than a
//! small handler. A handler may block, though, and the requests behind it must not wait
//! for it: whatever has waited longer than a short grace is taken out by the session's
//! thread and run on threads of their own ([`Pending::overdue`]), so no request waits for
//! another's handler longer than that.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a request may wait behind another's handler before it gets a thread of its own.
pub(crate) const GRACE: Duration = Duration::from_millis(2);

pub(crate) struct Pending<J> {
    queue: Mutex<Queue<J>>,
}

struct Queue<J> {
    jobs: VecDeque<(Instant, J)>,
    /// A thread is serving the queue (it takes the next job when its handler returns).
    serving: bool,
}

impl<J> Default for Pending<J> {
    fn default() -> Self {
        Pending {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                serving: false,
            }),
        }
    }
}

impl<J> Pending<J> {
    fn lock(&self) -> MutexGuard<'_, Queue<J>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job; true if no thread serves the queue, so the caller must start one (that
    /// thread then calls [`Pending::next`] until it says stop).
    #[must_use]
    pub fn push(&self, job: J, now: Instant) -> bool {
        let mut q = self.lock();
        q.jobs.push_back((now, job));
        !std::mem::replace(&mut q.serving, true)
    }

    /// The serving thread's next job; `None` once the queue is empty, and from then on that
    /// thread no longer serves it (the next [`Pending::push`] asks for a new one).
    pub fn next(&self) -> Option<J> {
        let mut q = self.lock();
        match q.jobs.pop_front() {
            Some((_, job)) => Some(job),
            None => {
                q.serving = false;
                None
            }
        }
    }

    /// Takes out the jobs that have waited `GRACE` or longer (the serving thread is held by
    /// a slow handler), for threads of their own; and when the next one will be overdue.
    pub fn overdue(&self, now: Instant) -> (Vec<J>, Option<Instant>) {
        let mut q = self.lock();
        let mut overdue = Vec::new();
        while q
            .jobs
            .front()
            .is_some_and(|(since, _)| now >= *since + GRACE)
        {
            overdue.extend(q.jobs.pop_front().map(|(_, job)| job));
        }
        let next = q.jobs.front().map(|(since, _)| *since + GRACE);
        (overdue, next)
    }

    /// When the oldest waiting job will be overdue.
    pub fn due_at(&self) -> Option<Instant> {
        self.lock().jobs.front().map(|(since, _)| *since + GRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_serves_a_queue_until_it_is_empty() {
        let p = Pending::default();
        let t = Instant::now();
        assert!(p.push(1, t), "the first job asks for a thread");
        assert!(!p.push(2, t), "the queue is served already");
        assert_eq!(p.next(), Some(1));
        assert!(!p.push(3, t), "still served while its handler runs");
        assert_eq!(p.next(), Some(2));
        assert_eq!(p.next(), Some(3));
        assert_eq!(p.next(), None);
        assert!(p.push(4, t), "served no more: a new thread");
    }

    #[test]
    fn jobs_behind_a_slow_handler_are_taken_out_after_the_grace() {
        let p = Pending::default();
        let t = Instant::now();
        assert!(p.push("slow", t));
        assert_eq!(p.next(), Some("slow")); // its handler now blocks
        let _ = p.push("a", t);
        let _ = p.push("b", t + GRACE / 2);
        assert_eq!(p.overdue(t), (vec![], Some(t + GRACE)));
        assert_eq!(
            p.overdue(t + GRACE),
            (vec!["a"], Some(t + GRACE / 2 + GRACE))
        );
        assert_eq!(p.due_at(), Some(t + GRACE / 2 + GRACE));
        assert_eq!(p.overdue(t + 2 * GRACE), (vec!["b"], None));
        assert_eq!(p.due_at(), None);
        // The slow handler returns: nothing left for it.
        assert_eq!(p.next(), None);
    }
}
