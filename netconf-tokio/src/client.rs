//! The shared, pipelining client handle and its connection driver: the tokio loop around
//! [`ClientCore`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use netconf_proto::address::split_host_port;
use netconf_proto::client::{
    close_result, ClientCore, ClientOptions, ClientOutput, Delivery, NotificationItem,
    NotificationSink,
};
use netconf_proto::operations::{Operation, Rpc, RpcBody};
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{
    Capabilities, CloseReason, Error, Framing, Machine, RpcReply, Session, SessionEnd, TimeoutKind,
    TlsSession,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;

pub use netconf_proto::address::DEFAULT_TLS_PORT;

use crate::link::{sleep, AsyncStream, Link};

type Waiter = oneshot::Sender<Result<RpcReply, Error>>;
type Core = ClientCore<Waiter, Sink>;
/// A `close()` caller, answered only once the driver has finished (so `is_closed()` holds
/// when `close()` returns), with what the core said about its close-session.
type Closing = (Waiter, oneshot::Receiver<Result<RpcReply, Error>>);

enum Command {
    Rpc {
        body: RpcBody,
        timeout: Option<Duration>,
        reply: Waiter,
    },
    Close {
        reply: Waiter,
    },
    Subscribe(Sink),
}

/// A subscriber's bounded queue.
struct Sink(mpsc::Sender<NotificationItem>);

impl NotificationSink for Sink {
    fn try_deliver(&mut self, item: NotificationItem) -> Delivery {
        match self.0.try_send(item) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
        }
    }
}

/// What the handles and the driver share. It holds no sender of the command channel:
/// when the last `Client` is dropped the channel closes and the driver ends the session.
struct Shared {
    session_id: u32,
    capabilities: Capabilities,
    framing: Framing,
    rpc_timeout: Option<Duration>,
    notification_buffer: usize,
    /// Set before any waiter learns that the session ended.
    closed: AtomicBool,
    /// How the session ended, for precise errors after the fact.
    ended: Mutex<Option<SessionEnd>>,
}

impl Shared {
    fn ended_error(&self) -> Error {
        match &*self.ended.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(end) => end.error(),
            None => Error::Closed(CloseReason::Local),
        }
    }
}

/// The connection's read loop as a future. Spawn it (or await it) on any executor that
/// runs tokio I/O; it finishes when the session ends.
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

/// A NETCONF client session. Cheap to clone; every clone talks to the same session, and
/// RPCs from many tasks are pipelined and matched to their replies by message-id.
/// Dropping a request future abandons that request only: its late reply is discarded.
/// Dropping every clone ends the session with `<close-session>`.
#[derive(Clone)]
pub struct Client {
    cmds: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.shared.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects over TLS (RFC 7589; port 6513 unless `addr` names one) with default options
    /// and spawns the driver on the current tokio runtime.
    pub async fn connect_tls(addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        Client::connect_tls_with(addr, tls, &ClientOptions::new()).await
    }

    /// Connects over TLS with `options` and spawns the driver.
    pub async fn connect_tls_with(
        addr: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) = Client::connect_tls_with_driver(addr, tls, options).await?;
        tokio::spawn(driver);
        Ok(client)
    }

    /// Connects over TLS and returns the driver for the caller to spawn (or await);
    /// nothing happens on the session unless the driver runs.
    pub async fn connect_tls_with_driver(
        addr: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let (host, port) = split_host_port(addr, DEFAULT_TLS_PORT)?;
        let stream = tokio::time::timeout(
            options.get_connect_timeout(),
            TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| Error::Timeout(TimeoutKind::Connect))??;
        stream.set_nodelay(true)?;
        Client::connect_tls_over_with_driver(stream, host, tls, options).await
    }

    /// NETCONF over TLS on a stream the caller already has (a connection a device opened to
    /// us for call home, a proxy tunnel); `server_name` is what the server's certificate
    /// must name. Spawns the driver.
    pub async fn connect_tls_over(
        stream: impl AsyncStream + 'static,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) =
            Client::connect_tls_over_with_driver(stream, server_name, tls, options).await?;
        tokio::spawn(driver);
        Ok(client)
    }

    /// Like [`Client::connect_tls_over`], returning the driver instead of spawning it.
    pub async fn connect_tls_over_with_driver(
        stream: impl AsyncStream + 'static,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let machine = TlsSession::client(
            tls.build()?,
            tls.server_name_for(server_name)?,
            options.session_config().clone(),
            Instant::now(),
        )
        .map_err(|e| Error::Tls(netconf_proto::TlsError::from_rustls(e)))?;
        establish(Box::new(stream), Box::new(machine), options).await
    }

    /// NETCONF over a plaintext stream (an SSH channel, a Unix socket, TCP in tests) with
    /// default options; spawns the driver.
    pub async fn from_stream(stream: impl AsyncStream + 'static) -> Result<Client, Error> {
        Client::from_stream_with(stream, &ClientOptions::new()).await
    }

    /// NETCONF over a plaintext stream with `options`; spawns the driver.
    pub async fn from_stream_with(
        stream: impl AsyncStream + 'static,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (client, driver) = Client::from_stream_with_driver(stream, options).await?;
        tokio::spawn(driver);
        Ok(client)
    }

    /// Like [`Client::from_stream_with`], returning the driver instead of spawning it.
    pub async fn from_stream_with_driver(
        stream: impl AsyncStream + 'static,
        options: &ClientOptions,
    ) -> Result<(Client, Driver), Error> {
        let machine = Session::client(options.session_config().clone(), Instant::now());
        establish(Box::new(stream), Box::new(machine), options).await
    }

    pub fn session_id(&self) -> u32 {
        self.shared.session_id
    }

    /// The server's capabilities, from its hello.
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

    /// Sends an operation and returns its typed result (`GetConfig` gives the `<data>`
    /// payload, `Lock` gives `()`); an `<rpc-error>` is `Err(Error::Rpc(..))`.
    pub async fn call<R: Rpc + ?Sized>(&self, op: &R) -> Result<R::Output, Error> {
        R::output(self.rpc(op).await?)
    }

    /// Like [`Client::call`] with its own timeout (`None`: forever).
    pub async fn call_with_timeout<R: Rpc + ?Sized>(
        &self,
        op: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Output, Error> {
        R::output(self.rpc_with_timeout(op, timeout).await?)
    }

    /// Sends any operation and waits for the whole reply.
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
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Rpc {
                body,
                timeout,
                reply,
            })
            .map_err(|_| self.shared.ended_error())?;
        rx.await.map_err(|_| self.shared.ended_error())?
    }

    /// Sends raw XML (the operation element) and waits for the reply.
    pub async fn rpc_raw(&self, xml: &str) -> Result<RpcReply, Error> {
        self.rpc(&RpcBody::raw(xml)?).await
    }

    /// A stream of the notifications that arrive from now on. Each stream has its own
    /// bounded buffer; a consumer that falls behind gets `Err(Lagged(n))`, never unbounded
    /// growth. Subscribe before sending `<create-subscription>` so that nothing sent right
    /// after its reply is missed.
    pub fn notifications(&self) -> Notifications {
        let (tx, rx) = mpsc::channel(self.shared.notification_buffer);
        let _ = self.cmds.send(Command::Subscribe(Sink(tx)));
        Notifications {
            rx,
            shared: self.shared.clone(),
        }
    }

    /// Ends the session with `<close-session>` and waits until the driver has closed it.
    /// A session that has already ended, however it ended, has nothing left to close: `Ok`.
    pub async fn close(&self) -> Result<(), Error> {
        if self.is_closed() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        if self.cmds.send(Command::Close { reply }).is_err() {
            return Ok(()); // the driver is gone: so is the session
        }
        close_result(rx.await.unwrap_or_else(|_| Err(self.shared.ended_error())))
    }
}

/// A stream of notifications; see [`Client::notifications`]. It ends with the session.
pub struct Notifications {
    rx: mpsc::Receiver<NotificationItem>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").finish_non_exhaustive()
    }
}

impl Stream for Notifications {
    type Item = NotificationItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.rx.poll_recv(cx);
        if let Poll::Ready(None) = next {
            // Only the end of the session drops our queue's sender (the core lets go of its
            // subscribers as the session closes, before the driver is done): whoever sees
            // the stream end must also see `is_closed()`.
            self.shared.closed.store(true, Ordering::SeqCst);
        }
        next
    }
}

/// Runs the hello exchange inline, then hands the connection to a [`Driver`].
async fn establish(
    stream: Box<dyn AsyncStream>,
    machine: Box<dyn Machine + Send>,
    options: &ClientOptions,
) -> Result<(Client, Driver), Error> {
    let mut core = Core::new(machine, options);
    let mut link = Link::new(stream, options.get_write_timeout());
    if let Some(end) = run(&mut core, &mut link, None, &mut Vec::new(), true).await {
        link.shutdown().await;
        return Err(end.error());
    }
    let session = core.session();
    let (cmds, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        session_id: session.session_id().unwrap_or_default(),
        capabilities: session.peer_capabilities().clone(),
        framing: session.framing(),
        rpc_timeout: session.config().rpc_timeout(),
        notification_buffer: options.get_notification_buffer(),
        closed: AtomicBool::new(false),
        ended: Mutex::new(None),
    });
    let driver = Driver {
        inner: Box::pin(drive(core, link, rx, shared.clone())),
    };
    Ok((Client { cmds, shared }, driver))
}

async fn drive(
    mut core: Core,
    mut link: Link,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let mut closing = Vec::new();
    let end = run(&mut core, &mut link, Some(&mut cmds), &mut closing, false)
        .await
        .unwrap_or(SessionEnd::Close(CloseReason::Local));
    // Record the end before anyone is told, so `is_closed()` and later calls agree.
    *shared.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(end.clone());
    shared.closed.store(true, Ordering::SeqCst);
    cmds.close();
    // Commands queued behind the end get the same answer, never silence.
    while let Ok(cmd) = cmds.try_recv() {
        match cmd {
            Command::Rpc { reply, .. } => {
                let _ = reply.send(Err(end.error()));
            }
            // The session is over: nothing is left to close (`close_result` takes a local
            // close as success).
            Command::Close { reply } => {
                let _ = reply.send(Err(Error::Closed(CloseReason::Local)));
            }
            Command::Subscribe(_) => {}
        }
    }
    link.shutdown().await;
    for (reply, mut result) in closing {
        let _ = reply.send(result.try_recv().unwrap_or_else(|_| Err(end.error())));
    }
}

/// The loop: until the session ends (returns how), or until it is established when
/// `until_established` (returns `None`).
async fn run(
    core: &mut Core,
    link: &mut Link,
    mut cmds: Option<&mut mpsc::UnboundedReceiver<Command>>,
    closing: &mut Vec<Closing>,
    until_established: bool,
) -> Option<SessionEnd> {
    let mut handles_alive = cmds.is_some();
    loop {
        let deadline = loop {
            match core.poll() {
                ClientOutput::Transmit(bytes) => {
                    let mut on_read = |r: std::io::Result<&[u8]>| {
                        core.handle_read(r, Instant::now());
                        true
                    };
                    if let Err(e) = link.write_all(&bytes, Some(&mut on_read)).await {
                        core.handle_write_error(&e);
                    }
                }
                ClientOutput::Established if until_established => return None,
                ClientOutput::Complete(waiter, result) => {
                    // A waiter that went away (dropped future) simply misses its reply.
                    let _ = waiter.send(result);
                }
                ClientOutput::Ended(end) => return Some(end),
                ClientOutput::Wait(deadline) => break deadline,
                _ => {}
            }
        };
        // A deadline already due is handled before waiting: a timer polled late under the
        // cooperative budget must not delay it.
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            core.handle_timeout(now);
            continue;
        }
        let reading = core.wants_read() && link.can_read();
        tokio::select! {
            biased;
            cmd = recv(&mut cmds), if handles_alive => match cmd {
                Some(Command::Rpc { body, timeout, reply }) => {
                    if !reply.is_closed() {
                        core.submit(&body, timeout, reply, Instant::now());
                    }
                }
                Some(Command::Close { reply }) => {
                    let (waiter, result) = oneshot::channel();
                    core.close(waiter, Instant::now());
                    closing.push((reply, result));
                }
                Some(Command::Subscribe(sink)) => core.subscribe(sink),
                None => {
                    // Every handle is gone: end the session politely.
                    handles_alive = false;
                    let (nobody, _) = oneshot::channel();
                    core.close(nobody, Instant::now());
                }
            },
            read = link.read(), if reading => core.handle_read(link.bytes(read), Instant::now()),
            () = sleep(deadline) => core.handle_timeout(Instant::now()),
        }
    }
}

async fn recv(cmds: &mut Option<&mut mpsc::UnboundedReceiver<Command>>) -> Option<Command> {
    match cmds {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
