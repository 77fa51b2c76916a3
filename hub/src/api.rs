//! The headquarters HTTP API: health, per-store sync status, and the chain's member directory
//! (phones masked). The rest arrives with the reports and UI issues.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protocol::{MemberId, Phone};
use serde::Deserialize;
use serde_json::json;

use crate::ingest::IngestHandle;
use crate::storage::{HubStore, MemberRecord};

#[derive(Clone)]
struct Hq {
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
}

pub fn router(ingest: IngestHandle, storage: Arc<dyn HubStore>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/stores", get(stores))
        .route("/api/v1/members/lookup", get(lookup_member))
        .route("/api/v1/members/{member_id}", get(get_member))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "找不到该资源",
                "no such route".into(),
            )
        })
        .with_state(Hq { ingest, storage })
}

fn error(status: StatusCode, code: &str, message: &str, detail: String) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message, "detail": detail})),
    )
        .into_response()
}

fn unavailable(detail: String) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "系统暂不可用，请稍后重试",
        detail,
    )
}

async fn health(State(hq): State<Hq>) -> Response {
    let feed_len = *hq.ingest.feed_len().borrow();
    axum::Json(json!({"role": "hub", "feed_len": feed_len, "version": env!("CARGO_PKG_VERSION")}))
        .into_response()
}

/// Every store the hub has heard from: link state and how far behind it is.
async fn stores(State(hq): State<Hq>) -> Response {
    match hq.ingest.stores().await {
        Ok(rows) => axum::Json(json!({"stores": rows})).into_response(),
        Err(e) => unavailable(e.to_string()),
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

async fn get_member(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    match MemberId::parse(&raw) {
        Ok(id) => found(hq.storage.member(&id)),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "编号格式不正确",
            e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
struct Lookup {
    phone: String,
}

async fn lookup_member(State(hq): State<Hq>, Query(q): Query<Lookup>) -> Response {
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
