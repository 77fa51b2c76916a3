//! `ops bench backup`: a store's backup and restore at a year's size. A store's data is written
//! straight by its journal (members, then quick sales, most of them a member's: points earned,
//! wallet views), then timed: reading every record once with writes waiting (the floor a
//! consistent online backup cannot go below: `SledStore::visit_all`), the backup (that read,
//! written to a file, made durable, read back and checked), a plain copy of the stopped store's
//! files (the baseline an operator would use with the node stopped), and the restore (loading
//! the records into a new store, then checking every view against a rebuild of the log; the
//! rebuild also timed alone).

use std::path::Path;
use std::time::{Duration, Instant};

use node::store::SledStore;

use super::sync::{numbered_name, write_members, write_sales};
use super::{Figure, Scratch, machine, ratio};

pub fn run(members: usize, sales: usize) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let dir = Scratch::new("backup")?;
    let config = node::Config {
        store_id: "S001".into(),
        data_dir: dir.0.join("data"),
        ..node::Config::default()
    };
    let settings = config.settings()?;
    let started = Instant::now();
    write_members(&config, 0..members, 0, numbered_name)?;
    let (entries, _) = write_sales(&config, sales)?;
    println!(
        "wrote {members} members and {entries} sales in {:.1?}",
        started.elapsed()
    );
    let data_bytes = dir_bytes(&config.data_dir)?;

    let store = SledStore::open(&config.data_dir)?;
    // Once to bring the files into the page cache, as they are at a store that sells all day;
    // then timed.
    let mut records = 0u64;
    store.visit_all(|_, _| Ok(()))?;
    let started = Instant::now();
    store.visit_all(|_, _| {
        records += 1;
        Ok(())
    })?;
    let read_all = started.elapsed();
    let started = Instant::now();
    let taken = node::backup::take(
        &store,
        &settings.store_id,
        &dir.0.join("backups"),
        node::uplink::now_ms(),
    )?;
    let backup = started.elapsed();
    drop(store);

    let started = Instant::now();
    copy_dir(&config.data_dir, &dir.0.join("copy"))?;
    let copy = started.elapsed();

    let restored = dir.0.join("restored");
    let started = Instant::now();
    node::backup::restore(
        &taken.file,
        &settings.store_id,
        &restored,
        &settings.calendar,
        false,
    )?;
    let restore = started.elapsed();
    let store = SledStore::open(&restored)?;
    let started = Instant::now();
    let report = node::views::rebuild(&store, &settings.calendar)?;
    let rebuild = started.elapsed();
    anyhow::ensure!(
        report.is_clean(),
        "the restored store differs from its rebuild"
    );

    let mb = |b: u64| b as f64 / 1_048_576.0;
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    println!();
    println!(
        "| a store with {members} members and {entries} sales ({records} records, {:.0} MB of \
         sled files; backup file {:.0} MB) | time | vs the baseline |",
        mb(data_bytes),
        mb(taken.bytes)
    );
    println!("|---|---|---|");
    println!(
        "| copy of the stopped store's files (baseline) | {} | 1.00× |",
        s(copy)
    );
    println!(
        "| reading every record once, writes waiting (the floor; checkouts wait this long) | {} | {} |",
        s(read_all),
        ratio(read_all.as_secs_f64(), copy.as_secs_f64())
    );
    println!(
        "| backup while selling: that read to a file, durable, read back and checked | {} | {} |",
        s(backup),
        ratio(backup.as_secs_f64(), copy.as_secs_f64())
    );
    println!(
        "| restore: load into a new store, check every view against a rebuild | {} | {} |",
        s(restore),
        ratio(restore.as_secs_f64(), copy.as_secs_f64())
    );
    println!(
        "| of which the rebuild of the views alone | {} | {} |",
        s(rebuild),
        ratio(rebuild.as_secs_f64(), copy.as_secs_f64())
    );
    println!("(command: ops bench backup --members {members} --sales {sales})");
    Figure::new(
        format!("backup of a store with {entries} sales, while it sells"),
        s(backup),
    )
    .baseline(
        format!("{} (copy of the stopped store's files)", s(copy)),
        ratio(backup.as_secs_f64(), copy.as_secs_f64()),
    )
    .record()?;
    Figure::new(
        "restore of that store, checked against a rebuild",
        s(restore),
    )
    .baseline(
        format!("{} (copy of the stopped store's files)", s(copy)),
        ratio(restore.as_secs_f64(), copy.as_secs_f64()),
    )
    .record()
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Copies every file of `from` into `to`, then makes them durable (as a backup must be).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.metadata()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    Ok(())
}
