//! `ops bench checkout`: durable quick checkouts through the node core (group commit) next to raw sled
//! writing the same records in the same run, and single-till latency through the HTTP API next
//! to a read-only request. Prints a Markdown table for BENCHMARKS.md.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use node::journal::{self, Command, Environment, Journal, NewMember, Outcome};
use node::store::{SledStore, Store};
use protocol::sale::QuickSaleRequest;
use protocol::{Currency, Money, Phone};

use super::{Figure, Scratch, machine, ms, percentile, ratio, request};

fn settings() -> anyhow::Result<journal::Settings> {
    node::Config::default().settings()
}

/// What the node core did: checkouts per second, and the shape of what it wrote per checkout.
struct CoreRun {
    checkouts: u64,
    elapsed: Duration,
    records_per_checkout: usize,
    key_bytes: usize,
    value_bytes: usize,
    latencies: Vec<Duration>,
}

fn node_core(dir: &Path, seconds: u64, tills: usize) -> anyhow::Result<CoreRun> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir)?);
    let journal = Journal::open(store.clone(), settings()?, Environment::system())?;
    let (handle, thread) = journal::spawn(journal);
    let runtime = tokio::runtime::Runtime::new()?;
    let (checkouts, elapsed, latencies) = runtime.block_on(async {
        let member = NewMember::named("压测会员", Phone::parse("13800000000")?);
        let reply = handle
            .send(Command::RegisterMember(request(
                "bench-member-0001".into(),
                member,
            )?))
            .await?;
        let Outcome::Member { member, .. } = reply.outcome else {
            anyhow::bail!("registration answered {reply:?}")
        };
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..tills)
            .map(|till| {
                let handle = handle.clone();
                let member_id = member.member_id;
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    for n in 0u64.. {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let amount = Money::new(
                            rust_decimal::Decimal::new(1_000 + n as i64 % 9_000, 2),
                            Currency::CNY,
                        );
                        let body = QuickSaleRequest {
                            member_id: Some(member_id),
                            amount,
                            category: None,
                            cash_tendered: None,
                            pay_with: Default::default(),
                            offline_overdraft: false,
                        };
                        let sent = Instant::now();
                        handle
                            .send(Command::QuickCheckout(request(
                                format!("bench-{till:03}-{n:09}"),
                                body,
                            )?))
                            .await?;
                        latencies.push(sent.elapsed());
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        anyhow::Ok((latencies.len() as u64, started.elapsed(), latencies))
    })?;
    drop(handle);
    let _ = thread.join();
    // What one checkout wrote: everything but the member's own records, divided by checkouts.
    let mut records = 0usize;
    let (mut key_bytes, mut value_bytes) = (0usize, 0usize);
    for prefix in [&b"log/"[..], b"s/", b"ms/", b"i/"] {
        for (k, v) in store.scan_prefix(prefix)? {
            records += 1;
            key_bytes += k.len();
            value_bytes += v.len();
        }
    }
    let per = checkouts.max(1) as usize;
    let records_per_checkout = (records / per).max(1) + 1; // + the points balance, overwritten in place
    Ok(CoreRun {
        checkouts,
        elapsed,
        records_per_checkout,
        key_bytes: key_bytes / records.max(1),
        value_bytes: value_bytes / records.max(1),
        latencies,
    })
}

/// Raw sled writing the same number and size of records per checkout, grouped the way the
/// journal groups them: one `apply_batch` + `flush` per `group` checkouts (group commit with
/// nothing else to do).
fn raw_sled_same_shape(
    dir: &Path,
    seconds: u64,
    group: usize,
    shape: &CoreRun,
) -> anyhow::Result<(u64, Duration)> {
    let db = sled::Config::new().path(dir).open()?;
    // The same durability as the node's store: sled's flush, then an fdatasync of its file.
    let log = node::store::sled_log(dir)?;
    let value = vec![0x5a; shape.value_bytes];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut checkouts = 0u64;
    while Instant::now() < deadline {
        let mut batch = sled::Batch::default();
        for _ in 0..group {
            for r in 0..shape.records_per_checkout {
                let mut key = format!("{r:02}/{checkouts:016}").into_bytes();
                key.resize(shape.key_bytes.max(19), b'k');
                batch.insert(key, value.clone());
            }
            checkouts += 1;
        }
        db.apply_batch(batch)?;
        db.flush()?;
        log.sync_data()?;
    }
    Ok((checkouts, started.elapsed()))
}

/// Raw sled's ceiling: 1,000 records per `apply_batch`, one `flush` each.
fn raw_sled_big_batches(
    dir: &Path,
    seconds: u64,
    shape: &CoreRun,
) -> anyhow::Result<(u64, Duration)> {
    let db = sled::Config::new().path(dir).open()?;
    // The same durability as the node's store: sled's flush, then an fdatasync of its file.
    let log = node::store::sled_log(dir)?;
    let value = vec![0x5a; shape.value_bytes];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut records = 0u64;
    while Instant::now() < deadline {
        let mut batch = sled::Batch::default();
        for _ in 0..1_000 {
            let mut key = format!("{records:016}").into_bytes();
            key.resize(shape.key_bytes.max(16), b'k');
            batch.insert(key, value.clone());
            records += 1;
        }
        db.apply_batch(batch)?;
        db.flush()?;
        log.sync_data()?;
    }
    Ok((records, started.elapsed()))
}

/// Single-till latency through HTTP on loopback: checkouts, and health reads as the floor;
/// with `/metrics` on (every request counted and timed) or off.
fn http_latency(
    dir: &Path,
    requests: usize,
    metrics: bool,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let config = node::Config {
        data_dir: dir.to_owned(),
        open_before_logins: true,
        metrics,
        // Every till of the bench is on this PC: one client address.
        http: protocol::web::HttpLimits {
            connections_per_address_max: protocol::web::HttpLimits::default().connections_max,
            ..Default::default()
        },
        ..node::Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(node::run(config, listener, async move {
        let _ = stopped.await;
    }));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let wait_until = Instant::now() + Duration::from_secs(10);
    while agent.get(format!("{base}/api/v1/health")).call().is_err() {
        anyhow::ensure!(Instant::now() < wait_until, "the node did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = r#"{"amount":{"amount":"18.80","currency":"CNY"}}"#;
    let mut checkouts = Vec::with_capacity(requests);
    let mut reads = Vec::with_capacity(requests);
    for n in 0..requests {
        let sent = Instant::now();
        let answer = agent
            .post(format!("{base}/api/v1/checkouts/quick"))
            .header("idempotency-key", format!("bench-http-{n:09}"))
            .header("content-type", "application/json")
            .send(body)?;
        anyhow::ensure!(
            answer.status().as_u16() == 201,
            "checkout answered {}",
            answer.status()
        );
        checkouts.push(sent.elapsed());
        let sent = Instant::now();
        agent.get(format!("{base}/api/v1/health")).call()?;
        reads.push(sent.elapsed());
    }
    let _ = stop.send(());
    runtime.block_on(server).context("node task")??;
    Ok((checkouts, reads))
}

pub fn run(seconds: u64, tills: usize, requests: usize) -> anyhow::Result<()> {
    println!(
        "machine: {} · {seconds}s per throughput run, {tills} tills",
        machine()
    );
    let core_dir = Scratch::new("core")?;
    let core = node_core(&core_dir.0, seconds, tills)?;
    let raw_dir = Scratch::new("raw")?;
    let (raw_checkouts, raw_elapsed) = raw_sled_same_shape(&raw_dir.0, seconds, tills, &core)?;
    let big_dir = Scratch::new("big")?;
    let (big_records, big_elapsed) = raw_sled_big_batches(&big_dir.0, seconds, &core)?;
    let http_dir = Scratch::new("http")?;
    let (mut checkouts, mut reads) = http_latency(&http_dir.0, requests, true)?;
    // The same with metrics off, for what counting and timing every request costs.
    let bare_dir = Scratch::new("bare")?;
    let (mut bare_checkouts, mut bare_reads) = http_latency(&bare_dir.0, requests, false)?;
    bare_checkouts.sort();
    bare_reads.sort();

    let core_rate = core.checkouts as f64 / core.elapsed.as_secs_f64();
    let raw_rate = raw_checkouts as f64 / raw_elapsed.as_secs_f64();
    let big_rate =
        big_records as f64 / big_elapsed.as_secs_f64() / core.records_per_checkout as f64;
    let mut core_latencies = core.latencies;
    core_latencies.sort();
    checkouts.sort();
    reads.sort();
    println!(
        "per checkout: {} records of ≈{} B key + {} B value\n",
        core.records_per_checkout, core.key_bytes, core.value_bytes
    );
    println!("| figure | ours | baseline (same run) | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| durable quick checkouts/s, node core, {tills} tills | {core_rate:.0} | {raw_rate:.0} (raw sled, same records, apply_batch + flush per {tills} checkouts) | {:.0}% |",
        100.0 * core_rate / raw_rate
    );
    println!(
        "| durable quick checkouts/s, node core, {tills} tills | {core_rate:.0} | {big_rate:.0} (raw sled ceiling: 1,000-record apply_batch + flush) | {:.0}% |",
        100.0 * core_rate / big_rate
    );
    println!(
        "| node core latency p50 / p99 under that load | {} / {} | — | — |",
        ms(percentile(&core_latencies, 0.5)),
        ms(percentile(&core_latencies, 0.99))
    );
    println!(
        "| single-till HTTP checkout p50 / p99 ({requests} requests) | {} / {} | {} / {} (GET /health on the same connection) | {:.1}× |",
        ms(percentile(&checkouts, 0.5)),
        ms(percentile(&checkouts, 0.99)),
        ms(percentile(&reads, 0.5)),
        ms(percentile(&reads, 0.99)),
        percentile(&checkouts, 0.5).as_secs_f64() / percentile(&reads, 0.5).as_secs_f64().max(1e-9)
    );
    let cost = |on: &[Duration], off: &[Duration]| {
        100.0
            * (percentile(on, 0.5).as_secs_f64() / percentile(off, 0.5).as_secs_f64().max(1e-9)
                - 1.0)
    };
    println!(
        "| single-till HTTP checkout p50 / p99, /metrics on | {} / {} | {} / {} (metrics off, same run) | {:+.1}% |",
        ms(percentile(&checkouts, 0.5)),
        ms(percentile(&checkouts, 0.99)),
        ms(percentile(&bare_checkouts, 0.5)),
        ms(percentile(&bare_checkouts, 0.99)),
        cost(&checkouts, &bare_checkouts)
    );
    println!(
        "| GET /health p50, /metrics on | {} | {} (metrics off, same run) | {:+.1}% |",
        ms(percentile(&reads, 0.5)),
        ms(percentile(&bare_reads, 0.5)),
        cost(&reads, &bare_reads)
    );
    Figure::new(
        "what /metrics costs a checkout (p50, on against off)",
        format!("{:+.1}%", cost(&checkouts, &bare_checkouts)),
    )
    .baseline(
        format!("{} with metrics off", ms(percentile(&bare_checkouts, 0.5))),
        format!("{:+.1}%", cost(&checkouts, &bare_checkouts)),
    )
    .goal("≤ 5%", cost(&checkouts, &bare_checkouts) <= 5.0)
    .record()?;
    Figure::new(
        format!("durable quick checkouts/s per node, core, {tills} tills"),
        format!("{core_rate:.0}"),
    )
    .baseline(
        format!(
            "{raw_rate:.0} raw sled, same records and grouping; {big_rate:.0} raw sled ceiling"
        ),
        format!(
            "{:.0}% / {:.0}%",
            100.0 * core_rate / raw_rate,
            100.0 * core_rate / big_rate
        ),
    )
    .goal("≥ 50% of raw sled", core_rate >= 0.5 * raw_rate)
    .record()?;
    Figure::new(
        format!("checkout latency p50 / p99 under {tills} tills, core"),
        format!(
            "{} / {}",
            ms(percentile(&core_latencies, 0.5)),
            ms(percentile(&core_latencies, 0.99))
        ),
    )
    .record()?;
    let (p50, p99) = (percentile(&checkouts, 0.5), percentile(&checkouts, 0.99));
    Figure::new(
        "single-till checkout p50 / p99, HTTP",
        format!("{} / {}", ms(p50), ms(p99)),
    )
    .baseline(
        format!(
            "{} / {} GET /health",
            ms(percentile(&reads, 0.5)),
            ms(percentile(&reads, 0.99))
        ),
        ratio(p50.as_secs_f64(), percentile(&reads, 0.5).as_secs_f64()),
    )
    .goal(
        "p50 ≤ 1 ms, p99 ≤ 5 ms",
        p50 <= Duration::from_millis(1) && p99 <= Duration::from_millis(5),
    )
    .record()?;
    Ok(())
}
