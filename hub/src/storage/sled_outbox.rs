//! The outbox in sled: `ob/m/<id>` a notice and its delivery, `ob/q/<queue><due BE><id>` the
//! pending ones by queue and due time, `ob/t/<made BE><id>` all of them by when they were made.
//! How many stand in each state is kept in memory, counted at open and changed under one lock
//! with every write, so the outbox page never reads the whole outbox.

use super::*;

const NOTICES: &[u8] = b"ob/m/";
const DUE: &[u8] = b"ob/q/";
const MADE: &[u8] = b"ob/t/";
const SENT: &[u8] = b"ob/c/";

fn sent_key(day: chrono::NaiveDate, member: &MemberId) -> Vec<u8> {
    [SENT, format!("{day}/{member}").as_bytes()].concat()
}

fn notice_key(id: &str) -> Vec<u8> {
    [NOTICES, id.as_bytes()].concat()
}

fn due_key(queue: u8, due_ms: u64, id: &str) -> Vec<u8> {
    [DUE, &[queue], &due_ms.to_be_bytes()[..], id.as_bytes()].concat()
}

fn made_key(made_ms: u64, id: &str) -> Vec<u8> {
    [MADE, &made_ms.to_be_bytes()[..], id.as_bytes()].concat()
}

/// The notice id at the end of an `ob/q/` or `ob/t/` key, after `fixed` bytes.
fn id_after(key: &[u8], fixed: usize) -> String {
    String::from_utf8_lossy(&key[fixed..]).into_owned()
}

/// The outbox's counts, guarded: every write that changes a state holds it.
pub(super) struct Counted(std::sync::Mutex<NoticeCounts>);

/// The outbox's layout version, and the one before it kept due notices under `ob/d/<due><id>`
/// with no queue and no index by time.
const LAYOUT_KEY: &[u8] = b"meta/outbox_layout";
const LAYOUT: u8 = 2;
const DUE_BEFORE: &[u8] = b"ob/d/";

/// Brings an outbox of the layout before into this one, once: every pending notice queued
/// anew, every notice indexed by time.
fn migrate(db: &sled::Db) -> Result<()> {
    if db.get(LAYOUT_KEY)?.as_deref() == Some(&[LAYOUT][..]) {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for kv in db.scan_prefix(NOTICES) {
        let (k, v) = kv?;
        let (notice, d): (Notice, Delivery) = decode(&k, &v)?;
        batch.insert(made_key(notice.at_ms, &notice.id), &[][..]);
        if d.state == DeliveryState::Pending {
            batch.insert(
                due_key(queue(notice.purpose), d.next_ms, &notice.id),
                &[][..],
            );
        }
    }
    for key in db.scan_prefix(DUE_BEFORE).keys() {
        batch.remove(key?);
    }
    batch.insert(LAYOUT_KEY, &[LAYOUT][..]);
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}

impl Counted {
    /// Counts every notice in `db` (after bringing its layout up to date).
    pub(super) fn open(db: &sled::Db) -> Result<Self> {
        migrate(db)?;
        let mut counts = NoticeCounts::default();
        for kv in db.scan_prefix(NOTICES) {
            let (k, v) = kv?;
            let (_, d): (Notice, Delivery) = decode(&k, &v)?;
            counts.add(&d.state);
        }
        Ok(Self(std::sync::Mutex::new(counts)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NoticeCounts> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SledHubStore {
    fn notice(&self, id: &str) -> Result<Option<(Notice, Delivery)>> {
        let key = notice_key(id);
        self.db.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    /// Applies `batch` with `notices` queued in it (those not already there), and counts them;
    /// how many were new.
    pub(super) fn apply_with_notices(
        &self,
        mut batch: Writes,
        notices: &[Notice],
    ) -> Result<usize> {
        if notices.is_empty() {
            self.apply(batch)?;
            return Ok(0);
        }
        let mut counts = self.counted.lock();
        let mut new = BTreeSet::new();
        for notice in notices {
            if self.db.get(notice_key(&notice.id))?.is_none() && new.insert(notice.id.as_str()) {
                let due = Delivery::due(notice.at_ms);
                batch.insert(
                    due_key(queue(notice.purpose), due.next_ms, &notice.id),
                    &[][..],
                );
                batch.insert(made_key(notice.at_ms, &notice.id), &[][..]);
                batch.insert(notice_key(&notice.id), encode(&(notice, due)));
            }
        }
        self.apply(batch)?;
        for _ in &new {
            counts.add(&DeliveryState::Pending);
        }
        Ok(new.len())
    }

    pub(super) fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let mut out = Vec::new();
        for queue in [0, 1] {
            let range = due_key(queue, 0, "")..due_key(queue, now_ms.saturating_add(1), "");
            for kv in self.db.range(range) {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, _) = kv?;
                out.extend(self.notice(&id_after(&k, DUE.len() + 9))?);
            }
        }
        Ok(out)
    }

    pub(super) fn outbox_set(&self, id: &str, delivery: &Delivery) -> Result<()> {
        let mut counts = self.counted.lock();
        let Some((notice, before)) = self.notice(id)? else {
            return Ok(());
        };
        let queue = queue(notice.purpose);
        let mut batch = Writes::default();
        if before.state == DeliveryState::Pending {
            batch.remove(due_key(queue, before.next_ms, id));
        }
        if delivery.state == DeliveryState::Pending {
            batch.insert(due_key(queue, delivery.next_ms, id), &[][..]);
        }
        batch.insert(notice_key(id), encode(&(notice, delivery)));
        self.apply(batch)?;
        self.sync()?;
        counts.remove(&before.state);
        counts.add(&delivery.state);
        Ok(())
    }

    pub(super) fn outbox_latest(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(MADE).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            out.extend(self.notice(&id_after(&k, MADE.len() + 8))?);
        }
        Ok(out)
    }

    pub(super) fn outbox_counts(&self) -> NoticeCounts {
        *self.counted.lock()
    }

    pub(super) fn outbox_prune(&self, before_ms: u64, limit: usize) -> Result<usize> {
        let mut counts = self.counted.lock();
        let mut batch = Writes::default();
        let mut gone = Vec::new();
        for kv in self.db.range(made_key(0, "")..made_key(before_ms, "")) {
            if gone.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            let id = id_after(&k, MADE.len() + 8);
            match self.notice(&id)? {
                Some((_, d)) if d.state == DeliveryState::Pending => continue,
                Some((_, d)) => gone.push(d.state),
                None => {}
            }
            batch.remove(k);
            batch.remove(notice_key(&id));
        }
        // Days of marketing counts wholly before the cut-off (a day early: the key is a date).
        let day = chrono::DateTime::from_timestamp_millis(i64::try_from(before_ms).unwrap_or(0))
            .map(|t| t.date_naive() - chrono::TimeDelta::days(1));
        let mut counts_gone = 0;
        if let Some(day) = day {
            for kv in self
                .db
                .range(SENT.to_vec()..[SENT, day.to_string().as_bytes()].concat())
            {
                batch.remove(kv?.0);
                counts_gone += 1;
            }
        }
        if gone.is_empty() && counts_gone == 0 {
            return Ok(0);
        }
        self.apply(batch)?;
        self.sync()?;
        for state in &gone {
            counts.remove(state);
        }
        Ok(gone.len())
    }

    pub(super) fn outbox_queue(&self, notices: &[Notice]) -> Result<usize> {
        let new = self.apply_with_notices(Writes::default(), notices)?;
        self.sync()?;
        Ok(new)
    }

    pub(super) fn outbox_sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32> {
        let key = sent_key(day, member);
        self.db.get(&key)?.map_or(Ok(0), |v| decode(&key, &v))
    }

    pub(super) fn outbox_count_sent(
        &self,
        member: &MemberId,
        day: chrono::NaiveDate,
    ) -> Result<()> {
        let n = self.outbox_sent_on(member, day)?;
        let mut batch = Writes::default();
        batch.insert(sent_key(day, member), encode(&(n + 1)));
        self.apply(batch)?;
        self.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_of_the_layout_before_is_queued_anew_and_indexed_by_time() {
        let dir = std::env::temp_dir().join(format!("hub-outbox-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = sled::Config::new().path(&dir).open().unwrap();
        let notice = Notice {
            id: "S001-7-sv".into(),
            member: MemberId::mint(1, 7),
            purpose: protocol::notice::Purpose::Transactional,
            subject: protocol::notice::Subject::Birthday,
            store: StoreId::parse("S001").unwrap(),
            at_ms: 5_000,
        };
        // As the layout before wrote it: the record and `ob/d/<due><id>`.
        db.insert(
            notice_key(&notice.id),
            encode(&(&notice, Delivery::due(5_000))),
        )
        .unwrap();
        db.insert(
            [DUE_BEFORE, &5_000u64.to_be_bytes()[..], b"S001-7-sv"].concat(),
            &[][..],
        )
        .unwrap();
        drop(db);
        // sled's own threads may hold the file's lock a moment after the last handle goes.
        let store = crate::backup::open_when_unlocked(&dir).unwrap();
        let due = store.notices_due(10_000, 10).unwrap();
        assert_eq!(due.len(), 1, "queued anew");
        assert_eq!(
            store.latest_notices(10).unwrap().len(),
            1,
            "indexed by time"
        );
        assert_eq!(store.notice_counts().unwrap().pending, 1);
        assert!(store.db().scan_prefix(DUE_BEFORE).next().is_none());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
