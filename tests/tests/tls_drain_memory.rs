//! `TlsSession`'s drain routine, in memory: no sockets, no threads, a virtual clock.
//!
//! ncclient's "Capability exchange timed out" hang comes from a read loop that waits for the
//! socket to become readable while the TLS library still holds decrypted bytes, or whole
//! records it has not decrypted yet. Whether a client has that bug depends on *how the
//! ciphertext arrives*: many records in one read, one record over many reads, two messages in
//! one record, the handshake's last flight and the first message in one read. A polite peer
//! never produces these cases on loopback, so here the peer is a raw rustls connection driven
//! by hand: the test decides how plaintext is cut into records (`writer()` calls,
//! `max_fragment_size`) and how the resulting ciphertext is handed to
//! [`TlsSession::handle_ciphertext`].
//!
//! Every drain of `poll_output` (the [`drain`] helper) also checks the promise `Wait` makes:
//! rustls has no record left to send and no plaintext left to read, and asking again, or
//! feeding nothing more, yields nothing new.

use std::io::{Read, Write};
use std::iter::Cycle;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use netconf_proto::operations::{Datastore, GetConfig};
use netconf_proto::{
    CloseReason, Config, Event, Framing as WireFraming, MessageId, Output, ProtocolError, Reply,
    TlsSession,
};
use netconf_tests::certs::{self, Pki};
use netconf_tests::hostile_tls::{
    count_tls_records, data_body, frame, message_id, rpc_reply, server_hello, Deframer, Framing,
    Hostile, BASE_1_0, BASE_1_1, DEFAULT_SESSION_ID, NETCONF_NS, NOTIFICATION, NOTIFICATION_NS,
};
use proptest::prelude::*;
use rustls::pki_types::ServerName;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, Connection, ProtocolVersion, ServerConfig,
    ServerConnection,
};

/// The session-id in the peer's hello.
const SESSION_ID: u32 = DEFAULT_SESSION_ID;

/// One PKI for the whole file: generating is cheap, but the property test runs many cases.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::generate)
}

// ---------------------------------------------------------------------------------------------
// Our side

/// Our client session, verifying the peer as `localhost`.
fn our_client(tls: Arc<ClientConfig>, now: Instant) -> TlsSession {
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    TlsSession::client(tls, name, Config::client(), now).expect("a valid client config")
}

/// Our server session, assigning session-id 7.
fn our_server(tls: Arc<ServerConfig>, now: Instant) -> TlsSession {
    TlsSession::server(tls, Config::server(), 7, now).expect("a valid server config")
}

/// Everything one drain of `poll_output` produced, in order (without the final `Wait`).
#[derive(Debug, Default)]
struct Drained {
    outputs: Vec<Output>,
}

impl Drained {
    /// How many `Transmit`s (writes, for an adapter).
    fn transmits(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Output::Transmit(_)))
            .count()
    }

    /// All `Transmit`s, concatenated.
    fn ciphertext(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for out in &self.outputs {
            if let Output::Transmit(bytes) = out {
                all.extend_from_slice(bytes);
            }
        }
        all
    }

    /// All events, in order.
    fn events(&self) -> Vec<Event> {
        let events = self.outputs.iter().filter_map(|out| match out {
            Output::Event(ev) => Some(ev.clone()),
            _ => None,
        });
        events.collect()
    }

    /// Index in `outputs` of the first `Transmit`, and of the `Closed` event.
    fn transmit_and_closed_positions(&self) -> (Option<usize>, Option<usize>) {
        let transmit = self
            .outputs
            .iter()
            .position(|o| matches!(o, Output::Transmit(_)));
        let closed = self
            .outputs
            .iter()
            .position(|o| matches!(o, Output::Event(Event::Closed { .. })));
        (transmit, closed)
    }
}

/// Drains `poll_output` until `Wait`, then checks that `Wait` told the truth: rustls has no
/// unsent record and (while the session is open) no unread plaintext, a second `poll_output`
/// is `Wait` again, and feeding zero bytes releases nothing. A loop that blocks on the socket
/// after `Wait` relies on exactly this.
fn drain(ours: &mut TlsSession, now: Instant) -> Drained {
    let mut outputs = Vec::new();
    loop {
        match ours.poll_output() {
            Output::Wait(_) => break,
            out => outputs.push(out),
        }
        assert!(outputs.len() < 10_000, "poll_output never reaches Wait");
    }
    assert!(
        !ours.tls().wants_write(),
        "Wait while rustls still holds records to send"
    );
    if !ours.session().is_closed() {
        // `wants_read` is false exactly when decrypted plaintext waits in rustls' reader.
        assert!(
            ours.tls().wants_read(),
            "Wait while rustls still holds plaintext"
        );
    }
    assert!(
        matches!(ours.poll_output(), Output::Wait(_)),
        "a second poll_output after Wait must be Wait"
    );
    if ours.session().error().is_none() {
        ours.handle_ciphertext(&[], now)
            .expect("feeding nothing cannot fail");
        assert!(
            matches!(ours.poll_output(), Output::Wait(_)),
            "feeding zero bytes released output"
        );
    }
    Drained { outputs }
}

/// Hands `ciphertext` to our session in ONE call (which must succeed) and drains.
fn deliver(ours: &mut TlsSession, ciphertext: &[u8], now: Instant) -> Drained {
    ours.handle_ciphertext(ciphertext, now)
        .expect("valid ciphertext is accepted");
    drain(ours, now)
}

/// Feeds `ciphertext` one byte per `handle_ciphertext` call, draining after every call.
/// Returns each event with the index of the byte whose delivery released it.
fn deliver_bytewise(ours: &mut TlsSession, ciphertext: &[u8], now: Instant) -> Vec<(usize, Event)> {
    let mut events = Vec::new();
    for (i, byte) in ciphertext.iter().enumerate() {
        let drained = deliver(ours, std::slice::from_ref(byte), now);
        events.extend(drained.events().into_iter().map(|ev| (i, ev)));
    }
    events
}

/// Cuts `bytes` into pieces whose sizes cycle through `sizes`.
fn pieces<'a, I>(bytes: &'a [u8], sizes: &mut Cycle<I>) -> Vec<&'a [u8]>
where
    I: Iterator<Item = usize> + Clone,
{
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fn assert_established(events: &[Event]) {
    match events {
        [Event::Established {
            session_id,
            framing,
            ..
        }] => {
            assert_eq!(*session_id, SESSION_ID);
            assert_eq!(*framing, WireFraming::Chunked);
        }
        other => panic!("expected exactly Established, got {other:?}"),
    }
}

/// The error a session closed with, from its drained output (which must end in `Closed`).
fn closed_reason(drained: &Drained) -> CloseReason {
    match drained.events().last() {
        Some(Event::Closed { reason }) => reason.clone(),
        other => panic!("expected Closed as the last event, got {other:?}"),
    }
}

/// The TLS error text of a `Closed` event, panicking on any other reason.
fn closed_tls_error(drained: &Drained) -> String {
    match closed_reason(drained) {
        CloseReason::Protocol(ProtocolError::Tls(what)) => what.to_string(),
        other => panic!("expected Closed with a TLS error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The peer

/// The hand-driven peer: a raw rustls connection plus just enough NETCONF to read what we send.
#[derive(Debug)]
struct Peer {
    tls: Connection,
    /// Plaintext we sent, deframed; end-of-message framing until our hello has been read.
    inbox: Deframer,
    our_hello_seen: bool,
}

impl Peer {
    fn server(config: Arc<ServerConfig>) -> Peer {
        let tls = ServerConnection::new(config).expect("a valid server config");
        Peer::new(tls.into())
    }

    fn client(config: Arc<ClientConfig>) -> Peer {
        let name = ServerName::try_from("localhost").expect("a valid DNS name");
        let tls = ClientConnection::new(config, name).expect("a valid client config");
        Peer::new(tls.into())
    }

    fn new(tls: Connection) -> Peer {
        Peer {
            tls,
            inbox: Deframer::new(),
            our_hello_seen: false,
        }
    }

    /// Takes our ciphertext, processes it and moves all plaintext to the inbox.
    fn receive(&mut self, mut ciphertext: &[u8]) -> Result<rustls::IoState, rustls::Error> {
        loop {
            let n = self
                .tls
                .read_tls(&mut ciphertext)
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            let state = self.tls.process_new_packets()?;
            let mut buf = [0u8; 4096];
            // Err: WouldBlock (drained) or UnexpectedEof; Ok(0): close_notify.
            while let Ok(len @ 1..) = self.tls.reader().read(&mut buf) {
                self.inbox.push(&buf[..len]);
            }
            if n == 0 || ciphertext.is_empty() {
                return Ok(state);
            }
        }
    }

    /// The next complete message we sent, as text.
    fn next_message(&mut self) -> Option<String> {
        let message = self.inbox.next_message().expect("our framing is valid")?;
        if !self.our_hello_seen {
            // Both hellos offer base:1.1, so everything after them is chunked.
            self.our_hello_seen = true;
            self.inbox.set_framing(Framing::Chunked);
        }
        Some(String::from_utf8(message).expect("our messages are UTF-8"))
    }

    /// Every TLS record rustls has queued.
    fn flush(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .expect("writing into a Vec cannot fail");
        }
        out
    }

    /// Encrypts `plaintext` in ONE `writer()` call: as few records as the fragment size allows.
    fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        self.tls
            .writer()
            .write_all(plaintext)
            .expect("peer accepts plaintext");
        self.flush()
    }

    /// Encrypts `plaintext` one byte per `writer()` call, collecting after each: one record
    /// per byte, all in one `Vec`.
    fn seal_bytewise(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for byte in plaintext {
            self.tls
                .writer()
                .write_all(std::slice::from_ref(byte))
                .expect("peer accepts plaintext");
            out.extend(self.flush());
        }
        out
    }
}

/// The peer's hello (base:1.0 and base:1.1), framed with `]]>]]>`.
fn peer_hello() -> Vec<u8> {
    frame(
        server_hello(Hostile::Normal, SESSION_ID).as_bytes(),
        Framing::EndOfMessage,
    )
}

/// A peer hello of at least `len` bytes, padded with module capabilities.
fn big_peer_hello(len: usize) -> Vec<u8> {
    let hello = server_hello(Hostile::Normal, SESSION_ID);
    let mut modules = String::new();
    let mut i = 0;
    while hello.len() + modules.len() < len {
        modules.push_str(&format!(
            "<capability>urn:example:yang:m{i:04}?module=m{i:04}&amp;revision=2026-01-01</capability>"
        ));
        i += 1;
    }
    let hello = hello.replacen("</capabilities>", &format!("{modules}</capabilities>"), 1);
    frame(hello.as_bytes(), Framing::EndOfMessage)
}

/// A chunk-framed `<rpc-reply>` to `id`.
fn reply_to(id: MessageId, body: &str) -> Vec<u8> {
    frame(
        rpc_reply(Some(&id.to_string()), body).as_bytes(),
        Framing::Chunked,
    )
}

/// A chunk-framed notification ([`NOTIFICATION`]).
fn notification() -> Vec<u8> {
    frame(NOTIFICATION.as_bytes(), Framing::Chunked)
}

/// A chunk-framed notification of more than `len` bytes (several maximum-size records).
fn big_notification(len: usize) -> Vec<u8> {
    let filler = "grüße ".repeat(len / 7 + 1);
    let xml = format!(
        "<notification xmlns=\"{NOTIFICATION_NS}\"><eventTime>2026-01-01T00:00:01Z</eventTime>\
         <event xmlns=\"urn:example\">{filler}</event></notification>"
    );
    frame(xml.as_bytes(), Framing::Chunked)
}

// ---------------------------------------------------------------------------------------------
// Handshake

/// Runs the TLS handshake until the PEER has finished its side, and returns the peer's last
/// output without delivering it: a TLS 1.3 server's session tickets, a TLS 1.2 server's
/// ChangeCipherSpec and Finished, a client's final flight. No NETCONF hello from the peer.
fn handshake_held(ours: &mut TlsSession, peer: &mut Peer, now: Instant) -> Vec<u8> {
    for _ in 0..10 {
        let out = drain(ours, now);
        assert!(
            out.events().is_empty(),
            "events during the handshake: {out:?}"
        );
        peer.receive(&out.ciphertext())
            .expect("the peer accepts our handshake");
        let back = peer.flush();
        if !peer.tls.is_handshaking() {
            return back;
        }
        ours.handle_ciphertext(&back, now)
            .expect("we accept the peer's handshake");
    }
    panic!("the TLS handshake did not finish");
}

/// Completes the TLS handshake on both sides. Our hello reaches the peer; the peer's hello is
/// not sent.
fn handshake(ours: &mut TlsSession, peer: &mut Peer, now: Instant) {
    let held = handshake_held(ours, peer, now);
    let out = deliver(ours, &held, now);
    assert!(out.events().is_empty(), "events without a hello: {out:?}");
    peer.receive(&out.ciphertext())
        .expect("the peer accepts our records");
    assert!(!ours.is_handshaking() && !peer.tls.is_handshaking());
    let hello = peer.next_message().expect("our hello reached the peer");
    assert!(hello.contains("<hello"), "{hello}");
}

/// Our server and a peer client with the handshake done up to the peer's last flight, which
/// is returned undelivered (so a test can append the peer's first records to it).
fn server_handshake_held(now: Instant) -> (TlsSession, Peer, Vec<u8>) {
    let pki = pki();
    let mut ours = our_server(pki.server_config(true), now);
    let mut peer = Peer::client(pki.client_config(true));
    let held = handshake_held(&mut ours, &mut peer, now);
    (ours, peer, held)
}

/// A client hello offering base:1.0 and base:1.1, framed as hellos are (end-of-message).
fn client_hello() -> Vec<u8> {
    let hello = format!(
        "<hello xmlns=\"{NETCONF_NS}\"><capabilities><capability>{BASE_1_0}</capability>\
         <capability>{BASE_1_1}</capability></capabilities></hello>"
    );
    frame(hello.as_bytes(), Framing::EndOfMessage)
}

/// A client, established against a default-config peer whose hello came in one record.
fn established_client(now: Instant) -> (TlsSession, Peer) {
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);
    let records = peer.seal(&peer_hello());
    assert_established(&deliver(&mut ours, &records, now).events());
    (ours, peer)
}

/// Sends a get-config from our client and lets the peer read it; returns its message-id.
fn send_get_config(ours: &mut TlsSession, peer: &mut Peer, now: Instant) -> MessageId {
    let id = ours
        .session_mut()
        .send_rpc(&GetConfig::new(Datastore::Running), now)
        .expect("established");
    peer.receive(&drain(ours, now).ciphertext())
        .expect("the peer accepts our rpc");
    let rpc = peer.next_message().expect("the rpc reached the peer");
    assert_eq!(message_id(&rpc), Some(id.to_string().as_str()), "{rpc}");
    id
}

// ---------------------------------------------------------------------------------------------
// 1. Many tiny records in one delivery

/// The peer cuts its hello into 64-byte records (`max_fragment_size`) and all of them arrive
/// in ONE read. A client that decrypts one record per readiness event sees the first few
/// dozen bytes of the hello and waits forever for the socket, which stays silent.
#[test]
fn hello_in_tiny_fragment_records_in_one_delivery_establishes() {
    let now = Instant::now();
    let pki = pki();
    let mut config = (*pki.server_config(true)).clone();
    config.max_fragment_size = Some(64);
    let mut peer = Peer::server(Arc::new(config));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let hello = peer_hello();
    let records = peer.seal(&hello);
    let count = count_tls_records(&records);
    assert!(
        count >= hello.len() / 64,
        "only {count} records for {} bytes",
        hello.len()
    );

    assert_established(&deliver(&mut ours, &records, now).events());
}

/// The same with one `writer()` call per plaintext byte: one record per byte of the hello,
/// all in ONE delivery.
#[test]
fn hello_written_one_byte_per_record_in_one_delivery_establishes() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let hello = peer_hello();
    let records = peer.seal_bytewise(&hello);
    assert_eq!(count_tls_records(&records), hello.len());

    assert_established(&deliver(&mut ours, &records, now).events());
}

// ---------------------------------------------------------------------------------------------
// 2. One large record over many deliveries

/// A hello of about 15 KiB in ONE record, delivered one byte per call: nothing may happen
/// before the record's last byte, and Established must come out with exactly that byte,
/// without any further input (a loop that waits for "more data" after the record completes
/// hangs here).
#[test]
fn big_hello_in_one_record_fed_bytewise_establishes_at_its_last_byte() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let hello = big_peer_hello(15 * 1024);
    assert!(hello.len() < 16 * 1024);
    let records = peer.seal(&hello);
    assert_eq!(count_tls_records(&records), 1);

    let events = deliver_bytewise(&mut ours, &records, now);
    assert_eq!(events.len(), 1, "{events:?}");
    let (at, event) = &events[0];
    assert_eq!(
        *at,
        records.len() - 1,
        "Established before the record was complete"
    );
    assert_established(std::slice::from_ref(event));
    assert!(ours
        .session()
        .peer_capabilities()
        .contains_uri("urn:example:yang:m0000?module=m0000&revision=2026-01-01"));
}

/// A reply of more than 40 KiB spans several maximum-size records; fed one byte per call it
/// must come out exactly when the last byte of the last record arrives.
#[test]
fn reply_over_several_full_records_fed_bytewise_arrives_at_its_last_byte() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let id = send_get_config(&mut ours, &mut peer, now);

    let body = data_body(Hostile::Dribble, 0);
    let records = peer.seal(&reply_to(id, &body));
    assert!(
        count_tls_records(&records) >= 3,
        "{} records",
        count_tls_records(&records)
    );

    let events = deliver_bytewise(&mut ours, &records, now);
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        (at, Event::Reply { id: got, reply }) => {
            assert_eq!(
                *at,
                records.len() - 1,
                "the reply came before its last byte"
            );
            assert_eq!(*got, id);
            let data = reply.data().expect("a <data> reply");
            assert!(data.as_str().contains("grüße aus dem testkit"));
        }
        other => panic!("expected the reply, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Two messages in one record

/// The reply and a notification share ONE record, delivered in one call: a client that stops
/// after the first complete message strands the notification until the peer speaks again.
#[test]
fn reply_and_notification_in_one_record_both_arrive() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let id = send_get_config(&mut ours, &mut peer, now);

    let mut both = reply_to(id, &data_body(Hostile::Normal, 0));
    both.extend(notification());
    let records = peer.seal(&both);
    assert_eq!(count_tls_records(&records), 1);

    match deliver(&mut ours, &records, now).events().as_slice() {
        [Event::Reply { id: got, .. }, Event::Notification(n)] => {
            assert_eq!(*got, id);
            assert_eq!(n.event_time, "2026-01-01T00:00:00Z");
        }
        other => panic!("expected the reply and the notification, got {other:?}"),
    }
}

/// The hello (end-of-message framing) and a notification (chunked: the framing changes in
/// the middle of the record) in ONE record, delivered in one call.
#[test]
fn hello_and_notification_in_one_record_both_arrive() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let mut both = peer_hello();
    both.extend(notification());
    let records = peer.seal(&both);
    assert_eq!(count_tls_records(&records), 1);

    let events = deliver(&mut ours, &records, now).events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_established(&events[..1]);
    assert!(matches!(&events[1], Event::Notification(_)), "{events:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. The handshake's last flight and the hello in one delivery

/// TLS 1.2: the server's last flight (ChangeCipherSpec, Finished) and its hello arrive in ONE
/// read. Our side is still handshaking when the read arrives; the drain has to go on past the
/// handshake's end and decrypt the application data behind it (DESIGN.md, drain rule 4).
#[test]
fn tls12_final_flight_and_hello_in_one_delivery_establishes() {
    let now = Instant::now();
    let pki = pki();
    let tls12 = ClientConfig::builder_with_provider(certs::ring_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("ring supports TLS 1.2")
        .with_root_certificates(pki.root_store())
        .with_client_auth_cert(pki.client_chain(), pki.client_key_der())
        .expect("the client key matches");
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(Arc::new(tls12), now);

    let mut delivery = handshake_held(&mut ours, &mut peer, now);
    assert!(
        ours.is_handshaking(),
        "TLS 1.2: we still wait for the server's Finished"
    );
    let handshake_records = count_tls_records(&delivery);
    delivery.extend(peer.seal(&peer_hello()));
    assert!(count_tls_records(&delivery) > handshake_records);

    let out = deliver(&mut ours, &delivery, now);
    assert_eq!(
        ours.tls().protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_established(&out.events());
    // Our hello could only leave once the handshake was done: it must be in this output.
    peer.receive(&out.ciphertext()).expect("valid records");
    assert!(peer.next_message().expect("our hello").contains("<hello"));
}

/// TLS 1.3 with mutual authentication: rustls sends no 0.5-RTT data when it asks for a client
/// certificate, so the server's last output is its session tickets (post-handshake messages).
/// The tickets and the hello arrive in ONE read.
#[test]
fn tls13_session_tickets_and_hello_in_one_delivery_establishes() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);

    let mut delivery = handshake_held(&mut ours, &mut peer, now);
    assert_eq!(
        ours.tls().protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
    assert!(
        count_tls_records(&delivery) >= 1,
        "the server sends session tickets"
    );
    delivery.extend(peer.seal(&peer_hello()));

    assert_established(&deliver(&mut ours, &delivery, now).events());
}

/// TLS 1.3 without client authentication and with `send_half_rtt_data`: rustls lets the
/// server send application data right behind its first flight (0.5-RTT), before it has seen
/// our Finished. So ServerHello ... Finished AND the hello arrive in ONE read, which is the
/// read that also completes our handshake.
#[test]
fn tls13_first_flight_and_half_rtt_hello_in_one_delivery_establishes() {
    let now = Instant::now();
    let pki = pki();
    let mut config = (*pki.server_config(false)).clone();
    config.send_half_rtt_data = true;
    let mut peer = Peer::server(Arc::new(config));
    let mut ours = our_client(pki.client_config(true), now);

    let client_hello = drain(&mut ours, now).ciphertext();
    peer.receive(&client_hello).expect("a valid ClientHello");
    let mut delivery = peer.flush();
    let hello_records = peer.seal(&peer_hello());
    assert!(
        !hello_records.is_empty(),
        "rustls sends the hello as 0.5-RTT data"
    );
    assert!(
        peer.tls.is_handshaking(),
        "the peer has not seen our Finished"
    );
    delivery.extend(hello_records);

    let out = deliver(&mut ours, &delivery, now);
    assert!(!ours.is_handshaking());
    assert_established(&out.events());
    peer.receive(&out.ciphertext())
        .expect("our Finished and hello");
    assert!(!peer.tls.is_handshaking());
    assert!(peer.next_message().expect("our hello").contains("<hello"));
}

// ---------------------------------------------------------------------------------------------
// 5. The drain invariant, for any split

/// Runs the whole conversation with the peer's ciphertext cut at arbitrary offsets (handshake
/// flights included). After every delivery and drain, [`drain`] checks that nothing waits in
/// rustls, and here the events seen so far must be exactly those of the messages whose last
/// record has completely arrived: never later (the hang), never earlier.
fn check_drain_invariant(fragment: Option<usize>, bytewise_hello: bool, cuts: &[usize]) {
    let now = Instant::now();
    let pki = pki();
    let mut config = (*pki.server_config(true)).clone();
    config.max_fragment_size = fragment;
    let mut peer = Peer::server(Arc::new(config));
    let mut ours = our_client(pki.client_config(true), now);
    let mut sizes = cuts.iter().copied().cycle();

    // The handshake, each of the peer's flights cut up.
    let mut to_peer = Vec::new();
    let mut flights = 0;
    let tickets = loop {
        to_peer.extend(drain(&mut ours, now).ciphertext());
        peer.receive(&std::mem::take(&mut to_peer))
            .expect("the peer accepts our handshake");
        let flight = peer.flush();
        if !peer.tls.is_handshaking() {
            break flight;
        }
        flights += 1;
        assert!(flights < 10, "the handshake does not finish");
        for piece in pieces(&flight, &mut sizes) {
            let out = deliver(&mut ours, piece, now);
            assert!(out.events().is_empty(), "{out:?}");
            to_peer.extend(out.ciphertext());
        }
    };

    // The peer's stream from here on, and where each event becomes due.
    let mut stream = tickets;
    let mut due: Vec<(usize, &str)> = Vec::new();
    let hello = peer_hello();
    let hello = if bytewise_hello {
        peer.seal_bytewise(&hello)
    } else {
        peer.seal(&hello)
    };
    stream.extend(hello);
    due.push((stream.len(), "established"));
    for message in [notification(), notification(), big_notification(20 * 1024)] {
        stream.extend(peer.seal(&message));
        due.push((stream.len(), "notification"));
    }
    peer.tls.send_close_notify();
    stream.extend(peer.flush());
    due.push((stream.len(), "closed eof"));

    let mut delivered = 0;
    let mut seen = Vec::new();
    let mut answer = Vec::new();
    for piece in pieces(&stream, &mut sizes) {
        let out = deliver(&mut ours, piece, now);
        delivered += piece.len();
        answer.extend(out.ciphertext());
        seen.extend(out.events().iter().map(|ev| match ev {
            Event::Established { .. } => "established",
            Event::Notification(_) => "notification",
            Event::Closed {
                reason: CloseReason::Eof,
            } => "closed eof",
            other => panic!("unexpected event {other:?}"),
        }));
        let expected: Vec<&str> = due
            .iter()
            .filter(|(end, _)| *end <= delivered)
            .map(|(_, kind)| *kind)
            .collect();
        assert_eq!(
            seen,
            expected,
            "after {delivered} of {} bytes",
            stream.len()
        );
    }
    // We answered the peer's close_notify with ours.
    let state = peer.receive(&answer).expect("valid records");
    assert!(state.peer_has_closed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// [`check_drain_invariant`] with random record sizes, hello packing and delivery cuts.
    #[test]
    fn drain_invariant_holds_for_any_split(
        fragment in prop::option::of(32usize..=600),
        bytewise_hello in any::<bool>(),
        // Pieces from single bytes to several records (rustls reads at most a few KiB per
        // read_tls call, so large pieces check that all of a delivery is fed).
        cuts in prop::collection::vec(
            prop_oneof![1usize..=16, 17usize..=800, 801usize..=40_000],
            1..24,
        ),
    ) {
        check_drain_invariant(fragment, bytewise_hello, &cuts);
    }
}

/// The extremes the property may not hit: everything in one delivery, and one byte at a time.
#[test]
fn drain_invariant_holds_whole_and_bytewise() {
    check_drain_invariant(None, false, &[usize::MAX]);
    check_drain_invariant(Some(32), true, &[usize::MAX]);
    check_drain_invariant(Some(100), false, &[1]);
}

// ---------------------------------------------------------------------------------------------
// 6. TLS errors and EOF

/// A peer that is not speaking TLS at all (an SSH server on the port): the error is returned,
/// the alert goes out, then `Closed` with the TLS error; later input reports it again.
#[test]
fn garbage_instead_of_tls_sends_an_alert_then_closes() {
    let garbage: [&[u8]; 2] = [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        &[
            0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x42, 0x00, 0xff, 0x10, 0x20, 0x30, 0x99, 0x01,
        ],
    ];
    for bytes in garbage {
        let now = Instant::now();
        let mut ours = our_client(pki().client_config(true), now);
        let client_hello = drain(&mut ours, now).ciphertext();
        assert!(!client_hello.is_empty());

        let err = ours
            .handle_ciphertext(bytes, now)
            .expect_err("garbage is refused");
        assert!(matches!(err, ProtocolError::Tls(_)), "{err:?}");
        let out = drain(&mut ours, now);
        let (transmit, closed) = out.transmit_and_closed_positions();
        assert!(
            transmit.is_some() && transmit < closed,
            "alert before Closed: {out:?}"
        );
        // Before the handshake, alerts are plaintext records: content type 21.
        assert_eq!(out.ciphertext().first(), Some(&21), "{out:?}");
        let what = closed_tls_error(&out);
        assert_eq!(err.to_string(), format!("TLS: {what}"));
        assert_eq!(ours.handle_ciphertext(b"more", now), Err(err));
        assert!(drain(&mut ours, now).outputs.is_empty());
    }
}

/// A forged application-data record after the handshake: bad_record_mac goes to the peer
/// (encrypted) before `Closed`.
#[test]
fn corrupt_record_after_established_sends_bad_record_mac_then_closes() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let mut forged = vec![23, 3, 3, 0, 40];
    forged.extend((0u8..40).map(|i| i.wrapping_mul(37)));

    let err = ours
        .handle_ciphertext(&forged, now)
        .expect_err("a forged record is refused");
    assert!(matches!(err, ProtocolError::Tls(_)), "{err:?}");
    let out = drain(&mut ours, now);
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(
        transmit.is_some() && transmit < closed,
        "alert before Closed: {out:?}"
    );
    closed_tls_error(&out);
    assert_eq!(
        peer.receive(&out.ciphertext()),
        Err(rustls::Error::AlertReceived(AlertDescription::BadRecordMac))
    );
}

/// A valid notification record and a forged record in ONE delivery: what was decrypted before
/// the bad record is still delivered, then the alert, then `Closed`.
#[test]
fn records_before_a_corrupt_record_in_the_same_delivery_are_delivered() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let mut delivery = peer.seal(&notification());
    delivery.extend([23, 3, 3, 0, 40]);
    delivery.extend((0u8..40).map(|i| i.wrapping_mul(37)));

    let err = ours
        .handle_ciphertext(&delivery, now)
        .expect_err("the forged record is refused");
    let out = drain(&mut ours, now);
    match out.events().as_slice() {
        [Event::Notification(_), Event::Closed {
            reason: CloseReason::Protocol(e),
        }] => assert_eq!(*e, err),
        other => panic!("expected the notification, then Closed, got {other:?}"),
    }
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(transmit.is_some() && transmit < closed, "{out:?}");
}

/// EOF while the handshake is still running is a TLS error, not a clean EOF.
#[test]
fn eof_during_the_handshake_is_a_tls_error() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    peer.receive(&drain(&mut ours, now).ciphertext())
        .expect("a valid ClientHello");
    let flight = peer.flush();
    // Half of the server's first flight, then the socket ends.
    ours.handle_ciphertext(&flight[..flight.len() / 2], now)
        .expect("a valid prefix");
    assert!(drain(&mut ours, now).events().is_empty());
    ours.handle_eof(now);
    let out = drain(&mut ours, now);
    let what = closed_tls_error(&out);
    assert!(what.contains("handshake"), "{what}");
}

/// EOF after half of the hello's records (64-byte records: the cut falls between records):
/// the session holds part of a message, so it closes with TruncatedMessage, not a clean EOF.
#[test]
fn eof_after_half_of_the_hello_records_is_truncated_message() {
    let now = Instant::now();
    let pki = pki();
    let mut config = (*pki.server_config(true)).clone();
    config.max_fragment_size = Some(64);
    let mut peer = Peer::server(Arc::new(config));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let records = peer.seal(&peer_hello());
    let half = records.len() / 2;
    assert!(deliver(&mut ours, &records[..half], now)
        .events()
        .is_empty());
    ours.handle_eof(now);
    let out = drain(&mut ours, now);
    match closed_reason(&out) {
        CloseReason::Protocol(ProtocolError::TruncatedMessage { .. } | ProtocolError::Tls(_)) => {}
        other => panic!("expected a truncation, got {other:?}"),
    }
}

/// EOF in the middle of the hello's only record: nothing of the hello was decrypted, but a
/// record was cut short. That is a truncation (TLS error or TruncatedMessage), not the clean
/// "peer closed between messages" EOF.
#[test]
fn eof_in_the_middle_of_a_record_is_a_truncation() {
    let now = Instant::now();
    let pki = pki();
    let mut peer = Peer::server(pki.server_config(true));
    let mut ours = our_client(pki.client_config(true), now);
    handshake(&mut ours, &mut peer, now);

    let records = peer.seal(&peer_hello());
    assert_eq!(count_tls_records(&records), 1);
    let out = deliver(&mut ours, &records[..records.len() / 2], now);
    assert!(out.events().is_empty());
    ours.handle_eof(now);
    let out = drain(&mut ours, now);
    match closed_reason(&out) {
        CloseReason::Protocol(ProtocolError::TruncatedMessage { .. } | ProtocolError::Tls(_)) => {}
        other => panic!("expected a truncation, got {other:?}"),
    }
}

/// The same inside a reply after the session is established.
#[test]
fn eof_in_the_middle_of_a_reply_record_is_a_truncation() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let id = send_get_config(&mut ours, &mut peer, now);
    let records = peer.seal(&reply_to(id, "<ok/>"));
    assert!(deliver(&mut ours, &records[..records.len() - 3], now)
        .events()
        .is_empty());
    ours.handle_eof(now);
    let out = drain(&mut ours, now);
    match closed_reason(&out) {
        CloseReason::Protocol(ProtocolError::TruncatedMessage { .. } | ProtocolError::Tls(_)) => {}
        other => panic!("expected a truncation, got {other:?}"),
    }
}

/// TCP EOF without close_notify, between messages: an ordinary end of session.
#[test]
fn eof_between_messages_without_close_notify_is_eof() {
    let now = Instant::now();
    let (mut ours, _peer) = established_client(now);
    ours.handle_eof(now);
    let out = drain(&mut ours, now);
    assert_eq!(
        out.events(),
        [Event::Closed {
            reason: CloseReason::Eof
        }]
    );
}

/// The peer's close_notify, delivered right behind a notification: the notification comes
/// out, then `Closed { Eof }`, and our own close_notify is sent before `Closed`.
#[test]
fn close_notify_from_the_peer_is_eof_and_answered() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let mut delivery = peer.seal(&notification());
    peer.tls.send_close_notify();
    delivery.extend(peer.flush());

    let out = deliver(&mut ours, &delivery, now);
    match out.events().as_slice() {
        [Event::Notification(_), Event::Closed {
            reason: CloseReason::Eof,
        }] => {}
        other => panic!("expected the notification and Closed(Eof), got {other:?}"),
    }
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(transmit.is_some() && transmit < closed, "{out:?}");
    let state = peer.receive(&out.ciphertext()).expect("valid records");
    assert!(state.peer_has_closed());
}

/// Server role, RFC 7589: a client without a certificate is refused, and the error says why.
#[test]
fn server_refuses_a_client_without_certificate() {
    let now = Instant::now();
    let pki = pki();
    let mut ours = our_server(pki.server_config(true), now);
    let mut peer = Peer::client(pki.client_config(false));

    let err = run_handshake_to_failure(&mut ours, &mut peer, now);
    let out = drain(&mut ours, now);
    let what = closed_tls_error(&out);
    assert_eq!(err.to_string(), format!("TLS: {what}"));
    assert!(what.contains("certificate"), "{what}");
    // The rustls error itself is kept, as the error's source (issue 11 item 9).
    let ProtocolError::Tls(tls) = &err else {
        panic!("{err:?}")
    };
    assert!(tls.rustls_error().is_some(), "{tls:?}");
    let client_error = netconf_proto::Error::from(err.clone());
    let source = std::error::Error::source(&client_error).expect("a source");
    assert!(
        std::error::Error::source(source)
            .is_some_and(|s| s.downcast_ref::<rustls::Error>().is_some()),
        "{client_error:?}"
    );
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(transmit.is_some() && transmit < closed, "{out:?}");
    assert!(
        matches!(
            peer.receive(&out.ciphertext()),
            Err(rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            ))
        ),
        "the client hears why"
    );
}

/// Server role: a client certificate from another CA is refused.
#[test]
fn server_refuses_a_client_certificate_from_another_ca() {
    let now = Instant::now();
    let pki = pki();
    let other = Pki::other_ca();
    let mut ours = our_server(pki.server_config(true), now);
    let mut peer = Peer::client(certs::client_config_trusting(pki, Some(&other)));

    let err = run_handshake_to_failure(&mut ours, &mut peer, now);
    let out = drain(&mut ours, now);
    let what = closed_tls_error(&out);
    assert_eq!(err.to_string(), format!("TLS: {what}"));
    assert!(what.contains("certificate"), "{what}");
}

/// Client role: a server certificate from a CA we do not trust is refused.
#[test]
fn client_refuses_a_server_certificate_from_another_ca() {
    let now = Instant::now();
    let pki = pki();
    let other = Pki::other_ca();
    let mut ours = our_client(certs::client_config_trusting(&other, Some(pki)), now);
    let mut peer = Peer::server(pki.server_config(true));

    let err = run_handshake_to_failure(&mut ours, &mut peer, now);
    let out = drain(&mut ours, now);
    let what = closed_tls_error(&out);
    assert_eq!(err.to_string(), format!("TLS: {what}"));
    assert!(what.contains("certificate"), "{what}");
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(transmit.is_some() && transmit < closed, "{out:?}");
    assert!(
        peer.receive(&out.ciphertext()).is_err(),
        "the server hears the alert"
    );
}

/// Shuttles the handshake until our side refuses it; returns the error.
fn run_handshake_to_failure(ours: &mut TlsSession, peer: &mut Peer, now: Instant) -> ProtocolError {
    for _ in 0..10 {
        let out = drain(ours, now);
        assert!(out.events().is_empty(), "{out:?}");
        peer.receive(&out.ciphertext())
            .expect("the peer accepts our handshake");
        let back = peer.flush();
        if let Err(e) = ours.handle_ciphertext(&back, now) {
            return e;
        }
    }
    panic!("the handshake did not fail");
}

// ---------------------------------------------------------------------------------------------
// TLS messages that need an answer, and the server role

/// The peer requests a TLS 1.3 KeyUpdate and sends a notification behind it, in ONE
/// delivery: the notification, encrypted under the new key, must come out of this drain.
/// rustls answers the KeyUpdate with our next record (RFC 8446 section 4.6.3 only requires
/// it before our next application data), so nothing is stranded meanwhile: [`drain`] checks
/// that rustls has nothing to send, and our next rpc carries the answer.
#[test]
fn key_update_and_notification_in_one_delivery() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    peer.tls.refresh_traffic_keys().expect("TLS 1.3");
    let mut delivery = peer.flush();
    delivery.extend(peer.seal(&notification()));

    let out = deliver(&mut ours, &delivery, now);
    assert!(
        matches!(out.events().as_slice(), [Event::Notification(_)]),
        "{out:?}"
    );
    peer.receive(&out.ciphertext()).expect("valid records");

    // Both directions work under the new keys.
    let id = send_get_config(&mut ours, &mut peer, now);
    let records = peer.seal(&reply_to(id, "<ok/>"));
    let events = deliver(&mut ours, &records, now).events();
    assert!(
        matches!(events.as_slice(), [Event::Reply { id: got, .. }] if *got == id),
        "{events:?}"
    );
}

/// Server role: the client's hello and its first rpc in ONE record (RFC 6242 lets a client
/// send an rpc right behind its hello), delivered together with its final handshake flight.
#[test]
fn server_gets_client_hello_and_first_rpc_in_one_record() {
    let now = Instant::now();
    let (mut ours, mut peer, mut delivery) = server_handshake_held(now);
    let mut both = client_hello();
    let rpc = format!(
        "<rpc message-id=\"101\" xmlns=\"{NETCONF_NS}\"><get-config><source><running/></source>\
         </get-config></rpc>"
    );
    both.extend(frame(rpc.as_bytes(), Framing::Chunked));
    let records = peer.seal(&both);
    assert_eq!(count_tls_records(&records), 1);
    delivery.extend(records);

    let out = deliver(&mut ours, &delivery, now);
    let request = match out.events().as_slice() {
        [Event::Established {
            session_id: 7,
            framing: WireFraming::Chunked,
            ..
        }, Event::Rpc { id, request }] => (*id, request.clone()),
        other => panic!("expected Established and the rpc, got {other:?}"),
    };
    let (request_id, request) = request;
    assert_eq!(request.message_id, "101");
    assert!(request.operation.is_base("get-config"));

    // Our hello left with the handshake; our reply follows it.
    peer.receive(&out.ciphertext()).expect("valid records");
    let reply = Reply::data("<top xmlns=\"urn:example\"/>").expect("well-formed");
    ours.session_mut()
        .send_reply(request_id, reply)
        .expect("a pending request");
    peer.receive(&drain(&mut ours, now).ciphertext())
        .expect("valid records");
    let hello = peer.next_message().expect("our hello");
    assert!(hello.contains("<session-id>7</session-id>"), "{hello}");
    let reply = peer.next_message().expect("our reply");
    assert_eq!(message_id(&reply), Some("101"), "{reply}");
    assert!(reply.contains("urn:example"), "{reply}");
}

// ---------------------------------------------------------------------------------------------
// 7. Our own close

/// close(): `<close-session>` goes out, and only when its `<ok/>` arrives does our
/// close_notify go out, before `Closed { CloseSession }`, so an adapter that writes every
/// Transmit before acting on Closed ends the TLS session cleanly.
#[test]
fn our_close_sends_close_notify_before_closed() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);

    let id = ours
        .session_mut()
        .close(now)
        .expect("a close-session is sent");
    let out = drain(&mut ours, now);
    assert!(out.events().is_empty(), "{out:?}");
    let state = peer.receive(&out.ciphertext()).expect("valid records");
    assert!(!state.peer_has_closed(), "no close_notify before the <ok/>");
    let rpc = peer.next_message().expect("the close-session");
    assert!(rpc.contains("close-session"), "{rpc}");
    assert_eq!(message_id(&rpc), Some(id.to_string().as_str()));

    let records = peer.seal(&reply_to(id, "<ok/>"));
    let out = deliver(&mut ours, &records, now);
    match out.events().as_slice() {
        [Event::Reply { id: got, .. }, Event::Closed {
            reason: CloseReason::CloseSession,
        }] => assert_eq!(*got, id),
        other => panic!("expected the <ok/> and Closed(CloseSession), got {other:?}"),
    }
    let (transmit, closed) = out.transmit_and_closed_positions();
    assert!(
        transmit.is_some() && transmit < closed,
        "close_notify before Closed: {out:?}"
    );
    let state = peer.receive(&out.ciphertext()).expect("valid records");
    assert!(state.peer_has_closed(), "the peer saw our close_notify");
}

// ---------------------------------------------------------------------------------------------
// Pipelined messages leave together

/// RPCs queued together leave in ONE transmit, so one write sends them all; the peer reads
/// every one, in order. The async client relies on it: it takes all its pending commands in
/// one turn of its loop, so 64 pipelined requests cost one write, not 64.
#[test]
fn rpcs_queued_together_leave_in_one_transmit() {
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let ids: Vec<MessageId> = (0..64)
        .map(|_| {
            ours.session_mut()
                .send_rpc(&GetConfig::new(Datastore::Running), now)
                .expect("established")
        })
        .collect();
    let drained = drain(&mut ours, now);
    assert_eq!(drained.transmits(), 1, "{:?}", drained.outputs.len());
    peer.receive(&drained.ciphertext())
        .expect("the peer accepts our records");
    for id in ids {
        let rpc = peer.next_message().expect("every rpc reached the peer");
        assert_eq!(message_id(&rpc), Some(id.to_string().as_str()), "{rpc}");
    }
    assert!(peer.next_message().is_none());
}

/// Replies answered together leave in ONE transmit too, whatever pieces the session hands
/// over (a reply's envelope and a `<data>` payload are separate pieces): a server answering
/// pipelined requests writes once per turn, not once per piece.
#[test]
fn replies_answered_together_leave_in_one_transmit() {
    let now = Instant::now();
    let (mut ours, mut peer, mut delivery) = server_handshake_held(now);
    let mut wire = client_hello();
    for id in 1..=16 {
        let rpc = format!(
            "<rpc message-id=\"{id}\" xmlns=\"{NETCONF_NS}\"><get-config><source><running/>\
             </source></get-config></rpc>"
        );
        wire.extend(frame(rpc.as_bytes(), Framing::Chunked));
    }
    delivery.extend(peer.seal(&wire));
    let out = deliver(&mut ours, &delivery, now);
    peer.receive(&out.ciphertext()).expect("valid records");
    assert!(peer.next_message().expect("our hello").contains("<hello"));
    let requests: Vec<_> = out
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Rpc { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 16);
    // A payload the session queues as its own piece, not copied into its buffer.
    let payload = bytes::Bytes::from(format!("<top xmlns=\"urn:x\">{}</top>", "x".repeat(70_000)));
    for id in &requests {
        let reply = Reply::data_unchecked(payload.clone());
        ours.session_mut()
            .send_reply(*id, reply)
            .expect("a pending request");
    }
    let drained = drain(&mut ours, now);
    let transmits = drained.transmits();
    // 16 replies of ~70 KB: about 1.1 MB of plaintext, at most 128 KiB per transmit.
    let plaintext = 16 * payload.len();
    assert!(
        transmits <= plaintext / (128 * 1024) + 2,
        "{transmits} transmits for {plaintext} bytes"
    );
    peer.receive(&drained.ciphertext()).expect("valid records");
    for id in 1..=16 {
        let reply = peer.next_message().expect("every reply");
        assert_eq!(message_id(&reply), Some(id.to_string().as_str()));
    }
}

/// A small reply's transmit is a slice of a small buffer the session reuses, not a whole
/// transmit's worth of memory: each one used to be a fresh 132 KiB buffer, which per tiny
/// RPC cost the allocator growing and trimming its heap (page faults showed in a profile of
/// 64 threads calling), and then a copy of its own. Held transmits pin at most their
/// buffer, a few KiB; once they are dropped, the next ones reuse it without allocating.
/// Large transmits still fill up to 128 KiB of plaintext each.
#[test]
fn small_transmits_share_a_small_buffer_that_is_reused() {
    let now = Instant::now();
    let (mut ours, mut peer, mut delivery) = server_handshake_held(now);
    let mut wire = client_hello();
    // As many as a session takes pending (64).
    for id in 1..=64 {
        let rpc = format!(
            "<rpc message-id=\"{id}\" xmlns=\"{NETCONF_NS}\"><get-config><source><running/>\
             </source></get-config></rpc>"
        );
        wire.extend(frame(rpc.as_bytes(), Framing::Chunked));
    }
    delivery.extend(peer.seal(&wire));
    let out = deliver(&mut ours, &delivery, now);
    peer.receive(&out.ciphertext()).expect("valid records");
    let requests: Vec<_> = out
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Rpc { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let mut requests = requests.into_iter();
    // One reply at a time: one small transmit each.
    let mut answer = |ours: &mut TlsSession| {
        let id = requests.next().expect("a request left");
        ours.session_mut()
            .send_reply(id, Reply::Ok)
            .expect("a pending request");
        let mut transmits: Vec<_> = drain(ours, now)
            .outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::Transmit(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        assert_eq!(transmits.len(), 1, "one transmit per reply");
        let transmit = transmits.remove(0);
        assert!(
            transmit.len() < 512,
            "{} bytes for an <ok/> reply",
            transmit.len()
        );
        transmit
    };
    // Held, 30 transmits are cut from buffers one after another: each buffer spans a few
    // KiB, what a kept transmit may pin.
    let held: Vec<_> = (0..30).map(|_| answer(&mut ours)).collect();
    let mut buffers = vec![held[0].len()];
    let mut last_buffer = held[0].as_ptr();
    for pair in held.windows(2) {
        if pair[1].as_ptr() as usize == pair[0].as_ptr() as usize + pair[0].len() {
            *buffers.last_mut().expect("one") += pair[1].len();
        } else {
            buffers.push(pair[1].len());
            last_buffer = pair[1].as_ptr();
        }
    }
    assert!(
        buffers.len() > 1 && buffers.len() < 30,
        "shared buffers: {buffers:?}"
    );
    assert!(
        buffers.iter().all(|&spanned| spanned <= 8 * 1024),
        "bytes cut from each buffer: {buffers:?}"
    );
    for transmit in &held {
        peer.receive(transmit).expect("valid records");
    }
    drop(held);
    // Nothing holds the last buffer now. Replies taken one at a time, each transmit dropped
    // before the next, stay in it as it is used up and reclaimed: more than twice its size
    // passes through it without an allocation.
    let mut passed = 0;
    for _ in 0..34 {
        let next = answer(&mut ours);
        let offset = (next.as_ptr() as usize).wrapping_sub(last_buffer as usize);
        assert!(offset < 8 * 1024, "a transmit outside the reused buffer");
        passed += next.len();
        peer.receive(&next).expect("valid records");
    }
    assert!(passed > 2 * 2048, "{passed} bytes through one buffer");
    assert!(peer.next_message().expect("our hello").contains("<hello"));
    for _ in 0..64 {
        assert!(peer.next_message().expect("every reply").contains("<ok/>"));
    }
}

/// `poll_transmit` hands out ciphertext only, as much as one transmit holds each time, and
/// leaves the requests that arrived meanwhile for `poll_output`: a writing thread can
/// encrypt a large reply as the transport takes it (instead of all of it at once, a second
/// copy of the reply) without taking requests it could not act on.
#[test]
fn poll_transmit_encrypts_piece_by_piece_and_leaves_requests_for_poll_output() {
    let now = Instant::now();
    let (mut ours, mut peer, mut delivery) = server_handshake_held(now);
    let rpc = |n: u32| {
        frame(
            format!(
                "<rpc message-id=\"{n}\" xmlns=\"{NETCONF_NS}\"><get-config><source>\
                 <running/></source></get-config></rpc>"
            )
            .as_bytes(),
            Framing::Chunked,
        )
    };
    let mut wire = client_hello();
    wire.extend(rpc(1));
    delivery.extend(peer.seal(&wire));
    let out = deliver(&mut ours, &delivery, now);
    peer.receive(&out.ciphertext()).expect("valid records");
    let first = out
        .events()
        .iter()
        .find_map(|e| match e {
            Event::Rpc { id, .. } => Some(*id),
            _ => None,
        })
        .expect("the first request");
    assert!(peer.next_message().expect("our hello").contains("<hello"));

    let payload = "<x>".to_owned() + &"y".repeat(2 << 20) + "</x>";
    ours.session_mut()
        .send_reply(first, Reply::data_unchecked(payload.clone().into()))
        .expect("a pending request");
    // The second request arrives while the reply is still being written.
    ours.handle_ciphertext(&peer.seal(&rpc(2)), now)
        .expect("valid ciphertext");

    let mut transmits = 0;
    while let Some(ciphertext) = ours.poll_transmit() {
        assert!(
            ciphertext.len() < 140 * 1024,
            "one transmit holds {} bytes",
            ciphertext.len()
        );
        transmits += 1;
        peer.receive(&ciphertext).expect("valid records");
    }
    assert!(transmits >= 16, "2 MiB in {transmits} transmits");
    let reply = peer
        .next_message()
        .expect("the whole reply reached the peer");
    assert!(reply.contains(&payload), "the reply carries the payload");
    assert!(
        message_id(&reply) == Some("1"),
        "the reply answers the first request"
    );

    // Nothing was lost: the second request is still there for poll_output.
    let rest = drain(&mut ours, now);
    assert_eq!(
        rest.transmits(),
        0,
        "everything was written by poll_transmit"
    );
    let ids: Vec<String> = rest
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Rpc { request, .. } => Some(request.message_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["2"], "the second request, after the reply");
}

/// A client sending a large `<edit-config>` whose configuration is shared bytes: the request
/// leaves as the very bytes a copy would have made (one chunk, the configuration whole), and
/// while most of it still waits to be encrypted, `poll_event` hands out the reply to an
/// earlier request, leaving the rest of the request for `poll_transmit`: a client that
/// encrypts a large request as the transport takes it does not hold replies behind it.
#[test]
fn poll_event_takes_a_reply_while_a_large_request_waits_to_be_encrypted() {
    use netconf_proto::operations::{EditConfig, InlineConfig};
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let first = send_get_config(&mut ours, &mut peer, now);

    let content = "<top xmlns=\"urn:example:big\">".to_owned()
        + &"<leaf>yyyyyy</leaf>\n".repeat(100_000)
        + "</top>";
    let edit = EditConfig::new(
        Datastore::Candidate,
        InlineConfig::new(content.clone()).expect("well-formed"),
    );
    let second = ours
        .session_mut()
        .send_rpc(&edit, now)
        .expect("established");
    let ciphertext = ours.poll_transmit().expect("the request's first transmit");
    assert!(
        ciphertext.len() < 140 * 1024,
        "one transmit holds {}",
        ciphertext.len()
    );
    peer.receive(&ciphertext).expect("valid records");

    // The reply to the get-config arrives while the rest of the request waits.
    ours.handle_ciphertext(&peer.seal(&reply_to(first, "<data/>")), now)
        .expect("valid ciphertext");
    match ours.poll_event() {
        Some(Event::Reply { id, .. }) => assert_eq!(id, first),
        other => panic!("expected the get-config's reply, got {other:?}"),
    }
    assert!(ours.poll_event().is_none(), "nothing else arrived");

    let mut transmits = 1;
    while let Some(ciphertext) = ours.poll_transmit() {
        transmits += 1;
        peer.receive(&ciphertext).expect("valid records");
    }
    assert!(transmits >= 10, "2 MB in {transmits} transmits");
    let request = peer
        .next_message()
        .expect("the whole request reached the peer");
    assert_eq!(message_id(&request), Some(second.to_string().as_str()));
    let expected = format!(
        "<rpc message-id=\"{second}\" xmlns=\"{NETCONF_NS}\"><edit-config><target><candidate/>\
         </target><config>{content}</config></edit-config></rpc>"
    );
    assert_eq!(request, expected, "the request, framed as one message");
    assert_eq!(
        drain(&mut ours, now).transmits(),
        0,
        "nothing left to write"
    );
}

/// The session ends (the peer breaks the framing) while most of a large request still
/// waits to be encrypted, and the client takes the end with `poll_event`: what was already
/// encrypted leaves, then the close_notify, and nothing after it. rustls would encrypt
/// the rest of the request after its own close_notify (application data after the alert,
/// which peers reject) if the session did not drop it.
#[test]
fn a_session_ending_in_the_middle_of_a_request_sends_nothing_after_close_notify() {
    use netconf_proto::operations::{EditConfig, InlineConfig};
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let content = "<top xmlns=\"urn:example:big\">".to_owned()
        + &"<leaf>yyyyyy</leaf>\n".repeat(100_000)
        + "</top>";
    let edit = EditConfig::new(
        Datastore::Candidate,
        InlineConfig::new(content).expect("well-formed"),
    );
    ours.session_mut()
        .send_rpc(&edit, now)
        .expect("established");
    let first = ours.poll_transmit().expect("the request's first transmit");
    peer.receive(&first).expect("valid records");

    let broken = ours.handle_ciphertext(&peer.seal(b"\n#not-a-size\n"), now);
    assert!(broken.is_err(), "a framing error: {broken:?}");
    let closed =
        std::iter::from_fn(|| ours.poll_event()).find(|e| matches!(e, Event::Closed { .. }));
    assert!(closed.is_some(), "the broken framing ends the session");

    let rest = drain(&mut ours, now);
    assert!(
        rest.ciphertext().len() < 140 * 1024,
        "{} bytes of ciphertext after the session ended (the request was 2 MB)",
        rest.ciphertext().len()
    );
    let state = peer
        .receive(&rest.ciphertext())
        .expect("valid records, in order");
    assert!(state.peer_has_closed(), "the close_notify arrived last");
    assert_eq!(drain(&mut ours, now).transmits(), 0, "nothing after it");
}

/// Three requests queued at once, large, small, large: `output_handed_out` reaches the
/// small one's position (`output_position` right after it was queued) once all of it has
/// left in the transmits handed out (the peer has it whole), and before the second large
/// one has: a caller waiting for its own request to be written waits for nothing queued
/// behind it.
#[test]
fn output_handed_out_passes_a_request_once_it_has_left_whole() {
    use netconf_proto::operations::{EditConfig, InlineConfig};
    let now = Instant::now();
    let (mut ours, mut peer) = established_client(now);
    let large = || {
        let content = "<top xmlns=\"urn:example:big\">".to_owned()
            + &"<leaf>yyyyyy</leaf>\n".repeat(50_000)
            + "</top>";
        EditConfig::new(
            Datastore::Candidate,
            InlineConfig::new(content).expect("well-formed"),
        )
    };
    let start = ours.session().output_position();
    ours.session_mut()
        .send_rpc(&large(), now)
        .expect("established");
    let small = ours
        .session_mut()
        .send_rpc(&GetConfig::new(Datastore::Running), now)
        .expect("established");
    let small_end = ours.session().output_position();
    ours.session_mut()
        .send_rpc(&large(), now)
        .expect("established");
    let all_end = ours.session().output_position();
    assert!(start < small_end && small_end + 1_000_000 < all_end);

    let small_id = small.to_string();
    let mut whole = Vec::new();
    let mut passed_small_at = None;
    while let Some(ciphertext) = ours.poll_transmit() {
        peer.receive(&ciphertext).expect("valid records");
        while let Some(message) = peer.next_message() {
            whole.push(message_id(&message).map(str::to_owned));
        }
        let handed_out = ours.output_handed_out();
        if handed_out >= small_end && passed_small_at.is_none() {
            passed_small_at = Some(handed_out);
            assert!(
                whole.contains(&Some(small_id.clone())),
                "handed out past the small request ({handed_out} >= {small_end}) before the peer had it"
            );
        }
    }
    let passed = passed_small_at.expect("the small request was passed");
    assert!(
        passed < small_end + 300 * 1024,
        "passed at {passed}: long after the small request's end {small_end}"
    );
    assert_eq!(ours.output_handed_out(), all_end, "everything handed out");
    assert_eq!(whole.len(), 3);
}
