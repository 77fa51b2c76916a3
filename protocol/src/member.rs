//! Member profiles (会员资料) as automerge documents, so that two stores editing different fields
//! of one member while offline both keep their edit.
//!
//! A profile travels as automerge change bytes inside log entries. The document's actor is
//! derived from the store id, and every commit's time is passed in: nothing here reads a clock.
//! Tags and custom attributes are maps, so concurrent additions at two stores both survive.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ObjId, ObjType, ROOT, ReadDoc};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{CardNo, IdError, MemberId, StoreId};
use crate::phone::{Phone, PhoneError};
use crate::seal::IndexKey;

pub const NAME_CHARS_MAX: usize = 64;
pub const NOTES_CHARS_MAX: usize = 1_000;
pub const TAG_CHARS_MAX: usize = 32;
pub const TAGS_MAX: usize = 50;
pub const CUSTOM_KEY_CHARS_MAX: usize = 32;
pub const CUSTOM_VALUE_CHARS_MAX: usize = 256;
pub const CUSTOM_MAX: usize = 50;
pub const TIER_CHARS_MAX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    #[default]
    Unspecified,
}

impl Gender {
    fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Unspecified => "unspecified",
        }
    }

    fn parse(s: &str) -> Gender {
        match s {
            "female" => Gender::Female,
            "male" => Gender::Male,
            _ => Gender::Unspecified,
        }
    }
}

/// 卡状态: whether the member's card finds them at a till.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    #[default]
    Active,
    /// 挂失: reported lost; the card number finds no one until it is found again (解挂) or
    /// replaced (补卡).
    Lost,
    /// 退卡: the membership was closed and what it held paid back.
    Closed,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Lost => "lost",
            CardStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> CardStatus {
        match s {
            "lost" => CardStatus::Lost,
            "closed" => CardStatus::Closed,
            _ => CardStatus::Active,
        }
    }
}

/// Why a card number does not find its member at a till.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardRefusal {
    #[error("card {0} was reported lost (已挂失): find the member by phone")]
    Lost(CardNo),
    #[error("card {0} was replaced by a new card (已补卡)")]
    Replaced(CardNo),
    #[error("card {0} belongs to a closed membership (已退卡)")]
    Closed(CardNo),
}

/// The most card numbers a member may have held before their current one.
pub const FORMER_CARDS_MAX: usize = 20;
/// A former card number's key at the document's root (one key each, so two stores reissuing
/// the same member's card at once both keep what they wrote).
const FORMER_CARD: &str = "former_card:";

/// A member's profile as read from the merged document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub phone: Phone,
    pub card_no: Option<CardNo>,
    pub birthday: Option<NaiveDate>,
    pub gender: Gender,
    pub tags: BTreeSet<String>,
    pub notes: String,
    pub tier: String,
    pub custom: BTreeMap<String, String>,
    pub home_store: StoreId,
    pub join_date: NaiveDate,
    pub referrer: Option<MemberId>,
    /// 营销同意: the member agreed to marketing messages (PIPL: asked for, never assumed;
    /// transactional notices do not need it).
    #[serde(default)]
    pub marketing_consent: bool,
    #[serde(default)]
    pub card_status: CardStatus,
    /// Card numbers held before a reissue (补卡): still filed under, so an old card says it was
    /// replaced, and is never given to another member.
    #[serde(default)]
    pub former_cards: BTreeSet<CardNo>,
}

/// A partial edit. `None` leaves a field alone; for nullable fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub card_no: Option<Option<CardNo>>,
    pub birthday: Option<Option<NaiveDate>>,
    pub gender: Option<Gender>,
    pub tags_add: Vec<String>,
    pub tags_remove: Vec<String>,
    pub notes: Option<String>,
    pub tier: Option<String>,
    pub custom_set: BTreeMap<String, String>,
    pub custom_remove: Vec<String>,
    #[serde(default)]
    pub marketing_consent: Option<bool>,
    /// Written only by the card's own actions (挂失, 解挂, 补卡, 退卡), never by a profile edit.
    #[serde(default)]
    pub card_status: Option<CardStatus>,
    #[serde(default)]
    pub former_cards_add: Vec<CardNo>,
    /// 补填推荐人: set once, where there is none (the journal checks for loops).
    #[serde(default)]
    pub referrer: Option<MemberId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{field} is too long (at most {max} characters)")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("too many {field} (at most {max})")]
    TooMany { field: &'static str, max: usize },
    #[error("{field} holds a control or text-direction character, which a receipt cannot show")]
    Unprintable { field: &'static str },
    #[error("a birthday is a day from 1900 to 2099")]
    Birthday,
    #[error("the stored profile is damaged: {0}")]
    Damaged(String),
}

impl ProfileError {
    /// The profile field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ProfileError::TooLong { field, .. }
            | ProfileError::Empty { field }
            | ProfileError::TooMany { field, .. }
            | ProfileError::Unprintable { field } => Some(field),
            ProfileError::Birthday => Some("birthday"),
            ProfileError::Damaged(_) => None,
        }
    }
}

/// Characters a name or note may not hold: controls (NUL, ESC, …) and the ones that reorder
/// or hide text (U+202E would print a name backwards on a receipt).
fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Characters that show nothing: a name of only these is empty.
fn invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn text(field: &'static str, value: &str, max: usize, required: bool) -> Result<(), ProfileError> {
    if value.chars().any(unprintable) {
        return Err(ProfileError::Unprintable { field });
    }
    if required && value.chars().all(invisible) {
        return Err(ProfileError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(ProfileError::TooLong { field, max });
    }
    Ok(())
}

/// A tier's name as a profile would hold it (headquarters' tier table checks its names so).
pub fn check_tier(name: &str) -> Result<(), ProfileError> {
    text("tier", name, TIER_CHARS_MAX, true)
}

fn birthday(day: Option<NaiveDate>) -> Result<(), ProfileError> {
    use chrono::Datelike;
    match day.is_none_or(|d| (1900..=2099).contains(&d.year())) {
        true => Ok(()),
        false => Err(ProfileError::Birthday),
    }
}

fn custom_entries<'a>(
    entries: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<(), ProfileError> {
    for (key, value) in entries {
        text("custom attribute name", key, CUSTOM_KEY_CHARS_MAX, true)?;
        text(
            "custom attribute value",
            value,
            CUSTOM_VALUE_CHARS_MAX,
            false,
        )?;
    }
    Ok(())
}

/// The most members a search answers, and the longest search text.
pub const SEARCH_RESULTS_MAX: usize = 20;
pub const SEARCH_CHARS_MAX: usize = 32;

/// 会员搜索's index, the same at a store and at headquarters: a member is filed under each
/// character and each pair of adjacent characters of the name (lowercased), under the phone's
/// last four digits and under the card number, as one empty record `<term prefix><member id>`
/// per term, each term blinded by the replica's [`IndexKey`] (no name or phone in the keys on
/// disk). A search
/// then reads the members under one term instead of every member ([`search_index`]).
pub const SEARCH_INDEX: &[u8] = b"sx/";

fn name_term(index: &IndexKey, term: &str) -> Vec<u8> {
    format!("sx/n/{}/", index.blind("name", term)).into_bytes()
}

fn tail_term(index: &IndexKey, tail: &str) -> Vec<u8> {
    format!("sx/t/{}/", index.blind("tail", tail)).into_bytes()
}

fn card_term(index: &IndexKey, card: &str) -> Vec<u8> {
    format!("sx/c/{}/", index.blind("card", card)).into_bytes()
}

/// The name terms under one of which every member whose name matches `query` is filed: the
/// query itself if it is one character, else each pair of adjacent characters in it. Any one
/// of them is enough; the rarest is cheapest.
fn name_query_terms(query: &str) -> BTreeSet<String> {
    let query: Vec<char> = query.trim().to_lowercase().chars().collect();
    match query.len() {
        0 => BTreeSet::new(),
        1 => BTreeSet::from([query[0].to_string()]),
        _ => query
            .windows(2)
            .map(|pair| pair.iter().collect::<String>())
            .collect(),
    }
}

/// The last four digits of `query` if it is a phone tail a search accepts (4 or more digits).
fn phone_tail(query: &str) -> Option<&str> {
    let query = query.trim();
    (query.len() >= 4 && query.bytes().all(|b| b.is_ascii_digit()))
        .then(|| &query[query.len() - 4..])
}

/// 会员搜索 through the index: the first `limit` members in id order that match `query`
/// ([`Profile::matches`]), exactly as reading every member would answer. `postings(prefix)`
/// lists the keys under an index prefix in key order; `load` reads one member. It reads the
/// members under the card number, the phone tail and the query's rarest name term; each source
/// yields its first `limit` matches in id order, so the first `limit` of their union are the
/// answer.
pub fn search_index<T, E>(
    query: &str,
    limit: usize,
    index: &IndexKey,
    mut postings: impl FnMut(&[u8]) -> Result<Vec<Vec<u8>>, E>,
    mut load: impl FnMut(&MemberId) -> Result<Option<T>, E>,
    profile: impl Fn(&T) -> &Profile,
) -> Result<Vec<T>, E> {
    let mut found: BTreeMap<String, T> = BTreeMap::new();
    let mut read = |found: &mut BTreeMap<String, T>, ids: Vec<MemberId>| {
        let mut matched = 0;
        for id in ids {
            if let Some(member) = load(&id)?
                && profile(&member).matches(query)
            {
                found.insert(id.to_string(), member);
                matched += 1;
                if matched == limit {
                    break;
                }
            }
        }
        Ok::<_, E>(())
    };
    let ids = |prefix: &[u8], keys: Vec<Vec<u8>>| -> Vec<MemberId> {
        keys.iter()
            .filter_map(|key| {
                let id = std::str::from_utf8(key.get(prefix.len()..)?).ok()?;
                MemberId::parse(id).ok()
            })
            .collect()
    };
    let prefix = card_term(index, query.trim());
    let keys = postings(&prefix)?;
    read(&mut found, ids(&prefix, keys))?;
    if let Some(tail) = phone_tail(query) {
        let prefix = tail_term(index, tail);
        let keys = postings(&prefix)?;
        read(&mut found, ids(&prefix, keys))?;
    }
    let mut rarest: Option<Vec<MemberId>> = None;
    for term in name_query_terms(query) {
        let prefix = name_term(index, &term);
        let under = ids(&prefix, postings(&prefix)?);
        let none = under.is_empty();
        if rarest
            .as_ref()
            .is_none_or(|fewest| under.len() < fewest.len())
        {
            rarest = Some(under);
        }
        if none {
            break;
        }
    }
    read(&mut found, rarest.unwrap_or_default())?;
    Ok(found.into_values().take(limit).collect())
}

impl Profile {
    /// 会员名录: what a store that does not follow the member holds of them (the routed feed,
    /// `crate::route`) — enough to find them offline by phone, card, code or name, check
    /// their card and give their tier and birthday — without the free text (notes and custom
    /// attributes), which comes with their whole profile once the store follows them.
    pub fn listing(&self) -> Profile {
        Profile {
            notes: String::new(),
            custom: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// 会员搜索: whether this member answers a search typed at the till or at headquarters —
    /// part of the name (any case), the phone's last digits (4 or more), or the card number.
    pub fn matches(&self, query: &str) -> bool {
        let query = query.trim();
        if query.is_empty() {
            return false;
        }
        let digits = query.len() >= 4 && query.bytes().all(|b| b.is_ascii_digit());
        self.name.to_lowercase().contains(&query.to_lowercase())
            || (digits && self.phone.as_str().ends_with(query))
            || self.usable_card().is_some_and(|c| c.as_str() == query)
    }

    /// The index records ([`SEARCH_INDEX`]) that file member `id` with this profile.
    pub fn search_keys(&self, id: &MemberId, index: &IndexKey) -> BTreeSet<Vec<u8>> {
        let name: Vec<char> = self.name.to_lowercase().chars().collect();
        let mut terms: BTreeSet<Vec<u8>> = name
            .iter()
            .map(|c| name_term(index, &c.to_string()))
            .collect();
        terms.extend(
            name.windows(2)
                .map(|pair| name_term(index, &pair.iter().collect::<String>())),
        );
        let phone = self.phone.as_str();
        terms.insert(tail_term(index, &phone[phone.len().saturating_sub(4)..]));
        // A card reported lost or closed finds no one by search either.
        if let Some(card) = self.usable_card() {
            terms.insert(card_term(index, card.as_str()));
        }
        let id = id.to_string();
        terms
            .into_iter()
            .map(|mut key| {
                key.extend(id.as_bytes());
                key
            })
            .collect()
    }

    /// The card number that finds this member at a till: their current one, unless it was
    /// reported lost or the membership closed.
    pub fn usable_card(&self) -> Option<&CardNo> {
        self.card_no
            .as_ref()
            .filter(|_| self.card_status == CardStatus::Active)
    }

    /// Whether `card` (filed under this member) finds them, and why not.
    pub fn card_finds(&self, card: &CardNo) -> Result<(), CardRefusal> {
        if self.card_no.as_ref() != Some(card) {
            return Err(CardRefusal::Replaced(card.clone()));
        }
        match self.card_status {
            CardStatus::Active => Ok(()),
            CardStatus::Lost => Err(CardRefusal::Lost(card.clone())),
            CardStatus::Closed => Err(CardRefusal::Closed(card.clone())),
        }
    }

    /// Every card number filed under this member: the current one and the ones it replaced.
    pub fn filed_cards(&self) -> impl Iterator<Item = &CardNo> {
        self.card_no.iter().chain(&self.former_cards)
    }

    pub fn validate(&self) -> Result<(), ProfileError> {
        text("name", &self.name, NAME_CHARS_MAX, true)?;
        birthday(self.birthday)?;
        text("notes", &self.notes, NOTES_CHARS_MAX, false)?;
        text("tier", &self.tier, TIER_CHARS_MAX, true)?;
        if self.tags.len() > TAGS_MAX {
            return Err(ProfileError::TooMany {
                field: "tags",
                max: TAGS_MAX,
            });
        }
        for tag in &self.tags {
            text("tag", tag, TAG_CHARS_MAX, true)?;
        }
        if self.custom.len() > CUSTOM_MAX {
            return Err(ProfileError::TooMany {
                field: "custom attributes",
                max: CUSTOM_MAX,
            });
        }
        if self.former_cards.len() > FORMER_CARDS_MAX {
            return Err(ProfileError::TooMany {
                field: "former cards",
                max: FORMER_CARDS_MAX,
            });
        }
        custom_entries(self.custom.iter())
    }
}

impl ProfilePatch {
    pub fn validate(&self) -> Result<(), ProfileError> {
        if let Some(name) = &self.name {
            text("name", name, NAME_CHARS_MAX, true)?;
        }
        if let Some(day) = self.birthday {
            birthday(day)?;
        }
        if let Some(notes) = &self.notes {
            text("notes", notes, NOTES_CHARS_MAX, false)?;
        }
        if let Some(tier) = &self.tier {
            text("tier", tier, TIER_CHARS_MAX, true)?;
        }
        if self.tags_add.len() + self.tags_remove.len() > TAGS_MAX {
            return Err(ProfileError::TooMany {
                field: "tags",
                max: TAGS_MAX,
            });
        }
        for tag in self.tags_add.iter().chain(&self.tags_remove) {
            text("tag", tag, TAG_CHARS_MAX, true)?;
        }
        if self.custom_set.len() + self.custom_remove.len() > CUSTOM_MAX {
            return Err(ProfileError::TooMany {
                field: "custom attributes",
                max: CUSTOM_MAX,
            });
        }
        custom_entries(self.custom_set.iter())?;
        for key in &self.custom_remove {
            text("custom attribute name", key, CUSTOM_KEY_CHARS_MAX, true)?;
        }
        if self.former_cards_add.len() > FORMER_CARDS_MAX {
            return Err(ProfileError::TooMany {
                field: "former cards",
                max: FORMER_CARDS_MAX,
            });
        }
        Ok(())
    }
}

/// The automerge document behind one member's profile.
#[derive(Debug, Clone)]
pub struct MemberDoc {
    doc: AutoCommit,
}

fn actor_for(store: &StoreId) -> ActorId {
    ActorId::from(store.as_str().as_bytes())
}

fn damaged(e: impl std::fmt::Display) -> ProfileError {
    ProfileError::Damaged(e.to_string())
}

impl MemberDoc {
    /// Creates the document for a new member; returns it and the change to put in the log.
    pub fn create(
        store: &StoreId,
        time_ms: i64,
        profile: &Profile,
    ) -> Result<(Self, Vec<u8>), ProfileError> {
        profile.validate()?;
        // The default actor is replaced before any operation, so no random bits reach the document.
        let mut doc = MemberDoc {
            doc: AutoCommit::default().with_actor(actor_for(store)),
        };
        doc.write_profile(profile).map_err(damaged)?;
        let change = doc
            .commit(time_ms)
            .ok_or_else(|| damaged("empty profile"))?;
        Ok((doc, change))
    }

    /// Rebuilds a document from a creation change (as read from the log).
    pub fn from_change(change: &[u8]) -> Result<Self, ProfileError> {
        let mut doc = MemberDoc {
            doc: AutoCommit::default(),
        };
        doc.apply_change(change)?;
        Ok(doc)
    }

    pub fn load(saved: &[u8]) -> Result<Self, ProfileError> {
        AutoCommit::load(saved)
            .map(|doc| MemberDoc { doc })
            .map_err(damaged)
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The hash of this document's change that starts with `prefix` (a dependency of a thin
    /// change, `crate::thin`): the heads first, where a new edit almost always points.
    pub fn change_starting(&mut self, prefix: &[u8]) -> Option<[u8; 32]> {
        let heads = self.doc.get_heads();
        if let Some(head) = heads.iter().find(|h| h.0.starts_with(prefix)) {
            return Some(head.0);
        }
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| c.hash().0)
            .find(|h| h.starts_with(prefix))
    }

    /// The hashes of every change of this document: what a replica keeps of an erased member,
    /// so a thin change of theirs still in flight can be made whole (`crate::thin`) and skipped.
    pub fn change_hashes(&mut self) -> Vec<[u8; 32]> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| c.hash().0)
            .collect()
    }

    /// Applies a change made at any replica. Applying one twice is harmless.
    pub fn apply_change(&mut self, change: &[u8]) -> Result<(), ProfileError> {
        let change = Change::from_bytes(change.to_vec()).map_err(damaged)?;
        self.doc.apply_changes([change]).map_err(damaged)
    }

    /// Merges another replica's copy of the same member into this one.
    pub fn merge(&mut self, other: &mut MemberDoc) -> Result<(), ProfileError> {
        self.doc.merge(&mut other.doc).map(|_| ()).map_err(damaged)
    }

    /// Edits at `store`; returns the change for the log, or `None` when nothing changed.
    pub fn edit(
        &mut self,
        store: &StoreId,
        time_ms: i64,
        patch: &ProfilePatch,
    ) -> Result<Option<Vec<u8>>, ProfileError> {
        patch.validate()?;
        self.doc.set_actor(actor_for(store));
        self.write_patch(patch).map_err(damaged)?;
        Ok(self.commit(time_ms))
    }

    fn commit(&mut self, time_ms: i64) -> Option<Vec<u8>> {
        self.doc
            .commit_with(CommitOptions::default().with_time(time_ms))?;
        self.doc
            .get_last_local_change()
            .map(|c| c.raw_bytes().to_vec())
    }

    fn write_profile(&mut self, p: &Profile) -> Result<(), automerge::AutomergeError> {
        let d = &mut self.doc;
        d.put(ROOT, "schema", 1_u64)?;
        d.put(ROOT, "home_store", p.home_store.as_str())?;
        d.put(ROOT, "join_date", p.join_date.to_string())?;
        if let Some(referrer) = p.referrer {
            d.put(ROOT, "referrer", referrer.to_string())?;
        }
        d.put_object(ROOT, "tags", ObjType::Map)?;
        d.put_object(ROOT, "custom", ObjType::Map)?;
        let patch = ProfilePatch {
            name: Some(p.name.clone()),
            phone: Some(p.phone.clone()),
            card_no: Some(p.card_no.clone()),
            birthday: Some(p.birthday),
            gender: Some(p.gender),
            tags_add: p.tags.iter().cloned().collect(),
            notes: Some(p.notes.clone()),
            tier: Some(p.tier.clone()),
            custom_set: p.custom.clone(),
            marketing_consent: Some(p.marketing_consent),
            card_status: (p.card_status != CardStatus::Active).then_some(p.card_status),
            former_cards_add: p.former_cards.iter().cloned().collect(),
            ..ProfilePatch::default()
        };
        self.write_patch(&patch)
    }

    fn write_patch(&mut self, p: &ProfilePatch) -> Result<(), automerge::AutomergeError> {
        self.put_text("name", p.name.as_deref())?;
        self.put_text("phone", p.phone.as_ref().map(Phone::as_str))?;
        self.put_text("notes", p.notes.as_deref())?;
        self.put_text("tier", p.tier.as_deref())?;
        self.put_text("gender", p.gender.map(Gender::as_str))?;
        let consent = |yes: bool| if yes { "yes" } else { "no" };
        self.put_text("consent", p.marketing_consent.map(consent))?;
        if let Some(card) = &p.card_no {
            self.put_optional("card_no", card.as_ref().map(|c| c.to_string()))?;
        }
        if let Some(birthday) = &p.birthday {
            self.put_optional("birthday", birthday.map(|b| b.to_string()))?;
        }
        self.put_text("card_status", p.card_status.map(CardStatus::as_str))?;
        self.put_text("referrer", p.referrer.map(|r| r.to_string()).as_deref())?;
        for card in &p.former_cards_add {
            self.put_text(&format!("{FORMER_CARD}{card}"), Some("replaced"))?;
        }
        let tags = self.map("tags")?;
        for tag in &p.tags_add {
            self.doc.put(&tags, tag.as_str(), true)?;
        }
        for tag in &p.tags_remove {
            self.doc.delete(&tags, tag.as_str())?;
        }
        let custom = self.map("custom")?;
        for (key, value) in &p.custom_set {
            self.doc.put(&custom, key.as_str(), value.as_str())?;
        }
        for key in &p.custom_remove {
            self.doc.delete(&custom, key.as_str())?;
        }
        Ok(())
    }

    /// Writes a field only when it differs, so an edit that changes nothing makes no change.
    fn put_text(
        &mut self,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), automerge::AutomergeError> {
        match value {
            Some(v) if self.string(key).as_deref() != Some(v) => self.doc.put(ROOT, key, v),
            _ => Ok(()),
        }
    }

    fn put_optional(
        &mut self,
        key: &str,
        value: Option<String>,
    ) -> Result<(), automerge::AutomergeError> {
        match value {
            Some(v) => self.put_text(key, Some(&v)),
            None if self.string(key).is_some() => self.doc.delete(ROOT, key),
            None => Ok(()),
        }
    }

    fn map(&self, key: &str) -> Result<ObjId, automerge::AutomergeError> {
        match self.doc.get(ROOT, key)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(automerge::AutomergeError::InvalidObjId(key.to_owned())),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.string_in(&ROOT, key)
    }

    fn string_in(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.doc.get(obj, key) {
            Ok(Some((value, _))) => value.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Reads the merged profile.
    pub fn profile(&self) -> Result<Profile, ProfileError> {
        let required = |key: &'static str| {
            self.string(key)
                .ok_or_else(|| damaged(format!("{key} missing")))
        };
        let date = |s: String| s.parse::<NaiveDate>().map_err(damaged);
        let tags_id = self.map("tags").map_err(damaged)?;
        let custom_id = self.map("custom").map_err(damaged)?;
        let custom = self
            .doc
            .keys(&custom_id)
            .filter_map(|k| self.string_in(&custom_id, &k).map(|v| (k, v)))
            .collect();
        Ok(Profile {
            name: required("name")?,
            phone: Phone::parse(&required("phone")?).map_err(|e: PhoneError| damaged(e))?,
            card_no: self
                .string("card_no")
                .map(|c| CardNo::parse(&c))
                .transpose()
                .map_err(|e: IdError| damaged(e))?,
            birthday: self.string("birthday").map(date).transpose()?,
            gender: Gender::parse(&self.string("gender").unwrap_or_default()),
            tags: self.doc.keys(&tags_id).collect(),
            notes: self.string("notes").unwrap_or_default(),
            tier: required("tier")?,
            custom,
            home_store: StoreId::parse(&required("home_store")?).map_err(damaged)?,
            join_date: date(required("join_date")?)?,
            referrer: self
                .string("referrer")
                .map(|r| MemberId::parse(&r))
                .transpose()
                .map_err(damaged)?,
            marketing_consent: self.string("consent").as_deref() == Some("yes"),
            card_status: CardStatus::parse(&self.string("card_status").unwrap_or_default()),
            former_cards: self
                .doc
                .keys(ROOT)
                .filter_map(|k| k.strip_prefix(FORMER_CARD).map(CardNo::parse))
                .collect::<Result<_, _>>()
                .map_err(|e: IdError| damaged(e))?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn names_with_controls_or_hidden_text_and_impossible_birthdays_are_refused() {
        let mut p = sample("S001");
        p.name = "王五".into();
        assert_eq!(p.validate(), Ok(()));
        for bad in [
            "王\u{0}五",
            "\u{202E}五王",
            "王\u{1b}[31m",
            "\u{200B}",
            " \u{FEFF} ",
        ] {
            p.name = bad.into();
            assert!(p.validate().is_err(), "{bad:?}");
        }
        p.name = "王五".into();
        for year in [1, 1899, 2100, 2999] {
            p.birthday = NaiveDate::from_ymd_opt(year, 1, 1);
            assert_eq!(p.validate(), Err(ProfileError::Birthday), "{year}");
        }
        p.birthday = NaiveDate::from_ymd_opt(1990, 5, 17);
        assert_eq!(p.validate(), Ok(()));
    }

    proptest::proptest! {
        /// Whatever a search matches by name or phone tail is filed under the terms the
        /// search reads: every name term of the query, and the query's phone-tail term.
        #[test]
        fn a_match_is_filed_under_the_terms_its_query_reads(
            name in "[张王李aAbB 1-]{1,8}",
            query in "[张王李aAbB 1-]{1,4}",
            digits in "[0-9]{8}",
            tail_len in 4usize..=11,
        ) {
            let mut profile = sample("S001");
            profile.name = name;
            profile.phone = Phone::parse(&format!("139{digits}")).unwrap();
            let id = MemberId::mint(1, 2);
            let index = IndexKey::from_bytes([9; 32]);
            let keys = profile.search_keys(&id, &index);
            let filed = |prefix: Vec<u8>| {
                let mut key = prefix;
                key.extend(id.to_string().as_bytes());
                keys.contains(&key)
            };
            if profile.name.to_lowercase().contains(&query.trim().to_lowercase())
                && !query.trim().is_empty()
            {
                proptest::prop_assert!(profile.matches(&query));
                for term in name_query_terms(&query) {
                    proptest::prop_assert!(filed(name_term(&index, &term)), "{term:?} not filed");
                }
            }
            let tail = &profile.phone.as_str()[11 - tail_len..];
            proptest::prop_assert!(profile.matches(tail));
            proptest::prop_assert!(filed(tail_term(&index, phone_tail(tail).unwrap())));
        }
    }

    pub(crate) fn sample(store: &str) -> Profile {
        Profile {
            name: "张三".to_owned(),
            phone: Phone::parse("13812341234").unwrap(),
            card_no: None,
            birthday: NaiveDate::from_ymd_opt(1990, 5, 17),
            gender: Gender::Female,
            tags: BTreeSet::from(["vip".to_owned()]),
            notes: String::new(),
            tier: "standard".to_owned(),
            custom: BTreeMap::new(),
            home_store: StoreId::parse(store).unwrap(),
            join_date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            referrer: None,
            marketing_consent: false,
            card_status: Default::default(),
            former_cards: Default::default(),
        }
    }

    fn store(s: &str) -> StoreId {
        StoreId::parse(s).unwrap()
    }

    #[test]
    fn a_search_finds_part_of_the_name_the_phone_tail_or_the_card() {
        let mut p = sample("S001");
        p.name = "Zhang 张三".to_owned();
        p.card_no = Some(CardNo::parse("VIP0001").unwrap());
        for yes in ["张", "zhang", "1234", "41234", "VIP0001"] {
            assert!(p.matches(yes), "{yes}");
        }
        for no in ["", " ", "李", "123", "1381", "VIP", "9999"] {
            assert!(!p.matches(no), "{no}");
        }
    }

    #[test]
    fn a_lost_card_finds_no_one_and_a_replaced_one_says_so_after_two_stores_reissue_at_once() {
        let card = |s: &str| CardNo::parse(s).unwrap();
        let mut p = sample("S001");
        p.card_no = Some(card("VIP0001"));
        let (origin, created) = MemberDoc::create(&store("S001"), 1, &p).unwrap();
        let lost = ProfilePatch {
            card_status: Some(CardStatus::Lost),
            ..ProfilePatch::default()
        };
        let mut a = origin.clone();
        a.edit(&store("S001"), 2, &lost).unwrap().unwrap();
        let now = a.profile().unwrap();
        assert_eq!(
            now.card_finds(&card("VIP0001")),
            Err(CardRefusal::Lost(card("VIP0001")))
        );
        assert!(
            !now.matches("VIP0001"),
            "a lost card is not found by search"
        );
        assert!(now.matches("张三"), "the member still is, by name");
        // Two stores each reissue a card while apart: one number wins, both old ones are kept.
        let mut b = MemberDoc::from_change(&created).unwrap();
        let reissue = |new: &str| ProfilePatch {
            card_no: Some(Some(card(new))),
            card_status: Some(CardStatus::Active),
            former_cards_add: vec![card("VIP0001")],
            ..ProfilePatch::default()
        };
        a.edit(&store("S001"), 3, &reissue("VIP0002"))
            .unwrap()
            .unwrap();
        b.edit(&store("S002"), 3, &reissue("VIP0003"))
            .unwrap()
            .unwrap();
        a.merge(&mut b).unwrap();
        let merged = a.profile().unwrap();
        assert_eq!(merged.former_cards, [card("VIP0001")].into());
        let current = merged.card_no.clone().unwrap();
        assert_eq!(merged.card_finds(&current), Ok(()));
        assert_eq!(
            merged.card_finds(&card("VIP0001")),
            Err(CardRefusal::Replaced(card("VIP0001")))
        );
        assert_eq!(merged.filed_cards().count(), 2);
    }

    #[test]
    fn create_then_read_back() {
        let profile = sample("S001");
        let (doc, change) = MemberDoc::create(&store("S001"), 1, &profile).unwrap();
        assert_eq!(doc.profile().unwrap(), profile);
        let replica = MemberDoc::from_change(&change).unwrap();
        assert_eq!(replica.profile().unwrap(), profile);
    }

    #[test]
    fn concurrent_edits_of_different_fields_both_survive() {
        let (origin, created) = MemberDoc::create(&store("S001"), 1, &sample("S001")).unwrap();
        let mut a = origin.clone();
        let mut b = MemberDoc::from_change(&created).unwrap();
        let edit_a = ProfilePatch {
            name: Some("张三丰".into()),
            tags_add: vec!["birthday-club".into()],
            ..Default::default()
        };
        let edit_b = ProfilePatch {
            notes: Some("喜欢绿茶".into()),
            tags_add: vec!["tea".into()],
            custom_set: BTreeMap::from([("size".into(), "M".into())]),
            ..Default::default()
        };
        let change_a = a.edit(&store("S001"), 2, &edit_a).unwrap().unwrap();
        let change_b = b.edit(&store("S002"), 2, &edit_b).unwrap().unwrap();
        a.apply_change(&change_b).unwrap();
        b.apply_change(&change_a).unwrap();
        b.apply_change(&change_a).unwrap(); // a duplicate delivery changes nothing
        let (pa, pb) = (a.profile().unwrap(), b.profile().unwrap());
        assert_eq!(pa, pb);
        assert_eq!(pa.name, "张三丰");
        assert_eq!(pa.notes, "喜欢绿茶");
        assert_eq!(pa.tags.len(), 3);
        assert_eq!(pa.custom["size"], "M");
    }

    #[test]
    fn merge_of_whole_documents_converges() {
        let (mut a, created) = MemberDoc::create(&store("S001"), 1, &sample("S001")).unwrap();
        let mut b = MemberDoc::from_change(&created).unwrap();
        a.edit(
            &store("S001"),
            2,
            &ProfilePatch {
                tier: Some("gold".into()),
                ..Default::default()
            },
        )
        .unwrap();
        b.edit(
            &store("S002"),
            2,
            &ProfilePatch {
                birthday: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        let p = a.profile().unwrap();
        assert_eq!(p, b.profile().unwrap());
        assert_eq!((p.tier.as_str(), p.birthday), ("gold", None));
    }

    #[test]
    fn a_no_op_edit_makes_no_change() {
        let (mut doc, _) = MemberDoc::create(&store("S001"), 1, &sample("S001")).unwrap();
        let same = ProfilePatch {
            name: Some("张三".into()),
            ..Default::default()
        };
        assert_eq!(doc.edit(&store("S001"), 2, &same).unwrap(), None);
    }

    #[test]
    fn oversized_fields_are_refused() {
        let mut p = sample("S001");
        p.name = "名".repeat(NAME_CHARS_MAX + 1);
        assert_eq!(
            p.validate(),
            Err(ProfileError::TooLong {
                field: "name",
                max: NAME_CHARS_MAX
            })
        );
        let patch = ProfilePatch {
            notes: Some("x".repeat(NOTES_CHARS_MAX + 1)),
            ..Default::default()
        };
        assert!(patch.validate().is_err());
        let blank = ProfilePatch {
            name: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(blank.validate(), Err(ProfileError::Empty { field: "name" }));
    }
}
