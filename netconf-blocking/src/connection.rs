//! The read loop: the only place a blocking session waits.
//!
//! It drains the machine's output to `Wait` first (writing every byte, delivering every
//! event), and only then blocks on the socket, with a read timeout up to the next deadline.
//! Because `Wait` means nothing is buffered inside the session or TLS, blocking there can
//! never strand a message.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use netconf_proto::{
    CloseReason, Error, Event, Machine, MessageId, Notification, Output, ProtocolError, Request,
    RpcReply,
};

use crate::transport::Transport;

const READ_BUFFER: usize = 64 * 1024;

/// What the loop collected for the API to pick up.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub established: bool,
    pub replies: HashMap<MessageId, Result<RpcReply, Error>>,
    pub notifications: VecDeque<Notification>,
    /// Notifications dropped because the buffer was full (the oldest go first).
    pub notifications_dropped: u64,
    pub notification_limit: usize,
    pub requests: VecDeque<Request>,
    pub closed: Option<CloseReason>,
}

impl Inbox {
    fn accept(&mut self, event: Event) {
        match event {
            Event::Established { .. } => self.established = true,
            Event::Reply { id, reply } => {
                self.replies.insert(id, Ok(reply));
            }
            Event::RpcTimedOut { id } => {
                self.replies.insert(
                    id,
                    Err(Error::Timeout("no reply to the RPC within its timeout")),
                );
            }
            Event::Notification(n) => {
                if self.notifications.len() >= self.notification_limit.max(1) {
                    self.notifications.pop_front();
                    self.notifications_dropped += 1;
                    tracing::warn!("notification buffer full; dropping the oldest notification");
                }
                self.notifications.push_back(n);
            }
            Event::Rpc { request } => self.requests.push_back(request),
            Event::MessageRejected { error } => {
                tracing::warn!(%error, "NETCONF message dropped");
            }
            Event::Closed { reason } => self.closed = Some(reason),
        }
    }
}

/// A machine bound to a stream.
pub(crate) struct Connection {
    pub stream: Box<dyn Transport>,
    pub machine: Box<dyn Machine + Send>,
    pub inbox: Inbox,
    buf: Box<[u8]>,
    /// A transport failure, reported to every later call.
    io_error: Option<(ErrorKind, String)>,
    write_timeout: Option<Duration>,
    /// Told the size of a partly received message after every read (progress displays).
    pub progress: Option<Progress>,
}

/// A progress callback: called with the bytes received so far of the message arriving.
pub type Progress = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn new(
        stream: Box<dyn Transport>,
        machine: Box<dyn Machine + Send>,
        notification_limit: usize,
        write_timeout: Option<Duration>,
    ) -> Self {
        Connection {
            stream,
            machine,
            inbox: Inbox {
                notification_limit,
                ..Inbox::default()
            },
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            io_error: None,
            write_timeout,
            progress: None,
        }
    }

    /// Writes and delivers everything pending; returns the next deadline.
    pub fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.machine.poll_output() {
                Output::Transmit(bytes) => {
                    if self.io_error.is_some() {
                        continue; // the transport is gone; let the session wind down
                    }
                    if let Err(e) = self.write_all(&bytes) {
                        // Once the session has ended (the peer's close_notify, say), failing to
                        // send our last bytes is not what the caller should be told.
                        if self.machine.session().is_closed() {
                            tracing::debug!(error = %e, "write after the session closed failed");
                        } else {
                            self.transport_failed(e);
                        }
                    }
                }
                Output::Event(event) => self.inbox.accept(event),
                Output::Wait(deadline) => return deadline,
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.set_write_timeout(self.write_timeout)?;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    fn transport_failed(&mut self, e: io::Error) {
        let what = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                "the peer stopped reading: write timed out".to_owned()
            }
            _ => e.to_string(),
        };
        tracing::debug!(error = %what, "transport failed");
        self.io_error = Some((e.kind(), what));
        self.machine.session_mut().abort();
    }

    /// The error for a closed session, preferring the transport's own failure.
    pub fn closed_error(&self) -> Option<Error> {
        if let Some((kind, what)) = &self.io_error {
            return Some(Error::Io(io::Error::new(*kind, what.clone())));
        }
        self.inbox.closed.as_ref().map(Error::from_close)
    }

    /// Runs the loop until `done` holds, the session closes, or `limit` passes.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&mut Inbox) -> bool,
        limit: Option<Instant>,
        on_limit: &'static str,
    ) -> Result<(), Error> {
        loop {
            let deadline = self.drain();
            if done(&mut self.inbox) {
                return Ok(());
            }
            if let Some(e) = self.closed_error() {
                return Err(e);
            }
            let now = Instant::now();
            if limit.is_some_and(|l| now >= l) {
                return Err(Error::Timeout(on_limit));
            }
            let wake = match (deadline, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Check the deadline before blocking: a deadline already past is handled now.
            if let Some(wake) = wake {
                if now >= wake {
                    self.machine.handle_timeout(now);
                    continue;
                }
            }
            self.read_once(wake.map(|w| w - now));
        }
    }

    /// One blocking read, fed to the machine.
    fn read_once(&mut self, timeout: Option<Duration>) {
        // A zero timeout means "block forever" to std; the caller never passes zero.
        if let Err(e) = self
            .stream
            .set_read_timeout(timeout.filter(|t| !t.is_zero()))
        {
            return self.transport_failed(e);
        }
        match self.stream.read(&mut self.buf) {
            Ok(0) => self.machine.handle_eof(Instant::now()),
            Ok(n) => {
                if let Err(e) = self
                    .machine
                    .handle_transport(&self.buf[..n], Instant::now())
                {
                    // The session has queued its Closed event; drain delivers what came first.
                    log_protocol_error(&e);
                }
                if let Some(progress) = &self.progress {
                    progress(self.machine.session().receiving_len());
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.machine.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ) {
                    self.machine.handle_eof(Instant::now());
                } else {
                    self.transport_failed(e);
                }
            }
        }
    }

    pub fn shutdown(&mut self) {
        let _ = self.stream.shutdown();
    }
}

fn log_protocol_error(e: &ProtocolError) {
    tracing::debug!(error = %e, "protocol error from the peer");
}
