//! What has been written to a store, kept in the store and updated by every batch in the same
//! atomic write: how many batches, and a digest of the contents they leave behind.
//!
//! The digest is a sum (modulo 2^128) of a hash of every pair, so a batch updates it from the
//! pairs it replaces and writes, and a full read at start recomputes it. sled 0.34 replays its
//! log at open and takes a message that fails its CRC for the end of a torn write: it drops the
//! rest of that segment and carries on with the next (`pagecache/iterator.rs`,
//! `LogIter::next`, `LogRead::Corrupted` with `last_stage`), so pages can come back without
//! some of their updates while later ones, this record among them, are whole. The sum then no
//! longer matches. (Losing the log's end instead, record included, is `durable`'s to catch.)

use sha2::{Digest as _, Sha256};

/// The key of the record: batches (u64, big-endian), then the digest (u128, little-endian).
pub(super) const KEY: &[u8] = b"meta/store_written";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub batches: u64,
    pub digest: Digest,
}

impl Written {
    pub(super) fn encode(&self) -> [u8; 24] {
        let mut record = [0; 24];
        record[..8].copy_from_slice(&self.batches.to_be_bytes());
        record[8..].copy_from_slice(&self.digest.0.to_le_bytes());
        record
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let record: &[u8; 24] = bytes.try_into().ok()?;
        let (batches, digest) = record.split_at(8);
        Some(Self {
            batches: u64::from_be_bytes(batches.try_into().ok()?),
            digest: Digest(u128::from_le_bytes(digest.try_into().ok()?)),
        })
    }
}

/// An order-free digest of a set of pairs (every pair but `KEY`'s).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Digest(u128);

impl Digest {
    pub(super) fn add(&mut self, key: &[u8], value: &[u8]) {
        self.0 = self.0.wrapping_add(pair_hash(key, value));
    }

    pub(super) fn remove(&mut self, key: &[u8], value: &[u8]) {
        self.0 = self.0.wrapping_sub(pair_hash(key, value));
    }
}

/// 128 bits of SHA-256 over the key's length, the key and the value (so no two pairs run
/// together the same way).
fn pair_hash(key: &[u8], value: &[u8]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    let hash = hasher.finalize();
    let mut low = [0; 16];
    low.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_the_pairs_not_on_their_order_or_history() {
        let mut one = Digest::default();
        one.add(b"a", b"1");
        one.add(b"b", b"2");
        let mut other = Digest::default();
        other.add(b"b", b"2");
        other.add(b"c", b"3");
        other.add(b"a", b"0");
        other.remove(b"a", b"0");
        other.add(b"a", b"1");
        other.remove(b"c", b"3");
        assert_eq!(one, other);
        let mut split = Digest::default();
        split.add(b"ab", b"");
        let mut joined = Digest::default();
        joined.add(b"a", b"b");
        assert_ne!(split, joined);
    }

    #[test]
    fn the_record_reads_back() {
        let mut digest = Digest::default();
        digest.add(b"k", b"v");
        let written = Written {
            batches: 41,
            digest,
        };
        assert_eq!(Written::decode(&written.encode()), Some(written));
        assert_eq!(Written::decode(b"short"), None);
    }
}
