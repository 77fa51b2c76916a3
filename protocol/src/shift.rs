//! 交班: a cashier's shift at a store — what they took and paid back by tender since their last
//! close, and the cash the drawer should hold. Kept as a view of the store's own entries, each
//! added to the shift of the staff who wrote it (`apply`); closing writes the totals, the cash
//! counted and the difference as an audit note (`crate::audit::Note::ShiftClosed`), which ends
//! the shift, so a rebuild from the log gives the same shifts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Payload};
use crate::ids::StaffId;
use crate::inventory::ViewKv;
use crate::money::Fen;
use crate::sale::Tender;
use crate::wallet::WalletEvent;

/// Money in and out of one tender kind in a shift, in fen (foreign cash in hundredths of its
/// own currency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenderTotal {
    pub taken: i64,
    pub times: u64,
    pub paid_back: i64,
    pub refunds: u64,
}

/// One cashier's shift so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// Its first entry: seq and wall time.
    pub opened_seq: u64,
    pub opened_ms: u64,
    /// Sales (quick and item) and what they were due, in fen.
    pub sales: u64,
    pub sales_amount: i64,
    /// Returns and what they paid back.
    pub returns: u64,
    pub returned: i64,
    /// Top-ups and cards sold (money taken that is not a sale), and stored value paid back in
    /// cash (退储值, 退卡).
    pub top_ups: i64,
    pub cards_sold: i64,
    pub refunded_cash: i64,
    /// By tender kind (`cash`, `wechat`, `alipay`, `card`, `stored_value`, `foreign_cash:USD`).
    pub tenders: BTreeMap<String, TenderTotal>,
    /// Yuan the drawer should hold beyond its float: cash taken less cash paid back, less
    /// change given in yuan for foreign cash.
    pub cash_expected: i64,
}

impl Shift {
    fn take(&mut self, t: &Tender) {
        let total = self.tenders.entry(kind(t)).or_default();
        total.taken += amount(t);
        total.times += 1;
        self.cash_expected += drawer(t);
    }

    fn pay_back(&mut self, t: &Tender) {
        let total = self.tenders.entry(kind(t)).or_default();
        total.paid_back += amount(t);
        total.refunds += 1;
        self.cash_expected -= drawer(t);
    }

    fn cash_out(&mut self, fen: Fen) {
        let total = self.tenders.entry("cash".into()).or_default();
        total.paid_back += fen.0;
        total.refunds += 1;
        self.refunded_cash += fen.0;
        self.cash_expected -= fen.0;
    }

    /// Adds what `entry` did to the drawer and the counts; whether it changed anything.
    pub fn add(&mut self, entry: &Entry) -> bool {
        match &entry.payload {
            Payload::Sale { sale, .. } | Payload::QuickSale(sale) => {
                self.sales += 1;
                self.sales_amount += sale.amount.0;
                self.take(&sale.tender);
            }
            Payload::Checkout { sale, .. } => {
                self.sales += 1;
                self.sales_amount += sale.due.0;
                sale.tenders.iter().for_each(|t| self.take(t));
            }
            Payload::Return { amount, refund, .. } => {
                self.returns += 1;
                self.returned += amount.0;
                self.pay_back(refund);
            }
            Payload::ItemReturn { ret, .. } => {
                self.returns += 1;
                self.returned += ret.amount.0;
                ret.refunds.iter().for_each(|t| self.pay_back(t));
            }
            Payload::Wallet { event, .. } => match event {
                WalletEvent::TopUp { paid, tender, .. } => {
                    self.top_ups += paid.0;
                    self.take(tender);
                }
                WalletEvent::CardSold { price, tender, .. } => {
                    self.cards_sold += price.0;
                    self.take(tender);
                }
                WalletEvent::Refunded { principal, .. } => self.cash_out(*principal),
                WalletEvent::Closed { .. } | WalletEvent::ClosedUnderRules { .. } => {
                    let cash = event.closing().map_or(Fen(0), |c| c.cash());
                    self.cash_out(cash)
                }
                _ => return false,
            },
            _ => return false,
        }
        true
    }
}

fn kind(t: &Tender) -> String {
    match t {
        Tender::ForeignCash { currency, .. } => format!("foreign_cash:{currency}"),
        t => t.kind().to_owned(),
    }
}

/// What a tender counts as: foreign cash in hundredths of its currency, the rest in fen.
fn amount(t: &Tender) -> i64 {
    match t {
        Tender::ForeignCash { amount, .. } => *amount,
        t => t.amount().0,
    }
}

/// What a tender leaves in the yuan drawer: cash less change; foreign cash's change in yuan.
fn drawer(t: &Tender) -> i64 {
    match t {
        Tender::Cash { .. } => t.amount().0,
        Tender::ForeignCash { change, .. } => -change.0,
        _ => 0,
    }
}

pub mod keys {
    /// A cashier's open shift.
    pub fn open(staff: &crate::ids::StaffId) -> Vec<u8> {
        format!("sh/{staff}").into_bytes()
    }
}

/// The open shift of `staff`, if they have written anything since their last close.
pub fn open(kv: &dyn ViewKv, staff: &StaffId) -> Result<Option<Shift>, String> {
    crate::inventory::read(kv, &keys::open(staff))
}

/// Adds one of this store's own entries to its writer's shift; a close ends the shift.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    if let Payload::Audit {
        note: crate::audit::Note::ShiftClosed { .. },
    } = &entry.payload
    {
        kv.delete(keys::open(&entry.staff));
        return Ok(());
    }
    let mut shift = open(kv, &entry.staff)?.unwrap_or(Shift {
        opened_seq: entry.seq,
        opened_ms: entry.hlc.wall_ms,
        ..Shift::default()
    });
    if shift.add(entry) {
        let bytes = postcard::to_stdvec(&shift).map_err(|e| e.to_string())?;
        kv.put(keys::open(&entry.staff), bytes);
    }
    Ok(())
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::entry::EntryHash;
    use crate::hlc::Hlc;
    use crate::ids::{SaleId, StoreId, TxId};
    use crate::money::Currency;
    use crate::points::Points;
    use crate::sale::QuickSale;

    type Kv = BTreeMap<Vec<u8>, Vec<u8>>;

    fn entry(seq: u64, staff: &str, payload: Payload) -> Entry {
        Entry {
            origin: StoreId::parse("S001").unwrap(),
            seq,
            hlc: Hlc {
                wall_ms: 1_000 + seq,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            staff: StaffId::parse(staff).unwrap(),
            tx: TxId::parse(&format!("key-{seq:08}")).unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    fn sale(seq: u64, amount: i64, tender: Tender) -> Payload {
        Payload::QuickSale(QuickSale {
            sale_id: SaleId::for_entry(&StoreId::parse("S001").unwrap(), seq),
            member_id: None,
            category: None,
            amount: Fen(amount),
            currency: Currency::CNY,
            tender,
            points_earned: Points(0),
        })
    }

    /// Each cashier's drawer: cash taken less change and cash paid back, foreign cash's yuan
    /// change out of it, other tenders beside it; a close ends the shift and the next entry
    /// opens another.
    #[test]
    fn a_shift_adds_its_cashiers_cash_and_a_close_starts_the_next() {
        let mut kv = Kv::new();
        let cash = |tendered: i64, change: i64| Tender::Cash {
            tendered: Fen(tendered),
            change: Fen(change),
        };
        let entries = [
            entry(1, "c01", sale(1, 88_80, cash(100_00, 11_20))),
            entry(2, "c02", sale(2, 50_00, cash(50_00, 0))),
            entry(
                3,
                "c01",
                sale(
                    3,
                    30_00,
                    Tender::WeChat {
                        amount: Fen(30_00),
                        reference: "WX1".into(),
                    },
                ),
            ),
            entry(
                4,
                "c01",
                sale(
                    4,
                    70_00,
                    Tender::ForeignCash {
                        currency: "USD".parse().unwrap(),
                        amount: 10_00,
                        rate: rust_decimal::Decimal::new(72, 1),
                        value: Fen(72_00),
                        change: Fen(2_00),
                    },
                ),
            ),
            entry(
                5,
                "c01",
                Payload::Return {
                    sale: SaleId::for_entry(&StoreId::parse("S001").unwrap(), 1),
                    member_id: None,
                    amount: Fen(88_80),
                    refund: cash(88_80, 0),
                    reason: "x".into(),
                    ops: Vec::new(),
                },
            ),
        ];
        for e in &entries {
            apply(&mut kv, e).unwrap();
        }
        let c01 = open(&kv, &StaffId::parse("c01").unwrap()).unwrap().unwrap();
        assert_eq!((c01.opened_seq, c01.sales, c01.returns), (1, 3, 1));
        assert_eq!(c01.sales_amount, 188_80);
        // 88.80 in, 88.80 back, 2.00 of change for the dollars.
        assert_eq!(c01.cash_expected, -2_00);
        assert_eq!(c01.tenders["wechat"].taken, 30_00);
        assert_eq!(c01.tenders["foreign_cash:USD"].taken, 10_00);
        let c02 = open(&kv, &StaffId::parse("c02").unwrap()).unwrap().unwrap();
        assert_eq!(c02.cash_expected, 50_00);

        let close = Payload::Audit {
            note: crate::audit::Note::ShiftClosed {
                shift: c01,
                counted: Fen(0),
            },
        };
        apply(&mut kv, &entry(6, "c01", close)).unwrap();
        assert_eq!(open(&kv, &StaffId::parse("c01").unwrap()).unwrap(), None);
        apply(&mut kv, &entry(7, "c01", sale(7, 5_00, cash(5_00, 0)))).unwrap();
        let next = open(&kv, &StaffId::parse("c01").unwrap()).unwrap().unwrap();
        assert_eq!(
            (next.opened_seq, next.sales, next.cash_expected),
            (7, 1, 5_00)
        );
    }
}
