//! `ops bench all`: every benchmark of the project in one run, each as a child process of this
//! binary (so one bench's memory, threads and files never weigh on the next), each figure next
//! to its baseline measured in the same run. Writes one Markdown section — date, machine,
//! commands, a summary of every figure against its goal, and each bench's own tables — into
//! BENCHMARKS.md between two markers (or prints it). Every process and directory a bench
//! started is gone when it ends.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

use super::{FIGURES_ENV, Figure, Scratch, machine};

pub const BEGIN: &str = "<!-- ops bench all: begin (generated; edit outside these markers) -->";
pub const END: &str = "<!-- ops bench all: end -->";

struct Step {
    title: &'static str,
    args: Vec<String>,
}

fn steps(data: &Path, dir: &Path, quick: bool) -> Vec<Step> {
    let data = data.display().to_string();
    let year = dir.join("year").display().to_string();
    let step = |title, full: &str, fast: &str| Step {
        title,
        args: if quick { fast } else { full }
            .split_whitespace()
            .map(|a| match a {
                "DATA" => data.clone(),
                "YEAR" => year.clone(),
                a => a.to_owned(),
            })
            .collect(),
    };
    vec![
        step(
            "Durable checkout, next to raw sled (issue 2)",
            "bench checkout --seconds 5 --tills 64 --requests 5000",
            "bench checkout --seconds 1 --tills 8 --requests 200",
        ),
        step(
            "Central server: the same checkout in PostgreSQL, on loopback and over a 30 ms link",
            "bench central --seconds 5 --requests 2000 --wan-ms 30",
            "bench central --seconds 1 --requests 100 --wan-ms 30",
        ),
        step(
            "Sync: wire bytes, idle reconnect, CPU, next to automerge's own sync (issue 3)",
            "bench sync --members 2000 --edits 4 --idle-members 100000 --sample 10000",
            "bench sync --members 200 --edits 1 --idle-members 2000 --sample 200",
        ),
        step(
            "The hub under many stores: ingest and a reconnect storm (issue 3)",
            "bench hub --stores 100 --entries 2000 --reconnecting 1000",
            "bench hub --stores 10 --entries 200 --reconnecting 50",
        ),
        step(
            "Marketing at headquarters: a dormant segment and a campaign issued (issue 22)",
            "bench marketing --members 1000000 --coupons 100000",
            "bench marketing --members 5000 --coupons 500",
        ),
        step(
            "Stored-value payments at the till, local and hub-assisted (issue 4)",
            "bench wallet --members 400",
            "bench wallet --members 20",
        ),
        step(
            "The same payments with headquarters on PostgreSQL (issue 26)",
            "bench wallet --members 400 --postgres",
            "bench wallet --members 20 --postgres",
        ),
        step(
            "The same payments with a 30 ms round trip between the paying store and headquarters (issue 28)",
            "bench wallet --members 200 --rtt-ms 30",
            "bench wallet --members 10 --rtt-ms 30",
        ),
        step(
            "A year of stored-value payments: round trips, and headquarters down (issue 4)",
            "bench replay --data DATA --learn-weeks 13 --seed 1 --overdraft-yuan 100",
            "bench replay --data DATA --learn-weeks 1 --seed 1 --overdraft-yuan 100",
        ),
        step(
            "The catalogue and item checkout (issues 5 and 6)",
            "bench catalogue --data DATA --stores 50 --lookups 2000",
            "bench catalogue --data DATA --stores 5 --lookups 200",
        ),
        step(
            "A large member directory: lookups and memory",
            "bench members --small 100000 --large 1000000 --lookups 5000",
            "bench members --small 1000 --large 5000 --lookups 200",
        ),
        step(
            "A store's backup and restore at a year's size (issue 27)",
            "bench backup --members 20000 --sales 150000",
            "bench backup --members 200 --sales 2000",
        ),
        step(
            "Headquarters' backup and restore with a million members (issue 27)",
            "bench hub-backup --members 1000000 --sales 200000",
            "bench hub-backup --members 2000 --sales 2000",
        ),
        step(
            "Member import (issue 24)",
            "bench import --members 1000000 --stores 2",
            "bench import --members 2000 --stores 2",
        ),
        step(
            "A real year through a real chain: 20 stores as processes (issue 7)",
            "replay --data DATA --dir YEAR --stores 20 --from 2017-01-01 --to 2017-12-31 \
             --time-reports 500",
            "replay --data DATA --dir YEAR --stores 2 --from 2017-01-01 --to 2017-01-07 \
             --time-reports 50",
        ),
    ]
}

pub fn run(data: &Path, write: Option<&Path>, quick: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        data.join("transactions.csv.gz").exists() || data.join("transactions.csv").exists(),
        "no The Complete Journey data in {} (give --data)",
        data.display()
    );
    let started = Instant::now();
    remove_leftovers(None);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let date = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
        .context("the clock")?
        .format("%Y-%m-%d %H:%M UTC");
    let dir = Scratch::new("all")?;
    let figures_path = dir.0.join("figures.jsonl");
    let me = std::env::current_exe()?;
    let mut sections = Vec::new();
    for step in steps(data, &dir.0, quick) {
        println!("== {}: ops {}", step.title, step.args.join(" "));
        let began = Instant::now();
        let out = run_step(&me, &step, &figures_path, &dir.0)?;
        let took = began.elapsed();
        println!("   done in {took:.0?}");
        sections.push((step, took, out));
    }
    let figures: Vec<Figure> = std::fs::read_to_string(&figures_path)
        .unwrap_or_default()
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let mut md = String::new();
    md.push_str(BEGIN);
    md.push_str("\n## One run of everything (`ops bench all`)\n\n");
    md.push_str(&format!(
        "Run of {date}, machine: {}, {:.1} minutes in all{}. Reproduce (from the repository's \
         root; it installs PostgreSQL from Debian's packages if missing):\n\n```sh\ncargo run \
         --release -p ops -- bench all --write BENCHMARKS.md{}\n```\n\n",
        machine(),
        started.elapsed().as_secs_f64() / 60.0,
        if quick {
            " (--quick: small sizes, for trying the command, not for figures)"
        } else {
            ""
        },
        if quick { " --quick" } else { "" },
    ));
    md.push_str("### Every figure against its goal\n\n");
    md.push_str("| figure | ours | baseline (same run) | ratio | goal | met |\n");
    md.push_str("| --- | ---: | --- | ---: | --- | :---: |\n");
    for f in &figures {
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {met} |\n",
            f.figure,
            f.ours,
            or_dash(&f.baseline),
            or_dash(&f.ratio),
            or_dash(&f.goal)
        ));
    }
    for (step, took, out) in &sections {
        md.push_str(&format!(
            "\n### {}\n\n`ops {}` ({:.0} s)\n\n",
            step.title,
            step.args
                .join(" ")
                .replace(&dir.0.display().to_string(), "$TMP"),
            took.as_secs_f64()
        ));
        for line in out.lines().filter(|l| !l.starts_with("machine: ")) {
            md.push_str(line);
            md.push('\n');
        }
    }
    md.push_str(END);
    md.push('\n');

    match write {
        None => print!("\n{md}"),
        Some(path) => {
            let old = std::fs::read_to_string(path).unwrap_or_default();
            std::fs::write(path, splice(&old, &md))?;
            println!("wrote {}", path.display());
        }
    }
    println!(
        "all benchmarks done in {:.1} minutes",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "—" } else { s }
}

/// Puts `section` in place of the one between the markers in `old`, or, the first time, before
/// the document's first `## ` heading.
pub fn splice(old: &str, section: &str) -> String {
    if let (Some(begin), Some(end)) = (old.find(BEGIN), old.find(END))
        && begin < end
    {
        let after = &old[end + END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{section}{after}", &old[..begin]);
    }
    match old.find("\n## ") {
        Some(at) => format!("{}{section}{}", &old[..=at], &old[at..]),
        None => format!("{old}\n{section}"),
    }
}

/// Runs one bench as a child of this binary, echoing what it prints as it goes and returning
/// its standard output. Its stderr goes to a log, shown if it fails. Whatever
/// scratch directories it left (a failed bench may leave some) are removed after.
fn run_step(me: &Path, step: &Step, figures: &Path, dir: &Path) -> anyhow::Result<String> {
    let log_path = dir.join("step.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Child(
        Command::new(me)
            .args(&step.args)
            .env(FIGURES_ENV, figures)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting ops {}", step.args.join(" ")))?,
    );
    let pid = child.0.id();
    let mut out = String::new();
    let stdout = child.0.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("   {line}");
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.0.wait()?;
    remove_leftovers(Some(pid));
    if !status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        for line in tail.iter().rev() {
            println!("   ! {line}");
        }
        anyhow::bail!("ops {} failed ({status})", step.args.join(" "));
    }
    Ok(out)
}

/// Removes the scratch directories ([`Scratch`]) a bench left under the temp dir — those of
/// process `pid`, or with `None` those of any process no longer running (an earlier run that
/// was interrupted) — first stopping a PostgreSQL server still running in one.
fn remove_leftovers(pid: Option<u32>) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("ops-bench-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, owner)| owner.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = match pid {
            Some(pid) => owner == pid,
            None => !Path::new(&format!("/proc/{owner}")).exists(),
        };
        if gone {
            hub::storage::pg::scratch::stop_leftover(&entry.path().join("pg"));
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A bench process, killed if the suite stops before it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_replaces_the_section_and_keeps_the_rest() {
        let doc = "# Benchmarks\n\nIntro.\n\n## Issue 2\n\nhand-written\n";
        let first = splice(doc, &format!("{BEGIN}\nrun one\n{END}\n"));
        assert_eq!(
            first,
            format!(
                "# Benchmarks\n\nIntro.\n\n{BEGIN}\nrun one\n{END}\n\n## Issue 2\n\nhand-written\n"
            )
        );
        let second = splice(&first, &format!("{BEGIN}\nrun two\n{END}\n"));
        assert_eq!(second, first.replace("run one", "run two"));
    }
}
