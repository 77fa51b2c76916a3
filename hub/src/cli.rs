//! The `hub` command line. Lives in the library so test crates can build the same binary.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::Config;

#[derive(Parser)]
#[command(
    version,
    about = "Headquarters hub (总部): store sync, member feed, store status"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the sync endpoint and the HTTP API.
    Run {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// Override the UDP sync address (port 0 picks a free port).
        #[arg(long)]
        sync_listen: Option<std::net::SocketAddr>,
        /// Override the HTTP address (port 0 picks a free port).
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
    },
    /// (hub stopped) Check every store's chain, the feed, and the member directory vs a rebuild.
    Verify {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
    },
    /// (hub stopped) Take a backup of headquarters' data (a running hub takes its own: `[backup]`,
    /// or POST /api/v1/backups).
    Backup {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// The directory to write it to (default: the config's backup directory).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Make the config's (absent or empty) data directory from a backup, and check it.
    Restore {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
    /// What the routed feed sends each store, next to what a broadcast feed would (JSON).
    FeedStats {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
    },
}

pub fn main() -> anyhow::Result<()> {
    main_from(std::env::args_os())
}

/// `main` with these arguments (the first is the program's name): `ops` runs a whole chain
/// as real processes of its own binary this way.
pub fn main_from(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> anyhow::Result<()> {
    crate::logging::init(&crate::logging::LogSettings::from_env("hub.log")?)?;
    match Cli::parse_from(args).command {
        Cmd::Verify { config } => {
            let report = crate::verify(&Config::load(&config)?)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.is_clean(), "the hub's data does not check out");
            Ok(())
        }
        Cmd::Backup { config, to } => {
            let cfg = Config::load(&config)?;
            anyhow::ensure!(cfg.database_url.is_none(), crate::backup::ON_POSTGRES);
            // Opening an absent directory would make a new, empty headquarters to back up.
            anyhow::ensure!(
                !crate::backup_file::is_empty(&cfg.data_dir)?,
                "{} holds no headquarters' data",
                cfg.data_dir.display()
            );
            let storage = crate::storage::SledHubStore::open(&cfg.data_dir).with_context(|| {
                format!(
                    "opening {} (a running hub takes its own backups: POST /api/v1/backups)",
                    cfg.data_dir.display()
                )
            })?;
            let dir = to.unwrap_or_else(|| cfg.backup().dir);
            let taken = crate::backup::take(&storage, &dir, crate::ingest::system_now_ms())?;
            println!("{}", serde_json::to_string_pretty(&taken)?);
            Ok(())
        }
        Cmd::Restore { config, from } => {
            let cfg = Config::load(&config)?;
            anyhow::ensure!(cfg.database_url.is_none(), crate::backup::ON_POSTGRES);
            let (restored, report) = crate::backup::restore(&from, &cfg.data_dir)?;
            println!("{}", serde_json::to_string_pretty(&restored)?);
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Cmd::FeedStats { config } => {
            let opened = crate::open_storage(&Config::load(&config)?)?;
            let stats = crate::routes::feed_stats(&*opened.storage)?;
            println!("{}", serde_json::to_string_pretty(&stats)?);
            Ok(())
        }
        Cmd::Run {
            config,
            sync_listen,
            http_listen,
        } => {
            let mut cfg = Config::load(&config)?;
            cfg.sync_listen = sync_listen.unwrap_or(cfg.sync_listen);
            cfg.http_listen = http_listen.unwrap_or(cfg.http_listen);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime
                .block_on(crate::run(
                    cfg,
                    |bound| {
                        // Machine-readable lines for scripts and tests that start the hub on port 0.
                        println!("sync on {}", bound.sync);
                        println!("listening on http://{}", bound.http);
                    },
                    shutdown_signal(),
                ))
                .context("running the hub")
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
