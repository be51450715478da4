//! Every adapter's client against every adapter's server over real SSH on loopback: hello,
//! a typed call that returns the SSH user the server saw, an rpc-error, a notification,
//! close. The SSH twin of `adapters_smoke.rs`; host keys are pinned by fingerprint, so no
//! file is written.

use std::time::Duration;

use netconf_proto::client::ClientOptions;
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::operations::{CreateSubscription, Datastore, GetConfig, Lock};
use netconf_proto::server::{ServerOptions, SessionInfo};
use netconf_proto::{Config, Error, Reply, Request, RpcError};
use netconf_tokio::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};

const GUARD: Duration = Duration::from_secs(60);

fn answer(request: &Request, info: &SessionInfo) -> Reply {
    match request.operation.name.as_str() {
        "get-config" => Reply::data(format!(
            "<top xmlns=\"urn:smoke\"><user>{}</user></top>",
            info.username.as_deref().unwrap_or("-")
        ))
        .unwrap(),
        "lock" => Reply::error(
            RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied).with_message("held"),
        ),
        _ => Reply::Ok,
    }
}

fn server_options() -> ServerOptions {
    ServerOptions::new().config(
        Config::server().with_capability("urn:ietf:params:netconf:capability:notification:1.0"),
    )
}

/// One SSH server identity for all three adapters (their `ssh` modules re-export the same
/// netconf-ssh types).
fn ssh_server() -> SshServer {
    SshServer::new(
        SshServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("smoke", "pw"),
    )
    .unwrap()
}

fn client_options(ssh: &SshServer) -> SshClientOptions {
    SshClientOptions::new("smoke")
        .password("pw")
        .host_key_fingerprint(ssh.host_key_fingerprint())
}

fn guarded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(GUARD)
        .expect("deadlock guard: not finished within 60 s")
}

/// Starts a server of the given kind with an SSH listener; returns its address and a stopper.
fn start_server(kind: &str, ssh: &SshServer) -> (std::net::SocketAddr, Box<dyn FnOnce() + Send>) {
    match kind {
        "blocking" => {
            let server = netconf_blocking::Server::new(server_options(), answer);
            let addr = server.listen_ssh("127.0.0.1:0", ssh).unwrap();
            let notifier = server.clone();
            std::thread::spawn(move || {
                notify_loop(|| {
                    notifier
                        .notify("2026-01-01T00:00:00Z", "<e xmlns=\"urn:smoke\"/>")
                        .unwrap()
                })
            });
            (addr, Box::new(move || server.shutdown()))
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let server =
                netconf_tokio::Server::new(server_options(), |r, i| async move { answer(&r, &i) });
            let addr = rt.block_on(server.listen_ssh("127.0.0.1:0", ssh)).unwrap();
            let notifier = server.clone();
            std::thread::spawn(move || {
                notify_loop(|| {
                    notifier
                        .notify("2026-01-01T00:00:00Z", "<e xmlns=\"urn:smoke\"/>")
                        .unwrap()
                })
            });
            (
                addr,
                Box::new(move || {
                    rt.block_on(server.shutdown());
                    rt.shutdown_timeout(Duration::from_secs(2));
                }),
            )
        }
        "smol" => {
            let server =
                netconf_smol::Server::new(server_options(), |r, i| async move { answer(&r, &i) });
            let addr = smol::block_on(server.listen_ssh("127.0.0.1:0", ssh)).unwrap();
            let notifier = server.clone();
            std::thread::spawn(move || {
                notify_loop(|| {
                    notifier
                        .notify("2026-01-01T00:00:00Z", "<e xmlns=\"urn:smoke\"/>")
                        .unwrap()
                })
            });
            (addr, Box::new(move || smol::block_on(server.shutdown())))
        }
        _ => unreachable!(),
    }
}

/// Sends a notification every 20 ms until nobody is subscribed for a while.
fn notify_loop(notify: impl Fn() -> usize) {
    let mut idle = 0;
    let mut seen = false;
    while idle < 100 {
        std::thread::sleep(Duration::from_millis(20));
        if notify() > 0 {
            seen = true;
            idle = 0;
        } else if seen {
            idle += 1;
        }
    }
}

fn check_lock_error(r: Result<(), Error>) {
    match r {
        Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::LockDenied),
        other => panic!("expected lock-denied, got {other:?}"),
    }
}

fn run_blocking_client(addr: std::net::SocketAddr, ssh: &SshServer) {
    let client = netconf_blocking::Client::connect_ssh_with(
        &addr.to_string(),
        &client_options(ssh),
        &ClientOptions::new(),
    )
    .unwrap();
    assert!(client.session_id() > 0);
    let data = client.call(&GetConfig::new(Datastore::Running)).unwrap();
    assert!(data.as_str().contains("<user>smoke</user>"), "{data}");
    check_lock_error(client.call(&Lock::new(Datastore::Running)));
    let notifications = client.notifications();
    client.call(&CreateSubscription::new()).unwrap();
    let n = notifications
        .recv()
        .expect("a notification")
        .expect("not lagged");
    assert!(n.content.as_str().contains("urn:smoke"));
    client.close().unwrap();
}

fn run_tokio_client(addr: std::net::SocketAddr, ssh: &SshServer) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio_stream::StreamExt;
        let client = netconf_tokio::Client::connect_ssh(&addr.to_string(), &client_options(ssh))
            .await
            .unwrap();
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        assert!(data.as_str().contains("<user>smoke</user>"), "{data}");
        check_lock_error(client.call(&Lock::new(Datastore::Running)).await);
        let mut notifications = client.notifications();
        client.call(&CreateSubscription::new()).await.unwrap();
        let n = notifications
            .next()
            .await
            .expect("a notification")
            .expect("not lagged");
        assert!(n.content.as_str().contains("urn:smoke"));
        client.close().await.unwrap();
    });
}

fn run_smol_client(addr: std::net::SocketAddr, ssh: &SshServer) {
    smol::block_on(async {
        use futures_lite::StreamExt;
        let client = netconf_smol::Client::connect_ssh(&addr.to_string(), &client_options(ssh))
            .await
            .unwrap();
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        assert!(data.as_str().contains("<user>smoke</user>"), "{data}");
        check_lock_error(client.call(&Lock::new(Datastore::Running)).await);
        let mut notifications = client.notifications();
        client.call(&CreateSubscription::new()).await.unwrap();
        let n = notifications
            .next()
            .await
            .expect("a notification")
            .expect("not lagged");
        assert!(n.content.as_str().contains("urn:smoke"));
        client.close().await.unwrap();
    });
}

fn pair(server: &'static str, client: &'static str) {
    guarded(move || {
        let ssh = ssh_server();
        let (addr, stop) = start_server(server, &ssh);
        match client {
            "blocking" => run_blocking_client(addr, &ssh),
            "tokio" => run_tokio_client(addr, &ssh),
            "smol" => run_smol_client(addr, &ssh),
            _ => unreachable!(),
        }
        stop();
    });
}

#[test]
fn blocking_client_blocking_server() {
    pair("blocking", "blocking");
}
#[test]
fn blocking_client_tokio_server() {
    pair("tokio", "blocking");
}
#[test]
fn blocking_client_smol_server() {
    pair("smol", "blocking");
}
#[test]
fn tokio_client_blocking_server() {
    pair("blocking", "tokio");
}
#[test]
fn tokio_client_tokio_server() {
    pair("tokio", "tokio");
}
#[test]
fn tokio_client_smol_server() {
    pair("smol", "tokio");
}
#[test]
fn smol_client_blocking_server() {
    pair("blocking", "smol");
}
#[test]
fn smol_client_tokio_server() {
    pair("tokio", "smol");
}
#[test]
fn smol_client_smol_server() {
    pair("smol", "smol");
}
