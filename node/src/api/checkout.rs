//! Item checkout (商品消费) and its preview (结算预览): the basket priced the way the till
//! charges it — the catalogue's prices at this store today, bundles, the member's tier and
//! birthday month, points deduction — every line step by step; then paid by any mix of tenders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::catalogue::Qty;
use protocol::pricing::{self, PricedLine, PricingError};
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
    Command, ItemCheckoutRequest, Request, TenderRequest, basket, bundles, member_terms,
    points_earned,
};
use crate::views::ItemSaleView;

pub(super) fn pricing_error(e: &PricingError) -> Code {
    match e {
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
}

/// 结算预览: nothing is written.
pub(super) async fn quote(State(app): St, Body(body): Body) -> AppResult {
    let b: QuoteBody = parse_body(&body)?;
    let today = app.today();
    let here = &app.settings.store_id;
    let lines = basket(&app.views.kv(), here, today, &resolve(&app, &b.lines)?)?;
    let offers = bundles(app.views.store())?;
    let terms = match b.member_id {
        Some(id) => {
            let view = app
                .views
                .member(&id)?
                .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?;
            let wallet = app.views.wallet(&id)?;
            Some(member_terms(
                &view,
                &wallet,
                today,
                &app.settings.wallet.points,
            ))
        }
        None => None,
    };
    let priced = pricing::price(
        &lines,
        &offers,
        terms.as_ref(),
        None,
        b.points,
        &app.settings.pricing,
    )
    .map_err(|e| ApiError::new(pricing_error(&e), e))?;
    let earned = match terms {
        Some(_) => points_earned(&priced.lines, &app.settings.earn, today).0,
        None => 0,
    };
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
