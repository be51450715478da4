//! The harness shared by the `interop_*` test targets (each includes it with
//! `#[path = "../interop/harness.rs"] mod harness;`).
//!
//! Interop tests run only when asked: `NETCONF_INTEROP=1` runs them and skips a test whose
//! peer (gcc + libnetconf2 headers, the Python venv) is missing; `NETCONF_INTEROP=require`
//! (what `tests/interop/run` and so `.ci/run` use) turns a missing peer into a failure.
//! Unset, every interop test prints "skipped: set NETCONF_INTEROP=1" and passes, so a plain
//! `cargo test --workspace` needs none of the peers.
//!
//! Peers are external processes bound to 127.0.0.1 only. Each is started by the test itself,
//! awaited by polling its TCP port (never a fixed sleep), and killed by its pid when the
//! [`Peer`] guard drops, on success, failure or panic alike.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::{Reply, Request, RpcError};
use netconf_tests::certs::{Pki, PkiFiles};

/// The greeting our servers hand out before anyone edits it.
pub const OUR_GREETING: &str = "hello from netconf-rs";

/// Capabilities our servers advertise on top of base:1.0/1.1, so that clients which check
/// capabilities before sending go ahead: ncclient checks `:writable-running` before an
/// edit-config on running and `:validate` before validate; libnetconf2's client builds its
/// YANG context from the hello and enables ietf-netconf's features only from the module
/// capability's `features=` list (without it: "Term node "running" not found" on edit-config).
/// The `&` in the module capability also checks that our hello escapes capability text.
pub const SERVER_CAPABILITIES: &[&str] = &[
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:xml:ns:netconf:base:1.0?module=ietf-netconf&revision=2013-09-29\
     &features=writable-running,candidate,validate",
];

/// The size of "the 10 MB reply".
pub const BIG_BYTES: usize = 10_000_000;

// ---- the switch ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `NETCONF_INTEROP=1`: run; a missing peer skips the test.
    Run,
    /// `NETCONF_INTEROP=require`: run; a missing peer fails the test.
    Require,
}

/// The interop mode, or `None` (after printing why) when interop tests are off.
pub fn mode(test: &str) -> Option<Mode> {
    match std::env::var("NETCONF_INTEROP").as_deref() {
        Ok("require") => Some(Mode::Require),
        Ok("1") | Ok("true") | Ok("yes") => Some(Mode::Run),
        _ => {
            println!("{test}: skipped: set NETCONF_INTEROP=1 (or =require) to run interop tests");
            None
        }
    }
}

/// Unwraps a peer prerequisite: missing is a skip under `Run` and a failure under `Require`.
pub fn need<T>(mode: Mode, test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(why) if mode == Mode::Require => {
            panic!("{test}: NETCONF_INTEROP=require and a peer is missing: {why}")
        }
        Err(why) => {
            println!("{test}: skipped: peer missing: {why} (run tests/interop/install)");
            None
        }
    }
}

// ---- paths ---------------------------------------------------------------------------------

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

pub fn interop_src() -> PathBuf {
    workspace_root().join("tests").join("interop")
}

/// The YANG modules libnetconf2 needs, shipped with the tests (see `tests/interop/yang/`).
pub fn shipped_schemas() -> PathBuf {
    interop_src().join("yang")
}

/// The text of a shipped module, by name and optional revision (`get-schema`'s arguments).
pub fn shipped_schema(name: &str, revision: Option<&str>) -> Option<String> {
    let entries = fs::read_dir(shipped_schemas()).ok()?;
    let mut found: Option<(String, PathBuf)> = None;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".yang") else {
            continue;
        };
        let (module, rev) = stem.split_once('@').unwrap_or((stem, ""));
        if module != name || revision.is_some_and(|r| !r.is_empty() && r != rev) {
            continue;
        }
        // Without a revision asked for, the newest one.
        if found.as_ref().is_none_or(|(best, _)| rev > best.as_str()) {
            found = Some((rev.to_owned(), entry.path()));
        }
    }
    fs::read_to_string(found?.1).ok()
}

/// A fresh directory for one test's certificates, logs and YANG modules, removed when dropped.
///
/// Everything a peer reads or writes lives here: libnetconf2's client writes the schemas it
/// fetches into its search path, so that path is `schema_dir`, never a system directory.
#[derive(Debug)]
pub struct Scratch {
    pub dir: PathBuf,
    pub pki: Pki,
    pub files: PkiFiles,
    /// A copy of `tests/interop/yang/`: the C peers' schema search path.
    pub schema_dir: PathBuf,
    /// An empty directory: a libnetconf2 client's search path when it must fetch every
    /// module from the server with `<get-schema>`.
    pub empty_schema_dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netconf-interop-{}-{}-{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating a scratch directory");
        let pki = Pki::generate();
        let files = pki.write_to_dir(&dir).expect("writing the test PKI");
        let schema_dir = dir.join("yang");
        let empty_schema_dir = dir.join("yang-fetched");
        fs::create_dir_all(&schema_dir).expect("creating the schema directory");
        fs::create_dir_all(&empty_schema_dir).expect("creating the schema directory");
        for entry in fs::read_dir(shipped_schemas()).expect("tests/interop/yang") {
            let entry = entry.expect("listing tests/interop/yang");
            if entry.path().extension().is_some_and(|e| e == "yang") {
                fs::copy(entry.path(), schema_dir.join(entry.file_name()))
                    .expect("copying a YANG module into the scratch directory");
            }
        }
        Scratch {
            dir,
            pki,
            files,
            schema_dir,
            empty_schema_dir,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---- building the C peers ------------------------------------------------------------------

fn pkg_config_flags() -> Result<Vec<String>, String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libnetconf2", "libyang"])
        .output()
        .map_err(|e| format!("pkg-config not runnable: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pkg-config finds no libnetconf2/libyang: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Compiles `tests/interop/<name>.c` into `target/interop/bin/<name>` (once per process, and
/// only when the source is newer than the binary), with gcc and pkg-config's flags.
pub fn c_peer(name: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(r) = built.get(name) {
        return r.clone();
    }
    let r = compile(name);
    built.insert(name.to_owned(), r.clone());
    r
}

fn compile(name: &str) -> Result<PathBuf, String> {
    let src = interop_src().join(format!("{name}.c"));
    let bin_dir = target_dir().join("interop").join("bin");
    fs::create_dir_all(&bin_dir).map_err(|e| format!("creating {}: {e}", bin_dir.display()))?;
    let bin = bin_dir.join(name);
    // Checked even when the binary is cached: without the libraries it cannot run.
    let flags = pkg_config_flags()?;
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(b), Some(s)) = (mtime(&bin), mtime(&src)) {
        if b >= s {
            return Ok(bin);
        }
    }
    let tmp = bin_dir.join(format!("{name}.tmp-{}", std::process::id()));
    let out = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(&flags)
        .args(["-lssh", "-lssl", "-lcrypto", "-lpthread"])
        .output()
        .map_err(|e| format!("gcc not runnable: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "gcc failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::rename(&tmp, &bin).map_err(|e| format!("installing {}: {e}", bin.display()))?;
    Ok(bin)
}

/// The interop venv's python, checked to import both client libraries.
pub fn venv_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("NETCONF_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("interop-venv"));
    let python = venv.join("bin").join("python");
    if !python.exists() {
        return Err(format!("no Python venv at {}", venv.display()));
    }
    let out = Command::new(&python)
        .args(["-c", "import ncclient, netconf_client, six"])
        .output()
        .map_err(|e| format!("{} not runnable: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the venv lacks ncclient/netconf-client: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(python)
}

// ---- peer processes -------------------------------------------------------------------------

/// A peer process, killed (by its pid) and reaped when dropped.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Peer {
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the peer now and returns its log.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}

/// Waits until `port` on 127.0.0.1 accepts a TCP connection, or the peer exits, or 15 s pass.
pub fn await_port(peer: &mut Peer, port: u16) -> Result<Duration, String> {
    let start = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = peer.child.try_wait() {
            return Err(format!(
                "{} exited ({status}) before listening:\n{}",
                peer.name,
                peer.log_text()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(15) {
            return Err(format!(
                "{} not listening on {addr} after 15 s:\n{}",
                peer.name,
                peer.log_text()
            ));
        }
        // A poll interval while the peer starts (it takes 50-90 ms), not a fixed sleep.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the libnetconf2 server (`nc_server.c`) on a free port and waits for it to listen.
/// With `data_size`, its get-config replies carry about that many bytes.
pub fn start_nc_server(scratch: &Scratch, data_size: Option<usize>) -> Result<(Peer, u16), String> {
    start_nc_server_with(scratch, data_size, "libnetconf2 nc_server", |cmd, port| {
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--cert")
            .arg(&scratch.files.server_cert)
            .arg("--key")
            .arg(&scratch.files.server_key)
            .arg("--ca")
            .arg(&scratch.files.ca_cert);
    })
}

/// Starts the libnetconf2 server with an SSH endpoint (libssh) on a free port: host key
/// `keys.host_key`, user [`SSH_USER`] with [`SSH_PASSWORD`] or `keys.user_key`.
pub fn start_nc_server_ssh(
    scratch: &Scratch,
    keys: &SshKeys,
    data_size: Option<usize>,
) -> Result<(Peer, u16), String> {
    start_nc_server_with(
        scratch,
        data_size,
        "libnetconf2 nc_server (SSH)",
        |cmd, port| {
            cmd.arg("--ssh-port")
                .arg(port.to_string())
                .arg("--hostkey")
                .arg(&keys.host_key)
                .args(["--user", SSH_USER, "--password", SSH_PASSWORD, "--authkey"])
                .arg(keys.user_key.with_extension("pub"));
        },
    )
}

fn start_nc_server_with(
    scratch: &Scratch,
    data_size: Option<usize>,
    name: &str,
    endpoint: impl Fn(&mut Command, u16),
) -> Result<(Peer, u16), String> {
    let bin = c_peer("nc_server")?;
    let mut last = String::new();
    for attempt in 0..3 {
        let port = free_port();
        let log = scratch.dir.join(format!("nc_server-{attempt}.log"));
        let log_file = File::create(&log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        endpoint(&mut cmd, port);
        cmd.arg("--schemas")
            .arg(&scratch.schema_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        if let Some(n) = data_size {
            cmd.arg("--data-size").arg(n.to_string());
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting nc_server: {e}"))?;
        let mut peer = Peer {
            name: name.into(),
            child,
            log,
        };
        match await_port(&mut peer, port) {
            Ok(took) => {
                println!("{name} listening on 127.0.0.1:{port} after {took:?}");
                return Ok((peer, port));
            }
            // Most likely the port was taken between free_port() and bind: try another.
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// How a libnetconf2 peer does call home (RFC 8071): over TLS with the scratch PKI, or over
/// SSH with these keys (host key `keys.host_key`; user [`SSH_USER`], by [`SSH_PASSWORD`] or
/// `keys.user_key`).
#[derive(Debug, Clone, Copy)]
pub enum CallHomeVia<'a> {
    Tls,
    Ssh(&'a SshKeys),
}

/// Starts the libnetconf2 server (`nc_server --ch-tls-port/--ch-ssh-port`) calling a manager
/// home at 127.0.0.1:`manager_port`: libnetconf2's own call-home thread dials at once, again
/// right after each session ends, and every second after a failed call. It listens on no
/// port, so there is nothing to await: the manager's listener sees it arrive.
pub fn start_nc_server_calling_home(
    scratch: &Scratch,
    via: CallHomeVia<'_>,
    manager_port: u16,
) -> Result<Peer, String> {
    let bin = c_peer("nc_server")?;
    let log = scratch.dir.join(format!("nc_server-ch-{manager_port}.log"));
    let log_file = File::create(&log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&bin);
    match via {
        CallHomeVia::Tls => {
            cmd.arg("--ch-tls-port")
                .arg(manager_port.to_string())
                .arg("--cert")
                .arg(&scratch.files.server_cert)
                .arg("--key")
                .arg(&scratch.files.server_key)
                .arg("--ca")
                .arg(&scratch.files.ca_cert);
        }
        CallHomeVia::Ssh(keys) => {
            cmd.arg("--ch-ssh-port")
                .arg(manager_port.to_string())
                .arg("--hostkey")
                .arg(&keys.host_key)
                .args(["--user", SSH_USER, "--password", SSH_PASSWORD, "--authkey"])
                .arg(keys.user_key.with_extension("pub"));
        }
    }
    let child = cmd
        .arg("--schemas")
        .arg(&scratch.schema_dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("starting nc_server: {e}"))?;
    Ok(Peer {
        name: "libnetconf2 nc_server (calling home)".into(),
        child,
        log,
    })
}

/// libnetconf2's client (`nc_client --listen-port`) waiting for servers to call home.
#[derive(Debug)]
pub struct ListeningClient {
    /// Its stdout goes to `peer.log`.
    pub peer: Peer,
    pub stderr: PathBuf,
    pub port: u16,
}

impl ListeningClient {
    /// Waits for it to exit (killing it by pid after `limit`) and returns what it printed.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let start = Instant::now();
        let status = loop {
            match self.peer.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() < limit => {
                    // A poll interval while the client runs, not a fixed sleep.
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break None,
            }
        };
        let _ = self.peer.child.kill();
        let _ = self.peer.child.wait();
        Outcome {
            status,
            stdout: self.peer.log_text(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: start.elapsed(),
        }
    }
}

/// Starts libnetconf2's client listening for call home on a free port of 127.0.0.1, over TLS
/// (the scratch PKI) or SSH (user [`SSH_USER`] with [`SSH_PASSWORD`], the host key checked
/// against `keys.host_fingerprint`), to accept `sessions` calls one after the other and run
/// its operations on each. Returns once it printed `LISTENING` (its port is bound).
pub fn start_nc_client_listening(
    scratch: &Scratch,
    via: CallHomeVia<'_>,
    sessions: usize,
) -> Result<ListeningClient, String> {
    start_nc_client_listening_with(scratch, via, sessions, &[])
}

/// [`start_nc_client_listening`] with `extra` arguments after the usual ones (`nc_client`
/// takes the last of a repeated option: `--ca OTHER.pem` or `--hostkey-sha256 SHA256:...`
/// make it refuse our servers).
pub fn start_nc_client_listening_with(
    scratch: &Scratch,
    via: CallHomeVia<'_>,
    sessions: usize,
    extra: &[&std::ffi::OsStr],
) -> Result<ListeningClient, String> {
    let bin = c_peer("nc_client")?;
    let mut last = String::new();
    for attempt in 0..3 {
        let port = free_port();
        let out = scratch.dir.join(format!("nc_client-ch-{attempt}.out"));
        let err = scratch.dir.join(format!("nc_client-ch-{attempt}.err"));
        let mut cmd = Command::new(&bin);
        cmd.arg("--listen-port")
            .arg(port.to_string())
            .arg("--accept")
            .arg(sessions.to_string());
        match via {
            CallHomeVia::Tls => {
                cmd.arg("--cert")
                    .arg(&scratch.files.client_cert)
                    .arg("--key")
                    .arg(&scratch.files.client_key)
                    .arg("--ca")
                    .arg(&scratch.files.ca_cert);
            }
            CallHomeVia::Ssh(keys) => {
                cmd.args(["--transport", "ssh", "--user", SSH_USER])
                    .args(["--password", SSH_PASSWORD, "--hostkey-sha256"])
                    .arg(&keys.host_fingerprint);
            }
        }
        let child = cmd
            .arg("--schemas")
            .arg(&scratch.schema_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(File::create(&out).map_err(|e| e.to_string())?)
            .stderr(File::create(&err).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting nc_client: {e}"))?;
        let mut peer = Peer {
            name: "libnetconf2 nc_client (call-home listener)".into(),
            child,
            log: out,
        };
        let start = Instant::now();
        loop {
            let text = peer.log_text();
            if text.contains("LISTENING ") {
                println!("libnetconf2 client listening for call home on 127.0.0.1:{port}");
                return Ok(ListeningClient {
                    peer,
                    stderr: err,
                    port,
                });
            }
            let exited = matches!(peer.child.try_wait(), Ok(Some(_)));
            if exited || start.elapsed() > Duration::from_secs(15) {
                last = format!(
                    "nc_client did not listen on 127.0.0.1:{port}:\n{text}\n{}",
                    fs::read_to_string(&err).unwrap_or_default()
                );
                break;
            }
            // A poll interval while the client starts, not a fixed sleep.
            std::thread::sleep(Duration::from_millis(5));
        }
        // Most likely the port was taken between free_port() and bind: try another.
    }
    Err(last)
}

/// What a client process did.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when it was killed for running past its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The rest of the first stdout line that starts with `key` followed by a space.
    pub fn line(&self, key: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| {
            l.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' ').or(rest.is_empty().then_some("")))
        })
    }

    /// `key=value` from the line starting with `line_key`.
    pub fn field(&self, line_key: &str, key: &str) -> Option<&str> {
        self.line(line_key)?
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs a client process, writes `input` on its stdin and closes stdin only once its stdout
/// holds `until` (as a person at a terminal would), then waits for it to exit; killed (by
/// pid) if it runs past `limit`.
pub fn run_client_interactive(
    cmd: &mut Command,
    input: &[u8],
    until: &str,
    limit: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let _ = stdin.write_all(input);
    let mut stdin = Some(stdin);
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stdout = Vec::new();
    let mut timed_out = false;
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(piece) => {
                // Only the new bytes (and enough before them to hold a split marker) are
                // searched: rescanning all of a 10 MB reply per read would be quadratic.
                let from = stdout.len().saturating_sub(until.len());
                stdout.extend_from_slice(&piece);
                if stdin.is_some()
                    && stdout[from..]
                        .windows(until.len())
                        .any(|w| w == until.as_bytes())
                {
                    stdin = None; // EOF to the client
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                timed_out = true;
                break;
            }
        }
    }
    drop(stdin);
    let status = child.wait().ok();
    let stderr = stderr_reader.join().unwrap_or_default();
    Outcome {
        status: if timed_out { None } else { status },
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        elapsed: start.elapsed(),
    }
}

/// Runs a client process to completion, killing it (by pid) if it runs past `limit`.
pub fn run_client(cmd: &mut Command, limit: Duration) -> Outcome {
    run_client_with_stdin(cmd, None, limit)
}

/// Like [`run_client`], writing `stdin` (then closing it) when given, else no stdin at all.
pub fn run_client_with_stdin(
    cmd: &mut Command,
    stdin: Option<Vec<u8>>,
    limit: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A writer of its own: the child may answer before it has read everything.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        let _ = tx.send(String::from_utf8_lossy(&s).into_owned());
    });
    // stdout reaches EOF when the process exits (or is killed).
    let (stdout, timed_out) = match rx.recv_timeout(limit) {
        Ok(s) => (s, false),
        Err(_) => {
            let _ = child.kill();
            (rx.recv().unwrap_or_default(), true)
        }
    };
    let status = child.wait().ok();
    let stderr = stderr_reader.join().unwrap_or_default();
    Outcome {
        status: if timed_out { None } else { status },
        stdout,
        stderr,
        elapsed: start.elapsed(),
    }
}

// ---- timings ---------------------------------------------------------------------------------

/// Prints a measured timing and appends it to `target/interop/timings.txt` (for INTEROP.md).
pub fn record_timing(client: &str, server: &str, bytes: usize, secs: f64, note: &str) {
    let line = format!(
        "TIMING client={client} server={server} bytes={bytes} seconds={secs:.3} profile={} {note}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("{line}");
    let path = target_dir().join("interop").join("timings.txt");
    let _ = fs::create_dir_all(path.parent().expect("has a parent"));
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
        let _ = writeln!(f, "{line}");
    }
}

// ---- our servers' request handler ---------------------------------------------------------

/// The toy datastore our servers serve to external clients: one greeting per datastore,
/// plus a log of the operations the handler saw.
#[derive(Debug, Clone, Default)]
pub struct ToyStore {
    inner: Arc<Mutex<ToyState>>,
    /// When set, get-config answers with this (the 10 MB reply).
    pub big: Option<Bytes>,
    /// Announce ietf-netconf-monitoring and answer `<get-schema>` from `tests/interop/yang/`.
    pub serves_schemas: bool,
}

#[derive(Debug, Default)]
struct ToyState {
    running: Option<String>,
    candidate: Option<String>,
    ops: Vec<String>,
}

impl ToyStore {
    pub fn new() -> ToyStore {
        ToyStore::default()
    }

    pub fn with_big(bytes: usize) -> ToyStore {
        ToyStore {
            big: Some(big_document(bytes)),
            ..ToyStore::default()
        }
    }

    /// The same store, also serving its YANG modules with `<get-schema>` (RFC 6022), as real
    /// servers do: libnetconf2's client then fetches them instead of reading its search path.
    pub fn serving_schemas(self) -> ToyStore {
        ToyStore {
            serves_schemas: true,
            ..self
        }
    }

    /// Operation names seen by the handler, in order.
    pub fn ops(&self) -> Vec<String> {
        self.state().ops.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ToyState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers one request (shared by the blocking and the tokio server).
    pub fn answer(&self, req: &Request) -> Reply {
        let op = &req.operation;
        let body = req.body.as_str();
        let mut st = self.state();
        st.ops.push(op.name.clone());
        let datastore = |wrapper: &str| {
            let open = format!("{wrapper}>");
            let start = body.find(&open)?;
            let rest = &body[start + open.len()..];
            Some(if rest.trim_start().starts_with("<candidate") {
                "candidate"
            } else {
                "running"
            })
        };
        let greeting_doc = |g: &str| {
            format!("<interop xmlns=\"urn:example:interop\"><greeting>{g}</greeting></interop>")
        };
        match op.name.as_str() {
            "get-config" => {
                if let Some(big) = &self.big {
                    return Reply::data_unchecked(big.clone());
                }
                let g = if datastore("source") == Some("candidate") {
                    st.candidate.clone()
                } else {
                    st.running.clone()
                };
                Reply::data(greeting_doc(g.as_deref().unwrap_or(OUR_GREETING)))
                    .expect("well-formed")
            }
            "get" => Reply::data(format!(
                "<interop xmlns=\"urn:example:interop\"><greeting>{}</greeting>\
                 <server>netconf-rs</server></interop>",
                st.running.as_deref().unwrap_or(OUR_GREETING)
            ))
            .expect("well-formed"),
            "edit-config" => {
                let Some(greeting) = element_text(body, "greeting") else {
                    return Reply::error(
                        RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                            .with_message("this toy server stores only <greeting>"),
                    );
                };
                if datastore("target") == Some("candidate") {
                    st.candidate = Some(greeting);
                } else {
                    st.running = Some(greeting);
                }
                Reply::Ok
            }
            "commit" => {
                if let Some(c) = st.candidate.clone() {
                    st.running = Some(c);
                }
                Reply::Ok
            }
            "discard-changes" => {
                st.candidate = st.running.clone();
                Reply::Ok
            }
            "lock" | "unlock" | "validate" => Reply::Ok,
            "get-schema" if self.serves_schemas => {
                let name = element_text(body, "identifier").unwrap_or_default();
                let revision = element_text(body, "version");
                match shipped_schema(&name, revision.as_deref()) {
                    Some(text) => Reply::raw(format!(
                        "<data xmlns=\"{MONITORING_NS}\">{}</data>",
                        netconf_proto::xml::escape_text(&text)
                    ))
                    .expect("escaped text is well-formed"),
                    None => Reply::error(
                        RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                            .with_message(format!("no schema {name} here")),
                    ),
                }
            }
            other => Reply::error(
                RpcError::new(ErrorType::Protocol, ErrorTag::OperationNotSupported)
                    .with_message(format!("the interop toy server does not do <{other}>")),
            ),
        }
    }
}

/// The text of the first element whose local name is `local` (any prefix), verbatim.
fn element_text(xml: &str, local: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = xml[from..].find(local) {
        let at = from + i;
        from = at + local.len();
        let before = xml[..at].chars().last();
        let after = xml[from..].chars().next();
        let is_open = matches!(before, Some('<') | Some(':'))
            && matches!(after, Some('>') | Some(' '))
            && !xml[..at].ends_with("</");
        if !is_open {
            continue;
        }
        let start = from + xml[from..].find('>')? + 1;
        let end = start + xml[start..].find("</")?;
        return Some(xml[start..end].to_owned());
    }
    None
}

/// A document of about `bytes` bytes: `<interop><bulk><item>...</item>...</bulk></interop>`.
pub fn big_document(bytes: usize) -> Bytes {
    let mut s = String::with_capacity(bytes + 256);
    s.push_str("<interop xmlns=\"urn:example:interop\"><bulk>");
    let mut i = 0u64;
    while s.len() < bytes {
        s.push_str(&format!(
            "<item><name>item-{i:08}</name><value>the quick brown fox jumps over the lazy dog</value></item>"
        ));
        i += 1;
    }
    s.push_str("</bulk></interop>");
    Bytes::from(s)
}

const MONITORING_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// Our servers' session configuration: base:1.0/1.1 plus [`SERVER_CAPABILITIES`], and
/// ietf-netconf-monitoring when the store answers `<get-schema>`.
pub fn server_config(store: &ToyStore) -> netconf_proto::Config {
    let config = SERVER_CAPABILITIES
        .iter()
        .fold(netconf_proto::Config::server(), |c, cap| {
            c.with_capability(*cap)
        });
    if store.serves_schemas {
        config.with_capability(format!(
            "{MONITORING_NS}?module=ietf-netconf-monitoring&revision=2010-10-04"
        ))
    } else {
        config
    }
}

/// Server TLS options from a scratch PKI.
pub fn server_tls(scratch: &Scratch) -> netconf_proto::tls::ServerTlsOptions {
    scratch.pki.server_tls_options()
}

/// Client TLS options from a scratch PKI.
pub fn client_tls(scratch: &Scratch) -> netconf_proto::tls::ClientTlsOptions {
    scratch.pki.client_tls_options()
}

// ---- our servers, for external clients -------------------------------------------------------

/// One of our servers, running in this process on 127.0.0.1, answering with a [`ToyStore`].
/// Dropping it shuts it down.
pub struct OurServer {
    addr: SocketAddr,
    kind: Kind,
    /// Listening on SSH (`listen_ssh`) rather than TLS.
    ssh: bool,
}

enum Kind {
    Blocking(netconf_blocking::Server),
    Tokio(netconf_tokio::Server, Option<tokio::runtime::Runtime>),
    Smol(netconf_smol::Server),
}

impl std::fmt::Debug for OurServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Our servers' options for the interop peers.
pub fn server_options(store: &ToyStore) -> netconf_proto::server::ServerOptions {
    netconf_proto::server::ServerOptions::new().config(server_config(store))
}

impl OurServer {
    pub fn name(&self) -> &'static str {
        match (&self.kind, self.ssh) {
            (Kind::Blocking(..), false) => "netconf-blocking",
            (Kind::Tokio(..), false) => "netconf-tokio",
            (Kind::Smol(..), false) => "netconf-smol",
            (Kind::Blocking(..), true) => "netconf-blocking/ssh",
            (Kind::Tokio(..), true) => "netconf-tokio/ssh",
            (Kind::Smol(..), true) => "netconf-smol/ssh",
        }
    }

    /// Starts the blocking server on a free port.
    pub fn blocking(scratch: &Scratch, store: &ToyStore) -> OurServer {
        let handler_store = store.clone();
        let server = netconf_blocking::Server::new(server_options(store), move |req, _info| {
            handler_store.answer(req)
        });
        let addr = server
            .listen_tls("127.0.0.1:0", &server_tls(scratch))
            .expect("binding the blocking server on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Blocking(server),
            ssh: false,
        }
    }

    /// Starts the tokio server on a free port, on a runtime of its own.
    pub fn tokio(scratch: &Scratch, store: &ToyStore) -> OurServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let handler_store = store.clone();
        let server = netconf_tokio::Server::new(server_options(store), move |req, _info| {
            let store = handler_store.clone();
            async move { store.answer(&req) }
        });
        let addr = rt
            .block_on(server.listen_tls("127.0.0.1:0", &server_tls(scratch)))
            .expect("binding the tokio server on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Tokio(server, Some(rt)),
            ssh: false,
        }
    }

    /// Starts the smol server on a free port, on smol's global executor.
    pub fn smol(scratch: &Scratch, store: &ToyStore) -> OurServer {
        let handler_store = store.clone();
        let server = netconf_smol::Server::new(server_options(store), move |req, _info| {
            let store = handler_store.clone();
            async move { store.answer(&req) }
        });
        let addr = smol::block_on(server.listen_tls("127.0.0.1:0", &server_tls(scratch)))
            .expect("binding the smol server on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Smol(server),
            ssh: false,
        }
    }

    /// Starts the blocking server on a free port with `listen_ssh` (see [`ssh_server`]).
    pub fn blocking_ssh(keys: &SshKeys, store: &ToyStore) -> OurServer {
        let handler_store = store.clone();
        let server = netconf_blocking::Server::new(server_options(store), move |req, _info| {
            handler_store.answer(req)
        });
        let addr = server
            .listen_ssh("127.0.0.1:0", &ssh_server(keys))
            .expect("listen_ssh on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Blocking(server),
            ssh: true,
        }
    }

    /// Starts the tokio server on a free port with `listen_ssh`, on a runtime of its own.
    pub fn tokio_ssh(keys: &SshKeys, store: &ToyStore) -> OurServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let handler_store = store.clone();
        let server = netconf_tokio::Server::new(server_options(store), move |req, _info| {
            let store = handler_store.clone();
            async move { store.answer(&req) }
        });
        let addr = rt
            .block_on(server.listen_ssh("127.0.0.1:0", &ssh_server(keys)))
            .expect("listen_ssh on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Tokio(server, Some(rt)),
            ssh: true,
        }
    }

    /// Starts the smol server on a free port with `listen_ssh`, on smol's global executor.
    pub fn smol_ssh(keys: &SshKeys, store: &ToyStore) -> OurServer {
        let handler_store = store.clone();
        let server = netconf_smol::Server::new(server_options(store), move |req, _info| {
            let store = handler_store.clone();
            async move { store.answer(&req) }
        });
        let addr = smol::block_on(server.listen_ssh("127.0.0.1:0", &ssh_server(keys)))
            .expect("listen_ssh on 127.0.0.1");
        OurServer {
            addr,
            kind: Kind::Smol(server),
            ssh: true,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Session-ids still open on the server.
    pub fn sessions(&self) -> Vec<u32> {
        match &self.kind {
            Kind::Blocking(s) => s.sessions(),
            Kind::Tokio(s, _) => s.sessions(),
            Kind::Smol(s) => s.sessions(),
        }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Blocking(s) => s.shutdown(),
            Kind::Tokio(s, rt) => {
                if let Some(rt) = rt.take() {
                    rt.block_on(async {
                        let _ = tokio::time::timeout(Duration::from_secs(10), s.shutdown()).await;
                    });
                    rt.shutdown_timeout(Duration::from_secs(2));
                }
            }
            Kind::Smol(s) => smol::block_on(async {
                let stop = s.shutdown();
                let limit = async {
                    smol::Timer::after(Duration::from_secs(10)).await;
                };
                futures_lite::future::or(stop, limit).await
            }),
        }
    }
}

/// The common arguments of the C and Python clients: where to connect and with what.
pub fn client_args(cmd: &mut Command, scratch: &Scratch, port: u16) {
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--cert")
        .arg(&scratch.files.client_cert)
        .arg("--key")
        .arg(&scratch.files.client_key)
        .arg("--ca")
        .arg(&scratch.files.ca_cert);
}

/// Checks the output of a C or Python client's operation run against our server.
pub fn check_client_operations(client: &str, out: &Outcome, store: &ToyStore, tag: &str) {
    assert!(out.ok(), "{client} failed:\n{}", out.describe());
    let sid = out.field("HELLO", "session-id").unwrap_or("");
    assert!(
        sid.parse::<u32>().is_ok_and(|n| n > 0),
        "{client}: no session-id:\n{}",
        out.describe()
    );
    assert_eq!(
        out.field("HELLO", "base11"),
        Some("1"),
        "{client} and our server should agree on base:1.1 (chunked framing)"
    );
    let before = out.line("GET-CONFIG").unwrap_or("");
    assert!(
        before.contains(OUR_GREETING),
        "{client}: get-config: {before}"
    );
    assert_eq!(out.line("EDIT-CONFIG"), Some("ok"));
    let after = out.line("GET-CONFIG-AFTER").unwrap_or("");
    let want = format!("set by {tag}");
    assert!(
        after.contains(&want),
        "{client}: get-config after edit: {after}"
    );
    assert_eq!(out.line("LOCK"), Some("ok"));
    assert_eq!(out.line("UNLOCK"), Some("ok"));
    assert_eq!(out.line("CLOSE"), Some("ok"));
    let ops = store.ops();
    for op in ["get-config", "edit-config", "lock", "unlock"] {
        assert!(
            ops.iter().any(|o| o == op),
            "{client}: our server never saw <{op}>: {ops:?}"
        );
    }
    println!("{client}: handler saw {ops:?}");
}

// ---- SSH ------------------------------------------------------------------------------------

/// The NETCONF user our SSH servers and libnetconf2's SSH server accept (password or key).
/// sshd-fronted peers log in as the user running the tests instead (see [`current_user`]).
pub const SSH_USER: &str = "netconf";
pub const SSH_PASSWORD: &str = "interop-secret";

/// A program on PATH (or in /usr/sbin, /sbin, where Debian puts sshd), as an absolute path.
pub fn which(bin: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{bin} not found (apt-get install openssh-client openssh-server)"))
}

/// The login name of the user running the tests (sshd authenticates it by key).
pub fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("running id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One test's SSH keys, made with OpenSSH's ssh-keygen in its scratch directory.
#[derive(Debug, Clone)]
pub struct SshKeys {
    /// The servers' host key: ECDSA P-256 (yangcli's libssh2 verifies no RSA host keys), in
    /// OpenSSH format, which sshd, libssh (libnetconf2) and netconf-ssh all read.
    pub host_key: PathBuf,
    /// `ecdsa-sha2-nistp256 AAAA...` (type and base64, no comment).
    pub host_public: String,
    /// `SHA256:...` as ssh-keygen prints it.
    pub host_fingerprint: String,
    /// The client's key (ed25519, OpenSSH format); the public half at `.pub`.
    pub user_key: PathBuf,
    dir: PathBuf,
}

fn keygen(dir: &Path, name: &str, kind: &[&str]) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let out = Command::new(which("ssh-keygen")?)
        .args(["-q", "-N", "", "-C", name, "-t"])
        .args(kind)
        .arg("-f")
        .arg(&path)
        .output()
        .map_err(|e| format!("ssh-keygen not runnable: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(path)
}

impl SshKeys {
    /// Makes the keys under `scratch.dir/ssh/`.
    pub fn new(scratch: &Scratch) -> Result<SshKeys, String> {
        let dir = scratch.dir.join("ssh");
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let host_key = keygen(&dir, "host_ecdsa", &["ecdsa", "-b", "256"])?;
        let user_key = keygen(&dir, "user_ed25519", &["ed25519"])?;
        let public =
            fs::read_to_string(host_key.with_extension("pub")).map_err(|e| e.to_string())?;
        let host_public = public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new(which("ssh-keygen")?)
            .arg("-lf")
            .arg(host_key.with_extension("pub"))
            .output()
            .map_err(|e| e.to_string())?;
        let host_fingerprint = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .ok_or("ssh-keygen -l printed no fingerprint")?
            .to_owned();
        // Who may log in to an sshd of ours: the user key.
        fs::copy(user_key.with_extension("pub"), dir.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        Ok(SshKeys {
            host_key,
            host_public,
            host_fingerprint,
            user_key,
            dir,
        })
    }

    /// The base64 field of the host's public key (ncclient's `hostkey_b64`).
    pub fn host_b64(&self) -> &str {
        self.host_public
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
    }

    /// A known_hosts file in the scratch directory that holds the host key for
    /// `[127.0.0.1]:port` (and nothing else).
    pub fn known_hosts_for(&self, port: u16) -> PathBuf {
        let path = self.dir.join(format!("known_hosts-{port}"));
        fs::write(&path, format!("[127.0.0.1]:{port} {}\n", self.host_public))
            .expect("writing known_hosts");
        path
    }

    /// A known_hosts file that records another key for `[127.0.0.1]:port`: a changed key.
    pub fn wrong_known_hosts_for(&self, port: u16) -> PathBuf {
        let other = keygen(
            &self.dir,
            &format!("other_host_{port}"),
            &["ecdsa", "-b", "256"],
        )
        .expect("ssh-keygen");
        let public = fs::read_to_string(other.with_extension("pub")).expect("other key");
        let public = public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let path = self.dir.join(format!("known_hosts-wrong-{port}"));
        fs::write(&path, format!("[127.0.0.1]:{port} {public}\n")).expect("writing known_hosts");
        path
    }

    /// The file sshd takes as AuthorizedKeysFile.
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }
}

/// Our SSH server's settings for the interop peers: the host key `keys.host_key`, and
/// [`SSH_USER`] with [`SSH_PASSWORD`] or with `keys.user_key`.
pub fn ssh_server(keys: &SshKeys) -> netconf_ssh::SshServer {
    let auth = netconf_ssh::StaticAuth::new()
        .user(SSH_USER, SSH_PASSWORD)
        .authorized_keys_file(SSH_USER, &keys.user_key.with_extension("pub"))
        .expect("the user's public key");
    let ssh = netconf_ssh::SshServer::new(
        netconf_ssh::ServerOptions::default().host_key_file(&keys.host_key),
        auth,
    )
    .expect("our SSH server loads the host key");
    assert_eq!(
        ssh.host_key_fingerprint(),
        keys.host_fingerprint,
        "our SSH server and ssh-keygen disagree on the host key's fingerprint"
    );
    ssh
}

/// Our SSH client's options for `user` at `[127.0.0.1]:port`: the host key checked against a
/// scratch known_hosts that holds it.
pub fn our_ssh_options(keys: &SshKeys, port: u16, user: &str) -> netconf_ssh::ClientOptions {
    netconf_ssh::ClientOptions::new(user)
        .known_hosts(keys.known_hosts_for(port))
        .connect_timeout(Duration::from_secs(10))
        .auth_timeout(Duration::from_secs(10))
        .subsystem_timeout(Duration::from_secs(10))
}

/// An OpenSSH sshd on 127.0.0.1 that runs `subsystem` for `Subsystem netconf`, for the user
/// running the tests, authenticated by `keys.user_key` only. Its config, log and pid file live
/// in the scratch directory; it is killed (by pid) when the [`Peer`] drops.
pub fn start_sshd(
    scratch: &Scratch,
    keys: &SshKeys,
    port: u16,
    subsystem: &str,
) -> Result<Peer, String> {
    let sshd = which("sshd")?;
    // sshd's privilege-separation directory; /run is a tmpfs that starts empty.
    if current_user() == "root" {
        let _ = fs::create_dir_all("/run/sshd");
    }
    let config = scratch.dir.join(format!("sshd_config-{port}"));
    fs::write(
        &config,
        format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host_key}\n\
             PidFile {dir}/sshd-{port}.pid\n\
             AuthorizedKeysFile {authorized}\n\
             UsePAM no\n\
             StrictModes no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             UseDNS no\n\
             Subsystem netconf {subsystem}\n",
            host_key = keys.host_key.display(),
            dir = scratch.dir.display(),
            authorized = keys.authorized_keys().display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let log = scratch.dir.join(format!("sshd-{port}.log"));
    let log_file = File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", sshd.display()))?;
    let mut peer = Peer {
        name: "OpenSSH sshd".into(),
        child,
        log,
    };
    let took = await_port(&mut peer, port)?;
    println!("sshd listening on 127.0.0.1:{port} after {took:?} (Subsystem netconf {subsystem})");
    Ok(peer)
}

/// The YANG module netconfd serves our toy data with (`<interop><greeting/><bulk>...`).
pub fn yuma_module() -> PathBuf {
    interop_src().join("yuma").join("interop.yang")
}

/// Checks what yuma123's netconfd needs: the binary, netconf-subsystem, and `~/.yuma` of the
/// user's passwd entry (netconfd creates that directory, whatever HOME says, unless it exists:
/// `tests/interop/install` makes it, so the run writes nothing outside its scratch directories).
pub fn netconfd_prerequisites() -> Result<(PathBuf, PathBuf), String> {
    let netconfd =
        which("netconfd").map_err(|_| "netconfd not found (apt-get install netconfd)")?;
    let subsystem = which("netconf-subsystem")
        .map_err(|_| "netconf-subsystem not found (apt-get install netconfd)")?;
    let out = Command::new("getent")
        .args(["passwd", &current_user()])
        .output()
        .map_err(|e| format!("getent: {e}"))?;
    let home = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(':')
        .nth(5)
        .unwrap_or_default()
        .to_owned();
    let yuma_dir = Path::new(&home).join(".yuma");
    if !yuma_dir.is_dir() {
        return Err(format!(
            "{} is missing: netconfd would create it (run tests/interop/install)",
            yuma_dir.display()
        ));
    }
    Ok((netconfd, subsystem))
}

/// yuma123's netconfd behind an sshd: the two processes, and the sshd port.
#[derive(Debug)]
pub struct Yuma {
    pub port: u16,
    /// Dropped first: no new sessions reach netconfd while it stops.
    pub sshd: Peer,
    pub netconfd: Peer,
    /// netconfd's UNIX socket, removed on drop.
    sock: PathBuf,
}

impl Drop for Yuma {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.sock);
    }
}

/// Starts netconfd (no startup config, access control off, target candidate, with
/// [`yuma_module`] loaded) on a UNIX socket in the scratch directory, and an sshd whose
/// `netconf` subsystem is netconf-subsystem pointed at that socket.
pub fn start_yuma(scratch: &Scratch, keys: &SshKeys) -> Result<Yuma, String> {
    let (netconfd, subsystem) = netconfd_prerequisites()?;
    let home = scratch.dir.join("yuma-home");
    fs::create_dir_all(home.join("data")).map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..3 {
        let port = free_port();
        // Not in the scratch directory: a UNIX socket path has at most 107 bytes, and the
        // scratch directory's name holds the test's.
        let sock = std::env::temp_dir().join(format!("ncx-{}-{port}.sock", std::process::id()));
        if sock.as_os_str().len() > 100 {
            return Err(format!(
                "{}: too long for a UNIX socket path (set TMPDIR shorter)",
                sock.display()
            ));
        }
        let log = scratch.dir.join(format!("netconfd-{attempt}.log"));
        let log_file = File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(&netconfd)
            .arg("--no-startup")
            .arg("--access-control=off")
            .arg(format!("--superuser={}", current_user()))
            .arg("--log-level=warn")
            .arg(format!("--module={}", yuma_module().display()))
            .arg(format!("--port={port}"))
            .arg(format!("--ncxserver-sockname={}", sock.display()))
            // netconfd keeps its startup transaction id under $YUMA_HOME/data.
            .env("YUMA_HOME", &home)
            .env("HOME", &home)
            .current_dir(&scratch.dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting netconfd: {e}"))?;
        let mut netconfd_peer = Peer {
            name: "yuma123 netconfd".into(),
            child,
            log,
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = netconfd_peer.child.try_wait() {
                let _ = fs::remove_file(&sock);
                return Err(format!(
                    "netconfd exited ({status}) before listening:\n{}",
                    netconfd_peer.log_text()
                ));
            }
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = fs::remove_file(&sock);
                return Err(format!(
                    "netconfd not listening on {} after 15 s:\n{}",
                    sock.display(),
                    netconfd_peer.log_text()
                ));
            }
            // A poll interval while netconfd starts (about 100 ms), not a fixed sleep.
            std::thread::sleep(Duration::from_millis(5));
        }
        println!(
            "netconfd listening on {} after {:?}",
            sock.display(),
            start.elapsed()
        );
        let command = format!(
            "{} --ncxserver-sockname={port}@{}",
            subsystem.display(),
            sock.display()
        );
        match start_sshd(scratch, keys, port, &command) {
            Ok(sshd) => {
                return Ok(Yuma {
                    port,
                    sshd,
                    netconfd: netconfd_peer,
                    sock,
                })
            }
            Err(e) => {
                let _ = fs::remove_file(&sock);
                last = e
            }
        }
    }
    Err(last)
}

/// libnetconf2's server in stdio mode (`nc_server --stdio`) as sshd's netconf subsystem:
/// OpenSSH's SSH layer in front of libnetconf2's NETCONF layer. Returns sshd and its port;
/// each session's log is `scratch.dir/nc_server-stdio.log`.
pub fn start_nc_server_stdio(
    scratch: &Scratch,
    keys: &SshKeys,
    data_size: Option<usize>,
) -> Result<(Peer, u16), String> {
    let bin = c_peer("nc_server")?;
    let mut command = format!(
        "{} --stdio --user {} --schemas {} --log {}",
        bin.display(),
        current_user(),
        scratch.schema_dir.display(),
        scratch.dir.join("nc_server-stdio.log").display()
    );
    if let Some(n) = data_size {
        command.push_str(&format!(" --data-size {n}"));
    }
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        match start_sshd(scratch, keys, port, &command) {
            Ok(sshd) => return Ok((sshd, port)),
            Err(e) => last = e,
        }
    }
    Err(last)
}
