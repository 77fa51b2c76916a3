//! Headquarters' merged view of every member: the directory, the phone index and wallets, as
//! one batch changes them.

use super::*;

/// The member directory and wallet changes one batch makes (headquarters' merged view of every
/// member).
#[derive(Default)]
pub(super) struct Directory {
    pub(super) members: BTreeMap<MemberId, MemberRecord>,
    pub(super) phones: BTreeMap<Phone, Option<MemberId>>,
    pub(super) wallets: BTreeMap<MemberId, Wallet>,
    /// Inventory view writes of the batch (`None` deletes).
    pub(super) views: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Members' keys the store sent with the batch (`protocol::seal`).
    pub(super) keys: BTreeMap<MemberId, MemberKey>,
    /// Members headquarters erased in the batch.
    pub(super) erased: Vec<MemberId>,
    /// Members one of whose changes a key sent with the batch opened: only those keys are kept.
    pub(super) opened: BTreeSet<MemberId>,
    /// Headquarters' own registrations in the batch (an import), with the document and profile
    /// it built each from: taken as they are instead of opening the sealed change and
    /// building the document again from it (a fifth of an import's time at headquarters).
    pub(super) built: BTreeMap<MemberId, (MemberDoc, protocol::member::Profile)>,
}

/// The hub's inventory views as one batch sees them: its own writes over what is stored.
pub(crate) struct HubViews<'a> {
    pub(crate) storage: &'a dyn HubStore,
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> HubViews<'a> {
    /// What is stored, with no writes of its own yet (the HTTP handlers read through this).
    pub(crate) fn reader(storage: &'a dyn HubStore) -> Self {
        Self {
            storage,
            writes: BTreeMap::new(),
        }
    }
}

impl ViewKv for HubViews<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self.writes.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.storage.view(key).map_err(|e| e.to_string()),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

impl Directory {
    pub(super) fn record(
        &self,
        storage: &dyn HubStore,
        id: &MemberId,
    ) -> Result<Option<MemberRecord>, IngestError> {
        match self.members.get(id) {
            Some(record) => Ok(Some(record.clone())),
            None => storage
                .member(id)
                .map_err(|e| IngestError::Storage(e.to_string())),
        }
    }

    pub(super) fn wallet(
        &self,
        storage: &dyn HubStore,
        id: &MemberId,
    ) -> Result<Wallet, IngestError> {
        match self.wallets.get(id) {
            Some(wallet) => Ok(wallet.clone()),
            None => Ok(storage
                .wallet(id)
                .map_err(|e| IngestError::Storage(e.to_string()))?
                .unwrap_or_default()),
        }
    }

    /// Takes a wallet entry's cell writes (and card or password) into the member's wallet.
    pub(super) fn apply_wallet(
        &mut self,
        storage: &dyn HubStore,
        entry: &Entry,
    ) -> Result<(), IngestError> {
        let Some(member) = entry.payload.wallet_member() else {
            return Ok(());
        };
        let mut wallet = self.wallet(storage, &member)?;
        wallet.take_entry(entry);
        if let Err(problem) = wallet.audit() {
            // A store spent or handed on rights it did not hold: its software was changed or is
            // broken. The entry is a fact of its log and stays; headquarters must look.
            tracing::error!(origin = %entry.origin, seq = entry.seq, %member, %problem, "wallet audit failed");
        }
        self.wallets.insert(member, wallet);
        Ok(())
    }

    /// Merges a member entry into the directory. An entry whose profile change does not apply
    /// is still a fact of the store's log; only the directory skips it.
    pub(super) fn apply(
        &mut self,
        storage: &dyn HubStore,
        entry: &Entry,
    ) -> Result<(), IngestError> {
        self.apply_wallet(storage, entry)?;
        let mut views = HubViews {
            storage,
            writes: std::mem::take(&mut self.views),
        };
        let applied = protocol::project::inventory::apply(&mut views, entry).and_then(|why| {
            let staff = protocol::project::staff::apply(&mut views, entry)?;
            let rules = protocol::project::commission::apply(&mut views, entry)?;
            let chain = protocol::project::rules::apply(&mut views, entry)?;
            let marketing = protocol::project::marketing::apply(&mut views, entry)?;
            protocol::project::marketing::index_expiry(&mut views, entry)?;
            protocol::reports::apply(&mut views, entry, &StoreCalendar::default())?;
            crate::activity::apply(&mut views, entry)?;
            // In the feed's order, as settlement reads the feed.
            if super::goes_to_feed(entry) {
                protocol::settlement::cells::apply(&mut views, entry)?;
            }
            protocol::project::history::apply(&mut views, entry)?;
            let gifts = protocol::project::gifts::apply(&mut views, entry)?;
            super::referral::note(&mut views, entry)?;
            Ok(why.or(staff).or(rules).or(chain).or(marketing).or(gifts))
        });
        self.views = views.writes;
        if let Some(why) = applied.map_err(IngestError::Storage)? {
            tracing::warn!(origin = %entry.origin, seq = entry.seq, %why, "inventory entry skipped");
        }
        let mut known = None;
        let (member_id, doc, before) = match &entry.payload {
            Payload::MemberRegistered { member_id, .. }
                // `import_members` built it for a member with no key and not erased, just
                // before, on this thread.
                if entry.origin == StoreId::hq()
                    && self.built.contains_key(member_id)
                    && !self.erased.contains(member_id) =>
            {
                let Some((doc, profile)) = self.built.remove(member_id) else {
                    return Ok(());
                };
                // Its key came with the batch: kept as if the change had been opened with it.
                self.opened.insert(*member_id);
                known = Some(profile);
                (*member_id, Ok(doc), None)
            }
            Payload::MemberRegistered { member_id, change } => {
                let Some(change) = self.open(storage, entry, member_id, change)? else {
                    return Ok(());
                };
                (*member_id, MemberDoc::from_change(&change), None)
            }
            Payload::MemberEdited { member_id, change } => match self.record(storage, member_id)? {
                Some(record) => {
                    let Some(change) = self.open(storage, entry, member_id, change)? else {
                        return Ok(());
                    };
                    let doc = MemberDoc::load(&record.doc)
                        .and_then(|mut d| d.apply_change(&change).map(|()| d));
                    (*member_id, doc, Some(record.profile.phone))
                }
                None => return Ok(()),
            },
            Payload::MemberErased { member_id } if entry.origin == StoreId::hq() => {
                return self.erase(storage, member_id);
            }
            Payload::QuickSale(_)
            | Payload::Marketing { .. }
            | Payload::Sale { .. }
            | Payload::Wallet { .. }
            | Payload::Return { .. }
            | Payload::Catalogue { .. }
            | Payload::StoreCatalogue { .. }
            | Payload::Stock { .. }
            | Payload::Transfer { .. }
            | Payload::Checkout { .. }
            | Payload::ItemReturn { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
            | Payload::Tiers { .. }
            | Payload::CardRules { .. }
            | Payload::Gifts { .. }
            | Payload::ReferralRules { .. }
            | Payload::Audit { .. }
            | Payload::MemberListed { .. }
            | Payload::MemberErased { .. } => {
                return Ok(());
            }
        };
        let Ok(mut doc) = doc else {
            tracing::warn!(origin = %entry.origin, seq = entry.seq, "member change does not apply; directory skips it");
            return Ok(());
        };
        let profile = match known {
            Some(profile) => profile,
            None => match doc.profile() {
                Ok(profile) => profile,
                Err(_) => return Ok(()),
            },
        };
        if before.as_ref() != Some(&profile.phone) {
            if let Some(old) = before {
                let owner = match self.phones.get(&old) {
                    Some(owner) => *owner,
                    None => storage
                        .member_by_phone(&old)
                        .map_err(|e| IngestError::Storage(e.to_string()))?,
                };
                if owner == Some(member_id) {
                    self.phones.insert(old, None);
                }
            }
            self.phones.insert(profile.phone.clone(), Some(member_id));
        }
        // 拓客: who referred whom (for the report, and the reward their first sale is due).
        if let Some(referrer) = profile.referrer {
            let mut views = HubViews {
                storage,
                writes: std::mem::take(&mut self.views),
            };
            let linked = super::referral::linked(&mut views, &member_id, &referrer, entry.hlc);
            self.views = views.writes;
            linked.map_err(IngestError::Storage)?;
        }
        self.members.insert(
            member_id,
            MemberRecord {
                member_id,
                doc: doc.save(),
                profile,
            },
        );
        Ok(())
    }
}

impl Directory {
    /// A member change opened under the member's key (sent with this batch or held): `None`
    /// when it cannot be read — the member was erased, or the key never came — and the
    /// directory skips it (the entry stays a fact of the store's log).
    pub(super) fn open(
        &mut self,
        storage: &dyn HubStore,
        entry: &Entry,
        member: &MemberId,
        change: &[u8],
    ) -> Result<Option<Vec<u8>>, IngestError> {
        if self.erased.contains(member) {
            return Ok(None);
        }
        // The key headquarters holds wins over one a store sends (a store may not replace it).
        let stored = storage
            .member_key(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        if stored == KeyState::Erased {
            return Ok(None);
        }
        if !protocol::seal::is_sealed(change) {
            return Ok(Some(change.to_vec()));
        }
        let key = match (stored, self.keys.get(member)) {
            (KeyState::Unknown, Some(sent)) => KeyState::Held(sent.clone()),
            (stored, _) => stored,
        };
        let aad = protocol::seal::change_aad(member);
        match key {
            KeyState::Held(key) => match key.open(&aad, change) {
                Ok(plain) => {
                    self.opened.insert(*member);
                    Ok(Some(plain))
                }
                Err(e) => {
                    tracing::warn!(origin = %entry.origin, seq = entry.seq, %member, %e, "member change does not open; directory skips it");
                    Ok(None)
                }
            },
            KeyState::Erased => Ok(None),
            KeyState::Unknown => {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %member, "member change came without its key; directory skips it");
                Ok(None)
            }
        }
    }

    /// The keys sent with the batch that opened a change of it (a key for a member whose
    /// change it does not hold, or that opens nothing, is not kept).
    pub(super) fn kept_keys(&self) -> Vec<(MemberId, MemberKey)> {
        self.keys
            .iter()
            .filter(|(m, _)| self.opened.contains(m))
            .map(|(m, k)| (*m, k.clone()))
            .collect()
    }

    /// 被遗忘: the member's record, phone and key go; the storage keeps a tombstone.
    pub(super) fn erase(
        &mut self,
        storage: &dyn HubStore,
        member: &MemberId,
    ) -> Result<(), IngestError> {
        if let Some(record) = self.record(storage, member)? {
            let owner = match self.phones.get(&record.profile.phone) {
                Some(owner) => *owner,
                None => storage
                    .member_by_phone(&record.profile.phone)
                    .map_err(|e| IngestError::Storage(e.to_string()))?,
            };
            if owner == Some(*member) {
                self.phones.insert(record.profile.phone, None);
            }
        }
        self.members.remove(member);
        self.keys.remove(member);
        self.erased.push(*member);
        Ok(())
    }
}

/// The change of `member` held here whose hash starts with `prefix`: what makes a thin push
/// whole (`protocol::thin`).
pub fn known_change(storage: &dyn HubStore, member: &MemberId, prefix: &[u8]) -> Option<[u8; 32]> {
    match storage.member(member).ok()? {
        Some(record) => MemberDoc::load(&record.doc).ok()?.change_starting(prefix),
        // An erased member's change from before sealing, still in flight: made whole, then
        // skipped by the directory.
        None => storage
            .erased_changes(member)
            .ok()?
            .into_iter()
            .find(|h| h.starts_with(prefix)),
    }
}
