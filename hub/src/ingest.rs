//! The ingest owner: the one writer of the hub's storage (STYLE.md §6). Sessions hand it
//! verified batches; it re-checks each against the authoritative chain tip (two sessions of one
//! store may overlap during a reconnect), writes entries and their feed items, and answers only
//! after a flush covers them. Batches arriving together share a flush (group commit).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use protocol::ask::{AskQueue, AskStep, Limits};
use protocol::bank::{self, AskPlan};
use protocol::calendar::StoreCalendar;
use protocol::catalogue::{self, Barcode, CatalogueChange, CatalogueError};
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

use crate::storage::{Append, FeedRecord, Fence, HubStore, MemberRecord, StoreStatus};

const GROUP_MAX: usize = 256;
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
    /// The member cannot be erased yet (what they are owed or owe needs their identity).
    #[error("{0}")]
    NotErasable(String),
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
}

enum Command {
    Clock {
        store: StoreId,
        off_ms: i64,
    },
    Tip {
        store: StoreId,
        reply: oneshot::Sender<Result<ChainTip, IngestError>>,
    },
    Hold {
        store: StoreId,
        until_ms: u64,
        by: String,
        reason: String,
        reply: oneshot::Sender<Result<Fence, HoldError>>,
    },
    VoidHold {
        store: StoreId,
        by: String,
        reply: oneshot::Sender<Result<(), HoldError>>,
    },
    Catalogue {
        changes: Vec<CatalogueChange>,
        by: StaffId,
        reply: oneshot::Sender<Result<CatalogueWritten, CatalogueError>>,
    },
    Transfer {
        id: Option<DocId>,
        step: TransferStep,
        by: StaffId,
        reply: oneshot::Sender<Result<Transfer, TransferRefused>>,
    },
    HqWrite {
        write: HqWrite,
        by: StaffId,
        reply: oneshot::Sender<Result<(), HqWriteError>>,
    },
    Ingest {
        store: StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
        reply: oneshot::Sender<Result<u64, IngestError>>,
    },
    Link {
        store: StoreId,
        up: bool,
        log_len: u64,
    },
    Stores {
        reply: oneshot::Sender<Vec<StoreRow>>,
    },
    Ask {
        store: StoreId,
        ask: Ask,
        reply: Answers,
    },
    /// Nothing to do but look at the waiting asks again (deadlines, withdrawn asks).
    Tick,
}

#[derive(Clone)]
pub struct IngestHandle {
    commands: mpsc::Sender<Command>,
    feed_len: watch::Receiver<u64>,
    recalls: broadcast::Sender<(StoreId, Recall)>,
}

impl IngestHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| IngestError::Unavailable)?;
        answer.await.map_err(|_| IngestError::Unavailable)
    }

    /// Where the hub's durable copy of `store`'s log ends, as a session with it opens (which
    /// voids a hold on it); an error for a fenced store.
    pub async fn tip(&self, store: StoreId) -> Result<ChainTip, IngestError> {
        self.ask(|reply| Command::Tip { store, reply }).await?
    }

    /// Puts a quiet store on hold until `until_ms` (see `Ingest::hold`).
    pub async fn hold(
        &self,
        store: StoreId,
        until_ms: u64,
        by: String,
        reason: String,
    ) -> Result<Fence, HoldError> {
        self.ask(|reply| Command::Hold {
            store,
            until_ms,
            by,
            reason,
            reply,
        })
        .await?
    }

    /// Writes a catalogue change set as headquarters' next version (answered once durable).
    pub async fn change_catalogue(
        &self,
        changes: Vec<CatalogueChange>,
        by: StaffId,
    ) -> Result<Result<CatalogueWritten, CatalogueError>, IngestError> {
        self.ask(|reply| Command::Catalogue { changes, by, reply })
            .await
    }

    /// Writes a staff directory change or commission rules in headquarters' log (answered
    /// once durable); stores learn staff changes through the feed.
    pub async fn hq_write(
        &self,
        write: HqWrite,
        by: StaffId,
    ) -> Result<Result<(), HqWriteError>, IngestError> {
        self.ask(|reply| Command::HqWrite { write, by, reply })
            .await
    }

    /// Headquarters takes a transfer step: a request (`id` none), approve, reject, or ask the
    /// source to cancel (answered once durable).
    pub async fn transfer_step(
        &self,
        id: Option<DocId>,
        step: TransferStep,
        by: StaffId,
    ) -> Result<Result<Transfer, TransferRefused>, IngestError> {
        self.ask(|reply| Command::Transfer {
            id,
            step,
            by,
            reply,
        })
        .await
    }

    /// Voids the hold on a store (an operator's decision).
    pub async fn void_hold(&self, store: StoreId, by: String) -> Result<(), HoldError> {
        self.ask(|reply| Command::VoidHold { store, by, reply })
            .await?
    }

    /// Persists a verified batch; returns the seq now durably held.
    pub async fn ingest(
        &self,
        store: StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
    ) -> Result<u64, IngestError> {
        self.ask(|reply| Command::Ingest {
            store,
            entries,
            log_len,
            keys,
            reply,
        })
        .await?
    }

    /// How far `store`'s PC clock is off headquarters' (as it last said).
    pub async fn clock(&self, store: StoreId, off_ms: i64) {
        let _ = self.commands.send(Command::Clock { store, off_ms }).await;
    }

    pub async fn link(&self, store: StoreId, up: bool, log_len: u64) {
        let _ = self
            .commands
            .send(Command::Link { store, up, log_len })
            .await;
    }

    pub async fn stores(&self) -> Result<Vec<StoreRow>, IngestError> {
        self.ask(|reply| Command::Stores { reply }).await
    }

    /// The durable feed length, updated after every flush.
    pub fn feed_len(&self) -> watch::Receiver<u64> {
        self.feed_len.clone()
    }

    /// Serves a store's ask for rights: answered on `answers` once granted (and durable), or
    /// refused (at the latest after `protocol::ask::Limits::HUB`'s wait). A grant's answer is sent before the feed
    /// that carries it is published, so the store hears "granted" first. Dropping the receiver
    /// withdraws the ask.
    pub async fn ask_rights(
        &self,
        store: StoreId,
        ask: Ask,
        answers: Answers,
    ) -> Result<(), IngestError> {
        self.commands
            .send(Command::Ask {
                store,
                ask,
                reply: answers,
            })
            .await
            .map_err(|_| IngestError::Unavailable)
    }

    /// Has the ingest thread look at its waiting asks (sent every second by the hub).
    pub async fn tick(&self) {
        let _ = self.commands.send(Command::Tick).await;
    }

    /// Recalls headquarters sends, for sessions to forward to their store.
    pub fn recalls(&self) -> broadcast::Receiver<(StoreId, Recall)> {
        self.recalls.subscribe()
    }
}

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
            | Payload::Transfer { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
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
        Payload::Catalogue { .. } => {
            Some("only headquarters changes the catalogue (prices included)")
        }
        Payload::Staff { .. } | Payload::StaffCredentials { .. } => {
            Some("only headquarters changes the staff directory")
        }
        Payload::CommissionRules { .. } => Some("only headquarters sets commission rules"),
        Payload::ChainRules { .. } => Some("only headquarters sets the member rules"),
        Payload::MemberErased { .. } => Some("only headquarters erases a member"),
        _ if reclaims => Some("only headquarters takes back a fenced store's rights"),
        _ => None,
    }
}

fn touches_wallet(entry: &Entry) -> bool {
    entry.payload.wallet_member().is_some()
}

/// The member directory and wallet changes one batch makes (headquarters' merged view of every
/// member).
#[derive(Default)]
struct Directory {
    members: BTreeMap<MemberId, MemberRecord>,
    phones: BTreeMap<Phone, Option<MemberId>>,
    wallets: BTreeMap<MemberId, Wallet>,
    /// Inventory view writes of the batch (`None` deletes).
    views: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Members' keys the store sent with the batch (`protocol::seal`).
    keys: BTreeMap<MemberId, MemberKey>,
    /// Members headquarters erased in the batch.
    erased: Vec<MemberId>,
    /// Members one of whose changes a key sent with the batch opened: only those keys are kept.
    opened: BTreeSet<MemberId>,
}

/// The hub's inventory views as one batch sees them: its own writes over what is stored.
pub(crate) struct HubViews<'a> {
    pub(crate) storage: &'a dyn HubStore,
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> HubViews<'a> {
    /// What is stored, with no writes of its own yet (the HTTP handlers read through this).
    pub(crate) fn reader(storage: &'a dyn HubStore) -> Self {
        Self {
            storage,
            writes: BTreeMap::new(),
        }
    }
}

impl ViewKv for HubViews<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self.writes.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.storage.view(key).map_err(|e| e.to_string()),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

impl Directory {
    fn record(
        &self,
        storage: &dyn HubStore,
        id: &MemberId,
    ) -> Result<Option<MemberRecord>, IngestError> {
        match self.members.get(id) {
            Some(record) => Ok(Some(record.clone())),
            None => storage
                .member(id)
                .map_err(|e| IngestError::Storage(e.to_string())),
        }
    }

    fn wallet(&self, storage: &dyn HubStore, id: &MemberId) -> Result<Wallet, IngestError> {
        match self.wallets.get(id) {
            Some(wallet) => Ok(wallet.clone()),
            None => Ok(storage
                .wallet(id)
                .map_err(|e| IngestError::Storage(e.to_string()))?
                .unwrap_or_default()),
        }
    }

    /// Takes a wallet entry's cell writes (and card or password) into the member's wallet.
    fn apply_wallet(&mut self, storage: &dyn HubStore, entry: &Entry) -> Result<(), IngestError> {
        let Some(member) = entry.payload.wallet_member() else {
            return Ok(());
        };
        let mut wallet = self.wallet(storage, &member)?;
        wallet.take_entry(entry);
        if let Err(problem) = wallet.audit() {
            // A store spent or handed on rights it did not hold: its software was changed or is
            // broken. The entry is a fact of its log and stays; headquarters must look.
            tracing::error!(origin = %entry.origin, seq = entry.seq, %member, %problem, "wallet audit failed");
        }
        self.wallets.insert(member, wallet);
        Ok(())
    }

    /// Merges a member entry into the directory. An entry whose profile change does not apply
    /// is still a fact of the store's log; only the directory skips it.
    fn apply(&mut self, storage: &dyn HubStore, entry: &Entry) -> Result<(), IngestError> {
        self.apply_wallet(storage, entry)?;
        let mut views = HubViews {
            storage,
            writes: std::mem::take(&mut self.views),
        };
        let applied = inventory::apply(&mut views, entry).and_then(|why| {
            let staff = protocol::staff::apply(&mut views, entry)?;
            let rules = protocol::commission::apply(&mut views, entry)?;
            let chain = protocol::rules::apply(&mut views, entry)?;
            protocol::reports::apply(&mut views, entry, &StoreCalendar::default())?;
            Ok(why.or(staff).or(rules).or(chain))
        });
        self.views = views.writes;
        if let Some(why) = applied.map_err(IngestError::Storage)? {
            tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "inventory entry skipped");
        }
        let (member_id, doc, before) = match &entry.payload {
            Payload::MemberRegistered { member_id, change } => {
                let Some(change) = self.open(storage, entry, member_id, change)? else {
                    return Ok(());
                };
                (*member_id, MemberDoc::from_change(&change), None)
            }
            Payload::MemberEdited { member_id, change } => match self.record(storage, member_id)? {
                Some(record) => {
                    let Some(change) = self.open(storage, entry, member_id, change)? else {
                        return Ok(());
                    };
                    let doc = MemberDoc::load(&record.doc)
                        .and_then(|mut d| d.apply_change(&change).map(|()| d));
                    (*member_id, doc, Some(record.profile.phone))
                }
                None => return Ok(()),
            },
            Payload::MemberErased { member_id } if entry.origin == StoreId::hq() => {
                return self.erase(storage, member_id);
            }
            Payload::QuickSale(_)
            | Payload::Sale { .. }
            | Payload::Wallet { .. }
            | Payload::Return { .. }
            | Payload::Catalogue { .. }
            | Payload::Stock { .. }
            | Payload::Transfer { .. }
            | Payload::Checkout { .. }
            | Payload::ItemReturn { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
            | Payload::Audit { .. }
            | Payload::MemberErased { .. } => {
                return Ok(());
            }
        };
        let Ok(mut doc) = doc else {
            tracing::warn!(origin = %entry.origin, seq = entry.seq, "member change does not apply; directory skips it");
            return Ok(());
        };
        let Ok(profile) = doc.profile() else {
            return Ok(());
        };
        if before.as_ref() != Some(&profile.phone) {
            if let Some(old) = before {
                let owner = match self.phones.get(&old) {
                    Some(owner) => *owner,
                    None => storage
                        .member_by_phone(&old)
                        .map_err(|e| IngestError::Storage(e.to_string()))?,
                };
                if owner == Some(member_id) {
                    self.phones.insert(old, None);
                }
            }
            self.phones.insert(profile.phone.clone(), Some(member_id));
        }
        self.members.insert(
            member_id,
            MemberRecord {
                member_id,
                doc: doc.save(),
                profile,
            },
        );
        Ok(())
    }
}

impl Directory {
    /// A member change opened under the member's key (sent with this batch or held): `None`
    /// when it cannot be read — the member was erased, or the key never came — and the
    /// directory skips it (the entry stays a fact of the store's log).
    fn open(
        &mut self,
        storage: &dyn HubStore,
        entry: &Entry,
        member: &MemberId,
        change: &[u8],
    ) -> Result<Option<Vec<u8>>, IngestError> {
        if self.erased.contains(member) {
            return Ok(None);
        }
        // The key headquarters holds wins over one a store sends (a store may not replace it).
        let stored = storage
            .member_key(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        if stored == KeyState::Erased {
            return Ok(None);
        }
        if !protocol::seal::is_sealed(change) {
            return Ok(Some(change.to_vec()));
        }
        let key = match (stored, self.keys.get(member)) {
            (KeyState::Unknown, Some(sent)) => KeyState::Held(sent.clone()),
            (stored, _) => stored,
        };
        let aad = protocol::seal::change_aad(member);
        match key {
            KeyState::Held(key) => match key.open(&aad, change) {
                Ok(plain) => {
                    self.opened.insert(*member);
                    Ok(Some(plain))
                }
                Err(e) => {
                    tracing::warn!(origin = %entry.origin, seq = entry.seq, %member, %e, "member change does not open; directory skips it");
                    Ok(None)
                }
            },
            KeyState::Erased => Ok(None),
            KeyState::Unknown => {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %member, "member change came without its key; directory skips it");
                Ok(None)
            }
        }
    }

    /// The keys sent with the batch that opened a change of it (a key for a member whose
    /// change it does not hold, or that opens nothing, is not kept).
    fn kept_keys(&self) -> Vec<(MemberId, MemberKey)> {
        self.keys
            .iter()
            .filter(|(m, _)| self.opened.contains(m))
            .map(|(m, k)| (*m, k.clone()))
            .collect()
    }

    /// 被遗忘: the member's record, phone and key go; the storage keeps a tombstone.
    fn erase(&mut self, storage: &dyn HubStore, member: &MemberId) -> Result<(), IngestError> {
        if let Some(record) = self.record(storage, member)? {
            let owner = match self.phones.get(&record.profile.phone) {
                Some(owner) => *owner,
                None => storage
                    .member_by_phone(&record.profile.phone)
                    .map_err(|e| IngestError::Storage(e.to_string()))?,
            };
            if owner == Some(*member) {
                self.phones.insert(record.profile.phone, None);
            }
        }
        self.members.remove(member);
        self.keys.remove(member);
        self.erased.push(*member);
        Ok(())
    }
}

/// The change of `member` held here whose hash starts with `prefix`: what makes a thin push
/// whole (`protocol::thin`).
pub fn known_change(storage: &dyn HubStore, member: &MemberId, prefix: &[u8]) -> Option<[u8; 32]> {
    match storage.member(member).ok()? {
        Some(record) => MemberDoc::load(&record.doc).ok()?.change_starting(prefix),
        // An erased member's change from before sealing, still in flight: made whole, then
        // skipped by the directory.
        None => storage
            .erased_changes(member)
            .ok()?
            .into_iter()
            .find(|h| h.starts_with(prefix)),
    }
}

/// What `verify` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub stores: u64,
    pub entries: u64,
    pub feed: u64,
    pub members: u64,
    /// Anything that does not match: broken chains, tips, feed or directory records.
    pub differences: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// Whether a difference found mentions `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.differences.iter().any(|d| d.contains(text))
    }
}

/// Checks every store's chain as stored, that the feed holds exactly the logs' member, wallet,
/// catalogue and transfer entries, that the member directory, wallets and inventory views
/// equal a rebuild from the feed (which is ingest order) and the stores' stock movements, and
/// that 会员搜索's index files exactly the stored members.
pub fn verify(storage: &dyn HubStore) -> Result<VerifyReport, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let mut report = VerifyReport::default();
    let mut member_entries = 0u64;
    for (store, tip, _) in storage.stores().map_err(failed)? {
        report.stores += 1;
        let mut at = ChainTip::GENESIS;
        for bytes in storage.entries(&store, 1, usize::MAX).map_err(failed)? {
            let entry = match Entry::decode(&bytes) {
                Ok(entry) => entry,
                Err(e) => {
                    report
                        .differences
                        .push(format!("{store} entry {}: {e}", at.next_seq));
                    break;
                }
            };
            member_entries += u64::from(goes_to_feed(&entry));
            match at.extend(&store, &entry) {
                Ok(next) => at = next,
                Err(e) => {
                    report.differences.push(format!("{store}: {e}"));
                    break;
                }
            }
            report.entries += 1;
        }
        if at != tip {
            report.differences.push(format!(
                "{store}: the stored tip does not match the stored log"
            ));
        }
    }
    let feed_len = storage.feed_len().map_err(failed)?;
    report.feed = feed_len;
    if feed_len != member_entries {
        report.differences.push(format!(
            "the feed holds {feed_len} records, the logs {member_entries} member entries"
        ));
    }
    let rebuilt = rebuild(storage)?;
    let (stored, expected) = (
        storage.views(b"", usize::MAX).map_err(failed)?,
        rebuilt.views(b"", usize::MAX).map_err(failed)?,
    );
    if stored != expected {
        report.differences.push(format!(
            "the inventory views ({} records) differ from a rebuild from the logs ({} records)",
            stored.len(),
            expected.len()
        ));
    }
    let wallets = storage.wallets().map_err(failed)?;
    if wallets != rebuilt.wallets().map_err(failed)? {
        report
            .differences
            .push("the wallets differ from a rebuild from the feed".to_owned());
    }
    for (member, wallet) in &wallets {
        if let Err(problem) = wallet.audit() {
            report
                .differences
                .push(format!("{member}'s wallet fails the audit: {problem}"));
        }
    }
    let (stored, expected) = (
        storage.members().map_err(failed)?,
        rebuilt.members().map_err(failed)?,
    );
    report.members = stored.len() as u64;
    if stored != expected {
        report.differences.push(format!(
            "the member directory ({} members) differs from a rebuild from the feed ({} members)",
            stored.len(),
            expected.len()
        ));
    }
    let index_key = storage.index_key();
    let filed: BTreeSet<Vec<u8>> = stored
        .iter()
        .flat_map(|m| m.profile.search_keys(&m.member_id, &index_key))
        .collect();
    let index = storage.search_index().map_err(failed)?;
    if index != filed {
        report.differences.push(format!(
            "会员搜索's index has {} keys no member files and lacks {} that members file",
            index.difference(&filed).count(),
            filed.difference(&index).count()
        ));
    }
    Ok(report)
}

/// The shape of what the hub derives from the logs (members, phones, wallets, inventory views).
/// Bumped whenever it changes; a hub that finds another version rebuilds it on open.
pub const DERIVED_VERSION: u32 = 8;

/// Rebuilds the derived state when another version of this software wrote it (or none did).
pub fn ensure_current(storage: &dyn HubStore) -> Result<bool, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let stored = storage.derived_version().map_err(failed)?;
    if stored == Some(DERIVED_VERSION) {
        return Ok(false);
    }
    let rebuilt = rebuild(storage)?;
    storage
        .replace_derived(rebuilt.derived(), DERIVED_VERSION)
        .map_err(failed)?;
    tracing::info!(from = ?stored, to = DERIVED_VERSION, "derived state rebuilt from the logs");
    Ok(true)
}

/// Everything derived, afresh: the feed in ingest order, then the stock movements and sales that
/// are not in the feed (a store's stock cells are maxima and report cells are sums, so where
/// they fall does not matter).
fn rebuild(storage: &dyn HubStore) -> Result<crate::storage::MemHubStore, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let rebuilt = crate::storage::MemHubStore::default();
    for (_, record) in storage.feed(1, usize::MAX).map_err(failed)? {
        let Ok(entry) = Entry::decode(&record.entry) else {
            continue;
        };
        // The keys are not derived: the rebuild reads them where they are.
        let mut directory = Directory::default();
        for member in protocol::sync::members_changed([record.entry.as_slice()]) {
            match storage.member_key(&member).map_err(failed)? {
                KeyState::Held(key) => {
                    directory.keys.insert(member, key);
                }
                KeyState::Erased => directory.erased.push(member),
                KeyState::Unknown => {}
            }
        }
        directory.apply(&rebuilt, &entry)?;
        let kept = directory.kept_keys();
        let append = Append {
            store: &record.origin,
            entries: Vec::new(),
            tip: ChainTip::GENESIS,
            status: StoreStatus::default(),
            feed: Vec::new(),
            feed_len: 0,
            members: directory.members.into_values().collect(),
            phones: directory.phones.into_iter().collect(),
            wallets: directory.wallets.into_iter().collect(),
            views: directory.views.into_iter().collect(),
            keys: kept,
            erased: directory.erased,
        };
        rebuilt.append(append).map_err(failed)?;
    }
    // Stock movements are not in the feed: take each store's from its log (a store's cells
    // are maxima, so where they fall among the feed's entries does not matter).
    for (store, _, _) in storage.stores().map_err(failed)? {
        for bytes in storage.entries(&store, 1, usize::MAX).map_err(failed)? {
            let Ok(entry) = Entry::decode(&bytes) else {
                continue;
            };
            // Stock movements and sales (the reports) that are not in the feed.
            let derived = matches!(
                entry.payload,
                Payload::Stock { .. }
                    | Payload::Checkout { .. }
                    | Payload::ItemReturn { .. }
                    | Payload::Sale { .. }
                    | Payload::QuickSale(_)
                    | Payload::Return { .. }
            );
            if !derived || goes_to_feed(&entry) {
                continue;
            }
            let mut directory = Directory::default();
            directory.apply(&rebuilt, &entry)?;
            let append = Append {
                store: &store,
                entries: Vec::new(),
                tip: ChainTip::GENESIS,
                status: StoreStatus::default(),
                feed: Vec::new(),
                feed_len: 0,
                members: Vec::new(),
                phones: Vec::new(),
                wallets: Vec::new(),
                views: directory.views.into_iter().collect(),
                keys: Vec::new(),
                erased: Vec::new(),
            };
            rebuilt.append(append).map_err(failed)?;
        }
    }
    Ok(rebuilt)
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
            recall_rounds: 0,
            fences,
            reclaims_pending: Vec::new(),
            link_lost_ms: HashMap::new(),
            fence_rule: Default::default(),
            clock_off_ms: HashMap::new(),
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

    /// The earliest a hold on a store not connected may end (see `protocol::lease`).
    fn earliest_fence(&self, store: &StoreId) -> u64 {
        let now = (self.now_ms)();
        let lost = self.link_lost_ms.get(store).copied().unwrap_or(now);
        self.fence_rule.earliest_fence(lost, now)
    }

    fn is_fenced(&self, store: &StoreId) -> bool {
        matches!(self.fences.get(store), Some(Fence::Fenced { .. }))
    }

    fn set_fence(&mut self, store: &StoreId, fence: Option<Fence>) -> Result<(), IngestError> {
        self.storage
            .put_fence(store, fence.as_ref())
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        match fence {
            Some(fence) => self.fences.insert(store.clone(), fence),
            None => self.fences.remove(store),
        };
        Ok(())
    }

    /// 挂起: puts a store that has gone quiet on hold, the first of two phases that take back
    /// the rights it holds. Any sign of life from the store before `until_ms` (a connection, a
    /// batch) voids the hold, as can the operator; at `until_ms` the hold is posted: the store
    /// is fenced at the last seq headquarters holds, the hub refuses anything more from it, and
    /// headquarters takes back every right it held, which is then exact. Never a take-back
    /// from a store that may still be spending: what the store wrote after the fence never
    /// counts anywhere, because stores learn each other's entries only through the hub.
    pub fn hold(
        &mut self,
        store: &StoreId,
        until_ms: u64,
        by: &str,
        reason: &str,
    ) -> Result<Fence, HoldError> {
        if *store == StoreId::hq() {
            return Err(HoldError::Headquarters);
        }
        if !self.statuses.contains_key(store) {
            return Err(HoldError::UnknownStore(store.clone()));
        }
        match self.fences.get(store) {
            Some(Fence::Fenced { .. }) => return Err(HoldError::Fenced(store.clone())),
            Some(Fence::OnHold { .. }) => return Err(HoldError::AlreadyOnHold(store.clone())),
            None => {}
        }
        if self.links.get(store).is_some_and(|n| *n > 0) {
            return Err(HoldError::Online(store.clone()));
        }
        let earliest_ms = self.earliest_fence(store);
        if until_ms < earliest_ms {
            return Err(HoldError::TooSoon {
                store: store.clone(),
                earliest_ms,
            });
        }
        let fence = Fence::OnHold {
            since_ms: (self.now_ms)(),
            until_ms,
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        self.set_fence(store, Some(fence.clone()))?;
        tracing::warn!(%store, until_ms, by, reason, "store put on hold");
        Ok(fence)
    }

    /// Voids a hold: the operator changed their mind.
    pub fn void_hold(&mut self, store: &StoreId, by: &str) -> Result<(), HoldError> {
        match self.fences.get(store) {
            Some(Fence::OnHold { .. }) => {
                self.set_fence(store, None)?;
                tracing::warn!(%store, by, "hold voided by an operator");
                Ok(())
            }
            Some(Fence::Fenced { .. }) => Err(HoldError::Fenced(store.clone())),
            None => Err(HoldError::NotOnHold(store.clone())),
        }
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

    /// Posts every hold whose time is up: fences the store and takes back its rights. A store
    /// connected by now has its hold voided instead. Returns the stores fenced.
    pub fn post_due_holds(&mut self) -> Result<Vec<StoreId>, IngestError> {
        let now = (self.now_ms)();
        let due: Vec<(StoreId, String, String)> = self
            .fences
            .iter()
            .filter_map(|(store, fence)| match fence {
                Fence::OnHold {
                    until_ms,
                    by,
                    reason,
                    ..
                } if *until_ms <= now => Some((store.clone(), by.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        let mut fenced = Vec::new();
        for store in std::mem::take(&mut self.reclaims_pending) {
            if let Err(e) = self.reclaim_from(&store) {
                self.reclaims_pending.push(store);
                return Err(e);
            }
        }
        for (store, by, reason) in due {
            if self.links.get(&store).is_some_and(|n| *n > 0) {
                self.alive(&store)?;
                continue;
            }
            // A hold made before the lease was checked (or with a clock since changed) waits
            // until the store's lease has run out.
            let lost = self.link_lost_ms.get(&store).copied().unwrap_or(now);
            let earliest = self.fence_rule.lease_out(lost);
            if now < earliest {
                if let Some(Fence::OnHold { until_ms, .. }) = self.fences.get_mut(&store) {
                    *until_ms = earliest;
                }
                let extended = self.fences.get(&store).cloned();
                self.set_fence(&store, extended)?;
                tracing::warn!(%store, until_ms = earliest, "hold extended to the store's lease");
                continue;
            }
            let at_seq = self.tip(&store).next_seq - 1;
            let fence = Fence::Fenced {
                at_seq,
                since_ms: now,
                by,
                reason,
            };
            self.set_fence(&store, Some(fence))?;
            let members = match self.reclaim_from(&store) {
                Ok(members) => members,
                Err(e) => {
                    // Fenced already: the take-back is tried again at every tick until done.
                    self.reclaims_pending.push(store);
                    return Err(e);
                }
            };
            tracing::warn!(%store, at_seq, members, "hold posted: store fenced, its rights taken back");
            fenced.push(store);
        }
        Ok(fenced)
    }

    /// 商品资料: checks a change set against the catalogue (barcodes unique chain-wide, bundles
    /// and store prices naming products that exist) and writes it as the next version, in as
    /// many entries of HQ's log as its size needs. Nothing is written if any change is bad.
    pub fn change_catalogue(
        &mut self,
        changes: Vec<CatalogueChange>,
        by: &StaffId,
    ) -> Result<CatalogueWritten, CatalogueError> {
        if changes.is_empty() {
            return Err(CatalogueError::Empty);
        }
        if changes.len() > CATALOGUE_CHANGES_MAX {
            return Err(CatalogueError::Field {
                field: "changes".into(),
                problem: format!("at most {CATALOGUE_CHANGES_MAX} in one change set"),
            });
        }
        let failed = |e: String| CatalogueError::Field {
            field: "storage".into(),
            problem: e,
        };
        let views = HubViews::reader(&*self.storage);
        let mut products: HashMap<&Sku, &protocol::catalogue::Product> = HashMap::new();
        let mut owners: HashMap<&Barcode, &Sku> = HashMap::new();
        let mut named = std::collections::HashSet::new();
        for change in &changes {
            change.check()?;
            let whole = matches!(
                change,
                CatalogueChange::Product(_) | CatalogueChange::Bundle(_)
            );
            if whole && !named.insert(change.sku()) {
                return Err(CatalogueError::Field {
                    field: change.sku().to_string(),
                    problem: "named twice in one change set".into(),
                });
            }
            if let CatalogueChange::Product(p) = change {
                products.insert(&p.sku, p);
            }
        }
        for p in products.values() {
            for code in &p.barcodes {
                if let Some(owner) = owners.insert(code, &p.sku)
                    && *owner != p.sku
                {
                    return Err(CatalogueError::DuplicateBarcode {
                        barcode: code.clone(),
                        owner: owner.clone(),
                    });
                }
                let stored = inventory::sku_of_barcode(&views, code).map_err(failed)?;
                if let Some(owner) = stored
                    && owner != p.sku
                    && products
                        .get(&owner)
                        .is_none_or(|now| now.barcodes.contains(code))
                {
                    return Err(CatalogueError::DuplicateBarcode {
                        barcode: code.clone(),
                        owner,
                    });
                }
            }
        }
        let exists = |sku: &Sku| -> Result<bool, CatalogueError> {
            Ok(products.contains_key(sku)
                || inventory::product(&views, sku).map_err(failed)?.is_some())
        };
        for change in &changes {
            let named: Vec<&Sku> = match change {
                CatalogueChange::Product(_) => Vec::new(),
                CatalogueChange::Bundle(b) => b.items.iter().map(|(sku, _)| sku).collect(),
                CatalogueChange::StorePrice { sku, .. }
                | CatalogueChange::StoreLowStock { sku, .. } => vec![sku],
            };
            for sku in named {
                if !exists(sku)? {
                    return Err(CatalogueError::UnknownSku(sku.clone()));
                }
            }
        }
        let current: inventory::CatalogueVersion =
            inventory::read(&views, inventory::keys::CATALOGUE_VERSION)
                .map_err(failed)?
                .unwrap_or_default();
        let version = current.version + 1;
        let count = changes.len();
        let split = catalogue::parts(changes, catalogue::PART_BYTES);
        let parts = u32::try_from(split.len()).unwrap_or(u32::MAX);
        for (part, changes) in split.into_iter().enumerate() {
            let part = u32::try_from(part).unwrap_or(u32::MAX);
            let tx = TxId::derived(&["catalogue", &version.to_string(), &part.to_string()]);
            let payload = Payload::Catalogue {
                version,
                part,
                parts,
                changes,
            };
            self.write_hq_as(tx, payload, by.clone())
                .map_err(|e| failed(e.to_string()))?;
        }
        tracing::info!(version, parts, changes = count, by = %by, "catalogue changed");
        Ok(CatalogueWritten {
            version,
            parts,
            changes: count,
        })
    }

    /// 员工 or 提成规则: a staff directory change or commission rules (taking effect tomorrow at
    /// the earliest), checked, as one entry of headquarters' log.
    pub fn hq_write(&mut self, write: HqWrite, by: &StaffId) -> Result<(), HqWriteError> {
        let payload = match write {
            HqWrite::Staff(staff) => {
                protocol::staff::check(&staff)?;
                Payload::Staff { staff }
            }
            HqWrite::Credentials(id, hash) => {
                let views = HubViews::reader(&*self.storage);
                if protocol::staff::read(&views, &id)
                    .map_err(HqWriteError::Storage)?
                    .is_none()
                {
                    return Err(StaffError::Unknown(id).into());
                }
                Payload::StaffCredentials { id, hash }
            }
            HqWrite::Commission(rules) => {
                rules.check(self.calendar.business_date((self.now_ms)()))?;
                Payload::CommissionRules { rules }
            }
            HqWrite::Rules(rules) => {
                rules.check()?;
                Payload::ChainRules { rules }
            }
            HqWrite::Note(note) => Payload::Audit { note },
            HqWrite::Erase(member_id) => self.erasable(&member_id)?,
        };
        // Leave room for the envelope; an entry over the limit could never be decoded.
        let bytes = postcard::to_stdvec(&payload).map_or(usize::MAX, |b| b.len());
        if bytes > protocol::entry::ENTRY_BYTES_MAX - 1024 {
            return Err(HqWriteError::TooLarge(bytes));
        }
        let tip = self.tip(&StoreId::hq());
        let tx = TxId::derived(&["hq-write", &tip.next_seq.to_string()]);
        self.write_hq_as(tx, payload, by.clone())
            .map_err(|e| HqWriteError::Storage(e.to_string()))
    }

    /// The erasure of a member who may be erased: one headquarters knows, not erased yet, to
    /// whom the chain owes no stored value and who owes no store (both need to know who they
    /// are: refund or collect first).
    fn erasable(&self, member_id: &MemberId) -> Result<Payload, HqWriteError> {
        let failed = |e: crate::storage::HubStoreError| HqWriteError::Storage(e.to_string());
        if self.storage.member_key(member_id).map_err(failed)? == KeyState::Erased {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} is erased already"
            )));
        }
        if self.storage.member(member_id).map_err(failed)?.is_none() {
            return Err(HqWriteError::UnknownMember(*member_id));
        }
        let wallet = self
            .storage
            .wallet(member_id)
            .map_err(failed)?
            .unwrap_or_default();
        let yuan =
            |fen: u64| protocol::Money::cny(protocol::Fen(i64::try_from(fen).unwrap_or(i64::MAX)));
        let principal = wallet.balance(&Counter::Principal);
        if principal > 0 {
            return Err(HqWriteError::NotErasable(format!(
                "the chain still owes member {member_id} {} of stored value: refund it first (退卡)",
                yuan(principal)
            )));
        }
        let uses: u64 = wallet
            .counters
            .iter()
            .filter(|(c, _)| matches!(c, Counter::Uses { .. }))
            .map(|(_, rights)| rights.balance())
            .sum();
        if uses > 0 {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} still has {uses} prepaid card uses: use or refund them first"
            )));
        }
        // What they owe: an offline overdraft, or stored value a fenced store spent twice.
        let owed = wallet
            .owed_total()
            .saturating_add(wallet.overspent_by().values().sum());
        if owed > 0 || wallet.stored_value_signed() < 0 {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} still owes {}: collect it first",
                yuan(owed)
            )));
        }
        Ok(Payload::MemberErased {
            member_id: *member_id,
        })
    }

    /// A transfer step of headquarters' own, checked against the transfer as the hub holds it.
    pub fn transfer_step(
        &mut self,
        id: Option<DocId>,
        step: TransferStep,
        by: &StaffId,
    ) -> Result<Transfer, TransferRefused> {
        let hq = StoreId::hq();
        let failed = |e: String| TransferRefused::Storage(e);
        let views = HubViews::reader(&*self.storage);
        let record = protocol::stock::StepRecord {
            step: step.name().to_owned(),
            by: hq.clone(),
            staff: by.clone(),
            at: Hlc::ZERO,
        };
        let id = match id {
            None => {
                let id = DocId::for_entry("T", &hq, self.tip(&hq).next_seq);
                Transfer::open(id.clone(), &hq, &step, record)?;
                if let TransferStep::Requested {
                    lines, from, to, ..
                } = &step
                {
                    for store in [from, to] {
                        if !self.statuses.contains_key(store) {
                            return Err(TransferRefused::Step(TransferError::Text(format!(
                                "store {store} has never synced with headquarters"
                            ))));
                        }
                    }
                    for (sku, qty) in lines {
                        let product = inventory::product(&views, sku)
                            .map_err(failed)?
                            .ok_or_else(|| TransferRefused::UnknownSku(sku.clone()))?;
                        if product.unit == protocol::catalogue::Unit::Piece && qty.0 % 1000 != 0 {
                            return Err(TransferRefused::Step(TransferError::Text(format!(
                                "{sku} is counted in whole pieces"
                            ))));
                        }
                    }
                }
                id
            }
            Some(id) => {
                let transfer: Transfer = inventory::read(&views, &inventory::keys::transfer(&id))
                    .map_err(failed)?
                    .ok_or_else(|| TransferRefused::Unknown(id.clone()))?;
                transfer.check(&hq, &step, &[])?;
                if matches!(step, TransferStep::CancelRequested { .. })
                    && transfer.state != protocol::stock::TransferState::Approved
                {
                    return Err(TransferRefused::Step(TransferError::NotAllowed {
                        who: hq,
                        step: step.name(),
                        state: transfer.state,
                    }));
                }
                id
            }
        };
        let tx = TxId::derived(&["transfer", id.as_str(), step.name()]);
        let payload = Payload::Transfer {
            transfer: id.clone(),
            step,
            changes: Vec::new(),
        };
        self.write_hq_as(tx, payload, by.clone())
            .map_err(|e| failed(e.to_string()))?;
        let views = HubViews::reader(&*self.storage);
        inventory::read(&views, &inventory::keys::transfer(&id))
            .map_err(failed)?
            .ok_or(TransferRefused::Unknown(id))
    }

    /// Headquarters takes back every right the fenced `store` holds: one entry per member.
    /// Idempotent (what is taken is held no more). Returns how many members it touched.
    fn reclaim_from(&mut self, store: &StoreId) -> Result<usize, IngestError> {
        // Only while the hub holds the store's log exactly up to the fence: what the store
        // acquires after it (its own top-ups, points earned) is its own and is never taken, so a
        // take-back interrupted by a crash is finished on restart only if the store has not been
        // heard since; otherwise what is left stays with it, frozen, until it hands it back.
        let at_seq = match self.fences.get(store) {
            Some(Fence::Fenced { at_seq, .. }) => *at_seq,
            _ => return Ok(0),
        };
        if self.tip(store).next_seq - 1 != at_seq {
            tracing::warn!(%store, at_seq, "the store was heard after its fence: its take-back is not resumed");
            return Ok(0);
        }
        let hq = StoreId::hq();
        let wallets = self
            .storage
            .wallets()
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        let mut members = 0;
        for (member, mut wallet) in wallets {
            let ops = wallet.reclaim(&hq, store);
            let Some(first) = ops.first() else {
                continue;
            };
            let tx = TxId::derived(&[
                "reclaim",
                store.as_str(),
                &member.to_string(),
                &first.counter.to_string(),
                &first.change.units().to_string(),
            ]);
            let payload = Payload::Wallet {
                member_id: member,
                event: WalletEvent::Rights {
                    movement: Movement::Reclaim {
                        from: store.clone(),
                    },
                },
                ops,
            };
            self.write_hq(tx, payload)?;
            members += 1;
        }
        Ok(members)
    }

    fn wallet(&self, member: &MemberId) -> Result<Wallet, IngestError> {
        Ok(self
            .storage
            .wallet(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?
            .unwrap_or_default())
    }

    /// Serves `store`'s ask from headquarters' pool (its reserve and what is not placed),
    /// placing more than asked where the member's spending says they shop there. When the pool
    /// is short, names the connected stores to recall rights from (`may_recall`: a new round
    /// may start), or says at once which holders cannot be reached.
    pub fn serve_ask(
        &mut self,
        store: &StoreId,
        ask: &Ask,
        may_recall: bool,
    ) -> Result<AskStep, IngestError> {
        if self.is_fenced(store) {
            return Ok(AskStep::Refused(format!("store {store} is fenced")));
        }
        let hq = StoreId::hq();
        // A store that said how long its log was is served once all of it is here: the rights
        // it holds are then what this wallet says, less grants it has not applied yet.
        if let Some(holding) = &ask.holding
            && self.tip(store).next_seq <= holding.log_len
        {
            return Ok(AskStep::Wait);
        }
        let mut wallet = self.wallet(&ask.member)?;
        let needs = ask.needs(|counter| wallet.held(counter, store));
        if needs.is_empty() {
            // Everything asked for is on its way in the feed already (placed ahead of need).
            return Ok(AskStep::Granted {
                feed_upto: self.feed_len,
            });
        }
        let plan = self
            .policy
            .plan_ask(&wallet, &hq, store, &needs, |s| self.reachable(s));
        let grants = match plan {
            AskPlan::Grant(grants) => grants,
            AskPlan::Refuse(reason) => return Ok(AskStep::Refused(reason)),
            AskPlan::Unreachable(holders) => return Ok(AskStep::Unreachable(holders)),
            AskPlan::Recall(_) if !may_recall => return Ok(AskStep::Wait),
            AskPlan::Recall(list) => {
                self.recall_rounds += 1;
                let round = format!("{}-{}", (self.now_ms)(), self.recall_rounds);
                let recalls = list
                    .into_iter()
                    .map(|(holder, counter, units)| {
                        // Each round of recalls gets its own ids, so a holder that answered an
                        // earlier round (perhaps with nothing) is asked afresh.
                        let id = TxId::derived(&[
                            "recall",
                            ask.id.as_str(),
                            &counter.to_string(),
                            holder.as_str(),
                            &round.to_string(),
                        ]);
                        let recall = Recall {
                            id,
                            member: ask.member,
                            counter,
                            units,
                        };
                        (holder, recall)
                    })
                    .collect();
                return Ok(AskStep::Recall(recalls));
            }
        };
        let mut ops = Vec::new();
        for (counter, units) in grants {
            let op = wallet
                .move_rights(&hq, store, &counter, units)
                .map_err(|e| IngestError::Storage(format!("grant: {e}")))?;
            ops.push(op);
        }
        let payload = Payload::Wallet {
            member_id: ask.member,
            event: WalletEvent::Rights {
                movement: Movement::Grant,
            },
            ops,
        };
        self.write_hq(TxId::derived(&["grant", ask.id.as_str()]), payload)?;
        Ok(AskStep::Granted {
            feed_upto: self.feed_len,
        })
    }

    /// Notes the counters an entry changed, for the next `rebalance` (a sale's return tokens
    /// stay where the sale was made until a return elsewhere asks). Headquarters' own grants
    /// are not a reason to rebalance: a store granted rights for a payment holds more than its
    /// share until the payment reaches headquarters, and a recall in between would take back
    /// what the payment is about to spend.
    fn touch(&mut self, entry: &Entry) {
        if let Payload::Wallet {
            event: WalletEvent::Rights {
                movement: Movement::Grant,
            },
            ..
        } = &entry.payload
        {
            return;
        }
        let Some((member, ops)) = entry.payload.rights_ops() else {
            return;
        };
        for op in ops {
            if !matches!(op.counter, Counter::Returnable { .. }) {
                self.touched.insert((member, op.counter.clone()));
            }
        }
    }

    /// After a group: for every member's counter that changed, restores headquarters' reserve
    /// and each store's share (`protocol::bank::Policy::rebalance`): grants from the pool
    /// above the reserve to stores below their share, written now in one entry per member, and
    /// recalls from stores above their share, returned for the sessions to send. A recall's id
    /// names what the holder has handed back so far and the units, so one not yet answered is
    /// the same recall when planned again alike, and the store answers it once.
    pub fn rebalance(&mut self) -> Result<Vec<(StoreId, Recall)>, IngestError> {
        let hq = StoreId::hq();
        let mut recalls = Vec::new();
        let touched = std::mem::take(&mut self.touched);
        let mut members: BTreeMap<MemberId, Vec<Counter>> = BTreeMap::new();
        for (member, counter) in touched {
            members.entry(member).or_default().push(counter);
        }
        for (member, counters) in members {
            let mut wallet = self.wallet(&member)?;
            let mut ops = Vec::new();
            for counter in counters {
                let moves = self
                    .policy
                    .rebalance(&wallet, &hq, &counter, |s| self.is_fenced(s));
                for (holder, counter, units) in moves.recalls {
                    let handed = wallet
                        .counters
                        .get(&counter)
                        .map_or(0, |r| r.transferred(&holder, &hq));
                    let id = TxId::derived(&[
                        "refill",
                        &member.to_string(),
                        &counter.to_string(),
                        holder.as_str(),
                        &handed.to_string(),
                        &units.to_string(),
                    ]);
                    let recall = Recall {
                        id,
                        member,
                        counter,
                        units,
                    };
                    recalls.push((holder, recall));
                }
                for (store, counter, units) in moves.grants {
                    let op = wallet
                        .move_rights(&hq, &store, &counter, units)
                        .map_err(|e| IngestError::Storage(format!("placement: {e}")))?;
                    ops.push(op);
                }
            }
            if ops.is_empty() {
                continue;
            }
            let tx = TxId::derived(&[
                "place",
                &member.to_string(),
                &self.tip(&hq).next_seq.to_string(),
            ]);
            let payload = Payload::Wallet {
                member_id: member,
                event: WalletEvent::Rights {
                    movement: Movement::Grant,
                },
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        Ok(recalls)
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
        self.ingest(&hq, vec![Sealed::new(entry)], seq)?;
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
        let mut feed_len = self.feed_len;
        let mut directory = Directory {
            keys: keys.into_iter().collect(),
            ..Directory::default()
        };
        for sealed in entries {
            if sealed.entry.seq < tip.next_seq {
                continue;
            }
            let extended = tip.extend_sealed(store, &sealed);
            tip = extended?;
            let Sealed { entry, bytes, .. } = sealed;
            if goes_to_feed(&entry) {
                feed_len += 1;
                feed.push((
                    feed_len,
                    FeedRecord {
                        origin: store.clone(),
                        entry: bytes.clone(),
                    },
                ));
            }
            directory.apply(&*self.storage, &entry)?;
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
            };
            if let Err(e) = self.storage.append(append) {
                return Err(IngestError::Storage(e.to_string()));
            }
            self.tips.insert(store.clone(), tip);
            self.feed_len = feed_len;
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

    /// After a batch that touched `members`' wallets: where a fenced store holds less than
    /// nothing (it spent, before it heard of its fence, rights headquarters had taken back),
    /// says so, and moves rights from headquarters' pool to cover it, as far as the pool holds
    /// them: what was spent twice is then only the member's receivable (a balance below zero,
    /// shown in liabilities), not phantom rights another store could spend.
    fn cover_deficits(
        &mut self,
        origin: &StoreId,
        members: &[MemberId],
    ) -> Result<(), IngestError> {
        let hq = StoreId::hq();
        let fenced: Vec<StoreId> = self
            .fences
            .iter()
            .filter(|(_, f)| matches!(f, Fence::Fenced { .. }))
            .map(|(store, _)| store.clone())
            .collect();
        for member in members {
            let mut wallet = self.wallet(member)?;
            let mut ops = Vec::new();
            for store in &fenced {
                for (counter, rights) in wallet.counters.iter_mut() {
                    let deficit = rights.deficit(store);
                    if deficit == 0 {
                        continue;
                    }
                    if origin == store {
                        tracing::error!(
                            %store, %member, %counter, deficit, overspent = rights.overspent(),
                            "a fenced store spent rights headquarters had taken back: \
                             the member owes what was spent twice (see liabilities)"
                        );
                    }
                    if let Some(change) = rights.cover(&hq, store) {
                        ops.push(protocol::wallet::RightsOp {
                            counter: counter.clone(),
                            change,
                        });
                    }
                }
            }
            let Some(first) = ops.first() else {
                continue;
            };
            let tx = TxId::derived(&[
                "cover",
                &member.to_string(),
                &first.counter.to_string(),
                &format!("{:?}", first.change),
            ]);
            let payload = Payload::Wallet {
                member_id: *member,
                event: WalletEvent::Rights {
                    movement: Movement::Grant,
                },
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        Ok(())
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

/// Starts the ingest owner on its own thread (flushes block).
pub fn spawn(
    storage: Arc<dyn HubStore>,
    fence_rule: protocol::lease::FenceRule,
    policy: bank::Policy,
) -> anyhow::Result<(IngestHandle, std::thread::JoinHandle<()>)> {
    let mut ingest = Ingest::open(storage, Box::new(system_now_ms))?;
    ingest.set_fence_rule(fence_rule);
    ingest.set_policy(policy);
    let feed_len = ingest.feed_len;
    let (commands, mut inbox) = mpsc::channel::<Command>(1024);
    let (feed_tx, feed_rx) = watch::channel(feed_len);
    let (recalls, _) = broadcast::channel(RECALLS_QUEUED_MAX);
    let recall_tx = recalls.clone();
    let thread = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || {
            let mut group = Vec::with_capacity(GROUP_MAX);
            let mut asks: AskQueue<Answers> = AskQueue::new(Limits::HUB);
            while let Some(first) = inbox.blocking_recv() {
                group.push(first);
                while group.len() < GROUP_MAX {
                    match inbox.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let mut answers = Vec::new();
                // A tip is answered after the flush too: a Welcome must never name an entry that
                // a crash could still take away.
                let mut tips = Vec::new();
                let mut written = Vec::new();
                let mut stepped = Vec::new();
                let mut staffed = Vec::new();
                for command in group.drain(..) {
                    match command {
                        Command::Ingest {
                            store,
                            entries,
                            log_len,
                            keys,
                            reply,
                        } => {
                            let held = ingest.ingest_keyed(&store, entries, log_len, keys);
                            answers.push((reply, held));
                        }
                        Command::Tip { store, reply } => {
                            tips.push((reply, ingest.open_session(&store)));
                        }
                        Command::Hold {
                            store,
                            until_ms,
                            by,
                            reason,
                            reply,
                        } => {
                            let _ = reply.send(ingest.hold(&store, until_ms, &by, &reason));
                        }
                        Command::VoidHold { store, by, reply } => {
                            let _ = reply.send(ingest.void_hold(&store, &by));
                        }
                        Command::Catalogue { changes, by, reply } => {
                            written.push((reply, ingest.change_catalogue(changes, &by)));
                        }
                        Command::Transfer {
                            id,
                            step,
                            by,
                            reply,
                        } => {
                            stepped.push((reply, ingest.transfer_step(id, step, &by)));
                        }
                        Command::HqWrite { write, by, reply } => {
                            staffed.push((reply, ingest.hq_write(write, &by)));
                        }
                        Command::Link { store, up, log_len } => {
                            ingest.link(&store, up);
                            let status = ingest.statuses.entry(store).or_default();
                            status.log_len = status.log_len.max(log_len);
                        }
                        Command::Clock { store, off_ms } => ingest.clock(&store, off_ms),
                        Command::Stores { reply } => {
                            let _ = reply.send(ingest.rows());
                        }
                        Command::Ask { store, ask, reply } => {
                            if let Some((reply, id, answer)) =
                                asks.offer(store, ask, reply, system_now_ms())
                            {
                                let _ = reply.send((id, answer));
                            }
                        }
                        Command::Tick => {}
                    }
                }
                if let Err(e) = ingest.post_due_holds() {
                    tracing::error!(error = %e, "posting a hold failed; tried again at the next tick");
                }
                // Every waiting ask is tried again after each group: a recall's transfer may
                // have just arrived. Then the bank restores reserves and placements.
                let served = asks.serve(system_now_ms(), |reply| reply.is_closed(), |store, ask, may_recall| {
                    ingest
                        .serve_ask(store, ask, may_recall)
                        .unwrap_or_else(|e| AskStep::Refused(e.to_string()))
                });
                let mut recalls = served.recalls;
                match ingest.rebalance() {
                    Ok(refills) => recalls.extend(refills),
                    Err(e) => tracing::error!(error = %e, "rebalancing rights failed; tried again after the next change"),
                }
                for (holder, recall) in recalls {
                    let _ = recall_tx.send((holder, recall));
                }
                let flushed = ingest.flush();
                for (reply, result) in answers {
                    let result = match (&flushed, result) {
                        (Err(e), Ok(_)) => Err(IngestError::Storage(e.to_string())),
                        (_, result) => result,
                    };
                    let _ = reply.send(result);
                }
                if let Err(e) = flushed {
                    // Fail-stop: nothing unflushed was acknowledged; stores resend after a restart.
                    tracing::error!(error = %e, "hub flush failed; the hub stops");
                    std::process::exit(70);
                }
                for (reply, tip) in tips {
                    let _ = reply.send(tip);
                }
                for (reply, result) in written {
                    let _ = reply.send(result);
                }
                for (reply, result) in stepped {
                    let _ = reply.send(result);
                }
                for (reply, result) in staffed {
                    let _ = reply.send(result);
                }
                // Answers go after the flush that made a grant durable, before the feed that
                // carries it is published.
                for (reply, id, answer) in served.answers {
                    let _ = reply.send((id, answer));
                }
                feed_tx.send_if_modified(|published| {
                    std::mem::replace(published, ingest.feed_len) != ingest.feed_len
                });
            }
        })?;
    Ok((
        IngestHandle {
            commands,
            feed_len: feed_rx,
            recalls,
        },
        thread,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::member::{Gender, Profile};
    use protocol::wallet::RightsOp;
    use protocol::{Hlc, StaffId, TxId};

    fn registration(store: &StoreId, tip: ChainTip, phone: &str) -> Entry {
        let profile = Profile {
            name: "会员".into(),
            phone: Phone::parse(phone).unwrap(),
            card_no: None,
            birthday: None,
            gender: Gender::Unspecified,
            tags: Default::default(),
            notes: String::new(),
            tier: "standard".into(),
            custom: Default::default(),
            home_store: store.clone(),
            join_date: chrono_date(),
            referrer: None,
        };
        let (_, change) = MemberDoc::create(store, 1, &profile).unwrap();
        Entry {
            origin: store.clone(),
            seq: tip.next_seq,
            hlc: Hlc {
                wall_ms: tip.next_seq,
                logical: 0,
            },
            business_date: chrono_date(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{store}-reg-{:04}", tip.next_seq)).unwrap(),
            prev_hash: tip.hash,
            payload: Payload::MemberRegistered {
                member_id: MemberId::mint(tip.next_seq, 7),
                change,
            },
        }
    }

    fn chrono_date() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn verify_finds_a_directory_that_does_not_match_the_feed() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let mut tip = ChainTip::GENESIS;
        let mut batch = Vec::new();
        for phone in ["13800000001", "13800000002"] {
            let entry = registration(&s001, tip, phone);
            tip = tip.extend(&s001, &entry).unwrap();
            batch.push(Sealed::new(entry));
        }
        assert_eq!(ingest.ingest(&s001, batch, 2).unwrap(), 2);
        ingest.flush().unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!((report.entries, report.feed, report.members), (2, 2, 2));

        let mut forged = storage.members().unwrap()[0].clone();
        forged.profile.name = "篡改".into();
        let append = Append {
            store: &s001,
            entries: Vec::new(),
            tip,
            status: StoreStatus {
                acked_seq: 2,
                log_len: 2,
                ..StoreStatus::default()
            },
            feed: Vec::new(),
            feed_len: 2,
            members: vec![forged],
            wallets: Vec::new(),
            phones: Vec::new(),
            views: Vec::new(),
            keys: Vec::new(),
            erased: Vec::new(),
        };
        storage.append(append).unwrap();
        assert!(!verify(&*storage).unwrap().is_clean());
    }

    /// 会员搜索's index on disk is checked too: a key lost or left behind is a difference.
    #[test]
    fn verify_finds_a_search_index_that_does_not_file_the_members() {
        let dir = std::env::temp_dir().join(format!("hub-verify-sx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let storage = Arc::new(crate::storage::SledHubStore::open(&dir).unwrap());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let entry = registration(&s001, ChainTip::GENESIS, "13800000001");
        assert_eq!(
            ingest.ingest(&s001, vec![Sealed::new(entry)], 1).unwrap(),
            1
        );
        ingest.flush().unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.is_clean(), "{report:?}");

        let keys: Vec<sled::IVec> = storage
            .db()
            .scan_prefix(b"sx/")
            .keys()
            .map(Result::unwrap)
            .collect();
        assert!(
            !keys.is_empty(),
            "the member is filed under its name and phone"
        );
        storage.db().remove(&keys[0]).unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.mentions("lacks 1"), "{report:?}");
        storage.db().insert(&keys[0], &[][..]).unwrap();
        storage.db().insert(b"sx/t/0001/nobody", &[][..]).unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.mentions("1 keys no member files"), "{report:?}");
        drop((ingest, storage));
        let _ = std::fs::remove_dir_all(&dir);
    }

    pub(super) fn wallet_entry(
        store: &StoreId,
        tip: ChainTip,
        member: MemberId,
        ops: Vec<RightsOp>,
    ) -> Entry {
        let mut entry = registration(store, tip, "13800000009");
        entry.tx = TxId::parse(&format!("{store}-wallet-{:04}", tip.next_seq)).unwrap();
        entry.payload = Payload::Wallet {
            member_id: member,
            event: WalletEvent::Rights {
                movement: Movement::Recall,
            },
            ops,
        };
        entry
    }

    #[test]
    fn asks_are_granted_from_a_recall_and_overspending_is_flagged() {
        use protocol::escrow::Change;
        use protocol::wallet::Counter;
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
        let (s001, s002) = (
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
        );
        let member = MemberId::mint(1, 7);
        let credit = RightsOp {
            counter: Counter::Principal,
            change: Change::Credit {
                units: 100,
                total: 100,
            },
        };
        let topped = wallet_entry(&s001, ChainTip::GENESIS, member, vec![credit]);
        let tip = ChainTip::GENESIS.extend(&s001, &topped).unwrap();
        ingest.ingest(&s001, vec![Sealed::new(topped)], 1).unwrap();
        // S002 asks for 30: HQ's pool is empty, so S001 is asked to hand back, once it is
        // connected (before that, the ask is told the rights are out of reach).
        let ask = Ask {
            id: TxId::parse("ask-00000001").unwrap(),
            member,
            wants: vec![(Counter::Principal, 30)],
            holding: None,
        };
        assert_eq!(
            ingest.serve_ask(&s002, &ask, true).unwrap(),
            AskStep::Unreachable(vec![s001.clone()])
        );
        ingest.link(&s001, true);
        let AskStep::Recall(recalls) = ingest.serve_ask(&s002, &ask, true).unwrap() else {
            panic!("expected a recall");
        };
        assert_eq!(recalls[0].0, s001);
        assert_eq!(ingest.serve_ask(&s002, &ask, false).unwrap(), AskStep::Wait);
        let handed = RightsOp {
            counter: Counter::Principal,
            change: Change::Transfer {
                to: StoreId::hq(),
                units: 30,
                total: 30,
            },
        };
        let back = wallet_entry(&s001, tip, member, vec![handed]);
        let tip = tip.extend(&s001, &back).unwrap();
        ingest.ingest(&s001, vec![Sealed::new(back)], 2).unwrap();
        assert!(matches!(
            ingest.serve_ask(&s002, &ask, false).unwrap(),
            AskStep::Granted { .. }
        ));
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        assert_eq!(wallet.held(&Counter::Principal, &s002), 30);
        assert!(verify(&*storage).unwrap().is_clean());
        // S002 asks before the grant reaches it (it holds nothing, it says): the grant on its
        // way counts. For 30, nothing more moves; for 80 (of the 100), 50 more are recalled,
        // where an ask that did not say what it holds is refused (70 could move).
        let unseen = |units, log_len| Ask {
            id: TxId::parse("ask-00000002").unwrap(),
            member,
            wants: vec![(Counter::Principal, units)],
            holding: Some(protocol::sync::Holding {
                log_len,
                held: vec![0],
            }),
        };
        let feed_len = ingest.feed_len();
        assert_eq!(
            ingest.serve_ask(&s002, &unseen(30, 0), true).unwrap(),
            AskStep::Granted {
                feed_upto: feed_len
            }
        );
        assert_eq!(ingest.feed_len(), feed_len, "nothing written");
        let AskStep::Recall(recalls) = ingest.serve_ask(&s002, &unseen(80, 0), true).unwrap()
        else {
            panic!("expected a recall");
        };
        assert_eq!(recalls[0].1.units, 50);
        let blind = Ask {
            holding: None,
            ..unseen(80, 0)
        };
        assert!(matches!(
            ingest.serve_ask(&s002, &blind, true).unwrap(),
            AskStep::Refused(_)
        ));
        // An ask made after S002 wrote an entry the hub has not got waits for it.
        assert_eq!(
            ingest.serve_ask(&s002, &unseen(30, 1), true).unwrap(),
            AskStep::Wait
        );
        // S001 (its software changed) spends 80 while it holds 70: kept, and flagged.
        let overspent = RightsOp {
            counter: Counter::Principal,
            change: Change::Debit {
                units: 80,
                total: 80,
            },
        };
        let bad = wallet_entry(&s001, tip, member, vec![overspent]);
        ingest.ingest(&s001, vec![Sealed::new(bad)], 3).unwrap();
        ingest.flush().unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.mentions("fails the audit"), "{report:?}");
    }
}

#[cfg(test)]
mod fence_tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::storage::MemHubStore;
    use protocol::escrow::Change;
    use protocol::wallet::{Counter, RightsOp};

    fn topped_up(store: &StoreId, member: MemberId, units: u64) -> Entry {
        let mut entry = super::tests::wallet_entry(
            store,
            ChainTip::GENESIS,
            member,
            vec![RightsOp {
                counter: Counter::Principal,
                change: Change::Credit {
                    units,
                    total: units,
                },
            }],
        );
        entry.payload = match entry.payload {
            Payload::Wallet { member_id, ops, .. } => Payload::Wallet {
                member_id,
                event: WalletEvent::PointsAdjusted {
                    points: protocol::points::Points(0),
                    reason: "test".into(),
                },
                ops,
            },
            other => other,
        };
        entry
    }

    #[test]
    fn a_quiet_store_on_hold_is_fenced_its_rights_come_back_once_and_what_it_sold_after_still_counts()
     {
        let clock = Arc::new(AtomicU64::new(1_000));
        let now = clock.clone();
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let open = |storage: Arc<MemHubStore>| {
            let now = now.clone();
            Ingest::open(storage, Box::new(move || now.load(Ordering::SeqCst))).unwrap()
        };
        let mut ingest = open(storage.clone());
        ingest.set_fence_rule(protocol::lease::FenceRule::with_lease(1_000));
        let (s001, s002, s003) = (
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
            StoreId::parse("S003").unwrap(),
        );
        let member = MemberId::mint(1, 7);
        let first = topped_up(&s001, member, 100);
        let tip = ChainTip::GENESIS.extend(&s001, &first).unwrap();
        ingest.ingest(&s001, vec![Sealed::new(first)], 1).unwrap();
        ingest.flush().unwrap();

        // Bad holds change nothing.
        assert!(matches!(
            ingest.hold(&s003, 70_000, "hq-1", "quiet"),
            Err(HoldError::UnknownStore(_))
        ));
        assert!(matches!(
            ingest.hold(&StoreId::hq(), 70_000, "hq-1", "quiet"),
            Err(HoldError::Headquarters)
        ));
        ingest.link(&s001, true);
        assert!(matches!(
            ingest.hold(&s001, 70_000, "hq-1", "quiet"),
            Err(HoldError::Online(_))
        ));
        ingest.link(&s001, false); // the link is lost at 1_000
        assert!(matches!(
            ingest.void_hold(&s001, "hq-1"),
            Err(HoldError::NotOnHold(_))
        ));
        // A hold that ends before the store's lease (1 s after the link was lost, plus the
        // margin) could fence a store that is still spending: refused, as is one shorter than
        // the shortest hold.
        let earliest = 1_000 + 1_000 + 60_000;
        assert!(matches!(
            ingest.hold(&s001, earliest - 1, "hq-1", "quiet"),
            Err(HoldError::TooSoon { earliest_ms, .. }) if earliest_ms == earliest
        ));

        // A hold voided by the store coming back: nothing taken.
        ingest.hold(&s001, earliest, "hq-1", "quiet").unwrap();
        assert!(matches!(
            ingest.hold(&s001, earliest, "hq-1", "again"),
            Err(HoldError::AlreadyOnHold(_))
        ));
        ingest.open_session(&s001).unwrap();
        clock.store(earliest + 1, Ordering::SeqCst);
        assert!(ingest.post_due_holds().unwrap().is_empty());
        assert!(ingest.fences.is_empty());

        // A hold that runs out: posted. S001 is fenced at seq 1, HQ holds its 100.
        let until = earliest + 1 + 60_000;
        ingest.hold(&s001, until, "hq-1", "PC broken").unwrap();
        clock.store(until - 1, Ordering::SeqCst);
        assert!(ingest.post_due_holds().unwrap().is_empty());
        clock.store(until, Ordering::SeqCst);
        assert_eq!(ingest.post_due_holds().unwrap(), vec![s001.clone()]);
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        let principal = Counter::Principal;
        assert_eq!(
            (
                wallet.held(&principal, &s001),
                wallet.held(&principal, &StoreId::hq()),
                wallet.balance(&principal)
            ),
            (0, 100, 100)
        );
        assert!(matches!(
            ingest.void_hold(&s001, "hq-1"),
            Err(HoldError::Fenced(_))
        ));

        // S002's ask is granted from what came back, with no recall to the fenced store, and
        // S002 spends it.
        let ask = Ask {
            id: TxId::parse("ask-00000001").unwrap(),
            member,
            wants: vec![(principal.clone(), 60)],
            holding: None,
        };
        assert!(matches!(
            ingest.serve_ask(&s002, &ask, true).unwrap(),
            AskStep::Granted { .. }
        ));
        let debit = |units, total| {
            vec![RightsOp {
                counter: Counter::Principal,
                change: Change::Debit { units, total },
            }]
        };
        let spent = super::tests::wallet_entry(&s002, ChainTip::GENESIS, member, debit(60, 60));
        ingest.ingest(&s002, vec![Sealed::new(spent)], 1).unwrap();
        // S001 was only cut off: it spent the 100 it held before it heard of the fence. Its
        // session and its entry are taken all the same; the 60 spent twice is what the member
        // owes, the rest is covered from headquarters' pool.
        ingest.open_session(&s001).unwrap();
        let late = super::tests::wallet_entry(&s001, tip, member, debit(100, 100));
        assert_eq!(ingest.ingest(&s001, vec![Sealed::new(late)], 2).unwrap(), 2);
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        let rights = &wallet.counters[&principal];
        assert_eq!(
            (
                rights.held_signed(&s001),
                rights.held(&StoreId::hq()),
                rights.balance_signed()
            ),
            (-60, 0, -60)
        );
        assert_eq!(
            wallet.overspent_by(),
            [(s001.clone(), 60)].into_iter().collect()
        );
        assert_eq!(ingest.rows()[0].entries_after_fence, 1);
        assert!(wallet.audit().is_ok());
        // The member tops up 500 at S001 after its fence: theirs to keep there, whatever the
        // hub does next (a restart once took it back again: the reviewer's case).
        let tip = tip
            .extend(&s001, &storage_entry(&*storage, &s001, 2))
            .unwrap();
        let mut top_up = topped_up(&s001, member, 500);
        top_up.seq = 3;
        top_up.prev_hash = tip.hash;
        if let Payload::Wallet { ops, .. } = &mut top_up.payload {
            ops[0].change = Change::Credit {
                units: 500,
                total: 600,
            };
        }
        assert_eq!(
            ingest.ingest(&s001, vec![Sealed::new(top_up)], 3).unwrap(),
            3
        );
        ingest.flush().unwrap();

        // Derived state written by another version (here: wiped) is rebuilt on open.
        let before = storage.wallet(&member).unwrap();
        storage
            .replace_derived(crate::storage::Derived::default(), DERIVED_VERSION - 1)
            .unwrap();
        assert_eq!(storage.wallet(&member).unwrap(), None);
        // A restart keeps the fence and takes nothing twice.
        let reopened = open(storage.clone());
        assert_eq!(storage.wallet(&member).unwrap(), before);
        assert!(reopened.is_fenced(&s001));
        let wallet = storage.wallet(&member).unwrap().unwrap();
        assert_eq!(wallet.held(&principal, &s001), 440, "nothing taken twice");
        assert!(wallet.overspent_by().is_empty());
        assert!(wallet.audit().is_ok());
        assert!(verify(&*storage).unwrap().is_clean());
    }

    fn storage_entry(storage: &dyn HubStore, store: &StoreId, seq: u64) -> Entry {
        Entry::decode(&storage.entries(store, seq, 1).unwrap()[0]).unwrap()
    }
}

#[cfg(test)]
mod catalogue_tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::catalogue::{Product, Unit};
    use protocol::money::Fen;

    fn product(sku: &str, barcode: &str) -> CatalogueChange {
        CatalogueChange::Product(Product {
            sku: Sku::parse(sku).unwrap(),
            name: "商品".into(),
            barcodes: vec![Barcode::parse(barcode).unwrap()],
            department: String::new(),
            category: String::new(),
            unit: Unit::Piece,
            price: Some(Fen(100)),
            special: None,
            earns_points: true,
            discountable: true,
            active: true,
            low_stock: None,
        })
    }

    #[test]
    fn only_headquarters_writes_the_catalogue_and_barcodes_stay_unique() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let staff = StaffId::parse("hq-buyer").unwrap();
        let written = ingest
            .change_catalogue(vec![product("A1", "6901234567892")], &staff)
            .unwrap();
        assert_eq!((written.version, written.parts), (1, 1));
        // The same barcode on another product, in this set or against the catalogue: refused.
        let clash = ingest.change_catalogue(vec![product("A2", "6901234567892")], &staff);
        assert!(matches!(
            clash,
            Err(CatalogueError::DuplicateBarcode { .. })
        ));
        let twice = ingest.change_catalogue(
            vec![
                product("B1", "6900000000011"),
                product("B2", "6900000000011"),
            ],
            &staff,
        );
        assert!(matches!(
            twice,
            Err(CatalogueError::DuplicateBarcode { .. })
        ));
        // Moving a barcode from A1 to A2 in one set is fine.
        let mut moved = product("A1", "6900000000028");
        if let CatalogueChange::Product(p) = &mut moved {
            p.barcodes.clear();
        }
        ingest
            .change_catalogue(vec![moved, product("A2", "6901234567892")], &staff)
            .unwrap();
        // A store writing a price (a catalogue entry in its own log) is refused at ingest.
        let s001 = StoreId::parse("S001").unwrap();
        let mut entry =
            super::tests::wallet_entry(&s001, ChainTip::GENESIS, MemberId::mint(1, 1), vec![]);
        entry.payload = Payload::Catalogue {
            version: 9,
            part: 0,
            parts: 1,
            changes: vec![product("A1", "6901234567892")],
        };
        assert!(matches!(
            ingest.ingest(&s001, vec![Sealed::new(entry)], 1),
            Err(IngestError::NotAllowed { seq: 1, .. })
        ));
        ingest.flush().unwrap();
        let views = HubViews::reader(&*storage);
        let a2 = inventory::sku_of_barcode(&views, &Barcode::parse("6901234567892").unwrap());
        assert_eq!(a2.unwrap().unwrap().as_str(), "A2");
        assert!(verify(&*storage).unwrap().is_clean());
        // A stock record nobody's log explains is found.
        let forged = Append {
            store: &s001,
            entries: Vec::new(),
            tip: ChainTip::GENESIS,
            status: StoreStatus::default(),
            feed: Vec::new(),
            feed_len: ingest.feed_len(),
            members: Vec::new(),
            phones: Vec::new(),
            wallets: Vec::new(),
            views: vec![(
                inventory::keys::stock(&s001, &Sku::parse("A1").unwrap()),
                Some(inventory::encode(&(5_000u64, 0u64))),
            )],
            keys: Vec::new(),
            erased: Vec::new(),
        };
        storage.append(forged).unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.mentions("inventory views"), "{report:?}");
    }
}

#[cfg(test)]
mod forgery_tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::wallet::{Counter, RightsOp};

    #[test]
    fn a_store_cannot_take_back_rights_like_headquarters() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let forged = RightsOp {
            counter: Counter::Principal,
            change: Change::Reclaim {
                from: StoreId::parse("S002").unwrap(),
                units: 100,
                total: 100,
            },
        };
        let entry = super::tests::wallet_entry(
            &s001,
            ChainTip::GENESIS,
            MemberId::mint(1, 1),
            vec![forged.clone()],
        );
        assert!(matches!(
            ingest.ingest(&s001, vec![Sealed::new(entry)], 1),
            Err(IngestError::NotAllowed { seq: 1, .. })
        ));
        assert_eq!(
            ingest.tip(&s001),
            ChainTip::GENESIS,
            "nothing of the batch was kept"
        );
        // And every replica ignores such a cell write if one ever got through.
        let mut wallet = protocol::wallet::Wallet::default();
        wallet.absorb(&s001, &[forged]);
        assert_eq!(wallet.held(&Counter::Principal, &s001), 0);
    }

    #[test]
    fn a_staff_change_too_large_for_one_entry_is_refused_and_nothing_is_written() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let by = StaffId::parse("hq-ops-1").unwrap();
        let record = |i: usize| StaffRecord {
            id: StaffId::parse(&format!("staff-{i:04}-{}", "x".repeat(21))).unwrap(),
            name: "长".repeat(32),
            store: Some(StoreId::parse("S001").unwrap()),
            role: protocol::staff::StaffRole::Cashier,
            active: true,
        };
        let big: Vec<_> = (0..500).map(record).collect();
        let before = ingest.tip(&StoreId::hq());
        assert!(matches!(
            ingest.hq_write(HqWrite::Staff(big), &by),
            Err(HqWriteError::TooLarge(_))
        ));
        assert_eq!(ingest.tip(&StoreId::hq()), before, "nothing written");
        ingest
            .hq_write(HqWrite::Staff((0..100).map(record).collect()), &by)
            .unwrap();
        assert_eq!(ingest.tip(&StoreId::hq()).next_seq, before.next_seq + 1);
        let entry = storage
            .entries(&StoreId::hq(), 1, 1)
            .unwrap()
            .pop()
            .unwrap();
        assert!(Entry::decode(&entry).is_ok(), "what is written can be read");
    }
}
