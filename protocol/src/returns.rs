//! Item returns (退货) against the original sale: any lines, any part of a line, never more than
//! was sold, and every amount paid back so that any sequence of partial returns adds up exactly
//! to the whole sale: money per tender (stored value as principal and bonus), points used on the
//! sale, points it earned, and the coupon's use once nothing of the sale is left.
//!
//! Each amount is a monotone function of how much of each line has been returned so far
//! ([`cumulative_split`] and [`share`] round down, in nested shares), so one return pays back
//! `f(after) − f(before)`: never negative, never more than was paid, and exactly everything once
//! everything is back. Only the quantities returned so far are state; every fen follows from
//! them and from the sale as recorded.

use serde::{Deserialize, Serialize};

use crate::catalogue::Qty;
use crate::ids::{MemberId, SaleId, Sku};
use crate::money::Fen;
use crate::sale::{ItemSale, Tender};

/// The longest reason a cashier may type for a return.
pub const REASON_CHARS_MAX: usize = 200;

/// One line of the original sale to take back, by its position on the receipt (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub line: u16,
    pub qty: Qty,
}

/// A line as returned: what came back and the money it is worth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedLine {
    pub line: u16,
    pub sku: Sku,
    pub qty: Qty,
    pub amount: Fen,
    /// How much of the line had been returned before (for shares that must add up later).
    pub before: Qty,
}

/// An item return as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReturn {
    pub sale_id: SaleId,
    pub member_id: Option<MemberId>,
    pub lines: Vec<ReturnedLine>,
    /// Money back: Σ lines' amounts, and Σ refunds.
    pub amount: Fen,
    /// Paid back the way the sale was paid, tender by tender (stored value to principal and
    /// bonus as paid; card and payment apps by their original reference).
    pub refunds: Vec<Tender>,
    /// Points the sale used (积分抵现), given back.
    pub points_back: u64,
    /// Points the sale earned, taken back (as far as the member still has them).
    pub points_taken: u64,
    /// The coupon the sale redeemed, given back because nothing of the sale is left.
    pub coupon_back: Option<String>,
    pub reason: String,
}

/// What a return pays back, computed from the sale and the quantities returned before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPlan {
    pub lines: Vec<ReturnedLine>,
    pub amount: Fen,
    pub refunds: Vec<Tender>,
    /// Points used on the sale given back, before and after this return (cumulative).
    pub points_back: (u64, u64),
    /// Points earned on the sale taken back, before and after this return (cumulative).
    pub points_taken: (u64, u64),
    /// Nothing of the sale is left after this return.
    pub complete: bool,
    /// Quantities returned of each line once this return is made.
    pub returned: Vec<Qty>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnError {
    #[error("name at least one line to return, each once")]
    Lines,
    #[error("the sale has no line {0}")]
    UnknownLine(u16),
    #[error("a returned quantity must be greater than zero")]
    NotPositive,
    #[error("line {line}: {sold} sold, {returned} already returned, {asked} asked")]
    TooMany {
        line: u16,
        sold: Qty,
        returned: Qty,
        asked: Qty,
    },
    #[error("nothing of sale {0} is left to return")]
    NothingLeft(SaleId),
    #[error("this sale's record does not fit its returns: {0}")]
    Damaged(&'static str),
    #[error("returns of this sale made at another store have not all arrived here yet")]
    NotReady,
}

/// `total × num / den`, rounded down (0 when `den` is 0).
pub fn share(total: i64, num: i64, den: i64) -> i64 {
    if den <= 0 || num <= 0 || total <= 0 {
        return 0;
    }
    let v = i128::from(total) * i128::from(num.min(den)) / i128::from(den);
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Splits `m` (between 0 and Σ `parts`) over `parts` in proportion, by nested shares rounded
/// down: part 0 gets ⌊m·p₀/Σ⌋, part 1 the same of what is left over the parts left, and so on.
/// Every part's share is monotone in `m`, the shares add up to `m`, and at `m = Σ parts` each
/// part gets exactly itself: so successive differences pay back exactly what was paid.
pub fn cumulative_split(parts: &[i64], m: i64) -> Vec<i64> {
    let mut rest: i64 = parts.iter().map(|p| (*p).max(0)).sum();
    let mut left = m.clamp(0, rest);
    parts
        .iter()
        .map(|p| {
            let p = (*p).max(0);
            let s = share(left, p, rest);
            rest -= p;
            left -= s;
            s
        })
        .collect()
}

/// The quantities left to return of each line.
pub fn left(sale: &ItemSale, returned: &[Qty]) -> Vec<ReturnLine> {
    sale.lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let back = returned.get(i).copied().unwrap_or_default();
            let line = u16::try_from(i).ok()?;
            (l.qty.0 > back.0).then_some(ReturnLine {
                line,
                qty: Qty(l.qty.0 - back.0),
            })
        })
        .collect()
}

/// Plans a return of `asked` against `sale`, given what was returned of each line before.
pub fn plan(
    sale: &ItemSale,
    returned: &[Qty],
    asked: &[ReturnLine],
) -> Result<ReturnPlan, ReturnError> {
    let n = sale.lines.len();
    if returned.len() != n {
        return Err(ReturnError::Damaged("returned quantities per line"));
    }
    if asked.is_empty() || asked.len() > n {
        return Err(ReturnError::Lines);
    }
    if returned
        .iter()
        .zip(&sale.lines)
        .all(|(r, l)| r.0 >= l.qty.0)
    {
        return Err(ReturnError::NothingLeft(sale.sale_id.clone()));
    }
    let mut after = returned.to_vec();
    let mut seen = vec![false; n];
    for a in asked {
        let i = usize::from(a.line);
        let Some(line) = sale.lines.get(i) else {
            return Err(ReturnError::UnknownLine(a.line));
        };
        if std::mem::replace(&mut seen[i], true) {
            return Err(ReturnError::Lines);
        }
        if a.qty.0 <= 0 {
            return Err(ReturnError::NotPositive);
        }
        if a.qty.0 > line.qty.0 - returned[i].0 {
            return Err(ReturnError::TooMany {
                line: a.line,
                sold: line.qty,
                returned: returned[i],
                asked: a.qty,
            });
        }
        after[i] = Qty(returned[i].0 + a.qty.0);
    }
    // Money per line, and what it adds up to before and after.
    let line_money = |i: usize, q: Qty| share(sale.lines[i].net.0, q.0, sale.lines[i].qty.0);
    let money = |q: &[Qty]| -> i64 { (0..n).map(|i| line_money(i, q[i])).sum() };
    let (m0, m1) = (money(returned), money(&after));
    let mut lines: Vec<ReturnedLine> = asked
        .iter()
        .map(|a| {
            let i = usize::from(a.line);
            ReturnedLine {
                line: a.line,
                sku: sale.lines[i].sku.clone(),
                qty: a.qty,
                amount: Fen(line_money(i, after[i]) - line_money(i, returned[i])),
                before: returned[i],
            }
        })
        .collect();
    lines.sort_by_key(|l| l.line);
    // The tenders, each paid back its share.
    let paid: Vec<i64> = sale.tenders.iter().map(|t| t.amount().0).collect();
    let (t0, t1) = (cumulative_split(&paid, m0), cumulative_split(&paid, m1));
    let mut refunds = Vec::new();
    for (k, tender) in sale.tenders.iter().enumerate() {
        let back = t1[k] - t0[k];
        if back == 0 {
            continue;
        }
        refunds.push(match tender {
            // Foreign cash is paid back in yuan.
            Tender::Cash { .. } | Tender::ForeignCash { .. } => Tender::Cash {
                tendered: Fen(back),
                change: Fen(0),
            },
            Tender::Card { reference, .. } => Tender::Card {
                amount: Fen(back),
                reference: reference.clone(),
            },
            Tender::WeChat { reference, .. } => Tender::WeChat {
                amount: Fen(back),
                reference: reference.clone(),
            },
            Tender::Alipay { reference, .. } => Tender::Alipay {
                amount: Fen(back),
                reference: reference.clone(),
            },
            Tender::StoredValue {
                principal,
                bonus,
                overdraft,
            } => {
                if overdraft.0 != 0 {
                    return Err(ReturnError::Damaged("an item sale lent nothing"));
                }
                let parts = [principal.0, bonus.0];
                let (s0, s1) = (
                    cumulative_split(&parts, t0[k]),
                    cumulative_split(&parts, t1[k]),
                );
                Tender::StoredValue {
                    principal: Fen(s1[0] - s0[0]),
                    bonus: Fen(s1[1] - s0[1]),
                    overdraft: Fen(0),
                }
            }
        });
    }
    // Points used come back by the goods' share of the gross; points earned go by the share of
    // what was paid for goods that earn them.
    let gross = |q: &[Qty]| -> i64 {
        (0..n)
            .map(|i| share(sale.lines[i].gross.0, q[i].0, sale.lines[i].qty.0))
            .sum()
    };
    let used = i64::try_from(sale.points_used).unwrap_or(i64::MAX);
    let back = |q: &[Qty]| share(used, gross(q), sale.subtotal.0);
    let earning = |q: &[Qty]| -> i64 {
        (0..n)
            .filter(|i| sale.lines[*i].earns_points)
            .map(|i| line_money(i, q[i]))
            .sum()
    };
    let full: Vec<Qty> = sale.lines.iter().map(|l| l.qty).collect();
    let earned = sale.points_earned.0;
    let taken = |q: &[Qty]| share(earned, earning(q), earning(&full));
    let complete = after == full;
    let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
    // Once nothing is left, all of it (also when the shares had nothing to go by: free goods).
    let cumulative = |f: &dyn Fn(&[Qty]) -> i64, total: i64| {
        let after = if complete { total } else { f(&after) };
        (as_u64(f(returned)), as_u64(after))
    };
    let points_back = cumulative(&back, used);
    let points_taken = cumulative(&taken, earned);
    Ok(ReturnPlan {
        lines,
        amount: Fen(m1 - m0),
        refunds,
        points_back,
        points_taken,
        complete,
        returned: after,
    })
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use crate::ids::StoreId;
    use crate::points::Points;
    use crate::pricing::PricedLine;
    use proptest::prelude::*;

    fn line(sku: &str, qty: i64, gross: i64, net: i64, earns: bool) -> PricedLine {
        PricedLine {
            sku: Sku::parse(sku).unwrap(),
            category: String::new(),
            qty: Qty(qty),
            unit_price: Fen(gross * 1000 / qty.max(1)),
            gross: Fen(gross),
            steps: Vec::new(),
            net: Fen(net),
            discountable: true,
            earns_points: earns,
        }
    }

    fn sale(lines: Vec<PricedLine>, tenders: Vec<Tender>, used: u64, earned: i64) -> ItemSale {
        let subtotal = Fen(lines.iter().map(|l| l.gross.0).sum());
        let due = Fen(lines.iter().map(|l| l.net.0).sum());
        ItemSale {
            sale_id: SaleId::for_entry(&StoreId::parse("S001").unwrap(), 7),
            member_id: None,
            lines,
            subtotal,
            discount: Fen(subtotal.0 - due.0),
            due,
            tenders,
            points_used: used,
            points_earned: Points(earned),
            coupon: None,
            served_by: None,
        }
    }

    fn card(amount: i64) -> Tender {
        Tender::Card {
            amount: Fen(amount),
            reference: "POS-1".into(),
        }
    }

    #[test]
    fn a_third_at_a_time_pays_back_exactly_what_was_paid() {
        // 3 pieces for 10.00, paid 4.00 by card and 6.00 from stored value (5 principal, 1 bonus).
        let s = sale(
            vec![line("A1", 3_000, 10_00, 10_00, true)],
            vec![
                card(4_00),
                Tender::StoredValue {
                    principal: Fen(5_00),
                    bonus: Fen(1_00),
                    overdraft: Fen(0),
                },
            ],
            0,
            10,
        );
        let mut returned = vec![Qty(0)];
        let mut amounts = Vec::new();
        let mut sv = (0, 0);
        for _ in 0..3 {
            let p = plan(
                &s,
                &returned,
                &[ReturnLine {
                    line: 0,
                    qty: Qty(1_000),
                }],
            )
            .unwrap();
            amounts.push(p.amount.0);
            for r in &p.refunds {
                if let Tender::StoredValue {
                    principal, bonus, ..
                } = r
                {
                    sv = (sv.0 + principal.0, sv.1 + bonus.0);
                }
            }
            assert_eq!(
                p.refunds.iter().map(|t| t.amount().0).sum::<i64>(),
                p.amount.0
            );
            returned = p.returned;
        }
        assert_eq!(amounts, vec![3_33, 3_33, 3_34]);
        assert_eq!(sv, (5_00, 1_00));
        assert_eq!(
            plan(
                &s,
                &returned,
                &[ReturnLine {
                    line: 0,
                    qty: Qty(1_000)
                }]
            ),
            Err(ReturnError::NothingLeft(s.sale_id.clone()))
        );
    }

    #[test]
    fn more_than_was_sold_and_malformed_asks_are_refused() {
        let s = sale(
            vec![
                line("A1", 2_000, 10_00, 10_00, true),
                line("B2", 1_500, 4_50, 4_50, false),
            ],
            vec![card(14_50)],
            0,
            10,
        );
        let r = vec![Qty(1_000), Qty(0)];
        let ask = |line, qty| ReturnLine {
            line,
            qty: Qty(qty),
        };
        assert!(matches!(
            plan(&s, &r, &[ask(0, 1_001)]),
            Err(ReturnError::TooMany { line: 0, .. })
        ));
        assert_eq!(plan(&s, &r, &[ask(2, 1)]), Err(ReturnError::UnknownLine(2)));
        assert_eq!(plan(&s, &r, &[ask(1, 0)]), Err(ReturnError::NotPositive));
        assert_eq!(plan(&s, &r, &[ask(1, -5)]), Err(ReturnError::NotPositive));
        assert_eq!(plan(&s, &r, &[]), Err(ReturnError::Lines));
        assert_eq!(
            plan(&s, &r, &[ask(1, 500), ask(1, 500)]),
            Err(ReturnError::Lines)
        );
        // Half a kilo of the weighed line: a third of 4.50.
        let p = plan(&s, &r, &[ask(1, 500)]).unwrap();
        assert_eq!(p.amount, Fen(1_50));
        assert_eq!(p.points_taken, (5, 5), "the line earns no points");
    }

    #[test]
    fn split_is_exact_and_monotone() {
        let parts = [5, 0, 7, 1];
        let mut last = vec![0; 4];
        for m in 0..=13 {
            let s = cumulative_split(&parts, m);
            assert_eq!(s.iter().sum::<i64>(), m);
            assert!(s.iter().zip(&last).all(|(a, b)| a >= b), "{m}: {s:?}");
            last = s;
        }
        assert_eq!(last, parts.to_vec());
    }

    fn tender_of(kind: u8, amount: i64) -> Tender {
        match kind % 4 {
            0 => Tender::Cash {
                tendered: Fen(amount + 50),
                change: Fen(50),
            },
            1 => card(amount),
            2 => Tender::WeChat {
                amount: Fen(amount),
                reference: "wx".into(),
            },
            _ => Tender::StoredValue {
                principal: Fen(amount - amount / 3),
                bonus: Fen(amount / 3),
                overdraft: Fen(0),
            },
        }
    }

    /// What was paid (or paid back) per kind of tender, stored value as principal and bonus.
    fn by_kind(tenders: &[Tender], into: &mut std::collections::BTreeMap<String, i64>) {
        for t in tenders {
            let (kind, amount) = match t {
                Tender::StoredValue {
                    principal, bonus, ..
                } => {
                    *into.entry("bonus".into()).or_default() += bonus.0;
                    ("principal".to_owned(), principal.0)
                }
                other => (
                    format!("{:?}", std::mem::discriminant(other)),
                    other.amount().0,
                ),
            };
            *into.entry(kind).or_default() += amount;
        }
    }

    proptest! {
        /// Any sequence of partial returns never exceeds what was sold, pays back amounts that add
        /// up line by line and tender by tender, and once everything is back has paid back
        /// exactly the sale: every tender, principal and bonus, points used and earned.
        #[test]
        fn returns_never_exceed_the_sale_and_add_up_to_it(
            lines in proptest::collection::vec((1i64..5_000, 0i64..100_00, 0u8..=100, any::<bool>()), 1..6),
            kinds in proptest::collection::btree_set(0u8..4, 1..4),
            used in 0u64..500,
            earned in 0i64..500,
            asks in proptest::collection::vec((0u16..6, 1i64..6_000), 1..40),
        ) {
            let priced: Vec<PricedLine> = lines
                .iter()
                .enumerate()
                .map(|(i, (q, g, pct, e))| line(&format!("S{i}"), *q, *g, g * i64::from(*pct) / 100, *e))
                .collect();
            let due: i64 = priced.iter().map(|l| l.net.0).sum();
            let k = kinds.len() as i64;
            let tenders: Vec<Tender> = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| tender_of(*kind, due / k + if i == 0 { due % k } else { 0 }))
                .filter(|t| t.amount().0 > 0)
                .collect();
            let s = sale(priced, tenders, used, earned);
            let mut returned = vec![Qty(0); s.lines.len()];
            let (mut money, mut back, mut taken) = (0i64, 0u64, 0u64);
            let mut refunded = std::collections::BTreeMap::new();
            let mut asks = asks;
            // Finish by asking for more than can be left of every line, then for what is left.
            asks.extend(s.lines.iter().zip(0..).map(|(l, i)| (i, l.qty.0 + 1)));
            asks.extend(s.lines.iter().zip(0..).map(|(_, i)| (i, -1)));
            for (line, qty) in asks {
                let i = usize::from(line);
                let qty = match (qty, s.lines.get(i)) {
                    (-1, Some(l)) => l.qty.0 - returned[i].0,
                    _ => qty,
                };
                if qty == 0 {
                    continue;
                }
                let before = returned.get(i).copied();
                let p = match plan(&s, &returned, &[ReturnLine { line, qty: Qty(qty) }]) {
                    Ok(p) => p,
                    Err(_) => {
                        // Refused only when it does not fit what is left.
                        let fits = s.lines.get(i).zip(before).is_some_and(|(l, b)| qty <= l.qty.0 - b.0);
                        prop_assert!(!fits);
                        continue;
                    }
                };
                prop_assert!(p.amount.0 >= 0);
                prop_assert_eq!(p.lines.iter().map(|l| l.amount.0).sum::<i64>(), p.amount.0);
                prop_assert_eq!(p.refunds.iter().map(|t| t.amount().0).sum::<i64>(), p.amount.0);
                prop_assert!(p.refunds.iter().all(|t| t.amount().0 > 0));
                prop_assert!(p.points_back.0 == back && p.points_back.0 <= p.points_back.1);
                prop_assert!(p.points_taken.0 == taken && p.points_taken.0 <= p.points_taken.1);
                for (i, l) in s.lines.iter().enumerate() {
                    prop_assert!(p.returned[i].0 <= l.qty.0);
                }
                money += p.amount.0;
                back = p.points_back.1;
                taken = p.points_taken.1;
                by_kind(&p.refunds, &mut refunded);
                returned = p.returned;
            }
            prop_assert!(left(&s, &returned).is_empty());
            prop_assert_eq!(money, s.due.0);
            prop_assert_eq!(back, s.points_used);
            prop_assert_eq!(taken, u64::try_from(s.points_earned.0).unwrap());
            let mut paid = std::collections::BTreeMap::new();
            by_kind(&s.tenders, &mut paid);
            refunded.retain(|_, v| *v != 0);
            paid.retain(|_, v| *v != 0);
            prop_assert_eq!(paid, refunded);
        }
    }
}
