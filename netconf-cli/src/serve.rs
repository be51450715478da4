//! `netconf serve`: a loopback NETCONF server on the in-memory datastores of
//! `netconf-server`, over TLS, SSH or both, for trying clients and for tests.
//!
//! It binds 127.0.0.1 only. Over SSH it prints the address, the host key's fingerprint and
//! the known_hosts line a client needs (and the password it made up, when no --ssh-user was
//! given). Over TLS without --ca/--cert/--key it makes a throwaway PKI, writes it to a
//! temporary directory and prints the client-side paths, one per line after the address:
//!
//! ```text
//! ssh: listening on 127.0.0.1:PORT
//! ssh fingerprint: SHA256:...
//! ssh known_hosts: [127.0.0.1]:PORT ssh-ed25519 AAAA...
//! listening on 127.0.0.1:PORT
//! ca: DIR/ca.pem
//! cert: DIR/client.pem
//! key: DIR/client.key
//! ```
//!
//! With `--call-home HOST:PORT` it dials the manager instead (RFC 8071), over TLS or SSH,
//! and calls again when the session ends or a call fails (`Server::call_home`):
//!
//! ```text
//! calling home over TLS to HOST:PORT
//! ca: DIR/ca.pem
//! ...
//! ```
//!
//! The blocking adapter runs the sessions of both transports in one `Server`; this module
//! mounts `netconf_server::Server` in its handler, sends the notifications it produces and
//! drives its confirmed-commit deadline from a timer thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use netconf_blocking::call_home::{CallHome, CallHomeEnd, CallHomeTransport, Reconnect};
use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::ssh::SshServer;
use netconf_blocking::tls::{PemSource, ServerTlsOptions};
use netconf_blocking::{Config, Reply, Request, Server};
use netconf_proto::xml::NS_BASE;
use netconf_server::{tree, Element, MemoryBackend, Notification};

use crate::args::ServeArgs;
use crate::errors::CliError;
use crate::output::print;
use crate::pki::{self, Pki};
use crate::{sample, ssh};

/// The connection options `serve` takes, from the command line only.
#[derive(Debug, Default)]
pub struct Options {
    pub port: Option<u16>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Serve SSH.
    pub ssh: bool,
    /// Serve TLS (the default when SSH is not asked for).
    pub tls: bool,
}

/// Where `start` listens: either transport or both, each on 127.0.0.1:port (0: any free);
/// and whom it calls home to.
#[derive(Default)]
pub struct Listen {
    pub tls: Option<(ServerTlsOptions, u16)>,
    pub ssh: Option<(SshServer, u16)>,
    pub call_home: Option<CallHomePlan>,
}

/// Managers to call home to (`host[:port]`), over which transport, how often.
pub struct CallHomePlan {
    pub managers: Vec<String>,
    pub transport: CallHomeTransport,
    pub reconnect: Reconnect,
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
    /// The TLS listener's address.
    pub tls_addr: Option<SocketAddr>,
    /// The SSH listener's address.
    pub ssh_addr: Option<SocketAddr>,
    /// The calls home, when asked for.
    pub call_home: Option<CallHome>,
    handle: Option<Server>,
    shared: Arc<Shared>,
    timer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("tls_addr", &self.tls_addr)
            .field("ssh_addr", &self.ssh_addr)
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
        if let Some(calls) = self.call_home.take() {
            calls.stop();
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

/// Which listener failed to start, and why.
#[derive(Debug)]
pub enum StartError {
    Tls(u16, netconf_blocking::Error),
    Ssh(u16, netconf_blocking::Error),
    CallHome(netconf_blocking::Error),
    Other(netconf_blocking::Error),
}

impl StartError {
    /// The error in words, naming the listener.
    pub fn message(self) -> String {
        let (what, port, e) = match self {
            StartError::Tls(port, e) => ("TLS", port, e),
            StartError::Ssh(port, e) => ("SSH", port, e),
            StartError::CallHome(netconf_blocking::Error::TlsConfig(c)) => {
                return format!("bad server certificate, key or CA: {c}")
            }
            StartError::CallHome(e) => return format!("cannot call home: {e}"),
            StartError::Other(e) => return e.to_string(),
        };
        match e {
            netconf_blocking::Error::Io(io) => {
                format!("cannot listen for {what} on 127.0.0.1:{port}: {io}")
            }
            netconf_blocking::Error::TlsConfig(c) => {
                format!("bad server certificate, key or CA: {c}")
            }
            other => format!("{what} listener on 127.0.0.1:{port}: {other}"),
        }
    }
}

/// Starts a server on 127.0.0.1 over datastores seeded with `seed`, with the listeners in
/// `listen`.
pub fn start(seed: Element, listen: Listen, log: bool) -> Result<Running, StartError> {
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
    let stop = |server: &Server| {
        server.shutdown();
    };
    let ssh_addr = match &listen.ssh {
        Some((ssh, port)) => Some(server.listen_ssh(("127.0.0.1", *port), ssh).map_err(|e| {
            stop(&server);
            StartError::Ssh(*port, e)
        })?),
        None => None,
    };
    let tls_addr = match &listen.tls {
        Some((tls, port)) => Some(server.listen_tls(("127.0.0.1", *port), tls).map_err(|e| {
            stop(&server);
            StartError::Tls(*port, e)
        })?),
        None => None,
    };
    let call_home = match listen.call_home {
        Some(plan) => {
            let managers: Vec<&str> = plan.managers.iter().map(String::as_str).collect();
            Some(
                server
                    .call_home(&managers, plan.transport, plan.reconnect)
                    .map_err(|e| {
                        stop(&server);
                        StartError::CallHome(e)
                    })?,
            )
        }
        None => None,
    };
    *shared.sessions.lock().unwrap_or_else(|p| p.into_inner()) = Some(server.clone());
    let handle = server;
    let timer_shared = shared.clone();
    let timer = std::thread::Builder::new()
        .name("confirmed-commit".into())
        .spawn(move || timer_shared.drive_deadlines())
        .map_err(|e| {
            stop(&handle);
            StartError::Other(netconf_blocking::Error::Io(e))
        })?;
    Ok(Running {
        tls_addr,
        ssh_addr,
        call_home,
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

    let calling = !args.call_home.is_empty();
    if calling && options.ssh && options.tls {
        return Err(CliError::fatal(
            "--call-home calls over one transport: give --ssh or --tls, not both",
        ));
    }
    // A server that calls home listens only when asked to with a port.
    let listening = !calling || options.port.is_some() || args.ssh_port.is_some();
    let (serve_ssh, serve_tls) = (options.ssh, options.tls || !options.ssh);
    let tls_port = options.port.unwrap_or(netconf_blocking::DEFAULT_TLS_PORT);
    let ssh_port = args
        .ssh_port
        .or(match (serve_tls, options.port) {
            (false, port) => port,
            (true, Some(0)) => Some(0),
            (true, _) => None,
        })
        .unwrap_or(netconf_blocking::ssh::NETCONF_SSH_PORT);
    if serve_ssh && serve_tls && ssh_port == tls_port && tls_port != 0 {
        return Err(CliError::fatal(format!(
            "SSH and TLS cannot both listen on port {tls_port}: give --ssh-port for SSH"
        )));
    }

    let mut listen = Listen::default();
    let mut call_transport = None;
    let mut client_files = None;
    // Kept for the life of the process: the client needs the files while it runs.
    let mut _temp_dir = None;
    if serve_tls {
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
                    "serve needs all of --ca (for client certificates), --cert and --key, or \
                     none (then it makes a throwaway PKI)",
                ))
            }
        };
        if calling {
            call_transport = Some(CallHomeTransport::Tls(tls.clone()));
        }
        if listening {
            listen.tls = Some((tls, tls_port));
        }
    }
    let mut generated = None;
    let mut ssh_server = None;
    if serve_ssh {
        let (server, made_up) = ssh::server(&ssh::ServeSsh {
            users: args.ssh_user.clone(),
            authorized_keys: args.authorized_keys.clone(),
            host_key: args.host_key.clone(),
        })?;
        generated = made_up;
        ssh_server = Some(server.clone());
        if calling {
            call_transport = Some(CallHomeTransport::Ssh(server.clone()));
        }
        if listening {
            listen.ssh = Some((server, ssh_port));
        }
    }
    let mut managers = Vec::new();
    if let Some(transport) = call_transport {
        let names: Vec<&str> = args.call_home.iter().map(String::as_str).collect();
        managers = transport.managers(&names).map_err(|e| {
            CliError::fatal(format!("--call-home {}: {e}", args.call_home.join(",")))
        })?;
        let mut reconnect = Reconnect::new().max_attempts(args.max_attempts);
        if let Some(secs) = args.reconnect_period {
            reconnect = reconnect.periodic(std::time::Duration::from_secs(secs));
        }
        listen.call_home = Some(CallHomePlan {
            managers: args.call_home.clone(),
            transport,
            reconnect,
        });
    }

    let running = start(data, listen, !args.quiet).map_err(|e| CliError::fatal(e.message()))?;

    let mut banner = String::new();
    let mut connect = String::new();
    let manager_list = managers
        .iter()
        .map(|(host, port)| host_port(host, *port))
        .collect::<Vec<_>>()
        .join(", ");
    let listen_port = managers.first().map(|(_, port)| *port);
    if let Some(server) = &ssh_server {
        let fingerprint = server.host_key_fingerprint();
        if let Some(addr) = running.ssh_addr {
            banner.push_str(&format!("ssh: listening on {addr}\n"));
        }
        if calling {
            banner.push_str(&format!("calling home over SSH to {manager_list}\n"));
        }
        banner.push_str(&format!("ssh fingerprint: {fingerprint}\n"));
        if let Some((user, password)) = &generated {
            banner.push_str(&format!("ssh user: {user}\nssh password: {password}\n"));
        }
        if let Some(addr) = running.ssh_addr {
            banner.push_str(&format!(
                "ssh known_hosts: {}\n",
                ssh::known_hosts_line(server, addr.port())
            ));
        }
        let (user, password) = match &generated {
            Some((user, password)) => (user.clone(), password.clone()),
            None => args
                .ssh_user
                .first()
                .and_then(|spec| ssh::parse_user(spec).ok())
                .map(|(user, password)| (user, password.unwrap_or_else(|| "...".into())))
                .unwrap_or_default(),
        };
        if let Some(addr) = running.ssh_addr {
            connect.push_str(&format!(
                "  netconf --host 127.0.0.1 --port {} --user {user} --password {password} \
                 --host-key-fingerprint {fingerprint} hello\n",
                addr.port(),
            ));
        }
        if let Some(port) = listen_port {
            connect.push_str(&format!(
                "  netconf listen --ssh --port {port} --user {user} --password {password} \
                 --host-key-fingerprint {fingerprint} hello\n",
            ));
        }
    }
    if serve_tls {
        if let Some(addr) = running.tls_addr {
            banner.push_str(&format!("listening on {addr}\n"));
        }
        if calling {
            banner.push_str(&format!("calling home over TLS to {manager_list}\n"));
        }
        if let Some(files) = &client_files {
            banner.push_str(&format!(
                "ca: {}\ncert: {}\nkey: {}\n",
                files.ca.display(),
                files.client_cert.display(),
                files.client_key.display(),
            ));
            let credentials = format!(
                "--ca {} --cert {} --key {}",
                files.ca.display(),
                files.client_cert.display(),
                files.client_key.display(),
            );
            if let Some(addr) = running.tls_addr {
                connect.push_str(&format!(
                    "  netconf --port {} {credentials} hello\n",
                    addr.port()
                ));
            }
            if let Some(port) = listen_port {
                connect.push_str(&format!(
                    "  netconf listen --tls --port {port} {credentials} hello\n"
                ));
            }
        }
    }
    if !connect.is_empty() {
        let how = match (calling, listening) {
            (true, true) => "connect or answer the call with",
            (true, false) => "answer the call with",
            (false, _) => "connect with",
        };
        banner.push_str(&format!("\n{how}:\n{connect}"));
    }
    print(&banner);
    if let Some(calls) = running.call_home.clone() {
        if let CallHomeEnd::GaveUp(e) = calls.wait() {
            let tries = args.max_attempts.unwrap_or_default();
            let message = format!(
                "call home to {manager_list}: gave up after {tries} failed calls in a row; \
                 the last: {e}"
            );
            if !listening {
                return Err(CliError::fatal(message));
            }
            eprintln!("netconf serve: {message}; still listening");
        }
    }
    loop {
        std::thread::park();
    }
}

/// `host:port`, `[v6]:port` for an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
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
