//! lazycache: the binary (CLI, configuration, wiring of the library crates).

mod cli;
mod source;

fn main() -> std::process::ExitCode {
    cli::main()
}
