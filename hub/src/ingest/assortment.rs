//! 门店经营品项: where a catalogue change set goes. A product or bundle every store carries (no
//! assortment named) is broadcast as before; one carried by some stores goes to those only
//! (`Payload::StoreCatalogue`), and headquarters keeps the assortment itself in its own entries
//! (addressed to no store). A store that starts carrying a product gets it then; one that stops
//! gets a withdrawal (its till refuses the product, which stays on file for its stock and
//! history). A store's own price or threshold goes to that store only.

use std::collections::{BTreeMap, BTreeSet};

use protocol::catalogue::{self, CatalogueChange, CatalogueError};
use protocol::inventory;

use super::*;

/// Where one change goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Address {
    Every,
    /// Headquarters' own record.
    Hq,
    /// These stores, sorted.
    Stores(Vec<StoreId>),
}

impl Ingest {
    /// Writes a checked change set as catalogue `version`: each address's group first, then
    /// headquarters' assortment records, then the broadcast part, always (empty if nothing
    /// goes to every store): its last entry makes the version visible at every store, after
    /// all that was addressed to it. A product carried everywhere that becomes some stores'
    /// only is withdrawn everywhere by a version of its own before (every store, those heard
    /// of later too), and then sent again to those that carry it. Every entry is built and its
    /// size checked before the first is written. Returns the version the set ends at and the
    /// entries written.
    pub(super) fn write_catalogue(
        &mut self,
        views: &dyn ViewKv,
        version: u64,
        changes: Vec<CatalogueChange>,
        by: &StaffId,
    ) -> Result<(u64, u32), CatalogueError> {
        let failed = |e: String| CatalogueError::Field {
            field: "storage".into(),
            problem: e,
        };
        let known: BTreeSet<StoreId> = self
            .tips
            .keys()
            .filter(|s| **s != StoreId::hq())
            .cloned()
            .collect();
        let addressed = address(views, &known, changes).map_err(|e| match e {
            Refused::Catalogue(e) => e,
            Refused::Storage(e) => failed(e),
        })?;
        let mut withdrawn_everywhere = Vec::new();
        let mut broadcast = Vec::new();
        let mut hq = Vec::new();
        let mut by_set: BTreeMap<Vec<StoreId>, Vec<CatalogueChange>> = BTreeMap::new();
        for (to, change) in addressed {
            match (to, &change) {
                (Address::Every, CatalogueChange::Withdrawn { .. }) => {
                    withdrawn_everywhere.push(change)
                }
                (Address::Every, _) => broadcast.push(change),
                (Address::Hq, _) => hq.push(change),
                (Address::Stores(stores), _) => by_set.entry(stores).or_default().push(change),
            }
        }
        let mut groups = fewest_entries(by_set);
        if !hq.is_empty() {
            // With what is carried nowhere, if anything: both are headquarters' own.
            match groups.iter_mut().find(|(stores, _)| stores.is_empty()) {
                Some((_, own)) => own.extend(hq),
                None => groups.push((Vec::new(), hq)),
            }
        }
        let mut version = version;
        let mut planned: Vec<(TxId, Payload)> = Vec::new();
        if !withdrawn_everywhere.is_empty() {
            planned.extend(broadcast_entries(version, withdrawn_everywhere));
            version += 1;
        }
        for (group, (stores, changes)) in groups.into_iter().enumerate() {
            let group = u32::try_from(group).unwrap_or(u32::MAX);
            // The store list rides in every part: what it takes comes off the part's room.
            let named: usize = stores.iter().map(|s| s.as_str().len() + 1).sum();
            let room = catalogue::PART_BYTES.saturating_sub(named).max(1024);
            let split = catalogue::parts(changes, room);
            let parts = u32::try_from(split.len()).unwrap_or(u32::MAX);
            for (part, changes) in split.into_iter().enumerate() {
                let part = u32::try_from(part).unwrap_or(u32::MAX);
                let tx = TxId::derived(&[
                    "catalogue",
                    &version.to_string(),
                    "group",
                    &group.to_string(),
                    &part.to_string(),
                ]);
                let payload = Payload::StoreCatalogue {
                    stores: stores.clone(),
                    version,
                    group,
                    part,
                    parts,
                    changes,
                };
                planned.push((tx, payload));
            }
        }
        planned.extend(broadcast_entries(version, broadcast));
        // The entry's own fields (origin, clock, staff, key, hash) take well under this.
        let room = protocol::entry::ENTRY_BYTES_MAX - 1024;
        if let Some((_, big)) = planned
            .iter()
            .find(|(_, p)| postcard::to_stdvec(p).map_or(usize::MAX, |b| b.len()) > room)
        {
            let what = match big {
                Payload::StoreCatalogue { stores, .. } => {
                    format!("a change for {} stores", stores.len())
                }
                _ => "a change".to_owned(),
            };
            return Err(CatalogueError::Field {
                field: "changes".into(),
                problem: format!("{what} does not fit one entry: name fewer stores, or split it"),
            });
        }
        let written = u32::try_from(planned.len()).unwrap_or(u32::MAX);
        for (tx, payload) in planned {
            self.write_hq_as(tx, payload, by.clone())
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok((version, written))
    }
}

/// A change set's broadcast part (one empty entry when it has none), in as many entries as its
/// size needs; its last one makes `version` visible.
fn broadcast_entries(version: u64, changes: Vec<CatalogueChange>) -> Vec<(TxId, Payload)> {
    let mut split = catalogue::parts(changes, catalogue::PART_BYTES);
    if split.is_empty() {
        split.push(Vec::new());
    }
    let parts = u32::try_from(split.len()).unwrap_or(u32::MAX);
    split
        .into_iter()
        .enumerate()
        .map(|(part, changes)| {
            let part = u32::try_from(part).unwrap_or(u32::MAX);
            let tx = TxId::derived(&["catalogue", &version.to_string(), &part.to_string()]);
            let payload = Payload::Catalogue {
                version,
                part,
                parts,
                changes,
            };
            (tx, payload)
        })
        .collect()
}

/// Refuses goods sent to a store that does not carry them (门店经营品项): it could not name
/// them to receive them.
pub(super) fn not_carried_at(
    views: &dyn ViewKv,
    to: &StoreId,
    lines: &[(Sku, protocol::catalogue::Qty)],
) -> Result<(), Refused> {
    for (sku, _) in lines {
        if let Some(stores) = inventory::carried(views, sku)?
            && !stores.contains(to)
        {
            return Err(Refused::Catalogue(CatalogueError::Field {
                field: sku.to_string(),
                problem: format!(
                    "{to} does not carry it (门店经营品项): add {to} to where it is carried first"
                ),
            }));
        }
    }
    Ok(())
}

pub(super) enum Refused {
    Catalogue(CatalogueError),
    Storage(String),
}

impl From<String> for Refused {
    fn from(e: String) -> Refused {
        Refused::Storage(e)
    }
}

/// Each change with where it goes, after the set's own assortment records (`Carried`) take
/// effect. `known`: the stores headquarters has heard from (those a product carried everywhere
/// is withdrawn from when it becomes some stores' only; a store heard of later reads the
/// broadcast withdrawal in its feed).
fn address(
    views: &dyn ViewKv,
    known: &BTreeSet<StoreId>,
    changes: Vec<CatalogueChange>,
) -> Result<Vec<(Address, CatalogueChange)>, Refused> {
    let mut set_now: BTreeMap<Sku, Option<Vec<StoreId>>> = BTreeMap::new();
    for change in &changes {
        if let CatalogueChange::Carried { sku, stores } = change {
            let mut stores = stores.clone();
            if let Some(list) = &mut stores {
                list.sort();
            }
            if set_now.insert(sku.clone(), stores).is_some() {
                return Err(Refused::Catalogue(CatalogueError::Field {
                    field: format!("{sku}.stores"),
                    problem: "named twice in one change set".into(),
                }));
            }
        }
    }
    let carried = |sku: &Sku| -> Result<Option<Vec<StoreId>>, Refused> {
        match set_now.get(sku) {
            Some(now) => Ok(now.clone()),
            None => Ok(inventory::carried(views, sku)?),
        }
    };
    let in_set: BTreeSet<Sku> = changes
        .iter()
        .filter(|c| matches!(c, CatalogueChange::Product(_) | CatalogueChange::Bundle(_)))
        .map(|c| c.sku().clone())
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        match &change {
            CatalogueChange::Product(_) => {
                let to = to_stores(carried(change.sku())?);
                out.push((to, change));
            }
            CatalogueChange::Bundle(b) => {
                // A bundle's own assortment, or where every one of its items is carried.
                let to = match carried(&b.id)? {
                    Some(list) => Some(list),
                    None => {
                        let mut common: Option<BTreeSet<StoreId>> = None;
                        for (item, _) in &b.items {
                            if let Some(list) = carried(item)? {
                                let list: BTreeSet<StoreId> = list.into_iter().collect();
                                common = Some(match common {
                                    None => list,
                                    Some(c) => c.intersection(&list).cloned().collect(),
                                });
                            }
                        }
                        common.map(|c| c.into_iter().collect())
                    }
                };
                out.push((to_stores(to), change));
            }
            CatalogueChange::StorePrice { store, .. }
            | CatalogueChange::StoreLowStock { store, .. } => {
                out.push((Address::Stores(vec![store.clone()]), change));
            }
            CatalogueChange::Carried { sku, .. } => {
                let before = inventory::carried(views, sku)?;
                let after = set_now.get(sku).cloned().flatten();
                let carries = |s: &StoreId| after.as_ref().is_none_or(|l| l.contains(s));
                // Stores that stop carrying it: none may hold any of it (move or write it off).
                // A product new with this set was never anywhere.
                let existed = on_file(views, sku)?.is_some();
                let had: Vec<StoreId> = match (&before, existed) {
                    (_, false) => Vec::new(),
                    (Some(list), true) => list.clone(),
                    (None, true) => known.iter().cloned().collect(),
                };
                let mut dropping: Vec<StoreId> = had.into_iter().filter(|s| !carries(s)).collect();
                dropping.sort();
                for store in &dropping {
                    let (total_in, total_out) = inventory::stock_cell(views, store, sku)?;
                    if total_in != total_out {
                        return Err(Refused::Catalogue(CatalogueError::StockHeld {
                            sku: sku.clone(),
                            store: store.clone(),
                        }));
                    }
                }
                let withdrawal = CatalogueChange::Withdrawn { sku: sku.clone() };
                match (&before, &after) {
                    (None, None) => {}
                    // Withdrawn everywhere (stores heard of later too: a broadcast, written
                    // first), then sent to the stores that carry it.
                    (None, Some(list)) => {
                        // A product new with this set was never broadcast: nothing to withdraw.
                        if existed {
                            out.push((Address::Every, withdrawal));
                        }
                        if !list.is_empty() {
                            resend(views, &in_set, sku, Address::Stores(list.clone()), &mut out)?;
                        }
                    }
                    (Some(_), None) => resend(views, &in_set, sku, Address::Every, &mut out)?,
                    (Some(before), Some(after)) => {
                        let gaining: Vec<StoreId> = after
                            .iter()
                            .filter(|s| !before.contains(s))
                            .cloned()
                            .collect();
                        if !gaining.is_empty() {
                            resend(views, &in_set, sku, Address::Stores(gaining), &mut out)?;
                        }
                        if !dropping.is_empty() {
                            out.push((Address::Stores(dropping), withdrawal));
                        }
                    }
                }
                let record = CatalogueChange::Carried {
                    sku: sku.clone(),
                    stores: after,
                };
                out.push((Address::Hq, record));
            }
            CatalogueChange::Withdrawn { sku } => {
                return Err(Refused::Catalogue(CatalogueError::Field {
                    field: sku.to_string(),
                    problem: "a withdrawal is headquarters' own: change where it is carried".into(),
                }));
            }
        }
    }
    Ok(out)
}

/// The product or bundle `sku` as it is, to stores that start carrying it (unless the change
/// set itself sends it: it goes where the set's assortment says).
fn resend(
    views: &dyn ViewKv,
    in_set: &BTreeSet<Sku>,
    sku: &Sku,
    to: Address,
    out: &mut Vec<(Address, CatalogueChange)>,
) -> Result<(), Refused> {
    if in_set.contains(sku) {
        return Ok(());
    }
    if let Some(change) = on_file(views, sku)? {
        out.push((to, change));
    }
    Ok(())
}

/// The product or bundle `sku` as headquarters holds it now, as a change that sends it whole.
fn on_file(views: &dyn ViewKv, sku: &Sku) -> Result<Option<CatalogueChange>, Refused> {
    if let Some(p) = inventory::product(views, sku)? {
        return Ok(Some(CatalogueChange::Product(p)));
    }
    let bundle = inventory::read::<catalogue::Bundle>(views, &inventory::keys::bundle(sku))?;
    Ok(bundle.map(CatalogueChange::Bundle))
}

fn to_stores(carried: Option<Vec<StoreId>>) -> Address {
    match carried {
        None => Address::Every,
        Some(mut list) => {
            list.sort();
            Address::Stores(list)
        }
    }
}

/// The addressed changes as groups, in whichever shape takes fewer entries: one group per
/// distinct set of stores (each change once; a product's price changed at the 300 stores that
/// carry it is one entry), or one group per store (changes repeated; a first import where
/// nearly every product has its own set of stores is a few entries per store instead of one
/// per product). No store gets a change not addressed to it either way.
fn fewest_entries(
    by_set: BTreeMap<Vec<StoreId>, Vec<CatalogueChange>>,
) -> Vec<(Vec<StoreId>, Vec<CatalogueChange>)> {
    let size = |c: &CatalogueChange| postcard::to_stdvec(c).map_or(0, |b| b.len());
    let entries = |bytes: usize| bytes.div_ceil(catalogue::PART_BYTES).max(1);
    let mut per_set = 0usize;
    let mut per_store_bytes: BTreeMap<&StoreId, usize> = BTreeMap::new();
    for (stores, changes) in &by_set {
        let bytes: usize = changes.iter().map(size).sum();
        per_set += entries(bytes);
        for store in stores {
            *per_store_bytes.entry(store).or_default() += bytes;
        }
    }
    let per_store: usize = per_store_bytes.values().map(|b| entries(*b)).sum();
    if per_set <= per_store {
        return by_set.into_iter().collect();
    }
    let mut by_store: BTreeMap<StoreId, Vec<CatalogueChange>> = BTreeMap::new();
    let mut nowhere = Vec::new();
    for (stores, changes) in by_set {
        // Carried at no store: headquarters' own (it still holds the product).
        if stores.is_empty() {
            nowhere.extend(changes);
            continue;
        }
        for store in stores {
            by_store
                .entry(store)
                .or_default()
                .extend(changes.iter().cloned());
        }
    }
    let mut groups: Vec<(Vec<StoreId>, Vec<CatalogueChange>)> = Vec::new();
    if !nowhere.is_empty() {
        groups.push((Vec::new(), nowhere));
    }
    groups.extend(
        by_store
            .into_iter()
            .map(|(store, changes)| (vec![store], changes)),
    );
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::tests::{registration, wallet_entry};
    use crate::storage::MemHubStore;
    use protocol::catalogue::{Product, Qty, Unit};
    use protocol::money::Fen;
    use protocol::stock::{StockChange, StockMovement, TransferStep};

    fn product(sku: &str) -> CatalogueChange {
        CatalogueChange::Product(Product {
            sku: Sku::parse(sku).unwrap(),
            name: format!("商品{sku}"),
            barcodes: vec![],
            department: String::new(),
            category: String::new(),
            unit: Unit::Piece,
            price: Some(Fen(100)),
            special: None,
            earns_points: true,
            discountable: true,
            active: true,
            low_stock: None,
        })
    }

    fn carried(sku: &str, stores: &[&StoreId]) -> CatalogueChange {
        CatalogueChange::Carried {
            sku: Sku::parse(sku).unwrap(),
            stores: Some(stores.iter().map(|s| (*s).clone()).collect()),
        }
    }

    struct Chain {
        storage: Arc<MemHubStore>,
        ingest: Ingest,
        stores: [StoreId; 3],
        staff: StaffId,
    }

    /// Headquarters with three stores it has heard from (each registered a member).
    fn chain() -> Chain {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let stores = ["S001", "S002", "S003"].map(|s| StoreId::parse(s).unwrap());
        for (i, store) in stores.iter().enumerate() {
            let phone = format!("1380000000{i}");
            let entry = registration(store, ChainTip::GENESIS, &phone);
            ingest.ingest(store, vec![Sealed::new(entry)], 1).unwrap();
        }
        ingest.flush().unwrap();
        Chain {
            storage,
            ingest,
            stores,
            staff: StaffId::parse("hq-buyer").unwrap(),
        }
    }

    impl Chain {
        /// What the feed sends `store` after `from`, decoded.
        fn sent(&self, store: &StoreId, from: u64) -> Vec<Payload> {
            let routes = self.ingest.routes();
            let durable = self.storage.feed_len().unwrap();
            let (_, items, _) =
                crate::server::read_feed(&*self.storage, Some(&routes), true, store, from, durable)
                    .unwrap();
            items
                .iter()
                .map(|i| protocol::entry::Entry::decode(&i.entry).unwrap().payload)
                .filter(|p| {
                    matches!(
                        p,
                        Payload::Catalogue { .. } | Payload::StoreCatalogue { .. }
                    )
                })
                .collect()
        }

        /// The SKUs of products sent to `store` after `from`, and of withdrawals.
        fn skus(&self, store: &StoreId, from: u64) -> (Vec<String>, Vec<String>) {
            let (mut products, mut withdrawn) = (Vec::new(), Vec::new());
            for payload in self.sent(store, from) {
                let changes = match payload {
                    Payload::Catalogue { changes, .. }
                    | Payload::StoreCatalogue { changes, .. } => changes,
                    _ => unreachable!(),
                };
                for c in changes {
                    match c {
                        CatalogueChange::Product(p) => products.push(p.sku.to_string()),
                        CatalogueChange::Withdrawn { sku } => withdrawn.push(sku.to_string()),
                        other => panic!("{other:?} sent to {store}"),
                    }
                }
            }
            (products, withdrawn)
        }
    }

    #[test]
    fn a_product_some_stores_carry_reaches_those_stores_only() {
        let mut c = chain();
        let [s1, s2, s3] = c.stores.clone();
        let from = c.storage.feed_len().unwrap();
        c.ingest
            .change_catalogue(
                vec![product("A1"), carried("A1", &[&s1, &s2]), product("B1")],
                &c.staff,
            )
            .unwrap();
        c.ingest.flush().unwrap();
        assert_eq!(c.skus(&s1, from).0, vec!["A1", "B1"]);
        assert_eq!(c.skus(&s2, from).0, vec!["A1", "B1"]);
        assert_eq!(c.skus(&s3, from), (vec!["B1".to_owned()], vec![]));
        let views = HubViews::reader(&*c.storage);
        let sku = Sku::parse("A1").unwrap();
        assert_eq!(
            inventory::carried(&views, &sku).unwrap(),
            Some(vec![s1.clone(), s2.clone()])
        );
        assert!(inventory::product(&views, &sku).unwrap().is_some());
        // A price change goes where it is carried; a store's own price to that store.
        let from = c.storage.feed_len().unwrap();
        let price = CatalogueChange::StorePrice {
            store: s3.clone(),
            sku: Sku::parse("B1").unwrap(),
            price: Some(Fen(90)),
        };
        c.ingest
            .change_catalogue(vec![product("A1"), price], &c.staff)
            .unwrap();
        c.ingest.flush().unwrap();
        assert_eq!(c.skus(&s1, from).0, vec!["A1"]);
        assert_eq!(
            c.sent(&s3, from).len(),
            2,
            "its own price, then the version"
        );
    }

    #[test]
    fn a_product_carried_everywhere_made_some_stores_only_is_withdrawn_from_the_others() {
        let mut c = chain();
        let [s1, s2, s3] = c.stores.clone();
        c.ingest
            .change_catalogue(vec![product("A1")], &c.staff)
            .unwrap();
        let from = c.storage.feed_len().unwrap();
        c.ingest
            .change_catalogue(vec![carried("A1", &[&s2])], &c.staff)
            .unwrap();
        c.ingest.flush().unwrap();
        // Every store reads the withdrawal (a broadcast: stores heard of later too), then the
        // store that carries it the product again.
        assert_eq!(c.skus(&s1, from), (vec![], vec!["A1".to_owned()]));
        assert_eq!(
            c.skus(&s2, from),
            (vec!["A1".to_owned()], vec!["A1".to_owned()])
        );
        assert_eq!(c.skus(&s3, from), (vec![], vec!["A1".to_owned()]));
        // Moving it from S002 to S003: S003 gets it, S002 a withdrawal, S001 nothing.
        let from = c.storage.feed_len().unwrap();
        c.ingest
            .change_catalogue(vec![carried("A1", &[&s3])], &c.staff)
            .unwrap();
        c.ingest.flush().unwrap();
        assert_eq!(c.skus(&s1, from), (vec![], vec![]));
        assert_eq!(c.skus(&s2, from), (vec![], vec!["A1".to_owned()]));
        assert_eq!(c.skus(&s3, from), (vec!["A1".to_owned()], vec![]));
        // Every store again: one broadcast of the product.
        let from = c.storage.feed_len().unwrap();
        let everywhere = CatalogueChange::Carried {
            sku: Sku::parse("A1").unwrap(),
            stores: None,
        };
        c.ingest
            .change_catalogue(vec![everywhere], &c.staff)
            .unwrap();
        c.ingest.flush().unwrap();
        for store in [&s1, &s2, &s3] {
            assert_eq!(c.skus(store, from), (vec!["A1".to_owned()], vec![]));
        }
    }

    #[test]
    fn a_store_holding_stock_of_a_product_cannot_stop_carrying_it() {
        let mut c = chain();
        let [s1, s2, _] = c.stores.clone();
        c.ingest
            .change_catalogue(vec![product("A1")], &c.staff)
            .unwrap();
        let sku = Sku::parse("A1").unwrap();
        let tip = c.ingest.tip(&s2);
        let mut received = wallet_entry(&s2, tip, MemberId::mint(1, 1), vec![]);
        received.payload = Payload::Stock {
            movement: StockMovement::Received {
                supplier: "供应商".into(),
                note: String::new(),
                costs: vec![],
            },
            changes: vec![StockChange {
                sku: sku.clone(),
                qty: Qty(2_000),
                total_in: 2_000,
                total_out: 0,
            }],
        };
        let seq = received.seq;
        c.ingest
            .ingest(&s2, vec![Sealed::new(received)], seq)
            .unwrap();
        c.ingest.flush().unwrap();
        let feed = c.storage.feed_len().unwrap();
        let refused = c
            .ingest
            .change_catalogue(vec![carried("A1", &[&s1])], &c.staff);
        assert_eq!(
            refused.unwrap_err(),
            CatalogueError::StockHeld {
                sku: sku.clone(),
                store: s2.clone()
            }
        );
        assert_eq!(c.storage.feed_len().unwrap(), feed, "nothing written");
        let views = HubViews::reader(&*c.storage);
        assert_eq!(inventory::carried(&views, &sku).unwrap(), None);
    }

    #[test]
    fn a_change_set_where_each_product_has_its_own_stores_is_written_per_store() {
        let mut c = chain();
        let [s1, s2, s3] = c.stores.clone();
        // Six products, each at its own pair or single store: six sets, three stores.
        let layout: [(&str, Vec<&StoreId>); 7] = [
            ("P1", vec![&s1]),
            ("P2", vec![&s2]),
            ("P3", vec![&s3]),
            ("P4", vec![&s1, &s2]),
            ("P5", vec![&s2, &s3]),
            ("P6", vec![&s1, &s3]),
            ("P7", vec![]),
        ];
        let mut changes = Vec::new();
        for (sku, stores) in &layout {
            changes.push(product(sku));
            changes.push(carried(sku, stores));
        }
        let from = c.storage.feed_len().unwrap();
        let written = c.ingest.change_catalogue(changes, &c.staff).unwrap();
        c.ingest.flush().unwrap();
        // One entry per store (not one per set of stores), headquarters' own (its records and
        // P7, carried nowhere yet but on file), the version.
        assert_eq!(written.parts, 3 + 1 + 1);
        let views = HubViews::reader(&*c.storage);
        let p7 = inventory::product(&views, &Sku::parse("P7").unwrap()).unwrap();
        assert!(p7.is_some(), "a product carried nowhere is still on file");
        let mut s1_has = c.skus(&s1, from).0;
        s1_has.sort();
        assert_eq!(s1_has, vec!["P1", "P4", "P6"]);
        // Fewer sets than stores: each set once.
        let from = c.storage.feed_len().unwrap();
        let written = c
            .ingest
            .change_catalogue(vec![product("P4"), product("P5")], &c.staff)
            .unwrap();
        assert_eq!(written.parts, 2 + 1);
        c.ingest.flush().unwrap();
        assert_eq!(c.skus(&s2, from).0, vec!["P4", "P5"]);
    }

    #[test]
    fn goods_cannot_be_sent_to_a_store_that_does_not_carry_them() {
        let mut c = chain();
        let [s1, s2, s3] = c.stores.clone();
        c.ingest
            .change_catalogue(vec![product("A1"), carried("A1", &[&s1, &s2])], &c.staff)
            .unwrap();
        let asked = |to: &StoreId| TransferStep::Requested {
            from: s1.clone(),
            to: to.clone(),
            lines: vec![(Sku::parse("A1").unwrap(), Qty(1_000))],
            note: String::new(),
        };
        let refused = c.ingest.transfer_step(None, asked(&s3), &c.staff);
        match refused {
            Err(TransferRefused::Step(e)) => assert!(e.to_string().contains("S003 does not carry")),
            other => panic!("{other:?}"),
        }
        assert!(c.ingest.transfer_step(None, asked(&s2), &c.staff).is_ok());
    }

    #[test]
    fn a_bundle_is_carried_where_its_assortment_says() {
        let mut c = chain();
        let [s1, s2, _] = c.stores.clone();
        let bundle = CatalogueChange::Bundle(protocol::catalogue::Bundle {
            id: Sku::parse("TAO1").unwrap(),
            name: "早餐套餐".into(),
            items: vec![(Sku::parse("A1").unwrap(), Qty(1_000))],
            price: Fen(500),
            active: true,
        });
        c.ingest
            .change_catalogue(vec![product("A1"), bundle], &c.staff)
            .unwrap();
        let from = c.storage.feed_len().unwrap();
        c.ingest
            .change_catalogue(vec![carried("TAO1", &[&s1])], &c.staff)
            .unwrap();
        c.ingest.flush().unwrap();
        let bundles_to = |store: &StoreId| -> Vec<CatalogueChange> {
            c.sent(store, from)
                .into_iter()
                .flat_map(|p| match p {
                    Payload::Catalogue { changes, .. }
                    | Payload::StoreCatalogue { changes, .. } => changes,
                    _ => Vec::new(),
                })
                .collect()
        };
        let to_s1 = bundles_to(&s1);
        assert!(
            to_s1
                .iter()
                .any(|c| matches!(c, CatalogueChange::Bundle(_))),
            "{to_s1:?}"
        );
        let to_s2 = bundles_to(&s2);
        assert!(
            to_s2
                .iter()
                .any(|c| matches!(c, CatalogueChange::Withdrawn { .. })),
            "{to_s2:?}"
        );
        assert!(
            !to_s2
                .iter()
                .any(|c| matches!(c, CatalogueChange::Bundle(_))),
            "{to_s2:?}"
        );
    }

    #[test]
    fn a_withdrawal_cannot_be_written_by_hand() {
        let mut c = chain();
        c.ingest
            .change_catalogue(vec![product("A1")], &c.staff)
            .unwrap();
        let by_hand = CatalogueChange::Withdrawn {
            sku: Sku::parse("A1").unwrap(),
        };
        assert!(c.ingest.change_catalogue(vec![by_hand], &c.staff).is_err());
    }
}
