//! Every client authentication method against our server, over loopback SSH.

mod common;

use common::*;
use netconf_ssh::{connect, ClientOptions, Error, ServerOptions, StaticAuth};
use std::process::Command;

async fn check_login(
    auth: StaticAuth,
    client: impl FnOnce(ClientOptions) -> ClientOptions,
    user: &str,
) {
    let (server, listener, addr) = start_server(ServerOptions::default(), auth).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let echo = spawn_echo(listener);
    let opts = client(ClientOptions::new(user).known_hosts(&kh));
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap();
    assert_eq!(
        guard("echo", roundtrip(&mut s, b"<hello/>]]>]]>")).await,
        b"<hello/>]]>]]>"
    );
    drop(s);
    echo.abort();
}

#[tokio::test]
async fn password() {
    check_login(
        StaticAuth::new().user("admin", "s3cret"),
        |o| o.password("s3cret"),
        "admin",
    )
    .await;
}

#[tokio::test]
async fn wrong_password_names_user_and_methods() {
    let (server, listener, addr) = start_server(
        ServerOptions::default(),
        StaticAuth::new().user("admin", "s3cret"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kh = known_hosts_for(dir.path(), &server, addr);
    let _echo = spawn_echo(listener);
    let opts = ClientOptions::new("admin")
        .known_hosts(&kh)
        .password("nope");
    let err = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err:?}");
    assert!(
        msg.contains("\"admin\"")
            && msg.contains("password")
            && msg.contains("keyboard-interactive"),
        "{msg}"
    );
}

/// A server that offers only keyboard-interactive (as some Junos and IOS XR
/// setups do): the client must answer the "Password:" prompt with the
/// password.
#[tokio::test]
async fn keyboard_interactive_only_server() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, kh) = kbd_only_server(dir.path()).await;
    let opts = ClientOptions::new("op").known_hosts(&kh).password("pw");
    let mut s = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap();
    assert_eq!(guard("echo", roundtrip(&mut s, b"abc")).await, b"abc");
}

/// A plain russh server offering only keyboard-interactive (`Password:`, echo
/// off), then echoing on any subsystem.
async fn kbd_only_server(dir: &std::path::Path) -> (std::net::SocketAddr, std::path::PathBuf) {
    use netconf_ssh::russh::server::{Auth, Msg, Response, Session};
    use netconf_ssh::russh::{self, Channel, ChannelId, MethodKind, MethodSet};
    use std::borrow::Cow;
    use std::sync::Arc;

    struct H {
        chan: Option<Channel<Msg>>,
    }
    impl russh::server::Handler for H {
        type Error = russh::Error;
        async fn auth_keyboard_interactive<'a>(
            &'a mut self,
            user: &str,
            _sub: &str,
            response: Option<Response<'a>>,
        ) -> Result<Auth, Self::Error> {
            match response {
                None => Ok(Auth::Partial {
                    name: Cow::Borrowed("login"),
                    instructions: Cow::Borrowed(""),
                    prompts: Cow::Owned(vec![(Cow::Borrowed("Password: "), false)]),
                }),
                Some(mut r) => {
                    let pw = r.next().unwrap_or_default();
                    Ok(if user == "op" && &pw[..] == b"pw" {
                        Auth::Accept
                    } else {
                        Auth::reject()
                    })
                }
            }
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
            let mut chan = self.chan.take().unwrap();
            tokio::spawn(async move {
                while let Some(m) = chan.wait().await {
                    if let russh::ChannelMsg::Data { data } = m {
                        let _ = chan.data_bytes(data).await;
                    }
                }
            });
            Ok(())
        }
    }
    let key = netconf_ssh::keys::generate_ed25519();
    let kh_line = key.public_key().to_openssh().unwrap();
    let config = Arc::new(russh::server::Config {
        methods: MethodSet::from(&[MethodKind::KeyboardInteractive][..]),
        keys: vec![key],
        auth_rejection_time: std::time::Duration::from_millis(10),
        ..Default::default()
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(run) = russh::server::run_stream(config, s, H { chan: None }).await {
                    let _ = run.await;
                }
            });
        }
    });
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:{} {kh_line}\n", addr.port())).unwrap();
    (addr, kh)
}

#[tokio::test]
async fn keyboard_interactive_against_our_server() {
    // Our client tries "password" first, which our server accepts; to reach
    // our server's keyboard-interactive path, drive a raw russh client.
    use netconf_ssh::russh::{self, client};
    use std::sync::Arc;
    let (_server, listener, addr) = start_server(
        ServerOptions::default(),
        StaticAuth::new().user("admin", "pw"),
    )
    .await;
    let _echo = spawn_echo(listener);
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
    let r = h
        .authenticate_keyboard_interactive_start("admin", None)
        .await
        .unwrap();
    let client::KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } = r else {
        panic!("expected a prompt, got {r:?}");
    };
    assert_eq!(prompts.len(), 1);
    assert!(!prompts[0].echo);
    let r = h
        .authenticate_keyboard_interactive_respond(vec!["pw".into()])
        .await
        .unwrap();
    assert!(
        matches!(r, client::KeyboardInteractiveAuthResponse::Success),
        "{r:?}"
    );
}

async fn key_login(kind: &str, pem: bool, passphrase: &str) {
    if !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), &format!("id_{kind}"), kind, pem, passphrase);
    let text = std::fs::read_to_string(&key).unwrap();
    let expect = if pem && kind == "rsa" {
        "BEGIN RSA PRIVATE KEY"
    } else if pem {
        "BEGIN"
    } else {
        "BEGIN OPENSSH PRIVATE KEY"
    };
    assert!(text.contains(expect), "{text}");
    let auth = StaticAuth::new().authorized_key("netops", public_key(&key));
    check_login(
        auth,
        |o| {
            if passphrase.is_empty() {
                o.key_file(&key)
            } else {
                o.key_file_with_passphrase(&key, passphrase)
            }
        },
        "netops",
    )
    .await;
}

#[tokio::test]
async fn publickey_ed25519_openssh() {
    key_login("ed25519", false, "").await;
}

#[tokio::test]
async fn publickey_ed25519_openssh_passphrase() {
    key_login("ed25519", false, "correct horse").await;
}

#[tokio::test]
async fn publickey_rsa_openssh_passphrase() {
    key_login("rsa", false, "correct horse").await;
}

#[tokio::test]
async fn publickey_rsa_pem() {
    key_login("rsa", true, "").await;
}

#[tokio::test]
async fn publickey_rsa_pem_passphrase() {
    key_login("rsa", true, "correct horse").await;
}

#[tokio::test]
async fn publickey_ecdsa_pem() {
    key_login("ecdsa", true, "").await;
}

#[tokio::test]
async fn wrong_passphrase_names_the_file() {
    if !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519", "ed25519", false, "right");
    let (server, listener, addr) = start_server(ServerOptions::default(), StaticAuth::new()).await;
    let kh = known_hosts_for(dir.path(), &server, addr);
    let _echo = spawn_echo(listener);
    let opts = ClientOptions::new("u")
        .known_hosts(&kh)
        .key_file_with_passphrase(&key, "wrong");
    let err = guard("connect", connect("127.0.0.1", addr.port(), &opts))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err:?}");
    assert!(err.to_string().contains("id_ed25519"), "{err}");
}

/// ssh-agent from openssh-client, on a socket in the temp dir; the client
/// finds it through SSH_AUTH_SOCK (set for this process only: the agent test
/// is the only one in this binary that reads it).
#[tokio::test]
async fn agent() {
    if !have("ssh-agent") || !have("ssh-add") || !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_agent", "ed25519", false, "");
    let sock = dir.path().join("agent.sock");
    let mut agent = Command::new(which("ssh-agent").unwrap())
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let added = Command::new(which("ssh-add").unwrap())
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // SAFETY of the process environment: no other test in this binary reads
    // SSH_AUTH_SOCK, and set_var is safe in edition 2021.
    std::env::set_var("SSH_AUTH_SOCK", &sock);
    let auth = StaticAuth::new().authorized_key("agentuser", public_key(&key));
    check_login(auth, |o| o.agent(true), "agentuser").await;
    let _ = agent.kill();
    let _ = agent.wait();
}
