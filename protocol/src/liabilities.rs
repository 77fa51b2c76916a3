//! Liabilities (负债): what the chain owes its members in stored value and live points, per
//! store what it issued, what was redeemed there and what it holds the rights to now, and what
//! members owe the chain back (offline overdrafts, and what a fenced store spent twice). Pure
//! arithmetic over wallets; headquarters' page and reports shape it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::ids::{MemberId, StoreId};
use crate::wallet::{Counter, PointsPolicy, Wallet};

/// The three kinds of liability a wallet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Principal,
    Bonus,
    Points,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Principal => "principal",
            Kind::Bonus => "bonus",
            Kind::Points => "points",
        }
    }
}

/// One store's part of one kind, in fen (points for `Points`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreRow {
    /// Credits taken at the store (top-ups, points earned there).
    pub issued: u64,
    /// Spent at the store.
    pub redeemed: u64,
    /// The rights the store holds now.
    pub held: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liabilities {
    pub members_with_wallets: usize,
    /// Chain-wide balance of each kind (points: only lots still alive).
    pub totals: BTreeMap<Kind, u64>,
    pub by_store: BTreeMap<(Kind, StoreId), StoreRow>,
    /// Offline overdrafts members still owe, by the store that allowed them (应收).
    pub receivables: BTreeMap<StoreId, u64>,
    /// Stored value a fenced store spent twice before it heard of its fence, by store …
    pub fence_receivables: BTreeMap<StoreId, u64>,
    /// … and the members who owe it: (store, member, fen).
    pub fence_members: Vec<(StoreId, MemberId, u64)>,
}

impl Liabilities {
    /// Adds up `wallets` as of `today` (points lots past `policy`'s expiry count for nothing).
    /// Sums saturate at `u64::MAX`, far beyond any chain's books.
    pub fn of<'a>(
        wallets: impl IntoIterator<Item = &'a (MemberId, Wallet)>,
        today: NaiveDate,
        policy: &PointsPolicy,
    ) -> Self {
        let add = |cell: &mut u64, units: u64| *cell = cell.saturating_add(units);
        let mut out = Liabilities::default();
        for (member, wallet) in wallets {
            out.members_with_wallets += 1;
            for store in wallet.owed.keys() {
                add(
                    out.receivables.entry(store.clone()).or_default(),
                    wallet.owed_at(store),
                );
            }
            for (store, units) in wallet.overspent_by() {
                add(
                    out.fence_receivables.entry(store.clone()).or_default(),
                    units,
                );
                out.fence_members.push((store, *member, units));
            }
            for (counter, rights) in &wallet.counters {
                let kind = match counter {
                    Counter::Principal => Kind::Principal,
                    Counter::Bonus => Kind::Bonus,
                    Counter::Points { year } if policy.lot_alive(*year, today) => Kind::Points,
                    _ => continue,
                };
                add(out.totals.entry(kind).or_default(), rights.balance());
                for store in rights.replicas() {
                    let row = out.by_store.entry((kind, store.clone())).or_default();
                    add(&mut row.issued, rights.transferred(&store, &store));
                    add(&mut row.redeemed, rights.debited(&store));
                    add(&mut row.held, rights.held(&store));
                }
            }
        }
        out
    }

    pub fn total(&self, kind: Kind) -> u64 {
        self.totals.get(&kind).copied().unwrap_or(0)
    }

    pub fn receivables_total(&self) -> u64 {
        self.receivables
            .values()
            .fold(0, |a, b| a.saturating_add(*b))
    }

    pub fn fence_receivables_total(&self) -> u64 {
        self.fence_receivables
            .values()
            .fold(0, |a, b| a.saturating_add(*b))
    }
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    fn store(s: &str) -> StoreId {
        StoreId::parse(s).unwrap()
    }

    /// A top-up at one store and a payment at another: the chain owes what is left, the first
    /// store issued it all, the second redeemed part of it with rights moved there; expired
    /// points count for nothing.
    #[test]
    fn what_is_owed_is_what_was_issued_less_what_was_redeemed() {
        let (s001, s002) = (store("S001"), store("S002"));
        let mut wallet = Wallet::default();
        let ops = wallet.top_up(&s001, 100_00, 20_00).unwrap();
        wallet.absorb(&s001, &ops);
        let moved = wallet
            .move_rights(&s001, &s002, &Counter::Principal, 30_00)
            .unwrap();
        wallet.absorb(&s001, &[moved]);
        let spent = wallet.take(&s002, &Counter::Principal, 30_00).unwrap();
        wallet.absorb(&s002, &[spent]);
        let old = wallet
            .give(&s001, &Counter::Points { year: 2020 }, 500)
            .unwrap();
        wallet.absorb(&s001, &[old]);
        let member = MemberId::mint(1, 1);
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let books = Liabilities::of(&[(member, wallet)], today, &PointsPolicy::default());
        assert_eq!(books.members_with_wallets, 1);
        assert_eq!(books.total(Kind::Principal), 70_00);
        assert_eq!(books.total(Kind::Bonus), 20_00);
        assert_eq!(books.total(Kind::Points), 0, "the 2020 lot has expired");
        let row = |kind, s: &StoreId| books.by_store[&(kind, s.clone())].clone();
        assert_eq!(row(Kind::Principal, &s001).issued, 100_00);
        assert_eq!(row(Kind::Principal, &s001).held, 70_00);
        assert_eq!(row(Kind::Principal, &s002).redeemed, 30_00);
        assert_eq!(row(Kind::Principal, &s002).held, 0);
        assert_eq!(books.receivables_total(), 0);
        assert_eq!(books.fence_receivables_total(), 0);
    }
}
