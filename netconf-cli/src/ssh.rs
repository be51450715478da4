//! SSH, the default transport: the client's options from the command line, and the pieces
//! `serve` needs (users, authorized keys, host key, the known_hosts line it prints).
//!
//! The blocking adapter does the work (`Client::connect_ssh_with`, `Server::listen_ssh`):
//! russh runs on netconf-ssh's shared runtime, the session on our threads.

use std::path::PathBuf;
use std::time::Duration;

use netconf_blocking::ssh::{
    known_hosts, HostKey, SshClientOptions, SshServer, SshServerOptions, StaticAuth,
};
use netconf_blocking::{Client, ClientOptions};

use crate::args::Global;
use crate::errors::{self, CliError, Target};

/// The SSH options the global flags describe: user, credentials, host-key policy, subsystem
/// and the per-step deadlines. Fails before any connection when no credential is given.
pub fn client_options(g: &Global) -> Result<SshClientOptions, CliError> {
    let user = match &g.user {
        Some(user) => user.clone(),
        None => std::env::var("USER")
            .map_err(|_| CliError::fatal("no SSH user: pass --user NAME (or set NETCONF_USER)"))?,
    };
    let agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
    if g.password.is_none() && g.key.is_none() && !agent {
        return Err(CliError::fatal(
            "no SSH credentials: pass --password P (or NETCONF_PASSWORD) or --key FILE, or run \
             an ssh-agent (SSH is the default transport; for TLS pass --ca, --cert and --key)",
        ));
    }
    let mut ssh = SshClientOptions::new(user).subsystem(g.subsystem.clone());
    // OpenSSH's order: keys, then the agent, then the password.
    if let Some(key) = &g.key {
        ssh = match &g.key_passphrase {
            Some(p) => ssh.key_file_with_passphrase(key, p.clone()),
            None => ssh.key_file(key),
        };
    }
    ssh = ssh.agent(agent);
    if let Some(password) = &g.password {
        ssh = ssh.password(password.clone());
    }
    ssh = match &g.host_key_fingerprint {
        Some(fp) => ssh.host_key_fingerprint(fp.clone()),
        None => {
            let ssh = match &g.known_hosts {
                Some(path) => ssh.known_hosts(path),
                None => ssh,
            };
            ssh.accept_new_host_keys(g.accept_new_host_key)
        }
    };
    if let Some(secs) = g.timeout {
        let t = Duration::from_secs(secs);
        ssh = ssh.connect_timeout(t).auth_timeout(t).subsystem_timeout(t);
    }
    Ok(ssh)
}

/// Opens the SSH session the global options describe.
pub fn connect(
    g: &Global,
    target: &Target<'_>,
    options: &ClientOptions,
) -> Result<Client, CliError> {
    let ssh = client_options(g)?;
    Client::connect_ssh_with(&target.addr(), &ssh, options)
        .map_err(|e| errors::connect_error(e, target))
}

/// `--ssh-user NAME[:PASSWORD]`: the name, and the password if one is given.
pub fn parse_user(spec: &str) -> Result<(String, Option<String>), CliError> {
    let (name, password) = match spec.split_once(':') {
        Some((name, password)) => (name, Some(password.to_owned())),
        None => (spec, None),
    };
    if name.is_empty() {
        return Err(CliError::fatal(format!(
            "--ssh-user {spec:?}: expected NAME:PASSWORD (or NAME with --authorized-keys)"
        )));
    }
    Ok((name.to_owned(), password))
}

/// What `serve --ssh` was asked for.
#[derive(Debug, Default)]
pub struct ServeSsh {
    pub users: Vec<String>,
    pub authorized_keys: Option<PathBuf>,
    pub host_key: Option<PathBuf>,
}

/// The SSH server `serve` runs, and the generated password when no user was given.
pub fn server(options: &ServeSsh) -> Result<(SshServer, Option<(String, String)>), CliError> {
    let mut auth = StaticAuth::new();
    let mut generated = None;
    let mut names = Vec::new();
    if options.users.is_empty() {
        let password = random_password();
        auth = auth.user("admin", password.clone());
        names.push("admin".to_owned());
        generated = Some(("admin".to_owned(), password));
    }
    for spec in &options.users {
        let (name, password) = parse_user(spec)?;
        match password {
            Some(password) => auth = auth.user(name.clone(), password),
            None if options.authorized_keys.is_some() => {}
            None => {
                return Err(CliError::fatal(format!(
                    "--ssh-user {spec:?} has no password: give NAME:PASSWORD, or \
                     --authorized-keys FILE for key logins"
                )))
            }
        }
        names.push(name);
    }
    if let Some(path) = &options.authorized_keys {
        for name in &names {
            auth = auth.authorized_keys_file(name, path).map_err(|e| {
                CliError::fatal(format!("--authorized-keys {}: {e}", path.display()))
            })?;
        }
    }
    let host_key = match &options.host_key {
        Some(path) => HostKey::File {
            path: path.clone(),
            passphrase: None,
        },
        None => HostKey::Generate,
    };
    let server =
        SshServer::new(SshServerOptions::default().host_key(host_key), auth).map_err(|e| {
            match &options.host_key {
                Some(path) => CliError::fatal(format!("--host-key {}: {e}", path.display())),
                None => CliError::fatal(format!("SSH server: {e}")),
            }
        })?;
    Ok((server, generated))
}

/// The known_hosts line for `server` at `[127.0.0.1]:port`.
pub fn known_hosts_line(server: &SshServer, port: u16) -> String {
    let mut key = server.host_public_key().clone();
    key.set_comment("");
    let key = key.to_openssh().unwrap_or_default();
    format!(
        "{} {}",
        known_hosts::host_entry_name("127.0.0.1", port),
        key.trim_end()
    )
}

/// 128 random bits as 32 hex digits, from the standard library's per-process random
/// hash keys (enough for a throwaway password on loopback).
fn random_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u8 {
        let mut h = RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(
            parse_user("admin:s3:cret").unwrap(),
            ("admin".into(), Some("s3:cret".into()))
        );
        assert_eq!(parse_user("ops").unwrap(), ("ops".into(), None));
        assert!(parse_user(":pw").is_err());
        assert!(server(&ServeSsh {
            users: vec!["ops".into()],
            ..ServeSsh::default()
        })
        .is_err());
    }

    #[test]
    fn generated_password_is_long_and_fresh() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
