//! 会员规则 at headquarters: the member rules every store applies (points rates and multipliers,
//! top-up bonus rules, tier discounts, the offline overdraft policy). Each change is one entry of
//! headquarters' log, so the history below is also who changed what, and when.

use protocol::rules::{self, Published, RulesForm};

use super::*;
use crate::ingest::HqWrite;

fn published_json(storage: &dyn HubStore, p: &Published) -> serde_json::Value {
    let views = crate::ingest::HubViews::reader(storage);
    let name = protocol::staff::read(&views, &p.staff)
        .ok()
        .flatten()
        .map(|r| r.name);
    json!({
        "published_at_ms": p.at.wall_ms,
        "staff": p.staff,
        "staff_name": name,
        "rules": RulesForm::of(&p.rules),
    })
}

/// The rules in force at every store that has heard of them, and every earlier set, newest
/// first.
#[utoipa::path(get, path = "/api/v1/member-rules", responses((status = 200, body = Object)))]
pub(super) async fn get_rules(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        let rows = match storage.views(rules::keys::HISTORY, usize::MAX) {
            Ok(rows) => rows,
            Err(e) => return unavailable(e.to_string()),
        };
        let history: Result<Vec<Published>, _> = rows
            .iter()
            .rev()
            .map(|(_, v)| postcard::from_bytes::<Published>(v))
            .collect();
        match history {
            Ok(history) => axum::Json(json!({
                "current": history.first().map(|p| published_json(storage, p)),
                "history": history.iter().map(|p| published_json(storage, p)).collect::<Vec<_>>(),
            }))
            .into_response(),
            Err(e) => unavailable(e.to_string()),
        }
    })
    .await
}

/// Publishes a new rule set (every field, in yuan); a field that does not pass is named in
/// `field`, and nothing is written.
#[utoipa::path(put, path = "/api/v1/member-rules", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = Object, description = "会员规则: earn (points_per_yuan, categories, multipliers), top_up_rules, tier_percent_off, overdraft_member, overdraft_store, overdraft_needs_manager"), responses((status = 201, body = Object)))]
pub(super) async fn set_rules(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<RulesForm>, JsonRejection>,
) -> Response {
    let form = match body {
        Ok(axum::Json(form)) => form,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    match form.rules() {
        Ok(rules) => staff::write(&hq, &headers, HqWrite::Rules(rules)).await,
        Err(e) => ApiError::new(Code::InvalidRules, &e)
            .on(e.field)
            .into_response(),
    }
}
