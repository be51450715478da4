//! The shared, pipelining client handle and its connection driver: the futures-io loop
//! around [`ClientCore`], generic over the [`Runtime`] that spawns and times it.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use futures_channel::oneshot;
use futures_lite::{FutureExt, Stream};
use netconf_proto::address::split_host_port;
use netconf_proto::client::{
    close_result, ClientCore, ClientOptions, ClientOutput, Delivery, NotificationItem,
    NotificationSink,
};
use netconf_proto::operations::{Operation, Rpc, RpcBody};
use netconf_proto::rustls::pki_types::ServerName;
use netconf_proto::rustls::ClientConfig;
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{
    Capabilities, CloseReason, Error, Framing, Machine, RpcReply, Session, SessionEnd, TimeoutKind,
    TlsSession,
};

pub use netconf_proto::address::DEFAULT_TLS_PORT;

use crate::connection::{Connection, Driver};
use crate::data::{DataStream, StreamSink};
use crate::link::{AfterRead, Link};
use crate::queue;
use crate::runtime::{when, Adopt, Alarm, AsyncStream, BoxStream, Runtime};

/// A caller's reply slot. A oneshot, not an `async_channel` of one: a woken caller takes
/// its reply without a lock the answering thread may still hold (with `async_channel`, a
/// caller outside the runtime slept a second time per call, on the channel's list lock).
type Waiter = oneshot::Sender<Result<RpcReply, Error>>;
type Core = ClientCore<Waiter, Sink, StreamSink>;
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
    Streamed {
        body: RpcBody,
        timeout: Option<Duration>,
        sink: StreamSink,
    },
}

/// A subscriber's bounded queue.
struct Sink(Sender<NotificationItem>);

impl NotificationSink for Sink {
    fn try_deliver(&mut self, item: NotificationItem) -> Delivery {
        match self.0.try_send(item) {
            Ok(()) => Delivery::Delivered,
            Err(TrySendError::Full(_)) => Delivery::Full,
            Err(TrySendError::Closed(_)) => Delivery::Gone,
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
    /// Callers waiting for a reply or a stream's start.
    waiting: AtomicUsize,
    /// How the session ended, for precise errors after the fact.
    ended: Mutex<Option<SessionEnd>>,
    /// Readers of streamed replies wake the driver here when they made room.
    room: Sender<()>,
}

impl Shared {
    fn ended_error(&self) -> Error {
        match &*self.ended.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(end) => end.error(),
            None => Error::Closed(CloseReason::Local),
        }
    }
}

/// A NETCONF client session. Cheap to clone; every clone talks to the same session, and
/// RPCs from many tasks are pipelined and matched to their replies by message-id.
/// Dropping a request future abandons that request only: its late reply is discarded.
/// Dropping every clone ends the session with `<close-session>`.
///
/// The connection's [`Driver`] reads, times out and delivers replies. A request made while
/// no other caller waits, and while the driver is idle, is written by its caller, on the
/// caller's thread (entering the client's runtime for the timers), so that a call from
/// outside the runtime does not first wake the driver's thread; the caller then waits for
/// its reply like any other.
///
/// `R` is the runtime the driver is spawned on by the constructors that spawn it
/// (`netconf_tokio::Client` is `Client<Tokio>`).
pub struct Client<R> {
    cmds: queue::Sender<Command>,
    /// The loop, for a caller's turn at writing its own request.
    connection: Arc<Connection>,
    shared: Arc<Shared>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Client<R> {
    fn clone(&self) -> Self {
        Client {
            cmds: self.cmds.clone(),
            connection: self.connection.clone(),
            shared: self.shared.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.shared.session_id)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Client<R> {
    /// Connects over TLS (RFC 7589; port 6513 unless `addr` names one) with default options
    /// and spawns the driver on the runtime.
    pub async fn connect_tls(addr: &str, tls: &ClientTlsOptions) -> Result<Self, Error> {
        Self::connect_tls_with(addr, tls, &ClientOptions::new()).await
    }

    /// Connects over TLS with `options` and spawns the driver on the runtime.
    pub async fn connect_tls_with(
        addr: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Self, Error> {
        let (client, driver) = Self::connect_tls_with_driver(addr, tls, options).await?;
        R::spawn(Box::pin(driver));
        Ok(client)
    }

    /// Connects over TLS and returns the driver for the caller to spawn (or await) on any
    /// executor; the session needs it to run for as long as it is used.
    pub async fn connect_tls_with_driver(
        addr: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error> {
        let (host, port) = split_host_port(addr, DEFAULT_TLS_PORT)?;
        let stream = connect::<R>(host, port, options).await?;
        Self::tls_over(stream, host, tls, options).await
    }

    /// NETCONF over TLS on a stream the caller already has (a connection a device opened to
    /// us for call home, a proxy tunnel); `server_name` is what the server's certificate
    /// must name. Spawns the driver on the runtime.
    pub async fn connect_tls_over<S>(
        stream: S,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<Self, Error>
    where
        R: Adopt<S>,
    {
        let (client, driver) =
            Self::connect_tls_over_with_driver(stream, server_name, tls, options).await?;
        R::spawn(Box::pin(driver));
        Ok(client)
    }

    /// Like [`Client::connect_tls_over`], returning the driver instead of spawning it.
    pub async fn connect_tls_over_with_driver<S>(
        stream: S,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error>
    where
        R: Adopt<S>,
    {
        Self::tls_over(R::adopt(stream), server_name, tls, options).await
    }

    async fn tls_over(
        stream: BoxStream,
        server_name: &str,
        tls: &ClientTlsOptions,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error> {
        let name = tls.server_name_for(server_name)?;
        Self::tls_with_config(stream, tls.build()?, name, options).await
    }

    /// A TLS session with a ready rustls configuration (call home's device check).
    pub(crate) async fn tls_with_config(
        stream: BoxStream,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error> {
        let machine = TlsSession::client(
            config,
            server_name,
            options.session_config().clone(),
            Instant::now(),
        )
        .map_err(|e| Error::Tls(netconf_proto::TlsError::from_rustls(e)))?;
        establish::<R>(stream, Box::new(machine), options).await
    }

    /// NETCONF over a plaintext stream (an SSH channel, a Unix socket, TCP in tests) with
    /// default options; spawns the driver on the runtime.
    pub async fn from_stream<S>(stream: S) -> Result<Self, Error>
    where
        R: Adopt<S>,
    {
        Self::from_stream_with(stream, &ClientOptions::new()).await
    }

    /// NETCONF over a plaintext stream with `options`; spawns the driver on the runtime.
    pub async fn from_stream_with<S>(stream: S, options: &ClientOptions) -> Result<Self, Error>
    where
        R: Adopt<S>,
    {
        let (client, driver) = Self::from_stream_with_driver(stream, options).await?;
        R::spawn(Box::pin(driver));
        Ok(client)
    }

    /// Like [`Client::from_stream_with`], returning the driver instead of spawning it.
    pub async fn from_stream_with_driver<S>(
        stream: S,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error>
    where
        R: Adopt<S>,
    {
        Self::plaintext(R::adopt(stream), options).await
    }

    /// A session on a stream already in the loops' form (an SSH channel we opened).
    pub(crate) async fn plaintext(
        stream: BoxStream,
        options: &ClientOptions,
    ) -> Result<(Self, Driver), Error> {
        let machine = Session::client(options.session_config().clone(), Instant::now());
        establish::<R>(stream, Box::new(machine), options).await
    }
}

/// A TCP connection within the connect timeout.
pub(crate) async fn connect<R: Runtime>(
    host: &str,
    port: u16,
    options: &ClientOptions,
) -> Result<BoxStream, Error> {
    let connect = async { Some(R::connect(host.to_owned(), port).await) };
    let give_up = async {
        R::sleep_until(Instant::now() + options.get_connect_timeout()).await;
        None
    };
    Ok(connect
        .or(give_up)
        .await
        .ok_or(Error::Timeout(TimeoutKind::Connect))??)
}

impl<R> Client<R> {
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
    pub async fn call<O: Rpc + ?Sized>(&self, op: &O) -> Result<O::Output, Error> {
        O::output(self.rpc(op).await?)
    }

    /// Like [`Client::call`] with its own timeout (`None`: forever).
    pub async fn call_with_timeout<O: Rpc + ?Sized>(
        &self,
        op: &O,
        timeout: Option<Duration>,
    ) -> Result<O::Output, Error> {
        O::output(self.rpc_with_timeout(op, timeout).await?)
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
        let waiting = Waiting::begin(&self.shared.waiting);
        self.command(
            Command::Rpc {
                body,
                timeout,
                reply,
            },
            &waiting,
        )?;
        rx.await.map_err(|_| self.shared.ended_error())?
    }

    /// Hands a request to the loop. The only caller waiting also writes it, on this
    /// thread, if nobody else is polling the loop (see `connection.rs`): that spares a
    /// small RPC the wake of the driver's thread. With other requests in flight the driver
    /// is about to run anyway, and it writes every request queued meanwhile in one go,
    /// where callers' turns would write one each.
    fn command(&self, command: Command, waiting: &Waiting<'_>) -> Result<(), Error> {
        let queue = || self.cmds.try_send(command);
        let queued = if waiting.alone {
            self.connection.queue_and_poll(queue)
        } else {
            queue()
        };
        queued.map_err(|_| self.shared.ended_error())
    }

    /// Sends raw XML (the operation element) and waits for the reply.
    pub async fn rpc_raw(&self, xml: &str) -> Result<RpcReply, Error> {
        self.rpc(&RpcBody::raw(xml)?).await
    }

    /// Sends a data operation (`GetConfig`, `Get`, `GetData`, ...) whose reply's `<data>`
    /// content arrives as a stream, in bounded memory whatever its size: while the stream's
    /// reader leaves [`ClientOptions::stream_window`] unread, the session stops reading the
    /// transport. Returns once the reply has started; an `<rpc-error>` reply is
    /// `Err(Error::Rpc(..))`, a reply without data an empty stream. Dropping the stream
    /// discards the rest of the reply; the session goes on.
    pub async fn call_streamed(&self, op: &(impl Operation + ?Sized)) -> Result<DataStream, Error> {
        self.call_streamed_with_timeout(op, self.shared.rpc_timeout)
            .await
    }

    /// Like [`Client::call_streamed`] with its own timeout (until the data starts; after
    /// that the stall timeout applies).
    pub async fn call_streamed_with_timeout(
        &self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<DataStream, Error> {
        let body = RpcBody::from_operation(op);
        let (sink, stream) = crate::data::channel(self.shared.room.clone());
        let waiting = Waiting::begin(&self.shared.waiting);
        self.command(
            Command::Streamed {
                body,
                timeout,
                sink,
            },
            &waiting,
        )?;
        stream.started().await?;
        drop(waiting);
        Ok(stream)
    }

    /// A stream of the notifications that arrive from now on. Each stream has its own
    /// bounded buffer; a consumer that falls behind gets `Err(Lagged(n))`, never unbounded
    /// growth. Subscribe before sending `<create-subscription>` so that nothing sent right
    /// after its reply is missed.
    pub fn notifications(&self) -> Notifications {
        let (tx, rx) = async_channel::bounded(self.shared.notification_buffer);
        let _ = self.cmds.try_send(Command::Subscribe(Sink(tx)));
        Notifications {
            rx: Box::pin(rx),
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
        if self.cmds.try_send(Command::Close { reply }).is_err() {
            return Ok(()); // the driver is gone: so is the session
        }
        close_result(rx.await.unwrap_or_else(|_| Err(self.shared.ended_error())))
    }
}

/// A caller counted among those waiting for a reply, until it is dropped.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// Nobody else was waiting when this caller began.
    alone: bool,
}

impl<'a> Waiting<'a> {
    fn begin(count: &'a AtomicUsize) -> Waiting<'a> {
        let before = count.fetch_add(1, Ordering::Relaxed);
        Waiting {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream of notifications; see [`Client::notifications`]. It ends with the session.
pub struct Notifications {
    rx: Pin<Box<Receiver<NotificationItem>>>,
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
        let next = self.rx.as_mut().poll_next(cx);
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
pub(crate) async fn establish<R: Runtime>(
    stream: Box<dyn AsyncStream>,
    machine: Box<dyn Machine + Send>,
    options: &ClientOptions,
) -> Result<(Client<R>, Driver), Error> {
    let mut core = Core::new(machine, options);
    let mut link = Link::<R>::new(stream, options.get_write_timeout());
    let (room, rooms) = async_channel::bounded(1);
    let mut closing = Vec::new();
    let establishing = run(&mut core, &mut link, None, &rooms, &mut closing, None);
    if let Some(end) = establishing.await {
        link.shutdown().await;
        return Err(end.error());
    }
    let session = core.session();
    let (cmds, rx) = queue::unbounded();
    let shared = Arc::new(Shared {
        session_id: session.session_id().unwrap_or_default(),
        capabilities: session.peer_capabilities().clone(),
        framing: session.framing(),
        rpc_timeout: session.config().rpc_timeout(),
        notification_buffer: options.get_notification_buffer(),
        closed: AtomicBool::new(false),
        waiting: AtomicUsize::new(0),
        ended: Mutex::new(None),
        room,
    });
    let connection = Connection::new(
        |budget| {
            link.spend_from(budget);
            Box::pin(drive(core, link, rx, rooms, shared.clone()))
        },
        R::entry(),
    );
    Ok((
        Client {
            cmds,
            connection: connection.clone(),
            shared,
            runtime: PhantomData,
        },
        Driver::new(connection),
    ))
}

async fn drive<R: Runtime>(
    mut core: Core,
    mut link: Link<R>,
    cmds: queue::Receiver<Command>,
    rooms: Receiver<()>,
    shared: Arc<Shared>,
) {
    let mut closing = Vec::new();
    let end = run(
        &mut core,
        &mut link,
        Some(&cmds),
        &rooms,
        &mut closing,
        Some(&shared.closed),
    )
    .await
    .unwrap_or(SessionEnd::Close(CloseReason::Local));
    // Record the end before anyone is told, so `is_closed()` and later calls agree.
    *shared.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(end.clone());
    shared.closed.store(true, Ordering::SeqCst);
    cmds.close();
    // Commands queued behind the end get the same answer, never silence.
    while let Some(cmd) = cmds.try_recv() {
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
            Command::Streamed { mut sink, .. } => {
                use netconf_proto::client::DataSink;
                sink.end(Err(end.error()));
            }
        }
    }
    link.shutdown().await;
    for (reply, result) in closing {
        let mut result = result;
        let said = result.try_recv().ok().flatten();
        let _ = reply.send(said.unwrap_or_else(|| Err(end.error())));
    }
}

/// How many queued commands the loop takes at once.
const COMMAND_BATCH: usize = 64;

/// Hands a handle's command to the core.
fn apply(core: &mut Core, cmd: Command, closing: &mut Vec<Closing>) {
    match cmd {
        Command::Rpc {
            body,
            timeout,
            reply,
        } => {
            if !reply.is_canceled() {
                core.submit(&body, timeout, reply, Instant::now());
            }
        }
        Command::Close { reply } => {
            let (waiter, result) = oneshot::channel();
            core.close(waiter, Instant::now());
            closing.push((reply, result));
        }
        Command::Subscribe(sink) => core.subscribe(sink),
        Command::Streamed {
            body,
            timeout,
            sink,
        } => {
            core.submit_streamed(&body, timeout, sink, Instant::now());
        }
    }
}

/// The loop: until the session ends (returns how), or, without the handles' `closed` flag,
/// until it is established (returns `None`). `closed` is set as soon as the session has
/// ended, before the core tells any waiter or stream. Each pass spends a step of the
/// link's budget (if it has one) and yields when the poll has none left.
async fn run<R: Runtime>(
    core: &mut Core,
    link: &mut Link<R>,
    cmds: Option<&queue::Receiver<Command>>,
    rooms: &Receiver<()>,
    closing: &mut Vec<Closing>,
    closed: Option<&AtomicBool>,
) -> Option<SessionEnd> {
    let until_established = closed.is_none();
    let mut handles_alive = cmds.is_some();
    // What a read during a write produced that only this loop may act on (the session's
    // end, its establishment).
    let mut held: Option<ClientOutput<Waiter>> = None;
    let mut alarm = Alarm::<R>::new();
    loop {
        let deadline = loop {
            if let Some(closed) = closed {
                if core.session().is_closed() {
                    closed.store(true, Ordering::SeqCst);
                }
            }
            match held.take().unwrap_or_else(|| core.poll()) {
                ClientOutput::Transmit(bytes) => {
                    // Reading on while the write waits (no write-write deadlock), but not
                    // past a streamed reply's window: reading resumes when its reader makes
                    // room. The replies read meanwhile go to their callers at once, not
                    // after the rest of a large request the peer is slow to take.
                    let reading = core.wants_read();
                    let mut on_read = |r: std::io::Result<&[u8]>| {
                        core.handle_read(r, Instant::now());
                        loop {
                            // As above: marked closed before any waiter or stream hears of
                            // the end (only a read closes the session, not the polling).
                            if let Some(closed) = closed {
                                if core.session().is_closed() {
                                    closed.store(true, Ordering::SeqCst);
                                }
                            }
                            match core.poll_events() {
                                ClientOutput::Complete(waiter, result) => {
                                    let _ = waiter.send(result);
                                }
                                ClientOutput::Wait(_) => break,
                                // Established (the hello's write) or Ended: the loop's.
                                other => {
                                    held = Some(other);
                                    return match held {
                                        Some(ClientOutput::Ended(_)) => AfterRead::Stop,
                                        _ => AfterRead::Pause,
                                    };
                                }
                            }
                        }
                        AfterRead::reading_if(core.wants_read())
                    };
                    let written = link
                        .write_all_resuming(&bytes, Some(&mut on_read), reading, Some(rooms))
                        .await;
                    match written {
                        // The session ended during the write: the rest of it is abandoned
                        // (and nothing more is sent: a TLS record may have been cut).
                        Err(_) if matches!(held, Some(ClientOutput::Ended(_))) => {}
                        Err(e) => core.handle_write_error(&e),
                        Ok(()) => {}
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
        // Everything the last step produced is out; the next waits for the next poll if this
        // one has spent its steps (the yield wakes the connection: it is the driver's then).
        link.step().await;
        enum Step {
            Command(Option<Command>),
            Read(std::io::Result<usize>),
            Room,
            Timeout,
        }
        let reading = core.wants_read() && link.can_read();
        let step = {
            let cmd = async {
                match cmds {
                    Some(rx) if handles_alive => Step::Command(rx.recv().await),
                    _ => std::future::pending().await,
                }
            };
            let read = when(reading, async { Step::Read(link.read().await) });
            // A streamed reply's reader made room: reading may go on. Only listened for
            // while reading is held back (a listener costs an allocation and two locks per
            // wait); a signal sent meanwhile waits in the channel and costs one spare turn.
            let room = when(!reading, async {
                let _ = rooms.recv().await;
                Step::Room
            });
            let timer = async {
                alarm.ring_by(deadline).await;
                Step::Timeout
            };
            cmd.or(read).or(room).or(timer).await
        };
        match step {
            Step::Command(Some(cmd)) => {
                apply(core, cmd, closing);
                // The commands queued meanwhile too (up to a window's worth), so that
                // pipelined requests are encrypted and written together.
                if let Some(rx) = cmds {
                    for _ in 1..COMMAND_BATCH {
                        let Some(cmd) = rx.try_recv() else { break };
                        apply(core, cmd, closing);
                    }
                }
            }
            Step::Room => {}
            Step::Command(None) => {
                // Every handle is gone: end the session politely.
                handles_alive = false;
                let (nobody, _) = oneshot::channel();
                core.close(nobody, Instant::now());
            }
            Step::Read(read) => core.handle_read(link.bytes(read), Instant::now()),
            Step::Timeout => core.handle_timeout(Instant::now()),
        }
    }
}
