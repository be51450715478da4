//! A large request from the async clients (tokio, smol) over TLS: the configuration is held
//! once (framed without a copy, encrypted one transmit at a time as the socket takes it),
//! and a reply arriving while the request waits for a peer that does not read reaches its
//! caller. The peer is the testkit's discarding server (our own servers would hold the
//! whole request). The tests take turns: the memory test measures the whole process.

use std::future::Future;
use std::time::Duration;

use netconf_async::adapter::operations::{Datastore, EditConfig, GetConfig};
use netconf_async::adapter::ClientOptions;
use netconf_async::{Client, Runtime};
use netconf_tests::deadline::within;
use netconf_tests::discarding::{big_config, DiscardingServer, Hold};

netconf_tests::on_each_runtime!(
    a_large_request_holds_its_configuration_once,
    a_reply_is_not_held_behind_a_large_request_the_peer_does_not_read,
    a_session_ending_during_a_large_write_ends_without_waiting_for_the_peer,
);

const MIB: usize = 1024 * 1024;

static TURN: ::smol::lock::Mutex<()> = ::smol::lock::Mutex::new(());

async fn guarded<T>(body: impl Future<Output = T>) -> T {
    let _turn = TURN.lock().await;
    within(Duration::from_secs(300), "the test (deadlock guard)", body).await
}

async fn connect<R: Runtime>(server: &DiscardingServer) -> Client<R> {
    let tls = server.pki().client_tls_options();
    Client::<R>::connect_tls_with(&server.addr().to_string(), &tls, &ClientOptions::new())
        .await
        .expect("connect")
}

/// A 64 MiB `<edit-config>` to a peer that reads nothing for a second grows the process's
/// peak RSS by a bounded amount: the configuration (built before the peak is reset) is not
/// copied into the session's output (the core framed a large `<config>` by copying it
/// until the blocking client's pacing change: +64 MiB), and the driver encrypts one
/// transmit at a time as the socket takes it.
async fn a_large_request_holds_its_configuration_once<R: Runtime>() {
    if !cfg!(target_os = "linux") {
        return; // the peak RSS is read from /proc
    }
    use netconf_tests::memory::PeakRss;
    let server = DiscardingServer::start(Hold::AfterFirst);
    let client = connect::<R>(&server).await;
    // Warm up both ends with a 1 MiB request, then measure.
    client
        .call(&EditConfig::new(Datastore::Candidate, big_config(MIB)))
        .await
        .expect("the warm-up request");
    let config = big_config(64 * MIB);
    let peak = PeakRss::start();
    let releasing = server.release_after(Duration::from_secs(1));
    client
        .call(&EditConfig::new(Datastore::Candidate, config))
        .await
        .expect("the large request");
    let growth = peak.report("64 MiB edit-config");
    releasing.join().expect("the releasing thread");
    client.close().await.expect("close");
    let sizes = server.finish();
    assert!(
        sizes[1] > 64 * MIB as u64,
        "the request arrived whole: {sizes:?}"
    );
    assert!(
        growth < 24 * 1024,
        "peak RSS grew by {growth} KiB while sending a 64 MiB request"
    );
}

/// While a 32 MiB request waits for a peer that stopped reading it, the reply to a request
/// sent before it reaches its caller (the driver reads while its write waits).
async fn a_reply_is_not_held_behind_a_large_request_the_peer_does_not_read<R: Runtime>() {
    let server = DiscardingServer::start(Hold::AnswerFirstLate);
    let client = connect::<R>(&server).await;
    let get = GetConfig::new(Datastore::Running);
    // Polled in this order: the get-config is sent first.
    let first = client.call(&get);
    let edit = EditConfig::new(Datastore::Candidate, big_config(32 * MIB));
    let large = client.call(&edit);
    let (first, large) = futures_lite::future::zip(
        async {
            let reply = first.await;
            // Only now may the server read the rest of the large request.
            server.release();
            reply
        },
        large,
    )
    .await;
    first.expect("the get-config's reply");
    large.expect("the large request's reply");
    client.close().await.expect("close");
    let sizes = server.finish();
    assert!(
        sizes[1] > 32 * MIB as u64,
        "the request arrived whole: {sizes:?}"
    );
}

/// The server breaks the framing while a 32 MiB request is being written to it, and then
/// reads nothing: the session ends at once, and the call fails, instead of the driver going
/// on with a write that waits for a peer that will never read it (it did, with its write
/// timeout suspended while reading was paused: the deadlock guard fired).
async fn a_session_ending_during_a_large_write_ends_without_waiting_for_the_peer<R: Runtime>() {
    let server = DiscardingServer::start(Hold::BreakFramingAtFirst);
    let client = connect::<R>(&server).await;
    let edit = EditConfig::new(Datastore::Candidate, big_config(32 * MIB));
    let result = client.call(&edit).await;
    assert!(result.is_err(), "the session ended: {result:?}");
    assert!(client.is_closed(), "closed once the call has failed");
    // The caller heard of the end from a read during the write; the driver must have left
    // that write too (the peer still reads nothing), or the next call waits for it forever.
    let get = GetConfig::new(Datastore::Running);
    let again = within(
        Duration::from_secs(10),
        "a call after the end",
        client.call(&get),
    )
    .await;
    assert!(again.is_err(), "the session is over: {again:?}");
    server.wait_began();
    server.finish();
}
