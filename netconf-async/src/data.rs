//! A streamed reply's content, for the caller: a futures-io `AsyncRead` (and with feature
//! `tokio` a tokio one) and a `Stream` of pieces over the core's [`DataBuffer`], which the
//! driver fills through [`StreamSink`]. Reading makes room, and making room wakes the
//! driver, which stops reading the transport while a window's worth waits here: memory
//! stays bounded whatever the reply's size.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use async_channel::Sender;
use bytes::Bytes;
use futures_io::AsyncRead;
use futures_lite::Stream;
use netconf_proto::client::{DataBuffer, DataSink};
use netconf_proto::{Error, RpcReply};

struct State {
    buf: DataBuffer,
    /// The reader waiting for content (or for the reply to start).
    waker: Option<Waker>,
    /// What the reader has been told of the reply's end.
    told: Told,
}

/// How far the reader has been told of the reply's end.
enum Told {
    Nothing,
    /// The reply is complete and the reader knows.
    Done,
    /// The reply failed and the reader was told (with the [`Error`] itself, once): later
    /// reads fail alike, and the `Stream` has ended.
    Failed(io::ErrorKind, String),
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the driver when the reader made room.
    room: Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_reader(state: &mut State) {
        if let Some(w) = state.waker.take() {
            w.wake();
        }
    }
}

/// The driver's side: where the core hands the content.
pub(crate) struct StreamSink(Arc<Shared>);

/// The content of one streamed reply's `<data>` as it arrives (see
/// [`Client::call_streamed`](crate::Client::call_streamed)): the XML inside `<data>`, the
/// envelope stripped.
///
/// Two ways to consume it, which may be mixed:
/// - as bytes: a futures-io [`AsyncRead`] (`futures::io::copy` it to a file, feed it to an
///   async XML parser), and with this crate's feature `tokio` (on in `netconf-tokio`) a
///   `tokio::io::AsyncRead` as well; the end of the reply reads as `Ok(0)`;
/// - as pieces: a [`Stream`] of `Result<Bytes, Error>` (`StreamExt::next`), each piece as
///   it came off the wire (its size follows the server's chunks and our reads) and valid
///   UTF-8 on its own; the end of the reply is the end of the stream.
///
/// If the reply fails before its end (the session ended, the server stalled or failed
/// midway), the stream yields the [`Error`] and ends; a read fails with an [`io::Error`]
/// whose inner error ([`io::Error::get_ref`]) is the [`Error`] and whose kind tells a
/// timeout (`TimedOut`) from the end of the session (`UnexpectedEof`), and later reads fail
/// alike: a truncated reply never looks complete.
///
/// Memory stays bounded by [`ClientOptions::stream_window`]: while that much waits unread
/// here, the session reads nothing more from the transport, so replies to other requests
/// and notifications, which come after this reply on the wire, wait too: a task must not
/// wait for those while it holds this stream unread. Dropping the stream before its end
/// discards the rest of the reply as it arrives; the session goes on.
///
/// [`ClientOptions::stream_window`]: netconf_proto::client::ClientOptions::stream_window
pub struct DataStream(Arc<Shared>);

impl std::fmt::Debug for DataStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataStream")
            .field("waiting", &self.0.lock().buf.backlog())
            .finish_non_exhaustive()
    }
}

/// A sink and its stream.
pub(crate) fn channel(room: Sender<()>) -> (StreamSink, DataStream) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: DataBuffer::new(),
            waker: None,
            told: Told::Nothing,
        }),
        room,
    });
    (StreamSink(shared.clone()), DataStream(shared))
}

impl DataSink for StreamSink {
    fn start(&mut self) {
        let mut s = self.0.lock();
        s.buf.start();
        Shared::wake_reader(&mut s);
    }

    fn data(&mut self, data: Bytes) -> bool {
        let mut s = self.0.lock();
        let taken = s.buf.push(data);
        Shared::wake_reader(&mut s);
        taken
    }

    fn end(&mut self, result: Result<Option<RpcReply>, Error>) {
        let mut s = self.0.lock();
        s.buf.end(result);
        Shared::wake_reader(&mut s);
    }

    fn backlog(&self) -> usize {
        self.0.lock().buf.backlog()
    }
}

/// What a poll for content found.
enum Took<T> {
    Content(T),
    End,
    Failed(Error),
    /// Failed before, told already.
    FailedAgain(io::Error),
}

impl DataStream {
    /// Waits until the reply started (or ended without data, or failed).
    pub(crate) async fn started(&self) -> Result<(), Error> {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock();
            if s.buf.started() {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = s.buf.take_error() {
                s.told = Told::Failed(io_kind(&e), e.to_string());
                return Poll::Ready(Err(e));
            }
            if s.buf.has_ended() {
                return Poll::Ready(Ok(()));
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Bytes received and not read yet.
    pub fn waiting(&self) -> usize {
        self.0.lock().buf.backlog()
    }

    fn made_room(&self) {
        let _ = self.0.room.try_send(());
    }

    /// Takes content with `take`, or the end, or registers the reader's waker.
    fn poll_take<T>(
        &self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut DataBuffer) -> Option<T>,
    ) -> Poll<Took<T>> {
        let mut s = self.0.lock();
        match &s.told {
            Told::Nothing => {}
            Told::Done => return Poll::Ready(Took::End),
            Told::Failed(kind, what) => {
                return Poll::Ready(Took::FailedAgain(io::Error::new(*kind, what.clone())))
            }
        }
        if let Some(got) = take(&mut s.buf) {
            drop(s);
            self.made_room();
            return Poll::Ready(Took::Content(got));
        }
        match s.buf.take_end() {
            Some(Ok(_)) => {
                s.told = Told::Done;
                Poll::Ready(Took::End)
            }
            Some(Err(e)) => {
                s.told = Told::Failed(io_kind(&e), e.to_string());
                Poll::Ready(Took::Failed(e))
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Fills `out` with what waits (some, or the end, or the failure).
    fn poll_fill(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let took = self.poll_take(cx, |buf| Some(buf.read_into(out)).filter(|&n| n > 0));
        took.map(|took| match took {
            Took::Content(n) => Ok(n),
            Took::End => Ok(0),
            Took::Failed(e) => Err(io::Error::new(io_kind(&e), e)),
            Took::FailedAgain(e) => Err(e),
        })
    }
}

/// The kind of a failed reply as a reader's error: a timeout, the end of the session, or
/// something else.
fn io_kind(e: &Error) -> io::ErrorKind {
    match e {
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        Error::Io(io) => io.kind(),
        Error::Closed(_) => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::Other,
    }
}

impl Stream for DataStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_take(cx, DataBuffer::pop).map(|took| match took {
            Took::Content(piece) => Some(Ok(piece)),
            Took::Failed(e) => Some(Err(e)),
            Took::End | Took::FailedAgain(_) => None,
        })
    }
}

impl AsyncRead for DataStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_fill(cx, out)
    }
}

/// The same bytes for tokio's I/O (`tokio::io::copy`, `AsyncReadExt::read_to_end`).
#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for DataStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Only as much of `out` is initialised as content waits (once per buffer: a
        // `ReadBuf` remembers what it initialised).
        let want = out.remaining().min(self.waiting().max(1));
        let n = std::task::ready!(self.poll_fill(cx, out.initialize_unfilled_to(want)))?;
        out.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Drop for DataStream {
    fn drop(&mut self) {
        // The rest is discarded: the sink refuses more, the core cancels the RPC, and the
        // driver, woken, reads on.
        self.0.lock().buf.close();
        self.made_room();
    }
}
