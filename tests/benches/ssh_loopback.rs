//! NETCONF over SSH on a real loopback TCP socket, for the three adapters (each client's
//! `connect_ssh` against the same adapter's `listen_ssh`, netconf-ssh on both ends), against
//! raw russh measured in the same run.
//!
//! Raw russh: a russh server and client with russh's default algorithms (what netconf-ssh
//! offers too, apart from extra key exchanges: `chacha20-poly1305@openssh.com` is the cipher
//! both pick), `nodelay` as netconf-ssh sets it, an ed25519 host key like our server's, and
//! password authentication. After the `netconf` subsystem request the raw server answers
//! commands on the session channel: `T` (plus the rest of a request the size of the tiny
//! `<get-config>`) with as many bytes as its NETCONF reply, `B` with the 10 MB payload
//! (`Channel::data_bytes`, no copy). The raw client reads `ChannelMsg::Data` and copies it
//! into a buffer.
//!
//! Groups: `ssh_rpc_tiny` (one tiny `<get-config>` round trip), `ssh_get_config_10mb`
//! (`call` against the prebuilt answer, `call_streamed` read through a 64 KiB buffer against
//! the streamed answer), `ssh_connect` (TCP, SSH handshake, password auth, subsystem; the
//! NETCONF clients also exchange hellos).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{AnyClient, Connect, Listen, Payloads, PIECE, TEN_MB};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netconf_ssh::russh::{self, client, ChannelMsg};
use netconf_ssh::{ClientOptions as SshClientOptions, ServerOptions, SshServer, StaticAuth};

const ADAPTERS: [&str; 3] = ["blocking", "tokio", "smol"];

// ----- raw russh -----

type OnSubsystem = Arc<dyn Fn(russh::Channel<russh::server::Msg>) + Send + Sync>;

/// A plain russh server (user "bench", password "bench") on `rt`, handing each session
/// channel to `on` once the subsystem is requested.
fn raw_server(rt: &tokio::runtime::Runtime, on: OnSubsystem) -> std::net::SocketAddr {
    use russh::server::{Auth, Msg, Session};
    use russh::{Channel, ChannelId};

    struct H {
        chan: Option<Channel<Msg>>,
        on: OnSubsystem,
    }
    impl russh::server::Handler for H {
        type Error = russh::Error;
        async fn auth_password(&mut self, u: &str, p: &str) -> Result<Auth, Self::Error> {
            Ok(if u == "bench" && p == "bench" {
                Auth::Accept
            } else {
                Auth::reject()
            })
        }
        async fn channel_open_session(
            &mut self,
            channel: Channel<Msg>,
            reply: russh::server::ChannelOpenHandle,
            _s: &mut Session,
        ) -> Result<(), Self::Error> {
            reply.accept().await;
            self.chan = Some(channel);
            Ok(())
        }
        async fn subsystem_request(
            &mut self,
            id: ChannelId,
            _name: &str,
            session: &mut Session,
        ) -> Result<(), Self::Error> {
            session.channel_success(id)?;
            if let Some(chan) = self.chan.take() {
                (self.on)(chan);
            }
            Ok(())
        }
    }
    let config = Arc::new(russh::server::Config {
        keys: vec![netconf_ssh::keys::generate_ed25519()],
        auth_rejection_time: Duration::from_millis(10),
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    });
    rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = tcp.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = tcp.accept().await {
                let _ = s.set_nodelay(true);
                let h = H {
                    chan: None,
                    on: on.clone(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(run) = russh::server::run_stream(config, s, h).await {
                        let _ = run.await;
                    }
                });
            }
        });
        addr
    })
}

/// What the raw server does with a channel: answers `T` + `req - 1` bytes with `rep` bytes,
/// `B` with the 10 MB payload.
fn raw_serve(ten: Bytes, req: usize, rep: usize) -> OnSubsystem {
    Arc::new(move |mut chan| {
        let ten = ten.clone();
        let answer = Bytes::from(vec![b'a'; rep]);
        tokio::spawn(async move {
            let mut pending = 0usize;
            while let Some(msg) = chan.wait().await {
                let ChannelMsg::Data { data } = msg else {
                    continue;
                };
                let mut d = &data[..];
                while !d.is_empty() {
                    if pending > 0 {
                        let k = pending.min(d.len());
                        pending -= k;
                        d = &d[k..];
                        if pending == 0 && chan.data_bytes(answer.clone()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    match d[0] {
                        b'T' => pending = req - 1,
                        b'B' => {
                            if chan.data_bytes(ten.clone()).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                    d = &d[1..];
                }
            }
        });
    })
}

struct AnyKey;

impl client::Handler for AnyKey {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

struct RawSsh {
    chan: russh::Channel<client::Msg>,
    _handle: client::Handle<AnyKey>,
}

impl RawSsh {
    async fn connect(addr: std::net::SocketAddr) -> RawSsh {
        let config = Arc::new(client::Config {
            nodelay: true,
            ..Default::default()
        });
        let mut handle = client::connect(config, addr, AnyKey)
            .await
            .expect("raw russh connect");
        assert!(handle
            .authenticate_password("bench", "bench")
            .await
            .expect("auth")
            .success());
        let mut chan = handle.channel_open_session().await.expect("session");
        chan.request_subsystem(true, "netconf")
            .await
            .expect("subsystem");
        loop {
            match chan.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(_) => {}
                None => panic!("raw russh channel closed"),
            }
        }
        RawSsh {
            chan,
            _handle: handle,
        }
    }

    /// Sends `cmd`, then copies `buf.len()` bytes of channel data into `buf`.
    async fn exchange(&mut self, cmd: Bytes, buf: &mut [u8]) {
        self.chan.data_bytes(cmd).await.expect("send");
        let mut got = 0;
        while got < buf.len() {
            match self.chan.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    buf[got..got + data.len()].copy_from_slice(&data);
                    got += data.len();
                }
                Some(_) => {}
                None => panic!("raw russh channel closed"),
            }
        }
    }
}

fn bench_ssh(c: &mut Criterion) {
    let payloads = Payloads::new(false);
    let (req, rep) = common::tiny_wire_sizes();

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("raw-ssh-server")
        .enable_all()
        .build()
        .expect("runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("raw-ssh-client")
        .enable_all()
        .build()
        .expect("runtime");
    let raw_addr = raw_server(&server_rt, raw_serve(payloads.ten.clone(), req, rep));
    let mut raw = client_rt.block_on(RawSsh::connect(raw_addr));

    let ssh = SshServer::new(
        ServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("bench", "bench"),
    )
    .expect("ssh server");
    let ssh_client = SshClientOptions::new("bench")
        .password("bench")
        .host_key_fingerprint(ssh.host_key_fingerprint());
    let servers: Vec<_> = ADAPTERS
        .iter()
        .map(|a| common::start_server(a, Listen::Ssh(&ssh), &payloads))
        .collect();
    let clients: Vec<(&str, AnyClient)> = ADAPTERS
        .iter()
        .zip(&servers)
        .map(|(a, s)| {
            (
                *a,
                AnyClient::connect(a, &s.addr, Connect::Ssh(&ssh_client)),
            )
        })
        .collect();
    eprintln!("ssh_loopback: tiny get-config on the wire: request {req} bytes, reply {rep} bytes");

    {
        let mut g = c.benchmark_group("ssh_rpc_tiny");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        let mut request = vec![b'r'; req];
        request[0] = b'T';
        let request = Bytes::from(request);
        let mut answer = vec![0u8; rep];
        g.bench_function("raw_russh", |b| {
            b.iter(|| client_rt.block_on(raw.exchange(request.clone(), &mut answer)))
        });
        let tiny = common::op("");
        for (name, client) in &clients {
            g.bench_function(*name, |b| b.iter(|| client.call(&tiny)));
        }
        g.finish();
    }

    {
        let mut g = c.benchmark_group("ssh_get_config_10mb");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(TEN_MB as u64));
        let mut buf = vec![0u8; TEN_MB];
        let cmd = Bytes::from_static(b"B");
        g.bench_function("raw_russh", |b| {
            b.iter(|| client_rt.block_on(raw.exchange(cmd.clone(), &mut buf)))
        });
        let (prebuilt, streamed) = (common::op("10m"), common::op("10m-stream"));
        let mut piece_buf = vec![0u8; PIECE];
        for (name, client) in &clients {
            g.bench_function(format!("{name}_call"), |b| {
                b.iter(|| assert_eq!(client.call(&prebuilt), TEN_MB))
            });
            g.bench_function(format!("{name}_streamed"), |b| {
                b.iter(|| assert_eq!(client.streamed(&streamed, &mut piece_buf).bytes, TEN_MB))
            });
        }
        g.finish();
    }

    {
        let mut g = c.benchmark_group("ssh_connect");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        g.bench_function("raw_russh", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let s = client_rt.block_on(RawSsh::connect(raw_addr));
                    total += t.elapsed();
                    client_rt.block_on(async move {
                        let _ = s.chan.close().await;
                        let _ = s
                            ._handle
                            .disconnect(russh::Disconnect::ByApplication, "", "en")
                            .await;
                    });
                }
                total
            })
        });
        for (name, server) in ADAPTERS.iter().zip(&servers) {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let client =
                            AnyClient::connect(name, &server.addr, Connect::Ssh(&ssh_client));
                        total += t.elapsed();
                        client.close();
                    }
                    total
                })
            });
        }
        g.finish();
    }

    for (_, client) in clients {
        client.close();
    }
    for server in servers {
        server.stop();
    }
    {
        // russh's objects are dropped inside their runtime.
        let _inside = client_rt.enter();
        drop(raw);
    }
    client_rt.shutdown_timeout(Duration::from_secs(1));
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

criterion_group!(benches, bench_ssh);
criterion_main!(benches);
