//! Storage behind a small trait: sled on disk, and an in-memory double with the same contract
//! (including "unflushed writes are lost in a crash") for tests and the simulator.
//!
//! The contract: `apply` makes a batch visible atomically (all of it or none of it, also after a
//! crash); `flush` makes every applied batch durable. Recovery after a crash yields a prefix of
//! the applied batches. The journal acknowledges a write only after the flush that covers it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

pub type KeyValue = (Vec<u8>, Vec<u8>);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {key} is damaged: {reason}")]
    Damaged { key: String, reason: String },
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
}

/// The embedded default: one sled tree, keys namespaced by prefix so that one `apply_batch`
/// covers the log and every view.
pub struct SledStore {
    db: sled::Db,
    log: std::fs::File,
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        let log = sled_log(dir)?;
        Ok(Self { db, log })
    }
}

/// sled's own file, to make its flushes durable. sled 0.34 ends a flush with
/// `sync_file_range`, which neither empties the disk's volatile write cache nor writes the
/// file's new size (sled issue #1452), so a power cut could still lose a flushed write on the
/// ordinary disk of a store's PC. An `fdatasync` of the file after each flush does what fsync
/// promises; sled's pages are already written by then, so it costs the cache flush.
pub fn sled_log(dir: &Path) -> Result<std::fs::File, sled::Error> {
    Ok(std::fs::File::open(dir.join("db"))?)
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
        for (key, value) in batch.ops {
            match value {
                Some(v) => sled_batch.insert(key, v),
                None => sled_batch.remove(key),
            }
        }
        Ok(self.db.apply_batch(sled_batch)?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::from)?;
        Ok(())
    }
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
        exercise(&SledStore::open(&dir).unwrap());
        exercise(&MemStore::default());
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
