//! Where a tiny RPC's time goes: CPU time and context switches per tiny `<get-config>` round
//! trip over loopback TLS, client and server in this one process, next to raw rustls doing
//! the same exchange (the `rpc_tiny` and `pipelined_64` benchmarks' setups).
//!
//! ```text
//! bench_rpc_cost ADAPTER [N] [DEPTH]
//!     ADAPTER = raw | blocking | blocking_send_recv (one thread keeping DEPTH in flight
//!     with `send`/`recv` instead of a thread per call) | tokio | tokio_current_thread | smol, or tokio_in_task /
//!     smol_in_task (all N calls made one after the other by one task on the client's
//!     runtime instead of `block_on` per call; DEPTH is ignored), or raw_tokio_block_on /
//!     raw_smol_block_on / raw_tokio_in_task / raw_smol_in_task (raw rustls on the
//!     runtime's socket, called as those are: their floors; DEPTH 1), or core_tls /
//!     core_plaintext / core_raw (no sockets and no threads: the sans-IO cores over TLS or
//!     plaintext, or raw rustls, back to back in memory, `core_in_memory`'s pairs; for
//!     exact instruction counts under valgrind); N round trips (20000),
//!     DEPTH in flight (1; 64 is the pipelined benchmark). Prints
//!     `COST adapter=A n=N depth=D wall_us=W cpu_us=C switches=S threads=T` per RPC.
//! bench_rpc_cost ratio ADAPTER[,ADAPTER...] [SLICES] [PER_SLICE] [DEPTH]
//!     each adapter against raw rustls, in interleaved slices (see `ratio`).
//! ```
//!
//! CPU time and context switches are summed over every thread of the process from
//! `/proc/self/task/*/schedstat` and `.../status` (voluntary + involuntary), measured after
//! 500 warm-up round trips; with `BY_THREAD=1` also per kind of thread (by name). With
//! `VOLUNTARY=1` only the switches a thread made by sleeping count (not preemptions): how
//! often each thread waits for another per round trip. Timing only: nothing here passes or
//! fails.

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Instant;

use common::in_memory::{CorePair, RawPair};
use common::raw_async::RawAsync;
use common::{AnyClient, Connect, Listen, Payloads, ThreadPool, TlsSetup};

/// (CPU ns, context switches) of each thread of the process, by thread id, with its name.
fn thread_counters() -> BTreeMap<String, (String, u64, u64)> {
    let voluntary_only = std::env::var_os("VOLUNTARY").is_some();
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("task").path();
        let Ok(sched) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        let cpu = sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let mut switches = 0;
        if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
            for line in status.lines() {
                let preempted = line.strip_prefix("nonvoluntary_ctxt_switches:");
                if let Some(v) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or(preempted.filter(|_| !voluntary_only))
                {
                    switches += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let id = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        threads.insert(id, (name.trim().to_owned(), cpu, switches));
    }
    threads
}

/// (CPU ns, context switches, threads) summed over the process's threads.
fn process_counters() -> (u64, u64, usize) {
    let threads = thread_counters();
    let cpu = threads.values().map(|t| t.1).sum();
    let switches = threads.values().map(|t| t.2).sum();
    (cpu, switches, threads.len())
}

/// With `BY_THREAD=1`: per RPC, the CPU time and switches of each kind of thread (by name)
/// between two snapshots, to see who pays for a round trip.
fn print_by_thread(
    before: &BTreeMap<String, (String, u64, u64)>,
    after: &BTreeMap<String, (String, u64, u64)>,
    n: usize,
) {
    let mut by_name: BTreeMap<String, (u64, u64, usize)> = BTreeMap::new();
    for (id, (name, cpu, sw)) in after {
        let (cpu0, sw0) = before.get(id).map_or((0, 0), |b| (b.1, b.2));
        let e = by_name.entry(name.clone()).or_default();
        e.0 += cpu - cpu0;
        e.1 += sw - sw0;
        e.2 += 1;
    }
    for (name, (cpu, sw, count)) in by_name {
        println!(
            "  {name:<20} x{count:<3} cpu_us={:.2} switches={:.2}",
            cpu as f64 / 1e3 / n as f64,
            sw as f64 / n as f64
        );
    }
}

/// `run(k)`: k rounds of a pair's round trips.
type Run = Box<dyn FnMut(usize)>;

/// A raw rustls client on a raw rustls server of its own, with the tiny exchange's request
/// (its first byte `T` asks for the tiny answer) and a buffer for the answer.
fn raw_exchange(setup: &TlsSetup) -> (common::RawClient, Vec<u8>, Vec<u8>) {
    let (req, rep) = common::tiny_wire_sizes();
    let payloads = Payloads {
        ten: bytes::Bytes::new(),
        big: bytes::Bytes::new(),
    };
    let config = setup.server_tls().build().expect("config");
    let addr = common::raw_server(config, &payloads, req, rep);
    let mut request = vec![b'r'; req];
    request[0] = b'T';
    (
        common::raw_connect(addr, &setup.client_config),
        request,
        vec![0u8; rep],
    )
}

/// Raw rustls on an async runtime's socket, as `rpc_tiny`'s floors run it: `tokio_block_on`
/// and `smol_block_on` (one `block_on` per round trip, from outside the runtime),
/// `tokio_in_task` and `smol_in_task` (all of them in one task on the runtime). Depth 1.
fn raw_floor(floor: &str, setup: &TlsSetup) -> Run {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let (raw, request, mut answer) = raw_exchange(setup);
    let tokio_rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    match floor {
        "tokio_block_on" | "tokio_in_task" => {
            let rt = tokio_rt();
            let raw = RawAsync::new(raw, |s| {
                let _inside = rt.enter();
                tokio::net::TcpStream::from_std(s)
                    .expect("tokio socket")
                    .compat()
            });
            let mut raw = Some(raw);
            if floor == "tokio_block_on" {
                Box::new(move |k| {
                    let raw = raw.as_mut().expect("raw client");
                    (0..k).for_each(|_| rt.block_on(raw.exchange(&request, &mut answer)))
                })
            } else {
                Box::new(move |k| {
                    RawAsync::in_task(&mut raw, k as u64, &request, |task| {
                        rt.block_on(rt.spawn(task)).expect("task")
                    });
                })
            }
        }
        "smol_block_on" | "smol_in_task" => {
            let raw = RawAsync::new(raw, |s| smol::Async::new(s).expect("async socket"));
            let mut raw = Some(raw);
            if floor == "smol_block_on" {
                Box::new(move |k| {
                    let raw = raw.as_mut().expect("raw client");
                    (0..k).for_each(|_| smol::block_on(raw.exchange(&request, &mut answer)))
                })
            } else {
                Box::new(move |k| {
                    RawAsync::in_task(&mut raw, k as u64, &request, |task| {
                        smol::block_on(smol::spawn(task))
                    });
                })
            }
        }
        other => panic!(
            "no raw floor {other:?}: tokio_block_on, smol_block_on, tokio_in_task or smol_in_task"
        ),
    }
}

/// `run(k)`: k rounds of `depth` round trips on `adapter`'s pair (see the module's doc).
fn runner(adapter: &str, depth: usize, setup: &TlsSetup) -> Run {
    let payloads = Payloads {
        ten: bytes::Bytes::new(),
        big: bytes::Bytes::new(),
    };
    let (req, rep) = common::tiny_wire_sizes();
    let server_tls = setup.server_tls();
    let tiny = common::op("");

    if let Some(core) = adapter.strip_prefix("core_") {
        match core {
            "tls" => {
                let mut pair = CorePair::tls(setup);
                Box::new(move |k| (0..k * depth).for_each(|_| pair.round_trip()))
            }
            "plaintext" => {
                let mut pair = CorePair::plaintext();
                Box::new(move |k| (0..k * depth).for_each(|_| pair.round_trip()))
            }
            "raw" => {
                let mut pair = RawPair::new(setup);
                let (request, reply) = (vec![b'q'; req], vec![b'r'; rep]);
                Box::new(move |k| (0..k * depth).for_each(|_| pair.round_trip(&request, &reply)))
            }
            other => panic!("no core pair {other:?}: tls, plaintext or raw"),
        }
    } else if let Some(floor) = adapter.strip_prefix("raw_") {
        assert_eq!(depth, 1, "the raw floors run one round trip at a time");
        raw_floor(floor, setup)
    } else if adapter == "raw" {
        let (mut raw, request, mut answer) = raw_exchange(setup);
        Box::new(move |k| {
            for _ in 0..k {
                for _ in 0..depth {
                    raw.write_all(&request).expect("request");
                }
                raw.flush().expect("flush");
                for _ in 0..depth {
                    raw.read_exact(&mut answer).expect("answer");
                }
            }
        })
    } else {
        let in_task = adapter.ends_with("_in_task");
        let adapter = adapter.trim_end_matches("_in_task");
        // One thread keeping `depth` in flight with `send`/`recv`, not a thread per call.
        let send_recv = adapter == "blocking_send_recv";
        let adapter = if send_recv { "blocking" } else { adapter };
        let server_kind = if adapter == "tokio_current_thread" {
            "tokio"
        } else {
            adapter
        };
        let server = common::start_server(server_kind, Listen::Tls(&server_tls), &payloads);
        let client = AnyClient::connect(adapter, &server.addr, Connect::Tls(&setup.client_tls()));
        let pool = client
            .blocking()
            .filter(|_| depth > 1 && !send_recv)
            .map(|c| ThreadPool::new(c, depth, 1));
        Box::new(move |k| {
            let _keep = &server;
            if in_task {
                // One task makes all the calls, one after the other.
                client
                    .calls_in_task((k * depth) as u64)
                    .expect("async client");
            } else if send_recv {
                // One sliding window over all of them, as the criterion benchmark runs it.
                let c = client.blocking().expect("the blocking client");
                common::send_recv_window(c, k * depth, depth);
            } else {
                match &pool {
                    // Each of the pool's threads makes its k calls in a row.
                    Some(pool) => pool.run_calls(k),
                    // `depth` tasks, each making its k calls in a row.
                    None if depth > 1 => client.pipelined(None, k * depth, depth),
                    None => {
                        for _ in 0..k {
                            client.call(&tiny);
                        }
                    }
                }
            }
        })
    }
}

/// `ratio ADAPTER[,ADAPTER...] [SLICES] [PER_SLICE] [DEPTH]`: each adapter's time against
/// raw rustls's, measured in alternating slices of PER_SLICE round trips (200), SLICES
/// times (200), the order rotated every slice. A ratio per slice compares two runs a few
/// milliseconds apart, so the machine's slow and fast minutes (raw rustls alone moves by
/// a third between criterion runs here) cancel out; the median and quartiles of those
/// ratios are printed, with the median times per round trip (or per RPC, DEPTH in flight).
fn ratio(args: &[String]) {
    let adapters: Vec<&str> = args
        .first()
        .map(|a| a.split(',').collect())
        .unwrap_or_else(|| vec!["blocking"]);
    let slices: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    assert!(slices > 0, "SLICES must be at least 1");
    let per_slice: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let depth: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let rounds = (per_slice / depth).max(1);
    let per_slice = rounds * depth;

    let setup = TlsSetup::new();
    let mut runs: Vec<(&str, Run)> = std::iter::once("raw")
        .chain(adapters.iter().copied())
        .map(|a| (a, runner(a, depth, &setup)))
        .collect();
    for (_, run) in &mut runs {
        run((500 / depth).max(2));
    }
    // times[i][s]: seconds per RPC of runs[i] in slice s.
    let mut times = vec![Vec::with_capacity(slices); runs.len()];
    for slice in 0..slices {
        for k in 0..runs.len() {
            let i = (slice + k) % runs.len();
            let t = Instant::now();
            (runs[i].1)(rounds);
            times[i].push(t.elapsed().as_secs_f64() / per_slice as f64);
        }
    }
    // The value at rank round((n - 1) q): the upper of the two middle ones when n is even.
    let quartiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.5), at(0.75))
    };
    let (_, raw_median, _) = quartiles(times[0].clone());
    println!(
        "RATIO raw median_us={:.2} slices={slices} per_slice={per_slice} depth={depth}",
        raw_median * 1e6
    );
    for (i, (name, _)) in runs.iter().enumerate().skip(1) {
        let ratios = times[i].iter().zip(&times[0]).map(|(a, r)| a / r).collect();
        let (q1, median, q3) = quartiles(ratios);
        let (_, us, _) = quartiles(times[i].clone());
        println!(
            "RATIO {name} median={median:.3}x q1={q1:.3}x q3={q3:.3}x median_us={:.2}",
            us * 1e6
        );
    }
    std::process::exit(0);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("ratio") {
        return ratio(&args[1..]);
    }
    let adapter = args.first().map(String::as_str).unwrap_or("blocking");
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let depth: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let rounds = (n / depth).max(1);
    let n = rounds * depth;

    let setup = TlsSetup::new();
    let mut run = runner(adapter, depth, &setup);
    run((500 / depth).max(2));
    let by_thread = std::env::var_os("BY_THREAD").is_some();
    let before = by_thread.then(thread_counters);
    let (cpu0, sw0, _) = process_counters();
    let t = Instant::now();
    run(rounds);
    let wall = t.elapsed();
    let (cpu1, sw1, threads) = process_counters();
    if let Some(before) = before {
        print_by_thread(&before, &thread_counters(), n);
    }
    println!(
        "COST adapter={adapter} n={n} depth={depth} wall_us={:.2} cpu_us={:.2} switches={:.2} threads={threads}",
        wall.as_secs_f64() * 1e6 / n as f64,
        (cpu1 - cpu0) as f64 / 1e3 / n as f64,
        (sw1 - sw0) as f64 / n as f64,
    );
    // Servers and clients end with the process.
    std::process::exit(0);
}
