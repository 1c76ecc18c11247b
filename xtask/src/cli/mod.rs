//! The command line: declared once with clap, dispatched to one module per subcommand. Each
//! command writes its result to the `out` it is given (standard output in `main`), so tests run
//! commands exactly as users do.

pub mod bench;
mod build;
mod docs;
mod graph;
mod new;
mod plan;
mod release;
mod tag;

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
    /// The stack's spec file [default: images/spec.yml in the current directory or the nearest
    /// folder above it, up to the repository's root]
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
    /// Add an image: its spec entry, Dockerfile, README and first tests, then what to edit
    New(new::New),
    /// Tag built images: branch, commit and date tags, and version tags computed inside each image
    Tag(tag::Tag),
    /// Push tagged images that passed their tests, or promote a tested tag (`--promote`)
    Release(release::Release),
    /// Write a Markdown page per image (build info, layers, packages, changes since the last release)
    Docs(docs::Docs),

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
    /// An image the command needs was never built (or, for `release`, never tagged).
    NotBuilt = 7,
    /// Refused on purpose: a reserved branch, a version command that failed, failed tests with
    /// `--all-or-nothing`, a promotion whose source is incomplete or whose target is taken.
    Refused = 8,
    /// The registry cannot be reached, refused the credentials, or a push failed after retries.
    Registry = 9,
    /// `docs --check` found stale pages, or a documentation command failed inside an image.
    Docs = 10,
    /// Ctrl-C or SIGTERM stopped the run.
    Interrupted = 130,
}

/// How `tag`, `release` and `docs` end when not well; each maps to its exit code. The message
/// says what, where and which command fixes it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    NotBuilt(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Docs(String),
    #[error("interrupted: the containers this run started were removed; no tag was moved after the interrupt")]
    Interrupted,
}

/// Where commands keep their records and logs: `target/xtask/` next to the spec's folder.
pub fn work_dir(spec: &Spec) -> PathBuf {
    spec.dir.parent().map(Path::to_path_buf).unwrap_or_default().join("target").join("xtask")
}

/// How many images `tag` and `docs` run commands in at the same time: the number of CPUs.
pub fn probe_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1)
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
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
        } else if let Some(step) = error.downcast_ref::<StepError>() {
            match step {
                StepError::NotBuilt(_) => ExitCode::NotBuilt,
                StepError::Refused(_) => ExitCode::Refused,
                StepError::Docs(_) => ExitCode::Docs,
                StepError::Interrupted => ExitCode::Interrupted,
            }
        } else if error.downcast_ref::<crate::tags::TagError>().is_some() {
            ExitCode::Refused
        } else if error.downcast_ref::<crate::registry::RegistryError>().is_some() {
            ExitCode::Registry
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
        self.spec_source().path
    }

    /// The spec this command reads: `--spec`, else found from the current directory, else the
    /// compiled-in default (see [`crate::spec::find`]).
    pub fn spec_source(&self) -> crate::spec::find::Located {
        let cwd = std::env::current_dir().unwrap_or_default();
        crate::spec::find::locate(self.spec.as_deref(), &cwd, &project_root().join("images").join("spec.yml"))
    }

    pub fn load_spec(&self) -> Result<Spec, Diagnostics> {
        Spec::load(&self.spec_path())
    }

    pub async fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match &self.command {
            Command::Plan(command) => command.run(self, out),
            Command::Build(command) => command.run(self, out).await,
            Command::Graph(command) => command.run(self, out),
            Command::New(command) => command.run(self, out),
            Command::Tag(command) => command.run(self, out).await,
            Command::Release(command) => command.run(self, out).await,
            Command::Docs(command) => command.run(self, out).await,

            Command::Bench(command) => command.run(self, out).await,
        }
    }
}
