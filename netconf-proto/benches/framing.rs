//! Framing and receive-path throughput against same-run baselines.
//!
//! Every benchmark moves the same ~10 MB payload. Baselines: one `memcpy` of the bytes into
//! a buffer allocated beforehand, the same copy in 64 KiB pieces into a fresh growing
//! `BytesMut` (what accumulating a message costs at the least), and a `memchr::memmem` scan
//! for `]]>]]>`. Then `FrameDecoder` on an end-of-message message and on chunked messages
//! (one big chunk, 4 KiB chunks), fed in 64 KiB reads and accumulated the way `Session` does,
//! and a client `Session` receiving a framed `<rpc-reply><data>` up to its `Reply` event
//! (UTF-8 validation and envelope parse included). The `linearity` group feeds the same
//! message 1 KiB and 1 MiB at a time: the two times should be close.
//!
//! `tests/bench/run` turns criterion's estimates into the ratios in BENCHMARKS.md.

// A benchmark reads the clock to time things and to hand `now` to the session; the crate's
// "never read a clock" rule (clippy.toml) is for the library, not for this harness.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use memchr::memmem;
use netconf_proto::framing::{self, FrameDecoder, Framing, Piece, EOM_DELIMITER};
use netconf_proto::operations::{Datastore, GetConfig};
use netconf_proto::{Config, Event, Output, Reply, Session};

/// Payload size: 10 MB, as in INTEROP.md's "Figures seen".
const PAYLOAD: usize = 10_000_000;
const READ: usize = 64 * 1024;
const MAX_MESSAGE: usize = 1 << 30;

const BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// Configuration-like XML of exactly `len` bytes (whole elements, padded with newlines),
/// with no `]` anywhere.
fn payload(len: usize) -> Vec<u8> {
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
    out
}

fn eom_message(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    framing::encode(Framing::EndOfMessage, body, &mut out).expect("no delimiter in the body");
    out.to_vec()
}

fn chunked_one(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    framing::encode(Framing::Chunked, body, &mut out).expect("chunked frames anything");
    out.to_vec()
}

fn chunked_pieces(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk * 8 + 16);
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("\n#{}\n", c.len()).as_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(b"\n##\n");
    out
}

/// Decodes one whole message fed in `read`-byte pieces, accumulating the body into a fresh
/// `BytesMut` as `Session::handle_input` does. Returns the body length.
fn decode(framing: Framing, wire: &[u8], read: usize) -> usize {
    let mut decoder = FrameDecoder::new(MAX_MESSAGE);
    decoder.set_framing(framing);
    let mut message = BytesMut::new();
    for mut input in wire.chunks(read) {
        while !input.is_empty() {
            let (n, piece) = decoder.decode(input).expect("valid framing");
            input = &input[n..];
            match piece {
                Piece::Data(d) => message.extend_from_slice(d),
                Piece::End => {
                    let m = message.split().freeze();
                    return m.len();
                }
            }
        }
    }
    panic!("message did not end");
}

/// A client session with the hello exchange done (framing per `base11`) and get-config
/// message-id 1 in flight.
fn established_client(base11: bool) -> Session {
    let now = Instant::now();
    let mut s = Session::client(Config::client(), now);
    let caps = if base11 {
        "<capability>urn:ietf:params:netconf:base:1.0</capability>\
         <capability>urn:ietf:params:netconf:base:1.1</capability>"
    } else {
        "<capability>urn:ietf:params:netconf:base:1.0</capability>"
    };
    let hello = format!(
        "<hello xmlns=\"{BASE}\"><capabilities>{caps}</capabilities><session-id>7</session-id></hello>]]>]]>"
    );
    s.handle_input(hello.as_bytes(), now).expect("hello");
    drain(&mut s);
    assert!(s.is_established());
    let id = s
        .send_rpc(&GetConfig::new(Datastore::Running), now)
        .expect("send");
    assert_eq!(id.0, 1);
    drain(&mut s);
    s
}

fn drain(s: &mut Session) -> Option<Event> {
    let mut last = None;
    loop {
        match s.poll_output() {
            Output::Transmit(_) => {}
            Output::Event(ev) => last = Some(ev),
            Output::Wait(_) => return last,
            _ => {}
        }
    }
}

fn reply_message(data: &[u8]) -> Vec<u8> {
    let mut xml = Vec::with_capacity(data.len() + 128);
    xml.extend_from_slice(
        format!("<rpc-reply message-id=\"1\" xmlns=\"{BASE}\"><data>").as_bytes(),
    );
    xml.extend_from_slice(data);
    xml.extend_from_slice(b"</data></rpc-reply>");
    xml
}

/// Feeds `wire` in `read`-byte pieces and returns the reply's data length.
fn receive(mut s: Session, wire: &[u8], read: usize) -> usize {
    let now = Instant::now();
    for input in wire.chunks(read) {
        s.handle_input(input, now).expect("valid reply");
    }
    match drain(&mut s) {
        Some(Event::Reply { reply, .. }) => reply.data().map_or(0, |d| d.len()),
        other => panic!("expected the reply, got {other:?}"),
    }
}

/// Modest sample sizes so the whole `cargo bench` takes a few minutes; criterion's command-line
/// flags (`--sample-size`, `--measurement-time`) still override these.
fn configure() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn baselines(c: &mut Criterion) {
    let body = payload(PAYLOAD);
    let eom = eom_message(&body);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(eom.len() as u64));

    let mut dst = vec![0u8; eom.len()];
    g.bench_function("baseline_memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&eom));
            black_box(&dst);
        })
    });
    g.bench_function("baseline_memcpy_fresh", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(eom.len());
            v.extend_from_slice(black_box(&eom));
            black_box(v)
        })
    });
    g.bench_function("baseline_utf8", |b| {
        b.iter(|| black_box(std::str::from_utf8(black_box(&eom)).is_ok()))
    });
    g.bench_function("baseline_memcpy_grow_64k", |b| {
        b.iter(|| {
            let mut m = BytesMut::new();
            for piece in black_box(&eom).chunks(READ) {
                m.extend_from_slice(piece);
            }
            black_box(m.freeze())
        })
    });
    // The same, reading from 11 bytes into the buffer: where a chunked message's body starts
    // after its `\n#10000000\n` header. Source and destination are then misaligned.
    let shifted = [&b"\n#10000000\n"[..], &eom].concat();
    g.bench_function("baseline_memcpy_grow_64k_offset11", |b| {
        b.iter(|| {
            let mut m = BytesMut::new();
            for piece in black_box(&shifted[11..]).chunks(READ) {
                m.extend_from_slice(piece);
            }
            black_box(m.freeze())
        })
    });
    let finder = memmem::Finder::new(EOM_DELIMITER);
    g.bench_function("baseline_memmem", |b| {
        b.iter(|| black_box(finder.find(black_box(&eom))))
    });

    g.bench_function("decoder_eom_64k", |b| {
        b.iter(|| decode(Framing::EndOfMessage, black_box(&eom), READ))
    });
    let one = chunked_one(&body);
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("decoder_chunked_one_64k", |b| {
        b.iter(|| decode(Framing::Chunked, black_box(&one), READ))
    });
    let small = chunked_pieces(&body, 4096);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("decoder_chunked_4k_64k", |b| {
        b.iter(|| decode(Framing::Chunked, black_box(&small), READ))
    });

    // The client session: framed reply in 64 KiB pieces up to the Reply event.
    let reply = reply_message(&body);
    for (name, base11, wire) in [
        ("session_reply_chunked_64k", true, chunked_one(&reply)),
        ("session_reply_eom_64k", false, eom_message(&reply)),
    ] {
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || established_client(base11),
                |s| assert_eq!(receive(s, black_box(&wire), READ), PAYLOAD),
                BatchSize::PerIteration,
            )
        });
    }

    // The server session: send_reply of the same <data> (prebuilt Bytes) and drain the
    // framed output, as an adapter does before writing it.
    g.throughput(Throughput::Bytes(body.len() as u64));
    let data = bytes::Bytes::from(body.clone());
    let mut server = established_server();
    let mut next_id = 1u64;
    g.bench_function("session_send_reply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let message_id = deliver_rpc(&mut server, next_id);
                next_id += 1;
                let reply = Reply::data_unchecked(data.clone());
                let t = Instant::now();
                server.send_reply(message_id, reply).expect("reply");
                let mut sent = 0;
                while let Output::Transmit(bytes) = server.poll_output() {
                    sent += bytes.len();
                    drop(black_box(bytes));
                }
                total += t.elapsed();
                assert!(sent > PAYLOAD);
            }
            total
        })
    });
    g.finish();
}

/// A server session with the hello exchange done (base:1.1, chunked framing).
fn established_server() -> Session {
    let now = Instant::now();
    let mut s = Session::server(Config::server(), 1, now);
    let hello = format!(
        "<hello xmlns=\"{BASE}\"><capabilities>\
         <capability>urn:ietf:params:netconf:base:1.0</capability>\
         <capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>"
    );
    s.handle_input(hello.as_bytes(), now).expect("hello");
    drain(&mut s);
    assert!(s.is_established());
    s
}

/// Feeds the server a get-config with this message-id; returns the request's handle.
fn deliver_rpc(s: &mut Session, id: u64) -> netconf_proto::RequestId {
    let rpc = format!(
        "<rpc message-id=\"{id}\" xmlns=\"{BASE}\"><get-config><source><running/></source></get-config></rpc>"
    );
    let mut wire = BytesMut::new();
    framing::encode(Framing::Chunked, rpc.as_bytes(), &mut wire).expect("chunked");
    s.handle_input(&wire, Instant::now()).expect("rpc");
    match drain(s) {
        Some(Event::Rpc { id, .. }) => id,
        other => panic!("expected the rpc, got {other:?}"),
    }
}

fn linearity(c: &mut Criterion) {
    let body = payload(PAYLOAD);
    let eom = eom_message(&body);
    let reply = reply_message(&body);
    let chunked_reply = chunked_one(&reply);
    let mut g = c.benchmark_group("linearity");
    for (label, read) in [("1k", 1024usize), ("1m", 1 << 20)] {
        g.throughput(Throughput::Bytes(eom.len() as u64));
        g.bench_function(format!("decoder_eom_{label}"), |b| {
            b.iter(|| decode(Framing::EndOfMessage, black_box(&eom), read))
        });
        g.throughput(Throughput::Bytes(chunked_reply.len() as u64));
        g.bench_function(format!("session_reply_chunked_{label}"), |b| {
            b.iter_batched(
                || established_client(true),
                |s| assert_eq!(receive(s, black_box(&chunked_reply), read), PAYLOAD),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = baselines, linearity
}
criterion_main!(benches);
