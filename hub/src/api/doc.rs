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
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Headquarters hub API (连锁总部接口)", version = "1"),
    paths(
        super::health,
        super::stores,
        super::hold_store,
        super::void_hold,
        super::store_entries,
        super::store_stock,
        super::change_catalogue,
        super::catalogue_version,
        super::get_product,
        super::lookup_product,
        super::chain_stock,
        super::request_transfer,
        super::transfer_step,
        super::get_transfer,
        super::list_transfers,
        super::get_member,
        super::lookup_member,
        super::search_members,
        super::get_wallet,
        super::privacy::export_member,
        super::privacy::erase_member,
        super::liabilities,
        super::settlement,
        super::login::login,
        super::login::logout,
        super::reports::sales,
        super::reports::members,
        super::rules::get_rules,
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
    modifiers(&ErrorStatuses)
)]
pub(super) struct ApiDoc;

pub(super) async fn openapi() -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document (read from `api.rs`'s `.route("…"`
    /// calls, so a new route without its `#[utoipa::path]` fails here), and every operation
    /// declares every error status (the modifier's work: this shows if it stops doing it).
    #[test]
    fn every_route_and_error_status_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let source = include_str!("../api.rs");
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
