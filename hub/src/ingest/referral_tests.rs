//! 拓客奖励 at headquarters, tested through the ingest (`super`): rewards given once, two
//! levels, taken back on a full return, and only for a first sale after the link.

use super::super::tests::registration_referred;
use super::*;
use crate::storage::MemHubStore;
use protocol::referral::Reward;
use protocol::sale::{QuickSale, Tender};
use protocol::{Currency, Fen, SaleId};

const NOW: u64 = 1_795_451_400_000;

fn entry(store: &StoreId, tip: ChainTip, tx: &str, payload: Payload) -> Entry {
    Entry {
        origin: store.clone(),
        seq: tip.next_seq,
        hlc: Hlc {
            wall_ms: NOW + tip.next_seq,
            logical: 0,
        },
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        staff: StaffId::system(),
        tx: TxId::parse(tx).unwrap(),
        prev_hash: tip.hash,
        payload,
    }
}

fn sale(store: &StoreId, tip: ChainTip, member: MemberId, fen: i64) -> Entry {
    let sale = QuickSale {
        sale_id: SaleId::for_entry(store, tip.next_seq),
        member_id: Some(member),
        category: None,
        amount: Fen(fen),
        currency: Currency::CNY,
        tender: Tender::Cash {
            tendered: Fen(fen),
            change: Fen(0),
        },
        points_earned: protocol::points::Points(0),
    };
    let payload = Payload::Sale {
        sale,
        ops: Vec::new(),
    };
    entry(store, tip, &format!("sale-{:04}", tip.next_seq), payload)
}

/// A store's log, one entry at a time, each ingested and followed by headquarters' pass.
struct Store {
    id: StoreId,
    tip: ChainTip,
}

impl Store {
    fn push(&mut self, ingest: &mut Ingest, entry: Entry) {
        self.tip = self.tip.extend(&self.id, &entry).unwrap();
        let seq = entry.seq;
        ingest
            .ingest(&self.id, vec![Sealed::new(entry)], seq)
            .unwrap();
        ingest.post_referrals().unwrap();
        ingest.flush().unwrap();
    }
}

fn points_at_hq(storage: &MemHubStore, member: &MemberId) -> u64 {
    let wallet = storage.wallet(member).unwrap().unwrap_or_default();
    wallet.held(&Counter::Points { year: 2026 }, &StoreId::hq())
}

/// C, referred by B, whom A referred: C's first paid sale rewards B (level 1) and A (level
/// 2) once; a second sale rewards no one; the first sale returned in full takes both
/// rewards back; a member nobody referred rewards no one.
#[test]
fn a_first_paid_sale_rewards_two_levels_once_and_a_full_return_takes_it_back() {
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| NOW)).unwrap();
    let rules = ReferralRules {
        level1: Reward {
            points: 100,
            ..Reward::default()
        },
        level2: Some(Reward {
            points: 20,
            ..Reward::default()
        }),
    };
    ingest
        .hq_write(HqWrite::ReferralRules(rules), &StaffId::system())
        .unwrap();
    let mut s001 = Store {
        id: StoreId::parse("S001").unwrap(),
        tip: ChainTip::GENESIS,
    };
    let (a, b, c) = (
        MemberId::mint(1, 7),
        MemberId::mint(2, 7),
        MemberId::mint(3, 7),
    );
    let reg_a = registration_referred(&s001.id, s001.tip, "13800000051", None);
    s001.push(&mut ingest, reg_a);
    let reg_b = registration_referred(&s001.id, s001.tip, "13800000052", Some(a));
    s001.push(&mut ingest, reg_b);
    let reg_c = registration_referred(&s001.id, s001.tip, "13800000053", Some(b));
    s001.push(&mut ingest, reg_c);
    assert_eq!(
        (points_at_hq(&storage, &a), points_at_hq(&storage, &b)),
        (0, 0),
        "not at sign-up"
    );

    let first = sale(&s001.id, s001.tip, c, 5_000);
    let first_id = SaleId::for_entry(&s001.id, s001.tip.next_seq);
    s001.push(&mut ingest, first);
    assert_eq!(points_at_hq(&storage, &b), 100, "level 1");
    assert_eq!(points_at_hq(&storage, &a), 20, "level 2");
    let second = sale(&s001.id, s001.tip, c, 3_000);
    s001.push(&mut ingest, second);
    assert_eq!(
        (points_at_hq(&storage, &b), points_at_hq(&storage, &a)),
        (100, 20),
        "once"
    );
    let own = sale(&s001.id, s001.tip, a, 1_000);
    s001.push(&mut ingest, own);
    assert_eq!(points_at_hq(&storage, &a), 20, "nobody referred A");

    // The first sale back in full, in two returns.
    for (n, fen) in [(1, 2_000), (2, 3_000)] {
        let ret = Payload::Return {
            sale: first_id.clone(),
            member_id: Some(c),
            amount: Fen(fen),
            refund: Tender::Cash {
                tendered: Fen(fen),
                change: Fen(0),
            },
            reason: "退货".into(),
            ops: Vec::new(),
        };
        let returned = entry(&s001.id, s001.tip, &format!("ret-{n:04}"), ret);
        s001.push(&mut ingest, returned);
        let expected = if n == 1 { (100, 20) } else { (0, 0) };
        assert_eq!(
            (points_at_hq(&storage, &b), points_at_hq(&storage, &a)),
            expected,
            "after return {n}"
        );
    }
    let views = HubViews::reader(&*storage);
    let taken: TakenBack = protocol::inventory::read(&views, &keys::taken_back(&c, 1))
        .unwrap()
        .unwrap();
    assert_eq!((taken.points, taken.kept_points), (100, 0));
    assert!(storage.views(keys::DUE, 10).unwrap().is_empty());
    assert!(storage.views(keys::BACK, 10).unwrap().is_empty());
    let report = crate::ingest::verify(&*storage).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
/// 补填推荐人: a customer who paid before they were linked earns their referrer nothing
/// (their first sale came first); one linked before their first sale does.
#[test]
fn only_a_first_sale_after_the_link_is_rewarded() {
    let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
    let mut ingest = Ingest::open(storage.clone(), Box::new(|| NOW)).unwrap();
    let rules = ReferralRules {
        level1: Reward {
            points: 50,
            ..Reward::default()
        },
        level2: None,
    };
    ingest
        .hq_write(HqWrite::ReferralRules(rules), &StaffId::system())
        .unwrap();
    let mut s001 = Store {
        id: StoreId::parse("S001").unwrap(),
        tip: ChainTip::GENESIS,
    };
    let (a, old, new) = (
        MemberId::mint(1, 7),
        MemberId::mint(2, 7),
        MemberId::mint(3, 7),
    );
    for phone in ["13800000061", "13800000062", "13800000063"] {
        let reg = registration_referred(&s001.id, s001.tip, phone, None);
        s001.push(&mut ingest, reg);
    }
    let link = |s001: &Store, member: MemberId| {
        let record = storage.member(&member).unwrap().unwrap();
        let mut doc = protocol::member::MemberDoc::load(&record.doc).unwrap();
        let patch = protocol::member::ProfilePatch {
            referrer: Some(a),
            ..Default::default()
        };
        let change = doc.edit(&s001.id, 2, &patch).unwrap().unwrap();
        let payload = Payload::MemberEdited {
            member_id: member,
            change,
        };
        entry(
            &s001.id,
            s001.tip,
            &format!("edit-{:04}", s001.tip.next_seq),
            payload,
        )
    };
    let bought = sale(&s001.id, s001.tip, old, 2_000);
    s001.push(&mut ingest, bought);
    let linked = link(&s001, old);
    s001.push(&mut ingest, linked);
    let linked = link(&s001, new);
    s001.push(&mut ingest, linked);
    let bought = sale(&s001.id, s001.tip, old, 2_000);
    s001.push(&mut ingest, bought);
    assert_eq!(
        points_at_hq(&storage, &a),
        0,
        "the old customer paid before the link"
    );
    let bought = sale(&s001.id, s001.tip, new, 2_000);
    s001.push(&mut ingest, bought);
    assert_eq!(points_at_hq(&storage, &a), 50, "the new one after it");
    let report = crate::ingest::verify(&*storage).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
