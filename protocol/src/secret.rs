//! Secrets kept only as argon2 hashes (PHC strings): staff logins and members' payment
//! passwords. The caller passes the salt's random bytes (this crate reads no randomness).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Whether `password` has a payment password's form (支付密码): six digits.
pub fn is_payment_password(password: &str) -> bool {
    password.len() == 6 && password.bytes().all(|b| b.is_ascii_digit())
}

/// The PHC string of `secret` under `salt`; `None` only if argon2 refuses its own parameters.
pub fn hash(secret: &str, salt: [u8; 16]) -> Option<String> {
    let salt = SaltString::encode_b64(&salt).ok()?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .ok()
}

/// Whether `secret` is the one `phc` was made from (slow on purpose); `None`: `phc` is damaged.
pub fn matches(secret: &str, phc: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    Some(
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_matches_its_hash_only() {
        let phc = super::hash("246810", [7; 16]).unwrap();
        assert!(phc.starts_with("$argon2"));
        assert_eq!(super::matches("246810", &phc), Some(true));
        assert_eq!(super::matches("246811", &phc), Some(false));
        assert_eq!(super::matches("246810", "not a hash"), None);
    }
}
