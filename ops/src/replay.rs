//! `ops replay`: The Complete Journey replayed through a real chain: a hub and one node per
//! store, each its own process, syncing over QUIC with mutual TLS on loopback, every basket an
//! item checkout at its store for its member over HTTP; then `check` compares what the CSV says
//! with headquarters' reports.
//!
//! What the replay decides about the data:
//! - A household is a member, registered at the store of its first basket in the slice (phone
//!   `139` + the household id in eight digits), before any basket is sold.
//! - A basket is one item checkout, entered late with its own time (补录, `sold_at`), so it is
//!   booked on its day. Products are imported from `products.csv.gz` without prices, and each
//!   line is sold at its `sales_value` as the amount set at the till (金额商品): what the member
//!   paid, to the fen. Loyalty-card and coupon discounts in the data are already inside
//!   `sales_value`; the replay redeems no coupons of ours.
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

/// How to start the node and the hub: a program and the arguments before its own (`ops` runs
/// itself as `ops node …`; a test passes the binaries cargo built).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub node: (PathBuf, Vec<String>),
    pub hub: (PathBuf, Vec<String>),
}

impl Launcher {
    /// This `ops` binary, as `ops node …` and `ops hub …`.
    pub fn this_binary() -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        Ok(Self {
            node: (me.clone(), vec!["node".into()]),
            hub: (me, vec!["hub".into()]),
        })
    }
}

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
    pub launcher: Launcher,
}

/// One line of a basket, as the CSV has it.
#[derive(Debug, Clone)]
pub struct Line {
    pub product: u64,
    pub quantity: i64,
    /// `sales_value` in fen.
    pub fen: i64,
}

#[derive(Debug, Clone)]
pub struct Basket {
    pub id: u64,
    pub household: u32,
    pub store: u32,
    pub at: NaiveDateTime,
    pub lines: Vec<Line>,
}

impl Basket {
    pub fn fen(&self) -> i64 {
        self.lines.iter().map(|l| l.fen).sum()
    }
}

/// The baskets of the period at the stores replayed, in time order.
#[derive(Debug, Default)]
pub struct Slice {
    pub baskets: Vec<Basket>,
    pub stores: Vec<u32>,
    /// Rows of the period at stores left out (`--stores` smaller than all).
    pub rows_left_out: u64,
    pub rows: u64,
}

pub fn store_id(n: u32) -> String {
    format!("S{n:04}")
}

pub fn phone(household: u32) -> String {
    format!("139{household:08}")
}

fn fen_of(text: &str) -> anyhow::Result<i64> {
    let value: Decimal = text.parse().with_context(|| format!("amount {text:?}"))?;
    let fen = value * Decimal::ONE_HUNDRED;
    anyhow::ensure!(fen.fract().is_zero(), "amount {text} is not whole fen");
    i64::try_from(fen.trunc()).with_context(|| format!("amount {text}"))
}

fn yuan(fen: i64) -> String {
    protocol::Fen(fen).to_string()
}

/// Reads the period's baskets at its `stores` busiest stores.
pub fn read_slice(
    data: &Path,
    from: NaiveDate,
    to: NaiveDate,
    stores: usize,
) -> anyhow::Result<Slice> {
    let path = data.join("transactions.csv.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(BufReader::new(flate2::read::GzDecoder::new(file)));
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name}"))
    };
    let cols = [
        column("household_id")?,
        column("store_id")?,
        column("basket_id")?,
        column("product_id")?,
        column("quantity")?,
        column("sales_value")?,
        column("transaction_timestamp")?,
    ];
    let mut baskets: Vec<Basket> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let field = |i: usize| record.get(cols[i]).unwrap_or("");
        let at: NaiveDateTime = field(6)
            .parse()
            .map_err(|e| anyhow::anyhow!("timestamp {:?}: {e}", field(6)))?;
        if at.date() < from || at.date() > to {
            continue;
        }
        let id: u64 = field(2).parse()?;
        let line = Line {
            product: field(3).parse()?,
            quantity: field(4).parse()?,
            fen: fen_of(field(5))?,
        };
        let i = *index.entry(id).or_insert_with(|| {
            baskets.push(Basket {
                id,
                household: field(0).parse().unwrap_or(0),
                store: field(1).parse().unwrap_or(0),
                at,
                lines: Vec::new(),
            });
            baskets.len() - 1
        });
        baskets[i].lines.push(line);
    }
    let mut per_store: BTreeMap<u32, usize> = BTreeMap::new();
    for b in &baskets {
        *per_store.entry(b.store).or_default() += 1;
    }
    let mut ranked: Vec<(u32, usize)> = per_store.into_iter().collect();
    ranked.sort_by_key(|(store, n)| (std::cmp::Reverse(*n), *store));
    if stores > 0 {
        ranked.truncate(stores);
    }
    let kept: BTreeSet<u32> = ranked.iter().map(|(s, _)| *s).collect();
    let rows: u64 = baskets.iter().map(|b| b.lines.len() as u64).sum();
    baskets.retain(|b| kept.contains(&b.store));
    let rows_kept: u64 = baskets.iter().map(|b| b.lines.len() as u64).sum();
    baskets.sort_by_key(|b| (b.at, b.id));
    Ok(Slice {
        baskets,
        stores: kept.into_iter().collect(),
        rows_left_out: rows - rows_kept,
        rows: rows_kept,
    })
}

/// A child process that is killed when dropped.
/// A child process, killed when dropped.
pub struct Proc(Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` with its output piped (logs at `warn` to this process's stderr), so the
/// lines it announces on stdout can be read; `drain` then keeps the pipe from filling.
fn spawn_announcing(mut command: Command) -> anyhow::Result<(Proc, BufReader<ChildStdout>)> {
    let program = PathBuf::from(command.get_program());
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    Ok((Proc(child), stdout))
}

/// Keeps reading what a child prints, so it never blocks on a full pipe.
fn drain(mut stdout: BufReader<ChildStdout>) {
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
}

/// Starts `program prefix… run --config <config> <args>` and reads the lines it announces.
pub fn start(
    (program, prefix): &(PathBuf, Vec<String>),
    config: &Path,
    args: &[&str],
    announced: &[&str],
) -> anyhow::Result<(Proc, Vec<String>)> {
    let mut command = Command::new(program);
    command
        .args(prefix)
        .args(["run", "--config"])
        .arg(config)
        .args(args);
    let (proc, mut stdout) = spawn_announcing(command)?;
    let mut out = Vec::new();
    for prefix in announced {
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        out.push(
            line.trim()
                .strip_prefix(prefix)
                .with_context(|| format!("{} said {line:?}", config.display()))?
                .to_owned(),
        );
    }
    drain(stdout);
    Ok((proc, out))
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// Sends a request until it gets an answer (a transport error or 503 is retried with the same
/// idempotency key); returns the status and the JSON body.
fn send(
    agent: &ureq::Agent,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = match body {
            Some(body) => {
                let mut req = agent
                    .post(url)
                    .header("x-staff-id", "replay")
                    .header("content-type", "application/json");
                if let Some(key) = key {
                    req = req.header("idempotency-key", key);
                }
                req.send(serde_json::to_vec(body)?.as_slice())
            }
            None => agent.get(url).call(),
        };
        match answer {
            Ok(mut r) if r.status().as_u16() != 503 => {
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string()?;
                return Ok((
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                ));
            }
            Ok(_) | Err(_) if tries < 20 => std::thread::sleep(Duration::from_millis(250)),
            Ok(r) => anyhow::bail!("{url}: {}", r.status()),
            Err(e) => return Err(e).with_context(|| url.to_owned()),
        }
    }
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<Value> {
    let (status, body) = send(agent, url, None, None)?;
    anyhow::ensure!(status == 200, "{url}: {status} {body}");
    Ok(body)
}

fn wait_for(
    what: &str,
    seconds: u64,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done()? {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(seconds),
            "waited {seconds} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A running chain: the hub and a node per store, stopped when dropped.
pub struct Chain {
    pub hub: String,
    /// Store number → its node's base URL.
    pub nodes: BTreeMap<u32, String>,
    _procs: Vec<Proc>,
}

const TOP_UP_RULE: &str = "充500送50";

/// Starts `program prefix… host --config <each> --any-port` and reads the address each store
/// announces. Returns the process and store id → base URL.
pub fn start_host(
    (program, prefix): &(PathBuf, Vec<String>),
    configs: &[PathBuf],
) -> anyhow::Result<(Proc, BTreeMap<String, String>)> {
    let mut command = Command::new(program);
    command.args(prefix).arg("host");
    for config in configs {
        command.arg("--config").arg(config);
    }
    command.arg("--any-port");
    let (proc, mut stdout) = spawn_announcing(command)?;
    let mut urls = BTreeMap::new();
    loop {
        let mut line = String::new();
        anyhow::ensure!(
            stdout.read_line(&mut line)? > 0,
            "the process hosting the stores stopped after starting {} of {} (its error is above)",
            urls.len(),
            configs.len()
        );
        if line.starts_with("hosting ") {
            break;
        }
        let (store, url) = line
            .trim()
            .split_once(" listening on ")
            .with_context(|| format!("the host said {line:?}"))?;
        urls.insert(store.to_owned(), url.to_owned());
    }
    drain(stdout);
    Ok((proc, urls))
}

/// Certificates, the hub, then every store enrolled and started: a process each, or all in
/// one (`hosted`: `node host`).
pub fn start_chain(
    dir: &Path,
    stores: &[u32],
    launcher: &Launcher,
    hosted: bool,
) -> anyhow::Result<Chain> {
    let pki = dir.join("pki");
    crate::pki::init(&pki, &["hub", "localhost", "127.0.0.1"])?;
    let mut hub_config = crate::pki::hub_config(&pki, std::path::absolute(dir.join("hub"))?)?;
    // A replay of old data drives the API as the stores' own operator.
    hub_config.open_before_logins = true;
    hub_config.http.connections_per_address_max = hub_config.http.connections_max;
    let hub_toml = dir.join("hub.toml");
    std::fs::write(&hub_toml, hub_config.to_toml())?;
    let args = [
        "--sync-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let (hub, said) = start(
        &launcher.hub,
        &hub_toml,
        &args,
        &["sync on ", "listening on "],
    )?;
    let sync: std::net::SocketAddr = said[0].parse()?;
    let mut procs = vec![hub];
    let mut nodes = BTreeMap::new();
    let mut configs = Vec::new();
    for store in stores {
        let out = dir.join("stores").join(store_id(*store));
        let mut config = crate::pki::enrol(&pki, &store_id(*store), sync, "hub", &out)?;
        config.store_name = format!("门店 {store}");
        config.open_before_logins = true;
        config.http.connections_per_address_max = config.http.connections_max;
        // Ten years back: the data is from 2017.
        config.backdate_days_max = 36_500;
        // Every basket is entered late (补录), which a store manager does.
        config.managers = vec!["replay".into()];
        config.wallet.top_up_rules = vec![node::config::TopUpRuleConfig {
            id: TOP_UP_RULE.into(),
            pay_at_least: Decimal::new(500, 0),
            bonus: Decimal::new(50, 0),
        }];
        let path = out.join("node.toml");
        std::fs::write(&path, config.to_toml())?;
        if hosted {
            configs.push(path);
            continue;
        }
        let (node, said) = start(
            &launcher.node,
            &path,
            &["--listen", "127.0.0.1:0"],
            &["listening on "],
        )?;
        procs.push(node);
        nodes.insert(*store, said[0].clone());
    }
    if !configs.is_empty() {
        let (host, urls) = start_host(&launcher.node, &configs)?;
        procs.push(host);
        for store in stores {
            let url = urls
                .get(&store_id(*store))
                .with_context(|| format!("the host did not start {}", store_id(*store)))?;
            nodes.insert(*store, url.clone());
        }
    }
    Ok(Chain {
        hub: said[1].clone(),
        nodes,
        _procs: procs,
    })
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
    let answer = crate::catalogue::send(&chain.hub, "replay", products)?;
    let version = answer["version"].as_u64().context("catalogue version")?;
    // Members, each at the store of their first basket.
    let mut first: BTreeMap<u32, u32> = BTreeMap::new();
    for b in &slice.baskets {
        first.entry(b.household).or_insert(b.store);
    }
    let mut members: HashMap<u32, String> = HashMap::new();
    let mut last_at: BTreeMap<u32, u32> = BTreeMap::new();
    for (household, store) in &first {
        let body = json!({"name": format!("住户 {household}"), "phone": phone(*household)});
        let url = format!("{}/api/v1/members", chain.nodes[store]);
        let key = format!("replay-member-{household}");
        let (status, answer) = send(&agent, &url, Some(&key), Some(&body))?;
        anyhow::ensure!(
            status == 201 || status == 200,
            "member {household}: {status} {answer}"
        );
        let id = answer["member_id"].as_str().context("member_id")?;
        members.insert(*household, id.to_owned());
        last_at.insert(*store, *household);
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
            let url = format!("{base}/api/v1/members/lookup?phone={}", phone(*household));
            wait_for("every member at every store", 120, || {
                Ok(send(&agent, &url, None, None)?.0 == 200)
            })?;
        }
    }
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
                        sell(
                            &agent,
                            chain,
                            b,
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
fn sell(
    agent: &ureq::Agent,
    chain: &Chain,
    b: &Basket,
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
    let key = format!("replay-basket-{}", b.id);
    let url = format!("{base}/api/v1/checkouts/items");
    let (mut status, mut answer) = send(agent, &url, Some(&key), Some(&body))?;
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
        (status, answer) = send(agent, &url, Some(&format!("{key}-cash")), Some(&body))?;
    }
    if status == 201 || status == 200 {
        out.baskets += 1;
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

/// Figures the CSV gives, in fen and counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// (store, day) → (baskets, fen)
    pub store_days: BTreeMap<(String, NaiveDate), (u64, i64)>,
    /// department → fen
    pub departments: BTreeMap<String, i64>,
    /// member id → (baskets, fen)
    pub members: BTreeMap<String, (u64, i64)>,
}

/// What the CSV says the reports must show (`catalogue`: the products file, for departments).
pub fn expected(
    slice: &Slice,
    catalogue: &[protocol::catalogue::ProductForm],
    members: &HashMap<u32, String>,
) -> Figures {
    let department: HashMap<u64, &str> = catalogue
        .iter()
        .filter_map(|p| Some((p.sku.as_str().parse().ok()?, p.department.as_str())))
        .collect();
    let mut f = Figures::default();
    for b in &slice.baskets {
        let day = f
            .store_days
            .entry((store_id(b.store), b.at.date()))
            .or_default();
        day.0 += 1;
        day.1 += b.fen();
        if let Some(m) = members.get(&b.household) {
            let m = f.members.entry(m.clone()).or_default();
            m.0 += 1;
            m.1 += b.fen();
        }
        for l in &b.lines {
            let d = department.get(&l.product).copied().unwrap_or_default();
            *f.departments.entry(d.to_owned()).or_default() += l.fen;
        }
    }
    f
}

fn fen_in(v: &Value) -> i64 {
    v["amount"]
        .as_str()
        .and_then(|s| fen_of(s).ok())
        .unwrap_or(i64::MIN)
}

/// The same figures from headquarters' reports.
pub fn reported(
    hub: &str,
    stores: &[u32],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Figures> {
    let agent = new_agent();
    let mut f = Figures::default();
    let period = format!("from={from}&to={to}");
    for store in stores {
        let s = store_id(*store);
        let url = format!("{hub}/api/v1/reports/sales?{period}&by=day&store={s}");
        for row in get(&agent, &url)?["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let day: NaiveDate = row["day"]
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|e| anyhow::anyhow!("{url}: day {row}: {e}"))?;
            let sales = row["sales"].as_u64().unwrap_or(0);
            f.store_days
                .insert((s.clone(), day), (sales, fen_in(&row["net"])));
        }
    }
    let url = format!("{hub}/api/v1/reports/sales?{period}&by=department");
    for row in get(&agent, &url)?["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let d = row["department"].as_str().unwrap_or("").to_owned();
        f.departments.insert(d, fen_in(&row["net"]));
    }
    let url = format!("{hub}/api/v1/reports/members?{period}");
    for row in get(&agent, &url)?["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let m = row["member_id"].as_str().unwrap_or("").to_owned();
        f.members
            .insert(m, (row["sales"].as_u64().unwrap_or(0), fen_in(&row["net"])));
    }
    Ok(f)
}

/// Every figure that differs, one line each.
pub fn differences(want: &Figures, got: &Figures) -> Vec<String> {
    fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug + Default>(
        what: &str,
        want: &BTreeMap<K, V>,
        got: &BTreeMap<K, V>,
        out: &mut Vec<String>,
    ) {
        let none = V::default();
        let keys: BTreeSet<&K> = want.keys().chain(got.keys()).collect();
        for k in keys {
            let (w, g) = (want.get(k).unwrap_or(&none), got.get(k).unwrap_or(&none));
            if w != g {
                out.push(format!(
                    "{what} {k:?}: the CSV says {w:?}, headquarters {g:?}"
                ));
            }
        }
    }
    let mut out = Vec::new();
    diff("store and day", &want.store_days, &got.store_days, &mut out);
    diff("department", &want.departments, &got.departments, &mut out);
    diff("member", &want.members, &got.members, &mut out);
    out
}

/// Each store's own report (by day, and by department) is headquarters' report for that store.
pub fn stores_agree(chain: &Chain, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<String>> {
    let agent = new_agent();
    let mut out = Vec::new();
    for (store, base) in &chain.nodes {
        let s = store_id(*store);
        for by in ["day", "department", "tender"] {
            let query = format!("api/v1/reports/sales?from={from}&to={to}&by={by}");
            let own = get(&agent, &format!("{base}/{query}"))?;
            let hq = get(&agent, &format!("{}/{query}&store={s}", chain.hub))?;
            if own["rows"].as_array().is_none_or(Vec::is_empty) {
                out.push(format!("{s} reports no sales by {by}"));
            } else if own != hq {
                out.push(format!(
                    "{s}'s own report by {by} differs from headquarters'"
                ));
            }
        }
    }
    Ok(out)
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
    let outcome = replay(&chain, &slice, options, &catalogue)?;
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
