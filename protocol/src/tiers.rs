//! 会员等级: headquarters' tier table. Each tier starts at a threshold of what a member
//! qualified with over a rolling period — net spend in fen, or points earned — and gives a
//! discount and a points multiplier. A member moves **up** at the till when a sale takes them
//! over a threshold (offline too, from the sales the store knows of), and **down** only at
//! headquarters' periodic review, which sees every store's sales, and only out of a tier that
//! may go down. A tier set by hand needs a store manager and a reason; every move is audited
//! (`crate::audit::Note::TierMoved`).
//!
//! Published as its own entry of headquarters' log (`Payload::Tiers`), kept like the member
//! rules (`crate::project::rules`). Once a table is published, its discounts replace the
//! rules' `tier_percent_off` and its first tier is the one new members get.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::StaffId;
use crate::inventory::ViewKv;
use crate::money::{Fen, Rounding};
use crate::points::EarnRule;
use crate::rules::{NAME_CHARS_MAX, RulesError};

/// The most tiers a table holds, the longest rolling period, and the longest reason given for
/// a tier set by hand.
pub const TIERS_MAX: usize = 20;
pub const PERIOD_DAYS_MAX: u32 = 730;
pub const REASON_CHARS_MAX: usize = 200;
/// The highest threshold: 100 million yuan in fen, or as many points.
pub const THRESHOLD_MAX: u64 = 10_000_000_000;

/// What a threshold measures over the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Net spend: what sales to the member were paid, less what returns paid back (fen).
    Spend,
    /// Points earned by those sales, less what returns took back.
    Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    /// Fen for `Basis::Spend`, points for `Basis::Points`; the first tier's is 0.
    pub threshold: u64,
    pub percent_off: Decimal,
    /// Points earned are multiplied by this (1 to 10), rounded down once.
    pub points_multiplier: Decimal,
    /// Whether the periodic review may move a member down out of this tier.
    pub may_go_down: bool,
}

/// The tiers, lowest first, each starting where the one before it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierTable {
    pub basis: Basis,
    pub period_days: u32,
    pub tiers: Vec<Tier>,
}

fn refuse<T>(field: &'static str, message: impl Into<String>) -> Result<T, RulesError> {
    Err(RulesError {
        field,
        message: message.into(),
    })
}

impl Basis {
    /// A figure as people read it: yuan of spend, or points.
    pub fn shown(self, figure: i64) -> String {
        match self {
            Basis::Spend => format!("消费 {} 元", Fen(figure).to_decimal()),
            Basis::Points => format!("积分 {figure}"),
        }
    }
}

impl TierTable {
    /// 1 to `TIERS_MAX` tiers with distinct names, the first from 0, the thresholds rising
    /// (two tiers from the same threshold would overlap), discounts from 0 to 100 percent,
    /// multipliers from 1 to 10, a period from 1 to `PERIOD_DAYS_MAX` days.
    pub fn check(&self) -> Result<(), RulesError> {
        if !(1..=PERIOD_DAYS_MAX).contains(&self.period_days) {
            return refuse("period_days", format!("from 1 to {PERIOD_DAYS_MAX} days"));
        }
        if !(1..=TIERS_MAX).contains(&self.tiers.len()) {
            return refuse("tiers", format!("1 to {TIERS_MAX} tiers"));
        }
        let mut names = BTreeSet::new();
        for t in &self.tiers {
            let name = t.name.as_str();
            if name.trim().is_empty()
                || name.trim() != name
                || name.chars().count() > NAME_CHARS_MAX
                || crate::member::check_tier(name).is_err()
            {
                return refuse(
                    "tiers",
                    format!("a tier's name needs 1 to {NAME_CHARS_MAX} characters"),
                );
            }
            if !names.insert(name) {
                return refuse("tiers", format!("{name} is named twice"));
            }
            if t.threshold > THRESHOLD_MAX {
                return refuse("tiers", format!("{name}: the threshold is too large"));
            }
            if t.percent_off < Decimal::ZERO || t.percent_off > Decimal::ONE_HUNDRED {
                return refuse(
                    "tiers",
                    format!("{name}: the discount must be from 0 to 100 percent"),
                );
            }
            if t.points_multiplier < Decimal::ONE || t.points_multiplier > Decimal::TEN {
                return refuse(
                    "tiers",
                    format!("{name}: the points multiplier must be from 1 to 10"),
                );
            }
        }
        if self.tiers[0].threshold != 0 {
            return refuse(
                "tiers",
                format!(
                    "the first tier ({}) starts at 0: every member is in a tier",
                    self.tiers[0].name
                ),
            );
        }
        for pair in self.tiers.windows(2) {
            let (low, high) = (&pair[0], &pair[1]);
            if high.threshold <= low.threshold {
                return refuse(
                    "tiers",
                    format!(
                        "{} starts at {} and {} at {}: thresholds overlap (list the tiers \
                         lowest first, each from a higher threshold)",
                        low.name,
                        self.shown(low.threshold),
                        high.name,
                        self.shown(high.threshold)
                    ),
                );
            }
        }
        Ok(())
    }

    /// A threshold as people read it: yuan for spend, points for points.
    pub fn shown(&self, threshold: u64) -> String {
        match self.basis {
            Basis::Spend => format!(
                "{} 元",
                Fen(i64::try_from(threshold).unwrap_or(i64::MAX)).to_decimal()
            ),
            Basis::Points => format!("{threshold} 分"),
        }
    }

    pub fn first(&self) -> &Tier {
        &self.tiers[0]
    }

    /// A tier's place, lowest 0; `None` for a name not in the table.
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    /// The highest tier whose threshold `qualifying` reaches.
    pub fn earned(&self, qualifying: i64) -> &Tier {
        let q = u64::try_from(qualifying).unwrap_or(0);
        self.tiers
            .iter()
            .rev()
            .find(|t| t.threshold <= q)
            .unwrap_or(self.first())
    }

    /// At the till: the tier a member in `current` moves up to with `qualifying`, if higher. A
    /// member in a tier the table does not name (given before it) is left to the review, which
    /// places them: the till never moves anyone down.
    pub fn rise(&self, current: &str, qualifying: i64) -> Option<&Tier> {
        let rank = self.rank(current)?;
        let earned = self.earned(qualifying);
        (self.rank(&earned.name) > Some(rank)).then_some(earned)
    }

    /// Whether a tier above `current` exists for the till to raise a member to.
    pub fn has_above(&self, current: &str) -> bool {
        self.rank(current).is_some_and(|r| r + 1 < self.tiers.len())
    }

    /// At headquarters' review, which sees every store: up as at the till, down only out of a
    /// tier that may go down, and only as far as the tier `qualifying` earns.
    pub fn review(&self, current: &str, qualifying: i64) -> Option<&Tier> {
        let earned = self.earned(qualifying);
        let Some(rank) = self.rank(current) else {
            return Some(earned);
        };
        let to = self.rank(&earned.name).unwrap_or(0);
        match to.cmp(&rank) {
            std::cmp::Ordering::Greater => Some(earned),
            std::cmp::Ordering::Less if self.tiers[rank].may_go_down => Some(earned),
            _ => None,
        }
    }

    /// The discount of each tier, as pricing reads it.
    pub fn percent_off(&self) -> BTreeMap<String, Decimal> {
        self.tiers
            .iter()
            .map(|t| (t.name.clone(), t.percent_off))
            .collect()
    }

    /// The chain's earning rule for a member in `tier`: every rate times the tier's multiplier,
    /// so a sale's points are multiplied once and rounded down once.
    pub fn earn_for(&self, earn: &EarnRule, tier: &str) -> EarnRule {
        let m = self
            .tier(tier)
            .map_or(Decimal::ONE, |t| t.points_multiplier);
        if m == Decimal::ONE {
            return earn.clone();
        }
        EarnRule {
            points_per_yuan: earn.points_per_yuan * m,
            categories: earn
                .categories
                .iter()
                .map(|(c, r)| (c.clone(), r * m))
                .collect(),
            multipliers: earn.multipliers.clone(),
        }
    }
}

/// The table as people write it: thresholds in yuan (spend) or points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierForm {
    pub basis: Basis,
    /// The rolling period, in days up to today (e.g. 365).
    pub period_days: u32,
    /// Lowest first; the first from 0.
    pub tiers: Vec<TierRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRow {
    pub name: String,
    pub threshold: Decimal,
    #[serde(default)]
    pub percent_off: Decimal,
    #[serde(default = "one")]
    pub points_multiplier: Decimal,
    #[serde(default = "yes")]
    pub may_go_down: bool,
}

fn one() -> Decimal {
    Decimal::ONE
}

fn yes() -> bool {
    true
}

impl TierForm {
    /// The table, checked; a spend threshold with more than two decimals, or a points one
    /// with any, is refused rather than rounded.
    pub fn table(&self) -> Result<TierTable, RulesError> {
        let tiers = self
            .tiers
            .iter()
            .map(|row| {
                let threshold = match self.basis {
                    Basis::Spend => Fen::from_decimal(row.threshold, Rounding::TowardZero)
                        .ok()
                        .filter(|f| f.to_decimal() == row.threshold)
                        .and_then(|f| u64::try_from(f.0).ok()),
                    Basis::Points => Some(row.threshold)
                        .filter(|t| t.fract().is_zero())
                        .and_then(|t| u64::try_from(t).ok()),
                };
                let Some(threshold) = threshold.filter(|t| *t <= THRESHOLD_MAX) else {
                    return refuse(
                        "tiers",
                        format!(
                            "{}: the threshold {} is not {} of at least 0",
                            row.name,
                            row.threshold,
                            match self.basis {
                                Basis::Spend => "an amount in yuan",
                                Basis::Points => "a whole number of points",
                            }
                        ),
                    );
                };
                Ok(Tier {
                    name: row.name.clone(),
                    threshold,
                    percent_off: row.percent_off,
                    points_multiplier: row.points_multiplier,
                    may_go_down: row.may_go_down,
                })
            })
            .collect::<Result<_, _>>()?;
        let table = TierTable {
            basis: self.basis,
            period_days: self.period_days,
            tiers,
        };
        table.check()?;
        Ok(table)
    }

    pub fn of(table: &TierTable) -> TierForm {
        TierForm {
            basis: table.basis,
            period_days: table.period_days,
            tiers: table
                .tiers
                .iter()
                .map(|t| TierRow {
                    name: t.name.clone(),
                    threshold: match table.basis {
                        Basis::Spend => {
                            Fen(i64::try_from(t.threshold).unwrap_or(i64::MAX)).to_decimal()
                        }
                        Basis::Points => Decimal::from(t.threshold),
                    },
                    percent_off: t.percent_off,
                    points_multiplier: t.points_multiplier,
                    may_go_down: t.may_go_down,
                })
                .collect(),
        }
    }
}

/// Why a member's tier moved (the audit note's reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierWhy {
    /// A store manager (or headquarters) set it, for this reason.
    ByHand { reason: String },
    /// A sale at the till took the member over a threshold: what they qualified with, as the
    /// store knew it (fen of net spend, or points, by `basis`).
    Earned { qualifying: i64, basis: Basis },
    /// Headquarters' periodic review, from every store's sales up to `as_of`.
    Review {
        qualifying: i64,
        basis: Basis,
        as_of: chrono::NaiveDate,
    },
}

/// A table as headquarters published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub staff: StaffId,
    pub table: TierTable,
}

pub mod keys {
    /// The table in force: the one published last.
    pub const CURRENT: &[u8] = b"ru/t/now";
    /// Each published table, in publishing order.
    pub const HISTORY: &[u8] = b"ru/t/h/";

    pub fn published(at: crate::hlc::Hlc) -> Vec<u8> {
        format!("ru/t/h/{:020}.{:010}", at.wall_ms, at.logical).into_bytes()
    }
}

/// The table in force, if headquarters has published one.
pub fn current(kv: &dyn ViewKv) -> Result<Option<Published>, String> {
    crate::inventory::read(kv, keys::CURRENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> TierForm {
        serde_json::from_str(
            r#"{"basis": "spend", "period_days": 365, "tiers": [
                {"name": "普通", "threshold": "0"},
                {"name": "银卡", "threshold": "1000", "percent_off": "5", "points_multiplier": "1.5"},
                {"name": "金卡", "threshold": "5000", "percent_off": "10", "points_multiplier": "2", "may_go_down": false}
            ]}"#,
        )
        .unwrap()
    }

    fn yuan(y: i64) -> i64 {
        y * 100
    }

    #[test]
    fn a_form_in_yuan_becomes_a_table_in_fen_and_back() {
        let table = form().table().unwrap();
        assert_eq!(table.tiers[1].threshold, 100_000);
        assert!(table.tiers[0].may_go_down && !table.tiers[2].may_go_down);
        assert_eq!(TierForm::of(&table), form());
    }

    #[test]
    fn overlapping_thresholds_are_refused() {
        let mut f = form();
        f.tiers[2].threshold = Decimal::from(1000);
        let e = f.table().unwrap_err();
        assert!(e.message.contains("overlap"), "{e}");
        let mut f = form();
        f.tiers.swap(1, 2);
        assert!(f.table().unwrap_err().message.contains("overlap"));
    }

    #[test]
    fn each_bad_table_is_named() {
        let bad = |edit: fn(&mut TierForm), field: &str| {
            let mut f = form();
            edit(&mut f);
            assert_eq!(f.table().unwrap_err().field, field, "{f:?}");
        };
        bad(|f| f.period_days = 0, "period_days");
        bad(|f| f.period_days = PERIOD_DAYS_MAX + 1, "period_days");
        bad(|f| f.tiers.clear(), "tiers");
        bad(|f| f.tiers[0].threshold = Decimal::ONE, "tiers");
        bad(|f| f.tiers[1].name = "普通".into(), "tiers");
        bad(|f| f.tiers[1].name = " ".into(), "tiers");
        bad(|f| f.tiers[1].name = "金\t卡".into(), "tiers");
        bad(|f| f.tiers[1].name = "\u{200B}".into(), "tiers");
        bad(|f| f.tiers[1].percent_off = Decimal::from(101), "tiers");
        bad(|f| f.tiers[1].points_multiplier = Decimal::ZERO, "tiers");
        bad(|f| f.tiers[1].threshold = Decimal::new(1001, 3), "tiers");
        bad(|f| f.tiers[1].threshold = Decimal::NEGATIVE_ONE, "tiers");
        bad(
            |f| {
                f.basis = Basis::Points;
                f.tiers[1].threshold = Decimal::new(15, 1);
            },
            "tiers",
        );
    }

    #[test]
    fn a_member_rises_at_the_till_but_never_falls_there() {
        let t = form().table().unwrap();
        assert_eq!(t.rise("普通", yuan(999)), None);
        assert_eq!(t.rise("普通", yuan(1000)).unwrap().name, "银卡");
        assert_eq!(t.rise("普通", yuan(9000)).unwrap().name, "金卡");
        assert_eq!(t.rise("金卡", 0), None);
        // A tier the table does not name (from before it) is the review's to place.
        assert_eq!(t.rise("standard", yuan(9000)), None);
        assert_eq!(t.review("standard", 0).unwrap().name, "普通");
    }

    #[test]
    fn the_review_moves_down_only_out_of_a_tier_that_may_go_down() {
        let t = form().table().unwrap();
        assert_eq!(t.review("银卡", yuan(10)).unwrap().name, "普通");
        assert_eq!(t.review("金卡", yuan(10)), None);
        assert_eq!(t.review("普通", yuan(5000)).unwrap().name, "金卡");
        assert_eq!(t.review("银卡", yuan(2000)), None);
    }

    #[test]
    fn a_tier_multiplies_the_points_it_earns_once() {
        let t = form().table().unwrap();
        let earn = EarnRule::default();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let paid = Fen(1_099); // 10.99 yuan
        assert_eq!(earn.earn(paid, None, day).0, 10);
        assert_eq!(t.earn_for(&earn, "银卡").earn(paid, None, day).0, 16);
        assert_eq!(t.earn_for(&earn, "金卡").earn(paid, None, day).0, 21);
        assert_eq!(t.earn_for(&earn, "nobody").earn(paid, None, day).0, 10);
    }
}
