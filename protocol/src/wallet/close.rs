//! 退卡: closing a membership. The principal is paid back, points and coupons lapse, and the
//! chain's rules (`crate::card_rules`) say the rest: the share of the bonus paid back (none by
//! default: it was given, not paid for), whether count, timed and period cards are paid back
//! for what is left of them — pro rata: uses left of uses sold, days left of days sold — and
//! the handling fee kept from the cash. Every right the wallet holds is taken by the closing
//! store, so a closing is spent once, chain-wide, like any payment (two stores cannot both pay
//! it back).

use super::*;
use crate::card_rules::CardRules;

/// One card's part of a closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRefund {
    pub card: CardId,
    pub name: String,
    /// Paid back for what is left of it.
    pub refund: Fen,
    /// Uses a count card had left (taken), or days a period card had left.
    pub left: u64,
}

/// What closing a membership paid back and what lapsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    /// Principal paid back in cash.
    pub principal: Fen,
    /// Bonus stored value forfeited (what the chain's share did not pay back).
    pub bonus_forfeited: Fen,
    /// Points taken, every lot (expired ones too: they were worth nothing already).
    pub points_forfeited: u64,
    /// Coupons unused.
    pub coupons_forfeited: u64,
    pub cards: Vec<CardRefund>,
    /// Bonus paid back in cash by the chain's share.
    pub bonus_refunded: Fen,
    /// 手续费: kept by the chain from the cash.
    pub fee: Fen,
}

/// A closing as `WalletEvent::Closed` wrote it before the chain's rules: no bonus paid back,
/// no fee.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosingV1 {
    pub principal: Fen,
    pub bonus_forfeited: Fen,
    pub points_forfeited: u64,
    pub coupons_forfeited: u64,
    pub cards: Vec<CardRefund>,
}

impl From<&ClosingV1> for Closing {
    fn from(c: &ClosingV1) -> Closing {
        Closing {
            principal: c.principal,
            bonus_forfeited: c.bonus_forfeited,
            points_forfeited: c.points_forfeited,
            coupons_forfeited: c.coupons_forfeited,
            cards: c.cards.clone(),
            bonus_refunded: Fen(0),
            fee: Fen(0),
        }
    }
}

impl Closing {
    /// The closing in the form written before the chain's card rules, when it needs nothing
    /// more (no bonus paid back, no fee): a store of an older version still reads it.
    pub fn v1(&self) -> Option<ClosingV1> {
        (self.bonus_refunded.0 == 0 && self.fee.0 == 0).then(|| ClosingV1 {
            principal: self.principal,
            bonus_forfeited: self.bonus_forfeited,
            points_forfeited: self.points_forfeited,
            coupons_forfeited: self.coupons_forfeited,
            cards: self.cards.clone(),
        })
    }

    /// Cash handed to the member: the principal, the bonus paid back and the cards' refunds,
    /// less the fee.
    pub fn cash(&self) -> Fen {
        Fen(self.before_fee().0 - self.fee.0)
    }

    /// The cash before the fee.
    fn before_fee(&self) -> Fen {
        Fen(self.principal.0
            + self.bonus_refunded.0
            + self.cards.iter().map(|c| c.refund.0).sum::<i64>())
    }

    /// What the cards paid back.
    pub fn card_refunds(&self) -> Fen {
        Fen(self.cards.iter().map(|c| c.refund.0).sum::<i64>())
    }

    /// Whether it pays back or takes anything.
    pub fn is_empty(&self) -> bool {
        *self == Closing::default()
    }
}

/// `price × left / of`, rounded down to the fen (the chain keeps the fraction).
fn pro_rata(price: Fen, left: u64, of: u64) -> Fen {
    if of == 0 || price.0 <= 0 {
        return Fen(0);
    }
    let share = i128::from(price.0) * i128::from(left.min(of)) / i128::from(of);
    Fen(i64::try_from(share).unwrap_or(price.0))
}

impl Wallet {
    /// What closing the membership on `today` under the chain's `rules` would pay back and
    /// forfeit, and the counters it would take (every one but the return tokens: a sale may
    /// still come back), wherever their rights are. Refused while the member owes an offline
    /// overdraft.
    pub fn closing(
        &self,
        today: NaiveDate,
        rules: &CardRules,
    ) -> Result<(Closing, Vec<(Counter, u64)>), WalletError> {
        let owed = self.owed_total();
        if owed > 0 {
            return Err(WalletError::Owes(Fen(
                i64::try_from(owed).unwrap_or(i64::MAX)
            )));
        }
        let taken: Vec<(Counter, u64)> = self
            .counters
            .keys()
            .filter(|c| !matches!(c, Counter::Returnable { .. }))
            .map(|c| (c.clone(), self.balance(c)))
            .filter(|(_, units)| *units > 0)
            .collect();
        let mut closing = Closing::default();
        let fen = |units: u64| Fen(i64::try_from(units).unwrap_or(i64::MAX));
        for (counter, units) in &taken {
            match counter {
                Counter::Principal => closing.principal = fen(*units),
                Counter::Bonus => closing.bonus_forfeited = fen(*units),
                Counter::Points { .. } => closing.points_forfeited += units,
                Counter::Uses { card } if self.coupons.contains_key(card) => {
                    closing.coupons_forfeited += units;
                }
                Counter::Uses { .. } | Counter::Returnable { .. } => {}
            }
        }
        for (id, card) in &self.cards {
            if card.closed {
                continue;
            }
            let (left, of) = match card.kind {
                CardKind::Count { uses: of, valid_to }
                | CardKind::Timed {
                    minutes: of,
                    valid_to,
                } => {
                    let left = self.balance(&Counter::Uses { card: id.clone() });
                    let lapsed = valid_to.is_some_and(|to| to < today);
                    (if lapsed { 0 } else { left }, u64::from(of))
                }
                CardKind::Period { from, to } => {
                    let days = |a: NaiveDate, b: NaiveDate| {
                        u64::try_from((b - a).num_days() + 1).unwrap_or(0)
                    };
                    (days(today.max(from), to), days(from, to))
                }
            };
            closing.cards.push(CardRefund {
                card: id.clone(),
                name: card.name.clone(),
                refund: rules.card_refund(pro_rata(card.price, left, of)),
                left,
            });
        }
        closing.bonus_refunded = rules.bonus_refund(closing.bonus_forfeited);
        closing.bonus_forfeited = Fen(closing.bonus_forfeited.0 - closing.bonus_refunded.0);
        closing.fee = rules.fee(closing.before_fee());
        Ok((closing, taken))
    }

    /// Closes the membership at `at` on `today`: the ops take every right [`Wallet::closing`]
    /// names, all of them held at `at`, or `RightsElsewhere` names everything missing at once.
    pub fn close(
        &mut self,
        at: &StoreId,
        today: NaiveDate,
        rules: &CardRules,
    ) -> Result<(Vec<RightsOp>, Closing), WalletError> {
        let (closing, taken) = self.closing(today, rules)?;
        let wants: Vec<(Counter, u64)> = taken
            .iter()
            .map(|(c, units)| (c.clone(), units.saturating_sub(self.held(c, at))))
            .filter(|(_, short)| *short > 0)
            .collect();
        if !wants.is_empty() {
            return Err(WalletError::RightsElsewhere { wants });
        }
        let mut next = self.clone();
        let mut ops = Vec::new();
        for (counter, units) in &taken {
            ops.push(next.take(at, counter, *units)?);
        }
        next.close_cards(&closing);
        *self = next;
        Ok((ops, closing))
    }

    /// Marks the closing's cards closed: a period card has no counter to take, so this is
    /// what stops it being used again.
    pub(super) fn close_cards(&mut self, closing: &Closing) {
        for refund in &closing.cards {
            if let Some(card) = self.cards.get_mut(&refund.card) {
                card.closed = true;
            }
        }
    }
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    fn store(s: &str) -> StoreId {
        StoreId::parse(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn card(s: &str) -> CardId {
        CardId::parse(s).unwrap()
    }

    fn sold(w: &mut Wallet, at: &StoreId, id: &str, kind: CardKind, price: i64) {
        let ops = w.sell_card(at, &card(id), &kind).unwrap();
        let event = WalletEvent::CardSold {
            card: card(id),
            name: id.into(),
            kind,
            price: Fen(price),
            tender: Tender::Cash {
                tendered: Fen(price),
                change: Fen(0),
            },
        };
        w.apply(at, (Hlc::default(), day("2026-01-01")), &event, &ops);
    }

    #[test]
    fn closing_pays_back_principal_and_what_is_left_of_cards_and_forfeits_the_rest() {
        let s1 = store("S001");
        let mut w = Wallet::default();
        let ops = w.top_up(&s1, 100_00, 20_00).unwrap();
        w.absorb(&s1, &ops);
        let ops = w.earn_points(&s1, 2026, 300).unwrap();
        w.absorb(&s1, &ops);
        let count = CardKind::Count {
            uses: 10,
            valid_to: None,
        };
        sold(&mut w, &s1, "S001-5", count, 300_00);
        let ops = w
            .use_card(&s1, &card("S001-5"), 3, day("2026-02-01"))
            .unwrap();
        w.absorb(&s1, &ops);
        let period = CardKind::Period {
            from: day("2026-01-01"),
            to: day("2026-01-31"),
        };
        sold(&mut w, &s1, "S001-6", period, 310_00);

        let (ops, closing) = w
            .close(&s1, day("2026-01-22"), &CardRules::default())
            .unwrap();
        assert_eq!(closing.principal, Fen(100_00));
        assert_eq!(closing.bonus_forfeited, Fen(20_00));
        assert_eq!(closing.points_forfeited, 300);
        // 7 of 10 uses left of a 300.00 card; 10 of 31 days left of a 310.00 card.
        let refunds: Vec<(i64, u64)> = closing.cards.iter().map(|c| (c.refund.0, c.left)).collect();
        assert_eq!(refunds, vec![(210_00, 7), (100_00, 10)]);
        assert_eq!(closing.cash(), Fen(410_00));
        assert_eq!(w.balance(&Counter::Principal), 0);
        assert_eq!(w.balance(&Counter::Points { year: 2026 }), 0);
        assert!(w.cards.values().all(|c| c.closed));
        assert_eq!(ops.len(), 4, "principal, bonus, points, uses");

        let (ops, again) = w
            .close(&s1, day("2026-01-22"), &CardRules::default())
            .unwrap();
        assert!(
            ops.is_empty() && again.is_empty(),
            "nothing is paid back twice"
        );
    }

    #[test]
    fn closing_under_the_chains_rules_pays_its_bonus_share_no_cards_and_keeps_the_fee() {
        let s1 = store("S001");
        let mut w = Wallet::default();
        let ops = w.top_up(&s1, 100_00, 20_00).unwrap();
        w.absorb(&s1, &ops);
        let count = CardKind::Count {
            uses: 10,
            valid_to: None,
        };
        sold(&mut w, &s1, "S001-5", count, 300_00);
        let rules = CardRules {
            bonus_refund_percent: rust_decimal::Decimal::from(50),
            cards: crate::card_rules::CardRefund::None,
            fee_percent: rust_decimal::Decimal::from(5),
            ..CardRules::default()
        };
        let (preview, _) = w.closing(day("2026-01-22"), &rules).unwrap();
        let (ops, closing) = w.close(&s1, day("2026-01-22"), &rules).unwrap();
        assert_eq!(preview, closing, "the preview is what the closing pays");
        assert_eq!(closing.principal, Fen(100_00));
        assert_eq!(closing.bonus_refunded, Fen(10_00));
        assert_eq!(closing.bonus_forfeited, Fen(10_00));
        assert_eq!(closing.card_refunds(), Fen(0));
        assert_eq!(closing.cards[0].left, 10, "the card is closed, unpaid");
        // 5% of 110.00.
        assert_eq!(closing.fee, Fen(5_50));
        assert_eq!(closing.cash(), Fen(104_50));
        assert_eq!(w.balance(&Counter::Bonus), 0, "every right is taken");
        assert_eq!(ops.len(), 3, "principal, bonus, uses");
    }

    #[test]
    fn closing_asks_for_every_right_held_elsewhere_at_once_and_changes_nothing() {
        let (s1, s2) = (store("S001"), store("S002"));
        let mut w = Wallet::default();
        let ops = w.top_up(&s1, 50_00, 0).unwrap();
        w.absorb(&s1, &ops);
        let ops = w.earn_points(&s2, 2026, 40).unwrap();
        w.absorb(&s2, &ops);
        let before = w.clone();
        match w.close(&s2, day("2026-03-01"), &CardRules::default()) {
            Err(WalletError::RightsElsewhere { wants }) => {
                assert_eq!(wants, vec![(Counter::Principal, 50_00)]);
            }
            other => panic!("expected RightsElsewhere, got {other:?}"),
        }
        assert_eq!(w, before);
    }

    #[test]
    fn a_member_who_owes_an_overdraft_is_not_closed() {
        let s1 = store("S001");
        let mut w = Wallet::default();
        let ops = w.top_up(&s1, 50_00, 0).unwrap();
        w.absorb(&s1, &ops);
        w.owed.insert(s1.clone(), (10_00, 0));
        assert_eq!(
            w.close(&s1, day("2026-03-01"), &CardRules::default()),
            Err(WalletError::Owes(Fen(10_00)))
        );
    }

    #[test]
    fn a_closed_period_card_is_not_used_again() {
        let s1 = store("S001");
        let mut w = Wallet::default();
        let period = CardKind::Period {
            from: day("2026-01-01"),
            to: day("2026-12-31"),
        };
        sold(&mut w, &s1, "S001-9", period, 365_00);
        let (_, closing) = w
            .close(&s1, day("2026-07-01"), &CardRules::default())
            .unwrap();
        assert_eq!(closing.cards[0].left, 184);
        assert_eq!(
            w.use_card(&s1, &card("S001-9"), 1, day("2026-07-02")),
            Err(WalletError::CardClosed(card("S001-9")))
        );
    }
}
