//! The pricing pipeline (价格计算): from the products in a basket to what the member pays, line by
//! line, in an order the chain configures. The default order is special price (特价) → bundle
//! (套餐) → tier discount (会员折扣) → birthday-month discount (生日折扣) → coupon (优惠券) →
//! points deduction (积分抵现). Every step that changes a line is recorded on it with the amount
//! it took off and how that amount was rounded, so every fen of a sale can be explained.
//!
//! Rounding: a line's gross (unit price × quantity) and every percentage are rounded per line
//! with the chain's rule (`Rounding`, default half away from zero); a fixed amount shared over
//! several lines (a bundle's saving, a coupon, points) is split exactly, in proportion to the
//! lines' amounts at that point, the leftover fen going to the largest remainders (ties to the
//! earlier line). Lines of products that do not accept discounts get no tier, birthday or
//! coupon step; special prices, bundles and points deduction apply to every line.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalogue::Qty;
use crate::ids::Sku;
use crate::money::{Fen, Rounding};

/// The most lines one basket may have.
pub const LINES_MAX: usize = 200;
/// The most coupons one sale redeems (多券同用: a booklet's coupons on one basket).
pub const COUPONS_MAX: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Special,
    Bundle,
    Tier,
    Birthday,
    Coupon,
    Points,
    /// 改价: the till set the line's amount below its price. Always first, and never in the
    /// chain's order: a line whose amount was set takes no other step but points.
    Override,
}

pub const DEFAULT_ORDER: [Step; 6] = [
    Step::Special,
    Step::Bundle,
    Step::Tier,
    Step::Birthday,
    Step::Coupon,
    Step::Points,
];

/// A basket line as the till resolved it from the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: Sku,
    pub category: String,
    pub qty: Qty,
    /// The store's regular unit price (its own, else the chain's).
    pub unit_price: Fen,
    /// The special unit price in force today, if any.
    pub special: Option<Fen>,
    pub discountable: bool,
    pub earns_points: bool,
    /// The line's amount as the till set it: 改价 (at most the price) or, for a product the
    /// catalogue sells at an open price (金额商品, no price), what it costs.
    pub set_amount: Option<Fen>,
}

/// A bundle (套餐): these quantities together at `price`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleOffer {
    pub id: Sku,
    pub items: Vec<(Sku, Qty)>,
    pub price: Fen,
}

/// A coupon being redeemed (its validity and single use are the wallet's business).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coupon {
    /// 满减: `off` once the discountable amount reaches `threshold`.
    AmountOff { threshold: Fen, off: Fen },
    /// 折扣券: `percent` off the discountable amount (10 is 10% off), at most `cap`.
    PercentOff {
        percent: Decimal,
        threshold: Fen,
        cap: Option<Fen>,
    },
    /// 代金券: worth `value` against discountable goods, from `threshold`.
    Voucher { value: Fen, threshold: Fen },
    /// 体验券: one unit of `sku` free.
    Experience { sku: Sku },
}

impl Coupon {
    /// Refuses an offer no till could honour: nothing off, more off than the spend it needs
    /// (满5减10 would make a 6.00 basket free: a coupon with no threshold is a 代金券), a
    /// percentage outside (0, 100], a negative cap, an amount over a million yuan.
    pub fn check(&self) -> Result<(), String> {
        let fen_ok = |f: &Fen| (0..=OFFER_FEN_MAX).contains(&f.0);
        let amounts = "amounts are 0 to 1,000,000.00 yuan";
        match self {
            Coupon::AmountOff { threshold, off } => {
                if !fen_ok(threshold) || !fen_ok(off) {
                    return Err(amounts.into());
                }
                if off.0 <= 0 || off.0 >= threshold.0 {
                    return Err(format!(
                        "满减 takes off more than 0 and less than its threshold ({threshold}): {off}"
                    ));
                }
            }
            Coupon::PercentOff {
                percent,
                threshold,
                cap,
            } => {
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    return Err(format!(
                        "折扣券 percent is over 0 and at most 100: {percent}"
                    ));
                }
                if !fen_ok(threshold) || cap.as_ref().is_some_and(|c| !fen_ok(c)) {
                    return Err(format!("{amounts}; a cap is not negative"));
                }
            }
            Coupon::Voucher { value, threshold } => {
                if !fen_ok(value) || !fen_ok(threshold) || value.0 <= 0 {
                    return Err(format!("代金券 value is over 0; {amounts}"));
                }
            }
            Coupon::Experience { .. } => {}
        }
        Ok(())
    }
}

/// The most a coupon takes off or asks for, in fen (a million yuan).
pub const OFFER_FEN_MAX: i64 = 100_000_000;

/// The goods a coupon applies to (适用商品): products by SKU and whole categories. Empty: every
/// line that accepts discounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponScope {
    #[serde(default)]
    pub skus: std::collections::BTreeSet<Sku>,
    #[serde(default)]
    pub categories: std::collections::BTreeSet<String>,
}

impl CouponScope {
    pub fn is_empty(&self) -> bool {
        self.skus.is_empty() && self.categories.is_empty()
    }

    /// Whether a line of `sku` in `category` is one the coupon applies to.
    pub fn covers(&self, sku: &Sku, category: &str) -> bool {
        self.is_empty() || self.skus.contains(sku) || self.categories.contains(category)
    }
}

/// A coupon as a sale redeems it: its offer, the goods it applies to, and whether it stacks
/// with member discounts (`None`: the chain's rule).
#[derive(Debug, Clone, Copy)]
pub struct Redeemed<'a> {
    pub offer: &'a Coupon,
    pub scope: &'a CouponScope,
    pub stacks: Option<bool>,
}

/// What the chain decides about discounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingRules {
    pub order: Vec<Step>,
    /// Percent off by member tier, e.g. 金卡 → 10.
    pub tier_percent_off: BTreeMap<String, Decimal>,
    /// Percent off in the member's birthday month (0: none).
    pub birthday_percent_off: Decimal,
    /// Points that make one yuan off (积分抵现; 0: points cannot pay).
    pub points_per_yuan: u64,
    /// The most of a sale points may pay, in percent of what is due before them.
    pub points_cap_percent: Decimal,
    pub rounding: Rounding,
    /// Stacking (叠加): whether a coupon may be used together with the member's tier and
    /// birthday discounts. When not, a sale with a coupon gets no tier or birthday step (优惠券
    /// 不与会员折扣同享). A sale may redeem several coupons (多券同用, at most
    /// [`COUPONS_MAX`]), each applied in turn in the coupon step.
    #[serde(default = "stacks")]
    pub coupon_stacks_with_member_discounts: bool,
}

fn stacks() -> bool {
    true
}

impl PricingRules {
    /// Each step named at most once, every percentage between 0 and 100.
    pub fn check(&self) -> Result<(), PricingError> {
        let mut order = self.order.clone();
        order.sort();
        order.dedup();
        if order.len() != self.order.len() || order.contains(&Step::Override) {
            return Err(PricingError::Order);
        }
        if !percent_ok(self.birthday_percent_off)
            || !percent_ok(self.points_cap_percent)
            || !self.tier_percent_off.values().all(|p| percent_ok(*p))
        {
            return Err(PricingError::Percent);
        }
        Ok(())
    }
}

impl Default for PricingRules {
    fn default() -> Self {
        Self {
            order: DEFAULT_ORDER.to_vec(),
            tier_percent_off: BTreeMap::new(),
            birthday_percent_off: Decimal::ZERO,
            points_per_yuan: 100,
            points_cap_percent: Decimal::from(50),
            rounding: Rounding::default(),
            coupon_stacks_with_member_discounts: true,
        }
    }
}

/// The member at the till, as pricing needs them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberTerms {
    pub tier: Option<String>,
    pub birthday_month: bool,
    /// Live points the member holds.
    pub points: u64,
}

/// How a step's amount on a line was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounded {
    /// A percentage of the line, rounded with this rule.
    Percent(Rounding),
    /// A fixed amount shared over lines exactly (largest remainder).
    Shared,
    /// A price difference in whole fen, rounded with this rule for weights.
    Price(Rounding),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineStep {
    pub step: Step,
    pub off: Fen,
    pub rounded: Rounded,
    /// What it was: "特价 7.99", "套餐 B1 ×2", "会员 金卡 10%", "满100减20", "积分 500".
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: Sku,
    pub category: String,
    pub qty: Qty,
    pub unit_price: Fen,
    /// Unit price × quantity, before any step.
    pub gross: Fen,
    pub steps: Vec<LineStep>,
    /// What is paid for the line: gross − Σ steps.
    pub net: Fen,
    pub discountable: bool,
    pub earns_points: bool,
}

impl PricedLine {
    pub fn off(&self, step: Step) -> Fen {
        Fen(self
            .steps
            .iter()
            .filter(|s| s.step == step)
            .map(|s| s.off.0)
            .sum())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    /// Σ gross.
    pub subtotal: Fen,
    /// Σ of every step on every line.
    pub discount: Fen,
    /// Σ net: what the tenders must add up to.
    pub due: Fen,
    pub points_used: u64,
    /// What each coupon redeemed took off, in the order they were given.
    #[serde(default)]
    pub coupon_offs: Vec<Fen>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("a basket needs 1 to {LINES_MAX} lines of positive quantities")]
    Lines,
    #[error("prices and quantities out of range")]
    Range,
    #[error("{sku}: an amount set at the till ({amount}) may not be above the price ({price})")]
    SetAbovePrice { sku: Sku, amount: Fen, price: Fen },
    #[error("the pricing order must name each step at most once, and not the till's 改价")]
    Order,
    #[error("a percentage must be between 0 and 100")]
    Percent,
    #[error("the coupon needs {threshold} of discountable goods, the basket has {eligible}")]
    CouponThreshold { threshold: Fen, eligible: Fen },
    #[error("the coupon does not apply to this basket: {0}")]
    CouponNotApplicable(String),
    #[error("a sale redeems at most {COUPONS_MAX} coupons, each once")]
    Coupons,
    #[error("this chain does not take points as payment")]
    PointsNotAccepted,
    #[error("the member has {available} points, {wanted} wanted")]
    InsufficientPoints { available: u64, wanted: u64 },
    #[error("at most {max} points may pay for this sale")]
    PointsAboveCap { max: u64 },
    #[error("points are used in steps of {step} (whole fen)")]
    PointsNotWhole { step: u64 },
}

/// Splits `total` over `weights` exactly, in proportion; leftover fen to the largest
/// remainders, ties to the earlier index. Each share is at most its weight when
/// `total ≤ Σ weights`.
pub fn share(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if sum == 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let exact = i128::from(total) * i128::from((*w).max(0));
        let floor = exact / sum;
        shares.push(floor);
        remainders.push((exact % sum, i));
        given += floor;
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = i128::from(total) - given;
    for (_, i) in remainders
        .into_iter()
        .take(usize::try_from(left).unwrap_or(0))
    {
        shares[i] += 1;
    }
    shares
        .into_iter()
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
        .collect()
}

fn fen_of(value: Decimal, rounding: Rounding) -> i64 {
    i64::try_from(rounding.round(value, 0)).unwrap_or(i64::MAX)
}

fn percent_ok(p: Decimal) -> bool {
    p >= Decimal::ZERO && p <= Decimal::ONE_HUNDRED
}

fn yuan(fen: i64) -> String {
    Fen(fen).to_string()
}

struct Working {
    lines: Vec<PricedLine>,
    rounding: Rounding,
    /// Each line's amount was set at the till (金额商品: it takes no discount).
    set: Vec<bool>,
    /// Each line's net when the coupon step began (a 体验券 gives a unit at that price).
    before_coupons: Option<Vec<i64>>,
    /// Units of each line a 体验券 gave free already (thousandths, as `Qty`).
    free: Vec<i64>,
}

impl Working {
    fn take(&mut self, i: usize, step: Step, off: i64, rounded: Rounded, note: &str) {
        if off <= 0 {
            return;
        }
        let line = &mut self.lines[i];
        let off = off.min(line.net.0);
        line.net = Fen(line.net.0 - off);
        line.steps.push(LineStep {
            step,
            off: Fen(off),
            rounded,
            note: note.to_owned(),
        });
    }

    /// Shares `total` over the lines `which` selects, by their net now.
    fn take_shared(
        &mut self,
        which: impl Fn(&PricedLine) -> bool,
        step: Step,
        total: i64,
        note: &str,
    ) {
        let picked: Vec<usize> = (0..self.lines.len())
            .filter(|i| which(&self.lines[*i]))
            .collect();
        let weights: Vec<i64> = picked.iter().map(|i| self.lines[*i].net.0).collect();
        for (i, off) in picked.iter().zip(share(total, &weights)) {
            self.take(*i, step, off, Rounded::Shared, note);
        }
    }

    fn percent(&mut self, step: Step, percent: Decimal, note: &str) {
        for i in 0..self.lines.len() {
            if !self.lines[i].discountable {
                continue;
            }
            let net = Decimal::from(self.lines[i].net.0);
            let off = fen_of(net * percent / Decimal::ONE_HUNDRED, self.rounding);
            self.take(i, step, off, Rounded::Percent(self.rounding), note);
        }
    }

    fn due(&self) -> i64 {
        self.lines.iter().map(|l| l.net.0).sum()
    }
}

/// Prices a basket. Nothing here reads a clock or the catalogue: the till passes the special
/// prices in force, the member's terms and the coupon it is redeeming.
pub fn price(
    lines: &[Line],
    bundles: &[BundleOffer],
    member: Option<&MemberTerms>,
    coupon: Option<&Coupon>,
    points: u64,
    rules: &PricingRules,
) -> Result<Priced, PricingError> {
    let everything = CouponScope::default();
    let coupons: Vec<Redeemed<'_>> = coupon
        .map(|offer| Redeemed {
            offer,
            scope: &everything,
            stacks: None,
        })
        .into_iter()
        .collect();
    price_redeeming(lines, bundles, member, &coupons, points, rules)
}

/// `price`, with coupons that may apply to some goods only and carry their own stacking rule
/// (a campaign's coupon, `crate::campaign`), applied one after the other in the coupon step,
/// each to what the ones before it left.
pub fn price_redeeming(
    lines: &[Line],
    bundles: &[BundleOffer],
    member: Option<&MemberTerms>,
    coupons: &[Redeemed<'_>],
    points: u64,
    rules: &PricingRules,
) -> Result<Priced, PricingError> {
    if lines.is_empty() || lines.len() > LINES_MAX || lines.iter().any(|l| l.qty.0 <= 0) {
        return Err(PricingError::Lines);
    }
    if coupons.len() > COUPONS_MAX {
        return Err(PricingError::Coupons);
    }
    rules.check()?;
    let in_range = |f: Fen| (0..=crate::catalogue::PRICE_FEN_MAX).contains(&f.0);
    if lines.iter().any(|l| {
        !in_range(l.unit_price)
            || l.special.is_some_and(|s| !in_range(s))
            || l.set_amount.is_some_and(|a| !in_range(a))
            || l.qty > crate::catalogue::QTY_MAX
    }) {
        return Err(PricingError::Range);
    }
    let rounding = rules.rounding;
    let times = |unit: Fen, qty: Qty| {
        fen_of(
            Decimal::from(unit.0) * Decimal::from(qty.0) / Decimal::ONE_THOUSAND,
            rounding,
        )
    };
    let mut w = Working {
        rounding,
        set: lines.iter().map(|l| l.set_amount.is_some()).collect(),
        before_coupons: None,
        free: vec![0; lines.len()],
        lines: lines
            .iter()
            .map(|l| {
                // An open-price line (no price) costs what the till set.
                let gross = match l.set_amount {
                    Some(amount) if l.unit_price.0 == 0 => amount,
                    _ => Fen(times(l.unit_price, l.qty)),
                };
                PricedLine {
                    sku: l.sku.clone(),
                    category: l.category.clone(),
                    qty: l.qty,
                    unit_price: l.unit_price,
                    gross,
                    steps: Vec::new(),
                    net: gross,
                    discountable: l.discountable && l.set_amount.is_none(),
                    earns_points: l.earns_points,
                }
            })
            .collect(),
    };
    for (i, l) in lines.iter().enumerate() {
        if let Some(amount) = l.set_amount {
            let gross = w.lines[i].gross;
            if amount > gross {
                return Err(PricingError::SetAbovePrice {
                    sku: l.sku.clone(),
                    amount,
                    price: gross,
                });
            }
            let note = format!("改价 {amount}");
            w.take(
                i,
                Step::Override,
                gross.0 - amount.0,
                Rounded::Price(rounding),
                &note,
            );
        }
    }
    let mut points_used = 0;
    let member_discounts = coupons.iter().all(|c| {
        c.stacks
            .unwrap_or(rules.coupon_stacks_with_member_discounts)
    });
    let mut coupon_offs = Vec::with_capacity(coupons.len());
    for step in &rules.order {
        match step {
            Step::Special => {
                for (i, l) in lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.set_amount.is_none())
                {
                    if let Some(special) = l.special.filter(|s| *s < l.unit_price) {
                        let off = w.lines[i].gross.0 - times(special, l.qty);
                        let note = format!("特价 {special}");
                        w.take(i, Step::Special, off, Rounded::Price(rounding), &note);
                    }
                }
            }
            Step::Bundle => apply_bundles(&mut w, lines, bundles),
            Step::Override => {}
            Step::Tier | Step::Birthday if !member_discounts => {}
            Step::Tier => {
                let tier = member.and_then(|m| m.tier.as_ref());
                if let Some((tier, p)) =
                    tier.and_then(|t| rules.tier_percent_off.get(t).map(|p| (t, *p)))
                {
                    w.percent(Step::Tier, p, &format!("会员 {tier} {p}%"));
                }
            }
            Step::Birthday => {
                let p = rules.birthday_percent_off;
                if member.is_some_and(|m| m.birthday_month) && p > Decimal::ZERO {
                    w.percent(Step::Birthday, p, &format!("生日月 {p}%"));
                }
            }
            Step::Coupon => {
                w.before_coupons = Some(w.lines.iter().map(|l| l.net.0).collect());
                for (n, coupon) in coupons.iter().enumerate() {
                    let before = w.due();
                    apply_coupon(&mut w, *coupon, n > 0)?;
                    coupon_offs.push(Fen(before - w.due()));
                }
            }
            Step::Points => {
                if points > 0 {
                    points_used = apply_points(&mut w, points, member, rules)?;
                }
            }
        }
    }
    if !coupons.is_empty() && !rules.order.contains(&Step::Coupon) {
        return Err(PricingError::CouponNotApplicable(
            "this chain's pricing has no coupon step".into(),
        ));
    }
    if points > 0 && !rules.order.contains(&Step::Points) {
        return Err(PricingError::PointsNotAccepted);
    }
    let subtotal = Fen(w.lines.iter().map(|l| l.gross.0).sum());
    let due = Fen(w.due());
    Ok(Priced {
        subtotal,
        discount: Fen(subtotal.0 - due.0),
        due,
        points_used,
        lines: w.lines,
        coupon_offs,
    })
}

/// Each bundle in turn, as many whole times as the basket holds its items; its saving over
/// the items' amounts now is shared over the lines that make it up.
fn apply_bundles(w: &mut Working, lines: &[Line], bundles: &[BundleOffer]) {
    // Units of each line not yet used by a bundle (none of a line whose amount was set).
    let mut free: Vec<i64> = lines
        .iter()
        .map(|l| if l.set_amount.is_some() { 0 } else { l.qty.0 })
        .collect();
    for bundle in bundles {
        if bundle.items.is_empty() || bundle.items.iter().any(|(_, q)| q.0 <= 0) {
            continue;
        }
        let mut parts = Vec::new();
        for (sku, need) in &bundle.items {
            match w.lines.iter().position(|l| l.sku == *sku) {
                Some(i) => parts.push((i, need.0)),
                None => break,
            }
        }
        if parts.len() != bundle.items.len() {
            continue;
        }
        let times = parts
            .iter()
            .map(|(i, need)| free[*i] / need)
            .min()
            .unwrap_or(0);
        if times <= 0 {
            continue;
        }
        // What the bundled units cost now, line by line.
        let worth: Vec<i64> = parts
            .iter()
            .map(|(i, need)| {
                let l = &w.lines[*i];
                let units = i128::from(need * times);
                i64::try_from(i128::from(l.net.0) * units / i128::from(l.qty.0)).unwrap_or(0)
            })
            .collect();
        let saving = worth.iter().sum::<i64>() - bundle.price.0 * times;
        if saving <= 0 {
            continue;
        }
        let note = format!("套餐 {} ×{times}", bundle.id);
        for ((i, _), off) in parts.iter().zip(share(saving, &worth)) {
            w.take(*i, Step::Bundle, off, Rounded::Shared, &note);
        }
        for (i, need) in &parts {
            free[*i] -= need * times;
        }
    }
}

/// One coupon (`after_others`: not the sale's first) on what the steps before it left.
fn apply_coupon(
    w: &mut Working,
    coupon: Redeemed<'_>,
    after_others: bool,
) -> Result<(), PricingError> {
    let scope = coupon.scope;
    let discountable = |l: &PricedLine| l.discountable && scope.covers(&l.sku, &l.category);
    let eligible: i64 = w
        .lines
        .iter()
        .filter(|l| discountable(l))
        .map(|l| l.net.0)
        .sum();
    let covered: Vec<usize> = (0..w.lines.len())
        .filter(|i| scope.covers(&w.lines[*i].sku, &w.lines[*i].category))
        .collect();
    let not_applicable = |why: &str| Err(PricingError::CouponNotApplicable(why.into()));
    if eligible == 0 && !matches!(coupon.offer, Coupon::Experience { .. }) {
        // The coupons before it took all its goods had to give: it would be spent for nothing.
        if after_others && covered.iter().any(|i| w.lines[*i].discountable) {
            return not_applicable("the coupons before it left nothing of its goods to take off");
        }
        // Goods of its scope only at amounts set at the till (金额商品, which take no discount):
        // redeemed for nothing off, as the quote shows. Only goods that take no discount at
        // all (or none of its goods) cannot redeem it.
        if !scope.is_empty() && !covered.iter().any(|i| w.set[*i]) {
            return not_applicable(
                "nothing in the basket is among the goods the coupon applies to",
            );
        }
    }
    let threshold_met = |threshold: Fen| {
        if eligible < threshold.0 {
            Err(PricingError::CouponThreshold {
                threshold,
                eligible: Fen(eligible),
            })
        } else {
            Ok(())
        }
    };
    match coupon.offer {
        Coupon::AmountOff { threshold, off } => {
            threshold_met(*threshold)?;
            let note = format!("满{}减{}", yuan(threshold.0), yuan(off.0));
            w.take_shared(discountable, Step::Coupon, off.0.min(eligible), &note);
        }
        Coupon::PercentOff {
            percent,
            threshold,
            cap,
        } => {
            if !percent_ok(*percent) {
                return Err(PricingError::Percent);
            }
            threshold_met(*threshold)?;
            let mut off = fen_of(
                Decimal::from(eligible) * percent / Decimal::ONE_HUNDRED,
                w.rounding,
            );
            if let Some(cap) = cap {
                off = off.min(cap.0);
            }
            let note = format!("折扣券 {percent}%");
            w.take_shared(discountable, Step::Coupon, off, &note);
        }
        Coupon::Voucher { value, threshold } => {
            threshold_met(*threshold)?;
            let note = format!("代金券 {}", yuan(value.0));
            w.take_shared(discountable, Step::Coupon, value.0.min(eligible), &note);
        }
        Coupon::Experience { sku } => {
            // A unit not given free yet, at its price when the coupon step began (two such
            // coupons on two units give both, each at the same price).
            let Some(i) = (0..w.lines.len()).find(|i| {
                let l = &w.lines[*i];
                l.sku == *sku && l.discountable && l.qty.0 - w.free[*i] >= 1000
            }) else {
                return Err(PricingError::CouponNotApplicable(format!(
                    "no whole unit of {sku} that accepts discounts"
                )));
            };
            w.free[i] += 1000;
            let l = &w.lines[i];
            let net = w.before_coupons.as_ref().map_or(l.net.0, |b| b[i]);
            let one = i64::try_from(i128::from(net) * 1000 / i128::from(l.qty.0)).unwrap_or(0);
            w.take(
                i,
                Step::Coupon,
                one,
                Rounded::Shared,
                &format!("体验券 {sku}"),
            );
        }
    }
    Ok(())
}

fn apply_points(
    w: &mut Working,
    points: u64,
    member: Option<&MemberTerms>,
    rules: &PricingRules,
) -> Result<u64, PricingError> {
    let rate = rules.points_per_yuan;
    if rate == 0 {
        return Err(PricingError::PointsNotAccepted);
    }
    let available = member.map_or(0, |m| m.points);
    if points > available {
        return Err(PricingError::InsufficientPoints {
            available,
            wanted: points,
        });
    }
    // One fen of points is rate/100 points; amounts must come out in whole fen.
    let step = rate / gcd(rate, 100);
    if !points.is_multiple_of(step) {
        return Err(PricingError::PointsNotWhole { step });
    }
    let fen = i64::try_from(u128::from(points) * 100 / u128::from(rate)).unwrap_or(i64::MAX);
    let cap = fen_of(
        Decimal::from(w.due()) * rules.points_cap_percent / Decimal::ONE_HUNDRED,
        Rounding::TowardZero,
    );
    if fen > cap {
        let max = u64::try_from(cap).unwrap_or(0) * rate / 100;
        return Err(PricingError::PointsAboveCap {
            max: max - max % step,
        });
    }
    w.take_shared(|_| true, Step::Points, fen, &format!("积分 {points}"));
    Ok(points)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

mod offer;
pub use offer::OfferForm;

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests;
