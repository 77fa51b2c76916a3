//! Staff sessions (登录), at a till and at headquarters: a member of staff proves who they are
//! with the password or PIN headquarters set and gets a token that expires; repeated failures
//! lock the account there for a while, for the address they came from (and for every address
//! once they add up). Time and tokens are passed in. Sessions live in memory:
//! a restart asks everyone to log in again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::StaffId;
use crate::staff::{StaffRecord, StaffRole};

/// Wrong secrets from one address within `LOCK_MS` before the account is locked for that
/// address.
pub const FAILURES_MAX: u32 = 5;
/// Wrong secrets from every address together within `LOCK_MS` before the account is locked for
/// all of them: many addresses cannot share out a guessing run (at most this many guesses per
/// `LOCK_MS`), and one address alone, locked at `FAILURES_MAX`, cannot reach it.
pub const ACCOUNT_FAILURES_MAX: u32 = 10;
/// How long a lock lasts.
pub const LOCK_MS: u64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub staff: StaffId,
    pub role: StaffRole,
    pub expires_ms: u64,
    /// The login (its argon2 hash) the session was opened with: a new or removed one ends it.
    pub credential: String,
}

/// Why a live session no longer stands, checked on every call against the staff directory as
/// it is now: access ends when headquarters ends it, not when the token expires.
pub fn revoked(
    session: &Session,
    record: Option<&StaffRecord>,
    credential: Option<&str>,
) -> Option<&'static str> {
    match record {
        None => Some("the staff member is no longer in the directory"),
        Some(r) if !r.active => Some("the staff member was deactivated"),
        Some(r) if r.role != session.role => Some("the staff member's role changed"),
        Some(_) if credential != Some(session.credential.as_str()) => {
            Some("the login was changed or removed")
        }
        Some(_) => None,
    }
}

/// What a token is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Live(Session),
    /// It was a session, now expired (and forgotten).
    Expired,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("wrong staff id or password ({left} tries left before the account is locked)")]
    Wrong { left: u32 },
    #[error("locked after {FAILURES_MAX} wrong passwords; try again in {minutes} minutes")]
    Locked { minutes: u64 },
    #[error("{0}")]
    NotHere(String),
}

/// Failures counted since `since` (ms), and when the lock they caused (if any) ends.
#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    until: u64,
    since: u64,
}
/// Failures per staff id and client address.
type ByAddress = HashMap<(StaffId, String), Failures>;

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    /// Per staff id and client address (`from`), and per staff id from every address.
    failures: Mutex<(ByAddress, HashMap<StaffId, Failures>)>,
}

/// Counts one try against `entry`, locking at `max` tries within `LOCK_MS`; refused while
/// locked.
fn count(entry: &mut Failures, max: u32, now_ms: u64) -> Result<u32, LoginError> {
    locked(Some(entry), now_ms)?;
    // A lock that ran out, or tries older than the window: count afresh.
    if entry.count >= max || entry.since.saturating_add(LOCK_MS) <= now_ms {
        *entry = Failures {
            since: now_ms,
            ..Failures::default()
        };
    }
    entry.count += 1;
    if entry.count >= max {
        entry.until = now_ms + LOCK_MS;
    }
    Ok(entry.count)
}

fn locked(entry: Option<&Failures>, now_ms: u64) -> Result<(), LoginError> {
    match entry {
        Some(f) if f.until > now_ms => Err(LoginError::Locked {
            minutes: (f.until - now_ms).div_ceil(60_000),
        }),
        _ => Ok(()),
    }
}

/// Whether `entry` still says anything at `now_ms` (a lock, or tries in the window).
fn live(entry: &Failures, now_ms: u64) -> bool {
    entry.until > now_ms || entry.since.saturating_add(LOCK_MS) > now_ms
}

impl Sessions {
    /// Refuses a login while the account is locked for `from` (a client address) or for all.
    pub fn check_lock(&self, staff: &StaffId, from: &str, now_ms: u64) -> Result<(), LoginError> {
        let maps = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        locked(maps.0.get(&(staff.clone(), from.to_owned())), now_ms)?;
        locked(maps.1.get(staff), now_ms)
    }

    /// Counts a try from `from` before its secret is checked (the check is slow on purpose):
    /// many tries at once cannot get more than the allowed number checked. The last allowed
    /// one locks the account for that address (`ACCOUNT_FAILURES_MAX` from every address
    /// together, for all) until it succeeds (`open` clears the count). Refused while locked.
    pub fn attempt(&self, staff: &StaffId, from: &str, now_ms: u64) -> Result<u32, LoginError> {
        let mut maps = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (by_address, by_account) = &mut *maps;
        // Forget what no longer counts, so many addresses cannot grow the maps for ever.
        if by_address.len() > 10_000 {
            by_address.retain(|_, f| live(f, now_ms));
            by_account.retain(|_, f| live(f, now_ms));
        }
        locked(by_account.get(staff), now_ms)?;
        let tries = count(
            by_address
                .entry((staff.clone(), from.to_owned()))
                .or_default(),
            FAILURES_MAX,
            now_ms,
        )?;
        count(
            by_account.entry(staff.clone()).or_default(),
            ACCOUNT_FAILURES_MAX,
            now_ms,
        )?;
        Ok(tries)
    }

    /// What a try counted by `attempt` (its `count`) that failed tells the caller.
    pub fn failed(&self, count: u32) -> LoginError {
        match count >= FAILURES_MAX {
            true => LoginError::Locked {
                minutes: LOCK_MS / 60_000,
            },
            false => LoginError::Wrong {
                left: FAILURES_MAX - count,
            },
        }
    }

    /// Opens a session under `token` (the caller draws it at random) for a login from `from`;
    /// forgets expired ones.
    pub fn open(&self, token: String, session: Session, from: &str, now_ms: u64) {
        {
            let mut maps = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            maps.0.remove(&(session.staff.clone(), from.to_owned()));
            maps.1.remove(&session.staff);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.expires_ms > now_ms);
        open.insert(token, session);
    }

    /// The session of `token`, if it is still live.
    pub fn get(&self, token: &str, now_ms: u64) -> Lookup {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get(token) {
            Some(s) if s.expires_ms <= now_ms => {
                open.remove(token);
                Lookup::Expired
            }
            Some(s) => Lookup::Live(s.clone()),
            None => Lookup::Unknown,
        }
    }

    pub fn close(&self, token: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(token).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(s: &str) -> StaffId {
        StaffId::parse(s).unwrap()
    }

    #[test]
    fn five_wrong_secrets_lock_the_account_for_a_while() {
        let sessions = Sessions::default();
        let id = staff("c01");
        for left in (1..FAILURES_MAX).rev() {
            let count = sessions.attempt(&id, "10.0.0.9", 1_000).unwrap();
            assert_eq!(sessions.failed(count), LoginError::Wrong { left });
            assert!(sessions.check_lock(&id, "10.0.0.9", 1_000).is_ok());
        }
        let count = sessions.attempt(&id, "10.0.0.9", 1_000).unwrap();
        assert!(matches!(sessions.failed(count), LoginError::Locked { .. }));
        assert!(
            sessions
                .check_lock(&id, "10.0.0.9", 1_000 + LOCK_MS - 1)
                .is_err()
        );
        assert!(
            sessions
                .attempt(&id, "10.0.0.9", 1_000 + LOCK_MS - 1)
                .is_err()
        );
        assert!(
            sessions.check_lock(&id, "10.0.0.2", 1_000).is_ok(),
            "the staff member's own till is not locked out"
        );
        assert!(
            sessions
                .check_lock(&id, "10.0.0.9", 1_000 + LOCK_MS)
                .is_ok()
        );
        let count = sessions.attempt(&id, "10.0.0.9", 1_000 + LOCK_MS).unwrap();
        assert_eq!(
            sessions.failed(count),
            LoginError::Wrong {
                left: FAILURES_MAX - 1
            },
            "a lock that ran out counts afresh"
        );
    }

    /// The tester's race: 100 logins at once got 8 secrets checked before the lock. Tries are
    /// counted before the slow check, so at most the allowed number are checked.
    #[test]
    fn tries_at_once_are_counted_before_their_secret_is_checked() {
        let sessions = Sessions::default();
        let id = staff("c01");
        let checked = (0..100)
            .filter(|_| sessions.attempt(&id, "10.0.0.9", 1_000).is_ok())
            .count();
        assert_eq!(checked, FAILURES_MAX as usize);
    }

    /// Guesses shared out over many addresses lock the account everywhere once they add up.
    #[test]
    fn guesses_from_many_addresses_lock_the_account_for_all() {
        let sessions = Sessions::default();
        let id = staff("c01");
        let checked = (0..50)
            .filter(|i| {
                let from = format!("10.0.{}.1", i / 2);
                sessions.attempt(&id, &from, 1_000).is_ok()
            })
            .count();
        assert_eq!(checked, ACCOUNT_FAILURES_MAX as usize);
        // One address that waits out its own lock again and again never locks the others.
        let alone = Sessions::default();
        for round in 0..10 {
            let at = 1_000 + round * LOCK_MS;
            for _ in 0..FAILURES_MAX {
                alone.attempt(&id, "10.0.0.9", at).unwrap();
            }
            assert!(
                alone.check_lock(&id, "10.0.0.2", at).is_ok(),
                "round {round}"
            );
        }
        assert!(sessions.check_lock(&id, "10.9.9.9", 1_000).is_err());
        let session = Session {
            staff: id.clone(),
            role: StaffRole::Cashier,
            expires_ms: 5_000,
            credential: "hash".into(),
        };
        sessions.open("t".into(), session, "10.9.9.9", 1_000 + LOCK_MS);
        assert!(
            sessions
                .check_lock(&id, "10.9.9.9", 1_000 + LOCK_MS)
                .is_ok()
        );
    }

    #[test]
    fn a_session_ends_when_its_staff_member_is_deactivated_demoted_or_their_login_changes() {
        let session = Session {
            staff: staff("m01"),
            role: StaffRole::Manager,
            expires_ms: 5_000,
            credential: "hash-1".into(),
        };
        let record = StaffRecord {
            id: staff("m01"),
            name: "店长".into(),
            store: None,
            role: StaffRole::Manager,
            active: true,
        };
        assert_eq!(revoked(&session, Some(&record), Some("hash-1")), None);
        assert!(revoked(&session, None, Some("hash-1")).is_some());
        let gone = StaffRecord {
            active: false,
            ..record.clone()
        };
        assert!(revoked(&session, Some(&gone), Some("hash-1")).is_some());
        let demoted = StaffRecord {
            role: StaffRole::Cashier,
            ..record.clone()
        };
        assert!(revoked(&session, Some(&demoted), Some("hash-1")).is_some());
        assert!(revoked(&session, Some(&record), Some("hash-2")).is_some());
        assert!(revoked(&session, Some(&record), None).is_some());
    }

    #[test]
    fn a_session_expires() {
        let sessions = Sessions::default();
        let session = Session {
            staff: staff("c01"),
            role: StaffRole::Cashier,
            expires_ms: 5_000,
            credential: "hash".into(),
        };
        sessions.open("t1".into(), session.clone(), "10.0.0.9", 0);
        assert_eq!(sessions.get("t1", 4_999), Lookup::Live(session));
        assert_eq!(sessions.get("t1", 5_000), Lookup::Expired);
        assert_eq!(
            sessions.get("t1", 4_000),
            Lookup::Unknown,
            "gone once expired"
        );
        assert_eq!(sessions.get("nope", 0), Lookup::Unknown);
    }
}
