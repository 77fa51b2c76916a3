//! The store's end of a session, sans IO.

use super::*;

/// What the store-side session asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEvent {
    /// The hub holds everything up to this seq durably.
    Acked(u64),
    /// The hub holds this store's log up to `hub_seq`, further than the store does (version 8):
    /// `Restore` brings the missing entries, and until they are in the store writes no entry of
    /// its own. Comes right before the welcome's `Acked`.
    Behind {
        hub_seq: u64,
    },
    /// Entries of this store's own log from the hub's copy, next in order (version 8): append
    /// them, with the members' keys, then take the feed as applied up to `upto`.
    Restore {
        upto: u64,
        entries: Vec<Vec<u8>>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    },
    /// Apply these feed items and remember `upto` (durably) before the next `Hello`; write the
    /// members' keys (`None`: erased) with them.
    Feed {
        upto: u64,
        items: Vec<FeedItem>,
        keys: Vec<(MemberId, Option<MemberKey>)>,
    },
    Answer {
        id: TxId,
        answer: AskAnswer,
    },
    /// Hand rights back to headquarters (an entry in the store's log).
    Recall(Recall),
    /// The hub's clock read `hub_ms` as it welcomed this store: compare with this store's,
    /// then answer with [`UplinkSession::clock`].
    Clock {
        hub_ms: u64,
    },
    /// A followed member's earlier wallet changes (version 7): apply those not held yet; with
    /// `last`, the member is whole here.
    Backfill {
        member: MemberId,
        items: Vec<FeedItem>,
        last: bool,
    },
    /// Headquarters signed the store's new certificate (version 9): the chain, the store's
    /// certificate first.
    Renewed {
        chain: Vec<Vec<u8>>,
    },
    /// Headquarters will not renew the certificate (version 9).
    RenewRefused {
        reason: String,
    },
}

/// The store's end of a session.
#[derive(Debug)]
pub struct UplinkSession {
    /// 1 until the hub's `Welcome` says otherwise.
    version: u16,
    log_len: u64,
    acked: Option<u64>,
    next_to_send: u64,
    in_flight: VecDeque<u64>,
    transmit: VecDeque<StoreMsg>,
    events: VecDeque<UplinkEvent>,
    /// Keys the hub sent for the next feed batch.
    keys: Vec<(MemberId, Option<MemberKey>)>,
}

impl UplinkSession {
    pub fn new(store: StoreId, log_len: u64, feed_applied: u64) -> Self {
        Self::offering(store, log_len, feed_applied, VERSIONS)
    }

    /// A session that offers only `versions` (some of [`VERSIONS`]).
    pub fn offering(store: StoreId, log_len: u64, feed_applied: u64, versions: &[u16]) -> Self {
        let hello = StoreMsg::Hello {
            versions: versions.to_vec(),
            store,
            log_len,
            feed_applied,
        };
        Self {
            version: 1,
            log_len,
            acked: None,
            next_to_send: 0,
            in_flight: VecDeque::new(),
            transmit: VecDeque::from([hello]),
            events: VecDeque::new(),
            keys: Vec::new(),
        }
    }

    pub fn handle(&mut self, msg: HubMsg) -> Result<(), SyncError> {
        match msg {
            HubMsg::Welcome { version, acked_seq } => {
                if !VERSIONS.contains(&version) {
                    return Err(SyncError::Version(vec![version]));
                }
                if self.acked.is_some() {
                    return Err(SyncError::Unexpected("a second Welcome"));
                }
                self.version = version;
                if acked_seq > self.log_len && version >= RESTORE_VERSION {
                    self.events
                        .push_back(UplinkEvent::Behind { hub_seq: acked_seq });
                } else if acked_seq > self.log_len {
                    return Err(SyncError::HubAhead {
                        hub: acked_seq,
                        store: self.log_len,
                    });
                }
                self.acked = Some(acked_seq);
                self.next_to_send = acked_seq + 1;
                self.events.push_back(UplinkEvent::Acked(acked_seq));
            }
            HubMsg::Ack { seq } => {
                let acked = self
                    .acked
                    .ok_or(SyncError::Unexpected("Ack before Welcome"))?;
                if seq < acked || seq >= self.next_to_send {
                    return Err(SyncError::AckUnsent(seq));
                }
                while self.in_flight.front().is_some_and(|last| *last <= seq) {
                    self.in_flight.pop_front();
                }
                self.acked = Some(seq);
                self.events.push_back(UplinkEvent::Acked(seq));
            }
            HubMsg::Feed { upto, items } => {
                if self.acked.is_none() {
                    return Err(SyncError::Unexpected("Feed before Welcome"));
                }
                let keys = std::mem::take(&mut self.keys);
                self.events
                    .push_back(UplinkEvent::Feed { upto, items, keys });
            }
            HubMsg::Keys(keys) => {
                if self.acked.is_none() || self.version < 5 {
                    return Err(SyncError::Unexpected("Keys outside version 5"));
                }
                if self.keys.len() + keys.len() > KEYS_MAX {
                    return Err(SyncError::Malformed(format!("{} keys", keys.len())));
                }
                self.keys.extend(keys);
            }
            HubMsg::Refuse { reason } => return Err(SyncError::Refused(reason)),
            HubMsg::Answer { id, answer } => {
                self.events.push_back(UplinkEvent::Answer { id, answer });
            }
            HubMsg::Recall(recall) => {
                if self.acked.is_none() {
                    return Err(SyncError::Unexpected("Recall before Welcome"));
                }
                self.events.push_back(UplinkEvent::Recall(recall));
            }
            HubMsg::Backfill {
                member,
                items,
                last,
                ..
            } => {
                if self.acked.is_none() || self.version < 7 {
                    return Err(SyncError::Unexpected("Backfill outside version 7"));
                }
                self.events.push_back(UplinkEvent::Backfill {
                    member,
                    items,
                    last,
                });
            }
            HubMsg::Restore { upto, entries } => {
                if self.acked.is_none() || self.version < RESTORE_VERSION {
                    return Err(SyncError::Unexpected("Restore outside version 8"));
                }
                let keys = std::mem::take(&mut self.keys);
                self.events.push_back(UplinkEvent::Restore {
                    upto,
                    entries,
                    keys,
                });
            }
            HubMsg::Renewed { chain } => {
                if self.acked.is_none() || self.version < RENEW_VERSION {
                    return Err(SyncError::Unexpected("Renewed outside version 9"));
                }
                self.events.push_back(UplinkEvent::Renewed { chain });
            }
            HubMsg::RenewRefused { reason } => {
                if self.acked.is_none() || self.version < RENEW_VERSION {
                    return Err(SyncError::Unexpected("RenewRefused outside version 9"));
                }
                self.events.push_back(UplinkEvent::RenewRefused { reason });
            }
            HubMsg::Clock { now_ms } => {
                if self.acked.is_none() || self.version < 4 {
                    return Err(SyncError::Unexpected("Clock outside version 4"));
                }
                self.events.push_back(UplinkEvent::Clock { hub_ms: now_ms });
            }
        }
        Ok(())
    }

    /// Tells the hub this store's clock (version 4; nothing before it).
    pub fn clock(&mut self, now_ms: u64) {
        if self.version >= 4 && self.acked.is_some() {
            self.transmit.push_back(StoreMsg::Clock { now_ms });
        }
    }

    /// Whether the hub renews certificates over this session (version 9, once welcomed).
    pub fn renews(&self) -> bool {
        self.acked.is_some() && self.version >= RENEW_VERSION
    }

    /// Asks headquarters to sign a new certificate for this store (`csr`: PKCS #10, DER).
    pub fn renew(&mut self, csr: Vec<u8>) -> Result<(), SyncError> {
        if !self.renews() {
            return Err(SyncError::Unexpected("Renew outside version 9"));
        }
        if csr.len() > CSR_BYTES_MAX {
            return Err(SyncError::Malformed(format!(
                "a certificate request of {} bytes",
                csr.len()
            )));
        }
        self.transmit.push_back(StoreMsg::Renew { csr });
        Ok(())
    }

    /// Asks the hub for rights. Only once welcomed: before that, the caller should not wait.
    pub fn ask(&mut self, mut ask: Ask) -> Result<(), SyncError> {
        if self.acked.is_none() {
            return Err(SyncError::Unexpected("Ask before Welcome"));
        }
        let msg = match (self.version, ask.holding.take()) {
            (3.., Some(Holding { log_len, held })) => StoreMsg::AskHolding { ask, log_len, held },
            _ => StoreMsg::Ask(ask),
        };
        self.transmit.push_back(msg);
        Ok(())
    }

    /// Whether the hub sends this store only what concerns it (version 7): then a member it
    /// meets must be followed ([`follow`](Self::follow)); otherwise it gets every entry.
    pub fn routed(&self) -> Option<bool> {
        self.acked.map(|_| self.version >= 7)
    }

    /// Asks the hub to route these members' wallet changes here (version 7, once welcomed), at
    /// most [`FOLLOW_MAX`] a message.
    pub fn follow(&mut self, members: &[MemberId]) {
        if self.routed() != Some(true) {
            return;
        }
        for chunk in members.chunks(FOLLOW_MAX) {
            self.transmit.push_back(StoreMsg::Follow(chunk.to_vec()));
        }
    }

    /// The store's log now has `log_len` entries.
    pub fn log_grew(&mut self, log_len: u64) {
        self.log_len = self.log_len.max(log_len);
    }

    /// The entries to read and [`push`](Self::push) next, if the window allows.
    pub fn poll_push(&self) -> Option<RangeInclusive<u64>> {
        self.acked?;
        if self.in_flight.len() >= PUSHES_IN_FLIGHT_MAX || self.next_to_send > self.log_len {
            return None;
        }
        let last = self
            .log_len
            .min(self.next_to_send + PUSH_ENTRIES_MAX as u64 - 1);
        Some(self.next_to_send..=last)
    }

    /// Queues a push of `entries`, the first ones of the range [`poll_push`](Self::poll_push)
    /// gave (the shell may send fewer to respect [`PUSH_BYTES_MAX`]), after the keys of the
    /// members they register ([`members_keyed`]; version 5).
    pub fn push(&mut self, entries: Vec<Vec<u8>>, keys: Vec<(MemberId, MemberKey)>) {
        let Some(last) = entries.last() else {
            return;
        };
        if self.version >= 5 && !keys.is_empty() {
            self.transmit.push_back(StoreMsg::Keys(keys));
        }
        self.next_to_send += entries.len() as u64;
        self.in_flight.push_back(self.next_to_send - 1);
        let log_len = self.log_len;
        let msg = match self.version {
            1 => StoreMsg::Push { log_len, entries },
            _ => StoreMsg::PushChained {
                log_len,
                tip: EntryHash::of_encoded(last),
                entries: entries
                    .iter()
                    .map(|bytes| for_push(bytes, self.version))
                    .collect(),
            },
        };
        self.transmit.push_back(msg);
    }

    /// The version agreed with the hub (1 until welcomed): frames after `Hello` use
    /// `Codec::for_version` of it.
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn poll_transmit(&mut self) -> Option<StoreMsg> {
        self.transmit.pop_front()
    }

    /// The next message as a frame for the stream (`Hello` plain, the rest in the agreed
    /// version's codec).
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        let msg = self.transmit.pop_front()?;
        Some(Codec::for_version(self.version).encode(&msg))
    }

    pub fn poll_event(&mut self) -> Option<UplinkEvent> {
        self.events.pop_front()
    }

    /// Entries written here that the hub does not hold yet.
    pub fn backlog(&self) -> u64 {
        self.log_len - self.acked.unwrap_or(0).min(self.log_len)
    }
}
