//! Which stores an entry in headquarters' feed concerns (the routed feed).
//!
//! Staff, rules, transfers, erasures and the catalogue of products every store carries concern
//! every store: they are broadcast. A member's registration and profile edits reach the
//! stores that follow the member as they are, and every other store as the member's directory
//! listing (`crate::listing`, from sync version 10): every store finds every member offline,
//! only followers hold the profile's history. A change to a member's wallet (a sale that
//! earned points or paid with stored value, a top-up, a card, rights moving, a return) concerns
//! the stores that **follow** the member — those that asked headquarters for the member once
//! they met them — and the stores its rights writes name (a grant to a store, a take-back from
//! a fenced one), whether or not they follow the member yet. A store that meets a member it
//! does not follow asks to follow, and headquarters sends the member's history once
//! (`HubMsg::Backfill`). Catalogue changes to products only some stores carry (门店经营品项)
//! are addressed to those stores (`Payload::StoreCatalogue`).

use crate::entry::{Entry, Payload};
use crate::escrow::Change;
use crate::ids::{MemberId, StoreId};

/// Who an entry of the feed goes to, besides the store that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Route {
    /// Every store.
    #[default]
    Every,
    /// The stores named only (none: headquarters keeps it).
    Stores(Vec<StoreId>),
    /// A change to `member`'s wallet: the stores that follow the member, and those its rights
    /// writes move rights to or take them from (`named`).
    Member {
        member: MemberId,
        named: Vec<StoreId>,
    },
    /// `member`'s registration or profile edit: as it is to the stores that follow the member,
    /// as the member's listing to every other ([`Route::listing_for`]).
    Listed { member: MemberId },
}

impl Route {
    pub fn of(entry: &Entry) -> Route {
        if let Payload::StoreCatalogue { stores, .. } = &entry.payload {
            return Route::Stores(stores.clone());
        }
        if let Payload::MemberRegistered { member_id, .. }
        | Payload::MemberEdited { member_id, .. } = &entry.payload
        {
            return Route::Listed { member: *member_id };
        }
        let Some(member) = entry.payload.wallet_member() else {
            return Route::Every;
        };
        let mut named = Vec::new();
        if let Some((_, ops)) = entry.payload.rights_ops() {
            for op in ops {
                let store = match &op.change {
                    Change::Transfer { to, .. } => to,
                    Change::Reclaim { from, .. } => from,
                    Change::Credit { .. } | Change::Debit { .. } => continue,
                };
                if !named.contains(store) {
                    named.push(store.clone());
                }
            }
        }
        Route::Member { member, named }
    }

    /// The member whose wallet or profile the entry changes, if any: a new follower gets the
    /// member's earlier entries of these (a backfill).
    pub fn member(&self) -> Option<MemberId> {
        match self {
            Route::Member { member, .. } | Route::Listed { member } => Some(*member),
            Route::Every | Route::Stores(_) => None,
        }
    }

    /// Whether `store` receives the entry (or its listing), given whether it follows the
    /// entry's member.
    pub fn reaches(&self, store: &StoreId, follows: impl FnOnce(&MemberId) -> bool) -> bool {
        match self {
            Route::Every | Route::Listed { .. } => true,
            Route::Stores(stores) => stores.contains(store),
            Route::Member { member, named } => named.contains(store) || follows(member),
        }
    }

    /// The member whose listing goes to the store in place of the entry (a store that does
    /// not follow them), if so.
    pub fn listing_for(&self, follows: impl FnOnce(&MemberId) -> bool) -> Option<MemberId> {
        match self {
            Route::Listed { member } if !follows(member) => Some(*member),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryHash, Payload};
    use crate::hlc::Hlc;
    use crate::ids::{StaffId, TxId};
    use crate::wallet::{Counter, Movement, RightsOp, WalletEvent};

    fn entry(payload: Payload) -> Entry {
        Entry {
            origin: StoreId::hq(),
            seq: 1,
            hlc: Hlc::ZERO,
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            staff: StaffId::parse("hq").unwrap(),
            tx: TxId::parse("route-test-1").unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    #[test]
    fn a_grant_reaches_the_store_it_names_and_the_members_followers_only() {
        let member = MemberId::mint(1_000, 7);
        let s2 = StoreId::parse("S002").unwrap();
        let grant = entry(Payload::Wallet {
            member_id: member,
            event: WalletEvent::Rights {
                movement: Movement::Grant,
            },
            ops: vec![RightsOp {
                counter: Counter::Principal,
                change: Change::Transfer {
                    to: s2.clone(),
                    units: 100,
                    total: 100,
                },
            }],
        });
        let route = Route::of(&grant);
        assert_eq!(route.member(), Some(member));
        assert!(route.reaches(&s2, |_| false));
        let s3 = StoreId::parse("S003").unwrap();
        assert!(!route.reaches(&s3, |_| false));
        assert!(route.reaches(&s3, |m| *m == member));
    }

    #[test]
    fn a_profile_change_reaches_followers_as_it_is_and_every_other_store_as_a_listing() {
        let member = MemberId::mint(1_000, 7);
        let edited = entry(Payload::MemberEdited {
            member_id: member,
            change: vec![1],
        });
        let route = Route::of(&edited);
        assert_eq!(
            route.member(),
            Some(member),
            "a new follower's backfill holds it"
        );
        let s3 = StoreId::parse("S003").unwrap();
        assert!(route.reaches(&s3, |_| false));
        assert_eq!(route.listing_for(|_| false), Some(member));
        assert_eq!(route.listing_for(|m| *m == member), None);
        let erased = Route::of(&entry(Payload::MemberErased { member_id: member }));
        assert_eq!(erased.listing_for(|_| false), None);
    }

    #[test]
    fn an_erasure_reaches_every_store() {
        let erased = entry(Payload::MemberErased {
            member_id: MemberId::mint(1_000, 7),
        });
        let route = Route::of(&erased);
        assert_eq!(route, Route::Every);
        assert!(route.reaches(&StoreId::parse("S009").unwrap(), |_| false));
    }

    #[test]
    fn a_catalogue_change_for_some_stores_reaches_those_only_and_headquarters_own_none() {
        let s1 = StoreId::parse("S001").unwrap();
        let s2 = StoreId::parse("S002").unwrap();
        let addressed = |stores: Vec<StoreId>| {
            Route::of(&entry(Payload::StoreCatalogue {
                stores,
                version: 3,
                group: 0,
                part: 0,
                parts: 1,
                changes: vec![],
            }))
        };
        let route = addressed(vec![s1.clone()]);
        assert!(route.reaches(&s1, |_| true));
        assert!(!route.reaches(&s2, |_| true));
        let own = addressed(vec![]);
        assert!(!own.reaches(&s1, |_| true));
    }
}
