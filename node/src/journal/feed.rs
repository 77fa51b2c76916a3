//! Applying the hub's feed: other stores' members and wallet changes, grants and rules.

use super::*;

impl Journal {
    /// How far the hub's feed is applied here (visible at once, as every write).
    pub fn feed_applied(&self) -> Result<u64, StoreError> {
        Ok(self.read(keys::FEED_APPLIED)?.unwrap_or(0))
    }

    /// Applies feed items after the position already applied; positions make this idempotent.
    pub fn apply_feed(
        &mut self,
        upto: u64,
        items: Vec<FeedItem>,
        member_keys: Vec<(MemberId, Option<MemberKey>)>,
    ) -> Result<Reply, Rejection> {
        let applied = self.feed_applied()?;
        if upto <= applied {
            return Ok(Reply {
                outcome: Outcome::FeedApplied { upto: applied },
                replayed: true,
            });
        }
        let now_ms = (self.env.now_ms)();
        let store = self.store.clone();
        let mut ov = Overlay::new(&*store);
        // The keys that unlock these items go in the same batch, before them.
        take_keys(&mut ov, member_keys)?;
        for item in items
            .into_iter()
            .filter(|i| i.position > applied && i.position <= upto)
        {
            self.take_foreign(&mut ov, item, now_ms, true)?;
        }
        ov.put(keys::FEED_APPLIED.to_vec(), views::encode(&upto));
        self.store.apply(ov.into_batch())?;
        self.settings.adopt_published(&*self.store)?;
        if !self.fenced
            && self
                .store
                .get(&keys::fenced(&self.settings.store_id))?
                .is_some()
        {
            self.fenced = true;
            tracing::error!(
                "headquarters fenced this store and took back the member rights it held: \
                 stored value, points, cards and coupons stop here; cash sales go on"
            );
        }
        Ok(Reply {
            outcome: Outcome::FeedApplied { upto },
            replayed: false,
        })
    }

    /// A followed member's earlier wallet changes (`crate::follow`): those not held yet are
    /// applied like feed items, without moving the feed's position; with `last`, the member is
    /// whole here.
    pub fn apply_backfill(
        &mut self,
        member: MemberId,
        items: Vec<FeedItem>,
        last: bool,
    ) -> Result<Reply, Rejection> {
        let now_ms = (self.env.now_ms)();
        let store = self.store.clone();
        let mut ov = Overlay::new(&*store);
        for item in items {
            self.take_foreign(&mut ov, item, now_ms, false)?;
        }
        if last {
            crate::follow::completed(&mut ov, &member);
        }
        self.store.apply(ov.into_batch())?;
        Ok(Reply {
            outcome: Outcome::FeedApplied {
                upto: self.feed_applied()?,
            },
            replayed: false,
        })
    }

    /// Applies one feed item another replica wrote, unless it is held already (a backfill
    /// and the feed may both bring it) or is this store's own; records it under its position
    /// with this store's next seq (so `rebuild` replays the same interleaving), and follows
    /// the member whose rights it moves here.
    ///
    /// From the `live` feed, a change of a member whose history is not here yet waits for
    /// that history, which holds it (headquarters reads the history after it sent the feed
    /// that far): applied now, a return could come before the sale it returns. Only rights
    /// moved to or from this store go in at once (a wallet merges in any order), so a
    /// payment waiting for a grant is not held up.
    fn take_foreign(
        &mut self,
        ov: &mut Overlay<'_>,
        item: FeedItem,
        now_ms: u64,
        live: bool,
    ) -> Result<(), Rejection> {
        let position = item.position;
        let decoded = Entry::decode(&item.entry).ok();
        let listing = decoded.as_ref().and_then(|e| match &e.payload {
            Payload::MemberListed { member_id, .. } => Some(*member_id),
            _ => None,
        });
        if let Some(held) = ov.get(&keys::feed(position))? {
            // Taken once; but a listing held here gives way to the change it stood for (the
            // member's history, once this store follows them).
            if listing.is_some() || !held_listing(&keys::feed(position), &held)? {
                return Ok(());
            }
        }
        if let Some(entry) = decoded {
            if entry.origin == self.settings.store_id {
                return Ok(());
            }
            // 会员名录: a listing is for a store that does not hold the member whole. One that
            // does gets their changes as they are; a listing means headquarters does not know
            // it follows them (not heard yet, or its follows were lost): told again, its
            // backfill brings the change.
            if let Some(member) = listing
                && crate::follow::state(ov, &member)? == crate::follow::State::Whole
            {
                let again = crate::follow::announce_again(ov, &member)?;
                self.started_following(&member, again);
                return Ok(());
            }
            // An edit of a member whose profile document is not here is not taken: it comes
            // again, with the registration before it, once this store follows the member.
            if let Payload::MemberEdited { member_id, .. } = &entry.payload
                && ov.get(&keys::document(member_id))?.is_none()
                && crate::sealed::member_key(ov, member_id)? != crate::sealed::KeyState::Erased
            {
                return Ok(());
            }
            // 门店经营品项: a change set's part for other stores (headquarters routes it to
            // those it names; this holds should a record reach a store before it is routed).
            if let protocol::entry::Payload::StoreCatalogue { stores, .. } = &entry.payload
                && !stores.contains(&self.settings.store_id)
            {
                return Ok(());
            }
            if let Err(skew) = self.clock.observe(now_ms, entry.hlc) {
                tracing::warn!(origin = %entry.origin, seq = entry.seq, %skew, "feed entry from the future");
            }
            if let protocol::route::Route::Member { member, named } =
                protocol::route::Route::of(&entry)
            {
                if named.contains(&self.settings.store_id) {
                    let started = crate::follow::want(ov, &member)?;
                    self.started_following(&member, started);
                } else if live
                    && self.routed
                    && crate::follow::state(ov, &member)? != crate::follow::State::Whole
                {
                    return Ok(());
                }
            }
        }
        let entry = protocol::sync::thicken_entry(item.entry, |member, prefix| {
            views::change_starting(ov, member, prefix)
        })
        .map_err(|e| Rejection::FeedUnreadable {
            position,
            reason: e.to_string(),
        })?;
        views::apply_foreign_entry(ov, &entry)?;
        let record = views::FeedRecord {
            before_seq: self.tip.next_seq,
            entry,
        };
        ov.put(keys::feed(position), views::encode(&record));
        Ok(())
    }
}

/// Whether the feed record held at `key` is a member's listing (`protocol::listing`).
fn held_listing(key: &[u8], held: &[u8]) -> Result<bool, StoreError> {
    let record: views::FeedRecord = views::decode(key, held)?;
    Ok(matches!(
        Entry::decode(&record.entry).map(|e| e.payload),
        Ok(Payload::MemberListed { .. })
    ))
}

/// Writes the members' keys headquarters sent (`None`: it erased the member, so this store
/// erases its copy too) into the batch, before the entries they unlock.
pub(super) fn take_keys(
    ov: &mut Overlay<'_>,
    member_keys: Vec<(MemberId, Option<MemberKey>)>,
) -> Result<(), Rejection> {
    use crate::sealed::KeyState;
    for (member, key) in member_keys {
        match (key, crate::sealed::member_key(ov, &member)?) {
            (Some(key), KeyState::Unknown) => {
                ov.put(crate::sealed::key_of(&member), key.as_bytes().to_vec());
            }
            (Some(_), KeyState::Held(_) | KeyState::Erased) => {}
            (None, KeyState::Erased) => {}
            (None, KeyState::Held(_) | KeyState::Unknown) => {
                views::erase_member(ov, &member)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::*;
    use crate::store::MemStore;

    /// A member who joined at `at`, as another store's feed brings them.
    fn remote_profile(at: &StoreId, phone: &str) -> Profile {
        Profile {
            name: "异地会员".into(),
            phone: Phone::parse(phone).unwrap(),
            card_no: None,
            birthday: None,
            gender: Gender::Unspecified,
            tags: Default::default(),
            notes: String::new(),
            tier: "standard".into(),
            custom: Default::default(),
            home_store: at.clone(),
            join_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            referrer: None,
            marketing_consent: false,
            card_status: Default::default(),
            former_cards: Default::default(),
        }
    }

    /// An entry of `origin`'s log as the feed carries it (its chain is the hub's concern).
    fn foreign_entry(origin: &StoreId, seq: u64, payload: Payload) -> Entry {
        Entry {
            origin: origin.clone(),
            seq,
            hlc: Hlc {
                wall_ms: 1_795_451_400_000,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{}-key-{seq:04}", origin.as_str().to_lowercase())).unwrap(),
            prev_hash: protocol::entry::EntryHash::GENESIS,
            payload,
        }
    }

    /// The journal thread publishes a group of feed only (no flush): visible at once, and a
    /// crash before the disk has it takes the store back to a position headquarters streams
    /// from again, the member and the position lost together.
    #[test]
    fn a_feed_published_unflushed_is_seen_and_a_crash_loses_it_with_its_position() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(4)).unwrap();
        journal.flush().unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let profile = remote_profile(&s002, "13800000002");
        let (_, change) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let member_id = MemberId::mint(1, 2);
        let registered = foreign_entry(&s002, 1, Payload::MemberRegistered { member_id, change });
        let items = vec![FeedItem {
            position: 1,
            entry: registered.encode(),
        }];
        journal.apply_feed(1, items, Vec::new()).unwrap();
        journal.publish().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 1);
        assert!(views.member(&member_id).unwrap().is_some());
        store.crash();
        assert_eq!(views.feed_applied().unwrap(), 0);
        assert!(views.member(&member_id).unwrap().is_none());
    }

    #[test]
    fn a_bad_feed_entry_is_skipped_and_the_feed_goes_on() {
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(4)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let profile = remote_profile(&s002, "13800000002");
        let (_, change) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let member_id = MemberId::mint(1, 2);
        let foreign = |seq, payload| foreign_entry(&s002, seq, payload);
        let damaged = foreign(
            1,
            Payload::MemberEdited {
                member_id,
                change: vec![1, 2, 3],
            },
        );
        let good = foreign(2, Payload::MemberRegistered { member_id, change });
        let items = vec![
            FeedItem {
                position: 1,
                entry: vec![0xff, 0x00],
            },
            FeedItem {
                position: 2,
                entry: damaged.encode(),
            },
            FeedItem {
                position: 3,
                entry: good.encode(),
            },
        ];
        journal.apply_feed(3, items, Vec::new()).unwrap();
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 3);
        assert_eq!(
            views.member_by_phone(&profile.phone).unwrap(),
            Some(member_id)
        );
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        // The bytes that do not decode and the registration; the edit of a member whose
        // profile is not here is not kept (it would come again with their history).
        assert_eq!(report.feed_entries, 2);
    }

    /// A member from before sealing, erased at headquarters while an edit of theirs was still
    /// on its way: the edit arrives thin, is made whole from the hashes their tombstone kept,
    /// and skipped — the feed goes on, and nothing of them comes back.
    #[test]
    fn a_thin_change_of_an_erased_member_does_not_stop_the_feed() {
        use protocol::member::ProfilePatch;
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let (mut doc, created) =
            MemberDoc::create(&s002, 1, &remote_profile(&s002, "13800000004")).unwrap();
        let patch = ProfilePatch {
            notes: Some("常买绿茶".to_owned()),
            ..ProfilePatch::default()
        };
        let edit = doc.edit(&s002, 2, &patch).unwrap().unwrap();
        let member_id = MemberId::mint(1, 4);
        let registered = foreign_entry(
            &s002,
            1,
            Payload::MemberRegistered {
                member_id,
                change: created,
            },
        );
        let mut edited = foreign_entry(
            &s002,
            2,
            Payload::MemberEdited {
                member_id,
                change: edit,
            },
        );
        if let Payload::MemberEdited { change, .. } = &mut edited.payload {
            *change = protocol::thin::thin(change);
        }
        let feed = |position: u64, entry: &Entry| FeedItem {
            position,
            entry: entry.encode(),
        };
        journal
            .apply_feed(1, vec![feed(1, &registered)], Vec::new())
            .unwrap();
        journal
            .apply_feed(2, vec![feed(2, &edited)], vec![(member_id, None)])
            .unwrap();
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 2);
        assert_eq!(views.member(&member_id).unwrap(), None);
        let phone = Phone::parse("13800000004").unwrap();
        assert_eq!(views.member_by_phone(&phone).unwrap(), None);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    /// The feed's member changes come thin from sync version 3: the store makes them whole
    /// from the changes it holds and keeps the bytes as they were made; one that follows a
    /// change not held here is refused and nothing is applied.
    #[test]
    fn a_thin_member_change_from_the_feed_is_made_whole() {
        use protocol::member::ProfilePatch;
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(5)).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let profile = remote_profile(&s002, "13800000003");
        let (mut doc, created) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let rename = |doc: &mut MemberDoc, name: &str| {
            let patch = ProfilePatch {
                name: Some(name.to_owned()),
                ..ProfilePatch::default()
            };
            doc.edit(&s002, 2, &patch).unwrap().unwrap()
        };
        let mut elsewhere = doc.clone();
        let renamed = rename(&mut doc, "改名会员");
        rename(&mut elsewhere, "别处");
        let unseen = rename(&mut elsewhere, "别处二");
        let member_id = MemberId::mint(1, 3);
        let item = |position, seq, payload| {
            let entry = foreign_entry(&s002, seq, payload);
            let whole = entry.encode();
            let mut thin = entry;
            if let Payload::MemberRegistered { change, .. } | Payload::MemberEdited { change, .. } =
                &mut thin.payload
            {
                *change = protocol::thin::thin(change);
            }
            (
                FeedItem {
                    position,
                    entry: thin.encode(),
                },
                whole,
            )
        };
        let (registered, registered_whole) = item(
            1,
            1,
            Payload::MemberRegistered {
                member_id,
                change: created,
            },
        );
        let (edited, edited_whole) = item(
            2,
            2,
            Payload::MemberEdited {
                member_id,
                change: renamed,
            },
        );
        assert_ne!(edited.entry, edited_whole, "an edit has something to thin");
        for (upto, items) in [(1, vec![registered]), (2, vec![edited])] {
            journal.apply_feed(upto, items, Vec::new()).unwrap();
        }
        let (lost, _) = item(
            3,
            3,
            Payload::MemberEdited {
                member_id,
                change: unseen,
            },
        );
        assert!(matches!(
            journal.apply_feed(3, vec![lost], Vec::new()),
            Err(Rejection::FeedUnreadable { position: 3, .. })
        ));
        journal.flush().unwrap();
        let views = crate::views::Views::new(store.clone());
        assert_eq!(views.feed_applied().unwrap(), 2);
        assert_eq!(
            views.member(&member_id).unwrap().unwrap().profile.name,
            "改名会员"
        );
        let kept: Vec<Vec<u8>> = [1, 2]
            .iter()
            .map(|p| {
                let record: views::FeedRecord = journal.read(&keys::feed(*p)).unwrap().unwrap();
                record.entry
            })
            .collect();
        assert_eq!(kept, vec![registered_whole, edited_whole]);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }

    /// 会员名录: a member this store does not follow comes as listings — found by phone, no
    /// free text, no profile document — and a change of theirs as it is is not taken without
    /// the document; once followed, the history makes the whole profile over the listing, and
    /// a later listing of the member is not taken. A rebuild replays what the store lived
    /// through.
    #[test]
    fn a_listing_finds_the_member_and_gives_way_to_their_history_once_followed() {
        use protocol::member::ProfilePatch;
        use protocol::seal::{MemberKey, change_aad};
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(7)).unwrap();
        journal.hub_routes(true).unwrap();
        let s002 = StoreId::parse("S002").unwrap();
        let member = MemberId::mint(1, 11);
        let key = MemberKey::from_bytes([11; 32]);
        let mut profile = remote_profile(&s002, "13800000011");
        profile.notes = "只在本店说过".into();
        let (mut doc, created) = MemberDoc::create(&s002, 1, &profile).unwrap();
        let mut rename = |name: &str, ms| {
            let patch = ProfilePatch {
                name: Some(name.to_owned()),
                ..ProfilePatch::default()
            };
            let change = doc.edit(&s002, ms, &patch).unwrap().unwrap();
            (change, doc.profile().unwrap())
        };
        let (renamed, after_rename) = rename("改名", 2);
        let (again, after_again) = rename("再改名", 3);
        let sealed = |change: &[u8]| key.seal(&change_aad(&member), change);
        let registered = foreign_entry(
            &s002,
            1,
            Payload::MemberRegistered {
                member_id: member,
                change: sealed(&created),
            },
        );
        let edit = |seq, change: &[u8]| {
            foreign_entry(
                &s002,
                seq,
                Payload::MemberEdited {
                    member_id: member,
                    change: sealed(change),
                },
            )
        };
        let (edited, edited_again) = (edit(2, &renamed), edit(3, &again));
        let item = |position, e: &Entry| FeedItem {
            position,
            entry: e.encode(),
        };
        let listed = |e: &Entry, p: &Profile| protocol::listing::in_place_of(e, member, &key, p);
        let views = crate::views::Views::new(store.clone());
        let items = vec![
            item(1, &listed(&registered, &after_rename)),
            item(2, &listed(&edited, &after_rename)),
        ];
        journal
            .apply_feed(2, items, vec![(member, Some(key.clone()))])
            .unwrap();
        journal.flush().unwrap();
        assert_eq!(views.member_by_phone(&profile.phone).unwrap(), Some(member));
        let seen = views.member(&member).unwrap().unwrap().profile;
        assert_eq!((seen.name.as_str(), seen.notes.as_str()), ("改名", ""));
        assert!(!views.holds_profile(&member).unwrap());
        // A change as it is, of a member whose document is not here: not taken.
        journal
            .apply_feed(3, vec![item(3, &edited_again)], Vec::new())
            .unwrap();
        assert_eq!(views.member(&member).unwrap().unwrap().profile.name, "改名");
        assert!(
            journal
                .read::<views::FeedRecord>(&keys::feed(3))
                .unwrap()
                .is_none()
        );
        // Followed: the history, as it is, gives way over the listings it stood for.
        journal.follow(&[member]).unwrap();
        let history = vec![
            item(1, &registered),
            item(2, &edited),
            item(3, &edited_again),
        ];
        journal.apply_backfill(member, history, true).unwrap();
        journal.flush().unwrap();
        assert!(views.holds_profile(&member).unwrap());
        let whole = views.member(&member).unwrap().unwrap().profile;
        assert_eq!(whole, after_again);
        assert_eq!(views.member_by_phone(&profile.phone).unwrap(), Some(member));
        // Whole here: a listing of theirs is not taken, and headquarters is told again that
        // this store follows them (it would not have sent a listing otherwise).
        let started = journal.follows_started();
        let later = listed(&edit(4, &again), &after_rename);
        journal
            .apply_feed(4, vec![item(4, &later)], Vec::new())
            .unwrap();
        journal.flush().unwrap();
        assert_eq!(views.member(&member).unwrap().unwrap().profile, after_again);
        assert_eq!(journal.follows_started(), started + 1);
        assert_eq!(crate::follow::to_announce(&*store).unwrap(), [member]);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.feed_entries, 3);
    }

    /// The routed feed: a change of a member whose history is not here yet waits for the
    /// history (a return must not come before its sale); rights moved here go in at once and
    /// make the store follow; the history then makes the member whole, and what it brings
    /// twice is taken once. A rebuild replays what the store lived through.
    #[test]
    fn a_members_change_waits_for_their_history_and_rights_moved_here_do_not() {
        use protocol::escrow::Change;
        use protocol::wallet::{Counter, Movement, RightsOp, WalletEvent};
        let store = Arc::new(MemStore::default());
        let mut journal = Journal::open(store.clone(), settings(), seeded_env(6)).unwrap();
        journal.hub_routes(true).unwrap();
        let here = settings().store_id;
        let (s002, hq) = (StoreId::parse("S002").unwrap(), StoreId::hq());
        let member = MemberId::mint(1, 9);
        let op = |change| RightsOp {
            counter: Counter::Principal,
            change,
        };
        let wallet = |origin: &StoreId, seq, movement, change| {
            foreign_entry(
                origin,
                seq,
                Payload::Wallet {
                    member_id: member,
                    event: WalletEvent::Rights { movement },
                    ops: vec![op(change)],
                },
            )
        };
        let topped = wallet(
            &s002,
            1,
            Movement::Recall,
            Change::Credit {
                units: 500,
                total: 500,
            },
        );
        let handed = wallet(
            &s002,
            2,
            Movement::Recall,
            Change::Transfer {
                to: hq.clone(),
                units: 200,
                total: 200,
            },
        );
        let granted = wallet(
            &hq,
            1,
            Movement::Grant,
            Change::Transfer {
                to: here.clone(),
                units: 150,
                total: 150,
            },
        );
        let item = |position, e: &Entry| FeedItem {
            position,
            entry: e.encode(),
        };
        let views = crate::views::Views::new(store.clone());
        // S002's own change of the member, then headquarters' grant to this store.
        journal
            .apply_feed(2, vec![item(2, &handed)], Vec::new())
            .unwrap();
        journal.flush().unwrap();
        assert_eq!(views.wallet(&member).unwrap(), Wallet::default(), "waits");
        journal
            .apply_feed(3, vec![item(3, &granted)], Vec::new())
            .unwrap();
        journal.flush().unwrap();
        assert_eq!(
            views
                .wallet(&member)
                .unwrap()
                .held(&Counter::Principal, &here),
            150
        );
        assert_eq!(
            views.follow_state(&member).unwrap(),
            crate::follow::State::Pending
        );
        assert_eq!(journal.follows_started(), 1);
        // The history: everything up to position 3, the grant already held.
        let history = vec![item(1, &topped), item(2, &handed), item(3, &granted)];
        journal.apply_backfill(member, history, true).unwrap();
        journal.flush().unwrap();
        assert_eq!(
            views.follow_state(&member).unwrap(),
            crate::follow::State::Whole
        );
        let whole = views.wallet(&member).unwrap();
        assert_eq!(whole.balance(&Counter::Principal), 500);
        assert_eq!(whole.held(&Counter::Principal, &here), 150);
        let report = views::rebuild(&*store, &StoreCalendar::default()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.feed_entries, 3);
    }
}
