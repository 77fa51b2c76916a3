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

use crate::catalogue::{Barcode, Product, Qty};
use crate::hlc::Hlc;
use crate::ids::{DocId, Sku, StoreId};

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
    b"cat/", b"cs/", b"csg/", b"pr/", b"bc/", b"bu/", b"spr/", b"slt/", b"stk/", b"tr/", b"stt/",
    b"asr/", b"nc/",
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

    /// A part of a change set's group for some stores, staged until its last part.
    pub fn staged_group(version: u64, group: u32, part: u32) -> Vec<u8> {
        let mut key = b"csg/".to_vec();
        key.extend(version.to_be_bytes());
        key.extend(group.to_be_bytes());
        key.extend(part.to_be_bytes());
        key
    }

    /// 门店经营品项 (headquarters): the stores that carry a product; absent: every store.
    pub fn carried(sku: &Sku) -> Vec<u8> {
        format!("asr/{sku}").into_bytes()
    }

    /// At a store: it no longer carries `sku` (its till refuses to sell it).
    pub fn not_carried(sku: &Sku) -> Vec<u8> {
        format!("nc/{sku}").into_bytes()
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

/// 门店经营品项: the stores that carry `sku` (`None`: every store), as headquarters records it.
pub fn carried(kv: &dyn ViewKv, sku: &Sku) -> Result<Option<Vec<StoreId>>, String> {
    read(kv, &keys::carried(sku))
}

/// At a store: whether headquarters told it it no longer carries `sku`.
pub fn not_carried(kv: &dyn ViewKv, sku: &Sku) -> Result<bool, String> {
    Ok(read::<()>(kv, &keys::not_carried(sku))?.is_some())
}

pub fn sku_of_barcode(kv: &dyn ViewKv, code: &Barcode) -> Result<Option<Sku>, String> {
    read(kv, &keys::barcode(code))
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
