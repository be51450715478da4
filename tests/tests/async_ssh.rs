//! NETCONF over real loopback SSH on each async runtime (tokio and smol: every test runs on
//! both; issue 14). On tokio the SSH connections live on the test's runtime; on smol they
//! live on netconf-ssh's shared tokio runtime while the sessions run on smol. Password,
//! public-key, keyboard-interactive and agent logins with the SSH user as the session's
//! username; known_hosts accept, refuse, accept-new and changed key; a refused subsystem;
//! 100 MB both ways; pipelined RPCs from many tasks; notifications; both sides writing large
//! messages at once (the SSH window wedge, at the NETCONF level); a server that closes the
//! channel mid-message after sending its hello in 1-byte SSH packets; TLS and SSH listeners
//! on one `Server` with one handler. Call home over a stream the caller connected takes each
//! runtime's own stream types, so it stays in each adapter's `tests/ssh.rs`.
//!
//! Every test binds 127.0.0.1, writes only to temp dirs, passes explicit known_hosts files
//! and runs under a deadlock guard; none measures time.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use netconf_async::adapter::operations::{
    CreateSubscription, Datastore, EditConfig, GetConfig, InlineConfig, Lock,
};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::{
    ClientOptions, Config, Error, ErrorTag, ErrorType, Reply, Request, RpcError,
};
use netconf_async::ssh::{
    keys, AuthFuture, Authenticator, ChannelOptions, PrivateKey, PublicKey, SshClientOptions,
    SshError, SshServer, SshServerOptions, StaticAuth,
};
use netconf_async::{Client, Runtime, Server};
use netconf_tests::certs::Pki;

netconf_tests::on_each_runtime!(
    password_login_with_the_ssh_user_as_username,
    wrong_password_is_an_ssh_error_naming_the_user,
    public_key_login,
    keyboard_interactive_login,
    agent_login,
    known_hosts_refuses_unknown_and_changed_keys_and_accept_new_records,
    a_refused_subsystem_is_an_ssh_error,
    a_100_mb_reply_and_a_100_mb_edit_config,
    pipelined_rpcs_from_many_tasks,
    notifications_over_ssh,
    both_sides_writing_large_messages_at_once_do_not_wedge,
    a_server_that_closes_the_channel_mid_message,
    tls_and_ssh_listeners_on_one_server_with_one_handler,
);

const GUARD: Duration = Duration::from_secs(180);
const NS: &str = "urn:test:ssh";
const BIG: usize = 100 << 20;
/// Far beyond the read buffers of the wedge test.
const WEDGE: usize = 40 << 20;

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    futures_lite::future::or(async { Some(body.await) }, async {
        async_io::Timer::after(GUARD).await;
        None
    })
    .await
    .expect("deadlock guard: the test did not finish in time")
}

/// Runs `task` on the runtime at once; completes with its output (a task that panicked
/// fails the test here).
fn spawn<R: Runtime, T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (done, finished) = ::smol::channel::bounded(1);
    R::spawn(Box::pin(async move {
        let _ = done.send(task.await).await;
    }));
    async move { finished.recv().await.expect("the task panicked") }
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
async fn handle(request: Request, info: SessionInfo, edits: Arc<AtomicUsize>) -> Reply {
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

struct Fixture<R: Runtime> {
    server: Server<R>,
    ssh: SshServer,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
    edits: Arc<AtomicUsize>,
}

impl<R: Runtime> Fixture<R> {
    fn options(&self, user: &str) -> SshClientOptions {
        SshClientOptions::new(user).known_hosts(&self.known_hosts)
    }
}

fn server_config() -> Config {
    Config::server()
        .with_capability("urn:ietf:params:netconf:capability:notification:1.0")
        .with_max_message_size(256 << 20)
}

fn new_server<R: Runtime>(edits: &Arc<AtomicUsize>) -> Server<R> {
    let edits = edits.clone();
    Server::new(ServerOptions::new().config(server_config()), move |r, i| {
        handle(r, i, edits.clone())
    })
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

async fn start_with<R: Runtime>(auth: impl Authenticator, channel: ChannelOptions) -> Fixture<R> {
    let edits = Arc::new(AtomicUsize::new(0));
    let server = new_server::<R>(&edits);
    let ssh = ssh_server(auth, channel);
    let addr = server.listen_ssh("127.0.0.1:0", &ssh).await.unwrap();
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

async fn start<R: Runtime>(auth: impl Authenticator) -> Fixture<R> {
    start_with(auth, ChannelOptions::default()).await
}

fn password_auth() -> StaticAuth {
    StaticAuth::new().user("admin", "pw")
}

async fn whoami<R: Runtime>(client: &Client<R>) -> String {
    let data = client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
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

async fn password_login_with_the_ssh_user_as_username<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
        .await
        .unwrap();
    assert!(client.session_id() > 0);
    assert_eq!(whoami(&client).await, "admin");
    match client.call(&Lock::new(Datastore::Running)).await {
        Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::LockDenied),
        other => panic!("expected lock-denied, got {other:?}"),
    }
    assert_eq!(f.server.sessions().len(), 1);
    client.close().await.unwrap();
    f.server.shutdown().await;
}

async fn wrong_password_is_an_ssh_error_naming_the_user<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let e = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(ssh_error(&e), SshError::AuthFailed { user, .. } if user == "admin"),
        "{e}"
    );
    f.server.shutdown().await;
}

async fn public_key_login<R: Runtime>() {
    let key: PrivateKey = keys::generate_ed25519();
    let auth = StaticAuth::new().authorized_key("keyuser", key.public_key().clone());
    let f = start::<R>(auth).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("keyuser").key(key))
        .await
        .unwrap();
    assert_eq!(whoami(&client).await, "keyuser");
    client.close().await.unwrap();
    f.server.shutdown().await;
}

/// Refuses the first password it is asked about (the `password` method) and accepts the
/// second: the client's keyboard-interactive answer to our server's `Password:` prompt.
struct SecondTime(AtomicUsize);

impl Authenticator for SecondTime {
    fn password<'a>(&'a self, user: &'a str, password: &'a str) -> AuthFuture<'a> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let ok = n >= 1 && user == "kbd" && password == "pw";
        Box::pin(async move { ok.then(|| format!("{user}-via-kbd")) })
    }
}

async fn keyboard_interactive_login<R: Runtime>() {
    let f = start::<R>(SecondTime(AtomicUsize::new(0))).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("kbd").password("pw"))
        .await
        .unwrap();
    assert_eq!(whoami(&client).await, "kbd-via-kbd");
    client.close().await.unwrap();
    f.server.shutdown().await;
}

fn have(bin: &str) -> bool {
    let found = ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(bin).exists());
    if !found {
        if std::env::var("NETCONF_INTEROP").as_deref() == Ok("require") {
            panic!("{bin} is required (NETCONF_INTEROP=require) but not installed");
        }
        eprintln!("SKIP: {bin} not installed (apt-get install openssh-client)");
    }
    found
}

/// SSH_AUTH_SOCK is one per process: one agent test (of the two runtimes') at a time.
static AGENT: ::smol::lock::Mutex<()> = ::smol::lock::Mutex::new(());

/// ssh-agent from openssh-client on a socket in a temp dir, found through SSH_AUTH_SOCK
/// (set for this test process only, while the test holds [`AGENT`]; no other test here
/// uses an agent).
async fn agent_login<R: Runtime>() {
    if !have("ssh-agent") || !have("ssh-add") || !have("ssh-keygen") {
        return;
    }
    let _agent = AGENT.lock().await;
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_agent");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "agent", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let sock = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if sock.exists() {
            break;
        }
        R::sleep_until(Instant::now() + Duration::from_millis(10)).await;
    }
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    std::env::set_var("SSH_AUTH_SOCK", &sock);
    let public = keys::load_public_key(&key.with_extension("pub")).unwrap();
    let f = start::<R>(StaticAuth::new().authorized_key("agentuser", public)).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("agentuser").agent(true))
        .await
        .unwrap();
    assert_eq!(whoami(&client).await, "agentuser");
    client.close().await.unwrap();
    f.server.shutdown().await;
    let _ = agent.kill();
    let _ = agent.wait();
}

async fn known_hosts_refuses_unknown_and_changed_keys_and_accept_new_records<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let addr = f.addr.to_string();
    let user = |kh: &Path| {
        SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(kh)
    };

    // No entry: refused, naming the offered fingerprint.
    let empty = f.dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let e = Client::<R>::connect_ssh(&addr, &user(&empty))
        .await
        .unwrap_err();
    match ssh_error(&e) {
        SshError::UnknownHostKey { offered, .. } => {
            assert_eq!(*offered, f.ssh.host_key_fingerprint())
        }
        other => panic!("expected UnknownHostKey, got {other}"),
    }

    // A different key on record: refused, even with accept-new.
    let other = keys::generate_ed25519();
    let changed = known_hosts(f.dir.path(), "changed", f.addr.port(), other.public_key());
    for accept_new in [false, true] {
        let e = Client::<R>::connect_ssh(&addr, &user(&changed).accept_new_host_keys(accept_new))
            .await
            .unwrap_err();
        assert!(
            matches!(ssh_error(&e), SshError::HostKeyChanged { line: 1, .. }),
            "{e}"
        );
    }

    // accept-new records the key; the next connect checks against it.
    let client = Client::<R>::connect_ssh(&addr, &user(&empty).accept_new_host_keys(true))
        .await
        .unwrap();
    client.close().await.unwrap();
    let recorded = std::fs::read_to_string(&empty).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", f.addr.port())),
        "{recorded}"
    );
    let client = Client::<R>::connect_ssh(&addr, &user(&empty))
        .await
        .unwrap();
    client.close().await.unwrap();

    // The right key: accepted.
    let client = Client::<R>::connect_ssh(&addr, &user(&f.known_hosts))
        .await
        .unwrap();
    client.close().await.unwrap();
    f.server.shutdown().await;
}

async fn a_refused_subsystem_is_an_ssh_error<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let opts = f.options("admin").password("pw").subsystem("xmlagent");
    let e = Client::<R>::connect_ssh(&f.addr.to_string(), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(ssh_error(&e), SshError::SubsystemRefused { name, .. } if name == "xmlagent"),
        "{e}"
    );
    assert!(f.server.sessions().is_empty());
    f.server.shutdown().await;
}

async fn a_100_mb_reply_and_a_100_mb_edit_config<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
        .await
        .unwrap();
    let data = client
        .call_with_timeout(&GetConfig::new(Datastore::Candidate), None)
        .await
        .unwrap();
    assert!(data.as_str().len() >= BIG, "{}", data.as_str().len());
    assert!(data.as_str().ends_with("</i></big>"));

    client
        .call_with_timeout(&EditConfig::new(Datastore::Running, big_config(BIG)), None)
        .await
        .unwrap();
    assert!(f.edits.load(Ordering::SeqCst) >= BIG);
    client.close().await.unwrap();
    f.server.shutdown().await;
}

async fn pipelined_rpcs_from_many_tasks<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = client.clone();
        tasks.push(spawn::<R, _>(async move {
            for _ in 0..8 {
                assert_eq!(whoami(&client).await, "admin");
                assert!(client.call(&Lock::new(Datastore::Running)).await.is_err());
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    client.close().await.unwrap();
    f.server.shutdown().await;
}

async fn notifications_over_ssh<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let client = Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
        .await
        .unwrap();
    let mut notifications = client.notifications();
    client.call(&CreateSubscription::new()).await.unwrap();
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
        let n = notifications.next().await.unwrap().unwrap();
        assert!(n.content.as_str().contains(&format!("<n>{i}</n>")));
    }
    client.close().await.unwrap();
    f.server.shutdown().await;
}

/// Both ends write a message far larger than the SSH layer's read buffers (64 KiB here, the
/// smallest netconf-ssh allows, on both ends, so a loop that stopped reading while it writes
/// would wedge at once) at the same time: the server its reply to a get-config, the client
/// (once that reply is arriving) an edit-config. Over raw russh channels this wedges the
/// connection: a full channel queue parks russh's connection task, so the window adjusts
/// for the other direction are never read.
async fn both_sides_writing_large_messages_at_once_do_not_wedge<R: Runtime>() {
    let small = ChannelOptions::default().read_buffer_limit(0);
    let f = start_with::<R>(password_auth(), small.clone()).await;
    let (arriving_tx, arriving) = ::smol::channel::bounded::<()>(1);
    let options = ClientOptions::new().on_progress(move |p| {
        if p.received > 1 << 20 {
            let _ = arriving_tx.try_send(());
        }
    });
    let opts = f.options("admin").password("pw").channel(small);
    let client = Client::<R>::connect_ssh_with(&f.addr.to_string(), &opts, &options)
        .await
        .unwrap();
    let edit = EditConfig::new(Datastore::Running, big_config(WEDGE));
    for _ in 0..2 {
        // Forget a signal left from the previous round's reply.
        while arriving.try_recv().is_ok() {}
        let c = client.clone();
        let get = spawn::<R, _>(async move {
            c.call_with_timeout(&GetConfig::new(Datastore::Startup), None)
                .await
                .map(|d| d.as_str().len())
        });
        // The server is writing its reply now; the client writes its own.
        arriving.recv().await.unwrap();
        client.call_with_timeout(&edit, None).await.unwrap();
        assert!(get.await.unwrap() >= WEDGE);
    }
    assert!(f.edits.load(Ordering::SeqCst) >= WEDGE);
    client.close().await.unwrap();
    f.server.shutdown().await;
}

const HELLO_10: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>\
    <session-id>7</session-id></hello>]]>]]>";

/// A raw netconf-ssh server (russh is tokio-only: on tokio it runs on the test's runtime,
/// on smol on netconf-ssh's shared one, through `Runtime::ssh`): sends its hello one byte
/// per SSH packet, waits for the client's first `<rpc>`, writes half of a reply and drops
/// the channel.
async fn a_server_that_closes_the_channel_mid_message<R: Runtime>() {
    let ssh = ssh_server(password_auth(), ChannelOptions::default());
    let (addr, raw) = {
        let ssh = ssh.clone();
        R::ssh(async move {
            use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
            let tcp = ::tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = tcp.local_addr().unwrap();
            let mut listener = ssh.listen(tcp);
            let raw = ::tokio::spawn(async move {
                let session = listener.accept().await.unwrap();
                let mut stream = session.stream;
                for b in HELLO_10.as_bytes() {
                    stream.write_all(std::slice::from_ref(b)).await.unwrap();
                }
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&seen).contains("</rpc>") {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed first");
                    seen.extend_from_slice(&buf[..n]);
                }
                stream
                    .write_all(
                        b"<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" \
                          message-id=\"1\"><data><top xmlns=\"urn:x\"><a>1</a>",
                    )
                    .await
                    .unwrap();
                drop(stream);
            });
            (addr, raw)
        })
        .await
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts(dir.path(), "kh", addr.port(), ssh.host_public_key());
    let opts = SshClientOptions::new("admin")
        .password("pw")
        .known_hosts(&kh);
    let client = Client::<R>::connect_ssh(&addr.to_string(), &opts)
        .await
        .unwrap();
    assert_eq!(client.session_id(), 7);
    let e = client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Closed(_) | Error::Protocol(_) | Error::Io(_)),
        "{e:?}"
    );
    assert!(client.is_closed());
    raw.await.unwrap();
}

async fn tls_and_ssh_listeners_on_one_server_with_one_handler<R: Runtime>() {
    let f = start::<R>(password_auth()).await;
    let pki = Pki::generate();
    let server_tls = pki.server_tls_options();
    let client_tls = pki.client_tls_options().server_name("localhost");
    let tls_addr = f
        .server
        .listen_tls("127.0.0.1:0", &server_tls)
        .await
        .unwrap();

    let over_ssh =
        Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
            .await
            .unwrap();
    let over_tls = Client::<R>::connect_tls(&tls_addr.to_string(), &client_tls)
        .await
        .unwrap();
    assert_eq!(whoami(&over_ssh).await, "admin");
    assert_ne!(whoami(&over_tls).await, "admin");
    let mut ids = f.server.sessions();
    ids.sort();
    let mut expected = vec![over_ssh.session_id(), over_tls.session_id()];
    expected.sort();
    assert_eq!(ids, expected);

    // One notify reaches subscribers on both transports.
    let mut n_ssh = over_ssh.notifications();
    let mut n_tls = over_tls.notifications();
    over_ssh.call(&CreateSubscription::new()).await.unwrap();
    over_tls.call(&CreateSubscription::new()).await.unwrap();
    let sent = f
        .server
        .notify("2026-01-01T00:00:00Z", &format!("<e xmlns=\"{NS}\"/>"))
        .unwrap();
    assert_eq!(sent, 2);
    n_ssh.next().await.unwrap().unwrap();
    n_tls.next().await.unwrap().unwrap();

    // Shutdown ends both sessions and stops both listeners.
    f.server.shutdown().await;
    assert!(f.server.sessions().is_empty());
    assert!(n_ssh.next().await.is_none());
    assert!(n_tls.next().await.is_none());
    assert!(
        Client::<R>::connect_ssh(&f.addr.to_string(), &f.options("admin").password("pw"))
            .await
            .is_err()
    );
}
