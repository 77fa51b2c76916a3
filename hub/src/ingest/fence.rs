//! Holds and fences of quiet stores (protocol::lease), and taking back a fenced store's rights.

use super::*;

impl Ingest {
    /// The earliest a hold on a store not connected may end (see `protocol::lease`).
    pub(super) fn earliest_fence(&self, store: &StoreId) -> u64 {
        let now = (self.now_ms)();
        let lost = self.link_lost_ms.get(store).copied().unwrap_or(now);
        self.fence_rule.earliest_fence(lost, now)
    }

    pub(super) fn is_fenced(&self, store: &StoreId) -> bool {
        matches!(self.fences.get(store), Some(Fence::Fenced { .. }))
    }

    pub(super) fn set_fence(
        &mut self,
        store: &StoreId,
        fence: Option<Fence>,
    ) -> Result<(), IngestError> {
        self.storage
            .put_fence(store, fence.as_ref())
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        match fence {
            Some(fence) => self.fences.insert(store.clone(), fence),
            None => self.fences.remove(store),
        };
        Ok(())
    }

    /// 挂起: puts a store that has gone quiet on hold, the first of two phases that take back
    /// the rights it holds. Any sign of life from the store before `until_ms` (a connection, a
    /// batch) voids the hold, as can the operator; at `until_ms` the hold is posted: the store
    /// is fenced at the last seq headquarters holds, the hub refuses anything more from it, and
    /// headquarters takes back every right it held, which is then exact. Never a take-back
    /// from a store that may still be spending: what the store wrote after the fence never
    /// counts anywhere, because stores learn each other's entries only through the hub.
    pub fn hold(
        &mut self,
        store: &StoreId,
        until_ms: u64,
        by: &str,
        reason: &str,
    ) -> Result<Fence, HoldError> {
        if *store == StoreId::hq() {
            return Err(HoldError::Headquarters);
        }
        if !self.statuses.contains_key(store) {
            return Err(HoldError::UnknownStore(store.clone()));
        }
        match self.fences.get(store) {
            Some(Fence::Fenced { .. }) => return Err(HoldError::Fenced(store.clone())),
            Some(Fence::OnHold { .. }) => return Err(HoldError::AlreadyOnHold(store.clone())),
            None => {}
        }
        if self.links.get(store).is_some_and(|n| *n > 0) {
            return Err(HoldError::Online(store.clone()));
        }
        let earliest_ms = self.earliest_fence(store);
        if until_ms < earliest_ms {
            return Err(HoldError::TooSoon {
                store: store.clone(),
                earliest_ms,
            });
        }
        let fence = Fence::OnHold {
            since_ms: (self.now_ms)(),
            until_ms,
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        self.set_fence(store, Some(fence.clone()))?;
        tracing::warn!(%store, until_ms, by, reason, "store put on hold");
        Ok(fence)
    }

    /// Voids a hold: the operator changed their mind.
    pub fn void_hold(&mut self, store: &StoreId, by: &str) -> Result<(), HoldError> {
        match self.fences.get(store) {
            Some(Fence::OnHold { .. }) => {
                self.set_fence(store, None)?;
                tracing::warn!(%store, by, "hold voided by an operator");
                Ok(())
            }
            Some(Fence::Fenced { .. }) => Err(HoldError::Fenced(store.clone())),
            None => Err(HoldError::NotOnHold(store.clone())),
        }
    }

    /// Posts every hold whose time is up: fences the store and takes back its rights. A store
    /// connected by now has its hold voided instead. Returns the stores fenced.
    pub fn post_due_holds(&mut self) -> Result<Vec<StoreId>, IngestError> {
        let now = (self.now_ms)();
        let due: Vec<(StoreId, String, String)> = self
            .fences
            .iter()
            .filter_map(|(store, fence)| match fence {
                Fence::OnHold {
                    until_ms,
                    by,
                    reason,
                    ..
                } if *until_ms <= now => Some((store.clone(), by.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        let mut fenced = Vec::new();
        for store in std::mem::take(&mut self.reclaims_pending) {
            if let Err(e) = self.reclaim_from(&store) {
                self.reclaims_pending.push(store);
                return Err(e);
            }
        }
        for (store, by, reason) in due {
            if self.links.get(&store).is_some_and(|n| *n > 0) {
                self.alive(&store)?;
                continue;
            }
            // A hold made before the lease was checked (or with a clock since changed) waits
            // until the store's lease has run out.
            let lost = self.link_lost_ms.get(&store).copied().unwrap_or(now);
            let earliest = self.fence_rule.lease_out(lost);
            if now < earliest {
                if let Some(Fence::OnHold { until_ms, .. }) = self.fences.get_mut(&store) {
                    *until_ms = earliest;
                }
                let extended = self.fences.get(&store).cloned();
                self.set_fence(&store, extended)?;
                tracing::warn!(%store, until_ms = earliest, "hold extended to the store's lease");
                continue;
            }
            let at_seq = self.tip(&store).next_seq - 1;
            let fence = Fence::Fenced {
                at_seq,
                since_ms: now,
                by,
                reason,
            };
            self.set_fence(&store, Some(fence))?;
            let members = match self.reclaim_from(&store) {
                Ok(members) => members,
                Err(e) => {
                    // Fenced already: the take-back is tried again at every tick until done.
                    self.reclaims_pending.push(store);
                    return Err(e);
                }
            };
            tracing::warn!(%store, at_seq, members, "hold posted: store fenced, its rights taken back");
            fenced.push(store);
        }
        Ok(fenced)
    }

    /// Headquarters takes back every right the fenced `store` holds: one entry per member.
    /// Idempotent (what is taken is held no more). Returns how many members it touched.
    pub(super) fn reclaim_from(&mut self, store: &StoreId) -> Result<usize, IngestError> {
        // Only while the hub holds the store's log exactly up to the fence: what the store
        // acquires after it (its own top-ups, points earned) is its own and is never taken, so a
        // take-back interrupted by a crash is finished on restart only if the store has not been
        // heard since; otherwise what is left stays with it, frozen, until it hands it back.
        let at_seq = match self.fences.get(store) {
            Some(Fence::Fenced { at_seq, .. }) => *at_seq,
            _ => return Ok(0),
        };
        if self.tip(store).next_seq - 1 != at_seq {
            tracing::warn!(%store, at_seq, "the store was heard after its fence: its take-back is not resumed");
            return Ok(0);
        }
        let hq = StoreId::hq();
        let wallets = self
            .storage
            .wallets()
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        let mut members = 0;
        for (member, mut wallet) in wallets {
            let ops = wallet.reclaim(&hq, store);
            let Some(first) = ops.first() else {
                continue;
            };
            let tx = TxId::derived(&[
                "reclaim",
                store.as_str(),
                &member.to_string(),
                &first.counter.to_string(),
                &first.change.units().to_string(),
            ]);
            let payload = Payload::Wallet {
                member_id: member,
                event: WalletEvent::Rights {
                    movement: Movement::Reclaim {
                        from: store.clone(),
                    },
                },
                ops,
            };
            self.write_hq(tx, payload)?;
            members += 1;
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::storage::MemHubStore;
    use protocol::escrow::Change;
    use protocol::wallet::{Counter, RightsOp};

    fn topped_up(store: &StoreId, member: MemberId, units: u64) -> Entry {
        let mut entry = crate::ingest::tests::wallet_entry(
            store,
            ChainTip::GENESIS,
            member,
            vec![RightsOp {
                counter: Counter::Principal,
                change: Change::Credit {
                    units,
                    total: units,
                },
            }],
        );
        entry.payload = match entry.payload {
            Payload::Wallet { member_id, ops, .. } => Payload::Wallet {
                member_id,
                event: WalletEvent::PointsAdjusted {
                    points: protocol::points::Points(0),
                    reason: "test".into(),
                },
                ops,
            },
            other => other,
        };
        entry
    }

    #[test]
    fn a_quiet_store_on_hold_is_fenced_its_rights_come_back_once_and_what_it_sold_after_still_counts()
     {
        let clock = Arc::new(AtomicU64::new(1_000));
        let now = clock.clone();
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let open = |storage: Arc<MemHubStore>| {
            let now = now.clone();
            Ingest::open(storage, Box::new(move || now.load(Ordering::SeqCst))).unwrap()
        };
        let mut ingest = open(storage.clone());
        ingest.set_fence_rule(protocol::lease::FenceRule::with_lease(1_000));
        let (s001, s002, s003) = (
            StoreId::parse("S001").unwrap(),
            StoreId::parse("S002").unwrap(),
            StoreId::parse("S003").unwrap(),
        );
        let member = MemberId::mint(1, 7);
        let first = topped_up(&s001, member, 100);
        let tip = ChainTip::GENESIS.extend(&s001, &first).unwrap();
        ingest.ingest(&s001, vec![Sealed::new(first)], 1).unwrap();
        ingest.flush().unwrap();

        // Bad holds change nothing.
        assert!(matches!(
            ingest.hold(&s003, 70_000, "hq-1", "quiet"),
            Err(HoldError::UnknownStore(_))
        ));
        assert!(matches!(
            ingest.hold(&StoreId::hq(), 70_000, "hq-1", "quiet"),
            Err(HoldError::Headquarters)
        ));
        ingest.link(&s001, true);
        assert!(matches!(
            ingest.hold(&s001, 70_000, "hq-1", "quiet"),
            Err(HoldError::Online(_))
        ));
        ingest.link(&s001, false); // the link is lost at 1_000
        assert!(matches!(
            ingest.void_hold(&s001, "hq-1"),
            Err(HoldError::NotOnHold(_))
        ));
        // A hold that ends before the store's lease (1 s after the link was lost, plus the
        // margin) could fence a store that is still spending: refused, as is one shorter than
        // the shortest hold.
        let earliest = 1_000 + 1_000 + 60_000;
        assert!(matches!(
            ingest.hold(&s001, earliest - 1, "hq-1", "quiet"),
            Err(HoldError::TooSoon { earliest_ms, .. }) if earliest_ms == earliest
        ));

        // A hold voided by the store coming back: nothing taken.
        ingest.hold(&s001, earliest, "hq-1", "quiet").unwrap();
        assert!(matches!(
            ingest.hold(&s001, earliest, "hq-1", "again"),
            Err(HoldError::AlreadyOnHold(_))
        ));
        ingest.open_session(&s001).unwrap();
        clock.store(earliest + 1, Ordering::SeqCst);
        assert!(ingest.post_due_holds().unwrap().is_empty());
        assert!(ingest.fences.is_empty());

        // A hold that runs out: posted. S001 is fenced at seq 1, HQ holds its 100.
        let until = earliest + 1 + 60_000;
        ingest.hold(&s001, until, "hq-1", "PC broken").unwrap();
        clock.store(until - 1, Ordering::SeqCst);
        assert!(ingest.post_due_holds().unwrap().is_empty());
        clock.store(until, Ordering::SeqCst);
        assert_eq!(ingest.post_due_holds().unwrap(), vec![s001.clone()]);
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        let principal = Counter::Principal;
        assert_eq!(
            (
                wallet.held(&principal, &s001),
                wallet.held(&principal, &StoreId::hq()),
                wallet.balance(&principal)
            ),
            (0, 100, 100)
        );
        assert!(matches!(
            ingest.void_hold(&s001, "hq-1"),
            Err(HoldError::Fenced(_))
        ));

        // S002's ask is granted from what came back, with no recall to the fenced store, and
        // S002 spends it.
        let ask = Ask {
            id: TxId::parse("ask-00000001").unwrap(),
            member,
            wants: vec![(principal.clone(), 60)],
            holding: None,
        };
        assert!(matches!(
            ingest.serve_ask(&s002, &ask, true).unwrap(),
            AskStep::Granted { .. }
        ));
        let debit = |units, total| {
            vec![RightsOp {
                counter: Counter::Principal,
                change: Change::Debit { units, total },
            }]
        };
        let spent =
            crate::ingest::tests::wallet_entry(&s002, ChainTip::GENESIS, member, debit(60, 60));
        ingest.ingest(&s002, vec![Sealed::new(spent)], 1).unwrap();
        // S001 was only cut off: it spent the 100 it held before it heard of the fence. Its
        // session and its entry are taken all the same; the 60 spent twice is what the member
        // owes, the rest is covered from headquarters' pool.
        ingest.open_session(&s001).unwrap();
        let late = crate::ingest::tests::wallet_entry(&s001, tip, member, debit(100, 100));
        assert_eq!(ingest.ingest(&s001, vec![Sealed::new(late)], 2).unwrap(), 2);
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        let rights = &wallet.counters[&principal];
        assert_eq!(
            (
                rights.held_signed(&s001),
                rights.held(&StoreId::hq()),
                rights.balance_signed()
            ),
            (-60, 0, -60)
        );
        assert_eq!(
            wallet.overspent_by(),
            [(s001.clone(), 60)].into_iter().collect()
        );
        assert_eq!(ingest.rows()[0].entries_after_fence, 1);
        assert!(wallet.audit().is_ok());
        // The member tops up 500 at S001 after its fence: theirs to keep there, whatever the
        // hub does next (a restart once took it back again: the reviewer's case).
        let tip = tip
            .extend(&s001, &storage_entry(&*storage, &s001, 2))
            .unwrap();
        let mut top_up = topped_up(&s001, member, 500);
        top_up.seq = 3;
        top_up.prev_hash = tip.hash;
        if let Payload::Wallet { ops, .. } = &mut top_up.payload {
            ops[0].change = Change::Credit {
                units: 500,
                total: 600,
            };
        }
        assert_eq!(
            ingest.ingest(&s001, vec![Sealed::new(top_up)], 3).unwrap(),
            3
        );
        ingest.flush().unwrap();

        // Derived state written by another version (here: wiped) is rebuilt on open.
        let before = storage.wallet(&member).unwrap();
        storage
            .replace_derived(crate::storage::Derived::default(), DERIVED_VERSION - 1)
            .unwrap();
        assert_eq!(storage.wallet(&member).unwrap(), None);
        // A restart keeps the fence and takes nothing twice.
        let reopened = open(storage.clone());
        assert_eq!(storage.wallet(&member).unwrap(), before);
        assert!(reopened.is_fenced(&s001));
        let wallet = storage.wallet(&member).unwrap().unwrap();
        assert_eq!(wallet.held(&principal, &s001), 440, "nothing taken twice");
        assert!(wallet.overspent_by().is_empty());
        assert!(wallet.audit().is_ok());
        assert!(verify(&*storage).unwrap().is_clean());
    }

    fn storage_entry(storage: &dyn HubStore, store: &StoreId, seq: u64) -> Entry {
        Entry::decode(&storage.entries(store, seq, 1).unwrap()[0]).unwrap()
    }
}
