//! Settlement kept as day cells at headquarters, entry by entry in the feed's order (the order
//! `Settlement` reads the feed in): the members' funding queues and each sale's matches as
//! views, and per business day what each store owes each other (`sx/d/<date>/<payer>/<payee>`;
//! a store's cell with itself is what was spent where it was paid) and what matched no top-up
//! (`sx/u/<date>`). Summed over a period they are the matrix `Settlement` builds from the
//! whole feed: the same `take` makes them. Headquarters' BI tables read them (`bi.settlement`).

use chrono::NaiveDate;

use super::{Owed, Part, Settlement, sale_of};
use crate::entry::Entry;
use crate::ids::{MemberId, SaleId, StoreId};
use crate::inventory::{ViewKv, read};
use crate::wallet::Counter;

/// Every key this module writes starts with it.
pub const PREFIX: &[u8] = b"sx/";
/// The day cells start with it.
pub const DAYS: &[u8] = b"sx/d/";

fn queue_key(member: &MemberId, part: Part) -> Vec<u8> {
    let part = match part {
        Part::Principal => "p",
        Part::Bonus => "b",
    };
    format!("sx/q/{member}/{part}").into_bytes()
}

fn sale_key(sale: &SaleId) -> Vec<u8> {
    format!("sx/s/{sale}").into_bytes()
}

/// The cell of what `payer` owes `payee` for `date`.
pub fn day_key(date: NaiveDate, payer: &StoreId, payee: &StoreId) -> Vec<u8> {
    format!("sx/d/{date}/{payer}/{payee}").into_bytes()
}

/// A day cell's key read back: (date, payer, payee).
pub fn parse_day_key(key: &[u8]) -> Option<(NaiveDate, StoreId, StoreId)> {
    let text = std::str::from_utf8(key.strip_prefix(DAYS)?).ok()?;
    let mut parts = text.split('/');
    let date = NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
    let payer = StoreId::parse(parts.next()?).ok()?;
    let payee = StoreId::parse(parts.next()?).ok()?;
    parts.next().is_none().then_some((date, payer, payee))
}

fn unmatched_key(date: NaiveDate) -> Vec<u8> {
    format!("sx/u/{date}").into_bytes()
}

fn put<T: serde::Serialize>(kv: &mut dyn ViewKv, key: Vec<u8>, value: &T) -> Result<(), String> {
    kv.put(key, postcard::to_stdvec(value).map_err(|e| e.to_string())?);
    Ok(())
}

fn add(kv: &mut dyn ViewKv, key: Vec<u8>, more: Owed) -> Result<(), String> {
    if more == Owed::default() {
        return Ok(());
    }
    let was: Owed = read(kv, &key)?.unwrap_or_default();
    let sum = |a: u64, b: u64| a.checked_add(b).ok_or("a settlement cell overflows");
    let now = Owed {
        principal: sum(was.principal, more.principal)?,
        bonus: sum(was.bonus, more.bonus)?,
    };
    put(kv, key, &now)
}

/// Takes in one entry of the feed (in its order); an entry that moves no stored value is left
/// alone.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    let Some((member, ops)) = entry.payload.rights_ops() else {
        return Ok(());
    };
    // Only stored value is settled: a coupon's or a card's rights read and write nothing here
    // (a campaign issues a hundred thousand of them).
    if !ops
        .iter()
        .any(|op| matches!(op.counter, Counter::Principal | Counter::Bonus))
    {
        return Ok(());
    }
    // Counted whatever its date: the cells are by day.
    let mut book = Settlement::default();
    for part in [Part::Principal, Part::Bonus] {
        if let Some(queue) = read(kv, &queue_key(&member, part))? {
            book.funding.insert((member, part), queue);
        }
    }
    let (sale, _) = sale_of(&entry.payload);
    if let Some(sale) = sale
        && let Some(record) = read(kv, &sale_key(sale))?
    {
        book.by_sale.insert(sale.clone(), record);
    }
    book.take(entry);
    for part in [Part::Principal, Part::Bonus] {
        match book.funding.get(&(member, part)) {
            Some(queue) if !queue.is_empty() => put(kv, queue_key(&member, part), queue)?,
            _ => kv.delete(queue_key(&member, part)),
        }
    }
    if let Some(sale) = sale
        && let Some(record) = book.by_sale.get(sale)
    {
        put(kv, sale_key(sale), record)?;
    }
    let date = entry.business_date;
    for ((payer, payee), owed) in &book.owed {
        add(kv, day_key(date, payer, payee), *owed)?;
    }
    add(kv, day_key(date, &entry.origin, &entry.origin), book.local)?;
    add(kv, unmatched_key(date), book.unmatched)
}
