//! A store whose log is behind headquarters' copy of it: its data came back from an older
//! backup, or a new PC was enrolled for it (换机). Headquarters holds every entry of this
//! store's log it acknowledged, and sends the missing ones back in its feed, in the order it
//! ingested them (sync version 8): each is after every feed item the store had applied when it
//! wrote it, so appending them as they come replays a valid history of this store.
//!
//! Until the log is whole again the store writes no entry of its own: its next entry would take
//! a seq headquarters already holds for another (a sale numbered twice, a broken chain). A mark
//! in the store (`meta/restore_to`) keeps that rule across a restart: the seq to reach, or
//! "unknown" for data restored by `ops restore` (or a new PC) until headquarters says where
//! its copy ends. A request retried with the key of a restored entry is answered
//! `RecordedBeforeRestore`, never done again.

use super::feed::take_keys;
use super::*;

/// The mark: the seq this store's log must reach before it writes again.
pub const RESTORE_TO: &[u8] = b"meta/restore_to";
/// The mark's value until headquarters says how far its copy goes.
pub const UNKNOWN: u64 = u64::MAX;

/// Marks a store (a restored backup, a new PC) as writing nothing of its own until
/// headquarters has said how far its copy of the log goes. `Journal::open` reads the mark.
pub fn mark_unknown(store: &dyn Store) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    batch.put(RESTORE_TO.to_vec(), views::encode(&UNKNOWN));
    store.apply(batch)?;
    store.flush()
}

/// The mark, if the store has one.
pub fn restore_to(store: &dyn Store) -> Result<Option<u64>, StoreError> {
    store
        .get(RESTORE_TO)?
        .map(|bytes| views::decode(RESTORE_TO, &bytes))
        .transpose()
}

impl Journal {
    /// Refuses to write an entry of this store's own while its log is being restored.
    pub(super) fn check_whole(&self) -> Result<(), Rejection> {
        match self.restore_to {
            None => Ok(()),
            Some(to) => Err(Rejection::Restoring {
                have: self.tip.next_seq - 1,
                need: if to == UNKNOWN {
                    "? (waiting for headquarters)".into()
                } else {
                    to.to_string()
                },
            }),
        }
    }

    /// How far headquarters holds this store's log, as it said when it welcomed the store:
    /// further than here, the store restores up to it; otherwise the log is whole.
    pub fn hub_holds(&mut self, seq: u64) -> Result<Reply, Rejection> {
        let have = self.tip.next_seq - 1;
        let mut batch = Batch::default();
        // What is remembered changes only once the store has it (an error leaves both as
        // they were).
        let restore_to = if seq > have {
            tracing::warn!(
                have,
                headquarters = seq,
                "this store's log is behind headquarters' copy: restoring it from there; \
                 nothing is recorded here until it is whole"
            );
            batch.put(RESTORE_TO.to_vec(), views::encode(&seq));
            Some(seq)
        } else {
            if self.restore_to.is_some() {
                tracing::info!(
                    have,
                    "headquarters holds no more of this store's log: it is whole"
                );
                batch.delete(RESTORE_TO.to_vec());
            }
            None
        };
        self.store.apply(batch)?;
        self.restore_to = restore_to;
        Ok(Reply {
            outcome: Outcome::FeedApplied {
                upto: self.feed_applied()?,
            },
            replayed: false,
        })
    }

    /// Appends entries of this store's own log from headquarters' copy, the next ones in order
    /// (those held already are skipped), with the keys of the members they register, and takes
    /// the feed as applied up to `upto`: one batch.
    pub fn restore(
        &mut self,
        upto: u64,
        entries: Vec<Vec<u8>>,
        member_keys: Vec<(MemberId, Option<MemberKey>)>,
    ) -> Result<Reply, Rejection> {
        let now_ms = (self.env.now_ms)();
        let applied = self.feed_applied()?;
        let store = self.store.clone();
        let mut ov = Overlay::new(&*store);
        take_keys(&mut ov, member_keys)?;
        // The tip and the mark move with the batch: back as they were if it is not written.
        let (tip, restore_to) = (self.tip, self.restore_to);
        let written = (|| {
            for bytes in entries {
                self.restore_own(&mut ov, bytes, now_ms)?;
            }
            if upto > applied {
                ov.put(keys::FEED_APPLIED.to_vec(), views::encode(&upto));
            }
            self.store.apply(ov.into_batch())?;
            Ok::<(), Rejection>(())
        })();
        if let Err(e) = written {
            (self.tip, self.restore_to) = (tip, restore_to);
            return Err(e);
        }
        Ok(Reply {
            outcome: Outcome::FeedApplied {
                upto: upto.max(applied),
            },
            replayed: false,
        })
    }

    /// Appends one entry of this store's own log, if it is the next one and the store is
    /// restoring (otherwise it holds it already), with its views and a request record.
    fn restore_own(
        &mut self,
        ov: &mut Overlay<'_>,
        bytes: Vec<u8>,
        now_ms: u64,
    ) -> Result<(), Rejection> {
        let Some(to) = self.restore_to else {
            return Ok(());
        };
        let entry = Entry::decode(&bytes)
            .map_err(|e| Rejection::RestoreBroken(format!("an entry that does not decode: {e}")))?;
        if entry.seq < self.tip.next_seq {
            return Ok(());
        }
        let tip = self
            .tip
            .extend(&self.settings.store_id, &entry)
            .map_err(|e| Rejection::RestoreBroken(e.to_string()))?;
        if let Err(skew) = self.clock.observe(now_ms, entry.hlc) {
            tracing::warn!(seq = entry.seq, %skew, "a restored entry from the future");
        }
        views::apply_own_entry(ov, &entry, &self.settings.calendar)?;
        self.follow_own(ov, &entry)?;
        ov.put(keys::log(&entry.origin, entry.seq), bytes);
        let record = RequestRecord {
            fingerprint: [0; 32],
            outcome: Outcome::Restored { seq: entry.seq },
        };
        ov.put(keys::idempotency(&entry.tx), views::encode(&record));
        self.tip = tip;
        if entry.seq >= to {
            tracing::info!(seq = entry.seq, "this store's log is whole again");
            ov.delete(RESTORE_TO.to_vec());
            self.restore_to = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::*;
    use crate::store::MemStore;

    /// A store's log of `n` cash sales, as headquarters holds it.
    fn sold(n: usize) -> Vec<Vec<u8>> {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(1)).unwrap();
        for i in 0..n {
            let key = format!("sale-key-{i:04}");
            journal
                .handle(Command::QuickCheckout(request(&key, sale(None, "9.90"))))
                .unwrap();
        }
        journal.flush().unwrap();
        let prefix = keys::log_prefix(&settings().store_id);
        store
            .scan_prefix(&prefix)
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn a_restoring_store_records_nothing_until_its_log_is_whole_and_no_request_twice() {
        let log = sold(3);
        let store = Arc::new(MemStore::default());
        mark_unknown(&*store).unwrap();
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(2)).unwrap();
        let early = journal.handle(Command::QuickCheckout(request(
            "new-sale-01",
            sale(None, "1"),
        )));
        assert!(matches!(early, Err(Rejection::Restoring { have: 0, .. })));

        journal.hub_holds(3).unwrap();
        // An entry that does not follow the log here is refused, and nothing moves.
        let skipped = journal.restore(0, vec![log[1].clone()], vec![]);
        assert!(
            matches!(skipped, Err(Rejection::RestoreBroken(_))),
            "{skipped:?}"
        );
        assert_eq!(journal.tip().next_seq, 1);
        journal.restore(0, log[..2].to_vec(), vec![]).unwrap();
        let still = journal.handle(Command::QuickCheckout(request(
            "new-sale-01",
            sale(None, "1"),
        )));
        assert!(matches!(still, Err(Rejection::Restoring { have: 2, .. })));
        // Sent again (a reconnect), what is held is skipped.
        journal.restore(0, log.clone(), vec![]).unwrap();
        journal.flush().unwrap();
        assert_eq!(restore_to(&*store).unwrap(), None, "the mark is gone");

        let retried = journal.handle(Command::QuickCheckout(request(
            "sale-key-0001",
            sale(None, "9.90"),
        )));
        assert!(
            matches!(
                retried,
                Err(Rejection::RecordedBeforeRestore { seq: 2, .. })
            ),
            "{retried:?}"
        );
        let next = journal.handle(Command::QuickCheckout(request(
            "new-sale-01",
            sale(None, "1"),
        )));
        assert!(next.is_ok(), "{next:?}");
        assert_eq!(journal.tip().next_seq, 5);
        journal.flush().unwrap();
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }
}
