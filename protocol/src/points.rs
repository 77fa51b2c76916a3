//! Points (积分) earned by a sale: a rate per yuan (one per category, or the chain's default),
//! times the largest multiplier of the day (会员日, double points), rounded down to whole points.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Fen, Rounding};

/// Whole points. Balances of points are integers; a fraction of a point is never earned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Points(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarnRule {
    /// Points per yuan paid, for example 1 (one point per yuan) or 0.1 (one per ten yuan).
    pub points_per_yuan: Decimal,
    /// Rates for particular categories (e.g. 烟酒 0, 生鲜 2), instead of the default.
    pub categories: BTreeMap<String, Decimal>,
    /// Days that multiply points; when several apply, the largest wins.
    pub multipliers: Vec<Multiplier>,
}

/// A day that multiplies points: a weekday (every Wednesday is 会员日) or a day of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multiplier {
    pub name: String,
    pub weekday: Option<Weekday>,
    pub day_of_month: Option<u32>,
    pub factor: Decimal,
}

impl Multiplier {
    fn applies(&self, date: NaiveDate) -> bool {
        self.weekday.is_none_or(|w| date.weekday() == w)
            && self.day_of_month.is_none_or(|d| date.day() == d)
            && (self.weekday.is_some() || self.day_of_month.is_some())
    }
}

impl Default for EarnRule {
    fn default() -> Self {
        Self {
            points_per_yuan: Decimal::ONE,
            categories: BTreeMap::new(),
            multipliers: Vec::new(),
        }
    }
}

impl EarnRule {
    /// Points for an amount paid in `category` on `date`; partial points are dropped (rounded
    /// toward zero).
    pub fn earn(&self, paid: Fen, category: Option<&str>, date: NaiveDate) -> Points {
        let rate = category
            .and_then(|c| self.categories.get(c))
            .copied()
            .unwrap_or(self.points_per_yuan);
        let factor = self
            .multipliers
            .iter()
            .filter(|m| m.applies(date))
            .map(|m| m.factor)
            .fold(Decimal::ONE, Decimal::max);
        if paid.0 <= 0 || rate <= Decimal::ZERO {
            return Points(0);
        }
        let raw = paid.to_decimal() * rate * factor;
        let whole = Rounding::TowardZero.round(raw, 0);
        Points(i64::try_from(whole).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap() // 2026-11-25 is a Wednesday
    }

    #[test]
    fn earns_whole_points_rounded_down() {
        let one = EarnRule::default();
        assert_eq!(one.earn(Fen(1_299), None, day(24)), Points(12));
        assert_eq!(one.earn(Fen(99), None, day(24)), Points(0));
        assert_eq!(one.earn(Fen(-500), None, day(24)), Points(0));
        let tenth = EarnRule {
            points_per_yuan: Decimal::new(1, 1),
            ..EarnRule::default()
        };
        assert_eq!(tenth.earn(Fen(199_900), None, day(24)), Points(199));
    }

    #[test]
    fn categories_and_member_days() {
        let rule = EarnRule {
            categories: [
                ("烟酒".to_owned(), Decimal::ZERO),
                ("生鲜".to_owned(), Decimal::TWO),
            ]
            .into_iter()
            .collect(),
            multipliers: vec![
                Multiplier {
                    name: "会员日".into(),
                    weekday: Some(Weekday::Wed),
                    day_of_month: None,
                    factor: Decimal::TWO,
                },
                Multiplier {
                    name: "25号三倍".into(),
                    weekday: None,
                    day_of_month: Some(25),
                    factor: Decimal::new(3, 0),
                },
            ],
            ..EarnRule::default()
        };
        assert_eq!(rule.earn(Fen(1_000), Some("生鲜"), day(24)), Points(20));
        assert_eq!(rule.earn(Fen(1_000), Some("烟酒"), day(25)), Points(0));
        assert_eq!(rule.earn(Fen(1_000), None, day(18)), Points(20)); // a Wednesday
        assert_eq!(rule.earn(Fen(1_000), None, day(25)), Points(30)); // both: the larger
        assert_eq!(rule.earn(Fen(1_000), Some("其他"), day(24)), Points(10));
    }

    proptest! {
        #[test]
        fn never_more_than_the_rate_allows(fen in 0i64..10_000_000_000, tenths in 0i64..50) {
            let rule = EarnRule { points_per_yuan: Decimal::new(tenths, 1), ..EarnRule::default() };
            let points = rule.earn(Fen(fen), None, day(24));
            prop_assert!(points.0 >= 0);
            prop_assert!(Decimal::from(points.0) <= Fen(fen).to_decimal() * rule.points_per_yuan);
        }
    }
}
