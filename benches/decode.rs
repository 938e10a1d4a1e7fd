//! Decode and encode benchmarks (filled in with the decoder).
fn main() {}
