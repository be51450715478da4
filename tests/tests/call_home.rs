//! RFC 8071 call home on each async runtime (tokio and smol: every test runs on both),
//! both roles, over real loopback TLS and SSH:
//! our `CallHomeListener` (the manager: TLS or SSH client, NETCONF client) against our
//! `Server::call_home` (the device: TLS or SSH server, NETCONF server). A device is
//! identified by its certificate or host key; one the filter refuses, or whose certificate
//! or host key is wrong, is refused during the handshake, before any NETCONF byte; a
//! device reconnects after the manager restarts; one listener takes many devices.
//!
//! Every test binds 127.0.0.1, writes only to temp dirs and runs under a deadlock guard;
//! none measures time.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netconf_async::call_home::{
    CallHomeEnd, CallHomeListener, CallHomeOptions, CallHomeTransport, DeviceIdentity, Reconnect,
};
use netconf_async::ssh::{
    known_hosts::fingerprint, PublicKey, SshClientOptions, SshError, SshServer, SshServerOptions,
    StaticAuth,
};
use netconf_async::{Client, Runtime, Server};
use netconf_proto::operations::{Datastore, GetConfig};
use netconf_proto::server::ServerOptions;
use netconf_proto::tls::PemSource;
use netconf_proto::{Error, Reply};
use netconf_tests::certs::Pki;

const GUARD: Duration = Duration::from_secs(60);
const NS: &str = "urn:test:call-home";

netconf_tests::on_each_runtime!(
    tls_device_calls_home_and_is_identified_by_its_certificate,
    a_device_the_filter_refuses_gets_no_netconf_byte,
    a_device_certificate_from_another_ca_is_refused_in_the_handshake,
    the_device_calls_again_after_the_manager_restarts,
    a_device_whose_first_manager_is_down_calls_the_second,
    ssh_device_calls_home_and_is_identified_by_its_host_key,
    an_ssh_device_with_the_wrong_host_key_is_refused_before_authentication,
    one_listener_takes_many_devices_pinned_by_host_key,
);

async fn guarded<T>(body: impl Future<Output = T>) -> T {
    futures_lite::future::or(async { Some(body.await) }, async {
        async_io::Timer::after(GUARD).await;
        None
    })
    .await
    .expect("deadlock guard: the test did not finish in time")
}

/// A device: answers get-config with its name; counts the requests it saw.
fn device<R: Runtime>(name: &'static str, requests: Arc<AtomicUsize>) -> Server<R> {
    Server::new(ServerOptions::new(), move |_request, _info| {
        requests.fetch_add(1, Ordering::SeqCst);
        async move { Reply::data(format!("<device xmlns=\"{NS}\">{name}</device>")).unwrap() }
    })
}

async fn name_of<R>(client: &Client<R>) -> String {
    let data = client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .unwrap();
    let s = data.as_str();
    s[s.find('>').unwrap() + 1..s.rfind("</device>").unwrap()].to_owned()
}

/// Quick retries, so that reconnection tests do not wait for the 1 s default.
fn quick() -> Reconnect {
    Reconnect::new().backoff(Duration::from_millis(20), Duration::from_millis(200))
}

fn tls_error(e: &Error) -> String {
    match e {
        Error::Tls(tls) => tls.to_string(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

fn ssh_error(e: &Error) -> &SshError {
    match e {
        Error::Ssh(inner) => inner
            .downcast_ref::<SshError>()
            .expect("an SshError inside"),
        other => panic!("expected an SSH error, got {other:?}"),
    }
}

async fn tls_device_calls_home_and_is_identified_by_its_certificate<R: Runtime>() {
    {
        let pki = Pki::generate();
        let mut listener = CallHomeListener::<R>::bind(
            "127.0.0.1:0",
            &CallHomeOptions::tls(pki.client_tls_options()),
        )
        .await
        .unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let device = device::<R>("r1", requests.clone());
        let manager = listener.local_addr().to_string();
        let calls = device
            .call_home(
                &[&manager],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();

        let called = listener.accept().await.unwrap();
        match &called.device.identity {
            DeviceIdentity::Certificate(der) => assert_eq!(*der, pki.server_cert_der()),
            other => panic!("expected a certificate, got {other:?}"),
        }
        assert!(called.device.peer.ip().is_loopback());
        assert_eq!(name_of(&called.client).await, "r1");
        assert_eq!(device.sessions(), vec![called.client.session_id()]);
        assert_eq!(calls.sessions(), 0, "the session is still open");
        called.client.close().await.unwrap();

        // The session ended: the device calls again, at once (persistent).
        let again = listener.accept().await.unwrap();
        assert_eq!(name_of(&again.client).await, "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        assert!(matches!(calls.ended().await, CallHomeEnd::Stopped));
        device.shutdown().await;
    }
}

async fn a_device_the_filter_refuses_gets_no_netconf_byte<R: Runtime>() {
    {
        let pki = Pki::generate();
        let options = CallHomeOptions::tls(pki.client_tls_options()).filter(|_device| false);
        let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &options)
            .await
            .unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let device = device::<R>("r1", requests.clone());
        let calls = device
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick().max_attempts(Some(2)),
            )
            .unwrap();
        for _ in 0..2 {
            let refused = listener.accept().await.unwrap_err();
            let why = tls_error(&refused.error);
            assert!(why.contains("ApplicationVerificationFailure"), "{why}");
        }
        // The device never had a NETCONF session: it gives up after its two attempts.
        match calls.ended().await {
            // The device learns why: the alert our TLS client sent.
            CallHomeEnd::GaveUp(Error::Tls(why)) => {
                assert!(why.to_string().contains("AccessDenied"), "{why}")
            }
            other => panic!("expected GaveUp with the TLS alert, got {other:?}"),
        }
        assert_eq!(calls.sessions(), 0);
        assert_eq!(requests.load(Ordering::SeqCst), 0);
        device.shutdown().await;
    }
}

async fn a_device_certificate_from_another_ca_is_refused_in_the_handshake<R: Runtime>() {
    {
        let pki = Pki::generate();
        let stranger = Pki::other_ca();
        let filtered = Arc::new(AtomicUsize::new(0));
        let seen = filtered.clone();
        let options = CallHomeOptions::tls(pki.client_tls_options()).filter(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            true
        });
        let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &options)
            .await
            .unwrap();
        let device = device::<R>("impostor", Arc::default());
        // The impostor trusts our CA (so only its own certificate is wrong).
        let mut tls = stranger.server_tls_options();
        tls.client_ca = vec![PemSource::pem(pki.ca_pem.clone())];
        let calls = device
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Tls(tls),
                quick().max_attempts(Some(1)),
            )
            .unwrap();
        let refused = listener.accept().await.unwrap_err();
        let why = tls_error(&refused.error);
        assert!(why.to_lowercase().contains("unknownissuer"), "{why}");
        assert!(matches!(
            calls.ended().await,
            CallHomeEnd::GaveUp(Error::Tls(_))
        ));
        assert_eq!(
            filtered.load(Ordering::SeqCst),
            0,
            "the filter only sees verified devices"
        );
        device.shutdown().await;
    }
}

async fn the_device_calls_again_after_the_manager_restarts<R: Runtime>() {
    {
        let pki = Pki::generate();
        let options = CallHomeOptions::tls(pki.client_tls_options());
        let listener = CallHomeListener::<R>::bind("127.0.0.1:0", &options)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let device = device::<R>("r1", Arc::default());
        let calls = device
            .call_home(
                &[&addr.to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();
        let mut listener = listener;
        let first = listener.accept().await.unwrap();
        assert_eq!(name_of(&first.client).await, "r1");

        // The manager goes away: its listener, then its session.
        drop(listener);
        drop(first);
        // Calls now fail (nothing listens) and back off; the manager comes back on the
        // same port and the device finds it.
        async_io::Timer::after(Duration::from_millis(300)).await;
        let mut listener = CallHomeListener::<R>::bind(addr, &options).await.unwrap();
        let second = listener.accept().await.unwrap();
        assert_eq!(name_of(&second.client).await, "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        device.shutdown().await;
    }
}

async fn a_device_whose_first_manager_is_down_calls_the_second<R: Runtime>() {
    {
        let pki = Pki::generate();
        // A port nobody listens on: bind, note, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut listener = CallHomeListener::<R>::bind(
            "127.0.0.1:0",
            &CallHomeOptions::tls(pki.client_tls_options()),
        )
        .await
        .unwrap();
        let device = device::<R>("r2", Arc::default());
        let calls = device
            .call_home(
                &[&dead.to_string(), &listener.local_addr().to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();
        let called = listener.accept().await.unwrap();
        assert_eq!(name_of(&called.client).await, "r2");
        calls.stop();
        device.shutdown().await;
    }
}

struct SshDevice<R> {
    server: Server<R>,
    ssh: SshServer,
    requests: Arc<AtomicUsize>,
}

fn ssh_device<R: Runtime>(name: &'static str) -> SshDevice<R> {
    let requests = Arc::new(AtomicUsize::new(0));
    SshDevice {
        server: device(name, requests.clone()),
        ssh: SshServer::new(
            SshServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
            StaticAuth::new().user("admin", "pw"),
        )
        .unwrap(),
        requests,
    }
}

/// A known_hosts file naming `key` for the device as a dialled connection would record it.
fn known_hosts(dir: &tempfile::TempDir, key: &PublicKey) -> PathBuf {
    let path = dir.path().join("known_hosts");
    let line = key.to_openssh().unwrap();
    std::fs::write(&path, format!("[127.0.0.1]:830 {line}\n")).unwrap();
    path
}

async fn ssh_device_calls_home_and_is_identified_by_its_host_key<R: Runtime>() {
    {
        let d = ssh_device::<R>("r1");
        let dir = tempfile::tempdir().unwrap();
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(known_hosts(&dir, d.ssh.host_public_key()));
        let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &CallHomeOptions::ssh(ssh))
            .await
            .unwrap();
        let calls = d
            .server
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Ssh(d.ssh.clone()),
                quick(),
            )
            .unwrap();
        let called = listener.accept().await.unwrap();
        match &called.device.identity {
            DeviceIdentity::HostKey {
                fingerprint: f,
                openssh,
            } => {
                assert_eq!(*f, fingerprint(d.ssh.host_public_key()));
                assert_eq!(*openssh, d.ssh.host_public_key().to_openssh().unwrap());
            }
            other => panic!("expected a host key, got {other:?}"),
        }
        assert_eq!(name_of(&called.client).await, "r1");
        called.client.close().await.unwrap();
        let again = listener.accept().await.unwrap();
        assert_eq!(name_of(&again.client).await, "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        d.server.shutdown().await;
    }
}

async fn an_ssh_device_with_the_wrong_host_key_is_refused_before_authentication<R: Runtime>() {
    {
        let d = ssh_device::<R>("impostor");
        let genuine = ssh_device::<R>("genuine");
        let dir = tempfile::tempdir().unwrap();
        // known_hosts has the genuine device's key; the impostor calls from the same address.
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(known_hosts(&dir, genuine.ssh.host_public_key()));
        let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &CallHomeOptions::ssh(ssh))
            .await
            .unwrap();
        let calls = d
            .server
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Ssh(d.ssh.clone()),
                quick().max_attempts(Some(1)),
            )
            .unwrap();
        let refused = listener.accept().await.unwrap_err();
        assert!(
            matches!(ssh_error(&refused.error), SshError::HostKeyChanged { .. }),
            "{:?}",
            refused.error
        );
        // The device's error names the manager it called (it used to say "call-home peer").
        let manager = listener.local_addr().to_string();
        match calls.ended().await {
            CallHomeEnd::GaveUp(e @ Error::Ssh(_)) => {
                let said = format!("{e}: {:?}", ssh_error(&e));
                assert!(said.contains(&manager), "{said}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(calls.sessions(), 0);
        assert_eq!(d.requests.load(Ordering::SeqCst), 0);
        d.server.shutdown().await;
    }
}

async fn one_listener_takes_many_devices_pinned_by_host_key<R: Runtime>() {
    {
        let devices = [
            ssh_device::<R>("r1"),
            ssh_device::<R>("r2"),
            ssh_device::<R>("r3"),
        ];
        // Pinning: r1 and r2 are ours, r3 is not.
        let allowed: Vec<String> = devices[..2]
            .iter()
            .map(|d| fingerprint(d.ssh.host_public_key()))
            .collect();
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .insecure_accept_any_host_key();
        let options = CallHomeOptions::ssh(ssh).filter(move |device| match &device.identity {
            DeviceIdentity::HostKey { fingerprint, .. } => allowed.contains(fingerprint),
            _ => false,
        });
        let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &options)
            .await
            .unwrap();
        let manager = listener.local_addr().to_string();
        let calls: Vec<_> = devices
            .iter()
            .map(|d| {
                let strategy = quick().max_attempts(Some(1));
                d.server
                    .call_home(&[&manager], CallHomeTransport::Ssh(d.ssh.clone()), strategy)
                    .unwrap()
            })
            .collect();
        let mut names = Vec::new();
        let mut refused = Vec::new();
        let mut clients = Vec::new();
        while names.len() + refused.len() < 3 {
            match listener.accept().await {
                Ok(called) => {
                    names.push(name_of(&called.client).await);
                    clients.push(called.client);
                }
                Err(e) => refused.push(e),
            }
        }
        names.sort();
        assert_eq!(names, ["r1", "r2"]);
        assert_eq!(refused.len(), 1);
        assert!(matches!(
            ssh_error(&refused[0].error),
            SshError::HostKeyRefused { .. }
        ));
        assert_eq!(devices[2].requests.load(Ordering::SeqCst), 0);
        assert!(matches!(
            calls[2].ended().await,
            CallHomeEnd::GaveUp(Error::Ssh(_))
        ));
        for (d, c) in devices.iter().zip(&calls) {
            c.stop();
            d.server.shutdown().await;
        }
    }
}

/// Across adapters: a blocking manager takes a call from a tokio device over SSH, and a
/// tokio manager one from a blocking device over TLS (the identities and sessions as above).
mod across_adapters {
    use super::*;

    #[test]
    fn blocking_listener_and_tokio_device_over_ssh() {
        let rt = ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let d = ssh_device::<netconf_tokio::Tokio>("r1");
        let dir = tempfile::tempdir().unwrap();
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(known_hosts(&dir, d.ssh.host_public_key()));
        let listener =
            netconf_blocking::CallHomeListener::bind("127.0.0.1:0", &CallHomeOptions::ssh(ssh))
                .unwrap();
        let manager = listener.local_addr().to_string();
        let calls = rt.block_on(async {
            d.server
                .call_home(&[&manager], CallHomeTransport::Ssh(d.ssh.clone()), quick())
                .unwrap()
        });
        let called = listener
            .accept_timeout(GUARD)
            .expect("the device called within the guard")
            .unwrap();
        assert!(matches!(
            called.device.identity,
            DeviceIdentity::HostKey { .. }
        ));
        let data = called
            .client
            .call(&GetConfig::new(Datastore::Running))
            .unwrap();
        assert!(data.as_str().contains(">r1</device>"));
        calls.stop();
        rt.block_on(d.server.shutdown());
    }

    #[test]
    fn tokio_listener_and_blocking_device_over_tls() {
        let rt = ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(guarded(async {
            let pki = Pki::generate();
            let mut listener = CallHomeListener::<netconf_tokio::Tokio>::bind(
                "127.0.0.1:0",
                &CallHomeOptions::tls(pki.client_tls_options()),
            )
            .await
            .unwrap();
            let device = netconf_blocking::Server::new(ServerOptions::new(), |_, _| {
                Reply::data(format!("<device xmlns=\"{NS}\">b1</device>")).unwrap()
            });
            let calls = device
                .call_home(
                    &[&listener.local_addr().to_string()],
                    netconf_blocking::call_home::CallHomeTransport::Tls(pki.server_tls_options()),
                    quick(),
                )
                .unwrap();
            let called = listener.accept().await.unwrap();
            assert_eq!(name_of(&called.client).await, "b1");
            calls.stop();
            device.shutdown();
        }));
    }
}
