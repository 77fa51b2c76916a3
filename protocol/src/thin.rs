//! Member changes made thin for the wire (sync version 3).
//!
//! An automerge change chunk carries a 4-byte checksum and, for each change it follows, that
//! change's 32-byte hash: on a profile edit about 36 of its bytes are random, and no compressor
//! shrinks them. Both are derived from what the receiver holds already: the checksum from the
//! chunk itself, a dependency from the changes of that member it has (every change a store
//! builds on reached headquarters before it, and the other way round). So [`thin`] zeroes the
//! checksum and all but the first [`HASH_KEPT`] bytes of each dependency, and [`thicken`] puts
//! them back from the receiver's own changes: the bytes come out exactly as they went in, so
//! the entry's hash, which covers them, still holds.
//!
//! Anything that is not a single well-formed change chunk with a valid checksum is left as it
//! is, and so is a chunk whose checksum is not zero on arrival.

use sha2::{Digest, Sha256};

/// The start of every automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of an uncompressed change.
const CHANGE: u8 = 1;
/// How much of each dependency's hash goes on the wire: enough to tell a member's changes apart
/// (two of them sharing 8 bytes of a SHA-256 is a 1 in 2^64 event per pair).
pub const HASH_KEPT: usize = 8;
const HASH: usize = 32;
const CHECKSUM: std::ops::Range<usize> = 4..8;

/// Where a change chunk's dependencies are, and where the bytes its hash covers end.
struct Layout {
    deps: Vec<usize>,
}

fn uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn layout(chunk: &[u8]) -> Option<Layout> {
    if chunk.len() < 10 || chunk[..4] != MAGIC || chunk[8] != CHANGE {
        return None;
    }
    let (len, n) = uleb(&chunk[9..])?;
    let start = 9 + n;
    if start.checked_add(usize::try_from(len).ok()?)? != chunk.len() {
        return None;
    }
    let (count, m) = uleb(&chunk[start..])?;
    let first = start + m;
    let count = usize::try_from(count).ok()?;
    if first.checked_add(count.checked_mul(HASH)?)? > chunk.len() {
        return None;
    }
    Some(Layout {
        deps: (0..count).map(|i| first + i * HASH).collect(),
    })
}

/// The change's hash: SHA-256 of its type, length and body (what automerge computes).
pub fn change_hash(chunk: &[u8]) -> Option<[u8; HASH]> {
    layout(chunk)?;
    Some(Sha256::digest(&chunk[8..]).into())
}

/// The chunk with its checksum and the tails of its dependency hashes zeroed, if it is a change
/// whose checksum holds; otherwise the chunk as it is.
pub fn thin(chunk: &[u8]) -> Vec<u8> {
    let mut out = chunk.to_vec();
    let Some(layout) = layout(chunk) else {
        return out;
    };
    let hash = Sha256::digest(&chunk[8..]);
    if hash[..4] != chunk[CHECKSUM] {
        return out;
    }
    out[CHECKSUM].fill(0);
    for dep in layout.deps {
        out[dep + HASH_KEPT..dep + HASH].fill(0);
    }
    out
}

/// A dependency of a thin change that the receiver does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a member change follows one that is not here (hash starting {0})")]
pub struct UnknownDependency(pub String);

/// The chunk as [`thin`] had it before, the hashes of dependencies found by `known` (the whole
/// hash of a change held here whose hash starts with the given bytes).
pub fn thicken(
    chunk: &[u8],
    mut known: impl FnMut(&[u8; HASH_KEPT]) -> Option<[u8; HASH]>,
) -> Result<Vec<u8>, UnknownDependency> {
    let mut out = chunk.to_vec();
    let Some(layout) = layout(chunk) else {
        return Ok(out);
    };
    if chunk[CHECKSUM] != [0; 4] {
        return Ok(out);
    }
    for dep in layout.deps {
        if out[dep + HASH_KEPT..dep + HASH].iter().any(|b| *b != 0) {
            continue; // sent whole
        }
        let prefix: [u8; HASH_KEPT] = out[dep..dep + HASH_KEPT].try_into().expect("8 bytes");
        let hash = known(&prefix).ok_or_else(|| {
            UnknownDependency(prefix.iter().map(|b| format!("{b:02x}")).collect())
        })?;
        out[dep..dep + HASH].copy_from_slice(&hash);
    }
    let hash = Sha256::digest(&out[8..]);
    out[CHECKSUM].copy_from_slice(&hash[..4]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StoreId;
    use crate::member::{MemberDoc, ProfilePatch};
    use proptest::prelude::*;

    fn store(s: &str) -> StoreId {
        StoreId::parse(s).unwrap()
    }

    /// A member created at one store and edited at two; the changes in log order.
    fn changes(names: &[String]) -> (MemberDoc, Vec<Vec<u8>>) {
        let profile = crate::member::tests::sample("S001");
        let (mut doc, created) = MemberDoc::create(&store("S001"), 1_000, &profile).unwrap();
        let mut all = vec![created];
        for (i, name) in names.iter().enumerate() {
            let at = store(if i % 2 == 0 { "S002" } else { "S001" });
            let patch = ProfilePatch {
                name: Some(name.clone()),
                ..ProfilePatch::default()
            };
            if let Some(change) = doc.edit(&at, 2_000 + i as i64, &patch).unwrap() {
                all.push(change);
            }
        }
        (doc, all)
    }

    proptest! {
        /// Thin then thick is the identity, with the receiver's changes as the only help, and
        /// the thin form is no larger and differs only in bytes made zero.
        #[test]
        fn a_thin_change_comes_back_byte_for_byte(
            names in proptest::collection::vec("[a-z\u{4e00}-\u{4e20}]{1,6}", 1..6),
        ) {
            let (_, all) = changes(&names);
            let hashes: Vec<[u8; 32]> = all.iter().map(|c| change_hash(c).unwrap()).collect();
            for (i, change) in all.iter().enumerate() {
                let sent = thin(change);
                prop_assert_eq!(sent.len(), change.len());
                prop_assert!(sent.iter().zip(change).all(|(s, c)| s == c || *s == 0));
                let held = &hashes[..i];
                let back = thicken(&sent, |prefix| {
                    held.iter().find(|h| h[..HASH_KEPT] == prefix[..]).copied()
                })
                .unwrap();
                prop_assert_eq!(&back, change);
                if i > 0 {
                    prop_assert!(sent != *change, "an edit has something to thin");
                    // Without the change it follows, the receiver cannot rebuild it.
                    prop_assert!(thicken(&sent, |_| None).is_err());
                }
            }
        }
    }

    #[test]
    fn what_is_not_a_sound_change_goes_as_it_is() {
        let (_, all) = changes(&["王芳".to_owned()]);
        let mut bad_checksum = all[1].clone();
        bad_checksum[5] ^= 1;
        for chunk in [
            bad_checksum.clone(),
            all[1][..all[1].len() - 1].to_vec(),
            b"not a change".to_vec(),
            Vec::new(),
        ] {
            assert_eq!(thin(&chunk), chunk);
            assert_eq!(thicken(&chunk, |_| None).unwrap(), chunk);
        }
        // A whole dependency is kept even when its checksum is zeroed for the wire.
        let mut whole = all[1].clone();
        whole[CHECKSUM].fill(0);
        assert_eq!(thicken(&whole, |_| None).unwrap(), all[1]);
    }
}
