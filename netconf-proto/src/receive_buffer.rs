//! Where the message now arriving is gathered, and how it is handed out whole.
//!
//! A busy session receives small messages one after another: the replies a client waits
//! for, the requests a server answers. A buffer of their own cost each of them two
//! allocations: the buffer, and the shared header `Bytes` adds the first time a message
//! made from a `Vec` is sliced (the parser slices every message). So small messages are
//! gathered one after another into a shared block instead, and each is handed out as a
//! slice of it: two allocations per block, not per message.
//!
//! What a kept message may pin stays what it always was: at most about twice its size and
//! a kilobyte. A block is [`BLOCK`] bytes, so any message in one is within that bound. A
//! message that outgrows the room left in its block moves to a buffer of its own as it
//! grows, and is handed out as before: in that buffer if it is mostly full, else copied to
//! one of its size. The next message starts a new block.

use bytes::{Bytes, BytesMut};

/// A block's size: what one kept message may pin at most, when it is small.
const BLOCK: usize = 1024;

/// A message starts a new block when the one it would go in has less room than this
/// (a tiny reply or request is about 150 to 250 bytes).
const MIN_ROOM: usize = 256;

/// The message now arriving.
#[derive(Debug, Default)]
pub(crate) struct ReceiveBuffer {
    buf: BytesMut,
    /// The room `buf` had when this message began. A message that is no longer than that
    /// never left its block (the buffer grows only past its capacity).
    room: usize,
}

impl ReceiveBuffer {
    /// Adds bytes of the message now arriving.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.buf.is_empty() {
            if self.buf.capacity() < MIN_ROOM {
                self.buf = BytesMut::with_capacity(BLOCK);
            }
            self.room = self.buf.capacity();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes gathered so far.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The complete message; the buffer is ready for the next.
    pub(crate) fn take(&mut self) -> Bytes {
        if self.buf.len() <= self.room {
            // Still in its block: the rest of the block is the next message's.
            return self.buf.split().freeze();
        }
        let buf = self.take_all();
        if buf.capacity() > 2 * buf.len() + 1024 {
            Bytes::copy_from_slice(&buf)
        } else {
            buf.freeze()
        }
    }

    /// Everything gathered, and with it the buffer, which the next message will not share.
    pub(crate) fn take_all(&mut self) -> BytesMut {
        self.room = 0;
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `bytes` begins: messages cut from one block are adjacent in memory.
    fn at(bytes: &[u8]) -> usize {
        bytes.as_ptr() as usize
    }

    #[test]
    fn small_messages_share_a_block() {
        let mut buffer = ReceiveBuffer::default();
        let mut taken = Vec::new();
        for i in 0..4u8 {
            buffer.extend(&[i; 100]);
            buffer.extend(&[i; 100]);
            taken.push(buffer.take());
        }
        for (i, message) in taken.iter().enumerate() {
            assert_eq!(&message[..], &[i as u8; 200][..]);
        }
        for pair in taken.windows(2) {
            assert_eq!(
                at(&pair[1]),
                at(&pair[0]) + 200,
                "one block, one after another"
            );
        }
        // 4 x 200 bytes leave 224 in the block: the fifth starts a new one.
        buffer.extend(&[9; 10]);
        let fifth = buffer.take();
        assert!(at(&fifth) < at(&taken[0]) || at(&fifth) >= at(&taken[0]) + BLOCK);
    }

    #[test]
    fn a_message_that_outgrows_its_block_moves_out_and_the_next_starts_a_block() {
        let mut buffer = ReceiveBuffer::default();
        buffer.extend(b"<small/>");
        let small = buffer.take();
        let mut big = Vec::new();
        for i in 0..300u32 {
            let piece = i.to_string().repeat(30);
            buffer.extend(piece.as_bytes());
            big.extend_from_slice(piece.as_bytes());
        }
        let message = buffer.take();
        assert_eq!(message, big);
        assert_eq!(small, &b"<small/>"[..]);
        // The next message is in a new block, not in what is left of the big one's buffer.
        buffer.extend(b"<next/>");
        assert!(buffer.room <= BLOCK);
        assert_eq!(buffer.take(), &b"<next/>"[..]);
    }

    #[test]
    fn an_empty_message_is_empty() {
        let mut buffer = ReceiveBuffer::default();
        assert!(buffer.take().is_empty());
        buffer.extend(b"");
        assert!(buffer.take().is_empty());
        buffer.extend(b"x");
        assert_eq!(buffer.take(), &b"x"[..]);
    }

    #[test]
    fn take_all_hands_over_what_was_gathered() {
        let mut buffer = ReceiveBuffer::default();
        buffer.extend(b"<rpc-reply");
        assert_eq!(buffer.as_slice(), b"<rpc-reply");
        assert_eq!(buffer.len(), 10);
        assert_eq!(&buffer.take_all()[..], b"<rpc-reply");
        assert_eq!(buffer.len(), 0);
        buffer.extend(b"<ok/>");
        assert_eq!(buffer.take(), &b"<ok/>"[..]);
    }
}
