//! What a wallet is made of and what changes it: counters, rights operations, card kinds,
//! movements and wallet events as they stand in the log.

use super::*;

/// One spendable counter of a member's wallet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// Stored value the member paid for, in fen: refundable.
    Principal,
    /// Stored value given on top (赠送金), in fen: spendable, never refunded.
    Bonus,
    /// Points earned in one calendar year (a lot).
    Points { year: i32 },
    /// Uses left on one count card.
    Uses { card: CardId },
    /// The right to take returns of one item sale (a token of one unit): created by the sale at
    /// its store, moved like any other right, spent by the return that leaves nothing of the
    /// sale. Only its holder writes the sale's returns, so no line is returned twice over.
    Returnable { sale: SaleId },
}

impl fmt::Display for Counter {
    /// The counter's stable key in storage: `sv.p`, `sv.b`, `pt.2026`, `cc.<card>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counter::Principal => write!(f, "sv.p"),
            Counter::Bonus => write!(f, "sv.b"),
            Counter::Points { year } => write!(f, "pt.{year:04}"),
            Counter::Uses { card } => write!(f, "cc.{card}"),
            Counter::Returnable { sale } => write!(f, "rt.{sale}"),
        }
    }
}

/// A cell write on one counter of the entry's member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsOp {
    pub counter: Counter,
    pub change: Change,
}

/// The kinds of card a store sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    /// N uses of a named service (计次卡), optionally until a date.
    Count {
        uses: u32,
        valid_to: Option<NaiveDate>,
    },
    /// Unlimited use between two dates, both included (月卡, 季卡, 年卡).
    Period { from: NaiveDate, to: NaiveDate },
    /// Minutes of a timed service (计时卡: play, parking, a court), optionally until a date:
    /// used by clocking in and out at the till, the minutes deducted rounded up by the chain's
    /// rule.
    Timed {
        minutes: u32,
        valid_to: Option<NaiveDate>,
    },
}

/// Why rights moved between replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    /// Headquarters handed rights to a store that asked or that it placed them at.
    Grant,
    /// A store handed rights back to headquarters when asked.
    Recall,
    /// Headquarters took back the rights of a store it fenced (gone quiet, hold timed out).
    Reclaim { from: StoreId },
}

/// A change to a member's wallet other than a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletEvent {
    /// 充值: `paid` becomes principal, `bonus` comes from the top-up rule chosen (recorded).
    TopUp {
        paid: Fen,
        bonus: Fen,
        rule: Option<String>,
        tender: Tender,
    },
    /// Points awarded (positive) or deducted (negative) by hand, with a reason.
    PointsAdjusted { points: Points, reason: String },
    /// A count or period card sold to the member.
    CardSold {
        card: CardId,
        name: String,
        kind: CardKind,
        price: Fen,
        tender: Tender,
    },
    /// A count card used (its uses counter is debited) or a period card checked in (no counter).
    CardUsed { card: CardId, uses: u32 },
    /// Rights moved between replicas; the ops say which and how much.
    Rights { movement: Movement },
    /// Stored value refunded to the member in cash: principal only; the bonus that came with
    /// it is forfeited in proportion (so a top-up under an offer cannot be refunded to keep the
    /// bonus).
    Refunded {
        principal: Fen,
        bonus_forfeited: Fen,
        reason: String,
    },
    /// The payment password was set or reset; an argon2 PHC string, never the password.
    PasswordSet { hash: String },
    /// An offline overdraft this store allowed is paid off from the member's stored value.
    OverdraftCollected { amount: Fen },
    /// A coupon given to the member (优惠券): one use (its `Uses` counter), good from `from` to
    /// `to`; spent at most once chain-wide, like any right.
    CouponIssued {
        coupon: CardId,
        name: String,
        offer: crate::pricing::Coupon,
        from: NaiveDate,
        to: NaiveDate,
    },
    /// A wrong payment password was given at the writing store (支付密码错误): counted
    /// chain-wide, so five within a day lock the member's payments everywhere.
    PasswordFailed,
    /// A campaign's coupon (营销券), written by headquarters: one use, good from `from` to `to`
    /// on the goods of `scope`, named after (campaign, run, member) so it is issued once.
    CampaignCoupon {
        coupon: CardId,
        campaign: String,
        template: String,
        name: String,
        offer: crate::pricing::Coupon,
        scope: crate::pricing::CouponScope,
        stacks: Option<bool>,
        from: NaiveDate,
        to: NaiveDate,
    },
    /// 退卡, as written before the chain's card rules (`ClosedUnderRules` since): the
    /// membership closed; what was paid back in cash and what lapsed.
    Closed {
        closing: super::ClosingV1,
        reason: String,
    },
    /// A timed card's clock started at the writing store (计时开始).
    ClockedIn { card: CardId },
    /// A timed card's clock stopped: `minutes` to charge (the time on the clock by the
    /// chain's card rules: nothing within the free minutes, else whole steps),
    /// `charged` of them taken from the card (what it had left at most); the rest the cashier
    /// charges as a sale.
    ClockedOut {
        card: CardId,
        minutes: u64,
        charged: u64,
    },
    /// 会员导入: what a member brought from the chain's old system, written by headquarters
    /// and placed at their home store: principal, bonus, points in one lot, and cards with
    /// what is left of them. `import` names the file.
    Opening {
        principal: Fen,
        bonus: Fen,
        points: u64,
        lot: i32,
        cards: Vec<(CardId, crate::import::OpeningCard)>,
        import: String,
    },
    /// 积分兑换: a gift of the points mall (`crate::gifts`) given for `points`, spent by the
    /// entry's ops like any points spend. A coupon gift is issued in the same entry (its use
    /// is the `Uses` counter of its id, credited to the writer); a goods gift's goods leave
    /// the writer's shelf in the stock entry that follows (`StockMovement::Gift`).
    GiftRedeemed {
        gift: String,
        name: String,
        points: u64,
        coupon: Option<GiftCoupon>,
    },
    /// 拓客奖励, written by headquarters: `referee`'s first paid sale (`sale`) rewards this
    /// member, their referrer (`level` 1) or their referrer's referrer (2). The ops credit the
    /// points and bonus at headquarters; a coupon's use too.
    ReferralReward {
        referee: crate::ids::MemberId,
        level: u8,
        sale: crate::ids::SaleId,
        points: u64,
        bonus: Fen,
        coupon: Option<GiftCoupon>,
    },
    /// 拓客奖励收回: `referee`'s first paid sale was returned in full. The ops take back what of
    /// the reward headquarters' pool still held; `kept_points` and `kept_bonus` were spent or
    /// held at stores already, and stay with the member (shown in the referral report).
    ReferralRevoked {
        referee: crate::ids::MemberId,
        level: u8,
        points: u64,
        bonus: Fen,
        coupon: Option<CardId>,
        kept_points: u64,
        kept_bonus: Fen,
    },
    /// 多券同用: the coupons item sale `sale` redeemed, when it redeemed more than one (one
    /// coupon stays in the sale's own `coupon`): each with what it took off, and the sale's
    /// `due` for the campaign report. Written right after the sale, in the same append; the
    /// ops spend one use of each.
    CouponsRedeemed {
        sale: crate::ids::SaleId,
        coupons: Vec<CouponOff>,
        due: Fen,
    },
    /// 退卡: the membership closed under the chain's card rules (`crate::card_rules`); what
    /// was paid back in cash (bonus share and fee included) and what lapsed.
    ClosedUnderRules {
        closing: super::Closing,
        reason: String,
    },
}

impl WalletEvent {
    /// A closing, whichever form wrote it.
    pub fn closing(&self) -> Option<std::borrow::Cow<'_, super::Closing>> {
        use std::borrow::Cow;
        match self {
            WalletEvent::Closed { closing, .. } => Some(Cow::Owned(closing.into())),
            WalletEvent::ClosedUnderRules { closing, .. } => Some(Cow::Borrowed(closing)),
            _ => None,
        }
    }
}

/// A coupon a sale redeemed, and what it took off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponOff {
    pub coupon: CardId,
    pub off: Fen,
}

/// The coupon a gift gives, as its template made it on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftCoupon {
    pub coupon: CardId,
    pub template: String,
    pub name: String,
    pub offer: crate::pricing::Coupon,
    pub scope: crate::pricing::CouponScope,
    pub stacks: Option<bool>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl GiftCoupon {
    /// The coupon `template` makes when issued as `coupon` on `today`.
    pub fn of(template: crate::campaign::CouponTemplate, coupon: CardId, today: NaiveDate) -> Self {
        let (from, to) = template.validity.period(today);
        Self {
            coupon,
            template: template.id,
            name: template.name,
            offer: template.offer,
            scope: template.scope,
            stacks: template.stacks,
            from,
            to,
        }
    }
}

/// Wrong payment passwords within `PASSWORD_LOCK_MS` of one another that lock a member's
/// payments (until the lock lapses or a manager sets a new password).
pub const PASSWORD_FAILURES_MAX: usize = 5;
/// How long wrong passwords count, and how long a lock lasts after the first of them.
pub const PASSWORD_LOCK_MS: u64 = 24 * 60 * 60 * 1000;
