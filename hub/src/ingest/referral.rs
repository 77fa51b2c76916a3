//! 拓客奖励 at headquarters (`protocol::referral`): who referred whom, whether a referred
//! member has paid, the rewards given for it and taken back when the rewarded sale comes back
//! in full.
//!
//! Everything here is a view of the logs, written in the batch that brings the entry
//! (`note`, from `Directory::apply`), and built only of facts that do not depend on the order
//! entries arrive in — a rebuild takes the feed first and the stores' other entries after, so
//! a reward may come before the sale that earned it: `rr/r/<referrer>/<member>` (a link),
//! `rr/p/<member>` (a referred member has paid), `rr/s/<member>/<sale>` (a referred member's
//! sale: what it was paid, what returns paid back), `rr/g/<member>/<level>` and
//! `rr/x/<member>/<level>` (given, taken back). From them, after each, `settle` marks what is
//! due: `rr/due/<member>` (paid, referred, nothing given yet) and `rr/back/<member>` (the
//! rewarded sale returned in full, nothing taken back yet). The work itself —
//! `post_referrals`, after each group — writes entries of headquarters' log, named after
//! (member, level), whose own views clear the marks: a reward is given once and taken back
//! once.

use protocol::referral::{Published, ReferralRules};
use protocol::wallet::{CardId, GiftCoupon, RightsOp, lot_year};
use serde::{Deserialize, Serialize};

use super::*;

/// How many due rewards one pass looks at (the rest wait for the next group).
const PASS_MAX: usize = 100;

pub mod keys {
    use super::*;

    /// The rules in force, and each published, in publishing order.
    pub const CURRENT: &[u8] = b"rr/now";
    pub const HISTORY: &[u8] = b"rr/h/";
    pub const DUE: &[u8] = b"rr/due/";
    pub const BACK: &[u8] = b"rr/back/";
    pub const REFERRED: &[u8] = b"rr/r/";

    pub fn published(at: Hlc) -> Vec<u8> {
        format!("rr/h/{:020}.{:010}", at.wall_ms, at.logical).into_bytes()
    }
    /// Members `referrer` referred: `rr/r/<referrer>/<member>`.
    pub fn referred_prefix(referrer: &MemberId) -> Vec<u8> {
        format!("rr/r/{referrer}/").into_bytes()
    }
    pub fn referred(referrer: &MemberId, member: &MemberId) -> Vec<u8> {
        format!("rr/r/{referrer}/{member}").into_bytes()
    }
    /// A member was referred: by whom, and when the link was first made ([`Link`]).
    pub fn referrer(member: &MemberId) -> Vec<u8> {
        format!("rr/ref/{member}").into_bytes()
    }
    /// When a member first paid (the earliest clock of their paid sales).
    pub fn first_paid(member: &MemberId) -> Vec<u8> {
        format!("rr/fp/{member}").into_bytes()
    }
    /// When headquarters first published referral rules.
    pub const SINCE: &[u8] = b"rr/since";
    /// How many of a referred member's paid sales are not returned in full.
    pub fn paid(member: &MemberId) -> Vec<u8> {
        format!("rr/p/{member}").into_bytes()
    }
    pub fn sale(member: &MemberId, sale: &protocol::SaleId) -> Vec<u8> {
        format!("rr/s/{member}/{sale}").into_bytes()
    }
    pub fn due(member: &MemberId) -> Vec<u8> {
        format!("rr/due/{member}").into_bytes()
    }
    pub fn back(member: &MemberId) -> Vec<u8> {
        format!("rr/back/{member}").into_bytes()
    }
    pub fn given(member: &MemberId, level: u8) -> Vec<u8> {
        format!("rr/g/{member}/{level}").into_bytes()
    }
    pub fn taken_back(member: &MemberId, level: u8) -> Vec<u8> {
        format!("rr/x/{member}/{level}").into_bytes()
    }
}

/// A referred member's sale: what it was paid (once its entry is here) and what returns of it
/// paid back (fen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleMoney {
    pub paid: Option<i64>,
    pub returned: i64,
}

/// Who referred a member, and when the link was first made (the earliest clock that set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub referrer: MemberId,
    pub at: Hlc,
}

/// A reward given: to whom, for which sale, and what (the points in one lot at
/// headquarters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    pub referrer: MemberId,
    pub sale: protocol::SaleId,
    pub lot: i32,
    pub points: u64,
    pub bonus: i64,
    pub coupon: Option<CardId>,
}

/// What a take-back took, and what stayed with the member (spent, or held at a store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenBack {
    pub points: u64,
    pub bonus: i64,
    pub kept_points: u64,
    pub kept_bonus: i64,
}

fn put<T: Serialize>(kv: &mut dyn ViewKv, key: Vec<u8>, value: &T) -> Result<(), String> {
    kv.put(key, postcard::to_stdvec(value).map_err(|e| e.to_string())?);
    Ok(())
}

/// The member a sale or return is for, its sale, and the amount paid (a sale) or paid back
/// (a return).
fn paid(payload: &Payload) -> Option<(MemberId, protocol::SaleId, i64, bool)> {
    match payload {
        Payload::Sale { sale, .. } | Payload::QuickSale(sale) => {
            Some((sale.member_id?, sale.sale_id.clone(), sale.amount.0, false))
        }
        Payload::Checkout { sale, .. } => {
            Some((sale.member_id?, sale.sale_id.clone(), sale.due.0, false))
        }
        Payload::Return {
            sale,
            member_id,
            amount,
            ..
        } => Some(((*member_id)?, sale.clone(), amount.0, true)),
        Payload::ItemReturn { ret, .. } => {
            Some((ret.member_id?, ret.sale_id.clone(), ret.amount.0, true))
        }
        _ => None,
    }
}

/// The rewards given for `member`'s sale, whichever level.
fn given_any(kv: &dyn ViewKv, member: &MemberId) -> Result<Option<Given>, String> {
    for level in 1..=2u8 {
        if let Some(g) = protocol::inventory::read::<Given>(kv, &keys::given(member, level))? {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// How many of `member`'s paid sales are not returned in full.
pub(crate) fn live_sales(kv: &dyn ViewKv, member: &MemberId) -> Result<u32, String> {
    Ok(protocol::inventory::read(kv, &keys::paid(member))?.unwrap_or(0))
}

/// Marks what is due for `member` from the facts alone, by the clocks of the entries and not
/// the order they came in: a reward when they were referred before they first paid, under
/// rules published before that, and a sale of theirs is still paid (nothing given yet); a
/// take-back when the rewarded sale is back in full (nothing taken back yet).
fn settle(kv: &mut dyn ViewKv, member: &MemberId) -> Result<(), String> {
    let link: Option<Link> = protocol::inventory::read(kv, &keys::referrer(member))?;
    let first: Option<Hlc> = protocol::inventory::read(kv, &keys::first_paid(member))?;
    let since: Option<Hlc> = protocol::inventory::read(kv, keys::SINCE)?;
    let in_time = match (link, first, since) {
        (Some(link), Some(first), Some(since)) => link.at < first && since < first,
        _ => false,
    };
    let paid = in_time && live_sales(kv, member)? > 0;
    let given = given_any(kv, member)?;
    let taken = kv.get(&keys::taken_back(member, 1))?.is_some()
        || kv.get(&keys::taken_back(member, 2))?.is_some();
    match (
        paid && given.is_none(),
        kv.get(&keys::due(member))?.is_some(),
    ) {
        (true, false) => kv.put(keys::due(member), Vec::new()),
        (false, true) => kv.delete(keys::due(member)),
        _ => {}
    }
    let back = match (&given, taken) {
        (Some(g), false) => {
            let money: SaleMoney =
                protocol::inventory::read(kv, &keys::sale(member, &g.sale))?.unwrap_or_default();
            money.paid.is_some_and(|paid| money.returned >= paid)
        }
        _ => false,
    };
    match (back, kv.get(&keys::back(member))?.is_some()) {
        (true, false) => kv.put(keys::back(member), Vec::new()),
        (false, true) => kv.delete(keys::back(member)),
        _ => {}
    }
    Ok(())
}

/// A member's profile names `referrer` (at registration, or set later) as of `at`: the link,
/// for the report and for the reward (only a first sale after the link earns one). Two stores
/// cut off at once may each have set one: the profile's merge decides, and the other's link
/// goes.
pub(super) fn linked(
    kv: &mut dyn ViewKv,
    member: &MemberId,
    referrer: &MemberId,
    at: Hlc,
) -> Result<(), String> {
    let before: Option<Link> = protocol::inventory::read(kv, &keys::referrer(member))?;
    if let Some(old) = before
        && old.referrer != *referrer
    {
        kv.delete(keys::referred(&old.referrer, member));
    }
    let at = before.map_or(at, |b| b.at.min(at));
    kv.put(keys::referred(referrer, member), Vec::new());
    let link = Link {
        referrer: *referrer,
        at,
    };
    put(kv, keys::referrer(member), &link)?;
    settle(kv, member)
}

/// Takes in what an entry says of referrals: the rules, a reward given or taken back, and
/// every member's sales and returns (whoever referred them, now or later).
pub(super) fn note(kv: &mut dyn ViewKv, entry: &Entry) -> Result<(), String> {
    // 被遗忘: an erased member is rewarded for nothing any more, nor anyone for them.
    if let Payload::MemberErased { member_id } = &entry.payload
        && entry.origin == StoreId::hq()
    {
        let link: Option<Link> = protocol::inventory::read(kv, &keys::referrer(member_id))?;
        if let Some(link) = link {
            kv.delete(keys::referred(&link.referrer, member_id));
        }
        kv.delete(keys::referrer(member_id));
        return settle(kv, member_id);
    }
    if let Payload::ReferralRules { rules } = &entry.payload {
        if entry.origin != StoreId::hq() || rules.check().is_err() {
            return Ok(());
        }
        let published = Published {
            at: entry.hlc,
            staff: entry.staff.clone(),
            rules: rules.clone(),
        };
        put(kv, keys::published(entry.hlc), &published)?;
        let current: Option<Published> = protocol::inventory::read(kv, keys::CURRENT)?;
        if current.is_none_or(|c| c.at < entry.hlc) {
            put(kv, keys::CURRENT.to_vec(), &published)?;
        }
        // Rules reward first sales after they were first published, never earlier ones.
        let since: Option<Hlc> = protocol::inventory::read(kv, keys::SINCE)?;
        if since.is_none_or(|s| entry.hlc < s) {
            put(kv, keys::SINCE.to_vec(), &entry.hlc)?;
        }
        return Ok(());
    }
    if let Payload::Wallet {
        member_id,
        event,
        ops,
    } = &entry.payload
        && entry.origin == StoreId::hq()
    {
        let referee = match event {
            WalletEvent::ReferralReward {
                referee,
                level,
                sale,
                points,
                bonus,
                coupon,
            } => {
                // The lot the points went into, as the entry's own cell write says.
                let lot = ops
                    .iter()
                    .find_map(|op| match op.counter {
                        Counter::Points { year } => Some(year),
                        _ => None,
                    })
                    .unwrap_or_else(|| lot_year(entry.business_date));
                let given = Given {
                    referrer: *member_id,
                    sale: sale.clone(),
                    lot,
                    points: *points,
                    bonus: bonus.0,
                    coupon: coupon.as_ref().map(|c| c.coupon.clone()),
                };
                put(kv, keys::given(referee, *level), &given)?;
                referee
            }
            WalletEvent::ReferralRevoked {
                referee,
                level,
                points,
                bonus,
                kept_points,
                kept_bonus,
                ..
            } => {
                let taken = TakenBack {
                    points: *points,
                    bonus: bonus.0,
                    kept_points: *kept_points,
                    kept_bonus: kept_bonus.0,
                };
                put(kv, keys::taken_back(referee, *level), &taken)?;
                referee
            }
            _ => return Ok(()),
        };
        return settle(kv, referee);
    }
    let Some((member, sale, amount, is_return)) = paid(&entry.payload) else {
        return Ok(());
    };
    let key = keys::sale(&member, &sale);
    let before: SaleMoney = protocol::inventory::read(kv, &key)?.unwrap_or_default();
    let mut money = before;
    match is_return {
        true => money.returned = money.returned.saturating_add(amount),
        false => money.paid = Some(amount),
    }
    put(kv, key, &money)?;
    // A sale counts while it is paid and not all back, whichever of it and its returns came
    // first.
    let live = |m: &SaleMoney| m.paid.is_some_and(|p| p > 0 && m.returned < p);
    let count = live_sales(kv, &member)?;
    let count = match (live(&before), live(&money)) {
        (false, true) => count.saturating_add(1),
        (true, false) => count.saturating_sub(1),
        _ => count,
    };
    put(kv, keys::paid(&member), &count)?;
    if !is_return && amount > 0 {
        let first: Option<Hlc> = protocol::inventory::read(kv, &keys::first_paid(&member))?;
        if first.is_none_or(|f| entry.hlc < f) {
            put(kv, keys::first_paid(&member), &entry.hlc)?;
        }
    }
    settle(kv, &member)
}

/// What of reward `given` is unspent but held at stores (the points of its lot, its bonus,
/// its coupon's use), up to what was given.
fn unspent_elsewhere(wallet: &Wallet, given: &Given) -> Vec<(Counter, u64)> {
    let hq = StoreId::hq();
    let mut wants = Vec::new();
    let lot = Counter::Points { year: given.lot };
    let bonus = u64::try_from(given.bonus).unwrap_or(0);
    for (counter, amount) in [(lot, given.points), (Counter::Bonus, bonus)] {
        let want = amount
            .min(wallet.balance(&counter))
            .saturating_sub(wallet.held(&counter, &hq));
        if want > 0 {
            wants.push((counter, want));
        }
    }
    if let Some(card) = &given.coupon {
        let uses = Counter::Uses { card: card.clone() };
        if wallet.balance(&uses) > 0 && wallet.held(&uses, &hq) == 0 {
            wants.push((uses, 1));
        }
    }
    wants
}

impl Ingest {
    /// The referral rules in force, if headquarters published any.
    fn referral_rules(&self) -> Result<Option<ReferralRules>, IngestError> {
        let views = HubViews::reader(&*self.storage);
        let current: Option<Published> =
            protocol::inventory::read(&views, keys::CURRENT).map_err(IngestError::Storage)?;
        Ok(current.map(|p| p.rules))
    }

    fn referrer_of(&self, member: &MemberId) -> Result<Option<MemberId>, IngestError> {
        Ok(self
            .storage
            .member(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?
            .and_then(|r| r.profile.referrer))
    }

    /// Whether `member` can be given a reward: in the directory (not erased) and not closed
    /// (退卡).
    fn rewardable(&self, member: &MemberId) -> Result<bool, IngestError> {
        Ok(self
            .storage
            .member(member)
            .map_err(|e| IngestError::Storage(e.to_string()))?
            .is_some_and(|r| r.profile.card_status != protocol::member::CardStatus::Closed))
    }

    /// Gives the rewards due and takes back those whose sale came back in full, a part at a
    /// time (run after each group).
    pub fn post_referrals(&mut self) -> Result<(), IngestError> {
        let storage = |e: crate::storage::HubStoreError| IngestError::Storage(e.to_string());
        let members = |rows: Vec<(Vec<u8>, Vec<u8>)>, prefix: &[u8]| -> Vec<MemberId> {
            rows.into_iter()
                .filter_map(|(k, _)| {
                    MemberId::parse(std::str::from_utf8(k.get(prefix.len()..)?).ok()?).ok()
                })
                .collect()
        };
        let back = members(
            self.storage.views(keys::BACK, PASS_MAX).map_err(storage)?,
            keys::BACK,
        );
        // One member's trouble holds up no one else's (it is tried again next time).
        for member in back {
            if let Err(e) = self.take_back(&member) {
                tracing::error!(%member, error = %e, "taking a referral reward back failed");
            }
        }
        let Some(rules) = self.referral_rules()? else {
            return Ok(());
        };
        let due = members(
            self.storage.views(keys::DUE, PASS_MAX).map_err(storage)?,
            keys::DUE,
        );
        for member in due {
            if let Err(e) = self.reward(&member, &rules) {
                tracing::error!(%member, error = %e, "giving a referral reward failed");
            }
        }
        Ok(())
    }

    /// The rewards for `referee`'s first paid sale: their referrer's, and their referrer's
    /// referrer's where the chain rewards two levels.
    fn reward(&mut self, referee: &MemberId, rules: &ReferralRules) -> Result<(), IngestError> {
        let storage = self.storage.clone();
        let views = HubViews::reader(&*storage);
        // The sale that made them a paying member: the first paid one of theirs headquarters
        // holds (a sale's id orders a store's sales; across stores any paid one will do).
        let prefix = format!("rr/s/{referee}/").into_bytes();
        let sales = storage
            .views(&prefix, usize::MAX)
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        let sale = sales.into_iter().find_map(|(k, v)| {
            let money: SaleMoney = postcard::from_bytes(&v).ok()?;
            let paid = money.paid.is_some_and(|p| p > 0 && money.returned < p);
            let id = std::str::from_utf8(k.get(prefix.len()..)?).ok()?;
            paid.then(|| protocol::SaleId::parse(id).ok()).flatten()
        });
        let Some(sale) = sale else {
            // The mark says a paid sale is here: not found means the views are being written
            // (the next pass sees it).
            return Ok(());
        };
        let mut writes = Vec::new();
        let mut referrer = self.referrer_of(referee)?;
        for level in 1..=2u8 {
            // Never the member themselves (two stores cut off at once could each have linked
            // one of a pair to the other).
            let Some(to) = referrer.filter(|r| r != referee) else {
                break;
            };
            if let Some(reward) = rules.reward(level)
                && self.rewardable(&to)?
            {
                writes.push((level, to, reward.clone()));
            }
            referrer = self.referrer_of(&to)?;
        }
        if writes.is_empty() {
            // Nothing to give (an empty level 1 and no level 2): the sale is marked all the
            // same, with an empty reward to the referrer.
            let Some(to) = self.referrer_of(referee)? else {
                return Ok(());
            };
            writes.push((1, to, Default::default()));
        }
        let hq = StoreId::hq();
        let today = self.calendar.business_date((self.now_ms)());
        for (level, to, reward) in writes {
            let mut wallet = self.wallet(&to)?;
            let mut ops: Vec<RightsOp> = Vec::new();
            let bad =
                |e: protocol::wallet::WalletError| IngestError::Storage(format!("reward: {e}"));
            if reward.points > 0 {
                ops.extend(
                    wallet
                        .earn_points(&hq, lot_year(today), reward.points)
                        .map_err(bad)?,
                );
            }
            if reward.bonus.0 > 0 {
                let units = u64::try_from(reward.bonus.0).unwrap_or(0);
                ops.push(wallet.give(&hq, &Counter::Bonus, units).map_err(bad)?);
            }
            let coupon = match &reward.coupon {
                Some(template) => {
                    let t = protocol::project::marketing::live_template(&views, template)
                        .map_err(IngestError::Storage)?;
                    match t {
                        Some(t) => {
                            let id = CardId::for_entry(&hq, self.tip(&hq).next_seq);
                            let c = GiftCoupon::of(t, id, today);
                            ops.extend(
                                wallet
                                    .issue_coupon(&hq, &c.coupon, (c.from, c.to))
                                    .map_err(bad)?,
                            );
                            Some(c)
                        }
                        None => {
                            tracing::warn!(%template, "referral reward's coupon template is gone or withdrawn; the rest is given");
                            None
                        }
                    }
                }
                None => None,
            };
            let event = WalletEvent::ReferralReward {
                referee: *referee,
                level,
                sale: sale.clone(),
                points: reward.points,
                bonus: reward.bonus,
                coupon,
            };
            let tx = TxId::derived(&["referral", &referee.to_string(), &level.to_string()]);
            let payload = Payload::Wallet {
                member_id: to,
                event,
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        Ok(())
    }

    /// Takes back the rewards of `referee`'s first sale, returned in full: what headquarters'
    /// pool still holds of each (the points of their lot, the bonus, the coupon's use); the
    /// rest stays with the member, spent or held at a store, and the report shows it.
    fn take_back(&mut self, referee: &MemberId) -> Result<(), IngestError> {
        let hq = StoreId::hq();
        let storage = self.storage.clone();
        let views = HubViews::reader(&*storage);
        let mut any = false;
        for level in 1..=2u8 {
            let given: Option<Given> =
                protocol::inventory::read(&views, &keys::given(referee, level))
                    .map_err(IngestError::Storage)?;
            let Some(given) = given else { continue };
            if views
                .get(&keys::taken_back(referee, level))
                .map_err(IngestError::Storage)?
                .is_some()
            {
                continue;
            }
            any = true;
            let mut wallet = self.wallet(&given.referrer)?;
            // What of the reward the bank placed at stores since, unspent, is called back
            // first (once: a store that does not answer in time keeps it, shown as kept).
            if !self.gathered_back.contains(referee) {
                let wants = unspent_elsewhere(&wallet, &given);
                if !wants.is_empty() {
                    let now = (self.now_ms)();
                    let key = format!("referral-back-{referee}-{level}");
                    if let super::gifts::Gathered::Called =
                        self.gather(&given.referrer, &wallet, &key, &wants, now)
                    {
                        self.gathered_back.insert(*referee);
                        return Ok(());
                    }
                }
            } else if self
                .gathering
                .get(&given.referrer)
                .is_some_and(|until| *until > (self.now_ms)())
                && !unspent_elsewhere(&wallet, &given).is_empty()
            {
                // The stores' answers are on the way.
                return Ok(());
            }
            let mut ops = Vec::new();
            let bad =
                |e: protocol::wallet::WalletError| IngestError::Storage(format!("take back: {e}"));
            let lot = Counter::Points { year: given.lot };
            let points = given.points.min(wallet.held(&lot, &hq));
            if points > 0 {
                ops.push(wallet.take(&hq, &lot, points).map_err(bad)?);
            }
            let bonus_given = u64::try_from(given.bonus).unwrap_or(0);
            let bonus = bonus_given.min(wallet.held(&Counter::Bonus, &hq));
            if bonus > 0 {
                ops.push(wallet.take(&hq, &Counter::Bonus, bonus).map_err(bad)?);
            }
            let coupon = given
                .coupon
                .clone()
                .filter(|c| wallet.held(&Counter::Uses { card: c.clone() }, &hq) > 0);
            if let Some(c) = &coupon {
                ops.push(
                    wallet
                        .take(&hq, &Counter::Uses { card: c.clone() }, 1)
                        .map_err(bad)?,
                );
            }
            let event = WalletEvent::ReferralRevoked {
                referee: *referee,
                level,
                points,
                bonus: protocol::Fen(i64::try_from(bonus).unwrap_or(0)),
                coupon,
                kept_points: given.points - points,
                kept_bonus: protocol::Fen(given.bonus - i64::try_from(bonus).unwrap_or(0)),
            };
            let tx = TxId::derived(&["referral-back", &referee.to_string(), &level.to_string()]);
            let payload = Payload::Wallet {
                member_id: given.referrer,
                event,
                ops,
            };
            self.write_hq(tx, payload)?;
        }
        if !any {
            tracing::warn!(%referee, "a take-back is due but nothing was given or all is back");
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "referral_tests.rs"]
mod tests;
