//! `ops bench members`: a store holding a large member directory. Members are written straight
//! into a node's store by its journal (registrations, as `bench sync` writes them; a member
//! registered at another store is kept under the same keys when the feed brings it), then a real
//! node process (`ops node run`) serves lookups by phone over HTTP, sequentially from one till,
//! at random members. Measured at no members, at `small` and at `large` members: the lookup's
//! p50 / p99 next to the health endpoint on the same connection (the HTTP floor); 会员搜索 by a
//! random member's phone tail and by a common two-character name; and the node process's
//! resident memory after them. Names are drawn from common surnames and given-name characters,
//! so a name search meets as many namesakes as at a real chain.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::sync::{member_phone, write_members};

/// Common surnames and given-name characters; member `n`'s name is built from `n`'s digits.
const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗",
];
const GIVEN: [&str; 40] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "文", "辉", "建", "红", "鹏", "飞",
    "晨", "宇", "婷", "欣", "浩", "俊", "雪", "琳",
];

pub(super) fn chinese_name(n: usize) -> String {
    let mut name = SURNAMES[n % 20].to_owned();
    name.push_str(GIVEN[(n / 20) % 40]);
    // Half the members have a second given-name character.
    if (n / 800) % 2 == 1 {
        name.push_str(GIVEN[(n / 1600) % 40]);
    }
    name
}
use super::{Figure, Scratch, machine, ms, percentile, ratio};

/// What one node process measured.
struct Served {
    members: usize,
    lookup: (Duration, Duration),
    health: (Duration, Duration),
    /// 会员搜索 by a phone's last four digits, and by a two-character name.
    by_tail: (Duration, Duration),
    by_name: (Duration, Duration),
    rss_mb: f64,
}

pub fn run(small: usize, large: usize, lookups: usize) -> anyhow::Result<()> {
    anyhow::ensure!(small <= large, "--small must not be above --large");
    println!("machine: {}", machine());
    let dir = Scratch::new("members")?;
    let pki = dir.0.join("pki");
    ops::pki::init(&pki, &["hub", "127.0.0.1"])?;
    // No headquarters: the directory is what the store holds.
    let nowhere = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let out = dir.0.join("S001");
    let mut config = ops::pki::enrol(&pki, "S001", nowhere, "hub", &out)?;
    config.open_before_logins = true;
    config.http.connections_per_address_max = config.http.connections_max;
    let toml = out.join("node.toml");
    std::fs::write(&toml, config.to_toml())?;

    let mut rows = vec![serve(&toml, 0, lookups)?];
    for (from, to) in [(0, small), (small, large)] {
        let started = Instant::now();
        write_members(&config, from..to, 0, chinese_name)?;
        println!("wrote members {from}..{to} in {:.1?}", started.elapsed());
        rows.push(serve(&toml, to, lookups)?);
    }

    println!();
    println!(
        "| members at the store | lookup by phone, HTTP, p50 / p99 ({lookups} lookups) | GET /health \
         p50 / p99, same connection | lookup p99 vs no members | search by phone tail, p50 / p99 \
         | search by a two-character name, p50 / p99 | node RSS after the lookups |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let empty_p99 = rows[0].lookup.1;
    for r in &rows {
        println!(
            "| {} | {} / {} | {} / {} | {} | {} / {} | {} / {} | {:.0} MB |",
            r.members,
            ms(r.lookup.0),
            ms(r.lookup.1),
            ms(r.health.0),
            ms(r.health.1),
            ratio(r.lookup.1.as_secs_f64(), empty_p99.as_secs_f64()),
            ms(r.by_tail.0),
            ms(r.by_tail.1),
            ms(r.by_name.0),
            ms(r.by_name.1),
            r.rss_mb
        );
    }
    let (empty, small_row, large_row) = (&rows[0], &rows[1], &rows[2]);
    Figure::new(
        format!("member lookup by phone p50 / p99 at {large} members, HTTP"),
        format!("{} / {}", ms(large_row.lookup.0), ms(large_row.lookup.1)),
    )
    .baseline(
        format!(
            "{} / {} GET /health; {} / {} with no members",
            ms(large_row.health.0),
            ms(large_row.health.1),
            ms(empty.lookup.0),
            ms(empty.lookup.1)
        ),
        ratio(
            large_row.lookup.1.as_secs_f64(),
            empty.lookup.1.as_secs_f64(),
        ) + " (p99)",
    )
    .record()?;
    Figure::new(
        format!("会员搜索 p99 at {large} members: by phone tail / by a two-character name"),
        format!("{} / {}", ms(large_row.by_tail.1), ms(large_row.by_name.1)),
    )
    .baseline(
        format!(
            "{} / {} at {small} members",
            ms(small_row.by_tail.1),
            ms(small_row.by_name.1)
        ),
        ratio(
            large_row.by_name.1.as_secs_f64(),
            small_row.by_name.1.as_secs_f64(),
        ) + " (by name)",
    )
    .record()?;
    Figure::new(
        format!("node RSS at {small} members"),
        format!("{:.0} MB", small_row.rss_mb),
    )
    .baseline(
        format!("{:.0} MB the same node with no members", empty.rss_mb),
        ratio(small_row.rss_mb, empty.rss_mb),
    )
    .record()?;
    Ok(())
}

/// Starts the node on its data, times lookups of random members (or of absent phones when
/// there are none) and health checks, reads its RSS, and stops it.
fn serve(toml: &Path, members: usize, lookups: usize) -> anyhow::Result<Served> {
    let launcher = ops::replay::Launcher::this_binary()?;
    // The store was just written by a journal of this process, and sled lets go of its lock on
    // the directory a moment after the last handle is dropped: a node that cannot open it yet
    // is started again, a few times.
    let mut attempt = 0;
    let (node, said) = loop {
        attempt += 1;
        match ops::replay::start(
            &launcher.node,
            toml,
            &["--listen", "127.0.0.1:0"],
            &["listening on "],
        ) {
            Ok(started) => break started,
            Err(e) if attempt < 25 => {
                tracing::warn!(attempt, "the node did not start ({e:#}); starting it again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    };
    let base = said[0].clone();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut rng = StdRng::seed_from_u64(members as u64);
    let mut lookup = Vec::with_capacity(lookups);
    let mut health = Vec::with_capacity(lookups);
    for _ in 0..lookups {
        let (phone, want) = match members {
            0 => (member_phone(rng.random_range(0..1_000_000)), 404),
            n => (member_phone(rng.random_range(0..n)), 200),
        };
        let started = Instant::now();
        let status = agent
            .get(format!("{base}/api/v1/members/lookup?phone={phone}"))
            .call()?
            .status()
            .as_u16();
        lookup.push(started.elapsed());
        anyhow::ensure!(status == want, "lookup of {phone} answered {status}");
        let started = Instant::now();
        let status = agent.get(format!("{base}/api/v1/health")).call()?.status();
        health.push(started.elapsed());
        anyhow::ensure!(status == 200, "health answered {status}");
    }
    // 会员搜索, fewer times: before an index it read every member.
    let searches = (lookups / 20).max(10);
    let search = |q: String| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut answer = agent
            .get(format!("{base}/api/v1/members/search"))
            .query("q", &q)
            .call()?;
        let waited = started.elapsed();
        anyhow::ensure!(
            answer.status() == 200,
            "search {q} answered {}",
            answer.status()
        );
        let found: serde_json::Value = answer.body_mut().read_json()?;
        anyhow::ensure!(
            members == 0 || found["members"].as_array().is_some_and(|m| !m.is_empty()),
            "search {q} found nobody"
        );
        Ok(waited)
    };
    let mut by_tail = Vec::with_capacity(searches);
    let mut by_name = Vec::with_capacity(searches);
    for _ in 0..searches {
        let n = rng.random_range(0..members.max(1));
        let phone = member_phone(n);
        by_tail.push(search(phone[phone.len() - 4..].to_owned())?);
        let name: String = chinese_name(n).chars().take(2).collect();
        by_name.push(search(name)?);
    }
    by_tail.sort();
    by_name.sort();
    let rss_mb = rss_mb(node.pid())?;
    drop(node);
    lookup.sort();
    health.sort();
    Ok(Served {
        members,
        lookup: (percentile(&lookup, 0.5), percentile(&lookup, 0.99)),
        health: (percentile(&health, 0.5), percentile(&health, 0.99)),
        by_tail: (percentile(&by_tail, 0.5), percentile(&by_tail, 0.99)),
        by_name: (percentile(&by_name, 0.5), percentile(&by_name, 0.99)),
        rss_mb,
    })
}

/// A process's resident set, from `/proc/<pid>/status`.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb / 1024.0)
}
