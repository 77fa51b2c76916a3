//! `ops`: the operator's command line — a demo store with sample data, and benchmarks.
#![allow(clippy::print_stdout)]

mod bench;
mod demo;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Start a store node on loopback with sample members and sales, and keep it running.
    Demo {
        /// Where the demo keeps its configuration and data (kept between runs).
        #[arg(long, default_value = "demo-data")]
        dir: PathBuf,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Measure durable checkout throughput and latency, next to raw sled in the same run.
    Bench {
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Demo { dir, port } => demo::run(&dir, port),
        Cmd::Bench {
            seconds,
            tills,
            requests,
        } => bench::run(seconds, tills, requests),
    }
}
