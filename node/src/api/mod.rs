//! The cashier HTTP API (JSON over HTTP on the store's own PC). Reads go straight to the views;
//! every write goes to the journal with its `Idempotency-Key`.

mod checkout;
mod dto;
pub mod error;
mod inventory;
mod login;
mod reports;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use protocol::member::ProfilePatch;
use protocol::points::Points;
use protocol::sale::{PayWith, QuickSaleRequest};
use protocol::wallet::{CardId, CardKind, Summary};
use protocol::{CardNo, MemberId, Money, Phone, SaleId, StaffId, TxId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use utoipa::OpenApi;

pub use dto::*;
use error::{ApiError, Code, ErrorBody};

use crate::journal::{
    Command, Control, JournalHandle, MemberEdit, NewMember, Outcome, Reply, Request, Settings,
    WalletAction, WalletRequest,
};
use crate::journal::{Rejection, SaleReturn};
use crate::openapi::ErrorStatuses;
use crate::password::{self, PasswordError};
use crate::uplink::{AskRequest, Link};
use crate::views::Views;
use protocol::sync::{Ask, AskAnswer};
use protocol::wallet::WalletError;

/// Bodies over this size are refused before parsing.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// The most sales one listing returns.
pub const SALES_LIMIT_MAX: usize = 10_000;

pub struct AppState {
    pub journal: JournalHandle,
    pub sync: tokio::sync::watch::Receiver<crate::uplink::SyncStatus>,
    pub views: Views,
    pub settings: Settings,
    pub store_name: String,
    /// Staff who may reset a payment password.
    pub managers: Vec<StaffId>,
    /// Payment-password tries being checked now (`password::Tries`).
    pub tries: password::Tries,
    /// Staff sessions (登录), and how long one lasts.
    pub sessions: protocol::session::Sessions,
    pub session_ms: u64,
    /// Where to ask headquarters for rights; `None` when the store runs without a hub.
    pub asks: Option<tokio::sync::mpsc::Sender<AskRequest>>,
    /// The offline lease (`None` without a hub): member rights stop when it runs out.
    pub lease: Option<std::sync::Arc<crate::lease::Lease>>,
    /// The chain's time here (the PC's, corrected by headquarters').
    pub clock: crate::clock::ChainClock,
    /// Host names the till may be reached by besides IP addresses and localhost.
    pub http_names: Vec<String>,
    /// The demo's mode: open until anyone who may log in here has a login (`Config`).
    pub open_before_logins: bool,
}

/// How long a till waits for headquarters to move rights here before it is told to take
/// another tender.
const RIGHTS_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

impl AppState {
    /// Why this store may not spend member rights now, if it may not: fenced by headquarters,
    /// or cut off for longer than its lease.
    pub fn rights_paused(&self) -> Result<Option<ApiError>, ApiError> {
        if self.views.fenced(&self.settings.store_id)?.is_some() {
            return Ok(Some(ApiError::new(
                Code::StoreFenced,
                "headquarters fenced this store and took back the member rights it held: \
                 stored value, points, cards and coupons stop here; cash sales go on",
            )));
        }
        Ok(self
            .lease
            .as_ref()
            .filter(|lease| lease.gate.is_shut())
            .map(|lease| {
                ApiError::new(
                    Code::OfflineTooLong,
                    format!(
                        "no word from headquarters for over {} s (last heard at {} ms): member \
                         rights resume when the link is back",
                        lease.lease_ms() / 1000,
                        lease.last_heard_ms()
                    ),
                )
            }))
    }

    fn today(&self) -> NaiveDate {
        self.settings.calendar.business_date(self.clock.now_ms())
    }

    /// The settings in force: the file's, with headquarters' member rules adopted as the journal
    /// adopts them (so a quote says what the sale will be, and the overdraft policy is the
    /// journal's).
    fn settings_now(&self) -> Result<Settings, ApiError> {
        let mut settings = self.settings.clone();
        if let Some(published) = self.views.chain_rules()? {
            settings.adopt(&published.rules);
        }
        Ok(settings)
    }

    fn summary(&self, member: &MemberId) -> Result<Summary, ApiError> {
        let wallet = self.views.wallet(member)?;
        let policy = self.settings.wallet.points;
        Ok(wallet.summary(&self.settings.store_id, self.today(), &policy))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Store node cashier API (门店收银接口)", version = "1"),
    paths(
        health,
        sync_status,
        member_rules,
        search_members,
        register_member,
        get_member,
        edit_member,
        lookup_member,
        member_sales,
        quick_checkout,
        get_sale,
        return_sale,
        get_wallet,
        top_up,
        adjust_points,
        sell_card,
        use_card,
        refund,
        set_password,
        checkout::quote,
        checkout::item_checkout,
        checkout::issue_coupon,
        checkout::list_coupons,
        checkout::receipt,
        checkout::hold_order,
        checkout::held_orders,
        checkout::held_order,
        checkout::void_order,
        inventory::catalogue_version,
        inventory::get_product,
        inventory::lookup_product,
        inventory::store_stock,
        inventory::stock_of,
        inventory::receive_goods,
        inventory::write_off,
        inventory::open_stocktake,
        inventory::count_stocktake,
        inventory::request_transfer,
        inventory::ship_transfer,
        inventory::cancel_transfer,
        inventory::receive_transfer,
        inventory::get_transfer,
        inventory::list_transfers,
        reports::sales,
        reports::members,
        login::login,
        login::logout
    ),
    components(schemas(ErrorBody, MoneySchema)),
    modifiers(&ErrorStatuses)
)]
pub struct ApiDoc;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/sync", get(sync_status))
        .route("/api/v1/member-rules", get(member_rules))
        .route("/api/v1/sessions", post(login::login).delete(login::logout))
        .route("/api/v1/members", post(register_member))
        .route("/api/v1/members/lookup", get(lookup_member))
        .route("/api/v1/members/search", get(search_members))
        .route(
            "/api/v1/members/{member_id}",
            get(get_member).patch(edit_member),
        )
        .route("/api/v1/members/{member_id}/sales", get(member_sales))
        .route("/api/v1/members/{member_id}/wallet", get(get_wallet))
        .route("/api/v1/members/{member_id}/top-ups", post(top_up))
        .route("/api/v1/members/{member_id}/points", post(adjust_points))
        .route("/api/v1/members/{member_id}/cards", post(sell_card))
        .route(
            "/api/v1/members/{member_id}/cards/{card_id}/uses",
            post(use_card),
        )
        .route("/api/v1/members/{member_id}/refunds", post(refund))
        .route(
            "/api/v1/members/{member_id}/password",
            axum::routing::put(set_password),
        )
        .route("/api/v1/checkouts/quick", post(quick_checkout))
        .route("/api/v1/checkouts/quote", post(checkout::quote))
        .route("/api/v1/checkouts/items", post(checkout::item_checkout))
        .route(
            "/api/v1/orders/held",
            get(checkout::held_orders).post(checkout::hold_order),
        )
        .route("/api/v1/orders/held/{order_id}", get(checkout::held_order))
        .route(
            "/api/v1/orders/held/{order_id}/void",
            post(checkout::void_order),
        )
        .route(
            "/api/v1/members/{member_id}/coupons",
            get(checkout::list_coupons).post(checkout::issue_coupon),
        )
        .route("/api/v1/sales/{sale_id}", get(get_sale))
        .route("/api/v1/sales/{sale_id}/returns", post(return_sale))
        .route("/api/v1/sales/{sale_id}/receipt", get(checkout::receipt))
        .route("/api/v1/reports/sales", get(reports::sales))
        .route("/api/v1/reports/members", get(reports::members))
        .route("/api/v1/catalogue", get(inventory::catalogue_version))
        .route("/api/v1/products", get(inventory::lookup_product))
        .route("/api/v1/products/{sku}", get(inventory::get_product))
        .route("/api/v1/stock", get(inventory::store_stock))
        .route("/api/v1/stock/receipts", post(inventory::receive_goods))
        .route("/api/v1/stock/damages", post(inventory::write_off))
        .route("/api/v1/stock/{sku}", get(inventory::stock_of))
        .route("/api/v1/stocktakes", post(inventory::open_stocktake))
        .route(
            "/api/v1/stocktakes/{id}/counts",
            post(inventory::count_stocktake),
        )
        .route(
            "/api/v1/transfers",
            get(inventory::list_transfers).post(inventory::request_transfer),
        )
        .route("/api/v1/transfers/{id}", get(inventory::get_transfer))
        .route(
            "/api/v1/transfers/{id}/ship",
            post(inventory::ship_transfer),
        )
        .route(
            "/api/v1/transfers/{id}/cancel",
            post(inventory::cancel_transfer),
        )
        .route(
            "/api/v1/transfers/{id}/receive",
            post(inventory::receive_transfer),
        )
        .fallback(|| async { ApiError::new(Code::NotFound, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login::guard,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.http_names.clone()),
            web_guard,
        ))
        .with_state(state)
}

/// Every request: its Host must be this store's (`protocol::web`: no DNS rebinding of a till);
/// every answer: the security headers.
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
        false => ApiError::new(
            Code::HostNotAllowed,
            format!("Host {host:?} is not this store's: add it to http_names in node.toml"),
        )
        .into_response(),
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

type AppResult = Result<Response, ApiError>;
type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// A query string that does not parse gets our error shape, not axum's plain text.
fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::new(Code::InvalidQuery, e.body_text()))
}

/// The raw body, refused with our own error shape when over [`BODY_BYTES_MAX`].
struct Body(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    Code::PayloadTooLarge,
                    format!("bodies are limited to {BODY_BYTES_MAX} bytes"),
                ),
                _ => ApiError::new(Code::InvalidRequest, e.body_text()),
            })
    }
}
type St = State<Arc<AppState>>;

async fn openapi() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(Code::InvalidRequest, e),
        _ => ApiError::new(Code::MalformedJson, e),
    })
}

/// The idempotency key, the staff member and a fingerprint of what is asked.
fn request_meta(
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
) -> Result<(TxId, [u8; 32], StaffId), ApiError> {
    let key = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::new(
            Code::IdempotencyKeyMissing,
            "every write needs an Idempotency-Key header",
        )
    })?;
    let key = key
        .to_str()
        .map_err(|_| ApiError::new(Code::InvalidId, "Idempotency-Key must be ASCII"))?;
    let key = TxId::parse(key).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let staff = match headers.get("x-staff-id").map(|v| v.to_str()) {
        None => StaffId::system(),
        Some(Ok(s)) => StaffId::parse(s).map_err(|e| ApiError::new(Code::InvalidId, e))?,
        Some(Err(_)) => return Err(ApiError::new(Code::InvalidId, "X-Staff-Id must be ASCII")),
    };
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update([0]);
    hash.update(staff.as_str().as_bytes());
    hash.update([0]);
    hash.update(body);
    Ok((key, hash.finalize().into(), staff))
}

fn member_id(raw: &str) -> Result<MemberId, ApiError> {
    MemberId::parse(raw).map_err(|e| ApiError::new(Code::InvalidId, e))
}

fn phone(raw: &str) -> Result<Phone, ApiError> {
    Phone::parse(raw).map_err(|e| ApiError::new(Code::InvalidPhone, e).on("phone"))
}

fn card(raw: &str) -> Result<CardNo, ApiError> {
    CardNo::parse(raw).map_err(|e| ApiError::new(Code::FieldInvalid, e).on("card_no"))
}

/// A CNY amount in fen, zero or more.
fn cny_fen(money: &Money) -> Result<protocol::Fen, ApiError> {
    if money.currency != protocol::Currency::CNY {
        return Err(ApiError::new(
            Code::CurrencyNotAccepted,
            format!("amounts here are CNY, not {}", money.currency),
        ));
    }
    match money.to_fen() {
        Ok(fen) if fen.0 >= 0 => Ok(fen),
        Ok(fen) => Err(ApiError::new(
            Code::InvalidAmount,
            format!("{fen} is negative"),
        )),
        Err(e) => Err(ApiError::new(Code::InvalidAmount, e)),
    }
}

fn money(value: serde_json::Value) -> Result<Money, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::new(Code::InvalidAmount, e))
}

fn answer(status: StatusCode, reply: Reply) -> Response {
    let body = match reply.outcome {
        Outcome::Member { member, points } => {
            axum::Json(MemberOut::new(member, points)).into_response()
        }
        Outcome::Sale { sale, wallet } => {
            axum::Json(SaleOut::new(sale, wallet.as_ref())).into_response()
        }
        Outcome::Wallet {
            member_id,
            seq,
            wallet,
        } => axum::Json(WalletOut::new(member_id, wallet, seq)).into_response(),
        Outcome::FeedApplied { upto } => {
            axum::Json(serde_json::json!({ "feed_applied": upto })).into_response()
        }
        Outcome::Holding(holding) => axum::Json(holding).into_response(),
        Outcome::Stock(stock) => axum::Json(serde_json::json!({
            "seq": stock.seq,
            "document": stock.document,
            "stock": stock.levels.iter().map(|(sku, on_hand, low)| serde_json::json!({
                "sku": sku, "on_hand": on_hand.to_string(), "low": low,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Outcome::Transfer(transfer) => axum::Json(transfer).into_response(),
        Outcome::ItemSale { sale, wallet } => {
            axum::Json(checkout::item_sale_json(&sale, wallet.as_ref())).into_response()
        }
        Outcome::Held(held) => axum::Json(checkout::held_plain(&held)).into_response(),
        Outcome::Voided { order_id } => {
            axum::Json(serde_json::json!({ "voided": order_id })).into_response()
        }
        // The journal reads the member afresh before it answers from a record.
        Outcome::MemberRecorded { member_id, .. } => {
            axum::Json(serde_json::json!({ "member_id": member_id })).into_response()
        }
    };
    let mut response = (status, body).into_response();
    if reply.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = HealthOut)))]
async fn health(State(app): St) -> AppResult {
    let log_entries = app.views.log_length(app.settings.store_id.as_str())?;
    Ok(axum::Json(HealthOut {
        store_id: app.settings.store_id.to_string(),
        store_name: app.store_name.clone(),
        log_entries,
        version: env!("CARGO_PKG_VERSION"),
        open_without_login: !login::logins_required(&app)?,
    })
    .into_response())
}

/// The link to headquarters: online or not, entries waiting to sync, last successful sync.
#[utoipa::path(get, path = "/api/v1/sync", responses((status = 200, description = "sync status")))]
async fn sync_status(State(app): St) -> AppResult {
    let mut status = app.sync.borrow().clone();
    status.log_len = status
        .log_len
        .max(app.views.log_length(app.settings.store_id.as_str())?);
    status.backlog = status.log_len.saturating_sub(status.acked_seq);
    let paused = app.rights_paused()?;
    let mut body =
        serde_json::to_value(&status).map_err(|e| ApiError::new(Code::Storage, e.to_string()))?;
    // How far this PC's clock is off headquarters' (corrected while it knows), for the till.
    body["clock_off_ms"] = serde_json::json!(app.clock.correction_ms());
    // Why member rights are paused here (fenced, or offline past the lease), for the till.
    body["rights_paused"] = match paused {
        Some(e) => serde_json::json!({"code": e.code.as_str(), "message": e.detail}),
        None => serde_json::Value::Null,
    };
    Ok(axum::Json(body).into_response())
}

/// 会员规则: the points rates and multipliers, top-up bonus rules, tier discounts and offline
/// overdraft policy this store applies — headquarters' (`source` "headquarters", with when and
/// by whom) once published, else this store's `node.toml`.
#[utoipa::path(get, path = "/api/v1/member-rules", responses((status = 200, description = "member rules")))]
async fn member_rules(State(app): St) -> AppResult {
    let published = app.views.chain_rules()?;
    let rules = app.settings_now()?.rules();
    Ok(axum::Json(serde_json::json!({
        "source": if published.is_some() { "headquarters" } else { "node.toml" },
        "published_at_ms": published.as_ref().map(|p| p.at.wall_ms),
        "staff": published.as_ref().map(|p| p.staff.to_string()),
        "rules": protocol::rules::RulesForm::of(&rules),
    }))
    .into_response())
}

/// Registers a member (会员注册).
#[utoipa::path(post, path = "/api/v1/members", request_body = NewMemberBody,
    params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"),
           ("X-Staff-Id" = Option<String>, Header, description = "who served")),
    responses((status = 201, body = MemberOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register_member(State(app): St, headers: HeaderMap, Body(body): Body) -> AppResult {
    let (key, fingerprint, staff) = request_meta(&headers, "register_member", &body)?;
    let b: NewMemberBody = parse_body(&body)?;
    // A tier other than the chain's first at registration is a discount given, like a change.
    if let Some(tier) = &b.tier {
        let first = app.settings_now()?.default_tier;
        check_tier_change(&app, Some(&first), &staff, tier)?;
    }
    let new = NewMember {
        name: b.name,
        phone: phone(&b.phone)?,
        card_no: b.card_no.as_deref().map(card).transpose()?,
        birthday: b.birthday,
        gender: b.gender.unwrap_or_default(),
        tags: b.tags,
        notes: b.notes,
        tier: b.tier,
        custom: b.custom,
        referrer: b.referrer.as_deref().map(member_id).transpose()?,
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
async fn get_member(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = member_id(&raw)?;
    member_answer(&app, id)
}

fn member_answer(app: &AppState, id: MemberId) -> AppResult {
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
async fn edit_member(
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
        tier: b.tier,
        custom_set: b.custom_set,
        custom_remove: b.custom_remove,
    };
    if let Some(tier) = &patch.tier {
        let current = app.views.member(&id)?.map(|m| m.profile.tier);
        check_tier_change(&app, current.as_deref(), &staff, tier)?;
    }
    let edit = MemberEdit {
        member_id: id,
        patch,
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

#[derive(Deserialize, utoipa::IntoParams)]
struct LookupQuery {
    /// Phone number (忘带会员卡: look up by phone).
    phone: Option<String>,
    /// Membership card number.
    card: Option<String>,
}

/// Finds a member by phone or card number.
#[utoipa::path(get, path = "/api/v1/members/lookup", params(LookupQuery),
    responses((status = 200, body = MemberOut), (status = 404, body = ErrorBody)))]
async fn lookup_member(State(app): St, q: QueryResult<LookupQuery>) -> AppResult {
    let q = query(q)?;
    let found = match (&q.phone, &q.card) {
        (Some(p), None) => app.views.member_by_phone(&phone(p)?)?,
        (None, Some(c)) => app.views.member_by_card(&card(c)?)?,
        _ => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "give exactly one of phone or card",
            ));
        }
    };
    let id = found
        .ok_or_else(|| ApiError::new(Code::MemberNotFound, "no member with that phone or card"))?;
    member_answer(&app, id)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    /// Part of the name, the phone's last 4 or more digits, or the card number.
    q: String,
}

/// 会员搜索: up to 20 members by part of the name, the phone's last digits or the card number,
/// phones masked (138****1234).
#[utoipa::path(get, path = "/api/v1/members/search", params(SearchQuery),
    responses((status = 200, description = "members found"), (status = 400, body = ErrorBody)))]
async fn search_members(State(app): St, q: QueryResult<SearchQuery>) -> AppResult {
    let q = query(q)?;
    let chars = q.q.trim().chars().count();
    if chars == 0 || chars > protocol::member::SEARCH_CHARS_MAX {
        return Err(ApiError::new(
            Code::InvalidQuery,
            "q: give 1 to 32 characters of a name, a phone's last digits or a card number",
        ));
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

#[derive(Deserialize, utoipa::IntoParams)]
struct ListQuery {
    /// At most this many, newest first (default 50, at most 10000).
    limit: Option<usize>,
}

/// A member's sales, newest first.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/sales", params(("member_id" = String, Path), ListQuery),
    responses((status = 200, body = SaleListOut), (status = 404, body = ErrorBody)))]
async fn member_sales(
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
            crate::views::AnySale::Items(s) => Ok(checkout::item_sale_json(&s, None)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(Code::Storage, e))?;
    Ok(axum::Json(SaleListOut {
        member_id: id.to_string(),
        sales,
    })
    .into_response())
}

/// Quick checkout (快速消费): an amount, optionally a member, paid in cash.
#[utoipa::path(post, path = "/api/v1/checkouts/quick", request_body = QuickCheckoutBody,
    params(("Idempotency-Key" = String, Header), ("X-Staff-Id" = Option<String>, Header)),
    responses((status = 201, body = SaleOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn quick_checkout(State(app): St, headers: HeaderMap, Body(body): Body) -> AppResult {
    let b: QuickCheckoutBody = parse_body(&body)?;
    let (key, fingerprint, staff) =
        request_meta(&headers, "quick_checkout", &without_password(&body))?;
    let request = QuickSaleRequest {
        member_id: b.member_id.as_deref().map(member_id).transpose()?,
        amount: money(b.amount)?,
        category: b.category,
        cash_tendered: b.cash_tendered.map(money).transpose()?,
        pay_with: b.pay_with.unwrap_or_default(),
        offline_overdraft: false,
    };
    if let (PayWith::StoredValue, Some(member)) = (request.pay_with, request.member_id) {
        check_password(&app, member, &staff, b.password).await?;
    }
    let member = request.member_id;
    let mut request = Request {
        key,
        fingerprint,
        staff,
        body: request,
    };
    let key = request.key.clone();
    let reply = match spend(&app, member, &key, || {
        Command::QuickCheckout(request.clone())
    })
    .await
    {
        // Headquarters cannot be reached, or the store holding the rights cannot: the chain's
        // offline overdraft policy decides, and may want a store manager at the till (a
        // cashier is asked to call one). So does a store cut off past its lease (a fenced one
        // lends nothing).
        Err(e) if overdraft_applies(&app, e.code) => {
            let needs_manager = app.settings_now()?.wallet.overdraft_needs_manager;
            if needs_manager && !is_manager(&app, &request.staff) {
                return Err(ApiError::new(
                    Code::ManagerRequired,
                    "the balance cannot be reached now and an offline overdraft needs a store \
                     manager at the till: log in as the manager and take the payment again",
                ));
            }
            request.body.offline_overdraft = true;
            app.journal.send(Command::QuickCheckout(request)).await?
        }
        other => other?,
    };
    Ok(answer(StatusCode::CREATED, reply))
}

/// 会员等级: a change of tier is a discount, so it needs a store manager (or the store's own
/// operator, `system`, at a till without logins), and only the chain's tiers are given.
fn check_tier_change(
    app: &AppState,
    current: Option<&str>,
    staff: &StaffId,
    tier: &str,
) -> Result<(), ApiError> {
    let tier = tier.trim();
    if current == Some(tier) {
        return Ok(());
    }
    if *staff != StaffId::system() && !is_manager(app, staff) {
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
    Ok(())
}

/// A store manager (or headquarters' admin) by the staff directory, or named in `managers`.
pub(super) fn is_manager(app: &AppState, staff: &StaffId) -> bool {
    app.managers.contains(staff)
        || protocol::staff::read(&app.views.kv(), staff)
            .ok()
            .flatten()
            .is_some_and(|r| {
                r.active
                    && matches!(
                        r.role,
                        protocol::staff::StaffRole::Manager | protocol::staff::StaffRole::HqAdmin
                    )
            })
}

/// Whether a payment refused with `code` may be lent by this store: its rights are out of
/// reach (headquarters offline, this store past its lease, or the holding store switched off)
/// and the chain lends at all.
fn overdraft_applies(app: &AppState, code: Code) -> bool {
    let out_of_reach = match code {
        Code::RightsUnreachable => true,
        Code::RightsElsewhere | Code::OfflineTooLong => app.sync.borrow().link != Link::Online,
        _ => false,
    };
    // A view that cannot be read refuses the overdraft, like a policy of 0.
    out_of_reach
        && app
            .settings_now()
            .is_ok_and(|s| s.wallet.overdraft_member.0 > 0)
}

/// Pays off what members owe this store for offline overdrafts, once headquarters is back:
/// each is a wallet write like any other (rights fetched through the hub when held elsewhere).
pub async fn collect_overdrafts(app: &AppState) -> Result<u64, ApiError> {
    if app.sync.borrow().link != Link::Online {
        return Ok(0);
    }
    let here = &app.settings.store_id;
    let mut collected = 0;
    for (member, _) in app.views.receivables(here)? {
        // Lent and settled only grow, so a new debt gets a new key and a retry the same one.
        let wallet = app.views.wallet(&member)?;
        let (lent, settled) = wallet.owed.get(here).copied().unwrap_or_default();
        let key = TxId::derived(&[
            "collect",
            here.as_str(),
            &member.to_string(),
            &lent.to_string(),
            &settled.to_string(),
        ]);
        let request = Request {
            key: key.clone(),
            fingerprint: [0; 32],
            staff: StaffId::system(),
            body: WalletRequest {
                member_id: member,
                action: WalletAction::CollectOverdraft,
            },
        };
        match spend(app, Some(member), &key, || Command::Wallet(request.clone())).await {
            Ok(_) => collected += 1,
            Err(e) => tracing::info!(%member, error = %e.detail, "overdraft not collected yet"),
        }
    }
    Ok(collected)
}

/// Sends a command that may spend rights. When the member's balance covers it but the rights
/// are held elsewhere, asks headquarters to move them here (one round trip; more when it has
/// to recall them from another store), and the command runs again with the same key as the
/// rights arrive (in the same journal group, so with the same flush).
async fn spend(
    app: &AppState,
    member: Option<MemberId>,
    key: &TxId,
    command: impl Fn() -> Command,
) -> Result<Reply, ApiError> {
    if member.is_some()
        && let Some(reason) = &app.sync.borrow().refused
    {
        return Err(ApiError::new(Code::StoreFenced, reason));
    }
    match (app.journal.send(command()).await, member) {
        (Err(Rejection::Wallet(WalletError::RightsElsewhere { wants })), Some(member)) => {
            if let Some(paused) = app.rights_paused()? {
                return Err(paused);
            }
            fetch_rights(app, key, member, wants, command()).await
        }
        (result, _) => Ok(result?),
    }
}

/// Asks headquarters for the rights `command` needs, and returns its result once it has run
/// with them.
async fn fetch_rights(
    app: &AppState,
    key: &TxId,
    member: MemberId,
    wants: Vec<(protocol::wallet::Counter, u64)>,
    command: Command,
) -> Result<Reply, ApiError> {
    let elsewhere = |why: &str| ApiError::new(Code::RightsElsewhere, why);
    let Some(asks) = &app.asks else {
        return Err(elsewhere(
            "the balance is held at other stores and this store has no hub",
        ));
    };
    if app.sync.borrow().link != Link::Online {
        return Err(elsewhere(
            "the balance is held at other stores and headquarters is not reachable",
        ));
    }
    // What this store holds now, read with its log's length, so rights headquarters has sent
    // that have not arrived yet count toward the ask.
    let counters = wants.iter().map(|(c, _)| c.clone()).collect();
    let holding = match app
        .journal
        .send(Control::Holding { member, counters })
        .await?
    {
        Reply {
            outcome: Outcome::Holding(holding),
            ..
        } => holding,
        _ => return Err(elsewhere("the journal did not say what this store holds")),
    };
    let ask = Ask {
        id: protocol::ask::ask_id(&app.settings.store_id, &member, key),
        member,
        wants,
        holding: Some(holding),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let (retried, result) = tokio::sync::oneshot::channel();
    asks.send((ask, reply, (command, retried)))
        .await
        .map_err(|_| elsewhere("the uplink has stopped"))?;
    let answer = tokio::time::timeout(RIGHTS_WAIT, answer).await;
    match answer {
        Ok(Ok(AskAnswer::Granted { .. })) => {
            // The command runs as the rights arrive. If they are late it is withdrawn, and the
            // journal answers either way: withdrawn, or the command's own result if it ran.
            let mut result = result;
            let late = "headquarters granted the rights but they did not arrive";
            match tokio::time::timeout(RIGHTS_WAIT, &mut result).await {
                Ok(Ok(result)) => return Ok(result?),
                Ok(Err(_)) => return Err(elsewhere(late)),
                Err(_) => {}
            }
            let withdraw = Control::Withdraw { key: key.clone() };
            let _ = app.journal.send(withdraw).await;
            match tokio::time::timeout(RIGHTS_WAIT, result).await {
                Ok(Ok(result)) => Ok(result?),
                Ok(Err(_)) => Err(elsewhere(late)),
                Err(_) => Err(ApiError::new(
                    Code::Unavailable,
                    "the payment's outcome is unknown: retry with the same Idempotency-Key",
                )),
            }
        }
        Ok(Ok(AskAnswer::Refused { reason })) => Err(ApiError::new(
            Code::RightsElsewhere,
            format!("headquarters could not move the rights here: {reason}"),
        )),
        Ok(Ok(AskAnswer::Unreachable { holders })) => Err(ApiError::new(
            Code::RightsUnreachable,
            protocol::sync::unreachable_reason(&holders),
        )),
        Ok(Err(_)) => Err(elsewhere("the link to headquarters dropped while asking")),
        Err(_) => Err(elsewhere("headquarters did not answer in time")),
    }
}

/// The body with any `password` field taken out, so it never reaches a stored fingerprint.
fn without_password(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove("password");
            serde_json::to_vec(&fields).unwrap_or_default()
        }
        _ => body.to_vec(),
    }
}

fn password_error(e: PasswordError) -> ApiError {
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
async fn check_password(
    app: &Arc<AppState>,
    member: MemberId,
    staff: &StaffId,
    given: Option<String>,
) -> Result<(), ApiError> {
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

/// One sale by its receipt number.
#[utoipa::path(get, path = "/api/v1/sales/{sale_id}", params(("sale_id" = String, Path)),
    responses((status = 200, body = SaleOut), (status = 404, body = ErrorBody)))]
async fn get_sale(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = SaleId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    if let Some(item_sale) = app.views.item_sale(&id)? {
        return Ok(axum::Json(checkout::item_sale_json(&item_sale, None)).into_response());
    }
    let sale = app
        .views
        .sale(&id)?
        .ok_or_else(|| ApiError::new(Code::SaleNotFound, &id))?;
    Ok(axum::Json(SaleOut::new(sale, None)).into_response())
}

/// Returns a sale (退货). A quick sale: whole, at the store that made it. An item sale: any
/// lines, any part of a line, at any store (a member's sale elsewhere asks headquarters for its
/// return rights; a sale without a member only where it was made), never more than was sold;
/// money back tender by tender as paid, stored value to principal and bonus, points used given
/// back and points earned taken back in proportion, the coupon back once nothing is left, and
/// the goods back on this store's shelf.
#[utoipa::path(post, path = "/api/v1/sales/{sale_id}/returns", request_body = ReturnBody,
    params(("sale_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = SaleOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn return_sale(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = SaleId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let (key, fingerprint, staff) = request_meta(&headers, &format!("return/{id}"), &body)?;
    let b: ReturnBody = parse_body(&body)?;
    let member = match app.views.item_sale(&id)? {
        Some(s) => s.sale.member_id,
        None => app.views.sale(&id)?.and_then(|s| s.sale.member_id),
    };
    let lines = b.lines.map(|lines| {
        lines
            .into_iter()
            .map(|l| protocol::returns::ReturnLine {
                line: l.line,
                qty: l.qty,
            })
            .collect()
    });
    let request = Request {
        key,
        fingerprint,
        staff,
        body: SaleReturn {
            sale_id: id,
            reason: b.reason,
            lines,
        },
    };
    let reply = spend(&app, member, &request.key.clone(), || {
        Command::ReturnSale(request.clone())
    })
    .await?;
    Ok(answer(StatusCode::CREATED, reply))
}

/// A member's wallet: stored value (principal, bonus), points by lot, cards.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/wallet", params(("member_id" = String, Path)),
    responses((status = 200, body = WalletOut), (status = 404, body = ErrorBody)))]
async fn get_wallet(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = member_id(&raw)?;
    if app.views.member(&id)?.is_none() {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    Ok(axum::Json(WalletOut::new(id, app.summary(&id)?, None)).into_response())
}

/// Sends one wallet change to the journal.
async fn wallet_write(
    app: &AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    member: MemberId,
    action: WalletAction,
) -> AppResult {
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
    let reply = spend(app, Some(member), &key, || Command::Wallet(request.clone())).await?;
    Ok(answer(StatusCode::CREATED, reply))
}

/// Top-up (充值) paid in cash, optionally under a top-up rule that adds bonus.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/top-ups", request_body = TopUpBody,
    params(("member_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WalletOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn top_up(
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
async fn adjust_points(
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
async fn sell_card(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = member_id(&raw)?;
    let b: NewCardBody = parse_body(&body)?;
    let kind = match (b.kind.as_str(), b.uses, b.valid_from) {
        ("count", Some(uses), None) => CardKind::Count {
            uses,
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
                "kind is \"count\" with uses, or \"period\" with valid_from and valid_to",
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
async fn use_card(
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
async fn refund(
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
async fn set_password(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the OpenAPI document (read from this file's
    /// `.route("…"` calls, so a new route without its `#[utoipa::path]` fails here).
    #[test]
    fn every_route_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let source = include_str!("mod.rs");
        let routes: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .filter(|route| route.starts_with("/api/"))
            .collect();
        assert!(routes.len() > 30, "{routes:?}");
        let missing: Vec<&&str> = routes.iter().filter(|r| !paths.contains_key(**r)).collect();
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    }
}
