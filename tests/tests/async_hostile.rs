//! The async client against the testkit's deliberately hostile TLS server, on loopback, on
//! each async runtime (tokio and smol: every test runs on both) and once more on tokio's
//! current-thread runtime (module `tokio_current_thread`). On smol the client runs under
//! `smol::block_on` with its driver on smol's global executor; the same client under
//! async-std's executor stays in netconf-smol's `tests/hostile.rs` (async-std is that
//! crate's dev-dependency only).
//!
//! Each `Hostile` mode delivers ciphertext in a way that strands decrypted bytes inside TLS
//! for a read loop with a drainage bug (tiny records in one write, records dribbled 1-7 bytes
//! per write, a hello larger than one read, a reply and a notification in one record, ...).
//! The client must establish within 2 s, read the server's data and close cleanly.
//!
//! Every test runs under a 10 s deadlock guard, so a hang fails the test instead of the
//! whole run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use netconf_async::adapter::operations::{Datastore, GetConfig};
use netconf_async::adapter::{ClientOptions, Config, Error, Framing, TimeoutKind};
use netconf_async::{Client, Runtime};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::within;
use netconf_tests::hostile_tls::{
    Hostile, HostileServer, Outcome, BIG_HELLO_MODULES, DEFAULT_SESSION_ID,
};

/// The tests, each run by `on_each_runtime!` and on tokio's current-thread runtime.
macro_rules! hostile_tests {
    ($($test:ident),* $(,)?) => {
        netconf_tests::on_each_runtime!($($test),*);

        /// The same tests with every task (the client's driver included) on the one thread
        /// of tokio's current-thread runtime.
        mod tokio_current_thread {
            $(#[test]
            fn $test() {
                let rt = ::tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(super::guarded(super::$test::<netconf_tokio::Tokio>()));
            })*
        }
    };
}

hostile_tests!(
    normal,
    tiny_records,
    dribble,
    big_hello,
    reply_and_notification,
    base10_only,
    stall_mid_reply_times_out_then_closes,
    driver_spawned_by_the_test_tiny_records,
    driver_spawned_by_the_test_dribble,
    driver_never_run,
);

/// Deadlock guard around every test body.
const GUARD: Duration = Duration::from_secs(10);
/// The hello exchange must finish within this, whatever the server does to the records.
const ESTABLISH_WITHIN: Duration = Duration::from_secs(2);

/// Fails the test if `body` has not finished within [`GUARD`] (async-io's timer works on
/// both runtimes).
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    within(GUARD, "the test (deadlock guard)", body).await
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

/// Polls `is_closed` for up to 2 s (on the runtime's timer).
async fn wait_closed<R: Runtime>(client: &Client<R>) -> bool {
    for _ in 0..200 {
        if client.is_closed() {
            return true;
        }
        R::sleep_until(Instant::now() + Duration::from_millis(10)).await;
    }
    client.is_closed()
}

/// Waits (on a blocking thread, off the runtime's) until the hostile server has recorded
/// how its first connection ended.
async fn first_outcome(server: &Arc<HostileServer>) -> Option<Outcome> {
    let server = server.clone();
    ::smol::unblock(move || {
        server
            .wait_for_first_outcome(Duration::from_secs(3))
            .and_then(|log| log.outcome)
    })
    .await
}

/// Stops the hostile server on a blocking thread (stop joins its worker threads).
async fn stop(server: Arc<HostileServer>) {
    ::smol::unblock(move || server.stop()).await
}

/// Connects to `addr` within [`ESTABLISH_WITHIN`], with the runtime running the driver.
async fn connect<R: Runtime>(addr: &str, pki: &Pki, options: &ClientOptions) -> Client<R> {
    within(
        ESTABLISH_WITHIN,
        "establishing the session",
        Client::connect_tls_with(addr, &pki.client_tls_options(), options),
    )
    .await
    .unwrap_or_else(|e| panic!("connect failed: {e}"))
}

fn check_established<R: Runtime>(client: &Client<R>, mode: Hostile) {
    assert_eq!(client.session_id(), DEFAULT_SESSION_ID, "{mode:?}");
    let caps = client.capabilities();
    assert!(
        caps.contains_uri("urn:ietf:params:netconf:base:1.0"),
        "{mode:?}"
    );
    assert!(caps.has_candidate(), "{mode:?}: {caps:?}");
    assert!(caps.has_notification(), "{mode:?}: {caps:?}");
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
async fn answers_get_config<R: Runtime>(mode: Hostile) {
    assert!(mode.answers_rpcs());
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(mode, &pki).expect("hostile server"));
    let addr = server.addr().to_string();

    let started = Instant::now();
    let client = connect::<R>(&addr, &pki, &ClientOptions::new()).await;
    let established_in = started.elapsed();
    check_established(&client, mode);

    // Subscribed before the first rpc: the notification may ride in the reply's record.
    let mut notifications = client.notifications();
    let get = GetConfig::new(Datastore::Running);
    let data = within(GUARD / 2, "the first get-config", client.call(&get))
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: get-config failed: {e}"));
    check_data(data.as_str(), mode, 0);

    if mode == Hostile::ReplyAndNotification {
        let n = within(
            Duration::from_secs(2),
            "the notification packed with the reply",
            notifications.next(),
        )
        .await
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
    let data = within(GUARD / 2, "the second get-config", client.call(&get))
        .await
        .expect("second get-config");
    check_data(data.as_str(), mode, 1);

    within(Duration::from_secs(2), "close", client.close())
        .await
        .expect("close");
    assert!(wait_closed(&client).await, "the driver did not stop");
    let after = within(
        Duration::from_secs(1),
        "an rpc after close",
        client.call(&get),
    )
    .await;
    assert!(after.is_err(), "an rpc after close must fail: {after:?}");
    assert_eq!(
        first_outcome(&server).await,
        Some(Outcome::ClosedAfterCloseSession),
        "{mode:?}"
    );
    let log = server.connections();
    assert_eq!(log.len(), 1);
    assert!(log[0].close_session);
    assert_eq!(log[0].chunked, mode.offers_base_1_1());
    assert_eq!(log[0].rpcs.len(), 3, "two get-configs and a close-session");
    eprintln!("{mode:?}: established in {established_in:?}");
    stop(server).await;
}

async fn normal<R: Runtime>() {
    answers_get_config::<R>(Hostile::Normal).await;
}

async fn tiny_records<R: Runtime>() {
    answers_get_config::<R>(Hostile::TinyRecords).await;
}

async fn dribble<R: Runtime>() {
    answers_get_config::<R>(Hostile::Dribble).await;
}

async fn big_hello<R: Runtime>() {
    answers_get_config::<R>(Hostile::BigHello).await;
}

async fn reply_and_notification<R: Runtime>() {
    answers_get_config::<R>(Hostile::ReplyAndNotification).await;
}

async fn base10_only<R: Runtime>() {
    answers_get_config::<R>(Hostile::Base10Only).await;
}

#[test]
fn every_answering_mode_is_covered() {
    // The list above names the modes by hand: fail loudly when the testkit grows one.
    let answering: Vec<Hostile> = Hostile::ALL
        .into_iter()
        .filter(|m| m.answers_rpcs())
        .collect();
    assert_eq!(
        answering,
        [
            Hostile::Normal,
            Hostile::TinyRecords,
            Hostile::Dribble,
            Hostile::BigHello,
            Hostile::ReplyAndNotification,
            Hostile::Base10Only,
        ]
    );
}

/// The server stops in the middle of the first reply: the rpc times out, and since nothing
/// can follow a half message the session ends once the peer has been silent mid-message for
/// the stall timeout (an RPC timeout alone fails only its RPC); later calls fail at once
/// instead of hanging.
async fn stall_mid_reply_times_out_then_closes<R: Runtime>() {
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(Hostile::StallMidReply, &pki).expect("server"));
    let addr = server.addr().to_string();
    let client = connect::<R>(
        &addr,
        &pki,
        &ClientOptions::new()
            .config(Config::client().with_stall_timeout(Some(Duration::from_millis(600))))
            .rpc_timeout(Some(Duration::from_millis(300))),
    )
    .await;
    assert_eq!(client.session_id(), DEFAULT_SESSION_ID);

    let get = GetConfig::new(Datastore::Running);
    let started = Instant::now();
    match within(Duration::from_secs(3), "the stalled rpc", client.call(&get)).await {
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
    let later = within(
        Duration::from_secs(1),
        "an rpc after the stall",
        client.call(&get),
    )
    .await;
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
    // close() on the dead session returns promptly, and without an error: there is
    // nothing left to close.
    within(
        Duration::from_secs(1),
        "close() on a dead session",
        client.close(),
    )
    .await
    .expect("close() on a session that already ended");
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

/// `connect_tls_with_driver`: the test spawns the driver itself (on the runtime), pipelines
/// two rpcs from two clones, and sees the driver finish after close.
async fn driver_spawned_by_test<R: Runtime>(mode: Hostile) {
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(mode, &pki).expect("server"));
    let addr = server.addr().to_string();
    let (client, driver) = within(
        ESTABLISH_WITHIN,
        "establishing the session",
        Client::<R>::connect_tls_with_driver(
            &addr,
            &pki.client_tls_options(),
            &ClientOptions::new(),
        ),
    )
    .await
    .expect("connect");
    check_established(&client, mode);
    let driver = spawn::<R, _>(driver);

    let other = client.clone();
    let get = GetConfig::new(Datastore::Running);
    let (a, b) = within(
        GUARD / 2,
        "two pipelined get-configs",
        futures_lite::future::zip(client.call(&get), other.call(&get)),
    )
    .await;
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_ne!(a, b, "two rpcs got the same reply");
    let both = format!("{a}{b}");
    for i in 0..2 {
        assert!(
            both.contains(&format!("<rpc-index>{i}</rpc-index>")),
            "reply {i} missing: {both}"
        );
    }

    client.close().await.expect("close");
    within(
        Duration::from_secs(2),
        "the driver finishing after close",
        driver,
    )
    .await;
    assert!(client.is_closed());
    assert!(other.call(&get).await.is_err());
    assert_eq!(
        first_outcome(&server).await,
        Some(Outcome::ClosedAfterCloseSession)
    );
    stop(server).await;
}

async fn driver_spawned_by_the_test_tiny_records<R: Runtime>() {
    driver_spawned_by_test::<R>(Hostile::TinyRecords).await;
}

async fn driver_spawned_by_the_test_dribble<R: Runtime>() {
    driver_spawned_by_test::<R>(Hostile::Dribble).await;
}

/// A driver that is dropped unrun: rpcs fail at once, dropping it ends the session, and the
/// server sees the socket close.
async fn driver_never_run<R: Runtime>() {
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(Hostile::Normal, &pki).expect("server"));
    let addr = server.addr().to_string();
    let (client, driver) = within(
        ESTABLISH_WITHIN,
        "establishing the session",
        Client::<R>::connect_tls_with_driver(
            &addr,
            &pki.client_tls_options(),
            &ClientOptions::new(),
        ),
    )
    .await
    .expect("connect");
    drop(driver);
    let result = within(
        Duration::from_secs(2),
        "an rpc without a driver",
        client.call(&GetConfig::new(Datastore::Running)),
    )
    .await;
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
