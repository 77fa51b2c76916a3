//! The seeded simulator of many stores and the hub with cut, stale and slow connections,
//! partitions and crashes (see `tests/src/sim/`). A failure names its seed;
//! `SIM_SEED=<n> cargo test -p tests --test simulator` replays exactly that run;
//! `SIM_SEEDS=<n>` runs seeds 0..n (300 by default, spread over the cores).
#![allow(clippy::print_stdout)]

use tests::sim::{Sim, SimConfig, WalletCounts};

const CONFIG: SimConfig = SimConfig {
    stores: 4,
    steps: 600,
    faults: 1.0,
};

fn run(seed: u64, config: SimConfig) -> (tests::sim::SimReport, WalletCounts) {
    let mut sim = Sim::new(seed, config);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.run();
        sim.check()
    }));
    match outcome {
        Ok(Ok(report)) => (report, sim.wallet_ops),
        Ok(Err(problem)) => panic!(
            "seed {seed}: {problem}\nreplay with SIM_SEED={seed}\nlast events: {:?}",
            tail(&sim.trace)
        ),
        Err(_) => panic!(
            "seed {seed} panicked (see above); replay with SIM_SEED={seed}\nlast events: {:?}",
            tail(&sim.trace)
        ),
    }
}

fn tail(trace: &[String]) -> &[String] {
    &trace[trace.len().saturating_sub(15)..]
}

#[test]
fn many_seeds_converge_with_nothing_lost_or_doubled() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        println!("{:?}", run(seed, CONFIG));
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    // Seeds are independent: run them on every core, each deterministic on its own.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    (w..seeds)
                        .step_by(workers as usize)
                        .map(|seed| run(seed, CONFIG))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut total = tests::sim::SimReport::default();
    let mut ops = WalletCounts::default();
    for (report, wallet) in results {
        total.entries += report.entries;
        total.members += report.members;
        total.feed += report.feed;
        total.wallets += report.wallets;
        total.store_crashes += report.store_crashes;
        total.hub_crashes += report.hub_crashes;
        total.dropped_links += report.dropped_links;
        total.refused += report.refused;
        total.fenced += report.fenced;
        total.taken_after_fence += report.taken_after_fence;
        total.stock_moves += report.stock_moves;
        total.erased += report.erased;
        total.listed += report.listed;
        ops.applied += wallet.applied;
        ops.asks += wallet.asks;
        ops.granted += wallet.granted;
        ops.unreachable += wallet.unreachable;
        ops.refused_rights_elsewhere += wallet.refused_rights_elsewhere;
        ops.refused_insufficient += wallet.refused_insufficient;
        ops.asks_beyond_heard += wallet.asks_beyond_heard;
        ops.granted_beyond_heard += wallet.granted_beyond_heard;
        ops.overdrafts += wallet.overdrafts;
        ops.item_sales += wallet.item_sales;
        ops.coupons_redeemed += wallet.coupons_redeemed;
        ops.gifts += wallet.gifts;
        ops.item_returns += wallet.item_returns;
        ops.item_returns_elsewhere += wallet.item_returns_elsewhere;
        ops.waited_for_history += wallet.waited_for_history;
        ops.refused_not_here += wallet.refused_not_here;
        ops.backfills += wallet.backfills;
    }
    println!(
        "{seeds} seeds × {} steps, violations 0: {total:?}\nwallet operations: {ops:?}",
        CONFIG.steps
    );
    assert!(
        ops.applied > seeds * 20
            && ops.granted > 0
            && (ops.unreachable > 0 || seeds < 10)
            && ops.refused_insufficient > 0
            && (ops.granted_beyond_heard > 0 || seeds < 10)
            && (ops.overdrafts > 0 || seeds < 10)
            && (ops.item_sales > 0 || seeds < 10)
            && (ops.coupons_redeemed > 0 || seeds < 10)
            && (ops.gifts > 0 || seeds < 10)
            && (ops.item_returns_elsewhere > 0 || seeds < 10)
            && ops.backfills > 0
            && (ops.waited_for_history > 0 || seeds < 10)
            && (ops.refused_not_here > 0 || seeds < 10),
        "the wallet workload did too little to prove anything: {ops:?}"
    );
    assert!(
        total.store_crashes > 0
            && total.hub_crashes > 0
            && total.dropped_links > seeds
            && (total.fenced > 0 || seeds < 10)
            && (total.taken_after_fence > 0 || seeds < 10)
            && total.stock_moves > seeds * 5
            && (total.erased > 0 || seeds < 10)
            && total.listed > 0,
        "too few faults: {total:?}"
    );
    assert!(
        total.entries > seeds * 200,
        "the workload wrote too little to prove anything"
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = SimConfig {
        steps: 300,
        ..CONFIG
    };
    let (mut a, mut b) = (Sim::new(7, config), Sim::new(7, config));
    a.run();
    b.run();
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.check(), b.check());
}

#[test]
fn a_perfect_network_needs_no_faults_to_converge() {
    let (report, wallet) = run(
        1,
        SimConfig {
            faults: 0.0,
            ..CONFIG
        },
    );
    assert!(report.members > 0 && report.feed > 0 && report.wallets > 0);
    assert!(report.listed > 0, "{report:?}");
    assert!(wallet.granted > 0, "{wallet:?}");
}
