//! 门店报表: this store's own slice of headquarters' reports, from the report cells its own
//! entries keep (`views::apply_own_entry`), read by the same `protocol::reports::query` as at
//! headquarters, so a store owner sees the same figures with the link down.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use protocol::reports::query::{self, Cells, Export, MemberQuery, SalesQuery};
use protocol::{MemberId, Sku};

use super::app::{AppResult, QueryResult, St, query};
use super::error::{ApiError, Code};

struct NodeCells<'a>(&'a crate::views::Views);

impl Cells for NodeCells<'_> {
    fn scan(&self, prefix: &[u8]) -> Result<Vec<query::KeyValue>, String> {
        self.0
            .store()
            .scan_prefix(prefix)
            .map_err(|e| e.to_string())
    }

    fn department(&self, sku: &Sku) -> Result<String, String> {
        Ok(protocol::inventory::product(&self.0.kv(), sku)?
            .map(|p| p.department)
            .unwrap_or_default())
    }
}

fn answer(report: Result<Export, String>) -> AppResult {
    match report.map_err(|e| ApiError::new(Code::Storage, e))? {
        Export::Json(body) => Ok(axum::Json(body).into_response()),
        Export::File {
            content_type,
            disposition,
            bytes,
        } => {
            let mut response: Response =
                ([(axum::http::header::CONTENT_TYPE, content_type)], bytes).into_response();
            if let Some(d) = disposition {
                response.headers_mut().insert(
                    axum::http::header::CONTENT_DISPOSITION,
                    axum::http::HeaderValue::from_static(d),
                );
            }
            Ok(response)
        }
    }
}

/// 销售报表 of this store for a period, grouped by day, week, month, hour, category, department,
/// tender, wallet (stored value and cards) or SKU (best sellers; `order=asc` for the worst).
#[utoipa::path(get, path = "/api/v1/reports/sales", params(("from" = String, Query), ("to" = String, Query), ("by" = Option<String>, Query, description = "day, week, month, store, hour, category, department, tender, wallet or sku"), ("format" = Option<String>, Query, description = "json, csv or xlsx"), ("order" = Option<String>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn sales(State(app): St, q: QueryResult<SalesQuery>) -> AppResult {
    let q = query(q)?;
    q.check()
        .map_err(|e| ApiError::new(Code::InvalidQuery, e))?;
    let views = app.views.clone();
    let report = tokio::task::spawn_blocking(move || {
        let rows = query::sales(&NodeCells(&views), &q)?;
        query::export(
            q.format.as_deref(),
            || rows.json(q.by()),
            || rows.table(q.by()),
        )
    })
    .await
    .map_err(|e| e.to_string());
    answer(report.and_then(|r| r))
}

/// 会员报表 of this store: new, active, returning and dormant members and what each bought here.
#[utoipa::path(get, path = "/api/v1/reports/members", params(("from" = String, Query), ("to" = String, Query), ("format" = Option<String>, Query), ("dormant_purchases" = Option<u64>, Query), ("dormant_days" = Option<i64>, Query), ("quiet_days" = Option<i64>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn members(State(app): St, q: QueryResult<MemberQuery>) -> AppResult {
    let q = query(q)?;
    q.check()
        .map_err(|e| ApiError::new(Code::InvalidQuery, e))?;
    let views = app.views.clone();
    let report = tokio::task::spawn_blocking(move || {
        let report = query::members(&NodeCells(&views), &q)?;
        let person = |m: &MemberId| match views.member(m) {
            Ok(Some(v)) => (v.profile.name.clone(), v.profile.phone.masked()),
            _ => Default::default(),
        };
        query::export(
            q.format.as_deref(),
            || report.json(&q, &person),
            || report.table(&person),
        )
    })
    .await
    .map_err(|e| e.to_string());
    answer(report.and_then(|r| r))
}
