//! A deliberately hostile NETCONF-over-TLS server on loopback, for drainage tests.
//!
//! The bug this project exists to avoid (ncclient's "Capability exchange timed out") happens
//! when decrypted bytes sit inside the TLS library while the client's loop waits for the socket
//! to become readable again. Whether a client has that bug depends entirely on *how the
//! ciphertext arrives*: how many TLS records per socket write, how many socket writes per
//! record, and which NETCONF messages share a record. A polite server never produces the bad
//! cases on loopback, so this one produces them on purpose.
//!
//! It drives a rustls [`ServerConnection`] by hand: ciphertext is collected with `write_tls`
//! into a `Vec` and then written to a real [`TcpStream`] exactly as the chosen [`Hostile`] mode
//! dictates. It speaks just enough NETCONF to serve one client per connection: it sends its
//! `<hello>`, reads the client's, answers every `<rpc>` with a `<data>` reply echoing the
//! request's `message-id`, answers `<close-session>` with `<ok/>` and then closes the TLS
//! session (close_notify) and the socket. Framing follows RFC 6242: `]]>]]>` for the hellos,
//! chunked afterwards when both hellos offer base:1.1.
//!
//! It is a test peer, not the library: messages are recognised by plain string search, and the
//! framing decoder ([`Deframer`]) favours obviousness over speed.
//!
//! Nothing here can hang a test: sockets have read and write timeouts
//! ([`HostileOptions::idle_timeout`]), worker threads end when their client disconnects, and
//! dropping the [`HostileServer`] (or calling [`HostileServer::stop`]) shuts every socket down
//! and joins every thread.
//!
//! Everything the server did and saw is recorded per connection in a [`ConnectionLog`]
//! (rpcs received, close-session seen, socket writes, TLS records per message) so tests can
//! assert that the hostile behaviour really happened, not just that the client coped.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

use crate::certs::Pki;

/// `urn:ietf:params:netconf:base:1.0`: end-of-message (`]]>]]>`) framing only.
pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
/// `urn:ietf:params:netconf:base:1.1`: chunked framing once both sides offer it.
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";
/// The NETCONF base namespace, used on `<hello>` and `<rpc-reply>`.
pub const NETCONF_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
/// The RFC 5277 notification namespace.
pub const NOTIFICATION_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
/// The end-of-message delimiter of base:1.0 framing.
pub const EOM: &[u8] = b"]]>]]>";

/// The session-id the server announces unless [`HostileOptions::session_id`] says otherwise.
pub const DEFAULT_SESSION_ID: u32 = 4242;
/// `max_fragment_size` in [`Hostile::TinyRecords`] mode: rustls' minimum, 32 bytes per record
/// including the 5-byte header, so about 27 bytes of plaintext per record.
pub const TINY_RECORD_SIZE: usize = 32;
/// Minimum size of the `<data>` payload in [`Hostile::Dribble`] replies: well over the 16 KiB
/// a single TLS record can carry, so the reply spans several maximum-size records.
pub const DRIBBLE_REPLY_DATA_LEN: usize = 40 * 1024;
/// The sizes of successive socket writes in [`Hostile::Dribble`] mode, cycled. They vary so
/// that record headers, chunk headers and UTF-8 characters get split at every kind of offset.
pub const DRIBBLE_WRITE_SIZES: [usize; 7] = [1, 3, 7, 2, 5, 4, 6];
/// Number of extra module capabilities in the [`Hostile::BigHello`] hello (about 9 KiB).
pub const BIG_HELLO_MODULES: usize = 80;
/// The notification [`Hostile::ReplyAndNotification`] sends in the same record as the reply.
pub const NOTIFICATION: &str =
    "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">\
<eventTime>2026-01-01T00:00:00Z</eventTime><event xmlns=\"urn:example\">x</event></notification>";

/// How the server misbehaves. Each mode reproduces one way real peers deliver bytes that a
/// TLS client loop with a drainage bug fails on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hostile {
    /// A well-behaved baseline: every message is one write of full-size records.
    Normal,
    /// Every message is cut into records of [`TINY_RECORD_SIZE`] bytes (the handshake too),
    /// and all records of one message go to the socket in ONE write. The socket then stays
    /// open, silent, until the client speaks. A client that decrypts one record per socket
    /// readiness event never sees the rest of the hello.
    TinyRecords,
    /// All ciphertext (handshake included) is written 1 to 7 bytes per socket write
    /// ([`DRIBBLE_WRITE_SIZES`]) with `TCP_NODELAY`, and every reply carries at least
    /// [`DRIBBLE_REPLY_DATA_LEN`] bytes of `<data>`, so one reply spans several maximum-size
    /// records, each of which arrives in hundreds of pieces.
    Dribble,
    /// The hello is larger than 4 KiB (base capabilities plus [`BIG_HELLO_MODULES`] module
    /// capabilities) and sent as one record in one write: more than a 4096-byte read returns.
    BigHello,
    /// The reply to the first rpc and a [`NOTIFICATION`] share ONE TLS record: a client that
    /// stops after the first complete message strands the second.
    ReplyAndNotification,
    /// The hello offers only base:1.0, so every message stays in `]]>]]>` framing even though
    /// the client offers base:1.1.
    Base10Only,
    /// Sends the first half of the reply to the first rpc, then nothing more (later rpcs are
    /// recorded but not answered) while keeping the socket open until the client closes it or
    /// the server is dropped. For RPC timeout tests.
    StallMidReply,
}

impl Hostile {
    /// Every mode, for tests that loop over all of them.
    pub const ALL: [Hostile; 7] = [
        Hostile::Normal,
        Hostile::TinyRecords,
        Hostile::Dribble,
        Hostile::BigHello,
        Hostile::ReplyAndNotification,
        Hostile::Base10Only,
        Hostile::StallMidReply,
    ];

    /// Whether this mode's hello offers base:1.1 (so chunked framing may follow).
    pub fn offers_base_1_1(self) -> bool {
        self != Hostile::Base10Only
    }

    /// Whether a client completes a get-config against this mode (all but the stalling one).
    pub fn answers_rpcs(self) -> bool {
        self != Hostile::StallMidReply
    }
}

/// How to start a [`HostileServer`].
#[derive(Clone, Debug)]
pub struct HostileOptions {
    /// The misbehaviour.
    pub mode: Hostile,
    /// The session-id announced in the server's hello.
    pub session_id: u32,
    /// The TLS configuration (certificate, client verification). The server adjusts
    /// `max_fragment_size` on a copy where its mode needs it.
    pub tls: Arc<ServerConfig>,
    /// Read and write timeout of every accepted socket: a worker that hears nothing from its
    /// client for this long gives up ([`Outcome::IdleTimeout`]). It bounds how long a
    /// [`Hostile::StallMidReply`] server keeps a silent connection open.
    pub idle_timeout: Duration,
}

impl HostileOptions {
    /// Options for `mode` with the given TLS config, session-id [`DEFAULT_SESSION_ID`] and a
    /// 5-second idle timeout.
    pub fn new(mode: Hostile, tls: Arc<ServerConfig>) -> HostileOptions {
        HostileOptions {
            mode,
            session_id: DEFAULT_SESSION_ID,
            tls,
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client sent `<close-session>`; the server replied `<ok/>`, sent close_notify and
    /// closed the socket.
    ClosedAfterCloseSession,
    /// The client closed the connection (close_notify or TCP EOF) without close-session.
    PeerClosed,
    /// Nothing arrived for [`HostileOptions::idle_timeout`].
    IdleTimeout,
    /// The server was stopped while the connection was open.
    Stopped,
    /// A TLS, framing or socket error (the handshake refusing a certificate ends up here).
    Error(String),
}

/// One NETCONF message (or piece of one) the server sent, and how it went on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// `"hello"`, `"rpc-reply"`, `"ok"`, `"rpc-reply+notification"` or `"partial rpc-reply"`.
    pub kind: &'static str,
    /// Framed plaintext length (framing included).
    pub plaintext_len: usize,
    /// TLS records the plaintext was encrypted into.
    pub tls_records: usize,
    /// Socket `write` calls it took to send those records.
    pub socket_writes: usize,
    /// The largest single socket write, in bytes.
    pub largest_socket_write: usize,
}

/// What the server saw and did on one connection. Snapshots come from
/// [`HostileServer::connections`]; the live record from [`HostileServer::log_handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLog {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the TLS handshake completed.
    pub handshake_done: bool,
    /// The client's hello, as received (without framing).
    pub client_hello: Option<String>,
    /// Whether chunked framing was in force after the hellos.
    pub chunked: bool,
    /// Every `<rpc>` received after the hello, as text, in order.
    pub rpcs: Vec<String>,
    /// The `message-id` of each rpc in [`ConnectionLog::rpcs`], if it had one.
    pub message_ids: Vec<Option<String>>,
    /// Whether one of the rpcs was a `<close-session>`.
    pub close_session: bool,
    /// Every NETCONF message sent, with its wire statistics.
    pub sent: Vec<SentMessage>,
    /// Socket `write` calls in total (handshake included).
    pub socket_writes: usize,
    /// Ciphertext bytes written in total.
    pub bytes_written: usize,
    /// The largest single socket write in bytes.
    pub largest_socket_write: usize,
    /// TLS records written in total (handshake included).
    pub tls_records_written: usize,
    /// `None` while the connection is being served.
    pub outcome: Option<Outcome>,
}

impl ConnectionLog {
    fn new(peer: SocketAddr) -> ConnectionLog {
        ConnectionLog {
            peer,
            handshake_done: false,
            client_hello: None,
            chunked: false,
            rpcs: Vec::new(),
            message_ids: Vec::new(),
            close_session: false,
            sent: Vec::new(),
            socket_writes: 0,
            bytes_written: 0,
            largest_socket_write: 0,
            tls_records_written: 0,
            outcome: None,
        }
    }

    /// The first sent message of the given kind, if any.
    pub fn sent_message(&self, kind: &str) -> Option<&SentMessage> {
        self.sent.iter().find(|m| m.kind == kind)
    }
}

/// State shared by the accept thread, the workers and the [`HostileServer`] handle.
#[derive(Debug, Default)]
struct Shared {
    /// One entry per accepted connection, in accept order.
    log: Arc<Mutex<Vec<ConnectionLog>>>,
    /// Notified whenever any log entry changes, for [`HostileServer::wait_until`].
    changed: Condvar,
    /// A clone of each open socket, so `stop` can shut it down and unblock its worker. A
    /// worker removes its entry before it ends: a lingering clone would keep the connection
    /// open and the client would never see EOF.
    live: Mutex<HashMap<usize, TcpStream>>,
    /// Worker threads, joined by `stop`.
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Set by `stop`; the accept loop and the workers check it.
    stopping: AtomicBool,
}

/// Locks a mutex, ignoring poisoning: a panicking worker must not hide the log from the test.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A hostile NETCONF-over-TLS server listening on `127.0.0.1:<ephemeral port>`.
///
/// One thread accepts; each accepted connection gets its own worker thread. Dropping the
/// handle stops the server (see [`HostileServer::stop`]).
#[derive(Debug)]
pub struct HostileServer {
    addr: SocketAddr,
    options: HostileOptions,
    shared: Arc<Shared>,
    accept_thread: Mutex<Option<JoinHandle<()>>>,
}

impl HostileServer {
    /// Starts a server in `mode` with mutual TLS from `pki` (client certificate required) and
    /// session-id [`DEFAULT_SESSION_ID`].
    pub fn start(mode: Hostile, pki: &Pki) -> io::Result<HostileServer> {
        Self::start_with(HostileOptions::new(mode, pki.server_config(true)))
    }

    /// Starts a server with explicit options.
    pub fn start_with(options: HostileOptions) -> io::Result<HostileServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept_thread = {
            let shared = shared.clone();
            let options = options.clone();
            thread::Builder::new()
                .name(format!("hostile-tls-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, options, shared))?
        };
        Ok(HostileServer {
            addr,
            options,
            shared,
            accept_thread: Mutex::new(Some(accept_thread)),
        })
    }

    /// The listening address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The misbehaviour of this server.
    pub fn mode(&self) -> Hostile {
        self.options.mode
    }

    /// The session-id this server announces.
    pub fn session_id(&self) -> u32 {
        self.options.session_id
    }

    /// A snapshot of every connection's log, in accept order.
    pub fn connections(&self) -> Vec<ConnectionLog> {
        lock(&self.shared.log).clone()
    }

    /// The live log itself, updated by the workers as they go.
    pub fn log_handle(&self) -> Arc<Mutex<Vec<ConnectionLog>>> {
        self.shared.log.clone()
    }

    /// Waits until `condition` holds for the connection logs, or `timeout` passes.
    /// Returns the snapshot that satisfied it, or `None` on timeout.
    ///
    /// Tests need this because the server's worker may record the end of a connection a
    /// moment after the client has already seen it.
    pub fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&[ConnectionLog]) -> bool,
    ) -> Option<Vec<ConnectionLog>> {
        let deadline = Instant::now() + timeout;
        let mut log = lock(&self.shared.log);
        loop {
            if condition(&log) {
                return Some(log.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            log = self
                .shared
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until the first connection has ended and returns its log, or `None` on timeout.
    pub fn wait_for_first_outcome(&self, timeout: Duration) -> Option<ConnectionLog> {
        self.wait_until(timeout, |log| {
            log.first().is_some_and(|c| c.outcome.is_some())
        })
        .map(|mut log| log.swap_remove(0))
    }

    /// Stops accepting, shuts down every open connection and joins all threads.
    /// Idempotent; also run on drop.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(accept_thread) = lock(&self.accept_thread).take() {
            // `accept` only returns when someone connects: be that someone.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = accept_thread.join();
        }
        // No worker can be added any more: the accept thread is gone.
        for stream in lock(&self.shared.live).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, options: HostileOptions, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(e) if is_transient_accept_error(&e) => continue,
            Err(_) => break,
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let index = {
            let mut log = lock(&shared.log);
            log.push(ConnectionLog::new(peer));
            log.len() - 1
        };
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.live).insert(index, clone);
        }
        let worker_shared = shared.clone();
        let worker_options = options.clone();
        let spawned = thread::Builder::new()
            .name(format!("hostile-tls-conn-{index}"))
            .spawn(move || serve_connection(stream, index, worker_options, worker_shared));
        match spawned {
            Ok(handle) => lock(&shared.workers).push(handle),
            Err(e) => {
                lock(&shared.live).remove(&index);
                lock(&shared.log)[index].outcome = Some(Outcome::Error(format!("spawn: {e}")));
            }
        }
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The body of a worker thread: serve, record the outcome, release the socket.
fn serve_connection(stream: TcpStream, index: usize, options: HostileOptions, shared: Arc<Shared>) {
    let outcome = match Worker::new(stream, index, &options, shared.clone()) {
        Ok(mut worker) => worker.run(),
        Err(e) => Outcome::Error(e),
    };
    let outcome =
        if shared.stopping.load(Ordering::SeqCst) && outcome != Outcome::ClosedAfterCloseSession {
            Outcome::Stopped
        } else {
            outcome
        };
    // Drop our clone before recording the end, so a test that waits for the outcome can
    // rely on the server's side of the socket being closed (after close-session the outcome
    // is recorded earlier, once close_notify and FIN are out).
    lock(&shared.live).remove(&index);
    lock(&shared.log)[index].outcome.get_or_insert(outcome);
    shared.changed.notify_all();
}

/// One connection's server side: the socket, the hand-driven rustls connection and the
/// NETCONF state (framing, stalled or not).
struct Worker {
    stream: TcpStream,
    tls: ServerConnection,
    mode: Hostile,
    session_id: u32,
    index: usize,
    shared: Arc<Shared>,
    deframer: Deframer,
    /// Set when the client's close_notify or TCP EOF has been seen.
    peer_closed: bool,
    /// Set once [`Hostile::StallMidReply`] has sent its half reply: nothing is sent any more.
    stalled: bool,
    /// Position in [`DRIBBLE_WRITE_SIZES`].
    dribble_step: usize,
}

impl Worker {
    fn new(
        stream: TcpStream,
        index: usize,
        options: &HostileOptions,
        shared: Arc<Shared>,
    ) -> Result<Worker, String> {
        let io_err = |e: io::Error| format!("socket setup: {e}");
        stream.set_nodelay(true).map_err(io_err)?;
        stream
            .set_read_timeout(Some(options.idle_timeout))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(options.idle_timeout))
            .map_err(io_err)?;

        let mut config = (*options.tls).clone();
        match options.mode {
            Hostile::TinyRecords => config.max_fragment_size = Some(TINY_RECORD_SIZE),
            // These modes promise full-size records whatever the caller's config says.
            Hostile::Dribble | Hostile::BigHello | Hostile::ReplyAndNotification => {
                config.max_fragment_size = None
            }
            Hostile::Normal | Hostile::Base10Only | Hostile::StallMidReply => {}
        }
        let mut tls = ServerConnection::new(Arc::new(config)).map_err(|e| format!("TLS: {e}"))?;
        // The 40 KiB Dribble reply must be accepted by `writer()` in one call.
        tls.set_buffer_limit(None);

        Ok(Worker {
            stream,
            tls,
            mode: options.mode,
            session_id: options.session_id,
            index,
            shared,
            deframer: Deframer::new(),
            peer_closed: false,
            stalled: false,
            dribble_step: 0,
        })
    }

    fn record(&self, update: impl FnOnce(&mut ConnectionLog)) {
        update(&mut lock(&self.shared.log)[self.index]);
        self.shared.changed.notify_all();
    }

    fn run(&mut self) -> Outcome {
        match self.serve() {
            Ok(outcome) => outcome,
            Err(e) => e,
        }
    }

    /// The NETCONF conversation. `Err` carries the outcome of an abnormal end.
    fn serve(&mut self) -> Result<Outcome, Outcome> {
        // TLS handshake: answer every flight until rustls says it is done.
        while self.tls.is_handshaking() {
            self.flush_tls()?;
            if !self.read_more()? {
                return Err(Outcome::Error(
                    "client left during the TLS handshake".into(),
                ));
            }
        }
        self.record(|log| log.handshake_done = true);
        // Session tickets (TLS 1.3) go out on their own, so that each NETCONF message below
        // is exactly its own records.
        self.flush_tls()?;

        let hello = server_hello(self.mode, self.session_id);
        self.send("hello", &frame(hello.as_bytes(), Framing::EndOfMessage))?;

        let Some(client_hello) = self.next_message()? else {
            return Ok(Outcome::PeerClosed);
        };
        let client_hello = String::from_utf8_lossy(&client_hello).into_owned();
        let chunked = self.mode.offers_base_1_1() && client_hello.contains(BASE_1_1);
        let framing = if chunked {
            Framing::Chunked
        } else {
            Framing::EndOfMessage
        };
        self.deframer.set_framing(framing);
        self.record(|log| {
            log.client_hello = Some(client_hello);
            log.chunked = chunked;
        });

        let mut answered = 0usize;
        loop {
            let Some(rpc) = self.next_message()? else {
                return Ok(Outcome::PeerClosed);
            };
            let rpc = String::from_utf8_lossy(&rpc).into_owned();
            let id = message_id(&rpc).map(str::to_owned);
            let is_close = rpc.contains("close-session");
            self.record(|log| {
                log.rpcs.push(rpc);
                log.message_ids.push(id.clone());
                log.close_session |= is_close;
            });
            if self.stalled {
                continue;
            }
            let id = id.as_deref();
            if is_close {
                self.send("ok", &frame(rpc_reply(id, "<ok/>").as_bytes(), framing))?;
                self.close_gracefully();
                return Ok(Outcome::ClosedAfterCloseSession);
            }
            let reply = frame(
                rpc_reply(id, &data_body(self.mode, answered)).as_bytes(),
                framing,
            );
            let first = answered == 0;
            answered += 1;
            match self.mode {
                Hostile::StallMidReply if first => {
                    self.send("partial rpc-reply", &reply[..reply.len() / 2])?;
                    self.stalled = true;
                }
                Hostile::ReplyAndNotification if first => {
                    let mut both = reply;
                    both.extend_from_slice(&frame(NOTIFICATION.as_bytes(), framing));
                    self.send("rpc-reply+notification", &both)?;
                }
                _ => self.send("rpc-reply", &reply)?,
            }
        }
    }

    /// The next complete NETCONF message from the client, reading the socket as needed.
    /// `None` once the client has closed and no complete message is left.
    fn next_message(&mut self) -> Result<Option<Vec<u8>>, Outcome> {
        loop {
            match self.deframer.next_message() {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(e) => return Err(Outcome::Error(format!("client framing: {e}"))),
            }
            if self.peer_closed {
                return Ok(None);
            }
            // Loop back to the deframer even if this read also saw the close: the last
            // message and the close_notify often arrive together.
            self.read_more()?;
        }
    }

    /// Reads the socket once and follows the drain rule: every byte goes through `read_tls`
    /// and `process_new_packets`, and every decrypted byte goes to the deframer before we
    /// return. Returns `false` once the client has closed (EOF or close_notify).
    fn read_more(&mut self) -> Result<bool, Outcome> {
        let mut buf = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Outcome::IdleTimeout)
                }
                Err(e) => return Err(Outcome::Error(format!("socket read: {e}"))),
            }
        };
        if n == 0 {
            // Tell rustls about the EOF so it can tell a truncation from a clean close.
            let _ = self.tls.read_tls(&mut io::empty());
            self.peer_closed = true;
            self.process_and_drain()?;
            return Ok(false);
        }
        let mut input = &buf[..n];
        while !input.is_empty() {
            match self.tls.read_tls(&mut input) {
                Ok(_) => {}
                Err(e) => return Err(Outcome::Error(format!("TLS read: {e}"))),
            }
            self.process_and_drain()?;
        }
        Ok(!self.peer_closed)
    }

    /// `process_new_packets`, then move all plaintext from `reader()` into the deframer.
    fn process_and_drain(&mut self) -> Result<(), Outcome> {
        if let Err(e) = self.tls.process_new_packets() {
            // rustls has queued an alert describing the failure: send it, best effort.
            let _ = self.flush_tls();
            return Err(Outcome::Error(format!("TLS: {e}")));
        }
        let mut plain = [0u8; 16 * 1024];
        loop {
            match self.tls.reader().read(&mut plain) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Ok(n) => self.deframer.push(&plain[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Err(e) => return Err(Outcome::Error(format!("TLS reader: {e}"))),
            }
        }
    }

    /// All ciphertext rustls has queued, as whole records.
    fn take_ciphertext(&mut self) -> Result<Vec<u8>, Outcome> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .map_err(|e| Outcome::Error(format!("TLS write: {e}")))?;
        }
        Ok(out)
    }

    /// Sends whatever TLS-level output is pending (handshake flights, tickets, alerts).
    fn flush_tls(&mut self) -> Result<(), Outcome> {
        let ciphertext = self.take_ciphertext()?;
        self.emit(&ciphertext)?;
        Ok(())
    }

    /// Encrypts one framed NETCONF message (or the concatenation the mode calls for) with a
    /// single `writer().write`, and writes the resulting records as the mode dictates.
    fn send(&mut self, kind: &'static str, framed: &[u8]) -> Result<(), Outcome> {
        // Anything rustls queued earlier goes first, so the statistics below are this
        // message's alone.
        self.flush_tls()?;
        let written = self
            .tls
            .writer()
            .write(framed)
            .map_err(|e| Outcome::Error(format!("TLS writer: {e}")))?;
        if written != framed.len() {
            return Err(Outcome::Error(format!(
                "rustls took {written} of {} plaintext bytes",
                framed.len()
            )));
        }
        let ciphertext = self.take_ciphertext()?;
        let (socket_writes, largest_socket_write) = self.emit(&ciphertext)?;
        let message = SentMessage {
            kind,
            plaintext_len: framed.len(),
            tls_records: count_tls_records(&ciphertext),
            socket_writes,
            largest_socket_write,
        };
        self.record(|log| log.sent.push(message));
        Ok(())
    }

    /// Writes ciphertext to the socket: in [`Hostile::Dribble`] mode 1-7 bytes per write,
    /// otherwise all of it in one write (looping only if the kernel takes less). Returns the
    /// number of `write` calls and the largest one.
    fn emit(&mut self, ciphertext: &[u8]) -> Result<(usize, usize), Outcome> {
        let mut rest = ciphertext;
        let mut writes = 0;
        let mut largest = 0;
        while !rest.is_empty() {
            let want = if self.mode == Hostile::Dribble {
                let size = DRIBBLE_WRITE_SIZES[self.dribble_step % DRIBBLE_WRITE_SIZES.len()];
                self.dribble_step += 1;
                size.min(rest.len())
            } else {
                rest.len()
            };
            let n = match self.stream.write(&rest[..want]) {
                Ok(0) => return Err(Outcome::Error("socket write returned 0".into())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Outcome::Error(format!("socket write: {e}"))),
            };
            // A no-op on a TcpStream, kept to make the intent explicit: each piece leaves now.
            let _ = self.stream.flush();
            writes += 1;
            largest = largest.max(n);
            rest = &rest[n..];
        }
        let records = count_tls_records(ciphertext);
        self.record(|log| {
            log.socket_writes += writes;
            log.bytes_written += ciphertext.len();
            log.largest_socket_write = log.largest_socket_write.max(largest);
            log.tls_records_written += records;
        });
        Ok((writes, largest))
    }

    /// After `<ok/>` to close-session: close_notify, FIN, then read until the client closes
    /// too. Closing with unread input would make the kernel send RST, which can destroy the
    /// `<ok/>` before the client reads it.
    ///
    /// The outcome is recorded before the lingering read, so a test that waits for it while
    /// its client is still open does not wait for the linger to time out.
    fn close_gracefully(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush_tls();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.record(|log| log.outcome = Some(Outcome::ClosedAfterCloseSession));
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut sink = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// The server's `<hello>` for `mode`, with an XML declaration as real servers send it.
pub fn server_hello(mode: Hostile, session_id: u32) -> String {
    let mut capabilities = vec![BASE_1_0.to_owned()];
    if mode.offers_base_1_1() {
        capabilities.push(BASE_1_1.to_owned());
    }
    capabilities.push("urn:ietf:params:netconf:capability:candidate:1.0".to_owned());
    capabilities.push("urn:ietf:params:netconf:capability:notification:1.0".to_owned());
    capabilities.push("urn:ietf:params:netconf:capability:interleave:1.0".to_owned());
    if mode == Hostile::BigHello {
        // `&amp;` on purpose: the client must unescape capability text.
        capabilities.extend((0..BIG_HELLO_MODULES).map(|i| {
            format!("urn:example:yang:module-{i:03}?module=example-module-{i:03}&amp;revision=2026-01-01")
        }));
    }
    let mut hello = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hello xmlns=\"{NETCONF_NS}\"><capabilities>"
    );
    for capability in capabilities {
        hello.push_str("<capability>");
        hello.push_str(&capability);
        hello.push_str("</capability>");
    }
    hello.push_str(&format!(
        "</capabilities><session-id>{session_id}</session-id></hello>"
    ));
    hello
}

/// An `<rpc-reply>` echoing `message_id` (quoted so the value's own quotes survive).
pub fn rpc_reply(message_id: Option<&str>, body: &str) -> String {
    match message_id {
        Some(id) if id.contains('"') => {
            format!("<rpc-reply message-id='{id}' xmlns=\"{NETCONF_NS}\">{body}</rpc-reply>")
        }
        Some(id) => {
            format!("<rpc-reply message-id=\"{id}\" xmlns=\"{NETCONF_NS}\">{body}</rpc-reply>")
        }
        None => format!("<rpc-reply xmlns=\"{NETCONF_NS}\">{body}</rpc-reply>"),
    }
}

/// The `<data>` answering the `index`-th rpc (0-based). In [`Hostile::Dribble`] mode it is
/// padded with `<item>` elements to at least [`DRIBBLE_REPLY_DATA_LEN`] bytes; the items carry
/// two-byte UTF-8 characters so that byte-wise splits land inside characters.
pub fn data_body(mode: Hostile, index: usize) -> String {
    let mut data = format!(
        "<data><top xmlns=\"urn:example\"><mode>{mode:?}</mode><rpc-index>{index}</rpc-index>"
    );
    if mode == Hostile::Dribble {
        let mut item = 0usize;
        while data.len() < DRIBBLE_REPLY_DATA_LEN {
            data.push_str(&format!(
                "<item><key>{item:05}</key><value>grüße aus dem testkit</value></item>"
            ));
            item += 1;
        }
    }
    data.push_str("</top></data>");
    data
}

/// The `message-id` attribute value of an `<rpc>` or `<rpc-reply>`, found by string search
/// (either quote style). Good enough for a test peer; the library parses XML properly.
pub fn message_id(xml: &str) -> Option<&str> {
    let start = xml.find("message-id=")? + "message-id=".len();
    let rest = &xml[start..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    value.find(quote).map(|end| &value[..end])
}

/// The `<session-id>` of a `<hello>`, found by string search.
pub fn hello_session_id(xml: &str) -> Option<u32> {
    let start = xml.find("<session-id>")? + "<session-id>".len();
    let end = start + xml[start..].find("</session-id>")?;
    xml[start..end].trim().parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Framing (RFC 6242)

/// A NETCONF framing mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// base:1.0: the message followed by `]]>]]>`.
    EndOfMessage,
    /// base:1.1: `\n#<len>\n<data>` chunks, then `\n##\n`.
    Chunked,
}

/// Frames one message. Chunked framing uses a single chunk (an empty message cannot be
/// chunk-framed, RFC 6242 requires at least one chunk of at least one byte).
pub fn frame(message: &[u8], framing: Framing) -> Vec<u8> {
    match framing {
        Framing::EndOfMessage => {
            let mut out = Vec::with_capacity(message.len() + EOM.len());
            out.extend_from_slice(message);
            out.extend_from_slice(EOM);
            out
        }
        Framing::Chunked => {
            assert!(
                !message.is_empty(),
                "chunked framing needs a non-empty message"
            );
            let mut out = format!("\n#{}\n", message.len()).into_bytes();
            out.extend_from_slice(message);
            out.extend_from_slice(b"\n##\n");
            out
        }
    }
}

/// The peer broke RFC 6242 framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramingError {
    /// Offset in the deframer's buffer (from the start of the current message).
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.reason, self.offset)
    }
}

impl std::error::Error for FramingError {}

/// A simple RFC 6242 decoder for the test kit: push bytes in any split, pull whole messages.
///
/// It starts in end-of-message framing (hellos); switch with [`Deframer::set_framing`] after
/// the hello exchange. Bytes already pushed but not yet consumed are decoded with the new
/// framing, which is what RFC 6242 prescribes for a client's rpc riding behind its hello.
/// Chunk headers are re-parsed on each call, but chunk data is only copied once a message is
/// complete, so large messages in tiny pieces stay cheap enough for tests.
#[derive(Clone, Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    framing: Framing,
    /// End-of-message framing: how far the delimiter search already got.
    eom_scanned: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

impl Deframer {
    /// A deframer in end-of-message framing.
    pub fn new() -> Deframer {
        Deframer {
            buf: Vec::new(),
            framing: Framing::EndOfMessage,
            eom_scanned: 0,
        }
    }

    /// The framing used for the next message.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Switches framing for everything not yet returned.
    pub fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
        self.eom_scanned = 0;
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as part of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, without its framing; `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        match self.framing {
            Framing::EndOfMessage => Ok(self.next_eom()),
            Framing::Chunked => self.next_chunked(),
        }
    }

    fn next_eom(&mut self) -> Option<Vec<u8>> {
        // Resume the search a delimiter's length back: it may straddle two pushes.
        let from = self.eom_scanned.saturating_sub(EOM.len() - 1);
        match find(&self.buf[from..], EOM) {
            Some(at) => {
                let end = from + at;
                let message = self.buf[..end].to_vec();
                self.buf.drain(..end + EOM.len());
                self.eom_scanned = 0;
                Some(message)
            }
            None => {
                self.eom_scanned = self.buf.len();
                None
            }
        }
    }

    fn next_chunked(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let buf = &self.buf;
        let error = |offset: usize, reason: &str| FramingError {
            offset,
            reason: reason.to_owned(),
        };
        let mut chunks = Vec::new();
        let mut pos = 0;
        loop {
            // "\n#" starts both a chunk header and the end-of-chunks marker.
            for (i, expected) in [b'\n', b'#'].into_iter().enumerate() {
                match buf.get(pos + i) {
                    None => return Ok(None),
                    Some(&b) if b != expected => {
                        return Err(error(pos + i, "expected a chunk header"));
                    }
                    Some(_) => {}
                }
            }
            let Some(&after_hash) = buf.get(pos + 2) else {
                return Ok(None);
            };
            if after_hash == b'#' {
                match buf.get(pos + 3) {
                    None => return Ok(None),
                    Some(b'\n') => {}
                    Some(_) => return Err(error(pos + 3, "expected newline after ##")),
                }
                if chunks.is_empty() {
                    return Err(error(pos, "end of chunks before any chunk"));
                }
                let mut message = Vec::new();
                for (start, end) in chunks {
                    message.extend_from_slice(&buf[start..end]);
                }
                self.buf.drain(..pos + 4);
                return Ok(Some(message));
            }
            // chunk-size = 1-9 followed by up to 9 digits, value at most 4294967295.
            let digits_start = pos + 2;
            let mut len: u64 = 0;
            let mut i = digits_start;
            loop {
                let Some(&b) = buf.get(i) else {
                    return Ok(None);
                };
                match b {
                    b'\n' if i > digits_start => break,
                    b'0' if i == digits_start => {
                        return Err(error(i, "chunk size with a leading zero"));
                    }
                    b'0'..=b'9' => {
                        len = len * 10 + u64::from(b - b'0');
                        if len > u64::from(u32::MAX) {
                            return Err(error(i, "chunk size above 4294967295"));
                        }
                    }
                    _ => return Err(error(i, "invalid character in chunk size")),
                }
                i += 1;
            }
            let start = i + 1;
            let end = start + usize::try_from(len).expect("chunk size fits usize");
            if buf.len() < end {
                return Ok(None);
            }
            chunks.push((start, end));
            pos = end;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// TLS record accounting

/// Counts TLS records in a ciphertext stream fed in arbitrary pieces, by walking the 5-byte
/// record headers (type, version, length). Lets a test see how the peer really packed its
/// bytes, independently of the peer's own statistics.
#[derive(Clone, Debug, Default)]
pub struct TlsRecordCounter {
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    records: usize,
    application_data: usize,
    largest_body: usize,
}

impl TlsRecordCounter {
    /// A counter at a record boundary.
    pub fn new() -> TlsRecordCounter {
        TlsRecordCounter::default()
    }

    /// Feeds the next ciphertext bytes.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
                if self.body_left == 0 {
                    self.records += 1;
                }
                continue;
            }
            let take = (5 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 5 {
                self.header_len = 0;
                let body = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.header[0] == 23 {
                    self.application_data += 1;
                }
                self.largest_body = self.largest_body.max(body);
                if body == 0 {
                    self.records += 1;
                } else {
                    self.body_left = body;
                }
            }
        }
    }

    /// Complete records seen so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Records of content type application_data (23) whose header was seen. Under TLS 1.3
    /// this includes the encrypted handshake.
    pub fn application_data_records(&self) -> usize {
        self.application_data
    }

    /// The largest record body length seen, in bytes.
    pub fn largest_record(&self) -> usize {
        self.largest_body
    }

    /// Whether the counter sits exactly at a record boundary.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }
}

/// Number of complete TLS records in `ciphertext`.
pub fn count_tls_records(ciphertext: &[u8]) -> usize {
    let mut counter = TlsRecordCounter::new();
    counter.feed(ciphertext);
    counter.records()
}
