//! Cross-store settlement (跨店清分): when a member who prepaid at store A spends that stored
//! value at store B, A holds the cash and B handed over the goods, so A owes B.
//!
//! Spends are matched to the top-ups that funded them first-in, first-out, per member and
//! separately for principal and bonus, in headquarters' order of the entries (the feed). Only
//! spends whose business date falls in the period count toward the period's matrix; the queue
//! of earlier top-ups is still consumed by spends before the period.
//!
//! A return that puts stored value back undoes its sale's spend, wherever it is made: the
//! value goes back to the front of its funders' queues (it is their prepayment again), and in
//! the return's period the store that was paid owes the funder back what the sale took
//! (matched last first). The matrix is gross: a sale and its return in one period show both.

use std::collections::{BTreeMap, VecDeque};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::entry::Payload;
use crate::escrow::Change;
use crate::ids::{MemberId, SaleId, StoreId};
use crate::wallet::Counter;

pub mod cells;

/// What one store owes another for a period, in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    pub principal: u64,
    pub bonus: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Part {
    Principal,
    Bonus,
}

/// Builds the matrix for the period `from..=to` from entries in headquarters' order.
#[derive(Debug, Default)]
pub struct Settlement {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    funding: BTreeMap<(MemberId, Part), VecDeque<(StoreId, u64)>>,
    /// `(funded_by, spent_at)` → owed.
    pub owed: BTreeMap<(StoreId, StoreId), Owed>,
    /// Spent at the store that was paid for it: nothing to settle.
    pub local: Owed,
    /// Spends with no top-up in the queue to match (entries from before the records began).
    pub unmatched: Owed,
    /// What each sale's spends were matched to, for its returns: (funder, spent at, part, units).
    by_sale: BTreeMap<SaleId, Vec<(StoreId, StoreId, Part, u64)>>,
}

/// The sale an entry spends for or returns (and whether it is a return).
fn sale_of(payload: &Payload) -> (Option<&SaleId>, bool) {
    match payload {
        Payload::Sale { sale, .. } => (Some(&sale.sale_id), false),
        Payload::Checkout { sale, .. } => (Some(&sale.sale_id), false),
        Payload::Return { sale, .. } => (Some(sale), true),
        Payload::ItemReturn { ret, .. } => (Some(&ret.sale_id), true),
        _ => (None, false),
    }
}

impl Settlement {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            from: Some(from),
            to: Some(to),
            ..Self::default()
        }
    }

    fn in_period(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }

    /// Takes in one entry (in headquarters' order).
    pub fn take(&mut self, entry: &Entry) {
        let Some((member, ops)) = entry.payload.rights_ops() else {
            return;
        };
        let counted = self.in_period(entry.business_date);
        let (sale, refund) = sale_of(&entry.payload);
        for op in ops {
            let part = match op.counter {
                Counter::Principal => Part::Principal,
                Counter::Bonus => Part::Bonus,
                _ => continue,
            };
            match &op.change {
                Change::Credit { units, .. } if refund && sale.is_some() => {
                    if let Some(sale) = sale {
                        self.reverse(member, part, sale, &entry.origin, *units, counted);
                    }
                }
                Change::Credit { units, .. } => self
                    .funding
                    .entry((member, part))
                    .or_default()
                    .push_back((entry.origin.clone(), *units)),
                Change::Debit { units, .. } => {
                    let matched = self.spend(member, part, &entry.origin, *units, counted);
                    if let Some(sale) = sale {
                        let record = self.by_sale.entry(sale.clone()).or_default();
                        record.extend(
                            matched
                                .into_iter()
                                .map(|(funder, units)| (funder, entry.origin.clone(), part, units)),
                        );
                    }
                }
                // rights moving is not money moving
                Change::Transfer { .. } | Change::Reclaim { .. } => {}
            }
        }
    }

    /// `units` of `part` put back by a return of `sale` at `at`: undoes the sale's spend, last
    /// matched first; what the sale's record cannot explain is new funding at `at`.
    fn reverse(
        &mut self,
        member: MemberId,
        part: Part,
        sale: &SaleId,
        at: &StoreId,
        units: u64,
        counted: bool,
    ) {
        let mut left = units;
        let record = self.by_sale.entry(sale.clone()).or_default();
        let mut undone = Vec::new();
        while left > 0 {
            let Some(k) = record.iter().rposition(|r| r.2 == part && r.3 > 0) else {
                break;
            };
            let (funder, paid, _, matched) = &mut record[k];
            let take = (*matched).min(left);
            *matched -= take;
            left -= take;
            undone.push((funder.clone(), paid.clone(), take));
        }
        let queue = self.funding.entry((member, part)).or_default();
        if left > 0 {
            queue.push_back((at.clone(), left));
        }
        for (funder, paid, take) in undone {
            queue.push_front((funder.clone(), take));
            if counted && funder != paid {
                let owed = self.owed.entry((paid, funder)).or_default();
                match part {
                    Part::Principal => owed.principal += take,
                    Part::Bonus => owed.bonus += take,
                }
            }
        }
    }

    /// Matches a spend to its funders; returns what it was matched to.
    fn spend(
        &mut self,
        member: MemberId,
        part: Part,
        at: &StoreId,
        units: u64,
        counted: bool,
    ) -> Vec<(StoreId, u64)> {
        let queue = self.funding.entry((member, part)).or_default();
        let mut left = units;
        let mut matched = Vec::new();
        while left > 0 {
            let Some((funder, available)) = queue.front_mut() else {
                break;
            };
            let take = (*available).min(left);
            *available -= take;
            left -= take;
            matched.push((funder.clone(), take));
            if *available == 0 {
                queue.pop_front();
            }
        }
        if !counted {
            return matched;
        }
        let add = |owed: &mut Owed, units: u64| match part {
            Part::Principal => owed.principal += units,
            Part::Bonus => owed.bonus += units,
        };
        add(&mut self.unmatched, left);
        for (funder, units) in &matched {
            if funder == at {
                add(&mut self.local, *units);
            } else {
                add(
                    self.owed.entry((funder.clone(), at.clone())).or_default(),
                    *units,
                );
            }
        }
        matched
    }
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use crate::entry::{EntryHash, Payload};
    use crate::escrow::Rights;
    use crate::hlc::Hlc;
    use crate::ids::{StaffId, TxId};
    use crate::wallet::{Movement, RightsOp, WalletEvent};
    use proptest::prelude::*;

    fn store(i: usize) -> StoreId {
        StoreId::parse(["S001", "S002", "S003"][i]).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn entry(origin: &StoreId, date: NaiveDate, ops: Vec<RightsOp>) -> Entry {
        Entry {
            origin: origin.clone(),
            seq: 1,
            hlc: Hlc::ZERO,
            business_date: date,
            staff: StaffId::system(),
            tx: TxId::parse("settle-test").unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload: Payload::Wallet {
                member_id: MemberId::mint(1, 1),
                event: WalletEvent::Rights {
                    movement: Movement::Grant,
                },
                ops,
            },
        }
    }

    fn op(counter: Counter, change: Change) -> RightsOp {
        RightsOp { counter, change }
    }

    #[test]
    fn a_member_prepaid_at_a_who_spends_at_b_makes_a_owe_b() {
        let mut s = Settlement::new(day(1), day(30));
        let credit = |units| Change::Credit { units, total: 0 };
        let debit = |units| Change::Debit { units, total: 0 };
        s.take(&entry(
            &store(0),
            day(2),
            vec![
                op(Counter::Principal, credit(500_00)),
                op(Counter::Bonus, credit(100_00)),
            ],
        ));
        s.take(&entry(
            &store(1),
            day(3),
            vec![op(Counter::Principal, credit(50_00))],
        ));
        // 600 spent at S002: 500 principal from S001 first, then 50 of its own; bonus from S001.
        s.take(&entry(
            &store(1),
            day(4),
            vec![
                op(Counter::Principal, debit(520_00)),
                op(Counter::Bonus, debit(80_00)),
            ],
        ));
        assert_eq!(
            s.owed.get(&(store(0), store(1))),
            Some(&Owed {
                principal: 500_00,
                bonus: 80_00
            })
        );
        assert_eq!(s.local.principal, 20_00);
        // Outside the period: consumes the queue, counts nowhere.
        let mut later = Settlement::new(day(5), day(30));
        later.take(&entry(
            &store(0),
            day(2),
            vec![op(Counter::Principal, credit(10_00))],
        ));
        later.take(&entry(
            &store(1),
            day(4),
            vec![op(Counter::Principal, debit(10_00))],
        ));
        assert!(later.owed.is_empty() && later.local == Owed::default());
    }

    #[test]
    fn a_return_elsewhere_undoes_the_spend_and_gives_the_funder_its_prepayment_back() {
        use crate::returns::ItemReturn;
        let mut s = Settlement::new(day(1), day(30));
        let credit = |units| Change::Credit { units, total: 0 };
        let debit = |units| Change::Debit { units, total: 0 };
        let member = MemberId::mint(1, 1);
        let sale = crate::SaleId::parse("S002-00000009").unwrap();
        let top_up = entry(
            &store(0),
            day(2),
            vec![op(Counter::Principal, credit(100_00))],
        );
        s.take(&top_up);
        let mut spend = entry(&store(1), day(3), vec![]);
        spend.payload = Payload::Checkout {
            sale: crate::sale::ItemSale {
                sale_id: sale.clone(),
                member_id: Some(member),
                lines: Vec::new(),
                subtotal: crate::Fen(60_00),
                discount: crate::Fen(0),
                due: crate::Fen(60_00),
                tenders: Vec::new(),
                points_used: 0,
                points_earned: crate::points::Points(0),
                coupon: None,
                served_by: None,
            },
            ops: vec![op(Counter::Principal, debit(60_00))],
            stock: Vec::new(),
        };
        s.take(&spend);
        // Returned at S003: S002 owes S001 back what it was to be paid; the 60 is S001's again.
        let mut back = entry(&store(2), day(4), vec![]);
        back.payload = Payload::ItemReturn {
            ret: ItemReturn {
                sale_id: sale,
                member_id: Some(member),
                lines: Vec::new(),
                amount: crate::Fen(60_00),
                refunds: Vec::new(),
                points_back: 0,
                points_taken: 0,
                coupon_back: None,
                reason: "退货".into(),
            },
            ops: vec![op(Counter::Principal, credit(60_00))],
            stock: Vec::new(),
        };
        s.take(&back);
        // The day cells, kept entry by entry, say the same.
        let mut kv = BTreeMap::new();
        for e in [&top_up, &spend, &back] {
            cells::apply(&mut kv, e).unwrap();
        }
        assert_eq!(summed(&kv, day(1), day(30)).0, s.owed);
        assert_eq!(
            summed(&kv, day(4), day(4)).0.len(),
            1,
            "the return's day: S002 owes S001"
        );
        let owed =
            |a: usize, b: usize| s.owed.get(&(store(a), store(b))).map_or(0, |o| o.principal);
        assert_eq!(
            (owed(0, 1), owed(1, 0)),
            (60_00, 60_00),
            "gross: the sale and its return"
        );
        assert_eq!(owed(0, 2) + owed(2, 0) + owed(1, 2) + owed(2, 1), 0);
        // Spent again at S001: it is S001's own prepayment, nothing to settle.
        s.take(&entry(
            &store(0),
            day(5),
            vec![op(Counter::Principal, debit(100_00))],
        ));
        assert_eq!(s.local.principal, 100_00);
    }

    /// The day cells of `kv` summed over `from..=to`: (owed between stores, local, unmatched).
    fn summed(
        kv: &BTreeMap<Vec<u8>, Vec<u8>>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> (BTreeMap<(StoreId, StoreId), Owed>, Owed) {
        let mut owed: BTreeMap<(StoreId, StoreId), Owed> = BTreeMap::new();
        let mut local = Owed::default();
        for (key, value) in kv.range(cells::DAYS.to_vec()..) {
            let Some((date, payer, payee)) = cells::parse_day_key(key) else {
                break;
            };
            if date < from || date > to {
                continue;
            }
            let cell: Owed = postcard::from_bytes(value).unwrap();
            let into = match payer == payee {
                true => &mut local,
                false => owed.entry((payer, payee)).or_default(),
            };
            into.principal += cell.principal;
            into.bonus += cell.bonus;
        }
        (owed, local)
    }

    proptest! {
        /// Whatever the order of top-ups and spends, every unit spent in the period is matched to
        /// exactly one funder (or left unmatched), and no funder pays out more than it took in.
        #[test]
        fn every_spent_unit_is_settled_once(
            ops in proptest::collection::vec((0..3usize, any::<bool>(), 1..1000u64), 0..80),
        ) {
            let mut s = Settlement::new(day(1), day(30));
            let mut rights = Rights::default();
            let (mut spent, mut credited) = (0u64, BTreeMap::<StoreId, u64>::new());
            for (i, is_credit, units) in ops {
                let at = store(i);
                let change = if is_credit {
                    *credited.entry(at.clone()).or_default() += units;
                    rights.credit(&at, units).unwrap()
                } else {
                    let held = rights.held(&at);
                    if held == 0 { continue; }
                    spent += units.min(held);
                    rights.debit(&at, units.min(held)).unwrap()
                };
                s.take(&entry(&at, day(10), vec![op(Counter::Principal, change)]));
            }
            let settled: u64 = s.owed.values().map(|o| o.principal).sum::<u64>()
                + s.local.principal + s.unmatched.principal;
            prop_assert_eq!(settled, spent);
            prop_assert_eq!(s.unmatched.principal, 0);
            for (funder, took_in) in credited {
                let paid_out: u64 = s.owed.iter().filter(|((f, _), _)| *f == funder).map(|(_, o)| o.principal).sum();
                prop_assert!(paid_out <= took_in);
            }
        }

        /// Day cells kept entry by entry, summed over any period, are the matrix built from
        /// the whole feed for that period.
        #[test]
        fn day_cells_summed_over_a_period_are_the_periods_matrix(
            ops in proptest::collection::vec((0..3usize, any::<bool>(), any::<bool>(), 1..1000u64, 1..29u32), 0..80),
            from in 1..29u32,
            days in 0..29u32,
        ) {
            let (from, to) = (day(from), day((from + days).min(30)));
            let mut s = Settlement::new(from, to);
            let mut kv = BTreeMap::new();
            let mut rights = [Rights::default(), Rights::default()];
            let mut date = 1;
            for (i, bonus, is_credit, units, step) in ops {
                // Business dates move on as the feed does.
                date = (date + step / 10).min(30);
                let at = store(i);
                let part = usize::from(bonus);
                let change = if is_credit {
                    rights[part].credit(&at, units).unwrap()
                } else {
                    let held = rights[part].held(&at);
                    if held == 0 { continue; }
                    rights[part].debit(&at, units.min(held)).unwrap()
                };
                let counter = if bonus { Counter::Bonus } else { Counter::Principal };
                let e = entry(&at, day(date), vec![op(counter, change)]);
                s.take(&e);
                cells::apply(&mut kv, &e).unwrap();
            }
            let (owed, local) = summed(&kv, from, to);
            let matrix: BTreeMap<_, _> = s.owed.into_iter().filter(|(_, o)| *o != Owed::default()).collect();
            prop_assert_eq!(owed, matrix);
            prop_assert_eq!(local, s.local);
        }
    }
}
