use super::*;
use crate::card_rules::CardRules;
use proptest::prelude::*;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

proptest! {
    /// Wrong passwords and password changes from several stores, taken in any order or
    /// merged replica by replica, leave the same wallet: the latest password, and the latest
    /// failures after it (at most the limit).
    #[test]
    fn password_failures_and_changes_merge_in_any_order(
        events in proptest::collection::vec((0u64..40, 0u8..3, proptest::bool::ANY), 1..24),
        split in 0usize..24,
    ) {
        let event = |(at, store, set): &(u64, u8, bool)| {
            let origin = StoreId::parse(&format!("S00{}", store + 1)).unwrap();
            let hlc = Hlc { wall_ms: at * 3_600_000, logical: u32::from(*store) };
            let event = match set {
                true => WalletEvent::PasswordSet { hash: format!("h{at}") },
                false => WalletEvent::PasswordFailed,
            };
            (origin, hlc, event)
        };
        let apply = |w: &mut Wallet, e: &(u64, u8, bool)| {
            let (origin, hlc, event) = event(e);
            w.apply(&origin, (hlc, day(2026, 12, 1)), &event, &[]);
        };
        let mut forward = Wallet::default();
        events.iter().for_each(|e| apply(&mut forward, e));
        let mut backward = Wallet::default();
        events.iter().rev().for_each(|e| apply(&mut backward, e));
        prop_assert_eq!(&forward, &backward);
        let (a, b) = events.split_at(split.min(events.len()));
        let (mut left, mut right) = (Wallet::default(), Wallet::default());
        a.iter().for_each(|e| apply(&mut left, e));
        b.iter().for_each(|e| apply(&mut right, e));
        left.merge(&right);
        prop_assert_eq!(&left, &forward);
        prop_assert!(forward.password_failures.len() <= PASSWORD_FAILURES_MAX);
    }
}

/// Five wrong passwords within a day lock the member until a day after the first of them;
/// a new password lifts the lock at once.
#[test]
fn five_wrong_passwords_in_a_day_lock_until_it_lapses_or_a_new_one() {
    let store = StoreId::parse("S001").unwrap();
    let other = StoreId::parse("S002").unwrap();
    let hour = 3_600_000;
    let at = |h: u64| Hlc {
        wall_ms: h * hour,
        logical: 0,
    };
    let mut w = Wallet::default();
    let set = WalletEvent::PasswordSet { hash: "h".into() };
    w.apply(&store, (at(1), day(2026, 12, 1)), &set, &[]);
    for (h, origin) in [(2, &store), (3, &other), (4, &store), (5, &other)] {
        w.apply(
            origin,
            (at(h), day(2026, 12, 1)),
            &WalletEvent::PasswordFailed,
            &[],
        );
    }
    assert_eq!(w.password_failures_at(6 * hour), 4);
    assert_eq!(w.password_locked_until(6 * hour), None);
    w.apply(
        &other,
        (at(6), day(2026, 12, 1)),
        &WalletEvent::PasswordFailed,
        &[],
    );
    assert_eq!(w.password_locked_until(6 * hour), Some(26 * hour));
    assert_eq!(
        w.password_locked_until(26 * hour),
        None,
        "a day after the first"
    );
    assert_eq!(
        w.password_failures_at(26 * hour),
        4,
        "the first no longer counts"
    );
    let reset = WalletEvent::PasswordSet { hash: "h2".into() };
    w.apply(&store, (at(7), day(2026, 12, 1)), &reset, &[]);
    assert_eq!(w.password_locked_until(7 * hour), None);
    assert!(w.password_failures.is_empty());
}

#[test]
fn top_up_rules_are_checked() {
    let rules = vec![TopUpRule {
        id: "5000+2000".into(),
        pay_at_least: Fen(5000_00),
        bonus: Fen(2000_00),
    }];
    assert_eq!(
        top_up_bonus(&rules, Some("5000+2000"), Fen(5000_00)),
        Ok(Fen(2000_00))
    );
    assert_eq!(top_up_bonus(&rules, None, Fen(1_00)), Ok(Fen(0)));
    assert!(matches!(
        top_up_bonus(&rules, Some("5000+2000"), Fen(4999_99)),
        Err(WalletError::RuleNotMet { .. })
    ));
    assert!(matches!(
        top_up_bonus(&rules, Some("nope"), Fen(5000_00)),
        Err(WalletError::UnknownRule(_))
    ));
    assert_eq!(
        top_up_bonus(&rules, None, Fen(0)),
        Err(WalletError::NotPositive)
    );
    assert_eq!(
        top_up_bonus(&rules, None, Fen(-1)),
        Err(WalletError::NotPositive)
    );
}

#[test]
fn payments_split_by_rule() {
    // 5000 principal + 2000 bonus; pay 70: 50 principal, 20 bonus.
    assert_eq!(
        split_payment(70_00, 5000_00, 2000_00, BonusUse::Proportional),
        Ok((50_00, 20_00))
    );
    assert_eq!(
        split_payment(70_00, 5000_00, 2000_00, BonusUse::BonusFirst),
        Ok((0, 70_00))
    );
    assert_eq!(
        split_payment(70_00, 5000_00, 2000_00, BonusUse::PrincipalFirst),
        Ok((70_00, 0))
    );
    assert_eq!(
        split_payment(70_00, 60_00, 5_00, BonusUse::PrincipalFirst),
        Err(WalletError::Insufficient {
            available: 65_00,
            wanted: 70_00,
            wants: vec![]
        })
    );
}

#[test]
fn points_expire_at_the_end_of_the_next_year() {
    let policy = PointsPolicy::default();
    assert_eq!(policy.last_day(2025), Some(day(2026, 12, 31)));
    assert!(policy.lot_alive(2025, day(2026, 12, 31)));
    assert!(!policy.lot_alive(2025, day(2027, 1, 1)));
    let held = [(2026, 50), (2025, 30), (2024, 1000)];
    assert_eq!(
        policy.take_oldest_first(&held, 60, day(2026, 6, 1)),
        Ok(vec![(2025, 30), (2026, 30)])
    );
    assert_eq!(
        policy.take_oldest_first(&held, 81, day(2026, 6, 1)),
        Err(WalletError::Insufficient {
            available: 80,
            wanted: 81,
            wants: vec![]
        })
    );
    assert!(
        PointsPolicy { keep_years: None }
            .take_oldest_first(&held, 1080, day(2030, 1, 1))
            .is_ok()
    );
}

#[test]
fn cards_are_usable_only_in_their_period() {
    let card = SaleId::for_entry(&StoreId::parse("S001").unwrap(), 7);
    let month = CardKind::Period {
        from: day(2026, 11, 1),
        to: day(2026, 11, 30),
    };
    assert!(month.usable_on(&card, day(2026, 11, 30)).is_ok());
    assert!(matches!(
        month.usable_on(&card, day(2026, 12, 1)),
        Err(WalletError::CardExpired(_))
    ));
    assert!(matches!(
        month.usable_on(&card, day(2026, 10, 31)),
        Err(WalletError::CardNotYetValid(..))
    ));
    assert_eq!(
        CardKind::Count {
            uses: 0,
            valid_to: None
        }
        .validate(),
        Err(WalletError::UsesOutOfRange)
    );
    assert_eq!(
        CardKind::Period {
            from: day(2026, 2, 1),
            to: day(2026, 1, 1)
        }
        .validate(),
        Err(WalletError::EmptyPeriod)
    );
}

#[test]
fn a_refund_forfeits_the_bonus_that_came_with_it() {
    let s1 = StoreId::parse("S001").unwrap();
    let mut w = Wallet::default();
    w.top_up(&s1, 5000_00, 2000_00).unwrap();
    let (_, forfeited) = w.refund(&s1, 2500_00).unwrap();
    assert_eq!(forfeited, 1000_00);
    assert_eq!(
        (w.balance(&Counter::Principal), w.balance(&Counter::Bonus)),
        (2500_00, 1000_00)
    );
    assert!(matches!(
        w.refund(&s1, 2500_01),
        Err(WalletError::Insufficient { .. })
    ));
}

#[test]
fn counters_have_stable_keys() {
    let card = SaleId::for_entry(&StoreId::parse("S002").unwrap(), 12);
    let keys: Vec<String> = [
        Counter::Principal,
        Counter::Bonus,
        Counter::Points { year: 2026 },
        Counter::Uses { card },
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(keys, ["sv.p", "sv.b", "pt.2026", "cc.S002-00000012"]);
}

proptest! {
    #[test]
    fn a_split_pays_exactly_and_within_what_is_held(
        amount in 1u64..1_000_000, p in 0u64..1_000_000, b in 0u64..1_000_000, rule in 0..3usize,
    ) {
        let rule = [BonusUse::Proportional, BonusUse::PrincipalFirst, BonusUse::BonusFirst][rule];
        match split_payment(amount, p, b, rule) {
            Ok((pp, bb)) => {
                prop_assert_eq!(pp + bb, amount);
                prop_assert!(pp <= p && bb <= b);
            }
            Err(WalletError::Insufficient { .. }) => prop_assert!(amount > p + b),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn oldest_first_takes_exactly_from_live_lots(
        lots in proptest::collection::vec((2020i32..2030, 0u64..500), 0..6),
        wanted in 1u64..2000,
    ) {
        let policy = PointsPolicy::default();
        let today = day(2026, 6, 1);
        if let Ok(taken) = policy.take_oldest_first(&lots, wanted, today) {
            prop_assert_eq!(taken.iter().map(|(_, u)| u).sum::<u64>(), wanted);
            for (year, units) in &taken {
                prop_assert!(policy.lot_alive(*year, today));
                let held: u64 = lots.iter().filter(|(y, _)| y == year).map(|(_, u)| u).sum();
                prop_assert!(*units <= held);
            }
        }
    }
}

/// A payment beyond the balance a store has heard of says what headquarters would have to move
/// there (beyond what the store holds) in case it has not heard of a top-up elsewhere yet.
#[test]
fn a_payment_short_of_what_a_store_has_heard_says_what_to_ask_for() {
    let (s1, s2) = (
        StoreId::parse("S001").unwrap(),
        StoreId::parse("S002").unwrap(),
    );
    let mut w = Wallet::default();
    w.top_up(&s2, 30_00, 5_00).unwrap();
    let mut heard_at_s2 = w.clone();
    // A top-up at S001 that S002 has not heard of yet.
    let mut at_s1 = w.clone();
    let more = at_s1.top_up(&s1, 100_00, 0).unwrap();
    assert_eq!(at_s1.require_free(&s2, 120_00), Ok(()));
    assert_eq!(
        heard_at_s2.require_free(&s2, 120_00),
        Err(WalletError::Insufficient {
            available: 35_00,
            wanted: 120_00,
            wants: vec![(Counter::Principal, 85_00)],
        })
    );
    // Once heard, the balance covers it; the rights are still at S001.
    heard_at_s2.absorb(&s1, &more);
    assert_eq!(heard_at_s2.require_free(&s2, 120_00), Ok(()));
    assert!(matches!(
        heard_at_s2.clone().pay(&s2, 120_00, BonusUse::Proportional),
        Err(WalletError::RightsElsewhere { .. })
    ));
}

/// 计时卡: the minutes on the clock, rounded up to the chain's step, come off the card; what it
/// lacks is overtime for the cashier; a clock cannot start twice, nor stop when not running.
#[test]
fn a_timed_card_charges_the_minutes_on_the_clock_rounded_up_and_says_what_it_lacks() {
    let s1 = StoreId::parse("S001").unwrap();
    let card = SaleId::for_entry(&s1, 3);
    let today = day(2026, 12, 5);
    let mut w = Wallet::default();
    let kind = CardKind::Timed {
        minutes: 60,
        valid_to: None,
    };
    let ops = w.sell_card(&s1, &card, &kind).unwrap();
    let sold = WalletEvent::CardSold {
        card: card.clone(),
        name: "儿童乐园".into(),
        kind,
        price: Fen(100_00),
        tender: Tender::Cash {
            tendered: Fen(100_00),
            change: Fen(0),
        },
    };
    w.apply(&s1, (Hlc::default(), today), &sold, &ops);
    let at = |minute: u64| Hlc {
        wall_ms: 1_000_000 + minute * 60_000,
        logical: 0,
    };
    assert_eq!(
        w.clock_out(&s1, &card, at(5).wall_ms, &CardRules::with_step(15), today),
        Err(WalletError::NotClockedIn(card.clone()))
    );
    w.clock_in(&card, today).unwrap();
    let started = WalletEvent::ClockedIn { card: card.clone() };
    w.apply(&s1, (at(0), today), &started, &[]);
    assert!(matches!(
        w.clock_in(&card, today),
        Err(WalletError::ClockedIn(..))
    ));
    // 31 minutes in steps of 15: 45 charged.
    let (ops, out) = w
        .clock_out(&s1, &card, at(31).wall_ms, &CardRules::with_step(15), today)
        .unwrap();
    assert_eq!((out.minutes, out.charged, out.overtime), (45, 45, 0));
    let stopped = WalletEvent::ClockedOut {
        card: card.clone(),
        minutes: out.minutes,
        charged: out.charged,
    };
    w.apply(&s1, (at(31), today), &stopped, &ops);
    assert_eq!(w.balance(&Counter::Uses { card: card.clone() }), 15);
    assert!(w.cards[&card].clocked_in.is_none());
    // 40 more minutes with 15 left: 15 charged, 25 over.
    w.apply(&s1, (at(100), today), &started, &[]);
    let (_, out) = w
        .clock_out(&s1, &card, at(140).wall_ms, &CardRules::with_step(1), today)
        .unwrap();
    assert_eq!((out.minutes, out.charged, out.overtime), (40, 15, 25));
}

#[test]
fn a_booklets_coupons_share_one_scope_stored_once_and_read_back_whole() {
    let scope = crate::pricing::CouponScope {
        skus: Default::default(),
        categories: (0..200).map(|n| format!("类别{n:03}")).collect(),
    };
    let hq = StoreId::hq();
    let mut wallet = Wallet::default();
    let coupon = |n: u32| WalletEvent::CampaignCoupon {
        coupon: CardId::parse(&format!("cp-00000000000{n}")).unwrap(),
        campaign: "C1".into(),
        template: "T1".into(),
        name: "券包".into(),
        offer: crate::pricing::Coupon::Voucher {
            value: Fen(100),
            threshold: Fen(0),
        },
        scope: scope.clone(),
        stacks: None,
        from: day(2026, 12, 1),
        to: day(2026, 12, 31),
    };
    let one = {
        let mut w = Wallet::default();
        w.apply(&hq, (Hlc::ZERO, day(2026, 12, 1)), &coupon(1), &[]);
        postcard::to_stdvec(&w).unwrap().len()
    };
    for n in 1..=9 {
        wallet.apply(&hq, (Hlc::ZERO, day(2026, 12, 1)), &coupon(n), &[]);
    }
    let bytes = postcard::to_stdvec(&wallet).unwrap();
    assert!(
        bytes.len() < one + 9 * 200,
        "nine coupons of one scope take {} bytes, one takes {one}",
        bytes.len()
    );
    let back: Wallet = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, wallet);
    assert_eq!(back.coupons.len(), 9);
    assert!(
        back.coupons
            .values()
            .all(|d| d.scope.categories.len() == 200)
    );
}
