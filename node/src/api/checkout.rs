//! Item checkout (商品消费) and its preview (结算预览): the basket priced the way the till
//! charges it — the catalogue's prices at this store today, bundles, the member's tier and
//! birthday month, points deduction — every line step by step; then paid by any mix of tenders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::catalogue::Qty;
use protocol::pricing::{Coupon, PricedLine, PricingError};
use protocol::wallet::Summary;
use protocol::{Fen, MemberId, Money, Sku, StaffId};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, Code};
use super::inventory::{LineIn, line};
use super::{
    AppResult, Body, St, TenderOut, check_password, cny_fen, parse_body, request_meta, spend,
    without_password,
};
use crate::journal::{
    Command, ItemCheckoutRequest, Request, TenderRequest, WalletAction, price_basket,
};
use crate::views::ItemSaleView;

pub(super) fn pricing_error(e: &PricingError) -> Code {
    match e {
        PricingError::CouponThreshold { .. } | PricingError::CouponNotApplicable(_) => {
            Code::CouponNotApplicable
        }
        PricingError::InsufficientPoints { .. } => Code::InsufficientBalance,
        PricingError::PointsAboveCap { .. }
        | PricingError::PointsNotAccepted
        | PricingError::PointsNotWhole { .. } => Code::PointsNotAccepted,
        _ => Code::InvalidRequest,
    }
}

fn lines_json(lines: &[PricedLine]) -> Vec<serde_json::Value> {
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

fn resolve(app: &super::AppState, lines: &[LineIn]) -> Result<Vec<(Sku, Qty)>, ApiError> {
    lines.iter().map(|l| line(app, l, false)).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteBody {
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    /// Points the member wants to pay with (积分抵现).
    #[serde(default)]
    points: u64,
    /// A coupon of the member's to apply.
    coupon: Option<String>,
}

/// 结算预览: nothing is written.
pub(super) async fn quote(State(app): St, Body(body): Body) -> AppResult {
    let b: QuoteBody = parse_body(&body)?;
    let member = match b.member_id {
        Some(id) => Some((
            app.views
                .member(&id)?
                .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?,
            app.views.wallet(&id)?,
        )),
        None => None,
    };
    let coupon = b
        .coupon
        .as_deref()
        .map(protocol::wallet::CardId::parse)
        .transpose()
        .map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let (priced, earned) = price_basket(
        app.views.store(),
        &app.settings,
        app.today(),
        member.as_ref().map(|(m, w)| (m, w)),
        (&resolve(&app, &b.lines)?, coupon.as_ref(), b.points),
    )?;
    let earned = earned.0;
    Ok(axum::Json(json!({
        "lines": lines_json(&priced.lines),
        "subtotal": Money::cny(priced.subtotal),
        "discount": Money::cny(priced.discount),
        "due": Money::cny(priced.due),
        "points_used": priced.points_used,
        "points_earned": earned,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum TenderIn {
    Cash { tendered: Money },
    Card { amount: Money, reference: String },
    Wechat { amount: Money, reference: String },
    Alipay { amount: Money, reference: String },
    StoredValue { amount: Money },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemCheckoutBody {
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    #[serde(default)]
    points: u64,
    tenders: Vec<TenderIn>,
    /// Who served the member (for commissions), when not the cashier.
    served_by: Option<StaffId>,
    /// The member's payment password, when stored value pays.
    password: Option<String>,
    /// A coupon of the member's to redeem.
    coupon: Option<String>,
}

/// 商品消费: scan items (by SKU or barcode), price them, take payment in any mix of tenders.
pub(super) async fn item_checkout(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: ItemCheckoutBody = parse_body(&body)?;
    let (key, fingerprint, staff) =
        request_meta(&headers, "item_checkout", &without_password(&body))?;
    let mut tenders = Vec::with_capacity(b.tenders.len());
    for t in &b.tenders {
        tenders.push(match t {
            TenderIn::Cash { tendered } => TenderRequest::Cash {
                tendered: cny_fen(tendered)?,
            },
            TenderIn::Card { amount, reference } => TenderRequest::Card {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::Wechat { amount, reference } => TenderRequest::WeChat {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::Alipay { amount, reference } => TenderRequest::Alipay {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::StoredValue { amount } => TenderRequest::StoredValue {
                amount: cny_fen(amount)?,
            },
        });
    }
    let stored = tenders
        .iter()
        .any(|t| matches!(t, TenderRequest::StoredValue { .. }));
    if let (true, Some(member)) = (stored, b.member_id) {
        check_password(&app, member, b.password).await?;
    }
    let request = Request {
        key,
        fingerprint,
        staff,
        body: ItemCheckoutRequest {
            member_id: b.member_id,
            lines: resolve(&app, &b.lines)?,
            points: b.points,
            tenders,
            served_by: b.served_by,
            coupon: b
                .coupon
                .as_deref()
                .map(protocol::wallet::CardId::parse)
                .transpose()
                .map_err(|e| ApiError::new(Code::InvalidId, e))?,
        },
    };
    let key = request.key.clone();
    let reply = spend(&app, b.member_id, &key, || {
        Command::ItemCheckout(request.clone())
    })
    .await?;
    Ok(super::answer(StatusCode::CREATED, reply))
}

pub(super) fn item_sale_json(view: &ItemSaleView, wallet: Option<&Summary>) -> serde_json::Value {
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
        "member_stored_value": wallet.map(|w| Money::cny(Fen(w.principal.0 + w.bonus.0))),
        "member_points_balance": wallet.map(|w| w.points),
    })
}

/// A coupon's terms as the API takes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum OfferIn {
    /// 满减
    AmountOff { threshold: Money, off: Money },
    /// 折扣券: `percent` off, e.g. "10".
    PercentOff {
        percent: String,
        #[serde(default)]
        threshold: Option<Money>,
        cap: Option<Money>,
    },
    /// 代金券
    Voucher {
        value: Money,
        #[serde(default)]
        threshold: Option<Money>,
    },
    /// 体验券: one unit of a product free.
    Experience { sku: Sku },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CouponBody {
    name: String,
    offer: OfferIn,
    valid_from: chrono::NaiveDate,
    valid_to: chrono::NaiveDate,
}

/// 发券: gives a member a coupon, spent at most once anywhere in the chain.
pub(super) async fn issue_coupon(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = super::member_id(&raw)?;
    let b: CouponBody = parse_body(&body)?;
    let zero = Money::cny(Fen(0));
    let offer = match b.offer {
        OfferIn::AmountOff { threshold, off } => Coupon::AmountOff {
            threshold: cny_fen(&threshold)?,
            off: cny_fen(&off)?,
        },
        OfferIn::PercentOff {
            percent,
            threshold,
            cap,
        } => Coupon::PercentOff {
            percent: percent.parse().map_err(|_| {
                ApiError::new(Code::FieldInvalid, "percent is a number such as \"10\"")
            })?,
            threshold: cny_fen(threshold.as_ref().unwrap_or(&zero))?,
            cap: cap.as_ref().map(cny_fen).transpose()?,
        },
        OfferIn::Voucher { value, threshold } => Coupon::Voucher {
            value: cny_fen(&value)?,
            threshold: cny_fen(threshold.as_ref().unwrap_or(&zero))?,
        },
        OfferIn::Experience { sku } => Coupon::Experience { sku },
    };
    let action = WalletAction::IssueCoupon {
        name: b.name,
        offer,
        from: b.valid_from,
        to: b.valid_to,
    };
    super::wallet_write(&app, &headers, "issue_coupon", &body, id, action).await
}

/// A member's coupons: what each offers, when it is good, whether it is used.
pub(super) async fn list_coupons(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> AppResult {
    let id = super::member_id(&raw)?;
    if app.views.member(&id)?.is_none() {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    let wallet = app.views.wallet(&id)?;
    let today = app.today();
    let coupons: Vec<serde_json::Value> = wallet
        .coupons
        .iter()
        .map(|(coupon, def)| {
            let state = match wallet.usable_coupon(coupon, today) {
                Ok(_) => "usable",
                Err(protocol::wallet::WalletError::CouponUsed(_)) => "used",
                Err(_) => "not_valid_today",
            };
            json!({
                "coupon_id": coupon, "name": def.name, "offer": def.offer,
                "valid_from": def.from, "valid_to": def.to, "issued_at": def.issued_at,
                "state": state,
            })
        })
        .collect();
    Ok(axum::Json(json!({"member_id": id, "coupons": coupons})).into_response())
}
