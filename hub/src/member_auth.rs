//! 会员登录: a member signs in to their own page with their phone and a one-time code sent
//! through the outbox. Codes are six random digits, good for five minutes, kept here only as a
//! hash; a phone gets a code at most once a minute and five an hour, and headquarters sends at
//! most `CODES_PER_MINUTE` in all. Five wrong codes (or old payment passwords) lock the phone
//! for fifteen minutes and void its code; a new code does not forgive the wrong ones before
//! it, only a right one does. A session lasts two hours from sign-in. All of it in memory: a
//! restart of headquarters asks members to sign in again, and loses nothing else.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::{MemberId, Phone};
use sha2::{Digest, Sha256};

pub const CODE_MS: u64 = 5 * 60 * 1000;
pub const RESEND_MS: u64 = 60 * 1000;
pub const SENDS_PER_HOUR: usize = 5;
pub const WRONG_MAX: u32 = 5;
pub const LOCK_MS: u64 = 15 * 60 * 1000;
pub const SESSION_MS: u64 = 2 * 60 * 60 * 1000;
/// Codes headquarters sends in a minute at most, to every phone together.
pub const CODES_PER_MINUTE: usize = 120;
/// Phones remembered before the quiet ones are forgotten.
const PHONES_KEPT: usize = 10_000;

/// Why a code is not sent or not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("a code was sent a moment ago: try again in {0} seconds")]
    TooSoon(u64),
    #[error("too many wrong codes: this phone may sign in again in {0} minutes")]
    Locked(u64),
    #[error("the code is wrong ({0} tries left)")]
    Wrong(u32),
    #[error("no code is waiting for this phone, or it has expired: ask for a new one")]
    NoCode,
}

#[derive(Default)]
struct Waiting {
    /// The waiting code's hash and until when it is good.
    code: Option<([u8; 32], u64)>,
    sent_ms: Vec<u64>,
    wrong: u32,
    locked_until: u64,
}

impl Waiting {
    /// Whether there is nothing to remember: no code, no lock, nothing sent this hour.
    fn quiet(&self, now_ms: u64) -> bool {
        self.code.is_none_or(|(_, until)| until <= now_ms)
            && self.locked_until <= now_ms
            && self.sent_ms.iter().all(|t| t + 3_600_000 <= now_ms)
            && self.wrong == 0
    }

    /// Refuses while locked; a lock that has run out forgives the wrong tries behind it.
    fn unlocked(&mut self, now_ms: u64) -> Result<(), SignInError> {
        if self.locked_until > now_ms {
            return Err(SignInError::Locked(
                (self.locked_until - now_ms).div_ceil(60_000),
            ));
        }
        if self.locked_until > 0 {
            self.locked_until = 0;
            self.wrong = 0;
        }
        Ok(())
    }

    /// One more wrong try; the fifth locks the phone and voids its code.
    fn miss(&mut self, now_ms: u64) -> SignInError {
        self.wrong += 1;
        if self.wrong >= WRONG_MAX {
            self.code = None;
            self.locked_until = now_ms + LOCK_MS;
            return SignInError::Locked(LOCK_MS / 60_000);
        }
        SignInError::Wrong(WRONG_MAX - self.wrong)
    }
}

#[derive(Default)]
pub struct MemberAuth {
    phones: Mutex<HashMap<Phone, Waiting>>,
    /// When the codes of the last minute were sent, to every phone.
    sent_ms: Mutex<Vec<u64>>,
    sessions: Mutex<HashMap<String, (MemberId, u64)>>,
}

fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// A code of six digits from the operating system's randomness.
pub fn new_code() -> anyhow::Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random code: {e}"))?;
    Ok(format!("{:06}", u64::from_le_bytes(bytes) % 1_000_000))
}

impl MemberAuth {
    /// Files `code` as the one `phone` waits for, if the phone may be sent one now.
    pub fn issue(&self, phone: &Phone, code: &str, now_ms: u64) -> Result<(), SignInError> {
        let mut phones = self.phones.lock().expect("member auth lock");
        if phones.len() > PHONES_KEPT {
            phones.retain(|_, p| !p.quiet(now_ms));
        }
        let p = phones.entry(phone.clone()).or_default();
        p.unlocked(now_ms)?;
        p.sent_ms.retain(|t| t + 3_600_000 > now_ms);
        if let Some(last) = p.sent_ms.last()
            && last + RESEND_MS > now_ms
        {
            return Err(SignInError::TooSoon(
                (last + RESEND_MS - now_ms).div_ceil(1000),
            ));
        }
        if p.sent_ms.len() >= SENDS_PER_HOUR {
            let first = p.sent_ms[0];
            return Err(SignInError::TooSoon(
                (first + 3_600_000 - now_ms).div_ceil(1000),
            ));
        }
        let mut all = self.sent_ms.lock().expect("member auth lock");
        all.retain(|t| t + 60_000 > now_ms);
        if all.len() >= CODES_PER_MINUTE {
            return Err(SignInError::TooSoon(
                (all[0] + 60_000 - now_ms).div_ceil(1000),
            ));
        }
        all.push(now_ms);
        p.sent_ms.push(now_ms);
        p.code = Some((hash(code), now_ms + CODE_MS));
        Ok(())
    }

    /// Takes `code` for `phone`: right once, then void; a right code forgives the wrong tries.
    pub fn take(&self, phone: &Phone, code: &str, now_ms: u64) -> Result<(), SignInError> {
        let mut phones = self.phones.lock().expect("member auth lock");
        let Some(p) = phones.get_mut(phone) else {
            return Err(SignInError::NoCode);
        };
        p.unlocked(now_ms)?;
        let Some((want, _)) = p.code.filter(|(_, until)| *until > now_ms) else {
            return Err(SignInError::NoCode);
        };
        if hash(code.trim()) == want {
            p.code = None;
            p.wrong = 0;
            return Ok(());
        }
        Err(p.miss(now_ms))
    }

    /// Refuses while `phone` is locked (before another proof of it is checked).
    pub fn check(&self, phone: &Phone, now_ms: u64) -> Result<(), SignInError> {
        let mut phones = self.phones.lock().expect("member auth lock");
        match phones.get_mut(phone) {
            Some(p) => p.unlocked(now_ms),
            None => Ok(()),
        }
    }

    /// A wrong proof for `phone` other than a code (an old payment password): counted as a
    /// wrong code; the fifth locks the phone.
    pub fn wrong(&self, phone: &Phone, now_ms: u64) -> SignInError {
        let mut phones = self.phones.lock().expect("member auth lock");
        phones.entry(phone.clone()).or_default().miss(now_ms)
    }

    /// A right proof other than a code forgives the wrong tries before it.
    pub fn right(&self, phone: &Phone) {
        if let Some(p) = self.phones.lock().expect("member auth lock").get_mut(phone) {
            p.wrong = 0;
        }
    }

    pub fn open(&self, token: String, member: MemberId, now_ms: u64) {
        let mut sessions = self.sessions.lock().expect("member sessions lock");
        sessions.retain(|_, (_, until)| *until > now_ms);
        sessions.insert(token, (member, now_ms + SESSION_MS));
    }

    pub fn member(&self, token: &str, now_ms: u64) -> Option<MemberId> {
        let sessions = self.sessions.lock().expect("member sessions lock");
        sessions
            .get(token)
            .filter(|(_, until)| *until > now_ms)
            .map(|(m, _)| *m)
    }

    pub fn close(&self, token: &str) {
        self.sessions
            .lock()
            .expect("member sessions lock")
            .remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Phone {
        Phone::parse("13800138001").unwrap()
    }

    #[test]
    fn a_code_is_taken_once_within_five_minutes() {
        let auth = MemberAuth::default();
        auth.issue(&phone(), "123456", 0).unwrap();
        assert_eq!(
            auth.take(&phone(), "123456", CODE_MS),
            Err(SignInError::NoCode)
        );
        auth.issue(&phone(), "654321", RESEND_MS).unwrap();
        assert_eq!(auth.take(&phone(), "654321", RESEND_MS + 1), Ok(()));
        assert_eq!(
            auth.take(&phone(), "654321", RESEND_MS + 2),
            Err(SignInError::NoCode)
        );
    }

    #[test]
    fn codes_are_sent_at_most_once_a_minute_and_five_an_hour() {
        let auth = MemberAuth::default();
        auth.issue(&phone(), "1", 0).unwrap();
        assert_eq!(
            auth.issue(&phone(), "2", 1_000),
            Err(SignInError::TooSoon(59))
        );
        for i in 1..5 {
            auth.issue(&phone(), "3", i * RESEND_MS).unwrap();
        }
        assert!(matches!(
            auth.issue(&phone(), "4", 5 * RESEND_MS),
            Err(SignInError::TooSoon(_))
        ));
        auth.issue(&phone(), "5", 3_600_000).unwrap();
    }

    #[test]
    fn five_wrong_codes_lock_the_phone_and_void_the_code() {
        let auth = MemberAuth::default();
        auth.issue(&phone(), "123456", 0).unwrap();
        for left in (1..WRONG_MAX).rev() {
            assert_eq!(
                auth.take(&phone(), "000000", 1),
                Err(SignInError::Wrong(left))
            );
        }
        assert_eq!(
            auth.take(&phone(), "000000", 1),
            Err(SignInError::Locked(15))
        );
        assert_eq!(
            auth.take(&phone(), "123456", 2),
            Err(SignInError::Locked(15))
        );
        assert_eq!(
            auth.issue(&phone(), "999999", 2),
            Err(SignInError::Locked(15))
        );
        assert_eq!(auth.check(&phone(), 2), Err(SignInError::Locked(15)));
        auth.issue(&phone(), "999999", LOCK_MS + 2).unwrap();
        assert_eq!(auth.take(&phone(), "999999", LOCK_MS + 3), Ok(()));
    }

    #[test]
    fn a_new_code_does_not_forgive_the_wrong_tries_before_it() {
        let auth = MemberAuth::default();
        auth.issue(&phone(), "123456", 0).unwrap();
        for _ in 0..3 {
            auth.take(&phone(), "000000", 1).unwrap_err();
        }
        auth.issue(&phone(), "654321", RESEND_MS).unwrap();
        assert_eq!(
            auth.take(&phone(), "000000", RESEND_MS + 1),
            Err(SignInError::Wrong(1))
        );
        assert_eq!(auth.wrong(&phone(), RESEND_MS + 2), SignInError::Locked(15));
    }

    #[test]
    fn headquarters_sends_at_most_so_many_codes_a_minute() {
        let auth = MemberAuth::default();
        for n in 0..CODES_PER_MINUTE {
            let p = Phone::parse(&format!("139{n:08}")).unwrap();
            auth.issue(&p, "1", 0).unwrap();
        }
        let one_more = Phone::parse("13700000000").unwrap();
        assert_eq!(
            auth.issue(&one_more, "1", 1_000),
            Err(SignInError::TooSoon(59))
        );
        auth.issue(&one_more, "1", 60_000).unwrap();
    }

    #[test]
    fn a_session_ends_after_two_hours_or_at_sign_out() {
        let auth = MemberAuth::default();
        let m = MemberId::mint(1, 1);
        auth.open("t".into(), m, 0);
        assert_eq!(auth.member("t", SESSION_MS - 1), Some(m));
        assert_eq!(auth.member("t", SESSION_MS), None);
        auth.open("u".into(), m, 0);
        auth.close("u");
        assert_eq!(auth.member("u", 1), None);
    }
}
