//! The routed feed at headquarters: which feed records reach which store (`protocol::route`),
//! who follows each member, and the positions of each member's records for a new follower's
//! backfill. Kept in memory, built from the feed and the stored follows at start, grown by the
//! ingest thread as it appends; the sessions (and the simulator) read it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use protocol::entry::Entry;
use protocol::route::Route;
use protocol::sync::FeedItem;
use protocol::{MemberId, StoreId};

use crate::storage::{HubStore, HubStoreError};

/// The most feed positions one look for a store's next batch goes over.
const SCAN_MAX: u64 = 200_000;

/// The routes as the ingest thread writes them and the sessions read them.
pub type SharedRoutes = Arc<RwLock<Routes>>;

#[derive(Debug, Default)]
pub struct Routes {
    /// The route of feed position `i + 1`.
    routes: Vec<Route>,
    /// Each member's positions, in order.
    by_member: HashMap<MemberId, Vec<u64>>,
    followers: HashMap<MemberId, HashSet<StoreId>>,
}

impl Routes {
    /// Reads every feed record once (decoding its entry) and every stored follow.
    pub fn load(storage: &dyn HubStore) -> Result<Routes, HubStoreError> {
        let mut routes = Routes::default();
        let len = storage.feed_len()?;
        let mut next = 1;
        while next <= len {
            let records = storage.feed(next, 4096)?;
            if records.is_empty() {
                break;
            }
            for (position, record) in records {
                let route = Entry::decode(&record.entry)
                    .map(|entry| Route::of(&entry))
                    .unwrap_or_default();
                routes.add(position, route);
                next = position + 1;
            }
        }
        for (member, store) in storage.follows()? {
            routes.followers.entry(member).or_default().insert(store);
        }
        Ok(routes)
    }

    /// Takes in the route of the next feed position.
    pub fn add(&mut self, position: u64, route: Route) {
        debug_assert_eq!(
            position,
            self.routes.len() as u64 + 1,
            "feed positions are dense"
        );
        if let Some(member) = route.member() {
            self.by_member.entry(member).or_default().push(position);
        }
        self.routes.push(route);
    }

    /// Whether the record at `position` goes to `store` (never its own: the caller skips those).
    pub fn reaches(&self, store: &StoreId, position: u64) -> bool {
        let Some(route) = usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|i| self.routes.get(i))
        else {
            return true; // not routed yet: nothing is withheld by mistake
        };
        route.reaches(store, |member| self.follows(store, member))
    }

    /// The member whose listing goes to `store` in place of the record at `position` (their
    /// registration or edit, to a store that does not follow them), if so.
    pub fn listing_for(&self, store: &StoreId, position: u64) -> Option<MemberId> {
        let route = usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|i| self.routes.get(i))?;
        route.listing_for(|member| self.follows(store, member))
    }

    /// The positions after `sent` up to `durable` that reach `store`, at most `max` of them,
    /// and the last position looked at (where the next batch starts after). Looks at no more
    /// than `SCAN_MAX` positions at a time, so the lock is held briefly.
    pub fn reaching(
        &self,
        store: &StoreId,
        sent: u64,
        durable: u64,
        max: usize,
    ) -> (Vec<u64>, u64) {
        let mut out = Vec::new();
        let mut last = sent;
        let end = durable.min(sent.saturating_add(SCAN_MAX));
        for position in sent + 1..=end {
            if out.len() == max {
                break;
            }
            last = position;
            if self.reaches(store, position) {
                out.push(position);
            }
        }
        (out, last)
    }

    pub fn follows(&self, store: &StoreId, member: &MemberId) -> bool {
        self.followers
            .get(member)
            .is_some_and(|stores| stores.contains(store))
    }

    /// The stores that follow `member` (hold them whole: every other store holds their
    /// listing), sorted.
    pub fn followers(&self, member: &MemberId) -> Vec<StoreId> {
        let mut stores: Vec<StoreId> = self
            .followers
            .get(member)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        stores.sort();
        stores
    }

    pub fn follow(&mut self, store: &StoreId, member: MemberId) {
        self.followers
            .entry(member)
            .or_default()
            .insert(store.clone());
    }

    /// The positions of `member`'s records up to `upto`.
    pub fn history(&self, member: &MemberId, upto: u64) -> Vec<u64> {
        self.by_member
            .get(member)
            .map_or_else(Vec::new, |positions| {
                positions
                    .iter()
                    .copied()
                    .take_while(|p| *p <= upto)
                    .collect()
            })
    }

    /// How many stores follow how many members (for the status page and the benchmarks).
    pub fn follow_count(&self) -> usize {
        self.followers.values().map(HashSet::len).sum()
    }
}

/// What the feed sends each store, routed, next to what it would send if every store got every
/// other store's entries (`hub feed-stats`; BENCHMARKS.md).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedStats {
    pub feed_entries: u64,
    pub stores: u64,
    pub members_followed: u64,
    /// Per store, on average and at the store that gets the most.
    pub routed_entries_mean: u64,
    pub routed_entries_max: u64,
    pub routed_bytes_mean: u64,
    pub routed_bytes_max: u64,
    pub broadcast_entries_mean: u64,
    pub broadcast_bytes_mean: u64,
    /// Of the routed, per store on average: members' wallet changes (the rest is what every
    /// store gets: the directory, the catalogue, staff and rules).
    pub wallet_entries_mean: u64,
    pub wallet_bytes_mean: u64,
    /// Of the routed, per store on average: members' listings (会员名录), in place of the
    /// profile changes of members the store does not follow.
    pub listing_entries_mean: u64,
    pub listing_bytes_mean: u64,
}

/// Counts, for every store that wrote to the feed, the records the routed feed sends it (live
/// or as a member's history: with the follows as they are now) and those a broadcast would.
///
/// A listing is counted at its size now (headquarters makes it from the member's record when
/// it sends), for every profile change of a member the store does not follow: a store that
/// catches up gets fewer (only the last of one member's in a batch).
pub fn feed_stats(storage: &dyn HubStore) -> Result<FeedStats, HubStoreError> {
    let routes = Routes::load(storage)?;
    let mut stores: HashMap<StoreId, Counted> = HashMap::new();
    let (mut total_entries, mut total_bytes) = (0u64, 0u64);
    // Each record counted once per store; the feed is read in chunks.
    let mut records = Vec::new();
    let mut next = 1;
    loop {
        let chunk = storage.feed(next, 4096)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        next = last + 1;
        for (position, record) in chunk {
            stores.entry(record.origin.clone()).or_default();
            total_entries += 1;
            total_bytes += record.entry.len() as u64;
            let len = record.entry.len() as u64;
            // A listing's size, or the entry's own (a member from before keys), or none (erased).
            let listed = match routes.routes[(position - 1) as usize] {
                Route::Listed { member } => {
                    match crate::server::listing(storage, record.entry, member)? {
                        crate::server::Listing::Listed(l) => Some(Some(l.len() as u64)),
                        crate::server::Listing::AsItIs(_) => Some(Some(len)),
                        crate::server::Listing::Erased => Some(None),
                    }
                }
                _ => None,
            };
            records.push((position, record.origin, len, listed));
        }
    }
    stores.remove(&StoreId::hq());
    let mut own: HashMap<StoreId, (u64, u64)> = HashMap::new();
    for (_, origin, len, _) in &records {
        let o = own.entry(origin.clone()).or_default();
        o.0 += 1;
        o.1 += len;
    }
    for (store, counted) in stores.iter_mut() {
        for (position, origin, len, listed) in &records {
            if origin == store || !routes.reaches(store, *position) {
                continue;
            }
            match (routes.listing_for(store, *position), listed) {
                (Some(_), Some(None)) => {} // an erased member's: not sent
                (Some(_), Some(Some(listed))) => {
                    counted.add(*listed);
                    counted.listings.0 += 1;
                    counted.listings.1 += listed;
                }
                (None, _) | (Some(_), None) => {
                    counted.add(*len);
                    if let Route::Member { .. } = routes.routes[(*position - 1) as usize] {
                        counted.wallet.0 += 1;
                        counted.wallet.1 += len;
                    }
                }
            }
        }
    }
    let n = stores.len().max(1) as u64;
    let broadcast: (u64, u64) = stores.keys().fold((0, 0), |acc, store| {
        let (e, b) = own.get(store).copied().unwrap_or_default();
        (acc.0 + total_entries - e, acc.1 + total_bytes - b)
    });
    Ok(FeedStats {
        feed_entries: total_entries,
        stores: stores.len() as u64,
        members_followed: routes.follow_count() as u64,
        routed_entries_mean: stores.values().map(|r| r.routed.0).sum::<u64>() / n,
        routed_entries_max: stores.values().map(|r| r.routed.0).max().unwrap_or(0),
        routed_bytes_mean: stores.values().map(|r| r.routed.1).sum::<u64>() / n,
        routed_bytes_max: stores.values().map(|r| r.routed.1).max().unwrap_or(0),
        broadcast_entries_mean: broadcast.0 / n,
        broadcast_bytes_mean: broadcast.1 / n,
        wallet_entries_mean: stores.values().map(|r| r.wallet.0).sum::<u64>() / n,
        wallet_bytes_mean: stores.values().map(|r| r.wallet.1).sum::<u64>() / n,
        listing_entries_mean: stores.values().map(|r| r.listings.0).sum::<u64>() / n,
        listing_bytes_mean: stores.values().map(|r| r.listings.1).sum::<u64>() / n,
    })
}

/// What one store is sent (entries, bytes): all of it, and of it wallet changes and listings.
#[derive(Default)]
struct Counted {
    routed: (u64, u64),
    wallet: (u64, u64),
    listings: (u64, u64),
}

impl Counted {
    fn add(&mut self, len: u64) {
        self.routed.0 += 1;
        self.routed.1 += len;
    }
}

/// Makes `store` a follower of `members` (durably first) and reads each one's history up to
/// `durable` (the feed length already flushed), without the store's own records: what
/// `HubSession::backfill` sends. Storage reads block: call it off the async threads.
pub fn follow(
    storage: &dyn HubStore,
    routes: &RwLock<Routes>,
    store: &StoreId,
    members: &[MemberId],
    durable: u64,
) -> Result<Vec<(MemberId, Vec<FeedItem>)>, HubStoreError> {
    let fresh: Vec<MemberId> = {
        let routes = routes.read().expect("routes lock");
        members
            .iter()
            .filter(|m| !routes.follows(store, m))
            .copied()
            .collect()
    };
    if !fresh.is_empty() {
        storage.add_follows(store, &fresh)?;
        let mut routes = routes.write().expect("routes lock");
        for member in &fresh {
            routes.follow(store, *member);
        }
    }
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        let positions = routes.read().expect("routes lock").history(member, durable);
        let mut items = Vec::with_capacity(positions.len());
        for position in positions {
            for (position, record) in storage.feed(position, 1)? {
                if &record.origin != store {
                    items.push(FeedItem {
                        position,
                        entry: record.entry,
                    });
                }
            }
        }
        out.push((*member, items));
    }
    Ok(out)
}
