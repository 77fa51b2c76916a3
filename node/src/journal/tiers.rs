//! 会员等级 at the till: a sale that takes its member over a threshold of headquarters' tier
//! table moves them up, in the sale's own batch (the profile change and its audit note follow
//! the sale), offline too. What the member qualified with is what this store knows: the sales
//! of theirs in its views over the table's period (the business days from `today − period + 1`
//! to today, as headquarters' review counts them) — its own, and those of other stores that
//! reached it because it follows the member (every sale that earned points or paid with stored
//! value). Headquarters' review, which sees every store, moves members down and catches up the
//! rises a store could not see. A raise that cannot be written (a damaged profile) is logged
//! and the sale goes through without it.

use super::*;

use protocol::tiers::{Basis, TierWhy};

/// The most sales of one member read to find what they qualified with: the newest this many
/// within the period.
const SALES_READ_MAX: usize = 5_000;

const DAY_MS: u64 = 86_400_000;

impl Journal {
    /// The profile change and its audit note moving `member` (in `tier`, their membership open:
    /// the sale read and checked both) up after a sale that adds `this` = (net spend in fen,
    /// points earned); none when the chain has no tier table or the sale takes them over no
    /// threshold.
    pub(super) fn tier_rise(
        &self,
        member: &MemberId,
        tier: &str,
        now_ms: u64,
        this: (i64, i64),
    ) -> Vec<Payload> {
        match self.try_tier_rise(member, tier, now_ms, this) {
            Ok(rise) => rise,
            Err(e) => {
                tracing::warn!(%member, error = %e, "the sale's tier raise could not be written: the sale goes on without it");
                Vec::new()
            }
        }
    }

    fn try_tier_rise(
        &self,
        member: &MemberId,
        tier: &str,
        now_ms: u64,
        this: (i64, i64),
    ) -> Result<Vec<Payload>, Rejection> {
        let Some(table) = &self.settings.tiers else {
            return Ok(Vec::new());
        };
        if !table.has_above(tier) {
            return Ok(Vec::new());
        }
        // On top of the whole profile only: not a listing (`protocol::listing`), nor a document
        // listings have stood over since.
        let ov = views::Overlay::new(&*self.store);
        if crate::follow::state(&ov, member)? != crate::follow::State::Whole {
            return Ok(Vec::new());
        }
        let today = self.settings.calendar.business_date(now_ms);
        let known = qualifying(
            &*self.store,
            member,
            window(table, today, now_ms),
            table.basis,
        )?;
        let q = known.saturating_add(match table.basis {
            Basis::Spend => this.0,
            Basis::Points => this.1,
        });
        let Some(to) = table.rise(tier, q) else {
            return Ok(Vec::new());
        };
        let (mut doc, before) = self.member_doc(member)?;
        let patch = ProfilePatch {
            tier: Some(to.name.clone()),
            ..ProfilePatch::default()
        };
        let Some(change) = self.profile_change(member, &mut doc, now_ms, &patch)? else {
            return Ok(Vec::new());
        };
        let note = protocol::audit::Note::TierMoved {
            member_id: *member,
            from: before.tier,
            to: to.name.clone(),
            why: TierWhy::Earned {
                qualifying: q,
                basis: table.basis,
            },
        };
        Ok(vec![change, Payload::Audit { note }])
    }
}

/// The table's period ending `today`: its first business day, and a time before any sale of
/// that day (business days run from the store's day start, at most a day and a half off the
/// clock's day in any time zone; a sale entered late, 补录, is booked on its own day).
pub(crate) fn window(
    table: &protocol::tiers::TierTable,
    today: chrono::NaiveDate,
    now_ms: u64,
) -> (chrono::NaiveDate, u64) {
    let days = u64::from(table.period_days);
    let first = today - chrono::TimeDelta::days(i64::from(table.period_days) - 1);
    (first, now_ms.saturating_sub((days + 2) * DAY_MS))
}

/// What `member` qualified with from business day `since.0` on in this store's views (read
/// back to the time `since.1`): net spend (fen) or points earned, less what returns took back.
pub(crate) fn qualifying(
    store: &dyn Store,
    member: &MemberId,
    since: (chrono::NaiveDate, u64),
    basis: Basis,
) -> Result<i64, StoreError> {
    let (first_day, since_ms) = since;
    let prefix = keys::member_sales_prefix(member);
    let mut total = 0i64;
    for (key, value) in store.scan_prefix_rev(&prefix, SALES_READ_MAX)? {
        let at = key
            .get(prefix.len()..prefix.len() + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| missing("a member sale's time"))?;
        if at < since_ms {
            break;
        }
        let sale_id: SaleId = views::decode(&key, &value)?;
        let read = |k: Vec<u8>| store.get(&k);
        let (spend, points) = if let Some(bytes) = read(keys::sale(&sale_id))? {
            let view: SaleView = views::decode(&keys::sale(&sale_id), &bytes)?;
            match view.returned_by {
                _ if view.business_date < first_day => (0, 0),
                Some(_) => (0, 0),
                None => (view.sale.amount.0, view.sale.points_earned.0),
            }
        } else if let Some(bytes) = read(keys::item_sale(&sale_id))? {
            let view: views::ItemSaleView = views::decode(&keys::item_sale(&sale_id), &bytes)?;
            if view.business_date < first_day {
                continue;
            }
            let back: i64 = view.returns.iter().map(|r| r.ret.amount.0).sum();
            let taken: u64 = view.returns.iter().map(|r| r.ret.points_taken).sum();
            (
                view.sale.due.0 - back,
                view.sale.points_earned.0 - i64::try_from(taken).unwrap_or(i64::MAX),
            )
        } else {
            (0, 0)
        };
        total = total.saturating_add(match basis {
            Basis::Spend => spend,
            Basis::Points => points,
        });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{member_of, new_member, request, sale, seeded_env, settings};
    use super::*;
    use crate::store::MemStore;
    use protocol::audit::Note;

    fn table() -> protocol::tiers::TierTable {
        serde_json::from_str::<protocol::tiers::TierForm>(
            r#"{"basis": "spend", "period_days": 365, "tiers": [
                {"name": "普通", "threshold": "0"},
                {"name": "银卡", "threshold": "100", "percent_off": "5", "points_multiplier": "2"},
                {"name": "金卡", "threshold": "300", "percent_off": "10", "points_multiplier": "3"}
            ]}"#,
        )
        .unwrap()
        .table()
        .unwrap()
    }

    /// A sale that takes a member over a threshold moves them up in the same batch (the
    /// profile change and its audit note right after the sale), and the next sale earns at
    /// the new tier's multiplier; a sale that does not leaves the tier alone.
    #[test]
    fn a_sale_over_a_threshold_raises_the_member_in_its_own_batch() {
        let mut chain = settings();
        chain.adopt_tiers(&table());
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), chain, seeded_env(11)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13900000011"),
                )))
                .unwrap(),
        );
        let tier = |j: &Journal| j.member_view(&member).unwrap().unwrap().profile.tier;
        assert_eq!(
            tier(&journal),
            "普通",
            "the table's first tier for a new member"
        );
        let sell = |j: &mut Journal, key: &str, amount: &str| {
            let reply = j
                .handle(Command::QuickCheckout(request(
                    key,
                    sale(Some(member), amount),
                )))
                .unwrap();
            match reply.outcome {
                Outcome::Sale { sale, .. } => sale.sale.points_earned.0,
                other => panic!("not a sale: {other:?}"),
            }
        };
        assert_eq!(sell(&mut journal, "sale-00000001", "60.00"), 60);
        assert_eq!(tier(&journal), "普通");
        let seq_before = journal.tip.next_seq;
        assert_eq!(sell(&mut journal, "sale-00000002", "50.00"), 50);
        assert_eq!(tier(&journal), "银卡");
        journal.flush().unwrap();
        let log: Vec<Entry> = (seq_before..journal.tip.next_seq)
            .map(|seq| {
                let bytes = store
                    .get(&keys::log(&journal.settings.store_id, seq))
                    .unwrap();
                Entry::decode(&bytes.unwrap()).unwrap()
            })
            .collect();
        assert_eq!(log.len(), 3, "the sale, the profile change, its note");
        assert!(matches!(log[0].payload, Payload::Sale { .. }));
        assert!(matches!(log[1].payload, Payload::MemberEdited { .. }));
        assert_eq!(
            log[2].payload,
            Payload::Audit {
                note: Note::TierMoved {
                    member_id: member,
                    from: "普通".into(),
                    to: "银卡".into(),
                    why: TierWhy::Earned {
                        qualifying: 11_000,
                        basis: Basis::Spend
                    },
                }
            }
        );
        assert!(log.iter().all(|e| e.tx == log[0].tx), "one request");
        // 银卡 doubles points; a replay of the raising sale raises nothing twice.
        assert_eq!(sell(&mut journal, "sale-00000003", "10.00"), 20);
        let tip = journal.tip.next_seq;
        assert_eq!(sell(&mut journal, "sale-00000002", "50.00"), 50);
        assert_eq!(journal.tip.next_seq, tip);
    }

    /// What a member qualified with counts only the period's sales, less returns.
    #[test]
    fn a_returned_sale_and_one_before_the_period_do_not_count() {
        let mut chain = settings();
        chain.adopt_tiers(&table());
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), chain, seeded_env(12)).unwrap();
        let member = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13900000012"),
                )))
                .unwrap(),
        );
        for (key, amount) in [("sale-00000001", "40.00"), ("sale-00000002", "30.00")] {
            journal
                .handle(Command::QuickCheckout(request(
                    key,
                    sale(Some(member), amount),
                )))
                .unwrap();
        }
        let first = SaleId::for_entry(&journal.settings.store_id, 2);
        journal
            .handle(Command::ReturnSale(request(
                "ret-00000001",
                SaleReturn {
                    sale_id: first,
                    reason: "质量问题".into(),
                    lines: None,
                },
            )))
            .unwrap();
        journal.flush().unwrap();
        let today = journal.settings.calendar.business_date(1_795_451_400_000);
        let spent = |since| qualifying(&*store, &member, (since, 0), Basis::Spend).unwrap();
        assert_eq!(spent(today), 3_000, "the returned sale is not counted");
        let tomorrow = today + chrono::TimeDelta::days(1);
        assert_eq!(spent(tomorrow), 0, "a sale before the period's first day");
        let points = qualifying(&*store, &member, (today, 0), Basis::Points).unwrap();
        assert_eq!(points, 30);
    }
}
