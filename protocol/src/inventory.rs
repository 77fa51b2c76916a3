//! The inventory views — catalogue, stock per (store, SKU), transfers, open stocktakes — derived
//! from entries the same way at every store and at headquarters. The caller supplies the
//! key-value store (a node's batch overlay, the hub's); this module decides every key.
//!
//! Keys: `cat/v` catalogue version · `cs/<version BE><part BE>` a staged part of a change set ·
//! `pr/<sku>` product · `bc/<barcode>` → sku · `bu/<id>` bundle · `spr/<store>/<sku>` a store's
//! own price · `slt/<store>/<sku>` a store's own low-stock threshold · `stk/<store>/<sku>` the
//! store's (in, out) totals · `tr/<id>` transfer · `stt/<id>` an open stocktake.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Barcode, Bundle, CatalogueChange, Product, Qty};
use crate::entry::{Entry, Payload};
use crate::hlc::Hlc;
use crate::ids::{DocId, Sku, StoreId};
use crate::money::Fen;
use crate::stock::{
    StepRecord, StockChange, StockMovement, Transfer, TransferStep, absorb_cell, lines_of,
};

/// Where views live; errors are the store's, as text.
pub trait ViewKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, key: Vec<u8>);
}

/// Views in memory, for tests and tools.
impl ViewKv for std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(std::collections::BTreeMap::get(self, key).cloned())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.insert(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.remove(&key);
    }
}

/// Every prefix this module writes (a store's rebuild compares them all).
pub const VIEW_PREFIXES: &[&[u8]] = &[
    b"cat/", b"cs/", b"pr/", b"bc/", b"bu/", b"spr/", b"slt/", b"stk/", b"tr/", b"stt/",
];

pub mod keys {
    use super::*;

    pub const CATALOGUE_VERSION: &[u8] = b"cat/v";

    pub fn staged(version: u64, part: u32) -> Vec<u8> {
        let mut key = b"cs/".to_vec();
        key.extend(version.to_be_bytes());
        key.extend(part.to_be_bytes());
        key
    }

    pub fn product(sku: &Sku) -> Vec<u8> {
        format!("pr/{sku}").into_bytes()
    }

    pub fn barcode(code: &Barcode) -> Vec<u8> {
        format!("bc/{code}").into_bytes()
    }

    pub fn bundle(id: &Sku) -> Vec<u8> {
        format!("bu/{id}").into_bytes()
    }

    pub fn store_price(store: &StoreId, sku: &Sku) -> Vec<u8> {
        format!("spr/{store}/{sku}").into_bytes()
    }

    pub fn store_low_stock(store: &StoreId, sku: &Sku) -> Vec<u8> {
        format!("slt/{store}/{sku}").into_bytes()
    }

    pub fn stock_prefix(store: &StoreId) -> Vec<u8> {
        format!("stk/{store}/").into_bytes()
    }

    pub fn stock(store: &StoreId, sku: &Sku) -> Vec<u8> {
        format!("stk/{store}/{sku}").into_bytes()
    }

    pub fn transfer(id: &DocId) -> Vec<u8> {
        format!("tr/{id}").into_bytes()
    }

    pub fn stocktake(id: &DocId) -> Vec<u8> {
        format!("stt/{id}").into_bytes()
    }
}

/// The catalogue version a replica has made visible, and when headquarters wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CatalogueVersion {
    pub version: u64,
    pub at: Hlc,
}

/// A stocktake opened and not yet closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenStocktake {
    pub id: DocId,
    pub store: StoreId,
    pub opened_at: Hlc,
    pub expected: Vec<(Sku, Qty)>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

pub fn read<T: DeserializeOwned>(kv: &dyn ViewKv, key: &[u8]) -> Result<Option<T>, String> {
    match kv.get(key)? {
        Some(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(key))),
        None => Ok(None),
    }
}

/// A store's (in, out) totals for a SKU.
pub fn stock_cell(kv: &dyn ViewKv, store: &StoreId, sku: &Sku) -> Result<(u64, u64), String> {
    Ok(read(kv, &keys::stock(store, sku))?.unwrap_or((0, 0)))
}

/// The product a SKU or barcode names, if the catalogue has it.
pub fn product(kv: &dyn ViewKv, sku: &Sku) -> Result<Option<Product>, String> {
    read(kv, &keys::product(sku))
}

pub fn sku_of_barcode(kv: &dyn ViewKv, code: &Barcode) -> Result<Option<Sku>, String> {
    read(kv, &keys::barcode(code))
}

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
        Payload::Catalogue { .. } => Ok(Some("a catalogue change not from headquarters".into())),
        Payload::Stock { movement, changes } => {
            let sign_ok = match movement {
                StockMovement::Received { .. } => changes.iter().all(|c| c.qty.0 > 0),
                StockMovement::Damaged { .. } => changes.iter().all(|c| c.qty.0 < 0),
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
    let current: CatalogueVersion = read(kv, keys::CATALOGUE_VERSION)?.unwrap_or_default();
    if version <= current.version {
        return Ok(()); // already visible
    }
    if part + 1 < parts {
        // Parts arrive in order (one origin's log); the last one makes the version visible.
        kv.put(keys::staged(version, part), encode(&changes.to_vec()));
        return Ok(());
    }
    let mut all = Vec::new();
    for earlier in 0..part {
        let key = keys::staged(version, earlier);
        let staged: Vec<CatalogueChange> = read(kv, &key)?
            .ok_or_else(|| format!("catalogue version {version} is missing part {earlier}"))?;
        kv.delete(key);
        all.extend(staged);
    }
    all.extend(changes.iter().cloned());
    for change in &all {
        apply_change(kv, change)?;
    }
    let visible = CatalogueVersion {
        version,
        at: entry.hlc,
    };
    kv.put(keys::CATALOGUE_VERSION.to_vec(), encode(&visible));
    Ok(())
}

fn apply_change(kv: &mut dyn ViewKv, change: &CatalogueChange) -> Result<(), String> {
    match change {
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

/// What a store's stock of a SKU is, and whether it needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockLevel {
    pub store: StoreId,
    pub sku: Sku,
    pub on_hand: Qty,
    pub low_stock: Option<Qty>,
    /// At or under its threshold (库存预警).
    pub low: bool,
    /// Below zero: the shelf and the system disagree.
    pub negative: bool,
}

/// The stock level of `sku` at `store`, with its threshold (the store's own, else the
/// product's).
pub fn level(kv: &dyn ViewKv, store: &StoreId, sku: &Sku) -> Result<StockLevel, String> {
    let (total_in, total_out) = stock_cell(kv, store, sku)?;
    let on_hand = Qty(crate::stock::on_hand(total_in, total_out));
    let low_stock = match read::<Qty>(kv, &keys::store_low_stock(store, sku))? {
        Some(t) => Some(t),
        None => product(kv, sku)?.and_then(|p| p.low_stock),
    };
    Ok(StockLevel {
        store: store.clone(),
        sku: sku.clone(),
        on_hand,
        low_stock,
        low: low_stock.is_some_and(|t| on_hand <= t),
        negative: on_hand.0 < 0,
    })
}
