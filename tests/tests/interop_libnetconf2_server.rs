//! Interop: our blocking, tokio and smol clients against libnetconf2 2.0.24's server
//! (`tests/interop/nc_server.c`, compiled by the test), over TLS on 127.0.0.1.
//!
//! Runs only with `NETCONF_INTEROP=1` or `=require`; see `tests/interop/harness.rs`.
//!
//! libnetconf2 sends its `<hello>` as three TLS records (about 1019 B, 317 B, then `]]>]]>`
//! alone) and a 10 MB base:1.1 reply as one huge chunk between two small ones: a real-world
//! case of the TLS drainage rule and of chunk decoding.

#[path = "../interop/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Scratch, BIG_BYTES};
use netconf_proto::client::ClientOptions;
use netconf_proto::message::ErrorTag;
use netconf_proto::operations::{
    Commit, Datastore, DiscardChanges, EditConfig, Get, GetConfig, GetSchema, InlineConfig, Lock,
    Rpc, SchemaFormat, Unlock, Validate,
};
use netconf_proto::{Error, Framing};

const SERVER_GREETING: &str = "hello from libnetconf2";
const CANDIDATE: &str = "urn:ietf:params:netconf:capability:candidate:1.0";
const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";
/// TLS handshake plus hello exchange with a local peer (DESIGN.md: "each must establish within 2 s").
const HELLO_LIMIT: Duration = Duration::from_secs(2);
/// An async test that takes longer than this has hung: fail it with the server's log rather
/// than hang the suite (every step has its own RPC timeout too; this catches the rest).
const TEST_LIMIT: Duration = Duration::from_secs(120);

fn greeting(text: &str) -> InlineConfig {
    InlineConfig::new(format!(
        "<interop xmlns=\"urn:example:interop\"><greeting>{text}</greeting></interop>"
    ))
    .expect("well-formed")
}

/// Gate + peers: the mode, a scratch PKI, and the started server with its port.
fn setup(test: &str, data_size: Option<usize>) -> Option<(Scratch, harness::Peer, u16)> {
    let mode = harness::mode(test)?;
    harness::need(mode, test, harness::c_peer("nc_server"))?;
    let scratch = Scratch::new(test);
    let (server, port) = harness::start_nc_server(&scratch, data_size)
        .unwrap_or_else(|e| panic!("{test}: the libnetconf2 server did not start: {e}"));
    Some((scratch, server, port))
}

fn check_schema(text: &str) {
    assert!(
        text.contains("module ietf-netconf {") && text.contains("2013-09-29"),
        "get-schema returned something else: {:.200}",
        text
    );
}

fn check_unknown_schema(result: Result<String, Error>) {
    match result {
        Err(Error::Rpc(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].tag, ErrorTag::InvalidValue, "{errors:?}");
        }
        other => panic!("get-schema of an unknown module: expected an rpc-error, got {other:?}"),
    }
}

fn check_big(data: &str, client: &str, took: Duration) {
    assert!(
        data.len() >= BIG_BYTES,
        "{client}: 10 MB get-config returned only {} bytes",
        data.len()
    );
    assert!(
        data.trim_end().ends_with("</interop>"),
        "{client}: the 10 MB reply is cut: ...{}",
        &data[data.len().saturating_sub(80)..]
    );
    assert!(
        data.matches("<item>").count() > 90_000,
        "{client}: items missing in the 10 MB reply"
    );
    harness::record_timing(client, "libnetconf2", data.len(), took.as_secs_f64(), "");
}

// ---- blocking -------------------------------------------------------------------------------

#[test]
fn blocking_client_operations_against_libnetconf2() {
    use netconf_blocking::Client;
    let test = "blocking_client_operations_against_libnetconf2";
    let Some((scratch, server, port)) = setup(test, None) else {
        return;
    };
    let tls = harness::client_tls(&scratch);
    let t = Instant::now();
    let c = Client::connect_tls_with(
        &format!("127.0.0.1:{port}"),
        &tls,
        &ClientOptions::new().hello_timeout(Duration::from_secs(5)),
    )
    .unwrap_or_else(|e| panic!("hello with libnetconf2: {e}\n{}", server.log_text()));
    let took = t.elapsed();
    println!("blocking: established in {took:?}");
    // libnetconf2's hello comes in three TLS records, `]]>]]>` alone in the last one: the
    // drainage rule must deliver it at once, not after some timer or the next read.
    assert!(took < HELLO_LIMIT, "hello took {took:?}");
    assert_ne!(c.session_id(), 0);
    assert!(c.capabilities().contains_uri(BASE_1_1));
    assert!(c.capabilities().contains_uri(CANDIDATE));
    assert_eq!(c.framing(), Framing::Chunked);

    let running = GetConfig::new(Datastore::Running);
    let data = c.call(&running).expect("get-config");
    assert!(data.as_str().contains(SERVER_GREETING), "{data}");
    let state = c.call(&Get::new()).expect("get");
    assert!(state.as_str().contains("<uptime>42</uptime>"), "{state}");

    c.call(&EditConfig::new(
        Datastore::Running,
        greeting("set by blocking"),
    ))
    .expect("edit-config running");
    let data = c.call(&running).expect("get-config after edit");
    assert!(data.as_str().contains("set by blocking"), "{data}");

    c.call(&Lock::new(Datastore::Running)).expect("lock");
    c.call(&Unlock::new(Datastore::Running)).expect("unlock");

    c.call(&EditConfig::new(
        Datastore::Candidate,
        greeting("committed by blocking"),
    ))
    .expect("edit-config candidate");
    c.call(&Commit::new()).expect("commit");
    let data = c.call(&running).expect("get-config after commit");
    assert!(data.as_str().contains("committed by blocking"), "{data}");
    c.call(&DiscardChanges::new()).expect("discard-changes");
    c.call(&Validate::new(Datastore::Running))
        .expect("validate");

    check_schema(&c.call(&GetSchema::new("ietf-netconf")).expect("get-schema"));
    check_schema(
        &c.call(
            &GetSchema::new("ietf-netconf")
                .version("2013-09-29")
                .format(SchemaFormat::Yang),
        )
        .expect("get-schema again, with version and format"),
    );
    check_unknown_schema(c.call(&GetSchema::new("no-such-module")));
    // The session survives an rpc-error.
    c.call(&running).expect("get-config after an rpc-error");

    // Pipelining against a real server: three requests in flight on one session, their
    // replies collected in the other order.
    let ids = [
        c.send(&running).expect("send get-config"),
        c.send(&Get::new()).expect("send get"),
        c.send(&GetSchema::new("ietf-netconf-monitoring"))
            .expect("send get-schema"),
    ];
    let schema = c.recv(ids[2]).expect("pipelined get-schema");
    assert!(GetSchema::output(schema)
        .expect("schema text")
        .contains("module ietf-netconf-monitoring"),);
    let state = c.recv(ids[1]).expect("pipelined get");
    assert!(state
        .data()
        .is_some_and(|d| d.as_str().contains("<uptime>")));
    let config = c.recv(ids[0]).expect("pipelined get-config");
    assert!(config
        .data()
        .is_some_and(|d| d.as_str().contains("committed by blocking")));

    c.close().expect("close-session");
    assert!(
        c.call(&Get::new()).is_err(),
        "a closed client still answers"
    );
    drop(server);
}

#[test]
fn blocking_client_10mb_get_config_from_libnetconf2() {
    use netconf_blocking::Client;
    let test = "blocking_client_10mb_get_config_from_libnetconf2";
    let Some((scratch, _server, port)) = setup(test, Some(BIG_BYTES)) else {
        return;
    };
    let c = Client::connect_tls(&format!("127.0.0.1:{port}"), &harness::client_tls(&scratch))
        .expect("hello");
    let t = Instant::now();
    let data = c
        .call(&GetConfig::new(Datastore::Running))
        .expect("10 MB get-config");
    let took = t.elapsed();
    check_big(data.as_str(), "netconf-blocking", took);
    c.close().expect("close-session");
}

// ---- tokio ------------------------------------------------------------------------------------

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The operation sequence, written once for the two async clients (same API, different crates).
macro_rules! async_operations {
    ($client:ty, $name:literal, $port:expr, $scratch:expr, $server:expr) => {{
        let tls = harness::client_tls($scratch);
        let t = Instant::now();
        let c = <$client>::connect_tls_with(
            &format!("127.0.0.1:{}", $port),
            &tls,
            &ClientOptions::new().hello_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap_or_else(|e| panic!("hello with libnetconf2: {e}\n{}", $server.log_text()));
        let took = t.elapsed();
        println!("{}: established in {took:?}", $name);
        assert!(took < HELLO_LIMIT, "hello took {took:?}");
        assert_ne!(c.session_id(), 0);
        assert!(c.capabilities().contains_uri(BASE_1_1));
        assert!(c.capabilities().contains_uri(CANDIDATE));
        assert_eq!(c.framing(), Framing::Chunked);

        let running = GetConfig::new(Datastore::Running);
        let data = c.call(&running).await.expect("get-config");
        assert!(data.as_str().contains(SERVER_GREETING), "{data}");
        let state = c.call(&Get::new()).await.expect("get");
        assert!(state.as_str().contains("<uptime>42</uptime>"), "{state}");

        let set = concat!("set by ", $name);
        c.call(&EditConfig::new(Datastore::Running, greeting(set)))
            .await
            .expect("edit-config running");
        let data = c.call(&running).await.expect("get-config after edit");
        assert!(data.as_str().contains(set), "{data}");

        c.call(&Lock::new(Datastore::Running)).await.expect("lock");
        c.call(&Unlock::new(Datastore::Running))
            .await
            .expect("unlock");

        let committed = concat!("committed by ", $name);
        c.call(&EditConfig::new(Datastore::Candidate, greeting(committed)))
            .await
            .expect("edit-config candidate");
        c.call(&Commit::new()).await.expect("commit");
        let data = c.call(&running).await.expect("get-config after commit");
        assert!(data.as_str().contains(committed), "{data}");
        c.call(&DiscardChanges::new())
            .await
            .expect("discard-changes");
        c.call(&Validate::new(Datastore::Running))
            .await
            .expect("validate");

        check_schema(
            &c.call(&GetSchema::new("ietf-netconf"))
                .await
                .expect("get-schema"),
        );
        check_schema(
            &c.call(
                &GetSchema::new("ietf-netconf")
                    .version("2013-09-29")
                    .format(SchemaFormat::Yang),
            )
            .await
            .expect("get-schema again, with version and format"),
        );
        check_unknown_schema(c.call(&GetSchema::new("no-such-module")).await);
        c.call(&running)
            .await
            .expect("get-config after an rpc-error");

        // Pipelining against a real server: three requests in flight on one session.
        println!("step: pipelined get-config, get, get-schema");
        let (a, b, d) = futures_join3(
            c.call(&running),
            c.call(&Get::new()),
            c.call(&GetSchema::new("ietf-netconf-monitoring")),
        )
        .await;
        assert!(a
            .expect("pipelined get-config")
            .as_str()
            .contains(committed));
        assert!(b.expect("pipelined get").as_str().contains("<uptime>"));
        assert!(d
            .expect("pipelined get-schema")
            .contains("module ietf-netconf-monitoring"));

        c.close().await.expect("close-session");
        assert!(
            c.call(&Get::new()).await.is_err(),
            "a closed client still answers"
        );
    }};
}

/// Polls three futures to completion concurrently (no extra dependency for a join).
async fn futures_join3<A, B, C>(
    a: impl std::future::Future<Output = A>,
    b: impl std::future::Future<Output = B>,
    c: impl std::future::Future<Output = C>,
) -> (A, B, C) {
    use std::pin::pin;
    use std::task::Poll;
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (mut ra, mut rb, mut rc) = (None, None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if rc.is_none() {
            if let Poll::Ready(v) = c.as_mut().poll(cx) {
                rc = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() && rc.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap(), rc.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[test]
fn tokio_client_operations_against_libnetconf2() {
    let test = "tokio_client_operations_against_libnetconf2";
    let Some((scratch, server, port)) = setup(test, None) else {
        return;
    };
    tokio_rt().block_on(async {
        tokio::time::timeout(TEST_LIMIT, async {
            async_operations!(netconf_tokio::Client, "tokio", port, &scratch, server)
        })
        .await
        .unwrap_or_else(|_| panic!("{test} hung for {TEST_LIMIT:?}:\n{}", server.log_text()))
    });
}

#[test]
fn tokio_client_10mb_get_config_from_libnetconf2() {
    let test = "tokio_client_10mb_get_config_from_libnetconf2";
    let Some((scratch, _server, port)) = setup(test, Some(BIG_BYTES)) else {
        return;
    };
    let body = async {
        let c = netconf_tokio::Client::connect_tls(
            &format!("127.0.0.1:{port}"),
            &harness::client_tls(&scratch),
        )
        .await
        .expect("hello");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        check_big(data.as_str(), "netconf-tokio", t.elapsed());
        c.close().await.expect("close-session");
    };
    tokio_rt().block_on(async {
        tokio::time::timeout(TEST_LIMIT, body)
            .await
            .unwrap_or_else(|_| panic!("{test} hung for {TEST_LIMIT:?}"))
    });
}

// ---- smol ---------------------------------------------------------------------------------------

#[test]
fn smol_client_operations_against_libnetconf2() {
    let test = "smol_client_operations_against_libnetconf2";
    let Some((scratch, server, port)) = setup(test, None) else {
        return;
    };
    smol::block_on(smol::future::or(
        async { async_operations!(netconf_smol::Client, "smol", port, &scratch, server) },
        async {
            smol::Timer::after(TEST_LIMIT).await;
            panic!("{test} hung for {TEST_LIMIT:?}:\n{}", server.log_text())
        },
    ));
}

#[test]
fn smol_client_10mb_get_config_from_libnetconf2() {
    let test = "smol_client_10mb_get_config_from_libnetconf2";
    let Some((scratch, _server, port)) = setup(test, Some(BIG_BYTES)) else {
        return;
    };
    let body = async {
        let c = netconf_smol::Client::connect_tls(
            &format!("127.0.0.1:{port}"),
            &harness::client_tls(&scratch),
        )
        .await
        .expect("hello");
        let t = Instant::now();
        let data = c
            .call(&GetConfig::new(Datastore::Running))
            .await
            .expect("10 MB get-config");
        check_big(data.as_str(), "netconf-smol", t.elapsed());
        c.close().await.expect("close-session");
    };
    smol::block_on(smol::future::or(body, async {
        smol::Timer::after(TEST_LIMIT).await;
        panic!("{test} hung for {TEST_LIMIT:?}")
    }));
}
