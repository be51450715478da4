//! Runs `examples/blocking_get_config.rs` against our blocking `Server` on loopback: the binary
//! `cargo test` built beside this test (Cargo exposes no path to examples, but builds them
//! into `target/<profile>/examples/`), else through `cargo run`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::tls::{PemSource, ServerTlsOptions};
use netconf_blocking::{Reply, Request, Server};
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tests::deadline::with_deadline;

const DATA: &str = "<top xmlns=\"urn:x\"><v>1</v></top>";

/// How long one `cargo run` may take. Normally well under a second (the build is warm); the
/// margin covers a rebuild when a workspace file changed since the test binary was built.
const CARGO_RUN_LIMIT: Duration = Duration::from_secs(120);

/// A PKI written to its own temporary directory, removed on drop.
struct TestPki {
    dir: PathBuf,
    files: PkiFiles,
}

impl TestPki {
    fn new(pki: &Pki) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netconf-blocking-example-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("creating the PKI directory");
        let files = pki.write_to_dir(&dir).expect("writing the PKI");
        TestPki { dir, files }
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the handler saw: (session-id, operation name) per request.
type Seen = Arc<Mutex<Vec<(u32, String)>>>;

/// Our server, answering get-config with [`DATA`] and recording what it saw.
fn start_server(pki: &TestPki) -> (Server, std::net::SocketAddr, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler_seen = seen.clone();
    let tls = ServerTlsOptions::new(
        PemSource::file(&pki.files.server_cert),
        PemSource::file(&pki.files.server_key),
        PemSource::file(&pki.files.ca_cert),
    );
    let server = Server::new(
        ServerOptions::new(),
        move |request: &Request, info: &SessionInfo| {
            handler_seen
                .lock()
                .expect("seen")
                .push((info.session_id, request.operation.name.clone()));
            if request.operation.is_base("get-config") {
                Reply::data(DATA).expect("data")
            } else {
                Reply::Ok
            }
        },
    );
    let addr = server.listen_tls("127.0.0.1:0", &tls).expect("bind");
    (server, addr, seen)
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// The example as `cargo test` built it: `target/<profile>/examples/`, beside the `deps/`
/// directory this test runs from.
fn built_example() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join("examples").join("blocking_get_config");
    path.is_file().then_some(path)
}

/// The example with `ARGS` (the built binary, else `cargo run -q -p netconf-blocking --example
/// blocking_get_config -- ARGS`), killed if it runs too long.
fn run_example(args: &[&str]) -> Run {
    match built_example() {
        Some(path) => {
            let mut command = Command::new(path);
            command.args(args);
            run_command(command)
        }
        None => run_with_cargo(args),
    }
}

fn run_with_cargo(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "run",
            "-q",
            "-p",
            "netconf-blocking",
            "--example",
            "blocking_get_config",
            "--",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // Cargo sets these for the test binary. Left in place they reach the inner cargo, which
    // compares them with what build scripts declared (`rerun-if-env-changed=CARGO_PKG_NAME`,
    // ring does) and would rebuild those crates, and again on the next ordinary build.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo_for_tests = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_EXE_")
            || matches!(
                key,
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_by_cargo_for_tests {
            command.env_remove(key);
        }
    }
    run_command(command)
}

/// Runs `command` to its end with its output captured, killed after [`CARGO_RUN_LIMIT`].
fn run_command(mut command: Command) -> Run {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the example");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the example") {
            break status;
        }
        if started.elapsed() > CARGO_RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!("the example did not finish within {CARGO_RUN_LIMIT:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

#[test]
fn example_prints_session_id_and_config() {
    with_deadline(CARGO_RUN_LIMIT.as_secs() + 20, || {
        let pki = TestPki::new(&Pki::generate());
        let (handle, addr, seen) = start_server(&pki);
        let addr = addr.to_string();
        let run = run_example(&[
            &addr,
            path(&pki.files.ca_cert),
            path(&pki.files.client_cert),
            path(&pki.files.client_key),
        ]);
        assert!(
            run.status.success(),
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            run.status,
            run.stdout,
            run.stderr
        );
        let mut lines = run.stdout.lines();
        let first = lines.next().expect("a first line");
        let id: u32 = first
            .strip_prefix("session-id ")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("first line {first:?} is not `session-id <N>`"));
        assert!(id > 0);
        assert!(run.stdout.contains(DATA), "stdout:\n{}", run.stdout);
        assert_eq!(
            seen.lock().expect("seen").clone(),
            vec![(id, "get-config".to_owned())],
            "the server saw one get-config from session {id}"
        );
        // The example closed with close-session, so the session is gone.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !handle.sessions().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(handle.sessions().is_empty(), "{:?}", handle.sessions());
        handle.shutdown();
    });
}

#[test]
fn example_fails_with_a_wrong_ca() {
    with_deadline(CARGO_RUN_LIMIT.as_secs() + 20, || {
        let pki = TestPki::new(&Pki::generate());
        let other = TestPki::new(&Pki::other_ca());
        let (handle, addr, seen) = start_server(&pki);
        let addr = addr.to_string();
        let run = run_example(&[
            &addr,
            path(&other.files.ca_cert),
            path(&pki.files.client_cert),
            path(&pki.files.client_key),
        ]);
        assert!(
            !run.status.success(),
            "a wrong CA must fail; stdout:\n{}",
            run.stdout
        );
        assert_eq!(run.status.code(), Some(1), "stderr:\n{}", run.stderr);
        assert!(run.stderr.contains("error: TLS"), "stderr:\n{}", run.stderr);
        assert!(
            run.stderr.to_lowercase().contains("certificate"),
            "stderr:\n{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("session-id"),
            "stdout:\n{}",
            run.stdout
        );
        assert!(seen.lock().expect("seen").is_empty());
        handle.shutdown();
    });
}

#[test]
fn example_usage_error() {
    with_deadline(CARGO_RUN_LIMIT.as_secs() + 20, || {
        let run = run_example(&["only-one-argument"]);
        assert_eq!(run.status.code(), Some(2), "stderr:\n{}", run.stderr);
        assert!(
            run.stderr.contains("usage: get_config"),
            "stderr:\n{}",
            run.stderr
        );
    });
}
