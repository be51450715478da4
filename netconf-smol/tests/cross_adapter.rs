//! The smol client on streams the caller connected (`async_net::TcpStream`, and a
//! futures-io wrapper around one), through `Client::from_stream_with_driver`, against a
//! peer written here: a `netconf_proto::Session` in the server role, driven by hand on a
//! std thread. One case runs on async-std's executor. These take smol's own stream types;
//! the smol client against every adapter's server (tokio, smol, blocking) runs on both
//! runtimes in the netconf-tests crate's `tests/async_cross_adapter.rs`.
//!
//! Every test body runs on its own thread under a 10 s deadlock guard.

use netconf_tests::deadline::within;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};
use netconf_proto::capabilities::{BASE_1_0, BASE_1_1};
use netconf_proto::{Capabilities, CloseReason, Event, Framing, Output, Session};
use netconf_smol::operations::{Datastore, GetConfig};
use netconf_smol::{Client, ClientOptions, Config, Error, Reply, RpcReply};

const GUARD: Duration = Duration::from_secs(10);
const NS: &str = "urn:test:smol-cross";

/// Runs `body` on its own thread and fails if it has not finished within [`GUARD`].
fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("guarded-test-body".into())
        .spawn(move || {
            body();
            let _ = done.send(());
        })
        .expect("spawning the test thread");
    match finished.recv_timeout(GUARD) {
        Ok(()) => thread.join().expect("the test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ended without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: the test did not finish within {GUARD:?}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A plain-TCP peer: netconf-proto's server session, driven by hand.

/// Accepts one connection and serves it with a hand-driven `Session::server`: every rpc but
/// close-session gets a `<data>` reply numbering it. Returns how the session ended.
fn plain_peer(
    listener: TcpListener,
    session_id: u32,
    config: Config,
) -> JoinHandle<Result<CloseReason, String>> {
    std::thread::Builder::new()
        .name("plain-netconf-peer".into())
        .spawn(move || {
            let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
            let (mut stream, _) = listener.accept().map_err(|e| fail("accept", &e))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| fail("socket setup", &e))?;
            let mut session = Session::server(config, session_id, Instant::now());
            let mut buf = vec![0u8; 16 * 1024];
            let mut answered = 0usize;
            loop {
                let reason = loop {
                    match session.poll_output() {
                        Output::Transmit(bytes) => {
                            stream.write_all(&bytes).map_err(|e| fail("write", &e))?
                        }
                        Output::Event(Event::Rpc { id, request }) => {
                            let reply = Reply::data(format!(
                                "<top xmlns=\"{NS}\"><served-by>hand-driven</served-by>\
                                 <op>{}</op><n>{answered}</n></top>",
                                request.operation.name
                            ))
                            .expect("well-formed data");
                            answered += 1;
                            session
                                .send_reply(id, reply)
                                .map_err(|e| fail("send_reply", &e))?;
                        }
                        Output::Event(Event::Closed { reason }) => break Some(reason),
                        Output::Event(_) => {}
                        Output::Wait(_) => break None,
                        _ => {}
                    }
                };
                if let Some(reason) = reason {
                    // Everything is written (Closed is the last output); half-close, then
                    // read until the client closes too so no RST can eat the last reply.
                    let _ = stream.shutdown(Shutdown::Write);
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    return Ok(reason);
                }
                let now = Instant::now();
                match stream.read(&mut buf) {
                    Ok(0) => session.handle_eof(now),
                    Ok(n) => {
                        if let Err(e) = session.handle_input(&buf[..n], now) {
                            return Err(fail("protocol error from the client", &e));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(fail("read", &e)),
                }
            }
        })
        .expect("spawning the peer thread")
}

fn bind_loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    (listener, addr)
}

/// Joins the peer thread without blocking the executor, within 2 s.
async fn peer_result(peer: JoinHandle<Result<CloseReason, String>>) -> CloseReason {
    within(
        Duration::from_secs(2),
        "the plain peer finishing",
        smol::unblock(move || peer.join()),
    )
    .await
    .expect("the peer thread panicked")
    .unwrap_or_else(|e| panic!("the plain peer failed: {e}"))
}

fn check_plain_data(data: &str, n: usize) {
    assert!(
        data.contains("<served-by>hand-driven</served-by>"),
        "{data}"
    );
    assert!(data.contains("<op>get-config</op>"), "{data}");
    assert!(data.contains(&format!("<n>{n}</n>")), "{data}");
}

#[test]
fn from_stream_with_driver_over_plain_tcp_to_a_hand_driven_session() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let peer = plain_peer(listener, 77, Config::server());
        smol::block_on(async {
            let stream = async_net::TcpStream::connect(addr).await.expect("connect");
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");
            let driver = smol::spawn(driver);
            assert_eq!(client.session_id(), 77);
            assert_eq!(client.framing(), Framing::Chunked);
            assert!(client.capabilities().contains_uri(BASE_1_1));

            let get = GetConfig::new(Datastore::Running);
            for n in 0..3 {
                let data = within(Duration::from_secs(2), "get-config", client.call(&get))
                    .await
                    .expect("get-config");
                check_plain_data(data.as_str(), n);
            }
            within(Duration::from_secs(2), "close", client.close())
                .await
                .expect("close");
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert!(client.is_closed());
            assert_eq!(peer_result(peer).await, CloseReason::CloseSession);
        });
    })
}

/// The same over async-std's executor, against a peer that only speaks base:1.0, so the
/// session stays in end-of-message framing.
#[test]
fn from_stream_with_driver_on_async_std_to_a_base10_peer() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let config = Config::server().with_capabilities(Capabilities::new([BASE_1_0]));
        let peer = plain_peer(listener, 78, config);
        async_std::task::block_on(async {
            let stream = async_net::TcpStream::connect(addr).await.expect("connect");
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");
            let driver = async_std::task::spawn(driver);
            assert_eq!(client.session_id(), 78);
            assert_eq!(client.framing(), Framing::EndOfMessage);

            let get = GetConfig::new(Datastore::Running);
            let (x, y) = futures_lite::future::zip(client.call(&get), client.call(&get)).await;
            let both = format!("{}{}", x.expect("first"), y.expect("second"));
            assert!(
                both.contains("<n>0</n>") && both.contains("<n>1</n>"),
                "{both}"
            );
            within(Duration::from_secs(2), "close", client.close())
                .await
                .expect("close");
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert_eq!(peer_result(peer).await, CloseReason::CloseSession);
        });
    })
}

/// A stream whose writes start failing when told to.
struct FailingWrites {
    inner: async_net::TcpStream,
    fail: Arc<AtomicBool>,
}

impl AsyncRead for FailingWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FailingWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.fail.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "injected write failure",
            )));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

type RpcFuture<'a> = Pin<Box<dyn Future<Output = Result<RpcReply, Error>> + Send + 'a>>;

/// RPCs made over a transport that has failed must all fail, not wait forever: whether a
/// caller's own turn at the loop met the failure, or its request was queued behind the
/// one that did (a caller has no timeout of its own; the loop enforces RPC timeouts).
#[test]
fn rpcs_queued_when_the_transport_fails_all_fail() {
    guarded(|| {
        let (listener, addr) = bind_loopback();
        let peer = plain_peer(listener, 79, Config::server());
        smol::block_on(async {
            let inner = async_net::TcpStream::connect(addr).await.expect("connect");
            let fail = Arc::new(AtomicBool::new(false));
            let stream = FailingWrites {
                inner,
                fail: fail.clone(),
            };
            let (client, driver) = within(
                Duration::from_secs(2),
                "the hello exchange",
                Client::from_stream_with_driver(stream, &ClientOptions::new()),
            )
            .await
            .expect("hello exchange");

            // The transport breaks; then five rpcs, with the driver not yet running. The
            // first caller's own turn at the loop meets the broken write and ends the
            // session; the others are queued behind it, or refused after it.
            fail.store(true, Ordering::SeqCst);
            let get = GetConfig::new(Datastore::Running);
            let rpcs: Vec<RpcFuture<'_>> = (0..5)
                .map(|_| Box::pin(client.rpc(&get)) as RpcFuture<'_>)
                .collect();
            let mut waiting = Vec::new();
            for mut rpc in rpcs {
                match futures_lite::future::poll_once(&mut rpc).await {
                    Some(result) => assert!(result.is_err(), "{result:?}"),
                    None => waiting.push(rpc),
                }
            }
            let rpcs = waiting;
            let driver = smol::spawn(driver);
            for (i, rpc) in rpcs.into_iter().enumerate() {
                let result = within(
                    Duration::from_secs(2),
                    &format!("queued rpc {i} after the transport failed"),
                    rpc,
                )
                .await;
                assert!(result.is_err(), "rpc {i}: {result:?}");
            }
            within(Duration::from_secs(2), "the driver finishing", driver).await;
            assert!(client.is_closed());
            let later = within(
                Duration::from_secs(1),
                "an rpc after the failure",
                client.call(&get),
            )
            .await;
            assert!(later.is_err(), "{later:?}");
            drop(client);
            // The peer saw the client go away.
            assert_eq!(peer_result(peer).await, CloseReason::Eof);
        });
    })
}
