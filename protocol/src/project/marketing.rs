//! Headquarters' marketing kept as views: templates, segments and campaigns (the latest of
//! each id by headquarters' clock), each run's record, and how many coupons each template and
//! campaign has issued (counted from the coupons themselves, so a quota holds after a crash).

use crate::campaign::{Campaign, CouponTemplate, MarketingChange, Run};
use crate::entry::{Entry, Payload};
use crate::hlc::Hlc;
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::segment::Segment;
use crate::wallet::WalletEvent;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub mod keys {
    pub const TEMPLATES: &[u8] = b"mk/t/";
    pub const SEGMENTS: &[u8] = b"mk/s/";
    pub const CAMPAIGNS: &[u8] = b"mk/c/";
    pub const RUNS: &[u8] = b"mk/r/";

    pub fn template(id: &str) -> Vec<u8> {
        [TEMPLATES, id.as_bytes()].concat()
    }
    pub fn segment(id: &str) -> Vec<u8> {
        [SEGMENTS, id.as_bytes()].concat()
    }
    pub fn campaign(id: &str) -> Vec<u8> {
        [CAMPAIGNS, id.as_bytes()].concat()
    }
    /// A campaign's runs: `mk/r/<campaign>\0<run>`.
    pub fn runs(campaign: &str) -> Vec<u8> {
        [RUNS, campaign.as_bytes(), b"\0"].concat()
    }
    pub fn run(campaign: &str, run: &str) -> Vec<u8> {
        [runs(campaign).as_slice(), run.as_bytes()].concat()
    }
    /// Coupons a template has issued.
    pub fn template_issued(id: &str) -> Vec<u8> {
        [b"mk/nt/".as_slice(), id.as_bytes()].concat()
    }
    /// Coupons a campaign has issued.
    pub fn campaign_issued(id: &str) -> Vec<u8> {
        [b"mk/nc/".as_slice(), id.as_bytes()].concat()
    }
    /// The campaign a member's coupon came from: `mk/cp/<member>/<coupon>` (by member, so a
    /// campaign's coupons, issued in the order of its members, are written side by side).
    pub fn coupon(member: &crate::ids::MemberId, coupon: &str) -> Vec<u8> {
        format!("mk/cp/{member}/{coupon}").into_bytes()
    }
    /// The sale that redeemed a campaign's coupon: what it took off and what was due.
    pub fn redeeming(coupon: &str) -> Vec<u8> {
        [b"mk/ru/".as_slice(), coupon.as_bytes()].concat()
    }
    /// A campaign's redemptions, summed.
    pub fn redeemed(campaign: &str) -> Vec<u8> {
        [b"mk/rd/".as_slice(), campaign.as_bytes()].concat()
    }
    /// Coupons stores issued, by their last good day: `mk/ex/<YYYY-MM-DD>/<member>/<coupon>`
    /// (kept by headquarters alone, for the reminder before a coupon runs out; a campaign's
    /// are found through `expiring_campaigns` and `targeted_until`).
    pub fn expiring_on(to: chrono::NaiveDate) -> Vec<u8> {
        format!("mk/ex/{to}/").into_bytes()
    }
    pub fn expiring(to: chrono::NaiveDate, member: &crate::ids::MemberId, coupon: &str) -> Vec<u8> {
        format!("mk/ex/{to}/{member}/{coupon}").into_bytes()
    }
    /// An `expiring` key's member and coupon, after `expiring_on`'s prefix.
    pub fn parse_expiring(rest: &[u8]) -> Option<(crate::ids::MemberId, String)> {
        let (member, coupon) = std::str::from_utf8(rest).ok()?.split_once('/')?;
        Some((crate::ids::MemberId::parse(member).ok()?, coupon.to_owned()))
    }
    /// Campaigns that gave coupons whose last good day is `to`: `mk/xc/<YYYY-MM-DD>/<campaign>`
    /// (kept by headquarters alone: one key a campaign and day, not one a coupon).
    pub fn expiring_campaigns(to: chrono::NaiveDate) -> Vec<u8> {
        format!("mk/xc/{to}/").into_bytes()
    }
    pub fn expiring_campaign(to: chrono::NaiveDate, campaign: &str) -> Vec<u8> {
        [expiring_campaigns(to), campaign.as_bytes().to_vec()].concat()
    }
    /// The runs of headquarters' log that gave a campaign's coupons, by their last good day:
    /// `mk/tg/<campaign>\0<YYYY-MM-DD>\0<first seq, 8 bytes big-endian>` → `Targets`. Each
    /// entry `first..=last` of headquarters' log gives one of the campaign's coupons good
    /// until that day; the report and the reminder read the members from the log (one key a
    /// run, not one a member: a campaign to 100,000 members writes a key less per coupon).
    pub fn targeted_prefix(campaign: &str) -> Vec<u8> {
        [b"mk/tg/".as_slice(), campaign.as_bytes(), b"\0"].concat()
    }
    pub fn targeted_until(campaign: &str, to: chrono::NaiveDate) -> Vec<u8> {
        [targeted_prefix(campaign), format!("{to}\0").into_bytes()].concat()
    }
    pub fn targeted(campaign: &str, to: chrono::NaiveDate, first: u64) -> Vec<u8> {
        [
            targeted_until(campaign, to).as_slice(),
            &first.to_be_bytes(),
        ]
        .concat()
    }
    /// The run of coupons headquarters' log gave last, with its campaign: the next coupon of
    /// the same campaign and period right after it extends it.
    pub const TARGETED_LAST: &[u8] = b"mk/tl";
}

/// A run of headquarters' log whose entries each give a campaign's coupon for `from..=to`
/// (`keys::targeted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub first: u64,
    pub last: u64,
}

/// What a campaign's coupons did at the tills: redeemed (net of coupons given back by a
/// return), the discount they gave and what the sales that took them came to, in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    pub redeemed: i64,
    pub discount: i64,
    pub sales: i64,
}

/// A template, segment or campaign as published: by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published<T> {
    pub at: Hlc,
    pub staff: crate::ids::StaffId,
    pub item: T,
}

/// Takes in a marketing change from headquarters, and counts a campaign's coupon. Anything
/// from a store, or a change that fails its check, is skipped with the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    match &entry.payload {
        Payload::Marketing { change } => {
            if entry.origin != StoreId::hq() {
                return Ok(Some("marketing not from headquarters".into()));
            }
            let checked = match change {
                MarketingChange::Template(t) => t.check(),
                MarketingChange::Segment(s) => s.check(),
                MarketingChange::Campaign(c) => c.check(),
                MarketingChange::Run(_) => Ok(()),
            };
            if let Err(e) = checked {
                return Ok(Some(format!("marketing change refused: {e}")));
            }
            match change {
                MarketingChange::Template(t) => put_latest(kv, keys::template(&t.id), entry, t)?,
                MarketingChange::Segment(s) => put_latest(kv, keys::segment(&s.id), entry, s)?,
                MarketingChange::Campaign(c) => put_latest(kv, keys::campaign(&c.id), entry, c)?,
                MarketingChange::Run(r) => {
                    kv.put(keys::run(&r.campaign, &r.run), encode(r)?);
                }
            }
            Ok(None)
        }
        Payload::Wallet {
            member_id,
            event:
                WalletEvent::CampaignCoupon {
                    coupon,
                    campaign,
                    template,
                    from,
                    to,
                    ..
                },
            ..
        } if entry.origin == StoreId::hq() => {
            bump(kv, keys::template_issued(template))?;
            bump(kv, keys::campaign_issued(campaign))?;
            // A coupon named before coupons named their campaign is looked up by its index.
            if crate::campaign::coupon_campaign(coupon.as_str()) != Some(campaign) {
                kv.put(keys::coupon(member_id, coupon.as_str()), encode(campaign)?);
            }
            target(kv, campaign, (*from, *to), entry.seq)?;
            Ok(None)
        }
        Payload::Checkout { sale, .. } => {
            let (Some(coupon), Some(member)) = (&sale.coupon, &sale.member_id) else {
                return Ok(None);
            };
            let Some(campaign) = campaign_of(kv, member, coupon)? else {
                return Ok(None);
            };
            let discount: i64 = sale
                .lines
                .iter()
                .flat_map(|l| &l.steps)
                .filter(|s| s.step == crate::pricing::Step::Coupon)
                .map(|s| s.off.0)
                .sum();
            let this = Redeemed {
                redeemed: 1,
                discount,
                sales: sale.due.0,
            };
            kv.put(keys::redeeming(coupon), encode(&this)?);
            add(kv, &campaign, this, 1)?;
            Ok(None)
        }
        Payload::Wallet {
            member_id,
            event: WalletEvent::CouponsRedeemed { coupons, due, .. },
            ..
        } => {
            let mut counted = std::collections::BTreeSet::new();
            for c in coupons {
                let Some(campaign) = campaign_of(kv, member_id, c.coupon.as_str())? else {
                    continue;
                };
                // The sale's amount counts once for each campaign it redeemed.
                let first = counted.insert(campaign.clone());
                let this = Redeemed {
                    redeemed: 1,
                    discount: c.off.0,
                    sales: if first { due.0 } else { 0 },
                };
                kv.put(keys::redeeming(c.coupon.as_str()), encode(&this)?);
                add(kv, &campaign, this, 1)?;
            }
            Ok(None)
        }
        Payload::ItemReturn { ret, ops, .. } => {
            // A whole return gives back each coupon: the one named in `coupon_back`, or the
            // several a sale redeemed together, whose uses its ops credit back.
            let credited = ops.iter().filter_map(|op| match (&op.counter, &op.change) {
                (crate::wallet::Counter::Uses { card }, crate::escrow::Change::Credit { .. }) => {
                    Some(card.to_string())
                }
                _ => None,
            });
            let Some(member) = &ret.member_id else {
                return Ok(None);
            };
            for coupon in ret.coupon_back.iter().cloned().chain(credited) {
                let (Some(campaign), Some(this)) = (
                    campaign_of(kv, member, &coupon)?,
                    read::<Redeemed>(kv, &keys::redeeming(&coupon))?,
                ) else {
                    continue;
                };
                kv.delete(keys::redeeming(&coupon));
                add(kv, &campaign, this, -1)?;
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The campaign a member's coupon came from: its id says, or (named before) the index.
fn campaign_of(
    kv: &dyn ViewKv,
    member: &crate::ids::MemberId,
    coupon: &str,
) -> Result<Option<String>, String> {
    match crate::campaign::coupon_campaign(coupon) {
        Some(campaign) => Ok(Some(campaign.to_owned())),
        None => read::<String>(kv, &keys::coupon(member, coupon)),
    }
}

/// Files headquarters' entry `seq`, a coupon of `campaign` for `from..=to`, in the run of
/// such entries it extends, or a new one.
fn target(
    kv: &mut dyn ViewKv,
    campaign: &str,
    (from, to): (chrono::NaiveDate, chrono::NaiveDate),
    seq: u64,
) -> Result<(), String> {
    let last = read::<(String, Targets)>(kv, keys::TARGETED_LAST)?;
    let mut run = match last {
        Some((c, run)) if c == campaign && run.from == from && run.to == to => {
            if (run.first..=run.last).contains(&seq) {
                return Ok(());
            }
            run
        }
        _ => Targets {
            from,
            to,
            first: seq,
            last: seq,
        },
    };
    if run.last.checked_add(1) != Some(seq) {
        run.first = seq;
    }
    run.last = seq;
    kv.put(keys::targeted(campaign, to, run.first), encode(&run)?);
    kv.put(keys::TARGETED_LAST.to_vec(), encode(&(campaign, run))?);
    Ok(())
}

/// Files a coupon a store issued under its last good day (`keys::expiring`), and a campaign
/// under the last good day of its coupons (`keys::expiring_campaign`), at headquarters.
pub fn index_expiry(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    let Payload::Wallet {
        member_id, event, ..
    } = &entry.payload
    else {
        return Ok(());
    };
    match event {
        WalletEvent::CouponIssued { coupon, to, .. } => {
            kv.put(keys::expiring(*to, member_id, coupon.as_str()), Vec::new());
        }
        WalletEvent::CampaignCoupon { campaign, to, .. } if entry.origin == StoreId::hq() => {
            kv.put(keys::expiring_campaign(*to, campaign), Vec::new());
        }
        _ => {}
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(value).map_err(|e| e.to_string())
}

fn put_latest<T: Serialize + DeserializeOwned + Clone>(
    kv: &mut dyn ViewKv,
    key: Vec<u8>,
    entry: &Entry,
    item: &T,
) -> Result<(), String> {
    if let Some(now) = read::<Published<T>>(kv, &key)?
        && now.at >= entry.hlc
    {
        return Ok(());
    }
    let published = Published {
        at: entry.hlc,
        staff: entry.staff.clone(),
        item: item.clone(),
    };
    kv.put(key, encode(&published)?);
    Ok(())
}

/// Adds (`sign` 1) or takes away (-1) one redemption from a campaign's sums.
fn add(kv: &mut dyn ViewKv, campaign: &str, this: Redeemed, sign: i64) -> Result<(), String> {
    let key = keys::redeemed(campaign);
    let mut sum = read::<Redeemed>(kv, &key)?.unwrap_or_default();
    sum.redeemed += sign * this.redeemed;
    sum.discount += sign * this.discount;
    sum.sales += sign * this.sales;
    kv.put(key, encode(&sum)?);
    Ok(())
}

fn bump(kv: &mut dyn ViewKv, key: Vec<u8>) -> Result<(), String> {
    let n = issued_at(kv, &key)?;
    kv.put(key, encode(&(n + 1))?);
    Ok(())
}

fn issued_at(kv: &dyn ViewKv, key: &[u8]) -> Result<u64, String> {
    Ok(read::<u64>(kv, key)?.unwrap_or(0))
}

fn read<T: DeserializeOwned>(kv: &dyn ViewKv, key: &[u8]) -> Result<Option<T>, String> {
    kv.get(key)?
        .map(|bytes| postcard::from_bytes(&bytes).map_err(|e| e.to_string()))
        .transpose()
}

pub fn template(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<CouponTemplate>>, String> {
    read(kv, &keys::template(id))
}

/// A template that still issues coupons (not withdrawn), if there is one of that id.
pub fn live_template(kv: &dyn ViewKv, id: &str) -> Result<Option<CouponTemplate>, String> {
    Ok(template(kv, id)?.map(|p| p.item).filter(|t| !t.withdrawn))
}

pub fn segment(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<Segment>>, String> {
    read(kv, &keys::segment(id))
}

pub fn campaign(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<Campaign>>, String> {
    read(kv, &keys::campaign(id))
}

pub fn run(kv: &dyn ViewKv, campaign: &str, run: &str) -> Result<Option<Run>, String> {
    read(kv, &keys::run(campaign, run))
}

/// Coupons the template has issued in all.
pub fn template_issued(kv: &dyn ViewKv, id: &str) -> Result<u64, String> {
    issued_at(kv, &keys::template_issued(id))
}

/// What the campaign's coupons did at the tills.
pub fn redeemed(kv: &dyn ViewKv, campaign: &str) -> Result<Redeemed, String> {
    Ok(read(kv, &keys::redeemed(campaign))?.unwrap_or_default())
}

/// Coupons the campaign has issued in all.
pub fn campaign_issued(kv: &dyn ViewKv, id: &str) -> Result<u64, String> {
    issued_at(kv, &keys::campaign_issued(id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalogue::Qty;
    use crate::entry::EntryHash;
    use crate::ids::{MemberId, SaleId, Sku, StaffId, TxId};
    use crate::money::Fen;
    use crate::pricing::{LineStep, PricedLine, Rounded, Step};
    use crate::returns::ItemReturn;
    use crate::sale::ItemSale;

    fn entry(origin: &str, seq: u64, payload: Payload) -> Entry {
        Entry {
            origin: StoreId::parse(origin).unwrap(),
            seq,
            hlc: Hlc {
                wall_ms: seq,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{origin}-test-{seq:04}")).unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    #[test]
    fn reminder_keys_name_their_member_and_coupon() {
        let member = MemberId::mint(1_000, 1);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let key = keys::expiring(day, &member, "S001-00000012");
        let rest = &key[keys::expiring_on(day).len()..];
        assert_eq!(
            keys::parse_expiring(rest),
            Some((member, "S001-00000012".to_owned()))
        );
    }

    /// Campaign `campaign`'s coupon `coupon` to `member`, good on `day`.
    fn issued(
        member: MemberId,
        coupon: &SaleId,
        campaign: &str,
        day: chrono::NaiveDate,
    ) -> Payload {
        Payload::Wallet {
            member_id: member,
            event: WalletEvent::CampaignCoupon {
                coupon: coupon.clone(),
                campaign: campaign.into(),
                template: "T1".into(),
                name: "满100减20".into(),
                offer: crate::pricing::Coupon::AmountOff {
                    threshold: Fen(10_000),
                    off: Fen(2_000),
                },
                scope: Default::default(),
                stacks: None,
                from: day,
                to: day,
            },
            ops: Vec::new(),
        }
    }

    #[test]
    fn a_campaigns_coupons_side_by_side_in_headquarters_log_are_filed_as_one_run() {
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let coupon = SaleId::parse("cp-0123456789ab").unwrap();
        let give = |kv: &mut BTreeMap<Vec<u8>, Vec<u8>>, seq: u64, campaign: &str, to| {
            let payload = issued(MemberId::mint(seq, 1), &coupon, campaign, to);
            apply(kv, &entry("HQ", seq, payload)).unwrap();
        };
        for seq in 1..=3 {
            give(&mut kv, seq, "C1", day);
        }
        give(&mut kv, 3, "C1", day); // taken again: nothing changes
        give(&mut kv, 4, "C2", day); // another campaign
        give(&mut kv, 5, "C1", day); // after it: a run of its own
        give(&mut kv, 6, "C1", day.succ_opt().unwrap()); // another last day
        give(&mut kv, 8, "C1", day.succ_opt().unwrap()); // a gap in the log
        let runs = |campaign: &str| -> Vec<Targets> {
            let prefix = keys::targeted_prefix(campaign);
            kv.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| postcard::from_bytes(v).unwrap())
                .collect()
        };
        let run = |first, last, to| Targets {
            from: to,
            to,
            first,
            last,
        };
        let next = day.succ_opt().unwrap();
        assert_eq!(
            runs("C1"),
            vec![
                run(1, 3, day),
                run(5, 5, day),
                run(6, 6, next),
                run(8, 8, next)
            ]
        );
        assert_eq!(runs("C2"), vec![run(4, 4, day)]);
        let filed = keys::targeted("C1", day, 5);
        assert!(filed.starts_with(&keys::targeted_until("C1", day)));
    }

    #[test]
    fn a_redeemed_campaign_coupon_counts_until_a_return_gives_it_back() {
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let member = MemberId::mint(1, 1);
        let coupon = SaleId::parse("cp-0123456789ab").unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        apply(&mut kv, &entry("HQ", 1, issued(member, &coupon, "C1", day))).unwrap();
        let line = PricedLine {
            sku: Sku::parse("A1").unwrap(),
            category: String::new(),
            qty: Qty(1_000),
            unit_price: Fen(12_000),
            gross: Fen(12_000),
            steps: vec![LineStep {
                step: Step::Coupon,
                off: Fen(2_000),
                rounded: Rounded::Shared,
                note: "满100减20".into(),
            }],
            net: Fen(10_000),
            discountable: true,
            earns_points: true,
        };
        let sale = ItemSale {
            sale_id: SaleId::parse("S001-00000007").unwrap(),
            member_id: Some(member),
            lines: vec![line],
            subtotal: Fen(12_000),
            discount: Fen(2_000),
            due: Fen(10_000),
            tenders: Vec::new(),
            points_used: 0,
            points_earned: crate::points::Points(0),
            coupon: Some(coupon.to_string()),
            served_by: None,
        };
        let checkout = Payload::Checkout {
            sale,
            ops: Vec::new(),
            stock: Vec::new(),
        };
        apply(&mut kv, &entry("S001", 7, checkout)).unwrap();
        let sums = redeemed(&kv, "C1").unwrap();
        assert_eq!(
            (sums.redeemed, sums.discount, sums.sales),
            (1, 2_000, 10_000)
        );
        let back = Payload::ItemReturn {
            ret: ItemReturn {
                sale_id: SaleId::parse("S001-00000007").unwrap(),
                member_id: Some(member),
                lines: Vec::new(),
                amount: Fen(10_000),
                refunds: Vec::new(),
                points_back: 0,
                points_taken: 0,
                coupon_back: Some(coupon.to_string()),
                reason: "不要了".into(),
            },
            ops: Vec::new(),
            stock: Vec::new(),
        };
        apply(&mut kv, &entry("S002", 3, back)).unwrap();
        assert_eq!(redeemed(&kv, "C1").unwrap(), Redeemed::default());
        assert_eq!(campaign_issued(&kv, "C1").unwrap(), 1);
    }

    #[test]
    fn coupons_redeemed_together_count_each_and_the_sale_once_per_campaign_until_returned() {
        use crate::escrow::Change;
        use crate::wallet::{Counter, CouponOff, RightsOp};
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let member = MemberId::mint(1, 1);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let coupons: Vec<SaleId> = ["cp-000000000001", "cp-000000000002", "cp-000000000003"]
            .iter()
            .map(|c| SaleId::parse(c).unwrap())
            .collect();
        for (n, (coupon, campaign)) in coupons.iter().zip(["C1", "C1", "C2"]).enumerate() {
            let issued = Payload::Wallet {
                member_id: member,
                event: WalletEvent::CampaignCoupon {
                    coupon: coupon.clone(),
                    campaign: campaign.into(),
                    template: "T1".into(),
                    name: "代金券".into(),
                    offer: crate::pricing::Coupon::Voucher {
                        value: Fen(100),
                        threshold: Fen(0),
                    },
                    scope: Default::default(),
                    stacks: None,
                    from: day,
                    to: day,
                },
                ops: Vec::new(),
            };
            apply(&mut kv, &entry("HQ", n as u64 + 1, issued)).unwrap();
        }
        let sale = SaleId::parse("S001-00000009").unwrap();
        let together = Payload::Wallet {
            member_id: member,
            event: WalletEvent::CouponsRedeemed {
                sale: sale.clone(),
                coupons: coupons
                    .iter()
                    .map(|c| CouponOff {
                        coupon: c.clone(),
                        off: Fen(100),
                    })
                    .collect(),
                due: Fen(5_000),
            },
            ops: Vec::new(),
        };
        apply(&mut kv, &entry("S001", 9, together)).unwrap();
        let sums = |kv: &BTreeMap<Vec<u8>, Vec<u8>>, c: &str| {
            let r = redeemed(kv, c).unwrap();
            (r.redeemed, r.discount, r.sales)
        };
        assert_eq!(sums(&kv, "C1"), (2, 200, 5_000), "the sale's amount once");
        assert_eq!(sums(&kv, "C2"), (1, 100, 5_000));
        // The whole return credits each coupon's use back (no `coupon_back` for several).
        let credit = |c: &SaleId| RightsOp {
            counter: Counter::Uses { card: c.clone() },
            change: Change::Credit { units: 1, total: 1 },
        };
        let back = Payload::ItemReturn {
            ret: ItemReturn {
                sale_id: sale,
                member_id: Some(member),
                lines: Vec::new(),
                amount: Fen(5_000),
                refunds: Vec::new(),
                points_back: 0,
                points_taken: 0,
                coupon_back: None,
                reason: "不要了".into(),
            },
            ops: coupons.iter().map(credit).collect(),
            stock: Vec::new(),
        };
        apply(&mut kv, &entry("S001", 10, back)).unwrap();
        assert_eq!((sums(&kv, "C1"), sums(&kv, "C2")), ((0, 0, 0), (0, 0, 0)));
    }
}
