//! 报表: sales for a period from the report cells kept at ingest (one cell per store and day,
//! or per hour, category or tender), grouped by day, week, month, store, hour, category or
//! tender, as JSON or as CSV with Chinese headers. Exact to the fen: cells are integer sums.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use protocol::reports::{self, SalesCell, TenderCell};

use super::*;

/// The longest period one report covers.
const DAYS_MAX: i64 = 366;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    from: NaiveDate,
    to: NaiveDate,
    store: Option<StoreId>,
    /// day (default), week, month, store, hour, category or tender.
    by: Option<String>,
    /// json (default) or csv.
    format: Option<String>,
}

/// A report's rows: the group's label and its cells.
enum Rows {
    Sales(BTreeMap<String, SalesCell>),
    Tenders(BTreeMap<String, TenderCell>),
}

fn read_cells<T: for<'de> Deserialize<'de>>(
    storage: &dyn HubStore,
    prefix: &[u8],
) -> Result<Vec<(String, T)>, String> {
    let rows = storage
        .views(prefix, usize::MAX)
        .map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|(k, v)| {
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            Ok((rest, postcard::from_bytes(&v).map_err(|e| e.to_string())?))
        })
        .collect()
}

fn build(storage: &dyn HubStore, q: &ReportQuery, by: &str) -> Result<Rows, String> {
    let mut sales: BTreeMap<String, SalesCell> = BTreeMap::new();
    let mut tenders: BTreeMap<String, TenderCell> = BTreeMap::new();
    let mut date = q.from;
    while date <= q.to {
        let prefix = match by {
            "hour" => reports::keys::hour_prefix(date),
            "category" => reports::keys::category_prefix(date),
            "tender" => reports::keys::tender_prefix(date),
            _ => reports::keys::day_prefix(date),
        };
        // The rest of a key: `<store>` or `<store>/<hour|category|tender>`.
        let split = |rest: &str| -> (String, String) {
            let (store, what) = rest.split_once('/').unwrap_or((rest, ""));
            (store.to_owned(), what.to_owned())
        };
        let wanted = |store: &str| q.store.as_ref().is_none_or(|s| s.as_str() == store);
        if by == "tender" {
            for (rest, cell) in read_cells::<TenderCell>(storage, &prefix)? {
                let (store, kind) = split(&rest);
                if wanted(&store) {
                    tenders.entry(kind).or_default().add(&cell);
                }
            }
        } else {
            for (rest, cell) in read_cells::<SalesCell>(storage, &prefix)? {
                let (store, what) = split(&rest);
                if !wanted(&store) {
                    continue;
                }
                let label = match by {
                    "week" => {
                        let w = date.iso_week();
                        format!("{}-W{:02}", w.year(), w.week())
                    }
                    "month" => format!("{}-{:02}", date.year(), date.month()),
                    "store" => store,
                    "hour" | "category" => what,
                    _ => date.to_string(),
                };
                sales.entry(label).or_default().add(&cell);
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    Ok(match by {
        "tender" => Rows::Tenders(tenders),
        _ => Rows::Sales(sales),
    })
}

fn yuan(fen: i64) -> String {
    Money::cny(Fen(fen)).amount.to_string()
}

/// 销售报表 for a period, chain-wide or for one store.
pub(super) async fn sales(
    State(hq): State<Hq>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let by = q.by.clone().unwrap_or_else(|| "day".to_owned());
    if ![
        "day", "week", "month", "store", "hour", "category", "tender",
    ]
    .contains(&by.as_str())
    {
        return bad_query(format!(
            "by is day, week, month, store, hour, category or tender, not {by}"
        ));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return bad_query(format!("format is json or csv, not {other}")),
    };
    let days = (q.to - q.from).num_days();
    if !(0..DAYS_MAX).contains(&days) {
        return bad_query(format!(
            "from must not be after to, and a report covers at most {DAYS_MAX} days"
        ));
    }
    let storage = hq.storage.clone();
    let by_task = by.clone();
    let rows = match tokio::task::spawn_blocking(move || build(&*storage, &q, &by_task)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return unavailable(e),
        Err(e) => return unavailable(e.to_string()),
    };
    if csv {
        return csv_response(&by, &rows);
    }
    let rows: Vec<serde_json::Value> = match &rows {
        Rows::Sales(rows) => rows
            .iter()
            .map(|(label, c)| {
                json!({by.as_str(): label, "sales": c.sales, "member_sales": c.member_sales,
                    "gross": Money::cny(Fen(c.gross)), "discount": Money::cny(Fen(c.discount)),
                    "net": Money::cny(Fen(c.net)), "returns": c.returns,
                    "returned": Money::cny(Fen(c.returned)),
                    "net_after_returns": Money::cny(Fen(c.net - c.returned))})
            })
            .collect(),
        Rows::Tenders(rows) => rows
            .iter()
            .map(|(kind, c)| {
                json!({"tender": kind, "paid": Money::cny(Fen(c.paid)), "times": c.times,
                    "refunded": Money::cny(Fen(c.refunded)), "refunds": c.refunds})
            })
            .collect(),
    };
    axum::Json(json!({ "by": by, "rows": rows })).into_response()
}

fn csv_response(by: &str, rows: &Rows) -> Response {
    let label = match by {
        "week" => "周",
        "month" => "月份",
        "store" => "门店",
        "hour" => "时段",
        "category" => "类别",
        "tender" => "支付方式",
        _ => "日期",
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = match rows {
        Rows::Sales(rows) => {
            let head = [
                label,
                "销售笔数",
                "会员笔数",
                "原价金额",
                "优惠金额",
                "实收金额",
                "退货笔数",
                "退货金额",
                "净额",
            ];
            out.write_record(head).and_then(|()| {
                rows.iter().try_for_each(|(l, c)| {
                    out.write_record([
                        l.clone(),
                        c.sales.to_string(),
                        c.member_sales.to_string(),
                        yuan(c.gross),
                        yuan(c.discount),
                        yuan(c.net),
                        c.returns.to_string(),
                        yuan(c.returned),
                        yuan(c.net - c.returned),
                    ])
                })
            })
        }
        Rows::Tenders(rows) => out
            .write_record([label, "收款金额", "笔数", "退款金额", "退款笔数"])
            .and_then(|()| {
                rows.iter().try_for_each(|(kind, c)| {
                    out.write_record([
                        kind.clone(),
                        yuan(c.paid),
                        c.times.to_string(),
                        yuan(c.refunded),
                        c.refunds.to_string(),
                    ])
                })
            }),
    };
    match written
        .map_err(|e| e.to_string())
        .and_then(|()| out.into_inner().map_err(|e| e.to_string()))
    {
        // A BOM so that Excel opens the Chinese headers as UTF-8.
        Ok(bytes) => {
            let mut body = "\u{feff}".as_bytes().to_vec();
            body.extend(bytes);
            (
                [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Err(e) => unavailable(e),
    }
}
