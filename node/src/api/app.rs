//! What every handler shares: the node's state, the body and query extractors that answer in
//! our error shape, request metadata (idempotency key, staff, fingerprint), and the replies.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use protocol::wallet::Summary;
use protocol::{CardNo, MemberId, Money, Phone, StaffId, TxId};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::dto::*;
use super::error::{ApiError, Code};

use crate::journal::{JournalHandle, Outcome, Reply, Settings};
use crate::password::{self};
use crate::uplink::AskRequest;
use crate::views::Views;

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
    /// `GET /metrics` (none when the config turns it off).
    pub metrics: Option<super::NodeMetrics>,
    /// Backups of the store's data (`crate::backup`).
    pub backups: std::sync::Arc<crate::backup::Backups>,
    /// Headquarters' web address, where the member's own page is passed on (`hub_web`).
    pub hub_web: Option<String>,
    /// Member codes taken here (动态会员码's replay guard).
    pub used_codes: std::sync::Arc<crate::member_codes::UsedCodes>,
}

/// How long a till waits for headquarters to move rights here before it is told to take
/// another tender.
pub(crate) const RIGHTS_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

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

    pub(crate) fn today(&self) -> NaiveDate {
        self.settings.calendar.business_date(self.clock.now_ms())
    }

    /// The settings in force: the file's, with headquarters' member rules adopted as the journal
    /// adopts them (so a quote says what the sale will be, and the overdraft policy is the
    /// journal's).
    pub(crate) fn settings_now(&self) -> Result<Settings, ApiError> {
        let mut settings = self.settings.clone();
        if let Some(published) = self.views.chain_rules()? {
            settings.adopt(&published.rules);
        }
        if let Some(published) = self.views.tier_table()? {
            settings.adopt_tiers(&published.table);
        }
        if let Some(published) = self.views.card_rules()? {
            settings.card_rules = Some(published.rules);
        }
        Ok(settings)
    }

    pub(crate) fn summary(&self, member: &MemberId) -> Result<Summary, ApiError> {
        let wallet = self.views.wallet(member)?;
        let policy = self.settings.wallet.points;
        Ok(wallet.summary(&self.settings.store_id, self.today(), &policy))
    }
}

pub(crate) type AppResult = Result<Response, ApiError>;
pub(crate) type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// A query string that does not parse gets our error shape, not axum's plain text.
pub(crate) fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::new(Code::InvalidQuery, e.body_text()))
}

/// The raw body, refused with our own error shape when over [`BODY_BYTES_MAX`].
pub(crate) struct Body(pub(crate) Bytes);

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
pub(crate) type St = State<Arc<AppState>>;

pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(Code::InvalidRequest, e),
        _ => ApiError::new(Code::MalformedJson, e),
    })
}

/// The idempotency key, the staff member and a fingerprint of what is asked.
pub(crate) fn request_meta(
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
    let staff = staff_of(headers)?;
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update([0]);
    hash.update(staff.as_str().as_bytes());
    hash.update([0]);
    hash.update(body);
    Ok((key, hash.finalize().into(), staff))
}

/// Who asks: `X-Staff-Id` (the session's, set by the login layer), or the store's own operator
/// at a till without logins.
pub(crate) fn staff_of(headers: &HeaderMap) -> Result<StaffId, ApiError> {
    match headers.get("x-staff-id").map(|v| v.to_str()) {
        None => Ok(StaffId::system()),
        Some(Ok(s)) => StaffId::parse(s).map_err(|e| ApiError::new(Code::InvalidId, e)),
        Some(Err(_)) => Err(ApiError::new(Code::InvalidId, "X-Staff-Id must be ASCII")),
    }
}

pub(crate) fn member_id(raw: &str) -> Result<MemberId, ApiError> {
    MemberId::parse(raw).map_err(|e| ApiError::new(Code::InvalidId, e))
}

pub(crate) fn phone(raw: &str) -> Result<Phone, ApiError> {
    Phone::parse(raw).map_err(|e| ApiError::new(Code::InvalidPhone, e).on("phone"))
}

pub(crate) fn card(raw: &str) -> Result<CardNo, ApiError> {
    CardNo::parse(raw).map_err(|e| ApiError::new(Code::FieldInvalid, e).on("card_no"))
}

/// A CNY amount in fen, zero or more.
pub(crate) fn cny_fen(money: &Money) -> Result<protocol::Fen, ApiError> {
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

pub(crate) fn money(value: serde_json::Value) -> Result<Money, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::new(Code::InvalidAmount, e))
}

pub(crate) fn answer(status: StatusCode, reply: Reply) -> Response {
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
            axum::Json(item_sale_json(&sale, wallet.as_ref())).into_response()
        }
        Outcome::Held(held) => axum::Json(held_plain(&held)).into_response(),
        Outcome::Voided { order_id } => {
            axum::Json(serde_json::json!({ "voided": order_id })).into_response()
        }
        Outcome::ShiftClosed { shift, counted } => {
            axum::Json(super::shift::closed_json(&shift, counted)).into_response()
        }
        // The journal reads the member afresh before it answers from a record.
        Outcome::MemberRecorded { member_id, .. } => {
            axum::Json(serde_json::json!({ "member_id": member_id })).into_response()
        }
        // The journal answers a restored request's record with `RecordedBeforeRestore`.
        Outcome::Restored { seq } => {
            axum::Json(serde_json::json!({ "restored_seq": seq })).into_response()
        }
    };
    let mut response = (status, body).into_response();
    mark_replayed(&mut response, reply.replayed);
    response
}

/// Says on `response` that it answers a request already done (`Idempotent-Replayed: true`).
pub(crate) fn mark_replayed(response: &mut Response, replayed: bool) {
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
}

/// A store manager (or headquarters' admin) by the staff directory, or named in `managers`.
/// A store manager, or the store's own operator (`system`) at a till without logins.
pub(crate) fn may_manage(app: &AppState, staff: &StaffId) -> bool {
    *staff == StaffId::system() || is_manager(app, staff)
}

pub(crate) fn is_manager(app: &AppState, staff: &StaffId) -> bool {
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
