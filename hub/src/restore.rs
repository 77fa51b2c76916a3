//! Giving a store back its own log (sync version 8): a store whose data came back from an older
//! backup, or a new PC enrolled for it, says hello with a log shorter than headquarters' copy.
//! Headquarters sends the missing entries from its copy, each where it belongs in the feed:
//! an entry that went into the feed at position `p` goes right after the feed before `p`, and
//! the entries before it that never went into the feed (a cash sale, a stock count) go with it.
//! Whatever an entry of the store followed (a grant, a member another store registered) was in
//! the feed before the store wrote it, so before the position headquarters gave it; and no other
//! store's entry follows one that never went into the feed. The rest go after the whole feed.

use anyhow::Context;
use protocol::StoreId;
use protocol::entry::Entry;
use protocol::sync::{self, FeedItem};

use crate::server::FeedBatch;
use crate::storage::HubStore;

/// A store being given back its log: the next of its entries to send, and the last one
/// headquarters held when the session began (the store writes nothing before it has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restoring {
    pub next: u64,
    pub held: u64,
}

/// What goes to a restoring store next: a feed batch, or entries of its own log.
#[derive(Debug)]
pub enum Step {
    Feed(FeedBatch),
    /// Entries of its own log, with the keys of the members they register; then the store has
    /// the feed up to `upto`.
    Own {
        upto: u64,
        entries: Vec<Vec<u8>>,
        keys: Vec<(protocol::MemberId, Option<protocol::seal::MemberKey>)>,
    },
}

impl Restoring {
    /// Every entry has gone.
    pub fn done(&self) -> bool {
        self.next > self.held
    }

    /// The next step after feed position `sent` (the feed is durable up to `durable`): the feed
    /// before the next entry of the store's own in it; that entry with those before it that
    /// never went into the feed; or, past the end of the feed, the rest of the store's log.
    pub fn step(
        &mut self,
        storage: &dyn HubStore,
        routes: Option<&std::sync::RwLock<crate::routes::Routes>>,
        listed: bool,
        store: &StoreId,
        sent: u64,
        durable: u64,
    ) -> anyhow::Result<Step> {
        if sent < durable {
            let window = crate::server::FEED_BATCH_MAX.min((durable - sent) as usize);
            let mut own = None;
            for (p, r) in storage.feed(sent + 1, window)? {
                if &r.origin != store {
                    continue;
                }
                // An entry of the store's that cannot be read would be put out of its place.
                let seq = Entry::decode(&r.entry)
                    .with_context(|| format!("{store}'s feed record at position {p}"))?
                    .seq;
                if seq >= self.next {
                    own = Some((p, seq));
                    break;
                }
            }
            match own {
                Some((position, seq)) if position == sent + 1 => {
                    return self.own(storage, store, seq, (position, sent));
                }
                Some((position, _)) => {
                    return crate::server::read_feed(
                        storage,
                        routes,
                        listed,
                        store,
                        sent,
                        position - 1,
                    )
                    .map(Step::Feed);
                }
                // Only as far as the window looked: the store's next own record may lie just
                // past it, and must come before the records after it.
                None => {
                    let looked = sent + window as u64;
                    return crate::server::read_feed(storage, routes, listed, store, sent, looked)
                        .map(Step::Feed);
                }
            }
        }
        self.own(storage, store, self.held, (sent, sent))
    }

    /// The store's own entries from `next` up to `last`, as many as one message takes; the
    /// feed is then at `at.0` if they reach `last`, else still at `at.1`.
    fn own(
        &mut self,
        storage: &dyn HubStore,
        store: &StoreId,
        last: u64,
        at: (u64, u64),
    ) -> anyhow::Result<Step> {
        let wanted = (last + 1).saturating_sub(self.next) as usize;
        let mut entries = storage.entries(store, self.next, wanted.min(sync::PUSH_ENTRIES_MAX))?;
        let mut bytes = 0;
        let keep = entries
            .iter()
            .take_while(|e| {
                bytes += e.len();
                bytes <= sync::PUSH_BYTES_MAX
            })
            .count()
            .max(1);
        entries.truncate(keep);
        anyhow::ensure!(
            !entries.is_empty() || wanted == 0,
            "headquarters' copy of {store}'s log has no entry {}",
            self.next
        );
        // Consecutive from `next` and no further than `last`: a gap in headquarters' copy is
        // said here, not sent out of place for the store to refuse.
        for (i, bytes) in entries.iter().enumerate() {
            let seq = Entry::decode(bytes)
                .with_context(|| format!("{store}'s entry {} at headquarters", self.next))?
                .seq;
            anyhow::ensure!(
                seq == self.next + i as u64 && seq <= last,
                "headquarters' copy of {store}'s log has entry {seq} where {} belongs",
                self.next + i as u64
            );
        }
        self.next += entries.len() as u64;
        let upto = if self.next > last { at.0 } else { at.1 };
        let items: Vec<FeedItem> = entries
            .iter()
            .map(|e| FeedItem {
                position: upto,
                entry: e.clone(),
            })
            .collect();
        let keys = crate::server::feed_keys(storage, &items)?;
        Ok(Step::Own {
            upto,
            entries,
            keys,
        })
    }
}
