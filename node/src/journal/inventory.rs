//! The store's side of inventory: stock movements (进货, 报损, 盘点) and the transfer steps this
//! store may take (request, ship, cancel, receive). Every check is made before anything is
//! written; the views are `protocol::inventory`'s, the same as at headquarters.

use protocol::catalogue::{QTY_MAX, Qty, Unit};
use protocol::entry::Payload;
use protocol::inventory::{self, OpenStocktake, StockLevel};
use protocol::stock::{
    LINES_MAX, StockChange, StockMovement, Transfer, TransferError, TransferStep, check_lines,
    check_note, next_change,
};
use protocol::{DocId, Fen, Sku, StoreId};
use serde::{Deserialize, Serialize};

use super::{Journal, Outcome, Rejection, Request};
use crate::store::StoreError;
use crate::views::Overlay;

/// The most SKUs one stocktake may cover (its opening entry lists each with its expected count).
/// (300 keeps the closing entry, two rows per SKU, under the entry size limit.)
pub const STOCKTAKE_SKUS_MAX: usize = 300;

#[derive(Debug, Clone)]
pub struct StockRequest {
    pub action: StockAction,
}

#[derive(Debug, Clone)]
pub enum StockAction {
    /// 进货: goods in from a supplier, each line with what a unit cost.
    Receive {
        supplier: String,
        note: String,
        lines: Vec<(Sku, Qty, Option<Fen>)>,
    },
    /// 报损: goods written off.
    Damage {
        reason: String,
        lines: Vec<(Sku, Qty)>,
    },
    /// 盘点 opens: the expected count of each SKU is taken now.
    OpenStocktake { skus: Vec<Sku> },
    /// 盘点 closes with what was counted; each SKU moves by counted − expected at opening.
    Count {
        stocktake: DocId,
        counts: Vec<(Sku, Qty)>,
    },
}

#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub action: TransferAction,
}

#[derive(Debug, Clone)]
pub enum TransferAction {
    Request {
        from: StoreId,
        to: StoreId,
        lines: Vec<(Sku, Qty)>,
        note: String,
    },
    /// Ship what was approved.
    Ship {
        transfer: DocId,
    },
    Cancel {
        transfer: DocId,
        reason: String,
    },
    Receive {
        transfer: DocId,
        lines: Vec<(Sku, Qty)>,
        discrepancy: Option<String>,
    },
}

/// Why a stock or transfer request was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    #[error("{0}")]
    Invalid(String),
    #[error("no transfer {0}")]
    UnknownTransfer(DocId),
    #[error("no open stocktake {0}")]
    UnknownStocktake(DocId),
    #[error("{sku} is already being counted in stocktake {stocktake}")]
    BeingCounted { sku: Sku, stocktake: DocId },
    #[error("{0} is not for sale: not priced, or withdrawn")]
    NotForSale(Sku),
    #[error("{0} is not carried at this store (不在本店经营品项)")]
    NotCarried(Sku),
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

/// A stock movement's result: the entry, the document it opened or closed, and the levels now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockOutcome {
    pub seq: u64,
    pub document: Option<DocId>,
    pub levels: Vec<(Sku, Qty, bool)>,
}

impl Journal {
    fn catalogued(&self, sku: &Sku) -> Result<protocol::catalogue::Product, Rejection> {
        let ov = Overlay::new(&*self.store);
        inventory::product(&ov, sku)
            .map_err(Rejection::Storage)?
            .ok_or_else(|| InventoryError::UnknownSku(sku.clone()).into())
    }

    /// Checks lines of positive quantities of catalogued products, whole for pieces.
    fn check_quantities(&self, lines: &[(Sku, Qty)]) -> Result<(), Rejection> {
        if !check_lines(lines) {
            return Err(InventoryError::Invalid(format!(
                "1 to {LINES_MAX} lines of positive quantities up to {QTY_MAX}, each SKU once"
            ))
            .into());
        }
        for (sku, qty) in lines {
            let product = self.catalogued(sku)?;
            if product.unit == Unit::Piece && qty.0 % 1000 != 0 {
                return Err(
                    InventoryError::Invalid(format!("{sku} is counted in whole pieces")).into(),
                );
            }
        }
        Ok(())
    }

    /// The changes moving this store's stock by each (sku, qty).
    pub(super) fn stock_changes(
        &self,
        lines: &[(Sku, Qty)],
    ) -> Result<Vec<StockChange>, Rejection> {
        let ov = Overlay::new(&*self.store);
        let here = &self.settings.store_id;
        lines
            .iter()
            .map(|(sku, qty)| {
                let cell = inventory::stock_cell(&ov, here, sku).map_err(Rejection::Storage)?;
                Ok(next_change(cell, sku, *qty))
            })
            .collect()
    }

    pub(super) fn stock(&mut self, r: Request<StockRequest>) -> Result<Outcome, Rejection> {
        let here = self.settings.store_id.clone();
        let seq = self.tip.next_seq;
        let invalid = |e: String| Rejection::from(InventoryError::Invalid(e));
        let (movement, lines, document) = match &r.body.action {
            StockAction::Receive {
                supplier,
                note,
                lines,
            } => {
                check_note("supplier", supplier, false).map_err(invalid)?;
                check_note("note", note, false).map_err(invalid)?;
                let moved: Vec<(Sku, Qty)> =
                    lines.iter().map(|(s, q, _)| (s.clone(), *q)).collect();
                self.check_quantities(&moved)?;
                if let Some((sku, _, cost)) = lines
                    .iter()
                    .find(|(_, _, c)| c.is_some_and(|c| c.0 < 0 || c.0 > 100_000_000))
                {
                    return Err(invalid(format!("{sku}: cost {cost:?} out of range")));
                }
                let costs = lines
                    .iter()
                    .filter_map(|(s, _, c)| c.map(|c| (s.clone(), c)))
                    .collect();
                let movement = StockMovement::Received {
                    supplier: supplier.clone(),
                    note: note.clone(),
                    costs,
                };
                (movement, moved, None)
            }
            StockAction::Damage { reason, lines } => {
                check_note("reason", reason, true).map_err(invalid)?;
                self.check_quantities(lines)?;
                // Only goods on the books can be written off (count them first if the books
                // are short): 100,000 written off against 12 would take stock to −99,988.
                let ov = Overlay::new(&*self.store);
                for (sku, qty) in lines {
                    let on_hand = inventory::level(&ov, &here, sku)
                        .map_err(Rejection::Storage)?
                        .on_hand;
                    if qty.0 > on_hand.0 {
                        return Err(invalid(format!(
                            "{sku}: {qty} written off, {on_hand} on hand: count it first (盘点)"
                        )));
                    }
                }
                let out = lines.iter().map(|(s, q)| (s.clone(), Qty(-q.0))).collect();
                let movement = StockMovement::Damaged {
                    reason: reason.clone(),
                };
                (movement, out, None)
            }
            StockAction::OpenStocktake { skus } => {
                let mut unique = skus.clone();
                unique.sort();
                unique.dedup();
                if skus.is_empty() || skus.len() > STOCKTAKE_SKUS_MAX || unique.len() != skus.len()
                {
                    return Err(invalid(format!(
                        "a stocktake covers 1 to {STOCKTAKE_SKUS_MAX} SKUs, each once"
                    )));
                }
                // A SKU in two open stocktakes would be corrected twice.
                for (key, bytes) in self.store.scan_prefix(b"stt/")? {
                    let open: OpenStocktake = crate::views::decode(&key, &bytes)?;
                    if let Some((sku, _)) = open
                        .expected
                        .iter()
                        .find(|(s, _)| open.store == here && skus.contains(s))
                    {
                        return Err(InventoryError::BeingCounted {
                            sku: sku.clone(),
                            stocktake: open.id,
                        }
                        .into());
                    }
                }
                let ov = Overlay::new(&*self.store);
                let mut expected = Vec::with_capacity(skus.len());
                for sku in skus {
                    self.catalogued(sku)?;
                    let level = inventory::level(&ov, &here, sku).map_err(Rejection::Storage)?;
                    expected.push((sku.clone(), level.on_hand));
                }
                let id = DocId::for_entry("K", &here, seq);
                let movement = StockMovement::StocktakeOpened {
                    stocktake: id.clone(),
                    expected,
                };
                (movement, Vec::new(), Some(id))
            }
            StockAction::Count { stocktake, counts } => {
                let ov = Overlay::new(&*self.store);
                let open =
                    inventory::read::<OpenStocktake>(&ov, &inventory::keys::stocktake(stocktake))
                        .map_err(Rejection::Storage)?
                        .filter(|o: &OpenStocktake| o.store == here)
                        .ok_or_else(|| InventoryError::UnknownStocktake(stocktake.clone()))?;
                let mut seen: Vec<&Sku> = counts.iter().map(|(s, _)| s).collect();
                seen.sort();
                seen.dedup();
                if counts.is_empty() || seen.len() != counts.len() {
                    return Err(invalid("count each SKU once, at least one".into()));
                }
                let mut rows = Vec::new();
                let mut moved = Vec::new();
                for (sku, counted) in counts {
                    if counted.0 < 0 || *counted > QTY_MAX {
                        return Err(invalid(format!("{sku}: counted {counted}")));
                    }
                    let Some((_, expected)) = open.expected.iter().find(|(s, _)| s == sku) else {
                        return Err(invalid(format!("{sku} is not in stocktake {stocktake}")));
                    };
                    rows.push((sku.clone(), *counted, *expected));
                    if counted != expected {
                        moved.push((sku.clone(), Qty(counted.0 - expected.0)));
                    }
                }
                let movement = StockMovement::Counted {
                    stocktake: stocktake.clone(),
                    counts: rows,
                };
                (movement, moved, Some(stocktake.clone()))
            }
        };
        let changes = self.stock_changes(&lines)?;
        let skus: Vec<Sku> = match &movement {
            StockMovement::StocktakeOpened { expected, .. } => {
                expected.iter().map(|(s, _)| s.clone()).collect()
            }
            _ => lines.iter().map(|(s, _)| s.clone()).collect(),
        };
        let now_ms = (self.env.now_ms)();
        let payload = Payload::Stock { movement, changes };
        self.append(&r, now_ms, payload, |ov| {
            Ok(Outcome::Stock(StockOutcome {
                seq,
                document,
                levels: levels(ov, &here, &skus)?,
            }))
        })
    }

    pub(super) fn transfer(&mut self, r: Request<TransferRequest>) -> Result<Outcome, Rejection> {
        let here = self.settings.store_id.clone();
        let seq = self.tip.next_seq;
        let read = |id: &DocId| -> Result<Transfer, Rejection> {
            let ov = Overlay::new(&*self.store);
            inventory::read(&ov, &inventory::keys::transfer(id))
                .map_err(Rejection::Storage)?
                .ok_or_else(|| InventoryError::UnknownTransfer(id.clone()).into())
        };
        let (id, step, lines) = match &r.body.action {
            TransferAction::Request {
                from,
                to,
                lines,
                note,
            } => {
                let id = DocId::for_entry("T", &here, seq);
                let step = TransferStep::Requested {
                    from: from.clone(),
                    to: to.clone(),
                    lines: lines.clone(),
                    note: note.clone(),
                };
                let record = protocol::stock::StepRecord {
                    step: String::new(),
                    by: here.clone(),
                    staff: r.staff.clone(),
                    at: protocol::Hlc::ZERO,
                };
                Transfer::open(id.clone(), &here, &step, record)?;
                self.check_quantities(lines)?;
                (id, step, Vec::new())
            }
            TransferAction::Ship { transfer } => {
                let t = read(transfer)?;
                let out: Vec<(Sku, Qty)> = t
                    .lines
                    .iter()
                    .map(|(s, q)| (s.clone(), Qty(-q.0)))
                    .collect();
                t.check(&here, &TransferStep::Shipped, &t.lines)?;
                (transfer.clone(), TransferStep::Shipped, out)
            }
            TransferAction::Cancel { transfer, reason } => {
                let t = read(transfer)?;
                let step = TransferStep::Cancelled {
                    reason: reason.clone(),
                };
                t.check(&here, &step, &[])?;
                (transfer.clone(), step, Vec::new())
            }
            TransferAction::Receive {
                transfer,
                lines,
                discrepancy,
            } => {
                let t = read(transfer)?;
                let step = TransferStep::Received {
                    discrepancy: discrepancy.clone(),
                };
                t.check(&here, &step, lines)?;
                let got: Vec<(Sku, Qty)> = lines.iter().filter(|(_, q)| q.0 > 0).cloned().collect();
                (transfer.clone(), step, got)
            }
        };
        let changes = self.stock_changes(&lines)?;
        let now_ms = (self.env.now_ms)();
        let payload = Payload::Transfer {
            transfer: id.clone(),
            step,
            changes,
        };
        self.append(&r, now_ms, payload, |ov| {
            let transfer = inventory::read(ov, &inventory::keys::transfer(&id))
                .map_err(|e| StoreError::Damaged {
                    key: id.to_string(),
                    reason: e,
                })?
                .ok_or_else(|| super::missing("transfer"))?;
            Ok(Outcome::Transfer(Box::new(transfer)))
        })
    }
}

fn levels(
    ov: &Overlay<'_>,
    store: &StoreId,
    skus: &[Sku],
) -> Result<Vec<(Sku, Qty, bool)>, StoreError> {
    skus.iter()
        .map(|sku| {
            let StockLevel { on_hand, low, .. } =
                inventory::level(ov, store, sku).map_err(|e| StoreError::Damaged {
                    key: sku.to_string(),
                    reason: e,
                })?;
            Ok((sku.clone(), on_hand, low))
        })
        .collect()
}
