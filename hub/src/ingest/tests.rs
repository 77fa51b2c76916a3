use super::*;
use crate::storage::MemHubStore;
use protocol::member::{Gender, Profile};
use protocol::wallet::RightsOp;
use protocol::{Hlc, StaffId, TxId};

pub(crate) fn registration(store: &StoreId, tip: ChainTip, phone: &str) -> Entry {
    registration_with(store, tip, phone, true)
}

/// A member's registration, with or without their marketing consent.
pub(crate) fn registration_with(
    store: &StoreId,
    tip: ChainTip,
    phone: &str,
    consent: bool,
) -> Entry {
    registration_of(store, tip, phone, consent, None)
}

/// A member's registration naming the member who referred them (拓客).
pub(crate) fn registration_referred(
    store: &StoreId,
    tip: ChainTip,
    phone: &str,
    referrer: Option<MemberId>,
) -> Entry {
    registration_of(store, tip, phone, false, referrer)
}

fn registration_of(
    store: &StoreId,
    tip: ChainTip,
    phone: &str,
    consent: bool,
    referrer: Option<MemberId>,
) -> Entry {
    let profile = Profile {
        name: "会员".into(),
        phone: Phone::parse(phone).unwrap(),
        card_no: None,
        birthday: None,
        gender: Gender::Unspecified,
        tags: Default::default(),
        notes: String::new(),
        tier: "standard".into(),
        custom: Default::default(),
        home_store: store.clone(),
        join_date: chrono_date(),
        referrer,
        marketing_consent: consent,
        card_status: Default::default(),
        former_cards: Default::default(),
    };
    let (_, change) = MemberDoc::create(store, 1, &profile).unwrap();
    Entry {
        origin: store.clone(),
        seq: tip.next_seq,
        hlc: Hlc {
            wall_ms: tip.next_seq,
            logical: 0,
        },
        business_date: chrono_date(),
        staff: StaffId::system(),
        tx: TxId::parse(&format!("{store}-reg-{:04}", tip.next_seq)).unwrap(),
        prev_hash: tip.hash,
        payload: Payload::MemberRegistered {
            member_id: MemberId::mint(tip.next_seq, 7),
            change,
        },
    }
}

fn chrono_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

/// A hub in memory whose S001 registered two members, flushed; S001's tip.
fn two_members_at_s001() -> (Arc<MemHubStore>, Ingest, StoreId, ChainTip) {
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    let s001 = StoreId::parse("S001").unwrap();
    let mut tip = ChainTip::GENESIS;
    let mut batch = Vec::new();
    for phone in ["13800000001", "13800000002"] {
        let entry = registration(&s001, tip, phone);
        tip = tip.extend(&s001, &entry).unwrap();
        batch.push(Sealed::new(entry));
    }
    assert_eq!(ingest.ingest(&s001, batch, 2).unwrap(), 2);
    ingest.flush().unwrap();
    (storage, ingest, s001, tip)
}

#[test]
fn verify_finds_a_directory_that_does_not_match_the_feed() {
    let (storage, _ingest, s001, tip) = two_members_at_s001();
    let report = verify(&*storage).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.entries, report.feed, report.members), (2, 2, 2));

    let mut forged = storage.members().unwrap()[0].clone();
    forged.profile.name = "篡改".into();
    let append = Append {
        store: &s001,
        entries: Vec::new(),
        tip,
        status: StoreStatus {
            acked_seq: 2,
            log_len: 2,
            ..StoreStatus::default()
        },
        feed: Vec::new(),
        feed_len: 2,
        members: vec![forged],
        wallets: Vec::new(),
        phones: Vec::new(),
        views: Vec::new(),
        keys: Vec::new(),
        erased: Vec::new(),
        notices: Vec::new(),
    };
    storage.append(append).unwrap();
    assert!(!verify(&*storage).unwrap().is_clean());
}

/// Derived state another version wrote (an older backup being restored) is not compared with
/// a rebuild by this version's rules, and is compared once the rebuild made it current.
#[test]
fn verify_leaves_the_derived_state_of_another_version_to_the_rebuild() {
    let (storage, ingest, _, _) = two_members_at_s001();
    drop(ingest);
    // What an older version derived differs from what this one would (here: nothing).
    storage
        .replace_derived(crate::storage::Derived::default(), DERIVED_VERSION - 1)
        .unwrap();
    let report = verify(&*storage).unwrap();
    assert!(report.is_clean() && !report.derived_checked, "{report:?}");
    assert!(ensure_current(&*storage).unwrap());
    let report = verify(&*storage).unwrap();
    assert!(report.is_clean() && report.derived_checked, "{report:?}");
    assert_eq!(report.members, 2);
}

/// 会员搜索's index on disk is checked too: a key lost or left behind is a difference.
#[test]
fn verify_finds_a_search_index_that_does_not_file_the_members() {
    let dir = std::env::temp_dir().join(format!("hub-verify-sx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = Arc::new(crate::storage::SledHubStore::open(&dir).unwrap());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    let s001 = StoreId::parse("S001").unwrap();
    let entry = registration(&s001, ChainTip::GENESIS, "13800000001");
    assert_eq!(
        ingest.ingest(&s001, vec![Sealed::new(entry)], 1).unwrap(),
        1
    );
    ingest.flush().unwrap();
    let report = verify(&*storage).unwrap();
    assert!(report.is_clean(), "{report:?}");

    let keys: Vec<sled::IVec> = storage
        .db()
        .scan_prefix(b"sx/")
        .keys()
        .map(Result::unwrap)
        .collect();
    assert!(
        !keys.is_empty(),
        "the member is filed under its name and phone"
    );
    storage.db().remove(&keys[0]).unwrap();
    let report = verify(&*storage).unwrap();
    assert!(report.mentions("lacks 1"), "{report:?}");
    storage.db().insert(&keys[0], &[][..]).unwrap();
    storage.db().insert(b"sx/t/0001/nobody", &[][..]).unwrap();
    let report = verify(&*storage).unwrap();
    assert!(report.mentions("1 keys no member files"), "{report:?}");
    drop((ingest, storage));
    let _ = std::fs::remove_dir_all(&dir);
}

pub(crate) fn wallet_entry(
    store: &StoreId,
    tip: ChainTip,
    member: MemberId,
    ops: Vec<RightsOp>,
) -> Entry {
    let mut entry = registration(store, tip, "13800000009");
    entry.tx = TxId::parse(&format!("{store}-wallet-{:04}", tip.next_seq)).unwrap();
    entry.payload = Payload::Wallet {
        member_id: member,
        event: WalletEvent::Rights {
            movement: Movement::Recall,
        },
        ops,
    };
    entry
}

#[test]
fn asks_are_granted_from_a_recall_and_overspending_is_flagged() {
    use protocol::escrow::Change;
    use protocol::wallet::Counter;
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    let (s001, s002) = (
        StoreId::parse("S001").unwrap(),
        StoreId::parse("S002").unwrap(),
    );
    let member = MemberId::mint(1, 7);
    let credit = RightsOp {
        counter: Counter::Principal,
        change: Change::Credit {
            units: 100,
            total: 100,
        },
    };
    let topped = wallet_entry(&s001, ChainTip::GENESIS, member, vec![credit]);
    let tip = ChainTip::GENESIS.extend(&s001, &topped).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(topped)], 1).unwrap();
    // S002 asks for 30: HQ's pool is empty, so S001 is asked to hand back, once it is
    // connected (before that, the ask is told the rights are out of reach).
    let ask = Ask {
        id: TxId::parse("ask-00000001").unwrap(),
        member,
        wants: vec![(Counter::Principal, 30)],
        holding: None,
    };
    assert_eq!(
        ingest.serve_ask(&s002, &ask, true).unwrap(),
        AskStep::Unreachable(vec![s001.clone()])
    );
    ingest.link(&s001, true);
    let AskStep::Recall(recalls) = ingest.serve_ask(&s002, &ask, true).unwrap() else {
        panic!("expected a recall");
    };
    assert_eq!(recalls[0].0, s001);
    assert_eq!(ingest.serve_ask(&s002, &ask, false).unwrap(), AskStep::Wait);
    let handed = RightsOp {
        counter: Counter::Principal,
        change: Change::Transfer {
            to: StoreId::hq(),
            units: 30,
            total: 30,
        },
    };
    let back = wallet_entry(&s001, tip, member, vec![handed]);
    let tip = tip.extend(&s001, &back).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(back)], 2).unwrap();
    assert!(matches!(
        ingest.serve_ask(&s002, &ask, false).unwrap(),
        AskStep::Granted { .. }
    ));
    ingest.flush().unwrap();
    let wallet = storage.wallet(&member).unwrap().unwrap();
    assert_eq!(wallet.held(&Counter::Principal, &s002), 30);
    assert!(verify(&*storage).unwrap().is_clean());
    // S002 asks before the grant reaches it (it holds nothing, it says): the grant on its
    // way counts. For 30, nothing more moves; for 80 (of the 100), 50 more are recalled,
    // where an ask that did not say what it holds is refused (70 could move).
    let unseen = |units, log_len| Ask {
        id: TxId::parse("ask-00000002").unwrap(),
        member,
        wants: vec![(Counter::Principal, units)],
        holding: Some(protocol::sync::Holding {
            log_len,
            held: vec![0],
        }),
    };
    let feed_len = ingest.feed_len();
    assert_eq!(
        ingest.serve_ask(&s002, &unseen(30, 0), true).unwrap(),
        AskStep::Granted {
            feed_upto: feed_len
        }
    );
    assert_eq!(ingest.feed_len(), feed_len, "nothing written");
    let AskStep::Recall(recalls) = ingest.serve_ask(&s002, &unseen(80, 0), true).unwrap() else {
        panic!("expected a recall");
    };
    assert_eq!(recalls[0].1.units, 50);
    let blind = Ask {
        holding: None,
        ..unseen(80, 0)
    };
    assert!(matches!(
        ingest.serve_ask(&s002, &blind, true).unwrap(),
        AskStep::Refused(_)
    ));
    // An ask made after S002 wrote an entry the hub has not got waits for it.
    assert_eq!(
        ingest.serve_ask(&s002, &unseen(30, 1), true).unwrap(),
        AskStep::Wait
    );
    // S001 (its software changed) spends 80 while it holds 70: kept, and flagged.
    let overspent = RightsOp {
        counter: Counter::Principal,
        change: Change::Debit {
            units: 80,
            total: 80,
        },
    };
    let bad = wallet_entry(&s001, tip, member, vec![overspent]);
    ingest.ingest(&s001, vec![Sealed::new(bad)], 3).unwrap();
    ingest.flush().unwrap();
    let report = verify(&*storage).unwrap();
    assert!(report.mentions("fails the audit"), "{report:?}");
}

/// Rights granted to a store for a waiting payment are not recalled by the next rebalance
/// (another entry of the member's arriving first), only once the payment has had its time.
#[test]
fn rights_granted_for_a_waiting_payment_are_not_recalled_before_it_runs() {
    use protocol::escrow::Change;
    use protocol::wallet::Counter;
    use std::sync::atomic::{AtomicU64, Ordering};
    let now = Arc::new(AtomicU64::new(1_000));
    let clock = now.clone();
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(
        storage.clone(),
        Box::new(move || clock.load(Ordering::SeqCst)),
    )
    .unwrap();
    let (s001, s002) = (
        StoreId::parse("S001").unwrap(),
        StoreId::parse("S002").unwrap(),
    );
    ingest.link(&s001, true);
    ingest.link(&s002, true);
    let member = MemberId::mint(1, 9);
    let op = |change| RightsOp {
        counter: Counter::Principal,
        change,
    };
    // 1,000 topped up at S001; it hands headquarters' reserve back when asked.
    let topped = wallet_entry(
        &s001,
        ChainTip::GENESIS,
        member,
        vec![op(Change::Credit {
            units: 1_000,
            total: 1_000,
        })],
    );
    let tip = ChainTip::GENESIS.extend(&s001, &topped).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(topped)], 1).unwrap();
    let refill = ingest.rebalance().unwrap();
    let asked: u64 = refill.iter().map(|(_, r)| r.units).sum();
    assert!(asked > 0, "the reserve is refilled from S001: {refill:?}");
    let back = wallet_entry(
        &s001,
        tip,
        member,
        vec![op(Change::Transfer {
            to: StoreId::hq(),
            units: asked,
            total: asked,
        })],
    );
    let tip = tip.extend(&s001, &back).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(back)], 2).unwrap();
    ingest.rebalance().unwrap();
    // S002 asks for what the reserve holds: granted at once.
    let ask = Ask {
        id: TxId::parse("ask-00000009").unwrap(),
        member,
        wants: vec![(Counter::Principal, asked)],
        holding: None,
    };
    assert!(matches!(
        ingest.serve_ask(&s002, &ask, true).unwrap(),
        AskStep::Granted { .. }
    ));
    ingest.rebalance().unwrap();
    // S001 spends a little before S002's payment arrives: the rebalance it causes recalls
    // nothing from S002, which is waiting to spend what it was granted.
    let spent = wallet_entry(
        &s001,
        tip,
        member,
        vec![op(Change::Debit {
            units: 10,
            total: 10,
        })],
    );
    let tip = tip.extend(&s001, &spent).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(spent)], 3).unwrap();
    let recalls = ingest.rebalance().unwrap();
    assert!(
        recalls.iter().all(|(holder, _)| holder != &s002),
        "{recalls:?}"
    );
    // Once the payment has had its time, S002's rights are the bank's to move again.
    now.fetch_add(60_000, Ordering::SeqCst);
    let again = wallet_entry(
        &s001,
        tip,
        member,
        vec![op(Change::Debit {
            units: 10,
            total: 20,
        })],
    );
    ingest.ingest(&s001, vec![Sealed::new(again)], 4).unwrap();
    let recalls = ingest.rebalance().unwrap();
    assert!(
        recalls.iter().any(|(holder, _)| holder == &s002),
        "{recalls:?}"
    );
}

/// The routed feed: the directory reaches every store (as listings where the member is not
/// followed, as it is in a follower's backfill); a member's wallet changes reach only
/// the stores following the member (which get the earlier ones once, as a backfill) and the
/// store rights move to. Follows survive a restart.
#[test]
fn a_members_wallet_changes_reach_only_their_followers_and_where_rights_move() {
    use protocol::escrow::Change;
    use protocol::wallet::Counter;
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    let [s001, s002, s003] = ["S001", "S002", "S003"].map(|s| StoreId::parse(s).unwrap());
    let mut registered = registration(&s001, ChainTip::GENESIS, "13800000001");
    let Payload::MemberRegistered { member_id, change } = &mut registered.payload else {
        unreachable!()
    };
    let member = *member_id;
    let key = protocol::seal::MemberKey::from_bytes([3; 32]);
    *change = key.seal(&protocol::seal::change_aad(&member), change);
    let tip = ChainTip::GENESIS.extend(&s001, &registered).unwrap();
    let credit = |total| RightsOp {
        counter: Counter::Principal,
        change: Change::Credit { units: 100, total },
    };
    let topped = wallet_entry(&s001, tip, member, vec![credit(100)]);
    let tip = tip.extend(&s001, &topped).unwrap();
    let batch = vec![Sealed::new(registered), Sealed::new(topped)];
    ingest
        .ingest_keyed(&s001, batch, 2, vec![(member, key)])
        .unwrap();
    ingest.flush().unwrap();
    let routes = ingest.routes();
    let sent_to = |store: &StoreId, from: u64| -> Vec<u64> {
        let durable = storage.feed_len().unwrap();
        let (_, items, _) =
            crate::server::read_feed(&*storage, Some(&routes), true, store, from, durable).unwrap();
        items.iter().map(|i| i.position).collect()
    };
    assert_eq!(sent_to(&s002, 0), vec![1], "the registration only");
    let kinds = |items: &[protocol::sync::FeedItem]| -> Vec<&'static str> {
        items
            .iter()
            .map(|i| match Entry::decode(&i.entry).unwrap().payload {
                Payload::MemberListed { .. } => "listed",
                Payload::MemberRegistered { .. } => "registered",
                _ => "other",
            })
            .collect()
    };
    let durable = storage.feed_len().unwrap();
    let (_, items, keys) =
        crate::server::read_feed(&*storage, Some(&routes), true, &s002, 0, durable).unwrap();
    assert_eq!(kinds(&items), ["listed"], "as a listing, its key with it");
    assert_eq!(keys.len(), 1);
    let (_, items, _) =
        crate::server::read_feed(&*storage, Some(&routes), false, &s002, 0, durable).unwrap();
    assert_eq!(
        kinds(&items),
        ["registered"],
        "to a store before version 10"
    );
    let histories = crate::routes::follow(
        &*storage,
        &routes,
        &s002,
        &[member],
        storage.feed_len().unwrap(),
    )
    .unwrap();
    let positions: Vec<u64> = histories[0].1.iter().map(|i| i.position).collect();
    assert_eq!(
        positions,
        vec![1, 2],
        "the registration as it is and the top-up made before S002 followed"
    );
    assert_eq!(kinds(&histories[0].1[..1]), ["registered"]);
    let again = wallet_entry(&s001, tip, member, vec![credit(200)]);
    ingest.ingest(&s001, vec![Sealed::new(again)], 3).unwrap();
    // Headquarters moves rights to S003, which does not follow the member.
    let hq = StoreId::hq();
    let grant = RightsOp {
        counter: Counter::Principal,
        change: Change::Transfer {
            to: s003.clone(),
            units: 10,
            total: 10,
        },
    };
    let granted = wallet_entry(&hq, ChainTip::GENESIS, member, vec![grant]);
    ingest.ingest(&hq, vec![Sealed::new(granted)], 1).unwrap();
    ingest.flush().unwrap();
    assert_eq!(sent_to(&s002, 2), vec![3, 4]);
    assert_eq!(sent_to(&s003, 2), vec![4], "only the grant");
    // S001 wrote position 3 (never sent back) and told headquarters of no follow here.
    assert!(sent_to(&s001, 2).is_empty());
    drop(ingest);
    let reopened = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    assert!(reopened.routes().read().unwrap().follows(&s002, &member));
    assert!(!reopened.routes().read().unwrap().follows(&s003, &member));
}

/// 挂失 at headquarters: a profile change in headquarters' log (so every store gets it) and its
/// audit note; reporting it again, or a member without a card, changes nothing.
#[test]
fn headquarters_reports_a_card_lost_once_and_every_store_gets_the_change() {
    use protocol::member::{CardStatus, MemberDoc};
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 5_000)).unwrap();
    let s001 = StoreId::parse("S001").unwrap();
    let mut entry = registration(&s001, ChainTip::GENESIS, "13800000001");
    let Payload::MemberRegistered { member_id, .. } = entry.payload.clone() else {
        unreachable!()
    };
    let mut profile = MemberDoc::from_change(match &entry.payload {
        Payload::MemberRegistered { change, .. } => change,
        _ => unreachable!(),
    })
    .unwrap()
    .profile()
    .unwrap();
    profile.card_no = Some(protocol::CardNo::parse("VIP0001").unwrap());
    let (_, change) = MemberDoc::create(&s001, 1, &profile).unwrap();
    entry.payload = Payload::MemberRegistered { member_id, change };
    let tip = ChainTip::GENESIS.extend(&s001, &entry).unwrap();
    ingest.ingest(&s001, vec![Sealed::new(entry)], 1).unwrap();
    let plain = registration(&s001, tip, "13800000002");
    let Payload::MemberRegistered {
        member_id: no_card, ..
    } = plain.payload.clone()
    else {
        unreachable!()
    };
    ingest.ingest(&s001, vec![Sealed::new(plain)], 2).unwrap();
    let admin = StaffId::parse("HQ01").unwrap();

    let feed_before = ingest.feed_len;
    let hq = StoreId::hq();
    let log_before = ingest.tip(&hq).next_seq;
    ingest
        .hq_write(HqWrite::CardLost(member_id), &admin)
        .unwrap();
    let record = storage.member(&member_id).unwrap().unwrap();
    assert_eq!(record.profile.card_status, CardStatus::Lost);
    assert_eq!(
        ingest.tip(&hq).next_seq,
        log_before + 2,
        "the change and its audit note"
    );
    assert_eq!(
        ingest.feed_len,
        feed_before + 1,
        "the change goes to the stores"
    );
    let feed = storage.feed(feed_before, 10).unwrap();
    let payloads: Vec<Payload> = feed
        .iter()
        .map(|(_, r)| Entry::decode(&r.entry).unwrap().payload)
        .collect();
    assert!(
        payloads
            .iter()
            .any(|p| matches!(p, Payload::MemberEdited { member_id: m, .. } if *m == member_id)),
        "{payloads:?}"
    );
    let again = ingest.hq_write(HqWrite::CardLost(member_id), &admin);
    assert!(
        matches!(again, Err(HqWriteError::CardState(_))),
        "{again:?}"
    );
    let none = ingest.hq_write(HqWrite::CardLost(no_card), &admin);
    assert!(matches!(none, Err(HqWriteError::CardState(_))), "{none:?}");
    assert_eq!(
        ingest.tip(&hq).next_seq,
        log_before + 2,
        "nothing more was written"
    );
}

/// 会员名录 in a feed batch: of a member's listings only the last goes, but every change of a
/// member from before keys goes as it is (each needs the one before it), and a store's own
/// record of the member hides no other store's change from it.
#[test]
fn only_a_members_last_listing_in_a_batch_is_left_out_never_a_change_as_it_is() {
    use protocol::member::{MemberDoc, ProfilePatch};
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| 0)).unwrap();
    let [s001, s002, s003] = ["S001", "S002", "S003"].map(|s| StoreId::parse(s).unwrap());
    // An edit of `member` by `store`, on top of `doc`.
    let edit = |store: &StoreId, tip: ChainTip, member, doc: &mut MemberDoc, name: &str| {
        let patch = ProfilePatch {
            name: Some(name.to_owned()),
            ..ProfilePatch::default()
        };
        let change = doc
            .edit(store, tip.next_seq as i64, &patch)
            .unwrap()
            .unwrap();
        let mut entry = registration(store, tip, "13800000000");
        entry.tx = TxId::parse(&format!("{store}-edit-{:04}", tip.next_seq)).unwrap();
        entry.payload = Payload::MemberEdited {
            member_id: member,
            change,
        };
        entry
    };
    let member_of = |e: &Entry| match &e.payload {
        Payload::MemberRegistered { member_id, change } => {
            (*member_id, MemberDoc::from_change(change).unwrap())
        }
        _ => unreachable!(),
    };
    // A member from before keys, registered and edited twice at S001 in one push.
    let registered = registration(&s001, ChainTip::GENESIS, "13800000021");
    let (old, mut doc) = member_of(&registered);
    let mut tip = ChainTip::GENESIS.extend(&s001, &registered).unwrap();
    let mut batch = vec![Sealed::new(registered)];
    for name in ["一改", "二改"] {
        let e = edit(&s001, tip, old, &mut doc, name);
        tip = tip.extend(&s001, &e).unwrap();
        batch.push(Sealed::new(e));
    }
    ingest.ingest(&s001, batch, 3).unwrap();
    // A sealed member of S002's, edited by S002 and then by S003.
    let mut registered = registration(&s002, ChainTip::GENESIS, "13800000022");
    if let Payload::MemberRegistered { member_id, .. } = &mut registered.payload {
        *member_id = MemberId::mint(100, 8);
    }
    let (sealed, mut doc) = member_of(&registered);
    let key = protocol::seal::MemberKey::from_bytes([4; 32]);
    let Payload::MemberRegistered { change, .. } = &mut registered.payload else {
        unreachable!()
    };
    *change = key.seal(&protocol::seal::change_aad(&sealed), change);
    let tip2 = ChainTip::GENESIS.extend(&s002, &registered).unwrap();
    let mut by_s002 = edit(&s002, tip2, sealed, &mut doc, "二店改");
    let Payload::MemberEdited { change, .. } = &mut by_s002.payload else {
        unreachable!()
    };
    *change = key.seal(&protocol::seal::change_aad(&sealed), change);
    let batch = vec![Sealed::new(registered), Sealed::new(by_s002)];
    ingest
        .ingest_keyed(&s002, batch, 2, vec![(sealed, key.clone())])
        .unwrap();
    let mut by_s003 = edit(&s003, ChainTip::GENESIS, sealed, &mut doc, "三店改");
    let Payload::MemberEdited { change, .. } = &mut by_s003.payload else {
        unreachable!()
    };
    *change = key.seal(&protocol::seal::change_aad(&sealed), change);
    ingest.ingest(&s003, vec![Sealed::new(by_s003)], 1).unwrap();
    ingest.flush().unwrap();
    let routes = ingest.routes();
    let durable = storage.feed_len().unwrap();
    let sent = |store: &StoreId| -> Vec<(u64, &'static str)> {
        let (_, items, _) =
            crate::server::read_feed(&*storage, Some(&routes), true, store, 0, durable).unwrap();
        items
            .iter()
            .map(|i| {
                let kind = match Entry::decode(&i.entry).unwrap().payload {
                    Payload::MemberListed { .. } => "listed",
                    Payload::MemberRegistered { .. } => "registered",
                    Payload::MemberEdited { .. } => "edited",
                    _ => "other",
                };
                (i.position, kind)
            })
            .collect()
    };
    // Positions: 1–3 the old member, 4–5 the sealed one at S002, 6 S003's edit of them.
    assert_eq!(
        sent(&s002),
        [
            (1, "registered"),
            (2, "edited"),
            (3, "edited"),
            (6, "listed")
        ],
        "the old member's changes all go; S002's own are not sent back"
    );
    assert_eq!(
        sent(&s003),
        [
            (1, "registered"),
            (2, "edited"),
            (3, "edited"),
            (5, "listed")
        ],
        "S003's own edit (6) does not hide S002's (5)"
    );
}
