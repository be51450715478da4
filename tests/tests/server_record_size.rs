//! Our servers keep every TLS record within one 4096-byte read by default, so a client that
//! reads 4096 bytes per readiness event (ncclient) never strands the end of a reply inside its
//! TLS library. Counted on the wire, over a real socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use netconf_blocking::server::ServerOptions;
use netconf_blocking::tls::CLIENT_FRIENDLY_RECORD;
use netconf_blocking::{Reply, Server};
use netconf_tests::certs::Pki;
use netconf_tests::hostile_tls::TlsRecordCounter;
use rustls::pki_types::ServerName;

const CLIENT_HELLO: &str =
    "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>";
const GET: &str =
    "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get/></rpc>]]>]]>";

#[test]
fn every_server_record_fits_one_4096_byte_read() {
    let pki = Pki::generate();
    let data = format!("<big xmlns=\"urn:x\">{}</big>", "z".repeat(200_000));
    let reply = Reply::data(data).unwrap();
    let server = Server::new(ServerOptions::new(), move |_, _| reply.clone());
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .unwrap();

    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::ClientConnection::new(
        pki.client_config(true),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let mut counter = TlsRecordCounter::default();
    let mut plaintext = Vec::new();
    let mut sent_hello = false;
    let started = Instant::now();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&plaintext).contains("</rpc-reply>") {
        assert!(started.elapsed() < Duration::from_secs(5), "no reply");
        if !tls.is_handshaking() && !sent_hello {
            tls.writer().write_all(CLIENT_HELLO.as_bytes()).unwrap();
            tls.writer().write_all(GET.as_bytes()).unwrap();
            sent_hello = true;
        }
        while tls.wants_write() {
            tls.write_tls(&mut tcp).unwrap();
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "server closed early");
        counter.feed(&buf[..n]);
        let mut input = &buf[..n];
        while !input.is_empty() {
            tls.read_tls(&mut input).unwrap();
            tls.process_new_packets().unwrap();
            let _ = tls.reader().read_to_end(&mut plaintext);
        }
    }
    // Record overhead: 5 header bytes, and under TLS 1.3 a content-type byte and a 16-byte tag.
    assert!(
        counter.records() > 200_000 / CLIENT_FRIENDLY_RECORD,
        "{}",
        counter.records()
    );
    assert!(
        counter.largest_record() <= CLIENT_FRIENDLY_RECORD + 5 + 17,
        "largest record {} bytes",
        counter.largest_record()
    );
    server.shutdown();
}
