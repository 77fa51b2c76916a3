//! 提醒与祝福: notices headquarters makes once a day rather than from an entry — a reminder
//! `expiring_days` before an unused coupon runs out (券即将过期), and a birthday greeting
//! (生日祝福). Each is named after what it is about (`<coupon>-expiring`,
//! `birthday-<member>-<year>`), so a day run again, or after a restart, queues nothing twice.
//! Both are marketing: sent only with consent, outside quiet hours, within the daily limit.

use chrono::{Datelike, NaiveDate, TimeDelta};
use protocol::notice::{Notice, Purpose, Subject};
use protocol::project::marketing::keys;
use protocol::segment::{Condition, Segment};
use protocol::wallet::{CardId, Wallet};
use protocol::{MemberId, StoreId};

use crate::config::NotifyConfig;
use crate::storage::HubStore;

/// Notices queued per write.
const QUEUE_CHUNK: usize = 10_000;

/// What a day's run queued (notices already queued by an earlier run not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub expiring: usize,
    pub birthdays: usize,
}

fn damaged(key: &[u8]) -> String {
    format!("a damaged reminder key {:?}", String::from_utf8_lossy(key))
}

/// Queues `today`'s reminders and greetings.
pub fn queue_day(
    storage: &dyn HubStore,
    config: &NotifyConfig,
    today: NaiveDate,
    now_ms: u64,
) -> Result<Queued, String> {
    let failed = |e: crate::storage::HubStoreError| e.to_string();
    let mut queued = Queued::default();
    let notice = |id: String, member: MemberId, subject: Subject| Notice {
        id,
        member,
        purpose: Purpose::Marketing,
        subject,
        store: StoreId::hq(),
        at_ms: now_ms,
    };
    if config.expiring_days > 0 {
        let last_day = today + TimeDelta::days(i64::from(config.expiring_days));
        let mut notices = Vec::new();
        // Used, given back or never good today: nothing to remind of.
        let mut remind = |wallet: &Wallet, member: MemberId, coupon: &CardId| {
            let Ok(def) = wallet.usable_coupon(coupon, today) else {
                return;
            };
            let subject = Subject::CouponExpiring {
                coupon: coupon.to_string(),
                name: def.name.clone(),
                valid_to: last_day,
            };
            // One reminder for a booklet's coupons (券包: same campaign, member and last day).
            let id = match &def.campaign {
                Some((campaign, _)) => format!("{member}-{campaign}-{last_day}-expiring"),
                None => format!("{coupon}-expiring"),
            };
            notices.push(notice(id, member, subject));
        };
        // Coupons stores issued, each filed under its last day.
        let prefix = keys::expiring_on(last_day);
        for (key, _) in storage.views(&prefix, usize::MAX).map_err(failed)? {
            let Some((member, coupon)) = keys::parse_expiring(&key[prefix.len()..]) else {
                return Err(damaged(&key));
            };
            let card = CardId::parse(&coupon).map_err(|e| format!("coupon {coupon}: {e}"))?;
            if let Some(wallet) = storage.wallet(&member).map_err(failed)? {
                remind(&wallet, member, &card);
            }
        }
        // A campaign's: the members it gave coupons good until that day, and their coupons
        // of it that are.
        let prefix = keys::expiring_campaigns(last_day);
        for (key, _) in storage.views(&prefix, usize::MAX).map_err(failed)? {
            let campaign = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let mut members = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let read = crate::targets::targeted(storage, &campaign, Some(last_day), |m, _| {
                if seen.insert(m) {
                    members.push(m);
                }
            });
            // A campaign whose runs cannot be read is left out, not the day's other reminders.
            if let Err(e) = read {
                tracing::error!(%campaign, error = %e, "a campaign's reminders were not queued");
                continue;
            }
            for member in members {
                let Some(wallet) = storage.wallet(&member).map_err(failed)? else {
                    continue;
                };
                let first = wallet.coupons.iter().find(|(coupon, def)| {
                    def.to == last_day
                        && def.campaign.as_ref().is_some_and(|(c, _)| *c == campaign)
                        && wallet.usable_coupon(coupon, today).is_ok()
                });
                if let Some((coupon, _)) = first {
                    remind(&wallet, member, coupon);
                }
            }
        }
        for chunk in notices.chunks(QUEUE_CHUNK) {
            queued.expiring += storage.queue_notices(chunk).map_err(failed)?;
        }
    }
    if config.birthday {
        let born_today = Segment {
            id: "birthday".into(),
            name: "今天生日".into(),
            conditions: vec![Condition::Birthday { within_days: 0 }],
        };
        let notices: Vec<Notice> = crate::segments::evaluate(storage, &born_today, today)?
            .into_iter()
            .map(|(member, _)| {
                let id = format!("birthday-{member}-{}", today.year());
                notice(id, member, Subject::Birthday)
            })
            .collect();
        for chunk in notices.chunks(QUEUE_CHUNK) {
            queued.birthdays += storage.queue_notices(chunk).map_err(failed)?;
        }
    }
    Ok(queued)
}

/// Runs `queue_day` off the async threads once a local day, from the end of quiet hours on;
/// `done` remembers the day it last ran (a restart runs it again, which queues nothing twice).
pub async fn tick(
    storage: std::sync::Arc<dyn HubStore>,
    config: &NotifyConfig,
    now_ms: u64,
    done: &mut Option<NaiveDate>,
) {
    use chrono::Timelike;
    let calendar = protocol::calendar::StoreCalendar::default();
    let local = calendar.local_time(now_ms);
    if local.hour() < config.quiet_to || *done == Some(local.date()) {
        return;
    }
    let (config, today) = (config.clone(), local.date());
    let ran = tokio::task::spawn_blocking(move || queue_day(&*storage, &config, today, now_ms));
    match ran.await {
        Ok(Ok(queued)) => {
            *done = Some(today);
            tracing::info!(
                expiring = queued.expiring,
                birthdays = queued.birthdays,
                "reminders and greetings queued"
            );
        }
        Ok(Err(e)) => tracing::error!(error = %e, "reminders could not be queued"),
        Err(e) => tracing::error!(error = %e, "reminders could not be queued"),
    }
}

#[cfg(test)]
mod tests {
    use protocol::StaffId;

    use super::*;
    use crate::ingest::marketing::tests::{DAY, chain, publish};
    use crate::storage::Append;

    #[test]
    fn an_unused_coupon_is_reminded_once_the_days_before_it_runs_out() {
        let (storage, mut ingest, members) = chain(3);
        // T1's coupons are good for 30 days from DAY: the last day is DAY + 29.
        publish(&mut ingest, None, 1, &["C1"]);
        ingest
            .run_campaign("C1", DAY, &members, &StaffId::system())
            .unwrap();
        ingest.flush().unwrap();
        let config = NotifyConfig {
            expiring_days: 3,
            birthday: false,
            ..NotifyConfig::default()
        };
        let early = queue_day(&*storage, &config, DAY, 0).unwrap();
        assert_eq!(early.expiring, 0, "not yet");
        let three_before = DAY + TimeDelta::days(26);
        let queued = queue_day(&*storage, &config, three_before, 0).unwrap();
        assert_eq!(queued.expiring, 3);
        let again = queue_day(&*storage, &config, three_before, 0).unwrap();
        assert_eq!(again.expiring, 0, "queued once");
        let notices = storage.latest_notices(100).unwrap();
        let reminders: Vec<&Notice> = notices
            .iter()
            .map(|(n, _)| n)
            .filter(|n| matches!(n.subject, Subject::CouponExpiring { .. }))
            .collect();
        assert_eq!(reminders.len(), 3);
        assert!(reminders.iter().all(|n| n.purpose == Purpose::Marketing));
        assert_eq!(
            reminders[0].text("王芳", &config.texts),
            format!(
                "王芳您好，您的满100减20将于{}到期，请尽快使用。",
                DAY + TimeDelta::days(29)
            )
        );
    }

    #[test]
    fn a_member_born_today_gets_one_greeting_a_year() {
        let (storage, ingest, members) = chain(2);
        ingest.flush().unwrap();
        drop(ingest);
        let mut record = storage.member(&members[0].0).unwrap().unwrap();
        record.profile.birthday = NaiveDate::from_ymd_opt(1990, DAY.month(), DAY.day());
        let s001 = StoreId::parse("S001").unwrap();
        let (_, tip, status) = storage
            .stores()
            .unwrap()
            .into_iter()
            .find(|(s, _, _)| *s == s001)
            .unwrap();
        storage
            .append(Append {
                store: &s001,
                entries: Vec::new(),
                tip,
                status,
                feed: Vec::new(),
                feed_len: storage.feed_len().unwrap(),
                members: vec![record],
                phones: Vec::new(),
                wallets: Vec::new(),
                views: Vec::new(),
                keys: Vec::new(),
                erased: Vec::new(),
                notices: Vec::new(),
            })
            .unwrap();
        let config = NotifyConfig::default();
        let queued = queue_day(&*storage, &config, DAY, 0).unwrap();
        assert_eq!(queued.birthdays, 1);
        assert_eq!(queue_day(&*storage, &config, DAY, 0).unwrap().birthdays, 0);
        let (greeting, _) = &storage.latest_notices(10).unwrap()[0];
        assert_eq!(greeting.member, members[0].0);
        assert_eq!(greeting.id, format!("birthday-{}-2026", members[0].0));
        assert_eq!(greeting.text("李雷", &config.texts), "李雷，祝您生日快乐！");
    }
}
