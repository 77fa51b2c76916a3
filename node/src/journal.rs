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
pub mod held;
mod inventory;
mod returns;

pub use checkout::{BasketLine, ItemCheckoutRequest, TenderError, TenderRequest, price_basket};
pub use held::{HeldOrder, HeldView};
pub use inventory::{
    InventoryError, STOCKTAKE_SKUS_MAX, StockAction, StockOutcome, StockRequest, TransferAction,
    TransferRequest,
};

use crate::store::{Batch, GroupBuffer, Store, StoreError};
use crate::views::{self, MemberView, Overlay, SaleView, ViewError, keys};
use protocol::seal::{IndexKey, MemberKey};

/// At most this many commands share one flush, so one flush never holds up a till for long.
pub const GROUP_COMMIT_MAX: usize = 256;

/// A request that changes state, with its idempotency key and a fingerprint of its body.
#[derive(Debug, Clone)]
pub struct Request<T> {
    pub key: TxId,
    /// Hash of what was asked; the same key with another fingerprint is a conflict.
    pub fingerprint: [u8; 32],
    pub staff: StaffId,
    pub body: T,
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub name: String,
    pub phone: Phone,
    pub card_no: Option<CardNo>,
    pub birthday: Option<chrono::NaiveDate>,
    pub gender: Gender,
    pub tags: std::collections::BTreeSet<String>,
    pub notes: String,
    pub tier: Option<String>,
    pub custom: std::collections::BTreeMap<String, String>,
    pub referrer: Option<MemberId>,
}

impl NewMember {
    /// A member with only a name and a phone; everything else at its default.
    pub fn named(name: impl Into<String>, phone: Phone) -> Self {
        Self {
            name: name.into(),
            phone,
            card_no: None,
            birthday: None,
            gender: Gender::Unspecified,
            tags: Default::default(),
            notes: String::new(),
            tier: None,
            custom: Default::default(),
            referrer: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemberEdit {
    pub member_id: MemberId,
    pub patch: ProfilePatch,
}

/// A sale returned (退货): a quick sale whole, at the store that made it; an item sale in part
/// (`lines`) or whatever is left of it (`None`), at any store.
#[derive(Debug, Clone)]
pub struct SaleReturn {
    pub sale_id: SaleId,
    pub reason: String,
    pub lines: Option<Vec<protocol::returns::ReturnLine>>,
}

/// A change to a member's wallet, asked for at the till (or by the hub, for `Recall`).
#[derive(Debug, Clone)]
pub struct WalletRequest {
    pub member_id: MemberId,
    pub action: WalletAction,
}

#[derive(Debug, Clone)]
pub enum WalletAction {
    /// 充值, paid in cash, under a top-up rule or none.
    TopUp {
        paid: Money,
        rule: Option<String>,
    },
    /// Points awarded (positive) or deducted (negative) by hand.
    AdjustPoints {
        points: i64,
        reason: String,
    },
    SellCard {
        name: String,
        kind: CardKind,
        price: Money,
    },
    UseCard {
        card: CardId,
        uses: u32,
    },
    /// Stored value paid back in cash: principal only.
    Refund {
        principal: Money,
        reason: String,
    },
    /// The payment password's argon2 hash (the API hashes; the journal never sees a password).
    SetPassword {
        hash: String,
    },
    /// Headquarters asks for rights back: hand over up to `units` of `counter` held here.
    Recall {
        counter: Counter,
        units: u64,
    },
    /// Pay off what the member owes this store for offline overdrafts, from stored value, as
    /// far as the balance goes.
    CollectOverdraft,
    /// 发券: give the member a coupon, good from `from` to `to`.
    IssueCoupon {
        name: String,
        offer: protocol::pricing::Coupon,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
    /// A wrong payment password was given here: on record for the whole chain.
    PasswordFailed,
}

/// The closed set of things the journal does.
#[derive(Debug)]
pub enum Command {
    RegisterMember(Request<NewMember>),
    EditMember(Request<MemberEdit>),
    QuickCheckout(Request<QuickSaleRequest>),
    Wallet(Request<WalletRequest>),
    ReturnSale(Request<SaleReturn>),
    Stock(Request<StockRequest>),
    Transfer(Request<TransferRequest>),
    ItemCheckout(Request<ItemCheckoutRequest>),
    /// 挂单: park a basket; 作废: void a parked one before payment.
    HoldOrder(Request<HeldOrder>),
    VoidHeld(Request<protocol::DocId>),
}

/// What the uplink and the till's ask for rights tell the journal, besides requests: the
/// hub's feed, a read for an ask, and the parking of a request until granted rights arrive.
#[derive(Debug)]
pub enum Control {
    /// Entries other replicas wrote, from the hub's feed, up to feed position `upto`, with the
    /// keys of the members they change (`None`: erased at headquarters).
    ApplyFeed {
        upto: u64,
        items: Vec<FeedItem>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    },
    /// What this store holds of a member's counters, and how long its log is, read together
    /// (for an ask to headquarters). Writes nothing.
    Holding {
        member: MemberId,
        counters: Vec<protocol::wallet::Counter>,
    },
    /// `then` once the hub's feed is applied up to `upto`: a spend waiting for rights
    /// headquarters granted. The journal thread holds it until the feed gets there and runs it
    /// in the same group as that feed, so the rights' arrival and the spend share one flush.
    /// It is not run if whoever sent it stopped listening (the till's request was dropped).
    AfterFeed { upto: u64, then: Box<Command> },
    /// The till stops waiting for the `AfterFeed` command with this request key: if it is
    /// still held it is answered `Rejection::Withdrawn` and never runs; if it ran, its answer
    /// has been sent already. So the till never hears "failed" for a spend that was made.
    Withdraw { key: TxId },
}

/// What travels to the journal thread: a request, or a control message.
#[derive(Debug)]
pub enum Message {
    Command(Box<Command>),
    Control(Control),
}

impl From<Command> for Message {
    fn from(command: Command) -> Self {
        Message::Command(Box::new(command))
    }
}

impl From<Control> for Message {
    fn from(control: Control) -> Self {
        Message::Control(control)
    }
}

impl Command {
    /// A till's request: its idempotency key, fingerprint and staff.
    fn request(&self) -> (&TxId, [u8; 32], &StaffId) {
        match self {
            Command::RegisterMember(r) => (&r.key, r.fingerprint, &r.staff),
            Command::EditMember(r) => (&r.key, r.fingerprint, &r.staff),
            Command::QuickCheckout(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Wallet(r) => (&r.key, r.fingerprint, &r.staff),
            Command::ReturnSale(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Stock(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Transfer(r) => (&r.key, r.fingerprint, &r.staff),
            Command::ItemCheckout(r) => (&r.key, r.fingerprint, &r.staff),
            Command::HoldOrder(r) => (&r.key, r.fingerprint, &r.staff),
            Command::VoidHeld(r) => (&r.key, r.fingerprint, &r.staff),
        }
    }

    /// The request's idempotency key.
    pub fn key(&self) -> &TxId {
        self.request().0
    }
}

/// What a successful command produced; stored with its idempotency key and returned on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Member {
        member: MemberView,
        points: Points,
    },
    Sale {
        sale: SaleView,
        /// The member's wallet right after the sale.
        wallet: Option<Summary>,
    },
    Wallet {
        member_id: MemberId,
        /// The entry written, if any (a recall of nothing writes none).
        seq: Option<u64>,
        wallet: Summary,
    },
    /// The store has applied the hub's feed up to this position.
    FeedApplied {
        upto: u64,
    },
    Holding(protocol::sync::Holding),
    Stock(StockOutcome),
    Transfer(Box<protocol::stock::Transfer>),
    ItemSale {
        sale: Box<views::ItemSaleView>,
        /// The member's wallet right after the sale.
        wallet: Option<Summary>,
    },
    Held(Box<HeldView>),
    Voided {
        order_id: protocol::DocId,
    },
    /// Only in a request record: a member outcome kept without the member's person (which
    /// stays sealed in their views); a retry reads the member afresh.
    MemberRecorded {
        member_id: MemberId,
        points: Points,
    },
}

impl Outcome {
    /// The outcome as a request record keeps it: without personal data in the clear.
    fn recorded(&self) -> Outcome {
        match self {
            Outcome::Member { member, points } => Outcome::MemberRecorded {
                member_id: member.member_id,
                points: *points,
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// True when the idempotency key had been seen: nothing was applied this time.
    pub replayed: bool,
}

/// Why a command was not applied. Nothing was written for any of these.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("idempotency key {0} was already used for a different request")]
    IdempotencyConflict(TxId),
    #[error("phone {0} belongs to member {1}")]
    PhoneTaken(String, MemberId),
    #[error("card {0} belongs to member {1}")]
    CardTaken(CardNo, MemberId),
    #[error("member {0} not found")]
    MemberNotFound(MemberId),
    #[error("referrer {0} not found")]
    ReferrerNotFound(MemberId),
    #[error(transparent)]
    Sale(#[from] SaleError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("sale {0} not found")]
    SaleNotFound(SaleId),
    #[error("sale {0} was made at {1}: it is returned there")]
    ReturnElsewhere(SaleId, StoreId),
    #[error("sale {0} was already returned")]
    AlreadyReturned(SaleId),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Pricing(protocol::pricing::PricingError),
    #[error(transparent)]
    Tender(TenderError),
    #[error(transparent)]
    ItemReturn(protocol::returns::ReturnError),
    #[error(transparent)]
    Staff(protocol::staff::StaffError),
    #[error("held order {0} not found: it was paid or voided")]
    OrderNotFound(protocol::DocId),
    #[error("{0}")]
    Held(String),
    #[error("{0}")]
    Backdate(String),
    #[error("the entry would be {0} bytes, over the {max}-byte limit: send fewer lines", max = protocol::entry::ENTRY_BYTES_MAX)]
    EntryTooLarge(usize),
    /// A thin member change in the hub's feed follows a change this store does not hold.
    #[error("feed item {position}: {reason}")]
    FeedUnreadable { position: u64, reason: String },
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the node is shutting down or its storage has failed")]
    Unavailable,
    /// A spend that waited for rights headquarters granted was withdrawn before they arrived.
    #[error("the rights headquarters granted did not arrive in time; nothing was paid")]
    Withdrawn,
    /// This store's clock is behind the member's last payment-password change, so a change made
    /// here would be ordered before it and lose (see `clock.rs`).
    #[error(
        "the member's payment password was last changed at {at_ms} ms, after this store's clock: \
         set the clock right or connect to headquarters, then change it again"
    )]
    ClockBehind { at_ms: u64 },
}

impl From<protocol::stock::TransferError> for Rejection {
    fn from(e: protocol::stock::TransferError) -> Self {
        Rejection::Inventory(e.into())
    }
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        Rejection::Storage(e.to_string())
    }
}

impl From<ViewError> for Rejection {
    fn from(e: ViewError) -> Self {
        Rejection::Storage(e.to_string())
    }
}

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
        if let Some(published) = views::chain_rules(&*store)? {
            settings.adopt(&published.rules);
        }
        let fenced = store.get(&keys::fenced(&settings.store_id))?.is_some();
        Ok(Self {
            store,
            settings,
            env,
            clock,
            tip,
            rights_gate: Default::default(),
            fenced,
            index,
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
            Command::QuickCheckout(r) => self.checkout(r),
            Command::Wallet(r) => self.wallet(r),
            Command::ReturnSale(r) => self.return_sale(r),
            Command::Stock(r) => self.stock(r),
            Command::Transfer(r) => self.transfer(r),
            Command::ItemCheckout(r) => self.item_checkout(r),
            Command::HoldOrder(r) => self.hold(r),
            Command::VoidHeld(r) => self.void_held(r),
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

    fn register(&mut self, r: Request<NewMember>) -> Result<Outcome, Rejection> {
        let m = &r.body;
        self.check_phone_free(&m.phone, None)?;
        if let Some(card) = &m.card_no {
            self.check_card_free(card, None)?;
        }
        if let Some(referrer) = m.referrer
            && !self.member_exists(&referrer)?
        {
            return Err(Rejection::ReferrerNotFound(referrer));
        }
        let now_ms = (self.env.now_ms)();
        let member_id = MemberId::mint(now_ms, (self.env.random)());
        let profile = Profile {
            name: m.name.trim().to_owned(),
            phone: m.phone.clone(),
            card_no: m.card_no.clone(),
            birthday: m.birthday,
            gender: m.gender,
            tags: m.tags.clone(),
            notes: m.notes.clone(),
            tier: m
                .tier
                .clone()
                .unwrap_or_else(|| self.settings.default_tier.clone()),
            custom: m.custom.clone(),
            home_store: self.settings.store_id.clone(),
            join_date: self.settings.calendar.business_date(now_ms),
            referrer: m.referrer,
        };
        // A tier other than the chain's first is a discount given: the audit log shows it.
        let first = &self.settings.default_tier;
        let note = (profile.tier != *first).then(|| protocol::audit::Note::TierChanged {
            member_id,
            from: first.clone(),
            to: profile.tier.clone(),
        });
        let (_, change) = MemberDoc::create(&self.settings.store_id, now_ms as i64, &profile)?;
        // The member's own key (protocol::seal): their profile enters the log sealed under it,
        // and the key goes to headquarters beside the log. Written first, in the same group.
        let member_key = MemberKey::from_bytes(crate::sealed::draw(&mut *self.env.random));
        let change = member_key.seal(&protocol::seal::change_aad(&member_id), &change);
        let mut batch = Batch::default();
        batch.put(
            crate::sealed::key_of(&member_id),
            member_key.as_bytes().to_vec(),
        );
        self.store.apply(batch)?;
        let payload = Payload::MemberRegistered { member_id, change };
        let when = self.points_when(now_ms);
        let today = self.settings.calendar.business_date(now_ms);
        self.append_on(&r, now_ms, today, payload, note, |ov| {
            member_outcome(ov, &member_id, when)
        })
    }

    fn edit(&mut self, r: Request<MemberEdit>) -> Result<Outcome, Rejection> {
        let id = r.body.member_id;
        let doc_key = keys::document(&id);
        let Some(saved) = crate::sealed::read_bytes(&*self.store, &id, &doc_key)? else {
            return Err(Rejection::MemberNotFound(id));
        };
        let patch = &r.body.patch;
        if let Some(phone) = &patch.phone {
            self.check_phone_free(phone, Some(id))?;
        }
        if let Some(Some(card)) = &patch.card_no {
            self.check_card_free(card, Some(id))?;
        }
        let mut doc = MemberDoc::load(&saved)?;
        let from = doc.profile()?.tier;
        let now_ms = (self.env.now_ms)();
        match doc.edit(&self.settings.store_id, now_ms as i64, patch)? {
            Some(change) => {
                let change = match crate::sealed::member_key(&*self.store, &id)? {
                    crate::sealed::KeyState::Held(k) => {
                        k.seal(&protocol::seal::change_aad(&id), &change)
                    }
                    // A member from before sealing: their changes stay as they were.
                    _ => change,
                };
                let payload = Payload::MemberEdited {
                    member_id: id,
                    change,
                };
                // A tier set by hand is a discount given: the audit log shows it.
                let to = doc.profile()?.tier;
                let note = (to != from).then_some(protocol::audit::Note::TierChanged {
                    member_id: id,
                    from,
                    to,
                });
                let when = self.points_when(now_ms);
                let today = self.settings.calendar.business_date(now_ms);
                self.append_on(&r, now_ms, today, payload, note, |ov| {
                    member_outcome(ov, &id, when)
                })
            }
            None => {
                let when = self.points_when(now_ms);
                self.record_only(&r, |ov| member_outcome(ov, &id, when))
            }
        }
    }

    fn checkout(&mut self, r: Request<QuickSaleRequest>) -> Result<Outcome, Rejection> {
        if let Some(member) = &r.body.member_id
            && !self.member_exists(member)?
        {
            return Err(Rejection::MemberNotFound(*member));
        }
        let sale_id = SaleId::for_entry(&self.settings.store_id, self.tip.next_seq);
        let now_ms = (self.env.now_ms)();
        let today = self.settings.calendar.business_date(now_ms);
        let mut sale = r.body.price(
            sale_id.clone(),
            &self.settings.limits,
            &self.settings.earn,
            today,
        )?;
        let here = self.settings.store_id.clone();
        let mut ops = Vec::new();
        if let Some(member) = sale.member_id {
            let mut wallet = self.wallet_of(&member)?;
            if let Tender::StoredValue { principal, .. } = sale.tender {
                let amount = units(principal)?;
                let rule = self.settings.wallet.bonus_use;
                wallet.require_free(amount)?;
                let (paid, (p, b), owed) = match wallet.pay(&here, amount, rule) {
                    Ok((paid, split)) => (paid, split, 0),
                    Err(WalletError::RightsElsewhere { wants }) if r.body.offline_overdraft => {
                        self.overdraft(&mut wallet, amount, wants)?
                    }
                    Err(e) => return Err(e.into()),
                };
                sale.tender = Tender::StoredValue {
                    principal: fen(p),
                    bonus: fen(b),
                    overdraft: fen(owed),
                };
                ops.extend(paid);
            }
            let earned = units(Fen(sale.points_earned.0))?;
            ops.extend(wallet.earn_points(&here, lot_year(today), earned)?);
        }
        let member = sale.member_id;
        let payload = Payload::Sale { sale, ops };
        let when = (self.settings.wallet.points, today);
        self.append(&r, now_ms, payload, |ov| {
            sale_outcome(ov, &sale_id, member, &here, when)
        })
    }

    fn points_when(&self, now_ms: u64) -> (PointsPolicy, chrono::NaiveDate) {
        let today = self.settings.calendar.business_date(now_ms);
        (self.settings.wallet.points, today)
    }

    /// Offline, with the rights for a payment held elsewhere: pays what this store holds and lets
    /// the member owe the rest, within the chain's caps per member and per store.
    fn overdraft(
        &self,
        wallet: &mut Wallet,
        amount: u64,
        wants: Vec<(Counter, u64)>,
    ) -> Result<Paid, Rejection> {
        let here = &self.settings.store_id;
        let rules = &self.settings.wallet;
        // Lend only against a balance that covers the payment net of what is already owed, so
        // a receivable is always backed by rights held somewhere in the chain.
        let available = wallet.stored_value_free();
        if available < amount {
            return Err(WalletError::Insufficient {
                available,
                wanted: amount,
            }
            .into());
        }
        let held = wallet
            .held(&Counter::Principal, here)
            .saturating_add(wallet.held(&Counter::Bonus, here));
        let owed = amount.saturating_sub(held);
        let member_cap = units(rules.overdraft_member)?;
        let store_cap = units(rules.overdraft_store)?;
        let store_owed: u64 = self.read(&keys::receivable_total(here))?.unwrap_or(0);
        if owed + wallet.owed_at(here) > member_cap || owed + store_owed > store_cap {
            return Err(WalletError::RightsElsewhere { wants }.into());
        }
        if held == 0 {
            return Ok((Vec::new(), (0, 0), owed));
        }
        let (paid, split) = wallet.pay(here, held, rules.bonus_use)?;
        Ok((paid, split, owed))
    }

    /// A member's wallet as this store decides on it: holding nothing while it may not spend
    /// rights (fenced, or cut off past its lease), so a payment needs an ask or an overdraft.
    fn wallet_of(&self, member: &MemberId) -> Result<Wallet, StoreError> {
        let mut wallet: Wallet = self.read(&keys::wallet(member))?.unwrap_or_default();
        if self.fenced || self.rights_gate.is_shut() {
            wallet.freeze(&self.settings.store_id);
        }
        Ok(wallet)
    }

    fn wallet(&mut self, r: Request<WalletRequest>) -> Result<Outcome, Rejection> {
        let member = r.body.member_id;
        // An erased member's wallet stays, under their id: headquarters may still take its
        // rights back, and stored value a later return put back on it is refunded in cash.
        let erased = || {
            crate::sealed::member_key(&*self.store, &member)
                .map(|k| k == crate::sealed::KeyState::Erased)
        };
        let after_erasure = matches!(
            r.body.action,
            WalletAction::Recall { .. } | WalletAction::Refund { .. }
        );
        let known = self.member_exists(&member)? || (after_erasure && erased()?);
        if !known {
            return Err(Rejection::MemberNotFound(member));
        }
        let now_ms = (self.env.now_ms)();
        let today = self.settings.calendar.business_date(now_ms);
        let here = self.settings.store_id.clone();
        let rules = &self.settings.wallet;
        let mut wallet = self.wallet_of(&member)?;
        // Handing rights back to headquarters is what a store that may not spend should do.
        if matches!(r.body.action, WalletAction::Recall { .. }) {
            wallet.frozen_at = None;
        }
        let (event, ops) = match &r.body.action {
            WalletAction::TopUp { paid, rule } => {
                let paid = self.amount(paid, rules.top_up_max)?;
                let bonus = top_up_bonus(&rules.top_up_rules, rule.as_deref(), paid)?;
                let ops = wallet.top_up(&here, units(paid)?, units(bonus)?)?;
                let event = WalletEvent::TopUp {
                    paid,
                    bonus,
                    rule: rule.clone(),
                    tender: Tender::Cash {
                        tendered: paid,
                        change: Fen(0),
                    },
                };
                (event, ops)
            }
            WalletAction::AdjustPoints { points, reason } => {
                check_text(reason, REASON_CHARS_MAX)?;
                let magnitude = points.unsigned_abs();
                if magnitude > protocol::wallet::POINTS_ADJUST_MAX {
                    return Err(WalletError::PointsOutOfRange.into());
                }
                let ops = match points.signum() {
                    1 => wallet.earn_points(&here, lot_year(today), magnitude)?,
                    -1 => wallet.spend_points(&here, magnitude, today, &rules.points)?,
                    _ => return Err(WalletError::NotPositive.into()),
                };
                let event = WalletEvent::PointsAdjusted {
                    points: Points(*points),
                    reason: reason.trim().to_owned(),
                };
                (event, ops)
            }
            WalletAction::SellCard { name, kind, price } => {
                check_text(name, CARD_NAME_CHARS_MAX)?;
                let price = self.amount(price, self.settings.limits.amount_max)?;
                let card = CardId::for_entry(&here, self.tip.next_seq);
                // A card whose last day has passed is not sold.
                let last = match kind {
                    CardKind::Count { valid_to, .. } => *valid_to,
                    CardKind::Period { to, .. } => Some(*to),
                };
                if last.is_some_and(|last| last < today) {
                    return Err(WalletError::CardExpired(card).into());
                }
                let ops = wallet.sell_card(&here, &card, kind)?;
                let event = WalletEvent::CardSold {
                    card,
                    name: name.trim().to_owned(),
                    kind: kind.clone(),
                    price,
                    tender: Tender::Cash {
                        tendered: price,
                        change: Fen(0),
                    },
                };
                (event, ops)
            }
            WalletAction::IssueCoupon {
                name,
                offer,
                from,
                to,
            } => {
                check_text(name, CARD_NAME_CHARS_MAX)?;
                check_offer(offer)?;
                let coupon = CardId::for_entry(&here, self.tip.next_seq);
                let ops = wallet.issue_coupon(&here, &coupon, (*from, *to))?;
                let event = WalletEvent::CouponIssued {
                    coupon,
                    name: name.trim().to_owned(),
                    offer: offer.clone(),
                    from: *from,
                    to: *to,
                };
                (event, ops)
            }
            WalletAction::UseCard { card, uses } => {
                let ops = wallet.use_card(&here, card, *uses, today)?;
                let event = WalletEvent::CardUsed {
                    card: card.clone(),
                    uses: *uses,
                };
                (event, ops)
            }
            WalletAction::Refund { principal, reason } => {
                check_text(reason, REASON_CHARS_MAX)?;
                let principal = self.amount(principal, rules.top_up_max)?;
                let (ops, forfeited) = wallet.refund(&here, units(principal)?)?;
                let event = WalletEvent::Refunded {
                    principal,
                    bonus_forfeited: fen(forfeited),
                    reason: reason.trim().to_owned(),
                };
                (event, ops)
            }
            WalletAction::SetPassword { hash } => {
                // The newest change wins everywhere, by (HLC, store): one this store writes must
                // come after the one it replaces, or the old password would stay in force.
                let next = self.clock.clone().tick(now_ms);
                if let Some((at, by, _)) = &wallet.password
                    && (next, &here) <= (*at, by)
                {
                    return Err(Rejection::ClockBehind { at_ms: at.wall_ms });
                }
                (WalletEvent::PasswordSet { hash: hash.clone() }, Vec::new())
            }
            WalletAction::PasswordFailed => (WalletEvent::PasswordFailed, Vec::new()),
            WalletAction::CollectOverdraft => {
                let amount = wallet.collectable_at(&here);
                if amount == 0 {
                    return Err(WalletError::NotPositive.into());
                }
                let (ops, _) = wallet.pay(&here, amount, rules.bonus_use)?;
                let event = WalletEvent::OverdraftCollected {
                    amount: fen(amount),
                };
                (event, ops)
            }
            WalletAction::Recall { counter, units } => {
                let give = wallet.held(counter, &here).min(*units);
                if give == 0 {
                    let policy = rules.points;
                    return self.record_only(&r, |ov| {
                        let wallet = wallet_summary(ov, &member, &here, today, &policy)?;
                        Ok(Outcome::Wallet {
                            member_id: member,
                            seq: None,
                            wallet,
                        })
                    });
                }
                let op = wallet.move_rights(&here, &StoreId::hq(), counter, give)?;
                let event = WalletEvent::Rights {
                    movement: Movement::Recall,
                };
                (event, vec![op])
            }
        };
        let payload = Payload::Wallet {
            member_id: member,
            event,
            ops,
        };
        let seq = self.tip.next_seq;
        let policy = self.settings.wallet.points;
        self.append(&r, now_ms, payload, |ov| {
            Ok(Outcome::Wallet {
                member_id: member,
                seq: Some(seq),
                wallet: wallet_summary(ov, &member, &here, today, &policy)?,
            })
        })
    }

    fn return_sale(&mut self, r: Request<SaleReturn>) -> Result<Outcome, Rejection> {
        let id = r.body.sale_id.clone();
        if let Some(view) = self.read::<views::ItemSaleView>(&keys::item_sale(&id))? {
            return self.return_items(&r, view);
        }
        let Some(view) = self.read::<SaleView>(&keys::sale(&id))? else {
            return Err(Rejection::SaleNotFound(id));
        };
        if r.body.lines.is_some() {
            return Err(protocol::returns::ReturnError::Lines.into());
        }
        let here = self.settings.store_id.clone();
        if view.origin != here {
            return Err(Rejection::ReturnElsewhere(id, view.origin));
        }
        if view.returned_by.is_some() {
            return Err(Rejection::AlreadyReturned(id));
        }
        check_text(&r.body.reason, REASON_CHARS_MAX)?;
        let sale = &view.sale;
        let mut ops = Vec::new();
        let mut refund = sale.tender.clone();
        if let Some(member) = sale.member_id {
            let mut wallet = self.wallet_of(&member)?;
            let earned = units(Fen(sale.points_earned.0))?;
            if earned > 0 {
                let lot = Counter::Points {
                    year: lot_year(view.business_date),
                };
                ops.push(wallet.take(&here, &lot, earned)?);
            }
            if let Tender::StoredValue {
                principal,
                bonus,
                overdraft,
            } = sale.tender
            {
                // What the member still owes for this sale is forgiven; what they already paid
                // off comes back as principal, like the rest.
                let forgiven = units(overdraft)?.min(wallet.owed_at(&here));
                let paid_off = units(overdraft)? - forgiven;
                let principal = units(principal)? + paid_off;
                for (counter, units) in [
                    (Counter::Principal, principal),
                    (Counter::Bonus, units(bonus)?),
                ] {
                    if units > 0 {
                        ops.push(wallet.give(&here, &counter, units)?);
                    }
                }
                refund = Tender::StoredValue {
                    principal: fen(principal),
                    bonus,
                    overdraft: fen(forgiven),
                };
            }
        }
        let payload = Payload::Return {
            sale: id.clone(),
            member_id: sale.member_id,
            amount: sale.amount,
            refund,
            reason: r.body.reason.trim().to_owned(),
            ops,
        };
        let now_ms = (self.env.now_ms)();
        let when = self.points_when(now_ms);
        let member = sale.member_id;
        self.append(&r, now_ms, payload, |ov| {
            sale_outcome(ov, &id, member, &here, when)
        })
    }

    /// A positive amount in the store's currency, at most `max`.
    fn amount(&self, money: &Money, max: Fen) -> Result<Fen, Rejection> {
        let currency = self.settings.limits.currency;
        if money.currency != currency {
            return Err(SaleError::Currency {
                expected: currency,
                got: money.currency,
            }
            .into());
        }
        let fen = money.to_fen().map_err(SaleError::from)?;
        if fen.0 <= 0 {
            return Err(WalletError::NotPositive.into());
        }
        if fen > max {
            return Err(SaleError::TooLarge { amount: fen, max }.into());
        }
        Ok(fen)
    }

    /// How far the hub's feed is applied here (visible at once, as every write).
    pub fn feed_applied(&self) -> Result<u64, StoreError> {
        Ok(self.read(keys::FEED_APPLIED)?.unwrap_or(0))
    }

    /// Applies feed items after the position already applied; positions make this idempotent.
    pub fn apply_feed(
        &mut self,
        upto: u64,
        items: Vec<FeedItem>,
        member_keys: Vec<(MemberId, Option<MemberKey>)>,
    ) -> Result<Reply, Rejection> {
        let applied = self.feed_applied()?;
        if upto <= applied {
            return Ok(Reply {
                outcome: Outcome::FeedApplied { upto: applied },
                replayed: true,
            });
        }
        let now_ms = (self.env.now_ms)();
        let mut ov = Overlay::new(&*self.store);
        // The keys that unlock these items go in the same batch, before them.
        for (member, key) in member_keys {
            use crate::sealed::KeyState;
            match (key, crate::sealed::member_key(&ov, &member)?) {
                (Some(key), KeyState::Unknown) => {
                    ov.put(crate::sealed::key_of(&member), key.as_bytes().to_vec());
                }
                (Some(_), KeyState::Held(_) | KeyState::Erased) => {}
                (None, KeyState::Erased) => {}
                (None, KeyState::Held(_) | KeyState::Unknown) => {
                    views::erase_member(&mut ov, &member)?;
                }
            }
        }
        for item in items
            .into_iter()
            .filter(|i| i.position > applied && i.position <= upto)
        {
            if let Ok(entry) = Entry::decode(&item.entry) {
                if entry.origin == self.settings.store_id {
                    continue;
                }
                if let Err(skew) = self.clock.observe(now_ms, entry.hlc) {
                    tracing::warn!(origin = %entry.origin, seq = entry.seq, %skew, "feed entry from the future");
                }
            }
            let position = item.position;
            let entry = protocol::sync::thicken_entry(item.entry, |member, prefix| {
                views::change_starting(&ov, member, prefix)
            })
            .map_err(|e| Rejection::FeedUnreadable {
                position,
                reason: e.to_string(),
            })?;
            views::apply_foreign_entry(&mut ov, &entry)?;
            let record = views::FeedRecord {
                before_seq: self.tip.next_seq,
                entry,
            };
            ov.put(keys::feed(item.position), views::encode(&record));
        }
        ov.put(keys::FEED_APPLIED.to_vec(), views::encode(&upto));
        self.store.apply(ov.into_batch())?;
        if let Some(published) = views::chain_rules(&*self.store)? {
            self.settings.adopt(&published.rules);
        }
        if !self.fenced
            && self
                .store
                .get(&keys::fenced(&self.settings.store_id))?
                .is_some()
        {
            self.fenced = true;
            tracing::error!(
                "headquarters fenced this store and took back the member rights it held: \
                 stored value, points, cards and coupons stop here; cash sales go on"
            );
        }
        Ok(Reply {
            outcome: Outcome::FeedApplied { upto },
            replayed: false,
        })
    }

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
        let mut ov = Overlay::new(&*self.store);
        let mut tip = self.tip;
        // The note is booked today, when it was done, for the day's audit log.
        let today = self.settings.calendar.business_date(now_ms);
        let note = note.map(|note| (Payload::Audit { note }, today));
        for (payload, business_date) in std::iter::once((payload, business_date)).chain(note) {
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

/// A coupon's terms, checked: amounts within a sale's range, a percentage up to 100.
fn check_offer(offer: &protocol::pricing::Coupon) -> Result<(), Rejection> {
    use protocol::pricing::Coupon;
    let fen_ok = |f: &Fen| (0..=100_000_000).contains(&f.0);
    let ok = match offer {
        // 满减 takes off less than the spend it needs (满5减10 would make a 6.00 basket free;
        // a coupon with no threshold is a 代金券).
        Coupon::AmountOff { threshold, off } => {
            fen_ok(threshold) && fen_ok(off) && off.0 > 0 && off.0 < threshold.0
        }
        Coupon::PercentOff {
            percent,
            threshold,
            cap,
        } => {
            *percent > rust_decimal::Decimal::ZERO
                && *percent <= rust_decimal::Decimal::ONE_HUNDRED
                && fen_ok(threshold)
                && cap.as_ref().is_none_or(fen_ok)
        }
        Coupon::Voucher { value, threshold } => fen_ok(value) && value.0 > 0 && fen_ok(threshold),
        Coupon::Experience { .. } => true,
    };
    match ok {
        true => Ok(()),
        false => Err(WalletError::NotPositive.into()),
    }
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

/// Where a command's result goes.
pub type Replier = oneshot::Sender<Result<Reply, Rejection>>;
type Envelope = (Message, Replier);

/// How the HTTP handlers reach the journal.
#[derive(Clone)]
pub struct JournalHandle {
    commands: mpsc::Sender<Envelope>,
    log_len: watch::Receiver<u64>,
}

impl JournalHandle {
    pub async fn send(&self, message: impl Into<Message>) -> Result<Reply, Rejection> {
        let (reply, answer) = oneshot::channel();
        self.send_with(message, reply).await?;
        answer.await.map_err(|_| Rejection::Unavailable)?
    }

    /// Queues a request or control message whose result goes to `reply` (for another task to
    /// wait on).
    pub async fn send_with(
        &self,
        message: impl Into<Message>,
        reply: Replier,
    ) -> Result<(), Rejection> {
        self.commands
            .send((message.into(), reply))
            .await
            .map_err(|_| Rejection::Unavailable)
    }

    /// The length of this store's own log on disk, updated after every flush.
    pub fn log_len(&self) -> watch::Receiver<u64> {
        self.log_len.clone()
    }
}

/// Runs the journal on its own thread (flushes block). Returns the handle and the thread, which
/// ends when every handle is dropped or when storage fails.
pub fn spawn(mut journal: Journal) -> (JournalHandle, std::thread::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::channel::<Envelope>(4 * GROUP_COMMIT_MAX);
    let (log_len_tx, log_len) = watch::channel(journal.tip().next_seq - 1);
    let thread = std::thread::Builder::new()
        .name("journal".to_owned())
        .spawn(move || {
            let mut group = Vec::with_capacity(GROUP_COMMIT_MAX);
            // Requests waiting for the feed to bring granted rights (`Control::AfterFeed`).
            let mut parked: Tracker<(Command, Replier)> = Tracker::default();
            // A position that cannot be read lets a waiting command run, to meet the failure.
            let fed_to = |journal: &Journal| journal.feed_applied().unwrap_or(u64::MAX);
            while let Some(first) = inbox.blocking_recv() {
                group.push(first);
                while group.len() < GROUP_COMMIT_MAX {
                    match inbox.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let mut results = Vec::with_capacity(group.len());
                for (message, reply) in group.drain(..) {
                    let control = match message {
                        Message::Command(command) => {
                            results.push((journal.handle(*command), reply));
                            continue;
                        }
                        Message::Control(control) => control,
                    };
                    match control {
                        Control::AfterFeed { .. } if reply.is_closed() => {}
                        Control::AfterFeed { upto, then } if fed_to(&journal) < upto => {
                            parked.granted(then.key().clone(), upto, (*then, reply));
                        }
                        Control::AfterFeed { then, .. } => {
                            results.push((journal.handle(*then), reply));
                        }
                        Control::Withdraw { key } => {
                            for (_, withdrawn) in parked.withdraw(&key) {
                                let _ = withdrawn.send(Err(Rejection::Withdrawn));
                            }
                            let _ = reply.send(Err(Rejection::Withdrawn));
                        }
                        Control::Holding { member, counters } => {
                            let holding = journal.holding(&member, &counters).map(|h| Reply {
                                outcome: Outcome::Holding(h),
                                replayed: false,
                            });
                            let _ = reply.send(holding);
                        }
                        Control::ApplyFeed { upto, items, keys } => {
                            results.push((journal.apply_feed(upto, items, keys), reply));
                            for (command, reply) in parked.due(fed_to(&journal)) {
                                if !reply.is_closed() {
                                    results.push((journal.handle(command), reply));
                                }
                            }
                        }
                    }
                }
                // Whoever gave up waiting (the till's request timed out) is not served later.
                parked.retain(|(_, reply)| !reply.is_closed());
                if results.is_empty() {
                    continue;
                }
                let flushed = journal.flush();
                for (result, reply) in results {
                    let result = match (&flushed, result) {
                        (Err(e), Ok(_)) => Err(Rejection::Storage(format!(
                            "{e}; the outcome is unknown: retry with the same Idempotency-Key"
                        ))),
                        (_, result) => result,
                    };
                    let _ = reply.send(result);
                }
                if let Err(e) = flushed {
                    // Fail-stop: the group may or may not be on disk. The tills were told to retry
                    // with the same key, which is safe either way once the node is restarted.
                    tracing::error!(error = %e, "flush failed; the node stops");
                    std::process::exit(70);
                }
                log_len_tx.send_replace(journal.tip().next_seq - 1);
            }
        })
        .expect("spawning the journal thread");
    (JournalHandle { commands, log_len }, thread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use protocol::{Money, money::parse_amount};

    fn settings() -> Settings {
        Settings {
            store_id: StoreId::parse("S001").unwrap(),
            calendar: StoreCalendar::default(),
            limits: SaleLimits::default(),
            earn: EarnRule::default(),
            default_tier: "standard".into(),
            max_forward_skew_ms: 1_000,
            wallet: WalletRules {
                top_up_rules: vec![protocol::wallet::TopUpRule {
                    id: "500+100".into(),
                    pay_at_least: Fen(50_000),
                    bonus: Fen(10_000),
                }],
                ..WalletRules::default()
            },
            pricing: Default::default(),
            rates: Default::default(),
            backdate_days_max: 7,
            override_floor_percent: 90,
        }
    }

    fn seeded_env(seed: u64) -> Environment {
        let mut now = 1_795_451_400_000 + seed;
        let mut state = seed as u128 + 1;
        Environment {
            now_ms: Box::new(move || {
                now += 7;
                now
            }),
            random: Box::new(move || {
                state = state
                    .wrapping_mul(0x2d99_7879_26d4_6932_a4c1)
                    .wrapping_add(1);
                state
            }),
        }
    }

    fn request<T>(key: &str, body: T) -> Request<T> {
        Request {
            key: TxId::parse(key).unwrap(),
            fingerprint: [key.len() as u8; 32],
            staff: StaffId::system(),
            body,
        }
    }

    fn new_member(phone: &str) -> NewMember {
        NewMember::named("会员", Phone::parse(phone).unwrap())
    }

    fn sale(member: Option<MemberId>, amount: &str) -> QuickSaleRequest {
        let amount = Money::new(parse_amount(amount).unwrap(), protocol::Currency::CNY);
        QuickSaleRequest {
            member_id: member,
            amount,
            category: None,
            cash_tendered: None,
            pay_with: protocol::sale::PayWith::Cash,
            offline_overdraft: false,
        }
    }

    /// A store that counts the flushes reaching it.
    #[derive(Default)]
    struct Counted(MemStore, std::sync::atomic::AtomicUsize);

    impl Store for Counted {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<crate::store::KeyValue>, StoreError> {
            self.0.scan_prefix(prefix)
        }
        fn scan_prefix_rev(
            &self,
            prefix: &[u8],
            limit: usize,
        ) -> Result<Vec<crate::store::KeyValue>, StoreError> {
            self.0.scan_prefix_rev(prefix, limit)
        }
        fn apply(&self, batch: crate::store::Batch) -> Result<(), StoreError> {
            self.0.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.flush()
        }
    }

    /// A spend waiting for rights headquarters granted waits while the feed is short of the
    /// grant, then runs in the same group as the feed that brings it: one flush for both. One
    /// whose till gave up, or that the till withdrew, is not run; one whose feed is already
    /// here runs at once.
    #[tokio::test]
    async fn a_command_after_the_feed_runs_with_it_in_one_flush() {
        let store = Arc::new(Counted::default());
        let journal = Journal::open(store.clone(), settings(), seeded_env(1)).unwrap();
        let (handle, thread) = spawn(journal);
        let after = |key: &str, phone: &str, upto: u64| Control::AfterFeed {
            upto,
            then: Box::new(Command::RegisterMember(request(key, new_member(phone)))),
        };
        let feed = |upto: u64| Control::ApplyFeed {
            upto,
            items: Vec::new(),
            keys: Vec::new(),
        };
        let (waiting, mut result) = oneshot::channel();
        let parked = after("reg-00000001", "13800000001", 2);
        handle.send_with(parked, waiting).await.unwrap();
        let (abandoned, gave_up) = oneshot::channel();
        let parked = after("reg-00000002", "13800000002", 2);
        handle.send_with(parked, abandoned).await.unwrap();
        drop(gave_up);

        handle.send(feed(1)).await.unwrap();
        assert!(
            result.try_recv().is_err(),
            "the feed is not at the grant yet"
        );
        let flushes = store.1.load(std::sync::atomic::Ordering::SeqCst);
        handle.send(feed(2)).await.unwrap();
        member_of(result.await.unwrap().unwrap());
        assert_eq!(
            store.1.load(std::sync::atomic::Ordering::SeqCst),
            flushes + 1,
            "the feed and the waiting command share one flush"
        );
        // The abandoned registration never ran: its phone is free.
        let again = request("reg-00000003", new_member("13800000002"));
        member_of(handle.send(Command::RegisterMember(again)).await.unwrap());
        let ready = after("reg-00000004", "13800000004", 1);
        member_of(handle.send(ready).await.unwrap());

        // Withdrawn while waiting: answered so, and not run when the feed gets there.
        let (waiting, withdrawn) = oneshot::channel();
        let parked = after("reg-00000005", "13800000005", 3);
        handle.send_with(parked, waiting).await.unwrap();
        let key = TxId::parse("reg-00000005").unwrap();
        let withdraw = handle.send(Control::Withdraw { key }).await;
        assert!(
            matches!(withdraw, Err(Rejection::Withdrawn)),
            "{withdraw:?}"
        );
        let answer = withdrawn.await.unwrap();
        assert!(matches!(answer, Err(Rejection::Withdrawn)), "{answer:?}");
        handle.send(feed(3)).await.unwrap();
        // Its till gone before it was queued, with the feed already here: not run either.
        let (gone, dropped) = oneshot::channel();
        drop(dropped);
        let late = after("reg-00000006", "13800000006", 1);
        handle.send_with(late, gone).await.unwrap();
        for (key, phone) in [
            ("reg-00000007", "13800000005"),
            ("reg-00000008", "13800000006"),
        ] {
            let free = request(key, new_member(phone));
            member_of(handle.send(Command::RegisterMember(free)).await.unwrap());
        }
        drop(handle);
        thread.join().unwrap();
    }

    fn member_of(reply: Reply) -> MemberId {
        match reply.outcome {
            Outcome::Member { member, .. } => member.member_id,
            other => panic!("not a member: {other:?}"),
        }
    }

    /// A payment password changed at a store whose clock is behind the change it would replace
    /// is refused (it would be ordered first and lose), instead of answered and ignored.
    #[test]
    fn a_password_change_this_store_cannot_order_after_the_last_one_is_refused() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store, settings(), seeded_env(3)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13900000001"),
                )))
                .unwrap(),
        );
        let set = |key: &str| {
            Command::Wallet(request(
                key,
                WalletRequest {
                    member_id: member,
                    action: WalletAction::SetPassword {
                        hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                    },
                },
            ))
        };
        journal.handle(set("pw-00000001")).unwrap();
        // S002, whose clock is a day ahead of this one, changed it since.
        let s002 = StoreId::parse("S002").unwrap();
        let later = Entry {
            origin: s002.clone(),
            seq: 1,
            hlc: Hlc {
                wall_ms: 1_795_451_400_000 + 86_400_000,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse("pw-s002-0001").unwrap(),
            prev_hash: protocol::EntryHash::GENESIS,
            payload: Payload::Wallet {
                member_id: member,
                event: WalletEvent::PasswordSet {
                    hash: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXI".into(),
                },
                ops: Vec::new(),
            },
        };
        let items = vec![FeedItem {
            position: 1,
            entry: later.encode(),
        }];
        journal.apply_feed(1, items, Vec::new()).unwrap();
        assert!(matches!(
            journal.handle(set("pw-00000002")),
            Err(Rejection::ClockBehind { .. })
        ));
    }

    /// A tier set by hand and a held order voided are in the log as audit notes, the tier's
    /// right after the profile change and under the same request key; the order is gone.
    #[test]
    fn a_tier_change_and_a_void_leave_an_audit_note() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(4)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13900000002"),
                )))
                .unwrap(),
        );
        let tier = |key: &str, tier: &str| {
            let patch = protocol::member::ProfilePatch {
                tier: Some(tier.into()),
                ..Default::default()
            };
            Command::EditMember(request(
                key,
                MemberEdit {
                    member_id: member,
                    patch,
                },
            ))
        };
        journal.handle(tier("tier-00000001", "金卡")).unwrap();
        journal.flush().unwrap();
        // A held order as the till parked it (holding prices a basket against the catalogue).
        let view = held::HeldView {
            order_id: protocol::DocId::for_entry("H", &settings().store_id, 1),
            order: held::HeldOrder {
                member_id: Some(member),
                lines: Vec::new(),
                points: 0,
                coupon: None,
                served_by: None,
                note: String::new(),
            },
            held_by: StaffId::parse("c01").unwrap(),
            held_at_ms: 0,
        };
        let mut batch = Batch::default();
        batch.put(held::key(&view.order_id), views::encode(&view));
        store.apply(batch).unwrap();
        journal
            .handle(Command::VoidHeld(request(
                "void-00000001",
                view.order_id.clone(),
            )))
            .unwrap();
        journal.flush().unwrap();
        let log: Vec<Entry> = (1..=4)
            .map(|seq| {
                let bytes = store.get(&keys::log(&settings().store_id, seq)).unwrap();
                assert!(bytes.is_some(), "no entry {seq}");
                Entry::decode(&bytes.unwrap()).unwrap()
            })
            .collect();
        assert!(matches!(log[1].payload, Payload::MemberEdited { .. }));
        assert_eq!(
            log[2].payload,
            Payload::Audit {
                note: protocol::audit::Note::TierChanged {
                    member_id: member,
                    from: "standard".into(),
                    to: "金卡".into(),
                }
            }
        );
        assert_eq!(log[2].tx, log[1].tx);
        assert!(matches!(
            &log[3].payload,
            Payload::Audit { note: protocol::audit::Note::HeldVoided { order, lines: 0, .. } }
                if *order == view.order_id
        ));
        assert!(store.get(&held::key(&view.order_id)).unwrap().is_none());
        // The same tier again changes nothing and notes nothing.
        journal.handle(tier("tier-00000002", "金卡")).unwrap();
        journal.flush().unwrap();
        assert!(
            store
                .get(&keys::log(&settings().store_id, 5))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn unflushed_writes_vanish_in_a_crash_and_the_chain_continues() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(1)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13800000001"),
                )))
                .unwrap(),
        );
        journal.flush().unwrap();
        journal
            .handle(Command::QuickCheckout(request(
                "sale-0000001",
                sale(Some(member), "10"),
            )))
            .unwrap();
        store.crash(); // before the flush: the sale was never acknowledged
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(2)).unwrap();
        assert_eq!(journal.tip().next_seq, 2);
        let again = journal
            .handle(Command::QuickCheckout(request(
                "sale-0000001",
                sale(Some(member), "10"),
            )))
            .unwrap();
        assert!(!again.replayed, "the lost sale is sold anew, once");
        journal.flush().unwrap();
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.entries, 2);
    }

    #[test]
    fn views_of_another_version_are_rebuilt_from_the_log_on_open() {
        let store = Arc::new(MemStore::default());
        assert!(
            !views::ensure_current(&*store, &StoreCalendar::default()).unwrap(),
            "an empty store has nothing to rebuild"
        );
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(3)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13800000001"),
                )))
                .unwrap(),
        );
        journal
            .handle(Command::QuickCheckout(request(
                "sale-0000001",
                sale(Some(member), "10"),
            )))
            .unwrap();
        journal.flush().unwrap();
        assert!(
            !views::ensure_current(&*store, &StoreCalendar::default()).unwrap(),
            "current views are kept"
        );
        // An older version wrote these views: a wallet in a shape this one cannot read.
        let mut old = crate::store::Batch::default();
        old.put(keys::wallet(&member), vec![0xff; 3]);
        old.delete(keys::VIEWS_VERSION_KEY.to_vec());
        store.apply(old).unwrap();
        assert!(views::Views::new(store.clone()).wallet(&member).is_err());
        assert!(views::ensure_current(&*store, &StoreCalendar::default()).unwrap());
        let wallet = views::Views::new(store.clone()).wallet(&member).unwrap();
        assert!(
            wallet
                .counters
                .keys()
                .any(|c| matches!(c, Counter::Points { .. }))
        );
        assert!(
            views::rebuild(&*store, &StoreCalendar::default())
                .unwrap()
                .is_clean()
        );
    }

    #[test]
    fn the_same_seed_writes_the_same_log() {
        let run = || {
            let store = Arc::new(MemStore::default());
            let mut journal = Journal::open(store.clone(), settings(), seeded_env(9)).unwrap();
            let m = member_of(
                journal
                    .handle(Command::RegisterMember(request(
                        "reg-00000001",
                        new_member("13800000001"),
                    )))
                    .unwrap(),
            );
            for n in 0..20 {
                let amount = format!("{}.{:02}", n * 3 + 1, n);
                journal
                    .handle(Command::QuickCheckout(request(
                        &format!("sale-{n:07}"),
                        sale(Some(m), &amount),
                    )))
                    .unwrap();
            }
            journal.flush().unwrap();
            journal.tip()
        };
        assert_eq!(run(), run());
    }

    /// A member who joined at `at`, as another store's feed brings them.
    fn remote_profile(at: &StoreId, phone: &str) -> Profile {
        Profile {
            name: "异地会员".into(),
            phone: Phone::parse(phone).unwrap(),
            card_no: None,
            birthday: None,
            gender: Gender::Unspecified,
            tags: Default::default(),
            notes: String::new(),
            tier: "standard".into(),
            custom: Default::default(),
            home_store: at.clone(),
            join_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            referrer: None,
        }
    }

    /// An entry of `origin`'s log as the feed carries it (its chain is the hub's concern).
    fn foreign_entry(origin: &StoreId, seq: u64, payload: Payload) -> Entry {
        Entry {
            origin: origin.clone(),
            seq,
            hlc: Hlc {
                wall_ms: 1_795_451_400_000,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{}-key-{seq:04}", origin.as_str().to_lowercase())).unwrap(),
            prev_hash: protocol::entry::EntryHash::GENESIS,
            payload,
        }
    }

    #[test]
    fn a_bad_feed_entry_is_skipped_and_the_feed_goes_on() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(4)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let profile = remote_profile(&s002, "13800000002");
        let (_, change) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let member_id = MemberId::mint(1, 2);
        let foreign = |seq, payload| foreign_entry(&s002, seq, payload);
        let damaged = foreign(
            1,
            Payload::MemberEdited {
                member_id,
                change: vec![1, 2, 3],
            },
        );
        let good = foreign(2, Payload::MemberRegistered { member_id, change });
        let items = vec![
            FeedItem {
                position: 1,
                entry: vec![0xff, 0x00],
            },
            FeedItem {
                position: 2,
                entry: damaged.encode(),
            },
            FeedItem {
                position: 3,
                entry: good.encode(),
            },
        ];
        journal.apply_feed(3, items, Vec::new()).unwrap();
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 3);
        assert_eq!(
            views.member_by_phone(&profile.phone).unwrap(),
            Some(member_id)
        );
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.feed_entries, 3);
    }

    /// The feed's member changes come thin from sync version 3: the store makes them whole
    /// from the changes it holds and keeps the bytes as they were made; one that follows a
    /// change not held here is refused and nothing is applied.
    /// A member from before sealing, erased at headquarters while an edit of theirs was still
    /// on its way: the edit arrives thin, is made whole from the hashes their tombstone kept,
    /// and skipped — the feed goes on, and nothing of them comes back.
    #[test]
    fn a_thin_change_of_an_erased_member_does_not_stop_the_feed() {
        use protocol::member::ProfilePatch;
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let (mut doc, created) =
            MemberDoc::create(&s002, 1, &remote_profile(&s002, "13800000004")).unwrap();
        let patch = ProfilePatch {
            notes: Some("常买绿茶".to_owned()),
            ..ProfilePatch::default()
        };
        let edit = doc.edit(&s002, 2, &patch).unwrap().unwrap();
        let member_id = MemberId::mint(1, 4);
        let registered = foreign_entry(
            &s002,
            1,
            Payload::MemberRegistered {
                member_id,
                change: created,
            },
        );
        let mut edited = foreign_entry(
            &s002,
            2,
            Payload::MemberEdited {
                member_id,
                change: edit,
            },
        );
        if let Payload::MemberEdited { change, .. } = &mut edited.payload {
            *change = protocol::thin::thin(change);
        }
        let feed = |position: u64, entry: &Entry| FeedItem {
            position,
            entry: entry.encode(),
        };
        journal
            .apply_feed(1, vec![feed(1, &registered)], Vec::new())
            .unwrap();
        journal
            .apply_feed(2, vec![feed(2, &edited)], vec![(member_id, None)])
            .unwrap();
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 2);
        assert_eq!(views.member(&member_id).unwrap(), None);
        let phone = Phone::parse("13800000004").unwrap();
        assert_eq!(views.member_by_phone(&phone).unwrap(), None);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    #[test]
    fn a_thin_member_change_from_the_feed_is_made_whole() {
        use protocol::member::ProfilePatch;
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let profile = remote_profile(&s002, "13800000003");
        let (mut doc, created) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let rename = |doc: &mut MemberDoc, name: &str| {
            let patch = ProfilePatch {
                name: Some(name.to_owned()),
                ..ProfilePatch::default()
            };
            doc.edit(&s002, 2, &patch).unwrap().unwrap()
        };
        let mut elsewhere = doc.clone();
        let renamed = rename(&mut doc, "改名会员");
        rename(&mut elsewhere, "别处");
        let unseen = rename(&mut elsewhere, "别处二");
        let member_id = MemberId::mint(1, 3);
        let item = |position, seq, payload| {
            let entry = foreign_entry(&s002, seq, payload);
            let whole = entry.encode();
            let mut thin = entry;
            if let Payload::MemberRegistered { change, .. } | Payload::MemberEdited { change, .. } =
                &mut thin.payload
            {
                *change = protocol::thin::thin(change);
            }
            (
                FeedItem {
                    position,
                    entry: thin.encode(),
                },
                whole,
            )
        };
        let (registered, registered_whole) = item(
            1,
            1,
            Payload::MemberRegistered {
                member_id,
                change: created,
            },
        );
        let (edited, edited_whole) = item(
            2,
            2,
            Payload::MemberEdited {
                member_id,
                change: renamed,
            },
        );
        assert_ne!(edited.entry, edited_whole, "an edit has something to thin");
        for (upto, items) in [(1, vec![registered]), (2, vec![edited])] {
            journal.apply_feed(upto, items, Vec::new()).unwrap();
        }
        let (lost, _) = item(
            3,
            3,
            Payload::MemberEdited {
                member_id,
                change: unseen,
            },
        );
        assert!(matches!(
            journal.apply_feed(3, vec![lost], Vec::new()),
            Err(Rejection::FeedUnreadable { position: 3, .. })
        ));
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 2);
        assert_eq!(
            views.member(&member_id).unwrap().unwrap().profile.name,
            "改名会员"
        );
        let kept: Vec<Vec<u8>> = [1, 2]
            .iter()
            .map(|p| {
                let record: views::FeedRecord = journal.read(&keys::feed(*p)).unwrap().unwrap();
                record.entry
            })
            .collect();
        assert_eq!(kept, vec![registered_whole, edited_whole]);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// 会员搜索 through its index answers exactly what reading every member would: the
        /// first members in id order that match, after registrations, renames and new phones;
        /// and the index rebuilds from the log to the same records.
        #[test]
        fn search_through_the_index_answers_what_reading_every_member_would(
            names in proptest::collection::vec("[张王李芳伟aB]{1,4}", 1..30),
            edits in proptest::collection::vec(
                (0usize..30, "[张王李芳伟aB]{1,4}", proptest::option::of(0u32..40)),
                0..10,
            ),
            queries in proptest::collection::vec("[张王李芳伟ab]{1,3}|00[0-3][0-9]|[0-9]{4,5}", 1..12),
        ) {
            let store = Arc::new(MemStore::default());
            let mut journal = Journal::open(store.clone(), settings(), seeded_env(7)).unwrap();
            let mut ids = Vec::new();
            for (n, name) in names.iter().enumerate() {
                let member = NewMember::named(
                    name.as_str(),
                    Phone::parse(&format!("1380000{:04}", n * 7 % 40)).unwrap(),
                );
                let reply = journal.handle(Command::RegisterMember(request(
                    &format!("reg-{n:08}"),
                    member,
                )));
                // Two members may draw the same phone; the second is refused.
                if let Ok(Reply { outcome: Outcome::Member { member, .. }, .. }) = reply {
                    ids.push(member.member_id);
                }
            }
            for (n, (which, name, phone)) in edits.into_iter().enumerate() {
                let patch = ProfilePatch {
                    name: Some(name),
                    phone: phone.map(|p| Phone::parse(&format!("1390000{p:04}")).unwrap()),
                    ..Default::default()
                };
                let edit = MemberEdit { member_id: ids[which % ids.len()], patch };
                let _ = journal.handle(Command::EditMember(request(&format!("edit-{n:08}"), edit)));
            }
            journal.flush().unwrap();
            let views = crate::views::Views::new(store.clone());
            for query in queries {
                let every: Vec<MemberView> = store
                    .scan_prefix(b"m/")
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| {
                        let id = MemberId::parse(std::str::from_utf8(&k[2..]).unwrap()).unwrap();
                        views.member(&id).unwrap().unwrap()
                    })
                    .filter(|m| m.profile.matches(&query))
                    .take(3)
                    .collect();
                let indexed = views.search_members(&query, 3).unwrap();
                let ids = |ms: &[MemberView]| ms.iter().map(|m| m.member_id).collect::<Vec<_>>();
                proptest::prop_assert_eq!(ids(&indexed), ids(&every), "query {:?}", query);
            }
            let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
            proptest::prop_assert!(report.is_clean(), "{:?}", report);
        }
    }

    #[test]
    fn rejections_write_nothing() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(3)).unwrap();
        journal
            .handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap();
        let before = store.len();
        let dup = journal.handle(Command::RegisterMember(request(
            "reg-00000002",
            new_member("13800000001"),
        )));
        assert!(matches!(dup, Err(Rejection::PhoneTaken(..))));
        let ghost = MemberId::mint(1, 1);
        let r = journal.handle(Command::QuickCheckout(request(
            "sale-0000001",
            sale(Some(ghost), "1"),
        )));
        assert!(matches!(r, Err(Rejection::MemberNotFound(_))));
        let r = journal.handle(Command::QuickCheckout(request(
            "sale-0000002",
            sale(None, "0"),
        )));
        assert!(matches!(r, Err(Rejection::Sale(SaleError::NotPositive))));
        assert_eq!(store.len(), before);
        assert_eq!(journal.tip().next_seq, 2);
    }

    fn wallet_cmd(key: &str, member: MemberId, action: WalletAction) -> Command {
        Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action,
            },
        ))
    }

    fn cny(amount: &str) -> Money {
        Money::new(parse_amount(amount).unwrap(), protocol::Currency::CNY)
    }

    fn summary(reply: Result<Reply, Rejection>) -> Summary {
        match reply.unwrap().outcome {
            Outcome::Wallet { wallet, .. } => wallet,
            Outcome::Sale {
                wallet: Some(wallet),
                ..
            } => wallet,
            other => panic!("no wallet: {other:?}"),
        }
    }

    #[test]
    fn stored_value_points_and_cards_end_to_end_in_the_journal() {
        let store = Arc::new(MemStore::default());
        let mut j = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let m = member_of(
            j.handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
        );
        let topped = summary(j.handle(wallet_cmd(
            "topup-000001",
            m,
            WalletAction::TopUp {
                paid: cny("500"),
                rule: Some("500+100".into()),
            },
        )));
        assert_eq!((topped.principal, topped.bonus), (Fen(50_000), Fen(10_000)));
        // Pay 60 from stored value: split 50 principal, 10 bonus (5:1), and earn 60 points.
        let mut pay = sale(Some(m), "60");
        pay.pay_with = protocol::sale::PayWith::StoredValue;
        let after = summary(j.handle(Command::QuickCheckout(request("sale-0000001", pay))));
        assert_eq!((after.principal, after.bonus), (Fen(45_000), Fen(9_000)));
        assert_eq!(after.points, 60);
        // More than the balance: refused, nothing written.
        let before = store.len();
        let mut too_much = sale(Some(m), "540.01");
        too_much.pay_with = protocol::sale::PayWith::StoredValue;
        let r = j.handle(Command::QuickCheckout(request("sale-0000002", too_much)));
        assert!(
            matches!(r, Err(Rejection::Wallet(WalletError::Insufficient { .. }))),
            "{r:?}"
        );
        // Refunds return principal only.
        let r = j.handle(wallet_cmd(
            "refund-00001",
            m,
            WalletAction::Refund {
                principal: cny("450.01"),
                reason: "退卡".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        assert_eq!(store.len(), before);
        let refunded = summary(j.handle(wallet_cmd(
            "refund-00002",
            m,
            WalletAction::Refund {
                principal: cny("450"),
                reason: "退卡".into(),
            },
        )));
        // The bonus that came with the principal is forfeited with it.
        assert_eq!((refunded.principal, refunded.bonus), (Fen(0), Fen(0)));
        // A count card of 2 uses: two uses, then no more.
        let sold = summary(j.handle(wallet_cmd(
            "card-0000001",
            m,
            WalletAction::SellCard {
                name: "洗车2次卡".into(),
                kind: CardKind::Count {
                    uses: 2,
                    valid_to: None,
                },
                price: cny("50"),
            },
        )));
        let card = sold.cards[0].card.clone();
        for n in 0..2 {
            let left = summary(j.handle(wallet_cmd(
                &format!("use-{n:08}"),
                m,
                WalletAction::UseCard {
                    card: card.clone(),
                    uses: 1,
                },
            )));
            assert_eq!(left.cards[0].uses_left, Some((1 - n, 1 - n)));
        }
        let r = j.handle(wallet_cmd(
            "use-00000009",
            m,
            WalletAction::UseCard { card, uses: 1 },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        // A card whose last day has passed is not sold.
        let r = j.handle(wallet_cmd(
            "card-old-0001",
            m,
            WalletAction::SellCard {
                name: "洗车10次".into(),
                kind: CardKind::Count {
                    uses: 10,
                    valid_to: chrono::NaiveDate::from_ymd_opt(2020, 1, 1),
                },
                price: cny("100"),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::CardExpired(_)))
        ));
        // Points by hand: a deduction beyond the balance is refused; a reason is required.
        let r = j.handle(wallet_cmd(
            "points-00001",
            m,
            WalletAction::AdjustPoints {
                points: -61,
                reason: "兑换".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        let r = j.handle(wallet_cmd(
            "points-00002",
            m,
            WalletAction::AdjustPoints {
                points: 10,
                reason: " ".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::ReasonMissing))
        ));
        // Points by hand are bounded: the tester's i64::MAX, three times, broke headquarters'
        // liabilities; a typo of a few zeros is refused too.
        for (n, points) in [i64::MAX, i64::MIN + 1, 1_000_001, -1_000_001]
            .into_iter()
            .enumerate()
        {
            let r = j.handle(wallet_cmd(
                &format!("points-big-{n:02}"),
                m,
                WalletAction::AdjustPoints {
                    points,
                    reason: "调整".into(),
                },
            ));
            assert!(
                matches!(r, Err(Rejection::Wallet(WalletError::PointsOutOfRange))),
                "{points}: {r:?}"
            );
        }
        let r = j.handle(wallet_cmd(
            "topup-000002",
            m,
            WalletAction::TopUp {
                paid: cny("-5"),
                rule: None,
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::NotPositive))
        ));
        j.flush().unwrap();
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    #[test]
    fn rights_held_elsewhere_are_named_and_a_recall_hands_them_to_hq() {
        // S002 topped the member up; S001 learns of it through the feed but holds no rights.
        let store = Arc::new(MemStore::default());
        let mut s002_settings = settings();
        s002_settings.store_id = StoreId::parse("S002").unwrap();
        let mut s002 = Journal::open(store.clone(), s002_settings, seeded_env(6)).unwrap();
        let m = member_of(
            s002.handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
        );
        s002.handle(wallet_cmd(
            "topup-000001",
            m,
            WalletAction::TopUp {
                paid: cny("100"),
                rule: None,
            },
        ))
        .unwrap();
        s002.flush().unwrap();
        let feed: Vec<FeedItem> = (1..=2)
            .map(|seq| FeedItem {
                position: seq,
                entry: store
                    .get(&keys::log(&StoreId::parse("S002").unwrap(), seq))
                    .unwrap()
                    .unwrap(),
            })
            .collect();
        let s001_store = Arc::new(MemStore::default());
        let mut s001 = Journal::open(s001_store.clone(), settings(), seeded_env(7)).unwrap();
        let keys = crate::uplink::member_keys(
            &*store,
            &feed.iter().map(|i| i.entry.clone()).collect::<Vec<_>>(),
        )
        .unwrap()
        .into_iter()
        .map(|(m, k)| (m, Some(k)))
        .collect();
        s001.apply_feed(2, feed, keys).unwrap();
        let mut pay = sale(Some(m), "30");
        pay.pay_with = protocol::sale::PayWith::StoredValue;
        let r = s001.handle(Command::QuickCheckout(request("sale-0000001", pay)));
        match r {
            Err(Rejection::Wallet(WalletError::RightsElsewhere { wants })) => {
                assert_eq!(wants, vec![(Counter::Principal, 3_000)]);
            }
            other => panic!("{other:?}"),
        }
        // At S002, headquarters' recall hands over what is held, up to what was asked.
        let recalled = summary(s002.handle(wallet_cmd(
            "recall-00001",
            m,
            WalletAction::Recall {
                counter: Counter::Principal,
                units: 20_000,
            },
        )));
        assert_eq!(
            (recalled.principal, recalled.held_here),
            (Fen(10_000), Fen(0))
        );
    }
}
