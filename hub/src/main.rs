//! `hub`: the headquarters process (see `hub --help`).

fn main() -> anyhow::Result<()> {
    hub::cli::main()
}
