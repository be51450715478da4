//! The server: a task per session looping around [`ServerSession`], handlers polled beside
//! the loop inside the session's task (so kill-session and shutdown abort them by dropping
//! them, on any executor), streamed answers pulled a piece at a time as the transport takes
//! them, TLS listeners and sessions over streams the caller has.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bytes::Bytes;
use futures_io::AsyncRead;
use futures_lite::{future, AsyncReadExt, FutureExt, Stream, StreamExt};
use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{
    KillOutcome, Registry, ServerOptions, ServerOutput, ServerSession, SessionInfo,
};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Error, Machine, Reply, Request, RequestId, Session, TlsSession};

use crate::budget::{budgeted, Budget};
use crate::link::{AfterRead, Link, OnRead};
use crate::queue;
use crate::runtime::{when, Adopt, Alarm, AsyncStream, BoxFuture, BoxStream, Listener, Runtime};

/// Steps a session's loop may take in one poll before it lets its thread's other tasks
/// run (a read is up to 64 KiB).
const SESSION_STEPS: u32 = 16;

type Handler = dyn Fn(Request, SessionInfo) -> BoxFuture<Answer> + Send + Sync;
/// Runs a task to completion on an executor of the caller's choice.
pub type Spawner = Arc<dyn Fn(BoxFuture<()>) + Send + Sync>;
/// A streamed answer's pieces.
pub type PieceStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// What a handler answers: a reply, or a `<data>` payload produced piece by piece for
/// replies too large to hold (sent as the transport takes them, framed chunk by chunk,
/// each piece handed to the transport as it is). A handler returning [`Reply`] answers
/// with it.
pub enum Answer {
    Reply(Reply),
    /// The content of `<data>`, in pieces, pulled one at a time as the transport takes
    /// them. A source that fails (or panics) before its first piece is answered with an
    /// `operation-failed` rpc-error; later, a failure ends the session: a reply already
    /// begun cannot be taken back (the client sees a truncated message, never a short one
    /// that looks complete).
    Stream(PieceStream),
}

impl Answer {
    /// A `<data>` payload from a stream of pieces.
    pub fn stream(pieces: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        Answer::Stream(Box::pin(pieces))
    }

    /// A `<data>` payload read from `reader`, 64 KiB at a time.
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        let pieces = futures_lite::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            let mut buf = vec![0; 64 * 1024];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(reader)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        Answer::stream(pieces)
    }

    /// [`Answer::reader`] for a tokio reader (feature `tokio`, on in netconf-tokio): a
    /// `tokio::fs::File`, a child process's stdout, a socket.
    #[cfg(feature = "tokio")]
    pub fn tokio_reader(reader: impl tokio::io::AsyncRead + Send + Unpin + 'static) -> Self {
        use tokio::io::AsyncReadExt;
        let pieces = futures_lite::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            match reader.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Answer::stream(pieces)
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Answer::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// What other tasks hold of a session: its notification queue and its kill switch.
#[derive(Clone)]
struct SessionHandle {
    notifications: queue::Sender<Arc<(String, String)>>,
    kill: queue::Sender<()>,
}

struct Inner {
    options: ServerOptions,
    handler: Arc<Handler>,
    spawner: Option<Spawner>,
    registry: Mutex<Registry<SessionHandle>>,
    /// Closed by shutdown: every accept loop stops.
    stop: (Sender<()>, Receiver<()>),
    /// Every task holds a clone; shutdown drops the last one here and waits for the rest.
    alive: Mutex<Option<Sender<()>>>,
    all_done: Receiver<()>,
    /// The runtime's spawn, when no spawner was given.
    spawn_on_runtime: Box<dyn Fn(BoxFuture<()>) + Send + Sync>,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry<SessionHandle>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns a task that shutdown will wait for; none once shutdown began.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let Some(alive) = self.alive.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        let task: BoxFuture<()> = Box::pin(async move {
            task.await;
            drop(alive);
        });
        match &self.spawner {
            Some(spawner) => spawner(task),
            None => self.spawn_on_runtime.as_ref()(task),
        }
    }
}

/// A NETCONF server: one handler and one set of sessions, whatever they arrive over (TLS
/// and SSH listeners, streams the caller accepted or dialled). Cheap to clone.
pub struct Server<R> {
    inner: Arc<Inner>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.inner.options)
            .field("sessions", &self.inner.registry().ids())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Server<R> {
    /// A server whose `handler` answers every `<rpc>` but close-session and kill-session,
    /// which the server handles itself: with a [`Reply`], or an [`Answer::Stream`] for a
    /// payload too large to hold. Its tasks (one per listener and per session) run on the
    /// runtime. Handlers are polled beside their session's loop, inside its task; a panic in
    /// one is answered with `operation-failed`.
    pub fn new<F, Fut>(options: ServerOptions, handler: F) -> Self
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Into<Answer>,
    {
        Self::build(options, handler, None)
    }

    /// Like [`Server::new`], with the tasks run by `spawner` on an executor of your choice.
    pub fn with_spawner<F, Fut>(options: ServerOptions, handler: F, spawner: Spawner) -> Self
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Into<Answer>,
    {
        Self::build(options, handler, Some(spawner))
    }

    fn build<F, Fut>(options: ServerOptions, handler: F, spawner: Option<Spawner>) -> Self
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Into<Answer>,
    {
        let (alive, all_done) = async_channel::bounded(1);
        Server {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::new(options.get_max_sessions())),
                options,
                handler: Arc::new(move |req, info| {
                    let answer = handler(req, info);
                    Box::pin(async move { answer.await.into() }) as BoxFuture<Answer>
                }),
                spawner,
                stop: async_channel::bounded(1),
                alive: Mutex::new(Some(alive)),
                all_done,
                spawn_on_runtime: Box::new(R::spawn),
            }),
            runtime: PhantomData,
        }
    }

    /// Listens for NETCONF over TLS (RFC 7589) on `addr` and serves every connection, on a
    /// task of its own, until [`Server::shutdown`]. Returns the bound address.
    pub async fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        tls: &ServerTlsOptions,
    ) -> Result<SocketAddr, Error> {
        let config = tls.build()?;
        let (listener, local) = R::bind(addr.to_socket_addrs()?.collect()).await?;
        let server = self.clone();
        self.inner
            .spawn(async move { server.accept_loop(listener, config).await });
        Ok(local)
    }

    /// Runs `task` as one of the server's tasks (shutdown waits for it).
    pub(crate) fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.spawn(task);
    }

    /// Closed when the server shuts down: accept loops stop.
    pub(crate) fn stop_signal(&self) -> Receiver<()> {
        self.inner.stop.1.clone()
    }

    async fn accept_loop(self, mut listener: Box<dyn Listener>, tls: Arc<ServerConfig>) {
        let mut failures = 0u32;
        let stop = self.inner.stop.1.clone();
        loop {
            let accepted = async { Some(listener.accept().await) }
                .or(async {
                    let _ = stop.recv().await;
                    None
                })
                .await;
            match accepted {
                None => return,
                Some(Ok((stream, peer))) => {
                    failures = 0;
                    if let Some(session) = self.admit(Some(peer)) {
                        let server = self.clone();
                        let tls = tls.clone();
                        self.inner.spawn(async move {
                            let _ = server.serve_tls_admitted(stream, tls, session).await;
                        });
                    }
                }
                Some(Err(e)) => {
                    // EMFILE and friends: back off (5 ms doubling to 1 s) instead of spinning.
                    let wait =
                        Duration::from_millis(5u64 << failures.min(8)).min(Duration::from_secs(1));
                    failures += 1;
                    tracing::warn!(error = %e, ?wait, "accept failed; backing off");
                    let stopped = async {
                        R::sleep_until(Instant::now() + wait).await;
                        false
                    }
                    .or(async {
                        let _ = stop.recv().await;
                        true
                    })
                    .await;
                    if stopped {
                        return;
                    }
                }
            }
        }
    }

    /// Serves one NETCONF-over-TLS session on a stream the caller already has (RFC 8071
    /// call home: we dialled the manager, yet run TLS as the server). Returns when it ends:
    /// `Ok` once a NETCONF session ran (however it ended), else why none was established
    /// (the TLS alert, a timeout, the peer hanging up).
    pub async fn serve_tls<S>(
        &self,
        stream: S,
        tls: &ServerTlsOptions,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error>
    where
        R: Adopt<S>,
    {
        self.serve_tls_boxed(R::adopt(stream), tls.build()?, peer)
            .await
    }

    /// [`Server::serve_tls`] on a stream in the loops' form.
    pub(crate) async fn serve_tls_boxed(
        &self,
        stream: BoxStream,
        config: Arc<ServerConfig>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let session = self.admit(peer).ok_or_else(refused)?;
        self.serve_tls_admitted(stream, config, session).await
    }

    /// Serves one session over a plaintext stream whose peer the transport already
    /// authenticated as `username` (an SSH channel); returns when it ends (`Ok` once a
    /// NETCONF session ran, else why none was established).
    ///
    /// Unlike a TLS session, this one keeps reading while it writes (as long as it wants
    /// requests at all: the pending-request cap still holds a client that never reads). An
    /// SSH channel needs it: russh re-grants the peer's window as data arrives, not as we
    /// read it, so a peer writing a large request while we write a large reply would fill
    /// the channel's buffer, park the SSH connection and with it the window adjusts our own
    /// write waits for.
    pub async fn serve_stream<S>(
        &self,
        stream: S,
        username: Option<String>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error>
    where
        R: Adopt<S>,
    {
        self.serve_plaintext(R::adopt(stream), username, peer).await
    }

    /// [`Server::serve_stream`] on a stream already in the loops' form.
    pub(crate) async fn serve_plaintext(
        &self,
        stream: BoxStream,
        username: Option<String>,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let mut session = self.admit(peer).ok_or_else(refused)?;
        session.info.username = username;
        let machine = Session::server(
            self.inner.options.session_config().clone(),
            session.info.session_id,
            Instant::now(),
        );
        self.run_session(stream, Box::new(machine), session, true)
            .await
    }

    async fn serve_tls_admitted(
        &self,
        stream: Box<dyn AsyncStream>,
        tls: Arc<ServerConfig>,
        session: Admitted,
    ) -> Result<(), Error> {
        let machine = TlsSession::server(
            tls,
            self.inner.options.session_config().clone(),
            session.info.session_id,
            Instant::now(),
        );
        match machine {
            Ok(machine) => {
                self.run_session(stream, Box::new(machine), session, false)
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a TLS session");
                self.inner.registry().remove(session.info.session_id);
                Err(Error::Tls(netconf_proto::TlsError::from_rustls(e)))
            }
        }
    }

    fn admit(&self, peer: Option<SocketAddr>) -> Option<Admitted> {
        let (notifications, queue) = queue::bounded(self.inner.options.get_notification_queue());
        let (kill, killed) = queue::bounded(1);
        match self.inner.registry().admit(SessionHandle {
            notifications,
            kill,
        }) {
            Ok(id) => Some(Admitted {
                info: SessionInfo::new(id, peer),
                queue,
                killed,
            }),
            Err(refusal) => {
                tracing::warn!(?peer, %refusal, "connection refused");
                None
            }
        }
    }

    async fn run_session(
        &self,
        stream: Box<dyn AsyncStream>,
        machine: Box<dyn Machine + Send>,
        admitted: Admitted,
        read_while_writing: bool,
    ) -> Result<(), Error> {
        budgeted(SESSION_STEPS, |budget| {
            self.session_loop(stream, machine, admitted, read_while_writing, budget)
        })
        .await
    }

    /// The session's loop; each step spends from `budget`.
    async fn session_loop(
        &self,
        stream: Box<dyn AsyncStream>,
        machine: Box<dyn Machine + Send>,
        admitted: Admitted,
        read_while_writing: bool,
        budget: Arc<Budget>,
    ) -> Result<(), Error> {
        enum Step {
            Killed,
            Handler(RequestId, std::thread::Result<Answer>),
            First(RequestId, Option<io::Result<Bytes>>),
            Piece(RequestId, Option<io::Result<Bytes>>),
            Notification(Option<Arc<(String, String)>>),
            Read(io::Result<usize>),
            Timeout,
        }
        let Admitted {
            info,
            queue,
            killed,
        } = admitted;
        let id = info.session_id;
        let options = &self.inner.options;
        // Leaves the registry and runs the session-end hook however this task ends.
        let mut live = Live {
            core: ServerSession::new(machine, info, options, Instant::now()),
            inner: self.inner.clone(),
        };
        let core = &mut live.core;
        let mut link = Link::<R>::new(stream, options.get_write_timeout());
        link.spend_from(budget);
        let mut handlers = Handlers::default();
        // Streamed answers waiting for their turn, or being sent.
        let mut sources: Vec<Source> = Vec::new();
        // Ending on our side (killed, shut down, a subscriber too slow): no write may wait
        // for the peer any more. `Broken` once a write was cut short: nothing more is sent.
        let mut stop = Stop::Running;
        // The kill and the next notification are waited for by one future each, kept across
        // turns. (They were kept because an `async_channel` receive registered a listener
        // each time; a `queue` receive costs one lock either way.)
        let mut kill = Box::pin(killed.recv());
        let mut was_killed = false;
        let mut next_notification = Box::pin(queue.recv());
        let mut alarm = Alarm::<R>::new();
        loop {
            let deadline = loop {
                match core.poll() {
                    ServerOutput::Transmit(bytes) => match stop {
                        Stop::Running => {
                            // A peer that does not read must not keep a kill or a shutdown
                            // waiting for the write timeout.
                            let reading = read_while_writing && core.wants_read();
                            let mut on_read = |r: io::Result<&[u8]>| {
                                core.handle_read(r, Instant::now());
                                AfterRead::reading_if(core.wants_read())
                            };
                            let on_read: Option<OnRead<'_>> =
                                if reading { Some(&mut on_read) } else { None };
                            // The write first: one that completes at once never polls
                            // the kill.
                            let written = async { Some(link.write_all(&bytes, on_read).await) }
                                .or(when(!was_killed, async {
                                    let _ = kill.as_mut().await;
                                    None
                                }))
                                .await;
                            match written {
                                None => {
                                    was_killed = true;
                                    stop = Stop::Broken;
                                    core.abort("killed");
                                }
                                Some(Ok(())) => {}
                                Some(Err(e)) => core.handle_write_error(&e),
                            }
                        }
                        Stop::Stopping => {
                            // What fits now goes out (our close_notify, say); nothing waits.
                            match future::poll_once(link.write_all(&bytes, None)).await {
                                Some(Ok(())) => {}
                                Some(Err(e)) => core.handle_write_error(&e),
                                None => stop = Stop::Broken,
                            }
                        }
                        Stop::Broken => {}
                    },
                    ServerOutput::Dispatch { id, request } => {
                        // The handler's own code (before its future) may panic too: that
                        // costs the request, not the session.
                        let info = core.info().clone();
                        let handler = &self.inner.handler;
                        match catch_unwind(AssertUnwindSafe(|| handler(request, info))) {
                            Ok(reply) => handlers.push(id, reply),
                            Err(_) => core.handler_failed(id, "the handler panicked"),
                        }
                    }
                    ServerOutput::KillSession { id, target } => {
                        let existed = match self.inner.registry().kill(target) {
                            KillOutcome::Killed(h) => {
                                let _ = h.kill.try_send(());
                                true
                            }
                            KillOutcome::NotFound => false,
                        };
                        core.kill_done(id, target, existed);
                    }
                    ServerOutput::Subscribed => self.inner.registry().set_subscribed(id),
                    ServerOutput::Abort(request) => {
                        handlers.remove(request);
                        sources.retain(|s| s.request != request);
                    }
                    ServerOutput::Ended(_) => break None,
                    ServerOutput::Wait(deadline) => break Some(deadline),
                    _ => {}
                }
            };
            let Some(deadline) = deadline else { break };
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                core.handle_timeout(now);
                continue;
            }
            // Everything the last step produced is out. A session that always has more
            // (requests pipelined without end, a source always ready) lets its thread's
            // other tasks run now and then.
            link.step().await;
            let reading = core.wants_read() && link.can_read();
            // Everything before is written: the streamed answer whose turn it is may give
            // its next piece (one at a time, so memory stays a piece's worth). A streamed
            // answer not begun gives its first piece ahead, so that a source failing at
            // once is answered with an rpc-error.
            let ready = core.stream_ready();
            let (mut opening, mut current) = (None, None);
            for source in sources.iter_mut() {
                if !source.begun {
                    opening = opening.or(Some(source));
                } else if Some(source.request) == ready {
                    current = Some(source);
                }
            }
            // Notifications wait while a streamed reply is being sent.
            let streaming = core.is_streaming();
            let step = when(!was_killed, async {
                let _ = kill.as_mut().await;
                Step::Killed
            })
            .or(async {
                let (request, reply) = handlers.next().await;
                Step::Handler(request, reply)
            })
            .or(when(!streaming, async {
                let n = next_notification.as_mut().await;
                next_notification.set(queue.recv());
                Step::Notification(n)
            }))
            // Requests before pieces: a source always ready must not keep the requests
            // pipelined behind its reply unread (their writer waiting out the whole reply).
            .or(when(reading, async { Step::Read(link.read().await) }))
            .or(async {
                match opening {
                    Some(source) => Step::First(source.request, source.next().await),
                    None => std::future::pending().await,
                }
            })
            .or(async {
                match current {
                    Some(source) => {
                        let piece = match source.first.take() {
                            Some(first) => first.map(Ok),
                            None => source.next().await,
                        };
                        Step::Piece(source.request, piece)
                    }
                    None => std::future::pending().await,
                }
            })
            .or(async {
                alarm.ring_by(deadline).await;
                Step::Timeout
            })
            .await;
            match step {
                Step::Killed => {
                    was_killed = true;
                    stop = stop.max(Stop::Stopping);
                    core.abort("killed");
                }
                Step::Handler(request, Ok(Answer::Reply(reply))) => core.reply(request, reply),
                Step::Handler(request, Ok(Answer::Stream(pieces))) => sources.push(Source {
                    request,
                    pieces,
                    begun: false,
                    first: None,
                }),
                Step::First(request, Some(Err(e))) => {
                    sources.retain(|s| s.request != request);
                    core.stream_unavailable(request, &e.to_string());
                }
                Step::First(request, first) => {
                    if let Some(source) = sources.iter_mut().find(|s| s.request == request) {
                        source.begun = true;
                        source.first = Some(first.and_then(Result::ok));
                    }
                    core.reply_stream(request);
                }
                Step::Handler(request, Err(_)) => {
                    core.handler_failed(request, "the handler panicked")
                }
                Step::Piece(request, Some(Ok(piece))) => core.stream_piece(request, piece),
                Step::Piece(request, Some(Err(e))) => {
                    sources.retain(|s| s.request != request);
                    core.stream_failed(request, &e.to_string());
                }
                Step::Piece(request, None) => {
                    sources.retain(|s| s.request != request);
                    core.stream_end(request);
                }
                Step::Notification(Some(n)) => {
                    if let Err(e) = core.notify(&n.0, &n.1) {
                        tracing::warn!(session_id = id, error = %e, "notification not sent");
                    }
                }
                Step::Notification(None) => {
                    stop = stop.max(Stop::Stopping);
                    core.abort("server gone");
                }
                Step::Read(read) => core.handle_read(link.bytes(read), Instant::now()),
                Step::Timeout => core.handle_timeout(Instant::now()),
            }
        }
        drop(handlers);
        drop(sources);
        match stop {
            Stop::Running => link.shutdown().await,
            Stop::Stopping => {
                let _ = future::poll_once(link.shutdown()).await;
            }
            Stop::Broken => {}
        }
        let outcome = live.core.outcome();
        drop(live);
        outcome
    }

    /// The session-ids of the sessions now open.
    pub fn sessions(&self) -> Vec<u32> {
        self.inner.registry().ids()
    }

    /// Sends an RFC 5277 notification to every session that created a subscription;
    /// returns how many it was queued for. It never waits for a session: one whose queue is
    /// full (a subscriber that does not read) is disconnected instead.
    pub fn notify(&self, event_time: &str, content: &str) -> Result<usize, Error> {
        netconf_proto::xml::check_fragment(content)?;
        let note = Arc::new((event_time.to_owned(), content.to_owned()));
        let mut queued = 0;
        for handle in self.inner.registry().subscribers() {
            match handle.notifications.try_send(note.clone()) {
                Ok(()) => queued += 1,
                Err(queue::TrySendError::Full(_)) => {
                    tracing::warn!("a subscriber fell too far behind; disconnecting it");
                    let _ = handle.kill.try_send(());
                }
                Err(queue::TrySendError::Closed(_)) => {}
            }
        }
        Ok(queued)
    }

    /// Stops every listener, ends every session (dropping running handlers) and waits for
    /// their tasks to finish.
    pub async fn shutdown(&self) {
        self.inner.stop.0.close();
        for handle in self.inner.registry().shut_down() {
            let _ = handle.kill.try_send(());
        }
        drop(
            self.inner
                .alive
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        // Every task's clone of `alive` is gone when this fails.
        let _ = self.inner.all_done.recv().await;
    }
}

fn refused() -> Error {
    Error::Io(io::Error::other("the server refused the session"))
}

/// How far a session's end on our side has gone; see `run_session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    Running,
    Stopping,
    Broken,
}

/// A running session's core; dropping it (at the end, or when the task panics or is
/// cancelled) takes the session out of the registry and runs the session-end hook, so no
/// path leaves a stale entry.
struct Live {
    core: ServerSession,
    inner: Arc<Inner>,
}

impl Drop for Live {
    fn drop(&mut self) {
        let info = self.core.info();
        self.inner.registry().remove(info.session_id);
        self.inner.options.session_ended(info);
    }
}

struct Admitted {
    info: SessionInfo,
    queue: queue::Receiver<Arc<(String, String)>>,
    killed: queue::Receiver<()>,
}

/// A streamed answer of one session.
struct Source {
    request: RequestId,
    pieces: PieceStream,
    /// Its reply has begun (its first piece was pulled ahead).
    begun: bool,
    /// The first piece (`Some(None)`: the source was empty), until the reply's turn.
    first: Option<Option<Bytes>>,
}

impl Source {
    /// The next piece; a panic in the source is its failure.
    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        match AssertUnwindSafe(self.pieces.next()).catch_unwind().await {
            Ok(piece) => piece,
            Err(_) => Some(Err(io::Error::other("the source panicked"))),
        }
    }
}

/// The handlers running for one session, polled together inside its task.
#[derive(Default)]
struct Handlers {
    running: Vec<(RequestId, BoxFuture<std::thread::Result<Answer>>)>,
}

impl Handlers {
    fn push(&mut self, id: RequestId, reply: BoxFuture<Answer>) {
        let guarded = std::panic::AssertUnwindSafe(reply).catch_unwind();
        self.running.push((id, Box::pin(guarded)));
    }

    fn remove(&mut self, id: RequestId) {
        self.running.retain(|(r, _)| *r != id);
    }

    /// The next handler to finish; never, while none runs.
    async fn next(&mut self) -> (RequestId, std::thread::Result<Answer>) {
        std::future::poll_fn(|cx| {
            for i in 0..self.running.len() {
                if let Poll::Ready(reply) = self.running[i].1.as_mut().poll(cx) {
                    let (id, _) = self.running.swap_remove(i);
                    return Poll::Ready((id, reply));
                }
            }
            Poll::Pending
        })
        .await
    }
}
