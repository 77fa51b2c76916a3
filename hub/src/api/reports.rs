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

const GROUPS: [&str; 10] = [
    "day",
    "week",
    "month",
    "store",
    "hour",
    "category",
    "department",
    "tender",
    "wallet",
    "sku",
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
    // Departments (大类) as the catalogue files each SKU now.
    let views = crate::ingest::HubViews::reader(storage);
    let mut departments: std::collections::HashMap<String, String> = Default::default();
    let mut department = |sku: &str| -> Result<String, String> {
        if let Some(d) = departments.get(sku) {
            return Ok(d.clone());
        }
        let d = match protocol::Sku::parse(sku) {
            Ok(sku) => protocol::inventory::product(&views, &sku)?
                .map(|p| p.department)
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        departments.insert(sku.to_owned(), d.clone());
        Ok(d)
    };
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
                    "sku" | "department" => reports::keys::sku_prefix(date),
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
                        "department" => department(&what)?,
                        _ => date.to_string(),
                    };
                    sales.entry(label).or_default().add(&cell);
                }
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    if by == "sku" || by == "department" {
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
        "csv" => return csv_response(&csv_rows(&by, &rows)),
        "xlsx" => return xlsx_response(&csv_rows(&by, &rows)),
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
                json!({by.as_str(): sku, "qty": qty(c.sales), "gross": y(c.gross),
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
        "department" => "部门",
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

fn csv_response(table: &[Vec<String>]) -> Response {
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = table
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
fn xlsx_bytes(table: &[Vec<String>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("报表")?;
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("#,##0.00");
        for (r, row) in table.iter().enumerate() {
            let r = u32::try_from(r).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                if r == 0 {
                    sheet.write_string_with_format(r, c, cell, &bold)?;
                } else {
                    // The first column is a label; amounts carry two decimals, quantities up
                    // to three, counts none; anything else (a name, a masked phone) is text.
                    match cell.parse::<rust_decimal::Decimal>() {
                        Ok(value) if c > 0 => {
                            let number =
                                rust_decimal::prelude::ToPrimitive::to_f64(&value).unwrap_or(0.0);
                            match value.scale() {
                                2 => sheet.write_number_with_format(r, c, number, &money)?,
                                _ => sheet.write_number(r, c, number)?,
                            };
                        }
                        _ => {
                            sheet.write_string(r, c, cell)?;
                        }
                    }
                }
            }
        }
        sheet.set_column_width(0, 14)?;
        book.save_to_buffer()
    }
}

fn xlsx_response(table: &[Vec<String>]) -> Response {
    match xlsx_bytes(table) {
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
        let book = xlsx_bytes(&csv).unwrap();
        assert!(book.starts_with(b"PK"), "an xlsx is a zip archive");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberQuery {
    from: NaiveDate,
    to: NaiveDate,
    store: Option<StoreId>,
    /// json (default), csv or xlsx.
    format: Option<String>,
    /// 沉睡会员 as of `to`: at least `dormant_purchases` purchases in the last `dormant_days`
    /// days and none in the last `quiet_days` (by default 3, 180 and 60).
    dormant_purchases: Option<u64>,
    dormant_days: Option<i64>,
    quiet_days: Option<i64>,
    /// At most this many members listed, biggest spenders first (all by default).
    limit: Option<usize>,
}

/// What one member did in the period (summed over the stores asked for).
#[derive(Default)]
struct MemberRow {
    cell: SalesCell,
    /// Days with a purchase.
    days: u64,
}

struct MemberReport {
    rows: Vec<(MemberId, MemberRow)>,
    active: usize,
    joined: usize,
    returning: usize,
    dormant: Vec<MemberId>,
    /// What the active members paid, net of returns (all of them, not only those listed).
    spent: i64,
}

/// The member cells of each day from `from` to `to`, per member (of the stores wanted).
fn member_days(
    storage: &dyn HubStore,
    from: NaiveDate,
    to: NaiveDate,
    store: Option<&StoreId>,
    mut each: impl FnMut(NaiveDate, MemberId, SalesCell),
) -> Result<(), String> {
    let mut date = from;
    while date <= to {
        let mut day: BTreeMap<MemberId, SalesCell> = BTreeMap::new();
        for (rest, cell) in read_cells::<SalesCell>(storage, &reports::keys::member_prefix(date))? {
            let (at, member) = split(&rest);
            if store.is_some_and(|s| s.as_str() != at) {
                continue;
            }
            if let Ok(member) = MemberId::parse(&member) {
                day.entry(member).or_default().add(&cell);
            }
        }
        for (member, cell) in day {
            each(date, member, cell);
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    Ok(())
}

fn build_members(storage: &dyn HubStore, q: &MemberQuery) -> Result<MemberReport, String> {
    let store = q.store.as_ref();
    let mut rows: BTreeMap<MemberId, MemberRow> = BTreeMap::new();
    member_days(storage, q.from, q.to, store, |_, member, cell| {
        let row = rows.entry(member).or_default();
        row.days += u64::from(cell.sales > 0);
        row.cell.add(&cell);
    })?;
    let mut joined = 0;
    let mut date = q.from;
    while date <= q.to {
        for (key, _) in storage
            .views(&reports::keys::joined_prefix(date), usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let rest = String::from_utf8_lossy(&key[reports::keys::joined_prefix(date).len()..])
                .into_owned();
            joined += usize::from(store.is_none_or(|s| split(&rest).0 == s.as_str()));
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    // 沉睡: enough purchases in the window, none in the quiet days before `to`.
    let (min, window, quiet) = (
        q.dormant_purchases.unwrap_or(3),
        q.dormant_days.unwrap_or(180),
        q.quiet_days.unwrap_or(60),
    );
    let mut recent: BTreeMap<MemberId, (u64, bool)> = BTreeMap::new();
    let quiet_from = q.to - chrono::TimeDelta::days(quiet - 1);
    member_days(
        storage,
        q.to - chrono::TimeDelta::days(window - 1),
        q.to,
        store,
        |date, member, cell| {
            let r = recent.entry(member).or_default();
            r.0 += cell.sales;
            r.1 |= date >= quiet_from && cell.sales > 0;
        },
    )?;
    let dormant = recent
        .into_iter()
        .filter(|(_, (purchases, lately))| *purchases >= min && !lately)
        .map(|(member, _)| member)
        .collect();
    let active = rows.values().filter(|r| r.cell.sales > 0).count();
    let returning = rows.values().filter(|r| r.days >= 2).count();
    let spent = rows.values().map(|r| r.cell.net - r.cell.returned).sum();
    let mut rows: Vec<(MemberId, MemberRow)> = rows.into_iter().collect();
    rows.sort_by_key(|(m, r)| (std::cmp::Reverse(r.cell.net - r.cell.returned), *m));
    rows.truncate(q.limit.unwrap_or(usize::MAX));
    Ok(MemberReport {
        rows,
        active,
        joined,
        returning,
        dormant,
        spent,
    })
}

/// 会员报表 for a period: new (joined), active (bought), returning (回头客: bought on two days
/// or more) and dormant members (沉睡, as of `to`), spend per active member, and each member's
/// purchases, biggest spenders first, phones masked.
pub(super) async fn members(
    State(hq): State<Hq>,
    q: Result<Query<MemberQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let format = q.format.clone().unwrap_or_else(|| "json".to_owned());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return bad_query(format!("format is json, csv or xlsx, not {format}"));
    }
    let days = (q.to - q.from).num_days();
    let windows = [q.dormant_days.unwrap_or(180), q.quiet_days.unwrap_or(60)];
    if !(0..DAYS_MAX).contains(&days)
        || windows.iter().any(|d| !(1..=DAYS_MAX).contains(d))
        || windows[1] > windows[0]
    {
        return bad_query(format!(
            "from must not be after to, a report covers at most {DAYS_MAX} days, and \
             quiet_days must be within dormant_days"
        ));
    }
    let storage = hq.storage.clone();
    let report = match tokio::task::spawn_blocking(move || {
        let report = build_members(&*storage, &q)?;
        // Names and masked phones from the directory.
        let mut people = BTreeMap::new();
        for (member, _) in &report.rows {
            if let Ok(Some(record)) = storage.member(member) {
                people.insert(
                    *member,
                    (record.profile.name.clone(), record.profile.phone.masked()),
                );
            }
        }
        Ok::<_, String>((q, report, people))
    })
    .await
    {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return unavailable(e),
        Err(e) => return unavailable(e.to_string()),
    };
    let (q, report, people) = report;
    let person = |m: &MemberId| people.get(m).cloned().unwrap_or_default();
    let spent = report.spent;
    if format != "json" {
        let mut table = vec![
            [
                "会员编号",
                "手机号",
                "姓名",
                "消费笔数",
                "消费天数",
                "实收金额",
                "退货金额",
                "净额",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for (m, r) in &report.rows {
            let (name, phone) = person(m);
            table.push(vec![
                m.to_string(),
                phone,
                name,
                r.cell.sales.to_string(),
                r.days.to_string(),
                yuan(r.cell.net),
                yuan(r.cell.returned),
                yuan(r.cell.net - r.cell.returned),
            ]);
        }
        return match format.as_str() {
            "csv" => csv_response(&table),
            _ => xlsx_response(&table),
        };
    }
    let per_member = match i64::try_from(report.active) {
        Ok(n) if n > 0 => spent / n,
        _ => 0,
    };
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|(m, r)| {
            let (name, phone) = person(m);
            json!({"member_id": m, "phone_masked": phone, "name": name, "sales": r.cell.sales,
                "days": r.days, "net": Money::cny(Fen(r.cell.net)),
                "returns": r.cell.returns, "returned": Money::cny(Fen(r.cell.returned)),
                "net_after_returns": Money::cny(Fen(r.cell.net - r.cell.returned))})
        })
        .collect();
    axum::Json(json!({
        "from": q.from, "to": q.to, "store": q.store,
        "joined": report.joined,
        "active": report.active,
        "returning": report.returning,
        "dormant": report.dormant.len(),
        "dormant_members": report.dormant,
        "spent": Money::cny(Fen(spent)),
        "spend_per_active_member": Money::cny(Fen(per_member)),
        "members": rows,
    }))
    .into_response()
}
