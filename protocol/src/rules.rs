//! The chain's member rules (会员规则) that headquarters sets for every store: points earned per
//! yuan (by category, with multiplier days such as 会员日), top-up bonus rules (充值赠送), the
//! discount of each member tier (等级折扣) and the offline overdraft policy (离线透支).
//!
//! Each change is one entry of headquarters' log, so who changed what and when is recorded, and
//! every store learns it through the feed. A store applies the rules from the moment they reach
//! it; until headquarters has published any, it keeps the rules of its own `node.toml`. A sale or
//! top-up records what the rules gave it (points earned, the bonus), so a later change never
//! rewrites the past.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::StaffId;
use crate::inventory::ViewKv;
use crate::money::{Fen, Rounding};
use crate::points::{EarnRule, Multiplier};
use crate::wallet::TopUpRule;

/// The most names a rule set may carry in each list (categories, multipliers, top-up rules,
/// tiers), and the longest name.
pub const NAMES_MAX: usize = 200;
pub const NAME_CHARS_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRules {
    pub earn: EarnRule,
    pub top_up_rules: Vec<TopUpRule>,
    /// Percent off by member tier, e.g. 金卡 → 10.
    pub tier_percent_off: BTreeMap<String, Decimal>,
    /// What one member may owe one store, and all members one store, for stored-value payments
    /// taken while headquarters was unreachable (0: refuse such payments).
    pub overdraft_member: Fen,
    pub overdraft_store: Fen,
    /// 透支审批: whether an offline overdraft needs a store manager at the till (who is then
    /// the one the sale records), rather than any cashier.
    pub overdraft_needs_manager: bool,
}

/// Why a rule set was refused, naming the field (as the form and the API name it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RulesError {
    pub field: &'static str,
    pub message: String,
}

fn refuse<T>(field: &'static str, message: impl Into<String>) -> Result<T, RulesError> {
    Err(RulesError {
        field,
        message: message.into(),
    })
}

fn names_ok<'a>(
    field: &'static str,
    names: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), RulesError> {
    if names.len() > NAMES_MAX {
        return refuse(field, format!("at most {NAMES_MAX} entries"));
    }
    let mut seen = BTreeSet::new();
    for name in names {
        if name.trim().is_empty() || name.chars().count() > NAME_CHARS_MAX {
            return refuse(
                field,
                format!("a name needs 1 to {NAME_CHARS_MAX} characters"),
            );
        }
        if !seen.insert(name) {
            return refuse(field, format!("{name} is named twice"));
        }
    }
    Ok(())
}

impl ChainRules {
    /// Rates at least zero (and below 1,000 points per yuan), multipliers on a named day with a
    /// factor from 1 to 10, top-up rules with an amount to pay and a bonus not above it, tier
    /// discounts from 0 to 100 percent, overdraft caps at least zero with the member's not above
    /// the store's.
    pub fn check(&self) -> Result<(), RulesError> {
        let rate_ok = |r: &Decimal| *r >= Decimal::ZERO && *r < Decimal::from(1_000);
        if !rate_ok(&self.earn.points_per_yuan) {
            return refuse("points_per_yuan", "must be from 0 to 999");
        }
        names_ok(
            "points_per_yuan_by_category",
            self.earn.categories.keys().map(String::as_str),
        )?;
        if !self.earn.categories.values().all(rate_ok) {
            return refuse(
                "points_per_yuan_by_category",
                "each rate must be from 0 to 999",
            );
        }
        names_ok(
            "points_multipliers",
            self.earn.multipliers.iter().map(|m| m.name.as_str()),
        )?;
        let factor_ok = |m: &Multiplier| m.factor >= Decimal::ONE && m.factor <= Decimal::TEN;
        if let Some(m) = self.earn.multipliers.iter().find(|m| !factor_ok(m)) {
            return refuse(
                "points_multipliers",
                format!("{}: the factor must be from 1 to 10", m.name),
            );
        }
        let day_ok = |m: &Multiplier| {
            (m.weekday.is_some() || m.day_of_month.is_some())
                && m.day_of_month.is_none_or(|d| (1..=31).contains(&d))
        };
        if let Some(m) = self.earn.multipliers.iter().find(|m| !day_ok(m)) {
            return refuse(
                "points_multipliers",
                format!("{}: needs a weekday or a day of the month (1–31)", m.name),
            );
        }
        names_ok(
            "top_up_rules",
            self.top_up_rules.iter().map(|r| r.id.as_str()),
        )?;
        for r in &self.top_up_rules {
            if r.pay_at_least.0 <= 0 || r.bonus.0 < 0 || r.bonus > r.pay_at_least {
                return refuse(
                    "top_up_rules",
                    format!(
                        "{}: pay more than 0, and a bonus from 0 to what is paid",
                        r.id
                    ),
                );
            }
        }
        names_ok(
            "tier_percent_off",
            self.tier_percent_off.keys().map(String::as_str),
        )?;
        let percent_ok = |p: &Decimal| *p >= Decimal::ZERO && *p <= Decimal::ONE_HUNDRED;
        if !self.tier_percent_off.values().all(percent_ok) {
            return refuse(
                "tier_percent_off",
                "each discount must be from 0 to 100 percent",
            );
        }
        if self.overdraft_member.0 < 0 {
            return refuse("offline_overdraft_per_member", "must be at least 0");
        }
        if self.overdraft_store < self.overdraft_member {
            return refuse(
                "offline_overdraft_per_store",
                "must be at least the per-member amount",
            );
        }
        Ok(())
    }
}

/// The rules as people write them, in yuan: headquarters' API and page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesForm {
    pub points_per_yuan: Decimal,
    #[serde(default)]
    pub points_per_yuan_by_category: BTreeMap<String, Decimal>,
    #[serde(default)]
    pub points_multipliers: Vec<Multiplier>,
    /// e.g. `[{"id": "充500送50", "pay_at_least": "500", "bonus": "50"}]`
    #[serde(default)]
    pub top_up_rules: Vec<TopUpForm>,
    #[serde(default)]
    pub tier_percent_off: BTreeMap<String, Decimal>,
    pub offline_overdraft_per_member: Decimal,
    pub offline_overdraft_per_store: Decimal,
    /// Only a store manager may take an offline overdraft.
    #[serde(default)]
    pub offline_overdraft_needs_manager: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpForm {
    pub id: String,
    pub pay_at_least: Decimal,
    pub bonus: Decimal,
}

impl RulesForm {
    /// The rules in fen, checked; an amount with more than two decimals is refused, not rounded.
    pub fn rules(&self) -> Result<ChainRules, RulesError> {
        let fen = |field: &'static str, yuan: Decimal| -> Result<Fen, RulesError> {
            match Fen::from_decimal(yuan, Rounding::TowardZero) {
                Ok(f) if f.to_decimal() == yuan && f.0 >= 0 => Ok(f),
                _ => refuse(
                    field,
                    format!("{yuan} is not an amount in yuan of at least 0"),
                ),
            }
        };
        let top_up_rules = self
            .top_up_rules
            .iter()
            .map(|r| {
                Ok(TopUpRule {
                    id: r.id.trim().to_owned(),
                    pay_at_least: fen("top_up_rules", r.pay_at_least)?,
                    bonus: fen("top_up_rules", r.bonus)?,
                })
            })
            .collect::<Result<_, RulesError>>()?;
        let rules = ChainRules {
            earn: EarnRule {
                points_per_yuan: self.points_per_yuan,
                categories: self.points_per_yuan_by_category.clone(),
                multipliers: self.points_multipliers.clone(),
            },
            top_up_rules,
            tier_percent_off: self.tier_percent_off.clone(),
            overdraft_member: fen(
                "offline_overdraft_per_member",
                self.offline_overdraft_per_member,
            )?,
            overdraft_store: fen(
                "offline_overdraft_per_store",
                self.offline_overdraft_per_store,
            )?,
            overdraft_needs_manager: self.offline_overdraft_needs_manager,
        };
        rules.check()?;
        Ok(rules)
    }

    pub fn of(rules: &ChainRules) -> RulesForm {
        RulesForm {
            points_per_yuan: rules.earn.points_per_yuan,
            points_per_yuan_by_category: rules.earn.categories.clone(),
            points_multipliers: rules.earn.multipliers.clone(),
            top_up_rules: rules
                .top_up_rules
                .iter()
                .map(|r| TopUpForm {
                    id: r.id.clone(),
                    pay_at_least: r.pay_at_least.to_decimal(),
                    bonus: r.bonus.to_decimal(),
                })
                .collect(),
            tier_percent_off: rules.tier_percent_off.clone(),
            offline_overdraft_per_member: rules.overdraft_member.to_decimal(),
            offline_overdraft_per_store: rules.overdraft_store.to_decimal(),
            offline_overdraft_needs_manager: rules.overdraft_needs_manager,
        }
    }
}

/// A rule set as headquarters published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub staff: StaffId,
    pub rules: ChainRules,
}

pub mod keys {
    /// Every prefix this module writes.
    pub const PREFIX: &[u8] = b"ru/";
    /// The rule set in force: the one published last.
    pub const CURRENT: &[u8] = b"ru/now";
    /// Each published set, in publishing order.
    pub const HISTORY: &[u8] = b"ru/h/";

    pub fn published(at: crate::hlc::Hlc) -> Vec<u8> {
        format!("ru/h/{:020}.{:010}", at.wall_ms, at.logical).into_bytes()
    }
}

/// The rule set in force, if headquarters has published one.
pub fn current(kv: &dyn ViewKv) -> Result<Option<Published>, String> {
    crate::inventory::read(kv, keys::CURRENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, Payload};
    use crate::ids::StoreId;
    use crate::project::rules::apply;
    use chrono::NaiveDate;

    fn form() -> RulesForm {
        serde_json::from_str(
            r#"{"points_per_yuan": "2", "points_per_yuan_by_category": {"烟酒": "0"},
                "points_multipliers": [{"name": "会员日", "weekday": "Wed", "day_of_month": null, "factor": "2"}],
                "top_up_rules": [{"id": "充1000送200", "pay_at_least": "1000", "bonus": "200"}],
                "tier_percent_off": {"金卡": "10"},
                "offline_overdraft_per_member": "100", "offline_overdraft_per_store": "2000",
                "offline_overdraft_needs_manager": true}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_form_in_yuan_becomes_rules_in_fen_and_back() {
        let rules = form().rules().unwrap();
        assert_eq!(rules.top_up_rules[0].bonus, Fen(20_000));
        assert_eq!(rules.overdraft_store, Fen(200_000));
        assert_eq!(RulesForm::of(&rules), form());
    }

    #[test]
    fn each_bad_field_is_named() {
        let bad = |edit: fn(&mut RulesForm), field: &str| {
            let mut f = form();
            edit(&mut f);
            assert_eq!(f.rules().unwrap_err().field, field, "{f:?}");
        };
        bad(
            |f| f.points_per_yuan = Decimal::NEGATIVE_ONE,
            "points_per_yuan",
        );
        bad(
            |f| {
                f.points_per_yuan_by_category
                    .insert("生鲜".into(), Decimal::from(5000));
            },
            "points_per_yuan_by_category",
        );
        bad(
            |f| f.points_multipliers[0].factor = Decimal::ZERO,
            "points_multipliers",
        );
        bad(
            |f| f.points_multipliers[0].weekday = None,
            "points_multipliers",
        );
        bad(
            |f| f.top_up_rules[0].bonus = Decimal::from(2000),
            "top_up_rules",
        );
        bad(
            |f| f.top_up_rules[0].pay_at_least = Decimal::new(1, 3),
            "top_up_rules",
        );
        bad(
            |f| f.top_up_rules.push(f.top_up_rules[0].clone()),
            "top_up_rules",
        );
        bad(|f| f.top_up_rules[0].id = " ".into(), "top_up_rules");
        bad(
            |f| {
                f.tier_percent_off.insert("银卡".into(), Decimal::from(101));
            },
            "tier_percent_off",
        );
        bad(
            |f| f.offline_overdraft_per_member = Decimal::NEGATIVE_ONE,
            "offline_overdraft_per_member",
        );
        bad(
            |f| f.offline_overdraft_per_store = Decimal::from(50),
            "offline_overdraft_per_store",
        );
    }

    fn entry(origin: &str, wall_ms: u64, rules: ChainRules) -> Entry {
        Entry {
            origin: StoreId::parse(origin).unwrap(),
            seq: 1,
            hlc: Hlc {
                wall_ms,
                logical: 0,
            },
            business_date: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            staff: StaffId::parse("hq01").unwrap(),
            tx: crate::TxId::parse("key-00000001").unwrap(),
            prev_hash: crate::EntryHash::GENESIS,
            payload: Payload::ChainRules { rules },
        }
    }

    #[test]
    fn the_set_published_last_is_in_force_whatever_order_they_arrive_in() {
        let older = form().rules().unwrap();
        let mut newer = older.clone();
        newer.earn.points_per_yuan = Decimal::ONE;
        let mut kv = BTreeMap::new();
        assert_eq!(apply(&mut kv, &entry("HQ", 20, newer.clone())), Ok(None));
        assert_eq!(apply(&mut kv, &entry("HQ", 10, older)), Ok(None));
        assert_eq!(current(&kv).unwrap().unwrap().rules, newer);
        assert_eq!(kv.len(), 3, "two in the history, one current");
        let from_store = apply(&mut kv, &entry("S001", 30, form().rules().unwrap()));
        assert!(from_store.unwrap().is_some());
        assert_eq!(current(&kv).unwrap().unwrap().rules, newer);
    }
}
