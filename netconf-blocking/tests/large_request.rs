//! A large request from the blocking client over TLS (a huge `<edit-config>`): it is
//! encrypted as the transport takes it, not all at once, and replies arriving meanwhile are
//! not held behind it.
//!
//! The peer is a minimal NETCONF-over-TLS server written here on rustls, which discards
//! what it reads and answers every `<rpc>` with `<ok/>` once the message has ended: one of
//! our servers would hold the whole request, and its memory would hide the client's. The
//! tests take turns (`TURN`): the memory test measures the whole process's peak.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use netconf_blocking::operations::{Datastore, EditConfig, GetConfig, InlineConfig};
use netconf_blocking::{Client, ClientOptions};
use netconf_proto::rustls::{ServerConfig, ServerConnection, StreamOwned};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::with_deadline;
use netconf_tests::hostile_tls::message_id;

const MIB: usize = 1024 * 1024;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The discarding server

const HELLO: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability>\
    <capability>urn:ietf:params:netconf:base:1.1</capability>\
    <capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>\
    </capabilities><session-id>7</session-id></hello>]]>]]>";

/// How the server holds back, at its first request.
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    /// It answers the first request, then reads nothing until released.
    AfterFirst,
    /// It reads the first request and the beginning of the next, stops reading, answers
    /// the first a little later (once the client, whose next request no longer leaves,
    /// has stalled), and reads nothing more until released.
    AnswerFirstLate,
}

/// One client at a time; every request answered `<ok/>`, held back as `hold` says (a peer
/// slow to read).
struct DiscardingServer {
    addr: SocketAddr,
    pki: Pki,
    release: Sender<()>,
    /// The bytes of each request's message (framing excluded), in order.
    thread: Option<JoinHandle<io::Result<Vec<u64>>>>,
}

impl DiscardingServer {
    fn start(hold: Hold) -> DiscardingServer {
        let pki = Pki::generate();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = pki.server_config(false);
        let (release, released) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept()?;
            serve(tcp, config, hold, released)
        });
        DiscardingServer {
            addr,
            pki,
            release,
            thread: Some(thread),
        }
    }

    fn client(&self) -> Client {
        let (addr, tls) = (self.addr.to_string(), self.pki.client_tls_options());
        Client::connect_tls_with(&addr, &tls, &ClientOptions::new()).unwrap()
    }

    /// The sizes of the requests the server received, once the client has gone.
    fn finish(mut self) -> Vec<u64> {
        let _ = self.release.send(());
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    hold: Hold,
    released: Receiver<()>,
) -> io::Result<Vec<u64>> {
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, tcp));
    tls.get_mut().write_all(HELLO.as_bytes())?;
    tls.get_mut().flush()?;
    let mut hello = Vec::new();
    while !hello.ends_with(b"]]>]]>") {
        if tls.read_until(b'>', &mut hello)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    let mut sizes = Vec::new();
    while let Some((head, size)) = read_message(&mut tls)? {
        let first = sizes.is_empty();
        sizes.push(size);
        if first && hold == Hold::AnswerFirstLate {
            tls.fill_buf()?; // the next request has begun
            std::thread::sleep(Duration::from_millis(500));
        }
        let head = String::from_utf8_lossy(&head);
        let id = message_id(&head).unwrap_or("0").to_owned();
        let reply = format!(
            "<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"{id}\"><ok/></rpc-reply>"
        );
        let framed = format!("\n#{}\n{reply}\n##\n", reply.len());
        tls.get_mut().write_all(framed.as_bytes())?;
        tls.get_mut().flush()?;
        if head.contains("<close-session") {
            tls.get_mut().conn.send_close_notify();
            tls.get_mut().flush()?;
            break;
        }
        if first {
            let _ = released.recv();
        }
    }
    Ok(sizes)
}

/// One chunked message, discarded as it comes but for its first 512 bytes; `None` at the
/// end of the stream between messages.
fn read_message(r: &mut impl BufRead) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut head = Vec::new();
    let mut size = 0u64;
    loop {
        let mut start = [0u8; 2];
        match r.read_exact(&mut start) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && size == 0 => return Ok(None),
            read => read?,
        }
        assert_eq!(&start, b"\n#", "a chunk header");
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line)?;
        if line == b"#\n" {
            return Ok(Some((head, size)));
        }
        let len: u64 = std::str::from_utf8(&line[..line.len() - 1])
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("a chunk size");
        let mut chunk = r.by_ref().take(len);
        let keep = (512 - head.len().min(512)).min(len as usize);
        let at = head.len();
        head.resize(at + keep, 0);
        chunk.read_exact(&mut head[at..])?;
        io::copy(&mut chunk, &mut io::sink())?;
        size += len;
    }
}

fn big_config(size: usize) -> InlineConfig {
    let mut xml = String::with_capacity(size + 64);
    xml.push_str("<top xmlns=\"urn:example:big\">");
    while xml.len() < size - 16 {
        xml.push_str("<leaf>yyyyyy</leaf>\n");
    }
    xml.push_str("</top>");
    InlineConfig::new(xml).unwrap()
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
        let client = server.client();
        // Warm up both ends (threads, TLS buffers) with a 1 MiB request, then measure.
        client
            .call(&EditConfig::new(Datastore::Candidate, big_config(MIB)))
            .unwrap();
        let config = big_config(64 * MIB);
        let peak = PeakRss::start();
        // The server reads nothing for a second, as a slow peer would: time enough for a
        // client that encrypts eagerly to encrypt all of it (about 0.1 s here).
        let release = server.release.clone();
        let releasing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let _ = release.send(());
        });
        client
            .call(&EditConfig::new(Datastore::Candidate, config))
            .unwrap();
        releasing.join().unwrap();
        let growth = peak.growth();
        eprintln!(
            "64 MiB edit-config: peak RSS {} KiB -> {} KiB (+{growth} KiB; HWM reset: {})",
            peak.before,
            peak.peak(),
            peak.reset
        );
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
        let client = server.client();
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
        server.release.send(()).unwrap();
        large.join().unwrap().unwrap();
        client.close().unwrap();
        let sizes = server.finish();
        assert!(
            sizes[1] > 32 * MIB as u64,
            "the request arrived whole: {sizes:?}"
        );
    });
}
