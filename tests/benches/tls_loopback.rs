//! End-to-end NETCONF over TLS on a real loopback TCP socket, against raw rustls measured in
//! the same run with the same certificates, the same client config and the ring provider.
//!
//! The NETCONF servers run with the library's defaults (`ServerTlsOptions::new`), which cap
//! TLS records at `CLIENT_FRIENDLY_RECORD` (4 KiB of plaintext) so that ncclient's read loop
//! cannot strand a reply. The raw baseline is measured both with rustls' default 16 KiB records
//! (`raw_rustls`) and with 4 KiB records (`raw_rustls_4k`), so the cost of the record size and
//! the cost of the library can be told apart.
//!
//! Groups (each starts with its baselines):
//! - `get_config_10mb`: raw rustls (server thread writes 10 MB of plaintext through
//!   `StreamOwned`, the client reads it all with `StreamOwned`), then a `get-config` answered
//!   with the same 10 MB `<data>` by the netconf-blocking and netconf-tokio servers (the
//!   handlers return a prebuilt `Reply::data_unchecked(Bytes)`), each on an established
//!   session; `blocking_16k` is the blocking pair with 16 KiB records; the crossed pairs tell
//!   a client's cost from a server's.
//! - `in_memory_10mb`: the two halves of that reply without sockets: the server's
//!   `send_reply` until every ciphertext byte is handed out, and the client's
//!   `handle_ciphertext` in 64 KiB pieces up to the `Reply` event, against rustls encrypting
//!   (64 KiB buffer limit, ciphertext copied out) and decrypting the same bytes.
//! - `connect`: raw rustls TCP connect + full handshake (+ one byte from the server, so the
//!   server has checked the client certificate), then the blocking and tokio clients' connect
//!   + TLS + hello exchange. TLS resumption is disabled so every connect is a full handshake.
//! - `rpc_tiny`: one ~100-byte request, ~100-byte answer: raw rustls, then `<get/>` answered
//!   with `<ok/>` (blocking, tokio, and the crossed pairs).
//! - `pipelined_64`: 1024 tiny request/answers with 64 in flight: raw rustls (one thread,
//!   keeping 64 requests ahead), the tokio client (64 tasks sharing one session) and the
//!   blocking client (64 threads sharing one session).
//!
//! `tests/bench/run` turns criterion's estimates into the ratios in BENCHMARKS.md.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netconf_blocking::operations::{Datastore, Get, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::tls::{
    ClientTlsOptions, PemSource, ServerTlsOptions, CLIENT_FRIENDLY_RECORD,
};
use netconf_blocking::Reply;
use netconf_proto::{Config, Event, Output, RequestId, TlsSession};
use netconf_tests::certs::Pki;
use rustls::pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection, StreamOwned,
};

/// The reply payload: 10 MB, as in INTEROP.md's "Figures seen".
const SIZE: usize = 10_000_000;
/// Tiny request and answer size for the raw baseline (about an `<rpc><get/></rpc>` and an
/// `<rpc-reply><ok/></rpc-reply>` with their framing).
const TINY: usize = 100;
const PIPELINE_TOTAL: usize = 1024;
const PIPELINE_DEPTH: usize = 64;

/// Configuration-like XML of exactly `len` bytes (whole elements, padded with newlines).
fn payload(len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    for i in 0u64.. {
        let item = format!(
            "<interface><name>ge-0/0/{i}</name><description>uplink {i} to the core</description>\
             <mtu>9000</mtu><enabled>true</enabled></interface>"
        );
        if out.len() + item.len() > len {
            break;
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.resize(len, b'\n');
    Bytes::from(out)
}

struct Setup {
    pki: Pki,
    /// rustls' default record size (16 KiB of plaintext per record).
    server_16k: Arc<ServerConfig>,
    /// The record size our servers use by default (`CLIENT_FRIENDLY_RECORD`, 4 KiB).
    server_4k: Arc<ServerConfig>,
    client_config: Arc<ClientConfig>,
    data: Bytes,
}

impl Setup {
    fn new() -> Setup {
        let pki = Pki::generate();
        let mut client = (*pki.client_config(true)).clone();
        // Every connect is a full handshake, for raw rustls and NETCONF alike.
        client.resumption = rustls::client::Resumption::disabled();
        let server_16k = pki.server_config(true);
        let mut server_4k = (*server_16k).clone();
        server_4k.max_fragment_size = Some(CLIENT_FRIENDLY_RECORD);
        Setup {
            server_16k,
            server_4k: Arc::new(server_4k),
            client_config: Arc::new(client),
            data: payload(SIZE),
            pki,
        }
    }

    fn client_tls(&self) -> ClientTlsOptions {
        ClientTlsOptions::new().rustls_config(self.client_config.clone())
    }

    /// What a NETCONF server is configured with: PEM identity and client CA, the library's
    /// defaults for everything else (ring, 4 KiB records).
    fn server_tls(&self) -> ServerTlsOptions {
        ServerTlsOptions::new(
            PemSource::pem(self.pki.server_cert_pem.clone()),
            PemSource::pem(self.pki.server_key_pem.clone()),
            PemSource::pem(self.pki.ca_pem.clone()),
        )
    }

    /// The same with rustls' 16 KiB records.
    fn server_tls_16k(&self) -> ServerTlsOptions {
        let mut tls = self.server_tls();
        tls.max_record_plaintext = None;
        tls
    }
}

// ----- raw rustls -----

/// A raw rustls server: after the handshake it sends one byte, then answers each command
/// byte: `B` with the 10 MB payload, `T` (followed by TINY-1 bytes) with TINY bytes.
fn raw_server(config: Arc<ServerConfig>, data: Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let conn = ServerConnection::new(config).expect("server connection");
                let mut tls = StreamOwned::new(conn, stream);
                let _ = raw_serve(&mut tls, &data);
            });
        }
    });
    addr
}

fn raw_serve(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    data: &[u8],
) -> std::io::Result<()> {
    tls.write_all(b"R")?;
    tls.flush()?;
    let mut cmd = [0u8; 1];
    let mut rest = [0u8; TINY - 1];
    let answer = [b'a'; TINY];
    loop {
        if tls.read(&mut cmd)? == 0 {
            return Ok(());
        }
        match cmd[0] {
            b'B' => tls.write_all(data)?,
            b'T' => {
                tls.read_exact(&mut rest)?;
                tls.write_all(&answer)?;
            }
            _ => return Ok(()),
        }
        tls.flush()?;
    }
}

fn raw_connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = ClientConnection::new(config.clone(), name).expect("client connection");
    let mut tls = StreamOwned::new(conn, sock);
    let mut ready = [0u8; 1];
    tls.read_exact(&mut ready).expect("ready byte");
    tls
}

/// A netconf-blocking server answering get-config with `data` and anything else with `<ok/>`.
fn spawn_blocking_server(
    tls: ServerTlsOptions,
    data: Bytes,
) -> (netconf_blocking::Server, SocketAddr) {
    let server = netconf_blocking::Server::new(ServerOptions::new(), move |req, _info| {
        if req.operation.name == "get-config" {
            Reply::data_unchecked(data.clone())
        } else {
            Reply::Ok
        }
    });
    let addr = server
        .listen_tls("127.0.0.1:0", &tls)
        .expect("bind blocking server");
    (server, addr)
}

fn tiny_request() -> [u8; TINY] {
    let mut req = [b'r'; TINY];
    req[0] = b'T';
    req
}

// ----- in memory: each half of a 10 MB reply without sockets -----

const READ: usize = 64 * 1024;

/// Drains `m`: ciphertext it wants sent, and its events.
fn drain_tls(m: &mut TlsSession) -> (Vec<u8>, Vec<Event>) {
    let mut wire = Vec::new();
    let mut events = Vec::new();
    loop {
        match m.poll_output() {
            Output::Transmit(b) => wire.extend_from_slice(&b),
            Output::Event(e) => events.push(e),
            Output::Wait(_) => return (wire, events),
            _ => {}
        }
    }
}

struct TlsPair {
    client: TlsSession,
    server: TlsSession,
}

impl TlsPair {
    fn new(setup: &Setup) -> TlsPair {
        let now = Instant::now();
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut pair = TlsPair {
            client: TlsSession::client(setup.client_config.clone(), name, Config::client(), now)
                .expect("client"),
            server: TlsSession::server(setup.server_4k.clone(), Config::server(), 1, now)
                .expect("server"),
        };
        for _ in 0..20 {
            let (to_server, _) = drain_tls(&mut pair.client);
            pair.server
                .handle_ciphertext(&to_server, now)
                .expect("server input");
            let (to_client, _) = drain_tls(&mut pair.server);
            pair.client
                .handle_ciphertext(&to_client, now)
                .expect("client input");
            if pair.client.session().is_established() && pair.server.session().is_established() {
                let _ = drain_tls(&mut pair.client);
                return pair;
            }
        }
        panic!("in-memory TLS pair did not establish");
    }

    /// Sends a get-config from the client; returns the request the server saw.
    fn deliver_rpc(&mut self) -> RequestId {
        let now = Instant::now();
        self.client
            .session_mut()
            .send_rpc(&GetConfig::new(Datastore::Running), now)
            .expect("send");
        let (to_server, _) = drain_tls(&mut self.client);
        self.server
            .handle_ciphertext(&to_server, now)
            .expect("rpc in");
        let (_, events) = drain_tls(&mut self.server);
        events
            .into_iter()
            .find_map(|e| match e {
                Event::Rpc { id, .. } => Some(id),
                _ => None,
            })
            .expect("the rpc")
    }

    /// The server's reply as ciphertext (the server half, timed by the caller's `timer`).
    fn reply_ciphertext(&mut self, reply: &Reply, timer: &mut Duration) -> Vec<u8> {
        let id = self.deliver_rpc();
        let t = Instant::now();
        self.server
            .session_mut()
            .send_reply(id, reply.clone())
            .expect("reply");
        let mut pieces = Vec::new();
        while let Output::Transmit(b) = self.server.poll_output() {
            pieces.push(b);
        }
        *timer += t.elapsed();
        pieces.concat()
    }

    /// The client half: ciphertext in 64 KiB pieces up to the Reply event.
    fn receive(&mut self, wire: &[u8]) -> usize {
        let now = Instant::now();
        for piece in wire.chunks(READ) {
            self.client.handle_ciphertext(piece, now).expect("reply in");
        }
        loop {
            match self.client.poll_output() {
                Output::Event(Event::Reply { reply, .. }) => {
                    return reply.data().map_or(0, |d| d.len())
                }
                Output::Wait(_) => panic!("no reply"),
                _ => {}
            }
        }
    }
}

/// A raw rustls pair, handshake done in memory.
fn raw_pair(setup: &Setup, server_config: &Arc<ServerConfig>) -> (Connection, Connection) {
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut client: Connection = ClientConnection::new(setup.client_config.clone(), name)
        .expect("client")
        .into();
    let mut server: Connection = ServerConnection::new(server_config.clone())
        .expect("server")
        .into();
    let mut sink = vec![0u8; 64 * 1024];
    for _ in 0..20 {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).expect("write");
        }
        raw_feed(&mut server, &wire, &mut sink);
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).expect("write");
        }
        raw_feed(&mut client, &wire, &mut sink);
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return (client, server);
        }
    }
    panic!("raw pair did not establish");
}

/// Feeds ciphertext in 64 KiB pieces and reads the plaintext into `out` (from its start,
/// wrapping around if `out` is small). Returns the plaintext length.
fn raw_feed(conn: &mut Connection, wire: &[u8], out: &mut [u8]) -> usize {
    let mut got = 0;
    for mut piece in wire.chunks(READ) {
        while !piece.is_empty() {
            conn.read_tls(&mut piece).expect("read_tls");
            conn.process_new_packets().expect("records");
            loop {
                let at = got % out.len();
                match conn.reader().read(&mut out[at..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(_) => break,
                }
            }
        }
    }
    got
}

/// Encrypts `data` on `server` as a program writing to a socket would: 64 KiB buffer limit,
/// ciphertext copied out to `sink` (cleared, as a socket buffer drains). Returns nothing;
/// when `keep` is given the ciphertext is also kept there for the receive half.
fn raw_send(
    server: &mut Connection,
    data: &[u8],
    sink: &mut Vec<u8>,
    mut keep: Option<&mut Vec<u8>>,
) {
    let mut off = 0;
    while off < data.len() {
        off += server.writer().write(&data[off..]).expect("plaintext");
        while server.wants_write() {
            sink.clear();
            server.write_tls(sink).expect("ciphertext");
            if let Some(k) = keep.as_deref_mut() {
                k.extend_from_slice(sink);
            }
        }
    }
}

fn bench_in_memory(c: &mut Criterion) {
    let setup = Setup::new();
    let data = setup.data.clone();
    let reply = Reply::data_unchecked(data.clone());
    let mut g = c.benchmark_group("in_memory_10mb");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));

    let mut sink = Vec::with_capacity(128 * 1024);
    let mut plain = vec![0u8; SIZE];
    for (suffix, config) in [("", &setup.server_16k), ("_4k", &setup.server_4k)] {
        let (_client, mut server) = raw_pair(&setup, config);
        g.bench_function(format!("raw_rustls_send{suffix}"), |b| {
            b.iter(|| raw_send(&mut server, &data, &mut sink, None))
        });
        // Fresh ciphertext each iteration (the record sequence numbers move on).
        let (mut client, mut server) = raw_pair(&setup, config);
        g.bench_function(format!("raw_rustls_receive{suffix}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut wire = Vec::with_capacity(SIZE + SIZE / 50);
                    raw_send(&mut server, &data, &mut sink, Some(&mut wire));
                    let t = Instant::now();
                    let got = raw_feed(&mut client, &wire, &mut plain);
                    total += t.elapsed();
                    assert_eq!(got, SIZE);
                }
                total
            })
        });
    }

    let mut pair = TlsPair::new(&setup);
    {
        // How the server's output comes out: how many Transmits, and how big the first is.
        let id = pair.deliver_rpc();
        let t = Instant::now();
        pair.server
            .session_mut()
            .send_reply(id, reply.clone())
            .expect("reply");
        let mut sizes = Vec::new();
        let mut first_after = None;
        let mut wire = Vec::new();
        while let Output::Transmit(b) = pair.server.poll_output() {
            first_after.get_or_insert_with(|| t.elapsed());
            sizes.push(b.len());
            wire.extend_from_slice(&b);
        }
        eprintln!(
            "tls_loopback: TlsSession send_reply of {SIZE} bytes: {} Transmit(s), the first of {} bytes, {:?} after send_reply",
            sizes.len(),
            sizes.first().copied().unwrap_or(0),
            first_after.unwrap_or_default()
        );
        assert_eq!(pair.receive(&wire), SIZE);
    }
    g.bench_function("tlssession_send_reply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let wire = pair.reply_ciphertext(&reply, &mut total);
                assert_eq!(pair.receive(&wire), SIZE);
            }
            total
        })
    });
    g.bench_function("tlssession_receive_reply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut unused = Duration::ZERO;
            for _ in 0..iters {
                let wire = pair.reply_ciphertext(&reply, &mut unused);
                let t = Instant::now();
                let got = pair.receive(&wire);
                total += t.elapsed();
                assert_eq!(got, SIZE);
            }
            total
        })
    });
    g.finish();
}

// ----- benchmarks -----

fn bench_all(c: &mut Criterion) {
    let setup = Setup::new();
    let raw_addr = raw_server(setup.server_16k.clone(), setup.data.clone());
    let raw4_addr = raw_server(setup.server_4k.clone(), setup.data.clone());

    // netconf-blocking servers: the default (4 KiB records) and one with 16 KiB records.
    let (blocking_server, blocking_addr) =
        spawn_blocking_server(setup.server_tls(), setup.data.clone());
    let blocking_addr = format!("127.0.0.1:{}", blocking_addr.port());
    let (blocking_server_16k, blocking_16k_addr) =
        spawn_blocking_server(setup.server_tls_16k(), setup.data.clone());
    let blocking_16k_addr = format!("127.0.0.1:{}", blocking_16k_addr.port());

    // netconf-tokio server, on its own runtime (as if it were another process).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let data = setup.data.clone();
    let server_tls = setup.server_tls();
    let tokio_server = netconf_tokio::Server::new(ServerOptions::new(), move |req, _info| {
        let data = data.clone();
        async move {
            if req.operation.name == "get-config" {
                Reply::data_unchecked(data)
            } else {
                Reply::Ok
            }
        }
    });
    let tokio_addr = server_rt
        .block_on(tokio_server.listen_tls("127.0.0.1:0", &server_tls))
        .expect("bind tokio server");
    let tokio_addr = format!("127.0.0.1:{}", tokio_addr.port());

    // The tokio client runtime: what `#[tokio::main]` gives on this 2-core machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");

    // The same client on a current-thread runtime: caller and driver share one thread, so
    // an RPC costs no cross-thread wake-up (compare with `tokio`).
    let rt_ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");

    let tls = setup.client_tls();
    let mut raw = raw_connect(raw_addr, &setup.client_config);
    let mut raw4 = raw_connect(raw4_addr, &setup.client_config);
    eprintln!(
        "tls_loopback: {:?}, {:?}",
        raw.conn.protocol_version(),
        raw.conn.negotiated_cipher_suite().map(|s| s.suite())
    );
    let blocking =
        netconf_blocking::Client::connect_tls(&blocking_addr, &tls).expect("blocking client");
    let tokio_client = rt
        .block_on(netconf_tokio::Client::connect_tls(&tokio_addr, &tls))
        .expect("tokio client");
    let blocking_16k =
        netconf_blocking::Client::connect_tls(&blocking_16k_addr, &tls).expect("blocking client");
    let tokio_ct = rt_ct
        .block_on(netconf_tokio::Client::connect_tls(&tokio_addr, &tls))
        .expect("tokio client");
    let blocking_x =
        netconf_blocking::Client::connect_tls(&tokio_addr, &tls).expect("blocking client");
    let tokio_x = rt
        .block_on(netconf_tokio::Client::connect_tls(&blocking_addr, &tls))
        .expect("tokio client");
    eprintln!(
        "tls_loopback: framing blocking {:?}, tokio {:?}",
        blocking.framing(),
        tokio_client.framing()
    );

    // --- 10 MB get-config ---
    {
        let mut g = c.benchmark_group("get_config_10mb");
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .throughput(Throughput::Bytes(SIZE as u64));
        let mut buf = vec![0u8; SIZE];
        g.bench_function("raw_rustls", |b| {
            b.iter(|| {
                raw.write_all(b"B").expect("command");
                raw.flush().expect("flush");
                raw.read_exact(&mut buf).expect("10 MB");
            })
        });
        g.bench_function("raw_rustls_4k", |b| {
            b.iter(|| {
                raw4.write_all(b"B").expect("command");
                raw4.flush().expect("flush");
                raw4.read_exact(&mut buf).expect("10 MB");
            })
        });
        let op = GetConfig::new(Datastore::Running);
        g.bench_function("blocking", |b| {
            b.iter(|| {
                let data = blocking.call(&op).expect("get-config");
                assert_eq!(data.len(), SIZE);
                data
            })
        });
        g.bench_function("tokio", |b| {
            b.iter(|| {
                let data = rt.block_on(tokio_client.call(&op)).expect("get-config");
                assert_eq!(data.len(), SIZE);
                data
            })
        });
        g.bench_function("blocking_16k", |b| {
            b.iter(|| {
                let data = blocking_16k.call(&op).expect("get-config");
                assert_eq!(data.len(), SIZE);
                data
            })
        });
        // Crossed pairs, to tell a client's cost from a server's.
        g.bench_function("blocking_client_tokio_server", |b| {
            b.iter(|| {
                let data = blocking_x.call(&op).expect("get-config");
                assert_eq!(data.len(), SIZE);
                data
            })
        });
        g.bench_function("tokio_client_blocking_server", |b| {
            b.iter(|| {
                let data = rt.block_on(tokio_x.call(&op)).expect("get-config");
                assert_eq!(data.len(), SIZE);
                data
            })
        });
        g.finish();
    }

    // --- tiny RPC round trip ---
    {
        let mut g = c.benchmark_group("rpc_tiny");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let req = tiny_request();
        let mut answer = [0u8; TINY];
        g.bench_function("raw_rustls", |b| {
            b.iter(|| {
                raw.write_all(&req).expect("request");
                raw.flush().expect("flush");
                raw.read_exact(&mut answer).expect("answer");
            })
        });
        let get = Get::new();
        g.bench_function("blocking", |b| b.iter(|| blocking.call(&get).expect("get")));
        g.bench_function("tokio", |b| {
            b.iter(|| rt.block_on(tokio_client.call(&get)).expect("get"))
        });
        g.bench_function("tokio_current_thread", |b| {
            b.iter(|| rt_ct.block_on(tokio_ct.call(&get)).expect("get"))
        });
        g.bench_function("blocking_client_tokio_server", |b| {
            b.iter(|| blocking_x.call(&get).expect("get"))
        });
        g.bench_function("tokio_client_blocking_server", |b| {
            b.iter(|| rt.block_on(tokio_x.call(&get)).expect("get"))
        });
        g.finish();
    }

    // --- 64 in flight ---
    {
        let mut g = c.benchmark_group("pipelined_64");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(PIPELINE_TOTAL as u64));
        let req = tiny_request();
        let mut answer = [0u8; TINY];
        g.bench_function("raw_rustls", |b| {
            b.iter(|| {
                for _ in 0..PIPELINE_DEPTH {
                    raw.write_all(&req).expect("request");
                }
                raw.flush().expect("flush");
                for i in 0..PIPELINE_TOTAL {
                    raw.read_exact(&mut answer).expect("answer");
                    if i + PIPELINE_DEPTH < PIPELINE_TOTAL {
                        raw.write_all(&req).expect("request");
                    }
                }
            })
        });
        g.bench_function("tokio", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..PIPELINE_DEPTH {
                        let client = tokio_client.clone();
                        tasks.spawn(async move {
                            for _ in 0..PIPELINE_TOTAL / PIPELINE_DEPTH {
                                client.call(&Get::new()).await.expect("get");
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.expect("task");
                    }
                })
            })
        });
        // The blocking client is Clone + Sync: 64 threads share one session.
        g.bench_function("blocking", |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..PIPELINE_DEPTH {
                        let client = blocking.clone();
                        scope.spawn(move || {
                            for _ in 0..PIPELINE_TOTAL / PIPELINE_DEPTH {
                                client.call(&Get::new()).expect("get");
                            }
                        });
                    }
                })
            })
        });
        g.bench_function("tokio_current_thread", |b| {
            b.iter(|| {
                rt_ct.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..PIPELINE_DEPTH {
                        let client = tokio_ct.clone();
                        tasks.spawn(async move {
                            for _ in 0..PIPELINE_TOTAL / PIPELINE_DEPTH {
                                client.call(&Get::new()).await.expect("get");
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.expect("task");
                    }
                })
            })
        });
        g.finish();
    }

    // --- connect + handshake (+ hello) ---
    {
        let mut g = c.benchmark_group("connect");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        g.bench_function("raw_rustls_handshake", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let mut s = raw_connect(raw_addr, &setup.client_config);
                    total += t.elapsed();
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
                total
            })
        });
        g.bench_function("blocking", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let client = netconf_blocking::Client::connect_tls(&blocking_addr, &tls)
                        .expect("connect");
                    total += t.elapsed();
                    client.close().expect("close");
                }
                total
            })
        });
        g.bench_function("tokio", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let client = rt
                        .block_on(netconf_tokio::Client::connect_tls(&tokio_addr, &tls))
                        .expect("connect");
                    total += t.elapsed();
                    rt.block_on(client.close()).expect("close");
                }
                total
            })
        });
        g.finish();
    }

    drop(blocking);
    rt_ct.block_on(tokio_ct.close()).ok();
    drop(blocking_16k);
    drop(raw4);
    blocking_server_16k.shutdown();
    drop(blocking_x);
    rt.block_on(tokio_x.close()).ok();
    rt.block_on(tokio_client.close()).ok();
    drop(raw);
    blocking_server.shutdown();
    server_rt.block_on(tokio_server.shutdown());
}

criterion_group!(benches, bench_all, bench_in_memory);
criterion_main!(benches);
