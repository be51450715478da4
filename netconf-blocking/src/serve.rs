//! The blocking server: per session, [`ServerSession`] behind a mutex, a thread that reads
//! (the session's loop), a thread that writes, and a thread per running request, so a
//! handler, a notification or a kill-session never waits for a socket.
//!
//! The loop runs the requests it reads on its own thread while they are quick, and the
//! server's [watchdog](crate::watchdog) hands the loop to another thread when they are not:
//! a request still never waits for another's handler longer than a short grace, and a small
//! RPC costs no hand-off between threads. A listener's session is admitted by the accept
//! loop and cleaned up by the loop's last thread; shutdown waits for it. For
//! [`Server::serve_tls`] and [`Server::serve_stream`] (and call home) the caller's thread
//! waits for the loop to end, wherever it ran, and never runs a handler.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{
    KillOutcome, Registry, ServerOptions, ServerOutput, ServerSession, SessionInfo,
};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Error, Machine, Request, RequestId, Session, TlsSession, UsageError};

use crate::answer::{Answer, Source};
use crate::pending::{Pending, GRACE};
use crate::signal::Signal;
use crate::transport::{ReadTimeout, Transport};
use crate::watchdog::{Check, Watchdog, Watched};
use crate::workers::Workers;
use crate::writer::{Writer, PACE, PACE_RESUME};

type Handler = dyn Fn(&Request, &SessionInfo) -> Answer + Send + Sync;

/// Replies waiting to be written before the session stops reading more requests: a client
/// that sends and never reads meets TCP backpressure, not a growing queue.
const MAX_BACKLOG: usize = 1 << 20;
/// Over a plaintext stream (SSH), the session also reads while more than [`MAX_BACKLOG`] is
/// unwritten, as long as no more than this many replies wait: an SSH peer writing a large
/// request while we write a large reply must be read, or the channel's buffer fills, the
/// SSH connection parks and with it the window adjusts our own write waits for. A client
/// that sends and never reads still meets backpressure once this many replies wait.
const MAX_PIECES_WHILE_WRITING: usize = 64;
/// Bytes a subscriber's queue may hold per allowed notification before it counts as not
/// keeping up.
const NOTIFICATION_BYTES: usize = 4096;
/// A streamed answer's next piece is pulled only while less than this waits to be written:
/// the memory a streamed reply costs is this, plus the piece in hand and the next.
const STREAM_BACKLOG: usize = 256 * 1024;
/// The thread serving a session's queue holds its replies back (to write them together)
/// only while less than this waits to be written: it writes more at once.
const HOLD_MAX: usize = 32 * 1024;
// A TLS session encrypts its replies only up to `PACE` ahead of the writer (see there):
// below the default subscriber limit (256 notifications of 4 KiB), so a subscriber reading
// a large reply is not taken for a slow one.
/// The shortest read timeout the session loop sets (a deadline that has just passed).
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);
/// How long a loop that no thread could take waits before the watchdog tries again.
const RETRY: Duration = Duration::from_millis(100);

thread_local! {
    /// The server (its `Inner`'s address; 0: none) whose listener's session's end hook
    /// this thread runs ([`Server::session_over`]). The hook may call that server's
    /// [`Server::shutdown`], which then does not wait for that session.
    static ENDING_DETACHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

struct Inner {
    options: ServerOptions,
    handler: Arc<Handler>,
    registry: Mutex<Registry<Arc<Slot>>>,
    stopping: AtomicBool,
    /// Listener addresses, to wake their accept loops at shutdown.
    listeners: Mutex<Vec<SocketAddr>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The threads request handlers and sessions' loops run on.
    workers: Arc<Workers>,
    /// Hands a session's loop to another thread when its own runs a slow handler.
    watchdog: Watchdog,
    /// Sessions from listeners whose loop has not ended yet: no thread waits for them,
    /// shutdown does.
    detached: Mutex<usize>,
    detached_ended: Condvar,
    /// SSH listeners' stop switches, pulled at shutdown.
    #[cfg(feature = "ssh")]
    ssh_stops: Mutex<Vec<netconf_ssh::blocking::ListenerStop>>,
    /// What shutdown must also stop (servers calling home).
    on_shutdown: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry<Arc<Slot>>> {
        lock(&self.registry)
    }

    fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        match std::thread::Builder::new().name(name.into()).spawn(f) {
            Ok(t) => {
                let mut threads = lock(&self.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
            Err(e) => tracing::error!(error = %e, "cannot start a thread"),
        }
    }
}

/// A registered session: its state once it is built (the registry hands out the id first).
#[derive(Default)]
struct Slot {
    live: OnceLock<Arc<Live>>,
    /// Ended before it was built (kill-session or shutdown raced its start).
    ended: AtomicBool,
}

impl Slot {
    fn end(&self, why: &str) {
        self.ended.store(true, Ordering::SeqCst);
        if let Some(live) = self.live.get() {
            live.end(why);
        }
    }
}

/// One session's shared state: its core and the queue of its writing thread.
struct Live {
    core: Mutex<ServerSession>,
    changed: Signal,
    writer: Arc<Writer>,
    transport: Box<dyn Transport>,
    /// Keep reading while a large reply is being written (plaintext streams: SSH).
    read_while_writing: bool,
    /// Encrypt only up to [`PACE`] ahead of the writer: TLS, whose transmits are a copy of
    /// the reply (a plaintext stream's are the reply's own `Bytes`).
    pace: bool,
    /// Output is held back in the core until the writer makes room (see [`PACE`]).
    paced: AtomicBool,
    /// Marks the session subscribed in the registry. Called inside the drain, before the
    /// create-subscription reply is queued for writing, so a client that has its `<ok/>` is
    /// already counted by [`Server::notify`]. (Lock order: a session's core, then the
    /// registry; never the other way round.)
    on_subscribed: Box<dyn Fn() + Send + Sync>,
    /// Notifications (event time, content) waiting for a streamed reply to end: nothing
    /// else can go out meanwhile. Bounded by the notification queue. (Lock order: the core,
    /// then this.)
    held: Mutex<VecDeque<(String, String)>>,
    /// Requests waiting for their handler.
    pending: Pending<Job>,
    /// The loop's state while its thread runs handlers: taken back by that thread when
    /// they are done, or by the watchdog for another thread once they take a grace.
    parked_loop: Mutex<Option<Parked>>,
    /// What the watchdog reads without a lock.
    clock: Arc<LoopClock>,
    /// The loop has ended and the session is cleaned up, on whichever thread ran the loop
    /// last.
    loop_over: Mutex<bool>,
    loop_ended: Condvar,
    /// The session's id in the registry.
    id: u32,
    /// No thread waits for the loop: shutdown counts it (see [`Inner::detached`]).
    detached: bool,
}

/// A session's loop, as it moves from thread to thread: what it reads with.
struct Baton {
    reader: Box<dyn Transport>,
    buf: Vec<u8>,
    armed: ReadTimeout,
    actions: Vec<Action>,
    /// Times the loop was parked: tells one parking from the next.
    parkings: u64,
}

/// A parked loop.
struct Parked {
    baton: Baton,
    since: Instant,
}

/// Whether and since when a session's loop is parked, for the watchdog's look at every
/// session every tick (atomics only). Changed with `parked_loop` locked, which stays the
/// authority: the watchdog takes the lock only for a loop that looks overdue.
struct LoopClock {
    born: Instant,
    /// Nanoseconds from `born` to the parking, plus one; 0: not parked.
    parked_at: AtomicU64,
    over: AtomicBool,
}

impl LoopClock {
    fn new() -> LoopClock {
        LoopClock {
            born: Instant::now(),
            parked_at: AtomicU64::new(0),
            over: AtomicBool::new(false),
        }
    }

    fn park(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.born).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.parked_at.store(nanos, Ordering::SeqCst);
    }

    fn unpark(&self) {
        self.parked_at.store(0, Ordering::SeqCst);
    }

    /// When the loop was parked, if it is.
    fn parked_since(&self) -> Option<Instant> {
        match self.parked_at.load(Ordering::SeqCst) {
            0 => None,
            n => Some(self.born + Duration::from_nanos(n - 1)),
        }
    }
}

/// What the loop asks of the thread running it.
enum Next {
    /// Run the session's queued requests, then go on with the loop.
    Serve,
    /// The session is over.
    Over,
}

/// The watchdog's view of a session.
struct LoopWatch {
    server: Weak<Inner>,
    live: Weak<Live>,
    clock: Arc<LoopClock>,
}

impl Watched for LoopWatch {
    fn check(&self, now: Instant) -> Check {
        if self.clock.over.load(Ordering::SeqCst) || self.live.strong_count() == 0 {
            return Check::Gone;
        }
        match self.clock.parked_since() {
            None => Check::Running,
            Some(since) if now < since + GRACE => Check::Parked,
            Some(_) => Check::Overdue,
        }
    }

    fn hand_over(&self, now: Instant) {
        let (Some(live), Some(inner)) = (self.live.upgrade(), self.server.upgrade()) else {
            return;
        };
        let mut parked = lock(&live.parked_loop);
        let Some(Parked { baton, .. }) = parked.take_if(|p| now >= p.since + GRACE) else {
            return;
        };
        live.clock.unpark();
        drop(parked);
        tracing::debug!("a handler holds the session's loop: the loop goes on elsewhere");
        let server = Server { inner };
        if let Err(baton) = server.run_loop_elsewhere(&live, baton) {
            // No thread can start: parked again, for a look in a while.
            live.park_for_retry(baton, RETRY);
        }
    }
}

/// Where the loop is, for the thread that ran it last.
#[derive(Clone, Copy)]
enum Holding {
    /// In this thread's hands.
    Here,
    /// Parked by this thread (its `parkings` then) while it runs handlers.
    Parked(u64),
    /// Gone on elsewhere: this thread is done with the session.
    HandedOver,
}

/// Marks the loop over when the thread running it leaves it, unless the loop went on
/// elsewhere.
struct LoopOwner<'a> {
    server: &'a Server,
    live: &'a Live,
    holding: Holding,
}

impl Drop for LoopOwner<'_> {
    fn drop(&mut self) {
        match self.holding {
            Holding::HandedOver => return,
            // Left while parked: a panic outside any handler (they are caught). The loop
            // is ours to end if it is still our parking; else it went on elsewhere.
            Holding::Parked(parking) => {
                let mut parked = lock(&self.live.parked_loop);
                if parked.take_if(|p| p.baton.parkings == parking).is_none() {
                    return;
                }
                self.live.clock.unpark();
            }
            Holding::Here => {}
        }
        if std::thread::panicking() {
            // A bug in the loop: end the session rather than leave it unread.
            self.live.end("the session's loop failed");
        }
        self.server.session_over(self.live);
    }
}

/// A listener's session counted in [`Inner::detached`] until its loop is running, from
/// when its loop's last thread uncounts it. Dropped before that (refused, failed to start):
/// uncounted at once.
struct Detached<'a> {
    inner: &'a Inner,
    handed_on: bool,
}

impl<'a> Detached<'a> {
    fn count(inner: &'a Inner) -> Detached<'a> {
        *lock(&inner.detached) += 1;
        Detached {
            inner,
            handed_on: false,
        }
    }

    fn hand_on(mut self) {
        self.handed_on = true;
    }

    fn uncount(inner: &Inner) {
        let mut detached = lock(&inner.detached);
        *detached -= 1;
        if *detached == 0 {
            inner.detached_ended.notify_all();
        }
    }
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        if !self.handed_on {
            Detached::uncount(self.inner);
        }
    }
}

/// Where a drain stopped.
enum Drained {
    /// The core waits for input or this deadline (`None`: none).
    Wait(Option<Instant>),
    /// The writer's backlog reached [`PACE`]: the core holds more to write, which the
    /// writer's progress resumes ([`Live::resume`]). Requests and the session's end may be
    /// behind it: the session's loop must drain again, not read; by this deadline at the
    /// latest (the core's, as with `Wait`).
    Paused(Option<Instant>),
    /// The session is over.
    Ended,
}

/// What a drain left for the caller to do once the session's lock is released.
enum Action {
    Dispatch(Job),
    Kill(RequestId, u32),
}

/// A request for the handler.
type Job = (RequestId, Box<(Request, SessionInfo)>);

impl Live {
    fn lock(&self) -> MutexGuard<'_, ServerSession> {
        lock(&self.core)
    }

    /// Runs the core to `Wait` (or to the [`PACE`]) with its lock held; returns where it
    /// stopped, and leaves in `actions` what must happen without the lock.
    fn drain(&self, core: &mut ServerSession, actions: &mut Vec<Action>) -> Drained {
        self.drain_to(core, actions, Writer::push)
    }

    /// Like [`Live::drain`], but the transmits wait for this thread to write them (with
    /// [`Writer::write_here`], once the lock is released): a handler's thread sends its
    /// own reply.
    fn drain_for_handler(&self, core: &mut ServerSession, actions: &mut Vec<Action>) {
        self.drain_to(core, actions, Writer::queue);
    }

    fn drain_to(
        &self,
        core: &mut ServerSession,
        actions: &mut Vec<Action>,
        transmit: fn(&Writer, bytes::Bytes),
    ) -> Drained {
        let result = loop {
            match core.poll() {
                ServerOutput::Transmit(bytes) => {
                    transmit(&self.writer, bytes);
                    if self.pace && self.writer.backlog() > PACE {
                        self.paced.store(true, Ordering::SeqCst);
                        // Tested again after the store: a writer that emptied its queue
                        // before it could see the pause will not resume it.
                        if self.writer.backlog() > PACE_RESUME {
                            break Drained::Paused(core.session().next_deadline());
                        }
                    }
                }
                ServerOutput::Dispatch { id, request } => actions.push(Action::Dispatch((
                    id,
                    Box::new((request, core.info().clone())),
                ))),
                ServerOutput::KillSession { id, target } => actions.push(Action::Kill(id, target)),
                ServerOutput::Subscribed => (self.on_subscribed)(),
                // The handler's thread cannot be stopped; the core drops its late answer.
                ServerOutput::Abort(_) => {}
                ServerOutput::Ended(_) => {
                    self.writer.finish();
                    break Drained::Ended;
                }
                // Another thread may have drained the `Ended` (kill-session, shutdown): the
                // session is over all the same.
                ServerOutput::Wait(_) if core.is_ended() => break Drained::Ended,
                ServerOutput::Wait(deadline) => {
                    if self.unpause(core) {
                        continue;
                    }
                    break Drained::Wait(deadline);
                }
                _ => {}
            }
        };
        self.changed.notify_all();
        result
    }

    /// Encrypts more of what the core holds back, now that the writer made room: on the
    /// thread that wrote (see [`PACE`]). Only transmits: requests and the session's end stay
    /// in the core for the session's loop, which does not read while the session is paused.
    fn resume(&self) {
        let mut core = self.lock();
        if self.paced.load(Ordering::SeqCst) {
            loop {
                if self.writer.backlog() > PACE {
                    self.paced.store(true, Ordering::SeqCst);
                    break;
                }
                match core.poll_transmit() {
                    Some(bytes) => self.writer.push(bytes),
                    None if self.unpause(&mut core) => {}
                    None => break,
                }
            }
            if !self.paced.load(Ordering::SeqCst) && core.session().is_closed() {
                // The session ended behind the reply (a streamed answer's source failed,
                // say), on a thread whose drain paused: its close and end are ours to
                // drain, as the session's loop may be reading. A closed session asks for
                // nothing to be done outside the lock.
                let mut nothing = Vec::new();
                self.drain(&mut core, &mut nothing);
            }
        }
        self.changed.notify_all();
        drop(core);
    }

    /// The core has nothing held back any more: ends the pause and sends the notifications
    /// that waited for it. True if that gave the core more to write.
    fn unpause(&self, core: &mut ServerSession) -> bool {
        if !self.paced.swap(false, Ordering::SeqCst) || self.held().is_empty() {
            return false;
        }
        self.release_held(core);
        true
    }

    fn held(&self) -> MutexGuard<'_, VecDeque<(String, String)>> {
        lock(&self.held)
    }

    /// Sends the notifications held back by a streamed reply, now that none is being sent
    /// (or until the next one begins).
    fn release_held(&self, core: &mut ServerSession) {
        let mut held = self.held();
        while !core.is_streaming() {
            let Some((event_time, content)) = held.pop_front() else {
                break;
            };
            if let Err(e) = core.notify(&event_time, &content) {
                if e == UsageError::StreamInProgress {
                    held.push_front((event_time, content));
                    break;
                }
                tracing::warn!(session_id = core.info().session_id, error = %e, "notification not sent");
            }
        }
    }

    /// Parks a loop that no thread could take, for the watchdog to hand over again
    /// `after` from now (not every tick: each failure is logged).
    fn park_for_retry(&self, baton: Baton, after: Duration) {
        let now = Instant::now();
        let since = (now + after).checked_sub(GRACE).unwrap_or(now);
        let mut parked = lock(&self.parked_loop);
        self.clock.park(since);
        *parked = Some(Parked { baton, since });
    }

    /// Ends the session from another thread (kill-session, shutdown, a slow subscriber).
    fn end(&self, why: &str) {
        let mut core = self.lock();
        core.abort(why);
        let mut ignored = Vec::new();
        self.drain(&mut core, &mut ignored);
        drop(core);
        self.transport.shutdown();
    }
}

/// A NETCONF server: one handler and one set of sessions, whatever they arrive over (TLS
/// listeners, streams the caller accepted or dialled). Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.inner.options)
            .field("sessions", &self.sessions())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server whose `handler` answers every `<rpc>` but close-session and kill-session,
    /// which the server handles itself; a panic in the handler is answered with
    /// `operation-failed`. A session runs its requests one after another on the thread that
    /// read them while they are quick; one that blocks for more than a couple of
    /// milliseconds keeps its thread, and the session goes on beside it (reading, answering
    /// kill-session, running the requests behind it on threads of their own).
    ///
    /// The handler returns a [`Reply`](crate::Reply), or an [`Answer`] to stream the content of a large
    /// `<data>` reply from an iterator of [`Bytes`](bytes::Bytes) or a reader: it is pulled
    /// on the handler's thread, a piece at a time as the transport takes them, so its
    /// memory stays bounded whatever its size. Kill-session and shutdown stop the pulling.
    ///
    /// ```no_run
    /// use netconf_blocking::server::ServerOptions;
    /// use netconf_blocking::{Answer, Reply, Server};
    ///
    /// let server = Server::new(ServerOptions::new(), |request, _session| {
    ///     if request.operation.name == "get" {
    ///         // Gigabytes of state, generated as it is sent.
    ///         let rows = (0..10_000_000u64).map(|i| {
    ///             Ok(format!("<row xmlns=\"urn:example\"><n>{i}</n></row>").into())
    ///         });
    ///         return Answer::stream(rows);
    ///     }
    ///     Reply::Ok.into()
    /// });
    /// ```
    pub fn new<A: Into<Answer>>(
        options: ServerOptions,
        handler: impl Fn(&Request, &SessionInfo) -> A + Send + Sync + 'static,
    ) -> Server {
        let handler: Arc<Handler> =
            Arc::new(move |request: &Request, info: &SessionInfo| handler(request, info).into());
        Server {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::new(options.get_max_sessions())),
                options,
                handler,
                stopping: AtomicBool::new(false),
                listeners: Mutex::new(Vec::new()),
                threads: Mutex::new(Vec::new()),
                workers: Arc::default(),
                watchdog: Watchdog::default(),
                detached: Mutex::new(0),
                detached_ended: Condvar::new(),
                #[cfg(feature = "ssh")]
                ssh_stops: Mutex::new(Vec::new()),
                on_shutdown: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Listens for NETCONF over TLS (RFC 7589) on `addr` and serves every connection (each
    /// session on threads of its own) until [`Server::shutdown`]. Returns the bound address.
    pub fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        tls: &ServerTlsOptions,
    ) -> Result<SocketAddr, Error> {
        let config = tls.build()?;
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        lock(&self.inner.listeners).push(local);
        let server = self.clone();
        self.inner.spawn("netconf-accept", move || {
            server.accept_loop(listener, config)
        });
        Ok(local)
    }

    /// Runs `f` on a thread that shutdown waits for.
    #[cfg(feature = "ssh")]
    pub(crate) fn spawn_thread(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        self.inner.spawn(name, f);
    }

    /// Set once shutdown began.
    pub(crate) fn stopping(&self) -> &AtomicBool {
        &self.inner.stopping
    }

    /// Runs `stop` when the server shuts down (at once if it already has).
    pub(crate) fn on_shutdown(&self, stop: impl FnOnce() + Send + 'static) {
        let mut stops = lock(&self.inner.on_shutdown);
        if self.inner.stopping.load(Ordering::SeqCst) {
            drop(stops);
            stop();
        } else {
            stops.push(Box::new(stop));
        }
    }

    /// Registers an SSH listener's stop switch (pulled now if shutdown already began).
    #[cfg(feature = "ssh")]
    pub(crate) fn add_ssh_stop(&self, stop: netconf_ssh::blocking::ListenerStop) {
        let mut stops = lock(&self.inner.ssh_stops);
        stops.push(stop);
        if self.inner.stopping.load(Ordering::SeqCst) {
            stops.drain(..).for_each(|s| s.stop());
        }
    }

    fn accept_loop(self, listener: TcpListener, tls: Arc<ServerConfig>) {
        let mut failures = 0u32;
        for stream in listener.incoming() {
            if self.inner.stopping.load(Ordering::SeqCst) {
                return;
            }
            let stream = match stream {
                Ok(s) => {
                    failures = 0;
                    s
                }
                Err(e) => {
                    // EMFILE and friends: back off (5 ms doubling to 1 s) instead of spinning.
                    let wait =
                        Duration::from_millis(5u64 << failures.min(8)).min(Duration::from_secs(1));
                    failures += 1;
                    tracing::warn!(error = %e, ?wait, "accept failed; backing off");
                    std::thread::sleep(wait);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let peer = stream.peer_addr().ok();
            // Admitted here, and served by its loop's thread: no thread waits for it.
            if let Err(e) = self.serve_tls_session(stream, tls.clone(), peer, true) {
                tracing::debug!(error = %e, "session not served");
            }
        }
    }

    /// Serves one NETCONF-over-TLS session on a stream the caller already has (RFC 8071
    /// call home: we dialled the manager, yet run TLS as the server), on this thread, until
    /// it ends: `Ok` once a NETCONF session ran (however it ended), else why none was
    /// established (the TLS alert, a timeout, the peer hanging up).
    pub fn serve_tls(
        &self,
        stream: impl Transport,
        tls: &ServerTlsOptions,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        self.serve_tls_inner(stream, tls.build()?, peer)
    }

    pub(crate) fn serve_tls_inner(
        &self,
        stream: impl Transport,
        tls: Arc<ServerConfig>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        self.serve_tls_session(stream, tls, peer, false)
    }

    /// `detached`: returns once the session is admitted (see [`Server::serve`]).
    fn serve_tls_session(
        &self,
        stream: impl Transport,
        tls: Arc<ServerConfig>,
        peer: Option<SocketAddr>,
        detached: bool,
    ) -> Result<(), Error> {
        let options = &self.inner.options;
        self.serve(Box::new(stream), peer, None, false, detached, |id| {
            TlsSession::server(tls, options.session_config().clone(), id, Instant::now())
                .map(|m| Box::new(m) as Box<dyn Machine + Send>)
                .map_err(|e| Error::Tls(netconf_proto::TlsError::from_rustls(e)))
        })
    }

    /// Serves one session over a plaintext stream whose peer the transport already
    /// authenticated as `username` (an SSH channel), on this thread, until it ends.
    ///
    /// Unlike a TLS session, this one keeps reading while a large reply is written (up to
    /// a bounded number of unwritten replies, and while it wants requests at all). An SSH
    /// channel needs it: russh re-grants the peer's window as data arrives, not as we read
    /// it, so a peer writing a large request while we write a large reply would fill the
    /// channel's buffer, park the SSH connection and with it the window adjusts our own
    /// write waits for.
    pub fn serve_stream(
        &self,
        stream: impl Transport,
        username: Option<String>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        self.serve_plaintext(stream, username, peer)
    }

    /// [`Server::serve_stream`], for callers in this crate.
    pub(crate) fn serve_plaintext(
        &self,
        stream: impl Transport,
        username: Option<String>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        self.serve_plaintext_session(stream, username, peer, false)
    }

    /// `detached`: returns once the session is admitted (a listener's; see
    /// [`Server::serve`]).
    pub(crate) fn serve_plaintext_session(
        &self,
        stream: impl Transport,
        username: Option<String>,
        peer: Option<SocketAddr>,
        detached: bool,
    ) -> Result<(), Error> {
        let config = self.inner.options.session_config().clone();
        self.serve(
            Box::new(stream),
            peer,
            username,
            true,
            detached,
            move |id| {
                Ok(Box::new(Session::server(config, id, Instant::now()))
                    as Box<dyn Machine + Send>)
            },
        )
    }

    /// Serves a session: admits it, runs its loop on a thread of its own, and waits on this
    /// thread until the loop is over and the session cleaned up (this thread never runs a
    /// handler: it may be the caller's, or one that shutdown joins). `detached` (a
    /// listener's session): returns once the loop runs; shutdown waits for it instead.
    fn serve(
        &self,
        transport: Box<dyn Transport>,
        peer: Option<SocketAddr>,
        username: Option<String>,
        read_while_writing: bool,
        detached: bool,
        machine: impl FnOnce(u32) -> Result<Box<dyn Machine + Send>, Error>,
    ) -> Result<(), Error> {
        let refused = || Error::Io(io::Error::other("the server refused the session"));
        // Counted before `stopping` is tested: shutdown sets `stopping` before it waits
        // for the count, so it either waits for this session or this session sees it.
        let counted = detached.then(|| Detached::count(&self.inner));
        if self.inner.stopping.load(Ordering::SeqCst) {
            transport.shutdown();
            return Err(refused());
        }
        let options = &self.inner.options;
        let write_half = transport.try_clone_transport()?;
        let reader = transport.try_clone_transport()?;
        let slot = Arc::new(Slot::default());
        let id = match self.inner.registry().admit(slot.clone()) {
            Ok(id) => id,
            Err(refusal) => {
                tracing::warn!(?peer, %refusal, "connection refused");
                transport.shutdown();
                return Err(refused());
            }
        };
        // The writer's callbacks reach the session through a weak reference to its state,
        // set once that exists: the state holds its writer, and a strong one made a cycle
        // that kept every ended session's state and descriptors alive. The thread running
        // the loop holds the state, so the callbacks reach it until the loop is over (a
        // reference to the registry slot would not do: kill-session and shutdown take the
        // slot out of the registry while the loop still drains the session's end).
        let session: Arc<OnceLock<Weak<Live>>> = Arc::default();
        let started = machine(id).and_then(|machine| {
            let on_error = {
                let session = session.clone();
                move |e: io::Error| {
                    if let Some(live) = session.get().and_then(Weak::upgrade) {
                        let mut core = live.lock();
                        core.handle_write_error(&e);
                        let mut ignored = Vec::new();
                        live.drain(&mut core, &mut ignored);
                    }
                }
            };
            // A shrinking backlog may let a session waiting on it read again.
            let on_written = {
                let session = session.clone();
                move || {
                    if let Some(live) = session.get().and_then(Weak::upgrade) {
                        if live.paced.load(Ordering::SeqCst) && live.writer.backlog() <= PACE_RESUME
                        {
                            return live.resume();
                        }
                        if live.changed.has_waiters() {
                            let _guard = live.lock();
                            live.changed.notify_all();
                        }
                    }
                }
            };
            let writer = Writer::spawn(
                write_half,
                options.get_write_timeout(),
                on_written,
                on_error,
            )?;
            let mut info = SessionInfo::new(id, peer);
            info.username = username;
            let registry = Arc::downgrade(&self.inner);
            let on_subscribed = Box::new(move || {
                if let Some(inner) = registry.upgrade() {
                    inner.registry().set_subscribed(id);
                }
            });
            Ok(Arc::new(Live {
                read_while_writing,
                pace: !read_while_writing,
                paced: AtomicBool::new(false),
                on_subscribed,
                held: Mutex::new(VecDeque::new()),
                pending: Pending::default(),
                parked_loop: Mutex::new(None),
                clock: Arc::new(LoopClock::new()),
                loop_over: Mutex::new(false),
                loop_ended: Condvar::new(),
                id,
                detached,
                core: Mutex::new(ServerSession::new(machine, info, options, Instant::now())),
                changed: Signal::default(),
                writer,
                transport,
            }))
        });
        let live = match started {
            Ok(live) => live,
            Err(e) => {
                self.inner.registry().remove(id);
                return Err(e);
            }
        };
        let _ = session.set(Arc::downgrade(&live));
        let _ = slot.live.set(live.clone());
        if slot.ended.load(Ordering::SeqCst) {
            live.end("ended before it started");
        }
        self.inner.watchdog.watch(Arc::new(LoopWatch {
            server: Arc::downgrade(&self.inner),
            live: Arc::downgrade(&live),
            clock: live.clock.clone(),
        }));
        let baton = Baton {
            reader,
            buf: vec![0u8; 64 * 1024],
            armed: ReadTimeout::default(),
            actions: Vec::new(),
            parkings: 0,
        };
        // From here the loop's last thread uncounts the session (`session_over`).
        if let Some(counted) = counted {
            counted.hand_on();
        }
        if let Err(baton) = self.run_loop_elsewhere(&live, baton) {
            if detached && self.inner.watchdog.is_running() {
                // No thread can start: the watchdog tries again, not the accept loop's
                // thread, which must go on accepting.
                live.park_for_retry(baton, Duration::ZERO);
                self.inner.watchdog.serving();
            } else {
                // No thread can start (the watchdog's neither): the loop runs on this
                // thread, handlers and all.
                self.run_loop(&live, baton);
            }
        }
        if detached {
            return Ok(());
        }
        let mut over = lock(&live.loop_over);
        while !*over {
            over = live
                .loop_ended
                .wait(over)
                .unwrap_or_else(|p| p.into_inner());
        }
        drop(over);
        let outcome = live.lock().outcome();
        outcome
    }

    /// The session's loop has ended: cleans up, on the thread that ran the loop last, and
    /// tells whoever waits.
    fn session_over(&self, live: &Live) {
        self.inner.registry().remove(live.id);
        live.writer.finish();
        let (info, outcome) = {
            let core = live.lock();
            (core.info().clone(), core.outcome())
        };
        let outer = ENDING_DETACHED.get();
        if live.detached {
            ENDING_DETACHED.set(Arc::as_ptr(&self.inner) as usize);
        }
        self.inner.options.session_ended(&info);
        ENDING_DETACHED.set(outer);
        if live.detached {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, session_id = live.id, "session not served");
            }
        }
        live.clock.over.store(true, Ordering::SeqCst);
        *lock(&live.loop_over) = true;
        live.loop_ended.notify_all();
        if live.detached {
            Detached::uncount(&self.inner);
        }
    }

    /// Runs the session's loop on a thread of its own; gives the loop back if no thread
    /// can start.
    fn run_loop_elsewhere(&self, live: &Arc<Live>, baton: Baton) -> Result<(), Baton> {
        let slot = Arc::new(Mutex::new(Some(baton)));
        let (server, live, taken) = (self.clone(), live.clone(), slot.clone());
        let started = self.inner.workers.run(move || {
            let baton = lock(&taken).take();
            if let Some(baton) = baton {
                server.run_loop(&live, baton);
            }
        });
        match started {
            Ok(()) => Ok(()),
            // The job was dropped unrun: the loop is still here.
            Err(_) => lock(&slot).take().map_or(Ok(()), Err),
        }
    }

    /// Runs the session's loop on this thread, and the requests it reads, until the session
    /// ends or the watchdog hands the loop to another thread (a handler took too long).
    fn run_loop(&self, live: &Arc<Live>, mut baton: Baton) {
        let mut owner = LoopOwner {
            server: self,
            live,
            holding: Holding::Here,
        };
        loop {
            match self.session_loop(live, &mut baton) {
                Next::Over => {
                    // The transport closes before the admitting thread hears the loop is over.
                    drop(baton);
                    return;
                }
                Next::Serve => {
                    baton.parkings += 1;
                    owner.holding = Holding::Parked(baton.parkings);
                    {
                        let now = Instant::now();
                        let mut parked = lock(&live.parked_loop);
                        live.clock.park(now);
                        *parked = Some(Parked { baton, since: now });
                    }
                    self.inner.watchdog.serving();
                    self.serve_queue(live);
                    let mut parked = lock(&live.parked_loop);
                    // Ours, or another thread's that parked after the watchdog handed ours
                    // on (that thread only runs handlers now: the loop goes on here).
                    match parked.take() {
                        Some(back) => {
                            live.clock.unpark();
                            baton = back.baton;
                            owner.holding = Holding::Here;
                        }
                        None => {
                            owner.holding = Holding::HandedOver;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Runs the session's queued requests one after another, on this thread, until the
    /// queue is empty (see [`Pending`]); then writes the replies held back for them.
    fn serve_queue(&self, live: &Arc<Live>) {
        while let Some(job) = live.pending.next() {
            self.handle(live, job, true);
        }
        live.writer.write_here();
    }

    /// The loop: reads and drains until the session ends ([`Next::Over`]) or requests wait
    /// for this thread to run them ([`Next::Serve`]).
    fn session_loop(&self, live: &Arc<Live>, baton: &mut Baton) -> Next {
        let Baton {
            reader,
            buf,
            armed,
            actions,
            ..
        } = baton;
        'session: loop {
            // Requests stuck behind a slow handler get threads of their own.
            let (overdue, held_too_long) = live.pending.overdue(Instant::now());
            for job in overdue {
                self.run_alone(live, job);
            }
            if held_too_long {
                live.writer.kick();
            }
            // Drain, and wait while the session wants no input (too many requests pending,
            // too many replies unwritten), keeping its deadlines.
            let deadline = {
                // Counted from before the writer's backlog is tested: its progress wakes us.
                let _counted = live.changed.waiting();
                let mut core = live.lock();
                loop {
                    // Ended here, or already in a drain on another thread (kill-session,
                    // shutdown): either way the loop is over.
                    let deadline = match live.drain(&mut core, actions) {
                        Drained::Wait(deadline) if !core.is_ended() => deadline,
                        // The writer's progress wakes us to drain the rest.
                        Drained::Paused(deadline) if !core.is_ended() => deadline,
                        _ => {
                            drop(core);
                            if self.act(live, actions, true) {
                                // Read before the end: they run, on a thread of their own.
                                let (server, live) = (self.clone(), live.clone());
                                let _ = self.inner.workers.run(move || server.serve_queue(&live));
                            }
                            return Next::Over;
                        }
                    };
                    let now = Instant::now();
                    if deadline.is_some_and(|d| d <= now) {
                        core.handle_timeout(now);
                        continue;
                    }
                    // Not while output is held back in the core: requests read now would
                    // have their replies held there too, and a client that sends and never
                    // reads must meet backpressure.
                    let writing_allows_reading = !live.paced.load(Ordering::SeqCst)
                        && (live.writer.backlog() <= MAX_BACKLOG
                            || (live.read_while_writing
                                && live.writer.pieces() <= MAX_PIECES_WHILE_WRITING));
                    if core.wants_read() && writing_allows_reading {
                        break deadline;
                    }
                    if !actions.is_empty() {
                        break deadline;
                    }
                    let due = live.pending.due_at();
                    if due.is_some_and(|d| d <= now) {
                        continue 'session;
                    }
                    core = match earliest(deadline, due) {
                        Some(d) => live.changed.wait_timeout(core, d - now),
                        None => live.changed.wait(core),
                    };
                }
            };
            if !actions.is_empty() {
                if self.act(live, actions, true) {
                    return Next::Serve;
                }
                continue;
            }
            // Never a zero timeout: to std that means none, and a deadline passing just now
            // would wait for the next byte from the client.
            let timeout = earliest(deadline, live.pending.due_at()).map(|d| {
                d.saturating_duration_since(Instant::now())
                    .max(MIN_READ_TIMEOUT)
            });
            armed.arm(&**reader, timeout);
            match reader.read(buf) {
                // A deadline (the loop's top keeps it) or a request to rescue.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                read => {
                    // Drained at once under the same lock: the requests read are acted on
                    // by this loop (queued for one handler thread), not by whichever
                    // thread drains next.
                    let mut core = live.lock();
                    core.handle_read(read.map(|n| &buf[..n]), Instant::now());
                    live.drain(&mut core, actions);
                }
            }
        }
    }

    /// Does what a drain asked for, with no session lock held. `from_session_loop`: the
    /// requests go to the session's queue, served by one thread (see [`Pending`]), which
    /// only the session's loop keeps the grace of; elsewhere each gets its own thread.
    /// True if the queue has nobody serving it: the loop's thread must (or find one).
    #[must_use]
    fn act(&self, live: &Arc<Live>, actions: &mut Vec<Action>, from_session_loop: bool) -> bool {
        let mut serve = false;
        for action in actions.drain(..) {
            match action {
                Action::Dispatch(job) if from_session_loop => {
                    serve |= live.pending.push(job, Instant::now());
                }
                Action::Dispatch(job) => self.run_alone(live, job),
                Action::Kill(id, target) => {
                    let found = self.inner.registry().kill(target);
                    let existed = match found {
                        KillOutcome::Killed(slot) => {
                            slot.end("killed by another session");
                            true
                        }
                        KillOutcome::NotFound => false,
                    };
                    let mut core = live.lock();
                    core.kill_done(id, target, existed);
                    let mut more = Vec::new();
                    live.drain(&mut core, &mut more);
                    drop(core);
                    serve |= self.act(live, &mut more, from_session_loop);
                }
            }
        }
        serve
    }

    /// Runs one request's handler on a thread of its own.
    fn run_alone(&self, live: &Arc<Live>, job: Job) {
        let (server, live) = (self.clone(), live.clone());
        let _ = self
            .inner
            .workers
            .run(move || server.handle(&live, job, false));
    }

    /// Runs the handler for a request and sends its answer, on this (a handler's) thread.
    /// `serving`: this thread serves the session's queue, and may hold a reply back while
    /// the next request waits (see [`Pending`]).
    fn handle(&self, live: &Arc<Live>, (id, job): Job, serving: bool) {
        let (request, info) = *job;
        let handler = &self.inner.handler;
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request, &info)));
        let source = match answer {
            Ok(Answer::Reply(reply)) => {
                let mut core = live.lock();
                core.reply(id, reply);
                return self.settle_here(live, core, serving);
            }
            Ok(Answer::Stream(pieces)) => Source::Pieces(pieces),
            Ok(Answer::Reader(reader)) => Source::Reader(reader),
            Err(_) => {
                let mut core = live.lock();
                core.handler_failed(id, "the handler panicked");
                return self.settle_here(live, core, serving);
            }
        };
        // This thread sends the stream, as the transport takes it.
        self.send_stream(live, id, source);
    }

    /// Drains the session after a command, then does what the drain asked for.
    fn settle(&self, live: &Arc<Live>, mut core: MutexGuard<'_, ServerSession>) {
        let mut more = Vec::new();
        live.drain(&mut core, &mut more);
        drop(core);
        let _ = self.act(live, &mut more, false);
    }

    /// Like [`Server::settle`], writing what the drain produced on this thread (a handler's
    /// thread sending its reply) rather than waking the writing thread for it.
    /// `serving`: the thread serving the session's queue, which holds the reply back while
    /// the next request waits, to write them together.
    fn settle_here(
        &self,
        live: &Arc<Live>,
        mut core: MutexGuard<'_, ServerSession>,
        serving: bool,
    ) {
        let mut more = Vec::new();
        live.drain_for_handler(&mut core, &mut more);
        drop(core);
        let may_hold = serving && live.writer.backlog() < HOLD_MAX;
        if !live.pending.hold_reply(Instant::now(), may_hold) {
            live.writer.write_here();
        }
        let _ = self.act(live, &mut more, false);
    }

    /// Sends a streamed answer to request `id`, on the handler's thread: the next piece is
    /// pulled only once the stream is the reply being sent (the replies before it are out)
    /// and the writer's backlog is low, so memory stays bounded by a few pieces. The session's
    /// end (kill-session, shutdown, a failed write) stops the pulling.
    fn send_stream(&self, live: &Arc<Live>, id: RequestId, mut source: Source) {
        // The first piece before the reply begins: a source that fails at once (a file that
        // cannot be read) still gets an rpc-error.
        let mut next = match pull(&mut source) {
            Ok(piece) => piece,
            Err(why) => {
                let mut core = live.lock();
                core.stream_unavailable(id, &why);
                return self.settle(live, core);
            }
        };
        let mut core = live.lock();
        core.reply_stream(id);
        self.settle(live, core);
        loop {
            let counted = live.changed.waiting();
            let mut core = live.lock();
            loop {
                if core.is_ended() {
                    return; // the source is dropped unfinished
                }
                if core.stream_ready() == Some(id) && live.writer.backlog() <= STREAM_BACKLOG {
                    break;
                }
                // Woken by every drain and every write.
                core = live.changed.wait(core);
            }
            drop(counted);
            let Some(piece) = next.take() else {
                core.stream_end(id);
                live.release_held(&mut core);
                return self.settle(live, core);
            };
            core.stream_piece(id, piece);
            self.settle(live, core);
            // Produced while the writer sends the last one.
            next = match pull(&mut source) {
                Ok(piece) => piece,
                Err(why) => {
                    let mut core = live.lock();
                    core.stream_failed(id, &why);
                    return self.settle(live, core);
                }
            };
        }
    }

    /// The session-ids of the sessions now open.
    pub fn sessions(&self) -> Vec<u32> {
        self.inner.registry().ids()
    }

    /// Sends an RFC 5277 notification to every session that created a subscription;
    /// returns how many it was sent to. It never waits for a session: one that has let too
    /// much go unread (a subscriber that does not read) is disconnected instead.
    ///
    /// A session in the middle of a streamed reply cannot send anything else: the
    /// notification is held (and counted as sent) until the reply ends, then sent in
    /// order. More than the notification queue held that way is a subscriber that does
    /// not keep up: it is disconnected.
    pub fn notify(&self, event_time: &str, content: &str) -> Result<usize, Error> {
        netconf_proto::xml::check_fragment(content)?;
        let limit = self.inner.options.get_notification_queue() * NOTIFICATION_BYTES;
        let mut sent = 0;
        let subscribers = self.inner.registry().subscribers();
        for live in subscribers.iter().filter_map(|slot| slot.live.get()) {
            if live.writer.backlog() > limit {
                tracing::warn!("a subscriber fell too far behind; disconnecting it");
                live.end("subscriber too slow");
                continue;
            }
            let mut core = live.lock();
            // While a streamed reply is being sent, nothing else can go out: the
            // notification waits for its end (behind any waiting already). Likewise while a
            // reply is held back in the core (see `PACE`): bounded here, not behind it there.
            let mut held = live.held();
            if core.is_subscribed()
                && (core.is_streaming() || live.paced.load(Ordering::SeqCst) || !held.is_empty())
            {
                if core.is_ended() {
                    continue;
                }
                if held.len() >= self.inner.options.get_notification_queue() {
                    drop(held);
                    drop(core);
                    tracing::warn!("a subscriber fell too far behind during a streamed reply; disconnecting it");
                    live.end("subscriber too slow");
                    continue;
                }
                held.push_back((event_time.to_owned(), content.to_owned()));
                sent += 1;
                continue;
            }
            drop(held);
            match core.notify(event_time, content) {
                Ok(true) => sent += 1,
                Ok(false) => {}
                // This session cannot take it (a base:1.0 session and content holding its
                // delimiter): the others still get it.
                Err(e) => tracing::warn!(
                    session_id = core.info().session_id,
                    error = %e,
                    "notification not sent"
                ),
            }
            // A request the session's loop read may be waiting in the core: whoever drains
            // it must act on it, or it would never be answered.
            let mut actions = Vec::new();
            live.drain(&mut core, &mut actions);
            drop(core);
            let _ = self.act(live, &mut actions, false);
        }
        Ok(sent)
    }

    /// Stops every listener, ends every session and waits for their threads (a handler
    /// still running is not waited for: its answer is dropped).
    pub fn shutdown(&self) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for addr in lock(&self.inner.listeners).drain(..) {
            // Wake the accept loop; it sees `stopping` and returns.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        #[cfg(feature = "ssh")]
        for stop in lock(&self.inner.ssh_stops).drain(..) {
            stop.stop();
        }
        for stop in std::mem::take(&mut *lock(&self.inner.on_shutdown)) {
            stop();
        }
        // Collected first: ending a session takes its core's lock, which must never wait
        // while the registry's is held.
        let sessions = self.inner.registry().shut_down();
        for slot in sessions {
            slot.end("server shutting down");
        }
        // Handlers still running are not waited for (their answers are dropped); idle
        // handler threads end now.
        self.inner.workers.stop();
        // The listeners' sessions end with their loops (a loop held by a handler is handed
        // on by the watchdog, and sees the end).
        // Not the session whose end hook calls this: it is over but for the hook.
        let own = usize::from(ENDING_DETACHED.get() == Arc::as_ptr(&self.inner) as usize);
        let mut detached = lock(&self.inner.detached);
        while *detached > own {
            detached = self
                .inner
                .detached_ended
                .wait(detached)
                .unwrap_or_else(|p| p.into_inner());
        }
        drop(detached);
        loop {
            let threads: Vec<_> = std::mem::take(&mut *lock(&self.inner.threads));
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// The earlier of two optional instants (`None`: never).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next piece of a streamed answer; a source that fails or panics says why.
fn pull(source: &mut Source) -> Result<Option<bytes::Bytes>, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.next_piece())) {
        Ok(Ok(piece)) => Ok(piece),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the payload source panicked".into()),
    }
}
