//! Raw rustls on an async runtime's socket: the floor of the async adapters' rows.

use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::time::{Duration, Instant};

use rustls::ClientConnection;

use super::RawClient;

/// [`RawAsync::exchanges`] as a task's future.
pub type Exchanges<S> = Pin<Box<dyn Future<Output = (RawAsync<S>, Duration)> + Send>>;

/// Raw rustls with its socket on an async runtime: what a caller outside the runtime
/// (one `block_on` per round trip, as the async clients are called in `rpc_tiny`) pays
/// with no NETCONF at all. The socket's readiness comes from the runtime's reactor, which
/// may run on another thread.
pub struct RawAsync<S> {
    conn: ClientConnection,
    tcp: S,
    wire: Vec<u8>,
    buf: Box<[u8]>,
}

impl<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> RawAsync<S> {
    /// `raw`'s TLS session (handshake done) on `tcp`, its socket made async.
    pub fn new(raw: RawClient, tcp: impl FnOnce(std::net::TcpStream) -> S) -> RawAsync<S> {
        let RawClient { conn, sock, .. } = raw;
        sock.set_nonblocking(true).expect("non-blocking");
        RawAsync {
            conn,
            tcp: tcp(sock),
            wire: Vec::new(),
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }

    /// `n` exchanges in a task on the runtime: the client in `slot` moves into the task and
    /// back. `spawn_and_wait` spawns the future on the runtime and waits for its output.
    /// Returns the time the task measured.
    pub fn in_task(
        slot: &mut Option<Self>,
        n: u64,
        request: &[u8],
        spawn_and_wait: impl FnOnce(Exchanges<S>) -> (Self, Duration),
    ) -> Duration
    where
        S: Send + 'static,
    {
        let raw = slot.take().expect("raw client");
        let (raw, took) = spawn_and_wait(Box::pin(raw.exchanges(n, request.to_vec())));
        *slot = Some(raw);
        took
    }

    /// `n` exchanges one after the other (in a task: the client moves in and out).
    pub async fn exchanges(mut self, n: u64, request: Vec<u8>) -> (Self, Duration) {
        let mut answer = vec![0; super::tiny_wire_sizes().1];
        let t = Instant::now();
        for _ in 0..n {
            self.exchange(&request, &mut answer).await;
        }
        (self, t.elapsed())
    }

    /// Sends `request`; reads `answer.len()` bytes of plaintext.
    pub async fn exchange(&mut self, request: &[u8], answer: &mut [u8]) {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        self.conn.writer().write_all(request).expect("plaintext");
        self.wire.clear();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.wire).expect("ciphertext");
        }
        self.tcp.write_all(&self.wire).await.expect("request");
        let mut got = 0;
        while got < answer.len() {
            match self.conn.reader().read(&mut answer[got..]) {
                Ok(0) => panic!("raw server closed"),
                Ok(n) => {
                    got += n;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("answer: {e}"),
            }
            let n = self.tcp.read(&mut self.buf).await.expect("answer");
            assert!(n > 0, "raw server closed");
            let mut wire = &self.buf[..n];
            while !wire.is_empty() {
                self.conn.read_tls(&mut wire).expect("ciphertext");
                self.conn.process_new_packets().expect("records");
            }
        }
    }
}
