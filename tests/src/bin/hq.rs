//! The hub binary, built inside this crate so its tests can start it as a child process.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    hub::cli::main()
}
