//! The threads a server's request handlers run on: one per running handler, reused once it
//! is done (starting a thread costs more than a small RPC), never waited for. A job never
//! waits for a free thread: with none idle, a new one starts, so a handler that never
//! returns holds only its own thread.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Workers {
    /// Threads waiting for a job, each by id with the sender of its queue. `None` ends it.
    idle: Mutex<Vec<(u64, Sender<Option<Job>>)>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
}

impl Workers {
    fn idle(&self) -> MutexGuard<'_, Vec<(u64, Sender<Option<Job>>)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` on an idle thread, or on a new one; fails if no thread can start (the
    /// system's limit on threads), dropping `job` (a caller that must not lose what the job
    /// holds keeps it elsewhere: see `Server::run_loop_elsewhere`).
    pub fn run(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut job: Job = Box::new(job);
        loop {
            let Some((_, worker)) = self.idle().pop() else {
                break;
            };
            match worker.send(Some(job)) {
                Ok(()) => return Ok(()),
                // That thread has just ended: try the next.
                Err(mpsc::SendError(returned)) => match returned {
                    Some(j) => job = j,
                    None => unreachable!("a job was sent"),
                },
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let workers = self.clone();
        let started = std::thread::Builder::new()
            .name("netconf-request".into())
            .spawn(move || workers.work(id, tx, rx, job));
        match started {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "cannot start a thread for a handler or a session's loop");
                Err(e)
            }
        }
    }

    fn work(&self, id: u64, tx: Sender<Option<Job>>, rx: mpsc::Receiver<Option<Job>>, job: Job) {
        let mut job = job;
        loop {
            job();
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            self.idle().push((id, tx.clone()));
            if self.stopping.load(Ordering::SeqCst) {
                // `stop` may have drained the idle list just before we joined it.
                let mut idle = self.idle();
                if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                    idle.swap_remove(at);
                    return;
                }
                drop(idle);
                // Taken off the list by `run` meanwhile: its job is on its way, and may be
                // a session's loop that nothing else would run (shutdown waits for it).
                match rx.recv() {
                    Ok(Some(next)) => {
                        job = next;
                        continue;
                    }
                    _ => return,
                }
            }
            let next = match rx.recv_timeout(IDLE) {
                Ok(next) => next,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let mut idle = self.idle();
                    if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                        idle.swap_remove(at);
                        return;
                    }
                    drop(idle);
                    // A job was handed to us just as we timed out: it is on its way.
                    rx.recv().ok().flatten()
                }
            };
            match next {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Ends the idle threads; busy ones end when their handler returns.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for (_, worker) in self.idle().drain(..) {
            let _ = worker.send(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// `stop` racing with `run` (a server shutting down while sessions still hand out
    /// requests): every job `run` accepted must run, whether it went to an idle thread that
    /// `stop` was just ending, to one that was just going idle, or to a new thread. A lost
    /// job would be a request never answered, or a session's loop that shutdown waits for
    /// for ever.
    #[test]
    fn every_job_run_accepts_runs_even_while_stopping() {
        for round in 0..500 {
            let workers = Arc::new(Workers::default());
            let ran = Arc::new(AtomicUsize::new(0));
            let accepted = Arc::new(AtomicUsize::new(0));
            let submit = |workers: &Arc<Workers>| {
                let ran = ran.clone();
                if workers
                    .run(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .is_ok()
                {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            };
            // Idle threads to hand jobs to, and to stop.
            for _ in 0..4 {
                submit(&workers);
            }
            std::thread::scope(|scope| {
                for _ in 0..3 {
                    let workers = workers.clone();
                    scope.spawn(move || {
                        for _ in 0..20 {
                            submit(&workers);
                        }
                    });
                }
                if round % 2 == 0 {
                    std::thread::yield_now();
                }
                workers.stop();
            });
            let give_up = Instant::now() + Duration::from_secs(10);
            while ran.load(Ordering::SeqCst) < accepted.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < give_up,
                    "round {round}: {} of {} accepted jobs ran",
                    ran.load(Ordering::SeqCst),
                    accepted.load(Ordering::SeqCst)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(
                accepted.load(Ordering::SeqCst),
                64,
                "no thread failed to start"
            );
        }
    }
}
