//! `node`: the branch store's edge node (see `node --help`).

fn main() -> std::process::ExitCode {
    node::cli::main_exit()
}
