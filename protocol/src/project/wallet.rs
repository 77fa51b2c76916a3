//! What an entry does to a member's wallet.

use crate::entry::{Entry, Payload};
use crate::wallet::Wallet;

impl Wallet {
    /// Takes in everything an entry does to this wallet (the entry's member must be this one).
    pub fn take_entry(&mut self, entry: &Entry) {
        let origin = &entry.origin;
        match &entry.payload {
            Payload::Wallet { event, ops, .. } => {
                self.apply(origin, (entry.hlc, entry.business_date), event, ops)
            }
            Payload::Sale { sale, ops } => {
                self.absorb(origin, ops);
                let lent = u64::try_from(sale.tender.overdraft().0).unwrap_or(0);
                if lent > 0 {
                    let cell = &mut self.owed.entry(origin.clone()).or_default().0;
                    *cell = cell.saturating_add(lent);
                }
            }
            Payload::Return { refund, ops, .. } => {
                self.absorb(origin, ops);
                self.settle(origin, refund.overdraft());
            }
            Payload::Checkout { ops, .. } | Payload::ItemReturn { ops, .. } => {
                self.absorb(origin, ops)
            }
            Payload::MemberRegistered { .. }
            | Payload::MemberEdited { .. }
            | Payload::QuickSale(_)
            | Payload::Catalogue { .. }
            | Payload::StoreCatalogue { .. }
            | Payload::Stock { .. }
            | Payload::Transfer { .. }
            | Payload::Staff { .. }
            | Payload::StaffCredentials { .. }
            | Payload::CommissionRules { .. }
            | Payload::ChainRules { .. }
            | Payload::Audit { .. }
            | Payload::MemberErased { .. }
            | Payload::MemberListed { .. }
            | Payload::Marketing { .. }
            | Payload::Tiers { .. }
            | Payload::Gifts { .. }
            | Payload::ReferralRules { .. }
            | Payload::CardRules { .. } => {}
        }
    }
}
