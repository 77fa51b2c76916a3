//! Crash test: a node under checkout load is killed with SIGKILL at random moments, many times.
//! Afterwards every acknowledged sale must be present exactly once, every unacknowledged one
//! must be retryable without selling twice, and the views must equal a rebuild from the log.
//!
//! Seeded: `CRASH_SEED=<n>` replays a run's kill timings and amounts; `CRASH_ROUNDS` sets how many kills.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tests::{Client, NodeProcess, TempDir};

const TILLS: usize = 4;

struct Attempt {
    key: String,
    body: String,
    amount_fen: i64,
    /// The sale id if the node acknowledged the sale.
    acked: Option<String>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_store-node"))
}

/// One till ringing up sales as fast as it can until told to stop or the node dies.
fn till(
    client: Client,
    member: String,
    round: u64,
    till: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Attempt> {
    let mut rng = StdRng::seed_from_u64(seed ^ (round << 8) ^ till as u64);
    let mut attempts = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let amount_fen: i64 = rng.random_range(1..100_000);
        let amount = format!("{}.{:02}", amount_fen / 100, amount_fen % 100);
        let key = format!("crash-r{round:03}-t{till}-{n:06}");
        let body = json!({"member_id": member, "amount": {"amount": amount}}).to_string();
        let answer = client.try_post("/api/v1/checkouts/quick", Some(&key), &body);
        let failed = answer.is_err();
        let acked = answer
            .ok()
            .filter(|a| a.status == 201)
            .map(|a| a.body["sale_id"].as_str().unwrap().to_owned());
        attempts.push(Attempt {
            key,
            body,
            amount_fen,
            acked,
        });
        if failed {
            break; // the node is gone
        }
    }
    attempts
}

#[test]
fn every_acknowledged_sale_survives_sigkill_exactly_once() {
    let seed = env_u64("CRASH_SEED", 20261123);
    let rounds = env_u64("CRASH_ROUNDS", 12);
    println!("crash test: CRASH_SEED={seed} CRASH_ROUNDS={rounds}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = TempDir::new("crash");
    let config_path = dir.path().join("node.toml");
    let config = node::Config {
        data_dir: dir.path().join("data"),
        open_before_logins: true,
        ..node::Config::default()
    };
    std::fs::write(&config_path, config.to_toml()).unwrap();

    let first = NodeProcess::spawn(binary(), &config_path);
    let body = json!({"name": "压力测试", "phone": "13800000000"}).to_string();
    let member = first
        .client
        .post("/api/v1/members", Some("crash-member-0001"), &body);
    assert_eq!(member.status, 201);
    let member = member.body["member_id"].as_str().unwrap().to_owned();
    first.kill();

    let mut attempts = Vec::new();
    for round in 0..rounds {
        let node = NodeProcess::spawn(binary(), &config_path);
        let stop = Arc::new(AtomicBool::new(false));
        let tills: Vec<_> = (0..TILLS)
            .map(|t| {
                let (client, member, stop) = (node.client.clone(), member.clone(), stop.clone());
                std::thread::spawn(move || till(client, member, round, t, seed, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for t in tills {
            attempts.extend(t.join().unwrap());
        }
    }
    let acked = attempts.iter().filter(|a| a.acked.is_some()).count();
    println!(
        "{} attempts, {acked} acknowledged, over {rounds} kills",
        attempts.len()
    );
    assert!(
        acked > rounds as usize,
        "too few sales were acknowledged to prove anything"
    );

    let node = NodeProcess::spawn(binary(), &config_path);
    let c = &node.client;
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for a in &attempts {
        let answer = c.post("/api/v1/checkouts/quick", Some(&a.key), &a.body);
        assert_eq!(
            answer.status, 201,
            "retrying {} failed: {:?}",
            a.key, answer.body
        );
        let sale_id = answer.body["sale_id"].as_str().unwrap().to_owned();
        if let Some(acked_id) = &a.acked {
            assert!(answer.replayed, "acknowledged sale {} was lost", a.key);
            assert_eq!(&sale_id, acked_id, "{} answered with another sale", a.key);
        }
        assert_eq!(
            answer.body["amount"]["amount"],
            json!(format!("{}.{:02}", a.amount_fen / 100, a.amount_fen % 100))
        );
        assert!(
            expected.insert(sale_id, a.amount_fen).is_none(),
            "two keys got one sale"
        );
    }

    let listed = c.get(&format!("/api/v1/members/{member}/sales?limit=10000"));
    let sales = listed.body["sales"].as_array().unwrap();
    let ids: BTreeSet<_> = sales
        .iter()
        .map(|s| s["sale_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), sales.len(), "a sale is listed twice");
    assert_eq!(
        ids,
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        "the log holds sales nobody asked for"
    );
    let points: i64 = sales
        .iter()
        .map(|s| s["points_earned"].as_i64().unwrap())
        .sum();
    assert_eq!(
        c.get(&format!("/api/v1/members/{member}")).body["points"],
        json!(points)
    );
    assert_eq!(
        c.get("/api/v1/health").body["log_entries"],
        json!(1 + expected.len())
    );
    node.kill();

    let verify = std::process::Command::new(binary())
        .args(["verify", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "views differ from a rebuild: {report}"
    );
    println!("rebuild after crashes: {report}");
}
