//! 退卡与计时规则: headquarters' rules for closing a membership (退卡) and for charging a timed
//! card (计时卡), the same at every store.
//!
//! A closing always pays back the principal and lets points and coupons lapse; the chain
//! decides the rest: how much of the bonus left is paid back with it (none by default: it was
//! given, not paid for), whether count, timed and period cards are paid back pro rata or not
//! at all, and a handling fee (手续费) kept from the cash. A timed card's minutes are charged in
//! steps (rounded up, to the nearest, or down) after some free minutes (免费时长).
//!
//! Published as its own entry of headquarters' log (`Payload::CardRules`), kept like the tier
//! table (`crate::project::rules`). Before any is published a store closes by
//! [`CardRules::default`] and rounds timed cards up to its own `[wallet] timed_round_minutes`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::StaffId;
use crate::inventory::ViewKv;
use crate::money::Fen;
use crate::rules::RulesError;

/// The largest handling fee, in percent of the cash paid back.
pub const FEE_PERCENT_MAX: u32 = 50;
/// The longest step and the longest free time of a timed card, in minutes.
pub const STEP_MINUTES_MAX: u32 = 60;
pub const FREE_MINUTES_MAX: u32 = 120;

/// How a closing pays back count, timed and period cards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardRefund {
    /// What is left of each card: uses, minutes or days left of those sold (按剩余比例).
    #[default]
    ProRata,
    /// Nothing (次卡不退).
    None,
}

/// Which way a timed card's minutes go to a whole step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRounding {
    /// A step started is a step charged.
    #[default]
    Up,
    /// Half a step or more is a step.
    Nearest,
    /// Only whole steps are charged.
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRules {
    /// Percent of the remaining bonus paid back on closing (0: forfeited).
    pub bonus_refund_percent: Decimal,
    pub cards: CardRefund,
    /// 退卡手续费: percent of the cash a closing pays back that the chain keeps.
    pub fee_percent: Decimal,
    /// 计时卡: minutes are charged in steps of this many (1 to 60) …
    pub step_minutes: u32,
    pub rounding: StepRounding,
    /// … after this many free minutes (0 to 120): a visit no longer than them costs nothing.
    pub free_minutes: u32,
}

impl Default for CardRules {
    fn default() -> Self {
        Self {
            bonus_refund_percent: Decimal::ZERO,
            cards: CardRefund::ProRata,
            fee_percent: Decimal::ZERO,
            step_minutes: 1,
            rounding: StepRounding::Up,
            free_minutes: 0,
        }
    }
}

fn refuse<T>(field: &'static str, message: impl Into<String>) -> Result<T, RulesError> {
    Err(RulesError {
        field,
        message: message.into(),
    })
}

/// `amount × percent / 100` of a checked percent (0 to 100, two decimals at most), to the
/// fen, half up; nothing of an amount below zero.
fn share(amount: Fen, percent: Decimal) -> Fen {
    use rust_decimal::prelude::ToPrimitive;
    let basis_points = (percent * Decimal::ONE_HUNDRED)
        .trunc()
        .to_i128()
        .map_or(0, |bp| bp.clamp(0, 10_000));
    let amount = i128::from(amount.0.max(0));
    let share = (amount * basis_points + 5_000) / 10_000;
    Fen(i64::try_from(share).unwrap_or(i64::MAX))
}

impl CardRules {
    /// The store's own step until headquarters publishes rules (rounded up, nothing free).
    pub fn with_step(step_minutes: u32) -> Self {
        Self {
            step_minutes,
            ..Self::default()
        }
    }

    pub fn check(&self) -> Result<(), RulesError> {
        let percent =
            |p: Decimal, max: u32| p >= Decimal::ZERO && p <= Decimal::from(max) && p.scale() <= 2;
        if !percent(self.bonus_refund_percent, 100) {
            return refuse(
                "bonus_refund_percent",
                "from 0 to 100 percent, at most two decimals",
            );
        }
        if !percent(self.fee_percent, FEE_PERCENT_MAX) {
            return refuse(
                "fee_percent",
                format!("from 0 to {FEE_PERCENT_MAX} percent, at most two decimals"),
            );
        }
        if !(1..=STEP_MINUTES_MAX).contains(&self.step_minutes) {
            return refuse(
                "step_minutes",
                format!("from 1 to {STEP_MINUTES_MAX} minutes"),
            );
        }
        if self.free_minutes > FREE_MINUTES_MAX {
            return refuse(
                "free_minutes",
                format!("from 0 to {FREE_MINUTES_MAX} minutes"),
            );
        }
        Ok(())
    }

    /// The bonus a closing pays back of `left`.
    pub fn bonus_refund(&self, left: Fen) -> Fen {
        share(left, self.bonus_refund_percent).min(left)
    }

    /// What a card with `pro_rata` left is paid back.
    pub fn card_refund(&self, pro_rata: Fen) -> Fen {
        match self.cards {
            CardRefund::ProRata => pro_rata,
            CardRefund::None => Fen(0),
        }
    }

    /// The fee kept from `cash` (never more than it).
    pub fn fee(&self, cash: Fen) -> Fen {
        share(cash, self.fee_percent).min(cash).max(Fen(0))
    }

    /// The minutes charged for `elapsed_ms` on the clock (a minute begun is a minute, and a
    /// clock stopped at once has run one): nothing within the free minutes, else the minutes
    /// to a whole step by the rounding — up, to the nearest (half a step up), or down (less
    /// than a step is not charged).
    pub fn charged_minutes(&self, elapsed_ms: u64) -> u64 {
        let minutes = elapsed_ms.div_ceil(60_000).max(1);
        if minutes <= u64::from(self.free_minutes) {
            return 0;
        }
        let step = u64::from(self.step_minutes.max(1));
        let steps = match self.rounding {
            StepRounding::Up => minutes.div_ceil(step),
            StepRounding::Nearest => (minutes + step / 2) / step,
            StepRounding::Down => minutes / step,
        };
        steps * step
    }
}

/// Rules as headquarters published them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub staff: StaffId,
    pub rules: CardRules,
}

pub mod keys {
    /// The rules in force: the ones published last.
    pub const CURRENT: &[u8] = b"ru/c/now";
    /// Each published set, in publishing order.
    pub const HISTORY: &[u8] = b"ru/c/h/";

    pub fn published(at: crate::hlc::Hlc) -> Vec<u8> {
        format!("ru/c/h/{:020}.{:010}", at.wall_ms, at.logical).into_bytes()
    }
}

/// The rules in force, if headquarters has published any.
pub fn current(kv: &dyn ViewKv) -> Result<Option<Published>, String> {
    crate::inventory::read(kv, keys::CURRENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> CardRules {
        serde_json::from_str(json).unwrap()
    }

    const MINUTE: u64 = 60_000;

    #[test]
    fn a_fee_or_a_bonus_share_outside_its_bounds_is_refused_with_its_field() {
        let ok = CardRules::default();
        assert!(ok.check().is_ok());
        for (bad, field) in [
            (
                CardRules {
                    fee_percent: Decimal::from(51),
                    ..ok.clone()
                },
                "fee_percent",
            ),
            (
                CardRules {
                    fee_percent: Decimal::new(-1, 0),
                    ..ok.clone()
                },
                "fee_percent",
            ),
            (
                CardRules {
                    fee_percent: Decimal::new(1001, 3),
                    ..ok.clone()
                },
                "fee_percent",
            ),
            (
                CardRules {
                    bonus_refund_percent: Decimal::from(101),
                    ..ok.clone()
                },
                "bonus_refund_percent",
            ),
            (
                CardRules {
                    step_minutes: 0,
                    ..ok.clone()
                },
                "step_minutes",
            ),
            (
                CardRules {
                    step_minutes: 61,
                    ..ok.clone()
                },
                "step_minutes",
            ),
            (
                CardRules {
                    free_minutes: 121,
                    ..ok.clone()
                },
                "free_minutes",
            ),
        ] {
            assert_eq!(bad.check().unwrap_err().field, field, "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let refused = serde_json::from_str::<CardRules>(
            r#"{"bonus_refund_percent": "0", "cards": "pro_rata", "fee_percent": "0",
                "step_minutes": 15, "rounding": "up", "free_minutes": 0, "tip": 1}"#,
        );
        assert!(refused.is_err());
    }

    #[test]
    fn minutes_are_free_then_charged_in_steps_rounded_by_the_rule() {
        let up = rules(
            r#"{"bonus_refund_percent": "0", "cards": "pro_rata", "fee_percent": "0",
                "step_minutes": 15, "rounding": "up", "free_minutes": 10}"#,
        );
        assert_eq!(
            up.charged_minutes(10 * MINUTE),
            0,
            "within the free minutes"
        );
        assert_eq!(up.charged_minutes(10 * MINUTE + 1), 15, "a minute started");
        assert_eq!(up.charged_minutes(31 * MINUTE), 45);
        let nearest = CardRules {
            rounding: StepRounding::Nearest,
            free_minutes: 0,
            ..up.clone()
        };
        assert_eq!(nearest.charged_minutes(37 * MINUTE), 30);
        assert_eq!(nearest.charged_minutes(38 * MINUTE), 45);
        assert_eq!(
            nearest.charged_minutes(7 * MINUTE),
            0,
            "less than half a step"
        );
        assert_eq!(
            nearest.charged_minutes(8 * MINUTE),
            15,
            "half a step or more"
        );
        let down = CardRules {
            rounding: StepRounding::Down,
            free_minutes: 0,
            ..up
        };
        assert_eq!(down.charged_minutes(44 * MINUTE), 30);
        assert_eq!(
            down.charged_minutes(14 * MINUTE),
            0,
            "less than a step is not charged"
        );
        assert_eq!(CardRules::with_step(1).charged_minutes(1), 1);
        assert_eq!(
            CardRules::with_step(1).charged_minutes(0),
            1,
            "a clock stopped at once has run a minute, as before the rules"
        );
    }

    #[test]
    fn a_fee_and_a_bonus_share_round_to_the_fen_and_never_exceed_what_they_are_of() {
        let r = CardRules {
            fee_percent: Decimal::new(333, 2),
            bonus_refund_percent: Decimal::from(50),
            ..CardRules::default()
        };
        assert_eq!(r.fee(Fen(10_000)), Fen(333));
        assert_eq!(r.fee(Fen(1)), Fen(0));
        assert_eq!(r.bonus_refund(Fen(1_001)), Fen(501));
        let all = CardRules {
            fee_percent: Decimal::from(50),
            bonus_refund_percent: Decimal::ONE_HUNDRED,
            cards: CardRefund::None,
            ..CardRules::default()
        };
        assert_eq!(all.fee(Fen(3)), Fen(2));
        assert_eq!(all.bonus_refund(Fen(7)), Fen(7));
        assert_eq!(all.card_refund(Fen(500)), Fen(0));
    }
}
