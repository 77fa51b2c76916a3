//! `ops bench import`: headquarters imports a member file (会员导入) — a profile, a card number,
//! stored value, points and for one member in ten a count card each — into a running chain (a
//! hub and a node process per store), end to end: the file checked, imported, and every store's
//! directory holding every member. Next to it, in the same run, the same file only read and
//! checked row by row in this process (no headquarters): the floor of reading it at all.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Figure, Scratch, machine, ratio};
use ops::replay::{Launcher, start_chain};

/// Writes `members` rows spread over `stores` stores (S0001…).
fn write_file(path: &Path, members: usize, stores: u32) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "phone,name,card_no,home_store,join_date,principal,bonus,points,cards"
    )?;
    for n in 0..members {
        let store = (n as u32 % stores) + 1;
        let card = if n % 10 == 0 {
            "count:洗车卡:6:10:100.00"
        } else {
            ""
        };
        writeln!(
            out,
            "139{n:08},{},VIP{n:08},S{store:04},2019-{:02}-{:02},{}.{:02},{},{},{card}",
            super::members::chinese_name(n),
            n % 12 + 1,
            n % 28 + 1,
            n % 2_000,
            n % 100,
            (n % 7) * 10,
            n % 3_000,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Reads and checks every row here, as headquarters does before it writes anything.
fn read_only(path: &Path) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    let mut records = reader.records();
    let first = records.next().context("empty file")??;
    let header = protocol::import::Header::parse(first.iter()).map_err(anyhow::Error::msg)?;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).context("date")?;
    let mut checker = protocol::import::Checker::default();
    let mut good = 0;
    for (i, record) in records.enumerate() {
        let record = record?;
        let cells: Vec<&str> = record.iter().collect();
        let row = protocol::import::read_row(&header, i as u64 + 2, &cells, "standard", today)
            .map_err(|b| anyhow::anyhow!("line {}: {}", b.line, b.message))?;
        checker
            .check(&row)
            .map_err(|b| anyhow::anyhow!("line {}: {}", b.line, b.message))?;
        good += 1;
    }
    Ok((good, started.elapsed()))
}

fn get(url: &str) -> anyhow::Result<serde_json::Value> {
    let text = ureq::get(url).call()?.body_mut().read_to_string()?;
    Ok(serde_json::from_str(&text)?)
}

pub fn run(members: usize, stores: u32) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let dir = Scratch::new("import")?;
    let file = dir.0.join("members.csv");
    let wrote = Instant::now();
    write_file(&file, members, stores)?;
    let bytes = std::fs::metadata(&file)?.len();
    println!(
        "wrote {members} members ({:.1} MB) in {:.1?}",
        bytes as f64 / 1e6,
        wrote.elapsed()
    );
    let (good, floor) = read_only(&file)?;
    anyhow::ensure!(good == members as u64, "{good} of {members} rows read");
    println!("read and checked here (no headquarters): {floor:.1?}");

    let ids: Vec<u32> = (1..=stores).collect();
    let chain = start_chain(&dir.0.join("chain"), &ids, &Launcher::this_binary()?, false)?;
    let online = Instant::now();
    for url in chain.nodes.values() {
        while get(&format!("{url}/api/v1/sync"))?["link"] != "online" {
            anyhow::ensure!(
                online.elapsed() < Duration::from_secs(60),
                "{url} not online"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let started = Instant::now();
    let checked = ops::members::import(&chain.hub, &file, "bench", None, true)?;
    let dry = started.elapsed();
    anyhow::ensure!(
        checked["report"]["bad"] == 0,
        "{}",
        ops::members::summary(&checked)
    );
    let imported_at = Instant::now();
    let answer = ops::members::import(&chain.hub, &file, "bench", None, false)?;
    let written = imported_at.elapsed();
    anyhow::ensure!(
        answer["imported"] == members as u64,
        "{}",
        ops::members::summary(&answer)
    );
    let feed_len = get(&format!("{}/api/v1/health", chain.hub))?["feed_len"]
        .as_u64()
        .context("feed_len")?;
    for url in chain.nodes.values() {
        loop {
            let applied = get(&format!("{url}/api/v1/sync"))?["feed_applied"]
                .as_u64()
                .unwrap_or(0);
            if applied >= feed_len {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let everywhere = imported_at.elapsed();
    let end_to_end = dry + everywhere;
    // On a chain each store runs on its own PC: the CPU each process used says what a
    // deployment would wait for (the busiest one) besides what this shared machine did.
    let cpu: Vec<String> = chain
        .cpu_seconds()
        .iter()
        .map(|s| s.map_or_else(|| "?".into(), |s| format!("{s:.1} s")))
        .collect();
    println!(
        "CPU used since they started: headquarters {}; stores {}",
        cpu[0],
        cpu[1..].join(", ")
    );
    println!(
        "dry run {dry:.1?}; import written at headquarters {written:.1?}; every store's directory \
         whole after {everywhere:.1?}; end to end {end_to_end:.1?} ({:.0} members/s)",
        members as f64 / end_to_end.as_secs_f64()
    );
    println!(
        "| {members} members, {stores} stores | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {} |",
        floor.as_secs_f64(),
        dry.as_secs_f64(),
        written.as_secs_f64(),
        everywhere.as_secs_f64(),
        end_to_end.as_secs_f64(),
        ratio(end_to_end.as_secs_f64(), floor.as_secs_f64()),
    );
    Figure::new(
        format!("member import, {members} members, {stores} stores, end to end"),
        format!("{:.1} s", end_to_end.as_secs_f64()),
    )
    .baseline(
        format!(
            "{:.1} s to read and check the file alone",
            floor.as_secs_f64()
        ),
        ratio(end_to_end.as_secs_f64(), floor.as_secs_f64()),
    )
    .goal(
        "≤ 300 s for 1,000,000",
        members < 1_000_000 || end_to_end.as_secs() <= 300,
    )
    .record()
}
