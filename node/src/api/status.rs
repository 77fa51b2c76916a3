//! The till's view of its own node: health, the link to headquarters, the member rules in force.

use axum::extract::State;
use axum::response::IntoResponse;

use super::dto::*;
use super::error::{ApiError, Code};

use super::app::*;
use super::login;

#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = HealthOut)))]
pub(super) async fn health(State(app): St) -> AppResult {
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
pub(super) async fn sync_status(State(app): St) -> AppResult {
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
/// overdraft policy this store applies, the tiers a manager may give (`tiers`) and
/// headquarters' tier table (`tier_table`, null before one) — headquarters' (`source` "headquarters", with when and
/// by whom) once published, else this store's `node.toml`.
#[utoipa::path(get, path = "/api/v1/member-rules", responses((status = 200, description = "member rules")))]
pub(super) async fn member_rules(State(app): St) -> AppResult {
    let published = app.views.chain_rules()?;
    let settings = app.settings_now()?;
    let rules = settings.rules();
    // The tiers a manager may give by hand: the table's, else the rules' and the first.
    let mut tiers: Vec<String> = vec![settings.default_tier.clone()];
    match &settings.tiers {
        Some(table) => tiers = table.tiers.iter().map(|t| t.name.clone()).collect(),
        None => tiers.extend(
            rules
                .tier_percent_off
                .keys()
                .filter(|t| **t != settings.default_tier)
                .cloned(),
        ),
    }
    Ok(axum::Json(serde_json::json!({
        "source": if published.is_some() { "headquarters" } else { "node.toml" },
        "published_at_ms": published.as_ref().map(|p| p.at.wall_ms),
        "staff": published.as_ref().map(|p| p.staff.to_string()),
        "rules": protocol::rules::RulesForm::of(&rules),
        "tiers": tiers,
        "tier_table": settings.tiers.as_ref().map(protocol::tiers::TierForm::of),
        // 外币现金: yuan per unit of each currency this store's tills take.
        "exchange_rates": settings.rates,
    }))
    .into_response())
}
