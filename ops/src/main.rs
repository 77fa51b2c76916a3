//! `ops`: the operator's command line — a demo store with sample data, and benchmarks.
#![allow(clippy::print_stdout)]

mod bench;
mod demo;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Operator CLI for the membership and cashier system (运维工具)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The store node's command line (`ops node run --config node.toml`; see `ops node --help`).
    #[command(disable_help_flag = true)]
    Node {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The hub's command line (`ops hub run --config hub.toml`; see `ops hub --help`).
    #[command(disable_help_flag = true)]
    Hub {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start a headquarters hub and three stores on loopback with sample data; keep them running.
    Demo {
        /// Where the demo keeps its certificates, configuration and data (kept between runs).
        #[arg(long, default_value = "demo-data")]
        dir: PathBuf,
        /// The first store's HTTP port; the others follow it. The hub's API is on port + 10.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Replay The Complete Journey through a real chain (a hub and a node process per store over
    /// QUIC), then compare every figure the CSV gives with headquarters' reports.
    Replay {
        #[arg(long, default_value = "../shared/data/completejourney")]
        data: PathBuf,
        /// A fresh directory for the chain's certificates and data (removed first if it exists).
        #[arg(long, default_value = "replay-data")]
        dir: PathBuf,
        /// The busiest stores of the period (0: every store).
        #[arg(long, default_value_t = 5)]
        stores: usize,
        #[arg(long, default_value = "2017-01-01", value_parser = date)]
        from: chrono::NaiveDate,
        #[arg(long, default_value = "2017-01-14", value_parser = date)]
        to: chrono::NaiveDate,
        /// Seed of the stored-value top-ups and spends.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Checkouts in flight at once.
        #[arg(long, default_value_t = 32)]
        tills: usize,
        /// Share of members who prepay stored value.
        #[arg(long, default_value_t = 0.3)]
        prepaid: f64,
        /// Afterwards, time this many chain-wide reports of the first month by store.
        #[arg(long, default_value_t = 0)]
        time_reports: usize,
        /// Host every store in one node process (`node host`) instead of a process per store
        /// as a real chain runs: slower for a few busy stores, but hundreds fit.
        #[arg(long)]
        hosted: bool,
        /// Import the data's 27 campaigns at headquarters and redeem their coupons where
        /// `coupon_redemptions` says (`ops campaigns import` tells how); each campaign's report
        /// must then agree with the data.
        #[arg(long)]
        campaigns: bool,
        /// Send every product sold to every store, as before 门店经营品项 (each store carries
        /// only what it sells in the data otherwise).
        #[arg(long)]
        whole_catalogue: bool,
    },
    /// 营销活动: The Complete Journey's campaigns at headquarters.
    Campaigns {
        #[command(subcommand)]
        command: CampaignsCmd,
    },
    /// The chain's certificates: create the CA and the hub's certificate, or enrol a store.
    Pki {
        #[command(subcommand)]
        command: PkiCmd,
    },
    /// The catalogue headquarters keeps (商品资料).
    Catalogue {
        #[command(subcommand)]
        command: CatalogueCmd,
    },
    /// The chain's members (会员).
    Members {
        #[command(subcommand)]
        command: MembersCmd,
    },
    /// Benchmarks, each next to a baseline measured in the same run (Markdown for BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        command: BenchCmd,
    },
}

#[derive(Subcommand)]
enum CatalogueCmd {
    /// Import products from CSV (ours, or The Complete Journey's products.csv.gz) as one
    /// catalogue version; rows that cannot be imported are listed with the reason.
    Import {
        /// Headquarters' HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        hub: String,
        #[arg(long)]
        file: PathBuf,
        /// The operator recorded on the change.
        #[arg(long, default_value = "hq-import")]
        staff: String,
        /// Only read and check the file; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum CampaignsCmd {
    /// Brings The Complete Journey's campaigns (campaign_descriptions, campaigns, coupons)
    /// into headquarters: each a coupon template on its products' categories, good in its
    /// window, a segment of its targets who are members (found by the phone `ops replay`
    /// gives a household, tagged), and the campaign run once as of its first day, each target
    /// given a booklet of as many coupons as the most any household redeemed. Running it again
    /// gives nobody anything twice.
    Import {
        #[arg(long, default_value = "../shared/data/completejourney")]
        data: PathBuf,
        /// Headquarters' HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        hub: String,
        /// The operator recorded on every change.
        #[arg(long, default_value = "hq-import")]
        staff: String,
    },
}

#[derive(Subcommand)]
enum MembersCmd {
    /// 会员导入: sends a CSV (UTF-8) or Excel (.xlsx) file of a chain's existing members to
    /// headquarters — phone, name, card_no, birthday, gender, tier, home_store, join_date,
    /// principal, bonus, points, points_expire, cards (English or Chinese headers). Check it
    /// with --dry-run first: an import with a bad row imports nothing; one run again imports
    /// nothing twice.
    Import {
        /// Headquarters' HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        hub: String,
        #[arg(long)]
        file: PathBuf,
        /// The operator recorded on the import.
        #[arg(long, default_value = "hq-import")]
        staff: String,
        /// A session token of an HQ admin (once headquarters asks for logins).
        #[arg(long)]
        token: Option<String>,
        /// Only check the file and print every bad row; import nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Every benchmark in one run (about 25 minutes), each figure next to its baseline, written
    /// into BENCHMARKS.md between its markers (`--write`) or printed.
    All {
        #[arg(long, default_value = "../shared/data/completejourney")]
        data: PathBuf,
        /// The file whose generated section to replace (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
        /// Small sizes throughout: a try of the command in a few minutes, not figures (CI runs
        /// it on `tests/data/completejourney-slice`).
        #[arg(long)]
        quick: bool,
    },
    /// The central-server baseline: the same checkout as one transaction in a local PostgreSQL
    /// (installed from Debian's packages if missing), on loopback and through a delaying proxy,
    /// next to our node with headquarters unreachable.
    Central {
        /// Seconds per throughput measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Sequential checkouts of one till, for the latency figures.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Round trip the proxy adds for the wide-area rows, in milliseconds.
        #[arg(long, default_value_t = 30)]
        wan_ms: u64,
    },
    /// Headquarters' marketing at size: a dormant segment over a large directory, and a
    /// campaign issued to many members end to end, each next to its floor or baseline.
    Marketing {
        /// Members in the directory.
        #[arg(long, default_value_t = 1_000_000)]
        members: usize,
        /// Members the campaign is issued to.
        #[arg(long, default_value_t = 100_000)]
        coupons: usize,
    },
    /// 会员导入 of a generated member file into a hub and stores, end to end, next to reading
    /// and checking the file alone.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        members: usize,
        #[arg(long, default_value_t = 2)]
        stores: u32,
    },
    /// A store's backup and restore at a year's size, next to a copy of its files.
    Backup {
        /// Members registered at the store.
        #[arg(long, default_value_t = 20_000)]
        members: usize,
        /// Quick sales in its log (a busy store's year: 400 a day).
        #[arg(long, default_value_t = 150_000)]
        sales: usize,
    },
    /// Headquarters' backup and restore with a large member directory, next to a copy of its
    /// files.
    HubBackup {
        /// Members registered (through 20 stores' logs).
        #[arg(long, default_value_t = 1_000_000)]
        members: usize,
        /// Cash sales in those logs.
        #[arg(long, default_value_t = 200_000)]
        sales: usize,
    },
    /// A store with a large member directory: lookup by phone over HTTP, and the node's memory.
    Members {
        /// Members for the memory figure.
        #[arg(long, default_value_t = 100_000)]
        small: usize,
        /// Members for the lookup figure.
        #[arg(long, default_value_t = 1_000_000)]
        large: usize,
        /// Lookups timed at each size.
        #[arg(long, default_value_t = 5000)]
        lookups: usize,
    },
    /// Import The Complete Journey's 92k products at headquarters, push them to many stores at
    /// once, and look stock up at a real node.
    Catalogue {
        /// Where products.csv.gz is.
        #[arg(long, default_value = "../shared/data/completejourney")]
        data: PathBuf,
        /// Stores taking the catalogue at once.
        #[arg(long, default_value_t = 50)]
        stores: usize,
        /// Stock lookups timed at the node.
        #[arg(long, default_value_t = 2000)]
        lookups: usize,
    },
    /// Durable checkout throughput and latency, next to raw sled.
    Checkout {
        /// Seconds per throughput measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent tills sending checkouts to the node core.
        #[arg(long, default_value_t = 64)]
        tills: usize,
        /// Sequential checkouts through the HTTP API for the latency figures.
        #[arg(long, default_value_t = 5000)]
        requests: usize,
    },
    /// The hub under many stores: durable ingest rate, and many stores reconnecting at once.
    Hub {
        /// Stores pushing at once.
        #[arg(long, default_value_t = 100)]
        stores: usize,
        /// Entries each store pushes.
        #[arg(long, default_value_t = 2000)]
        entries: u64,
        /// Stores reconnecting at once.
        #[arg(long, default_value_t = 1000)]
        reconnecting: usize,
    },
    /// Stored-value payments: at the store holding the rights, and across stores through the hub.
    Wallet {
        /// Members, each paying once at home and three times at another store (half of them
        /// pay there first one at a time, half back to back).
        #[arg(long, default_value_t = 400)]
        members: usize,
        /// The share of each balance headquarters keeps to grant at once.
        #[arg(long, default_value_t = protocol::bank::Policy::default().reserve_percent)]
        reserve_percent: u8,
        /// A round trip each store's link to headquarters adds (a UDP proxy), in ms.
        #[arg(long, default_value_t = 0)]
        rtt_ms: u64,
        /// Headquarters on PostgreSQL (a server of the bench's own) instead of sled.
        #[arg(long)]
        postgres: bool,
    },
    /// A year of real shopping replayed as stored-value payments: round trips needed, and what
    /// still succeeds with headquarters down.
    Replay {
        #[arg(long, default_value = "../shared/data/completejourney")]
        data: PathBuf,
        /// Weeks headquarters learns where members shop before the measured part.
        #[arg(long, default_value_t = 13)]
        learn_weeks: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Offline overdraft per member and store, in yuan, for the outage rows that allow one.
        #[arg(long, default_value_t = 100)]
        overdraft_yuan: u64,
        /// The share of each balance headquarters keeps to grant at once (hub.toml's
        /// `[rights] reserve_percent`); the default is the hub's.
        #[arg(long, default_value_t = protocol::bank::Policy::default().reserve_percent)]
        reserve_percent: u8,
    },
    /// Sync wire cost, next to automerge's per-document sync of the same documents.
    Sync {
        /// Members whose registration and edits are replicated.
        #[arg(long, default_value_t = 2000)]
        members: usize,
        /// Profile edits per member.
        #[arg(long, default_value_t = 4)]
        edits: usize,
        /// Members held when measuring an idle reconnect.
        #[arg(long, default_value_t = 100_000)]
        idle_members: usize,
        /// Documents run through automerge's sync for the idle baseline (scaled to all).
        #[arg(long, default_value_t = 10_000)]
        sample: usize,
    },
}

#[derive(Subcommand)]
enum PkiCmd {
    /// Create the headquarters CA and the hub's certificate in `dir`.
    Init {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Names (DNS or IP) stores use to reach the hub.
        #[arg(long, default_values_t = ["hub".to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()])]
        hub_name: Vec<String>,
    },
    /// Add the store-issuing CA (with which headquarters renews store certificates over sync)
    /// to a chain whose `dir` was made before it: then set `[renewal]` in hub.toml.
    StoreIssuer {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
    },
    /// Issue a store's certificate and write a ready-to-run config bundle into `out`.
    Enrol {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        #[arg(long)]
        store: String,
        /// The hub's sync address as the store will reach it.
        #[arg(long, default_value = "127.0.0.1:7443")]
        hub: std::net::SocketAddr,
        #[arg(long, default_value = "hub")]
        hub_name: String,
        #[arg(long)]
        out: PathBuf,
        /// Days the store's certificate is good for.
        #[arg(long, default_value_t = ops::pki::STORE_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
}

fn main() -> anyhow::Result<()> {
    // `ops node …` and `ops hub …` are the node's and the hub's own command lines, so that one
    // binary can start a chain of real processes (`ops replay`).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("node") => return node::cli::main_from(&args[1..]),
        Some("hub") => return hub::cli::main_from(&args[1..]),
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Demo { dir, port } => demo::run(&dir, port),
        // Handled before parsing, above.
        Cmd::Node { .. } | Cmd::Hub { .. } => Ok(()),
        Cmd::Replay {
            data,
            dir,
            stores,
            from,
            to,
            seed,
            tills,
            prepaid,
            time_reports,
            hosted,
            campaigns,
            whole_catalogue,
        } => replay(ops::replay::Options {
            data,
            dir,
            stores,
            from,
            to,
            seed,
            tills,
            prepaid_share: prepaid,
            report_queries: time_reports,
            hosted,
            campaigns,
            whole_catalogue,
            launcher: ops::replay::Launcher::this_binary()?,
        }),
        Cmd::Campaigns {
            command: CampaignsCmd::Import { data, hub, staff },
        } => {
            let cj = ops::campaigns::read(&data)?;
            let members = ops::campaigns::members_at(&hub, &cj)?;
            for c in ops::campaigns::import(&hub, &staff, &cj, &members)? {
                println!(
                    "campaign {:>2}: {} targets tagged ({} not members), run: {}",
                    c.campaign, c.members, c.not_members, c.run
                );
            }
            Ok(())
        }
        Cmd::Pki {
            command: PkiCmd::StoreIssuer { dir },
        } => {
            ops::pki::create_store_issuer(&dir)?;
            println!(
                "store-issuing CA written to {}: in hub.toml,\n[renewal]\nissuer_cert = {:?}\nissuer_key = {:?}",
                dir.display(),
                std::path::absolute(dir.join(ops::pki::STORES_CA_CERT))?,
                std::path::absolute(dir.join(ops::pki::STORES_CA_KEY))?,
            );
            Ok(())
        }
        Cmd::Pki {
            command: PkiCmd::Init { dir, hub_name },
        } => {
            let names: Vec<&str> = hub_name.iter().map(String::as_str).collect();
            ops::pki::init(&dir, &names)?;
            println!("CA and hub certificate written to {}", dir.display());
            Ok(())
        }
        Cmd::Pki {
            command:
                PkiCmd::Enrol {
                    dir,
                    store,
                    hub,
                    hub_name,
                    out,
                    days,
                },
        } => {
            let lifetime = ops::pki::Lifetime::Days(days);
            ops::pki::enrol_for(&dir, &store, hub, &hub_name, &out, lifetime)?;
            println!(
                "store {store} enrolled for {days} days: run it with  node run --config {}",
                out.join("node.toml").display()
            );
            Ok(())
        }
        Cmd::Catalogue {
            command:
                CatalogueCmd::Import {
                    hub,
                    file,
                    staff,
                    dry_run,
                },
        } => import(&hub, &file, &staff, dry_run),
        Cmd::Members {
            command:
                MembersCmd::Import {
                    hub,
                    file,
                    staff,
                    token,
                    dry_run,
                },
        } => {
            let started = std::time::Instant::now();
            let answer = ops::members::import(&hub, &file, &staff, token.as_deref(), dry_run)?;
            print!("{}", ops::members::summary(&answer));
            println!("in {:.1?}", started.elapsed());
            Ok(())
        }
        Cmd::Bench {
            command: BenchCmd::All { data, write, quick },
        } => bench::all::run(&data, write.as_deref(), quick),
        Cmd::Bench {
            command:
                BenchCmd::Central {
                    seconds,
                    requests,
                    wan_ms,
                },
        } => bench::central::run(seconds, requests, wan_ms),
        Cmd::Bench {
            command: BenchCmd::Marketing { members, coupons },
        } => bench::marketing::run(members, coupons),
        Cmd::Bench {
            command: BenchCmd::Import { members, stores },
        } => bench::import::run(members, stores),
        Cmd::Bench {
            command: BenchCmd::Backup { members, sales },
        } => bench::backup::run(members, sales),
        Cmd::Bench {
            command: BenchCmd::HubBackup { members, sales },
        } => bench::backup::run_hub(members, sales),
        Cmd::Bench {
            command:
                BenchCmd::Members {
                    small,
                    large,
                    lookups,
                },
        } => bench::members::run(small, large, lookups),
        Cmd::Bench {
            command:
                BenchCmd::Checkout {
                    seconds,
                    tills,
                    requests,
                },
        } => bench::checkout::run(seconds, tills, requests),
        Cmd::Bench {
            command:
                BenchCmd::Sync {
                    members,
                    edits,
                    idle_members,
                    sample,
                },
        } => bench::sync::run(members, edits, idle_members, sample),
        Cmd::Bench {
            command:
                BenchCmd::Hub {
                    stores,
                    entries,
                    reconnecting,
                },
        } => bench::hub::run(stores, entries, reconnecting),
        Cmd::Bench {
            command:
                BenchCmd::Wallet {
                    members,
                    reserve_percent,
                    rtt_ms,
                    postgres,
                },
        } => bench::wallet::run(members, reserve_percent, rtt_ms, postgres),
        Cmd::Bench {
            command:
                BenchCmd::Catalogue {
                    data,
                    stores,
                    lookups,
                },
        } => bench::catalogue::run(&data, stores, lookups),
        Cmd::Bench {
            command:
                BenchCmd::Replay {
                    data,
                    learn_weeks,
                    seed,
                    overdraft_yuan,
                    reserve_percent,
                },
        } => bench::replay::run(
            &data,
            learn_weeks,
            seed,
            overdraft_yuan * 100,
            reserve_percent,
        ),
    }
}

fn date(text: &str) -> Result<chrono::NaiveDate, String> {
    text.parse()
        .map_err(|e| format!("{text}: {e} (a date is 2017-01-31)"))
}

fn replay(options: ops::replay::Options) -> anyhow::Result<()> {
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)?;
    }
    let started = std::time::Instant::now();
    let (slice, o, differences) = ops::replay::run(&options)?;
    let wall = started.elapsed().as_secs_f64();
    // What the routed feed sent each store, next to a broadcast (the processes have stopped).
    let feed =
        hub::routes::feed_stats(&hub::storage::SledHubStore::open(&options.dir.join("hub"))?)?;
    println!(
        "replayed {} to {}: {} stores, {} baskets, {} lines, {} yuan ({} rows of the period at \
         other stores left out; {} lines of quantity 0 sold as one unit)",
        options.from,
        options.to,
        slice.stores.len(),
        o.baskets,
        o.lines,
        protocol::Fen(o.fen),
        slice.rows_left_out,
        o.zero_quantity_lines
    );
    println!(
        "members {}, top-ups {}, stored-value spends {} ({} at another store than the member's \
         first; {} more paid in cash: the balance could not be moved here in time, or a top-up \
         made elsewhere had not reached this store yet)",
        o.members, o.top_ups, o.stored_value_spends, o.spends_elsewhere, o.stored_value_to_cash
    );
    for (why, n) in &o.to_cash_why {
        println!("  paid in cash instead, {n}: {why}");
    }
    if options.campaigns {
        println!(
            "campaign coupons redeemed {} ({} on a basket of the campaign's categories without \
             the coupon's own goods, {} on a basket a day to {} days from the data's; the \
             data's redemptions by households or on days outside the replay: {}; not redeemed: \
             {})",
            o.coupons_redeemed,
            o.redemptions_by_category,
            o.redemptions_days_away,
            ops::campaigns::DAYS_AWAY_MAX,
            o.redemptions_outside,
            o.redemptions_unmatched.len()
        );
        for why in &o.redemptions_unmatched {
            println!("  not redeemed: {why}");
        }
    }
    println!(
        "wall {wall:.1} s: setup {:.1} s, selling {:.1} s ({:.0} baskets/s), until every log is at \
         headquarters {:.1} s",
        o.seconds_setup,
        o.seconds_selling,
        o.baskets as f64 / o.seconds_selling.max(1e-9),
        o.seconds_syncing
    );
    if let (Some((p50, p99)), Some((b50, b99))) = (o.report_ms, o.baseline_ms) {
        println!(
            "chain-wide report of the first month by store, {} times: p50 {p50:.2} ms, p99 \
             {p99:.2} ms (the hub's smallest answer, same run: p50 {b50:.2} ms, p99 {b99:.2} ms)",
            options.report_queries
        );
        bench::Figure::new(
            "chain-wide report of a month by store, p50 / p99 (after the replay)",
            format!("{p50:.2} ms / {p99:.2} ms"),
        )
        .baseline(
            format!("{b50:.2} ms / {b99:.2} ms the hub's smallest answer"),
            bench::ratio(p99, b99) + " (p99)",
        )
        .goal("p99 ≤ 50 ms", p99 <= 50.0)
        .record()?;
    }
    bench::Figure::new(
        format!(
            "replay {} to {}: {} stores' {} baskets through real processes, end to end",
            options.from,
            options.to,
            slice.stores.len(),
            o.baskets
        ),
        format!("{wall:.1} s"),
    )
    .baseline(
        format!(
            "{:.0} baskets/s while selling; {} differences from the data",
            o.baskets as f64 / o.seconds_selling.max(1e-9),
            differences.len()
        ),
        "—",
    )
    .goal(
        if (options.to - options.from).num_days() >= 364 {
            "the year in ≤ 60 s, 0 differences"
        } else {
            "0 differences"
        },
        differences.is_empty() && (wall <= 60.0 || (options.to - options.from).num_days() < 364),
    )
    .record()?;
    let days = ((options.to - options.from).num_days() + 1).max(1) as u64;
    let per_day = |n: u64| n / days;
    println!(
        "feed per store and day: {} entries, {} bytes routed, of which members' wallet changes \
         {} entries, {} bytes, members' listings {} entries, {} bytes (the store sent the \
         most: {} entries, {} bytes); a broadcast feed: {} entries, {} bytes ({} members \
         followed, over all stores)",
        per_day(feed.routed_entries_mean),
        per_day(feed.routed_bytes_mean),
        per_day(feed.wallet_entries_mean),
        per_day(feed.wallet_bytes_mean),
        per_day(feed.listing_entries_mean),
        per_day(feed.listing_bytes_mean),
        per_day(feed.routed_entries_max),
        per_day(feed.routed_bytes_max),
        per_day(feed.broadcast_entries_mean),
        per_day(feed.broadcast_bytes_mean),
        feed.members_followed
    );
    bench::Figure::new(
        format!(
            "feed a store receives per day of the replay, {} stores (mean; the busiest)",
            slice.stores.len()
        ),
        format!(
            "{} entries, {} KB; {} entries, {} KB",
            per_day(feed.routed_entries_mean),
            per_day(feed.routed_bytes_mean) / 1024,
            per_day(feed.routed_entries_max),
            per_day(feed.routed_bytes_max) / 1024
        ),
    )
    .baseline(
        format!(
            "{} entries, {} KB a broadcast feed, same run",
            per_day(feed.broadcast_entries_mean),
            per_day(feed.broadcast_bytes_mean) / 1024
        ),
        bench::ratio(
            feed.routed_bytes_mean as f64,
            feed.broadcast_bytes_mean.max(1) as f64,
        ),
    )
    .goal(
        "no more than a broadcast (and within 2× from 20 to 457 stores: BENCHMARKS.md)",
        feed.routed_bytes_mean <= feed.broadcast_bytes_mean,
    )
    .record()?;
    if differences.is_empty() {
        println!("check: every figure agrees (per store and day, per department, per member)");
        std::fs::remove_dir_all(&options.dir)?;
        return Ok(());
    }
    for d in differences.iter().take(200) {
        println!("  {d}");
    }
    anyhow::bail!(
        "{} differences between the CSV and headquarters' reports (data kept in {})",
        differences.len(),
        options.dir.display()
    )
}

fn import(hub: &str, file: &std::path::Path, staff: &str, dry_run: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let parsed = ops::catalogue::read(file)?;
    let read_in = started.elapsed();
    println!(
        "read {} products from {} in {read_in:.1?}; {} rows not imported",
        parsed.products.len(),
        file.display(),
        parsed.bad.len()
    );
    for bad in parsed.bad.iter().take(20) {
        println!("  line {}: {}", bad.line, bad.problem);
    }
    if parsed.bad.len() > 20 {
        println!("  … and {} more", parsed.bad.len() - 20);
    }
    if dry_run || parsed.products.is_empty() {
        return Ok(());
    }
    let sent = std::time::Instant::now();
    let answer = ops::catalogue::send(hub, staff, parsed.products)?;
    println!(
        "headquarters wrote catalogue version {} ({} entries) in {:.1?}",
        answer["version"],
        answer["parts"],
        sent.elapsed()
    );
    Ok(())
}
