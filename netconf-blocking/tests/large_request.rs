//! A large request from the blocking client over TLS (a huge `<edit-config>`): it is
//! encrypted as the transport takes it, not all at once, and replies arriving meanwhile are
//! not held behind it.
//!
//! The peer is the testkit's discarding server (rustls alone), which answers every `<rpc>`
//! with `<ok/>` and keeps nothing it reads: one of our servers would hold the whole
//! request, and its memory would hide the client's. The tests take turns (`TURN`): the
//! memory test measures the whole process's peak.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use netconf_blocking::operations::{Datastore, EditConfig, GetConfig};
use netconf_blocking::{Client, ClientOptions};
use netconf_tests::deadline::with_deadline;
use netconf_tests::discarding::{big_config, DiscardingServer, Hold};

const MIB: usize = 1024 * 1024;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn connect(server: &DiscardingServer) -> Client {
    let tls = server.pki().client_tls_options();
    Client::connect_tls_with(&server.addr().to_string(), &tls, &ClientOptions::new()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// A 64 MiB `<edit-config>` over TLS to a peer slow to read grows the process's peak RSS by
/// a bounded amount: the configuration (built before the peak is reset) is held once,
/// neither copied into the session's output nor encrypted whole ahead of the socket.
/// Before, the peak grew by about twice its size: a plaintext copy of the framed request,
/// then all of its ciphertext in the writer's queue.
#[cfg(target_os = "linux")]
#[test]
fn a_large_request_is_encrypted_as_the_transport_takes_it() {
    use netconf_tests::memory::PeakRss;
    let _turn = turn();
    with_deadline(300, || {
        let server = DiscardingServer::start(Hold::AfterFirst);
        let client = connect(&server);
        // Warm up both ends (threads, TLS buffers) with a 1 MiB request, then measure.
        client
            .call(&EditConfig::new(Datastore::Candidate, big_config(MIB)))
            .unwrap();
        let config = big_config(64 * MIB);
        let peak = PeakRss::start();
        // The server reads nothing for a second, as a slow peer would: time enough for a
        // client that encrypts eagerly to encrypt all of it (about 0.1 s here).
        let releasing = server.release_after(Duration::from_secs(1));
        client
            .call(&EditConfig::new(Datastore::Candidate, config))
            .unwrap();
        releasing.join().unwrap();
        let growth = peak.report("64 MiB edit-config");
        client.close().unwrap();
        let sizes = server.finish();
        assert!(
            sizes[1] > 64 * MIB as u64,
            "the request arrived whole: {sizes:?}"
        );
        assert!(
            growth < 24 * 1024,
            "peak RSS grew by {growth} KiB while sending a 64 MiB request"
        );
    });
}

/// While a large request waits for a peer that does not read it, the reply to a request
/// sent before it is read and handed to its caller: the client encrypts the large request
/// only as the transport takes it, and a reply must not wait behind the part it holds back.
/// (Fails, the deadlock guard fires, if a paced drain takes no events.)
#[test]
fn a_reply_is_not_held_behind_a_large_request_the_peer_does_not_read() {
    let _turn = turn();
    with_deadline(60, || {
        let server = DiscardingServer::start(Hold::AnswerFirstLate);
        let client = connect(&server);
        let first = client.send(&GetConfig::new(Datastore::Running)).unwrap();
        // The server stops reading once the 32 MiB request begins, and answers `first` once
        // that request has filled the socket's buffers: the rest of it waits in the client.
        let sender = client.clone();
        let large = std::thread::spawn(move || {
            sender.call(&EditConfig::new(Datastore::Candidate, big_config(32 * MIB)))
        });
        let reply = client.recv(first).unwrap();
        assert_eq!(
            reply.message_id.as_deref(),
            Some(first.0.to_string().as_str())
        );
        assert!(
            !large.is_finished(),
            "the large request is still being sent"
        );
        server.release();
        large.join().unwrap().unwrap();
        client.close().unwrap();
        let sizes = server.finish();
        assert!(
            sizes[1] > 32 * MIB as u64,
            "the request arrived whole: {sizes:?}"
        );
    });
}

/// A `send` of a small request submitted while a large one before it is held back in the
/// client (the peer reads nothing yet): it returns `Ok` once its own bytes are written,
/// after the peer starts reading, and its reply is then there for `recv`.
#[test]
fn a_send_behind_a_held_back_request_returns_once_its_own_bytes_are_written() {
    let _turn = turn();
    with_deadline(60, || {
        let server = DiscardingServer::start(Hold::UntilReleased);
        let client = connect(&server);
        let sender = client.clone();
        let large = std::thread::spawn(move || {
            sender.call(&EditConfig::new(Datastore::Candidate, big_config(32 * MIB)))
        });
        // The large request is being sent and the peer reads none of it: most of it is
        // still in the client when the small one is queued behind it.
        server.wait_began();
        let sender = client.clone();
        let small = std::thread::spawn(move || sender.send(&GetConfig::new(Datastore::Running)));
        let releasing = server.release_after(Duration::from_millis(200));
        let id = small
            .join()
            .unwrap()
            .expect("the small request was written");
        let reply = client.recv(id).expect("its reply");
        assert_eq!(reply.message_id.as_deref(), Some(id.0.to_string().as_str()));
        large.join().unwrap().expect("the large request's reply");
        releasing.join().unwrap();
        client.close().unwrap();
        let sizes = server.finish();
        assert!(
            sizes[0] > 32 * MIB as u64,
            "the large request arrived whole: {sizes:?}"
        );
        assert_eq!(sizes.len(), 3, "large, small, close-session: {sizes:?}");
    });
}
