//! Staff (员工) and commissions (提成) at headquarters: the staff directory every store checks
//! staff ids against, commission rules by category, service and card from a date on, and each
//! staff member's commission for a month, computed from the stores' logs.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use protocol::commission::{self, CommissionRules, Rate};
use protocol::entry::{Entry, Payload};
use protocol::sale::ItemSale;
use protocol::staff::{StaffRecord, StaffRole};
use rust_decimal::Decimal;

use super::login::Scope;
use super::*;
use crate::ingest::{HqWrite, HqWriteError};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StaffBody {
    staff: Vec<StaffIn>,
}

#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffIn {
    #[schema(value_type = String, example = "c01")]
    id: StaffId,
    name: String,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "S001")]
    store: Option<StoreId>,
    /// cashier, manager, auditor or hq_admin
    #[schema(value_type = String, example = "cashier")]
    role: StaffRole,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

pub(super) fn write_error(e: HqWriteError) -> Response {
    match e {
        HqWriteError::Storage(e) => unavailable(e),
        e @ HqWriteError::UnknownMember(_) => Code::MemberNotFound.answer(e),
        e @ HqWriteError::NotErasable(_) => Code::NotErasable.answer(e),
        e @ HqWriteError::CardState(_) => Code::CardStateInvalid.answer(e),
        e @ HqWriteError::Tag(_) => Code::InvalidRequest.answer(e),
        e @ HqWriteError::TooLarge(_) => Code::PayloadTooLarge.answer(e),
        HqWriteError::Staff(e) => Code::InvalidStaff.answer(e),
        HqWriteError::Rules(e) => ApiError::new(Code::InvalidRules, &e)
            .on(e.field)
            .into_response(),
        HqWriteError::Commission(e) => Code::InvalidCommissionRules.answer(e),
        HqWriteError::Gift(e) => match e {
            protocol::gifts::GiftRefused::Unknown(_) => Code::GiftNotFound.answer(e),
            protocol::gifts::GiftRefused::Limit { .. } => Code::GiftLimit.answer(e),
            _ => Code::GiftUnavailable.answer(e),
        },
        HqWriteError::Points(e) => Code::InsufficientPoints.answer(e),
        e @ HqWriteError::Gathering => Code::PointsGathering.answer(e),
        e @ HqWriteError::Unreachable(_) => Code::PointsUnreachable.answer(e),
        HqWriteError::Gifts(e) => {
            const FIELDS: [&str; 8] = [
                "gifts",
                "id",
                "name",
                "points",
                "per_member",
                "stock",
                "stores",
                "kind",
            ];
            let mut error = ApiError::new(Code::InvalidMarketing, &e);
            error.field = FIELDS.into_iter().find(|f| *f == e.field);
            error.into_response()
        }
    }
}

/// A body that is not the route's JSON.
fn bad_body(e: JsonRejection) -> Response {
    super::body_refused(e, Code::InvalidRequest)
}

pub(super) async fn write(hq: &Hq, headers: &HeaderMap, what: HqWrite) -> Response {
    let staff = match operator(headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    match hq.ingest.hq_write(what, staff).await {
        Ok(Ok(())) => (StatusCode::CREATED, axum::Json(json!({"written": true}))).into_response(),
        Ok(Err(e)) => write_error(e),
        Err(e) => unavailable(e.to_string()),
    }
}

/// 员工资料: adds or replaces staff records; every store refuses ids not in the directory.
#[utoipa::path(post, path = "/api/v1/staff", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = StaffBody), responses((status = 201, body = Object)))]
pub(super) async fn change_staff(
    State(hq): State<Hq>,
    scope: Option<axum::Extension<Scope>>,
    headers: HeaderMap,
    body: Result<axum::Json<StaffBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return bad_body(e),
    };
    let (scope, proposed) = (scope.map(|s| s.0), body.staff.clone());
    let checked = read(&hq, move |storage| {
        let views = crate::ingest::HubViews::reader(storage);
        for s in &proposed {
            let change = (s.store.as_ref(), s.role);
            if let Err(refused) = own_cashier(storage, scope.as_ref(), &s.id, Some(change))? {
                return Ok(Err(refused));
            }
            // A store login (perhaps a PIN) may not become a chain-wide one, whose hash every
            // store holds: it is removed first, and a password of chain-wide length set after.
            let was_local =
                protocol::staff::read(&views, &s.id)?.is_some_and(|r| r.store.is_some());
            let has_login = protocol::staff::credentials(&views, &s.id)?.is_some();
            if s.store.is_none() && was_local && has_login {
                return Ok(Err(Code::InvalidStaff.answer(format!(
                    "{} has a store login: remove it (PUT /api/v1/staff/{}/password with null) \
                     before making the account chain-wide",
                    s.id, s.id
                ))));
            }
        }
        Ok::<_, String>(Ok(()))
    })
    .await;
    match checked {
        Ok(Ok(())) => {}
        Ok(Err(refused)) | Err(refused) => return refused,
    }
    let records = body
        .staff
        .into_iter()
        .map(|s| StaffRecord {
            id: s.id,
            name: s.name.trim().to_owned(),
            store: s.store,
            role: s.role,
            active: s.active,
        })
        .collect();
    write(&hq, &headers, HqWrite::Staff(records)).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretBody {
    /// The new password or PIN; `null` removes the login.
    password: Option<String>,
}

/// 员工密码: headquarters sets a member of staff's password or PIN (kept only as an argon2
/// hash, which every store receives to check logins offline), or removes it.
#[utoipa::path(put, path = "/api/v1/staff/{staff_id}/password", params(("staff_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = SecretBody), responses((status = 201, body = Object)))]
pub(super) async fn set_secret(
    State(hq): State<Hq>,
    scope: Option<axum::Extension<Scope>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<SecretBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return bad_body(e),
    };
    let Ok(id) = StaffId::parse(&raw) else {
        return Code::InvalidId.answer(raw);
    };
    let (scope, of) = (scope.map(|s| s.0), id.clone());
    let record = read(&hq, move |storage| {
        let record = protocol::staff::read(&crate::ingest::HubViews::reader(storage), &of)?;
        Ok::<_, String>(own_cashier(storage, scope.as_ref(), &of, None)?.map(|()| record))
    })
    .await;
    let record = match record {
        Ok(Ok(record)) => record,
        Ok(Err(refused)) | Err(refused) => return refused,
    };
    let hash = match body.password {
        None => None,
        Some(secret) => {
            if let Err(e) = protocol::staff::check_secret(record.as_ref(), &secret) {
                return Code::InvalidPassword.answer(e);
            }
            let mut salt = [0u8; 16];
            if let Err(e) = getrandom::fill(&mut salt) {
                return unavailable(e.to_string());
            }
            match tokio::task::spawn_blocking(move || protocol::secret::hash(&secret, salt)).await {
                Ok(Some(hash)) => Some(hash),
                _ => return unavailable("hashing the password failed".into()),
            }
        }
    };
    write(&hq, &headers, HqWrite::Credentials(id, hash)).await
}

/// A store manager (by `scope`) may change only a cashier of their own store: the record as it
/// stands, if any, and as `proposed` (store, role), if changed. Everyone else may change anyone.
/// `Ok(Err(answer))` refuses; `Err` is a storage failure.
fn own_cashier(
    storage: &dyn HubStore,
    scope: Option<&Scope>,
    id: &StaffId,
    proposed: Option<(Option<&StoreId>, StaffRole)>,
) -> Result<Result<(), Response>, String> {
    let Some(Scope {
        role: StaffRole::Manager,
        store,
    }) = scope
    else {
        return Ok(Ok(()));
    };
    let existing = protocol::staff::read(&crate::ingest::HubViews::reader(storage), id)?;
    let cashier_here = |(at, role): (Option<&StoreId>, StaffRole)| {
        role == StaffRole::Cashier && at.is_some() && at == store.as_ref()
    };
    let now_ok = existing.as_ref().map_or(proposed.is_some(), |r| {
        cashier_here((r.store.as_ref(), r.role))
    });
    if now_ok && proposed.is_none_or(cashier_here) {
        return Ok(Ok(()));
    }
    Ok(Err(Code::RoleForbidden.answer(format!(
        "a store manager changes only their own store's cashiers, not {id}"
    ))))
}

fn staff_directory(storage: &dyn HubStore) -> Result<BTreeMap<StaffId, StaffRecord>, String> {
    let rows = storage
        .views(protocol::staff::keys::PREFIX, usize::MAX)
        .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|(_, v)| postcard::from_bytes::<StaffRecord>(v).map_err(|e| e.to_string()))
        .map(|r| r.map(|r| (r.id.clone(), r)))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StaffQuery {
    /// Only this store's staff.
    store: Option<StoreId>,
}

#[utoipa::path(get, path = "/api/v1/staff", params(("store" = Option<String>, Query)), responses((status = 200, body = Object)))]
pub(super) async fn list_staff(
    State(hq): State<Hq>,
    q: Result<Query<StaffQuery>, QueryRejection>,
) -> Response {
    let store = match q {
        Ok(Query(q)) => q.store,
        Err(e) => return bad_query(e.body_text()),
    };
    answer_from(&hq, move |storage| match staff_directory(storage) {
        Ok(staff) => {
            let views = crate::ingest::HubViews::reader(storage);
            let staff: Vec<_> = staff
                .values()
                .filter(|s| store.is_none() || s.store == store)
                .map(|s| {
                    let login = protocol::staff::credentials(&views, &s.id)
                        .ok()
                        .flatten()
                        .is_some();
                    json!({"id": s.id, "name": s.name, "store": s.store, "role": s.role,
                               "active": s.active, "login": login})
                })
                .collect();
            axum::Json(json!({ "staff": staff })).into_response()
        }
        Err(e) => unavailable(e),
    })
    .await
}

/// A rate as the API takes it: `{"percent": "5"}` or `{"fixed": "10.00"}` (yuan per unit).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RateIn {
    Percent(String),
    Fixed(String),
}

impl RateIn {
    fn rate(&self) -> Result<Rate, String> {
        match self {
            RateIn::Percent(p) => p
                .parse::<Decimal>()
                .map(Rate::Percent)
                .map_err(|e| format!("percent {p:?}: {e}")),
            RateIn::Fixed(y) => protocol::money::parse_amount(y)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    Money::new(d, protocol::Currency::CNY)
                        .to_fen()
                        .map_err(|e| e.to_string())
                })
                .map(Rate::Fixed),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesBody {
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    #[serde(default)]
    categories: BTreeMap<String, RateIn>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, RateIn>)]
    skus: BTreeMap<Sku, RateIn>,
    #[serde(default)]
    cards: BTreeMap<String, RateIn>,
    #[serde(default)]
    card_default: Option<RateIn>,
}

fn rate_json(r: &Rate) -> serde_json::Value {
    match r {
        Rate::Percent(p) => json!({ "percent": p.to_string() }),
        Rate::Fixed(f) => json!({ "fixed": Money::cny(*f).amount.to_string() }),
    }
}

/// 提成规则: commission rules from a date on (today at the earliest), for sales made after they
/// are published; they replace the rules before them from that date.
#[utoipa::path(put, path = "/api/v1/commission-rules", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = RulesBody), responses((status = 201, body = Object)))]
pub(super) async fn set_rules(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<RulesBody>, JsonRejection>,
) -> Response {
    let b = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return bad_body(e),
    };
    let convert = || -> Result<CommissionRules, String> {
        let map = |m: &BTreeMap<String, RateIn>| -> Result<BTreeMap<String, Rate>, String> {
            m.iter().map(|(k, r)| Ok((k.clone(), r.rate()?))).collect()
        };
        Ok(CommissionRules {
            from: b.from,
            categories: map(&b.categories)?,
            skus: b
                .skus
                .iter()
                .map(|(k, r)| Ok((k.clone(), r.rate()?)))
                .collect::<Result<_, String>>()?,
            cards: map(&b.cards)?,
            card_default: b.card_default.as_ref().map(RateIn::rate).transpose()?,
        })
    };
    match convert() {
        Ok(rules) => write(&hq, &headers, HqWrite::Commission(rules)).await,
        Err(e) => Code::InvalidCommissionRules.answer(e),
    }
}

fn rule_sets(storage: &dyn HubStore) -> Result<Vec<commission::Published>, String> {
    let rows = storage
        .views(b"cr/", usize::MAX)
        .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|(_, v)| postcard::from_bytes(v).map_err(|e| e.to_string()))
        .collect()
}

#[utoipa::path(get, path = "/api/v1/commission-rules", responses((status = 200, body = Object)))]
pub(super) async fn list_rules(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| match rule_sets(storage) {
        Ok(sets) => {
            let sets: Vec<_> = sets
                .iter()
                .map(|p| {
                    let r = &p.rules;
                    let rates = |m: &BTreeMap<String, Rate>| -> serde_json::Map<_, _> {
                        m.iter().map(|(k, v)| (k.clone(), rate_json(v))).collect()
                    };
                    json!({
                        "from": r.from,
                        "published_at_ms": p.at.wall_ms,
                        "categories": rates(&r.categories),
                        "skus": r.skus.iter().map(|(k, v)| (k.to_string(), rate_json(v)))
                            .collect::<serde_json::Map<_, _>>(),
                        "cards": rates(&r.cards),
                        "card_default": r.card_default.as_ref().map(rate_json),
                    })
                })
                .collect();
            axum::Json(json!({ "rules": sets })).into_response()
        }
        Err(e) => unavailable(e),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MonthQuery {
    /// "2026-11"
    month: String,
    store: Option<StoreId>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// The sale an item return took back, as the hub holds it: the sale, who earned its commission
/// and the day and time its rules were taken from.
fn original_sale(
    storage: &dyn HubStore,
    ret: &protocol::returns::ItemReturn,
) -> Option<(ItemSale, StaffId, NaiveDate, protocol::Hlc)> {
    let (store, seq) = ret.sale_id.as_str().rsplit_once('-')?;
    let store = StoreId::parse(store).ok()?;
    let seq: u64 = seq.parse().ok()?;
    let bytes = storage.entries(&store, seq, 1).ok()?.pop()?;
    let entry = Entry::decode(&bytes).ok()?;
    match entry.payload {
        Payload::Checkout { sale, .. } => {
            let who = sale.served_by.clone().unwrap_or(entry.staff);
            Some((sale, who, entry.business_date, entry.hlc))
        }
        _ => None,
    }
}

/// Every entry of every log headquarters holds (the stores' and its own), decoded, with its
/// store.
pub(super) fn each_entry(
    storage: &dyn HubStore,
    mut f: impl FnMut(&StoreId, Entry),
) -> Result<(), String> {
    for (store, _, _) in storage.stores().map_err(|e| e.to_string())? {
        for bytes in storage
            .entries(&store, 1, usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let entry = Entry::decode(&bytes)
                .map_err(|e| format!("an entry of {store}'s log does not decode: {e}"))?;
            f(&store, entry);
        }
    }
    Ok(())
}

/// 员工提成: each staff member's sales and commission for a month, per store (returns claw back
/// what their lines earned), from every store's log at headquarters.
#[utoipa::path(get, path = "/api/v1/commissions", params(("month" = String, Query, example = "2026-11"), ("store" = Option<String>, Query), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn commissions(
    State(hq): State<Hq>,
    q: Result<Query<MonthQuery>, QueryRejection>,
) -> Response {
    let bad = bad_query;
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    let Ok(first) = NaiveDate::parse_from_str(&format!("{}-01", q.month), "%Y-%m-%d") else {
        return bad(format!("month {:?} is not YYYY-MM", q.month));
    };
    let format = q.format.clone();
    let storage = hq.storage.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let sets = rule_sets(&*storage)?;
        let directory = staff_directory(&*storage)?;
        let in_month = |d: NaiveDate| d.year() == first.year() && d.month() == first.month();
        // (staff, store) → (base, commission, entries)
        let mut rows: BTreeMap<(StaffId, StoreId), (i64, i64, u64)> = BTreeMap::new();
        each_entry(&*storage, |store, entry| {
            if *store == StoreId::hq() || !in_month(entry.business_date) {
                return;
            }
            let original = match &entry.payload {
                Payload::ItemReturn { ret, .. } => original_sale(&*storage, ret),
                _ => None,
            };
            // A return claws back at the store whose sale earned the commission.
            let credited = match &entry.payload {
                Payload::ItemReturn { ret, .. } => ret
                    .sale_id
                    .as_str()
                    .rsplit_once('-')
                    .and_then(|(s, _)| StoreId::parse(s).ok())
                    .unwrap_or_else(|| store.clone()),
                _ => store.clone(),
            };
            if q.store.as_ref().is_some_and(|s| *s != credited) {
                return;
            }
            let sale = original
                .as_ref()
                .map(|(sale, who, date, at)| (sale, who, commission::in_force(&sets, *date, *at)));
            let rules = commission::in_force(&sets, entry.business_date, entry.hlc);
            for e in protocol::project::commission::earned(&entry, rules, sale) {
                let row = rows.entry((e.staff, credited.clone())).or_default();
                row.0 += e.base.0;
                row.1 += e.commission.0;
                row.2 += 1;
            }
        })?;
        let total: i64 = rows.values().map(|r| r.1).sum();
        let rows: Vec<_> = rows
            .into_iter()
            .map(|((staff, store), (base, commission, entries))| {
                let name = directory.get(&staff).map(|s| s.name.clone());
                json!({"staff_id": staff, "name": name, "store_id": store,
                       "sales": Money::cny(Fen(base)), "commission": Money::cny(Fen(commission)),
                       "entries": entries})
            })
            .collect();
        Ok(json!({"month": q.month, "staff": rows, "total_commission": Money::cny(Fen(total))}))
    })
    .await;
    match result {
        Ok(Ok(body)) => super::reports::table_report(
            format.as_deref(),
            body,
            "staff",
            &[
                ("staff_id", "员工编号"),
                ("name", "姓名"),
                ("store_id", "门店"),
                ("sales", "业绩"),
                ("commission", "提成"),
                ("entries", "笔数"),
            ],
        ),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    from: NaiveDate,
    to: NaiveDate,
    store: Option<StoreId>,
    staff: Option<StaffId>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// 操作日志: the sensitive actions of a period (returns, refunds, points by hand, password
/// resets, coupons, write-offs, stocktakes, overdrafts, 改价, late sales, voided held orders,
/// tiers set by hand; headquarters' catalogue, staff, logins, rules), newest first: when, where, who, what, and the request's key (which names the till).
#[utoipa::path(get, path = "/api/v1/audit", params(("from" = String, Query), ("to" = String, Query), ("store" = Option<String>, Query), ("staff" = Option<String>, Query), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn audit(
    State(hq): State<Hq>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) if q.from <= q.to => q,
        Ok(_) => return bad_query("from must not be after to".into()),
        Err(e) => return bad_query(e.body_text()),
    };
    let storage = hq.storage.clone();
    let format = q.format.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>, String> {
        let calendar = protocol::calendar::StoreCalendar::default();
        let mut rows = Vec::new();
        each_entry(&*storage, |store, entry| {
            let in_period = (q.from..=q.to).contains(&entry.business_date);
            if q.store.as_ref().is_some_and(|s| s != store)
                || !in_period
                || q.staff.as_ref().is_some_and(|s| *s != entry.staff)
            {
                return;
            }
            if let Some((action, detail)) = protocol::audit::action(&entry) {
                let at = calendar.local_time(entry.hlc.wall_ms);
                rows.push((
                    entry.hlc,
                    json!({"at": at.format("%Y-%m-%d %H:%M:%S").to_string(),
                               "business_date": entry.business_date, "store_id": store,
                               "staff_id": entry.staff, "action": action, "detail": detail,
                               "key": entry.tx}),
                ));
            }
        })?;
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    })
    .await;
    match rows {
        Ok(Ok(rows)) => super::reports::table_report(
            format.as_deref(),
            json!({ "actions": rows }),
            "actions",
            &[
                ("at", "时间"),
                ("store_id", "门店"),
                ("staff_id", "员工"),
                ("action", "操作"),
                ("detail", "内容"),
                ("key", "请求编号"),
            ],
        ),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e.to_string()),
    }
}
