//! The tokio server: a task per session looping around [`ServerSession`], handlers that run
//! beside the loop (kill-session and shutdown abort them), TLS listeners and sessions over
//! streams the caller has.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{
    KillOutcome, Registry, ServerOptions, ServerOutput, ServerSession, SessionInfo,
};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Error, Machine, Reply, Request, RequestId, Session, TlsSession};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{AbortHandle, JoinSet};

use crate::link::{now_or_never, sleep, AsyncStream, Link, OnRead};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = dyn Fn(Request, SessionInfo) -> BoxFuture<Reply> + Send + Sync;

/// What other tasks hold of a session: its notification queue and its kill switch.
#[derive(Clone)]
struct SessionHandle {
    notifications: mpsc::Sender<Arc<(String, String)>>,
    kill: Arc<Notify>,
}

struct Inner {
    options: ServerOptions,
    handler: Arc<Handler>,
    registry: Mutex<Registry<SessionHandle>>,
    /// Session and accept-loop tasks, so shutdown can wait for them.
    tasks: Mutex<JoinSet<()>>,
    stop: watch::Sender<bool>,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry<SessionHandle>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
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
    /// which the server handles itself. Each request's handler runs in a task of its own,
    /// beside the session; a panic in it is answered with `operation-failed`.
    pub fn new<F, Fut>(options: ServerOptions, handler: F) -> Server
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Server {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::new(options.get_max_sessions())),
                options,
                handler: Arc::new(move |req, info| {
                    Box::pin(handler(req, info)) as BoxFuture<Reply>
                }),
                tasks: Mutex::new(JoinSet::new()),
                stop: watch::Sender::new(false),
            }),
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
        let listener = TcpListener::bind(addr).await?;
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

    /// Turns `true` when the server shuts down: accept loops stop.
    #[cfg_attr(not(feature = "ssh"), allow(dead_code))]
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    async fn accept_loop(self, listener: TcpListener, tls: Arc<ServerConfig>) {
        let mut backoff = Backoff::default();
        let mut stop = self.inner.stop.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    let tls = tls.clone();
                    // Admitted (or refused) before any TLS work: the cap counts connections.
                    if let Some(session) = self.admit(Some(peer)) {
                        self.inner.spawn(async move {
                            server
                                .serve_tls_admitted(Box::new(stream), tls, session)
                                .await
                        });
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    let wait = backoff.next();
                    tracing::warn!(error = %e, ?wait, "accept failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
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
        match self.admit(peer) {
            Some(session) => {
                self.serve_tls_admitted(Box::new(stream), config, session)
                    .await;
                Ok(())
            }
            None => Err(Error::Io(io::Error::other(
                "the server refused the session",
            ))),
        }
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
        let Some(mut session) = self.admit(peer) else {
            return Err(Error::Io(io::Error::other(
                "the server refused the session",
            )));
        };
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

    /// Registers a new session, or refuses it (session cap, shutting down).
    fn admit(&self, peer: Option<SocketAddr>) -> Option<Admitted> {
        let (notifications, queue) = mpsc::channel(self.inner.options.get_notification_queue());
        let kill = Arc::new(Notify::new());
        let handle = SessionHandle {
            notifications,
            kill: kill.clone(),
        };
        match self.inner.registry().admit(handle) {
            Ok(id) => Some(Admitted {
                info: SessionInfo::new(id, peer),
                queue,
                kill,
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
        let Admitted {
            info,
            mut queue,
            kill,
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
        let mut handlers: JoinSet<(RequestId, Reply)> = JoinSet::new();
        let mut running: Vec<(RequestId, AbortHandle)> = Vec::new();
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
                            let written = {
                                let mut on_read = |r: io::Result<&[u8]>| {
                                    core.handle_read(r, Instant::now());
                                    core.wants_read()
                                };
                                let on_read: Option<OnRead<'_>> =
                                    if reading { Some(&mut on_read) } else { None };
                                tokio::select! {
                                    biased;
                                    () = kill.notified() => None,
                                    written = link.write_all(&bytes, on_read) => Some(written),
                                }
                            };
                            match written {
                                None => {
                                    stop = Stop::Broken;
                                    core.abort("killed");
                                }
                                Some(Err(e)) => core.handle_write_error(&e),
                                Some(Ok(())) => {}
                            }
                        }
                        Stop::Stopping => {
                            // What fits now goes out (our close_notify, say); nothing waits.
                            match now_or_never(link.write_all(&bytes, None)).await {
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
                            Ok(reply) => {
                                let task = handlers.spawn(async move { (id, reply.await) });
                                running.push((id, task));
                            }
                            Err(_) => core.handler_failed(id, "the handler panicked"),
                        }
                    }
                    ServerOutput::KillSession { id, target } => {
                        let found = self.inner.registry().kill(target);
                        let existed = match found {
                            KillOutcome::Killed(h) => {
                                h.kill.notify_one();
                                true
                            }
                            KillOutcome::NotFound => false,
                        };
                        core.kill_done(id, target, existed);
                    }
                    ServerOutput::Subscribed => self.inner.registry().set_subscribed(id),
                    ServerOutput::Abort(request) => {
                        if let Some(at) = running.iter().position(|(r, _)| *r == request) {
                            running.swap_remove(at).1.abort();
                        }
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
            let reading = core.wants_read() && link.can_read();
            tokio::select! {
                biased;
                () = kill.notified() => {
                    stop = stop.max(Stop::Stopping);
                    core.abort("killed");
                }
                done = handlers.join_next_with_id(), if !handlers.is_empty() => match done {
                    Some(Ok((task, (request, reply)))) => {
                        running.retain(|(_, h)| h.id() != task);
                        core.reply(request, reply);
                    }
                    Some(Err(e)) => {
                        let task = e.id();
                        if let Some(at) = running.iter().position(|(_, h)| h.id() == task) {
                            let (request, _) = running.swap_remove(at);
                            if e.is_panic() {
                                core.handler_failed(request, "the handler panicked");
                            }
                        }
                    }
                    None => {}
                },
                n = queue.recv() => match n {
                    Some(n) => {
                        if let Err(e) = core.notify(&n.0, &n.1) {
                            tracing::warn!(session_id = id, error = %e, "notification not sent");
                        }
                    }
                    None => {
                        stop = stop.max(Stop::Stopping);
                        core.abort("server gone");
                    }
                },
                read = link.read(), if reading => core.handle_read(link.bytes(read), Instant::now()),
                () = sleep(deadline) => core.handle_timeout(Instant::now()),
            }
        }
        handlers.abort_all();
        match stop {
            Stop::Running => link.shutdown().await,
            Stop::Stopping => {
                let _ = now_or_never(link.shutdown()).await;
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
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("a subscriber fell too far behind; disconnecting it");
                    handle.kill.notify_one();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        Ok(queued)
    }

    /// Stops every listener, ends every session (aborting running handlers) and waits for
    /// them to finish.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        for handle in self.inner.registry().shut_down() {
            handle.kill.notify_one();
        }
        loop {
            let mut tasks =
                std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
            if tasks.is_empty() {
                return;
            }
            while tasks.join_next().await.is_some() {}
        }
    }
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

/// A session the registry took in: its identity, notification queue and kill switch.
struct Admitted {
    info: SessionInfo,
    queue: mpsc::Receiver<Arc<(String, String)>>,
    kill: Arc<Notify>,
}

/// Exponential backoff for a failing accept (5 ms doubling to 1 s).
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(5u64 << self.0.min(8)).min(Duration::from_secs(1));
        self.0 += 1;
        wait
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}
