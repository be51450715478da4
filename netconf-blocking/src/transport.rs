//! The byte streams a blocking session can run on.
//!
//! A session uses its stream from several threads: one reads at a time (the caller waiting
//! for its reply, or the session's reading thread: see `reading.rs`), one writes at a time
//! (a caller sending a small request, or the session's writing thread: see `writer.rs`), so a
//! write that waits for a peer that is slow to read never stops us reading what that peer
//! sends meanwhile (two peers that both only write would wait forever). Any pair of `Read`
//! and `Write` halves works; a stream that can also wait for readability without reading
//! ([`Transport::wait_readable`]) spares a thread switch per reply.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// A blocking byte stream that can be split between a reading and a writing thread.
pub trait Transport: Read + Write + Send + Sync + 'static {
    /// A second handle on the same stream, for the writing thread.
    fn try_clone_transport(&self) -> io::Result<Box<dyn Transport>>;
    /// Bounds how long one write may block; `None`: forever.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds how long one read may block (a server's loop wakes for its deadlines);
    /// `None`: forever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Closes both directions, waking a thread blocked in `read` (best effort).
    fn shutdown(&self);
    /// Waits until a read would not block (bytes, or the end of the stream, are there)
    /// without consuming anything, at most the read timeout: `Ok(false)` when that passed.
    /// A client session whose transport can do this lets the thread waiting for a reply
    /// read it itself; with the default (`Unsupported`) only its reading thread reads.
    fn wait_readable(&self) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Whether [`Transport::wait_readable`] works.
    fn can_wait_readable(&self) -> bool {
        false
    }
}

/// `Ok(false)` for a read timeout, as [`Transport::wait_readable`] reports it.
fn readable(peeked: io::Result<usize>) -> io::Result<bool> {
    match peeked {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

impl Transport for TcpStream {
    fn try_clone_transport(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, Shutdown::Both);
    }
    fn wait_readable(&self) -> io::Result<bool> {
        readable(self.peek(&mut [0u8; 1]))
    }
    fn can_wait_readable(&self) -> bool {
        true
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn try_clone_transport(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn shutdown(&self) {
        let _ = std::os::unix::net::UnixStream::shutdown(self, Shutdown::Both);
    }
}

/// The read timeout a loop last gave its transport, so that it is changed only when it
/// must be: setting it is a system call that locks the socket against the thread writing,
/// and a loop would otherwise do it before every read.
#[derive(Debug, Default)]
pub(crate) struct ReadTimeout {
    /// `None`: never set.
    set: Option<Option<Duration>>,
}

impl ReadTimeout {
    /// Makes the next read return (timed out) by `remaining` from now (`None`: never). A
    /// timeout already set is kept if it wakes the read no later than that, and not much
    /// earlier (an early wake only costs a turn of the loop); a new one is set a little
    /// short of `remaining`, so that it stays good while the deadline draws nearer.
    pub fn arm(&mut self, transport: &dyn Transport, remaining: Option<Duration>) {
        let keep = match (self.set, remaining) {
            (Some(None), None) => true,
            (Some(Some(set)), Some(remaining)) => set <= remaining && set >= remaining / 2,
            _ => false,
        };
        if keep {
            return;
        }
        let timeout = remaining.map(|r| {
            if r > Duration::from_millis(20) {
                r - r / 4
            } else {
                r
            }
        });
        if transport.set_read_timeout(timeout).is_ok() {
            self.set = Some(timeout);
        }
    }
}
