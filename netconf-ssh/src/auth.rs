//! Client authentication: try each configured method once, in the order
//! OpenSSH uses (public keys, agent, password, keyboard-interactive), skipping
//! methods the server has said it does not accept.
//!
//! Keyboard-interactive matters for devices: Junos and IOS XR ask for the
//! password through it (`Password:` prompt, echo off), and some refuse the
//! plain `password` method. We answer every prompt that looks like a password
//! request with the configured password and anything else with an empty
//! string, so a device asking for a one-time code fails visibly instead of
//! being sent the password for it.

use std::sync::Arc;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse, Prompt};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh::{MethodKind, MethodSet};

use crate::client::{ClientHandler, ClientOptions, KeySource};
use crate::{keys, Error};

/// The server's answers so far: `None` until a failure tells us which methods
/// it accepts.
struct Progress {
    remaining: Option<MethodSet>,
    tried: Vec<String>,
}

impl Progress {
    fn allows(&self, m: MethodKind) -> bool {
        match &self.remaining {
            None => true,
            Some(set) => set.contains(&m),
        }
    }

    fn failed(&mut self, what: String, remaining: MethodSet) {
        self.tried.push(what);
        self.remaining = Some(remaining);
    }
}

/// Whether a keyboard-interactive prompt asks for the password.
pub(crate) fn is_password_prompt(p: &Prompt) -> bool {
    let text = p.prompt.to_ascii_lowercase();
    text.contains("password") || text.contains("passphrase") || (!p.echo && text.trim().is_empty())
}

pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    opts: &ClientOptions,
    peer: &str,
) -> Result<(), Error> {
    let user = opts.user.as_str();
    let ssh = |e| Error::ssh("authentication", peer, e);
    let mut p = Progress {
        remaining: None,
        tried: Vec::new(),
    };

    for source in &opts.keys {
        if !p.allows(MethodKind::PublicKey) {
            break;
        }
        let (key, label) = match source {
            KeySource::File { path, passphrase } => (
                Arc::new(keys::load_private_key(path, passphrase.as_deref())?),
                format!("publickey {}", path.display()),
            ),
            KeySource::Key(k) => (k.clone(), format!("publickey {}", k.algorithm())),
        };
        let hash = rsa_hash(handle, key.algorithm().is_rsa(), opts, peer).await?;
        let Some(hash) = hash else {
            p.tried
                .push(format!("{label} (server wants ssh-rsa/SHA-1, not enabled)"));
            continue;
        };
        let r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(ssh)?;
        match r {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => p.failed(label, remaining_methods),
        }
    }

    if opts.agent && p.allows(MethodKind::PublicKey) {
        match AgentClient::connect_env().await {
            Err(e) => {
                tracing::debug!(error = %e, "ssh-agent not reachable");
                p.tried.push(format!("agent (not reachable: {e})"));
            }
            Ok(mut agent) => {
                let ids = agent.request_identities().await.map_err(|e| Error::Agent {
                    what: "listing identities failed".into(),
                    source: Some(e),
                })?;
                if ids.is_empty() {
                    p.tried.push("agent (no identities)".into());
                }
                for id in ids {
                    let AgentIdentity::PublicKey { key, comment } = id else {
                        continue;
                    };
                    let hash = rsa_hash(handle, key.algorithm().is_rsa(), opts, peer).await?;
                    let Some(hash) = hash else { continue };
                    let r = handle
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await
                        .map_err(|e| Error::Agent {
                            what: format!("signing with {comment:?} failed: {e}"),
                            source: None,
                        })?;
                    match r {
                        AuthResult::Success => return Ok(()),
                        AuthResult::Failure {
                            remaining_methods, ..
                        } => p.failed(format!("agent key {comment:?}"), remaining_methods),
                    }
                    if !p.allows(MethodKind::PublicKey) {
                        break;
                    }
                }
            }
        }
    }

    if let Some(password) = &opts.password {
        if p.allows(MethodKind::Password) {
            match handle
                .authenticate_password(user, password.as_str())
                .await
                .map_err(ssh)?
            {
                AuthResult::Success => return Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => p.failed("password".into(), remaining_methods),
            }
        }
        if p.allows(MethodKind::KeyboardInteractive) {
            let mut r = handle
                .authenticate_keyboard_interactive_start(user, None)
                .await
                .map_err(ssh)?;
            // A server may ask several rounds (banner, password, "press enter");
            // bound them so a confused server cannot keep us here.
            let mut rounds_left = 8;
            loop {
                if rounds_left == 0 {
                    p.tried
                        .push("keyboard-interactive (too many prompts)".into());
                    break;
                }
                rounds_left -= 1;
                match r {
                    KeyboardInteractiveAuthResponse::Success => return Ok(()),
                    KeyboardInteractiveAuthResponse::Failure {
                        remaining_methods, ..
                    } => {
                        p.failed("keyboard-interactive".into(), remaining_methods);
                        break;
                    }
                    KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                        let answers = prompts
                            .iter()
                            .map(|q| {
                                if is_password_prompt(q) {
                                    password.clone()
                                } else {
                                    String::new()
                                }
                            })
                            .collect();
                        r = handle
                            .authenticate_keyboard_interactive_respond(answers)
                            .await
                            .map_err(ssh)?;
                    }
                }
            }
        }
    }

    if p.tried.is_empty() {
        p.tried
            .push("nothing (no password, key or agent configured)".into());
    }
    let offered = match &p.remaining {
        None => "unknown".to_owned(),
        Some(set) if set.is_empty() => "nothing more".to_owned(),
        Some(set) => set.iter().map(<&str>::from).collect::<Vec<_>>().join(", "),
    };
    Err(Error::AuthFailed {
        user: user.to_owned(),
        peer: peer.to_owned(),
        tried: p.tried.join(", "),
        offered,
    })
}

/// The signature hash for an RSA key: the best the server announced
/// (`server-sig-algs`), SHA-1 (`ssh-rsa`) only if allowed; `None` = skip key.
async fn rsa_hash(
    handle: &Handle<ClientHandler>,
    is_rsa: bool,
    opts: &ClientOptions,
    peer: &str,
) -> Result<Option<Option<HashAlg>>, Error> {
    if !is_rsa {
        return Ok(Some(None));
    }
    let best = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| Error::ssh("authentication", peer, e))?;
    Ok(match best {
        Some(Some(h)) => Some(Some(h)),
        // The server listed only ssh-rsa.
        Some(None) if opts.algorithms.legacy_sha1 => Some(None),
        Some(None) => None,
        // No server-sig-algs: an old server; SHA-1 if allowed, else try SHA-256.
        None if opts.algorithms.legacy_sha1 => Some(None),
        None => Some(Some(HashAlg::Sha256)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(prompt: &str, echo: bool) -> Prompt {
        Prompt {
            prompt: prompt.into(),
            echo,
        }
    }

    #[test]
    fn password_prompts() {
        assert!(is_password_prompt(&p("Password: ", false)));
        assert!(is_password_prompt(&p("admin@r1's password:", false)));
        assert!(is_password_prompt(&p("", false)));
        assert!(!is_password_prompt(&p("Verification code: ", false)));
        assert!(!is_password_prompt(&p("Username: ", true)));
    }
}
