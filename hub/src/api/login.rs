//! 总部登录: headquarters' staff log in with the password headquarters set them. Every call but
//! health and login needs `Authorization: Bearer <token>` (the demo's `open_before_logins` lets
//! calls through until an active headquarters admin has a login): an admin does everything,
//! an auditor reads everything, a store manager reads only their own store's reports, audit
//! log, commissions, stock and staff (`store=` their store) and looks after their own store's
//! cashiers (added, changed, logins set: checked by the staff handlers through [`Scope`]);
//! cashiers work at the tills.

use axum::extract::Request;
use axum::middleware::Next;
use protocol::session::{LoginError, Lookup, Session};
use protocol::staff::StaffRole;

use super::*;

pub(super) fn now_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as u64)
}

/// How long a login at headquarters lasts.
const SESSION_MS: u64 = 12 * 60 * 60 * 1000;

fn login_error(e: LoginError) -> Response {
    match e {
        LoginError::Wrong { .. } => Code::LoginFailed.answer(e),
        LoginError::Locked { .. } => Code::AccountLocked.answer(e),
        LoginError::NotHere(_) => Code::RoleForbidden.answer(e),
    }
}

/// Whether an active headquarters admin has a login (then logins are required here, even in
/// the demo's open mode; a hub that is not open makes its first admin at start).
pub fn logins_required(storage: &dyn HubStore) -> Result<bool, String> {
    let views = crate::ingest::HubViews::reader(storage);
    for (key, _) in storage
        .views(protocol::staff::keys::CREDENTIALS, usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let id = String::from_utf8_lossy(&key[protocol::staff::keys::CREDENTIALS.len()..]);
        let Ok(id) = StaffId::parse(&id) else {
            continue;
        };
        if protocol::staff::read(&views, &id)?
            .is_some_and(|r| r.active && r.role == StaffRole::HqAdmin)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    #[schema(value_type = String, example = "admin")]
    staff_id: StaffId,
    password: String,
}

/// 登录: opens a session for a headquarters admin, an auditor or a store manager.
#[utoipa::path(post, path = "/api/v1/sessions", request_body(content = LoginBody), responses((status = 201, body = Object)))]
pub(super) async fn login(
    State(hq): State<Hq>,
    peer: Option<axum::Extension<protocol::web::Peer>>,
    body: Result<axum::Json<LoginBody>, JsonRejection>,
) -> Response {
    let from = peer.map(|p| p.0.0.to_string()).unwrap_or_default();
    let b = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    let now = now_ms();
    if let Err(e) = hq.sessions.check_lock(&b.staff_id, &from, now) {
        return login_error(e);
    }
    let of = b.staff_id.clone();
    let found = read(&hq, move |storage| {
        let views = crate::ingest::HubViews::reader(storage);
        Ok::<_, String>((
            protocol::staff::read(&views, &of)?,
            protocol::staff::credentials(&views, &of)?,
        ))
    })
    .await;
    let (record, hash) = match found {
        Ok((Some(record), Some(hash))) if record.active => (record, hash),
        Ok(_) => return login_error(LoginError::Wrong { left: 0 }),
        Err(answer) => return answer,
    };
    if record.role == StaffRole::Cashier {
        return login_error(LoginError::NotHere(format!(
            "{} is a cashier: cashiers log in at their store's tills",
            record.id
        )));
    }
    // Counted before the slow check, so tries at once cannot beat the lock.
    let count = match hq.sessions.attempt(&b.staff_id, &from, now) {
        Ok(count) => count,
        Err(e) => return login_error(e),
    };
    let secret = b.password;
    let credential = hash.clone();
    let ok = tokio::task::spawn_blocking(move || protocol::secret::matches(&secret, &hash)).await;
    match ok {
        Ok(Some(true)) => {}
        Ok(Some(false)) => return login_error(hq.sessions.failed(count)),
        _ => return unavailable("the stored login hash is damaged".into()),
    }
    let token = match new_token() {
        Ok(token) => token,
        Err(e) => return unavailable(e.to_string()),
    };
    let session = Session {
        staff: record.id.clone(),
        role: record.role,
        expires_ms: now + SESSION_MS,
        credential,
    };
    hq.sessions.open(token.clone(), session, &from, now);
    (
        StatusCode::CREATED,
        axum::Json(
            json!({"token": token, "staff_id": record.id, "name": record.name,
            "role": record.role, "store_id": record.store, "expires_at_ms": now + SESSION_MS}),
        ),
    )
        .into_response()
}

/// A session token (a staff member's or a member's): 32 random bytes, hex.
pub(super) fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// 退出登录.
#[utoipa::path(delete, path = "/api/v1/sessions", responses((status = 200, body = Object)))]
pub(super) async fn logout(State(hq): State<Hq>, headers: HeaderMap) -> Response {
    let closed = bearer(&headers).is_some_and(|t| hq.sessions.close(t));
    axum::Json(json!({ "closed": closed })).into_response()
}

/// Who is calling, put on the request by [`guard`] once logins are required: a store manager's
/// staff changes are limited to their own store's cashiers.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub role: StaffRole,
    pub store: Option<StoreId>,
}

/// What a role may call here; a store manager only reads their own store.
fn allowed(
    role: StaffRole,
    store: Option<&StoreId>,
    method: &str,
    path: &str,
    query: &str,
) -> bool {
    let reading = method == "GET";
    match role {
        StaffRole::HqAdmin => true,
        StaffRole::Auditor => reading,
        StaffRole::Cashier => false,
        StaffRole::Manager => {
            let Some(own) = store else { return false };
            let asks_own = query.split('&').any(|kv| kv == format!("store={own}"));
            let own_path = path.starts_with(&format!("/api/v1/stores/{own}/"));
            let scoped = [
                "/api/v1/reports/sales",
                "/api/v1/reports/members",
                "/api/v1/audit",
                "/api/v1/commissions",
                "/api/v1/staff",
            ]
            .contains(&path);
            // Their own cashiers: the staff handlers check each record against `Scope`.
            let staff_write = (method == "POST" && path == "/api/v1/staff")
                || (method == "PUT"
                    && path.starts_with("/api/v1/staff/")
                    && path.ends_with("/password"));
            (reading && (own_path || (scoped && asks_own))) || staff_write
        }
    }
}

/// Requires a live session once logins exist here, and lets each role call only what it may;
/// the session's staff member becomes the operator (`X-Staff-Id`).
pub(super) async fn guard(State(hq): State<Hq>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().as_str().to_owned();
    // The member's own page checks the member's token itself (`me.rs`).
    let open = !path.starts_with("/api/v1/")
        || path == "/api/v1/health"
        || path == "/api/v1/me"
        || path.starts_with("/api/v1/me/")
        || (path == "/api/v1/sessions" && method == "POST");
    if open {
        return next.run(request).await;
    }
    // A live session is checked first: the directory is read only for a call without one.
    let lookup = bearer(request.headers()).map(|t| hq.sessions.get(t, now_ms()));
    if !matches!(lookup, Some(Lookup::Live(_))) && hq.open_before_logins {
        let storage = hq.storage.clone();
        match tokio::task::spawn_blocking(move || logins_required(&*storage)).await {
            Ok(Ok(false)) => return next.run(request).await,
            Ok(Ok(true)) => {}
            Ok(Err(e)) => return unavailable(e),
            Err(e) => return unavailable(e.to_string()),
        }
    }
    let session = match lookup {
        Some(Lookup::Live(session)) => session,
        Some(Lookup::Expired) => {
            return Code::SessionExpired.answer("the session has expired: log in again");
        }
        None | Some(Lookup::Unknown) => {
            return Code::LoginRequired.answer("log in first: POST /api/v1/sessions");
        }
    };
    // Re-checked on every call: a session ends when the directory ends its access.
    let of = session.staff.clone();
    let found = read(&hq, move |storage| {
        let views = crate::ingest::HubViews::reader(storage);
        Ok::<_, String>((
            protocol::staff::read(&views, &of)?,
            protocol::staff::credentials(&views, &of)?,
        ))
    })
    .await;
    let (record, credential) = match found {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if let Some(why) = protocol::session::revoked(&session, record.as_ref(), credential.as_deref())
    {
        if let Some(token) = bearer(request.headers()) {
            hq.sessions.close(token);
        }
        tracing::warn!(staff = %session.staff, why, "session ended");
        return Code::SessionRevoked.answer(format!("{why}: log in again"));
    }
    let store = record.and_then(|r| r.store);
    let query = request.uri().query().unwrap_or("").to_owned();
    // Anyone logged in may log out.
    let logout = method == "DELETE" && path == "/api/v1/sessions";
    if !logout && !allowed(session.role, store.as_ref(), &method, &path, &query) {
        return Code::RoleForbidden.answer(format!(
            "a {:?} may not {method} {path}?{query}",
            session.role
        ));
    }
    match axum::http::HeaderValue::from_str(session.staff.as_str()) {
        Ok(v) => {
            request.headers_mut().insert("x-staff-id", v);
        }
        Err(e) => return unavailable(e.to_string()),
    }
    request.extensions_mut().insert(Scope {
        role: session.role,
        store,
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_manager_reads_only_their_own_store_at_headquarters() {
        let s001 = StoreId::parse("S001").unwrap();
        let m = |method, path, query| allowed(StaffRole::Manager, Some(&s001), method, path, query);
        assert!(m(
            "GET",
            "/api/v1/reports/sales",
            "from=2026-11-01&to=2026-11-30&store=S001"
        ));
        assert!(!m(
            "GET",
            "/api/v1/reports/sales",
            "from=2026-11-01&to=2026-11-30&store=S002"
        ));
        assert!(!m(
            "GET",
            "/api/v1/reports/sales",
            "from=2026-11-01&to=2026-11-30"
        ));
        assert!(!m("GET", "/api/v1/reports/sales", "store=S0011"));
        assert!(m("GET", "/api/v1/stores/S001/stock", ""));
        assert!(!m("GET", "/api/v1/stores/S002/stock", ""));
        assert!(!m("GET", "/api/v1/liabilities", ""));
        assert!(
            m("POST", "/api/v1/staff", ""),
            "checked per record by the handler"
        );
        assert!(m("PUT", "/api/v1/staff/c01/password", ""));
        assert!(m("GET", "/api/v1/staff", "store=S001"));
        assert!(!m("GET", "/api/v1/staff", ""));
        assert!(!m("PUT", "/api/v1/member-rules", ""));
        assert!(allowed(
            StaffRole::Auditor,
            None,
            "GET",
            "/api/v1/liabilities",
            ""
        ));
        assert!(!allowed(
            StaffRole::Auditor,
            None,
            "POST",
            "/api/v1/staff",
            ""
        ));
        assert!(allowed(
            StaffRole::HqAdmin,
            None,
            "POST",
            "/api/v1/staff",
            ""
        ));
    }
}
