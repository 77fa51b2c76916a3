//! Request and response bodies of the cashier API, with their OpenAPI schemas. Fields that need
//! a specific error code (phone, money) arrive raw and are parsed by the handler.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use protocol::member::Gender;
use protocol::{Money, points::Points, sale::Tender};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::views::{MemberView, SaleView};

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
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    pub referrer: Option<String>,
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
    #[serde(default)]
    pub custom_set: BTreeMap<String, String>,
    #[serde(default)]
    pub custom_remove: Vec<String>,
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
            points: points.0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenderOut {
    /// "cash"
    pub kind: &'static str,
    #[schema(value_type = MoneySchema)]
    pub tendered: Money,
    #[schema(value_type = MoneySchema)]
    pub change: Money,
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
    pub member_points_balance: Option<i64>,
}

impl SaleOut {
    pub fn new(view: SaleView, member_points: Option<Points>) -> Self {
        let sale = view.sale;
        let tenders = match sale.tender {
            Tender::Cash { tendered, change } => {
                vec![TenderOut {
                    kind: "cash",
                    tendered: Money::cny(tendered),
                    change: Money::cny(change),
                }]
            }
        };
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
            member_points_balance: member_points.map(|p| p.0),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SaleListOut {
    pub member_id: String,
    /// Newest first.
    pub sales: Vec<SaleOut>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthOut {
    pub store_id: String,
    pub store_name: String,
    /// Entries in this store's log.
    pub log_entries: u64,
    pub version: &'static str,
}
