//! A peer that never reads must not make us buffer without bound: our writes block on TCP
//! backpressure and then fail with a clear write-timeout error, for every adapter. And we
//! are never such a peer ourselves: the blocking client reads while it writes.

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

// ---------------------------------------------------------------------------------------------
// ... and we never stop reading while we write.

/// The get's reply: a few MB, more than the socket buffers hold, so that the server is still
/// writing it while the client writes its 32 MB request.
const GET_REPLY_BYTES: usize = 4 << 20;
/// The pipelined edit-config.
const EDIT_BYTES: usize = 32 << 20;

fn big_answer(request: &netconf_proto::Request, data: &bytes::Bytes) -> netconf_proto::Reply {
    match request.operation.name.as_str() {
        "get" => netconf_proto::Reply::data_unchecked(data.clone()),
        "edit-config" if request.body.as_str().len() >= EDIT_BYTES => netconf_proto::Reply::Ok,
        _ => netconf_proto::Reply::error(
            netconf_proto::RpcError::new(
                netconf_proto::message::ErrorType::Application,
                netconf_proto::message::ErrorTag::OperationFailed,
            )
            .with_message("unexpected request"),
        ),
    }
}

fn big_server_options() -> netconf_proto::server::ServerOptions {
    // The default request limit is 16 MiB: this test sends 32.
    netconf_proto::server::ServerOptions::new()
        .config(netconf_proto::Config::server().with_max_message_size(64 << 20))
}

fn get_reply_data() -> bytes::Bytes {
    let mut data = String::with_capacity(GET_REPLY_BYTES + 64);
    data.push_str("<big xmlns=\"urn:x\">");
    while data.len() < GET_REPLY_BYTES {
        data.push_str("<item>0123456789abcdef0123456789abcdef</item>");
    }
    data.push_str("</big>");
    bytes::Bytes::from(data)
}

/// Pipelines `send(get)` then `send(32 MB edit-config)` from the blocking client to `addr`;
/// both replies must arrive.
fn pipelined_get_and_big_edit(addr: std::net::SocketAddr, pki: &netconf_tests::certs::Pki) {
    use netconf_proto::operations::{Datastore, EditConfig, Get, InlineConfig};
    let tls = pki.client_tls_options();
    let client = netconf_blocking::Client::connect_tls_with(
        &addr.to_string(),
        &tls,
        &ClientOptions::new().rpc_timeout(Some(Duration::from_secs(120))),
    )
    .expect("connect");
    let config = InlineConfig::new(format!(
        "<top xmlns=\"urn:x\"><blob>{}</blob></top>",
        "e".repeat(EDIT_BYTES)
    ))
    .expect("config");
    let edit = EditConfig::new(Datastore::Running, config);
    let get_id = client.send(&Get::new()).expect("send get");
    let edit_id = client.send(&edit).expect("send the 32 MB edit-config");
    let got = client.recv(get_id).expect("the get's reply");
    // The <data> payload is the handler's document, whole.
    assert_eq!(
        got.data().map(|d| d.as_str().len()),
        Some(get_reply_data().len())
    );
    client.recv(edit_id).expect("the edit-config's reply (ok)");
    client.close().expect("close");
}

/// Runs `body` on a thread; a hang becomes a failure after `secs` seconds.
fn guarded(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock guard: not finished within {secs} s")
        }
    }
}

/// Issue 12: the blocking client pipelines `send(get)` then `send(32 MB edit-config)` to our
/// blocking server, whose handler answers the get with 4 MB. The old client never read while
/// it wrote: the get's reply filled the socket buffers, the server stopped reading while its
/// reply waited, the client's write of the edit-config blocked, and the session died at the
/// write timeout (60 s: this test's guard fired first) with the get's reply lost. Now a
/// reading thread reads while `send` writes, and both replies arrive.
#[test]
fn blocking_client_pipelines_a_32mb_edit_behind_a_get_blocking_server() {
    guarded(120, || {
        let pki = netconf_tests::certs::Pki::generate();
        let data = get_reply_data();
        let server = netconf_blocking::Server::new(big_server_options(), move |request, _info| {
            big_answer(request, &data)
        });
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls_options())
            .expect("listen");
        pipelined_get_and_big_edit(addr, &pki);
        server.shutdown();
    });
}

/// The same against our tokio server (see the blocking-server test for the old failure).
#[test]
fn blocking_client_pipelines_a_32mb_edit_behind_a_get_tokio_server() {
    guarded(120, || {
        let pki = netconf_tests::certs::Pki::generate();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = get_reply_data();
        let server = netconf_tokio::Server::new(big_server_options(), move |request, _info| {
            let reply = big_answer(&request, &data);
            async move { reply }
        });
        let addr = rt
            .block_on(server.listen_tls("127.0.0.1:0", &pki.server_tls_options()))
            .expect("listen");
        pipelined_get_and_big_edit(addr, &pki);
        rt.block_on(server.shutdown());
        rt.shutdown_timeout(Duration::from_secs(2));
    });
}
