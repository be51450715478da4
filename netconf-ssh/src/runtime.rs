//! The tokio runtime that owns SSH connections for callers that have none: the smol and
//! blocking adapters.
//!
//! russh is tokio-only, and its objects must stay on the runtime that created them
//! (dropping some of them outside one panics). The tokio adapter uses the caller's runtime;
//! the others use this one: a small multi-threaded runtime (at most two worker threads,
//! named `netconf-ssh`), started on first use and kept for the life of the process, shared
//! by every connection, like `async-compat`'s global runtime but ours, so its size and
//! thread names are known.
//!
//! * [`spawn`] runs a future (a connect, an accept) as a task there; its result can be
//!   awaited from any executor.
//! * [`run`] does the same and waits for it on the calling thread (blocking callers).
//! * [`block_on`] polls a future *on the calling thread* inside the runtime's context (its
//!   timers work, `tokio::spawn` lands there): what a blocking transport uses to read and
//!   write an [`SshStream`](crate::SshStream) without a hop through another thread. Unlike
//!   tokio's own `block_on` it does not refuse to run inside another runtime's thread; it
//!   does block that thread, which is the caller's choice when it calls a blocking API there.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::{Builder, Handle, Runtime};

static SHARED: OnceLock<Runtime> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// The shared runtime, started on first use. Fails only if its threads cannot be started.
pub fn shared() -> io::Result<&'static Handle> {
    if let Some(rt) = SHARED.get() {
        return Ok(rt.handle());
    }
    // One builder at a time: a runtime built in a race and then dropped would panic if the
    // loser happened to be inside an async context.
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = SHARED.get() {
        return Ok(rt.handle());
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 2));
    let rt = Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("netconf-ssh")
        .enable_all()
        .build()?;
    Ok(SHARED.get_or_init(|| rt).handle())
}

/// Runs `fut` as a task on the shared runtime; the result can be awaited from any
/// executor. A panic in the task is resumed in the caller.
pub async fn spawn<F>(fut: F) -> io::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = shared()?.spawn(fut);
    match task.await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(io::Error::other(
            "the netconf-ssh runtime cancelled the task",
        )),
    }
}

/// Runs `fut` as a task on the shared runtime and waits for it on the calling thread.
pub fn run<F>(fut: F) -> io::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    block_on(spawn(fut))?
}

/// Polls `fut` to completion on the calling thread, inside the shared runtime's context
/// (timers, `tokio::spawn`), parking the thread between wake-ups.
pub fn block_on<F: Future>(fut: F) -> io::Result<F::Output> {
    let _context = shared()?.enter();
    Ok(park_on(fut))
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn park_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        // A wake-up between the poll and here leaves a token: park returns at once.
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn timers_and_tasks_from_a_plain_thread() {
        let v = super::block_on(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            tokio::spawn(async { 7 }).await.unwrap()
        })
        .unwrap();
        assert_eq!(v, 7);
        assert_eq!(super::run(async { 8 }).unwrap(), 8);
    }

    #[test]
    fn usable_inside_another_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = rt.block_on(async { super::run(async { 9 }).unwrap() });
        assert_eq!(v, 9);
    }
}
