//! The xtask crate's integration tests, in one test binary (one link of bollard, tokio and
//! ureq instead of one per file): each module is what a separate `tests/*.rs` file used to be.
//! `common` holds the fixtures they share (the fixture stack, its images on the real engine,
//! a real registry).

mod common;

mod base_recipe;
mod build;
mod changes;
mod ci_playback;
mod cli;
mod docs;
mod exit_codes;
mod graph;
mod platforms;
mod refresh;
mod registry_cache;
mod release;
mod security;
mod spec_errors;
mod supply_chain;
mod tidy;
