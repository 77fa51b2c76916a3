//! Commission rules as a view, and what an entry earns whom.

use std::collections::BTreeMap;

use crate::commission::{CommissionRules, Earned, Published};
use crate::entry::{Entry, Payload};
use crate::ids::{StaffId, StoreId};
use crate::inventory::ViewKv;
use crate::money::Fen;
use crate::sale::ItemSale;
use crate::wallet::WalletEvent;

/// What `entry` earns whom, under `rules`. A return claws back what its lines earned under the
/// rules of the original sale (`sale`, with who served it and its rules), from whoever earned it.
pub fn earned(
    entry: &Entry,
    rules: Option<&CommissionRules>,
    sale: Option<(&ItemSale, &StaffId, Option<&CommissionRules>)>,
) -> Vec<Earned> {
    let mut by_staff: BTreeMap<StaffId, (i64, i64)> = BTreeMap::new();
    let mut add = |staff: &StaffId, base: Fen, commission: Fen| {
        let e = by_staff.entry(staff.clone()).or_default();
        e.0 += base.0;
        e.1 += commission.0;
    };
    match &entry.payload {
        Payload::Checkout { sale, .. } => {
            let who = sale.served_by.as_ref().unwrap_or(&entry.staff);
            for l in &sale.lines {
                let c = rules
                    .and_then(|r| r.line_rate(&l.sku, &l.category))
                    .map_or(Fen(0), |rate| rate.earn(l.net, l.qty.0));
                add(who, l.net, c);
            }
        }
        Payload::Sale { sale, .. } | Payload::QuickSale(sale) => {
            let category = sale.category.as_deref().unwrap_or("");
            let c = rules
                .and_then(|r| r.categories.get(category))
                .map_or(Fen(0), |rate| rate.earn(sale.amount, 1000));
            add(&entry.staff, sale.amount, c);
        }
        Payload::Wallet {
            event: WalletEvent::CardSold { name, price, .. },
            ..
        } => {
            let c = rules
                .and_then(|r| r.cards.get(name).or(r.card_default.as_ref()))
                .map_or(Fen(0), |rate| rate.earn(*price, 1000));
            add(&entry.staff, *price, c);
        }
        Payload::ItemReturn { ret, .. } => {
            let Some((sale, who, sale_rules)) = sale else {
                return Vec::new();
            };
            // What the line earned, clawed back by the share returned, cumulatively, so that
            // returning all of it in parts claws back exactly what it earned.
            for l in &ret.lines {
                let Some(line) = sale.lines.get(usize::from(l.line)) else {
                    continue;
                };
                let earned = sale_rules
                    .and_then(|r| r.line_rate(&line.sku, &line.category))
                    .map_or(Fen(0), |rate| rate.earn(line.net, line.qty.0));
                let share = |q: i64| crate::returns::share(earned.0, q, line.qty.0);
                let c = share(l.before.0 + l.qty.0) - share(l.before.0);
                add(who, Fen(-l.amount.0), Fen(-c));
            }
        }
        _ => {}
    }
    by_staff
        .into_iter()
        .map(|(staff, (base, commission))| Earned {
            staff,
            base: Fen(base),
            commission: Fen(commission),
        })
        .collect()
}

/// Keeps headquarters' rule sets as a view (`cr/<from>/<published>`); a set from a store is
/// skipped.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    let Payload::CommissionRules { rules } = &entry.payload else {
        return Ok(None);
    };
    if entry.origin != StoreId::hq() {
        return Ok(Some("commission rules not from headquarters".into()));
    }
    let published = Published {
        at: entry.hlc,
        rules: rules.clone(),
    };
    let bytes = postcard::to_stdvec(&published).map_err(|e| e.to_string())?;
    let key = format!(
        "cr/{}/{:020}.{:010}",
        rules.from, entry.hlc.wall_ms, entry.hlc.logical
    );
    kv.put(key.into_bytes(), bytes);
    Ok(None)
}
