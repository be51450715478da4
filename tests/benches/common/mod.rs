//! What the loopback benchmarks share: the payloads, the servers of every adapter (one
//! handler that answers by what the request asks for), one client type over the three
//! adapters, and the exact wire sizes of a tiny `<get-config>` round trip for the raw
//! baselines.
//!
//! A request says what it wants in its subtree filter, `<bench xmlns="urn:bench">KIND</bench>`:
//! - no filter: a tiny `<data>` ([`TINY_DATA`]);
//! - `10m` / `big`: the prebuilt 10 MB / 256 MiB payload as one `Reply::data_unchecked(Bytes)`;
//! - `10m-stream` / `big-stream`: the same bytes as a streamed answer, 64 KiB `Bytes` slices
//!   of the prebuilt payload (no copy), pulled as the transport takes them.

#![allow(dead_code)] // each bench binary uses its part

pub mod in_memory;
pub mod raw_async;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{AsyncReadExt, StreamExt};
use netconf_proto::operations::{Datastore, Filter, GetConfig};
use netconf_proto::server::ServerOptions;
use netconf_proto::tls::{ClientTlsOptions, ServerTlsOptions};
use netconf_proto::{Config, Reply, Request};
use netconf_tests::certs::Pki;
use netconf_tests::pair::{drain, Pair};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

/// 10 MB, as in INTEROP.md's "Figures seen".
pub const TEN_MB: usize = 10_000_000;
/// The large reply: 256 MiB.
pub const BIG: usize = 256 << 20;
/// Streamed answers' piece size (and the size of the readers' buffer).
pub const PIECE: usize = 64 * 1024;
/// The tiny `<data>` content.
pub const TINY_DATA: &[u8] = b"<top xmlns=\"urn:bench\"><n>1</n></top>";

/// Configuration-like XML of exactly `len` bytes (whole elements, padded with newlines).
pub fn payload(len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    loop {
        let item = format!(
            "<interface><name>ge-0/0/{i}</name><description>uplink {i} to the core</description>\
             <mtu>9000</mtu><enabled>true</enabled></interface>"
        );
        if out.len() + item.len() > len {
            break;
        }
        out.extend_from_slice(item.as_bytes());
        i += 1;
    }
    out.resize(len, b'\n');
    Bytes::from(out)
}

/// `data` as 64 KiB slices (no copy).
pub fn slices(data: Bytes) -> impl Iterator<Item = Bytes> + Send + 'static {
    let len = data.len();
    (0..len)
        .step_by(PIECE)
        .map(move |at| data.slice(at..(at + PIECE).min(len)))
}

/// The payloads the servers answer with; `big` only where a bench needs it.
#[derive(Clone)]
pub struct Payloads {
    pub ten: Bytes,
    pub big: Bytes,
}

impl Payloads {
    pub fn new(with_big: bool) -> Payloads {
        Payloads {
            ten: payload(TEN_MB),
            big: if with_big { payload(BIG) } else { Bytes::new() },
        }
    }

    /// What `req` asks for.
    fn choose(&self, req: &Request) -> Choice {
        // Cheap for the tiny request, which has no filter: the handler's own work is not
        // what the benchmarks compare. `str::find` set up a searcher per request (a tenth
        // of the library's cost per round trip), and a byte-by-byte window compare cost
        // about 470 instructions; one searcher, made once, costs a few dozen.
        const MARK: &[u8] = b"urn:bench\">";
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(MARK));
        let body = req.body.bytes();
        let kind = FINDER
            .find(body)
            .map(|at| &body[at + MARK.len()..])
            .and_then(|rest| rest.split(|b| *b == b'<').next())
            .unwrap_or_default();
        match kind {
            b"10m" => Choice::Data(self.ten.clone()),
            b"10m-stream" => Choice::Stream(self.ten.clone()),
            b"big" => Choice::Data(self.big.clone()),
            b"big-stream" => Choice::Stream(self.big.clone()),
            _ => Choice::Tiny,
        }
    }
}

enum Choice {
    Tiny,
    Data(Bytes),
    Stream(Bytes),
}

/// The request for `kind` (see the module docs); `""` is the tiny `<get-config>`.
pub fn op(kind: &str) -> GetConfig {
    let op = GetConfig::new(Datastore::Running);
    if kind.is_empty() {
        op
    } else {
        op.filter(
            Filter::subtree(format!("<bench xmlns=\"urn:bench\">{kind}</bench>")).expect("filter"),
        )
    }
}

/// The handler of every blocking server.
pub fn blocking_answer(p: &Payloads, req: &Request) -> netconf_blocking::Answer {
    match p.choose(req) {
        Choice::Tiny => Reply::data_unchecked(Bytes::from_static(TINY_DATA)).into(),
        Choice::Data(b) => Reply::data_unchecked(b).into(),
        Choice::Stream(b) => netconf_blocking::Answer::stream(slices(b).map(Ok)),
    }
}

/// The handler of every async server (tokio and smol).
pub fn async_answer(p: &Payloads, req: &Request) -> netconf_async::Answer {
    match p.choose(req) {
        Choice::Tiny => Reply::data_unchecked(Bytes::from_static(TINY_DATA)).into(),
        Choice::Data(b) => Reply::data_unchecked(b).into(),
        Choice::Stream(b) => {
            netconf_async::Answer::stream(futures_lite::stream::iter(slices(b).map(Ok)))
        }
    }
}

/// The exact sizes of the tiny `<get-config>` request and its reply on the wire (chunked
/// framing, as our sessions negotiate), measured on an in-memory session pair: what the
/// raw baselines send and answer.
pub fn tiny_wire_sizes() -> (usize, usize) {
    let mut pair = Pair::new(Config::client(), Config::server());
    pair.establish();
    let now = pair.now;
    // A few requests first, so the message-id has the digits a benchmark run's has.
    for _ in 0..3 {
        pair.client_rpc(&op(""));
        pair.serve_with(|_| Reply::data_unchecked(Bytes::from_static(TINY_DATA)));
        pair.take_client_events();
    }
    pair.client.send_rpc(&op(""), now).expect("send_rpc");
    let request = drain(&mut pair.client).transmitted;
    let fed = netconf_tests::pair::feed_split(&mut pair.server, &request, &[], now);
    let id = fed
        .events
        .into_iter()
        .find_map(|e| match e {
            netconf_proto::Event::Rpc { id, .. } => Some(id),
            _ => None,
        })
        .expect("the server saw the request");
    pair.server
        .send_reply(id, Reply::data_unchecked(Bytes::from_static(TINY_DATA)))
        .expect("reply");
    let reply = drain(&mut pair.server).transmitted;
    (request.len(), reply.len())
}

// ----- TLS setup and raw rustls -----

/// Certificates and the rustls client configuration every TLS client shares.
pub struct TlsSetup {
    pub pki: Pki,
    pub client_config: Arc<ClientConfig>,
}

impl TlsSetup {
    pub fn new() -> TlsSetup {
        let pki = Pki::generate();
        let mut client = (*pki.client_config(true)).clone();
        // Every connect is a full handshake, for raw rustls and NETCONF alike.
        client.resumption = rustls::client::Resumption::disabled();
        TlsSetup {
            client_config: Arc::new(client),
            pki,
        }
    }

    pub fn client_tls(&self) -> ClientTlsOptions {
        ClientTlsOptions::new().rustls_config(self.client_config.clone())
    }

    /// What a NETCONF server is configured with: PEM identity and client CA, the library's
    /// defaults for everything else (ring, 4 KiB records).
    pub fn server_tls(&self) -> ServerTlsOptions {
        self.pki.server_tls_options()
    }

    /// The same with rustls' 16 KiB records.
    pub fn server_tls_16k(&self) -> ServerTlsOptions {
        let mut tls = self.server_tls();
        tls.max_record_plaintext = None;
        tls
    }
}

/// Raw rustls server: after the handshake it sends one byte, then answers each command
/// byte: `B` with the 10 MB payload, `G` with the 256 MiB one, `T` (followed by
/// `req - 1` bytes) with `rep` bytes.
pub fn raw_server(config: Arc<ServerConfig>, p: &Payloads, req: usize, rep: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let p = p.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            let p = p.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let conn = ServerConnection::new(config).expect("server connection");
                let mut tls = StreamOwned::new(conn, stream);
                let _ = raw_serve(&mut tls, &p, req, rep);
            });
        }
    });
    addr
}

fn raw_serve(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    p: &Payloads,
    req: usize,
    rep: usize,
) -> std::io::Result<()> {
    tls.write_all(b"R")?;
    tls.flush()?;
    let mut cmd = [0u8; 1];
    let mut rest = vec![0u8; req - 1];
    let answer = vec![b'a'; rep];
    loop {
        if tls.read(&mut cmd)? == 0 {
            return Ok(());
        }
        match cmd[0] {
            b'B' => tls.write_all(&p.ten)?,
            b'G' => tls.write_all(&p.big)?,
            b'T' => {
                tls.read_exact(&mut rest)?;
                tls.write_all(&answer)?;
            }
            _ => return Ok(()),
        }
        tls.flush()?;
    }
}

pub type RawClient = StreamOwned<ClientConnection, TcpStream>;

pub fn raw_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> RawClient {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = ClientConnection::new(config.clone(), name).expect("client connection");
    let mut tls = StreamOwned::new(conn, sock);
    let mut ready = [0u8; 1];
    tls.read_exact(&mut ready).expect("ready byte");
    tls
}

/// A server of one adapter; `stop` shuts it down.
pub struct AnyServer {
    pub addr: String,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl AnyServer {
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Drop for AnyServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Where a server listens.
pub enum Listen<'a> {
    Tls(&'a netconf_proto::tls::ServerTlsOptions),
    Ssh(&'a netconf_ssh::SshServer),
}

/// Starts a server of `adapter` ("blocking", "tokio", "smol"). The tokio server gets its
/// own 2-worker runtime (as if it were another process); the smol server runs on smol's
/// global executor, as `netconf-smol` does by default.
pub fn start_server(adapter: &str, listen: Listen<'_>, p: &Payloads) -> AnyServer {
    let p = p.clone();
    match adapter {
        "blocking" => {
            let server = netconf_blocking::Server::new(ServerOptions::new(), move |req, _| {
                blocking_answer(&p, req)
            });
            let addr = match listen {
                Listen::Tls(tls) => server.listen_tls("127.0.0.1:0", tls),
                Listen::Ssh(ssh) => server.listen_ssh("127.0.0.1:0", ssh),
            }
            .expect("blocking server");
            AnyServer {
                addr: format!("127.0.0.1:{}", addr.port()),
                stop: Some(Box::new(move || server.shutdown())),
            }
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("bench-server")
                .enable_all()
                .build()
                .expect("server runtime");
            let server = netconf_tokio::Server::new(ServerOptions::new(), move |req, _| {
                let answer = async_answer(&p, &req);
                async move { answer }
            });
            let addr = rt
                .block_on(async {
                    match listen {
                        Listen::Tls(tls) => server.listen_tls("127.0.0.1:0", tls).await,
                        Listen::Ssh(ssh) => server.listen_ssh("127.0.0.1:0", ssh).await,
                    }
                })
                .expect("tokio server");
            AnyServer {
                addr: format!("127.0.0.1:{}", addr.port()),
                stop: Some(Box::new(move || {
                    rt.block_on(server.shutdown());
                    rt.shutdown_timeout(Duration::from_secs(2));
                })),
            }
        }
        "smol" => {
            let server = netconf_smol::Server::new(ServerOptions::new(), move |req, _| {
                let answer = async_answer(&p, &req);
                async move { answer }
            });
            let addr = smol::block_on(async {
                match listen {
                    Listen::Tls(tls) => server.listen_tls("127.0.0.1:0", tls).await,
                    Listen::Ssh(ssh) => server.listen_ssh("127.0.0.1:0", ssh).await,
                }
            })
            .expect("smol server");
            AnyServer {
                addr: format!("127.0.0.1:{}", addr.port()),
                stop: Some(Box::new(move || smol::block_on(server.shutdown()))),
            }
        }
        other => panic!("no adapter {other}"),
    }
}

/// How a client connects.
pub enum Connect<'a> {
    Tls(&'a netconf_proto::tls::ClientTlsOptions),
    Ssh(&'a netconf_ssh::ClientOptions),
}

/// A client of one adapter, driven from the benchmark's (plain) thread: the blocking
/// client directly, the tokio client through `block_on` on its runtime (multi-thread, 2
/// workers, what `#[tokio::main]` gives here; or current-thread), the smol client through
/// `smol::block_on` with its driver on smol's global executor.
pub enum AnyClient {
    Blocking(netconf_blocking::Client),
    Tokio(netconf_tokio::Client, Arc<tokio::runtime::Runtime>),
    Smol(netconf_smol::Client),
}

/// What one streamed get-config took.
#[derive(Debug, Clone, Copy)]
pub struct Streamed {
    /// From the call to the first payload byte in the caller's hands.
    pub first_byte: Duration,
    /// From the call to the end of the reply.
    pub total: Duration,
    pub bytes: usize,
}

impl AnyClient {
    /// Connects a client of `adapter` ("blocking", "tokio", "tokio_current_thread", "smol").
    pub fn connect(adapter: &str, addr: &str, how: Connect<'_>) -> AnyClient {
        match adapter {
            "blocking" => AnyClient::Blocking(
                match how {
                    Connect::Tls(tls) => netconf_blocking::Client::connect_tls(addr, tls),
                    Connect::Ssh(ssh) => netconf_blocking::Client::connect_ssh(addr, ssh),
                }
                .expect("blocking client"),
            ),
            "tokio" | "tokio_current_thread" => {
                let rt = if adapter == "tokio" {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("bench-client")
                        .enable_all()
                        .build()
                } else {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                }
                .expect("client runtime");
                let client = rt
                    .block_on(async {
                        match how {
                            Connect::Tls(tls) => {
                                netconf_tokio::Client::connect_tls(addr, tls).await
                            }
                            Connect::Ssh(ssh) => {
                                netconf_tokio::Client::connect_ssh(addr, ssh).await
                            }
                        }
                    })
                    .expect("tokio client");
                AnyClient::Tokio(client, Arc::new(rt))
            }
            "smol" => AnyClient::Smol(
                smol::block_on(async {
                    match how {
                        Connect::Tls(tls) => netconf_smol::Client::connect_tls(addr, tls).await,
                        Connect::Ssh(ssh) => netconf_smol::Client::connect_ssh(addr, ssh).await,
                    }
                })
                .expect("smol client"),
            ),
            other => panic!("no adapter {other}"),
        }
    }

    /// One buffered `call`; returns the `<data>` length.
    pub fn call(&self, op: &GetConfig) -> usize {
        match self {
            AnyClient::Blocking(c) => c.call(op).expect("get-config").len(),
            AnyClient::Tokio(c, rt) => rt.block_on(c.call(op)).expect("get-config").len(),
            AnyClient::Smol(c) => smol::block_on(c.call(op)).expect("get-config").len(),
        }
    }

    /// One `call_streamed`, read to its end into `buf` (as a program copying the reply to
    /// a file would); returns the times and the length.
    pub fn streamed(&self, op: &GetConfig, buf: &mut [u8]) -> Streamed {
        let t = Instant::now();
        match self {
            AnyClient::Blocking(c) => {
                let mut r = c.call_streamed(op).expect("get-config");
                let mut first = None;
                let mut bytes = 0;
                loop {
                    let n = r.read(buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    first.get_or_insert_with(|| t.elapsed());
                    bytes += n;
                }
                Streamed {
                    first_byte: first.unwrap_or_default(),
                    total: t.elapsed(),
                    bytes,
                }
            }
            AnyClient::Tokio(c, rt) => rt.block_on(streamed_async(c, op, buf, t)),
            AnyClient::Smol(c) => smol::block_on(streamed_async(c, op, buf, t)),
        }
    }

    /// `total` tiny get-configs with `depth` in flight (threads for the blocking client,
    /// tasks for the async ones, all on this one session).
    /// `total` tiny calls with `depth` in flight. The blocking client makes them from the
    /// threads of `pool` (each thread one call at a time), or without a pool from this one
    /// thread with `send` and `recv` (a window of `depth` requests).
    pub fn pipelined(&self, pool: Option<&ThreadPool>, total: usize, depth: usize) {
        let each = total / depth;
        match self {
            AnyClient::Blocking(c) => match pool {
                Some(pool) => pool.run(),
                None => send_recv_window(c, total, depth),
            },
            AnyClient::Tokio(c, rt) => rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..depth {
                    let c = c.clone();
                    tasks.spawn(async move {
                        let op = op("");
                        for _ in 0..each {
                            c.call(&op).await.expect("get-config");
                        }
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("task");
                }
            }),
            AnyClient::Smol(c) => smol::block_on(async {
                let tasks: Vec<_> = (0..depth)
                    .map(|_| {
                        let c = c.clone();
                        smol::spawn(async move {
                            let op = op("");
                            for _ in 0..each {
                                c.call(&op).await.expect("get-config");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
            }),
        }
    }

    /// `n` tiny calls made one after the other by a task spawned on the client's runtime
    /// (how an async program calls: no `block_on` per call), timed inside the task. `None`
    /// for the blocking client.
    pub fn calls_in_task(&self, n: u64) -> Option<Duration> {
        async fn calls<R: netconf_async::Runtime>(c: netconf_async::Client<R>, n: u64) -> Duration {
            let op = op("");
            let t = Instant::now();
            for _ in 0..n {
                c.call(&op).await.expect("get-config");
            }
            t.elapsed()
        }
        match self {
            AnyClient::Blocking(_) => None,
            AnyClient::Tokio(c, rt) => {
                Some(rt.block_on(rt.spawn(calls(c.clone(), n))).expect("task"))
            }
            AnyClient::Smol(c) => Some(smol::block_on(smol::spawn(calls(c.clone(), n)))),
        }
    }

    pub fn blocking(&self) -> Option<&netconf_blocking::Client> {
        match self {
            AnyClient::Blocking(c) => Some(c),
            _ => None,
        }
    }

    pub fn close(self) {
        match self {
            AnyClient::Blocking(c) => drop(c.close()),
            AnyClient::Tokio(c, rt) => drop(rt.block_on(c.close())),
            AnyClient::Smol(c) => drop(smol::block_on(c.close())),
        }
    }
}

async fn streamed_async<R: netconf_async::Runtime>(
    c: &netconf_async::Client<R>,
    op: &GetConfig,
    buf: &mut [u8],
    t: Instant,
) -> Streamed {
    let mut r = c.call_streamed(op).await.expect("get-config");
    let mut first = None;
    let mut bytes = 0;
    loop {
        let n = r.read(buf).await.expect("read");
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| t.elapsed());
        bytes += n;
    }
    Streamed {
        first_byte: first.unwrap_or_default(),
        total: t.elapsed(),
        bytes,
    }
}

/// Time to the first piece of a streamed reply (pieces, not reads: nothing is copied),
/// then the rest drained.
pub fn first_piece(client: &AnyClient, op: &GetConfig) -> Streamed {
    let t = Instant::now();
    match client {
        AnyClient::Blocking(c) => {
            let mut r = c.call_streamed(op).expect("get-config");
            let mut first = None;
            let mut bytes = 0;
            for piece in r.pieces() {
                let piece = piece.expect("piece");
                first.get_or_insert_with(|| t.elapsed());
                bytes += piece.len();
            }
            Streamed {
                first_byte: first.unwrap_or_default(),
                total: t.elapsed(),
                bytes,
            }
        }
        AnyClient::Tokio(c, rt) => rt.block_on(first_piece_async(c, op, t)),
        AnyClient::Smol(c) => smol::block_on(first_piece_async(c, op, t)),
    }
}

async fn first_piece_async<R: netconf_async::Runtime>(
    c: &netconf_async::Client<R>,
    op: &GetConfig,
    t: Instant,
) -> Streamed {
    let mut r = c.call_streamed(op).await.expect("get-config");
    let mut first = None;
    let mut bytes = 0;
    while let Some(piece) = r.next().await {
        let piece = piece.expect("piece");
        first.get_or_insert_with(|| t.elapsed());
        bytes += piece.len();
    }
    Streamed {
        first_byte: first.unwrap_or_default(),
        total: t.elapsed(),
        bytes,
    }
}

/// `depth` threads that each make `each` tiny calls on one blocking client when told to,
/// so the 64-in-flight benchmark does not time thread creation.
/// `total` tiny calls from this thread with `depth` in flight: `send` until `depth` are out,
/// then `recv` the oldest before each next `send`.
pub fn send_recv_window(client: &netconf_blocking::Client, total: usize, depth: usize) {
    let op = op("");
    let mut in_flight = std::collections::VecDeque::with_capacity(depth);
    for _ in 0..total {
        if in_flight.len() == depth {
            let id = in_flight.pop_front().expect("in flight");
            client.recv(id).expect("get-config");
        }
        in_flight.push_back(client.send(&op).expect("send"));
    }
    for id in in_flight {
        client.recv(id).expect("get-config");
    }
}

pub struct ThreadPool {
    go: Vec<std::sync::mpsc::Sender<usize>>,
    done: std::sync::mpsc::Receiver<()>,
    each: usize,
}

impl ThreadPool {
    pub fn new(client: &netconf_blocking::Client, depth: usize, each: usize) -> ThreadPool {
        let (done_tx, done) = std::sync::mpsc::channel();
        let go = (0..depth)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel::<usize>();
                let client = client.clone();
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    let op = op("");
                    while let Ok(calls) = rx.recv() {
                        for _ in 0..calls {
                            client.call(&op).expect("get-config");
                        }
                        let _ = done_tx.send(());
                    }
                });
                tx
            })
            .collect();
        ThreadPool { go, done, each }
    }

    /// One round: every thread makes its calls; returns when all are done.
    pub fn run(&self) {
        self.run_calls(self.each)
    }

    /// One round in which every thread makes `calls` calls, one after the other.
    pub fn run_calls(&self, calls: usize) {
        for tx in &self.go {
            tx.send(calls).expect("pool thread");
        }
        for _ in 0..self.go.len() {
            self.done.recv().expect("pool thread");
        }
    }
}

/// Peak resident memory of this process so far (VmHWM), in KiB.
pub fn vm_hwm_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
