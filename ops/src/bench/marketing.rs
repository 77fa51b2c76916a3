//! `ops bench marketing`: headquarters' marketing at size, on a hub's sled storage.
//!
//! The directory is filled straight through `HubStore::append` with `members` members, each a
//! sealed record under a key of its own holding a real profile (one real profile document's
//! bytes are reused for all: the evaluation reads only the profile) and 0 to 6 days of
//! purchases in the last year at one of 20 stores, as report cells. Then:
//! - a dormant segment (3 purchase days in the last 180, none in the last 60) is evaluated,
//!   next to the floor of reading the member cells of 180 days (it reads the activity records of
//!   members whose last purchase can make them dormant, then those members' records); and a segment on the profile alone (a birthday within 7 days),
//!   next to reading every member record;
//! - a campaign is issued to `coupons` of them end to end and durable (`Ingest::run_campaign`
//!   then the flush), next to the hub taking the same number of plain store entries (quick
//!   sales, in batches of 1,000) and flushing them.

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use hub::ingest::Ingest;
use hub::storage::{Append, HubStore, MemberRecord, SledHubStore, StoreStatus};
use protocol::campaign::{Campaign, CouponTemplate, MarketingChange, Schedule, Validity};
use protocol::entry::{ChainTip, Sealed};
use protocol::member::{Gender, MemberDoc, Profile};
use protocol::pricing::Coupon;
use protocol::reports::{SalesCell, keys};
use protocol::seal::MemberKey;
use protocol::segment::{Condition, Segment};
use protocol::tiers::{Basis, Tier, TierTable};
use protocol::{Fen, MemberId, Phone, StaffId, StoreId};

use super::{Figure, Scratch, machine, ratio};

/// 2026-12-05 10:00 in Shanghai.
const NOW_MS: u64 = 1_796_436_000_000;
const STORES: usize = 20;
const CHUNK: usize = 10_000;

pub(super) fn store(i: usize) -> StoreId {
    StoreId::parse(&format!("S{:03}", i % STORES + 1)).unwrap_or_else(|_| unreachable!())
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 5).unwrap_or_default()
}

/// A few scrambled bits of `n` (a member's purchase days are spread, not in step).
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 32
}

pub(super) fn profile(i: usize, phone: Phone) -> Profile {
    Profile {
        name: format!("会员{i}"),
        phone,
        card_no: None,
        birthday: NaiveDate::from_ymd_opt(
            1980 + (i % 30) as i32,
            1 + (i % 12) as u32,
            1 + (i / 12 % 28) as u32,
        ),
        gender: Gender::Unspecified,
        tags: Default::default(),
        notes: String::new(),
        tier: "standard".into(),
        custom: Default::default(),
        home_store: store(i),
        join_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
        referrer: None,
        marketing_consent: !i.is_multiple_of(3),
        card_status: Default::default(),
        former_cards: Default::default(),
    }
}

/// One quick sale entry of `store`'s log after `tip`.
fn sale(store: &StoreId, tip: ChainTip) -> Sealed {
    Sealed::new(super::hub::quick_sale(store, tip, NOW_MS))
}

/// Writes `members` members and their purchase cells; answers their ids with home stores.
fn fill(
    storage: &dyn HubStore,
    ingest: &Ingest,
    members: usize,
) -> anyhow::Result<Vec<(MemberId, StoreId)>> {
    let first = profile(0, Phone::parse("13000000000")?);
    let (mut doc, _) = MemberDoc::create(&store(0), NOW_MS as i64, &first)?;
    let doc = doc.save();
    let anchor = store(0);
    let mut ids = Vec::with_capacity(members);
    let mut start = 0;
    while start < members {
        let end = (start + CHUNK).min(members);
        let mut records = Vec::with_capacity(end - start);
        let mut member_keys = Vec::with_capacity(end - start);
        // The member cells, and the activity records the hub keeps from them.
        let mut views = std::collections::BTreeMap::new();
        for i in start..end {
            let id = MemberId::mint(NOW_MS - 400 * 86_400_000, i as u128);
            let phone = Phone::parse(&format!("13{:09}", i))?;
            records.push(MemberRecord {
                member_id: id,
                doc: doc.clone(),
                profile: profile(i, phone),
            });
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&mix(i as u64).to_le_bytes());
            key[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            member_keys.push((id, MemberKey::from_bytes(key)));
            for j in 0..mix(i as u64 + 7) % 7 {
                let back = mix((i as u64) << 3 | j) % 365;
                let date = today() - TimeDelta::days(back as i64);
                let cell = SalesCell {
                    sales: 1,
                    member_sales: 1,
                    gross: 5_000,
                    net: 5_000,
                    ..SalesCell::default()
                };
                let at = store(i + j as usize);
                views.insert(keys::member(date, &at, &id), postcard::to_stdvec(&cell)?);
                hub::activity::note(&mut views, &id, date, &at).map_err(anyhow::Error::msg)?;
            }
            ids.push((id, store(i)));
        }
        let tip = ingest.tip(&anchor);
        storage.append(Append {
            store: &anchor,
            entries: Vec::new(),
            tip,
            status: StoreStatus {
                acked_seq: tip.next_seq - 1,
                log_len: tip.next_seq - 1,
                ..StoreStatus::default()
            },
            feed: Vec::new(),
            feed_len: ingest.feed_len(),
            members: records,
            phones: Vec::new(),
            wallets: Vec::new(),
            views: views.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            keys: member_keys,
            erased: Vec::new(),
            notices: Vec::new(),
        })?;
        start = end;
    }
    storage.flush()?;
    Ok(ids)
}

pub fn run(members: usize, coupons: usize) -> anyhow::Result<()> {
    anyhow::ensure!(coupons <= members, "--coupons must not be above --members");
    println!("machine: {}", machine());
    let dir = Scratch::new("marketing")?;
    let storage: Arc<SledHubStore> = Arc::new(SledHubStore::open(&dir.0.join("hub"))?);
    let shared: Arc<dyn HubStore> = storage.clone();
    let mut ingest = Ingest::open(shared.clone(), Box::new(|| NOW_MS))?;
    // Every store known to headquarters (a coupon's use moves to the member's home store).
    for i in 0..STORES {
        let s = store(i);
        ingest.ingest(&s, vec![sale(&s, ChainTip::GENESIS)], 1)?;
    }
    let filling = Instant::now();
    let targets = fill(&*shared, &ingest, members)?;
    println!(
        "filled {members} members with their purchases in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    // The floors: what a dormant segment must read (the member cells of its window), and what
    // a segment on the profile alone reads (every member record).
    let floor = Instant::now();
    let mut cells = 0;
    for back in 0..180 {
        let prefix = keys::member_prefix(today() - TimeDelta::days(back));
        cells += shared.views(&prefix, usize::MAX)?.len();
    }
    let floor = floor.elapsed();
    let reading = Instant::now();
    let records = shared.members()?.len();
    let reading = reading.elapsed();
    // The campaign report's head count: the directory's keys, no record opened.
    let counting = Instant::now();
    let counted = shared.member_count()?;
    let counting = counting.elapsed();
    anyhow::ensure!(
        counted == records as u64,
        "{counted} counted, {records} read"
    );
    let birthdays = Segment {
        id: "birthday".into(),
        name: "七天内生日".into(),
        conditions: vec![Condition::Birthday { within_days: 7 }, Condition::Consent],
    };
    // Twice: the first reads what no step before it read (cold), the second what a hub that
    // has run for a while holds in its cache.
    let mut by_profile = Vec::new();
    let mut celebrating = 0;
    for _ in 0..2 {
        let started = Instant::now();
        celebrating = hub::segments::evaluate(&*shared, &birthdays, today())
            .map_err(anyhow::Error::msg)?
            .len();
        by_profile.push(started.elapsed());
    }
    // 会员等级评定 (dry run): every member's net spend over a year, and the moves it gives.
    let table = TierTable {
        basis: Basis::Spend,
        period_days: 365,
        tiers: [("standard", 0), ("银卡", 10_000), ("金卡", 30_000)]
            .into_iter()
            .map(|(name, threshold)| Tier {
                name: name.into(),
                threshold,
                percent_off: rust_decimal::Decimal::ZERO,
                points_multiplier: rust_decimal::Decimal::ONE,
                may_go_down: true,
            })
            .collect(),
    };
    table.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("reviewing the tiers");
    let reviewing = Instant::now();
    let review = hub::tiers::review(&*shared, &table, today()).map_err(anyhow::Error::msg)?;
    let reviewed = reviewing.elapsed();
    let dormant = Segment {
        id: "dormant".into(),
        name: "沉睡会员".into(),
        conditions: vec![Condition::Dormant {
            visits: 3,
            window_days: 180,
            quiet_days: 60,
        }],
    };
    println!("evaluating the dormant segment");
    let evaluating = Instant::now();
    let found = hub::segments::evaluate(&*shared, &dormant, today()).map_err(anyhow::Error::msg)?;
    let evaluated = evaluating.elapsed();

    // Issuing, end to end and durable.
    let by = StaffId::system();
    let template = CouponTemplate {
        id: "T1".into(),
        name: "满100减20".into(),
        offer: Coupon::AmountOff {
            threshold: Fen(10_000),
            off: Fen(2_000),
        },
        validity: Validity::Days { days: 30 },
        scope: Default::default(),
        quota: None,
        per_member: 1,
        stacks: None,
        withdrawn: false,
    };
    let everyone = Segment {
        id: "all".into(),
        name: "全部".into(),
        conditions: Vec::new(),
    };
    let campaign = Campaign {
        id: "C1".into(),
        name: "回店礼".into(),
        template: "T1".into(),
        segment: "all".into(),
        schedule: Schedule::Once,
        message: String::new(),
        withdrawn: false,
    };
    for change in [
        MarketingChange::Template(template),
        MarketingChange::Segment(everyone),
        MarketingChange::Campaign(campaign),
    ] {
        ingest.publish_marketing(change, &by)?;
    }
    ingest.flush()?;
    println!("issuing the campaign");
    let issuing = Instant::now();
    let run = ingest.run_campaign("C1", today(), &targets[..coupons], &by)?;
    ingest.flush()?;
    let issued = issuing.elapsed();
    anyhow::ensure!(run.issued == coupons as u64, "issued {run:?}");
    // Whom it targeted, read back from its run of headquarters' log: what the campaign's
    // report and the reminder before its coupons run out read.
    let reading_back = Instant::now();
    let mut targeted = std::collections::HashSet::new();
    hub::targets::targeted(&*shared, "C1", None, |member, _| {
        targeted.insert(member);
    })
    .map_err(anyhow::Error::msg)?;
    let read_back = reading_back.elapsed();
    anyhow::ensure!(targeted.len() == coupons, "{} read back", targeted.len());

    // The baseline: as many plain entries from one store, in batches of 1,000, flushed.
    let plain = StoreId::parse("S999")?;
    let writing = Instant::now();
    let mut tip = ChainTip::GENESIS;
    let mut left = coupons;
    while left > 0 {
        let n = left.min(1_000);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let s = sale(&plain, tip);
            tip = tip.extend_sealed(&plain, &s)?;
            batch.push(s);
        }
        ingest.ingest(&plain, batch, tip.next_seq - 1)?;
        left -= n;
    }
    ingest.flush()?;
    let written = writing.elapsed();

    let per_second = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64();
    let (ours, base) = (per_second(coupons, issued), per_second(coupons, written));
    println!("\n| step | members | time | what |\n|---|---:|---:|---|");
    println!(
        "| read 180 days of member cells (the dormant segment's floor) | {records} | {:.2} s | {cells} cells |",
        floor.as_secs_f64()
    );
    println!(
        "| evaluate the dormant segment (3 purchase days in 180, none in the last 60) | {records} | {:.2} s | {} members found |",
        evaluated.as_secs_f64(),
        found.len()
    );
    println!(
        "| read every member record (a profile segment's floor) | {records} | {:.2} s | |",
        reading.as_secs_f64()
    );
    println!(
        "| count the members (the campaign report's head count) | {records} | {:.2} s | {counted} |",
        counting.as_secs_f64()
    );
    println!(
        "| evaluate a profile segment (birthday within 7 days, consent) | {records} | {:.2} s | {celebrating} members found |",
        by_profile[0].as_secs_f64()
    );
    println!(
        "| the same again (what it read now cached) | {records} | {:.2} s | {celebrating} members found |",
        by_profile[1].as_secs_f64()
    );
    println!(
        "| review the tiers, dry run (a year's spend, every member) | {records} | {:.2} s | {} checked, {} up, {} down |",
        reviewed.as_secs_f64(),
        review.checked,
        review.up,
        review.down
    );
    println!(
        "| issue the campaign, durable | {coupons} | {:.2} s | {ours:.0} coupons/s |",
        issued.as_secs_f64()
    );
    println!(
        "| read its targets back (its report's and reminder's read) | {coupons} | {:.2} s | {} members |",
        read_back.as_secs_f64(),
        targeted.len()
    );
    println!(
        "| ingest as many plain store entries, durable | {coupons} | {:.2} s | {base:.0} entries/s |",
        written.as_secs_f64()
    );
    Figure::new(
        format!("dormant segment over {members} members"),
        format!("{:.2} s", evaluated.as_secs_f64()),
    )
    .baseline(
        format!(
            "{:.2} s reading its window's member cells",
            floor.as_secs_f64()
        ),
        ratio(evaluated.as_secs_f64(), floor.as_secs_f64()),
    )
    .goal(
        "≤ 2 s at 1,000,000 members".to_owned(),
        members >= 1_000_000 && evaluated.as_secs_f64() <= 2.0,
    )
    .record()?;
    Figure::new(
        format!("campaign issued to {coupons} members, durable"),
        format!("{ours:.0} coupons/s"),
    )
    .baseline(format!("{base:.0} plain entries/s"), ratio(ours, base))
    .goal("≥ 20,000 coupons/s".to_owned(), ours >= 20_000.0)
    .record()?;
    Ok(())
}
