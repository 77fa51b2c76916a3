//! 消费记录 at headquarters: each member's purchases and returns at every store, newest first,
//! for the member's own page. One small record per sale or return with a member, filed under
//! `mh/<member>/<newest-first time>/<store>/<seq>` (a store's node keeps its own `ms/` instead).

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Payload};
use crate::ids::{MemberId, SaleId, StoreId};
use crate::inventory::ViewKv;
use crate::money::Fen;

/// Where a member's records start.
pub fn prefix(member: &MemberId) -> Vec<u8> {
    format!("mh/{member}/").into_bytes()
}

/// One purchase or return, as the member's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub store: StoreId,
    /// The sale (for a return: the sale returned).
    pub sale_id: SaleId,
    pub returned: bool,
    /// Paid, or paid back.
    pub amount: Fen,
    /// Lines bought or brought back (0 for a quick sale, which has none).
    pub lines: u32,
    /// Points earned (a sale) or taken back (a return).
    pub points: i64,
    pub at_ms: u64,
}

/// Files `entry`'s purchase or return under its member, if it has one.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    let (member, purchase) = match &entry.payload {
        Payload::Sale { sale: s, .. } | Payload::QuickSale(s) => (
            s.member_id,
            Purchase {
                store: entry.origin.clone(),
                sale_id: s.sale_id.clone(),
                returned: false,
                amount: s.amount,
                lines: 0,
                points: s.points_earned.0,
                at_ms: entry.hlc.wall_ms,
            },
        ),
        Payload::Checkout { sale: s, .. } => (
            s.member_id,
            Purchase {
                store: entry.origin.clone(),
                sale_id: s.sale_id.clone(),
                returned: false,
                amount: s.due,
                lines: u32::try_from(s.lines.len()).unwrap_or(u32::MAX),
                points: s.points_earned.0,
                at_ms: entry.hlc.wall_ms,
            },
        ),
        Payload::Return {
            sale,
            member_id,
            amount,
            ..
        } => (
            *member_id,
            Purchase {
                store: entry.origin.clone(),
                sale_id: sale.clone(),
                returned: true,
                amount: *amount,
                lines: 0,
                points: 0,
                at_ms: entry.hlc.wall_ms,
            },
        ),
        Payload::ItemReturn { ret, .. } => (
            ret.member_id,
            Purchase {
                store: entry.origin.clone(),
                sale_id: ret.sale_id.clone(),
                returned: true,
                amount: ret.amount,
                lines: u32::try_from(ret.lines.len()).unwrap_or(u32::MAX),
                points: i64::try_from(ret.points_taken).unwrap_or(i64::MAX),
                at_ms: entry.hlc.wall_ms,
            },
        ),
        _ => return Ok(()),
    };
    let Some(member) = member else {
        return Ok(());
    };
    let mut key = prefix(&member);
    key.extend(
        format!(
            "{:016x}/{}/{:016x}",
            u64::MAX - purchase.at_ms,
            entry.origin,
            entry.seq
        )
        .into_bytes(),
    );
    let bytes = postcard::to_stdvec(&purchase).map_err(|e| e.to_string())?;
    kv.put(key, bytes);
    Ok(())
}
