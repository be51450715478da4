//! The smol client against the testkit's deliberately hostile TLS server, on loopback, under
//! async-std's executor: the driver comes from `connect_tls_with_driver` and runs on
//! `async_std::task::spawn`, so nothing of the session runs on smol's own executor.
//! The same cases on `smol::block_on` (and on tokio) run in the netconf-tests crate's
//! `tests/async_hostile.rs`; async-std is this crate's dev-dependency only.
//!
//! Each `Hostile` mode delivers ciphertext in a way that strands decrypted bytes inside TLS
//! for a read loop with a drainage bug (tiny records in one write, records dribbled 1-7 bytes
//! per write, a hello larger than one read, a reply and a notification in one record, ...).
//! The client must establish within 2 s, read the server's data and close cleanly.
//!
//! Every test body runs on its own thread under a 10 s deadlock guard, so a hang fails the
//! test instead of the whole run.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use netconf_proto::Framing;
use netconf_smol::operations::{Datastore, GetConfig};
use netconf_smol::{Client, ClientOptions, Config, Error, TimeoutKind};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::within;
use netconf_tests::hostile_tls::{
    Hostile, HostileServer, Outcome, BIG_HELLO_MODULES, DEFAULT_SESSION_ID,
};

/// Deadlock guard around every test body.
const GUARD: Duration = Duration::from_secs(10);
/// The hello exchange must finish within this, whatever the server does to the records.
const ESTABLISH_WITHIN: Duration = Duration::from_secs(2);

/// Runs `body` on its own thread and fails if it has not finished within [`GUARD`]. Works
/// whatever the body blocks on (an executor, a join, a condvar).
fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("guarded-test-body".into())
        .spawn(move || {
            body();
            let _ = done.send(());
        })
        .expect("spawning the test thread");
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

/// Connects within [`ESTABLISH_WITHIN`] and spawns the driver on async-std's executor.
async fn connect(
    addr: &str,
    pki: &Pki,
    options: &ClientOptions,
    mode: Hostile,
) -> (Client, async_std::task::JoinHandle<()>) {
    let what = format!("{mode:?} on async-std: establishing the session");
    let (client, driver) = within(
        ESTABLISH_WITHIN,
        &what,
        Client::connect_tls_with_driver(addr, &pki.client_tls_options(), options),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    (client, async_std::task::spawn(driver))
}

/// Waits until the driver has stopped.
async fn driver_finished(client: &Client, driver: async_std::task::JoinHandle<()>) {
    within(
        Duration::from_secs(2),
        "the driver finishing after the session closed",
        driver,
    )
    .await;
    assert!(client.is_closed());
}

/// Waits (on a blocking thread) until the hostile server has recorded how its first
/// connection ended.
async fn first_outcome(server: &Arc<HostileServer>) -> Option<Outcome> {
    let server = server.clone();
    smol::unblock(move || {
        server
            .wait_for_first_outcome(Duration::from_secs(3))
            .and_then(|log| log.outcome)
    })
    .await
}

/// Stops the hostile server on a blocking thread (stop joins its worker threads).
async fn stop(server: Arc<HostileServer>) {
    smol::unblock(move || server.stop()).await
}

fn check_established(client: &Client, mode: Hostile) {
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
async fn answers_get_config(mode: Hostile) {
    assert!(mode.answers_rpcs());
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(mode, &pki).expect("hostile server"));
    let addr = server.addr().to_string();

    let started = Instant::now();
    let (client, driver) = connect(&addr, &pki, &ClientOptions::new(), mode).await;
    let established_in = started.elapsed();
    check_established(&client, mode);

    // Subscribed before the first rpc: the notification may ride in the reply's record.
    let mut notifications = client.notifications();
    let get = GetConfig::new(Datastore::Running);
    let data = within(GUARD / 2, "the first get-config", client.call(&get))
        .await
        .unwrap_or_else(|e| panic!("{mode:?} on async-std: get-config failed: {e}"));
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
    driver_finished(&client, driver).await;
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
        "{mode:?} on async-std"
    );
    let log = server.connections();
    assert_eq!(log.len(), 1);
    assert!(log[0].close_session);
    assert_eq!(log[0].chunked, mode.offers_base_1_1());
    assert_eq!(log[0].rpcs.len(), 3, "two get-configs and a close-session");
    eprintln!("{mode:?} on async-std: established in {established_in:?}");
    stop(server).await;
}

/// The server stops in the middle of the first reply: the rpc times out, and since nothing
/// can follow a half message the session ends once the peer has been silent mid-message for
/// the stall timeout (an RPC timeout alone fails only its RPC); later calls fail at once
/// instead of hanging.
async fn stall_mid_reply() {
    let mode = Hostile::StallMidReply;
    let pki = Pki::generate();
    let server = Arc::new(HostileServer::start(mode, &pki).expect("server"));
    let addr = server.addr().to_string();
    let (client, driver) = connect(
        &addr,
        &pki,
        &ClientOptions::new()
            .config(Config::client().with_stall_timeout(Some(Duration::from_millis(600))))
            .rpc_timeout(Some(Duration::from_millis(300))),
        mode,
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
    driver_finished(&client, driver).await;
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

/// Runs each case under async-std's executor, as `<case>::async_std`.
macro_rules! on_async_std {
    ($($name:ident => $body:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn async_std() {
                guarded(|| async_std::task::block_on($body))
            }
        }
    )*};
}

on_async_std! {
    normal => answers_get_config(Hostile::Normal);
    tiny_records => answers_get_config(Hostile::TinyRecords);
    dribble => answers_get_config(Hostile::Dribble);
    big_hello => answers_get_config(Hostile::BigHello);
    reply_and_notification => answers_get_config(Hostile::ReplyAndNotification);
    base10_only => answers_get_config(Hostile::Base10Only);
    stall_mid_reply_times_out_then_closes => stall_mid_reply();
}
