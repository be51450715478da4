//! `netconf serve`: a loopback NETCONF-over-TLS server on the in-memory datastores of
//! `netconf-server`, for trying clients and for tests.
//!
//! It binds 127.0.0.1 only. Without --ca/--cert/--key it makes a throwaway PKI, writes it to
//! a temporary directory and prints the client-side paths, one per line after the address:
//!
//! ```text
//! listening on 127.0.0.1:PORT
//! ca: DIR/ca.pem
//! cert: DIR/client.pem
//! key: DIR/client.key
//! ```
//!
//! The blocking adapter runs the sessions; this module mounts `netconf_server::Server` in
//! its handler, sends the notifications it produces and drives its confirmed-commit
//! deadline from a timer thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::tls::{PemSource, ServerTlsOptions};
use netconf_blocking::{Config, Reply, Request, Server};
use netconf_proto::xml::NS_BASE;
use netconf_server::{tree, Element, MemoryBackend, Notification};

use crate::args::ServeArgs;
use crate::errors::CliError;
use crate::output::print;
use crate::pki::{self, Pki};
use crate::sample;

/// The connection options `serve` takes, from the command line only.
#[derive(Debug, Default)]
pub struct Options {
    pub port: Option<u16>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// What the sessions share: the datastore server and how to reach the sessions.
struct Shared {
    datastores: Mutex<netconf_server::Server<MemoryBackend>>,
    /// Wakes the timer thread when the confirmed-commit deadline may have changed.
    wake: Condvar,
    /// The server, to notify its sessions; taken out when stopping (it holds us too).
    sessions: Mutex<Option<Server>>,
    stopping: std::sync::atomic::AtomicBool,
    log: bool,
}

impl Shared {
    fn datastores(&self) -> MutexGuard<'_, netconf_server::Server<MemoryBackend>> {
        self.datastores.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handler: one request of one session.
    fn handle(&self, request: &Request, info: &SessionInfo) -> Reply {
        let who = netconf_server::SessionInfo::new(info.session_id)
            .with_username(info.username.clone())
            .with_source_host(info.peer.map(|p| p.ip()));
        let mut datastores = self.datastores();
        let reply = datastores.handle(&who, request, Instant::now());
        let notes = drain(&mut datastores);
        drop(datastores);
        self.wake.notify_all();
        if self.log {
            let outcome = match &reply {
                Reply::Errors(errors) => errors
                    .iter()
                    .map(|e| e.tag.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "ok".into(),
            };
            eprintln!(
                "session {}: {}: {outcome}",
                info.session_id, request.operation.name
            );
        }
        self.send(notes);
        reply
    }

    fn session_ended(&self, info: &SessionInfo) {
        let mut datastores = self.datastores();
        let pending = datastores.next_deadline().is_some();
        datastores.session_ended(info.session_id, Instant::now());
        let rolled_back = pending && datastores.next_deadline().is_none();
        let notes = drain(&mut datastores);
        drop(datastores);
        self.wake.notify_all();
        if rolled_back && self.log {
            eprintln!(
                "session {} ended before confirming its commit: rolled back",
                info.session_id
            );
        }
        self.send(notes);
    }

    /// Sends notifications to the subscribed sessions, stamped now.
    fn send(&self, notes: Vec<Notification>) {
        let Some(sessions) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        for n in notes {
            let at = netconf_server::event_time(SystemTime::now());
            if let Err(e) = sessions.notify(&at, n.content()) {
                eprintln!("netconf serve: notification not sent: {e}");
            }
        }
    }

    /// The timer thread: sleeps until the confirmed-commit deadline (or a change of it)
    /// and lets the server roll back when it passes.
    fn drive_deadlines(&self) {
        use std::sync::atomic::Ordering;
        let mut datastores = self.datastores();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            match datastores.next_deadline() {
                Some(deadline) if deadline <= now => {
                    datastores.handle_timeout(now);
                    let notes = drain(&mut datastores);
                    drop(datastores);
                    if self.log {
                        eprintln!("confirmed commit not confirmed in time: rolled back");
                    }
                    self.send(notes);
                    datastores = self.datastores();
                }
                Some(deadline) => {
                    datastores = self
                        .wake
                        .wait_timeout(datastores, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                None => {
                    datastores = self
                        .wake
                        .wait(datastores)
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

fn drain(server: &mut netconf_server::Server<MemoryBackend>) -> Vec<Notification> {
    std::iter::from_fn(|| server.poll_notification()).collect()
}

/// A running server; dropping it shuts the server down.
pub struct Running {
    pub addr: SocketAddr,
    handle: Option<Server>,
    shared: Arc<Shared>,
    timer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Take the lock so the timer thread is either waiting (and woken) or will see the flag.
        drop(self.shared.datastores());
        self.shared.wake.notify_all();
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(server) = self.handle.take() {
            server.shutdown();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The session configuration: base 1.0/1.1 and what the datastore server implements.
fn config(capabilities: Vec<String>) -> Config {
    capabilities
        .into_iter()
        .fold(Config::server(), |c, uri| c.with_capability(uri))
}

/// Starts a server on 127.0.0.1:`port` (0: any free port) over datastores seeded with `seed`.
pub fn start(
    seed: Element,
    tls: ServerTlsOptions,
    port: u16,
    log: bool,
) -> Result<Running, netconf_blocking::Error> {
    let datastores = netconf_server::Server::new(sample::backend(seed));
    let capabilities = datastores.capabilities();
    let shared = Arc::new(Shared {
        datastores: Mutex::new(datastores),
        wake: Condvar::new(),
        sessions: Mutex::new(None),
        stopping: false.into(),
        log,
    });
    let (handler, ended) = (shared.clone(), shared.clone());
    let options = ServerOptions::new()
        .config(config(capabilities))
        .cert_to_name(|chain| {
            let cn = chain.first().and_then(|c| pki::common_name(c));
            Some(cn.unwrap_or_else(|| "unknown".into()))
        })
        .on_session_end(move |info| ended.session_ended(info));
    let server = Server::new(options, move |request, info| handler.handle(request, info));
    let addr = server.listen_tls(("127.0.0.1", port), &tls)?;
    *shared.sessions.lock().unwrap_or_else(|p| p.into_inner()) = Some(server.clone());
    let handle = server;
    let timer_shared = shared.clone();
    let timer = std::thread::Builder::new()
        .name("confirmed-commit".into())
        .spawn(move || timer_shared.drive_deadlines())
        .map_err(netconf_blocking::Error::Io)?;
    Ok(Running {
        addr,
        handle: Some(handle),
        shared,
        timer: Some(timer),
    })
}

/// The datastore content in `xml`: its top-level elements, or those inside a single
/// `<data>` or `<config>` wrapper (base namespace or none).
pub fn seed(xml: &str) -> Result<Element, String> {
    let mut root =
        tree::parse(xml, &[], netconf_server::MAX_DEPTH_CEILING).map_err(|e| e.to_string())?;
    let wrapped = matches!(root.children.as_slice(), [only]
        if matches!(only.name.as_str(), "data" | "config")
            && (only.namespace.is_empty() || only.namespace == NS_BASE));
    if wrapped {
        let only = root.children.pop().expect("matched one child");
        return Ok(only.content_as_root());
    }
    Ok(root)
}

fn read(option: &str, path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::fatal(format!("cannot read {option} {}: {e}", path.display())))
}

/// `netconf serve`: runs until the process is stopped.
pub fn run(options: &Options, args: &ServeArgs) -> Result<(), CliError> {
    let seed_xml = match &args.data {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::fatal(format!("cannot read --data {}: {e}", path.display())))?,
        None => sample::DATA.to_owned(),
    };
    let data = seed(&seed_xml).map_err(|e| {
        let name = args
            .data
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        CliError::fatal(format!("--data {name}: not well-formed XML: {e}"))
    })?;

    let mut client_files = None;
    // Kept for the life of the process: the client needs the files while it runs.
    let mut _temp_dir = None;
    let tls = match (&options.ca, &options.cert, &options.key) {
        (Some(ca), Some(cert), Some(key)) => ServerTlsOptions::new(
            PemSource::pem(read("--cert", cert)?),
            PemSource::pem(read("--key", key)?),
            PemSource::pem(read("--ca", ca)?),
        ),
        (None, None, None) => {
            let pki = Pki::generate()
                .map_err(|e| CliError::fatal(format!("cannot generate certificates: {e}")))?;
            let dir = match &args.pki_dir {
                Some(dir) => dir.clone(),
                None => {
                    let temp = tempfile::Builder::new()
                        .prefix("netconf-serve-")
                        .tempdir()
                        .map_err(|e| {
                            CliError::fatal(format!("cannot create a temporary directory: {e}"))
                        })?;
                    let path = temp.path().to_owned();
                    _temp_dir = Some(temp);
                    path
                }
            };
            let files = pki.write_to(&dir).map_err(|e| {
                CliError::fatal(format!(
                    "cannot write certificates to {}: {e}",
                    dir.display()
                ))
            })?;
            client_files = Some(files);
            ServerTlsOptions::new(
                PemSource::pem(pki.server_cert_pem),
                PemSource::pem(pki.server_key_pem),
                PemSource::pem(pki.ca_pem),
            )
        }
        _ => {
            return Err(CliError::fatal(
                "serve needs all of --ca (for client certificates), --cert and --key, or none \
                 (then it makes a throwaway PKI)",
            ))
        }
    };

    let port = options.port.unwrap_or(netconf_blocking::DEFAULT_TLS_PORT);
    let running = start(data, tls, port, !args.quiet).map_err(|e| match e {
        netconf_blocking::Error::Io(io) => {
            CliError::fatal(format!("cannot listen on 127.0.0.1:{port}: {io}"))
        }
        netconf_blocking::Error::TlsConfig(c) => {
            CliError::fatal(format!("bad server certificate, key or CA: {c}"))
        }
        other => CliError::fatal(other.to_string()),
    })?;

    let mut banner = format!("listening on {}\n", running.addr);
    if let Some(files) = &client_files {
        banner.push_str(&format!(
            "ca: {}\ncert: {}\nkey: {}\n\nconnect with:\n  netconf --port {} --ca {} --cert {} --key {} hello\n",
            files.ca.display(),
            files.client_cert.display(),
            files.client_key.display(),
            running.addr.port(),
            files.ca.display(),
            files.client_cert.display(),
            files.client_key.display(),
        ));
    }
    print(&banner);
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_unwraps_data_and_config() {
        let a = seed(&format!(
            "<data xmlns=\"{NS_BASE}\"><x xmlns=\"urn:x\"/></data>"
        ))
        .unwrap();
        let b = seed("<config><x xmlns=\"urn:x\"/></config>").unwrap();
        let c = seed("<x xmlns=\"urn:x\"/>").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(seed("<data xmlns=\"urn:mine\"/>").unwrap().children[0].name == "data");
        assert!(seed(sample::DATA).is_ok());
    }
}
