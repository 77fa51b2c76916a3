//! Spend rights for money, points and card uses: a bounded counter (escrow), after Balegas et
//! al., "Extending Eventually Consistent Cloud Databases for Enforcing Numeric Invariants"
//! (SRDS 2015). This is what lets a store spend offline without ever spending the same yuan twice.
//!
//! Per wallet, `rights[(i, i)]` counts the credits made at replica `i` (top-ups, points earned),
//! `rights[(i, j)]` the rights `i` has handed to `j`, and `debits[i]` what `i` has spent. Every
//! cell is written by exactly one replica (`i`, its row's owner) and only ever grows, so merging
//! two copies is an element-wise maximum and concurrent transfers never collide. A replica
//! spends or hands on only rights it holds, so no merge can take the balance below zero, and
//! the rights held by all replicas always add up to the balance.
//!
//! One more cell kind lets headquarters take back the rights of a store that has gone quiet for
//! good: `reclaimed[(taker, from)]`, written only by the taker (headquarters), of what `from`
//! held in the taker's copy when it was *fenced*. A store that was only cut off, not dead, may
//! still have spent those rights before it heard of the fence; its entries are still taken in
//! (an acknowledged sale is never dropped), and what it spent of rights headquarters had taken
//! back shows as a *deficit*: `from` holds less than nothing. It is the one place a replica may
//! hold a negative, never more than was reclaimed from it (the property test checks both), and
//! where the deficit took the balance below zero the member owes the difference: the
//! wallet's `overspent`, a receivable, never a silent loss. Headquarters covers a deficit from
//! its pool when it can, so the phantom rights the double spend left elsewhere go back to zero.
//!
//! Units are whole fen, whole points or whole card uses: the caller's ledger decides which.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::StoreId;

/// Why an operation on rights was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RightsError {
    #[error("{replica} holds {held} units, {wanted} wanted")]
    Insufficient {
        replica: StoreId,
        held: u64,
        wanted: u64,
    },
    #[error("an amount of zero units")]
    Zero,
    #[error("rights cannot be handed to oneself")]
    SelfTransfer,
    #[error("amount out of range")]
    Overflow,
}

/// One cell write, as recorded in the log of the replica that made it (its owner): the units
/// the operation moved and the cell's total afterwards. Taking it in is a maximum on one cell,
/// so it is idempotent and commutes with every other write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Credit {
        units: u64,
        total: u64,
    },
    Debit {
        units: u64,
        total: u64,
    },
    Transfer {
        to: StoreId,
        units: u64,
        total: u64,
    },
    /// The owner took `from`'s rights after fencing it (see the module text).
    Reclaim {
        from: StoreId,
        units: u64,
        total: u64,
    },
}

impl Change {
    pub fn units(&self) -> u64 {
        match self {
            Change::Credit { units, .. }
            | Change::Debit { units, .. }
            | Change::Transfer { units, .. }
            | Change::Reclaim { units, .. } => *units,
        }
    }
}

/// The rights state of one wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    /// `(from, to)` → units; `(i, i)` are credits made at `i`.
    cells: BTreeMap<(StoreId, StoreId), u64>,
    /// Units spent at each replica.
    debits: BTreeMap<StoreId, u64>,
    /// `(taker, from)` → units the taker reclaimed from a fenced replica.
    reclaimed: BTreeMap<(StoreId, StoreId), u64>,
}

fn bump(cell: &mut u64, units: u64) -> Result<u64, RightsError> {
    *cell = cell.checked_add(units).ok_or(RightsError::Overflow)?;
    Ok(*cell)
}

impl Rights {
    fn cell(&self, from: &StoreId, to: &StoreId) -> u64 {
        self.cells
            .get(&(from.clone(), to.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// Rights `replica` holds: its credits, plus what others handed it, minus what it handed
    /// on, minus what it spent. Computed wide, since a stale copy may know a spend before the
    /// transfer that paid for it; a causally complete copy never shows a negative.
    pub fn held_signed(&self, replica: &StoreId) -> i128 {
        let mut held = i128::from(self.debits.get(replica).copied().unwrap_or(0)).wrapping_neg();
        for ((from, to), units) in &self.cells {
            let units = i128::from(*units);
            if to == replica {
                held += units; // credits at `replica` (from == to) and transfers to it
            }
            if from == replica && to != replica {
                held -= units;
            }
        }
        for ((taker, from), units) in &self.reclaimed {
            let units = i128::from(*units);
            if taker == replica {
                held += units;
            }
            if from == replica {
                held -= units;
            }
        }
        held
    }

    /// Rights `replica` may spend or hand on now.
    pub fn held(&self, replica: &StoreId) -> u64 {
        u64::try_from(self.held_signed(replica).max(0)).unwrap_or(u64::MAX)
    }

    /// Credits minus debits, everywhere.
    pub fn balance_signed(&self) -> i128 {
        let credits: i128 = self
            .cells
            .iter()
            .filter(|((f, t), _)| f == t)
            .map(|(_, u)| i128::from(*u))
            .sum();
        let debits: i128 = self.debits.values().map(|u| i128::from(*u)).sum();
        credits - debits
    }

    pub fn balance(&self) -> u64 {
        u64::try_from(self.balance_signed().max(0)).unwrap_or(u64::MAX)
    }

    /// Every replica that appears in this wallet's state.
    pub fn replicas(&self) -> Vec<StoreId> {
        let mut all: Vec<StoreId> = self
            .cells
            .keys()
            .chain(self.reclaimed.keys())
            .flat_map(|(f, t)| [f.clone(), t.clone()])
            .chain(self.debits.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// A top-up or points earned at `at`: new rights, held there.
    pub fn credit(&mut self, at: &StoreId, units: u64) -> Result<Change, RightsError> {
        if units == 0 {
            return Err(RightsError::Zero);
        }
        let cell = self.cells.entry((at.clone(), at.clone())).or_default();
        let total = bump(cell, units)?;
        Ok(Change::Credit { units, total })
    }

    fn require(&self, at: &StoreId, units: u64) -> Result<(), RightsError> {
        if units == 0 {
            return Err(RightsError::Zero);
        }
        let held = self.held(at);
        if held < units {
            return Err(RightsError::Insufficient {
                replica: at.clone(),
                held,
                wanted: units,
            });
        }
        Ok(())
    }

    /// A spend at `at`, within the rights it holds: local, no network needed.
    pub fn debit(&mut self, at: &StoreId, units: u64) -> Result<Change, RightsError> {
        self.require(at, units)?;
        let total = bump(self.debits.entry(at.clone()).or_default(), units)?;
        Ok(Change::Debit { units, total })
    }

    /// `from` hands `units` of its rights to `to` (a grant from HQ, or a store giving back).
    pub fn transfer(
        &mut self,
        from: &StoreId,
        to: &StoreId,
        units: u64,
    ) -> Result<Change, RightsError> {
        if from == to {
            return Err(RightsError::SelfTransfer);
        }
        self.require(from, units)?;
        let total = bump(
            self.cells.entry((from.clone(), to.clone())).or_default(),
            units,
        )?;
        Ok(Change::Transfer {
            to: to.clone(),
            units,
            total,
        })
    }

    /// `taker` takes every right `from` holds, once `from` is fenced and `self` holds its whole
    /// log up to the fence (the caller's duty: the hub does this only for a fenced store).
    /// There must be one taker only (headquarters): two takers, each unaware of the other's
    /// reclaim, would both take the same rights (the property test below found exactly that).
    /// `None` when `from` holds nothing.
    pub fn reclaim(&mut self, taker: &StoreId, from: &StoreId) -> Option<Change> {
        let units = self.held(from);
        if units == 0 || taker == from || *taker != StoreId::hq() {
            return None;
        }
        let cell = self
            .reclaimed
            .entry((taker.clone(), from.clone()))
            .or_default();
        let total = bump(cell, units).ok()?;
        Some(Change::Reclaim {
            from: from.clone(),
            units,
            total,
        })
    }

    /// Takes in one cell write that `owner` made (from its log): a maximum on that cell.
    pub fn absorb(&mut self, owner: &StoreId, change: &Change) {
        let (cell, total) = match change {
            Change::Credit { total, .. } => (
                self.cells
                    .entry((owner.clone(), owner.clone()))
                    .or_default(),
                total,
            ),
            Change::Transfer { to, total, .. } => (
                self.cells.entry((owner.clone(), to.clone())).or_default(),
                total,
            ),
            Change::Debit { total, .. } => (self.debits.entry(owner.clone()).or_default(), total),
            // Only headquarters takes back rights; anyone else's claim to is ignored everywhere.
            Change::Reclaim { .. } if *owner != StoreId::hq() => return,
            Change::Reclaim { from, total, .. } => (
                self.reclaimed
                    .entry((owner.clone(), from.clone()))
                    .or_default(),
                total,
            ),
        };
        *cell = (*cell).max(*total);
    }

    /// Rights `replica` spent beyond what it held: only a fenced store that kept spending what
    /// headquarters had taken back has one (see the module text).
    pub fn deficit(&self, replica: &StoreId) -> u64 {
        u64::try_from(self.held_signed(replica).min(0).unsigned_abs()).unwrap_or(u64::MAX)
    }

    /// Units reclaimed from `replica` by headquarters (it was fenced).
    pub fn reclaimed_from(&self, replica: &StoreId) -> u64 {
        self.reclaimed
            .iter()
            .filter(|((_, from), _)| from == replica)
            .map(|(_, units)| *units)
            .fold(0, u64::saturating_add)
    }

    /// Units spent beyond the balance (a receivable: the member owes them), by the fenced
    /// replicas whose deficits took it below zero. Empty for a balance of zero or more.
    pub fn overspent_by(&self) -> Vec<(StoreId, u64)> {
        let mut left =
            u64::try_from(self.balance_signed().min(0).unsigned_abs()).unwrap_or(u64::MAX);
        let mut by = Vec::new();
        for replica in self.replicas() {
            let units = self.deficit(&replica).min(left);
            if units > 0 {
                by.push((replica, units));
                left -= units;
            }
        }
        by
    }

    /// Units spent beyond the balance, chain-wide.
    pub fn overspent(&self) -> u64 {
        u64::try_from(self.balance_signed().min(0).unsigned_abs()).unwrap_or(u64::MAX)
    }

    /// Headquarters covers a fenced store's deficit from what it holds: a transfer to the store
    /// of as much as both allow. `None` when there is nothing to cover or nothing to cover it
    /// with.
    pub fn cover(&mut self, hq: &StoreId, store: &StoreId) -> Option<Change> {
        let units = self.deficit(store).min(self.held(hq));
        match units {
            0 => None,
            units => self.transfer(hq, store, units).ok(),
        }
    }

    /// The bank's audit of one copy: nobody holding a negative except a fenced store's deficit
    /// (never more than was reclaimed from it), and the rights held adding up to the balance,
    /// which is below zero only by those deficits. Says what is wrong.
    pub fn audit(&self) -> Result<(), String> {
        let balance = self.balance_signed();
        let mut held = 0i128;
        let mut deficits = 0i128;
        for replica in self.replicas() {
            let h = self.held_signed(&replica);
            if h < 0 {
                let reclaimed = i128::from(self.reclaimed_from(&replica));
                if -h > reclaimed {
                    return Err(format!(
                        "{replica} holds {h}: it spent or gave rights it did not hold \
                         ({reclaimed} were reclaimed from it)"
                    ));
                }
                deficits += -h;
            }
            held += h;
        }
        if held != balance {
            return Err(format!(
                "rights held add up to {held}, the balance is {balance}"
            ));
        }
        if balance < -deficits {
            return Err(format!("negative balance {balance}"));
        }
        Ok(())
    }

    /// Units spent at `replica`.
    pub fn debited(&self, replica: &StoreId) -> u64 {
        self.debits.get(replica).copied().unwrap_or(0)
    }

    /// Takes in another copy of the same wallet: element-wise maximum.
    pub fn merge(&mut self, other: &Rights) {
        for (key, units) in &other.cells {
            let cell = self.cells.entry(key.clone()).or_default();
            *cell = (*cell).max(*units);
        }
        for (replica, units) in &other.debits {
            let cell = self.debits.entry(replica.clone()).or_default();
            *cell = (*cell).max(*units);
        }
        for (key, units) in &other.reclaimed {
            let cell = self.reclaimed.entry(key.clone()).or_default();
            *cell = (*cell).max(*units);
        }
    }

    /// How far `self` is from containing `other` in every cell (for checkers and tests).
    pub fn dominates(&self, other: &Rights) -> bool {
        other
            .cells
            .iter()
            .all(|(k, u)| self.cells.get(k).is_some_and(|mine| mine >= u))
            && other
                .debits
                .iter()
                .all(|(k, u)| self.debits.get(k).is_some_and(|mine| mine >= u))
            && other
                .reclaimed
                .iter()
                .all(|(k, u)| self.reclaimed.get(k).is_some_and(|mine| mine >= u))
    }

    /// The cell `(from, to)`, for reports.
    pub fn transferred(&self, from: &StoreId, to: &StoreId) -> u64 {
        self.cell(from, to)
    }
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn replica(i: usize) -> StoreId {
        [
            StoreId::hq(),
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
            StoreId::parse("S003").unwrap(),
        ][i]
            .clone()
    }

    #[test]
    fn two_offline_stores_cannot_both_spend_the_last_100_yuan() {
        let (hq, a, b) = (replica(0), replica(1), replica(2));
        let mut bank = Rights::default();
        bank.credit(&a, 100_00).unwrap(); // topped up at A
        let (mut at_a, mut at_b) = (bank.clone(), bank.clone());
        assert!(at_a.debit(&a, 100_00).is_ok());
        assert_eq!(
            at_b.debit(&b, 100_00),
            Err(RightsError::Insufficient {
                replica: b.clone(),
                held: 0,
                wanted: 100_00
            })
        );
        at_a.merge(&at_b);
        assert_eq!(at_a.balance(), 0);
        // A hands rights to HQ, HQ grants them to B: now B may spend.
        let mut state = Rights::default();
        state.credit(&a, 50_00).unwrap();
        state.transfer(&a, &hq, 50_00).unwrap();
        state.transfer(&hq, &b, 30_00).unwrap();
        state.debit(&b, 30_00).unwrap();
        assert_eq!(
            (
                state.held(&a),
                state.held(&hq),
                state.held(&b),
                state.balance()
            ),
            (0, 20_00, 0, 20_00)
        );
    }

    #[test]
    fn headquarters_reclaims_what_a_fenced_store_holds() {
        let (hq, a, b) = (replica(0), replica(1), replica(2));
        let mut state = Rights::default();
        state.credit(&a, 100_00).unwrap();
        state.debit(&a, 30_00).unwrap();
        let change = state.reclaim(&hq, &a).unwrap();
        assert_eq!(change.units(), 70_00);
        assert_eq!(
            (state.held(&a), state.held(&hq), state.balance()),
            (0, 70_00, 70_00)
        );
        assert_eq!(state.reclaim(&hq, &a), None, "nothing left to take");
        state.transfer(&hq, &b, 70_00).unwrap();
        // Any copy that takes in the reclaim (with the fenced store's log) agrees.
        let mut other = Rights::default();
        other.absorb(
            &a,
            &Change::Credit {
                units: 100_00,
                total: 100_00,
            },
        );
        other.absorb(
            &a,
            &Change::Debit {
                units: 30_00,
                total: 30_00,
            },
        );
        other.absorb(&hq, &change);
        assert_eq!((other.held(&a), other.held(&hq)), (0, 70_00));
        assert!(state.audit().is_ok() && other.audit().is_ok());
    }

    /// The tester's case: a store cut off but alive is fenced; it spends what it held while
    /// headquarters has already given the same rights to another store, which spends them too.
    /// Both sales count; the member owes what was spent twice, and the bank still adds up.
    #[test]
    fn a_fenced_store_that_kept_spending_leaves_a_receivable_not_a_loss() {
        let (hq, a, b) = (replica(0), replica(1), replica(2));
        let mut hub = Rights::default();
        hub.credit(&b, 300_00).unwrap();
        hub.transfer(&b, &hq, 150_00).unwrap();
        hub.transfer(&hq, &a, 150_00).unwrap();
        hub.debit(&a, 10_00).unwrap();
        hub.debit(&b, 10_00).unwrap();
        let mut cut_off_b = hub.clone(); // b hears nothing more
        let reclaim = hub.reclaim(&hq, &b).unwrap();
        assert_eq!(reclaim.units(), 140_00);
        hub.transfer(&hq, &a, 140_00).unwrap();
        hub.debit(&a, 280_00).unwrap();
        let spent_after_fence = cut_off_b.debit(&b, 140_00).unwrap();
        hub.absorb(&b, &spent_after_fence);
        assert_eq!(hub.balance_signed(), -140_00);
        assert_eq!(hub.deficit(&b), 140_00);
        assert_eq!(hub.overspent_by(), vec![(b.clone(), 140_00)]);
        assert_eq!(hub.audit(), Ok(()));
        // The member tops up 500 at a: they owe nothing more, and the rights a holds beyond the
        // balance are phantoms headquarters moves back to b once it holds them.
        hub.credit(&a, 500_00).unwrap();
        assert_eq!((hub.overspent(), hub.balance()), (0, 360_00));
        assert_eq!(hub.cover(&hq, &b), None, "headquarters holds nothing yet");
        hub.transfer(&a, &hq, 140_00).unwrap();
        assert_eq!(hub.cover(&hq, &b).map(|c| c.units()), Some(140_00));
        assert_eq!(
            (hub.deficit(&b), hub.held(&a), hub.balance()),
            (0, 360_00, 360_00)
        );
        assert_eq!(hub.audit(), Ok(()));
    }

    #[test]
    fn bad_amounts_change_nothing() {
        let (a, b) = (replica(1), replica(2));
        let mut state = Rights::default();
        state.credit(&a, 10).unwrap();
        let before = state.clone();
        assert_eq!(state.credit(&a, 0), Err(RightsError::Zero));
        assert_eq!(state.debit(&a, 0), Err(RightsError::Zero));
        assert_eq!(state.transfer(&a, &a, 1), Err(RightsError::SelfTransfer));
        assert!(matches!(
            state.transfer(&a, &b, 11),
            Err(RightsError::Insufficient { .. })
        ));
        assert!(matches!(
            state.debit(&b, 1),
            Err(RightsError::Insufficient { .. })
        ));
        assert_eq!(state.credit(&a, u64::MAX), Err(RightsError::Overflow));
        assert_eq!(state, before);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Credit {
            at: usize,
            units: u64,
        },
        Debit {
            at: usize,
            units: u64,
        },
        Transfer {
            from: usize,
            to: usize,
            units: u64,
        },
        /// Replica `into` takes in replica `from`'s copy.
        Merge {
            from: usize,
            into: usize,
        },
        /// Headquarters (replica 0) fences `from` at what its copy of `from`'s log holds and
        /// reclaims what `from` holds there. `from` may be only cut off: it goes on writing
        /// on its own copy until it takes in headquarters' (a merge).
        Fence {
            from: usize,
        },
        /// Headquarters covers a fenced replica's deficit from its pool.
        Cover {
            store: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, 1..500u64).prop_map(|(at, units)| Op::Credit { at, units }),
            (0..4usize, 1..500u64).prop_map(|(at, units)| Op::Debit { at, units }),
            (0..4usize, 0..4usize, 1..500u64).prop_map(|(from, to, units)| Op::Transfer {
                from,
                to,
                units
            }),
            (0..4usize, 0..4usize).prop_map(|(from, into)| Op::Merge { from, into }),
            (1..4usize).prop_map(|from| Op::Fence { from }),
            (1..4usize).prop_map(|store| Op::Cover { store }),
        ]
    }

    /// Each replica works on its own copy and spends only what its copy says it holds.
    fn play(ops: &[Op]) -> Vec<Rights> {
        play_logged(ops).0
    }

    /// Also returns every cell write each replica made, in its order (its log).
    fn play_logged(ops: &[Op]) -> (Vec<Rights>, Vec<Vec<Change>>) {
        let mut copies = vec![Rights::default(); 4];
        let mut logs = vec![Vec::new(); 4];
        let mut fenced = [false; 4];
        for op in ops {
            let (at, change) = match *op {
                Op::Credit { at, units } => (at, copies[at].credit(&replica(at), units)),
                Op::Debit { at, units } => (at, copies[at].debit(&replica(at), units)),
                Op::Transfer { from, to, units } => (
                    from,
                    copies[from].transfer(&replica(from), &replica(to), units),
                ),
                Op::Merge { from, into } => {
                    let other = copies[from].clone();
                    copies[into].merge(&other);
                    continue;
                }
                // Headquarters fences once, at what its own copy holds (it has no other).
                Op::Fence { from } if !fenced[from] => {
                    fenced[from] = true;
                    match copies[0].reclaim(&replica(0), &replica(from)) {
                        Some(change) => (0, Ok(change)),
                        None => continue,
                    }
                }
                Op::Fence { .. } => continue,
                Op::Cover { store } => match copies[0].cover(&replica(0), &replica(store)) {
                    Some(change) => (0, Ok(change)),
                    None => continue,
                },
            };
            if let Ok(change) = change {
                logs[at].push(change);
            }
        }
        (copies, logs)
    }

    /// The audit, and the fence's bound: a replica's deficit never exceeds what headquarters
    /// reclaimed from it, so a fence can cost at most what the fenced store held.
    fn sound(state: &Rights) -> Result<(), TestCaseError> {
        prop_assert_eq!(state.audit(), Ok(()));
        for i in 0..4 {
            prop_assert!(state.deficit(&replica(i)) <= state.reclaimed_from(&replica(i)));
        }
        let overspent: u64 = state.overspent_by().iter().map(|(_, u)| u).sum();
        prop_assert_eq!(overspent, state.overspent());
        Ok(())
    }

    proptest! {
        #[test]
        fn no_allowed_operations_and_merges_go_below_zero(ops in proptest::collection::vec(op(), 0..120)) {
            let copies = play(&ops);
            let mut all = Rights::default();
            for copy in &copies {
                sound(copy)?;
                all.merge(copy);
            }
            sound(&all)?;
        }

        /// Taking in every replica's cell writes, in any order and any number of times, gives
        /// the same state as merging every replica's copy: logs are enough to converge.
        #[test]
        fn absorbing_logs_in_any_order_equals_merging_copies(
            ops in proptest::collection::vec(op(), 0..120),
            order in proptest::collection::vec((0..4usize, 0..200usize), 0..400),
        ) {
            let (copies, logs) = play_logged(&ops);
            let mut merged = Rights::default();
            copies.iter().for_each(|c| merged.merge(c));
            let mut absorbed = Rights::default();
            for (i, pick) in order {
                if let Some(change) = logs[i].get(pick % logs[i].len().max(1)) {
                    absorbed.absorb(&replica(i), change);
                }
            }
            for (i, log) in logs.iter().enumerate() {
                log.iter().for_each(|c| absorbed.absorb(&replica(i), c));
            }
            sound(&absorbed)?;
            prop_assert_eq!(absorbed, merged);
        }

        #[test]
        fn merge_is_commutative_associative_idempotent(
            a in proptest::collection::vec(op(), 0..60),
            b in proptest::collection::vec(op(), 0..60),
            c in proptest::collection::vec(op(), 0..60),
            pick in (0..4usize, 0..4usize, 0..4usize),
        ) {
            let (x, y, z) = (play(&a)[pick.0].clone(), play(&b)[pick.1].clone(), play(&c)[pick.2].clone());
            let merged = |l: &Rights, r: &Rights| { let mut m = l.clone(); m.merge(r); m };
            prop_assert_eq!(merged(&x, &y), merged(&y, &x));
            prop_assert_eq!(merged(&merged(&x, &y), &z), merged(&x, &merged(&y, &z)));
            prop_assert_eq!(merged(&x, &x), x.clone());
            prop_assert!(merged(&x, &y).dominates(&x) && merged(&x, &y).dominates(&y));
        }
    }
}
