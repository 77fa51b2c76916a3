//! 报表: sales for a period from the report cells kept at ingest (one cell per store and day,
//! or per hour, category or tender; stored value and cards per store and day), grouped by day,
//! week, month, store, hour, category, tender or wallet, as JSON or as CSV with Chinese
//! headers. Exact to the fen: cells are integer sums.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use protocol::reports::{self, SalesCell, TenderCell, WalletCell};

use super::*;

/// The longest period one report covers.
const DAYS_MAX: i64 = 366;

const GROUPS: [&str; 9] = [
    "day", "week", "month", "store", "hour", "category", "tender", "wallet", "sku",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    from: NaiveDate,
    to: NaiveDate,
    store: Option<StoreId>,
    /// One of `GROUPS` (day by default): `tender` is money in and out by kind of tender,
    /// `wallet` stored value and cards per store.
    by: Option<String>,
    /// json (default), csv or xlsx.
    format: Option<String>,
    /// With `by=sku`: best sellers first (by what was paid, net of returns), or `asc` for the
    /// worst; at most `limit` rows (all by default).
    order: Option<String>,
    limit: Option<usize>,
}

/// A report's rows: the group's label and its cells.
enum Rows {
    Sales(BTreeMap<String, SalesCell>),
    /// Goods by SKU, best (or worst) first; `sales` is units sold in thousandths.
    Ranked(Vec<(String, SalesCell)>),
    Tenders(BTreeMap<String, TenderCell>),
    Wallet(BTreeMap<String, WalletCell>),
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

/// The rest of a key, `<store>` or `<store>/<hour|category|tender>`, split.
fn split(rest: &str) -> (String, String) {
    let (store, what) = rest.split_once('/').unwrap_or((rest, ""));
    (store.to_owned(), what.to_owned())
}

fn build(storage: &dyn HubStore, q: &ReportQuery, by: &str) -> Result<Rows, String> {
    let mut sales: BTreeMap<String, SalesCell> = BTreeMap::new();
    let mut tenders: BTreeMap<String, TenderCell> = BTreeMap::new();
    let mut wallet: BTreeMap<String, WalletCell> = BTreeMap::new();
    let wanted = |store: &str| q.store.as_ref().is_none_or(|s| s.as_str() == store);
    let mut date = q.from;
    while date <= q.to {
        match by {
            "wallet" => {
                for (rest, cell) in
                    read_cells::<WalletCell>(storage, &reports::keys::wallet_prefix(date))?
                {
                    let (store, _) = split(&rest);
                    if wanted(&store) {
                        wallet.entry(store).or_default().add(&cell);
                    }
                }
            }
            "tender" => {
                for (rest, cell) in
                    read_cells::<TenderCell>(storage, &reports::keys::tender_prefix(date))?
                {
                    let (store, kind) = split(&rest);
                    if wanted(&store) {
                        tenders.entry(kind).or_default().add(&cell);
                    }
                }
            }
            _ => {
                let prefix = match by {
                    "hour" => reports::keys::hour_prefix(date),
                    "category" => reports::keys::category_prefix(date),
                    "sku" => reports::keys::sku_prefix(date),
                    _ => reports::keys::day_prefix(date),
                };
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
                        "hour" | "category" | "sku" => what,
                        _ => date.to_string(),
                    };
                    sales.entry(label).or_default().add(&cell);
                }
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    if by == "sku" {
        // 畅销/滞销: ranked by what was paid net of returns, then cut to `limit`.
        let mut ranked: Vec<(String, SalesCell)> = sales.into_iter().collect();
        ranked.sort_by_key(|(sku, c)| (std::cmp::Reverse(c.net - c.returned), sku.clone()));
        if q.order.as_deref() == Some("asc") {
            ranked.reverse();
        }
        ranked.truncate(q.limit.unwrap_or(usize::MAX));
        return Ok(Rows::Ranked(ranked));
    }
    Ok(match by {
        "tender" => Rows::Tenders(tenders),
        "wallet" => Rows::Wallet(wallet),
        _ => Rows::Sales(sales),
    })
}

/// Thousandths of a unit as the decimal string quantities are everywhere.
fn qty(thousandths: u64) -> String {
    protocol::catalogue::Qty(i64::try_from(thousandths).unwrap_or(i64::MAX)).to_string()
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
    if !GROUPS.contains(&by.as_str()) {
        return bad_query(format!("by is one of {GROUPS:?}, not {by}"));
    }
    let format = q.format.clone().unwrap_or_else(|| "json".to_owned());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return bad_query(format!("format is json, csv or xlsx, not {format}"));
    }
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
    match format.as_str() {
        "csv" => return csv_response(&by, &rows),
        "xlsx" => return xlsx_response(&by, &rows),
        _ => {}
    }
    let y = |f: i64| Money::cny(Fen(f));
    let rows: Vec<serde_json::Value> = match &rows {
        Rows::Sales(rows) => rows
            .iter()
            .map(|(label, c)| {
                json!({by.as_str(): label, "sales": c.sales, "member_sales": c.member_sales,
                    "gross": y(c.gross), "discount": y(c.discount), "net": y(c.net),
                    "returns": c.returns, "returned": y(c.returned),
                    "net_after_returns": y(c.net - c.returned)})
            })
            .collect(),
        Rows::Ranked(rows) => rows
            .iter()
            .map(|(sku, c)| {
                json!({"sku": sku, "qty": qty(c.sales), "gross": y(c.gross),
                    "discount": y(c.discount), "net": y(c.net), "returned_qty": qty(c.returns),
                    "returned": y(c.returned), "net_after_returns": y(c.net - c.returned)})
            })
            .collect(),
        Rows::Tenders(rows) => rows
            .iter()
            .map(|(kind, c)| {
                json!({"tender": kind, "paid": y(c.paid), "times": c.times,
                    "refunded": y(c.refunded), "refunds": c.refunds})
            })
            .collect(),
        Rows::Wallet(rows) => rows
            .iter()
            .map(|(store, c)| {
                json!({"wallet": store, "top_ups": c.top_ups, "top_up_paid": y(c.top_up_paid),
                    "bonus_given": y(c.bonus_given), "cards_sold": c.cards_sold,
                    "card_sales": y(c.card_sales), "spent_principal": y(c.spent_principal),
                    "spent_bonus": y(c.spent_bonus), "refunded_principal": y(c.refunded_principal),
                    "bonus_forfeited": y(c.bonus_forfeited)})
            })
            .collect(),
    };
    axum::Json(json!({ "by": by, "rows": rows })).into_response()
}

/// The report as CSV rows (header first).
fn csv_rows(by: &str, rows: &Rows) -> Vec<Vec<String>> {
    let label = match by {
        "week" => "周",
        "month" => "月份",
        "store" | "wallet" => "门店",
        "hour" => "时段",
        "category" => "类别",
        "tender" => "支付方式",
        "sku" => "商品编码",
        _ => "日期",
    };
    let head = |cols: &[&str]| {
        std::iter::once(label)
            .chain(cols.iter().copied())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    match rows {
        Rows::Sales(rows) => {
            out.push(head(&[
                "销售笔数",
                "会员笔数",
                "原价金额",
                "优惠金额",
                "实收金额",
                "退货笔数",
                "退货金额",
                "净额",
            ]));
            for (l, c) in rows {
                out.push(vec![
                    l.clone(),
                    c.sales.to_string(),
                    c.member_sales.to_string(),
                    yuan(c.gross),
                    yuan(c.discount),
                    yuan(c.net),
                    c.returns.to_string(),
                    yuan(c.returned),
                    yuan(c.net - c.returned),
                ]);
            }
        }
        Rows::Ranked(rows) => {
            out.push(head(&[
                "销售数量",
                "原价金额",
                "优惠金额",
                "实收金额",
                "退货数量",
                "退货金额",
                "净额",
            ]));
            for (sku, c) in rows {
                out.push(vec![
                    sku.clone(),
                    qty(c.sales),
                    yuan(c.gross),
                    yuan(c.discount),
                    yuan(c.net),
                    qty(c.returns),
                    yuan(c.returned),
                    yuan(c.net - c.returned),
                ]);
            }
        }
        Rows::Tenders(rows) => {
            out.push(head(&["收款金额", "笔数", "退款金额", "退款笔数"]));
            for (kind, c) in rows {
                out.push(vec![
                    kind.clone(),
                    yuan(c.paid),
                    c.times.to_string(),
                    yuan(c.refunded),
                    c.refunds.to_string(),
                ]);
            }
        }
        Rows::Wallet(rows) => {
            out.push(head(&[
                "充值笔数",
                "充值金额",
                "赠送金额",
                "售卡张数",
                "买卡金额",
                "卡内消费本金",
                "卡内消费赠送",
                "退储值本金",
                "作废赠送",
            ]));
            for (store, c) in rows {
                out.push(vec![
                    store.clone(),
                    c.top_ups.to_string(),
                    yuan(c.top_up_paid),
                    yuan(c.bonus_given),
                    c.cards_sold.to_string(),
                    yuan(c.card_sales),
                    yuan(c.spent_principal),
                    yuan(c.spent_bonus),
                    yuan(c.refunded_principal),
                    yuan(c.bonus_forfeited),
                ]);
            }
        }
    }
    out
}

fn csv_response(by: &str, rows: &Rows) -> Response {
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = csv_rows(by, rows)
        .iter()
        .try_for_each(|r| out.write_record(r))
        .map_err(|e| e.to_string())
        .and_then(|()| out.into_inner().map_err(|e| e.to_string()));
    match written {
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

/// The report as an Excel workbook: a bold Chinese header, amounts and counts as numbers (an
/// amount becomes Excel's own number only here, at the edge, from exact fen).
fn xlsx_bytes(by: &str, rows: &Rows) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("报表")?;
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("#,##0.00");
        for (r, row) in csv_rows(by, rows).iter().enumerate() {
            let r = u32::try_from(r).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                if r == 0 {
                    sheet.write_string_with_format(r, c, cell, &bold)?;
                } else if c == 0 {
                    sheet.write_string(r, c, cell)?;
                } else {
                    // Amounts carry two decimals, quantities up to three, counts none.
                    let value = cell.parse::<rust_decimal::Decimal>().unwrap_or_default();
                    let number = rust_decimal::prelude::ToPrimitive::to_f64(&value).unwrap_or(0.0);
                    match value.scale() {
                        2 => sheet.write_number_with_format(r, c, number, &money)?,
                        _ => sheet.write_number(r, c, number)?,
                    };
                }
            }
        }
        sheet.set_column_width(0, 14)?;
        book.save_to_buffer()
    }
}

fn xlsx_response(by: &str, rows: &Rows) -> Response {
    match xlsx_bytes(by, rows) {
        Ok(bytes) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"report.xlsx\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_exports_as_csv_rows_and_as_a_workbook() {
        let cell = SalesCell {
            sales: 3,
            member_sales: 1,
            gross: 12_345,
            discount: 345,
            net: 12_000,
            returns: 1,
            returned: 150,
        };
        let rows = Rows::Sales(BTreeMap::from([("S001".to_owned(), cell)]));
        let csv = csv_rows("store", &rows);
        assert_eq!(csv[0][0], "门店");
        assert_eq!(
            csv[1],
            [
                "S001", "3", "1", "123.45", "3.45", "120.00", "1", "1.50", "118.50"
            ]
        );
        let book = xlsx_bytes("store", &rows).unwrap();
        assert!(book.starts_with(b"PK"), "an xlsx is a zip archive");
    }
}
