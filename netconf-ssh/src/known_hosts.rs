//! OpenSSH `known_hosts` files: lookup with line numbers, and recording.
//!
//! Written here rather than taken from `russh::keys::known_hosts` because that
//! one splits on single spaces only, ignores `@revoked` / `@cert-authority`
//! markers and negated or wildcard patterns, and miscounts line numbers after
//! comments; our error for a changed key must point at the right line.
//! Parsing a key is left to `ssh-key` (re-exported by russh), the hashed-name
//! check to `hmac` + `sha1`, as OpenSSH defines it: `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

/// The name a host is recorded under: `host` for port 22, `[host]:port`
/// otherwise (OpenSSH's convention).
pub fn host_entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The `SHA256:...` fingerprint OpenSSH prints for a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The result of looking a host key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A non-revoked entry for this host has exactly this key.
    Known,
    /// No entry for this host at all.
    Unknown,
    /// An entry for this host has a different key of the same type.
    Changed { line: usize, known: String },
    /// Entries for this host exist, but only with other key types.
    OtherTypes { line: usize, known: String },
    /// The key is marked `@revoked` (for this host or all hosts).
    Revoked { line: usize },
}

struct Entry {
    line: usize,
    revoked: bool,
    key: PublicKey,
}

/// Entries of `text` whose host patterns match `name` (plain, wildcard or
/// hashed; a negated match excludes the line). `@cert-authority` lines are
/// skipped: we do not do host certificates.
fn matching_entries(text: &str, name: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let mut revoked = false;
        if first.starts_with('@') {
            match first {
                "@revoked" => revoked = true,
                _ => continue,
            }
            first = match fields.next() {
                Some(f) => f,
                None => continue,
            };
        }
        let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(first, name) {
            continue;
        }
        let Ok(key) = PublicKey::from_openssh(&format!("{kind} {b64}")) else {
            tracing::debug!(line = idx + 1, "known_hosts: unparsable key, line skipped");
            continue;
        };
        out.push(Entry {
            line: idx + 1,
            revoked,
            key,
        });
    }
    out
}

fn hosts_match(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut matched = false;
    for pat in patterns.split(',') {
        if let Some(neg) = pat.strip_prefix('!') {
            if wildcard_match(&neg.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                return false;
            }
        } else if wildcard_match(&pat.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
            matched = true;
        }
    }
    matched
}

fn hashed_match(hashed: &str, name: &str) -> bool {
    let mut parts = hashed.splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` glob matching, as in OpenSSH's `match_pattern`.
fn wildcard_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// Looks `key` up for `name` (see [`host_entry_name`]) in the file at `path`.
/// A missing file is an empty one.
pub(crate) fn check(path: &Path, name: &str, key: &PublicKey) -> io::Result<Verdict> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    Ok(check_text(&text, name, key))
}

fn check_text(text: &str, name: &str, key: &PublicKey) -> Verdict {
    let entries = matching_entries(text, name);
    // Revocation wins over everything, wherever it is in the file.
    if let Some(e) = entries.iter().find(|e| e.revoked && same_key(&e.key, key)) {
        return Verdict::Revoked { line: e.line };
    }
    let live: Vec<&Entry> = entries.iter().filter(|e| !e.revoked).collect();
    if live.iter().any(|e| same_key(&e.key, key)) {
        return Verdict::Known;
    }
    if let Some(e) = live.iter().find(|e| e.key.algorithm() == key.algorithm()) {
        return Verdict::Changed {
            line: e.line,
            known: fingerprint(&e.key),
        };
    }
    if let Some(e) = live.first() {
        return Verdict::OtherTypes {
            line: e.line,
            known: fingerprint(&e.key),
        };
    }
    Verdict::Unknown
}

/// The key algorithms recorded for `name`, in file order, so the client can
/// ask for a key type it can verify first (as OpenSSH does).
pub(crate) fn known_algorithms(path: &Path, name: &str) -> Vec<russh::keys::Algorithm> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut algs = Vec::new();
    for e in matching_entries(&text, name) {
        if !e.revoked && !algs.contains(&e.key.algorithm()) {
            algs.push(e.key.algorithm());
        }
    }
    algs
}

/// Appends `name key` to the file, creating it (and its directory) if
/// needed, as `StrictHostKeyChecking=accept-new` does. Written in plain form
/// so an operator can read what was learned.
pub(crate) fn record(path: &Path, name: &str, key: &PublicKey) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir)?;
        }
    }
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key
        .to_openssh()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let needs_newline = match fs::read(path) {
        Ok(b) => !b.is_empty() && !b.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = String::new();
    if needs_newline {
        line.push('\n');
    }
    line.push_str(name);
    line.push(' ');
    line.push_str(encoded.trim_end());
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.flush()
}

/// A hashed host pattern for `name` with the given salt, as `ssh-keygen -H`
/// writes it; for tests and tools that prepare known_hosts files.
pub fn hashed_host_pattern(name: &str, salt: &[u8]) -> String {
    let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("HMAC takes any key length");
    let hash = mac.chain_update(name.as_bytes()).finalize().into_bytes();
    format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(&hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBhhA8pnrkKZRDoi2Aqai0cPQrKVZ6rwgtphGpBDOTSV";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.example.com", "r1.example.com"));
        assert!(wildcard_match("r?", "r1"));
        assert!(!wildcard_match("r?", "r12"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "acbd"));
    }

    #[test]
    fn plain_port_hashed_negated_and_revoked() {
        let k = key(ED);
        let text = format!("# c\n\n[10.0.0.1]:830 {ED}\n");
        assert_eq!(check_text(&text, "[10.0.0.1]:830", &k), Verdict::Known);
        assert_eq!(check_text(&text, "10.0.0.1", &k), Verdict::Unknown);
        let text = format!(
            "{} {ED}\n",
            hashed_host_pattern("[r1]:2222", b"0123456789abcdef0123")
        );
        assert_eq!(check_text(&text, "[r1]:2222", &k), Verdict::Known);
        assert_eq!(check_text(&text, "[r1]:2223", &k), Verdict::Unknown);
        let text = format!("*.lab,!bad.lab {ED}\n");
        assert_eq!(check_text(&text, "good.lab", &k), Verdict::Known);
        assert_eq!(check_text(&text, "bad.lab", &k), Verdict::Unknown);
        let text = format!("r1 {ED2}\n#x\n@revoked * {ED}\n");
        assert_eq!(check_text(&text, "r1", &k), Verdict::Revoked { line: 3 });
    }

    #[test]
    fn changed_names_the_line() {
        let text = format!("# first\nother {ED}\nr1\t{ED2} comment\n");
        match check_text(&text, "r1", &key(ED)) {
            Verdict::Changed { line, known } => {
                assert_eq!(line, 3);
                assert_eq!(known, fingerprint(&key(ED2)));
            }
            v => panic!("{v:?}"),
        }
    }
}
