//! 人群 at headquarters: a segment evaluated over the member directory and members' purchases
//! (`crate::activity`, or the report cells: one per member, store and day), as of a day.
//! Read-only; the API runs it off the async threads and hands the members found to the ingest
//! thread to issue a campaign's coupons.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use protocol::reports::{SalesCell, keys};
use protocol::segment::{Day, Facets, Segment};
use protocol::{MemberId, StoreId};

use crate::activity;
use crate::storage::{HubStore, MemberRecord};

/// The members in `segment` on `today`, by id, with their facets. A segment that needs a
/// purchase reads the activity records of members whose last purchase can make them part of
/// it (the member cells of its window, if some days of it are no longer kept there), then the
/// records of those whose purchases meet it; any other reads every member.
pub fn evaluate(
    storage: &dyn HubStore,
    segment: &Segment,
    today: NaiveDate,
) -> Result<Vec<(MemberId, Facets)>, String> {
    let window = segment.window_days();
    let from = today - TimeDelta::days(i64::from(window) - 1);
    let bought = |days: &[Day]| segment.bought(days, today);
    // A segment that needs a purchase keeps the days of members whose purchases meet it only.
    let days = match segment.needs_purchase() {
        true => {
            let kept = activity(storage, (from, today), segment.quiet_days(), bought)?;
            // Looked at after the records, as they were read: a batch taken since may have
            // dropped days of the window from a record read.
            let pruned = activity::pruned(|key| {
                let mut end = key.to_vec();
                end.push(0);
                let found = storage.views_between(key, &end, 1);
                Ok(found.map_err(|e| e.to_string())?.pop().map(|(_, v)| v))
            })?;
            match pruned.is_none_or(|p| p <= from) {
                true => kept,
                false => {
                    let mut all = purchases(storage, window, today)?;
                    all.retain(|_, days| bought(days));
                    all
                }
            }
        }
        false => purchases(storage, window, today)?,
    };
    let none = Vec::new();
    let holds = |id: &MemberId, facets: &Facets| {
        let bought = days.get(id).unwrap_or(&none);
        segment.holds(facets, bought, today)
    };
    // Only those found by their purchases can be in it; else every member's facets, a page at
    // a time. Either way the facets of those found are read again (an erased member's are
    // gone): a profile changed since (consent withdrawn, another tier) is as it is now.
    let ids: Vec<MemberId> = match segment.needs_purchase() {
        true => {
            let mut ids: Vec<MemberId> = days.keys().copied().collect();
            ids.sort();
            ids
        }
        false => {
            let mut ids = Vec::new();
            crate::storage::each_facets(storage, |id, facets| {
                if holds(&id, &facets) {
                    ids.push(id);
                }
                Ok(())
            })?;
            ids
        }
    };
    let mut found: Vec<(MemberId, Facets)> = facets_of(storage, &ids)?
        .into_iter()
        .filter(|(id, facets)| holds(id, facets))
        .collect();
    found.sort_by_key(|(id, _)| *id);
    Ok(found)
}

/// Records read at a time.
const PAGE: usize = 10_000;

/// The days of purchases that `keep` keeps of every member whose last purchase was from
/// `from` to `quiet` days before `today`, or after `today` (a segment evaluated as of a past
/// day).
fn activity(
    storage: &dyn HubStore,
    (from, today): (NaiveDate, NaiveDate),
    quiet: u32,
    keep: impl Fn(&[Day]) -> bool,
) -> Result<HashMap<MemberId, Vec<Day>>, String> {
    let until = today - TimeDelta::days(i64::from(quiet)) + TimeDelta::days(1);
    let after = today + TimeDelta::days(1);
    let mut days = HashMap::new();
    for (mut start, end) in [
        (activity::keys::from(from), activity::keys::from(until)),
        (activity::keys::from(after), activity::keys::END.to_vec()),
    ] {
        loop {
            let page = storage
                .views_between(&start, &end, PAGE)
                .map_err(|e| e.to_string())?;
            for (key, value) in &page {
                let (member, record) = activity::decode(key, value)?;
                if keep(&record) {
                    days.insert(member, record);
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => start = [last.as_slice(), b"\0"].concat(),
                _ => break,
            }
        }
    }
    Ok(days)
}

/// The records of `ids` (an erased member has none), read on as many threads as the machine
/// has cores, up to four: each is a read and an unsealing.
pub(crate) fn records(
    storage: &dyn HubStore,
    ids: &[MemberId],
) -> Result<Vec<MemberRecord>, String> {
    on_threads(ids, |part| {
        let mut found = Vec::with_capacity(part.len());
        for id in part {
            found.extend(storage.member(id).map_err(|e| e.to_string())?);
        }
        Ok(found)
    })
}

/// `read` over `ids` in as many parts as the machine has cores, up to four, each on a thread;
/// the parts' answers in order.
fn on_threads<T: Send>(
    ids: &[MemberId],
    read: impl Fn(&[MemberId]) -> Result<Vec<T>, String> + Sync,
) -> Result<Vec<T>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let part = ids.len().div_ceil(threads).max(1);
    let read = &read;
    let parts: Vec<Result<Vec<T>, String>> = std::thread::scope(|scope| {
        let readers: Vec<_> = ids
            .chunks(part)
            .map(|ids| scope.spawn(move || read(ids)))
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err("a reader panicked".to_owned()))
            })
            .collect()
    });
    let mut found = Vec::with_capacity(ids.len());
    for part in parts {
        found.extend(part?);
    }
    Ok(found)
}

/// The facets of `ids` (an erased member has none), read on as many threads as the machine
/// has cores, up to four: each is a read and an unsealing.
fn facets_of(storage: &dyn HubStore, ids: &[MemberId]) -> Result<Vec<(MemberId, Facets)>, String> {
    on_threads(ids, |part| {
        storage.facets_of(part).map_err(|e| e.to_string())
    })
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

/// Why a campaign could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Refused(#[from] crate::ingest::MarketingRefused),
    #[error("{0}")]
    Unavailable(String),
}

/// Runs campaign `id` as of `on`, `coupons` to each member: its segment evaluated here (off
/// the async threads), its coupons issued by the ingest thread (`Ingest::issue_campaign`).
pub async fn run_campaign(
    ingest: &crate::ingest::IngestHandle,
    storage: std::sync::Arc<dyn HubStore>,
    id: String,
    (on, coupons): (NaiveDate, u32),
    by: protocol::StaffId,
) -> Result<protocol::campaign::Run, RunError> {
    use crate::ingest::MarketingRefused;
    let wanted = id.clone();
    let targets = tokio::task::spawn_blocking(move || {
        let views = crate::ingest::HubViews::reader(&*storage);
        let Some(c) = protocol::project::marketing::campaign(&views, &wanted)? else {
            return Ok(None);
        };
        let Some(segment) = protocol::project::marketing::segment(&views, &c.item.segment)? else {
            return Ok(None);
        };
        let found = evaluate(&*storage, &segment.item, on)?;
        Ok::<_, String>(Some(
            found
                .into_iter()
                .map(|(id, facets)| (id, facets.home_store))
                .collect::<Vec<_>>(),
        ))
    })
    .await
    .map_err(|e| RunError::Unavailable(e.to_string()))?
    .map_err(RunError::Unavailable)?;
    let Some(targets) = targets else {
        return Err(MarketingRefused::Unknown {
            kind: "campaign or its segment",
            id,
        }
        .into());
    };
    match ingest.run_campaign(id, (on, coupons), targets, by).await {
        Ok(run) => Ok(run?),
        Err(e) => Err(RunError::Unavailable(e.to_string())),
    }
}

/// Runs every daily campaign not withdrawn that has not run today and whose template still
/// issues, once it is `from_hour` o'clock or later (the end of quiet hours): the daily birthday
/// run. Returns the runs that ran; one that failed is logged and tried at the next call.
pub async fn run_daily(
    ingest: &crate::ingest::IngestHandle,
    storage: std::sync::Arc<dyn HubStore>,
    now_ms: u64,
    from_hour: u32,
) -> Result<Vec<protocol::campaign::Run>, RunError> {
    use chrono::Timelike;
    use protocol::campaign::{Campaign, Schedule};
    use protocol::project::marketing::{self, Published, keys};
    let calendar = protocol::calendar::StoreCalendar::default();
    if calendar.local_time(now_ms).hour() < from_hour {
        return Ok(Vec::new());
    }
    let today = calendar.business_date(now_ms);
    let reader = storage.clone();
    let due = tokio::task::spawn_blocking(move || {
        let views = crate::ingest::HubViews::reader(&*reader);
        let mut due = Vec::new();
        for (_, v) in reader
            .views(keys::CAMPAIGNS, usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let c: Published<Campaign> = postcard::from_bytes(&v).map_err(|e| e.to_string())?;
            let c = c.item;
            if c.schedule != Schedule::Daily
                || c.withdrawn
                || marketing::run(&views, &c.id, &c.run_on(today))?.is_some()
            {
                continue;
            }
            // A withdrawn or expired template issues nothing: not due, not an error each minute.
            let Some(template) = marketing::template(&views, &c.template)? else {
                continue;
            };
            let (_, to) = template.item.validity.period(today);
            if !template.item.withdrawn && to >= today {
                due.push(c.id);
            }
        }
        Ok::<_, String>(due)
    })
    .await
    .map_err(|e| RunError::Unavailable(e.to_string()))?
    .map_err(RunError::Unavailable)?;
    // One campaign that fails does not keep the others from running; it is tried again at
    // the next tick.
    let mut runs = Vec::new();
    for id in due {
        let run = run_campaign(
            ingest,
            storage.clone(),
            id.clone(),
            (today, 1),
            protocol::StaffId::system(),
        );
        match run.await {
            Ok(run) => runs.push(run),
            Err(e) => tracing::error!(campaign = %id, error = %e, "a daily campaign could not run"),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use protocol::StaffId;
    use protocol::campaign::{Campaign, MarketingChange, Schedule};

    use super::*;
    use crate::ingest::marketing::tests::{chain, publish};

    /// 2026-12-05 10:00 in Shanghai.
    const MORNING_MS: u64 = 1_796_436_000_000;

    /// Member `n` of `members` bought for 50 yuan at S001 on each of `days`, as S001's log says.
    fn bought(
        ingest: &mut crate::ingest::Ingest,
        members: &[(MemberId, StoreId)],
        n: usize,
        days: &[NaiveDate],
    ) {
        use protocol::entry::{Entry, Payload, Sealed};
        let s001 = StoreId::parse("S001").unwrap();
        for date in days {
            let tip = ingest.tip(&s001);
            let entry = Entry {
                origin: s001.clone(),
                seq: tip.next_seq,
                hlc: protocol::Hlc {
                    wall_ms: MORNING_MS + tip.next_seq,
                    logical: 0,
                },
                business_date: *date,
                staff: StaffId::system(),
                tx: protocol::TxId::parse(&format!("S001-till-{:08}", tip.next_seq)).unwrap(),
                prev_hash: tip.hash,
                payload: Payload::QuickSale(protocol::sale::QuickSale {
                    sale_id: protocol::SaleId::for_entry(&s001, tip.next_seq),
                    member_id: Some(members[n].0),
                    category: None,
                    amount: protocol::Fen(5_000),
                    currency: protocol::money::Currency::CNY,
                    tender: protocol::sale::Tender::Cash {
                        tendered: protocol::Fen(5_000),
                        change: protocol::Fen(0),
                    },
                    points_earned: protocol::points::Points(0),
                }),
            };
            ingest
                .ingest(&s001, vec![Sealed::new(entry)], tip.next_seq)
                .unwrap();
        }
    }

    fn days_before(today: NaiveDate, back: &[i64]) -> Vec<NaiveDate> {
        back.iter().map(|n| today - TimeDelta::days(*n)).collect()
    }

    fn dormant() -> Segment {
        Segment {
            id: "dormant".into(),
            name: "沉睡".into(),
            conditions: vec![protocol::segment::Condition::Dormant {
                visits: 2,
                window_days: 180,
                quiet_days: 60,
            }],
        }
    }

    fn found(storage: &dyn HubStore, segment: &Segment, on: NaiveDate) -> Vec<MemberId> {
        let found = evaluate(storage, segment, on).unwrap();
        found.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn a_dormant_segment_finds_who_bought_before_and_not_lately() {
        let (storage, mut ingest, members) = chain(3);
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        // The first bought twice months ago; the second twice, once last week; the third once.
        bought(&mut ingest, &members, 0, &days_before(today, &[100, 120]));
        bought(&mut ingest, &members, 1, &days_before(today, &[100, 7]));
        bought(&mut ingest, &members, 2, &days_before(today, &[90]));
        assert!(dormant().needs_purchase());
        assert_eq!(found(&*storage, &dormant(), today), vec![members[0].0]);
    }

    #[test]
    fn a_segment_as_of_a_past_day_finds_a_member_who_bought_after_it() {
        let (storage, mut ingest, members) = chain(2);
        let past = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        // Dormant on 1 June, back since; the other was not dormant then.
        bought(
            &mut ingest,
            &members,
            0,
            &days_before(past, &[100, 120, -30]),
        );
        bought(&mut ingest, &members, 1, &days_before(past, &[100, 7]));
        assert_eq!(found(&*storage, &dormant(), past), vec![members[0].0]);
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert!(found(&*storage, &dormant(), today).is_empty());
    }

    #[test]
    fn activity_records_are_read_in_pages_and_none_is_missed() {
        let (storage, ingest, _) = chain(0);
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let cell = postcard::to_stdvec(&SalesCell {
            sales: 1,
            net: 5_000,
            ..SalesCell::default()
        })
        .unwrap();
        let mut kv = std::collections::BTreeMap::new();
        let n = PAGE * 2 + 3;
        for i in 0..n {
            let member = MemberId::mint(1_000, i as u128);
            let date = today - TimeDelta::days((i % 90) as i64);
            kv.insert(keys::member(date, &s001, &member), cell.clone());
            activity::note(&mut kv, &member, date, &s001).unwrap();
        }
        let tip = ingest.tip(&s001);
        storage
            .append(crate::storage::Append {
                store: &s001,
                entries: Vec::new(),
                tip,
                status: crate::storage::StoreStatus::default(),
                feed: Vec::new(),
                feed_len: ingest.feed_len(),
                members: Vec::new(),
                phones: Vec::new(),
                wallets: Vec::new(),
                views: kv.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                keys: Vec::new(),
                erased: Vec::new(),
                notices: Vec::new(),
            })
            .unwrap();
        let from = today - TimeDelta::days(89);
        let all = activity(&*storage, (from, today), 0, |_| true).unwrap();
        assert_eq!(all.len(), n);
        // Quiet for the last 30 days: only those whose last purchase was before.
        let quiet = activity(&*storage, (from, today), 30, |_| true).unwrap();
        assert_eq!(quiet.len(), (0..n).filter(|i| i % 90 >= 30).count());
    }

    #[test]
    fn a_window_older_than_the_days_kept_is_read_from_the_report_cells() {
        let (storage, mut ingest, members) = chain(1);
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        // Two visits long ago, then one today: the old days leave the member's record.
        let long_ago = today - TimeDelta::days(crate::activity::KEEP_DAYS + 100);
        bought(&mut ingest, &members, 0, &days_before(long_ago, &[0, 1]));
        bought(&mut ingest, &members, 0, &[today]);
        let regulars = Segment {
            id: "regulars".into(),
            name: "常客".into(),
            conditions: vec![protocol::segment::Condition::Visits {
                within_days: 30,
                at_least: 2,
                at_most: None,
            }],
        };
        assert_eq!(found(&*storage, &regulars, long_ago), vec![members[0].0]);
        assert!(found(&*storage, &regulars, today).is_empty());
    }

    /// A chain of `n` members with a daily campaign "BDAY" of template T1, changed by `edit`,
    /// then its ingest thread started.
    fn daily_chain(
        n: usize,
        edit: impl FnOnce(&mut crate::ingest::Ingest, &crate::storage::MemHubStore),
    ) -> (
        Arc<dyn HubStore>,
        crate::ingest::IngestHandle,
        std::thread::JoinHandle<()>,
    ) {
        let (storage, mut ingest, _) = chain(n);
        publish(&mut ingest, None, 5, &[]);
        let daily = Campaign {
            id: "BDAY".into(),
            name: "每日".into(),
            template: "T1".into(),
            segment: "home".into(),
            schedule: Schedule::Daily,
            message: String::new(),
            withdrawn: false,
        };
        ingest
            .publish_marketing(MarketingChange::Campaign(daily), &StaffId::system())
            .unwrap();
        edit(&mut ingest, &storage);
        ingest.flush().unwrap();
        drop(ingest);
        let storage: Arc<dyn HubStore> = storage;
        let (handle, thread) = crate::ingest::spawn(
            storage.clone(),
            protocol::lease::FenceRule::with_lease(1_000),
            protocol::bank::Policy::default(),
            false,
        )
        .unwrap();
        (storage, handle, thread)
    }

    #[tokio::test]
    async fn a_daily_campaign_runs_once_a_day_after_quiet_hours() {
        let (storage, handle, _thread) = daily_chain(3, |_, _| {});
        let early = MORNING_MS - 3 * 3_600_000;
        let none = run_daily(&handle, storage.clone(), early, 9).await.unwrap();
        assert!(none.is_empty(), "07:00 is before the day's run");
        let ran = run_daily(&handle, storage.clone(), MORNING_MS, 9)
            .await
            .unwrap();
        assert_eq!(ran.len(), 1);
        assert_eq!((ran[0].run.as_str(), ran[0].issued), ("2026-12-05", 3));
        let again = run_daily(&handle, storage.clone(), MORNING_MS + 60_000, 9)
            .await
            .unwrap();
        assert!(again.is_empty(), "it ran today already");
        let tomorrow = run_daily(&handle, storage.clone(), MORNING_MS + 86_400_000, 9)
            .await
            .unwrap();
        assert_eq!(tomorrow[0].run, "2026-12-06");
    }

    #[tokio::test]
    async fn a_daily_campaign_whose_template_is_withdrawn_is_not_due() {
        let (storage, handle, _thread) = daily_chain(2, |ingest, storage| {
            let views = crate::ingest::HubViews::reader(storage);
            let mut template = protocol::project::marketing::template(&views, "T1")
                .unwrap()
                .unwrap()
                .item;
            template.withdrawn = true;
            ingest
                .publish_marketing(MarketingChange::Template(template), &StaffId::system())
                .unwrap();
        });
        let ran = run_daily(&handle, storage.clone(), MORNING_MS, 9)
            .await
            .unwrap();
        assert!(ran.is_empty(), "{ran:?}");
    }
}
