//! What an async runtime lends the loops: spawning, timers and TCP. Everything else (the
//! loops, the channels, the I/O on a stream) is runtime-neutral futures code.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed future, as runtimes take and give them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A way into a runtime from any thread: runs the function it is given where the
/// runtime's timers and sockets can be made (see [`Runtime::entry`]).
pub type Entry = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// What [`Listener::accept`] gives: a connection and its peer's address.
pub type Accepted<'a> =
    Pin<Box<dyn Future<Output = io::Result<(BoxStream, SocketAddr)>> + Send + 'a>>;

/// Any futures-io byte stream a session can run on (TCP, TLS's transport, an SSH channel,
/// a Unix socket...).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A stream the runtime made, boxed.
pub type BoxStream = Box<dyn AsyncStream>;

/// A bound TCP listener of the runtime.
pub trait Listener: Send + 'static {
    /// The next connection.
    fn accept(&mut self) -> Accepted<'_>;
}

/// An async runtime, as the loops need it. Implemented by `netconf-tokio` and
/// `netconf-smol`; a type, not a value, so that `Client<Tokio>` is a name.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(task: BoxFuture<()>);
    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> BoxFuture<()>;
    /// Opens a TCP connection (Nagle off).
    fn connect(host: String, port: u16) -> BoxFuture<io::Result<BoxStream>>;
    /// Binds a TCP listener.
    fn bind(addrs: Vec<SocketAddr>) -> BoxFuture<io::Result<(Box<dyn Listener>, SocketAddr)>>;
    /// Taken where a client session is made: how a caller, on any thread, enters this
    /// runtime to poll the session's loop itself (so that it writes its own request
    /// without waking the loop's task first). `None`: callers leave everything to the
    /// loop's task. The default runs the poll as it is, for runtimes whose timers and
    /// sockets work from any thread.
    fn entry() -> Option<Entry> {
        Some(Arc::new(|poll: &mut dyn FnMut()| poll()))
    }
    /// Runs an SSH step (russh is tokio-only): on the caller's tokio runtime, or on
    /// `netconf-ssh`'s shared one.
    #[cfg(feature = "ssh")]
    fn ssh<T: Send + 'static>(
        step: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<io::Result<T>>;
}

/// How a runtime takes a stream of its own kind (tokio's `AsyncRead`, futures-io's)
/// into the futures-io stream the loops run on: constructors taking a caller's stream
/// accept every `S` their runtime adopts, so `netconf_tokio::Client::from_stream` takes a
/// tokio stream and `netconf_smol::Client::from_stream` a futures-io one.
pub trait Adopt<S>: Runtime {
    /// `stream`, as the loops read and write it.
    fn adopt(stream: S) -> BoxStream;
}

/// Waits until `deadline`, or forever.
pub(crate) async fn sleep<R: Runtime>(deadline: Option<Instant>) {
    match deadline {
        Some(d) => R::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A loop's one timer, kept across its turns and set again only when it would ring too
/// late.
///
/// Why: a loop waits for its next deadline every turn, and the deadline moves with every
/// request (each has its own timeout). A timer made per turn cost an allocation and a
/// registration with the runtime's timer (async-io's reactor re-arms its timerfd and is
/// woken; tokio's wheel takes a lock) on every round trip. Deadlines mostly move later, so
/// a timer already set to ring before the new deadline is kept: it may ring early, which
/// costs the loop one turn that finds nothing due.
pub(crate) struct Alarm<R> {
    /// When the timer rings, and the timer.
    set: Option<(Instant, BoxFuture<()>)>,
    runtime: std::marker::PhantomData<R>,
}

impl<R: Runtime> Alarm<R> {
    pub fn new() -> Self {
        Alarm {
            set: None,
            runtime: std::marker::PhantomData,
        }
    }

    /// Completes at `deadline` or earlier (never later), or never (`None`).
    pub async fn ring_by(&mut self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let timer = match &mut self.set {
            Some((at, timer)) if *at <= deadline => timer,
            set => &mut set.insert((deadline, R::sleep_until(deadline))).1,
        };
        timer.await;
        // Rung: a finished timer must not be polled again.
        self.set = None;
    }
}

/// `f` when `enabled`, else a future that never completes (a disabled `select!` branch).
pub(crate) async fn when<T>(enabled: bool, f: impl Future<Output = T>) -> T {
    if enabled {
        f.await
    } else {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;
    use std::time::Duration;

    use futures_lite::future::{block_on, poll_once};

    static TIMERS: AtomicUsize = AtomicUsize::new(0);

    /// A runtime whose only part is a timer that counts how often it is made.
    struct Timers;

    impl Runtime for Timers {
        fn spawn(_: BoxFuture<()>) {
            unreachable!("only timers")
        }
        fn sleep_until(deadline: Instant) -> BoxFuture<()> {
            TIMERS.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::poll_fn(move |cx| {
                if Instant::now() >= deadline {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }))
        }
        fn connect(_: String, _: u16) -> BoxFuture<io::Result<BoxStream>> {
            unreachable!("only timers")
        }
        fn bind(_: Vec<SocketAddr>) -> BoxFuture<io::Result<(Box<dyn Listener>, SocketAddr)>> {
            unreachable!("only timers")
        }
        #[cfg(feature = "ssh")]
        fn ssh<T: Send + 'static>(
            _: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<io::Result<T>> {
            unreachable!("only timers")
        }
    }

    #[test]
    fn an_alarm_is_set_again_only_when_it_would_ring_too_late() {
        let made = || TIMERS.load(Ordering::SeqCst);
        let start = Instant::now();
        let at = |ms| Some(start + Duration::from_millis(ms));
        let mut alarm = Alarm::<Timers>::new();
        assert!(block_on(poll_once(alarm.ring_by(at(200)))).is_none());
        assert_eq!(made(), 1);
        // Later deadlines (the next request's) keep it.
        assert!(block_on(poll_once(alarm.ring_by(at(300)))).is_none());
        assert!(block_on(poll_once(alarm.ring_by(at(400)))).is_none());
        assert_eq!(made(), 1);
        // An earlier one (a short timeout) sets it again.
        assert!(block_on(poll_once(alarm.ring_by(at(20)))).is_none());
        assert_eq!(made(), 2);
        // Waiting for a later deadline, it rings at the earlier one: early, never late.
        block_on(alarm.ring_by(at(10_000)));
        let rang = start.elapsed();
        assert!(rang >= Duration::from_millis(20), "rang at {rang:?}");
        assert!(rang < Duration::from_secs(5), "rang at {rang:?}");
        assert_eq!(made(), 2);
        // Rung, it is set afresh.
        assert!(block_on(poll_once(alarm.ring_by(at(10_000)))).is_none());
        assert_eq!(made(), 3);
        // No deadline: it never rings.
        assert!(block_on(poll_once(alarm.ring_by(None))).is_none());
    }
}
