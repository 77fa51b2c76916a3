//! Which members this store follows at headquarters (the routed feed, `protocol::route`).
//!
//! A store holds the whole member directory (lookup offline by phone or card), but a member's
//! wallet changes reach it only once it follows the member. It follows a member as soon as it
//! writes for them (a registration, a sale, a top-up), is granted their rights, or a till looks
//! them up; headquarters then sends the member's earlier changes once (a backfill) and routes
//! the later ones here. Three records, beside the views (not rebuilt from the log):
//!
//! - `fp/<member>`: followed, the history not here yet: the balance shown is partial, and a
//!   stored-value payment waits for the backfill (or, offline, is refused: the payment password
//!   may have been set at another store).
//! - `fa/<member>`: whole here, headquarters not told yet (a member registered here, or a
//!   store that held every wallet before the feed was routed).
//! - `fw/<member>`: whole here and followed at headquarters.
//!
//! The uplink tells headquarters of every `fp/` and `fa/` member at each connection; a
//! backfill's last message turns either into `fw/`.

use protocol::MemberId;

use crate::store::{Store, StoreError};
use crate::views::Overlay;

const PENDING: &[u8] = b"fp/";
const ANNOUNCE: &[u8] = b"fa/";
const WHOLE: &[u8] = b"fw/";
/// Set once the records above were started (the upgrade of a store that held every wallet).
pub const STARTED: &[u8] = b"meta/follows_started";

fn key(prefix: &[u8], member: &MemberId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend(member.to_string().as_bytes());
    key
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not followed: only what this store wrote itself, and rights moved to it.
    No,
    /// Followed; the member's earlier changes are on their way.
    Pending,
    /// Every change to the member's wallet that headquarters holds is here or on its way in
    /// the feed.
    Whole,
}

pub fn state(ov: &Overlay<'_>, member: &MemberId) -> Result<State, StoreError> {
    if ov.get(&key(WHOLE, member))?.is_some() || ov.get(&key(ANNOUNCE, member))?.is_some() {
        Ok(State::Whole)
    } else if ov.get(&key(PENDING, member))?.is_some() {
        Ok(State::Pending)
    } else {
        Ok(State::No)
    }
}

/// Follows `member` if this store does not yet; true when it starts to.
pub fn want(ov: &mut Overlay<'_>, member: &MemberId) -> Result<bool, StoreError> {
    if state(ov, member)? != State::No {
        return Ok(false);
    }
    ov.put(key(PENDING, member), Vec::new());
    Ok(true)
}

/// `member` is whole here already (registered here): headquarters is still to be told.
pub fn whole_here(ov: &mut Overlay<'_>, member: &MemberId) -> Result<bool, StoreError> {
    if state(ov, member)? == State::Whole {
        return Ok(false);
    }
    ov.delete(key(PENDING, member));
    ov.put(key(ANNOUNCE, member), Vec::new());
    Ok(true)
}

/// Headquarters does not know that this store follows `member`, whole here (it sent their
/// listing): to be told again; true when it was not about to be.
pub fn announce_again(ov: &mut Overlay<'_>, member: &MemberId) -> Result<bool, StoreError> {
    if ov.get(&key(WHOLE, member))?.is_none() {
        return Ok(false);
    }
    ov.delete(key(WHOLE, member));
    ov.put(key(ANNOUNCE, member), Vec::new());
    Ok(true)
}

/// Headquarters sent the member's history and routes the rest here.
pub fn completed(ov: &mut Overlay<'_>, member: &MemberId) {
    ov.delete(key(PENDING, member));
    ov.delete(key(ANNOUNCE, member));
    ov.put(key(WHOLE, member), Vec::new());
}

/// The members headquarters is to be told of (followed, not confirmed).
pub fn to_announce(store: &dyn Store) -> Result<Vec<MemberId>, StoreError> {
    let mut out = Vec::new();
    for prefix in [PENDING, ANNOUNCE] {
        for (k, _) in store.scan_prefix(prefix)? {
            let id = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|s| MemberId::parse(s).ok())
                .ok_or_else(|| StoreError::Damaged {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: "not a member id".into(),
                })?;
            out.push(id);
        }
    }
    Ok(out)
}

/// The members to tell headquarters of that `told` (those told in this session) does not hold
/// yet, added to it: what the uplink (and the simulator's) sends as `StoreMsg::Follow`.
pub fn untold(
    store: &dyn Store,
    told: &mut std::collections::HashSet<MemberId>,
) -> Result<Vec<MemberId>, StoreError> {
    Ok(to_announce(store)?
        .into_iter()
        .filter(|m| told.insert(*m))
        .collect())
}

/// Every followed member is whole: headquarters does not route (an older hub sends every
/// store everything).
pub fn all_whole(store: &dyn Store, ov: &mut Overlay<'_>) -> Result<(), StoreError> {
    for member in to_announce(store)? {
        completed(ov, &member);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn a_member_goes_from_not_followed_to_pending_to_whole_and_registered_here_is_whole_at_once() {
        let store = MemStore::default();
        let (a, b) = (MemberId::mint(1, 1), MemberId::mint(1, 2));
        let mut ov = Overlay::new(&store);
        assert_eq!(state(&ov, &a).unwrap(), State::No);
        assert!(want(&mut ov, &a).unwrap());
        assert!(!want(&mut ov, &a).unwrap(), "once");
        assert_eq!(state(&ov, &a).unwrap(), State::Pending);
        assert!(whole_here(&mut ov, &b).unwrap());
        assert_eq!(state(&ov, &b).unwrap(), State::Whole);
        store.apply(ov.into_batch()).unwrap();
        assert_eq!(to_announce(&store).unwrap(), vec![a, b]);
        let mut ov = Overlay::new(&store);
        completed(&mut ov, &a);
        completed(&mut ov, &b);
        store.apply(ov.into_batch()).unwrap();
        assert!(to_announce(&store).unwrap().is_empty());
        let ov = Overlay::new(&store);
        assert_eq!(state(&ov, &a).unwrap(), State::Whole);
        assert!(!want(&mut Overlay::new(&store), &a).unwrap());
    }
}
