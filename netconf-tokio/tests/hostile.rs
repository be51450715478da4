//! The tokio client against the testkit's deliberately hostile TLS server, on loopback, on
//! both the current-thread and the multi-thread runtime.
//!
//! Each `Hostile` mode delivers ciphertext in a way that strands decrypted bytes inside TLS
//! for a read loop with a drainage bug (tiny records in one write, records dribbled 1-7 bytes
//! per write, a hello larger than one read, a reply and a notification in one record, ...).
//! The client must establish within 2 s, read the server's data and close cleanly.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netconf_proto::Framing;
use netconf_tests::certs::{Pki, PkiFiles};
use netconf_tests::hostile_tls::{
    Hostile, HostileServer, Outcome, BIG_HELLO_MODULES, DEFAULT_SESSION_ID,
};
use netconf_tokio::operations::{Datastore, GetConfig};
use netconf_tokio::tls::ClientTlsOptions;
use netconf_tokio::{Client, ClientOptions, Config, Error, TimeoutKind};
use tokio_stream::Stream;

/// Deadlock guard around every test body.
const GUARD: Duration = Duration::from_secs(10);
/// The hello exchange must finish within this, whatever the server does to the records.
const ESTABLISH_WITHIN: Duration = Duration::from_secs(2);

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish within 10 s");
}

/// A fresh PKI in its own temp dir (removed on drop).
struct TestPki {
    pki: Pki,
    files: PkiFiles,
    dir: PathBuf,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "netconf-tokio-hostile-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("creating the temp dir");
        let pki = Pki::generate();
        let files = pki.write_to_dir(&dir).expect("writing the PKI");
        TestPki { pki, files, dir }
    }

    fn client_tls(&self) -> ClientTlsOptions {
        ClientTlsOptions::new()
            .ca_file(&self.files.ca_cert)
            .client_cert_files(&self.files.client_cert, &self.files.client_key)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `StreamExt::next` without the extra dependency.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// Waits (off the runtime's threads) until the hostile server has recorded how its first
/// connection ended.
async fn first_outcome(server: &Arc<HostileServer>) -> Option<Outcome> {
    let server = server.clone();
    tokio::task::spawn_blocking(move || {
        server
            .wait_for_first_outcome(Duration::from_secs(3))
            .and_then(|log| log.outcome)
    })
    .await
    .expect("the waiting thread panicked")
}

/// Stops the hostile server off the runtime's threads (stop joins its worker threads).
async fn stop(server: Arc<HostileServer>) {
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .expect("stopping the hostile server panicked");
}

fn check_established(client: &Client, mode: Hostile) {
    assert_eq!(client.session_id(), DEFAULT_SESSION_ID, "{mode:?}");
    let caps = client.capabilities();
    assert!(
        caps.contains_uri("urn:ietf:params:netconf:base:1.0"),
        "{mode:?}"
    );
    assert!(caps.has_candidate(), "{mode:?}: {caps:?}");
    let expected = if mode.offers_base_1_1() {
        Framing::Chunked
    } else {
        Framing::EndOfMessage
    };
    assert_eq!(client.framing(), expected, "{mode:?}");
    if mode == Hostile::BigHello {
        assert!(
            caps.len() >= BIG_HELLO_MODULES,
            "{mode:?}: {} capabilities",
            caps.len()
        );
        // The server escapes `&` as `&amp;`: the client must hand out the unescaped URI.
        let uri = "urn:example:yang:module-079?module=example-module-079&revision=2026-01-01";
        assert!(caps.contains_uri(uri), "{mode:?}: {uri} not in {caps:?}");
    }
}

/// The `<data>` content the hostile server answers its `index`-th rpc with.
fn check_data(data: &str, mode: Hostile, index: usize) {
    assert!(
        data.starts_with("<top xmlns=\"urn:example\">"),
        "{mode:?}: {}",
        &data[..data.len().min(200)]
    );
    assert!(data.contains(&format!("<mode>{mode:?}</mode>")), "{mode:?}");
    assert!(
        data.contains(&format!("<rpc-index>{index}</rpc-index>")),
        "{mode:?}"
    );
    assert!(data.ends_with("</top>"), "{mode:?}");
    if mode == Hostile::Dribble {
        assert!(data.len() > 40_000, "{mode:?}: {} bytes", data.len());
        assert!(data.contains("grüße aus dem testkit"), "{mode:?}");
    }
}

/// Connect, check the session, get-config twice, close: against every answering mode.
async fn answers_get_config(mode: Hostile) {
    assert!(mode.answers_rpcs());
    let pki = TestPki::new(&format!("{mode:?}"));
    let server = Arc::new(HostileServer::start(mode, &pki.pki).expect("hostile server"));
    let addr = server.addr().to_string();

    let started = Instant::now();
    let client = tokio::time::timeout(
        ESTABLISH_WITHIN,
        Client::connect_tls(&addr, &pki.client_tls()),
    )
    .await
    .unwrap_or_else(|_| panic!("{mode:?}: not established within 2 s"))
    .unwrap_or_else(|e| panic!("{mode:?}: connect failed: {e}"));
    let established_in = started.elapsed();
    check_established(&client, mode);

    // Subscribed before the first rpc: the notification may ride in the reply's record.
    let mut notifications = client.notifications();
    let get = GetConfig::new(Datastore::Running);
    let data = client
        .call(&get)
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: get-config failed: {e}"));
    check_data(data.as_str(), mode, 0);

    if mode == Hostile::ReplyAndNotification {
        let n = tokio::time::timeout(Duration::from_secs(2), next(&mut notifications))
            .await
            .expect("the notification packed with the reply never came out")
            .expect("the notification stream ended")
            .expect("lagged on the first notification");
        assert_eq!(n.event_time, "2026-01-01T00:00:00Z");
        assert!(
            n.content
                .as_str()
                .contains("<event xmlns=\"urn:example\">x</event>"),
            "{:?}",
            n.content
        );
    }

    // A second rpc on the same session (after the hostile first reply).
    let data = client.call(&get).await.expect("second get-config");
    check_data(data.as_str(), mode, 1);

    client.close().await.expect("close");
    assert!(client.is_closed() || wait_closed(&client).await);
    assert!(
        client.call(&get).await.is_err(),
        "an rpc after close must fail"
    );
    assert_eq!(
        first_outcome(&server).await,
        Some(Outcome::ClosedAfterCloseSession),
        "{mode:?}"
    );
    let log = server.connections();
    assert_eq!(log.len(), 1);
    assert!(log[0].close_session);
    assert_eq!(log[0].chunked, mode.offers_base_1_1());
    eprintln!("{mode:?}: established in {established_in:?}");
    stop(server).await;
}

/// Polls `is_closed` for up to 2 s.
async fn wait_closed(client: &Client) -> bool {
    for _ in 0..200 {
        if client.is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.is_closed()
}

/// The server stops in the middle of the first reply: the rpc times out, and since nothing
/// can follow a half message the session ends once the peer has been silent mid-message for
/// the stall timeout (an RPC timeout alone fails only its RPC); later calls fail at once
/// instead of hanging.
async fn stall_mid_reply() {
    let pki = TestPki::new("stall");
    let server = Arc::new(HostileServer::start(Hostile::StallMidReply, &pki.pki).expect("server"));
    let addr = server.addr().to_string();
    let client = tokio::time::timeout(
        ESTABLISH_WITHIN,
        Client::connect_tls_with(
            &addr,
            &pki.client_tls(),
            &ClientOptions::new()
                .config(Config::client().with_stall_timeout(Some(Duration::from_millis(600))))
                .rpc_timeout(Some(Duration::from_millis(300))),
        ),
    )
    .await
    .expect("not established within 2 s")
    .expect("connect");
    assert_eq!(client.session_id(), DEFAULT_SESSION_ID);

    let get = GetConfig::new(Datastore::Running);
    let started = Instant::now();
    match client.call(&get).await {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "timed out after {waited:?}"
    );

    // The session is over: nothing can come after half a message.
    assert!(wait_closed(&client).await, "the session stayed open");
    let started = Instant::now();
    let later = client.call(&get).await;
    assert!(
        later.is_err(),
        "an rpc after the stall succeeded: {later:?}"
    );
    // It fails with why the session ended (the stall, a `Timeout(Stall)` since issue 13),
    // never with a timeout of its own.
    assert!(
        matches!(later, Err(Error::Timeout(TimeoutKind::Stall)))
            || !matches!(later, Err(Error::Timeout(_))),
        "a later rpc must fail at once with the session's end, not time out: {later:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // close() on the dead session returns promptly.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.close())
        .await
        .expect("close() hung on a dead session");
    drop(client);

    // The server saw our socket close.
    let outcome = first_outcome(&server).await;
    assert!(
        matches!(outcome, Some(Outcome::PeerClosed | Outcome::Error(_))),
        "{outcome:?}"
    );
    assert_eq!(server.connections()[0].rpcs.len(), 1);
    stop(server).await;
}

/// `connect_tls_with_driver`: the test spawns the driver itself and sees it finish after close.
async fn driver_spawned_by_test(mode: Hostile) {
    let pki = TestPki::new("driver");
    let server = Arc::new(HostileServer::start(mode, &pki.pki).expect("server"));
    let addr = server.addr().to_string();
    let (client, driver) = tokio::time::timeout(
        ESTABLISH_WITHIN,
        Client::connect_tls_with_driver(&addr, &pki.client_tls(), &ClientOptions::new()),
    )
    .await
    .expect("not established within 2 s")
    .expect("connect");
    check_established(&client, mode);
    let driver = tokio::spawn(driver);

    // Pipelined from two clones.
    let other = client.clone();
    let get = GetConfig::new(Datastore::Running);
    let (a, b) = tokio::join!(client.call(&get), other.call(&get));
    let (a, b) = (a.expect("first"), b.expect("second"));
    let both = format!("{a}{b}");
    assert_ne!(a, b, "two rpcs got the same reply");
    for i in 0..2 {
        assert!(
            both.contains(&format!("<rpc-index>{i}</rpc-index>")),
            "reply {i} missing: {both}"
        );
    }

    client.close().await.expect("close");
    tokio::time::timeout(Duration::from_secs(2), driver)
        .await
        .expect("the driver did not finish after close")
        .expect("the driver panicked");
    assert!(client.is_closed());
    assert!(other.call(&get).await.is_err());
    assert_eq!(
        first_outcome(&server).await,
        Some(Outcome::ClosedAfterCloseSession)
    );
    stop(server).await;
}

/// A driver that is never run: nothing happens, and dropping it ends the session.
async fn driver_dropped(mode: Hostile) {
    let pki = TestPki::new("driver-dropped");
    let server = Arc::new(HostileServer::start(mode, &pki.pki).expect("server"));
    let addr = server.addr().to_string();
    let (client, driver) =
        Client::connect_tls_with_driver(&addr, &pki.client_tls(), &ClientOptions::new())
            .await
            .expect("connect");
    drop(driver);
    let result = tokio::time::timeout(
        Duration::from_secs(2),
        client.call(&GetConfig::new(Datastore::Running)),
    )
    .await
    .expect("an rpc without a driver hung");
    assert!(result.is_err(), "{result:?}");
    assert!(client.is_closed());
    drop(client);
    let outcome = first_outcome(&server).await;
    assert!(
        matches!(outcome, Some(Outcome::PeerClosed | Outcome::Error(_))),
        "{outcome:?}"
    );
    stop(server).await;
}

/// Runs each case once on the current-thread runtime and once on a 2-worker multi-thread one.
macro_rules! on_both_runtimes {
    ($($name:ident => $body:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                guarded($body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                guarded($body).await
            }
        }
    )*};
}

on_both_runtimes! {
    normal => answers_get_config(Hostile::Normal);
    tiny_records => answers_get_config(Hostile::TinyRecords);
    dribble => answers_get_config(Hostile::Dribble);
    big_hello => answers_get_config(Hostile::BigHello);
    reply_and_notification => answers_get_config(Hostile::ReplyAndNotification);
    base10_only => answers_get_config(Hostile::Base10Only);
    stall_mid_reply_times_out_then_closes => stall_mid_reply();
    driver_spawned_by_the_test => driver_spawned_by_test(Hostile::TinyRecords);
    driver_spawned_by_the_test_dribble => driver_spawned_by_test(Hostile::Dribble);
    driver_never_run => driver_dropped(Hostile::Normal);
}
