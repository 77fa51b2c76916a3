//! Which stores an entry in headquarters' feed concerns (the routed feed).
//!
//! The member directory, the catalogue, staff, rules and transfers concern every store: they are
//! broadcast. A change to a member's wallet (a sale that earned points or paid with stored
//! value, a top-up, a card, rights moving, a return) concerns the stores that **follow** the
//! member — those that asked headquarters for the member once they met them — and the stores
//! its rights writes name (a grant to a store, a take-back from a fenced one), whether or not
//! they follow the member yet. A store that meets a member it does not follow asks to follow,
//! and headquarters sends the member's history once (`HubMsg::Backfill`).

use crate::entry::Entry;
use crate::escrow::Change;
use crate::ids::{MemberId, StoreId};

/// Who an entry of the feed goes to, besides the store that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The member whose wallet it changes; `None`: every store.
    pub member: Option<MemberId>,
    /// Stores its rights writes move rights to or take them from.
    pub named: Vec<StoreId>,
}

impl Route {
    pub fn of(entry: &Entry) -> Route {
        let Some(member) = entry.payload.wallet_member() else {
            return Route::default();
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
        Route {
            member: Some(member),
            named,
        }
    }

    /// Whether `store` receives the entry, given whether it follows the entry's member.
    pub fn reaches(&self, store: &StoreId, follows: impl FnOnce(&MemberId) -> bool) -> bool {
        match &self.member {
            None => true,
            Some(member) => self.named.contains(store) || follows(member),
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
        assert_eq!(route.member, Some(member));
        assert!(route.reaches(&s2, |_| false));
        let s3 = StoreId::parse("S003").unwrap();
        assert!(!route.reaches(&s3, |_| false));
        assert!(route.reaches(&s3, |m| *m == member));
    }

    #[test]
    fn the_member_directory_and_the_catalogue_reach_every_store() {
        let erased = entry(Payload::MemberErased {
            member_id: MemberId::mint(1_000, 7),
        });
        let route = Route::of(&erased);
        assert_eq!(route, Route::default());
        assert!(route.reaches(&StoreId::parse("S009").unwrap(), |_| false));
    }
}
