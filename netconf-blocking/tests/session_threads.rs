//! What a listener's session costs in threads, and that shutdown still waits for every
//! session to be over. In a test binary of its own, its tests one at a time ([`SERIAL`]):
//! one counts the process's threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use netconf_blocking::operations::{Datastore, GetConfig, RpcBody};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::{Client, ClientOptions, Reply, Server};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::with_deadline;

/// Held by each test for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .hello_timeout(Duration::from_secs(5))
        .rpc_timeout(Some(Duration::from_secs(10)))
}

/// `server` listening for TLS on 127.0.0.1; its address.
fn listen(server: &Server, pki: &Pki) -> String {
    server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .expect("listening")
        .to_string()
}

/// A TLS client of `addr`, once its first get-config is answered.
fn connected(pki: &Pki, addr: &str) -> Client {
    let client = Client::connect_tls_with(addr, &pki.client_tls_options(), &client_options())
        .expect("connect");
    client
        .call(&GetConfig::new(Datastore::Running))
        .expect("get-config");
    client
}

/// Shuts `server` down and checks it returned after every session's end hook (`ended`
/// counts them: one per client in `clients`, and one more), and that the clients heard it.
fn shut_down_after_every_end(server: &Server, ended: &AtomicUsize, clients: &[Client]) {
    server.shutdown();
    assert_eq!(
        ended.load(Ordering::SeqCst),
        clients.len() + 1,
        "shutdown returned before every session's end"
    );
    assert!(server.sessions().is_empty(), "{:?}", server.sessions());
    for c in clients {
        assert!(eventually(|| c.is_closed()), "a client still open");
    }
}

/// Polls `condition` every 10 ms for up to 10 s.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// An idle session from a listener holds two server threads: its loop's and its writer's.
/// The client's side holds two as well (its reading and writing threads). When the loop
/// first ran on a worker, the thread that had admitted the session stayed, waiting for the
/// loop to end: five threads per pair, and this test failed. Then `shutdown` returns only
/// once every session is over, its end hook called: no thread of a session is joined any
/// more, so it waits for the sessions themselves.
#[test]
fn a_listeners_session_holds_two_threads_and_shutdown_waits_for_its_end() {
    const SESSIONS: usize = 8;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(60, || {
        let pki = Pki::generate();
        let ended = Arc::new(AtomicUsize::new(0));
        let hook_ended = ended.clone();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release = Mutex::new(release_rx);
        let options = ServerOptions::new().on_session_end(move |_info| {
            hook_ended.fetch_add(1, Ordering::SeqCst);
        });
        let server = Server::new(options, move |request, _info| {
            if request.operation.name == "block" {
                let _ = release.lock().map(|rx| rx.recv());
            }
            Reply::Ok
        });
        let addr = listen(&server, &pki);
        // The watchdog and a pool thread start with the first session.
        let first = connected(&pki, &addr);
        let before = threads();
        let clients: Vec<Client> = (0..SESSIONS).map(|_| connected(&pki, &addr)).collect();
        assert_eq!(server.sessions().len(), SESSIONS + 1);
        let per_pair = (threads() - before) as f64 / SESSIONS as f64;
        eprintln!("{per_pair} threads per session pair");
        assert!(
            per_pair <= 4.0,
            "{per_pair} threads per session (client and server)"
        );

        // One session's handler blocks until after shutdown.
        let blocked = first
            .send(&RpcBody::raw("<block xmlns=\"urn:x\"/>").expect("body"))
            .expect("send");
        shut_down_after_every_end(&server, &ended, &clients);
        assert!(first.recv(blocked).is_err());
        drop(release_tx);
    });
}

/// `shutdown` called from the `on_session_end` hook of a listener's session returns: that
/// session is over but for its hook. Shutdown waited for every listener's session to be
/// counted out, the hook's own included, which only happens after the hook: it hung (and
/// before listeners' sessions were counted, it joined the hook's own thread).
#[test]
fn shutdown_from_the_session_end_hook_returns() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(30, || {
        let pki = Pki::generate();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let done_tx = Mutex::new(done_tx);
        let server_slot: Arc<Mutex<Option<Server>>> = Arc::default();
        let hook_slot = server_slot.clone();
        let options = ServerOptions::new().on_session_end(move |_info| {
            let server = hook_slot.lock().expect("slot").clone();
            if let Some(server) = server {
                server.shutdown();
                let _ = done_tx.lock().map(|tx| tx.send(()));
            }
        });
        let server = Server::new(options, |_request, _info| Reply::Ok);
        *server_slot.lock().expect("slot") = Some(server.clone());
        let addr = listen(&server, &pki);
        let client = Client::connect_tls_with(&addr, &pki.client_tls_options(), &client_options())
            .expect("connect");
        client.close().expect("close");
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("shutdown from the end hook returned");
        assert!(server.sessions().is_empty());
        server_slot.lock().expect("slot").take();
    });
}

/// The same for an SSH listener's sessions: no thread of ours waits for each (the SSH
/// connection's own work is on netconf-ssh's shared runtime), and shutdown returns once
/// every session's end hook ran. Each SSH session held a thread of its own, waiting for
/// its loop (joined by shutdown), before they were started detached: 5 per pair.
#[test]
fn an_ssh_listeners_session_holds_two_threads_and_shutdown_waits_for_its_end() {
    use netconf_blocking::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};
    const SESSIONS: usize = 6;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(120, || {
        let ended = Arc::new(AtomicUsize::new(0));
        let hook_ended = ended.clone();
        let options = ServerOptions::new().on_session_end(move |_info| {
            hook_ended.fetch_add(1, Ordering::SeqCst);
        });
        let server = Server::new(options, |_request, _info| Reply::Ok);
        let ssh = SshServer::new(
            SshServerOptions::default(),
            StaticAuth::new().user("admin", "pw"),
        )
        .expect("SSH server");
        let addr = server.listen_ssh("127.0.0.1:0", &ssh).expect("listening");
        let dir = tempfile::tempdir().expect("temp dir");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!(
                "[127.0.0.1]:{} {}\n",
                addr.port(),
                ssh.host_public_key().to_openssh().expect("key")
            ),
        )
        .expect("known_hosts");
        let connect = || {
            let options = SshClientOptions::new("admin")
                .known_hosts(&known_hosts)
                .password("pw");
            let c = Client::connect_ssh(&addr.to_string(), &options).expect("connect");
            c.call(&GetConfig::new(Datastore::Running))
                .expect("get-config");
            c
        };
        // The shared runtime, the watchdog and a pool thread start with the first.
        let first = connect();
        let before = threads();
        let clients: Vec<Client> = (0..SESSIONS).map(|_| connect()).collect();
        assert_eq!(server.sessions().len(), SESSIONS + 1);
        let per_pair = (threads() - before) as f64 / SESSIONS as f64;
        eprintln!("{per_pair} threads per SSH session pair");
        assert!(
            per_pair <= 4.0,
            "{per_pair} threads per SSH session (client and server)"
        );
        shut_down_after_every_end(&server, &ended, &clients);
        assert!(eventually(|| first.is_closed()), "a client still open");
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Sessions that ended leave no file descriptor (nor the memory of their state) behind.
/// Each session's state held its writer, whose progress callback held the registry slot,
/// which held the state: a cycle that kept two descriptors (and the state) of every ended
/// session for the life of the process.
#[test]
fn ended_sessions_leave_no_file_descriptors_behind() {
    const SESSIONS: usize = 20;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(60, || {
        let pki = Pki::generate();
        let server = Server::new(ServerOptions::new(), |_request, _info| Reply::Ok);
        let addr = listen(&server, &pki);
        let session = || {
            connected(&pki, &addr).close().expect("close");
        };
        session();
        assert!(eventually(|| server.sessions().is_empty()));
        let before = open_fds();
        for _ in 0..SESSIONS {
            session();
        }
        assert!(eventually(|| server.sessions().is_empty()));
        // The writer threads close their descriptors as they end.
        let settled = eventually(|| open_fds() <= before + 2);
        assert!(
            settled,
            "{} descriptors more after {SESSIONS} sessions ended",
            open_fds() - before
        );
        server.shutdown();
    });
}

/// A session end hook of one server that shuts another server down waits for all of the
/// other's sessions. Shutdown left out "the session whose hook runs on this thread" without
/// asking which server that session belonged to: it returned while the other server's
/// session was still ending (its hook, slowed here, had not run).
#[test]
fn shutdown_of_another_server_from_an_end_hook_waits_for_all_its_sessions() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(30, || {
        let pki = Pki::generate();
        let other_ended = Arc::new(AtomicUsize::new(0));
        let hook_other_ended = other_ended.clone();
        let other = Server::new(
            ServerOptions::new().on_session_end(move |_info| {
                // Slow, so that a shutdown that does not wait returns first.
                std::thread::sleep(Duration::from_millis(300));
                hook_other_ended.fetch_add(1, Ordering::SeqCst);
            }),
            |_request, _info| Reply::Ok,
        );
        let other_addr = listen(&other, &pki);
        let (seen_tx, seen_rx) = mpsc::channel::<usize>();
        let seen_tx = Mutex::new(seen_tx);
        let hook_other = other.clone();
        let hook_other_ended = other_ended.clone();
        let first = Server::new(
            ServerOptions::new().on_session_end(move |_info| {
                hook_other.shutdown();
                let _ = seen_tx
                    .lock()
                    .map(|tx| tx.send(hook_other_ended.load(Ordering::SeqCst)));
            }),
            |_request, _info| Reply::Ok,
        );
        let first_addr = listen(&first, &pki);
        let _on_other = connected(&pki, &other_addr);
        let on_first =
            Client::connect_tls_with(&first_addr, &pki.client_tls_options(), &client_options())
                .expect("connect");
        on_first.close().expect("close");
        let seen = seen_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the hook's shutdown returned");
        assert_eq!(seen, 1, "the other server's session had not ended");
        first.shutdown();
    });
}

/// A listener's session killed while a large reply waits, encrypted only as the writer makes
/// room, still ends: its end hook runs and shutdown returns. Kill-session takes the session
/// out of the registry at once; the writer's callbacks reached the session through the
/// registry's slot, so they lost it while the session still had the rest of the reply to
/// drain before its end, and its loop waited for a writer that could no longer tell it of
/// anything: the hook never ran and shutdown hung.
#[test]
fn a_session_killed_while_a_large_reply_waits_still_ends() {
    use netconf_blocking::operations::KillSession;
    use netconf_proto::rustls;
    use std::io::Write;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    with_deadline(60, || {
        let pki = Pki::generate();
        let ended = Arc::new(Mutex::new(Vec::new()));
        let hook_ended = ended.clone();
        let big = bytes::Bytes::from(format!(
            "<big xmlns=\"urn:x\">{}</big>",
            "b".repeat(64 << 20)
        ));
        let server = Server::new(
            ServerOptions::new().on_session_end(move |info| {
                hook_ended.lock().expect("ended").push(info.session_id);
            }),
            move |request, _info| {
                if request.operation.name == "big" {
                    return Reply::data_unchecked(big.clone());
                }
                Reply::Ok
            },
        );
        let addr = listen(&server, &pki);
        // A client that asks for the large reply and reads nothing of it.
        let tcp = std::net::TcpStream::connect(&addr).expect("connect");
        let conn = rustls::ClientConnection::new(
            pki.client_config(true),
            rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
        )
        .expect("TLS client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(
            b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>\
<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
<big xmlns=\"urn:x\"/></rpc>]]>]]>",
        )
        .expect("hello and request");
        tls.flush().expect("flush");
        assert!(eventually(|| server.sessions().len() == 1));
        let victim = server.sessions()[0];
        let killer = connected(&pki, &addr);
        killer
            .call(&KillSession::new(victim).expect("session-id"))
            .expect("kill-session");
        assert!(
            eventually(|| ended.lock().expect("ended").contains(&victim)),
            "the killed session never ended"
        );
        killer.close().expect("close");
        server.shutdown();
        drop(tls);
    });
}
