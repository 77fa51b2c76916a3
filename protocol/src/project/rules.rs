//! The member rules headquarters publishes, kept as a view.

use crate::entry::{Entry, Payload};
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::rules::{Published, current, keys};

/// Keeps headquarters' rule sets as a view: each in `ru/h/`, and the one published last (by
/// its clock, so the order entries arrive in does not matter) in `ru/now`. A set from a store,
/// or one that fails its check, is skipped with the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    if let Payload::Tiers { table } = &entry.payload {
        return apply_tiers(kv, entry, table);
    }
    if let Payload::CardRules { rules } = &entry.payload {
        return apply_card_rules(kv, entry, rules);
    }
    let Payload::ChainRules { rules } = &entry.payload else {
        return Ok(None);
    };
    if entry.origin != StoreId::hq() {
        return Ok(Some("member rules not from headquarters".into()));
    }
    if let Err(e) = rules.check() {
        return Ok(Some(format!("member rules refused: {e}")));
    }
    let published = Published {
        at: entry.hlc,
        staff: entry.staff.clone(),
        rules: rules.clone(),
    };
    let bytes = postcard::to_stdvec(&published).map_err(|e| e.to_string())?;
    kv.put(keys::published(entry.hlc), bytes.clone());
    if current(kv)?.is_none_or(|c| c.at < entry.hlc) {
        kv.put(keys::CURRENT.to_vec(), bytes);
    }
    Ok(None)
}

/// 退卡与计时规则, kept the same way (`ru/c/h/`, and the last published in `ru/c/now`).
fn apply_card_rules(
    kv: &mut dyn ViewKv,
    entry: &Entry,
    rules: &crate::card_rules::CardRules,
) -> Result<Option<String>, String> {
    use crate::card_rules::{Published, current, keys};
    if entry.origin != StoreId::hq() {
        return Ok(Some("card rules not from headquarters".into()));
    }
    if let Err(e) = rules.check() {
        return Ok(Some(format!("card rules refused: {e}")));
    }
    let published = Published {
        at: entry.hlc,
        staff: entry.staff.clone(),
        rules: rules.clone(),
    };
    let bytes = postcard::to_stdvec(&published).map_err(|e| e.to_string())?;
    kv.put(keys::published(entry.hlc), bytes.clone());
    if current(kv)?.is_none_or(|c| c.at < entry.hlc) {
        kv.put(keys::CURRENT.to_vec(), bytes);
    }
    Ok(None)
}

/// 会员等级: the tier tables, kept the same way (`ru/t/h/`, and the last published in
/// `ru/t/now`).
fn apply_tiers(
    kv: &mut dyn ViewKv,
    entry: &Entry,
    table: &crate::tiers::TierTable,
) -> Result<Option<String>, String> {
    use crate::tiers::{Published, current, keys};
    if entry.origin != StoreId::hq() {
        return Ok(Some("tier table not from headquarters".into()));
    }
    if let Err(e) = table.check() {
        return Ok(Some(format!("tier table refused: {e}")));
    }
    let published = Published {
        at: entry.hlc,
        staff: entry.staff.clone(),
        table: table.clone(),
    };
    let bytes = postcard::to_stdvec(&published).map_err(|e| e.to_string())?;
    kv.put(keys::published(entry.hlc), bytes.clone());
    if current(kv)?.is_none_or(|c| c.at < entry.hlc) {
        kv.put(keys::CURRENT.to_vec(), bytes);
    }
    Ok(None)
}
