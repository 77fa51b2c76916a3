//! Item returns (退货) against the original sale: any lines, any part of a line, at the store
//! that made the sale or at any other. The right to take a member's sale back is a token in the
//! member's wallet (`Counter::Returnable`, one unit), created by the sale at its store and moved
//! like any right: only its holder writes the sale's returns, and since rights move only
//! through headquarters' feed after the entries that preceded them, the holder has seen every
//! earlier return, so what is left and the money it pays back follow exactly from
//! `protocol::returns`. The return that leaves nothing spends the token. A sale without a
//! member has no wallet and is returned where it was made (its only writer).

use std::collections::BTreeMap;

use protocol::catalogue::{Qty, Unit};
use protocol::entry::Payload;
use protocol::inventory;
use protocol::returns::{self, ItemReturn, ReturnError};
use protocol::sale::Tender;
use protocol::stock::next_change;
use protocol::wallet::{CardId, Counter, REASON_CHARS_MAX, WalletError, check_text, lot_year};
use protocol::{Fen, MemberId, SaleId, Sku};

use super::{Journal, Outcome, Rejection, Request, SaleReturn, fen, missing, sale_outcome, units};
use crate::views::{self, ItemSaleView, Overlay, SaleView, keys};

/// The right to take a sale's returns.
pub fn return_token(sale: &SaleId) -> Counter {
    Counter::Returnable { sale: sale.clone() }
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
            let token = return_token(&id);
            let rights = wallet.counters.contains_key(&token);
            if !rights && view.origin != here {
                return Err(Rejection::ReturnElsewhere(id, view.origin.clone()));
            }
            if rights {
                // Spent means nothing is left: this view has not heard of that return yet.
                if wallet.balance(&token) == 0 {
                    return Err(ReturnError::NotReady.into());
                }
                if wallet.held(&token, &here) == 0 {
                    wants.push((token.clone(), 1));
                }
            }
            // Points the sale earned go back out of their lot, as far as the member still has
            // them.
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
            if rights && plan.complete {
                ops.push(wallet.take(&here, &token, 1)?);
            }
            // Points the sale used come back to the lots they were taken from.
            let lots: Vec<i64> = view
                .points_lots
                .iter()
                .map(|(_, u)| units_i64(*u))
                .collect();
            let (before, after) = (
                returns::cumulative_split(&lots, units_i64(plan.points_back.0)),
                returns::cumulative_split(&lots, units_i64(plan.points_back.1)),
            );
            for (k, (year, _)) in view.points_lots.iter().enumerate() {
                let back = u64::try_from(after[k] - before[k]).unwrap_or(0);
                if back > 0 {
                    ops.push(wallet.give(&here, &Counter::Points { year: *year }, back)?);
                }
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
            // A whole return gives back the coupons' uses: the sale's one, or the several it
            // redeemed together (then `coupon_back` names none; the ops say which).
            if plan.complete {
                for coupon in sale.coupon.iter().chain(&view.coupons) {
                    let card =
                        CardId::parse(coupon).map_err(|e| Rejection::Storage(e.to_string()))?;
                    ops.push(wallet.give(&here, &Counter::Uses { card }, 1)?);
                }
                coupon_back = sale.coupon.clone();
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

fn units_i64(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

impl From<ReturnError> for Rejection {
    fn from(e: ReturnError) -> Self {
        match e {
            ReturnError::NothingLeft(id) => Rejection::AlreadyReturned(id),
            other => Rejection::ItemReturn(other),
        }
    }
}

impl Journal {
    pub(super) fn return_sale(&mut self, r: Request<SaleReturn>) -> Result<Outcome, Rejection> {
        let id = r.body.sale_id.clone();
        if let Some(view) = self.read::<views::ItemSaleView>(&keys::item_sale(&id))? {
            return self.return_items(&r, view);
        }
        let Some(view) = self.read::<SaleView>(&keys::sale(&id))? else {
            return Err(Rejection::SaleNotFound(id));
        };
        if r.body.lines.is_some() {
            return Err(protocol::returns::ReturnError::Lines.into());
        }
        let here = self.settings.store_id.clone();
        if view.origin != here {
            return Err(Rejection::ReturnElsewhere(id, view.origin));
        }
        if view.returned_by.is_some() {
            return Err(Rejection::AlreadyReturned(id));
        }
        check_text(&r.body.reason, REASON_CHARS_MAX)?;
        let sale = &view.sale;
        let mut ops = Vec::new();
        let mut refund = sale.tender.clone();
        if let Some(member) = sale.member_id {
            let mut wallet = self.wallet_of(&member)?;
            let earned = units(Fen(sale.points_earned.0))?;
            if earned > 0 {
                let lot = Counter::Points {
                    year: lot_year(view.business_date),
                };
                ops.push(wallet.take(&here, &lot, earned)?);
            }
            if let Tender::StoredValue {
                principal,
                bonus,
                overdraft,
            } = sale.tender
            {
                // What the member still owes for this sale is forgiven; what they already paid
                // off comes back as principal, like the rest.
                let forgiven = units(overdraft)?.min(wallet.owed_at(&here));
                let paid_off = units(overdraft)? - forgiven;
                let principal = units(principal)? + paid_off;
                for (counter, units) in [
                    (Counter::Principal, principal),
                    (Counter::Bonus, units(bonus)?),
                ] {
                    if units > 0 {
                        ops.push(wallet.give(&here, &counter, units)?);
                    }
                }
                refund = Tender::StoredValue {
                    principal: fen(principal),
                    bonus,
                    overdraft: fen(forgiven),
                };
            }
        }
        let payload = Payload::Return {
            sale: id.clone(),
            member_id: sale.member_id,
            amount: sale.amount,
            refund,
            reason: r.body.reason.trim().to_owned(),
            ops,
        };
        let now_ms = (self.env.now_ms)();
        let when = self.points_when(now_ms);
        let member = sale.member_id;
        self.append(&r, now_ms, payload, |ov| {
            sale_outcome(ov, &id, member, &here, when)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_has_a_token_of_its_own() {
        let sale = SaleId::parse("S001-00000009").unwrap();
        assert_eq!(return_token(&sale).to_string(), "rt.S001-00000009");
    }
}
