//! Count cards (计次卡), period cards (期限卡) and coupons on a member's wallet.

use super::*;

/// A coupon a member holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponDef {
    pub name: String,
    pub offer: crate::pricing::Coupon,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub issued_at: StoreId,
    /// The goods it applies to (empty: all that accept discounts): shared by the coupons of a
    /// wallet that have the same (a booklet's), and stored once (`interned`).
    pub scope: std::sync::Arc<crate::pricing::CouponScope>,
    /// Whether it stacks with member discounts (`None`: the chain's rule).
    pub stacks: Option<bool>,
    /// The campaign and template it came from, for a campaign's coupon.
    pub campaign: Option<(String, String)>,
}

impl CouponDef {
    /// The coupon as a sale redeems it.
    pub fn redeemed(&self) -> crate::pricing::Redeemed<'_> {
        crate::pricing::Redeemed {
            offer: &self.offer,
            scope: &self.scope,
            stacks: self.stacks,
        }
    }
}

/// A wallet's coupons as stored: each distinct scope once, the coupons naming theirs by
/// number. A booklet (券包) of a campaign for 240 product categories is 17 coupons of one
/// scope; copied into each, a targeted member's wallet of The Complete Journey carried 93 KB
/// of scopes on average, read and written with each of their sales.
pub(super) mod interned {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{CardId, CouponDef};
    use crate::ids::StoreId;
    use crate::pricing::{Coupon, CouponScope};

    #[derive(Serialize)]
    struct Out<'a> {
        scopes: Vec<&'a CouponScope>,
        coupons: Vec<(&'a CardId, Def<'a>)>,
    }

    #[derive(Serialize)]
    struct Def<'a> {
        name: &'a str,
        offer: &'a Coupon,
        from: NaiveDate,
        to: NaiveDate,
        issued_at: &'a StoreId,
        scope: u32,
        stacks: Option<bool>,
        campaign: &'a Option<(String, String)>,
    }

    #[derive(Deserialize)]
    struct In {
        scopes: Vec<CouponScope>,
        coupons: Vec<(CardId, DefIn)>,
    }

    #[derive(Deserialize)]
    struct DefIn {
        name: String,
        offer: Coupon,
        from: NaiveDate,
        to: NaiveDate,
        issued_at: StoreId,
        scope: u32,
        stacks: Option<bool>,
        campaign: Option<(String, String)>,
    }

    pub fn serialize<S: Serializer>(
        coupons: &BTreeMap<CardId, CouponDef>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut shared: Vec<&Arc<CouponScope>> = Vec::new();
        let mut out = Out {
            scopes: Vec::new(),
            coupons: Vec::with_capacity(coupons.len()),
        };
        for (id, d) in coupons {
            let at = match shared
                .iter()
                .position(|s| Arc::ptr_eq(s, &d.scope) || **s == d.scope)
            {
                Some(at) => at,
                None => {
                    shared.push(&d.scope);
                    out.scopes.push(&d.scope);
                    shared.len() - 1
                }
            };
            out.coupons.push((
                id,
                Def {
                    name: &d.name,
                    offer: &d.offer,
                    from: d.from,
                    to: d.to,
                    issued_at: &d.issued_at,
                    scope: u32::try_from(at).map_err(serde::ser::Error::custom)?,
                    stacks: d.stacks,
                    campaign: &d.campaign,
                },
            ));
        }
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<CardId, CouponDef>, D::Error> {
        let wire = In::deserialize(d)?;
        let scopes: Vec<Arc<CouponScope>> = wire.scopes.into_iter().map(Arc::new).collect();
        wire.coupons
            .into_iter()
            .map(|(id, c)| {
                let scope = scopes
                    .get(c.scope as usize)
                    .cloned()
                    .ok_or_else(|| serde::de::Error::custom("a coupon names a scope not stored"))?;
                let def = CouponDef {
                    name: c.name,
                    offer: c.offer,
                    from: c.from,
                    to: c.to,
                    issued_at: c.issued_at,
                    scope,
                    stacks: c.stacks,
                    campaign: c.campaign,
                };
                Ok((id, def))
            })
            .collect()
    }
}

/// A card on a member's wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    pub kind: CardKind,
    pub price: Fen,
    pub sold_at: StoreId,
    pub sold_on: NaiveDate,
    /// Times used or checked in, chain-wide as far as this replica knows.
    pub visits: u64,
    /// Paid back when the membership closed (退卡).
    #[serde(default)]
    pub closed: bool,
    /// A timed card's clock: when and where it started, while it runs.
    #[serde(default)]
    pub clocked_in: Option<(Hlc, StoreId)>,
}

/// What stopping a timed card's clock came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOut {
    /// Minutes to charge: the time on the clock by the chain's card rules (free minutes, steps).
    pub minutes: u64,
    /// Taken from the card.
    pub charged: u64,
    /// Beyond what the card had left: for the cashier to charge.
    pub overtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    pub card: CardId,
    pub card_info: Card,
    /// Uses left on a count card (chain-wide) and held here; `None` for a period card.
    pub uses_left: Option<(u64, u64)>,
    pub usable_today: bool,
}

impl Wallet {
    /// A card sold at `at`: a count card's uses become rights held there.
    pub fn sell_card(
        &mut self,
        at: &StoreId,
        card: &CardId,
        kind: &CardKind,
    ) -> Result<Vec<RightsOp>, WalletError> {
        kind.validate()?;
        let units = match kind {
            CardKind::Count { uses, .. } => *uses,
            CardKind::Timed { minutes, .. } => *minutes,
            CardKind::Period { .. } => return Ok(Vec::new()),
        };
        let counter = Counter::Uses { card: card.clone() };
        let change = self.rights(&counter).credit(at, u64::from(units))?;
        Ok(vec![Self::op(&counter, change)])
    }

    /// Gives the member coupon `coupon`: one use, held at `at`.
    pub fn issue_coupon(
        &mut self,
        at: &StoreId,
        coupon: &CardId,
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<Vec<RightsOp>, WalletError> {
        if to < from {
            return Err(WalletError::EmptyPeriod);
        }
        let counter = Counter::Uses {
            card: coupon.clone(),
        };
        let change = self.rights(&counter).credit(at, 1)?;
        Ok(vec![Self::op(&counter, change)])
    }

    /// The coupon, if the member holds it unused and it is good on `today`.
    pub fn usable_coupon(
        &self,
        coupon: &CardId,
        today: NaiveDate,
    ) -> Result<&CouponDef, WalletError> {
        let def = self
            .coupons
            .get(coupon)
            .ok_or_else(|| WalletError::UnknownCoupon(coupon.clone()))?;
        let counter = Counter::Uses {
            card: coupon.clone(),
        };
        if self.balance(&counter) == 0 {
            return Err(WalletError::CouponUsed(coupon.clone()));
        }
        if today < def.from || today > def.to {
            return Err(WalletError::CouponNotValid {
                coupon: coupon.clone(),
                from: def.from,
                to: def.to,
            });
        }
        Ok(def)
    }

    /// A count card used (`uses` taken) or a period card checked in, on `today` at `at`.
    pub fn use_card(
        &mut self,
        at: &StoreId,
        card: &CardId,
        uses: u32,
        today: NaiveDate,
    ) -> Result<Vec<RightsOp>, WalletError> {
        let held = self
            .cards
            .get(card)
            .ok_or_else(|| WalletError::UnknownCard(card.clone()))?;
        if held.closed {
            return Err(WalletError::CardClosed(card.clone()));
        }
        held.kind.usable_on(card, today)?;
        if let CardKind::Period { .. } = held.kind {
            return Ok(Vec::new());
        }
        if uses == 0 || uses > CARD_USES_MAX {
            return Err(WalletError::UsesOutOfRange);
        }
        let counter = Counter::Uses { card: card.clone() };
        Ok(vec![self.take(at, &counter, u64::from(uses))?])
    }
}

impl Wallet {
    /// A timed card usable on `today`, not closed: its card.
    fn timed(&self, card: &CardId, today: NaiveDate) -> Result<&Card, WalletError> {
        let held = self
            .cards
            .get(card)
            .ok_or_else(|| WalletError::UnknownCard(card.clone()))?;
        if held.closed {
            return Err(WalletError::CardClosed(card.clone()));
        }
        if !matches!(held.kind, CardKind::Timed { .. }) {
            return Err(WalletError::NotTimed(card.clone()));
        }
        held.kind.usable_on(card, today)?;
        Ok(held)
    }

    /// 计时开始: refused while the clock runs already, or with no minutes left.
    pub fn clock_in(&self, card: &CardId, today: NaiveDate) -> Result<(), WalletError> {
        let held = self.timed(card, today)?;
        if let Some((_, at)) = &held.clocked_in {
            return Err(WalletError::ClockedIn(card.clone(), at.clone()));
        }
        if self.balance(&Counter::Uses { card: card.clone() }) == 0 {
            return Err(WalletError::Insufficient {
                available: 0,
                wanted: 1,
                wants: Vec::new(),
            });
        }
        Ok(())
    }

    /// 计时结束 at `at`, `now_ms` on the clock: the minutes since the clock started, charged
    /// by the chain's `rules` (free minutes, then steps; a minute started is a minute), as
    /// many as the card has left taken from it. The rights are taken at `at` (held
    /// elsewhere: `RightsElsewhere`).
    pub fn clock_out(
        &mut self,
        at: &StoreId,
        card: &CardId,
        now_ms: u64,
        rules: &crate::card_rules::CardRules,
        today: NaiveDate,
    ) -> Result<(Vec<RightsOp>, ClockOut), WalletError> {
        let held = self.timed(card, today)?;
        let Some((started, _)) = &held.clocked_in else {
            return Err(WalletError::NotClockedIn(card.clone()));
        };
        let minutes = rules.charged_minutes(now_ms.saturating_sub(started.wall_ms));
        let counter = Counter::Uses { card: card.clone() };
        let charged = minutes.min(self.balance(&counter));
        let ops = match charged {
            0 => Vec::new(),
            units => vec![self.take(at, &counter, units)?],
        };
        Ok((
            ops,
            ClockOut {
                minutes,
                charged,
                overtime: minutes - charged,
            },
        ))
    }
}

impl CardKind {
    /// Checks a new card's terms.
    pub fn validate(&self) -> Result<(), WalletError> {
        match self {
            CardKind::Count { uses, .. } if *uses == 0 || *uses > CARD_USES_MAX => {
                Err(WalletError::UsesOutOfRange)
            }
            CardKind::Period { from, to } if to < from => Err(WalletError::EmptyPeriod),
            CardKind::Timed { minutes, .. } if *minutes == 0 || *minutes > TIMED_MINUTES_MAX => {
                Err(WalletError::UsesOutOfRange)
            }
            _ => Ok(()),
        }
    }

    /// Whether the card can be used on `today`.
    pub fn usable_on(&self, card: &CardId, today: NaiveDate) -> Result<(), WalletError> {
        let (from, to) = match self {
            CardKind::Count { valid_to, .. } | CardKind::Timed { valid_to, .. } => {
                (None, *valid_to)
            }
            CardKind::Period { from, to } => (Some(*from), Some(*to)),
        };
        if let Some(from) = from
            && today < from
        {
            return Err(WalletError::CardNotYetValid(card.clone(), from));
        }
        if to.is_some_and(|to| today > to) {
            return Err(WalletError::CardExpired(card.clone()));
        }
        Ok(())
    }
}
