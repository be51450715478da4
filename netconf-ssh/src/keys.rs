//! Loading and generating keys; thin wrappers that name the file in errors.
//!
//! Parsing is russh's (`russh::keys::decode_secret_key`, built on `ssh-key`):
//! OpenSSH format (`BEGIN OPENSSH PRIVATE KEY`, encrypted or not), PKCS#1
//! `BEGIN RSA PRIVATE KEY` (also with an AES-128-CBC passphrase, as
//! `ssh-keygen -m PEM` writes it) and PKCS#8 (`BEGIN [ENCRYPTED] PRIVATE KEY`).

use std::path::Path;

use russh::keys::{Algorithm, PrivateKey, PublicKey};

use crate::Error;

/// Reads a private key file, decrypting it with `passphrase` if given.
pub fn load_private_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading private key {}", path.display()),
        source,
    })?;
    russh::keys::decode_secret_key(&text, passphrase).map_err(|source| Error::Key {
        path: path.to_owned(),
        source,
    })
}

/// Reads an OpenSSH public key (`ssh-ed25519 AAAA... comment`) file.
pub fn load_public_key(path: &Path) -> Result<PublicKey, Error> {
    russh::keys::load_public_key(path).map_err(|source| Error::Key {
        path: path.to_owned(),
        source,
    })
}

/// A fresh ed25519 key, for a server that was given no host key file.
pub fn generate_ed25519() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .expect("ed25519 key generation does not fail")
}

/// Reads an OpenSSH `authorized_keys` file: one key per line, options before
/// the key type are skipped (not enforced), comments and blank lines ignored.
pub fn load_authorized_keys(path: &Path) -> Result<Vec<PublicKey>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading authorized keys {}", path.display()),
        source,
    })?;
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // The key type is the first field that parses together with the next.
        let key = fields
            .windows(2)
            .find_map(|w| PublicKey::from_openssh(&format!("{} {}", w[0], w[1])).ok());
        match key {
            Some(k) => keys.push(k),
            None => {
                tracing::warn!(file = %path.display(), "authorized_keys: unparsable line skipped")
            }
        }
    }
    Ok(keys)
}
