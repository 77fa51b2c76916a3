//! The headquarters HTTP API: health and per-store sync status (the rest arrives with reports).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::ingest::IngestHandle;

pub fn router(ingest: IngestHandle) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/stores", get(stores))
        .fallback(|| async {
            let body =
                json!({"code": "not_found", "message": "找不到该资源", "detail": "no such route"});
            (StatusCode::NOT_FOUND, axum::Json(body))
        })
        .with_state(ingest)
}

async fn health(State(ingest): State<IngestHandle>) -> Response {
    let feed_len = *ingest.feed_len().borrow();
    axum::Json(json!({"role": "hub", "feed_len": feed_len, "version": env!("CARGO_PKG_VERSION")}))
        .into_response()
}

/// Every store the hub has heard from: link state and how far behind it is.
async fn stores(State(ingest): State<IngestHandle>) -> Response {
    match ingest.stores().await {
        Ok(rows) => axum::Json(json!({"stores": rows})).into_response(),
        Err(e) => {
            let body = json!({"code": "unavailable", "message": "系统暂不可用，请稍后重试", "detail": e.to_string()});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}
