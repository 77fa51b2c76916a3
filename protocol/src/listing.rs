//! 会员名录: a member's directory listing, which headquarters sends in place of their
//! registration or profile edit to a store that does not follow them (`crate::route`).
//!
//! Every store must find every member offline — by phone, card, member code, referral code or
//! name — and know their card's state, tier and birthday; only the stores that follow a member
//! need the automerge history that makes their profile. A listing is the member's profile as
//! headquarters holds it when it sends (`Profile::listing`: no free text), sealed under the
//! member's key like the change it stands for, in an entry that keeps the header of that
//! change (`Payload::MemberListed`). A store applies it without automerge; one that follows
//! the member later gets the history and makes the whole profile from it.

use crate::entry::{Entry, Payload};
use crate::ids::MemberId;
use crate::member::Profile;
use crate::seal::{MemberKey, listing_aad};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("member {0}'s listing does not open under their key")]
    Sealed(MemberId),
    #[error("member {0}'s listing does not decode: {1}")]
    Decode(MemberId, String),
}

/// The entry a store that does not follow `member` gets in place of `entry` (their
/// registration or edit), holding `profile`'s listing sealed under `key`.
pub fn in_place_of(entry: &Entry, member: MemberId, key: &MemberKey, profile: &Profile) -> Entry {
    // Plain data into a Vec: cannot fail.
    let plain = postcard::to_stdvec(&profile.listing()).unwrap_or_default();
    Entry {
        payload: Payload::MemberListed {
            member_id: member,
            card: key.seal(&listing_aad(&member), &plain),
        },
        ..entry.clone()
    }
}

/// The profile a listing holds.
pub fn open(member: &MemberId, key: &MemberKey, card: &[u8]) -> Result<Profile, ListingError> {
    let plain = key
        .open(&listing_aad(member), card)
        .map_err(|_| ListingError::Sealed(*member))?;
    postcard::from_bytes(&plain).map_err(|e| ListingError::Decode(*member, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryHash;
    use crate::hlc::Hlc;
    use crate::ids::{StaffId, StoreId, TxId};
    use crate::phone::Phone;

    fn profile() -> Profile {
        let store = StoreId::parse("S002").unwrap();
        let mut profile = Profile {
            name: "孙会员".into(),
            phone: Phone::parse("13900000077").unwrap(),
            card_no: None,
            birthday: chrono::NaiveDate::from_ymd_opt(1990, 5, 1),
            gender: Default::default(),
            tags: Default::default(),
            notes: "只在本店说过的话".into(),
            tier: "金卡".into(),
            custom: Default::default(),
            home_store: store,
            join_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            referrer: None,
            marketing_consent: false,
            card_status: Default::default(),
            former_cards: Default::default(),
        };
        profile.custom.insert("车牌".into(), "沪A12345".into());
        profile
    }

    #[test]
    fn a_listing_keeps_the_entrys_header_and_opens_to_the_profile_without_its_free_text() {
        let member = MemberId::mint(1_000, 7);
        let key = MemberKey::from_bytes([7; 32]);
        let edited = Entry {
            origin: StoreId::parse("S002").unwrap(),
            seq: 9,
            hlc: Hlc::ZERO,
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            staff: StaffId::parse("s2-cashier").unwrap(),
            tx: TxId::parse("edit-0009").unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload: Payload::MemberEdited {
                member_id: member,
                change: vec![1, 2, 3],
            },
        };
        let listed = in_place_of(&edited, member, &key, &profile());
        assert_eq!(
            (&listed.origin, listed.seq, &listed.tx),
            (&edited.origin, 9, &edited.tx)
        );
        let Payload::MemberListed { member_id, card } = &listed.payload else {
            panic!("{listed:?}");
        };
        assert_eq!(*member_id, member);
        let opened = open(&member, &key, card).unwrap();
        assert_eq!(opened.name, "孙会员");
        assert_eq!(opened.tier, "金卡");
        assert!(
            opened.notes.is_empty() && opened.custom.is_empty(),
            "{opened:?}"
        );
        let other = MemberId::mint(1_000, 8);
        assert_eq!(open(&other, &key, card), Err(ListingError::Sealed(other)));
        let wrong = MemberKey::from_bytes([8; 32]);
        assert_eq!(
            open(&member, &wrong, card),
            Err(ListingError::Sealed(member))
        );
    }
}
