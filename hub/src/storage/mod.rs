//! The hub's storage, behind a trait at the level of what the hub does (append a store's
//! verified entries with the feed items they create; read the feed), so that a chain that
//! outgrows one machine can put this on an existing distributed database. sled is the default.
//!
//! `sled_store.rs` is the embedded default, `mem.rs` the in-memory copy for tests and the simulator.
//!
//! sled layout, one tree: `log/<store>\0<seq BE>` entry · `tip/<store>` chain tip ·
//! `st/<store>` status · `fr/<first position BE>` a run of feed positions naming entries of one
//! store's log (`sled_feed`) · `meta/feed_len` ·
//! `m/<member>` the member as headquarters sees it, sealed under the member's key
//! (`protocol::seal`) · `p/<phone blinded>` → member · `sx/…` 会员搜索's index
//! (`protocol::member::SEARCH_INDEX`, terms blinded) · `k/<member>` the member's key ·
//! `e/<member>` erased (被遗忘) · `meta/index_key` the key that blinds the indexes · `w/<member>` the
//! member's wallet (every counter's rights as the hub knows them) · `fence/<store>` a hold or
//! fence headquarters put on the store · `revoked/<store>` its certificates revoked · `v/<key>` the inventory views (`protocol::inventory`:
//! catalogue, stock per store, transfers) · `ob/m/<id>` a notice to a member and its delivery ·
//! `ob/q/<queue><due BE><id>` the pending notices by queue (transactional first) and when they
//! are due · `ob/t/<made BE><id>` every notice by when it was made · `ob/c/<day>/<member>`
//! marketing messages sent to a member that day (the outbox is not derived: a rebuild leaves
//! it, so nothing is sent twice).

use std::collections::BTreeSet;
use std::path::Path;

use protocol::entry::ChainTip;
use protocol::member::Profile;
use protocol::notice::Notice;
use protocol::seal::{IndexKey, KeyState, MemberKey};
use protocol::segment::Facets;
use protocol::wallet::Wallet;
use protocol::{MemberId, Phone, StoreId};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod conformance;
mod mem;
pub mod pg;
mod sled_feed;
mod sled_outbox;
mod sled_snapshot;
mod sled_store;
#[cfg(test)]
mod tests;

pub use mem::MemHubStore;
pub use pg::PgHubStore;
pub use sled_snapshot::Writes;
pub use sled_store::SledHubStore;

#[derive(Debug, thiserror::Error)]
pub enum HubStoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {0} is damaged")]
    Damaged(String),
    #[error("database: {0}")]
    Database(String),
    /// Another hub process took headquarters' lease over (`storage::pg::lease`).
    #[error("deposed: {0}")]
    Deposed(String),
    /// The database no longer holds what this hub wrote (or cannot say): it writes nothing
    /// more, and the hub must start again from what the database holds.
    #[error("stopped: {0}")]
    Stopped(String),
    /// The database refused what was sent (bad data, a broken constraint): sending it again
    /// would be refused again.
    #[error("refused by the database: {0}")]
    Refused(String),
}

type Result<T> = std::result::Result<T, HubStoreError>;

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|_| HubStoreError::Damaged(String::from_utf8_lossy(key).into_owned()))
}

/// `plain` as stored at `at`: sealed under the member's key when they have one (a member from
/// before sealing has none, and stays plain). The place is bound in.
fn seal_at(key: Option<&MemberKey>, at: &str, plain: Vec<u8>) -> Vec<u8> {
    match key {
        Some(k) => k.seal(at.as_bytes(), &plain),
        None => plain,
    }
}

/// What `seal_at` stored at `at`, opened with the member's key (`key`, asked only when it is
/// sealed); none when the member was erased.
fn open_at<T: for<'de> Deserialize<'de>>(
    at: &str,
    bytes: &[u8],
    key: impl FnOnce() -> Result<KeyState>,
) -> Result<Option<T>> {
    if !protocol::seal::is_sealed(bytes) {
        return decode(at.as_bytes(), bytes).map(Some);
    }
    match key()? {
        KeyState::Held(k) => {
            let plain = k
                .open(at.as_bytes(), bytes)
                .map_err(|_| HubStoreError::Damaged(at.to_owned()))?;
            decode(at.as_bytes(), &plain).map(Some)
        }
        KeyState::Erased => Ok(None),
        KeyState::Unknown => Err(HubStoreError::Damaged(format!("{at}: sealed, no key"))),
    }
}

/// A member's record as stored (`m/<id>`).
fn seal_record(key: Option<&MemberKey>, record: &MemberRecord) -> Vec<u8> {
    seal_at(key, &format!("m/{}", record.member_id), encode(record))
}

fn open_record(
    id: &MemberId,
    bytes: &[u8],
    key: impl FnOnce() -> Result<KeyState>,
) -> Result<Option<MemberRecord>> {
    open_at(&format!("m/{id}"), bytes, key)
}

/// A member's facets as stored beside their record (`f/<id>`).
fn seal_facets(key: Option<&MemberKey>, id: &MemberId, profile: &Profile) -> Vec<u8> {
    seal_at(key, &format!("f/{id}"), encode(&Facets::of(profile)))
}

fn open_facets(
    id: &MemberId,
    bytes: &[u8],
    key: impl FnOnce() -> Result<KeyState>,
) -> Result<Option<Facets>> {
    open_at(&format!("f/{id}"), bytes, key)
}

/// Members read at a time by [`each_member`].
pub const MEMBERS_PAGE: usize = 10_000;

/// Hands every member of the directory to `f`, in id order, reading a page at a time: a
/// million members are never all in memory at once.
pub fn each_member(
    storage: &dyn HubStore,
    mut f: impl FnMut(MemberRecord) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut after = None;
    loop {
        let page = storage
            .members_after(after.as_ref(), MEMBERS_PAGE)
            .map_err(|e| e.to_string())?;
        // Only an empty page is the last: a member erased while a page was read can leave it
        // short.
        if page.is_empty() {
            return Ok(());
        }
        for record in page {
            after = Some(record.member_id);
            f(record)?;
        }
    }
}

/// Hands every member's facets to `f`, in id order, a page at a time (`HubStore::facets_after`).
pub fn each_facets(
    storage: &dyn HubStore,
    mut f: impl FnMut(MemberId, Facets) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut after = None;
    loop {
        let page = storage
            .facets_after(after.as_ref(), MEMBERS_PAGE)
            .map_err(|e| e.to_string())?;
        // Only an empty page is the last, as in `each_member`.
        if page.is_empty() {
            return Ok(());
        }
        for (id, facets) in page {
            after = Some(id);
            f(id, facets)?;
        }
    }
}

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

/// 吊销: headquarters refuses `store`'s certificates issued before `at_ms` (a stolen or
/// replaced PC), whatever their own lifetime; one issued later is good. Distinct from a hold or
/// fence, which are about the store's balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at_ms: u64,
    pub by: String,
    pub reason: String,
}

/// Where a notice to a member stands (消息发送状态).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting to be sent at `next_ms` (the first try, or a retry after a failure).
    Pending,
    /// The gateway took it.
    Sent,
    /// The gateway refused it, or every retry failed.
    Failed,
    /// Not sent, by rule: no marketing consent, the member erased, too old to be news.
    Suppressed,
}

/// How many notices stand in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NoticeCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub suppressed: u64,
}

impl NoticeCounts {
    fn count(&mut self, state: &DeliveryState) -> &mut u64 {
        match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Sent => &mut self.sent,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Suppressed => &mut self.suppressed,
        }
    }

    /// One more notice in `state`.
    pub fn add(&mut self, state: &DeliveryState) {
        *self.count(state) += 1;
    }

    /// One fewer notice in `state`.
    pub fn remove(&mut self, state: &DeliveryState) {
        let n = self.count(state);
        *n = n.saturating_sub(1);
    }
}

/// The queue a pending notice waits in: transactional notices (a balance changed) go before
/// marketing, so a campaign's backlog never holds them up.
pub fn queue(purpose: protocol::notice::Purpose) -> u8 {
    match purpose {
        protocol::notice::Purpose::Transactional => 0,
        protocol::notice::Purpose::Marketing => 1,
    }
}

/// A notice's delivery: its state, tries, when it is next due, and the last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_ms: u64,
    pub last_error: Option<String>,
    /// When it was sent, failed for good or suppressed.
    pub done_ms: Option<u64>,
}

impl Delivery {
    pub fn due(at_ms: u64) -> Self {
        Self {
            state: DeliveryState::Pending,
            attempts: 0,
            next_ms: at_ms,
            last_error: None,
            done_ms: None,
        }
    }
}

/// An entry in the feed every store receives, with its origin so a store's own are skipped.
/// (Encoded, it is the form sled's feed had before runs: `sled_feed` reads it to migrate.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub origin: StoreId,
    #[serde(with = "serde_bytes")]
    pub entry: Vec<u8>,
}

/// A member as headquarters sees it: the merged profile document and the profile read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: MemberId,
    #[serde(with = "serde_bytes")]
    pub doc: Vec<u8>,
    pub profile: Profile,
}

/// One store's verified batch and what it adds to the feed and the member directory.
#[derive(Debug, Clone)]
pub struct Append<'a> {
    pub store: &'a StoreId,
    /// The entries, `(seq, bytes)`, ascending.
    pub entries: Vec<(u64, Vec<u8>)>,
    pub tip: ChainTip,
    pub status: StoreStatus,
    /// The feed items the batch adds: `(position, seq)`, the position it takes in the feed and
    /// the seq of the entry of `entries` it is. Consecutive positions, ascending.
    pub feed: Vec<(u64, u64)>,
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
    /// Notices the batch's entries give members (`protocol::notice`), queued unless one of
    /// the same id already is.
    pub notices: Vec<Notice>,
}

impl Append<'_> {
    /// The bytes of the batch's entry `seq`, which feed position `position` names; a feed
    /// item naming an entry not in the batch is refused.
    fn named(&self, position: u64, seq: u64) -> Result<&[u8]> {
        let at = self
            .entries
            .binary_search_by_key(&seq, |(s, _)| *s)
            .map_err(|_| {
                HubStoreError::Refused(format!(
                    "feed position {position} names entry {seq}, not in the batch"
                ))
            })?;
        Ok(&self.entries[at].1)
    }

    /// Refuses a batch whose feed names an entry it does not hold, or is not consecutive
    /// positions up to its `feed_len` naming ascending seqs (what reading it back relies on).
    pub fn check_feed(&self) -> Result<()> {
        let refused = |what: String| Err(HubStoreError::Refused(what));
        for pair in self.feed.windows(2) {
            let ((p, s), (next_p, next_s)) = (pair[0], pair[1]);
            if next_p != p + 1 || next_s <= s {
                return refused(format!(
                    "feed position {next_p} (entry {next_s}) does not follow {p} (entry {s})"
                ));
            }
        }
        if let Some(&(last, _)) = self.feed.last()
            && last > self.feed_len
        {
            return refused(format!("feed position {last} is past the feed's length"));
        }
        for &(position, seq) in &self.feed {
            self.named(position, seq)?;
        }
        Ok(())
    }

    /// The feed items as records holding the entries' bytes (what a store that copies them
    /// writes).
    pub fn feed_records(&self) -> Result<Vec<(u64, FeedRecord)>> {
        self.check_feed()?;
        self.feed
            .iter()
            .map(|&(position, seq)| {
                let record = FeedRecord {
                    origin: self.store.clone(),
                    entry: self.named(position, seq)?.to_vec(),
                };
                Ok((position, record))
            })
            .collect()
    }
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
    /// The feed records at `positions` (ascending), skipping any not written: what the routed
    /// feed sends one store, read without the records between that go to others.
    fn feed_at(&self, positions: &[u64]) -> Result<Vec<(u64, FeedRecord)>> {
        let mut out = Vec::with_capacity(positions.len());
        for &position in positions {
            if let Some((at, record)) = self.feed(position, 1)?.pop()
                && at == position
            {
                out.push((at, record));
            }
        }
        Ok(out)
    }
    /// A store's entries from `from_seq`, at most `limit`, encoded.
    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>>;
    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>>;
    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>>;
    /// Every member in the directory, in id order.
    fn members(&self) -> Result<Vec<MemberRecord>>;
    /// The first `limit` members after `after` (from the first without), in id order, erased
    /// ones skipped (a page shorter than `limit` is the last, except on sled when a member is
    /// erased while it is read: `each_member` stops at an empty page): a directory of millions
    /// read a page at a time.
    fn members_after(&self, after: Option<&MemberId>, limit: usize) -> Result<Vec<MemberRecord>>;
    /// `members_after`, each member's facets only (what a segment reads of a profile): a
    /// segment on the profile reads these instead of every record and its document.
    fn facets_after(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<(MemberId, Facets)>> {
        Ok(self
            .members_after(after, limit)?
            .into_iter()
            .map(|r| (r.member_id, Facets::of(&r.profile)))
            .collect())
    }
    /// How many members the directory holds (erased ones not), without opening a record.
    fn member_count(&self) -> Result<u64>;
    /// The facets of members `ids` (an erased member has none), in their order: what a
    /// segment reads of the members its purchases found. By default read from their records.
    fn facets_of(&self, ids: &[MemberId]) -> Result<Vec<(MemberId, Facets)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.member(id)? {
                out.push((*id, Facets::of(&record.profile)));
            }
        }
        Ok(out)
    }
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
    /// Inventory view records from key `from` (included) to `to` (excluded), in key order, at
    /// most `limit`.
    fn views_between(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Sets or clears a store's hold or fence, durably before it returns.
    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()>;
    /// Records that `store` follows these members (the routed feed), durably before it
    /// returns.
    fn add_follows(&self, store: &StoreId, members: &[MemberId]) -> Result<()>;
    /// Every member's followers.
    fn follows(&self) -> Result<Vec<(MemberId, StoreId)>>;
    /// Revokes `store`'s certificates issued before the revocation, durably before it
    /// returns (a later revocation replaces an earlier one).
    fn revoke(&self, store: &StoreId, revocation: &Revocation) -> Result<()>;
    /// The revocation of `store`'s certificates, if any.
    fn revocation(&self, store: &StoreId) -> Result<Option<Revocation>>;
    /// Pending notices due by `now_ms`, at most `limit`: the transactional queue first, then
    /// marketing (`queue`), each the earliest due first.
    fn notices_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>>;
    /// Records a notice's delivery, durably before it returns.
    fn set_delivery(&self, id: &str, delivery: &Delivery) -> Result<()>;
    /// The newest notices with their deliveries, by when they were made, at most `limit`.
    fn latest_notices(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>>;
    /// How many notices stand in each state.
    fn notice_counts(&self) -> Result<NoticeCounts>;
    /// Forgets notices made before `before_ms` that are no longer pending, the oldest first, at
    /// most `limit`, durably before it returns; how many it forgot. Counts of marketing sent
    /// (`count_sent`) of days before then go too.
    fn prune_notices(&self, before_ms: u64, limit: usize) -> Result<usize>;
    /// Queues notices made outside ingest (reminders, greetings), those not queued already,
    /// durably before it returns; how many were new.
    fn queue_notices(&self, notices: &[Notice]) -> Result<usize>;
    /// Marketing messages sent to `member` on `day` (the rate limit).
    fn sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32>;
    /// Counts one more marketing message sent to `member` on `day`.
    fn count_sent(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<()>;
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
