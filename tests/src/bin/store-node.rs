//! The node binary, built inside this crate so its tests can start it as a child process.

fn main() -> std::process::ExitCode {
    node::cli::main_exit()
}
