//! 交班 at the till: the cashier's shift so far (what they took and paid back by tender, the
//! cash the drawer should hold) and its close with the cash counted (`journal::shift`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::shift::Shift;
use protocol::{Currency, Fen, Money, Rounding};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::app::{AppResult, Body, St, answer, money, parse_body, request_meta, staff_of};
use super::error::{ApiError, Code};
use crate::journal::{Command, Request};

/// The most yuan a drawer is counted at (beyond it is a typo, not cash).
const COUNTED_MAX_FEN: i64 = 100_000_000;

fn shift_json(shift: &Shift) -> serde_json::Value {
    let yuan = |fen: i64| Money::cny(Fen(fen));
    json!({
        "opened_seq": shift.opened_seq,
        "opened_ms": shift.opened_ms,
        "sales": shift.sales,
        "sales_amount": yuan(shift.sales_amount),
        "returns": shift.returns,
        "returned": yuan(shift.returned),
        "top_ups": yuan(shift.top_ups),
        "cards_sold": yuan(shift.cards_sold),
        "refunded_cash": yuan(shift.refunded_cash),
        "tenders": shift.tenders.iter().map(|(kind, t)| {
            // Foreign cash is in hundredths of its own currency; the rest in fen.
            let shown = |v: i64| match kind.strip_prefix("foreign_cash:") {
                Some(code) => {
                    json!({"amount": rust_decimal::Decimal::new(v, 2).to_string(), "currency": code})
                }
                None => json!(yuan(v)),
            };
            json!({"kind": kind, "taken": shown(t.taken), "times": t.times,
                   "paid_back": shown(t.paid_back), "refunds": t.refunds})
        }).collect::<Vec<_>>(),
        "cash_expected": yuan(shift.cash_expected),
    })
}

pub(super) fn closed_json(shift: &Shift, counted: Fen) -> serde_json::Value {
    json!({
        "shift": shift_json(shift),
        "counted": Money::cny(counted),
        "difference": Money::cny(Fen(counted.0 - shift.cash_expected)),
    })
}

/// The shift of whoever asks (their session, or `X-Staff-Id` at a till without logins): what
/// they took and paid back since their last close, by tender, and the cash expected.
#[utoipa::path(get, path = "/api/v1/shift", params(("X-Staff-Id" = Option<String>, Header)),
    responses((status = 200, body = Object)))]
pub(super) async fn current(State(app): St, headers: HeaderMap) -> AppResult {
    let staff = staff_of(&headers)?;
    let shift = protocol::shift::open(&app.views.kv(), &staff)
        .map_err(|e| ApiError::new(Code::Storage, e))?;
    Ok(axum::Json(json!({
        "staff": staff,
        "open": shift.is_some(),
        "shift": shift_json(&shift.unwrap_or_default()),
    }))
    .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CloseBody {
    /// The yuan counted in the drawer beyond its float.
    #[schema(value_type = super::dto::MoneySchema)]
    counted: serde_json::Value,
}

/// 交班: closes the shift of whoever asks, with the cash counted; the totals, the count and the
/// difference are kept in the store's log (an audit note headquarters sees).
#[utoipa::path(post, path = "/api/v1/shift/close", request_body = CloseBody,
    params(("Idempotency-Key" = String, Header), ("X-Staff-Id" = Option<String>, Header)),
    responses((status = 201, body = Object), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn close(State(app): St, headers: HeaderMap, Body(body): Body) -> AppResult {
    let (key, fingerprint, staff) = request_meta(&headers, "close_shift", &body)?;
    let b: CloseBody = parse_body(&body)?;
    let counted = money(b.counted).map_err(|e| e.on("counted"))?;
    let fen = Fen::from_decimal(counted.amount, Rounding::TowardZero)
        .ok()
        .filter(|f| {
            counted.currency == Currency::CNY
                && f.to_decimal() == counted.amount
                && (0..=COUNTED_MAX_FEN).contains(&f.0)
        })
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidAmount,
                "the cash counted: yuan from 0 to 1,000,000 with at most two decimals",
            )
            .on("counted")
        })?;
    let reply = app
        .journal
        .send(Command::CloseShift(Request {
            key,
            fingerprint,
            staff,
            body: fen,
        }))
        .await?;
    Ok(answer(StatusCode::CREATED, reply))
}
