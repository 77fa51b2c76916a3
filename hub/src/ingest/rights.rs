//! The rights bank at work: asks served from headquarters' pool (`protocol::bank`), the
//! rebalance after each group, and covering what a fenced store spent twice.

use super::*;

/// How long a store granted rights for a waiting payment keeps them from a rebalance's recall:
/// past the till's wait for the grant and then for the rights (twice 4 s).
const GRANT_KEPT_MS: u64 = 10_000;

impl Ingest {
    pub(super) fn wallet(&self, member: &MemberId) -> Result<Wallet, IngestError> {
        Ok(self
            .storage
            .wallet(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?
            .unwrap_or_default())
    }

    /// Serves `store`'s ask from headquarters' pool (its reserve and what is not placed),
    /// placing more than asked where the member's spending says they shop there. When the pool
    /// is short, names the connected stores to recall rights from (`may_recall`: a new round
    /// may start), or says at once which holders cannot be reached.
    pub fn serve_ask(
        &mut self,
        store: &StoreId,
        ask: &Ask,
        may_recall: bool,
    ) -> Result<AskStep, IngestError> {
        if self.is_fenced(store) {
            return Ok(AskStep::Refused(format!("store {store} is fenced")));
        }
        let hq = StoreId::hq();
        // A store that said how long its log was is served once all of it is here: the rights
        // it holds are then what this wallet says, less grants it has not applied yet.
        if let Some(holding) = &ask.holding
            && self.tip(store).next_seq <= holding.log_len
        {
            return Ok(AskStep::Wait);
        }
        let mut wallet = self.wallet(&ask.member)?;
        let needs = ask.needs(|counter| wallet.held(counter, store));
        if needs.is_empty() {
            // Everything asked for is on its way in the feed already (placed ahead of need).
            return Ok(AskStep::Granted {
                feed_upto: self.feed_len,
            });
        }
        let plan = self
            .policy
            .plan_ask(&wallet, &hq, store, &needs, |s| self.reachable(s));
        let grants = match plan {
            AskPlan::Grant(grants) => grants,
            AskPlan::Refuse(reason) => return Ok(AskStep::Refused(reason)),
            AskPlan::Unreachable(holders) => return Ok(AskStep::Unreachable(holders)),
            AskPlan::Recall(_) if !may_recall => return Ok(AskStep::Wait),
            AskPlan::Recall(list) => {
                self.recall_rounds += 1;
                let round = format!("{}-{}", (self.now_ms)(), self.recall_rounds);
                let recalls = list
                    .into_iter()
                    .map(|(holder, counter, units)| {
                        // Each round of recalls gets its own ids, so a holder that answered an
                        // earlier round (perhaps with nothing) is asked afresh.
                        let id = TxId::derived(&[
                            "recall",
                            ask.id.as_str(),
                            &counter.to_string(),
                            holder.as_str(),
                            &round.to_string(),
                        ]);
                        let recall = Recall {
                            id,
                            member: ask.member,
                            counter,
                            units,
                        };
                        (holder, recall)
                    })
                    .collect();
                return Ok(AskStep::Recall(recalls));
            }
        };
        let mut ops = Vec::new();
        for (counter, units) in grants {
            let op = wallet
                .move_rights(&hq, store, &counter, units)
                .map_err(|e| IngestError::Storage(format!("grant: {e}")))?;
            ops.push(op);
        }
        let payload = Payload::Wallet {
            member_id: ask.member,
            event: WalletEvent::Rights {
                movement: Movement::Grant,
            },
            ops,
        };
        self.write_hq(TxId::derived(&["grant", ask.id.as_str()]), payload)?;
        let until = (self.now_ms)().saturating_add(GRANT_KEPT_MS);
        self.awaiting.insert((ask.member, store.clone()), until);
        Ok(AskStep::Granted {
            feed_upto: self.feed_len,
        })
    }

    /// Notes the counters an entry changed, for the next `rebalance` (a sale's return tokens
    /// stay where the sale was made until a return elsewhere asks). Headquarters' own grants
    /// are not a reason to rebalance: a store granted rights for a payment holds more than its
    /// share until the payment reaches headquarters, and a recall in between would take back
    /// what the payment is about to spend.
    pub(super) fn touch(&mut self, entry: &Entry) {
        // A campaign's coupon and an imported member's opening balances are placed where
        // headquarters meant them (the member's home store; a recall now would reach the store
        // before the member's registration does).
        if let Payload::Wallet {
            event:
                WalletEvent::Rights {
                    movement: Movement::Grant,
                }
                | WalletEvent::CampaignCoupon { .. }
                | WalletEvent::Opening { .. },
            ..
        } = &entry.payload
        {
            return;
        }
        let Some((member, ops)) = entry.payload.rights_ops() else {
            return;
        };
        for op in ops {
            if !matches!(op.counter, Counter::Returnable { .. }) {
                self.touched.insert((member, op.counter.clone()));
            }
        }
    }

    /// After a group: for every member's counter that changed, restores headquarters' reserve
    /// and each store's share (`protocol::bank::Policy::rebalance`): grants from the pool
    /// above the reserve to stores below their share, written now in one entry per member, and
    /// recalls from stores above their share, returned for the sessions to send. A recall's id
    /// names what the holder has handed back so far and the units, so one not yet answered is
    /// the same recall when planned again alike, and the store answers it once.
    pub fn rebalance(&mut self) -> Result<Vec<(StoreId, Recall)>, IngestError> {
        self.rebalance_except(&BTreeSet::new())
    }

    /// `rebalance`, leaving alone (until a later one) the members of `asking`: asks waiting for
    /// recalls. An ask for several counters (a closing takes them all) needs each in the pool
    /// until the last is back; placing the first one out again before the others arrive would
    /// make the ask wait for it once more, round after round, until its time ran out.
    pub fn rebalance_except(
        &mut self,
        asking: &BTreeSet<MemberId>,
    ) -> Result<Vec<(StoreId, Recall)>, IngestError> {
        let hq = StoreId::hq();
        let now = (self.now_ms)();
        self.awaiting.retain(|_, until| *until > now);
        let mut recalls = Vec::new();
        let (later, touched): (BTreeSet<_>, BTreeSet<_>) = std::mem::take(&mut self.touched)
            .into_iter()
            .partition(|(member, _)| asking.contains(member));
        self.touched = later;
        let mut members: BTreeMap<MemberId, Vec<Counter>> = BTreeMap::new();
        for (member, counter) in touched {
            members.entry(member).or_default().push(counter);
        }
        for (member, counters) in members {
            let mut wallet = self.wallet(&member)?;
            let mut ops = Vec::new();
            for counter in counters {
                let moves = self
                    .policy
                    .rebalance(&wallet, &hq, &counter, |s| self.is_fenced(s));
                for (holder, counter, units) in moves.recalls {
                    if self.awaiting.contains_key(&(member, holder.clone())) {
                        // Granted for a payment that has not reached headquarters yet.
                        continue;
                    }
                    let handed = wallet
                        .counters
                        .get(&counter)
                        .map_or(0, |r| r.transferred(&holder, &hq));
                    let id = TxId::derived(&[
                        "refill",
                        &member.to_string(),
                        &counter.to_string(),
                        holder.as_str(),
                        &handed.to_string(),
                        &units.to_string(),
                    ]);
                    let recall = Recall {
                        id,
                        member,
                        counter,
                        units,
                    };
                    recalls.push((holder, recall));
                }
                for (store, counter, units) in moves.grants {
                    let op = wallet
                        .move_rights(&hq, &store, &counter, units)
                        .map_err(|e| IngestError::Storage(format!("placement: {e}")))?;
                    ops.push(op);
                }
            }
            if ops.is_empty() {
                continue;
            }
            let tx = TxId::derived(&[
                "place",
                &member.to_string(),
                &self.tip(&hq).next_seq.to_string(),
            ]);
            let payload = Payload::Wallet {
                member_id: member,
                event: WalletEvent::Rights {
                    movement: Movement::Grant,
                },
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        Ok(recalls)
    }

    /// After a batch that touched `members`' wallets: where a fenced store holds less than
    /// nothing (it spent, before it heard of its fence, rights headquarters had taken back),
    /// says so, and moves rights from headquarters' pool to cover it, as far as the pool holds
    /// them: what was spent twice is then only the member's receivable (a balance below zero,
    /// shown in liabilities), not phantom rights another store could spend.
    pub(super) fn cover_deficits(
        &mut self,
        origin: &StoreId,
        members: &[MemberId],
    ) -> Result<(), IngestError> {
        let hq = StoreId::hq();
        let fenced: Vec<StoreId> = self
            .fences
            .iter()
            .filter(|(_, f)| matches!(f, Fence::Fenced { .. }))
            .map(|(store, _)| store.clone())
            .collect();
        for member in members {
            let mut wallet = self.wallet(member)?;
            let mut ops = Vec::new();
            for store in &fenced {
                for (counter, rights) in wallet.counters.iter_mut() {
                    let deficit = rights.deficit(store);
                    if deficit == 0 {
                        continue;
                    }
                    if origin == store {
                        tracing::error!(
                            %store, %member, %counter, deficit, overspent = rights.overspent(),
                            "a fenced store spent rights headquarters had taken back: \
                             the member owes what was spent twice (see liabilities)"
                        );
                    }
                    if let Some(change) = rights.cover(&hq, store) {
                        ops.push(protocol::wallet::RightsOp {
                            counter: counter.clone(),
                            change,
                        });
                    }
                }
            }
            let Some(first) = ops.first() else {
                continue;
            };
            let tx = TxId::derived(&[
                "cover",
                &member.to_string(),
                &first.counter.to_string(),
                &format!("{:?}", first.change),
            ]);
            let payload = Payload::Wallet {
                member_id: *member,
                event: WalletEvent::Rights {
                    movement: Movement::Grant,
                },
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        Ok(())
    }
}
