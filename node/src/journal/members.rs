//! Registering and editing members.

use super::*;

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
        };
        // A tier other than the chain's first is a discount given: the audit log shows it.
        let first = &self.settings.default_tier;
        let note = (profile.tier != *first).then(|| protocol::audit::Note::TierChanged {
            member_id,
            from: first.clone(),
            to: profile.tier.clone(),
        });
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
        let doc_key = keys::document(&id);
        let Some(saved) = crate::sealed::read_bytes(&*self.store, &id, &doc_key)? else {
            return Err(Rejection::MemberNotFound(id));
        };
        let patch = &r.body.patch;
        if let Some(phone) = &patch.phone {
            self.check_phone_free(phone, Some(id))?;
        }
        if let Some(Some(card)) = &patch.card_no {
            self.check_card_free(card, Some(id))?;
        }
        let mut doc = MemberDoc::load(&saved)?;
        let from = doc.profile()?.tier;
        let now_ms = (self.env.now_ms)();
        match doc.edit(&self.settings.store_id, now_ms as i64, patch)? {
            Some(change) => {
                let change = match crate::sealed::member_key(&*self.store, &id)? {
                    crate::sealed::KeyState::Held(k) => {
                        k.seal(&protocol::seal::change_aad(&id), &change)
                    }
                    // A member from before sealing: their changes stay as they were.
                    _ => change,
                };
                let payload = Payload::MemberEdited {
                    member_id: id,
                    change,
                };
                // A tier set by hand is a discount given: the audit log shows it.
                let to = doc.profile()?.tier;
                let note = (to != from).then_some(protocol::audit::Note::TierChanged {
                    member_id: id,
                    from,
                    to,
                });
                let when = self.points_when(now_ms);
                let today = self.settings.calendar.business_date(now_ms);
                self.append_on(&r, now_ms, today, payload, note, |ov| {
                    member_outcome(ov, &id, when)
                })
            }
            None => {
                let when = self.points_when(now_ms);
                self.record_only(&r, |ov| member_outcome(ov, &id, when))
            }
        }
    }
}
