//! `node`: the branch store's edge node (see `node --help`).

fn main() -> anyhow::Result<()> {
    node::cli::main()
}
