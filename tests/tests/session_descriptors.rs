//! Ended sessions leave no file descriptor behind, on the async servers and clients (the
//! blocking adapter's own test is `netconf-blocking/tests/session_threads.rs`): the
//! blocking server kept every ended session's state, and two descriptors, through a
//! reference cycle. One test per runtime, one at a time (they count the process's
//! descriptors).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use netconf_async::adapter::operations::{Datastore, GetConfig};
use netconf_async::adapter::server::ServerOptions;
use netconf_async::adapter::Reply;
use netconf_async::{Client, Runtime, Server};
use netconf_tests::certs::Pki;

static SERIAL: Mutex<()> = Mutex::new(());
const SESSIONS: usize = 20;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

async fn settles<R: Runtime>(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        R::sleep_until(Instant::now() + Duration::from_millis(10)).await;
    }
    condition()
}

async fn ended_sessions_leave_no_descriptors<R: Runtime>() {
    let pki = Pki::generate();
    let server: Server<R> =
        Server::new(ServerOptions::new(), |_request, _info| async { Reply::Ok });
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .expect("listen")
        .to_string();
    let client_tls = pki.client_tls_options();
    let session = || async {
        let client: Client<R> = Client::connect_tls(&addr, &client_tls)
            .await
            .expect("connect");
        client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        client.close().await.expect("close");
    };
    session().await;
    assert!(settles::<R>(|| server.sessions().is_empty()).await);
    let before = open_fds();
    for _ in 0..SESSIONS {
        session().await;
    }
    assert!(settles::<R>(|| server.sessions().is_empty()).await);
    let settled = settles::<R>(|| open_fds() <= before + 2).await;
    assert!(
        settled,
        "{} descriptors more after {SESSIONS} sessions ended",
        open_fds().saturating_sub(before)
    );
    server.shutdown().await;
}

#[test]
fn tokio_ended_sessions_leave_no_descriptors() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(netconf_tests::deadline::within(
        Duration::from_secs(60),
        "the test",
        ended_sessions_leave_no_descriptors::<netconf_tokio::Tokio>(),
    ));
}

#[test]
fn smol_ended_sessions_leave_no_descriptors() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    smol::block_on(netconf_tests::deadline::within(
        Duration::from_secs(60),
        "the test",
        ended_sessions_leave_no_descriptors::<netconf_smol::Smol>(),
    ));
}
