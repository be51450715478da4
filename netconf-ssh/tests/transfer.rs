//! Bulk transfer through the channel layer: 100 MB each way at once, and the
//! read buffer bound holding while the reader pauses.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netconf_ssh::{connect, ChannelOptions, ClientOptions, ServerOptions, SshStream, StaticAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `len` bytes of payload(seed) while reading `len` bytes; returns the
/// checksum of what was read.
async fn duplex(s: SshStream, len: usize, seed: u64) -> Checksum {
    let (mut r, mut w) = tokio::io::split(s);
    let writer = async move {
        let block = payload(1 << 20, seed);
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len());
            w.write_all(&block[..n]).await.unwrap();
            left -= n;
        }
        w.flush().await.unwrap();
        w
    };
    let reader = async move {
        let mut c = Checksum::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len());
            let n = r.read(&mut buf[..want]).await.unwrap();
            assert!(n > 0, "early EOF with {left} bytes to go");
            c.update(&buf[..n]);
            left -= n;
        }
        c
    };
    let (_w, c) = tokio::join!(writer, reader);
    c
}

fn expected(len: usize, seed: u64) -> Checksum {
    let block = payload(1 << 20, seed);
    let mut c = Checksum::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        c.update(&block[..n]);
        left -= n;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_each_way() {
    const LEN: usize = 100_000_000;
    let (server, mut listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let opts = ClientOptions::new("u").password("p").known_hosts(&kh);
    let client = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap();
    let sess = guard("accept", listener.accept()).await.unwrap();
    let start = Instant::now();
    let srv = tokio::spawn(duplex(sess.stream, LEN, 7));
    let cli = tokio::spawn(duplex(client, LEN, 8));
    let (cli, srv) = tokio::time::timeout(Duration::from_secs(300), async {
        (cli.await.unwrap(), srv.await.unwrap())
    })
    .await
    .expect("100 MB each way: no completion within 300 s (hang)");
    eprintln!("100 MB each way in {:?}", start.elapsed());
    assert_eq!(cli, expected(LEN, 7));
    assert_eq!(srv, expected(LEN, 8));
}

/// A client that stops reading holds at most `read_buffer_limit` unread
/// bytes (plus nothing: the bound is in bytes); once it reads again every
/// byte arrives in order.
#[tokio::test]
async fn read_buffer_bound_holds_while_reader_pauses() {
    const LEN: usize = 8 << 20;
    const LIMIT: usize = 1 << 20;
    let (server, mut listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let opts = ClientOptions::new("u")
        .password("p")
        .known_hosts(&kh)
        .channel(ChannelOptions::default().read_buffer_limit(LIMIT));
    let mut client = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap();
    let sess = guard("accept", listener.accept()).await.unwrap();
    let writer = tokio::spawn(async move {
        let mut s = sess.stream;
        s.write_all(&payload(LEN, 3)).await.unwrap();
        s.shutdown().await.unwrap();
        s
    });
    // Let the server push while we do not read (no assertion on timing: the
    // bound must hold whatever happened meanwhile).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        client.buffered() <= LIMIT,
        "{} > {LIMIT}",
        client.buffered()
    );
    let (got, end) = guard("read", read_to_end(&mut client)).await;
    end.unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got == payload(LEN, 3));
    assert!(
        client.buffered_high_water() <= LIMIT,
        "{}",
        client.buffered_high_water()
    );
    guard("writer", writer).await.unwrap();
}

/// A client that drops its stream right after its last write loses nothing:
/// the server, reading late and through a small buffer (so most of the data
/// is still in its socket when the client is done), gets every byte and then
/// a clean end of stream. Disconnecting at once made the client's kernel
/// answer the server's next window adjust with a reset, which discards what
/// the server had not read yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dropping_right_after_writing_loses_nothing() {
    const LEN: usize = 4 << 20;
    let (server, mut listener, addr) = start_server(
        ServerOptions::default().channel(ChannelOptions::default().read_buffer_limit(64 * 1024)),
        StaticAuth::new().user("u", "p"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let opts = ClientOptions::new("u").password("p").known_hosts(&kh);
    let mut client = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap();
    let mut sess = guard("accept", listener.accept()).await.unwrap();
    let writer = tokio::spawn(async move {
        client.write_all(&payload(LEN, 5)).await.unwrap();
        drop(client);
    });
    // Not a timing assertion: reading late only makes the loss likelier.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (got, end) = guard("read", read_to_end(&mut sess.stream)).await;
    guard("writer", writer).await.unwrap();
    end.unwrap_or_else(|e| panic!("after {} of {LEN} bytes: {e}", got.len()));
    assert_eq!(got.len(), LEN);
    assert!(
        got == payload(LEN, 5),
        "the bytes differ from what was sent"
    );
}
