//! Member wallets (会员钱包): stored value (储值) with principal and bonus kept apart, points (积分)
//! in yearly lots that expire, count cards (计次卡) and period cards (期限卡).
//!
//! Every spendable amount is a **counter** with its own spend rights ([`crate::escrow`]):
//! `Principal` and `Bonus` in fen, one `Points` counter per earning year (a lot), and one `Uses`
//! counter per count card. An entry that changes a wallet carries the [`RightsOp`]s it made
//! (cell writes of the entry's origin), so every replica that sees the entry converges on the
//! same rights, whatever order entries arrive in.

mod cards;
mod close;
mod events;
mod operations;
mod points;
mod rules;
mod state;
#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
mod tests;

pub use cards::*;
pub use close::*;
pub use events::*;
pub use points::*;
pub use rules::*;
pub use state::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::escrow::{Change, Rights, RightsError};
use crate::hlc::Hlc;
use crate::ids::{SaleId, StoreId};
use crate::money::Fen;
use crate::points::Points;
use crate::sale::Tender;

/// A count or period card is named after the entry that sold it (`<store>-<seq>`).
pub type CardId = SaleId;

pub const REASON_CHARS_MAX: usize = 200;
pub const CARD_NAME_CHARS_MAX: usize = 64;
/// A count card holds at most this many uses.
pub const CARD_USES_MAX: u32 = 10_000;
/// A timed card holds at most this many minutes (about 1,666 hours).
pub const TIMED_MINUTES_MAX: u32 = 100_000;

/// The most points one adjustment by hand may add or take (a typo of a few zeros is refused,
/// and no sum of them can overflow a report).
pub const POINTS_ADJUST_MAX: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("amount must be greater than zero")]
    NotPositive,
    /// The balance this replica knows is short. `wants` is what headquarters would have to
    /// move here to cover it, in case this replica has not heard of all of the balance yet (a
    /// top-up at another store moments before); empty where asking cannot help.
    #[error("{wanted} wanted but only {available} available")]
    Insufficient {
        available: u64,
        wanted: u64,
        wants: Vec<(Counter, u64)>,
    },
    #[error("no top-up rule {0}")]
    UnknownRule(String),
    #[error("top-up rule {rule} needs at least {least} paid")]
    RuleNotMet { rule: String, least: Fen },
    #[error("text is too long (at most {0} characters)")]
    TooLong(usize),
    #[error("a reason is required")]
    ReasonMissing,
    #[error("card {0} was paid back when the membership closed")]
    CardClosed(CardId),
    #[error("card {0} is not a timed card (计时卡)")]
    NotTimed(CardId),
    #[error("card {0}'s clock is running already (clocked in at {1})")]
    ClockedIn(CardId, StoreId),
    #[error("card {0}'s clock is not running: clock in first")]
    NotClockedIn(CardId),
    #[error(
        "the member owes {0} for an offline payment: it is collected before the card is closed"
    )]
    Owes(Fen),
    #[error("card {0} has expired")]
    CardExpired(CardId),
    #[error("card {0} is not valid until {1}")]
    CardNotYetValid(CardId, NaiveDate),
    #[error("a count card holds 1 to {CARD_USES_MAX} uses")]
    UsesOutOfRange,
    #[error("points are adjusted by hand 1 to {POINTS_ADJUST_MAX} at a time, up or down")]
    PointsOutOfRange,
    #[error("the period ends before it starts")]
    EmptyPeriod,
    #[error("no card {0} on this member")]
    UnknownCard(CardId),
    #[error("no coupon {0} on this member")]
    UnknownCoupon(CardId),
    #[error("coupon {0} has been used")]
    CouponUsed(CardId),
    #[error("coupon {coupon} is good from {from} to {to}")]
    CouponNotValid {
        coupon: CardId,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("the balance covers it, but its rights are held elsewhere: {}", wants_text(.wants))]
    RightsElsewhere { wants: Vec<(Counter, u64)> },
    #[error(transparent)]
    Rights(#[from] RightsError),
}

fn wants_text(wants: &[(Counter, u64)]) -> String {
    let parts: Vec<String> = wants.iter().map(|(c, u)| format!("{u} of {c}")).collect();
    parts.join(", ")
}

/// What a till shows of a member's wallet at one replica on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub principal: Fen,
    pub bonus: Fen,
    /// Stored value this replica may spend without asking anyone.
    pub held_here: Fen,
    /// Points spendable today, chain-wide, and how many of them this replica holds.
    pub points: u64,
    pub points_held_here: u64,
    /// Live lots: the year earned, the last day to spend them, points left.
    pub lots: Vec<(i32, Option<NaiveDate>, u64)>,
    pub cards: Vec<CardSummary>,
    pub password_set: bool,
    /// Offline overdrafts not yet paid off, and stored value a fenced store spent twice,
    /// chain-wide: what the member owes.
    pub owed: Fen,
}

/// Checks free text a cashier typed (a reason, a card name).
pub fn check_text(text: &str, max: usize) -> Result<(), WalletError> {
    if text.trim().is_empty() {
        return Err(WalletError::ReasonMissing);
    }
    if text.chars().count() > max {
        return Err(WalletError::TooLong(max));
    }
    Ok(())
}
