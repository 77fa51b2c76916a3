//! 积分商城 at the till: the gifts headquarters offers for points, what this store has left of
//! each, and a gift given to a member (`journal::gifts`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use protocol::gifts::GiftKind;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::app::*;
use super::error::{ApiError, Code, ErrorBody};
use super::wallet::wallet_write;
use crate::journal::WalletAction;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct GiftsQuery {
    /// With a member: how many of each gift they have had (每人限兑).
    member_id: Option<String>,
}

/// The points mall as this store has heard it: each gift on offer with its points, what it
/// gives, the limit per member and what is left of this store's allotment (and, with
/// `member_id`, what that member has had of it). `gifts` is empty before headquarters
/// publishes any.
#[utoipa::path(get, path = "/api/v1/gifts", params(GiftsQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list(State(app): St, q: QueryResult<GiftsQuery>) -> AppResult {
    let q = query(q)?;
    let member = q.member_id.as_deref().map(member_id).transpose()?;
    if let Some(id) = &member
        && app.views.member(id)?.is_none()
    {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    let storage = |e: String| ApiError::new(Code::Storage, e);
    let kv = app.views.kv();
    let here = &app.settings.store_id;
    let Some(published) = protocol::gifts::current(&kv).map_err(storage)? else {
        return Ok(axum::Json(json!({"gifts": [], "published_at_ms": null})).into_response());
    };
    let mut gifts = Vec::new();
    for g in &published.table.gifts {
        let given = protocol::gifts::given(&kv, &g.id, here).map_err(storage)?;
        let had = match &member {
            Some(m) => Some(protocol::gifts::had(&kv, m, &g.id).map_err(storage)?),
            None => None,
        };
        let left = u64::from(g.allotment(here)).saturating_sub(given.times);
        let (kind, sku, qty, template) = match &g.kind {
            GiftKind::Goods { sku, qty } => ("goods", Some(sku.to_string()), Some(*qty), None),
            GiftKind::Coupon { template } => ("coupon", None, None, Some(template.clone())),
        };
        let name_of_sku = match &g.kind {
            GiftKind::Goods { sku, .. } => protocol::inventory::product(&kv, sku)
                .map_err(storage)?
                .map(|p| p.name),
            GiftKind::Coupon { .. } => None,
        };
        gifts.push(
            json!({"id": g.id, "name": g.name, "points": g.points, "kind": kind,
                          "sku": sku, "product": name_of_sku, "qty": qty, "template": template,
                          "per_member": g.per_member, "left_here": left,
                          "withdrawn": g.withdrawn, "had": had}),
        );
    }
    Ok(
        axum::Json(json!({"gifts": gifts, "published_at_ms": published.at.wall_ms}))
            .into_response(),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The gift's id in the points mall.
    #[schema(example = "cup")]
    pub gift: String,
}

/// 积分兑换: gives the member a gift for its points (spent oldest lot first; headquarters is
/// asked when the points are held at other stores). A coupon gift is issued at once; goods
/// leave this store's shelf. Refused, with nothing changed, for a gift not on offer or
/// withdrawn, out of this store's allotment or off the shelf, over the member's limit, or
/// above their points. The same `Idempotency-Key` gives the same answer and one gift.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/gifts", request_body = RedeemBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = super::dto::WalletOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn redeem(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: RedeemBody = parse_body(&body)?;
    protocol::campaign::check_id("gift", &b.gift)
        .map_err(|e| ApiError::new(Code::FieldInvalid, e).on("gift"))?;
    // Like a payment, only with the member's whole wallet here (the points and the gifts
    // they had elsewhere): a store that first meets them while cut off gives no gift.
    super::follow::ensure_whole(&app, id).await?;
    let action = WalletAction::RedeemGift { gift: b.gift };
    wallet_write(&app, &headers, "redeem_gift", &body, id, action).await
}
