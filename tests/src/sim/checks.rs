//! The checks that make a run pass.

use super::*;

impl Sim {
    /// The checks that make a run pass: every store's log is at the hub exactly once and byte
    /// for byte, every store has the same member directory, and every store's views equal a
    /// rebuild of its log and feed.
    pub fn check(&self) -> Result<SimReport, String> {
        let mut report = SimReport::default();
        let mut directories = Vec::new();
        let fenced = self.fenced();
        if let Some(Quiet {
            store: i,
            fenced_at: None,
            ..
        }) = self.quiet
        {
            return Err(format!(
                "{} went quiet but was never fenced",
                self.stores[i].id
            ));
        }
        for (i, s) in self.stores.iter().enumerate() {
            let own: Vec<Vec<u8>> = s
                .mem
                .scan_prefix(&keys::log_prefix(&s.id))
                .unwrap()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let held = self.hub.mem.entries(&s.id, 1, usize::MAX).unwrap();
            if own != held {
                return Err(format!(
                    "{}: the hub holds {} entries, the store wrote {} (or they differ)",
                    s.id,
                    held.len(),
                    own.len()
                ));
            }
            let rebuilt = views::rebuild(&*s.mem, &protocol::calendar::StoreCalendar::default())
                .map_err(|e| format!("{}: rebuild failed: {e}", s.id))?;
            if !rebuilt.is_clean() {
                return Err(format!(
                    "{}: views differ from a rebuild: {rebuilt:?}",
                    s.id
                ));
            }
            // Every store goes by headquarters' time once it has heard it, whatever its PC's.
            let off = s.clock.now_ms().abs_diff(self.now.load(Ordering::Relaxed));
            if off > node::clock::CORRECT_BEYOND_MS as u64 {
                return Err(format!("{}'s clock is {off} ms off headquarters'", s.id));
            }
            report.entries += own.len() as u64;
            if let Some((f, at_seq)) = fenced
                && f == i
            {
                report.taken_after_fence += (own.len() as u64).saturating_sub(at_seq);
                self.check_lease(&own)?;
            }
            directories.push((s.id.clone(), directory(&s.mem)));
        }
        report.fenced = u64::from(fenced.is_some());
        // Erased at headquarters (durably): nothing of them at any store, and no key.
        let erased: Vec<MemberId> = self
            .hub
            .mem
            .wallets()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| self.hub.mem.member_key(id).unwrap() == protocol::seal::KeyState::Erased)
            .collect();
        for id in &erased {
            for s in &self.stores {
                let kept = [
                    keys::member(id),
                    keys::document(id),
                    node::sealed::key_of(id),
                ]
                .iter()
                .any(|k| s.mem.get(k).unwrap().is_some());
                if kept || s.mem.get(&node::sealed::erased_key(id)).unwrap().is_none() {
                    return Err(format!("{}: erased member {id} not erased here", s.id));
                }
            }
            if self.hub.mem.member(id).unwrap().is_some() {
                return Err(format!("headquarters still holds erased member {id}"));
            }
        }
        report.erased = erased.len() as u64;
        let (first_id, first) = &directories[0];
        report.members = first.len() as u64;
        let ids = |d: &Vec<MemberView>| d.iter().map(|m| m.member_id).collect::<Vec<_>>();
        for (id, dir) in &directories[1..] {
            if ids(dir) != ids(first) {
                return Err(format!(
                    "member directories differ between {first_id} and {id}"
                ));
            }
        }
        // Each store holds every member as headquarters does: whole where it holds their
        // profile document (it follows them, or registered them), else as their listing.
        for (s, (id, dir)) in self.stores.iter().zip(&directories) {
            for member in dir {
                let at_hq = self
                    .hub
                    .mem
                    .member(&member.member_id)
                    .unwrap()
                    .map(|r| r.profile);
                let whole = s
                    .mem
                    .get(&keys::document(&member.member_id))
                    .unwrap()
                    .is_some();
                report.listed += u64::from(!whole);
                let expected = match whole {
                    true => at_hq,
                    false => at_hq.map(|p| p.listing()),
                };
                if expected.as_ref() != Some(&member.profile) {
                    return Err(format!(
                        "headquarters' view of {} differs from {id}'s (whole there: {whole})",
                        member.member_id
                    ));
                }
            }
        }
        if let Some(violation) = &self.violation {
            return Err(format!("the bank's audit during the run: {violation}"));
        }
        self.audit_all()?;
        let at_hq: BTreeMap<MemberId, Wallet> =
            self.hub.mem.wallets().unwrap().into_iter().collect();
        // The routed feed: a store holds whole the wallets of the members it follows, and of
        // the others no more than headquarters holds (what it wrote itself, rights moved to it).
        for s in &self.stores {
            let pending = node::follow::to_announce(&*s.mem).unwrap();
            if !pending.is_empty() {
                return Err(format!(
                    "{} still waits for the history of {} members it follows",
                    s.id,
                    pending.len()
                ));
            }
            let views = views::Views::new(s.mem.clone());
            let here: BTreeMap<MemberId, Wallet> = wallets(&s.mem).into_iter().collect();
            for (member, wallet) in &at_hq {
                let mine = here.get(member).cloned().unwrap_or_default();
                let whole = views.follow_state(member).unwrap() == node::follow::State::Whole;
                let mut merged = wallet.clone();
                merged.merge(&mine);
                if whole && mine != *wallet {
                    return Err(format!(
                        "{}'s wallet of {member} differs from headquarters'",
                        s.id
                    ));
                }
                if !whole && merged != *wallet {
                    return Err(format!(
                        "{} holds changes to {member}'s wallet headquarters does not",
                        s.id
                    ));
                }
            }
            if let Some(member) = here.keys().find(|m| !at_hq.contains_key(m)) {
                return Err(format!(
                    "{} holds a wallet of {member} headquarters does not",
                    s.id
                ));
            }
        }
        for (member, expected) in &self.expected() {
            let wallet = at_hq.get(member).cloned().unwrap_or_default();
            // Below zero only where a fenced store spent what headquarters had taken back.
            let points: i128 = wallet
                .counters
                .iter()
                .filter(|(c, _)| matches!(c, Counter::Points { .. }))
                .map(|(_, r)| r.balance_signed())
                .sum();
            let signed = |c: &Counter| wallet.counters.get(c).map_or(0, |r| r.balance_signed());
            let held = Expected {
                principal: signed(&Counter::Principal),
                bonus: signed(&Counter::Bonus),
                points,
                owed: i128::from(wallet.owed_total()),
            };
            if held != *expected {
                return Err(format!(
                    "{member}: the wallet holds {held:?}, the acknowledged operations add up to {expected:?}"
                ));
            }
        }
        report.wallets = at_hq.len() as u64;
        report.stock_moves = self.check_stock()?;
        // A coupon is spent at most once chain-wide, or once more for each time a return gave
        // it back; or once more where a fenced store redeemed it before it heard headquarters
        // had taken it back, which its wallet shows as spent twice (a receivable).
        let mut redeemed: BTreeMap<(MemberId, &str), i64> = BTreeMap::new();
        for (_, _, member, coupon, sign) in &self.redemptions {
            let n = redeemed.entry((*member, coupon.as_str())).or_default();
            *n += sign;
            let overspent = at_hq.get(member).map_or(0, |w| {
                w.counters
                    .iter()
                    .find(
                        |(c, _)| matches!(c, Counter::Uses { card } if card.to_string() == *coupon),
                    )
                    .map_or(0, |(_, r)| r.overspent())
            });
            if *n > 1 + i64::try_from(overspent).unwrap() {
                return Err(format!("{member}'s coupon {coupon} was redeemed twice"));
            }
        }
        // No line of any sale came back more than was sold, wherever it was returned (a
        // fenced store keeps its sales' return tokens: see `Wallet::reclaim`).
        let mut back: BTreeMap<(&SaleId, u16), i64> = BTreeMap::new();
        for (_, _, sale, line, qty) in &self.item_returns {
            *back.entry((sale, *line)).or_default() += qty;
        }
        for (sale, _, sold) in &self.item_sales {
            for (line, sold) in sold.iter().enumerate() {
                let line = u16::try_from(line).unwrap();
                let returned = back.get(&(sale, line)).copied().unwrap_or(0);
                if returned > *sold {
                    return Err(format!(
                        "{sale} line {line}: {sold} sold, {returned} returned"
                    ));
                }
            }
        }
        report.feed = self.hub.durable_feed_len;
        report.store_crashes = self
            .trace
            .iter()
            .filter(|t| t.starts_with("crash S"))
            .count() as u64;
        report.hub_crashes = self
            .trace
            .iter()
            .filter(|t| t.as_str() == "crash hub")
            .count() as u64;
        report.dropped_links = self
            .trace
            .iter()
            .filter(|t| t.contains(" drops link "))
            .count() as u64;
        report.refused = self
            .trace
            .iter()
            .filter(|t| t.contains(" closes link ") || t.contains(" refuses link "))
            .count() as u64;
        Ok(report)
    }
}

pub(super) fn on_hand(bytes: Option<Vec<u8>>) -> i64 {
    let (total_in, total_out): (u64, u64) = bytes
        .map(|b| views::decode(b"stk", &b).unwrap())
        .unwrap_or((0, 0));
    protocol::stock::on_hand(total_in, total_out)
}

impl Sim {
    /// Every store's stock, at the store and at headquarters, equals the sum of its
    /// acknowledged movements; chain-wide stock at headquarters is the sum over stores.
    /// Returns the movements counted.
    pub(super) fn check_stock(&self) -> Result<u64, String> {
        let mut counted = 0;
        for k in 0..SKUS {
            let sku = sku(k);
            let mut chain = 0;
            for (i, s) in self.stores.iter().enumerate() {
                let key = protocol::inventory::keys::stock(&s.id, &sku);
                let sum: i64 = self
                    .stock_bookings
                    .iter()
                    .filter(|(b, _, bsku, _)| *b == i && *bsku == sku)
                    .map(|(_, _, _, q)| q)
                    .sum();
                let here = on_hand(s.mem.get(&key).unwrap());
                let at_hq = on_hand(self.hub.mem.view(&key).unwrap());
                if here != sum || at_hq != sum {
                    return Err(format!(
                        "{} {sku}: the store holds {here}, headquarters {at_hq}; its movements add up to {sum}",
                        s.id
                    ));
                }
                chain += at_hq;
            }
            let mut ledger = 0;
            for (_, _, bsku, q) in &self.stock_bookings {
                if *bsku == sku {
                    ledger += q;
                    counted += 1;
                }
            }
            if chain != ledger {
                return Err(format!("{sku}: chain-wide {chain}, movements {ledger}"));
            }
        }
        Ok(counted)
    }

    /// A quiet store that honours its lease spent no member rights once the lease had run
    /// out (counted from when it lost its link), until it came back: none of the entries it
    /// wrote in between debits a right or hands one to another store.
    pub(super) fn check_lease(&self, log: &[Vec<u8>]) -> Result<(), String> {
        let Some(q) = self.quiet.filter(|q| q.honours_lease) else {
            return Ok(());
        };
        let (Some(from), back) = (q.lease_out_len, q.back_len.unwrap_or(u64::MAX)) else {
            return Ok(());
        };
        for bytes in log {
            let entry = protocol::Entry::decode(bytes).unwrap();
            if entry.seq <= from || entry.seq > back {
                continue;
            }
            let spends = entry.payload.rights_ops().is_some_and(|(_, ops)| {
                // Handing rights back to headquarters is allowed, spending them is not (a
                // sale's return token is its holder's alone, never taken back).
                ops.iter().any(|op| match &op.change {
                    _ if matches!(op.counter, Counter::Returnable { .. }) => false,
                    protocol::escrow::Change::Debit { .. } => true,
                    protocol::escrow::Change::Transfer { to, .. } => *to != StoreId::hq(),
                    _ => false,
                })
            });
            if spends {
                return Err(format!(
                    "{} spent member rights in entry {} ({:?}), after its lease ran out at entry {from}",
                    entry.origin, entry.seq, entry.payload
                ));
            }
        }
        Ok(())
    }
}
