//! The byte streams a blocking session can run on.
//!
//! A session uses its stream from two threads: one reads (and is the session's loop), one
//! writes, so a write that waits for a peer that is slow to read never stops us reading
//! what that peer sends meanwhile (two peers that both only write would wait forever).
//! Deadlines are kept by whichever thread waits for a result, so reads need no timeout and
//! any pair of `Read` and `Write` halves works.

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
