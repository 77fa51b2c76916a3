//! The staff directory an entry from headquarters changes.

use crate::entry::{Entry, Payload};
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::staff::keys;

/// Takes in a staff change from headquarters; one from a store is skipped (`Some(why)`).
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    if !matches!(
        entry.payload,
        Payload::Staff { .. } | Payload::StaffCredentials { .. }
    ) {
        return Ok(None);
    }
    if entry.origin != StoreId::hq() {
        return Ok(Some("a staff change not from headquarters".into()));
    }
    match &entry.payload {
        Payload::Staff { staff } => {
            for r in staff {
                let bytes = postcard::to_stdvec(r).map_err(|e| e.to_string())?;
                kv.put(keys::staff(&r.id), bytes);
            }
        }
        Payload::StaffCredentials { id, hash } => match hash {
            Some(hash) => kv.put(keys::credentials(id), hash.clone().into_bytes()),
            None => kv.delete(keys::credentials(id)),
        },
        _ => {}
    }
    Ok(None)
}
