//! Item checkout (商品消费) and its preview (结算预览): the basket priced the way the till
//! charges it — the catalogue's prices at this store today, bundles, the member's tier and
//! birthday month, points deduction — every line step by step; then paid by any mix of tenders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use protocol::catalogue::Qty;
use protocol::pricing::Coupon;
use protocol::{Fen, MemberId, Money, Sku, StaffId};
use serde::Deserialize;
use serde_json::json;

use super::app::{AppResult, Body, St, cny_fen, parse_body, request_meta};
use super::dto::{held_plain, lines_json};
use super::error::{ApiError, Code};
use super::inventory::{LineIn, line, sale_line};
use super::rights::spend;
use super::wallet::{check_password, without_password};
use crate::journal::{
    BasketLine, Command, ItemCheckoutRequest, Request, TenderRequest, WalletAction, price_basket,
};

/// The coupon a till names, if any.
fn coupon_id(raw: Option<&str>) -> Result<Option<protocol::wallet::CardId>, ApiError> {
    raw.map(protocol::wallet::CardId::parse)
        .transpose()
        .map_err(|e| ApiError::new(Code::InvalidId, e))
}

/// The coupons a sale redeems: `coupon` (one) and then `coupons` (多券同用), each once, at
/// most `pricing::COUPONS_MAX`.
fn coupon_ids(
    one: Option<&str>,
    several: &[String],
) -> Result<Vec<protocol::wallet::CardId>, ApiError> {
    let mut ids: Vec<protocol::wallet::CardId> = coupon_id(one)?.into_iter().collect();
    for raw in several {
        ids.extend(coupon_id(Some(raw))?);
    }
    let max = protocol::pricing::COUPONS_MAX;
    if ids.len() > max {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!("a sale redeems at most {max} coupons"),
        ));
    }
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "a coupon is named twice: each is redeemed once",
        ));
    }
    Ok(ids)
}

fn resolve(app: &super::app::AppState, lines: &[LineIn]) -> Result<Vec<BasketLine>, ApiError> {
    lines.iter().map(|l| sale_line(app, l)).collect()
}

/// A held order's lines: a held basket keeps no amounts set at the till.
fn resolve_held(app: &super::app::AppState, lines: &[LineIn]) -> Result<Vec<(Sku, Qty)>, ApiError> {
    lines.iter().map(|l| line(app, l, false)).collect()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct QuoteBody {
    #[schema(value_type = Option<String>)]
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    /// Points the member wants to pay with (积分抵现).
    #[serde(default)]
    points: u64,
    /// A coupon of the member's to apply.
    coupon: Option<String>,
    /// More of the member's coupons, applied after `coupon` in this order (多券同用).
    #[serde(default)]
    coupons: Vec<String>,
}

/// 结算预览: nothing is written.
#[utoipa::path(post, path = "/api/v1/checkouts/quote", request_body(content = QuoteBody, description = "member_id, lines [{sku|barcode, qty}], points, coupon: priced line by line, nothing written"), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn quote(State(app): St, Body(body): Body) -> AppResult {
    let b: QuoteBody = parse_body(&body)?;
    let member = match b.member_id {
        Some(id) => Some((
            app.views
                .member(&id)?
                .ok_or_else(|| ApiError::new(Code::MemberNotFound, id))?,
            app.views.wallet(&id)?,
        )),
        None => None,
    };
    let coupons = coupon_ids(b.coupon.as_deref(), &b.coupons)?;
    let (priced, earned) = price_basket(
        app.views.store(),
        &app.settings_now()?,
        app.today(),
        member.as_ref().map(|(m, w)| (m, w)),
        (&resolve(&app, &b.lines)?, &coupons, b.points),
    )?;
    let earned = earned.0;
    Ok(axum::Json(json!({
        "lines": lines_json(&priced.lines),
        "subtotal": Money::cny(priced.subtotal),
        "discount": Money::cny(priced.discount),
        "due": Money::cny(priced.due),
        "points_used": priced.points_used,
        "points_earned": earned,
        "coupons": coupons.iter().zip(&priced.coupon_offs)
            .map(|(c, off)| json!({"coupon_id": c, "off": Money::cny(*off)}))
            .collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum TenderIn {
    Cash {
        #[schema(value_type = super::dto::MoneySchema)]
        tendered: Money,
    },
    /// 外币现金: e.g. `{"kind": "foreign_cash", "tendered": {"amount": "20", "currency": "USD"}}`.
    ForeignCash {
        #[schema(value_type = super::dto::MoneySchema)]
        tendered: Money,
    },
    Card {
        #[schema(value_type = super::dto::MoneySchema)]
        amount: Money,
        reference: String,
    },
    Wechat {
        #[schema(value_type = super::dto::MoneySchema)]
        amount: Money,
        reference: String,
    },
    Alipay {
        #[schema(value_type = super::dto::MoneySchema)]
        amount: Money,
        reference: String,
    },
    StoredValue {
        #[schema(value_type = super::dto::MoneySchema)]
        amount: Money,
    },
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemCheckoutBody {
    #[schema(value_type = Option<String>)]
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    #[serde(default)]
    points: u64,
    tenders: Vec<TenderIn>,
    /// Who served the member (for commissions), when not the cashier.
    #[schema(value_type = Option<String>)]
    served_by: Option<StaffId>,
    /// The member's payment password, when stored value pays.
    password: Option<String>,
    /// A coupon of the member's to redeem.
    coupon: Option<String>,
    /// More of the member's coupons, redeemed after `coupon` in this order (多券同用).
    #[serde(default)]
    coupons: Vec<String>,
    /// The held order (挂单) this sale pays.
    #[schema(value_type = Option<String>)]
    held_order: Option<protocol::DocId>,
    /// 补录: when the sale was made, in the store's local time (`2026-11-28T14:05:00`), for a
    /// sale taken on paper and entered later; at most the store's `backdate_days_max` ago.
    #[schema(value_type = Option<String>, example = "2026-11-28T14:05:00")]
    sold_at: Option<chrono::NaiveDateTime>,
}

/// 商品消费: scan items (by SKU or barcode), price them, take payment in any mix of tenders.
#[utoipa::path(post, path = "/api/v1/checkouts/items", request_body(content = ItemCheckoutBody, description = "member_id, lines, points, coupon, tenders [{kind: cash|foreign_cash|card|wechat|alipay|stored_value, ...}], served_by, password, held_order"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn item_checkout(
    State(app): St,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let b: ItemCheckoutBody = parse_body(&body)?;
    let (key, fingerprint, staff) =
        request_meta(&headers, "item_checkout", &without_password(&body))?;
    let mut tenders = Vec::with_capacity(b.tenders.len());
    for t in &b.tenders {
        tenders.push(match t {
            TenderIn::Cash { tendered } => TenderRequest::Cash {
                tendered: cny_fen(tendered)?,
            },
            TenderIn::ForeignCash { tendered } => TenderRequest::ForeignCash {
                currency: tendered.currency,
                amount: tendered
                    .to_fen()
                    .map_err(|e| ApiError::new(Code::InvalidAmount, e))?
                    .0,
            },
            TenderIn::Card { amount, reference } => TenderRequest::Card {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::Wechat { amount, reference } => TenderRequest::WeChat {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::Alipay { amount, reference } => TenderRequest::Alipay {
                amount: cny_fen(amount)?,
                reference: reference.clone(),
            },
            TenderIn::StoredValue { amount } => TenderRequest::StoredValue {
                amount: cny_fen(amount)?,
            },
        });
    }
    // 补录: a sale booked on an earlier day moves the day's figures, so it needs a store manager
    // (or the store's own operator, `system`, at a till without logins).
    if b.sold_at.is_some() && staff != StaffId::system() && !super::app::is_manager(&app, &staff) {
        return Err(ApiError::new(
            Code::ManagerRequired,
            "a sale entered late (补录) is entered by a store manager",
        ));
    }
    let lines = resolve(&app, &b.lines)?;
    check_overrides(&app, &staff, &lines)?;
    let stored = tenders
        .iter()
        .any(|t| matches!(t, TenderRequest::StoredValue { .. }));
    if let (true, Some(member)) = (stored, b.member_id) {
        check_password(&app, member, &staff, b.password).await?;
    }
    let request = Request {
        key,
        fingerprint,
        staff,
        body: ItemCheckoutRequest {
            member_id: b.member_id,
            lines,
            points: b.points,
            tenders,
            served_by: b.served_by,
            coupons: coupon_ids(b.coupon.as_deref(), &b.coupons)?,
            held_order: b.held_order,
            sold_at: b.sold_at,
        },
    };
    let key = request.key.clone();
    let reply = spend(&app, b.member_id, &key, || {
        Command::ItemCheckout(request.clone())
    })
    .await?;
    Ok(super::app::answer(StatusCode::CREATED, reply))
}

/// 改价 below the store's `override_floor_percent` of a line's price is a discount a cashier
/// may not give alone: a store manager logs in at the till (or the store's own operator,
/// `system`, at a till without logins). A product without a price (金额商品) is not a 改价.
fn check_overrides(
    app: &super::app::AppState,
    staff: &StaffId,
    lines: &[BasketLine],
) -> Result<(), ApiError> {
    if *staff == StaffId::system() || super::app::is_manager(app, staff) {
        return Ok(());
    }
    let floor = rust_decimal::Decimal::from(app.settings_now()?.override_floor_percent);
    let here = &app.settings.store_id;
    for l in lines {
        let Some(amount) = l.set_amount else { continue };
        let product = super::inventory::product(app, &l.sku)?;
        let store_price: Option<protocol::Fen> = protocol::inventory::read(
            &app.views.kv(),
            &protocol::inventory::keys::store_price(here, &l.sku),
        )
        .map_err(super::inventory::storage)?;
        let Some(unit) = store_price.or(product.price) else {
            continue;
        };
        // The line's price in fen, times 100 against the amount times the floor: no rounding.
        let price = rust_decimal::Decimal::from(unit.0) * rust_decimal::Decimal::from(l.qty.0)
            / rust_decimal::Decimal::ONE_THOUSAND;
        if rust_decimal::Decimal::from(amount.0) * rust_decimal::Decimal::ONE_HUNDRED
            < price * floor
        {
            return Err(ApiError {
                field: Some("lines"),
                ..ApiError::new(
                    Code::ManagerRequired,
                    format!(
                        "{}: 改价 below {floor}% of the price needs a store manager at the till",
                        l.sku
                    ),
                )
            });
        }
    }
    Ok(())
}

/// A coupon's terms as the API takes them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum OfferIn {
    /// 满减
    AmountOff {
        #[schema(value_type = super::dto::MoneySchema)]
        threshold: Money,
        #[schema(value_type = super::dto::MoneySchema)]
        off: Money,
    },
    /// 折扣券: `percent` off, e.g. "10".
    PercentOff {
        percent: String,
        #[serde(default)]
        #[schema(value_type = Option<super::dto::MoneySchema>)]
        threshold: Option<Money>,
        #[schema(value_type = Option<super::dto::MoneySchema>)]
        cap: Option<Money>,
    },
    /// 代金券
    Voucher {
        #[schema(value_type = super::dto::MoneySchema)]
        value: Money,
        #[serde(default)]
        #[schema(value_type = Option<super::dto::MoneySchema>)]
        threshold: Option<Money>,
    },
    /// 体验券: one unit of a product free.
    Experience {
        #[schema(value_type = String)]
        sku: Sku,
    },
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CouponBody {
    name: String,
    offer: OfferIn,
    #[schema(value_type = String, format = Date)]
    valid_from: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    valid_to: chrono::NaiveDate,
}

/// 发券: gives a member a coupon, spent at most once anywhere in the chain.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/coupons", request_body(content = CouponBody, description = "name, offer {kind: amount_off|percent_off|voucher|experience, ...}, valid_from, valid_to"), params(("member_id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn issue_coupon(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = super::app::member_id(&raw)?;
    let b: CouponBody = parse_body(&body)?;
    let zero = Money::cny(Fen(0));
    let offer = match b.offer {
        OfferIn::AmountOff { threshold, off } => Coupon::AmountOff {
            threshold: cny_fen(&threshold)?,
            off: cny_fen(&off)?,
        },
        OfferIn::PercentOff {
            percent,
            threshold,
            cap,
        } => Coupon::PercentOff {
            percent: percent.parse().map_err(|_| {
                ApiError::new(Code::FieldInvalid, "percent is a number such as \"10\"")
            })?,
            threshold: cny_fen(threshold.as_ref().unwrap_or(&zero))?,
            cap: cap.as_ref().map(cny_fen).transpose()?,
        },
        OfferIn::Voucher { value, threshold } => Coupon::Voucher {
            value: cny_fen(&value)?,
            threshold: cny_fen(threshold.as_ref().unwrap_or(&zero))?,
        },
        OfferIn::Experience { sku } => Coupon::Experience { sku },
    };
    let action = WalletAction::IssueCoupon {
        name: b.name,
        offer,
        from: b.valid_from,
        to: b.valid_to,
    };
    super::wallet::wallet_write(&app, &headers, "issue_coupon", &body, id, action).await
}

/// A member's coupons: what each offers, when it is good, whether it is used.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/coupons", params(("member_id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn list_coupons(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> AppResult {
    let id = super::app::member_id(&raw)?;
    if app.views.member(&id)?.is_none() {
        return Err(ApiError::new(Code::MemberNotFound, id));
    }
    let wallet = app.views.wallet(&id)?;
    let today = app.today();
    let coupons: Vec<serde_json::Value> = wallet
        .coupons
        .iter()
        .map(|(coupon, def)| {
            let state = match wallet.usable_coupon(coupon, today) {
                Ok(_) => "usable",
                Err(protocol::wallet::WalletError::CouponUsed(_)) => "used",
                Err(_) => "not_valid_today",
            };
            // Its one use held here: redeemable while headquarters is out of reach.
            let counter = protocol::wallet::Counter::Uses {
                card: coupon.clone(),
            };
            let held_here = wallet
                .counters
                .get(&counter)
                .is_some_and(|r| r.held(&app.settings.store_id) > 0);
            json!({
                "coupon_id": coupon, "name": def.name, "offer": def.offer, "held_here": held_here,
                "valid_from": def.from, "valid_to": def.to, "issued_at": def.issued_at,
                "state": state, "scope": def.scope, "stacks": def.stacks,
                "campaign": def.campaign.as_ref().map(|(campaign, _)| campaign),
            })
        })
        .collect();
    Ok(axum::Json(json!({"member_id": id, "coupons": coupons})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiptQuery {
    /// 58 or 80 (mm); 80 by default.
    paper: Option<u32>,
    /// "text" (default) or "html".
    format: Option<String>,
}

/// 小票: a sale's receipt as plain text for a 58 mm or 80 mm printer, or as a printable page.
#[utoipa::path(get, path = "/api/v1/sales/{sale_id}/receipt", params(("sale_id" = String, Path), ("paper" = Option<u32>, Query, description = "58 or 80 (mm), default 80"), ("format" = Option<String>, Query, description = "text (default) or html")), responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn receipt(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
    q: super::app::QueryResult<ReceiptQuery>,
) -> AppResult {
    use crate::receipt::{Paper, Receipt, ReceiptLine};
    let q = super::app::query(q)?;
    let paper = match q.paper {
        None | Some(80) => Paper::Mm80,
        Some(58) => Paper::Mm58,
        Some(other) => {
            let why = format!("paper is 58 or 80 (mm), not {other}");
            return Err(ApiError::new(Code::InvalidQuery, why));
        }
    };
    let html = match q.format.as_deref() {
        None | Some("text") => false,
        Some("html") => true,
        Some(other) => {
            let why = format!("format is text or html, not {other}");
            return Err(ApiError::new(Code::InvalidQuery, why));
        }
    };
    let id = protocol::SaleId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidId, e))?;
    let time = |ms: u64| {
        let t = app.settings.calendar.local_time(ms);
        t.format("%Y-%m-%d %H:%M").to_string()
    };
    let member_line = |m: &MemberId| -> Result<Option<String>, ApiError> {
        Ok(app
            .views
            .member(m)?
            .map(|v| format!("{} {}", v.profile.phone.masked(), v.profile.name)))
    };
    let balance = |m: Option<&MemberId>| -> Result<Option<(Fen, u64)>, ApiError> {
        m.map(|m| {
            app.summary(m)
                .map(|s| (Fen(s.principal.0 + s.bonus.0), s.points))
        })
        .transpose()
    };
    // This store knows its own name; another store's sale is printed under its number.
    let name_of = |origin: &protocol::StoreId| match *origin == app.settings.store_id {
        true => app.store_name.clone(),
        false => format!("门店 {origin}"),
    };
    let r = if let Some(v) = app.views.item_sale(&id)? {
        let s = &v.sale;
        let kv = app.views.kv();
        let mut lines = Vec::with_capacity(s.lines.len());
        for l in &s.lines {
            let name = protocol::inventory::product(&kv, &l.sku)
                .map_err(|e| ApiError::new(Code::Storage, e))?
                .map_or_else(|| l.sku.to_string(), |p| p.name);
            lines.push(ReceiptLine {
                name,
                qty: l.qty.to_string(),
                unit_price: l.unit_price,
                gross: l.gross,
                steps: l.steps.iter().map(|st| (st.step, st.off)).collect(),
                net: l.net,
            });
        }
        // A sale entered late (补录) is dated the day it was made.
        let when = match app.settings.calendar.business_date(v.hlc.wall_ms) {
            today if today == v.business_date => time(v.hlc.wall_ms),
            _ => format!("{}（补录）", v.business_date),
        };
        Receipt {
            store_name: name_of(&v.origin),
            store_id: v.origin.to_string(),
            sale_id: id.to_string(),
            time: when,
            cashier: v.staff.to_string(),
            served_by: s.served_by.as_ref().map(ToString::to_string),
            member: s.member_id.as_ref().map(member_line).transpose()?.flatten(),
            lines,
            subtotal: s.subtotal,
            discount: s.discount,
            due: s.due,
            tenders: s.tenders.clone(),
            points_used: s.points_used,
            points_earned: s.points_earned.0,
            balance: balance(s.member_id.as_ref())?,
            referral_code: s.member_id.as_ref().map(protocol::referral::code),
            returns: v
                .returns
                .iter()
                .map(|r| {
                    (
                        r.business_date.to_string(),
                        r.origin.to_string(),
                        r.ret.amount,
                    )
                })
                .collect(),
        }
    } else {
        let v = app
            .views
            .sale(&id)?
            .ok_or_else(|| ApiError::new(Code::SaleNotFound, &id))?;
        let s = &v.sale;
        Receipt {
            store_name: name_of(&v.origin),
            store_id: v.origin.to_string(),
            sale_id: id.to_string(),
            time: time(v.hlc.wall_ms),
            cashier: v.staff.to_string(),
            served_by: None,
            member: s.member_id.as_ref().map(member_line).transpose()?.flatten(),
            lines: vec![ReceiptLine {
                name: s.category.clone().unwrap_or_else(|| "快速消费".to_owned()),
                qty: "1".to_owned(),
                unit_price: s.amount,
                gross: s.amount,
                steps: Vec::new(),
                net: s.amount,
            }],
            subtotal: s.amount,
            discount: Fen(0),
            due: s.amount,
            tenders: vec![s.tender.clone()],
            points_used: 0,
            points_earned: s.points_earned.0,
            balance: balance(s.member_id.as_ref())?,
            referral_code: s.member_id.as_ref().map(protocol::referral::code),
            returns: match v.returned_by {
                Some(_) => vec![(String::new(), v.origin.to_string(), s.amount)],
                None => Vec::new(),
            },
        }
    };
    let (body, kind) = match html {
        true => (r.html(paper), "text/html; charset=utf-8"),
        false => (r.text(paper), "text/plain; charset=utf-8"),
    };
    Ok(([(axum::http::header::CONTENT_TYPE, kind)], body).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    #[schema(value_type = Option<String>)]
    member_id: Option<MemberId>,
    lines: Vec<LineIn>,
    #[serde(default)]
    points: u64,
    coupon: Option<String>,
    /// More coupons, after `coupon` in this order (多券同用), as the checkout takes them.
    #[serde(default)]
    coupons: Vec<String>,
    #[schema(value_type = Option<String>)]
    served_by: Option<StaffId>,
    #[serde(default)]
    note: String,
}

/// A held order with what it would cost now (prices may have changed since it was held).
fn held_json(app: &super::app::AppState, h: &crate::journal::HeldView) -> serde_json::Value {
    let member = h
        .order
        .member_id
        .and_then(|id| Some((app.views.member(&id).ok()??, app.views.wallet(&id).ok()?)));
    // A view that cannot be read prices by the file's rules; the sale itself is priced again.
    let settings = app.settings_now().unwrap_or_else(|_| app.settings.clone());
    let quote = price_basket(
        app.views.store(),
        &settings,
        app.today(),
        member.as_ref().map(|(m, w)| (m, w)),
        (
            &crate::journal::held::basket_lines(&h.order.lines),
            &h.order.coupons,
            h.order.points,
        ),
    );
    let mut out = held_plain(h);
    out["due_now"] = json!(quote.ok().map(|(priced, _)| Money::cny(priced.due)));
    out
}

/// 挂单: parks a basket so the till can serve the next customer; any till of the store recalls
/// it (GET) and pays it (checkout with `held_order`), or voids it.
#[utoipa::path(post, path = "/api/v1/orders/held", request_body(content = HoldBody, description = "member_id, lines, points, coupon, coupons, served_by, note"), params(("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 201, body = Object), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub(super) async fn hold_order(State(app): St, headers: HeaderMap, Body(body): Body) -> AppResult {
    let b: HoldBody = parse_body(&body)?;
    let (key, fingerprint, staff) = request_meta(&headers, "hold_order", &body)?;
    let request = Request {
        key,
        fingerprint,
        staff,
        body: crate::journal::HeldOrder {
            member_id: b.member_id,
            lines: resolve_held(&app, &b.lines)?,
            points: b.points,
            coupons: coupon_ids(b.coupon.as_deref(), &b.coupons)?,
            served_by: b.served_by,
            note: b.note,
        },
    };
    let reply = app.journal.send(Command::HoldOrder(request)).await?;
    Ok(super::app::answer(StatusCode::CREATED, reply))
}

/// The store's held orders, oldest first.
#[utoipa::path(get, path = "/api/v1/orders/held", responses((status = 200, body = Object)))]
pub(super) async fn held_orders(State(app): St) -> AppResult {
    let mut orders = Vec::new();
    for (key, value) in app.views.scan(b"ho/")? {
        let h: crate::journal::HeldView = crate::views::decode(&key, &value)?;
        orders.push(held_json(&app, &h));
    }
    Ok(axum::Json(json!({ "orders": orders })).into_response())
}

fn order_id(raw: &str) -> Result<protocol::DocId, ApiError> {
    protocol::DocId::parse(raw).map_err(|e| ApiError::new(Code::InvalidId, e))
}

/// One held order, to recall at the till.
#[utoipa::path(get, path = "/api/v1/orders/held/{order_id}", params(("order_id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn held_order(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> AppResult {
    let id = order_id(&raw)?;
    let key = format!("ho/{id}").into_bytes();
    let found = app.views.scan(&key)?.into_iter().find(|(k, _)| *k == key);
    let Some((k, v)) = found else {
        return Err(ApiError::new(Code::NotFound, format!("held order {id}")));
    };
    let h: crate::journal::HeldView = crate::views::decode(&k, &v)?;
    Ok(axum::Json(held_json(&app, &h)).into_response())
}

/// 作废: voids a held order before payment.
#[utoipa::path(post, path = "/api/v1/orders/held/{order_id}/void", params(("order_id" = String, Path), ("Idempotency-Key" = String, Header, description = "client-minted key; a retry with the same key returns the first answer"), ("X-Staff-Id" = Option<String>, Header)), responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn void_order(
    State(app): St,
    axum::extract::Path(raw): axum::extract::Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> AppResult {
    let id = order_id(&raw)?;
    let (key, fingerprint, staff) = request_meta(&headers, &format!("void/{id}"), &body)?;
    let request = Request {
        key,
        fingerprint,
        staff,
        body: id,
    };
    let reply = app.journal.send(Command::VoidHeld(request)).await?;
    Ok(super::app::answer(StatusCode::OK, reply))
}
