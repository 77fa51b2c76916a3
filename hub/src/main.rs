//! `hub`: the headquarters process. Its sync endpoint arrives with the sync issue.

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Headquarters hub (总部): sync endpoint, rights bank, reports"
)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    Cli::parse();
    anyhow::bail!(
        "the headquarters hub is not built yet: it arrives with the sync issue (see README)"
    )
}
