//! Headquarters' OpenAPI document (`/openapi.json`): every route with its parameters and
//! request body, and every error status with the error body (`protocol::web::ERROR_STATUSES`).

use utoipa::OpenApi;

// The node's modifier, compiled here too (the hub does not depend on the node).
#[path = "../../../node/src/openapi.rs"]
mod openapi;
use openapi::ErrorStatuses;

/// An error: a stable code, a Chinese message for the page, an English detail.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody {
    #[schema(example = "login_required")]
    pub code: String,
    #[schema(example = "请先登录")]
    pub message: String,
    pub detail: String,
    /// The request field at fault, when one is, e.g. `points_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Headquarters hub API (连锁总部接口)", version = "1"),
    paths(
        super::health,
        super::stores::stores,
        super::backups::take,
        super::backups::list,
        super::stores::hold_store,
        super::stores::revoke_store,
        super::stores::void_hold,
        super::stores::store_entries,
        super::stock::store_stock,
        super::catalogue::change_catalogue,
        super::catalogue::catalogue_version,
        super::catalogue::list_products,
        super::catalogue::list_bundles,
        super::shifts::shifts,
        super::me::request_code,
        super::me::sign_in,
        super::me::sign_out,
        super::me::me,
        super::me::member_code,
        super::me::set_password,
        super::gifts::my_gifts,
        super::gifts::redeem_mine,
        super::catalogue::list_store_prices,
        super::catalogue::get_product,
        super::catalogue::lookup_product,
        super::stock::chain_stock,
        super::transfers::request_transfer,
        super::transfers::transfer_step,
        super::transfers::get_transfer,
        super::transfers::list_transfers,
        super::members::get_member,
        super::members::lookup_member,
        super::members::search_members,
        super::members::get_wallet,
        super::privacy::export_member,
        super::privacy::erase_member,
        super::privacy::card_lost,
        super::import::import_members,
        super::members::tag_members,
        super::import::import_progress,
        super::money::liabilities,
        super::money::settlement,
        super::login::login,
        super::login::logout,
        super::reports::sales,
        super::reports::members,
        super::rules::get_rules,
        super::tiers::get_tiers,
        super::tiers::set_tiers,
        super::tiers::review,
        super::card_rules::get_rules,
        super::card_rules::set_rules,
        super::gifts::get_gifts,
        super::gifts::set_gifts,
        super::gifts::gift_report,
        super::referral::get_rules,
        super::referral::set_rules,
        super::referral::report,
        super::marketing::overview,
        super::marketing::put_template,
        super::marketing::put_segment,
        super::marketing::count_segment,
        super::marketing::put_campaign,
        super::marketing::run_campaign,
        super::marketing::outbox,
        super::marketing::campaign_report,
        super::rules::set_rules,
        super::staff::change_staff,
        super::staff::set_secret,
        super::staff::list_staff,
        super::staff::set_rules,
        super::staff::list_rules,
        super::staff::commissions,
        super::staff::audit
    ),
    components(schemas(ErrorBody)),
    modifiers(&ErrorStatuses, &ErrorCatalogue)
)]
pub(super) struct ApiDoc;

/// The error catalogue (`super::error::Code`) as the document's description: every code an
/// answer's `code` may hold, its status and its message.
struct ErrorCatalogue;

impl utoipa::Modify for ErrorCatalogue {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let mut text = String::from(
            "Every error answer is `{code, message, detail}` (`field` when one request field is at fault). Codes:\n\n| code | status | message |\n|---|---|---|\n",
        );
        for code in super::error::Code::ALL {
            text.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status().as_u16(),
                code.message_zh()
            ));
        }
        doc.info.description = Some(text);
    }
}

pub(super) async fn openapi() -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document (read from `api/mod.rs`'s `.route("…"`
    /// calls, so a new route without its `#[utoipa::path]` fails here), and every operation
    /// declares every error status (the modifier's work: this shows if it stops doing it).
    #[test]
    fn every_route_and_error_status_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        let paths = doc["paths"]
            .as_object()
            .cloned()
            .expect("the document has paths");
        let source = include_str!("mod.rs");
        let routes: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .filter(|route| route.starts_with("/api/"))
            .collect();
        assert!(routes.len() > 25, "{routes:?}");
        let missing: Vec<&&str> = routes.iter().filter(|r| !paths.contains_key(**r)).collect();
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
        for (path, item) in &paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                for (status, _) in protocol::web::ERROR_STATUSES {
                    assert!(
                        operation["responses"].get(status.to_string()).is_some(),
                        "{method} {path} does not declare {status}"
                    );
                }
            }
        }
    }
}
