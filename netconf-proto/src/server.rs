//! The server side every adapter shares, written once and sans-IO: the registry of
//! sessions (ids, the session cap, kill-session, notification subscribers) and the
//! per-session core (the RFC 7589 cert-to-name gate, handing requests to handlers that run
//! beside the loop, kill-session, handler-failure answers, create-subscription bookkeeping).
//!
//! An adapter's server is then its accept loop and one loop per session: write
//! [`ServerOutput::Transmit`], run the handler for [`ServerOutput::Dispatch`] beside the
//! loop and give its answer to [`ServerSession::reply`], stop that handler on
//! [`ServerOutput::Abort`], and act on [`ServerOutput::KillSession`] through the
//! [`Registry`].

use std::collections::VecDeque;
use std::fmt;
use std::io;
// A peer address is a plain value from `core` (no socket, no I/O), so the pure core can name
// where a session came from.
use core::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client_error::{SessionEnd, TimeoutKind};
use crate::config::Config;
use crate::error::UsageError;
use crate::id_map::IdMap;
use crate::machine::Machine;
use crate::message::{ErrorTag, ErrorType, Reply, Request, RpcError};
use crate::session::{CloseReason, Event, Output, RequestId};
use crate::xml::NS_NOTIFICATION;

/// Who is on the other end of a session, for the request handler and the hooks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionInfo {
    pub session_id: u32,
    /// The NETCONF username: from the cert-to-name hook (TLS, RFC 7589 section 7) or the
    /// SSH authentication.
    pub username: Option<String>,
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
}

impl SessionInfo {
    pub fn new(session_id: u32, peer: Option<SocketAddr>) -> Self {
        SessionInfo {
            session_id,
            username: None,
            peer,
        }
    }
}

/// Maps a client's certificate chain (leaf first) to a NETCONF username, or refuses it with
/// `None` (RFC 7589: no mapping, no session).
#[cfg(feature = "rustls")]
pub type CertToName =
    dyn Fn(&[rustls::pki_types::CertificateDer<'static>]) -> Option<String> + Send + Sync;
#[cfg(not(feature = "rustls"))]
pub type CertToName = dyn Fn(&[Vec<u8>]) -> Option<String> + Send + Sync;
/// Called once when a session ends, however it ends.
pub type OnSessionEnd = dyn Fn(&SessionInfo) + Send + Sync;

/// Settings for a server, the same in every adapter.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    pub(crate) config: Config,
    pub(crate) max_sessions: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) notification_queue: usize,
    pub(crate) cert_to_name: Option<Arc<CertToName>>,
    pub(crate) on_session_end: Option<Arc<OnSessionEnd>>,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("config", &self.config)
            .field("max_sessions", &self.max_sessions)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("notification_queue", &self.notification_queue)
            .field("cert_to_name", &self.cert_to_name.is_some())
            .field("on_session_end", &self.on_session_end.is_some())
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions::new()
    }
}

impl ServerOptions {
    /// Defaults: [`Config::server`], at most 256 sessions, 10 s for the TLS or SSH
    /// handshake, 60 s for a write to a client that does not read, 256 notifications queued
    /// per session before a subscriber that does not keep up is disconnected.
    pub fn new() -> Self {
        ServerOptions {
            config: Config::server(),
            max_sessions: 256,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(60)),
            notification_queue: 256,
            cert_to_name: None,
            on_session_end: None,
        }
    }

    /// The session configuration: advertised capabilities, limits, hello timeout.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sessions served at once; a connection beyond it is closed before any handshake.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// Time a new connection has to finish its TLS or SSH handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long a write may wait on a client that does not read (`None`: forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Notifications queued per subscribed session. A subscriber that falls this far behind
    /// is disconnected: a notification stream with holes would mislead it, and waiting for
    /// it would stall every other session.
    pub fn notification_queue(mut self, n: usize) -> Self {
        self.notification_queue = n.max(1);
        self
    }

    /// Maps a TLS client's certificate chain to a username (RFC 7589 section 7); a client
    /// whose chain maps to `None` is disconnected before it sees our hello.
    #[cfg(feature = "rustls")]
    pub fn cert_to_name(
        mut self,
        f: impl Fn(&[rustls::pki_types::CertificateDer<'static>]) -> Option<String>
            + Send
            + Sync
            + 'static,
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

    pub fn session_config(&self) -> &Config {
        &self.config
    }

    pub fn get_max_sessions(&self) -> usize {
        self.max_sessions
    }

    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    pub fn get_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    pub fn get_notification_queue(&self) -> usize {
        self.notification_queue
    }

    /// Runs the session-end hook, if any; a panic in it is contained and logged.
    pub fn session_ended(&self, info: &SessionInfo) {
        if let Some(hook) = &self.on_session_end {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(info))).is_err() {
                tracing::error!(session_id = info.session_id, "on_session_end hook panicked");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------

/// Why the registry turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The session cap is reached.
    Full { max_sessions: usize },
    /// The server is shutting down.
    ShuttingDown,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Full { max_sessions } => {
                write!(f, "the server already serves {max_sessions} sessions")
            }
            Refusal::ShuttingDown => f.write_str("the server is shutting down"),
        }
    }
}

/// What a kill-session found.
#[derive(Debug)]
pub enum KillOutcome<H> {
    /// The target exists and was removed: end it through its handle.
    Killed(H),
    /// No such session.
    NotFound,
}

/// Every session a server has open, by session-id. `H` is the adapter's handle on a
/// session's loop (a command sender), used to end it or notify it.
#[derive(Debug)]
pub struct Registry<H> {
    sessions: IdMap<u32, Entry<H>>,
    next_id: u32,
    max_sessions: usize,
    shutting_down: bool,
}

#[derive(Debug)]
struct Entry<H> {
    handle: H,
    subscribed: bool,
}

impl<H: Clone> Registry<H> {
    pub fn new(max_sessions: usize) -> Self {
        Registry {
            sessions: IdMap::default(),
            next_id: 1,
            max_sessions: max_sessions.max(1),
            shutting_down: false,
        }
    }

    /// Gives a new connection its session-id, unless the cap is reached or the server is
    /// shutting down. Call [`Registry::remove`] when the session ends, on every path.
    pub fn admit(&mut self, handle: H) -> Result<u32, Refusal> {
        if self.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if self.sessions.len() >= self.max_sessions {
            return Err(Refusal::Full {
                max_sessions: self.max_sessions,
            });
        }
        // Session-ids are 1..=u32::MAX and never in use twice.
        let mut id = self.next_id;
        while id == 0 || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.sessions.insert(
            id,
            Entry {
                handle,
                subscribed: false,
            },
        );
        Ok(id)
    }

    pub fn remove(&mut self, id: u32) -> Option<H> {
        self.sessions.remove(&id).map(|e| e.handle)
    }

    /// kill-session: removes the target so it can be ended through the returned handle.
    pub fn kill(&mut self, target: u32) -> KillOutcome<H> {
        match self.sessions.remove(&target) {
            Some(e) => KillOutcome::Killed(e.handle),
            None => KillOutcome::NotFound,
        }
    }

    /// The session created an RFC 5277 subscription: it receives notifications from now on.
    pub fn set_subscribed(&mut self, id: u32) {
        if let Some(e) = self.sessions.get_mut(&id) {
            e.subscribed = true;
        }
    }

    /// The handles of the sessions that subscribed to notifications.
    pub fn subscribers(&self) -> Vec<H> {
        self.sessions
            .values()
            .filter(|e| e.subscribed)
            .map(|e| e.handle.clone())
            .collect()
    }

    /// The session-ids open now, in order.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Stops admitting and hands back every session's handle, to end them.
    pub fn shut_down(&mut self) -> Vec<H> {
        self.shutting_down = true;
        self.sessions.drain().map(|(_, e)| e.handle).collect()
    }
}

// ---------------------------------------------------------------------------------------
// One session
// ---------------------------------------------------------------------------------------

/// What a server session asks of its adapter, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerOutput {
    /// Bytes to write to the transport, in order, completely.
    Transmit(Bytes),
    /// Run the handler for this request beside the loop, then call
    /// [`ServerSession::reply`] (or [`ServerSession::handler_failed`]).
    Dispatch { id: RequestId, request: Request },
    /// The client asked to kill session `target` (RFC 6241 section 7.9): end it through the
    /// [`Registry`], then call [`ServerSession::kill_done`].
    KillSession { id: RequestId, target: u32 },
    /// The session created a notification subscription (RFC 5277): mark it in the registry.
    Subscribed,
    /// The handler for this request must stop: its answer is no longer wanted.
    Abort(RequestId),
    /// The session ended (exactly once, after every `Abort`). Stop the loop.
    Ended(SessionEnd),
    /// Nothing to do until this deadline (`None`: none), a read, or a command.
    Wait(Option<Instant>),
}

/// The per-session sans-IO core of a server.
pub struct ServerSession {
    machine: Box<dyn Machine + Send>,
    info: SessionInfo,
    cert_to_name: Option<Arc<CertToName>>,
    /// Requests handed to handlers, and whether each is a create-subscription.
    dispatched: IdMap<RequestId, bool>,
    queued: VecDeque<ServerOutput>,
    subscribed: bool,
    transport_end: Option<SessionEnd>,
    ended: Option<SessionEnd>,
    reported_end: bool,
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("info", &self.info)
            .field("dispatched", &self.dispatched.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// Wraps a server machine (a [`TlsSession`](crate::TlsSession) or a plaintext
    /// [`Session`](crate::Session) whose authentication the transport already did). With a
    /// cert-to-name hook in `options`, a TLS session is held until the hook names the user.
    pub fn new(
        mut machine: Box<dyn Machine + Send>,
        info: SessionInfo,
        options: &ServerOptions,
        now: Instant,
    ) -> Self {
        machine.set_handshake_timeout(options.handshake_timeout, now);
        let cert_to_name = options.cert_to_name.clone();
        if cert_to_name.is_some() {
            machine.require_authorization();
        }
        ServerSession {
            machine,
            info,
            cert_to_name,
            dispatched: IdMap::default(),
            queued: VecDeque::new(),
            subscribed: false,
            transport_end: None,
            ended: None,
            reported_end: false,
        }
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    pub fn session(&self) -> &crate::Session {
        self.machine.session()
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// After the end: `Ok` if a NETCONF session was established (the client's hello came),
    /// else why not (the TLS handshake's alert, a timeout, the peer hanging up), for callers
    /// that must tell a refused connection from a session that ran (call home, `serve_*`).
    pub fn outcome(&self) -> Result<(), crate::Error> {
        if !self.machine.session().peer_capabilities().is_empty() {
            return Ok(());
        }
        Err(self
            .ended
            .as_ref()
            .map(SessionEnd::error)
            .unwrap_or(crate::Error::Closed(CloseReason::Eof)))
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Whether the loop should read the transport now: not while the client has as many
    /// requests outstanding as the session allows (it is held back by TCP instead).
    pub fn wants_read(&self) -> bool {
        self.ended.is_none() && self.machine.session().wants_input()
    }

    /// Handlers running now.
    pub fn handlers_running(&self) -> usize {
        self.dispatched.len()
    }

    // ----- inputs -----

    /// The result of one read from the transport: `Ok(bytes)` (empty at end of stream) or
    /// the error.
    pub fn handle_read(&mut self, read: io::Result<&[u8]>, now: Instant) {
        match read {
            Ok([]) => self.machine.handle_eof(now),
            Ok(data) => {
                if let Err(e) = self.machine.handle_transport(data, now) {
                    tracing::debug!(session_id = self.info.session_id, error = %e, "protocol error from the client");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                self.machine.handle_eof(now)
            }
            Err(e) => self.transport_failed(SessionEnd::Io(e.kind(), e.to_string())),
        }
    }

    /// A write failed (or timed out: pass `io::ErrorKind::TimedOut`): the session ends.
    pub fn handle_write_error(&mut self, e: &io::Error) {
        if self.machine.session().is_closed() {
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

    pub fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
    }

    // ----- commands -----

    /// The handler's answer to request `id`. An answer for a request that was aborted (or
    /// for a session that ended) is dropped.
    pub fn reply(&mut self, id: RequestId, reply: Reply) {
        let Some(subscription) = self.dispatched.remove(&id) else {
            tracing::debug!(%id, "answer for a request no longer waiting; dropped");
            return;
        };
        let starts_subscription = subscription && reply == Reply::Ok;
        match self.machine.session_mut().send_reply(id, reply) {
            Ok(()) => {
                if starts_subscription && !self.subscribed {
                    self.subscribed = true;
                    self.queued.push_back(ServerOutput::Subscribed);
                }
            }
            Err(UsageError::Closed) => {}
            Err(e) => {
                // The handler's answer cannot be sent (it holds the base:1.0 delimiter, say):
                // the client still gets an answer.
                tracing::warn!(session_id = self.info.session_id, error = %e, "handler reply not sendable");
                let answer = operation_failed(&format!("the server could not send its reply: {e}"));
                let _ = self.machine.session_mut().send_reply(id, answer);
            }
        }
    }

    /// The handler answers request `id` with a `<data>` payload it produces piece by piece:
    /// once [`ServerSession::stream_ready`] names `id` (earlier replies are out), give the
    /// pieces to [`ServerSession::stream_piece`] as the transport takes them, then call
    /// [`ServerSession::stream_end`]. The payload is framed chunk by chunk and its pieces go
    /// to the transport as they are, so a reply of any size costs a piece's memory.
    pub fn reply_stream(&mut self, id: RequestId) {
        if !self.dispatched.contains_key(&id) {
            tracing::debug!(%id, "streamed answer for a request no longer waiting; dropped");
            return;
        }
        if let Err(e) = self.machine.session_mut().send_reply_streamed(id) {
            tracing::debug!(session_id = self.info.session_id, error = %e, "streamed reply not started");
            self.dispatched.remove(&id);
        }
    }

    /// The streamed reply whose next piece is wanted now, if any.
    pub fn stream_ready(&self) -> Option<RequestId> {
        self.machine.session().stream_ready()
    }

    /// The next piece of the streamed reply `id`. A piece that cannot be framed (base:1.0
    /// and `]]>]]>`) ends the session: the reply cannot be completed.
    pub fn stream_piece(&mut self, id: RequestId, piece: Bytes) {
        if let Err(e) = self.machine.session_mut().send_reply_piece(id, piece) {
            self.stream_failed(id, &e.to_string());
        }
    }

    /// The streamed reply `id` is complete.
    pub fn stream_end(&mut self, id: RequestId) {
        self.dispatched.remove(&id);
        if let Err(e) = self.machine.session_mut().end_reply_stream(id) {
            tracing::debug!(%id, error = %e, "stream end for a reply not streaming");
        }
    }

    /// The payload source failed mid-reply: a reply already begun cannot be taken back or
    /// turned into an rpc-error, so the session ends (the client sees a truncated message,
    /// not a short payload that looks complete).
    pub fn stream_failed(&mut self, id: RequestId, why: &str) {
        tracing::warn!(session_id = self.info.session_id, %id, why, "streamed reply failed; ending the session");
        self.dispatched.remove(&id);
        self.machine.session_mut().abort();
    }

    /// The payload source failed before its first piece, so nothing of the reply was sent:
    /// the request still gets a proper answer, `operation-failed` saying why. Adapters pull
    /// a streamed answer's first piece before [`ServerSession::reply_stream`] for this.
    pub fn stream_unavailable(&mut self, id: RequestId, why: &str) {
        tracing::warn!(session_id = self.info.session_id, %id, why, "streamed answer failed before it began");
        self.reply(
            id,
            operation_failed(&format!("the reply could not be produced: {why}")),
        );
    }

    /// True while a streamed reply is being sent: notifications wait for its end.
    pub fn is_streaming(&self) -> bool {
        self.machine.session().is_streaming_reply()
    }

    /// The handler for `id` failed (panicked, or its task was lost): answer
    /// `operation-failed` so the client is not left waiting.
    pub fn handler_failed(&mut self, id: RequestId, what: &str) {
        tracing::error!(session_id = self.info.session_id, %id, what, "request handler failed");
        if self.dispatched.contains_key(&id) {
            self.reply(
                id,
                operation_failed("the server failed while handling this request"),
            );
        }
    }

    /// The result of a kill-session this session asked for: whether the target existed.
    pub fn kill_done(&mut self, id: RequestId, target: u32, existed: bool) {
        self.dispatched.remove(&id);
        let reply = if existed {
            Reply::Ok
        } else {
            invalid_value(format!("no session {target}"))
        };
        let _ = self.machine.session_mut().send_reply(id, reply);
    }

    /// Sends an RFC 5277 notification if the session subscribed; returns whether it did.
    /// While a streamed reply is being sent it cannot go out ([`UsageError::StreamInProgress`]):
    /// keep it queued until [`ServerSession::is_streaming`] is false.
    pub fn notify(&mut self, event_time: &str, content: &str) -> Result<bool, UsageError> {
        if !self.subscribed || self.ended.is_some() {
            return Ok(false);
        }
        match self
            .machine
            .session_mut()
            .send_notification(event_time, content)
        {
            Ok(()) => Ok(true),
            Err(UsageError::Closed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends the session now (kill-session from another session, server shutdown, a
    /// subscriber that fell too far behind): running handlers are aborted.
    pub fn abort(&mut self, why: &str) {
        tracing::debug!(session_id = self.info.session_id, why, "ending the session");
        self.machine.session_mut().abort();
    }

    // ----- output -----

    /// Only the next bytes to write (`None`: nothing to write now), leaving every other
    /// output (requests, the session's end) for [`ServerSession::poll`]: a thread that
    /// writes can encrypt a large reply as the transport takes it, and hold the rest here
    /// as the handler's own plaintext rather than as a second, encrypted copy.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        // After the transport failed, what is left is dropped by `poll`.
        if self.transport_end.is_some() || self.machine.awaiting_authorization() {
            return None;
        }
        self.machine.poll_transmit()
    }

    /// The next thing to do; call until [`ServerOutput::Wait`] (or `Ended`).
    pub fn poll(&mut self) -> ServerOutput {
        if let Some(out) = self.queued.pop_front() {
            return out;
        }
        loop {
            if self.machine.awaiting_authorization() {
                self.authorize();
            }
            match self.machine.poll_output() {
                Output::Transmit(bytes) => {
                    if self.transport_end.is_some() {
                        continue;
                    }
                    return ServerOutput::Transmit(bytes);
                }
                Output::Event(event) => {
                    if let Some(out) = self.on_event(event) {
                        return out;
                    }
                }
                Output::Wait(deadline) => {
                    if self.ended.is_none() {
                        return ServerOutput::Wait(deadline);
                    }
                    break;
                }
            }
        }
        if let Some(id) = self.dispatched.keys().next().copied() {
            self.dispatched.remove(&id);
            return ServerOutput::Abort(id);
        }
        if !self.reported_end {
            self.reported_end = true;
            let end = self
                .ended
                .clone()
                .unwrap_or(SessionEnd::Close(CloseReason::Local));
            return ServerOutput::Ended(end);
        }
        ServerOutput::Wait(None)
    }

    fn authorize(&mut self) {
        #[cfg(feature = "rustls")]
        let certs = self
            .machine
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        #[cfg(not(feature = "rustls"))]
        let certs: Vec<Vec<u8>> = Vec::new();
        let name = match &self.cert_to_name {
            Some(map) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| map(&certs)))
                .unwrap_or_else(|_| {
                    tracing::error!(
                        session_id = self.info.session_id,
                        "cert_to_name hook panicked; refusing the client"
                    );
                    None
                }),
            None => None,
        };
        match name {
            Some(name) => {
                self.info.username = Some(name);
                self.machine.authorize(true);
            }
            None => {
                tracing::info!(
                    session_id = self.info.session_id,
                    "client certificate maps to no user; refusing"
                );
                self.machine.authorize(false);
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<ServerOutput> {
        match event {
            Event::Rpc { id, request } => self.on_request(id, request),
            Event::Closed { reason } => {
                let end = self
                    .transport_end
                    .take()
                    .unwrap_or(SessionEnd::Close(reason));
                tracing::debug!(session_id = self.info.session_id, ?end, "session closed");
                self.ended = Some(end);
                None
            }
            _ => None,
        }
    }

    fn on_request(&mut self, id: RequestId, request: Request) -> Option<ServerOutput> {
        if request.operation.is_base("kill-session") {
            let target = request
                .body
                .child_text("session-id")
                .and_then(|t| t.trim().parse::<u32>().ok());
            let answer = match target {
                None => Some(Reply::error(
                    RpcError::new(ErrorType::Protocol, ErrorTag::MissingElement)
                        .with_message("kill-session needs a <session-id>"),
                )),
                // RFC 6241 section 7.9: a session cannot kill itself.
                Some(t) if t == self.info.session_id => Some(invalid_value(
                    "a session cannot kill itself; use close-session".into(),
                )),
                Some(_) => None,
            };
            if let Some(reply) = answer {
                let _ = self.machine.session_mut().send_reply(id, reply);
                return None;
            }
            self.dispatched.insert(id, false);
            return Some(ServerOutput::KillSession {
                id,
                target: target.unwrap_or_default(),
            });
        }
        let subscription = request.operation.name == "create-subscription"
            && request.operation.namespace == NS_NOTIFICATION;
        self.dispatched.insert(id, subscription);
        Some(ServerOutput::Dispatch { id, request })
    }

    fn transport_failed(&mut self, end: SessionEnd) {
        if self.transport_end.is_none() && self.ended.is_none() {
            self.transport_end = Some(end);
        }
        self.machine.session_mut().abort();
    }
}

fn operation_failed(message: &str) -> Reply {
    Reply::error(
        RpcError::new(ErrorType::Application, ErrorTag::OperationFailed).with_message(message),
    )
}

fn invalid_value(message: String) -> Reply {
    Reply::error(RpcError::new(ErrorType::Protocol, ErrorTag::InvalidValue).with_message(message))
}
