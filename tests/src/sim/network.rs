//! The simulated network: links that delay, duplicate and cut, the hub's sessions and ingest,
//! the stores' uplinks, and the real ask machines on both ends.

use super::*;

impl Sim {
    pub(super) fn flush_store(&mut self, i: usize) {
        let s = &mut self.stores[i];
        s.journal.flush().unwrap();
        s.acked_len = s.journal.tip().next_seq - 1;
        self.announce(i);
    }

    /// Tells headquarters of the members store `i` follows that this session has not told it
    /// of, as the node's uplink does after each flush (`node::follow`).
    pub(super) fn announce(&mut self, i: usize) {
        let s = &mut self.stores[i];
        let Some((_, session)) = s.session.as_mut() else {
            return;
        };
        match session.routed() {
            None => {}
            Some(false) => {
                s.journal.hub_routes(false).unwrap();
                s.journal.flush().unwrap();
            }
            Some(true) => {
                let followed = s.journal.take_followed();
                let members = if s.scanned {
                    followed.into_iter().filter(|m| s.told.insert(*m)).collect()
                } else {
                    s.scanned = true;
                    node::follow::untold(&*s.mem, &mut s.told).unwrap()
                };
                session.follow(&members);
            }
        }
    }

    pub(super) fn deliver_to_hub(&mut self, now: u64) {
        let link_ids: Vec<usize> = self.links.keys().copied().collect();
        let mem = self.hub.mem.clone();
        for id in link_ids {
            while let Some(link) = self.links.get_mut(&id) {
                // Not yet accepted (the hub welcomes new links at its next flush): wait.
                if link.hub.is_none() || link.to_hub.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                let (_, msg) = link.to_hub.pop_front().unwrap();
                let session = link.hub.as_mut().unwrap();
                let known = |m: &MemberId, p: &[u8; 8]| hub::ingest::known_change(&*mem, m, p);
                let handled = session
                    .thicken(msg, known)
                    .and_then(|msg| session.handle(msg));
                if let Err(e) = handled {
                    self.trace.push(format!("hub closes link {id}: {e}"));
                    self.close_link(id);
                    break;
                }
                self.hub_events(id);
            }
        }
    }

    pub(super) fn hub_events(&mut self, id: usize) {
        while let Some(event) = self
            .links
            .get_mut(&id)
            .and_then(|l| l.hub.as_mut())
            .and_then(HubSession::poll_event)
        {
            let store = self.stores[self.links[&id].store].id.clone();
            match event {
                HubEvent::Hello { feed_applied, .. } => {
                    let link = self.links.get_mut(&id).unwrap();
                    link.feed_sent = Some(feed_applied);
                    if let Some(session) = link.hub.as_mut() {
                        session.clock(self.now.load(Ordering::Relaxed));
                    }
                }
                HubEvent::Clock { store_ms } => {
                    let off = store_ms as i64 - self.now.load(Ordering::Relaxed) as i64;
                    self.hub.ingest.clock(&store, off);
                }
                HubEvent::Persist {
                    entries,
                    log_len,
                    keys,
                } => match self.hub.ingest.ingest_keyed(&store, entries, log_len, keys) {
                    Ok(seq) => self.hub.pending_acks.push((id, seq)),
                    Err(e) => {
                        self.trace.push(format!("ingest refuses link {id}: {e}"));
                        self.close_link(id);
                        return;
                    }
                },
                HubEvent::Follow(members) => {
                    let durable = self.hub.durable_feed_len;
                    let routes = self.hub.ingest.routes();
                    let histories =
                        hub::routes::follow(&*self.hub.mem, &routes, &store, &members, durable)
                            .unwrap();
                    let session = self.links.get_mut(&id).unwrap().hub.as_mut().unwrap();
                    for (member, items) in histories {
                        session.backfill(member, durable, items);
                    }
                }
                HubEvent::Renew { .. } => {
                    panic!("{store} asks to renew: the simulator has no certificates")
                }
                HubEvent::Ask(ask) => {
                    let now = self.now.load(Ordering::Relaxed);
                    if let Some(refused) = self.hub.asks.offer(store, ask, id, now) {
                        self.hub.answers.push(refused);
                    }
                }
            }
        }
    }

    /// A connection whose store let go of it ends at the hub once its last message is in (as
    /// QUIC's idle timeout ends it): headquarters then knows the link is lost.
    pub(super) fn reap_gone_links(&mut self) {
        let gone: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| l.store_gone && l.to_hub.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.close_link(id);
        }
    }

    pub(super) fn close_link(&mut self, id: usize) {
        if let Some(link) = self.links.remove(&id) {
            if link.hub.is_some() {
                self.hub.ingest.link(&self.stores[link.store].id, false);
            }
            let s = &mut self.stores[link.store];
            if s.session.as_ref().is_some_and(|(l, _)| *l == id) {
                s.session = None;
            }
        }
    }

    /// Serves asks for rights with the ingest thread's own queue and bank, then rebalances:
    /// recalls go to the holders through their current links.
    pub(super) fn serve_asks(&mut self, now: u64) {
        let links = &self.links;
        let ingest = &mut self.hub.ingest;
        let served = self.hub.asks.serve(
            now,
            |link| !links.contains_key(link),
            |store, ask, may_recall| ingest.serve_ask(store, ask, may_recall).unwrap(),
        );
        let mut recalls = served.recalls;
        recalls.extend(self.hub.ingest.rebalance().unwrap());
        for (holder, recall) in recalls {
            let at = self.stores.iter().position(|s| s.id == holder).unwrap();
            let holder_link = self.stores[at].session.as_ref().map(|(l, _)| *l);
            if let Some(session) = holder_link
                .and_then(|l| self.links.get_mut(&l))
                .and_then(|l| l.hub.as_mut())
            {
                session.recall(recall);
            }
        }
        self.hub.answers.extend(served.answers);
    }

    /// The hub's group commit: flush, then acknowledge, welcome new links, and stream the feed.
    pub(super) fn hub_flush(&mut self, now: u64) {
        self.hub.ingest.post_due_holds().unwrap();
        self.serve_asks(now);
        self.hub.ingest.flush().unwrap();
        for (link, id, answer) in std::mem::take(&mut self.hub.answers) {
            if let Some(session) = self.links.get_mut(&link).and_then(|l| l.hub.as_mut()) {
                session.answer(id, answer);
            }
        }
        self.hub.durable_feed_len = self.hub.ingest.feed_len();
        for (id, seq) in std::mem::take(&mut self.hub.pending_acks) {
            if let Some(session) = self.links.get_mut(&id).and_then(|l| l.hub.as_mut()) {
                session.persisted(seq);
            }
        }
        for id in std::mem::take(&mut self.hub.new_links) {
            let Some(link) = self.links.get_mut(&id) else {
                continue;
            };
            let store = self.stores[link.store].id.clone();
            // A fenced store's session is taken like any other.
            let tip = self.hub.ingest.open_session(&store).unwrap();
            self.hub.ingest.link(&store, true);
            link.hub = Some(HubSession::new(store, tip));
        }
        let ids: Vec<usize> = self.links.keys().copied().collect();
        for id in ids {
            self.stream_feed(id);
            let delay = self.rng.random_range(0..30);
            let link = self.links.get_mut(&id).unwrap();
            let Some(session) = link.hub.as_mut() else {
                continue;
            };
            while let Some(msg) = session.poll_transmit() {
                if !link.store_gone {
                    let at = link.to_store.back().map_or(0, |(t, _)| *t).max(now + delay);
                    link.to_store.push_back((at, msg));
                }
            }
        }
    }

    pub(super) fn stream_feed(&mut self, id: usize) {
        let durable = self.hub.durable_feed_len;
        let link = self.links.get_mut(&id).unwrap();
        let (Some(sent), Some(session)) = (link.feed_sent, link.hub.as_mut()) else {
            return;
        };
        if durable <= sent {
            return;
        }
        let store = &self.stores[link.store].id;
        let routes = self.hub.ingest.routes();
        let routes = session.routed().then_some(&*routes);
        let (upto, items, keys) = hub::server::read_feed(
            &*self.hub.mem,
            routes,
            session.listed(),
            store,
            sent,
            durable,
        )
        .unwrap();
        session.feed(upto, items, keys);
        link.feed_sent = Some(upto);
    }

    pub(super) fn deliver_to_stores(&mut self, now: u64) {
        for i in 0..self.stores.len() {
            while let Some((id, _)) = &self.stores[i].session {
                let id = *id;
                let Some(link) = self.links.get_mut(&id) else {
                    break;
                };
                if link.to_store.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                let (_, msg) = link.to_store.pop_front().unwrap();
                let s = &mut self.stores[i];
                let (_, session) = s.session.as_mut().unwrap();
                if let Err(e) = session.handle(msg) {
                    self.trace.push(format!("{} closes link {id}: {e}", s.id));
                    self.close_link(id);
                    break;
                }
                let mut events = Vec::new();
                while let Some(event) = session.poll_event() {
                    events.push(event);
                }
                for event in events {
                    self.store_event(i, event);
                }
            }
            self.retry_granted(i);
            self.flush_store(i);
        }
    }

    pub(super) fn store_event(&mut self, i: usize, event: UplinkEvent) {
        let s = &mut self.stores[i];
        match event {
            UplinkEvent::Acked(seq) => {
                // As the node's uplink does once welcomed: whether the hub routes the feed, and
                // how far it holds the store's log.
                let routed = s.session.as_ref().and_then(|(_, u)| u.routed()) == Some(true);
                s.journal.hub_routes(routed).unwrap();
                s.journal.hub_holds(seq).unwrap();
            }
            // The simulated stores never lose their data: the hub never holds more.
            UplinkEvent::Behind { hub_seq } => panic!("{} is behind the hub ({hub_seq})", s.id),
            UplinkEvent::Restore { .. } => panic!("{} is given its own log back", s.id),
            UplinkEvent::Renewed { .. } | UplinkEvent::RenewRefused { .. } => {
                panic!("{} never asked to renew", s.id)
            }
            UplinkEvent::Clock { hub_ms } => {
                let pc = s.clock.pc_ms();
                s.clock.heard_hub(hub_ms, pc);
                if let Some((_, session)) = s.session.as_mut() {
                    session.clock(pc);
                }
            }
            UplinkEvent::Feed { upto, items, keys } => {
                s.journal.apply_feed(upto, items, keys).unwrap();
            }
            UplinkEvent::Backfill {
                member,
                items,
                last,
            } => {
                s.journal.apply_backfill(member, items, last).unwrap();
                self.wallet_ops.backfills += u64::from(last);
            }
            UplinkEvent::Answer { id, answer } => {
                let refused = s.asks.answer(&id, &answer);
                let beyond_heard = self.beyond_heard.remove(&id);
                match &answer {
                    AskAnswer::Granted { .. } => {
                        self.wallet_ops.granted += 1;
                        self.wallet_ops.granted_beyond_heard += u64::from(beyond_heard);
                    }
                    AskAnswer::Refused { reason } => {
                        self.trace
                            .push(format!("{} ask {id} refused: {reason}", s.id));
                    }
                    AskAnswer::Unreachable { holders } => {
                        self.wallet_ops.unreachable += 1;
                        self.trace
                            .push(format!("{} ask {id}: holders away {holders:?}", s.id));
                        // The holders are out of reach: the chain's overdraft policy decides,
                        // as the till's quick checkout does.
                        for spend in refused {
                            if let Spend::Checkout(mut r) = spend
                                && !r.body.offline_overdraft
                            {
                                r.body.offline_overdraft = true;
                                self.send_spend(i, Spend::Checkout(r), false);
                            }
                        }
                    }
                }
            }
            UplinkEvent::Recall(recall) => {
                let action = WalletAction::Recall {
                    counter: recall.counter,
                    units: recall.units,
                };
                let body = WalletRequest {
                    member_id: recall.member,
                    action,
                };
                let _ = s.journal.handle(Command::Wallet(request(&recall.id, body)));
            }
        }
    }

    /// Sends again the spends whose granted rights have arrived with the feed.
    pub(super) fn retry_granted(&mut self, i: usize) {
        let applied = views::Views::new(self.stores[i].mem.clone())
            .feed_applied()
            .unwrap();
        for spend in self.stores[i].asks.due(applied) {
            self.send_spend(i, spend, false);
        }
    }

    pub(super) fn uplink(&mut self, i: usize, now: u64) {
        if self.stores[i].session.is_none() {
            if now < self.stores[i].partitioned_until || self.rng.random_bool(0.7) {
                return;
            }
            self.connect(i);
        }
        let delay = self.rng.random_range(0..30);
        let s = &mut self.stores[i];
        let (id, session) = s.session.as_mut().unwrap();
        session.log_grew(s.acked_len);
        while let Some(range) = session.poll_push() {
            let entries: Vec<Vec<u8>> = range
                .map(|seq| s.mem.get(&keys::log(&s.id, seq)).unwrap().unwrap())
                .collect();
            let member_keys = node::uplink::member_keys(&*s.mem, &entries).unwrap();
            session.push(entries, member_keys);
        }
        let link = self.links.get_mut(id).unwrap();
        while let Some(msg) = session.poll_transmit() {
            let at = link.to_hub.back().map_or(0, |(t, _)| *t).max(now + delay);
            link.to_hub.push_back((at, msg));
        }
    }

    pub(super) fn connect(&mut self, i: usize) {
        let id = self.next_link;
        self.next_link += 1;
        let s = &mut self.stores[i];
        s.asks.link_lost();
        s.told.clear();
        s.scanned = false;
        let feed_applied = views::Views::new(s.mem.clone()).feed_applied().unwrap();
        s.session = Some((
            id,
            UplinkSession::new(s.id.clone(), s.acked_len, feed_applied),
        ));
        let link = Link {
            store: i,
            to_hub: VecDeque::new(),
            to_store: VecDeque::new(),
            store_gone: false,
            hub: None,
            feed_sent: None,
        };
        self.links.insert(id, link);
        self.hub.new_links.push(id);
    }
}
