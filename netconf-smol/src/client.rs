//! The shared, pipelining client handle and its connection driver.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_broadcast::{InactiveReceiver, RecvError};
use futures_lite::{AsyncReadExt, FutureExt, Stream};
use netconf_proto::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DeleteConfig, DiscardChanges,
    EditConfig, EditData, Get, GetConfig, GetData, GetSchema, KillSession, Lock, Operation,
    RpcBody, Unlock, Validate,
};
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{
    check_reply, Capabilities, CloseReason, Config, Error, Event, Framing, MessageId, Notification,
    RpcReply, Session, TlsSession, XmlPayload,
};

use crate::connection::{sleep, AsyncStream, Conn, Ended};

/// A one-shot reply slot: a bounded(1) channel whose sender sees when the waiter is gone.
type ReplySender<T> = async_channel::Sender<T>;

use netconf_proto::address::split_host_port;
pub use netconf_proto::address::DEFAULT_TLS_PORT;

enum Command {
    Rpc {
        body: RpcBody,
        timeout: Option<Duration>,
        reply: ReplySender<Result<RpcReply, Error>>,
    },
    Close {
        done: ReplySender<Result<(), Error>>,
    },
}

/// Settings for a client beyond the session's own [`Config`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
    connect_timeout: Duration,
    write_timeout: Option<Duration>,
    notification_buffer: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            config: Config::client(),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(60)),
            notification_buffer: 1024,
        }
    }
}

impl ClientBuilder {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the TLS handshake and the server's `<hello>`.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.config.hello_timeout = timeout;
        self
    }

    /// Default time an RPC waits for its reply (`None`: forever).
    pub fn rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.rpc_timeout = timeout;
        self
    }

    /// How long a write may wait on a peer that does not read.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Notifications kept per subscriber of [`Client::notifications`] before it lags.
    pub fn notification_buffer(mut self, n: usize) -> Self {
        self.notification_buffer = n.max(1);
        self
    }

    /// Connects over TLS and spawns the driver on smol's global executor.
    #[cfg(feature = "smol")]
    pub async fn connect_tls(self, addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        let (client, driver) = self.connect_tls_with_driver(addr, tls).await?;
        smol::spawn(driver).detach();
        Ok(client)
    }

    /// Connects over TLS and returns the driver for the caller to spawn (or await) on any
    /// executor; nothing happens on the session unless the driver runs.
    pub async fn connect_tls_with_driver(
        self,
        addr: &str,
        tls: &ClientTlsOptions,
    ) -> Result<(Client, Driver), Error> {
        let (host, port) = split_host_port(addr, DEFAULT_TLS_PORT)?;
        let tls_config = tls.build()?;
        let server_name = tls.server_name_for(host)?;
        let connect_timeout = self.connect_timeout;
        let stream = async_net::TcpStream::connect((host, port))
            .or(async {
                async_io::Timer::after(connect_timeout).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TCP connect timed out",
                ))
            })
            .await?;
        stream.set_nodelay(true)?;
        let machine =
            TlsSession::client(tls_config, server_name, self.config.clone(), Instant::now())
                .map_err(|e| Error::Tls(e.to_string()))?;
        self.establish(Box::new(stream), Box::new(machine)).await
    }

    /// NETCONF over a plaintext stream (SSH channel, Unix socket, TCP in tests); spawns the
    /// driver on smol's global executor.
    #[cfg(feature = "smol")]
    pub async fn from_stream(self, stream: impl AsyncStream + 'static) -> Result<Client, Error> {
        let (client, driver) = self.from_stream_with_driver(stream).await?;
        smol::spawn(driver).detach();
        Ok(client)
    }

    /// Like [`ClientBuilder::from_stream`], returning the driver instead of spawning it.
    pub async fn from_stream_with_driver(
        self,
        stream: impl AsyncStream + 'static,
    ) -> Result<(Client, Driver), Error> {
        let machine = Session::client(self.config.clone(), Instant::now());
        self.establish(Box::new(stream), Box::new(machine)).await
    }

    /// Runs the hello exchange inline, then hands the connection to a [`Driver`].
    async fn establish(
        self,
        stream: Box<dyn AsyncStream>,
        machine: Box<dyn netconf_proto::Machine + Send>,
    ) -> Result<(Client, Driver), Error> {
        let mut conn = Conn::new(stream, machine, self.write_timeout, true);
        loop {
            let deadline = conn.flush().await;
            if conn
                .events
                .iter()
                .any(|e| matches!(e, Event::Established { .. }))
            {
                conn.events
                    .retain(|e| !matches!(e, Event::Established { .. }));
                break;
            }
            if let Some(e) = conn.closed_error() {
                conn.shutdown().await;
                return Err(e);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                conn.machine.handle_timeout(Instant::now());
                continue;
            }
            let read = async { Some(conn.reader.read(&mut conn.buf).await) }
                .or(async {
                    sleep(deadline).await;
                    None
                })
                .await;
            match read {
                Some(read) => conn.on_read(read),
                None => conn.machine.handle_timeout(Instant::now()),
            }
        }
        let session = conn.machine.session();
        let (cmds, rx) = async_channel::bounded(256);
        // The driver owns the only sender: when it stops, every notification stream ends.
        // A slow subscriber loses the oldest notifications (and is told how many); the driver
        // never waits for subscribers.
        let (mut notifications, template) = async_broadcast::broadcast(self.notification_buffer);
        notifications.set_overflow(true);
        notifications.set_await_active(false);
        let template = template.deactivate();
        let shared = Arc::new(Shared {
            session_id: session.session_id().unwrap_or_default(),
            capabilities: session.peer_capabilities().clone(),
            framing: session.framing(),
            rpc_timeout: session.config().rpc_timeout,
            subscribe: Mutex::new(template),
            closed: AtomicBool::new(false),
            ended: Mutex::new(None),
        });
        let driver = Driver {
            inner: Box::pin(drive(conn, rx, notifications, shared.clone())),
        };
        Ok((Client { cmds, shared }, driver))
    }
}

/// What the handles and the driver share. It holds no sender of the command channel:
/// when the last `Client` is dropped the channel closes and the driver ends the session.
struct Shared {
    session_id: u32,
    capabilities: Capabilities,
    framing: Framing,
    rpc_timeout: Option<Duration>,
    /// A receiver kept only to create new subscriptions from.
    subscribe: Mutex<InactiveReceiver<Notification>>,
    /// Set before any waiter learns that the session ended.
    closed: AtomicBool,
    /// How the session ended, for precise errors after the fact.
    ended: Mutex<Option<Ended>>,
}

impl Shared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ended_error(&self) -> Error {
        match &*Shared::lock(&self.ended) {
            Some(ended) => ended.error(),
            None => Error::Closed(CloseReason::Local),
        }
    }
}

/// The connection's read loop as a future. Spawn it (or await it) on any executor; it
/// finishes when the session closes.
#[must_use = "the session makes no progress unless the driver runs"]
pub struct Driver {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

impl Future for Driver {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

/// What woke the driver.
enum Wake {
    Command(Option<Command>),
    Read(std::io::Result<usize>),
    Deadline,
}

async fn drive(
    mut conn: Conn,
    cmds: async_channel::Receiver<Command>,
    notifications: async_broadcast::Sender<Notification>,
    shared: Arc<Shared>,
) {
    let mut waiters: HashMap<MessageId, ReplySender<Result<RpcReply, Error>>> = HashMap::new();
    let mut close_waiters: Vec<ReplySender<Result<(), Error>>> = Vec::new();
    let mut handles_alive = true;
    loop {
        let deadline = conn.flush().await;
        while let Some(event) = conn.events.pop_front() {
            match event {
                Event::Reply { id, reply } => {
                    // A waiter that went away (dropped future) simply misses its reply.
                    if let Some(w) = waiters.remove(&id) {
                        let _ = w.try_send(check_reply(reply));
                    }
                }
                Event::RpcTimedOut { id } => {
                    if let Some(w) = waiters.remove(&id) {
                        let _ = w.try_send(Err(Error::Timeout(
                            "no reply to the RPC within its timeout",
                        )));
                    }
                }
                Event::Notification(n) => {
                    let _ = notifications.try_broadcast(n);
                }
                Event::MessageRejected { error } => {
                    tracing::warn!(%error, "NETCONF message dropped")
                }
                Event::Established { .. } | Event::Rpc { .. } | Event::Closed { .. } => {}
            }
        }
        if let Some(ended) = conn.ended() {
            // Record the end before anyone is told, so `is_closed()` and later calls agree.
            *Shared::lock(&shared.ended) = Some(ended.clone());
            shared.closed.store(true, Ordering::SeqCst);
            cmds.close();
            for (_, w) in waiters.drain() {
                let _ = w.try_send(Err(ended.error()));
            }
            // Commands queued behind the end get the same answer, never silence.
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    Command::Rpc { reply, .. } => {
                        let _ = reply.try_send(Err(ended.error()));
                    }
                    Command::Close { done } => close_waiters.push(done),
                }
            }
            let clean = matches!(
                ended,
                Ended::Close(CloseReason::CloseSession | CloseReason::Local)
            );
            for w in close_waiters.drain(..) {
                let _ = w.try_send(if clean { Ok(()) } else { Err(ended.error()) });
            }
            break;
        }
        let now = Instant::now();
        // A deadline already due is handled before waiting: a timer polled late under the
        // cooperative budget must not delay it.
        if deadline.is_some_and(|d| now >= d) {
            conn.machine.handle_timeout(now);
            continue;
        }
        let wake = async {
            if handles_alive {
                Wake::Command(cmds.recv().await.ok())
            } else {
                std::future::pending().await
            }
        }
        .or(async { Wake::Read(conn.reader.read(&mut conn.buf).await) })
        .or(async {
            sleep(deadline).await;
            Wake::Deadline
        })
        .await;
        match wake {
            Wake::Command(Some(Command::Rpc {
                body,
                timeout,
                reply,
            })) => {
                if reply.is_closed() {
                    continue; // cancelled before it was sent
                }
                let sent = conn.machine.session_mut().send_rpc_with_timeout(
                    &body,
                    timeout,
                    Instant::now(),
                );
                match sent {
                    Ok(id) => {
                        waiters.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.try_send(Err(e.into()));
                    }
                }
            }
            Wake::Command(Some(Command::Close { done })) => {
                close_waiters.push(done);
                conn.machine.session_mut().close(Instant::now());
            }
            Wake::Command(None) => {
                // Every handle is gone: end the session politely.
                handles_alive = false;
                conn.machine.session_mut().close(Instant::now());
            }
            Wake::Read(read) => conn.on_read(read),
            Wake::Deadline => conn.machine.handle_timeout(Instant::now()),
        }
    }
    conn.shutdown().await;
}

/// A NETCONF client session. Cheap to clone; every clone talks to the same session, and
/// RPCs from many tasks are pipelined and matched to their replies by message-id.
/// Dropping a request future abandons that request only: its late reply is discarded.
#[derive(Clone)]
pub struct Client {
    cmds: async_channel::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.shared.session_id)
            .finish_non_exhaustive()
    }
}

/// A notification subscriber fell behind and lost this many notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl std::fmt::Display for Lagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "notification consumer lagged: {} notifications dropped",
            self.0
        )
    }
}

impl std::error::Error for Lagged {}

/// A stream of notifications; see [`Client::notifications`].
pub struct Notifications {
    inner: async_broadcast::Receiver<Notification>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifications")
    }
}

impl Stream for Notifications {
    type Item = Result<Notification, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_recv(cx) {
            Poll::Ready(Some(Ok(n))) => Poll::Ready(Some(Ok(n))),
            Poll::Ready(Some(Err(RecvError::Overflowed(n)))) => Poll::Ready(Some(Err(Lagged(n)))),
            Poll::Ready(Some(Err(RecvError::Closed)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects over TLS with default settings and spawns the driver on smol's executor.
    #[cfg(feature = "smol")]
    pub async fn connect_tls(addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        ClientBuilder::default().connect_tls(addr, tls).await
    }

    /// NETCONF over a plaintext stream with default settings; spawns the driver on smol's
    /// executor.
    #[cfg(feature = "smol")]
    pub async fn from_stream(stream: impl AsyncStream + 'static) -> Result<Client, Error> {
        ClientBuilder::default().from_stream(stream).await
    }

    pub fn session_id(&self) -> u32 {
        self.shared.session_id
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.shared.capabilities
    }

    pub fn framing(&self) -> Framing {
        self.shared.framing
    }

    /// True once the session has ended (set before any caller is told why).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst) || self.cmds.is_closed()
    }

    /// The error for a session that ended: the same variant the first caller saw.
    fn closed_error(&self) -> Error {
        self.shared.ended_error()
    }

    /// Sends an RPC and waits for its reply; `<rpc-error>` becomes `Err(Error::Rpc(..))`.
    pub async fn rpc(&self, op: &(impl Operation + ?Sized)) -> Result<RpcReply, Error> {
        self.rpc_with_timeout(op, self.shared.rpc_timeout).await
    }

    /// Like [`Client::rpc`] with its own timeout (`None`: forever).
    pub async fn rpc_with_timeout(
        &self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<RpcReply, Error> {
        let body = RpcBody::from_operation(op);
        let (reply, rx) = async_channel::bounded(1);
        self.cmds
            .send(Command::Rpc {
                body,
                timeout,
                reply,
            })
            .await
            .map_err(|_| self.closed_error())?;
        rx.recv().await.map_err(|_| self.closed_error())?
    }

    /// Sends raw XML (the operation element) and waits for the reply.
    pub async fn rpc_raw(&self, xml: &str) -> Result<RpcReply, Error> {
        self.rpc(&RpcBody::raw(xml)?).await
    }

    async fn data(&self, op: &(impl Operation + ?Sized)) -> Result<XmlPayload, Error> {
        Ok(self.rpc(op).await?.data().cloned().unwrap_or_default())
    }

    async fn ok(&self, op: &(impl Operation + ?Sized)) -> Result<(), Error> {
        self.rpc(op).await.map(drop)
    }

    pub async fn get(&self, op: &Get) -> Result<XmlPayload, Error> {
        self.data(op).await
    }

    pub async fn get_config(&self, op: &GetConfig) -> Result<XmlPayload, Error> {
        self.data(op).await
    }

    pub async fn edit_config(&self, op: &EditConfig) -> Result<(), Error> {
        self.ok(op).await
    }

    pub async fn copy_config(&self, op: &CopyConfig) -> Result<(), Error> {
        self.ok(op).await
    }

    pub async fn delete_config(&self, target: Datastore) -> Result<(), Error> {
        self.ok(&DeleteConfig::new(target)).await
    }

    pub async fn lock(&self, target: Datastore) -> Result<(), Error> {
        self.ok(&Lock::new(target)).await
    }

    pub async fn unlock(&self, target: Datastore) -> Result<(), Error> {
        self.ok(&Unlock::new(target)).await
    }

    pub async fn commit(&self, op: &Commit) -> Result<(), Error> {
        self.ok(op).await
    }

    pub async fn cancel_commit(&self, op: &CancelCommit) -> Result<(), Error> {
        self.ok(op).await
    }

    pub async fn discard_changes(&self) -> Result<(), Error> {
        self.ok(&DiscardChanges::new()).await
    }

    pub async fn validate(&self, op: &Validate) -> Result<(), Error> {
        self.ok(op).await
    }

    pub async fn kill_session(&self, session_id: u32) -> Result<(), Error> {
        self.ok(&KillSession::new(session_id)?).await
    }

    /// RFC 6022 `<get-schema>`: the schema text.
    pub async fn get_schema(&self, op: &GetSchema) -> Result<String, Error> {
        Ok(self.data(op).await?.text()?)
    }

    pub async fn get_data(&self, op: &GetData) -> Result<XmlPayload, Error> {
        self.data(op).await
    }

    pub async fn edit_data(&self, op: &EditData) -> Result<(), Error> {
        self.ok(op).await
    }

    /// RFC 5277 `<create-subscription>`. Call [`Client::notifications`] first so that no
    /// notification sent right after the reply is missed.
    pub async fn create_subscription(&self, op: &CreateSubscription) -> Result<(), Error> {
        self.ok(op).await
    }

    /// A stream of the notifications that arrive from now on. Each stream has its own
    /// bounded buffer; a consumer that falls behind gets `Err(Lagged(n))`, never unbounded growth.
    pub fn notifications(&self) -> Notifications {
        Notifications {
            inner: Shared::lock(&self.shared.subscribe).activate_cloned(),
        }
    }

    /// Ends the session with `<close-session>` and waits until the driver has closed it.
    pub async fn close(&self) -> Result<(), Error> {
        let (done, rx) = async_channel::bounded(1);
        if self.cmds.send(Command::Close { done }).await.is_err() {
            return Ok(()); // already closed
        }
        rx.recv().await.unwrap_or(Ok(()))
    }
}
