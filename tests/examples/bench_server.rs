//! Helper for `tests/bench/ncclient_get_config.py`: a netconf-blocking server whose
//! `<get-config>` answers with a prebuilt `<data>` of a given size, over TLS and SSH, and a
//! tiny timing client for the same server, so Python and Rust clients are compared in the
//! same run.
//!
//! ```text
//! cargo run --release -p netconf-tests --example bench_server -- serve DIR [BYTES]
//!     writes ca.pem, server.pem/key, client.pem/key into DIR, listens for TLS and for SSH
//!     (user "bench", password "bench", a fresh ed25519 host key) on 127.0.0.1, prints
//!     `port=P ca=.. cert=.. key=.. bytes=N ssh_port=Q fingerprint=SHA256:..` on one line
//!     and serves until stdin closes.
//! cargo run --release -p netconf-tests --example bench_server -- get PORT CA CERT KEY [REPEAT]
//!     connects over TLS, then times REPEAT get-configs; prints `HELLO seconds=S` and one
//!     `GET bytes=N seconds=S` line per request.
//! cargo run --release -p netconf-tests --example bench_server -- get-ssh PORT FINGERPRINT [REPEAT]
//!     the same over SSH (user "bench", the host key pinned by its fingerprint).
//! ```

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};
use netconf_blocking::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_blocking::{Client, Reply, Server};
use netconf_tests::certs::Pki;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") if args.len() >= 2 => serve(
            PathBuf::from(&args[1]),
            args.get(2)
                .map_or(Ok(10_000_000), |s| s.parse())
                .unwrap_or(10_000_000),
        ),
        Some("get") if args.len() >= 5 => get(
            &args[1],
            &args[2],
            &args[3],
            &args[4],
            args.get(5).and_then(|s| s.parse().ok()).unwrap_or(3),
        ),
        Some("get-ssh") if args.len() >= 3 => get_ssh(
            &args[1],
            &args[2],
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3),
        ),
        _ => {
            eprintln!(
                "usage: bench_server serve DIR [BYTES] | get PORT CA CERT KEY [REPEAT] | get-ssh PORT FINGERPRINT [REPEAT]"
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

/// Configuration-like XML of exactly `len` bytes (whole elements, padded with newlines): the
/// same payload as the criterion benches.
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

fn serve(dir: PathBuf, bytes: usize) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&dir)?;
    let pki = Pki::generate();
    let files = pki.write_to_dir(&dir)?;
    let tls = ServerTlsOptions::new(
        PemSource::file(&files.server_cert),
        PemSource::file(&files.server_key),
        PemSource::file(&files.ca_cert),
    );
    let data = payload(bytes);
    let server = Server::new(ServerOptions::new(), move |req, _info| {
        if req.operation.name == "get-config" {
            Reply::data_unchecked(data.clone())
        } else {
            Reply::Ok
        }
    });
    let addr = server.listen_tls("127.0.0.1:0", &tls)?;
    let ssh = SshServer::new(
        SshServerOptions::default(),
        StaticAuth::new().user("bench", "bench"),
    )?;
    let ssh_addr = server.listen_ssh("127.0.0.1:0", &ssh)?;
    println!(
        "port={} ca={} cert={} key={} bytes={bytes} ssh_port={} fingerprint={}",
        addr.port(),
        files.ca_cert.display(),
        files.client_cert.display(),
        files.client_key.display(),
        ssh_addr.port(),
        ssh.host_key_fingerprint(),
    );
    // Serve until whoever started us closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    server.shutdown();
    Ok(())
}

fn get(
    port: &str,
    ca: &str,
    cert: &str,
    key: &str,
    repeat: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let tls = ClientTlsOptions::new()
        .ca_file(ca)
        .client_cert_files(cert, key);
    let t = Instant::now();
    let client = Client::connect_tls(&format!("127.0.0.1:{port}"), &tls)?;
    println!("HELLO seconds={:.4}", t.elapsed().as_secs_f64());
    time_gets(client, repeat)
}

fn get_ssh(port: &str, fingerprint: &str, repeat: usize) -> Result<(), Box<dyn std::error::Error>> {
    let ssh = SshClientOptions::new("bench")
        .password("bench")
        .host_key_fingerprint(fingerprint);
    let t = Instant::now();
    let client = Client::connect_ssh(&format!("127.0.0.1:{port}"), &ssh)?;
    println!("HELLO seconds={:.4}", t.elapsed().as_secs_f64());
    time_gets(client, repeat)
}

/// Times `repeat` get-configs, then closes.
fn time_gets(client: Client, repeat: usize) -> Result<(), Box<dyn std::error::Error>> {
    let op = GetConfig::new(Datastore::Running);
    for _ in 0..repeat {
        let t = Instant::now();
        let data = client.call(&op)?;
        println!(
            "GET bytes={} seconds={:.4}",
            data.len(),
            t.elapsed().as_secs_f64()
        );
    }
    client.close()?;
    Ok(())
}
