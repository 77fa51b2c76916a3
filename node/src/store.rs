//! Storage behind a small trait: sled on disk, and an in-memory double with the same contract
//! (including "unflushed writes are lost in a crash") for tests and the simulator.
//!
//! The contract: `apply` makes a batch visible atomically (all of it or none of it, also after a
//! crash); `flush` makes every applied batch durable. Recovery after a crash yields a prefix of
//! the applied batches. The journal acknowledges a write only after the flush that covers it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod durable;
mod recover;
mod written;

pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Whether `key` is the store's own bookkeeping (`written`), which a copy of its records
/// leaves out: the store it is loaded into keeps its own.
pub fn is_bookkeeping(key: &[u8]) -> bool {
    key == written::KEY
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {key} is damaged: {reason}")]
    Damaged { key: String, reason: String },
    /// The store's directory as a whole cannot be trusted: sled refused or panicked opening it,
    /// or the check at start found damage. Restarting will not help; the operator must act.
    #[error(
        "the store in {} is damaged: {detail}. Nothing was served from it. Do not delete it: \
         with the node stopped, move the directory aside (e.g. `mv data data.damaged`), then \
         put the last copy of it in its place, or start a new store in an empty directory \
         (README: \"A damaged store\")",
        .dir.display()
    )]
    DamagedStore { dir: PathBuf, detail: String },
}

impl StoreError {
    /// Whether this says the store's directory is damaged (so restarting will not help).
    pub fn is_damaged_store(&self) -> bool {
        matches!(self, StoreError::DamagedStore { .. })
    }
}

/// Writes that become visible together.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    ops: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.insert(key, None);
    }

    /// The pending value of `key`: `Some(None)` when the batch deletes it, `None` when untouched.
    pub fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.ops.get(key).map(|v| v.as_deref())
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds `later`'s writes on top of these (the later write of a key wins).
    pub fn merge(&mut self, later: Batch) {
        self.ops.extend(later.ops);
    }

    fn touches_prefix(&self, prefix: &[u8]) -> bool {
        self.ops
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// Applies these writes to pairs read from under `prefix`, in key order.
    fn overlay(&self, prefix: &[u8], base: Vec<KeyValue>) -> Vec<KeyValue> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (k, v) in self
            .ops
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        merged.into_iter().collect()
    }
}

pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
    /// At most `limit` pairs under `prefix`, newest (greatest key) first.
    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError>;
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
    /// Makes what was applied visible to every reader without waiting for the disk (a group
    /// whose loss a crash may cause, because it can be had again: the feed). Only a store that
    /// holds writes back has anything to do.
    fn publish(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How sled runs under a store: its own defaults on a store PC; a host of hundreds of stores
/// in one process (`crate::host`) flushes seldom and caches little per store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SledTuning {
    /// How often sled flushes in the background (an fsync, and a look for log segments to
    /// clean). Nothing durable depends on it: every answered write is flushed by the
    /// journal, and the feed a store applied without a flush is sent again.
    pub background_flush_ms: u64,
    /// The most sled's page cache holds in memory (the rest is read from the file).
    pub cache_bytes: u64,
}

impl Default for SledTuning {
    /// sled's own defaults.
    fn default() -> Self {
        Self {
            background_flush_ms: 500,
            cache_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The embedded default: one sled tree, keys namespaced by prefix so that one `apply_batch`
/// covers the log and every view.
pub struct SledStore {
    db: sled::Db,
    log: std::fs::File,
    dir: PathBuf,
    /// What the batches applied so far wrote (`written`), kept in sled with each of them; the
    /// lock keeps that record in step with sled (one batch at a time, no batch during a read of
    /// everything).
    written: Mutex<written::Written>,
    mark: Mutex<durable::DurableMark>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, after setting aside what sled would refuse but
    /// rebuilds by itself (`recover`). Damage sled finds while opening, whether it answers with
    /// an error or panics on an assertion, and a store that came back without writes it had
    /// made durable (`durable`), are `StoreError::DamagedStore`; `visit_all` finds the rest
    /// (`written`).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_tuned(dir, SledTuning::default())
    }

    /// `open`, with sled tuned otherwise than its defaults ([`SledTuning`]).
    pub fn open_tuned(dir: &Path, tuning: SledTuning) -> Result<Self, StoreError> {
        recover::tidy(dir).map_err(sled::Error::from)?;
        let (db, written) = open_sled(dir, tuning)?;
        let log = sled_log(dir)?;
        let (mark, recorded) = durable::DurableMark::open(dir).map_err(sled::Error::from)?;
        let lost = recorded.unwrap_or(0).saturating_sub(written.batches);
        if lost > 0 {
            return Err(damaged(
                dir,
                format!(
                    "sled reopened it without the last {lost} of the {} writes it had made \
                     durable (its log is damaged before their end)",
                    written.batches + lost
                ),
            ));
        }
        Ok(Self {
            db,
            log,
            dir: dir.to_path_buf(),
            written: Mutex::new(written),
            mark: Mutex::new(mark),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every pair once, in key order, handing each to `visit`, and checks that together
    /// they are what the batches wrote (`written`); sled checks the CRC of every page it reads
    /// from disk on the way. Writes wait meanwhile. A panic inside sled is damage, reported as
    /// such.
    pub fn visit_all(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        let written = lock(&self.written);
        let walk = std::panic::AssertUnwindSafe(|| {
            digest_of(&self.db, |key, value| {
                visit(key, value).map_err(|detail| damaged(&self.dir, detail))
            })
        });
        let digest = match std::panic::catch_unwind(walk) {
            Ok(digest) => digest.map_err(|e| sled_damage(&self.dir, e, "reading it"))?,
            Err(panic) => return Err(damaged(&self.dir, panic_message(&*panic))),
        };
        if digest != written.digest {
            return Err(damaged(
                &self.dir,
                "what sled holds is not what was written to it (pages came back from its \
                 log without some of their updates)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The record of what was written once `batch` is applied on top of `written`: one batch
    /// more, and the digest without the pairs it replaces and with those it writes. Called with
    /// the record's lock held, so what sled holds now is what `written` describes.
    fn written_after(
        &self,
        written: written::Written,
        batch: &Batch,
    ) -> Result<written::Written, StoreError> {
        let mut digest = written.digest;
        for (key, value) in &batch.ops {
            assert_ne!(
                key.as_slice(),
                written::KEY,
                "a batch wrote the store's own record"
            );
            if let Some(before) = self.db.get(key)? {
                digest.remove(key, &before);
            }
            if let Some(value) = value {
                digest.add(key, value);
            }
        }
        Ok(written::Written {
            batches: written.batches + 1,
            digest,
        })
    }
}

/// sled's open of `dir` and its record of what was written (`written`; for a store written
/// before there was one, the digest of what it holds); damage sled reports or panics on is
/// `DamagedStore`.
fn open_sled(dir: &Path, tuning: SledTuning) -> Result<(sled::Db, written::Written), StoreError> {
    let opened = std::panic::catch_unwind(|| {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(tuning.background_flush_ms))
            .cache_capacity(tuning.cache_bytes)
            .open()?;
        let record = db.get(written::KEY)?;
        let digest = match record {
            Some(_) => None,
            None => Some(digest_of(&db, |_, _| Ok(()))?),
        };
        Ok::<_, StoreError>((db, record, digest))
    });
    let (db, record, digest) = match opened {
        Ok(opened) => opened.map_err(|e| sled_damage(dir, e, "opening it"))?,
        Err(panic) => return Err(damaged(dir, panic_message(&*panic))),
    };
    let written = match (record, digest) {
        (Some(record), _) => written::Written::decode(&record)
            .ok_or_else(|| damaged(dir, "its record of what was written is unreadable".into()))?,
        (None, digest) => written::Written {
            batches: 0,
            digest: digest.unwrap_or_default(),
        },
    };
    Ok((db, written))
}

/// The digest of every pair in `db` but the record's own, each also handed to `visit`.
fn digest_of(
    db: &sled::Db,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<written::Digest, StoreError> {
    let mut digest = written::Digest::default();
    for pair in db.iter() {
        let (key, value) = pair?;
        if &*key != written::KEY {
            digest.add(&key, &value);
        }
        visit(&key, &value)?;
    }
    Ok(digest)
}

/// `error` as sled reported it while `doing` something to the store in `dir`: its report of
/// damaged data is `DamagedStore`.
fn sled_damage(dir: &Path, error: StoreError, doing: &str) -> StoreError {
    match error {
        StoreError::Sled(sled::Error::Corruption { .. }) => {
            damaged(dir, format!("sled found damaged data {doing}"))
        }
        other => other,
    }
}

fn damaged(dir: &Path, detail: String) -> StoreError {
    StoreError::DamagedStore {
        dir: dir.to_path_buf(),
        detail,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("sled panicked reading it ({text})")
}

/// sled's own file, to make its flushes durable. sled 0.34 ends a flush with
/// `sync_file_range`, which neither empties the disk's volatile write cache nor writes the
/// file's new size (sled issue #1452), so a power cut could still lose a flushed write on the
/// ordinary disk of a store's PC. An `fdatasync` of the file after each flush does what fsync
/// promises; sled's pages are already written by then, so it costs the cache flush.
pub fn sled_log(dir: &Path) -> Result<std::fs::File, sled::Error> {
    Ok(crate::platform::open_for_sync(&dir.join("db"))?)
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| Ok(kv.map(|(k, v)| (k.to_vec(), v.to_vec()))?))
            .collect()
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        let rev = self.db.scan_prefix(prefix).rev().take(limit);
        rev.map(|kv| Ok(kv.map(|(k, v)| (k.to_vec(), v.to_vec()))?))
            .collect()
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in &batch.ops {
            match value {
                Some(v) => sled_batch.insert(key.as_slice(), v.as_slice()),
                None => sled_batch.remove(key.as_slice()),
            }
        }
        let mut written = lock(&self.written);
        let next = self.written_after(*written, &batch)?;
        sled_batch.insert(written::KEY, &next.encode());
        self.db.apply_batch(sled_batch)?;
        *written = next;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let covered = lock(&self.written).batches;
        self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::from)?;
        // Only a check at the next start: failing to record it must not fail a durable write.
        if let Err(e) = lock(&self.mark).record(covered) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "recording the durable batch count");
        }
        Ok(())
    }
}

/// A lock whose holder cannot leave it half-updated (a number, a file written whole).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Group commit's buffer: batches applied here are merged and held back, visible to the journal
/// (which reads through it) but not to anyone else, until `flush` writes the whole group as one
/// atomic batch and makes it durable. One large batch is several times cheaper in sled than
/// many small ones, and readers of the real store only ever see durable, acknowledged writes.
pub struct GroupBuffer {
    store: std::sync::Arc<dyn Store>,
    pending: Mutex<Batch>,
}

impl GroupBuffer {
    pub fn new(store: std::sync::Arc<dyn Store>) -> Self {
        Self {
            store,
            pending: Mutex::new(Batch::default()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for GroupBuffer {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending().pending(key) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => self.store.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let base = self.store.scan_prefix(prefix)?;
        Ok(self.pending().overlay(prefix, base))
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        if !self.pending().touches_prefix(prefix) {
            return self.store.scan_prefix_rev(prefix, limit);
        }
        let mut all = self.scan_prefix(prefix)?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.pending().merge(batch);
        Ok(())
    }

    /// Writes the group as one atomic batch and makes it durable. A group that wrote nothing
    /// (a refused request, a read) costs no disk flush: everything else that writes the store
    /// flushes what it wrote itself.
    fn flush(&self) -> Result<(), StoreError> {
        let group = std::mem::take(&mut *self.pending());
        if group.is_empty() {
            return Ok(());
        }
        self.store.apply(group)?;
        self.store.flush()
    }

    /// Writes the group as one atomic batch, durable at the store's next flush (sled's own
    /// every half second, or the next group's).
    fn publish(&self) -> Result<(), StoreError> {
        let group = std::mem::take(&mut *self.pending());
        if group.is_empty() {
            return Ok(());
        }
        self.store.apply(group)
    }
}

/// In memory, for tests. Keeps what was flushed apart from what was only applied, so a test can
/// `crash()` it and see exactly what a power cut would leave.
#[derive(Default)]
pub struct MemStore {
    state: Mutex<MemState>,
}

#[derive(Default, Clone)]
struct MemState {
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Batches applied since the last flush, oldest first: what a crash takes away.
    unflushed: Vec<Batch>,
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // A panic while holding the lock leaves plain maps behind; they are still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets every write that was applied but not flushed (undone newest first).
    pub fn crash(&self) {
        let mut state = self.lock();
        let MemState { live, unflushed } = &mut *state;
        for undo in unflushed.drain(..).rev() {
            for (key, before) in undo.ops {
                match before {
                    Some(v) => live.insert(key, v),
                    None => live.remove(&key),
                };
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().live.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let state = self.lock();
        let range = state
            .live
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix));
        Ok(range.map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        let mut all = self.scan_prefix(prefix)?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut state = self.lock();
        // Remember what each key held before, so a crash can undo the batch.
        let mut undo = Batch::default();
        for (key, value) in batch.ops {
            let before = match value {
                Some(v) => state.live.insert(key.clone(), v),
                None => state.live.remove(&key),
            };
            undo.ops.insert(key, before);
        }
        state.unflushed.push(undo);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.lock().unflushed.clear();
        Ok(())
    }
}

/// `open` again for a test that reopens a directory in the same process: sled's own threads
/// can hold its file lock for a moment after the last handle is dropped.
#[cfg(test)]
pub(crate) fn when_unlocked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> SledStore {
    when_unlocked(|| SledStore::open(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn Store) {
        let mut batch = Batch::default();
        batch.put(b"a/1".to_vec(), b"one".to_vec());
        batch.put(b"a/2".to_vec(), b"two".to_vec());
        batch.put(b"b/1".to_vec(), b"other".to_vec());
        store.apply(batch).unwrap();
        let mut batch = Batch::default();
        batch.delete(b"a/1".to_vec());
        batch.put(b"a/3".to_vec(), b"three".to_vec());
        store.apply(batch).unwrap();
        store.flush().unwrap();
        assert_eq!(store.get(b"a/1").unwrap(), None);
        let keys: Vec<_> = store
            .scan_prefix(b"a/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a/2".to_vec(), b"a/3".to_vec()]);
        let newest = store.scan_prefix_rev(b"a/", 1).unwrap();
        assert_eq!(newest, vec![(b"a/3".to_vec(), b"three".to_vec())]);
    }

    #[test]
    fn sled_and_memory_agree() {
        let dir = std::env::temp_dir().join(format!("node-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        exercise(&reopen(&dir));
        exercise(&MemStore::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store sled wrote before the store kept its record of what was written (`written`)
    /// opens and is checked against what it holds; a write behind the store's back (sled used
    /// directly, as a page coming back without an update looks) is refused.
    #[test]
    fn the_record_of_what_was_written_is_adopted_then_kept() {
        let dir = std::env::temp_dir().join(format!("node-store-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = when_unlocked(|| sled::Config::new().path(&dir).open());
            db.insert(b"a/1", b"old".as_slice()).unwrap();
            db.flush().unwrap();
        }
        let store = reopen(&dir);
        store.visit_all(|_, _| Ok(())).unwrap();
        exercise(&store);
        store.visit_all(|_, _| Ok(())).unwrap();
        drop(store);
        let store = reopen(&dir);
        store.visit_all(|_, _| Ok(())).unwrap();
        drop(store);
        {
            let db = when_unlocked(|| sled::Config::new().path(&dir).open());
            db.insert(b"a/2", b"changed".as_slice()).unwrap();
            db.flush().unwrap();
        }
        let refused = reopen(&dir).visit_all(|_, _| Ok(()));
        assert!(matches!(refused, Err(e) if e.is_damaged_store()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn group_buffer_hides_writes_until_flush_then_writes_them_at_once() {
        let store = std::sync::Arc::new(MemStore::default());
        let buffer = GroupBuffer::new(store.clone());
        exercise(&buffer);
        let mut batch = Batch::default();
        batch.put(b"a/4".to_vec(), b"four".to_vec());
        batch.delete(b"a/2".to_vec());
        buffer.apply(batch).unwrap();
        assert_eq!(buffer.get(b"a/4").unwrap(), Some(b"four".to_vec()));
        assert_eq!(
            store.get(b"a/4").unwrap(),
            None,
            "not visible before the flush"
        );
        assert_eq!(buffer.scan_prefix_rev(b"a/", 2).unwrap().len(), 2);
        assert_eq!(buffer.scan_prefix(b"a/").unwrap().len(), 2);
        buffer.flush().unwrap();
        store.crash();
        assert_eq!(store.get(b"a/4").unwrap(), Some(b"four".to_vec()));
        assert_eq!(store.get(b"a/2").unwrap(), None);
    }

    #[test]
    fn memory_crash_loses_only_unflushed_batches() {
        let store = MemStore::default();
        let mut batch = Batch::default();
        batch.put(b"kept".to_vec(), vec![1]);
        store.apply(batch).unwrap();
        store.flush().unwrap();
        let mut batch = Batch::default();
        batch.put(b"lost".to_vec(), vec![2]);
        store.apply(batch).unwrap();
        store.crash();
        assert_eq!(store.get(b"kept").unwrap(), Some(vec![1]));
        assert_eq!(store.get(b"lost").unwrap(), None);
    }
}
