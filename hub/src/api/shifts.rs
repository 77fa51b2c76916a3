//! 交班记录: every cashier's closed shift in a period, from the stores' logs — who, where, when
//! it opened and closed, sales and returns, money taken that is not a sale, the cash the drawer
//! should have held, what was counted and the difference (short or over).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShiftQuery {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    store: Option<StoreId>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

const COLUMNS: &[(&str, &str)] = &[
    ("closed_at", "交班时间"),
    ("store_id", "门店"),
    ("staff_id", "员工"),
    ("opened_at", "开班时间"),
    ("sales", "销售笔数"),
    ("sales_amount", "销售金额"),
    ("returns", "退货笔数"),
    ("returned", "退货金额"),
    ("top_ups", "充值"),
    ("cards_sold", "售卡"),
    ("refunded_cash", "退储值现金"),
    ("cash_expected", "应有现金"),
    ("counted", "实点现金"),
    ("difference", "差额"),
];

/// 交班记录: closed shifts of a period (by the business day they closed), newest first.
#[utoipa::path(get, path = "/api/v1/shifts", params(("from" = String, Query), ("to" = String, Query), ("store" = Option<String>, Query), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(super) async fn shifts(
    State(hq): State<Hq>,
    q: Result<Query<ShiftQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) if q.from <= q.to => q,
        Ok(_) => return bad_query("from must not be after to".into()),
        Err(e) => return bad_query(e.body_text()),
    };
    let storage = hq.storage.clone();
    let format = q.format.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>, String> {
        let calendar = StoreCalendar::default();
        let time = |ms: u64| {
            calendar
                .local_time(ms)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let mut rows = Vec::new();
        super::staff::each_entry(&*storage, |store, entry| {
            let protocol::entry::Payload::Audit {
                note: protocol::audit::Note::ShiftClosed { shift, counted },
            } = &entry.payload
            else {
                return;
            };
            if q.store.as_ref().is_some_and(|s| s != store)
                || !(q.from..=q.to).contains(&entry.business_date)
            {
                return;
            }
            let yuan = |fen: i64| Money::cny(Fen(fen)).amount.to_string();
            rows.push((
                entry.hlc,
                json!({"closed_at": time(entry.hlc.wall_ms), "business_date": entry.business_date,
                    "store_id": store, "staff_id": entry.staff, "opened_at": time(shift.opened_ms),
                    "sales": shift.sales, "sales_amount": yuan(shift.sales_amount),
                    "returns": shift.returns, "returned": yuan(shift.returned),
                    "top_ups": yuan(shift.top_ups), "cards_sold": yuan(shift.cards_sold),
                    "refunded_cash": yuan(shift.refunded_cash),
                    "cash_expected": yuan(shift.cash_expected), "counted": yuan(counted.0),
                    "difference": yuan(counted.0 - shift.cash_expected)}),
            ));
        })?;
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    })
    .await;
    match rows {
        Ok(Ok(rows)) => super::reports::table_report(
            format.as_deref(),
            json!({ "shifts": rows }),
            "shifts",
            COLUMNS,
        ),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e.to_string()),
    }
}
