//! Payment passwords (支付密码) for stored-value payments: six digits, stored only as an argon2
//! hash in the member's wallet (so every store can check it offline). Wrong passwords are
//! facts of the log (`WalletEvent::PasswordFailed`) in the member's wallet, so they count at
//! every store and survive a restart: `PASSWORD_FAILURES_MAX` within a day lock the member's
//! password payments everywhere until the day is out or a manager sets a new password. Each try
//! is counted here before its slow hash (`Tries`), so tries made at once cannot outrun it.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::MemberId;
pub use protocol::wallet::PASSWORD_FAILURES_MAX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a payment password is six digits")]
    Format,
    #[error("wrong payment password ({left} tries left)")]
    Wrong { left: usize },
    #[error(
        "locked after {PASSWORD_FAILURES_MAX} wrong payment passwords in a day: try again \
         after it lapses, or a manager sets a new one"
    )]
    Locked,
    #[error("the stored password hash is damaged")]
    Damaged,
}

pub fn check_format(password: &str) -> Result<(), PasswordError> {
    match protocol::secret::is_payment_password(password) {
        true => Ok(()),
        false => Err(PasswordError::Format),
    }
}

/// The PHC string of `password` under a fresh 16-byte salt.
pub fn hash(password: &str, salt: [u8; 16]) -> Result<String, PasswordError> {
    check_format(password)?;
    protocol::secret::hash(password, salt).ok_or(PasswordError::Damaged)
}

/// Whether `password` is the one hashed in `phc` (slow on purpose: call off the async runtime).
pub fn matches(password: &str, phc: &str) -> Result<bool, PasswordError> {
    if check_format(password).is_err() {
        return Ok(false);
    }
    protocol::secret::matches(password, phc).ok_or(PasswordError::Damaged)
}

/// Tries being checked at this store now, per member: a try is taken before the hash and
/// given back after it (and after a wrong one is on record), so the tries in flight and the
/// failures on record never add up to more than the limit.
#[derive(Default)]
pub struct Tries {
    in_flight: Mutex<HashMap<MemberId, usize>>,
}

/// One try, given back when dropped.
pub struct Try<'a> {
    tries: &'a Tries,
    member: MemberId,
}

impl Tries {
    /// Takes a try for `member`, who has `failed()` wrong passwords on record that still count
    /// (read while the tries are held still, so a try given back after its failure was written
    /// cannot be missed by both counts).
    pub fn take<E>(
        &self,
        member: MemberId,
        failed: impl FnOnce() -> Result<usize, E>,
    ) -> Result<Result<Try<'_>, PasswordError>, E> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let failed = failed()?;
        let in_flight = map.entry(member).or_default();
        if failed + *in_flight >= PASSWORD_FAILURES_MAX {
            return Ok(Err(PasswordError::Locked));
        }
        *in_flight += 1;
        Ok(Ok(Try {
            tries: self,
            member,
        }))
    }
}

impl Drop for Try<'_> {
    fn drop(&mut self) {
        let mut map = self
            .tries
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.member) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_checked_against_its_hash_only() {
        let phc = hash("123456", [7; 16]).unwrap();
        assert!(!phc.contains("123456"));
        assert_eq!(matches("123456", &phc), Ok(true));
        assert_eq!(matches("654321", &phc), Ok(false));
        assert_eq!(matches("12345", &phc), Ok(false));
        assert_eq!(hash("12345", [0; 16]), Err(PasswordError::Format));
        assert_eq!(hash("12345a", [0; 16]), Err(PasswordError::Format));
    }

    /// Tries taken at once and failures on record together never pass the limit; a try given
    /// back frees its place.
    #[test]
    fn tries_in_flight_count_with_failures_on_record() {
        let member = MemberId::mint(1, 1);
        let tries = Tries::default();
        let take =
            |member: MemberId, failed: usize| tries.take(member, || Ok::<_, ()>(failed)).unwrap();
        let held: Vec<Try<'_>> = (0..3).map(|_| take(member, 2).unwrap()).collect();
        assert!(matches!(take(member, 2), Err(PasswordError::Locked)));
        assert!(take(MemberId::mint(1, 2), 0).is_ok(), "another member");
        drop(held);
        assert!(take(member, 4).is_ok());
        assert!(matches!(
            take(member, PASSWORD_FAILURES_MAX),
            Err(PasswordError::Locked)
        ));
    }
}
