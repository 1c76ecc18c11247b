//! The image acceptance-test harness: finds the tests under `images/` and runs them against
//! real containers of the built images, through libtest-mimic (`cargo test` at the workspace
//! root runs `tests/acceptance.rs`).
//!
//! `format` is the YAML test format, `discover` turns the spec and the test files into named
//! trials (no engine), `run` executes them in one long-lived container per image, `junit`
//! writes per-trial logs and JUnit XML.

pub mod agent;
pub mod cli;
pub mod discover;
pub mod error;
pub mod format;
pub mod images;
pub mod junit;
pub mod run;
pub mod service;

/// The label every harness container carries, valued with the process ID: a later run sweeps
/// the containers of a process that is gone.
pub const CONTAINER_LABEL: &str = "xtask.stack.harness";
/// The label naming the runner that started a container (`<pid>/<runner>`): a runner's cleanup
/// removes its own, never another runner's of the same process.
pub const RUNNER_LABEL: &str = "xtask.stack.harness.runner";
