//! lazycache: the binary (CLI, configuration, wiring of the library crates).

mod cli;
mod config;
mod oneshot;
mod serve;

fn main() -> std::process::ExitCode {
    cli::main()
}
