//! Quick sales (快速消费), one sale by its receipt number, and whole-sale returns.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::SaleId;
use protocol::sale::{PayWith, QuickSaleRequest};

use super::dto::*;
use super::error::{ApiError, Code, ErrorBody};

use crate::journal::SaleReturn;
use crate::journal::{Command, Request};

use super::app::*;
use super::rights::{overdraft_applies, spend};
use super::wallet::{check_password, without_password};

/// Quick checkout (快速消费): an amount, optionally a member, paid in cash.
#[utoipa::path(post, path = "/api/v1/checkouts/quick", request_body = QuickCheckoutBody,
    params(("Idempotency-Key" = String, Header), ("X-Staff-Id" = Option<String>, Header)),
    responses((status = 201, body = SaleOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn quick_checkout(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: QuickCheckoutBody = parse_body(&body)?;
    let (key, fingerprint, staff) =
        request_meta(&headers, "quick_checkout", &without_password(&body))?;
    let request = QuickSaleRequest {
        member_id: b.member_id.as_deref().map(member_id).transpose()?,
        amount: money(b.amount)?,
        category: b.category,
        cash_tendered: b.cash_tendered.map(money).transpose()?,
        pay_with: b.pay_with.unwrap_or_default(),
        offline_overdraft: false,
    };
    if let (PayWith::StoredValue, Some(member)) = (request.pay_with, request.member_id) {
        check_password(&app, member, &staff, b.password).await?;
    }
    let member = request.member_id;
    let mut request = Request {
        key,
        fingerprint,
        staff,
        body: request,
    };
    let key = request.key.clone();
    let reply = match spend(&app, member, &key, || {
        Command::QuickCheckout(request.clone())
    })
    .await
    {
        // Headquarters cannot be reached, or the store holding the rights cannot: the chain's
        // offline overdraft policy decides, and may want a store manager at the till (a
        // cashier is asked to call one). So does a store cut off past its lease (a fenced one
        // lends nothing).
        Err(e) if overdraft_applies(&app, e.code) => {
            let needs_manager = app.settings_now()?.wallet.overdraft_needs_manager;
            if needs_manager && !is_manager(&app, &request.staff) {
                return Err(ApiError::new(
                    Code::ManagerRequired,
                    "the balance cannot be reached now and an offline overdraft needs a store \
                     manager at the till: log in as the manager and take the payment again",
                ));
            }
            request.body.offline_overdraft = true;
            app.journal.send(Command::QuickCheckout(request)).await?
        }
        other => other?,
    };
    Ok(answer(StatusCode::CREATED, reply))
}

/// One sale by its receipt number.
#[utoipa::path(get, path = "/api/v1/sales/{sale_id}", params(("sale_id" = String, Path)),
    responses((status = 200, body = SaleOut), (status = 404, body = ErrorBody)))]
pub(super) async fn get_sale(State(app): St, Path(raw): Path<String>) -> AppResult {
    let id = SaleId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    if let Some(item_sale) = app.views.item_sale(&id)? {
        return Ok(axum::Json(item_sale_json(&item_sale, None)).into_response());
    }
    let sale = app
        .views
        .sale(&id)?
        .ok_or_else(|| ApiError::new(Code::SaleNotFound, &id))?;
    Ok(axum::Json(SaleOut::new(sale, None)).into_response())
}

/// Returns a sale (退货). A quick sale: whole, at the store that made it. An item sale: any
/// lines, any part of a line, at any store (a member's sale elsewhere asks headquarters for its
/// return rights; a sale without a member only where it was made), never more than was sold;
/// money back tender by tender as paid, stored value to principal and bonus, points used given
/// back and points earned taken back in proportion, the coupon back once nothing is left, and
/// the goods back on this store's shelf.
#[utoipa::path(post, path = "/api/v1/sales/{sale_id}/returns", request_body = ReturnBody,
    params(("sale_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = SaleOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn return_sale(
    State(app): St,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = SaleId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let (key, fingerprint, staff) = request_meta(&headers, &format!("return/{id}"), &body)?;
    let b: ReturnBody = parse_body(&body)?;
    let member = match app.views.item_sale(&id)? {
        Some(s) => s.sale.member_id,
        None => app.views.sale(&id)?.and_then(|s| s.sale.member_id),
    };
    let lines = b.lines.map(|lines| {
        lines
            .into_iter()
            .map(|l| protocol::returns::ReturnLine {
                line: l.line,
                qty: l.qty,
            })
            .collect()
    });
    let request = Request {
        key,
        fingerprint,
        staff,
        body: SaleReturn {
            sale_id: id,
            reason: b.reason,
            lines,
        },
    };
    let reply = spend(&app, member, &request.key.clone(), || {
        Command::ReturnSale(request.clone())
    })
    .await?;
    Ok(answer(StatusCode::CREATED, reply))
}
