//! 人群 at headquarters: a segment evaluated over the member directory and the report cells
//! (one per member, store and day), as of a day. Read-only; the API runs it off the async
//! threads and hands the members found to the ingest thread to issue a campaign's coupons.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use protocol::reports::{SalesCell, keys};
use protocol::segment::{Day, Segment};
use protocol::{MemberId, StoreId};

use crate::storage::{HubStore, MemberRecord};

/// The members in `segment` on `today`, by id, with their records. A segment that needs a
/// purchase reads the member cells of its window and the records of those who bought; any
/// other reads every member.
pub fn evaluate(
    storage: &dyn HubStore,
    segment: &Segment,
    today: NaiveDate,
) -> Result<Vec<MemberRecord>, String> {
    let days = purchases(storage, segment.window_days(), today)?;
    let none = Vec::new();
    // Only those who bought in the window can be in a segment that needs a purchase: read
    // their records alone (an erased member's is gone), not the whole directory.
    let candidates = match segment.needs_purchase() {
        true => {
            let mut ids: Vec<&MemberId> = days
                .iter()
                .filter(|(_, bought)| segment.bought(bought, today))
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(storage.member(id).map_err(|e| e.to_string())?);
            }
            found
        }
        false => storage.members().map_err(|e| e.to_string())?,
    };
    let mut found: Vec<MemberRecord> = candidates
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
                .map(|r| (r.member_id, r.profile.home_store))
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

    #[test]
    fn a_dormant_segment_finds_who_bought_before_and_not_lately_and_reads_only_buyers() {
        use protocol::segment::Condition;
        let (storage, ingest, members) = chain(3);
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let cell = postcard::to_stdvec(&SalesCell {
            sales: 1,
            net: 5_000,
            ..SalesCell::default()
        })
        .unwrap();
        // The first bought twice months ago; the second twice, once last week.
        let mut views = Vec::new();
        for (member, days_ago) in [(0, 100), (0, 120), (1, 100), (1, 7)] {
            let (id, store) = &members[member];
            let date = today - TimeDelta::days(days_ago);
            views.push((keys::member(date, store, id), Some(cell.clone())));
        }
        let s001 = StoreId::parse("S001").unwrap();
        let tip = ingest.tip(&s001);
        storage
            .append(crate::storage::Append {
                store: &s001,
                entries: Vec::new(),
                tip,
                status: crate::storage::StoreStatus {
                    acked_seq: tip.next_seq - 1,
                    log_len: tip.next_seq - 1,
                    ..Default::default()
                },
                feed: Vec::new(),
                feed_len: ingest.feed_len(),
                members: Vec::new(),
                phones: Vec::new(),
                wallets: Vec::new(),
                views,
                keys: Vec::new(),
                erased: Vec::new(),
                notices: Vec::new(),
            })
            .unwrap();
        let dormant = Segment {
            id: "dormant".into(),
            name: "沉睡".into(),
            conditions: vec![Condition::Dormant {
                visits: 2,
                window_days: 180,
                quiet_days: 60,
            }],
        };
        assert!(dormant.needs_purchase());
        let found = evaluate(&*storage, &dormant, today).unwrap();
        let ids: Vec<MemberId> = found.iter().map(|r| r.member_id).collect();
        assert_eq!(ids, vec![members[0].0]);
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
