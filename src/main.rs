//! lazycache: the binary (CLI, configuration, wiring of the library crates).

mod cli;
mod config;
mod serve;
mod source;

fn main() -> std::process::ExitCode {
    cli::main()
}
