//! The inventory views an entry changes: catalogue, stock, transfers, stocktakes.

use crate::catalogue::{Bundle, CatalogueChange, Qty};
use crate::entry::{Entry, Payload};
use crate::ids::{DocId, Sku, StoreId};
use crate::inventory::{
    CatalogueVersion, OpenStocktake, ViewKv, encode, keys, product, read, sku_of_barcode,
};
use crate::money::Fen;
use crate::stock::{
    StepRecord, StockChange, StockMovement, Transfer, TransferStep, absorb_cell, lines_of,
};

/// Derives the inventory views an entry changes. Entries that are not about inventory change
/// nothing; a catalogue entry not written by headquarters, or a transfer step that does not fit
/// the transfer's state, is skipped whole (the hub refuses the first at ingest): `Ok(Some(why))`
/// for the caller to log.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    match &entry.payload {
        Payload::Catalogue {
            version,
            part,
            parts,
            changes,
        } if entry.origin == StoreId::hq() => {
            apply_catalogue(kv, entry, *version, (*part, *parts), changes).map(|()| None)
        }
        Payload::StoreCatalogue {
            version,
            group,
            part,
            parts,
            changes,
            ..
        } if entry.origin == StoreId::hq() => {
            apply_store_catalogue(kv, *version, (*group, *part, *parts), changes).map(|()| None)
        }
        Payload::Catalogue { .. } | Payload::StoreCatalogue { .. } => {
            Ok(Some("a catalogue change not from headquarters".into()))
        }
        Payload::Stock { movement, changes } => {
            let sign_ok = match movement {
                StockMovement::Received { .. } => changes.iter().all(|c| c.qty.0 > 0),
                StockMovement::Damaged { .. } | StockMovement::Gift { .. } => {
                    changes.iter().all(|c| c.qty.0 < 0)
                }
                StockMovement::StocktakeOpened { .. } => changes.is_empty(),
                StockMovement::Counted { .. } => true,
            };
            if !sign_ok || !consistent(changes) {
                return Ok(Some("stock changes that do not fit their movement".into()));
            }
            absorb_changes(kv, &entry.origin, changes)?;
            match movement {
                StockMovement::StocktakeOpened {
                    stocktake,
                    expected,
                } => {
                    let open = OpenStocktake {
                        id: stocktake.clone(),
                        store: entry.origin.clone(),
                        opened_at: entry.hlc,
                        expected: expected.clone(),
                    };
                    kv.put(keys::stocktake(stocktake), encode(&open));
                }
                StockMovement::Counted { stocktake, .. } => kv.delete(keys::stocktake(stocktake)),
                _ => {}
            }
            Ok(None)
        }
        Payload::Transfer {
            transfer,
            step,
            changes,
        } => apply_transfer(kv, entry, transfer, step, changes),
        Payload::Checkout { stock, .. } => {
            if !stock.iter().all(|c| c.qty.0 < 0) || !consistent(stock) {
                return Ok(Some("a sale's stock changes must take goods out".into()));
            }
            absorb_changes(kv, &entry.origin, stock)?;
            Ok(None)
        }
        Payload::ItemReturn { stock, .. } => {
            if !stock.iter().all(|c| c.qty.0 > 0) || !consistent(stock) {
                return Ok(Some("a return's stock changes must put goods back".into()));
            }
            absorb_changes(kv, &entry.origin, stock)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Each change's totals can hold its quantity (a store's software wrote them, not a person).
fn consistent(changes: &[StockChange]) -> bool {
    let mut skus: Vec<&Sku> = changes.iter().map(|c| &c.sku).collect();
    skus.sort();
    skus.dedup();
    skus.len() == changes.len()
        && changes.iter().all(|c| {
            let amount = c.qty.0.unsigned_abs();
            if c.qty.0 >= 0 {
                c.total_in >= amount
            } else {
                c.total_out >= amount
            }
        })
}

fn absorb_changes(
    kv: &mut dyn ViewKv,
    store: &StoreId,
    changes: &[StockChange],
) -> Result<(), String> {
    for change in changes {
        let key = keys::stock(store, &change.sku);
        let cell = read(kv, &key)?.unwrap_or((0, 0));
        kv.put(key, encode(&absorb_cell(cell, change)));
    }
    Ok(())
}

fn apply_catalogue(
    kv: &mut dyn ViewKv,
    entry: &Entry,
    version: u64,
    (part, parts): (u32, u32),
    changes: &[CatalogueChange],
) -> Result<(), String> {
    let staged = |p| keys::staged(version, p);
    if !apply_parts(kv, version, (part, parts), changes, staged)? {
        return Ok(());
    }
    let visible = CatalogueVersion {
        version,
        at: entry.hlc,
    };
    kv.put(keys::CATALOGUE_VERSION.to_vec(), encode(&visible));
    Ok(())
}

/// A change set's part for some stores (门店经营品项): staged until its group's last part, as
/// a broadcast change set's are, then applied (headquarters applies every group; a store only
/// those addressed to it). The version becomes visible with the broadcast part that follows
/// every group (an empty one if the set has nothing for every store).
fn apply_store_catalogue(
    kv: &mut dyn ViewKv,
    version: u64,
    (group, part, parts): (u32, u32, u32),
    changes: &[CatalogueChange],
) -> Result<(), String> {
    let staged = |p| keys::staged_group(version, group, p);
    apply_parts(kv, version, (part, parts), changes, staged).map(|_| ())
}

/// Stages a part of `version` under `staged(part)` until the last, which applies them all in
/// order (parts arrive in order: one origin's log). Whether it applied them.
fn apply_parts(
    kv: &mut dyn ViewKv,
    version: u64,
    (part, parts): (u32, u32),
    changes: &[CatalogueChange],
    staged: impl Fn(u32) -> Vec<u8>,
) -> Result<bool, String> {
    let current: CatalogueVersion = read(kv, keys::CATALOGUE_VERSION)?.unwrap_or_default();
    if version < current.version {
        return Ok(false); // an older change set: already visible
    }
    if part + 1 < parts {
        kv.put(staged(part), encode(&changes.to_vec()));
        return Ok(false);
    }
    let mut all = Vec::new();
    for earlier in 0..part {
        let key = staged(earlier);
        let held: Vec<CatalogueChange> = read(kv, &key)?
            .ok_or_else(|| format!("catalogue version {version} is missing part {earlier}"))?;
        kv.delete(key);
        all.extend(held);
    }
    all.extend(changes.iter().cloned());
    for change in &all {
        apply_change(kv, change)?;
    }
    Ok(true)
}

/// Applies one change. A product or bundle sent to a store is carried there (again); a
/// withdrawal marks it not carried (`keys::not_carried`: read by a store's till only;
/// headquarters keeps every store's assortment under `keys::carried`).
fn apply_change(kv: &mut dyn ViewKv, change: &CatalogueChange) -> Result<(), String> {
    match change {
        CatalogueChange::Product(_) | CatalogueChange::Bundle(_) => {
            kv.delete(keys::not_carried(change.sku()));
        }
        CatalogueChange::Withdrawn { sku } => kv.put(keys::not_carried(sku), encode(&())),
        _ => {}
    }
    match change {
        CatalogueChange::Withdrawn { .. } => {}
        CatalogueChange::Carried { sku, stores } => match stores {
            Some(stores) => kv.put(keys::carried(sku), encode(stores)),
            None => kv.delete(keys::carried(sku)),
        },
        CatalogueChange::Product(p) => {
            let before = product(kv, &p.sku)?;
            for old in before.iter().flat_map(|b| &b.barcodes) {
                if !p.barcodes.contains(old) && sku_of_barcode(kv, old)?.as_ref() == Some(&p.sku) {
                    kv.delete(keys::barcode(old));
                }
            }
            for code in &p.barcodes {
                kv.put(keys::barcode(code), encode(&p.sku));
            }
            kv.put(keys::product(&p.sku), encode(p));
        }
        CatalogueChange::Bundle(b) => kv.put(keys::bundle(&b.id), encode::<Bundle>(b)),
        CatalogueChange::StorePrice { store, sku, price } => {
            let key = keys::store_price(store, sku);
            match price {
                Some(p) => kv.put(key, encode::<Fen>(p)),
                None => kv.delete(key),
            }
        }
        CatalogueChange::StoreLowStock {
            store,
            sku,
            threshold,
        } => {
            let key = keys::store_low_stock(store, sku);
            match threshold {
                Some(t) => kv.put(key, encode::<Qty>(t)),
                None => kv.delete(key),
            }
        }
    }
    Ok(())
}

fn apply_transfer(
    kv: &mut dyn ViewKv,
    entry: &Entry,
    id: &DocId,
    step: &TransferStep,
    changes: &[StockChange],
) -> Result<Option<String>, String> {
    let record = StepRecord {
        step: step.name().to_owned(),
        by: entry.origin.clone(),
        staff: entry.staff.clone(),
        at: entry.hlc,
    };
    let key = keys::transfer(id);
    let lines = lines_of(changes);
    let fits = match step {
        TransferStep::Requested { .. } => {
            changes.is_empty() && *id == DocId::for_entry("T", &entry.origin, entry.seq)
        }
        TransferStep::Shipped => changes.iter().all(|c| c.qty.0 < 0),
        TransferStep::Received { .. } => changes.iter().all(|c| c.qty.0 > 0),
        _ => changes.is_empty(),
    };
    if !fits || !consistent(changes) {
        return Ok(Some(format!(
            "transfer {id}: changes that do not fit the step"
        )));
    }
    let transfer = match read::<Transfer>(kv, &key)? {
        None => Transfer::open(id.clone(), &entry.origin, step, record),
        Some(mut t) => t.check(&entry.origin, step, &lines).map(|()| {
            t.apply(step, &lines, record);
            t
        }),
    };
    match transfer {
        Ok(t) => {
            absorb_changes(kv, &entry.origin, changes)?;
            kv.put(key, encode(&t));
            Ok(None)
        }
        Err(e) => Ok(Some(format!("transfer {id}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Unit;
    use crate::entry::EntryHash;
    use crate::hlc::Hlc;
    use crate::ids::{StaffId, TxId};
    use std::collections::BTreeMap;

    fn hq(payload: Payload) -> Entry {
        Entry {
            origin: StoreId::hq(),
            seq: 1,
            hlc: Hlc::ZERO,
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            staff: StaffId::parse("hq").unwrap(),
            tx: TxId::parse("catalogue-test").unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    fn product(sku: &str) -> CatalogueChange {
        CatalogueChange::Product(crate::catalogue::Product {
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

    fn for_stores(version: u64, group: u32, part: u32, parts: u32, c: CatalogueChange) -> Entry {
        hq(Payload::StoreCatalogue {
            stores: vec![StoreId::parse("S001").unwrap()],
            version,
            group,
            part,
            parts,
            changes: vec![c],
        })
    }

    #[test]
    fn a_store_sells_a_product_withdrawn_from_it_only_once_it_is_sent_again() {
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let a1 = Sku::parse("A1").unwrap();
        apply(&mut kv, &for_stores(1, 0, 0, 1, product("A1"))).unwrap();
        assert!(!crate::inventory::not_carried(&kv, &a1).unwrap());
        let withdrawn = CatalogueChange::Withdrawn { sku: a1.clone() };
        apply(&mut kv, &for_stores(2, 0, 0, 1, withdrawn)).unwrap();
        assert!(crate::inventory::not_carried(&kv, &a1).unwrap());
        assert!(
            product_of(&kv, &a1).is_some(),
            "kept for its stock and history"
        );
        apply(&mut kv, &for_stores(3, 0, 0, 1, product("A1"))).unwrap();
        assert!(!crate::inventory::not_carried(&kv, &a1).unwrap());
    }

    #[test]
    fn two_groups_of_one_version_are_each_applied_at_their_last_part_and_the_broadcast_shows_it() {
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // Group 0 in two parts, group 1 in one, interleaved as a store may not see them.
        apply(&mut kv, &for_stores(4, 0, 0, 2, product("A1"))).unwrap();
        apply(&mut kv, &for_stores(4, 1, 0, 1, product("B1"))).unwrap();
        assert!(product_of(&kv, &Sku::parse("B1").unwrap()).is_some());
        assert!(product_of(&kv, &Sku::parse("A1").unwrap()).is_none());
        apply(&mut kv, &for_stores(4, 0, 1, 2, product("A2"))).unwrap();
        assert!(product_of(&kv, &Sku::parse("A1").unwrap()).is_some());
        assert!(
            kv.keys().all(|k| !k.starts_with(b"csg/")),
            "nothing left staged"
        );
        // The broadcast part after the groups makes the version visible.
        let visible = |kv: &BTreeMap<Vec<u8>, Vec<u8>>| {
            read::<CatalogueVersion>(kv, keys::CATALOGUE_VERSION)
                .unwrap()
                .map(|v| v.version)
        };
        assert_eq!(visible(&kv), None);
        let broadcast = hq(Payload::Catalogue {
            version: 4,
            part: 0,
            parts: 1,
            changes: vec![product("C1")],
        });
        apply(&mut kv, &broadcast).unwrap();
        assert!(product_of(&kv, &Sku::parse("C1").unwrap()).is_some());
        assert_eq!(visible(&kv), Some(4));
    }

    fn product_of(kv: &BTreeMap<Vec<u8>, Vec<u8>>, sku: &Sku) -> Option<crate::catalogue::Product> {
        crate::inventory::product(kv, sku).unwrap()
    }
}
