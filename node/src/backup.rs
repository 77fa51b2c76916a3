//! Backups of a store's data (备份) and their restore.
//!
//! A backup is one file holding every record of the store as it was at one moment, taken while
//! the node sells: `SledStore::visit_all` reads every record once with writes waiting (a
//! checkout waits for the walk, about half a second per 100,000 sales) and checks that what it
//! read is what was written. The file is written under a temporary name, made durable, renamed,
//! then read back and checked before the backup counts: a kill during a backup leaves a
//! `.partial` file, never a damaged backup under a backup's name.
//!
//! The file: `CHSTORE1`, then `key length, value length, key, value` for every record, a
//! `u32::MAX` end mark, a header (store, when, log length) and its length, the number of
//! records, and a SHA-256 of everything before it (so the header is read from the end). It holds what the data directory holds, members' keys and the index
//! key included: keep it as carefully as the PC (PIPL).
//!
//! A restore makes a new data directory from a backup, anywhere (paths are the config's, not
//! the backup's), checks the views against a rebuild of the log, and marks the store to take
//! back from headquarters what it acknowledged after the backup (`journal::restore`) before it
//! records anything: an older backup never sells under a number headquarters holds already.

use std::path::Path;

pub use crate::backup_file::BackupConfig;
use crate::backup_file::{self, STORE};
use protocol::StoreId;
use serde::{Deserialize, Serialize};

use crate::store::{Batch, SledStore, Store};

/// Records written to the new store per batch when restoring.
const RESTORE_BATCH: usize = 4096;

/// What a store's backup says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub store_id: String,
    /// When it was taken (ms since the epoch).
    pub taken_ms: u64,
    /// Entries of the store's own log in it.
    pub log_len: u64,
}

/// A backup as taken, checked or restored.
pub type Summary = backup_file::Summary<Header>;

/// A running node's backups: its store, and where they go.
pub struct Backups {
    pub store: std::sync::Arc<SledStore>,
    pub store_id: StoreId,
    pub shelf: backup_file::Shelf,
}

impl Backups {
    pub fn new(store: std::sync::Arc<SledStore>, store_id: StoreId, config: BackupConfig) -> Self {
        Self {
            shelf: backup_file::Shelf::new(STORE, store_id.as_str(), config),
            store,
            store_id,
        }
    }

    /// Takes a backup now, checks it, and deletes the oldest beyond the number kept.
    pub fn take_now(&self, now_ms: u64) -> anyhow::Result<Summary> {
        self.shelf
            .take_now(|dir| take(&self.store, &self.store_id, dir, now_ms))
    }
}

/// Takes a backup of `store` into `dir` and checks it.
pub fn take(
    store: &SledStore,
    store_id: &StoreId,
    dir: &Path,
    now_ms: u64,
) -> anyhow::Result<Summary> {
    let name = backup_file::file_name(store_id.as_str(), now_ms);
    let mut out = backup_file::Writer::create(STORE, dir, &name)?;
    let log_prefix = crate::views::keys::log_prefix(store_id);
    let mut failed = None;
    let mut log_len = 0u64;
    let walked = store.visit_all(|key, value| {
        if crate::store::is_bookkeeping(key) {
            return Ok(());
        }
        if let Err(e) = out.record(key, value) {
            failed = Some(e);
            return Err("the backup could not be written".into());
        }
        log_len += u64::from(key.starts_with(&log_prefix));
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    walked?;
    let header = Header {
        store_id: store_id.to_string(),
        taken_ms: now_ms,
        log_len,
    };
    Ok(out.finish(&header)?)
}

/// Reads a backup through and checks its hash; returns what it holds.
pub fn check(file: &Path) -> anyhow::Result<Summary> {
    Ok(backup_file::check(STORE, file)?)
}

/// Makes `data_dir` (absent or empty) a store holding what the backup `file` holds, then checks
/// its views against a rebuild of its log. With `from_hub`, the store takes back what
/// headquarters acknowledged after the backup before it records anything.
pub fn restore(
    file: &Path,
    store_id: &StoreId,
    data_dir: &Path,
    calendar: &protocol::calendar::StoreCalendar,
    from_hub: bool,
) -> anyhow::Result<Summary> {
    let summary = check(file)?;
    anyhow::ensure!(
        summary.header.store_id == store_id.as_str(),
        "{} is a backup of store {}, not of {store_id}",
        file.display(),
        summary.header.store_id
    );
    backup_file::restore_into(data_dir, |staging| {
        let store = SledStore::open(staging)?;
        let mut batch = Batch::default();
        backup_file::read::<Header, anyhow::Error>(STORE, file, |key, value| {
            batch.put(key.to_vec(), value.to_vec());
            if batch.len() >= RESTORE_BATCH {
                store.apply(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        store.apply(batch)?;
        if from_hub {
            crate::journal::restore::mark_unknown(&store)?;
        }
        store.flush()?;
        let report = crate::views::rebuild(&store, calendar)?;
        anyhow::ensure!(
            report.is_clean(),
            "the restored views differ from a rebuild of the log: {report:?}"
        );
        Ok(())
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_holds_the_stores_records_and_its_log_length_and_names_the_store() {
        let root = std::env::temp_dir().join(format!("backup-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let s001 = StoreId::parse("S001").unwrap();
        let store = SledStore::open(&root.join("data")).unwrap();
        let mut batch = Batch::default();
        batch.put(b"a".to_vec(), b"1".to_vec());
        let log = crate::views::keys::log_prefix(&s001);
        batch.put([log.as_slice(), b"1"].concat(), b"entry".to_vec());
        store.apply(batch).unwrap();
        store.flush().unwrap();
        let taken = take(&store, &s001, &root.join("backups"), 1_796_475_522_825).unwrap();
        assert_eq!((taken.records, taken.header.log_len), (2, 1));
        assert!(
            taken.file.ends_with("S001-20261205-125842-825.backup"),
            "{}",
            taken.file.display()
        );
        assert_eq!(check(&taken.file).unwrap(), taken);
        let s002 = StoreId::parse("S002").unwrap();
        let calendar = protocol::calendar::StoreCalendar::default();
        let refused = restore(&taken.file, &s002, &root.join("other"), &calendar, false);
        assert!(refused.unwrap_err().to_string().contains("not of S002"));
        let refused = restore(&taken.file, &s001, &root.join("data"), &calendar, false);
        assert!(refused.unwrap_err().to_string().contains("holds data"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
