//! 营销 at headquarters: publishing templates, segments and campaigns, and running a campaign
//! over the members its segment found (`crate::segments`): one coupon per (campaign, run,
//! member), written in headquarters' log with its right moved to the member's home store.

use protocol::campaign::{self, MarketingChange, Run};
use protocol::project::marketing;

use super::*;

/// Coupons written per append: one atomic batch of entries and the views they change.
const ISSUE_CHUNK: usize = 1_000;

/// Why a marketing change or a run was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MarketingRefused {
    #[error(transparent)]
    Invalid(#[from] campaign::MarketingError),
    #[error("no {kind} {id}")]
    Unknown { kind: &'static str, id: String },
    #[error("{kind} {id} is withdrawn")]
    Withdrawn { kind: &'static str, id: String },
    #[error("template {template}'s coupons would be good only until {to}, before today")]
    Expired {
        template: String,
        to: chrono::NaiveDate,
    },
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<IngestError> for MarketingRefused {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooLarge(_) => {
                MarketingRefused::Invalid(campaign::MarketingError::new("size", e.to_string()))
            }
            e => MarketingRefused::Storage(e.to_string()),
        }
    }
}

impl From<protocol::wallet::WalletError> for MarketingRefused {
    fn from(e: protocol::wallet::WalletError) -> Self {
        MarketingRefused::Storage(e.to_string())
    }
}

fn unknown(kind: &'static str, id: &str) -> MarketingRefused {
    MarketingRefused::Unknown {
        kind,
        id: id.to_owned(),
    }
}

impl Ingest {
    /// Publishes a template, segment or campaign (a campaign must name a template and a
    /// segment that exist) as one entry of headquarters' log.
    pub fn publish_marketing(
        &mut self,
        change: MarketingChange,
        by: &StaffId,
    ) -> Result<(), MarketingRefused> {
        let views = HubViews::reader(&*self.storage);
        let storage = |e: String| MarketingRefused::Storage(e);
        change.check()?;
        if let MarketingChange::Campaign(c) = &change {
            if marketing::template(&views, &c.template)
                .map_err(storage)?
                .is_none()
            {
                return Err(unknown("template", &c.template));
            }
            if marketing::segment(&views, &c.segment)
                .map_err(storage)?
                .is_none()
            {
                return Err(unknown("segment", &c.segment));
            }
        }
        let tip = self.tip(&StoreId::hq());
        let tx = TxId::derived(&["marketing", &tip.next_seq.to_string()]);
        self.write_hq_as(tx, Payload::Marketing { change }, by.clone())?;
        Ok(())
    }

    /// Runs campaign `id` as of `on` over `targets` in one go: `issue_campaign`, then
    /// `record_run`.
    pub fn run_campaign(
        &mut self,
        id: &str,
        on: chrono::NaiveDate,
        targets: &[(MemberId, StoreId)],
        by: &StaffId,
    ) -> Result<Run, MarketingRefused> {
        let run = self.issue_campaign(id, (on, 1), targets, by)?;
        self.record_run(&run, by)?;
        Ok(run)
    }

    /// Records what a run did, in all its parts.
    pub fn record_run(&mut self, run: &Run, by: &StaffId) -> Result<(), MarketingRefused> {
        let tx = TxId::derived(&[
            "campaign-run",
            &run.campaign,
            &run.run,
            &self.tip(&StoreId::hq()).next_seq.to_string(),
        ]);
        let change = MarketingChange::Run(run.clone());
        self.write_hq_as(tx, Payload::Marketing { change }, by.clone())?;
        Ok(())
    }

    /// Issues campaign `id` as of `on` (the day its segment was evaluated: the run's name and
    /// the start of its coupons' validity) to `targets` (each member with their home store):
    /// gives each the run's `coupons` coupons (券包: 1 to the template's per-member limit)
    /// unless they hold them already, are at the template's per-member limit, or the quota
    /// has run out. Running it again, or after a crash midway, gives nobody a coupon twice:
    /// each is named after (campaign, run, member, its number). A large run comes in parts,
    /// so that stores' pushes are taken between them. The run's counts are of coupons.
    pub fn issue_campaign(
        &mut self,
        id: &str,
        (on, coupons): (chrono::NaiveDate, u32),
        targets: &[(MemberId, StoreId)],
        by: &StaffId,
    ) -> Result<Run, MarketingRefused> {
        let storage = |e: String| MarketingRefused::Storage(e);
        let (c, template, issued) = {
            let views = HubViews::reader(&*self.storage);
            let c = marketing::campaign(&views, id)
                .map_err(storage)?
                .ok_or_else(|| unknown("campaign", id))?
                .item;
            let template = marketing::template(&views, &c.template)
                .map_err(storage)?
                .ok_or_else(|| unknown("template", &c.template))?
                .item;
            let issued = marketing::template_issued(&views, &template.id).map_err(storage)?;
            (c, template, issued)
        };
        if c.withdrawn {
            return Err(MarketingRefused::Withdrawn {
                kind: "campaign",
                id: c.id,
            });
        }
        if template.withdrawn {
            return Err(MarketingRefused::Withdrawn {
                kind: "template",
                id: template.id,
            });
        }
        if !(1..=template.per_member).contains(&coupons) {
            return Err(MarketingRefused::Invalid(
                protocol::campaign::MarketingError::new(
                    "coupons",
                    format!(
                        "1 to the template's per-member limit ({}) coupons a member",
                        template.per_member
                    ),
                ),
            ));
        }
        let (from, to) = template.validity.period(on);
        if to < on {
            return Err(MarketingRefused::Expired {
                template: template.id,
                to,
            });
        }
        let run = c.run_on(on);
        let mut left = template.quota.map(|q| q.saturating_sub(issued));
        let mut outcome = Run {
            campaign: c.id.clone(),
            run: run.clone(),
            targeted: targets.len() as u64,
            issued: 0,
            already: 0,
            over_limit: 0,
            over_quota: 0,
        };
        let hq = StoreId::hq();
        let mut seen = BTreeSet::new();
        let targets: Vec<&(MemberId, StoreId)> =
            targets.iter().filter(|(m, _)| seen.insert(*m)).collect();
        outcome.targeted = targets.len() as u64;
        let per_chunk = (ISSUE_CHUNK / coupons as usize).max(1);
        for chunk in targets.chunks(per_chunk) {
            let mut writes = Vec::with_capacity(chunk.len() * coupons as usize);
            let mut read = BTreeMap::new();
            for (member, home) in chunk.iter().copied() {
                let mut wallet = self.wallet(member)?;
                let before = wallet.clone();
                let writing = writes.len();
                let mut held = wallet
                    .coupons
                    .values()
                    .filter(|d| d.campaign.as_ref().is_some_and(|(_, t)| *t == template.id))
                    .count();
                for n in 1..=coupons {
                    let coupon = campaign::booklet_coupon_id(&c.id, &run, n, member);
                    let legacy = campaign::legacy_booklet_coupon_id(&c.id, &run, n, member);
                    if wallet.coupons.contains_key(&coupon) || wallet.coupons.contains_key(&legacy)
                    {
                        outcome.already += 1;
                        continue;
                    }
                    if held >= template.per_member as usize {
                        outcome.over_limit += 1;
                        continue;
                    }
                    if left == Some(0) {
                        outcome.over_quota += 1;
                        continue;
                    }
                    let mut ops = wallet.issue_coupon(&hq, &coupon, (from, to))?;
                    // At the member's home store, so it is redeemable there offline too; not
                    // at a store on hold or fenced (its rights are being taken back): the
                    // coupon stays with headquarters, redeemable at any store online.
                    if *home != hq
                        && self.tips.contains_key(home)
                        && !self.fences.contains_key(home)
                    {
                        let counter = Counter::Uses {
                            card: coupon.clone(),
                        };
                        ops.push(wallet.move_rights(&hq, home, &counter, 1)?);
                    }
                    let event = WalletEvent::CampaignCoupon {
                        coupon: coupon.clone(),
                        campaign: c.id.clone(),
                        template: template.id.clone(),
                        name: template.name.clone(),
                        offer: template.offer.clone(),
                        scope: template.scope.clone(),
                        stacks: template.stacks,
                        from,
                        to,
                    };
                    let member_key = member.to_string();
                    let number = n.to_string();
                    let mut parts = vec!["campaign", &c.id, &run, &member_key];
                    if n > 1 {
                        parts.push(&number);
                    }
                    writes.push((
                        TxId::derived(&parts),
                        Payload::Wallet {
                            member_id: *member,
                            event,
                            ops,
                        },
                    ));
                    held += 1;
                    left = left.map(|n| n - 1);
                    outcome.issued += 1;
                }
                if writes.len() > writing {
                    read.insert(*member, before);
                }
            }
            self.write_hq_with(writes, (Vec::new(), read), by)?;
        }
        Ok(outcome)
    }

    /// Writes entries of headquarters' own log as one batch (one append), with the keys of the
    /// members the batch registers.
    pub(super) fn write_hq_keyed(
        &mut self,
        writes: Vec<(TxId, Payload)>,
        keys: Vec<(MemberId, MemberKey)>,
        staff: &StaffId,
    ) -> Result<(), IngestError> {
        self.write_hq_with(writes, (keys, BTreeMap::new()), staff)
    }

    /// Writes entries of headquarters' own log as one batch, with the keys of the members it
    /// registers and the wallets of its members as they stand before it (read already by the
    /// caller: not read again).
    fn write_hq_with(
        &mut self,
        writes: Vec<(TxId, Payload)>,
        (keys, wallets): (
            Vec<(MemberId, MemberKey)>,
            BTreeMap<MemberId, protocol::wallet::Wallet>,
        ),
        staff: &StaffId,
    ) -> Result<(), IngestError> {
        if writes.is_empty() {
            return Ok(());
        }
        let hq = StoreId::hq();
        let mut tip = self.tip(&hq);
        let now = (self.now_ms)();
        let business_date = self.calendar.business_date(now);
        let mut sealed = Vec::with_capacity(writes.len());
        for (tx, payload) in writes {
            let entry = Entry {
                origin: hq.clone(),
                seq: tip.next_seq,
                hlc: self.hq_clock.tick(now),
                business_date,
                staff: staff.clone(),
                tx,
                prev_hash: tip.hash,
                payload,
            };
            let s = Sealed::new(entry);
            if s.bytes.len() > protocol::entry::ENTRY_BYTES_MAX {
                return Err(IngestError::TooLarge(s.bytes.len()));
            }
            tip = tip.extend_sealed(&hq, &s)?;
            sealed.push(s);
        }
        self.ingest_read(&hq, sealed, tip.next_seq - 1, keys, wallets)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::campaign::{Campaign, CouponTemplate, Schedule, Validity};
    use protocol::entry::ChainTip;
    use protocol::segment::{Condition, Segment};

    /// The day the tests' campaigns run.
    pub(crate) const DAY: chrono::NaiveDate = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();

    fn store() -> StoreId {
        StoreId::parse("S001").unwrap()
    }

    /// A hub whose store S001 registered `n` members; their ids with S001.
    pub(crate) fn chain(n: usize) -> (Arc<MemHubStore>, Ingest, Vec<(MemberId, StoreId)>) {
        let storage = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_796_436_000_000)).unwrap();
        let mut tip = ChainTip::GENESIS;
        let mut batch = Vec::new();
        let mut members = Vec::new();
        for i in 0..n {
            let entry = super::super::tests::registration(&store(), tip, &format!("138{i:08}"));
            if let Payload::MemberRegistered { member_id, .. } = &entry.payload {
                members.push((*member_id, store()));
            }
            tip = tip.extend(&store(), &entry).unwrap();
            batch.push(Sealed::new(entry));
        }
        let last = tip.next_seq - 1;
        ingest.ingest(&store(), batch, last).unwrap();
        (storage, ingest, members)
    }

    pub(crate) fn publish(
        ingest: &mut Ingest,
        quota: Option<u64>,
        per_member: u32,
        campaigns: &[&str],
    ) {
        let by = StaffId::system();
        let template = CouponTemplate {
            id: "T1".into(),
            name: "满100减20".into(),
            offer: protocol::pricing::Coupon::AmountOff {
                threshold: protocol::Fen(10_000),
                off: protocol::Fen(2_000),
            },
            validity: Validity::Days { days: 30 },
            scope: Default::default(),
            quota,
            per_member,
            stacks: Some(false),
            withdrawn: false,
        };
        ingest
            .publish_marketing(MarketingChange::Template(template), &by)
            .unwrap();
        let segment = Segment {
            id: "home".into(),
            name: "S001 的会员".into(),
            conditions: vec![Condition::HomeStore {
                any: [store()].into(),
            }],
        };
        ingest
            .publish_marketing(MarketingChange::Segment(segment), &by)
            .unwrap();
        for id in campaigns {
            let campaign = Campaign {
                id: (*id).into(),
                name: "回馈".into(),
                template: "T1".into(),
                segment: "home".into(),
                schedule: Schedule::Once,
                message: "{name}，送您一张券".into(),
                withdrawn: false,
            };
            ingest
                .publish_marketing(MarketingChange::Campaign(campaign), &by)
                .unwrap();
        }
    }

    /// The campaign coupons `member` holds, and the units of each held at S001.
    fn coupons(ingest: &Ingest, member: &MemberId) -> Vec<u64> {
        let wallet = ingest.wallet(member).unwrap();
        wallet
            .coupons
            .iter()
            .filter(|(_, d)| d.campaign.is_some())
            .map(|(id, _)| {
                let counter = Counter::Uses { card: id.clone() };
                wallet
                    .counters
                    .get(&counter)
                    .map_or(0, |r| r.held(&store()))
            })
            .collect()
    }

    #[test]
    fn a_campaign_run_twice_gives_each_member_one_coupon_held_at_their_home_store() {
        let (_, mut ingest, members) = chain(3);
        publish(&mut ingest, None, 1, &["C1"]);
        let by = StaffId::system();
        let first = ingest.run_campaign("C1", DAY, &members, &by).unwrap();
        assert_eq!((first.targeted, first.issued, first.already), (3, 3, 0));
        let again = ingest.run_campaign("C1", DAY, &members, &by).unwrap();
        assert_eq!((again.issued, again.already), (0, 3));
        for (member, _) in &members {
            assert_eq!(coupons(&ingest, member), vec![1], "{member}");
        }
        let views = HubViews::reader(&*ingest.storage);
        assert_eq!(marketing::template_issued(&views, "T1").unwrap(), 3);
        assert_eq!(
            marketing::run(&views, "C1", "once")
                .unwrap()
                .unwrap()
                .already,
            3
        );
    }

    #[test]
    fn a_template_too_large_for_an_entry_is_refused_and_nothing_is_written() {
        let (_, mut ingest, _) = chain(1);
        let tip = ingest.tip(&StoreId::hq());
        let categories = (0..2_000)
            .map(|i| format!("品类-{i:04}-饮料零食"))
            .collect();
        let template = CouponTemplate {
            id: "BIG".into(),
            name: "大券".into(),
            offer: protocol::pricing::Coupon::Voucher {
                value: protocol::Fen(500),
                threshold: protocol::Fen(0),
            },
            validity: Validity::Days { days: 7 },
            scope: protocol::pricing::CouponScope {
                skus: Default::default(),
                categories,
            },
            quota: None,
            per_member: 1,
            stacks: None,
            withdrawn: false,
        };
        let refused =
            ingest.publish_marketing(MarketingChange::Template(template), &StaffId::system());
        assert!(
            matches!(&refused, Err(MarketingRefused::Invalid(e)) if e.to_string().contains("bytes")),
            "{refused:?}"
        );
        assert_eq!(ingest.tip(&StoreId::hq()), tip);
    }

    #[test]
    fn a_coupon_for_a_member_of_a_fenced_store_stays_with_headquarters() {
        let (_, mut ingest, members) = chain(1);
        publish(&mut ingest, None, 1, &["C1"]);
        let fence = crate::storage::Fence::Fenced {
            at_seq: 1,
            since_ms: 0,
            by: "hq-1".into(),
            reason: "quiet".into(),
        };
        ingest.set_fence(&store(), Some(fence)).unwrap();
        let run = ingest
            .run_campaign("C1", DAY, &members, &StaffId::system())
            .unwrap();
        assert_eq!(run.issued, 1);
        assert_eq!(
            coupons(&ingest, &members[0].0),
            vec![0],
            "none held at S001"
        );
    }

    #[test]
    fn a_campaign_over_its_quota_issues_what_is_left_and_counts_the_rest() {
        let (_, mut ingest, members) = chain(3);
        publish(&mut ingest, Some(2), 1, &["C1"]);
        let run = ingest
            .run_campaign("C1", DAY, &members, &StaffId::system())
            .unwrap();
        assert_eq!((run.issued, run.over_quota), (2, 1));
        let holding = members
            .iter()
            .filter(|(m, _)| !coupons(&ingest, m).is_empty())
            .count();
        assert_eq!(holding, 2);
    }

    #[test]
    fn a_second_campaign_of_a_template_stops_at_the_per_member_limit() {
        let (_, mut ingest, members) = chain(2);
        publish(&mut ingest, None, 1, &["C1", "C2"]);
        let by = StaffId::system();
        ingest.run_campaign("C1", DAY, &members, &by).unwrap();
        let second = ingest.run_campaign("C2", DAY, &members, &by).unwrap();
        assert_eq!((second.issued, second.over_limit), (0, 2));
    }

    #[test]
    fn a_campaign_naming_an_unknown_template_is_refused_and_nothing_is_written() {
        let (_, mut ingest, _) = chain(1);
        let before = ingest.tip(&StoreId::hq());
        let campaign = Campaign {
            id: "C9".into(),
            name: "x".into(),
            template: "nope".into(),
            segment: "nope".into(),
            schedule: Schedule::Once,
            message: String::new(),
            withdrawn: false,
        };
        let refused =
            ingest.publish_marketing(MarketingChange::Campaign(campaign), &StaffId::system());
        assert!(matches!(
            refused,
            Err(MarketingRefused::Unknown {
                kind: "template",
                ..
            })
        ));
        assert_eq!(ingest.tip(&StoreId::hq()), before);
        assert!(matches!(
            ingest.run_campaign("C9", DAY, &[], &StaffId::system()),
            Err(MarketingRefused::Unknown { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// A run cut off after any number of members (a crash between appends: each append is
        /// atomic) and run again on a hub opened afresh gives every member exactly one coupon.
        #[test]
        fn issuing_cut_off_anywhere_and_run_again_gives_each_member_exactly_one_coupon(
            n in 1usize..12,
            cut in 0usize..12,
        ) {
            let (storage, mut ingest, members) = chain(n);
            publish(&mut ingest, None, 1, &["C1"]);
            let by = StaffId::system();
            let cut = cut.min(n);
            ingest.run_campaign("C1", DAY, &members[..cut], &by).unwrap();
            drop(ingest);
            let mut ingest = Ingest::open(storage, Box::new(|| 1_796_436_000_000)).unwrap();
            let run = ingest.run_campaign("C1", DAY, &members, &by).unwrap();
            proptest::prop_assert_eq!((run.issued, run.already), ((n - cut) as u64, cut as u64));
            for (member, _) in &members {
                proptest::prop_assert_eq!(coupons(&ingest, member), vec![1]);
            }
            let views = HubViews::reader(&*ingest.storage);
            proptest::prop_assert_eq!(marketing::template_issued(&views, "T1").unwrap(), n as u64);
        }

        /// A booklet (券包) run cut off after any number of members, even with fewer coupons
        /// each, and run again on a hub opened afresh gives every member each coupon once.
        #[test]
        fn a_booklet_cut_off_anywhere_and_run_again_gives_each_member_each_coupon_once(
            n in 1usize..8,
            cut in 0usize..8,
            first in 1u32..=3,
        ) {
            let (storage, mut ingest, members) = chain(n);
            publish(&mut ingest, None, 3, &["C1"]);
            let by = StaffId::system();
            let cut = cut.min(n);
            ingest.issue_campaign("C1", (DAY, first), &members[..cut], &by).unwrap();
            drop(ingest);
            let mut ingest = Ingest::open(storage, Box::new(|| 1_796_436_000_000)).unwrap();
            let run = ingest.issue_campaign("C1", (DAY, 3), &members, &by).unwrap();
            let before = u64::from(first) * cut as u64;
            proptest::prop_assert_eq!((run.issued, run.already), (3 * n as u64 - before, before));
            for (member, _) in &members {
                proptest::prop_assert_eq!(coupons(&ingest, member), vec![1, 1, 1]);
            }
            proptest::prop_assert!(matches!(
                ingest.issue_campaign("C1", (DAY, 4), &members, &by),
                Err(MarketingRefused::Invalid(_))
            ));
        }
    }
}
