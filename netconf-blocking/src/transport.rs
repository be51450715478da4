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
