//! The member rules headquarters publishes, kept as a view.

use crate::entry::{Entry, Payload};
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::rules::{Published, current, keys};

/// Keeps headquarters' rule sets as a view: each in `ru/h/`, and the one published last (by
/// its clock, so the order entries arrive in does not matter) in `ru/now`. A set from a store,
/// or one that fails its check, is skipped with the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
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
