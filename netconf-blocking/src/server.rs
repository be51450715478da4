//! The blocking server: one thread per session, NETCONF over TLS with client certificates.
//!
//! Each session's TLS state sits behind a mutex that is never held while blocking on the
//! socket: the session thread reads without it, and [`ServerHandle::notify`] or a
//! kill-session from another session can take it to write. That keeps notifications free
//! of polling intervals.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netconf_proto::message::{ErrorTag, ErrorType, RpcError};
use netconf_proto::rustls::pki_types::CertificateDer;
use netconf_proto::rustls::ServerConfig;
use netconf_proto::server::{answer_kill_session, starts_subscription};
use netconf_proto::tls::ServerTlsOptions;
use netconf_proto::{Config, Error, Event, Output, Reply, Request, TlsSession};

/// Who is on the other end of a session, for the request handler.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: u32,
    /// The name the cert-to-name hook gave the client certificate (RFC 7589 section 7).
    pub username: Option<String>,
    pub peer: SocketAddr,
}

type Handler = dyn Fn(&Request, &SessionInfo) -> Reply + Send + Sync;
type CertToName = dyn Fn(&[CertificateDer<'static>]) -> Option<String> + Send + Sync;
type SessionEnd = dyn Fn(&SessionInfo) + Send + Sync;

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
    /// The session configuration: advertised capabilities, limits, hello timeout.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Maps a client's certificate chain to a username. A client whose certificate maps to
    /// `None` is disconnected (RFC 7589: no mapping, no session).
    pub fn cert_to_name(
        mut self,
        f: impl Fn(&[CertificateDer<'static>]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.cert_to_name = Some(Arc::new(f));
        self
    }

    /// Called when a session ends, however it ends (close-session, kill-session, EOF,
    /// error), so the application can release what the session held, such as locks
    /// (RFC 6241 section 7.5).
    pub fn on_session_end(mut self, f: impl Fn(&SessionInfo) + Send + Sync + 'static) -> Self {
        self.on_session_end = Some(Arc::new(f));
        self
    }

    /// How long a write may block on a client that does not read.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Binds the listener. `handler` answers every `<rpc>` except close-session and
    /// kill-session, which the server handles itself.
    pub fn bind(
        self,
        addr: impl ToSocketAddrs,
        handler: impl Fn(&Request, &SessionInfo) -> Reply + Send + Sync + 'static,
    ) -> Result<Server, Error> {
        let tls = self.tls.build()?;
        let listener = TcpListener::bind(addr)?;
        Ok(Server {
            addr: listener.local_addr()?,
            listener,
            shared: Arc::new(Shared {
                tls,
                config: self.config,
                handler: Arc::new(handler),
                cert_to_name: self.cert_to_name,
                on_session_end: self.on_session_end,
                write_timeout: self.write_timeout,
                sessions: Mutex::new(HashMap::new()),
                next_id: AtomicU32::new(1),
                stopping: AtomicBool::new(false),
                threads: Mutex::new(Vec::new()),
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
    sessions: Mutex<HashMap<u32, Arc<SessionCore>>>,
    next_id: AtomicU32,
    stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
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
    /// A server with our certificate and key and the CA that signs client certificates.
    pub fn builder(tls: ServerTlsOptions) -> ServerBuilder {
        ServerBuilder {
            tls,
            config: Config::server(),
            cert_to_name: None,
            on_session_end: None,
            write_timeout: Some(Duration::from_secs(60)),
        }
    }

    /// The address bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the accept loop on a background thread.
    pub fn spawn(self) -> ServerHandle {
        let shared = self.shared.clone();
        let addr = self.addr;
        let thread = std::thread::Builder::new()
            .name("netconf-accept".into())
            .spawn(move || self.run())
            .expect("spawning the accept thread");
        ServerHandle {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// Runs the accept loop on this thread until the server is shut down.
    pub fn run(self) {
        for stream in self.listener.incoming() {
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("netconf-session".into())
                .spawn(move || {
                    if let Err(e) = serve_session(&shared, stream) {
                        tracing::debug!(error = %e, "session ended with an error");
                    }
                });
            match spawned {
                Ok(handle) => {
                    let mut threads = lock(&self.shared.threads);
                    threads.retain(|t| !t.is_finished());
                    threads.push(handle);
                }
                Err(e) => tracing::warn!(error = %e, "cannot start a session thread"),
            }
        }
    }
}

/// Controls a running server; shutting it down ends every session.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
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

    /// The session-ids of the sessions now open.
    pub fn sessions(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = lock(&self.shared.sessions).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends an RFC 5277 notification to every session that created a subscription.
    /// Returns how many sessions it was sent to.
    pub fn notify(&self, event_time: &str, content: &str) -> Result<usize, Error> {
        netconf_proto::xml::check_fragment(content)?;
        let sessions: Vec<_> = lock(&self.shared.sessions).values().cloned().collect();
        let mut sent = 0;
        for core in sessions {
            let mut state = core.lock();
            if !state.subscribed {
                continue;
            }
            if state
                .machine
                .session_mut()
                .send_notification(event_time, content)
                .is_ok()
            {
                state.flush(&core);
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Stops accepting, ends every session and waits for their threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let sessions: Vec<_> = lock(&self.shared.sessions).values().cloned().collect();
        for core in sessions {
            core.kill();
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One session's shared state.
struct SessionCore {
    id: u32,
    /// A handle on the socket for shutting it down from other threads.
    socket: TcpStream,
    state: Mutex<SessionState>,
}

struct SessionState {
    machine: TlsSession,
    writer: TcpStream,
    subscribed: bool,
    events: Vec<Event>,
    write_failed: bool,
}

impl SessionCore {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Ends the session now (kill-session, shutdown): close_notify, then the socket.
    fn kill(&self) {
        let mut state = self.lock();
        state.machine.session_mut().abort();
        state.flush(self);
        drop(state);
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl SessionState {
    /// Writes every pending byte and collects events; returns the next deadline.
    fn flush(&mut self, core: &SessionCore) -> Option<Instant> {
        loop {
            match self.machine.poll_output() {
                Output::Transmit(bytes) => {
                    if !self.write_failed {
                        if let Err(e) = self.writer.write_all(&bytes) {
                            tracing::debug!(session_id = core.id, error = %e, "write failed; ending the session");
                            self.write_failed = true;
                            self.machine.session_mut().abort();
                            let _ = core.socket.shutdown(Shutdown::Both);
                        }
                    }
                }
                Output::Event(ev) => self.events.push(ev),
                Output::Wait(deadline) => return deadline,
            }
        }
    }
}

fn serve_session(shared: &Arc<Shared>, stream: TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(shared.write_timeout)?;
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let machine = TlsSession::server(
        shared.tls.clone(),
        shared.config.clone(),
        id,
        Instant::now(),
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    let mut machine = machine;
    if shared.cert_to_name.is_some() {
        machine.require_authorization();
    }
    let core = Arc::new(SessionCore {
        id,
        socket: stream.try_clone()?,
        state: Mutex::new(SessionState {
            machine,
            writer: stream.try_clone()?,
            subscribed: false,
            events: Vec::new(),
            write_failed: false,
        }),
    });
    let mut reader = stream;
    lock(&shared.sessions).insert(id, core.clone());
    let mut info = SessionInfo {
        session_id: id,
        username: None,
        peer,
    };
    let result = session_loop(shared, &core, &mut reader, &mut info);
    lock(&shared.sessions).remove(&id);
    let _ = core.socket.shutdown(Shutdown::Both);
    if let Some(on_end) = &shared.on_session_end {
        on_end(&info);
    }
    result
}

fn session_loop(
    shared: &Shared,
    core: &Arc<SessionCore>,
    reader: &mut TcpStream,
    info: &mut SessionInfo,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (deadline, events) = {
            let mut state = core.lock();
            if state.machine.awaiting_authorization() {
                // RFC 7589 cert-to-name, before the client sees our hello.
                let certs = state
                    .machine
                    .peer_certificates()
                    .map(<[_]>::to_vec)
                    .unwrap_or_default();
                info.username = shared.cert_to_name.as_ref().and_then(|map| map(&certs));
                if info.username.is_some() {
                    state.machine.authorize();
                } else {
                    tracing::info!(
                        session_id = core.id,
                        "client certificate maps to no user; refusing"
                    );
                    state.machine.refuse();
                }
            }
            let deadline = state.flush(core);
            (deadline, std::mem::take(&mut state.events))
        };
        for event in events {
            match event {
                Event::Rpc { request } => answer(shared, core, &request, info),
                Event::Closed { reason } => {
                    tracing::debug!(session_id = core.id, ?reason, "session closed");
                    return Ok(());
                }
                _ => {}
            }
        }
        let now = Instant::now();
        let timeout = match deadline {
            Some(d) if d <= now => {
                core.lock().machine.handle_timeout(now);
                continue;
            }
            Some(d) => Some(d - now),
            None => None,
        };
        reader.set_read_timeout(timeout)?;
        let read = reader.read(&mut buf);
        let mut state = core.lock();
        let now = Instant::now();
        match read {
            Ok(0) => state.machine.handle_eof(now),
            Ok(n) => {
                if let Err(e) = state.machine.handle_ciphertext(&buf[..n], now) {
                    tracing::debug!(session_id = core.id, error = %e, "protocol error from the client");
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                state.machine.handle_timeout(now)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => state.machine.handle_eof(now),
        }
    }
}

/// Answers one request: kill-session here, everything else through the handler.
fn answer(shared: &Shared, core: &SessionCore, request: &Request, info: &SessionInfo) {
    let reply = if request.operation.is_base("kill-session") {
        kill_session(shared, core.id, request)
    } else {
        // The handler runs without the session lock, so notifications can still go out.
        // A panic in it costs this request (answered with operation-failed), not the session.
        let handler = &shared.handler;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(request, info)))
            .unwrap_or_else(|_| {
                tracing::error!(session_id = info.session_id, "request handler panicked");
                Reply::error(
                    RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
                        .with_message("the server failed while handling this request"),
                )
            })
    };
    let mut state = core.lock();
    let subscribes = starts_subscription(request, &reply);
    if let Err(e) = state
        .machine
        .session_mut()
        .send_reply(&request.message_id, &reply)
    {
        tracing::debug!(error = %e, "reply not sent");
    }
    state.subscribed |= subscribes;
    state.flush(core);
}

fn kill_session(shared: &Shared, own_id: u32, request: &Request) -> Reply {
    answer_kill_session(request, own_id, |target| {
        let core = lock(&shared.sessions).get(&target).cloned();
        core.map(|core| core.kill()).is_some()
    })
}
