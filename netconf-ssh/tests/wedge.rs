//! The window wedge (issue 14): both ends write 10 MiB and only then read.
//! Through our channel layer this must complete; the same pattern on raw
//! russh channels is kept as an ignored experiment that shows the trap.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use netconf_ssh::{connect, ClientOptions, ServerOptions, SshStream, StaticAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEN: usize = 10 * 1024 * 1024;

/// Writes all of `mine`, then reads `LEN` bytes and returns their checksum:
/// the pattern of a server that does not read while it writes a reply.
async fn write_then_read(mut s: SshStream, mine: Vec<u8>) -> (Checksum, usize) {
    s.write_all(&mine).await.unwrap();
    let mut got = vec![0u8; LEN];
    s.read_exact(&mut got).await.unwrap();
    let mut c = Checksum::new();
    c.update(&got);
    let hw = s.buffered_high_water();
    (c, hw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_both_ways_neither_reading_while_writing() {
    let (server, mut listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let a = payload(LEN, 1);
    let b = payload(LEN, 2);
    let (mut ca, mut cb) = (Checksum::new(), Checksum::new());
    ca.update(&a);
    cb.update(&b);
    let runs = 3;
    for run in 0..runs {
        let opts = ClientOptions::new("u").password("p").known_hosts(&kh);
        let client = guard("connect", connect("127.0.0.1", addr.port(), &opts))
            .await
            .unwrap();
        let sess = guard("accept", listener.accept()).await.unwrap();
        let start = Instant::now();
        let srv = tokio::spawn(write_then_read(sess.stream, b.clone()));
        let cli = tokio::spawn(write_then_read(client, a.clone()));
        let (cli, srv) = guard("10 MiB two-way transfer (wedge)", async {
            (cli.await.unwrap(), srv.await.unwrap())
        })
        .await;
        assert_eq!(cli.0, cb, "client received the server's bytes");
        assert_eq!(srv.0, ca, "server received the client's bytes");
        eprintln!(
            "run {run}: {:?}, unread backlog peaked at {} (client) / {} (server) bytes",
            start.elapsed(),
            cli.1,
            srv.1
        );
    }
}

/// The same exchange on raw russh channels (`make_writer`/`make_reader`,
/// nothing draining). Expected to wedge; run with `--ignored --nocapture` to
/// see how far the writers got. Not a regression test: it documents russh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "experiment: shows the russh wedge this crate avoids"]
async fn raw_russh_channels_wedge() {
    use netconf_ssh::russh::{self, client, ChannelMsg};

    let dir = tempfile::tempdir().unwrap();
    let server_written = Arc::new(AtomicUsize::new(0));
    let sw = server_written.clone();
    let (addr, _kh) = raw_server(
        dir.path(),
        Arc::new(move |id, session, mut chan| {
            session.channel_success(id).unwrap();
            let sw = sw.clone();
            tokio::spawn(async move {
                let data = payload(LEN, 2);
                let mut w = chan.make_writer();
                for piece in data.chunks(32 * 1024) {
                    w.write_all(piece).await.unwrap();
                    sw.fetch_add(piece.len(), Ordering::Relaxed);
                }
                let mut got = vec![0u8; LEN];
                chan.make_reader().read_exact(&mut got).await.unwrap();
            });
        }),
    )
    .await;

    struct Any;
    impl client::Handler for Any {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            _: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }
    let mut h = client::connect(Arc::new(client::Config::default()), addr, Any)
        .await
        .unwrap();
    assert!(h.authenticate_password("u", "p").await.unwrap().success());
    let mut chan = h.channel_open_session().await.unwrap();
    chan.request_subsystem(true, "netconf").await.unwrap();
    loop {
        if let Some(ChannelMsg::Success) = chan.wait().await {
            break;
        }
    }
    let client_written = Arc::new(AtomicUsize::new(0));
    let cw = client_written.clone();
    let task = tokio::spawn(async move {
        let data = payload(LEN, 1);
        let mut w = chan.make_writer();
        for piece in data.chunks(32 * 1024) {
            w.write_all(piece).await.unwrap();
            cw.fetch_add(piece.len(), Ordering::Relaxed);
        }
        let mut got = vec![0u8; LEN];
        chan.make_reader().read_exact(&mut got).await.unwrap();
    });
    let done = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .is_ok();
    eprintln!(
        "raw russh: {}; client wrote {} of {LEN}, server wrote {} of {LEN}",
        if done {
            "completed"
        } else {
            "WEDGED (no progress for 10 s)"
        },
        client_written.load(Ordering::Relaxed),
        server_written.load(Ordering::Relaxed)
    );
}
