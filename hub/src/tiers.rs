//! 会员等级评定 at headquarters: the periodic review that moves members down (and catches up
//! rises a store could not see), from every store's sales. Read-only here: what each member
//! qualified with over the table's period, from the report cells (net spend, `rp/m/`, or
//! points earned, `rp/p/`), and the moves the table gives; the ingest thread writes them
//! (`Ingest::move_tiers`), in parts.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use protocol::member::CardStatus;
use protocol::reports::{SalesCell, keys};
use protocol::tiers::{Basis, TierTable};
use protocol::{MemberId, StoreId};

use crate::storage::HubStore;

/// The most moves a review answer lists, with names and masked phones, in member id order
/// (its counts cover them all).
pub const MOVES_LISTED: usize = 500;

/// Moves written per call to the ingest thread, so stores' pushes go in between.
pub const MOVES_PART: usize = 2_000;

/// One member's move at a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierMove {
    pub member_id: MemberId,
    pub from: String,
    pub to: String,
    /// What they qualified with: fen of net spend, or points, by `basis`.
    pub qualifying: i64,
    pub basis: Basis,
}

/// What the review found on `as_of`.
#[derive(Debug, Clone)]
pub struct Review {
    pub as_of: NaiveDate,
    pub checked: usize,
    pub up: usize,
    pub down: usize,
    pub moves: Vec<TierMove>,
    /// Names and masked phones of the first `MOVES_LISTED` moved (in id order), for the page.
    pub who: HashMap<MemberId, (String, String)>,
}

/// The moves `table` gives every member on `today` (closed memberships are left alone).
pub fn review(
    storage: &dyn HubStore,
    table: &TierTable,
    today: NaiveDate,
) -> Result<Review, String> {
    let qualified = qualifying(storage, table, today)?;
    let mut found = Review {
        as_of: today,
        checked: 0,
        up: 0,
        down: 0,
        moves: Vec::new(),
        who: HashMap::new(),
    };
    // Each member's tier from their facets; the records (names, phones) of the moves listed only.
    crate::storage::each_facets(storage, |member_id, f| {
        if f.card_status == CardStatus::Closed {
            return Ok(());
        }
        found.checked += 1;
        let q = qualified.get(&member_id).copied().unwrap_or(0);
        let Some(to) = table.review(&f.tier, q) else {
            return Ok(());
        };
        let rose = table.rank(&to.name) > table.rank(&f.tier);
        if rose {
            found.up += 1;
        } else {
            found.down += 1;
        }
        found.moves.push(TierMove {
            member_id,
            from: f.tier,
            to: to.name.clone(),
            qualifying: q,
            basis: table.basis,
        });
        Ok(())
    })?;
    found.moves.sort_by_key(|m| m.member_id);
    let listed: Vec<MemberId> = found
        .moves
        .iter()
        .take(MOVES_LISTED)
        .map(|m| m.member_id)
        .collect();
    for record in crate::segments::records(storage, &listed)? {
        let p = &record.profile;
        found
            .who
            .insert(record.member_id, (p.name.clone(), p.phone.masked()));
    }
    Ok(found)
}

/// What each member qualified with over the `period_days` up to `today`, every store.
fn qualifying(
    storage: &dyn HubStore,
    table: &TierTable,
    today: NaiveDate,
) -> Result<HashMap<MemberId, i64>, String> {
    let mut total: HashMap<MemberId, i64> = HashMap::new();
    for back in 0..i64::from(table.period_days) {
        let date = today - TimeDelta::days(back);
        let prefix = match table.basis {
            Basis::Spend => keys::member_prefix(date),
            Basis::Points => keys::member_points_prefix(date),
        };
        for (key, value) in storage
            .views(&prefix, usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let damaged = || format!("member cell {rest:?} is damaged");
            let (store, member) = rest.split_once('/').ok_or_else(damaged)?;
            let (Ok(_), Ok(member)) = (StoreId::parse(store), MemberId::parse(member)) else {
                return Err(damaged());
            };
            let add = match table.basis {
                Basis::Spend => {
                    let cell: SalesCell =
                        postcard::from_bytes(&value).map_err(|e| e.to_string())?;
                    cell.net - cell.returned
                }
                Basis::Points => postcard::from_bytes::<i64>(&value).map_err(|e| e.to_string())?,
            };
            let t = total.entry(member).or_default();
            *t = t.saturating_add(add);
        }
    }
    Ok(total)
}

/// Runs the review once a business day, from `from_hour` on, when a tier table is published,
/// over the same days a till counts today (the period ending today); `done` remembers the day
/// it last ran, failed or not (a failure is logged and tried the next day, not every minute;
/// a restart runs it again, which moves no one twice: a member moved already is where the
/// table puts them).
pub async fn review_daily(
    ingest: &crate::ingest::IngestHandle,
    storage: std::sync::Arc<dyn HubStore>,
    now_ms: u64,
    from_hour: u32,
    done: &mut Option<NaiveDate>,
) -> Result<Option<Review>, String> {
    use chrono::Timelike;
    let calendar = protocol::calendar::StoreCalendar::default();
    let today = calendar.business_date(now_ms);
    if calendar.local_time(now_ms).hour() < from_hour || *done == Some(today) {
        return Ok(None);
    }
    *done = Some(today);
    run(ingest, storage, today, false, protocol::StaffId::system()).await
}

/// The review as of `as_of`: found here off the async threads, then (unless `dry_run`)
/// written by the ingest thread in parts. `None` while no tier table is published.
pub async fn run(
    ingest: &crate::ingest::IngestHandle,
    storage: std::sync::Arc<dyn HubStore>,
    as_of: NaiveDate,
    dry_run: bool,
    by: protocol::StaffId,
) -> Result<Option<Review>, String> {
    let found = tokio::task::spawn_blocking(move || {
        let views = crate::ingest::HubViews::reader(&*storage);
        let Some(published) = protocol::tiers::current(&views)? else {
            return Ok(None);
        };
        review(&*storage, &published.table, as_of).map(Some)
    })
    .await
    .map_err(|e| e.to_string())??;
    let Some(found) = found else {
        return Ok(None);
    };
    if !dry_run {
        for part in found.moves.chunks(MOVES_PART) {
            ingest
                .hq_write(
                    crate::ingest::HqWrite::MoveTiers {
                        moves: part.to_vec(),
                        as_of,
                    },
                    by.clone(),
                )
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::HqWrite;
    use crate::ingest::marketing::tests::{DAY, chain};
    use protocol::entry::{Entry, Payload, Sealed};
    use protocol::sale::{QuickSale, Tender};
    use protocol::{Fen, SaleId, StaffId, TxId};

    fn table() -> TierTable {
        serde_json::from_str::<protocol::tiers::TierForm>(
            r#"{"basis": "spend", "period_days": 365, "tiers": [
                {"name": "普通", "threshold": "0"},
                {"name": "银卡", "threshold": "1000", "percent_off": "5"},
                {"name": "金卡", "threshold": "5000", "percent_off": "10", "may_go_down": false}
            ]}"#,
        )
        .unwrap()
        .table()
        .unwrap()
    }

    /// A quick sale of `yuan` to `member` at S001 on `date`, as S001's next entry.
    fn sale(ingest: &mut crate::ingest::Ingest, member: MemberId, yuan: i64, date: NaiveDate) {
        let s001 = StoreId::parse("S001").unwrap();
        let tip = ingest.tip(&s001);
        let mut entry: Entry = crate::ingest::tests::registration(&s001, tip, "13900000001");
        entry.business_date = date;
        entry.tx = TxId::parse(&format!("S001-sale-{:04}", tip.next_seq)).unwrap();
        entry.payload = Payload::QuickSale(QuickSale {
            sale_id: SaleId::for_entry(&s001, tip.next_seq),
            member_id: Some(member),
            category: None,
            amount: Fen(yuan * 100),
            currency: protocol::Currency::CNY,
            tender: Tender::Cash {
                tendered: Fen(yuan * 100),
                change: Fen(0),
            },
            points_earned: protocol::points::Points(yuan),
        });
        let seq = entry.seq;
        ingest.ingest(&s001, vec![Sealed::new(entry)], seq).unwrap();
    }

    fn tier(storage: &dyn HubStore, member: &MemberId) -> String {
        storage.member(member).unwrap().unwrap().profile.tier
    }

    /// The review places members the table does not name, raises one a store's sales took over
    /// a threshold, moves down one whose spend left the period — but never out of a tier that
    /// may not go down — and, run again, moves no one twice.
    #[test]
    fn the_review_moves_members_from_every_stores_sales_and_only_once() {
        let (storage, mut ingest, members) = chain(3);
        let by = StaffId::system();
        ingest.hq_write(HqWrite::Tiers(table()), &by).unwrap();
        let [(rich, _), (gold, _), (plain, _)] = members[..] else {
            unreachable!()
        };
        sale(&mut ingest, rich, 1_200, DAY - TimeDelta::days(3));
        let write = |ingest: &mut crate::ingest::Ingest, moves: Vec<TierMove>, as_of| {
            ingest
                .hq_write(HqWrite::MoveTiers { moves, as_of }, &by)
                .unwrap()
        };

        let first = review(&*storage, &table(), DAY).unwrap();
        assert_eq!((first.checked, first.up, first.down), (3, 3, 0));
        let to: Vec<(&str, i64)> = first
            .moves
            .iter()
            .filter(|m| m.member_id == rich)
            .map(|m| (m.to.as_str(), m.qualifying))
            .collect();
        assert_eq!(to, [("银卡", 120_000)]);
        write(&mut ingest, first.moves, DAY);
        assert_eq!(tier(&*storage, &rich), "银卡");
        assert_eq!(tier(&*storage, &plain), "普通");
        assert!(review(&*storage, &table(), DAY).unwrap().moves.is_empty());

        // 金卡 given (by hand, say) may not go down; 银卡 does once the sale left the period.
        let hand = TierMove {
            member_id: gold,
            from: "普通".into(),
            to: "金卡".into(),
            qualifying: 0,
            basis: Basis::Spend,
        };
        write(&mut ingest, vec![hand.clone()], DAY);
        let later = DAY + TimeDelta::days(400);
        let down = review(&*storage, &table(), later).unwrap();
        assert_eq!((down.up, down.down), (0, 1));
        assert_eq!(down.moves[0].member_id, rich);
        assert_eq!(down.moves[0].to, "普通");
        // A move read before the member changed tier is skipped, not forced.
        write(&mut ingest, vec![hand], later);
        write(&mut ingest, down.moves, later);
        assert_eq!(tier(&*storage, &rich), "普通");
        assert_eq!(tier(&*storage, &gold), "金卡");
    }
}
