//! Stock per (store, SKU) and transfers between stores (调拨).
//!
//! Stock at a store is written only by that store: each movement (receiving, damage, a
//! stocktake's correction, shipping or receiving a transfer) records, per SKU, the quantity and
//! the store's running totals of goods in and goods out afterwards (`StockChange`). Taking a
//! change in is a maximum on two cells, so any replica that sees a store's changes, in any order
//! and any number of times, holds that store's stock exactly; chain-wide stock is the sum over
//! stores. Stock may go negative when the shelf disagrees with the system; it is flagged, not
//! refused.
//!
//! A transfer is a small state machine whose every step has exactly one writer, decided by the
//! state it leaves: headquarters approves or rejects a request; the source store ships or
//! cancels an approved transfer (headquarters may only ask it to cancel, since the source may
//! already have shipped while offline); the destination receives. So two replicas can never
//! take conflicting steps, and steps written offline apply in order once they arrive.

use serde::{Deserialize, Serialize};

use crate::catalogue::{QTY_MAX, Qty};
use crate::hlc::Hlc;
use crate::ids::{DocId, Sku, StaffId, StoreId};
use crate::money::Fen;

/// The longest free text on a movement or transfer (a reason, a supplier, a note).
pub const NOTE_CHARS_MAX: usize = 200;
/// The most lines one movement or transfer may carry (keeps an entry well under its limit).
pub const LINES_MAX: usize = 200;

/// One (store, SKU) cell write by the store that holds the goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChange {
    pub sku: Sku,
    /// Positive: goods in; negative: goods out.
    pub qty: Qty,
    /// The store's totals for this SKU after the change, in thousandths: goods in, goods out.
    pub total_in: u64,
    pub total_out: u64,
}

/// What moved stock at a store, besides the quantities (the entry's `StockChange`s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockMovement {
    /// 进货: goods received from a supplier, with what each unit cost.
    Received {
        supplier: String,
        note: String,
        costs: Vec<(Sku, Fen)>,
    },
    /// 报损: damaged, expired or lost goods written off.
    Damaged { reason: String },
    /// 盘点 opened: the stock the system expected of each SKU at this point of the log. The
    /// count is compared with this, so sales during the count are not lost.
    StocktakeOpened {
        stocktake: DocId,
        expected: Vec<(Sku, Qty)>,
    },
    /// 盘点 closed: per SKU what was counted and what was expected at opening; the changes
    /// are the differences.
    Counted {
        stocktake: DocId,
        counts: Vec<(Sku, Qty, Qty)>,
    },
    /// 积分兑换: goods given to a member for points (the wallet entry just before says which
    /// gift and what it cost).
    Gift {
        member: crate::ids::MemberId,
        gift: String,
    },
}

/// One step of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStep {
    Requested {
        from: StoreId,
        to: StoreId,
        lines: Vec<(Sku, Qty)>,
        note: String,
    },
    Approved,
    Rejected {
        reason: String,
    },
    /// Headquarters asks the source to cancel an approved transfer (it may have shipped).
    CancelRequested {
        reason: String,
    },
    /// The source cancels before shipping.
    Cancelled {
        reason: String,
    },
    /// The source shipped: its stock went down by the entry's changes; the goods are in transit.
    Shipped,
    /// The destination received the entry's changes; `discrepancy` explains any difference
    /// from what was shipped (required then).
    Received {
        discrepancy: Option<String>,
    },
}

impl TransferStep {
    pub fn name(&self) -> &'static str {
        match self {
            TransferStep::Requested { .. } => "requested",
            TransferStep::Approved => "approved",
            TransferStep::Rejected { .. } => "rejected",
            TransferStep::CancelRequested { .. } => "cancel_requested",
            TransferStep::Cancelled { .. } => "cancelled",
            TransferStep::Shipped => "shipped",
            TransferStep::Received { .. } => "received",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    Requested,
    Approved,
    Rejected,
    Cancelled,
    /// Shipped by the source, not yet received: goods in transit.
    Shipped,
    /// Received by the destination: closed.
    Received,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("a transfer from a store to itself")]
    SameStore,
    #[error("a transfer needs 1 to {LINES_MAX} lines of positive quantities, each SKU once")]
    Lines,
    #[error("{who} may not {step} a transfer that is {state:?}")]
    NotAllowed {
        who: StoreId,
        step: &'static str,
        state: TransferState,
    },
    #[error("received quantities differ from those shipped: record a discrepancy to receive them")]
    Discrepancy,
    #[error("{0}")]
    Text(String),
}

/// A step as it happened, for the transfer's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub by: StoreId,
    pub staff: StaffId,
    pub at: Hlc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: DocId,
    pub from: StoreId,
    pub to: StoreId,
    pub requested_by: StoreId,
    pub lines: Vec<(Sku, Qty)>,
    pub note: String,
    pub state: TransferState,
    pub cancel_requested: Option<String>,
    pub shipped: Vec<(Sku, Qty)>,
    pub received: Vec<(Sku, Qty)>,
    pub discrepancy: Option<String>,
    pub history: Vec<StepRecord>,
}

/// Checks free text on a movement or transfer.
pub fn check_note(field: &str, text: &str, required: bool) -> Result<(), String> {
    let len = text.chars().count();
    if required && text.trim().is_empty() {
        return Err(format!("{field} is required"));
    }
    if len > NOTE_CHARS_MAX {
        return Err(format!(
            "{field} is {len} characters long, at most {NOTE_CHARS_MAX}"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

/// Checks a list of lines: 1..=LINES_MAX, quantities positive and in range, each SKU once.
pub fn check_lines(lines: &[(Sku, Qty)]) -> bool {
    let mut skus: Vec<&Sku> = lines.iter().map(|(s, _)| s).collect();
    skus.sort();
    skus.dedup();
    !lines.is_empty()
        && lines.len() <= LINES_MAX
        && skus.len() == lines.len()
        && lines.iter().all(|(_, q)| q.0 > 0 && *q <= QTY_MAX)
}

/// The lines of a set of changes, as positive quantities.
pub fn lines_of(changes: &[StockChange]) -> Vec<(Sku, Qty)> {
    changes
        .iter()
        .map(|c| (c.sku.clone(), Qty(c.qty.0.abs())))
        .collect()
}

impl Transfer {
    /// A transfer as its request opens it. Any party may request: either store or HQ.
    pub fn open(
        id: DocId,
        origin: &StoreId,
        step: &TransferStep,
        record: StepRecord,
    ) -> Result<Transfer, TransferError> {
        let TransferStep::Requested {
            from,
            to,
            lines,
            note,
        } = step
        else {
            return Err(TransferError::NotAllowed {
                who: origin.clone(),
                step: step.name(),
                state: TransferState::Requested,
            });
        };
        if from == to {
            return Err(TransferError::SameStore);
        }
        if *from == StoreId::hq() || *to == StoreId::hq() {
            return Err(TransferError::Text(
                "goods move between stores; headquarters holds no stock".into(),
            ));
        }
        if *origin != *from && *origin != *to && *origin != StoreId::hq() {
            return Err(TransferError::NotAllowed {
                who: origin.clone(),
                step: "request",
                state: TransferState::Requested,
            });
        }
        if !check_lines(lines) {
            return Err(TransferError::Lines);
        }
        check_note("note", note, false).map_err(TransferError::Text)?;
        Ok(Transfer {
            id,
            from: from.clone(),
            to: to.clone(),
            requested_by: origin.clone(),
            lines: lines.clone(),
            note: note.clone(),
            state: TransferState::Requested,
            cancel_requested: None,
            shipped: Vec::new(),
            received: Vec::new(),
            discrepancy: None,
            history: vec![record],
        })
    }

    /// Whether `origin` may take `step` now, with `lines` the quantities it moves (shipped or
    /// received; empty for other steps). Nothing changes.
    pub fn check(
        &self,
        origin: &StoreId,
        step: &TransferStep,
        lines: &[(Sku, Qty)],
    ) -> Result<(), TransferError> {
        use TransferState as S;
        let hq = StoreId::hq();
        let allowed = match (step, self.state) {
            (TransferStep::Approved | TransferStep::Rejected { .. }, S::Requested) => *origin == hq,
            // Only a flag, accepted in any state: the source may have shipped or cancelled
            // before it saw the request, and every replica must take the same steps.
            (TransferStep::CancelRequested { .. }, _) => {
                *origin == hq && self.cancel_requested.is_none()
            }
            (TransferStep::Cancelled { .. } | TransferStep::Shipped, S::Approved) => {
                *origin == self.from
            }
            (TransferStep::Received { .. }, S::Shipped) => *origin == self.to,
            _ => false,
        };
        if !allowed {
            return Err(TransferError::NotAllowed {
                who: origin.clone(),
                step: step.name(),
                state: self.state,
            });
        }
        match step {
            TransferStep::Rejected { reason }
            | TransferStep::CancelRequested { reason }
            | TransferStep::Cancelled { reason } => {
                check_note("reason", reason, true).map_err(TransferError::Text)
            }
            TransferStep::Shipped if !check_lines(lines) => Err(TransferError::Lines),
            TransferStep::Received { discrepancy } => {
                if let Some(text) = discrepancy {
                    check_note("discrepancy", text, true).map_err(TransferError::Text)?;
                }
                let mut got = lines.to_vec();
                let mut sent = self.shipped.clone();
                got.sort();
                sent.sort();
                let mut skus: Vec<&Sku> = got.iter().map(|(s, _)| s).collect();
                skus.dedup();
                if lines.len() > LINES_MAX
                    || skus.len() != lines.len()
                    || lines.iter().any(|(_, q)| q.0 < 0 || *q > QTY_MAX)
                {
                    return Err(TransferError::Lines);
                }
                if got != sent && discrepancy.is_none() {
                    return Err(TransferError::Discrepancy);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes a step already checked (or found in a log: a step that does not fit is skipped by
    /// the caller, never half-applied).
    pub fn apply(&mut self, step: &TransferStep, lines: &[(Sku, Qty)], record: StepRecord) {
        match step {
            TransferStep::Requested { .. } => return,
            TransferStep::Approved => self.state = TransferState::Approved,
            TransferStep::Rejected { .. } => self.state = TransferState::Rejected,
            TransferStep::CancelRequested { reason } => {
                self.cancel_requested = Some(reason.clone());
            }
            TransferStep::Cancelled { .. } => self.state = TransferState::Cancelled,
            TransferStep::Shipped => {
                self.state = TransferState::Shipped;
                self.shipped = lines.to_vec();
            }
            TransferStep::Received { discrepancy } => {
                self.state = TransferState::Received;
                self.received = lines.to_vec();
                self.discrepancy = discrepancy.clone();
            }
        }
        self.history.push(record);
    }

    /// Goods shipped and not yet received.
    pub fn in_transit(&self) -> &[(Sku, Qty)] {
        match self.state {
            TransferState::Shipped => &self.shipped,
            _ => &[],
        }
    }
}

/// The change that moves a cell holding `(total_in, total_out)` by `qty`.
pub fn next_change((total_in, total_out): (u64, u64), sku: &Sku, qty: Qty) -> StockChange {
    let amount = qty.0.unsigned_abs();
    let (total_in, total_out) = if qty.0 >= 0 {
        (total_in.saturating_add(amount), total_out)
    } else {
        (total_in, total_out.saturating_add(amount))
    };
    StockChange {
        sku: sku.clone(),
        qty,
        total_in,
        total_out,
    }
}

pub fn absorb_cell((total_in, total_out): (u64, u64), change: &StockChange) -> (u64, u64) {
    (
        total_in.max(change.total_in),
        total_out.max(change.total_out),
    )
}

pub fn on_hand(total_in: u64, total_out: u64) -> i64 {
    i64::try_from(i128::from(total_in) - i128::from(total_out)).unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A model replica: every store's stock as far as the changes taken in go, through the same
    /// `next_change` and `absorb_cell` the journal and the views use.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct StockLedger {
        cells: BTreeMap<(StoreId, Sku), (u64, u64)>,
    }

    impl StockLedger {
        /// `store` moves `qty` of `sku` (its own stock): the change to record in its log.
        pub fn record(&mut self, store: &StoreId, sku: &Sku, qty: Qty) -> StockChange {
            let cell = self.cells.entry((store.clone(), sku.clone())).or_default();
            let change = next_change(*cell, sku, qty);
            *cell = (change.total_in, change.total_out);
            change
        }

        /// Takes in one change `store` made: a maximum on its two cells.
        pub fn absorb(&mut self, store: &StoreId, change: &StockChange) {
            let cell = self
                .cells
                .entry((store.clone(), change.sku.clone()))
                .or_default();
            *cell = absorb_cell(*cell, change);
        }

        pub fn on_hand(&self, store: &StoreId, sku: &Sku) -> i64 {
            self.cells
                .get(&(store.clone(), sku.clone()))
                .map_or(0, |(i, o)| on_hand(*i, *o))
        }

        /// All stores together.
        pub fn chain_wide(&self, sku: &Sku) -> i64 {
            self.cells
                .iter()
                .filter(|((_, s), _)| s == sku)
                .map(|(_, (i, o))| on_hand(*i, *o))
                .sum()
        }
    }

    fn store(i: usize) -> StoreId {
        StoreId::parse(["S001", "S002", "S003"][i]).unwrap()
    }

    fn sku(i: usize) -> Sku {
        Sku::parse(["A", "B"][i]).unwrap()
    }

    fn record(by: &StoreId) -> StepRecord {
        StepRecord {
            step: String::new(),
            by: by.clone(),
            staff: StaffId::system(),
            at: Hlc::ZERO,
        }
    }

    proptest! {
        /// Every store's changes, delivered to each replica in any order with any duplicates,
        /// give that replica exactly the stock the movements add up to, per store and
        /// chain-wide.
        #[test]
        fn stock_at_every_replica_is_the_sum_of_the_movements(
            moves in proptest::collection::vec((0..3usize, 0..2usize, -50i64..80), 1..80),
            deliveries in proptest::collection::vec(
                proptest::collection::vec(0..400usize, 0..300), 3),
        ) {
            let mut writers: Vec<StockLedger> = vec![StockLedger::default(); 3];
            let mut logs: Vec<Vec<StockChange>> = vec![Vec::new(); 3];
            let mut sums: BTreeMap<(usize, usize), i64> = BTreeMap::new();
            for (s, k, q) in &moves {
                let change = writers[*s].record(&store(*s), &sku(*k), Qty(*q));
                logs[*s].push(change);
                *sums.entry((*s, *k)).or_default() += q;
            }
            for order in deliveries {
                let mut replica = StockLedger::default();
                // Any order, duplicates included, then everything (a sync that catches up).
                for pick in order {
                    let s = pick % 3;
                    if let Some(change) = logs[s].get(pick / 3 % logs[s].len().max(1)) {
                        replica.absorb(&store(s), change);
                    }
                }
                for (s, log) in logs.iter().enumerate() {
                    log.iter().rev().for_each(|c| replica.absorb(&store(s), c));
                }
                for s in 0..3 {
                    for k in 0..2 {
                        let want = sums.get(&(s, k)).copied().unwrap_or(0);
                        prop_assert_eq!(replica.on_hand(&store(s), &sku(k)), want);
                    }
                }
                for k in 0..2 {
                    let want: i64 = (0..3).map(|s| sums.get(&(s, k)).copied().unwrap_or(0)).sum();
                    prop_assert_eq!(replica.chain_wide(&sku(k)), want);
                }
            }
        }
    }

    #[test]
    fn each_transfer_step_has_one_writer() {
        let (a, b, hq) = (store(0), store(1), StoreId::hq());
        let lines = vec![(sku(0), Qty(5_000))];
        let request = TransferStep::Requested {
            from: a.clone(),
            to: b.clone(),
            lines: lines.clone(),
            note: String::new(),
        };
        let id = DocId::for_entry("T", &b, 1);
        let mut t = Transfer::open(id.clone(), &b, &request, record(&b)).unwrap();
        // Bad requests: same store, a stranger, no lines.
        let same = TransferStep::Requested {
            from: a.clone(),
            to: a.clone(),
            lines: lines.clone(),
            note: String::new(),
        };
        assert_eq!(
            Transfer::open(id.clone(), &a, &same, record(&a)),
            Err(TransferError::SameStore)
        );
        assert!(Transfer::open(id.clone(), &store(2), &request, record(&a)).is_err());
        // Shipping before approval, approval by a store: refused.
        assert!(t.check(&a, &TransferStep::Shipped, &lines).is_err());
        assert!(t.check(&b, &TransferStep::Approved, &[]).is_err());
        t.check(&hq, &TransferStep::Approved, &[]).unwrap();
        t.apply(&TransferStep::Approved, &[], record(&hq));
        assert!(
            t.check(&hq, &TransferStep::Approved, &[]).is_err(),
            "approving twice"
        );
        assert!(
            t.check(&b, &TransferStep::Shipped, &lines).is_err(),
            "only the source ships"
        );
        t.check(&a, &TransferStep::Shipped, &lines).unwrap();
        t.apply(&TransferStep::Shipped, &lines, record(&a));
        assert_eq!(t.in_transit(), lines.as_slice());
        let more = vec![(sku(0), Qty(6_000))];
        let received = TransferStep::Received { discrepancy: None };
        assert_eq!(
            t.check(&b, &received, &more),
            Err(TransferError::Discrepancy)
        );
        let explained = TransferStep::Received {
            discrepancy: Some("多发一件".into()),
        };
        t.check(&b, &explained, &more).unwrap();
        t.check(&b, &received, &lines).unwrap();
        t.apply(&received, &lines, record(&b));
        assert_eq!(t.state, TransferState::Received);
        assert!(t.in_transit().is_empty());
        assert!(
            t.check(&a, &TransferStep::Cancelled { reason: "x".into() }, &[])
                .is_err()
        );
    }
}
