//! The catalogue headquarters authors (商品资料): products, barcodes, prices, special prices
//! (特价), bundles (套餐), per-store price overrides and low-stock thresholds. Only
//! headquarters writes it, in entries of its own log; every store applies them from the feed.
//!
//! One change set is one version. A large one (an import) spans several entries (`part` of
//! `parts`); a replica stages the parts and makes the version visible only with its last part,
//! so a till never sees half a change.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, Sku, StoreId};
use crate::money::{Currency, Fen, Money};

/// The longest product name, department or category, in characters.
pub const NAME_CHARS_MAX: usize = 100;
pub const GROUP_CHARS_MAX: usize = 60;
pub const BARCODES_MAX: usize = 8;
pub const BUNDLE_ITEMS_MAX: usize = 20;
/// Prices above this (1,000,000 yuan) are refused as typing mistakes.
pub const PRICE_FEN_MAX: i64 = 100_000_000;

/// A scannable code: EAN-13, UPC-A, EAN-8 or a store's own PLU (4 to 20 digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Barcode(String);

impl Barcode {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let len = value.chars().count();
        if !(4..=20).contains(&len) {
            return Err(IdError::Length {
                kind: "barcode",
                min: 4,
                max: 20,
                len,
            });
        }
        match value.chars().find(|c| !c.is_ascii_digit()) {
            Some(found) => Err(IdError::Character {
                kind: "barcode",
                allowed: "digits",
                found,
            }),
            None => Ok(Self(value.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Barcode {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<Barcode> for String {
    fn from(value: Barcode) -> String {
        value.0
    }
}

impl fmt::Display for Barcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a product is counted: by the piece, or by weight in kilograms (three decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    #[default]
    Piece,
    Kg,
}

/// A quantity in thousandths of its unit (a piece is 1000; 1.250 kg is 1250). Negative in
/// movements that take goods away. Ledgers hold these, never decimals; JSON shows the decimal
/// as a string ("1.25"), the log the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub i64);

impl Serialize for Qty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d).map(Qty);
        }
        let text = String::deserialize(d)?;
        let (sign, body) = match text.strip_prefix('-') {
            Some(body) => (-1, body),
            None => (1, text.as_str()),
        };
        let value = parse_quantity(body).map_err(serde::de::Error::custom)?;
        Qty::from_decimal(value * Decimal::from(sign), Unit::Kg).map_err(serde::de::Error::custom)
    }
}

/// The largest quantity one line may move: a million units.
pub const QTY_MAX: Qty = Qty(1_000_000_000);

impl Qty {
    pub const ZERO: Qty = Qty(0);

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 3)
    }

    /// Reads a quantity of `unit`: whole pieces, or kilograms with at most three decimals.
    pub fn from_decimal(value: Decimal, unit: Unit) -> Result<Qty, CatalogueError> {
        let milli = value * Decimal::ONE_THOUSAND;
        if milli.fract() != Decimal::ZERO {
            return Err(CatalogueError::Quantity(format!(
                "{value}: at most three decimals"
            )));
        }
        if unit == Unit::Piece && value.fract() != Decimal::ZERO {
            return Err(CatalogueError::Quantity(format!(
                "{value}: pieces are counted whole"
            )));
        }
        let qty = i64::try_from(milli)
            .map(Qty)
            .map_err(|_| CatalogueError::Quantity(format!("{value}: out of range")))?;
        if qty.0.abs() > QTY_MAX.0 {
            return Err(CatalogueError::Quantity(format!("{value}: out of range")));
        }
        Ok(qty)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal().normalize())
    }
}

/// A special price (特价) valid from `from` to `to`, both included, in the store's calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialPrice {
    pub price: Fen,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub barcodes: Vec<Barcode>,
    pub department: String,
    pub category: String,
    pub unit: Unit,
    /// `None`: not priced yet (an imported product the chain has not priced): not for sale.
    pub price: Option<Fen>,
    pub special: Option<SpecialPrice>,
    pub earns_points: bool,
    pub discountable: bool,
    /// Withdrawn products stay in the catalogue (old sales name them) but are not sold.
    pub active: bool,
    /// Alert when a store holds this much or less (库存预警), unless the store has its own.
    pub low_stock: Option<Qty>,
}

/// A bundle (套餐): these items together at one price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub id: Sku,
    pub name: String,
    pub items: Vec<(Sku, Qty)>,
    pub price: Fen,
    pub active: bool,
}

/// One edit in a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueChange {
    /// Creates or replaces a product as a whole.
    Product(Product),
    Bundle(Bundle),
    /// A store's own price for a product (`None` goes back to the chain's price).
    StorePrice {
        store: StoreId,
        sku: Sku,
        price: Option<Fen>,
    },
    /// A store's own low-stock threshold (`None` goes back to the product's).
    StoreLowStock {
        store: StoreId,
        sku: Sku,
        threshold: Option<Qty>,
    },
    /// 门店经营品项: the stores that carry a product or bundle from now on (`None`: every
    /// store, as before any is named). Headquarters' own record: it goes to no store; the
    /// stores it names get the product itself, those it drops a `Withdrawn`.
    Carried {
        sku: Sku,
        stores: Option<Vec<StoreId>>,
    },
    /// The stores an entry is addressed to no longer carry the product: their tills refuse
    /// to sell it (it stays on file for their stock and history). Headquarters writes it.
    Withdrawn {
        sku: Sku,
    },
}

/// The most stores one product's assortment names (a chain of this many stores names none:
/// every store carries it).
pub const CARRIED_STORES_MAX: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    #[error("quantity {0}")]
    Quantity(String),
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    #[error("unknown barcode {0}")]
    UnknownBarcode(Barcode),
    #[error("barcode {barcode} already belongs to {owner}")]
    DuplicateBarcode { barcode: Barcode, owner: Sku },
    #[error(
        "{store} still holds some of {sku}: move it or write it off before it stops carrying it"
    )]
    StockHeld { sku: Sku, store: StoreId },
    #[error("an empty change set")]
    Empty,
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), CatalogueError> {
    let len = value.chars().count();
    let problem = if required && value.trim().is_empty() {
        "is required".to_owned()
    } else if len > max {
        format!("is {len} characters long, at most {max}")
    } else if value.chars().any(char::is_control) {
        "contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(CatalogueError::Field {
        field: field.to_owned(),
        problem,
    })
}

fn price(field: &str, fen: Fen) -> Result<(), CatalogueError> {
    if fen.0 < 0 || fen.0 > PRICE_FEN_MAX {
        return Err(CatalogueError::Field {
            field: field.to_owned(),
            problem: format!("{fen} is not a price between 0 and 1000000"),
        });
    }
    Ok(())
}

impl Product {
    /// Checks the product on its own (barcode uniqueness needs the catalogue: see `Catalogue`).
    pub fn check(&self) -> Result<(), CatalogueError> {
        let at = |f: &str| format!("{}.{f}", self.sku);
        text(&at("name"), &self.name, NAME_CHARS_MAX, true)?;
        text(&at("department"), &self.department, GROUP_CHARS_MAX, false)?;
        text(&at("category"), &self.category, GROUP_CHARS_MAX, false)?;
        if self.barcodes.len() > BARCODES_MAX {
            return Err(CatalogueError::Field {
                field: at("barcodes"),
                problem: format!("at most {BARCODES_MAX}"),
            });
        }
        let mut seen = self.barcodes.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.barcodes.len() {
            return Err(CatalogueError::Field {
                field: at("barcodes"),
                problem: "a barcode is listed twice".into(),
            });
        }
        if let Some(p) = self.price {
            price(&at("price"), p)?;
        }
        if let Some(special) = &self.special {
            price(&at("special.price"), special.price)?;
            if special.to < special.from {
                return Err(CatalogueError::Field {
                    field: at("special"),
                    problem: "ends before it starts".into(),
                });
            }
        }
        if let Some(t) = self.low_stock
            && (t.0 < 0 || t > QTY_MAX)
        {
            return Err(CatalogueError::Quantity(format!("{t}: not a threshold")));
        }
        Ok(())
    }

    /// The price at `store` on `date`: the special price while it runs, else the store's own
    /// price, else the chain's. `None` if the product is not priced or not active.
    pub fn price_on(&self, store_price: Option<Fen>, date: NaiveDate) -> Option<Fen> {
        if !self.active {
            return None;
        }
        match &self.special {
            Some(s) if s.from <= date && date <= s.to => Some(s.price),
            _ => store_price.or(self.price),
        }
    }
}

impl CatalogueChange {
    /// Checks the change on its own.
    pub fn check(&self) -> Result<(), CatalogueError> {
        match self {
            CatalogueChange::Product(p) => p.check(),
            CatalogueChange::Bundle(b) => {
                text(&format!("{}.name", b.id), &b.name, NAME_CHARS_MAX, true)?;
                price(&format!("{}.price", b.id), b.price)?;
                if b.items.is_empty() || b.items.len() > BUNDLE_ITEMS_MAX {
                    return Err(CatalogueError::Field {
                        field: format!("{}.items", b.id),
                        problem: format!("1 to {BUNDLE_ITEMS_MAX} items"),
                    });
                }
                match b.items.iter().find(|(_, q)| q.0 <= 0 || *q > QTY_MAX) {
                    Some((sku, q)) => Err(CatalogueError::Quantity(format!("{sku}: {q}"))),
                    None => Ok(()),
                }
            }
            CatalogueChange::StorePrice { sku, price: p, .. } => match p {
                Some(p) => price(&format!("{sku}.store_price"), *p),
                None => Ok(()),
            },
            CatalogueChange::StoreLowStock { threshold, sku, .. } => match threshold {
                Some(t) if t.0 < 0 || *t > QTY_MAX => {
                    Err(CatalogueError::Quantity(format!("{sku}: {t}")))
                }
                _ => Ok(()),
            },
            CatalogueChange::Carried { sku, stores } => match stores {
                Some(stores) if stores.len() > CARRIED_STORES_MAX => Err(CatalogueError::Field {
                    field: format!("{sku}.stores"),
                    problem: format!("at most {CARRIED_STORES_MAX} stores (none: every store)"),
                }),
                Some(stores) => {
                    let mut sorted: Vec<&StoreId> = stores.iter().collect();
                    sorted.sort();
                    match sorted.windows(2).find(|w| w[0] == w[1]) {
                        Some(w) => Err(CatalogueError::Field {
                            field: format!("{sku}.stores"),
                            problem: format!("{} named twice", w[0]),
                        }),
                        None => Ok(()),
                    }
                }
                None => Ok(()),
            },
            CatalogueChange::Withdrawn { .. } => Ok(()),
        }
    }

    /// The product or bundle the change is about.
    pub fn sku(&self) -> &Sku {
        match self {
            CatalogueChange::Product(p) => &p.sku,
            CatalogueChange::Bundle(b) => &b.id,
            CatalogueChange::StorePrice { sku, .. }
            | CatalogueChange::StoreLowStock { sku, .. }
            | CatalogueChange::Carried { sku, .. }
            | CatalogueChange::Withdrawn { sku } => sku,
        }
    }
}

/// A product as it crosses the HTTP interfaces: prices as money (`{"amount": "2.50"}`, CNY),
/// quantities as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductForm {
    pub sku: Sku,
    pub name: String,
    #[serde(default)]
    pub barcodes: Vec<Barcode>,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub unit: Unit,
    #[serde(default)]
    pub price: Option<Money>,
    #[serde(default)]
    pub special: Option<SpecialForm>,
    #[serde(default = "yes")]
    pub earns_points: bool,
    #[serde(default = "yes")]
    pub discountable: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub low_stock: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialForm {
    pub price: Money,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One edit of a change set, as headquarters' API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeForm {
    Product(ProductForm),
    Bundle {
        id: Sku,
        name: String,
        items: Vec<(Sku, String)>,
        price: Money,
        #[serde(default = "yes")]
        active: bool,
    },
    StorePrice {
        store: StoreId,
        sku: Sku,
        price: Option<Money>,
    },
    StoreLowStock {
        store: StoreId,
        sku: Sku,
        threshold: Option<String>,
    },
    /// 门店经营品项: the stores that carry `sku` (null or absent: every store).
    Carried {
        sku: Sku,
        #[serde(default)]
        stores: Option<Vec<StoreId>>,
    },
}

fn fen_of(field: &str, money: &Money) -> Result<Fen, CatalogueError> {
    let bad = |problem: String| CatalogueError::Field {
        field: field.to_owned(),
        problem,
    };
    if money.currency != Currency::CNY {
        return Err(bad(format!("prices are in CNY, not {}", money.currency)));
    }
    money.to_fen().map_err(|e| bad(e.to_string()))
}

fn qty_of(text: &str, unit: Unit) -> Result<Qty, CatalogueError> {
    let value = parse_quantity(text)?;
    Qty::from_decimal(value, unit)
}

/// Reads a quantity as people write it: digits, an optional '.', at most three decimals.
pub fn parse_quantity(text: &str) -> Result<Decimal, CatalogueError> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 10 || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return Err(CatalogueError::Quantity(format!(
            "{:?}: write a quantity such as \"2\" or \"1.250\"",
            text.chars().take(20).collect::<String>()
        )));
    }
    text.parse()
        .map_err(|_| CatalogueError::Quantity(text.chars().take(20).collect()))
}

impl ProductForm {
    pub fn into_product(self) -> Result<Product, CatalogueError> {
        let at = |f: &str| format!("{}.{f}", self.sku);
        let product = Product {
            price: self
                .price
                .as_ref()
                .map(|m| fen_of(&at("price"), m))
                .transpose()?,
            special: self
                .special
                .as_ref()
                .map(|s| {
                    Ok::<_, CatalogueError>(SpecialPrice {
                        price: fen_of(&at("special.price"), &s.price)?,
                        from: s.from,
                        to: s.to,
                    })
                })
                .transpose()?,
            low_stock: self
                .low_stock
                .as_deref()
                .map(|t| qty_of(t, self.unit))
                .transpose()?,
            sku: self.sku,
            name: self.name,
            barcodes: self.barcodes,
            department: self.department,
            category: self.category,
            unit: self.unit,
            earns_points: self.earns_points,
            discountable: self.discountable,
            active: self.active,
        };
        product.check()?;
        Ok(product)
    }

    pub fn from_product(p: &Product) -> ProductForm {
        ProductForm {
            sku: p.sku.clone(),
            name: p.name.clone(),
            barcodes: p.barcodes.clone(),
            department: p.department.clone(),
            category: p.category.clone(),
            unit: p.unit,
            price: p.price.map(Money::cny),
            special: p.special.as_ref().map(|s| SpecialForm {
                price: Money::cny(s.price),
                from: s.from,
                to: s.to,
            }),
            earns_points: p.earns_points,
            discountable: p.discountable,
            active: p.active,
            low_stock: p.low_stock.map(|q| q.to_string()),
        }
    }
}

impl ChangeForm {
    /// The change, checked on its own (the catalogue-wide checks are headquarters').
    pub fn into_change(self) -> Result<CatalogueChange, CatalogueError> {
        let change = match self {
            ChangeForm::Product(p) => CatalogueChange::Product(p.into_product()?),
            ChangeForm::Bundle {
                id,
                name,
                items,
                price,
                active,
            } => CatalogueChange::Bundle(Bundle {
                price: fen_of(&format!("{id}.price"), &price)?,
                items: items
                    .into_iter()
                    .map(|(sku, q)| Ok((sku, qty_of(&q, Unit::Kg)?)))
                    .collect::<Result<_, CatalogueError>>()?,
                id,
                name,
                active,
            }),
            ChangeForm::StorePrice { store, sku, price } => CatalogueChange::StorePrice {
                price: price
                    .as_ref()
                    .map(|m| fen_of(&format!("{sku}.store_price"), m))
                    .transpose()?,
                store,
                sku,
            },
            ChangeForm::StoreLowStock {
                store,
                sku,
                threshold,
            } => CatalogueChange::StoreLowStock {
                threshold: threshold
                    .as_deref()
                    .map(|t| qty_of(t, Unit::Kg))
                    .transpose()?,
                store,
                sku,
            },
            ChangeForm::Carried { sku, stores } => CatalogueChange::Carried { sku, stores },
        };
        change.check()?;
        Ok(change)
    }
}

/// Splits a change set into entry-sized parts (each well under the entry size limit).
pub fn parts(changes: Vec<CatalogueChange>, bytes_per_part: usize) -> Vec<Vec<CatalogueChange>> {
    let mut out: Vec<Vec<CatalogueChange>> = Vec::new();
    let mut size = 0;
    for change in changes {
        let len = postcard::to_stdvec(&change).map_or(0, |b| b.len());
        match out.last_mut() {
            Some(part) if size + len <= bytes_per_part => part.push(change),
            _ => {
                out.push(vec![change]);
                size = 0;
            }
        }
        size += len;
    }
    out
}

/// Bytes of changes per catalogue entry: with the envelope, well under `ENTRY_BYTES_MAX`.
pub const PART_BYTES: usize = 40 * 1024;

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    pub(crate) fn product(sku: &str, price: i64) -> Product {
        Product {
            sku: Sku::parse(sku).unwrap(),
            name: format!("商品{sku}"),
            barcodes: vec![],
            department: "GROCERY".into(),
            category: "饮品".into(),
            unit: Unit::Piece,
            price: Some(Fen(price)),
            special: None,
            earns_points: true,
            discountable: true,
            active: true,
            low_stock: None,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn special_price_beats_store_price_beats_chain_price() {
        let mut p = product("A1", 10_00);
        assert_eq!(p.price_on(None, day(1)), Some(Fen(10_00)));
        assert_eq!(p.price_on(Some(Fen(9_50)), day(1)), Some(Fen(9_50)));
        p.special = Some(SpecialPrice {
            price: Fen(7_99),
            from: day(10),
            to: day(12),
        });
        assert_eq!(p.price_on(Some(Fen(9_50)), day(9)), Some(Fen(9_50)));
        assert_eq!(p.price_on(Some(Fen(9_50)), day(12)), Some(Fen(7_99)));
        assert_eq!(p.price_on(None, day(13)), Some(Fen(10_00)));
        p.active = false;
        assert_eq!(p.price_on(None, day(1)), None);
    }

    #[test]
    fn bad_products_are_refused() {
        let mut p = product("A1", -1);
        assert!(p.check().is_err());
        p.price = Some(Fen(PRICE_FEN_MAX + 1));
        assert!(p.check().is_err());
        p.price = None;
        assert!(
            p.check().is_ok(),
            "an unpriced product is fine (not for sale)"
        );
        p.name = " ".into();
        assert!(p.check().is_err());
        p.name = "x".repeat(NAME_CHARS_MAX + 1);
        assert!(p.check().is_err());
        p.name = "ok".into();
        let code = Barcode::parse("6901234567892").unwrap();
        p.barcodes = vec![code.clone(), code];
        assert!(p.check().is_err());
        assert!(Barcode::parse("12a4").is_err() && Barcode::parse("123").is_err());
    }

    #[test]
    fn quantities_are_whole_pieces_or_grams() {
        let q = |s: &str, unit| Qty::from_decimal(s.parse().unwrap(), unit);
        assert_eq!(q("2", Unit::Piece), Ok(Qty(2_000)));
        assert!(q("1.5", Unit::Piece).is_err());
        assert_eq!(q("1.250", Unit::Kg), Ok(Qty(1_250)));
        assert!(q("0.0005", Unit::Kg).is_err());
        assert!(q("2000000", Unit::Piece).is_err());
        assert_eq!(Qty(1_250).to_string(), "1.25");
    }

    #[test]
    fn change_sets_split_into_parts_in_order() {
        let changes: Vec<_> = (0..5)
            .map(|i| CatalogueChange::Product(product(&format!("P{i}"), 100)))
            .collect();
        let one = postcard::to_stdvec(&changes[0]).unwrap().len();
        let split = parts(changes.clone(), 2 * one);
        assert_eq!(split.len(), 3);
        assert_eq!(split.concat(), changes);
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn quantities_are_decimal_strings_in_json_and_integers_in_the_log() {
        assert_eq!(serde_json::to_string(&Qty(1_250)).unwrap(), "\"1.25\"");
        assert_eq!(serde_json::to_string(&Qty(-6_000)).unwrap(), "\"-6\"");
        assert_eq!(
            serde_json::from_str::<Qty>("\"-1.5\"").unwrap(),
            Qty(-1_500)
        );
        assert!(serde_json::from_str::<Qty>("6000").is_err());
        assert_eq!(
            postcard::to_stdvec(&Qty(1_250)).unwrap(),
            postcard::to_stdvec(&1_250i64).unwrap()
        );
    }
}
