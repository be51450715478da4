//! The blocking client: [`ClientCore`] behind a mutex; callers that write their own requests
//! and wait for their own results (keeping the deadlines, and reading the transport
//! themselves when nobody else does: see `reading.rs`); a reading thread for everything
//! else, and a writing thread for what a caller cannot write at once (`writer.rs`) and for
//! the requests of a crowd of callers, which it writes several at a time.

use netconf_proto::id_map::IdMap;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use netconf_proto::address::split_host_port;
use netconf_proto::client::{
    close_result, ClientCore, ClientOptions, ClientOutput, Delivery, NotificationItem,
    NotificationSink,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::stream::{DataReader, StreamShared, StreamSink};
use netconf_proto::operations::{Operation, Rpc, RpcBody};
use netconf_proto::rustls::pki_types::ServerName;
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{
    Capabilities, CloseReason, Error, Framing, Machine, MessageId, RpcReply, Session, SessionEnd,
    TimeoutKind, TlsError, TlsSession, UsageError,
};

pub use netconf_proto::address::DEFAULT_TLS_PORT;

use crate::reading::{lead_while_waiting, read_loop, ReadSide};
use crate::signal::Signal;
use crate::transport::Transport;
use crate::writer::{Writer, PACE, PACE_RESUME};

/// A caller waiting for a result.
pub(crate) type Ticket = u64;

/// From this many callers waiting for results, a caller leaves its request to the writing
/// thread instead of writing it itself.
const CROWD: usize = 8;

/// A subscriber's bounded queue.
pub(crate) struct Sink(SyncSender<NotificationItem>);

impl NotificationSink for Sink {
    fn try_deliver(&mut self, item: NotificationItem) -> Delivery {
        match self.0.try_send(item) {
            Ok(()) => Delivery::Delivered,
            Err(TrySendError::Full(_)) => Delivery::Full,
            Err(TrySendError::Disconnected(_)) => Delivery::Gone,
        }
    }
}

pub(crate) struct State {
    pub(crate) core: ClientCore<Ticket, Sink, StreamSink>,
    pub(crate) results: IdMap<Ticket, Result<RpcReply, Error>>,
    /// The callers waiting for a result, each woken alone when its result arrives (with
    /// many callers in flight, waking them all for every reply would cost each reply as
    /// many wake-ups as there are callers).
    pub(crate) wakers: IdMap<Ticket, Arc<Signal>>,
    /// Set by whoever reads around its drain: results' waiters are woken once it has
    /// released the lock (`to_wake`), so that a woken caller does not at once block again
    /// on the lock the reader still holds.
    pub(crate) wake_later: bool,
    pub(crate) to_wake: Vec<Arc<Signal>>,
    /// Requests sent with [`Client::send`], awaiting [`Client::recv`].
    sent: IdMap<MessageId, Ticket>,
    next_ticket: Ticket,
    pub(crate) deadline: Option<Instant>,
    established: bool,
    pub(crate) ended: Option<SessionEnd>,
    /// A thread holds the reading role (see [`crate::reading`]).
    pub(crate) reading: bool,
    /// Threads waiting in [`Inner::wait_on`] for something other than a result.
    pub(crate) other_waiters: usize,
    /// Someone asked for notifications: reading must not wait for a caller.
    pub(crate) subscribed: bool,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    changed: Signal,
    writer: Arc<Writer>,
    transport: Box<dyn Transport>,
    notification_buffer: usize,
    /// Content of a streamed reply that may wait for its reader before reading stops.
    stream_window: usize,
    /// The reading thread waits for a streamed reply's reader to catch up: a reader that
    /// consumes wakes it (through `reader_wake`).
    pub(crate) read_paused: AtomicBool,
    /// The transport's read side, for the holder of the reading role.
    pub(crate) read_side: Mutex<ReadSide>,
    /// Callers may read for themselves (the transport can wait for readability).
    pub(crate) callers_read: bool,
    /// Wakes the reading thread.
    pub(crate) reader_wake: Signal,
    /// Streamed replies being read or about to be: their readers need the reading thread.
    pub(crate) streams: AtomicUsize,
    /// Encrypt only up to [`PACE`] ahead of the writer (TLS).
    pace: bool,
    /// The core holds the rest of a large request back until the writer makes room; only
    /// its events are taken meanwhile (replies are not held behind the request).
    paced: AtomicBool,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read_side(&self) -> MutexGuard<'_, ReadSide> {
        self.read_side.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the core to `Wait` with the state locked: transmits to the writing thread,
    /// results to their tickets. Wakes every waiter.
    pub(crate) fn drain(&self, st: &mut State) {
        self.drain_to(st, Writer::push)
    }

    /// Like [`Inner::drain`], but the transmits wait for this thread to write them (with
    /// [`Writer::write_here`], once the lock is released): a caller sends its own request.
    fn drain_for_caller(&self, st: &mut State) {
        self.drain_to(st, Writer::queue)
    }

    fn drain_to(&self, st: &mut State, transmit: fn(&Writer, bytes::Bytes)) {
        loop {
            let output = if self.paced.load(Ordering::SeqCst) {
                st.core.poll_events()
            } else {
                st.core.poll()
            };
            match output {
                ClientOutput::Transmit(bytes) => {
                    transmit(&self.writer, bytes);
                    if self.pace && self.writer.backlog() > PACE {
                        self.paced.store(true, Ordering::SeqCst);
                        // Tested again after the store: a writer that emptied its queue
                        // before it could see the pause would never resume it.
                        if self.writer.backlog() <= PACE_RESUME {
                            self.paced.store(false, Ordering::SeqCst);
                        }
                    }
                }
                ClientOutput::Established => st.established = true,
                ClientOutput::Complete(ticket, result) => {
                    st.results.insert(ticket, result);
                    if let Some(waker) = st.wakers.get(&ticket) {
                        if st.wake_later {
                            st.to_wake.push(waker.clone());
                        } else {
                            waker.notify_one();
                        }
                    }
                }
                ClientOutput::Ended(end) => {
                    st.ended = Some(end);
                    self.writer.finish();
                }
                ClientOutput::Wait(deadline) => {
                    st.deadline = deadline;
                    break;
                }
                _ => {}
            }
        }
        self.changed.notify_all();
        // The reading thread waits for the core to want input again, or for the end.
        if self.read_paused.load(Ordering::SeqCst) || st.ended.is_some() {
            self.reader_wake.notify_all();
        }
    }

    /// The writer made room (see [`PACE`]): encrypt more of what the core held back, on the
    /// thread that wrote. The drain takes the events that arrived meanwhile too.
    fn resume(&self) {
        let mut st = self.lock();
        if self.paced.load(Ordering::SeqCst) && self.writer.backlog() <= PACE_RESUME {
            self.paced.store(false, Ordering::SeqCst);
            self.drain(&mut st);
        } else {
            self.changed.notify_all();
        }
    }

    /// Waits, keeping the deadlines, until `done` holds.
    fn wait_until<'a>(
        &'a self,
        st: MutexGuard<'a, State>,
        done: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        self.wait_on(&self.changed, st, done)
    }

    /// Waits, keeping the deadlines, for the result of `ticket`, and takes it.
    fn wait_result(
        &self,
        mut st: MutexGuard<'_, State>,
        ticket: Ticket,
    ) -> Result<RpcReply, Error> {
        let waker = Arc::new(Signal::default());
        st.wakers.insert(ticket, waker.clone());
        let mut st = self.wait_for(&waker, true, st, |st| st.results.contains_key(&ticket));
        st.wakers.remove(&ticket);
        st.results
            .remove(&ticket)
            .unwrap_or_else(|| Err(Inner::ended_error(&st)))
    }

    /// [`Inner::wait_until`] on a given signal.
    pub(crate) fn wait_on<'a>(
        &'a self,
        changed: &Signal,
        st: MutexGuard<'a, State>,
        done: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        self.wait_for(changed, false, st, done)
    }

    /// Waits on `signal` until `done` holds, keeping the deadlines. `for_result`: a caller
    /// registered in `wakers`, waiting for its result, which reads the transport meanwhile
    /// if nobody else does (see [`crate::reading`]).
    fn wait_for<'a>(
        &'a self,
        signal: &Signal,
        for_result: bool,
        mut st: MutexGuard<'a, State>,
        mut done: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        let _counted = signal.waiting();
        if !for_result {
            st.other_waiters += 1;
        }
        let mut leading = false;
        loop {
            if done(&mut st) {
                if !for_result {
                    st.other_waiters -= 1;
                }
                if leading {
                    self.release_read(&mut st);
                }
                return st;
            }
            let now = Instant::now();
            if st.deadline.is_some_and(|d| d <= now) {
                st.core.handle_timeout(now);
                self.drain(&mut st);
                continue;
            }
            // Only a result comes by reading alone: a caller waiting for its bytes to be
            // written, or for the session's end, must not sit in a read meanwhile.
            if for_result {
                let read;
                (st, read) = lead_while_waiting(self, st, &mut leading);
                if read {
                    continue;
                }
            } else if self.callers_read && !st.reading {
                self.reader_wake.notify_all();
            }
            st = match st.deadline {
                Some(d) => signal.wait_timeout(st, d.saturating_duration_since(now)),
                None => signal.wait(st),
            };
        }
    }

    fn ticket(st: &mut State) -> Ticket {
        st.next_ticket += 1;
        st.next_ticket
    }

    /// A streamed reply's reader consumed content down to `backlog`: wake the reading
    /// thread if it waits for that (at half the window, so it then reads many buffers
    /// before it pauses again, not one per piece consumed).
    pub(crate) fn consumed(&self, backlog: usize) {
        if self.read_paused.load(Ordering::SeqCst) && backlog <= self.stream_window / 2 {
            let _guard = self.lock();
            self.reader_wake.notify_all();
        }
    }

    /// A streamed reply's reader went away: the rest of the reply is discarded as it
    /// arrives (the session goes on), and reading resumes if it waited for this reader.
    pub(crate) fn cancel_stream(&self, id: MessageId) {
        let mut st = self.lock();
        st.core.cancel(id);
        self.drain(&mut st);
    }

    fn ended_error(st: &State) -> Error {
        st.ended
            .as_ref()
            .map(SessionEnd::error)
            .unwrap_or(Error::Closed(CloseReason::Local))
    }
}

/// Ends the session politely when the last [`Client`] handle goes away.
pub(crate) struct LastHandle(Arc<Inner>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        let inner = self.0.clone();
        let mut st = inner.lock();
        if st.ended.is_some() {
            return;
        }
        let ticket = Inner::ticket(&mut st);
        st.core.close(ticket, Instant::now());
        inner.drain(&mut st);
        drop(st);
        // Someone must keep the close timeout and shut the socket: not the dropping thread.
        let _ = std::thread::Builder::new()
            .name("netconf-close".into())
            .spawn(move || {
                let st = inner.wait_until(inner.lock(), |st| st.ended.is_some());
                drop(st);
                inner.transport.shutdown();
            });
    }
}

/// A blocking NETCONF client session. Cheap to clone; every clone talks to the same session,
/// so several threads may have RPCs in flight at once (pipelined, matched by message-id).
/// Dropping the last clone ends the session with `<close-session>`.
///
/// A thread that calls and waits reads its own reply off the transport when nobody else is
/// reading (over TCP, TLS, SSH and Unix sockets), so a round trip wakes one thread on each
/// side, as a plain socket's does. Many threads may call at once: with a crowd waiting,
/// their requests are written several at a time by the session's writing thread, but every
/// reply must still wake its own thread. One thread can keep many requests in flight
/// instead, with [`Client::send`] and [`Client::recv`]. BENCHMARKS.md has both against raw
/// rustls on the same machine.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Held only to be dropped with the last clone.
    _last: Arc<LastHandle>,
    session_id: u32,
    capabilities: Arc<Capabilities>,
    framing: Framing,
    rpc_timeout: Option<Duration>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects over TLS (RFC 7589; port 6513 unless `addr` names one) with default options.
    pub fn connect_tls(addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        Client::connect_tls_with(addr, tls, &ClientOptions::new())
    }

    /// Connects over TLS with `options`.
    pub fn connect_tls_with(
        addr: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (host, port) = split_host_port(addr, DEFAULT_TLS_PORT)?;
        let stream = connect_tcp(host, port, options.get_connect_timeout())?;
        Client::connect_tls_over(stream, host, tls, options)
    }

    /// NETCONF over TLS on a stream the caller already has (a connection a device opened to
    /// us for call home, a proxy tunnel); `server_name` is what the server's certificate
    /// must name.
    pub fn connect_tls_over(
        stream: impl Transport,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let name: ServerName<'static> = tls.server_name_for(server_name)?;
        Client::tls_with_config(Box::new(stream), tls.build()?, name, options)
    }

    /// A TLS session with a ready rustls configuration (call home's device check).
    pub(crate) fn tls_with_config(
        stream: Box<dyn Transport>,
        config: Arc<netconf_proto::rustls::ClientConfig>,
        name: ServerName<'static>,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let machine = TlsSession::client(
            config,
            name,
            options.session_config().clone(),
            Instant::now(),
        )
        .map_err(|e| Error::Tls(TlsError::from_rustls(e)))?;
        Client::establish(stream, Box::new(machine), true, options)
    }

    /// NETCONF over a plaintext stream (an SSH channel, a Unix socket, TCP in tests) with
    /// default options.
    pub fn from_stream(stream: impl Transport) -> Result<Client, Error> {
        Client::from_stream_with(stream, &ClientOptions::new())
    }

    /// NETCONF over a plaintext stream with `options`.
    pub fn from_stream_with(
        stream: impl Transport,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let machine = Session::client(options.session_config().clone(), Instant::now());
        Client::establish(Box::new(stream), Box::new(machine), false, options)
    }

    /// `pace`: the machine encrypts (TLS), so its transmits are copies worth pacing.
    fn establish(
        transport: Box<dyn Transport>,
        machine: Box<dyn Machine + Send>,
        pace: bool,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let callers_read = transport.can_wait_readable();
        let reader = transport.try_clone_transport()?;
        let watcher = transport.try_clone_transport()?;
        let write_half = transport.try_clone_transport()?;
        // The writer reports a failed write to the session it serves, once that exists.
        let session: Arc<OnceLock<Weak<Inner>>> = Arc::default();
        // Callers of `send` wait for their bytes to be written: wake them. A request held
        // back (see `PACE`) is encrypted further once the backlog is low enough.
        let on_written = {
            let session = session.clone();
            move || {
                if let Some(inner) = session.get().and_then(Weak::upgrade) {
                    if inner.paced.load(Ordering::SeqCst) && inner.writer.backlog() <= PACE_RESUME {
                        return inner.resume();
                    }
                    if inner.changed.has_waiters() {
                        let _guard = inner.lock();
                        inner.changed.notify_all();
                    }
                }
            }
        };
        let on_error = {
            let session = session.clone();
            move |e: std::io::Error| {
                if let Some(inner) = session.get().and_then(Weak::upgrade) {
                    let mut st = inner.lock();
                    st.core.handle_write_error(&e);
                    inner.drain(&mut st);
                }
            }
        };
        let writer = Writer::spawn(
            write_half,
            options.get_write_timeout(),
            on_written,
            on_error,
        )?;
        let inner = Arc::new({
            Inner {
                state: Mutex::new(State {
                    core: ClientCore::new(machine, options),
                    results: IdMap::default(),
                    wakers: IdMap::default(),
                    wake_later: false,
                    to_wake: Vec::new(),
                    sent: IdMap::default(),
                    next_ticket: 0,
                    deadline: None,
                    established: false,
                    ended: None,
                    reading: false,
                    other_waiters: 0,
                    subscribed: false,
                }),
                changed: Signal::default(),
                writer,
                transport,
                notification_buffer: options.get_notification_buffer(),
                stream_window: options.get_stream_window(),
                read_paused: AtomicBool::new(false),
                callers_read,
                read_side: Mutex::new(ReadSide::new(reader)),
                reader_wake: Signal::default(),
                streams: AtomicUsize::new(0),
                pace,
                paced: AtomicBool::new(false),
            }
        });
        let _ = session.set(Arc::downgrade(&inner));
        let reading = inner.clone();
        std::thread::Builder::new()
            .name("netconf-reader".into())
            .spawn(move || read_loop(&reading, watcher))?;
        let mut st = inner.lock();
        inner.drain(&mut st);
        let st = inner.wait_until(st, |st| st.established || st.ended.is_some());
        if !st.established {
            // The writer, finished at the end, writes what was queued (a TLS alert saying
            // why we refused the peer) and then shuts the transport down: shutting it here
            // would race the alert.
            return Err(Inner::ended_error(&st));
        }
        let session = st.core.session();
        let client = Client {
            session_id: session.session_id().unwrap_or_default(),
            capabilities: Arc::new(session.peer_capabilities().clone()),
            framing: session.framing(),
            rpc_timeout: session.config().rpc_timeout(),
            _last: Arc::new(LastHandle(inner.clone())),
            inner: inner.clone(),
        };
        drop(st);
        Ok(client)
    }

    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// The server's capabilities, from its hello.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().ended.is_some()
    }

    /// Sends an operation and returns its typed result (`GetConfig` gives the `<data>`
    /// payload, `Lock` gives `()`); an `<rpc-error>` is `Err(Error::Rpc(..))`.
    pub fn call<R: Rpc + ?Sized>(&self, op: &R) -> Result<R::Output, Error> {
        R::output(self.rpc(op)?)
    }

    /// Like [`Client::call`] with its own timeout (`None`: forever).
    pub fn call_with_timeout<R: Rpc + ?Sized>(
        &self,
        op: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Output, Error> {
        R::output(self.rpc_with_timeout(op, timeout)?)
    }

    /// Sends a data operation ([`GetConfig`](crate::operations::GetConfig),
    /// [`Get`](crate::operations::Get), [`GetData`](crate::operations::GetData), or any
    /// other whose reply carries `<data>`) and returns once its reply has begun: the
    /// [`DataReader`] hands out the content of `<data>` (the envelope stripped) as it
    /// arrives, through [`std::io::Read`] or piece by piece, so a reply of any size costs
    /// a bounded amount of memory ([`ClientOptions::stream_window`], 4 MiB by default).
    ///
    /// An `<rpc-error>` reply is `Err(Error::Rpc(..))` at once, as with [`Client::call`];
    /// a reply without `<data>` (`<ok/>`) gives a reader already at its end, just as
    /// `call` gives an empty payload for it (see [`DataReader::has_data`]).
    ///
    /// While the reader's unread content is at the window the session stops reading its
    /// transport (TCP then holds the server back), so replies to other RPCs on this
    /// session wait too: read the reply (or drop the reader, which discards the rest of it
    /// without ending the session) before waiting for another reply on the same thread.
    /// The timeout runs until the reply begins; after that, a server that stops sending
    /// in the middle of it ends the session after the stall timeout, and a reader that
    /// stops reading for longer than the server's write timeout gets the session ended by
    /// the server.
    pub fn call_streamed(&self, op: &(impl Operation + ?Sized)) -> Result<DataReader, Error> {
        self.call_streamed_with_timeout(op, self.rpc_timeout)
    }

    /// Like [`Client::call_streamed`] with its own timeout for the reply to begin (`None`:
    /// forever).
    pub fn call_streamed_with_timeout(
        &self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<DataReader, Error> {
        let inner = &self.inner;
        let shared = Arc::new(StreamShared::default());
        // Counted from now: once the reply begins, its reader needs the reading thread
        // (see `crate::reading`); the `DataReader` of a reply with data keeps the count.
        inner.streams.fetch_add(1, Ordering::SeqCst);
        let mut st = inner.lock();
        let id =
            st.core
                .submit_streamed(op, timeout, StreamSink::new(shared.clone()), Instant::now());
        inner.drain(&mut st);
        let st = inner.wait_on(&shared.begun, st, |_| shared.has_begun());
        drop(st);
        let started = shared.buffer().started() && id.is_some();
        if !started {
            inner.streams.fetch_sub(1, Ordering::SeqCst);
            // Over already: an rpc-error, a timeout, the end of the session (`Err`), or a
            // reply without `<data>` (a reader at its end).
            if let Some(Err(e)) = shared.buffer().take_end() {
                return Err(e);
            }
        }
        let Some(id) = id else {
            return Err(Inner::ended_error(&inner.lock()));
        };
        Ok(DataReader::new(
            inner.clone(),
            self._last.clone(),
            shared,
            id,
            started,
        ))
    }

    /// Sends any operation and waits for the whole reply.
    pub fn rpc(&self, op: &(impl Operation + ?Sized)) -> Result<RpcReply, Error> {
        self.rpc_with_timeout(op, self.rpc_timeout)
    }

    /// Like [`Client::rpc`] with its own timeout (`None`: forever).
    pub fn rpc_with_timeout(
        &self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<RpcReply, Error> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let ticket = Inner::ticket(&mut st);
        st.core.submit(op, timeout, ticket, Instant::now());
        // With many callers waiting, their requests pile up faster than one caller writes
        // its own: the writing thread takes them, several per write.
        let crowded = st.wakers.len() >= CROWD;
        if crowded {
            inner.drain(&mut st);
        } else {
            inner.drain_for_caller(&mut st);
        }
        drop(st);
        if !crowded {
            inner.writer.write_here();
        }
        inner.wait_result(inner.lock(), ticket)
    }

    /// Sends raw XML (the operation element) and waits for the reply.
    pub fn rpc_raw(&self, xml: &str) -> Result<RpcReply, Error> {
        self.rpc(&RpcBody::raw(xml)?)
    }

    /// Sends an RPC without waiting for its reply (pipelining); collect the reply with
    /// [`Client::recv`]. Returns once the request is written to the transport (the reading
    /// thread goes on reading meanwhile, so replies to earlier requests never stall a large
    /// write); a request whose write failed is an error, never `Ok`.
    pub fn send(&self, op: &(impl Operation + ?Sized)) -> Result<MessageId, Error> {
        self.send_with_timeout(op, self.rpc_timeout)
    }

    /// Like [`Client::send`] with its own timeout (`None`: forever).
    pub fn send_with_timeout(
        &self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<MessageId, Error> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let ticket = Inner::ticket(&mut st);
        let id = st.core.submit(op, timeout, ticket, Instant::now());
        inner.drain_for_caller(&mut st);
        let Some(id) = id else {
            let e = st
                .results
                .remove(&ticket)
                .and_then(Result::err)
                .unwrap_or_else(|| Inner::ended_error(&st));
            drop(st);
            inner.writer.write_here();
            return Err(e);
        };
        st.sent.insert(id, ticket);
        // Everything queued to the writer up to `mark` includes our request once the core
        // has handed all of it out (a large one is encrypted as the writer makes room, see
        // `PACE`). Taken under the lock, after a drain: at most a pace's worth of what
        // others queued behind it comes with it.
        let end = st.core.session().output_position();
        // Not once the session has ended: what it still handed out was dropped, not queued.
        let handed_out = |st: &State| st.ended.is_none() && st.core.output_handed_out() >= end;
        let mut mark = handed_out(&st).then(|| inner.writer.mark());
        drop(st);
        inner.writer.write_here();
        // Wait until our bytes are out (bounded memory: a caller cannot queue without end),
        // or the session ended without them.
        let written = |mark: Option<u64>| mark.map(|m| inner.writer.is_written(m));
        let mut st = inner.wait_until(inner.lock(), |st| {
            if mark.is_none() && handed_out(st) {
                mark = Some(inner.writer.mark());
            }
            written(mark).is_some_and(|w| w != Some(false)) || st.ended.is_some()
        });
        if written(mark) == Some(Some(true)) {
            return Ok(id);
        }
        // Not written: the request is lost with the session; forget it.
        st.sent.remove(&id);
        let result = st.results.remove(&ticket);
        Err(match result {
            Some(Err(e)) => e,
            _ => Inner::ended_error(&st),
        })
    }

    /// Waits for the reply to an RPC sent with [`Client::send`]. Asking for an id that was
    /// never sent, or whose reply was already taken, is a usage error, not a wait.
    pub fn recv(&self, id: MessageId) -> Result<RpcReply, Error> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let Some(ticket) = st.sent.remove(&id) else {
            return Err(UsageError::UnknownMessageId(id.0).into());
        };
        inner.wait_result(st, ticket)
    }

    /// The notifications that arrive from now on, in a bounded queue of their own: one
    /// that is not read fast enough loses notifications and is told how many
    /// (`Err(Lagged(n))`). Subscribe before sending `<create-subscription>`.
    pub fn notifications(&self) -> Notifications {
        let (tx, rx) = mpsc::sync_channel(self.inner.notification_buffer);
        let mut st = self.inner.lock();
        st.core.subscribe(Sink(tx));
        st.subscribed = true;
        if !st.reading {
            self.inner.reader_wake.notify_all();
        }
        Notifications { rx }
    }

    /// Ends the session with `<close-session>` and waits until it has closed (at most the
    /// close timeout), then shuts the connection. Closing a session that has already ended
    /// (killed, the server went away) is `Ok`.
    pub fn close(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.ended.is_some() {
            // Already over (killed, the server left, a stall): closing it is no error.
            drop(st);
            inner.transport.shutdown();
            return Ok(());
        }
        let ticket = Inner::ticket(&mut st);
        st.core.close(ticket, Instant::now());
        inner.drain(&mut st);
        let result = inner.wait_result(st, ticket);
        let st = inner.wait_until(inner.lock(), |st| st.ended.is_some());
        drop(st);
        inner.transport.shutdown();
        close_result(result)
    }
}

/// Notifications as they arrive; see [`Client::notifications`]. Iterating ends with the
/// session.
#[derive(Debug)]
pub struct Notifications {
    rx: Receiver<NotificationItem>,
}

impl Notifications {
    /// The next notification, waiting as long as it takes; `None` once the session ended.
    pub fn recv(&self) -> Option<NotificationItem> {
        self.rx.recv().ok()
    }

    /// The next notification, waiting at most `timeout`; `Ok(None)` on timeout, `Err` once
    /// the session ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<NotificationItem>, Ended> {
        match self.rx.recv_timeout(timeout) {
            Ok(n) => Ok(Some(n)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Ended),
        }
    }
}

/// The session ended: no more notifications will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended;

impl Iterator for Notifications {
    type Item = NotificationItem;

    fn next(&mut self) -> Option<NotificationItem> {
        self.recv()
    }
}

pub(crate) fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = Some(Error::Timeout(TimeoutKind::Connect))
            }
            Err(e) => last = Some(Error::Io(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        ))
    }))
}
