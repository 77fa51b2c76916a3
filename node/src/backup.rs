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

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol::StoreId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Batch, SledStore, Store};

const MAGIC: &[u8; 8] = b"CHSTORE1";
const END: u32 = u32::MAX;
const EXTENSION: &str = "backup";
const PARTIAL: &str = "partial";
/// After the header: its length (u32), the records' count (u64), the hash (32 bytes).
const TAIL: u64 = 4 + 8 + 32;
/// Records written to the new store per batch when restoring.
const RESTORE_BATCH: usize = 4096;

/// What a backup says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub store_id: String,
    /// When it was taken (ms since the epoch).
    pub taken_ms: u64,
    /// Entries of the store's own log in it.
    pub log_len: u64,
}

/// A backup as taken, checked or restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub file: PathBuf,
    #[serde(flatten)]
    pub header: Header,
    pub records: u64,
    pub bytes: u64,
}

/// The config's `[backup]`: where a node keeps its backups, how often it takes one, how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// A directory, best on another disk than the data directory.
    pub dir: PathBuf,
    /// Hours between scheduled backups (the first that long after start); 0: only on request.
    #[serde(default = "default_every_hours")]
    pub every_hours: u32,
    /// How many backups to keep; older ones are deleted after a new one is checked.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_every_hours() -> u32 {
    24
}

fn default_keep() -> u32 {
    7
}

impl BackupConfig {
    /// Without `[backup]`: a `backups` directory beside the data directory, a backup a day, a
    /// week of them kept.
    pub fn beside(data_dir: &Path) -> Self {
        let parent = data_dir.parent().unwrap_or(Path::new("."));
        Self {
            dir: parent.join("backups"),
            every_hours: default_every_hours(),
            keep: default_keep(),
        }
    }
}

/// A running node's backups: its store, and where they go; one at a time.
pub struct Backups {
    pub store: std::sync::Arc<SledStore>,
    pub store_id: StoreId,
    pub config: BackupConfig,
    running: std::sync::Mutex<()>,
}

impl Backups {
    pub fn new(store: std::sync::Arc<SledStore>, store_id: StoreId, config: BackupConfig) -> Self {
        Self {
            store,
            store_id,
            config,
            running: Default::default(),
        }
    }

    /// Takes a backup now, checks it, and deletes the oldest beyond the number kept.
    pub fn take_now(&self, now_ms: u64) -> anyhow::Result<Summary> {
        let _one = self
            .running
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier backup panicked"))?;
        let summary = take(&self.store, &self.store_id, &self.config.dir, now_ms)?;
        for gone in prune(&self.config.dir, &self.store_id, self.config.keep as usize)? {
            tracing::info!(file = %gone.display(), "an old backup deleted");
        }
        Ok(summary)
    }

    /// The backups kept, newest first, as each says of itself (each was checked when taken;
    /// a restore checks again).
    pub fn kept(&self) -> anyhow::Result<Vec<Result<Summary, String>>> {
        let mut files = list(&self.config.dir, &self.store_id)?;
        files.reverse();
        Ok(files
            .iter()
            .map(|f| peek(f).map_err(|e| format!("{e:#}")))
            .collect())
    }
}

/// Takes a backup of `store` into `dir` and checks it.
pub fn take(
    store: &SledStore,
    store_id: &StoreId,
    dir: &Path,
    now_ms: u64,
) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = file_name(store_id, now_ms);
    let partial = dir.join(format!("{name}.{PARTIAL}"));
    let file = dir.join(format!("{name}.{EXTENSION}"));
    let out = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut out = Hashing::new(BufWriter::new(out));
    let log_prefix = crate::views::keys::log_prefix(store_id);
    // The records go first to the file, the header (with the log's length) is known after the
    // walk: it goes at the end of the hashed part, before the records' count.
    out.write_all(MAGIC)?;
    let mut failed: Option<std::io::Error> = None;
    let (mut records, mut log_len) = (0u64, 0u64);
    let walked = store.visit_all(|key, value| {
        if crate::store::is_bookkeeping(key) {
            return Ok(());
        }
        let written = frame(&mut out, key, value);
        if let Err(e) = written {
            failed = Some(e);
            return Err("the backup could not be written".into());
        }
        records += 1;
        log_len += u64::from(key.starts_with(&log_prefix));
        Ok(())
    });
    if let Some(e) = failed {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("writing {}", partial.display()));
    }
    walked?;
    let header = Header {
        store_id: store_id.to_string(),
        taken_ms: now_ms,
        log_len,
    };
    out.write_all(&END.to_le_bytes())?;
    let header_bytes = postcard::to_stdvec(&header)?;
    out.write_all(&header_bytes)?;
    out.write_all(&(header_bytes.len() as u32).to_le_bytes())?;
    out.write_all(&records.to_le_bytes())?;
    let (mut inner, hash) = out.finish();
    inner.write_all(&hash)?;
    let out = inner.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&partial, &file)?;
    sync_dir(dir)?;
    let summary = check(&file)?;
    anyhow::ensure!(
        summary.records == records && summary.header == header,
        "{} reads back other than it was written",
        file.display()
    );
    Ok(summary)
}

/// Reads a backup through and checks its hash; returns what it holds.
pub fn check(file: &Path) -> anyhow::Result<Summary> {
    read(file, |_, _| Ok(()))
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
    let empty = match std::fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_dir.display())),
    };
    anyhow::ensure!(
        empty,
        "{} holds data: move it aside first (never delete it: it may hold sales headquarters \
         has not received)",
        data_dir.display()
    );
    let store = SledStore::open(data_dir)?;
    let mut batch = Batch::default();
    read(file, |key, value| {
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
    Ok(summary)
}

/// The backups of `store_id` in `dir`, oldest first.
pub fn list(dir: &Path, store_id: &StoreId) -> anyhow::Result<Vec<PathBuf>> {
    let prefix = format!("{store_id}-");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == EXTENSION)
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    files.sort();
    Ok(files)
}

/// Deletes all but the newest `keep` backups of `store_id` in `dir`, and any backup left
/// unfinished by a kill; returns what it deleted.
pub fn prune(dir: &Path, store_id: &StoreId, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut gone = Vec::new();
    let backups = list(dir, store_id)?;
    for old in &backups[..backups.len().saturating_sub(keep.max(1))] {
        std::fs::remove_file(old)?;
        gone.push(old.clone());
    }
    let prefix = format!("{store_id}-");
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        let unfinished = path.extension().is_some_and(|x| x == PARTIAL)
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix));
        if unfinished {
            std::fs::remove_file(&path)?;
            gone.push(path);
        }
    }
    Ok(gone)
}

/// `S001-20261205-132400-123.backup`: the store and when (UTC), so names sort by time.
fn file_name(store_id: &StoreId, now_ms: u64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(now_ms as i64).unwrap_or_default();
    format!("{store_id}-{}", at.format("%Y%m%d-%H%M%S-%3f"))
}

fn frame(out: &mut impl Write, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    let len = |bytes: &[u8]| {
        u32::try_from(bytes.len())
            .ok()
            .filter(|n| *n != END)
            .ok_or_else(|| std::io::Error::other("a record over 4 GiB"))
    };
    out.write_all(&len(key)?.to_le_bytes())?;
    out.write_all(&len(value)?.to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(value)
}

/// Reads the backup `file`, handing every record to `visit`, and checks its hash at the end.
fn read(
    file: &Path,
    mut visit: impl FnMut(&[u8], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let opened =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let bytes = opened.metadata()?.len();
    let mut input = Hashing::new(BufReader::new(opened));
    let bad = |what: &str| anyhow::anyhow!("{} is not a whole backup: {what}", file.display());
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|_| bad("too short"))?;
    anyhow::ensure!(&magic == MAGIC, bad("not a backup of a store"));
    let mut records = 0u64;
    loop {
        let key_len = read_u32(&mut input).map_err(|_| bad("it ends within a record"))?;
        if key_len == END {
            break;
        }
        let value_len = read_u32(&mut input).map_err(|_| bad("it ends within a record"))?;
        let (mut key, mut value) = (vec![0; key_len as usize], vec![0; value_len as usize]);
        input
            .read_exact(&mut key)
            .map_err(|_| bad("it ends within a record"))?;
        input
            .read_exact(&mut value)
            .map_err(|_| bad("it ends within a record"))?;
        visit(&key, &value)?;
        records += 1;
    }
    // What is left: the header, its length, the count and the hash.
    let header_len = bytes
        .checked_sub(input.read + TAIL)
        .ok_or_else(|| bad("no header"))?;
    let mut header = vec![0; header_len as usize];
    input
        .read_exact(&mut header)
        .map_err(|_| bad("no header"))?;
    let said_len = read_u32(&mut input).map_err(|_| bad("no header"))?;
    anyhow::ensure!(
        u64::from(said_len) == header_len,
        bad("a header of another length")
    );
    let header: Header = postcard::from_bytes(&header).map_err(|_| bad("an unreadable header"))?;
    let mut count = [0u8; 8];
    input.read_exact(&mut count).map_err(|_| bad("no count"))?;
    let (mut inner, hash) = input.finish();
    let mut stored = [0u8; 32];
    inner.read_exact(&mut stored).map_err(|_| bad("no hash"))?;
    anyhow::ensure!(stored == hash, bad("its hash does not match (damaged)"));
    anyhow::ensure!(
        u64::from_le_bytes(count) == records,
        bad("it holds another number of records than it says")
    );
    Ok(Summary {
        file: file.to_path_buf(),
        header,
        records,
        bytes,
    })
}

/// What a backup says of itself, read from its end without reading it through (its hash is not
/// checked: `check` does that).
pub fn peek(file: &Path) -> anyhow::Result<Summary> {
    use std::io::{Seek, SeekFrom};
    let mut opened =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let bytes = opened.metadata()?.len();
    let bad = || anyhow::anyhow!("{} is not a whole backup", file.display());
    let end = bytes.checked_sub(TAIL).ok_or_else(bad)?;
    opened.seek(SeekFrom::Start(end))?;
    let header_len = u64::from(read_u32(&mut opened)?);
    let mut count = [0u8; 8];
    opened.read_exact(&mut count)?;
    opened.seek(SeekFrom::Start(
        end.checked_sub(header_len).ok_or_else(bad)?,
    ))?;
    let mut header = vec![0; header_len as usize];
    opened.read_exact(&mut header)?;
    Ok(Summary {
        file: file.to_path_buf(),
        header: postcard::from_bytes(&header).map_err(|_| bad())?,
        records: u64::from_le_bytes(count),
        bytes,
    })
}

fn read_u32(input: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// A reader or writer that hashes (and counts) what passes through it.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    read: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    fn finish(self) -> (T, [u8; 32]) {
        (self.inner, self.hasher.finalize().into())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Makes a rename in `dir` durable (on Windows a rename is durable once it returns).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("backup-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn store_with(dir: &Path, pairs: &[(&str, &str)]) -> SledStore {
        let store = SledStore::open(dir).unwrap();
        let mut batch = Batch::default();
        for (k, v) in pairs {
            batch.put(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        }
        store.apply(batch).unwrap();
        store.flush().unwrap();
        store
    }

    #[test]
    fn a_backup_reads_back_whole_and_a_damaged_one_is_refused() {
        let root = dir("whole");
        let s001 = StoreId::parse("S001").unwrap();
        let store = store_with(&root.join("data"), &[("a", "1"), ("b", "22")]);
        let taken = take(&store, &s001, &root.join("backups"), 1_796_475_522_825).unwrap();
        assert_eq!(taken.records, 2);
        assert_eq!(check(&taken.file).unwrap(), taken);
        assert_eq!(peek(&taken.file).unwrap(), taken);
        assert!(
            taken.file.ends_with("S001-20261205-125842-825.backup"),
            "{}",
            taken.file.display()
        );

        let mut bytes = std::fs::read(&taken.file).unwrap();
        bytes[17] ^= 1; // the first record's value
        let damaged = root.join("damaged.backup");
        std::fs::write(&damaged, &bytes).unwrap();
        assert!(check(&damaged).unwrap_err().to_string().contains("hash"));
        std::fs::write(&damaged, &bytes[..bytes.len() - 5]).unwrap();
        assert!(check(&damaged).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_the_newest_backups_and_no_unfinished_one_are_kept() {
        let root = dir("prune");
        let s001 = StoreId::parse("S001").unwrap();
        let store = store_with(&root.join("data"), &[("a", "1")]);
        let backups = root.join("backups");
        for at in 0..4u64 {
            take(&store, &s001, &backups, 1_796_475_522_825 + at * 1000).unwrap();
        }
        std::fs::write(backups.join("S001-20261205-000000-000.partial"), b"cut").unwrap();
        std::fs::write(backups.join("S002-20261205-000000-000.backup"), b"other").unwrap();
        let gone = prune(&backups, &s001, 2).unwrap();
        assert_eq!(gone.len(), 3, "{gone:?}");
        let kept = list(&backups, &s001).unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept[1].ends_with("S001-20261205-125845-825.backup"));
        assert!(backups.join("S002-20261205-000000-000.backup").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
