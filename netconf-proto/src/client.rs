//! The client side every adapter shares, written once: in-flight requests and their
//! waiters, what each I/O result means for the session, failing every waiter exactly once
//! when the session ends, and notification fan-out to bounded subscribers.
//!
//! An adapter is then only its loop: it moves [`ClientOutput::Transmit`] bytes to the
//! transport, feeds what it reads to [`ClientCore::handle_read`], completes the waiters
//! [`ClientCore::poll`] hands back, and sleeps until [`ClientOutput::Wait`]'s deadline, a
//! read, or a command. The waiter type is the runtime's: a oneshot sender for the async
//! adapters, nothing at all for the blocking one.
//!
//! ```
//! use std::time::Instant;
//! use netconf_proto::client::{ClientCore, ClientOptions, ClientOutput};
//! use netconf_proto::operations::{Datastore, GetConfig};
//! use netconf_proto::{Config, Session};
//!
//! let now = Instant::now();
//! let session = Session::client(Config::client(), now);
//! let mut core: ClientCore<&str, ()> = ClientCore::new(Box::new(session), &ClientOptions::new());
//! // Too early: the waiter hears so at once, and our hello goes out.
//! core.submit(&GetConfig::new(Datastore::Running), None, "caller 1", now);
//! assert!(matches!(core.poll(), ClientOutput::Complete("caller 1", Err(_))));
//! assert!(matches!(core.poll(), ClientOutput::Transmit(_)));
//! assert!(matches!(core.poll(), ClientOutput::Wait(Some(_)))); // the hello timeout
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client_error::{check_reply, Error, SessionEnd, TimeoutKind};
use crate::config::Config;
use crate::id_map::IdMap;
use crate::machine::Machine;
use crate::message::{Notification, RpcReply};
use crate::operations::Operation;
use crate::session::{CloseReason, Event, MessageId, Output};

/// Told how much of a message has arrived, after every read while one is arriving: for
/// progress displays of large replies.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Where the message now arriving stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes of the message received so far (0: the message just completed).
    pub received: usize,
}

/// Settings for a client, the same in every adapter.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    pub(crate) config: Config,
    pub(crate) connect_timeout: Duration,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) notification_buffer: usize,
    pub(crate) stream_window: usize,
    pub(crate) progress: Option<ProgressFn>,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("config", &self.config)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("notification_buffer", &self.notification_buffer)
            .field("stream_window", &self.stream_window)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::new()
    }
}

impl ClientOptions {
    /// Defaults: [`Config::client`], 10 s to connect, 60 s for a write to a peer that does
    /// not read, 1024 notifications per subscriber before it lags.
    pub fn new() -> Self {
        ClientOptions {
            config: Config::client(),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(60)),
            notification_buffer: 1024,
            stream_window: 4 << 20,
            progress: None,
        }
    }

    /// The session's configuration (timeouts, limits, capabilities).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Time allowed for the TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the TLS or SSH handshake and the server's `<hello>`.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.with_hello_timeout(timeout);
        self
    }

    /// Default time an RPC waits for its reply (`None`: forever).
    pub fn rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config = self.config.with_rpc_timeout(timeout);
        self
    }

    /// How long a write may wait on a peer that does not read (`None`: forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Notifications kept per subscriber before it lags (and is told how many it missed).
    pub fn notification_buffer(mut self, n: usize) -> Self {
        self.notification_buffer = n.max(1);
        self
    }

    /// Content of a streamed reply that may wait for its consumer before the client stops
    /// reading the transport (default 4 MiB): the memory bound of streaming.
    pub fn stream_window(mut self, bytes: usize) -> Self {
        self.stream_window = bytes.max(1);
        self
    }

    /// Called after every read while a message is arriving (see [`Progress`]).
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    pub fn session_config(&self) -> &Config {
        &self.config
    }

    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub fn get_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    pub fn get_notification_buffer(&self) -> usize {
        self.notification_buffer
    }

    pub fn get_stream_window(&self) -> usize {
        self.stream_window
    }
}

/// A notification subscriber fell behind and lost this many notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "notification consumer lagged: {} notifications dropped",
            self.0
        )
    }
}

impl std::error::Error for Lagged {}

/// What a subscriber receives: a notification, or how many it missed by falling behind.
pub type NotificationItem = Result<Notification, Lagged>;

/// Whether a subscriber took an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Its bounded queue is full: the item is lost and counted.
    Full,
    /// The subscriber is gone: forget it.
    Gone,
}

/// A subscriber's bounded queue, in the runtime's terms (a tokio or async-channel sender, a
/// std `SyncSender`): deliver without waiting, or say why not.
pub trait NotificationSink {
    fn try_deliver(&mut self, item: NotificationItem) -> Delivery;
}

/// `()` subscribes nobody: for clients that do not take notifications.
impl NotificationSink for () {
    fn try_deliver(&mut self, _item: NotificationItem) -> Delivery {
        Delivery::Gone
    }
}

/// Hands each notification to every subscriber; one that is full loses it (and is told how
/// many it lost before its next one), one that is gone is dropped. Memory follows the
/// subscribers: with none, a notification is dropped on arrival.
#[derive(Debug)]
pub struct Fanout<S> {
    subscribers: Vec<(S, u64)>,
}

impl<S> Default for Fanout<S> {
    fn default() -> Self {
        Fanout {
            subscribers: Vec::new(),
        }
    }
}

impl<S: NotificationSink> Fanout<S> {
    pub fn subscribe(&mut self, sink: S) {
        self.subscribers.push((sink, 0));
    }

    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    pub fn deliver(&mut self, n: &Notification) {
        self.subscribers.retain_mut(|(sink, lagged)| {
            if *lagged > 0 {
                match sink.try_deliver(Err(Lagged(*lagged))) {
                    Delivery::Delivered => *lagged = 0,
                    Delivery::Full => {
                        *lagged += 1;
                        return true;
                    }
                    Delivery::Gone => return false,
                }
            }
            match sink.try_deliver(Ok(n.clone())) {
                Delivery::Delivered => true,
                Delivery::Full => {
                    *lagged += 1;
                    true
                }
                Delivery::Gone => false,
            }
        });
    }

    /// Drops every subscriber: their streams end.
    pub fn clear(&mut self) {
        self.subscribers.clear();
    }
}

/// Where a streamed reply's content goes ([`ClientCore::submit_streamed`]): the consumer's
/// bounded buffer, in the runtime's terms. The core calls it as the reply arrives and
/// stops reading the transport while [`DataSink::backlog`] is at the window.
pub trait DataSink {
    /// The reply carries `<data>`: content follows.
    fn start(&mut self);
    /// More content. Returns false when the consumer is gone: the rest is discarded.
    fn data(&mut self, data: Bytes) -> bool;
    /// The reply is over: `Ok(None)` after its data, `Ok(Some(reply))` for a reply without
    /// `<data>` (`<ok/>`, custom output), `Err` for an rpc-error, a timeout, the end of the
    /// session.
    fn end(&mut self, result: Result<Option<RpcReply>, Error>);
    /// Content delivered and not yet consumed, in bytes.
    fn backlog(&self) -> usize;
}

/// `()` takes no streamed replies.
impl DataSink for () {
    fn start(&mut self) {}
    fn data(&mut self, _data: Bytes) -> bool {
        false
    }
    fn end(&mut self, _result: Result<Option<RpcReply>, Error>) {}
    fn backlog(&self) -> usize {
        0
    }
}

/// The consumer side of a streamed reply: pieces waiting to be read, and how the reply
/// ended. Adapters keep it behind their lock and add their way of waking, so a
/// [`DataSink`] (the driver's side) and a reader (the caller's) share it.
#[derive(Debug, Default)]
pub struct DataBuffer {
    pieces: VecDeque<Bytes>,
    queued: usize,
    started: bool,
    end: Option<Result<Option<RpcReply>, Error>>,
    /// The reader went away: nothing more is wanted.
    closed: bool,
}

impl DataBuffer {
    pub fn new() -> Self {
        DataBuffer::default()
    }

    // ----- the driver's side ([`DataSink`]) -----

    pub fn start(&mut self) {
        self.started = true;
    }

    /// Adds content; false once the reader is gone.
    pub fn push(&mut self, data: Bytes) -> bool {
        if self.closed {
            return false;
        }
        self.queued += data.len();
        self.pieces.push_back(data);
        true
    }

    pub fn end(&mut self, result: Result<Option<RpcReply>, Error>) {
        if self.end.is_none() {
            self.end = Some(result);
        }
    }

    /// Content waiting to be read.
    pub fn backlog(&self) -> usize {
        self.queued
    }

    // ----- the reader's side -----

    /// Whether the reply carried `<data>` (its content streams).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The next piece of content, if one is waiting.
    pub fn pop(&mut self) -> Option<Bytes> {
        let piece = self.pieces.pop_front()?;
        self.queued -= piece.len();
        Some(piece)
    }

    /// Copies waiting content into `buf` (for `Read`-style readers); returns how much.
    pub fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            let take = front.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&front.split_to(take));
            n += take;
            if front.is_empty() {
                self.pieces.pop_front();
            }
        }
        self.queued -= n;
        n
    }

    /// Whether the reply is over (content may still be waiting).
    pub fn has_ended(&self) -> bool {
        self.end.is_some()
    }

    /// The reply's failure, if it failed (taken once, whatever is still waiting: for
    /// callers deciding whether the reply started at all).
    pub fn take_error(&mut self) -> Option<Error> {
        match self.end.take() {
            Some(Err(e)) => Some(e),
            other => {
                self.end = other;
                None
            }
        }
    }

    /// Whether nothing is waiting and the reply is over: the reader has everything.
    pub fn is_finished(&self) -> bool {
        self.pieces.is_empty() && self.end.is_some()
    }

    /// How the reply ended, once it has and everything before it was read (taken once).
    pub fn take_end(&mut self) -> Option<Result<Option<RpcReply>, Error>> {
        if self.pieces.is_empty() {
            self.end.take()
        } else {
            None
        }
    }

    /// The reader is gone: drop what waits; the driver stops delivering.
    pub fn close(&mut self) {
        self.closed = true;
        self.pieces.clear();
        self.queued = 0;
    }
}

/// What the client core asks of its adapter, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientOutput<W> {
    /// Bytes to write to the transport, in order, completely.
    Transmit(Bytes),
    /// The hello exchange finished: the client may be handed to the caller.
    Established,
    /// A request finished: hand the result to its waiter.
    Complete(W, Result<RpcReply, Error>),
    /// The session ended (exactly once, after every waiter was completed). Stop the loop.
    Ended(SessionEnd),
    /// Nothing to do until this deadline (`None`: none), a read, or a command.
    Wait(Option<Instant>),
}

/// The client's sans-IO core. `W` is the runtime's waiter, `S` its notification sink, `D`
/// its streamed-reply sink.
pub struct ClientCore<W, S = (), D = ()> {
    machine: Box<dyn Machine + Send>,
    waiters: IdMap<MessageId, W>,
    /// Streamed requests and where their content goes.
    streams: IdMap<MessageId, D>,
    /// Content a streamed reply may have waiting for its consumer before reading stops.
    stream_window: usize,
    /// Reading was held back for a streamed reply's consumer since the last input: the
    /// silence meanwhile is ours, not a stalled peer's.
    held_back: AtomicBool,
    /// Requests answered without reaching the session (it had ended, or the call was wrong).
    done: VecDeque<(W, Result<RpcReply, Error>)>,
    /// Waiters of `close()`, answered when the session has ended (with the close-session
    /// reply once it came), so a caller of `close()` never sees the session still open.
    close_waiters: Vec<(W, Option<Result<RpcReply, Error>>)>,
    /// The close-session we sent.
    close_id: Option<MessageId>,
    fanout: Fanout<S>,
    progress: Option<ProgressFn>,
    /// Set when the transport failed or a write timed out (the session says only "Local").
    transport_end: Option<SessionEnd>,
    ended: Option<SessionEnd>,
    reported_established: bool,
    reported_end: bool,
}

impl<W, S, D> fmt::Debug for ClientCore<W, S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCore")
            .field("state", &self.machine.session().state())
            .field("waiters", &self.waiters.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<W, S: NotificationSink, D: DataSink> ClientCore<W, S, D> {
    /// Wraps a client machine (a [`Session`](crate::Session) for plaintext transports, a
    /// [`TlsSession`](crate::TlsSession) for TLS) created with `options`' config.
    pub fn new(machine: Box<dyn Machine + Send>, options: &ClientOptions) -> Self {
        ClientCore {
            machine,
            waiters: IdMap::default(),
            streams: IdMap::default(),
            stream_window: options.stream_window,
            held_back: AtomicBool::new(false),
            done: VecDeque::new(),
            close_waiters: Vec::new(),
            close_id: None,
            fanout: Fanout::default(),
            progress: options.progress.clone(),
            transport_end: None,
            ended: None,
            reported_established: false,
            reported_end: false,
        }
    }

    // ----- getters -----

    /// The NETCONF session (session-id, capabilities, framing, state).
    pub fn session(&self) -> &crate::Session {
        self.machine.session()
    }

    pub fn machine(&self) -> &dyn Machine {
        &*self.machine
    }

    /// How the session ended, once it has.
    pub fn ended(&self) -> Option<&SessionEnd> {
        self.ended.as_ref()
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the loop should read the transport now: not while a streamed reply's
    /// consumer has a window's worth waiting (TCP then holds the server back), so memory
    /// stays bounded whatever the reply's size.
    pub fn wants_read(&self) -> bool {
        if self.ended.is_some() || !self.machine.session().wants_input() {
            return false;
        }
        let held = self.holds_back();
        if held {
            self.held_back.store(true, Ordering::Relaxed);
        }
        !held
    }

    /// Whether a streamed reply's consumer has a window's worth waiting.
    fn holds_back(&self) -> bool {
        self.streams
            .values()
            .any(|d| d.backlog() >= self.stream_window)
    }

    /// Requests waiting for their replies.
    pub fn in_flight(&self) -> usize {
        self.waiters.len()
    }

    // ----- commands -----

    /// Sends a request; its result comes back as [`ClientOutput::Complete`] with `waiter`,
    /// whatever happens (a reply, an rpc-error, a timeout, the end of the session).
    pub fn submit(
        &mut self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
        waiter: W,
        now: Instant,
    ) -> Option<MessageId> {
        if let Some(end) = &self.ended {
            self.done.push_back((waiter, Err(end.error())));
            return None;
        }
        match self
            .machine
            .session_mut()
            .send_rpc_with_timeout(op, timeout, now)
        {
            Ok(id) => {
                self.waiters.insert(id, waiter);
                Some(id)
            }
            Err(e) => {
                let e = self.refusal(e);
                self.done.push_back((waiter, Err(e)));
                None
            }
        }
    }

    /// Sends a request whose `<data>` reply goes to `sink` as it arrives (see
    /// [`DataSink`]); a reply without data ends the sink with it.
    pub fn submit_streamed(
        &mut self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
        mut sink: D,
        now: Instant,
    ) -> Option<MessageId> {
        if let Some(end) = &self.ended {
            sink.end(Err(end.error()));
            return None;
        }
        match self
            .machine
            .session_mut()
            .send_rpc_streamed(op, timeout, now)
        {
            Ok(id) => {
                self.streams.insert(id, sink);
                Some(id)
            }
            Err(e) => {
                sink.end(Err(self.refusal(e)));
                None
            }
        }
    }

    /// Why the session refused a request: how it ended, if it is ending, else the misuse.
    fn refusal(&self, e: crate::UsageError) -> Error {
        match (e, self.machine.session().is_closed()) {
            (crate::UsageError::Closed, _) | (_, true) => self.end_error(),
            (e, false) => Error::Usage(e),
        }
    }

    /// The default RPC timeout, for [`ClientCore::submit`].
    pub fn rpc_timeout(&self) -> Option<Duration> {
        self.machine.session().config().rpc_timeout()
    }

    /// The caller of a request went away: forget it; its late reply (or the rest of its
    /// streamed reply) is discarded.
    pub fn cancel(&mut self, id: MessageId) {
        if self.waiters.remove(&id).is_some() || self.streams.remove(&id).is_some() {
            self.machine.session_mut().cancel_rpc(id);
        }
    }

    /// Ends the session with `<close-session>`. `waiter` completes once the session has
    /// ended: with the close-session reply, or with how it ended; [`close_result`] turns
    /// either into what a caller of `close()` expects (a session that had already ended
    /// counts as closed).
    pub fn close(&mut self, waiter: W, now: Instant) {
        if self.ended.is_some() {
            self.done
                .push_back((waiter, Err(Error::Closed(CloseReason::Local))));
            return;
        }
        if let Some(id) = self.machine.session_mut().close(now) {
            self.close_id = Some(id);
        }
        self.close_waiters.push((waiter, None));
    }

    /// Ends the session now, without a close-session exchange.
    pub fn abort(&mut self) {
        self.machine.session_mut().abort();
    }

    /// Adds a notification subscriber.
    pub fn subscribe(&mut self, sink: S) {
        if self.ended.is_none() {
            self.fanout.subscribe(sink);
        }
    }

    // ----- inputs -----

    /// The result of one read from the transport: `Ok(bytes)` (empty at end of stream) or
    /// the error. Interruptions are ignored; a reset counts as end of stream.
    pub fn handle_read(&mut self, read: io::Result<&[u8]>, now: Instant) {
        match read {
            Ok([]) => self.machine.handle_eof(now),
            Ok(data) => {
                self.held_back.store(false, Ordering::Relaxed);
                if let Err(e) = self.machine.handle_transport(data, now) {
                    tracing::debug!(error = %e, "protocol error from the server");
                }
                if let Some(progress) = &self.progress {
                    progress(Progress {
                        received: self.machine.session().receiving_len(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_eof_like(&e) => self.machine.handle_eof(now),
            Err(e) => self.transport_failed(SessionEnd::Io(e.kind(), e.to_string())),
        }
    }

    /// A write to the transport failed (or timed out: pass an `io::ErrorKind::TimedOut`).
    pub fn handle_write_error(&mut self, e: &io::Error) {
        if self.machine.session().is_closed() {
            // Our last bytes (a close_notify to a peer already gone) are nobody's news.
            tracing::debug!(error = %e, "write after the session closed failed");
            return;
        }
        let end = if e.kind() == io::ErrorKind::TimedOut {
            SessionEnd::Timeout(TimeoutKind::Write)
        } else {
            SessionEnd::Io(e.kind(), e.to_string())
        };
        self.transport_failed(end);
    }

    /// A deadline from [`ClientOutput::Wait`] passed (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        // Not reading was our choice (a streamed reply's consumer is behind): a server
        // silent meanwhile, mid-reply, has not stalled. Once reading has resumed, the flag
        // set while holding back restarts the stall clock one last time and is spent: a
        // server silent from then on has stalled (however long we held back before).
        if self.holds_back() || self.held_back.swap(false, Ordering::Relaxed) {
            self.machine.session_mut().input_held_back(now);
        }
        self.machine.handle_timeout(now);
    }

    // ----- output -----

    /// The next thing to do; call until [`ClientOutput::Wait`] (or `Ended`).
    pub fn poll(&mut self) -> ClientOutput<W> {
        if let Some((w, result)) = self.done.pop_front() {
            return ClientOutput::Complete(w, result);
        }
        loop {
            match self.machine.poll_output() {
                Output::Transmit(bytes) => {
                    if self.transport_end.is_some() {
                        continue; // the transport is gone; let the session wind down
                    }
                    return ClientOutput::Transmit(bytes);
                }
                Output::Event(event) => {
                    if let Some(out) = self.on_event(event) {
                        return out;
                    }
                }
                Output::Wait(deadline) => {
                    if self.ended.is_none() {
                        return ClientOutput::Wait(deadline);
                    }
                    break;
                }
            }
        }
        self.poll_end()
    }

    /// Like [`ClientCore::poll`], but never a `Transmit`: the bytes to write stay in the
    /// machine for a later `poll`. For a loop whose writer already has enough to write (a
    /// large request encrypted only as the transport takes it): the replies and
    /// notifications arriving meanwhile are not held behind that request.
    pub fn poll_events(&mut self) -> ClientOutput<W> {
        if let Some((w, result)) = self.done.pop_front() {
            return ClientOutput::Complete(w, result);
        }
        while let Some(event) = self.machine.poll_event() {
            if let Some(out) = self.on_event(event) {
                return out;
            }
        }
        if self.ended.is_none() {
            return ClientOutput::Wait(self.machine.next_deadline());
        }
        self.poll_end()
    }

    /// How much of the session's output has been handed out as transmits, in the session's
    /// plaintext bytes: a request submitted when [`Session::output_position`](crate::Session::output_position) was `p` is
    /// all handed out once this reaches `p` (see [`Machine::output_handed_out`]).
    pub fn output_handed_out(&self) -> u64 {
        self.machine.output_handed_out()
    }

    /// The session has ended: every waiter hears why, once, then the loop hears it.
    fn poll_end(&mut self) -> ClientOutput<W> {
        let end = self
            .ended
            .clone()
            .unwrap_or(SessionEnd::Close(CloseReason::Local));
        if let Some(id) = self.waiters.keys().next().copied() {
            if let Some(w) = self.waiters.remove(&id) {
                return ClientOutput::Complete(w, Err(end.error()));
            }
        }
        if let Some((w, reply)) = self.close_waiters.pop() {
            return ClientOutput::Complete(w, reply.unwrap_or_else(|| Err(end.error())));
        }
        for (_, mut sink) in self.streams.drain() {
            sink.end(Err(end.error()));
        }
        if !self.reported_end {
            self.reported_end = true;
            self.fanout.clear();
            return ClientOutput::Ended(end);
        }
        ClientOutput::Wait(None)
    }

    fn on_event(&mut self, event: Event) -> Option<ClientOutput<W>> {
        match event {
            Event::Established { .. } if !self.reported_established => {
                self.reported_established = true;
                Some(ClientOutput::Established)
            }
            Event::Reply { id, reply } if self.close_id == Some(id) => {
                for (_, slot) in &mut self.close_waiters {
                    *slot = Some(check_reply(reply.clone()));
                }
                None
            }
            Event::Reply { id, reply } if self.streams.contains_key(&id) => {
                if let Some(mut sink) = self.streams.remove(&id) {
                    sink.end(check_reply(reply).map(Some));
                }
                None
            }
            Event::Reply { id, reply } => {
                let w = self.waiters.remove(&id)?;
                Some(ClientOutput::Complete(w, check_reply(reply)))
            }
            Event::DataStart { id } => {
                if let Some(sink) = self.streams.get_mut(&id) {
                    sink.start();
                }
                None
            }
            Event::DataPiece { id, data } => {
                let gone = self
                    .streams
                    .get_mut(&id)
                    .is_some_and(|sink| !sink.data(data));
                if gone {
                    self.streams.remove(&id);
                    self.machine.session_mut().cancel_rpc(id);
                }
                None
            }
            Event::DataEnd { id } => {
                if let Some(mut sink) = self.streams.remove(&id) {
                    sink.end(Ok(None));
                }
                None
            }
            Event::RpcTimedOut { id } if self.streams.contains_key(&id) => {
                if let Some(mut sink) = self.streams.remove(&id) {
                    sink.end(Err(Error::Timeout(TimeoutKind::Rpc)));
                }
                None
            }
            Event::RpcTimedOut { id } => {
                let w = self.waiters.remove(&id)?;
                Some(ClientOutput::Complete(
                    w,
                    Err(Error::Timeout(TimeoutKind::Rpc)),
                ))
            }
            Event::Notification(n) => {
                self.fanout.deliver(&n);
                None
            }
            Event::MessageRejected { error } => {
                tracing::warn!(%error, "NETCONF message from the server dropped");
                None
            }
            Event::Closed { reason } => {
                // Kept: what the machine still hands out after this (an alert, the rest of
                // a paced request) has nowhere to go once the transport is gone.
                let end = self
                    .transport_end
                    .clone()
                    .unwrap_or(SessionEnd::Close(reason));
                self.ended = Some(end);
                None
            }
            _ => None,
        }
    }

    fn transport_failed(&mut self, end: SessionEnd) {
        tracing::debug!(?end, "transport failed");
        if self.transport_end.is_none() && self.ended.is_none() {
            self.transport_end = Some(end);
        }
        self.machine.session_mut().abort();
    }

    fn end_error(&self) -> Error {
        match (&self.ended, &self.transport_end) {
            (Some(end), _) | (None, Some(end)) => end.error(),
            (None, None) => Error::Closed(CloseReason::Local),
        }
    }
}

/// What `close()` returns: the close-session reply, or a session that ended cleanly anyway
/// (closed before, closed by us), is success.
pub fn close_result(result: Result<RpcReply, Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(Error::Closed(CloseReason::CloseSession | CloseReason::Local)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Errors that mean "the peer is gone" rather than "the transport broke".
fn is_eof_like(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}
