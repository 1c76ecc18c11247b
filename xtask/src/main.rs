//! `cargo xtask`: parses the command line, creates the one async runtime, and dispatches;
//! everything else is in the library.

use std::io::Write;
use std::process::ExitCode as ProcessExitCode;

use clap::Parser;
use xtask::cli::Cli;
use xtask::error::ExitCode;

fn main() -> ProcessExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ProcessExitCode::from(ExitCode::Failure as u8);
        }
    };
    let result = runtime.block_on(cli.run(&mut out));
    let _ = out.flush();
    match result {
        Ok(()) => ProcessExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ProcessExitCode::from(error.exit_code() as u8)
        }
    }
}
