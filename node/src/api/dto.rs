//! Request and response bodies of the cashier API, with their OpenAPI schemas. Fields that need
//! a specific error code (phone, money) arrive raw and are parsed by the handler.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use protocol::member::Gender;
use protocol::sale::{PayWith, Tender};
use protocol::wallet::{CardKind, Summary};
use protocol::{Fen, MemberId, Money, points::Points};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use protocol::pricing::PricedLine;
use serde_json::json;

use crate::views::{ItemSaleView, MemberView, SaleView};

/// Lets a PATCH tell "leave alone" (absent) from "clear" (null).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An amount of money. `amount` is a string with at most two decimals; JSON numbers are refused.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"amount": "88.80", "currency": "CNY"}))]
pub struct MoneySchema {
    pub amount: String,
    /// ISO 4217 code; CNY when omitted.
    pub currency: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberBody {
    #[schema(example = "张三")]
    pub name: String,
    /// Mainland mobile (11 digits) or '+' and country code.
    #[schema(example = "13812341234")]
    pub phone: String,
    #[schema(value_type = Option<String>)]
    pub card_no: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birthday: Option<NaiveDate>,
    #[schema(value_type = Option<String>, example = "female")]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub notes: String,
    pub tier: Option<String>,
    /// Why a tier other than the chain's first is given (required with one; up to 200
    /// characters).
    pub tier_reason: Option<String>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    pub referrer: Option<String>,
    /// 推荐码 of the member who referred them (instead of `referrer`'s id).
    pub referral_code: Option<String>,
    /// 营销同意: the member agreed to marketing messages (false unless they said so).
    #[serde(default)]
    pub marketing_consent: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MemberPatchBody {
    pub name: Option<String>,
    pub phone: Option<String>,
    /// null removes the card number.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub card_no: Option<Option<String>>,
    /// null removes the birthday.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    pub birthday: Option<Option<NaiveDate>>,
    #[schema(value_type = Option<String>)]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub tags_add: Vec<String>,
    #[serde(default)]
    pub tags_remove: Vec<String>,
    pub notes: Option<String>,
    pub tier: Option<String>,
    /// Why the tier is changed by hand (required with a change of tier; up to 200 characters).
    pub tier_reason: Option<String>,
    #[serde(default)]
    pub custom_set: BTreeMap<String, String>,
    #[serde(default)]
    pub custom_remove: Vec<String>,
    /// 营销同意 given (true) or withdrawn (false).
    pub marketing_consent: Option<bool>,
    /// 补填推荐人: the referral code of the member who referred this one, set once where
    /// there is none (not the member themselves, not one they referred, directly or not).
    pub referral_code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickCheckoutBody {
    /// The member, if recognised; anonymous sales earn no points.
    pub member_id: Option<String>,
    #[schema(value_type = MoneySchema)]
    pub amount: serde_json::Value,
    /// A category for reports, e.g. "饮品".
    pub category: Option<String>,
    /// Cash handed over; exact change when omitted.
    #[schema(value_type = Option<MoneySchema>)]
    pub cash_tendered: Option<serde_json::Value>,
    /// "cash" (default) or "stored_value" (储值支付).
    #[schema(value_type = Option<String>, example = "stored_value")]
    pub pay_with: Option<PayWith>,
    /// The member's six-digit payment password, when one is set and paying from stored value.
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnBody {
    #[schema(example = "质量问题")]
    pub reason: String,
    /// An item sale's lines to take back (partial quantities allowed); omitted, everything left
    /// of the sale. A quick sale is always returned whole.
    #[serde(default)]
    pub lines: Option<Vec<ReturnLineBody>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLineBody {
    /// The line's position on the sale (0 is the first).
    pub line: u16,
    /// How much of it comes back, a decimal string ("1", "0.5").
    #[schema(value_type = String, example = "1")]
    pub qty: protocol::catalogue::Qty,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// What the member pays (becomes principal, 本金).
    #[schema(value_type = MoneySchema)]
    pub amount: serde_json::Value,
    /// A top-up rule of the chain, e.g. "充500送100"; its bonus (赠送金) is added.
    pub rule: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsBody {
    /// Positive to award, negative to deduct.
    pub points: i64,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCardBody {
    #[schema(example = "洗车10次卡")]
    pub name: String,
    /// "count" (计次卡), "period" (期限卡) or "timed" (计时卡).
    #[schema(example = "count")]
    pub kind: String,
    /// Uses on a count card.
    pub uses: Option<u32>,
    /// Minutes on a timed card.
    pub minutes: Option<u32>,
    /// First day of a period card.
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<NaiveDate>,
    /// Last day of a period card, or of a count card's validity.
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<NaiveDate>,
    #[schema(value_type = MoneySchema)]
    pub price: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardUseBody {
    /// Uses to take from a count card (default 1); ignored for a period card check-in.
    pub uses: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Principal to pay back in cash; bonus is never refunded.
    #[schema(value_type = MoneySchema)]
    pub amount: serde_json::Value,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// Six digits. Setting one where one exists needs a manager (X-Staff-Id in `managers`).
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct StoredValueOut {
    #[schema(value_type = MoneySchema)]
    pub total: Money,
    /// 本金: paid by the member, refundable.
    #[schema(value_type = MoneySchema)]
    pub principal: Money,
    /// 赠送金: given, never refunded.
    #[schema(value_type = MoneySchema)]
    pub bonus: Money,
    /// What this store can take without asking headquarters (also offline).
    #[schema(value_type = MoneySchema)]
    pub spendable_here: Money,
}

#[derive(Serialize, ToSchema)]
pub struct PointsLotOut {
    pub year: i32,
    #[schema(value_type = Option<String>, format = Date)]
    pub expires_after: Option<NaiveDate>,
    pub points: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PointsOut {
    pub balance: u64,
    pub spendable_here: u64,
    pub lots: Vec<PointsLotOut>,
}

#[derive(Serialize, ToSchema)]
pub struct CardOut {
    pub card_id: String,
    pub name: String,
    /// "count", "period" or "timed" (计时卡: `uses_left` are minutes)
    pub kind: &'static str,
    pub uses_left: Option<u64>,
    pub uses_spendable_here: Option<u64>,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<NaiveDate>,
    pub usable_today: bool,
    pub visits: u64,
    #[schema(value_type = MoneySchema)]
    pub price: Money,
    pub sold_at: String,
    /// A timed card's clock, when it runs: when it started (ms since the epoch).
    pub clocked_in_ms: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct WalletOut {
    pub member_id: String,
    pub stored_value: StoredValueOut,
    pub points: PointsOut,
    pub cards: Vec<CardOut>,
    pub password_set: bool,
    /// Offline overdrafts not yet paid off (any store).
    #[schema(value_type = MoneySchema)]
    pub owed: Money,
    /// The log entry written by this request (absent on reads).
    pub seq: Option<u64>,
    /// Whether this store holds every change to the wallet headquarters holds; false while it
    /// first meets a member (their history is on its way, or headquarters is not reachable):
    /// balances shown may then be short.
    pub whole: bool,
}

impl WalletOut {
    pub fn new(member: MemberId, w: Summary, seq: Option<u64>) -> Self {
        let cards = w
            .cards
            .into_iter()
            .map(|c| {
                let (kind, from, to) = match c.card_info.kind {
                    CardKind::Count { valid_to, .. } => ("count", None, valid_to),
                    CardKind::Period { from, to } => ("period", Some(from), Some(to)),
                    CardKind::Timed { valid_to, .. } => ("timed", None, valid_to),
                };
                CardOut {
                    card_id: c.card.to_string(),
                    name: c.card_info.name,
                    kind,
                    uses_left: c.uses_left.map(|u| u.0),
                    uses_spendable_here: c.uses_left.map(|u| u.1),
                    valid_from: from,
                    valid_to: to,
                    usable_today: c.usable_today,
                    visits: c.card_info.visits,
                    price: Money::cny(c.card_info.price),
                    sold_at: c.card_info.sold_at.to_string(),
                    clocked_in_ms: c.card_info.clocked_in.map(|(at, _)| at.wall_ms),
                }
            })
            .collect();
        Self {
            member_id: member.to_string(),
            stored_value: StoredValueOut {
                total: Money::cny(Fen(w.principal.0 + w.bonus.0)),
                principal: Money::cny(w.principal),
                bonus: Money::cny(w.bonus),
                spendable_here: Money::cny(w.held_here),
            },
            points: PointsOut {
                balance: w.points,
                spendable_here: w.points_held_here,
                lots: w
                    .lots
                    .into_iter()
                    .map(|(year, expires_after, points)| PointsLotOut {
                        year,
                        expires_after,
                        points,
                    })
                    .collect(),
            },
            cards,
            password_set: w.password_set,
            owed: Money::cny(w.owed),
            seq,
            whole: true,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    pub member_id: String,
    pub name: String,
    pub phone: String,
    /// 138****1234, for lists and receipts.
    pub phone_masked: String,
    pub card_no: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birthday: Option<NaiveDate>,
    #[schema(value_type = String)]
    pub gender: Gender,
    pub tags: Vec<String>,
    pub notes: String,
    pub tier: String,
    pub custom: BTreeMap<String, String>,
    pub home_store: String,
    #[schema(value_type = String, format = Date)]
    pub join_date: NaiveDate,
    pub referrer: Option<String>,
    /// 推荐码: what a new member gives to be linked to this one (printed on receipts).
    pub referral_code: String,
    pub marketing_consent: bool,
    /// `active`, `lost` (挂失) or `closed` (退卡).
    pub card_status: String,
    /// Card numbers this member held before (补卡).
    pub former_cards: Vec<String>,
    /// Points balance (积分).
    pub points: i64,
}

impl MemberOut {
    pub fn new(view: MemberView, points: Points) -> Self {
        let p = view.profile;
        Self {
            member_id: view.member_id.to_string(),
            name: p.name,
            phone_masked: p.phone.masked(),
            phone: p.phone.to_string(),
            card_no: p.card_no.map(|c| c.to_string()),
            birthday: p.birthday,
            gender: p.gender,
            tags: p.tags.into_iter().collect(),
            notes: p.notes,
            tier: p.tier,
            custom: p.custom,
            home_store: p.home_store.to_string(),
            join_date: p.join_date,
            referrer: p.referrer.map(|r| r.to_string()),
            referral_code: protocol::referral::code(&view.member_id),
            marketing_consent: p.marketing_consent,
            card_status: p.card_status.as_str().to_owned(),
            former_cards: p.former_cards.iter().map(ToString::to_string).collect(),
            points: points.0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenderOut {
    /// "cash", "stored_value", "card", "wechat" or "alipay"
    pub kind: &'static str,
    /// What this tender paid toward the sale.
    #[schema(value_type = MoneySchema)]
    pub amount: Money,
    #[schema(value_type = MoneySchema)]
    pub tendered: Money,
    #[schema(value_type = MoneySchema)]
    pub change: Money,
    /// Of a stored-value payment: principal and bonus taken.
    #[schema(value_type = Option<MoneySchema>)]
    pub principal: Option<Money>,
    #[schema(value_type = Option<MoneySchema>)]
    pub bonus: Option<Money>,
    /// Owed by the member: an offline overdraft this store allowed (离线透支).
    #[schema(value_type = Option<MoneySchema>)]
    pub overdraft: Option<Money>,
    /// The card terminal's or the payment app's transaction reference.
    pub reference: Option<String>,
    /// Of foreign cash: what was handed over in its currency, and the rate (yuan per unit).
    #[schema(value_type = Option<MoneySchema>)]
    pub foreign: Option<Money>,
    pub rate: Option<String>,
}

impl From<&Tender> for TenderOut {
    fn from(t: &Tender) -> Self {
        let plain = |kind, amount: Fen, reference: Option<&String>| TenderOut {
            kind,
            amount: Money::cny(amount),
            tendered: Money::cny(amount),
            change: Money::cny(Fen(0)),
            principal: None,
            bonus: None,
            overdraft: None,
            reference: reference.cloned(),
            foreign: None,
            rate: None,
        };
        match t {
            Tender::Cash { tendered, change } => TenderOut {
                tendered: Money::cny(*tendered),
                change: Money::cny(*change),
                ..plain(t.kind(), t.amount(), None)
            },
            Tender::StoredValue {
                principal,
                bonus,
                overdraft,
            } => TenderOut {
                principal: Some(Money::cny(*principal)),
                bonus: Some(Money::cny(*bonus)),
                overdraft: (overdraft.0 > 0).then(|| Money::cny(*overdraft)),
                ..plain(t.kind(), t.amount(), None)
            },
            Tender::Card { amount, reference } => plain(t.kind(), *amount, Some(reference)),
            Tender::WeChat { amount, reference } => plain(t.kind(), *amount, Some(reference)),
            Tender::Alipay { amount, reference } => plain(t.kind(), *amount, Some(reference)),
            Tender::ForeignCash {
                currency,
                amount,
                rate,
                value,
                change,
            } => TenderOut {
                tendered: Money::cny(*value),
                change: Money::cny(*change),
                foreign: Some(Money::new(
                    rust_decimal::Decimal::new(*amount, 2),
                    *currency,
                )),
                rate: Some(rate.to_string()),
                ..plain(t.kind(), t.amount(), None)
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SaleOut {
    pub sale_id: String,
    pub store_id: String,
    /// Position of the sale's entry in the store's log.
    pub seq: u64,
    #[schema(value_type = String, format = Date)]
    pub business_date: NaiveDate,
    /// When the sale was recorded, milliseconds since the epoch (UTC).
    pub recorded_at_ms: u64,
    pub staff_id: String,
    pub member_id: Option<String>,
    pub category: Option<String>,
    #[schema(value_type = MoneySchema)]
    pub amount: Money,
    pub tenders: Vec<TenderOut>,
    pub points_earned: i64,
    /// The member's points balance right after this sale (only in the checkout answer).
    pub member_points_balance: Option<u64>,
    /// The member's stored value right after this sale (only in the checkout answer).
    #[schema(value_type = Option<MoneySchema>)]
    pub member_stored_value: Option<Money>,
    /// The seq of the entry that returned this sale, if it was returned.
    pub returned_by: Option<u64>,
}

impl SaleOut {
    pub fn new(view: SaleView, wallet: Option<&Summary>) -> Self {
        let sale = view.sale;
        let tenders = vec![TenderOut::from(&sale.tender)];
        Self {
            sale_id: sale.sale_id.to_string(),
            store_id: view.origin.to_string(),
            seq: view.seq,
            business_date: view.business_date,
            recorded_at_ms: view.hlc.wall_ms,
            staff_id: view.staff.to_string(),
            member_id: sale.member_id.map(|m| m.to_string()),
            category: sale.category,
            amount: Money::new(sale.amount.to_decimal(), sale.currency),
            tenders,
            points_earned: sale.points_earned.0,
            member_points_balance: wallet.map(|w| w.points),
            member_stored_value: wallet.map(|w| Money::cny(Fen(w.principal.0 + w.bonus.0))),
            returned_by: view.returned_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SaleListOut {
    pub member_id: String,
    /// Newest first: quick sales (as `SaleOut`) and item sales (lines, tenders, returns).
    #[schema(value_type = Vec<Object>)]
    pub sales: Vec<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthOut {
    pub store_id: String,
    pub store_name: String,
    /// Entries in this store's log.
    pub log_entries: u64,
    pub version: &'static str,
    /// Whether a call without a login goes through now (the demo's mode, before anyone here
    /// has a login): the page says so.
    pub open_without_login: bool,
}

pub(crate) fn lines_json(lines: &[PricedLine]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku,
                "qty": l.qty,
                "unit_price": Money::cny(l.unit_price),
                "gross": Money::cny(l.gross),
                "steps": l.steps.iter().map(|s| json!({
                    "step": s.step, "off": Money::cny(s.off), "rounded": s.rounded, "note": s.note,
                })).collect::<Vec<_>>(),
                "net": Money::cny(l.net),
            })
        })
        .collect()
}

pub(crate) fn item_sale_json(view: &ItemSaleView, wallet: Option<&Summary>) -> serde_json::Value {
    let s = &view.sale;
    json!({
        "sale_id": s.sale_id,
        "store_id": view.origin,
        "seq": view.seq,
        "business_date": view.business_date,
        "recorded_at_ms": view.hlc.wall_ms,
        "staff_id": view.staff,
        "served_by": s.served_by,
        "member_id": s.member_id,
        "lines": lines_json(&s.lines),
        "subtotal": Money::cny(s.subtotal),
        "discount": Money::cny(s.discount),
        "due": Money::cny(s.due),
        "tenders": s.tenders.iter().map(TenderOut::from).collect::<Vec<_>>(),
        "points_used": s.points_used,
        "points_earned": s.points_earned.0,
        // The coupons it redeemed: its one, or the several redeemed together (多券同用).
        "coupons": s.coupon.iter().chain(&view.coupons).collect::<Vec<_>>(),
        "returned": view.returned.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "returns": view.returns.iter().map(|r| json!({
            "store_id": r.origin,
            "seq": r.seq,
            "business_date": r.business_date,
            "recorded_at_ms": r.hlc.wall_ms,
            "staff_id": r.staff,
            "lines": r.ret.lines.iter().map(|l| json!({
                "line": l.line, "sku": l.sku, "qty": l.qty, "amount": Money::cny(l.amount),
            })).collect::<Vec<_>>(),
            "amount": Money::cny(r.ret.amount),
            "refunds": r.ret.refunds.iter().map(TenderOut::from).collect::<Vec<_>>(),
            "points_back": r.ret.points_back,
            "points_taken": r.ret.points_taken,
            "coupon_back": r.ret.coupon_back,
            "reason": r.ret.reason,
        })).collect::<Vec<_>>(),
        "member_stored_value": wallet.map(|w| Money::cny(Fen(w.principal.0 + w.bonus.0))),
        "member_points_balance": wallet.map(|w| w.points),
    })
}

/// A held order as it was parked.
pub(crate) fn held_plain(h: &crate::journal::HeldView) -> serde_json::Value {
    json!({
        "order_id": h.order_id,
        "member_id": h.order.member_id,
        "lines": h.order.lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
            .collect::<Vec<_>>(),
        "points": h.order.points,
        "coupon": h.order.coupons.first(),
        "coupons": h.order.coupons.iter().skip(1).collect::<Vec<_>>(),
        "served_by": h.order.served_by,
        "note": h.order.note,
        "held_by": h.held_by,
        "held_at_ms": h.held_at_ms,
    })
}
