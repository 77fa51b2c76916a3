//! The feed on sled: runs of positions naming entries of one store's log, not copies of them.
//!
//! Each append's feed items are consecutive positions, all of the appending store's log, so
//! they are one record: `fr/<first position BE>` → the store and the seq of each position's
//! entry. A feed item costs no key and no second copy of the entry's bytes (a quarter of a
//! campaign coupon's writes; half the bytes of a store's sales). Reading a run is one range
//! over the store's log, from its first seq to its last.
//!
//! Data written before held one record per position with the entry's bytes
//! (`feed/<position BE>`, a `FeedRecord` each); `migrate_feed` turns them into runs when the
//! store opens.

use super::sled_store::{SledHubStore, log_key};
use super::*;

const RUN: &[u8] = b"fr/";
const OLD: &[u8] = b"feed/";
/// Old records turned into runs per batch when migrating.
const MIGRATE_BATCH: usize = 10_000;
/// The longest run made of old records.
const RUN_FROM_OLD_MAX: usize = 1_024;

/// Positions `first..first + seqs.len()` of the feed name these entries of `origin`'s log, in
/// order (ascending seqs).
#[derive(Debug, Serialize, Deserialize)]
struct Run {
    origin: StoreId,
    seqs: Vec<u64>,
}

fn run_key(first: u64) -> Vec<u8> {
    let mut key = RUN.to_vec();
    key.extend(first.to_be_bytes());
    key
}

fn position_of(key: &[u8], prefix: &[u8]) -> Result<u64> {
    key.get(prefix.len()..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| HubStoreError::Damaged(String::from_utf8_lossy(key).into_owned()))
}

/// The feed items `(position, seq)` of an append by `origin` as runs, each of consecutive
/// positions.
pub(super) fn write_runs(batch: &mut Writes, origin: &StoreId, items: &[(u64, u64)]) {
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        while end < items.len() && items[end].0 == items[end - 1].0 + 1 {
            end += 1;
        }
        let run = Run {
            origin: origin.clone(),
            seqs: items[start..end].iter().map(|(_, seq)| *seq).collect(),
        };
        batch.insert(run_key(items[start].0), encode(&run));
        start = end;
    }
}

impl SledHubStore {
    /// The run holding `position`, with its first position: the last run starting at or
    /// before it, if it reaches it.
    fn run_at(&self, position: u64) -> Result<Option<(u64, Run)>> {
        let Some((key, value)) = self.run_starting_by(position)? else {
            return Ok(None);
        };
        let first = position_of(&key, RUN)?;
        let run: Run = decode(&key, &value)?;
        Ok((position - first < run.seqs.len() as u64).then_some((first, run)))
    }

    /// The last run starting at or before `position` (it may end before it), undecoded.
    fn run_starting_by(&self, position: u64) -> Result<Option<(sled::IVec, sled::IVec)>> {
        Ok(self
            .db
            .range(run_key(0)..=run_key(position))
            .next_back()
            .transpose()?)
    }

    /// The entries `seqs` (ascending) of `origin`'s log, read as one range.
    fn run_entries(&self, origin: &StoreId, seqs: &[u64]) -> Result<Vec<Vec<u8>>> {
        let (Some(&low), Some(&high)) = (seqs.first(), seqs.last()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(seqs.len());
        let mut wanted = seqs.iter().peekable();
        for kv in self.db.range(log_key(origin, low)..=log_key(origin, high)) {
            let (key, value) = kv?;
            let seq = position_of(&key, &key[..key.len().saturating_sub(8)])?;
            if wanted.next_if_eq(&&seq).is_some() {
                out.push(value.to_vec());
            }
        }
        match wanted.next() {
            None => Ok(out),
            Some(seq) => Err(HubStoreError::Damaged(format!(
                "the feed names {origin}'s entry {seq}, which its log does not hold"
            ))),
        }
    }

    pub(super) fn read_feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        let mut out: Vec<(u64, FeedRecord)> = Vec::new();
        // From the run holding `from`, if any (one that ends before it gives nothing below).
        let start = match self.run_starting_by(from)? {
            Some((key, _)) => position_of(&key, RUN)?,
            None => from,
        };
        for kv in self.db.range(run_key(start)..) {
            let (key, value) = kv?;
            if !key.starts_with(RUN) || out.len() >= limit {
                break;
            }
            let first = position_of(&key, RUN)?;
            let run: Run = decode(&key, &value)?;
            let skip = from.saturating_sub(first) as usize;
            let Some(seqs) = run.seqs.get(skip..) else {
                continue;
            };
            let seqs = &seqs[..seqs.len().min(limit - out.len())];
            let entries = self.run_entries(&run.origin, seqs)?;
            for (n, entry) in entries.into_iter().enumerate() {
                let record = FeedRecord {
                    origin: run.origin.clone(),
                    entry,
                };
                out.push((first + (skip + n) as u64, record));
            }
        }
        Ok(out)
    }

    pub(super) fn read_feed_at(&self, positions: &[u64]) -> Result<Vec<(u64, FeedRecord)>> {
        let mut out = Vec::with_capacity(positions.len());
        let mut held: Option<(u64, Run)> = None;
        for &position in positions {
            let within = |(first, run): &(u64, Run)| {
                position >= *first && position - first < run.seqs.len() as u64
            };
            if !held.as_ref().is_some_and(within) {
                held = self.run_at(position)?;
            }
            let Some((first, run)) = &held else {
                continue;
            };
            let seq = run.seqs[(position - first) as usize];
            let entry = self.run_entries(&run.origin, &[seq])?;
            out.extend(entry.into_iter().map(|entry| {
                let record = FeedRecord {
                    origin: run.origin.clone(),
                    entry,
                };
                (position, record)
            }));
        }
        Ok(out)
    }

    /// Turns feed records written before runs (`feed/<position>`, the entry's bytes) into
    /// runs naming the log's entries, a batch at a time (each batch whole: a crash midway
    /// leaves records of both kinds, each position in one, and the next opening goes on).
    /// A record that does not hold its log's entry, byte for byte, is damage: nothing of its
    /// batch is turned, and the store does not open. Answers how many records it turned.
    pub(super) fn migrate_feed(&self) -> Result<u64> {
        let mut turned = 0;
        loop {
            let mut items: Vec<(u64, StoreId, u64)> = Vec::new();
            let mut batch = Writes::default();
            for kv in self.db.scan_prefix(OLD).take(MIGRATE_BATCH) {
                let (key, value) = kv?;
                let position = position_of(&key, OLD)?;
                // The old form: a `FeedRecord` as it is.
                let old: FeedRecord = decode(&key, &value)?;
                let damaged =
                    |why: String| HubStoreError::Damaged(format!("feed/{position}: {why}"));
                let seq = protocol::entry::Entry::decode(&old.entry)
                    .map_err(|e| damaged(e.to_string()))?
                    .seq;
                match self.db.get(log_key(&old.origin, seq))? {
                    Some(logged) if logged == old.entry.as_slice() => {}
                    _ => {
                        return Err(damaged(format!(
                            "{}'s log does not hold this entry {seq}",
                            old.origin
                        )));
                    }
                }
                batch.remove(key);
                items.push((position, old.origin, seq));
            }
            if items.is_empty() {
                break;
            }
            turned += items.len() as u64;
            // Runs of one origin's consecutive entries each, none longer than a batch of a
            // store's (a run is read as one range of its log, and whole for one position).
            let mut start = 0;
            while start < items.len() {
                let mut end = start + 1;
                while end < items.len()
                    && end - start < RUN_FROM_OLD_MAX
                    && items[end].1 == items[start].1
                    && items[end].2 == items[end - 1].2 + 1
                {
                    end += 1;
                }
                let run: Vec<(u64, u64)> = items[start..end].iter().map(|i| (i.0, i.2)).collect();
                write_runs(&mut batch, &items[start].1, &run);
                start = end;
            }
            self.apply(batch)?;
        }
        if turned > 0 {
            self.sync()?;
        }
        Ok(turned)
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::entry;
    use super::*;

    fn store(name: &str) -> StoreId {
        StoreId::parse(name).unwrap()
    }

    /// A directory of its own, removed when the test ends.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("hub-feed-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn feed_records_written_before_runs_are_read_the_same_after_migrating() {
        let dir = Dir::new("migrate");
        let (s1, s2) = (store("S001"), store("S002"));
        let expected: Vec<(u64, FeedRecord)>;
        {
            let hub = SledHubStore::open(&dir.0).unwrap();
            // Two stores' logs, and the feed as data written before runs held it: S001's 1
            // and 2, S002's 1, S001's 4 (3 never went into the feed).
            let mut batch = Writes::default();
            for (s, seq) in [(&s1, 1), (&s1, 2), (&s1, 3), (&s1, 4), (&s2, 1)] {
                batch.insert(log_key(s, seq), entry(s, seq));
            }
            let order = [(&s1, 1), (&s1, 2), (&s2, 1), (&s1, 4)];
            expected = order
                .iter()
                .enumerate()
                .map(|(n, (s, seq))| {
                    let record = FeedRecord {
                        origin: (*s).clone(),
                        entry: entry(s, *seq),
                    };
                    (n as u64 + 1, record)
                })
                .collect();
            for (position, record) in &expected {
                let mut key = OLD.to_vec();
                key.extend(position.to_be_bytes());
                batch.insert(key, encode(record));
            }
            batch.insert(&b"meta/feed_len"[..], encode(&4u64));
            hub.apply(batch).unwrap();
            hub.sync().unwrap();
        }
        let hub = crate::backup::open_when_unlocked(&dir.0).unwrap();
        assert!(
            hub.db.scan_prefix(OLD).next().is_none(),
            "every old record turned"
        );
        assert_eq!(hub.feed(1, 10).unwrap(), expected);
        assert_eq!(hub.feed(3, 1).unwrap(), expected[2..3].to_vec());
        let at = hub.feed_at(&[2, 4, 7]).unwrap();
        assert_eq!(at, vec![expected[1].clone(), expected[3].clone()]);
        assert_eq!(hub.migrate_feed().unwrap(), 0, "nothing left to turn");
    }

    #[test]
    fn an_old_feed_record_its_log_does_not_hold_stops_the_opening_and_nothing_is_turned() {
        let dir = Dir::new("mismatch");
        let s1 = store("S001");
        {
            let hub = SledHubStore::open(&dir.0).unwrap();
            let mut batch = Writes::default();
            batch.insert(log_key(&s1, 1), entry(&s1, 1));
            batch.insert(log_key(&s1, 2), entry(&s1, 2));
            // Position 1 holds the log's entry 1; position 2 bytes the log does not hold.
            let mut other = entry(&s1, 2);
            let last = other.len() - 1;
            other[last] ^= 1;
            for (position, bytes) in [(1u64, entry(&s1, 1)), (2, other)] {
                let mut key = OLD.to_vec();
                key.extend(position.to_be_bytes());
                let record = FeedRecord {
                    origin: s1.clone(),
                    entry: bytes,
                };
                batch.insert(key, encode(&record));
            }
            hub.apply(batch).unwrap();
            hub.sync().unwrap();
        }
        let refused = loop {
            match SledHubStore::open(&dir.0) {
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => break opened.err().expect("the opening refused"),
            }
        };
        assert!(refused.to_string().contains("feed/2"), "{refused}");
        let db = sled::open(&dir.0).unwrap();
        assert_eq!(db.scan_prefix(OLD).count(), 2, "both old records kept");
        assert_eq!(db.scan_prefix(RUN).count(), 0, "no run written");
    }

    #[test]
    fn a_run_naming_an_entry_its_log_lacks_is_damage_not_a_shorter_feed() {
        let dir = Dir::new("damaged");
        let hub = SledHubStore::open(&dir.0).unwrap();
        let s1 = store("S001");
        let mut batch = Writes::default();
        batch.insert(log_key(&s1, 1), entry(&s1, 1));
        write_runs(&mut batch, &s1, &[(1, 1), (2, 2)]);
        hub.apply(batch).unwrap();
        let err = hub.feed(1, 10).unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }
}
