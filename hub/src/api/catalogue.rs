//! 商品资料 at headquarters: catalogue change sets, the catalogue's version, products by sku or
//! barcode.

use super::*;

/// A whole catalogue import in one request (92k products is about 25 MB of JSON).
pub(super) const CATALOGUE_BODY_MAX: usize = 96 * 1024 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangesBody {
    /// Each one `{"op": "upsert" | "deactivate" | "store_price" | "bundle" | ..., ...}`.
    #[schema(value_type = Vec<Object>)]
    changes: Vec<ChangeForm>,
}

pub(super) fn catalogue_error(index: Option<usize>, e: CatalogueError) -> Response {
    let at = index.map_or(String::new(), |i| format!("change {i}: "));
    let code = match &e {
        CatalogueError::DuplicateBarcode { .. } => Code::DuplicateBarcode,
        CatalogueError::StockHeld { .. } => Code::StockHeld,
        CatalogueError::UnknownSku(_) => Code::UnknownSku,
        CatalogueError::UnknownBarcode(_) => Code::UnknownBarcode,
        _ => Code::InvalidChange,
    };
    code.answer(format!("{at}{e}"))
}

/// 商品资料变更: headquarters' catalogue change set, checked as a whole and written as the next
/// catalogue version (every store sees all of it or none of it).
#[utoipa::path(post, path = "/api/v1/catalogue/changes", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = ChangesBody, description = "商品资料变更: a change set, all or nothing"), responses((status = 201, body = Object)))]
pub(super) async fn change_catalogue(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<ChangesBody>, JsonRejection>,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, Code::InvalidChange),
    };
    let mut changes = Vec::with_capacity(body.changes.len());
    for (i, form) in body.changes.into_iter().enumerate() {
        match form.into_change() {
            Ok(change) => changes.push(change),
            Err(e) => return catalogue_error(Some(i), e),
        }
    }
    match hq.ingest.change_catalogue(changes, staff).await {
        Ok(Ok(written)) => (StatusCode::CREATED, axum::Json(written)).into_response(),
        Ok(Err(e)) => catalogue_error(None, e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/catalogue", responses((status = 200, body = Object)))]
pub(super) async fn catalogue_version(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        let views = hub_views(storage);
        match inventory::read::<inventory::CatalogueVersion>(
            &views,
            inventory::keys::CATALOGUE_VERSION,
        ) {
            Ok(v) => axum::Json(json!({"version": v.unwrap_or_default().version})).into_response(),
            Err(e) => unavailable(e),
        }
    })
    .await
}

/// A product as the API shows it, with the stores that carry it (门店经营品项; null: every
/// store).
fn product_row(
    views: &dyn ViewKv,
    p: &protocol::catalogue::Product,
) -> Result<(serde_json::Value, Option<Vec<StoreId>>), String> {
    let stores = inventory::carried(views, &p.sku)?;
    let mut row = json!(ProductForm::from_product(p));
    row["stores"] = json!(stores);
    Ok((row, stores))
}

pub(super) fn product_json(views: &dyn ViewKv, sku: &Sku) -> Response {
    match inventory::product(views, sku).and_then(|p| p.map(|p| product_row(views, &p)).transpose())
    {
        Ok(Some((body, _))) => axum::Json(body).into_response(),
        Ok(None) => Code::UnknownSku.answer(format!("no product {sku}")),
        Err(e) => unavailable(e),
    }
}

#[utoipa::path(get, path = "/api/v1/products/{sku}", params(("sku" = String, Path)), responses((status = 200, body = Object)))]
pub(super) async fn get_product(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let Ok(sku) = Sku::parse(&raw) else {
        return Code::InvalidSku.answer(raw);
    };
    answer_from(&hq, move |storage| product_json(&hub_views(storage), &sku)).await
}

#[derive(Deserialize)]
pub(super) struct ProductQuery {
    barcode: String,
}

#[utoipa::path(get, path = "/api/v1/products", params(("barcode" = String, Query)), responses((status = 200, body = Object)))]
pub(super) async fn lookup_product(
    State(hq): State<Hq>,
    q: Result<Query<ProductQuery>, QueryRejection>,
) -> Response {
    let code = match q.map(|Query(q)| Barcode::parse(&q.barcode)) {
        Ok(Ok(code)) => code,
        _ => {
            return Code::InvalidBarcode.answer("give ?barcode= with 4 to 20 digits");
        }
    };
    answer_from(&hq, move |storage| {
        let views = hub_views(storage);
        match inventory::sku_of_barcode(&views, &code) {
            Ok(Some(sku)) => product_json(&views, &sku),
            Ok(None) => Code::UnknownBarcode.answer(format!("no product has barcode {code}")),
            Err(e) => unavailable(e),
        }
    })
    .await
}

/// The most products one listing answers with.
const PRODUCTS_LISTED_MAX: usize = 1_000;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    limit: Option<usize>,
    store: Option<String>,
}

/// 商品资料: the catalogue's products in SKU order, those whose SKU, name or a barcode holds
/// `q` (up to `limit`, default 200, at most 1,000), each with the stores that carry it
/// (`stores`, null: every store); with `store`, that store's assortment (门店经营品项) only:
/// what is carried everywhere and what names it (a store yet to join carries the former).
#[utoipa::path(get, path = "/api/v1/catalogue/products", params(("q" = Option<String>, Query, description = "part of a SKU, name or barcode"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000), ("store" = Option<String>, Query, description = "the products this store carries, e.g. S002")), responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(super) async fn list_products(
    State(hq): State<Hq>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=PRODUCTS_LISTED_MAX).contains(&limit) {
        return bad_query(format!("limit: from 1 to {PRODUCTS_LISTED_MAX}"));
    }
    let needle = q.q.unwrap_or_default().trim().to_lowercase();
    if needle.chars().count() > 64 {
        return bad_query("q: at most 64 characters".into());
    }
    let store = match q.store.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => match StoreId::parse(s) {
            Ok(id) => Some(id),
            Err(e) => return bad_query(format!("store: {e}")),
        },
        None => None,
    };
    answer_from(&hq, move |storage| {
        let rows = match storage.views(b"pr/", usize::MAX) {
            Ok(rows) => rows,
            Err(e) => return unavailable(e.to_string()),
        };
        let views = hub_views(storage);
        let mut products = Vec::new();
        for (key, value) in rows {
            let p: protocol::catalogue::Product = match postcard::from_bytes(&value) {
                Ok(p) => p,
                Err(e) => {
                    return unavailable(format!("{}: {e}", String::from_utf8_lossy(&key)));
                }
            };
            let hit = needle.is_empty()
                || p.sku.as_str().to_lowercase().contains(&needle)
                || p.name.to_lowercase().contains(&needle)
                || p.barcodes.iter().any(|b| b.as_str().contains(&needle));
            if !hit {
                continue;
            }
            let (row, stores) = match product_row(&views, &p) {
                Ok(row) => row,
                Err(e) => return unavailable(e),
            };
            let here = match (&store, &stores) {
                (Some(store), Some(stores)) => stores.contains(store),
                _ => true,
            };
            if here {
                products.push(row);
                if products.len() == limit {
                    break;
                }
            }
        }
        axum::Json(json!({ "products": products })).into_response()
    })
    .await
}

/// 套餐: the chain's bundles, each with its items and price.
#[utoipa::path(get, path = "/api/v1/catalogue/bundles", responses((status = 200, body = Object)))]
pub(super) async fn list_bundles(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        let rows = match storage.views(b"bu/", usize::MAX) {
            Ok(rows) => rows,
            Err(e) => return unavailable(e.to_string()),
        };
        let mut bundles = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let b: protocol::catalogue::Bundle = match postcard::from_bytes(&value) {
                Ok(b) => b,
                Err(e) => return unavailable(format!("{}: {e}", String::from_utf8_lossy(&key))),
            };
            let items: Vec<_> = b
                .items
                .iter()
                .map(|(sku, qty)| json!([sku, qty.to_string()]))
                .collect();
            bundles.push(json!({"id": b.id, "name": b.name, "items": items,
                "price": Money::cny(b.price), "active": b.active}));
        }
        axum::Json(json!({ "bundles": bundles })).into_response()
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct StorePriceQuery {
    store: Option<String>,
}

/// 门店价: stores' own prices, one store's with `store` (the chain's price applies elsewhere).
#[utoipa::path(get, path = "/api/v1/catalogue/store-prices", params(("store" = Option<String>, Query, description = "one store's, e.g. S002")), responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(super) async fn list_store_prices(
    State(hq): State<Hq>,
    q: Result<Query<StorePriceQuery>, QueryRejection>,
) -> Response {
    let store = match q {
        Ok(Query(q)) => q.store.filter(|s| !s.trim().is_empty()),
        Err(e) => return bad_query(e.body_text()),
    };
    let prefix = match &store {
        Some(s) => match StoreId::parse(s.trim()) {
            Ok(id) => format!("spr/{id}/"),
            Err(e) => return bad_query(format!("store: {e}")),
        },
        None => "spr/".to_owned(),
    };
    answer_from(&hq, move |storage| {
        let rows = match storage.views(prefix.as_bytes(), usize::MAX) {
            Ok(rows) => rows,
            Err(e) => return unavailable(e.to_string()),
        };
        let mut prices = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let text = String::from_utf8_lossy(&key);
            let (Some((store, sku)), Ok(fen)) = (
                text["spr/".len()..].split_once('/'),
                postcard::from_bytes::<Fen>(&value),
            ) else {
                return unavailable(format!("{text}: not a store price"));
            };
            prices.push(json!({"store": store, "sku": sku, "price": Money::cny(fen)}));
        }
        axum::Json(json!({ "prices": prices })).into_response()
    })
    .await
}
