//! Streamed replies on the client: the sink the core delivers a reply's content to, and the
//! [`DataReader`] the caller reads it from. Both share a [`DataBuffer`]; the sink is called
//! with the session's lock held, the reader takes only the buffer's own lock, so reading
//! content never waits for the session's thread decrypting the next buffer.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bytes::Bytes;
use netconf_proto::client::{DataBuffer, DataSink};
use netconf_proto::{Error, MessageId, RpcReply};

use crate::client::{Inner, LastHandle};
use crate::signal::Signal;

/// What the core's sink and the reader share.
#[derive(Default)]
pub(crate) struct StreamShared {
    buffer: Mutex<DataBuffer>,
    /// Content (or the end) arrived; paired with `buffer`.
    readable: Condvar,
    /// The reply began or ended; paired with the session's lock, which the sink is called
    /// under (the caller of `call_streamed` keeps the deadlines while it waits).
    pub(crate) begun: Signal,
}

impl StreamShared {
    pub(crate) fn buffer(&self) -> MutexGuard<'_, DataBuffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reply carries `<data>`, or is over (an rpc-error, `<ok/>`, a timeout).
    pub(crate) fn has_begun(&self) -> bool {
        let b = self.buffer();
        b.started() || b.is_finished()
    }
}

/// The core's end of a streamed reply.
pub(crate) struct StreamSink(Arc<StreamShared>);

impl StreamSink {
    pub(crate) fn new(shared: Arc<StreamShared>) -> Self {
        StreamSink(shared)
    }
}

impl DataSink for StreamSink {
    fn start(&mut self) {
        self.0.buffer().start();
        self.0.begun.notify_all();
    }

    fn data(&mut self, data: Bytes) -> bool {
        let taken = self.0.buffer().push(data);
        self.0.readable.notify_one();
        taken
    }

    fn end(&mut self, result: Result<Option<RpcReply>, Error>) {
        self.0.buffer().end(result);
        self.0.readable.notify_all();
        self.0.begun.notify_all();
    }

    fn backlog(&self) -> usize {
        self.0.buffer().backlog()
    }
}

/// The content of a streamed reply's `<data>` as it arrives (see
/// [`Client::call_streamed`](crate::Client::call_streamed)): the XML inside `<data>`, the
/// envelope stripped, in pieces that are each valid UTF-8.
///
/// Read it with [`std::io::Read`] (`io::copy` it to a file, feed it to an XML parser), or
/// piece by piece as [`Bytes`] with [`DataReader::next_piece`], [`DataReader::pieces`] or
/// `for piece in reader` ([`IntoIterator`]); the ways may be mixed. The end of the reply
/// is the end of the reader (`Ok(0)`, `None`).
///
/// If the session ends before the reply is complete (the server went away, stalled, was
/// shut down, the transport failed), reading fails with an [`io::Error`] whose inner error
/// ([`io::Error::get_ref`], [`io::Error::into_inner`]) is the [`Error`](crate::Error): the
/// content read so far is a truncated reply, never one that looks complete.
///
/// Dropping the reader before the end discards the rest of the reply as it arrives; the
/// session goes on. The reader keeps the session open (as a [`Client`](crate::Client)
/// handle does).
pub struct DataReader {
    inner: Arc<Inner>,
    _last: Arc<LastHandle>,
    shared: Arc<StreamShared>,
    id: MessageId,
    has_data: bool,
    state: ReadState,
}

enum ReadState {
    Reading,
    Done,
    /// The reply failed; later reads fail alike.
    Failed(io::ErrorKind, String),
}

impl fmt::Debug for DataReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataReader")
            .field("message_id", &self.id)
            .field("has_data", &self.has_data)
            .field("backlog", &self.shared.buffer().backlog())
            .finish_non_exhaustive()
    }
}

impl DataReader {
    pub(crate) fn new(
        inner: Arc<Inner>,
        last: Arc<LastHandle>,
        shared: Arc<StreamShared>,
        id: MessageId,
        has_data: bool,
    ) -> Self {
        DataReader {
            inner,
            _last: last,
            shared,
            id,
            has_data,
            state: if has_data {
                ReadState::Reading
            } else {
                ReadState::Done
            },
        }
    }

    /// The message-id of the request this is the reply to.
    pub fn message_id(&self) -> MessageId {
        self.id
    }

    /// Whether the reply carried `<data>`; a reply without (`<ok/>`) reads as empty.
    pub fn has_data(&self) -> bool {
        self.has_data
    }

    /// The next piece of content, waiting for it; `None` at the end of the reply. The
    /// pieces are as they came off the wire (their sizes follow the server's chunks and our
    /// reads), each valid UTF-8. After an error, every later call fails alike.
    pub fn next_piece(&mut self) -> Option<io::Result<Bytes>> {
        self.take(DataBuffer::pop)
    }

    /// The pieces of content as an iterator, borrowing the reader (`for piece in
    /// reader.pieces()`); [`IntoIterator`] takes it whole. Ends after an error.
    pub fn pieces(&mut self) -> impl Iterator<Item = io::Result<Bytes>> + '_ {
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = self.next_piece();
            failed = matches!(next, Some(Err(_)));
            next
        })
    }

    /// Waits for content and takes it with `take`, or reports the end.
    fn take<T>(
        &mut self,
        mut take: impl FnMut(&mut DataBuffer) -> Option<T>,
    ) -> Option<io::Result<T>> {
        match &self.state {
            ReadState::Reading => {}
            ReadState::Done => return None,
            ReadState::Failed(kind, what) => return Some(Err(io::Error::new(*kind, what.clone()))),
        }
        let mut buffer = self.shared.buffer();
        loop {
            if let Some(got) = take(&mut buffer) {
                let backlog = buffer.backlog();
                drop(buffer);
                self.inner.consumed(backlog);
                return Some(Ok(got));
            }
            if let Some(end) = buffer.take_end() {
                drop(buffer);
                return match end {
                    Ok(_) => {
                        self.state = ReadState::Done;
                        None
                    }
                    Err(e) => {
                        let e = io_error(e);
                        self.state = ReadState::Failed(e.kind(), e.to_string());
                        Some(Err(e))
                    }
                };
            }
            buffer = self
                .shared
                .readable
                .wait(buffer)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Read for DataReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.take(|b| Some(b.read_into(buf)).filter(|&n| n > 0)) {
            None => Ok(0),
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(e),
        }
    }
}

/// `for piece in reader`: the pieces of content (see [`DataReader::next_piece`]). The reader
/// is not an [`Iterator`] itself: its `take`, `bytes` and `chain` are [`Read`]'s.
impl IntoIterator for DataReader {
    type Item = io::Result<Bytes>;
    type IntoIter = Pieces;

    fn into_iter(self) -> Pieces {
        Pieces(self)
    }
}

/// A [`DataReader`]'s pieces of content, as an iterator (`reader.into_iter()`); after an
/// error it ends.
#[derive(Debug)]
pub struct Pieces(DataReader);

impl Pieces {
    /// Back to reading bytes.
    pub fn into_reader(self) -> DataReader {
        self.0
    }
}

impl Iterator for Pieces {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        if matches!(self.0.state, ReadState::Failed(..)) {
            return None;
        }
        self.0.next_piece()
    }
}

impl Drop for DataReader {
    fn drop(&mut self) {
        let unfinished = {
            let mut buffer = self.shared.buffer();
            let unfinished = matches!(self.state, ReadState::Reading) && !buffer.is_finished();
            buffer.close();
            unfinished
        };
        if unfinished {
            self.inner.cancel_stream(self.id);
        }
        if self.has_data {
            self.inner
                .streams
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A failed reply as a reader's error: the NETCONF error inside, the kind telling a
/// timeout from the end of the session.
fn io_error(e: Error) -> io::Error {
    let kind = match &e {
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        Error::Io(io) => io.kind(),
        Error::Closed(_) => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}
