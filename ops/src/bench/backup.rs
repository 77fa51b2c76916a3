//! `ops bench backup`: a store's backup and restore at a year's size. A store's data is written
//! straight by its journal (members, then quick sales, most of them a member's: points earned,
//! wallet views), then timed: reading every record once with writes waiting (the floor a
//! consistent online backup cannot go below: `SledStore::visit_all`), the backup (that read,
//! written to a file, made durable, read back and checked), a plain copy of the stopped store's
//! files (the baseline an operator would use with the node stopped), and the restore (loading
//! the records into a new store, then checking every view against a rebuild of the log; the
//! rebuild also timed alone).
//!
//! `ops bench hub-backup`: headquarters' backup and restore with a large member directory. The
//! hub takes, through its ingest, the logs of 20 stores holding `members` registrations (each
//! a real profile document sealed under the member's own key, as a till writes it) and `sales`
//! cash sales; then the same four times: reading every record with writes waiting, the backup,
//! a copy of the stopped hub's files, and the restore (load, then `hub verify`'s checks: every
//! chain, the feed, the directory against a rebuild), with that check also timed alone.

use std::path::Path;
use std::time::{Duration, Instant};

use hub::ingest::Ingest;
use hub::storage::{HubStore, SledHubStore};
use node::store::SledStore;
use protocol::entry::{ChainTip, Entry, Payload, Sealed};
use protocol::hlc::Hlc;
use protocol::member::MemberDoc;
use protocol::seal::MemberKey;
use protocol::{MemberId, Phone, StaffId, StoreId, TxId};

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

/// 2026-12-05 10:00 in Shanghai.
const NOW_MS: u64 = 1_796_436_000_000;
/// Entries a store sends in one batch.
const BATCH: usize = 1_000;

pub fn run_hub(members: usize, sales: usize) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let dir = Scratch::new("hub-backup")?;
    let data = dir.0.join("hub");
    let started = Instant::now();
    {
        let storage: std::sync::Arc<dyn HubStore> = std::sync::Arc::new(SledHubStore::open(&data)?);
        let mut ingest = Ingest::open(storage, Box::new(|| NOW_MS))?;
        fill_hub(&mut ingest, members, sales)?;
        ingest.flush()?;
    }
    println!(
        "headquarters took {members} registrations and {sales} sales in {:.1?}",
        started.elapsed()
    );
    let data_bytes = dir_bytes(&data)?;

    let storage = SledHubStore::open(&data)?;
    let mut records = 0u64;
    storage.visit_all(|_, _| Ok::<(), hub::storage::HubStoreError>(()))?;
    let started = Instant::now();
    storage.visit_all(|_, _| {
        records += 1;
        Ok::<(), hub::storage::HubStoreError>(())
    })?;
    let read_all = started.elapsed();
    // A writer beside it (the outbox counting a message, one write every 5 ms), first alone,
    // then while the backup is taken: how long a write waits.
    let storage = std::sync::Arc::new(storage);
    let alone = writes_while(&storage, || {
        std::thread::sleep(Duration::from_secs(3));
        Ok(())
    })?
    .1;
    let started = Instant::now();
    let (taken, during) = writes_while(&storage, || {
        hub::backup::take(&storage, &dir.0.join("backups"), node::uplink::now_ms())
    })?;
    let backup = started.elapsed();
    drop(storage);
    anyhow::ensure!(
        taken.header.members == members as u64,
        "the backup holds {} members, not {members}",
        taken.header.members
    );

    let started = Instant::now();
    copy_dir(&data, &dir.0.join("copy"))?;
    let copy = started.elapsed();

    let restored = dir.0.join("restored");
    let started = Instant::now();
    hub::backup::restore(&taken.file, &restored)?;
    let restore = started.elapsed();
    let storage = SledHubStore::open(&restored)?;
    let started = Instant::now();
    let report = hub::ingest::verify(&storage)?;
    let verify = started.elapsed();
    anyhow::ensure!(report.is_clean(), "the restored hub does not check out");

    let mb = |b: u64| b as f64 / 1_048_576.0;
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let vs = |d: Duration| ratio(d.as_secs_f64(), copy.as_secs_f64());
    println!();
    println!(
        "| headquarters with {members} members and {sales} sales from 20 stores ({records} \
         records, {:.0} MB of sled files; backup file {:.0} MB) | time | vs the baseline |",
        mb(data_bytes),
        mb(taken.bytes)
    );
    println!("|---|---|---|");
    println!(
        "| copy of the stopped hub's files (baseline) | {} | 1.00× |",
        s(copy)
    );
    println!(
        "| reading every record once as it was when the reading began (the floor) | {} | {} |",
        s(read_all),
        vs(read_all)
    );
    println!(
        "| backup while serving: that read to a file, durable, read back and checked | {} | {} |",
        s(backup),
        vs(backup)
    );
    println!(
        "| restore: load into a new directory, then `hub verify`'s checks | {} | {} |",
        s(restore),
        vs(restore)
    );
    println!(
        "| of which the checks alone | {} | {} |",
        s(verify),
        vs(verify)
    );
    let longest = |w: &[Duration]| w.iter().max().copied().unwrap_or_default();
    println!(
        "| a write while the backup is taken: longest / p99 ({} writes) | {} / {} | {} / {} alone ({} writes) |",
        during.len(),
        super::ms(longest(&during)),
        super::ms(super::percentile(&during, 0.99)),
        super::ms(longest(&alone)),
        super::ms(super::percentile(&alone, 0.99)),
        alone.len()
    );
    println!("(command: ops bench hub-backup --members {members} --sales {sales})");
    Figure::new(
        format!("headquarters' backup with {members} members, while it serves"),
        s(backup),
    )
    .baseline(
        format!("{} (copy of the stopped hub's files)", s(copy)),
        vs(backup),
    )
    .record()?;
    Figure::new("restore of that headquarters, checked", s(restore))
        .baseline(
            format!("{} (copy of the stopped hub's files)", s(copy)),
            vs(restore),
        )
        .record()
}

/// A store's entries on their way to headquarters, with the keys of the members they register.
type Batch = (Vec<Sealed>, Vec<(MemberId, MemberKey)>);

/// Runs `work` while another thread writes to `storage` every 5 ms (a marketing message
/// counted); what `work` gave, and each write's time, sorted.
fn writes_while<T>(
    storage: &std::sync::Arc<SledHubStore>,
    work: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Vec<Duration>)> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (storage, stop) = (storage.clone(), stop.clone());
        move || -> anyhow::Result<Vec<Duration>> {
            let member = MemberId::mint(NOW_MS, 7);
            let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap_or_default();
            let mut took = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                storage.count_sent(&member, day)?;
                took.push(started.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(took)
        }
    });
    let done = work();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut took = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    took.sort();
    Ok((done?, took))
}

/// 20 stores' logs through headquarters' ingest: `members` registrations, then `sales` cash
/// sales, in batches as the stores would send them.
fn fill_hub(ingest: &mut Ingest, members: usize, sales: usize) -> anyhow::Result<()> {
    const STORES: usize = 20;
    let stores: Vec<StoreId> = (0..STORES).map(super::marketing::store).collect();
    let mut pending: Vec<Batch> = (0..STORES).map(|_| Default::default()).collect();
    let send = |ingest: &mut Ingest, s: usize, pending: &mut Batch| {
        let (entries, keys) = std::mem::take(pending);
        let log_len = entries.last().map_or(0, |e| e.entry.seq);
        ingest.ingest_keyed(&stores[s], entries, log_len, keys)
    };
    let mut tips = vec![ChainTip::GENESIS; STORES];
    for i in 0..members + sales {
        let s = i % STORES;
        let store = &stores[s];
        let seq = tips[s].next_seq;
        let payload = if i < members {
            let id = MemberId::mint(NOW_MS - 400 * 86_400_000, i as u128);
            let profile = super::marketing::profile(i, Phone::parse(&format!("13{i:09}"))?);
            let (_, change) = MemberDoc::create(store, (NOW_MS + i as u64) as i64, &profile)?;
            let mut key = [7u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = MemberKey::from_bytes(key);
            let change = key.seal(&protocol::seal::change_aad(&id), &change);
            pending[s].1.push((id, key));
            Payload::MemberRegistered {
                member_id: id,
                change,
            }
        } else {
            super::hub::quick_sale(store, tips[s], NOW_MS).payload
        };
        let entry = Sealed::new(Entry {
            origin: store.clone(),
            seq,
            hlc: Hlc {
                wall_ms: NOW_MS + i as u64,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap_or_default(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{store}-till-{seq:08}"))?,
            prev_hash: tips[s].hash,
            payload,
        });
        tips[s] = ChainTip {
            next_seq: seq + 1,
            hash: entry.hash,
        };
        pending[s].0.push(entry);
        if pending[s].0.len() >= BATCH {
            send(ingest, s, &mut pending[s])?;
        }
    }
    for (s, batch) in pending.iter_mut().enumerate() {
        if !batch.0.is_empty() {
            send(ingest, s, batch)?;
        }
    }
    Ok(())
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
