//! The cashier HTTP API (JSON over HTTP on the store's own PC). Reads go straight to the views;
//! every write goes to the journal with its `Idempotency-Key`.
mod app;
mod backups;
mod card;
mod checkout;
mod dto;
pub mod error;
mod favourites;
mod follow;
mod gifts;
mod inventory;
mod login;
mod member_page;
mod members;
mod metrics;
mod reports;
mod rights;
mod sales;
mod shift;
mod status;
mod ui;
mod wallet;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use utoipa::OpenApi;

pub use dto::*;
use error::{ApiError, Code, ErrorBody};

use crate::openapi::ErrorStatuses;

pub use app::{AppState, BODY_BYTES_MAX, SALES_LIMIT_MAX};
pub use metrics::NodeMetrics;
pub use rights::collect_overdrafts;

#[derive(OpenApi)]
#[openapi(
    info(title = "Store node cashier API (门店收银接口)", version = "1"),
    paths(
        status::health,
        status::sync_status,
        backups::take,
        backups::list,
        status::member_rules,
        members::search_members,
        members::register_member,
        members::get_member,
        members::edit_member,
        members::lookup_member,
        members::member_sales,
        members::member_tier,
        sales::quick_checkout,
        sales::get_sale,
        sales::return_sale,
        wallet::get_wallet,
        wallet::top_up,
        wallet::adjust_points,
        wallet::sell_card,
        wallet::use_card,
        wallet::refund,
        wallet::set_password,
        wallet::clock_in,
        wallet::clock_out,
        gifts::list,
        gifts::redeem,
        card::lost,
        card::found,
        card::reissue,
        card::preview,
        card::close,
        checkout::quote,
        checkout::item_checkout,
        checkout::issue_coupon,
        checkout::list_coupons,
        checkout::receipt,
        checkout::hold_order,
        checkout::held_orders,
        checkout::held_order,
        checkout::void_order,
        inventory::catalogue_version,
        inventory::get_product,
        inventory::lookup_product,
        favourites::favourites,
        shift::current,
        shift::close,
        inventory::store_stock,
        inventory::stock_of,
        inventory::receive_goods,
        inventory::write_off,
        inventory::open_stocktake,
        inventory::list_stocktakes,
        inventory::count_stocktake,
        inventory::request_transfer,
        inventory::ship_transfer,
        inventory::cancel_transfer,
        inventory::receive_transfer,
        inventory::get_transfer,
        inventory::list_transfers,
        reports::sales,
        reports::members,
        login::login,
        login::logout
    ),
    components(schemas(ErrorBody, MoneySchema)),
    modifiers(&ErrorStatuses)
)]
pub struct ApiDoc;

pub fn router(state: Arc<AppState>) -> Router {
    let routes = routes();
    // Every route above counted and timed, when metrics are on.
    let routes = match &state.metrics {
        Some(m) => routes.route("/metrics", get(metrics::metrics)).route_layer(
            axum::middleware::from_fn_with_state(m.all.clone(), crate::metrics::track),
        ),
        None => routes,
    };
    routes
        .fallback(|| async { ApiError::new(Code::NotFound, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login::guard,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.http_names.clone()),
            web_guard,
        ))
        .with_state(state)
}

/// Every route the till's API serves.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        // 会员自助, passed on to headquarters (documented there).
        .route("/m", get(member_page::pass_on))
        .route("/ui/me.js", get(member_page::pass_on))
        .route("/ui/me.css", get(member_page::pass_on))
        .route("/api/v1/me", get(member_page::pass_on))
        .route("/api/v1/me/{*rest}", any(member_page::pass_on))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/health", get(status::health))
        .route("/api/v1/sync", get(status::sync_status))
        .route("/api/v1/backups", get(backups::list).post(backups::take))
        .route("/api/v1/member-rules", get(status::member_rules))
        .route("/api/v1/sessions", post(login::login).delete(login::logout))
        .route("/api/v1/members", post(members::register_member))
        .route("/api/v1/members/lookup", get(members::lookup_member))
        .route("/api/v1/members/search", get(members::search_members))
        .route(
            "/api/v1/members/{member_id}",
            get(members::get_member).patch(members::edit_member),
        )
        .route(
            "/api/v1/members/{member_id}/sales",
            get(members::member_sales),
        )
        .route(
            "/api/v1/members/{member_id}/tier",
            get(members::member_tier),
        )
        .route(
            "/api/v1/members/{member_id}/wallet",
            get(wallet::get_wallet),
        )
        .route("/api/v1/members/{member_id}/top-ups", post(wallet::top_up))
        .route(
            "/api/v1/members/{member_id}/points",
            post(wallet::adjust_points),
        )
        .route("/api/v1/members/{member_id}/cards", post(wallet::sell_card))
        .route(
            "/api/v1/members/{member_id}/cards/{card_id}/uses",
            post(wallet::use_card),
        )
        .route("/api/v1/members/{member_id}/refunds", post(wallet::refund))
        .route(
            "/api/v1/members/{member_id}/cards/{card_id}/clock-in",
            post(wallet::clock_in),
        )
        .route(
            "/api/v1/members/{member_id}/cards/{card_id}/clock-out",
            post(wallet::clock_out),
        )
        .route("/api/v1/gifts", get(gifts::list))
        .route("/api/v1/members/{member_id}/gifts", post(gifts::redeem))
        .route("/api/v1/members/{member_id}/card/lost", post(card::lost))
        .route("/api/v1/members/{member_id}/card/found", post(card::found))
        .route(
            "/api/v1/members/{member_id}/card/reissue",
            post(card::reissue),
        )
        .route("/api/v1/members/{member_id}/closing", get(card::preview))
        .route("/api/v1/members/{member_id}/close", post(card::close))
        .route(
            "/api/v1/members/{member_id}/password",
            axum::routing::put(wallet::set_password),
        )
        .route("/api/v1/checkouts/quick", post(sales::quick_checkout))
        .route("/api/v1/checkouts/quote", post(checkout::quote))
        .route("/api/v1/checkouts/items", post(checkout::item_checkout))
        .route(
            "/api/v1/orders/held",
            get(checkout::held_orders).post(checkout::hold_order),
        )
        .route("/api/v1/orders/held/{order_id}", get(checkout::held_order))
        .route(
            "/api/v1/orders/held/{order_id}/void",
            post(checkout::void_order),
        )
        .route(
            "/api/v1/members/{member_id}/coupons",
            get(checkout::list_coupons).post(checkout::issue_coupon),
        )
        .route("/api/v1/sales/{sale_id}", get(sales::get_sale))
        .route("/api/v1/sales/{sale_id}/returns", post(sales::return_sale))
        .route("/api/v1/sales/{sale_id}/receipt", get(checkout::receipt))
        .route("/api/v1/reports/sales", get(reports::sales))
        .route("/api/v1/reports/members", get(reports::members))
        .route("/api/v1/catalogue", get(inventory::catalogue_version))
        .route("/api/v1/products", get(inventory::lookup_product))
        .route("/api/v1/products/favourites", get(favourites::favourites))
        .route("/api/v1/shift", get(shift::current))
        .route("/api/v1/shift/close", post(shift::close))
        .route("/api/v1/products/{sku}", get(inventory::get_product))
        .route("/api/v1/stock", get(inventory::store_stock))
        .route("/api/v1/stock/receipts", post(inventory::receive_goods))
        .route("/api/v1/stock/damages", post(inventory::write_off))
        .route("/api/v1/stock/{sku}", get(inventory::stock_of))
        .route(
            "/api/v1/stocktakes",
            get(inventory::list_stocktakes).post(inventory::open_stocktake),
        )
        .route(
            "/api/v1/stocktakes/{id}/counts",
            post(inventory::count_stocktake),
        )
        .route(
            "/api/v1/transfers",
            get(inventory::list_transfers).post(inventory::request_transfer),
        )
        .route("/api/v1/transfers/{id}", get(inventory::get_transfer))
        .route(
            "/api/v1/transfers/{id}/ship",
            post(inventory::ship_transfer),
        )
        .route(
            "/api/v1/transfers/{id}/cancel",
            post(inventory::cancel_transfer),
        )
        .route(
            "/api/v1/transfers/{id}/receive",
            post(inventory::receive_transfer),
        )
}

/// Every request: its Host must be this store's (`protocol::web`: no DNS rebinding of a till);
/// every answer: the security headers.
async fn web_guard(
    State(names): State<Arc<Vec<String>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"));
    let mut response = match protocol::web::host_allowed(host, &names) {
        true => next.run(request).await,
        false => ApiError::new(
            Code::HostNotAllowed,
            format!("Host {host:?} is not this store's: add it to http_names in node.toml"),
        )
        .into_response(),
    };
    // What the router answers with an empty body gets the error body every other answer has.
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if let Some((code, message, detail)) = protocol::web::router_error(response.status().as_u16())
        && !json
    {
        let status = response.status();
        response = (
            status,
            axum::Json(serde_json::json!({"code": code, "message": message, "detail": detail})),
        )
            .into_response();
    }
    for (name, value) in protocol::web::SECURITY_HEADERS {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}

async fn openapi() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the OpenAPI document (read from this file's
    /// `.route("…"` calls, so a new route without its `#[utoipa::path]` fails here).
    #[test]
    fn every_route_is_documented() {
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
            .filter(|route| route.starts_with("/api/") && !route.starts_with("/api/v1/me"))
            .collect();
        assert!(routes.len() > 30, "{routes:?}");
        let missing: Vec<&&str> = routes.iter().filter(|r| !paths.contains_key(**r)).collect();
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    }
}
