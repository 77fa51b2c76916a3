//! Store ↔ headquarters sync: versioned wire messages, framing with size limits, and the two
//! ends of a session as sans-IO state machines (quinn-proto style). The shells in `node` and
//! `hub` move bytes and touch disk; every decision about what to send and what to accept is here.
//!
//! A store pushes its log after the hub's acknowledged seq; the hub verifies the hash chain,
//! persists, and acknowledges. The hub streams back its **feed**: entries other replicas made
//! that every store needs (member registrations and profile edits today; HQ entries later),
//! numbered by a dense feed position. Catch-up after any outage is "everything after k" on both
//! directions, so it costs what changed, never the size of the database.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::entry::{ChainError, ChainTip, Entry, EntryError, Sealed};
use crate::ids::{MemberId, StoreId, TxId};
use crate::wallet::Counter;

/// ALPN names the protocol and its version; a peer speaking another version fails the handshake.
pub const ALPN: &[u8] = b"chain-sync/1";
pub const VERSION: u16 = 1;
/// No frame may be larger than this; a larger length prefix closes the stream.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// A push carries at most this many entries …
pub const PUSH_ENTRIES_MAX: usize = 512;
/// … and at most about this many bytes of them (one entry may exceed it on its own).
pub const PUSH_BYTES_MAX: usize = 1024 * 1024;
/// Pushes sent but not yet acknowledged, so the link stays busy while the hub flushes.
pub const PUSHES_IN_FLIGHT_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreMsg {
    /// First message: what the store speaks, who it says it is, how long its log is, and how
    /// much of the hub's feed it has applied.
    Hello {
        versions: Vec<u16>,
        store: StoreId,
        log_len: u64,
        feed_applied: u64,
    },
    /// Consecutive entries of the store's own log, encoded (`Entry::encode`).
    Push { log_len: u64, entries: Vec<Vec<u8>> },
    /// The store needs spend rights it does not hold (a member paying here whose balance is
    /// held elsewhere).
    Ask(Ask),
}

/// A store's request for rights: `wants` units of each counter of `member`'s wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// Derived from the till's idempotency key, so a retry is the same ask.
    pub id: TxId,
    pub member: MemberId,
    pub wants: Vec<(Counter, u64)>,
}

/// How the hub answered an [`Ask`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AskAnswer {
    /// Headquarters granted the rights in an entry of its log at feed position `feed_upto`:
    /// apply the feed that far, then spend.
    Granted {
        feed_upto: u64,
    },
    Refused {
        reason: String,
    },
}

/// Headquarters asks a store to hand back up to `units` of a counter it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recall {
    pub id: TxId,
    pub member: MemberId,
    pub counter: Counter,
    pub units: u64,
}

/// A store may ask for at most this many counters at once.
pub const ASK_WANTS_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    pub position: u64,
    pub entry: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HubMsg {
    /// Answer to `Hello`: the last seq of this store's log the hub holds durably.
    Welcome {
        version: u16,
        acked_seq: u64,
    },
    /// Everything up to `seq` is durable at the hub.
    Ack {
        seq: u64,
    },
    /// Feed items; the store has seen the feed up to `upto` once it applies them (items from
    /// the store's own origin are not sent back, so `upto` can run ahead of the last item).
    Feed {
        upto: u64,
        items: Vec<FeedItem>,
    },
    /// The hub refuses the session; it closes the connection after this.
    Refuse {
        reason: String,
    },
    Answer {
        id: TxId,
        answer: AskAnswer,
    },
    Recall(Recall),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("no common protocol version (peer offers {0:?}, we speak {VERSION})")]
    Version(Vec<u16>),
    #[error("store {claimed} is authenticated as {authenticated}")]
    WrongStore {
        claimed: StoreId,
        authenticated: StoreId,
    },
    #[error("frame of {0} bytes is over the {FRAME_BYTES_MAX}-byte limit")]
    FrameTooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    #[error("bad entry: {0}")]
    Entry(#[from] EntryError),
    #[error("broken chain: {0}")]
    Chain(#[from] ChainError),
    #[error(
        "the hub holds {hub} entries of this store but the store has only {store}: restore from the hub"
    )]
    HubAhead { hub: u64, store: u64 },
    #[error("acknowledgement of {0}, which was never sent")]
    AckUnsent(u64),
    #[error("the hub refused: {0}")]
    Refused(String),
    /// The connection or stream under the session failed (lost, closed by the peer, timed out).
    #[error("link: {0}")]
    Link(String),
    #[error(
        "the store has applied feed position {store} but the hub's feed ends at {hub}: restore the hub"
    )]
    FeedAhead { store: u64, hub: u64 },
}

impl SyncError {
    /// A stable close code for the QUIC connection, so logs at both ends name the reason.
    pub fn close_code(&self) -> u32 {
        match self {
            SyncError::Version(_) => 1,
            SyncError::WrongStore { .. } => 2,
            SyncError::FrameTooLarge(_) | SyncError::Malformed(_) | SyncError::Unexpected(_) => 3,
            SyncError::Entry(_) => 4,
            SyncError::Chain(_) => 5,
            SyncError::HubAhead { .. } => 6,
            SyncError::AckUnsent(_) => 7,
            SyncError::Refused(_) => 8,
            SyncError::Link(_) => 9,
            SyncError::FeedAhead { .. } => 10,
        }
    }
}

/// A message as bytes on the stream: a 4-byte big-endian length, then postcard.
pub fn encode_frame<T: Serialize>(msg: &T) -> Vec<u8> {
    let body = postcard::to_stdvec(msg).unwrap_or_default();
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend((body.len() as u32).to_be_bytes());
    frame.extend(body);
    frame
}

/// Reads a frame's length prefix, refusing oversized frames before anything is allocated.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, SyncError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > FRAME_BYTES_MAX {
        Err(SyncError::FrameTooLarge(len))
    } else {
        Ok(len)
    }
}

pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, SyncError> {
    postcard::from_bytes(body).map_err(|e| SyncError::Malformed(e.to_string()))
}

/// What the store-side session asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEvent {
    /// The hub holds everything up to this seq durably.
    Acked(u64),
    /// Apply these feed items and remember `upto` (durably) before the next `Hello`.
    Feed {
        upto: u64,
        items: Vec<FeedItem>,
    },
    Answer {
        id: TxId,
        answer: AskAnswer,
    },
    /// Hand rights back to headquarters (an entry in the store's log).
    Recall(Recall),
}

/// The store's end of a session.
#[derive(Debug)]
pub struct UplinkSession {
    log_len: u64,
    acked: Option<u64>,
    next_to_send: u64,
    in_flight: VecDeque<u64>,
    transmit: VecDeque<StoreMsg>,
    events: VecDeque<UplinkEvent>,
}

impl UplinkSession {
    pub fn new(store: StoreId, log_len: u64, feed_applied: u64) -> Self {
        let hello = StoreMsg::Hello {
            versions: vec![VERSION],
            store,
            log_len,
            feed_applied,
        };
        Self {
            log_len,
            acked: None,
            next_to_send: 0,
            in_flight: VecDeque::new(),
            transmit: VecDeque::from([hello]),
            events: VecDeque::new(),
        }
    }

    pub fn handle(&mut self, msg: HubMsg) -> Result<(), SyncError> {
        match msg {
            HubMsg::Welcome { version, acked_seq } => {
                if version != VERSION {
                    return Err(SyncError::Version(vec![version]));
                }
                if self.acked.is_some() {
                    return Err(SyncError::Unexpected("a second Welcome"));
                }
                if acked_seq > self.log_len {
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
                self.events.push_back(UplinkEvent::Feed { upto, items });
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
        }
        Ok(())
    }

    /// Asks the hub for rights. Only once welcomed: before that, the caller should not wait.
    pub fn ask(&mut self, ask: Ask) -> Result<(), SyncError> {
        if self.acked.is_none() {
            return Err(SyncError::Unexpected("Ask before Welcome"));
        }
        self.transmit.push_back(StoreMsg::Ask(ask));
        Ok(())
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
    /// gave (the shell may send fewer to respect [`PUSH_BYTES_MAX`]).
    pub fn push(&mut self, entries: Vec<Vec<u8>>) {
        if entries.is_empty() {
            return;
        }
        self.next_to_send += entries.len() as u64;
        self.in_flight.push_back(self.next_to_send - 1);
        self.transmit.push_back(StoreMsg::Push {
            log_len: self.log_len,
            entries,
        });
    }

    pub fn poll_transmit(&mut self) -> Option<StoreMsg> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UplinkEvent> {
        self.events.pop_front()
    }

    /// Entries written here that the hub does not hold yet.
    pub fn backlog(&self) -> u64 {
        self.log_len - self.acked.unwrap_or(0).min(self.log_len)
    }
}

/// What the hub-side session asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// The store said hello: stream the feed to it from `feed_applied + 1`.
    Hello { log_len: u64, feed_applied: u64 },
    /// Persist these verified entries (in order), then call [`HubSession::persisted`].
    Persist { entries: Vec<Sealed>, log_len: u64 },
    /// Serve this ask, then call [`HubSession::answer`].
    Ask(Ask),
}

/// The hub's end of a session with one authenticated store.
#[derive(Debug)]
pub struct HubSession {
    store: StoreId,
    greeted: bool,
    /// The tip after every entry handed out for persisting (persisted or not yet).
    verified: ChainTip,
    transmit: VecDeque<HubMsg>,
    events: VecDeque<HubEvent>,
}

impl HubSession {
    /// `store` comes from the client certificate; `tip` is where the hub's copy of its log ends.
    pub fn new(store: StoreId, tip: ChainTip) -> Self {
        Self {
            store,
            greeted: false,
            verified: tip,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
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
                if !versions.contains(&VERSION) {
                    return Err(SyncError::Version(versions));
                }
                if store != self.store {
                    return Err(SyncError::WrongStore {
                        claimed: store,
                        authenticated: self.store.clone(),
                    });
                }
                self.greeted = true;
                let acked_seq = self.verified.next_seq - 1;
                self.transmit.push_back(HubMsg::Welcome {
                    version: VERSION,
                    acked_seq,
                });
                self.events.push_back(HubEvent::Hello {
                    log_len,
                    feed_applied,
                });
            }
            StoreMsg::Push { log_len, entries } => {
                if !self.greeted {
                    return Err(SyncError::Unexpected("Push before Hello"));
                }
                if entries.len() > PUSH_ENTRIES_MAX {
                    return Err(SyncError::Malformed(format!(
                        "a push of {} entries",
                        entries.len()
                    )));
                }
                let mut fresh = Vec::with_capacity(entries.len());
                let mut tip = self.verified;
                for bytes in &entries {
                    let entry = Entry::decode(bytes)?;
                    if entry.origin == self.store && entry.seq < tip.next_seq {
                        continue; // already held: a resend after a lost acknowledgement
                    }
                    let sealed = Sealed::new(entry);
                    tip = tip.extend_sealed(&self.store, &sealed)?;
                    fresh.push(sealed);
                }
                self.verified = tip;
                self.events.push_back(HubEvent::Persist {
                    entries: fresh,
                    log_len,
                });
            }
            StoreMsg::Ask(ask) => {
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
            }
        }
        Ok(())
    }

    pub fn answer(&mut self, id: TxId, answer: AskAnswer) {
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

    pub fn feed(&mut self, upto: u64, items: Vec<FeedItem>) {
        self.transmit.push_back(HubMsg::Feed { upto, items });
    }

    pub fn poll_transmit(&mut self) -> Option<HubMsg> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryHash, Payload};
    use crate::hlc::Hlc;
    use crate::ids::StaffId;
    use chrono::NaiveDate;

    fn store(s: &str) -> StoreId {
        StoreId::parse(s).unwrap()
    }

    fn log(origin: &str, n: u64) -> Vec<Entry> {
        let mut tip = ChainTip::GENESIS;
        (1..=n)
            .map(|seq| {
                let e = Entry {
                    origin: store(origin),
                    seq,
                    hlc: Hlc {
                        wall_ms: seq,
                        logical: 0,
                    },
                    business_date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                    staff: StaffId::system(),
                    tx: TxId::parse(&format!("key-{seq:08}")).unwrap(),
                    prev_hash: tip.hash,
                    payload: Payload::MemberEdited {
                        member_id: MemberId::mint(1, 1),
                        change: vec![seq as u8],
                    },
                };
                tip = tip.extend(&store(origin), &e).unwrap();
                e
            })
            .collect()
    }

    /// Runs a store session against a hub session in memory until both are quiet; the hub's
    /// persistence is `held`, which starts at `hub_has` entries.
    fn exchange(entries: &[Entry], hub_has: usize) -> (Vec<Entry>, UplinkSession) {
        let mut held: Vec<Entry> = entries[..hub_has].to_vec();
        let tip = ChainTip::GENESIS.extend_all(&store("S001"), &held).unwrap();
        let mut hub = HubSession::new(store("S001"), tip);
        let mut up = UplinkSession::new(store("S001"), entries.len() as u64, 0);
        loop {
            let mut moved = false;
            while let Some(range) = up.poll_push() {
                let batch = entries[*range.start() as usize - 1..=*range.end() as usize - 1]
                    .iter()
                    .map(Entry::encode)
                    .collect();
                up.push(batch);
            }
            while let Some(msg) = up.poll_transmit() {
                let bytes = encode_frame(&msg);
                let len = frame_len(bytes[..4].try_into().unwrap()).unwrap();
                hub.handle(decode_body(&bytes[4..4 + len]).unwrap())
                    .unwrap();
                moved = true;
            }
            while let Some(event) = hub.poll_event() {
                if let HubEvent::Persist { entries, .. } = event {
                    held.extend(entries.into_iter().map(|s| s.entry));
                    hub.persisted(held.len() as u64);
                }
            }
            while let Some(msg) = hub.poll_transmit() {
                up.handle(msg).unwrap();
                moved = true;
            }
            while up.poll_event().is_some() {}
            if !moved {
                return (held, up);
            }
        }
    }

    #[test]
    fn a_backlog_arrives_once_in_order_whatever_the_hub_already_had() {
        let entries = log("S001", 2_000);
        for hub_has in [0, 1, 777, 2_000] {
            let (held, up) = exchange(&entries, hub_has);
            assert_eq!(held, entries, "hub_has = {hub_has}");
            assert_eq!(up.backlog(), 0);
        }
    }

    #[test]
    fn resent_entries_are_skipped_and_gaps_or_tampering_refused() {
        let entries = log("S001", 3);
        let tip = ChainTip::GENESIS
            .extend_all(&store("S001"), &entries[..2])
            .unwrap();
        let mut hub = HubSession::new(store("S001"), tip);
        let hello = StoreMsg::Hello {
            versions: vec![VERSION],
            store: store("S001"),
            log_len: 3,
            feed_applied: 0,
        };
        hub.handle(hello).unwrap();
        let all = entries.iter().map(Entry::encode).collect();
        hub.handle(StoreMsg::Push {
            log_len: 3,
            entries: all,
        })
        .unwrap();
        let persisted: Vec<_> = std::iter::from_fn(|| hub.poll_event()).collect();
        assert!(
            matches!(&persisted[1], HubEvent::Persist { entries, .. } if entries.len() == 1 && entries[0].entry.seq == 3)
        );

        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: vec![VERSION],
            store: store("S001"),
            log_len: 3,
            feed_applied: 0,
        })
        .unwrap();
        let mut tampered = entries[0].clone();
        tampered.staff = StaffId::parse("mallory").unwrap();
        let push = StoreMsg::Push {
            log_len: 3,
            entries: vec![tampered.encode(), entries[1].encode()],
        };
        assert!(matches!(
            hub.handle(push),
            Err(SyncError::Chain(ChainError::BrokenLink { seq: 2 }))
        ));
        let gap = StoreMsg::Push {
            log_len: 3,
            entries: vec![entries[2].encode()],
        };
        assert!(matches!(
            hub.handle(gap),
            Err(SyncError::Chain(ChainError::SeqGap { .. }))
        ));
    }

    #[test]
    fn acks_never_pass_what_this_session_sent() {
        let entries = log("S001", 3);
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: vec![VERSION],
            store: store("S001"),
            log_len: 3,
            feed_applied: 0,
        })
        .unwrap();
        hub.handle(StoreMsg::Push {
            log_len: 3,
            entries: vec![entries[0].encode()],
        })
        .unwrap();
        hub.persisted(3); // an older session of this store delivered 2 and 3 meanwhile
        let acks: Vec<_> = std::iter::from_fn(|| hub.poll_transmit()).collect();
        assert_eq!(acks.last(), Some(&HubMsg::Ack { seq: 1 }));
        let too_many = StoreMsg::Push {
            log_len: 3,
            entries: vec![vec![]; PUSH_ENTRIES_MAX + 1],
        };
        assert!(matches!(hub.handle(too_many), Err(SyncError::Malformed(_))));
    }

    #[test]
    fn a_store_cannot_speak_for_another() {
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        let hello = StoreMsg::Hello {
            versions: vec![VERSION],
            store: store("S002"),
            log_len: 0,
            feed_applied: 0,
        };
        assert!(matches!(
            hub.handle(hello),
            Err(SyncError::WrongStore { .. })
        ));
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: vec![VERSION],
            store: store("S001"),
            log_len: 1,
            feed_applied: 0,
        })
        .unwrap();
        let foreign = log("S002", 1).iter().map(Entry::encode).collect();
        let push = StoreMsg::Push {
            log_len: 1,
            entries: foreign,
        };
        assert!(matches!(
            hub.handle(push),
            Err(SyncError::Chain(ChainError::WrongOrigin { .. }))
        ));
    }

    #[test]
    fn protocol_violations_are_errors_not_state() {
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        assert!(
            hub.handle(StoreMsg::Push {
                log_len: 0,
                entries: vec![]
            })
            .is_err()
        );
        let hello = StoreMsg::Hello {
            versions: vec![99],
            store: store("S001"),
            log_len: 0,
            feed_applied: 0,
        };
        assert!(matches!(hub.handle(hello), Err(SyncError::Version(_))));
        let mut up = UplinkSession::new(store("S001"), 5, 0);
        assert!(matches!(
            up.handle(HubMsg::Welcome {
                version: VERSION,
                acked_seq: 9
            }),
            Err(SyncError::HubAhead { .. })
        ));
        let mut up = UplinkSession::new(store("S001"), 5, 0);
        up.handle(HubMsg::Welcome {
            version: VERSION,
            acked_seq: 2,
        })
        .unwrap();
        assert!(matches!(
            up.handle(HubMsg::Ack { seq: 4 }),
            Err(SyncError::AckUnsent(4))
        ));
        assert!(frame_len((FRAME_BYTES_MAX as u32 + 1).to_be_bytes()).is_err());
        assert!(decode_body::<HubMsg>(&[0xff, 0xff]).is_err());
        let _ = EntryHash::GENESIS;
    }
}
