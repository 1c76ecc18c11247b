//! `stack-test`: the image tests as a standalone program (the same as `cargo test -p harness
//! --test acceptance`), for CI jobs that ship a test binary and for the harness's own tests.

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
