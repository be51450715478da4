//! Self-tests of the test kit: the certificates and the hostile TLS server.
//!
//! Tests of the library are only as good as the peers they run against, so these check that
//! each hostile mode really misbehaves the way it claims to (many records in one write, writes
//! of 1-7 bytes, two messages in one record, ...) while still speaking correct NETCONF.
//!
//! The client here is deliberately not the library: a raw rustls `ClientConnection` over a
//! real `TcpStream`, driven by a small hand-written loop that follows the drain rule (after
//! every socket read, decrypt and take out *all* plaintext before reading again). Every socket
//! has a read timeout of a few seconds, so a misbehaving server fails a test instead of
//! hanging it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netconf_tests::certs::{self, Pki};
use netconf_tests::hostile_tls::{
    count_tls_records, frame, hello_session_id, message_id, Deframer, Framing, Hostile,
    HostileOptions, HostileServer, Outcome, TlsRecordCounter, BASE_1_0, BASE_1_1,
    DEFAULT_SESSION_ID, DRIBBLE_REPLY_DATA_LEN, NETCONF_NS, NOTIFICATION_NS, TINY_RECORD_SIZE,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// Deadlock guard: the longest any single socket read may block.
const GUARD: Duration = Duration::from_secs(3);
/// How long to wait for the server's worker to record what it saw.
const LOG_WAIT: Duration = Duration::from_secs(3);

/// A minimal NETCONF-over-TLS client for testing the test server.
struct RawClient {
    sock: TcpStream,
    tls: ClientConnection,
    deframer: Deframer,
    /// Framing for messages we send (end-of-message until the hellos are exchanged).
    out_framing: Framing,
    /// Counts the TLS records the server sent, from the raw ciphertext we read.
    records: TlsRecordCounter,
    /// Set once the server closed (TCP EOF or close_notify).
    closed: bool,
}

impl RawClient {
    fn connect(server: &HostileServer, config: Arc<ClientConfig>) -> RawClient {
        let sock = TcpStream::connect(server.addr()).expect("connect to the hostile server");
        sock.set_read_timeout(Some(GUARD)).unwrap();
        sock.set_write_timeout(Some(GUARD)).unwrap();
        sock.set_nodelay(true).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = ClientConnection::new(config, name).expect("client connection");
        RawClient {
            sock,
            tls,
            deframer: Deframer::new(),
            out_framing: Framing::EndOfMessage,
            records: TlsRecordCounter::new(),
            closed: false,
        }
    }

    /// Connects with mutual TLS from `pki` and completes the handshake.
    fn connect_mutual(server: &HostileServer, pki: &Pki) -> RawClient {
        let mut client = RawClient::connect(server, pki.client_config(true));
        client.handshake().expect("TLS handshake");
        client
    }

    /// Writes every pending TLS byte to the socket.
    fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    fn handshake(&mut self) -> io::Result<()> {
        loop {
            self.flush()?;
            if !self.tls.is_handshaking() {
                return Ok(());
            }
            if !self.read_once()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed during the handshake",
                ));
            }
        }
    }

    /// One socket read, then the drain rule: feed everything to rustls, process, and move all
    /// plaintext into the deframer. Returns `false` once the server has closed.
    fn read_once(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.sock.read(&mut buf)?;
        if n == 0 {
            self.closed = true;
            return Ok(false);
        }
        self.records.feed(&buf[..n]);
        let mut input = &buf[..n];
        while !input.is_empty() {
            self.tls.read_tls(&mut input)?;
            if let Err(e) = self.tls.process_new_packets() {
                let _ = self.flush();
                return Err(io::Error::other(e));
            }
            let mut plain = [0u8; 16 * 1024];
            loop {
                match self.tls.reader().read(&mut plain) {
                    Ok(0) => {
                        self.closed = true;
                        break;
                    }
                    Ok(n) => self.deframer.push(&plain[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        // Answer anything rustls wants to say (handshake, key updates).
        self.flush()?;
        Ok(!self.closed)
    }

    /// Reads until one whole NETCONF message is available.
    fn read_message(&mut self) -> io::Result<String> {
        loop {
            if let Some(message) = self.deframer.next_message().map_err(io::Error::other)? {
                return Ok(String::from_utf8(message).expect("server sent UTF-8"));
            }
            if self.closed {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed before a whole message arrived",
                ));
            }
            // Back to the deframer even if this read also saw the close: the last message
            // and the close_notify often arrive together.
            self.read_once()?;
        }
    }

    /// Frames, encrypts and sends one message.
    fn send(&mut self, message: &str) -> io::Result<()> {
        let framed = frame(message.as_bytes(), self.out_framing);
        self.tls.writer().write_all(&framed)?;
        self.flush()
    }

    /// Reads the server's hello, sends ours and switches framing like RFC 6242 says.
    fn exchange_hellos(&mut self, offer_base_1_1: bool) -> String {
        let server_hello = self.read_message().expect("server hello");
        self.send(&client_hello(offer_base_1_1))
            .expect("send client hello");
        if offer_base_1_1 && server_hello.contains(BASE_1_1) {
            self.deframer.set_framing(Framing::Chunked);
            self.out_framing = Framing::Chunked;
        }
        server_hello
    }

    /// Sends an rpc and returns the next message from the server.
    fn rpc(&mut self, rpc: &str) -> String {
        self.send(rpc).expect("send rpc");
        self.read_message().expect("rpc reply")
    }
}

fn client_hello(offer_base_1_1: bool) -> String {
    let mut capabilities = format!("<capability>{BASE_1_0}</capability>");
    if offer_base_1_1 {
        capabilities.push_str(&format!("<capability>{BASE_1_1}</capability>"));
    }
    format!("<hello xmlns=\"{NETCONF_NS}\"><capabilities>{capabilities}</capabilities></hello>")
}

fn get_config(id: u32) -> String {
    format!(
        "<rpc message-id=\"{id}\" xmlns=\"{NETCONF_NS}\"><get-config><source><running/></source>\
         </get-config></rpc>"
    )
}

fn close_session(id: u32) -> String {
    format!("<rpc message-id=\"{id}\" xmlns=\"{NETCONF_NS}\"><close-session/></rpc>")
}

fn start(mode: Hostile, pki: &Pki) -> HostileServer {
    HostileServer::start(mode, pki).expect("start hostile server")
}

/// Asserts the hello is a server hello carrying session-id 4242.
fn assert_server_hello(hello: &str) {
    assert!(hello.contains("<hello"), "not a hello: {hello}");
    assert_eq!(hello_session_id(hello), Some(DEFAULT_SESSION_ID), "{hello}");
}

/// Asserts `reply` is an rpc-reply to `id` carrying `<data>`.
fn assert_data_reply(reply: &str, id: u32) {
    assert!(reply.starts_with("<rpc-reply"), "not a reply: {reply:.200}");
    assert_eq!(message_id(reply), Some(id.to_string().as_str()));
    assert!(reply.contains("<data>"), "no data: {reply:.200}");
}

/// Sends close-session, expects `<ok/>`, then expects the server to close the connection.
fn close_and_expect_eof(client: &mut RawClient, id: u32) {
    let ok = client.rpc(&close_session(id));
    assert_eq!(message_id(&ok), Some(id.to_string().as_str()));
    assert!(ok.contains("<ok/>"), "{ok}");
    let eof = client.read_message().unwrap_err();
    assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof, "{eof}");
    assert!(client.closed);
}

#[test]
fn normal_mode_serves_a_whole_session() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);

    let hello = client.exchange_hellos(true);
    assert_server_hello(&hello);
    assert!(hello.contains(BASE_1_1));
    assert_eq!(client.out_framing, Framing::Chunked);

    assert_data_reply(&client.rpc(&get_config(101)), 101);
    close_and_expect_eof(&mut client, 102);

    let log = server
        .wait_for_first_outcome(LOG_WAIT)
        .expect("connection ends");
    assert_eq!(log.outcome, Some(Outcome::ClosedAfterCloseSession));
    assert!(log.handshake_done && log.chunked && log.close_session);
    assert_eq!(log.rpcs.len(), 2);
    assert_eq!(
        log.message_ids,
        vec![Some("101".to_owned()), Some("102".to_owned())]
    );
    assert!(log.client_hello.as_deref().unwrap().contains(BASE_1_1));
    let kinds: Vec<_> = log.sent.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, ["hello", "rpc-reply", "ok"]);
    for message in &log.sent {
        assert_eq!(message.tls_records, 1, "{message:?}");
        assert_eq!(message.socket_writes, 1, "{message:?}");
    }
}

#[test]
fn every_mode_sends_its_hello_with_session_id_4242() {
    let pki = Pki::generate();
    for mode in Hostile::ALL {
        let server = start(mode, &pki);
        let mut client = RawClient::connect_mutual(&server, &pki);
        let hello = client.exchange_hellos(true);
        assert_server_hello(&hello);
        assert_eq!(hello.contains(BASE_1_1), mode.offers_base_1_1(), "{mode:?}");
        if mode.answers_rpcs() {
            assert_data_reply(&client.rpc(&get_config(7)), 7);
        }
    }
}

#[test]
fn tiny_records_arrive_many_per_write_and_the_socket_stays_open() {
    let pki = Pki::generate();
    let server = start(Hostile::TinyRecords, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    let records_before_hello = client.records.records();

    let hello = client.read_message().expect("hello");
    assert_server_hello(&hello);
    let hello_records = client.records.records() - records_before_hello;
    // At most TINY_RECORD_SIZE - 5 bytes of plaintext fit into each record.
    assert!(
        hello_records >= hello.len() / (TINY_RECORD_SIZE - 5),
        "{hello_records} records for a {}-byte hello",
        hello.len()
    );

    // The server now waits, silent, with the socket open: no EOF, just nothing.
    client
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let silent = client.sock.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            silent.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{silent}"
    );
    client.sock.set_read_timeout(Some(GUARD)).unwrap();

    client.send(&client_hello(true)).expect("send client hello");
    client.deframer.set_framing(Framing::Chunked);
    client.out_framing = Framing::Chunked;
    assert_data_reply(&client.rpc(&get_config(5)), 5);
    close_and_expect_eof(&mut client, 6);

    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert_eq!(log.outcome, Some(Outcome::ClosedAfterCloseSession));
    for kind in ["hello", "rpc-reply", "ok"] {
        let message = log.sent_message(kind).unwrap();
        assert!(
            message.tls_records >= 4,
            "{kind} should be many records: {message:?}"
        );
        assert!(
            message.tls_records >= message.plaintext_len / (TINY_RECORD_SIZE - 5),
            "{message:?}"
        );
        assert_eq!(
            message.socket_writes, 1,
            "all records in one write: {message:?}"
        );
    }
    assert!(log.tls_records_written >= client.records.records());
}

#[test]
fn dribble_writes_1_to_7_bytes_at_a_time_and_spans_several_records() {
    let pki = Pki::generate();
    let server = start(Hostile::Dribble, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.exchange_hellos(true));

    let reply = client.rpc(&get_config(4711));
    assert_data_reply(&reply, 4711);
    assert!(reply.len() > DRIBBLE_REPLY_DATA_LEN, "{}", reply.len());
    assert!(reply.contains("grüße"), "multi-byte characters survive");
    // Several maximum-size records: at least one carried close to 16 KiB.
    assert!(client.records.largest_record() > 16 * 1024);
    close_and_expect_eof(&mut client, 4712);

    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert_eq!(log.outcome, Some(Outcome::ClosedAfterCloseSession));
    assert!(
        log.largest_socket_write <= 7,
        "{}",
        log.largest_socket_write
    );
    assert!(log.socket_writes * 7 >= log.bytes_written);
    let reply = log.sent_message("rpc-reply").unwrap();
    assert!(reply.tls_records >= 3, "{reply:?}");
    assert!(reply.socket_writes >= reply.plaintext_len / 7, "{reply:?}");
    assert!(reply.largest_socket_write <= 7, "{reply:?}");
}

#[test]
fn big_hello_is_one_record_in_one_write() {
    let pki = Pki::generate();
    let server = start(Hostile::BigHello, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);

    let hello = client.exchange_hellos(true);
    assert_server_hello(&hello);
    assert!(hello.len() > 4096, "{}", hello.len());
    assert!(hello.len() < 16 * 1024, "{}", hello.len());
    assert!(hello.contains("&amp;revision=2026-01-01"));
    assert!(client.records.largest_record() > 4096);
    assert_data_reply(&client.rpc(&get_config(1)), 1);

    let log = server
        .wait_until(LOG_WAIT, |log| log[0].sent.len() == 2)
        .unwrap();
    let sent = log[0].sent_message("hello").unwrap();
    assert!(sent.plaintext_len > 4096);
    assert_eq!(sent.tls_records, 1, "{sent:?}");
    assert_eq!(sent.socket_writes, 1, "{sent:?}");
}

#[test]
fn reply_and_notification_share_one_record() {
    let pki = Pki::generate();
    let server = start(Hostile::ReplyAndNotification, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.exchange_hellos(true));

    let reply = client.rpc(&get_config(33));
    assert_data_reply(&reply, 33);
    let notification = client.read_message().expect("notification");
    assert!(notification.starts_with("<notification"), "{notification}");
    assert!(notification.contains(NOTIFICATION_NS));
    assert!(notification.contains("<eventTime>2026-01-01T00:00:00Z</eventTime>"));

    // Only the first reply is paired with a notification.
    assert_data_reply(&client.rpc(&get_config(34)), 34);
    close_and_expect_eof(&mut client, 35);

    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    let both = log.sent_message("rpc-reply+notification").unwrap();
    assert_eq!(both.tls_records, 1, "{both:?}");
    assert_eq!(both.socket_writes, 1, "{both:?}");
    assert_eq!(log.sent_message("rpc-reply").unwrap().tls_records, 1);
}

#[test]
fn base10_only_keeps_end_of_message_framing() {
    let pki = Pki::generate();
    let server = start(Hostile::Base10Only, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);

    let hello = client.exchange_hellos(true);
    assert_server_hello(&hello);
    assert!(hello.contains(BASE_1_0) && !hello.contains(BASE_1_1));
    assert_eq!(client.out_framing, Framing::EndOfMessage);
    assert_data_reply(&client.rpc(&get_config(9)), 9);
    close_and_expect_eof(&mut client, 10);

    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert!(!log.chunked);
    assert!(log.close_session);
}

#[test]
fn a_base10_client_gets_end_of_message_framing_from_a_normal_server() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.exchange_hellos(false));
    assert_data_reply(&client.rpc(&get_config(11)), 11);
    close_and_expect_eof(&mut client, 12);
    assert!(!server.wait_for_first_outcome(LOG_WAIT).unwrap().chunked);
}

#[test]
fn an_rpc_riding_in_the_same_record_as_the_client_hello_is_answered() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.read_message().unwrap());

    let mut both = frame(client_hello(true).as_bytes(), Framing::EndOfMessage);
    both.extend_from_slice(&frame(get_config(21).as_bytes(), Framing::Chunked));
    client.tls.writer().write_all(&both).unwrap();
    client.flush().unwrap();
    client.deframer.set_framing(Framing::Chunked);
    client.out_framing = Framing::Chunked;

    assert_data_reply(&client.read_message().unwrap(), 21);
}

#[test]
fn stall_mid_reply_sends_half_then_nothing_until_the_client_leaves() {
    let pki = Pki::generate();
    let server = start(Hostile::StallMidReply, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.exchange_hellos(true));

    client.send(&get_config(77)).unwrap();
    client
        .sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let stalled = client.read_message().unwrap_err();
    assert!(
        matches!(
            stalled.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{stalled}"
    );
    assert!(!client.closed, "the server must keep the socket open");
    assert!(client.deframer.buffered() > 0, "half a reply arrived");

    let log = server
        .wait_until(LOG_WAIT, |log| log[0].sent.len() == 2)
        .unwrap();
    assert_eq!(log[0].sent[1].kind, "partial rpc-reply");
    assert_eq!(log[0].outcome, None);

    // The client gives up: the worker notices and ends.
    drop(client);
    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert_eq!(log.outcome, Some(Outcome::PeerClosed));
    assert_eq!(log.rpcs.len(), 1);
}

#[test]
fn dropping_the_server_closes_a_stalled_connection_promptly() {
    let pki = Pki::generate();
    let server = start(Hostile::StallMidReply, &pki);
    let mut client = RawClient::connect_mutual(&server, &pki);
    assert_server_hello(&client.exchange_hellos(true));
    client.send(&get_config(1)).unwrap();
    server
        .wait_until(LOG_WAIT, |log| log[0].sent.len() == 2)
        .unwrap();

    let log_handle = server.log_handle();
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        log_handle.lock().unwrap()[0].outcome,
        Some(Outcome::Stopped)
    );
    // The client now sees the connection end instead of waiting for its guard.
    let end = client.read_message().unwrap_err();
    assert_ne!(end.kind(), io::ErrorKind::WouldBlock, "{end}");
    assert_ne!(end.kind(), io::ErrorKind::TimedOut, "{end}");
}

#[test]
fn stop_unblocks_an_idle_connection_and_the_accept_loop() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    let _client = RawClient::connect_mutual(&server, &pki);
    server
        .wait_until(LOG_WAIT, |log| !log.is_empty() && log[0].sent.len() == 1)
        .unwrap();
    let started = Instant::now();
    server.stop();
    server.stop(); // idempotent
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.connections()[0].outcome, Some(Outcome::Stopped));
    assert!(TcpStream::connect_timeout(&server.addr(), Duration::from_millis(500)).is_err());
}

#[test]
fn the_client_refuses_a_server_from_another_ca() {
    let pki = Pki::generate();
    let other = Pki::generate_untrusted();
    let server = start(Hostile::Normal, &pki);
    let mut client = RawClient::connect(&server, other.client_config(true));
    let err = client.handshake().unwrap_err();
    let tls_error = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {err}"));
    assert!(
        matches!(tls_error, rustls::Error::InvalidCertificate(_)),
        "{tls_error:?}"
    );
    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert!(!log.handshake_done);
    assert!(matches!(log.outcome, Some(Outcome::Error(_))), "{log:?}");
}

#[test]
fn the_server_refuses_a_client_certificate_from_another_ca() {
    let pki = Pki::generate();
    let other = Pki::other_ca();
    let server = start(Hostile::Normal, &pki);
    // Trusts the right server, presents the wrong certificate.
    let config = certs::client_config_trusting(&pki, Some(&other));
    let mut client = RawClient::connect(&server, config);
    // Under TLS 1.3 the client finishes first; the refusal arrives as an alert afterwards.
    let refused = client
        .handshake()
        .and_then(|()| client.read_message().map(drop));
    assert!(refused.is_err());
    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert!(!log.handshake_done);
    let Some(Outcome::Error(reason)) = &log.outcome else {
        panic!("{log:?}");
    };
    assert!(reason.contains("TLS"), "{reason}");
}

#[test]
fn the_server_requires_a_client_certificate() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    let mut client = RawClient::connect(&server, pki.client_config(false));
    let refused = client
        .handshake()
        .and_then(|()| client.read_message().map(drop));
    assert!(refused.is_err());
    let log = server.wait_for_first_outcome(LOG_WAIT).unwrap();
    assert!(matches!(log.outcome, Some(Outcome::Error(_))), "{log:?}");
}

#[test]
fn server_without_client_auth_and_custom_session_id() {
    let pki = Pki::generate();
    let mut options = HostileOptions::new(Hostile::Normal, pki.server_config(false));
    options.session_id = 99;
    let server = HostileServer::start_with(options).unwrap();
    assert_eq!(server.session_id(), 99);
    let mut client = RawClient::connect(&server, pki.client_config(false));
    client.handshake().unwrap();
    assert_eq!(hello_session_id(&client.exchange_hellos(true)), Some(99));
}

#[test]
fn one_server_serves_several_connections() {
    let pki = Pki::generate();
    let server = start(Hostile::Normal, &pki);
    for id in 1..=3 {
        let mut client = RawClient::connect_mutual(&server, &pki);
        client.exchange_hellos(true);
        assert_data_reply(&client.rpc(&get_config(id)), id);
        close_and_expect_eof(&mut client, id + 100);
    }
    let log = server
        .wait_until(LOG_WAIT, |log| {
            log.len() == 3 && log.iter().all(|c| c.outcome.is_some())
        })
        .unwrap();
    assert!(log
        .iter()
        .all(|c| c.outcome == Some(Outcome::ClosedAfterCloseSession)));
}

// ---------------------------------------------------------------------------------------------
// Framing and record helpers

#[test]
fn deframer_decodes_chunked_messages_in_any_split() {
    let mut stream = b"\n#3\nabc\n#12\ndefghijklmno\n##\n".to_vec();
    stream.extend_from_slice(&frame("ü-two".as_bytes(), Framing::Chunked));
    for split in 1..=stream.len() {
        let mut deframer = Deframer::new();
        deframer.set_framing(Framing::Chunked);
        let mut messages = Vec::new();
        for piece in stream.chunks(split) {
            deframer.push(piece);
            while let Some(message) = deframer.next_message().unwrap() {
                messages.push(message);
            }
        }
        assert_eq!(
            messages,
            [b"abcdefghijklmno".to_vec(), "ü-two".as_bytes().to_vec()],
            "split {split}"
        );
        assert_eq!(deframer.buffered(), 0);
    }
}

#[test]
fn deframer_decodes_end_of_message_framing_in_any_split() {
    let stream = b"<a/>]]>]]><b>]]></b>]]>]]>";
    for split in 1..=stream.len() {
        let mut deframer = Deframer::new();
        let mut messages = Vec::new();
        for piece in stream.chunks(split) {
            deframer.push(piece);
            while let Some(message) = deframer.next_message().unwrap() {
                messages.push(message);
            }
        }
        assert_eq!(
            messages,
            [b"<a/>".to_vec(), b"<b>]]></b>".to_vec()],
            "split {split}"
        );
    }
}

#[test]
fn deframer_refuses_malformed_chunk_headers() {
    for bad in [
        &b"\n#0\n"[..],
        b"\n#01\nx",
        b"\n#x\n",
        b"#3\nabc",
        b"\n##\n",
        b"\n#4294967296\n",
    ] {
        let mut deframer = Deframer::new();
        deframer.set_framing(Framing::Chunked);
        deframer.push(bad);
        assert!(deframer.next_message().is_err(), "{bad:?}");
    }
}

#[test]
fn record_counter_agrees_whole_and_byte_by_byte() {
    // Three fake records: handshake (5 bytes), application data (0 bytes), application data (300).
    let mut stream = vec![
        22, 3, 3, 0, 5, 1, 2, 3, 4, 5, 23, 3, 3, 0, 0, 23, 3, 3, 1, 44,
    ];
    stream.extend_from_slice(&[0xAB; 300]);
    assert_eq!(count_tls_records(&stream), 3);
    let mut counter = TlsRecordCounter::new();
    for byte in &stream {
        counter.feed(std::slice::from_ref(byte));
    }
    assert_eq!(counter.records(), 3);
    assert_eq!(counter.application_data_records(), 2);
    assert_eq!(counter.largest_record(), 300);
    assert!(counter.at_boundary());
}

#[test]
fn message_id_finds_either_quote_style() {
    assert_eq!(message_id(r#"<rpc message-id="42" xmlns="x">"#), Some("42"));
    assert_eq!(
        message_id("<rpc xmlns='x' message-id='a\"b'>"),
        Some("a\"b")
    );
    assert_eq!(message_id("<rpc xmlns='x'>"), None);
}

// ---------------------------------------------------------------------------------------------
// Certificates

#[test]
fn pki_files_are_written_as_pem() {
    let pki = Pki::generate();
    let dir = std::env::temp_dir().join(format!(
        "netconf-testkit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let files = pki.write_to_dir(&dir).unwrap();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    assert_eq!(read(&files.ca_cert), pki.ca_pem);
    assert!(read(&files.server_cert).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(read(&files.client_cert).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(read(&files.server_key).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(read(&files.client_key), pki.client_key_pem);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.client_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are not world-readable");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_pkis_share_nothing() {
    let a = Pki::generate();
    let b = Pki::generate_untrusted();
    assert_ne!(a.ca_cert_der(), b.ca_cert_der());
    assert_ne!(a.client_cert_der(), b.client_cert_der());
    assert_ne!(a.ca_pem, b.ca_pem);
}
