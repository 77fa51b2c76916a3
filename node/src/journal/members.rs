//! Registering and editing members.

use super::*;

use protocol::member::CardRefusal;

impl Journal {
    pub(super) fn register(&mut self, r: Request<NewMember>) -> Result<Outcome, Rejection> {
        let m = &r.body;
        self.check_phone_free(&m.phone, None)?;
        if let Some(card) = &m.card_no {
            self.check_card_free(card, None)?;
        }
        if let Some(referrer) = m.referrer
            && !self.member_exists(&referrer)?
        {
            return Err(Rejection::ReferrerNotFound(referrer));
        }
        let now_ms = (self.env.now_ms)();
        let member_id = MemberId::mint(now_ms, (self.env.random)());
        let profile = Profile {
            name: m.name.trim().to_owned(),
            phone: m.phone.clone(),
            card_no: m.card_no.clone(),
            birthday: m.birthday,
            gender: m.gender,
            tags: m.tags.clone(),
            notes: m.notes.clone(),
            tier: m
                .tier
                .clone()
                .unwrap_or_else(|| self.settings.default_tier.clone()),
            custom: m.custom.clone(),
            home_store: self.settings.store_id.clone(),
            join_date: self.settings.calendar.business_date(now_ms),
            referrer: m.referrer,
            marketing_consent: m.marketing_consent,
            card_status: Default::default(),
            former_cards: Default::default(),
        };
        // A tier other than the chain's first is a discount given: the audit log shows it.
        let first = &self.settings.default_tier;
        let note = (profile.tier != *first)
            .then(|| tier_note(member_id, first, &profile.tier, &m.tier_reason));
        let (_, change) = MemberDoc::create(&self.settings.store_id, now_ms as i64, &profile)?;
        // The member's own key (protocol::seal): their profile enters the log sealed under it,
        // and the key goes to headquarters beside the log. Written first, in the same group.
        let member_key = MemberKey::from_bytes(crate::sealed::draw(&mut *self.env.random));
        let change = member_key.seal(&protocol::seal::change_aad(&member_id), &change);
        let mut batch = Batch::default();
        batch.put(
            crate::sealed::key_of(&member_id),
            member_key.as_bytes().to_vec(),
        );
        self.store.apply(batch)?;
        let payload = Payload::MemberRegistered { member_id, change };
        let when = self.points_when(now_ms);
        let today = self.settings.calendar.business_date(now_ms);
        self.append_on(&r, now_ms, today, payload, note, |ov| {
            member_outcome(ov, &member_id, when)
        })
    }

    pub(super) fn edit(&mut self, r: Request<MemberEdit>) -> Result<Outcome, Rejection> {
        let id = r.body.member_id;
        let (mut doc, before) = self.member_doc(&id)?;
        let patch = &r.body.patch;
        if let Some(phone) = &patch.phone {
            self.check_phone_free(phone, Some(id))?;
        }
        if let Some(card) = &patch.card_no {
            // A card in use is changed by 补卡 (audited, the old number kept on file), not by
            // an edit; a member without one may be given one here.
            if before.card_no.is_some() && before.card_no != *card {
                return Err(Rejection::CardState(
                    "the member has a card: a new one is given by reissuing it (补卡)".into(),
                ));
            }
            if let Some(card) = card {
                if before.former_cards.contains(card) {
                    return Err(Rejection::Card(CardRefusal::Replaced(card.clone())));
                }
                self.check_card_free(card, Some(id))?;
            }
        }
        if let Some(referrer) = &patch.referrer {
            self.check_referrer(&id, before.referrer, referrer)?;
        }
        if patch.card_status.is_some() || !patch.former_cards_add.is_empty() {
            return Err(Rejection::CardState(
                "a card's status changes by 挂失, 解挂, 补卡 or 退卡, not by an edit".into(),
            ));
        }
        let now_ms = (self.env.now_ms)();
        let change = self.profile_change(&id, &mut doc, now_ms, patch)?;
        // A tier set by hand is a discount given: the audit log shows it.
        let to = doc.profile()?.tier;
        let note =
            (to != before.tier).then(|| tier_note(id, &before.tier, &to, &r.body.tier_reason));
        self.append_profile_change(&r, id, now_ms, change, note)
    }

    /// 补填推荐人: a referrer this store holds, set where there is none, never the member
    /// themselves nor one who was referred by them, directly or not (a loop).
    fn check_referrer(
        &self,
        member: &MemberId,
        current: Option<MemberId>,
        referrer: &MemberId,
    ) -> Result<(), Rejection> {
        if !self.member_exists(referrer)? {
            return Err(Rejection::ReferrerNotFound(*referrer));
        }
        let referrer_of = |m: &MemberId| {
            self.member_view(m)
                .ok()
                .flatten()
                .and_then(|v| v.profile.referrer)
        };
        protocol::referral::check_link(member, current, referrer, referrer_of)?;
        Ok(())
    }

    /// 挂失, 解挂 and 补卡: the profile's card changes, with its audit note.
    pub(super) fn card(&mut self, r: Request<CardChange>) -> Result<Outcome, Rejection> {
        use protocol::audit::Note;
        use protocol::member::CardStatus;
        let id = r.body.member_id;
        let (mut doc, before) = self.member_doc(&id)?;
        let in_use = || {
            before.card_no.clone().ok_or_else(|| {
                Rejection::CardState("the member has no card: give one by editing them".into())
            })
        };
        let state = |what: &str| {
            Rejection::CardState(format!(
                "{what} (the card is {})",
                before.card_status.as_str()
            ))
        };
        let (patch, note) = match &r.body.action {
            CardAction::Lost => {
                let card = in_use()?;
                if before.card_status != CardStatus::Active {
                    return Err(state("only a card in use is reported lost"));
                }
                let patch = ProfilePatch {
                    card_status: Some(CardStatus::Lost),
                    ..ProfilePatch::default()
                };
                (
                    patch,
                    Note::CardLost {
                        member_id: id,
                        card,
                    },
                )
            }
            CardAction::Found { check } => {
                let card = in_use()?;
                if before.card_status != CardStatus::Lost {
                    return Err(state("only a card reported lost is found again"));
                }
                let patch = ProfilePatch {
                    card_status: Some(CardStatus::Active),
                    ..ProfilePatch::default()
                };
                let note = Note::CardFound {
                    member_id: id,
                    card,
                    check: *check,
                };
                (patch, note)
            }
            CardAction::Reissue { card_no, check } => {
                if before.filed_cards().any(|c| c == card_no) {
                    return Err(Rejection::CardState(format!(
                        "card {card_no} is this member's own, old or current: give a new number"
                    )));
                }
                self.check_card_free(card_no, Some(id))?;
                if before.former_cards.len() >= protocol::member::FORMER_CARDS_MAX {
                    return Err(Rejection::CardState(format!(
                        "this member has had {} cards: ask headquarters",
                        protocol::member::FORMER_CARDS_MAX
                    )));
                }
                let patch = ProfilePatch {
                    card_no: Some(Some(card_no.clone())),
                    card_status: Some(CardStatus::Active),
                    former_cards_add: before.card_no.iter().cloned().collect(),
                    ..ProfilePatch::default()
                };
                let note = Note::CardReissued {
                    member_id: id,
                    from: before.card_no.clone(),
                    to: card_no.clone(),
                    check: *check,
                };
                (patch, note)
            }
        };
        let now_ms = (self.env.now_ms)();
        let change = self.profile_change(&id, &mut doc, now_ms, &patch)?;
        self.append_profile_change(&r, id, now_ms, change, Some(note))
    }

    /// A member's profile document as stored here, and the profile it reads as.
    pub(super) fn member_doc(&self, id: &MemberId) -> Result<(MemberDoc, Profile), Rejection> {
        let doc_key = keys::document(id);
        let Some(saved) = crate::sealed::read_bytes(&*self.store, id, &doc_key)? else {
            return Err(Rejection::MemberNotFound(*id));
        };
        let doc = MemberDoc::load(&saved)?;
        let profile = doc.profile()?;
        Ok((doc, profile))
    }

    /// The log entry of a profile edit, sealed under the member's key; `None` when it changes
    /// nothing.
    pub(super) fn profile_change(
        &self,
        id: &MemberId,
        doc: &mut MemberDoc,
        now_ms: u64,
        patch: &ProfilePatch,
    ) -> Result<Option<Payload>, Rejection> {
        let Some(change) = doc.edit(&self.settings.store_id, now_ms as i64, patch)? else {
            return Ok(None);
        };
        let change = match crate::sealed::member_key(&*self.store, id)? {
            crate::sealed::KeyState::Held(k) => k.seal(&protocol::seal::change_aad(id), &change),
            // A member from before sealing: their changes stay as they were.
            _ => change,
        };
        Ok(Some(Payload::MemberEdited {
            member_id: *id,
            change,
        }))
    }

    fn append_profile_change<T>(
        &mut self,
        r: &Request<T>,
        id: MemberId,
        now_ms: u64,
        change: Option<Payload>,
        note: Option<protocol::audit::Note>,
    ) -> Result<Outcome, Rejection> {
        let when = self.points_when(now_ms);
        match change {
            Some(payload) => {
                let today = self.settings.calendar.business_date(now_ms);
                self.append_on(r, now_ms, today, payload, note, |ov| {
                    member_outcome(ov, &id, when)
                })
            }
            None => self.record_only(r, |ov| member_outcome(ov, &id, when)),
        }
    }
}

/// The audit note of a tier set by hand: with its reason (the API asks for one), or as before
/// reasons were asked for.
fn tier_note(
    member_id: MemberId,
    from: &str,
    to: &str,
    reason: &Option<String>,
) -> protocol::audit::Note {
    use protocol::audit::Note;
    match reason {
        Some(reason) => Note::TierMoved {
            member_id,
            from: from.to_owned(),
            to: to.to_owned(),
            why: protocol::tiers::TierWhy::ByHand {
                reason: reason.trim().to_owned(),
            },
        },
        None => Note::TierChanged {
            member_id,
            from: from.to_owned(),
            to: to.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{member_of, new_member, request, seeded_env, settings};
    use super::*;
    use crate::store::MemStore;
    use protocol::referral::ReferralRefused;

    /// B registers with A's code; C is linked to B later (补填推荐人). A member cannot be their
    /// own referrer, nor take a second one, nor close a loop (A referred by C); nothing is
    /// written for any of them.
    #[test]
    fn a_referrer_is_set_once_never_to_oneself_nor_into_a_loop() {
        let store = Arc::new(MemStore::default());
        let mut j = Journal::open(store, settings(), seeded_env(41)).unwrap();
        let register = |j: &mut Journal, key: &str, phone: &str, referrer| {
            let mut m = new_member(phone);
            m.referrer = referrer;
            member_of(j.handle(Command::RegisterMember(request(key, m))).unwrap())
        };
        let a = register(&mut j, "reg-00000001", "13900000041", None);
        let b = register(&mut j, "reg-00000002", "13900000042", Some(a));
        let c = register(&mut j, "reg-00000003", "13900000043", None);
        assert_eq!(
            j.member_view(&b).unwrap().unwrap().profile.referrer,
            Some(a)
        );
        let link = |j: &mut Journal, key: &str, member, referrer| {
            j.handle(Command::EditMember(request(
                key,
                MemberEdit {
                    member_id: member,
                    patch: ProfilePatch {
                        referrer: Some(referrer),
                        ..ProfilePatch::default()
                    },
                    tier_reason: None,
                },
            )))
        };
        link(&mut j, "edit-00000001", c, b).unwrap();
        assert_eq!(
            j.member_view(&c).unwrap().unwrap().profile.referrer,
            Some(b)
        );
        let tip = j.tip.next_seq;
        let refused = |r: Result<Reply, Rejection>| match r {
            Err(Rejection::Referral(why)) => why,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            refused(link(&mut j, "edit-00000002", a, a)),
            ReferralRefused::SelfReferral
        );
        assert_eq!(
            refused(link(&mut j, "edit-00000003", c, a)),
            ReferralRefused::AlreadyReferred(b)
        );
        assert_eq!(
            refused(link(&mut j, "edit-00000004", a, c)),
            ReferralRefused::Loop(c)
        );
        assert_eq!(j.tip.next_seq, tip, "nothing written");
        let unknown = MemberId::mint(1, 1);
        assert!(matches!(
            link(&mut j, "edit-00000005", a, unknown),
            Err(Rejection::ReferrerNotFound(_))
        ));
    }
}
