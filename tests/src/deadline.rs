//! Deadlock guards for blocking tests ([`with_deadline`]) and async ones, on either runtime:
//! async-io's timer runs on a thread of its own, so they work under tokio and smol alike. A
//! guard only turns a hang into a failure; it is never a timing assertion.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `body` on its own thread and fails the test if it has not finished within `secs`
/// seconds: a hang becomes a failure, not a stuck test run. A panic in `body` is the
/// test's own.
pub fn with_deadline<T: Send + 'static>(secs: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let value = body();
        let _ = done_tx.send(());
        value
    });
    match done_rx.recv_timeout(Duration::from_secs(secs)) {
        // Disconnected: the body panicked; join to re-raise its panic.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: the test body did not finish within {secs} s")
        }
    }
}

/// `Some(fut`'s output`)`, or `None` if it takes longer than `limit` (`fut` is dropped).
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// `fut`'s output, or a panic naming `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    timeout(limit, fut)
        .await
        .unwrap_or_else(|| panic!("deadlock guard: {what} did not finish within {limit:?}"))
}
