//! Item checkout (商品消费): the basket priced by `protocol::pricing` from this store's catalogue
//! views, paid by any mix of tenders that add up to what is due, with the wallet's writes
//! (stored value paid, points used and earned) and the goods taken off the shelf, in one entry.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use protocol::catalogue::{Bundle, Qty};
use protocol::entry::Payload;
use protocol::inventory;
use protocol::points::Points;
use protocol::pricing::{self, BundleOffer, Line, MemberTerms, PricingError};
use protocol::sale::{ItemSale, Tender};
use protocol::stock::next_change;
use protocol::wallet::{
    CardId, CouponOff, PointsPolicy, Wallet, WalletError, WalletEvent, lot_year,
};
use protocol::{Fen, MemberId, SaleId, Sku, StaffId, StoreId};

use super::inventory::InventoryError;
use super::{Journal, Outcome, Rejection, Request, Settings, missing};
use crate::store::{Store, StoreError};
use crate::views::{self, ItemSaleView, MemberView, Overlay, keys};

/// The longest payment reference (a card slip's or a payment app's transaction number).
pub const REFERENCE_CHARS_MAX: usize = 64;

/// A line as the till scanned it: a SKU, a quantity, and the amount the till set, if it did
/// (改价, or the price of an open-price product, 金额商品).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketLine {
    pub sku: Sku,
    pub qty: Qty,
    pub set_amount: Option<Fen>,
}

impl BasketLine {
    pub fn new(sku: Sku, qty: Qty) -> Self {
        Self {
            sku,
            qty,
            set_amount: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ItemCheckoutRequest {
    pub member_id: Option<MemberId>,
    pub lines: Vec<BasketLine>,
    /// Points the member pays with (积分抵现).
    pub points: u64,
    pub tenders: Vec<TenderRequest>,
    pub served_by: Option<StaffId>,
    /// The member's coupons to redeem (优惠券; several: 多券同用), applied in this order.
    pub coupons: Vec<protocol::wallet::CardId>,
    /// The held order (挂单) this sale pays, gone once it is paid.
    pub held_order: Option<protocol::DocId>,
    /// When the sale was made, in the store's local time, if it is entered later (补录: sales
    /// taken on paper while the till was down, or a replay); at most `backdate_days_max` ago.
    pub sold_at: Option<chrono::NaiveDateTime>,
}

/// A tender as the cashier takes it. Cash pays what the other tenders leave and gives change;
/// every other tender pays exactly its amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenderRequest {
    Cash {
        tendered: Fen,
    },
    /// Cash in another currency, `amount` in its minor units (cents), at this store's rate.
    ForeignCash {
        currency: protocol::Currency,
        amount: i64,
    },
    Card {
        amount: Fen,
        reference: String,
    },
    WeChat {
        amount: Fen,
        reference: String,
    },
    Alipay {
        amount: Fen,
        reference: String,
    },
    StoredValue {
        amount: Fen,
    },
}

/// Why the tenders do not fit the sale. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenderError {
    #[error("the tenders pay {paid}, the sale is {due}")]
    Mismatch { paid: Fen, due: Fen },
    #[error("only cash gives change: the other tenders pay {paid} of {due}")]
    ChangeOnNonCash { paid: Fen, due: Fen },
    #[error("cash tendered {tendered} is short of the {owed} left to pay")]
    CashShort { tendered: Fen, owed: Fen },
    #[error("{0}")]
    Invalid(String),
}

/// The basket's lines with this store's prices today; refuses what is not for sale (a product
/// without a price is sold only at an amount the till sets).
pub fn basket(
    ov: &Overlay<'_>,
    here: &StoreId,
    today: NaiveDate,
    lines: &[BasketLine],
) -> Result<Vec<Line>, Rejection> {
    let mut out = Vec::with_capacity(lines.len());
    for BasketLine {
        sku,
        qty,
        set_amount,
    } in lines
    {
        let p = inventory::product(ov, sku)
            .map_err(Rejection::Storage)?
            .ok_or_else(|| InventoryError::UnknownSku(sku.clone()))?;
        if inventory::not_carried(ov, sku).map_err(Rejection::Storage)? {
            return Err(InventoryError::NotCarried(sku.clone()).into());
        }
        let store_price: Option<Fen> =
            inventory::read(ov, &inventory::keys::store_price(here, sku))
                .map_err(Rejection::Storage)?;
        let unit_price = match (store_price.or(p.price), set_amount) {
            (_, _) if !p.active => return Err(InventoryError::NotForSale(sku.clone()).into()),
            (Some(price), _) => price,
            (None, Some(_)) => Fen(0),
            (None, None) => return Err(InventoryError::NotForSale(sku.clone()).into()),
        };
        if p.unit == protocol::catalogue::Unit::Piece && qty.0 % 1000 != 0 {
            return Err(InventoryError::Invalid(format!("{sku} is sold in whole pieces")).into());
        }
        out.push(Line {
            sku: sku.clone(),
            category: p.category.clone(),
            qty: *qty,
            unit_price,
            special: p
                .special
                .as_ref()
                .filter(|s| s.from <= today && today <= s.to)
                .map(|s| s.price),
            discountable: p.discountable,
            earns_points: p.earns_points,
            set_amount: *set_amount,
        });
    }
    Ok(out)
}

/// The bundles on offer.
pub fn bundles(store: &dyn Store) -> Result<Vec<BundleOffer>, StoreError> {
    let mut out = Vec::new();
    for (key, bytes) in store.scan_prefix(b"bu/")? {
        let bundle: Bundle = views::decode(&key, &bytes)?;
        // 门店经营品项: a bundle withdrawn from this store is not offered here.
        let withdrawn = store
            .get(&protocol::inventory::keys::not_carried(&bundle.id))?
            .is_some();
        if bundle.active && !withdrawn {
            out.push(BundleOffer {
                id: bundle.id,
                items: bundle.items,
                price: bundle.price,
            });
        }
    }
    Ok(out)
}

/// What pricing needs of a member: tier, birthday month, live points.
pub fn member_terms(
    member: &MemberView,
    wallet: &protocol::wallet::Wallet,
    today: NaiveDate,
    policy: &PointsPolicy,
) -> MemberTerms {
    MemberTerms {
        tier: Some(member.profile.tier.clone()),
        birthday_month: member
            .profile
            .birthday
            .is_some_and(|d| d.month() == today.month()),
        points: wallet.points_live(today, policy),
    }
}

/// Points earned on what is paid for goods that earn them, by category, at today's rate.
pub fn points_earned(
    lines: &[pricing::PricedLine],
    earn: &protocol::points::EarnRule,
    today: NaiveDate,
) -> Points {
    let mut by_category: BTreeMap<&str, i64> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.earns_points) {
        *by_category.entry(l.category.as_str()).or_default() += l.net.0;
    }
    Points(
        by_category
            .iter()
            .map(|(category, fen)| {
                let category = Some(*category).filter(|c| !c.is_empty());
                earn.earn(Fen(*fen), category, today).0
            })
            .sum(),
    )
}

/// A basket priced as this store charges it today, and the points it earns: the one place
/// both the quote and the checkout price a sale.
pub fn price_basket(
    store: &dyn Store,
    settings: &Settings,
    today: NaiveDate,
    member: Option<(&MemberView, &Wallet)>,
    (lines, coupons, points): (&[BasketLine], &[CardId], u64),
) -> Result<(pricing::Priced, Points), Rejection> {
    let mut offers = Vec::with_capacity(coupons.len());
    for (i, id) in coupons.iter().enumerate() {
        if coupons[..i].contains(id) {
            return Err(pricing::PricingError::Coupons.into());
        }
        match member {
            Some((_, wallet)) => offers.push(wallet.usable_coupon(id, today)?),
            None => return Err(WalletError::UnknownCoupon(id.clone()).into()),
        }
    }
    let redeemed: Vec<pricing::Redeemed<'_>> = offers.iter().map(|c| c.redeemed()).collect();
    let terms = member.map(|(m, w)| member_terms(m, w, today, &settings.wallet.points));
    let lines = basket(&Overlay::new(store), &settings.store_id, today, lines)?;
    let priced = pricing::price_redeeming(
        &lines,
        &bundles(store)?,
        terms.as_ref(),
        &redeemed,
        points,
        &settings.pricing,
    )?;
    let earned = match member {
        Some((m, _)) => points_earned(
            &priced.lines,
            &settings.earn_for(Some(&m.profile.tier)),
            today,
        ),
        None => Points(0),
    };
    Ok((priced, earned))
}

/// Fits the tenders to what is due: non-cash tenders pay exactly their amounts, cash the rest
/// (with change, in yuan): yuan, foreign cash at this store's rate (`rates`: yuan per unit), or
/// both. At most one of each of cash, foreign cash and stored value.
pub fn settle(
    due: Fen,
    tenders: &[TenderRequest],
    rates: &BTreeMap<protocol::Currency, rust_decimal::Decimal>,
) -> Result<Vec<Tender>, TenderError> {
    let invalid = |s: &str| Err(TenderError::Invalid(s.to_owned()));
    // A sale of free lines only (赠品, 0.00) takes no tender.
    if tenders.is_empty() && due.0 == 0 {
        return Ok(Vec::new());
    }
    if tenders.is_empty() || tenders.len() > 8 {
        return invalid("one to eight tenders (none only when nothing is due)");
    }
    let count = |f: fn(&TenderRequest) -> bool| tenders.iter().filter(|t| f(t)).count();
    if count(|t| matches!(t, TenderRequest::Cash { .. })) > 1
        || count(|t| matches!(t, TenderRequest::ForeignCash { .. })) > 1
        || count(|t| matches!(t, TenderRequest::StoredValue { .. })) > 1
    {
        return invalid("at most one cash, one foreign cash and one stored-value tender");
    }
    let mut settled = Vec::with_capacity(tenders.len());
    let mut non_cash = 0i64;
    for t in tenders {
        let (amount, tender) = match t {
            TenderRequest::Cash { .. } | TenderRequest::ForeignCash { .. } => continue,
            TenderRequest::StoredValue { amount } => (*amount, None),
            TenderRequest::Card { amount, reference }
            | TenderRequest::WeChat { amount, reference }
            | TenderRequest::Alipay { amount, reference } => {
                let len = reference.chars().count();
                if reference.trim().is_empty()
                    || len > REFERENCE_CHARS_MAX
                    || reference.chars().any(char::is_control)
                {
                    return invalid(
                        "a card or payment-app tender needs its reference (1 to 64 characters)",
                    );
                }
                let reference = reference.clone();
                let tender = match t {
                    TenderRequest::Card { .. } => Tender::Card {
                        amount: *amount,
                        reference,
                    },
                    TenderRequest::WeChat { .. } => Tender::WeChat {
                        amount: *amount,
                        reference,
                    },
                    _ => Tender::Alipay {
                        amount: *amount,
                        reference,
                    },
                };
                (*amount, Some(tender))
            }
        };
        if amount.0 <= 0 {
            return invalid("every tender pays a positive amount");
        }
        non_cash = non_cash.saturating_add(amount.0);
        if let Some(tender) = tender {
            settled.push(tender);
        }
    }
    if non_cash > due.0 {
        return Err(TenderError::ChangeOnNonCash {
            paid: Fen(non_cash),
            due,
        });
    }
    let owed = due.0 - non_cash;
    // Foreign cash is worth its amount at the store's rate, rounded to the fen.
    let foreign = match tenders.iter().find_map(|t| match t {
        TenderRequest::ForeignCash { currency, amount } => Some((*currency, *amount)),
        _ => None,
    }) {
        None => None,
        Some((currency, amount)) => {
            let Some(rate) = rates
                .get(&currency)
                .filter(|_| currency != protocol::Currency::CNY)
            else {
                return Err(TenderError::Invalid(format!(
                    "this store has no exchange rate for {currency}"
                )));
            };
            if amount <= 0 || amount > 100_000_000 {
                return invalid("foreign cash must be a positive amount within a sale's range");
            }
            let value = protocol::Rounding::HalfAwayFromZero
                .round(rust_decimal::Decimal::from(amount) * rate, 0);
            let value = rust_decimal::prelude::ToPrimitive::to_i64(&value).unwrap_or(i64::MAX);
            Some((currency, amount, *rate, value))
        }
    };
    let yuan = tenders.iter().find_map(|t| match t {
        TenderRequest::Cash { tendered } => Some(tendered.0),
        _ => None,
    });
    if yuan.is_some_and(|y| y <= 0) {
        return invalid("every tender pays a positive amount");
    }
    let foreign_value = foreign.map_or(0, |f| f.3);
    let cash_like = foreign_value.saturating_add(yuan.unwrap_or(0));
    if foreign.is_none() && yuan.is_none() {
        return match owed {
            0 => Ok(settled),
            _ => Err(TenderError::Mismatch {
                paid: Fen(non_cash),
                due,
            }),
        };
    }
    if cash_like < owed {
        return Err(TenderError::CashShort {
            tendered: Fen(cash_like),
            owed: Fen(owed),
        });
    }
    let yuan_needless = foreign.is_some() && yuan.is_some() && foreign_value >= owed;
    if (owed == 0 && cash_like > 0) || yuan_needless {
        return invalid("nothing is left for cash to pay");
    }
    let change = cash_like - owed;
    // Change comes out of the drawer: more than a drawer holds is a typo (999,999,999), not cash.
    if change > protocol::sale::CHANGE_MAX {
        return invalid("the change would be over 10,000 yuan: check the cash tendered");
    }
    // Change is given from the yuan tender when there is one, else against the foreign cash.
    let mut cash = Vec::new();
    if let Some(tendered) = yuan {
        cash.push(Tender::Cash {
            tendered: Fen(tendered),
            change: Fen(change),
        });
    }
    if let Some((currency, amount, rate, value)) = foreign {
        cash.push(Tender::ForeignCash {
            currency,
            amount,
            rate,
            value: Fen(value),
            change: Fen(if yuan.is_some() { 0 } else { change }),
        });
    }
    cash.extend(settled);
    Ok(cash)
}

impl Journal {
    pub(super) fn item_checkout(
        &mut self,
        r: Request<ItemCheckoutRequest>,
    ) -> Result<Outcome, Rejection> {
        let b = &r.body;
        let here = self.settings.store_id.clone();
        let now_ms = (self.env.now_ms)();
        let today = match b.sold_at {
            Some(at) => self.backdated(now_ms, at)?,
            None => self.settings.calendar.business_date(now_ms),
        };
        let policy = self.settings.wallet.points;
        let ov = Overlay::new(&*self.store);
        if let Some(id) = &b.held_order
            && self
                .read::<super::HeldView>(&super::held::key(id))?
                .is_none()
        {
            return Err(Rejection::OrderNotFound(id.clone()));
        }
        let member = match b.member_id {
            Some(id) => Some(
                self.member_view(&id)?
                    .ok_or(Rejection::MemberNotFound(id))?,
            ),
            None => None,
        };
        // 退卡: a closed membership earns and spends nothing (sell to them without it).
        if let Some(m) = &member
            && m.profile.card_status == protocol::member::CardStatus::Closed
        {
            return Err(Rejection::MembershipClosed(m.member_id));
        }
        let tier = member.as_ref().map(|m| m.profile.tier.clone());
        let mut wallet = match &member {
            Some(m) => self.wallet_of(&m.member_id)?,
            None => Default::default(),
        };
        let (priced, earned) = price_basket(
            &*self.store,
            &self.settings,
            today,
            member.as_ref().map(|m| (m, &wallet)),
            (&b.lines, &b.coupons, b.points),
        )?;
        let mut tenders = settle(priced.due, &b.tenders, &self.settings.rates)?;
        let stored = b.tenders.iter().find_map(|t| match t {
            TenderRequest::StoredValue { amount } => Some(*amount),
            _ => None,
        });
        if stored.is_some() && member.is_none() {
            return Err(TenderError::Invalid("stored value needs a member".into()).into());
        }
        // The wallet's writes: stored value paid, points used, points earned. Both spends are
        // tried before either is kept, so one ask to headquarters brings all rights missing.
        let mut ops = Vec::new();
        let mut wants = Vec::new();
        let mut split = None;
        if let Some(amount) = stored {
            let amount = u64::try_from(amount.0).unwrap_or(0);
            wallet.require_free(&here, amount)?;
            match wallet.pay(&here, amount, self.settings.wallet.bonus_use) {
                Ok((paid, s)) => {
                    ops.extend(paid);
                    split = Some(s);
                }
                Err(WalletError::RightsElsewhere { wants: w }) => wants.extend(w),
                Err(e) => return Err(e.into()),
            }
        }
        // Each coupon's use: in the sale's own ops for one coupon, in the entry that follows it
        // for several (多券同用).
        let mut coupon_ops = Vec::with_capacity(b.coupons.len());
        for id in &b.coupons {
            let uses = protocol::wallet::Counter::Uses { card: id.clone() };
            match wallet.take(&here, &uses, 1) {
                Ok(op) => coupon_ops.push(op),
                Err(WalletError::RightsElsewhere { wants: w }) => wants.extend(w),
                Err(e) => return Err(e.into()),
            }
        }
        if b.coupons.len() == 1 {
            ops.append(&mut coupon_ops);
        }
        if priced.points_used > 0 {
            match wallet.spend_points(&here, priced.points_used, today, &policy) {
                Ok(spent) => ops.extend(spent),
                Err(WalletError::RightsElsewhere { wants: w }) => wants.extend(w),
                Err(e) => return Err(e.into()),
            }
        }
        if !wants.is_empty() {
            return Err(WalletError::RightsElsewhere { wants }.into());
        }
        if let Some((p, bonus)) = split {
            let fen = |u: u64| Fen(i64::try_from(u).unwrap_or(i64::MAX));
            tenders.push(Tender::StoredValue {
                principal: fen(p),
                bonus: fen(bonus),
                overdraft: Fen(0),
            });
        }
        if earned.0 > 0 {
            let units = u64::try_from(earned.0).unwrap_or(0);
            ops.extend(wallet.earn_points(&here, lot_year(today), units)?);
        }
        // The right to take this sale's returns: held here until a return elsewhere asks.
        let sale_id = SaleId::for_entry(&here, self.tip.next_seq);
        if member.is_some() {
            ops.push(wallet.give(&here, &super::returns::return_token(&sale_id), 1)?);
        }
        // The goods leave the shelf: one change per SKU.
        let mut taken: BTreeMap<&Sku, i64> = BTreeMap::new();
        for l in &priced.lines {
            *taken.entry(&l.sku).or_default() += l.qty.0;
        }
        let mut stock = Vec::with_capacity(taken.len());
        for (sku, qty) in taken {
            let cell = inventory::stock_cell(&ov, &here, sku).map_err(Rejection::Storage)?;
            stock.push(next_change(cell, sku, Qty(-qty)));
        }
        let priced_offs = priced.coupon_offs.clone();
        let sale = ItemSale {
            sale_id: sale_id.clone(),
            member_id: b.member_id,
            subtotal: priced.subtotal,
            discount: priced.discount,
            due: priced.due,
            points_used: priced.points_used,
            points_earned: earned,
            lines: priced.lines,
            tenders,
            coupon: match b.coupons.as_slice() {
                [one] => Some(one.to_string()),
                _ => None,
            },
            served_by: b.served_by.clone(),
        };
        let member_id = b.member_id;
        let held = b.held_order.clone();
        let this = (sale.due.0, sale.points_earned.0);
        let several = match (member_id, b.coupons.len()) {
            (Some(member_id), 2..) => Some(Payload::Wallet {
                member_id,
                event: WalletEvent::CouponsRedeemed {
                    sale: sale_id.clone(),
                    coupons: b
                        .coupons
                        .iter()
                        .zip(&priced_offs)
                        .map(|(coupon, off)| CouponOff {
                            coupon: coupon.clone(),
                            off: *off,
                        })
                        .collect(),
                    due: sale.due,
                },
                ops: coupon_ops,
            }),
            _ => None,
        };
        let payload = Payload::Checkout { sale, ops, stock };
        let note = b.sold_at.map(|sold_at| protocol::audit::Note::LateSale {
            sale: sale_id.clone(),
            sold_at,
        });
        // The note and a tier the sale earned are booked today, when they were done.
        let booked = self.settings.calendar.business_date(now_ms);
        // The note right after the sale it names, then the coupons it redeemed together.
        let mut payloads = vec![(payload, today)];
        payloads.extend(note.map(|note| (Payload::Audit { note }, booked)));
        payloads.extend(several.map(|p| (p, today)));
        if let (Some(m), Some(tier)) = (&member_id, &tier) {
            let rise = self.tier_rise(m, tier, now_ms, this);
            payloads.extend(rise.into_iter().map(|p| (p, booked)));
        }
        self.append_all(&r, now_ms, payloads, |ov| {
            // Paid: the held order goes, in the same batch as the sale.
            if let Some(id) = &held {
                ov.delete(super::held::key(id));
            }
            let view: ItemSaleView = ov
                .get_as(&keys::item_sale(&sale_id))?
                .ok_or_else(|| missing("item sale"))?;
            let wallet = match member_id {
                Some(m) => {
                    let w: protocol::wallet::Wallet =
                        ov.get_as(&keys::wallet(&m))?.unwrap_or_default();
                    Some(w.summary(&here, today, &policy))
                }
                None => None,
            };
            Ok(Outcome::ItemSale {
                sale: Box::new(view),
                wallet,
            })
        })
    }

    /// The business day of a sale entered later (补录): not in the future, and at most
    /// `backdate_days_max` days back.
    fn backdated(&self, now_ms: u64, at: chrono::NaiveDateTime) -> Result<NaiveDate, Rejection> {
        let calendar = &self.settings.calendar;
        let now = calendar.local_time(now_ms);
        let earliest = now - chrono::TimeDelta::days(i64::from(self.settings.backdate_days_max));
        if at > now || at < earliest {
            return Err(Rejection::Backdate(format!(
                "sold_at {at} is not between {earliest} and now ({now}, the store's time): \
                 sales are entered at most {} days late",
                self.settings.backdate_days_max
            )));
        }
        Ok(calendar.business_date_of_local(at))
    }
}

impl From<PricingError> for Rejection {
    fn from(e: PricingError) -> Self {
        Rejection::Pricing(e)
    }
}

impl From<TenderError> for Rejection {
    fn from(e: TenderError) -> Self {
        Rejection::Tender(e)
    }
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    fn settle_(due: Fen, tenders: &[TenderRequest]) -> Result<Vec<Tender>, TenderError> {
        settle(due, tenders, &BTreeMap::new())
    }

    fn card(amount: i64) -> TenderRequest {
        TenderRequest::Card {
            amount: Fen(amount),
            reference: "POS-0001".into(),
        }
    }

    #[test]
    fn tenders_add_up_exactly_and_only_cash_gives_change() {
        let due = Fen(100_00);
        let cash = |t: i64| TenderRequest::Cash { tendered: Fen(t) };
        // Card 60 + cash: 50 handed over, 10 back.
        let settled = settle_(due, &[card(60_00), cash(50_00)]).unwrap();
        assert_eq!(
            settled[0],
            Tender::Cash {
                tendered: Fen(50_00),
                change: Fen(10_00)
            }
        );
        assert_eq!(settled.iter().map(|t| t.amount().0).sum::<i64>(), due.0);
        assert_eq!(
            settle_(due, &[card(90_00)]),
            Err(TenderError::Mismatch {
                paid: Fen(90_00),
                due
            })
        );
        assert_eq!(
            settle_(due, &[card(110_00)]),
            Err(TenderError::ChangeOnNonCash {
                paid: Fen(110_00),
                due
            })
        );
        assert_eq!(
            settle_(due, &[card(60_00), cash(30_00)]),
            Err(TenderError::CashShort {
                tendered: Fen(30_00),
                owed: Fen(40_00)
            })
        );
        assert!(settle_(due, &[cash(60_00), cash(60_00)]).is_err());
        assert!(settle_(due, &[card(0), cash(100_00)]).is_err());
        assert!(settle_(due, &[]).is_err(), "no tender for what is due");
        assert_eq!(settle_(Fen(0), &[]), Ok(Vec::new()), "free lines only");
        let no_reference = TenderRequest::WeChat {
            amount: due,
            reference: " ".into(),
        };
        assert!(settle_(due, &[no_reference]).is_err());
        // Foreign cash at the store's rate (7.1 yuan a dollar): 10 dollars for 71.00, yuan for
        // the rest, change in yuan; alone it gets its change in yuan too.
        let usd: protocol::Currency = "USD".parse().unwrap();
        let rates = BTreeMap::from([(usd, rust_decimal::Decimal::new(71, 1))]);
        let dollars = |cents| TenderRequest::ForeignCash {
            currency: usd,
            amount: cents,
        };
        let mixed = settle(due, &[dollars(10_00), cash(30_00)], &rates).unwrap();
        assert_eq!(
            mixed[0],
            Tender::Cash {
                tendered: Fen(30_00),
                change: Fen(1_00)
            }
        );
        assert_eq!(mixed.iter().map(|t| t.amount().0).sum::<i64>(), due.0);
        let alone = settle(due, &[dollars(15_00)], &rates).unwrap();
        assert_eq!(alone[0].amount(), due, "106.50 handed over, 6.50 back");
        assert!(matches!(
            settle(due, &[dollars(10_00)], &rates),
            Err(TenderError::CashShort { .. })
        ));
        assert!(settle(due, &[dollars(15_00), cash(10_00)], &rates).is_err());
        let euro = TenderRequest::ForeignCash {
            currency: "EUR".parse().unwrap(),
            amount: 100,
        };
        assert!(settle(due, &[euro], &rates).is_err(), "no rate, no sale");
        assert!(settle(due, &[dollars(-5), cash(100_00)], &rates).is_err());
        // Stored value is settled by the wallet: here it just counts toward the sum.
        assert!(
            settle_(due, &[TenderRequest::StoredValue { amount: due }])
                .unwrap()
                .is_empty()
        );
    }

    proptest::proptest! {
        /// Whatever the cashier enters, a settlement that is accepted pays exactly what is due,
        /// with change only in cash; one that covers the sale is never refused.
        #[test]
        fn accepted_tenders_add_up_to_what_is_due(
            due in 1i64..100_000,
            cards in proptest::collection::vec(1i64..60_000, 0..3),
            cash in proptest::option::of(0i64..150_000),
            dollars in proptest::option::of(1i64..20_000),
        ) {
            let usd: protocol::Currency = "USD".parse().unwrap();
            let rates = BTreeMap::from([(usd, rust_decimal::Decimal::new(710, 2))]);
            let mut tenders: Vec<TenderRequest> = cards.iter().map(|a| card(*a)).collect();
            if let Some(c) = cash {
                tenders.push(TenderRequest::Cash { tendered: Fen(c) });
            }
            if let Some(d) = dollars {
                tenders.push(TenderRequest::ForeignCash { currency: usd, amount: d });
            }
            let non_cash: i64 = cards.iter().sum();
            let foreign = dollars.map_or(0, |d| (d * 71 + 5) / 10);
            let cash_like = cash.unwrap_or(0) + foreign;
            match settle(Fen(due), &tenders, &rates) {
                Ok(settled) => {
                    proptest::prop_assert_eq!(settled.iter().map(|t| t.amount().0).sum::<i64>(), due);
                    for t in &settled {
                        match t {
                            Tender::Cash { change, .. } | Tender::ForeignCash { change, .. } => {
                                proptest::prop_assert!(change.0 >= 0);
                            }
                            other => proptest::prop_assert!(other.amount().0 > 0),
                        }
                    }
                }
                Err(_) => {
                    let covered = !tenders.is_empty()
                        && non_cash <= due
                        && cash_like >= due - non_cash
                        && (cash.is_some() || dollars.is_some() || non_cash == due);
                    let needless = (due == non_cash && cash_like > 0)
                        || cash == Some(0)
                        || (dollars.is_some() && cash.is_some() && foreign >= due - non_cash);
                    proptest::prop_assert!(!covered || needless, "refused a settlement that pays");
                }
            }
        }
    }
}
