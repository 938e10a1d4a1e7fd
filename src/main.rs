//! lazycache: the binary (CLI, configuration, wiring of the library crates).
fn main() {}
