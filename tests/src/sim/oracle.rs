//! The bank's own ledger of every acknowledged operation, and the audit of every replica's
//! wallets against it.

use super::*;

/// What the bank expects a member's wallet to hold, from every acknowledged operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expected {
    pub(super) principal: i128,
    pub(super) bonus: i128,
    pub(super) points: i128,
    /// Offline overdrafts not yet paid off.
    pub(super) owed: i128,
}

impl Sim {
    /// The bank's audit across every replica: each copy of each wallet is sound, and so is
    /// the merge of all copies (two replicas spending the same rights would show there, and
    /// may only where a fenced store spent, before it heard of its fence, rights headquarters
    /// had taken back: never more than was taken).
    pub(super) fn audit_all(&self) -> Result<(), String> {
        let mut merged: BTreeMap<MemberId, Wallet> = BTreeMap::new();
        let mut copies: Vec<(String, MemberId, Wallet)> = self
            .hub
            .mem
            .wallets()
            .unwrap()
            .into_iter()
            .map(|(m, w)| ("HQ".to_owned(), m, w))
            .collect();
        for s in &self.stores {
            copies.extend(
                wallets(&s.mem)
                    .into_iter()
                    .map(|(m, w)| (s.id.to_string(), m, w)),
            );
        }
        for (at, member, wallet) in copies {
            wallet
                .audit()
                .map_err(|e| format!("{member}'s wallet at {at}: {e}"))?;
            merged.entry(member).or_default().merge(&wallet);
        }

        let rules = settings(&self.stores[0].id).wallet;
        let mut lent: BTreeMap<StoreId, u64> = BTreeMap::new();
        for (member, wallet) in merged {
            wallet
                .audit()
                .map_err(|e| format!("{member}'s wallet merged from every replica: {e}"))?;

            // Below zero only by a recorded overdraft, within the caps.
            for store in wallet.owed.keys() {
                let owed = wallet.owed_at(store);
                if owed > rules.overdraft_member.0 as u64 {
                    return Err(format!("{member} owes {store} {owed}, over the cap"));
                }
                *lent.entry(store.clone()).or_default() += owed;
            }
        }
        match lent
            .iter()
            .find(|(_, owed)| **owed > rules.overdraft_store.0 as u64)
        {
            Some((store, owed)) => Err(format!("members owe {store} {owed}, over its cap")),
            None => Ok(()),
        }
    }

    /// Books an acknowledged operation in the bank's own ledger.
    pub(super) fn expect(&mut self, i: usize, spend: &Spend, outcome: &Outcome) {
        let cents = |m: &Money| i128::from(m.to_fen().unwrap().0);
        let (member, delta) = match (spend, outcome) {
            (Spend::Return(_, Some(member)), Outcome::Sale { sale, .. }) => {
                let mut d = Expected {
                    points: -i128::from(sale.sale.points_earned.0),
                    ..Expected::default()
                };
                let protocol::Payload::Return { refund, .. } = self.last_entry(i).payload else {
                    panic!("the last entry is not a return");
                };
                if let Tender::StoredValue {
                    principal,
                    bonus,
                    overdraft,
                } = refund
                {
                    d.principal += i128::from(principal.0);
                    d.bonus += i128::from(bonus.0);
                    d.owed -= i128::from(overdraft.0);
                }
                (*member, d)
            }
            (Spend::ItemReturn(_, member), Outcome::ItemSale { .. }) => {
                let entry = self.last_entry(i);
                let protocol::Payload::ItemReturn { ret, .. } = entry.payload else {
                    panic!("the last entry is not an item return");
                };
                let mut d = Expected {
                    points: i128::from(ret.points_back) - i128::from(ret.points_taken),
                    ..Expected::default()
                };
                for refund in &ret.refunds {
                    if let Tender::StoredValue {
                        principal, bonus, ..
                    } = refund
                    {
                        d.principal += i128::from(principal.0);
                        d.bonus += i128::from(bonus.0);
                    }
                }
                for l in &ret.lines {
                    self.stock_bookings
                        .push((i, entry.seq, l.sku.clone(), l.qty.0));
                    let back = (i, entry.seq, ret.sale_id.clone(), l.line, l.qty.0);
                    self.item_returns.push(back);
                }
                if let Some(coupon) = ret.coupon_back {
                    self.redemptions.push((i, entry.seq, *member, coupon, -1));
                }
                self.wallet_ops.item_returns += 1;
                if !ret.sale_id.as_str().starts_with(entry.origin.as_str()) {
                    self.wallet_ops.item_returns_elsewhere += 1;
                }
                (*member, d)
            }
            (Spend::Items(r), Outcome::ItemSale { sale, .. }) => {
                let seq = self.stores[i].journal.tip().next_seq - 1;
                for line in &sale.sale.lines {
                    let booking = (i, seq, line.sku.clone(), -line.qty.0);
                    self.stock_bookings.push(booking);
                }
                let Some(member) = r.body.member_id else {
                    return;
                };
                let mut d = Expected {
                    points: i128::from(sale.sale.points_earned.0)
                        - i128::from(sale.sale.points_used),
                    ..Expected::default()
                };
                for tender in &sale.sale.tenders {
                    if let Tender::StoredValue {
                        principal, bonus, ..
                    } = tender
                    {
                        d.principal -= i128::from(principal.0);
                        d.bonus -= i128::from(bonus.0);
                    }
                }
                self.wallet_ops.item_sales += 1;
                let sold = sale.sale.lines.iter().map(|l| l.qty.0).collect();
                self.item_sales
                    .push((sale.sale.sale_id.clone(), member, sold));
                if let Some(coupon) = &sale.sale.coupon {
                    self.wallet_ops.coupons_redeemed += 1;
                    self.redemptions.push((i, seq, member, coupon.clone(), 1));
                }
                (member, d)
            }
            (Spend::Checkout(r), Outcome::Sale { sale, .. }) => {
                let Some(member) = r.body.member_id else {
                    return;
                };
                let mut d = Expected {
                    points: i128::from(sale.sale.points_earned.0),
                    ..Expected::default()
                };
                if let Tender::StoredValue {
                    principal,
                    bonus,
                    overdraft,
                } = sale.sale.tender
                {
                    d.principal -= i128::from(principal.0);
                    d.bonus -= i128::from(bonus.0);
                    d.owed += i128::from(overdraft.0);
                    if overdraft.0 > 0 {
                        self.wallet_ops.overdrafts += 1;
                    }
                }
                (member, d)
            }
            (Spend::Wallet(r), Outcome::Wallet { .. }) => {
                let d = match &r.body.action {
                    WalletAction::TopUp { paid, rule } => Expected {
                        principal: cents(paid),
                        bonus: if rule.is_some() { 3_000 } else { 0 },
                        ..Expected::default()
                    },
                    WalletAction::AdjustPoints { points, .. } => Expected {
                        points: i128::from(*points),
                        ..Expected::default()
                    },
                    WalletAction::Refund { principal, .. } => {
                        let protocol::Payload::Wallet {
                            event:
                                WalletEvent::Refunded {
                                    bonus_forfeited, ..
                                },
                            ..
                        } = self.last_entry(i).payload
                        else {
                            panic!("the last entry is not a refund");
                        };
                        Expected {
                            principal: -cents(principal),
                            bonus: -i128::from(bonus_forfeited.0),
                            ..Expected::default()
                        }
                    }
                    WalletAction::CollectOverdraft => self.collected(i),
                    WalletAction::RedeemGift { .. } => {
                        self.wallet_ops.gifts += 1;
                        Expected {
                            points: -i128::from(super::GIFT_POINTS),
                            ..Expected::default()
                        }
                    }
                    _ => Expected::default(),
                };
                (r.body.member_id, d)
            }
            _ => return,
        };
        self.wallet_ops.applied += 1;
        let seq = self.stores[i].journal.tip().next_seq - 1;
        self.bookings.push((i, seq, member, delta));
    }

    /// What the acknowledged operations add up to per member, a fenced store's included.
    pub(super) fn expected(&self) -> BTreeMap<MemberId, Expected> {
        let mut expected: BTreeMap<MemberId, Expected> = BTreeMap::new();
        for (_, _, member, delta) in &self.bookings {
            let e = expected.entry(*member).or_default();
            e.principal += delta.principal;
            e.bonus += delta.bonus;
            e.points += delta.points;
            e.owed += delta.owed;
        }
        expected
    }

    /// What a collection just did, read back from the entry it wrote (the split between
    /// principal and bonus is the journal's to choose).
    /// The last entry store `i` wrote (flushed).
    pub(super) fn last_entry(&self, i: usize) -> protocol::Entry {
        let s = &self.stores[i];
        let (_, bytes) = s
            .mem
            .scan_prefix_rev(&keys::log_prefix(&s.id), 1)
            .unwrap()
            .pop()
            .unwrap();
        protocol::Entry::decode(&bytes).unwrap()
    }

    pub(super) fn collected(&self, i: usize) -> Expected {
        let entry = self.last_entry(i);
        let protocol::Payload::Wallet {
            event: WalletEvent::OverdraftCollected { amount },
            ops,
            ..
        } = entry.payload
        else {
            panic!("the last entry is not a collection");
        };
        let mut d = Expected {
            owed: -i128::from(amount.0),
            ..Expected::default()
        };
        for op in ops {
            let units = i128::from(op.change.units());
            match op.counter {
                Counter::Principal => d.principal -= units,
                Counter::Bonus => d.bonus -= units,
                _ => {}
            }
        }
        d
    }

    /// The writing store's copy of the member's wallet, audited right after the write.
    pub(super) fn audit_one(&mut self, i: usize, member: &MemberId) {
        if self.violation.is_some() {
            return;
        }
        let s = &self.stores[i];
        let wallet = views::Views::new(s.mem.clone()).wallet(member).unwrap();
        if let Err(e) = wallet.audit() {
            self.violation = Some(format!("{member}'s wallet at {}: {e}", s.id));
        }
    }
}
