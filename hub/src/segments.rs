//! 人群 at headquarters: a segment evaluated over the member directory and the report cells
//! (one per member, store and day), as of a day. Read-only; the API runs it off the async
//! threads and hands the members found to the ingest thread to issue a campaign's coupons.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use protocol::reports::{SalesCell, keys};
use protocol::segment::{Day, Segment};
use protocol::{MemberId, StoreId};

use crate::storage::{HubStore, MemberRecord};

/// The members in `segment` on `today`, by id, with their records.
pub fn evaluate(
    storage: &dyn HubStore,
    segment: &Segment,
    today: NaiveDate,
) -> Result<Vec<MemberRecord>, String> {
    let days = purchases(storage, segment.window_days(), today)?;
    let none = Vec::new();
    let mut found: Vec<MemberRecord> = storage
        .members()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| {
            let bought = days.get(&r.member_id).unwrap_or(&none);
            segment.holds(&r.profile, bought, today)
        })
        .collect();
    found.sort_by_key(|r| r.member_id);
    Ok(found)
}

/// Each member's purchases per store and day over the `window` days up to `today`.
fn purchases(
    storage: &dyn HubStore,
    window: u32,
    today: NaiveDate,
) -> Result<HashMap<MemberId, Vec<Day>>, String> {
    let mut days: HashMap<MemberId, Vec<Day>> = HashMap::new();
    for back in 0..i64::from(window) {
        let date = today - TimeDelta::days(back);
        let prefix = keys::member_prefix(date);
        for (key, value) in storage
            .views(&prefix, usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let Some((store, member)) = rest.split_once('/') else {
                return Err(format!("member cell {rest:?} is damaged"));
            };
            let (Ok(store), Ok(member)) = (StoreId::parse(store), MemberId::parse(member)) else {
                return Err(format!("member cell {rest:?} is damaged"));
            };
            let cell: SalesCell = postcard::from_bytes(&value).map_err(|e| e.to_string())?;
            days.entry(member).or_default().push(Day {
                date,
                store,
                sales: cell.sales,
                spent: cell.net - cell.returned,
            });
        }
    }
    Ok(days)
}
