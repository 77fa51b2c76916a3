//! `ops bench central`: the central-server baseline. The same quick checkout a store makes —
//! find the member by phone, earn points, take the amount off their stored value, write the
//! sale under its idempotency key, durable before the answer — as one transaction in a local
//! PostgreSQL (Debian's package, installed if missing, started on loopback and stopped after),
//! which is how a SaaS headquarters database does it; then the same through our delaying TCP
//! proxy with a 30 ms round trip, which is what a branch on a real WAN would feel. Beside it,
//! our node doing the same checkout over HTTP with headquarters unreachable all along. Last,
//! what succeeds with headquarters down: the central server is stopped and tried again.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use hub::storage::pg::scratch::{Postgres, checked};
use serde_json::json;

use super::wallet::Till;
use super::{Figure, Scratch, machine, ms, percentile, ratio};

/// Members in the central database (the phone index is what a lookup walks).
const PG_MEMBERS: u32 = 100_000;

/// Tills checking out at once, for the throughput rows.
const TILLS: usize = 64;

const SCHEMA: &str = r#"
CREATE TABLE members (
    id bigserial PRIMARY KEY,
    phone text NOT NULL UNIQUE,
    points bigint NOT NULL DEFAULT 0,
    balance numeric(14, 2) NOT NULL DEFAULT 0
);
CREATE TABLE sales (
    key text PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES members,
    amount numeric(14, 2) NOT NULL,
    points bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
-- One round trip per checkout: the application's transaction as a function, the best case for
-- a central server (a client sending each statement would pay one round trip per statement).
CREATE FUNCTION checkout(p_key text, p_phone text, p_amount numeric) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    m_id bigint;
    m_balance numeric;
    earned bigint := floor(p_amount);
BEGIN
    SELECT id, balance INTO m_id, m_balance FROM members WHERE phone = p_phone FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown member %', p_phone;
    END IF;
    IF m_balance < p_amount THEN
        RAISE EXCEPTION 'balance too low';
    END IF;
    INSERT INTO sales (key, member_id, amount, points) VALUES (p_key, m_id, p_amount, earned)
        ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        UPDATE members SET points = points + earned, balance = balance - p_amount
            WHERE id = m_id;
    END IF;
    RETURN m_id;
END $$;
"#;

/// pgbench's script: a random member of the chain, a fresh idempotency key per transaction.
const SCRIPT: &str = "\\set m random(1, 100000)\n\\set k random(1, 1000000000000)\n\
SELECT checkout(:client_id::text || '-' || :k::text, '139' || lpad(:m::text, 8, '0'), 12.34);\n";

/// What one side measured.
struct Side {
    /// Checkouts per second with [`TILLS`] tills at once, and how many were made.
    many_per_s: f64,
    many: usize,
    one_p50: Duration,
    one_p99: Duration,
    one: usize,
}

pub fn run(seconds: u64, requests: usize, wan_ms: u64) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let dir = Scratch::new("central")?;
    let runtime = tokio::runtime::Runtime::new()?;

    let (ours, sold_offline) = our_node(&dir.0, &runtime, seconds, requests)?;

    let mut pg = Postgres::start(&dir.0.join("pg"))?;
    pg.psql(SCHEMA)?;
    pg.psql(&format!(
        "INSERT INTO members (phone, balance) SELECT '139' || lpad(n::text, 8, '0'), 1000000 \
         FROM generate_series(1, {PG_MEMBERS}) n"
    ))?;
    pg.psql("VACUUM ANALYZE")?;
    let script = dir.0.join("checkout.sql");
    std::fs::write(&script, SCRIPT)?;
    let logs = dir.0.join("pgbench");
    std::fs::create_dir_all(&logs)?;
    let bench = |addr: SocketAddr, label: &str, clients: usize, each: usize| {
        pgbench(&pg.bin, addr, &script, &logs.join(label), clients, each)
    };
    // pgbench's own `-T` counted no transactions when run from this process (its log had
    // them), so each throughput run is a number of transactions per client, sized from a
    // short run to last about `seconds`.
    let sized = |addr: SocketAddr, label: &str| {
        let probe = bench(addr, &format!("{label}-probe"), TILLS, 10)?;
        let each = (probe.per_s * seconds as f64 / TILLS as f64).max(10.0) as usize;
        bench(addr, label, TILLS, each)
    };
    let local = Side::of(sized(pg.addr, "many")?, bench(pg.addr, "one", 1, requests)?);
    let (proxy, proxy_task) = runtime.block_on(ops::delay::start(
        pg.addr,
        Duration::from_millis(wan_ms / 2),
    ))?;
    let wan_requests = (requests / 20).max(50);
    let wan = Side::of(
        sized(proxy, "wan-many")?,
        bench(proxy, "wan-one", 1, wan_requests)?,
    );
    proxy_task.abort();

    // Headquarters down: the central database stopped, every till tries once more.
    pg.stop()?;
    let tries = 20;
    let served = (0..tries)
        .filter(|n| {
            pg.psql(&format!(
                "SELECT checkout('outage-{n}', '13900000001', 12.34)"
            ))
            .is_ok()
        })
        .count();

    println!();
    println!(
        "| quick checkout: member by phone, points earned, stored value debited, sale written, \
         durable | our node (headquarters unreachable all along) | central PostgreSQL, loopback \
         | central PostgreSQL, {wan_ms} ms round trip |"
    );
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| checkouts/s, {TILLS} tills at once | {:.0} | {:.0} ({}) | {:.0} ({}) |",
        ours.many_per_s,
        local.many_per_s,
        ratio(ours.many_per_s, local.many_per_s),
        wan.many_per_s,
        ratio(ours.many_per_s, wan.many_per_s),
    );
    println!(
        "| one till, p50 / p99 ({} / {} / {} checkouts) | {} / {} | {} / {} | {} / {} |",
        ours.one,
        local.one,
        wan.one,
        ms(ours.one_p50),
        ms(ours.one_p99),
        ms(local.one_p50),
        ms(local.one_p99),
        ms(wan.one_p50),
        ms(wan.one_p99),
    );
    let ours_share = 100.0 * sold_offline as f64 / (ours.many + ours.one).max(1) as f64;
    println!(
        "| with headquarters down: checkouts that succeed | {sold_offline} of {} ({ours_share:.0}%) \
         | {served} of {tries} ({:.0}%) | — |",
        ours.many + ours.one,
        100.0 * served as f64 / tries as f64
    );
    println!(
        "\n(ours: {} checkouts at {TILLS} tills; central: {} and {}; the central database holds \
         {PG_MEMBERS} members)",
        ours.many, local.many, wan.many
    );

    Figure::new(
        format!("durable checkouts/s, {TILLS} tills, our node over HTTP"),
        format!("{:.0}", ours.many_per_s),
    )
    .baseline(
        format!("{:.0} central PostgreSQL on loopback", local.many_per_s),
        ratio(ours.many_per_s, local.many_per_s),
    )
    .record()?;
    let ours_one = format!("{} / {}", ms(ours.one_p50), ms(ours.one_p99));
    Figure::new(
        "one till's checkout p50 / p99, our node over HTTP",
        ours_one.clone(),
    )
    .baseline(
        format!(
            "{} / {} central PostgreSQL on loopback",
            ms(local.one_p50),
            ms(local.one_p99)
        ),
        ratio(ours.one_p50.as_secs_f64(), local.one_p50.as_secs_f64()) + " (p50)",
    )
    .record()?;
    Figure::new(
        format!("one till's checkout p50 / p99 at a branch {wan_ms} ms from headquarters"),
        ours_one + " (the node is in the store)",
    )
    .baseline(
        format!(
            "{} / {} central PostgreSQL through the {wan_ms} ms round trip",
            ms(wan.one_p50),
            ms(wan.one_p99)
        ),
        ratio(ours.one_p50.as_secs_f64(), wan.one_p50.as_secs_f64()) + " (p50)",
    )
    .record()?;
    Figure::new(
        "checkouts that succeed with headquarters down",
        format!("{ours_share:.0}%"),
    )
    .baseline(
        format!(
            "{:.0}% central server (stopped, {tries} tries)",
            100.0 * served as f64 / tries as f64
        ),
        "—",
    )
    .record()?;
    Ok(())
}

impl Side {
    fn of(many: Pgbench, mut one: Pgbench) -> Self {
        one.latencies.sort();
        Self {
            many_per_s: many.per_s,
            many: many.latencies.len(),
            one_p50: percentile(&one.latencies, 0.5),
            one_p99: percentile(&one.latencies, 0.99),
            one: one.latencies.len(),
        }
    }
}

/// Our node, alone (its headquarters address answers nothing): members top up, then pay from
/// stored value over HTTP: one till in sequence, then [`TILLS`] tills at once. Returns what was
/// measured and how many checkouts succeeded.
fn our_node(
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
    seconds: u64,
    requests: usize,
) -> anyhow::Result<(Side, usize)> {
    let pki = dir.join("pki");
    ops::pki::init(&pki, &["hub", "127.0.0.1"])?;
    // A headquarters address nobody listens on: the store is offline from its first second.
    let nowhere = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let mut config = ops::pki::enrol(&pki, "S001", nowhere, "hub", &dir.join("S001"))?;
    config.listen = ([127, 0, 0, 1], 0).into();
    config.open_before_logins = true;
    // Every till of the bench is on this PC: one client address.
    config.http.connections_per_address_max = config.http.connections_max;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(node::run(config, listener, async move {
        let _ = stopped.await;
    }));

    let setup = Till::new(&base);
    let mut members = Vec::new();
    for n in 0..=TILLS {
        let body = json!({"name": format!("会员{n}"), "phone": format!("139{n:08}")});
        let (status, member) =
            setup.post("/api/v1/members", &format!("bench-reg-{n:04}"), &body)?;
        anyhow::ensure!(status == 201, "registration refused: {member}");
        let id = member["member_id"]
            .as_str()
            .context("member id")?
            .to_owned();
        let top_up = json!({"amount": {"amount": "50000"}});
        let path = format!("/api/v1/members/{id}/top-ups");
        let (status, answer) = setup.post(&path, &format!("bench-top-{n:04}"), &top_up)?;
        anyhow::ensure!(status == 201, "top-up refused: {answer}");
        members.push(id);
    }
    // The same amount as the central side's checkout.
    const AMOUNT: &str = "12.34";
    let mut one = Vec::with_capacity(requests);
    for n in 0..requests {
        one.push(setup.pay(&format!("bench-one-{n:06}"), &members[TILLS], AMOUNT)?);
    }
    one.sort();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let many: Vec<usize> = std::thread::scope(|scope| {
        let tills: Vec<_> = members[..TILLS]
            .iter()
            .enumerate()
            .map(|(till, member)| {
                let base = &base;
                scope.spawn(move || {
                    let till_http = Till::new(base);
                    let mut n = 0;
                    while Instant::now() < deadline {
                        till_http.pay(&format!("bench-till-{till}-{n:06}"), member, AMOUNT)?;
                        n += 1;
                    }
                    anyhow::Ok(n)
                })
            })
            .collect();
        tills
            .into_iter()
            .map(|t| t.join().expect("till thread"))
            .collect::<anyhow::Result<_>>()
    })?;
    let elapsed = started.elapsed();
    let many: usize = many.iter().sum();

    let _ = stop.send(());
    runtime.block_on(task).context("node task")??;
    let side = Side {
        many_per_s: many as f64 / elapsed.as_secs_f64(),
        many,
        one_p50: percentile(&one, 0.5),
        one_p99: percentile(&one, 0.99),
        one: one.len(),
    };
    // Every checkout above succeeded (a refusal ends the bench), all with headquarters away.
    Ok((side, many + requests))
}

struct Pgbench {
    per_s: f64,
    latencies: Vec<Duration>,
}

/// Runs pgbench with our script, `clients` at once making `each` transactions, and reads every
/// transaction's latency from its log.
fn pgbench(
    bin: &Path,
    addr: SocketAddr,
    script: &Path,
    log_prefix: &Path,
    clients: usize,
    each: usize,
) -> anyhow::Result<Pgbench> {
    let mut command = Command::new(bin.join("pgbench"));
    command
        .args(["-n", "-M", "prepared", "-U", "postgres", "-h"])
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .arg("-f")
        .arg(script)
        .arg("--log")
        .arg(format!("--log-prefix={}", log_prefix.display()));
    command
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-t", &each.to_string(), "postgres"]);
    let output = checked(&mut command)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let per_s = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .with_context(|| {
            format!(
                "no tps in pgbench's answer: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    if let Some(failed) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
    {
        anyhow::ensure!(failed.starts_with("0 "), "pgbench: {failed} failed");
    }
    // Log lines: client_id transaction_no time_us script_no time_epoch time_us_part.
    let name = log_prefix
        .file_name()
        .context("log prefix")?
        .to_string_lossy()
        .into_owned();
    let mut latencies = Vec::new();
    for file in std::fs::read_dir(log_prefix.parent().context("log dir")?)? {
        let file = file?;
        if !file
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}."))
        {
            continue;
        }
        for line in std::fs::read_to_string(file.path())?.lines() {
            let micros: u64 = line
                .split_whitespace()
                .nth(2)
                .and_then(|t| t.parse().ok())
                .with_context(|| format!("pgbench log line {line:?}"))?;
            latencies.push(Duration::from_micros(micros));
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "pgbench logged no transactions");
    Ok(Pgbench { per_s, latencies })
}
