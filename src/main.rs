//! lazycache: the binary (CLI, configuration, wiring of the library crates).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
