//! The harness crate's integration tests, in one test binary: `self_test` runs the harness on
//! the fixture stack; `base_notebook`, `docker_stacks` and `child_image` hold Rust-level tests of
//! the real base-notebook image (testcontainers): its start contract for any command, and a
//! docker-stacks-style child image built on it; `sbom` checks its SBOM against `dpkg-query` and
//! `pip list`. The image acceptance tests are `tests/acceptance.rs` (`harness = false`).

mod base_notebook;
mod child_image;
mod docker_stacks;
mod sbom;
mod self_test;
