//! Newtype ids. Every id that crosses an interface is validated once, here, on the way in.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string was not accepted as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be {min} to {max} characters long, got {len}")]
    Length {
        kind: &'static str,
        min: usize,
        max: usize,
        len: usize,
    },
    #[error("{kind} may only contain {allowed}, got {found:?}")]
    Character {
        kind: &'static str,
        allowed: &'static str,
        found: char,
    },
    #[error("{kind} is not valid: {value:?}")]
    Malformed { kind: &'static str, value: String },
}

fn check(
    kind: &'static str,
    value: &str,
    (min, max): (usize, usize),
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), IdError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(IdError::Length {
            kind,
            min,
            max,
            len,
        });
    }
    match value.chars().find(|c| !ok(*c)) {
        Some(found) => Err(IdError::Character {
            kind,
            allowed,
            found,
        }),
        None => Ok(()),
    }
}

fn code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn key_char(c: char) -> bool {
    c.is_ascii_graphic()
}

/// A string id with a length range and an allowed alphabet, serialised as a plain string.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $range:expr, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                check($kind, value, $range, $allowed, $ok)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A replica: a branch store, or headquarters as [`StoreId::hq`].
    StoreId, "store id", (1, 32), "letters, digits, '-' and '_'", code_char
);
string_id!(
    /// Idempotency key minted by the client (the till) for every change of money, points or stock.
    TxId, "idempotency key", (8, 128), "printable ASCII without spaces", key_char
);
string_id!(
    /// A product's stock-keeping unit.
    Sku, "sku", (1, 64), "letters, digits, '-' and '_'", code_char
);
string_id!(
    /// A member of staff (cashier, manager), recorded on every entry.
    StaffId, "staff id", (1, 32), "letters, digits, '-' and '_'", code_char
);
string_id!(
    /// A physical or virtual membership card number (会员卡号).
    CardNo, "card number", (4, 32), "letters, digits, '-' and '_'", code_char
);
string_id!(
    /// A sale's receipt number: `<store>-<seq>`, unique chain-wide.
    SaleId, "sale id", (3, 64), "letters, digits, '-' and '_'", code_char
);

string_id!(
    /// A document a store or headquarters opens and others refer to: a transfer (调拨单) or a
    /// stocktake (盘点单). Named `<kind>-<origin>-<seq>` after the entry that opened it.
    DocId, "document id", (3, 64), "letters, digits, '-' and '_'", code_char
);

impl DocId {
    pub fn for_entry(kind: &str, origin: &StoreId, seq: u64) -> Self {
        Self(format!("{kind}-{origin}-{seq:08}"))
    }
}

impl TxId {
    /// A key derived from others (a recall from an ask, a grant from an ask): the same parts
    /// always give the same key, so a retransmitted request is recognised as the same one.
    pub fn derived(parts: &[&str]) -> TxId {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for part in parts {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        let hex: String = hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        TxId(format!("d-{hex}"))
    }
}

impl StoreId {
    /// Headquarters' own origin in the log.
    pub fn hq() -> Self {
        Self("HQ".to_owned())
    }
}

impl SaleId {
    /// A sale is named after its store and the sequence number of the entry that recorded it.
    pub fn for_entry(store: &StoreId, seq: u64) -> Self {
        Self(format!("{store}-{seq:08}"))
    }
}

impl StaffId {
    /// The staff id recorded when a request names nobody (a self-service or system action).
    pub fn system() -> Self {
        Self("system".to_owned())
    }
}

/// A member, time-ordered: 48 bits of milliseconds then 80 random bits (a ULID), minted from a
/// clock reading and random bits the caller supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(ulid::Ulid);

impl MemberId {
    pub fn mint(now_ms: u64, random: u128) -> Self {
        Self(ulid::Ulid::from_parts(now_ms, random))
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        ulid::Ulid::from_string(value)
            .map(Self)
            .map_err(|_| IdError::Malformed {
                kind: "member id",
                value: value.chars().take(64).collect(),
            })
    }

    /// Milliseconds since the epoch at which the id was minted.
    pub fn minted_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }

    /// The id's 80 random bits.
    pub fn random_bits(&self) -> u128 {
        self.0.random()
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for MemberId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_checked() {
        assert!(StoreId::parse("S001").is_ok());
        assert!(StoreId::parse("").is_err());
        assert!(StoreId::parse("a b").is_err());
        assert!(StoreId::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn idempotency_keys_need_some_entropy_and_no_spaces() {
        assert!(TxId::parse("till-1-0001").is_ok());
        assert!(TxId::parse("short").is_err());
        assert!(TxId::parse("has a space").is_err());
        assert!(TxId::parse(&"k".repeat(129)).is_err());
    }

    #[test]
    fn member_ids_sort_by_mint_time_and_round_trip() {
        let early = MemberId::mint(1_000, u128::MAX >> 48);
        let late = MemberId::mint(2_000, 0);
        assert!(early < late);
        assert_eq!(MemberId::parse(&late.to_string()), Ok(late));
        assert_eq!(late.minted_ms(), 2_000);
        assert!(MemberId::parse("not-a-ulid").is_err());
    }

    #[test]
    fn sale_ids_name_store_and_seq() {
        let store = StoreId::parse("S001").unwrap();
        assert_eq!(SaleId::for_entry(&store, 42).as_str(), "S001-00000042");
    }
}
