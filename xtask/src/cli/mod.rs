//! The command line: declared once with clap, dispatched to one module per subcommand. Each
//! command writes its result to the `out` it is given (standard output in `main`), so tests run
//! commands exactly as users do.

mod bench;
mod build;
mod graph;
mod plan;

pub use build::BuildRunError;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::diagnostic::Diagnostics;
use crate::git::GitError;
use crate::spec::Spec;

/// Build, test, tag and document a stack of container images declared in `images/spec.yml`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, max_term_width = 100)]
pub struct Cli {
    /// The stack's spec file [default: images/spec.yml in this repository]
    #[arg(long, global = true, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show which images would be built or re-tested, in what order, and why
    Plan(plan::Plan),
    /// Build the planned images (and the ancestors they need) through the Docker engine
    Build(build::Build),
    /// Draw the whole stack, variants included, as Graphviz dot or Mermaid
    Graph(graph::Graph),
    /// Measure the tool's own speed (benchmarks that print figures)
    #[command(subcommand)]
    Bench(bench::Bench),
}

/// Exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// Something unexpected: an I/O error, a bug.
    Failure = 1,
    /// The command line was not understood (clap's own code).
    Usage = 2,
    /// The spec is invalid, or an argument names an image or variant it does not have.
    InvalidSpec = 3,
    /// git failed: not a repository, unknown reference.
    Git = 4,
    /// One or more images failed to build (or were skipped because a parent failed).
    BuildFailed = 5,
    /// The Docker engine cannot be reached, is too old, or refused an operation; or a base
    /// image cannot be had.
    Engine = 6,
    /// Ctrl-C or SIGTERM stopped the run.
    Interrupted = 130,
}

impl ExitCode {
    /// The exit code for an error a command returned.
    pub fn of(error: &anyhow::Error) -> ExitCode {
        if error.downcast_ref::<Diagnostics>().is_some() {
            ExitCode::InvalidSpec
        } else if error.downcast_ref::<GitError>().is_some() {
            ExitCode::Git
        } else if let Some(run) = error.downcast_ref::<BuildRunError>() {
            match run {
                BuildRunError::Failed { .. } => ExitCode::BuildFailed,
                BuildRunError::Interrupted => ExitCode::Interrupted,
            }
        } else if error.downcast_ref::<crate::engine::EngineError>().is_some()
            || error.downcast_ref::<crate::build::BuildError>().is_some()
        {
            ExitCode::Engine
        } else {
            ExitCode::Failure
        }
    }
}

/// The repository this xtask belongs to.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

impl Cli {
    pub fn spec_path(&self) -> PathBuf {
        self.spec.clone().unwrap_or_else(|| project_root().join("images").join("spec.yml"))
    }

    pub fn load_spec(&self) -> Result<Spec, Diagnostics> {
        Spec::load(&self.spec_path())
    }

    pub async fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match &self.command {
            Command::Plan(command) => command.run(self, out),
            Command::Build(command) => command.run(self, out).await,
            Command::Graph(command) => command.run(self, out),
            Command::Bench(command) => command.run(self, out).await,
        }
    }
}
