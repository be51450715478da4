//! Helper for `tests/bench/stream_rss.py`: peak memory of streaming a huge reply, with the
//! server and the client in separate processes so each one's peak RSS is its own.
//!
//! ```text
//! bench_stream_rss serve ADAPTER DIR BYTES
//!     ADAPTER = blocking | tokio | smol. Writes ca.pem, server.pem/key, client.pem/key into
//!     DIR, listens for TLS on 127.0.0.1:0 and answers every <get-config> with a streamed
//!     <data> of BYTES bytes generated as it is sent (64 KiB pieces, each a fresh buffer
//!     filled when the transport asks for it); prints `port=P ca=.. cert=.. key=..` and
//!     serves until stdin closes, then prints `SERVER adapter=A vmhwm_kib=K`.
//! bench_stream_rss get ADAPTER PORT CA CERT KEY [streamed|buffered]
//!     connects with that adapter's client, asks for <get-config> once (`call_streamed`
//!     read to its end through a 64 KiB buffer, or `call` for the whole payload at once),
//!     checks the length and the content's ends, prints
//!     `GET adapter=A mode=M bytes=N seconds=S first_byte=S vmhwm_kib=K`.
//! ```
//!
//! VmHWM is the process's peak resident set size from /proc/self/status (the script also
//! runs both under `/usr/bin/time -v`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_lite::AsyncReadExt;
use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_blocking::Reply;
use netconf_tests::certs::Pki;

const PIECE: usize = 64 * 1024;
const ROW: &str = "<interface><name>ge-0/0/1</name><description>uplink to the core</description>\
                   <mtu>9000</mtu><enabled>true</enabled></interface>\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match a(0) {
        "serve" if args.len() >= 4 => match a(3).parse() {
            Ok(bytes) => serve(a(1), PathBuf::from(a(2)), bytes),
            Err(e) => Err(format!("BYTES: {e}").into()),
        },
        "get" if args.len() >= 6 => get(a(1), a(2), a(3), a(4), a(5), a(6) == "buffered"),
        _ => {
            eprintln!(
                "usage: bench_stream_rss serve ADAPTER DIR BYTES | get ADAPTER PORT CA CERT KEY [streamed|buffered]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The pieces of a `total`-byte payload, each generated when pulled: whole rows, the last
/// piece padded with newlines.
fn generate(total: usize) -> impl Iterator<Item = std::io::Result<Bytes>> + Send + 'static {
    let rows_per_piece = PIECE / ROW.len();
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(rows_per_piece * ROW.len());
        let mut piece = BytesMut::with_capacity(n);
        while piece.len() + ROW.len() <= n {
            piece.extend_from_slice(ROW.as_bytes());
        }
        piece.resize(n, b'\n');
        left -= n;
        Some(Ok(piece.freeze()))
    })
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn serve(adapter: &str, dir: PathBuf, bytes: usize) -> Result<()> {
    std::fs::create_dir_all(&dir)?;
    let pki = Pki::generate();
    let files = pki.write_to_dir(&dir)?;
    let tls = ServerTlsOptions::new(
        PemSource::file(&files.server_cert),
        PemSource::file(&files.server_key),
        PemSource::file(&files.ca_cert),
    );
    let announce = |port: u16| {
        println!(
            "port={port} ca={} cert={} key={}",
            files.ca_cert.display(),
            files.client_cert.display(),
            files.client_key.display(),
        );
    };
    // Serve until whoever started us closes our stdin.
    let wait_stdin = || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    match adapter {
        "blocking" => {
            let server = netconf_blocking::Server::new(ServerOptions::new(), move |req, _| {
                if req.operation.name == "get-config" {
                    netconf_blocking::Answer::stream(generate(bytes))
                } else {
                    Reply::Ok.into()
                }
            });
            announce(server.listen_tls("127.0.0.1:0", &tls)?.port());
            wait_stdin();
            server.shutdown();
        }
        "tokio" => {
            let rt = tokio::runtime::Runtime::new()?;
            let server =
                netconf_tokio::Server::new(ServerOptions::new(), move |req, _| async move {
                    if req.operation.name == "get-config" {
                        netconf_tokio::Answer::stream(futures_lite::stream::iter(generate(bytes)))
                    } else {
                        Reply::Ok.into()
                    }
                });
            announce(rt.block_on(server.listen_tls("127.0.0.1:0", &tls))?.port());
            wait_stdin();
            rt.block_on(server.shutdown());
        }
        "smol" => {
            let server =
                netconf_smol::Server::new(ServerOptions::new(), move |req, _| async move {
                    if req.operation.name == "get-config" {
                        netconf_smol::Answer::stream(futures_lite::stream::iter(generate(bytes)))
                    } else {
                        Reply::Ok.into()
                    }
                });
            announce(smol::block_on(server.listen_tls("127.0.0.1:0", &tls))?.port());
            wait_stdin();
            smol::block_on(server.shutdown());
        }
        other => return Err(format!("no adapter {other}").into()),
    }
    println!("SERVER adapter={adapter} vmhwm_kib={}", vm_hwm_kib());
    Ok(())
}

/// What the client saw.
struct Got {
    bytes: usize,
    first_byte: f64,
    head: Vec<u8>,
    tail: u8,
}

impl Got {
    fn new() -> Got {
        Got {
            bytes: 0,
            first_byte: 0.0,
            head: Vec::new(),
            tail: 0,
        }
    }

    fn take(&mut self, piece: &[u8], t: Instant) {
        if piece.is_empty() {
            return;
        }
        if self.bytes == 0 {
            self.first_byte = t.elapsed().as_secs_f64();
        }
        if self.head.len() < ROW.len() {
            let n = (ROW.len() - self.head.len()).min(piece.len());
            self.head.extend_from_slice(&piece[..n]);
        }
        self.bytes += piece.len();
        self.tail = piece[piece.len() - 1];
    }
}

fn get(adapter: &str, port: &str, ca: &str, cert: &str, key: &str, buffered: bool) -> Result<()> {
    let tls = ClientTlsOptions::new()
        .ca_file(ca)
        .client_cert_files(cert, key);
    let addr = format!("127.0.0.1:{port}");
    let op = GetConfig::new(Datastore::Running);
    let mut buf = vec![0u8; PIECE];
    let mut got = Got::new();
    let t;
    match adapter {
        "blocking" => {
            let client = netconf_blocking::Client::connect_tls(&addr, &tls)?;
            t = Instant::now();
            if buffered {
                let data = client.call(&op)?;
                got.take(data.as_str().as_bytes(), t);
            } else {
                let mut reader = client.call_streamed(&op)?;
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    got.take(&buf[..n], t);
                }
            }
            client.close()?;
        }
        "tokio" => {
            let rt = tokio::runtime::Runtime::new()?;
            let client = rt.block_on(netconf_tokio::Client::connect_tls(&addr, &tls))?;
            t = Instant::now();
            rt.block_on(fetch(&client, &op, buffered, &mut buf, &mut got, t))?;
            rt.block_on(client.close())?;
        }
        "smol" => {
            let client = smol::block_on(netconf_smol::Client::connect_tls(&addr, &tls))?;
            t = Instant::now();
            smol::block_on(fetch(&client, &op, buffered, &mut buf, &mut got, t))?;
            smol::block_on(client.close())?;
        }
        other => return Err(format!("no adapter {other}").into()),
    }
    let seconds = t.elapsed().as_secs_f64();
    if !ROW.as_bytes().starts_with(&got.head) || got.tail != b'\n' {
        return Err(format!(
            "unexpected content: starts {:?}, ends {:?}",
            String::from_utf8_lossy(&got.head),
            got.tail as char
        )
        .into());
    }
    println!(
        "GET adapter={adapter} mode={} bytes={} seconds={seconds:.3} first_byte={:.6} vmhwm_kib={}",
        if buffered { "buffered" } else { "streamed" },
        got.bytes,
        got.first_byte,
        vm_hwm_kib()
    );
    Ok(())
}

async fn fetch<R: netconf_async::Runtime>(
    client: &netconf_async::Client<R>,
    op: &GetConfig,
    buffered: bool,
    buf: &mut [u8],
    got: &mut Got,
    t: Instant,
) -> Result<()> {
    if buffered {
        let data = client.call(op).await?;
        got.take(data.as_str().as_bytes(), t);
    } else {
        let mut reader = client.call_streamed(op).await?;
        loop {
            let n = reader.read(buf).await?;
            if n == 0 {
                break;
            }
            got.take(&buf[..n], t);
        }
    }
    Ok(())
}
