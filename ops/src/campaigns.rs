//! The Complete Journey's campaigns at headquarters (营销活动导入), and where the replay
//! redeems their coupons.
//!
//! What the import decides about the data:
//! - A campaign (`campaign_descriptions`) becomes a coupon template, a segment and a campaign
//!   of the same id (`cj-07`), run once as of its first day. Its coupons are good from its
//!   first day to its last, on the product categories (`product_category`) of the products its
//!   coupons name (`coupons`; a UPC names up to 14,477 products, more than an entry holds, so
//!   by category): a coupon redeemed on a basket holding none of them is refused.
//! - Its targets (`campaigns`) are brought in as a tag (`CJ活动07`, 批量打标签) on each target
//!   who is a member (found by phone); the segment is that tag.
//! - A household redeemed up to 17 coupons of one campaign (a mailer's booklet holds one per
//!   UPC, up to 209): each target gets a booklet (券包) of as many one-use coupons as the most
//!   any household redeemed of that campaign. The data gives no face value, and its coupons'
//!   money is already inside `sales_value`: a coupon is a 代金券 of 1.00 that the replay's
//!   lines (amounts set at the till, which take no discount) turn into 0.00 off, so every
//!   sales figure still agrees to the fen.
//! - A redemption (`coupon_redemptions`: household, UPC, day) is matched to a basket of that
//!   household in the replay: on its day, else the nearest day before or after, at most
//!   [`DAYS_AWAY_MAX`] away and within the campaign's window (the data dates some redemptions
//!   a day or more from any basket holding the coupon's goods); on that day, the first basket
//!   holding a product of the coupon's UPC, else the first holding a product of the
//!   campaign's categories. Over the whole data, 1,620 of the 2,102 fall on a basket of their
//!   day holding the UPC's product, 238 more on one of the campaign's categories, 241 a day to
//!   three away, and 3 have no such basket. A redemption by a household the campaign did not
//!   target, or with no such basket in the replayed stores and days, is not redeemed, and is
//!   counted and listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use crate::replay::{Basket, Slice, phone};

/// One campaign of The Complete Journey.
#[derive(Debug, Clone)]
pub struct CjCampaign {
    pub id: u32,
    /// Type A, B or C.
    pub kind: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub targets: BTreeSet<u32>,
    /// The product categories its coupons' products are in (its coupons' scope).
    pub categories: BTreeSet<String>,
    /// Each coupon UPC's products.
    pub upcs: HashMap<String, BTreeSet<u64>>,
    /// Coupons each target gets: the most any household redeemed of it (at least 1).
    pub booklet: u32,
}

/// A coupon the data says a household redeemed.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub household: u32,
    pub campaign: u32,
    pub upc: String,
    pub day: NaiveDate,
}

#[derive(Debug, Default)]
pub struct CjCampaigns {
    pub campaigns: BTreeMap<u32, CjCampaign>,
    pub redemptions: Vec<Redemption>,
    /// product → its category (the products file), for matching a basket to a campaign.
    pub category: HashMap<u64, String>,
}

/// The campaign's id, template's and segment's at headquarters.
pub fn campaign_id(campaign: u32) -> String {
    format!("cj-{campaign:02}")
}

/// The tag its targets get.
pub fn tag(campaign: u32) -> String {
    format!("CJ活动{campaign:02}")
}

/// The run an imported campaign is issued in (it runs once).
const RUN: &str = "once";

/// The farthest a redemption's basket may be from the day the data gives it.
pub const DAYS_AWAY_MAX: i64 = 3;

type CsvFile = csv::Reader<BufReader<flate2::read::GzDecoder<std::fs::File>>>;

/// A gzip'd CSV of the data and where each named column is.
fn open(data: &Path, name: &str) -> anyhow::Result<(CsvFile, csv::StringRecord)> {
    let path = data.join(name);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(BufReader::new(flate2::read::GzDecoder::new(file)));
    let headers = reader.headers()?.clone();
    Ok((reader, headers))
}

/// Reads every row of `name` as (column → value) for the named columns, in order.
fn rows(data: &Path, name: &str, columns: &[&str]) -> anyhow::Result<Vec<Vec<String>>> {
    let (mut reader, headers) = open(data, name)?;
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h == *c)
                .with_context(|| format!("{name}: no column {c}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{name}: row {}", n + 2))?;
        out.push(
            at.iter()
                .map(|i| record.get(*i).unwrap_or("").to_owned())
                .collect(),
        );
    }
    Ok(out)
}

fn day(text: &str) -> anyhow::Result<NaiveDate> {
    let at: NaiveDateTime = text
        .parse()
        .map_err(|e| anyhow::anyhow!("timestamp {text:?}: {e}"))?;
    Ok(at.date())
}

fn number<T: std::str::FromStr>(what: &str, text: &str) -> anyhow::Result<T> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("{what} {text:?} is not a number"))
}

/// Reads the campaigns, their targets, coupons and redemptions under `data`.
pub fn read(data: &Path) -> anyhow::Result<CjCampaigns> {
    let mut cj = CjCampaigns::default();
    for r in rows(data, "products.csv.gz", &["product_id", "product_category"])? {
        if !r[1].trim().is_empty() {
            cj.category
                .insert(number("product_id", &r[0])?, r[1].clone());
        }
    }
    for r in rows(
        data,
        "campaign_descriptions.csv.gz",
        &["campaign_id", "campaign_type", "start_date", "end_date"],
    )? {
        let id = number("campaign_id", &r[0])?;
        cj.campaigns.insert(
            id,
            CjCampaign {
                id,
                kind: r[1].clone(),
                from: day(&r[2])?,
                to: day(&r[3])?,
                targets: BTreeSet::new(),
                categories: BTreeSet::new(),
                upcs: HashMap::new(),
                booklet: 1,
            },
        );
    }
    fn campaign<'a>(cj: &'a mut CjCampaigns, id: &str) -> anyhow::Result<&'a mut CjCampaign> {
        let id: u32 = number("campaign_id", id)?;
        cj.campaigns
            .get_mut(&id)
            .with_context(|| format!("campaign {id} is not described"))
    }
    for r in rows(data, "campaigns.csv.gz", &["campaign_id", "household_id"])? {
        let household = number("household_id", &r[1])?;
        campaign(&mut cj, &r[0])?.targets.insert(household);
    }
    for r in rows(
        data,
        "coupons.csv.gz",
        &["coupon_upc", "product_id", "campaign_id"],
    )? {
        let product: u64 = number("product_id", &r[1])?;
        let category = cj.category.get(&product).cloned();
        let c = campaign(&mut cj, &r[2])?;
        c.upcs.entry(r[0].clone()).or_default().insert(product);
        c.categories.extend(category);
    }
    let mut per_household: HashMap<(u32, u32), u32> = HashMap::new();
    for r in rows(
        data,
        "coupon_redemptions.csv.gz",
        &[
            "household_id",
            "coupon_upc",
            "campaign_id",
            "redemption_date",
        ],
    )? {
        let redemption = Redemption {
            household: number("household_id", &r[0])?,
            campaign: number("campaign_id", &r[2])?,
            upc: r[1].clone(),
            day: day(&r[3])?,
        };
        campaign(&mut cj, &r[2])?;
        *per_household
            .entry((redemption.campaign, redemption.household))
            .or_default() += 1;
        cj.redemptions.push(redemption);
    }
    for ((c, _), n) in per_household {
        let c = campaign(&mut cj, &c.to_string())?;
        c.booklet = c.booklet.max(n.min(protocol::campaign::PER_MEMBER_MAX));
    }
    Ok(cj)
}

/// What headquarters did with one campaign.
#[derive(Debug, Clone)]
pub struct Imported {
    pub campaign: u32,
    /// Its targets who are members (tagged).
    pub members: u64,
    /// Its targets who are not.
    pub not_members: u64,
    /// The run's answer.
    pub run: Value,
}

/// Sends a JSON request to headquarters as `staff`; an answer other than 200 or 201 is an
/// error naming the request.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    staff: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let request = match method {
        "PUT" => agent.put(url),
        _ => agent.post(url),
    }
    .header("x-staff-id", staff)
    .header("content-type", "application/json");
    let mut answer = request.send(serde_json::to_vec(body)?.as_slice())?;
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string()?;
    anyhow::ensure!(
        status == 200 || status == 201,
        "{method} {url}: {status} {text}"
    );
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(600)))
            .build(),
    )
}

/// The households of `cj`'s targets headquarters knows as members (by the phone the replay
/// gives a household): one lookup each.
pub fn members_at(hub: &str, cj: &CjCampaigns) -> anyhow::Result<BTreeSet<u32>> {
    let agent = agent();
    let households: BTreeSet<u32> = cj
        .campaigns
        .values()
        .flat_map(|c| c.targets.iter().copied())
        .collect();
    let mut found = BTreeSet::new();
    for h in households {
        let url = format!("{hub}/api/v1/members/lookup?phone={}", phone(h));
        let mut answer = agent.get(&url).call()?;
        match answer.status().as_u16() {
            200 => {
                found.insert(h);
            }
            404 => {}
            status => anyhow::bail!("{url}: {status} {}", answer.body_mut().read_to_string()?),
        }
    }
    Ok(found)
}

/// Brings every campaign of `cj` into headquarters at `hub` as `staff`: its targets among
/// `members` tagged, its template, segment and campaign published, and the campaign run once
/// as of its first day, a booklet to each. Running it again changes nothing (tags and coupons
/// are given once).
pub fn import(
    hub: &str,
    staff: &str,
    cj: &CjCampaigns,
    members: &BTreeSet<u32>,
) -> anyhow::Result<Vec<Imported>> {
    let hub = hub.trim_end_matches('/');
    let agent = agent();
    let api = |path: &str| format!("{hub}/api/v1/{path}");
    let mut out = Vec::with_capacity(cj.campaigns.len());
    for c in cj.campaigns.values() {
        let id = campaign_id(c.id);
        let tagged: Vec<String> = c
            .targets
            .iter()
            .filter(|h| members.contains(h))
            .map(|h| phone(*h))
            .collect();
        for part in tagged.chunks(hub::ingest::TAG_MEMBERS_MAX) {
            call(
                &agent,
                "POST",
                &api("members/tags"),
                staff,
                &json!({"tag": tag(c.id), "phones": part}),
            )?;
        }
        let name = format!("CJ 活动 {} ({})", c.id, c.kind);
        let template = json!({
            "id": id, "name": name, "per_member": c.booklet, "quota": null,
            "offer": {"kind": "voucher", "value": {"amount": "1.00"}},
            "validity": {"dates": {"from": c.from, "to": c.to}},
            "scope": {"categories": c.categories},
            "stacks": null,
        });
        call(&agent, "PUT", &api("marketing/templates"), staff, &template)?;
        let segment = json!({"id": id, "name": format!("{name} 的目标住户"),
            "conditions": [{"tags": {"any": [tag(c.id)]}}]});
        call(&agent, "PUT", &api("marketing/segments"), staff, &segment)?;
        let campaign = json!({"id": id, "name": name, "template": id, "segment": id,
            "schedule": "once", "message": ""});
        call(&agent, "PUT", &api("marketing/campaigns"), staff, &campaign)?;
        let url = api(&format!(
            "marketing/campaigns/{id}/run?on={}&coupons={}",
            c.from, c.booklet
        ));
        let run = call(&agent, "POST", &url, staff, &Value::Null)?;
        out.push(Imported {
            campaign: c.id,
            members: tagged.len() as u64,
            not_members: (c.targets.len() - tagged.len()) as u64,
            run,
        });
    }
    Ok(out)
}

/// The coupon a member redeems as the `n`th redemption of a campaign (its booklet's `n`th).
pub fn coupon(campaign: u32, n: u32, member: &protocol::MemberId) -> String {
    protocol::campaign::booklet_coupon_id(&campaign_id(campaign), RUN, n, member).to_string()
}

/// Where the replay redeems the data's coupons, and what the campaign report must then show.
#[derive(Debug, Default)]
pub struct Matched {
    /// basket → the (campaign, booklet number) it redeems, in the order given.
    pub baskets: HashMap<u64, Vec<(u32, u32)>>,
    /// campaign → (targets who are members, redemptions matched to a basket).
    pub expected: BTreeMap<u32, (u64, u64)>,
    /// Redemptions by households with no basket in the replay, or dated outside its period.
    pub outside: u64,
    /// Of those matched: on a basket holding none of the UPC's products but some of the
    /// campaign's categories, and on a basket of another day than the data's.
    pub by_category: u64,
    pub days_away: u64,
    /// Redemptions of members with no basket to take them, each said why.
    pub unmatched: Vec<String>,
}

/// Matches each redemption of a member of the replay dated in its period (`from` to `to`) to
/// one of its baskets (the module's rule).
pub fn match_redemptions(
    cj: &CjCampaigns,
    slice: &Slice,
    (from, to): (NaiveDate, NaiveDate),
) -> Matched {
    let mut by_household: HashMap<u32, BTreeMap<NaiveDate, Vec<&Basket>>> = HashMap::new();
    for b in &slice.baskets {
        by_household
            .entry(b.household)
            .or_default()
            .entry(b.at.date())
            .or_default()
            .push(b);
    }
    let mut m = Matched::default();
    for c in cj.campaigns.values() {
        let members = c
            .targets
            .iter()
            .filter(|h| by_household.contains_key(h))
            .count();
        m.expected.insert(c.id, (members as u64, 0));
    }
    let mut next: HashMap<(u32, u32), u32> = HashMap::new();
    let mut redemptions: Vec<&Redemption> = cj.redemptions.iter().collect();
    redemptions.sort_by_key(|r| (r.day, r.household, r.campaign));
    for r in redemptions {
        let (Some(days), Some(c), true) = (
            by_household.get(&r.household),
            cj.campaigns.get(&r.campaign),
            (from..=to).contains(&r.day),
        ) else {
            m.outside += 1;
            continue;
        };
        let upc = c.upcs.get(&r.upc);
        let covered = |b: &Basket| {
            b.lines.iter().any(|l| {
                cj.category
                    .get(&l.product)
                    .is_some_and(|cat| c.categories.contains(cat))
            })
        };
        let holds_upc = |b: &Basket| {
            covered(b)
                && b.lines
                    .iter()
                    .any(|l| upc.is_some_and(|u| u.contains(&l.product)))
        };
        let room =
            |b: &Basket| m.baskets.get(&b.id).map_or(0, Vec::len) < protocol::pricing::COUPONS_MAX;
        if !c.targets.contains(&r.household) {
            m.unmatched.push(format!(
                "household {} campaign {} coupon {} on {}: not a target of the campaign",
                r.household, r.campaign, r.upc, r.day
            ));
            continue;
        }
        let away = chrono::TimeDelta::days(DAYS_AWAY_MAX);
        let (first, last) = ((r.day - away).max(c.from), (r.day + away).min(c.to));
        let mut candidates: Vec<(&NaiveDate, &Vec<&Basket>)> = match first <= last {
            true => days.range(first..=last).collect(),
            false => Vec::new(),
        };
        candidates.sort_by_key(|(d, _)| ((**d - r.day).num_days().abs(), **d));
        let found = candidates.iter().find_map(|(d, baskets)| {
            let pick = |f: &dyn Fn(&Basket) -> bool| baskets.iter().find(|b| room(b) && f(b));
            let by_upc = pick(&holds_upc).map(|b| (b.id, false));
            by_upc
                .or_else(|| pick(&covered).map(|b| (b.id, true)))
                .map(|(b, by_category)| (b, by_category, **d != r.day))
        });
        let Some((basket, by_category, days_away)) = found else {
            m.unmatched.push(format!(
                "household {} campaign {} coupon {} on {}: no basket of the campaign's goods within {DAYS_AWAY_MAX} days",
                r.household, r.campaign, r.upc, r.day
            ));
            continue;
        };
        m.by_category += u64::from(by_category);
        m.days_away += u64::from(days_away);
        let n = next.entry((r.campaign, r.household)).or_insert(0);
        *n += 1;
        m.baskets.entry(basket).or_default().push((r.campaign, *n));
        if let Some(e) = m.expected.get_mut(&r.campaign) {
            e.1 += 1;
        }
    }
    m
}

/// Each campaign's report at headquarters next to what the data says: the differences.
pub fn compare(hub: &str, matched: &Matched) -> anyhow::Result<Vec<String>> {
    let agent = agent();
    let mut differences = Vec::new();
    for (c, (targeted, redeemed)) in &matched.expected {
        let url = format!(
            "{}/api/v1/marketing/campaigns/{}/report",
            hub.trim_end_matches('/'),
            campaign_id(*c)
        );
        let mut answer = agent.get(&url).call()?;
        let text = answer.body_mut().read_to_string()?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let row = &body["rows"][0];
        let got = (row["targeted"].as_u64(), row["redeemed"].as_i64());
        if got != (Some(*targeted), Some(*redeemed as i64)) {
            differences.push(format!(
                "campaign {c}: the data says {targeted} members targeted and {redeemed} coupons redeemed, headquarters reports {:?} and {:?}",
                got.0, got.1
            ));
        }
    }
    Ok(differences)
}
