//! 会员自助 through the store: the member's own page (`/m`, its script and style) and its API
//! (`/api/v1/me…`) passed on to headquarters' web address (`hub_web` in node.toml), so a
//! member on the store's Wi-Fi or scanning a QR code at the counter reaches it at the till's
//! address. Only the method, the path, the body and the member's `Authorization` go on; only
//! the status, the content type and the body come back. Without headquarters the page cannot
//! sign anyone in; the till still finds members by the codes their pages showed. Members type
//! phones, codes and payment passwords here: give `hub_web` as `https://` wherever the way to
//! headquarters leaves the building.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::app::St;
use super::error::{ApiError, Code};

/// The largest body passed either way (the page's biggest answer is well under it).
const BODY_MAX: u64 = 1024 * 1024;
/// Requests passed on at once; more are answered 503 at once, so members on the store's Wi-Fi
/// cannot take the threads the till's own work needs.
const AT_ONCE: usize = 8;

/// One client for every request passed on, so its connections to headquarters are reused.
fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        )
    })
}

fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(AT_ONCE))
}

pub(super) async fn pass_on(
    State(app): St,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(base) = app.hub_web.clone() else {
        return ApiError::new(
            Code::NotFound,
            "this store does not offer the member page (hub_web in node.toml)",
        )
        .into_response();
    };
    let Ok(_slot) = slots().try_acquire() else {
        return ApiError::new(Code::Unavailable, "the member page is busy: try again")
            .into_response();
    };
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let auth = headers.get(header::AUTHORIZATION).cloned();
    let kind = headers.get(header::CONTENT_TYPE).cloned();
    let answer = tokio::task::spawn_blocking(move || {
        let agent = agent();
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        if let Some(kind) = kind {
            request = request.header(header::CONTENT_TYPE, kind);
        }
        let request = request.body(body.to_vec()).map_err(|e| e.to_string())?;
        let mut response = agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status();
        let kind = response.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_MAX)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((status, kind, bytes))
    })
    .await;
    match answer {
        Ok(Ok((status, kind, bytes))) => {
            let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, bytes).into_response();
            if let Some(kind) = kind {
                response.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            response
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the member page could not reach headquarters");
            ApiError::new(
                Code::Unavailable,
                "headquarters cannot be reached for the member page just now",
            )
            .into_response()
        }
        Err(e) => ApiError::new(Code::Unavailable, e.to_string()).into_response(),
    }
}
