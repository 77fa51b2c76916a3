//! `ops bench members`: a store holding a large member directory. Members are written straight
//! into a node's store by its journal (registrations, as `bench sync` writes them; a member
//! registered at another store is kept under the same keys when the feed brings it), then a real
//! node process (`ops node run`) serves lookups by phone over HTTP, sequentially from one till,
//! at random members. Measured at no members, at `small` and at `large` members: the lookup's
//! p50 / p99 next to the health endpoint on the same connection (the HTTP floor), and the node
//! process's resident memory after the lookups.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::sync::{member_phone, write_members};
use super::{Figure, Scratch, machine, ms, percentile, ratio};

/// What one node process measured.
struct Served {
    members: usize,
    lookup: (Duration, Duration),
    health: (Duration, Duration),
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
    let config = ops::pki::enrol(&pki, "S001", nowhere, "hub", &out)?;
    let toml = out.join("node.toml");

    let mut rows = vec![serve(&toml, 0, lookups)?];
    for (from, to) in [(0, small), (small, large)] {
        let started = Instant::now();
        write_members(&config, from..to, 0)?;
        println!("wrote members {from}..{to} in {:.1?}", started.elapsed());
        rows.push(serve(&toml, to, lookups)?);
    }

    println!();
    println!(
        "| members at the store | lookup by phone, HTTP, p50 / p99 ({lookups} lookups) | GET /health \
         p50 / p99, same connection | lookup p99 vs no members | node RSS after the lookups |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let empty_p99 = rows[0].lookup.1;
    for r in &rows {
        println!(
            "| {} | {} / {} | {} / {} | {} | {:.0} MB |",
            r.members,
            ms(r.lookup.0),
            ms(r.lookup.1),
            ms(r.health.0),
            ms(r.health.1),
            ratio(r.lookup.1.as_secs_f64(), empty_p99.as_secs_f64()),
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
    let (node, said) = ops::replay::start(
        &launcher.node,
        toml,
        &["--listen", "127.0.0.1:0"],
        &["listening on "],
    )?;
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
    let rss_mb = rss_mb(node.pid())?;
    drop(node);
    lookup.sort();
    health.sort();
    Ok(Served {
        members,
        lookup: (percentile(&lookup, 0.5), percentile(&lookup, 0.99)),
        health: (percentile(&health, 0.5), percentile(&health, 0.99)),
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
