//! Reports read from the cells (`super::apply` keeps them): a period's sales grouped by day,
//! week, month, store, hour, category, department, tender, wallet or SKU, and its members (new,
//! active, returning, dormant); each as JSON and as a table with Chinese headers, exported as
//! CSV or `.xlsx`. The same code answers at headquarters (every store) and at a store (its own
//! cells). Pure: the caller supplies the cells.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::json;

use super::{SalesCell, TenderCell, WalletCell, keys};
use crate::ids::{MemberId, Sku, StoreId};
use crate::money::{Fen, Money};

/// The longest period one report covers.
pub const DAYS_MAX: i64 = 366;

pub const GROUPS: [&str; 10] = [
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

/// A stored cell: its key and its bytes.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// What a report reads: the cells under a key prefix, and the department a SKU is filed under
/// now (from the catalogue).
pub trait Cells {
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, String>;
    fn department(&self, sku: &Sku) -> Result<String, String>;
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub store: Option<StoreId>,
    /// One of `GROUPS` (day by default): `tender` is money in and out by kind of tender,
    /// `wallet` stored value and cards per store.
    pub by: Option<String>,
    /// json (default), csv or xlsx.
    pub format: Option<String>,
    /// With `by=sku` or `department`: best sellers first (by what was paid, net of returns), or
    /// `asc` for the worst; at most `limit` rows (all by default).
    pub order: Option<String>,
    pub limit: Option<usize>,
}

impl SalesQuery {
    pub fn by(&self) -> &str {
        self.by.as_deref().unwrap_or("day")
    }

    /// Refuses a grouping, format or period it cannot answer.
    pub fn check(&self) -> Result<(), String> {
        if !GROUPS.contains(&self.by()) {
            return Err(format!("by is one of {GROUPS:?}, not {}", self.by()));
        }
        check_format(self.format.as_deref())?;
        check_period(self.from, self.to)
    }
}

/// Refuses a format other than json, csv or xlsx.
pub fn check_format(format: Option<&str>) -> Result<(), String> {
    match format {
        None | Some("json" | "csv" | "xlsx") => Ok(()),
        Some(other) => Err(format!("format is json, csv or xlsx, not {other}")),
    }
}

fn check_period(from: NaiveDate, to: NaiveDate) -> Result<(), String> {
    if (0..DAYS_MAX).contains(&(to - from).num_days()) {
        Ok(())
    } else {
        Err(format!(
            "from must not be after to, and a report covers at most {DAYS_MAX} days"
        ))
    }
}

/// A report's rows: the group's label and its cells.
pub enum Rows {
    Sales(BTreeMap<String, SalesCell>),
    /// Goods by SKU, best (or worst) first; `sales` is units sold in thousandths.
    Ranked(Vec<(String, SalesCell)>),
    Tenders(BTreeMap<String, TenderCell>),
    Wallet(BTreeMap<String, WalletCell>),
}

fn read_cells<T: for<'de> Deserialize<'de>>(
    cells: &dyn Cells,
    prefix: &[u8],
) -> Result<Vec<(String, T)>, String> {
    read_cells_of(cells, prefix, None)
}

/// `read_cells`, of `store`'s cells and those of stores whose id it begins (the caller keeps
/// only its own): a day's cells of one store among hundreds are read, not every store's.
fn read_cells_of<T: for<'de> Deserialize<'de>>(
    cells: &dyn Cells,
    prefix: &[u8],
    store: Option<&crate::StoreId>,
) -> Result<Vec<(String, T)>, String> {
    let mut narrow = prefix.to_vec();
    if let Some(store) = store {
        narrow.extend(store.as_str().as_bytes());
    }
    cells
        .scan(&narrow)?
        .into_iter()
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

pub fn sales(cells: &dyn Cells, q: &SalesQuery) -> Result<Rows, String> {
    let by = q.by();
    // Departments (大类) as the catalogue files each SKU now.
    let mut departments: std::collections::HashMap<String, String> = Default::default();
    let mut department = |sku: &str| -> Result<String, String> {
        if let Some(d) = departments.get(sku) {
            return Ok(d.clone());
        }
        let d = match crate::Sku::parse(sku) {
            Ok(sku) => cells.department(&sku)?,
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
                for (rest, cell) in read_cells_of::<WalletCell>(
                    cells,
                    &keys::wallet_prefix(date),
                    q.store.as_ref(),
                )? {
                    let (store, _) = split(&rest);
                    if wanted(&store) {
                        wallet.entry(store).or_default().add(&cell);
                    }
                }
            }
            "tender" => {
                for (rest, cell) in read_cells_of::<TenderCell>(
                    cells,
                    &keys::tender_prefix(date),
                    q.store.as_ref(),
                )? {
                    let (store, kind) = split(&rest);
                    if wanted(&store) {
                        tenders.entry(kind).or_default().add(&cell);
                    }
                }
            }
            _ => {
                let prefix = match by {
                    "hour" => keys::hour_prefix(date),
                    "category" => keys::category_prefix(date),
                    "sku" | "department" => keys::sku_prefix(date),
                    _ => keys::day_prefix(date),
                };
                for (rest, cell) in read_cells_of::<SalesCell>(cells, &prefix, q.store.as_ref())? {
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
    crate::catalogue::Qty(i64::try_from(thousandths).unwrap_or(i64::MAX)).to_string()
}

fn yuan(fen: i64) -> String {
    Money::cny(Fen(fen)).amount.to_string()
}

impl Rows {
    /// The report as JSON: `{"by": …, "rows": [...]}`.
    pub fn json(&self, by: &str) -> serde_json::Value {
        let y = |f: i64| Money::cny(Fen(f));
        let rows: Vec<serde_json::Value> = match self {
            Rows::Sales(rows) => rows
                .iter()
                .map(|(label, c)| {
                    json!({by: label, "sales": c.sales, "member_sales": c.member_sales,
                    "gross": y(c.gross), "discount": y(c.discount), "net": y(c.net),
                    "returns": c.returns, "returned": y(c.returned),
                    "net_after_returns": y(c.net - c.returned)})
                })
                .collect(),
            Rows::Ranked(rows) => rows
                .iter()
                .map(|(sku, c)| {
                    json!({by: sku, "qty": qty(c.sales), "gross": y(c.gross),
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
                    "bonus_forfeited": y(c.bonus_forfeited), "closings": c.closings,
                    "card_refunds": y(c.card_refunds), "bonus_refunded": y(c.bonus_refunded),
                    "closing_fees": y(c.closing_fees)})
                })
                .collect(),
        };
        json!({ "by": by, "rows": rows })
    }

    /// The report as CSV rows (header first).
    pub fn table(&self, by: &str) -> Vec<Vec<String>> {
        let rows = self;
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
                    "退卡张数",
                    "退卡退次卡金额",
                    "退卡退赠送",
                    "退卡手续费",
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
                        c.closings.to_string(),
                        yuan(c.card_refunds),
                        yuan(c.bonus_refunded),
                        yuan(c.closing_fees),
                    ]);
                }
            }
        }
        out
    }
}

/// A JSON report's rows (`rows`: an array of objects) as a table: one column per
/// `(field, Chinese header)`, money as its amount, nothing for a missing field.
pub fn table_of(rows: &serde_json::Value, columns: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut table = vec![columns.iter().map(|(_, h)| (*h).to_owned()).collect()];
    for row in rows.as_array().into_iter().flatten() {
        table.push(
            columns
                .iter()
                .map(|(field, _)| match &row[*field] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::Object(o) if o.contains_key("amount") => {
                        o["amount"].as_str().unwrap_or_default().to_owned()
                    }
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    table
}

/// A report ready to send: JSON, or a file.
#[derive(Debug)]
pub enum Export {
    Json(serde_json::Value),
    File {
        content_type: &'static str,
        /// `attachment; filename=...` for a download, or none to show it in place.
        disposition: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

/// The report in `format` (json by default): CSV with a BOM so that Excel opens the Chinese
/// headers as UTF-8, or an `.xlsx` workbook.
pub fn export(
    format: Option<&str>,
    json: impl FnOnce() -> serde_json::Value,
    table: impl FnOnce() -> Vec<Vec<String>>,
) -> Result<Export, String> {
    match format.unwrap_or("json") {
        "csv" => {
            let mut out = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
            for row in table() {
                out.write_record(row.iter().map(|cell| csv_safe(cell).into_owned()))
                    .map_err(|e| e.to_string())?;
            }
            Ok(Export::File {
                content_type: "text/csv; charset=utf-8",
                disposition: None,
                bytes: out.into_inner().map_err(|e| e.to_string())?,
            })
        }
        "xlsx" => Ok(Export::File {
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            disposition: Some("attachment; filename=\"report.xlsx\""),
            bytes: xlsx_bytes(&table()).map_err(|e| e.to_string())?,
        }),
        _ => Ok(Export::Json(json())),
    }
}

/// A cell as a spreadsheet must take it as text: one that starts like a formula (`=`, `+`,
/// `-`, `@`, a tab or a carriage return) gets a leading apostrophe, so a member named `=1+2`
/// or `=HYPERLINK(...)` is shown, never run. A plain number (`-12.00`) stays a number.
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    match formula && cell.parse::<rust_decimal::Decimal>().is_err() {
        true => format!("'{cell}").into(),
        false => cell.into(),
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub store: Option<StoreId>,
    /// json (default), csv or xlsx.
    pub format: Option<String>,
    /// 沉睡会员 as of `to`: at least `dormant_purchases` purchases in the last `dormant_days`
    /// days and none in the last `quiet_days` (by default 3, 180 and 60).
    pub dormant_purchases: Option<u64>,
    pub dormant_days: Option<i64>,
    pub quiet_days: Option<i64>,
    /// At most this many members listed, biggest spenders first (all by default).
    pub limit: Option<usize>,
}

/// What one member did in the period (summed over the stores asked for).
#[derive(Default)]
pub struct MemberRow {
    pub cell: SalesCell,
    /// Days with a purchase.
    pub days: u64,
}

pub struct MemberReport {
    pub rows: Vec<(MemberId, MemberRow)>,
    pub active: usize,
    pub joined: usize,
    pub returning: usize,
    pub dormant: Vec<MemberId>,
    /// What the active members paid, net of returns (all of them, not only those listed).
    pub spent: i64,
}

/// The member cells of each day from `from` to `to`, per member (of the stores wanted).
fn member_days(
    cells: &dyn Cells,
    from: NaiveDate,
    to: NaiveDate,
    store: Option<&StoreId>,
    mut each: impl FnMut(NaiveDate, MemberId, SalesCell),
) -> Result<(), String> {
    let mut date = from;
    while date <= to {
        let mut day: BTreeMap<MemberId, SalesCell> = BTreeMap::new();
        for (rest, cell) in read_cells::<SalesCell>(cells, &keys::member_prefix(date))? {
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

pub fn members(cells: &dyn Cells, q: &MemberQuery) -> Result<MemberReport, String> {
    let store = q.store.as_ref();
    let mut rows: BTreeMap<MemberId, MemberRow> = BTreeMap::new();
    member_days(cells, q.from, q.to, store, |_, member, cell| {
        let row = rows.entry(member).or_default();
        row.days += u64::from(cell.sales > 0);
        row.cell.add(&cell);
    })?;
    let mut joined = 0;
    let mut date = q.from;
    while date <= q.to {
        let prefix = keys::joined_prefix(date);
        for (key, _) in cells.scan(&prefix)? {
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
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
        cells,
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

impl MemberQuery {
    /// Refuses a format, period or dormancy rule it cannot answer.
    pub fn check(&self) -> Result<(), String> {
        check_format(self.format.as_deref())?;
        check_period(self.from, self.to)?;
        let (window, quiet) = self.windows();
        if !(1..=DAYS_MAX).contains(&window) || !(1..=window).contains(&quiet) {
            return Err(format!(
                "dormant_days is 1 to {DAYS_MAX}, and quiet_days 1 to dormant_days"
            ));
        }
        Ok(())
    }

    fn windows(&self) -> (i64, i64) {
        (
            self.dormant_days.unwrap_or(180),
            self.quiet_days.unwrap_or(60),
        )
    }
}

impl MemberReport {
    /// `person` gives a member's name and masked phone.
    pub fn json(
        &self,
        q: &MemberQuery,
        person: &dyn Fn(&MemberId) -> (String, String),
    ) -> serde_json::Value {
        let per_member = match i64::try_from(self.active) {
            Ok(n) if n > 0 => self.spent / n,
            _ => 0,
        };
        let rows: Vec<serde_json::Value> = self
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
        json!({
            "from": q.from, "to": q.to, "store": q.store,
            "joined": self.joined,
            "active": self.active,
            "returning": self.returning,
            "dormant": self.dormant.len(),
            "dormant_members": self.dormant,
            "spent": Money::cny(Fen(self.spent)),
            "spend_per_active_member": Money::cny(Fen(per_member)),
            "members": rows,
        })
    }

    pub fn table(&self, person: &dyn Fn(&MemberId) -> (String, String)) -> Vec<Vec<String>> {
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
        for (m, r) in &self.rows {
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
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells as a map (the node's and headquarters' storage read the same prefixes).
    struct MapCells(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Cells for MapCells {
        fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, String> {
            Ok(self
                .0
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn department(&self, _: &crate::Sku) -> Result<String, String> {
            Ok(String::new())
        }
    }

    #[test]
    fn a_stores_report_reads_its_own_cells_not_those_of_a_store_its_id_begins() {
        let day = NaiveDate::from_ymd_opt(2017, 1, 1).unwrap();
        let cell = |net| {
            postcard::to_stdvec(&SalesCell {
                sales: 1,
                net,
                ..SalesCell::default()
            })
            .unwrap()
        };
        let mut map = BTreeMap::new();
        for (store, net) in [("S001", 100), ("S0010", 7), ("S002", 5)] {
            let store = crate::StoreId::parse(store).unwrap();
            map.insert(keys::day(day, &store), cell(net));
        }
        let query = SalesQuery {
            from: day,
            to: day,
            store: Some(crate::StoreId::parse("S001").unwrap()),
            by: None,
            format: None,
            order: None,
            limit: None,
        };
        let Rows::Sales(rows) = sales(&MapCells(map), &query).unwrap() else {
            panic!("rows by day");
        };
        assert_eq!(rows[&day.to_string()].net, 100);
    }

    #[test]
    fn a_csv_cell_that_starts_like_a_formula_is_exported_as_text() {
        for (cell, out) in [
            ("=1+2", "'=1+2"),
            ("+86 139", "'+86 139"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-1+2", "'-1+2"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-12.00", "-12.00"),
            ("王五", "王五"),
            ("1=1", "1=1"),
        ] {
            assert_eq!(csv_safe(cell), out);
        }
        let Export::File { bytes, .. } = export(
            Some("csv"),
            || serde_json::Value::Null,
            || {
                vec![
                    vec!["姓名".into(), "金额".into()],
                    vec!["=1+2".into(), "-3.00".into()],
                ]
            },
        )
        .unwrap() else {
            panic!("not a file");
        };
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with("'=1+2,-3.00\n"), "{text}");
    }

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
        let csv = rows.table("store");
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
