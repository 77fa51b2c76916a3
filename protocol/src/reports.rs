//! Sales reports kept as entries arrive (报表): per store and business day, per hour, per
//! category and per tender, as sums, so any order of the same entries gives the same cells and a
//! report for a period reads one cell per day and store instead of scanning history. The same
//! code serves headquarters (every store) and, later, a store's own slice.
//!
//! Keys, date first so a day is one prefix: `rp/d/<date>/<store>` (day), `rp/h/<date>/<store>/<hh>`
//! (hour of the sale, in the chain's time zone), `rp/c/<date>/<store>/<category>` (goods by
//! category), `rp/t/<date>/<store>/<tender>` (tenders by kind), `rp/w/<date>/<store>` (stored
//! value and cards: 买卡金额 / 赠送金额 / 卡内消费), `rp/s/<date>/<store>/<sku>` (goods by SKU, for
//! best and worst sellers; `sales` counts units in thousandths), `rp/m/<date>/<store>/<member>`
//! (what each member bought and returned: active, returning and dormant members),
//! `rp/p/<date>/<store>/<member>` (points a member earned, less returns: tiers by points),
//! `rp/n/<date>/<store>/<member>` (members who joined there that day).

pub mod query;

use chrono::{NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use crate::calendar::StoreCalendar;
use crate::entry::{Entry, Payload};
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::sale::Tender;
use crate::wallet::WalletEvent;

/// Sales of one store in one cell (a day, an hour, a category), in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesCell {
    /// Sales (receipts): quick and item sales.
    pub sales: u64,
    /// Of which by members.
    pub member_sales: u64,
    /// Before discounts.
    pub gross: i64,
    pub discount: i64,
    /// What was due and paid.
    pub net: i64,
    /// Returns (退货) made here on this day, and the money they paid back.
    pub returns: u64,
    pub returned: i64,
}

impl SalesCell {
    pub fn add(&mut self, other: &SalesCell) {
        self.sales += other.sales;
        self.member_sales += other.member_sales;
        self.gross += other.gross;
        self.discount += other.discount;
        self.net += other.net;
        self.returns += other.returns;
        self.returned += other.returned;
    }
}

/// One kind of tender in a day: paid in, paid back (returns), and how many times each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenderCell {
    pub paid: i64,
    pub times: u64,
    pub refunded: i64,
    pub refunds: u64,
}

impl TenderCell {
    pub fn add(&mut self, other: &TenderCell) {
        self.paid += other.paid;
        self.times += other.times;
        self.refunded += other.refunded;
        self.refunds += other.refunds;
    }
}

/// Stored value and cards at one store in one day, in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletCell {
    /// 充值: how many, what members paid, and the bonus the offers gave (赠送金额).
    pub top_ups: u64,
    pub top_up_paid: i64,
    pub bonus_given: i64,
    /// 售卡: count and period cards sold, and their price (买卡金额).
    pub cards_sold: u64,
    pub card_sales: i64,
    /// 卡内消费: stored value spent in sales here (principal and bonus), net of returns.
    pub spent_principal: i64,
    pub spent_bonus: i64,
    /// Stored value paid back in cash (退储值): principal, and the bonus forfeited with it.
    pub refunded_principal: i64,
    pub bonus_forfeited: i64,
    /// 退卡: memberships closed here, and what their count and period cards paid back (their
    /// principal is in `refunded_principal`, their bonus in `bonus_forfeited`).
    #[serde(default)]
    pub closings: u64,
    #[serde(default)]
    pub card_refunds: i64,
    /// 退卡: the bonus paid back by the chain's share, and the handling fee kept (退卡手续费).
    #[serde(default)]
    pub bonus_refunded: i64,
    #[serde(default)]
    pub closing_fees: i64,
}

impl WalletCell {
    pub fn add(&mut self, o: &WalletCell) {
        self.top_ups += o.top_ups;
        self.top_up_paid += o.top_up_paid;
        self.bonus_given += o.bonus_given;
        self.cards_sold += o.cards_sold;
        self.card_sales += o.card_sales;
        self.spent_principal += o.spent_principal;
        self.spent_bonus += o.spent_bonus;
        self.refunded_principal += o.refunded_principal;
        self.bonus_forfeited += o.bonus_forfeited;
        self.closings += o.closings;
        self.card_refunds += o.card_refunds;
        self.bonus_refunded += o.bonus_refunded;
        self.closing_fees += o.closing_fees;
    }
}

pub mod keys {
    use super::*;

    pub fn day_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/d/{date}/").into_bytes()
    }
    pub fn day(date: NaiveDate, store: &StoreId) -> Vec<u8> {
        format!("rp/d/{date}/{store}").into_bytes()
    }
    pub fn hour_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/h/{date}/").into_bytes()
    }
    pub fn hour(date: NaiveDate, store: &StoreId, hour: u32) -> Vec<u8> {
        format!("rp/h/{date}/{store}/{hour:02}").into_bytes()
    }
    pub fn category_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/c/{date}/").into_bytes()
    }
    pub fn category(date: NaiveDate, store: &StoreId, category: &str) -> Vec<u8> {
        format!("rp/c/{date}/{store}/{category}").into_bytes()
    }
    pub fn tender_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/t/{date}/").into_bytes()
    }
    pub fn tender(date: NaiveDate, store: &StoreId, kind: &str) -> Vec<u8> {
        format!("rp/t/{date}/{store}/{kind}").into_bytes()
    }
    pub fn sku_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/s/{date}/").into_bytes()
    }
    pub fn sku(date: NaiveDate, store: &StoreId, sku: &crate::ids::Sku) -> Vec<u8> {
        format!("rp/s/{date}/{store}/{sku}").into_bytes()
    }
    pub fn member_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/m/{date}/").into_bytes()
    }
    pub fn member(date: NaiveDate, store: &StoreId, member: &crate::ids::MemberId) -> Vec<u8> {
        format!("rp/m/{date}/{store}/{member}").into_bytes()
    }
    /// Points a member earned at a store on a day, less what returns took back (an `i64`).
    pub fn member_points_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/p/{date}/").into_bytes()
    }
    pub fn member_points(
        date: NaiveDate,
        store: &StoreId,
        member: &crate::ids::MemberId,
    ) -> Vec<u8> {
        format!("rp/p/{date}/{store}/{member}").into_bytes()
    }
    pub fn joined_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/n/{date}/").into_bytes()
    }
    pub fn joined(date: NaiveDate, store: &StoreId, member: &crate::ids::MemberId) -> Vec<u8> {
        format!("rp/n/{date}/{store}/{member}").into_bytes()
    }
    pub fn wallet_prefix(date: NaiveDate) -> Vec<u8> {
        format!("rp/w/{date}/").into_bytes()
    }
    pub fn wallet(date: NaiveDate, store: &StoreId) -> Vec<u8> {
        format!("rp/w/{date}/{store}").into_bytes()
    }
}

fn bump<T: Default + Serialize + for<'de> Deserialize<'de>>(
    kv: &mut dyn ViewKv,
    key: Vec<u8>,
    f: impl FnOnce(&mut T),
) -> Result<(), String> {
    let mut cell: T = match kv.get(&key)? {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| e.to_string())?,
        None => T::default(),
    };
    f(&mut cell);
    kv.put(key, postcard::to_stdvec(&cell).map_err(|e| e.to_string())?);
    Ok(())
}

/// Points a sale earned its member, or (negative) a return took back from them.
pub fn member_points(payload: &Payload) -> i64 {
    match payload {
        Payload::Sale { sale, .. } | Payload::QuickSale(sale) => sale.points_earned.0,
        Payload::Checkout { sale, .. } => sale.points_earned.0,
        Payload::ItemReturn { ret, .. } => -i64::try_from(ret.points_taken).unwrap_or(i64::MAX),
        Payload::Return { ops, .. } => -ops
            .iter()
            .filter_map(|op| match (&op.counter, &op.change) {
                (
                    crate::wallet::Counter::Points { .. },
                    crate::escrow::Change::Debit { units, .. },
                ) => i64::try_from(*units).ok(),
                _ => None,
            })
            .sum::<i64>(),
        _ => 0,
    }
}

/// The member a sale or a return was for (whose cell `keys::member` it changes).
pub fn member_of(payload: &Payload) -> Option<crate::ids::MemberId> {
    match payload {
        Payload::Sale { sale: s, .. } | Payload::QuickSale(s) => s.member_id,
        Payload::Checkout { sale: s, .. } => s.member_id,
        Payload::Return { member_id, .. } => *member_id,
        Payload::ItemReturn { ret, .. } => ret.member_id,
        _ => None,
    }
}

/// Adds what a sale or a return did to the report cells of its store and business day. Other
/// entries change nothing. `calendar` gives the hour of day (the chain's time zone).
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry, calendar: &StoreCalendar) -> Result<(), String> {
    let (date, store) = (entry.business_date, &entry.origin);
    let hour = calendar.local_time(entry.hlc.wall_ms).hour();
    let sale = |member: bool, gross: i64, net: i64| SalesCell {
        sales: 1,
        member_sales: u64::from(member),
        gross,
        discount: gross - net,
        net,
        ..SalesCell::default()
    };
    if let Payload::MemberRegistered { member_id, .. } = &entry.payload {
        kv.put(keys::joined(date, store, member_id), vec![1]);
        return Ok(());
    }
    let member = member_of(&entry.payload);
    let (cell, tenders, refunds): (SalesCell, Vec<&Tender>, Vec<&Tender>) = match &entry.payload {
        Payload::Sale { sale: s, .. } | Payload::QuickSale(s) => {
            let category = s.category.as_deref().unwrap_or("");
            let cell = sale(s.member_id.is_some(), s.amount.0, s.amount.0);
            bump(
                kv,
                keys::category(date, store, category),
                |c: &mut SalesCell| c.add(&cell),
            )?;
            (cell, vec![&s.tender], Vec::new())
        }
        Payload::Checkout { sale: s, .. } => {
            for l in &s.lines {
                let line = SalesCell {
                    sales: 0,
                    member_sales: 0,
                    gross: l.gross.0,
                    discount: l.gross.0 - l.net.0,
                    net: l.net.0,
                    ..SalesCell::default()
                };
                bump(
                    kv,
                    keys::category(date, store, &l.category),
                    |c: &mut SalesCell| c.add(&line),
                )?;
                let units = SalesCell {
                    sales: u64::try_from(l.qty.0).unwrap_or(0),
                    ..line
                };
                bump(kv, keys::sku(date, store, &l.sku), |c: &mut SalesCell| {
                    c.add(&units)
                })?;
            }
            let cell = sale(s.member_id.is_some(), s.subtotal.0, s.due.0);
            (cell, s.tenders.iter().collect(), Vec::new())
        }
        Payload::Return { amount, refund, .. } => {
            let cell = SalesCell {
                returns: 1,
                returned: amount.0,
                ..SalesCell::default()
            };
            (cell, Vec::new(), vec![refund])
        }
        Payload::ItemReturn { ret, .. } => {
            for l in &ret.lines {
                let back = SalesCell {
                    returns: u64::try_from(l.qty.0).unwrap_or(0),
                    returned: l.amount.0,
                    ..SalesCell::default()
                };
                bump(kv, keys::sku(date, store, &l.sku), |c: &mut SalesCell| {
                    c.add(&back)
                })?;
            }
            let cell = SalesCell {
                returns: 1,
                returned: ret.amount.0,
                ..SalesCell::default()
            };
            (cell, Vec::new(), ret.refunds.iter().collect())
        }
        Payload::Wallet { event, .. } => {
            let cell = match event {
                WalletEvent::TopUp { paid, bonus, .. } => WalletCell {
                    top_ups: 1,
                    top_up_paid: paid.0,
                    bonus_given: bonus.0,
                    ..WalletCell::default()
                },
                WalletEvent::CardSold { price, .. } => WalletCell {
                    cards_sold: 1,
                    card_sales: price.0,
                    ..WalletCell::default()
                },
                WalletEvent::Refunded {
                    principal,
                    bonus_forfeited,
                    ..
                } => WalletCell {
                    refunded_principal: principal.0,
                    bonus_forfeited: bonus_forfeited.0,
                    ..WalletCell::default()
                },
                WalletEvent::Closed { .. } | WalletEvent::ClosedUnderRules { .. } => {
                    let closing = event.closing().ok_or("a closing without its terms")?;
                    WalletCell {
                        refunded_principal: closing.principal.0,
                        bonus_forfeited: closing.bonus_forfeited.0,
                        closings: 1,
                        card_refunds: closing.card_refunds().0,
                        bonus_refunded: closing.bonus_refunded.0,
                        closing_fees: closing.fee.0,
                        ..WalletCell::default()
                    }
                }
                _ => return Ok(()),
            };
            return bump(kv, keys::wallet(date, store), |c: &mut WalletCell| {
                c.add(&cell)
            });
        }
        _ => return Ok(()),
    };
    // Stored value spent here, and given back by returns.
    let stored = |ts: &[&Tender]| -> (i64, i64) {
        ts.iter().fold((0, 0), |(p, b), t| match t {
            Tender::StoredValue {
                principal, bonus, ..
            } => (p + principal.0, b + bonus.0),
            _ => (p, b),
        })
    };
    let (spent, back) = (stored(&tenders), stored(&refunds));
    if spent != (0, 0) || back != (0, 0) {
        let add = WalletCell {
            spent_principal: spent.0 - back.0,
            spent_bonus: spent.1 - back.1,
            ..WalletCell::default()
        };
        bump(kv, keys::wallet(date, store), |c: &mut WalletCell| {
            c.add(&add)
        })?;
    }
    bump(kv, keys::day(date, store), |c: &mut SalesCell| c.add(&cell))?;
    if let Some(member) = member {
        bump(
            kv,
            keys::member(date, store, &member),
            |c: &mut SalesCell| c.add(&cell),
        )?;
        let points = member_points(&entry.payload);
        if points != 0 {
            bump(
                kv,
                keys::member_points(date, store, &member),
                |p: &mut i64| *p += points,
            )?;
        }
    }
    bump(kv, keys::hour(date, store, hour), |c: &mut SalesCell| {
        c.add(&cell)
    })?;
    for t in tenders {
        let add = TenderCell {
            paid: t.amount().0,
            times: 1,
            ..TenderCell::default()
        };
        bump(
            kv,
            keys::tender(date, store, t.kind()),
            |c: &mut TenderCell| c.add(&add),
        )?;
    }
    for t in refunds {
        let add = TenderCell {
            refunded: t.amount().0,
            refunds: 1,
            ..TenderCell::default()
        };
        bump(
            kv,
            keys::tender(date, store, t.kind()),
            |c: &mut TenderCell| c.add(&add),
        )?;
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
    use crate::ids::{SaleId, StaffId, TxId};
    use crate::money::{Currency, Fen};
    use crate::points::Points;
    use crate::sale::QuickSale;

    type Kv = BTreeMap<Vec<u8>, Vec<u8>>;

    fn entry(seq: u64, wall_ms: u64, payload: Payload) -> Entry {
        Entry {
            origin: StoreId::parse("S001").unwrap(),
            seq,
            hlc: Hlc {
                wall_ms,
                logical: 0,
            },
            business_date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("key-{seq:08}")).unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    fn quick(seq: u64, amount: i64, member: bool, tender: Tender) -> Payload {
        Payload::Sale {
            sale: QuickSale {
                sale_id: SaleId::for_entry(&StoreId::parse("S001").unwrap(), seq),
                member_id: member.then(|| crate::MemberId::mint(1, 1)),
                category: Some("洗车".into()),
                amount: Fen(amount),
                currency: Currency::CNY,
                tender,
                points_earned: Points(0),
            },
            ops: Vec::new(),
        }
    }

    fn cash(amount: i64) -> Tender {
        Tender::Cash {
            tendered: Fen(amount),
            change: Fen(0),
        }
    }

    #[test]
    fn sales_and_returns_add_up_in_any_order() {
        // 2026-11-28 10:15 and 14:05 in Shanghai.
        let (ten, two) = (1_795_832_100_000, 1_795_845_900_000);
        let entries = vec![
            entry(1, ten, quick(1, 50_00, true, cash(50_00))),
            entry(2, two, quick(2, 30_00, false, cash(30_00))),
            entry(
                3,
                two,
                Payload::Return {
                    sale: SaleId::for_entry(&StoreId::parse("S001").unwrap(), 2),
                    member_id: None,
                    amount: Fen(30_00),
                    refund: cash(30_00),
                    reason: "退".into(),
                    ops: Vec::new(),
                },
            ),
        ];
        let mut entries = entries;
        entries.push(entry(
            4,
            ten,
            Payload::Wallet {
                member_id: crate::MemberId::mint(1, 1),
                event: WalletEvent::TopUp {
                    paid: Fen(500_00),
                    bonus: Fen(50_00),
                    rule: Some("充500送50".into()),
                    tender: cash(500_00),
                },
                ops: Vec::new(),
            },
        ));
        let cal = StoreCalendar::default();
        let mut forward = Kv::default();
        for e in &entries {
            apply(&mut forward, e, &cal).unwrap();
        }
        let mut backward = Kv::default();
        for e in entries.iter().rev() {
            apply(&mut backward, e, &cal).unwrap();
        }
        assert_eq!(forward, backward);
        let date = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let read = |key: Vec<u8>| -> SalesCell { postcard::from_bytes(&forward[&key]).unwrap() };
        let day = read(keys::day(date, &s001));
        assert_eq!(
            (
                day.sales,
                day.member_sales,
                day.net,
                day.returns,
                day.returned
            ),
            (2, 1, 80_00, 1, 30_00)
        );
        assert_eq!(read(keys::hour(date, &s001, 10)).net, 50_00);
        assert_eq!(read(keys::hour(date, &s001, 14)).returned, 30_00);
        assert_eq!(read(keys::category(date, &s001, "洗车")).net, 80_00);
        let member = read(keys::member(date, &s001, &crate::MemberId::mint(1, 1)));
        assert_eq!((member.sales, member.net), (1, 50_00));
        let cash: TenderCell =
            postcard::from_bytes(&forward[&keys::tender(date, &s001, "cash")]).unwrap();
        assert_eq!((cash.paid, cash.times, cash.refunded), (80_00, 2, 30_00));
        let wallet: WalletCell =
            postcard::from_bytes(&forward[&keys::wallet(date, &s001)]).unwrap();
        assert_eq!(
            (wallet.top_ups, wallet.top_up_paid, wallet.bonus_given),
            (1, 500_00, 50_00)
        );
    }
}
