//! Members' personal data sealed under a key of their own (被遗忘权: the right to be erased).
//!
//! A member's name, phone, birthday and the rest live in automerge changes inside hash-chained
//! log entries copied to headquarters and every store. The chain cannot forget bytes, so each
//! member gets a [`MemberKey`] (32 random bytes made by the store that registers them) and every
//! profile change is sealed under it before it enters the log; the views that hold the profile
//! at rest are sealed under it too. Keys travel beside the log, never in it (sync version 5).
//! Erasure destroys the key at every replica: the entries stay, their hashes still verify, and
//! what they hide can no longer be read.
//!
//! Sealing is XChaCha20-Poly1305 with a synthetic nonce (HMAC-SHA256 of what is sealed under a
//! subkey), so the same bytes sealed under the same key and context give the same output: a
//! rebuild of the views still compares byte for byte, and only equality of two sealed values
//! shows. The context (`aad`) names what is sealed and for whom, so a value cannot be moved to
//! another member or another record.
//!
//! Indexes (a phone, a card number, a search term) are filed under an [`IndexKey`]'s HMAC of
//! the term instead of the term, so the keys of the index hold no phone or name either.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The first bytes of everything sealed here. Automerge chunks start with `85 6f 4a 83`, so a
/// change from before sealing is never mistaken for a sealed one.
pub const MAGIC: [u8; 4] = *b"\x00SL1";
const NONCE: usize = 24;
const TAG: usize = 16;

/// One member's key. Whoever holds it can read that member's profile; destroying it everywhere
/// erases them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberKey([u8; 32]);

impl std::fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberKey(..)")
    }
}

/// What a replica knows of a member's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Held(MemberKey),
    /// Headquarters erased the member: their key is gone here too, and stays gone.
    Erased,
    /// No key and no erasure: a member from before sealing, or one not heard of yet.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed bytes are damaged or belong to another member or record")]
    Damaged,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    for part in parts {
        // Each part is length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl MemberKey {
    /// A key from 32 random bytes (the caller draws them: this crate draws no randomness).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MemberKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key for `purpose` made from this one (the member code's, `crate::member_code`): whoever
    /// holds the member's key can make it, and it goes when the key goes.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        hmac(&self.0, &[b"derived", purpose])
    }

    fn subkey(&self, purpose: &[u8]) -> [u8; 32] {
        hmac(&self.0, &[b"member-key", purpose])
    }

    /// `plain` sealed for the context `aad` (what it is and whose).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let synthetic = hmac(&self.subkey(b"nonce"), &[aad, plain]);
        let nonce = XNonce::try_from(&synthetic[..NONCE]).expect("24 bytes");
        let cipher = XChaCha20Poly1305::new(&Key::from(self.subkey(b"seal")));
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 seals any length a profile has");
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
        out.extend(MAGIC);
        out.extend(&synthetic[..NONCE]);
        out.extend(sealed);
        out
    }

    /// What [`MemberKey::seal`] sealed for `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if !is_sealed(sealed) || sealed.len() < MAGIC.len() + NONCE + TAG {
            return Err(SealError::Damaged);
        }
        let (nonce, body) = sealed[MAGIC.len()..].split_at(NONCE);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Damaged)?;
        let cipher = XChaCha20Poly1305::new(&Key::from(self.subkey(b"seal")));
        cipher
            .decrypt(&nonce, Payload { msg: body, aad })
            .map_err(|_| SealError::Damaged)
    }
}

/// Whether `bytes` were sealed here (as opposed to a plain automerge change from before).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// A replica's key for its indexes: terms are filed under their HMAC. Each replica draws its
/// own; it never leaves the replica.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKey([u8; 32]);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// How many bytes of a term's HMAC an index keeps: two terms sharing 12 bytes is a 1 in 2^96
/// event, and a shared one would only cost a member read that [`crate::member`]'s search then
/// checks against the profile.
pub const BLIND_BYTES: usize = 12;

impl IndexKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        IndexKey(bytes)
    }

    /// The whole HMAC of `bytes` for `kind` (a request's fingerprint is kept as this, so a
    /// registration's record cannot be tested against guessed phones without the key).
    pub fn mac(&self, kind: &str, bytes: &[u8]) -> [u8; 32] {
        hmac(&self.0, &[kind.as_bytes(), bytes])
    }

    /// The term as the index files it: `kind` (phone, card, name, tail) keeps kinds apart.
    /// Hex, so the index's keys stay printable and free of the separators around them.
    pub fn blind(&self, kind: &str, term: &str) -> String {
        self.mac(kind, term.as_bytes())[..BLIND_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The context a member's profile change is sealed under in a log entry.
pub fn change_aad(member: &crate::MemberId) -> Vec<u8> {
    let mut aad = b"change/".to_vec();
    aad.extend(member.to_string().as_bytes());
    aad
}

/// The context a member's directory listing is sealed under in the feed
/// (`crate::entry::Payload::MemberListed`).
pub fn listing_aad(member: &crate::MemberId) -> Vec<u8> {
    let mut aad = b"listing/".to_vec();
    aad.extend(member.to_string().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MemberKey {
        MemberKey::from_bytes([byte; 32])
    }

    #[test]
    fn what_is_sealed_opens_with_the_same_key_and_context_only() {
        let sealed = key(1).seal(b"m/1", "张三 13812341234".as_bytes());
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert_eq!(
            key(1).open(b"m/1", &sealed).unwrap(),
            "张三 13812341234".as_bytes()
        );
        assert_eq!(key(2).open(b"m/1", &sealed), Err(SealError::Damaged));
        assert_eq!(key(1).open(b"m/2", &sealed), Err(SealError::Damaged));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key(1).open(b"m/1", &flipped), Err(SealError::Damaged));
        assert_eq!(key(1).open(b"m/1", &sealed[..10]), Err(SealError::Damaged));
    }

    #[test]
    fn sealing_is_deterministic_so_a_rebuild_compares_byte_for_byte() {
        assert_eq!(key(1).seal(b"a", b"x"), key(1).seal(b"a", b"x"));
        assert_ne!(key(1).seal(b"a", b"x"), key(1).seal(b"a", b"y"));
        assert_ne!(key(1).seal(b"a", b"x"), key(1).seal(b"b", b"x"));
    }

    #[test]
    fn an_automerge_change_is_never_taken_for_a_sealed_one() {
        let (_, change) = crate::member::MemberDoc::create(
            &crate::StoreId::parse("S001").unwrap(),
            1,
            &crate::member::tests::sample("S001"),
        )
        .unwrap();
        assert!(!is_sealed(&change));
    }

    #[test]
    fn blinded_terms_differ_by_kind_and_by_key() {
        let index = IndexKey::from_bytes([3; 32]);
        let phone = index.blind("p", "13812341234");
        assert_eq!(phone.len(), 2 * BLIND_BYTES);
        assert_eq!(phone, index.blind("p", "13812341234"));
        assert_ne!(phone, index.blind("c", "13812341234"));
        assert_ne!(
            phone,
            IndexKey::from_bytes([4; 32]).blind("p", "13812341234")
        );
        assert!(!phone.contains("1234"));
    }
}
