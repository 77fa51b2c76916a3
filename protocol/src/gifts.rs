//! 积分商城: the gifts headquarters offers for points — goods from the catalogue or a coupon
//! of one of its templates — each with a points price, a stock and a limit per member.
//!
//! Published as its own entry of headquarters' log (`Payload::Gifts`), kept like the tier
//! table. A redemption is a wallet entry (`WalletEvent::GiftRedeemed`) whose ops spend the
//! points through the member's rights like every other spend, so points are never spent twice;
//! a goods gift's entry is followed, in the same request, by a stock entry that takes the
//! goods off the redeeming store's shelf.
//!
//! **Stock** is allotted per replica: `stock` to every store (and to headquarters, for the
//! member's page) unless `stores` names another figure, counted as all a replica may ever give
//! of the gift. Only the replica itself writes its redemptions, so it knows exactly what is
//! left of its allotment, offline too; headquarters gives a store more by publishing a larger
//! figure. The chain's total is the sum of the allotments.
//!
//! **The limit per member** counts the member's redemptions a replica has heard of (its views
//! of the member's wallet entries): exact while one replica serves the member at a time; two
//! stores cut off at the same moment may each give one more than the limit (the points, not
//! the limit, are what must never be spent twice).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::campaign::{MarketingError, NAME_CHARS_MAX, check_id, check_text};
use crate::hlc::Hlc;
use crate::ids::{MemberId, Sku, StaffId, StoreId};
use crate::inventory::ViewKv;

/// The most gifts one table offers.
pub const GIFTS_MAX: usize = 200;
/// The highest points price.
pub const POINTS_MAX: u64 = 10_000_000;
/// The most of one gift a member may redeem.
pub const PER_MEMBER_MAX: u32 = 100;
/// The largest allotment of a gift to one replica.
pub const STOCK_MAX: u32 = 1_000_000;
/// The most pieces of goods one gift gives.
pub const GOODS_QTY_MAX: u32 = 100;
/// The most stores a gift names an allotment of their own for.
pub const STORES_MAX: usize = 1_000;

/// What a gift gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GiftKind {
    /// Pieces of a catalogue product, off the redeeming store's shelf.
    Goods { sku: Sku, qty: u32 },
    /// A coupon of one of headquarters' templates (券模板), issued at once.
    Coupon { template: String },
}

/// One gift of the points mall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gift {
    pub id: String,
    pub name: String,
    /// What it costs in points.
    pub points: u64,
    pub kind: GiftKind,
    /// The most of it one member may redeem (每人限兑).
    pub per_member: u32,
    /// What each replica may give of it in all, unless `stores` says otherwise.
    pub stock: u32,
    /// Allotments of their own for named stores (or `HQ`, the member's page).
    #[serde(default)]
    pub stores: BTreeMap<StoreId, u32>,
    /// A withdrawn gift is not redeemed any more.
    #[serde(default)]
    pub withdrawn: bool,
}

impl Gift {
    /// What `replica` may give of this gift in all.
    pub fn allotment(&self, replica: &StoreId) -> u32 {
        self.stores.get(replica).copied().unwrap_or(self.stock)
    }

    fn check(&self) -> Result<(), MarketingError> {
        check_id("id", &self.id)?;
        check_text("name", &self.name, NAME_CHARS_MAX)?;
        let id = &self.id;
        if !(1..=POINTS_MAX).contains(&self.points) {
            return Err(MarketingError::new(
                "points",
                format!("{id}: from 1 to {POINTS_MAX} points"),
            ));
        }
        if !(1..=PER_MEMBER_MAX).contains(&self.per_member) {
            return Err(MarketingError::new(
                "per_member",
                format!("{id}: from 1 to {PER_MEMBER_MAX} per member"),
            ));
        }
        let stocks = std::iter::once(&self.stock).chain(self.stores.values());
        if stocks.into_iter().any(|s| *s > STOCK_MAX) {
            return Err(MarketingError::new(
                "stock",
                format!("{id}: at most {STOCK_MAX} per store"),
            ));
        }
        if self.stores.len() > STORES_MAX {
            return Err(MarketingError::new(
                "stores",
                format!("{id}: at most {STORES_MAX} stores named"),
            ));
        }
        match &self.kind {
            GiftKind::Goods { qty, .. } if !(1..=GOODS_QTY_MAX).contains(qty) => Err(
                MarketingError::new("kind", format!("{id}: 1 to {GOODS_QTY_MAX} pieces")),
            ),
            GiftKind::Coupon { template } => check_id("kind", template),
            GiftKind::Goods { .. } => Ok(()),
        }
    }
}

/// The points mall: every gift on offer. Each publication replaces the one before.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftTable {
    pub gifts: Vec<Gift>,
}

impl GiftTable {
    /// Checks every gift and that no id is used twice.
    pub fn check(&self) -> Result<(), MarketingError> {
        if self.gifts.len() > GIFTS_MAX {
            return Err(MarketingError::new(
                "gifts",
                format!("at most {GIFTS_MAX} gifts"),
            ));
        }
        let mut ids = BTreeSet::new();
        for gift in &self.gifts {
            gift.check()?;
            if !ids.insert(gift.id.as_str()) {
                return Err(MarketingError::new(
                    "id",
                    format!("{} is used twice", gift.id),
                ));
            }
        }
        Ok(())
    }

    pub fn gift(&self, id: &str) -> Option<&Gift> {
        self.gifts.iter().find(|g| g.id == id)
    }
}

/// Why a gift is not given. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftRefused {
    #[error("no gift {0} in the points mall")]
    Unknown(String),
    #[error("gift {0} is withdrawn")]
    Withdrawn(String),
    #[error("gift {gift} is out of stock here ({allotment} given in all)")]
    OutOfStock { gift: String, allotment: u32 },
    #[error("gift {gift}: its coupon template {template} is not known here or withdrawn")]
    NoTemplate { gift: String, template: String },
    #[error("gift {gift}: {on_hand} on the shelf, {wanted} wanted")]
    NotOnShelf {
        gift: String,
        on_hand: crate::catalogue::Qty,
        wanted: crate::catalogue::Qty,
    },
    #[error("gift {gift}: the member has had {had} of at most {per_member}")]
    Limit {
        gift: String,
        had: u32,
        per_member: u32,
    },
}

/// Whether `replica` may give `gift` to a member who has had `had` of it, having given
/// `given` of it itself. The points are checked by spending them.
pub fn may_give(gift: &Gift, replica: &StoreId, given: u64, had: u32) -> Result<(), GiftRefused> {
    if gift.withdrawn {
        return Err(GiftRefused::Withdrawn(gift.id.clone()));
    }
    let allotment = gift.allotment(replica);
    if given >= u64::from(allotment) {
        return Err(GiftRefused::OutOfStock {
            gift: gift.id.clone(),
            allotment,
        });
    }
    if had >= gift.per_member {
        return Err(GiftRefused::Limit {
            gift: gift.id.clone(),
            had,
            per_member: gift.per_member,
        });
    }
    Ok(())
}

/// A table as headquarters published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub staff: StaffId,
    pub table: GiftTable,
}

/// What one replica gave of one gift: how many times and the points they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    pub times: u64,
    pub points: u64,
}

pub mod keys {
    use super::*;

    /// The table in force: the one published last.
    pub const CURRENT: &[u8] = b"gf/now";
    /// Each published table, in publishing order.
    pub const HISTORY: &[u8] = b"gf/h/";
    /// What each replica gave of each gift: `gf/n/<gift>\0<replica>` → [`Given`].
    pub const GIVEN: &[u8] = b"gf/n/";

    pub fn published(at: Hlc) -> Vec<u8> {
        format!("gf/h/{:020}.{:010}", at.wall_ms, at.logical).into_bytes()
    }
    pub fn given(gift: &str, replica: &StoreId) -> Vec<u8> {
        [GIVEN, gift.as_bytes(), b"\0", replica.as_str().as_bytes()].concat()
    }
    /// How many of a gift a member has had: `gf/m/<member>/<gift>` → u32.
    pub fn had(member: &MemberId, gift: &str) -> Vec<u8> {
        format!("gf/m/{member}/{gift}").into_bytes()
    }
    /// A redemption already written under request key `tx` by `replica` (so a retried request
    /// from the member's page gives one gift).
    pub fn request(replica: &StoreId, tx: &crate::ids::TxId) -> Vec<u8> {
        format!("gf/k/{replica}/{tx}").into_bytes()
    }
    /// Every gift a member has had.
    pub fn had_prefix(member: &MemberId) -> Vec<u8> {
        format!("gf/m/{member}/").into_bytes()
    }
}

/// The table in force, if headquarters has published one.
pub fn current(kv: &dyn ViewKv) -> Result<Option<Published>, String> {
    crate::inventory::read(kv, keys::CURRENT)
}

/// What `replica` gave of `gift`.
pub fn given(kv: &dyn ViewKv, gift: &str, replica: &StoreId) -> Result<Given, String> {
    Ok(crate::inventory::read(kv, &keys::given(gift, replica))?.unwrap_or_default())
}

/// How many of `gift` `member` has had, as this replica has heard.
pub fn had(kv: &dyn ViewKv, member: &MemberId, gift: &str) -> Result<u32, String> {
    Ok(crate::inventory::read(kv, &keys::had(member, gift))?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> GiftTable {
        serde_json::from_str(
            r#"{"gifts": [
                {"id": "cup", "name": "保温杯", "points": 500, "kind": {"goods": {"sku": "CUP-1", "qty": 1}},
                 "per_member": 2, "stock": 10, "stores": {"S002": 0}},
                {"id": "c10", "name": "10元券", "points": 100, "kind": {"coupon": {"template": "t10"}},
                 "per_member": 5, "stock": 1000}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_table_from_headquarters_form_checks() {
        let t = table();
        t.check().unwrap();
        assert_eq!(
            t.gift("cup")
                .unwrap()
                .allotment(&StoreId::parse("S001").unwrap()),
            10
        );
        assert_eq!(
            t.gift("cup")
                .unwrap()
                .allotment(&StoreId::parse("S002").unwrap()),
            0
        );
    }

    #[test]
    fn a_gift_named_twice_or_priced_out_of_range_is_refused_with_the_field() {
        let mut t = table();
        t.gifts[1].id = "cup".into();
        assert_eq!(t.check().unwrap_err().field, "id");
        let mut t = table();
        t.gifts[0].points = 0;
        assert_eq!(t.check().unwrap_err().field, "points");
        let mut t = table();
        t.gifts[0].per_member = PER_MEMBER_MAX + 1;
        assert_eq!(t.check().unwrap_err().field, "per_member");
        let mut t = table();
        t.gifts[0].stock = STOCK_MAX + 1;
        assert_eq!(t.check().unwrap_err().field, "stock");
        let mut t = table();
        t.gifts[0].kind = GiftKind::Goods {
            sku: Sku::parse("CUP-1").unwrap(),
            qty: 0,
        };
        assert_eq!(t.check().unwrap_err().field, "kind");
        let mut t = table();
        t.gifts[1].kind = GiftKind::Coupon {
            template: "no spaces allowed".into(),
        };
        assert_eq!(t.check().unwrap_err().field, "kind");
    }

    #[test]
    fn an_unknown_field_in_the_form_is_refused() {
        let r: Result<GiftTable, _> = serde_json::from_str(
            r#"{"gifts": [{"id": "x", "name": "x", "points": 1, "kind": {"coupon": {"template": "t"}},
                "per_member": 1, "stock": 1, "price": "9.90"}]}"#,
        );
        assert!(r.is_err());
    }

    #[test]
    fn a_replica_gives_up_to_its_allotment_and_a_member_up_to_the_limit() {
        let t = table();
        let cup = t.gift("cup").unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        assert_eq!(may_give(cup, &s001, 9, 1), Ok(()));
        assert!(matches!(
            may_give(cup, &s001, 10, 0),
            Err(GiftRefused::OutOfStock { allotment: 10, .. })
        ));
        assert!(matches!(
            may_give(cup, &s002, 0, 0),
            Err(GiftRefused::OutOfStock { allotment: 0, .. })
        ));
        assert!(matches!(
            may_give(cup, &s001, 0, 2),
            Err(GiftRefused::Limit { had: 2, .. })
        ));
        let mut withdrawn = cup.clone();
        withdrawn.withdrawn = true;
        assert!(matches!(
            may_give(&withdrawn, &s001, 0, 0),
            Err(GiftRefused::Withdrawn(_))
        ));
    }
}
