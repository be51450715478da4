//! Key files as OpenSSH writes them, loaded and used.
//!
//! OpenSSH stores an ECDSA private scalar as an mpint, without leading zero bytes, so about
//! one P-256 key in 256 has a 31-byte scalar. `ssh-key` refuses those ("Length"), so a
//! server given such a host key (`netconf serve --host-key`, an interop test's fresh key)
//! failed to start. The fixture is such a key, made by `ssh-keygen -t ecdsa -b 256`.

mod common;

use std::path::PathBuf;

use common::*;
use netconf_ssh::known_hosts::fingerprint;
use netconf_ssh::{connect, ClientOptions, ServerOptions, StaticAuth};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn an_ecdsa_key_with_a_short_scalar_loads_as_the_same_key() {
    let key = netconf_ssh::keys::load_private_key(&fixture("ecdsa_p256_short_scalar"), None)
        .expect("the key loads");
    let public = public_key(&fixture("ecdsa_p256_short_scalar.pub"));
    assert_eq!(fingerprint(key.public_key()), fingerprint(&public));
}

/// The key signs the handshake: a client pinned to the key's fingerprint connects, so the
/// padded scalar is the very private key.
#[tokio::test]
async fn a_server_with_that_host_key_proves_it_in_the_handshake() {
    let path = fixture("ecdsa_p256_short_scalar");
    let (server, listener, addr) = start_server(
        ServerOptions::default().host_key_file(&path),
        StaticAuth::new().user("u", "p"),
    )
    .await;
    let _echo = spawn_echo(listener);
    let pinned = fingerprint(&public_key(&fixture("ecdsa_p256_short_scalar.pub")));
    assert_eq!(server.host_key_fingerprint(), pinned);
    let options = ClientOptions::new("u")
        .password("p")
        .host_key_fingerprint(pinned);
    let mut stream = guard("connect", connect("127.0.0.1", addr.port(), &options))
        .await
        .expect("connected to the server holding that key");
    assert_eq!(roundtrip(&mut stream, b"ping").await, b"ping");
}
