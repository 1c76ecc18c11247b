//! The image acceptance tests, as `cargo test` runs them (`harness = false`): see
//! `harness::cli` and docs/testing.md.

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
