//! RFC 6242 message framing: end-of-message (`]]>]]>`, base:1.0 and every hello) and
//! chunked framing (base:1.1).
//!
//! The decoder is incremental and linear: every input byte is examined once (the
//! end-of-message scan uses `memmem`; the only bytes looked at twice are at most five
//! bytes of a possible split delimiter), and it hands the message body out in
//! [`Piece::Data`] slices of the caller's input, so the caller decides whether to
//! accumulate a message or stream it. It never allocates what a chunk header claims.

use bytes::{BufMut, BytesMut};
use memchr::memmem;

use crate::error::{ProtocolError, UsageError};

/// The end-of-message delimiter of RFC 6242 section 4.3.
pub const EOM_DELIMITER: &[u8] = b"]]>]]>";

/// The largest chunk RFC 6242 allows.
pub const MAX_CHUNK_SIZE: u64 = 4_294_967_295;

/// How messages are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Framing {
    /// `]]>]]>` after each message (base:1.0, and every `<hello>`).
    EndOfMessage,
    /// `\n#<size>\n` chunks closed by `\n##\n` (base:1.1).
    Chunked,
}

/// Appends `message` to `out` framed as `framing` requires.
///
/// Under end-of-message framing a message that contains `]]>]]>` cannot be sent (the peer
/// would see it end there): it is refused and nothing is appended.
pub fn encode(framing: Framing, message: &[u8], out: &mut BytesMut) -> Result<(), UsageError> {
    encode_parts(framing, &[message], out)
}

/// Appends one message given as consecutive parts, framed, copying each byte once: a large
/// reply's payload goes straight from the caller's buffer into `out`. Refused, with nothing
/// appended, when end-of-message framing would be broken by the content (see [`encode`]).
pub fn encode_parts(
    framing: Framing,
    parts: &[&[u8]],
    out: &mut BytesMut,
) -> Result<(), UsageError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    match framing {
        Framing::EndOfMessage => {
            check_end_of_message(parts)?;
            out.reserve(total + EOM_DELIMITER.len());
            for part in parts {
                out.put_slice(part);
            }
            out.put_slice(EOM_DELIMITER);
        }
        Framing::Chunked if total as u64 <= MAX_CHUNK_SIZE => {
            // One chunk for the whole message. A chunk of size zero does not exist, so an
            // empty message cannot be framed; the session never sends one.
            out.reserve(total + 32);
            if total > 0 {
                write_chunk_header(total, out);
                for part in parts {
                    out.put_slice(part);
                }
            }
            out.put_slice(b"\n##\n");
        }
        Framing::Chunked => {
            out.reserve(total + 32 * parts.len());
            for part in parts {
                write_chunks(part, out);
            }
            out.put_slice(b"\n##\n");
        }
    }
    Ok(())
}

/// Refuses a message whose bytes, read across the boundaries of its parts, contain the
/// end-of-message delimiter: sent with base:1.0 framing it would end early, and what follows
/// would pass for another message (an injection when the content came from users).
pub fn check_end_of_message(parts: &[&[u8]]) -> Result<(), UsageError> {
    let finder = memmem::Finder::new(EOM_DELIMITER);
    // The last bytes seen, enough to complete a delimiter that straddles parts.
    let mut tail = [0u8; 5];
    let mut tail_len = 0;
    for part in parts {
        let head = &part[..part.len().min(5)];
        let mut joint = [0u8; 10];
        joint[..tail_len].copy_from_slice(&tail[..tail_len]);
        joint[tail_len..tail_len + head.len()].copy_from_slice(head);
        if finder.find(&joint[..tail_len + head.len()]).is_some() || finder.find(part).is_some() {
            return Err(UsageError::DelimiterInMessage);
        }
        let keep = (tail_len + part.len()).min(5);
        let from_part = keep.min(part.len());
        let from_tail = keep - from_part;
        tail.copy_within(tail_len - from_tail..tail_len, 0);
        tail[from_tail..keep].copy_from_slice(&part[part.len() - from_part..]);
        tail_len = keep;
    }
    Ok(())
}

/// Writes the header of a chunk of `len` bytes (`len` at most [`MAX_CHUNK_SIZE`], not 0).
pub fn write_chunk_header(len: usize, out: &mut BytesMut) {
    debug_assert!(len > 0 && len as u64 <= MAX_CHUNK_SIZE);
    // Not through `fmt`: its machinery cost more than the rest of framing a small message.
    out.put_slice(b"\n#");
    out.put_slice(itoa::Buffer::new().format(len).as_bytes());
    out.put_u8(b'\n');
}

/// Writes `data` as chunks of at most RFC 6242's maximum size.
fn write_chunks(data: &[u8], out: &mut BytesMut) {
    for chunk in data.chunks(MAX_CHUNK_SIZE as usize) {
        write_chunk_header(chunk.len(), out);
        out.put_slice(chunk);
    }
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// More body bytes of the current message (possibly empty).
    Data(&'a [u8]),
    /// The current message is complete.
    End,
}

/// Chunked-framing decoder states (RFC 6242 section 4.2 grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Between messages: NULs and whitespace are skipped (seen on real servers).
    MessageStart,
    /// Saw the `\n` of a header; expecting `#`. `first` marks the message's first header,
    /// where a peer that never switched to chunked framing is recognised.
    Hash { first: bool },
    /// Saw `\n#`; expecting the first size digit or the `#` of an end-of-chunks marker.
    SizeStart,
    /// Inside the size digits.
    Size(u64),
    /// Saw `\n##`; expecting the final `\n`.
    EndOfChunks,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data; expecting the `\n` that starts the next header.
    HeaderStart,
}

/// An incremental RFC 6242 decoder for one direction of a session.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    chunk: Chunk,
    /// End-of-message framing: how many delimiter bytes ended the input seen so far.
    held: usize,
    finder: memmem::Finder<'static>,
    /// Bytes consumed since the session began: the offsets in errors count from here.
    offset: u64,
    /// Where the current message began.
    message_start: u64,
    /// Where the last completed message began.
    last_message_start: u64,
    /// Body bytes of the current message so far.
    message_len: usize,
    /// Whether the current message has anything but whitespace so far.
    message_started: bool,
    max_message_size: usize,
    /// Set when a base:1.1 peer was seen sending end-of-message framing.
    fell_back: bool,
}

impl FrameDecoder {
    /// A decoder for the hello phase: end-of-message framing.
    pub fn new(max_message_size: usize) -> Self {
        FrameDecoder {
            framing: Framing::EndOfMessage,
            chunk: Chunk::MessageStart,
            held: 0,
            finder: memmem::Finder::new(EOM_DELIMITER).into_owned(),
            offset: 0,
            message_start: 0,
            last_message_start: 0,
            message_len: 0,
            message_started: false,
            max_message_size,
            fell_back: false,
        }
    }

    /// The framing in force for the next message.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Changes the largest message accepted from the next byte on (the hello has a smaller
    /// limit than the messages after it).
    pub fn set_max_message_size(&mut self, bytes: usize) {
        self.max_message_size = bytes;
    }

    /// Switches framing; call only between messages (after [`Piece::End`]).
    pub fn set_framing(&mut self, framing: Framing) {
        debug_assert!(!self.is_mid_message());
        self.framing = framing;
        self.chunk = Chunk::MessageStart;
        self.held = 0;
    }

    /// True once a peer that negotiated base:1.1 was seen using end-of-message framing.
    pub fn fell_back_to_end_of_message(&self) -> bool {
        self.fell_back
    }

    /// Bytes consumed so far; error offsets count from the first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of the first byte of the current (or next) message.
    pub fn message_start(&self) -> u64 {
        self.message_start
    }

    /// Offset of the first byte of the message most recently completed.
    pub fn last_message_start(&self) -> u64 {
        self.last_message_start
    }

    /// Body bytes of the current message received so far.
    pub fn message_len(&self) -> usize {
        self.message_len
    }

    /// True while part of a message (anything beyond inter-message whitespace) has arrived.
    pub fn is_mid_message(&self) -> bool {
        match self.framing {
            Framing::EndOfMessage => self.message_started || self.held > 0,
            Framing::Chunked => !matches!(
                self.chunk,
                Chunk::MessageStart | Chunk::Hash { first: true }
            ),
        }
    }

    /// Decodes from the front of `input`: returns how many bytes were consumed and what they
    /// meant. Call again with the rest until it is empty; a `Data` piece may be empty.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Piece<'a>), ProtocolError> {
        let (consumed, piece) = match self.framing {
            Framing::EndOfMessage => self.decode_eom(input),
            Framing::Chunked => self.decode_chunked(input)?,
        };
        self.offset += consumed as u64;
        match piece {
            Piece::Data(data) => self.account(data)?,
            Piece::End => {
                self.last_message_start = self.message_start;
                self.message_start = self.offset;
                self.message_len = 0;
                self.message_started = false;
            }
        }
        Ok((consumed, piece))
    }

    fn account(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if data.is_empty() {
            return Ok(());
        }
        self.message_started = true;
        self.message_len += data.len();
        if self.message_len > self.max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                offset: self.message_start,
                limit: self.max_message_size,
            });
        }
        Ok(())
    }

    fn decode_eom<'a>(&mut self, input: &'a [u8]) -> (usize, Piece<'a>) {
        if self.held > 0 {
            return self.continue_delimiter(input);
        }
        if !self.message_started {
            // Whitespace and NULs between messages belong to no message, however the
            // stream is split.
            let filler = input.iter().take_while(|b| is_interstitial(**b)).count();
            if filler > 0 {
                self.message_start = self.offset + filler as u64;
                return (filler, Piece::Data(&[]));
            }
        }
        match self.finder.find(input) {
            Some(0) => (EOM_DELIMITER.len(), Piece::End),
            Some(at) => (at, Piece::Data(&input[..at])),
            None => {
                // Keep back a tail that could be the start of a delimiter split across reads.
                let tail = partial_delimiter_suffix(input);
                self.held = tail;
                (input.len(), Piece::Data(&input[..input.len() - tail]))
            }
        }
    }

    /// Extends a delimiter prefix held from the previous input, one byte at a time (at most
    /// five steps), using the delimiter's failure function so overlapping starts such as
    /// `]]]>]]>` are found.
    fn continue_delimiter<'a>(&mut self, input: &'a [u8]) -> (usize, Piece<'a>) {
        let Some(&b) = input.first() else {
            return (0, Piece::Data(&[]));
        };
        let held = self.held;
        if EOM_DELIMITER[held] == b {
            self.held += 1;
            if self.held == EOM_DELIMITER.len() {
                self.held = 0;
                return (1, Piece::End);
            }
            return (1, Piece::Data(&[]));
        }
        let mut k = held;
        while k > 0 && EOM_DELIMITER[k] != b {
            k = DELIMITER_FAILURE[k - 1];
        }
        if EOM_DELIMITER[k] == b {
            k += 1;
        }
        if k == 0 {
            // Nothing of the held bytes (nor `b`) can start a delimiter: release them and
            // let the fast path look at `b` again.
            self.held = 0;
            return (0, Piece::Data(&EOM_DELIMITER[..held]));
        }
        let released = held + 1 - k;
        self.held = k;
        (1, Piece::Data(&EOM_DELIMITER[..released]))
    }

    fn decode_chunked<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Piece<'a>), ProtocolError> {
        if let Chunk::Data(left) = self.chunk {
            let data = self.chunk_data(left, input);
            return Ok((data.len(), Piece::Data(data)));
        }
        // Headers are a few bytes: walk them one byte at a time.
        for (i, &b) in input.iter().enumerate() {
            let at = self.offset + i as u64;
            let bad = |what| ProtocolError::BadChunkHeader { offset: at, what };
            self.chunk = match (self.chunk, b) {
                (Chunk::MessageStart, b'\n') => Chunk::Hash { first: true },
                (Chunk::MessageStart, b) if is_interstitial(b) => {
                    self.message_start = at + 1;
                    Chunk::MessageStart
                }
                (Chunk::MessageStart, b'<') => return Ok(self.fall_back(i, &[])),
                (Chunk::MessageStart, _) => return Err(bad("expected `\\n#` to start a chunk")),
                (Chunk::Hash { .. }, b'#') => Chunk::SizeStart,
                (Chunk::Hash { first: true }, b'\n') => Chunk::Hash { first: true },
                (Chunk::Hash { first: true }, b'<') => return Ok(self.fall_back(i, &[])),
                (Chunk::Hash { first: true }, b) if is_interstitial(b) => {
                    self.message_start = at + 1;
                    Chunk::MessageStart
                }
                (Chunk::Hash { .. }, _) => {
                    return Err(bad("expected `#` after `\\n` in a chunk header"))
                }
                (Chunk::SizeStart, b'#') => Chunk::EndOfChunks,
                (Chunk::SizeStart, b'0') => {
                    return Err(ProtocolError::ChunkSizeOutOfRange {
                        offset: at,
                        what: "chunk size must not be zero or start with zero",
                    })
                }
                (Chunk::SizeStart, b'1'..=b'9') => Chunk::Size(u64::from(b - b'0')),
                (Chunk::SizeStart, _) => return Err(bad("expected a chunk size digit or `#`")),
                (Chunk::Size(n), b'0'..=b'9') => {
                    let n = n * 10 + u64::from(b - b'0');
                    if n > MAX_CHUNK_SIZE {
                        return Err(ProtocolError::ChunkSizeOutOfRange {
                            offset: at,
                            what: "chunk size exceeds 4294967295",
                        });
                    }
                    Chunk::Size(n)
                }
                (Chunk::Size(n), b'\n') => {
                    // Refuse before a single byte of the chunk arrives: never trust the claim.
                    if self.message_len as u64 + n > self.max_message_size as u64 {
                        return Err(ProtocolError::MessageTooLarge {
                            offset: self.message_start,
                            limit: self.max_message_size,
                        });
                    }
                    self.message_started = true;
                    // The chunk's data that came with its header, in the same step: a small
                    // message is then two steps (its chunk, its end), not three.
                    let data = self.chunk_data(n, &input[i + 1..]);
                    return Ok((i + 1 + data.len(), Piece::Data(data)));
                }
                (Chunk::Size(_), _) => {
                    return Err(bad("chunk size is not a decimal number ended by `\\n`"))
                }
                (Chunk::EndOfChunks, b'\n') => {
                    if !self.message_started {
                        return Err(bad("end-of-chunks marker before any chunk"));
                    }
                    self.chunk = Chunk::MessageStart;
                    return Ok((i + 1, Piece::End));
                }
                (Chunk::EndOfChunks, _) => return Err(bad("expected `\\n` after `\\n##`")),
                (Chunk::HeaderStart, b'\n') => Chunk::Hash { first: false },
                (Chunk::HeaderStart, _) => {
                    return Err(bad("chunk data longer than its header said"))
                }
                (Chunk::Data(_), _) => unreachable_state(),
            };
        }
        Ok((input.len(), Piece::Data(&[])))
    }

    /// As much of a chunk's `left` bytes as `input` holds; then a chunk header is next, or
    /// the rest of the chunk.
    fn chunk_data<'a>(&mut self, left: u64, input: &'a [u8]) -> &'a [u8] {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
        let left = left - n as u64;
        self.chunk = if left == 0 {
            Chunk::HeaderStart
        } else {
            Chunk::Data(left)
        };
        &input[..n]
    }

    /// The peer negotiated base:1.1 but sends end-of-message framing (seen on real servers):
    /// accept it from here on rather than drop the session.
    fn fall_back<'a>(&mut self, consumed: usize, replay: &'static [u8]) -> (usize, Piece<'a>) {
        tracing::warn!(
            offset = self.offset + consumed as u64,
            "peer negotiated base:1.1 but sends ]]>]]> framing; accepting end-of-message framing from it"
        );
        self.framing = Framing::EndOfMessage;
        self.chunk = Chunk::MessageStart;
        self.fell_back = true;
        (consumed, Piece::Data(replay))
    }
}

/// `Chunk::Data` is handled before the header loop; this keeps the match exhaustive
/// without a panic path.
fn unreachable_state() -> Chunk {
    Chunk::MessageStart
}

/// Bytes tolerated between messages: whitespace and the NULs some servers pad with.
fn is_interstitial(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// KMP failure function of `]]>]]>`.
const DELIMITER_FAILURE: [usize; 6] = [0, 1, 0, 1, 2, 3];

/// Length of the longest suffix of `input` that is a proper prefix of the delimiter.
fn partial_delimiter_suffix(input: &[u8]) -> usize {
    let max = (EOM_DELIMITER.len() - 1).min(input.len());
    (1..=max)
        .rev()
        .find(|&k| input.ends_with(&EOM_DELIMITER[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
