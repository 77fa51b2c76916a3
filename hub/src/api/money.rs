//! Money headquarters owes and settles: liabilities (负债) and cross-store settlement (跨店清分).

use super::*;

/// Outstanding stored value and points (负债): chain-wide, and per store what it issued
/// (credits taken there), redeemed (spent there) and holds the rights to now.
#[utoipa::path(get, path = "/api/v1/liabilities", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn liabilities(
    State(hq): State<Hq>,
    q: Result<Query<reports::FormatQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("the only parameter is format".into());
    };
    let wallets = match hq.storage.wallets() {
        Ok(w) => w,
        Err(e) => return unavailable(e.to_string()),
    };
    #[derive(Default)]
    struct Row {
        issued: u64,
        redeemed: u64,
        held: u64,
    }
    // (family, store) → row; families: principal, bonus, points.
    let mut rows: BTreeMap<(&'static str, StoreId), Row> = BTreeMap::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut receivables: BTreeMap<StoreId, u64> = BTreeMap::new();
    // Stored value a fenced store spent twice (it had not heard of its fence): by store, and
    // the members who owe it.
    let mut fence_receivables: BTreeMap<StoreId, u64> = BTreeMap::new();
    let mut fence_members = Vec::new();
    let (today, policy) = (today(), PointsPolicy::default());
    let add = |cell: &mut u64, units: u64| *cell = cell.saturating_add(units);
    for (member, wallet) in &wallets {
        for store in wallet.owed.keys() {
            add(
                receivables.entry(store.clone()).or_default(),
                wallet.owed_at(store),
            );
        }
        for (store, units) in wallet.overspent_by() {
            add(fence_receivables.entry(store.clone()).or_default(), units);
            fence_members.push(json!({"store_id": store, "member_id": member, "owed": fen(units)}));
        }
        for (counter, r) in &wallet.counters {
            let family = match counter {
                Counter::Principal => "principal",
                Counter::Bonus => "bonus",
                Counter::Points { year } if policy.lot_alive(*year, today) => "points",
                _ => continue,
            };
            add(totals.entry(family).or_default(), r.balance());
            for store in r.replicas() {
                let row = rows.entry((family, store.clone())).or_default();
                add(&mut row.issued, r.transferred(&store, &store));
                add(&mut row.redeemed, r.debited(&store));
                add(&mut row.held, r.held(&store));
            }
        }
    }
    let stores: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|((family, store), row)| {
            let amount = |units| match family {
                "points" => json!(units),
                _ => json!(fen(units)),
            };
            json!({
                "store_id": store,
                "kind": family,
                "issued": amount(row.issued),
                "redeemed": amount(row.redeemed),
                "held": amount(row.held),
            })
        })
        .collect();
    let total = |family| totals.get(family).copied().unwrap_or(0);
    let body = json!({
        "members_with_wallets": wallets.len(),
        "stored_value": {
            "principal": fen(total("principal")),
            "bonus": fen(total("bonus")),
            "total": fen(total("principal").saturating_add(total("bonus"))),
        },
        "points": total("points"),
        "by_store": stores,
        // Offline overdrafts members still owe, by the store that allowed them (应收).
        "receivables": receivables
            .iter()
            .filter(|(_, owed)| **owed > 0)
            .map(|(store, owed)| json!({"store_id": store, "owed": fen(*owed)}))
            .collect::<Vec<_>>(),
        "receivables_total": fen(receivables.values().fold(0, |a, b| a.saturating_add(*b))),
        // Spent twice by a fenced store before it heard of its fence (应收: 冻结门店重复消费).
        "fence_receivables": fence_receivables
            .iter()
            .map(|(store, owed)| json!({"store_id": store, "owed": fen(*owed)}))
            .collect::<Vec<_>>(),
        "fence_receivables_total": fen(fence_receivables.values().fold(0, |a, b| a.saturating_add(*b))),
        "fence_receivable_members": fence_members,
    });
    reports::table_report(
        q.format.as_deref(),
        body,
        "by_store",
        &[
            ("store_id", "门店"),
            ("kind", "类型"),
            ("issued", "发放"),
            ("redeemed", "已用"),
            ("held", "本店持有"),
        ],
    )
}

#[derive(Deserialize)]
pub(super) struct Period {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    /// "exclude" (default: bonus was given away, nobody is owed for it) or "include".
    bonus: Option<String>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// Cross-store settlement (跨店清分) for a period: who owes whom for stored value prepaid at
/// one store and spent at another, principal and bonus apart.
#[utoipa::path(get, path = "/api/v1/settlement", params(("from" = String, Query), ("to" = String, Query), ("bonus" = Option<String>, Query, description = "exclude (default) or include"), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn settlement(
    State(hq): State<Hq>,
    q: Result<Query<Period>, QueryRejection>,
) -> Response {
    let bad = bad_query;
    let Ok(Query(q)) = q else {
        return bad("give from and to as YYYY-MM-DD".into());
    };
    let include_bonus = match q.bonus.as_deref() {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(other) => return bad(format!("bonus is exclude or include, not {other:?}")),
    };
    if q.to < q.from {
        return bad("the period ends before it starts".into());
    }
    let records = match hq.storage.feed(1, usize::MAX) {
        Ok(records) => records,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut book = Settlement::new(q.from, q.to);
    for (position, record) in records {
        // A stored entry that does not decode would leave the books short without a word.
        match protocol::Entry::decode(&record.entry) {
            Ok(entry) => book.take(&entry),
            Err(e) => {
                return unavailable(format!("the feed's entry {position} does not decode: {e}"));
            }
        }
    }
    let rows: Vec<serde_json::Value> = book
        .owed
        .iter()
        .map(|((payer, payee), owed)| {
            let due = owed.principal + if include_bonus { owed.bonus } else { 0 };
            json!({
                "payer": payer,
                "payee": payee,
                "principal": fen(owed.principal),
                "bonus": fen(owed.bonus),
                "due": fen(due),
            })
        })
        .collect();
    let body = json!({
        "from": q.from,
        "to": q.to,
        "bonus": if include_bonus { "include" } else { "exclude" },
        "owed": rows,
        "spent_where_prepaid": {"principal": fen(book.local.principal), "bonus": fen(book.local.bonus)},
        "unmatched": {"principal": fen(book.unmatched.principal), "bonus": fen(book.unmatched.bonus)},
    });
    reports::table_report(
        q.format.as_deref(),
        body,
        "owed",
        &[
            ("payer", "应付门店"),
            ("payee", "应收门店"),
            ("principal", "本金"),
            ("bonus", "赠送"),
            ("due", "应结算"),
        ],
    )
}
