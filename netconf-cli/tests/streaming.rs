//! Issue 15 from the command line: `get`, `get-config` and `get-data` stream the content of
//! `<data>` to stdout or `-o FILE` as it arrives, against the library's blocking server
//! answering with `Answer::stream`, over real loopback TLS and SSH.
//!
//! A large reply is generated on the fly and hashed (SHA-256) by the server as it goes out;
//! the file the built `netconf` binary writes must hash the same. The binary's memory is
//! its peak RSS (`VmHWM` in /proc/PID/status), read while it is still running: the server
//! holds back the last piece of the reply until the test has read it, by which time
//! everything before that piece has gone through the binary and into the file. Timeouts
//! are deadlock guards only.

mod common;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{closed_port, netconf, run, ChildGuard, Out, TempDir};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::ssh::{SshServer, SshServerOptions, StaticAuth};
use netconf_blocking::{Answer, Reply, RpcError, Server};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_tests::certs::{Pki, PkiFiles};
use sha2::{Digest as _, Sha256};

const MIB: u64 = 1 << 20;
const PIECE: usize = 16 * 1024;
/// How long a test waits for anything before it calls it a deadlock.
const GUARD: Duration = Duration::from_secs(600);

/// What a generator produced: bytes and SHA-256.
type Digest = (u64, Vec<u8>);

/// The gate before the last piece: the generator says how much it produced before it and
/// waits to be let through.
struct Gate {
    reached: SyncSender<u64>,
    release: Receiver<()>,
}

/// The content of a reply, generated on the fly in pieces of `PIECE` bytes (each an
/// `<r n="..">` element whose filler letter follows its number, so a lost, repeated or
/// reordered piece changes the digest), hashed as it is produced.
struct Generated {
    pieces: u64,
    n: u64,
    sent: u64,
    hasher: Option<Sha256>,
    digest: Arc<Mutex<Option<Digest>>>,
    gate: Option<Gate>,
}

impl Generated {
    fn new(size: u64, digest: Arc<Mutex<Option<Digest>>>, gate: Option<Gate>) -> Generated {
        Generated {
            pieces: size.div_ceil(PIECE as u64),
            n: 0,
            sent: 0,
            hasher: Some(Sha256::new()),
            digest,
            gate,
        }
    }
}

impl Iterator for Generated {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.n == self.pieces {
            if let Some(h) = self.hasher.take() {
                *self.digest.lock().unwrap() = Some((self.sent, h.finalize().to_vec()));
            }
            return None;
        }
        if self.n + 1 == self.pieces {
            if let Some(gate) = self.gate.take() {
                gate.reached.send(self.sent).unwrap();
                if gate.release.recv_timeout(GUARD).is_err() {
                    return Some(Err(io::Error::other("the test never opened the gate")));
                }
            }
        }
        let mut v = Vec::with_capacity(PIECE);
        v.extend_from_slice(format!("<r n=\"{:016}\">", self.n).as_bytes());
        v.resize(PIECE - 4, b'a' + (self.n % 26) as u8);
        v.extend_from_slice(b"</r>");
        self.n += 1;
        self.sent += v.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(&v);
        }
        Some(Ok(Bytes::from(v)))
    }
}

/// What the next get-config answers with.
type Plan = Box<dyn FnOnce() -> Answer + Send>;

/// A library server on 127.0.0.1, over TLS and SSH, answering each get-config with the
/// plan queued for it.
struct Lib {
    server: Server,
    tls_port: u16,
    ssh_port: u16,
    fingerprint: String,
    files: PkiFiles,
    dir: TempDir,
    plans: Arc<Mutex<Vec<Plan>>>,
}

impl Lib {
    fn start() -> Lib {
        let pki = Pki::generate();
        let dir = TempDir::new("stream");
        let files = pki.write_to_dir(dir.path()).unwrap();
        let plans: Arc<Mutex<Vec<Plan>>> = Arc::default();
        let queued = plans.clone();
        let server = Server::new(ServerOptions::new(), move |request, _info| {
            match request.operation.name.as_str() {
                "get-config" => match queued.lock().unwrap().pop() {
                    Some(plan) => plan(),
                    None => Answer::Reply(Reply::Ok),
                },
                _ => Answer::Reply(Reply::Ok),
            }
        });
        let tls = pki.server_tls_options();
        let tls_port = server.listen_tls("127.0.0.1:0", &tls).unwrap().port();
        let ssh = SshServer::new(
            SshServerOptions::default(),
            StaticAuth::new().user("admin", "pw"),
        )
        .unwrap();
        let ssh_port = server.listen_ssh("127.0.0.1:0", &ssh).unwrap().port();
        Lib {
            server,
            tls_port,
            ssh_port,
            fingerprint: ssh.host_key_fingerprint(),
            files,
            dir,
            plans,
        }
    }

    fn plan(&self, plan: impl FnOnce() -> Answer + Send + 'static) {
        self.plans.lock().unwrap().push(Box::new(plan));
    }

    fn cmd(&self, transport: Transport, args: &[&str]) -> Command {
        let mut cmd = netconf();
        cmd.args(["--host", "127.0.0.1", "--timeout", "60"]);
        match transport {
            Transport::Tls => {
                cmd.args(["--port", &self.tls_port.to_string()])
                    .arg("--ca")
                    .arg(&self.files.ca_cert)
                    .arg("--cert")
                    .arg(&self.files.client_cert)
                    .arg("--key")
                    .arg(&self.files.client_key);
            }
            Transport::Ssh => {
                cmd.args(["--port", &self.ssh_port.to_string()])
                    .args(["--user", "admin", "--password", "pw"])
                    .args(["--host-key-fingerprint", &self.fingerprint]);
            }
        }
        cmd.args(args);
        cmd
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Tls,
    Ssh,
}

fn sha256_file(path: &Path) -> Digest {
    let mut file = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return (total, h.finalize().to_vec());
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
}

/// A field of /proc/PID/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The size of the one temporary `-o` file in `dir` (0 until it exists).
fn partial_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .and_then(|e| e.metadata().ok())
        .map_or(0, |m| m.len())
}

/// What one gated run of `get-config -o FILE` came to.
struct Measured {
    out: Out,
    /// The binary's peak RSS with all but the last piece through it, KiB.
    hwm_kib: u64,
    file: PathBuf,
    sent: Digest,
    elapsed: Duration,
}

/// Runs `netconf get-config -o FILE` against a generated reply of `size` bytes, reading
/// the binary's peak RSS before the last piece is let through.
fn measured_run(lib: &Lib, transport: Transport, size: u64, name: &str) -> Measured {
    let digest: Arc<Mutex<Option<Digest>>> = Arc::default();
    let (reached_tx, reached) = mpsc::sync_channel(1);
    let (release, release_rx) = mpsc::sync_channel(1);
    let gate = Gate {
        reached: reached_tx,
        release: release_rx,
    };
    let sent = digest.clone();
    lib.plan(move || Answer::stream(Generated::new(size, sent, Some(gate))));
    let out_dir = lib.dir.path().join(name);
    std::fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("reply.xml");
    let started = Instant::now();
    let child = lib
        .cmd(transport, &["get-config", "-o"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let guard = ChildGuard(Some(child));
    let before_last = reached
        .recv_timeout(GUARD)
        .expect("deadlock guard: the server never reached the last piece");
    // Everything produced before the last piece has been written, but for what the
    // binary's 64 KiB output buffer may still hold.
    let deadline = Instant::now() + GUARD;
    while partial_size(&out_dir) + 64 * 1024 < before_last {
        assert!(
            Instant::now() < deadline,
            "deadlock guard: the file stopped growing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let hwm_kib = proc_status_kib(pid, "VmHWM:");
    release.send(()).unwrap();
    let out = guard.wait_output(GUARD);
    let elapsed = started.elapsed();
    let sent = digest
        .lock()
        .unwrap()
        .clone()
        .expect("the generator finished");
    Measured {
        out,
        hwm_kib,
        file,
        sent,
        elapsed,
    }
}

/// A large generated reply, written with `-o FILE`: the file is what the server sent
/// (same length, same SHA-256), and the binary's peak RSS grows by less than 32 MiB over
/// the same command fetching a 1 MiB reply. (The session's window is 4 MiB; a client that
/// held the reply would grow by the reply's size, 100+ MiB here.)
fn large_reply_to_file_in_bounded_memory(transport: Transport, size: u64) {
    let lib = Lib::start();
    let small = measured_run(&lib, transport, MIB, "small");
    small.out.ok();
    assert_eq!(sha256_file(&small.file), small.sent);

    let big = measured_run(&lib, transport, size, "big");
    big.out.ok();
    assert_eq!(big.out.stdout, "", "-o FILE: nothing on stdout");
    assert_eq!(
        big.out.stderr, "",
        "stderr is not a terminal: no progress line"
    );
    let got = sha256_file(&big.file);
    assert_eq!(got.0, size, "the file's length");
    assert_eq!(got, big.sent, "the file is what the server sent");
    let growth = big.hwm_kib.saturating_sub(small.hwm_kib);
    eprintln!(
        "{transport:?}: netconf get-config -o FILE, {} MiB in {:.1?} ({:.0} MiB/s): peak RSS \
         {} KiB (1 MiB reply: {} KiB), +{} KiB",
        size / MIB,
        big.elapsed,
        (size / MIB) as f64 / big.elapsed.as_secs_f64(),
        big.hwm_kib,
        small.hwm_kib,
        growth
    );
    assert!(
        growth < 32 * 1024,
        "{transport:?}: peak RSS grew by {growth} KiB for a {} MiB reply ({} KiB vs {} KiB)",
        size / MIB,
        big.hwm_kib,
        small.hwm_kib
    );
    // Nothing left beside the file.
    let names: Vec<_> = std::fs::read_dir(big.file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["reply.xml"]);
}

#[cfg(target_os = "linux")]
#[test]
fn large_reply_over_tls_to_a_file_in_bounded_memory() {
    large_reply_to_file_in_bounded_memory(Transport::Tls, 256 * MIB);
}

#[cfg(target_os = "linux")]
#[test]
fn large_reply_over_ssh_to_a_file_in_bounded_memory() {
    large_reply_to_file_in_bounded_memory(Transport::Ssh, 256 * MIB);
}

/// The content in tiny pieces, split inside tags, references and text.
fn tiny_pieces(content: &'static str, size: usize) -> Answer {
    let pieces: Vec<io::Result<Bytes>> = content
        .as_bytes()
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Answer::stream(pieces)
}

const NESTED: &str = "<top xmlns=\"urn:t\"><a><b>1 &amp; 2</b>\n  <c/></a><d> x </d></top>";

#[test]
fn stdout_gets_the_content_as_received_or_indented_as_it_streams() {
    let lib = Lib::start();
    for transport in [Transport::Tls, Transport::Ssh] {
        lib.plan(|| tiny_pieces(NESTED, 3));
        let out = run(&mut lib.cmd(transport, &["get-config"]));
        out.ok();
        assert_eq!(out.stdout, format!("{NESTED}\n"), "{transport:?}");

        lib.plan(|| tiny_pieces(NESTED, 5));
        let out = run(&mut lib.cmd(transport, &["get-config", "--format", "pretty"]));
        out.ok();
        assert_eq!(
            out.stdout,
            "<top xmlns=\"urn:t\">\n  <a>\n    <b>1 &amp; 2</b>\n    <c/>\n  </a>\n  <d> x </d>\n</top>\n",
            "{transport:?}"
        );
    }
    // -o FILE holds the content byte for byte, without the newline stdout gets.
    let file = lib.dir.path().join("exact.xml");
    lib.plan(|| tiny_pieces(NESTED, 7));
    let out = run(lib.cmd(Transport::Tls, &["get-config", "-o"]).arg(&file));
    out.ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), NESTED);
    // An empty <data>: nothing at all.
    lib.plan(|| Answer::Reply(Reply::data("").unwrap()));
    let out = run(&mut lib.cmd(Transport::Tls, &["get-config"]));
    out.ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn a_reply_that_breaks_off_leaves_the_file_as_it_was() {
    let lib = Lib::start();
    let dir = TempDir::new("broken");
    let file = dir.file("reply.xml", "the previous content");
    lib.plan(|| {
        let digest = Arc::default();
        // 2 MiB, then the source fails: the server ends the session mid-reply.
        let pieces = Generated::new(2 * MIB, digest, None)
            .chain(std::iter::once(Err(io::Error::other("disk on fire"))));
        Answer::stream(pieces)
    });
    let out = run(lib.cmd(Transport::Tls, &["get-config", "-o"]).arg(&file));
    out.code(2);
    assert!(
        out.stderr.starts_with("netconf: ")
            && out
                .stderr
                .contains("the reply broke off after 2.0 MiB of <data>")
            && out.stderr.contains("reply.xml left as it was"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "the previous content"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temp file left"
    );

    // To stdout: what arrived is printed, and the exit status says it is not all.
    lib.plan(|| {
        let pieces = Generated::new(MIB, Arc::default(), None)
            .chain(std::iter::once(Err(io::Error::other("disk on fire"))));
        Answer::stream(pieces)
    });
    let out = run(&mut lib.cmd(Transport::Ssh, &["get-config"]));
    out.code(2);
    assert_eq!(out.stdout.len() as u64, MIB);
    assert!(
        out.stderr.contains("broke off after 1.0 MiB"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_rpc_error_writes_no_file() {
    let lib = Lib::start();
    let dir = TempDir::new("rpc-error");
    let file = dir.path().join("reply.xml");
    lib.plan(|| {
        Answer::Reply(Reply::Errors(vec![RpcError::new(
            ErrorType::Application,
            ErrorTag::AccessDenied,
        )
        .with_message("not for you")]))
    });
    let out = run(lib.cmd(Transport::Tls, &["get-config", "-o"]).arg(&file));
    out.code(1);
    assert_eq!(
        out.stderr,
        "rpc-error: error access-denied (application): not for you\n"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_output_file_that_cannot_be_written_fails_before_connecting() {
    let dir = TempDir::new("unwritable");
    let mut cmd = netconf();
    cmd.args(["--host", "127.0.0.1", "--port", &closed_port().to_string()])
        .args(["--ca", "/nonexistent/ca.pem", "get", "-o"])
        .arg(dir.path().join("no/such/dir/reply.xml"));
    let out = run(&mut cmd);
    out.code(2);
    assert!(
        out.stderr.starts_with("netconf: cannot write -o ") && out.stderr.contains("no/such/dir"),
        "{}",
        out.stderr
    );
    let out = run(netconf()
        .args(["get-data", "--datastore", "running", "-o"])
        .arg(dir.path()));
    out.code(2);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
}
