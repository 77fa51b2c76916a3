//! Phone numbers: the member key. Stored normalised, shown masked in lists and reports.
//!
//! The rule: a mainland mobile number is 11 digits starting 13–19 (a leading +86 or 0086 is
//! dropped). Any other number must be written internationally, '+' and the country code, 8 to 15
//! digits in all (E.164). Spaces and '-' are ignored.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a valid phone number: {0:?} (mainland mobiles have 11 digits starting 13-19; \
     others start with '+' and the country code)"
)]
pub struct PhoneError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, PhoneError> {
        let error = || PhoneError(raw.chars().take(32).collect());
        if raw.len() > 32 {
            return Err(error());
        }
        let compact: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let local = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .unwrap_or(&compact);
        if is_mainland_mobile(local) {
            return Ok(Phone(local.to_owned()));
        }
        match compact.strip_prefix('+') {
            Some(digits)
                if (8..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0')
                    && !digits.starts_with("86") =>
            {
                Ok(Phone(compact))
            }
            _ => Err(error()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown in lists, reports and receipts: 138****1234.
    pub fn masked(&self) -> String {
        let s = &self.0;
        let (head, tail) = if s.starts_with('+') { (4, 3) } else { (3, 4) };
        let hidden = s.len().saturating_sub(head + tail);
        format!(
            "{}{}{}",
            &s[..head],
            "*".repeat(hidden),
            &s[s.len() - tail..]
        )
    }
}

fn is_mainland_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Phone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_mobiles_are_normalised() {
        for raw in ["13812341234", "+86 138 1234 1234", "0086-138-1234-1234"] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "13812341234", "{raw}");
        }
    }

    #[test]
    fn other_numbers_need_a_country_code() {
        assert_eq!(
            Phone::parse("+852 9123 4567").unwrap().as_str(),
            "+85291234567"
        );
        for bad in [
            "12812341234",
            "1381234123",
            "138123412345",
            "91234567",
            "+0123456789",
            "",
            "+86 12345",
            "abc",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Phone::parse(&"1".repeat(40)).is_err());
    }

    #[test]
    fn masks_the_middle() {
        assert_eq!(Phone::parse("13812341234").unwrap().masked(), "138****1234");
        assert_eq!(
            Phone::parse("+85291234567").unwrap().masked(),
            "+852*****567"
        );
    }
}
