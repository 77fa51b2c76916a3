//! `hub verify` and the rebuild of what the hub derives from the logs.

use super::*;

/// What `verify` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub stores: u64,
    pub entries: u64,
    pub feed: u64,
    pub members: u64,
    /// Anything that does not match: broken chains, tips, feed or directory records.
    pub differences: Vec<String>,
    /// Whether the derived state (members, wallets, views) was compared with a rebuild: not
    /// when another version of this software wrote it (an older backup, data not yet opened
    /// by this version), which the hub rebuilds when it opens it.
    pub derived_checked: bool,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// Whether a difference found mentions `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.differences.iter().any(|d| d.contains(text))
    }
}

/// Checks every store's chain as stored, that the feed holds exactly the logs' member, wallet,
/// catalogue and transfer entries, that the member directory, wallets and inventory views
/// equal a rebuild from the feed (which is ingest order) and the stores' stock movements, and
/// that 会员搜索's index files exactly the stored members.
pub fn verify(storage: &dyn HubStore) -> Result<VerifyReport, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let mut report = VerifyReport::default();
    let mut member_entries = 0u64;
    for (store, tip, _) in storage.stores().map_err(failed)? {
        report.stores += 1;
        let mut at = ChainTip::GENESIS;
        for bytes in storage.entries(&store, 1, usize::MAX).map_err(failed)? {
            let entry = match Entry::decode(&bytes) {
                Ok(entry) => entry,
                Err(e) => {
                    report
                        .differences
                        .push(format!("{store} entry {}: {e}", at.next_seq));
                    break;
                }
            };
            member_entries += u64::from(goes_to_feed(&entry));
            match at.extend(&store, &entry) {
                Ok(next) => at = next,
                Err(e) => {
                    report.differences.push(format!("{store}: {e}"));
                    break;
                }
            }
            report.entries += 1;
        }
        if at != tip {
            report.differences.push(format!(
                "{store}: the stored tip does not match the stored log"
            ));
        }
    }
    let feed_len = storage.feed_len().map_err(failed)?;
    report.feed = feed_len;
    if feed_len != member_entries {
        report.differences.push(format!(
            "the feed holds {feed_len} records, the logs {member_entries} member entries"
        ));
    }
    let wallets = storage.wallets().map_err(failed)?;
    for (member, wallet) in &wallets {
        if let Err(problem) = wallet.audit() {
            report
                .differences
                .push(format!("{member}'s wallet fails the audit: {problem}"));
        }
    }
    let stored = storage.members().map_err(failed)?;
    report.members = stored.len() as u64;
    report.derived_checked = storage.derived_version().map_err(failed)? == Some(DERIVED_VERSION);
    if report.derived_checked {
        compare_derived(storage, &wallets, &stored, &mut report)?;
    }
    let index_key = storage.index_key();
    let filed: BTreeSet<Vec<u8>> = stored
        .iter()
        .flat_map(|m| m.profile.search_keys(&m.member_id, &index_key))
        .collect();
    let index = storage.search_index().map_err(failed)?;
    if index != filed {
        report.differences.push(format!(
            "会员搜索's index has {} keys no member files and lacks {} that members file",
            index.difference(&filed).count(),
            filed.difference(&index).count()
        ));
    }
    Ok(report)
}

/// Compares the derived state as stored (the views, `wallets` and the directory `stored`) with a
/// rebuild from the logs, and what segments read of each member with their record.
fn compare_derived(
    storage: &dyn HubStore,
    wallets: &[(MemberId, Wallet)],
    stored: &[MemberRecord],
    report: &mut VerifyReport,
) -> Result<(), IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let rebuilt = rebuild(storage)?;
    let (views, expected) = (
        storage.views(b"", usize::MAX).map_err(failed)?,
        rebuilt.views(b"", usize::MAX).map_err(failed)?,
    );
    if views != expected {
        report.differences.push(format!(
            "the inventory views ({} records) differ from a rebuild from the logs ({} records)",
            views.len(),
            expected.len()
        ));
    }
    if wallets != rebuilt.wallets().map_err(failed)? {
        report
            .differences
            .push("the wallets differ from a rebuild from the feed".to_owned());
    }
    let expected = rebuilt.members().map_err(failed)?;
    if stored != expected {
        report.differences.push(format!(
            "the member directory ({} members) differs from a rebuild from the feed ({} members)",
            stored.len(),
            expected.len()
        ));
    }
    check_facets(storage, stored, report)
}

/// The shape of what the hub derives from the logs (members, phones, wallets, inventory views).
/// Bumped whenever it changes; a hub that finds another version rebuilds it on open.
pub const DERIVED_VERSION: u32 = 20;

/// Rebuilds the derived state when another version of this software wrote it (or none did).
pub fn ensure_current(storage: &dyn HubStore) -> Result<bool, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let stored = storage.derived_version().map_err(failed)?;
    if stored == Some(DERIVED_VERSION) {
        return Ok(false);
    }
    let rebuilt = rebuild(storage)?;
    storage
        .replace_derived(rebuilt.derived(), DERIVED_VERSION)
        .map_err(failed)?;
    tracing::info!(from = ?stored, to = DERIVED_VERSION, "derived state rebuilt from the logs");
    Ok(true)
}

/// Everything derived, afresh: the feed in ingest order, then the stock movements and sales that
/// are not in the feed (a store's stock cells are maxima and report cells are sums, so where
/// they fall does not matter).
fn rebuild(storage: &dyn HubStore) -> Result<crate::storage::MemHubStore, IngestError> {
    let failed = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
    let rebuilt = crate::storage::MemHubStore::default();
    for (_, record) in storage.feed(1, usize::MAX).map_err(failed)? {
        let Ok(entry) = Entry::decode(&record.entry) else {
            continue;
        };
        // The keys are not derived: the rebuild reads them where they are.
        let mut directory = Directory::default();
        for member in protocol::sync::members_changed([record.entry.as_slice()]) {
            match storage.member_key(&member).map_err(failed)? {
                KeyState::Held(key) => {
                    directory.keys.insert(member, key);
                }
                KeyState::Erased => directory.erased.push(member),
                KeyState::Unknown => {}
            }
        }
        directory.apply(&rebuilt, &entry)?;
        let kept = directory.kept_keys();
        let append = Append {
            store: &record.origin,
            entries: Vec::new(),
            tip: ChainTip::GENESIS,
            status: StoreStatus::default(),
            feed: Vec::new(),
            feed_len: 0,
            members: directory.members.into_values().collect(),
            phones: directory.phones.into_iter().collect(),
            wallets: directory.wallets.into_iter().collect(),
            views: directory.views.into_iter().collect(),
            keys: kept,
            erased: directory.erased,
            notices: Vec::new(),
        };
        rebuilt.append(append).map_err(failed)?;
    }
    // Stock movements are not in the feed: take each store's from its log (a store's cells
    // are maxima, so where they fall among the feed's entries does not matter).
    for (store, _, _) in storage.stores().map_err(failed)? {
        for bytes in storage.entries(&store, 1, usize::MAX).map_err(failed)? {
            let Ok(entry) = Entry::decode(&bytes) else {
                continue;
            };
            // Stock movements and sales (the reports) that are not in the feed.
            let derived = matches!(
                entry.payload,
                Payload::Stock { .. }
                    | Payload::Checkout { .. }
                    | Payload::ItemReturn { .. }
                    | Payload::Sale { .. }
                    | Payload::QuickSale(_)
                    | Payload::Return { .. }
            );
            if !derived || goes_to_feed(&entry) {
                continue;
            }
            let mut directory = Directory::default();
            directory.apply(&rebuilt, &entry)?;
            let append = Append {
                store: &store,
                entries: Vec::new(),
                tip: ChainTip::GENESIS,
                status: StoreStatus::default(),
                feed: Vec::new(),
                feed_len: 0,
                members: Vec::new(),
                phones: Vec::new(),
                wallets: Vec::new(),
                views: directory.views.into_iter().collect(),
                keys: Vec::new(),
                erased: Vec::new(),
                notices: Vec::new(),
            };
            rebuilt.append(append).map_err(failed)?;
        }
    }
    Ok(rebuilt)
}

/// Each member's facets against their record.
fn check_facets(
    storage: &dyn HubStore,
    stored: &[crate::storage::MemberRecord],
    report: &mut VerifyReport,
) -> Result<(), IngestError> {
    let mut facets = Vec::with_capacity(stored.len());
    crate::storage::each_facets(storage, |id, f| {
        facets.push((id, f));
        Ok(())
    })
    .map_err(IngestError::Storage)?;
    let described: std::collections::HashMap<_, _> = stored
        .iter()
        .map(|m| (m.member_id, protocol::segment::Facets::of(&m.profile)))
        .collect();
    if facets.len() != described.len() || facets.iter().any(|(id, f)| described.get(id) != Some(f))
    {
        report.differences.push(format!(
            "what segments read of members ({} members) differs from their records ({})",
            facets.len(),
            described.len()
        ));
    }
    Ok(())
}
