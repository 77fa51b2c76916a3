//! Held orders (挂单): a basket parked at the till while the cashier serves the next customer,
//! recalled later at any till of the store and paid, or voided (作废) before payment. A held
//! order is not a sale and not a fact of the log: it is a record of this store only (`ho/`),
//! written durably like everything else, and gone once paid or voided.

use protocol::catalogue::Qty;
use protocol::wallet::{CardId, WalletError};
use protocol::{DocId, MemberId, Sku, StaffId};
use serde::{Deserialize, Serialize};

use super::{Journal, Outcome, Rejection, Request};
use crate::store::Batch;
use crate::views;

/// The longest note on a held order.
pub const NOTE_CHARS_MAX: usize = 100;
/// The most orders a store may hold at once.
pub const HELD_MAX: usize = 200;

/// A basket as the till parked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOrder {
    pub member_id: Option<MemberId>,
    pub lines: Vec<(Sku, Qty)>,
    pub points: u64,
    /// The coupons the sale will redeem, in order (多券同用). Stored as the older `coupon:
    /// Option<CardId>` was: postcard writes an option's tag and a list's length of 0 or 1 as
    /// the same byte, so an order held before reads as its one coupon or none.
    pub coupons: Vec<CardId>,
    pub served_by: Option<StaffId>,
    pub note: String,
}

/// A held order with its number, who held it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldView {
    pub order_id: DocId,
    pub order: HeldOrder,
    pub held_by: StaffId,
    pub held_at_ms: u64,
}

/// A held basket's lines as the checkout takes them (a held line has no amount set).
pub fn basket_lines(lines: &[(Sku, Qty)]) -> Vec<super::BasketLine> {
    lines
        .iter()
        .map(|(sku, qty)| super::BasketLine::new(sku.clone(), *qty))
        .collect()
}

pub fn key(id: &DocId) -> Vec<u8> {
    format!("ho/{id}").into_bytes()
}

pub const PREFIX: &[u8] = b"ho/";
const SEQ: &[u8] = b"meta/held_seq";

impl Journal {
    pub(super) fn hold(&mut self, r: Request<HeldOrder>) -> Result<Outcome, Rejection> {
        let o = &r.body;
        if o.note.chars().count() > NOTE_CHARS_MAX || o.note.chars().any(char::is_control) {
            return Err(WalletError::TooLong(NOTE_CHARS_MAX).into());
        }
        if self.store.scan_prefix(PREFIX)?.len() >= HELD_MAX {
            return Err(Rejection::Held(format!(
                "this store already holds {HELD_MAX} orders: pay or void some"
            )));
        }
        // A basket that could not be sold is not held: price it as the checkout would.
        let now_ms = (self.env.now_ms)();
        let today = self.settings.calendar.business_date(now_ms);
        let member = match o.member_id {
            Some(id) => Some((
                self.member_view(&id)?
                    .ok_or(Rejection::MemberNotFound(id))?,
                self.wallet_of(&id)?,
            )),
            None => None,
        };
        super::price_basket(
            &*self.store,
            &self.settings,
            today,
            member.as_ref().map(|(m, w)| (m, w)),
            (&basket_lines(&o.lines), &o.coupons, o.points),
        )?;
        let seq: u64 = self.read(SEQ)?.unwrap_or(0) + 1;
        let view = HeldView {
            order_id: DocId::for_entry("H", &self.settings.store_id, seq),
            order: o.clone(),
            held_by: r.staff.clone(),
            held_at_ms: now_ms,
        };
        let outcome = Outcome::Held(Box::new(view.clone()));
        let mut batch = Batch::default();
        batch.put(SEQ.to_vec(), views::encode(&seq));
        batch.put(key(&view.order_id), views::encode(&view));
        self.record(&r, batch, outcome)
    }

    /// Voids a held order (before payment): it is gone from every till.
    pub(super) fn void_held(&mut self, r: Request<DocId>) -> Result<Outcome, Rejection> {
        let id = r.body.clone();
        let Some(held) = self.read::<HeldView>(&key(&id))? else {
            return Err(Rejection::OrderNotFound(id));
        };
        tracing::info!(order = %id, staff = %r.staff, "held order voided");
        // The void is in the log, for the audit log (操作日志); the order goes in the same batch.
        let note = protocol::audit::Note::HeldVoided {
            order: id.clone(),
            held_by: held.held_by,
            member_id: held.order.member_id,
            lines: u32::try_from(held.order.lines.len()).unwrap_or(u32::MAX),
        };
        let now_ms = (self.env.now_ms)();
        // The order goes in the same batch as the note and the request's record.
        self.append(&r, now_ms, protocol::Payload::Audit { note }, |ov| {
            ov.delete(key(&id));
            Ok(Outcome::Voided {
                order_id: id.clone(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held order as stored before it kept several coupons (`coupon: Option<CardId>`).
    #[derive(Serialize)]
    struct OneCoupon {
        member_id: Option<MemberId>,
        lines: Vec<(Sku, Qty)>,
        points: u64,
        coupon: Option<CardId>,
        served_by: Option<StaffId>,
        note: String,
    }

    #[test]
    fn an_order_held_with_one_coupon_before_reads_as_its_list() {
        let coupon = CardId::parse("S001-00000007").unwrap();
        for old in [None, Some(coupon.clone())] {
            let bytes = postcard::to_stdvec(&OneCoupon {
                member_id: None,
                lines: vec![(Sku::parse("A1").unwrap(), Qty(1_000))],
                points: 3,
                coupon: old.clone(),
                served_by: None,
                note: "靠窗".into(),
            })
            .unwrap();
            let read: HeldOrder = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(read.coupons, old.into_iter().collect::<Vec<_>>());
            assert_eq!((read.points, read.note.as_str()), (3, "靠窗"));
        }
    }
}
