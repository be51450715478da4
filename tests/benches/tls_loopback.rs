//! End-to-end NETCONF over TLS on a real loopback TCP socket, for the three adapters
//! (netconf-blocking, netconf-tokio, netconf-smol; each client against the same adapter's
//! server), against raw rustls measured in the same run.
//!
//! The raw rustls servers are built from the very `ServerTlsOptions` the NETCONF servers
//! use (`ServerTlsOptions::build`), so certificates, provider (ring), cipher suite (TLS 1.3,
//! `TLS13_AES_256_GCM_SHA384`, printed at start) and record size are the same: `raw_rustls_4k`
//! has the library's default 4 KiB records (`CLIENT_FRIENDLY_RECORD`), `raw_rustls` rustls'
//! 16 KiB. Every client uses the same rustls `ClientConfig` (resumption off). Raw rustls is
//! `StreamOwned` on both ends, the server on a thread per connection.
//!
//! What the servers answer is chosen by the request (see `common/mod.rs`): a tiny `<data>`,
//! a prebuilt 10 MB or 256 MiB `Reply::data_unchecked(Bytes)`, or the same bytes as a
//! streamed answer (64 KiB `Bytes` slices, no copy).
//!
//! Groups (each starts with its baselines):
//! - `rpc_tiny`: one tiny `<get-config>` round trip; raw rustls sends and answers exactly
//!   as many bytes as the NETCONF request and reply take on the wire (printed at start).
//!   The async clients are called with `block_on` from the benchmark's thread (`tokio`,
//!   `smol`; `tokio_current_thread` on a current-thread runtime) and from a task on their
//!   runtime (`*_in_task`). Their floor, `raw_rustls_tokio_block_on` and
//!   `raw_rustls_smol_block_on`: raw rustls on the runtime's socket, one `block_on` per
//!   round trip from the benchmark's thread, against the raw server; `raw_rustls_*_in_task`
//!   the same from a task on the runtime.
//! - `pipelined_64`: 1024 of those with 64 in flight on one session (raw: one thread keeps
//!   64 requests ahead; blocking: 64 threads of a pool; async: 64 tasks).
//! - `get_config_10mb`, `get_config_256mb`: `call` (buffered: the whole `<data>` as one
//!   payload) against the prebuilt answer, and `call_streamed` read to its end through a
//!   64 KiB buffer against the streamed answer; raw rustls reads the same number of bytes
//!   into a buffer, reused (`raw_rustls_4k`) or allocated for each reply
//!   (`raw_rustls_4k_fresh`: holding a whole reply means touching fresh pages). 256 MiB: 10
//!   samples of one transfer each.
//! - `first_byte`: time from `call_streamed` to the first payload piece in the caller's
//!   hands, for 10 MB and 256 MiB replies, streamed (`_10m`, `_256m`) and prebuilt
//!   (`_prebuilt`) answers; raw: from the request to the first plaintext byte. Only the
//!   first byte is timed; the rest of the reply is drained untimed, which is why this group
//!   asks criterion for a 1 ms measurement (it plans iterations from timed durations: 20
//!   samples of one reply each as long as a first byte takes over 50 µs).
//! - `connect`: TCP + full handshake (+ one byte) vs each client's connect + TLS + hello.
//! - `in_memory_10mb`: the two halves of a 10 MB reply without sockets: the server's
//!   `send_reply` until every ciphertext byte is handed out, and the client's
//!   `handle_ciphertext` in 64 KiB pieces up to the `Reply` event, against rustls alone
//!   encrypting and decrypting the same bytes (same record sizes).
//!
//! `tests/bench/run` runs this; `tests/bench/summarize.py` turns criterion's estimates into
//! the ratios in BENCHMARKS.md.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw_async::RawAsync;
use common::{
    raw_connect, raw_server, AnyClient, Connect, Listen, Payloads, RawClient, ThreadPool, TlsSetup,
    BIG, PIECE, TEN_MB,
};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::Reply;
use netconf_proto::{Config, Event, Output, RequestId, TlsSession};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use tokio_util::compat::TokioAsyncReadCompatExt;

const PIPELINE_TOTAL: usize = 1024;
const PIPELINE_DEPTH: usize = 64;
const ADAPTERS: [&str; 3] = ["blocking", "tokio", "smol"];

// ----- raw rustls (server and connect in common/mod.rs) -----

/// Asks for a payload with `cmd`; reads `buf.len()` bytes; returns the time to the first.
fn raw_fetch(raw: &mut RawClient, cmd: u8, buf: &mut [u8]) -> Duration {
    let t = Instant::now();
    raw.write_all(&[cmd]).expect("command");
    raw.flush().expect("flush");
    let mut got = 0;
    while got == 0 {
        got = raw.read(buf).expect("payload");
        assert!(got > 0, "raw server closed");
    }
    let first = t.elapsed();
    raw.read_exact(&mut buf[got..]).expect("payload");
    first
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
    fn new(client_config: &Arc<ClientConfig>, server_config: &Arc<ServerConfig>) -> TlsPair {
        let now = Instant::now();
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut pair = TlsPair {
            client: TlsSession::client(client_config.clone(), name, Config::client(), now)
                .expect("client"),
            server: TlsSession::server(server_config.clone(), Config::server(), 1, now)
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
fn raw_pair(
    client_config: &Arc<ClientConfig>,
    server_config: &Arc<ServerConfig>,
) -> (Connection, Connection) {
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut client: Connection = ClientConnection::new(client_config.clone(), name)
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
/// ciphertext copied out to `sink` (cleared, as a socket buffer drains); when `keep` is
/// given the ciphertext is also kept there for the receive half.
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
    let setup = TlsSetup::new();
    let server_4k = setup.server_tls().build().expect("server config");
    let server_16k = setup.server_tls_16k().build().expect("server config");
    let data = common::payload(TEN_MB);
    let reply = Reply::data_unchecked(data.clone());
    let mut g = c.benchmark_group("in_memory_10mb");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(TEN_MB as u64));

    let mut sink = Vec::with_capacity(128 * 1024);
    let mut plain = vec![0u8; TEN_MB];
    for (suffix, config) in [("", &server_16k), ("_4k", &server_4k)] {
        let (_client, mut server) = raw_pair(&setup.client_config, config);
        g.bench_function(format!("raw_rustls_send{suffix}"), |b| {
            b.iter(|| raw_send(&mut server, &data, &mut sink, None))
        });
        // Fresh ciphertext each iteration (the record sequence numbers move on).
        let (mut client, mut server) = raw_pair(&setup.client_config, config);
        g.bench_function(format!("raw_rustls_receive{suffix}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut wire = Vec::with_capacity(TEN_MB + TEN_MB / 50);
                    raw_send(&mut server, &data, &mut sink, Some(&mut wire));
                    let t = Instant::now();
                    let got = raw_feed(&mut client, &wire, &mut plain);
                    total += t.elapsed();
                    assert_eq!(got, TEN_MB);
                }
                total
            })
        });
    }

    let mut pair = TlsPair::new(&setup.client_config, &server_4k);
    {
        // How the server's output comes out: how many Transmits, how big, how soon.
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
            "tls_loopback: TlsSession send_reply of {TEN_MB} bytes: {} Transmit(s), the first of {} bytes, the largest {} bytes, the first {:?} after send_reply",
            sizes.len(),
            sizes.first().copied().unwrap_or(0),
            sizes.iter().max().copied().unwrap_or(0),
            first_after.unwrap_or_default()
        );
        assert_eq!(pair.receive(&wire), TEN_MB);
    }
    g.bench_function("tlssession_send_reply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let wire = pair.reply_ciphertext(&reply, &mut total);
                assert_eq!(pair.receive(&wire), TEN_MB);
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
                assert_eq!(got, TEN_MB);
            }
            total
        })
    });
    g.finish();
}

// ----- over loopback -----

fn bench_loopback(c: &mut Criterion) {
    let setup = TlsSetup::new();
    let payloads = Payloads::new(true);
    let (req, rep) = common::tiny_wire_sizes();
    let server_tls = setup.server_tls();
    let raw16_addr = raw_server(
        setup.server_tls_16k().build().expect("server config"),
        &payloads,
        req,
        rep,
    );
    let raw4_addr = raw_server(
        server_tls.build().expect("server config"),
        &payloads,
        req,
        rep,
    );
    let tls = setup.client_tls();

    let servers: Vec<_> = ADAPTERS
        .iter()
        .map(|a| common::start_server(a, Listen::Tls(&server_tls), &payloads))
        .collect();
    let server_16k =
        common::start_server("blocking", Listen::Tls(&setup.server_tls_16k()), &payloads);
    let clients: Vec<(&str, AnyClient)> = ADAPTERS
        .iter()
        .zip(&servers)
        .map(|(a, s)| (*a, AnyClient::connect(a, &s.addr, Connect::Tls(&tls))))
        .collect();
    // The tokio client on a current-thread runtime: caller and driver share one thread.
    let tokio_ct = AnyClient::connect("tokio_current_thread", &servers[1].addr, Connect::Tls(&tls));
    let blocking_16k = AnyClient::connect("blocking", &server_16k.addr, Connect::Tls(&tls));

    let mut raw = raw_connect(raw4_addr, &setup.client_config);
    let mut raw16 = raw_connect(raw16_addr, &setup.client_config);
    eprintln!(
        "tls_loopback: {:?}, {:?}; tiny get-config on the wire: request {req} bytes, reply {rep} bytes",
        raw.conn.protocol_version(),
        raw.conn.negotiated_cipher_suite().map(|s| s.suite())
    );

    // --- tiny RPC round trip ---
    {
        let mut g = c.benchmark_group("rpc_tiny");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        let mut request = vec![b'r'; req];
        request[0] = b'T';
        let mut answer = vec![0u8; rep];
        g.bench_function("raw_rustls", |b| {
            b.iter(|| {
                raw.write_all(&request).expect("request");
                raw.flush().expect("flush");
                raw.read_exact(&mut answer).expect("answer");
            })
        });
        // The same from outside an async runtime: the floor of the async `block_on` rows.
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut raw_tokio = RawAsync::new(raw_connect(raw4_addr, &setup.client_config), |s| {
            let _inside = tokio_rt.enter();
            tokio::net::TcpStream::from_std(s)
                .expect("tokio socket")
                .compat()
        });
        g.bench_function("raw_rustls_tokio_block_on", |b| {
            b.iter(|| tokio_rt.block_on(raw_tokio.exchange(&request, &mut answer)))
        });
        let mut raw_smol = RawAsync::new(raw_connect(raw4_addr, &setup.client_config), |s| {
            smol::Async::new(s).expect("async socket")
        });
        g.bench_function("raw_rustls_smol_block_on", |b| {
            b.iter(|| smol::block_on(raw_smol.exchange(&request, &mut answer)))
        });
        // And from a task on the runtime: the floor of the `*_in_task` rows.
        let mut raw_tokio = Some(raw_tokio);
        g.bench_function("raw_rustls_tokio_in_task", |b| {
            b.iter_custom(|iters| {
                RawAsync::in_task(&mut raw_tokio, iters, &request, |task| {
                    tokio_rt.block_on(tokio_rt.spawn(task)).expect("task")
                })
            })
        });
        let mut raw_smol = Some(raw_smol);
        g.bench_function("raw_rustls_smol_in_task", |b| {
            b.iter_custom(|iters| {
                RawAsync::in_task(&mut raw_smol, iters, &request, |task| {
                    smol::block_on(smol::spawn(task))
                })
            })
        });
        let tiny = common::op("");
        for (name, client) in clients
            .iter()
            .map(|(n, c)| (*n, c))
            .chain([("tokio_current_thread", &tokio_ct)])
        {
            g.bench_function(name, |b| b.iter(|| client.call(&tiny)));
        }
        // The async clients called from a task on their runtime, as an async program does.
        for (name, client) in &clients[1..] {
            g.bench_function(format!("{name}_in_task"), |b| {
                b.iter_custom(|iters| client.calls_in_task(iters).expect("async client"))
            });
        }
        g.finish();
    }

    // --- 64 in flight ---
    {
        let mut g = c.benchmark_group("pipelined_64");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Elements(PIPELINE_TOTAL as u64));
        let mut request = vec![b'r'; req];
        request[0] = b'T';
        let mut answer = vec![0u8; rep];
        g.bench_function("raw_rustls", |b| {
            b.iter(|| {
                for _ in 0..PIPELINE_DEPTH {
                    raw.write_all(&request).expect("request");
                }
                raw.flush().expect("flush");
                for i in 0..PIPELINE_TOTAL {
                    raw.read_exact(&mut answer).expect("answer");
                    if i + PIPELINE_DEPTH < PIPELINE_TOTAL {
                        raw.write_all(&request).expect("request");
                    }
                }
            })
        });
        let pool = ThreadPool::new(
            clients[0].1.blocking().expect("blocking"),
            PIPELINE_DEPTH,
            PIPELINE_TOTAL / PIPELINE_DEPTH,
        );
        for (name, client) in clients
            .iter()
            .map(|(n, c)| (*n, c))
            .chain([("tokio_current_thread", &tokio_ct)])
        {
            g.bench_function(name, |b| {
                b.iter(|| client.pipelined(Some(&pool), PIPELINE_TOTAL, PIPELINE_DEPTH))
            });
        }
        // The blocking client from one thread: `send` and `recv` with 64 in flight.
        g.bench_function("blocking_send_recv", |b| {
            b.iter(|| clients[0].1.pipelined(None, PIPELINE_TOTAL, PIPELINE_DEPTH))
        });
        g.finish();
    }

    // --- 10 MB and 256 MiB get-config ---
    let mut buf = vec![0u8; BIG];
    let mut piece_buf = vec![0u8; PIECE];
    for (group, len, cmd, prebuilt, streamed) in [
        ("get_config_10mb", TEN_MB, b'B', "10m", "10m-stream"),
        ("get_config_256mb", BIG, b'G', "big", "big-stream"),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(len as u64));
        if len == BIG {
            // One transfer per sample; criterion warns that 10 samples do not fit.
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_nanos(1))
                .measurement_time(Duration::from_secs(1));
        } else {
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(3));
        }
        let out = &mut buf[..len];
        if len == TEN_MB {
            g.bench_function("raw_rustls", |b| b.iter(|| raw_fetch(&mut raw16, cmd, out)));
        }
        g.bench_function("raw_rustls_4k", |b| {
            b.iter(|| raw_fetch(&mut raw, cmd, out))
        });
        // The same into a buffer allocated for each reply, as a buffered `call` must: the
        // first touch of fresh pages is part of holding a whole reply.
        g.bench_function("raw_rustls_4k_fresh", |b| {
            b.iter(|| {
                let mut fresh = vec![0u8; len];
                raw_fetch(&mut raw, cmd, &mut fresh);
                fresh
            })
        });
        let (prebuilt, streamed) = (common::op(prebuilt), common::op(streamed));
        for (name, client) in &clients {
            g.bench_function(format!("{name}_call"), |b| {
                b.iter(|| assert_eq!(client.call(&prebuilt), len))
            });
            g.bench_function(format!("{name}_streamed"), |b| {
                b.iter(|| assert_eq!(client.streamed(&streamed, &mut piece_buf).bytes, len))
            });
        }
        if len == TEN_MB {
            g.bench_function("blocking_16k_call", |b| {
                b.iter(|| assert_eq!(blocking_16k.call(&prebuilt), len))
            });
        }
        g.finish();
    }

    // --- time to the first payload byte ---
    {
        let mut g = c.benchmark_group("first_byte");
        g.sample_size(20)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_nanos(1))
            .measurement_time(Duration::from_millis(1));
        for (label, len, cmd) in [("10m", TEN_MB, b'B'), ("256m", BIG, b'G')] {
            let out = &mut buf[..len];
            g.bench_function(format!("raw_rustls_4k_{label}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| raw_fetch(&mut raw, cmd, out)).sum())
            });
        }
        for (name, client) in &clients {
            for (label, len, kinds) in [
                ("10m", TEN_MB, ["10m-stream", "10m"]),
                ("256m", BIG, ["big-stream", "big"]),
            ] {
                for (kind, suffix) in kinds.into_iter().zip(["", "_prebuilt"]) {
                    let op = common::op(kind);
                    g.bench_function(format!("{name}_{label}{suffix}"), |b| {
                        b.iter_custom(|iters| {
                            (0..iters)
                                .map(|_| {
                                    let s = common::first_piece(client, &op);
                                    assert_eq!(s.bytes, len);
                                    s.first_byte
                                })
                                .sum()
                        })
                    });
                }
            }
        }
        g.finish();
    }

    // --- connect + handshake (+ hello) ---
    {
        let mut g = c.benchmark_group("connect");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        g.bench_function("raw_rustls_handshake", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let mut s = raw_connect(raw4_addr, &setup.client_config);
                    total += t.elapsed();
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
                total
            })
        });
        for (name, server) in ADAPTERS.iter().zip(&servers) {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let client = AnyClient::connect(name, &server.addr, Connect::Tls(&tls));
                        total += t.elapsed();
                        client.close();
                    }
                    total
                })
            });
        }
        g.finish();
    }

    for (_, client) in clients {
        client.close();
    }
    tokio_ct.close();
    blocking_16k.close();
    drop(raw);
    drop(raw16);
    for server in servers {
        server.stop();
    }
    server_16k.stop();
}

criterion_group!(benches, bench_loopback, bench_in_memory);
criterion_main!(benches);
