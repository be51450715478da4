//! The async client's driver takes every command queued meanwhile in one turn (up to its
//! batch limit), so requests pipelined together leave in one write, not one write each. On
//! each async runtime (tokio and smol), over a real loopback TCP connection in plaintext
//! (`Client::from_stream` and `Server::serve_stream` with the runtime's own `TcpStream`):
//! the client's stream is wrapped in [`Counted`], which counts the writes that took bytes.
//! After the hello exchange, 32 calls are made at once and must leave in clearly fewer
//! writes than requests.
//!
//! The driver runs on its own task: woken by the first call's command, it may take what is
//! queued by then and write it while the other calls are still queueing theirs (measured
//! on a 2-core machine, without the gate below: 1 write most runs, up to 7 now and then).
//! So that the thread scheduling cannot split the batch, [`Counted`] holds the client's
//! writes back (its gate) until every call has queued its command: the driver then takes
//! whatever it had before the gate opened in one turn and everything else in the next, 1
//! or 2 writes; a driver taking one command per turn writes each request separately (32).
//!
//! Every test runs under a deadlock guard; none measures time.

use netconf_tests::deadline::within;
use std::future::Future;
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use netconf_async::adapter::operations::{Datastore, Filter, GetConfig};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::{Reply, Request};
use netconf_async::{Adopt, Client, Runtime, Server};
use netconf_smol::Smol;
use netconf_tokio::Tokio;

netconf_tests::on_each_runtime!(calls_queued_together_leave_in_few_writes);

/// The deadlock guard of a test.
const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:write-batching";

/// How many calls are made at once.
const CALLS: usize = 32;

/// The most writes the [`CALLS`] requests may take. The batching driver takes 1 or 2 (see
/// the module's docs); one command per driver turn takes [`CALLS`]. A quarter of that
/// leaves slack (a driver that takes a few commands per turn still passes) and fails
/// whenever most requests leave alone.
const MAX_WRITES: usize = CALLS / 4;

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    within(GUARD, "the test", body).await
}

/// A step of a test: a deadlock guard of a few seconds.
async fn step<F: Future>(what: &str, fut: F) -> F::Output {
    within(Duration::from_secs(5), what, fut).await
}

/// Runs `task` on the runtime at once; completes with its output (a task that panicked
/// fails the test here).
fn spawn<R: Runtime, T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (done, finished) = ::smol::channel::bounded(1);
    R::spawn(Box::pin(async move {
        let _ = done.send(task.await).await;
    }));
    async move { finished.recv().await.expect("the task panicked") }
}

/// Every future of `futures`, polled together (each poll polls every unfinished one, in
/// order): their outputs, in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *output = Some(out),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

// ---------------------------------------------------------------------------------------------
// The counting stream

/// The writes a [`Counted`] stream made (calls of `poll_write` / `poll_write_vectored` that
/// wrote bytes, and how many bytes), and a gate that holds them back while closed.
#[derive(Debug, Default)]
struct Writes {
    calls: AtomicUsize,
    bytes: AtomicUsize,
    closed: AtomicBool,
    waiting: Mutex<Option<Waker>>,
}

impl Writes {
    /// Ready once the gate is open; else the writer waits for [`Writes::open`].
    fn poll_gate(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.closed.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.waiting.lock().unwrap() = Some(cx.waker().clone());
        // Opened meanwhile: the waker stored may never be woken.
        if self.closed.load(Ordering::SeqCst) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Holds the writes back from now on.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Lets the writes through, and the writer waiting at the gate on.
    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        if let Some(waker) = self.waiting.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn record(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = *written {
            if n > 0 {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.bytes.fetch_add(n, Ordering::SeqCst);
            }
        }
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::SeqCst);
        self.bytes.store(0, Ordering::SeqCst);
    }

    /// (writes, bytes) so far.
    fn get(&self) -> (usize, usize) {
        (
            self.calls.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

/// A stream that delegates everything to `inner`, counting its writes in `writes` and
/// holding them back while its gate is closed: as a tokio stream when `inner` is one, as a
/// futures-io stream when `inner` is one.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    writes: Arc<Writes>,
}

impl<S: ::tokio::io::AsyncRead + Unpin> ::tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ::tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: ::tokio::io::AsyncWrite + Unpin> ::tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.writes.poll_gate(cx));
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.writes.record(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.writes.poll_gate(cx));
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.writes.record(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: futures_lite::AsyncRead + Unpin> futures_lite::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: futures_lite::AsyncWrite + Unpin> futures_lite::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.writes.poll_gate(cx));
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.writes.record(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.writes.poll_gate(cx));
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.writes.record(&written);
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The runtimes' TCP streams

/// A runtime's own TCP stream type, which its `from_stream` and `serve_stream` take.
trait Loopback: Runtime + Sized {
    type Tcp: Send + 'static;
    /// Both ends of a loopback TCP connection (Nagle off, as the adapters' own connections):
    /// (accepted, dialled).
    async fn tcp_pair() -> (Self::Tcp, Self::Tcp);
}

impl Loopback for Tokio {
    type Tcp = ::tokio::net::TcpStream;

    async fn tcp_pair() -> (Self::Tcp, Self::Tcp) {
        let listener = ::tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (accepted, dialled) =
            ::tokio::join!(listener.accept(), ::tokio::net::TcpStream::connect(addr));
        let ((accepted, _), dialled) = (accepted.expect("accept"), dialled.expect("connect"));
        accepted.set_nodelay(true).expect("nodelay");
        dialled.set_nodelay(true).expect("nodelay");
        (accepted, dialled)
    }
}

impl Loopback for Smol {
    type Tcp = ::smol::net::TcpStream;

    async fn tcp_pair() -> (Self::Tcp, Self::Tcp) {
        let listener = ::smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (accepted, dialled) =
            futures_lite::future::zip(listener.accept(), ::smol::net::TcpStream::connect(addr))
                .await;
        let ((accepted, _), dialled) = (accepted.expect("accept"), dialled.expect("connect"));
        accepted.set_nodelay(true).expect("nodelay");
        dialled.set_nodelay(true).expect("nodelay");
        (accepted, dialled)
    }
}

// ---------------------------------------------------------------------------------------------
// The test

/// The filter of call `i`: `<item><n>i</n></item>`, which the server echoes as its data.
fn item(i: usize) -> String {
    format!("<item xmlns=\"{NS}\"><n>{i}</n></item>")
}

/// Answers a get-config with its filter's content (the `<item>` of [`item`]).
async fn echo(request: Request, _info: SessionInfo) -> Reply {
    match request.body.child_text("n") {
        Some(n) => Reply::data(format!("<item xmlns=\"{NS}\"><n>{n}</n></item>")).unwrap(),
        None => Reply::Ok,
    }
}

/// [`CALLS`] calls queued together leave in at most [`MAX_WRITES`] writes (they would take
/// one each if the driver took one command per turn), and each gets its own reply.
async fn calls_queued_together_leave_in_few_writes<R>()
where
    R: Loopback + Adopt<R::Tcp> + Adopt<Counted<R::Tcp>>,
{
    let server = Server::<R>::new(ServerOptions::new(), echo);
    let (accepted, dialled) = step("the TCP connection", R::tcp_pair()).await;
    let serving = spawn::<R, _>({
        let server = server.clone();
        async move { server.serve_stream(accepted, None, None).await }
    });
    let writes = Arc::new(Writes::default());
    let counted = Counted {
        inner: dialled,
        writes: writes.clone(),
    };
    let client = step("the hello exchange", Client::<R>::from_stream(counted))
        .await
        .expect("hello");
    let (hello_writes, hello_bytes) = writes.get();
    assert!(
        hello_writes >= 1 && hello_bytes > 0,
        "the counter must see the client's hello"
    );
    writes.reset();
    writes.close();

    let requests: Vec<GetConfig> = (0..CALLS)
        .map(|i| {
            GetConfig::new(Datastore::Running).filter(Filter::subtree(item(i)).expect("filter"))
        })
        .collect();
    let replies = step("the calls", async {
        let mut calls = std::pin::pin!(join_all(requests.iter().map(|op| client.call(op))));
        // One poll of every call queues every command; only then may the driver write.
        assert!(futures_lite::future::poll_once(calls.as_mut())
            .await
            .is_none());
        writes.open();
        calls.await
    })
    .await;
    let (calls, bytes) = writes.get();
    eprintln!("{CALLS} requests left in {calls} writes ({bytes} bytes)");

    for (i, reply) in replies.into_iter().enumerate() {
        let data = reply.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(
            data.child_text("n"),
            Some(i.to_string()),
            "call {i}'s reply: {data:?}"
        );
    }
    // The counted writes carried the requests (each holds at least its filter).
    assert!(
        bytes >= (0..CALLS).map(|i| item(i).len()).sum::<usize>(),
        "only {bytes} bytes written for {CALLS} requests"
    );
    assert!(
        (1..=MAX_WRITES).contains(&calls),
        "{CALLS} requests queued together left in {calls} writes (at most {MAX_WRITES} \
         expected): does the driver still take every queued command in one turn?"
    );

    step("close", client.close()).await.expect("close");
    step("serve_stream returning", serving)
        .await
        .expect("serve_stream");
    step("shutdown", server.shutdown()).await;
}
