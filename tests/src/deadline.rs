//! Deadlock guards for async tests, on either runtime: async-io's timer runs on a thread of
//! its own, so they work under tokio and smol alike. A guard only turns a hang into a
//! failure; it is never a timing assertion.

use std::future::Future;
use std::time::Duration;

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
