//! The tokio `Client` on a stream the caller connected (`from_stream`,
//! `from_stream_with_driver`, tokio's own stream types) against a hand-driven plain-TCP
//! peer, on tokio's current-thread and multi-thread runtimes. Everything else this file used
//! to hold (every operation, rpc-errors, certificates, closing and shutting down) runs on
//! both async runtimes in `tests/tests/async_client_server.rs`.

use std::future::Future;
use std::time::{Duration, Instant};

use netconf_proto::{CloseReason, Event, Output, Session};
use netconf_tokio::operations::{Datastore, Get, GetConfig};
use netconf_tokio::{Client, ClientOptions, Config, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:client-server";

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish within 10 s");
}

/// A minimal NETCONF server over plain TCP: a `netconf_proto::Session` driven by hand.
/// Answers every rpc with `<data>` naming the operation; returns the operations seen and
/// why the session ended.
async fn plain_peer(listener: tokio::net::TcpListener) -> (Vec<String>, CloseReason) {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut session = Session::server(Config::server(), 77, Instant::now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = Vec::new();
    loop {
        let mut requests = Vec::new();
        let mut closed = None;
        loop {
            match session.poll_output() {
                Output::Transmit(bytes) => socket.write_all(&bytes).await.expect("write"),
                Output::Event(Event::Rpc { id, request }) => requests.push((id, request)),
                Output::Event(Event::Closed { reason }) => closed = Some(reason),
                Output::Event(_) => {}
                Output::Wait(_) => break,
                _ => {}
            }
        }
        if let Some(reason) = closed {
            let _ = socket.shutdown().await;
            return (seen, reason);
        }
        if !requests.is_empty() {
            for (id, request) in requests {
                seen.push(request.operation.name.clone());
                let reply = Reply::data(format!(
                    "<plain xmlns=\"{NS}\"><op>{}</op></plain>",
                    request.operation.name
                ))
                .expect("data");
                session.send_reply(id, reply).expect("send_reply");
            }
            continue;
        }
        let n = socket.read(&mut buf).await.expect("read");
        if n == 0 {
            session.handle_eof(Instant::now());
        } else {
            session
                .handle_input(&buf[..n], Instant::now())
                .expect("the client speaks NETCONF");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn from_stream_over_plain_tcp() {
    guarded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(plain_peer(listener));
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let client = Client::from_stream(stream).await.expect("hello exchange");
        assert_eq!(client.session_id(), 77);
        assert_eq!(client.framing(), netconf_proto::Framing::Chunked);

        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert_eq!(data.child_text("op").as_deref(), Some("get-config"));
        let get = Get::new();
        let custom = format!("<custom xmlns=\"{NS}\"/>");
        let (a, b) = tokio::join!(client.call(&get), client.rpc_raw(&custom));
        assert_eq!(a.expect("get").child_text("op").as_deref(), Some("get"));
        assert_eq!(
            b.expect("custom")
                .data()
                .and_then(|d| d.child_text("op"))
                .as_deref(),
            Some("custom")
        );
        client.close().await.expect("close");
        let (seen, reason) = peer.await.expect("peer task");
        assert_eq!(seen, ["get-config", "get", "custom"]);
        assert_eq!(reason, CloseReason::CloseSession);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_stream_with_driver_over_plain_tcp() {
    guarded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(plain_peer(listener));
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (client, driver) = Client::from_stream_with_driver(stream, &ClientOptions::new())
            .await
            .expect("hello exchange");
        let driver = tokio::spawn(driver);
        let data = client.call(&Get::new()).await.expect("get");
        assert_eq!(data.child_text("op").as_deref(), Some("get"));
        client.close().await.expect("close");
        driver.await.expect("driver");
        let (seen, reason) = peer.await.expect("peer task");
        assert_eq!(seen, ["get"]);
        assert_eq!(reason, CloseReason::CloseSession);
    })
    .await
}
