//! 会员钱包: the wallet, top-ups, points, cards, refunds and the payment password.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::wallet::{CardId, CardKind};
use protocol::{MemberId, StaffId, TxId};

use super::dto::*;
use super::error::{ApiError, Code, ErrorBody};

use crate::journal::{Command, Request, WalletAction, WalletRequest};
use crate::password::{self, PasswordError};

use super::app::*;
use super::rights::spend;

/// The body with any `password` field taken out, so it never reaches a stored fingerprint.
pub(super) fn without_password(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove("password");
            serde_json::to_vec(&fields).unwrap_or_default()
        }
        _ => body.to_vec(),
    }
}

pub(super) fn password_error(e: PasswordError) -> ApiError {
    let code = match e {
        PasswordError::Format | PasswordError::Wrong { .. } => Code::PasswordWrong,
        PasswordError::Locked => Code::PasswordLocked,
        PasswordError::Damaged => Code::Storage,
    };
    ApiError::new(code, e)
}

/// A member with a payment password must give it to pay from stored value. A wrong one is
/// written to the member's wallet before the answer (so it counts at every store, and after a
/// restart); the try is counted before the slow hash (`password::Tries`).
pub(super) async fn check_password(
    app: &Arc<AppState>,
    member: MemberId,
    staff: &StaffId,
    given: Option<String>,
) -> Result<(), ApiError> {
    // The password and its failures may have been set at another store.
    super::follow::ensure_whole(app, member).await?;
    let wallet = app.views.wallet(&member)?;
    let Some((_, _, phc)) = wallet.password.clone() else {
        return Ok(());
    };
    let now = app.clock.now_ms();
    if wallet.password_locked_until(now).is_some() {
        return Err(password_error(PasswordError::Locked));
    }
    let given = given
        .ok_or_else(|| ApiError::new(Code::PasswordRequired, "this member pays with a password"))?;
    let attempt = app
        .tries
        .take(member, || {
            Ok::<_, ApiError>(app.views.wallet(&member)?.password_failures_at(now))
        })?
        .map_err(password_error)?;
    let right = tokio::task::spawn_blocking(move || password::matches(&given, &phc))
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e))?
        .map_err(password_error)?;
    if right {
        return Ok(());
    }
    // A fresh key: a retried request with the same Idempotency-Key and another guess counts too.
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::new(Code::Unavailable, e))?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let request = Request {
        key: TxId::parse(&format!("pwf-{nonce}")).map_err(|e| ApiError::new(Code::Storage, e))?,
        fingerprint: [0; 32],
        staff: staff.clone(),
        body: WalletRequest {
            member_id: member,
            action: WalletAction::PasswordFailed,
        },
    };
    // Written even if the till goes away meanwhile (a request cancelled mid-write would
    // otherwise leave the guess uncounted).
    let journal = app.journal.clone();
    tokio::spawn(async move { journal.send(Command::Wallet(request)).await })
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e))??;
    drop(attempt);
    let failed = app.views.wallet(&member)?.password_failures_at(now);
    Err(password_error(
        match password::PASSWORD_FAILURES_MAX.saturating_sub(failed) {
            0 => PasswordError::Locked,
            left => PasswordError::Wrong { left },
        },
    ))
}

/// A member's wallet: stored value (principal, bonus), points by lot, cards.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/wallet", params(("member_id" = String, Path)),
    responses((status = 200, body = WalletOut), (status = 404, body = ErrorBody)))]
pub(super) async fn get_wallet(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = member_id(&raw)?;
    if app.views.member(&id)?.is_none() {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    // A member met here for the first time: their history comes from headquarters first (at
    // most a few seconds online); offline the wallet shown says it may be short.
    let whole = match super::follow::ensure_whole(&app, id).await {
        Ok(()) => true,
        Err(e) if e.code == Code::MemberNotHere => false,
        Err(e) => return Err(e),
    };
    let mut out = WalletOut::new(id, app.summary(&id)?, None);
    out.whole = whole;
    Ok(axum::Json(out).into_response())
}

/// Sends one wallet change to the journal.
pub(super) async fn wallet_write(
    app: &AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    member: MemberId,
    action: WalletAction,
) -> AppResult {
    let reply = wallet_reply(app, headers, route, body, member, action).await?;
    Ok(answer(StatusCode::CREATED, reply))
}

/// `wallet_write`'s journal reply, for a handler that answers more than the wallet.
pub(super) async fn wallet_reply(
    app: &AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    member: MemberId,
    action: WalletAction,
) -> Result<crate::journal::Reply, ApiError> {
    if let Some(reason) = &app.sync.borrow().refused {
        return Err(ApiError::new(Code::StoreFenced, reason));
    }
    let (key, fingerprint, staff) = request_meta(
        headers,
        &format!("{route}/{member}"),
        &without_password(body),
    )?;
    let request = Request {
        key,
        fingerprint,
        staff,
        body: WalletRequest {
            member_id: member,
            action,
        },
    };
    // A debit of rights held elsewhere (a refund of what headquarters keeps in reserve, a card
    // use placed at another store) asks headquarters like a payment.
    let key = request.key.clone();
    spend(app, Some(member), &key, || Command::Wallet(request.clone())).await
}

/// Top-up (充值) paid in cash, optionally under a top-up rule that adds bonus.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/top-ups", request_body = TopUpBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn top_up(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: TopUpBody = parse_body(&body)?;
    let action = WalletAction::TopUp {
        paid: money(b.amount)?,
        rule: b.rule,
    };
    wallet_write(&app, &headers, "top_up", &body, id, action).await
}

/// Points awarded or deducted by hand, with a reason.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/points", request_body = PointsBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 422, body = ErrorBody)))]
pub(super) async fn adjust_points(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: PointsBody = parse_body(&body)?;
    let action = WalletAction::AdjustPoints {
        points: b.points,
        reason: b.reason,
    };
    wallet_write(&app, &headers, "adjust_points", &body, id, action).await
}

/// Sells a count card (计次卡) or a period card (期限卡), paid in cash.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/cards", request_body = NewCardBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 422, body = ErrorBody)))]
pub(super) async fn sell_card(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: NewCardBody = parse_body(&body)?;
    let kind = match (b.kind.as_str(), b.uses, b.valid_from) {
        ("count", Some(uses), None) if b.minutes.is_none() => CardKind::Count {
            uses,
            valid_to: b.valid_to,
        },
        ("timed", None, None) if b.minutes.is_some() => CardKind::Timed {
            minutes: b.minutes.unwrap_or_default(),
            valid_to: b.valid_to,
        },
        ("period", None, Some(from)) => CardKind::Period {
            from,
            to: b
                .valid_to
                .ok_or_else(|| ApiError::new(Code::FieldInvalid, "a period card needs valid_to"))?,
        },
        _ => {
            return Err(ApiError::new(
                Code::FieldInvalid,
                "kind is \"count\" with uses, \"timed\" with minutes, or \"period\" with \
                 valid_from and valid_to",
            ));
        }
    };
    let action = WalletAction::SellCard {
        name: b.name,
        kind,
        price: money(b.price)?,
    };
    wallet_write(&app, &headers, "sell_card", &body, id, action).await
}

/// Uses a count card (takes uses) or checks in with a period card.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/cards/{card_id}/uses", request_body = CardUseBody,
    params(("member_id" = String, Path), ("card_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn use_card(
    State(app): St,
    Path((raw, card)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let card = CardId::parse(&card).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let b: CardUseBody = parse_body(&body)?;
    let action = WalletAction::UseCard {
        card: card.clone(),
        uses: b.uses.unwrap_or(1),
    };
    wallet_write(
        &app,
        &headers,
        &format!("use_card/{card}"),
        &body,
        id,
        action,
    )
    .await
}

/// Pays stored value back in cash: principal only.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/refunds", request_body = RefundBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 422, body = ErrorBody)))]
pub(super) async fn refund(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: RefundBody = parse_body(&body)?;
    let action = WalletAction::Refund {
        principal: money(b.amount)?,
        reason: b.reason,
    };
    wallet_write(&app, &headers, "refund", &body, id, action).await
}

/// Sets the member's payment password; replacing one needs a manager.
#[utoipa::path(put, path = "/api/v1/members/{member_id}/password", request_body = PasswordBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header), ("X-Staff-Id" = Option<String>, Header)),
    responses((status = 201, body = WalletOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn set_password(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: PasswordBody = parse_body(&body)?;
    password::check_format(&b.password)
        .map_err(|e| ApiError::new(Code::FieldInvalid, e).on("password"))?;
    let (_, _, staff) = request_meta(&headers, "", &[])?;
    let replacing = app.views.wallet(&id)?.password.is_some();
    if replacing && !is_manager(&app, &staff) {
        return Err(ApiError::new(
            Code::ManagerRequired,
            format!("{staff} is not a manager: only a manager resets a payment password"),
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::new(Code::Unavailable, e))?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&b.password, salt))
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e))?
        .map_err(|e| ApiError::new(Code::FieldInvalid, e))?;
    let action = WalletAction::SetPassword { hash };
    let answer = wallet_write(&app, &headers, "set_password", &body, id, action).await?;
    Ok(answer)
}

/// 计时开始: starts a timed card's clock (计时卡: play, parking).
#[utoipa::path(post, path = "/api/v1/members/{member_id}/cards/{card_id}/clock-in",
    params(("member_id" = String, Path), ("card_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn clock_in(
    State(app): St,
    Path((raw, card)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let card = CardId::parse(&card).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let route = format!("clock_in/{card}");
    let action = WalletAction::ClockIn { card };
    wallet_write(&app, &headers, &route, &body, id, action).await
}

/// 计时结束: stops a timed card's clock; the minutes since it started, charged by the chain's
/// card rules (free minutes, steps; before any are published, rounded up to the store's
/// `timed_round_minutes`), come off the card, and `clock_out` says how many and how many more
/// it lacked (`overtime`, for the cashier to charge).
#[utoipa::path(post, path = "/api/v1/members/{member_id}/cards/{card_id}/clock-out",
    params(("member_id" = String, Path), ("card_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn clock_out(
    State(app): St,
    Path((raw, card)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let card = CardId::parse(&card).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let route = format!("clock_out/{card}");
    let action = WalletAction::ClockOut { card };
    let answer = wallet_write(&app, &headers, &route, &body, id, action).await?;
    let (parts, bytes) = answer.into_parts();
    let mut out: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(bytes, BODY_BYTES_MAX)
            .await
            .map_err(|e| ApiError::new(Code::Storage, e))?,
    )
    .map_err(|e| ApiError::new(Code::Storage, e))?;
    // What the clock came to, as the entry this request wrote says (a retry reads the same).
    let here = &app.settings.store_id;
    if let Some(seq) = out["seq"].as_u64()
        && let Some(bytes) = app.views.log_entry(here, seq)?
        && let Ok(entry) = protocol::Entry::decode(&bytes)
        && let protocol::entry::Payload::Wallet {
            event:
                protocol::wallet::WalletEvent::ClockedOut {
                    minutes, charged, ..
                },
            ..
        } = entry.payload
    {
        out["clock_out"] = serde_json::json!({
            "minutes": minutes, "charged": charged, "overtime": minutes - charged,
        });
    }
    Ok((parts.status, axum::Json(out)).into_response())
}
