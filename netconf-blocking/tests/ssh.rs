//! NETCONF over real loopback SSH with the blocking adapter (issue 14), whose SSH
//! connections live on netconf-ssh's shared tokio runtime while the sessions run on our
//! threads: password and public-key logins with the SSH user as the session's username
//! (keyboard-interactive and the agent are covered once, in netconf-tokio); known_hosts
//! accept, refuse, accept-new and changed key; a refused subsystem; 100 MB both ways;
//! pipelined RPCs from several threads; notifications; both sides writing large messages
//! at once (the SSH window wedge, at the NETCONF level); a server that closes the channel
//! mid-message after sending its hello in 1-byte SSH packets; call home both ways; TLS and
//! SSH listeners on one `Server` with one handler.
//!
//! Every test binds 127.0.0.1, writes only to temp dirs, passes explicit known_hosts files
//! and runs under a deadlock guard; none measures time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use netconf_blocking::operations::{
    CreateSubscription, Datastore, EditConfig, GetConfig, InlineConfig, Lock,
};
use netconf_blocking::server::{ServerOptions, SessionInfo};
use netconf_blocking::ssh::{
    keys, Authenticator, ChannelOptions, PublicKey, SshClientOptions, SshError, SshServer,
    SshServerOptions, StaticAuth,
};
use netconf_blocking::{
    Client, ClientOptions, Config, Error, ErrorTag, ErrorType, Reply, Request, RpcError, Server,
};
use netconf_tests::certs::Pki;

const GUARD: Duration = Duration::from_secs(180);
const NS: &str = "urn:test:ssh";
const BIG: usize = 100 << 20;
/// Far beyond the read buffers of the wedge test.
const WEDGE: usize = 40 << 20;

/// Runs `body` on its own thread; fails if it has not finished within [`GUARD`].
fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(GUARD) {
        Ok(()) => thread.join().expect("the test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ended without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: the test did not finish within {GUARD:?}")
        }
    }
}

/// `<data>` of `len` bytes or a little more: many small elements.
fn big_data(len: usize) -> Reply {
    let item = "<i>0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab</i>";
    let mut s = String::with_capacity(len + 128);
    s.push_str(&format!("<big xmlns=\"{NS}\">"));
    while s.len() < len {
        s.push_str(item);
    }
    s.push_str("</big>");
    Reply::data_unchecked(s.into())
}

fn big_config(len: usize) -> InlineConfig {
    let item = "<v>0123456789abcdef0123456789abcdef0123456789abcdef01234567</v>";
    let mut s = String::with_capacity(len + 128);
    s.push_str(&format!("<top xmlns=\"{NS}\">"));
    while s.len() < len {
        s.push_str(item);
    }
    s.push_str("</top>");
    InlineConfig::new(s).unwrap()
}

/// get-config of running: `<who>` with the session's username; of candidate: `BIG` bytes;
/// of startup: `WEDGE` bytes; edit-config: records its size; lock: an rpc-error.
fn handle(request: &Request, info: &SessionInfo, edits: &AtomicUsize) -> Reply {
    let body = request.body.as_str();
    match request.operation.name.as_str() {
        "get-config" if body.contains("<candidate/>") => big_data(BIG),
        "get-config" if body.contains("<startup/>") => big_data(WEDGE),
        "get-config" => Reply::data(format!(
            "<who xmlns=\"{NS}\">{}</who>",
            info.username.as_deref().unwrap_or("-")
        ))
        .unwrap(),
        "edit-config" => {
            edits.fetch_max(body.len(), Ordering::SeqCst);
            Reply::Ok
        }
        "lock" => Reply::error(
            RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied).with_message("held"),
        ),
        _ => Reply::Ok,
    }
}

struct Fixture {
    server: Server,
    ssh: SshServer,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
    edits: Arc<AtomicUsize>,
}

impl Fixture {
    fn options(&self, user: &str) -> SshClientOptions {
        SshClientOptions::new(user).known_hosts(&self.known_hosts)
    }
}

fn new_server(edits: &Arc<AtomicUsize>) -> Server {
    let edits = edits.clone();
    Server::new(
        ServerOptions::new().config(
            Config::server()
                .with_capability("urn:ietf:params:netconf:capability:notification:1.0")
                .with_max_message_size(256 << 20),
        ),
        move |r, i| handle(r, i, &edits),
    )
}

fn ssh_server(auth: impl Authenticator, channel: ChannelOptions) -> SshServer {
    SshServer::new(
        SshServerOptions::default()
            .auth_rejection_time(Duration::from_millis(10))
            .channel(channel),
        auth,
    )
    .unwrap()
}

/// A known_hosts file naming `key` for `[127.0.0.1]:port`.
fn known_hosts(dir: &Path, name: &str, port: u16, key: &PublicKey) -> PathBuf {
    let path = dir.join(name);
    let line = key.to_openssh().unwrap();
    std::fs::write(&path, format!("[127.0.0.1]:{port} {line}\n")).unwrap();
    path
}

fn start_with(auth: impl Authenticator, channel: ChannelOptions) -> Fixture {
    let edits = Arc::new(AtomicUsize::new(0));
    let server = new_server(&edits);
    let ssh = ssh_server(auth, channel);
    let addr = server.listen_ssh("127.0.0.1:0", &ssh).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = known_hosts(
        dir.path(),
        "known_hosts",
        addr.port(),
        ssh.host_public_key(),
    );
    Fixture {
        server,
        ssh,
        addr,
        dir,
        known_hosts,
        edits,
    }
}

fn start(auth: impl Authenticator) -> Fixture {
    start_with(auth, ChannelOptions::default())
}

fn password_auth() -> StaticAuth {
    StaticAuth::new().user("admin", "pw")
}

fn whoami(client: &Client) -> String {
    let data = client.call(&GetConfig::new(Datastore::Running)).unwrap();
    let s = data.as_str().to_owned();
    let start = s.find('>').unwrap() + 1;
    s[start..s.rfind("</who>").unwrap()].to_owned()
}

fn ssh_error(e: &Error) -> &SshError {
    match e {
        Error::Ssh(inner) => inner
            .downcast_ref::<SshError>()
            .unwrap_or_else(|| panic!("not a netconf-ssh error: {inner:?}")),
        other => panic!("expected Error::Ssh, got {other:?}"),
    }
}

#[test]
fn password_login_with_the_ssh_user_as_username() {
    guarded(|| {
        let f = start(password_auth());
        let client =
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).unwrap();
        assert!(client.session_id() > 0);
        assert_eq!(whoami(&client), "admin");
        match client.call(&Lock::new(Datastore::Running)) {
            Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::LockDenied),
            other => panic!("expected lock-denied, got {other:?}"),
        }
        assert_eq!(f.server.sessions().len(), 1);
        client.close().unwrap();
        f.server.shutdown();
    })
}

#[test]
fn wrong_password_is_an_ssh_error_naming_the_user() {
    guarded(|| {
        let f = start(password_auth());
        let e = Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("nope"))
            .unwrap_err();
        assert!(
            matches!(ssh_error(&e), SshError::AuthFailed { user, .. } if user == "admin"),
            "{e}"
        );
        f.server.shutdown();
    })
}

#[test]
fn public_key_login() {
    guarded(|| {
        let key = keys::generate_ed25519();
        let auth = StaticAuth::new().authorized_key("keyuser", key.public_key().clone());
        let f = start(auth);
        let client =
            Client::connect_ssh(&f.addr.to_string(), &f.options("keyuser").key(key)).unwrap();
        assert_eq!(whoami(&client), "keyuser");
        client.close().unwrap();
        f.server.shutdown();
    })
}

#[test]
fn known_hosts_refuses_unknown_and_changed_keys_and_accept_new_records() {
    guarded(|| {
        let f = start(password_auth());
        let addr = f.addr.to_string();
        let user = |kh: &Path| {
            SshClientOptions::new("admin")
                .password("pw")
                .known_hosts(kh)
        };

        let empty = f.dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let e = Client::connect_ssh(&addr, &user(&empty)).unwrap_err();
        match ssh_error(&e) {
            SshError::UnknownHostKey { offered, .. } => {
                assert_eq!(*offered, f.ssh.host_key_fingerprint())
            }
            other => panic!("expected UnknownHostKey, got {other}"),
        }

        let other = keys::generate_ed25519();
        let changed = known_hosts(f.dir.path(), "changed", f.addr.port(), other.public_key());
        for accept_new in [false, true] {
            let e = Client::connect_ssh(&addr, &user(&changed).accept_new_host_keys(accept_new))
                .unwrap_err();
            assert!(
                matches!(ssh_error(&e), SshError::HostKeyChanged { line: 1, .. }),
                "{e}"
            );
        }

        let client = Client::connect_ssh(&addr, &user(&empty).accept_new_host_keys(true)).unwrap();
        client.close().unwrap();
        let recorded = std::fs::read_to_string(&empty).unwrap();
        assert!(
            recorded.contains(&format!("[127.0.0.1]:{}", f.addr.port())),
            "{recorded}"
        );
        let client = Client::connect_ssh(&addr, &user(&empty)).unwrap();
        client.close().unwrap();

        let client = Client::connect_ssh(&addr, &user(&f.known_hosts)).unwrap();
        client.close().unwrap();
        f.server.shutdown();
    })
}

#[test]
fn a_refused_subsystem_is_an_ssh_error() {
    guarded(|| {
        let f = start(password_auth());
        let opts = f.options("admin").password("pw").subsystem("xmlagent");
        let e = Client::connect_ssh(&f.addr.to_string(), &opts).unwrap_err();
        assert!(
            matches!(ssh_error(&e), SshError::SubsystemRefused { name, .. } if name == "xmlagent"),
            "{e}"
        );
        assert!(f.server.sessions().is_empty());
        f.server.shutdown();
    })
}

#[test]
fn a_100_mb_reply_and_a_100_mb_edit_config() {
    guarded(|| {
        let f = start(password_auth());
        let client =
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).unwrap();
        let data = client
            .call_with_timeout(&GetConfig::new(Datastore::Candidate), None)
            .unwrap();
        assert!(data.as_str().len() >= BIG, "{}", data.as_str().len());
        assert!(data.as_str().ends_with("</i></big>"));

        let edit = EditConfig::new(Datastore::Running, big_config(BIG));
        client.call_with_timeout(&edit, None).unwrap();
        assert!(f.edits.load(Ordering::SeqCst) >= BIG);
        client.close().unwrap();
        f.server.shutdown();
    })
}

#[test]
fn pipelined_rpcs_from_several_threads() {
    guarded(|| {
        let f = start(password_auth());
        let client =
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for _ in 0..16 {
                        assert_eq!(whoami(&client), "admin");
                        assert!(client.call(&Lock::new(Datastore::Running)).is_err());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // send/recv pipelining on one thread too.
        let ids: Vec<_> = (0..16)
            .map(|_| client.send(&GetConfig::new(Datastore::Running)).unwrap())
            .collect();
        for id in ids {
            assert!(client.recv(id).unwrap().data().is_some());
        }
        client.close().unwrap();
        f.server.shutdown();
    })
}

#[test]
fn notifications_over_ssh() {
    guarded(|| {
        let f = start(password_auth());
        let client =
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).unwrap();
        let notifications = client.notifications();
        client.call(&CreateSubscription::new()).unwrap();
        for i in 0..3 {
            let sent = f
                .server
                .notify(
                    "2026-01-01T00:00:00Z",
                    &format!("<event xmlns=\"{NS}\"><n>{i}</n></event>"),
                )
                .unwrap();
            assert_eq!(sent, 1);
        }
        for i in 0..3 {
            let n = notifications.recv().unwrap().unwrap();
            assert!(n.content.as_str().contains(&format!("<n>{i}</n>")));
        }
        client.close().unwrap();
        f.server.shutdown();
    })
}

/// Both ends write a message far larger than the SSH layer's read buffers (64 KiB here, the
/// smallest netconf-ssh allows) at the same time: the server its reply to a get-config, the
/// client (once that reply is arriving) an edit-config. A session that stopped reading
/// while its writer thread has a large reply queued would wedge the connection: a full
/// channel buffer parks russh's connection task, and the window adjusts for the other
/// direction are never read.
#[test]
fn both_sides_writing_large_messages_at_once_do_not_wedge() {
    guarded(|| {
        let small = ChannelOptions::default().read_buffer_limit(0);
        let f = start_with(password_auth(), small.clone());
        let (arriving_tx, arriving) = mpsc::sync_channel::<()>(1);
        let options = ClientOptions::new().on_progress(move |p| {
            if p.received > 1 << 20 {
                let _ = arriving_tx.try_send(());
            }
        });
        let opts = f.options("admin").password("pw").channel(small);
        let client = Client::connect_ssh_with(&f.addr.to_string(), &opts, &options).unwrap();
        let edit = EditConfig::new(Datastore::Running, big_config(WEDGE));
        for _ in 0..2 {
            while arriving.try_recv().is_ok() {}
            let c = client.clone();
            let get = std::thread::spawn(move || {
                c.call_with_timeout(&GetConfig::new(Datastore::Startup), None)
                    .map(|d| d.as_str().len())
            });
            // The server is writing its reply now; the client writes its own.
            arriving.recv().unwrap();
            client.call_with_timeout(&edit, None).unwrap();
            assert!(get.join().unwrap().unwrap() >= WEDGE);
        }
        assert!(f.edits.load(Ordering::SeqCst) >= WEDGE);
        client.close().unwrap();
        f.server.shutdown();
    })
}

const HELLO_10: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>\
    <session-id>7</session-id></hello>]]>]]>";

/// A raw netconf-ssh server (its blocking listener): sends its hello one byte per SSH
/// packet, waits for the client's first `<rpc>`, writes half of a reply and closes the
/// channel.
#[test]
fn a_server_that_closes_the_channel_mid_message() {
    guarded(|| {
        let ssh = ssh_server(password_auth(), ChannelOptions::default());
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = netconf_ssh::blocking::BlockingListener::new(&ssh, tcp).unwrap();
        let raw = std::thread::spawn(move || {
            let session = listener.accept().unwrap();
            let mut stream = session.stream;
            for b in HELLO_10.as_bytes() {
                stream.write_all(std::slice::from_ref(b)).unwrap();
            }
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("</rpc>") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed first");
                seen.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(
                    b"<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" \
                      message-id=\"1\"><data><top xmlns=\"urn:x\"><a>1</a>",
                )
                .unwrap();
            stream.shutdown();
        });
        let dir = tempfile::tempdir().unwrap();
        let kh = known_hosts(dir.path(), "kh", addr.port(), ssh.host_public_key());
        let opts = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(&kh);
        let client = Client::connect_ssh(&addr.to_string(), &opts).unwrap();
        assert_eq!(client.session_id(), 7);
        let e = client
            .call(&GetConfig::new(Datastore::Running))
            .unwrap_err();
        assert!(
            matches!(e, Error::Closed(_) | Error::Protocol(_) | Error::Io(_)),
            "{e:?}"
        );
        assert!(client.is_closed());
        raw.join().unwrap();
    })
}

/// RFC 8071 call home both ways over std TCP streams: the NETCONF server dials, the client
/// listens; each still runs its own SSH role.
#[test]
fn call_home() {
    guarded(|| {
        let edits = Arc::new(AtomicUsize::new(0));
        let server = new_server(&edits);
        let ssh = ssh_server(password_auth(), ChannelOptions::default());
        let manager = TcpListener::bind("127.0.0.1:0").unwrap();
        let manager_addr = manager.local_addr().unwrap();
        let device = {
            let (server, ssh) = (server.clone(), ssh.clone());
            std::thread::spawn(move || {
                let tcp = TcpStream::connect(manager_addr).unwrap();
                server.serve_ssh(tcp, &ssh, Some(manager_addr))
            })
        };
        let (tcp, _) = manager.accept().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("kh");
        std::fs::write(
            &kh,
            format!(
                "[device1]:4334 {}\n",
                ssh.host_public_key().to_openssh().unwrap()
            ),
        )
        .unwrap();
        let opts = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(&kh);
        let client =
            Client::connect_ssh_over(tcp, "device1:4334", &opts, &ClientOptions::new()).unwrap();
        assert_eq!(whoami(&client), "admin");
        client.close().unwrap();
        device.join().unwrap().unwrap();
        server.shutdown();
    })
}

#[test]
fn tls_and_ssh_listeners_on_one_server_with_one_handler() {
    guarded(|| {
        let f = start(password_auth());
        let pki = Pki::generate();
        let server_tls = pki.server_tls_options();
        let client_tls = pki.client_tls_options().server_name("localhost");
        let tls_addr = f.server.listen_tls("127.0.0.1:0", &server_tls).unwrap();

        let over_ssh =
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).unwrap();
        let over_tls = Client::connect_tls(&tls_addr.to_string(), &client_tls).unwrap();
        assert_eq!(whoami(&over_ssh), "admin");
        assert_ne!(whoami(&over_tls), "admin");
        let mut ids = f.server.sessions();
        ids.sort();
        let mut expected = vec![over_ssh.session_id(), over_tls.session_id()];
        expected.sort();
        assert_eq!(ids, expected);

        let n_ssh = over_ssh.notifications();
        let n_tls = over_tls.notifications();
        over_ssh.call(&CreateSubscription::new()).unwrap();
        over_tls.call(&CreateSubscription::new()).unwrap();
        let sent = f
            .server
            .notify("2026-01-01T00:00:00Z", &format!("<e xmlns=\"{NS}\"/>"))
            .unwrap();
        assert_eq!(sent, 2);
        n_ssh.recv().unwrap().unwrap();
        n_tls.recv().unwrap().unwrap();

        f.server.shutdown();
        assert!(f.server.sessions().is_empty());
        assert!(n_ssh.recv().is_none());
        assert!(n_tls.recv().is_none());
        assert!(
            Client::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw")).is_err()
        );
    })
}
