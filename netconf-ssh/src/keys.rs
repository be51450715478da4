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
    russh::keys::decode_secret_key(&text, passphrase).or_else(|source| {
        // OpenSSH writes an ECDSA private scalar as an mpint, without its leading zero bytes:
        // about one P-256 key in 256 has a 31-byte scalar, which `ssh-key` refuses
        // ("Length"). The same key with the scalar padded to the curve's size loads.
        pad_ecdsa_scalar(&text)
            .and_then(|padded| russh::keys::decode_secret_key(&padded, passphrase).ok())
            .ok_or_else(|| Error::Key {
                path: path.to_owned(),
                source,
            })
    })
}

/// `text`, an unencrypted OpenSSH private key, with its ECDSA private scalar left-padded
/// with zero bytes to the curve's size; `None` if it is no such key or needs no padding.
fn pad_ecdsa_scalar(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let body: String = text
        .trim()
        .strip_prefix(BEGIN)?
        .strip_suffix(END)?
        .split_whitespace()
        .collect();
    let blob = data_encoding::BASE64.decode(body.as_bytes()).ok()?;
    let mut outer = Reader(blob.strip_prefix(MAGIC)?);
    let (cipher, kdf, kdf_options) = (outer.string()?, outer.string()?, outer.string()?);
    if cipher != b"none" || outer.u32()? != 1 {
        return None; // encrypted, or several keys: not ours to rewrite
    }
    let public = outer.string()?;
    let mut private = Reader(outer.string()?);
    let checks = private.take(8)?;
    let (key_type, curve, point) = (private.string()?, private.string()?, private.string()?);
    let scalar = private.string()?;
    let comment = private.string()?;
    let size = match curve {
        b"nistp256" => 32,
        b"nistp384" => 48,
        b"nistp521" => 66,
        _ => return None,
    };
    if !key_type.starts_with(b"ecdsa-sha2-") || scalar.len() >= size {
        return None;
    }
    let mut padded = vec![0u8; size - scalar.len()];
    padded.extend_from_slice(scalar);
    let mut section = checks.to_vec();
    for field in [key_type, curve, point, &padded, comment] {
        put_string(&mut section, field);
    }
    // Padded to the cipher's block size ("none": 8) with 1, 2, 3, ...
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }
    let mut out = MAGIC.to_vec();
    for field in [cipher, kdf, kdf_options] {
        put_string(&mut out, field);
    }
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &section);
    let encoded = data_encoding::BASE64.encode(&out);
    let mut pem = format!("{BEGIN}\n");
    for line in encoded.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(line).ok()?);
        pem.push('\n');
    }
    pem.push_str(END);
    pem.push('\n');
    Some(pem)
}

/// Reads SSH wire fields (RFC 4251 section 5) off a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

fn put_string(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
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
