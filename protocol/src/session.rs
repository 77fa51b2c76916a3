//! Staff sessions (登录), at a till and at headquarters: a member of staff proves who they are
//! with the password or PIN headquarters set and gets a token that expires; repeated failures
//! lock the account there for a while. Time and tokens are passed in. Sessions live in memory:
//! a restart asks everyone to log in again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::StaffId;
use crate::staff::StaffRole;

/// Wrong secrets in a row before an account is locked at this store.
pub const FAILURES_MAX: u32 = 5;
/// How long a lock lasts.
pub const LOCK_MS: u64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub staff: StaffId,
    pub role: StaffRole,
    pub expires_ms: u64,
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

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    /// Failures in a row per staff id, and when the lock (if any) ends.
    failures: Mutex<HashMap<StaffId, (u32, u64)>>,
}

impl Sessions {
    /// Refuses a login while the account is locked.
    pub fn check_lock(&self, staff: &StaffId, now_ms: u64) -> Result<(), LoginError> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(staff) {
            Some((_, until)) if *until > now_ms => Err(LoginError::Locked {
                minutes: (until - now_ms).div_ceil(60_000),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a wrong secret; the last allowed one locks the account.
    pub fn failed(&self, staff: &StaffId, now_ms: u64) -> LoginError {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(staff.clone()).or_default();
        if entry.1 <= now_ms && entry.0 >= FAILURES_MAX {
            *entry = (0, 0); // an old lock has run out: count afresh
        }
        entry.0 += 1;
        if entry.0 >= FAILURES_MAX {
            entry.1 = now_ms + LOCK_MS;
            return LoginError::Locked {
                minutes: LOCK_MS / 60_000,
            };
        }
        LoginError::Wrong {
            left: FAILURES_MAX - entry.0,
        }
    }

    /// Opens a session under `token` (the caller draws it at random); forgets expired ones.
    pub fn open(&self, token: String, session: Session, now_ms: u64) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session.staff);
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
            assert_eq!(sessions.failed(&id, 1_000), LoginError::Wrong { left });
            assert!(sessions.check_lock(&id, 1_000).is_ok());
        }
        assert!(matches!(
            sessions.failed(&id, 1_000),
            LoginError::Locked { .. }
        ));
        assert!(sessions.check_lock(&id, 1_000 + LOCK_MS - 1).is_err());
        assert!(sessions.check_lock(&id, 1_000 + LOCK_MS).is_ok());
        assert_eq!(
            sessions.failed(&id, 1_000 + LOCK_MS),
            LoginError::Wrong {
                left: FAILURES_MAX - 1
            },
            "a lock that ran out counts afresh"
        );
    }

    #[test]
    fn a_session_expires() {
        let sessions = Sessions::default();
        let session = Session {
            staff: staff("c01"),
            role: StaffRole::Cashier,
            expires_ms: 5_000,
        };
        sessions.open("t1".into(), session.clone(), 0);
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
