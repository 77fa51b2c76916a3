//! Views derived from the log: members, phone and card indexes, sales, a member's sales and
//! point balances. `apply_entry` is the only code that writes them, both live (in the same batch
//! as the log append) and in `rebuild`, which replays the log from scratch and compares.
//!
//! Key layout (one sled tree, so one atomic batch covers log and views):
//! `log/<origin>\0<seq BE>` entry · `m/<member>` profile view · `d/<member>` automerge document
//! (both sealed under the member's key, `crate::sealed`) · `p/<phone>/<member>` and
//! `c/<card>/<member>` the members with that phone or card (a set) ·
//! `sx/n/<name term>/<member>`, `sx/t/<phone's last 4>/<member>` and `sx/c/<card>/<member>`
//! 会员搜索's index (every phone, card and term blinded by the store's index key) ·
//! `k/<member>`, `e/<member>` and `meta/index_key` the keys (`crate::sealed`, not views) ·
//! `w/<member>` wallet (every counter's rights, cards,
//! payment password hash) · `s/<sale>` sale ·
//! `ms/<member>/<hlc BE>` → sale id · `owe/<store>/<member>` and `od/<store>` what members owe
//! a store for offline overdrafts · `i/<idempotency key>` request record (not a view) ·
//! `fx/<feed position BE>` an entry from another replica, received through the hub's feed,
//! with where in this store's own log it was applied · `meta/feed_applied`.

use std::collections::BTreeSet;

use protocol::calendar::StoreCalendar;
use protocol::entry::{ChainError, ChainTip, Entry, EntryError, Payload};
use protocol::member::{MemberDoc, Profile, ProfileError};
use protocol::sale::QuickSale;
use protocol::wallet::{Movement, Wallet, WalletEvent};
use protocol::{CardNo, Hlc, MemberId, Phone, SaleId, StaffId, StoreId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sealed;
use crate::store::{Batch, MemStore, Store, StoreError};

pub mod keys {
    use super::*;

    pub const LOG: &[u8] = b"log/";
    pub const FEED: &[u8] = b"fx/";
    pub const FEED_APPLIED: &[u8] = b"meta/feed_applied";
    pub const VIEWS_VERSION_KEY: &[u8] = b"meta/views_version";
    pub const IDEMPOTENCY: &[u8] = b"i/";
    /// Every prefix that holds a view, i.e. state that `rebuild` must reproduce exactly (with
    /// `protocol::inventory::VIEW_PREFIXES`).
    pub const VIEWS: &[&[u8]] = &[
        b"m/",
        b"d/",
        b"p/",
        b"c/",
        b"w/",
        b"s/",
        b"si/",
        b"ms/",
        b"owe/",
        b"od/",
        b"sf/",
        b"rp/",
        b"sc/",
        b"ru/",
        b"fence/",
        b"mq/",
        protocol::member::SEARCH_INDEX,
    ];

    fn join(prefix: &str, id: impl std::fmt::Display) -> Vec<u8> {
        format!("{prefix}{id}").into_bytes()
    }

    pub fn log_prefix(origin: &StoreId) -> Vec<u8> {
        let mut key = join("log/", origin);
        key.push(0);
        key
    }

    pub fn log(origin: &StoreId, seq: u64) -> Vec<u8> {
        let mut key = log_prefix(origin);
        key.extend(seq.to_be_bytes());
        key
    }

    pub fn feed(position: u64) -> Vec<u8> {
        let mut key = FEED.to_vec();
        key.extend(position.to_be_bytes());
        key
    }

    pub fn member(id: &MemberId) -> Vec<u8> {
        join("m/", id)
    }

    pub fn document(id: &MemberId) -> Vec<u8> {
        join("d/", id)
    }

    pub fn wallet(id: &MemberId) -> Vec<u8> {
        join("w/", id)
    }

    /// Present while `member` owes `origin` for offline overdrafts: what they owe.
    pub fn receivable(origin: &StoreId, member: &MemberId) -> Vec<u8> {
        join("owe/", format!("{origin}/{member}"))
    }

    pub fn receivables_prefix(origin: &StoreId) -> Vec<u8> {
        join("owe/", format!("{origin}/"))
    }

    /// Present once headquarters has taken back rights from `store` (it fenced it): the seq of
    /// the first such entry in headquarters' log.
    pub fn fenced(store: &StoreId) -> Vec<u8> {
        join("fence/", store)
    }

    /// What all members owe `origin` for offline overdrafts.
    pub fn receivable_total(origin: &StoreId) -> Vec<u8> {
        join("od/", origin)
    }

    pub fn sale(id: &SaleId) -> Vec<u8> {
        join("s/", id)
    }

    /// An item sale (商品消费).
    pub fn item_sale(id: &SaleId) -> Vec<u8> {
        join("si/", id)
    }

    pub fn member_sales_prefix(id: &MemberId) -> Vec<u8> {
        join("ms/", format!("{id}/"))
    }

    pub fn member_sale(id: &MemberId, hlc: Hlc, origin: &StoreId) -> Vec<u8> {
        let mut key = member_sales_prefix(id);
        key.extend(hlc.wall_ms.to_be_bytes());
        key.extend(hlc.logical.to_be_bytes());
        key.extend(origin.as_str().as_bytes());
        key
    }

    pub fn idempotency(tx: &protocol::TxId) -> Vec<u8> {
        join("i/", tx)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("member profile: {0}")]
    Profile(#[from] ProfileError),
    #[error("log entry: {0}")]
    Entry(#[from] EntryError),
    #[error("log chain: {0}")]
    Chain(#[from] ChainError),
    #[error("inventory view: {0}")]
    Inventory(String),
    #[error("entry {seq} edits member {member}, who is not registered here")]
    UnknownMember { seq: u64, member: MemberId },
    #[error(transparent)]
    Sealed(#[from] sealed::SealedChangeError),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data into a Vec: cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Damaged {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// A member as the till sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub member_id: MemberId,
    pub profile: Profile,
    pub registered_at: Hlc,
    pub updated_at: Hlc,
}

/// A sale with where and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleView {
    pub sale: QuickSale,
    pub origin: StoreId,
    pub seq: u64,
    pub hlc: Hlc,
    pub business_date: chrono::NaiveDate,
    pub staff: StaffId,
    /// The seq of the entry that returned it, if it was returned.
    pub returned_by: Option<u64>,
}

/// An item sale with where and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSaleView {
    pub sale: protocol::sale::ItemSale,
    pub origin: StoreId,
    pub seq: u64,
    pub hlc: Hlc,
    pub business_date: chrono::NaiveDate,
    pub staff: StaffId,
    /// How much of each line has been returned, as far as this replica has heard.
    pub returned: Vec<protocol::catalogue::Qty>,
    /// The returns this replica has heard of, oldest first.
    pub returns: Vec<ReturnRecord>,
    /// The points lots the sale took its points from (year, points), for returns to give back.
    pub points_lots: Vec<(i32, u64)>,
    /// The coupons the sale redeemed together (多券同用), from the entry after it; one coupon
    /// is the sale's own `coupon`.
    pub coupons: Vec<String>,
}

/// An item return, where and when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRecord {
    pub ret: protocol::returns::ItemReturn,
    pub origin: StoreId,
    pub seq: u64,
    pub hlc: Hlc,
    pub business_date: chrono::NaiveDate,
    pub staff: StaffId,
}

/// A quick sale or an item sale.
#[derive(Debug, Clone)]
pub enum AnySale {
    Quick(Box<SaleView>),
    Items(Box<ItemSaleView>),
}

/// An entry another replica wrote, as received from the hub's feed. `before_seq` is this store's
/// next own seq when it was applied, which lets `rebuild` replay the exact interleaving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub before_seq: u64,
    pub entry: Vec<u8>,
}

/// Applies another replica's entry (given as its bytes). One this store cannot use (it does not
/// decode, its profile change is damaged, or it edits a member never heard of) is skipped, the
/// same way live and in `rebuild`, so one bad entry cannot stall the feed for every store.
pub fn apply_foreign_entry(ov: &mut Overlay<'_>, bytes: &[u8]) -> Result<(), ViewError> {
    let entry = match Entry::decode(bytes) {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(error = %e, "feed entry does not decode; skipped");
            return Ok(());
        }
    };
    // `apply_entry` fails on these before it writes anything, so skipping leaves `ov` untouched.
    match apply_entry(ov, &entry) {
        Err(
            e @ (ViewError::UnknownMember { .. }
            | ViewError::Profile(_)
            | ViewError::Sealed(
                sealed::SealedChangeError::NoKey(_) | sealed::SealedChangeError::Damaged(_),
            )),
        ) => {
            tracing::warn!(origin = %entry.origin, seq = entry.seq, error = %e, "feed entry skipped");
            Ok(())
        }
        other => other,
    }
}

/// The hash of a change of `member` held here that starts with `prefix` (to make a thin member
/// change from the feed whole, `protocol::thin`).
pub fn change_starting(ov: &Overlay<'_>, member: &MemberId, prefix: &[u8]) -> Option<[u8; 32]> {
    match sealed::read_bytes(ov, member, &keys::document(member)).ok()? {
        Some(saved) => MemberDoc::load(&saved).ok()?.change_starting(prefix),
        None => sealed::erased_changes(ov, member)
            .ok()?
            .into_iter()
            .find(|h| h.starts_with(prefix)),
    }
}

/// Reads through a batch that is being built, so one entry's view updates see each other.
pub struct Overlay<'a> {
    store: &'a dyn Store,
    batch: Batch,
}

impl<'a> Overlay<'a> {
    pub fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            batch: Batch::default(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.batch.pending(key) {
            Some(pending) => Ok(pending.map(<[u8]>::to_vec)),
            None => self.store.get(key),
        }
    }

    pub fn get_as<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put(key, value);
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.batch.delete(key);
    }

    pub fn into_batch(self) -> Batch {
        self.batch
    }
}

impl protocol::inventory::ViewKv for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Overlay::get(self, key).map_err(|e| e.to_string())
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        Overlay::put(self, key, value);
    }

    fn delete(&mut self, key: Vec<u8>) {
        Overlay::delete(self, key);
    }
}

/// Headquarters' member rules as this store last heard them, if it has.
pub fn chain_rules(store: &dyn Store) -> Result<Option<protocol::rules::Published>, StoreError> {
    let key = protocol::rules::keys::CURRENT;
    store.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Headquarters' tier table as this store last heard it, if it has.
pub fn tier_table(store: &dyn Store) -> Result<Option<protocol::tiers::Published>, StoreError> {
    let key = protocol::tiers::keys::CURRENT;
    store.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// 退卡与计时规则 as headquarters last published them.
pub fn card_rules(
    store: &dyn Store,
) -> Result<Option<protocol::card_rules::Published>, StoreError> {
    let key = protocol::card_rules::keys::CURRENT;
    store.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// One of this store's own entries: its views, and its report cells (报表: the store's own
/// slice of headquarters' reports, hours in the store's time zone).
pub fn apply_own_entry(
    ov: &mut Overlay<'_>,
    entry: &Entry,
    calendar: &protocol::calendar::StoreCalendar,
) -> Result<(), ViewError> {
    apply_entry(ov, entry)?;
    protocol::shift::apply(ov, entry).map_err(ViewError::Inventory)?;
    protocol::reports::apply(ov, entry, calendar).map_err(ViewError::Inventory)
}

/// Derives every view change an entry makes. Deterministic: the same entries in the same order
/// give the same bytes, which is what lets `rebuild` compare byte for byte.
pub fn apply_entry(ov: &mut Overlay<'_>, entry: &Entry) -> Result<(), ViewError> {
    match &entry.payload {
        Payload::MemberRegistered { member_id, change } => {
            let Some(change) = sealed::open_change(ov, member_id, change)? else {
                return Ok(()); // erased: nothing of them is kept here
            };
            let doc = MemberDoc::from_change(&change)?;
            // A member this store held as a listing (`protocol::listing`) is filed anew from it.
            let listed = sealed::read::<MemberView>(ov, member_id, &keys::member(member_id))?;
            let before = listed.as_ref().map(|v| &v.profile);
            write_member(ov, entry, *member_id, doc, before, entry.hlc)
        }
        Payload::MemberListed { member_id, card } => {
            let key = match sealed::member_key(ov, member_id)? {
                sealed::KeyState::Held(key) => key,
                sealed::KeyState::Erased => return Ok(()),
                sealed::KeyState::Unknown => {
                    return Err(sealed::SealedChangeError::NoKey(*member_id).into());
                }
            };
            let profile = protocol::listing::open(member_id, &key, card)
                .map_err(|_| sealed::SealedChangeError::Damaged(*member_id))?;
            let before = sealed::read::<MemberView>(ov, member_id, &keys::member(member_id))?;
            let registered_at = before.as_ref().map_or(entry.hlc, |v| v.registered_at);
            let before = before.map(|v| v.profile);
            write_view(
                ov,
                entry,
                *member_id,
                profile,
                before.as_ref(),
                registered_at,
            )
        }
        Payload::MemberEdited { member_id, change } => {
            let Some(change) = sealed::open_change(ov, member_id, change)? else {
                return Ok(());
            };
            let key = keys::member(member_id);
            let Some(before) = sealed::read::<MemberView>(ov, member_id, &key)? else {
                return Err(ViewError::UnknownMember {
                    seq: entry.seq,
                    member: *member_id,
                });
            };
            let saved =
                sealed::read_bytes(ov, member_id, &keys::document(member_id))?.unwrap_or_default();
            let mut doc = MemberDoc::load(&saved)?;
            doc.apply_change(&change)?;
            write_member(
                ov,
                entry,
                *member_id,
                doc,
                Some(&before.profile),
                before.registered_at,
            )
        }
        // Version 1 sales from before wallets carry no cell writes.
        Payload::QuickSale(sale) => {
            apply_sale(ov, entry, sale);
            Ok(())
        }
        Payload::Sale { sale, .. } => {
            apply_sale(ov, entry, sale);
            wallet_entry(ov, entry)
        }
        Payload::Wallet { event, .. } => {
            // 积分兑换: what this store gave of each gift, what each member has had.
            protocol::project::gifts::apply(ov, entry).map_err(ViewError::Inventory)?;
            // 多券同用: the coupons a sale redeemed together, for its return to give back.
            if let protocol::wallet::WalletEvent::CouponsRedeemed { sale, coupons, .. } = event {
                let key = keys::item_sale(sale);
                if let Some(mut view) = ov.get_as::<ItemSaleView>(&key)? {
                    view.coupons = coupons.iter().map(|c| c.coupon.to_string()).collect();
                    ov.put(key, encode(&view));
                }
            }
            wallet_entry(ov, entry)
        }
        Payload::Checkout { sale, ops, .. } => {
            let points_lots = ops
                .iter()
                .filter_map(|op| match (&op.counter, &op.change) {
                    (
                        protocol::wallet::Counter::Points { year },
                        protocol::escrow::Change::Debit { units, .. },
                    ) => Some((*year, *units)),
                    _ => None,
                })
                .collect();
            let view = ItemSaleView {
                sale: sale.clone(),
                origin: entry.origin.clone(),
                seq: entry.seq,
                hlc: entry.hlc,
                business_date: entry.business_date,
                staff: entry.staff.clone(),
                returned: vec![protocol::catalogue::Qty::ZERO; sale.lines.len()],
                returns: Vec::new(),
                points_lots,
                coupons: Vec::new(),
            };
            ov.put(keys::item_sale(&sale.sale_id), encode(&view));
            if let Some(member) = &sale.member_id {
                ov.put(
                    keys::member_sale(member, entry.hlc, &entry.origin),
                    encode(&sale.sale_id),
                );
            }
            wallet_entry(ov, entry)?;
            if let Some(why) =
                protocol::project::inventory::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "sale's stock skipped");
            }
            Ok(())
        }
        Payload::Catalogue { .. }
        | Payload::StoreCatalogue { .. }
        | Payload::Stock { .. }
        | Payload::Transfer { .. } => {
            if let Some(why) =
                protocol::project::inventory::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "inventory entry skipped");
            }
            Ok(())
        }
        Payload::ItemReturn { ret, .. } => {
            let key = keys::item_sale(&ret.sale_id);
            if let Some(mut view) = ov.get_as::<ItemSaleView>(&key)? {
                for l in &ret.lines {
                    if let Some(q) = view.returned.get_mut(usize::from(l.line)) {
                        q.0 = q.0.saturating_add(l.qty.0);
                    }
                }
                view.returns.push(ReturnRecord {
                    ret: ret.clone(),
                    origin: entry.origin.clone(),
                    seq: entry.seq,
                    hlc: entry.hlc,
                    business_date: entry.business_date,
                    staff: entry.staff.clone(),
                });
                ov.put(key, encode(&view));
            }
            wallet_entry(ov, entry)?;
            if let Some(why) =
                protocol::project::inventory::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "return's stock skipped");
            }
            Ok(())
        }
        // Headquarters' commission rules are read at headquarters only; audit notes by auditors.
        Payload::CommissionRules { .. } | Payload::Audit { .. } => Ok(()),
        // Only headquarters erases (its hub refuses the entry from a store).
        Payload::MemberErased { member_id } if entry.origin == StoreId::hq() => {
            erase_member(ov, member_id)
        }
        Payload::MemberErased { .. } => Ok(()),
        // Headquarters gives the rewards; a store keeps nothing of the rules.
        Payload::ReferralRules { .. } => Ok(()),
        Payload::Gifts { .. } => {
            if let Some(why) =
                protocol::project::gifts::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "gift table skipped");
            }
            Ok(())
        }
        Payload::ChainRules { .. } | Payload::Tiers { .. } | Payload::CardRules { .. } => {
            if let Some(why) =
                protocol::project::rules::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "member rules skipped");
            }
            Ok(())
        }
        // Templates and campaigns, so the till can show where a member's coupon came from.
        Payload::Marketing { .. } => {
            if let Some(why) =
                protocol::project::marketing::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "marketing change skipped");
            }
            Ok(())
        }
        Payload::Staff { .. } | Payload::StaffCredentials { .. } => {
            if let Some(why) =
                protocol::project::staff::apply(ov, entry).map_err(ViewError::Inventory)?
            {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "staff change skipped");
            }
            Ok(())
        }
        Payload::Return { sale, .. } => {
            if let Some(mut view) = ov.get_as::<SaleView>(&keys::sale(sale))? {
                view.returned_by = Some(entry.seq);
                ov.put(keys::sale(sale), encode(&view));
            }
            wallet_entry(ov, entry)
        }
    }
}

/// The entry's changes to its member's wallet, and to the receivables of its origin (offline
/// overdrafts it allowed): an index of who owes it, and its total.
fn wallet_entry(ov: &mut Overlay<'_>, entry: &Entry) -> Result<(), ViewError> {
    let Some(member) = entry.payload.wallet_member() else {
        return Ok(());
    };
    let key = keys::wallet(&member);
    let mut wallet = ov.get_as::<Wallet>(&key)?.unwrap_or_default();
    if let Payload::Wallet {
        event: WalletEvent::Rights {
            movement: Movement::Reclaim { from },
        },
        ..
    } = &entry.payload
        && entry.origin == StoreId::hq()
    {
        // The first take-back headquarters wrote (whatever order the feed brought them in: a
        // member's history may come after later changes of other members).
        let first = ov.get_as::<u64>(&keys::fenced(from))?;
        if first.is_none_or(|seq| entry.seq < seq) {
            ov.put(keys::fenced(from), encode(&entry.seq));
        }
    }
    let before = wallet.owed_at(&entry.origin);
    wallet.take_entry(entry);
    let after = wallet.owed_at(&entry.origin);
    ov.put(key, encode(&wallet));
    if before != after {
        let total_key = keys::receivable_total(&entry.origin);
        let total: u64 = ov.get_as(&total_key)?.unwrap_or(0);
        ov.put(total_key, encode(&(total + after).saturating_sub(before)));
        let index = keys::receivable(&entry.origin, &member);
        match after {
            0 => ov.delete(index),
            owed => ov.put(index, encode(&owed)),
        }
    }
    Ok(())
}

/// Files the member's view and index records from their profile document, and keeps the
/// document.
fn write_member(
    ov: &mut Overlay<'_>,
    entry: &Entry,
    member_id: MemberId,
    mut doc: MemberDoc,
    before: Option<&Profile>,
    registered_at: Hlc,
) -> Result<(), ViewError> {
    let profile = doc.profile()?;
    let member_key = match sealed::member_key(ov, &member_id)? {
        sealed::KeyState::Held(k) => Some(k),
        _ => None,
    };
    let doc_key = keys::document(&member_id);
    let saved = sealed::seal(member_key.as_ref(), &doc_key, doc.save());
    ov.put(doc_key, saved);
    write_view(ov, entry, member_id, profile, before, registered_at)
}

/// Files the member's view and their index records (phone, codes, search, cards), moving
/// those `before` had.
fn write_view(
    ov: &mut Overlay<'_>,
    entry: &Entry,
    member_id: MemberId,
    profile: Profile,
    before: Option<&Profile>,
    registered_at: Hlc,
) -> Result<(), ViewError> {
    let index = sealed::index_key(ov)?.ok_or_else(|| StoreError::Damaged {
        key: String::from_utf8_lossy(sealed::INDEX_KEY).into_owned(),
        reason: "missing: the store was not opened through the journal".into(),
    })?;
    let member_key = match sealed::member_key(ov, &member_id)? {
        sealed::KeyState::Held(k) => Some(k),
        _ => None,
    };
    reindex(
        ov,
        member_id,
        before.map(|p| sealed::phone_key(&index, &p.phone)),
        Some(sealed::phone_key(&index, &profile.phone)),
    );
    // 动态会员码: filed once under the handle their id gives (`protocol::member_code`).
    if before.is_none() {
        let handle = protocol::member_code::handle(&member_id);
        ov.put(
            sealed::filed(&sealed::code_key(&index, &handle), &member_id),
            Vec::new(),
        );
        // 拓客: and under their referral code.
        let code = protocol::referral::code(&member_id);
        ov.put(
            sealed::filed(&sealed::referral_key(&index, &code), &member_id),
            Vec::new(),
        );
    }
    // 会员搜索's index records of this member, before and after.
    let old = before
        .map(|p| p.search_keys(&member_id, &index))
        .unwrap_or_default();
    let new = profile.search_keys(&member_id, &index);
    for gone in old.difference(&new) {
        ov.delete(gone.clone());
    }
    for added in new.difference(&old) {
        ov.put(added.clone(), Vec::new());
    }
    // Filed under the current card and every one it replaced (补卡), so an old card says it
    // was replaced and is never given to another member.
    let cards = |p: &Profile| -> BTreeSet<Vec<u8>> {
        p.filed_cards()
            .map(|c| sealed::card_key(&index, c))
            .collect()
    };
    let old_cards = before.map(cards).unwrap_or_default();
    let new_cards = cards(&profile);
    for gone in old_cards.difference(&new_cards) {
        reindex(ov, member_id, Some(gone.clone()), None);
    }
    for added in new_cards.difference(&old_cards) {
        reindex(ov, member_id, None, Some(added.clone()));
    }
    let view = MemberView {
        member_id,
        profile,
        registered_at,
        updated_at: entry.hlc,
    };
    let key = keys::member(&member_id);
    let sealed_view = sealed::sealed(member_key.as_ref(), &key, &view);
    ov.put(key, sealed_view);
    Ok(())
}

/// 被遗忘: everything this store keeps of a member's person goes — the views, their index
/// records, their key — and a tombstone stays, so a change of theirs that arrives later is
/// skipped. Their wallet, sales and the log entries stay: they hold ids and amounts.
pub fn erase_member(ov: &mut Overlay<'_>, member_id: &MemberId) -> Result<(), ViewError> {
    let view = sealed::read::<MemberView>(ov, member_id, &keys::member(member_id))?;
    // The tombstone keeps the hashes of their changes (not what the changes say): a thin
    // change of theirs still in flight is then made whole, and skipped.
    let mut hashes = sealed::erased_changes(ov, member_id)?;
    if let Some(saved) = sealed::read_bytes(ov, member_id, &keys::document(member_id))? {
        hashes.extend(MemberDoc::load(&saved)?.change_hashes());
    }
    if let (Some(view), Some(index)) = (view, sealed::index_key(ov)?) {
        let profile = &view.profile;
        let mut gone: Vec<Vec<u8>> = profile.search_keys(member_id, &index).into_iter().collect();
        gone.push(sealed::filed(
            &sealed::phone_key(&index, &profile.phone),
            member_id,
        ));
        for card in profile.filed_cards() {
            gone.push(sealed::filed(&sealed::card_key(&index, card), member_id));
        }
        let handle = protocol::member_code::handle(member_id);
        gone.push(sealed::filed(&sealed::code_key(&index, &handle), member_id));
        let code = protocol::referral::code(member_id);
        gone.push(sealed::filed(
            &sealed::referral_key(&index, &code),
            member_id,
        ));
        for key in gone {
            ov.delete(key);
        }
    }
    ov.delete(keys::member(member_id));
    ov.delete(keys::document(member_id));
    ov.delete(sealed::key_of(member_id));
    let tombstone = if hashes.is_empty() {
        Vec::new()
    } else {
        encode(&hashes)
    };
    ov.put(sealed::erased_key(member_id), tombstone);
    Ok(())
}

/// Moves a member's record in the phone or card index from under `old` to under `new`.
fn reindex(ov: &mut Overlay<'_>, member: MemberId, old: Option<Vec<u8>>, new: Option<Vec<u8>>) {
    if old == new {
        return;
    }
    if let Some(old) = old {
        ov.delete(sealed::filed(&old, &member));
    }
    if let Some(new) = new {
        ov.put(sealed::filed(&new, &member), Vec::new());
    }
}

fn apply_sale(ov: &mut Overlay<'_>, entry: &Entry, sale: &QuickSale) {
    let view = SaleView {
        sale: sale.clone(),
        origin: entry.origin.clone(),
        seq: entry.seq,
        hlc: entry.hlc,
        business_date: entry.business_date,
        staff: entry.staff.clone(),
        returned_by: None,
    };
    ov.put(keys::sale(&sale.sale_id), encode(&view));
    if let Some(member) = &sale.member_id {
        ov.put(
            keys::member_sale(member, entry.hlc, &entry.origin),
            encode(&sale.sale_id),
        );
    }
}

/// Read side of the views, used by the HTTP handlers directly (sled reads are concurrent).
#[derive(Clone)]
pub struct Views {
    store: std::sync::Arc<dyn Store>,
}

impl Views {
    pub fn new(store: std::sync::Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Headquarters' member rules, once it has published any.
    pub fn chain_rules(&self) -> Result<Option<protocol::rules::Published>, StoreError> {
        chain_rules(&*self.store)
    }

    pub fn tier_table(&self) -> Result<Option<protocol::tiers::Published>, StoreError> {
        tier_table(&*self.store)
    }

    pub fn card_rules(&self) -> Result<Option<protocol::card_rules::Published>, StoreError> {
        card_rules(&*self.store)
    }

    /// What `member` qualified with over `table`'s period ending `today`, as this store knows
    /// (会员等级).
    pub fn qualifying(
        &self,
        member: &MemberId,
        table: &protocol::tiers::TierTable,
        (today, now_ms): (chrono::NaiveDate, u64),
    ) -> Result<i64, StoreError> {
        let since = crate::journal::window(table, today, now_ms);
        crate::journal::qualifying(&*self.store, member, since, table.basis)
    }

    fn get_as<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.store
            .get(key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    pub fn member(&self, id: &MemberId) -> Result<Option<MemberView>, StoreError> {
        sealed::read(&*self.store, id, &keys::member(id))
    }

    /// Whether headquarters has fenced `store` (taken its rights back): the seq of headquarters'
    /// first entry that did.
    pub fn fenced(&self, store: &StoreId) -> Result<Option<u64>, StoreError> {
        let key = keys::fenced(store);
        self.store
            .get(&key)?
            .map(|value| decode(&key, &value))
            .transpose()
    }

    /// Members who owe `store` for offline overdrafts, and how much.
    pub fn receivables(&self, store: &StoreId) -> Result<Vec<(MemberId, u64)>, StoreError> {
        let prefix = keys::receivables_prefix(store);
        let mut out = Vec::new();
        for (key, value) in self.store.scan_prefix(&prefix)? {
            let id = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|s| MemberId::parse(s).ok());
            if let Some(id) = id {
                out.push((id, decode(&key, &value)?));
            }
        }
        Ok(out)
    }

    pub fn wallet(&self, id: &MemberId) -> Result<Wallet, StoreError> {
        Ok(self.get_as(&keys::wallet(id))?.unwrap_or_default())
    }

    pub fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>, StoreError> {
        match sealed::index_key(&*self.store)? {
            // Two members with one phone (registered at two offline stores): the first.
            Some(index) => Ok(sealed::filed_under(
                &*self.store,
                &sealed::phone_key(&index, phone),
            )?
            .into_iter()
            .next()),
            None => Ok(None),
        }
    }

    /// 会员搜索: the first members (in id order) answering `query` (`Profile::matches`),
    /// read through the index (`protocol::member::search_index`), never every member.
    pub fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberView>, StoreError> {
        let Some(index) = sealed::index_key(&*self.store)? else {
            return Ok(Vec::new());
        };
        protocol::member::search_index(
            query,
            limit,
            &index,
            |prefix| {
                Ok(self
                    .store
                    .scan_prefix(prefix)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect())
            },
            |id| self.member(id),
            |view: &MemberView| &view.profile,
        )
    }

    /// 拓客: the member whose referral code this is, if this store holds them.
    pub fn member_by_referral(&self, code: &str) -> Result<Option<MemberId>, StoreError> {
        let Some(index) = sealed::index_key(&*self.store)? else {
            return Ok(None);
        };
        let filed = sealed::filed_under(&*self.store, &sealed::referral_key(&index, code))?;
        let mut holders = filed
            .into_iter()
            .filter(|m| protocol::referral::code(m) == code);
        // Two members with one code (50 bits: unlikely below millions): no one is guessed.
        match (holders.next(), holders.next()) {
            (Some(m), None) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    /// 动态会员码: the member whose code `code` is now (or was a minute ago), checked with
    /// their key as this store holds it; with the step it names (for the replay guard).
    pub fn member_by_code(
        &self,
        code: &str,
        now_ms: u64,
    ) -> Result<Result<(MemberId, u64), protocol::member_code::CodeError>, StoreError> {
        use protocol::member_code::{self, CodeError};
        let handle = match member_code::handle_of(code) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(e)),
        };
        let Some(index) = sealed::index_key(&*self.store)? else {
            return Ok(Err(CodeError::Forged));
        };
        let mut found = Err(CodeError::Forged);
        for member in sealed::filed_under(&*self.store, &sealed::code_key(&index, &handle))? {
            let sealed::KeyState::Held(key) = sealed::member_key(&*self.store, &member)? else {
                continue;
            };
            match member_code::check(&key, &member, code, now_ms) {
                Ok(step) => return Ok(Ok((member, step))),
                Err(CodeError::Expired) => found = Err(CodeError::Expired),
                Err(_) => {}
            }
        }
        Ok(found)
    }

    pub fn member_by_card(&self, card: &CardNo) -> Result<Option<MemberId>, StoreError> {
        match sealed::index_key(&*self.store)? {
            Some(index) => Ok(
                sealed::filed_under(&*self.store, &sealed::card_key(&index, card))?
                    .into_iter()
                    .next(),
            ),
            None => Ok(None),
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The views as `protocol::inventory` reads them.
    pub fn kv(&self) -> Overlay<'_> {
        Overlay::new(&*self.store)
    }

    /// Records under a prefix, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<crate::store::KeyValue>, StoreError> {
        self.store.scan_prefix(prefix)
    }

    pub fn item_sale(&self, id: &SaleId) -> Result<Option<ItemSaleView>, StoreError> {
        self.get_as(&keys::item_sale(id))
    }

    pub fn sale(&self, id: &SaleId) -> Result<Option<SaleView>, StoreError> {
        self.get_as(&keys::sale(id))
    }

    /// How many entries `origin` has written (its last seq).
    pub fn log_length(&self, origin: &str) -> Result<u64, StoreError> {
        let Ok(origin) = StoreId::parse(origin) else {
            return Ok(0);
        };
        let last = self.store.scan_prefix_rev(&keys::log_prefix(&origin), 1)?;
        Ok(last.first().map_or(0, |(key, _)| {
            let seq: [u8; 8] = key[key.len() - 8..].try_into().unwrap_or_default();
            u64::from_be_bytes(seq)
        }))
    }

    /// How much of the hub's feed this store has applied.
    pub fn feed_applied(&self) -> Result<u64, StoreError> {
        Self::feed_applied_in(&*self.store)
    }

    /// Whether this store holds the member's profile document (not only their listing).
    pub fn holds_profile(&self, member: &MemberId) -> Result<bool, StoreError> {
        Ok(self.store.get(&keys::document(member))?.is_some())
    }

    /// Whether this store follows `member` and holds their wallet whole (`crate::follow`).
    pub fn follow_state(&self, member: &MemberId) -> Result<crate::follow::State, StoreError> {
        crate::follow::state(&Overlay::new(&*self.store), member)
    }

    /// [`feed_applied`](Self::feed_applied) of a store without its views.
    pub fn feed_applied_in(store: &dyn Store) -> Result<u64, StoreError> {
        Ok(Overlay::new(store).get_as(keys::FEED_APPLIED)?.unwrap_or(0))
    }

    /// This store's own log entry `seq`, encoded.
    pub fn log_entry(&self, origin: &StoreId, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(&keys::log(origin, seq))
    }

    /// A member's sales, quick and item sales alike, newest first.
    pub fn member_sales(&self, id: &MemberId, limit: usize) -> Result<Vec<AnySale>, StoreError> {
        let index = self
            .store
            .scan_prefix_rev(&keys::member_sales_prefix(id), limit)?;
        let mut sales = Vec::with_capacity(index.len());
        for (key, value) in index {
            let sale_id: SaleId = decode(&key, &value)?;
            if let Some(sale) = self.sale(&sale_id)? {
                sales.push(AnySale::Quick(Box::new(sale)));
            } else if let Some(sale) = self.item_sale(&sale_id)? {
                sales.push(AnySale::Items(Box::new(sale)));
            }
        }
        Ok(sales)
    }
}

/// What `rebuild` found.
#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    pub entries: u64,
    /// Entries from other replicas, received through the hub's feed.
    pub feed_entries: u64,
    pub origins: u64,
    /// Keys whose stored value differs from the rebuilt one (or exists on one side only).
    pub differences: Vec<String>,
    /// Entries whose idempotency key has no request record.
    pub missing_idempotency_records: Vec<String>,
}

impl RebuildReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.missing_idempotency_records.is_empty()
    }
}

/// The shape of the views. Bumped whenever what a view stores, or how an entry changes it,
/// changes; a store whose views another version wrote rebuilds them from its log on open.
pub const VIEWS_VERSION: u32 = 20;

/// Rebuilds the views from the log and the feed records when they were written by another
/// version of this software (or none), so an upgrade never reads a view it cannot decode.
/// Returns whether it rebuilt.
pub fn ensure_current(store: &dyn Store, calendar: &StoreCalendar) -> Result<bool, ViewError> {
    let key = keys::VIEWS_VERSION_KEY;
    let stored: Option<u32> = store.get(key)?.map(|v| decode(key, &v)).transpose()?;
    if stored == Some(VIEWS_VERSION) {
        return Ok(false);
    }
    let (fresh, report) = replay(store, calendar)?;
    let mut batch = Batch::default();
    for prefix in keys::VIEWS.iter().chain(protocol::inventory::VIEW_PREFIXES) {
        for (k, _) in store.scan_prefix(prefix)? {
            batch.delete(k);
        }
        for (k, v) in fresh.scan_prefix(prefix)? {
            batch.put(k, v);
        }
    }
    batch.put(key.to_vec(), encode(&VIEWS_VERSION));
    store.apply(batch)?;
    store.flush()?;
    tracing::info!(
        from = ?stored,
        to = VIEWS_VERSION,
        entries = report.entries,
        feed_entries = report.feed_entries,
        "views rebuilt from the log"
    );
    Ok(report.entries + report.feed_entries > 0)
}

pub fn rebuild(store: &dyn Store, calendar: &StoreCalendar) -> Result<RebuildReport, ViewError> {
    let (fresh, mut report) = replay(store, calendar)?;
    for prefix in keys::VIEWS.iter().chain(protocol::inventory::VIEW_PREFIXES) {
        report.differences.extend(compare(
            &store.scan_prefix(prefix)?,
            &fresh.scan_prefix(prefix)?,
        ));
    }
    Ok(report)
}

/// Every view derived afresh from the log and the feed records, in the order the store lived
/// through them.
fn replay(
    store: &dyn Store,
    calendar: &StoreCalendar,
) -> Result<(MemStore, RebuildReport), ViewError> {
    let fresh = MemStore::default();
    // The keys are not views: the replay reads them as they are (an erased member's entries
    // then go unread, as they did live once the erasure arrived).
    let mut keys = Batch::default();
    for prefix in [sealed::KEYS, sealed::ERASED, sealed::INDEX_KEY] {
        for (k, v) in store.scan_prefix(prefix)? {
            keys.put(k, v);
        }
    }
    fresh.apply(keys)?;
    let mut report = RebuildReport::default();
    let mut feed = store
        .scan_prefix(keys::FEED)?
        .into_iter()
        .map(|(k, v)| decode::<FeedRecord>(&k, &v))
        .collect::<Result<Vec<_>, _>>()?;
    // In the order they were applied: a member's history arrives after later positions did
    // (`crate::follow`); within one batch, by position (a stable sort keeps key order).
    feed.sort_by_key(|r| r.before_seq);
    let mut feed = feed.into_iter().peekable();
    let mut apply_feed_until =
        |before_seq: u64, report: &mut RebuildReport| -> Result<(), ViewError> {
            while let Some(record) = feed.next_if(|r| r.before_seq <= before_seq) {
                let mut ov = Overlay::new(&fresh);
                apply_foreign_entry(&mut ov, &record.entry)?;
                fresh.apply(ov.into_batch())?;
                report.feed_entries += 1;
            }
            Ok(())
        };
    let mut tip: Option<(StoreId, ChainTip)> = None;
    for (key, bytes) in store.scan_prefix(keys::LOG)? {
        let entry = Entry::decode(&bytes)?;
        let current = match tip.take() {
            Some((origin, t)) if origin == entry.origin => t,
            _ => {
                report.origins += 1;
                ChainTip::GENESIS
            }
        };
        tip = Some((entry.origin.clone(), current.extend(&entry.origin, &entry)?));
        apply_feed_until(entry.seq, &mut report)?;
        let mut ov = Overlay::new(&fresh);
        apply_own_entry(&mut ov, &entry, calendar)?;
        fresh.apply(ov.into_batch())?;
        if store.get(&keys::idempotency(&entry.tx))?.is_none() {
            report
                .missing_idempotency_records
                .push(String::from_utf8_lossy(&key).into_owned());
        }
        report.entries += 1;
    }
    apply_feed_until(u64::MAX, &mut report)?;
    Ok((fresh, report))
}

fn compare(stored: &[(Vec<u8>, Vec<u8>)], rebuilt: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    let as_map = |kvs: &[(Vec<u8>, Vec<u8>)]| {
        kvs.iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (stored, rebuilt) = (as_map(stored), as_map(rebuilt));
    let mut keys: Vec<_> = stored.keys().chain(rebuilt.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| stored.get(*k) != rebuilt.get(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}
