//! Store ↔ headquarters sync: versioned wire messages, framing with size limits, and the two
//! ends of a session as sans-IO state machines (quinn-proto style). The shells in `node` and
//! `hub` move bytes and touch disk; every decision about what to send and what to accept is here.
//!
//! Versions: `Hello` and `Welcome` are always plain postcard; after them, version 2 deflates
//! every frame body ([`Codec`]) and pushes entries without their `prev_hash`
//! ([`StoreMsg::PushChained`]: the hub links each entry to the one before and checks the batch's
//! last hash), so a batch of similar entries costs a fraction of its size. Version 1 is still
//! spoken with a peer that offers nothing newer.
//!
//! A store pushes its log after the hub's acknowledged seq; the hub verifies the hash chain,
//! persists, and acknowledges. The hub streams back its **feed**: entries other replicas made
//! that every store needs (member registrations and profile edits today; HQ entries later),
//! numbered by a dense feed position. Catch-up after any outage is "everything after k" on both
//! directions, so it costs what changed, never the size of the database.
//!
//! Version 5 carries members' keys (`crate::seal`) beside the log, never in it: a store sends
//! [`StoreMsg::Keys`] for the members a push registers, right before it; the hub sends
//! [`HubMsg::Keys`] for the members a feed batch registers or erases (`None`: erased), right
//! before it. Each end hands the keys out with the entries they unlock, to be written in the
//! same batch. An edit needs no key: its receiver has the member's from their registration.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::entry::{ChainError, ChainTip, Entry, EntryError, EntryHash, Payload, Sealed};
use crate::ids::{MemberId, StoreId, TxId};
use crate::seal::MemberKey;
use crate::wallet::Counter;

/// ALPN names the protocol family; the version is agreed in `Hello` / `Welcome`.
pub const ALPN: &[u8] = b"chain-sync/1";
/// The versions this build speaks, best first.
pub const VERSIONS: &[u16] = &[6, 5, 4, 3, 2, 1];
/// A deflated frame may not inflate beyond this (a small frame that would inflate to gigabytes
/// is refused, not allocated).
pub const INFLATED_BYTES_MAX: usize = FRAME_BYTES_MAX;
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
    /// Version 2's push: consecutive entries with `prev_hash` zeroed (it is what the hub's copy
    /// of the log says it is), and `tip`, the hash of the last entry as the store wrote it.
    PushChained {
        log_len: u64,
        tip: EntryHash,
        entries: Vec<Vec<u8>>,
    },
    /// Version 3's ask: with what the store holds of each wanted counter, and how long its
    /// log was when it did.
    AskHolding {
        ask: Ask,
        log_len: u64,
        held: Vec<u64>,
    },
    /// Version 4: the store's clock (ms since the epoch) when it heard the hub's, so
    /// headquarters sees a store whose clock is off.
    Clock { now_ms: u64 },
    /// Version 5: the keys of the members the next push registers.
    Keys(Vec<(MemberId, MemberKey)>),
}

/// A store's request for rights: `wants` units of each counter of `member`'s wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// Derived from the till's idempotency key, so a retry is the same ask.
    pub id: TxId,
    pub member: MemberId,
    pub wants: Vec<(Counter, u64)>,
    /// What the store holds (version 3; `None` from an older store, and for headquarters' own
    /// placements). On the wire it travels beside the ask ([`StoreMsg::AskHolding`]).
    #[serde(skip)]
    pub holding: Option<Holding>,
}

/// What a store held of each counter it asks for (`held`, in the order of `wants`) when its
/// log had `log_len` entries. Headquarters serves the ask once it holds that much of the log,
/// so it knows every spend the store made; then rights it moved there that the store had not
/// yet seen count toward the ask. Without this, a store that asked while a grant (a placement
/// ahead of need) was on its way was refused: headquarters counted the rights as there already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub log_len: u64,
    pub held: Vec<u64>,
}

impl Ask {
    /// What the store still needs moved to it, given what headquarters thinks it holds of
    /// each counter (`held_at_hq`): the store aims at what it held plus what it wants.
    pub fn needs(&self, held_at_hq: impl Fn(&Counter) -> u64) -> Vec<(Counter, u64)> {
        let Some(holding) = &self.holding else {
            return self.wants.clone();
        };
        self.wants
            .iter()
            .zip(&holding.held)
            .map(|((counter, want), held)| {
                let aim = held.saturating_add(*want);
                (counter.clone(), aim.saturating_sub(held_at_hq(counter)))
            })
            .filter(|(_, need)| *need > 0)
            .collect()
    }
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
    /// Version 6: the balance would cover it, but the rights headquarters lacks are at these
    /// stores, which cannot be reached now (or did not hand them back in time; then the list
    /// may be empty). The store's offline overdraft policy may decide, as when headquarters
    /// itself is out of reach. Before version 6 this is sent as `Refused`.
    Unreachable {
        holders: Vec<StoreId>,
    },
}

impl AskAnswer {
    /// The answer as a store speaking `version` can read it.
    pub fn for_version(self, version: u16) -> AskAnswer {
        match self {
            AskAnswer::Unreachable { holders } if version < 6 => AskAnswer::Refused {
                reason: unreachable_reason(&holders),
            },
            answer => answer,
        }
    }
}

/// Why rights could not be moved when their holders are out of reach, in words.
pub fn unreachable_reason(holders: &[StoreId]) -> String {
    match holders {
        [] => "the stores holding these rights did not hand them back in time".to_owned(),
        _ => {
            let names: Vec<&str> = holders.iter().map(StoreId::as_str).collect();
            format!(
                "the rights are held at {}, which headquarters cannot reach now",
                names.join(", ")
            )
        }
    }
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
    /// Version 4: the hub's clock (ms since the epoch) as it welcomed the store: the chain's
    /// time, which a store whose own clock is off goes by.
    Clock {
        now_ms: u64,
    },
    /// Version 5: the keys of the members the next feed batch registers or erases; `None` for
    /// a member headquarters erased.
    Keys(Vec<(MemberId, Option<MemberKey>)>),
}

/// The most keys one `Keys` message may carry: one per entry of a push or feed batch.
pub const KEYS_MAX: usize = 4 * PUSH_ENTRIES_MAX;

/// The members whose profile these encoded entries change or erase, each once, in order.
/// Bytes that do not decode change nobody.
pub fn members_changed<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<MemberId> {
    members_in(entries, true)
}

/// The members these encoded entries register or erase, each once, in order: whose keys go
/// with them. An edit needs none: whoever receives it holds the member's key already (it came
/// with their registration), or has erased them.
pub fn members_keyed<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<MemberId> {
    members_in(entries, false)
}

fn members_in<'a>(entries: impl IntoIterator<Item = &'a [u8]>, edits: bool) -> Vec<MemberId> {
    let mut out: Vec<MemberId> = Vec::new();
    for bytes in entries {
        let Ok(entry) = Entry::decode(bytes) else {
            continue;
        };
        let member = match entry.payload {
            Payload::MemberRegistered { member_id, .. } | Payload::MemberErased { member_id } => {
                member_id
            }
            Payload::MemberEdited { member_id, .. } if edits => member_id,
            _ => continue,
        };
        if !out.contains(&member) {
            out.push(member);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("no common protocol version (peer offers {0:?}, we speak {VERSIONS:?})")]
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
    Codec::PLAIN.encode(msg)
}

/// The best version both ends speak, if any.
pub fn negotiate(offered: &[u16]) -> Option<u16> {
    VERSIONS.iter().copied().find(|v| offered.contains(v))
}

/// An encoded entry as a push under `version` (2 or later) carries it: `prev_hash` zeroed (32
/// bytes that deflate to almost nothing) and, from version 3, a member change made thin
/// ([`crate::thin`]). Bytes that do not decode go as they are, for the hub to refuse.
fn for_push(bytes: &[u8], version: u16) -> Vec<u8> {
    match Entry::decode(bytes) {
        Ok(mut entry) => {
            entry.prev_hash = EntryHash::GENESIS;
            if version >= 3 {
                thin_in(&mut entry);
            }
            entry.encode()
        }
        Err(_) => bytes.to_vec(),
    }
}

/// An encoded entry with its member change made thin ([`crate::thin`]), as the feed carries it
/// from version 3; anything else as it is.
fn thin_entry(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut entry) = Entry::decode(&bytes) else {
        return bytes;
    };
    match thin_in(&mut entry) {
        true => entry.encode(),
        false => bytes,
    }
}

/// Makes `entry`'s member change thin; false when it changes no member.
fn thin_in(entry: &mut Entry) -> bool {
    let Some((_, change)) = member_change(&mut entry.payload) else {
        return false;
    };
    *change = crate::thin::thin(change);
    true
}

/// Makes `entry`'s member change whole, if it has one; returns the member and the change.
fn thicken_in(
    entry: &mut Entry,
    mut known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Option<(MemberId, &[u8])>, crate::thin::UnknownDependency> {
    let Some((member, change)) = member_change(&mut entry.payload) else {
        return Ok(None);
    };
    *change = crate::thin::thicken(change, |prefix| known(&member, prefix))?;
    Ok(Some((member, change)))
}

/// An encoded entry with its member change made whole again ([`crate::thin::thicken`]), the
/// dependencies found by `known` (the receiver's change of that member whose hash starts with
/// the given bytes). Bytes that do not decode, and entries that change no member, come back as
/// they are.
pub fn thicken_entry(
    bytes: Vec<u8>,
    known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Vec<u8>, crate::thin::UnknownDependency> {
    let Ok(mut entry) = Entry::decode(&bytes) else {
        return Ok(bytes);
    };
    match thicken_in(&mut entry, known)? {
        Some(_) => Ok(entry.encode()),
        None => Ok(bytes),
    }
}

fn member_change(payload: &mut Payload) -> Option<(MemberId, &mut Vec<u8>)> {
    match payload {
        Payload::MemberRegistered { member_id, change }
        | Payload::MemberEdited { member_id, change } => Some((*member_id, change)),
        _ => None,
    }
}

/// The entries of a version 3 push with their member changes made whole again: a dependency is
/// found among the changes earlier in the push or by `known` (the receiver's changes of that
/// member whose hash starts with the given bytes). Bytes that do not decode go as they are, for
/// the session to refuse.
fn thicken_push(
    entries: Vec<Vec<u8>>,
    mut known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut earlier: Vec<(MemberId, [u8; 32])> = Vec::new();
    entries
        .into_iter()
        .map(|bytes| {
            let Ok(mut entry) = Entry::decode(&bytes) else {
                return Ok(bytes);
            };
            let thickened = thicken_in(&mut entry, |member, prefix| {
                earlier
                    .iter()
                    .find(|(m, h)| m == member && h.starts_with(prefix))
                    .map(|(_, h)| *h)
                    .or_else(|| known(member, prefix))
            })
            .map_err(|e| SyncError::Malformed(e.to_string()))?;
            let Some((member, change)) = thickened else {
                return Ok(bytes);
            };
            if let Some(hash) = crate::thin::change_hash(change) {
                earlier.push((member, hash));
            }
            Ok(entry.encode())
        })
        .collect()
}

/// How frame bodies are written on a session: plain postcard until the versions are agreed and
/// under version 1, deflated postcard under version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    deflate: bool,
    /// Deflate's level for what this end writes (reading does not depend on it).
    level: u32,
}

impl Codec {
    pub const PLAIN: Codec = Codec {
        deflate: false,
        level: 6,
    };

    /// The codec of the frames after `Hello` / `Welcome` under `version`.
    pub fn for_version(version: u16) -> Codec {
        Codec {
            deflate: version >= 2,
            ..Codec::PLAIN
        }
    }

    /// Deflate's fastest level: for the hub's feed, which it writes once for every store
    /// that reads it.
    pub fn fast(self) -> Codec {
        Codec { level: 1, ..self }
    }

    /// A frame: a 4-byte big-endian length, then the body.
    ///
    /// # Panics
    /// If postcard cannot serialise the message (a type it does not support: a bug) or deflate
    /// fails writing into memory; an empty frame must never stand for a message.
    #[allow(clippy::expect_used)]
    pub fn encode<T: Serialize>(&self, msg: &T) -> Vec<u8> {
        let mut body = postcard::to_stdvec(msg).expect("every sync message serialises");
        if self.deflate {
            let mut z = flate2::write::DeflateEncoder::new(
                Vec::with_capacity(body.len() / 2),
                flate2::Compression::new(self.level),
            );
            z.write_all(&body).expect("deflating into memory");
            body = z.finish().expect("deflating into memory");
        }
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend((body.len() as u32).to_be_bytes());
        frame.extend(body);
        frame
    }

    /// The codec of the store's frames after `msg`, as the hub reads them: a `Hello` settles it.
    pub fn after_store_msg(self, msg: &StoreMsg) -> Codec {
        match msg {
            StoreMsg::Hello { versions, .. } => {
                Codec::for_version(negotiate(versions).unwrap_or(1))
            }
            _ => self,
        }
    }

    /// The codec of the hub's frames after `msg`, as the store reads them: a `Welcome` settles
    /// it.
    pub fn after_hub_msg(self, msg: &HubMsg) -> Codec {
        match msg {
            HubMsg::Welcome { version, .. } => Codec::for_version(*version),
            _ => self,
        }
    }

    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, SyncError> {
        if !self.deflate {
            return decode_body(body);
        }
        let mut plain = Vec::new();
        let read = flate2::read::DeflateDecoder::new(body)
            .take(INFLATED_BYTES_MAX as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| SyncError::Malformed(format!("deflate: {e}")))?;
        if read > INFLATED_BYTES_MAX {
            return Err(SyncError::FrameTooLarge(read));
        }
        decode_body(&plain)
    }
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
        match msg {
            StoreMsg::PushChained {
                log_len,
                tip,
                entries,
            } if self.version >= 3 => Ok(StoreMsg::PushChained {
                log_len,
                tip,
                entries: thicken_push(entries, known)?,
            }),
            other => Ok(other),
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
        let payloads = (1..=n).map(|seq| Payload::MemberEdited {
            member_id: MemberId::mint(1, 1),
            change: vec![seq as u8],
        });
        chained(origin, payloads)
    }

    /// `origin`'s log of these payloads, seq 1 on, each entry linked to the one before.
    fn chained(origin: &str, payloads: impl IntoIterator<Item = Payload>) -> Vec<Entry> {
        let mut tip = ChainTip::GENESIS;
        payloads
            .into_iter()
            .zip(1..)
            .map(|(payload, seq)| {
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
                    payload,
                };
                tip = tip.extend(&store(origin), &e).unwrap();
                e
            })
            .collect()
    }

    /// Runs a store session against a hub session in memory until both are quiet; the hub's
    /// persistence is `held`, which starts at `hub_has` entries.
    /// The hash of a change of `member` among `entries` that starts with `prefix`.
    fn known_in(entries: &[Entry], member: &MemberId, prefix: &[u8]) -> Option<[u8; 32]> {
        entries.iter().find_map(|e| match &e.payload {
            Payload::MemberRegistered { member_id, change }
            | Payload::MemberEdited { member_id, change }
                if member_id == member =>
            {
                crate::thin::change_hash(change).filter(|h| h.starts_with(prefix))
            }
            _ => None,
        })
    }

    /// A store's log of real member changes: registrations, then edits of each, interleaved.
    fn member_log(members: u64, edits: usize) -> Vec<Entry> {
        use crate::member::{MemberDoc, ProfilePatch};
        let s001 = store("S001");
        let mut docs = Vec::new();
        let mut payloads = Vec::new();
        for m in 0..members {
            let profile = crate::member::tests::sample("S001");
            let (doc, change) = MemberDoc::create(&s001, 1_000, &profile).unwrap();
            docs.push(doc);
            payloads.push(Payload::MemberRegistered {
                member_id: MemberId::mint(1, u128::from(m)),
                change,
            });
        }
        for e in 0..edits {
            for (m, doc) in docs.iter_mut().enumerate() {
                let patch = ProfilePatch {
                    name: Some(format!("会员{m}-{e}")),
                    ..ProfilePatch::default()
                };
                let change = doc.edit(&s001, 2_000 + e as i64, &patch).unwrap().unwrap();
                payloads.push(Payload::MemberEdited {
                    member_id: MemberId::mint(1, m as u128),
                    change,
                });
            }
        }
        chained("S001", payloads)
    }

    /// Version 3 pushes member changes thin; the hub rebuilds them byte for byte from what it
    /// holds (earlier in the push or from before), whatever it already had, and a thin push
    /// the hub does not thicken breaks the chain.
    #[test]
    fn member_changes_go_thin_and_arrive_whole() {
        let entries = member_log(40, 3);
        for hub_has in [0, 1, 40, 41, 100, 160] {
            let (held, up) = exchange(&entries, hub_has);
            assert_eq!(held, entries, "hub_has = {hub_has}");
            assert_eq!(up.version(), 6);
        }
        let bytes = |version| -> usize {
            entries
                .iter()
                .map(|e| for_push(&e.encode(), version).len())
                .sum()
        };
        let (v2, v3) = (bytes(2), bytes(3));
        assert!(v3 == v2, "thin changes keep their length: {v2} → {v3}");
        let zeros = |version| -> usize {
            entries
                .iter()
                .map(|e| for_push(&e.encode(), version))
                .map(|b| b.iter().filter(|x| **x == 0).count())
                .sum()
        };
        // 120 edits × (4 + 24) bytes and 40 registrations × 4 made zero, at least.
        assert!(
            zeros(3) >= zeros(2) + 120 * 28 + 40 * 4 - 200,
            "{} {}",
            zeros(2),
            zeros(3)
        );
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: VERSIONS.to_vec(),
            store: store("S001"),
            log_len: 2,
            feed_applied: 0,
        })
        .unwrap();
        let thin = StoreMsg::PushChained {
            log_len: 2,
            tip: entries[1].hash(),
            entries: vec![
                for_push(&entries[0].encode(), 3),
                for_push(&entries[1].encode(), 3),
            ],
        };
        assert!(matches!(hub.handle(thin.clone()), Err(SyncError::Chain(_))));
        // The feed carries them thin from version 3, whole before; made whole again, they are
        // the bytes the store wrote.
        for (offers, thin) in [(VERSIONS.to_vec(), true), (vec![2, 1], false)] {
            let mut hub = HubSession::new(store("S002"), ChainTip::GENESIS);
            hub.handle(StoreMsg::Hello {
                versions: offers,
                store: store("S002"),
                log_len: 0,
                feed_applied: 0,
            })
            .unwrap();
            while hub.poll_transmit().is_some() {}
            let whole = entries[40].encode();
            hub.feed(
                1,
                vec![FeedItem {
                    position: 1,
                    entry: whole.clone(),
                }],
                Vec::new(),
            );
            let Some(HubMsg::Feed { items, .. }) = hub.poll_transmit() else {
                panic!("a feed");
            };
            assert_eq!(items[0].entry != whole, thin);
            let back = thicken_entry(items[0].entry.clone(), |m, p| known_in(&entries[..1], m, p))
                .unwrap();
            assert_eq!(back, whole);
        }
        // An edit whose registration the hub never had cannot be made whole.
        let lonely = StoreMsg::PushChained {
            log_len: 41,
            tip: entries[40].hash(),
            entries: vec![for_push(&entries[40].encode(), 3)],
        };
        assert!(matches!(
            hub.thicken(lonely, |_, _| None),
            Err(SyncError::Malformed(_))
        ));
    }

    fn exchange(entries: &[Entry], hub_has: usize) -> (Vec<Entry>, UplinkSession) {
        let mut held: Vec<Entry> = entries[..hub_has].to_vec();
        let tip = ChainTip::GENESIS.extend_all(&store("S001"), &held).unwrap();
        let mut hub = HubSession::new(store("S001"), tip);
        let mut up = UplinkSession::new(store("S001"), entries.len() as u64, 0);
        let (mut to_hub, mut to_store) = (Codec::PLAIN, Codec::PLAIN);
        loop {
            let mut moved = false;
            while let Some(range) = up.poll_push() {
                let batch = entries[*range.start() as usize - 1..=*range.end() as usize - 1]
                    .iter()
                    .map(Entry::encode)
                    .collect();
                up.push(batch, Vec::new());
            }
            // Frames both ways, each end's reader following the agreed version.
            while let Some(frame) = up.poll_frame() {
                let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
                let msg: StoreMsg = to_hub.decode(&frame[4..4 + len]).unwrap();
                to_hub = to_hub.after_store_msg(&msg);
                let msg = hub
                    .thicken(msg, |member, prefix| known_in(&held, member, prefix))
                    .unwrap();
                hub.handle(msg).unwrap();
                moved = true;
            }
            while let Some(event) = hub.poll_event() {
                if let HubEvent::Persist { entries, .. } = event {
                    held.extend(entries.into_iter().map(|s| s.entry));
                    hub.persisted(held.len() as u64);
                }
            }
            while let Some(frame) = hub.poll_frame() {
                let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
                let msg: HubMsg = to_store.decode(&frame[4..4 + len]).unwrap();
                to_store = to_store.after_hub_msg(&msg);
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

    /// Version 3 sends what the store holds beside its ask; an older hub gets the ask alone,
    /// and a holding that does not match the ask closes the stream.
    #[test]
    fn clocks_are_exchanged_from_version_4() {
        for (offers, version) in [(vec![4, 3, 2, 1], 4), (vec![3, 2, 1], 3)] {
            let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
            hub.handle(StoreMsg::Hello {
                versions: offers,
                store: store("S001"),
                log_len: 0,
                feed_applied: 0,
            })
            .unwrap();
            hub.clock(1_000_000);
            let mut up = UplinkSession::new(store("S001"), 0, 0);
            while up.poll_frame().is_some() {}
            while let Some(msg) = hub.poll_transmit() {
                up.handle(msg).unwrap();
            }
            let mut heard = None;
            while let Some(event) = up.poll_event() {
                if let UplinkEvent::Clock { hub_ms } = event {
                    heard = Some(hub_ms);
                }
            }
            assert_eq!(heard, (version == 4).then_some(1_000_000));
            up.clock(400_000);
            let mut told = None;
            while let Some(msg) = up.poll_transmit() {
                hub.handle(msg).unwrap();
            }
            while let Some(event) = hub.poll_event() {
                if let HubEvent::Clock { store_ms } = event {
                    told = Some(store_ms);
                }
            }
            assert_eq!(told, (version == 4).then_some(400_000));
        }
        // Out of turn, it is a protocol error.
        let mut up = UplinkSession::new(store("S001"), 0, 0);
        assert!(up.handle(HubMsg::Clock { now_ms: 1 }).is_err());
    }

    /// Members' keys go beside the entries they unlock, never in them: a store's right before
    /// its push, the hub's right before its feed batch, each handed out with those entries.
    #[test]
    fn keys_travel_beside_the_entries_from_version_5() {
        let key = |b: u8| crate::seal::MemberKey::from_bytes([b; 32]);
        let member = MemberId::mint(1, 1);
        for (offers, version) in [(vec![5, 4, 3, 2, 1], 5), (vec![4, 3, 2, 1], 4)] {
            let entries = log("S001", 2);
            assert_eq!(
                members_changed(
                    entries
                        .iter()
                        .map(Entry::encode)
                        .collect::<Vec<_>>()
                        .iter()
                        .map(Vec::as_slice)
                ),
                vec![member]
            );
            let mut up = UplinkSession::offering(store("S001"), 2, 0, &offers);
            let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
            while let Some(msg) = up.poll_transmit() {
                hub.handle(msg).unwrap();
            }
            while let Some(msg) = hub.poll_transmit() {
                up.handle(msg).unwrap();
            }
            up.push(
                entries.iter().map(Entry::encode).collect(),
                vec![(member, key(7))],
            );
            while let Some(msg) = up.poll_transmit() {
                hub.handle(msg).unwrap();
            }
            let persisted = std::iter::from_fn(|| hub.poll_event())
                .find_map(|e| match e {
                    HubEvent::Persist { keys, .. } => Some(keys),
                    _ => None,
                })
                .unwrap();
            let sent = if version == 5 {
                vec![(member, key(7))]
            } else {
                Vec::new()
            };
            assert_eq!(persisted, sent);
            hub.feed(
                1,
                Vec::new(),
                vec![(member, None), (MemberId::mint(2, 2), Some(key(8)))],
            );
            while let Some(msg) = hub.poll_transmit() {
                up.handle(msg).unwrap();
            }
            let fed = std::iter::from_fn(|| up.poll_event())
                .find_map(|e| match e {
                    UplinkEvent::Feed { keys, .. } => Some(keys),
                    _ => None,
                })
                .unwrap();
            assert_eq!(fed.len(), if version == 5 { 2 } else { 0 });
        }
        // Keys out of turn, or too many, close the stream.
        let mut up = UplinkSession::new(store("S001"), 0, 0);
        assert!(up.handle(HubMsg::Keys(vec![(member, None)])).is_err());
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        assert!(hub.handle(StoreMsg::Keys(vec![(member, key(1))])).is_err());
        hub.handle(StoreMsg::Hello {
            versions: VERSIONS.to_vec(),
            store: store("S001"),
            log_len: 0,
            feed_applied: 0,
        })
        .unwrap();
        let many = vec![(member, key(1)); KEYS_MAX + 1];
        assert!(hub.handle(StoreMsg::Keys(many)).is_err());
    }

    #[test]
    fn an_ask_says_what_the_store_holds_from_version_3() {
        let ask = |held: Vec<u64>| Ask {
            id: TxId::parse("ask-00000001").unwrap(),
            member: MemberId::mint(1, 1),
            wants: vec![(Counter::Principal, 5), (Counter::Bonus, 1)],
            holding: Some(Holding { log_len: 7, held }),
        };
        for (offers, version) in [(vec![3, 2, 1], 3), (vec![2, 1], 2)] {
            let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
            hub.handle(StoreMsg::Hello {
                versions: offers,
                store: store("S001"),
                log_len: 0,
                feed_applied: 0,
            })
            .unwrap();
            let mut up = UplinkSession::new(store("S001"), 0, 0);
            while up.poll_frame().is_some() {}
            while let Some(msg) = hub.poll_transmit() {
                up.handle(msg).unwrap();
            }
            assert_eq!(up.version(), version);
            up.ask(ask(vec![2, 0])).unwrap();
            let sent = up.poll_transmit().unwrap();
            assert_eq!(matches!(sent, StoreMsg::AskHolding { .. }), version == 3);
            hub.handle(sent).unwrap();
            while let Some(event) = hub.poll_event() {
                if let HubEvent::Ask(got) = event {
                    let expected = (version == 3).then(|| Holding {
                        log_len: 7,
                        held: vec![2, 0],
                    });
                    assert_eq!(got.holding, expected);
                    // With the holding, headquarters counts what it thinks is there already.
                    let needs = got.needs(|c| if *c == Counter::Principal { 4 } else { 0 });
                    let principal = if version == 3 { 3 } else { 5 };
                    assert_eq!(
                        needs,
                        vec![(Counter::Principal, principal), (Counter::Bonus, 1)]
                    );
                }
            }
            let mut wrong = ask(vec![2]);
            let holding = wrong.holding.take().unwrap();
            let refused = hub.handle(StoreMsg::AskHolding {
                ask: wrong,
                log_len: holding.log_len,
                held: holding.held,
            });
            match version {
                3 => assert!(matches!(refused, Err(SyncError::Malformed(_)))),
                _ => assert!(matches!(refused, Err(SyncError::Unexpected(_)))),
            }
        }
    }

    #[test]
    fn version_2_agreed_when_both_speak_it_and_its_pushes_checked_by_the_last_hash() {
        assert_eq!(negotiate(&[2, 1]), Some(2));
        assert_eq!(negotiate(&[3, 2, 1]), Some(3));
        assert_eq!(negotiate(&[4, 3, 2, 1]), Some(4));
        assert_eq!(negotiate(&[5, 4, 3, 2, 1]), Some(5));
        assert_eq!(negotiate(&[1]), Some(1));
        assert_eq!(negotiate(&[99]), None);
        let entries = log("S001", 3);
        let (held, up) = exchange(&entries, 0);
        assert_eq!((held, up.version()), (entries.clone(), 6));
        // The batch's hash must match what the hub links up: an entry changed on the way is
        // refused, and so is version 2's push on a version 1 session.
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        let hello = |versions| StoreMsg::Hello {
            versions,
            store: store("S001"),
            log_len: 3,
            feed_applied: 0,
        };
        hub.handle(hello(vec![2, 1])).unwrap();
        let mut changed = entries[1].clone();
        changed.hlc.wall_ms += 1;
        let mut batch: Vec<Vec<u8>> = entries.iter().map(without_prev_hash_of).collect();
        batch[1] = without_prev_hash_of(&changed);
        let push = StoreMsg::PushChained {
            log_len: 3,
            tip: entries[2].hash(),
            entries: batch,
        };
        assert!(matches!(
            hub.handle(push.clone()),
            Err(SyncError::Chain(ChainError::BrokenLink { seq: 3 }))
        ));
        let mut v1 = HubSession::new(store("S001"), ChainTip::GENESIS);
        v1.handle(hello(vec![1])).unwrap();
        assert!(matches!(v1.handle(push), Err(SyncError::Unexpected(_))));
    }

    fn without_prev_hash_of(entry: &Entry) -> Vec<u8> {
        for_push(&entry.encode(), 2)
    }

    #[test]
    fn a_deflated_frame_that_inflates_too_far_is_refused() {
        let codec = Codec::for_version(2);
        let huge = StoreMsg::Push {
            log_len: 1,
            entries: vec![vec![0; INFLATED_BYTES_MAX]],
        };
        let frame = codec.encode(&huge);
        assert!(frame.len() < FRAME_BYTES_MAX, "zeros deflate to little");
        assert!(matches!(
            codec.decode::<StoreMsg>(&frame[4..]),
            Err(SyncError::FrameTooLarge(_))
        ));
        assert!(matches!(
            codec.decode::<StoreMsg>(b"not deflate at all"),
            Err(SyncError::Malformed(_))
        ));
    }

    #[test]
    fn resent_entries_are_skipped_and_gaps_or_tampering_refused() {
        let entries = log("S001", 3);
        let tip = ChainTip::GENESIS
            .extend_all(&store("S001"), &entries[..2])
            .unwrap();
        let mut hub = HubSession::new(store("S001"), tip);
        let hello = StoreMsg::Hello {
            versions: vec![1],
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
            versions: vec![1],
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
            versions: vec![1],
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
            versions: vec![1],
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
            versions: vec![1],
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
                version: 2,
                acked_seq: 9
            }),
            Err(SyncError::HubAhead { .. })
        ));
        let mut up = UplinkSession::new(store("S001"), 5, 0);
        up.handle(HubMsg::Welcome {
            version: 2,
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
