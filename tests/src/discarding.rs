//! A NETCONF-over-TLS server written on rustls alone that keeps nothing it reads: it
//! answers every `<rpc>` with `<ok/>` once the message has ended, discarding the content as
//! it comes. For tests of what a client's large request costs the client: one of our
//! servers would hold the whole request, and its memory would hide the client's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use netconf_proto::operations::InlineConfig;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::certs::Pki;
use crate::hostile_tls::message_id;

const HELLO: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
    <capability>urn:ietf:params:netconf:base:1.0</capability>\
    <capability>urn:ietf:params:netconf:base:1.1</capability>\
    <capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>\
    </capabilities><session-id>7</session-id></hello>]]>]]>";

/// How the server holds back, at its first request (a peer slow to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It answers the first request, then reads nothing until released.
    AfterFirst,
    /// It reads the first request and the beginning of the next, stops reading, answers
    /// the first half a second later (once a client whose next request no longer leaves
    /// has stalled), and reads nothing more until released.
    AnswerFirstLate,
    /// It reads the beginning of the first request (see [`DiscardingServer::wait_began`]),
    /// then nothing until released; then it serves as usual.
    UntilReleased,
    /// It reads the beginning of the first request, stops reading, half a second later
    /// answers with broken framing (which ends the session at the client), and reads
    /// nothing more until released.
    BreakFramingAtFirst,
}

/// One client, base:1.1; every request answered `<ok/>`, held back as [`Hold`] says.
pub struct DiscardingServer {
    addr: SocketAddr,
    pki: Pki,
    release: Sender<()>,
    began: Receiver<()>,
    thread: Option<JoinHandle<io::Result<Vec<u64>>>>,
}

impl std::fmt::Debug for DiscardingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscardingServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl DiscardingServer {
    /// Listens on 127.0.0.1 with a fresh PKI, for one connection.
    pub fn start(hold: Hold) -> DiscardingServer {
        let pki = Pki::generate();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let config = pki.server_config(false);
        let (release, released) = mpsc::channel();
        let (begin, began) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept()?;
            serve(tcp, config, hold, released, begin)
        });
        DiscardingServer {
            addr,
            pki,
            release,
            began,
            thread: Some(thread),
        }
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PKI whose CA signed the server's certificate (`client_tls_options()`).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// Lets a held server read again (see [`Hold`]); harmless otherwise.
    pub fn release(&self) {
        let _ = self.release.send(());
    }

    /// Waits until the first request has begun to arrive ([`Hold::UntilReleased`]).
    pub fn wait_began(&self) {
        self.began
            .recv()
            .expect("the server saw the first request begin");
    }

    /// Releases the server after `delay`, from a thread of its own.
    pub fn release_after(&self, delay: Duration) -> JoinHandle<()> {
        let release = self.release.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = release.send(());
        })
    }

    /// The size of each request's message (framing excluded), in order, once the client
    /// has closed the session.
    pub fn finish(mut self) -> Vec<u64> {
        self.release();
        let thread = self.thread.take().expect("finished once");
        thread
            .join()
            .expect("the server thread")
            .expect("the server's I/O")
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    hold: Hold,
    released: Receiver<()>,
    begin: Sender<()>,
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
    if hold == Hold::UntilReleased {
        tls.fill_buf()?;
        let _ = begin.send(());
        let _ = released.recv();
    }
    if hold == Hold::BreakFramingAtFirst {
        tls.fill_buf()?;
        // Once a client writing a large request has filled the socket's buffers.
        std::thread::sleep(Duration::from_millis(500));
        tls.get_mut().write_all(b"\n#not-a-chunk-size\n")?;
        tls.get_mut().flush()?;
        let _ = begin.send(());
        let _ = released.recv();
        return Ok(Vec::new());
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
        if first && hold != Hold::UntilReleased {
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
        if &start != b"\n#" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a chunk header",
            ));
        }
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line)?;
        if line == b"#\n" {
            return Ok(Some((head, size)));
        }
        let len: u64 = std::str::from_utf8(&line[..line.len().saturating_sub(1)])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a chunk size"))?;
        let mut chunk = r.by_ref().take(len);
        let keep = (512 - head.len().min(512)).min(len as usize);
        let at = head.len();
        head.resize(at + keep, 0);
        chunk.read_exact(&mut head[at..])?;
        io::copy(&mut chunk, &mut io::sink())?;
        size += len;
    }
}

/// A well-formed configuration of about `size` bytes, for `<edit-config>`.
pub fn big_config(size: usize) -> InlineConfig {
    let mut xml = String::with_capacity(size + 64);
    xml.push_str("<top xmlns=\"urn:example:big\">");
    while xml.len() < size - 16 {
        xml.push_str("<leaf>yyyyyy</leaf>\n");
    }
    xml.push_str("</top>");
    InlineConfig::new(xml).expect("well-formed")
}
