//! Member wallets (会员钱包): stored value (储值) with principal and bonus kept apart, points (积分)
//! in yearly lots that expire, count cards (计次卡) and period cards (期限卡).
//!
//! Every spendable amount is a **counter** with its own spend rights ([`crate::escrow`]):
//! `Principal` and `Bonus` in fen, one `Points` counter per earning year (a lot), and one `Uses`
//! counter per count card. An entry that changes a wallet carries the [`RightsOp`]s it made
//! (cell writes of the entry's origin), so every replica that sees the entry converges on the
//! same rights, whatever order entries arrive in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Payload};
use crate::escrow::{Change, Rights, RightsError};
use crate::hlc::Hlc;
use crate::ids::{SaleId, StoreId};
use crate::money::Fen;
use crate::points::Points;
use crate::sale::Tender;

/// A count or period card is named after the entry that sold it (`<store>-<seq>`).
pub type CardId = SaleId;

pub const REASON_CHARS_MAX: usize = 200;
pub const CARD_NAME_CHARS_MAX: usize = 64;
/// A count card holds at most this many uses.
pub const CARD_USES_MAX: u32 = 10_000;

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
}

/// Wrong payment passwords within `PASSWORD_LOCK_MS` of one another that lock a member's
/// payments (until the lock lapses or a manager sets a new password).
pub const PASSWORD_FAILURES_MAX: usize = 5;
/// How long wrong passwords count, and how long a lock lasts after the first of them.
pub const PASSWORD_LOCK_MS: u64 = 24 * 60 * 60 * 1000;

/// A coupon a member holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponDef {
    pub name: String,
    pub offer: crate::pricing::Coupon,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub issued_at: StoreId,
}

/// A top-up rule the chain offers, e.g. pay 5000, get 2000 bonus (充5000送2000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpRule {
    pub id: String,
    /// The least the member must pay for this rule.
    pub pay_at_least: Fen,
    pub bonus: Fen,
}

/// How a stored-value payment splits between principal and bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusUse {
    /// In proportion to the principal and bonus held (the common rule: no refund arbitrage).
    #[default]
    Proportional,
    PrincipalFirst,
    BonusFirst,
}

/// The most points one adjustment by hand may add or take (a typo of a few zeros is refused,
/// and no sum of them can overflow a report).
pub const POINTS_ADJUST_MAX: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("{wanted} wanted but only {available} available")]
    Insufficient { available: u64, wanted: u64 },
    #[error("no top-up rule {0}")]
    UnknownRule(String),
    #[error("top-up rule {rule} needs at least {least} paid")]
    RuleNotMet { rule: String, least: Fen },
    #[error("text is too long (at most {0} characters)")]
    TooLong(usize),
    #[error("a reason is required")]
    ReasonMissing,
    #[error("card {0} has expired")]
    CardExpired(CardId),
    #[error("card {0} is not valid until {1}")]
    CardNotYetValid(CardId, NaiveDate),
    #[error("a count card holds 1 to {CARD_USES_MAX} uses")]
    UsesOutOfRange,
    #[error("points are adjusted by hand 1 to {POINTS_ADJUST_MAX} at a time, up or down")]
    PointsOutOfRange,
    #[error("the period ends before it starts")]
    EmptyPeriod,
    #[error("no card {0} on this member")]
    UnknownCard(CardId),
    #[error("no coupon {0} on this member")]
    UnknownCoupon(CardId),
    #[error("coupon {0} has been used")]
    CouponUsed(CardId),
    #[error("coupon {coupon} is good from {from} to {to}")]
    CouponNotValid {
        coupon: CardId,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("the balance covers it, but its rights are held elsewhere: {}", wants_text(.wants))]
    RightsElsewhere { wants: Vec<(Counter, u64)> },
    #[error(transparent)]
    Rights(#[from] RightsError),
}

fn wants_text(wants: &[(Counter, u64)]) -> String {
    let parts: Vec<String> = wants.iter().map(|(c, u)| format!("{u} of {c}")).collect();
    parts.join(", ")
}

/// A card on a member's wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    pub kind: CardKind,
    pub price: Fen,
    pub sold_at: StoreId,
    pub sold_on: NaiveDate,
    /// Times used or checked in, chain-wide as far as this replica knows.
    pub visits: u64,
}

/// A member's wallet as one replica knows it: every counter's rights, the cards, the payment
/// password hash. Replicas that took in the same entries hold equal wallets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub counters: BTreeMap<Counter, Rights>,
    pub cards: BTreeMap<CardId, Card>,
    /// The payment password's argon2 hash, with when and where it was set: the latest wins.
    pub password: Option<(Hlc, StoreId, String)>,
    /// Offline overdrafts by the store that allowed them: (lent, settled), each written only by
    /// that store. Settled by collecting later or by returning the sale.
    pub owed: BTreeMap<StoreId, (u64, u64)>,
    /// Coupons given to the member; each one's use is the `Uses` counter of its id.
    pub coupons: BTreeMap<CardId, CouponDef>,
    /// The latest wrong payment passwords since it was last set (at most
    /// `PASSWORD_FAILURES_MAX`), by when and where: the same set whatever order they came in.
    pub password_failures: BTreeSet<(Hlc, StoreId)>,
    /// A replica that may not spend what it holds just now (a store cut off past its lease, or
    /// fenced; see `lease`): to it, it holds nothing, so a payment there is `RightsElsewhere`
    /// (an ask, or the offline overdraft). Set on a working copy, never stored or sent.
    #[serde(skip)]
    pub frozen_at: Option<StoreId>,
}

impl Wallet {
    /// Takes in the cell writes `origin` made (from an entry of its log). Idempotent.
    pub fn absorb(&mut self, origin: &StoreId, ops: &[RightsOp]) {
        for op in ops {
            self.counters
                .entry(op.counter.clone())
                .or_default()
                .absorb(origin, &op.change);
        }
    }

    /// Takes in a wallet entry of `origin` written at `hlc` on `date`: its ops, and its card or
    /// password. Entries may come in any order; the result is the same.
    pub fn apply(
        &mut self,
        origin: &StoreId,
        (hlc, date): (Hlc, NaiveDate),
        event: &WalletEvent,
        ops: &[RightsOp],
    ) {
        self.absorb(origin, ops);
        match event {
            WalletEvent::CardSold {
                card,
                name,
                kind,
                price,
                ..
            } => {
                self.cards.entry(card.clone()).or_insert_with(|| Card {
                    name: name.clone(),
                    kind: kind.clone(),
                    price: *price,
                    sold_at: origin.clone(),
                    sold_on: date,
                    visits: 0,
                });
            }
            WalletEvent::CardUsed { card, .. } => {
                if let Some(card) = self.cards.get_mut(card) {
                    card.visits = card.visits.saturating_add(1);
                }
            }
            WalletEvent::PasswordSet { hash } => {
                let newer = self
                    .password
                    .as_ref()
                    .is_none_or(|(at, by, _)| (hlc, origin) > (*at, by));
                if newer {
                    self.password = Some((hlc, origin.clone(), hash.clone()));
                    self.keep_failures();
                }
            }
            WalletEvent::PasswordFailed => {
                self.password_failures.insert((hlc, origin.clone()));
                self.keep_failures();
            }
            WalletEvent::OverdraftCollected { amount } => self.settle(origin, *amount),
            WalletEvent::CouponIssued {
                coupon,
                name,
                offer,
                from,
                to,
            } => {
                self.coupons
                    .entry(coupon.clone())
                    .or_insert_with(|| CouponDef {
                        name: name.clone(),
                        offer: offer.clone(),
                        from: *from,
                        to: *to,
                        issued_at: origin.clone(),
                    });
            }
            WalletEvent::TopUp { .. }
            | WalletEvent::PointsAdjusted { .. }
            | WalletEvent::Rights { .. }
            | WalletEvent::Refunded { .. } => {}
        }
    }

    /// Keeps the wrong passwords given after the password in force was set, the latest
    /// `PASSWORD_FAILURES_MAX` of them.
    fn keep_failures(&mut self) {
        if let Some((at, _, _)) = &self.password {
            self.password_failures.retain(|(when, _)| when > at);
        }
        while self.password_failures.len() > PASSWORD_FAILURES_MAX {
            self.password_failures.pop_first();
        }
    }

    /// Wrong payment passwords that still count at `now_ms` (the chain's time).
    pub fn password_failures_at(&self, now_ms: u64) -> usize {
        self.password_failures
            .iter()
            .filter(|(when, _)| when.wall_ms.saturating_add(PASSWORD_LOCK_MS) > now_ms)
            .count()
    }

    /// Until when (ms) the member's password payments are locked at `now_ms`, if they are:
    /// `PASSWORD_FAILURES_MAX` wrong passwords, the first of them less than a day ago.
    pub fn password_locked_until(&self, now_ms: u64) -> Option<u64> {
        let first = self.password_failures.first()?;
        let until = first.0.wall_ms.saturating_add(PASSWORD_LOCK_MS);
        (self.password_failures.len() >= PASSWORD_FAILURES_MAX && until > now_ms).then_some(until)
    }

    /// The wallet as `at` sees it on `today`.
    pub fn summary(&self, at: &StoreId, today: NaiveDate, policy: &PointsPolicy) -> Summary {
        let fen = |units: u64| Fen(i64::try_from(units).unwrap_or(i64::MAX));
        let (p, b) = (Counter::Principal, Counter::Bonus);
        let live = |(year, _): &(i32, u64)| policy.lot_alive(*year, today);
        Summary {
            principal: fen(self.balance(&p)),
            bonus: fen(self.balance(&b)),
            held_here: fen(self.held(&p, at).saturating_add(self.held(&b, at))),
            points: self.points_live(today, policy),
            points_held_here: self
                .lots(|r| self.spendable(r, at))
                .iter()
                .filter(|l| live(l))
                .map(|(_, u)| u)
                .sum(),
            lots: self
                .lots(Rights::balance)
                .into_iter()
                .filter(|l| live(l) && l.1 > 0)
                .map(|(year, units)| (year, policy.last_day(year), units))
                .collect(),
            cards: self
                .cards
                .iter()
                .map(|(card, info)| {
                    let counter = Counter::Uses { card: card.clone() };
                    CardSummary {
                        card: card.clone(),
                        card_info: info.clone(),
                        uses_left: matches!(info.kind, CardKind::Count { .. })
                            .then(|| (self.balance(&counter), self.held(&counter, at))),
                        usable_today: info.kind.usable_on(card, today).is_ok(),
                    }
                })
                .collect(),
            password_set: self.password.is_some(),
            owed: fen(self.owed_total().saturating_add(
                self.overspent_by()
                    .values()
                    .fold(0, |a, b| a.saturating_add(*b)),
            )),
        }
    }

    /// Takes in everything an entry does to this wallet (the entry's member must be this one).
    pub fn take_entry(&mut self, entry: &Entry) {
        let origin = &entry.origin;
        match &entry.payload {
            Payload::Wallet { event, ops, .. } => {
                self.apply(origin, (entry.hlc, entry.business_date), event, ops)
            }
            Payload::Sale { sale, ops } => {
                self.absorb(origin, ops);
                let lent = u64::try_from(sale.tender.overdraft().0).unwrap_or(0);
                if lent > 0 {
                    let cell = &mut self.owed.entry(origin.clone()).or_default().0;
                    *cell = cell.saturating_add(lent);
                }
            }
            Payload::Return { refund, ops, .. } => {
                self.absorb(origin, ops);
                self.settle(origin, refund.overdraft());
            }
            Payload::Checkout { ops, .. } | Payload::ItemReturn { ops, .. } => {
                self.absorb(origin, ops)
            }
            Payload::MemberRegistered { .. }
            | Payload::MemberEdited { .. }
            | Payload::QuickSale(_)
            | Payload::Catalogue { .. }
            | Payload::Stock { .. }
            | Payload::Transfer { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
            | Payload::Audit { .. }
            | Payload::MemberErased { .. } => {}
        }
    }

    fn settle(&mut self, at: &StoreId, amount: Fen) {
        let amount = u64::try_from(amount.0).unwrap_or(0);
        if amount > 0 {
            let cell = &mut self.owed.entry(at.clone()).or_default().1;
            *cell = cell.saturating_add(amount);
        }
    }

    /// What the member owes `store` for offline overdrafts it allowed.
    pub fn owed_at(&self, store: &StoreId) -> u64 {
        self.owed
            .get(store)
            .map_or(0, |(lent, settled)| lent.saturating_sub(*settled))
    }

    /// What the member owes for offline overdrafts, chain-wide.
    pub fn owed_total(&self) -> u64 {
        self.owed
            .values()
            .map(|(lent, settled)| lent.saturating_sub(*settled))
            .fold(0, u64::saturating_add)
    }

    /// What the member owes `store` for offline overdrafts that the balance can pay now: the
    /// balance goes to the lenders in the order of their store ids, so when it cannot pay every
    /// lender, the first ones are paid in full and the next in part, at once, instead of every
    /// lender waiting for a balance that covers them all. The same order decides what
    /// headquarters may grant a lender (`plan_ask`).
    pub fn collectable_at(&self, store: &StoreId) -> u64 {
        let balance = self.stored_value();
        self.owed_at(store)
            .min(balance.saturating_sub(self.owed_before(store)))
    }

    /// Overdrafts owed to the lenders paid before `store` (see `collectable_at`).
    pub fn owed_before(&self, store: &StoreId) -> u64 {
        self.owed
            .range(..store.clone())
            .map(|(lender, _)| self.owed_at(lender))
            .fold(0, u64::saturating_add)
    }

    /// Stored value spent beyond the balance by fenced stores that kept selling after
    /// headquarters took their rights back (fen, by store): a receivable, like an overdraft,
    /// but one nobody lent on purpose. Paid by the member's next top-ups, which the balance
    /// (below zero by this much) takes first.
    pub fn overspent_by(&self) -> BTreeMap<StoreId, u64> {
        let mut by: BTreeMap<StoreId, u64> = BTreeMap::new();
        for counter in [Counter::Principal, Counter::Bonus] {
            if let Some(rights) = self.counters.get(&counter) {
                for (store, units) in rights.overspent_by() {
                    let cell = by.entry(store).or_default();
                    *cell = cell.saturating_add(units);
                }
            }
        }
        by
    }

    /// Takes in another replica's copy of the same wallet (for checkers and reports).
    pub fn merge(&mut self, other: &Wallet) {
        for (counter, rights) in &other.counters {
            self.counters
                .entry(counter.clone())
                .or_default()
                .merge(rights);
        }
        for (card, info) in &other.cards {
            let mine = self
                .cards
                .entry(card.clone())
                .or_insert_with(|| info.clone());
            mine.visits = mine.visits.max(info.visits);
        }
        if other.password > self.password {
            self.password = other.password.clone();
        }
        self.password_failures
            .extend(other.password_failures.iter().cloned());
        self.keep_failures();
        for (store, (lent, settled)) in &other.owed {
            let mine = self.owed.entry(store.clone()).or_default();
            *mine = (mine.0.max(*lent), mine.1.max(*settled));
        }
        for (coupon, def) in &other.coupons {
            self.coupons
                .entry(coupon.clone())
                .or_insert_with(|| def.clone());
        }
    }

    /// [`Rights::audit`] of every counter.
    pub fn audit(&self) -> Result<(), String> {
        self.counters
            .iter()
            .try_for_each(|(c, r)| r.audit().map_err(|e| format!("{c}: {e}")))
    }

    /// Stored value the member may spend anywhere: principal and bonus, less what they owe
    /// stores for offline overdrafts (set aside for those stores to collect).
    pub fn stored_value_free(&self) -> u64 {
        self.stored_value().saturating_sub(self.owed_total())
    }

    /// Refuses a stored-value payment of `amount` the free balance does not cover.
    pub fn require_free(&self, amount: u64) -> Result<(), WalletError> {
        let available = self.stored_value_free();
        match available < amount {
            true => Err(WalletError::Insufficient {
                available,
                wanted: amount,
            }),
            false => Ok(()),
        }
    }

    pub fn balance(&self, counter: &Counter) -> u64 {
        self.counters.get(counter).map_or(0, Rights::balance)
    }

    pub fn held(&self, counter: &Counter, at: &StoreId) -> u64 {
        match (counter, self.counters.get(counter)) {
            (_, None) => 0,
            // A sale's return token is never taken back (`reclaim`): its holder alone writes
            // the sale's returns, frozen or not.
            (Counter::Returnable { .. }, Some(r)) => r.held(at),
            (_, Some(r)) => self.spendable(r, at),
        }
    }

    /// Stored value, principal and bonus together, below zero where a fenced store spent what
    /// was taken back (what the member owes then).
    pub fn stored_value_signed(&self) -> i128 {
        [Counter::Principal, Counter::Bonus]
            .iter()
            .filter_map(|c| self.counters.get(c))
            .map(Rights::balance_signed)
            .sum()
    }

    /// Stored value the member has, net of what a fenced store spent twice.
    pub fn stored_value(&self) -> u64 {
        u64::try_from(self.stored_value_signed().max(0)).unwrap_or(u64::MAX)
    }

    /// What `at` may spend of one counter's rights: what it holds, or nothing while frozen.
    fn spendable(&self, rights: &Rights, at: &StoreId) -> u64 {
        match self.frozen_at.as_ref() == Some(at) {
            true => 0,
            false => rights.held(at),
        }
    }

    /// This copy treats `at` as holding nothing (see `frozen_at`).
    pub fn freeze(&mut self, at: &StoreId) {
        self.frozen_at = Some(at.clone());
    }

    fn rights(&mut self, counter: &Counter) -> &mut Rights {
        self.counters.entry(counter.clone()).or_default()
    }

    fn op(counter: &Counter, change: Change) -> RightsOp {
        RightsOp {
            counter: counter.clone(),
            change,
        }
    }

    /// 充值 at `at`: principal and bonus rights, held there.
    pub fn top_up(
        &mut self,
        at: &StoreId,
        paid: u64,
        bonus: u64,
    ) -> Result<Vec<RightsOp>, WalletError> {
        if paid == 0 {
            return Err(WalletError::NotPositive);
        }
        let mut next = self.clone();
        let mut ops = vec![next.give(at, &Counter::Principal, paid)?];
        if bonus > 0 {
            ops.push(next.give(at, &Counter::Bonus, bonus)?);
        }
        *self = next;
        Ok(ops)
    }

    /// A stored-value payment at `at`, within the rights it holds. Returns the ops and the
    /// `(principal, bonus)` split.
    pub fn pay(
        &mut self,
        at: &StoreId,
        amount: u64,
        rule: BonusUse,
    ) -> Result<(Vec<RightsOp>, (u64, u64)), WalletError> {
        let (p, b) = (Counter::Principal, Counter::Bonus);
        let split = match split_payment(amount, self.held(&p, at), self.held(&b, at), rule) {
            Ok(split) => split,
            Err(WalletError::Insufficient { .. }) => {
                let (wp, wb) = split_payment(amount, self.balance(&p), self.balance(&b), rule)?;
                let wants = [(p.clone(), wp), (b.clone(), wb)]
                    .into_iter()
                    .map(|(c, want)| {
                        let held = self.held(&c, at);
                        (c, want.saturating_sub(held))
                    })
                    .filter(|(_, short)| *short > 0)
                    .collect();
                return Err(WalletError::RightsElsewhere { wants });
            }
            Err(e) => return Err(e),
        };
        let mut next = self.clone();
        let mut ops = Vec::new();
        for (counter, units) in [(p, split.0), (b, split.1)] {
            if units > 0 {
                let change = next.rights(&counter).debit(at, units)?;
                ops.push(Self::op(&counter, change));
            }
        }
        *self = next;
        Ok((ops, split))
    }

    /// New rights on one counter at `at` (money or points coming back with a return).
    pub fn give(
        &mut self,
        at: &StoreId,
        counter: &Counter,
        units: u64,
    ) -> Result<RightsOp, WalletError> {
        let change = self.rights(counter).credit(at, units)?;
        Ok(Self::op(counter, change))
    }

    /// Points earned at `at` go to the lot of `year`. Zero points write nothing.
    pub fn earn_points(
        &mut self,
        at: &StoreId,
        year: i32,
        points: u64,
    ) -> Result<Vec<RightsOp>, WalletError> {
        if points == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![self.give(at, &Counter::Points { year }, points)?])
    }

    fn lots(&self, of: impl Fn(&Rights) -> u64) -> Vec<(i32, u64)> {
        self.counters
            .iter()
            .filter_map(|(c, r)| match c {
                Counter::Points { year } => Some((*year, of(r))),
                _ => None,
            })
            .collect()
    }

    /// Points that can still be spent on `today`, chain-wide.
    pub fn points_live(&self, today: NaiveDate, policy: &PointsPolicy) -> u64 {
        self.lots(Rights::balance)
            .iter()
            .filter(|(year, _)| policy.lot_alive(*year, today))
            .map(|(_, units)| units)
            .sum()
    }

    /// Points spent (redeemed or deducted) at `at`, oldest live lot first.
    pub fn spend_points(
        &mut self,
        at: &StoreId,
        points: u64,
        today: NaiveDate,
        policy: &PointsPolicy,
    ) -> Result<Vec<RightsOp>, WalletError> {
        let taken =
            match policy.take_oldest_first(&self.lots(|r| self.spendable(r, at)), points, today) {
                Ok(taken) => taken,
                Err(WalletError::Insufficient { .. }) => {
                    let whole =
                        policy.take_oldest_first(&self.lots(Rights::balance), points, today)?;
                    let wants = whole
                        .into_iter()
                        .map(|(year, want)| {
                            let counter = Counter::Points { year };
                            let short = want.saturating_sub(self.held(&counter, at));
                            (counter, short)
                        })
                        .filter(|(_, short)| *short > 0)
                        .collect();
                    return Err(WalletError::RightsElsewhere { wants });
                }
                Err(e) => return Err(e),
            };
        let mut next = self.clone();
        let mut ops = Vec::new();
        for (year, units) in taken {
            let counter = Counter::Points { year };
            let change = next.rights(&counter).debit(at, units)?;
            ops.push(Self::op(&counter, change));
        }
        *self = next;
        Ok(ops)
    }

    /// A card sold at `at`: a count card's uses become rights held there.
    pub fn sell_card(
        &mut self,
        at: &StoreId,
        card: &CardId,
        kind: &CardKind,
    ) -> Result<Vec<RightsOp>, WalletError> {
        kind.validate()?;
        match kind {
            CardKind::Count { uses, .. } => {
                let counter = Counter::Uses { card: card.clone() };
                let change = self.rights(&counter).credit(at, u64::from(*uses))?;
                Ok(vec![Self::op(&counter, change)])
            }
            CardKind::Period { .. } => Ok(Vec::new()),
        }
    }

    /// Gives the member coupon `coupon`: one use, held at `at`.
    pub fn issue_coupon(
        &mut self,
        at: &StoreId,
        coupon: &CardId,
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<Vec<RightsOp>, WalletError> {
        if to < from {
            return Err(WalletError::EmptyPeriod);
        }
        let counter = Counter::Uses {
            card: coupon.clone(),
        };
        let change = self.rights(&counter).credit(at, 1)?;
        Ok(vec![Self::op(&counter, change)])
    }

    /// The coupon's offer, if the member holds it unused and it is good on `today`.
    pub fn usable_coupon(
        &self,
        coupon: &CardId,
        today: NaiveDate,
    ) -> Result<&crate::pricing::Coupon, WalletError> {
        let def = self
            .coupons
            .get(coupon)
            .ok_or_else(|| WalletError::UnknownCoupon(coupon.clone()))?;
        let counter = Counter::Uses {
            card: coupon.clone(),
        };
        if self.balance(&counter) == 0 {
            return Err(WalletError::CouponUsed(coupon.clone()));
        }
        if today < def.from || today > def.to {
            return Err(WalletError::CouponNotValid {
                coupon: coupon.clone(),
                from: def.from,
                to: def.to,
            });
        }
        Ok(&def.offer)
    }

    /// A count card used (`uses` taken) or a period card checked in, on `today` at `at`.
    pub fn use_card(
        &mut self,
        at: &StoreId,
        card: &CardId,
        uses: u32,
        today: NaiveDate,
    ) -> Result<Vec<RightsOp>, WalletError> {
        let held = self
            .cards
            .get(card)
            .ok_or_else(|| WalletError::UnknownCard(card.clone()))?;
        held.kind.usable_on(card, today)?;
        if let CardKind::Period { .. } = held.kind {
            return Ok(Vec::new());
        }
        if uses == 0 || uses > CARD_USES_MAX {
            return Err(WalletError::UsesOutOfRange);
        }
        let counter = Counter::Uses { card: card.clone() };
        Ok(vec![self.take(at, &counter, u64::from(uses))?])
    }

    /// Debits `units` of one counter at `at`: refused when the balance is short, and when the
    /// balance would do but the rights are held elsewhere (then it says how many to fetch).
    pub fn take(
        &mut self,
        at: &StoreId,
        counter: &Counter,
        units: u64,
    ) -> Result<RightsOp, WalletError> {
        if units == 0 {
            return Err(WalletError::NotPositive);
        }
        let held = self.held(counter, at);
        if held < units {
            let available = self.balance(counter);
            return Err(if available < units {
                WalletError::Insufficient {
                    available,
                    wanted: units,
                }
            } else {
                WalletError::RightsElsewhere {
                    wants: vec![(counter.clone(), units - held)],
                }
            });
        }
        let change = self.rights(counter).debit(at, units)?;
        Ok(Self::op(counter, change))
    }

    /// A cash refund of `principal` at `at`, with the bonus forfeited in proportion to the
    /// member's principal and bonus balances. Returns the ops and the bonus forfeited.
    pub fn refund(
        &mut self,
        at: &StoreId,
        principal: u64,
    ) -> Result<(Vec<RightsOp>, u64), WalletError> {
        let (p, b) = (Counter::Principal, Counter::Bonus);
        let (pb, bb) = (self.balance(&p), self.balance(&b));
        let available = pb.saturating_sub(self.owed_total());
        if principal > available {
            return Err(WalletError::Insufficient {
                available,
                wanted: principal,
            });
        }
        let forfeit = match pb {
            0 => 0,
            pb => {
                let share = u128::from(principal) * u128::from(bb) / u128::from(pb);
                u64::try_from(share).unwrap_or(u64::MAX).min(bb)
            }
        };
        // Both must be taken here: when either is held elsewhere, ask for both at once.
        let wants: Vec<(Counter, u64)> = [(p.clone(), principal), (b.clone(), forfeit)]
            .into_iter()
            .map(|(c, units)| {
                let short = units.saturating_sub(self.held(&c, at));
                (c, short)
            })
            .filter(|(_, short)| *short > 0)
            .collect();
        if !wants.is_empty() {
            return Err(WalletError::RightsElsewhere { wants });
        }
        let mut next = self.clone();
        let mut ops = vec![next.take(at, &p, principal)?];
        if forfeit > 0 {
            ops.push(next.take(at, &b, forfeit)?);
        }
        *self = next;
        Ok((ops, forfeit))
    }

    /// Headquarters (`taker`) takes every right the fenced store `from` holds, on every counter
    /// but the return tokens of its sales (see `escrow`). A fenced store may only have been cut
    /// off, and have spent what it held before it heard of the fence: a yuan, a point or a card
    /// use spent twice shows as a deficit the member owes, but a line returned twice would be
    /// money paid out twice with nothing to show for it. So a fenced store's sales are returned
    /// where they were made, or elsewhere once the store is back and gives its tokens up.
    pub fn reclaim(&mut self, taker: &StoreId, from: &StoreId) -> Vec<RightsOp> {
        let mut ops = Vec::new();
        for (counter, rights) in &mut self.counters {
            if matches!(counter, Counter::Returnable { .. }) {
                continue;
            }
            if let Some(change) = rights.reclaim(taker, from) {
                ops.push(Self::op(counter, change));
            }
        }
        ops
    }

    /// `from` hands `units` of one counter's rights to `to`.
    pub fn move_rights(
        &mut self,
        from: &StoreId,
        to: &StoreId,
        counter: &Counter,
        units: u64,
    ) -> Result<RightsOp, WalletError> {
        let change = self.rights(counter).transfer(from, to, units)?;
        Ok(Self::op(counter, change))
    }
}

/// The bonus a rule gives for `paid`, checked.
pub fn top_up_bonus(
    rules: &[TopUpRule],
    rule: Option<&str>,
    paid: Fen,
) -> Result<Fen, WalletError> {
    if paid.0 <= 0 {
        return Err(WalletError::NotPositive);
    }
    let Some(id) = rule else {
        return Ok(Fen(0));
    };
    let rule = rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| WalletError::UnknownRule(id.to_owned()))?;
    if paid < rule.pay_at_least {
        return Err(WalletError::RuleNotMet {
            rule: rule.id.clone(),
            least: rule.pay_at_least,
        });
    }
    Ok(rule.bonus)
}

/// Splits a stored-value payment of `amount` between principal and bonus, given what this
/// replica holds of each. Returns `(principal, bonus)`.
pub fn split_payment(
    amount: u64,
    held_principal: u64,
    held_bonus: u64,
    rule: BonusUse,
) -> Result<(u64, u64), WalletError> {
    if amount == 0 {
        return Err(WalletError::NotPositive);
    }
    let available = held_principal.saturating_add(held_bonus);
    if amount > available {
        return Err(WalletError::Insufficient {
            available,
            wanted: amount,
        });
    }
    let bonus = match rule {
        BonusUse::BonusFirst => amount.min(held_bonus),
        BonusUse::PrincipalFirst => amount.saturating_sub(held_principal),
        BonusUse::Proportional => {
            // Rounded half up, in integers wide enough for any two u64.
            let (amount, bonus, available) = (
                u128::from(amount),
                u128::from(held_bonus),
                u128::from(available),
            );
            u64::try_from((amount * bonus + available / 2) / available).unwrap_or(u64::MAX)
        }
    };
    // Rounding may ask one unit too many of either side; the other side covers it.
    let bonus = bonus
        .min(held_bonus)
        .max(amount.saturating_sub(held_principal));
    Ok((amount - bonus, bonus))
}

/// A chain's wallet rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRules {
    pub top_up_rules: Vec<TopUpRule>,
    pub bonus_use: BonusUse,
    pub points: PointsPolicy,
    /// The largest single top-up, to catch a mistyped amount.
    pub top_up_max: Fen,
    /// Offline overdraft (离线透支): how much a member may owe one store, and all members one
    /// store, when it cannot reach headquarters. Zero (the default) refuses the tender instead.
    pub overdraft_member: Fen,
    pub overdraft_store: Fen,
    /// Whether an offline overdraft needs a store manager at the till (a cashier is refused).
    pub overdraft_needs_manager: bool,
}

impl Default for WalletRules {
    fn default() -> Self {
        Self {
            top_up_rules: Vec::new(),
            bonus_use: BonusUse::default(),
            points: PointsPolicy::default(),
            top_up_max: Fen(5_000_000), // 50,000 yuan
            overdraft_member: Fen(0),
            overdraft_store: Fen(0),
            overdraft_needs_manager: false,
        }
    }
}

/// What a till shows of a member's wallet at one replica on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub principal: Fen,
    pub bonus: Fen,
    /// Stored value this replica may spend without asking anyone.
    pub held_here: Fen,
    /// Points spendable today, chain-wide, and how many of them this replica holds.
    pub points: u64,
    pub points_held_here: u64,
    /// Live lots: the year earned, the last day to spend them, points left.
    pub lots: Vec<(i32, Option<NaiveDate>, u64)>,
    pub cards: Vec<CardSummary>,
    pub password_set: bool,
    /// Offline overdrafts not yet paid off, and stored value a fenced store spent twice,
    /// chain-wide: what the member owes.
    pub owed: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    pub card: CardId,
    pub card_info: Card,
    /// Uses left on a count card (chain-wide) and held here; `None` for a period card.
    pub uses_left: Option<(u64, u64)>,
    pub usable_today: bool,
}

/// When points expire: those earned in a year are good until the end of a later year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsPolicy {
    /// `Some(1)`: points earned in 2026 expire at the end of 2027. `None`: never.
    pub keep_years: Option<u16>,
}

impl Default for PointsPolicy {
    fn default() -> Self {
        Self {
            keep_years: Some(1),
        }
    }
}

impl PointsPolicy {
    /// The last day points earned in `year` can be spent.
    pub fn last_day(&self, year: i32) -> Option<NaiveDate> {
        let keep = self.keep_years?;
        NaiveDate::from_ymd_opt(year + i32::from(keep), 12, 31)
    }

    pub fn lot_alive(&self, year: i32, today: NaiveDate) -> bool {
        self.last_day(year).is_none_or(|last| today <= last)
    }

    /// Takes `wanted` points from the live lots held, oldest first. `held` is `(year, points)`.
    pub fn take_oldest_first(
        &self,
        held: &[(i32, u64)],
        wanted: u64,
        today: NaiveDate,
    ) -> Result<Vec<(i32, u64)>, WalletError> {
        if wanted == 0 {
            return Err(WalletError::NotPositive);
        }
        let mut live: Vec<(i32, u64)> = held
            .iter()
            .copied()
            .filter(|(year, units)| *units > 0 && self.lot_alive(*year, today))
            .collect();
        live.sort();
        let available: u64 = live.iter().map(|(_, u)| *u).sum();
        if available < wanted {
            return Err(WalletError::Insufficient { available, wanted });
        }
        let mut left = wanted;
        let mut taken = Vec::new();
        for (year, units) in live {
            if left == 0 {
                break;
            }
            let take = units.min(left);
            taken.push((year, take));
            left -= take;
        }
        Ok(taken)
    }
}

/// The lot points earned on `date` go to.
pub fn lot_year(date: NaiveDate) -> i32 {
    date.year()
}

impl CardKind {
    /// Checks a new card's terms.
    pub fn validate(&self) -> Result<(), WalletError> {
        match self {
            CardKind::Count { uses, .. } if *uses == 0 || *uses > CARD_USES_MAX => {
                Err(WalletError::UsesOutOfRange)
            }
            CardKind::Period { from, to } if to < from => Err(WalletError::EmptyPeriod),
            _ => Ok(()),
        }
    }

    /// Whether the card can be used on `today`.
    pub fn usable_on(&self, card: &CardId, today: NaiveDate) -> Result<(), WalletError> {
        let (from, to) = match self {
            CardKind::Count { valid_to, .. } => (None, *valid_to),
            CardKind::Period { from, to } => (Some(*from), Some(*to)),
        };
        if let Some(from) = from
            && today < from
        {
            return Err(WalletError::CardNotYetValid(card.clone(), from));
        }
        if to.is_some_and(|to| today > to) {
            return Err(WalletError::CardExpired(card.clone()));
        }
        Ok(())
    }
}

/// Checks free text a cashier typed (a reason, a card name).
pub fn check_text(text: &str, max: usize) -> Result<(), WalletError> {
    if text.trim().is_empty() {
        return Err(WalletError::ReasonMissing);
    }
    if text.chars().count() > max {
        return Err(WalletError::TooLong(max));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    proptest! {
        /// Wrong passwords and password changes from several stores, taken in any order or
        /// merged replica by replica, leave the same wallet: the latest password, and the latest
        /// failures after it (at most the limit).
        #[test]
        fn password_failures_and_changes_merge_in_any_order(
            events in proptest::collection::vec((0u64..40, 0u8..3, proptest::bool::ANY), 1..24),
            split in 0usize..24,
        ) {
            let event = |(at, store, set): &(u64, u8, bool)| {
                let origin = StoreId::parse(&format!("S00{}", store + 1)).unwrap();
                let hlc = Hlc { wall_ms: at * 3_600_000, logical: u32::from(*store) };
                let event = match set {
                    true => WalletEvent::PasswordSet { hash: format!("h{at}") },
                    false => WalletEvent::PasswordFailed,
                };
                (origin, hlc, event)
            };
            let apply = |w: &mut Wallet, e: &(u64, u8, bool)| {
                let (origin, hlc, event) = event(e);
                w.apply(&origin, (hlc, day(2026, 12, 1)), &event, &[]);
            };
            let mut forward = Wallet::default();
            events.iter().for_each(|e| apply(&mut forward, e));
            let mut backward = Wallet::default();
            events.iter().rev().for_each(|e| apply(&mut backward, e));
            prop_assert_eq!(&forward, &backward);
            let (a, b) = events.split_at(split.min(events.len()));
            let (mut left, mut right) = (Wallet::default(), Wallet::default());
            a.iter().for_each(|e| apply(&mut left, e));
            b.iter().for_each(|e| apply(&mut right, e));
            left.merge(&right);
            prop_assert_eq!(&left, &forward);
            prop_assert!(forward.password_failures.len() <= PASSWORD_FAILURES_MAX);
        }
    }

    /// Five wrong passwords within a day lock the member until a day after the first of them;
    /// a new password lifts the lock at once.
    #[test]
    fn five_wrong_passwords_in_a_day_lock_until_it_lapses_or_a_new_one() {
        let store = StoreId::parse("S001").unwrap();
        let other = StoreId::parse("S002").unwrap();
        let hour = 3_600_000;
        let at = |h: u64| Hlc {
            wall_ms: h * hour,
            logical: 0,
        };
        let mut w = Wallet::default();
        let set = WalletEvent::PasswordSet { hash: "h".into() };
        w.apply(&store, (at(1), day(2026, 12, 1)), &set, &[]);
        for (h, origin) in [(2, &store), (3, &other), (4, &store), (5, &other)] {
            w.apply(
                origin,
                (at(h), day(2026, 12, 1)),
                &WalletEvent::PasswordFailed,
                &[],
            );
        }
        assert_eq!(w.password_failures_at(6 * hour), 4);
        assert_eq!(w.password_locked_until(6 * hour), None);
        w.apply(
            &other,
            (at(6), day(2026, 12, 1)),
            &WalletEvent::PasswordFailed,
            &[],
        );
        assert_eq!(w.password_locked_until(6 * hour), Some(26 * hour));
        assert_eq!(
            w.password_locked_until(26 * hour),
            None,
            "a day after the first"
        );
        assert_eq!(
            w.password_failures_at(26 * hour),
            4,
            "the first no longer counts"
        );
        let reset = WalletEvent::PasswordSet { hash: "h2".into() };
        w.apply(&store, (at(7), day(2026, 12, 1)), &reset, &[]);
        assert_eq!(w.password_locked_until(7 * hour), None);
        assert!(w.password_failures.is_empty());
    }

    #[test]
    fn top_up_rules_are_checked() {
        let rules = vec![TopUpRule {
            id: "5000+2000".into(),
            pay_at_least: Fen(5000_00),
            bonus: Fen(2000_00),
        }];
        assert_eq!(
            top_up_bonus(&rules, Some("5000+2000"), Fen(5000_00)),
            Ok(Fen(2000_00))
        );
        assert_eq!(top_up_bonus(&rules, None, Fen(1_00)), Ok(Fen(0)));
        assert!(matches!(
            top_up_bonus(&rules, Some("5000+2000"), Fen(4999_99)),
            Err(WalletError::RuleNotMet { .. })
        ));
        assert!(matches!(
            top_up_bonus(&rules, Some("nope"), Fen(5000_00)),
            Err(WalletError::UnknownRule(_))
        ));
        assert_eq!(
            top_up_bonus(&rules, None, Fen(0)),
            Err(WalletError::NotPositive)
        );
        assert_eq!(
            top_up_bonus(&rules, None, Fen(-1)),
            Err(WalletError::NotPositive)
        );
    }

    #[test]
    fn payments_split_by_rule() {
        // 5000 principal + 2000 bonus; pay 70: 50 principal, 20 bonus.
        assert_eq!(
            split_payment(70_00, 5000_00, 2000_00, BonusUse::Proportional),
            Ok((50_00, 20_00))
        );
        assert_eq!(
            split_payment(70_00, 5000_00, 2000_00, BonusUse::BonusFirst),
            Ok((0, 70_00))
        );
        assert_eq!(
            split_payment(70_00, 5000_00, 2000_00, BonusUse::PrincipalFirst),
            Ok((70_00, 0))
        );
        assert_eq!(
            split_payment(70_00, 60_00, 5_00, BonusUse::PrincipalFirst),
            Err(WalletError::Insufficient {
                available: 65_00,
                wanted: 70_00
            })
        );
    }

    #[test]
    fn points_expire_at_the_end_of_the_next_year() {
        let policy = PointsPolicy::default();
        assert_eq!(policy.last_day(2025), Some(day(2026, 12, 31)));
        assert!(policy.lot_alive(2025, day(2026, 12, 31)));
        assert!(!policy.lot_alive(2025, day(2027, 1, 1)));
        let held = [(2026, 50), (2025, 30), (2024, 1000)];
        assert_eq!(
            policy.take_oldest_first(&held, 60, day(2026, 6, 1)),
            Ok(vec![(2025, 30), (2026, 30)])
        );
        assert_eq!(
            policy.take_oldest_first(&held, 81, day(2026, 6, 1)),
            Err(WalletError::Insufficient {
                available: 80,
                wanted: 81
            })
        );
        assert!(
            PointsPolicy { keep_years: None }
                .take_oldest_first(&held, 1080, day(2030, 1, 1))
                .is_ok()
        );
    }

    #[test]
    fn cards_are_usable_only_in_their_period() {
        let card = SaleId::for_entry(&StoreId::parse("S001").unwrap(), 7);
        let month = CardKind::Period {
            from: day(2026, 11, 1),
            to: day(2026, 11, 30),
        };
        assert!(month.usable_on(&card, day(2026, 11, 30)).is_ok());
        assert!(matches!(
            month.usable_on(&card, day(2026, 12, 1)),
            Err(WalletError::CardExpired(_))
        ));
        assert!(matches!(
            month.usable_on(&card, day(2026, 10, 31)),
            Err(WalletError::CardNotYetValid(..))
        ));
        assert_eq!(
            CardKind::Count {
                uses: 0,
                valid_to: None
            }
            .validate(),
            Err(WalletError::UsesOutOfRange)
        );
        assert_eq!(
            CardKind::Period {
                from: day(2026, 2, 1),
                to: day(2026, 1, 1)
            }
            .validate(),
            Err(WalletError::EmptyPeriod)
        );
    }

    #[test]
    fn a_refund_forfeits_the_bonus_that_came_with_it() {
        let s1 = StoreId::parse("S001").unwrap();
        let mut w = Wallet::default();
        w.top_up(&s1, 5000_00, 2000_00).unwrap();
        let (_, forfeited) = w.refund(&s1, 2500_00).unwrap();
        assert_eq!(forfeited, 1000_00);
        assert_eq!(
            (w.balance(&Counter::Principal), w.balance(&Counter::Bonus)),
            (2500_00, 1000_00)
        );
        assert!(matches!(
            w.refund(&s1, 2500_01),
            Err(WalletError::Insufficient { .. })
        ));
    }

    #[test]
    fn counters_have_stable_keys() {
        let card = SaleId::for_entry(&StoreId::parse("S002").unwrap(), 12);
        let keys: Vec<String> = [
            Counter::Principal,
            Counter::Bonus,
            Counter::Points { year: 2026 },
            Counter::Uses { card },
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(keys, ["sv.p", "sv.b", "pt.2026", "cc.S002-00000012"]);
    }

    proptest! {
        #[test]
        fn a_split_pays_exactly_and_within_what_is_held(
            amount in 1u64..1_000_000, p in 0u64..1_000_000, b in 0u64..1_000_000, rule in 0..3usize,
        ) {
            let rule = [BonusUse::Proportional, BonusUse::PrincipalFirst, BonusUse::BonusFirst][rule];
            match split_payment(amount, p, b, rule) {
                Ok((pp, bb)) => {
                    prop_assert_eq!(pp + bb, amount);
                    prop_assert!(pp <= p && bb <= b);
                }
                Err(WalletError::Insufficient { .. }) => prop_assert!(amount > p + b),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn oldest_first_takes_exactly_from_live_lots(
            lots in proptest::collection::vec((2020i32..2030, 0u64..500), 0..6),
            wanted in 1u64..2000,
        ) {
            let policy = PointsPolicy::default();
            let today = day(2026, 6, 1);
            if let Ok(taken) = policy.take_oldest_first(&lots, wanted, today) {
                prop_assert_eq!(taken.iter().map(|(_, u)| u).sum::<u64>(), wanted);
                for (year, units) in &taken {
                    prop_assert!(policy.lot_alive(*year, today));
                    let held: u64 = lots.iter().filter(|(y, _)| y == year).map(|(_, u)| u).sum();
                    prop_assert!(*units <= held);
                }
            }
        }
    }
}
