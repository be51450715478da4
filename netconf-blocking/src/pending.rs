//! A session's requests waiting for their handler, served in arrival order by one thread at
//! a time.
//!
//! Requests that arrive together (a client pipelining) are run one after another by the
//! thread that read them, the session's loop: handing them to another thread costs more
//! than a small handler. A handler may block, though, and the requests behind it must not
//! wait for it: the server's watchdog then hands the loop to another thread, which takes
//! out whatever has waited longer than a short grace and runs it on a thread of its own
//! ([`Pending::overdue`]), so no request waits for another's handler longer than that.
//!
//! The serving thread also holds its replies back while the next request is already
//! waiting, and writes them together once the queue is empty: one system call for a run of
//! replies instead of one each. The same grace bounds that: a reply held for longer (the
//! next handler blocks) is written by the session's loop ([`Pending::overdue`] says so).

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
    /// Since when the serving thread holds replies back unwritten.
    held: Option<Instant>,
}

impl<J> Default for Pending<J> {
    fn default() -> Self {
        Pending {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                serving: false,
                held: None,
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

    /// Whether the serving thread may hold its reply back (true), because the next request
    /// waits already and it runs that next; or must write it now (false; always when not
    /// `may_hold`, which the writer's backlog decides). Holding starts the grace of the held
    /// replies; writing ends it.
    pub fn hold_reply(&self, now: Instant, may_hold: bool) -> bool {
        let mut q = self.lock();
        if q.jobs.is_empty() || !may_hold {
            q.held = None;
            false
        } else {
            q.held.get_or_insert(now);
            true
        }
    }

    /// Takes out the jobs that have waited `GRACE` or longer (the serving thread is held by
    /// a slow handler), for threads of their own; and whether replies have been held back
    /// that long (the session's thread must have them written).
    pub fn overdue(&self, now: Instant) -> (Vec<J>, bool) {
        let mut q = self.lock();
        let mut overdue = Vec::new();
        while q
            .jobs
            .front()
            .is_some_and(|(since, _)| now >= *since + GRACE)
        {
            overdue.extend(q.jobs.pop_front().map(|(_, job)| job));
        }
        let held_too_long = q.held.is_some_and(|since| now >= since + GRACE);
        if held_too_long {
            q.held = None;
        }
        (overdue, held_too_long)
    }

    /// When the oldest waiting job, or the oldest reply held back, will be overdue.
    pub fn due_at(&self) -> Option<Instant> {
        let q = self.lock();
        let job = q.jobs.front().map(|(since, _)| *since + GRACE);
        let held = q.held.map(|since| since + GRACE);
        job.into_iter().chain(held).min()
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
        assert_eq!(p.due_at(), Some(t + GRACE));
        assert_eq!(p.overdue(t), (vec![], false));
        assert_eq!(p.overdue(t + GRACE), (vec!["a"], false));
        assert_eq!(p.due_at(), Some(t + GRACE / 2 + GRACE));
        assert_eq!(p.overdue(t + 2 * GRACE), (vec!["b"], false));
        assert_eq!(p.due_at(), None);
        // The slow handler returns: nothing left for it.
        assert_eq!(p.next(), None);
    }

    #[test]
    fn replies_are_held_only_while_a_request_waits_and_at_most_the_grace() {
        let p = Pending::default();
        let t = Instant::now();
        assert!(p.push(1, t));
        assert_eq!(p.next(), Some(1));
        assert!(!p.hold_reply(t, true), "nothing waits: the reply goes now");
        assert_eq!(p.due_at(), None);
        let _ = p.push(2, t);
        let _ = p.push(3, t);
        assert_eq!(p.next(), Some(2));
        assert!(p.hold_reply(t, true), "3 waits: 2's reply may wait for it");
        assert_eq!(p.next(), Some(3)); // its handler now blocks
        assert_eq!(p.due_at(), Some(t + GRACE), "the held reply is due");
        assert_eq!(p.overdue(t + GRACE / 2), (vec![], false));
        assert_eq!(
            p.overdue(t + GRACE),
            (vec![], true),
            "written by the session"
        );
        assert_eq!(p.due_at(), None, "once");
        assert!(!p.hold_reply(t + 2 * GRACE, true), "3's reply goes at once");
        assert_eq!(p.next(), None);
    }
}
