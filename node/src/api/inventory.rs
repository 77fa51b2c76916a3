//! The store's inventory API: the catalogue as headquarters last published it (with this
//! store's prices), this store's stock and alerts, receiving (进货), write-offs (报损),
//! stocktakes (盘点) and transfers (调拨).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::catalogue::{Barcode, Product, ProductForm, Qty, Unit, parse_quantity};
use protocol::inventory::{self, CatalogueVersion, OpenStocktake, StockLevel};
use protocol::stock::Transfer;
use protocol::{DocId, Money, Sku, StoreId};
use serde::Deserialize;
use serde_json::json;

use super::app::{AppResult, Body, QueryResult, St, answer, parse_body, query, request_meta};
use super::error::{ApiError, Code};
use crate::journal::{
    Command, Request, StockAction, StockRequest, TransferAction, TransferRequest,
};

pub(super) fn storage(e: String) -> ApiError {
    ApiError::new(Code::Storage, e)
}

fn sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|e| ApiError::new(Code::InvalidId, e))
}

fn doc(raw: &str) -> Result<DocId, ApiError> {
    DocId::parse(raw).map_err(|e| ApiError::new(Code::InvalidId, e))
}

pub(super) fn product(app: &super::app::AppState, sku: &Sku) -> Result<Product, ApiError> {
    inventory::product(&app.views.kv(), sku)
        .map_err(storage)?
        .ok_or_else(|| ApiError::new(Code::UnknownSku, format!("no product {sku}")))
}

/// A line as the till sends it: a SKU or a barcode, and a quantity as a decimal string.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LineIn {
    sku: Option<String>,
    barcode: Option<String>,
    /// A decimal string: whole pieces ("6") or kilograms with up to three decimals ("1.250").
    #[schema(example = "2")]
    qty: String,
    /// What one unit cost (receiving only).
    #[schema(value_type = Option<super::dto::MoneySchema>)]
    cost: Option<Money>,
    /// The line's amount as the till set it (checkout and quote only): 改价 below the price,
    /// or what an open-price product (金额商品, no price in the catalogue) costs.
    #[schema(value_type = Option<super::dto::MoneySchema>)]
    pub(super) amount: Option<Money>,
}

/// Resolves a line to a catalogued SKU and a quantity in its unit (zero allowed only where
/// `zero_ok`: a transfer line received as none). Only a sale's line sets an amount.
pub(super) fn line(
    app: &super::app::AppState,
    l: &LineIn,
    zero_ok: bool,
) -> Result<(Sku, Qty), ApiError> {
    if l.amount.is_some() {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "only a sale's line sets an amount (改价)",
        ));
    }
    sku_qty(app, l, zero_ok)
}

/// A sale's line: SKU, quantity and the amount the till set, if any (in yuan, zero or more).
pub(super) fn sale_line(
    app: &super::app::AppState,
    l: &LineIn,
) -> Result<crate::journal::BasketLine, ApiError> {
    let (sku, qty) = sku_qty(app, l, false)?;
    // Zero is a free line (赠品); `cny_fen` refuses a negative amount.
    let set_amount = l.amount.as_ref().map(super::app::cny_fen).transpose()?;
    Ok(crate::journal::BasketLine {
        sku,
        qty,
        set_amount,
    })
}

fn sku_qty(app: &super::app::AppState, l: &LineIn, zero_ok: bool) -> Result<(Sku, Qty), ApiError> {
    let sku = match (&l.sku, &l.barcode) {
        (Some(s), None) => sku(s)?,
        (None, Some(code)) => {
            let code = Barcode::parse(code).map_err(|e| ApiError::new(Code::InvalidId, e))?;
            inventory::sku_of_barcode(&app.views.kv(), &code)
                .map_err(storage)?
                .ok_or_else(|| {
                    ApiError::new(Code::UnknownBarcode, format!("no product has {code}"))
                })?
        }
        _ => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "each line names a sku or a barcode",
            ));
        }
    };
    let unit = product(app, &sku)?.unit;
    let qty = parse_quantity(&l.qty)
        .and_then(|v| Qty::from_decimal(v, unit))
        .map_err(|e| ApiError::new(Code::InvalidQuantity, format!("{sku}: {e}")))?;
    if qty.0 < 0 || (qty.0 == 0 && !zero_ok) {
        return Err(ApiError::new(
            Code::InvalidQuantity,
            format!("{sku}: {}", l.qty),
        ));
    }
    Ok((sku, qty))
}

fn level_json(l: &StockLevel, unit: Unit) -> serde_json::Value {
    json!({
        "sku": l.sku,
        "on_hand": l.on_hand.to_string(),
        "unit": unit,
        "low_stock": l.low_stock.map(|q| q.to_string()),
        "low": l.low,
        "negative": l.negative,
    })
}

#[utoipa::path(get, path = "/api/v1/catalogue", responses((status = 200, body = Object)))]
pub(super) async fn catalogue_version(State(app): St) -> AppResult {
    let v: CatalogueVersion = inventory::read(&app.views.kv(), inventory::keys::CATALOGUE_VERSION)
        .map_err(storage)?
        .unwrap_or_default();
    Ok(axum::Json(json!({"version": v.version})).into_response())
}

fn product_out(app: &super::app::AppState, p: &Product) -> Result<Response, ApiError> {
    let here = &app.settings.store_id;
    let store_price = inventory::read(&app.views.kv(), &inventory::keys::store_price(here, &p.sku))
        .map_err(storage)?;
    let price_here = p.price_on(store_price, app.today()).map(Money::cny);
    let mut body = serde_json::to_value(ProductForm::from_product(p))
        .map_err(|e| ApiError::new(Code::Storage, e))?;
    body["price_here"] = json!(price_here);
    // 门店经营品项: whether this store may sell it (headquarters withdrew it otherwise).
    let not_carried = inventory::not_carried(&app.views.kv(), &p.sku).map_err(storage)?;
    body["carried_here"] = json!(!not_carried);
    Ok(axum::Json(body).into_response())
}

#[utoipa::path(get, path = "/api/v1/products/{sku}", params(("sku" = String, Path)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn get_product(State(app): St, Path(raw): Path<String>) -> AppResult {
    let p = product(&app, &sku(&raw)?)?;
    product_out(&app, &p)
}

#[derive(Deserialize)]
pub(super) struct BarcodeQuery {
    barcode: String,
}

/// Scanning: the product a barcode names.
#[utoipa::path(get, path = "/api/v1/products", params(("barcode" = String, Query)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn lookup_product(State(app): St, q: QueryResult<BarcodeQuery>) -> AppResult {
    let q = query(q)?;
    let l = LineIn {
        sku: None,
        barcode: Some(q.barcode),
        qty: "1".into(),
        cost: None,
        amount: None,
    };
    let (sku, _) = line(&app, &l, true)?;
    let p = product(&app, &sku)?;
    product_out(&app, &p)
}

#[derive(Deserialize)]
pub(super) struct StockQuery {
    alerts: Option<String>,
}

/// This store's stock; `?alerts=low` (库存预警) or `?alerts=negative`.
#[utoipa::path(get, path = "/api/v1/stock", params(("alerts" = Option<String>, Query, description = "low or negative")), responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn store_stock(State(app): St, q: QueryResult<StockQuery>) -> AppResult {
    let filter = query(q)?.alerts;
    if filter
        .as_deref()
        .is_some_and(|a| a != "low" && a != "negative")
    {
        return Err(ApiError::new(
            Code::InvalidQuery,
            "alerts is low or negative",
        ));
    }
    let here = &app.settings.store_id;
    let prefix = inventory::keys::stock_prefix(here);
    let kv = app.views.kv();
    let mut rows = Vec::new();
    for (key, _) in app.views.scan(&prefix)? {
        let Some(sku) = std::str::from_utf8(&key[prefix.len()..])
            .ok()
            .and_then(|s| Sku::parse(s).ok())
        else {
            continue;
        };
        let level = inventory::level(&kv, here, &sku).map_err(storage)?;
        let keep = match filter.as_deref() {
            Some("low") => level.low,
            Some(_) => level.negative,
            None => true,
        };
        if keep {
            let product = inventory::product(&kv, &sku).map_err(storage)?;
            let unit = product.as_ref().map_or(Unit::Piece, |p| p.unit);
            let mut row = level_json(&level, unit);
            row["name"] = json!(product.map(|p| p.name));
            rows.push(row);
        }
    }
    Ok(axum::Json(json!({"store_id": here, "stock": rows})).into_response())
}

#[utoipa::path(get, path = "/api/v1/stock/{sku}", params(("sku" = String, Path)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn stock_of(State(app): St, Path(raw): Path<String>) -> AppResult {
    let sku = sku(&raw)?;
    let p = product(&app, &sku)?;
    let level = inventory::level(&app.views.kv(), &app.settings.store_id, &sku).map_err(storage)?;
    Ok(axum::Json(level_json(&level, p.unit)).into_response())
}

/// Sends one write to the journal with the request's key, fingerprint and staff.
async fn write<T>(
    app: &super::app::AppState,
    headers: &HeaderMap,
    (route, body): (&str, &[u8]),
    body_of: T,
    command: impl FnOnce(Request<T>) -> Command,
) -> AppResult {
    let (key, fingerprint, staff) = request_meta(headers, route, body)?;
    let request = Request {
        key,
        fingerprint,
        staff,
        body: body_of,
    };
    let reply = app.journal.send(command(request)).await?;
    Ok(answer(StatusCode::CREATED, reply))
}

async fn stock_write(
    app: &super::app::AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    action: StockAction,
) -> AppResult {
    let body_of = StockRequest { action };
    write(app, headers, (route, body), body_of, Command::Stock).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceiptBody {
    #[serde(default)]
    supplier: String,
    #[serde(default)]
    note: String,
    lines: Vec<LineIn>,
}

/// 进货: goods received, with the supplier and each unit's cost.
#[utoipa::path(post, path = "/api/v1/stock/receipts", request_body(content = ReceiptBody, description = "supplier, note, lines [{sku, qty, cost}] (进货)"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn receive_goods(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: ReceiptBody = parse_body(&body)?;
    let mut lines = Vec::with_capacity(b.lines.len());
    for l in &b.lines {
        let (sku, qty) = line(&app, l, false)?;
        let cost = match &l.cost {
            Some(m) => Some(super::app::cny_fen(m)?),
            None => None,
        };
        lines.push((sku, qty, cost));
    }
    let action = StockAction::Receive {
        supplier: b.supplier,
        note: b.note,
        lines,
    };
    stock_write(&app, &headers, "stock/receipts", &body, action).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DamageBody {
    reason: String,
    lines: Vec<LineIn>,
}

/// 报损: goods written off, with a reason.
#[utoipa::path(post, path = "/api/v1/stock/damages", request_body(content = DamageBody, description = "reason, lines [{sku, qty}] (报损)"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn write_off(State(app): St, headers: HeaderMap, Body(body): Body) -> AppResult {
    let b: DamageBody = parse_body(&body)?;
    let lines = b
        .lines
        .iter()
        .map(|l| line(&app, l, false))
        .collect::<Result<_, _>>()?;
    let action = StockAction::Damage {
        reason: b.reason,
        lines,
    };
    stock_write(&app, &headers, "stock/damages", &body, action).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StocktakeBody {
    skus: Vec<String>,
}

/// 盘点 opens: the expected count of each SKU is taken now; sales go on while staff count.
#[utoipa::path(post, path = "/api/v1/stocktakes", request_body(content = StocktakeBody, description = "skus (盘点)"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn open_stocktake(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: StocktakeBody = parse_body(&body)?;
    let skus = b.skus.iter().map(|s| sku(s)).collect::<Result<_, _>>()?;
    stock_write(
        &app,
        &headers,
        "stocktakes",
        &body,
        StockAction::OpenStocktake { skus },
    )
    .await
}

/// 盘点单: this store's stocktakes opened and not yet counted, each SKU with its name and the
/// count expected when it opened (a page reloaded mid-count finds its stocktake again).
#[utoipa::path(get, path = "/api/v1/stocktakes", responses((status = 200, body = Object)))]
pub(super) async fn list_stocktakes(State(app): St) -> AppResult {
    let here = &app.settings.store_id;
    let kv = app.views.kv();
    let mut open = Vec::new();
    for (key, bytes) in app.views.scan(b"stt/")? {
        let st: OpenStocktake = postcard::from_bytes(&bytes)
            .map_err(|e| storage(format!("{}: {e}", String::from_utf8_lossy(&key))))?;
        if &st.store != here {
            continue;
        }
        let mut lines = Vec::with_capacity(st.expected.len());
        for (sku, expected) in &st.expected {
            let name = inventory::product(&kv, sku)
                .map_err(storage)?
                .map(|p| p.name);
            lines.push(json!({"sku": sku, "name": name, "expected": expected.to_string()}));
        }
        open.push(json!({"id": st.id, "opened_ms": st.opened_at.wall_ms, "lines": lines}));
    }
    Ok(axum::Json(json!({"stocktakes": open})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CountBody {
    counts: Vec<LineIn>,
}

/// 盘点 closes: what was counted; stock moves by counted − expected at opening.
#[utoipa::path(post, path = "/api/v1/stocktakes/{id}/counts", request_body(content = CountBody, description = "counts [{sku, qty}]"), params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn count_stocktake(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let stocktake = doc(&raw)?;
    let b: CountBody = parse_body(&body)?;
    let counts = b
        .counts
        .iter()
        .map(|l| line(&app, l, true))
        .collect::<Result<_, _>>()?;
    let route = format!("stocktakes/{stocktake}");
    stock_write(
        &app,
        &headers,
        &route,
        &body,
        StockAction::Count { stocktake, counts },
    )
    .await
}

async fn transfer_write(
    app: &super::app::AppState,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    action: TransferAction,
) -> AppResult {
    let body_of = TransferRequest { action };
    write(app, headers, (route, body), body_of, Command::Transfer).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[schema(value_type = String, example = "S002")]
    from: StoreId,
    #[schema(value_type = String, example = "S001")]
    to: StoreId,
    lines: Vec<LineIn>,
    #[serde(default)]
    note: String,
}

/// 调拨申请: this store asks for goods from another (or offers its own).
#[utoipa::path(post, path = "/api/v1/transfers", request_body(content = TransferBody, description = "from, to, lines [{sku, qty}] (调拨申请)"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn request_transfer(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: TransferBody = parse_body(&body)?;
    let lines = b
        .lines
        .iter()
        .map(|l| line(&app, l, false))
        .collect::<Result<_, _>>()?;
    let action = TransferAction::Request {
        from: b.from,
        to: b.to,
        lines,
        note: b.note,
    };
    transfer_write(&app, &headers, "transfers", &body, action).await
}

#[utoipa::path(post, path = "/api/v1/transfers/{id}/ship", params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub(super) async fn ship_transfer(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let transfer = doc(&raw)?;
    let route = format!("transfers/{transfer}/ship");
    transfer_write(
        &app,
        &headers,
        &route,
        &body,
        TransferAction::Ship { transfer },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/transfers/{id}/cancel", params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub(super) async fn cancel_transfer(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let transfer = doc(&raw)?;
    let b: ReasonBody = parse_body(&body)?;
    let route = format!("transfers/{transfer}/cancel");
    let action = TransferAction::Cancel {
        transfer,
        reason: b.reason,
    };
    transfer_write(&app, &headers, &route, &body, action).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceiveBody {
    /// What arrived; all that was shipped when left out.
    lines: Option<Vec<LineIn>>,
    discrepancy: Option<String>,
}

/// 调拨收货: the destination receives; a quantity different from what was shipped needs a
/// discrepancy note.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/receive", request_body(content = ReceiveBody, description = "lines [{sku, qty}], discrepancy"), params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn receive_transfer(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let transfer = doc(&raw)?;
    let b: ReceiveBody = parse_body(&body)?;
    let lines = match &b.lines {
        Some(lines) => lines
            .iter()
            .map(|l| line(&app, l, true))
            .collect::<Result<_, _>>()?,
        None => read_transfer(&app, &transfer)?.shipped,
    };
    let route = format!("transfers/{transfer}/receive");
    let action = TransferAction::Receive {
        transfer,
        lines,
        discrepancy: b.discrepancy,
    };
    transfer_write(&app, &headers, &route, &body, action).await
}

fn read_transfer(app: &super::app::AppState, id: &DocId) -> Result<Transfer, ApiError> {
    inventory::read(&app.views.kv(), &inventory::keys::transfer(id))
        .map_err(storage)?
        .ok_or_else(|| ApiError::new(Code::TransferNotFound, format!("no transfer {id}")))
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}", params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn get_transfer(State(app): St, Path(raw): Path<String>) -> AppResult {
    let t = read_transfer(&app, &doc(&raw)?)?;
    Ok(axum::Json(t).into_response())
}

/// Transfers this store takes part in, newest first.
#[utoipa::path(get, path = "/api/v1/transfers", responses((status = 200, body = Object)))]
pub(super) async fn list_transfers(State(app): St) -> AppResult {
    let here = &app.settings.store_id;
    let mut out = Vec::new();
    for (key, bytes) in app.views.scan(b"tr/")? {
        let t: Transfer = crate::views::decode(&key, &bytes)?;
        if t.from == *here || t.to == *here || t.requested_by == *here {
            out.push(t);
        }
    }
    out.sort_by(|a, b| {
        b.history
            .first()
            .map(|h| h.at)
            .cmp(&a.history.first().map(|h| h.at))
    });
    Ok(axum::Json(json!({"transfers": out})).into_response())
}
