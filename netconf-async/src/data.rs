//! A streamed reply's content, for the caller: a futures-io `AsyncRead` and a `Stream` of
//! pieces over the core's [`DataBuffer`], which the driver fills through [`StreamSink`].
//! Reading makes room, and making room wakes the driver, which stops reading the transport
//! while a window's worth waits here: memory stays bounded whatever the reply's size.

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
    /// The end was handed to the reader.
    done: bool,
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

/// The caller's side: the content of one streamed reply, as it arrives.
///
/// Read it as bytes (`AsyncRead`) or as pieces (`Stream<Item = Result<Bytes, Error>>`);
/// either way it ends when the reply does, with the error if the reply failed midway (the
/// session ended, the peer stalled). Dropping it early discards the rest of the reply.
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
            done: false,
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

impl DataStream {
    /// Waits until the reply started (or ended without data, or failed).
    pub(crate) async fn started(&self) -> Result<(), Error> {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock();
            if s.buf.started() {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = s.buf.take_error() {
                s.done = true;
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
}

impl Stream for DataStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = self.0.lock();
        if let Some(piece) = s.buf.pop() {
            drop(s);
            self.made_room();
            return Poll::Ready(Some(Ok(piece)));
        }
        if s.done {
            return Poll::Ready(None);
        }
        match s.buf.take_end() {
            Some(end) => {
                s.done = true;
                Poll::Ready(end.err().map(Err))
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for DataStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut s = self.0.lock();
        let n = s.buf.read_into(out);
        if n > 0 {
            drop(s);
            self.made_room();
            return Poll::Ready(Ok(n));
        }
        if s.done {
            return Poll::Ready(Ok(0));
        }
        match s.buf.take_end() {
            Some(Ok(_)) => {
                s.done = true;
                Poll::Ready(Ok(0))
            }
            Some(Err(e)) => {
                s.done = true;
                Poll::Ready(Err(io::Error::other(e)))
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
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
