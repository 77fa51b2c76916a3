use super::*;
use crate::entry::{EntryHash, Payload};
use crate::hlc::Hlc;
use crate::ids::StaffId;
use chrono::NaiveDate;

fn store(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}

fn log(origin: &str, n: u64) -> Vec<Entry> {
    let payloads = (1..=n).map(|seq| Payload::MemberEdited {
        member_id: MemberId::mint(1, 1),
        change: vec![seq as u8],
    });
    chained(origin, payloads)
}

/// `origin`'s log of these payloads, seq 1 on, each entry linked to the one before.
fn chained(origin: &str, payloads: impl IntoIterator<Item = Payload>) -> Vec<Entry> {
    let mut tip = ChainTip::GENESIS;
    payloads
        .into_iter()
        .zip(1..)
        .map(|(payload, seq)| {
            let e = Entry {
                origin: store(origin),
                seq,
                hlc: Hlc {
                    wall_ms: seq,
                    logical: 0,
                },
                business_date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                staff: StaffId::system(),
                tx: TxId::parse(&format!("key-{seq:08}")).unwrap(),
                prev_hash: tip.hash,
                payload,
            };
            tip = tip.extend(&store(origin), &e).unwrap();
            e
        })
        .collect()
}

/// Runs a store session against a hub session in memory until both are quiet; the hub's
/// persistence is `held`, which starts at `hub_has` entries.
/// The hash of a change of `member` among `entries` that starts with `prefix`.
fn known_in(entries: &[Entry], member: &MemberId, prefix: &[u8]) -> Option<[u8; 32]> {
    entries.iter().find_map(|e| match &e.payload {
        Payload::MemberRegistered { member_id, change }
        | Payload::MemberEdited { member_id, change }
            if member_id == member =>
        {
            crate::thin::change_hash(change).filter(|h| h.starts_with(prefix))
        }
        _ => None,
    })
}

/// A store's log of real member changes: registrations, then edits of each, interleaved.
fn member_log(members: u64, edits: usize) -> Vec<Entry> {
    use crate::member::{MemberDoc, ProfilePatch};
    let s001 = store("S001");
    let mut docs = Vec::new();
    let mut payloads = Vec::new();
    for m in 0..members {
        let profile = crate::member::tests::sample("S001");
        let (doc, change) = MemberDoc::create(&s001, 1_000, &profile).unwrap();
        docs.push(doc);
        payloads.push(Payload::MemberRegistered {
            member_id: MemberId::mint(1, u128::from(m)),
            change,
        });
    }
    for e in 0..edits {
        for (m, doc) in docs.iter_mut().enumerate() {
            let patch = ProfilePatch {
                name: Some(format!("会员{m}-{e}")),
                ..ProfilePatch::default()
            };
            let change = doc.edit(&s001, 2_000 + e as i64, &patch).unwrap().unwrap();
            payloads.push(Payload::MemberEdited {
                member_id: MemberId::mint(1, m as u128),
                change,
            });
        }
    }
    chained("S001", payloads)
}

/// Version 3 pushes member changes thin; the hub rebuilds them byte for byte from what it
/// holds (earlier in the push or from before), whatever it already had, and a thin push
/// the hub does not thicken breaks the chain.
#[test]
fn member_changes_go_thin_and_arrive_whole() {
    let entries = member_log(40, 3);
    for hub_has in [0, 1, 40, 41, 100, 160] {
        let (held, up) = exchange(&entries, hub_has);
        assert_eq!(held, entries, "hub_has = {hub_has}");
        assert_eq!(up.version(), VERSIONS[0]);
    }
    let bytes = |version| -> usize {
        entries
            .iter()
            .map(|e| for_push(&e.encode(), version).len())
            .sum()
    };
    let (v2, v3) = (bytes(2), bytes(3));
    assert!(v3 == v2, "thin changes keep their length: {v2} → {v3}");
    let zeros = |version| -> usize {
        entries
            .iter()
            .map(|e| for_push(&e.encode(), version))
            .map(|b| b.iter().filter(|x| **x == 0).count())
            .sum()
    };
    // 120 edits × (4 + 24) bytes and 40 registrations × 4 made zero, at least.
    assert!(
        zeros(3) >= zeros(2) + 120 * 28 + 40 * 4 - 200,
        "{} {}",
        zeros(2),
        zeros(3)
    );
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    hub.handle(StoreMsg::Hello {
        versions: VERSIONS.to_vec(),
        store: store("S001"),
        log_len: 2,
        feed_applied: 0,
    })
    .unwrap();
    let thin = StoreMsg::PushChained {
        log_len: 2,
        tip: entries[1].hash(),
        entries: vec![
            for_push(&entries[0].encode(), 3),
            for_push(&entries[1].encode(), 3),
        ],
    };
    assert!(matches!(hub.handle(thin.clone()), Err(SyncError::Chain(_))));
    // The feed carries them thin from version 3, whole before; made whole again, they are
    // the bytes the store wrote.
    for (offers, thin) in [(VERSIONS.to_vec(), true), (vec![2, 1], false)] {
        let mut hub = HubSession::new(store("S002"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: offers,
            store: store("S002"),
            log_len: 0,
            feed_applied: 0,
        })
        .unwrap();
        while hub.poll_transmit().is_some() {}
        let whole = entries[40].encode();
        hub.feed(
            1,
            vec![FeedItem {
                position: 1,
                entry: whole.clone(),
            }],
            Vec::new(),
        );
        let Some(HubMsg::Feed { items, .. }) = hub.poll_transmit() else {
            panic!("a feed");
        };
        assert_eq!(items[0].entry != whole, thin);
        let back =
            thicken_entry(items[0].entry.clone(), |m, p| known_in(&entries[..1], m, p)).unwrap();
        assert_eq!(back, whole);
    }
    // An edit whose registration the hub never had cannot be made whole.
    let lonely = StoreMsg::PushChained {
        log_len: 41,
        tip: entries[40].hash(),
        entries: vec![for_push(&entries[40].encode(), 3)],
    };
    assert!(matches!(
        hub.thicken(lonely, |_, _| None),
        Err(SyncError::Malformed(_))
    ));
}

fn exchange(entries: &[Entry], hub_has: usize) -> (Vec<Entry>, UplinkSession) {
    let mut held: Vec<Entry> = entries[..hub_has].to_vec();
    let tip = ChainTip::GENESIS.extend_all(&store("S001"), &held).unwrap();
    let mut hub = HubSession::new(store("S001"), tip);
    let mut up = UplinkSession::new(store("S001"), entries.len() as u64, 0);
    let (mut to_hub, mut to_store) = (Codec::PLAIN, Codec::PLAIN);
    loop {
        let mut moved = false;
        while let Some(range) = up.poll_push() {
            let batch = entries[*range.start() as usize - 1..=*range.end() as usize - 1]
                .iter()
                .map(Entry::encode)
                .collect();
            up.push(batch, Vec::new());
        }
        // Frames both ways, each end's reader following the agreed version.
        while let Some(frame) = up.poll_frame() {
            let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
            let msg: StoreMsg = to_hub.decode(&frame[4..4 + len]).unwrap();
            to_hub = to_hub.after_store_msg(&msg);
            let msg = hub
                .thicken(msg, |member, prefix| known_in(&held, member, prefix))
                .unwrap();
            hub.handle(msg).unwrap();
            moved = true;
        }
        while let Some(event) = hub.poll_event() {
            if let HubEvent::Persist { entries, .. } = event {
                held.extend(entries.into_iter().map(|s| s.entry));
                hub.persisted(held.len() as u64);
            }
        }
        while let Some(frame) = hub.poll_frame() {
            let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
            let msg: HubMsg = to_store.decode(&frame[4..4 + len]).unwrap();
            to_store = to_store.after_hub_msg(&msg);
            up.handle(msg).unwrap();
            moved = true;
        }
        while up.poll_event().is_some() {}
        if !moved {
            return (held, up);
        }
    }
}

#[test]
fn a_backlog_arrives_once_in_order_whatever_the_hub_already_had() {
    let entries = log("S001", 2_000);
    for hub_has in [0, 1, 777, 2_000] {
        let (held, up) = exchange(&entries, hub_has);
        assert_eq!(held, entries, "hub_has = {hub_has}");
        assert_eq!(up.backlog(), 0);
    }
}

/// Version 3 sends what the store holds beside its ask; an older hub gets the ask alone,
/// and a holding that does not match the ask closes the stream.
#[test]
fn clocks_are_exchanged_from_version_4() {
    for (offers, version) in [(vec![4, 3, 2, 1], 4), (vec![3, 2, 1], 3)] {
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: offers,
            store: store("S001"),
            log_len: 0,
            feed_applied: 0,
        })
        .unwrap();
        hub.clock(1_000_000);
        let mut up = UplinkSession::new(store("S001"), 0, 0);
        while up.poll_frame().is_some() {}
        while let Some(msg) = hub.poll_transmit() {
            up.handle(msg).unwrap();
        }
        let mut heard = None;
        while let Some(event) = up.poll_event() {
            if let UplinkEvent::Clock { hub_ms } = event {
                heard = Some(hub_ms);
            }
        }
        assert_eq!(heard, (version == 4).then_some(1_000_000));
        up.clock(400_000);
        let mut told = None;
        while let Some(msg) = up.poll_transmit() {
            hub.handle(msg).unwrap();
        }
        while let Some(event) = hub.poll_event() {
            if let HubEvent::Clock { store_ms } = event {
                told = Some(store_ms);
            }
        }
        assert_eq!(told, (version == 4).then_some(400_000));
    }
    // Out of turn, it is a protocol error.
    let mut up = UplinkSession::new(store("S001"), 0, 0);
    assert!(up.handle(HubMsg::Clock { now_ms: 1 }).is_err());
}

/// Members' keys go beside the entries they unlock, never in them: a store's right before
/// its push, the hub's right before its feed batch, each handed out with those entries.
#[test]
fn keys_travel_beside_the_entries_from_version_5() {
    let key = |b: u8| crate::seal::MemberKey::from_bytes([b; 32]);
    let member = MemberId::mint(1, 1);
    for (offers, version) in [(vec![5, 4, 3, 2, 1], 5), (vec![4, 3, 2, 1], 4)] {
        let entries = log("S001", 2);
        assert_eq!(
            members_changed(
                entries
                    .iter()
                    .map(Entry::encode)
                    .collect::<Vec<_>>()
                    .iter()
                    .map(Vec::as_slice)
            ),
            vec![member]
        );
        let mut up = UplinkSession::offering(store("S001"), 2, 0, &offers);
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        while let Some(msg) = up.poll_transmit() {
            hub.handle(msg).unwrap();
        }
        while let Some(msg) = hub.poll_transmit() {
            up.handle(msg).unwrap();
        }
        up.push(
            entries.iter().map(Entry::encode).collect(),
            vec![(member, key(7))],
        );
        while let Some(msg) = up.poll_transmit() {
            hub.handle(msg).unwrap();
        }
        let persisted = std::iter::from_fn(|| hub.poll_event())
            .find_map(|e| match e {
                HubEvent::Persist { keys, .. } => Some(keys),
                _ => None,
            })
            .unwrap();
        let sent = if version == 5 {
            vec![(member, key(7))]
        } else {
            Vec::new()
        };
        assert_eq!(persisted, sent);
        hub.feed(
            1,
            Vec::new(),
            vec![(member, None), (MemberId::mint(2, 2), Some(key(8)))],
        );
        while let Some(msg) = hub.poll_transmit() {
            up.handle(msg).unwrap();
        }
        let fed = std::iter::from_fn(|| up.poll_event())
            .find_map(|e| match e {
                UplinkEvent::Feed { keys, .. } => Some(keys),
                _ => None,
            })
            .unwrap();
        assert_eq!(fed.len(), if version == 5 { 2 } else { 0 });
    }
    // Keys out of turn, or too many, close the stream.
    let mut up = UplinkSession::new(store("S001"), 0, 0);
    assert!(up.handle(HubMsg::Keys(vec![(member, None)])).is_err());
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    assert!(hub.handle(StoreMsg::Keys(vec![(member, key(1))])).is_err());
    hub.handle(StoreMsg::Hello {
        versions: VERSIONS.to_vec(),
        store: store("S001"),
        log_len: 0,
        feed_applied: 0,
    })
    .unwrap();
    let many = vec![(member, key(1)); KEYS_MAX + 1];
    assert!(hub.handle(StoreMsg::Keys(many)).is_err());
}

#[test]
fn an_ask_says_what_the_store_holds_from_version_3() {
    let ask = |held: Vec<u64>| Ask {
        id: TxId::parse("ask-00000001").unwrap(),
        member: MemberId::mint(1, 1),
        wants: vec![(Counter::Principal, 5), (Counter::Bonus, 1)],
        holding: Some(Holding { log_len: 7, held }),
    };
    for (offers, version) in [(vec![3, 2, 1], 3), (vec![2, 1], 2)] {
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        hub.handle(StoreMsg::Hello {
            versions: offers,
            store: store("S001"),
            log_len: 0,
            feed_applied: 0,
        })
        .unwrap();
        let mut up = UplinkSession::new(store("S001"), 0, 0);
        while up.poll_frame().is_some() {}
        while let Some(msg) = hub.poll_transmit() {
            up.handle(msg).unwrap();
        }
        assert_eq!(up.version(), version);
        up.ask(ask(vec![2, 0])).unwrap();
        let sent = up.poll_transmit().unwrap();
        assert_eq!(matches!(sent, StoreMsg::AskHolding { .. }), version == 3);
        hub.handle(sent).unwrap();
        while let Some(event) = hub.poll_event() {
            if let HubEvent::Ask(got) = event {
                let expected = (version == 3).then(|| Holding {
                    log_len: 7,
                    held: vec![2, 0],
                });
                assert_eq!(got.holding, expected);
                // With the holding, headquarters counts what it thinks is there already.
                let needs = got.needs(|c| if *c == Counter::Principal { 4 } else { 0 });
                let principal = if version == 3 { 3 } else { 5 };
                assert_eq!(
                    needs,
                    vec![(Counter::Principal, principal), (Counter::Bonus, 1)]
                );
            }
        }
        let mut wrong = ask(vec![2]);
        let holding = wrong.holding.take().unwrap();
        let refused = hub.handle(StoreMsg::AskHolding {
            ask: wrong,
            log_len: holding.log_len,
            held: holding.held,
        });
        match version {
            3 => assert!(matches!(refused, Err(SyncError::Malformed(_)))),
            _ => assert!(matches!(refused, Err(SyncError::Unexpected(_)))),
        }
    }
}

#[test]
fn version_2_agreed_when_both_speak_it_and_its_pushes_checked_by_the_last_hash() {
    assert_eq!(negotiate(&[2, 1]), Some(2));
    assert_eq!(negotiate(&[3, 2, 1]), Some(3));
    assert_eq!(negotiate(&[4, 3, 2, 1]), Some(4));
    assert_eq!(negotiate(&[5, 4, 3, 2, 1]), Some(5));
    assert_eq!(negotiate(&[1]), Some(1));
    assert_eq!(negotiate(&[99]), None);
    let entries = log("S001", 3);
    let (held, up) = exchange(&entries, 0);
    assert_eq!((held, up.version()), (entries.clone(), VERSIONS[0]));
    // The batch's hash must match what the hub links up: an entry changed on the way is
    // refused, and so is version 2's push on a version 1 session.
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    let hello = |versions| StoreMsg::Hello {
        versions,
        store: store("S001"),
        log_len: 3,
        feed_applied: 0,
    };
    hub.handle(hello(vec![2, 1])).unwrap();
    let mut changed = entries[1].clone();
    changed.hlc.wall_ms += 1;
    let mut batch: Vec<Vec<u8>> = entries.iter().map(without_prev_hash_of).collect();
    batch[1] = without_prev_hash_of(&changed);
    let push = StoreMsg::PushChained {
        log_len: 3,
        tip: entries[2].hash(),
        entries: batch,
    };
    assert!(matches!(
        hub.handle(push.clone()),
        Err(SyncError::Chain(ChainError::BrokenLink { seq: 3 }))
    ));
    let mut v1 = HubSession::new(store("S001"), ChainTip::GENESIS);
    v1.handle(hello(vec![1])).unwrap();
    assert!(matches!(v1.handle(push), Err(SyncError::Unexpected(_))));
}

fn without_prev_hash_of(entry: &Entry) -> Vec<u8> {
    for_push(&entry.encode(), 2)
}

#[test]
fn a_deflated_frame_that_inflates_too_far_is_refused() {
    let codec = Codec::for_version(2);
    let huge = StoreMsg::Push {
        log_len: 1,
        entries: vec![vec![0; INFLATED_BYTES_MAX]],
    };
    let frame = codec.encode(&huge);
    assert!(frame.len() < FRAME_BYTES_MAX, "zeros deflate to little");
    assert!(matches!(
        codec.decode::<StoreMsg>(&frame[4..]),
        Err(SyncError::FrameTooLarge(_))
    ));
    assert!(matches!(
        codec.decode::<StoreMsg>(b"not deflate at all"),
        Err(SyncError::Malformed(_))
    ));
}

#[test]
fn resent_entries_are_skipped_and_gaps_or_tampering_refused() {
    let entries = log("S001", 3);
    let tip = ChainTip::GENESIS
        .extend_all(&store("S001"), &entries[..2])
        .unwrap();
    let mut hub = HubSession::new(store("S001"), tip);
    let hello = StoreMsg::Hello {
        versions: vec![1],
        store: store("S001"),
        log_len: 3,
        feed_applied: 0,
    };
    hub.handle(hello).unwrap();
    let all = entries.iter().map(Entry::encode).collect();
    hub.handle(StoreMsg::Push {
        log_len: 3,
        entries: all,
    })
    .unwrap();
    let persisted: Vec<_> = std::iter::from_fn(|| hub.poll_event()).collect();
    assert!(
        matches!(&persisted[1], HubEvent::Persist { entries, .. } if entries.len() == 1 && entries[0].entry.seq == 3)
    );

    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    hub.handle(StoreMsg::Hello {
        versions: vec![1],
        store: store("S001"),
        log_len: 3,
        feed_applied: 0,
    })
    .unwrap();
    let mut tampered = entries[0].clone();
    tampered.staff = StaffId::parse("mallory").unwrap();
    let push = StoreMsg::Push {
        log_len: 3,
        entries: vec![tampered.encode(), entries[1].encode()],
    };
    assert!(matches!(
        hub.handle(push),
        Err(SyncError::Chain(ChainError::BrokenLink { seq: 2 }))
    ));
    let gap = StoreMsg::Push {
        log_len: 3,
        entries: vec![entries[2].encode()],
    };
    assert!(matches!(
        hub.handle(gap),
        Err(SyncError::Chain(ChainError::SeqGap { .. }))
    ));
}

#[test]
fn acks_never_pass_what_this_session_sent() {
    let entries = log("S001", 3);
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    hub.handle(StoreMsg::Hello {
        versions: vec![1],
        store: store("S001"),
        log_len: 3,
        feed_applied: 0,
    })
    .unwrap();
    hub.handle(StoreMsg::Push {
        log_len: 3,
        entries: vec![entries[0].encode()],
    })
    .unwrap();
    hub.persisted(3); // an older session of this store delivered 2 and 3 meanwhile
    let acks: Vec<_> = std::iter::from_fn(|| hub.poll_transmit()).collect();
    assert_eq!(acks.last(), Some(&HubMsg::Ack { seq: 1 }));
    let too_many = StoreMsg::Push {
        log_len: 3,
        entries: vec![vec![]; PUSH_ENTRIES_MAX + 1],
    };
    assert!(matches!(hub.handle(too_many), Err(SyncError::Malformed(_))));
}

#[test]
fn a_store_cannot_speak_for_another() {
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    let hello = StoreMsg::Hello {
        versions: vec![1],
        store: store("S002"),
        log_len: 0,
        feed_applied: 0,
    };
    assert!(matches!(
        hub.handle(hello),
        Err(SyncError::WrongStore { .. })
    ));
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    hub.handle(StoreMsg::Hello {
        versions: vec![1],
        store: store("S001"),
        log_len: 1,
        feed_applied: 0,
    })
    .unwrap();
    let foreign = log("S002", 1).iter().map(Entry::encode).collect();
    let push = StoreMsg::Push {
        log_len: 1,
        entries: foreign,
    };
    assert!(matches!(
        hub.handle(push),
        Err(SyncError::Chain(ChainError::WrongOrigin { .. }))
    ));
}

#[test]
fn protocol_violations_are_errors_not_state() {
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    assert!(
        hub.handle(StoreMsg::Push {
            log_len: 0,
            entries: vec![]
        })
        .is_err()
    );
    let hello = StoreMsg::Hello {
        versions: vec![99],
        store: store("S001"),
        log_len: 0,
        feed_applied: 0,
    };
    assert!(matches!(hub.handle(hello), Err(SyncError::Version(_))));
    let mut up = UplinkSession::new(store("S001"), 5, 0);
    assert!(matches!(
        up.handle(HubMsg::Welcome {
            version: 2,
            acked_seq: 9
        }),
        Err(SyncError::HubAhead { .. })
    ));
    let mut up = UplinkSession::new(store("S001"), 5, 0);
    up.handle(HubMsg::Welcome {
        version: 2,
        acked_seq: 2,
    })
    .unwrap();
    assert!(matches!(
        up.handle(HubMsg::Ack { seq: 4 }),
        Err(SyncError::AckUnsent(4))
    ));
    assert!(frame_len((FRAME_BYTES_MAX as u32 + 1).to_be_bytes()).is_err());
    assert!(decode_body::<HubMsg>(&[0xff, 0xff]).is_err());
    let _ = EntryHash::GENESIS;
}

/// A Hello (plain) and pushes after it (deflated, as the Hello agrees) come out of the
/// framing decoder whole and in order however the stream cuts them, and the stream may end
/// only between frames.
#[test]
fn frames_come_out_whole_however_the_stream_is_cut() {
    let hello = StoreMsg::Hello {
        versions: VERSIONS.to_vec(),
        store: store("S001"),
        log_len: 2,
        feed_applied: 0,
    };
    let pushes: Vec<StoreMsg> = (1..=3)
        .map(|n| StoreMsg::Push {
            log_len: n,
            entries: vec![vec![n as u8; 300]],
        })
        .collect();
    let agreed = Codec::PLAIN.after_store_msg(&hello);
    let mut stream = encode_frame(&hello);
    for push in &pushes {
        stream.extend(agreed.encode(push));
    }
    let expected: Vec<StoreMsg> = std::iter::once(hello).chain(pushes).collect();
    for piece in [1, 2, 3, 5, 7, 64, stream.len()] {
        let mut frames = Frames::default();
        let mut got = Vec::new();
        for chunk in stream.chunks(piece) {
            frames.push(chunk);
            while let Some(msg) = frames.store_msg().unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(got, expected, "cut every {piece} bytes");
        assert!(frames.finish().is_ok());
    }
    let mut cut = Frames::default();
    cut.push(&stream[..stream.len() - 1]);
    while cut.store_msg().unwrap().is_some() {}
    assert!(matches!(cut.finish(), Err(SyncError::Link(_))));
}

/// A length over the limit is refused as soon as its prefix is in, before any body.
#[test]
fn an_oversized_frame_is_refused_at_its_prefix() {
    let mut frames = Frames::default();
    frames.push(&((FRAME_BYTES_MAX as u32) + 1).to_be_bytes());
    assert!(matches!(frames.hub_msg(), Err(SyncError::FrameTooLarge(_))));
}

/// Version 7: a store that follows a member gets their history in messages no larger than a
/// push, the last one marked (also when there is none); before version 7 a follow is refused.
#[test]
fn a_follow_is_answered_with_the_members_history_in_bounded_messages() {
    let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    let mut up = UplinkSession::new(store("S001"), 0, 0);
    while let Some(msg) = up.poll_transmit() {
        hub.handle(msg).unwrap();
    }
    while let Some(msg) = hub.poll_transmit() {
        up.handle(msg).unwrap();
    }
    assert_eq!((hub.routed(), up.routed()), (true, Some(true)));
    let member = MemberId::mint(1, 1);
    up.follow(&[member]);
    hub.handle(up.poll_transmit().unwrap()).unwrap();
    assert!(matches!(hub.poll_event(), Some(HubEvent::Hello { .. })));
    assert_eq!(hub.poll_event(), Some(HubEvent::Follow(vec![member])));
    let items: Vec<FeedItem> = log("S002", PUSH_ENTRIES_MAX as u64 + 3)
        .iter()
        .enumerate()
        .map(|(i, e)| FeedItem {
            position: i as u64 + 1,
            entry: e.encode(),
        })
        .collect();
    hub.backfill(member, 600, items.clone());
    hub.backfill(MemberId::mint(1, 2), 600, Vec::new());
    let mut got = Vec::new();
    let mut lasts = Vec::new();
    while let Some(msg) = hub.poll_transmit() {
        if matches!(msg, HubMsg::Welcome { .. } | HubMsg::Clock { .. }) {
            continue;
        }
        up.handle(msg).unwrap();
    }
    while let Some(event) = up.poll_event() {
        if let UplinkEvent::Backfill {
            member,
            items,
            last,
        } = event
        {
            got.extend(items.into_iter().map(|i| (member, i)));
            lasts.push((member, last));
        }
    }
    assert_eq!(got.len(), items.len());
    assert_eq!(
        lasts,
        vec![
            (member, false),
            (member, true),
            (MemberId::mint(1, 2), true)
        ]
    );
    // An older session may not follow.
    let mut old_hub = HubSession::new(store("S001"), ChainTip::GENESIS);
    let hello = StoreMsg::Hello {
        versions: vec![6, 5],
        store: store("S001"),
        log_len: 0,
        feed_applied: 0,
    };
    old_hub.handle(hello).unwrap();
    assert!(!old_hub.routed());
    assert!(old_hub.handle(StoreMsg::Follow(vec![member])).is_err());
}

#[test]
fn a_store_behind_the_hub_is_given_its_log_back_from_version_8() {
    // The hub holds 9 entries of the store's log; the store (a new PC) has 5.
    let hello = |versions: &[u16]| {
        let mut up = UplinkSession::offering(store("S001"), 5, 0, versions);
        let Some(StoreMsg::Hello { versions, .. }) = up.poll_transmit() else {
            panic!("no hello");
        };
        (up, negotiate(&versions).unwrap())
    };
    let (mut up, version) = hello(VERSIONS);
    assert!(version >= RESTORE_VERSION);
    up.handle(HubMsg::Welcome {
        version,
        acked_seq: 9,
    })
    .unwrap();
    assert_eq!(
        up.poll_event(),
        Some(UplinkEvent::Behind { hub_seq: 9 }),
        "told, not refused"
    );
    assert_eq!(up.poll_event(), Some(UplinkEvent::Acked(9)));
    assert_eq!(up.backlog(), 0);
    assert_eq!(up.poll_push(), None, "nothing of its own to push");
    let entries: Vec<Vec<u8>> = log("S001", 9)[5..].iter().map(Entry::encode).collect();
    up.handle(HubMsg::Restore {
        upto: 3,
        entries: entries.clone(),
    })
    .unwrap();
    assert_eq!(
        up.poll_event(),
        Some(UplinkEvent::Restore {
            upto: 3,
            entries,
            keys: vec![]
        })
    );
    // Back to 9 entries, it pushes from the 10th.
    up.log_grew(9);
    assert_eq!(up.poll_push(), None);
    up.log_grew(10);
    assert_eq!(up.poll_push(), Some(10..=10));

    // An older store cannot be given its log back: it is told to restore by hand.
    let (mut old, version) = hello(&[7]);
    let behind = old.handle(HubMsg::Welcome {
        version,
        acked_seq: 9,
    });
    assert!(matches!(
        behind,
        Err(SyncError::HubAhead { hub: 9, store: 5 })
    ));
    let (mut up, version) = hello(&[7]);
    up.handle(HubMsg::Welcome {
        version,
        acked_seq: 5,
    })
    .unwrap();
    let restore = HubMsg::Restore {
        upto: 0,
        entries: vec![],
    };
    assert!(matches!(up.handle(restore), Err(SyncError::Unexpected(_))));
}

#[test]
fn a_store_renews_its_certificate_over_the_session_from_version_9() {
    let session = |versions: &[u16]| {
        let mut up = UplinkSession::offering(store("S001"), 0, 0, versions);
        let mut hub = HubSession::new(store("S001"), ChainTip::GENESIS);
        while let Some(msg) = up.poll_transmit() {
            hub.handle(msg).unwrap();
        }
        while let Some(msg) = hub.poll_transmit() {
            up.handle(msg).unwrap();
        }
        while up.poll_event().is_some() {}
        while hub.poll_event().is_some() {}
        (up, hub)
    };
    let (mut up, mut hub) = session(VERSIONS);
    assert!(up.renews());
    up.renew(b"csr".to_vec()).unwrap();
    let msg = up.poll_transmit().unwrap();
    hub.handle(msg).unwrap();
    assert_eq!(
        hub.poll_event(),
        Some(HubEvent::Renew {
            csr: b"csr".to_vec()
        })
    );
    hub.renewed(vec![b"leaf".to_vec(), b"issuer".to_vec()]);
    up.handle(hub.poll_transmit().unwrap()).unwrap();
    assert_eq!(
        up.poll_event(),
        Some(UplinkEvent::Renewed {
            chain: vec![b"leaf".to_vec(), b"issuer".to_vec()]
        })
    );
    hub.renew_refused("no issuer".into());
    up.handle(hub.poll_transmit().unwrap()).unwrap();
    assert_eq!(
        up.poll_event(),
        Some(UplinkEvent::RenewRefused {
            reason: "no issuer".into()
        })
    );
    // A request over the bound is refused at both ends.
    let huge = vec![0u8; CSR_BYTES_MAX + 1];
    assert!(matches!(
        up.renew(huge.clone()),
        Err(SyncError::Malformed(_))
    ));
    assert!(matches!(
        hub.handle(StoreMsg::Renew { csr: huge }),
        Err(SyncError::Malformed(_))
    ));

    // Before version 9 neither end renews.
    let (mut up, mut hub) = session(&[8]);
    assert!(!up.renews());
    assert!(matches!(
        up.renew(b"csr".to_vec()),
        Err(SyncError::Unexpected(_))
    ));
    let csr = StoreMsg::Renew {
        csr: b"csr".to_vec(),
    };
    assert!(matches!(hub.handle(csr), Err(SyncError::Unexpected(_))));
}
