//! The journal: the one owner of the node's log and views (STYLE.md §6). It takes a closed set of
//! commands, turns each into an entry plus its view updates and request record. Commands that
//! arrive together form a group: the group is written as one atomic batch, flushed, and only then
//! answered (group commit).

use std::sync::Arc;

use protocol::ask::Tracker;
use protocol::calendar::StoreCalendar;
use protocol::entry::{ChainTip, Entry, Payload};
use protocol::member::{Gender, MemberDoc, Profile, ProfileError, ProfilePatch};
use protocol::points::{EarnRule, Points};
use protocol::rules::ChainRules;
use protocol::sale::{QuickSaleRequest, SaleError, SaleLimits, Tender};
use protocol::sync::FeedItem;
use protocol::wallet::{
    CARD_NAME_CHARS_MAX, CardId, CardKind, Counter, Movement, PointsPolicy, REASON_CHARS_MAX,
    RightsOp, Summary, Wallet, WalletError, WalletEvent, WalletRules, check_text, lot_year,
    top_up_bonus,
};
use protocol::{
    CardNo, Fen, Hlc, HlcClock, MemberId, Money, Phone, SaleId, StaffId, StoreId, TxId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

mod checkout;
mod commands;
mod feed;
mod gifts;
mod group;
pub mod held;
mod inventory;
mod members;
mod quick_sale;
pub mod restore;
mod returns;
mod shift;
#[cfg(test)]
pub(super) mod tests;
mod tiers;
mod wallet;

pub use checkout::{BasketLine, ItemCheckoutRequest, TenderError, TenderRequest, price_basket};
pub use held::{HeldOrder, HeldView};
pub use inventory::{
    InventoryError, STOCKTAKE_SKUS_MAX, StockAction, StockOutcome, StockRequest, TransferAction,
    TransferRequest,
};
pub(crate) use tiers::{qualifying, window};

use crate::store::{Batch, GroupBuffer, Store, StoreError};
use crate::views::{self, MemberView, Overlay, SaleView, ViewError, keys};
use protocol::seal::{IndexKey, MemberKey};

/// At most this many commands share one flush, so one flush never holds up a till for long.
pub const GROUP_COMMIT_MAX: usize = 256;

pub use commands::*;
pub use group::{GroupMetrics, JournalHandle, Replier, spawn};

#[derive(Serialize, Deserialize)]
struct RequestRecord {
    fingerprint: [u8; 32],
    outcome: Outcome,
}

/// The store's rules the journal applies.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store_id: StoreId,
    pub calendar: StoreCalendar,
    pub limits: SaleLimits,
    pub earn: EarnRule,
    pub default_tier: String,
    pub max_forward_skew_ms: u64,
    pub wallet: WalletRules,
    pub pricing: protocol::pricing::PricingRules,
    /// Yuan per unit of each foreign currency the tills take as cash (外币现金).
    pub rates: std::collections::BTreeMap<protocol::Currency, rust_decimal::Decimal>,
    /// How many days late a sale may be entered (补录).
    pub backdate_days_max: u32,
    /// 改价: the lowest share of a line's price (percent) a cashier may set; lower needs a store
    /// manager at the till.
    pub override_floor_percent: u8,
    /// 会员等级: headquarters' tier table, once it has published one.
    pub tiers: Option<protocol::tiers::TierTable>,
    /// 退卡与计时规则: headquarters' card rules, once it has published them.
    pub card_rules: Option<protocol::card_rules::CardRules>,
}

impl Settings {
    /// The member rules these settings apply (from `node.toml`, or headquarters').
    pub fn rules(&self) -> ChainRules {
        ChainRules {
            earn: self.earn.clone(),
            top_up_rules: self.wallet.top_up_rules.clone(),
            tier_percent_off: self.pricing.tier_percent_off.clone(),
            overdraft_member: self.wallet.overdraft_member,
            overdraft_store: self.wallet.overdraft_store,
            overdraft_needs_manager: self.wallet.overdraft_needs_manager,
        }
    }

    /// Headquarters' member rules in place of the file's.
    pub fn adopt(&mut self, rules: &ChainRules) {
        self.earn = rules.earn.clone();
        self.wallet.top_up_rules = rules.top_up_rules.clone();
        self.pricing.tier_percent_off = rules.tier_percent_off.clone();
        self.wallet.overdraft_member = rules.overdraft_member;
        self.wallet.overdraft_store = rules.overdraft_store;
        self.wallet.overdraft_needs_manager = rules.overdraft_needs_manager;
    }

    /// Headquarters' tier table: its discounts replace the rules' tier discounts, and its
    /// first tier is the one new members get.
    pub fn adopt_tiers(&mut self, table: &protocol::tiers::TierTable) {
        self.pricing.tier_percent_off = table.percent_off();
        self.default_tier = table.first().name.clone();
        self.tiers = Some(table.clone());
    }

    /// What headquarters published that this store has heard of, over the file's settings.
    pub fn adopt_published(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        if let Some(published) = views::chain_rules(store)? {
            self.adopt(&published.rules);
        }
        if let Some(published) = views::tier_table(store)? {
            self.adopt_tiers(&published.table);
        }
        if let Some(published) = views::card_rules(store)? {
            self.card_rules = Some(published.rules);
        }
        Ok(())
    }

    /// The card rules in force: headquarters', or before it publishes any, the defaults with
    /// this store's own timed-card step (`[wallet] timed_round_minutes`).
    pub fn card_rules(&self) -> protocol::card_rules::CardRules {
        self.card_rules.clone().unwrap_or_else(|| {
            protocol::card_rules::CardRules::with_step(self.wallet.timed_round_minutes)
        })
    }

    /// The earning rule for a member in `tier`: the tier's points multiplier on every rate.
    pub fn earn_for(&self, tier: Option<&str>) -> EarnRule {
        match (&self.tiers, tier) {
            (Some(table), Some(tier)) => table.earn_for(&self.earn, tier),
            _ => self.earn.clone(),
        }
    }
}

/// Where time and random bits come from: the system in production, a seed in the simulator.
pub struct Environment {
    pub now_ms: Box<dyn FnMut() -> u64 + Send>,
    pub random: Box<dyn FnMut() -> u128 + Send>,
}

impl Environment {
    /// The chain's time at this store (`crate::clock`) and the OS's random source.
    pub fn with_clock(clock: &crate::clock::ChainClock) -> Self {
        let clock = clock.clone();
        Self {
            now_ms: Box::new(move || clock.now_ms()),
            ..Self::system()
        }
    }

    pub fn system() -> Self {
        Self {
            now_ms: Box::new(|| {
                let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                since.map(|d| d.as_millis() as u64).unwrap_or(0)
            }),
            random: Box::new(|| {
                let mut bytes = [0u8; 16];
                // getrandom only fails when the OS has no entropy source at all.
                getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
                u128::from_le_bytes(bytes)
            }),
        }
    }
}

pub struct Journal {
    store: Arc<dyn Store>,
    settings: Settings,
    env: Environment,
    clock: HlcClock,
    tip: ChainTip,
    /// Shut while this store may not spend member rights (cut off past its lease).
    rights_gate: crate::lease::RightsGate,
    /// Headquarters has fenced this store (its feed brought the take-back): it spends no
    /// member rights any more.
    fenced: bool,
    /// Blinds the phone, card and search indexes (`crate::sealed`).
    index: IndexKey,
    /// Counts the members this store started to follow (`crate::follow`), so the uplink
    /// tells headquarters of them; `followed` names those not yet handed to the uplink.
    follows_started: u64,
    followed: Vec<MemberId>,
    /// Headquarters routes its feed here (the session's version says): a change of a member
    /// whose history is not here yet waits for it.
    routed: bool,
    /// The seq this store's log must reach before it writes again, while it is restored from
    /// headquarters' copy (`restore`).
    restore_to: Option<u64>,
}

impl Journal {
    /// Opens the journal where the log on disk ends. Its writes go through a [`GroupBuffer`]:
    /// nothing reaches `store` until [`Journal::flush`].
    pub fn open(
        store: Arc<dyn Store>,
        settings: Settings,
        mut env: Environment,
    ) -> Result<Self, ViewError> {
        let store: Arc<dyn Store> = Arc::new(GroupBuffer::new(store));
        crate::sealed::ensure_index_key(&*store, || crate::sealed::draw(&mut *env.random))?;
        let index = crate::sealed::index_key(&*store)?.ok_or_else(|| StoreError::Damaged {
            key: "meta/index_key".into(),
            reason: "missing after it was written".into(),
        })?;
        let prefix = keys::log_prefix(&settings.store_id);
        let (tip, last) = match store.scan_prefix_rev(&prefix, 1)?.pop() {
            Some((_, bytes)) => {
                let entry = Entry::decode(&bytes)?;
                (
                    ChainTip {
                        next_seq: entry.seq + 1,
                        hash: entry.hash(),
                    },
                    entry.hlc,
                )
            }
            None => (ChainTip::GENESIS, Hlc::ZERO),
        };
        let clock = HlcClock::new(last, settings.max_forward_skew_ms);
        let mut settings = settings;
        settings.adopt_published(&*store)?;
        let fenced = store.get(&keys::fenced(&settings.store_id))?.is_some();
        let restore_to = restore::restore_to(&*store)?;
        start_follows(&*store, &settings.store_id)?;
        Ok(Self {
            store,
            settings,
            env,
            clock,
            tip,
            rights_gate: Default::default(),
            fenced,
            index,
            follows_started: 0,
            followed: Vec::new(),
            routed: false,
            restore_to,
        })
    }

    /// How many members this store has started to follow since it opened (a counter the
    /// uplink watches: `crate::follow::to_announce` says which).
    pub fn follows_started(&self) -> u64 {
        self.follows_started
    }

    /// The members this store started to follow since the last call (they are on disk once
    /// the group that started them is flushed).
    pub fn take_followed(&mut self) -> Vec<MemberId> {
        std::mem::take(&mut self.followed)
    }

    /// Notes that this store started to follow `member` if `started`.
    fn started_following(&mut self, member: &MemberId, started: bool) {
        if started {
            self.follows_started += 1;
            self.followed.push(*member);
        }
    }

    /// Follows the member an entry of this store's own log writes for (`crate::follow`): a
    /// member registered here is whole here at once.
    fn follow_own(&mut self, ov: &mut Overlay<'_>, entry: &Entry) -> Result<(), StoreError> {
        match &entry.payload {
            Payload::MemberRegistered { member_id, .. } => {
                let started = crate::follow::whole_here(ov, member_id)?;
                self.started_following(member_id, started);
            }
            payload => {
                if let Some(member) = payload.wallet_member() {
                    let started = crate::follow::want(ov, &member)?;
                    self.started_following(&member, started);
                }
            }
        }
        Ok(())
    }

    /// Follows these members (a till looked them up), writing nothing else.
    pub fn follow(&mut self, members: &[MemberId]) -> Result<Reply, Rejection> {
        let store = self.store.clone();
        let mut ov = Overlay::new(&*store);
        for member in members {
            let started = crate::follow::want(&mut ov, member)?;
            self.started_following(member, started);
        }
        store.apply(ov.into_batch())?;
        Ok(Reply {
            outcome: Outcome::FeedApplied {
                upto: self.feed_applied()?,
            },
            replayed: false,
        })
    }

    /// Whether headquarters routes its feed here (an older hub sends every store everything:
    /// then every member followed here is whole).
    pub fn hub_routes(&mut self, routed: bool) -> Result<Reply, Rejection> {
        self.routed = routed;
        if !routed {
            let mut ov = Overlay::new(&*self.store);
            crate::follow::all_whole(&*self.store, &mut ov)?;
            self.store.apply(ov.into_batch())?;
        }
        Ok(Reply {
            outcome: Outcome::FeedApplied {
                upto: self.feed_applied()?,
            },
            replayed: false,
        })
    }

    /// The gate the store's lease shuts (see `crate::lease`).
    pub fn set_rights_gate(&mut self, gate: crate::lease::RightsGate) {
        self.rights_gate = gate;
    }

    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    /// Makes the group visible without making it durable (`Store::publish`).
    pub fn publish(&self) -> Result<(), StoreError> {
        self.store.publish()
    }

    /// Applies one command (visible at once, durable at the next flush).
    /// What this store holds of a member's counters, and how long its log is, read together
    /// (for an ask to headquarters). Writes nothing.
    pub fn holding(
        &self,
        member: &MemberId,
        counters: &[Counter],
    ) -> Result<protocol::sync::Holding, Rejection> {
        let wallet: Wallet = self.read(&keys::wallet(member))?.unwrap_or_default();
        let here = &self.settings.store_id;
        let held = counters.iter().map(|c| wallet.held(c, here)).collect();
        let log_len = self.tip.next_seq - 1;
        Ok(protocol::sync::Holding { log_len, held })
    }

    pub fn handle(&mut self, command: Command) -> Result<Reply, Rejection> {
        let (key, fingerprint, staff) = command.request();
        if let Some(seen) = self.read::<RequestRecord>(&keys::idempotency(key))? {
            if let Outcome::Restored { seq } = seen.outcome {
                return Err(Rejection::RecordedBeforeRestore {
                    key: key.clone(),
                    seq,
                });
            }
            // Kept keyed (`recorded_fingerprint`); a record from before that, as it came.
            let same = seen.fingerprint == self.recorded_fingerprint(fingerprint)
                || seen.fingerprint == fingerprint;
            if !same {
                return Err(Rejection::IdempotencyConflict(key.clone()));
            }
            let outcome = match seen.outcome {
                Outcome::MemberRecorded { member_id, points } => Outcome::Member {
                    member: self
                        .member_view(&member_id)?
                        .ok_or(Rejection::MemberNotFound(member_id))?,
                    points,
                },
                outcome => outcome,
            };
            return Ok(Reply {
                outcome,
                replayed: true,
            });
        }
        self.check_staff(staff)?;
        let served_by = match &command {
            Command::ItemCheckout(r) => r.body.served_by.as_ref(),
            Command::HoldOrder(r) => r.body.served_by.as_ref(),
            _ => None,
        };
        if let Some(served_by) = served_by {
            self.check_staff(served_by)?;
        }
        let outcome = match command {
            Command::RegisterMember(r) => self.register(r),
            Command::EditMember(r) => self.edit(r),
            Command::Card(r) => self.card(r),
            Command::QuickCheckout(r) => self.checkout(r),
            Command::Wallet(r) => self.wallet(r),
            Command::ReturnSale(r) => self.return_sale(r),
            Command::Stock(r) => self.stock(r),
            Command::Transfer(r) => self.transfer(r),
            Command::ItemCheckout(r) => self.item_checkout(r),
            Command::HoldOrder(r) => self.hold(r),
            Command::VoidHeld(r) => self.void_held(r),
            Command::CloseShift(r) => self.close_shift(r),
        }?;
        Ok(Reply {
            outcome,
            replayed: false,
        })
    }

    /// Refuses a staff id the directory does not know here (any id while it is empty).
    fn check_staff(&self, id: &StaffId) -> Result<(), Rejection> {
        let empty = self
            .store
            .scan_prefix_rev(protocol::staff::keys::PREFIX, 1)?
            .is_empty();
        protocol::staff::may_act(
            &Overlay::new(&*self.store),
            empty,
            id,
            &self.settings.store_id,
        )
        .map_err(Rejection::Staff)
    }

    fn check_phone_free(&self, phone: &Phone, me: Option<MemberId>) -> Result<(), Rejection> {
        match self.other_filed(&crate::sealed::phone_key(&self.index, phone), me)? {
            Some(owner) => Err(Rejection::PhoneTaken(phone.masked(), owner)),
            None => Ok(()),
        }
    }

    fn check_card_free(&self, card: &CardNo, me: Option<MemberId>) -> Result<(), Rejection> {
        match self.other_filed(&crate::sealed::card_key(&self.index, card), me)? {
            Some(owner) => Err(Rejection::CardTaken(card.clone(), owner)),
            None => Ok(()),
        }
    }

    /// A member other than `me` filed under a phone or card index prefix, if any.
    fn other_filed(
        &self,
        prefix: &[u8],
        me: Option<MemberId>,
    ) -> Result<Option<MemberId>, StoreError> {
        Ok(crate::sealed::filed_under(&*self.store, prefix)?
            .into_iter()
            .find(|owner| Some(*owner) != me))
    }

    fn member_exists(&self, id: &MemberId) -> Result<bool, StoreError> {
        Ok(self.store.get(&keys::member(id))?.is_some())
    }

    /// A request's fingerprint as its record keeps it: an unkeyed hash of a registration's body
    /// could be tested against guessed phones and names, an HMAC under the store's index key
    /// cannot (without the key).
    fn recorded_fingerprint(&self, fingerprint: [u8; 32]) -> [u8; 32] {
        self.index.mac("request", &fingerprint)
    }

    /// A member's view, opened under their key.
    fn member_view(&self, id: &MemberId) -> Result<Option<MemberView>, StoreError> {
        crate::sealed::read(&*self.store, id, &keys::member(id))
    }
}

impl Journal {
    /// Reads and decodes one record (through the group buffer).
    fn read<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.store
            .get(key)?
            .map(|bytes| views::decode(key, &bytes))
            .transpose()
    }

    /// Writes the entry, its view updates and the request record as one batch.
    fn append<T>(
        &mut self,
        r: &Request<T>,
        now_ms: u64,
        payload: Payload,
        outcome: impl FnOnce(&mut Overlay<'_>) -> Result<Outcome, StoreError>,
    ) -> Result<Outcome, Rejection> {
        let today = self.settings.calendar.business_date(now_ms);
        self.append_on(r, now_ms, today, payload, None, outcome)
    }

    /// `append`, booked on `business_date` (today, or the day a sale entered late was made),
    /// followed by an audit note on it when there is one (the same request, the same batch).
    /// `outcome` reads the views as written and may add writes of its own to the batch.
    fn append_on<T>(
        &mut self,
        r: &Request<T>,
        now_ms: u64,
        business_date: chrono::NaiveDate,
        payload: Payload,
        note: Option<protocol::audit::Note>,
        outcome: impl FnOnce(&mut Overlay<'_>) -> Result<Outcome, StoreError>,
    ) -> Result<Outcome, Rejection> {
        // The note is booked today, when it was done, for the day's audit log.
        let today = self.settings.calendar.business_date(now_ms);
        let note = note.map(|note| (Payload::Audit { note }, today));
        let payloads = std::iter::once((payload, business_date))
            .chain(note)
            .collect();
        self.append_all(r, now_ms, payloads, outcome)
    }

    /// Entries for one request, in order, in one batch (a closing's wallet entry and the
    /// profile change that closes the card; an entry and its audit note).
    fn append_all<T>(
        &mut self,
        r: &Request<T>,
        now_ms: u64,
        payloads: Vec<(Payload, chrono::NaiveDate)>,
        outcome: impl FnOnce(&mut Overlay<'_>) -> Result<Outcome, StoreError>,
    ) -> Result<Outcome, Rejection> {
        self.check_whole()?;
        let store = self.store.clone();
        let mut ov = Overlay::new(&*store);
        let mut tip = self.tip;
        for (payload, business_date) in payloads {
            let entry = Entry {
                origin: self.settings.store_id.clone(),
                seq: tip.next_seq,
                hlc: self.clock.tick(now_ms),
                business_date,
                staff: r.staff.clone(),
                tx: r.key.clone(),
                prev_hash: tip.hash,
                payload,
            };
            let bytes = entry.encode();
            if bytes.len() > protocol::entry::ENTRY_BYTES_MAX {
                return Err(Rejection::EntryTooLarge(bytes.len()));
            }
            views::apply_own_entry(&mut ov, &entry, &self.settings.calendar)?;
            self.follow_own(&mut ov, &entry)?;
            ov.put(keys::log(&entry.origin, entry.seq), bytes);
            tip = ChainTip {
                next_seq: entry.seq + 1,
                hash: entry.hash(),
            };
        }
        // The outcome may write too (a paid or voided held order goes in the same batch).
        let outcome = outcome(&mut ov)?;
        let record = RequestRecord {
            fingerprint: self.recorded_fingerprint(r.fingerprint),
            outcome: outcome.recorded(),
        };
        ov.put(keys::idempotency(&r.key), views::encode(&record));
        self.store.apply(ov.into_batch())?;
        self.tip = tip;
        Ok(outcome)
    }

    /// A request that changed nothing still has its key recorded, so a retry gets the same answer.
    fn record_only<T>(
        &mut self,
        r: &Request<T>,
        outcome: impl FnOnce(&Overlay<'_>) -> Result<Outcome, StoreError>,
    ) -> Result<Outcome, Rejection> {
        let outcome = outcome(&Overlay::new(&*self.store))?;
        self.record(r, Batch::default(), outcome)
    }

    /// Writes `batch` (records that are not log or views) with the request's record, as one
    /// batch of the group.
    fn record<T>(
        &mut self,
        r: &Request<T>,
        mut batch: Batch,
        outcome: Outcome,
    ) -> Result<Outcome, Rejection> {
        let record = RequestRecord {
            fingerprint: self.recorded_fingerprint(r.fingerprint),
            outcome: outcome.recorded(),
        };
        batch.put(keys::idempotency(&r.key), views::encode(&record));
        self.store.apply(batch)?;
        Ok(outcome)
    }
}

/// Starts `crate::follow`'s records once. A store that applied a feed before it was routed
/// holds every wallet whole: it follows the members whose rights or debts are here (so it can
/// still spend them offline), and meets the others anew.
fn start_follows(store: &dyn Store, here: &protocol::StoreId) -> Result<(), ViewError> {
    if store.get(crate::follow::STARTED)?.is_some() {
        return Ok(());
    }
    let mut ov = Overlay::new(store);
    if views::Views::feed_applied_in(store)? > 0 {
        for (key, bytes) in store.scan_prefix(b"w/")? {
            let Some(member) = std::str::from_utf8(&key[2..])
                .ok()
                .and_then(|s| MemberId::parse(s).ok())
            else {
                continue;
            };
            let wallet: Wallet = views::decode(&key, &bytes)?;
            let here_too = wallet.counters.keys().any(|c| wallet.held(c, here) > 0)
                || wallet.owed_at(here) > 0;
            if here_too {
                crate::follow::whole_here(&mut ov, &member)?;
            }
        }
    }
    ov.put(crate::follow::STARTED.to_vec(), Vec::new());
    store.apply(ov.into_batch())?;
    store.flush()?;
    Ok(())
}

/// A coupon's terms, checked: amounts within a sale's range, a percentage up to 100.
fn check_offer(offer: &protocol::pricing::Coupon) -> Result<(), Rejection> {
    offer.check().map_err(|_| WalletError::NotPositive.into())
}

/// A stored-value payment: the cell writes, `(principal, bonus)` taken, and what is owed.
type Paid = (Vec<RightsOp>, (u64, u64), u64);

fn missing(what: &str) -> StoreError {
    StoreError::Damaged {
        key: what.to_owned(),
        reason: "view missing right after its entry".to_owned(),
    }
}

fn member_outcome(
    ov: &Overlay<'_>,
    id: &MemberId,
    (policy, today): (PointsPolicy, chrono::NaiveDate),
) -> Result<Outcome, StoreError> {
    let member = crate::sealed::read::<MemberView>(ov, id, &keys::member(id))?
        .ok_or_else(|| missing("member"))?;
    let wallet = ov.get_as::<Wallet>(&keys::wallet(id))?.unwrap_or_default();
    let points = wallet.points_live(today, &policy);
    Ok(Outcome::Member {
        member,
        points: Points(i64::try_from(points).unwrap_or(i64::MAX)),
    })
}

/// A sale as written, with its member's wallet right after it.
fn sale_outcome(
    ov: &Overlay<'_>,
    sale_id: &SaleId,
    member: Option<MemberId>,
    here: &StoreId,
    (policy, today): (PointsPolicy, chrono::NaiveDate),
) -> Result<Outcome, StoreError> {
    let sale = ov
        .get_as::<SaleView>(&keys::sale(sale_id))?
        .ok_or_else(|| missing("sale"))?;
    let wallet = match member {
        Some(m) => Some(wallet_summary(ov, &m, here, today, &policy)?),
        None => None,
    };
    Ok(Outcome::Sale { sale, wallet })
}

fn wallet_summary(
    ov: &Overlay<'_>,
    member: &MemberId,
    here: &StoreId,
    today: chrono::NaiveDate,
    policy: &PointsPolicy,
) -> Result<Summary, StoreError> {
    let wallet = ov
        .get_as::<Wallet>(&keys::wallet(member))?
        .unwrap_or_default();
    Ok(wallet.summary(here, today, policy))
}

/// Fen as rights units; a negative amount never gets this far.
fn units(fen: Fen) -> Result<u64, WalletError> {
    u64::try_from(fen.0).map_err(|_| WalletError::NotPositive)
}

fn fen(units: u64) -> Fen {
    Fen(i64::try_from(units).unwrap_or(i64::MAX))
}
