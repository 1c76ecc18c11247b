//! The harness crate's integration tests, in one test binary: `self_test` runs the harness on
//! the fixture stack; `base_notebook` holds Rust-level tests of the real base-notebook image
//! (testcontainers). The image acceptance tests are `tests/acceptance.rs` (`harness = false`).

mod base_notebook;
mod self_test;
