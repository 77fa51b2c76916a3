//! The life of an ask for rights held elsewhere, as two state machines without I/O (time is
//! passed in). The store's till, uplink and journal drive a [`Tracker`]; the hub's ingest
//! thread drives an [`AskQueue`]; the simulator drives both, so it runs the same logic as the
//! real loops.
//!
//! ```text
//!  store (Tracker)                         hub (AskQueue, bank policy)
//!  till: RightsElsewhere ─ ask ──────────► pending ─ serve ─► Granted (HQ's log, flushed)
//!        asked ◄───────────── Answer ───── │        └────────► Recall holders, wait a round
//!        granted{feed_upto} ◄── feed ───── │        └────────► Unreachable / Refused
//!        due: the command runs with the feed that brought the rights (one flush)
//!        withdrawn: the till gave up; a command never runs after that
//! ```

use crate::StoreId;
use crate::sync::{Ask, AskAnswer, Recall};
use crate::{MemberId, TxId};

/// What serving one ask came to, as the bank decided it (`hub::ingest::Ingest::serve_ask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskStep {
    /// Granted in an entry of headquarters' log: the feed reaches it at `feed_upto`.
    Granted {
        feed_upto: u64,
    },
    /// Recall these from the stores holding them, then serve again.
    Recall(Vec<(StoreId, Recall)>),
    /// Not yet: headquarters waits for more of the store's log, or for recalled rights.
    Wait,
    /// The rights are at these stores, which cannot be reached now.
    Unreachable(Vec<StoreId>),
    Refused(String),
}

/// The id of the ask a till request makes: a retry of the same request is the same ask.
pub fn ask_id(store: &StoreId, member: &MemberId, key: &TxId) -> TxId {
    TxId::derived(&["ask", store.as_str(), &member.to_string(), key.as_str()])
}

/// The hub's limits on asks waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Asks one store may have waiting at once; more are refused.
    pub per_store_max: usize,
    /// How long a store's ask may wait for recalled rights before it is answered anyway.
    pub wait_ms: u64,
    /// How long a round of recalls has to bring rights in before the next is planned.
    pub round_ms: u64,
}

impl Limits {
    pub const HUB: Limits = Limits {
        per_store_max: 64,
        wait_ms: 2_000,
        round_ms: 1_000,
    };
}

struct Pending<W> {
    store: StoreId,
    ask: Ask,
    /// Who waits for the answer.
    waiter: W,
    /// No new round of recalls before this time.
    next_round_ms: u64,
    give_up_ms: u64,
}

/// What one round of serving produced: answers to send once the hub's flush has made any
/// grant durable, and recalls to send to the holders now.
pub struct Served<W> {
    pub answers: Vec<(W, TxId, AskAnswer)>,
    pub recalls: Vec<(StoreId, Recall)>,
}

/// The hub's asks waiting to be served: per-store caps, recall rounds, deadlines.
pub struct AskQueue<W> {
    limits: Limits,
    pending: Vec<Pending<W>>,
}

impl<W> AskQueue<W> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: Vec::new(),
        }
    }

    /// A store's ask: queued, or answered at once when the store already has too many waiting.
    pub fn offer(
        &mut self,
        store: StoreId,
        ask: Ask,
        waiter: W,
        now_ms: u64,
    ) -> Option<(W, TxId, AskAnswer)> {
        let waiting = self.pending.iter().filter(|p| p.store == store).count();
        if waiting >= self.limits.per_store_max {
            let reason = format!("{waiting} asks from {store} are waiting");
            return Some((waiter, ask.id, AskAnswer::Refused { reason }));
        }
        self.pending.push(Pending {
            store,
            ask,
            waiter,
            next_round_ms: 0,
            give_up_ms: now_ms + self.limits.wait_ms,
        });
        None
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// The members whose asks are waiting.
    pub fn members(&self) -> std::collections::BTreeSet<MemberId> {
        self.pending.iter().map(|p| p.ask.member).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forgets every ask (the hub's state was lost, as in a simulated crash).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Serves every waiting ask once (after each group: a recalled transfer may have just
    /// arrived). `serve` is the bank (`may_recall`: whether a new round of recalls may start);
    /// `gone` says a waiter stopped listening (its session ended), whose ask is dropped. An ask
    /// past its time starts no more rounds, is granted if it can be, and otherwise is answered
    /// that the holders did not hand the rights back in time.
    pub fn serve(
        &mut self,
        now_ms: u64,
        gone: impl Fn(&W) -> bool,
        mut serve: impl FnMut(&StoreId, &Ask, bool) -> AskStep,
    ) -> Served<W> {
        let mut served = Served {
            answers: Vec::new(),
            recalls: Vec::new(),
        };
        for mut p in std::mem::take(&mut self.pending) {
            if gone(&p.waiter) {
                continue;
            }
            let expired = now_ms > p.give_up_ms;
            let may_recall = !expired && now_ms >= p.next_round_ms;
            let answer = match serve(&p.store, &p.ask, may_recall) {
                AskStep::Granted { feed_upto } => AskAnswer::Granted { feed_upto },
                AskStep::Recall(list) => {
                    served.recalls.extend(list);
                    p.next_round_ms = now_ms + self.limits.round_ms;
                    self.pending.push(p);
                    continue;
                }
                AskStep::Wait if !expired => {
                    self.pending.push(p);
                    continue;
                }
                AskStep::Wait => AskAnswer::Unreachable {
                    holders: Vec::new(),
                },
                AskStep::Unreachable(holders) => AskAnswer::Unreachable { holders },
                AskStep::Refused(reason) => AskAnswer::Refused { reason },
            };
            served.answers.push((p.waiter, p.ask.id, answer));
        }
        served
    }
}

/// Where one of a store's asks stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent to headquarters; no answer yet.
    Asked,
    /// Granted: runs once the feed has been applied up to this position.
    Granted { feed_upto: u64 },
}

/// A store's asks and what waits on each (`T`: a till's request and where its answer goes).
/// Several requests may wait on one ask (a till that retried with the same key).
pub struct Tracker<T> {
    asks: Vec<(TxId, State, T)>,
}

impl<T> Default for Tracker<T> {
    fn default() -> Self {
        Self { asks: Vec::new() }
    }
}

impl<T> Tracker<T> {
    /// Records `item` waiting on ask `id`; true when the ask is new and must be sent.
    pub fn ask(&mut self, id: TxId, item: T) -> bool {
        let new = !self
            .asks
            .iter()
            .any(|(known, state, _)| *known == id && *state == State::Asked);
        self.asks.push((id, State::Asked, item));
        new
    }

    /// Records `item` as granted already (the journal parking a command the uplink handed it).
    pub fn granted(&mut self, id: TxId, feed_upto: u64, item: T) {
        self.asks.push((id, State::Granted { feed_upto }, item));
    }

    /// Headquarters answered ask `id`: a grant makes what waits on it wait for the feed
    /// instead; a refusal returns them, removed, for their tills to be told.
    pub fn answer(&mut self, id: &TxId, answer: &AskAnswer) -> Vec<T> {
        match answer {
            AskAnswer::Granted { feed_upto } => {
                for (known, state, _) in &mut self.asks {
                    if known == id && *state == State::Asked {
                        *state = State::Granted {
                            feed_upto: *feed_upto,
                        };
                    }
                }
                Vec::new()
            }
            AskAnswer::Refused { .. } | AskAnswer::Unreachable { .. } => {
                self.take(|known, state| known == id && state == State::Asked)
            }
        }
    }

    /// Granted items, whatever their feed position, removed (the uplink hands them to the
    /// journal, which waits for the feed in the same group as it applies it).
    pub fn take_granted(&mut self) -> Vec<(TxId, u64, T)> {
        let mut out = Vec::new();
        for (id, state, item) in std::mem::take(&mut self.asks) {
            match state {
                State::Granted { feed_upto } => out.push((id, feed_upto, item)),
                State::Asked => self.asks.push((id, state, item)),
            }
        }
        out
    }

    /// Granted items whose rights the feed, applied up to `fed_to`, has brought: run them now.
    pub fn due(&mut self, fed_to: u64) -> Vec<T> {
        self.take(|_, state| matches!(state, State::Granted { feed_upto } if feed_upto <= fed_to))
    }

    /// The till gave up on ask `id`: whatever waits on it is removed and never runs.
    pub fn withdraw(&mut self, id: &TxId) -> Vec<T> {
        self.take(|known, _| known == id)
    }

    /// The session to headquarters ended: asks not yet answered never will be on it.
    pub fn link_lost(&mut self) -> Vec<T> {
        self.take(|_, state| state == State::Asked)
    }

    /// Keeps only the items `keep` says are still wanted (a till that stopped waiting).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.asks.retain(|(_, _, item)| keep(item));
    }

    pub fn is_empty(&self) -> bool {
        self.asks.is_empty()
    }

    fn take(&mut self, mut pick: impl FnMut(&TxId, State) -> bool) -> Vec<T> {
        let mut out = Vec::new();
        for (id, state, item) in std::mem::take(&mut self.asks) {
            match pick(&id, state) {
                true => out.push(item),
                false => self.asks.push((id, state, item)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::Counter;

    fn store(n: u32) -> StoreId {
        StoreId::parse(&format!("S{n:03}")).unwrap()
    }

    fn ask(n: u32) -> Ask {
        Ask {
            id: TxId::derived(&["ask", &n.to_string()]),
            member: MemberId::mint(u64::from(n), u128::from(n)),
            wants: vec![(Counter::Principal, 100)],
            holding: None,
        }
    }

    #[test]
    fn a_store_with_too_many_asks_waiting_is_refused_at_once() {
        let mut queue = AskQueue::new(Limits {
            per_store_max: 2,
            ..Limits::HUB
        });
        assert!(queue.offer(store(1), ask(1), 1, 0).is_none());
        assert!(queue.offer(store(1), ask(2), 2, 0).is_none());
        let refused = queue.offer(store(1), ask(3), 3, 0).unwrap();
        assert!(matches!(refused.2, AskAnswer::Refused { .. }));
        assert!(queue.offer(store(2), ask(4), 4, 0).is_none());
    }

    #[test]
    fn a_recall_round_is_followed_by_another_and_the_ask_gives_up_at_its_deadline() {
        let mut queue = AskQueue::new(Limits::HUB);
        queue.offer(store(2), ask(1), (), 0);
        let mut rounds = Vec::new();
        let mut serve_at = |queue: &mut AskQueue<()>, now| {
            queue.serve(
                now,
                |_| false,
                |_, a, may_recall| match may_recall {
                    true => {
                        rounds.push(now);
                        let recall = Recall {
                            id: TxId::derived(&["recall", &now.to_string()]),
                            member: a.member,
                            counter: Counter::Principal,
                            units: 100,
                        };
                        AskStep::Recall(vec![(store(1), recall)])
                    }
                    false => AskStep::Wait,
                },
            )
        };
        for now in [0, 500, 1_000, 1_500, 2_000] {
            let served = serve_at(&mut queue, now);
            assert!(served.answers.is_empty());
        }
        let served = serve_at(&mut queue, 2_001);
        assert_eq!(rounds, vec![0, 1_000, 2_000]);
        assert!(matches!(served.answers[0].2, AskAnswer::Unreachable { .. }));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_waiter_that_left_is_dropped() {
        let mut queue = AskQueue::new(Limits::HUB);
        queue.offer(store(2), ask(1), true, 0);
        let served = queue.serve(20_000, |gone| *gone, |_, _, _| AskStep::Wait);
        assert!(served.answers.is_empty() && queue.is_empty());
    }

    #[test]
    fn a_granted_ask_runs_once_the_feed_brings_the_rights() {
        let mut asks = Tracker::default();
        let id = TxId::derived(&["ask", "1"]);
        assert!(asks.ask(id.clone(), "sale"));
        assert!(!asks.ask(id.clone(), "the same sale, retried"), "sent once");
        assert!(
            asks.answer(&id, &AskAnswer::Granted { feed_upto: 7 })
                .is_empty()
        );
        assert!(asks.due(6).is_empty());
        assert_eq!(asks.due(7), vec!["sale", "the same sale, retried"]);
        assert!(asks.is_empty());
    }

    #[test]
    fn a_refused_or_withdrawn_ask_never_runs() {
        let mut asks = Tracker::default();
        let (a, b) = (TxId::derived(&["a"]), TxId::derived(&["b"]));
        asks.ask(a.clone(), 1);
        asks.ask(b.clone(), 2);
        let holders = vec![store(1)];
        assert_eq!(
            asks.answer(&a, &AskAnswer::Unreachable { holders }),
            vec![1]
        );
        asks.answer(&b, &AskAnswer::Granted { feed_upto: 3 });
        assert_eq!(asks.withdraw(&b), vec![2]);
        assert!(asks.due(10).is_empty() && asks.is_empty());
    }

    #[test]
    fn a_lost_link_drops_unanswered_asks_but_keeps_granted_ones() {
        let mut asks = Tracker::default();
        let (a, b) = (TxId::derived(&["a"]), TxId::derived(&["b"]));
        asks.ask(a.clone(), 1);
        asks.ask(b.clone(), 2);
        asks.answer(&b, &AskAnswer::Granted { feed_upto: 3 });
        assert_eq!(asks.link_lost(), vec![1]);
        assert_eq!(asks.take_granted(), vec![(b, 3, 2)]);
    }
}
