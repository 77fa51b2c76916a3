//! `ops bench replay`: a year of real shopping (The Complete Journey: 2,469 households, 457
//! stores) replayed as stored-value payments against the wallet rules of `protocol` and the
//! hub's own rights bank (`protocol::bank::Policy`: the reserve headquarters keeps, placement,
//! asks), to measure how often a payment needs headquarters, how often it needs another store
//! (a recall, which fails while that store is switched off), and how often it still succeeds
//! when headquarters is down.
//!
//! The data has no stored value, so the replay adds it, seeded and repeatable: every basket is
//! paid from stored value; when a member's balance does not cover a basket, they top up at that
//! store first (the smallest of 200, 500, 1000 or 2000 yuan that covers it, one tier more with
//! probability ½ from the seeded generator; 500 and up earn a bonus of 8%). Baskets of 0.00 are
//! counted and skipped (nothing to pay). Every replica's copy of a wallet is the same here,
//! which is exact for what a store may spend: its rights depend only on its own writes and on
//! transfers it was sent.

// Amounts in fen are written yuan_fen (500_00 is 500 yuan).
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use protocol::StoreId;
use protocol::bank::{AskPlan, Policy};
use protocol::wallet::{BonusUse, Counter, Wallet, WalletError};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rust_decimal::Decimal;

use super::{Figure, machine};

struct Basket {
    household: u32,
    store: u32,
    week: u32,
    fen: u64,
}

fn read_baskets(data: &Path) -> anyhow::Result<(Vec<Basket>, u64, u64)> {
    let (mut reader, column) = ops::replay::transactions(data)?;
    let (household, store, basket, value, week) = (
        column("household_id")?,
        column("store_id")?,
        column("basket_id")?,
        column("sales_value")?,
        column("week")?,
    );
    let mut baskets: Vec<Basket> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut lines = 0u64;
    for record in reader.records() {
        let record = record?;
        lines += 1;
        let field = |i: usize| record.get(i).unwrap_or("");
        let id: u64 = field(basket).parse()?;
        let value: Decimal = field(value).parse()?;
        let fen = u64::try_from((value * Decimal::ONE_HUNDRED).trunc())
            .with_context(|| format!("sales_value {value}"))?;
        let at = *index.entry(id).or_insert_with(|| {
            baskets.push(Basket {
                household: field(household).parse().unwrap_or(0),
                store: field(store).parse().unwrap_or(0),
                week: field(week).parse().unwrap_or(0),
                fen: 0,
            });
            baskets.len() - 1
        });
        baskets[at].fen += fen;
    }
    let empty = baskets.iter().filter(|b| b.fen == 0).count() as u64;
    baskets.retain(|b| b.fen > 0);
    Ok((baskets, lines, empty))
}

#[derive(Default, Debug)]
struct Tally {
    spends: u64,
    /// Served from rights the store held: no round trip.
    local: u64,
    /// Served after headquarters granted rights from its pool: one round trip.
    asked: u64,
    /// Served after headquarters recalled rights from other stores first: would have failed
    /// had those stores been switched off, but for the overdraft (`lendable`).
    recalled: u64,
    lendable: u64,
    /// Refused: the rights were elsewhere and headquarters was down.
    failed: u64,
    top_ups: u64,
    placements: u64,
    /// Misses (asked or failed) at a store where the member had never paid before.
    missed_first_visit: u64,
}

impl Tally {
    fn served(&self) -> u64 {
        self.local + self.asked + self.recalled
    }

    /// Served without waiting on another store: locally or from headquarters' pool.
    fn without_recall(&self) -> u64 {
        self.local + self.asked
    }
}

/// How a payment was served with the hub up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Local,
    /// Granted from headquarters' pool: one round trip.
    Pool,
    /// Recalled from other stores first; `lendable`: had they been switched off, the
    /// store's offline overdraft would have covered the payment instead.
    Recalled {
        lendable: bool,
    },
}

/// Moves rights as headquarters would: grant from its pool, or recall from the holders (all
/// reachable: the hub is up and so are the stores) and then grant.
fn serve(
    policy: &Policy,
    wallet: &mut Wallet,
    hq: &StoreId,
    store: &StoreId,
    wants: &[(Counter, u64)],
) -> Option<Served> {
    let mut served = Served::Pool;
    let lendable = false;
    for _ in 0..2 {
        match policy.plan_ask(wallet, hq, store, wants, |_| true) {
            AskPlan::Grant(grants) => {
                for (counter, units) in grants {
                    if units > 0 && wallet.move_rights(hq, store, &counter, units).is_err() {
                        return None;
                    }
                }
                return Some(served);
            }
            AskPlan::Recall(recalls) => {
                for (holder, counter, units) in recalls {
                    wallet.move_rights(&holder, hq, &counter, units).ok()?;
                }
                served = Served::Recalled { lendable };
            }
            AskPlan::Refuse(_) | AskPlan::Unreachable(_) => return None,
        }
    }
    None
}

/// Headquarters restores its reserve and each store's share after a change, as the hub's
/// `rebalance` does: every store is online, so recalls are answered at once, and what they
/// bring is placed in the next round (at the hub, when the hand-back arrives).
fn rebalance(policy: &Policy, wallet: &mut Wallet, hq: &StoreId, placements: &mut u64) {
    for counter in [Counter::Principal, Counter::Bonus] {
        for _ in 0..3 {
            let moves = policy.rebalance(wallet, hq, &counter, |_| false);
            if moves == Default::default() {
                break;
            }
            for (holder, counter, units) in &moves.recalls {
                let _ = wallet.move_rights(holder, hq, counter, *units);
            }
            for (store, counter, units) in &moves.grants {
                if wallet.move_rights(hq, store, counter, *units).is_ok() {
                    *placements += 1;
                }
            }
        }
    }
}

struct Scenario {
    /// Headquarters is down in these weeks (inclusive); up before and after.
    down: (u32, u32),
    /// Only spends in these weeks (inclusive) are counted.
    measured: (u32, u32),
    /// The chain's offline overdraft per member and store, in fen (0: refuse).
    overdraft: u64,
    /// The same, for a store whose payment's rights are at stores switched off (with the hub
    /// up): whether it would have covered a payment that needed a recall.
    lend_cap: u64,
}

fn store_id(n: u32) -> StoreId {
    StoreId::parse(&format!("S{n:04}")).unwrap_or_else(|_| StoreId::hq())
}

fn replay(
    policy: &Policy,
    baskets: &[Basket],
    scenario: &Scenario,
    seed: u64,
    regular: &dyn Fn(u32, u32) -> bool,
) -> (Tally, Tally) {
    let hq = StoreId::hq();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wallets: HashMap<u32, Wallet> = HashMap::new();
    let mut stores: HashMap<u32, StoreId> = HashMap::new();
    let (mut all, mut regulars) = (Tally::default(), Tally::default());
    for b in baskets {
        let hub_up = !(scenario.down.0..=scenario.down.1).contains(&b.week);
        let measured = (scenario.measured.0..=scenario.measured.1).contains(&b.week);
        let store = stores
            .entry(b.store)
            .or_insert_with(|| store_id(b.store))
            .clone();
        let wallet = wallets.entry(b.household).or_default();
        if hub_up && wallet.owed_total() > 0 {
            collect(policy, wallet, &hq);
        }
        let balance = (wallet.balance(&Counter::Principal) + wallet.balance(&Counter::Bonus))
            .saturating_sub(wallet.owed_total());
        if balance < b.fen {
            let short = b.fen - balance;
            let tiers = [200_00u64, 500_00, 1000_00, 2000_00];
            let at = tiers
                .iter()
                .position(|t| *t >= short)
                .unwrap_or(tiers.len());
            let at = (at + usize::from(rng.random_bool(0.5))).min(tiers.len());
            let paid = tiers
                .get(at)
                .copied()
                .unwrap_or(short.div_ceil(100_00) * 100_00);
            let bonus = if paid >= 500_00 { paid * 8 / 100 } else { 0 };
            if wallet.top_up(&store, paid, bonus).is_err() {
                continue;
            }
            all.top_ups += 1;
            if hub_up {
                // Headquarters keeps its reserve and places the rest where the member shops.
                rebalance(policy, wallet, &hq, &mut all.placements);
            }
        }
        let first_visit = wallet
            .counters
            .get(&Counter::Principal)
            .is_none_or(|r| r.debited(&store) == 0);
        let mut outcome = pay_and_place(
            policy,
            wallet,
            &hq,
            &store,
            b.fen,
            hub_up.then_some(scenario.lend_cap),
            &mut all.placements,
        );
        if outcome.is_none() && !hub_up && scenario.overdraft > 0 {
            outcome = overdraft(wallet, &store, b.fen, scenario.overdraft).then_some(Served::Local);
        }
        if measured && outcome != Some(Served::Local) && first_visit {
            all.missed_first_visit += 1;
        }
        if !measured {
            continue;
        }
        let is_regular = regular(b.household, b.store);
        for t in [Some(&mut all), is_regular.then_some(&mut regulars)]
            .into_iter()
            .flatten()
        {
            t.spends += 1;
            match outcome {
                Some(Served::Local) => t.local += 1,
                Some(Served::Pool) => t.asked += 1,
                Some(Served::Recalled { lendable }) => {
                    t.recalled += 1;
                    t.lendable += u64::from(lendable);
                }
                None => t.failed += 1,
            }
        }
    }
    (all, regulars)
}

/// Pays; with the hub up (`lend_cap`: the overdraft the store would lend were the holders
/// switched off), a miss is an ask, and after the spend headquarters rebalances.
fn pay_and_place(
    policy: &Policy,
    wallet: &mut Wallet,
    hq: &StoreId,
    store: &StoreId,
    fen: u64,
    hub_up: Option<u64>,
    placements: &mut u64,
) -> Option<Served> {
    let outcome = match wallet.pay(store, fen, BonusUse::Proportional) {
        Ok(_) => Some(Served::Local),
        Err(WalletError::RightsElsewhere { wants }) if let Some(overdraft_cap) = hub_up => {
            let held =
                wallet.held(&Counter::Principal, store) + wallet.held(&Counter::Bonus, store);
            let lendable = fen.saturating_sub(held) + wallet.owed_at(store) <= overdraft_cap;
            let served = match serve(policy, wallet, hq, store, &wants)? {
                Served::Recalled { .. } => Served::Recalled { lendable },
                served => served,
            };
            wallet
                .pay(store, fen, BonusUse::Proportional)
                .is_ok()
                .then_some(served)
        }
        Err(_) => None,
    };
    if hub_up.is_some() {
        rebalance(policy, wallet, hq, placements);
    }
    outcome
}

/// Offline with the rights elsewhere: pay what the store holds, owe the rest within the cap.
fn overdraft(wallet: &mut Wallet, store: &StoreId, fen: u64, cap: u64) -> bool {
    let held = wallet.held(&Counter::Principal, store) + wallet.held(&Counter::Bonus, store);
    let owed = fen.saturating_sub(held);
    if owed + wallet.owed_at(store) > cap {
        return false;
    }
    if held > 0 && wallet.pay(store, held, BonusUse::Proportional).is_err() {
        return false;
    }
    wallet.owed.entry(store.clone()).or_default().0 += owed;
    true
}

/// Headquarters is back: each store collects what the member owes it, as far as the balance goes.
fn collect(policy: &Policy, wallet: &mut Wallet, hq: &StoreId) {
    let lenders: Vec<StoreId> = wallet.owed.keys().cloned().collect();
    for store in lenders {
        let balance = wallet.balance(&Counter::Principal) + wallet.balance(&Counter::Bonus);
        let amount = wallet.owed_at(&store).min(balance);
        if amount == 0 {
            continue;
        }
        let paid = match wallet.pay(&store, amount, BonusUse::Proportional) {
            Ok(_) => true,
            Err(WalletError::RightsElsewhere { wants }) => {
                serve(policy, wallet, hq, &store, &wants).is_some()
                    && wallet.pay(&store, amount, BonusUse::Proportional).is_ok()
            }
            Err(_) => false,
        };
        if paid {
            wallet.owed.entry(store).or_default().1 += amount;
        }
    }
}

fn pct(part: u64, whole: u64) -> String {
    format!("{:.2}%", 100.0 * part as f64 / whole.max(1) as f64)
}

pub fn run(
    data: &Path,
    learn_weeks: u32,
    seed: u64,
    overdraft_cap: u64,
    reserve_percent: u8,
) -> anyhow::Result<()> {
    let policy = Policy { reserve_percent };
    policy.check().map_err(anyhow::Error::msg)?;
    println!("machine: {}", machine());
    let started = Instant::now();
    let (baskets, lines, empty) = read_baskets(data)?;
    println!(
        "read {lines} lines into {} baskets with something to pay ({empty} baskets of 0.00 skipped) in {:.1?}",
        baskets.len(),
        started.elapsed()
    );
    // A store is one of a member's regulars if it had at least a fifth of their baskets in the
    // learning weeks.
    let mut visits: HashMap<(u32, u32), u64> = HashMap::new();
    let mut totals: HashMap<u32, u64> = HashMap::new();
    for b in baskets.iter().filter(|b| b.week <= learn_weeks) {
        *visits.entry((b.household, b.store)).or_default() += 1;
        *totals.entry(b.household).or_default() += 1;
    }
    let regular = |h: u32, s: u32| {
        let mine = visits.get(&(h, s)).copied().unwrap_or(0);
        mine * 5 >= totals.get(&h).copied().unwrap_or(u64::MAX) && mine > 0
    };
    let started = Instant::now();
    let last_week = baskets.iter().map(|b| b.week).max().unwrap_or(0);
    let after_learning = (learn_weeks + 1, last_week);
    println!(
        "| headquarters' reserve (hub up, weeks {}–{last_week}) | no round trip | one round trip: granted from the pool | needed a recall from another store | served without waiting on another store (all / regular) | the holders switched off: served with an overdraft ≤ {} yuan |",
        learn_weeks + 1,
        overdraft_cap / 100
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for reserve_percent in [0, 10, 25, 50] {
        let compared = Policy { reserve_percent };
        let scenario = Scenario {
            down: (0, 0),
            measured: after_learning,
            overdraft: 0,
            lend_cap: overdraft_cap,
        };
        let (up, regular) = replay(&compared, &baskets, &scenario, seed, &regular);
        println!(
            "| {reserve_percent}% | {} | {} | {} | {} / {} | {} |",
            pct(up.local, up.spends),
            pct(up.asked, up.spends),
            pct(up.recalled, up.spends),
            pct(up.without_recall(), up.spends),
            pct(regular.without_recall(), regular.spends),
            pct(up.without_recall() + up.lendable, up.spends)
        );
    }
    println!();
    let (up, up_regular) = replay(
        &policy,
        &baskets,
        &Scenario {
            down: (0, 0),
            measured: after_learning,
            overdraft: 0,
            lend_cap: overdraft_cap,
        },
        seed,
        &regular,
    );
    println!("hub up: {up:?}");
    println!();
    println!(
        "| stored-value spends in weeks {}–{last_week} (seed {seed}) | spends | ours | baseline: loyalty off when offline |",
        learn_weeks + 1
    );
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| hub up: served from rights already at the store (no round trip) | {} | {} | — |",
        up.spends,
        pct(up.local, up.spends)
    );
    println!(
        "| hub up, at the member's regular stores: no round trip | {} | {} | — |",
        up_regular.spends,
        pct(up_regular.local, up_regular.spends)
    );
    let share = |n: u64, of: u64| n as f64 / of.max(1) as f64;
    Figure::new(
        "stored-value spends with no hub round trip (year replay, hub up)",
        format!(
            "{} (at regular stores {})",
            pct(up.local, up.spends),
            pct(up_regular.local, up_regular.spends)
        ),
    )
    .baseline("0% central server: every spend asks it", "—")
    .goal("≥ 95%", share(up.local, up.spends) >= 0.95)
    .record()?;
    println!(
        "| hub up: served without waiting on another store (no round trip, or granted from headquarters' reserve) | {} | {} | — |",
        up.spends,
        pct(up.without_recall(), up.spends)
    );
    Figure::new(
        format!(
            "stored-value spends served without another store (year replay, hub up, reserve {reserve_percent}%)"
        ),
        pct(up.without_recall(), up.spends),
    )
    .baseline("a recall from the holding store for every spend elsewhere (reserve 0%)", "—")
    .goal("≥ 99%", share(up.without_recall(), up.spends) >= 0.99)
    .record()?;
    for (weeks, overdraft) in [
        (1, 0),
        (1, overdraft_cap),
        (4, 0),
        (4, overdraft_cap),
        (last_week - learn_weeks, 0),
        (last_week - learn_weeks, overdraft_cap),
    ] {
        let outage = (learn_weeks + 1, learn_weeks + weeks);
        let scenario = Scenario {
            down: outage,
            measured: outage,
            overdraft,
            lend_cap: overdraft,
        };
        let (down, down_regular) = replay(&policy, &baskets, &scenario, seed, &regular);
        let policy = match overdraft {
            0 => "refuse".to_owned(),
            cap => format!("overdraft ≤ {} yuan", cap / 100),
        };
        println!(
            "| hub down for {weeks} week(s) from week {} ({policy}): spends that succeed anyway (all / at regular stores) | {} / {} | {} / {} | 0% |",
            outage.0,
            down.spends,
            down_regular.spends,
            pct(down.served(), down.spends),
            pct(down_regular.served(), down_regular.spends)
        );
        Figure::new(
            format!(
                "stored-value spends that succeed, hub down {weeks} week(s), {policy} (all / \
                 regular stores)"
            ),
            format!(
                "{} / {}",
                pct(down.served(), down.spends),
                pct(down_regular.served(), down_regular.spends)
            ),
        )
        .baseline("0% loyalty off when offline; 0% central server", "—")
        .goal(
            "≥ 99% at regular stores",
            share(down_regular.served(), down_regular.spends) >= 0.99,
        )
        .record()?;
    }
    println!(
        "\n(regular store: at least a fifth of the member's baskets in weeks 1–{learn_weeks}; replays took {:.1?})",
        started.elapsed()
    );
    Ok(())
}
