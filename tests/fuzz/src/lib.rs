//! The fuzz target bodies as a library for the libFuzzer binaries in
//! `fuzz_targets/`. The bodies live in `targets.rs`, which the `it` test
//! binary also includes for its bounded smoke run.

mod targets;
pub use targets::*;
