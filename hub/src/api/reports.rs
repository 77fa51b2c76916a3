//! 报表 at headquarters: every store's report cells (kept at ingest), read by
//! `protocol::reports::query` — sales grouped by day, week, month, store, hour, category,
//! department, tender, wallet or SKU, and members — as JSON, CSV or `.xlsx`.

use protocol::reports::query::{self, Cells, Export, MemberQuery, SalesQuery};

use super::*;

/// The hub's cells: its views, and the catalogue's department of a SKU.
struct HubCells<'a>(&'a dyn HubStore);

impl Cells for HubCells<'_> {
    fn scan(&self, prefix: &[u8]) -> Result<Vec<query::KeyValue>, String> {
        self.0.views(prefix, usize::MAX).map_err(|e| e.to_string())
    }

    fn department(&self, sku: &Sku) -> Result<String, String> {
        let views = crate::ingest::HubViews::reader(self.0);
        Ok(inventory::product(&views, sku)?
            .map(|p| p.department)
            .unwrap_or_default())
    }
}

/// `?format=json|csv|xlsx` on a report that has no other parameter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FormatQuery {
    pub(super) format: Option<String>,
}

/// A JSON report, or its `rows` as a CSV or Excel table with these `(field, header)` columns.
pub(super) fn table_report(
    format: Option<&str>,
    body: serde_json::Value,
    rows: &str,
    columns: &[(&str, &str)],
) -> Response {
    if let Err(e) = query::check_format(format) {
        return bad_query(e);
    }
    let table = query::table_of(&body[rows], columns);
    exported(query::export(format, || body, || table))
}

/// A table read from headquarters' storage by `rows`, answered in the `?format=` asked for.
pub(super) async fn stored_table(
    hq: &Hq,
    query: Result<Query<super::marketing::ReportQuery>, QueryRejection>,
    rows: fn(&dyn HubStore) -> Result<serde_json::Value, String>,
    columns: &[(&str, &str)],
) -> Response {
    let format = match query {
        Ok(Query(q)) => q.format,
        Err(e) => return bad_query(e.body_text()),
    };
    match read(hq, rows).await {
        Ok(body) => table_report(format.as_deref(), body, "rows", columns),
        Err(answer) => answer,
    }
}

/// A report as an HTTP answer.
pub(super) fn exported(report: Result<Export, String>) -> Response {
    match report {
        Ok(Export::Json(body)) => axum::Json(body).into_response(),
        Ok(Export::File {
            content_type,
            disposition,
            bytes,
        }) => {
            let mut response =
                ([(axum::http::header::CONTENT_TYPE, content_type)], bytes).into_response();
            if let Some(d) = disposition {
                response.headers_mut().insert(
                    axum::http::header::CONTENT_DISPOSITION,
                    axum::http::HeaderValue::from_static(d),
                );
            }
            response
        }
        Err(e) => unavailable(e),
    }
}

/// A report's query, parsed and checked; else why not (for a `400 invalid_query`).
fn checked<T>(
    q: Result<Query<T>, QueryRejection>,
    check: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, String> {
    let Query(q) = q.map_err(|e| e.body_text())?;
    check(&q)?;
    Ok(q)
}

/// 销售报表 for a period, chain-wide or for one store.
#[utoipa::path(get, path = "/api/v1/reports/sales", params(("from" = String, Query), ("to" = String, Query), ("store" = Option<String>, Query), ("by" = Option<String>, Query, description = "day, week, month, store, hour, category, department, tender, wallet or sku"), ("format" = Option<String>, Query, description = "json (default), csv or xlsx"), ("order" = Option<String>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, body = Object)))]
pub(super) async fn sales(
    State(hq): State<Hq>,
    q: Result<Query<SalesQuery>, QueryRejection>,
) -> Response {
    let q = match checked(q, SalesQuery::check) {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let storage = hq.storage.clone();
    let report = tokio::task::spawn_blocking(move || {
        let rows = query::sales(&HubCells(&*storage), &q)?;
        query::export(
            q.format.as_deref(),
            || rows.json(q.by()),
            || rows.table(q.by()),
        )
    })
    .await;
    exported(report.map_err(|e| e.to_string()).and_then(|r| r))
}

/// 会员报表 for a period: new (joined), active (bought), returning (回头客: bought on two days
/// or more) and dormant members (沉睡, as of `to`), spend per active member, and each member's
/// purchases, biggest spenders first, phones masked.
#[utoipa::path(get, path = "/api/v1/reports/members", params(("from" = String, Query), ("to" = String, Query), ("store" = Option<String>, Query), ("format" = Option<String>, Query, description = "json (default), csv or xlsx"), ("dormant_purchases" = Option<u64>, Query), ("dormant_days" = Option<i64>, Query), ("quiet_days" = Option<i64>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, body = Object)))]
pub(super) async fn members(
    State(hq): State<Hq>,
    q: Result<Query<MemberQuery>, QueryRejection>,
) -> Response {
    let q = match checked(q, MemberQuery::check) {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let storage = hq.storage.clone();
    let report = tokio::task::spawn_blocking(move || {
        let report = query::members(&HubCells(&*storage), &q)?;
        // Names and masked phones from the directory.
        let mut people = BTreeMap::new();
        for (member, _) in &report.rows {
            if let Ok(Some(record)) = storage.member(member) {
                let p = record.profile;
                people.insert(*member, (p.name, p.phone.masked()));
            }
        }
        let person = |m: &MemberId| people.get(m).cloned().unwrap_or_default();
        query::export(
            q.format.as_deref(),
            || report.json(&q, &person),
            || report.table(&person),
        )
    })
    .await;
    exported(report.map_err(|e| e.to_string()).and_then(|r| r))
}
