//! Integration tests of the builder library: sources, outputs, the registry client.

#[path = "../support/base.rs"]
mod base;
mod registry;
mod sources;
