//! 积分商城 at headquarters: the gift table every store offers for points (published as one
//! entry of headquarters' log each, `protocol::gifts`), and what each store gave of each gift.

use protocol::gifts::{GiftTable, Given, Published};

use super::*;
use crate::ingest::HqWrite;

/// The gift table in force (`current`, null before any) and every earlier one, newest first.
#[utoipa::path(get, path = "/api/v1/gifts", responses((status = 200, body = Object)))]
pub(super) async fn get_gifts(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        super::rules::history(
            storage,
            protocol::gifts::keys::HISTORY,
            "table",
            |p: &Published| (p.at, p.staff.clone(), json!(p.table)),
        )
    })
    .await
}

/// Publishes the points mall: every gift (id, name, points, kind — `{"goods": {"sku", "qty"}}`
/// or `{"coupon": {"template"}}` — per_member, stock per store, optional `stores` with
/// allotments of their own, withdrawn). Goods must be in the catalogue and templates exist; a
/// bad field is named and nothing is written.
#[utoipa::path(put, path = "/api/v1/gifts", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = Object, description = "积分商城: {gifts: [{id, name, points, kind, per_member, stock, stores?, withdrawn?}]}"), responses((status = 201, body = Object)))]
pub(super) async fn set_gifts(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<GiftTable>, JsonRejection>,
) -> Response {
    match body {
        Ok(axum::Json(table)) => staff::write(&hq, &headers, HqWrite::Gifts(table)).await,
        Err(e) => super::body_refused(e, Code::InvalidMarketing),
    }
}

/// The gift report's columns (field, header).
const REPORT_COLUMNS: [(&str, &str); 6] = [
    ("gift", "礼品"),
    ("name", "名称"),
    ("store", "门店"),
    ("redeemed", "兑换次数"),
    ("points", "消耗积分"),
    ("left", "剩余库存"),
];

/// 积分兑换报表: per gift and store (headquarters is `HQ`, the member's page), how many times
/// it was given, the points it took and what is left of the store's allotment under the table
/// in force; with the totals. `?format=csv|xlsx` for a file.
#[utoipa::path(get, path = "/api/v1/reports/gifts", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn gift_report(
    State(hq): State<Hq>,
    query: Result<Query<super::marketing::ReportQuery>, QueryRejection>,
) -> Response {
    super::reports::stored_table(&hq, query, report, &REPORT_COLUMNS).await
}

fn report(storage: &dyn HubStore) -> Result<serde_json::Value, String> {
    let views = hub_views(storage);
    let table = protocol::gifts::current(&views)?.map(|p| p.table);
    let prefix = protocol::gifts::keys::GIVEN;
    let mut rows = Vec::new();
    let (mut times, mut points) = (0u64, 0u64);
    for (key, value) in storage
        .views(prefix, usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        let Some((gift, store)) = rest.split_once('\0') else {
            continue;
        };
        let given: Given = postcard::from_bytes(&value).map_err(|e| e.to_string())?;
        let offered = table.as_ref().and_then(|t| t.gift(gift));
        let left = offered.and_then(|g| {
            let store = StoreId::parse(store).ok()?;
            Some(u64::from(g.allotment(&store)).saturating_sub(given.times))
        });
        times += given.times;
        points += given.points;
        rows.push(
            json!({"gift": gift, "name": offered.map(|g| g.name.clone()),
                         "store": store, "redeemed": given.times, "points": given.points,
                         "left": left}),
        );
    }
    Ok(json!({"rows": rows, "total": {"redeemed": times, "points": points}}))
}

/// 积分商城 on the member's own page: every gift on offer with its points, whether it is
/// redeemed here (coupons) or at a store (goods, from the store's shelf), the member's limit
/// and what they have had of it, and their points now.
#[utoipa::path(get, path = "/api/v1/me/gifts", responses((status = 200, body = Object), (status = 401, body = super::doc::ErrorBody)))]
pub(super) async fn my_gifts(State(hq): State<Hq>, headers: HeaderMap) -> Response {
    let member = match super::me::signed_in(&hq, &headers) {
        Ok(member) => member,
        Err(refused) => return *refused,
    };
    let listed = read(&hq, move |storage| {
        let views = hub_views(storage);
        let hq_id = StoreId::hq();
        let wallet = storage
            .wallet(&member)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let points = wallet.points_live(super::today(), &PointsPolicy::default());
        let Some(published) = protocol::gifts::current(&views)? else {
            return Ok::<_, String>(json!({"gifts": [], "points": points}));
        };
        let mut gifts = Vec::new();
        for g in published.table.gifts.iter().filter(|g| !g.withdrawn) {
            let had = protocol::gifts::had(&views, &member, &g.id)?;
            let given = protocol::gifts::given(&views, &g.id, &hq_id)?;
            let (kind, online) = match &g.kind {
                protocol::gifts::GiftKind::Coupon { .. } => ("coupon", true),
                protocol::gifts::GiftKind::Goods { .. } => ("goods", false),
            };
            let left = u64::from(g.allotment(&hq_id)).saturating_sub(given.times);
            gifts.push(
                json!({"id": g.id, "name": g.name, "points": g.points, "kind": kind,
                              "online": online && left > 0, "per_member": g.per_member,
                              "had": had}),
            );
        }
        Ok(json!({"gifts": gifts, "points": points}))
    })
    .await;
    match listed {
        Ok(body) => axum::Json(body).into_response(),
        Err(answer) => answer,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MyRedeemBody {
    /// The gift's id.
    gift: String,
    /// The page's key for this press of the button (letters, digits, '-', '_'): the same key
    /// again gives one gift, so a retry after a lost answer is safe.
    key: String,
}

/// 积分兑换 on the member's own page: a coupon gift for the member's points, issued at once.
/// When part of the points are held at stores, headquarters calls them back and answers
/// `points_on_the_way` (409): the page asks again with the same key a moment later. Goods are
/// redeemed at a store (`gift_unavailable`).
#[utoipa::path(post, path = "/api/v1/me/gifts", request_body = MyRedeemBody, responses((status = 201, body = Object), (status = 401, body = super::doc::ErrorBody)))]
pub(super) async fn redeem_mine(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<MyRedeemBody>, JsonRejection>,
) -> Response {
    let member = match super::me::signed_in(&hq, &headers) {
        Ok(member) => member,
        Err(refused) => return *refused,
    };
    let body = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    for (field, value) in [("gift", &body.gift), ("key", &body.key)] {
        if let Err(e) = protocol::campaign::check_id(field, value) {
            let mut error = ApiError::new(Code::InvalidRequest, &e);
            error.field = Some(if field == "gift" { "gift" } else { "key" });
            return error.into_response();
        }
    }
    let key = protocol::TxId::derived(&["me-gift", &member.to_string(), &body.key]);
    let write = HqWrite::RedeemGift {
        member,
        gift: body.gift,
        key,
    };
    match hq.ingest.hq_write(write, StaffId::system()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return super::staff::write_error(e),
        Err(e) => return unavailable(e.to_string()),
    }
    let points = read(&hq, move |storage| {
        let wallet = storage.wallet(&member)?.unwrap_or_default();
        Ok::<_, crate::storage::HubStoreError>(
            wallet.points_live(super::today(), &PointsPolicy::default()),
        )
    })
    .await;
    match points {
        Ok(points) => (
            StatusCode::CREATED,
            axum::Json(json!({"redeemed": true, "points": points})),
        )
            .into_response(),
        Err(answer) => answer,
    }
}
