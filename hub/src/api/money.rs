//! Money headquarters owes and settles: liabilities (负债) and cross-store settlement (跨店清分).

use super::*;
use protocol::liabilities::{Kind, Liabilities};

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
    let wallets = match read(&hq, |s| s.wallets()).await {
        Ok(wallets) => wallets,
        Err(answer) => return answer,
    };
    let books = Liabilities::of(&wallets, today(), &PointsPolicy::default());
    let amount = |kind: Kind, units: u64| match kind {
        Kind::Points => json!(units),
        Kind::Principal | Kind::Bonus => json!(fen(units)),
    };
    let stores: Vec<serde_json::Value> = books
        .by_store
        .iter()
        .map(|((kind, store), row)| {
            json!({
                "store_id": store,
                "kind": kind.as_str(),
                "issued": amount(*kind, row.issued),
                "redeemed": amount(*kind, row.redeemed),
                "held": amount(*kind, row.held),
            })
        })
        .collect();
    let owed = |by: &BTreeMap<StoreId, u64>| {
        by.iter()
            .filter(|(_, owed)| **owed > 0)
            .map(|(store, owed)| json!({"store_id": store, "owed": fen(*owed)}))
            .collect::<Vec<_>>()
    };
    let (principal, bonus) = (books.total(Kind::Principal), books.total(Kind::Bonus));
    let body = json!({
        "members_with_wallets": books.members_with_wallets,
        "stored_value": {
            "principal": fen(principal),
            "bonus": fen(bonus),
            "total": fen(principal.saturating_add(bonus)),
        },
        "points": books.total(Kind::Points),
        "by_store": stores,
        // Offline overdrafts members still owe, by the store that allowed them (应收).
        "receivables": owed(&books.receivables),
        "receivables_total": fen(books.receivables_total()),
        // Spent twice by a fenced store before it heard of its fence (应收: 冻结门店重复消费).
        "fence_receivables": owed(&books.fence_receivables),
        "fence_receivables_total": fen(books.fence_receivables_total()),
        "fence_receivable_members": books.fence_members.iter()
            .map(|(store, member, units)| json!({"store_id": store, "member_id": member, "owed": fen(*units)}))
            .collect::<Vec<_>>(),
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
    let (from, to) = (q.from, q.to);
    let book = match read(&hq, move |s| {
        let mut book = Settlement::new(from, to);
        for (position, record) in s.feed(1, usize::MAX).map_err(|e| e.to_string())? {
            // A stored entry that does not decode would leave the books short without a word.
            let entry = protocol::Entry::decode(&record.entry)
                .map_err(|e| format!("the feed's entry {position} does not decode: {e}"))?;
            book.take(&entry);
        }
        Ok::<_, String>(book)
    })
    .await
    {
        Ok(book) => book,
        Err(answer) => return answer,
    };
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
