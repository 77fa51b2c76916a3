//! Crashes, dropped sessions, and a store gone quiet that headquarters holds and fences.

use super::*;

/// The headquarters' fence rule of the simulation: its clock moves about 20 ms a step, so a
/// lease of 300 ms lets a hold post within a few dozen steps.
pub(super) const SIM_FENCE: protocol::lease::FenceRule = protocol::lease::FenceRule {
    lease_ms: 300,
    margin_ms: 100,
    hold_min_ms: 200,
};

impl Sim {
    /// The operator's side of a store gone quiet: keep it on hold (a zombie connection's last
    /// batch voids a hold) until headquarters fences it; a hold shorter than the store's lease
    /// is refused, and the operator holds it as long as they are told to.
    pub(super) fn hold_quiet_store(&mut self, now: u64) {
        let Some(Quiet {
            store: i,
            fenced_at: None,
            ..
        }) = self.quiet
        else {
            return;
        };
        let id = self.stores[i].id.clone();
        let fence = self
            .hub
            .mem
            .fences()
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == id);
        let mut until = now + 300;
        match fence {
            Some((_, hub::storage::Fence::Fenced { at_seq, .. })) => {
                if let Some(q) = self.quiet.as_mut() {
                    q.fenced_at = Some(at_seq);
                }
                self.trace.push(format!("{id} fenced at seq {at_seq}"));
            }
            Some(_) => {}
            None => loop {
                match self.hub.ingest.hold(&id, until, "hq-sim", "gone quiet") {
                    Ok(_) => self.trace.push(format!("{id} on hold until {until}")),
                    Err(hub::ingest::HoldError::TooSoon { earliest_ms, .. })
                        if until < earliest_ms =>
                    {
                        until = earliest_ms;
                        continue;
                    }
                    Err(hub::ingest::HoldError::UnknownStore(_)) => {
                        // It never synced: nothing of it is anywhere; nothing to take back.
                        self.quiet = None;
                        self.stores[i].partitioned_until = now;
                    }
                    Err(e) => self.trace.push(format!("hold on {id} refused: {e}")),
                }
                break;
            },
        }
    }

    /// The fenced store and the seq its log was fenced at, if a store has been fenced.
    pub(super) fn fenced(&self) -> Option<(usize, u64)> {
        self.quiet.and_then(|q| q.fenced_at.map(|at| (q.store, at)))
    }

    pub(super) fn faults(&mut self, now: u64) {
        for i in 0..self.stores.len() {
            if self.chance(0.002) {
                self.crash_store(i);
            }
            if self.chance(0.01) {
                self.drop_session(i, "connection cut");
            }
            if self.chance(0.003) {
                // Never shortens a longer partition (the quiet store's lasts to the end).
                let until = now + self.rng.random_range(100..5_000);
                let s = &mut self.stores[i];
                s.partitioned_until = s.partitioned_until.max(until);
                self.drop_session(i, "partitioned");
            }
        }
        if self.chance(0.002) {
            self.crash_hub();
        }
    }

    pub(super) fn crash_store(&mut self, i: usize) {
        let seed = self.rng.random();
        let s = &mut self.stores[i];
        s.mem.crash();
        s.journal =
            Journal::open(s.mem.clone(), settings(&s.id), environment(&s.clock, seed)).unwrap();
        s.journal.set_rights_gate(s.gate.clone());
        let len = s.journal.tip().next_seq - 1;
        assert!(
            len >= s.acked_len,
            "{} lost acknowledged entries in a crash ({len} < {})",
            s.id,
            s.acked_len
        );
        s.asks = Tracker::default();
        self.trace.push(format!("crash {} at log {len}", s.id));
        self.drop_session(i, "store crashed");
    }

    pub(super) fn crash_hub(&mut self) {
        self.hub.mem.crash();
        let clock = self.now.clone();
        self.hub.ingest = Ingest::open(
            self.hub.mem.clone(),
            Box::new(move || clock.load(Ordering::Relaxed)),
        )
        .unwrap();
        self.hub.ingest.set_fence_rule(SIM_FENCE);
        self.hub.pending_acks.clear();
        self.hub.new_links.clear();
        self.hub.asks.clear();
        self.hub.answers.clear();
        self.links.clear();
        for s in &mut self.stores {
            s.session = None;
        }
        self.trace.push("crash hub".into());
    }

    /// The store lets go of its connection; sometimes the hub keeps receiving from it a while.
    pub(super) fn drop_session(&mut self, i: usize, why: &str) {
        if let Some((link, _)) = self.stores[i].session.take() {
            let zombie = self.rng.random_bool(0.5);
            if let Some(l) = self.links.get_mut(&link) {
                l.store_gone = true;
                l.to_store.clear();
                if !zombie {
                    l.to_hub.clear();
                }
            }
            self.trace.push(format!(
                "{} drops link {link}: {why}{}",
                self.stores[i].id,
                if zombie { " (zombie)" } else { "" }
            ));
        }
    }
}
