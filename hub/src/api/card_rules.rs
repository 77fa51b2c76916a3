//! 退卡与计时规则 at headquarters: how every store closes a membership (the bonus share paid
//! back, cards pro rata or not, the handling fee) and charges a timed card (step, rounding,
//! free minutes), published as one entry of headquarters' log each (`protocol::card_rules`).

use protocol::card_rules::{self, CardRules, Published};

use super::*;
use crate::ingest::HqWrite;

/// The card rules in force (`current`, null before any: stores then close by the defaults and
/// round timed cards up to their own step) and every earlier set, newest first.
#[utoipa::path(get, path = "/api/v1/card-rules", responses((status = 200, body = Object)))]
pub(super) async fn get_rules(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        super::rules::history(
            storage,
            card_rules::keys::HISTORY,
            "rules",
            |p: &Published| (p.at, p.staff.clone(), json!(p.rules)),
        )
    })
    .await
}

/// Publishes the card rules: `bonus_refund_percent` (0–100, the share of the bonus left paid
/// back on closing), `cards` (`pro_rata` or `none`), `fee_percent` (0–50, kept from the
/// cash), `step_minutes` (1–60), `rounding` (`up`, `nearest`, `down`) and `free_minutes`
/// (0–120). A bad field is refused with its name; nothing is written.
#[utoipa::path(put, path = "/api/v1/card-rules", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = Object, description = "退卡与计时规则: bonus_refund_percent, cards (pro_rata|none), fee_percent, step_minutes, rounding (up|nearest|down), free_minutes"), responses((status = 201, body = Object)))]
pub(super) async fn set_rules(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<CardRules>, JsonRejection>,
) -> Response {
    let rules = match body {
        Ok(axum::Json(rules)) => rules,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    match rules.check() {
        Ok(()) => staff::write(&hq, &headers, HqWrite::CardRules(rules)).await,
        Err(e) => ApiError::new(Code::InvalidRules, &e)
            .on(e.field)
            .into_response(),
    }
}
