//! 交班: a cashier closes their shift. The totals are the view the store keeps of its own
//! entries by writer (`protocol::shift`); the close writes them with the cash counted as an
//! audit note, which ends the shift (the next entry of theirs opens a new one).

use super::*;

impl Journal {
    pub(super) fn close_shift(&mut self, r: Request<Fen>) -> Result<Outcome, Rejection> {
        let counted = r.body;
        let shift = protocol::shift::open(&Overlay::new(&*self.store), &r.staff)
            .map_err(Rejection::Storage)?
            .unwrap_or_default();
        tracing::info!(staff = %r.staff, sales = shift.sales, expected = shift.cash_expected, counted = counted.0, "shift closed");
        let note = protocol::audit::Note::ShiftClosed {
            shift: shift.clone(),
            counted,
        };
        let now_ms = (self.env.now_ms)();
        self.append(&r, now_ms, Payload::Audit { note }, |_| {
            Ok(Outcome::ShiftClosed {
                shift: Box::new(shift),
                counted,
            })
        })
    }
}
