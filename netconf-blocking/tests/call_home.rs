//! RFC 8071 call home with the blocking adapter, both roles, over real loopback TLS and SSH:
//! our `CallHomeListener` (the manager: TLS or SSH client, NETCONF client) against our
//! `Server::call_home` (the device: TLS or SSH server, NETCONF server). A device is
//! identified by its certificate or host key; one the filter refuses, or whose certificate
//! or host key is wrong, is refused during the handshake, before any NETCONF byte; a
//! device reconnects after the manager restarts; one listener takes many devices.
//!
//! Every test binds 127.0.0.1, writes only to temp dirs and runs under a deadlock guard;
//! none measures time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netconf_blocking::call_home::{
    CallHomeEnd, CallHomeListener, CallHomeOptions, CallHomeTransport, DeviceIdentity, Reconnect,
};
use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::ssh::{
    known_hosts::fingerprint, PublicKey, SshClientOptions, SshError, SshServer, SshServerOptions,
    StaticAuth,
};
use netconf_blocking::tls::PemSource;
use netconf_blocking::{Client, Error, Reply, Server};
use netconf_tests::certs::Pki;

const GUARD: Duration = Duration::from_secs(60);
const NS: &str = "urn:test:call-home";

/// Runs `body` on a thread of its own and fails the test if it has not finished in time.
fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(GUARD) {
        Ok(()) => worker.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(_) => panic!("deadlock guard: the test did not finish in time"),
    }
}

/// A device: answers get-config with its name; counts the requests it saw.
fn device(name: &'static str, requests: Arc<AtomicUsize>) -> Server {
    Server::new(ServerOptions::new(), move |_request, _info| {
        requests.fetch_add(1, Ordering::SeqCst);
        Reply::data(format!("<device xmlns=\"{NS}\">{name}</device>")).unwrap()
    })
}

fn name_of(client: &Client) -> String {
    let data = client.call(&GetConfig::new(Datastore::Running)).unwrap();
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

#[test]
fn tls_device_calls_home_and_is_identified_by_its_certificate() {
    guarded(|| {
        let pki = Pki::generate();
        let listener = CallHomeListener::bind(
            "127.0.0.1:0",
            &CallHomeOptions::tls(pki.client_tls_options()),
        )
        .unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let device = device("r1", requests.clone());
        let manager = listener.local_addr().to_string();
        let calls = device
            .call_home(
                &[&manager],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();

        let called = listener.accept().unwrap();
        match &called.device.identity {
            DeviceIdentity::Certificate(der) => assert_eq!(*der, pki.server_cert_der()),
            other => panic!("expected a certificate, got {other:?}"),
        }
        assert!(called.device.peer.ip().is_loopback());
        assert_eq!(name_of(&called.client), "r1");
        assert_eq!(device.sessions(), vec![called.client.session_id()]);
        assert_eq!(calls.sessions(), 0, "the session is still open");
        called.client.close().unwrap();

        // The session ended: the device calls again, at once (persistent).
        let again = listener.accept().unwrap();
        assert_eq!(name_of(&again.client), "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        assert!(matches!(calls.wait(), CallHomeEnd::Stopped));
        device.shutdown();
    });
}

#[test]
fn a_device_the_filter_refuses_gets_no_netconf_byte() {
    guarded(|| {
        let pki = Pki::generate();
        let options = CallHomeOptions::tls(pki.client_tls_options()).filter(|_device| false);
        let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let device = device("r1", requests.clone());
        let calls = device
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick().max_attempts(Some(2)),
            )
            .unwrap();
        for _ in 0..2 {
            let refused = listener.accept().unwrap_err();
            let why = tls_error(&refused.error);
            assert!(why.contains("ApplicationVerificationFailure"), "{why}");
        }
        // The device never had a NETCONF session: it gives up after its two attempts.
        match calls.wait() {
            // The device learns why: the alert our TLS client sent.
            CallHomeEnd::GaveUp(Error::Tls(why)) => {
                assert!(why.to_string().contains("AccessDenied"), "{why}")
            }
            other => panic!("expected GaveUp with the TLS alert, got {other:?}"),
        }
        assert_eq!(calls.sessions(), 0);
        assert_eq!(requests.load(Ordering::SeqCst), 0);
        device.shutdown();
    });
}

#[test]
fn a_device_certificate_from_another_ca_is_refused_in_the_handshake() {
    guarded(|| {
        let pki = Pki::generate();
        let stranger = Pki::other_ca();
        let filtered = Arc::new(AtomicUsize::new(0));
        let seen = filtered.clone();
        let options = CallHomeOptions::tls(pki.client_tls_options()).filter(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            true
        });
        let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
        let device = device("impostor", Arc::default());
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
        let refused = listener.accept().unwrap_err();
        let why = tls_error(&refused.error);
        assert!(why.to_lowercase().contains("unknownissuer"), "{why}");
        assert!(matches!(calls.wait(), CallHomeEnd::GaveUp(Error::Tls(_))));
        assert_eq!(
            filtered.load(Ordering::SeqCst),
            0,
            "the filter only sees verified devices"
        );
        device.shutdown();
    });
}

#[test]
fn the_device_calls_again_after_the_manager_restarts() {
    guarded(|| {
        let pki = Pki::generate();
        let options = CallHomeOptions::tls(pki.client_tls_options());
        let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
        let addr = listener.local_addr();
        let device = device("r1", Arc::default());
        let calls = device
            .call_home(
                &[&addr.to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();
        let listener = listener;
        let first = listener.accept().unwrap();
        assert_eq!(name_of(&first.client), "r1");

        // The manager goes away: its listener, then its session.
        drop(listener);
        drop(first);
        // Calls now fail (nothing listens) and back off; the manager comes back on the
        // same port and the device finds it.
        std::thread::sleep(Duration::from_millis(300));
        let listener = CallHomeListener::bind(addr, &options).unwrap();
        let second = listener.accept().unwrap();
        assert_eq!(name_of(&second.client), "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        device.shutdown();
    });
}

#[test]
fn a_device_whose_first_manager_is_down_calls_the_second() {
    guarded(|| {
        let pki = Pki::generate();
        // A port nobody listens on: bind, note, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let listener = CallHomeListener::bind(
            "127.0.0.1:0",
            &CallHomeOptions::tls(pki.client_tls_options()),
        )
        .unwrap();
        let device = device("r2", Arc::default());
        let calls = device
            .call_home(
                &[&dead.to_string(), &listener.local_addr().to_string()],
                CallHomeTransport::Tls(pki.server_tls_options()),
                quick(),
            )
            .unwrap();
        let called = listener.accept().unwrap();
        assert_eq!(name_of(&called.client), "r2");
        // The server's shutdown stops its calls too (and wakes a call waiting its turn).
        device.shutdown();
        assert!(matches!(calls.wait(), CallHomeEnd::Stopped));
    });
}

struct SshDevice {
    server: Server,
    ssh: SshServer,
    requests: Arc<AtomicUsize>,
}

fn ssh_device(name: &'static str) -> SshDevice {
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

#[test]
fn ssh_device_calls_home_and_is_identified_by_its_host_key() {
    guarded(|| {
        let d = ssh_device("r1");
        let dir = tempfile::tempdir().unwrap();
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(known_hosts(&dir, d.ssh.host_public_key()));
        let listener = CallHomeListener::bind("127.0.0.1:0", &CallHomeOptions::ssh(ssh)).unwrap();
        let calls = d
            .server
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Ssh(d.ssh.clone()),
                quick(),
            )
            .unwrap();
        let called = listener.accept().unwrap();
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
        assert_eq!(name_of(&called.client), "r1");
        called.client.close().unwrap();
        let again = listener.accept().unwrap();
        assert_eq!(name_of(&again.client), "r1");
        assert_eq!(calls.sessions(), 1);
        calls.stop();
        d.server.shutdown();
    });
}

#[test]
fn an_ssh_device_with_the_wrong_host_key_is_refused_before_authentication() {
    guarded(|| {
        let d = ssh_device("impostor");
        let genuine = ssh_device("genuine");
        let dir = tempfile::tempdir().unwrap();
        // known_hosts has the genuine device's key; the impostor calls from the same address.
        let ssh = SshClientOptions::new("admin")
            .password("pw")
            .known_hosts(known_hosts(&dir, genuine.ssh.host_public_key()));
        let listener = CallHomeListener::bind("127.0.0.1:0", &CallHomeOptions::ssh(ssh)).unwrap();
        let calls = d
            .server
            .call_home(
                &[&listener.local_addr().to_string()],
                CallHomeTransport::Ssh(d.ssh.clone()),
                quick().max_attempts(Some(1)),
            )
            .unwrap();
        let refused = listener.accept().unwrap_err();
        assert!(
            matches!(ssh_error(&refused.error), SshError::HostKeyChanged { .. }),
            "{:?}",
            refused.error
        );
        assert!(matches!(calls.wait(), CallHomeEnd::GaveUp(Error::Ssh(_))));
        assert_eq!(calls.sessions(), 0);
        assert_eq!(d.requests.load(Ordering::SeqCst), 0);
        d.server.shutdown();
    });
}

#[test]
fn one_listener_takes_many_devices_pinned_by_host_key() {
    guarded(|| {
        let devices = [ssh_device("r1"), ssh_device("r2"), ssh_device("r3")];
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
        let listener = CallHomeListener::bind("127.0.0.1:0", &options).unwrap();
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
            match listener.accept() {
                Ok(called) => {
                    names.push(name_of(&called.client));
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
            calls[2].wait(),
            CallHomeEnd::GaveUp(Error::Ssh(_))
        ));
        for (d, c) in devices.iter().zip(&calls) {
            c.stop();
            d.server.shutdown();
        }
    });
}
