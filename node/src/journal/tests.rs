use super::*;
use crate::store::MemStore;
use protocol::{Money, money::parse_amount};

pub(super) fn settings() -> Settings {
    Settings {
        store_id: StoreId::parse("S001").unwrap(),
        calendar: StoreCalendar::default(),
        limits: SaleLimits::default(),
        earn: EarnRule::default(),
        default_tier: "standard".into(),
        max_forward_skew_ms: 1_000,
        wallet: WalletRules {
            top_up_rules: vec![protocol::wallet::TopUpRule {
                id: "500+100".into(),
                pay_at_least: Fen(50_000),
                bonus: Fen(10_000),
            }],
            ..WalletRules::default()
        },
        pricing: Default::default(),
        rates: Default::default(),
        backdate_days_max: 7,
        override_floor_percent: 90,
        tiers: None,
        card_rules: None,
    }
}

pub(super) fn seeded_env(seed: u64) -> Environment {
    let mut now = 1_795_451_400_000 + seed;
    let mut state = seed as u128 + 1;
    Environment {
        now_ms: Box::new(move || {
            now += 7;
            now
        }),
        random: Box::new(move || {
            state = state
                .wrapping_mul(0x2d99_7879_26d4_6932_a4c1)
                .wrapping_add(1);
            state
        }),
    }
}

pub(super) fn request<T>(key: &str, body: T) -> Request<T> {
    Request {
        key: TxId::parse(key).unwrap(),
        fingerprint: [key.len() as u8; 32],
        staff: StaffId::system(),
        body,
    }
}

pub(super) fn new_member(phone: &str) -> NewMember {
    NewMember::named("会员", Phone::parse(phone).unwrap())
}

pub(super) fn sale(member: Option<MemberId>, amount: &str) -> QuickSaleRequest {
    let amount = Money::new(parse_amount(amount).unwrap(), protocol::Currency::CNY);
    QuickSaleRequest {
        member_id: member,
        amount,
        category: None,
        cash_tendered: None,
        pay_with: protocol::sale::PayWith::Cash,
        offline_overdraft: false,
    }
}

/// A store that counts the flushes reaching it.
#[derive(Default)]
struct Counted(MemStore, std::sync::atomic::AtomicUsize);

impl Store for Counted {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<crate::store::KeyValue>, StoreError> {
        self.0.scan_prefix(prefix)
    }
    fn scan_prefix_rev(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<crate::store::KeyValue>, StoreError> {
        self.0.scan_prefix_rev(prefix, limit)
    }
    fn apply(&self, batch: crate::store::Batch) -> Result<(), StoreError> {
        self.0.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.flush()
    }
}

/// A spend waiting for rights headquarters granted waits while the feed is short of the
/// grant, then runs in the same group as the feed that brings it: one flush for both. One
/// whose till gave up, or that the till withdrew, is not run; one whose feed is already
/// here runs at once.
#[tokio::test]
async fn a_command_after_the_feed_runs_with_it_in_one_flush() {
    let store = Arc::new(Counted::default());
    let journal = Journal::open(store.clone(), settings(), seeded_env(1)).unwrap();
    let (handle, thread) = spawn(journal);
    let after = |key: &str, phone: &str, upto: u64| Control::AfterFeed {
        upto,
        then: Box::new(Command::RegisterMember(request(key, new_member(phone)))),
    };
    let feed = |upto: u64| Control::ApplyFeed {
        upto,
        items: Vec::new(),
        keys: Vec::new(),
    };
    let (waiting, mut result) = oneshot::channel();
    let parked = after("reg-00000001", "13800000001", 2);
    handle.send_with(parked, waiting).await.unwrap();
    let (abandoned, gave_up) = oneshot::channel();
    let parked = after("reg-00000002", "13800000002", 2);
    handle.send_with(parked, abandoned).await.unwrap();
    drop(gave_up);

    handle.send(feed(1)).await.unwrap();
    assert!(
        result.try_recv().is_err(),
        "the feed is not at the grant yet"
    );
    let flushes = store.1.load(std::sync::atomic::Ordering::SeqCst);
    handle.send(feed(2)).await.unwrap();
    member_of(result.await.unwrap().unwrap());
    assert_eq!(
        store.1.load(std::sync::atomic::Ordering::SeqCst),
        flushes + 1,
        "the feed and the waiting command share one flush"
    );
    // The abandoned registration never ran: its phone is free.
    let again = request("reg-00000003", new_member("13800000002"));
    member_of(handle.send(Command::RegisterMember(again)).await.unwrap());
    let ready = after("reg-00000004", "13800000004", 1);
    member_of(handle.send(ready).await.unwrap());

    // Withdrawn while waiting: answered so, and not run when the feed gets there.
    let (waiting, withdrawn) = oneshot::channel();
    let parked = after("reg-00000005", "13800000005", 3);
    handle.send_with(parked, waiting).await.unwrap();
    let key = TxId::parse("reg-00000005").unwrap();
    let withdraw = handle.send(Control::Withdraw { key }).await;
    assert!(
        matches!(withdraw, Err(Rejection::Withdrawn)),
        "{withdraw:?}"
    );
    let answer = withdrawn.await.unwrap();
    assert!(matches!(answer, Err(Rejection::Withdrawn)), "{answer:?}");
    handle.send(feed(3)).await.unwrap();
    // Its till gone before it was queued, with the feed already here: not run either.
    let (gone, dropped) = oneshot::channel();
    drop(dropped);
    let late = after("reg-00000006", "13800000006", 1);
    handle.send_with(late, gone).await.unwrap();
    for (key, phone) in [
        ("reg-00000007", "13800000005"),
        ("reg-00000008", "13800000006"),
    ] {
        let free = request(key, new_member(phone));
        member_of(handle.send(Command::RegisterMember(free)).await.unwrap());
    }
    drop(handle);
    thread.join().unwrap();
}

pub(super) fn member_of(reply: Reply) -> MemberId {
    match reply.outcome {
        Outcome::Member { member, .. } => member.member_id,
        other => panic!("not a member: {other:?}"),
    }
}

/// A payment password changed at a store whose clock is behind the change it would replace
/// is refused (it would be ordered first and lose), instead of answered and ignored.
#[test]
fn a_password_change_this_store_cannot_order_after_the_last_one_is_refused() {
    let store = Arc::new(MemStore::default());
    let mut journal = Journal::open(store, settings(), seeded_env(3)).unwrap();
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13900000001"),
            )))
            .unwrap(),
    );
    let set = |key: &str| {
        Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action: WalletAction::SetPassword {
                    hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                },
            },
        ))
    };
    journal.handle(set("pw-00000001")).unwrap();
    // S002, whose clock is a day ahead of this one, changed it since.
    let s002 = StoreId::parse("S002").unwrap();
    let later = Entry {
        origin: s002.clone(),
        seq: 1,
        hlc: Hlc {
            wall_ms: 1_795_451_400_000 + 86_400_000,
            logical: 0,
        },
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        staff: StaffId::system(),
        tx: TxId::parse("pw-s002-0001").unwrap(),
        prev_hash: protocol::EntryHash::GENESIS,
        payload: Payload::Wallet {
            member_id: member,
            event: WalletEvent::PasswordSet {
                hash: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXI".into(),
            },
            ops: Vec::new(),
        },
    };
    let items = vec![FeedItem {
        position: 1,
        entry: later.encode(),
    }];
    journal.apply_feed(1, items, Vec::new()).unwrap();
    assert!(matches!(
        journal.handle(set("pw-00000002")),
        Err(Rejection::ClockBehind { .. })
    ));
}

/// A tier set by hand and a held order voided are in the log as audit notes, the tier's
/// right after the profile change and under the same request key; the order is gone.
#[test]
fn a_tier_change_and_a_void_leave_an_audit_note() {
    let store = Arc::new(MemStore::default());
    let mut journal = Journal::open(store.clone(), settings(), seeded_env(4)).unwrap();
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13900000002"),
            )))
            .unwrap(),
    );
    let tier = |key: &str, tier: &str| {
        let patch = protocol::member::ProfilePatch {
            tier: Some(tier.into()),
            ..Default::default()
        };
        Command::EditMember(request(
            key,
            MemberEdit {
                member_id: member,
                patch,
                tier_reason: Some("VIP 客户".into()),
            },
        ))
    };
    journal.handle(tier("tier-00000001", "金卡")).unwrap();
    journal.flush().unwrap();
    // A held order as the till parked it (holding prices a basket against the catalogue).
    let view = held::HeldView {
        order_id: protocol::DocId::for_entry("H", &settings().store_id, 1),
        order: held::HeldOrder {
            member_id: Some(member),
            lines: Vec::new(),
            points: 0,
            coupons: Vec::new(),
            served_by: None,
            note: String::new(),
        },
        held_by: StaffId::parse("c01").unwrap(),
        held_at_ms: 0,
    };
    let mut batch = Batch::default();
    batch.put(held::key(&view.order_id), views::encode(&view));
    store.apply(batch).unwrap();
    journal
        .handle(Command::VoidHeld(request(
            "void-00000001",
            view.order_id.clone(),
        )))
        .unwrap();
    journal.flush().unwrap();
    let log: Vec<Entry> = (1..=4)
        .map(|seq| {
            let bytes = store.get(&keys::log(&settings().store_id, seq)).unwrap();
            assert!(bytes.is_some(), "no entry {seq}");
            Entry::decode(&bytes.unwrap()).unwrap()
        })
        .collect();
    assert!(matches!(log[1].payload, Payload::MemberEdited { .. }));
    assert_eq!(
        log[2].payload,
        Payload::Audit {
            note: protocol::audit::Note::TierMoved {
                member_id: member,
                from: "standard".into(),
                to: "金卡".into(),
                why: protocol::tiers::TierWhy::ByHand {
                    reason: "VIP 客户".into()
                },
            }
        }
    );
    assert_eq!(log[2].tx, log[1].tx);
    assert!(matches!(
        &log[3].payload,
        Payload::Audit { note: protocol::audit::Note::HeldVoided { order, lines: 0, .. } }
            if *order == view.order_id
    ));
    assert!(store.get(&held::key(&view.order_id)).unwrap().is_none());
    // The same tier again changes nothing and notes nothing.
    journal.handle(tier("tier-00000002", "金卡")).unwrap();
    journal.flush().unwrap();
    assert!(
        store
            .get(&keys::log(&settings().store_id, 5))
            .unwrap()
            .is_none()
    );
}

#[test]
fn unflushed_writes_vanish_in_a_crash_and_the_chain_continues() {
    let store = Arc::new(MemStore::default());
    let mut journal = Journal::open(store.clone(), settings(), seeded_env(1)).unwrap();
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
    );
    journal.flush().unwrap();
    journal
        .handle(Command::QuickCheckout(request(
            "sale-0000001",
            sale(Some(member), "10"),
        )))
        .unwrap();
    store.crash(); // before the flush: the sale was never acknowledged
    let mut journal = Journal::open(store.clone(), settings(), seeded_env(2)).unwrap();
    assert_eq!(journal.tip().next_seq, 2);
    let again = journal
        .handle(Command::QuickCheckout(request(
            "sale-0000001",
            sale(Some(member), "10"),
        )))
        .unwrap();
    assert!(!again.replayed, "the lost sale is sold anew, once");
    journal.flush().unwrap();
    let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.entries, 2);
}

#[test]
fn views_of_another_version_are_rebuilt_from_the_log_on_open() {
    let store = Arc::new(MemStore::default());
    assert!(
        !views::ensure_current(&*store, &StoreCalendar::default()).unwrap(),
        "an empty store has nothing to rebuild"
    );
    let mut journal = Journal::open(store.clone(), settings(), seeded_env(3)).unwrap();
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13800000001"),
            )))
            .unwrap(),
    );
    journal
        .handle(Command::QuickCheckout(request(
            "sale-0000001",
            sale(Some(member), "10"),
        )))
        .unwrap();
    journal.flush().unwrap();
    assert!(
        !views::ensure_current(&*store, &StoreCalendar::default()).unwrap(),
        "current views are kept"
    );
    // An older version wrote these views: a wallet in a shape this one cannot read.
    let mut old = crate::store::Batch::default();
    old.put(keys::wallet(&member), vec![0xff; 3]);
    old.delete(keys::VIEWS_VERSION_KEY.to_vec());
    store.apply(old).unwrap();
    assert!(views::Views::new(store.clone()).wallet(&member).is_err());
    assert!(views::ensure_current(&*store, &StoreCalendar::default()).unwrap());
    let wallet = views::Views::new(store.clone()).wallet(&member).unwrap();
    assert!(
        wallet
            .counters
            .keys()
            .any(|c| matches!(c, Counter::Points { .. }))
    );
    assert!(
        views::rebuild(&*store, &StoreCalendar::default())
            .unwrap()
            .is_clean()
    );
}

#[test]
fn the_same_seed_writes_the_same_log() {
    let run = || {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(9)).unwrap();
        let m = member_of(
            journal
                .handle(Command::RegisterMember(request(
                    "reg-00000001",
                    new_member("13800000001"),
                )))
                .unwrap(),
        );
        for n in 0..20 {
            let amount = format!("{}.{:02}", n * 3 + 1, n);
            journal
                .handle(Command::QuickCheckout(request(
                    &format!("sale-{n:07}"),
                    sale(Some(m), &amount),
                )))
                .unwrap();
        }
        journal.flush().unwrap();
        journal.tip()
    };
    assert_eq!(run(), run());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// 会员搜索 through its index answers exactly what reading every member would: the
    /// first members in id order that match, after registrations, renames and new phones;
    /// and the index rebuilds from the log to the same records.
    #[test]
    fn search_through_the_index_answers_what_reading_every_member_would(
        names in proptest::collection::vec("[张王李芳伟aB]{1,4}", 1..30),
        edits in proptest::collection::vec(
            (0usize..30, "[张王李芳伟aB]{1,4}", proptest::option::of(0u32..40)),
            0..10,
        ),
        queries in proptest::collection::vec("[张王李芳伟ab]{1,3}|00[0-3][0-9]|[0-9]{4,5}", 1..12),
    ) {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(7)).unwrap();
        let mut ids = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let member = NewMember::named(
                name.as_str(),
                Phone::parse(&format!("1380000{:04}", n * 7 % 40)).unwrap(),
            );
            let reply = journal.handle(Command::RegisterMember(request(
                &format!("reg-{n:08}"),
                member,
            )));
            // Two members may draw the same phone; the second is refused.
            if let Ok(Reply { outcome: Outcome::Member { member, .. }, .. }) = reply {
                ids.push(member.member_id);
            }
        }
        for (n, (which, name, phone)) in edits.into_iter().enumerate() {
            let patch = ProfilePatch {
                name: Some(name),
                phone: phone.map(|p| Phone::parse(&format!("1390000{p:04}")).unwrap()),
                ..Default::default()
            };
            let edit = MemberEdit { member_id: ids[which % ids.len()], patch, tier_reason: None };
            let _ = journal.handle(Command::EditMember(request(&format!("edit-{n:08}"), edit)));
        }
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        for query in queries {
            let every: Vec<MemberView> = store
                .scan_prefix(b"m/")
                .unwrap()
                .into_iter()
                .map(|(k, _)| {
                    let id = MemberId::parse(std::str::from_utf8(&k[2..]).unwrap()).unwrap();
                    views.member(&id).unwrap().unwrap()
                })
                .filter(|m| m.profile.matches(&query))
                .take(3)
                .collect();
            let indexed = views.search_members(&query, 3).unwrap();
            let ids = |ms: &[MemberView]| ms.iter().map(|m| m.member_id).collect::<Vec<_>>();
            proptest::prop_assert_eq!(ids(&indexed), ids(&every), "query {:?}", query);
        }
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        proptest::prop_assert!(report.is_clean(), "{:?}", report);
    }
}

#[test]
fn rejections_write_nothing() {
    let store = Arc::new(MemStore::default());
    let mut journal = Journal::open(store.clone(), settings(), seeded_env(3)).unwrap();
    journal
        .handle(Command::RegisterMember(request(
            "reg-00000001",
            new_member("13800000001"),
        )))
        .unwrap();
    let before = store.len();
    let dup = journal.handle(Command::RegisterMember(request(
        "reg-00000002",
        new_member("13800000001"),
    )));
    assert!(matches!(dup, Err(Rejection::PhoneTaken(..))));
    let ghost = MemberId::mint(1, 1);
    let r = journal.handle(Command::QuickCheckout(request(
        "sale-0000001",
        sale(Some(ghost), "1"),
    )));
    assert!(matches!(r, Err(Rejection::MemberNotFound(_))));
    let r = journal.handle(Command::QuickCheckout(request(
        "sale-0000002",
        sale(None, "0"),
    )));
    assert!(matches!(r, Err(Rejection::Sale(SaleError::NotPositive))));
    assert_eq!(store.len(), before);
    assert_eq!(journal.tip().next_seq, 2);
}

/// 挂失, 解挂, 补卡 and 退卡 in the journal: a step out of order is refused and writes nothing; a
/// closed membership takes no top-up and pays nothing twice; a reissued card opens it again.
#[test]
fn card_steps_out_of_order_are_refused_and_a_closing_pays_once() {
    use protocol::audit::IdentityCheck::IdDocument;
    let store = Arc::new(MemStore::default());
    let mut journal = Journal::open(store, settings(), seeded_env(5)).unwrap();
    let mut joining = new_member("13900000005");
    joining.card_no = Some(CardNo::parse("VIP0005").unwrap());
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request("reg-00000005", joining)))
            .unwrap(),
    );
    let card = |key: &str, action| {
        Command::Card(request(
            key,
            CardChange {
                member_id: member,
                action,
            },
        ))
    };
    let wallet = |key: &str, action| {
        Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action,
            },
        ))
    };
    let top_up = || WalletAction::TopUp {
        paid: Money::new(parse_amount("100").unwrap(), protocol::Currency::CNY),
        rule: None,
    };
    let close = || WalletAction::Close {
        reason: "搬家".into(),
        expect_cash: None,
    };
    let before = journal.tip.next_seq;
    let found = journal.handle(card("card-0001", CardAction::Found { check: IdDocument }));
    assert!(matches!(found, Err(Rejection::CardState(_))), "{found:?}");
    let edit = MemberEdit {
        member_id: member,
        tier_reason: None,
        patch: ProfilePatch {
            card_no: Some(Some(CardNo::parse("VIP0006").unwrap())),
            ..ProfilePatch::default()
        },
    };
    let edited = journal.handle(Command::EditMember(request("edit-0001", edit)));
    assert!(matches!(edited, Err(Rejection::CardState(_))), "{edited:?}");
    assert_eq!(journal.tip.next_seq, before, "nothing was written");

    journal.handle(card("card-0002", CardAction::Lost)).unwrap();
    journal.handle(wallet("topup-0001", top_up())).unwrap();
    let lost = journal.handle(wallet("close-0000", close()));
    assert!(
        matches!(lost, Err(Rejection::CardState(_))),
        "a lost card is not paid: {lost:?}"
    );
    let found = CardAction::Found { check: IdDocument };
    journal.handle(card("card-0004", found)).unwrap();
    journal.handle(wallet("close-0001", close())).unwrap();
    let closed_at = journal.tip.next_seq;
    let twice = journal.handle(wallet("close-0002", close()));
    assert!(
        matches!(twice, Err(Rejection::MembershipClosed(_))),
        "{twice:?}"
    );
    let topped = journal.handle(wallet("topup-0002", top_up()));
    assert!(
        matches!(topped, Err(Rejection::MembershipClosed(_))),
        "{topped:?}"
    );
    let sold = journal.handle(Command::QuickCheckout(request(
        "sale-0001",
        sale(Some(member), "10"),
    )));
    assert!(
        matches!(sold, Err(Rejection::MembershipClosed(_))),
        "{sold:?}"
    );
    assert_eq!(journal.tip.next_seq, closed_at, "nothing was written");

    let reissue = CardAction::Reissue {
        card_no: CardNo::parse("VIP0006").unwrap(),
        check: IdDocument,
    };
    journal.handle(card("card-0003", reissue)).unwrap();
    journal.handle(wallet("topup-0003", top_up())).unwrap();
}

/// A journal on a clock the test moves, with a member holding a 120-minute timed card (停车卡):
/// the journal, the clock, a maker of the member's wallet commands, and the card.
fn with_timed_card(
    rules: Settings,
    seed: u64,
    phone: &str,
) -> (
    Journal,
    Arc<std::sync::atomic::AtomicU64>,
    impl Fn(&str, WalletAction) -> Command,
    CardId,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let clock = Arc::new(AtomicU64::new(1_795_451_400_000));
    let now = clock.clone();
    let env = Environment {
        now_ms: Box::new(move || now.fetch_add(1, Ordering::SeqCst)),
        random: seeded_env(seed).random,
    };
    let mut journal = Journal::open(Arc::new(MemStore::default()), rules, env).unwrap();
    let member = member_of(
        journal
            .handle(Command::RegisterMember(request(
                &format!("reg-{phone}"),
                new_member(phone),
            )))
            .unwrap(),
    );
    let wallet = move |key: &str, action| {
        Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action,
            },
        ))
    };
    let card = CardId::for_entry(&StoreId::parse("S001").unwrap(), journal.tip.next_seq);
    let sell = WalletAction::SellCard {
        name: "停车卡".into(),
        kind: CardKind::Timed {
            minutes: 120,
            valid_to: None,
        },
        price: Money::new(parse_amount("60").unwrap(), protocol::Currency::CNY),
    };
    journal.handle(wallet("sell-0001", sell)).unwrap();
    (journal, clock, wallet, card)
}

fn uses_left(reply: Reply) -> Option<u64> {
    match reply.outcome {
        Outcome::Wallet { wallet, .. } => wallet.cards[0].uses_left.map(|u| u.0),
        other => panic!("not a wallet: {other:?}"),
    }
}

/// 计时卡 through the journal: sold, clocked in, clocked out 31 minutes later in the store's
/// steps of 15 (45 minutes off the card), and a second clock-out refused.
#[test]
fn a_timed_card_is_clocked_in_and_out_with_the_minutes_rounded_up() {
    let mut rules = settings();
    rules.wallet.timed_round_minutes = 15;
    let (mut journal, clock, wallet, card) = with_timed_card(rules, 9, "13900000009");
    let clock_in = || WalletAction::ClockIn { card: card.clone() };
    let clock_out = || WalletAction::ClockOut { card: card.clone() };
    journal.handle(wallet("clockin-0001", clock_in())).unwrap();
    clock.fetch_add(31 * 60_000, std::sync::atomic::Ordering::SeqCst);
    let out = journal
        .handle(wallet("clockout-0001", clock_out()))
        .unwrap();
    assert_eq!(uses_left(out), Some(75));
    let again = journal.handle(wallet("clockout-0002", clock_out()));
    assert!(
        matches!(again, Err(Rejection::Wallet(WalletError::NotClockedIn(_)))),
        "{again:?}"
    );
}

/// 退卡与计时规则 from headquarters: a visit within the free minutes costs nothing, a longer one
/// is charged to the nearest step, and a closing keeps the fee and pays no card back.
#[test]
fn the_chains_card_rules_set_the_free_minutes_the_step_and_the_closings_fee_a_stale_preview_refused()
 {
    use std::sync::atomic::Ordering;
    let mut rules = settings();
    rules.wallet.timed_round_minutes = 15;
    rules.card_rules = Some(protocol::card_rules::CardRules {
        cards: protocol::card_rules::CardRefund::None,
        fee_percent: rust_decimal::Decimal::from(10),
        step_minutes: 30,
        rounding: protocol::card_rules::StepRounding::Nearest,
        free_minutes: 10,
        ..protocol::card_rules::CardRules::default()
    });
    let (mut journal, clock, wallet, card) = with_timed_card(rules, 10, "13900000010");
    let clock_in = || WalletAction::ClockIn { card: card.clone() };
    let clock_out = || WalletAction::ClockOut { card: card.clone() };
    journal.handle(wallet("clockin-0001", clock_in())).unwrap();
    clock.fetch_add(8 * 60_000, Ordering::SeqCst);
    let out = journal
        .handle(wallet("clockout-0001", clock_out()))
        .unwrap();
    assert_eq!(uses_left(out), Some(120), "within the free minutes");
    journal.handle(wallet("clockin-0002", clock_in())).unwrap();
    clock.fetch_add(40 * 60_000, Ordering::SeqCst);
    let out = journal
        .handle(wallet("clockout-0002", clock_out()))
        .unwrap();
    assert_eq!(
        uses_left(out),
        Some(90),
        "41 minutes begun are a step of 30, to the nearest"
    );

    let top_up = WalletAction::TopUp {
        paid: Money::new(parse_amount("100").unwrap(), protocol::Currency::CNY),
        rule: None,
    };
    journal.handle(wallet("topup-0001", top_up)).unwrap();
    let at = journal.tip.next_seq;
    // The cashier confirmed the cash a preview showed before the fee was published: refused,
    // nothing written, and the same closing with the figure on record goes through.
    let cny = |yuan: &str| Money::new(parse_amount(yuan).unwrap(), protocol::Currency::CNY);
    let close = |cash: &str| WalletAction::Close {
        reason: "搬家".into(),
        expect_cash: Some(cny(cash)),
    };
    let stale = journal.handle(wallet("close-0000", close("100.00")));
    assert!(
        matches!(
            stale,
            Err(Rejection::ClosingChanged {
                previewed: protocol::Fen(10_000),
                now: protocol::Fen(9_000)
            })
        ),
        "{stale:?}"
    );
    assert_eq!(journal.tip.next_seq, at, "nothing was written");
    journal
        .handle(wallet("close-0001", close("90.00")))
        .unwrap();
    journal.flush().unwrap();
    let bytes = journal
        .store
        .get(&keys::log(&settings().store_id, at))
        .unwrap();
    let entry = Entry::decode(&bytes.unwrap()).unwrap();
    let Payload::Wallet { event, .. } = &entry.payload else {
        panic!("not a wallet entry: {:?}", entry.payload)
    };
    let closing = event.closing().expect("a closing");
    assert!(matches!(event, WalletEvent::ClosedUnderRules { .. }));
    assert_eq!(
        closing.card_refunds(),
        protocol::Fen(0),
        "cards are not paid back"
    );
    assert_eq!(closing.fee, protocol::Fen(10_00));
    assert_eq!(closing.cash(), protocol::Fen(90_00));
}
