//! Server-side limits and roles: the connection cap, the handshake deadline,
//! RFC 8071 call home (roles of TCP reversed), and the stream used and
//! dropped away from the tokio runtime that owns it.

mod common;

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::*;
use netconf_ssh::{
    connect, connect_stream, ClientOptions, Error, ServerOptions, SshServer, StaticAuth,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

fn opts(kh: &std::path::Path) -> ClientOptions {
    ClientOptions::new("u").password("p").known_hosts(kh)
}

#[tokio::test]
async fn connection_cap_refuses_the_extra_connection_then_frees_the_slot() {
    let (server, mut listener, addr) = start_server(
        ServerOptions::default().max_connections(1),
        StaticAuth::new().user("u", "p"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let first = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let first_srv = guard("accept", listener.accept()).await.unwrap();
    let err = guard(
        "second connect",
        connect("127.0.0.1", addr.port(), &opts(&kh)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Ssh { .. }), "{err:?}");
    drop(first);
    drop(first_srv);
    // The slot comes back once the first connection has ended.
    let mut ok = None;
    for _ in 0..100 {
        match connect("127.0.0.1", addr.port(), &opts(&kh)).await {
            Ok(s) => {
                ok = Some(s);
                break;
            }
            Err(e) => {
                eprintln!("retry: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    assert!(ok.is_some(), "slot never freed");
}

#[tokio::test]
async fn handshake_deadline_drops_a_silent_peer() {
    let (_server, _listener, addr) = start_server(
        ServerOptions::default().handshake_timeout(Duration::from_millis(300)),
        StaticAuth::new().user("u", "p"),
    )
    .await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // We never send our SSH version line; the server must give up on us.
    let mut buf = vec![0u8; 4096];
    let closed = guard("server closes a silent peer", async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break true,
                Ok(_) => continue, // its version banner
            }
        }
    })
    .await;
    assert!(closed);
}

/// RFC 8071: the NETCONF server dials the client; the server still runs the
/// SSH server, the client the SSH client.
#[tokio::test]
async fn call_home_over_caller_supplied_streams() {
    let server = SshServer::new(
        ServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("u", "p"),
    )
    .unwrap();
    let fp = server.host_key_fingerprint();
    // The NETCONF client listens (port 4334 in RFC 8071; any port here).
    let manager = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = manager.local_addr().unwrap();
    let device = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(maddr).await.unwrap();
        let s = server.accept_stream(tcp, Some(maddr)).await.unwrap();
        assert_eq!(s.username, "u");
        echo(s.stream).await;
    });
    let (tcp, peer) = manager.accept().await.unwrap();
    let o = ClientOptions::new("u")
        .password("p")
        .host_key_fingerprint(fp);
    let mut s = guard(
        "call home",
        connect_stream(tcp, &peer.ip().to_string(), peer.port(), &o),
    )
    .await
    .unwrap();
    assert_eq!(roundtrip(&mut s, b"<hello/>").await, b"<hello/>");
    drop(s);
    guard("device", device).await.unwrap();
}

/// A minimal executor-free poller, like a blocking adapter would use: park
/// the thread until woken.
struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    block_on(std::future::poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        std::pin::Pin::new(&mut *s)
            .poll_read(cx, &mut rb)
            .map_ok(|()| rb.filled().len())
    }))
}

fn write_some<S: AsyncWrite + Unpin>(s: &mut S, buf: &[u8]) -> std::io::Result<usize> {
    block_on(std::future::poll_fn(|cx| {
        std::pin::Pin::new(&mut *s).poll_write(cx, buf)
    }))
}

/// The stream is polled from a plain thread outside any tokio context and
/// dropped there; the runtime (on its own threads) keeps the connection.
#[test]
fn stream_used_and_dropped_off_the_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut stream, echo_task) = rt.block_on(async {
        let (server, listener, addr) =
            start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
        let kh = known_hosts_for(dir.path(), &server, addr);
        let e = spawn_echo(listener);
        (
            connect("127.0.0.1", addr.port(), &opts(&kh)).await.unwrap(),
            e,
        )
    });
    let t = std::thread::spawn(move || {
        let msg = b"<rpc message-id=\"1\"/>";
        let mut sent = 0;
        while sent < msg.len() {
            sent += write_some(&mut stream, &msg[sent..]).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < msg.len() {
            let n = read_some(&mut stream, &mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, msg);
        drop(stream); // no tokio context on this thread: must not panic
    });
    t.join()
        .expect("using or dropping the stream off the runtime panicked");
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    echo_task.abort();
    drop(rt);
}
