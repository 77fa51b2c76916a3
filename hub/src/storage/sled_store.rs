//! The sled implementation: one tree, keys as `mod.rs` lists them, a flush that really
//! reaches the disk.

use super::*;

pub struct SledHubStore {
    pub(super) db: sled::Db,
    /// sled's own file: sled 0.34 ends a flush with `sync_file_range`, which neither empties the
    /// disk's volatile write cache nor writes the file's new size (sled issue #1452), so every
    /// flush is followed by an `fdatasync` of it (as the node's store does).
    log: std::fs::File,
    /// Appended since the last flush: a group that wrote nothing (asks, ticks) costs no flush.
    appended: std::sync::atomic::AtomicBool,
    /// Held by the flush in progress: a second flush (the outbox's, the flusher's) waits for
    /// it, so it never returns before what it covers is on disk.
    flushing: std::sync::Mutex<()>,
    index: IndexKey,
    pub(super) counted: super::sled_outbox::Counted,
    /// A reading of the whole store while writes go on (`sled_snapshot`).
    pub(super) snapshots: super::sled_snapshot::Snapshots,
}

const INDEX_KEY: &str = "meta/index_key";

impl SledHubStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new().path(dir).open()?;
        // With write access: Windows refuses to flush a handle opened read-only.
        let log = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("db"))
            .map_err(sled::Error::from)?;
        let index = match db.get(INDEX_KEY)? {
            Some(bytes) => bytes
                .as_ref()
                .try_into()
                .map_err(|_| HubStoreError::Damaged(INDEX_KEY.into()))?,
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| {
                    sled::Error::from(std::io::Error::other(format!("random source: {e}")))
                })?;
                db.insert(INDEX_KEY, &bytes[..])?;
                db.flush()?;
                log.sync_data().map_err(sled::Error::from)?;
                bytes
            }
        };
        let store = Self {
            counted: super::sled_outbox::Counted::open(&db)?,
            db,
            log,
            appended: std::sync::atomic::AtomicBool::new(false),
            flushing: std::sync::Mutex::new(()),
            index: IndexKey::from_bytes(index),
            snapshots: Default::default(),
        };
        let turned = store.migrate_feed()?;
        if turned > 0 {
            tracing::info!(
                turned,
                "feed records turned into runs naming the log's entries"
            );
        }
        Ok(store)
    }

    pub(super) fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::from)?;
        Ok(())
    }
}

pub(super) fn log_key(store: &StoreId, seq: u64) -> Vec<u8> {
    let mut key = format!("log/{store}").into_bytes();
    key.push(0);
    key.extend(seq.to_be_bytes());
    key
}

fn view_key(key: &[u8]) -> Vec<u8> {
    let mut out = b"v/".to_vec();
    out.extend_from_slice(key);
    out
}

impl SledHubStore {
    /// The database underneath, for tests that damage it on purpose.
    #[cfg(test)]
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Every key under `prefix`, in order.
    fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.db
            .scan_prefix(prefix)
            .keys()
            .map(|k| Ok(k?.to_vec()))
            .collect()
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        self.db
            .get(key)?
            .map(|v| decode(key.as_bytes(), &v))
            .transpose()
    }

    fn phone_key(&self, phone: &Phone) -> Vec<u8> {
        format!("p/{}", self.index.blind("phone", phone.as_str())).into_bytes()
    }

    fn sealed_record(&self, key: Option<&MemberKey>, record: &MemberRecord) -> Vec<u8> {
        seal_record(key, record)
    }

    fn open_record(&self, id: &MemberId, bytes: &[u8]) -> Result<Option<MemberRecord>> {
        open_record(id, bytes, || self.member_key(id))
    }

    /// The search index records member `id` is filed under: as written earlier in the batch
    /// being built (taken out of `filed`), else as stored.
    fn filed(
        &self,
        filed: &mut std::collections::HashMap<MemberId, BTreeSet<Vec<u8>>>,
        id: &MemberId,
    ) -> Result<BTreeSet<Vec<u8>>> {
        Ok(match filed.remove(id) {
            Some(keys) => keys,
            None => self
                .member(id)?
                .map(|old| old.profile.search_keys(id, &self.index))
                .unwrap_or_default(),
        })
    }

    fn held_key(&self, id: &MemberId) -> Result<Option<MemberKey>> {
        Ok(match self.member_key(id)? {
            KeyState::Held(k) => Some(k),
            _ => None,
        })
    }
}

impl HubStore for SledHubStore {
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"tip/") {
            let (key, value) = kv?;
            let name = String::from_utf8_lossy(&key[4..]).into_owned();
            let store = StoreId::parse(&name).map_err(|_| HubStoreError::Damaged(name.clone()))?;
            let tip: ChainTip = decode(&key, &value)?;
            let status_key = format!("st/{store}");
            let status = match self.db.get(&status_key)? {
                Some(bytes) => decode(status_key.as_bytes(), &bytes)?,
                None => StoreStatus::default(),
            };
            out.push((store, tip, status));
        }
        Ok(out)
    }

    fn feed_len(&self) -> Result<u64> {
        match self.db.get(b"meta/feed_len")? {
            Some(bytes) => decode(b"meta/feed_len", &bytes),
            None => Ok(0),
        }
    }

    fn append(&self, a: Append<'_>) -> Result<()> {
        a.check_feed()?;
        let mut batch = Writes::default();
        for (seq, bytes) in a.entries {
            batch.insert(log_key(a.store, seq), bytes);
        }
        batch.insert(format!("tip/{}", a.store).into_bytes(), encode(&a.tip));
        batch.insert(format!("st/{}", a.store).into_bytes(), encode(&a.status));
        super::sled_feed::write_runs(&mut batch, a.store, &a.feed);
        batch.insert(&b"meta/feed_len"[..], encode(&a.feed_len));
        // Keys first: the records below are sealed under them. An erased member's stays gone.
        let mut keys: std::collections::HashMap<MemberId, MemberKey> = Default::default();
        for (id, key) in &a.keys {
            if self.member_key(id)? == KeyState::Unknown && !a.erased.contains(id) {
                batch.insert(format!("k/{id}").into_bytes(), &key.as_bytes()[..]);
                keys.insert(*id, key.clone());
            }
        }
        // Each member's search index records move from what they were (stored, or earlier in
        // this batch) to what they are.
        let mut filed: std::collections::HashMap<MemberId, BTreeSet<Vec<u8>>> = Default::default();
        for record in &a.members {
            let id = record.member_id;
            let old = self.filed(&mut filed, &id)?;
            let new = record.profile.search_keys(&id, &self.index);
            for gone in old.difference(&new) {
                batch.remove(gone.as_slice());
            }
            for added in new.difference(&old) {
                batch.insert(added.as_slice(), &[][..]);
            }
            filed.insert(id, new);
            let key = match keys.get(&id) {
                Some(k) => Some(k.clone()),
                None => self.held_key(&id)?,
            };
            batch.insert(
                format!("m/{id}").into_bytes(),
                self.sealed_record(key.as_ref(), record),
            );
            batch.insert(
                format!("f/{id}").into_bytes(),
                seal_facets(key.as_ref(), &id, &record.profile),
            );
        }
        for id in &a.erased {
            for gone in self.filed(&mut filed, id)? {
                batch.remove(gone);
            }
            let mut hashes = self.erased_changes(id)?;
            if let Some(record) = self.member(id)? {
                let doc = protocol::member::MemberDoc::load(&record.doc)
                    .map_err(|e| HubStoreError::Damaged(format!("m/{id}: {e}")))?;
                hashes.extend(doc.clone().change_hashes());
            }
            batch.remove(format!("m/{id}").into_bytes());
            batch.remove(format!("f/{id}").into_bytes());
            batch.remove(format!("k/{id}").into_bytes());
            batch.insert(format!("e/{id}").into_bytes(), encode(&hashes));
        }
        for (phone, member) in &a.phones {
            match member {
                Some(id) => batch.insert(self.phone_key(phone), encode(id)),
                None => batch.remove(self.phone_key(phone)),
            }
        }
        for (member, wallet) in &a.wallets {
            batch.insert(format!("w/{member}").into_bytes(), encode(wallet));
        }
        for (key, value) in &a.views {
            let key = view_key(key);
            match value {
                Some(value) => batch.insert(key, value.as_slice()),
                None => batch.remove(key),
            }
        }
        self.apply_with_notices(batch, &a.notices)?;
        self.appended
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let _one = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        match self
            .appended
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            true => self.sync().inspect_err(|_| {
                // Not known durable: the next flush must try again.
                self.appended
                    .store(true, std::sync::atomic::Ordering::Release);
            }),
            false => Ok(()),
        }
    }

    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        self.read_feed(from, limit)
    }

    fn feed_at(&self, positions: &[u64]) -> Result<Vec<(u64, FeedRecord)>> {
        self.read_feed_at(positions)
    }

    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let range = self
            .db
            .range(log_key(store, from_seq)..=log_key(store, u64::MAX));
        range.take(limit).map(|kv| Ok(kv?.1.to_vec())).collect()
    }

    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>> {
        match self.db.get(format!("m/{id}"))? {
            Some(bytes) => self.open_record(id, &bytes),
            None => Ok(None),
        }
    }

    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>> {
        let key = self.phone_key(phone);
        self.db.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    fn members(&self) -> Result<Vec<MemberRecord>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"m/") {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k[2..]).into_owned();
            let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
            out.extend(self.open_record(&id, &v)?);
        }
        Ok(out)
    }

    fn members_after(&self, after: Option<&MemberId>, limit: usize) -> Result<Vec<MemberRecord>> {
        let from = match after {
            // The key just after `m/<after>`: ids have one length, so `\0` sorts next.
            Some(after) => format!("m/{after}\0").into_bytes(),
            None => b"m/".to_vec(),
        };
        let mut out = Vec::new();
        for kv in self.db.range(from..) {
            let (k, v) = kv?;
            if !k.starts_with(b"m/") || out.len() == limit {
                break;
            }
            let name = String::from_utf8_lossy(&k[2..]).into_owned();
            let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
            out.extend(self.open_record(&id, &v)?);
        }
        Ok(out)
    }

    fn facets_after(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<(MemberId, Facets)>> {
        let from = |prefix: &str| match after {
            Some(after) => format!("{prefix}{after}\0").into_bytes(),
            None => prefix.as_bytes().to_vec(),
        };
        // The members' keys are read alongside, in the same id order (`k/` beside `f/`),
        // rather than looked up one by one.
        let mut keys = self.db.range(from("k/")..).peekable();
        let mut sealed = Vec::new();
        for kv in self.db.range(from("f/")..) {
            let (k, v) = kv?;
            if !k.starts_with(b"f/") || sealed.len() == limit {
                break;
            }
            let mut key = None;
            loop {
                // Past the keys of members before this one (an erased member's is gone); an
                // error is taken out and returned.
                let behind = match keys.peek() {
                    Some(Ok((at, _))) => at.starts_with(b"k/") && at[2..] <= k[2..],
                    Some(Err(_)) => true,
                    None => false,
                };
                let Some(next) = keys.next_if(|_| behind) else {
                    break;
                };
                let (at, bytes) = next?;
                if at[2..] == k[2..] {
                    key = Some(bytes);
                    break;
                }
            }
            sealed.push((k, v, key));
        }
        let open = |(k, v, key): &(sled::IVec, sled::IVec, Option<sled::IVec>)| {
            let name = String::from_utf8_lossy(&k[2..]).into_owned();
            let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
            let facets = open_facets(&id, v, || match key {
                Some(bytes) => {
                    let bytes: [u8; 32] = bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| HubStoreError::Damaged(format!("k/{id}")))?;
                    Ok(KeyState::Held(MemberKey::from_bytes(bytes)))
                }
                None => self.member_key(&id),
            })?;
            Ok(facets.map(|f| (id, f)))
        };
        // Opening (a decryption each) on two threads.
        let (first, second) = sealed.split_at(sealed.len() / 2);
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| second.iter().map(open).collect::<Vec<_>>());
            let first: Vec<Result<Option<(MemberId, Facets)>>> = first.iter().map(open).collect();
            (first, second.join())
        });
        let second = second.map_err(|_| HubStoreError::Damaged("f/: a reader panicked".into()))?;
        let mut out = Vec::with_capacity(sealed.len());
        for opened in first.into_iter().chain(second) {
            out.extend(opened?);
        }
        Ok(out)
    }

    fn facets_of(&self, ids: &[MemberId]) -> Result<Vec<(MemberId, Facets)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) = self.db.get(format!("f/{id}"))? {
                out.extend(open_facets(id, &bytes, || self.member_key(id))?.map(|f| (*id, f)));
            }
        }
        Ok(out)
    }

    fn member_count(&self) -> Result<u64> {
        // An erased member's record is removed with it (`append`).
        let mut n = 0u64;
        for key in self.db.scan_prefix(b"m/").keys() {
            key?;
            n += 1;
        }
        Ok(n)
    }

    fn index_key(&self) -> IndexKey {
        self.index.clone()
    }

    fn member_key(&self, id: &MemberId) -> Result<KeyState> {
        if let Some(bytes) = self.db.get(format!("k/{id}"))? {
            let bytes: [u8; 32] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| HubStoreError::Damaged(format!("k/{id}")))?;
            return Ok(KeyState::Held(MemberKey::from_bytes(bytes)));
        }
        Ok(match self.db.get(format!("e/{id}"))? {
            Some(_) => KeyState::Erased,
            None => KeyState::Unknown,
        })
    }

    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>> {
        let key = format!("e/{id}");
        match self.db.get(&key)? {
            Some(bytes) if !bytes.is_empty() => decode(key.as_bytes(), &bytes),
            _ => Ok(Vec::new()),
        }
    }

    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>> {
        protocol::member::search_index(
            query,
            limit,
            &self.index,
            |prefix| self.keys_under(prefix),
            |id| self.member(id),
            |record: &MemberRecord| &record.profile,
        )
    }

    fn search_index(&self) -> Result<BTreeSet<Vec<u8>>> {
        Ok(self.keys_under(b"sx/")?.into_iter().collect())
    }

    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>> {
        self.read(&format!("w/{id}"))
    }

    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>> {
        self.db
            .scan_prefix(b"w/")
            .map(|kv| {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[2..]).into_owned();
                let id = MemberId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
                Ok((id, decode(&k, &v)?))
            })
            .collect()
    }

    fn fences(&self) -> Result<Vec<(StoreId, Fence)>> {
        self.db
            .scan_prefix(b"fence/")
            .map(|kv| {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[6..]).into_owned();
                let store = StoreId::parse(&name).map_err(|_| HubStoreError::Damaged(name))?;
                Ok((store, decode(&k, &v)?))
            })
            .collect()
    }

    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(view_key(key))?.map(|v| v.to_vec()))
    }

    fn derived_version(&self) -> Result<Option<u32>> {
        self.read("meta/derived_version")
    }

    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()> {
        let mut batch = Writes::default();
        for prefix in [
            &b"m/"[..],
            b"f/",
            b"p/",
            b"w/",
            b"v/",
            protocol::member::SEARCH_INDEX,
        ] {
            for kv in self.db.scan_prefix(prefix) {
                batch.remove(kv?.0);
            }
        }
        for record in &derived.members {
            let key = self.held_key(&record.member_id)?;
            batch.insert(
                format!("m/{}", record.member_id).into_bytes(),
                self.sealed_record(key.as_ref(), record),
            );
            batch.insert(
                format!("f/{}", record.member_id).into_bytes(),
                seal_facets(key.as_ref(), &record.member_id, &record.profile),
            );
            for key in record.profile.search_keys(&record.member_id, &self.index) {
                batch.insert(key, &[][..]);
            }
        }
        for (phone, member) in &derived.phones {
            batch.insert(self.phone_key(phone), encode(member));
        }
        for (member, wallet) in &derived.wallets {
            batch.insert(format!("w/{member}").into_bytes(), encode(wallet));
        }
        for (key, value) in &derived.views {
            batch.insert(view_key(key), value.as_slice());
        }
        batch.insert(&b"meta/derived_version"[..], encode(&version));
        self.apply(batch)?;
        self.sync()
    }

    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .scan_prefix(view_key(prefix))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[2..].to_vec(), v.to_vec()))
            })
            .collect()
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
        self.db
            .range(view_key(from)..view_key(to))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[2..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()> {
        let key = format!("fence/{store}");
        let mut batch = Writes::default();
        match fence {
            Some(fence) => batch.insert(key.as_bytes(), encode(fence)),
            None => batch.remove(key.as_bytes()),
        };
        self.apply(batch)?;
        self.sync()
    }

    fn revoke(&self, store: &StoreId, revocation: &Revocation) -> Result<()> {
        let mut batch = Writes::default();
        batch.insert(format!("revoked/{store}").into_bytes(), encode(revocation));
        self.apply(batch)?;
        self.sync()
    }

    fn revocation(&self, store: &StoreId) -> Result<Option<Revocation>> {
        self.read(&format!("revoked/{store}"))
    }

    fn notices_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        self.outbox_due(now_ms, limit)
    }

    fn set_delivery(&self, id: &str, delivery: &Delivery) -> Result<()> {
        self.outbox_set(id, delivery)
    }

    fn latest_notices(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        self.outbox_latest(limit)
    }

    fn notice_counts(&self) -> Result<NoticeCounts> {
        Ok(self.outbox_counts())
    }

    fn prune_notices(&self, before_ms: u64, limit: usize) -> Result<usize> {
        self.outbox_prune(before_ms, limit)
    }

    fn queue_notices(&self, notices: &[Notice]) -> Result<usize> {
        self.outbox_queue(notices)
    }

    fn sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32> {
        self.outbox_sent_on(member, day)
    }

    fn count_sent(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<()> {
        self.outbox_count_sent(member, day)
    }

    fn add_follows(&self, store: &StoreId, members: &[MemberId]) -> Result<()> {
        let mut batch = Writes::default();
        for member in members {
            batch.insert(format!("follow/{member}/{store}").into_bytes(), &[][..]);
        }
        self.apply(batch)?;
        self.sync()
    }

    fn follows(&self) -> Result<Vec<(MemberId, StoreId)>> {
        self.db
            .scan_prefix(b"follow/")
            .map(|kv| {
                let (k, _) = kv?;
                let text = String::from_utf8_lossy(&k["follow/".len()..]).into_owned();
                let parsed = text.split_once('/').and_then(|(member, store)| {
                    Some((MemberId::parse(member).ok()?, StoreId::parse(store).ok()?))
                });
                parsed.ok_or(HubStoreError::Damaged(text))
            })
            .collect()
    }
}
