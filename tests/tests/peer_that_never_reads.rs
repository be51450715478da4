//! A peer that never reads must not make us buffer without bound: our writes block on TCP
//! backpressure and then fail with a clear write-timeout error, for every adapter.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netconf_proto::client::ClientOptions;
use netconf_proto::operations::RpcBody;
use netconf_proto::{Error, TimeoutKind};

const SERVER_HELLO: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities><session-id>9</session-id></hello>]]>]]>";

/// A plain-TCP peer that sends its hello and then never reads a byte, holding the socket
/// open until the test ends.
fn silent_peer() -> (String, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(SERVER_HELLO.as_bytes()).unwrap();
        // Never read; wait until the test is done (or gives up).
        let _ = stopped.recv_timeout(Duration::from_secs(20));
        drop(stream);
    });
    (addr, stop)
}

/// A 1 MiB operation: a few of them fill any socket buffer.
fn big_rpc() -> RpcBody {
    RpcBody::raw(format!(
        "<edit xmlns=\"urn:x\">{}</edit>",
        "x".repeat(1 << 20)
    ))
    .unwrap()
}

fn is_write_timeout(e: &Error) -> bool {
    matches!(e, Error::Timeout(TimeoutKind::Write))
}

#[test]
fn blocking_client_write_times_out() {
    let (addr, stop) = silent_peer();
    let stream = TcpStream::connect(&addr).unwrap();
    let client = netconf_blocking::Client::from_stream_with(
        stream,
        &ClientOptions::new().write_timeout(Some(Duration::from_millis(300))),
    )
    .unwrap();
    let op = big_rpc();
    let started = Instant::now();
    // `send` returns once its bytes are written, so this loop cannot queue without bound:
    // a few sends fill the socket buffers, the next one waits and fails.
    let mut sent = 0;
    let error = loop {
        match client.send(&op) {
            Ok(_) => {
                sent += 1;
                assert!(started.elapsed() < Duration::from_secs(10), "never blocked");
                assert!(sent < 1000, "1 GB accepted by a peer that never reads");
            }
            Err(e) => break e,
        }
    };
    assert!(is_write_timeout(&error), "{error:?}");
    // The session is over: later calls fail at once instead of queueing more bytes.
    let again = Instant::now();
    assert!(client.send(&op).is_err());
    assert!(again.elapsed() < Duration::from_secs(1));
    drop(stop);
}

#[test]
fn tokio_client_write_times_out() {
    let (addr, stop) = silent_peer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let client = netconf_tokio::Client::from_stream_with(
            stream,
            &ClientOptions::new()
                .write_timeout(Some(Duration::from_millis(300)))
                .rpc_timeout(None),
        )
        .await
        .unwrap();
        let op = big_rpc();
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            // Many writers at once: the driver must not take more than it can write.
            let calls: Vec<_> = (0..16)
                .map(|_| {
                    let (client, op) = (client.clone(), op.clone());
                    tokio::spawn(async move { client.rpc(&op).await })
                })
                .collect();
            let mut errors = Vec::new();
            for call in calls {
                errors.push(call.await.unwrap().expect_err("nobody answers"));
            }
            errors
        })
        .await
        .expect("the write timeout must end the session, not hang");
        assert!(result.iter().any(is_write_timeout), "{result:?}");
        assert!(client.is_closed());
    });
    drop(stop);
}
