//! The rules headquarters publishes, kept as views: the member rules, the tier table and the
//! card rules.

use serde::Serialize;

use crate::entry::{Entry, Payload};
use crate::hlc::Hlc;
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::rules::RulesError;

/// `keep` for one kind of rules: its module's `Published { at, staff, <field> }`, keys and
/// `current`, and the set's own check.
macro_rules! kept {
    ($kv:expr, $entry:expr, $($module:ident)::+, $field:ident, $what:literal) => {{
        use $($module)::+ as set;
        let at = $entry.hlc;
        let in_force = set::current($kv)?.map(|c| c.at);
        let published = set::Published {
            at,
            staff: $entry.staff.clone(),
            $field: $field.clone(),
        };
        let places = (set::keys::published(at), set::keys::CURRENT, in_force);
        keep($kv, $entry, $what, $field.check(), &published, places)
    }};
}

/// Keeps each set headquarters publishes under its history prefix, and the one published last
/// (by its clock, so the order entries arrive in does not matter) as the set in force: member
/// rules in `ru/h/` and `ru/now`, tier tables in `ru/t/h/` and `ru/t/now`, card rules in
/// `ru/c/h/` and `ru/c/now`. A set from a store, or one that fails its check, is skipped with
/// the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    match &entry.payload {
        Payload::ChainRules { rules } => kept!(kv, entry, crate::rules, rules, "member rules"),
        Payload::Tiers { table } => kept!(kv, entry, crate::tiers, table, "tier table"),
        Payload::CardRules { rules } => kept!(kv, entry, crate::card_rules, rules, "card rules"),
        _ => Ok(None),
    }
}

/// Files `published` under its history key, and as the set in force unless one published later
/// is in force already.
fn keep(
    kv: &mut dyn ViewKv,
    entry: &Entry,
    what: &str,
    checked: Result<(), RulesError>,
    published: &impl Serialize,
    (history, current, in_force): (Vec<u8>, &[u8], Option<Hlc>),
) -> Result<Option<String>, String> {
    if entry.origin != StoreId::hq() {
        return Ok(Some(format!("{what} not from headquarters")));
    }
    if let Err(e) = checked {
        return Ok(Some(format!("{what} refused: {e}")));
    }
    let bytes = postcard::to_stdvec(published).map_err(|e| e.to_string())?;
    kv.put(history, bytes.clone());
    if in_force.is_none_or(|at| at < entry.hlc) {
        kv.put(current.to_vec(), bytes);
    }
    Ok(None)
}
