//! Issue 15 on each async runtime (tokio and smol: every test runs on both): replies
//! streamed through `Client::call_streamed` (a `DataStream`: an `AsyncRead`, and a `Stream`
//! of `Bytes`) and answers streamed by the `Server` from a `Stream` of pieces or an
//! `AsyncRead`, over real loopback TLS, SSH and plaintext TCP sockets. Each runtime's
//! tests read and source through its own I/O traits ([`Native`]): tokio's `AsyncRead` and
//! `Answer::tokio_reader` on tokio, futures-io's `AsyncRead` and `Answer::reader` on smol.
//!
//! Content is generated on the fly and hashed (std's SipHash, a streaming hash: the same
//! bytes cut differently hash alike) by the server as it produces it and by the client as
//! it reads. Memory is measured as the growth of this process's peak RSS (`VmHWM`, reset
//! first through `/proc/self/clear_refs` where allowed) while a large reply goes through
//! both ends: 1 GiB from a `Stream` source, 256 MiB from an `AsyncRead` source (each takes
//! seconds even in a debug build). Timeouts here are deadlock guards only.

use std::future::Future;
use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::StreamExt;
use netconf_async::adapter::operations::{
    CreateSubscription, Datastore, EditConfig, Filter, Get, GetConfig, GetData, InlineConfig,
    KillSession, NmdaDatastore, RpcBody,
};
use netconf_async::adapter::server::{ServerOptions, SessionInfo};
use netconf_async::adapter::tls::ClientTlsOptions;
use netconf_async::adapter::{
    Answer, ClientOptions, Config, DataStream, Error, ErrorTag, ErrorType, Framing, Reply, Request,
    RpcError, TimeoutKind,
};
use netconf_async::{Client, Runtime, Server};
use netconf_smol::Smol;
use netconf_tests::certs::Pki;
use netconf_tests::deadline::within;
use netconf_tokio::Tokio;

netconf_tests::on_each_runtime!(
    a_generated_reply_streams_through_with_the_hash_it_was_sent_with,
    pieces_split_anywhere_in_the_content_arrive_whole,
    chunk_boundaries_inside_the_closing_tags,
    rpc_errors_and_replies_without_data,
    a_source_failing_mid_stream_fails_the_reader_with_the_error_inside,
    dropping_the_stream_early_keeps_the_session,
    a_stream_that_is_not_read_holds_the_server_back,
    a_pause_longer_than_the_stall_timeout_is_not_a_stall,
    kill_session_and_shutdown_stop_the_source,
    a_stream_outlives_its_client_handles,
    a_streamed_call_times_out_before_the_reply_begins,
    notifications_around_a_streamed_reply_arrive_in_order,
    replies_to_other_requests_flow_around_a_streamed_one,
    a_large_request_behind_a_paused_stream_keeps_the_window,
    a_panicking_source_fails_its_reply_only,
    a_generated_reply_streams_over_ssh,
);

// ---------------------------------------------------------------------------------------------
// Harness

const MIB: u64 = 1 << 20;

/// The deadlock guard of a test (a hang becomes a failure).
const GUARD: Duration = Duration::from_secs(300);

/// The memory tests measure the whole process: the others wait while one runs.
static MEASURING: ::smol::lock::RwLock<()> = ::smol::lock::RwLock::new(());

/// Runs a test `body` beside the others (not beside a memory test), failing it if it has
/// not finished within [`GUARD`].
async fn guarded<T>(body: impl Future<Output = T>) -> T {
    let _shared = MEASURING.read().await;
    within(GUARD, "the test", body).await
}

/// A step that must not hang (a deadlock guard of a few seconds, generous for loaded CI).
async fn step<T>(what: &str, f: impl Future<Output = T>) -> T {
    within(Duration::from_secs(30), what, f).await
}

/// Waits `d` on the runtime's timer.
async fn sleep<R: Runtime>(d: Duration) {
    R::sleep_until(Instant::now() + d).await;
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

/// What the two runtimes' users do differently, beyond [`Runtime`]: the I/O traits they
/// read a `DataStream` with and hand the server an `AsyncRead` source through (tokio's,
/// which `netconf-async` implements with its feature `tokio`, on tokio; futures-io's on
/// smol), and the stream type `Client::from_stream` takes.
trait Native: Runtime + Sized {
    /// Reads what waits (at most `buf`'s length): how much; 0 at the end.
    async fn read(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<usize>;
    /// Fills `buf`.
    async fn read_exact(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<()>;
    /// Reads the rest into `out`.
    async fn read_to_string(stream: &mut DataStream, out: &mut String) -> io::Result<usize>;
    /// Copies the rest to a sink (the runtime's `io::copy`): how much.
    async fn copy_to_sink(stream: &mut DataStream) -> io::Result<u64>;
    /// An answer read from `reader` (`Answer::tokio_reader` or `Answer::reader`).
    fn reader(reader: GeneratedReader) -> Answer;
    /// A plaintext session on a TCP connection to `addr` (`Client::from_stream` with the
    /// runtime's own `TcpStream`).
    async fn from_tcp(addr: SocketAddr) -> Client<Self>;
}

impl Native for Tokio {
    async fn read(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<usize> {
        ::tokio::io::AsyncReadExt::read(stream, buf).await
    }

    async fn read_exact(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<()> {
        ::tokio::io::AsyncReadExt::read_exact(stream, buf)
            .await
            .map(drop)
    }

    async fn read_to_string(stream: &mut DataStream, out: &mut String) -> io::Result<usize> {
        ::tokio::io::AsyncReadExt::read_to_string(stream, out).await
    }

    async fn copy_to_sink(stream: &mut DataStream) -> io::Result<u64> {
        ::tokio::io::copy(stream, &mut ::tokio::io::sink()).await
    }

    fn reader(reader: GeneratedReader) -> Answer {
        Answer::tokio_reader(reader)
    }

    async fn from_tcp(addr: SocketAddr) -> Client<Tokio> {
        let tcp = ::tokio::net::TcpStream::connect(addr).await.unwrap();
        Client::from_stream(tcp).await.unwrap()
    }
}

impl Native for Smol {
    async fn read(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read(stream, buf).await
    }

    async fn read_exact(stream: &mut DataStream, buf: &mut [u8]) -> io::Result<()> {
        futures_lite::AsyncReadExt::read_exact(stream, buf).await
    }

    async fn read_to_string(stream: &mut DataStream, out: &mut String) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read_to_string(stream, out).await
    }

    async fn copy_to_sink(stream: &mut DataStream) -> io::Result<u64> {
        futures_lite::io::copy(stream, &mut futures_lite::io::sink()).await
    }

    fn reader(reader: GeneratedReader) -> Answer {
        Answer::reader(reader)
    }

    async fn from_tcp(addr: SocketAddr) -> Client<Smol> {
        let tcp = ::smol::net::TcpStream::connect(addr).await.unwrap();
        Client::from_stream(tcp).await.unwrap()
    }
}

/// A server on 127.0.0.1 over TLS, and how to connect to it.
struct Fixture<R> {
    server: Server<R>,
    addr: SocketAddr,
    tls: ClientTlsOptions,
}

impl<R: Runtime> Fixture<R> {
    async fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Fixture<R> {
        Fixture::start_with(ServerOptions::new(), handler).await
    }

    async fn start_with(
        options: ServerOptions,
        handler: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> Fixture<R> {
        let pki = Pki::generate();
        let server = Server::new(options, move |request: Request, _: SessionInfo| {
            std::future::ready(handler(&request))
        });
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls_options())
            .await
            .expect("listening");
        let tls = pki.client_tls_options();
        Fixture { server, addr, tls }
    }

    async fn client(&self) -> Client<R> {
        self.client_with(&ClientOptions::new()).await
    }

    async fn client_with(&self, options: &ClientOptions) -> Client<R> {
        Client::connect_tls_with(&self.addr.to_string(), &self.tls, options)
            .await
            .expect("connecting")
    }
}

/// How much a generator produced, and its hash.
type Digest = (u64, u64);

/// The digest a generator computed of everything it produced, once it has finished.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Option<Digest>>>);

impl Sent {
    fn get(&self) -> Digest {
        self.0.lock().unwrap().expect("the generator has finished")
    }
}

/// The content of a large reply, generated on the fly in pieces of `piece` bytes (each a
/// `<r n="..">` element whose filler letter follows the piece's number, so a lost, repeated
/// or reordered piece changes the digest), hashed as it is produced.
struct Generated {
    piece: usize,
    pieces: u64,
    n: u64,
    sent: u64,
    hasher: Option<DefaultHasher>,
    digest: Sent,
    /// Bytes produced so far, for tests that watch the server's pace.
    pulled: Arc<AtomicU64>,
    /// Set when the generator is dropped (the server stopped pulling).
    dropped: Arc<AtomicBool>,
}

impl Generated {
    /// `size` rounded up to whole pieces; `u64::MAX`: endless.
    fn new(size: u64, piece: usize) -> Generated {
        Generated {
            piece,
            pieces: size.div_ceil(piece as u64),
            n: 0,
            sent: 0,
            hasher: Some(DefaultHasher::new()),
            digest: Sent::default(),
            pulled: Arc::default(),
            dropped: Arc::default(),
        }
    }

    fn piece_bytes(&mut self) -> Option<Bytes> {
        if self.n == self.pieces {
            if let Some(h) = self.hasher.take() {
                *self.digest.0.lock().unwrap() = Some((self.sent, h.finish()));
            }
            return None;
        }
        let mut v = Vec::with_capacity(self.piece);
        v.extend_from_slice(format!("<r n=\"{:016}\">", self.n).as_bytes());
        v.resize(self.piece - 4, b'a' + (self.n % 26) as u8);
        v.extend_from_slice(b"</r>");
        self.n += 1;
        self.sent += v.len() as u64;
        self.pulled.fetch_add(v.len() as u64, Ordering::SeqCst);
        if let Some(h) = &mut self.hasher {
            h.write(&v);
        }
        Some(Bytes::from(v))
    }

    /// As an answer: a stream of its pieces.
    fn answer(self) -> Answer {
        Answer::stream(futures_lite::stream::iter(self))
    }
}

impl Iterator for Generated {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        self.piece_bytes().map(Ok)
    }
}

impl Drop for Generated {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// The same content as an `AsyncRead`: tokio's (a tokio user's source, for
/// `Answer::tokio_reader`) and futures-io's (for `Answer::reader`).
struct GeneratedReader {
    generated: Generated,
    current: Bytes,
}

impl GeneratedReader {
    /// The next bytes, at most `max` of them: none at the end.
    fn take(&mut self, max: usize) -> Bytes {
        if self.current.is_empty() {
            match self.generated.piece_bytes() {
                Some(piece) => self.current = piece,
                None => return Bytes::new(),
            }
        }
        let n = self.current.len().min(max);
        self.current.split_to(n)
    }
}

impl ::tokio::io::AsyncRead for GeneratedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ::tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let bytes = self.take(buf.remaining());
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl futures_lite::io::AsyncRead for GeneratedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let bytes = self.take(buf.len());
        buf[..bytes.len()].copy_from_slice(&bytes);
        Poll::Ready(Ok(bytes.len()))
    }
}

/// Reads everything through the runtime's `AsyncRead`, hashing it.
async fn hash_read<R: Native>(stream: &mut DataStream) -> io::Result<Digest> {
    let mut h = DefaultHasher::new();
    let total = hash_into::<R>(stream, &mut h).await?;
    Ok((total, h.finish()))
}

/// Reads everything into `h`; returns how much.
async fn hash_into<R: Native>(stream: &mut DataStream, h: &mut DefaultHasher) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = R::read(stream, &mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        h.write(&buf[..n]);
        total += n as u64;
    }
}

/// Takes every piece through `Stream`, hashing them and checking each is UTF-8: (digest,
/// number of pieces).
async fn hash_pieces(stream: &mut DataStream) -> Result<(Digest, usize), Error> {
    let mut h = DefaultHasher::new();
    let (mut total, mut pieces) = (0u64, 0usize);
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        std::str::from_utf8(&piece).expect("every piece is UTF-8");
        h.write(&piece);
        total += piece.len() as u64;
        pieces += 1;
    }
    Ok(((total, h.finish()), pieces))
}

fn small() -> Reply {
    Reply::data("<small xmlns=\"urn:t\">ok</small>").unwrap()
}

/// Records the digest of the last generator a handler made.
#[derive(Clone, Default)]
struct Last(Arc<Mutex<Option<Sent>>>);

impl Last {
    fn record(&self, generated: &Generated) {
        *self.0.lock().unwrap() = Some(generated.digest.clone());
    }

    fn get(&self) -> Digest {
        self.0.lock().unwrap().clone().expect("a generator").get()
    }
}

// ---------------------------------------------------------------------------------------------
// Content and hashes

/// A reply generated on the fly by our server streams through the client whole: the same
/// bytes through the runtime's `AsyncRead`, through the `Stream` of pieces, through the
/// runtime's `io::copy` (`tokio::io::copy` on tokio), and from an `AsyncRead` source; a
/// small streamed reply and ordinary calls on the same session.
async fn a_generated_reply_streams_through_with_the_hash_it_was_sent_with<R: Native>() {
    let last = Last::default();
    let record = last.clone();
    let fixture = Fixture::<R>::start(move |request| {
        let generated = Generated::new(8 * MIB, 16 * 1024);
        record.record(&generated);
        match request.operation.name.as_str() {
            "get-config" => generated.answer(),
            "get" => R::reader(GeneratedReader {
                generated,
                current: Bytes::new(),
            }),
            _ => small().into(),
        }
    })
    .await;
    let client = fixture.client().await;

    // The runtime's AsyncRead.
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let got = hash_read::<R>(&mut stream).await.unwrap();
    assert_eq!(got, last.get());
    assert_eq!(got.0, 8 * MIB);
    assert_eq!(
        R::read(&mut stream, &mut [0u8; 16]).await.unwrap(),
        0,
        "stays at its end"
    );
    assert!(stream.next().await.is_none(), "and so does the Stream");
    drop(stream);

    // The Stream of pieces.
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let (got, pieces) = hash_pieces(&mut stream).await.unwrap();
    assert_eq!(got, last.get());
    assert!(pieces > 1, "{pieces} pieces");

    // The runtime's io::copy, from an AsyncRead source at the server.
    let mut stream = client.call_streamed(&Get::new()).await.unwrap();
    let copied = R::copy_to_sink(&mut stream).await.unwrap();
    assert_eq!(copied, last.get().0);
    let mut stream = client.call_streamed(&Get::new()).await.unwrap();
    assert_eq!(hash_read::<R>(&mut stream).await.unwrap(), last.get());

    // A small reply streamed, read to its end, and the same as an ordinary call.
    let mut stream = client
        .call_streamed(&GetData::new(NmdaDatastore::Operational))
        .await
        .unwrap();
    let mut s = String::new();
    R::read_to_string(&mut stream, &mut s).await.unwrap();
    assert_eq!(s, "<small xmlns=\"urn:t\">ok</small>");
    let whole = client
        .call(&GetData::new(NmdaDatastore::Operational))
        .await
        .unwrap();
    assert_eq!(whole.as_str(), s);
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Chunk boundaries

const NESTED: &str =
    "<top xmlns=\"urn:x\"><data>one</data><a>\u{e9}\u{1F600}</a><data>two</data></top>";

/// Our server's pieces are its chunks: split the content at every offset (pieces ending
/// in "</da", inside "</data>" of nested elements, inside a multi-byte character), and one
/// byte per piece; the client gets the content exactly, every piece UTF-8.
async fn pieces_split_anywhere_in_the_content_arrive_whole<R: Native>() {
    let splits: Arc<Mutex<Vec<Vec<Bytes>>>> = Arc::default();
    let queue = splits.clone();
    let fixture = Fixture::<R>::start(move |_| {
        let pieces = queue.lock().unwrap().remove(0);
        Answer::stream(futures_lite::stream::iter(pieces.into_iter().map(Ok)))
    })
    .await;
    let client = fixture.client().await;
    let content = Bytes::from_static(NESTED.as_bytes());
    let mut cases: Vec<Vec<Bytes>> = (0..=content.len())
        .map(|k| vec![content.slice(..k), content.slice(k..)])
        .collect();
    cases.push(
        (0..content.len())
            .map(|i| content.slice(i..i + 1))
            .collect(),
    );
    assert!(cases
        .iter()
        .any(|c| c[0].ends_with(b"</da") && c.len() == 2));
    for case in cases {
        let described = format!("{case:?}");
        splits.lock().unwrap().push(case);
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(piece) = stream.next().await {
            let piece = piece.unwrap();
            std::str::from_utf8(&piece).expect("every piece is UTF-8");
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, NESTED.as_bytes(), "split {described}");
    }
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

const BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// A hand-written NETCONF server on a loopback TCP socket (std, on a thread of its own):
/// for each request it answers a `<data>` reply of `NESTED`, written as each plan says.
/// Returns its address; it serves one connection.
fn raw_server(chunked: bool, plans: Vec<Plan>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    use netconf_tests::hostile_tls::{message_id, Deframer, Framing as WireFraming};
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let base11 = if chunked {
            "<capability>urn:ietf:params:netconf:base:1.1</capability>"
        } else {
            ""
        };
        let hello = format!(
            "<hello xmlns=\"{BASE}\"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>{base11}</capabilities><session-id>7</session-id></hello>]]>]]>"
        );
        stream.write_all(hello.as_bytes()).unwrap();
        let mut deframer = Deframer::new();
        let mut buf = vec![0u8; 65536];
        let mut next_message = |stream: &mut std::net::TcpStream, deframer: &mut Deframer| loop {
            if let Some(m) = deframer.next_message().unwrap() {
                return Some(String::from_utf8(m).unwrap());
            }
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return None;
            }
            deframer.push(&buf[..n]);
        };
        next_message(&mut stream, &mut deframer).expect("the client's hello");
        if chunked {
            deframer.set_framing(WireFraming::Chunked);
        }
        let mut plans = plans.into_iter();
        while let Some(rpc) = next_message(&mut stream, &mut deframer) {
            let id = message_id(&rpc).unwrap().to_owned();
            if rpc.contains("close-session") {
                let m =
                    format!("<rpc-reply xmlns=\"{BASE}\" message-id=\"{id}\"><ok/></rpc-reply>");
                let wire = if chunked {
                    format!("\n#{}\n{m}\n##\n", m.len())
                } else {
                    format!("{m}]]>]]>")
                };
                stream.write_all(wire.as_bytes()).unwrap();
                return;
            }
            let plan = plans.next().expect("a plan per request");
            let m = plan.message(&id);
            // Where the message is cut, counted from its end (so that message-ids of any
            // length cut the closing tags alike).
            let cuts: Vec<usize> = match plan.cut_from_end {
                Some(k) => vec![m.len() - k],
                None => (1..m.len()).collect(),
            };
            let mut at = 0;
            for c in cuts.into_iter().chain([m.len()]) {
                if c <= at {
                    continue;
                }
                // One write per piece: what arrives in one read is up to TCP.
                let mut piece = Vec::new();
                if chunked {
                    piece.extend_from_slice(format!("\n#{}\n", c - at).as_bytes());
                }
                piece.extend_from_slice(&m.as_bytes()[at..c]);
                stream.write_all(&piece).unwrap();
                at = c;
            }
            let end: &[u8] = if chunked { b"\n##\n" } else { b"]]>]]>" };
            stream.write_all(end).unwrap();
        }
    });
    (addr, peer)
}

/// How the raw server writes one reply.
struct Plan {
    prefixed: bool,
    /// One cut this many bytes before the message's end; `None`: a cut after every byte.
    cut_from_end: Option<usize>,
}

impl Plan {
    fn message(&self, id: &str) -> String {
        if self.prefixed {
            format!("<nc:rpc-reply xmlns:nc=\"{BASE}\" message-id=\"{id}\"><nc:data>{NESTED}</nc:data></nc:rpc-reply>")
        } else {
            format!(
                "<rpc-reply xmlns=\"{BASE}\" message-id=\"{id}\"><data>{NESTED}</data></rpc-reply>"
            )
        }
    }

    /// Every cut of a reply (the envelope, the content, `</data></rpc-reply>` at every
    /// offset), then one byte per chunk, plain and prefixed.
    fn all() -> Vec<Plan> {
        let len = Plan {
            prefixed: false,
            cut_from_end: None,
        }
        .message("1")
        .len();
        let mut plans: Vec<Plan> = (1..len)
            .map(|k| Plan {
                prefixed: false,
                cut_from_end: Some(k),
            })
            .collect();
        for prefixed in [false, true] {
            plans.push(Plan {
                prefixed,
                cut_from_end: None,
            });
        }
        plans
    }
}

/// A server cutting its chunks wherever we like: inside `</data>` and `</rpc-reply>`
/// themselves (at every offset of the whole message), one byte per chunk, with prefixed
/// tags; and in base:1.0, the same message written a byte per write. The content arrives
/// exactly, every piece UTF-8, on one session.
async fn chunk_boundaries_inside_the_closing_tags<R: Native>() {
    for chunked in [true, false] {
        let plans = if chunked {
            Plan::all()
        } else {
            vec![
                Plan {
                    prefixed: false,
                    cut_from_end: None,
                },
                Plan {
                    prefixed: true,
                    cut_from_end: None,
                },
            ]
        };
        let count = plans.len();
        let (addr, peer) = raw_server(chunked, plans);
        let client = R::from_tcp(addr).await;
        let framing = if chunked {
            Framing::Chunked
        } else {
            Framing::EndOfMessage
        };
        assert_eq!(client.framing(), framing);
        for i in 0..count {
            let mut stream = step(
                "a streamed reply",
                client.call_streamed(&GetConfig::new(Datastore::Running)),
            )
            .await
            .unwrap();
            let mut got = Vec::new();
            while let Some(piece) = step("a piece", stream.next()).await {
                let piece = piece.unwrap();
                std::str::from_utf8(&piece).expect("every piece is UTF-8");
                got.extend_from_slice(&piece);
            }
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                NESTED,
                "chunked {chunked}, plan {i}"
            );
        }
        client.close().await.unwrap();
        peer.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Replies without data, errors

/// An rpc-error to a streamed request is `Err(Error::Rpc)` from `call_streamed`; `<ok/>`
/// is an empty stream; a source failing before its first piece is an `operation-failed`
/// rpc-error; the session goes on.
async fn rpc_errors_and_replies_without_data<R: Native>() {
    let fixture = Fixture::<R>::start(|request| match request.operation.name.as_str() {
        "get-config" => Reply::error(
            RpcError::new(ErrorType::Application, ErrorTag::InvalidValue)
                .with_message("no such thing"),
        )
        .into(),
        "get" => Reply::Ok.into(),
        "get-data" => Answer::stream(futures_lite::stream::iter([Err(io::Error::other(
            "the disk is on fire",
        ))])),
        _ => small().into(),
    })
    .await;
    let client = fixture.client().await;
    match client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
    {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors[0].tag, ErrorTag::InvalidValue);
            let message = errors[0].message.as_ref().map(|m| m.text.as_str());
            assert_eq!(message, Some("no such thing"));
        }
        other => panic!("{other:?}"),
    }
    let mut stream = client.call_streamed(&Get::new()).await.unwrap();
    assert_eq!(R::read(&mut stream, &mut [0u8; 8]).await.unwrap(), 0);
    assert!(stream.next().await.is_none());
    drop(stream);
    match client
        .call_streamed(&GetData::new(NmdaDatastore::Running))
        .await
    {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors[0].tag, ErrorTag::OperationFailed);
            let message = errors[0].message.as_ref().map(|m| m.text.clone());
            let message = message.unwrap_or_default();
            assert!(message.contains("the disk is on fire"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The same answers through `call`: the session is intact.
    assert!(matches!(
        client.call(&GetConfig::new(Datastore::Running)).await,
        Err(Error::Rpc(_))
    ));
    assert_eq!(client.call(&Get::new()).await.unwrap().as_str(), "");
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// A source that fails after the reply began ends the session: the reader fails with an
/// `io::Error` holding the NETCONF `Error` after a prefix of the content, and again
/// on every later read; the `Stream` yields the error once, then ends.
async fn a_source_failing_mid_stream_fails_the_reader_with_the_error_inside<R: Native>() {
    let fixture = Fixture::<R>::start(|_| {
        let mut generated = Generated::new(u64::MAX, 16 * 1024);
        let mut n = 0;
        Answer::stream(futures_lite::stream::iter(std::iter::from_fn(move || {
            n += 1;
            if n == 40 {
                Some(Err(io::Error::other("the generator broke")))
            } else {
                generated.next()
            }
        })))
    })
    .await;
    for as_pieces in [false, true] {
        let client = fixture.client().await;
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let mut got = 0usize;
        if as_pieces {
            let e = loop {
                match step("a piece", stream.next()).await {
                    None => panic!("a truncated reply must not look complete ({got} bytes)"),
                    Some(Ok(piece)) => got += piece.len(),
                    Some(Err(e)) => break e,
                }
            };
            eprintln!("mid-stream failure seen in the Stream as: {e:?}");
            assert!(
                stream.next().await.is_none(),
                "the Stream ends after its error"
            );
        } else {
            let mut buf = vec![0u8; 8192];
            let e = loop {
                match step("a read", R::read(&mut stream, &mut buf)).await {
                    Ok(0) => panic!("a truncated reply must not look complete ({got} bytes)"),
                    Ok(n) => got += n,
                    Err(e) => break e,
                }
            };
            let inner = e
                .get_ref()
                .and_then(|e| e.downcast_ref::<Error>())
                .unwrap_or_else(|| panic!("no netconf error inside {e:?}"));
            eprintln!(
                "mid-stream failure seen as: {e} ({:?}): {inner:?}",
                e.kind()
            );
            let again = R::read(&mut stream, &mut buf).await.unwrap_err();
            assert_eq!(again.kind(), e.kind(), "the failure repeats");
        }
        assert!(got <= 39 * 16 * 1024, "{got}");
        drop(stream);
        assert!(client.is_closed());
        assert!(client.call(&Get::new()).await.is_err());
    }
    fixture.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Early drop, backpressure, stopping the source

/// Dropping the stream early discards the rest of that reply; the next call on the same
/// session works. Also when nothing was read at all, and when the `call_streamed` future
/// itself is dropped before the reply began.
async fn dropping_the_stream_early_keeps_the_session<R: Native>() {
    // `<held>`'s reply begins only once the test opens the gate: its request future is
    // certainly dropped before the reply began (a caller's own turn at the loop may read a
    // quick reply's start within its first poll on a loaded machine).
    let (open, gate) = ::smol::channel::bounded::<()>(1);
    let fixture = Fixture::<R>::start(move |request| match request.operation.name.as_str() {
        "get-config" => Generated::new(24 * MIB, 16 * 1024).answer(),
        "held" => {
            let gate = gate.clone();
            Answer::stream(futures_lite::stream::once_future(async move {
                let _ = gate.recv().await;
                Ok(Bytes::from_static(b"<held xmlns=\"urn:t\"/>"))
            }))
        }
        _ => Reply::data("<after xmlns=\"urn:t\">fine</after>")
            .unwrap()
            .into(),
    })
    .await;
    let client = fixture.client().await;
    for read_first in [MIB as usize, 1, 0] {
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let mut buf = vec![0u8; read_first];
        R::read_exact(&mut stream, &mut buf).await.unwrap();
        drop(stream);
        let after = step("a call after a dropped stream", client.call(&Get::new()))
            .await
            .unwrap();
        assert_eq!(after.as_str(), "<after xmlns=\"urn:t\">fine</after>");
        // Streamed again, to its end.
        let mut stream = client.call_streamed(&Get::new()).await.unwrap();
        let mut s = String::new();
        R::read_to_string(&mut stream, &mut s).await.unwrap();
        assert_eq!(s, after.as_str());
    }
    // The request future dropped before the reply began; then the reply comes, unwanted.
    let op = RpcBody::raw("<held xmlns=\"urn:t\"/>").unwrap();
    assert!(futures_poll_once(client.call_streamed(&op)).await.is_none());
    open.send(()).await.unwrap();
    let after = step("a call after a dropped request", client.call(&Get::new()))
        .await
        .unwrap();
    assert_eq!(after.as_str(), "<after xmlns=\"urn:t\">fine</after>");
    assert!(!client.is_closed());
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// Polls `f` once, then drops it: `Some` if it was ready.
async fn futures_poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Waits until `counter` stops growing (checked every 300 ms): its final value.
async fn settled<R: Runtime>(counter: &AtomicU64) -> u64 {
    let mut last = counter.load(Ordering::SeqCst);
    loop {
        sleep::<R>(Duration::from_millis(300)).await;
        let now = counter.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A stream that is not read holds the server back: it stops pulling its source once the
/// client's window, the sockets' buffers and its own small backlog are full, and the
/// client holds no more than its window (and a read's worth); it resumes as the stream is
/// read; a small window works as well as the default.
async fn a_stream_that_is_not_read_holds_the_server_back<R: Native>() {
    for window in [4 * MIB as usize, 64 * 1024] {
        let pulled: Arc<Mutex<Option<Arc<AtomicU64>>>> = Arc::default();
        let record = pulled.clone();
        // A server per round: its shutdown ends the endless reply.
        let fixture = Fixture::<R>::start(move |_| {
            let generated = Generated::new(u64::MAX, 16 * 1024);
            *record.lock().unwrap() = Some(generated.pulled.clone());
            generated.answer()
        })
        .await;
        let client = fixture
            .client_with(&ClientOptions::new().stream_window(window))
            .await;
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let counter = pulled.lock().unwrap().clone().unwrap();
        let last = settled::<R>(&counter).await;
        let waiting = stream.waiting();
        eprintln!(
            "window {window}: the server pulled {last} bytes, the client holds {waiting}, while nobody read"
        );
        assert!(last < 48 * MIB, "{last}");
        // One read of the transport (64 KiB of TLS records) may land after the window
        // filled, and a piece held back at a record's edge.
        assert!(waiting <= window + 128 * 1024, "{waiting} waiting");
        // Reading resumes it.
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0u64;
        while read < last + 16 * MIB {
            read += step("a read", R::read(&mut stream, &mut buf))
                .await
                .unwrap() as u64;
        }
        assert!(counter.load(Ordering::SeqCst) > last);
        drop(stream);
        fixture.server.shutdown().await;
    }
}

/// A stream left unread for longer than the stall timeout is the reader's pause, not a
/// stalled server: the session must not end, and the content arrives whole afterwards.
async fn a_pause_longer_than_the_stall_timeout_is_not_a_stall<R: Native>() {
    let last = Last::default();
    let record = last.clone();
    let fixture = Fixture::<R>::start(move |_| {
        let generated = Generated::new(16 * MIB, 16 * 1024);
        record.record(&generated);
        generated.answer()
    })
    .await;
    let options = ClientOptions::new()
        .config(Config::client().with_stall_timeout(Some(Duration::from_millis(500))))
        .stream_window(256 * 1024);
    let client = fixture.client_with(&options).await;
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let mut h = DefaultHasher::new();
    let mut first = vec![0u8; 1000];
    R::read_exact(&mut stream, &mut first).await.unwrap();
    h.write(&first);
    // Paused, with the window full, for several stall timeouts.
    sleep::<R>(Duration::from_secs(2)).await;
    assert!(!client.is_closed(), "the reader's pause ended the session");
    let rest = hash_into::<R>(&mut stream, &mut h).await.unwrap();
    assert_eq!((rest + 1000, h.finish()), last.get());
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// Kill-session and shutdown stop the server pulling a source (it is dropped unfinished);
/// the reader of the reply fails.
async fn kill_session_and_shutdown_stop_the_source<R: Native>() {
    let dropped: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
    let record = dropped.clone();
    let fixture = Fixture::<R>::start(move |request| {
        if request.operation.name != "get-config" {
            return Reply::Ok.into();
        }
        let generated = Generated::new(u64::MAX, 16 * 1024);
        record.lock().unwrap().push(generated.dropped.clone());
        generated.answer()
    })
    .await;
    let until_dropped = |i: usize| {
        let flag = dropped.lock().unwrap()[i].clone();
        step("the source's drop", async move {
            while !flag.load(Ordering::SeqCst) {
                sleep::<R>(Duration::from_millis(10)).await;
            }
        })
    };
    // Kill-session from a second session.
    let victim = fixture.client().await;
    let mut stream = victim
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    R::read_exact(&mut stream, &mut vec![0u8; MIB as usize])
        .await
        .unwrap();
    let killer = fixture.client().await;
    killer
        .call(&KillSession::new(victim.session_id()).unwrap())
        .await
        .unwrap();
    let e = step("the killed stream's end", R::copy_to_sink(&mut stream))
        .await
        .unwrap_err();
    assert!(e.get_ref().is_some_and(|e| e.is::<Error>()), "{e:?}");
    until_dropped(0).await;
    drop(stream);
    // Shutdown.
    let mut stream = killer
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    R::read_exact(&mut stream, &mut vec![0u8; MIB as usize])
        .await
        .unwrap();
    step("shutdown", fixture.server.shutdown()).await;
    assert!(step("the stream's end", R::copy_to_sink(&mut stream))
        .await
        .is_err());
    until_dropped(1).await;
}

/// The client handles may all go while a stream is read: the stream still ends with the
/// whole reply (or a clear error), never hangs.
async fn a_stream_outlives_its_client_handles<R: Native>() {
    let last = Last::default();
    let record = last.clone();
    let fixture = Fixture::<R>::start(move |_| {
        let generated = Generated::new(8 * MIB, 16 * 1024);
        record.record(&generated);
        generated.answer()
    })
    .await;
    let client = fixture.client().await;
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    drop(client);
    let got = step("the stream after its client", hash_read::<R>(&mut stream)).await;
    assert_eq!(got.unwrap(), last.get());
    fixture.server.shutdown().await;
}

/// `call_streamed_with_timeout` gives up on a reply that does not begin in time; the late
/// reply is discarded and the session goes on.
async fn a_streamed_call_times_out_before_the_reply_begins<R: Native>() {
    let gate: Arc<Mutex<Option<::smol::channel::Receiver<()>>>> = Arc::default();
    let (open, closed) = ::smol::channel::bounded(1);
    *gate.lock().unwrap() = Some(closed);
    let pki = Pki::generate();
    let waiting = gate.clone();
    let server = Server::<R>::new(ServerOptions::new(), move |request: Request, _| {
        let gate = waiting.lock().unwrap().take();
        async move {
            if request.operation.name == "get-config" {
                if let Some(gate) = gate {
                    let _ = gate.recv().await;
                }
                return Generated::new(MIB, 16 * 1024).answer();
            }
            small().into()
        }
    });
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .await
        .unwrap();
    let tls = pki.client_tls_options();
    let client = Client::<R>::connect_tls(&addr.to_string(), &tls)
        .await
        .unwrap();
    let e = client
        .call_streamed_with_timeout(
            &GetConfig::new(Datastore::Running),
            Some(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(TimeoutKind::Rpc)), "{e:?}");
    open.send(()).await.unwrap();
    // The late reply (1 MiB) is discarded; later calls are answered.
    let got = step("a call after the timeout", client.call(&Get::new()))
        .await
        .unwrap();
    assert_eq!(got.as_str(), "<small xmlns=\"urn:t\">ok</small>");
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let copied = step(
        "a streamed call after the timeout",
        R::copy_to_sink(&mut stream),
    )
    .await
    .unwrap();
    assert_eq!(copied, MIB);
    client.close().await.unwrap();
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Notifications and other replies around a streamed one

/// Notifications sent before, during and after a streamed reply all arrive, in order; the
/// one sent during the reply waits for the reply's end at the server (nothing can go out in
/// the middle of a message) but reaches `notifications()` while the reply's stream is still
/// unread (it is smaller than the window); the reply is intact.
async fn notifications_around_a_streamed_reply_arrive_in_order<R: Native>() {
    let server_slot: Arc<OnceLock<Server<R>>> = Arc::default();
    let last = Last::default();
    let record = last.clone();
    let slot = server_slot.clone();
    let event = |n: &str| format!("<event xmlns=\"urn:t\"><n>{n}</n></event>");
    let fixture = Fixture::<R>::start(move |request| {
        if request.operation.name != "get-config" {
            return Reply::Ok.into(); // create-subscription
        }
        let mut generated = Generated::new(MIB, 16 * 1024);
        record.record(&generated);
        let slot = slot.clone();
        let mut n = 0;
        Answer::stream(futures_lite::stream::iter(std::iter::from_fn(move || {
            n += 1;
            if n == 11 {
                // Mid-reply: the notification must wait for the reply's end.
                let server: &Server<R> = slot.get().unwrap();
                let sent = server
                    .notify(
                        "2026-01-01T00:00:01Z",
                        "<event xmlns=\"urn:t\"><n>during</n></event>",
                    )
                    .unwrap();
                assert_eq!(sent, 1, "queued for the subscriber");
            }
            generated.next()
        })))
    })
    .await;
    server_slot.set(fixture.server.clone()).ok().unwrap();
    let client = fixture.client().await;
    let mut notifications = client.notifications();
    client.call(&CreateSubscription::new()).await.unwrap();
    assert_eq!(
        fixture
            .server
            .notify("2026-01-01T00:00:00Z", &event("before"))
            .unwrap(),
        1
    );
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    // Before a byte of the reply is read, both notifications arrive.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let n = step("a notification", notifications.next()).await;
        seen.push(n.expect("a notification").unwrap());
    }
    let (got, _) = hash_pieces(&mut stream).await.unwrap();
    assert_eq!(got, last.get());
    drop(stream);
    assert_eq!(
        fixture
            .server
            .notify("2026-01-01T00:00:02Z", &event("after"))
            .unwrap(),
        1
    );
    let n = step("a notification", notifications.next()).await;
    seen.push(n.expect("a notification").unwrap());
    let order: Vec<String> = seen.iter().map(|n| n.content.as_str().to_owned()).collect();
    assert_eq!(
        order,
        [event("before"), event("during"), event("after")],
        "{seen:?}"
    );
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// Other requests pipelined around a streamed reply, from clones of the client in other
/// tasks: sent before it, while it streams (also a second streamed one) and after it; every
/// reply arrives with its own content, the streams whole. A reply that follows a small
/// stream arrives while that stream is still unread.
async fn replies_to_other_requests_flow_around_a_streamed_one<R: Native>() {
    let last: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let record = last.clone();
    let fixture = Fixture::<R>::start(move |request| {
        let body = request.body.as_str();
        match request.operation.name.as_str() {
            "get-config" => {
                let size = if body.contains("<candidate/>") {
                    MIB
                } else {
                    32 * MIB
                };
                let generated = Generated::new(size, 16 * 1024);
                record.lock().unwrap().push(generated.digest.clone());
                generated.answer()
            }
            _ => {
                // Echo the request's filter: each reply names its request.
                let tag = body
                    .split("<tag xmlns=\"urn:t\">")
                    .nth(1)
                    .and_then(|s| s.split("</tag>").next())
                    .unwrap_or("none")
                    .to_owned();
                Reply::data(format!("<r xmlns=\"urn:t\">{tag}</r>"))
                    .unwrap()
                    .into()
            }
        }
    })
    .await;
    let client = fixture.client().await;
    let tagged = |tag: usize| {
        let client = client.clone();
        spawn::<R, _>(async move {
            let filter = format!("<tag xmlns=\"urn:t\">{tag}</tag>");
            let op = Get::new().filter(Filter::subtree(filter).unwrap());
            let got = client.call(&op).await.unwrap();
            assert!(
                got.as_str().contains(&format!(">{tag}</r>")),
                "request {tag} got {}",
                got.as_str()
            );
        })
    };
    // Before the streamed one.
    let before: Vec<_> = (0..4).map(tagged).collect();
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    // While it streams: ordinary calls and a second streamed one, from other tasks.
    let during: Vec<_> = (4..12).map(tagged).collect();
    let second = {
        let client = client.clone();
        spawn::<R, _>(async move {
            let mut stream = client
                .call_streamed(&GetConfig::new(Datastore::Running))
                .await
                .unwrap();
            hash_pieces(&mut stream).await.unwrap().0
        })
    };
    let first = hash_read::<R>(&mut stream).await.unwrap();
    for task in before.into_iter().chain(during) {
        step("a pipelined call", task).await;
    }
    let second = step("the second stream", second).await;
    let sent: Vec<Digest> = last.lock().unwrap().iter().map(Sent::get).collect();
    assert_eq!(sent, [first, second]);

    // A small stream (within the window) left unread: the next reply still arrives.
    let mut small_stream = client
        .call_streamed(&GetConfig::new(Datastore::Candidate))
        .await
        .unwrap();
    step("a call behind an unread stream", tagged(12)).await;
    let got = hash_read::<R>(&mut small_stream).await.unwrap();
    assert_eq!(got, last.lock().unwrap()[2].get());
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// A large request written while a streamed reply is paused (its reader not reading): the
/// client does not read the reply past its window while its write waits, nor does the
/// write time out on a pause of the reader's making; once the stream is read, the server
/// reads the request before the reply's end (a source always ready does not starve it),
/// and both finish.
async fn a_large_request_behind_a_paused_stream_keeps_the_window<R: Native>() {
    let last = Last::default();
    let record = last.clone();
    let pulled: Arc<Mutex<Option<Arc<AtomicU64>>>> = Arc::default();
    let watch = pulled.clone();
    // How much of the reply the source had produced when the request was dispatched.
    let at_edit = Arc::new(AtomicU64::new(0));
    let edited = at_edit.clone();
    let fixture = Fixture::<R>::start_with(
        ServerOptions::new().config(Config::server().with_max_message_size(64 << 20)),
        move |request| match request.operation.name.as_str() {
            "get-config" => {
                let generated = Generated::new(64 * MIB, 16 * 1024);
                record.record(&generated);
                *watch.lock().unwrap() = Some(generated.pulled.clone());
                generated.answer()
            }
            _ => {
                let counter = watch.lock().unwrap().clone().unwrap();
                edited.store(counter.load(Ordering::SeqCst), Ordering::SeqCst);
                Reply::Ok.into()
            }
        },
    )
    .await;
    let window = 256 * 1024;
    let options = ClientOptions::new()
        .stream_window(window)
        .write_timeout(Some(Duration::from_secs(2)));
    let client = fixture.client_with(&options).await;
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let item = "<v>0123456789abcdef0123456789abcdef0123456789abcdef01234567</v>";
    let mut config = String::from("<top xmlns=\"urn:t\">");
    while config.len() < 32 << 20 {
        config.push_str(item);
    }
    config.push_str("</top>");
    let edit = {
        let client = client.clone();
        let config = InlineConfig::new(config).unwrap();
        spawn::<R, _>(async move {
            client
                .call(&EditConfig::new(Datastore::Running, config))
                .await
        })
    };
    // The request is being written (TCP takes a few MiB, then waits for the server,
    // which is blocked sending the reply); the reply stays within the window, for
    // longer than the write timeout.
    let mut most = 0;
    for _ in 0..20 {
        sleep::<R>(Duration::from_millis(200)).await;
        most = most.max(stream.waiting());
    }
    eprintln!("while a 32 MiB request was written, the paused stream held {most} bytes");
    assert!(most <= window + 128 * 1024, "{most} bytes waiting");
    assert!(!client.is_closed(), "the reader's pause failed the write");
    let got = step("the stream", hash_read::<R>(&mut stream))
        .await
        .unwrap();
    assert_eq!(got, last.get());
    step("the edit", edit).await.unwrap();
    let at_edit = at_edit.load(Ordering::SeqCst);
    eprintln!("the request was dispatched after {at_edit} bytes of the reply");
    assert!(
        at_edit < 64 * MIB,
        "the request was read only after the reply"
    );
    client.close().await.unwrap();
    fixture.server.shutdown().await;
}

/// A source that panics is its failure, not the server's: before its first piece an
/// `operation-failed` rpc-error (the session goes on), later the session's end; other
/// sessions are served throughout.
async fn a_panicking_source_fails_its_reply_only<R: Native>() {
    let fixture = Fixture::<R>::start(|request| {
        let at = match request.operation.name.as_str() {
            "get-config" => 0,
            "get-data" => 20,
            _ => return small().into(),
        };
        let mut generated = Generated::new(u64::MAX, 16 * 1024);
        let mut n = 0;
        Answer::stream(futures_lite::stream::iter(std::iter::from_fn(move || {
            if n == at {
                panic!("the source broke");
            }
            n += 1;
            generated.next()
        })))
    })
    .await;
    let client = fixture.client().await;
    match client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
    {
        Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::OperationFailed),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.call(&Get::new()).await.unwrap().as_str(),
        "<small xmlns=\"urn:t\">ok</small>"
    );
    let mut stream = client
        .call_streamed(&GetData::new(NmdaDatastore::Running))
        .await
        .unwrap();
    let e = step("the failed stream", R::copy_to_sink(&mut stream))
        .await
        .unwrap_err();
    assert!(e.get_ref().is_some_and(|e| e.is::<Error>()), "{e:?}");
    assert!(client.is_closed());
    let other = fixture.client().await;
    assert!(other.call(&Get::new()).await.is_ok());
    other.close().await.unwrap();
    fixture.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// SSH

/// A streamed reply and a streamed answer over SSH (where the payload's `Bytes` go to the
/// channel as they are): hashes, an early drop, the session going on.
async fn a_generated_reply_streams_over_ssh<R: Native>() {
    use netconf_async::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};
    let last = Last::default();
    let record = last.clone();
    let server = Server::<R>::new(
        ServerOptions::new(),
        move |request: Request, info: SessionInfo| {
            let answer: Answer = match request.operation.name.as_str() {
                "get-config" => {
                    let generated = Generated::new(32 * MIB, 32 * 1024);
                    record.record(&generated);
                    generated.answer()
                }
                _ => Reply::data(format!(
                    "<who xmlns=\"urn:t\">{}</who>",
                    info.username.as_deref().unwrap_or("-")
                ))
                .unwrap()
                .into(),
            };
            std::future::ready(answer)
        },
    );
    let ssh = SshServer::new(
        SshServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("admin", "pw"),
    )
    .unwrap();
    let addr = server.listen_ssh("127.0.0.1:0", &ssh).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let line = ssh.host_public_key().to_openssh().unwrap();
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {line}\n", addr.port()),
    )
    .unwrap();
    let client = Client::<R>::connect_ssh(
        &addr.to_string(),
        &SshClientOptions::new("admin")
            .known_hosts(&known_hosts)
            .password("pw"),
    )
    .await
    .unwrap();
    assert_eq!(client.framing(), Framing::Chunked);
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    assert_eq!(hash_read::<R>(&mut stream).await.unwrap(), last.get());
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let (got, _) = hash_pieces(&mut stream).await.unwrap();
    assert_eq!(got, last.get());
    // Dropped after 1 MiB; the session goes on.
    let mut stream = client
        .call_streamed(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    R::read_exact(&mut stream, &mut vec![0u8; MIB as usize])
        .await
        .unwrap();
    drop(stream);
    let who = step("a call after the drop", client.call(&Get::new()))
        .await
        .unwrap();
    assert_eq!(who.as_str(), "<who xmlns=\"urn:t\">admin</who>");
    client.close().await.unwrap();
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Memory

/// The memory tests: each alone in the process (the others wait), under a deadlock guard of
/// its own.
#[cfg(target_os = "linux")]
mod memory {
    use super::*;
    use netconf_tests::memory::{filler_xml, proc_status_kib, PeakRss};

    netconf_tests::on_each_runtime!(
        a_gibibyte_reply_streams_in_bounded_memory,
        a_large_answer_from_a_reader_is_sent_in_bounded_memory,
        a_large_prebuilt_reply_is_encrypted_as_the_socket_takes_it,
    );

    /// Runs a memory test `body` alone in the process, failing it if it has not finished
    /// within an hour.
    async fn guarded<T>(body: impl Future<Output = T>) -> T {
        let _exclusive = MEASURING.write().await;
        within(Duration::from_secs(3600), "the test", body).await
    }

    /// How the large reply's content is produced at the server.
    #[derive(Clone, Copy, Debug)]
    enum Source {
        Stream,
        Reader,
    }

    /// A reply of `size` generated on the fly by our server in 16 KiB pieces (`Source`),
    /// streamed over loopback TLS through the client: the digest the client computes is the
    /// one the server computed, and this process's peak RSS grows by less than 64 MiB.
    ///
    /// The bound: server and client both live in this process, each holding at most the
    /// client's stream window (4 MiB), the TLS buffers of a read or a record (~64 KiB each
    /// side), a piece or two at the server and a few of the 64 KiB buffers the loops read
    /// into; the rest is the allocator's slack and the runtime's threads. 64 MiB is ten times
    /// that and a sixteenth of the smallest reply measured: a leak of the content shows.
    async fn large_reply_in_bounded_memory<R: Native>(size: u64, source: Source) {
        let last = Last::default();
        let record = last.clone();
        let fixture = Fixture::<R>::start(move |request| {
            let generated = if request.operation.name == "get-data" {
                Generated::new(8 * MIB, 16 * 1024) // the warm-up
            } else {
                Generated::new(size, 16 * 1024)
            };
            record.record(&generated);
            match source {
                Source::Stream => generated.answer(),
                Source::Reader => R::reader(GeneratedReader {
                    generated,
                    current: Bytes::new(),
                }),
            }
        })
        .await;
        let client = fixture.client().await;
        // Warm up both ends (threads, TLS buffers), then measure from here.
        let mut stream = client
            .call_streamed(&GetData::new(NmdaDatastore::Operational))
            .await
            .unwrap();
        R::copy_to_sink(&mut stream).await.unwrap();
        drop(stream);
        let PeakRss { before, reset } = PeakRss::start();
        let start = Instant::now();
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let first = start.elapsed();
        let got = match source {
            Source::Stream => hash_read::<R>(&mut stream).await.unwrap(),
            Source::Reader => hash_pieces(&mut stream).await.unwrap().0,
        };
        let elapsed = start.elapsed();
        drop(stream);
        let after = proc_status_kib("VmHWM:");
        let growth = after.saturating_sub(before);
        eprintln!(
        "{source:?} source: streamed {} MiB in {:.1?} ({:.0} MiB/s, reply began after {:.1?}): peak RSS {} KiB -> {} KiB (+{} KiB; HWM reset: {reset})",
        size / MIB,
        elapsed,
        (size / MIB) as f64 / elapsed.as_secs_f64(),
        first,
        before,
        after,
        growth
    );
        assert_eq!(got, last.get());
        assert_eq!(got.0, size);
        assert!(
            growth < 64 * 1024,
            "peak RSS grew by {growth} KiB while streaming {} MiB",
            size / MIB
        );
        client.close().await.unwrap();
        fixture.server.shutdown().await;
    }

    /// A large prebuilt reply (`Reply::data_unchecked`, 64 MiB, built before the peak is
    /// reset) costs the server a bounded amount beyond the payload itself: framed around the
    /// shared bytes, not copied, and encrypted one transmit at a time as the socket takes it
    /// (the blocking server, which encrypted it whole, grew by 66 MiB for the same reply).
    /// The client streams it through its window.
    async fn a_large_prebuilt_reply_is_encrypted_as_the_socket_takes_it<R: Native>() {
        let payload = filler_xml(64 * MIB as usize);
        let mut h = DefaultHasher::new();
        h.write(&payload);
        let sent = (payload.len() as u64, h.finish());
        let prebuilt = payload.clone();
        let fixture = Fixture::<R>::start(move |request| {
            if request.operation.name == "get-data" {
                return Reply::data_unchecked(prebuilt.slice(..MIB as usize)).into();
            }
            Reply::data_unchecked(prebuilt.clone()).into()
        })
        .await;
        let client = fixture.client().await;
        // Warm up both ends with the first MiB, then measure.
        let mut stream = client
            .call_streamed(&GetData::new(NmdaDatastore::Operational))
            .await
            .unwrap();
        hash_pieces(&mut stream).await.unwrap();
        drop(stream);
        let peak = PeakRss::start();
        let mut stream = client
            .call_streamed(&GetConfig::new(Datastore::Running))
            .await
            .unwrap();
        let (got, _) = hash_pieces(&mut stream).await.unwrap();
        drop(stream);
        let growth = peak.report("prebuilt 64 MiB");
        assert_eq!(got, sent, "the reply arrived whole");
        assert!(
            growth < 24 * 1024,
            "peak RSS grew by {growth} KiB while sending a 64 MiB prebuilt reply"
        );
        client.close().await.unwrap();
        fixture.server.shutdown().await;
    }

    /// The figure: 1 GiB from a `Stream` source, read through the runtime's `AsyncRead`.
    async fn a_gibibyte_reply_streams_in_bounded_memory<R: Native>() {
        large_reply_in_bounded_memory::<R>(1024 * MIB, Source::Stream).await;
    }

    /// 256 MiB from an `AsyncRead` source at the server, taken as pieces: the server's memory
    /// is bounded as well.
    async fn a_large_answer_from_a_reader_is_sent_in_bounded_memory<R: Native>() {
        large_reply_in_bounded_memory::<R>(256 * MIB, Source::Reader).await;
    }
}
