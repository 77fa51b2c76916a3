//! In memory, for tests and the simulator.

use super::*;

/// In memory, for tests and the simulator: keeps what was flushed apart from what was only
/// written, so `crash()` leaves exactly what a power cut would.
#[derive(Default)]
pub struct MemHubStore {
    state: std::sync::Mutex<MemHub>,
}

#[derive(Default, Clone)]
struct MemHubState {
    logs: std::collections::BTreeMap<(StoreId, u64), Vec<u8>>,
    stores: std::collections::BTreeMap<StoreId, (ChainTip, StoreStatus)>,
    feed: std::collections::BTreeMap<u64, FeedRecord>,
    feed_len: u64,
    members: std::collections::BTreeMap<MemberId, MemberRecord>,
    phones: std::collections::BTreeMap<Phone, MemberId>,
    wallets: std::collections::BTreeMap<MemberId, Wallet>,
    fences: std::collections::BTreeMap<StoreId, Fence>,
    follows: std::collections::BTreeSet<(MemberId, StoreId)>,
    views: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    derived_version: Option<u32>,
    keys: std::collections::BTreeMap<MemberId, MemberKey>,
    /// Erased members and the hashes of their changes.
    erased: std::collections::BTreeMap<MemberId, Vec<[u8; 32]>>,
    notices: std::collections::BTreeMap<String, (Notice, Delivery)>,
    /// Marketing messages sent to a member on a day.
    sent: std::collections::BTreeMap<(chrono::NaiveDate, MemberId), u32>,
    revoked: std::collections::BTreeMap<StoreId, Revocation>,
}

#[derive(Default)]
struct MemHub {
    live: MemHubState,
    durable: MemHubState,
    /// Appends since the last flush, to bring `durable` up to date at the next one.
    unflushed: Vec<Owned>,
}

/// An [`Append`] that owns its store id, kept until it is flushed.
#[derive(Clone)]
struct Owned {
    store: StoreId,
    entries: Vec<(u64, Vec<u8>)>,
    tip: ChainTip,
    status: StoreStatus,
    feed: Vec<(u64, FeedRecord)>,
    feed_len: u64,
    members: Vec<MemberRecord>,
    phones: Vec<(Phone, Option<MemberId>)>,
    wallets: Vec<(MemberId, Wallet)>,
    views: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    keys: Vec<(MemberId, MemberKey)>,
    erased: Vec<MemberId>,
    notices: Vec<Notice>,
}

impl MemHubState {
    fn apply(&mut self, a: Owned) {
        for (id, key) in a.keys {
            if !self.erased.contains_key(&id) && !a.erased.contains(&id) {
                self.keys.entry(id).or_insert(key);
            }
        }
        for (seq, bytes) in a.entries {
            self.logs.insert((a.store.clone(), seq), bytes);
        }
        self.stores.insert(a.store, (a.tip, a.status));
        self.feed.extend(a.feed);
        self.feed_len = a.feed_len;
        for record in a.members {
            self.members.insert(record.member_id, record);
        }
        for id in &a.erased {
            let hashes = self
                .members
                .remove(id)
                .and_then(|r| protocol::member::MemberDoc::load(&r.doc).ok())
                .map(|mut doc| doc.change_hashes())
                .unwrap_or_default();
            self.keys.remove(id);
            self.erased.entry(*id).or_default().extend(hashes);
        }
        for (phone, member) in a.phones {
            match member {
                Some(id) => self.phones.insert(phone, id),
                None => self.phones.remove(&phone),
            };
        }
        self.wallets.extend(a.wallets);
        for (key, value) in a.views {
            match value {
                Some(value) => self.views.insert(key, value),
                None => self.views.remove(&key),
            };
        }
        for notice in a.notices {
            let due = Delivery::due(notice.at_ms);
            self.notices
                .entry(notice.id.clone())
                .or_insert((notice, due));
        }
    }
}

impl MemHubStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemHub> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything derived, whole (what a rebuild produced).
    pub fn derived(&self) -> Derived {
        let state = self.lock();
        let live = &state.live;
        Derived {
            members: live.members.values().cloned().collect(),
            phones: live.phones.iter().map(|(p, m)| (p.clone(), *m)).collect(),
            wallets: live.wallets.iter().map(|(m, w)| (*m, w.clone())).collect(),
            views: live
                .views
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Forgets everything written since the last flush.
    pub fn crash(&self) {
        let mut state = self.lock();
        state.unflushed.clear();
        state.live = state.durable.clone();
    }
}

impl HubStore for MemHubStore {
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>> {
        let state = self.lock();
        Ok(state
            .live
            .stores
            .iter()
            .map(|(s, (t, st))| (s.clone(), *t, st.clone()))
            .collect())
    }

    fn feed_len(&self) -> Result<u64> {
        Ok(self.lock().live.feed_len)
    }

    fn append(&self, a: Append<'_>) -> Result<()> {
        let feed = a.feed_records()?;
        let owned = Owned {
            store: a.store.clone(),
            entries: a.entries,
            tip: a.tip,
            status: a.status,
            feed,
            feed_len: a.feed_len,
            members: a.members,
            phones: a.phones,
            wallets: a.wallets,
            views: a.views,
            keys: a.keys,
            erased: a.erased,
            notices: a.notices,
        };
        let mut state = self.lock();
        state.live.apply(owned.clone());
        state.unflushed.push(owned);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut state = self.lock();
        let MemHub {
            durable, unflushed, ..
        } = &mut *state;
        for owned in unflushed.drain(..) {
            durable.apply(owned);
        }
        Ok(())
    }

    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        let state = self.lock();
        Ok(state
            .live
            .feed
            .range(from..)
            .take(limit)
            .map(|(p, r)| (*p, r.clone()))
            .collect())
    }

    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let state = self.lock();
        let range = state
            .live
            .logs
            .range((store.clone(), from_seq)..=(store.clone(), u64::MAX));
        Ok(range.take(limit).map(|(_, v)| v.clone()).collect())
    }

    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>> {
        Ok(self.lock().live.members.get(id).cloned())
    }

    /// The test double keeps nothing on disk: its index key is fixed.
    fn index_key(&self) -> IndexKey {
        IndexKey::from_bytes([0; 32])
    }

    fn member_key(&self, id: &MemberId) -> Result<KeyState> {
        let state = self.lock();
        Ok(match state.live.keys.get(id) {
            Some(k) => KeyState::Held(k.clone()),
            None if state.live.erased.contains_key(id) => KeyState::Erased,
            None => KeyState::Unknown,
        })
    }

    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>> {
        Ok(self.lock().live.erased.get(id).cloned().unwrap_or_default())
    }

    /// The test double reads every member, as the index must answer.
    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>> {
        let mut found: Vec<MemberRecord> = self
            .members()?
            .into_iter()
            .filter(|m| m.profile.matches(query))
            .collect();
        found.sort_by_key(|m| m.member_id.to_string());
        found.truncate(limit);
        Ok(found)
    }

    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>> {
        Ok(self.lock().live.phones.get(phone).copied())
    }

    fn members(&self) -> Result<Vec<MemberRecord>> {
        Ok(self.lock().live.members.values().cloned().collect())
    }

    fn members_after(&self, after: Option<&MemberId>, limit: usize) -> Result<Vec<MemberRecord>> {
        let state = self.lock();
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(*after),
            None => std::ops::Bound::Unbounded,
        };
        Ok(state
            .live
            .members
            .range((from, std::ops::Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn member_count(&self) -> Result<u64> {
        Ok(self.lock().live.members.len() as u64)
    }

    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>> {
        Ok(self.lock().live.wallets.get(id).cloned())
    }

    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>> {
        let state = self.lock();
        Ok(state
            .live
            .wallets
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn fences(&self) -> Result<Vec<(StoreId, Fence)>> {
        let state = self.lock();
        Ok(state.live.fences.clone().into_iter().collect())
    }

    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().live.views.get(key).cloned())
    }

    fn derived_version(&self) -> Result<Option<u32>> {
        Ok(self.lock().live.derived_version)
    }

    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            side.members = derived
                .members
                .iter()
                .map(|r| (r.member_id, r.clone()))
                .collect();
            side.phones = derived.phones.iter().cloned().collect();
            side.wallets = derived.wallets.iter().cloned().collect();
            side.views = derived.views.iter().cloned().collect();
            side.derived_version = Some(version);
        }
        Ok(())
    }

    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let state = self.lock();
        Ok(state
            .live
            .views
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn views_between(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let state = self.lock();
        Ok(state
            .live
            .views
            .range(from.to_vec()..to.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            match fence {
                Some(fence) => side.fences.insert(store.clone(), fence.clone()),
                None => side.fences.remove(store),
            };
        }
        Ok(())
    }

    fn notices_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let state = self.lock();
        let mut due: Vec<(Notice, Delivery)> = state
            .live
            .notices
            .values()
            .filter(|(_, d)| d.state == DeliveryState::Pending && d.next_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by(|a, b| {
            (queue(a.0.purpose), a.1.next_ms, &a.0.id).cmp(&(
                queue(b.0.purpose),
                b.1.next_ms,
                &b.0.id,
            ))
        });
        due.truncate(limit);
        Ok(due)
    }

    fn set_delivery(&self, id: &str, delivery: &Delivery) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            if let Some((_, d)) = side.notices.get_mut(id) {
                *d = delivery.clone();
            }
        }
        Ok(())
    }

    fn latest_notices(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        let mut all: Vec<(Notice, Delivery)> = self.lock().live.notices.values().cloned().collect();
        all.sort_by(|a, b| (b.0.at_ms, &b.0.id).cmp(&(a.0.at_ms, &a.0.id)));
        all.truncate(limit);
        Ok(all)
    }

    fn notice_counts(&self) -> Result<NoticeCounts> {
        let mut counts = NoticeCounts::default();
        for (_, d) in self.lock().live.notices.values() {
            counts.add(&d.state);
        }
        Ok(counts)
    }

    fn prune_notices(&self, before_ms: u64, limit: usize) -> Result<usize> {
        let mut state = self.lock();
        let mut old: Vec<(u64, String)> = state
            .live
            .notices
            .values()
            .filter(|(n, d)| n.at_ms < before_ms && d.state != DeliveryState::Pending)
            .map(|(n, _)| (n.at_ms, n.id.clone()))
            .collect();
        old.sort();
        old.truncate(limit);
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            for (_, id) in &old {
                side.notices.remove(id);
            }
        }
        Ok(old.len())
    }

    fn revoke(&self, store: &StoreId, revocation: &Revocation) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            side.revoked.insert(store.clone(), revocation.clone());
        }
        Ok(())
    }

    fn revocation(&self, store: &StoreId) -> Result<Option<Revocation>> {
        Ok(self.lock().live.revoked.get(store).cloned())
    }

    fn queue_notices(&self, notices: &[Notice]) -> Result<usize> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        let mut new = 0;
        for notice in notices {
            if live.notices.contains_key(&notice.id) {
                continue;
            }
            new += 1;
            for side in [&mut *live, &mut *durable] {
                side.notices.insert(
                    notice.id.clone(),
                    (notice.clone(), Delivery::due(notice.at_ms)),
                );
            }
        }
        Ok(new)
    }

    fn sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32> {
        Ok(self
            .lock()
            .live
            .sent
            .get(&(day, *member))
            .copied()
            .unwrap_or(0))
    }

    fn count_sent(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            *side.sent.entry((day, *member)).or_default() += 1;
        }
        Ok(())
    }

    fn add_follows(&self, store: &StoreId, members: &[MemberId]) -> Result<()> {
        let mut state = self.lock();
        let MemHub { live, durable, .. } = &mut *state;
        for side in [live, durable] {
            side.follows
                .extend(members.iter().map(|m| (*m, store.clone())));
        }
        Ok(())
    }

    fn follows(&self) -> Result<Vec<(MemberId, StoreId)>> {
        Ok(self.lock().live.follows.iter().cloned().collect())
    }
}
