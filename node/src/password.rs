//! Payment passwords (支付密码) for stored-value payments: six digits, stored only as an argon2
//! hash in the member's wallet (so every store can check it offline), with a lockout after
//! repeated failures that only a manager's reset lifts.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::MemberId;

/// Wrong passwords in a row before the member's stored value is locked at this store.
pub const FAILURES_MAX: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a payment password is six digits")]
    Format,
    #[error("wrong payment password ({left} tries left)")]
    Wrong { left: u32 },
    #[error("locked after {FAILURES_MAX} wrong payment passwords; a manager must reset it")]
    Locked,
    #[error("the stored password hash is damaged")]
    Damaged,
}

pub fn check_format(password: &str) -> Result<(), PasswordError> {
    match password.len() == 6 && password.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(()),
        false => Err(PasswordError::Format),
    }
}

/// The PHC string of `password` under a fresh 16-byte salt.
pub fn hash(password: &str, salt: [u8; 16]) -> Result<String, PasswordError> {
    check_format(password)?;
    protocol::secret::hash(password, salt).ok_or(PasswordError::Damaged)
}

fn matches(password: &str, phc: &str) -> Result<bool, PasswordError> {
    protocol::secret::matches(password, phc).ok_or(PasswordError::Damaged)
}

/// Failures counted per member at this store. Kept in memory: a restart lifts a lockout.
#[derive(Default)]
pub struct Lockout {
    failures: Mutex<HashMap<MemberId, u32>>,
}

impl Lockout {
    fn failures(&self, member: &MemberId) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(member).copied().unwrap_or(0)
    }

    /// Checks `password` against `phc` (slow on purpose: call off the async runtime).
    pub fn verify(
        &self,
        member: &MemberId,
        password: &str,
        phc: &str,
    ) -> Result<(), PasswordError> {
        if self.failures(member) >= FAILURES_MAX {
            return Err(PasswordError::Locked);
        }
        let ok = check_format(password).is_ok() && matches(password, phc)?;
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            map.remove(member);
            return Ok(());
        }
        let count = map.entry(*member).or_default();
        *count += 1;
        match FAILURES_MAX.saturating_sub(*count) {
            0 => Err(PasswordError::Locked),
            left => Err(PasswordError::Wrong { left }),
        }
    }

    /// A manager reset the password: the count starts again.
    pub fn reset(&self, member: &MemberId) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passwords_lock_until_reset() {
        let member = MemberId::mint(1, 1);
        let phc = hash("123456", [7; 16]).unwrap();
        assert!(!phc.contains("123456"));
        let lockout = Lockout::default();
        assert_eq!(lockout.verify(&member, "123456", &phc), Ok(()));
        for left in (1..FAILURES_MAX).rev() {
            assert_eq!(
                lockout.verify(&member, "654321", &phc),
                Err(PasswordError::Wrong { left })
            );
        }
        assert_eq!(
            lockout.verify(&member, "000000", &phc),
            Err(PasswordError::Locked)
        );
        assert_eq!(
            lockout.verify(&member, "123456", &phc),
            Err(PasswordError::Locked)
        );
        lockout.reset(&member);
        assert_eq!(lockout.verify(&member, "123456", &phc), Ok(()));
        assert_eq!(hash("12345", [0; 16]), Err(PasswordError::Format));
        assert_eq!(hash("12345a", [0; 16]), Err(PasswordError::Format));
    }
}
