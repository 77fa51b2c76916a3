//! The ingest owner: the one writer of the hub's storage (STYLE.md §6). Sessions hand it
//! verified batches; it re-checks each against the authoritative chain tip (two sessions of one
//! store may overlap during a reconnect), writes entries and their feed items, and answers only
//! after a flush covers them. Batches arriving together share a flush (group commit).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use protocol::ask::{AskQueue, AskStep, Limits};
use protocol::bank::{self, AskPlan};
use protocol::calendar::StoreCalendar;
use protocol::catalogue::{Barcode, CatalogueChange, CatalogueError};
use protocol::commission::CommissionRules;
use protocol::entry::{ChainError, ChainTip, Entry, Payload, Sealed};
use protocol::escrow::Change;
use protocol::inventory::{self, ViewKv};
use protocol::member::MemberDoc;
use protocol::seal::{KeyState, MemberKey};
use protocol::staff::{StaffError, StaffRecord};
use protocol::stock::{Transfer, TransferError, TransferStep};
use protocol::sync::{Ask, AskAnswer, Recall};
use protocol::wallet::{Counter, Wallet};
use protocol::wallet::{Movement, WalletEvent};
use protocol::{DocId, MemberId, Phone, Sku, StoreId};
use protocol::{Hlc, HlcClock, StaffId, TxId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::storage::{Append, Fence, HubStore, MemberRecord, StoreStatus};

/// A group of commands sharing one flush holds at most this many commands …
const GROUP_MAX: usize = 256;
/// … and at most about this many entries, so a group's work and flush stay short and an ask
/// waiting for the next group is not held up long.
const GROUP_ENTRIES_MAX: usize = 4096;
/// Asks waiting for the ingest thread to take them (each store's are capped by `AskQueue`).
const ASKS_QUEUED_MAX: usize = 4096;
/// Recalls queued for the sessions to forward: a session that falls this far behind misses
/// some (an ask waiting on one is answered at its deadline; a refill is planned again).
const RECALLS_QUEUED_MAX: usize = 16_384;

/// Where a store's session takes the answers to its asks: (ask id, answer).
pub type Answers = mpsc::UnboundedSender<(TxId, AskAnswer)>;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the hub is shutting down")]
    Unavailable,
    /// The store wrote something only headquarters may write (its software was changed).
    #[error("entry {seq}: {what}")]
    NotAllowed { seq: u64, what: &'static str },
    /// Headquarters' own write would be an entry no one could decode; nothing was written.
    #[error("the entry would be {0} bytes, over the {max}-byte limit", max = protocol::entry::ENTRY_BYTES_MAX)]
    TooLarge(usize),
}

/// A catalogue version headquarters wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CatalogueWritten {
    pub version: u64,
    /// Entries of HQ's log it took.
    pub parts: u32,
    pub changes: usize,
}

/// What headquarters writes besides the catalogue and transfers.
#[derive(Debug)]
pub enum HqWrite {
    Staff(Vec<StaffRecord>),
    /// A member of staff's login secret, hashed (or `None`: no login any more).
    Credentials(StaffId, Option<String>),
    Commission(CommissionRules),
    /// 会员规则 for every store.
    Rules(protocol::rules::ChainRules),
    /// An action of headquarters' kept for the audit log (a member's data exported).
    Note(protocol::audit::Note),
    /// 被遗忘: erase a member at their request (`protocol::seal`).
    Erase(MemberId),
    /// 挂失 at headquarters (the member called the service line): the card stops finding
    /// them at every store the change reaches.
    CardLost(MemberId),
    /// 会员等级: the tier table for every store.
    Tiers(protocol::tiers::TierTable),
    /// 退卡与计时规则: how every store closes a membership and charges a timed card.
    CardRules(protocol::card_rules::CardRules),
    /// 会员等级评定: members moved by the review as of a day (`crate::tiers`); a member whose
    /// tier changed since the review read it is left for the next one.
    MoveTiers {
        moves: Vec<crate::tiers::TierMove>,
        as_of: chrono::NaiveDate,
    },
    /// 支付密码 set by the member on their own page: the argon2 hash, into their wallet.
    MemberPassword {
        member: MemberId,
        hash: String,
    },
    /// 积分商城: the gifts every store offers for points.
    Gifts(protocol::gifts::GiftTable),
    /// 积分兑换 on the member's own page: a coupon gift given by headquarters for the member's
    /// points, once per `key`.
    RedeemGift {
        member: MemberId,
        gift: String,
        key: TxId,
    },
    /// 拓客奖励: what a referrer is given on their new member's first paid sale.
    ReferralRules(protocol::referral::ReferralRules),
    /// 批量打标签: `tag` added to each of `members` who lacks it (a list of targets brought
    /// in for a campaign's segment, `crate::api::members`); one unknown or erased member, or a
    /// tag a profile cannot hold, refuses them all.
    TagMembers {
        tag: String,
        members: Vec<MemberId>,
    },
}

/// Why headquarters' write was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum HqWriteError {
    #[error(transparent)]
    Staff(#[from] StaffError),
    #[error(transparent)]
    Commission(#[from] protocol::commission::CommissionError),
    #[error(transparent)]
    Rules(#[from] protocol::rules::RulesError),
    #[error("the change is {0} bytes, too large for one entry: send it in parts")]
    TooLarge(usize),
    #[error("no member {0}")]
    UnknownMember(MemberId),
    #[error(transparent)]
    Gifts(#[from] protocol::campaign::MarketingError),
    #[error(transparent)]
    Gift(#[from] protocol::gifts::GiftRefused),
    /// The points are not enough, or not spendable as asked.
    #[error(transparent)]
    Points(#[from] protocol::wallet::WalletError),
    /// Headquarters is calling the points back from the stores that hold them: the same
    /// request again in a moment goes through.
    #[error(
        "the member's points are being called back from the stores that hold them: try again in a moment"
    )]
    Gathering,
    /// Part of the points are held at stores headquarters cannot reach now.
    #[error("part of the points are held at stores that are offline ({0}): redeem there, or later")]
    Unreachable(String),
    /// The member cannot be erased yet (what they are owed or owe needs their identity).
    #[error("{0}")]
    NotErasable(String),
    /// The card is not in a state the write applies to (no card, lost already, closed).
    #[error("{0}")]
    CardState(String),
    /// A tag a profile cannot hold, or too many members at once.
    #[error("{0}")]
    Tag(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

/// Why headquarters could not take a transfer step. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum TransferRefused {
    #[error("no transfer {0}")]
    Unknown(DocId),
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    #[error(transparent)]
    Step(#[from] TransferError),
    #[error("storage: {0}")]
    Storage(String),
}

/// The most changes one change set may carry (an import of the whole catalogue fits).
pub const CATALOGUE_CHANGES_MAX: usize = 500_000;

/// Why a hold could not be placed or voided. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("store {0} has never synced with headquarters")]
    UnknownStore(StoreId),
    #[error("headquarters itself cannot be put on hold")]
    Headquarters,
    #[error("store {0} is connected: its rights come back by recall, no hold is needed")]
    Online(StoreId),
    #[error("store {0} is already on hold")]
    AlreadyOnHold(StoreId),
    #[error("store {0} is fenced, which is final")]
    Fenced(StoreId),
    #[error("store {0} is not on hold")]
    NotOnHold(StoreId),
    /// A store still within its offline lease may be spending the rights it holds: fencing it
    /// now would let the same money be spent twice.
    #[error(
        "store {store} may still be spending offline until its lease runs out: hold it until {earliest_ms} ms at the earliest"
    )]
    TooSoon { store: StoreId, earliest_ms: u64 },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// A store's PC clock off headquarters' by more than this is shown as wrong.
const CLOCK_WRONG_MS: u64 = 60_000;

/// One row of the stores overview.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreRow {
    pub store_id: StoreId,
    pub connected: bool,
    pub acked_seq: u64,
    pub log_len: u64,
    /// Entries the store has written that the hub does not hold yet (as last reported).
    pub entries_behind: u64,
    /// Seconds since the hub last took a batch from this store, when it is behind.
    pub seconds_behind: u64,
    pub last_sync_ms: u64,
    pub last_entry_ms: u64,
    /// A hold or fence headquarters put on the store.
    pub fence: Option<Fence>,
    /// For a fenced store: entries of its log after the fence, taken in all the same (sales
    /// it made while it did not know; what it spent twice is a receivable in liabilities).
    pub entries_after_fence: u64,
    /// For a store not connected: the earliest a hold may end (its offline lease runs out).
    pub earliest_fence_ms: Option<u64>,
    /// How far the store's PC clock is off headquarters' (ms, positive when ahead), as it
    /// last said; it goes by headquarters' time while it knows it.
    pub clock_off_ms: Option<i64>,
    /// Off by more than a minute: its PC's clock should be set right.
    pub clock_wrong: bool,
    /// Until when the certificate it last connected with is good (the store renews it itself
    /// in its last third; one that runs out must be enrolled again).
    pub certificate_until_ms: Option<u64>,
}

mod assortment;
mod directory;
mod fence;
mod flusher;
mod gifts;
mod handle;
mod hq;
mod import;
pub(crate) mod marketing;
pub(crate) mod referral;
mod rights;
#[cfg(test)]
pub(crate) mod tests;
mod verify;

use directory::Directory;
pub(crate) use directory::HubViews;
pub use directory::known_change;
pub use handle::{IngestHandle, IngestMetrics, Persisting, spawn};
pub use hq::TAG_MEMBERS_MAX;
pub use import::{Imported, Prepared};
pub use marketing::MarketingRefused;
pub use verify::{DERIVED_VERSION, VerifyReport, ensure_current, verify};

/// The hub's write-side state. Used by the ingest thread, and directly (single-threaded) by the
/// deterministic simulator.
pub struct Ingest {
    storage: Arc<dyn HubStore>,
    tips: HashMap<StoreId, ChainTip>,
    statuses: HashMap<StoreId, StoreStatus>,
    links: HashMap<StoreId, u32>,
    feed_len: u64,
    now_ms: Box<dyn Fn() -> u64 + Send>,
    /// Headquarters' own clock and calendar, for the entries it writes (grants).
    hq_clock: HlcClock,
    calendar: StoreCalendar,
    /// The rights bank's policy: the reserve headquarters keeps, placement by spending.
    policy: bank::Policy,
    /// Members' counters changed since the last `rebalance`.
    touched: BTreeSet<(MemberId, Counter)>,
    /// The documents of the members the next batch of headquarters' own registers (an import
    /// part), as it built them: the directory takes them as they are (`Directory::built`).
    built: BTreeMap<MemberId, (MemberDoc, protocol::member::Profile)>,
    /// Stores granted a member's rights for a waiting payment, until when (headquarters'
    /// clock): a rebalance in between does not recall them before the payment spends them.
    awaiting: HashMap<(MemberId, StoreId), u64>,
    recall_rounds: u64,
    fences: HashMap<StoreId, Fence>,
    /// Fenced stores whose rights are not all taken back yet (a write failed).
    reclaims_pending: Vec<StoreId>,
    /// When headquarters last had a link to each store not connected now (its own clock; the
    /// hub's start for a store not seen since), and the stores' offline lease: a store may be
    /// fenced only once that lease has run out (`protocol::lease`).
    link_lost_ms: HashMap<StoreId, u64>,
    fence_rule: protocol::lease::FenceRule,
    /// How far each store's PC clock is off (as it last said, since this start).
    clock_off_ms: HashMap<StoreId, i64>,
    /// Until when each store's certificate is good, as it last connected with it.
    certificates: HashMap<StoreId, u64>,
    /// Which feed records reach which store (`crate::routes`), grown as the feed is.
    routes: crate::routes::SharedRoutes,
    /// Whether entries queue notices to members (a gateway or file is configured).
    notify: bool,
    /// Members whose points headquarters is calling back to spend itself (a gift on the
    /// member's page), until when: a rebalance does not place them out again meanwhile.
    gathering: HashMap<MemberId, u64>,
    /// Recalls headquarters' own spends asked for, for the ingest thread to send.
    gather_recalls: Vec<(StoreId, Recall)>,
    /// Referred members whose rewards' unspent rights were called back for a take-back
    /// (`referral.rs`), so each is called back once.
    gathered_back: BTreeSet<MemberId>,
}

/// Entries every store needs: the member directory (registrations and profile edits), every
/// change to a wallet (so each store knows balances and the rights it holds), the catalogue and
/// transfers. A store's own stock movements stay between it and headquarters.
fn goes_to_feed(entry: &Entry) -> bool {
    matches!(
        entry.payload,
        Payload::MemberRegistered { .. }
            | Payload::MemberEdited { .. }
            | Payload::MemberErased { .. }
            | Payload::Catalogue { .. }
            | Payload::StoreCatalogue { .. }
            | Payload::Transfer { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
            | Payload::Tiers { .. }
            | Payload::CardRules { .. }
            | Payload::Gifts { .. }
            | Payload::ReferralRules { .. }
            | Payload::Marketing { .. }
    ) || touches_wallet(entry)
}

/// What a store's entry holds that only headquarters may write, if anything.
fn hq_only(payload: &Payload) -> Option<&'static str> {
    let reclaims = payload.rights_ops().is_some_and(|(_, ops)| {
        ops.iter()
            .any(|op| matches!(op.change, Change::Reclaim { .. }))
    }) || matches!(
        payload,
        Payload::Wallet {
            event: WalletEvent::Rights {
                movement: Movement::Reclaim { .. }
            },
            ..
        }
    );
    match payload {
        Payload::Catalogue { .. } | Payload::StoreCatalogue { .. } => {
            Some("only headquarters changes the catalogue (prices included)")
        }
        Payload::Staff { .. } | Payload::StaffCredentials { .. } => {
            Some("only headquarters changes the staff directory")
        }
        Payload::CommissionRules { .. } => Some("only headquarters sets commission rules"),
        Payload::ChainRules { .. } => Some("only headquarters sets the member rules"),
        Payload::Tiers { .. } => Some("only headquarters sets the tier table"),
        Payload::CardRules { .. } => Some("only headquarters sets the card rules"),
        Payload::Gifts { .. } => Some("only headquarters sets the points mall"),
        Payload::ReferralRules { .. }
        | Payload::Wallet {
            event: WalletEvent::ReferralReward { .. } | WalletEvent::ReferralRevoked { .. },
            ..
        } => Some("only headquarters rewards referrals"),
        Payload::MemberErased { .. } => Some("only headquarters erases a member"),
        Payload::MemberListed { .. } => {
            Some("a member's listing is headquarters' to send, never a log's entry")
        }
        Payload::Marketing { .. }
        | Payload::Wallet {
            event: WalletEvent::CampaignCoupon { .. },
            ..
        } => Some("only headquarters runs campaigns"),
        Payload::Wallet {
            event: WalletEvent::Opening { .. },
            ..
        } => Some("only headquarters imports members' opening balances"),
        _ if reclaims => Some("only headquarters takes back a fenced store's rights"),
        _ => None,
    }
}

fn touches_wallet(entry: &Entry) -> bool {
    entry.payload.wallet_member().is_some()
}

impl Ingest {
    /// Loads every store's tip and status and the feed length from `storage`.
    pub fn open(
        storage: Arc<dyn HubStore>,
        now_ms: Box<dyn Fn() -> u64 + Send>,
    ) -> anyhow::Result<Self> {
        ensure_current(&*storage)?;
        let mut tips = HashMap::new();
        let mut statuses = HashMap::new();
        for (store, tip, status) in storage.stores()? {
            tips.insert(store.clone(), tip);
            statuses.insert(store, status);
        }
        let feed_len = storage.feed_len()?;
        let hq = StoreId::hq();
        let last_hq = match tips.get(&hq) {
            Some(tip) if tip.next_seq > 1 => {
                let bytes = storage.entries(&hq, tip.next_seq - 1, 1)?;
                let entry = bytes.first().map(|b| Entry::decode(b)).transpose()?;
                entry.map_or(Hlc::ZERO, |e| e.hlc)
            }
            _ => Hlc::ZERO,
        };
        let fences: HashMap<StoreId, Fence> = storage.fences()?.into_iter().collect();
        let routes = Arc::new(std::sync::RwLock::new(crate::routes::Routes::load(
            &*storage,
        )?));
        let mut ingest = Self {
            storage,
            tips,
            statuses,
            links: HashMap::new(),
            feed_len,
            now_ms,
            hq_clock: HlcClock::new(last_hq, HlcClock::DEFAULT_MAX_FORWARD_SKEW_MS),
            calendar: StoreCalendar::default(),
            policy: bank::Policy::default(),
            touched: BTreeSet::new(),
            built: BTreeMap::new(),
            awaiting: HashMap::new(),
            recall_rounds: 0,
            fences,
            reclaims_pending: Vec::new(),
            link_lost_ms: HashMap::new(),
            fence_rule: Default::default(),
            clock_off_ms: HashMap::new(),
            certificates: HashMap::new(),
            routes,
            notify: false,
            gathering: HashMap::new(),
            gather_recalls: Vec::new(),
            gathered_back: BTreeSet::new(),
        };
        // Nothing says when the link to a store was lost before this start: count from now.
        let started = (ingest.now_ms)();
        ingest.link_lost_ms = ingest
            .statuses
            .keys()
            .map(|store| (store.clone(), started))
            .collect();
        // A crash between fencing a store and taking back its rights: finish the job.
        let fenced: Vec<StoreId> = ingest
            .fences
            .iter()
            .filter(|(_, f)| matches!(f, Fence::Fenced { .. }))
            .map(|(s, _)| s.clone())
            .collect();
        for store in fenced {
            ingest.reclaim_from(&store)?;
        }
        ingest.flush()?;
        Ok(ingest)
    }

    /// The stores' offline lease and what a hold adds to it (`offline_rights_secs` in the
    /// hub's configuration).
    pub fn set_fence_rule(&mut self, rule: protocol::lease::FenceRule) {
        self.fence_rule = rule;
    }

    /// The rights bank's policy (`[rights]` in hub.toml).
    /// Queue notices to members from now on (`crate::notify` sends them).
    pub fn set_notify(&mut self, on: bool) {
        self.notify = on;
    }

    /// The notices an entry gives its member (`protocol::notice`), their wallet as the batch
    /// left it.
    fn notices_of(
        &self,
        entry: &Entry,
        directory: &Directory,
    ) -> Result<Vec<protocol::notice::Notice>, IngestError> {
        let Some((member, _)) = entry.payload.rights_ops() else {
            return Ok(Vec::new());
        };
        let stored;
        let wallet = match directory.wallets.get(&member) {
            Some(w) => w,
            None => {
                stored = self.wallet(&member)?;
                &stored
            }
        };
        let views = HubViews::reader(&*self.storage);
        let message = |campaign: &str| {
            protocol::project::marketing::campaign(&views, campaign)
                .ok()
                .flatten()
                .map(|p| p.item.message)
        };
        Ok(protocol::notice::of_entry(entry, wallet, message))
    }

    pub fn set_policy(&mut self, policy: bank::Policy) {
        self.policy = policy;
    }

    /// Whether `store` has a session now, so a recall can reach it (a fenced store still
    /// hands back what it holds when asked).
    fn reachable(&self, store: &StoreId) -> bool {
        self.links.get(store).is_some_and(|n| *n > 0)
    }

    /// A store's link came up or went down (one of its connections).
    pub fn link(&mut self, store: &StoreId, up: bool) {
        let n = self.links.entry(store.clone()).or_default();
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
        if *n == 0 {
            self.link_lost_ms.insert(store.clone(), (self.now_ms)());
        }
    }

    /// `store` said its PC's clock is `off_ms` off headquarters'.
    pub fn clock(&mut self, store: &StoreId, off_ms: i64) {
        if off_ms.unsigned_abs() > CLOCK_WRONG_MS {
            tracing::warn!(%store, off_ms, "the store's PC clock is off");
        }
        self.clock_off_ms.insert(store.clone(), off_ms);
    }

    /// The store showed a sign of life: a hold on it is void. A fenced store stays fenced, but
    /// its session and its log are taken like any store's: an acknowledged sale is never
    /// dropped, and what it spent of rights headquarters took back is a receivable.
    fn alive(&mut self, store: &StoreId) -> Result<(), IngestError> {
        match self.fences.get(store) {
            Some(Fence::Fenced { .. }) => Ok(()),
            Some(Fence::OnHold { .. }) => {
                tracing::warn!(%store, "the store came back: its hold is void");
                self.set_fence(store, None)
            }
            None => Ok(()),
        }
    }

    /// Opens a session with `store`: where its log ends at the hub.
    pub fn open_session(&mut self, store: &StoreId) -> Result<ChainTip, IngestError> {
        self.alive(store)?;
        Ok(self.tip(store))
    }

    /// Writes an entry of headquarters' own log (durable at the next flush).
    fn write_hq(&mut self, tx: TxId, payload: Payload) -> Result<(), IngestError> {
        self.write_hq_as(tx, payload, StaffId::system())
    }

    /// The same, naming the operator who made the change.
    fn write_hq_as(
        &mut self,
        tx: TxId,
        payload: Payload,
        staff: StaffId,
    ) -> Result<(), IngestError> {
        let hq = StoreId::hq();
        let tip = self.tip(&hq);
        let now = (self.now_ms)();
        let entry = Entry {
            origin: hq.clone(),
            seq: tip.next_seq,
            hlc: self.hq_clock.tick(now),
            business_date: self.calendar.business_date(now),
            staff,
            tx,
            prev_hash: tip.hash,
            payload,
        };
        let seq = entry.seq;
        let sealed = Sealed::new(entry);
        if sealed.bytes.len() > protocol::entry::ENTRY_BYTES_MAX {
            return Err(IngestError::TooLarge(sealed.bytes.len()));
        }
        self.ingest(&hq, vec![sealed], seq)?;
        Ok(())
    }

    /// Where the hub's copy of `store`'s log ends (including writes not yet flushed).
    pub fn tip(&self, store: &StoreId) -> ChainTip {
        self.tips.get(store).copied().unwrap_or(ChainTip::GENESIS)
    }

    /// Records in the feed (including writes not yet flushed).
    pub fn feed_len(&self) -> u64 {
        self.feed_len
    }

    /// Which feed records reach which store, as the sessions read it.
    pub fn routes(&self) -> crate::routes::SharedRoutes {
        self.routes.clone()
    }

    pub fn flush(&self) -> Result<(), IngestError> {
        self.storage
            .flush()
            .map_err(|e| IngestError::Storage(e.to_string()))
    }

    /// Re-verifies and writes a batch (durable at the next flush); returns the seq held.
    pub fn ingest(
        &mut self,
        store: &StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
    ) -> Result<u64, IngestError> {
        self.ingest_keyed(store, entries, log_len, Vec::new())
    }

    /// `ingest`, with the keys of the members whose changes the batch holds (sync version 5).
    pub fn ingest_keyed(
        &mut self,
        store: &StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
    ) -> Result<u64, IngestError> {
        self.ingest_read(store, entries, log_len, keys, BTreeMap::new())
    }

    /// `ingest_keyed`, given the wallets of the batch's members as stored (the caller read
    /// them already): they are not read again.
    fn ingest_read(
        &mut self,
        store: &StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
        wallets: BTreeMap<MemberId, Wallet>,
    ) -> Result<u64, IngestError> {
        let from_store = *store != StoreId::hq();
        // Refuse a batch holding what only headquarters may write before anything changes.
        for sealed in entries.iter().filter(|_| from_store) {
            if let Some(what) = hq_only(&sealed.entry.payload) {
                return Err(IngestError::NotAllowed {
                    seq: sealed.entry.seq,
                    what,
                });
            }
        }
        if from_store {
            self.alive(store)?;
        }
        let mut tip = self.tips.get(store).copied().unwrap_or(ChainTip::GENESIS);
        let mut status = self.statuses.get(store).cloned().unwrap_or_default();
        let mut fresh = Vec::with_capacity(entries.len());
        let mut feed = Vec::new();
        let mut routed = Vec::new();
        let mut feed_len = self.feed_len;
        let mut directory = Directory {
            keys: keys.into_iter().collect(),
            wallets,
            built: match from_store {
                true => BTreeMap::new(),
                false => std::mem::take(&mut self.built),
            },
            ..Directory::default()
        };
        let mut notices = Vec::new();
        for sealed in entries {
            if sealed.entry.seq < tip.next_seq {
                continue;
            }
            let extended = tip.extend_sealed(store, &sealed);
            tip = extended?;
            let Sealed { entry, bytes, .. } = sealed;
            if goes_to_feed(&entry) {
                feed_len += 1;
                routed.push((feed_len, protocol::route::Route::of(&entry)));
                feed.push((feed_len, entry.seq));
            }
            directory.apply(&*self.storage, &entry)?;
            if self.notify {
                notices.extend(self.notices_of(&entry, &directory)?);
            }
            self.touch(&entry);
            status.last_entry_ms = entry.hlc.wall_ms;
            fresh.push((entry.seq, bytes));
        }
        let touched: Vec<MemberId> = directory.wallets.keys().copied().collect();
        status.acked_seq = tip.next_seq - 1;
        status.log_len = status.log_len.max(log_len).max(status.acked_seq);
        status.last_sync_ms = (self.now_ms)();
        if !fresh.is_empty() {
            let kept = directory.kept_keys();
            let append = Append {
                store,
                entries: fresh,
                tip,
                status: status.clone(),
                feed,
                feed_len,
                members: directory.members.into_values().collect(),
                phones: directory.phones.into_iter().collect(),
                wallets: directory.wallets.into_iter().collect(),
                views: directory.views.into_iter().collect(),
                keys: kept,
                erased: directory.erased,
                notices,
            };
            if let Err(e) = self.storage.append(append) {
                return Err(IngestError::Storage(e.to_string()));
            }
            self.tips.insert(store.clone(), tip);
            self.feed_len = feed_len;
            let mut routes = self.routes.write().expect("routes lock");
            for (position, route) in routed {
                routes.add(position, route);
            }
        }
        self.statuses.insert(store.clone(), status);
        if self
            .fences
            .values()
            .any(|f| matches!(f, Fence::Fenced { .. }))
        {
            self.cover_deficits(store, &touched)?;
        }
        Ok(tip.next_seq - 1)
    }
    fn rows(&self) -> Vec<StoreRow> {
        let now = (self.now_ms)();
        let hq = StoreId::hq();
        let mut rows: Vec<_> = self
            .statuses
            .iter()
            .filter(|(store, _)| **store != hq)
            .map(|(store, s)| {
                let behind = s.log_len.saturating_sub(s.acked_seq);
                StoreRow {
                    store_id: store.clone(),
                    connected: self.links.get(store).is_some_and(|n| *n > 0),
                    acked_seq: s.acked_seq,
                    log_len: s.log_len,
                    entries_behind: behind,
                    seconds_behind: if behind > 0 {
                        now.saturating_sub(s.last_sync_ms) / 1000
                    } else {
                        0
                    },
                    last_sync_ms: s.last_sync_ms,
                    last_entry_ms: s.last_entry_ms,
                    fence: self.fences.get(store).cloned(),
                    entries_after_fence: match self.fences.get(store) {
                        Some(Fence::Fenced { at_seq, .. }) => s.acked_seq.saturating_sub(*at_seq),
                        _ => 0,
                    },
                    earliest_fence_ms: self
                        .links
                        .get(store)
                        .is_none_or(|n| *n == 0)
                        .then(|| self.earliest_fence(store)),
                    clock_off_ms: self.clock_off_ms.get(store).copied(),
                    clock_wrong: self
                        .clock_off_ms
                        .get(store)
                        .is_some_and(|off| off.unsigned_abs() > CLOCK_WRONG_MS),
                    certificate_until_ms: self.certificates.get(store).copied(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.store_id.cmp(&b.store_id));
        rows
    }
}

pub(crate) fn system_now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as u64).unwrap_or(0)
}
