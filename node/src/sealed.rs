//! Members' personal data at rest (`protocol::seal`): each member's key, the tombstone of an
//! erased member, this store's index key, and the member views sealed under the member's key.
//!
//! Key layout: `k/<member>` the member's key (32 bytes) · `e/<member>` erased (被遗忘) ·
//! `meta/index_key` the key that blinds the phone, card and search indexes. None of these is a
//! view: a rebuild keeps them and reads them. `m/<member>` and `d/<member>` are sealed under the
//! member's key for the context of their own key; a member registered before sealing (whose
//! change in the log is plain, with no key anywhere) keeps plain views.

pub use protocol::seal::KeyState;
use protocol::seal::{IndexKey, MemberKey};
use protocol::{CardNo, MemberId, Phone};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Batch, Store, StoreError};
use crate::views::{Overlay, decode, encode};

pub const KEYS: &[u8] = b"k/";
pub const ERASED: &[u8] = b"e/";
pub const INDEX_KEY: &[u8] = b"meta/index_key";

pub fn key_of(member: &MemberId) -> Vec<u8> {
    format!("k/{member}").into_bytes()
}

pub fn erased_key(member: &MemberId) -> Vec<u8> {
    format!("e/{member}").into_bytes()
}

/// Reads one record, from the store or through a batch being built.
pub trait Get {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Get for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Overlay::get(self, key)
    }
}

impl Get for dyn Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Store::get(self, key)
    }
}

pub fn member_key(g: &(impl Get + ?Sized), member: &MemberId) -> Result<KeyState, StoreError> {
    let key = key_of(member);
    if let Some(bytes) = g.get(&key)? {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| damaged(&key, "not 32 bytes"))?;
        return Ok(KeyState::Held(MemberKey::from_bytes(bytes)));
    }
    Ok(match g.get(&erased_key(member))? {
        Some(_) => KeyState::Erased,
        None => KeyState::Unknown,
    })
}

fn damaged(key: &[u8], reason: &str) -> StoreError {
    StoreError::Damaged {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_owned(),
    }
}

/// This store's index key. Made at the first start ([`ensure_index_key`]); a store without one
/// has never filed a member.
pub fn index_key(g: &(impl Get + ?Sized)) -> Result<Option<IndexKey>, StoreError> {
    match g.get(INDEX_KEY)? {
        None => Ok(None),
        Some(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| damaged(INDEX_KEY, "not 32 bytes"))?;
            Ok(Some(IndexKey::from_bytes(bytes)))
        }
    }
}

/// Draws this store's index key if it has none yet (durable at the store's next flush).
pub fn ensure_index_key(
    store: &dyn Store,
    random: impl FnOnce() -> [u8; 32],
) -> Result<(), StoreError> {
    if store.get(INDEX_KEY)?.is_none() {
        let mut batch = Batch::default();
        batch.put(INDEX_KEY.to_vec(), random().to_vec());
        store.apply(batch)?;
    }
    Ok(())
}

/// 32 bytes from two draws of a journal's random source.
pub fn draw(random: &mut dyn FnMut() -> u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&random().to_le_bytes());
    out[16..].copy_from_slice(&random().to_le_bytes());
    out
}

/// `p/<phone blinded>/`: under it, one empty record per member with that phone (two stores
/// can register one phone while both are offline). A set, so what it holds does not depend on
/// the order entries were applied in, and a rebuild finds the same.
pub fn phone_key(index: &IndexKey, phone: &Phone) -> Vec<u8> {
    format!("p/{}/", index.blind("phone", phone.as_str())).into_bytes()
}

/// `c/<card blinded>/`: the members with that card number, as for phones.
pub fn card_key(index: &IndexKey, card: &CardNo) -> Vec<u8> {
    format!("c/{}/", index.blind("card", card.as_str())).into_bytes()
}

/// `mq/<handle blinded>/`: the members whose member code starts with this handle
/// (`protocol::member_code`; eleven digits, so two may share one).
pub fn code_key(index: &IndexKey, handle: &str) -> Vec<u8> {
    format!("mq/{}/", index.blind("code", handle)).into_bytes()
}

/// 拓客: a member filed under their referral code (`protocol::referral::code`).
pub fn referral_key(index: &IndexKey, code: &str) -> Vec<u8> {
    format!("rf/{}/", index.blind("referral", code)).into_bytes()
}

/// The members filed under an index prefix ([`phone_key`], [`card_key`]), in id order.
pub fn filed_under(store: &dyn Store, prefix: &[u8]) -> Result<Vec<MemberId>, StoreError> {
    Ok(store
        .scan_prefix(prefix)?
        .into_iter()
        .filter_map(|(key, _)| {
            let id = std::str::from_utf8(key.get(prefix.len()..)?).ok()?;
            MemberId::parse(id).ok()
        })
        .collect())
}

/// One member's record under an index prefix.
pub fn filed(prefix: &[u8], member: &MemberId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend(member.to_string().as_bytes());
    key
}

/// A member's view record (`m/` or `d/` under their id) as stored: sealed when they have a key.
pub fn seal(member_key: Option<&MemberKey>, record_key: &[u8], bytes: Vec<u8>) -> Vec<u8> {
    match member_key {
        Some(k) => k.seal(record_key, &bytes),
        None => bytes,
    }
}

/// Reads a member's view record: opened under their key when sealed; `None` when absent, or
/// when the member was erased.
pub fn read_bytes(
    g: &(impl Get + ?Sized),
    member: &MemberId,
    record_key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(bytes) = g.get(record_key)? else {
        return Ok(None);
    };
    if !protocol::seal::is_sealed(&bytes) {
        return Ok(Some(bytes));
    }
    match member_key(g, member)? {
        KeyState::Held(k) => k
            .open(record_key, &bytes)
            .map(Some)
            .map_err(|e| damaged(record_key, &e.to_string())),
        KeyState::Erased => Ok(None),
        KeyState::Unknown => Err(damaged(record_key, "sealed, and this store has no key")),
    }
}

pub fn read<T: DeserializeOwned>(
    g: &(impl Get + ?Sized),
    member: &MemberId,
    record_key: &[u8],
) -> Result<Option<T>, StoreError> {
    read_bytes(g, member, record_key)?
        .map(|bytes| decode(record_key, &bytes))
        .transpose()
}

pub fn sealed<T: Serialize>(
    member_key: Option<&MemberKey>,
    record_key: &[u8],
    value: &T,
) -> Vec<u8> {
    seal(member_key, record_key, encode(value))
}

/// A member change from a log entry, opened: `Ok(None)` when the member was erased (the change
/// is skipped, sealed or from before sealing), an error when it is sealed and the key never
/// came.
pub fn open_change(
    g: &(impl Get + ?Sized),
    member: &MemberId,
    change: &[u8],
) -> Result<Option<Vec<u8>>, SealedChangeError> {
    match member_key(g, member)? {
        KeyState::Erased => Ok(None),
        _ if !protocol::seal::is_sealed(change) => Ok(Some(change.to_vec())),
        KeyState::Held(k) => k
            .open(&protocol::seal::change_aad(member), change)
            .map(Some)
            .map_err(|_| SealedChangeError::Damaged(*member)),
        KeyState::Unknown => Err(SealedChangeError::NoKey(*member)),
    }
}

/// The hashes of an erased member's changes, kept in their tombstone (`e/`): what makes a thin
/// change of theirs from before sealing, still in flight, whole again (and then skipped).
pub fn erased_changes(
    g: &(impl Get + ?Sized),
    member: &MemberId,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let key = erased_key(member);
    match g.get(&key)? {
        Some(bytes) if !bytes.is_empty() => decode(&key, &bytes),
        _ => Ok(Vec::new()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealedChangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("member {0}'s change is sealed and this store has no key for them")]
    NoKey(MemberId),
    #[error("member {0}'s sealed change does not open under their key")]
    Damaged(MemberId),
}
