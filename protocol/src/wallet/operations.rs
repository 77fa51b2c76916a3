//! Stored value moving: top-up, payment, refund, taking a counter, and rights moved or taken
//! back by headquarters.

use super::*;

impl Wallet {
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
                    wants: Vec::new(),
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
                wants: Vec::new(),
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
