//! Money: `Decimal` with a currency at every interface, integer fen in ledgers, rounding named.
//!
//! JSON amounts are strings (`"12.50"`); a JSON number is refused, because the usual path
//! through `f64` silently loses precision.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Minor units (分) of a two-decimal currency. Ledgers and views hold these, never decimals.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Fen(pub i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// The amount in yuan, always with two decimal places.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Converts a decimal to fen, rounding with the named policy.
    pub fn from_decimal(amount: Decimal, rounding: Rounding) -> Result<Fen, MoneyError> {
        let fen = rounding.round(amount, 2) * Decimal::ONE_HUNDRED;
        i64::try_from(fen)
            .map(Fen)
            .map_err(|_| MoneyError::OutOfRange)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

/// How a computed amount is brought to whole fen. Chains choose; the default is the one shoppers
/// expect from a till (half a fen rounds away from zero), not rust_decimal's banker's rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    #[default]
    HalfAwayFromZero,
    HalfEven,
    TowardZero,
    AwayFromZero,
}

impl Rounding {
    pub fn round(self, value: Decimal, dp: u32) -> Decimal {
        let strategy = match self {
            Rounding::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::TowardZero => RoundingStrategy::ToZero,
            Rounding::AwayFromZero => RoundingStrategy::AwayFromZero,
        };
        value.round_dp_with_strategy(dp, strategy)
    }
}

/// An ISO 4217 currency code. CNY is the default and the only one a store ledger holds today;
/// other currencies are recorded with a rate by the checkout (see the checkout issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");

    pub fn as_str(&self) -> &str {
        // Constructed only from three ASCII uppercase letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::CNY
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, MoneyError> {
        let bytes: [u8; 3] = s
            .as_bytes()
            .try_into()
            .map_err(|_| MoneyError::Currency(s.chars().take(16).collect()))?;
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency(bytes))
        } else {
            Err(MoneyError::Currency(s.to_owned()))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("money amounts must be JSON strings such as \"12.50\", not numbers")]
    NotAString,
    #[error("not a decimal amount: {0:?}")]
    Malformed(String),
    #[error("at most 2 decimal places (whole fen), got {0}")]
    TooPrecise(String),
    #[error("amount out of range")]
    OutOfRange,
    #[error("not an ISO 4217 currency code: {0:?}")]
    Currency(String),
}

/// Parses a decimal amount the way a person writes it: digits, an optional leading '-', an
/// optional '.' and at most two decimals. No exponents, no '+', no spaces, no thousands marks.
pub fn parse_amount(text: &str) -> Result<Decimal, MoneyError> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || !digits_only(whole) || !digits_only(frac) {
        return Err(MoneyError::Malformed(text.chars().take(40).collect()));
    }
    if body.contains('.') && frac.is_empty() {
        return Err(MoneyError::Malformed(text.chars().take(40).collect()));
    }
    let value = Decimal::from_str(text).map_err(|_| MoneyError::Malformed(text.to_owned()))?;
    if value.normalize().scale() > 2 {
        return Err(MoneyError::TooPrecise(text.chars().take(40).collect()));
    }
    Ok(value)
}

/// An amount with its currency, as it crosses every interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn cny(fen: Fen) -> Money {
        Money {
            amount: fen.to_decimal(),
            currency: Currency::CNY,
        }
    }

    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// The exact amount in fen; an amount with more than two decimals is refused, not rounded.
    pub fn to_fen(&self) -> Result<Fen, MoneyError> {
        if self.amount.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(self.amount.to_string()));
        }
        Fen::from_decimal(self.amount, Rounding::TowardZero)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount.round_dp(2), self.currency)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: AmountText,
    #[serde(default)]
    currency: Currency,
}

struct AmountText(Decimal);

impl Serialize for AmountText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl serde::de::Visitor<'_> for AmountVisitor {
    type Value = AmountText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal amount as a string, such as \"12.50\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AmountText, E> {
        parse_amount(v).map(AmountText).map_err(E::custom)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<AmountText, E> {
        Err(E::custom(MoneyError::NotAString))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<AmountText, E> {
        Err(E::custom(MoneyError::NotAString))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<AmountText, E> {
        Err(E::custom(MoneyError::NotAString))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut amount = Rounding::HalfAwayFromZero.round(self.amount, 2);
        amount.rescale(2);
        MoneyWire {
            amount: AmountText(amount),
            currency: self.currency,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(d)?;
        Ok(Money {
            amount: wire.amount.0,
            currency: wire.currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(json: &str) -> Result<Money, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn amounts_are_strings_with_at_most_two_decimals() {
        let m = money(r#"{"amount":"12.50","currency":"CNY"}"#).unwrap();
        assert_eq!(m.to_fen(), Ok(Fen(1250)));
        assert_eq!(money(r#"{"amount":"3"}"#).unwrap().currency, Currency::CNY);
        assert_eq!(money(r#"{"amount":"0.10"}"#).unwrap().to_fen(), Ok(Fen(10)));
        for bad in [
            "12.345", "1e3", "+1", " 1", "1.", ".5", "", "1,000", "NaN", "1.2.3",
        ] {
            let json = format!(r#"{{"amount":"{bad}"}}"#);
            assert!(money(&json).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn json_numbers_are_refused_with_a_clear_message() {
        let err = money(r#"{"amount":12.5}"#).unwrap_err();
        assert!(err.contains("must be JSON strings"), "{err}");
        assert!(money(r#"{"amount":12}"#).is_err());
    }

    #[test]
    fn unknown_fields_and_bad_currencies_are_refused() {
        assert!(money(r#"{"amount":"1","currency":"cny"}"#).is_err());
        assert!(money(r#"{"amount":"1","currency":"YUAN"}"#).is_err());
        assert!(money(r#"{"amount":"1","tip":"2"}"#).is_err());
    }

    #[test]
    fn serialises_with_two_decimals() {
        let json = serde_json::to_string(&Money::cny(Fen(1205))).unwrap();
        assert_eq!(json, r#"{"amount":"12.05","currency":"CNY"}"#);
    }

    #[test]
    fn rounding_is_named_and_defaults_to_half_away_from_zero() {
        let half = Decimal::new(25, 3); // 0.025 yuan
        assert_eq!(Fen::from_decimal(half, Rounding::default()), Ok(Fen(3)));
        assert_eq!(Fen::from_decimal(half, Rounding::HalfEven), Ok(Fen(2)));
        assert_eq!(
            Fen::from_decimal(-half, Rounding::HalfAwayFromZero),
            Ok(Fen(-3))
        );
        assert_eq!(
            Fen::from_decimal(Decimal::new(19, 3), Rounding::TowardZero),
            Ok(Fen(1))
        );
        assert_eq!(
            Fen::from_decimal(Decimal::new(11, 3), Rounding::AwayFromZero),
            Ok(Fen(2))
        );
    }

    #[test]
    fn fen_display_has_two_decimals() {
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-1250).to_string(), "-12.50");
    }
}
