//! One consistent reading of headquarters' sled store while it goes on writing (a backup).
//!
//! sled has no snapshots, and headquarters has several writers (ingest, the outbox, holds,
//! revocations, follows). Every write goes through [`SledHubStore::apply`] as one [`Writes`];
//! while a reading runs, each write first keeps the value every key it touches had before the
//! reading's first write to it (its before-image), then applies. The reading walks the store
//! and shows, for a key with a before-image, that image instead of what it found; at the end it
//! shows the before-images of keys its walk did not pass (deleted before it got there). So it
//! sees the store exactly as it was when it started, between two whole batches, and writers
//! wait only for the before-images of their own keys, not for the walk.
//!
//! The race that matters: the walk reads a key's value, then looks for its before-image; a
//! write in between has put the image there first (images are kept before the write applies),
//! so the walk shows the image. A key written after the walk passed it was shown as it was,
//! and its image is marked shown when kept. Starting and ending a reading wait until no write
//! is in flight (a shared gate every write holds), so a batch is never half on either side.

use std::collections::{HashMap, HashSet};

use sled::IVec;

use super::*;

/// A batch of writes to headquarters' store, applied whole (`sled::Batch`, with its keys kept).
#[derive(Debug, Default)]
pub struct Writes(Vec<(IVec, Option<IVec>)>);

impl Writes {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.0.push((key.into(), None));
    }
}

/// What a running reading needs from the writers.
#[derive(Debug, Default)]
pub(super) struct Reading {
    /// Each key written since the reading began, with its value before (`None`: absent).
    before: HashMap<IVec, Option<IVec>>,
    /// Keys whose image the reading has shown (or needs not: the walk had passed them).
    shown: HashSet<IVec>,
    /// The last key the walk has passed.
    walked_to: Option<IVec>,
}

/// The writers' side: a shared gate, and the reading in progress if any.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    gate: std::sync::RwLock<()>,
    reading: std::sync::Mutex<Option<Reading>>,
    /// One reading at a time (a second would wipe the first one's images).
    one: std::sync::Mutex<()>,
}

/// Ends the reading however `visit_all` ends (an error, a panic in `visit`): writes stop
/// keeping images.
struct Ending<'a>(&'a Snapshots);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.0.with_no_write(|r| *r = None);
    }
}

impl Snapshots {
    fn reading(&self) -> std::sync::MutexGuard<'_, Option<Reading>> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts or ends a reading with no write in flight.
    fn with_no_write<T>(&self, f: impl FnOnce(&mut Option<Reading>) -> T) -> T {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        f(&mut self.reading())
    }
}

impl SledHubStore {
    /// Applies `writes` whole (every write of the hub goes through here), keeping the values
    /// they replace for a reading in progress.
    pub(super) fn apply(&self, writes: Writes) -> Result<()> {
        let _writing = self
            .snapshots
            .gate
            .read()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(reading) = self.snapshots.reading().as_mut() {
            for (key, _) in &writes.0 {
                if reading.before.contains_key(key) {
                    continue;
                }
                let old = self.db.get(key)?;
                if reading.walked_to.as_ref().is_some_and(|to| key <= to) {
                    reading.shown.insert(key.clone());
                }
                reading.before.insert(key.clone(), old);
            }
        }
        let mut batch = sled::Batch::default();
        for (key, value) in writes.0 {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Reads every record once, handing each to `visit`, as the store was when the reading
    /// began (between two whole batches, as a crash could have left it), while writes go on.
    /// Records come in key order, then those deleted during the reading.
    pub fn visit_all<E: From<HubStoreError>>(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let _one = self.snapshots.one.lock().unwrap_or_else(|p| p.into_inner());
        self.snapshots
            .with_no_write(|r| *r = Some(Reading::default()));
        let ending = Ending(&self.snapshots);
        let walked = (|| -> std::result::Result<(), E> {
            for kv in self.db.iter() {
                let (key, found) = kv.map_err(HubStoreError::from)?;
                let shown = {
                    let mut guard = self.snapshots.reading();
                    let reading = guard.as_mut().ok_or_else(|| {
                        HubStoreError::Damaged("a backup's reading ended under it".into())
                    })?;
                    reading.walked_to = Some(key.clone());
                    match reading.before.get(&key) {
                        Some(before) => {
                            let before = before.clone();
                            reading.shown.insert(key.clone());
                            before
                        }
                        None => Some(found),
                    }
                };
                if let Some(value) = shown {
                    visit(&key, &value)?;
                }
            }
            Ok(())
        })();
        let reading = self.snapshots.with_no_write(Option::take);
        drop(ending);
        walked?;
        let reading = reading
            .ok_or_else(|| HubStoreError::Damaged("a backup's reading ended under it".into()))?;
        for (key, before) in reading.before {
            if let Some(value) = before.filter(|_| !reading.shown.contains(&key)) {
                visit(&key, &value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(label: &str) -> (SledHubStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hub-snapshot-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (SledHubStore::open(&dir).unwrap(), dir)
    }

    fn put(store: &SledHubStore, pairs: &[(&str, Option<&str>)]) {
        let mut writes = Writes::default();
        for (k, v) in pairs {
            match v {
                Some(v) => writes.insert(k.as_bytes(), v.as_bytes()),
                None => writes.remove(k.as_bytes()),
            }
        }
        store.apply(writes).unwrap();
    }

    fn read_all(store: &SledHubStore, during: impl Fn(&[u8])) -> BTreeMap<String, String> {
        let mut seen = BTreeMap::new();
        store
            .visit_all(|k, v| -> Result<()> {
                during(k);
                let k = String::from_utf8_lossy(k).into_owned();
                assert!(!seen.contains_key(&k), "{k} shown twice");
                seen.insert(k, String::from_utf8_lossy(v).into_owned());
                Ok(())
            })
            .unwrap();
        seen.retain(|k, _| k.starts_with("t/"));
        seen
    }

    use std::collections::BTreeMap;

    #[test]
    fn a_reading_shows_the_store_as_it_began_whatever_is_written_meanwhile() {
        let (hub, dir) = store("moment");
        let keys: Vec<String> = (0..50).map(|i| format!("t/{i:03}")).collect();
        for k in &keys {
            put(&hub, &[(k, Some("0"))]);
        }
        let before: BTreeMap<String, String> =
            keys.iter().map(|k| (k.clone(), "0".to_owned())).collect();
        // While the walk is at t/020: one batch rewrites a key behind it and one ahead, deletes
        // one ahead, adds one ahead and one behind; the next reading sees all of it.
        let seen = read_all(&hub, |at| {
            if at == b"t/020" {
                put(
                    &hub,
                    &[
                        ("t/005", Some("1")),
                        ("t/040", Some("1")),
                        ("t/030", None),
                        ("t/0455", Some("new")),
                        ("t/0005", Some("new")),
                    ],
                );
            }
        });
        assert_eq!(seen, before, "as the reading began");
        let after = read_all(&hub, |_| {});
        assert_eq!(after["t/005"], "1");
        assert_eq!(after["t/040"], "1");
        assert!(!after.contains_key("t/030"));
        assert_eq!(after["t/0455"], "new");
        assert_eq!(after["t/0005"], "new");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writes_go_on_while_a_reading_runs() {
        let (hub, dir) = store("writers");
        for i in 0..2_000 {
            put(&hub, &[(&format!("t/{i:05}"), Some("0"))]);
        }
        let hub = std::sync::Arc::new(hub);
        let (go, started) = std::sync::mpsc::channel::<()>();
        let (wrote, done) = std::sync::mpsc::channel::<()>();
        let writer = hub.clone();
        // Not scoped: should it ever wait for the walk, the test fails instead of hanging.
        std::thread::spawn(move || {
            if started.recv().is_ok() {
                for i in 0..100 {
                    put(&writer, &[(&format!("t/{i:05}"), Some("1"))]);
                }
                let _ = wrote.send(());
            }
        });
        let seen = read_all(&hub, |at| {
            if at.starts_with(b"t/00000") {
                go.send(()).unwrap();
                // Written while the walk is held at its first key.
                done.recv_timeout(std::time::Duration::from_secs(20))
                    .expect("writes went on while the reading ran");
            }
        });
        assert!(seen.values().all(|v| v == "0"), "as the reading began");
        assert_eq!(seen.len(), 2_000);
        assert_eq!(read_all(&hub, |_| {})["t/00099"], "1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
