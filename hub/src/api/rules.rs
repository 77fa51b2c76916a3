//! 会员规则 at headquarters: the member rules every store applies (points rates and multipliers,
//! top-up bonus rules, tier discounts, the offline overdraft policy). Each change is one entry of
//! headquarters' log, so the history below is also who changed what, and when.

use protocol::rules::{self, Published, RulesForm};

use super::*;
use crate::ingest::HqWrite;

/// A publication's history (`prefix`: one entry per version, oldest first) as the pages read
/// it: the one in force (`current`, null before any) and every one, newest first, each with
/// when, by whom (and their name) and `what` of it under `field`.
pub(super) fn history<P: serde::de::DeserializeOwned>(
    storage: &dyn HubStore,
    prefix: &[u8],
    field: &str,
    what: impl Fn(&P) -> (protocol::Hlc, StaffId, serde_json::Value),
) -> Response {
    let rows = match storage.views(prefix, usize::MAX) {
        Ok(rows) => rows,
        Err(e) => return unavailable(e.to_string()),
    };
    let views = crate::ingest::HubViews::reader(storage);
    let mut history = Vec::with_capacity(rows.len());
    for (_, v) in rows.iter().rev() {
        let published: P = match postcard::from_bytes(v) {
            Ok(p) => p,
            Err(e) => return unavailable(e.to_string()),
        };
        let (at, staff, body) = what(&published);
        let name = protocol::staff::read(&views, &staff)
            .ok()
            .flatten()
            .map(|r| r.name);
        let mut entry = json!({
            "published_at_ms": at.wall_ms,
            "staff": staff,
            "staff_name": name,
        });
        entry[field] = body;
        history.push(entry);
    }
    axum::Json(json!({ "current": history.first(), "history": history })).into_response()
}

/// The rules in force at every store that has heard of them, and every earlier set, newest
/// first.
#[utoipa::path(get, path = "/api/v1/member-rules", responses((status = 200, body = Object)))]
pub(super) async fn get_rules(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        history(storage, rules::keys::HISTORY, "rules", |p: &Published| {
            (p.at, p.staff.clone(), json!(RulesForm::of(&p.rules)))
        })
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
