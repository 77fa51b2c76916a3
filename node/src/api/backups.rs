//! 备份: a store manager takes a backup of the store's data now, or lists those kept
//! (`crate::backup`; the node also takes one on its schedule).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::app::{AppResult, St};
use super::error::{ApiError, Code};

/// Takes a backup of this store's data now, while it sells, and checks it (201); the oldest
/// beyond the number kept are deleted.
#[utoipa::path(post, path = "/api/v1/backups", responses((status = 201, description = "the backup taken"), (status = 500, body = super::error::ErrorBody)))]
pub(super) async fn take(State(app): St) -> AppResult {
    let backups = app.backups.clone();
    let now_ms = app.clock.now_ms();
    let taken = tokio::task::spawn_blocking(move || backups.take_now(now_ms))
        .await
        .map_err(|e| ApiError::new(Code::Storage, e))?
        .map_err(|e| ApiError::new(Code::Storage, format!("{e:#}")))?;
    tracing::info!(file = %taken.file.display(), records = taken.records, "backup taken");
    Ok((StatusCode::CREATED, axum::Json(taken)).into_response())
}

/// The backups kept, newest first, as each says of itself (one that cannot be read says why).
#[utoipa::path(get, path = "/api/v1/backups", responses((status = 200, description = "the backups kept")))]
pub(super) async fn list(State(app): St) -> AppResult {
    let backups = app.backups.clone();
    let listing =
        tokio::task::spawn_blocking(move || backups.shelf.listing::<crate::backup::Header>())
            .await
            .map_err(|e| ApiError::new(Code::Storage, e))?
            .map_err(|e| ApiError::new(Code::Storage, format!("{e:#}")))?;
    Ok(axum::Json(listing).into_response())
}
