//! Staff commissions (提成): rules per product category, per service (a SKU) and per card sold,
//! each a percentage of what was paid or a fixed amount per unit; what each sale, card sale and
//! return earns whom. A rule set applies from a date headquarters chooses (today at the
//! earliest) to sales made after it was published (by their clocks), so what a sale earned
//! never changes once both are known.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::{Sku, StaffId};
use crate::money::{Fen, Rounding};

/// How much a line, service or card earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// A percentage of what was paid (e.g. 5 for 5%).
    Percent(Decimal),
    /// A fixed amount per unit sold (per piece, per kilogram, per card).
    Fixed(Fen),
}

/// A chain's commission rules from `from` on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionRules {
    pub from: NaiveDate,
    /// By product category (商品类别).
    pub categories: BTreeMap<String, Rate>,
    /// By service or product (服务项目): wins over its category.
    pub skus: BTreeMap<Sku, Rate>,
    /// By card name (售卡), else `card_default`.
    pub cards: BTreeMap<String, Rate>,
    pub card_default: Option<Rate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommissionError {
    #[error("a percentage must be between 0 and 100")]
    Percent,
    #[error("a fixed commission must be between 0 and 100000 yuan")]
    Fixed,
    #[error("rules take effect from {earliest} (today) at the earliest, not {from}")]
    Past {
        from: NaiveDate,
        earliest: NaiveDate,
    },
    #[error("at most 1000 rules, each named by 1 to 32 characters")]
    TooMany,
}

impl Rate {
    fn check(&self) -> Result<(), CommissionError> {
        match self {
            Rate::Percent(p) if *p < Decimal::ZERO || *p > Decimal::ONE_HUNDRED => {
                Err(CommissionError::Percent)
            }
            Rate::Fixed(f) if !(0..=10_000_000).contains(&f.0) => Err(CommissionError::Fixed),
            _ => Ok(()),
        }
    }

    /// What `paid` for `units` thousandths of a unit earns, rounded half away from zero.
    pub fn earn(&self, paid: Fen, thousandths: i64) -> Fen {
        let v = match self {
            Rate::Percent(p) => Decimal::from(paid.0) * p / Decimal::ONE_HUNDRED,
            Rate::Fixed(f) => {
                Decimal::from(f.0) * Decimal::from(thousandths) / Decimal::ONE_THOUSAND
            }
        };
        let v = Rounding::HalfAwayFromZero.round(v, 0);
        Fen(v.to_i64().unwrap_or(0))
    }
}

impl CommissionRules {
    /// Checks the rules; `earliest` is the first day they may take effect (today at
    /// headquarters).
    pub fn check(&self, earliest: NaiveDate) -> Result<(), CommissionError> {
        if self.from < earliest {
            return Err(CommissionError::Past {
                from: self.from,
                earliest,
            });
        }
        let name_ok = |n: &String| {
            let len = n.chars().count();
            (1..=32).contains(&len) && !n.chars().any(char::is_control)
        };
        if self.categories.len() + self.skus.len() + self.cards.len() > 1_000
            || !self.categories.keys().chain(self.cards.keys()).all(name_ok)
        {
            return Err(CommissionError::TooMany);
        }
        self.categories
            .values()
            .chain(self.skus.values())
            .chain(self.cards.values())
            .chain(self.card_default.iter())
            .try_for_each(Rate::check)
    }

    pub(crate) fn line_rate(&self, sku: &Sku, category: &str) -> Option<&Rate> {
        self.skus.get(sku).or_else(|| self.categories.get(category))
    }
}

/// One staff member's commission from one entry (negative for a return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earned {
    pub staff: StaffId,
    /// What was paid (or paid back) for what earns it.
    pub base: Fen,
    pub commission: Fen,
}

/// A rule set as headquarters published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub rules: CommissionRules,
}

/// The rules for a sale made at `at` on business day `date`: of the sets published before the
/// sale and in effect by its day, the one that starts last (then the one published last).
pub fn in_force(sets: &[Published], date: NaiveDate, at: Hlc) -> Option<&CommissionRules> {
    sets.iter()
        .filter(|p| p.rules.from <= date && p.at < at)
        .max_by_key(|p| (p.rules.from, p.at))
        .map(|p| &p.rules)
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use crate::entry::{Entry, Payload};
    use crate::ids::StoreId;
    use crate::project::commission::earned;
    use crate::sale::ItemSale;
    use crate::wallet::WalletEvent;

    #[test]
    fn percent_of_what_was_paid_or_fixed_per_unit() {
        let five = Rate::Percent(Decimal::new(5, 0));
        assert_eq!(five.earn(Fen(123_45), 3_000), Fen(6_17));
        let ten_yuan = Rate::Fixed(Fen(10_00));
        assert_eq!(ten_yuan.earn(Fen(999_00), 3_000), Fen(30_00));
        assert_eq!(
            ten_yuan.earn(Fen(999_00), 1_500),
            Fen(15_00),
            "per kilogram"
        );
    }

    fn entry(staff: &str, payload: Payload) -> Entry {
        Entry {
            origin: StoreId::parse("S001").unwrap(),
            seq: 1,
            hlc: Hlc::default(),
            business_date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            staff: StaffId::parse(staff).unwrap(),
            tx: crate::TxId::parse("key-00000001").unwrap(),
            prev_hash: crate::EntryHash::GENESIS,
            payload,
        }
    }

    fn line(sku: &str, category: &str, qty: i64, net: i64) -> crate::pricing::PricedLine {
        crate::pricing::PricedLine {
            sku: Sku::parse(sku).unwrap(),
            category: category.into(),
            qty: crate::catalogue::Qty(qty),
            unit_price: Fen(net * 1000 / qty),
            gross: Fen(net),
            steps: Vec::new(),
            net: Fen(net),
            discountable: true,
            earns_points: true,
        }
    }

    #[test]
    fn a_sale_earns_by_service_then_category_a_return_claws_back_a_card_earns_its_seller() {
        let rules = CommissionRules {
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            categories: [("烫染".to_owned(), Rate::Percent(Decimal::new(10, 0)))].into(),
            skus: [(Sku::parse("CUT1").unwrap(), Rate::Fixed(Fen(8_00)))].into(),
            cards: [("年卡".to_owned(), Rate::Percent(Decimal::new(3, 0)))].into(),
            card_default: Some(Rate::Fixed(Fen(5_00))),
        };
        let sale = ItemSale {
            sale_id: crate::SaleId::parse("S001-00000001").unwrap(),
            member_id: None,
            lines: vec![
                line("CUT1", "烫染", 2_000, 60_00),
                line("DYE1", "烫染", 1_000, 299_00),
                line("GEL1", "零售", 1_000, 45_00),
            ],
            subtotal: Fen(404_00),
            discount: Fen(0),
            due: Fen(404_00),
            tenders: Vec::new(),
            points_used: 0,
            points_earned: crate::points::Points(0),
            coupon: None,
            served_by: Some(StaffId::parse("stylist-3").unwrap()),
        };
        let checkout = entry(
            "c01",
            Payload::Checkout {
                sale: sale.clone(),
                ops: Vec::new(),
                stock: Vec::new(),
            },
        );
        let got = earned(&checkout, Some(&rules), None);
        assert_eq!(
            got,
            vec![Earned {
                staff: StaffId::parse("stylist-3").unwrap(),
                base: Fen(404_00),
                // Two haircuts at 8.00 each, 10% of the dye, nothing on retail gel.
                commission: Fen(16_00 + 29_90),
            }]
        );
        assert_eq!(earned(&checkout, None, None)[0].commission, Fen(0));
        let ret = entry(
            "c02",
            Payload::ItemReturn {
                ret: crate::returns::ItemReturn {
                    sale_id: sale.sale_id.clone(),
                    member_id: None,
                    lines: vec![crate::returns::ReturnedLine {
                        line: 1,
                        sku: Sku::parse("DYE1").unwrap(),
                        qty: crate::catalogue::Qty(1_000),
                        amount: Fen(299_00),
                        before: crate::catalogue::Qty(0),
                    }],
                    amount: Fen(299_00),
                    refunds: Vec::new(),
                    points_back: 0,
                    points_taken: 0,
                    coupon_back: None,
                    reason: "过敏".into(),
                },
                ops: Vec::new(),
                stock: Vec::new(),
            },
        );
        let stylist = StaffId::parse("stylist-3").unwrap();
        let back = earned(&ret, None, Some((&sale, &stylist, Some(&rules))));
        assert_eq!(back[0].staff, stylist, "clawed back from who earned it");
        assert_eq!(
            (back[0].base, back[0].commission),
            (Fen(-299_00), Fen(-29_90))
        );
        let card = |name: &str| {
            entry(
                "c01",
                Payload::Wallet {
                    member_id: crate::MemberId::mint(1, 1),
                    event: WalletEvent::CardSold {
                        card: crate::SaleId::parse("S001-00000002").unwrap(),
                        name: name.into(),
                        kind: crate::wallet::CardKind::Count {
                            uses: 10,
                            valid_to: None,
                        },
                        price: Fen(1_000_00),
                        tender: crate::sale::Tender::Cash {
                            tendered: Fen(1_000_00),
                            change: Fen(0),
                        },
                    },
                    ops: Vec::new(),
                },
            )
        };
        assert_eq!(
            earned(&card("年卡"), Some(&rules), None)[0].commission,
            Fen(30_00)
        );
        assert_eq!(
            earned(&card("洗车卡"), Some(&rules), None)[0].commission,
            Fen(5_00)
        );
    }

    #[test]
    fn rules_start_today_at_the_earliest_and_are_in_range() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let mut r = CommissionRules {
            from: day(28),
            ..Default::default()
        };
        assert!(matches!(
            r.check(day(29)),
            Err(CommissionError::Past { .. })
        ));
        assert_eq!(r.check(day(28)), Ok(()), "today is fine");
        r.from = day(29);
        assert_eq!(r.check(day(29)), Ok(()));
        r.categories
            .insert("烫染".into(), Rate::Percent(Decimal::new(101, 0)));
        assert_eq!(r.check(day(29)), Err(CommissionError::Percent));
        r.categories.clear();
        r.card_default = Some(Rate::Fixed(Fen(-1)));
        assert_eq!(r.check(day(29)), Err(CommissionError::Fixed));
        let old = CommissionRules {
            from: day(1),
            ..Default::default()
        };
        let new = CommissionRules {
            from: day(29),
            ..Default::default()
        };
        let at = |ms| Hlc {
            wall_ms: ms,
            logical: 0,
        };
        let sets = [
            Published {
                at: at(200),
                rules: new.clone(),
            },
            Published {
                at: at(100),
                rules: old.clone(),
            },
        ];
        assert_eq!(in_force(&sets, day(28), at(300)), Some(&old));
        assert_eq!(in_force(&sets, day(30), at(300)), Some(&new));
        assert_eq!(
            in_force(&sets, day(30), at(150)),
            Some(&old),
            "made before it was published"
        );
        assert_eq!(in_force(&sets, day(30), at(50)), None);
        assert_eq!(in_force(&sets[..1], day(28), at(300)), None);
    }
}
