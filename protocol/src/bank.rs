//! The rights bank's policy: where a member's spendable rights should be, and what
//! headquarters does about a store's ask for them. Pure: the hub (`hub::ingest`), the
//! simulator and `ops bench replay` run these same functions.
//!
//! Headquarters keeps a **reserve** of each counter — a share of the balance in its own pool —
//! so a store that needs rights it does not hold is granted them at once: one round trip to
//! headquarters, whether or not the store holding the rest is switched on. The rest of the
//! balance is **placed** at the stores where the member spends, each its share by the amount
//! spent there, so most payments need no round trip and work offline. After every change to a
//! member's rights `Policy::rebalance` plans the moves that restore both: grants from the pool
//! above its reserve to stores below their share, and recalls from stores above their share
//! when the pool is below its reserve. A payment larger than the pool still recalls from the
//! holders that are connected, and is refused at once, saying which, when they are not.

use serde::{Deserialize, Serialize};

use crate::StoreId;
use crate::escrow::Rights;
use crate::wallet::{Counter, Wallet};

/// The chain's placement policy (`[rights]` in hub.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// The share of each counter's balance headquarters keeps in its pool to grant at once,
    /// in percent (0–90). More makes a spend at a store the member rarely visits quicker and
    /// independent of the stores holding the rest; less leaves more to spend at each store
    /// while it or headquarters is offline.
    pub reserve_percent: u8,
}

/// The most a chain may keep in reserve: stores must hold something to spend offline.
pub const RESERVE_PERCENT_MAX: u8 = 90;

impl Default for Policy {
    fn default() -> Self {
        Self {
            reserve_percent: 25,
        }
    }
}

/// What headquarters does about a store's ask for rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskPlan {
    /// Grant these from its pool now.
    Grant(Vec<(Counter, u64)>),
    /// First recall these from the stores holding them.
    Recall(Vec<(StoreId, Counter, u64)>),
    /// The balance would cover it, but what the pool lacks is held at these stores, which
    /// cannot be reached now (switched off, cut off): the asking store's offline overdraft
    /// policy may decide instead.
    Unreachable(Vec<StoreId>),
    /// The balance cannot cover it wherever its rights are.
    Refuse(String),
}

/// Moves that restore the reserve and the placement after a change to a member's rights.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moves {
    /// Grants from headquarters' pool: (store, counter, units).
    pub grants: Vec<(StoreId, Counter, u64)>,
    /// Recalls into headquarters' pool: (holder, counter, units).
    pub recalls: Vec<(StoreId, Counter, u64)>,
}

impl Policy {
    /// Checks a policy typed into hub.toml.
    pub fn check(&self) -> Result<(), String> {
        if self.reserve_percent > RESERVE_PERCENT_MAX {
            return Err(format!(
                "rights.reserve_percent is {}: at most {RESERVE_PERCENT_MAX}",
                self.reserve_percent
            ));
        }
        Ok(())
    }

    /// What headquarters aims to keep of a counter whose balance is `balance`. A sale's
    /// return token stays with the sale's store; a one-unit counter (a coupon) stays where it
    /// was issued (the reserve rounds down).
    pub fn reserve(&self, counter: &Counter, balance: u64) -> u64 {
        if matches!(counter, Counter::Returnable { .. }) {
            return 0;
        }
        let kept = u128::from(balance) * u128::from(self.reserve_percent) / 100;
        u64::try_from(kept).unwrap_or(u64::MAX)
    }

    /// `store`'s share of what is not in reserve, by where the member has spent this counter;
    /// `None` while nothing has been spent (no history to place by).
    pub fn share(&self, wallet: &Wallet, store: &StoreId, counter: &Counter) -> Option<u64> {
        let rights = wallet.counters.get(counter)?;
        let spent: u128 = rights
            .replicas()
            .iter()
            .map(|r| u128::from(rights.debited(r)))
            .sum();
        if spent == 0 {
            return None;
        }
        let balance = rights.balance();
        let placed = u128::from(balance - self.reserve(counter, balance));
        let share = placed * u128::from(rights.debited(store)) / spent;
        Some(u64::try_from(share).unwrap_or(u64::MAX))
    }

    /// How much of `counter` to move to `store`: at least `want`, and up to its share.
    pub fn placement(&self, wallet: &Wallet, store: &StoreId, counter: &Counter, want: u64) -> u64 {
        let Some(share) = self.share(wallet, store, counter) else {
            return want;
        };
        want.max(share.saturating_sub(wallet.held(counter, store)))
    }

    /// Plans headquarters' answer to `store` asking for `wants`, given what `hq` holds: grant
    /// from the pool (up to the store's share, keeping the reserve, but always what was asked
    /// while the pool has it), or recall what the pool lacks from the holders `reachable` says
    /// can hear a recall now, largest first.
    pub fn plan_ask(
        &self,
        wallet: &Wallet,
        hq: &StoreId,
        store: &StoreId,
        wants: &[(Counter, u64)],
        reachable: impl Fn(&StoreId) -> bool,
    ) -> AskPlan {
        let mut grants = Vec::new();
        let mut recalls = Vec::new();
        let mut away = Vec::new();
        // What members owe stores for offline overdrafts is set aside for those stores to
        // collect: only the lender may be granted it, and a lender only once the lenders before
        // it are paid (`Wallet::collectable_at`), so the balance pays them one after another
        // instead of each waiting on the others' share.
        let reserved = match wallet.owed_at(store) {
            0 => wallet.owed_total(),
            _ => wallet.owed_before(store),
        };
        for (counter, want) in wants {
            let set_aside = match counter {
                Counter::Principal | Counter::Bonus => reserved,
                _ => 0,
            };
            let balance = wallet.balance(counter);
            let movable = balance
                .saturating_sub(wallet.held(counter, store))
                .saturating_sub(set_aside);
            if movable < *want {
                return AskPlan::Refuse(format!(
                    "{counter}: {movable} units could move to {store}, {want} wanted"
                ));
            }
            let target = self.placement(wallet, store, counter, *want).min(movable);
            let pool = wallet.held(counter, hq);
            if pool >= *want {
                let spare = pool.saturating_sub(self.reserve(counter, balance));
                grants.push((counter.clone(), (*want).max(target.min(spare)).min(pool)));
                continue;
            }
            let mut short = target - pool;
            let mut holders: Vec<(u64, StoreId)> = wallet
                .counters
                .get(counter)
                .map(Rights::replicas)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r != hq && r != store)
                .map(|r| (wallet.held(counter, &r), r))
                .filter(|(held, _)| *held > 0)
                .collect();
            holders.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let mut needed = *want - pool;
            for (held, holder) in holders {
                if short == 0 {
                    break;
                }
                if !reachable(&holder) {
                    away.push(holder);
                    continue;
                }
                let units = held.min(short);
                short -= units;
                needed = needed.saturating_sub(units);
                recalls.push((holder, counter.clone(), units));
            }
            if needed > 0 {
                away.sort();
                away.dedup();
                return AskPlan::Unreachable(away);
            }
        }
        match recalls.is_empty() {
            true => AskPlan::Grant(grants),
            false => AskPlan::Recall(recalls),
        }
    }

    /// After a change to `counter` of a member's rights: grants from the pool above its reserve
    /// to the stores below their share, and recalls from the stores above their share (or,
    /// before any spending, the largest holders) of what those grants lack, and of the whole
    /// reserve once the pool is down to half of it.
    /// Moves under a twentieth of the balance are not worth an entry; stored value is not moved
    /// while the member owes a lender (it is theirs to collect first). `skip` names stores no
    /// rights may go to or be asked of (fenced ones).
    pub fn rebalance(
        &self,
        wallet: &Wallet,
        hq: &StoreId,
        counter: &Counter,
        skip: impl Fn(&StoreId) -> bool,
    ) -> Moves {
        let mut moves = Moves::default();
        let Some(rights) = wallet.counters.get(counter) else {
            return moves;
        };
        let balance = rights.balance();
        if balance == 0 || matches!(counter, Counter::Returnable { .. }) {
            return moves;
        }
        // Stored value owed to lenders of offline overdrafts is theirs to collect first, in
        // their order (`plan_ask`): nothing is placed until they are paid.
        if matches!(counter, Counter::Principal | Counter::Bonus) && wallet.owed_total() > 0 {
            return moves;
        }
        let floor = (balance / 20).max(1);
        let reserve = self.reserve(counter, balance);
        let pool = rights.held(hq);
        let stores: Vec<StoreId> = rights
            .replicas()
            .into_iter()
            .filter(|s| s != hq && !skip(s))
            .collect();
        let shares: Vec<(StoreId, u64, Option<u64>)> = stores
            .into_iter()
            .map(|s| {
                let held = rights.held(&s);
                let share = self.share(wallet, &s, counter);
                (s, held, share)
            })
            .collect();
        let mut below: Vec<(u64, &StoreId)> = shares
            .iter()
            .filter_map(|(s, held, share)| Some((share.as_ref()?.saturating_sub(*held), s)))
            .filter(|(gap, _)| *gap >= floor)
            .collect();
        below.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let mut spare = pool.saturating_sub(reserve);
        let mut unmet = 0u64;
        for (gap, store) in below {
            let units = gap.min(spare);
            unmet = unmet.saturating_add(gap - units);
            if units >= floor {
                spare -= units;
                moves.grants.push((store.clone(), counter.clone(), units));
            }
        }
        // The reserve is refilled once it is down to half, not after every grant from it: each
        // recall is an entry at the holder and a message on its link.
        let refill = match pool.saturating_mul(2) < reserve {
            true => reserve - pool,
            false => 0,
        };
        let mut short = refill.saturating_add(unmet);
        if short < floor {
            return moves;
        }
        let mut above: Vec<(u64, &StoreId)> = shares
            .iter()
            .map(|(s, held, share)| (held.saturating_sub(share.unwrap_or(0)), s))
            .filter(|(excess, _)| *excess >= floor)
            .collect();
        above.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        for (excess, holder) in above {
            if short < floor {
                break;
            }
            let units = excess.min(short);
            short -= units;
            moves.recalls.push((holder.clone(), counter.clone(), units));
        }
        moves
    }
}

/// What headquarters must call back to spend `wants` (each counter's shortfall in its own
/// pool) itself — a gift redeemed on the member's page: recalls from the largest reachable
/// holders first, or the holders that cannot be reached when the reachable ones are short.
/// An empty `Recall` list never comes back: nothing short is `Grant(vec![])`.
pub fn plan_gather(
    wallet: &Wallet,
    hq: &StoreId,
    wants: &[(Counter, u64)],
    reachable: impl Fn(&StoreId) -> bool,
) -> AskPlan {
    let mut recalls = Vec::new();
    for (counter, want) in wants {
        let mut away = Vec::new();
        let mut holders: Vec<(u64, StoreId)> = wallet
            .counters
            .get(counter)
            .map(Rights::replicas)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r != hq)
            .map(|r| (wallet.held(counter, &r), r))
            .filter(|(held, _)| *held > 0)
            .collect();
        holders.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut short = *want;
        for (held, holder) in holders {
            if short == 0 {
                break;
            }
            if !reachable(&holder) {
                away.push(holder);
                continue;
            }
            let units = held.min(short);
            short -= units;
            recalls.push((holder, counter.clone(), units));
        }
        if short > 0 {
            away.sort();
            away.dedup();
            return match away.is_empty() {
                true => AskPlan::Refuse(format!("{counter}: {short} units short in the chain")),
                false => AskPlan::Unreachable(away),
            };
        }
    }
    match recalls.is_empty() {
        true => AskPlan::Grant(Vec::new()),
        false => AskPlan::Recall(recalls),
    }
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use crate::wallet::{BonusUse, Wallet, WalletError};

    fn stores() -> (StoreId, StoreId, StoreId, StoreId) {
        (
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
            StoreId::parse("S003").unwrap(),
            StoreId::hq(),
        )
    }

    const ALL: fn(&StoreId) -> bool = |_| true;
    const NONE: fn(&StoreId) -> bool = |_| false;
    const NO_RESERVE: Policy = Policy { reserve_percent: 0 };

    /// Applies a plan's moves as the stores and headquarters would write them.
    fn apply(w: &mut Wallet, hq: &StoreId, moves: &Moves) {
        for (holder, counter, units) in &moves.recalls {
            w.move_rights(holder, hq, counter, *units).unwrap();
        }
        for (store, counter, units) in &moves.grants {
            w.move_rights(hq, store, counter, *units).unwrap();
        }
    }

    #[test]
    fn a_top_up_leaves_the_reserve_at_headquarters_and_the_rest_at_the_store() {
        let (s1, s2, _, hq) = stores();
        let policy = Policy {
            reserve_percent: 50,
        };
        let mut w = Wallet::default();
        w.top_up(&s1, 550_00, 0).unwrap();
        let moves = policy.rebalance(&w, &hq, &Counter::Principal, NONE);
        assert_eq!(
            moves.recalls,
            vec![(s1.clone(), Counter::Principal, 275_00)]
        );
        apply(&mut w, &hq, &moves);
        // A payment at another store is granted from the pool, whatever S001 is doing.
        let plan = policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 30_00)], NONE);
        assert_eq!(plan, AskPlan::Grant(vec![(Counter::Principal, 30_00)]));
        // More than the pool holds needs S001, which is switched off.
        let plan = policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 300_00)], NONE);
        assert_eq!(plan, AskPlan::Unreachable(vec![s1.clone()]));
        let plan = policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 300_00)], ALL);
        assert_eq!(
            plan,
            AskPlan::Recall(vec![(s1.clone(), Counter::Principal, 25_00)])
        );
    }

    #[test]
    fn a_grant_places_up_to_the_share_but_keeps_the_reserve() {
        let (s1, s2, _, hq) = stores();
        let policy = Policy {
            reserve_percent: 50,
        };
        let mut w = Wallet::default();
        w.top_up(&s1, 100_00, 0).unwrap();
        w.move_rights(&s1, &hq, &Counter::Principal, 100_00)
            .unwrap();
        w.move_rights(&hq, &s2, &Counter::Principal, 10_00).unwrap();
        w.pay(&s2, 10_00, BonusUse::Proportional).unwrap();
        // 90 left, all at headquarters; S002 spends everything so its share is 45. An ask for
        // 5 is granted 45 (its share); the other 45 stay in reserve.
        let plan = policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 5_00)], ALL);
        assert_eq!(plan, AskPlan::Grant(vec![(Counter::Principal, 45_00)]));
        // An ask for more than the share still gets what it asked, from the reserve.
        let plan = policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 80_00)], ALL);
        assert_eq!(plan, AskPlan::Grant(vec![(Counter::Principal, 80_00)]));
    }

    #[test]
    fn rebalancing_moves_rights_toward_the_stores_that_spend_and_then_rests() {
        let (s1, s2, s3, hq) = stores();
        let policy = Policy::default();
        let mut w = Wallet::default();
        w.top_up(&s1, 400_00, 0).unwrap();
        w.pay(&s1, 50_00, BonusUse::Proportional).unwrap();
        w.move_rights(&s1, &hq, &Counter::Principal, 150_00)
            .unwrap();
        w.move_rights(&hq, &s2, &Counter::Principal, 50_00).unwrap();
        w.pay(&s2, 50_00, BonusUse::Proportional).unwrap();
        w.move_rights(&hq, &s3, &Counter::Principal, 1_00).unwrap();
        for _ in 0..4 {
            let moves = policy.rebalance(&w, &hq, &Counter::Principal, NONE);
            apply(&mut w, &hq, &moves);
        }
        // 300 left: 75 in reserve, 112.50 each for S001 and S002 (they spent alike), less
        // the 1 S003 holds: it never spent, and a move of 1 is under a twentieth of the
        // balance, not worth an entry.
        let held = |s: &StoreId| w.held(&Counter::Principal, s);
        assert_eq!(held(&hq), 75_00);
        assert_eq!((held(&s1), held(&s2), held(&s3)), (112_50, 111_50, 1_00));
        assert_eq!(
            policy.rebalance(&w, &hq, &Counter::Principal, NONE),
            Moves::default()
        );
        let total: u64 = [&hq, &s1, &s2, &s3].iter().map(|s| held(s)).sum();
        assert_eq!(total, w.balance(&Counter::Principal));
    }

    #[test]
    fn without_a_reserve_a_spend_elsewhere_recalls_as_before() {
        let (s1, s2, _, hq) = stores();
        let mut w = Wallet::default();
        w.top_up(&s1, 100_00, 0).unwrap();
        assert_eq!(
            NO_RESERVE.rebalance(&w, &hq, &Counter::Principal, NONE),
            Moves::default()
        );
        assert_eq!(
            NO_RESERVE.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 10_00)], ALL),
            AskPlan::Recall(vec![(s1, Counter::Principal, 10_00)])
        );
    }

    #[test]
    fn a_coupon_stays_where_it_was_issued() {
        let (s1, _, _, hq) = stores();
        let mut w = Wallet::default();
        let coupon = Counter::Uses {
            card: crate::SaleId::for_entry(&s1, 3),
        };
        w.counters
            .entry(coupon.clone())
            .or_default()
            .credit(&s1, 1)
            .unwrap();
        assert_eq!(
            Policy::default().rebalance(&w, &hq, &coupon, NONE),
            Moves::default()
        );
    }

    #[test]
    fn a_policy_keeps_something_at_the_stores() {
        assert!(Policy::default().check().is_ok());
        let all = Policy {
            reserve_percent: 100,
        };
        assert!(all.check().unwrap_err().contains("at most 90"));
    }

    #[test]
    fn overdraft_debts_are_set_aside_for_their_lenders() {
        let (s1, s2, s3, hq) = stores();
        let mut w = Wallet::default();
        w.top_up(&s1, 5000_00, 2000_00).unwrap();
        let (_, forfeited) = w.refund(&s1, 2500_00).unwrap();
        assert_eq!(forfeited, 1000_00);
        // Money owed to a store for an offline overdraft is set aside: neither refunded nor
        // granted to another store.
        w.owed.insert(s2, (1000_00, 0));
        assert!(matches!(
            w.refund(&s1, 1500_01),
            Err(WalletError::Insufficient { .. })
        ));
        let policy = Policy::default();
        assert!(matches!(
            policy.plan_ask(&w, &hq, &s3, &[(Counter::Principal, 1500_01)], ALL),
            AskPlan::Refuse(_)
        ));
        assert!(matches!(
            policy.plan_ask(&w, &hq, &s3, &[(Counter::Principal, 1500_00)], ALL),
            AskPlan::Recall(_)
        ));
    }

    /// The tester's case: 150 placed 50/50/50, two stores cut off each lend 40 beyond their 50.
    /// The 50 left pays the first lender in full and the second in part, at once; before, each
    /// lender's ask was refused as long as the balance could not pay both.
    #[test]
    fn overdrafts_are_collected_in_part_when_the_balance_cannot_pay_every_lender() {
        let (s1, s2, s3, hq) = stores();
        let policy = NO_RESERVE;
        let mut w = Wallet::default();
        w.top_up(&s3, 50_00, 0).unwrap();
        w.owed.insert(s1.clone(), (40_00, 0));
        w.owed.insert(s2.clone(), (40_00, 0));
        assert_eq!(
            (w.collectable_at(&s1), w.collectable_at(&s2)),
            (40_00, 10_00)
        );
        assert!(matches!(
            policy.plan_ask(&w, &hq, &s1, &[(Counter::Principal, 40_00)], ALL),
            AskPlan::Recall(_)
        ));
        assert!(matches!(
            policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 40_00)], ALL),
            AskPlan::Refuse(_)
        ));
        // S001 collects its 40; what is left goes to S002, and nobody else may take it.
        w.move_rights(&s3, &hq, &Counter::Principal, 40_00).unwrap();
        w.move_rights(&hq, &s1, &Counter::Principal, 40_00).unwrap();
        w.pay(&s1, 40_00, BonusUse::Proportional).unwrap();
        w.owed.insert(s1.clone(), (40_00, 40_00));
        assert_eq!((w.collectable_at(&s1), w.collectable_at(&s2)), (0, 10_00));
        assert!(matches!(
            policy.plan_ask(&w, &hq, &s2, &[(Counter::Principal, 10_00)], ALL),
            AskPlan::Recall(_)
        ));
        assert_eq!(w.stored_value_free(), 0);
    }

    /// Headquarters spending itself calls back from the largest reachable holders what its
    /// pool lacks, or names the holders it cannot reach.
    #[test]
    fn headquarters_gathers_what_its_pool_lacks_from_reachable_holders() {
        let (hq, s001, s002) = (
            StoreId::hq(),
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
        );
        let pts = Counter::Points { year: 2026 };
        let mut wallet = Wallet::default();
        wallet.earn_points(&s001, 2026, 300).unwrap();
        wallet.earn_points(&s002, 2026, 100).unwrap();
        let want = [(pts.clone(), 350)];
        match plan_gather(&wallet, &hq, &want, |_| true) {
            AskPlan::Recall(r) => assert_eq!(
                r,
                vec![
                    (s001.clone(), pts.clone(), 300),
                    (s002.clone(), pts.clone(), 50)
                ]
            ),
            other => panic!("{other:?}"),
        }
        let away = plan_gather(&wallet, &hq, &want, |s| *s != s002);
        assert_eq!(away, AskPlan::Unreachable(vec![s002.clone()]));
        let too_much = plan_gather(&wallet, &hq, &[(pts, 401)], |_| true);
        assert!(matches!(too_much, AskPlan::Refuse(_)));
    }
}
