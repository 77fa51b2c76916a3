//! Stock as headquarters holds it: chain-wide per product, and one store's.

use super::*;
use catalogue::product_json;

pub(super) fn level_json(level: &inventory::StockLevel) -> serde_json::Value {
    json!({
        "store_id": level.store,
        "sku": level.sku,
        "on_hand": level.on_hand.to_string(),
        "low_stock": level.low_stock.map(|q| q.to_string()),
        "low": level.low,
        "negative": level.negative,
    })
}

#[derive(Deserialize)]
pub(super) struct StockQuery {
    sku: String,
}

/// Chain-wide stock of one product: every store's, goods in transit, and the total.
#[utoipa::path(get, path = "/api/v1/stock", params(("sku" = String, Query)), responses((status = 200, body = Object)))]
pub(super) async fn chain_stock(
    State(hq): State<Hq>,
    q: Result<Query<StockQuery>, QueryRejection>,
) -> Response {
    let Ok(Ok(sku)) = q.map(|Query(q)| Sku::parse(&q.sku)) else {
        return Code::InvalidSku.answer("give ?sku=");
    };
    answer_from(&hq, move |storage| {
        let views = hub_views(storage);
        if let Ok(None) = inventory::product(&views, &sku) {
            return product_json(&views, &sku);
        }
        // Stock and goods in transit are read apart; a transfer step landing between the two reads
        // would count its goods twice or not at all. Its batch also moves the feed's length, so read
        // again until the length did not move under us.
        let mut tries = 0;
        let (rows, total, in_transit) = loop {
            let before = storage.feed_len().ok();
            let read = stock_and_transit(storage, &views, &sku);
            tries += 1;
            match read {
                Ok(read) if storage.feed_len().ok() == before || tries >= 10 => break read,
                Ok(_) => continue,
                Err(e) => return unavailable(e),
            }
        };
        axum::Json(json!({
            "sku": sku,
            "stores": rows,
            "in_transit": Qty(in_transit).to_string(),
            "total": Qty(total.saturating_add(in_transit)).to_string(),
        }))
        .into_response()
    })
    .await
}

/// Every store's level of `sku` (those holding some or under their threshold), their total,
/// and the goods in transit.
pub(super) fn stock_and_transit(
    storage: &dyn HubStore,
    views: &dyn ViewKv,
    sku: &Sku,
) -> Result<(Vec<serde_json::Value>, i64, i64), String> {
    let stores = storage.stores().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut total = 0i64;
    for (store, _, _) in stores.into_iter().filter(|(s, _, _)| *s != StoreId::hq()) {
        let level = inventory::level(views, &store, sku)?;
        if level.on_hand.0 != 0 || level.low {
            total = total.saturating_add(level.on_hand.0);
            rows.push(level_json(&level));
        }
    }
    Ok((rows, total, transfers_in_transit(storage, sku)?))
}

pub(super) fn transfers_in_transit(storage: &dyn HubStore, sku: &Sku) -> Result<i64, String> {
    let mut total: i64 = 0;
    for (key, bytes) in storage
        .views(b"tr/", usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let transfer: Transfer = postcard::from_bytes(&bytes)
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&key)))?;
        for (_, q) in transfer.in_transit().iter().filter(|(s, _)| s == sku) {
            total = total.saturating_add(q.0);
        }
    }
    Ok(total)
}

#[derive(Deserialize)]
pub(super) struct StoreStockQuery {
    /// "low" (at or under the threshold, 库存预警) or "negative".
    alerts: Option<String>,
}

/// One store's stock as headquarters holds it; `?alerts=low|negative` for what needs attention.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/stock", params(("store_id" = String, Path), ("alerts" = Option<String>, Query, description = "low or negative")), responses((status = 200, body = Object)))]
pub(super) async fn store_stock(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    q: Result<Query<StoreStockQuery>, QueryRejection>,
) -> Response {
    let store = match store_in_path(&raw) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    let filter = match q.map(|Query(q)| q.alerts) {
        Ok(None) => None,
        Ok(Some(a)) if a == "low" || a == "negative" => Some(a),
        _ => {
            return Code::InvalidQuery.answer("alerts is low or negative");
        }
    };
    answer_from(&hq, move |storage| {
        let views = hub_views(storage);
        let prefix = inventory::keys::stock_prefix(&store);
        let cells = match storage.views(&prefix, usize::MAX) {
            Ok(cells) => cells,
            Err(e) => return unavailable(e.to_string()),
        };
        let mut rows = Vec::new();
        for (key, _) in cells {
            let Some(sku) = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|s| Sku::parse(s).ok())
            else {
                continue;
            };
            let level = match inventory::level(&views, &store, &sku) {
                Ok(level) => level,
                Err(e) => return unavailable(e),
            };
            let keep = match filter.as_deref() {
                Some("low") => level.low,
                Some(_) => level.negative,
                None => true,
            };
            if keep {
                rows.push(level_json(&level));
            }
        }
        axum::Json(json!({"store_id": store, "stock": rows})).into_response()
    })
    .await
}
