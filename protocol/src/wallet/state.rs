//! A wallet as one replica knows it: taking in entries, merging, balances, what is owed, the
//! payment password's failures, and what a till is shown.

use super::*;

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
    #[serde(with = "super::cards::interned")]
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
                    closed: false,
                    clocked_in: None,
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
                let def = CouponDef {
                    name: name.clone(),
                    offer: offer.clone(),
                    from: *from,
                    to: *to,
                    issued_at: origin.clone(),
                    scope: Default::default(),
                    stacks: None,
                    campaign: None,
                };
                self.coupons.entry(coupon.clone()).or_insert(def);
            }
            WalletEvent::CampaignCoupon {
                coupon,
                campaign,
                template,
                name,
                offer,
                scope,
                stacks,
                from,
                to,
            } => {
                let def = CouponDef {
                    name: name.clone(),
                    offer: offer.clone(),
                    from: *from,
                    to: *to,
                    issued_at: origin.clone(),
                    scope: self.shared_scope(scope),
                    stacks: *stacks,
                    campaign: Some((campaign.clone(), template.clone())),
                };
                self.coupons.entry(coupon.clone()).or_insert(def);
            }
            WalletEvent::GiftRedeemed {
                coupon: Some(c), ..
            }
            | WalletEvent::ReferralReward {
                coupon: Some(c), ..
            } => {
                let def = CouponDef {
                    name: c.name.clone(),
                    offer: c.offer.clone(),
                    from: c.from,
                    to: c.to,
                    issued_at: origin.clone(),
                    scope: self.shared_scope(&c.scope),
                    stacks: c.stacks,
                    campaign: None,
                };
                self.coupons.entry(c.coupon.clone()).or_insert(def);
            }
            WalletEvent::Closed { .. } | WalletEvent::ClosedUnderRules { .. } => {
                if let Some(closing) = event.closing() {
                    self.close_cards(&closing);
                }
            }
            // The latest start wins; a stop clears the start it came after.
            WalletEvent::ClockedIn { card } => {
                if let Some(card) = self.cards.get_mut(card)
                    && card
                        .clocked_in
                        .as_ref()
                        .is_none_or(|(at, by)| (hlc, origin) > (*at, by))
                {
                    card.clocked_in = Some((hlc, origin.clone()));
                }
            }
            WalletEvent::ClockedOut { card, .. } => {
                if let Some(card) = self.cards.get_mut(card) {
                    card.visits = card.visits.saturating_add(1);
                    if card.clocked_in.as_ref().is_some_and(|(at, _)| *at < hlc) {
                        card.clocked_in = None;
                    }
                }
            }
            WalletEvent::Opening { cards, .. } => {
                for (id, c) in cards {
                    self.cards.entry(id.clone()).or_insert_with(|| Card {
                        name: c.name.clone(),
                        kind: c.kind.clone(),
                        price: c.price,
                        sold_at: origin.clone(),
                        sold_on: date,
                        visits: 0,
                        closed: false,
                        clocked_in: None,
                    });
                }
            }
            WalletEvent::TopUp { .. }
            | WalletEvent::PointsAdjusted { .. }
            | WalletEvent::Rights { .. }
            | WalletEvent::Refunded { .. }
            | WalletEvent::GiftRedeemed { coupon: None, .. }
            | WalletEvent::ReferralReward { coupon: None, .. }
            | WalletEvent::ReferralRevoked { .. }
            | WalletEvent::CouponsRedeemed { .. } => {}
        }
    }

    /// `scope`, shared with a coupon of this wallet that has the same (a booklet's coupons).
    fn shared_scope(
        &self,
        scope: &crate::pricing::CouponScope,
    ) -> std::sync::Arc<crate::pricing::CouponScope> {
        self.coupons
            .values()
            .find(|d| *d.scope == *scope)
            .map_or_else(|| std::sync::Arc::new(scope.clone()), |d| d.scope.clone())
    }

    /// Keeps the wrong passwords given after the password in force was set, the latest
    /// `PASSWORD_FAILURES_MAX` of them.
    pub(super) fn keep_failures(&mut self) {
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
                        uses_left: matches!(
                            info.kind,
                            CardKind::Count { .. } | CardKind::Timed { .. }
                        )
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

    pub(crate) fn settle(&mut self, at: &StoreId, amount: Fen) {
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

    /// Refuses a stored-value payment at `at` of `amount` the free balance does not cover,
    /// saying what principal headquarters would have to move here beyond what `at` holds in
    /// case `at` has not heard of all of the balance.
    pub fn require_free(&self, at: &StoreId, amount: u64) -> Result<(), WalletError> {
        let available = self.stored_value_free();
        if available >= amount {
            return Ok(());
        }
        let held = self
            .held(&Counter::Principal, at)
            .saturating_add(self.held(&Counter::Bonus, at));
        let wants = match amount.saturating_sub(held) {
            0 => Vec::new(),
            short => vec![(Counter::Principal, short)],
        };
        Err(WalletError::Insufficient {
            available,
            wanted: amount,
            wants,
        })
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
    pub(super) fn spendable(&self, rights: &Rights, at: &StoreId) -> u64 {
        match self.frozen_at.as_ref() == Some(at) {
            true => 0,
            false => rights.held(at),
        }
    }

    /// This copy treats `at` as holding nothing (see `frozen_at`).
    pub fn freeze(&mut self, at: &StoreId) {
        self.frozen_at = Some(at.clone());
    }

    pub(super) fn rights(&mut self, counter: &Counter) -> &mut Rights {
        self.counters.entry(counter.clone()).or_default()
    }

    pub(super) fn op(counter: &Counter, change: Change) -> RightsOp {
        RightsOp {
            counter: counter.clone(),
            change,
        }
    }
}
