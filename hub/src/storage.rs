//! The hub's storage, behind a trait at the level of what the hub does (append a store's
//! verified entries with the feed items they create; read the feed), so that a chain that
//! outgrows one machine can put this on an existing distributed database. sled is the default.
//!
//! sled layout, one tree: `log/<store>\0<seq BE>` entry · `tip/<store>` chain tip ·
//! `st/<store>` status · `feed/<position BE>` feed record · `meta/feed_len` ·
//! `m/<member>` the member as headquarters sees it, sealed under the member's key
//! (`protocol::seal`) · `p/<phone blinded>` → member · `sx/…` 会员搜索's index
//! (`protocol::member::SEARCH_INDEX`, terms blinded) · `k/<member>` the member's key ·
//! `e/<member>` erased (被遗忘) · `meta/index_key` the key that blinds the indexes · `w/<member>` the
//! member's wallet (every counter's rights as the hub knows them) · `fence/<store>` a hold or
//! fence headquarters put on the store · `v/<key>` the inventory views (`protocol::inventory`:
//! catalogue, stock per store, transfers).

use std::collections::BTreeSet;
use std::path::Path;

use protocol::entry::ChainTip;
use protocol::member::Profile;
use protocol::seal::{IndexKey, KeyState, MemberKey};
use protocol::wallet::Wallet;
use protocol::{MemberId, Phone, StoreId};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum HubStoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {0} is damaged")]
    Damaged(String),
}

type Result<T> = std::result::Result<T, HubStoreError>;

/// What the hub knows about one store's sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// The last seq of the store's log the hub holds durably.
    pub acked_seq: u64,
    /// The store's log length as it last reported it.
    pub log_len: u64,
    /// Wall time (ms) of the newest entry held.
    pub last_entry_ms: u64,
    /// Hub time (ms) of the last batch taken from this store.
    pub last_sync_ms: u64,
}

/// A store headquarters put on hold, or fenced once the hold ran out (see `Ingest::hold`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fence {
    /// 挂起: the store is quiet and an operator wants its rights back. Voided by any sign of
    /// life from the store (a connection, a batch) or by the operator; at `until_ms` it is
    /// posted: the store is fenced.
    OnHold {
        since_ms: u64,
        until_ms: u64,
        by: String,
        reason: String,
    },
    /// 冻结: the store's log is final at `at_seq`. The hub refuses anything more from it, and
    /// headquarters has taken back every right it held.
    Fenced {
        at_seq: u64,
        since_ms: u64,
        by: String,
        reason: String,
    },
}

/// An entry in the feed every store receives, with its origin so a store's own are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub origin: StoreId,
    pub entry: Vec<u8>,
}

/// A member as headquarters sees it: the merged profile document and the profile read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: MemberId,
    pub doc: Vec<u8>,
    pub profile: Profile,
}

/// One store's verified batch and what it adds to the feed and the member directory.
#[derive(Debug, Clone)]
pub struct Append<'a> {
    pub store: &'a StoreId,
    pub entries: Vec<(u64, Vec<u8>)>,
    pub tip: ChainTip,
    pub status: StoreStatus,
    pub feed: Vec<(u64, FeedRecord)>,
    pub feed_len: u64,
    pub members: Vec<MemberRecord>,
    /// Phone index changes: the phone now names this member, or nobody.
    pub phones: Vec<(Phone, Option<MemberId>)>,
    pub wallets: Vec<(MemberId, Wallet)>,
    /// Inventory view writes (`None` deletes), keyed as `protocol::inventory` names them.
    pub views: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Members' keys the store sent with the batch; one of an erased member is not kept.
    pub keys: Vec<(MemberId, MemberKey)>,
    /// Members erased by the batch: their record, index records and key go, a tombstone stays.
    pub erased: Vec<MemberId>,
}

pub trait HubStore: Send + Sync + 'static {
    /// Every store's chain tip and status, read once at start.
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>>;
    fn feed_len(&self) -> Result<u64>;
    /// Writes one batch atomically; durable after the next `flush`.
    fn append(&self, append: Append<'_>) -> Result<()>;
    fn flush(&self) -> Result<()>;
    /// Feed records from position `from`, at most `limit`.
    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>>;
    /// A store's entries from `from_seq`, at most `limit`, encoded.
    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>>;
    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>>;
    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>>;
    /// Every member in the directory, in id order.
    fn members(&self) -> Result<Vec<MemberRecord>>;
    /// 会员搜索: the first `limit` members in id order that match `query` (`Profile::matches`).
    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>>;
    /// 会员搜索's index as stored (`sx/…` keys), for `verify`. A store without an index of its
    /// own (the test double reads every member) answers with the keys its members file.
    fn search_index(&self) -> Result<BTreeSet<Vec<u8>>> {
        let index = self.index_key();
        Ok(self
            .members()?
            .iter()
            .flat_map(|m| m.profile.search_keys(&m.member_id, &index))
            .collect())
    }
    /// The key that blinds the phone and search indexes (`protocol::seal`).
    fn index_key(&self) -> IndexKey;
    /// What headquarters holds of a member's key.
    fn member_key(&self, id: &MemberId) -> Result<KeyState>;
    /// The hashes of an erased member's changes, kept in their tombstone: what makes a thin
    /// change of theirs from before sealing, still in flight, whole again (and then skipped).
    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>>;
    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>>;
    /// Every member's wallet, for liabilities and settlement reports.
    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>>;
    fn fences(&self) -> Result<Vec<(StoreId, Fence)>>;
    /// One inventory view record.
    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Inventory view records under a prefix, in key order, at most `limit`.
    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Sets or clears a store's hold or fence, durably before it returns.
    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()>;
    /// The version of the derived state (members, phones, wallets, inventory views) stored.
    fn derived_version(&self) -> Result<Option<u32>>;
    /// Replaces all derived state with `derived`, at `version`, durably.
    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()>;
}

/// Everything the hub derives from the logs, whole (for a rebuild).
#[derive(Debug, Default)]
pub struct Derived {
    pub members: Vec<MemberRecord>,
    pub phones: Vec<(Phone, MemberId)>,
    pub wallets: Vec<(MemberId, Wallet)>,
    pub views: Vec<(Vec<u8>, Vec<u8>)>,
}

pub struct SledHubStore {
    db: sled::Db,
    /// sled's own file: sled 0.34 ends a flush with `sync_file_range`, which neither empties the
    /// disk's volatile write cache nor writes the file's new size (sled issue #1452), so every
    /// flush is followed by an `fdatasync` of it (as the node's store does).
    log: std::fs::File,
    /// Appended since the last flush: a group that wrote nothing (asks, ticks) costs no flush.
    appended: std::sync::atomic::AtomicBool,
    index: IndexKey,
}

const INDEX_KEY: &str = "meta/index_key";

impl SledHubStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new().path(dir).open()?;
        let log = std::fs::File::open(dir.join("db")).map_err(sled::Error::from)?;
        let index = match db.get(INDEX_KEY)? {
            Some(bytes) => bytes
                .as_ref()
                .try_into()
                .map_err(|_| HubStoreError::Damaged(INDEX_KEY.into()))?,
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| {
                    sled::Error::from(std::io::Error::other(format!("random source: {e}")))
                })?;
                db.insert(INDEX_KEY, &bytes[..])?;
                db.flush()?;
                log.sync_data().map_err(sled::Error::from)?;
                bytes
            }
        };
        Ok(Self {
            db,
            log,
            appended: std::sync::atomic::AtomicBool::new(false),
            index: IndexKey::from_bytes(index),
        })
    }

    fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::from)?;
        Ok(())
    }
}

fn log_key(store: &StoreId, seq: u64) -> Vec<u8> {
    let mut key = format!("log/{store}").into_bytes();
    key.push(0);
    key.extend(seq.to_be_bytes());
    key
}

fn feed_key(position: u64) -> Vec<u8> {
    let mut key = b"feed/".to_vec();
    key.extend(position.to_be_bytes());
    key
}

fn view_key(key: &[u8]) -> Vec<u8> {
    let mut out = b"v/".to_vec();
    out.extend_from_slice(key);
    out
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|_| HubStoreError::Damaged(String::from_utf8_lossy(key).into_owned()))
}

impl SledHubStore {
    /// The database underneath, for tests that damage it on purpose.
    #[cfg(test)]
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Every key under `prefix`, in order.
    fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.db
            .scan_prefix(prefix)
            .keys()
            .map(|k| Ok(k?.to_vec()))
            .collect()
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        self.db
            .get(key)?
            .map(|v| decode(key.as_bytes(), &v))
            .transpose()
    }

    fn phone_key(&self, phone: &Phone) -> Vec<u8> {
        format!("p/{}", self.index.blind("phone", phone.as_str())).into_bytes()
    }

    /// A member's record as stored: sealed under their key when they have one (a member from
    /// before sealing has none, and stays plain).
    fn sealed_record(&self, key: Option<&MemberKey>, record: &MemberRecord) -> Vec<u8> {
        let at = format!("m/{}", record.member_id);
        match key {
            Some(k) => k.seal(at.as_bytes(), &encode(record)),
            None => encode(record),
        }
    }

    fn open_record(&self, id: &MemberId, bytes: &[u8]) -> Result<Option<MemberRecord>> {
        let at = format!("m/{id}");
        if !protocol::seal::is_sealed(bytes) {
            return decode(at.as_bytes(), bytes).map(Some);
        }
        match self.member_key(id)? {
            KeyState::Held(k) => {
                let plain = k
                    .open(at.as_bytes(), bytes)
                    .map_err(|_| HubStoreError::Damaged(at.clone()))?;
                decode(at.as_bytes(), &plain).map(Some)
            }
            KeyState::Erased => Ok(None),
            KeyState::Unknown => Err(HubStoreError::Damaged(format!("{at}: sealed, no key"))),
        }
    }

    /// The search index records member `id` is filed under: as written earlier in the batch
    /// being built (taken out of `filed`), else as stored.
    fn filed(
        &self,
        filed: &mut std::collections::HashMap<MemberId, BTreeSet<Vec<u8>>>,
        id: &MemberId,
    ) -> Result<BTreeSet<Vec<u8>>> {
        Ok(match filed.remove(id) {
            Some(keys) => keys,
            None => self
                .member(id)?
                .map(|old| old.profile.search_keys(id, &self.index))
                .unwrap_or_default(),
        })
    }

    fn held_key(&self, id: &MemberId) -> Result<Option<MemberKey>> {
        Ok(match self.member_key(id)? {
            KeyState::Held(k) => Some(k),
            _ => None,
        })
    }
}

impl HubStore for SledHubStore {
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"tip/") {
            let (key, value) = kv?;
            let name = String::from_utf8_lossy(&key[4..]).into_owned();
            let store = StoreId::parse(&name).map_err(|_| HubStoreError::Damaged(name.clone()))?;
            let tip: ChainTip = decode(&key, &value)?;
            let status_key = format!("st/{store}");
            let status = match self.db.get(&status_key)? {
                Some(bytes) => decode(status_key.as_bytes(), &bytes)?,
                None => StoreStatus::default(),
            };
            out.push((store, tip, status));
        }
        Ok(out)
    }

    fn feed_len(&self) -> Result<u64> {
        match self.db.get(b"meta/feed_len")? {
            Some(bytes) => decode(b"meta/feed_len", &bytes),
            None => Ok(0),
        }
    }

    fn append(&self, a: Append<'_>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (seq, bytes) in a.entries {
            batch.insert(log_key(a.store, seq), bytes);
        }
        batch.insert(format!("tip/{}", a.store).into_bytes(), encode(&a.tip));
        batch.insert(format!("st/{}", a.store).into_bytes(), encode(&a.status));
        for (position, record) in &a.feed {
            batch.insert(feed_key(*position), encode(record));
        }
        batch.insert(&b"meta/feed_len"[..], encode(&a.feed_len));
        // Keys first: the records below are sealed under them. An erased member's stays gone.
        let mut keys: std::collections::HashMap<MemberId, MemberKey> = Default::default();
        for (id, key) in &a.keys {
            if self.member_key(id)? == KeyState::Unknown && !a.erased.contains(id) {
                batch.insert(format!("k/{id}").into_bytes(), &key.as_bytes()[..]);
                keys.insert(*id, key.clone());
            }
        }
        // Each member's search index records move from what they were (stored, or earlier in
        // this batch) to what they are.
        let mut filed: std::collections::HashMap<MemberId, BTreeSet<Vec<u8>>> = Default::default();
        for record in &a.members {
            let id = record.member_id;
            let old = self.filed(&mut filed, &id)?;
            let new = record.profile.search_keys(&id, &self.index);
            for gone in old.difference(&new) {
                batch.remove(gone.as_slice());
            }
            for added in new.difference(&old) {
                batch.insert(added.as_slice(), &[][..]);
            }
            filed.insert(id, new);
            let key = match keys.get(&id) {
                Some(k) => Some(k.clone()),
                None => self.held_key(&id)?,
            };
            batch.insert(
                format!("m/{id}").into_bytes(),
                self.sealed_record(key.as_ref(), record),
            );
        }
        for id in &a.erased {
            for gone in self.filed(&mut filed, id)? {
                batch.remove(gone);
            }
            let mut hashes = self.erased_changes(id)?;
            if let Some(record) = self.member(id)? {
                let doc = protocol::member::MemberDoc::load(&record.doc)
                    .map_err(|e| HubStoreError::Damaged(format!("m/{id}: {e}")))?;
                hashes.extend(doc.clone().change_hashes());
            }
            batch.remove(format!("m/{id}").into_bytes());
            batch.remove(format!("k/{id}").into_bytes());
            batch.insert(format!("e/{id}").into_bytes(), encode(&hashes));
        }
        for (phone, member) in &a.phones {
            match member {
                Some(id) => batch.insert(self.phone_key(phone), encode(id)),
                None => batch.remove(self.phone_key(phone)),
            }
        }
        for (member, wallet) in &a.wallets {
            batch.insert(format!("w/{member}").into_bytes(), encode(wallet));
        }
        for (key, value) in &a.views {
            let key = view_key(key);
            match value {
                Some(value) => batch.insert(key, value.as_slice()),
                None => batch.remove(key),
            }
        }
        self.db.apply_batch(batch)?;
        self.appended
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        match self
            .appended
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            true => self.sync(),
            false => Ok(()),
        }
    }

    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        let range = self.db.range(feed_key(from)..feed_key(u64::MAX));
        range
            .take(limit)
            .map(|kv| {
                let (key, value) = kv?;
                let position = u64::from_be_bytes(key[5..].try_into().unwrap_or_default());
                Ok((position, decode(&key, &value)?))
            })
            .collect()
    }

    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let range = self
            .db
            .range(log_key(store, from_seq)..=log_key(store, u64::MAX));
        range.take(limit).map(|kv| Ok(kv?.1.to_vec())).collect()
    }

    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>> {
        match self.db.get(format!("m/{id}"))? {
            Some(bytes) => self.open_record(id, &bytes),
            None => Ok(None),
        }
    }

    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>> {
        let key = self.phone_key(phone);
        self.db.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    fn members(&self) -> Result<Vec<MemberRecord>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"m/") {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k[2..]).into_owned();
            let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
            out.extend(self.open_record(&id, &v)?);
        }
        Ok(out)
    }

    fn index_key(&self) -> IndexKey {
        self.index.clone()
    }

    fn member_key(&self, id: &MemberId) -> Result<KeyState> {
        if let Some(bytes) = self.db.get(format!("k/{id}"))? {
            let bytes: [u8; 32] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| HubStoreError::Damaged(format!("k/{id}")))?;
            return Ok(KeyState::Held(MemberKey::from_bytes(bytes)));
        }
        Ok(match self.db.get(format!("e/{id}"))? {
            Some(_) => KeyState::Erased,
            None => KeyState::Unknown,
        })
    }

    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>> {
        let key = format!("e/{id}");
        match self.db.get(&key)? {
            Some(bytes) if !bytes.is_empty() => decode(key.as_bytes(), &bytes),
            _ => Ok(Vec::new()),
        }
    }

    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>> {
        protocol::member::search_index(
            query,
            limit,
            &self.index,
            |prefix| self.keys_under(prefix),
            |id| self.member(id),
            |record: &MemberRecord| &record.profile,
        )
    }

    fn search_index(&self) -> Result<BTreeSet<Vec<u8>>> {
        Ok(self.keys_under(b"sx/")?.into_iter().collect())
    }

    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>> {
        self.read(&format!("w/{id}"))
    }

    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>> {
        self.db
            .scan_prefix(b"w/")
            .map(|kv| {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[2..]).into_owned();
                let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
                Ok((id, decode(&k, &v)?))
            })
            .collect()
    }

    fn fences(&self) -> Result<Vec<(StoreId, Fence)>> {
        self.db
            .scan_prefix(b"fence/")
            .map(|kv| {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[6..]).into_owned();
                let store = StoreId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
                Ok((store, decode(&k, &v)?))
            })
            .collect()
    }

    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(view_key(key))?.map(|v| v.to_vec()))
    }

    fn derived_version(&self) -> Result<Option<u32>> {
        self.read("meta/derived_version")
    }

    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()> {
        let mut batch = sled::Batch::default();
        for prefix in [
            &b"m/"[..],
            b"p/",
            b"w/",
            b"v/",
            protocol::member::SEARCH_INDEX,
        ] {
            for kv in self.db.scan_prefix(prefix) {
                batch.remove(kv?.0);
            }
        }
        for record in &derived.members {
            let key = self.held_key(&record.member_id)?;
            batch.insert(
                format!("m/{}", record.member_id).into_bytes(),
                self.sealed_record(key.as_ref(), record),
            );
            for key in record.profile.search_keys(&record.member_id, &self.index) {
                batch.insert(key, &[][..]);
            }
        }
        for (phone, member) in &derived.phones {
            batch.insert(self.phone_key(phone), encode(member));
        }
        for (member, wallet) in &derived.wallets {
            batch.insert(format!("w/{member}").into_bytes(), encode(wallet));
        }
        for (key, value) in &derived.views {
            batch.insert(view_key(key), value.as_slice());
        }
        batch.insert(&b"meta/derived_version"[..], encode(&version));
        self.db.apply_batch(batch)?;
        self.sync()
    }

    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .scan_prefix(view_key(prefix))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[2..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()> {
        let key = format!("fence/{store}");
        match fence {
            Some(fence) => self.db.insert(key, encode(fence))?,
            None => self.db.remove(key)?,
        };
        self.sync()
    }
}

/// In memory, for tests and the simulator: keeps what was flushed apart from what was only
/// written, so `crash()` leaves exactly what a power cut would.
#[derive(Default)]
pub struct MemHubStore {
    state: std::sync::Mutex<MemHub>,
}

#[derive(Default, Clone)]
struct MemHubState {
    logs: std::collections::BTreeMap<(StoreId, u64), Vec<u8>>,
    stores: std::collections::BTreeMap<StoreId, (ChainTip, StoreStatus)>,
    feed: std::collections::BTreeMap<u64, FeedRecord>,
    feed_len: u64,
    members: std::collections::BTreeMap<MemberId, MemberRecord>,
    phones: std::collections::BTreeMap<Phone, MemberId>,
    wallets: std::collections::BTreeMap<MemberId, Wallet>,
    fences: std::collections::BTreeMap<StoreId, Fence>,
    views: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    derived_version: Option<u32>,
    keys: std::collections::BTreeMap<MemberId, MemberKey>,
    /// Erased members and the hashes of their changes.
    erased: std::collections::BTreeMap<MemberId, Vec<[u8; 32]>>,
}

#[derive(Default)]
struct MemHub {
    live: MemHubState,
    durable: MemHubState,
    /// Appends since the last flush, to bring `durable` up to date at the next one.
    unflushed: Vec<Owned>,
}

/// An [`Append`] that owns its store id, kept until it is flushed.
#[derive(Clone)]
struct Owned {
    store: StoreId,
    entries: Vec<(u64, Vec<u8>)>,
    tip: ChainTip,
    status: StoreStatus,
    feed: Vec<(u64, FeedRecord)>,
    feed_len: u64,
    members: Vec<MemberRecord>,
    phones: Vec<(Phone, Option<MemberId>)>,
    wallets: Vec<(MemberId, Wallet)>,
    views: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    keys: Vec<(MemberId, MemberKey)>,
    erased: Vec<MemberId>,
}

impl MemHubState {
    fn apply(&mut self, a: Owned) {
        for (id, key) in a.keys {
            if !self.erased.contains_key(&id) && !a.erased.contains(&id) {
                self.keys.entry(id).or_insert(key);
            }
        }
        for (seq, bytes) in a.entries {
            self.logs.insert((a.store.clone(), seq), bytes);
        }
        self.stores.insert(a.store, (a.tip, a.status));
        self.feed.extend(a.feed);
        self.feed_len = a.feed_len;
        for record in a.members {
            self.members.insert(record.member_id, record);
        }
        for id in &a.erased {
            let hashes = self
                .members
                .remove(id)
                .and_then(|r| protocol::member::MemberDoc::load(&r.doc).ok())
                .map(|mut doc| doc.change_hashes())
                .unwrap_or_default();
            self.keys.remove(id);
            self.erased.entry(*id).or_default().extend(hashes);
        }
        for (phone, member) in a.phones {
            match member {
                Some(id) => self.phones.insert(phone, id),
                None => self.phones.remove(&phone),
            };
        }
        self.wallets.extend(a.wallets);
        for (key, value) in a.views {
            match value {
                Some(value) => self.views.insert(key, value),
                None => self.views.remove(&key),
            };
        }
    }
}

impl MemHubStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemHub> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything derived, whole (what a rebuild produced).
    pub fn derived(&self) -> Derived {
        let state = self.lock();
        let live = &state.live;
        Derived {
            members: live.members.values().cloned().collect(),
            phones: live.phones.iter().map(|(p, m)| (p.clone(), *m)).collect(),
            wallets: live.wallets.iter().map(|(m, w)| (*m, w.clone())).collect(),
            views: live
                .views
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Forgets everything written since the last flush.
    pub fn crash(&self) {
        let mut state = self.lock();
        state.unflushed.clear();
        state.live = state.durable.clone();
    }
}

impl HubStore for MemHubStore {
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>> {
        let state = self.lock();
        Ok(state
            .live
            .stores
            .iter()
            .map(|(s, (t, st))| (s.clone(), *t, st.clone()))
            .collect())
    }

    fn feed_len(&self) -> Result<u64> {
        Ok(self.lock().live.feed_len)
    }

    fn append(&self, a: Append<'_>) -> Result<()> {
        let owned = Owned {
            store: a.store.clone(),
            entries: a.entries,
            tip: a.tip,
            status: a.status,
            feed: a.feed,
            feed_len: a.feed_len,
            members: a.members,
            phones: a.phones,
            wallets: a.wallets,
            views: a.views,
            keys: a.keys,
            erased: a.erased,
        };
        let mut state = self.lock();
        state.live.apply(owned.clone());
        state.unflushed.push(owned);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut state = self.lock();
        let MemHub {
            durable, unflushed, ..
        } = &mut *state;
        for owned in unflushed.drain(..) {
            durable.apply(owned);
        }
        Ok(())
    }

    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        let state = self.lock();
        Ok(state
            .live
            .feed
            .range(from..)
            .take(limit)
            .map(|(p, r)| (*p, r.clone()))
            .collect())
    }

    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let state = self.lock();
        let range = state
            .live
            .logs
            .range((store.clone(), from_seq)..=(store.clone(), u64::MAX));
        Ok(range.take(limit).map(|(_, v)| v.clone()).collect())
    }

    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>> {
        Ok(self.lock().live.members.get(id).cloned())
    }

    /// The test double keeps nothing on disk: its index key is fixed.
    fn index_key(&self) -> IndexKey {
        IndexKey::from_bytes([0; 32])
    }

    fn member_key(&self, id: &MemberId) -> Result<KeyState> {
        let state = self.lock();
        Ok(match state.live.keys.get(id) {
            Some(k) => KeyState::Held(k.clone()),
            None if state.live.erased.contains_key(id) => KeyState::Erased,
            None => KeyState::Unknown,
        })
    }

    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>> {
        Ok(self.lock().live.erased.get(id).cloned().unwrap_or_default())
    }

    /// The test double reads every member, as the index must answer.
    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>> {
        let mut found: Vec<MemberRecord> = self
            .members()?
            .into_iter()
            .filter(|m| m.profile.matches(query))
            .collect();
        found.sort_by_key(|m| m.member_id.to_string());
        found.truncate(limit);
        Ok(found)
    }

    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>> {
        Ok(self.lock().live.phones.get(phone).copied())
    }

    fn members(&self) -> Result<Vec<MemberRecord>> {
        Ok(self.lock().live.members.values().cloned().collect())
    }

    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>> {
        Ok(self.lock().live.wallets.get(id).cloned())
    }

    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>> {
        let state = self.lock();
        Ok(state
            .live
            .wallets
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn fences(&self) -> Result<Vec<(StoreId, Fence)>> {
        let state = self.lock();
        Ok(state.live.fences.clone().into_iter().collect())
    }

    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().live.views.get(key).cloned())
    }

    fn derived_version(&self) -> Result<Option<u32>> {
        Ok(self.lock().live.derived_version)
    }

    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            side.members = derived
                .members
                .iter()
                .map(|r| (r.member_id, r.clone()))
                .collect();
            side.phones = derived.phones.iter().cloned().collect();
            side.wallets = derived.wallets.iter().cloned().collect();
            side.views = derived.views.iter().cloned().collect();
            side.derived_version = Some(version);
        }
        Ok(())
    }

    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let state = self.lock();
        Ok(state
            .live
            .views
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            match fence {
                Some(fence) => side.fences.insert(store.clone(), fence.clone()),
                None => side.fences.remove(store),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use protocol::member::{Gender, Profile};
    use protocol::{CardNo, Phone};

    use super::*;

    fn record(n: u8, name: &str, phone: u32, card: Option<u32>) -> MemberRecord {
        MemberRecord {
            member_id: MemberId::mint(1, u128::from(n) * 7919),
            doc: Vec::new(),
            profile: Profile {
                name: name.to_owned(),
                phone: Phone::parse(&format!("1390000{phone:04}")).unwrap(),
                card_no: card.map(|c| CardNo::parse(&format!("VIP{c:04}")).unwrap()),
                birthday: None,
                gender: Gender::Unspecified,
                tags: Default::default(),
                notes: String::new(),
                tier: "standard".into(),
                custom: Default::default(),
                home_store: StoreId::parse("S001").unwrap(),
                join_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
                referrer: None,
            },
        }
    }

    fn answers(found: &[MemberRecord]) -> Vec<MemberId> {
        found.iter().map(|m| m.member_id).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Headquarters' 会员搜索 through the index answers what reading every member would,
        /// after batches that rename members, give them new phones and cards (twice in one
        /// batch, too), and again after the derived state is rebuilt.
        #[test]
        fn search_through_the_index_answers_what_reading_every_member_would(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    (0u8..12, "[张王李芳伟aB]{1,4}", 0u32..30, proptest::option::of(0u32..5)),
                    1..6,
                ),
                1..5,
            ),
            queries in proptest::collection::vec("[张王李芳伟ab]{1,3}|00[0-2][0-9]|VIP000[0-4]", 1..10),
        ) {
            static RUN: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "hub-search-{}-{}",
                std::process::id(),
                RUN.fetch_add(1, Ordering::Relaxed)
            ));
            // Removed however the case ends (a failing case returns early while shrinking).
            struct Gone(std::path::PathBuf);
            impl Drop for Gone {
                fn drop(&mut self) {
                    let _ = std::fs::remove_dir_all(&self.0);
                }
            }
            let _gone = Gone(dir.clone());
            let storage = SledHubStore::open(&dir).unwrap();
            let origin = StoreId::parse("S001").unwrap();
            let mut every: BTreeMap<String, MemberRecord> = BTreeMap::new();
            for batch in batches {
                let members: Vec<MemberRecord> = batch
                    .into_iter()
                    .map(|(n, name, phone, card)| record(n, &name, phone, card))
                    .collect();
                for m in &members {
                    every.insert(m.member_id.to_string(), m.clone());
                }
                storage
                    .append(Append {
                        store: &origin,
                        entries: Vec::new(),
                        tip: ChainTip::GENESIS,
                        status: StoreStatus::default(),
                        feed: Vec::new(),
                        feed_len: 0,
                        members,
                        phones: Vec::new(),
                        wallets: Vec::new(),
                        views: Vec::new(),
                        keys: Vec::new(),
                        erased: Vec::new(),
                    })
                    .unwrap();
            }
            let expect = |q: &str| {
                let all: Vec<MemberRecord> = every.values().cloned().collect();
                answers(&all.into_iter().filter(|m| m.profile.matches(q)).take(3).collect::<Vec<_>>())
            };
            for q in &queries {
                proptest::prop_assert_eq!(answers(&storage.search_members(q, 3).unwrap()), expect(q), "query {:?}", q);
            }
            let derived = Derived {
                members: every.values().cloned().collect(),
                ..Derived::default()
            };
            storage.replace_derived(derived, 1).unwrap();
            for q in &queries {
                proptest::prop_assert_eq!(answers(&storage.search_members(q, 3).unwrap()), expect(q), "query {:?} after rebuild", q);
            }
            drop(storage);
        }
    }
}
