//! 常用商品: the products the till offers as one-touch buttons beside the cart — this store's
//! best sellers by units over the last 30 days (its own report cells), then, while there are
//! fewer than asked for, products it holds stock of.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::TimeDelta;
use protocol::reports::{SalesCell, keys};
use protocol::{Money, Sku, inventory};
use serde::Deserialize;
use serde_json::json;

use super::app::{AppResult, QueryResult, St, query};
use super::error::{ApiError, Code};
use super::inventory::storage;

/// The most buttons asked for, and the days of sales they come from.
const FAVOURITES_MAX: usize = 48;
const DAYS: i64 = 30;

#[derive(Deserialize)]
pub(super) struct FavouritesQuery {
    /// How many (default 12, at most 48).
    limit: Option<usize>,
}

/// The till's one-touch products: best sellers here first.
#[utoipa::path(get, path = "/api/v1/products/favourites", params(("limit" = Option<u32>, Query, minimum = 1, maximum = 48, description = "how many (default 12)")),
    responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn favourites(State(app): St, q: QueryResult<FavouritesQuery>) -> AppResult {
    let limit = query(q)?.limit.unwrap_or(12);
    if !(1..=FAVOURITES_MAX).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidQuery,
            format!("limit: from 1 to {FAVOURITES_MAX}"),
        ));
    }
    let here = app.settings.store_id.clone();
    let today = app.today();
    let mut units: HashMap<Sku, i64> = HashMap::new();
    for back in 0..DAYS {
        let prefix = keys::sku_prefix(today - TimeDelta::days(back));
        let mine = [prefix.as_slice(), here.as_str().as_bytes(), b"/"].concat();
        for (key, value) in app.views.scan(&mine)? {
            let Some(sku) = std::str::from_utf8(&key[mine.len()..])
                .ok()
                .and_then(|s| Sku::parse(s).ok())
            else {
                continue;
            };
            let cell: SalesCell = postcard::from_bytes(&value)
                .map_err(|e| ApiError::new(Code::Storage, format!("sku cell {sku}: {e}")))?;
            *units.entry(sku).or_default() += i64::try_from(cell.sales).unwrap_or(i64::MAX);
        }
    }
    let mut ranked: Vec<(Sku, i64)> = units.into_iter().filter(|(_, u)| *u > 0).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut skus: Vec<Sku> = ranked.into_iter().map(|(s, _)| s).collect();
    if skus.len() < limit {
        let prefix = inventory::keys::stock_prefix(&here);
        for (key, _) in app.views.scan(&prefix)? {
            if let Some(sku) = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|s| Sku::parse(s).ok())
                && !skus.contains(&sku)
            {
                skus.push(sku);
            }
        }
    }
    let kv = app.views.kv();
    let mut products = Vec::new();
    for sku in skus {
        if products.len() == limit {
            break;
        }
        // A product withdrawn from the catalogue since it sold is not offered.
        let Some(p) = inventory::product(&kv, &sku).map_err(storage)? else {
            continue;
        };
        let store_price =
            inventory::read(&kv, &inventory::keys::store_price(&here, &sku)).map_err(storage)?;
        products.push(json!({
            "sku": p.sku,
            "name": p.name,
            "barcode": p.barcodes.first(),
            "price_here": p.price_on(store_price, today).map(Money::cny),
        }));
    }
    Ok(axum::Json(json!({ "products": products })).into_response())
}
