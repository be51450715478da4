//! NETCONF over real loopback SSH with the tokio adapter (issue 14), on a TCP stream the
//! caller connected: call home both ways, with tokio's own streams (`Server::serve_ssh`,
//! `Client::connect_ssh_over`). Everything else over SSH runs on both runtimes in the
//! netconf-tests crate's `tests/async_ssh.rs`.
//!
//! Every test binds 127.0.0.1, writes only to temp dirs, passes explicit known_hosts files
//! and runs under a deadlock guard; none measures time.

use std::future::Future;
use std::time::Duration;

use netconf_tokio::operations::{Datastore, GetConfig};
use netconf_tokio::server::{ServerOptions, SessionInfo};
use netconf_tokio::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};
use netconf_tokio::{Client, ClientOptions, Config, Reply, Request, Server};

const GUARD: Duration = Duration::from_secs(180);
const NS: &str = "urn:test:ssh";

async fn guarded<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, body)
        .await
        .expect("deadlock guard: the test did not finish in time")
}

/// get-config of running: `<who>` with the session's username; anything else `<ok/>`.
async fn handle(request: Request, info: SessionInfo) -> Reply {
    match request.operation.name.as_str() {
        "get-config" => Reply::data(format!(
            "<who xmlns=\"{NS}\">{}</who>",
            info.username.as_deref().unwrap_or("-")
        ))
        .unwrap(),
        _ => Reply::Ok,
    }
}

fn server_config() -> Config {
    Config::server()
        .with_capability("urn:ietf:params:netconf:capability:notification:1.0")
        .with_max_message_size(256 << 20)
}

fn new_server() -> Server {
    Server::new(ServerOptions::new().config(server_config()), handle)
}

fn ssh_server() -> SshServer {
    SshServer::new(
        SshServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("admin", "pw"),
    )
    .unwrap()
}

async fn whoami(client: &Client) -> String {
    let data = client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let s = data.as_str().to_owned();
    let start = s.find('>').unwrap() + 1;
    s[start..s.rfind("</who>").unwrap()].to_owned()
}

/// RFC 8071 call home both ways: the NETCONF server dials, the client listens; each still
/// runs its own SSH role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_home() {
    guarded(async {
        let server = new_server();
        let ssh = ssh_server();
        let manager = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let manager_addr = manager.local_addr().unwrap();
        let device = {
            let (server, ssh) = (server.clone(), ssh.clone());
            tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(manager_addr).await.unwrap();
                server.serve_ssh(tcp, &ssh, Some(manager_addr)).await
            })
        };
        let (tcp, _) = manager.accept().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The device is recorded under the name the manager knows it by.
        let kh = dir.path().join("kh");
        std::fs::write(
            &kh,
            format!(
                "[device1]:4334 {}\n",
                ssh.host_public_key().to_openssh().unwrap()
            ),
        )
        .unwrap();
        let opts = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(&kh);
        let client = Client::connect_ssh_over(tcp, "device1:4334", &opts, &ClientOptions::new())
            .await
            .unwrap();
        assert_eq!(whoami(&client).await, "admin");
        client.close().await.unwrap();
        device.await.unwrap().unwrap();
        server.shutdown().await;
    })
    .await
}
