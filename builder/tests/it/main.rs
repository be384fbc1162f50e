//! Integration tests of the builder library: sources, outputs, the registry client.

#[path = "../support/base.rs"]
mod base;
mod fuzz;
#[path = "../support/fuzz.rs"]
mod fuzz_harness;
mod registry;
mod sources;
