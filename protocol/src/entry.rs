//! Log entries: the immutable facts every view is derived from.
//!
//! An entry is named `(origin, seq)`, `seq` dense from 1 per origin. Each carries the hash of the
//! previous entry of its origin, so headquarters can tell when a store's history was edited,
//! dropped or reordered. The byte format is versioned: a leading version byte, then postcard.
//! A released version is never edited; `tests/golden.rs` pins version 1.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::catalogue::CatalogueChange;
use crate::hlc::Hlc;
use crate::ids::{DocId, SaleId};
use crate::ids::{MemberId, StaffId, StoreId, TxId};
use crate::money::Fen;
use crate::returns::ItemReturn;
use crate::sale::{ItemSale, QuickSale, Tender};
use crate::stock::{StockChange, StockMovement, TransferStep};
use crate::wallet::{RightsOp, WalletEvent};

pub const ENTRY_VERSION: u8 = 1;
/// Entries larger than this are refused on decode; a member profile change is a few hundred bytes.
pub const ENTRY_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EntryHash(pub [u8; 32]);

impl EntryHash {
    /// The `prev_hash` of an origin's first entry.
    pub const GENESIS: EntryHash = EntryHash([0; 32]);

    /// The hash of an entry from its canonical bytes (`Entry::encode`).
    pub fn of_encoded(bytes: &[u8]) -> EntryHash {
        EntryHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for EntryHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for EntryHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return <[u8; 32]>::deserialize(d).map(EntryHash);
        }
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        let ok = text.len() == 64
            && out.iter_mut().enumerate().all(|(i, b)| {
                match u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or(""), 16) {
                    Ok(v) => {
                        *b = v;
                        true
                    }
                    Err(_) => false,
                }
            });
        if ok {
            Ok(EntryHash(out))
        } else {
            Err(serde::de::Error::custom("entry hash must be 64 hex digits"))
        }
    }
}

/// What happened. New kinds are added at the end; existing ones are never edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A member joined (会员注册); `change` creates their automerge profile document.
    MemberRegistered {
        member_id: MemberId,
        #[serde(with = "serde_bytes")]
        change: Vec<u8>,
    },
    /// A member's profile was edited; `change` is the automerge change.
    MemberEdited {
        member_id: MemberId,
        #[serde(with = "serde_bytes")]
        change: Vec<u8>,
    },
    /// A quick sale (快速消费), as version 1 wrote it before wallets.
    QuickSale(QuickSale),
    /// A sale and what it did to the member's wallet counters (points earned, stored value
    /// paid).
    Sale { sale: QuickSale, ops: Vec<RightsOp> },
    /// A change to a member's wallet that is not a sale: a top-up, a card, points by hand,
    /// rights moving between replicas.
    Wallet {
        member_id: MemberId,
        event: WalletEvent,
        ops: Vec<RightsOp>,
    },
    /// A sale returned (退货) at the store that made it: its amount paid back the way it was
    /// paid (stored value to the same counters), the points it earned taken back from their lot.
    Return {
        sale: SaleId,
        member_id: Option<MemberId>,
        amount: Fen,
        refund: Tender,
        reason: String,
        ops: Vec<RightsOp>,
    },
    /// Headquarters' catalogue change set `version`, as `part` of `parts` entries (only the last
    /// part makes the version visible).
    Catalogue {
        version: u64,
        part: u32,
        parts: u32,
        changes: Vec<CatalogueChange>,
    },
    /// Stock moved at the writing store (its own goods only).
    Stock {
        movement: StockMovement,
        changes: Vec<StockChange>,
    },
    /// A step of a transfer between stores; shipping and receiving move the writer's stock.
    Transfer {
        transfer: DocId,
        step: TransferStep,
        changes: Vec<StockChange>,
    },
    /// An item sale: its wallet writes (stored value paid, points used and earned) and the
    /// goods it took off the shelf.
    Checkout {
        sale: ItemSale,
        ops: Vec<RightsOp>,
        stock: Vec<StockChange>,
    },
    /// Goods of an item sale taken back (退货), by whichever store holds the sale's return
    /// rights: the money paid back tender by tender, the wallet's writes (stored value and
    /// points used given back, points earned taken back, the coupon's use, the lines' return
    /// rights spent) and the goods back on the returning store's shelf.
    ItemReturn {
        ret: ItemReturn,
        ops: Vec<RightsOp>,
        stock: Vec<StockChange>,
    },
    /// Headquarters' staff directory change: these records replace any of the same id.
    Staff {
        staff: Vec<crate::staff::StaffRecord>,
    },
    /// Headquarters' commission rules from a date on (提成规则).
    CommissionRules {
        rules: crate::commission::CommissionRules,
    },
    /// Headquarters sets a member of staff's login secret (a password or a PIN) as an argon2
    /// hash (PHC string), so every store checks a login offline; `None` removes it.
    StaffCredentials {
        id: crate::ids::StaffId,
        hash: Option<String>,
    },
    /// Headquarters' member rules for every store (会员规则): points rates and multipliers,
    /// top-up bonus rules, tier discounts, the offline overdraft policy.
    ChainRules { rules: crate::rules::ChainRules },
    /// 操作日志: a till action an auditor looks at that moves no money or stock by itself (a
    /// held order voided, a late sale, a tier set by hand), written alone or right after the
    /// entry it concerns, under the same request key.
    Audit { note: crate::audit::Note },
    /// 被遗忘: headquarters erased a member at their request. Every replica destroys the
    /// member's key (`crate::seal`) and what it kept of their person; the entries that hold their
    /// sealed profile stay, unreadable, so every hash chain still verifies.
    MemberErased { member_id: MemberId },
    /// 营销: headquarters' coupon templates, segments and campaigns, and what each run of a
    /// campaign did (`crate::campaign`); its coupons are `WalletEvent::CampaignCoupon` entries.
    Marketing {
        change: crate::campaign::MarketingChange,
    },
    /// 会员等级: headquarters' tier table for every store (`crate::tiers`).
    Tiers { table: crate::tiers::TierTable },
    /// 积分商城: headquarters' gifts for points, for every store (`crate::gifts`).
    Gifts { table: crate::gifts::GiftTable },
    /// 拓客奖励: what headquarters gives a referrer on their new member's first paid sale
    /// (`crate::referral`).
    ReferralRules {
        rules: crate::referral::ReferralRules,
    },
    /// 退卡与计时规则: how every store closes a membership and charges a timed card
    /// (`crate::card_rules`).
    CardRules { rules: crate::card_rules::CardRules },
    /// 门店经营品项: headquarters' catalogue change set `version` for the named stores only, as
    /// `part` of `parts` entries of its `group` (one address within the version: a store makes
    /// a group's changes visible at its last part). No store named: headquarters' own record
    /// of where each product is carried, which goes to no store.
    StoreCatalogue {
        stores: Vec<StoreId>,
        version: u64,
        group: u32,
        part: u32,
        parts: u32,
        changes: Vec<CatalogueChange>,
    },
    /// 会员名录: what headquarters sends, in place of a member's registration or profile edit,
    /// to a store that does not follow the member (`crate::route`): the member's directory
    /// listing as headquarters holds it when it sends (`crate::member::Profile::listing`,
    /// sealed under the member's key, `crate::seal::listing_aad`). Never in any log: it keeps
    /// the header of the entry it stands for, and a store may not push one.
    MemberListed {
        member_id: MemberId,
        #[serde(with = "serde_bytes")]
        card: Vec<u8>,
    },
}

impl Payload {
    /// The member whose wallet this entry changes (rights, a card, a receivable), or whose item
    /// sale it takes back, if any: these entries go to every store in the feed.
    pub fn wallet_member(&self) -> Option<MemberId> {
        let (member, ops, tender) = match self {
            Payload::Wallet { member_id, .. } => return Some(*member_id),
            Payload::Sale { sale, ops } => (sale.member_id, ops, &sale.tender),
            Payload::Checkout { sale, ops, .. } => {
                return sale.member_id.filter(|_| !ops.is_empty());
            }
            // Every store that may take the sale's next return must learn of this one, whether
            // or not it moved a counter (a partial return of goods paid in cash moves none).
            Payload::ItemReturn { ret, .. } => return ret.member_id,
            Payload::Return {
                member_id,
                ops,
                refund,
                ..
            } => (*member_id, ops, refund),
            _ => return None,
        };
        member.filter(|_| !ops.is_empty() || tender.overdraft().0 > 0)
    }

    /// The member whose wallet counters this entry writes, and the writes.
    pub fn rights_ops(&self) -> Option<(MemberId, &[RightsOp])> {
        match self {
            Payload::Sale { sale, ops } => sale.member_id.map(|m| (m, ops.as_slice())),
            Payload::Checkout { sale, ops, .. } => sale.member_id.map(|m| (m, ops.as_slice())),
            Payload::Wallet { member_id, ops, .. } => Some((*member_id, ops.as_slice())),
            Payload::Return { member_id, ops, .. } => member_id.map(|m| (m, ops.as_slice())),
            Payload::ItemReturn { ret, ops, .. } => ret.member_id.map(|m| (m, ops.as_slice())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub origin: StoreId,
    pub seq: u64,
    pub hlc: Hlc,
    /// The day the entry belongs to, in the origin's time zone and day boundary.
    pub business_date: NaiveDate,
    pub staff: StaffId,
    /// The idempotency key of the request that wrote this entry.
    pub tx: TxId,
    pub prev_hash: EntryHash,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry format version {0} is not supported (this build reads version {ENTRY_VERSION})")]
    Version(u8),
    #[error("entry is empty")]
    Empty,
    #[error("entry of {0} bytes is over the {ENTRY_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("entry is malformed: {0}")]
    Malformed(String),
}

impl Entry {
    /// The entry's bytes, as they are hashed and stored.
    ///
    /// # Panics
    /// If postcard cannot serialise the entry: only a type it does not support (a sequence of
    /// unknown length) can make it fail, which is a bug in this crate, and an empty or partial
    /// body must never enter a hash chain. The golden fixtures encode every payload kind.
    #[allow(clippy::expect_used)]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENTRY_VERSION];
        let body = postcard::to_stdvec(self).expect("every entry type serialises with postcard");
        out.extend(body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let (&version, body) = bytes.split_first().ok_or(EntryError::Empty)?;
        if version != ENTRY_VERSION {
            return Err(EntryError::Version(version));
        }
        let (entry, rest) =
            postcard::take_from_bytes(body).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(EntryError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(entry)
    }

    /// The hash the next entry of this origin must carry as `prev_hash`.
    pub fn hash(&self) -> EntryHash {
        EntryHash::of_encoded(&self.encode())
    }
}

/// An entry with its canonical bytes and hash, computed once (the hub verifies, stores and
/// relays the same bytes without encoding or hashing them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub entry: Entry,
    pub bytes: Vec<u8>,
    pub hash: EntryHash,
}

impl Sealed {
    pub fn new(entry: Entry) -> Self {
        let bytes = entry.encode();
        let hash = EntryHash(Sha256::digest(&bytes).into());
        Self { entry, bytes, hash }
    }
}

/// Where an origin's chain ends: the next seq expected and the hash it must link to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    pub next_seq: u64,
    pub hash: EntryHash,
}

impl ChainTip {
    pub const GENESIS: ChainTip = ChainTip {
        next_seq: 1,
        hash: EntryHash::GENESIS,
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry from {got} in the log of {expected}")]
    WrongOrigin { expected: StoreId, got: StoreId },
    #[error("expected entry {expected}, got {got}")]
    SeqGap { expected: u64, got: u64 },
    #[error("entry {seq} does not link to the entry before it")]
    BrokenLink { seq: u64 },
}

impl ChainTip {
    /// Checks that `entry` is the next link of `origin`'s chain and returns the new tip.
    fn check(&self, origin: &StoreId, entry: &Entry) -> Result<(), ChainError> {
        if &entry.origin != origin {
            return Err(ChainError::WrongOrigin {
                expected: origin.clone(),
                got: entry.origin.clone(),
            });
        }
        if entry.seq != self.next_seq {
            return Err(ChainError::SeqGap {
                expected: self.next_seq,
                got: entry.seq,
            });
        }
        if entry.prev_hash != self.hash {
            return Err(ChainError::BrokenLink { seq: entry.seq });
        }
        Ok(())
    }

    pub fn extend(&self, origin: &StoreId, entry: &Entry) -> Result<ChainTip, ChainError> {
        self.check(origin, entry)?;
        Ok(ChainTip {
            next_seq: entry.seq + 1,
            hash: entry.hash(),
        })
    }

    /// As [`extend`](Self::extend), with the hash already computed.
    pub fn extend_sealed(&self, origin: &StoreId, sealed: &Sealed) -> Result<ChainTip, ChainError> {
        self.check(origin, &sealed.entry)?;
        Ok(ChainTip {
            next_seq: sealed.entry.seq + 1,
            hash: sealed.hash,
        })
    }

    /// Checks a run of entries; returns the tip after the last one.
    pub fn extend_all<'a>(
        &self,
        origin: &StoreId,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<ChainTip, ChainError> {
        entries
            .into_iter()
            .try_fold(*self, |tip, e| tip.extend(origin, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SaleId;
    use crate::money::{Currency, Fen};
    use crate::points::Points;
    use crate::sale::Tender;
    use proptest::prelude::*;

    fn store() -> StoreId {
        StoreId::parse("S001").unwrap()
    }

    fn sale(seq: u64, amount: i64) -> Payload {
        Payload::QuickSale(QuickSale {
            sale_id: SaleId::for_entry(&store(), seq),
            member_id: None,
            category: None,
            amount: Fen(amount),
            currency: Currency::CNY,
            tender: Tender::Cash {
                tendered: Fen(amount),
                change: Fen(0),
            },
            points_earned: Points(0),
        })
    }

    fn chain(amounts: &[i64]) -> Vec<Entry> {
        let mut tip = ChainTip::GENESIS;
        amounts
            .iter()
            .map(|&amount| {
                let entry = Entry {
                    origin: store(),
                    seq: tip.next_seq,
                    hlc: Hlc {
                        wall_ms: 1_000 + tip.next_seq,
                        logical: 0,
                    },
                    business_date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                    staff: StaffId::parse("cashier1").unwrap(),
                    tx: TxId::parse(&format!("till-1-{:04}", tip.next_seq)).unwrap(),
                    prev_hash: tip.hash,
                    payload: sale(tip.next_seq, amount),
                };
                tip = ChainTip {
                    next_seq: entry.seq + 1,
                    hash: entry.hash(),
                };
                entry
            })
            .collect()
    }

    #[test]
    fn an_entry_holding_a_percentage_decodes() {
        // Decimals are strings in the log; postcard cannot read a self-describing value, so
        // a 折扣券 (percent off) once wrote entries no replica could decode.
        let mut entry = chain(&[100]).remove(0);
        entry.payload = Payload::Wallet {
            member_id: MemberId::mint(1, 2),
            event: crate::wallet::WalletEvent::CouponIssued {
                coupon: SaleId::for_entry(&store(), 1),
                name: "九折券".into(),
                offer: crate::pricing::Coupon::PercentOff {
                    percent: rust_decimal::Decimal::new(105, 1),
                    threshold: Fen(0),
                    cap: None,
                },
                from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            },
            ops: Vec::new(),
        };
        assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(amounts in proptest::collection::vec(1i64..1_000_000, 1..8)) {
            for entry in chain(&amounts) {
                prop_assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
            }
        }

        #[test]
        fn chain_detects_edit_drop_and_reorder(
            amounts in proptest::collection::vec(1i64..1_000_000, 2..12),
            pick in any::<prop::sample::Index>(),
            kind in 0u8..3,
        ) {
            let honest = chain(&amounts);
            let good_tip = ChainTip::GENESIS.extend_all(&store(), &honest).unwrap();
            let mut tampered = honest.clone();
            let i = pick.index(tampered.len());
            match kind {
                0 => if let Payload::QuickSale(s) = &mut tampered[i].payload { s.amount.0 += 1 },
                1 => { tampered.remove(i); }
                _ => { let j = (i + 1) % tampered.len(); tampered.swap(i, j); }
            }
            let verdict = ChainTip::GENESIS.extend_all(&store(), &tampered);
            prop_assert!(verdict != Ok(good_tip), "tampering went unnoticed: {:?}", verdict);
        }
    }

    #[test]
    fn rejects_wrong_version_trailing_bytes_and_oversize() {
        let mut bytes = chain(&[100])[0].encode();
        bytes.push(0);
        assert!(matches!(
            Entry::decode(&bytes),
            Err(EntryError::Malformed(_))
        ));
        bytes[0] = 9;
        assert_eq!(Entry::decode(&bytes), Err(EntryError::Version(9)));
        assert_eq!(Entry::decode(&[]), Err(EntryError::Empty));
        assert!(matches!(
            Entry::decode(&vec![1; ENTRY_BYTES_MAX + 1]),
            Err(EntryError::TooLarge(_))
        ));
    }

    #[test]
    fn a_foreign_entry_is_refused() {
        let entries = chain(&[100]);
        let other = StoreId::parse("S002").unwrap();
        assert!(matches!(
            ChainTip::GENESIS.extend(&other, &entries[0]),
            Err(ChainError::WrongOrigin { .. })
        ));
    }

    #[test]
    fn entry_hash_round_trips_as_hex_in_json() {
        let h = chain(&[1])[0].hash();
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<EntryHash>(&json).unwrap(), h);
    }
}
