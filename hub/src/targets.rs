//! The members a campaign gave coupons, read back from headquarters' log through the runs of it
//! the campaign's view files (`protocol::project::marketing::keys::targeted`): the campaign
//! report's targeted members and the reminder before their coupons run out.

use chrono::NaiveDate;
use protocol::entry::{Entry, Payload};
use protocol::ids::{MemberId, StoreId};
use protocol::project::marketing::{Targets, keys};
use protocol::wallet::WalletEvent;

use crate::storage::HubStore;

/// Entries read from the log at a time.
const PAGE: u64 = 10_000;

/// Hands `each` every member campaign `campaign` gave a coupon good until `to` (until any day
/// when `None`), with the period of that coupon, in the log's order (a member given a booklet
/// comes once per coupon).
pub fn targeted(
    storage: &dyn HubStore,
    campaign: &str,
    to: Option<NaiveDate>,
    mut each: impl FnMut(MemberId, &Targets),
) -> Result<(), String> {
    let prefix = match to {
        Some(to) => keys::targeted_until(campaign, to),
        None => keys::targeted_prefix(campaign),
    };
    let hq = StoreId::hq();
    for (key, value) in storage
        .views(&prefix, usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let damaged = |why: &dyn std::fmt::Display| {
            format!(
                "campaign {campaign}'s run {:?}: {why}",
                String::from_utf8_lossy(&key)
            )
        };
        let run: Targets = postcard::from_bytes(&value).map_err(|e| damaged(&e))?;
        let mut seq = run.first;
        while seq <= run.last {
            let n = (run.last - seq + 1).min(PAGE);
            let page = storage
                .entries(&hq, seq, n as usize)
                .map_err(|e| e.to_string())?;
            if page.len() as u64 != n {
                return Err(damaged(&format!(
                    "headquarters' log ends before {}",
                    run.last
                )));
            }
            for bytes in page {
                let entry = Entry::decode(&bytes).map_err(|e| damaged(&e))?;
                match &entry.payload {
                    Payload::Wallet {
                        member_id,
                        event: WalletEvent::CampaignCoupon { campaign: c, .. },
                        ..
                    } if c == campaign && entry.seq == seq => each(*member_id, &run),
                    _ => return Err(damaged(&format!("entry {seq} is not one of its coupons"))),
                }
                seq += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use protocol::StaffId;

    use super::*;
    use crate::ingest::marketing::tests::{DAY, chain, publish};

    #[test]
    fn a_campaigns_members_are_read_back_from_its_run_of_the_log() {
        // More members than one append's coupons: the run goes on across appends.
        let (storage, mut ingest, members) = chain(2_500);
        publish(&mut ingest, None, 1, &["C1", "C2"]);
        let by = StaffId::system();
        ingest
            .run_campaign("C1", DAY, &members[..2_100], &by)
            .unwrap();
        ingest
            .run_campaign("C2", DAY, &members[2_000..], &by)
            .unwrap();
        let last = DAY + chrono::TimeDelta::days(29);
        let read = |campaign, to| -> Vec<MemberId> {
            let mut members = Vec::new();
            targeted(&*storage, campaign, to, |m, run| {
                assert_eq!((run.from, run.to), (DAY, last));
                members.push(m);
            })
            .unwrap();
            members
        };
        let ids = |from: usize, to: usize| -> Vec<MemberId> {
            members[from..to].iter().map(|(m, _)| *m).collect()
        };
        assert_eq!(read("C1", None), ids(0, 2_100));
        assert_eq!(read("C1", Some(last)), ids(0, 2_100));
        assert_eq!(read("C1", Some(DAY)), Vec::<MemberId>::new());
        // Both campaigns give T1's coupons, one a member: C2 skipped those C1 gave one.
        assert_eq!(read("C2", None), ids(2_100, 2_500));
        assert_eq!(
            storage
                .views(&keys::targeted_prefix("C1"), 10)
                .unwrap()
                .len(),
            1,
            "one run"
        );
    }
}
