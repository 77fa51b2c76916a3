//! A coupon's offer as people type it (yuan, a percentage as text), tagged by `kind`: the
//! form headquarters' templates take and show.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Coupon;
use crate::ids::Sku;
use crate::money::{Currency, Fen, Money};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum OfferForm {
    /// 满减
    AmountOff { threshold: Money, off: Money },
    /// 折扣券: `percent` off, e.g. "10", at most `cap`.
    PercentOff {
        percent: Decimal,
        #[serde(default)]
        threshold: Option<Money>,
        #[serde(default)]
        cap: Option<Money>,
    },
    /// 代金券
    Voucher {
        value: Money,
        #[serde(default)]
        threshold: Option<Money>,
    },
    /// 体验券: one unit of a product free.
    Experience { sku: Sku },
}

fn fen(field: &str, money: &Money) -> Result<Fen, String> {
    if money.currency != Currency::CNY {
        return Err(format!("{field}: amounts are CNY, not {}", money.currency));
    }
    money.to_fen().map_err(|e| format!("{field}: {e}"))
}

fn fen_or_zero(field: &str, money: Option<&Money>) -> Result<Fen, String> {
    money.map_or(Ok(Fen(0)), |m| fen(field, m))
}

impl OfferForm {
    /// The offer, checked (`Coupon::check`).
    pub fn offer(&self) -> Result<Coupon, String> {
        let coupon = match self {
            OfferForm::AmountOff { threshold, off } => Coupon::AmountOff {
                threshold: fen("threshold", threshold)?,
                off: fen("off", off)?,
            },
            OfferForm::PercentOff {
                percent,
                threshold,
                cap,
            } => Coupon::PercentOff {
                percent: *percent,
                threshold: fen_or_zero("threshold", threshold.as_ref())?,
                cap: cap.as_ref().map(|c| fen("cap", c)).transpose()?,
            },
            OfferForm::Voucher { value, threshold } => Coupon::Voucher {
                value: fen("value", value)?,
                threshold: fen_or_zero("threshold", threshold.as_ref())?,
            },
            OfferForm::Experience { sku } => Coupon::Experience { sku: sku.clone() },
        };
        coupon.check()?;
        Ok(coupon)
    }

    /// The form showing `coupon`.
    pub fn of(coupon: &Coupon) -> OfferForm {
        match coupon {
            Coupon::AmountOff { threshold, off } => OfferForm::AmountOff {
                threshold: Money::cny(*threshold),
                off: Money::cny(*off),
            },
            Coupon::PercentOff {
                percent,
                threshold,
                cap,
            } => OfferForm::PercentOff {
                percent: *percent,
                threshold: Some(Money::cny(*threshold)),
                cap: cap.map(Money::cny),
            },
            Coupon::Voucher { value, threshold } => OfferForm::Voucher {
                value: Money::cny(*value),
                threshold: Some(Money::cny(*threshold)),
            },
            Coupon::Experience { sku } => OfferForm::Experience { sku: sku.clone() },
        }
    }
}
