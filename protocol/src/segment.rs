//! 人群: a saved filter over the member directory and what members bought, evaluated by
//! headquarters as of a day (the day a campaign runs): every condition must hold. Activity is
//! read from the report cells (one per member, store and day: `crate::reports`), the rest from
//! the member's profile. A condition naming a field that does not exist is refused when the
//! segment is read (`deny_unknown_fields`), so a typo never widens a segment to everyone.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::campaign::{MarketingError, NAME_CHARS_MAX, check_id, check_text};
use crate::ids::StoreId;
use crate::member::{CUSTOM_KEY_CHARS_MAX, CUSTOM_VALUE_CHARS_MAX, CardStatus, Profile};
use crate::money::Fen;

/// The most conditions in one segment.
pub const CONDITIONS_MAX: usize = 20;
/// The most values one condition lists (tiers, tags, stores).
pub const VALUES_MAX: usize = 500;
/// The longest window a condition looks back over (two years).
pub const WINDOW_DAYS_MAX: u32 = 731;

/// What a segment (and a tier review) reads of a member's profile, and nothing else (not the
/// name, phone, cards or notes): headquarters files it beside each member's record, sealed under the member's key
/// like the record, so that a segment on the profile reads a few dozen bytes a member instead
/// of the whole record and its document (`HubStore::facets_after`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    pub birthday: Option<NaiveDate>,
    pub join_date: NaiveDate,
    pub tier: String,
    pub tags: BTreeSet<String>,
    pub home_store: StoreId,
    pub custom: BTreeMap<String, String>,
    pub marketing_consent: bool,
    /// Whether the membership is closed (a review leaves closed ones alone).
    pub card_status: CardStatus,
}

impl Facets {
    pub fn of(profile: &Profile) -> Facets {
        Facets {
            birthday: profile.birthday,
            join_date: profile.join_date,
            tier: profile.tier.clone(),
            tags: profile.tags.clone(),
            home_store: profile.home_store.clone(),
            custom: profile.custom.clone(),
            marketing_consent: profile.marketing_consent,
            card_status: profile.card_status,
        }
    }
}

/// One condition of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// 生日: the birthday falls within the next `within_days` days (0: today).
    Birthday { within_days: u32 },
    /// 沉睡: at least `visits` days with a purchase in the last `window_days` days, and none in
    /// the last `quiet_days`.
    Dormant {
        visits: u32,
        window_days: u32,
        quiet_days: u32,
    },
    /// 新会员: joined within the last `within_days` days (0: today).
    Joined { within_days: u32 },
    /// 等级: the member's tier is one of these.
    Tier { any: BTreeSet<String> },
    /// 标签: the member has at least one of these tags.
    Tags { any: BTreeSet<String> },
    /// 所属门店: the member's home store is one of these.
    HomeStore { any: BTreeSet<StoreId> },
    /// 消费门店: bought at one of these stores within the last `within_days` days.
    ShoppedAt {
        any: BTreeSet<StoreId>,
        within_days: u32,
    },
    /// 消费金额: paid (net of returns) between `at_least` and `at_most` within the last
    /// `within_days` days.
    Spend {
        within_days: u32,
        at_least: Fen,
        #[serde(default)]
        at_most: Option<Fen>,
    },
    /// 消费次数: days with a purchase between `at_least` and `at_most` within the last
    /// `within_days` days.
    Visits {
        within_days: u32,
        at_least: u32,
        #[serde(default)]
        at_most: Option<u32>,
    },
    /// 自定义属性: the custom attribute `key` is `value`.
    Custom { key: String, value: String },
    /// 营销同意: the member agreed to receive marketing.
    Consent,
}

/// What a member bought on one day at one store (from the report cells).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub date: NaiveDate,
    pub store: StoreId,
    pub sales: u64,
    /// Paid, net of returns made that day, in fen.
    pub spent: i64,
}

/// 人群: conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub id: String,
    pub name: String,
    pub conditions: Vec<Condition>,
}

impl Condition {
    fn check(&self) -> Result<(), MarketingError> {
        let window = |field: &str, days: u32| {
            if days > WINDOW_DAYS_MAX {
                return Err(MarketingError::new(
                    field,
                    format!("at most {WINDOW_DAYS_MAX} days"),
                ));
            }
            Ok(())
        };
        let values = |field: &str, n: usize| {
            if !(1..=VALUES_MAX).contains(&n) {
                return Err(MarketingError::new(
                    field,
                    format!("1 to {VALUES_MAX} values"),
                ));
            }
            Ok(())
        };
        match self {
            Condition::Birthday { within_days } => {
                if *within_days > 365 {
                    return Err(MarketingError::new("birthday", "within 0 to 365 days"));
                }
            }
            Condition::Dormant {
                visits,
                window_days,
                quiet_days,
            } => {
                window("dormant", *window_days)?;
                if *visits == 0 || *quiet_days == 0 || quiet_days >= window_days {
                    return Err(MarketingError::new(
                        "dormant",
                        "at least 1 visit, and quiet days from 1 to fewer than the window's",
                    ));
                }
            }
            Condition::Joined { within_days } => window("joined", *within_days)?,
            Condition::Tier { any } => values("tier", any.len())?,
            Condition::Tags { any } => values("tags", any.len())?,
            Condition::HomeStore { any } => values("home_store", any.len())?,
            Condition::ShoppedAt { any, within_days } => {
                values("shopped_at", any.len())?;
                window("shopped_at", *within_days)?;
            }
            Condition::Spend {
                within_days,
                at_least,
                at_most,
            } => {
                window("spend", *within_days)?;
                if at_least.0 < 0 || at_most.is_some_and(|m| m < *at_least) {
                    return Err(MarketingError::new(
                        "spend",
                        "at_least is not negative and at_most not below it",
                    ));
                }
            }
            Condition::Visits {
                within_days,
                at_least,
                at_most,
            } => {
                window("visits", *within_days)?;
                if at_most.is_some_and(|m| m < *at_least) {
                    return Err(MarketingError::new(
                        "visits",
                        "at_most is not below at_least",
                    ));
                }
            }
            Condition::Custom { key, value } => {
                if key.is_empty()
                    || key.chars().count() > CUSTOM_KEY_CHARS_MAX
                    || value.chars().count() > CUSTOM_VALUE_CHARS_MAX
                {
                    return Err(MarketingError::new(
                        "custom",
                        format!(
                            "a key of 1 to {CUSTOM_KEY_CHARS_MAX} characters, a value of at most {CUSTOM_VALUE_CHARS_MAX}"
                        ),
                    ));
                }
            }
            Condition::Consent => {}
        }
        Ok(())
    }

    /// Whether only a member with a purchase in its window can meet it.
    fn needs_purchase(&self) -> bool {
        match self {
            Condition::Dormant { .. } | Condition::ShoppedAt { .. } => true,
            Condition::Spend { at_least, .. } => at_least.0 > 0,
            Condition::Visits { at_least, .. } => *at_least > 0,
            _ => false,
        }
    }

    /// How many days of purchases up to the day of evaluation it reads (0: none).
    fn window_days(&self) -> u32 {
        match self {
            Condition::Dormant { window_days, .. } => *window_days,
            Condition::ShoppedAt { within_days, .. }
            | Condition::Spend { within_days, .. }
            | Condition::Visits { within_days, .. } => within_days + 1,
            _ => 0,
        }
    }

    /// Whether it holds for these days of purchases, for a condition on purchases alone
    /// (`None` for one on the profile).
    fn on_purchases(&self, days: &[Day], today: NaiveDate) -> Option<bool> {
        let since = |n: u32| today - TimeDelta::days(i64::from(n));
        let visits = |from: NaiveDate| {
            let dates: BTreeSet<NaiveDate> = days
                .iter()
                .filter(|d| d.date >= from && d.date <= today && d.sales > 0)
                .map(|d| d.date)
                .collect();
            u32::try_from(dates.len()).unwrap_or(u32::MAX)
        };
        Some(match self {
            Condition::Dormant {
                visits: at_least,
                window_days,
                quiet_days,
            } => visits(since(window_days - 1)) >= *at_least && visits(since(quiet_days - 1)) == 0,
            Condition::ShoppedAt { any, within_days } => days.iter().any(|d| {
                d.date >= since(*within_days)
                    && d.date <= today
                    && d.sales > 0
                    && any.contains(&d.store)
            }),
            Condition::Spend {
                within_days,
                at_least,
                at_most,
            } => {
                let from = since(*within_days);
                let spent: i64 = days
                    .iter()
                    .filter(|d| d.date >= from && d.date <= today)
                    .map(|d| d.spent)
                    .sum();
                spent >= at_least.0 && at_most.is_none_or(|m| spent <= m.0)
            }
            Condition::Visits {
                within_days,
                at_least,
                at_most,
            } => {
                let n = visits(since(*within_days));
                n >= *at_least && at_most.is_none_or(|m| n <= m)
            }
            _ => return None,
        })
    }

    fn holds(&self, profile: &Facets, days: &[Day], today: NaiveDate) -> bool {
        if let Some(holds) = self.on_purchases(days, today) {
            return holds;
        }
        let since = |n: u32| today - TimeDelta::days(i64::from(n));
        match self {
            Condition::Birthday { within_days } => profile
                .birthday
                .is_some_and(|b| birthday_within(b, today, *within_days)),
            Condition::Joined { within_days } => {
                profile.join_date >= since(*within_days) && profile.join_date <= today
            }
            Condition::Tier { any } => any.contains(&profile.tier),
            Condition::Tags { any } => !profile.tags.is_disjoint(any),
            Condition::HomeStore { any } => any.contains(&profile.home_store),
            Condition::Custom { key, value } => profile.custom.get(key) == Some(value),
            Condition::Consent => profile.marketing_consent,
            Condition::Dormant { .. }
            | Condition::ShoppedAt { .. }
            | Condition::Spend { .. }
            | Condition::Visits { .. } => unreachable!("a condition on purchases is met above"),
        }
    }
}

/// Whether the birthday's month and day fall within `within` days from `today` (a 29 February
/// birthday is kept on the 28th in other years).
fn birthday_within(birthday: NaiveDate, today: NaiveDate, within: u32) -> bool {
    let last = today + TimeDelta::days(i64::from(within));
    [today.year(), today.year() + 1].into_iter().any(|year| {
        let day = NaiveDate::from_ymd_opt(year, birthday.month(), birthday.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, birthday.month(), birthday.day() - 1));
        day.is_some_and(|d| d >= today && d <= last)
    })
}

impl Segment {
    pub fn check(&self) -> Result<(), MarketingError> {
        check_id("id", &self.id)?;
        check_text("name", &self.name, NAME_CHARS_MAX)?;
        if self.conditions.len() > CONDITIONS_MAX {
            return Err(MarketingError::new(
                "conditions",
                format!("at most {CONDITIONS_MAX}"),
            ));
        }
        self.conditions.iter().try_for_each(Condition::check)
    }

    /// How many days of purchases up to the day of evaluation it reads.
    pub fn window_days(&self) -> u32 {
        self.conditions
            .iter()
            .map(Condition::window_days)
            .max()
            .unwrap_or(0)
    }

    /// Whether only members who bought something in its window can be in it: then only they
    /// need to be read.
    pub fn needs_purchase(&self) -> bool {
        self.conditions.iter().any(Condition::needs_purchase)
    }

    /// How many days up to the day of evaluation (that day included) its members bought
    /// nothing in (0: no such condition): a member who bought since cannot be in it.
    pub fn quiet_days(&self) -> u32 {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::Dormant { quiet_days, .. } => Some(*quiet_days),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether a member with these days of purchases meets the conditions on purchases: a
    /// member who does not need not be read.
    pub fn bought(&self, days: &[Day], today: NaiveDate) -> bool {
        self.conditions
            .iter()
            .all(|c| c.on_purchases(days, today).unwrap_or(true))
    }

    /// Whether a member with this profile and these days of purchases (at least the last
    /// `window_days`) is in the segment on `today`.
    pub fn holds(&self, profile: &Facets, days: &[Day], today: NaiveDate) -> bool {
        self.conditions
            .iter()
            .all(|c| c.holds(profile, days, today))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::Gender;
    use crate::phone::Phone;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn profile() -> Facets {
        Facets::of(&Profile {
            name: "王芳".into(),
            phone: Phone::parse("13800138001").unwrap(),
            card_no: None,
            birthday: Some(date("1990-12-10")),
            gender: Gender::Female,
            tags: ["咖啡".to_string()].into(),
            notes: String::new(),
            tier: "金卡".into(),
            custom: Default::default(),
            home_store: StoreId::parse("S001").unwrap(),
            join_date: date("2026-01-05"),
            referrer: None,
            marketing_consent: true,
            card_status: Default::default(),
            former_cards: Default::default(),
        })
    }

    fn bought(dates: &[&str]) -> Vec<Day> {
        dates
            .iter()
            .map(|d| Day {
                date: date(d),
                store: StoreId::parse("S002").unwrap(),
                sales: 1,
                spent: 5_000,
            })
            .collect()
    }

    fn segment(conditions: Vec<Condition>) -> Segment {
        Segment {
            id: "S1".into(),
            name: "test".into(),
            conditions,
        }
    }

    #[test]
    fn a_dormant_member_bought_often_enough_and_not_lately() {
        let dormant = segment(vec![Condition::Dormant {
            visits: 2,
            window_days: 180,
            quiet_days: 60,
        }]);
        let today = date("2026-12-05");
        let p = profile();
        assert!(dormant.holds(&p, &bought(&["2026-07-01", "2026-08-01"]), today));
        assert!(!dormant.holds(&p, &bought(&["2026-08-01"]), today));
        assert!(!dormant.holds(&p, &bought(&["2026-07-01", "2026-11-20"]), today));
        // Purchases before the window do not count.
        assert!(!dormant.holds(&p, &bought(&["2026-01-01", "2026-08-01"]), today));
    }

    #[test]
    fn a_birthday_counts_across_the_new_year_and_on_the_day_itself() {
        let p = profile();
        let soon = segment(vec![Condition::Birthday { within_days: 7 }]);
        assert!(soon.holds(&p, &[], date("2026-12-05")));
        assert!(!soon.holds(&p, &[], date("2026-12-01")));
        let today = segment(vec![Condition::Birthday { within_days: 0 }]);
        assert!(today.holds(&p, &[], date("2026-12-10")));
        let mut newyear = profile();
        newyear.birthday = Some(date("1990-01-02"));
        assert!(soon.holds(&newyear, &[], date("2026-12-30")));
        let mut leap = profile();
        leap.birthday = Some(date("1992-02-29"));
        assert!(today.holds(&leap, &[], date("2027-02-28")));
    }

    #[test]
    fn every_condition_must_hold() {
        let p = profile();
        let today = date("2026-12-05");
        let days = bought(&["2026-12-01", "2026-12-02"]);
        let s = |c: Condition| segment(vec![Condition::Consent, c]).holds(&p, &days, today);
        assert!(s(Condition::Tier {
            any: ["金卡".into()].into()
        }));
        assert!(!s(Condition::Tier {
            any: ["银卡".into()].into()
        }));
        assert!(s(Condition::Spend {
            within_days: 30,
            at_least: Fen(10_000),
            at_most: None
        }));
        assert!(!s(Condition::Spend {
            within_days: 30,
            at_least: Fen(10_001),
            at_most: None
        }));
        assert!(s(Condition::Visits {
            within_days: 30,
            at_least: 2,
            at_most: Some(2)
        }));
        assert!(s(Condition::ShoppedAt {
            any: [StoreId::parse("S002").unwrap()].into(),
            within_days: 7
        }));
        assert!(!s(Condition::HomeStore {
            any: [StoreId::parse("S002").unwrap()].into()
        }));
        let mut no = p.clone();
        no.marketing_consent = false;
        assert!(!segment(vec![Condition::Consent]).holds(&no, &days, today));
    }

    #[test]
    fn a_segment_naming_an_unknown_field_is_refused() {
        let bad = r#"{"id":"S1","name":"x","conditions":[{"shoe_size":{"any":["42"]}}]}"#;
        let e = serde_json::from_str::<Segment>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `shoe_size`"), "{e}");
        let bad = r#"{"id":"S1","name":"x","conditions":[{"tier":{"any":["金卡"],"or":1}}]}"#;
        assert!(serde_json::from_str::<Segment>(bad).is_err());
        let ok = r#"{"id":"S1","name":"x","conditions":[{"tier":{"any":["金卡"]}},"consent"]}"#;
        assert!(serde_json::from_str::<Segment>(ok).unwrap().check().is_ok());
    }

    #[test]
    fn a_segment_needs_a_purchase_only_when_a_member_without_one_cannot_meet_it() {
        let p = profile();
        let today = date("2026-12-05");
        let at_most = segment(vec![Condition::Visits {
            within_days: 30,
            at_least: 0,
            at_most: Some(1),
        }]);
        assert!(!at_most.needs_purchase());
        assert!(at_most.holds(&p, &[], today), "no visit is at most one");
        let dormant = segment(vec![Condition::Dormant {
            visits: 1,
            window_days: 90,
            quiet_days: 30,
        }]);
        assert!(dormant.needs_purchase());
        assert!(!dormant.holds(&p, &[], today));
    }

    #[test]
    fn a_dormant_rule_whose_quiet_days_fill_its_window_is_refused() {
        let s = segment(vec![Condition::Dormant {
            visits: 1,
            window_days: 30,
            quiet_days: 30,
        }]);
        assert_eq!(s.check().unwrap_err().field, "dormant");
    }
}
