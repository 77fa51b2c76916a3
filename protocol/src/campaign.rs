//! 营销: what headquarters sets up to bring members back — coupon templates (券模板), segments
//! (人群, `crate::segment`) and campaigns (营销活动) — as it writes them in its log
//! (`Payload::Marketing`), the coupons a campaign issues, and the views every replica keeps of
//! them (`crate::project::marketing`).
//!
//! A campaign's coupon is named after (campaign, run, member) (`coupon_id`): issuing it twice —
//! a run repeated, a crash midway and a rerun — finds the coupon already in the member's wallet
//! and gives nothing. Headquarters writes it with its one-use right moved at once to the
//! member's home store (`Change::Transfer`), so it is redeemable there offline and anywhere else
//! through the rights bank like every other right.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, SaleId};
use crate::pricing::{Coupon, CouponScope};
use crate::segment::Segment;

pub const ID_CHARS_MAX: usize = 32;
pub const NAME_CHARS_MAX: usize = 64;
pub const MESSAGE_CHARS_MAX: usize = 500;
/// SKUs and categories one template may name.
pub const SCOPE_MAX: usize = 5_000;
/// The most coupons one template may issue in all.
pub const QUOTA_MAX: u64 = 100_000_000;
/// The most coupons of one template a member may hold.
pub const PER_MEMBER_MAX: u32 = 100;
/// The longest a coupon is good for, from its issue or between fixed dates.
pub const VALID_DAYS_MAX: i64 = 3_660;
/// The most a published template, segment or campaign may take encoded. Each coupon's entry
/// copies its template's scope, so both stay well under [`crate::entry::ENTRY_BYTES_MAX`].
pub const CHANGE_BYTES_MAX: usize = 24 * 1024;

/// Why a template, segment or campaign is refused; `field` names what to mend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MarketingError {
    pub field: String,
    pub problem: String,
}

impl MarketingError {
    pub fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Checks an id typed by headquarters: 1 to 32 letters, digits, '-' or '_'.
pub fn check_id(field: &str, id: &str) -> Result<(), MarketingError> {
    let ok = (1..=ID_CHARS_MAX).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match ok {
        true => Ok(()),
        false => Err(MarketingError::new(
            field,
            format!("1 to {ID_CHARS_MAX} letters, digits, '-' or '_'"),
        )),
    }
}

/// Checks a name or message: not blank, at most `max` characters.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), MarketingError> {
    let n = text.trim().chars().count();
    if n == 0 || n > max {
        return Err(MarketingError::new(field, format!("1 to {max} characters")));
    }
    Ok(())
}

/// When a template's coupons are good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Validity {
    /// Between two dates, both included (固定日期).
    Dates { from: NaiveDate, to: NaiveDate },
    /// For `days` days from the day it is issued, that day included (领取后N天有效).
    Days { days: u32 },
}

impl Validity {
    /// The first and last day a coupon issued on `issued` is good.
    pub fn period(&self, issued: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Validity::Dates { from, to } => (*from, *to),
            Validity::Days { days } => {
                let last = issued + chrono::TimeDelta::days(i64::from(*days).max(1) - 1);
                (issued, last)
            }
        }
    }

    fn check(&self) -> Result<(), MarketingError> {
        let days = match self {
            Validity::Dates { from, to } => (*to - *from).num_days() + 1,
            Validity::Days { days } => i64::from(*days),
        };
        if !(1..=VALID_DAYS_MAX).contains(&days) {
            return Err(MarketingError::new(
                "validity",
                format!("good for 1 to {VALID_DAYS_MAX} days, the last day not before the first"),
            ));
        }
        Ok(())
    }
}

/// 券模板: what a campaign's coupons offer, on which goods, for how long, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    pub id: String,
    pub name: String,
    pub offer: Coupon,
    pub validity: Validity,
    #[serde(default)]
    pub scope: CouponScope,
    /// Coupons of this template in all (发行量); `None`: no limit.
    #[serde(default)]
    pub quota: Option<u64>,
    /// The most coupons of this template one member may hold, used or not (每人限领).
    pub per_member: u32,
    /// Whether its coupons stack with member (tier, birthday) discounts; `None`: the chain's
    /// pricing rule.
    #[serde(default)]
    pub stacks: Option<bool>,
    /// A withdrawn template issues no more coupons; those issued stay good.
    #[serde(default)]
    pub withdrawn: bool,
}

impl CouponTemplate {
    pub fn check(&self) -> Result<(), MarketingError> {
        check_id("id", &self.id)?;
        check_text("name", &self.name, NAME_CHARS_MAX)?;
        self.offer
            .check()
            .map_err(|e| MarketingError::new("offer", e))?;
        self.validity.check()?;
        if self.scope.skus.len() + self.scope.categories.len() > SCOPE_MAX {
            return Err(MarketingError::new(
                "scope",
                format!("at most {SCOPE_MAX} SKUs and categories"),
            ));
        }
        if self.scope.categories.iter().any(|c| c.trim().is_empty()) {
            return Err(MarketingError::new("scope", "a category is blank"));
        }
        if self.quota.is_some_and(|q| !(1..=QUOTA_MAX).contains(&q)) {
            return Err(MarketingError::new(
                "quota",
                format!("1 to {QUOTA_MAX}, or none for no limit"),
            ));
        }
        if !(1..=PER_MEMBER_MAX).contains(&self.per_member) {
            return Err(MarketingError::new(
                "per_member",
                format!("1 to {PER_MEMBER_MAX}"),
            ));
        }
        Ok(())
    }
}

/// How often a campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Once, when headquarters runs it.
    Once,
    /// Every day (the daily birthday run), over the segment as it stands that day.
    Daily,
}

/// 营销活动: a template's coupon issued to a segment, with a message to the members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub template: String,
    pub segment: String,
    pub schedule: Schedule,
    /// What the member is told, with `{name}`, `{coupon}` and `{valid_to}` filled in.
    #[serde(default)]
    pub message: String,
    /// A withdrawn campaign runs no more.
    #[serde(default)]
    pub withdrawn: bool,
}

impl Campaign {
    pub fn check(&self) -> Result<(), MarketingError> {
        check_id("id", &self.id)?;
        check_text("name", &self.name, NAME_CHARS_MAX)?;
        check_id("template", &self.template)?;
        check_id("segment", &self.segment)?;
        if self.message.chars().count() > MESSAGE_CHARS_MAX {
            return Err(MarketingError::new(
                "message",
                format!("at most {MESSAGE_CHARS_MAX} characters"),
            ));
        }
        Ok(())
    }

    /// The name of a run on `date`: the one run of a campaign run once, the date of a daily one.
    pub fn run_on(&self, date: NaiveDate) -> String {
        match self.schedule {
            Schedule::Once => "once".into(),
            Schedule::Daily => date.to_string(),
        }
    }
}

/// What one run of a campaign did: recorded in headquarters' log after its coupons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub campaign: String,
    pub run: String,
    /// Members in the segment when it ran.
    pub targeted: u64,
    /// Coupons issued by this run (those an earlier try of the same run issued not counted).
    pub issued: u64,
    /// Members who already had this run's coupon (an earlier try issued it).
    pub already: u64,
    /// Members at the template's per-member limit.
    pub over_limit: u64,
    /// Members left without a coupon because the template's quota ran out.
    pub over_quota: u64,
}

impl Run {
    /// Adds what a later part of the same run did.
    pub fn add(&mut self, part: &Run) {
        self.targeted += part.targeted;
        self.issued += part.issued;
        self.already += part.already;
        self.over_limit += part.over_limit;
        self.over_quota += part.over_quota;
    }
}

/// A change headquarters makes to its marketing, as one entry of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketingChange {
    Template(CouponTemplate),
    Segment(Segment),
    Campaign(Campaign),
    Run(Run),
}

impl MarketingChange {
    /// Checks a template, segment or campaign as published: its own rules, then its size.
    /// A run is recorded by running the campaign, never published.
    pub fn check(&self) -> Result<(), MarketingError> {
        match self {
            MarketingChange::Template(t) => t.check()?,
            MarketingChange::Segment(s) => s.check()?,
            MarketingChange::Campaign(c) => c.check()?,
            MarketingChange::Run(_) => {
                return Err(MarketingError::new(
                    "change",
                    "a run is recorded by running the campaign",
                ));
            }
        }
        let bytes = postcard::to_stdvec(self).map_or(usize::MAX, |b| b.len());
        if bytes > CHANGE_BYTES_MAX {
            return Err(MarketingError::new(
                "size",
                format!(
                    "{bytes} bytes encoded, at most {CHANGE_BYTES_MAX}: name fewer goods, categories or values"
                ),
            ));
        }
        Ok(())
    }
}

/// How many hex digits of the hash a campaign coupon's id ends with.
const COUPON_HEX: usize = 24;

/// The hash of (campaign, run, member) a campaign coupon's id ends with.
fn coupon_hex(campaign: &str, run: &str, member: &MemberId) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [campaign, run, &member.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..COUPON_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The coupon a run of a campaign gives a member, `cp-<campaign>-<hash>`: the same parts always
/// name the same coupon, so issuing it again finds it held, and the coupon names its campaign
/// ([`coupon_campaign`]) without an index to look it up in.
pub fn coupon_id(campaign: &str, run: &str, member: &MemberId) -> SaleId {
    let hex = coupon_hex(campaign, run, member);
    SaleId::parse(&format!("cp-{campaign}-{hex}")).expect("a campaign coupon id is well formed")
}

/// The `n`th coupon (from 1) a run gives a member when it gives several (券包): the first is
/// [`coupon_id`]'s, so a run of one coupon names it as before.
pub fn booklet_coupon_id(campaign: &str, run: &str, n: u32, member: &MemberId) -> SaleId {
    match n {
        0 | 1 => coupon_id(campaign, run, member),
        n => coupon_id(campaign, &format!("{run}#{n}"), member),
    }
}

/// The name [`booklet_coupon_id`] gave before coupons named their campaign (`cp-<hash>`): a
/// run begun then and run again gives nobody that coupon twice.
pub fn legacy_booklet_coupon_id(campaign: &str, run: &str, n: u32, member: &MemberId) -> SaleId {
    let run = match n {
        0 | 1 => run.to_owned(),
        n => format!("{run}#{n}"),
    };
    let hex = coupon_hex(campaign, &run, member);
    SaleId::parse(&format!("cp-{hex}")).expect("a campaign coupon id is well formed")
}

/// The campaign a coupon's id names: `None` for a coupon a store issued, and for a campaign's
/// coupon named before coupons named their campaign (the marketing views keep theirs).
pub fn coupon_campaign(coupon: &str) -> Option<&str> {
    let (campaign, hex) = coupon.strip_prefix("cp-")?.rsplit_once('-')?;
    let named = !campaign.is_empty()
        && hex.len() == COUPON_HEX
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    named.then_some(campaign)
}

/// Fills a message's `{name}`, `{coupon}` and `{valid_to}`.
pub fn fill(message: &str, name: &str, coupon: &str, valid_to: NaiveDate) -> String {
    message
        .replace("{name}", name)
        .replace("{coupon}", coupon)
        .replace("{valid_to}", &valid_to.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;
    use rust_decimal::Decimal;

    fn template(offer: Coupon) -> CouponTemplate {
        CouponTemplate {
            id: "T1".into(),
            name: "满100减20".into(),
            offer,
            validity: Validity::Days { days: 30 },
            scope: CouponScope::default(),
            quota: Some(1000),
            per_member: 1,
            stacks: None,
            withdrawn: false,
        }
    }

    fn field(t: &CouponTemplate) -> String {
        t.check().map_or_else(|e| e.field, |()| "ok".into())
    }

    #[test]
    fn a_template_with_an_impossible_discount_is_refused() {
        let percent = |p: i64, cap: Option<i64>| Coupon::PercentOff {
            percent: Decimal::from(p),
            threshold: Fen(0),
            cap: cap.map(Fen),
        };
        assert_eq!(field(&template(percent(120, None))), "offer");
        assert_eq!(field(&template(percent(-5, None))), "offer");
        assert_eq!(field(&template(percent(0, None))), "offer");
        assert_eq!(field(&template(percent(10, Some(-1)))), "offer");
        assert_eq!(field(&template(percent(10, Some(500)))), "ok");
        let off = |threshold: i64, off: i64| Coupon::AmountOff {
            threshold: Fen(threshold),
            off: Fen(off),
        };
        assert_eq!(field(&template(off(500, 1000))), "offer");
        assert_eq!(field(&template(off(10_000, -100))), "offer");
        assert_eq!(field(&template(off(10_000, 2_000))), "ok");
    }

    #[test]
    fn a_template_without_limits_or_with_an_empty_period_is_refused() {
        let ok = template(Coupon::Voucher {
            value: Fen(500),
            threshold: Fen(0),
        });
        let mut t = ok.clone();
        t.per_member = 0;
        assert_eq!(field(&t), "per_member");
        let mut t = ok.clone();
        t.quota = Some(0);
        assert_eq!(field(&t), "quota");
        let mut t = ok.clone();
        t.validity = Validity::Dates {
            from: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        };
        assert_eq!(field(&t), "validity");
        let mut t = ok;
        t.id = "no spaces".into();
        assert_eq!(field(&t), "id");
    }

    #[test]
    fn a_coupon_good_for_n_days_counts_its_issue_day() {
        let issued = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let (from, to) = Validity::Days { days: 7 }.period(issued);
        assert_eq!((from, to.to_string().as_str()), (issued, "2026-12-11"));
    }

    #[test]
    fn a_runs_coupon_for_a_member_is_always_the_same_and_differs_by_run() {
        let m = MemberId::mint(1_000, 1);
        assert_eq!(coupon_id("C1", "once", &m), coupon_id("C1", "once", &m));
        assert_ne!(
            coupon_id("C1", "2026-12-05", &m),
            coupon_id("C1", "2026-12-06", &m)
        );
        assert_ne!(
            coupon_id("C1", "once", &m),
            coupon_id("C1", "once", &MemberId::mint(1_000, 2))
        );
    }

    #[test]
    fn a_campaign_coupon_names_its_campaign_and_no_other_coupon_does() {
        let m = MemberId::mint(1_000, 1);
        let longest = "C".repeat(ID_CHARS_MAX);
        for campaign in ["C1", "cj-18_a", longest.as_str()] {
            let coupon = booklet_coupon_id(campaign, "once", 3, &m);
            assert_eq!(coupon_campaign(coupon.as_str()), Some(campaign));
        }
        let legacy = legacy_booklet_coupon_id("C1", "once", 1, &m);
        assert_eq!(legacy.as_str().len(), 3 + COUPON_HEX);
        for other in [
            legacy.as_str(),
            "S001-00000012",
            "cp-00000012",
            "cp-S1-00000012",
            "cp--0a",
        ] {
            assert_eq!(coupon_campaign(other), None, "{other}");
        }
    }
}
