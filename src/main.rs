//! lazycache: the binary (CLI, configuration, wiring of the library crates).

mod allocator;
mod cli;
mod config;
mod oneshot;
mod serve;

fn main() -> std::process::ExitCode {
    allocator::limit_malloc_arenas();
    cli::main()
}
