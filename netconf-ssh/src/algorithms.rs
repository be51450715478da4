//! Which algorithms we offer: russh's safe defaults plus what network
//! devices need.
//!
//! Some NX-OS releases offer only `ecdh-sha2-nistp*` and
//! `diffie-hellman-group14-sha1` for key exchange; russh's defaults have
//! neither. The NIST ECDH exchanges are sound and are added always. SHA-1
//! (`diffie-hellman-group14-sha1` key exchange, `ssh-rsa` signatures) is only
//! offered when the caller explicitly asks, because a device that needs it is
//! worth reaching but should not silently lower everyone's security.

use std::borrow::Cow;

use russh::keys::Algorithm;
use russh::{kex, Preferred};

/// Algorithm choices beyond the defaults.
///
/// `#[non_exhaustive]` so further opt-ins (CBC ciphers, SHA-1 MACs for very
/// old devices) can be added without breaking callers; use the setters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Algorithms {
    /// Also offer `diffie-hellman-group14-sha1` key exchange and `ssh-rsa`
    /// (RSA with SHA-1) signatures, for old devices.
    pub legacy_sha1: bool,
}

impl Algorithms {
    /// Allows the SHA-1 based `diffie-hellman-group14-sha1` and `ssh-rsa`.
    pub fn legacy_sha1(mut self, yes: bool) -> Self {
        self.legacy_sha1 = yes;
        self
    }

    /// The russh preference lists. `known_first` lists host-key algorithms
    /// already recorded for the peer: they are moved to the front, so a
    /// server with several host keys presents one we can verify.
    pub(crate) fn preferred(&self, known_first: &[Algorithm]) -> Preferred {
        let defaults = Preferred::default();
        let mut kexes: Vec<kex::Name> = Vec::new();
        for k in defaults.kex.iter() {
            // Real exchanges go before the pseudo-algorithms (ext-info, strict kex).
            if k.as_ref().starts_with("ext-info") || k.as_ref().starts_with("kex-strict") {
                continue;
            }
            kexes.push(*k);
        }
        kexes.extend([
            kex::ECDH_SHA2_NISTP256,
            kex::ECDH_SHA2_NISTP384,
            kex::ECDH_SHA2_NISTP521,
        ]);
        if self.legacy_sha1 {
            kexes.push(kex::DH_G14_SHA1);
        }
        for k in defaults.kex.iter() {
            if !kexes.contains(k) {
                kexes.push(*k);
            }
        }

        let mut keys: Vec<Algorithm> = defaults
            .key
            .iter()
            .filter(|a| self.legacy_sha1 || !matches!(a, Algorithm::Rsa { hash: None }))
            .cloned()
            .collect();
        let mut front: Vec<Algorithm> = Vec::new();
        for alg in known_first {
            let group: Vec<Algorithm> = keys
                .iter()
                .filter(|a| match (alg, a) {
                    (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
                    (x, y) => x == *y,
                })
                .cloned()
                .collect();
            for a in group {
                if !front.contains(&a) {
                    front.push(a);
                }
            }
        }
        keys.retain(|a| !front.contains(a));
        front.extend(keys);

        Preferred {
            kex: Cow::Owned(kexes),
            key: Cow::Owned(front),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::HashAlg;

    #[test]
    fn ecdh_always_sha1_only_on_request() {
        let p = Algorithms::default().preferred(&[]);
        let names: Vec<&str> = p.kex.iter().map(|k| k.as_ref()).collect();
        assert!(names.contains(&"ecdh-sha2-nistp256"));
        assert!(names.contains(&"ecdh-sha2-nistp521"));
        assert!(!names.contains(&"diffie-hellman-group14-sha1"));
        assert!(names.contains(&"ext-info-c"));
        assert!(!p.key.contains(&Algorithm::Rsa { hash: None }));

        let p = Algorithms::default().legacy_sha1(true).preferred(&[]);
        assert!(p
            .kex
            .iter()
            .any(|k| k.as_ref() == "diffie-hellman-group14-sha1"));
        assert!(p.key.contains(&Algorithm::Rsa { hash: None }));
    }

    #[test]
    fn known_types_first() {
        let p = Algorithms::default().preferred(&[Algorithm::Rsa { hash: None }]);
        assert_eq!(
            p.key[0],
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512)
            }
        );
    }
}
