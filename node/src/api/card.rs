//! 会员卡: a card reported lost (挂失), found again (解挂), replaced by a new number (补卡), and
//! the membership closed with what it holds paid back (退卡).
//!
//! Reporting a card lost is any cashier's (the member calls, or stands at the counter); finding
//! it again, reissuing it and closing the membership are a store manager's, after the member
//! proves who they are: their payment password, or an identity document the manager saw.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::MemberId;
use protocol::audit::IdentityCheck;
use protocol::wallet::Closing;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::app::*;
use super::dto::*;
use super::error::{ApiError, Code, ErrorBody};
use super::wallet::{check_password, wallet_reply, without_password};
use crate::journal::{CardAction, CardChange, Command, Outcome, Request, WalletAction};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    /// How the member proved who they are: `payment_password` (give `password`) or
    /// `id_document` (the manager saw their 身份证).
    pub check: String,
    pub password: Option<String>,
    /// For a reissue (补卡): the new card's number.
    pub card_no: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    pub reason: String,
    /// The member's payment password, if they have one.
    pub password: Option<String>,
    /// The cash the preview showed (退卡试算) and the member was told: the closing is refused
    /// (`closing_changed`, nothing written) if it would now pay another amount.
    #[schema(value_type = Option<MoneySchema>)]
    pub cash: Option<serde_json::Value>,
}

fn manager(app: &AppState, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    let (_, _, staff) = request_meta(headers, "", &[])?;
    if may_manage(app, &staff) {
        return Ok(());
    }
    Err(ApiError::new(
        Code::ManagerRequired,
        format!("{staff} is not a manager: {what} is a store manager's"),
    ))
}

/// Checks the member's identity as the body says.
async fn identity(
    app: &std::sync::Arc<AppState>,
    headers: &HeaderMap,
    member: MemberId,
    b: &IdentityBody,
) -> Result<IdentityCheck, ApiError> {
    let field = |why: &str| ApiError::new(Code::FieldInvalid, why.to_owned()).on("check");
    match b.check.as_str() {
        "id_document" => Ok(IdentityCheck::IdDocument),
        "payment_password" => {
            super::follow::ensure_whole(app, member).await?;
            if app.views.wallet(&member)?.password.is_none() {
                return Err(field(
                    "the member has no payment password: check their identity document",
                ));
            }
            let (_, _, staff) = request_meta(headers, "", &[])?;
            check_password(app, member, &staff, b.password.clone()).await?;
            Ok(IdentityCheck::PaymentPassword)
        }
        _ => Err(field("check is payment_password or id_document")),
    }
}

async fn change(
    app: &AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    member: MemberId,
    action: CardAction,
) -> AppResult {
    let (key, fingerprint, staff) = request_meta(
        headers,
        &format!("{route}/{member}"),
        &without_password(body),
    )?;
    super::follow::ensure_profile(app, member).await?;
    let reply = app
        .journal
        .send(Command::Card(Request {
            key,
            fingerprint,
            staff,
            body: CardChange {
                member_id: member,
                action,
            },
        }))
        .await?;
    Ok(answer(StatusCode::OK, reply))
}

/// 挂失: the member's card stops finding them (by card number, by scan, by search) at this
/// store now and at every other as the change reaches it; they are still found by phone.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/card/lost",
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MemberOut), (status = 409, body = ErrorBody)))]
pub(super) async fn lost(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    change(&app, &headers, "card_lost", &body, id, CardAction::Lost).await
}

/// 解挂: a card reported lost finds the member again (a manager, after checking who they are).
#[utoipa::path(post, path = "/api/v1/members/{member_id}/card/found", request_body = IdentityBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MemberOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn found(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: IdentityBody = parse_body(&body)?;
    manager(&app, &headers, "finding a lost card again (解挂)")?;
    let check = identity(&app, &headers, id, &b).await?;
    change(
        &app,
        &headers,
        "card_found",
        &body,
        id,
        CardAction::Found { check },
    )
    .await
}

/// 补卡: a new card number for the member, carrying their stored value, points and cards (they
/// are the member's, not the card's); the old number is kept on file and refused at every till.
/// Also opens a closed membership again.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/card/reissue", request_body = IdentityBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MemberOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn reissue(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: IdentityBody = parse_body(&body)?;
    let card_no = b
        .card_no
        .as_deref()
        .ok_or_else(|| ApiError::new(Code::FieldInvalid, "the new card's number").on("card_no"))
        .and_then(card)?;
    manager(&app, &headers, "reissuing a card (补卡)")?;
    let check = identity(&app, &headers, id, &b).await?;
    let action = CardAction::Reissue { card_no, check };
    change(&app, &headers, "card_reissue", &body, id, action).await
}

/// A count or period card a closing pays back (or lets lapse).
#[derive(Serialize, ToSchema)]
pub struct ClosingCardOut {
    card_id: String,
    name: String,
    /// Cash paid back for it, in yuan.
    refund: String,
    /// Uses a count card had left, or days a period card had left.
    left: u64,
}

/// 退卡: what a closing pays back in cash and what lapses (yuan as decimal strings).
#[derive(Serialize, ToSchema)]
pub struct ClosingOut {
    /// What the cashier pays the member: principal and bonus refunded and cards, less the fee.
    cash: String,
    principal: String,
    bonus_forfeited: String,
    bonus_refunded: String,
    fee: String,
    points_forfeited: u64,
    coupons_forfeited: u64,
    cards: Vec<ClosingCardOut>,
}

impl ClosingOut {
    fn of(closing: &Closing) -> ClosingOut {
        ClosingOut {
            cash: closing.cash().to_string(),
            principal: closing.principal.to_string(),
            bonus_forfeited: closing.bonus_forfeited.to_string(),
            bonus_refunded: closing.bonus_refunded.to_string(),
            fee: closing.fee.to_string(),
            points_forfeited: closing.points_forfeited,
            coupons_forfeited: closing.coupons_forfeited,
            cards: closing
                .cards
                .iter()
                .map(|c| ClosingCardOut {
                    card_id: c.card.to_string(),
                    name: c.name.clone(),
                    refund: c.refund.to_string(),
                    left: c.left,
                })
                .collect(),
        }
    }
}

/// 退卡试算's answer: the closing today, and the member's card status.
#[derive(Serialize, ToSchema)]
pub struct ClosingPreviewOut {
    #[serde(flatten)]
    closing: ClosingOut,
    member_id: String,
    card_status: String,
    /// Whether this store holds the member's whole wallet (false: headquarters was not
    /// reachable and the figures may be short).
    whole: bool,
}

/// 退卡's answer: the wallet after it, and the closing as written (what the cashier pays).
#[derive(Serialize, ToSchema)]
pub struct ClosedOut {
    #[serde(flatten)]
    wallet: WalletOut,
    closing: ClosingOut,
}

/// 退卡预览: what closing the membership today would pay back in cash under the chain's card
/// rules (principal, the bonus share, count and period cards pro rata or not, less the fee)
/// and what would lapse (bonus, points, coupons). Nothing changes.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/closing",
    params(("member_id" = String, Path)),
    responses((status = 200, body = ClosingPreviewOut, description = "what a closing would pay back and forfeit"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn preview(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = member_id(&raw)?;
    let view = app
        .views
        .member(&id)?
        .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?;
    // The whole wallet, from headquarters if this store has not followed the member yet.
    let whole = match super::follow::ensure_whole(&app, id).await {
        Ok(()) => true,
        Err(e) if e.code == Code::MemberNotHere => false,
        Err(e) => return Err(e),
    };
    let wallet = app.views.wallet(&id)?;
    let (closing, _) = wallet
        .closing(app.today(), &app.settings_now()?.card_rules())
        .map_err(|e| ApiError::from(crate::journal::Rejection::Wallet(e)))?;
    Ok(axum::Json(ClosingPreviewOut {
        closing: ClosingOut::of(&closing),
        member_id: id.to_string(),
        card_status: view.profile.card_status.as_str().to_owned(),
        whole,
    })
    .into_response())
}

/// 退卡: closes the membership — the principal and what is left of count and period cards paid
/// back in cash, bonus, points and coupons forfeited, the card refused at every till from then
/// on. Every right the member holds is fetched here first (through headquarters), so a closing
/// is paid once, chain-wide. A store manager's, with the member's payment password if they
/// have one.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/close", request_body = CloseBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = ClosedOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn close(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: CloseBody = parse_body(&body)?;
    manager(&app, &headers, "closing a membership (退卡)")?;
    let (_, _, staff) = request_meta(&headers, "", &[])?;
    check_password(&app, id, &staff, b.password).await?;
    let action = WalletAction::Close {
        reason: b.reason,
        expect_cash: b.cash.map(money).transpose()?,
    };
    let reply = wallet_reply(&app, &headers, "close", &body, id, action).await?;
    let written = match &reply.outcome {
        // The closing is on record whatever this read says: a failed read answers the wallet.
        Outcome::Wallet { seq: Some(seq), .. } => written_closing(&app, seq.to_owned())
            .inspect_err(|e| tracing::warn!(%id, error = %e.detail, "closing not read back"))
            .ok()
            .flatten(),
        _ => None,
    };
    let Some(closing) = written else {
        return Ok(answer(StatusCode::CREATED, reply));
    };
    let Outcome::Wallet {
        member_id,
        seq,
        wallet,
    } = reply.outcome
    else {
        unreachable!("a closing was read from the wallet outcome's entry");
    };
    // The wallet after it, and the closing as written: what the cashier pays.
    let out = ClosedOut {
        wallet: WalletOut::new(member_id, wallet, seq),
        closing: ClosingOut::of(&closing),
    };
    let mut response = (StatusCode::CREATED, axum::Json(out)).into_response();
    mark_replayed(&mut response, reply.replayed);
    Ok(response)
}

/// The closing entry `seq` of this store's log wrote, if it is one.
fn written_closing(app: &AppState, seq: u64) -> Result<Option<Closing>, ApiError> {
    let Some(raw) = app.views.log_entry(&app.settings.store_id, seq)? else {
        return Ok(None);
    };
    let entry = protocol::entry::Entry::decode(&raw)
        .map_err(|e| ApiError::new(Code::Storage, format!("entry {seq}: {e}")))?;
    Ok(match &entry.payload {
        protocol::entry::Payload::Wallet { event, .. } => {
            event.closing().map(std::borrow::Cow::into_owned)
        }
        _ => None,
    })
}
