//! What a server's handler answers: one reply, or a `<data>` payload it produces piece by
//! piece.

use std::fmt;
use std::io::{self, Read};

use bytes::{Bytes, BytesMut};
use netconf_proto::Reply;

/// How much a [`Answer::Reader`] source is read at a time: one piece, one chunk on the wire.
const READ_PIECE: usize = 64 * 1024;

/// A handler's answer to a request: a whole [`Reply`], or the content of a `<data>` reply
/// produced as it is sent, for replies too large to hold (see [`Server::new`](crate::Server::new)).
///
/// A streamed answer is pulled one piece at a time as the transport takes them, so it costs
/// the server a few pieces' memory whatever its size; each piece goes out as one chunk
/// (base:1.1), the very [`Bytes`] on a plaintext transport, encrypted without an earlier
/// copy over TLS. The pieces must together be the XML content of `<data>`: the server
/// writes the envelope around them and does not check them. Pieces of 16 to 256 KiB
/// suit; a larger piece is held (and encrypted) whole.
///
/// A source that fails before its first piece is answered with an `operation-failed`
/// `<rpc-error>`. Once the reply has begun it cannot be taken back, so a source that fails
/// (or panics) later ends the session: the client sees a truncated reply, never a short one
/// that looks complete.
pub enum Answer {
    /// The whole reply at once.
    Reply(Reply),
    /// The content of `<data>`, piece by piece.
    Stream(Box<dyn Iterator<Item = io::Result<Bytes>> + Send>),
    /// The content of `<data>`, read until its end (in pieces of 64 KiB).
    Reader(Box<dyn Read + Send>),
}

impl Answer {
    /// The content of `<data>` from an iterator of pieces.
    pub fn stream<I>(pieces: I) -> Answer
    where
        I: IntoIterator<Item = io::Result<Bytes>>,
        I::IntoIter: Send + 'static,
    {
        Answer::Stream(Box::new(pieces.into_iter()))
    }

    /// The content of `<data>` from a reader (a file, a pipe from a generator).
    pub fn reader(reader: impl Read + Send + 'static) -> Answer {
        Answer::Reader(Box::new(reader))
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply(reply)
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Answer::Stream(_) => f.write_str("Stream(..)"),
            Answer::Reader(_) => f.write_str("Reader(..)"),
        }
    }
}

/// A streamed answer's pieces, whatever their source.
pub(crate) enum Source {
    Pieces(Box<dyn Iterator<Item = io::Result<Bytes>> + Send>),
    Reader(Box<dyn Read + Send>),
}

impl Source {
    /// The next piece (never empty); `Ok(None)` at the end.
    pub(crate) fn next_piece(&mut self) -> io::Result<Option<Bytes>> {
        match self {
            Source::Pieces(pieces) => loop {
                match pieces.next() {
                    None => return Ok(None),
                    Some(Ok(piece)) if piece.is_empty() => {}
                    Some(piece) => return piece.map(Some),
                }
            },
            Source::Reader(reader) => {
                let mut buf = BytesMut::zeroed(READ_PIECE);
                let mut n = 0;
                while n < buf.len() {
                    match reader.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf.freeze()))
            }
        }
    }
}
