//! 拓客 (referral): every member's referral code, the link a new member makes to the member who
//! referred them, and the rewards headquarters sets for it.
//!
//! The **code** is derived from the member id (`R` and ten Crockford base32 characters of a
//! SHA-256 of it), so every replica that holds the member knows it without a word on the wire;
//! it says nothing of the person. A member is linked to their referrer when they register with
//! the code, or once later (补填推荐人) while they have none: never to themselves, never into a
//! loop (`check_link` walks the chain of referrers up).
//!
//! **Rewards** (`ReferralRules`, one entry of headquarters' log each, `Payload::ReferralRules`)
//! are points, bonus stored value and a coupon of a template, for the referrer (level 1) and,
//! if the chain turns it on, the referrer's referrer (level 2). Headquarters gives them when it
//! takes in the new member's first paid sale — not at sign-up, and once, whichever store it
//! was at — and takes them back, as far as the member has not spent them, if that sale is
//! returned in full (`hub/src/ingest/referral.rs`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hlc::Hlc;
use crate::ids::{MemberId, StaffId};
use crate::money::Fen;
use crate::rules::RulesError;

/// The most points and bonus (fen) one reward gives.
pub const REWARD_POINTS_MAX: u64 = 100_000;
pub const REWARD_BONUS_MAX: i64 = 100_000;
/// How far up `check_link` follows referrers looking for a loop.
pub const CHAIN_MAX: usize = 64;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A member's referral code (推荐码): `R` and ten characters, the same at every replica.
pub fn code(member: &MemberId) -> String {
    let digest = Sha256::digest(format!("referral-code\0{member}").as_bytes());
    let mut bits = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8])) >> 14;
    let mut chars = [0u8; 10];
    for c in chars.iter_mut().rev() {
        *c = CROCKFORD[(bits & 31) as usize];
        bits >>= 5;
    }
    format!("R{}", String::from_utf8_lossy(&chars))
}

/// Whether `text` has the shape of a referral code (upper case, as [`code`] writes it; a
/// till's input is upper-cased first).
pub fn is_code(text: &str) -> bool {
    text.len() == 11
        && text.starts_with('R')
        && text.bytes().skip(1).all(|b| CROCKFORD.contains(&b))
}

/// Why a member cannot be linked to a referrer. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralRefused {
    #[error("a member cannot refer themselves")]
    SelfReferral,
    #[error("the member already has a referrer ({0})")]
    AlreadyReferred(MemberId),
    #[error("{0} was referred, directly or not, by this member: the link would make a loop")]
    Loop(MemberId),
}

/// Whether `member` (whose referrer is `current`) may be linked to `referrer`, given each
/// member's referrer as this replica knows (`referrer_of`).
pub fn check_link(
    member: &MemberId,
    current: Option<MemberId>,
    referrer: &MemberId,
    referrer_of: impl Fn(&MemberId) -> Option<MemberId>,
) -> Result<(), ReferralRefused> {
    if member == referrer {
        return Err(ReferralRefused::SelfReferral);
    }
    if let Some(current) = current {
        return Err(ReferralRefused::AlreadyReferred(current));
    }
    let mut up = Some(*referrer);
    for _ in 0..CHAIN_MAX {
        let Some(next) = up else { return Ok(()) };
        if next == *member {
            return Err(ReferralRefused::Loop(*referrer));
        }
        up = referrer_of(&next);
    }
    Ok(())
}

/// What one level of referrer is given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    #[serde(default)]
    pub points: u64,
    /// Bonus stored value (赠送金), spendable, never refunded.
    #[serde(default)]
    pub bonus: Fen,
    /// A coupon of this template (券模板).
    #[serde(default)]
    pub coupon: Option<String>,
}

impl Reward {
    pub fn is_empty(&self) -> bool {
        self.points == 0 && self.bonus.0 == 0 && self.coupon.is_none()
    }

    fn check(&self, field: &'static str) -> Result<(), RulesError> {
        if self.points > REWARD_POINTS_MAX {
            return Err(RulesError {
                field,
                message: format!("at most {REWARD_POINTS_MAX} points"),
            });
        }
        if !(0..=REWARD_BONUS_MAX).contains(&self.bonus.0) {
            return Err(RulesError {
                field,
                message: format!("bonus from 0 to {} yuan", Fen(REWARD_BONUS_MAX)),
            });
        }
        if let Some(t) = &self.coupon {
            crate::campaign::check_id(field, t).map_err(|e| RulesError {
                field,
                message: e.problem,
            })?;
        }
        Ok(())
    }
}

/// 拓客奖励: what headquarters gives on a referred member's first paid sale.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralRules {
    /// For the member who referred them.
    pub level1: Reward,
    /// For the member who referred the referrer; `None`: the chain rewards one level.
    #[serde(default)]
    pub level2: Option<Reward>,
}

impl ReferralRules {
    pub fn check(&self) -> Result<(), RulesError> {
        self.level1.check("level1")?;
        if let Some(l2) = &self.level2 {
            l2.check("level2")?;
        }
        Ok(())
    }

    /// The reward of `level` (1 or 2), if the chain gives one.
    pub fn reward(&self, level: u8) -> Option<&Reward> {
        let reward = match level {
            1 => Some(&self.level1),
            2 => self.level2.as_ref(),
            _ => None,
        };
        reward.filter(|r| !r.is_empty())
    }
}

/// Rules as headquarters published them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub at: Hlc,
    pub staff: StaffId,
    pub rules: ReferralRules,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn id(n: u64) -> MemberId {
        MemberId::mint(1_795_451_400_000 + n, u128::from(n))
    }

    #[test]
    fn a_code_is_the_same_everywhere_and_differs_between_members() {
        let (a, b) = (id(1), id(2));
        assert_eq!(code(&a), code(&a));
        assert_ne!(code(&a), code(&b));
        assert!(is_code(&code(&a)), "{}", code(&a));
        assert!(!is_code("R123"));
        assert!(!is_code("RIIIIIIIIII"), "I is not Crockford's");
    }

    #[test]
    fn self_referral_a_second_referrer_and_loops_are_refused() {
        let (a, b, c, d) = (id(1), id(2), id(3), id(4));
        // b was referred by a, c by b.
        let referrers: BTreeMap<MemberId, MemberId> = [(b, a), (c, b)].into();
        let of = |m: &MemberId| referrers.get(m).copied();
        assert_eq!(
            check_link(&a, None, &a, of),
            Err(ReferralRefused::SelfReferral)
        );
        assert_eq!(
            check_link(&c, Some(b), &d, of),
            Err(ReferralRefused::AlreadyReferred(b))
        );
        // a, referred by c, would close a → b → c → a.
        assert_eq!(check_link(&a, None, &c, of), Err(ReferralRefused::Loop(c)));
        assert_eq!(check_link(&d, None, &c, of), Ok(()));
    }

    #[test]
    fn rewards_out_of_range_are_refused_and_an_empty_level_gives_nothing() {
        let mut rules = ReferralRules {
            level1: Reward {
                points: 100,
                ..Reward::default()
            },
            level2: Some(Reward::default()),
        };
        rules.check().unwrap();
        assert!(rules.reward(1).is_some());
        assert!(rules.reward(2).is_none(), "an empty level 2 gives nothing");
        rules.level1.points = REWARD_POINTS_MAX + 1;
        assert_eq!(rules.check().unwrap_err().field, "level1");
        rules.level1.points = 1;
        rules.level2 = Some(Reward {
            bonus: Fen(-1),
            ..Reward::default()
        });
        assert_eq!(rules.check().unwrap_err().field, "level2");
    }
}
