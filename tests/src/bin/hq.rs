//! The hub binary, built inside this crate so its tests can start it as a child process.

fn main() -> anyhow::Result<()> {
    hub::cli::main()
}
