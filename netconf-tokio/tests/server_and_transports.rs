//! Sessions on streams the caller made, with the tokio adapter, over loopback: over a Unix
//! socket against `serve_stream`, and over TLS on a TCP stream the caller connected. These
//! take tokio's own stream types (`Client::from_stream`, `Server::serve_stream`,
//! `Server::serve_tls`, `Client::connect_tls_over`); everything else the adapter promises
//! beyond one request and its reply (issue 12) runs on both runtimes in the netconf-tests
//! crate's `tests/async_server_and_transports.rs`.
//!
//! Every test runs under a deadlock guard; none measures time.

use std::future::Future;
use std::time::Duration;

use netconf_tests::certs::Pki;
use netconf_tokio::operations::{Datastore, GetConfig};
use netconf_tokio::server::{ServerOptions, SessionInfo};
use netconf_tokio::tls::{ClientTlsOptions, ServerTlsOptions};
use netconf_tokio::{Client, ClientOptions, Reply, Request, Server};

const GUARD: Duration = Duration::from_secs(20);
const NS: &str = "urn:test:tokio-server";

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish in time");
}

/// `fut`, or a panic naming `what` if it does not finish within a few seconds.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    netconf_tests::deadline::within(Duration::from_secs(5), what, fut).await
}

/// Certificates in memory: nothing is written to disk.
struct Tls {
    server: ServerTlsOptions,
    client: ClientTlsOptions,
}

impl Tls {
    fn new() -> Tls {
        let pki = Pki::generate();
        Tls {
            server: pki.server_tls_options(),
            client: pki.client_tls_options(),
        }
    }
}

/// `<whoami>` answers the session's username; get-config a `<top>` in [`NS`]; anything
/// else `<ok/>`.
async fn handle(request: Request, info: SessionInfo) -> Reply {
    match request.operation.name.as_str() {
        "whoami" => Reply::data(format!(
            "<user xmlns=\"{NS}\">{}</user>",
            info.username.as_deref().unwrap_or("(none)")
        ))
        .unwrap(),
        "get-config" => Reply::data(format!("<top xmlns=\"{NS}\"/>")).unwrap(),
        _ => Reply::Ok,
    }
}

fn new_server() -> Server {
    Server::new(ServerOptions::new(), handle)
}

// ---------------------------------------------------------------------------------------
// Other transports: a Unix socket, TLS over a stream the caller connected

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_a_unix_socket_against_serve_stream() {
    guarded(async {
        let dir = std::env::temp_dir().join(format!(
            "netconf-tokio-unix-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("netconf.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let server = new_server();
        let serving = {
            let server = server.clone();
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                server
                    .serve_stream(stream, Some("alice".into()), None)
                    .await
            })
        };
        let stream = tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect");
        let client = within("the hello exchange", Client::from_stream(stream))
            .await
            .expect("hello");
        assert!(client.session_id() >= 1);
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let reply = client
            .rpc_raw(&format!("<whoami xmlns=\"{NS}\"/>"))
            .await
            .expect("whoami");
        assert_eq!(
            reply.data().and_then(|d| d.child_text("user")).as_deref(),
            Some("alice")
        );
        client.close().await.expect("close");
        within("serve_stream returning", serving)
            .await
            .expect("task")
            .expect("serve_stream");
        assert!(server.sessions().is_empty());
        within("shutdown", server.shutdown()).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_over_a_stream_the_caller_connected() {
    guarded(async {
        let tls = Tls::new();
        let server = new_server();
        // The test accepts the TCP connection and hands it to the server...
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = {
            let server = server.clone();
            let tls = tls.server.clone();
            tokio::spawn(async move {
                let (stream, peer) = listener.accept().await.expect("accept");
                server.serve_tls(stream, &tls, Some(peer)).await
            })
        };
        // ...and connects the TCP stream the client runs TLS over.
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let client = within(
            "the TLS and hello exchange",
            Client::connect_tls_over(stream, "localhost", &tls.client, &ClientOptions::new()),
        )
        .await
        .expect("connect_tls_over");
        assert_eq!(server.sessions(), vec![client.session_id()]);
        let data = client
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("get-config");
        assert!(data.as_str().contains(NS), "{data}");
        client.close().await.expect("close");
        within("serve_tls returning", serving)
            .await
            .expect("task")
            .expect("serve_tls");
        assert!(server.sessions().is_empty());
        within("shutdown", server.shutdown()).await;
    })
    .await
}
