//! What only headquarters writes: the catalogue, staff and commission rules, member erasure
//! and its own transfer steps.

use super::*;
use assortment::{Refused, not_carried_at};

/// The most members one 批量打标签 request names.
pub const TAG_MEMBERS_MAX: usize = 10_000;
/// Profile changes a tagging writes per append.
const TAG_APPEND: usize = 1_000;

impl Ingest {
    /// 商品资料: checks a change set against the catalogue (barcodes unique chain-wide, bundles
    /// and store prices naming products that exist) and writes it as the next version, in as
    /// many entries of HQ's log as its size needs. Nothing is written if any change is bad.
    pub fn change_catalogue(
        &mut self,
        changes: Vec<CatalogueChange>,
        by: &StaffId,
    ) -> Result<CatalogueWritten, CatalogueError> {
        if changes.is_empty() {
            return Err(CatalogueError::Empty);
        }
        if changes.len() > CATALOGUE_CHANGES_MAX {
            return Err(CatalogueError::Field {
                field: "changes".into(),
                problem: format!("at most {CATALOGUE_CHANGES_MAX} in one change set"),
            });
        }
        let failed = |e: String| CatalogueError::Field {
            field: "storage".into(),
            problem: e,
        };
        let storage = self.storage.clone();
        let views = HubViews::reader(&*storage);
        let mut products: HashMap<&Sku, &protocol::catalogue::Product> = HashMap::new();
        let mut owners: HashMap<&Barcode, &Sku> = HashMap::new();
        let mut named = std::collections::HashSet::new();
        for change in &changes {
            change.check()?;
            let whole = matches!(
                change,
                CatalogueChange::Product(_) | CatalogueChange::Bundle(_)
            );
            if whole && !named.insert(change.sku()) {
                return Err(CatalogueError::Field {
                    field: change.sku().to_string(),
                    problem: "named twice in one change set".into(),
                });
            }
            if let CatalogueChange::Product(p) = change {
                products.insert(&p.sku, p);
            }
        }
        for p in products.values() {
            for code in &p.barcodes {
                if let Some(owner) = owners.insert(code, &p.sku)
                    && *owner != p.sku
                {
                    return Err(CatalogueError::DuplicateBarcode {
                        barcode: code.clone(),
                        owner: owner.clone(),
                    });
                }
                let stored = inventory::sku_of_barcode(&views, code).map_err(failed)?;
                if let Some(owner) = stored
                    && owner != p.sku
                    && products
                        .get(&owner)
                        .is_none_or(|now| now.barcodes.contains(code))
                {
                    return Err(CatalogueError::DuplicateBarcode {
                        barcode: code.clone(),
                        owner,
                    });
                }
            }
        }
        let bundles: std::collections::HashSet<&Sku> = changes
            .iter()
            .filter_map(|c| match c {
                CatalogueChange::Bundle(b) => Some(&b.id),
                _ => None,
            })
            .collect();
        let exists = |sku: &Sku| -> Result<bool, CatalogueError> {
            Ok(products.contains_key(sku)
                || inventory::product(&views, sku).map_err(failed)?.is_some())
        };
        // 门店经营品项 names a product or a bundle.
        let exists_or_bundle = |sku: &Sku| -> Result<bool, CatalogueError> {
            Ok(exists(sku)?
                || bundles.contains(sku)
                || inventory::read::<protocol::catalogue::Bundle>(
                    &views,
                    &inventory::keys::bundle(sku),
                )
                .map_err(failed)?
                .is_some())
        };
        for change in &changes {
            if let CatalogueChange::Carried { sku, .. } = change {
                if !exists_or_bundle(sku)? {
                    return Err(CatalogueError::UnknownSku(sku.clone()));
                }
                continue;
            }
            let named: Vec<&Sku> = match change {
                CatalogueChange::Product(_) | CatalogueChange::Carried { .. } => Vec::new(),
                CatalogueChange::Bundle(b) => b.items.iter().map(|(sku, _)| sku).collect(),
                CatalogueChange::StorePrice { sku, .. }
                | CatalogueChange::StoreLowStock { sku, .. }
                | CatalogueChange::Withdrawn { sku } => vec![sku],
            };
            for sku in named {
                if !exists(sku)? {
                    return Err(CatalogueError::UnknownSku(sku.clone()));
                }
            }
        }
        let current: inventory::CatalogueVersion =
            inventory::read(&views, inventory::keys::CATALOGUE_VERSION)
                .map_err(failed)?
                .unwrap_or_default();
        let version = current.version + 1;
        let count = changes.len();
        let (version, parts) = self.write_catalogue(&views, version, changes, by)?;
        tracing::info!(version, parts, changes = count, by = %by, "catalogue changed");
        Ok(CatalogueWritten {
            version,
            parts,
            changes: count,
        })
    }

    /// 员工 or 提成规则: a staff directory change or commission rules (taking effect tomorrow at
    /// the earliest), checked, as one entry of headquarters' log.
    pub fn hq_write(&mut self, write: HqWrite, by: &StaffId) -> Result<(), HqWriteError> {
        let payload = match write {
            HqWrite::CardLost(member_id) => return self.card_lost(&member_id, by),
            HqWrite::TagMembers { tag, members } => return self.tag_members(&tag, &members, by),
            HqWrite::MoveTiers { moves, as_of } => return self.move_tiers(&moves, as_of, by),
            HqWrite::Tiers(table) => {
                table.check()?;
                Payload::Tiers { table }
            }
            HqWrite::CardRules(rules) => {
                rules.check()?;
                Payload::CardRules { rules }
            }
            HqWrite::RedeemGift { member, gift, key } => {
                return self.redeem_gift(&member, &gift, key, by);
            }
            HqWrite::ReferralRules(rules) => {
                rules.check()?;
                let views = HubViews::reader(&*self.storage);
                let templates = [Some(&rules.level1), rules.level2.as_ref()];
                for t in templates
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.coupon.as_ref())
                {
                    let known = protocol::project::marketing::live_template(&views, t)
                        .map_err(HqWriteError::Storage)?
                        .is_some();
                    if !known {
                        return Err(protocol::rules::RulesError {
                            field: "coupon",
                            message: format!("no coupon template {t} in use"),
                        }
                        .into());
                    }
                }
                Payload::ReferralRules { rules }
            }
            HqWrite::Gifts(table) => {
                self.check_gifts(&table)?;
                Payload::Gifts { table }
            }
            HqWrite::Staff(staff) => {
                protocol::staff::check(&staff)?;
                Payload::Staff { staff }
            }
            HqWrite::Credentials(id, hash) => {
                let views = HubViews::reader(&*self.storage);
                if protocol::staff::read(&views, &id)
                    .map_err(HqWriteError::Storage)?
                    .is_none()
                {
                    return Err(StaffError::Unknown(id).into());
                }
                Payload::StaffCredentials { id, hash }
            }
            HqWrite::Commission(rules) => {
                rules.check(self.calendar.business_date((self.now_ms)()))?;
                Payload::CommissionRules { rules }
            }
            HqWrite::Rules(rules) => {
                rules.check()?;
                Payload::ChainRules { rules }
            }
            HqWrite::Note(note) => Payload::Audit { note },
            HqWrite::Erase(member_id) => self.erasable(&member_id)?,
            HqWrite::MemberPassword { member, hash } => {
                self.member_record(&member)?;
                Payload::Wallet {
                    member_id: member,
                    event: protocol::wallet::WalletEvent::PasswordSet { hash },
                    ops: Vec::new(),
                }
            }
        };
        // Leave room for the envelope; an entry over the limit could never be decoded.
        let bytes = postcard::to_stdvec(&payload).map_or(usize::MAX, |b| b.len());
        if bytes > protocol::entry::ENTRY_BYTES_MAX - 1024 {
            return Err(HqWriteError::TooLarge(bytes));
        }
        let tip = self.tip(&StoreId::hq());
        let tx = TxId::derived(&["hq-write", &tip.next_seq.to_string()]);
        self.write_hq_as(tx, payload, by.clone())
            .map_err(|e| HqWriteError::Storage(e.to_string()))
    }

    /// A gift table whose goods are in the catalogue and whose coupons' templates exist.
    fn check_gifts(&self, table: &protocol::gifts::GiftTable) -> Result<(), HqWriteError> {
        use protocol::campaign::MarketingError;
        use protocol::gifts::GiftKind;
        table.check()?;
        let views = HubViews::reader(&*self.storage);
        for gift in &table.gifts {
            let known = match &gift.kind {
                GiftKind::Goods { sku, .. } => protocol::inventory::product(&views, sku)
                    .map_err(HqWriteError::Storage)?
                    .is_some(),
                GiftKind::Coupon { template } => {
                    protocol::project::marketing::template(&views, template)
                        .map_err(HqWriteError::Storage)?
                        .is_some()
                }
            };
            if !known {
                let what = match &gift.kind {
                    GiftKind::Goods { sku, .. } => format!("no product {sku} in the catalogue"),
                    GiftKind::Coupon { template } => format!("no coupon template {template}"),
                };
                return Err(MarketingError::new("kind", format!("{}: {what}", gift.id)).into());
            }
        }
        Ok(())
    }

    /// 挂失 written by headquarters: the profile change (sealed under the member's key, as a
    /// store seals one) and its audit note, two entries of headquarters' log.
    fn card_lost(&mut self, member_id: &MemberId, by: &StaffId) -> Result<(), HqWriteError> {
        use protocol::member::{CardStatus, ProfilePatch};
        let record = self.member_record(member_id)?;
        let profile = &record.profile;
        let Some(card) = profile.card_no.clone() else {
            return Err(HqWriteError::CardState(format!(
                "member {member_id} has no card"
            )));
        };
        if profile.card_status != CardStatus::Active {
            return Err(HqWriteError::CardState(format!(
                "card {card} is {}, not in use",
                profile.card_status.as_str()
            )));
        }
        let patch = ProfilePatch {
            card_status: Some(CardStatus::Lost),
            ..ProfilePatch::default()
        };
        let edit = self.hq_profile_change(&record, &patch)?;
        let note = Payload::Audit {
            note: protocol::audit::Note::CardLost {
                member_id: *member_id,
                card,
            },
        };
        let tip = self.tip(&StoreId::hq());
        for (n, payload) in [edit, note].into_iter().enumerate() {
            let tx = TxId::derived(&["hq-card-lost", &tip.next_seq.to_string(), &n.to_string()]);
            self.write_hq_as(tx, payload, by.clone())
                .map_err(|e| HqWriteError::Storage(e.to_string()))?;
        }
        tracing::info!(member = %member_id, by = %by, "card reported lost at headquarters");
        Ok(())
    }

    /// 批量打标签: each member without `tag` gets it, as a profile change of headquarters';
    /// all checked before any is written, then written in appends of `TAG_APPEND` (a failure
    /// between them leaves the first tagged: the same list again tags the rest). Tagging
    /// again adds nothing.
    fn tag_members(
        &mut self,
        tag: &str,
        members: &[MemberId],
        by: &StaffId,
    ) -> Result<(), HqWriteError> {
        use protocol::member::ProfilePatch;
        if members.len() > TAG_MEMBERS_MAX {
            return Err(HqWriteError::Tag(format!(
                "at most {TAG_MEMBERS_MAX} members a request: send the list in parts"
            )));
        }
        let patch = ProfilePatch {
            tags_add: vec![tag.to_owned()],
            ..ProfilePatch::default()
        };
        patch
            .validate()
            .map_err(|e| HqWriteError::Tag(format!("tag: {e}")))?;
        let tip = self.tip(&StoreId::hq());
        let mut writes = Vec::new();
        for member_id in members {
            let record = self.member_record(member_id)?;
            if record.profile.tags.iter().any(|t| t == tag) {
                continue;
            }
            if record.profile.tags.len() >= protocol::member::TAGS_MAX {
                return Err(HqWriteError::Tag(format!(
                    "member {member_id} has {} tags already, the most a profile holds",
                    protocol::member::TAGS_MAX
                )));
            }
            let edit = self.hq_profile_change(&record, &patch)?;
            let n = writes.len().to_string();
            let tx = TxId::derived(&["hq-tag", &tip.next_seq.to_string(), &n]);
            writes.push((tx, edit));
        }
        let tagged = writes.len();
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let part: Vec<_> = writes.by_ref().take(TAG_APPEND).collect();
            self.write_hq_keyed(part, Vec::new(), by)
                .map_err(|e| HqWriteError::Storage(e.to_string()))?;
        }
        tracing::info!(%tag, tagged, asked = members.len(), by = %by, "members tagged at headquarters");
        Ok(())
    }

    /// 会员等级评定: each move as the profile change and its audit note. A member no longer in
    /// the tier the review read (moved at a till since) is skipped: the next review sees them;
    /// so is one whose change cannot be made (logged), so one member never holds up the rest.
    fn move_tiers(
        &mut self,
        moves: &[crate::tiers::TierMove],
        as_of: chrono::NaiveDate,
        by: &StaffId,
    ) -> Result<(), HqWriteError> {
        use protocol::member::ProfilePatch;
        let (mut moved, mut skipped, mut failed) = (0usize, 0usize, 0usize);
        for m in moves {
            let record = match self.member_record(&m.member_id) {
                Ok(record) => record,
                Err(HqWriteError::UnknownMember(_)) => {
                    skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if record.profile.tier != m.from {
                skipped += 1;
                continue;
            }
            let patch = ProfilePatch {
                tier: Some(m.to.clone()),
                ..ProfilePatch::default()
            };
            let edit = match self.hq_profile_change(&record, &patch) {
                Ok(edit) => edit,
                Err(e) => {
                    tracing::warn!(member = %m.member_id, error = %e, "tier review: this member's move is not written");
                    failed += 1;
                    continue;
                }
            };
            let note = Payload::Audit {
                note: protocol::audit::Note::TierMoved {
                    member_id: m.member_id,
                    from: m.from.clone(),
                    to: m.to.clone(),
                    why: protocol::tiers::TierWhy::Review {
                        qualifying: m.qualifying,
                        basis: m.basis,
                        as_of,
                    },
                },
            };
            let tip = self.tip(&StoreId::hq());
            for (n, payload) in [edit, note].into_iter().enumerate() {
                let tx = TxId::derived(&[
                    "tier-review",
                    &as_of.to_string(),
                    &tip.next_seq.to_string(),
                    &n.to_string(),
                ]);
                self.write_hq_as(tx, payload, by.clone())
                    .map_err(|e| HqWriteError::Storage(e.to_string()))?;
            }
            moved += 1;
        }
        tracing::info!(%as_of, moved, skipped, failed, by = %by, "tier review written");
        Ok(())
    }

    /// A member headquarters holds, not erased.
    pub(super) fn member_record(
        &self,
        member_id: &MemberId,
    ) -> Result<crate::storage::MemberRecord, HqWriteError> {
        self.storage
            .member(member_id)
            .map_err(|e| HqWriteError::Storage(e.to_string()))?
            .ok_or(HqWriteError::UnknownMember(*member_id))
    }

    /// A profile change written at headquarters, sealed under the member's key as a store
    /// seals one.
    fn hq_profile_change(
        &self,
        record: &crate::storage::MemberRecord,
        patch: &protocol::member::ProfilePatch,
    ) -> Result<Payload, HqWriteError> {
        use protocol::member::MemberDoc;
        let failed = |e: String| HqWriteError::Storage(e);
        let member_id = &record.member_id;
        let key = match self
            .storage
            .member_key(member_id)
            .map_err(|e| failed(e.to_string()))?
        {
            KeyState::Held(key) => Some(key),
            KeyState::Erased => return Err(HqWriteError::UnknownMember(*member_id)),
            KeyState::Unknown => None,
        };
        let mut doc = MemberDoc::load(&record.doc).map_err(|e| failed(e.to_string()))?;
        let change = doc
            .edit(&StoreId::hq(), (self.now_ms)() as i64, patch)
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed("the change changed nothing".into()))?;
        let change = match key {
            Some(key) => key.seal(&protocol::seal::change_aad(member_id), &change),
            None => change,
        };
        Ok(Payload::MemberEdited {
            member_id: *member_id,
            change,
        })
    }

    /// The erasure of a member who may be erased: one headquarters knows, not erased yet, to
    /// whom the chain owes no stored value and who owes no store (both need to know who they
    /// are: refund or collect first).
    pub(super) fn erasable(&self, member_id: &MemberId) -> Result<Payload, HqWriteError> {
        let failed = |e: crate::storage::HubStoreError| HqWriteError::Storage(e.to_string());
        if self.storage.member_key(member_id).map_err(failed)? == KeyState::Erased {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} is erased already"
            )));
        }
        if self.storage.member(member_id).map_err(failed)?.is_none() {
            return Err(HqWriteError::UnknownMember(*member_id));
        }
        let wallet = self
            .storage
            .wallet(member_id)
            .map_err(failed)?
            .unwrap_or_default();
        let yuan =
            |fen: u64| protocol::Money::cny(protocol::Fen(i64::try_from(fen).unwrap_or(i64::MAX)));
        let principal = wallet.balance(&Counter::Principal);
        if principal > 0 {
            return Err(HqWriteError::NotErasable(format!(
                "the chain still owes member {member_id} {} of stored value: refund it first (退卡)",
                yuan(principal)
            )));
        }
        // Prepaid card uses, not coupons: a coupon was given, not bought (and a run dated
        // back issues some already past their last day).
        let uses: u64 = wallet
            .counters
            .iter()
            .filter(
                |(c, _)| matches!(c, Counter::Uses { card } if !wallet.coupons.contains_key(card)),
            )
            .map(|(_, rights)| rights.balance())
            .sum();
        if uses > 0 {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} still has {uses} prepaid card uses: use or refund them first"
            )));
        }
        // What they owe: an offline overdraft, or stored value a fenced store spent twice.
        let owed = wallet
            .owed_total()
            .saturating_add(wallet.overspent_by().values().sum());
        if owed > 0 || wallet.stored_value_signed() < 0 {
            return Err(HqWriteError::NotErasable(format!(
                "member {member_id} still owes {}: collect it first",
                yuan(owed)
            )));
        }
        Ok(Payload::MemberErased {
            member_id: *member_id,
        })
    }

    /// A transfer step of headquarters' own, checked against the transfer as the hub holds it.
    pub fn transfer_step(
        &mut self,
        id: Option<DocId>,
        step: TransferStep,
        by: &StaffId,
    ) -> Result<Transfer, TransferRefused> {
        let hq = StoreId::hq();
        let failed = |e: String| TransferRefused::Storage(e);
        let views = HubViews::reader(&*self.storage);
        let record = protocol::stock::StepRecord {
            step: step.name().to_owned(),
            by: hq.clone(),
            staff: by.clone(),
            at: Hlc::ZERO,
        };
        let id = match id {
            None => {
                let id = DocId::for_entry("T", &hq, self.tip(&hq).next_seq);
                Transfer::open(id.clone(), &hq, &step, record)?;
                if let TransferStep::Requested {
                    lines, from, to, ..
                } = &step
                {
                    for store in [from, to] {
                        if !self.statuses.contains_key(store) {
                            return Err(TransferRefused::Step(TransferError::Text(format!(
                                "store {store} has never synced with headquarters"
                            ))));
                        }
                    }
                    not_carried_at(&views, to, lines).map_err(|e| match e {
                        Refused::Storage(e) => failed(e),
                        Refused::Catalogue(e) => {
                            TransferRefused::Step(TransferError::Text(e.to_string()))
                        }
                    })?;
                    for (sku, qty) in lines {
                        let product = inventory::product(&views, sku)
                            .map_err(failed)?
                            .ok_or_else(|| TransferRefused::UnknownSku(sku.clone()))?;
                        if product.unit == protocol::catalogue::Unit::Piece && qty.0 % 1000 != 0 {
                            return Err(TransferRefused::Step(TransferError::Text(format!(
                                "{sku} is counted in whole pieces"
                            ))));
                        }
                    }
                }
                id
            }
            Some(id) => {
                let transfer: Transfer = inventory::read(&views, &inventory::keys::transfer(&id))
                    .map_err(failed)?
                    .ok_or_else(|| TransferRefused::Unknown(id.clone()))?;
                transfer.check(&hq, &step, &[])?;
                if matches!(step, TransferStep::Approved) {
                    not_carried_at(&views, &transfer.to, &transfer.lines).map_err(|e| match e {
                        Refused::Storage(e) => failed(e),
                        Refused::Catalogue(e) => {
                            TransferRefused::Step(TransferError::Text(e.to_string()))
                        }
                    })?;
                }
                if matches!(step, TransferStep::CancelRequested { .. })
                    && transfer.state != protocol::stock::TransferState::Approved
                {
                    return Err(TransferRefused::Step(TransferError::NotAllowed {
                        who: hq,
                        step: step.name(),
                        state: transfer.state,
                    }));
                }
                id
            }
        };
        let tx = TxId::derived(&["transfer", id.as_str(), step.name()]);
        let payload = Payload::Transfer {
            transfer: id.clone(),
            step,
            changes: Vec::new(),
        };
        self.write_hq_as(tx, payload, by.clone())
            .map_err(|e| failed(e.to_string()))?;
        let views = HubViews::reader(&*self.storage);
        inventory::read(&views, &inventory::keys::transfer(&id))
            .map_err(failed)?
            .ok_or(TransferRefused::Unknown(id))
    }
}

#[cfg(test)]
mod catalogue_tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::catalogue::{Product, Unit};
    use protocol::money::Fen;

    fn product(sku: &str, barcode: &str) -> CatalogueChange {
        CatalogueChange::Product(Product {
            sku: Sku::parse(sku).unwrap(),
            name: "商品".into(),
            barcodes: vec![Barcode::parse(barcode).unwrap()],
            department: String::new(),
            category: String::new(),
            unit: Unit::Piece,
            price: Some(Fen(100)),
            special: None,
            earns_points: true,
            discountable: true,
            active: true,
            low_stock: None,
        })
    }

    #[test]
    fn only_headquarters_writes_the_catalogue_and_barcodes_stay_unique() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let staff = StaffId::parse("hq-buyer").unwrap();
        let written = ingest
            .change_catalogue(vec![product("A1", "6901234567892")], &staff)
            .unwrap();
        assert_eq!((written.version, written.parts), (1, 1));
        // The same barcode on another product, in this set or against the catalogue: refused.
        let clash = ingest.change_catalogue(vec![product("A2", "6901234567892")], &staff);
        assert!(matches!(
            clash,
            Err(CatalogueError::DuplicateBarcode { .. })
        ));
        let twice = ingest.change_catalogue(
            vec![
                product("B1", "6900000000011"),
                product("B2", "6900000000011"),
            ],
            &staff,
        );
        assert!(matches!(
            twice,
            Err(CatalogueError::DuplicateBarcode { .. })
        ));
        // Moving a barcode from A1 to A2 in one set is fine.
        let mut moved = product("A1", "6900000000028");
        if let CatalogueChange::Product(p) = &mut moved {
            p.barcodes.clear();
        }
        ingest
            .change_catalogue(vec![moved, product("A2", "6901234567892")], &staff)
            .unwrap();
        // A store writing a price (a catalogue entry in its own log) is refused at ingest.
        let s001 = StoreId::parse("S001").unwrap();
        let mut entry = crate::ingest::tests::wallet_entry(
            &s001,
            ChainTip::GENESIS,
            MemberId::mint(1, 1),
            vec![],
        );
        entry.payload = Payload::Catalogue {
            version: 9,
            part: 0,
            parts: 1,
            changes: vec![product("A1", "6901234567892")],
        };
        assert!(matches!(
            ingest.ingest(&s001, vec![Sealed::new(entry)], 1),
            Err(IngestError::NotAllowed { seq: 1, .. })
        ));
        ingest.flush().unwrap();
        let views = HubViews::reader(&*storage);
        let a2 = inventory::sku_of_barcode(&views, &Barcode::parse("6901234567892").unwrap());
        assert_eq!(a2.unwrap().unwrap().as_str(), "A2");
        assert!(verify(&*storage).unwrap().is_clean());
        // A stock record nobody's log explains is found.
        let forged = Append {
            store: &s001,
            entries: Vec::new(),
            tip: ChainTip::GENESIS,
            status: StoreStatus::default(),
            feed: Vec::new(),
            feed_len: ingest.feed_len(),
            members: Vec::new(),
            phones: Vec::new(),
            wallets: Vec::new(),
            views: vec![(
                inventory::keys::stock(&s001, &Sku::parse("A1").unwrap()),
                Some(inventory::encode(&(5_000u64, 0u64))),
            )],
            keys: Vec::new(),
            erased: Vec::new(),
            notices: Vec::new(),
        };
        storage.append(forged).unwrap();
        let report = verify(&*storage).unwrap();
        assert!(report.mentions("inventory views"), "{report:?}");
    }
}

#[cfg(test)]
mod forgery_tests {
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::wallet::{Counter, RightsOp};

    #[test]
    fn a_store_cannot_take_back_rights_like_headquarters() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let s001 = StoreId::parse("S001").unwrap();
        let forged = RightsOp {
            counter: Counter::Principal,
            change: Change::Reclaim {
                from: StoreId::parse("S002").unwrap(),
                units: 100,
                total: 100,
            },
        };
        let entry = crate::ingest::tests::wallet_entry(
            &s001,
            ChainTip::GENESIS,
            MemberId::mint(1, 1),
            vec![forged.clone()],
        );
        assert!(matches!(
            ingest.ingest(&s001, vec![Sealed::new(entry)], 1),
            Err(IngestError::NotAllowed { seq: 1, .. })
        ));
        assert_eq!(
            ingest.tip(&s001),
            ChainTip::GENESIS,
            "nothing of the batch was kept"
        );
        // And every replica ignores such a cell write if one ever got through.
        let mut wallet = protocol::wallet::Wallet::default();
        wallet.absorb(&s001, &[forged]);
        assert_eq!(wallet.held(&Counter::Principal, &s001), 0);
    }

    #[test]
    fn a_staff_change_too_large_for_one_entry_is_refused_and_nothing_is_written() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_000)).unwrap();
        let by = StaffId::parse("hq-ops-1").unwrap();
        let record = |i: usize| StaffRecord {
            id: StaffId::parse(&format!("staff-{i:04}-{}", "x".repeat(21))).unwrap(),
            name: "长".repeat(32),
            store: Some(StoreId::parse("S001").unwrap()),
            role: protocol::staff::StaffRole::Cashier,
            active: true,
        };
        let big: Vec<_> = (0..500).map(record).collect();
        let before = ingest.tip(&StoreId::hq());
        assert!(matches!(
            ingest.hq_write(HqWrite::Staff(big), &by),
            Err(HqWriteError::TooLarge(_))
        ));
        assert_eq!(ingest.tip(&StoreId::hq()), before, "nothing written");
        ingest
            .hq_write(HqWrite::Staff((0..100).map(record).collect()), &by)
            .unwrap();
        assert_eq!(ingest.tip(&StoreId::hq()).next_seq, before.next_seq + 1);
        let entry = storage
            .entries(&StoreId::hq(), 1, 1)
            .unwrap()
            .pop()
            .unwrap();
        assert!(Entry::decode(&entry).is_ok(), "what is written can be read");
    }
}
