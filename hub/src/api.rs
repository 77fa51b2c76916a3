//! The headquarters HTTP API: health, per-store sync status, and the chain's member directory
//! (phones masked). The rest arrives with the reports and UI issues.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::BTreeMap;

use protocol::calendar::StoreCalendar;
use protocol::catalogue::{Barcode, CatalogueError, ChangeForm, ProductForm, Qty};
use protocol::inventory::{self, ViewKv};
use protocol::settlement::Settlement;
use protocol::stock::{Transfer, TransferError, TransferStep};
use protocol::wallet::{Counter, PointsPolicy};
use protocol::{DocId, Fen, MemberId, Money, Phone, Sku, StaffId, StoreId};
use serde::Deserialize;
use serde_json::json;

use crate::ingest::{HoldError, IngestHandle, TransferRefused};

mod doc;
pub(crate) mod login;
mod privacy;
mod reports;
mod rules;
mod staff;
mod ui;
use crate::storage::{HubStore, MemberRecord};

#[derive(Clone)]
struct Hq {
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
    sessions: Arc<protocol::session::Sessions>,
    /// The demo's and the tests' mode: open until an admin has a login (`Config`).
    open_before_logins: bool,
}

pub fn router(
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
    http_names: Vec<String>,
    open_before_logins: bool,
) -> Router {
    let hq = Hq {
        ingest,
        storage,
        sessions: Default::default(),
        open_before_logins,
    };
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/openapi.json", get(doc::openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/sessions", post(login::login).delete(login::logout))
        .route("/api/v1/stores", get(stores))
        .route(
            "/api/v1/stores/{store_id}/hold",
            post(hold_store).delete(void_hold),
        )
        .route("/api/v1/members/lookup", get(lookup_member))
        .route("/api/v1/members/search", get(search_members))
        .route("/api/v1/members/{member_id}", get(get_member))
        .route("/api/v1/members/{member_id}/wallet", get(get_wallet))
        .route(
            "/api/v1/members/{member_id}/export",
            get(privacy::export_member),
        )
        .route(
            "/api/v1/members/{member_id}/erase",
            post(privacy::erase_member),
        )
        .route("/api/v1/liabilities", get(liabilities))
        .route(
            "/api/v1/staff",
            get(staff::list_staff).post(staff::change_staff),
        )
        .route(
            "/api/v1/staff/{staff_id}/password",
            axum::routing::put(staff::set_secret),
        )
        .route("/api/v1/audit", get(staff::audit))
        .route(
            "/api/v1/commission-rules",
            get(staff::list_rules).put(staff::set_rules),
        )
        .route("/api/v1/commissions", get(staff::commissions))
        .route(
            "/api/v1/member-rules",
            get(rules::get_rules).put(rules::set_rules),
        )
        .route("/api/v1/reports/sales", get(reports::sales))
        .route("/api/v1/reports/members", get(reports::members))
        .route(
            "/api/v1/catalogue/changes",
            post(change_catalogue).layer(DefaultBodyLimit::max(CATALOGUE_BODY_MAX)),
        )
        .route("/api/v1/catalogue", get(catalogue_version))
        .route("/api/v1/products", get(lookup_product))
        .route("/api/v1/products/{sku}", get(get_product))
        .route("/api/v1/stock", get(chain_stock))
        .route("/api/v1/stores/{store_id}/stock", get(store_stock))
        .route("/api/v1/stores/{store_id}/entries", get(store_entries))
        .route(
            "/api/v1/transfers",
            get(list_transfers).post(request_transfer),
        )
        .route("/api/v1/transfers/{id}", get(get_transfer))
        .route("/api/v1/transfers/{id}/{step}", post(transfer_step))
        .route("/api/v1/settlement", get(settlement))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "找不到该资源",
                "no such route".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            hq.clone(),
            login::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(http_names),
            web_guard,
        ))
        .with_state(hq)
}

/// Every request: its Host must be headquarters' (`protocol::web`: no DNS rebinding of an
/// open headquarters); every answer: the security headers.
async fn web_guard(
    State(names): State<Arc<Vec<String>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"));
    let mut response = match protocol::web::host_allowed(host, &names) {
        true => next.run(request).await,
        false => error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "访问地址不是总部系统的地址",
            format!("Host {host:?} is not headquarters': add it to http_names in hub.toml"),
        ),
    };
    // What the router answers with an empty body gets the error body every other answer has.
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if let Some((code, message, detail)) = protocol::web::router_error(response.status().as_u16())
        && !json
    {
        let status = response.status();
        response = (
            status,
            axum::Json(serde_json::json!({"code": code, "message": message, "detail": detail})),
        )
            .into_response();
    }
    for (name, value) in protocol::web::SECURITY_HEADERS {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}

fn error(status: StatusCode, code: &str, message: &str, detail: String) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message, "detail": detail})),
    )
        .into_response()
}

/// A body that is not the route's JSON: 413 when it is over the route's limit, else 400 with
/// the route's own code and message.
fn body_refused(e: JsonRejection, code: &str, message: &str) -> Response {
    let status = e.status();
    match protocol::web::router_error(status.as_u16()) {
        Some((code, message, _)) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            error(status, code, message, e.body_text())
        }
        _ => error(StatusCode::BAD_REQUEST, code, message, e.body_text()),
    }
}

fn bad_query(detail: String) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "查询参数不正确",
        detail,
    )
}

fn unavailable(detail: String) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "系统暂不可用，请稍后重试",
        detail,
    )
}

#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Object, description = "role, feed length, version, whether calls go through without a login")))]
async fn health(State(hq): State<Hq>) -> Response {
    let feed_len = *hq.ingest.feed_len().borrow();
    // Whether a call without a login goes through now (the demo's mode, before an admin has a
    // login): the pages say so.
    let storage = hq.storage.clone();
    let open = hq.open_before_logins
        && matches!(
            tokio::task::spawn_blocking(move || login::logins_required(&*storage)).await,
            Ok(Ok(false))
        );
    axum::Json(
        json!({"role": "hub", "feed_len": feed_len, "version": env!("CARGO_PKG_VERSION"),
                      "open_without_login": open}),
    )
    .into_response()
}

/// Every store the hub has heard from: link state and how far behind it is.
/// Each store's link and sync lag (同步状态), as JSON, CSV or Excel.
#[utoipa::path(get, path = "/api/v1/stores", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object, description = "每个门店的链路与同步落后")))]
async fn stores(
    State(hq): State<Hq>,
    q: Result<Query<reports::FormatQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("the only parameter is format".into());
    };
    match hq.ingest.stores().await {
        Ok(rows) => reports::table_report(
            q.format.as_deref(),
            json!({"stores": rows}),
            "stores",
            &[
                ("store_id", "门店"),
                ("connected", "在线"),
                ("acked_seq", "总部已收"),
                ("log_len", "门店日志"),
                ("entries_behind", "落后条数"),
                ("seconds_behind", "落后秒数"),
            ],
        ),
        Err(e) => unavailable(e.to_string()),
    }
}

/// A whole catalogue import in one request (92k products is about 25 MB of JSON).
const CATALOGUE_BODY_MAX: usize = 96 * 1024 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangesBody {
    /// Each one `{"op": "upsert" | "deactivate" | "store_price" | "bundle" | ..., ...}`.
    #[schema(value_type = Vec<Object>)]
    changes: Vec<ChangeForm>,
}

fn catalogue_error(index: Option<usize>, e: CatalogueError) -> Response {
    let at = index.map_or(String::new(), |i| format!("change {i}: "));
    let (status, code, message) = match &e {
        CatalogueError::DuplicateBarcode { .. } => (
            StatusCode::CONFLICT,
            "duplicate_barcode",
            "条码已被其他商品使用",
        ),
        CatalogueError::UnknownSku(_) => (StatusCode::NOT_FOUND, "unknown_sku", "商品不存在"),
        CatalogueError::UnknownBarcode(_) => {
            (StatusCode::NOT_FOUND, "unknown_barcode", "条码不存在")
        }
        _ => (
            StatusCode::BAD_REQUEST,
            "invalid_change",
            "商品资料填写不正确",
        ),
    };
    error(status, code, message, format!("{at}{e}"))
}

/// 商品资料变更: headquarters' catalogue change set, checked as a whole and written as the next
/// catalogue version (every store sees all of it or none of it).
#[utoipa::path(post, path = "/api/v1/catalogue/changes", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = ChangesBody, description = "商品资料变更: a change set, all or nothing"), responses((status = 201, body = Object)))]
async fn change_catalogue(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<ChangesBody>, JsonRejection>,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, "invalid_change", "商品资料填写不正确"),
    };
    let mut changes = Vec::with_capacity(body.changes.len());
    for (i, form) in body.changes.into_iter().enumerate() {
        match form.into_change() {
            Ok(change) => changes.push(change),
            Err(e) => return catalogue_error(Some(i), e),
        }
    }
    match hq.ingest.change_catalogue(changes, staff).await {
        Ok(Ok(written)) => (StatusCode::CREATED, axum::Json(written)).into_response(),
        Ok(Err(e)) => catalogue_error(None, e),
        Err(e) => unavailable(e.to_string()),
    }
}

fn hub_views(storage: &dyn HubStore) -> crate::ingest::HubViews<'_> {
    crate::ingest::HubViews::reader(storage)
}

#[utoipa::path(get, path = "/api/v1/catalogue", responses((status = 200, body = Object)))]
async fn catalogue_version(State(hq): State<Hq>) -> Response {
    let views = hub_views(&*hq.storage);
    match inventory::read::<inventory::CatalogueVersion>(&views, inventory::keys::CATALOGUE_VERSION)
    {
        Ok(v) => axum::Json(json!({"version": v.unwrap_or_default().version})).into_response(),
        Err(e) => unavailable(e),
    }
}

fn product_json(views: &dyn ViewKv, sku: &Sku) -> Response {
    match inventory::product(views, sku) {
        Ok(Some(p)) => axum::Json(ProductForm::from_product(&p)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_sku",
            "商品不存在",
            format!("no product {sku}"),
        ),
        Err(e) => unavailable(e),
    }
}

#[utoipa::path(get, path = "/api/v1/products/{sku}", params(("sku" = String, Path)), responses((status = 200, body = Object)))]
async fn get_product(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let Ok(sku) = Sku::parse(&raw) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_sku",
            "商品编码不正确",
            raw,
        );
    };
    product_json(&hub_views(&*hq.storage), &sku)
}

#[derive(Deserialize)]
struct ProductQuery {
    barcode: String,
}

#[utoipa::path(get, path = "/api/v1/products", params(("barcode" = String, Query)), responses((status = 200, body = Object)))]
async fn lookup_product(
    State(hq): State<Hq>,
    q: Result<Query<ProductQuery>, QueryRejection>,
) -> Response {
    let code = match q.map(|Query(q)| Barcode::parse(&q.barcode)) {
        Ok(Ok(code)) => code,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_barcode",
                "条码格式不正确",
                "give ?barcode= with 4 to 20 digits".into(),
            );
        }
    };
    let views = hub_views(&*hq.storage);
    match inventory::sku_of_barcode(&views, &code) {
        Ok(Some(sku)) => product_json(&views, &sku),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_barcode",
            "条码不存在",
            format!("no product has barcode {code}"),
        ),
        Err(e) => unavailable(e),
    }
}

fn level_json(level: &inventory::StockLevel) -> serde_json::Value {
    json!({
        "store_id": level.store,
        "sku": level.sku,
        "on_hand": level.on_hand.to_string(),
        "low_stock": level.low_stock.map(|q| q.to_string()),
        "low": level.low,
        "negative": level.negative,
    })
}

#[derive(Deserialize)]
struct StockQuery {
    sku: String,
}

/// Chain-wide stock of one product: every store's, goods in transit, and the total.
#[utoipa::path(get, path = "/api/v1/stock", params(("sku" = String, Query)), responses((status = 200, body = Object)))]
async fn chain_stock(
    State(hq): State<Hq>,
    q: Result<Query<StockQuery>, QueryRejection>,
) -> Response {
    let Ok(Ok(sku)) = q.map(|Query(q)| Sku::parse(&q.sku)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_sku",
            "商品编码不正确",
            "give ?sku=".into(),
        );
    };
    let views = hub_views(&*hq.storage);
    if let Ok(None) = inventory::product(&views, &sku) {
        return product_json(&views, &sku);
    }
    // Stock and goods in transit are read apart; a transfer step landing between the two reads
    // would count its goods twice or not at all. Its batch also moves the feed's length, so read
    // again until the length did not move under us.
    let mut tries = 0;
    let (rows, total, in_transit) = loop {
        let before = hq.storage.feed_len().ok();
        let read = stock_and_transit(&*hq.storage, &views, &sku);
        tries += 1;
        match read {
            Ok(read) if hq.storage.feed_len().ok() == before || tries >= 10 => break read,
            Ok(_) => continue,
            Err(e) => return unavailable(e),
        }
    };
    axum::Json(json!({
        "sku": sku,
        "stores": rows,
        "in_transit": Qty(in_transit).to_string(),
        "total": Qty(total.saturating_add(in_transit)).to_string(),
    }))
    .into_response()
}

/// Every store's level of `sku` (those holding some or under their threshold), their total,
/// and the goods in transit.
fn stock_and_transit(
    storage: &dyn HubStore,
    views: &dyn ViewKv,
    sku: &Sku,
) -> Result<(Vec<serde_json::Value>, i64, i64), String> {
    let stores = storage.stores().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut total = 0i64;
    for (store, _, _) in stores.into_iter().filter(|(s, _, _)| *s != StoreId::hq()) {
        let level = inventory::level(views, &store, sku)?;
        if level.on_hand.0 != 0 || level.low {
            total = total.saturating_add(level.on_hand.0);
            rows.push(level_json(&level));
        }
    }
    Ok((rows, total, transfers_in_transit(storage, sku)?))
}

fn transfers_in_transit(storage: &dyn HubStore, sku: &Sku) -> Result<i64, String> {
    let mut total: i64 = 0;
    for (key, bytes) in storage
        .views(b"tr/", usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let transfer: Transfer = postcard::from_bytes(&bytes)
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&key)))?;
        for (_, q) in transfer.in_transit().iter().filter(|(s, _)| s == sku) {
            total = total.saturating_add(q.0);
        }
    }
    Ok(total)
}

#[derive(Deserialize)]
struct StoreStockQuery {
    /// "low" (at or under the threshold, 库存预警) or "negative".
    alerts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    /// The first seq to list (1 by default).
    from_seq: Option<u64>,
    /// At most this many (100 by default, 1,000 at most).
    limit: Option<usize>,
}

/// 日志查阅: a store's log as headquarters holds it, for an audit — each entry's seq, time,
/// business day, staff, request key, kind, what it did (the audit log's label where it is a
/// sensitive action), its hash, and whether it links to the entry before it.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/entries", params(("store_id" = String, Path), ("from_seq" = Option<i64>, Query, description = "1 or more"), ("limit" = Option<usize>, Query, description = "100 by default, 1,000 at most")), responses((status = 200, body = Object)))]
async fn store_entries(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> Response {
    let store = match store_in_path(&raw) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    let (from, limit) = match q {
        Ok(Query(q)) => (q.from_seq.unwrap_or(1).max(1), q.limit.unwrap_or(100)),
        Err(e) => return bad_query(e.body_text()),
    };
    if !(1..=1_000).contains(&limit) {
        return bad_query("limit is 1 to 1000".into());
    }
    if i64::try_from(from).is_err() {
        return bad_query("from_seq is a log position, 1 to 9223372036854775807".into());
    }
    // The entry before the first, to check the first link too.
    let start = from.saturating_sub(1).max(1);
    let (storage, of) = (hq.storage.clone(), store.clone());
    let read = tokio::task::spawn_blocking(move || storage.entries(&of, start, limit + 1)).await;
    let raw_entries = match read {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    };
    let mut prev = None;
    let mut rows = Vec::new();
    for bytes in raw_entries {
        let entry = match protocol::Entry::decode(&bytes) {
            Ok(e) => e,
            Err(e) => return unavailable(format!("a stored entry does not decode: {e}")),
        };
        let hash = protocol::EntryHash::of_encoded(&bytes);
        let linked = match prev {
            Some(p) => entry.prev_hash == p,
            None => entry.seq != 1 || entry.prev_hash == protocol::EntryHash::GENESIS,
        };
        prev = Some(hash);
        if entry.seq < from {
            continue;
        }
        let payload = serde_json::to_value(&entry.payload).unwrap_or_default();
        let kind = payload
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_else(|| payload.as_str().unwrap_or_default().to_owned());
        let action = protocol::audit::action(&entry);
        rows.push(json!({
            "seq": entry.seq, "recorded_at_ms": entry.hlc.wall_ms,
            "business_date": entry.business_date, "staff_id": entry.staff, "key": entry.tx,
            "kind": kind, "action": action.as_ref().map(|a| a.0),
            "detail": action.map(|a| a.1), "hash": hash.to_string(), "linked": linked,
        }));
    }
    rows.truncate(limit);
    axum::Json(json!({ "store_id": store, "entries": rows })).into_response()
}

/// One store's stock as headquarters holds it; `?alerts=low|negative` for what needs attention.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/stock", params(("store_id" = String, Path), ("alerts" = Option<String>, Query, description = "low or negative")), responses((status = 200, body = Object)))]
async fn store_stock(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    q: Result<Query<StoreStockQuery>, QueryRejection>,
) -> Response {
    let store = match store_in_path(&raw) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    let filter = match q.map(|Query(q)| q.alerts) {
        Ok(None) => None,
        Ok(Some(a)) if a == "low" || a == "negative" => Some(a),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "查询参数不正确",
                "alerts is low or negative".into(),
            );
        }
    };
    let views = hub_views(&*hq.storage);
    let prefix = inventory::keys::stock_prefix(&store);
    let cells = match hq.storage.views(&prefix, usize::MAX) {
        Ok(cells) => cells,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut rows = Vec::new();
    for (key, _) in cells {
        let Some(sku) = std::str::from_utf8(&key[prefix.len()..])
            .ok()
            .and_then(|s| Sku::parse(s).ok())
        else {
            continue;
        };
        let level = match inventory::level(&views, &store, &sku) {
            Ok(level) => level,
            Err(e) => return unavailable(e),
        };
        let keep = match filter.as_deref() {
            Some("low") => level.low,
            Some(_) => level.negative,
            None => true,
        };
        if keep {
            rows.push(level_json(&level));
        }
    }
    axum::Json(json!({"store_id": store, "stock": rows})).into_response()
}

fn transfer_refused(e: TransferRefused) -> Response {
    let (status, code, message) = match &e {
        TransferRefused::Unknown(_) => {
            (StatusCode::NOT_FOUND, "transfer_not_found", "调拨单不存在")
        }
        TransferRefused::UnknownSku(_) => (StatusCode::NOT_FOUND, "unknown_sku", "商品不存在"),
        TransferRefused::Step(TransferError::NotAllowed { .. }) => (
            StatusCode::CONFLICT,
            "transfer_not_allowed",
            "调拨单当前状态不允许此操作",
        ),
        TransferRefused::Step(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_transfer",
            "调拨单填写不正确",
        ),
        TransferRefused::Storage(d) => return unavailable(d.clone()),
    };
    error(status, code, message, e.to_string())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[schema(value_type = String, example = "S001")]
    from: StoreId,
    #[schema(value_type = String, example = "S002")]
    to: StoreId,
    lines: Vec<LineBody>,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LineBody {
    #[schema(value_type = String)]
    sku: Sku,
    /// A decimal string: "6", "1.250".
    #[schema(value_type = String, example = "6")]
    qty: Qty,
}

/// 调拨: headquarters moves goods between two stores (it approves its own request next).
#[utoipa::path(post, path = "/api/v1/transfers", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = TransferBody), responses((status = 201, body = Object)))]
async fn request_transfer(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<TransferBody>, JsonRejection>,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, "invalid_transfer", "调拨单填写不正确"),
    };
    let lines = body.lines.into_iter().map(|l| (l.sku, l.qty)).collect();
    let step = TransferStep::Requested {
        from: body.from,
        to: body.to,
        lines,
        note: body.note,
    };
    match hq.ingest.transfer_step(None, step, staff).await {
        Ok(Ok(t)) => (StatusCode::CREATED, axum::Json(t)).into_response(),
        Ok(Err(e)) => transfer_refused(e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StepBody {
    reason: Option<String>,
}

/// approve · reject (with a reason) · cancel (asks the source to cancel, with a reason).
#[utoipa::path(post, path = "/api/v1/transfers/{id}/{step}", params(("id" = String, Path), ("step" = String, Path, description = "approve, reject or cancel"), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = StepBody), responses((status = 201, body = Object)))]
async fn transfer_step(
    State(hq): State<Hq>,
    Path((raw, step)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let Ok(id) = DocId::parse(&raw) else {
        return error(StatusCode::BAD_REQUEST, "invalid_id", "单号格式不正确", raw);
    };
    let body: StepBody = match body.is_empty() {
        true => StepBody::default(),
        false => match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_transfer",
                    "调拨单填写不正确",
                    e.to_string(),
                );
            }
        },
    };
    let reason = body.reason.unwrap_or_default();
    let step = match step.as_str() {
        "approve" => TransferStep::Approved,
        "reject" => TransferStep::Rejected { reason },
        "cancel" => TransferStep::CancelRequested { reason },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "找不到该资源",
                format!("headquarters may approve, reject or cancel a transfer, not {other:?}"),
            );
        }
    };
    match hq.ingest.transfer_step(Some(id), step, staff).await {
        Ok(Ok(t)) => axum::Json(t).into_response(),
        Ok(Err(e)) => transfer_refused(e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}", params(("id" = String, Path)), responses((status = 200, body = Object)))]
async fn get_transfer(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let Ok(id) = DocId::parse(&raw) else {
        return error(StatusCode::BAD_REQUEST, "invalid_id", "单号格式不正确", raw);
    };
    match inventory::read::<Transfer>(&hub_views(&*hq.storage), &inventory::keys::transfer(&id)) {
        Ok(Some(t)) => axum::Json(t).into_response(),
        Ok(None) => transfer_refused(TransferRefused::Unknown(id)),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct TransfersQuery {
    /// requested · approved · shipped (in transit) · received · rejected · cancelled
    state: Option<String>,
}

/// The transfer queue (调拨单), optionally in one state.
#[utoipa::path(get, path = "/api/v1/transfers", params(("state" = Option<String>, Query, description = "requested, approved, shipped, received, rejected or cancelled")), responses((status = 200, body = Object)))]
async fn list_transfers(
    State(hq): State<Hq>,
    q: Result<Query<TransfersQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "查询参数不正确",
            "state=".into(),
        );
    };
    let records = match hq.storage.views(b"tr/", usize::MAX) {
        Ok(records) => records,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut out = Vec::new();
    for (key, bytes) in records {
        let t: Transfer = match postcard::from_bytes(&bytes) {
            Ok(t) => t,
            Err(e) => return unavailable(format!("{}: {e}", String::from_utf8_lossy(&key))),
        };
        let state = serde_json::to_value(t.state).unwrap_or_default();
        if q.state.as_deref().is_none_or(|s| state == s) {
            out.push(t);
        }
    }
    axum::Json(json!({"transfers": out})).into_response()
}

/// The longest hold an operator may place: 30 days.
const HOLD_SECONDS_MAX: u64 = 30 * 24 * 3600;
const REASON_CHARS_MAX: usize = 200;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    /// How long the store has to show a sign of life before it is fenced.
    seconds: u64,
    reason: String,
}

fn hold_error(e: HoldError) -> Response {
    let (status, code, message) = match &e {
        HoldError::UnknownStore(_) => (
            StatusCode::NOT_FOUND,
            "unknown_store",
            "门店不存在或从未同步",
        ),
        HoldError::Headquarters => (StatusCode::BAD_REQUEST, "invalid_store", "总部不能挂起"),
        HoldError::Online(_) => (StatusCode::CONFLICT, "store_online", "门店在线，无需挂起"),
        HoldError::AlreadyOnHold(_) => (StatusCode::CONFLICT, "already_on_hold", "门店已挂起"),
        HoldError::Fenced(_) => (StatusCode::CONFLICT, "store_fenced", "门店已冻结，不可撤销"),
        HoldError::NotOnHold(_) => (StatusCode::NOT_FOUND, "not_on_hold", "门店未挂起"),
        HoldError::TooSoon { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "hold_too_short",
            "门店可能仍在离线使用会员余额：挂起须持续到其离线期限结束之后，否则同一笔钱可能被花两次",
        ),
        HoldError::Ingest(e) => return unavailable(e.to_string()),
    };
    error(status, code, message, e.to_string())
}

/// The member id in a path, or the answer refusing it.
fn member_in_path(raw: &str) -> Result<MemberId, Box<Response>> {
    MemberId::parse(raw).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "编号格式不正确",
            e.to_string(),
        ))
    })
}

/// The operator named in `X-Staff-Id` (a login sets it), or `system` in the demo's open mode.
fn operator_or_system(headers: &HeaderMap) -> StaffId {
    headers
        .get("x-staff-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| StaffId::parse(v).ok())
        .unwrap_or_else(StaffId::system)
}

/// The operator named in `X-Staff-Id`, checked.
fn operator(headers: &HeaderMap) -> Result<StaffId, Box<Response>> {
    headers
        .get("x-staff-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| StaffId::parse(v).ok())
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "staff_required",
                "请填写操作员",
                "name the operator in the X-Staff-Id header".into(),
            ))
        })
}

/// The operator named in `X-Staff-Id` and the store in the path, checked.
fn operator_and_store(headers: &HeaderMap, raw: &str) -> Result<(StaffId, StoreId), Box<Response>> {
    Ok((operator(headers)?, store_in_path(raw)?))
}

/// The store a path names, checked.
fn store_in_path(raw: &str) -> Result<StoreId, Box<Response>> {
    StoreId::parse(raw).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_store",
            "门店编号不正确",
            e.to_string(),
        ))
    })
}

/// 挂起门店: puts a store that has gone quiet on hold. If it does not come back within
/// `seconds`, it is fenced and headquarters takes back every right it holds, so its members can
/// spend their balance elsewhere. Any connection from the store voids the hold.
#[utoipa::path(post, path = "/api/v1/stores/{store_id}/hold", params(("store_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = HoldBody), responses((status = 201, body = Object)))]
async fn hold_store(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<HoldBody>, JsonRejection>,
) -> Response {
    let (staff, store) = match operator_and_store(&headers, &raw) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let bad = |detail: String| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_hold",
            "挂起参数不正确",
            detail,
        )
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, "invalid_hold", "挂起参数不正确"),
    };
    if body.seconds == 0 || body.seconds > HOLD_SECONDS_MAX {
        return bad(format!("seconds is 1 to {HOLD_SECONDS_MAX}"));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
        return bad(format!(
            "a reason of 1 to {REASON_CHARS_MAX} characters is required"
        ));
    }
    let until_ms = crate::ingest::system_now_ms() + body.seconds * 1000;
    match hq
        .ingest
        .hold(
            store.clone(),
            until_ms,
            staff.to_string(),
            reason.to_owned(),
        )
        .await
    {
        Ok(fence) => axum::Json(json!({"store_id": store, "fence": fence})).into_response(),
        Err(e) => hold_error(e),
    }
}

/// 撤销挂起: voids a hold before it is posted.
#[utoipa::path(delete, path = "/api/v1/stores/{store_id}/hold", params(("store_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), responses((status = 200, body = Object)))]
async fn void_hold(State(hq): State<Hq>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    let (staff, store) = match operator_and_store(&headers, &raw) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    match hq.ingest.void_hold(store.clone(), staff.to_string()).await {
        Ok(()) => axum::Json(json!({"store_id": store, "fence": null})).into_response(),
        Err(e) => hold_error(e),
    }
}

/// A member as headquarters sees it; the phone is masked (HQ staff search, they do not dial).
fn member_json(record: MemberRecord) -> Response {
    let p = record.profile;
    axum::Json(json!({
        "member_id": record.member_id.to_string(),
        "name": p.name,
        "phone_masked": p.phone.masked(),
        "card_no": p.card_no,
        "tier": p.tier,
        "tags": p.tags,
        "notes": p.notes,
        "home_store": p.home_store,
        "join_date": p.join_date,
    }))
    .into_response()
}

fn found(record: Result<Option<MemberRecord>, crate::storage::HubStoreError>) -> Response {
    match record {
        Ok(Some(record)) => member_json(record),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "member_not_found",
            "会员不存在",
            "no such member".into(),
        ),
        Err(e) => unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/members/{member_id}", params(("member_id" = String, Path)), responses((status = 200, body = Object)))]
async fn get_member(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    match member_in_path(&raw) {
        Ok(id) => found(hq.storage.member(&id)),
        Err(refused) => *refused,
    }
}

#[derive(Deserialize)]
struct Lookup {
    phone: String,
}

#[utoipa::path(get, path = "/api/v1/members/lookup", params(("phone" = String, Query)), responses((status = 200, body = Object)))]
async fn lookup_member(State(hq): State<Hq>, q: Result<Query<Lookup>, QueryRejection>) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let phone = match Phone::parse(&q.phone) {
        Ok(phone) => phone,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_phone",
                "手机号格式不正确",
                e.to_string(),
            );
        }
    };
    match hq.storage.member_by_phone(&phone) {
        Ok(Some(id)) => found(hq.storage.member(&id)),
        Ok(None) => found(Ok(None)),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    q: String,
}

/// 会员搜索: up to 20 members of the whole chain by part of the name, the phone's last digits
/// or the card number, phones masked.
#[utoipa::path(get, path = "/api/v1/members/search", params(("q" = String, Query, description = "part of the name, the phone's last digits or the card number")), responses((status = 200, body = Object)))]
async fn search_members(
    State(hq): State<Hq>,
    q: Result<Query<Search>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q.q,
        Err(e) => return bad_query(e.body_text()),
    };
    let chars = q.trim().chars().count();
    if chars == 0 || chars > protocol::member::SEARCH_CHARS_MAX {
        return bad_query(
            "q: give 1 to 32 characters of a name, a phone's last digits or a card number".into(),
        );
    }
    let storage = hq.storage.clone();
    let found = tokio::task::spawn_blocking(move || {
        storage
            .search_members(&q, protocol::member::SEARCH_RESULTS_MAX)
            .map(|found| {
                found
                    .into_iter()
                    .map(|m| {
                        let p = m.profile;
                        json!({"member_id": m.member_id.to_string(), "name": p.name,
                           "phone_masked": p.phone.masked(), "card_no": p.card_no,
                           "tier": p.tier, "home_store": p.home_store})
                    })
                    .collect::<Vec<_>>()
            })
    })
    .await;
    match found {
        Ok(Ok(members)) => axum::Json(json!({ "members": members })).into_response(),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(e) => unavailable(e.to_string()),
    }
}

fn today() -> chrono::NaiveDate {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let now_ms = now.map(|d| d.as_millis() as u64).unwrap_or(0);
    StoreCalendar::default().business_date(now_ms)
}

fn fen(units: u64) -> Money {
    Money::cny(Fen(i64::try_from(units).unwrap_or(i64::MAX)))
}

/// A member's wallet as headquarters sees it, with where each counter's rights are held.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/wallet", params(("member_id" = String, Path)), responses((status = 200, body = Object)))]
async fn get_wallet(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let id = match member_in_path(&raw) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let wallet = match (hq.storage.member(&id), hq.storage.wallet(&id)) {
        (Ok(None), _) => return found(Ok(None)),
        (Ok(Some(_)), Ok(wallet)) => wallet.unwrap_or_default(),
        (Err(e), _) | (_, Err(e)) => return unavailable(e.to_string()),
    };
    let summary = wallet.summary(&StoreId::hq(), today(), &PointsPolicy::default());
    let rights: serde_json::Map<String, serde_json::Value> = wallet
        .counters
        .iter()
        .map(|(counter, r)| {
            let held: serde_json::Map<String, serde_json::Value> = r
                .replicas()
                .into_iter()
                .map(|s| (s.to_string(), json!(r.held(&s))))
                .filter(|(_, held)| held != &json!(0))
                .collect();
            (counter.to_string(), json!(held))
        })
        .collect();
    axum::Json(json!({
        "member_id": id.to_string(),
        "stored_value": {
            "total": Money::cny(Fen(summary.principal.0 + summary.bonus.0)),
            "principal": Money::cny(summary.principal),
            "bonus": Money::cny(summary.bonus),
        },
        "points": {"balance": summary.points, "lots": summary.lots},
        "cards": summary.cards,
        // Offline overdrafts and stored value a fenced store spent twice: what the member owes.
        "owed": Money::cny(summary.owed),
        "rights_held": rights,
    }))
    .into_response()
}

/// Outstanding stored value and points (负债): chain-wide, and per store what it issued
/// (credits taken there), redeemed (spent there) and holds the rights to now.
#[utoipa::path(get, path = "/api/v1/liabilities", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
async fn liabilities(
    State(hq): State<Hq>,
    q: Result<Query<reports::FormatQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("the only parameter is format".into());
    };
    let wallets = match hq.storage.wallets() {
        Ok(w) => w,
        Err(e) => return unavailable(e.to_string()),
    };
    #[derive(Default)]
    struct Row {
        issued: u64,
        redeemed: u64,
        held: u64,
    }
    // (family, store) → row; families: principal, bonus, points.
    let mut rows: BTreeMap<(&'static str, StoreId), Row> = BTreeMap::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut receivables: BTreeMap<StoreId, u64> = BTreeMap::new();
    // Stored value a fenced store spent twice (it had not heard of its fence): by store, and
    // the members who owe it.
    let mut fence_receivables: BTreeMap<StoreId, u64> = BTreeMap::new();
    let mut fence_members = Vec::new();
    let (today, policy) = (today(), PointsPolicy::default());
    let add = |cell: &mut u64, units: u64| *cell = cell.saturating_add(units);
    for (member, wallet) in &wallets {
        for store in wallet.owed.keys() {
            add(
                receivables.entry(store.clone()).or_default(),
                wallet.owed_at(store),
            );
        }
        for (store, units) in wallet.overspent_by() {
            add(fence_receivables.entry(store.clone()).or_default(), units);
            fence_members.push(json!({"store_id": store, "member_id": member, "owed": fen(units)}));
        }
        for (counter, r) in &wallet.counters {
            let family = match counter {
                Counter::Principal => "principal",
                Counter::Bonus => "bonus",
                Counter::Points { year } if policy.lot_alive(*year, today) => "points",
                _ => continue,
            };
            add(totals.entry(family).or_default(), r.balance());
            for store in r.replicas() {
                let row = rows.entry((family, store.clone())).or_default();
                add(&mut row.issued, r.transferred(&store, &store));
                add(&mut row.redeemed, r.debited(&store));
                add(&mut row.held, r.held(&store));
            }
        }
    }
    let stores: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|((family, store), row)| {
            let amount = |units| match family {
                "points" => json!(units),
                _ => json!(fen(units)),
            };
            json!({
                "store_id": store,
                "kind": family,
                "issued": amount(row.issued),
                "redeemed": amount(row.redeemed),
                "held": amount(row.held),
            })
        })
        .collect();
    let total = |family| totals.get(family).copied().unwrap_or(0);
    let body = json!({
        "members_with_wallets": wallets.len(),
        "stored_value": {
            "principal": fen(total("principal")),
            "bonus": fen(total("bonus")),
            "total": fen(total("principal").saturating_add(total("bonus"))),
        },
        "points": total("points"),
        "by_store": stores,
        // Offline overdrafts members still owe, by the store that allowed them (应收).
        "receivables": receivables
            .iter()
            .filter(|(_, owed)| **owed > 0)
            .map(|(store, owed)| json!({"store_id": store, "owed": fen(*owed)}))
            .collect::<Vec<_>>(),
        "receivables_total": fen(receivables.values().fold(0, |a, b| a.saturating_add(*b))),
        // Spent twice by a fenced store before it heard of its fence (应收: 冻结门店重复消费).
        "fence_receivables": fence_receivables
            .iter()
            .map(|(store, owed)| json!({"store_id": store, "owed": fen(*owed)}))
            .collect::<Vec<_>>(),
        "fence_receivables_total": fen(fence_receivables.values().fold(0, |a, b| a.saturating_add(*b))),
        "fence_receivable_members": fence_members,
    });
    reports::table_report(
        q.format.as_deref(),
        body,
        "by_store",
        &[
            ("store_id", "门店"),
            ("kind", "类型"),
            ("issued", "发放"),
            ("redeemed", "已用"),
            ("held", "本店持有"),
        ],
    )
}

#[derive(Deserialize)]
struct Period {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    /// "exclude" (default: bonus was given away, nobody is owed for it) or "include".
    bonus: Option<String>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// Cross-store settlement (跨店清分) for a period: who owes whom for stored value prepaid at
/// one store and spent at another, principal and bonus apart.
#[utoipa::path(get, path = "/api/v1/settlement", params(("from" = String, Query), ("to" = String, Query), ("bonus" = Option<String>, Query, description = "exclude (default) or include"), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
async fn settlement(State(hq): State<Hq>, q: Result<Query<Period>, QueryRejection>) -> Response {
    let bad = bad_query;
    let Ok(Query(q)) = q else {
        return bad("give from and to as YYYY-MM-DD".into());
    };
    let include_bonus = match q.bonus.as_deref() {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(other) => return bad(format!("bonus is exclude or include, not {other:?}")),
    };
    if q.to < q.from {
        return bad("the period ends before it starts".into());
    }
    let records = match hq.storage.feed(1, usize::MAX) {
        Ok(records) => records,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut book = Settlement::new(q.from, q.to);
    for (position, record) in records {
        // A stored entry that does not decode would leave the books short without a word.
        match protocol::Entry::decode(&record.entry) {
            Ok(entry) => book.take(&entry),
            Err(e) => {
                return unavailable(format!("the feed's entry {position} does not decode: {e}"));
            }
        }
    }
    let rows: Vec<serde_json::Value> = book
        .owed
        .iter()
        .map(|((payer, payee), owed)| {
            let due = owed.principal + if include_bonus { owed.bonus } else { 0 };
            json!({
                "payer": payer,
                "payee": payee,
                "principal": fen(owed.principal),
                "bonus": fen(owed.bonus),
                "due": fen(due),
            })
        })
        .collect();
    let body = json!({
        "from": q.from,
        "to": q.to,
        "bonus": if include_bonus { "include" } else { "exclude" },
        "owed": rows,
        "spent_where_prepaid": {"principal": fen(book.local.principal), "bonus": fen(book.local.bonus)},
        "unmatched": {"principal": fen(book.unmatched.principal), "bonus": fen(book.unmatched.bonus)},
    });
    reports::table_report(
        q.format.as_deref(),
        body,
        "owed",
        &[
            ("payer", "应付门店"),
            ("payee", "应收门店"),
            ("principal", "本金"),
            ("bonus", "赠送"),
            ("due", "应结算"),
        ],
    )
}
