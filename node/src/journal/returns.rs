//! Item returns (退货) against the original sale: any lines, any part of a line, at the store
//! that made the sale or at any other. What may still be returned of a member's sale is a right
//! in the member's wallet (`Counter::Returnable`, one per line), created by the sale at its
//! store and spent by returns: a store returns only once it holds *all* that is left of the
//! sale, so it has seen every earlier return (they reached it before the rights did) and the
//! money it pays back follows exactly from `protocol::returns`. A sale without a member has no
//! wallet and is returned where it was made (its only writer).

use std::collections::BTreeMap;

use protocol::catalogue::{Qty, Unit};
use protocol::entry::Payload;
use protocol::inventory;
use protocol::returns::{self, ItemReturn, ReturnError};
use protocol::sale::Tender;
use protocol::stock::next_change;
use protocol::wallet::{CardId, Counter, REASON_CHARS_MAX, WalletError, check_text, lot_year};
use protocol::{MemberId, SaleId, Sku};

use super::{Journal, Outcome, Rejection, Request, SaleReturn, missing, units};
use crate::views::{ItemSaleView, Overlay, keys};

/// The right to return what is left of one line of a sale.
pub fn returnable(sale: &SaleId, line: usize) -> Counter {
    Counter::Returnable {
        sale: sale.clone(),
        line: u16::try_from(line).unwrap_or(u16::MAX),
    }
}

impl Journal {
    pub(super) fn return_items(
        &mut self,
        r: &Request<SaleReturn>,
        view: ItemSaleView,
    ) -> Result<Outcome, Rejection> {
        let here = self.settings.store_id.clone();
        let sale = &view.sale;
        let id = sale.sale_id.clone();
        check_text(&r.body.reason, REASON_CHARS_MAX)?;
        let asked = match &r.body.lines {
            Some(lines) => lines.clone(),
            None => returns::left(sale, &view.returned),
        };
        if asked.is_empty() && r.body.lines.is_none() {
            return Err(Rejection::AlreadyReturned(id));
        }
        let plan = returns::plan(sale, &view.returned, &asked)?;
        // Goods sold in whole pieces come back in whole pieces.
        let ov = Overlay::new(&*self.store);
        for l in &plan.lines {
            let piece = inventory::product(&ov, &l.sku)
                .map_err(Rejection::Storage)?
                .is_some_and(|p| p.unit == Unit::Piece);
            if piece && l.qty.0 % 1000 != 0 {
                let why = format!("{} is sold by the piece: it comes back whole", l.sku);
                return Err(super::InventoryError::Invalid(why).into());
            }
        }
        let mut ops = Vec::new();
        let mut wants = Vec::new();
        let mut points_taken = 0;
        let mut coupon_back = None;
        if let Some(member) = sale.member_id {
            let mut wallet = self.wallet_of(&member)?;
            let rights = wallet.counters.contains_key(&returnable(&id, 0));
            if !rights && view.origin != here {
                return Err(Rejection::ReturnElsewhere(id, view.origin.clone()));
            }
            if rights {
                // All that is left of every line must be here, not only the lines asked for.
                for (i, line) in sale.lines.iter().enumerate() {
                    let counter = returnable(&id, i);
                    let left = u64::try_from(line.qty.0 - view.returned[i].0).unwrap_or(0);
                    if wallet.balance(&counter) != left {
                        return Err(ReturnError::Damaged(
                            "returns of this sale made elsewhere have not all arrived here yet",
                        )
                        .into());
                    }
                    let short = left.saturating_sub(wallet.held(&counter, &here));
                    if short > 0 {
                        wants.push((counter, short));
                    }
                }
                for l in &plan.lines {
                    let counter = returnable(&id, usize::from(l.line));
                    if wants.is_empty() {
                        ops.push(wallet.take(&here, &counter, units_of(l.qty))?);
                    }
                }
            }
            // Points the sale earned go back out of their lot, as far as the member still has
            // them; points it used come back to the lot of the sale's year.
            let lot = Counter::Points {
                year: lot_year(view.business_date),
            };
            let want = plan.points_taken.1 - plan.points_taken.0;
            let take = want.min(wallet.balance(&lot));
            if take > 0 {
                match wallet.take(&here, &lot, take) {
                    Ok(op) => {
                        ops.push(op);
                        points_taken = take;
                    }
                    Err(WalletError::RightsElsewhere { wants: w }) => wants.extend(w),
                    Err(e) => return Err(e.into()),
                }
            }
            if !wants.is_empty() {
                return Err(WalletError::RightsElsewhere { wants }.into());
            }
            let back = plan.points_back.1 - plan.points_back.0;
            if back > 0 {
                ops.push(wallet.give(&here, &lot, back)?);
            }
            for refund in &plan.refunds {
                if let Tender::StoredValue {
                    principal, bonus, ..
                } = refund
                {
                    for (counter, fen) in [(Counter::Principal, principal), (Counter::Bonus, bonus)]
                    {
                        if fen.0 > 0 {
                            ops.push(wallet.give(&here, &counter, units(*fen)?)?);
                        }
                    }
                }
            }
            if let Some(coupon) = sale.coupon.as_ref().filter(|_| plan.complete) {
                let card = CardId::parse(coupon).map_err(|e| Rejection::Storage(e.to_string()))?;
                ops.push(wallet.give(&here, &Counter::Uses { card }, 1)?);
                coupon_back = Some(coupon.clone());
            }
        } else if view.origin != here {
            return Err(Rejection::ReturnElsewhere(id, view.origin.clone()));
        }
        // The goods go back on this store's shelf: one change per SKU.
        let mut back: BTreeMap<&Sku, i64> = BTreeMap::new();
        for l in &plan.lines {
            *back.entry(&l.sku).or_default() += l.qty.0;
        }
        let mut stock = Vec::with_capacity(back.len());
        for (sku, qty) in back {
            let cell = inventory::stock_cell(&ov, &here, sku).map_err(Rejection::Storage)?;
            stock.push(next_change(cell, sku, Qty(qty)));
        }
        let ret = ItemReturn {
            sale_id: id.clone(),
            member_id: sale.member_id,
            lines: plan.lines,
            amount: plan.amount,
            refunds: plan.refunds,
            points_back: plan.points_back.1 - plan.points_back.0,
            points_taken,
            coupon_back,
            reason: r.body.reason.trim().to_owned(),
        };
        let member: Option<MemberId> = sale.member_id;
        let now_ms = (self.env.now_ms)();
        let (policy, today) = self.points_when(now_ms);
        let payload = Payload::ItemReturn { ret, ops, stock };
        self.append(r, now_ms, payload, |ov| {
            let view: ItemSaleView = ov
                .get_as(&keys::item_sale(&id))?
                .ok_or_else(|| missing("item sale"))?;
            let wallet = match member {
                Some(m) => Some(super::wallet_summary(ov, &m, &here, today, &policy)?),
                None => None,
            };
            Ok(Outcome::ItemSale {
                sale: Box::new(view),
                wallet,
            })
        })
    }
}

fn units_of(qty: Qty) -> u64 {
    u64::try_from(qty.0).unwrap_or(0)
}

impl From<ReturnError> for Rejection {
    fn from(e: ReturnError) -> Self {
        match e {
            ReturnError::NothingLeft(id) => Rejection::AlreadyReturned(id),
            other => Rejection::ItemReturn(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_a_counter_of_its_own() {
        let sale = SaleId::parse("S001-00000009").unwrap();
        assert_eq!(returnable(&sale, 2).to_string(), "rt.S001-00000009.2");
        assert_ne!(returnable(&sale, 0), returnable(&sale, 1));
    }
}
