//! Helpers for running the built `netconf` binary: a `netconf serve` child process killed
//! by a drop guard, temporary directories, and command runs with their exit status.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_netconf");

/// How long a test waits for a child to say something before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netconf-cli-test-{tag}-"))
            .tempdir()
            .expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, content).expect("writing a test file");
        p
    }
}

/// A `netconf` command with no NETCONF_* variables inherited from the environment, no
/// ssh-agent, and HOME pointing at a directory no test writes to: every SSH test passes
/// its own --known-hosts, and a slip would not touch the user's ~/.ssh.
pub fn netconf() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "NETCONF_HOST",
        "NETCONF_PORT",
        "NETCONF_CA",
        "NETCONF_CERT",
        "NETCONF_KEY",
        "NETCONF_SERVER_NAME",
        "NETCONF_TIMEOUT",
        "NETCONF_FORMAT",
        "NETCONF_USER",
        "NETCONF_PASSWORD",
        "NETCONF_KEY_PASSPHRASE",
        "NETCONF_KNOWN_HOSTS",
        "NETCONF_ACCEPT_NEW_HOST_KEY",
        "NETCONF_HOST_KEY_FINGERPRINT",
        "NETCONF_SUBSYSTEM",
        "SSH_AUTH_SOCK",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(
        "HOME",
        std::env::temp_dir().join("netconf-cli-tests-no-home"),
    );
    cmd
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }
}

/// Runs `cmd` to completion, feeding it `stdin`.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Out {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning netconf");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    finish(child)
}

pub fn run(cmd: &mut Command) -> Out {
    run_with_stdin(cmd, "")
}

fn finish(child: Child) -> Out {
    let out = child.wait_with_output().expect("waiting for netconf");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Lines from a reader, delivered through a channel so a test can wait with a limit.
pub fn lines_of(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns every line seen up to it.
#[track_caller]
pub fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(PATIENCE) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(e) => panic!("no line with {needle:?} ({e}); got {seen:#?}"),
        }
    }
}

/// A child process killed (by its pid, through `Child::kill`) when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Waits for the child to exit on its own, killing it if it takes longer than `limit`.
    pub fn wait_output(mut self, limit: Duration) -> Out {
        let mut child = self.0.take().expect("child");
        let started = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return finish(child),
                Ok(None) if started.elapsed() > limit => {
                    let _ = child.kill();
                    let out = finish(child);
                    panic!("netconf did not exit within {limit:?}: {out:#?}");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for netconf: {e}"),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `netconf serve` and the client-side PKI paths it printed.
#[derive(Debug)]
pub struct Serve {
    pub port: u16,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The request log serve writes on stderr, line by line.
    pub log: mpsc::Receiver<String>,
    _child: ChildGuard,
    pub dir: TempDir,
}

impl Serve {
    /// `netconf serve --port 0 --pki-dir DIR` plus `extra`.
    pub fn start(extra: &[&str]) -> Serve {
        Serve::start_with(extra, |_| {})
    }

    pub fn start_with(extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Serve {
        let dir = TempDir::new("serve");
        let mut cmd = netconf();
        cmd.args(["serve", "--port", "0", "--pki-dir"])
            .arg(dir.path().join("pki"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("spawning netconf serve");
        let stdout = child.stdout.take().expect("stdout");
        let log = lines_of(child.stderr.take().expect("stderr"));
        let guard = ChildGuard(Some(child));
        let lines = lines_of(stdout);
        let seen = wait_for(&lines, "key: ");
        let value = |prefix: &str| {
            seen.iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line in {seen:#?}"))
                .trim()
                .to_owned()
        };
        let port = value("listening on 127.0.0.1:").parse().expect("a port");
        Serve {
            port,
            ca: value("ca: ").into(),
            cert: value("cert: ").into(),
            key: value("key: ").into(),
            log,
            _child: guard,
            dir,
        }
    }

    /// A client command with the connection options as flags.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = netconf();
        cmd.arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--ca")
            .arg(&self.ca)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .arg("--timeout")
            .arg("20")
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run(&mut self.cmd(args))
    }

    /// A library client on the same server, for sessions that outlive one command.
    pub fn library_client(&self) -> netconf_blocking::Client {
        let tls = netconf_blocking::tls::ClientTlsOptions::new()
            .ca_file(&self.ca)
            .client_cert_files(&self.cert, &self.key);
        netconf_blocking::Client::connect_tls(&format!("127.0.0.1:{}", self.port), &tls)
            .expect("library client connects to netconf serve")
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}
