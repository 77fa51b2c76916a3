//! Headquarters' backups (总部备份) and their restore.
//!
//! A backup is one file (`crate::backup_file`) holding every record of the hub's storage as
//! it was at the moment the backup began, taken while the hub serves:
//! `SledHubStore::visit_all` shows the store as it was then while writes go on (each keeps the
//! values it replaces for the reading: `storage::sled_snapshot`). What it holds is a state a
//! crash could have left, which the hub starts from like any other. It holds the members' keys
//! and the index key, as the data directory does: keep it as carefully as headquarters' disk
//! (PIPL).
//!
//! A restore makes a new data directory from a backup, anywhere, and checks it as `hub verify`
//! does (every store's chain, the feed, the directory against a rebuild) before it answers.
//! What headquarters wrote after the backup is not in it; ARCHITECTURE.md says what that means
//! for the stores ("Headquarters' backups").

use std::path::Path;

pub use crate::backup_file::BackupConfig;
use crate::backup_file::{self, HUB};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::ingest::VerifyReport;
use crate::storage::SledHubStore;

/// Backups are named `hq-<time>.backup`.
const PREFIX: &str = "hq";
/// Records written per batch when restoring.
const RESTORE_BATCH: usize = 4096;

/// What headquarters' backup says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// When it was taken (ms since the epoch).
    pub taken_ms: u64,
    /// The feed's length in it.
    pub feed_len: u64,
    /// Stores (headquarters' own log aside) and members in it.
    pub stores: u64,
    pub members: u64,
}

pub type Summary = backup_file::Summary<Header>;

/// A running hub's backups: its storage and where they go. Headquarters on PostgreSQL has
/// none of its own (`storage` is none): the database's backups are its IT's.
pub struct Backups {
    pub storage: Option<std::sync::Arc<SledHubStore>>,
    /// Headquarters' database instead, as it may be shown (no password), for the page.
    pub database: Option<(String, std::sync::Arc<crate::storage::PgHubStore>)>,
    pub shelf: backup_file::Shelf,
}

/// Why headquarters on PostgreSQL takes no backup of its own.
pub const ON_POSTGRES: &str = "headquarters keeps its data in PostgreSQL: back it up with the \
     database's own tools (pg_dump, streaming replication, point-in-time recovery)";

impl Backups {
    pub fn new(
        storage: Option<std::sync::Arc<SledHubStore>>,
        database: Option<(String, std::sync::Arc<crate::storage::PgHubStore>)>,
        config: BackupConfig,
    ) -> Self {
        Self {
            storage,
            database,
            shelf: backup_file::Shelf::new(HUB, PREFIX, config),
        }
    }

    /// Takes a backup now, checks it, and deletes the oldest beyond the number kept.
    pub fn take_now(&self, now_ms: u64) -> anyhow::Result<Summary> {
        let storage = self.storage.as_ref().context(ON_POSTGRES)?;
        self.shelf.take_now(|dir| take(storage, dir, now_ms))
    }
}

/// Takes a backup of `storage` into `dir` and checks it.
pub fn take(storage: &SledHubStore, dir: &Path, now_ms: u64) -> anyhow::Result<Summary> {
    let name = backup_file::file_name(PREFIX, now_ms);
    let mut out = backup_file::Writer::create(HUB, dir, &name)?;
    let mut header = Header {
        taken_ms: now_ms,
        feed_len: 0,
        stores: 0,
        members: 0,
    };
    let hq_tip = format!("tip/{}", protocol::StoreId::hq()).into_bytes();
    storage.visit_all(|key, value| -> anyhow::Result<()> {
        out.record(key, value)?;
        if key == b"meta/feed_len" {
            header.feed_len = postcard::from_bytes(value).context("meta/feed_len")?;
        }
        header.stores += u64::from(key.starts_with(b"tip/") && key != hq_tip.as_slice());
        header.members += u64::from(key.starts_with(b"m/"));
        Ok(())
    })?;
    Ok(out.finish(&header)?)
}

/// Reads a backup through and checks its hash; what it holds.
pub fn check(file: &Path) -> anyhow::Result<Summary> {
    Ok(backup_file::check(HUB, file)?)
}

/// Opens what was just written and closed in this process: sled's own threads can hold its
/// file lock for a moment after the last handle is dropped (a restore failed so in a test).
pub(crate) fn open_when_unlocked(dir: &Path) -> anyhow::Result<SledHubStore> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledHubStore::open(dir) {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

/// Makes `data_dir` (absent or empty) headquarters' data as the backup `file` holds it, then
/// checks it as `hub verify` does.
pub fn restore(file: &Path, data_dir: &Path) -> anyhow::Result<(Summary, VerifyReport)> {
    let summary = check(file)?;
    let report = backup_file::restore_into(data_dir, |staging| {
        // Written as they were, beneath the hub's own opening (which would draw a new index key).
        let db = sled::Config::new().path(staging).open()?;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        backup_file::read::<Header, anyhow::Error>(HUB, file, |key, value| {
            batch.insert(key, value);
            pending += 1;
            if pending >= RESTORE_BATCH {
                db.apply_batch(std::mem::take(&mut batch))?;
                pending = 0;
            }
            Ok(())
        })?;
        db.apply_batch(batch)?;
        db.flush()?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(staging.join("db"))
            .and_then(|f| f.sync_data())
            .context("making the restored data durable")?;
        drop(db);
        let storage = open_when_unlocked(staging)?;
        // A backup another version took holds its derived state: rebuilt as the hub would
        // on opening it, so the check below compares all of it.
        crate::ingest::ensure_current(&storage)?;
        let report = crate::ingest::verify(&storage)?;
        anyhow::ensure!(
            report.is_clean(),
            "the restored data does not check out: {:?}",
            report.differences
        );
        Ok(report)
    })?;
    Ok((summary, report))
}
