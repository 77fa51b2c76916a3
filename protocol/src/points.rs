//! Points (积分) earned by a sale. Category rates and multipliers come with the checkout issue;
//! a quick sale earns at the store's rate per yuan, rounded down to whole points.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Fen, Rounding};

/// Whole points. Balances of points are integers; a fraction of a point is never earned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Points(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarnRule {
    /// Points per yuan paid, for example 1 (one point per yuan) or 0.1 (one per ten yuan).
    pub points_per_yuan: Decimal,
}

impl Default for EarnRule {
    fn default() -> Self {
        Self {
            points_per_yuan: Decimal::ONE,
        }
    }
}

impl EarnRule {
    /// Points for an amount paid; partial points are dropped (rounded toward zero).
    pub fn earn(&self, paid: Fen) -> Points {
        if paid.0 <= 0 || self.points_per_yuan <= Decimal::ZERO {
            return Points(0);
        }
        let raw = paid.to_decimal() * self.points_per_yuan;
        let whole = Rounding::TowardZero.round(raw, 0);
        Points(i64::try_from(whole).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn earns_whole_points_rounded_down() {
        let one = EarnRule::default();
        assert_eq!(one.earn(Fen(1_299)), Points(12));
        assert_eq!(one.earn(Fen(99)), Points(0));
        assert_eq!(one.earn(Fen(-500)), Points(0));
        let tenth = EarnRule {
            points_per_yuan: Decimal::new(1, 1),
        };
        assert_eq!(tenth.earn(Fen(199_900)), Points(199));
    }

    proptest! {
        #[test]
        fn never_more_than_the_rate_allows(fen in 0i64..10_000_000_000, tenths in 0i64..50) {
            let rule = EarnRule { points_per_yuan: Decimal::new(tenths, 1) };
            let points = rule.earn(Fen(fen));
            prop_assert!(points.0 >= 0);
            prop_assert!(Decimal::from(points.0) <= Fen(fen).to_decimal() * rule.points_per_yuan);
        }
    }
}
