//! The tokio server: a task per session, requests answered one at a time in arrival order
//! (RFC 6241 section 4.1 requires replies in request order), notifications pushed through a
//! bounded per-session channel.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use netconf_proto::message::{ErrorTag, ErrorType, RpcError};
use netconf_proto::rustls::pki_types::CertificateDer;
use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{answer_kill_session, starts_subscription};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Config, Error, Event, Reply, Request, TlsSession};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::connection::{sleep, Conn};

/// Who is on the other end of a session, for the request handler.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: u32,
    /// The name the cert-to-name hook gave the client certificate (RFC 7589 section 7).
    pub username: Option<String>,
    pub peer: SocketAddr,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = dyn Fn(Request, SessionInfo) -> BoxFuture<Reply> + Send + Sync;
type CertToName = dyn Fn(&[CertificateDer<'static>]) -> Option<String> + Send + Sync;
type SessionEnd = dyn Fn(&SessionInfo) + Send + Sync;

/// Notifications queued for one slow session before further ones are dropped for it.
const SESSION_QUEUE: usize = 1024;

struct SessionCommand {
    event_time: String,
    content: String,
}

/// What other tasks hold of a session: its notification queue, whether it subscribed,
/// and its kill switch.
struct SessionEntry {
    notifications: mpsc::Sender<SessionCommand>,
    subscribed: Arc<AtomicBool>,
    kill: Arc<Notify>,
}

/// Configures a [`Server`].
pub struct ServerBuilder {
    tls: ServerTlsOptions,
    config: Config,
    cert_to_name: Option<Arc<CertToName>>,
    on_session_end: Option<Arc<SessionEnd>>,
    write_timeout: Option<Duration>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("tls", &self.tls)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Maps a client's certificate chain to a username; `None` disconnects the client.
    pub fn cert_to_name(
        mut self,
        f: impl Fn(&[CertificateDer<'static>]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.cert_to_name = Some(Arc::new(f));
        self
    }

    /// Called when a session ends, however it ends, so the application can release what
    /// the session held, such as locks (RFC 6241 section 7.5).
    pub fn on_session_end(mut self, f: impl Fn(&SessionInfo) + Send + Sync + 'static) -> Self {
        self.on_session_end = Some(Arc::new(f));
        self
    }

    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Binds the listener. `handler` answers every `<rpc>` but close-session and
    /// kill-session, which the server handles itself.
    pub async fn bind<F, Fut>(self, addr: impl ToSocketAddrs, handler: F) -> Result<Server, Error>
    where
        F: Fn(Request, SessionInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let tls = self.tls.build()?;
        let listener = TcpListener::bind(addr).await?;
        let (stop, stopped) = watch::channel(false);
        Ok(Server {
            addr: listener.local_addr()?,
            listener,
            shared: Arc::new(Shared {
                tls,
                config: self.config,
                handler: Arc::new(move |req, info| {
                    Box::pin(handler(req, info)) as BoxFuture<Reply>
                }),
                cert_to_name: self.cert_to_name,
                on_session_end: self.on_session_end,
                write_timeout: self.write_timeout,
                sessions: Mutex::new(HashMap::new()),
                next_id: AtomicU32::new(1),
                stop,
                stopped,
            }),
        })
    }
}

struct Shared {
    tls: Arc<ServerConfig>,
    config: Config,
    handler: Arc<Handler>,
    cert_to_name: Option<Arc<CertToName>>,
    on_session_end: Option<Arc<SessionEnd>>,
    write_timeout: Option<Duration>,
    sessions: Mutex<HashMap<u32, SessionEntry>>,
    next_id: AtomicU32,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, HashMap<u32, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound NETCONF-over-TLS server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn builder(tls: ServerTlsOptions) -> ServerBuilder {
        ServerBuilder {
            tls,
            config: Config::server(),
            cert_to_name: None,
            on_session_end: None,
            write_timeout: Some(Duration::from_secs(60)),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the accept loop as a task on the current runtime.
    pub fn spawn(self) -> ServerHandle {
        let shared = self.shared.clone();
        let addr = self.addr;
        let task = tokio::spawn(self.run());
        ServerHandle {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// Accepts sessions until shut down, then ends them all and waits for them.
    pub async fn run(self) {
        let mut sessions = JoinSet::new();
        let mut stopped = self.shared.stopped.clone();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let shared = self.shared.clone();
                        sessions.spawn(async move { serve_session(shared, stream, peer).await });
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        for entry in self.shared.sessions().values() {
            entry.kill.notify_one();
        }
        while sessions.join_next().await.is_some() {}
    }
}

/// Controls a running server.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session-ids now open.
    pub fn sessions(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.shared.sessions().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Queues an RFC 5277 notification for every subscribed session; returns how many
    /// sessions it was queued for. A session whose queue is full misses it (logged).
    pub fn notify(&self, event_time: &str, content: &str) -> Result<usize, Error> {
        netconf_proto::xml::check_fragment(content)?;
        let mut queued = 0;
        for (id, entry) in self.shared.sessions().iter() {
            if !entry.subscribed.load(Ordering::SeqCst) {
                continue;
            }
            let cmd = SessionCommand {
                event_time: event_time.to_owned(),
                content: content.to_owned(),
            };
            match entry.notifications.try_send(cmd) {
                Ok(()) => queued += 1,
                Err(_) => tracing::warn!(
                    session_id = id,
                    "session not keeping up; notification dropped for it"
                ),
            }
        }
        Ok(queued)
    }

    /// Stops accepting, ends every session and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shared.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shared.stop.send(true);
    }
}

async fn serve_session(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let machine = match TlsSession::server(
        shared.tls.clone(),
        shared.config.clone(),
        id,
        Instant::now(),
    ) {
        Ok(mut m) => {
            if shared.cert_to_name.is_some() {
                m.require_authorization();
            }
            m
        }
        Err(e) => return tracing::warn!(error = %e, "cannot start a TLS session"),
    };
    let (tx, mut commands) = mpsc::channel(SESSION_QUEUE);
    let subscribed = Arc::new(AtomicBool::new(false));
    let kill = Arc::new(Notify::new());
    shared.sessions().insert(
        id,
        SessionEntry {
            notifications: tx,
            subscribed: subscribed.clone(),
            kill: kill.clone(),
        },
    );
    // A server does not read while its writes are blocked: a client that sends and never
    // reads must meet TCP backpressure, not an ever-growing queue of requests.
    let mut conn = Conn::new(
        Box::new(stream),
        Box::new(machine),
        shared.write_timeout,
        false,
    );
    let mut info = SessionInfo {
        session_id: id,
        username: None,
        peer,
    };
    let mut stopped = shared.stopped.clone();
    'session: loop {
        if conn.machine.awaiting_authorization() {
            // RFC 7589 cert-to-name, before the client sees our hello.
            let certs = tls_peer_certs(&conn);
            info.username = shared.cert_to_name.as_ref().and_then(|map| map(&certs));
            if info.username.is_none() {
                tracing::info!(
                    session_id = id,
                    "client certificate maps to no user; refusing"
                );
            }
            conn.machine.authorize(info.username.is_some());
        }
        let deadline = conn.flush().await;
        while let Some(event) = conn.events.pop_front() {
            match event {
                Event::Rpc { request } => {
                    let reply = if request.operation.is_base("kill-session") {
                        kill_session(&shared, id, &request)
                    } else {
                        call_handler(&shared, &request, &info).await
                    };
                    if starts_subscription(&request, &reply) {
                        subscribed.store(true, Ordering::SeqCst);
                    }
                    if let Err(e) = conn
                        .machine
                        .session_mut()
                        .send_reply(&request.message_id, &reply)
                    {
                        tracing::debug!(error = %e, "reply not sent");
                    }
                    // Replies go out before the next request is looked at.
                    continue 'session;
                }
                Event::Closed { reason } => {
                    tracing::debug!(session_id = id, ?reason, "session closed");
                    break 'session;
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            conn.machine.handle_timeout(now);
            continue;
        }
        tokio::select! {
            read = conn.reader.read(&mut conn.buf) => conn.on_read(read),
            () = sleep(deadline) => conn.machine.handle_timeout(Instant::now()),
            Some(cmd) = commands.recv() => {
                if subscribed.load(Ordering::SeqCst) {
                    let _ = conn.machine.session_mut().send_notification(&cmd.event_time, &cmd.content);
                }
            },
            () = kill.notified() => conn.machine.session_mut().abort(),
            _ = stopped.changed() => conn.machine.session_mut().abort(),
        }
    }
    shared.sessions().remove(&id);
    conn.shutdown().await;
    if let Some(on_end) = &shared.on_session_end {
        on_end(&info);
    }
}

/// Runs the handler in its own task so that a panic in it costs one request (answered with
/// `operation-failed`), not the session, and never leaves the session listed.
async fn call_handler(shared: &Shared, request: &Request, info: &SessionInfo) -> Reply {
    let future = (shared.handler)(request.clone(), info.clone());
    match tokio::spawn(future).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(session_id = info.session_id, error = %e, "request handler failed");
            Reply::error(
                RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
                    .with_message("the server failed while handling this request"),
            )
        }
    }
}

fn tls_peer_certs(conn: &Conn) -> Vec<CertificateDer<'static>> {
    conn.machine
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default()
}

fn kill_session(shared: &Shared, own_id: u32, request: &Request) -> Reply {
    answer_kill_session(request, own_id, |target| {
        let kill = shared
            .sessions()
            .get(&target)
            .map(|entry| entry.kill.clone());
        kill.map(|kill| kill.notify_one()).is_some()
    })
}
