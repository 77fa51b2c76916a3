//! 结算预览: prices a basket the way the till will charge it — the catalogue's prices at this
//! store today (special, store's own, chain's), bundles, the member's tier and birthday month,
//! points deduction — and shows every line step by step. Nothing is written.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::Datelike;
use protocol::catalogue::{Bundle, Qty};
use protocol::inventory;
use protocol::pricing::{self, BundleOffer, Line, MemberTerms, PricingError};
use protocol::{Fen, MemberId, Money};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, Code};
use super::inventory::{LineIn, line, product};
use super::{AppResult, Body, St, parse_body};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteBody {
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    /// Points the member wants to pay with (积分抵现).
    #[serde(default)]
    points: u64,
}

fn pricing_error(e: PricingError) -> ApiError {
    let code = match &e {
        PricingError::InsufficientPoints { .. } => Code::InsufficientBalance,
        PricingError::PointsAboveCap { .. } | PricingError::PointsNotAccepted => {
            Code::PointsNotAccepted
        }
        _ => Code::InvalidRequest,
    };
    ApiError::new(code, e)
}

fn money(fen: Fen) -> Money {
    Money::cny(fen)
}

pub(super) async fn quote(State(app): St, Body(body): Body) -> AppResult {
    let b: QuoteBody = parse_body(&body)?;
    let today = app.today();
    let here = &app.settings.store_id;
    let kv = app.views.kv();
    let storage = |e: String| ApiError::new(Code::Storage, e);
    let mut lines = Vec::with_capacity(b.lines.len());
    for l in &b.lines {
        let (sku, qty) = line(&app, l, false)?;
        let p = product(&app, &sku)?;
        let store_price: Option<Fen> =
            inventory::read(&kv, &inventory::keys::store_price(here, &sku)).map_err(storage)?;
        let Some(unit_price) = store_price.or(p.price).filter(|_| p.active) else {
            return Err(ApiError::new(
                Code::NotForSale,
                format!("{sku} is not priced or withdrawn"),
            ));
        };
        let special = p
            .special
            .as_ref()
            .filter(|s| s.from <= today && today <= s.to)
            .map(|s| s.price);
        lines.push(Line {
            sku,
            category: p.category.clone(),
            qty,
            unit_price,
            special,
            discountable: p.discountable,
            earns_points: p.earns_points,
        });
    }
    let mut bundles = Vec::new();
    for (key, bytes) in app.views.scan(b"bu/")? {
        let bundle: Bundle = crate::views::decode(&key, &bytes)?;
        if bundle.active {
            bundles.push(BundleOffer {
                id: bundle.id,
                items: bundle.items,
                price: bundle.price,
            });
        }
    }
    let member = match b.member_id {
        Some(id) => {
            let view = app
                .views
                .member(&id)?
                .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?;
            let policy = app.settings.wallet.points;
            Some(MemberTerms {
                tier: Some(view.profile.tier.clone()),
                birthday_month: view
                    .profile
                    .birthday
                    .is_some_and(|d| d.month() == today.month()),
                points: app.views.wallet(&id)?.points_live(today, &policy),
            })
        }
        None => None,
    };
    let priced = pricing::price(
        &lines,
        &bundles,
        member.as_ref(),
        None,
        b.points,
        &app.settings.pricing,
    )
    .map_err(pricing_error)?;
    // Points are earned on what is paid for goods that earn them, by category, on today's rate.
    let mut by_category: BTreeMap<&str, i64> = BTreeMap::new();
    for l in priced.lines.iter().filter(|l| l.earns_points) {
        *by_category.entry(l.category.as_str()).or_default() += l.net.0;
    }
    let earned: i64 = match member {
        Some(_) => by_category
            .iter()
            .map(|(category, fen)| {
                let category = Some(*category).filter(|c| !c.is_empty());
                app.settings.earn.earn(Fen(*fen), category, today).0
            })
            .sum(),
        None => 0,
    };
    let out: Vec<serde_json::Value> = priced
        .lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku,
                "qty": l.qty,
                "unit_price": money(l.unit_price),
                "gross": money(l.gross),
                "steps": l.steps.iter().map(|s| json!({
                    "step": s.step, "off": money(s.off), "rounded": s.rounded, "note": s.note,
                })).collect::<Vec<_>>(),
                "net": money(l.net),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "lines": out,
        "subtotal": money(priced.subtotal),
        "discount": money(priced.discount),
        "due": money(priced.due),
        "points_used": priced.points_used,
        "points_earned": earned,
        "quantity_total": Qty(priced.lines.iter().map(|l| l.qty.0).sum()),
    }))
    .into_response())
}
