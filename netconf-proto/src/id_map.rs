//! Maps keyed by the numbers a session hands out itself: the message-ids a client sends,
//! the request ids a server numbers, session ids.
//!
//! std's default SipHash resists keys chosen to collide, which is worth its cost when a
//! peer picks the keys. Here we pick every key we insert (a peer's message-id is only
//! looked up), so the resistance buys nothing, and SipHash cost about 3% of a small RPC's
//! instructions across the five maps each RPC touches.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by our own ids (see the module docs).
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A `HashSet` of our own ids (see the module docs).
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// One multiply per integer (Fibonacci hashing): consecutive ids spread over the whole
/// word, so both the bucket index (low bits) and hashbrown's tag (high bits) differ.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; correct (if slower) for any other.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_spread_over_low_and_high_bits() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1u64..=1024).map(|i| build.hash_one(i)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let high: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(
            low.len() > 600,
            "{} distinct bucket indexes of 1024",
            low.len()
        );
        assert_eq!(high.len(), 128, "every 7-bit tag used");
    }

    #[test]
    fn a_map_of_ids_behaves_as_a_map() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for i in 0..10_000u64 {
            m.insert(i * 3, i);
        }
        for i in 0..10_000u64 {
            assert_eq!(m.remove(&(i * 3)), Some(i));
        }
        assert!(m.is_empty());
    }
}
