//! 消费记录 by member: each member's days of purchases at headquarters, kept as entries arrive,
//! so a segment on purchases reads one record per member who may be in it instead of a report
//! cell per member, store and day.
//!
//! `ac/l/<day>/<member>` holds the member's days (date, store, sales, paid net of returns: the
//! member's report cells `rp/m/…` as they stand) under the last day they bought something (a
//! member with returns only: their last day). Members of a segment must have bought since its
//! window began and, for 沉睡, not in its quiet days: it reads only the days their last purchase
//! can fall on. `ac/m/<member>` holds that day, to find the record. Days more than `KEEP_DAYS`
//! before a member's last purchase are dropped; `ac/pruned` holds the latest day before which
//! any may have been, and a segment whose window starts before it reads the report cells
//! instead. Records and `ac/pruned` end the same in whatever order the entries came (a rebuild
//! takes them in another), as the report cells do.

use chrono::{Datelike, NaiveDate, TimeDelta};
use protocol::entry::Entry;
use protocol::inventory::ViewKv;
use protocol::reports::{SalesCell, keys as cells};
use protocol::segment::{Day, WINDOW_DAYS_MAX};
use protocol::{MemberId, StoreId};
use serde::{Deserialize, Serialize};

/// How many days before a member's last purchase their record keeps: the longest window a
/// segment has, and a month more so records are not rewritten to drop a day each sale.
pub const KEEP_DAYS: i64 = WINDOW_DAYS_MAX as i64 + 31;

pub mod keys {
    use chrono::NaiveDate;
    use protocol::MemberId;

    pub const PRUNED: &[u8] = b"ac/pruned";

    /// A member's record, under the day their last purchase was on.
    pub fn record(last: NaiveDate, member: &MemberId) -> Vec<u8> {
        format!("ac/l/{last}/{member}").into_bytes()
    }
    /// The first key of records whose last purchase was on `day` or later.
    pub fn from(day: NaiveDate) -> Vec<u8> {
        format!("ac/l/{day}/").into_bytes()
    }
    /// After every record.
    pub const END: &[u8] = b"ac/l0";
    /// Where a member's record is: the day it is under.
    pub fn last(member: &MemberId) -> Vec<u8> {
        format!("ac/m/{member}").into_bytes()
    }
}

/// Brings the record of the member of a sale or a return up to date with their report cell,
/// after `protocol::reports::apply` changed it.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    match protocol::reports::member_of(&entry.payload) {
        Some(member) => note(kv, &member, entry.business_date, &entry.origin),
        None => Ok(()),
    }
}

/// Brings `member`'s record up to date with their report cell at `store` on `date`.
pub fn note(
    kv: &mut dyn ViewKv,
    member: &MemberId,
    date: NaiveDate,
    store: &StoreId,
) -> Result<(), String> {
    let member = *member;
    let cell: SalesCell = match kv.get(&cells::member(date, store, &member))? {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| e.to_string())?,
        None => return Err(format!("no report cell for member {member} on {date}")),
    };
    let day = Day {
        date,
        store: store.clone(),
        sales: cell.sales,
        spent: cell.net - cell.returned,
    };
    let before = match kv.get(&keys::last(&member))? {
        Some(bytes) => Some(parse_day(&bytes)?),
        None => None,
    };
    let (mut first, mut days) = match before {
        Some(last) => match kv.get(&keys::record(last, &member))? {
            Some(bytes) => record_of(&bytes)?,
            None => return Err(format!("member {member}'s activity is not under {last}")),
        },
        None => (date, Vec::new()),
    };
    first = first.min(date);
    match days.binary_search_by(|d| (d.date, &d.store).cmp(&(day.date, &day.store))) {
        Ok(at) => days[at] = day,
        Err(at) => days.insert(at, day),
    }
    let last = last_day(&days).ok_or("an empty activity record")?;
    // Kept: the days from `KEEP_DAYS` before the last purchase (the last purchase only moves
    // forward, so the record ends the same in whatever order its entries came). A member with
    // no purchase keeps every day. `PRUNED` rises to the first day kept of every member who
    // ever had a day before it, whether or not this note dropped one: it too ends the same.
    if days.iter().any(|d| d.sales > 0) {
        let keep_from = last - TimeDelta::days(KEEP_DAYS);
        days.retain(|d| d.date >= keep_from);
        if first < keep_from {
            let pruned = match kv.get(keys::PRUNED)? {
                Some(bytes) => Some(parse_day(&bytes)?),
                None => None,
            };
            if pruned.is_none_or(|p| p < keep_from) {
                kv.put(keys::PRUNED.to_vec(), keep_from.to_string().into_bytes());
            }
        }
    }
    if let Some(before) = before.filter(|b| *b != last) {
        kv.delete(keys::record(before, &member));
    }
    if before != Some(last) {
        kv.put(keys::last(&member), last.to_string().into_bytes());
    }
    let kept = Record {
        first: first.num_days_from_ce(),
        days: days
            .iter()
            .map(|d| Kept {
                day: d.date.num_days_from_ce(),
                store: d.store.clone(),
                sales: d.sales,
                spent: d.spent,
            })
            .collect(),
    };
    kv.put(
        keys::record(last, &member),
        postcard::to_stdvec(&kept).map_err(|e| e.to_string())?,
    );
    Ok(())
}

/// A member's record as stored: the earliest day ever noted (kept or not), and the days kept.
#[derive(Serialize, Deserialize)]
struct Record {
    first: i32,
    days: Vec<Kept>,
}

/// A day as a record keeps it: the date as days from the common era (a segment decodes
/// hundreds of thousands).
#[derive(Serialize, Deserialize)]
struct Kept {
    day: i32,
    store: StoreId,
    sales: u64,
    spent: i64,
}

fn date_of(day: i32) -> Result<NaiveDate, String> {
    NaiveDate::from_num_days_from_ce_opt(day)
        .ok_or_else(|| format!("a damaged day {day} in an activity record"))
}

fn record_of(bytes: &[u8]) -> Result<(NaiveDate, Vec<Day>), String> {
    let record: Record = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
    let days = record
        .days
        .into_iter()
        .map(|k| {
            Ok(Day {
                date: date_of(k.day)?,
                store: k.store,
                sales: k.sales,
                spent: k.spent,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((date_of(record.first)?, days))
}

/// The day a record is kept under: the last with a purchase, or the last of all.
fn last_day(days: &[Day]) -> Option<NaiveDate> {
    days.iter()
        .filter(|d| d.sales > 0)
        .map(|d| d.date)
        .max()
        .or_else(|| days.iter().map(|d| d.date).max())
}

fn parse_day(bytes: &[u8]) -> Result<NaiveDate, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a damaged day {:?}", String::from_utf8_lossy(bytes)))
}

/// The day before which some member's days may have been dropped (none: every day is kept).
pub fn pruned(
    read: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, String>,
) -> Result<Option<NaiveDate>, String> {
    read(keys::PRUNED)?.map(|b| parse_day(&b)).transpose()
}

/// A record read back: the member, from its key, and their days.
pub fn decode(key: &[u8], value: &[u8]) -> Result<(MemberId, Vec<Day>), String> {
    let member = key
        .iter()
        .rposition(|b| *b == b'/')
        .and_then(|at| std::str::from_utf8(&key[at + 1..]).ok())
        .and_then(|s| MemberId::parse(s).ok())
        .ok_or_else(|| format!("a damaged activity key {:?}", String::from_utf8_lossy(key)))?;
    Ok((member, record_of(value)?.1))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    type Kv = BTreeMap<Vec<u8>, Vec<u8>>;

    fn member() -> MemberId {
        MemberId::mint(1_700_000_000_000, 7)
    }

    /// Sets the member's cell at `store` on `date` as the reports would, then the record.
    fn bought(kv: &mut Kv, date: &str, store: &str, sales: u64, spent: i64) {
        let date: NaiveDate = date.parse().unwrap();
        let store = protocol::StoreId::parse(store).unwrap();
        let cell = SalesCell {
            sales,
            net: spent.max(0),
            returned: (-spent).max(0),
            ..SalesCell::default()
        };
        kv.insert(
            cells::member(date, &store, &member()),
            postcard::to_stdvec(&cell).unwrap(),
        );
        let entry = Entry {
            origin: store.clone(),
            seq: 1,
            hlc: protocol::Hlc {
                wall_ms: 1,
                logical: 0,
            },
            business_date: date,
            staff: protocol::StaffId::system(),
            tx: protocol::TxId::parse("S001-till-1").unwrap(),
            prev_hash: protocol::entry::ChainTip::GENESIS.hash,
            payload: protocol::entry::Payload::QuickSale(protocol::sale::QuickSale {
                sale_id: protocol::SaleId::for_entry(&store, 1),
                member_id: Some(member()),
                category: None,
                amount: protocol::Fen(spent),
                currency: protocol::money::Currency::CNY,
                tender: protocol::sale::Tender::Cash {
                    tendered: protocol::Fen(spent),
                    change: protocol::Fen(0),
                },
                points_earned: protocol::points::Points(0),
            }),
        };
        apply(kv, &entry).unwrap();
    }

    fn records(kv: &Kv) -> Vec<(String, Vec<Day>)> {
        kv.range(b"ac/l/".to_vec()..keys::END.to_vec())
            .map(|(k, v)| {
                let (_, days) = decode(k, v).unwrap();
                (String::from_utf8(k[5..15].to_vec()).unwrap(), days)
            })
            .collect()
    }

    #[test]
    fn a_record_moves_to_the_last_day_with_a_purchase() {
        let mut kv = Kv::new();
        bought(&mut kv, "2026-03-01", "S001", 1, 5_000);
        bought(&mut kv, "2026-05-01", "S002", 2, 8_000);
        // Goods returned later: a day with no purchase does not move the record.
        bought(&mut kv, "2026-06-01", "S001", 0, -3_000);
        let found = records(&kv);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "2026-05-01");
        let spent: Vec<i64> = found[0].1.iter().map(|d| d.spent).collect();
        assert_eq!(spent, vec![5_000, 8_000, -3_000]);
        assert_eq!(kv[&keys::last(&member())], b"2026-05-01".to_vec());
    }

    #[test]
    fn a_late_entry_for_an_earlier_day_joins_the_record_where_it_is() {
        let mut kv = Kv::new();
        bought(&mut kv, "2026-05-01", "S001", 1, 5_000);
        bought(&mut kv, "2026-02-01", "S003", 1, 1_000);
        let found = records(&kv);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "2026-05-01");
        assert_eq!(found[0].1[0].date.to_string(), "2026-02-01");
    }

    #[test]
    fn records_and_the_day_dropped_before_end_the_same_in_any_order() {
        // Days far apart (a drop), a return before the first purchase, a late earlier day.
        let notes = [
            ("2023-01-01", "S001", 1, 5_000),
            ("2023-02-01", "S002", 0, -2_000),
            ("2025-06-01", "S001", 1, 3_000),
            ("2026-01-01", "S002", 2, 8_000),
            ("2026-03-01", "S001", 0, -1_000),
        ];
        let mut ends = std::collections::BTreeSet::new();
        let mut order: Vec<usize> = (0..notes.len()).collect();
        permute(&mut order, 0, &mut |order| {
            let mut kv = Kv::new();
            for &i in order {
                let (date, store, sales, spent) = notes[i];
                bought(&mut kv, date, store, sales, spent);
            }
            ends.insert(kv);
        });
        assert_eq!(ends.len(), 1, "every order ends the same");
    }

    fn permute(items: &mut Vec<usize>, k: usize, each: &mut impl FnMut(&[usize])) {
        if k == items.len() {
            return each(items);
        }
        for i in k..items.len() {
            items.swap(k, i);
            permute(items, k + 1, each);
            items.swap(k, i);
        }
    }

    #[test]
    fn days_long_before_the_last_purchase_are_dropped_and_the_drop_is_noted() {
        let mut kv = Kv::new();
        bought(&mut kv, "2023-01-01", "S001", 1, 5_000);
        assert!(pruned(|k| Ok(kv.get(k).cloned())).unwrap().is_none());
        bought(&mut kv, "2026-01-01", "S001", 1, 5_000);
        let found = records(&kv);
        assert_eq!(found[0].1.len(), 1, "only the 2026 day is kept");
        let cut = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() - TimeDelta::days(KEEP_DAYS);
        assert_eq!(pruned(|k| Ok(kv.get(k).cloned())).unwrap(), Some(cut));
    }
}
