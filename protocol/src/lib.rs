//! The shared language of branch stores and headquarters: ids, money, clocks, log entries,
//! member profiles and points rules.
//!
//! Pure by construction (ARCHITECTURE.md, invariant 6): nothing here does IO, reads a clock or
//! draws randomness. Time, ids and random bits are passed in, which is what lets a seeded
//! simulator drive the whole system deterministically.

pub mod ask;
pub mod audit;
pub mod bank;
pub mod calendar;
pub mod campaign;
pub mod card_rules;
pub mod catalogue;
pub mod commission;
pub mod entry;
pub mod escrow;
pub mod gifts;
pub mod hlc;
pub mod ids;
pub mod import;
pub mod inventory;
pub mod lease;
pub mod liabilities;
pub mod listing;
pub mod member;
pub mod member_code;
pub mod money;
pub mod notice;
pub mod phone;
pub mod points;
pub mod pricing;
pub mod project;
pub mod referral;
pub mod reports;
pub mod returns;
pub mod route;
pub mod rules;
pub mod sale;
pub mod seal;
pub mod secret;
pub mod segment;
pub mod session;
pub mod settlement;
pub mod shift;
pub mod staff;
pub mod stock;
pub mod sync;
pub mod thin;
pub mod tiers;
pub mod wallet;
pub mod web;

pub use entry::{Entry, EntryHash, Payload};
pub use hlc::{Hlc, HlcClock};
pub use ids::{CardNo, DocId, MemberId, SaleId, Sku, StaffId, StoreId, TxId};
pub use money::{Currency, Fen, Money, Rounding};
pub use phone::Phone;
