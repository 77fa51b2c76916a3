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
//!
//! Version 7 routes the feed (`crate::route`): a member's wallet changes go only to the stores
//! that follow the member ([`StoreMsg::Follow`]) or that their rights writes name; a new
//! follower gets the member's history once ([`HubMsg::Backfill`]). An older store still gets
//! every entry.
//!
//! Version 8 restores a store that is behind headquarters' copy of its own log (its data came
//! back from an older backup, or a new PC was enrolled for it): instead of refusing, the hub
//! sends the store's missing entries from its copy ([`HubMsg::Restore`]), each before the feed
//! that follows it in headquarters' order ([`UplinkEvent::Behind`]); the store appends them to
//! its log as they come and writes no entry of its own until its log is whole again, so it
//! never numbers a sale twice.

mod codec;
mod hub;
#[cfg(test)]
mod tests;
mod uplink;
mod wire;

pub use codec::*;
pub use hub::*;
pub use uplink::*;
pub use wire::*;

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
pub const VERSIONS: &[u16] = &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
/// The first version in which a store behind the hub's copy of its log is restored.
pub const RESTORE_VERSION: u16 = 8;
/// The first version in which a store renews its certificate over the session.
pub const RENEW_VERSION: u16 = 9;
/// The first version in which a store that does not follow a member gets their directory
/// listing in place of their profile changes (`crate::listing`).
pub const LISTED_VERSION: u16 = 10;
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

/// The members whose profile these encoded entries change or erase, each once, in order.
/// Bytes that do not decode change nobody.
pub fn members_changed<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<MemberId> {
    members_in(entries, true)
}

/// The members these encoded entries register, list or erase, each once, in order: whose keys
/// go with them (a listing may be the first a store hears of a member). An edit needs none: whoever receives it holds the member's key already (it came
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
            Payload::MemberRegistered { member_id, .. }
            | Payload::MemberErased { member_id }
            | Payload::MemberListed { member_id, .. } => member_id,
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
