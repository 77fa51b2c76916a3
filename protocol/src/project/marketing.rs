//! Headquarters' marketing kept as views: templates, segments and campaigns (the latest of
//! each id by headquarters' clock), each run's record, and how many coupons each template and
//! campaign has issued (counted from the coupons themselves, so a quota holds after a crash).

use crate::campaign::{Campaign, CouponTemplate, MarketingChange, Run};
use crate::entry::{Entry, Payload};
use crate::hlc::Hlc;
use crate::ids::StoreId;
use crate::inventory::ViewKv;
use crate::segment::Segment;
use crate::wallet::WalletEvent;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub mod keys {
    pub const TEMPLATES: &[u8] = b"mk/t/";
    pub const SEGMENTS: &[u8] = b"mk/s/";
    pub const CAMPAIGNS: &[u8] = b"mk/c/";
    pub const RUNS: &[u8] = b"mk/r/";

    pub fn template(id: &str) -> Vec<u8> {
        [TEMPLATES, id.as_bytes()].concat()
    }
    pub fn segment(id: &str) -> Vec<u8> {
        [SEGMENTS, id.as_bytes()].concat()
    }
    pub fn campaign(id: &str) -> Vec<u8> {
        [CAMPAIGNS, id.as_bytes()].concat()
    }
    /// A campaign's runs: `mk/r/<campaign>\0<run>`.
    pub fn runs(campaign: &str) -> Vec<u8> {
        [RUNS, campaign.as_bytes(), b"\0"].concat()
    }
    pub fn run(campaign: &str, run: &str) -> Vec<u8> {
        [runs(campaign).as_slice(), run.as_bytes()].concat()
    }
    /// Coupons a template has issued.
    pub fn template_issued(id: &str) -> Vec<u8> {
        [b"mk/nt/".as_slice(), id.as_bytes()].concat()
    }
    /// Coupons a campaign has issued.
    pub fn campaign_issued(id: &str) -> Vec<u8> {
        [b"mk/nc/".as_slice(), id.as_bytes()].concat()
    }
}

/// A template, segment or campaign as published: by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published<T> {
    pub at: Hlc,
    pub staff: crate::ids::StaffId,
    pub item: T,
}

/// Takes in a marketing change from headquarters, and counts a campaign's coupon. Anything
/// from a store, or a change that fails its check, is skipped with the reason.
pub fn apply(kv: &mut dyn ViewKv, entry: &Entry) -> Result<Option<String>, String> {
    match &entry.payload {
        Payload::Marketing { change } => {
            if entry.origin != StoreId::hq() {
                return Ok(Some("marketing not from headquarters".into()));
            }
            let checked = match change {
                MarketingChange::Template(t) => t.check(),
                MarketingChange::Segment(s) => s.check(),
                MarketingChange::Campaign(c) => c.check(),
                MarketingChange::Run(_) => Ok(()),
            };
            if let Err(e) = checked {
                return Ok(Some(format!("marketing change refused: {e}")));
            }
            match change {
                MarketingChange::Template(t) => put_latest(kv, keys::template(&t.id), entry, t)?,
                MarketingChange::Segment(s) => put_latest(kv, keys::segment(&s.id), entry, s)?,
                MarketingChange::Campaign(c) => put_latest(kv, keys::campaign(&c.id), entry, c)?,
                MarketingChange::Run(r) => {
                    kv.put(keys::run(&r.campaign, &r.run), encode(r)?);
                }
            }
            Ok(None)
        }
        Payload::Wallet {
            event:
                WalletEvent::CampaignCoupon {
                    campaign, template, ..
                },
            ..
        } if entry.origin == StoreId::hq() => {
            bump(kv, keys::template_issued(template))?;
            bump(kv, keys::campaign_issued(campaign))?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(value).map_err(|e| e.to_string())
}

fn put_latest<T: Serialize + DeserializeOwned + Clone>(
    kv: &mut dyn ViewKv,
    key: Vec<u8>,
    entry: &Entry,
    item: &T,
) -> Result<(), String> {
    if let Some(now) = read::<Published<T>>(kv, &key)?
        && now.at >= entry.hlc
    {
        return Ok(());
    }
    let published = Published {
        at: entry.hlc,
        staff: entry.staff.clone(),
        item: item.clone(),
    };
    kv.put(key, encode(&published)?);
    Ok(())
}

fn bump(kv: &mut dyn ViewKv, key: Vec<u8>) -> Result<(), String> {
    let n = issued_at(kv, &key)?;
    kv.put(key, encode(&(n + 1))?);
    Ok(())
}

fn issued_at(kv: &dyn ViewKv, key: &[u8]) -> Result<u64, String> {
    Ok(read::<u64>(kv, key)?.unwrap_or(0))
}

fn read<T: DeserializeOwned>(kv: &dyn ViewKv, key: &[u8]) -> Result<Option<T>, String> {
    kv.get(key)?
        .map(|bytes| postcard::from_bytes(&bytes).map_err(|e| e.to_string()))
        .transpose()
}

pub fn template(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<CouponTemplate>>, String> {
    read(kv, &keys::template(id))
}

pub fn segment(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<Segment>>, String> {
    read(kv, &keys::segment(id))
}

pub fn campaign(kv: &dyn ViewKv, id: &str) -> Result<Option<Published<Campaign>>, String> {
    read(kv, &keys::campaign(id))
}

pub fn run(kv: &dyn ViewKv, campaign: &str, run: &str) -> Result<Option<Run>, String> {
    read(kv, &keys::run(campaign, run))
}

/// Coupons the template has issued in all.
pub fn template_issued(kv: &dyn ViewKv, id: &str) -> Result<u64, String> {
    issued_at(kv, &keys::template_issued(id))
}

/// Coupons the campaign has issued in all.
pub fn campaign_issued(kv: &dyn ViewKv, id: &str) -> Result<u64, String> {
    issued_at(kv, &keys::campaign_issued(id))
}
