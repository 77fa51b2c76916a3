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

pub(super) fn product_json(views: &dyn ViewKv, sku: &Sku) -> Response {
    match inventory::product(views, sku) {
        Ok(Some(p)) => axum::Json(ProductForm::from_product(&p)).into_response(),
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
