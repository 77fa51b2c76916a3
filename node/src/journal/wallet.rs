//! Stored value, points and cards: top-ups, payments, refunds and the overdraft policy.

use super::*;

impl Journal {
    pub(super) fn points_when(&self, now_ms: u64) -> (PointsPolicy, chrono::NaiveDate) {
        let today = self.settings.calendar.business_date(now_ms);
        (self.settings.wallet.points, today)
    }

    /// Offline, with the rights for a payment held elsewhere: pays what this store holds and lets
    /// the member owe the rest, within the chain's caps per member and per store.
    pub(super) fn overdraft(
        &self,
        wallet: &mut Wallet,
        amount: u64,
        wants: Vec<(Counter, u64)>,
    ) -> Result<Paid, Rejection> {
        let here = &self.settings.store_id;
        let rules = &self.settings.wallet;
        // Lend only against a balance that covers the payment net of what is already owed, so
        // a receivable is always backed by rights held somewhere in the chain.
        let available = wallet.stored_value_free();
        if available < amount {
            return Err(WalletError::Insufficient {
                available,
                wanted: amount,
                wants: Vec::new(),
            }
            .into());
        }
        let held = wallet
            .held(&Counter::Principal, here)
            .saturating_add(wallet.held(&Counter::Bonus, here));
        let owed = amount.saturating_sub(held);
        let member_cap = units(rules.overdraft_member)?;
        let store_cap = units(rules.overdraft_store)?;
        let store_owed: u64 = self.read(&keys::receivable_total(here))?.unwrap_or(0);
        if owed + wallet.owed_at(here) > member_cap || owed + store_owed > store_cap {
            return Err(WalletError::RightsElsewhere { wants }.into());
        }
        if held == 0 {
            return Ok((Vec::new(), (0, 0), owed));
        }
        let (paid, split) = wallet.pay(here, held, rules.bonus_use)?;
        Ok((paid, split, owed))
    }

    /// A member's wallet as this store decides on it: holding nothing while it may not spend
    /// rights (fenced, or cut off past its lease), so a payment needs an ask or an overdraft.
    pub(super) fn wallet_of(&self, member: &MemberId) -> Result<Wallet, StoreError> {
        let mut wallet: Wallet = self.read(&keys::wallet(member))?.unwrap_or_default();
        if self.fenced || self.rights_gate.is_shut() {
            wallet.freeze(&self.settings.store_id);
        }
        Ok(wallet)
    }

    pub(super) fn wallet(&mut self, r: Request<WalletRequest>) -> Result<Outcome, Rejection> {
        let member = r.body.member_id;
        // An erased member's wallet stays, under their id: headquarters may still take its
        // rights back, and stored value a later return put back on it is refunded in cash.
        let erased = || {
            crate::sealed::member_key(&*self.store, &member)
                .map(|k| k == crate::sealed::KeyState::Erased)
        };
        let after_erasure = matches!(
            r.body.action,
            WalletAction::Recall { .. } | WalletAction::Refund { .. }
        );
        let known = self.member_exists(&member)? || (after_erasure && erased()?);
        if !known {
            return Err(Rejection::MemberNotFound(member));
        }
        let now_ms = (self.env.now_ms)();
        let today = self.settings.calendar.business_date(now_ms);
        let here = self.settings.store_id.clone();
        let rules = &self.settings.wallet;
        // 退卡: a closed membership takes nothing new (a reissued card opens it again).
        let gives = match &r.body.action {
            WalletAction::TopUp { .. }
            | WalletAction::SellCard { .. }
            | WalletAction::IssueCoupon { .. }
            | WalletAction::RedeemGift { .. } => true,
            WalletAction::AdjustPoints { points, .. } => *points > 0,
            _ => false,
        };
        let closing = matches!(r.body.action, WalletAction::Close { .. });
        // The stored view, not the automerge document: a top-up reads one sealed record.
        let profile = match gives || closing {
            true => self.member_view(&member)?.map(|v| v.profile),
            false => None,
        };
        let closed = profile
            .as_ref()
            .is_some_and(|p| p.card_status == protocol::member::CardStatus::Closed);
        if gives && closed {
            return Err(Rejection::MembershipClosed(member));
        }
        let mut wallet = self.wallet_of(&member)?;
        // Handing rights back to headquarters is what a store that may not spend should do.
        if matches!(r.body.action, WalletAction::Recall { .. }) {
            wallet.frozen_at = None;
        }
        let (event, ops) = match &r.body.action {
            WalletAction::TopUp { paid, rule } => {
                let paid = self.amount(paid, rules.top_up_max)?;
                let bonus = top_up_bonus(&rules.top_up_rules, rule.as_deref(), paid)?;
                let ops = wallet.top_up(&here, units(paid)?, units(bonus)?)?;
                let event = WalletEvent::TopUp {
                    paid,
                    bonus,
                    rule: rule.clone(),
                    tender: Tender::Cash {
                        tendered: paid,
                        change: Fen(0),
                    },
                };
                (event, ops)
            }
            WalletAction::AdjustPoints { points, reason } => {
                check_text(reason, REASON_CHARS_MAX)?;
                let magnitude = points.unsigned_abs();
                if magnitude > protocol::wallet::POINTS_ADJUST_MAX {
                    return Err(WalletError::PointsOutOfRange.into());
                }
                let ops = match points.signum() {
                    1 => wallet.earn_points(&here, lot_year(today), magnitude)?,
                    -1 => wallet.spend_points(&here, magnitude, today, &rules.points)?,
                    _ => return Err(WalletError::NotPositive.into()),
                };
                let event = WalletEvent::PointsAdjusted {
                    points: Points(*points),
                    reason: reason.trim().to_owned(),
                };
                (event, ops)
            }
            WalletAction::SellCard { name, kind, price } => {
                check_text(name, CARD_NAME_CHARS_MAX)?;
                let price = self.amount(price, self.settings.limits.amount_max)?;
                let card = CardId::for_entry(&here, self.tip.next_seq);
                // A card whose last day has passed is not sold.
                let last = match kind {
                    CardKind::Count { valid_to, .. } | CardKind::Timed { valid_to, .. } => {
                        *valid_to
                    }
                    CardKind::Period { to, .. } => Some(*to),
                };
                if last.is_some_and(|last| last < today) {
                    return Err(WalletError::CardExpired(card).into());
                }
                let ops = wallet.sell_card(&here, &card, kind)?;
                let event = WalletEvent::CardSold {
                    card,
                    name: name.trim().to_owned(),
                    kind: kind.clone(),
                    price,
                    tender: Tender::Cash {
                        tendered: price,
                        change: Fen(0),
                    },
                };
                (event, ops)
            }
            WalletAction::IssueCoupon {
                name,
                offer,
                from,
                to,
            } => {
                check_text(name, CARD_NAME_CHARS_MAX)?;
                check_offer(offer)?;
                let coupon = CardId::for_entry(&here, self.tip.next_seq);
                let ops = wallet.issue_coupon(&here, &coupon, (*from, *to))?;
                let event = WalletEvent::CouponIssued {
                    coupon,
                    name: name.trim().to_owned(),
                    offer: offer.clone(),
                    from: *from,
                    to: *to,
                };
                (event, ops)
            }
            WalletAction::UseCard { card, uses } => {
                let ops = wallet.use_card(&here, card, *uses, today)?;
                let event = WalletEvent::CardUsed {
                    card: card.clone(),
                    uses: *uses,
                };
                (event, ops)
            }
            WalletAction::Refund { principal, reason } => {
                check_text(reason, REASON_CHARS_MAX)?;
                let principal = self.amount(principal, rules.top_up_max)?;
                let (ops, forfeited) = wallet.refund(&here, units(principal)?)?;
                let event = WalletEvent::Refunded {
                    principal,
                    bonus_forfeited: fen(forfeited),
                    reason: reason.trim().to_owned(),
                };
                (event, ops)
            }
            WalletAction::ClockIn { card } => {
                wallet.clock_in(card, today)?;
                (WalletEvent::ClockedIn { card: card.clone() }, Vec::new())
            }
            WalletAction::ClockOut { card } => {
                let card_rules = self.settings.card_rules();
                let (ops, out) = wallet.clock_out(&here, card, now_ms, &card_rules, today)?;
                let event = WalletEvent::ClockedOut {
                    card: card.clone(),
                    minutes: out.minutes,
                    charged: out.charged,
                };
                (event, ops)
            }
            WalletAction::Close {
                reason,
                expect_cash,
            } => {
                check_text(reason, REASON_CHARS_MAX)?;
                // Whoever holds a lost card is not paid its money: the member proves who they
                // are by having it found again (解挂) or reissued (补卡) first.
                if profile
                    .as_ref()
                    .is_some_and(|p| p.card_status == protocol::member::CardStatus::Lost)
                {
                    return Err(Rejection::CardState(
                        "the card is reported lost: find it again (解挂) or reissue it (补卡), \
                         with the member's identity checked, before closing"
                            .into(),
                    ));
                }
                let (ops, closing) = wallet.close(&here, today, &self.settings.card_rules())?;
                // Closing twice pays nothing twice; what reached the wallet after a closing
                // (a top-up at a store that had not heard) is paid back by closing again.
                if closed && closing.is_empty() {
                    return Err(Rejection::MembershipClosed(member));
                }
                let previewed = match expect_cash {
                    // Nothing to pay back is a closing too: 0.00 is a cash amount here.
                    Some(cash)
                        if cash.amount.is_zero()
                            && cash.currency == self.settings.limits.currency =>
                    {
                        Some(Fen(0))
                    }
                    Some(cash) => Some(self.amount(cash, Fen(i64::MAX))?),
                    None => None,
                };
                if let Some(previewed) = previewed
                    && previewed != closing.cash()
                {
                    return Err(Rejection::ClosingChanged {
                        previewed,
                        now: closing.cash(),
                    });
                }
                // The older form when it says all, so stores not yet upgraded read it too.
                let reason = reason.trim().to_owned();
                let event = match closing.v1() {
                    Some(closing) => WalletEvent::Closed { closing, reason },
                    None => WalletEvent::ClosedUnderRules { closing, reason },
                };
                (event, ops)
            }
            WalletAction::SetPassword { hash } => {
                // The newest change wins everywhere, by (HLC, store): one this store writes must
                // come after the one it replaces, or the old password would stay in force.
                let next = self.clock.clone().tick(now_ms);
                if let Some((at, by, _)) = &wallet.password
                    && (next, &here) <= (*at, by)
                {
                    return Err(Rejection::ClockBehind { at_ms: at.wall_ms });
                }
                (WalletEvent::PasswordSet { hash: hash.clone() }, Vec::new())
            }
            WalletAction::PasswordFailed => (WalletEvent::PasswordFailed, Vec::new()),
            WalletAction::CollectOverdraft => {
                let amount = wallet.collectable_at(&here);
                if amount == 0 {
                    return Err(WalletError::NotPositive.into());
                }
                let (ops, _) = wallet.pay(&here, amount, rules.bonus_use)?;
                let event = WalletEvent::OverdraftCollected {
                    amount: fen(amount),
                };
                (event, ops)
            }
            // Two entries (the points, then the goods off the shelf), so a request of its own.
            WalletAction::RedeemGift { gift } => return self.redeem_gift(&r, gift, now_ms),
            WalletAction::Recall { counter, units } => {
                let give = wallet.held(counter, &here).min(*units);
                if give == 0 {
                    let policy = rules.points;
                    return self.record_only(&r, |ov| {
                        let wallet = wallet_summary(ov, &member, &here, today, &policy)?;
                        Ok(Outcome::Wallet {
                            member_id: member,
                            seq: None,
                            wallet,
                        })
                    });
                }
                let op = wallet.move_rights(&here, &StoreId::hq(), counter, give)?;
                let event = WalletEvent::Rights {
                    movement: Movement::Recall,
                };
                (event, vec![op])
            }
        };
        let payload = Payload::Wallet {
            member_id: member,
            event,
            ops,
        };
        let seq = self.tip.next_seq;
        let policy = self.settings.wallet.points;
        let mut payloads = vec![(payload, today)];
        // The card stops finding the member with the same request (the profile reaches every
        // store; the wallet only those that follow the member).
        if closing && !closed {
            let mut doc = self.member_doc(&member)?.0;
            let patch = protocol::member::ProfilePatch {
                card_status: Some(protocol::member::CardStatus::Closed),
                ..Default::default()
            };
            if let Some(edit) = self.profile_change(&member, &mut doc, now_ms, &patch)? {
                payloads.push((edit, today));
            }
        }
        self.append_all(&r, now_ms, payloads, |ov| {
            Ok(Outcome::Wallet {
                member_id: member,
                seq: Some(seq),
                wallet: wallet_summary(ov, &member, &here, today, &policy)?,
            })
        })
    }

    /// A positive amount in the store's currency, at most `max`.
    pub(super) fn amount(&self, money: &Money, max: Fen) -> Result<Fen, Rejection> {
        let currency = self.settings.limits.currency;
        if money.currency != currency {
            return Err(SaleError::Currency {
                expected: currency,
                got: money.currency,
            }
            .into());
        }
        let fen = money.to_fen().map_err(SaleError::from)?;
        if fen.0 <= 0 {
            return Err(WalletError::NotPositive.into());
        }
        if fen > max {
            return Err(SaleError::TooLarge { amount: fen, max }.into());
        }
        Ok(fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::*;
    use crate::store::MemStore;
    use protocol::money::parse_amount;

    fn wallet_cmd(key: &str, member: MemberId, action: WalletAction) -> Command {
        Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action,
            },
        ))
    }

    fn cny(amount: &str) -> Money {
        Money::new(parse_amount(amount).unwrap(), protocol::Currency::CNY)
    }

    fn summary(reply: Result<Reply, Rejection>) -> Summary {
        match reply.unwrap().outcome {
            Outcome::Wallet { wallet, .. } => wallet,
            Outcome::Sale {
                wallet: Some(wallet),
                ..
            } => wallet,
            other => panic!("no wallet: {other:?}"),
        }
    }

    #[test]
    fn stored_value_points_and_cards_end_to_end_in_the_journal() {
        let store = Arc::new(MemStore::default());
        let mut j = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let m = member_of(
            j.handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
        );
        let topped = summary(j.handle(wallet_cmd(
            "topup-000001",
            m,
            WalletAction::TopUp {
                paid: cny("500"),
                rule: Some("500+100".into()),
            },
        )));
        assert_eq!((topped.principal, topped.bonus), (Fen(50_000), Fen(10_000)));
        // Pay 60 from stored value: split 50 principal, 10 bonus (5:1), and earn 60 points.
        let mut pay = sale(Some(m), "60");
        pay.pay_with = protocol::sale::PayWith::StoredValue;
        let after = summary(j.handle(Command::QuickCheckout(request("sale-0000001", pay))));
        assert_eq!((after.principal, after.bonus), (Fen(45_000), Fen(9_000)));
        assert_eq!(after.points, 60);
        // More than the balance: refused, nothing written.
        let before = store.len();
        let mut too_much = sale(Some(m), "540.01");
        too_much.pay_with = protocol::sale::PayWith::StoredValue;
        let r = j.handle(Command::QuickCheckout(request("sale-0000002", too_much)));
        assert!(
            matches!(r, Err(Rejection::Wallet(WalletError::Insufficient { .. }))),
            "{r:?}"
        );
        // Refunds return principal only.
        let r = j.handle(wallet_cmd(
            "refund-00001",
            m,
            WalletAction::Refund {
                principal: cny("450.01"),
                reason: "退卡".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        assert_eq!(store.len(), before);
        let refunded = summary(j.handle(wallet_cmd(
            "refund-00002",
            m,
            WalletAction::Refund {
                principal: cny("450"),
                reason: "退卡".into(),
            },
        )));
        // The bonus that came with the principal is forfeited with it.
        assert_eq!((refunded.principal, refunded.bonus), (Fen(0), Fen(0)));
        // A count card of 2 uses: two uses, then no more.
        let sold = summary(j.handle(wallet_cmd(
            "card-0000001",
            m,
            WalletAction::SellCard {
                name: "洗车2次卡".into(),
                kind: CardKind::Count {
                    uses: 2,
                    valid_to: None,
                },
                price: cny("50"),
            },
        )));
        let card = sold.cards[0].card.clone();
        for n in 0..2 {
            let left = summary(j.handle(wallet_cmd(
                &format!("use-{n:08}"),
                m,
                WalletAction::UseCard {
                    card: card.clone(),
                    uses: 1,
                },
            )));
            assert_eq!(left.cards[0].uses_left, Some((1 - n, 1 - n)));
        }
        let r = j.handle(wallet_cmd(
            "use-00000009",
            m,
            WalletAction::UseCard { card, uses: 1 },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        // A card whose last day has passed is not sold.
        let r = j.handle(wallet_cmd(
            "card-old-0001",
            m,
            WalletAction::SellCard {
                name: "洗车10次".into(),
                kind: CardKind::Count {
                    uses: 10,
                    valid_to: chrono::NaiveDate::from_ymd_opt(2020, 1, 1),
                },
                price: cny("100"),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::CardExpired(_)))
        ));
        // Points by hand: a deduction beyond the balance is refused; a reason is required.
        let r = j.handle(wallet_cmd(
            "points-00001",
            m,
            WalletAction::AdjustPoints {
                points: -61,
                reason: "兑换".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::Insufficient { .. }))
        ));
        let r = j.handle(wallet_cmd(
            "points-00002",
            m,
            WalletAction::AdjustPoints {
                points: 10,
                reason: " ".into(),
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::ReasonMissing))
        ));
        // Points by hand are bounded: the tester's i64::MAX, three times, broke headquarters'
        // liabilities; a typo of a few zeros is refused too.
        for (n, points) in [i64::MAX, i64::MIN + 1, 1_000_001, -1_000_001]
            .into_iter()
            .enumerate()
        {
            let r = j.handle(wallet_cmd(
                &format!("points-big-{n:02}"),
                m,
                WalletAction::AdjustPoints {
                    points,
                    reason: "调整".into(),
                },
            ));
            assert!(
                matches!(r, Err(Rejection::Wallet(WalletError::PointsOutOfRange))),
                "{points}: {r:?}"
            );
        }
        let r = j.handle(wallet_cmd(
            "topup-000002",
            m,
            WalletAction::TopUp {
                paid: cny("-5"),
                rule: None,
            },
        ));
        assert!(matches!(
            r,
            Err(Rejection::Wallet(WalletError::NotPositive))
        ));
        j.flush().unwrap();
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    #[test]
    fn rights_held_elsewhere_are_named_and_a_recall_hands_them_to_hq() {
        // S002 topped the member up; S001 learns of it through the feed but holds no rights.
        let store = Arc::new(MemStore::default());
        let mut s002_settings = settings();
        s002_settings.store_id = StoreId::parse("S002").unwrap();
        let mut s002 = Journal::open(store.clone(), s002_settings, seeded_env(6)).unwrap();
        let m = member_of(
            s002.handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
        );
        s002.handle(wallet_cmd(
            "topup-000001",
            m,
            WalletAction::TopUp {
                paid: cny("100"),
                rule: None,
            },
        ))
        .unwrap();
        s002.flush().unwrap();
        let feed: Vec<FeedItem> = (1..=2)
            .map(|seq| FeedItem {
                position: seq,
                entry: store
                    .get(&keys::log(&StoreId::parse("S002").unwrap(), seq))
                    .unwrap()
                    .unwrap(),
            })
            .collect();
        let s001_store = Arc::new(MemStore::default());
        let mut s001 = Journal::open(s001_store.clone(), settings(), seeded_env(7)).unwrap();
        let keys = crate::uplink::member_keys(
            &*store,
            &feed.iter().map(|i| i.entry.clone()).collect::<Vec<_>>(),
        )
        .unwrap()
        .into_iter()
        .map(|(m, k)| (m, Some(k)))
        .collect();
        s001.apply_feed(2, feed, keys).unwrap();
        let mut pay = sale(Some(m), "30");
        pay.pay_with = protocol::sale::PayWith::StoredValue;
        let r = s001.handle(Command::QuickCheckout(request("sale-0000001", pay)));
        match r {
            Err(Rejection::Wallet(WalletError::RightsElsewhere { wants })) => {
                assert_eq!(wants, vec![(Counter::Principal, 3_000)]);
            }
            other => panic!("{other:?}"),
        }
        // At S002, headquarters' recall hands over what is held, up to what was asked.
        let recalled = summary(s002.handle(wallet_cmd(
            "recall-00001",
            m,
            WalletAction::Recall {
                counter: Counter::Principal,
                units: 20_000,
            },
        )));
        assert_eq!(
            (recalled.principal, recalled.held_here),
            (Fen(10_000), Fen(0))
        );
    }
}
