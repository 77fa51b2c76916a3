//! 备份: headquarters' admin takes a backup of its data now, or lists those kept
//! (`crate::backup`; the hub also takes one on its schedule).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Hq, unavailable};

/// Takes a backup of headquarters' data now, while it serves, and checks it (201); the oldest
/// beyond the number kept are deleted. Writes go on while the data is read.
#[utoipa::path(post, path = "/api/v1/backups", responses((status = 201, body = Object, description = "the backup taken"), (status = 503, body = super::doc::ErrorBody)))]
pub(super) async fn take(State(hq): State<Hq>) -> Response {
    let backups = hq.backups.clone();
    let now_ms = crate::ingest::system_now_ms();
    match tokio::task::spawn_blocking(move || backups.take_now(now_ms)).await {
        Ok(Ok(taken)) => {
            tracing::info!(file = %taken.file.display(), records = taken.records, "backup taken");
            (StatusCode::CREATED, axum::Json(taken)).into_response()
        }
        Ok(Err(e)) => unavailable(format!("the backup failed: {e:#}")),
        Err(e) => unavailable(e.to_string()),
    }
}

/// The backups kept, newest first, as each says of itself (one that cannot be read says why).
/// Headquarters on PostgreSQL keeps none of its own: it says where its database is and which
/// hub holds it now.
#[utoipa::path(get, path = "/api/v1/backups", responses((status = 200, body = Object, description = "where, how often, how many, and the backups kept; or headquarters' database")))]
pub(super) async fn list(State(hq): State<Hq>) -> Response {
    if let Some((at, pg)) = hq.backups.database.clone() {
        let holder = tokio::task::spawn_blocking(move || pg.lease_holder()).await;
        return match holder {
            Ok(Ok((active, epoch, _, _))) => axum::Json(serde_json::json!({
                "database": {"kind": "postgres", "at": at, "active": active, "epoch": epoch},
                "every_hours": 0,
                "keep": 0,
                "backups": [],
            }))
            .into_response(),
            Ok(Err(e)) => unavailable(e.to_string()),
            Err(e) => unavailable(e.to_string()),
        };
    }
    let backups = hq.backups.clone();
    let listing =
        tokio::task::spawn_blocking(move || backups.shelf.listing::<crate::backup::Header>());
    match listing.await {
        Ok(Ok(listing)) => axum::Json(listing).into_response(),
        Ok(Err(e)) => unavailable(format!("{e:#}")),
        Err(e) => unavailable(e.to_string()),
    }
}
