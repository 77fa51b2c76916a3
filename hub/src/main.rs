//! `hub`: the headquarters process (see `hub --help`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    hub::cli::main()
}
