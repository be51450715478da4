//! The blocking client against the testkit's hostile TLS server, on loopback.
//!
//! Each [`Hostile`] mode delivers ciphertext in a way that strands decrypted bytes inside a
//! TLS library whose read loop does not follow the drain rule (tiny records in one write,
//! records dribbled 1-7 bytes per write, a hello bigger than a small read, a reply and a
//! notification in one record, base:1.0 framing only, a reply that stops half-way). The
//! client must establish within 2 s, get every reply, and close cleanly; a stalled reply must
//! become a timeout that ends the session instead of a hang.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::tls::ClientTlsOptions;
use netconf_blocking::{Client, ClientOptions, Config, Notifications, TimeoutKind};
use netconf_proto::Framing;
use netconf_tests::certs::Pki;
use netconf_tests::deadline::with_deadline;
use netconf_tests::hostile_tls::{self, Hostile, HostileServer, Outcome};

/// A fresh PKI written to its own temporary directory, removed on drop.
struct TestPki {
    pki: Pki,
    dir: PathBuf,
    files: netconf_tests::certs::PkiFiles,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netconf-blocking-hostile-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("creating the PKI directory");
        let pki = Pki::generate();
        let files = pki.write_to_dir(&dir).expect("writing the PKI");
        TestPki { pki, dir, files }
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

/// The content of the `<data>` element the hostile server sends for its `index`-th reply.
fn expected_data(mode: Hostile, index: usize) -> String {
    let body = hostile_tls::data_body(mode, index);
    body.strip_prefix("<data>")
        .and_then(|b| b.strip_suffix("</data>"))
        .expect("data_body is wrapped in <data>")
        .to_owned()
}

/// Connects to a hostile server, asserting the 2 s establishment guard. The notification
/// stream is taken at once, so nothing the server sends is missed.
fn connect(
    server: &HostileServer,
    tls: &ClientTlsOptions,
    rpc_timeout: Duration,
) -> (Client, Notifications) {
    connect_with(
        server,
        tls,
        Config::client()
            .with_hello_timeout(Duration::from_secs(5))
            .with_rpc_timeout(Some(rpc_timeout)),
    )
}

fn connect_with(
    server: &HostileServer,
    tls: &ClientTlsOptions,
    config: Config,
) -> (Client, Notifications) {
    let started = Instant::now();
    let client = Client::connect_tls_with(
        &server.addr().to_string(),
        tls,
        &ClientOptions::new().config(config),
    )
    .unwrap_or_else(|e| panic!("{:?}: connect failed: {e}", server.mode()));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "{:?}: establishing took {elapsed:?} (drainage deadlock?)",
        server.mode()
    );
    let notifications = client.notifications();
    (client, notifications)
}

/// The full conversation with a mode that answers rpcs: hello, two get-configs, close.
fn converses(mode: Hostile) {
    assert!(mode.answers_rpcs());
    with_deadline(10, move || {
        let pki = TestPki::new(&format!("{mode:?}"));
        let server = HostileServer::start(mode, &pki.pki).expect("starting the hostile server");
        let (client, notifications) = connect(&server, &pki.client_tls(), Duration::from_secs(3));
        assert_eq!(client.session_id(), hostile_tls::DEFAULT_SESSION_ID);
        assert!(!client.is_closed());
        let expected_framing = if mode.offers_base_1_1() {
            Framing::Chunked
        } else {
            Framing::EndOfMessage
        };
        assert_eq!(client.framing(), expected_framing, "{mode:?}");
        assert!(
            client.capabilities().has_notification(),
            "{mode:?}: capabilities {:?}",
            client.capabilities()
        );

        for index in 0..2 {
            let started = Instant::now();
            let data = client
                .call(&GetConfig::new(Datastore::Running))
                .unwrap_or_else(|e| panic!("{mode:?}: get-config #{index} failed: {e}"));
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{mode:?}: get-config #{index} took {:?}",
                started.elapsed()
            );
            let expected = expected_data(mode, index);
            assert_eq!(
                data.len(),
                expected.len(),
                "{mode:?}: reply #{index} length"
            );
            assert_eq!(data.as_str(), expected, "{mode:?}: reply #{index}");
            assert!(data.as_str().contains(&format!("<mode>{mode:?}</mode>")));
            if mode == Hostile::ReplyAndNotification && index == 0 {
                // The notification rode in the same TLS record as this reply.
                let started = Instant::now();
                let notification = notifications
                    .recv_timeout(Duration::from_secs(1))
                    .expect("the session is open")
                    .expect("the notification that shared the reply's record")
                    .expect("not lagged");
                assert!(
                    started.elapsed() < Duration::from_millis(500),
                    "it was already received"
                );
                assert_eq!(notification.event_time, "2026-01-01T00:00:00Z");
                assert!(
                    notification
                        .content
                        .as_str()
                        .contains("<event xmlns=\"urn:example\">x</event>"),
                    "{:?}",
                    notification.content
                );
            }
        }
        if mode == Hostile::ReplyAndNotification {
            let none = notifications
                .recv_timeout(Duration::from_millis(50))
                .expect("no error");
            assert!(none.is_none(), "only one notification was sent: {none:?}");
        }

        client
            .close()
            .unwrap_or_else(|e| panic!("{mode:?}: close failed: {e}"));

        let log = server
            .wait_for_first_outcome(Duration::from_secs(3))
            .expect("the server saw the connection end");
        assert_eq!(
            log.outcome,
            Some(Outcome::ClosedAfterCloseSession),
            "{mode:?}"
        );
        assert!(log.close_session);
        assert_eq!(log.chunked, mode.offers_base_1_1(), "{mode:?}");
        assert_eq!(
            log.rpcs.len(),
            3,
            "{mode:?}: two get-configs and close-session"
        );
        assert!(log.rpcs[0].contains("<get-config>"), "{}", log.rpcs[0]);
    });
}

#[test]
fn normal() {
    converses(Hostile::Normal);
}

#[test]
fn tiny_records() {
    converses(Hostile::TinyRecords);
}

#[test]
fn dribble() {
    converses(Hostile::Dribble);
}

#[test]
fn big_hello() {
    converses(Hostile::BigHello);
}

#[test]
fn reply_and_notification() {
    converses(Hostile::ReplyAndNotification);
}

#[test]
fn base10_only() {
    converses(Hostile::Base10Only);
}

#[test]
fn big_hello_capabilities_are_unescaped() {
    with_deadline(10, || {
        let pki = TestPki::new("big-hello-caps");
        let server = HostileServer::start(Hostile::BigHello, &pki.pki).expect("server");
        let (client, _notifications) = connect(&server, &pki.client_tls(), Duration::from_secs(3));
        let uri = "urn:example:yang:module-079?module=example-module-079&revision=2026-01-01";
        assert!(
            client.capabilities().contains_uri(uri),
            "capabilities: {:?}",
            client.capabilities()
        );
        let offered = hostile_tls::server_hello(Hostile::BigHello, hostile_tls::DEFAULT_SESSION_ID)
            .matches("<capability>")
            .count();
        assert!(offered > hostile_tls::BIG_HELLO_MODULES);
        assert_eq!(client.capabilities().len(), offered);
        client.close().expect("close");
    });
}

#[test]
fn every_answering_mode_is_covered() {
    let covered = [
        Hostile::Normal,
        Hostile::TinyRecords,
        Hostile::Dribble,
        Hostile::BigHello,
        Hostile::ReplyAndNotification,
        Hostile::Base10Only,
    ];
    for mode in Hostile::ALL {
        assert_eq!(
            covered.contains(&mode),
            mode.answers_rpcs(),
            "{mode:?} needs a test here"
        );
    }
}

/// The peer stops in the middle of a reply. The old client tied this to the RPC timeout;
/// the core now has a stall timeout of its own (no byte for that long in the middle of a
/// message), so it is set short here and the RPC timeout long: the stall, not the RPC
/// timeout, must end the call and the session.
#[test]
fn stall_mid_reply_times_out_and_closes() {
    with_deadline(10, || {
        let pki = TestPki::new("stall");
        let server = HostileServer::start(Hostile::StallMidReply, &pki.pki).expect("server");
        let stall_timeout = Duration::from_millis(300);
        let (client, notifications) = connect_with(
            &server,
            &pki.client_tls(),
            Config::client()
                .with_hello_timeout(Duration::from_secs(5))
                .with_rpc_timeout(Some(Duration::from_secs(5)))
                .with_stall_timeout(Some(stall_timeout)),
        );
        assert_eq!(client.session_id(), hostile_tls::DEFAULT_SESSION_ID);

        let started = Instant::now();
        let result = client.call(&GetConfig::new(Datastore::Running));
        let elapsed = started.elapsed();
        assert_eq!(
            result.as_ref().err().and_then(|e| e.timeout_kind()),
            Some(TimeoutKind::Stall),
            "{result:?}"
        );
        assert!(elapsed >= stall_timeout, "timed out early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(2),
            "timed out late: {elapsed:?}"
        );

        // Half a message is in the decoder: nothing can follow it, so the session is over.
        assert!(
            client.is_closed(),
            "the session must close after a stall mid-message"
        );
        let started = Instant::now();
        let later = client.call(&GetConfig::new(Datastore::Running));
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "a closed session answers at once"
        );
        match later {
            // Why the session ended: the stall (a `Timeout(Stall)` since issue 13).
            Err(e) => assert_eq!(
                e.timeout_kind(),
                Some(TimeoutKind::Stall),
                "the error should name the stall: {e}"
            ),
            Ok(data) => panic!("a stalled session answered: {data:?}"),
        }
        // The notification stream has ended with the session.
        let note = notifications.recv_timeout(Duration::from_millis(100));
        assert!(note.is_err(), "{note:?}");

        let started = Instant::now();
        client.close().expect("closing a closed session is fine");
        assert!(started.elapsed() < Duration::from_millis(500));

        let log = server
            .wait_for_first_outcome(Duration::from_secs(3))
            .expect("the server saw the client leave");
        assert_eq!(log.outcome, Some(Outcome::PeerClosed));
        assert_eq!(
            log.rpcs.len(),
            1,
            "nothing was sent after the stall: {:?}",
            log.rpcs
        );
        assert!(log.sent_message("partial rpc-reply").is_some());
    });
}
