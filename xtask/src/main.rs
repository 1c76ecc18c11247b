//! `cargo xtask`: parses the command line and dispatches; everything else is in the library.

use std::io::Write;
use std::process::ExitCode as ProcessExitCode;

use clap::Parser;
use xtask::cli::{Cli, ExitCode};

fn main() -> ProcessExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = cli.run(&mut out);
    let _ = out.flush();
    match result {
        Ok(()) => ProcessExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ProcessExitCode::from(ExitCode::of(&error) as u8)
        }
    }
}
