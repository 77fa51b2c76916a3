//! What the journal takes and answers: commands with their idempotency keys, control messages,
//! outcomes and rejections.

use super::*;

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
    pub marketing_consent: bool,
    /// Why a tier other than the chain's first is given (the API asks for one).
    pub tier_reason: Option<String>,
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
            marketing_consent: false,
            tier_reason: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemberEdit {
    pub member_id: MemberId,
    pub patch: ProfilePatch,
    /// Why the tier is set by hand (the API asks for one with every tier change).
    pub tier_reason: Option<String>,
}

/// 挂失, 解挂, 补卡: a change of a member's card, audited (the API checks who may).
#[derive(Debug, Clone)]
pub struct CardChange {
    pub member_id: MemberId,
    pub action: CardAction,
}

#[derive(Debug, Clone)]
pub enum CardAction {
    /// 挂失: the card stops finding the member anywhere the change reaches.
    Lost,
    /// 解挂: the lost card finds them again.
    Found {
        check: protocol::audit::IdentityCheck,
    },
    /// 补卡: a new card number, carrying everything (the wallet is the member's, not the
    /// card's); also how a closed membership opens again.
    Reissue {
        card_no: CardNo,
        check: protocol::audit::IdentityCheck,
    },
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
    /// 退卡: close the membership, paying back the principal and what is left of cards.
    Close {
        reason: String,
        /// The cash the preview showed and the cashier confirmed: refused if the closing would
        /// now pay another amount (the chain's card rules or the balance changed meanwhile).
        expect_cash: Option<Money>,
    },
    /// 计时开始 / 计时结束 on a timed card.
    ClockIn {
        card: CardId,
    },
    ClockOut {
        card: CardId,
    },
    /// 积分兑换: a gift of the points mall, for its points.
    RedeemGift {
        gift: String,
    },
}

/// The closed set of things the journal does.
#[derive(Debug)]
pub enum Command {
    RegisterMember(Request<NewMember>),
    EditMember(Request<MemberEdit>),
    Card(Request<CardChange>),
    QuickCheckout(Request<QuickSaleRequest>),
    Wallet(Request<WalletRequest>),
    ReturnSale(Request<SaleReturn>),
    Stock(Request<StockRequest>),
    Transfer(Request<TransferRequest>),
    ItemCheckout(Request<ItemCheckoutRequest>),
    /// 挂单: park a basket; 作废: void a parked one before payment.
    HoldOrder(Request<HeldOrder>),
    VoidHeld(Request<protocol::DocId>),
    /// 交班: the writer closes their shift, with the yuan they counted in the drawer.
    CloseShift(Request<Fen>),
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
    /// A followed member's earlier wallet changes from headquarters (`crate::follow`).
    Backfill {
        member: MemberId,
        items: Vec<FeedItem>,
        last: bool,
    },
    /// Follow these members (a till looked them up): headquarters is told and sends their
    /// history.
    Follow { members: Vec<MemberId> },
    /// Whether headquarters routes its feed to this store (sync version 7), as the session
    /// agreed; if it does not, every member followed here is whole (it sends everything).
    HubRoutes(bool),
    /// Headquarters holds this store's log up to this seq, as it said when it welcomed the
    /// store: further than here, the store restores the rest from the feed (`restore`).
    HubHolds { seq: u64 },
    /// Entries of this store's own log from headquarters' copy, next in order, with the keys
    /// of the members they register; then the feed is applied up to `upto` (`restore`).
    Restore {
        upto: u64,
        entries: Vec<Vec<u8>>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    },
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
    pub(super) fn request(&self) -> (&TxId, [u8; 32], &StaffId) {
        match self {
            Command::RegisterMember(r) => (&r.key, r.fingerprint, &r.staff),
            Command::EditMember(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Card(r) => (&r.key, r.fingerprint, &r.staff),
            Command::QuickCheckout(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Wallet(r) => (&r.key, r.fingerprint, &r.staff),
            Command::ReturnSale(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Stock(r) => (&r.key, r.fingerprint, &r.staff),
            Command::Transfer(r) => (&r.key, r.fingerprint, &r.staff),
            Command::ItemCheckout(r) => (&r.key, r.fingerprint, &r.staff),
            Command::HoldOrder(r) => (&r.key, r.fingerprint, &r.staff),
            Command::VoidHeld(r) => (&r.key, r.fingerprint, &r.staff),
            Command::CloseShift(r) => (&r.key, r.fingerprint, &r.staff),
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
    /// 交班: the shift closed, and the cash counted.
    ShiftClosed {
        shift: Box<protocol::shift::Shift>,
        counted: Fen,
    },
    /// Only in a request record: a member outcome kept without the member's person (which
    /// stays sealed in their views); a retry reads the member afresh.
    MemberRecorded {
        member_id: MemberId,
        points: Points,
    },
    /// Only in a request record: an entry of this store's log restored from headquarters'
    /// copy (`journal::restore`); what was asked and answered then is not known here.
    Restored {
        seq: u64,
    },
}

impl Outcome {
    /// The outcome as a request record keeps it: without personal data in the clear.
    pub(super) fn recorded(&self) -> Outcome {
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
    #[error(transparent)]
    Card(#[from] protocol::member::CardRefusal),
    #[error("member {0}'s membership was closed (退卡)")]
    MembershipClosed(MemberId),
    #[error("{0}")]
    CardState(String),
    #[error("idempotency key {0} was already used for a different request")]
    IdempotencyConflict(TxId),
    #[error("phone {0} belongs to member {1}")]
    PhoneTaken(String, MemberId),
    #[error("card {0} belongs to member {1}")]
    CardTaken(CardNo, MemberId),
    #[error("member {0} not found")]
    MemberNotFound(MemberId),
    #[error(transparent)]
    Gift(#[from] protocol::gifts::GiftRefused),
    #[error(transparent)]
    Referral(#[from] protocol::referral::ReferralRefused),
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
    #[error(
        "the closing would pay {now} in cash, not the {previewed} previewed: the chain's card \
         rules or the balance changed since; preview again"
    )]
    ClosingChanged { previewed: Fen, now: Fen },
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
    /// This store's log is behind headquarters' copy of it (a restored backup, a new PC): it
    /// writes nothing of its own until the missing entries are back (`journal::restore`).
    #[error(
        "this store's log is being restored from headquarters ({have} of {need} entries): \
         nothing can be recorded until it is whole"
    )]
    Restoring { have: u64, need: String },
    /// The request's key names an entry restored from headquarters: it was done before the
    /// store's data was restored, and is not done twice.
    #[error(
        "request {key} was recorded before this store's data was restored (entry {seq}): \
         it is not recorded twice"
    )]
    RecordedBeforeRestore { key: TxId, seq: u64 },
    /// Headquarters' copy of this store's log does not continue the log here.
    #[error("restoring this store's log from headquarters: {0}")]
    RestoreBroken(String),
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
