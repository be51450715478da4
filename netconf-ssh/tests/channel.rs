//! The channel layer against peers that do odd but legal things: data before
//! the subsystem reply, 1-byte packets, closing mid-message, vanishing; and
//! a refused subsystem.

mod common;

use std::sync::Arc;

use common::*;
use netconf_ssh::{connect, ClientOptions, Error, ServerOptions, StaticAuth};
use tokio::io::AsyncWriteExt;

const HELLO: &[u8] = b"<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities>\
<session-id>4</session-id></hello>]]>]]>";

fn opts(kh: &std::path::Path) -> ClientOptions {
    ClientOptions::new("u").password("p").known_hosts(kh)
}

#[tokio::test]
async fn subsystem_refused_is_a_clear_error() {
    let (server, listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let _e = spawn_echo(listener);
    let err = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts(&kh).subsystem("xmlagent")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::SubsystemRefused { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("xmlagent") && msg.contains(&addr.port().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn configurable_subsystem_name() {
    let (server, listener, addr) = start_server(
        ServerOptions::default().subsystem("xmlagent"),
        StaticAuth::new().user("u", "p"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let _e = spawn_echo(listener);
    let mut s = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts(&kh).subsystem("xmlagent")),
    )
    .await
    .unwrap();
    assert_eq!(roundtrip(&mut s, b"hi").await, b"hi");
    // and the default name is refused by that server
    let err = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SubsystemRefused { .. }), "{err:?}");
}

/// The server sends its hello *before* the subsystem success reply (legal
/// for a server that starts writing at once): the bytes must not be lost.
#[tokio::test]
async fn data_before_the_subsystem_reply_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|id, session, chan| {
            session.data(id, bytes::Bytes::from_static(HELLO)).unwrap();
            session.channel_success(id).unwrap();
            tokio::spawn(async move {
                let _chan = chan;
                std::future::pending::<()>().await
            });
        }),
    )
    .await;
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let mut got = vec![0u8; HELLO.len()];
    guard(
        "read",
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut got),
    )
    .await
    .unwrap();
    assert_eq!(got, HELLO);
}

/// And the ordinary fast server: success, then the hello in the same flight.
#[tokio::test]
async fn data_right_after_the_subsystem_reply_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|id, session, chan| {
            session.channel_success(id).unwrap();
            session.data(id, bytes::Bytes::from_static(HELLO)).unwrap();
            tokio::spawn(async move {
                let _chan = chan;
                std::future::pending::<()>().await
            });
        }),
    )
    .await;
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let mut got = vec![0u8; HELLO.len()];
    guard(
        "read",
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut got),
    )
    .await
    .unwrap();
    assert_eq!(got, HELLO);
}

/// Every byte of the hello in its own SSH_MSG_CHANNEL_DATA, then EOF.
#[tokio::test]
async fn one_byte_packets() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|id, session, chan| {
            session.channel_success(id).unwrap();
            tokio::spawn(async move {
                for b in HELLO.iter().cycle().take(HELLO.len() * 20) {
                    chan.data_bytes(vec![*b]).await.unwrap();
                }
                chan.eof().await.unwrap();
                std::future::pending::<()>().await
            });
        }),
    )
    .await;
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let (got, end) = guard("read", read_to_end(&mut s)).await;
    end.unwrap();
    assert_eq!(got, HELLO.repeat(20));
}

/// The server closes the channel in the middle of a message: the client
/// reads what was sent, then a clean end of stream; writes then fail.
#[tokio::test]
async fn server_closes_channel_mid_message() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|id, session, chan| {
            session.channel_success(id).unwrap();
            tokio::spawn(async move {
                chan.data_bytes(&HELLO[..40]).await.unwrap();
                chan.close().await.unwrap();
                std::future::pending::<()>().await
            });
        }),
    )
    .await;
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let (got, end) = guard("read", read_to_end(&mut s)).await;
    end.unwrap();
    assert_eq!(got, &HELLO[..40]);
    let w = guard("write", s.write_all(b"<rpc/>")).await;
    assert_eq!(w.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
}

/// The server drops the whole SSH connection mid-message (no channel close):
/// the client reads what was sent, then an error naming the lost connection.
#[tokio::test]
async fn connection_lost_mid_message() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|id, session, chan| {
            session.channel_success(id).unwrap();
            let handle = session.handle();
            tokio::spawn(async move {
                chan.data_bytes(&HELLO[..40]).await.unwrap();
                let _ = handle
                    .disconnect(
                        netconf_ssh::russh::Disconnect::ByApplication,
                        "bye".into(),
                        "en".into(),
                    )
                    .await;
                drop(chan);
            });
        }),
    )
    .await;
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts(&kh)))
        .await
        .unwrap();
    let (got, end) = guard("read", read_to_end(&mut s)).await;
    assert_eq!(got, &HELLO[..40]);
    let e = end.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("lost"), "{e}");
}

/// The TCP connection is cut under both peers (a proxy in between stops):
/// reads and writes end with errors instead of hanging.
#[tokio::test]
async fn tcp_cut_mid_stream() {
    let (server, mut listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let proxy_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let paddr = proxy_l.local_addr().unwrap();
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {}\n",
            paddr.port(),
            server.host_public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let proxy = tokio::spawn(async move {
        let (mut a, _) = proxy_l.accept().await.unwrap();
        let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    let server_side = tokio::spawn(async move {
        let sess = listener.accept().await.unwrap();
        let (_, mut st) = sess.into_parts();
        st.write_all(&HELLO[..40]).await.unwrap();
        // keep the server session open; it must notice the cut too
        let (_, end) = read_to_end(&mut st).await;
        end
    });
    let mut s = guard("connect", connect("127.0.0.1", paddr.port(), &opts(&kh)))
        .await
        .unwrap();
    let mut got = vec![0u8; 40];
    guard(
        "read",
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut got),
    )
    .await
    .unwrap();
    proxy.abort();
    let (_, end) = guard("client read after cut", read_to_end(&mut s)).await;
    assert!(end.is_err(), "a cut connection is not a clean EOF");
    let server_end = guard("server read after cut", server_side).await.unwrap();
    assert!(server_end.is_err());
}

/// A server that writes a reply and drops its stream at once: everything it
/// wrote still reaches a client that is slow to read: the close is queued
/// behind the data. (OpenSSH's client once lost the tail of an echo in
/// `openssh.rs` when our server disconnected right after closing; the server
/// now closes the channel and leaves ending the connection to the client.)
#[tokio::test]
async fn dropping_a_stream_still_delivers_what_was_written() {
    const LEN: usize = 32 << 20;
    let (server, mut listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let o = opts(&kh).channel(netconf_ssh::ChannelOptions::default().read_buffer_limit(1 << 20));
    let mut client = guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap();
    let sess = guard("accept", listener.accept()).await.unwrap();
    tokio::spawn(async move {
        let mut s = sess.stream;
        s.write_all(&payload(LEN, 4)).await.unwrap();
        drop(s);
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (got, end) = guard("read", read_to_end(&mut client)).await;
    end.unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got == payload(LEN, 4));
}

/// A server that accepts the subsystem request but never answers it: the
/// client's subsystem deadline fires with a typed timeout.
#[tokio::test]
async fn unanswered_subsystem_request_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = raw_server(
        dir.path(),
        Arc::new(|_id, _session, chan| {
            tokio::spawn(async move {
                let _chan = chan;
                std::future::pending::<()>().await
            });
        }),
    )
    .await;
    let o = opts(&kh).subsystem_timeout(std::time::Duration::from_millis(300));
    let err = guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: netconf_ssh::TimeoutKind::Subsystem,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("subsystem"), "{err}");
}

/// A TCP peer that never speaks SSH: the connect deadline covers the key
/// exchange, not only the TCP connect.
#[tokio::test]
async fn silent_tcp_peer_hits_the_connect_deadline() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir.path().join("kh")).connect_timeout(std::time::Duration::from_millis(300));
    let err = guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: netconf_ssh::TimeoutKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}
