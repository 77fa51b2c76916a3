//! What each entry of a log does to the views every replica derives from it (stores and
//! headquarters alike): the one place above both the log (`crate::entry`) and the domain
//! modules, so those know nothing of entries and the dependency runs one way —
//! ids, money, catalogue, stock, wallet, staff, rules, commission ← entry ← project.

pub mod commission;
pub mod gifts;
pub mod history;
pub mod inventory;
pub mod marketing;
pub mod rules;
pub mod staff;
pub mod wallet;
