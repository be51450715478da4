//! Host-key verification against our server: known_hosts (plain, hashed,
//! several key types), unknown and changed keys, accept-new, pinning.

mod common;

use common::*;
use netconf_ssh::known_hosts::{fingerprint, hashed_host_pattern};
use netconf_ssh::{connect, ClientOptions, Error, ServerOptions, StaticAuth};

async fn server() -> (
    netconf_ssh::SshServer,
    std::net::SocketAddr,
    tokio::task::JoinHandle<Vec<String>>,
) {
    let (server, listener, addr) =
        start_server(ServerOptions::default(), StaticAuth::new().user("u", "p")).await;
    let echo = spawn_echo(listener);
    (server, addr, echo)
}

fn opts() -> ClientOptions {
    ClientOptions::new("u").password("p")
}

fn ecdsa_line() -> String {
    use netconf_ssh::russh::keys::{Algorithm, EcdsaCurve, PrivateKey};
    let k = PrivateKey::random(
        &mut rand::rng(),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    )
    .unwrap();
    k.public_key().to_openssh().unwrap()
}

/// The host has an ECDSA and an ed25519 entry (the server presents the
/// ed25519 one), another host has yet another key, and an unparsable line is
/// skipped.
#[tokio::test]
async fn known_key_accepted_among_other_types_and_hosts() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let other = netconf_ssh::keys::generate_ed25519();
    std::fs::write(
        &kh,
        format!(
            "# comment\n127.0.0.1 {}\n[127.0.0.1]:{port} ssh-rsa AAAAB3Nza-broken\n\
             [127.0.0.1]:{port} {}\n[127.0.0.1]:{port}\t{}\n",
            other.public_key().to_openssh().unwrap(),
            ecdsa_line(),
            server.host_public_key().to_openssh().unwrap(),
            port = addr.port()
        ),
    )
    .unwrap();
    let mut s = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap();
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
}

/// Only an ECDSA key is recorded for the host and it presents ed25519: not
/// trusted, and accept-new refuses too (an attacker could otherwise pick a
/// key type the file does not cover).
#[tokio::test]
async fn other_key_type_only_is_not_trusted() {
    let (_server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", addr.port(), ecdsa_line()),
    )
    .unwrap();
    let err = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnknownHostKey { .. }), "{err:?}");
    let o = opts().known_hosts(&kh).accept_new_host_keys(true);
    let err = guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HostKeyChanged { line: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn hashed_entry_accepted() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let name = format!("[127.0.0.1]:{}", addr.port());
    std::fs::write(
        &kh,
        format!(
            "{} {}\n",
            hashed_host_pattern(&name, b"twenty bytes of salt"),
            server.host_public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap();
}

/// A file hashed by OpenSSH itself (`ssh-keygen -H`), not by our helper.
#[tokio::test]
async fn hashed_by_ssh_keygen_accepted() {
    if !have("ssh-keygen") {
        return;
    }
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let out = std::process::Command::new(which("ssh-keygen").unwrap())
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_host_refused_with_fingerprint() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let err = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnknownHostKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&server.host_key_fingerprint()), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{}", addr.port())), "{msg}");
    assert!(!kh.exists(), "nothing may be recorded without accept-new");
}

#[tokio::test]
async fn changed_key_refused_naming_both_fingerprints_and_line() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let old = netconf_ssh::keys::generate_ed25519();
    std::fs::write(
        &kh,
        format!(
            "# line 1\n\n[127.0.0.1]:{} {}\n",
            addr.port(),
            old.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    // accept-new must not weaken this.
    let o = opts().known_hosts(&kh).accept_new_host_keys(true);
    let err = guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::HostKeyChanged { line, .. } => assert_eq!(*line, 3),
        e => panic!("{e:?}"),
    }
    assert!(msg.contains(&server.host_key_fingerprint()), "{msg}");
    assert!(msg.contains(&fingerprint(old.public_key())), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "host key for 127.0.0.1:{} changed: offered SHA256:",
            addr.port()
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn accept_new_records_then_verifies() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("sub").join("known_hosts");
    let o = opts().known_hosts(&kh).accept_new_host_keys(true);
    guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", addr.port())),
        "{text}"
    );
    // Second time: known, nothing appended; also without accept-new.
    guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);
    let _ = server;
}

#[tokio::test]
async fn pinned_fingerprint() {
    let (server, addr, _e) = server().await;
    let ok = opts().host_key_fingerprint(server.host_key_fingerprint());
    guard("connect", connect("127.0.0.1", addr.port(), &ok))
        .await
        .unwrap();
    let other = fingerprint(netconf_ssh::keys::generate_ed25519().public_key());
    let bad = opts().host_key_fingerprint(other.clone());
    let err = guard("connect", connect("127.0.0.1", addr.port(), &bad))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HostKeyMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&other), "{err}");
}

#[tokio::test]
async fn insecure_accept_any_is_explicit() {
    let (_server, addr, _e) = server().await;
    let o = opts().insecure_accept_any_host_key();
    guard("connect", connect("127.0.0.1", addr.port(), &o))
        .await
        .unwrap();
}

#[tokio::test]
async fn revoked_key_refused() {
    let (server, addr, _e) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let mut text = std::fs::read_to_string(&kh).unwrap();
    text.push_str(&format!(
        "@revoked * {}\n",
        server.host_public_key().to_openssh().unwrap()
    ));
    std::fs::write(&kh, text).unwrap();
    let err = guard(
        "connect",
        connect("127.0.0.1", addr.port(), &opts().known_hosts(&kh)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::HostKeyRevoked { line: 2, .. }),
        "{err:?}"
    );
}
