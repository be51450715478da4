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
    /// A `MSG_PEEK` receive through socket2: std's `UnixStream::peek` is unstable
    /// (`unix_socket_peek`). It honours the read timeout as `TcpStream::peek` does.
    fn wait_readable(&self) -> io::Result<bool> {
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        readable(socket2::SockRef::from(self).peek(&mut byte))
    }
    fn can_wait_readable(&self) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// A real loopback socket whose `set_read_timeout` calls are recorded (and can be made
    /// to fail), so a test sees both how often `ReadTimeout` sets the timeout and what
    /// reaches the socket.
    struct Recording {
        stream: TcpStream,
        calls: Mutex<Vec<Option<Duration>>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Recording {
        /// The recording side, and a clone of its socket (to read the socket's timeout
        /// through another handle), and the peer (kept open).
        fn pair() -> (Recording, TcpStream, TcpStream) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (peer, _) = listener.accept().unwrap();
            let clone = stream.try_clone().unwrap();
            let recording = Recording {
                stream,
                calls: Mutex::new(Vec::new()),
                fail: Default::default(),
            };
            (recording, clone, peer)
        }

        fn calls(&self) -> Vec<Option<Duration>> {
            self.calls.lock().unwrap().clone()
        }

        fn count(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl Read for Recording {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.stream.read(buf)
        }
    }

    impl Write for Recording {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.stream.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.stream.flush()
        }
    }

    impl Transport for Recording {
        fn try_clone_transport(&self) -> io::Result<Box<dyn Transport>> {
            Ok(Box::new(self.stream.try_clone()?))
        }
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.stream.set_write_timeout(timeout)
        }
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.calls.lock().unwrap().push(timeout);
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(io::Error::other("refused by the test"));
            }
            self.stream.set_read_timeout(timeout)
        }
        fn shutdown(&self) {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    const fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    // Whole seconds throughout where the socket is read back: the kernel keeps a socket's
    // timeout in clock ticks, so e.g. 75 ms may read back as 76 ms.

    #[test]
    fn arming_the_same_timeout_twice_sets_it_once() {
        let (t, socket, _peer) = Recording::pair();
        let mut armed = ReadTimeout::default();
        armed.arm(&t, secs(4));
        // Set a quarter short of what remains, so it stays good as the deadline nears.
        assert_eq!(t.calls(), [secs(3)]);
        assert_eq!(socket.read_timeout().unwrap(), secs(3));
        armed.arm(&t, secs(4));
        assert_eq!(t.count(), 1, "the same timeout again must not be set again");
        // The deadline drawing nearer keeps it while it still wakes the read in time.
        armed.arm(&t, secs(3));
        assert_eq!(t.count(), 1);
        assert_eq!(socket.read_timeout().unwrap(), secs(3));
    }

    #[test]
    fn arming_a_different_timeout_sets_it() {
        let (t, socket, _peer) = Recording::pair();
        let mut armed = ReadTimeout::default();
        armed.arm(&t, secs(4));
        // Much later: 3 s would wake the read far too early.
        armed.arm(&t, secs(40));
        assert_eq!(t.calls(), [secs(3), secs(30)]);
        assert_eq!(socket.read_timeout().unwrap(), secs(30));
        // Sooner than the one set: 30 s would wake it too late.
        armed.arm(&t, secs(8));
        assert_eq!(t.calls(), [secs(3), secs(30), secs(6)]);
        assert_eq!(socket.read_timeout().unwrap(), secs(6));
        armed.arm(&t, secs(8));
        assert_eq!(t.count(), 3);
    }

    #[test]
    fn arming_none_after_some_sets_it_once() {
        let (t, socket, _peer) = Recording::pair();
        let mut armed = ReadTimeout::default();
        armed.arm(&t, secs(4));
        assert_eq!(socket.read_timeout().unwrap(), secs(3));
        armed.arm(&t, None);
        assert_eq!(t.calls(), [secs(3), None]);
        assert_eq!(socket.read_timeout().unwrap(), None);
        armed.arm(&t, None);
        assert_eq!(t.count(), 2, "no timeout again must not be set again");
        // And back to a deadline.
        armed.arm(&t, secs(4));
        assert_eq!(t.calls(), [secs(3), None, secs(3)]);
        assert_eq!(socket.read_timeout().unwrap(), secs(3));
    }

    #[test]
    fn first_arm_always_sets_even_none() {
        // The transport's timeout is unknown until set (a handshake may have left one).
        let (t, socket, _peer) = Recording::pair();
        socket.set_read_timeout(secs(5)).unwrap();
        let mut armed = ReadTimeout::default();
        armed.arm(&t, None);
        assert_eq!(t.calls(), [None]);
        assert_eq!(socket.read_timeout().unwrap(), None);
    }

    #[test]
    fn a_timeout_that_failed_to_set_is_set_again() {
        let (t, socket, _peer) = Recording::pair();
        let mut armed = ReadTimeout::default();
        armed.arm(&t, secs(4));
        t.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        armed.arm(&t, secs(40));
        assert_eq!(t.count(), 2);
        assert_eq!(socket.read_timeout().unwrap(), secs(3));
        t.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        // Not remembered as set: tried again.
        armed.arm(&t, secs(40));
        assert_eq!(t.calls(), [secs(3), secs(30), secs(30)]);
        assert_eq!(socket.read_timeout().unwrap(), secs(30));
    }

    /// As `reading.rs` and `serve.rs` use it: before each read, what remains until a fixed
    /// deadline. The read must never be left to wait past the deadline, and most turns of
    /// the loop must not set the timeout.
    #[test]
    fn a_nearing_deadline_sets_the_timeout_seldom_and_never_past_it() {
        let (t, socket, _peer) = Recording::pair();
        let mut armed = ReadTimeout::default();
        let mut turns = 0;
        for ms in (1..=4000u64).rev() {
            let remaining = Duration::from_millis(ms);
            armed.arm(&t, Some(remaining));
            turns += 1;
            let set = t.calls().last().copied().flatten().unwrap();
            assert!(set <= remaining, "{set:?} waits past {remaining:?}");
            assert!(
                set >= remaining / 2,
                "{set:?} wakes long before {remaining:?}"
            );
        }
        let calls = t.count();
        // 4000 -> 20 ms by quarters is ~19 sets; below 20 ms each millisecond is set.
        assert!(calls < 60, "{calls} sets in {turns} turns");
        let last = socket.read_timeout().unwrap().unwrap();
        // 1 ms, rounded up to the kernel's clock tick.
        assert!(last >= Duration::from_millis(1) && last <= Duration::from_millis(20));
    }
}
