//! `ops replay`: The Complete Journey replayed through a real chain: a hub and one node per
//! store, each its own process (or all hosted in one, `--hosted`), syncing over QUIC with
//! mutual TLS on loopback, every basket an item checkout at its store for its member over
//! HTTP; then `check` compares what the CSV says with headquarters' reports. `data` reads the
//! CSV, `chain` starts the processes, `client` speaks HTTP, `check` compares.
//!
//! What the replay decides about the data:
//! - A household is a member, registered at the store of its first basket in the slice (phone
//!   `139` + the household id in eight digits), before any basket is sold.
//! - A basket is one item checkout, entered late with its own time (补录, `sold_at`), so it is
//!   booked on its day. Products are imported from `products.csv.gz` without prices, and each
//!   line is sold at its `sales_value` as the amount set at the till (金额商品): what the member
//!   paid, to the fen. Loyalty-card and coupon discounts in the data are already inside
//!   `sales_value`. With `campaigns`, the data's campaigns are imported at headquarters and
//!   each redemption is redeemed as a coupon of ours at a basket of its household
//!   (`crate::campaigns` says how they are matched), for 0.00 off; the campaign reports must
//!   agree with the data.
//! - A line of quantity 0 is sold as one unit (a sale line has a positive quantity); its money
//!   is kept. Huge quantities (fuel, up to 89,638) are sold as they are. A line of 0.00 is a
//!   free line (an amount of zero), kept.
//! - Stored value (the data has none), seeded and repeatable: a share of the members top up
//!   at their first store before the replay; a basket of such a member is paid from stored
//!   value when the balance covers it, otherwise half the time they top up at that store first
//!   (the smallest of 200, 500, 1000, 2000 yuan that covers it; 500 and more under 充500送50)
//!   and pay from stored value, else in cash. Top-ups are booked today (they are ours, not the
//!   data's), spends on the basket's day. Spends at another store than the one holding the
//!   member's rights go through headquarters, as they would in a live chain.
//! - Everything else is paid in cash, exactly.
//!
//! Baskets are sent by `tills` threads, each owning a share of the members (so a member's
//! baskets go in time order, as they happened); a request that fails in transport is sent
//! again with the same idempotency key.

// Amounts in fen are written yuan_fen (500_00 is 500 yuan).
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rust_decimal::Decimal;
use serde_json::{Value, json};

mod chain;
mod check;
mod client;
mod data;

pub use chain::*;
pub use check::*;
use client::*;
pub use data::*;

#[derive(Debug, Clone)]
pub struct Options {
    /// Where The Complete Journey's files are.
    pub data: PathBuf,
    /// A fresh directory for certificates, configurations and every process's data.
    pub dir: PathBuf,
    /// The busiest stores of the period (0: every store with a basket in it).
    pub stores: usize,
    /// Baskets from `from` to `to`, both included (the timestamps' dates).
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Seed of the stored-value choices.
    pub seed: u64,
    /// Threads sending checkouts at once.
    pub tills: usize,
    /// Share of members who prepay (0 to 1).
    pub prepaid_share: f64,
    /// After the check, time this many chain-wide monthly reports by store (0: none).
    pub report_queries: usize,
    /// One process hosts every store (`node host`) instead of a node process per store as in
    /// a real chain: slower for a few busy stores, but hundreds fit on one machine.
    pub hosted: bool,
    /// Import the data's campaigns and redeem their coupons where the data says
    /// (`crate::campaigns`).
    pub campaigns: bool,
    /// Send every product sold to every store (the catalogue before 门店经营品项) instead of
    /// each store only what it sold in the data.
    pub whole_catalogue: bool,
    pub launcher: Launcher,
}

/// What the replay did.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub baskets: u64,
    pub lines: u64,
    pub fen: i64,
    pub members: u64,
    /// Household → the member id its registration got.
    pub member_ids: HashMap<u32, String>,
    pub top_ups: u64,
    pub stored_value_spends: u64,
    /// Stored-value spends at another store than the member's first.
    pub spends_elsewhere: u64,
    /// Stored-value spends refused, paid in cash instead: headquarters could not move the
    /// member's rights in time (the till waits 4 s), or the store had not yet heard of a top-up
    /// made elsewhere moments before.
    pub stored_value_to_cash: u64,
    /// Those by why the till was refused: the error code and the start of its detail.
    pub to_cash_why: std::collections::BTreeMap<String, u64>,
    /// Stored value spent, and paid in by top-ups, in fen.
    pub stored_value_fen: i64,
    pub top_up_fen: i64,
    /// Checkouts the chain refused (each printed), with what they would have paid.
    pub refused: Vec<String>,
    pub zero_quantity_lines: u64,
    /// Campaign coupons redeemed at the tills.
    pub coupons_redeemed: u64,
    /// The data's redemptions: by households outside the replay, and of members with no
    /// basket to take them (`crate::campaigns::Matched`).
    pub redemptions_outside: u64,
    pub redemptions_unmatched: Vec<String>,
    /// Of those redeemed: on a basket of the campaign's categories but not the UPC's goods,
    /// and on another day than the data's.
    pub redemptions_by_category: u64,
    pub redemptions_days_away: u64,
    pub seconds_setup: f64,
    pub seconds_selling: f64,
    pub seconds_syncing: f64,
    /// A chain-wide report of the period's first month by store, timed: p50 and p99 in ms;
    /// and the baseline, the hub's smallest answer (its catalogue version) in the same run.
    pub report_ms: Option<(f64, f64)>,
    pub baseline_ms: Option<(f64, f64)>,
}

/// Registers every member, imports the products sold (from `catalogue`, the products file),
/// then sells every basket.
pub fn replay(
    chain: &Chain,
    slice: &Slice,
    options: &Options,
    catalogue: &[protocol::catalogue::ProductForm],
    campaigns: Option<(&crate::campaigns::CjCampaigns, &crate::campaigns::Matched)>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let agent = new_agent();
    let mut outcome = Outcome::default();
    // The catalogue: the products sold, unpriced (sold at the amount each line paid).
    let sold: BTreeSet<u64> = slice
        .baskets
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.product))
        .collect();
    let mut products: Vec<protocol::catalogue::ProductForm> = catalogue
        .iter()
        .filter(|p| {
            p.sku
                .as_str()
                .parse::<u64>()
                .is_ok_and(|id| sold.contains(&id))
        })
        .cloned()
        .collect();
    // A few products sold are not in products.csv.gz: they get a name and no department.
    let known: BTreeSet<u64> = products
        .iter()
        .filter_map(|p| p.sku.as_str().parse().ok())
        .collect();
    for id in sold.difference(&known) {
        products.push(
            crate::catalogue::form(&id.to_string(), format!("商品 {id}"))
                .map_err(anyhow::Error::msg)?,
        );
    }
    // 门店经营品项: each store carries what it sells in the data (unless the whole catalogue is
    // asked for: every product at every store).
    let mut carried: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    if !options.whole_catalogue {
        for b in &slice.baskets {
            for l in &b.lines {
                carried.entry(l.product).or_default().insert(b.store);
            }
        }
    }
    let mut changes: Vec<serde_json::Value> = Vec::with_capacity(products.len() * 2);
    for p in products {
        let stores = p
            .sku
            .as_str()
            .parse::<u64>()
            .ok()
            .and_then(|id| carried.get(&id));
        let sku = p.sku.clone();
        changes.push(json!({"product": p}));
        if let Some(stores) = stores {
            let stores: Vec<String> = stores.iter().map(|s| data::store_id(*s)).collect();
            changes.push(json!({"carried": {"sku": sku, "stores": stores}}));
        }
    }
    let answer = crate::catalogue::send_changes(&chain.hub, "replay", changes)?;
    let version = answer["version"].as_u64().context("catalogue version")?;
    // Members, each at the store of their first basket.
    let mut first: BTreeMap<u32, u32> = BTreeMap::new();
    for b in &slice.baskets {
        first.entry(b.household).or_insert(b.store);
    }
    // Registered by the tills at once, as a chain's stores register members: each store then
    // applies others' registrations in batches rather than one at a time.
    let order: Vec<(u32, u32)> = first.iter().map(|(h, s)| (*h, *s)).collect();
    let registered: Vec<anyhow::Result<Vec<(u32, u32, String)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = order
            .chunks(order.len().div_ceil(options.tills.max(1)).max(1))
            .map(|share| {
                scope.spawn(move || {
                    let agent = new_agent();
                    let mut done = Vec::with_capacity(share.len());
                    for (household, store) in share {
                        let body = json!({"name": format!("住户 {household}"),
                                          "phone": phone(*household)});
                        let url = format!("{}/api/v1/members", chain.nodes[store]);
                        let key = format!("replay-member-{household}");
                        let (status, answer) = send(&agent, &url, Some(&key), Some(&body))?;
                        anyhow::ensure!(
                            status == 201 || status == 200,
                            "member {household}: {status} {answer}"
                        );
                        let id = answer["member_id"].as_str().context("member_id")?;
                        done.push((*household, *store, id.to_owned()));
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a till thread panicked")))
            })
            .collect()
    });
    let mut members: HashMap<u32, String> = HashMap::new();
    let mut last_at: BTreeMap<u32, u32> = BTreeMap::new();
    for share in registered {
        for (household, store, id) in share? {
            members.insert(household, id);
            last_at.insert(store, household);
        }
    }
    outcome.members = members.len() as u64;
    outcome.member_ids = members.clone();
    // Every store knows every member and the catalogue before the first sale.
    for base in chain.nodes.values() {
        wait_for("the catalogue at every store", 120, || {
            Ok(
                get(&agent, &format!("{base}/api/v1/catalogue"))?["version"].as_u64()
                    >= Some(version),
            )
        })?;
        for household in last_at.values() {
            // A search, not a lookup: a till's lookup meets the member, and the store would
            // follow them (the routed feed) without their ever shopping there.
            let url = format!("{base}/api/v1/members/search?q={}", phone(*household));
            wait_for("every member at every store", 120, || {
                let (status, found) = send(&agent, &url, None, None)?;
                Ok(status == 200 && found["members"].as_array().is_some_and(|m| !m.is_empty()))
            })?;
        }
    }
    // The data's campaigns, their targets tagged and each given a booklet of coupons.
    if let Some((cj, matched)) = campaigns {
        let households: BTreeSet<u32> = members.keys().copied().collect();
        crate::campaigns::import(&chain.hub, "replay", cj, &households)?;
        outcome.redemptions_outside = matched.outside;
        outcome.redemptions_by_category = matched.by_category;
        outcome.redemptions_days_away = matched.days_away;
        outcome.redemptions_unmatched = matched.unmatched.clone();
    }
    let redeeming = campaigns.map(|(_, m)| &m.baskets);
    // Seeded stored value: who prepays, and how much.
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut balances: BTreeMap<u32, i64> = BTreeMap::new();
    for (household, store) in &first {
        if rng.random_bool(options.prepaid_share.clamp(0.0, 1.0)) {
            let paid = [200_00, 500_00, 1000_00][rng.random_range(0..3)];
            let bonus = top_up(
                &agent,
                &chain.nodes[store],
                &members[household],
                paid,
                "first",
            )?;
            balances.insert(*household, paid + bonus);
            outcome.top_ups += 1;
            outcome.top_up_fen += paid;
        }
    }
    outcome.seconds_setup = started.elapsed().as_secs_f64();
    // Baskets: each till thread owns the members with `household % tills == t`.
    let selling = Instant::now();
    let tills = options.tills.max(1);
    let mut shares: Vec<Vec<&Basket>> = vec![Vec::new(); tills];
    for b in &slice.baskets {
        shares[b.household as usize % tills].push(b);
    }
    let results: Vec<anyhow::Result<Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .enumerate()
            .map(|(t, baskets)| {
                let (members, first, chain) = (&members, &first, chain);
                let mut balances = balances.clone();
                let seed = options.seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let agent = new_agent();
                    let mut out = Outcome::default();
                    for b in baskets {
                        let coupons = redeeming
                            .and_then(|r| r.get(&b.id))
                            .map_or(&[][..], Vec::as_slice);
                        sell(
                            &agent,
                            chain,
                            (b, coupons),
                            members,
                            first,
                            &mut balances,
                            &mut rng,
                            &mut out,
                        )?;
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a till panicked")))
            })
            .collect()
    });
    for r in results {
        let r = r?;
        outcome.baskets += r.baskets;
        outcome.lines += r.lines;
        outcome.fen += r.fen;
        outcome.top_ups += r.top_ups;
        outcome.stored_value_spends += r.stored_value_spends;
        outcome.spends_elsewhere += r.spends_elsewhere;
        outcome.stored_value_to_cash += r.stored_value_to_cash;
        for (why, n) in r.to_cash_why {
            *outcome.to_cash_why.entry(why).or_default() += n;
        }
        outcome.stored_value_fen += r.stored_value_fen;
        outcome.top_up_fen += r.top_up_fen;
        outcome.zero_quantity_lines += r.zero_quantity_lines;
        outcome.coupons_redeemed += r.coupons_redeemed;
        outcome.refused.extend(r.refused);
    }
    outcome.seconds_selling = selling.elapsed().as_secs_f64();
    // Everything at headquarters.
    let syncing = Instant::now();
    for base in chain.nodes.values() {
        wait_for("every store's log at headquarters", 600, || {
            Ok(get(&agent, &format!("{base}/api/v1/sync"))?["backlog"].as_u64() == Some(0))
        })?;
    }
    outcome.seconds_syncing = syncing.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Tops up `paid` fen (under 充500送50 from 500 yuan); returns the bonus given.
fn top_up(
    agent: &ureq::Agent,
    base: &str,
    member: &str,
    paid: i64,
    why: &str,
) -> anyhow::Result<i64> {
    let mut body = json!({"amount": {"amount": yuan(paid)}});
    let bonus = if paid >= 500_00 {
        body["rule"] = json!(TOP_UP_RULE);
        50_00
    } else {
        0
    };
    let key = format!("replay-topup-{member}-{why}");
    let url = format!("{base}/api/v1/members/{member}/top-ups");
    let (status, answer) = send(agent, &url, Some(&key), Some(&body))?;
    anyhow::ensure!(status == 201 || status == 200, "top-up: {status} {answer}");
    Ok(bonus)
}

#[allow(clippy::too_many_arguments)]
/// How often a checkout with coupons is tried while they are on their way (250 ms apart): the
/// coupons themselves (a booklet is issued at headquarters moments before), or their rights.
const COUPON_TRIES: u32 = 120;

/// Whether a checkout with coupons refused with `code` is worth trying again: the coupons have
/// not reached the store yet, or (without stored value, whose shortfall pays in cash instead)
/// their rights are on their way.
fn coupons_on_their_way(code: &str, stored: bool) -> bool {
    code == "coupon_not_found"
        || (!stored && ["rights_elsewhere", "rights_unreachable"].contains(&code))
}

#[allow(clippy::too_many_arguments)]
fn sell(
    agent: &ureq::Agent,
    chain: &Chain,
    (b, coupons): (&Basket, &[(u32, u32)]),
    members: &HashMap<u32, String>,
    first: &BTreeMap<u32, u32>,
    balances: &mut BTreeMap<u32, i64>,
    rng: &mut StdRng,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let base = &chain.nodes[&b.store];
    let member = &members[&b.household];
    let due = b.fen();
    let lines: Vec<Value> = b
        .lines
        .iter()
        .map(|l| {
            json!({"sku": l.product.to_string(), "qty": l.quantity.max(1).to_string(),
                "amount": {"amount": yuan(l.fen)}})
        })
        .collect();
    out.zero_quantity_lines += b.lines.iter().filter(|l| l.quantity == 0).count() as u64;
    // Stored value when the member prepaid and it covers the basket (or a top-up here makes
    // it do so, half the time).
    let mut stored = false;
    if let Some(balance) = balances.get_mut(&b.household)
        && due > 0
    {
        if *balance < due && rng.random_bool(0.5) {
            let paid = [200_00, 500_00, 1000_00, 2000_00]
                .into_iter()
                .find(|p| *balance + p >= due)
                .unwrap_or(2000_00);
            let why = format!("basket-{}", b.id);
            *balance += paid + top_up(agent, base, member, paid, &why)?;
            out.top_ups += 1;
            out.top_up_fen += paid;
        }
        if *balance >= due {
            *balance -= due;
            stored = true;
        }
    }
    // A basket of free lines only (0.00) is still a sale, with no tender.
    let tenders = match (stored, due) {
        (true, _) => json!([{"kind": "stored_value", "amount": {"amount": yuan(due)}}]),
        (false, 0) => json!([]),
        (false, _) => json!([{"kind": "cash", "tendered": {"amount": yuan(due)}}]),
    };
    let mut body = json!({
        "member_id": member, "lines": lines, "tenders": tenders,
        "sold_at": b.at.format("%Y-%m-%dT%H:%M:%S").to_string(),
    });
    if !coupons.is_empty() {
        // The cashier finds the member first (scans their code) to see their coupons: a store
        // that has not met them yet follows them from then on (the routed feed), and their
        // wallet, the coupons in it, reaches the store moments later.
        let found = format!("{base}/api/v1/members/lookup?phone={}", phone(b.household));
        send(agent, &found, None, None)?;
        let id = protocol::MemberId::parse(member).map_err(anyhow::Error::msg)?;
        let ids: Vec<String> = coupons
            .iter()
            .map(|(c, n)| crate::campaigns::coupon(*c, *n, &id))
            .collect();
        body["coupons"] = json!(ids);
    }
    let key = format!("replay-basket-{}", b.id);
    let url = format!("{base}/api/v1/checkouts/items");
    // A refused checkout writes nothing: tried again under a new key.
    let checkout = |body: &Value, key: &str| -> anyhow::Result<(u16, Value)> {
        let mut tries = 0;
        loop {
            let this = match tries {
                0 => key.to_owned(),
                n => format!("{key}-c{n}"),
            };
            let (status, answer) = send(agent, &url, Some(&this), Some(body))?;
            let code = answer["code"].as_str().unwrap_or("");
            let stored = body["tenders"][0]["kind"] == "stored_value";
            if coupons.is_empty() || !coupons_on_their_way(code, stored) || tries == COUPON_TRIES {
                return Ok((status, answer));
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let (mut status, mut answer) = checkout(&body, &key)?;
    if stored
        && [
            "rights_elsewhere",
            "rights_unreachable",
            "insufficient_balance",
        ]
        .contains(&answer["code"].as_str().unwrap_or(""))
    {
        // What a cashier does when headquarters cannot move the balance here in time, or when
        // this store has not yet heard of a top-up made at another store moments before (time
        // runs fast in a replay): take cash instead (a new request, so a new key).
        stored = false;
        if let Some(balance) = balances.get_mut(&b.household) {
            *balance += due;
        }
        out.stored_value_to_cash += 1;
        // Grouped by the reason's first clause, amounts left out.
        let detail = answer["detail"].as_str().unwrap_or("");
        let clause = detail.split(':').next().unwrap_or(detail);
        let mut reason = String::with_capacity(clause.len());
        for c in clause.chars() {
            match (c.is_ascii_digit(), reason.ends_with('N')) {
                (true, true) => {}
                (true, false) => reason.push('N'),
                (false, _) => reason.push(c),
            }
        }
        let why = format!("{} ({reason})", answer["code"].as_str().unwrap_or(""));
        *out.to_cash_why.entry(why).or_default() += 1;
        body["tenders"] = json!([{"kind": "cash", "tendered": {"amount": yuan(due)}}]);
        (status, answer) = checkout(&body, &format!("{key}-cash"))?;
    }
    if status == 201 || status == 200 {
        out.baskets += 1;
        out.coupons_redeemed += coupons.len() as u64;
        out.lines += b.lines.len() as u64;
        out.fen += due;
        if stored {
            out.stored_value_spends += 1;
            out.stored_value_fen += due;
            out.spends_elsewhere += u64::from(first.get(&b.household) != Some(&b.store));
        }
    } else {
        out.refused.push(format!(
            "basket {} at {} ({} yuan): {status} {answer}",
            b.id,
            store_id(b.store),
            yuan(due)
        ));
    }
    Ok(())
}

/// The whole run: read, start the chain, replay, check. Returns the outcome and the
/// differences (none when every figure agrees).
pub fn run(options: &Options) -> anyhow::Result<(Slice, Outcome, Vec<String>)> {
    let slice = read_slice(&options.data, options.from, options.to, options.stores)?;
    anyhow::ensure!(!slice.baskets.is_empty(), "no baskets in the period");
    std::fs::create_dir_all(&options.dir)?;
    let chain = start_chain(
        &options.dir,
        &slice.stores,
        &options.launcher,
        options.hosted,
    )?;
    let catalogue = crate::catalogue::read(&options.data.join("products.csv.gz"))?.products;
    let cj = match options.campaigns {
        true => {
            let cj = crate::campaigns::read(&options.data)?;
            let period = (options.from, options.to);
            let matched = crate::campaigns::match_redemptions(&cj, &slice, period);
            Some((cj, matched))
        }
        false => None,
    };
    let outcome = replay(
        &chain,
        &slice,
        options,
        &catalogue,
        cj.as_ref().map(|(cj, m)| (cj, m)),
    )?;
    let want = expected(&slice, &catalogue, &outcome.member_ids);
    let got = reported(&chain.hub, &slice.stores, options.from, options.to)?;
    let mut differences = differences(&want, &got);
    differences.extend(stores_agree(&chain, options.from, options.to)?);
    // Stored value: what the tills paid in and spent, as headquarters' wallet report has it
    // (top-ups are booked today, spends on the baskets' days).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let today = protocol::calendar::StoreCalendar::default().business_date(now_ms);
    let wallet = |from: NaiveDate, to: NaiveDate| -> anyhow::Result<(i64, i64)> {
        let url = format!(
            "{}/api/v1/reports/sales?from={from}&to={to}&by=wallet",
            chain.hub
        );
        let rows = get(&new_agent(), &url)?["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(rows.iter().fold((0, 0), |(paid, spent), r| {
            (
                paid + fen_in(&r["top_up_paid"]),
                spent + fen_in(&r["spent_principal"]) + fen_in(&r["spent_bonus"]),
            )
        }))
    };
    let (paid, _) = wallet(
        today - chrono::TimeDelta::days(1),
        today + chrono::TimeDelta::days(1),
    )?;
    let (_, spent) = wallet(options.from, options.to)?;
    if (paid, spent) != (outcome.top_up_fen, outcome.stored_value_fen) {
        differences.push(format!(
            "stored value: the tills paid in {} and spent {}, headquarters reports {} and {}",
            yuan(outcome.top_up_fen),
            yuan(outcome.stored_value_fen),
            yuan(paid),
            yuan(spent)
        ));
    }
    differences.extend(outcome.refused.iter().map(|r| format!("refused: {r}")));
    // Each campaign's report: the members targeted and the coupons redeemed.
    if let Some((_, matched)) = &cj {
        differences.extend(crate::campaigns::compare(&chain.hub, matched)?);
    }
    let mut outcome = outcome;
    if options.report_queries > 0 {
        let to = options.to.min(options.from + chrono::TimeDelta::days(30));
        let url = format!(
            "{}/api/v1/reports/sales?from={}&to={to}&by=store",
            chain.hub, options.from
        );
        let agent = new_agent();
        let time = |url: &str| -> anyhow::Result<(f64, f64)> {
            let mut times = Vec::with_capacity(options.report_queries);
            for _ in 0..options.report_queries {
                let started = Instant::now();
                get(&agent, url)?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
            Ok((at(0.5), at(0.99)))
        };
        outcome.baseline_ms = Some(time(&format!("{}/api/v1/catalogue", chain.hub))?);
        outcome.report_ms = Some(time(&url)?);
    }
    Ok((slice, outcome, differences))
}
