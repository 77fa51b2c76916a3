use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use protocol::member::{Gender, Profile};
use protocol::{CardNo, Phone};

use super::*;

fn record(n: u8, name: &str, phone: u32, card: Option<u32>) -> MemberRecord {
    MemberRecord {
        member_id: MemberId::mint(1, u128::from(n) * 7919),
        doc: Vec::new(),
        profile: Profile {
            name: name.to_owned(),
            phone: Phone::parse(&format!("1390000{phone:04}")).unwrap(),
            card_no: card.map(|c| CardNo::parse(&format!("VIP{c:04}")).unwrap()),
            birthday: None,
            gender: Gender::Unspecified,
            tags: Default::default(),
            notes: String::new(),
            tier: "standard".into(),
            custom: Default::default(),
            home_store: StoreId::parse("S001").unwrap(),
            join_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            referrer: None,
            marketing_consent: false,
            card_status: Default::default(),
            former_cards: Default::default(),
        },
    }
}

fn answers(found: &[MemberRecord]) -> Vec<MemberId> {
    found.iter().map(|m| m.member_id).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    /// Headquarters' 会员搜索 through the index answers what reading every member would,
    /// after batches that rename members, give them new phones and cards (twice in one
    /// batch, too), and again after the derived state is rebuilt.
    #[test]
    fn search_through_the_index_answers_what_reading_every_member_would(
        batches in proptest::collection::vec(
            proptest::collection::vec(
                (0u8..12, "[张王李芳伟aB]{1,4}", 0u32..30, proptest::option::of(0u32..5)),
                1..6,
            ),
            1..5,
        ),
        queries in proptest::collection::vec("[张王李芳伟ab]{1,3}|00[0-2][0-9]|VIP000[0-4]", 1..10),
    ) {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hub-search-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        // Removed however the case ends (a failing case returns early while shrinking).
        struct Gone(std::path::PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _gone = Gone(dir.clone());
        let storage = SledHubStore::open(&dir).unwrap();
        let origin = StoreId::parse("S001").unwrap();
        let mut every: BTreeMap<String, MemberRecord> = BTreeMap::new();
        for batch in batches {
            let members: Vec<MemberRecord> = batch
                .into_iter()
                .map(|(n, name, phone, card)| record(n, &name, phone, card))
                .collect();
            for m in &members {
                every.insert(m.member_id.to_string(), m.clone());
            }
            storage
                .append(Append {
                    store: &origin,
                    entries: Vec::new(),
                    tip: ChainTip::GENESIS,
                    status: StoreStatus::default(),
                    feed: Vec::new(),
                    feed_len: 0,
                    members,
                    phones: Vec::new(),
                    wallets: Vec::new(),
                    views: Vec::new(),
                    keys: Vec::new(),
                    erased: Vec::new(),
                    notices: Vec::new(),
                })
                .unwrap();
        }
        let expect = |q: &str| {
            let all: Vec<MemberRecord> = every.values().cloned().collect();
            answers(&all.into_iter().filter(|m| m.profile.matches(q)).take(3).collect::<Vec<_>>())
        };
        for q in &queries {
            proptest::prop_assert_eq!(answers(&storage.search_members(q, 3).unwrap()), expect(q), "query {:?}", q);
        }
        let derived = Derived {
            members: every.values().cloned().collect(),
            ..Derived::default()
        };
        storage.replace_derived(derived, 1).unwrap();
        for q in &queries {
            proptest::prop_assert_eq!(answers(&storage.search_members(q, 3).unwrap()), expect(q), "query {:?} after rebuild", q);
        }
        drop(storage);
    }
}
