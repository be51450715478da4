//! The futures-io server: a task per session looping around [`ServerSession`], handlers
//! polled beside the loop inside the session's task (so kill-session and shutdown abort
//! them by dropping them, on any executor), TLS listeners and sessions over streams the
//! caller has.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use futures_lite::{future, FutureExt};
use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{
    KillOutcome, Registry, ServerOptions, ServerOutput, ServerSession, SessionInfo,
};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Error, Machine, Reply, Request, RequestId, Session, TlsSession};

use crate::link::{sleep, when, AsyncStream, Link, OnRead};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = dyn Fn(Request, SessionInfo) -> BoxFuture<Reply> + Send + Sync;
/// Runs a task to completion on the caller's executor.
pub type Spawner = Arc<dyn Fn(BoxFuture<()>) + Send + Sync>;

/// What other tasks hold of a session: its notification queue and its kill switch.
#[derive(Clone)]
struct SessionHandle {
    notifications: Sender<Arc<(String, String)>>,
    kill: Sender<()>,
}

struct Inner {
    options: ServerOptions,
    handler: Arc<Handler>,
    spawner: Spawner,
    registry: Mutex<Registry<SessionHandle>>,
    /// Closed by shutdown: every accept loop stops.
    stop: (Sender<()>, Receiver<()>),
    /// Every task holds a clone; shutdown drops the last one here and waits for the rest.
    alive: Mutex<Option<Sender<()>>>,
    all_done: Receiver<()>,
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
        (self.spawner)(Box::pin(async move {
            task.await;
            drop(alive);
        }));
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
    /// A server whose tasks run on smol's global executor; see [`Server::with_spawner`].
    #[cfg(feature = "smol")]
    pub fn new<F, Fut>(options: ServerOptions, handler: F) -> Server
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Server::with_spawner(options, handler, Arc::new(|f| smol::spawn(f).detach()))
    }

    /// A server whose `handler` answers every `<rpc>` but close-session and kill-session,
    /// which the server handles itself, with its tasks (one per listener and per session)
    /// run by `spawner` on any executor. Handlers are polled beside their session's loop,
    /// inside its task; a panic in one is answered with `operation-failed`.
    pub fn with_spawner<F, Fut>(options: ServerOptions, handler: F, spawner: Spawner) -> Server
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let (alive, all_done) = async_channel::bounded(1);
        Server {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::new(options.get_max_sessions())),
                options,
                handler: Arc::new(move |req, info| {
                    Box::pin(handler(req, info)) as BoxFuture<Reply>
                }),
                spawner,
                stop: async_channel::bounded(1),
                alive: Mutex::new(Some(alive)),
                all_done,
            }),
        }
    }

    /// Listens for NETCONF over TLS (RFC 7589) on `addr` and serves every connection, on a
    /// task of its own, until [`Server::shutdown`]. Returns the bound address.
    pub async fn listen_tls(
        &self,
        addr: impl async_net::AsyncToSocketAddrs,
        tls: &ServerTlsOptions,
    ) -> Result<SocketAddr, Error> {
        let config = tls.build()?;
        let listener = async_net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let server = self.clone();
        self.inner
            .spawn(async move { server.accept_loop(listener, config).await });
        Ok(local)
    }

    /// Runs `task` as one of the server's tasks (shutdown waits for it).
    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    pub(crate) fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.spawn(task);
    }

    /// Closed when the server shuts down: accept loops stop.
    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    pub(crate) fn stop_signal(&self) -> Receiver<()> {
        self.inner.stop.1.clone()
    }

    async fn accept_loop(self, listener: async_net::TcpListener, tls: Arc<ServerConfig>) {
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
                    let _ = stream.set_nodelay(true);
                    if let Some(session) = self.admit(Some(peer)) {
                        let server = self.clone();
                        let tls = tls.clone();
                        self.inner.spawn(async move {
                            server
                                .serve_tls_admitted(Box::new(stream), tls, session)
                                .await
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
                        async_io::Timer::after(wait).await;
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
    /// call home: we dialled the manager, yet run TLS as the server). Returns when it ends.
    pub async fn serve_tls(
        &self,
        stream: impl AsyncStream + 'static,
        tls: &ServerTlsOptions,
        peer: Option<SocketAddr>,
    ) -> Result<(), Error> {
        let config = tls.build()?;
        let session = self.admit(peer).ok_or_else(refused)?;
        self.serve_tls_admitted(Box::new(stream), config, session)
            .await;
        Ok(())
    }

    /// Serves one session over a plaintext stream whose peer the transport already
    /// authenticated as `username` (an SSH channel); returns when it ends.
    ///
    /// Unlike a TLS session, this one keeps reading while it writes (as long as it wants
    /// requests at all: the pending-request cap still holds a client that never reads). An
    /// SSH channel needs it: russh re-grants the peer's window as data arrives, not as we
    /// read it, so a peer writing a large request while we write a large reply would fill
    /// the channel's buffer, park the SSH connection and with it the window adjusts our own
    /// write waits for.
    pub async fn serve_stream(
        &self,
        stream: impl AsyncStream + 'static,
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
        self.run_session(Box::new(stream), Box::new(machine), session, true)
            .await;
        Ok(())
    }

    async fn serve_tls_admitted(
        &self,
        stream: Box<dyn AsyncStream>,
        tls: Arc<ServerConfig>,
        session: Admitted,
    ) {
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
            }
        }
    }

    fn admit(&self, peer: Option<SocketAddr>) -> Option<Admitted> {
        let (notifications, queue) =
            async_channel::bounded(self.inner.options.get_notification_queue());
        let (kill, killed) = async_channel::bounded(1);
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
    ) {
        enum Step {
            Killed,
            Handler(RequestId, std::thread::Result<Reply>),
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
        let mut link = Link::new(stream, options.get_write_timeout());
        let mut handlers = Handlers::default();
        // Ending on our side (killed, shut down, a subscriber too slow): no write may wait
        // for the peer any more. `Broken` once a write was cut short: nothing more is sent.
        let mut stop = Stop::Running;
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
                                core.wants_read()
                            };
                            let on_read: Option<OnRead<'_>> =
                                if reading { Some(&mut on_read) } else { None };
                            let written = async {
                                let _ = killed.recv().await;
                                None
                            }
                            .or(async { Some(link.write_all(&bytes, on_read).await) })
                            .await;
                            match written {
                                None => {
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
                    ServerOutput::Abort(request) => handlers.remove(request),
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
            let reading = core.wants_read() && link.can_read();
            let step = async {
                let _ = killed.recv().await;
                Step::Killed
            }
            .or(async {
                let (request, reply) = handlers.next().await;
                Step::Handler(request, reply)
            })
            .or(async { Step::Notification(queue.recv().await.ok()) })
            .or(when(reading, async { Step::Read(link.read().await) }))
            .or(async {
                sleep(deadline).await;
                Step::Timeout
            })
            .await;
            match step {
                Step::Killed => {
                    stop = stop.max(Stop::Stopping);
                    core.abort("killed");
                }
                Step::Handler(request, Ok(reply)) => core.reply(request, reply),
                Step::Handler(request, Err(_)) => {
                    core.handler_failed(request, "the handler panicked")
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
        match stop {
            Stop::Running => link.shutdown().await,
            Stop::Stopping => {
                let _ = future::poll_once(link.shutdown()).await;
            }
            Stop::Broken => {}
        }
        drop(live);
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
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("a subscriber fell too far behind; disconnecting it");
                    let _ = handle.kill.try_send(());
                }
                Err(TrySendError::Closed(_)) => {}
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
    queue: Receiver<Arc<(String, String)>>,
    killed: Receiver<()>,
}

/// The handlers running for one session, polled together inside its task.
#[derive(Default)]
struct Handlers {
    running: Vec<(RequestId, BoxFuture<std::thread::Result<Reply>>)>,
}

impl Handlers {
    fn push(&mut self, id: RequestId, reply: BoxFuture<Reply>) {
        let guarded = std::panic::AssertUnwindSafe(reply).catch_unwind();
        self.running.push((id, Box::pin(guarded)));
    }

    fn remove(&mut self, id: RequestId) {
        self.running.retain(|(r, _)| *r != id);
    }

    /// The next handler to finish; never, while none runs.
    async fn next(&mut self) -> (RequestId, std::thread::Result<Reply>) {
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
