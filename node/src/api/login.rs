//! 登录: staff log in at the till with the password or PIN headquarters set, and every other
//! call then carries `Authorization: Bearer <token>` (`guard`). Only in the demo's open mode
//! (`open_before_logins`) does the API stay open until someone who may log in at this store has
//! a login (`X-Staff-Id` then names who acts).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::StaffId;
use serde::Deserialize;
use serde_json::json;

use super::app::{AppResult, AppState, Body, St, parse_body};
use super::error::{ApiError, Code};
use crate::session::{allowed, may_log_in};
use protocol::session::{LoginError, Lookup, Session};

fn now_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as u64)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Whether calls need a login: always, unless the store runs in the demo's open mode, where
/// they do once anyone who may log in here has a login.
pub(super) fn logins_required(app: &AppState) -> Result<bool, ApiError> {
    if !app.open_before_logins {
        return Ok(true);
    }
    let storage = |e: String| ApiError::new(Code::Storage, e);
    let prefix = protocol::staff::keys::CREDENTIALS;
    let kv = app.views.kv();
    for (key, _) in app.views.scan(prefix).map_err(|e| storage(e.to_string()))? {
        let Ok(id) = StaffId::parse(&String::from_utf8_lossy(&key[prefix.len()..])) else {
            continue;
        };
        let here = &app.settings.store_id;
        if protocol::staff::read(&kv, &id)
            .map_err(storage)?
            .is_some_and(|r| r.active && may_log_in(r.role, r.store.as_ref(), here))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[schema(value_type = String, example = "c01")]
    staff_id: StaffId,
    password: String,
}

fn login_error(e: LoginError) -> ApiError {
    let code = match e {
        LoginError::Wrong { .. } => Code::LoginFailed,
        LoginError::Locked { .. } => Code::AccountLocked,
        LoginError::NotHere(_) => Code::RoleForbidden,
    };
    ApiError::new(code, e)
}

/// 员工登录: checks the password or PIN against the hash headquarters sent (offline too) and
/// opens a session that expires after the store's `session_minutes`.
#[utoipa::path(post, path = "/api/v1/sessions", request_body(content = LoginBody, description = "staff_id, password"), responses((status = 201, body = Object), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 423, body = super::error::ErrorBody)))]
pub(super) async fn login(
    State(app): St,
    peer: Option<axum::Extension<protocol::web::Peer>>,
    Body(body): Body,
) -> AppResult {
    let b: LoginBody = parse_body(&body)?;
    let now = now_ms();
    let from = peer.map(|p| p.0.0.to_string()).unwrap_or_default();
    app.sessions
        .check_lock(&b.staff_id, &from, now)
        .map_err(login_error)?;
    let kv = app.views.kv();
    let storage = |e: String| ApiError::new(Code::Storage, e);
    let record = protocol::staff::read(&kv, &b.staff_id).map_err(storage)?;
    let hash = protocol::staff::credentials(&kv, &b.staff_id).map_err(storage)?;
    let (Some(record), Some(hash)) = (record.filter(|r| r.active), hash) else {
        return Err(ApiError::new(
            Code::LoginFailed,
            "wrong staff id or password",
        ));
    };
    let here = &app.settings.store_id;
    if !may_log_in(record.role, record.store.as_ref(), here) {
        return Err(login_error(LoginError::NotHere(format!(
            "{} does not work at {here}",
            record.id
        ))));
    }
    // Counted before the slow check, so tries at once cannot beat the lock.
    let count = app
        .sessions
        .attempt(&b.staff_id, &from, now)
        .map_err(login_error)?;
    let secret = b.password;
    let credential = hash.clone();
    let ok = tokio::task::spawn_blocking(move || protocol::secret::matches(&secret, &hash))
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e))?
        .ok_or_else(|| ApiError::new(Code::Storage, "the stored login hash is damaged"))?;
    if !ok {
        return Err(login_error(app.sessions.failed(count)));
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::new(Code::Unavailable, e))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let expires_ms = now + app.session_ms;
    let session = Session {
        staff: record.id.clone(),
        role: record.role,
        expires_ms,
        credential,
    };
    app.sessions.open(token.clone(), session, &from, now);
    tracing::info!(staff = %record.id, role = ?record.role, "logged in");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "token": token, "staff_id": record.id, "name": record.name, "role": record.role,
            "store_id": here, "expires_at_ms": expires_ms,
        })),
    )
        .into_response())
}

/// 退出登录: closes this session.
#[utoipa::path(delete, path = "/api/v1/sessions", responses((status = 200, body = Object), (status = 401, body = super::error::ErrorBody)))]
pub(super) async fn logout(State(app): St, headers: HeaderMap) -> AppResult {
    let closed = bearer(&headers).is_some_and(|t| app.sessions.close(t));
    Ok(axum::Json(json!({ "closed": closed })).into_response())
}

/// Every call but health and login needs a live session once logins exist; the session's staff
/// member becomes `X-Staff-Id`, and their role decides what they may call.
pub(super) async fn guard(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().as_str().to_owned();
    // The member's own page, passed on to headquarters, which checks the member's token.
    let open = !path.starts_with("/api/v1/")
        || path == "/api/v1/health"
        || path == "/api/v1/me"
        || path.starts_with("/api/v1/me/")
        || (path == "/api/v1/sessions" && method == "POST");
    if open {
        return next.run(request).await;
    }
    // A live session is checked first: the directory is read only for a call without one.
    let lookup = bearer(request.headers()).map(|t| app.sessions.get(t, now_ms()));
    if !matches!(lookup, Some(Lookup::Live(_))) {
        match logins_required(&app) {
            Ok(false) => return next.run(request).await,
            Ok(true) => {}
            Err(e) => return e.into_response(),
        }
    }
    let session = match lookup {
        None | Some(Lookup::Unknown) => {
            return ApiError::new(Code::LoginRequired, "log in first: POST /api/v1/sessions")
                .into_response();
        }
        Some(Lookup::Expired) => {
            return ApiError::new(
                Code::SessionExpired,
                "the session has expired: log in again",
            )
            .into_response();
        }
        Some(Lookup::Live(session)) => session,
    };
    // Re-checked on every call: a session ends when the directory ends its access.
    let kv = app.views.kv();
    let found = protocol::staff::read(&kv, &session.staff)
        .and_then(|r| Ok((r, protocol::staff::credentials(&kv, &session.staff)?)));
    let (record, credential) = match found {
        Ok(found) => found,
        Err(e) => return ApiError::new(Code::Storage, e).into_response(),
    };
    let here = &app.settings.store_id;
    let moved = record
        .as_ref()
        .is_some_and(|r| !may_log_in(r.role, r.store.as_ref(), here))
        .then_some("the staff member no longer works at this store");
    if let Some(why) = moved
        .or_else(|| protocol::session::revoked(&session, record.as_ref(), credential.as_deref()))
    {
        if let Some(token) = bearer(request.headers()) {
            app.sessions.close(token);
        }
        tracing::warn!(staff = %session.staff, why, "session ended");
        return ApiError::new(Code::SessionRevoked, format!("{why}: log in again")).into_response();
    }
    // Anyone logged in may log out.
    let logout = method == "DELETE" && path == "/api/v1/sessions";
    if !logout && !allowed(session.role, &method, &path) {
        return ApiError::new(
            Code::RoleForbidden,
            format!("a {:?} may not {method} {path}", session.role),
        )
        .into_response();
    }
    match HeaderValue::from_str(session.staff.as_str()) {
        Ok(v) => {
            request.headers_mut().insert("x-staff-id", v);
        }
        Err(e) => return ApiError::new(Code::InvalidId, e).into_response(),
    }
    next.run(request).await
}
