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
use protocol::wallet::PointsPolicy;
use protocol::{DocId, Fen, MemberId, Money, Phone, Sku, StaffId, StoreId};
use serde::Deserialize;
use serde_json::json;

use crate::ingest::{HoldError, IngestHandle, TransferRefused};

mod backups;
mod card_rules;
mod catalogue;
mod doc;
mod error;
mod gifts;
mod import;
pub(crate) mod login;
mod marketing;
mod me;
mod members;
mod metrics;
mod money;
mod privacy;
mod referral;
mod reports;
mod rules;
mod shifts;
mod staff;
mod stock;
mod stores;
mod tiers;
mod transfers;
mod ui;
use crate::storage::{HubStore, MemberRecord};
use error::{ApiError, Code};

#[derive(Clone)]
struct Hq {
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
    sessions: Arc<protocol::session::Sessions>,
    /// The demo's and the tests' mode: open until an admin has a login (`Config`).
    open_before_logins: bool,
    /// The outbox's rules and texts (`[notify]`), shown on the outbox screen.
    notify: Option<Arc<crate::config::NotifyConfig>>,
    /// `GET /metrics`.
    metrics: metrics::HubMetrics,
    /// 备份.
    backups: Arc<crate::backup::Backups>,
    /// 会员导入 under way or done since this start.
    imports: import::Imports,
    /// 会员登录: sign-in codes and members' sessions.
    member_auth: Arc<crate::member_auth::MemberAuth>,
}

pub fn router(
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
    http_names: Vec<String>,
    open_before_logins: bool,
    notify: Option<crate::config::NotifyConfig>,
    backups: Arc<crate::backup::Backups>,
) -> Router {
    let hq = Hq {
        metrics: metrics::HubMetrics::new(&ingest.metrics),
        ingest,
        storage,
        sessions: Default::default(),
        open_before_logins,
        notify: notify.map(Arc::new),
        backups,
        imports: Default::default(),
        member_auth: Default::default(),
    };
    Router::new()
        .route("/", get(ui::index))
        .route("/m", get(ui::member_page))
        .route("/ui/{file}", get(ui::asset))
        .route("/openapi.json", get(doc::openapi))
        .route("/api/v1/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/sessions", post(login::login).delete(login::logout))
        .route("/api/v1/stores", get(stores::stores))
        .route("/api/v1/me", get(me::me))
        .route("/api/v1/me/codes", post(me::request_code))
        .route(
            "/api/v1/me/sessions",
            post(me::sign_in).delete(me::sign_out),
        )
        .route("/api/v1/me/code", get(me::member_code))
        .route("/api/v1/me/password", axum::routing::put(me::set_password))
        .route(
            "/api/v1/me/gifts",
            get(gifts::my_gifts).post(gifts::redeem_mine),
        )
        .route("/api/v1/backups", get(backups::list).post(backups::take))
        .route(
            "/api/v1/stores/{store_id}/hold",
            post(stores::hold_store).delete(stores::void_hold),
        )
        .route(
            "/api/v1/stores/{store_id}/revoke",
            post(stores::revoke_store),
        )
        .route("/api/v1/members/lookup", get(members::lookup_member))
        .route("/api/v1/members/search", get(members::search_members))
        .route("/api/v1/members/{member_id}", get(members::get_member))
        .route(
            "/api/v1/members/{member_id}/wallet",
            get(members::get_wallet),
        )
        .route(
            "/api/v1/members/{member_id}/export",
            get(privacy::export_member),
        )
        .route(
            "/api/v1/members/{member_id}/erase",
            post(privacy::erase_member),
        )
        .route("/api/v1/members/import", post(import::import_members))
        .route("/api/v1/members/tags", post(members::tag_members))
        .route("/api/v1/members/imports/{id}", get(import::import_progress))
        .route(
            "/api/v1/members/{member_id}/card/lost",
            post(privacy::card_lost),
        )
        .route("/api/v1/liabilities", get(money::liabilities))
        .route(
            "/api/v1/staff",
            get(staff::list_staff).post(staff::change_staff),
        )
        .route(
            "/api/v1/staff/{staff_id}/password",
            axum::routing::put(staff::set_secret),
        )
        .route("/api/v1/audit", get(staff::audit))
        .route("/api/v1/shifts", get(shifts::shifts))
        .route(
            "/api/v1/commission-rules",
            get(staff::list_rules).put(staff::set_rules),
        )
        .route("/api/v1/commissions", get(staff::commissions))
        .route(
            "/api/v1/member-rules",
            get(rules::get_rules).put(rules::set_rules),
        )
        .route("/api/v1/tiers", get(tiers::get_tiers).put(tiers::set_tiers))
        .route(
            "/api/v1/card-rules",
            get(card_rules::get_rules).put(card_rules::set_rules),
        )
        .route("/api/v1/gifts", get(gifts::get_gifts).put(gifts::set_gifts))
        .route("/api/v1/reports/gifts", get(gifts::gift_report))
        .route(
            "/api/v1/referral-rules",
            get(referral::get_rules).put(referral::set_rules),
        )
        .route("/api/v1/reports/referrals", get(referral::report))
        .route("/api/v1/tiers/review", post(tiers::review))
        .route("/api/v1/reports/sales", get(reports::sales))
        .route("/api/v1/reports/members", get(reports::members))
        .route(
            "/api/v1/catalogue/changes",
            post(catalogue::change_catalogue)
                .layer(DefaultBodyLimit::max(catalogue::CATALOGUE_BODY_MAX)),
        )
        .route("/api/v1/catalogue", get(catalogue::catalogue_version))
        .route("/api/v1/catalogue/products", get(catalogue::list_products))
        .route("/api/v1/catalogue/bundles", get(catalogue::list_bundles))
        .route(
            "/api/v1/catalogue/store-prices",
            get(catalogue::list_store_prices),
        )
        .route("/api/v1/products", get(catalogue::lookup_product))
        .route("/api/v1/products/{sku}", get(catalogue::get_product))
        .route("/api/v1/stock", get(stock::chain_stock))
        .route("/api/v1/stores/{store_id}/stock", get(stock::store_stock))
        .route(
            "/api/v1/stores/{store_id}/entries",
            get(stores::store_entries),
        )
        .route(
            "/api/v1/transfers",
            get(transfers::list_transfers).post(transfers::request_transfer),
        )
        .route("/api/v1/transfers/{id}", get(transfers::get_transfer))
        .route(
            "/api/v1/transfers/{id}/{step}",
            post(transfers::transfer_step),
        )
        .route("/api/v1/settlement", get(money::settlement))
        .route("/api/v1/marketing", get(marketing::overview))
        .route("/api/v1/outbox", get(marketing::outbox))
        .route(
            "/api/v1/marketing/templates",
            axum::routing::put(marketing::put_template),
        )
        .route(
            "/api/v1/marketing/segments",
            axum::routing::put(marketing::put_segment),
        )
        .route(
            "/api/v1/marketing/segments/count",
            post(marketing::count_segment),
        )
        .route(
            "/api/v1/marketing/campaigns",
            axum::routing::put(marketing::put_campaign),
        )
        .route(
            "/api/v1/marketing/campaigns/{id}/run",
            post(marketing::run_campaign),
        )
        .route(
            "/api/v1/marketing/campaigns/{id}/report",
            get(marketing::campaign_report),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            hq.metrics.all.clone(),
            crate::metrics::track,
        ))
        .fallback(|| async { Code::NotFound.answer("no such route") })
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
        false => Code::HostNotAllowed.answer(format!(
            "Host {host:?} is not headquarters': add it to http_names in hub.toml"
        )),
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
        let body = doc::ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
            detail: detail.to_owned(),
            field: None,
        };
        response = (status, axum::Json(body)).into_response();
    }
    for (name, value) in protocol::web::SECURITY_HEADERS {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}

/// A body that is not the route's JSON: 413 when it is over the route's limit, else 400 with
/// the route's own code.
fn body_refused(e: JsonRejection, code: Code) -> Response {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge.answer(e.body_text()),
        _ => code.answer(e.body_text()),
    }
}

fn bad_query(detail: String) -> Response {
    Code::InvalidQuery.answer(detail)
}

fn unavailable(detail: String) -> Response {
    Code::Unavailable.answer(detail)
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

/// The member id in a path, or the answer refusing it.
fn member_in_path(raw: &str) -> Result<MemberId, Box<Response>> {
    MemberId::parse(raw).map_err(|e| Box::new(Code::InvalidId.answer(e)))
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
            Box::new(Code::StaffRequired.answer("name the operator in the X-Staff-Id header"))
        })
}

/// The operator named in `X-Staff-Id` and the store in the path, checked.
fn operator_and_store(headers: &HeaderMap, raw: &str) -> Result<(StaffId, StoreId), Box<Response>> {
    Ok((operator(headers)?, store_in_path(raw)?))
}

/// The store a path names, checked.
fn store_in_path(raw: &str) -> Result<StoreId, Box<Response>> {
    StoreId::parse(raw).map_err(|e| Box::new(Code::InvalidStore.answer(e)))
}

fn today() -> chrono::NaiveDate {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let now_ms = now.map(|d| d.as_millis() as u64).unwrap_or(0);
    StoreCalendar::default().business_date(now_ms)
}

fn fen(units: u64) -> Money {
    Money::cny(Fen(i64::try_from(units).unwrap_or(i64::MAX)))
}

fn hub_views(storage: &dyn HubStore) -> crate::ingest::HubViews<'_> {
    crate::ingest::HubViews::reader(storage)
}

/// A read of headquarters' storage, run off the async threads (sled blocks on disk); a
/// storage error answers `unavailable`.
async fn read<T: Send + 'static, E: std::fmt::Display>(
    hq: &Hq,
    f: impl FnOnce(&dyn HubStore) -> Result<T, E> + Send + 'static,
) -> Result<T, Response> {
    let storage = hq.storage.clone();
    match tokio::task::spawn_blocking(move || f(&*storage).map_err(|e| e.to_string())).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(e) => Err(unavailable(e.to_string())),
    }
}

/// A whole answer worked out from headquarters' storage, off the async threads.
async fn answer_from(
    hq: &Hq,
    f: impl FnOnce(&dyn HubStore) -> Response + Send + 'static,
) -> Response {
    let storage = hq.storage.clone();
    tokio::task::spawn_blocking(move || f(&*storage))
        .await
        .unwrap_or_else(|e| unavailable(e.to_string()))
}
