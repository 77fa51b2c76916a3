//! Quick sales (快速消费): a member (optional), an amount and a cash tender. Item checkout, split
//! tenders and returns come with the checkout issue.

use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, SaleId};
use crate::money::{Currency, Fen, Money, MoneyError};
use crate::points::{EarnRule, Points};

pub const CATEGORY_CHARS_MAX: usize = 32;

/// How a sale was paid.
/// The most change a till gives (fen): 10,000 yuan.
pub const CHANGE_MAX: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tender {
    Cash {
        tendered: Fen,
        change: Fen,
    },
    /// Paid from the member's stored value (储值), split as the chain's rule says; `overdraft` is
    /// what an offline store let the member owe beyond the rights it held (a receivable).
    StoredValue {
        principal: Fen,
        bonus: Fen,
        overdraft: Fen,
    },
    /// Bank card (银行卡), with the terminal's reference.
    Card {
        amount: Fen,
        reference: String,
    },
    /// WeChat Pay (微信支付), with its transaction reference.
    WeChat {
        amount: Fen,
        reference: String,
    },
    /// Alipay (支付宝), with its transaction reference.
    Alipay {
        amount: Fen,
        reference: String,
    },
    /// Cash in another currency (外币现金): `amount` in its minor units (cents), worth `value`
    /// at `rate` yuan per unit; change is given in yuan.
    ForeignCash {
        currency: Currency,
        amount: i64,
        rate: rust_decimal::Decimal,
        value: Fen,
        change: Fen,
    },
}

impl Tender {
    /// What this tender pays toward the sale.
    pub fn amount(&self) -> Fen {
        match self {
            Tender::Cash { tendered, change } => Fen(tendered.0 - change.0),
            Tender::StoredValue {
                principal,
                bonus,
                overdraft,
            } => Fen(principal.0 + bonus.0 + overdraft.0),
            Tender::Card { amount, .. }
            | Tender::WeChat { amount, .. }
            | Tender::Alipay { amount, .. } => *amount,
            Tender::ForeignCash { value, change, .. } => Fen(value.0 - change.0),
        }
    }

    /// The tender's kind as reports and the API name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Tender::Cash { .. } => "cash",
            Tender::Card { .. } => "card",
            Tender::WeChat { .. } => "wechat",
            Tender::Alipay { .. } => "alipay",
            Tender::StoredValue { .. } => "stored_value",
            Tender::ForeignCash { .. } => "foreign_cash",
        }
    }

    /// The receivable this tender created.
    pub fn overdraft(&self) -> Fen {
        match self {
            Tender::StoredValue { overdraft, .. } => *overdraft,
            _ => Fen(0),
        }
    }
}

/// An item sale (商品消费) as recorded in the log: every line priced step by step, paid by any
/// mix of tenders that add up to what is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSale {
    pub sale_id: SaleId,
    pub member_id: Option<MemberId>,
    pub lines: Vec<crate::pricing::PricedLine>,
    pub subtotal: Fen,
    pub discount: Fen,
    pub due: Fen,
    pub tenders: Vec<Tender>,
    pub points_used: u64,
    pub points_earned: Points,
    /// The coupon redeemed, if any.
    pub coupon: Option<String>,
    /// Who served the member (commissions), when not the cashier.
    pub served_by: Option<crate::ids::StaffId>,
}

/// A quick sale as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickSale {
    pub sale_id: SaleId,
    pub member_id: Option<MemberId>,
    pub category: Option<String>,
    pub amount: Fen,
    pub currency: Currency,
    pub tender: Tender,
    pub points_earned: Points,
}

/// How the member pays a quick sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayWith {
    #[default]
    Cash,
    /// From stored value (储值); the node splits it into principal and bonus by the rights it
    /// holds.
    StoredValue,
}

/// What the till asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickSaleRequest {
    pub member_id: Option<MemberId>,
    pub amount: Money,
    pub category: Option<String>,
    /// Cash handed over; `None` means exact change.
    pub cash_tendered: Option<Money>,
    pub pay_with: PayWith,
    /// The till could not reach headquarters: apply the chain's offline overdraft policy to a
    /// stored-value payment whose rights are held elsewhere.
    pub offline_overdraft: bool,
}

/// Bounds a store sets on one sale, to catch a mistyped amount before it becomes a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLimits {
    pub amount_max: Fen,
    pub currency: Currency,
}

impl Default for SaleLimits {
    fn default() -> Self {
        Self {
            amount_max: Fen(100_000_000),
            currency: Currency::CNY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount {amount} is over this store's limit of {max} per sale")]
    TooLarge { amount: Fen, max: Fen },
    #[error("this store takes {expected}, not {got}")]
    Currency { expected: Currency, got: Currency },
    #[error("cash tendered {tendered} is less than the {due} due")]
    TenderShort { due: Fen, tendered: Fen },
    #[error("category is too long (at most {CATEGORY_CHARS_MAX} characters)")]
    CategoryTooLong,
    #[error("paying from stored value needs a member")]
    MemberRequired,
    #[error("cash tendered given for a sale paid from stored value")]
    TenderMixed,
}

impl QuickSaleRequest {
    /// Prices the request into the sale to record, or says why it cannot be a sale.
    pub fn price(
        &self,
        sale_id: SaleId,
        limits: &SaleLimits,
        rule: &EarnRule,
        date: chrono::NaiveDate,
    ) -> Result<QuickSale, SaleError> {
        let amount = self.fen_in_store_currency(&self.amount, limits)?;
        if amount.0 <= 0 {
            return Err(SaleError::NotPositive);
        }
        if amount > limits.amount_max {
            return Err(SaleError::TooLarge {
                amount,
                max: limits.amount_max,
            });
        }
        if self.pay_with == PayWith::StoredValue {
            if self.member_id.is_none() {
                return Err(SaleError::MemberRequired);
            }
            if self.cash_tendered.is_some() {
                return Err(SaleError::TenderMixed);
            }
        }
        let tendered = match &self.cash_tendered {
            Some(cash) => self.fen_in_store_currency(cash, limits)?,
            None => amount,
        };
        if tendered < amount {
            return Err(SaleError::TenderShort {
                due: amount,
                tendered,
            });
        }
        // Change comes out of the drawer: more than a drawer holds is a typo, not cash.
        if tendered.0 - amount.0 > CHANGE_MAX {
            return Err(SaleError::TooLarge {
                amount: tendered,
                max: Fen(amount.0 + CHANGE_MAX),
            });
        }
        if self
            .category
            .as_ref()
            .is_some_and(|c| c.chars().count() > CATEGORY_CHARS_MAX)
        {
            return Err(SaleError::CategoryTooLong);
        }
        let points_earned = if self.member_id.is_some() {
            rule.earn(amount, self.category.as_deref(), date)
        } else {
            Points(0)
        };
        Ok(QuickSale {
            sale_id,
            member_id: self.member_id,
            category: self.category.clone(),
            amount,
            currency: limits.currency,
            tender: match self.pay_with {
                PayWith::Cash => Tender::Cash {
                    tendered,
                    change: Fen(tendered.0 - amount.0),
                },
                // All principal until the journal splits it by the rights it holds.
                PayWith::StoredValue => Tender::StoredValue {
                    principal: amount,
                    bonus: Fen(0),
                    overdraft: Fen(0),
                },
            },
            points_earned,
        })
    }

    fn fen_in_store_currency(&self, money: &Money, limits: &SaleLimits) -> Result<Fen, SaleError> {
        if money.currency != limits.currency {
            return Err(SaleError::Currency {
                expected: limits.currency,
                got: money.currency,
            });
        }
        Ok(money.to_fen()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StoreId;
    use rust_decimal::Decimal;

    fn request(amount: &str, tendered: Option<&str>) -> QuickSaleRequest {
        let money = |s: &str| Money::new(crate::money::parse_amount(s).unwrap(), Currency::CNY);
        QuickSaleRequest {
            member_id: Some(MemberId::mint(1, 1)),
            amount: money(amount),
            category: None,
            cash_tendered: tendered.map(money),
            pay_with: PayWith::Cash,
            offline_overdraft: false,
        }
    }

    fn price(r: &QuickSaleRequest) -> Result<QuickSale, SaleError> {
        let id = SaleId::for_entry(&StoreId::parse("S001").unwrap(), 1);
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        r.price(id, &SaleLimits::default(), &EarnRule::default(), date)
    }

    #[test]
    fn cash_change_and_points() {
        let sale = price(&request("88.80", Some("100"))).unwrap();
        assert_eq!(sale.amount, Fen(8880));
        assert_eq!(
            sale.tender,
            Tender::Cash {
                tendered: Fen(10000),
                change: Fen(1120)
            }
        );
        assert_eq!(sale.points_earned, Points(88));
    }

    #[test]
    fn anonymous_sales_earn_no_points() {
        let mut r = request("10", None);
        r.member_id = None;
        assert_eq!(price(&r).unwrap().points_earned, Points(0));
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_eq!(price(&request("0", None)), Err(SaleError::NotPositive));
        assert_eq!(price(&request("-5", None)), Err(SaleError::NotPositive));
        assert!(matches!(
            price(&request("1000000.01", None)),
            Err(SaleError::TooLarge { .. })
        ));
        assert!(
            matches!(
                price(&request("10", Some("10010.01"))),
                Err(SaleError::TooLarge { .. })
            ),
            "change over 10,000 yuan is a typo"
        );
        assert!(price(&request("10", Some("10010.00"))).is_ok());
        assert!(matches!(
            price(&request("10", Some("9.99"))),
            Err(SaleError::TenderShort { .. })
        ));
        let mut usd = request("10", None);
        usd.amount.currency = "USD".parse().unwrap();
        assert!(matches!(price(&usd), Err(SaleError::Currency { .. })));
        let mut precise = request("10", None);
        precise.amount.amount = Decimal::new(10001, 3);
        assert!(matches!(
            price(&precise),
            Err(SaleError::Money(MoneyError::TooPrecise(_)))
        ));
    }
}
