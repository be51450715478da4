//! The CPU cost of a tiny `<get-config>` round trip through the sans-IO cores alone, client
//! and server in memory on one thread: no sockets, no threads, no runtime. What every
//! adapter pays per small RPC on top of its I/O, measured apart from the scheduler's noise
//! (on a VM whose thread wake-ups are fast, a loopback round trip costs what its CPU does).
//!
//! - `baseline_memcpy`: copying the round trip's wire bytes (request and reply, chunked
//!   framing, as `common::tiny_wire_sizes` measures them).
//! - `raw_rustls`: the same plaintext sizes through a rustls client and server connection
//!   pair in memory: encrypt, decrypt, and rustls' buffering, nothing else. The baseline for
//!   `netconf_tls`.
//! - `netconf_tls`: `ClientCore` and `ServerSession` over `TlsSession`s: the request written
//!   and framed, encrypted, decrypted, parsed, dispatched, answered with the tiny `<data>`,
//!   and the reply back to its waiter.
//! - `netconf_plaintext`: the same over plaintext `Session`s (what an SSH channel carries).
//!
//! `cargo bench -p netconf-tests --bench core_in_memory`

#[path = "common/mod.rs"]
mod common;

use common::in_memory::{CorePair, RawPair};
use common::{tiny_wire_sizes, TlsSetup};
use criterion::{criterion_group, criterion_main, Criterion};

fn core_rpc_tiny(c: &mut Criterion) {
    let (request_len, reply_len) = tiny_wire_sizes();
    let request = vec![b'q'; request_len];
    let reply = vec![b'r'; reply_len];
    let tls = TlsSetup::new();
    let mut g = c.benchmark_group("core_rpc_tiny");

    let mut copy = vec![0u8; request_len + reply_len];
    g.bench_function("baseline_memcpy", |b| {
        b.iter(|| {
            copy[..request_len].copy_from_slice(std::hint::black_box(&request));
            copy[request_len..].copy_from_slice(std::hint::black_box(&reply));
            std::hint::black_box(&copy);
        })
    });

    let mut raw = RawPair::new(&tls);
    g.bench_function("raw_rustls", |b| {
        b.iter(|| raw.round_trip(&request, &reply))
    });

    let mut pair = CorePair::tls(&tls);
    g.bench_function("netconf_tls", |b| b.iter(|| pair.round_trip()));

    let mut pair = CorePair::plaintext();
    g.bench_function("netconf_plaintext", |b| b.iter(|| pair.round_trip()));
    g.finish();
}

criterion_group!(benches, core_rpc_tiny);
criterion_main!(benches);
