//! Every adapter's client against every adapter's server over real TLS on loopback: hello,
//! a typed call, an rpc-error, a notification, close. The first thing to fail when a loop
//! is wrong.

use std::time::Duration;

use netconf_proto::client::ClientOptions;
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::operations::{CreateSubscription, Datastore, GetConfig, Lock};
use netconf_proto::server::{ServerOptions, SessionInfo};
use netconf_proto::xml::NS_NOTIFICATION;
use netconf_proto::{Config, Error, Reply, Request, RpcError};
use netconf_tests::certs::Pki;

const GUARD: Duration = Duration::from_secs(20);

fn answer(request: &Request, _info: &SessionInfo) -> Reply {
    match request.operation.name.as_str() {
        "get-config" => Reply::data("<top xmlns=\"urn:smoke\"><a>1</a></top>").unwrap(),
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

fn guarded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(GUARD)
        .expect("deadlock guard: not finished within 20 s")
}

/// Starts a server of the given kind; returns its address and a stopper.
fn start_server(kind: &str, pki: &Pki) -> (std::net::SocketAddr, Box<dyn FnOnce() + Send>) {
    let server_tls = pki.server_tls_options();
    match kind {
        "blocking" => {
            let server = netconf_blocking::Server::new(server_options(), answer);
            let addr = server.listen_tls("127.0.0.1:0", &server_tls).unwrap();
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
            let addr = rt
                .block_on(server.listen_tls("127.0.0.1:0", &server_tls))
                .unwrap();
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
            let addr = smol::block_on(server.listen_tls("127.0.0.1:0", &server_tls)).unwrap();
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

fn run_blocking_client(addr: std::net::SocketAddr, pki: &Pki) {
    let client_tls = pki.client_tls_options();
    let client = netconf_blocking::Client::connect_tls_with(
        &addr.to_string(),
        &client_tls.server_name("localhost"),
        &ClientOptions::new(),
    )
    .unwrap();
    assert!(client.session_id() > 0);
    let data = client.call(&GetConfig::new(Datastore::Running)).unwrap();
    assert!(data.as_str().contains("<a>1</a>"), "{data}");
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

fn run_tokio_client(addr: std::net::SocketAddr, pki: &Pki) {
    let client_tls = pki.client_tls_options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio_stream::StreamExt;
        let client = netconf_tokio::Client::connect_tls_with(
            &addr.to_string(),
            &client_tls.server_name("localhost"),
            &ClientOptions::new(),
        )
        .await
        .unwrap();
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        assert!(data.as_str().contains("<a>1</a>"), "{data}");
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

fn run_smol_client(addr: std::net::SocketAddr, pki: &Pki) {
    let client_tls = pki.client_tls_options();
    smol::block_on(async {
        use futures_lite::StreamExt;
        let client = netconf_smol::Client::connect_tls_with(
            &addr.to_string(),
            &client_tls.server_name("localhost"),
            &ClientOptions::new(),
        )
        .await
        .unwrap();
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        assert!(data.as_str().contains("<a>1</a>"), "{data}");
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
        let pki = Pki::generate();
        let (addr, stop) = start_server(server, &pki);
        match client {
            "blocking" => run_blocking_client(addr, &pki),
            "tokio" => run_tokio_client(addr, &pki),
            "smol" => run_smol_client(addr, &pki),
            _ => unreachable!(),
        }
        stop();
    });
    let _ = NS_NOTIFICATION;
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
