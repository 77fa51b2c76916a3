//! 会员等级 at headquarters: the tier table every store applies (thresholds by rolling spend or
//! points, discounts, points multipliers, whether a tier may go down), published as one entry
//! of headquarters' log each, and the review that moves members down (`crate::tiers`).

use protocol::tiers::{self, Published, TierForm};

use super::*;
use crate::ingest::HqWrite;

/// The tier table in force (`current`, null before any) and every earlier one, newest first.
#[utoipa::path(get, path = "/api/v1/tiers", responses((status = 200, body = Object)))]
pub(super) async fn get_tiers(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        super::rules::history(storage, tiers::keys::HISTORY, "table", |p: &Published| {
            (p.at, p.staff.clone(), json!(TierForm::of(&p.table)))
        })
    })
    .await
}

/// Publishes a tier table: `basis` (spend or points), `period_days`, and the tiers lowest
/// first (name, threshold in yuan or points, percent_off, points_multiplier, may_go_down).
/// Overlapping thresholds and any other bad field are refused with the field named; nothing
/// is written.
#[utoipa::path(put, path = "/api/v1/tiers", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = Object, description = "会员等级: basis (spend|points), period_days, tiers [{name, threshold, percent_off, points_multiplier, may_go_down}]"), responses((status = 201, body = Object)))]
pub(super) async fn set_tiers(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<TierForm>, JsonRejection>,
) -> Response {
    let form = match body {
        Ok(axum::Json(form)) => form,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    match form.table() {
        Ok(table) => staff::write(&hq, &headers, HqWrite::Tiers(table)).await,
        Err(e) => ApiError::new(Code::InvalidRules, &e)
            .on(e.field)
            .into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct ReviewQuery {
    /// Only show what the review would do (the default); `false` moves the members.
    #[serde(default)]
    dry_run: Option<bool>,
}

/// 等级评定 now, as of today: every member's qualifying spend or points over the table's
/// period from every store's sales; up where a store could not see it, down out of a tier that
/// may go down. `dry_run=false` writes the moves (each audited); it also runs by itself once a
/// day.
#[utoipa::path(post, path = "/api/v1/tiers/review", params(("dry_run" = Option<bool>, Query, description = "true (the default): show the moves only"), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode")), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub(super) async fn review(
    State(hq): State<Hq>,
    headers: HeaderMap,
    q: Result<Query<ReviewQuery>, QueryRejection>,
) -> Response {
    let dry_run = match q {
        Ok(Query(q)) => q.dry_run.unwrap_or(true),
        Err(e) => return bad_query(e.body_text()),
    };
    let by = operator_or_system(&headers);
    let today = StoreCalendar::default().business_date(crate::ingest::system_now_ms());
    match crate::tiers::run(&hq.ingest, hq.storage.clone(), today, dry_run, by).await {
        Ok(Some(r)) => {
            let moves: Vec<_> = r
                .moves
                .iter()
                .take(crate::tiers::MOVES_LISTED)
                .map(|m| {
                    let (name, phone) = r.who.get(&m.member_id).cloned().unwrap_or_default();
                    json!({"member_id": m.member_id.to_string(), "name": name,
                           "phone_masked": phone, "from": m.from, "to": m.to,
                           "qualifying": m.qualifying})
                })
                .collect();
            axum::Json(json!({
                "as_of": r.as_of,
                "dry_run": dry_run,
                "checked": r.checked,
                "up": r.up,
                "down": r.down,
                "moves": moves,
            }))
            .into_response()
        }
        Ok(None) => Code::NotFound.answer("no tier table is published: publish one first"),
        Err(e) => unavailable(e),
    }
}
