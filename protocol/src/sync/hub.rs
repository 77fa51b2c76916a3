//! Headquarters' end of a session, sans IO.

use super::*;

/// What the hub-side session asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// The store said hello: stream the feed to it from `feed_applied + 1`.
    Hello { log_len: u64, feed_applied: u64 },
    /// Persist these verified entries (in order) with the members' keys the store sent for
    /// them, then call [`HubSession::persisted`].
    Persist {
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
    },
    /// Serve this ask, then call [`HubSession::answer`].
    Ask(Ask),
    /// The store's clock read `store_ms` when it heard the hub's (version 4).
    Clock { store_ms: u64 },
    /// Route these members' wallet changes to the store from now on, and send what came
    /// before with [`HubSession::backfill`] (version 7).
    Follow(Vec<MemberId>),
    /// Sign a new certificate for this store from its request (PKCS #10, DER), then answer
    /// with [`HubSession::renewed`] or [`HubSession::renew_refused`] (version 9).
    Renew { csr: Vec<u8> },
}

/// The hub's end of a session with one authenticated store.
#[derive(Debug)]
pub struct HubSession {
    store: StoreId,
    /// The version agreed in `Hello` (1 before it).
    version: u16,
    greeted: bool,
    /// The tip after every entry handed out for persisting (persisted or not yet).
    verified: ChainTip,
    transmit: VecDeque<HubMsg>,
    events: VecDeque<HubEvent>,
    /// Keys the store sent for its next push.
    keys: Vec<(MemberId, MemberKey)>,
}

impl HubSession {
    /// `store` comes from the client certificate; `tip` is where the hub's copy of its log ends.
    pub fn new(store: StoreId, tip: ChainTip) -> Self {
        Self {
            store,
            version: 1,
            greeted: false,
            verified: tip,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            keys: Vec::new(),
        }
    }

    /// Makes a version 3 push whole before [`handle`](Self::handle): its member changes came
    /// thin ([`crate::thin`]); `known` finds the hub's change of a member whose hash starts with
    /// the given bytes. A dependency the hub does not hold is malformed. Anything else passes.
    pub fn thicken(
        &self,
        msg: StoreMsg,
        known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
    ) -> Result<StoreMsg, SyncError> {
        thicken_msg(self.version, msg, known)
    }

    pub fn handle(&mut self, msg: StoreMsg) -> Result<(), SyncError> {
        match msg {
            StoreMsg::Hello {
                versions,
                store,
                log_len,
                feed_applied,
            } => {
                if self.greeted {
                    return Err(SyncError::Unexpected("a second Hello"));
                }
                let Some(version) = negotiate(&versions) else {
                    return Err(SyncError::Version(versions));
                };
                if store != self.store {
                    return Err(SyncError::WrongStore {
                        claimed: store,
                        authenticated: self.store.clone(),
                    });
                }
                self.greeted = true;
                self.version = version;
                let acked_seq = self.verified.next_seq - 1;
                self.transmit
                    .push_back(HubMsg::Welcome { version, acked_seq });
                self.events.push_back(HubEvent::Hello {
                    log_len,
                    feed_applied,
                });
            }
            StoreMsg::Push { log_len, entries } => {
                if !self.greeted {
                    return Err(SyncError::Unexpected("Push before Hello"));
                }
                self.take_push(log_len, &entries, None)?;
            }
            StoreMsg::PushChained {
                log_len,
                tip,
                entries,
            } => {
                if !self.greeted || self.version < 2 {
                    return Err(SyncError::Unexpected("PushChained outside version 2"));
                }
                self.take_push(log_len, &entries, Some(tip))?;
            }
            StoreMsg::AskHolding {
                mut ask,
                log_len,
                held,
            } => {
                if !self.greeted || self.version < 3 {
                    return Err(SyncError::Unexpected("AskHolding outside version 3"));
                }
                if held.len() != ask.wants.len() {
                    return Err(SyncError::Malformed(format!(
                        "an ask for {} counters holding {}",
                        ask.wants.len(),
                        held.len()
                    )));
                }
                ask.holding = Some(Holding { log_len, held });
                self.take_ask(ask)?;
            }
            StoreMsg::Ask(ask) => self.take_ask(ask)?,
            StoreMsg::Clock { now_ms } => {
                if !self.greeted || self.version < 4 {
                    return Err(SyncError::Unexpected("Clock outside version 4"));
                }
                self.events.push_back(HubEvent::Clock { store_ms: now_ms });
            }
            StoreMsg::Follow(members) => {
                if !self.greeted || self.version < 7 {
                    return Err(SyncError::Unexpected("Follow outside version 7"));
                }
                if members.is_empty() || members.len() > FOLLOW_MAX {
                    return Err(SyncError::Malformed(format!(
                        "a follow of {} members",
                        members.len()
                    )));
                }
                self.events.push_back(HubEvent::Follow(members));
            }
            StoreMsg::Renew { csr } => {
                if !self.greeted || self.version < RENEW_VERSION {
                    return Err(SyncError::Unexpected("Renew outside version 9"));
                }
                if csr.is_empty() || csr.len() > CSR_BYTES_MAX {
                    return Err(SyncError::Malformed(format!(
                        "a certificate request of {} bytes",
                        csr.len()
                    )));
                }
                self.events.push_back(HubEvent::Renew { csr });
            }
            StoreMsg::Keys(keys) => {
                if !self.greeted || self.version < 5 {
                    return Err(SyncError::Unexpected("Keys outside version 5"));
                }
                if self.keys.len() + keys.len() > KEYS_MAX {
                    return Err(SyncError::Malformed(format!("{} keys", keys.len())));
                }
                self.keys.extend(keys);
            }
        }
        Ok(())
    }

    /// Sends the store its new certificate chain (its own first).
    pub fn renewed(&mut self, chain: Vec<Vec<u8>>) {
        self.transmit.push_back(HubMsg::Renewed { chain });
    }

    /// Tells the store its certificate will not be renewed, and why.
    pub fn renew_refused(&mut self, reason: String) {
        self.transmit.push_back(HubMsg::RenewRefused { reason });
    }

    /// Tells the store the hub's clock, once welcomed (version 4; nothing before it).
    pub fn clock(&mut self, now_ms: u64) {
        if self.greeted && self.version >= 4 {
            self.transmit.push_back(HubMsg::Clock { now_ms });
        }
    }

    fn take_ask(&mut self, ask: Ask) -> Result<(), SyncError> {
        if !self.greeted {
            return Err(SyncError::Unexpected("Ask before Hello"));
        }
        let mut counters: Vec<_> = ask.wants.iter().map(|(c, _)| c).collect();
        counters.sort();
        counters.dedup();
        if ask.wants.is_empty()
            || ask.wants.len() > ASK_WANTS_MAX
            || counters.len() != ask.wants.len()
            || ask.wants.iter().any(|(_, units)| *units == 0)
        {
            return Err(SyncError::Malformed(format!(
                "an ask for {} counters",
                ask.wants.len()
            )));
        }
        self.events.push_back(HubEvent::Ask(ask));
        Ok(())
    }

    /// Verifies a push against the chain as this session knows it and hands the new entries
    /// out for persisting. With `chained` (version 2) each entry's `prev_hash` is the hash of the
    /// one before, and the last one's hash must be `chained`.
    fn take_push(
        &mut self,
        log_len: u64,
        entries: &[Vec<u8>],
        chained: Option<EntryHash>,
    ) -> Result<(), SyncError> {
        if entries.len() > PUSH_ENTRIES_MAX {
            return Err(SyncError::Malformed(format!(
                "a push of {} entries",
                entries.len()
            )));
        }
        let mut fresh = Vec::with_capacity(entries.len());
        let mut tip = self.verified;
        for bytes in entries {
            let mut entry = Entry::decode(bytes)?;
            if entry.origin == self.store && entry.seq < tip.next_seq {
                continue; // already held: a resend after a lost acknowledgement
            }
            if chained.is_some() {
                entry.prev_hash = tip.hash;
            }
            let sealed = Sealed::new(entry);
            tip = tip.extend_sealed(&self.store, &sealed)?;
            fresh.push(sealed);
        }
        if let (Some(sent), Some(last)) = (chained, fresh.last())
            && last.hash != sent
        {
            return Err(ChainError::BrokenLink {
                seq: last.entry.seq,
            }
            .into());
        }
        self.verified = tip;
        self.events.push_back(HubEvent::Persist {
            entries: fresh,
            log_len,
            keys: std::mem::take(&mut self.keys),
        });
        Ok(())
    }

    /// The version agreed with the store (1 before `Hello`).
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn answer(&mut self, id: TxId, answer: AskAnswer) {
        let answer = answer.for_version(self.version);
        self.transmit.push_back(HubMsg::Answer { id, answer });
    }

    pub fn recall(&mut self, recall: Recall) {
        self.transmit.push_back(HubMsg::Recall(recall));
    }

    /// Everything up to `seq` is durable: acknowledge it. Never beyond what this session was
    /// sent: an older session of the same store may have delivered more in the meantime.
    pub fn persisted(&mut self, seq: u64) {
        let seq = seq.min(self.verified.next_seq - 1);
        self.transmit.push_back(HubMsg::Ack { seq });
    }

    /// Queues feed `items` (up to position `upto`) after the keys of the members they change
    /// ([`members_keyed`]; `None` for an erased one; version 5).
    pub fn feed(
        &mut self,
        upto: u64,
        mut items: Vec<FeedItem>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    ) {
        if self.version >= 5 && !keys.is_empty() {
            self.transmit.push_back(HubMsg::Keys(keys));
        }
        // From version 3 member changes go thin: the store holds every change they follow
        // (the feed brought it earlier, or the store made it).
        if self.version >= 3 {
            for item in &mut items {
                item.entry = thin_entry(std::mem::take(&mut item.entry));
            }
        }
        self.transmit.push_back(HubMsg::Feed { upto, items });
    }

    /// Queues entries of the store's own log it does not hold, from headquarters' copy, after
    /// the keys of the members they register; then the store has the feed up to `upto`
    /// (version 8).
    pub fn restore(
        &mut self,
        upto: u64,
        entries: Vec<Vec<u8>>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    ) {
        if !keys.is_empty() {
            self.transmit.push_back(HubMsg::Keys(keys));
        }
        self.transmit.push_back(HubMsg::Restore { upto, entries });
    }

    /// Whether the store gets only what concerns it (version 7): otherwise every entry.
    pub fn routed(&self) -> bool {
        self.version >= 7
    }

    /// Whether the store gets a member's listing in place of their profile changes when it
    /// does not follow them ([`LISTED_VERSION`]).
    pub fn listed(&self) -> bool {
        self.version >= LISTED_VERSION
    }

    /// Queues a followed member's earlier wallet changes (up to feed position `upto`), in
    /// messages of at most [`PUSH_ENTRIES_MAX`] items and about [`PUSH_BYTES_MAX`] bytes; the
    /// last says so, also when there is nothing.
    pub fn backfill(&mut self, member: MemberId, upto: u64, items: Vec<FeedItem>) {
        let mut chunk: Vec<FeedItem> = Vec::new();
        let mut bytes = 0;
        for mut item in items {
            item.entry = thin_entry(item.entry);
            if !chunk.is_empty()
                && (chunk.len() == PUSH_ENTRIES_MAX || bytes + item.entry.len() > PUSH_BYTES_MAX)
            {
                self.transmit.push_back(HubMsg::Backfill {
                    member,
                    upto,
                    items: std::mem::take(&mut chunk),
                    last: false,
                });
                bytes = 0;
            }
            bytes += item.entry.len();
            chunk.push(item);
        }
        self.transmit.push_back(HubMsg::Backfill {
            member,
            upto,
            items: chunk,
            last: true,
        });
    }

    /// Tells the store why headquarters will not sync with it (a revoked or expired
    /// certificate); the connection is closed after.
    pub fn refuse(&mut self, reason: String) {
        self.transmit.push_back(HubMsg::Refuse { reason });
    }

    pub fn poll_transmit(&mut self) -> Option<HubMsg> {
        self.transmit.pop_front()
    }

    /// The next message as a frame for the stream (`Welcome` plain, the rest in the agreed
    /// version's codec).
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        let msg = self.transmit.pop_front()?;
        let codec = match msg {
            HubMsg::Welcome { .. } => Codec::PLAIN,
            _ => Codec::for_version(self.version).fast(),
        };
        Some(codec.encode(&msg))
    }

    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }
}

/// [`HubSession::thicken`] for a session speaking `version`, without the session (so a shell
/// can run it where its storage reads may block).
pub fn thicken_msg(
    version: u16,
    msg: StoreMsg,
    known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<StoreMsg, SyncError> {
    match msg {
        StoreMsg::PushChained {
            log_len,
            tip,
            entries,
        } if version >= 3 => Ok(StoreMsg::PushChained {
            log_len,
            tip,
            entries: thicken_push(entries, known)?,
        }),
        other => Ok(other),
    }
}
