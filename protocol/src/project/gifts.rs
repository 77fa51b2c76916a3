//! 积分商城 kept as views: headquarters' gift tables (the last published in force), what each
//! replica gave of each gift, and how many of each gift each member has had.

use crate::entry::{Entry, Payload};
use crate::gifts::{Given, Published, current, keys};
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::wallet::WalletEvent;

/// Takes in a gift table or a redemption; anything else is left alone. A table from a store,
/// or one that fails its check, is skipped with the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    match &entry.payload {
        Payload::Gifts { table } => {
            if entry.origin != StoreId::hq() {
                return Ok(Some("gift table not from headquarters".into()));
            }
            if let Err(e) = table.check() {
                return Ok(Some(format!("gift table refused: {e}")));
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
        Payload::Wallet {
            member_id,
            event: WalletEvent::GiftRedeemed { gift, points, .. },
            ..
        } => {
            let key = keys::given(gift, &entry.origin);
            let mut given: Given = crate::inventory::read(kv, &key)?.unwrap_or_default();
            given.times = given.times.saturating_add(1);
            given.points = given.points.saturating_add(*points);
            kv.put(key, postcard::to_stdvec(&given).map_err(|e| e.to_string())?);
            let key = keys::had(member_id, gift);
            let had: u32 = crate::inventory::read(kv, &key)?.unwrap_or(0);
            let had = had.saturating_add(1);
            kv.put(key, postcard::to_stdvec(&had).map_err(|e| e.to_string())?);
            kv.put(keys::request(&entry.origin, &entry.tx), Vec::new());
            Ok(None)
        }
        _ => Ok(None),
    }
}
