//! One behaviour, three stores: every test here runs against the in-memory store, sled and
//! PostgreSQL (a server of its own, `pg::scratch`), and those that reopen the store check what
//! a restart finds.

use std::collections::BTreeMap;

use protocol::entry::{ChainTip, EntryHash};
use protocol::member::{Gender, Profile};
use protocol::notice::{Purpose, Subject};
use protocol::{CardNo, Phone};

use super::*;

/// A store under test and how to open it again on the same data (none: in memory).
struct Under {
    name: &'static str,
    store: Box<dyn HubStore>,
    reopen: Option<Box<dyn Fn() -> Box<dyn HubStore>>>,
    _keep: Box<dyn std::any::Any>,
}

struct Gone(std::path::PathBuf);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn every_store(label: &str) -> Vec<Under> {
    let dir = std::env::temp_dir().join(format!("hub-conformance-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sled_dir = dir.clone();
    let database = pg::scratch::TestDatabase::new(label).expect("a PostgreSQL server of its own");
    let url = database.url.clone();
    vec![
        Under {
            name: "memory",
            store: Box::new(MemHubStore::default()),
            reopen: None,
            _keep: Box::new(()),
        },
        Under {
            name: "sled",
            store: Box::new(SledHubStore::open(&dir).unwrap()),
            reopen: Some(Box::new(move || {
                Box::new(crate::backup::open_when_unlocked(&sled_dir).unwrap()) as Box<dyn HubStore>
            })),
            _keep: Box::new(Gone(dir)),
        },
        Under {
            name: "postgres",
            store: Box::new(PgHubStore::open(&url).unwrap()),
            reopen: Some(Box::new(move || {
                Box::new(PgHubStore::open(&url).unwrap()) as Box<dyn HubStore>
            })),
            _keep: Box::new(database),
        },
    ]
}

/// Runs `check` on every store, then (for those kept on disk) on the store reopened, after
/// `write` on the first.
fn each(label: &str, write: impl Fn(&dyn HubStore), check: impl Fn(&str, &dyn HubStore)) {
    for mut under in every_store(label) {
        write(&*under.store);
        under.store.flush().unwrap();
        check(under.name, &*under.store);
        if let Some(reopen) = &under.reopen {
            under.store = Box::new(MemHubStore::default()); // the first one closed
            let again = reopen();
            check(&format!("{} reopened", under.name), &*again);
        }
    }
}

fn s001() -> StoreId {
    StoreId::parse("S001").unwrap()
}

fn profile(name: &str, phone: &str, card: Option<&str>) -> Profile {
    Profile {
        name: name.to_owned(),
        phone: Phone::parse(phone).unwrap(),
        card_no: card.map(|c| CardNo::parse(c).unwrap()),
        birthday: None,
        gender: Gender::Unspecified,
        tags: Default::default(),
        notes: String::new(),
        tier: "standard".into(),
        custom: Default::default(),
        home_store: s001(),
        join_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        referrer: None,
        marketing_consent: true,
        card_status: Default::default(),
        former_cards: Default::default(),
    }
}

fn member(n: u128) -> MemberId {
    MemberId::mint(1, n * 7919)
}

fn record(n: u128, name: &str, phone: &str) -> MemberRecord {
    MemberRecord {
        member_id: member(n),
        doc: Vec::new(),
        profile: profile(name, phone, Some(&format!("VIP{n:04}"))),
    }
}

fn empty(store: &StoreId) -> Append<'_> {
    Append {
        store,
        entries: Vec::new(),
        tip: ChainTip::GENESIS,
        status: StoreStatus::default(),
        feed: Vec::new(),
        feed_len: 0,
        members: Vec::new(),
        phones: Vec::new(),
        wallets: Vec::new(),
        views: Vec::new(),
        keys: Vec::new(),
        erased: Vec::new(),
        notices: Vec::new(),
    }
}

/// A store's entry `seq` as the hub holds it: a real encoded quick sale of 18.80 in cash.
pub(super) fn entry(store: &StoreId, seq: u64) -> Vec<u8> {
    use protocol::entry::{Entry, Payload};
    use protocol::sale::{QuickSale, Tender};
    Entry {
        origin: store.clone(),
        seq,
        hlc: protocol::Hlc {
            wall_ms: 1_795_451_400_000 + seq,
            logical: 0,
        },
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        staff: protocol::StaffId::system(),
        tx: protocol::TxId::parse(&format!("{store}-till-{seq:08}")).unwrap(),
        prev_hash: EntryHash::GENESIS,
        payload: Payload::QuickSale(QuickSale {
            sale_id: protocol::SaleId::for_entry(store, seq),
            member_id: None,
            category: None,
            amount: protocol::Fen(1_880),
            currency: protocol::Currency::CNY,
            tender: Tender::Cash {
                tendered: protocol::Fen(2_000),
                change: protocol::Fen(120),
            },
            points_earned: protocol::points::Points(0),
        }),
    }
    .encode()
}

fn notice(id: &str, purpose: Purpose, at_ms: u64) -> Notice {
    Notice {
        id: id.to_owned(),
        member: member(1),
        purpose,
        subject: Subject::Birthday,
        store: s001(),
        at_ms,
    }
}

fn wallet_owing(lent: u64) -> Wallet {
    let mut wallet = Wallet::default();
    wallet.owed.insert(s001(), (lent, 0));
    wallet
}

/// A batch of `entries` (seqs 1 to `entries`) with `feed` is refused saying `says`, and
/// nothing of it is written.
fn refused_feed(label: &str, entries: u64, feed: Vec<(u64, u64)>, says: &str) {
    let store = s001();
    each(
        label,
        |hub| {
            let mut a = empty(&store);
            a.entries = (1..=entries).map(|seq| (seq, entry(&store, seq))).collect();
            a.tip = ChainTip {
                next_seq: entries + 1,
                hash: EntryHash::GENESIS,
            };
            a.feed_len = feed.len() as u64;
            a.feed = feed.clone();
            let refused = hub.append(a).unwrap_err();
            assert!(refused.to_string().contains(says), "{refused}");
        },
        |name, hub| {
            assert!(hub.stores().unwrap().is_empty(), "{name}");
            assert!(hub.feed(0, 10).unwrap().is_empty(), "{name}");
        },
    );
}

#[test]
fn a_feed_item_naming_an_entry_not_in_its_batch_is_refused_and_nothing_is_written() {
    refused_feed("feed_names", 1, vec![(1, 1), (2, 2)], "entry 2");
}

#[test]
fn a_feed_naming_its_entries_out_of_order_is_refused_and_nothing_is_written() {
    refused_feed("feed_order", 2, vec![(1, 2), (2, 1)], "does not follow");
}

#[test]
fn feed_records_are_read_at_the_positions_asked_for_only() {
    let store = s001();
    each(
        "feed_at",
        |hub| {
            let mut a = empty(&store);
            a.entries = (1..=5).map(|seq| (seq, entry(&store, seq))).collect();
            a.tip = ChainTip {
                next_seq: 6,
                hash: EntryHash::GENESIS,
            };
            a.feed = (1..=5).map(|p| (p, p)).collect();
            a.feed_len = 5;
            hub.append(a).unwrap();
        },
        |name, hub| {
            let read = hub.feed_at(&[2, 4, 9]).unwrap();
            let positions: Vec<u64> = read.iter().map(|(p, _)| *p).collect();
            assert_eq!(positions, vec![2, 4], "{name}: the missing one skipped");
            assert_eq!(read[1].1.entry, entry(&store, 4), "{name}");
            assert!(hub.feed_at(&[]).unwrap().is_empty(), "{name}");
        },
    );
}

#[test]
fn a_batch_is_read_back_whole_and_after_a_restart() {
    let store = s001();
    each(
        "batch",
        |hub| {
            let mut a = empty(&store);
            a.entries = vec![(1, entry(&store, 1)), (2, entry(&store, 2))];
            a.tip = ChainTip {
                next_seq: 3,
                hash: EntryHash::GENESIS,
            };
            a.status = StoreStatus {
                acked_seq: 2,
                log_len: 2,
                last_entry_ms: 1_000,
                last_sync_ms: 2_000,
            };
            a.feed = vec![(0, 1)];
            a.feed_len = 1;
            a.members = vec![
                record(1, "张伟", "13900000001"),
                record(2, "李娜", "13900000002"),
            ];
            a.phones = vec![
                (Phone::parse("13900000001").unwrap(), Some(member(1))),
                (Phone::parse("13900000002").unwrap(), Some(member(2))),
            ];
            a.keys = vec![(member(1), MemberKey::from_bytes([7; 32]))];
            a.wallets = vec![(member(1), wallet_owing(1))];
            a.views = vec![
                (b"x/a/1".to_vec(), Some(b"1".to_vec())),
                (b"x/a/2".to_vec(), Some(b"2".to_vec())),
                (b"x/b/1".to_vec(), Some(b"3".to_vec())),
                // Set, then deleted in the same batch: the last write wins.
                (b"x/a/3".to_vec(), Some(b"9".to_vec())),
                (b"x/a/3".to_vec(), None),
            ];
            hub.append(a).unwrap();
        },
        |name, hub| {
            let stores = hub.stores().unwrap();
            assert_eq!(stores.len(), 1, "{name}");
            assert_eq!(stores[0].1.next_seq, 3, "{name}");
            assert_eq!(stores[0].2.last_sync_ms, 2_000, "{name}");
            assert_eq!(hub.entries(&store, 2, 10).unwrap(), vec![entry(&store, 2)]);
            assert_eq!(hub.entries(&store, 1, 1).unwrap(), vec![entry(&store, 1)]);
            assert_eq!(hub.feed_len().unwrap(), 1, "{name}");
            assert_eq!(hub.feed(0, 10).unwrap()[0].1.origin, store, "{name}");
            assert!(hub.feed(1, 10).unwrap().is_empty(), "{name}");
            let one = hub.member(&member(1)).unwrap().expect("member 1");
            assert_eq!(one.profile.name, "张伟", "{name}");
            assert_eq!(
                hub.member_by_phone(&Phone::parse("13900000002").unwrap())
                    .unwrap(),
                Some(member(2)),
                "{name}"
            );
            assert_eq!(hub.members().unwrap().len(), 2, "{name}");
            assert_eq!(
                hub.search_members("李", 5).unwrap()[0].member_id,
                member(2),
                "{name}"
            );
            assert!(matches!(
                hub.member_key(&member(1)).unwrap(),
                KeyState::Held(_)
            ));
            assert_eq!(hub.member_key(&member(2)).unwrap(), KeyState::Unknown);
            assert_eq!(
                hub.wallet(&member(1)).unwrap().map(|w| w.owed[&s001()]),
                Some((1, 0)),
                "{name}"
            );
            assert_eq!(hub.wallets().unwrap().len(), 1, "{name}");
            let under_a: Vec<Vec<u8>> = hub
                .views(b"x/a/", 10)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(
                under_a,
                vec![b"x/a/1".to_vec(), b"x/a/2".to_vec()],
                "{name}"
            );
            assert_eq!(hub.views(b"x/", 1).unwrap().len(), 1, "{name}: limit");
            let between: Vec<Vec<u8>> = hub
                .views_between(b"x/a/2", b"x/b/1", 10)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(between, vec![b"x/a/2".to_vec()], "{name}: between");
            assert!(
                hub.views_between(b"x/b", b"x/a", 10).unwrap().is_empty(),
                "{name}: an empty range"
            );
            assert_eq!(hub.view(b"x/b/1").unwrap(), Some(b"3".to_vec()), "{name}");
            assert_eq!(hub.view(b"x/a/3").unwrap(), None, "{name}");
        },
    );
}

#[test]
fn an_erased_member_leaves_a_tombstone_and_no_record_key_or_index() {
    let store = s001();
    each(
        "erase",
        |hub| {
            let mut a = empty(&store);
            a.members = vec![record(1, "张伟", "13900000001")];
            a.keys = vec![(member(1), MemberKey::from_bytes([7; 32]))];
            hub.append(a).unwrap();
            let mut b = empty(&store);
            b.erased = vec![member(1)];
            b.phones = vec![(Phone::parse("13900000001").unwrap(), None)];
            // A key sent again for an erased member is not kept.
            b.keys = vec![(member(1), MemberKey::from_bytes([8; 32]))];
            hub.append(b).unwrap();
        },
        |name, hub| {
            assert_eq!(hub.member(&member(1)).unwrap(), None, "{name}");
            assert_eq!(
                hub.member_key(&member(1)).unwrap(),
                KeyState::Erased,
                "{name}"
            );
            assert!(hub.search_members("张", 5).unwrap().is_empty(), "{name}");
            assert!(
                hub.member_by_phone(&Phone::parse("13900000001").unwrap())
                    .unwrap()
                    .is_none(),
                "{name}"
            );
        },
    );
}

#[test]
fn the_directory_is_read_a_page_at_a_time_in_id_order_past_erased_members() {
    let store = s001();
    each(
        "pages",
        |hub| {
            let mut a = empty(&store);
            a.members = (1..=5)
                .map(|n| record(n, "张伟", &format!("1390000000{n}")))
                .collect();
            a.keys = (1..=5)
                .map(|n| (member(n), MemberKey::from_bytes([n as u8; 32])))
                .collect();
            hub.append(a).unwrap();
            let mut b = empty(&store);
            b.erased = vec![member(2), member(3)];
            hub.append(b).unwrap();
        },
        |name, hub| {
            let ids = |page: Vec<MemberRecord>| -> Vec<MemberId> {
                page.into_iter().map(|r| r.member_id).collect()
            };
            let first = ids(hub.members_after(None, 2).unwrap());
            assert_eq!(first, vec![member(1), member(4)], "{name}: erased skipped");
            let rest = ids(hub.members_after(Some(&member(4)), 2).unwrap());
            assert_eq!(rest, vec![member(5)], "{name}: a short page is the last");
            assert!(
                hub.members_after(Some(&member(5)), 2).unwrap().is_empty(),
                "{name}"
            );
            let mut all = Vec::new();
            crate::storage::each_member(hub, |r| {
                all.push(r.member_id);
                Ok(())
            })
            .unwrap();
            assert_eq!(all, vec![member(1), member(4), member(5)], "{name}");
            assert_eq!(hub.member_count().unwrap(), 3, "{name}: counted as paged");
        },
    );
}

#[test]
fn a_members_facets_follow_their_record_and_go_when_they_are_erased() {
    let store = s001();
    each(
        "facets",
        |hub| {
            let mut a = empty(&store);
            a.members = (1..=3)
                .map(|n| record(n, "张伟", &format!("1390000000{n}")))
                .collect();
            // Member 3 has no key (from before sealing): their facets are kept plain.
            a.keys = (1..=2)
                .map(|n| (member(n), MemberKey::from_bytes([n as u8; 32])))
                .collect();
            hub.append(a).unwrap();
            let mut b = empty(&store);
            let mut gold = record(1, "张伟", "13900000001");
            gold.profile.tier = "金卡".into();
            gold.profile.tags.insert("咖啡".into());
            b.members = vec![gold];
            b.erased = vec![member(2)];
            hub.append(b).unwrap();
        },
        |name, hub| {
            let facets = hub.facets_after(None, 10).unwrap();
            let ids: Vec<MemberId> = facets.iter().map(|(id, _)| *id).collect();
            assert_eq!(
                ids,
                vec![member(1), member(3)],
                "{name}: the erased one gone"
            );
            assert_eq!(
                facets[0].1.tier, "金卡",
                "{name}: as the record was last written"
            );
            assert!(facets[0].1.tags.contains("咖啡"), "{name}");
            let record = hub.member(&member(1)).unwrap().unwrap();
            assert_eq!(facets[0].1, Facets::of(&record.profile), "{name}");
            let rest = hub.facets_after(Some(&member(1)), 10).unwrap();
            assert_eq!(rest.len(), 1, "{name}: read after a member");
            assert_eq!(rest[0].0, member(3), "{name}");
        },
    );
}

#[test]
fn a_notice_is_queued_once_and_sent_in_its_queue_order() {
    let store = s001();
    each(
        "outbox",
        |hub| {
            let mut a = empty(&store);
            a.notices = vec![
                notice("m-1", Purpose::Marketing, 100),
                notice("t-1", Purpose::Transactional, 300),
                notice("t-1", Purpose::Transactional, 300),
            ];
            hub.append(a).unwrap();
            assert_eq!(
                hub.queue_notices(&[
                    notice("t-1", Purpose::Transactional, 300),
                    notice("t-0", Purpose::Transactional, 200),
                ])
                .unwrap(),
                1,
                "only the new one"
            );
            let sent = Delivery {
                state: DeliveryState::Sent,
                attempts: 1,
                next_ms: 200,
                last_error: None,
                done_ms: Some(250),
            };
            hub.set_delivery("t-0", &sent).unwrap();
            let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
            hub.count_sent(&member(1), day).unwrap();
            hub.count_sent(&member(1), day).unwrap();
        },
        |name, hub| {
            let due: Vec<String> = hub
                .notices_due(1_000, 10)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n.id)
                .collect();
            assert_eq!(due, vec!["t-1", "m-1"], "{name}: transactional first");
            assert_eq!(hub.notices_due(150, 10).unwrap().len(), 1, "{name}: by due");
            assert_eq!(hub.notices_due(1_000, 1).unwrap().len(), 1, "{name}: limit");
            let counts = hub.notice_counts().unwrap();
            assert_eq!((counts.pending, counts.sent), (2, 1), "{name}");
            let latest: Vec<String> = hub
                .latest_notices(2)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n.id)
                .collect();
            assert_eq!(latest, vec!["t-1", "t-0"], "{name}: newest first");
            let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
            assert_eq!(hub.sent_on(&member(1), day).unwrap(), 2, "{name}");
            assert_eq!(hub.sent_on(&member(2), day).unwrap(), 0, "{name}");
        },
    );
}

#[test]
fn pruning_forgets_only_old_notices_that_are_done() {
    let store = s001();
    for under in every_store("prune") {
        let hub = &*under.store;
        let mut a = empty(&store);
        a.notices = vec![
            notice("old-done", Purpose::Transactional, 100),
            notice("old-pending", Purpose::Transactional, 100),
            notice("new-done", Purpose::Transactional, 5_000),
        ];
        hub.append(a).unwrap();
        let done = Delivery {
            state: DeliveryState::Failed,
            attempts: 8,
            next_ms: 0,
            last_error: Some("500".into()),
            done_ms: Some(1),
        };
        hub.set_delivery("old-done", &done).unwrap();
        hub.set_delivery("new-done", &done).unwrap();
        assert_eq!(hub.prune_notices(1_000, 10).unwrap(), 1, "{}", under.name);
        let left: BTreeSet<String> = hub
            .latest_notices(10)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.id)
            .collect();
        assert_eq!(
            left,
            ["old-pending", "new-done"].map(String::from).into(),
            "{}",
            under.name
        );
        assert_eq!(hub.notice_counts().unwrap().failed, 1, "{}", under.name);
    }
}

#[test]
fn fences_revocations_and_follows_are_kept_at_once() {
    let store = s001();
    let other = StoreId::parse("S002").unwrap();
    each(
        "fences",
        |hub| {
            let fence = Fence::OnHold {
                since_ms: 1,
                until_ms: 2,
                by: "admin".into(),
                reason: "quiet".into(),
            };
            hub.put_fence(&store, Some(&fence)).unwrap();
            hub.put_fence(&other, Some(&fence)).unwrap();
            hub.put_fence(&other, None).unwrap();
            let revocation = Revocation {
                at_ms: 9,
                by: "admin".into(),
                reason: "stolen".into(),
            };
            hub.revoke(&other, &revocation).unwrap();
            hub.add_follows(&store, &[member(1), member(2)]).unwrap();
            hub.add_follows(&store, &[member(1)]).unwrap();
            hub.add_follows(&other, &[member(1)]).unwrap();
        },
        |name, hub| {
            let fences = hub.fences().unwrap();
            assert_eq!(fences.len(), 1, "{name}");
            assert_eq!(fences[0].0, store, "{name}");
            assert_eq!(hub.revocation(&other).unwrap().map(|r| r.at_ms), Some(9));
            assert_eq!(hub.revocation(&store).unwrap(), None, "{name}");
            let follows: BTreeSet<(MemberId, StoreId)> =
                hub.follows().unwrap().into_iter().collect();
            assert_eq!(
                follows,
                [
                    (member(1), store.clone()),
                    (member(2), store.clone()),
                    (member(1), other.clone())
                ]
                .into(),
                "{name}"
            );
        },
    );
}

#[test]
fn the_derived_state_is_replaced_whole_with_its_version() {
    let store = s001();
    each(
        "derived",
        |hub| {
            let mut a = empty(&store);
            a.members = vec![record(1, "张伟", "13900000001")];
            a.phones = vec![(Phone::parse("13900000001").unwrap(), Some(member(1)))];
            a.views = vec![(b"x/old".to_vec(), Some(b"1".to_vec()))];
            hub.append(a).unwrap();
            let derived = Derived {
                members: vec![record(2, "李娜", "13900000002")],
                phones: vec![(Phone::parse("13900000002").unwrap(), member(2))],
                wallets: vec![(member(2), wallet_owing(2))],
                views: vec![(b"x/new".to_vec(), b"2".to_vec())],
            };
            hub.replace_derived(derived, 7).unwrap();
        },
        |name, hub| {
            assert_eq!(hub.derived_version().unwrap(), Some(7), "{name}");
            assert_eq!(hub.member(&member(1)).unwrap(), None, "{name}");
            assert!(hub.member(&member(2)).unwrap().is_some(), "{name}");
            assert!(hub.search_members("张", 5).unwrap().is_empty(), "{name}");
            assert_eq!(hub.search_members("李", 5).unwrap().len(), 1, "{name}");
            assert_eq!(
                hub.member_by_phone(&Phone::parse("13900000001").unwrap())
                    .unwrap(),
                None,
                "{name}"
            );
            assert_eq!(hub.view(b"x/old").unwrap(), None, "{name}");
            assert_eq!(hub.view(b"x/new").unwrap(), Some(b"2".to_vec()), "{name}");
            assert_eq!(hub.wallets().unwrap().len(), 1, "{name}");
            let facets: Vec<MemberId> = hub
                .facets_after(None, 10)
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert_eq!(
                facets,
                vec![member(2)],
                "{name}: facets replaced with the records"
            );
        },
    );
}

#[test]
fn the_index_key_is_made_once_and_kept() {
    for under in every_store("index") {
        let first = under.store.index_key();
        drop(under.store);
        if let Some(reopen) = &under.reopen {
            assert!(
                reopen().index_key() == first,
                "{}: the same key after a restart",
                under.name
            );
        }
    }
}

#[test]
fn a_store_is_listed_with_every_batch_it_sent() {
    // Many batches, many stores: the listing and each store's log are whole and in order.
    let stores: Vec<StoreId> = (1..=3)
        .map(|n| StoreId::parse(&format!("S00{n}")).unwrap())
        .collect();
    each(
        "many",
        |hub| {
            let mut position = 0;
            for seq in 1..=20u64 {
                for store in &stores {
                    let mut a = empty(store);
                    a.entries = vec![(seq, entry(store, seq))];
                    a.feed = vec![(position, seq)];
                    position += 1;
                    a.feed_len = position;
                    hub.append(a).unwrap();
                }
            }
        },
        |name, hub| {
            assert_eq!(hub.stores().unwrap().len(), 3, "{name}");
            assert_eq!(hub.feed_len().unwrap(), 60, "{name}");
            let positions: Vec<u64> = hub
                .feed(10, 5)
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            assert_eq!(positions, vec![10, 11, 12, 13, 14], "{name}");
            let log: Vec<Vec<u8>> = hub.entries(&stores[1], 19, 10).unwrap();
            assert_eq!(
                log,
                vec![entry(&stores[1], 19), entry(&stores[1], 20)],
                "{name}"
            );
            let views: BTreeMap<Vec<u8>, Vec<u8>> =
                hub.views(b"", 1_000).unwrap().into_iter().collect();
            assert!(views.is_empty(), "{name}");
        },
    );
}

#[test]
fn a_hub_whose_lease_was_taken_over_writes_nothing_more() {
    let database = pg::scratch::TestDatabase::new("lease").unwrap();
    let first = PgHubStore::open(&database.url).unwrap();
    let second = PgHubStore::open(&database.url).unwrap();
    assert!(first.take_lease("hq-a", 60_000).unwrap().is_some());
    assert!(
        second.take_lease("hq-b", 60_000).unwrap().is_none(),
        "held by the first"
    );
    let store = s001();
    let mut a = empty(&store);
    a.entries = vec![(1, entry(&store, 1))];
    first.append(a).unwrap();
    first.flush().unwrap();
    let mut b = empty(&store);
    b.entries = vec![(2, entry(&store, 2))];
    first.append(b).unwrap();
    // Written behind the append: a read waits for it.
    assert_eq!(first.entries(&store, 1, 10).unwrap().len(), 2);
    // The first stops renewing (a pause, a lost network) and its lease runs out: the second
    // takes it over, and the first can write nothing more, not even the flush of what it
    // appended before.
    database
        .server
        .query_as("postgres", "UPDATE hub_lease SET until_ms = 0")
        .unwrap();
    let taken = second
        .take_lease("hq-b", 60_000)
        .unwrap()
        .expect("taken over");
    assert_eq!(taken.epoch, 2);
    assert!(
        !first.renew_lease(60_000).unwrap(),
        "the first learns it lost the lease"
    );
    assert!(matches!(first.flush(), Err(HubStoreError::Deposed(_))));
    let mut c = empty(&store);
    c.entries = vec![(3, entry(&store, 3))];
    assert!(matches!(first.append(c), Err(HubStoreError::Deposed(_))));
    assert!(matches!(
        first.put_fence(&store, None),
        Err(HubStoreError::Deposed(_))
    ));
    // The second starts from what the database holds, and counts on from there.
    assert_eq!(second.entries(&store, 1, 10).unwrap().len(), 2);
    let mut d = empty(&store);
    d.entries = vec![(3, entry(&store, 3))];
    second.append(d).unwrap();
    second.flush().unwrap();
    // The first, started again under its own name, stands by while the second holds it; the
    // second, stopping cleanly, gives the lease up and the first takes it at once.
    assert!(first.take_lease("hq-a", 60_000).unwrap().is_none());
    second.release_lease().unwrap();
    assert_eq!(
        first.take_lease("hq-a", 60_000).unwrap().map(|l| l.epoch),
        Some(3)
    );
}

#[test]
fn a_hub_stops_when_the_database_lost_batches_it_appended() {
    let database = pg::scratch::TestDatabase::new("lost").unwrap();
    let hub = PgHubStore::open(&database.url).unwrap();
    let store = s001();
    let mut a = empty(&store);
    a.entries = vec![(1, entry(&store, 1))];
    hub.append(a).unwrap();
    assert_eq!(
        hub.entries(&store, 1, 10).unwrap().len(),
        1,
        "written behind"
    );
    // As if a crash lost the batch's asynchronous commit before the flush: the database's
    // count is behind the hub's.
    database
        .server
        .query_as("postgres", "UPDATE hub_appends SET n = n - 1")
        .unwrap();
    assert!(matches!(hub.flush(), Err(HubStoreError::Stopped(_))));
    let mut b = empty(&store);
    b.entries = vec![(2, entry(&store, 2))];
    assert!(
        matches!(hub.append(b), Err(HubStoreError::Stopped(_))),
        "nothing more is written"
    );
    // Opened again (the hub started again), it counts what the database holds.
    let again = PgHubStore::open(&database.url).unwrap();
    let mut c = empty(&store);
    c.entries = vec![(2, entry(&store, 2))];
    again.append(c).unwrap();
    again.flush().unwrap();
}

#[test]
fn a_batch_the_database_would_refuse_is_refused_before_it_is_queued() {
    let database = pg::scratch::TestDatabase::new("refused").unwrap();
    let hub = PgHubStore::open(&database.url).unwrap();
    let store = s001();
    // A position beyond the database's BIGINT: refused at the append, not by the writer
    // behind it (which would stop the hub, and again after each restart).
    let mut a = empty(&store);
    a.entries = vec![(u64::MAX, entry(&store, 1))];
    assert!(hub.append(a).is_err());
    hub.flush().unwrap();
    let mut b = empty(&store);
    b.entries = vec![(1, entry(&store, 1))];
    hub.append(b).unwrap();
    hub.flush().unwrap();
    assert_eq!(hub.entries(&store, 0, 10).unwrap().len(), 1);
}
