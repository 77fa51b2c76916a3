//! 会员: registering, editing, finding and listing members, and their sales.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::member::ProfilePatch;
use protocol::points::Points;
use protocol::{MemberId, StaffId};
use serde::Deserialize;

use super::dto::*;
use super::error::{ApiError, Code, ErrorBody};

use crate::journal::{Command, MemberEdit, NewMember, Request};

use super::app::*;

/// Registers a member (会员注册).
#[utoipa::path(post, path = "/api/v1/members", request_body = NewMemberBody,
    params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"),
           ("X-Staff-Id" = Option<String>, Header, description = "who served")),
    responses((status = 201, body = MemberOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn register_member(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let (key, fingerprint, staff) = request_meta(&headers, "register_member", &body)?;
    let b: NewMemberBody = parse_body(&body)?;
    // A tier other than the chain's first at registration is a discount given, like a change.
    if let Some(tier) = &b.tier {
        let first = app.settings_now()?.default_tier;
        check_tier_change(&app, Some(&first), &staff, tier, b.tier_reason.as_deref())?;
    }
    let new = NewMember {
        name: b.name,
        phone: phone(&b.phone)?,
        card_no: b.card_no.as_deref().map(card).transpose()?,
        birthday: b.birthday,
        gender: b.gender.unwrap_or_default(),
        tags: b.tags,
        notes: b.notes,
        tier: b.tier.map(|t| t.trim().to_owned()),
        custom: b.custom,
        referrer: match (b.referrer.as_deref(), b.referral_code.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    Code::FieldInvalid,
                    "give the referrer's id or their referral code, not both",
                )
                .on("referral_code"));
            }
            (Some(id), None) => Some(member_id(id)?),
            (None, Some(code)) => Some(referrer_by_code(&app, code)?),
            (None, None) => None,
        },
        marketing_consent: b.marketing_consent,
        tier_reason: b.tier_reason,
    };
    let reply = app
        .journal
        .send(Command::RegisterMember(Request {
            key,
            fingerprint,
            staff,
            body: new,
        }))
        .await?;
    Ok(answer(StatusCode::CREATED, reply))
}

/// A member's profile and points.
#[utoipa::path(get, path = "/api/v1/members/{member_id}", params(("member_id" = String, Path)),
    responses((status = 200, body = MemberOut), (status = 404, body = ErrorBody)))]
pub(super) async fn get_member(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = member_id(&raw)?;
    let answer = member_answer(&app, id)?;
    super::follow::meet(&app, id).await?;
    Ok(answer)
}

pub(super) fn member_answer(app: &AppState, id: MemberId) -> AppResult {
    let view = app
        .views
        .member(&id)?
        .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?;
    let points = app.summary(&id)?.points;
    let points = Points(i64::try_from(points).unwrap_or(i64::MAX));
    Ok(axum::Json(MemberOut::new(view, points)).into_response())
}

/// Edits a member's profile; only the fields sent change.
#[utoipa::path(patch, path = "/api/v1/members/{member_id}", request_body = MemberPatchBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MemberOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn edit_member(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let (key, fingerprint, staff) = request_meta(&headers, &format!("edit_member/{id}"), &body)?;
    let b: MemberPatchBody = parse_body(&body)?;
    let patch = ProfilePatch {
        name: b.name,
        phone: b.phone.as_deref().map(phone).transpose()?,
        card_no: b
            .card_no
            .map(|c| c.as_deref().map(card).transpose())
            .transpose()?,
        birthday: b.birthday,
        gender: b.gender,
        tags_add: b.tags_add,
        tags_remove: b.tags_remove,
        notes: b.notes,
        tier: b.tier.map(|t| t.trim().to_owned()),
        custom_set: b.custom_set,
        custom_remove: b.custom_remove,
        marketing_consent: b.marketing_consent,
        referrer: b
            .referral_code
            .as_deref()
            .map(|code| referrer_by_code(&app, code))
            .transpose()?,
        ..ProfilePatch::default()
    };
    if let Some(tier) = &patch.tier {
        let current = app.views.member(&id)?.map(|m| m.profile.tier);
        check_tier_change(
            &app,
            current.as_deref(),
            &staff,
            tier,
            b.tier_reason.as_deref(),
        )?;
    }
    super::follow::ensure_profile(&app, id).await?;
    let edit = MemberEdit {
        member_id: id,
        patch,
        tier_reason: b.tier_reason,
    };
    let reply = app
        .journal
        .send(Command::EditMember(Request {
            key,
            fingerprint,
            staff,
            body: edit,
        }))
        .await?;
    Ok(answer(StatusCode::OK, reply))
}

/// 拓客: the member whose referral code a new (or not yet referred) member gave, as this
/// store holds them (offline too).
fn referrer_by_code(app: &AppState, code: &str) -> Result<MemberId, ApiError> {
    let code = code.trim().to_ascii_uppercase();
    if !protocol::referral::is_code(&code) {
        return Err(ApiError::new(
            Code::FieldInvalid,
            "a referral code is R and ten letters or digits",
        )
        .on("referral_code"));
    }
    app.views.member_by_referral(&code)?.ok_or_else(|| {
        ApiError::new(
            Code::ReferrerNotFound,
            format!("no member has referral code {code} here"),
        )
        .on("referral_code")
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct LookupQuery {
    /// Phone number (忘带会员卡: look up by phone).
    phone: Option<String>,
    /// Membership card number.
    card: Option<String>,
    /// 动态会员码: the 18 digits the member's page shows (scanned or typed).
    code: Option<String>,
}

/// Finds a member by phone, card number or member code (动态会员码).
#[utoipa::path(get, path = "/api/v1/members/lookup", params(LookupQuery),
    responses((status = 200, body = MemberOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn lookup_member(State(app): St, q: QueryResult<LookupQuery>) -> AppResult {
    let q = query(q)?;
    let found = match (&q.phone, &q.card, &q.code) {
        (Some(p), None, None) => app.views.member_by_phone(&phone(p)?)?,
        (None, Some(c), None) => card_holder(&app, &card(c)?)?,
        (None, None, Some(c)) => Some(code_holder(&app, c)?),
        _ => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "give exactly one of phone, card or code",
            ));
        }
    };
    let id = found
        .ok_or_else(|| ApiError::new(Code::MemberNotFound, "no member with that phone or card"))?;
    let answer = member_answer(&app, id)?;
    // The till found them: their wallet's history comes while the cashier rings up.
    super::follow::meet(&app, id).await?;
    Ok(answer)
}

/// The member a member code finds (动态会员码), checked with what this store holds — offline
/// too — and taken: the same code finds no one here again.
fn code_holder(app: &AppState, code: &str) -> Result<MemberId, ApiError> {
    use protocol::member_code::{CodeError, STEP_SECONDS};
    let now_ms = app.clock.now_ms();
    let (member, step) = app.views.member_by_code(code, now_ms)?.map_err(|e| {
        let code = match e {
            CodeError::Malformed => Code::InvalidRequest,
            CodeError::Expired => Code::MemberCodeExpired,
            CodeError::Forged => Code::MemberCodeInvalid,
        };
        ApiError::new(code, e.to_string())
    })?;
    // A closed membership (退卡) is found by its phone only, as its card finds no one.
    if app
        .views
        .member(&member)?
        .is_some_and(|v| v.profile.card_status == protocol::member::CardStatus::Closed)
    {
        return Err(ApiError::new(
            Code::MembershipClosed,
            format!("member {member} closed their membership (已退卡)"),
        ));
    }
    if !app
        .used_codes
        .take(member, step, now_ms / 1000 / STEP_SECONDS)
    {
        return Err(ApiError::new(
            Code::MemberCodeUsed,
            "this member code was taken here already: ask for the one the page shows now",
        ));
    }
    Ok(member)
}

/// The member a card number finds: refused with why for a card reported lost (挂失), replaced
/// (补卡) or of a closed membership (退卡).
fn card_holder(app: &AppState, card: &protocol::CardNo) -> Result<Option<MemberId>, ApiError> {
    let Some(id) = app.views.member_by_card(card)? else {
        return Ok(None);
    };
    let Some(view) = app.views.member(&id)? else {
        return Ok(None);
    };
    view.profile
        .card_finds(card)
        .map_err(|r| ApiError::from(crate::journal::Rejection::Card(r)))?;
    Ok(Some(id))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchQuery {
    /// Part of the name, the phone's last 4 or more digits, or the card number.
    q: String,
}

/// 会员搜索: up to 20 members by part of the name, the phone's last digits or the card number,
/// phones masked (138****1234).
#[utoipa::path(get, path = "/api/v1/members/search", params(SearchQuery),
    responses((status = 200, description = "members found"), (status = 400, body = ErrorBody)))]
pub(super) async fn search_members(State(app): St, q: QueryResult<SearchQuery>) -> AppResult {
    let q = query(q)?;
    let chars = q.q.trim().chars().count();
    if chars == 0 || chars > protocol::member::SEARCH_CHARS_MAX {
        return Err(ApiError::new(
            Code::InvalidQuery,
            "q: give 1 to 32 characters of a name, a phone's last digits or a card number",
        ));
    }
    // A card number that was reported lost, replaced or closed says so, rather than nothing.
    if let Ok(card) = protocol::CardNo::parse(q.q.trim()) {
        card_holder(&app, &card)?;
    }
    let found = app
        .views
        .search_members(&q.q, protocol::member::SEARCH_RESULTS_MAX)?;
    let members: Vec<_> = found
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "member_id": m.member_id.to_string(),
                "name": m.profile.name,
                "phone_masked": m.profile.phone.masked(),
                "card_no": m.profile.card_no.map(|c| c.to_string()),
                "tier": m.profile.tier,
                "home_store": m.profile.home_store.to_string(),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "members": members })).into_response())
}

/// 会员等级: the member's tier and, once headquarters has published a tier table, what they
/// qualified with over its period as this store knows it, and how far the next tier is.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/tier", params(("member_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn member_tier(State(app): St, Path(raw): Path<String>) -> AppResult {
    use protocol::tiers::Basis;
    let id = member_id(&raw)?;
    let view = app
        .views
        .member(&id)?
        .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?;
    let tier = view.profile.tier;
    let Some(table) = app.settings_now()?.tiers else {
        return Ok(axum::Json(serde_json::json!({ "tier": tier, "table": false })).into_response());
    };
    let q = app
        .views
        .qualifying(&id, &table, (app.today(), app.clock.now_ms()))?;
    let shown = |v: i64| match table.basis {
        Basis::Spend => serde_json::json!(protocol::Fen(v).to_decimal().to_string()),
        Basis::Points => serde_json::json!(v),
    };
    let rank = table.rank(&tier);
    let next = table
        .tiers
        .iter()
        .enumerate()
        .find(|(i, t)| {
            rank.is_none_or(|r| *i > r) && i64::try_from(t.threshold).is_ok_and(|th| th > q)
        })
        .map(|(_, t)| {
            let from = i64::try_from(t.threshold).unwrap_or(i64::MAX);
            serde_json::json!({ "name": t.name, "from": shown(from), "short": shown(from - q) })
        });
    Ok(axum::Json(serde_json::json!({
        "tier": tier,
        "table": true,
        "basis": table.basis,
        "period_days": table.period_days,
        "qualifying": shown(q),
        "next": next,
    }))
    .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct ListQuery {
    /// At most this many, newest first (default 50, at most 10000).
    limit: Option<usize>,
}

/// A member's sales, newest first.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/sales", params(("member_id" = String, Path), ListQuery),
    responses((status = 200, body = SaleListOut), (status = 404, body = ErrorBody)))]
pub(super) async fn member_sales(
    State(app): St,
    Path(raw): Path<String>,
    q: QueryResult<ListQuery>,
) -> AppResult {
    let q = query(q)?;
    let id = member_id(&raw)?;
    if app.views.member(&id)?.is_none() {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    let limit = q.limit.unwrap_or(50).min(SALES_LIMIT_MAX);
    let sales = app
        .views
        .member_sales(&id, limit)?
        .into_iter()
        .map(|s| match s {
            crate::views::AnySale::Quick(s) => serde_json::to_value(SaleOut::new(*s, None)),
            crate::views::AnySale::Items(s) => Ok(item_sale_json(&s, None)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(Code::Storage, e))?;
    Ok(axum::Json(SaleListOut {
        member_id: id.to_string(),
        sales,
    })
    .into_response())
}

/// 会员等级: a change of tier is a discount, so it needs a store manager (or the store's own
/// operator, `system`, at a till without logins) and a reason, and only the chain's tiers are
/// given.
pub(super) fn check_tier_change(
    app: &AppState,
    current: Option<&str>,
    staff: &StaffId,
    tier: &str,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    let tier = tier.trim();
    if current == Some(tier) {
        return Ok(());
    }
    if !may_manage(app, staff) {
        return Err(ApiError::new(
            Code::ManagerRequired,
            "a member's tier is changed by a store manager",
        ));
    }
    let settings = app.settings_now()?;
    let known =
        settings.pricing.tier_percent_off.contains_key(tier) || tier == settings.default_tier;
    if !known {
        let mut tiers: Vec<&str> = settings
            .pricing
            .tier_percent_off
            .keys()
            .map(String::as_str)
            .collect();
        tiers.push(&settings.default_tier);
        return Err(ApiError {
            field: Some("tier"),
            ..ApiError::new(
                Code::FieldInvalid,
                format!("the chain's tiers are {}", tiers.join(", ")),
            )
        });
    }
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > protocol::tiers::REASON_CHARS_MAX {
        return Err(ApiError {
            field: Some("tier_reason"),
            ..ApiError::new(
                Code::FieldInvalid,
                format!(
                    "a tier set by hand needs a reason (1 to {} characters)",
                    protocol::tiers::REASON_CHARS_MAX
                ),
            )
        });
    }
    Ok(())
}
