//! The harness crate's integration tests, in one test binary: `self_test` runs the harness on
//! the fixture stack; `base_notebook` holds Rust-level tests of the real base-notebook image
//! (testcontainers), and `sbom` checks its SBOM against `dpkg-query` and `pip list`. The image
//! acceptance tests are `tests/acceptance.rs` (`harness = false`).

mod base_notebook;
mod sbom;
mod self_test;
