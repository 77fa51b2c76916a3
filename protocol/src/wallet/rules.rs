//! A chain's wallet rules: top-up bonuses and how a payment splits between principal and bonus.

use super::*;

/// A top-up rule the chain offers, e.g. pay 5000, get 2000 bonus (充5000送2000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpRule {
    pub id: String,
    /// The least the member must pay for this rule.
    pub pay_at_least: Fen,
    pub bonus: Fen,
}

/// How a stored-value payment splits between principal and bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusUse {
    /// In proportion to the principal and bonus held (the common rule: no refund arbitrage).
    #[default]
    Proportional,
    PrincipalFirst,
    BonusFirst,
}

/// The bonus a rule gives for `paid`, checked.
pub fn top_up_bonus(
    rules: &[TopUpRule],
    rule: Option<&str>,
    paid: Fen,
) -> Result<Fen, WalletError> {
    if paid.0 <= 0 {
        return Err(WalletError::NotPositive);
    }
    let Some(id) = rule else {
        return Ok(Fen(0));
    };
    let rule = rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| WalletError::UnknownRule(id.to_owned()))?;
    if paid < rule.pay_at_least {
        return Err(WalletError::RuleNotMet {
            rule: rule.id.clone(),
            least: rule.pay_at_least,
        });
    }
    Ok(rule.bonus)
}

/// Splits a stored-value payment of `amount` between principal and bonus, given what this
/// replica holds of each. Returns `(principal, bonus)`.
pub fn split_payment(
    amount: u64,
    held_principal: u64,
    held_bonus: u64,
    rule: BonusUse,
) -> Result<(u64, u64), WalletError> {
    if amount == 0 {
        return Err(WalletError::NotPositive);
    }
    let available = held_principal.saturating_add(held_bonus);
    if amount > available {
        return Err(WalletError::Insufficient {
            available,
            wanted: amount,
            wants: Vec::new(),
        });
    }
    let bonus = match rule {
        BonusUse::BonusFirst => amount.min(held_bonus),
        BonusUse::PrincipalFirst => amount.saturating_sub(held_principal),
        BonusUse::Proportional => {
            // Rounded half up, in integers wide enough for any two u64.
            let (amount, bonus, available) = (
                u128::from(amount),
                u128::from(held_bonus),
                u128::from(available),
            );
            u64::try_from((amount * bonus + available / 2) / available).unwrap_or(u64::MAX)
        }
    };
    // Rounding may ask one unit too many of either side; the other side covers it.
    let bonus = bonus
        .min(held_bonus)
        .max(amount.saturating_sub(held_principal));
    Ok((amount - bonus, bonus))
}

/// A chain's wallet rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRules {
    pub top_up_rules: Vec<TopUpRule>,
    pub bonus_use: BonusUse,
    pub points: PointsPolicy,
    /// The largest single top-up, to catch a mistyped amount.
    pub top_up_max: Fen,
    /// Offline overdraft (离线透支): how much a member may owe one store, and all members one
    /// store, when it cannot reach headquarters. Zero (the default) refuses the tender instead.
    pub overdraft_member: Fen,
    pub overdraft_store: Fen,
    /// Whether an offline overdraft needs a store manager at the till (a cashier is refused).
    pub overdraft_needs_manager: bool,
    /// A timed card's minutes are charged in steps of this many, rounded up (15: a quarter of
    /// an hour started is a quarter charged).
    pub timed_round_minutes: u32,
}

impl Default for WalletRules {
    fn default() -> Self {
        Self {
            top_up_rules: Vec::new(),
            bonus_use: BonusUse::default(),
            points: PointsPolicy::default(),
            top_up_max: Fen(5_000_000), // 50,000 yuan
            overdraft_member: Fen(0),
            overdraft_store: Fen(0),
            overdraft_needs_manager: false,
            timed_round_minutes: 1,
        }
    }
}
