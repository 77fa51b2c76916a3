//! 动态会员码: the code a member's own page shows, as a QR code and a barcode, that a till scans
//! (or types) to find them — at a store that is offline too.
//!
//! Eighteen digits: `7`, an eleven-digit handle that names the member, and a six-digit
//! time-based code (RFC 6238, HMAC-SHA256, one-minute steps). The handle comes from the member
//! id alone ([`handle`]), so every replica files the member under it without being told; the
//! time-based code's secret comes from the member's own key ([`crate::seal::MemberKey`]), which
//! every store that holds the member's profile already has and which erasure destroys. A till
//! finds the members filed under the handle (two may share one: 11 digits), and takes the one
//! whose code matches now or one step ago ([`check`]): a code is good for at most two minutes,
//! so a screenshot of an old one is refused, and a code that matches no one's is forged. The
//! next step's is taken too, so a till whose clock is up to a minute behind headquarters'
//! (which made the code) finds the member all the same. A till
//! also refuses a code it has taken once (`node`'s replay guard), so a screenshot passed on
//! within the minute finds no one at the same till.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};

use crate::ids::MemberId;
use crate::seal::MemberKey;

/// Digits of a code, of its handle and of its time-based part.
pub const CODE_DIGITS: usize = 18;
const HANDLE_DIGITS: usize = 11;
const PREFIX: char = '7';
/// How long one code stands: a minute, and the minute after it.
pub const STEP_SECONDS: u64 = 60;

/// Why a code finds no one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a member code is 18 digits starting with 7")]
    Malformed,
    /// Its time-based part is a real one of this member's, from over two minutes ago.
    #[error("the member code has expired: ask for the one the page shows now")]
    Expired,
    /// No member filed under its handle has it.
    #[error("no member has this code")]
    Forged,
}

/// The member's handle: eleven digits from a hash of their id.
pub fn handle(member: &MemberId) -> String {
    let digest = Sha256::digest(format!("member-code/{member}").as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    format!("{:011}", n % 100_000_000_000)
}

/// The handle of a code as typed or scanned (spaces ignored), if it is one.
pub fn handle_of(code: &str) -> Result<String, CodeError> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != CODE_DIGITS
        || !digits.starts_with(PREFIX)
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CodeError::Malformed);
    }
    Ok(digits[1..=HANDLE_DIGITS].to_owned())
}

fn totp(key: &MemberKey) -> Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA256)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(STEP_SECONDS)
        .with_secret(key.derive(b"member-code").to_vec())
        .build()
        .expect("32 bytes of secret and 6 digits are within RFC 6238")
}

/// The member's code at `now_ms`, and until when it is shown (the next step's start).
pub fn code(key: &MemberKey, member: &MemberId, now_ms: u64) -> (String, u64) {
    let t = totp(key);
    let now = now_ms / 1000;
    let code = format!("{PREFIX}{}{}", handle(member), t.generate(now));
    (code, t.next_step(now) * 1000)
}

/// Which step of `member`'s `code` is — this minute's, the one before, or the next (a clock
/// behind) — checked at `now_ms`.
/// The step names the code for a till's replay guard.
pub fn check(
    key: &MemberKey,
    member: &MemberId,
    code: &str,
    now_ms: u64,
) -> Result<u64, CodeError> {
    if handle_of(code)? != handle(member) {
        return Err(CodeError::Forged);
    }
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let part = &digits[1 + HANDLE_DIGITS..];
    let t = totp(key);
    let step = now_ms / 1000 / STEP_SECONDS;
    for candidate in [step, step.saturating_sub(1), step + 1] {
        if t.generate(candidate * STEP_SECONDS).to_string() == part {
            return Ok(candidate);
        }
    }
    // A real code of theirs from the last day, only old: say so rather than "forged".
    if (2..24 * 60).any(|back| {
        t.generate(step.saturating_sub(back) * STEP_SECONDS)
            .to_string()
            == part
    }) {
        return Err(CodeError::Expired);
    }
    Err(CodeError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> (MemberKey, MemberId) {
        (
            MemberKey::from_bytes([7; 32]),
            MemberId::mint(1_796_000_000_000, 42),
        )
    }

    const NOW: u64 = 1_796_523_373_233;

    #[test]
    fn a_code_is_eighteen_digits_naming_the_member() {
        let (key, id) = member();
        let (code, until) = code(&key, &id, NOW);
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.starts_with('7') && code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(handle_of(&code).unwrap(), handle(&id));
        assert!(until > NOW && until <= NOW + STEP_SECONDS * 1000);
    }

    #[test]
    fn a_code_holds_this_minute_and_the_next_then_expires() {
        let (key, id) = member();
        let (code, until) = code(&key, &id, NOW);
        assert!(check(&key, &id, &code, NOW).is_ok());
        assert!(check(&key, &id, &code, until + 59_000).is_ok());
        assert_eq!(
            check(&key, &id, &code, until + 60_000),
            Err(CodeError::Expired)
        );
        assert_eq!(
            check(&key, &id, &code, NOW + 3_600_000),
            Err(CodeError::Expired)
        );
    }

    #[test]
    fn a_till_a_minute_behind_takes_a_fresh_code() {
        let (key, id) = member();
        let (code, _) = code(&key, &id, NOW);
        assert!(check(&key, &id, &code, NOW - 60_000).is_ok());
        assert_eq!(
            check(&key, &id, &code, NOW - 180_000),
            Err(CodeError::Forged)
        );
    }

    #[test]
    fn a_changed_digit_or_another_members_key_is_forged() {
        let (key, id) = member();
        let (code, _) = code(&key, &id, NOW);
        let mut forged: Vec<u8> = code.clone().into_bytes();
        forged[17] = if forged[17] == b'9' {
            b'0'
        } else {
            forged[17] + 1
        };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(check(&key, &id, &forged, NOW), Err(CodeError::Forged));
        let other = MemberKey::from_bytes([8; 32]);
        assert_eq!(check(&other, &id, &code, NOW), Err(CodeError::Forged));
        let stranger = MemberId::mint(1_796_000_000_000, 43);
        assert_eq!(check(&key, &stranger, &code, NOW), Err(CodeError::Forged));
    }

    #[test]
    fn what_is_not_a_member_code_is_malformed() {
        for bad in [
            "",
            "13800138001",
            "812345678901234567",
            "7123456789012345678",
            "71234567890123456x",
        ] {
            assert_eq!(handle_of(bad), Err(CodeError::Malformed), "{bad}");
        }
        assert!(handle_of("7 1234 5678 9012 34567").is_ok());
    }
}
