//! The command line: declared once with clap, dispatched to one module per subcommand. Each
//! command writes its result to the `out` it is given (standard output in `main`), so tests run
//! commands exactly as users do.

pub mod bench;
mod bench_registry;
mod build;
mod docs;
mod graph;
mod new;
mod plan;
mod refresh;
mod release;
mod sbom;
mod tag;
mod verify;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::diagnostic::Diagnostics;
use crate::error::Error;
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
    /// Set bases' refresh keys in the spec (remake the bases and rebuild on them, on purpose)
    Refresh(refresh::Refresh),
    /// Write each built image's SBOM (CycloneDX, SPDX) and provenance, read from inside it
    Sbom(sbom::Sbom),
    /// Check an image's signature in the registry with a public key, and list its documents
    Verify(verify::Verify),

    /// Measure the tool's own speed (benchmarks that print figures)
    #[command(subcommand)]
    Bench(bench::Bench),
}

impl Cli {
    pub fn spec_path(&self) -> PathBuf {
        self.spec_source().path
    }

    /// The spec this command reads: `--spec`, else found from the current directory, else the
    /// compiled-in default (see [`crate::spec::find`]).
    pub fn spec_source(&self) -> crate::spec::find::Located {
        let cwd = std::env::current_dir().unwrap_or_default();
        crate::spec::find::locate(self.spec.as_deref(), &cwd, &crate::paths::default_spec())
    }

    /// The spec, with this run's environment applied (`STACK_NAMESPACE`).
    pub fn load_spec(&self) -> Result<Spec, Diagnostics> {
        Spec::load(&self.spec_path())?.with_env_overrides()
    }

    pub async fn run(&self, out: &mut dyn Write) -> Result<(), Error> {
        match &self.command {
            Command::Plan(command) => command.run(self, out).await,
            Command::Build(command) => command.run(self, out).await,
            Command::Graph(command) => command.run(self, out),
            Command::New(command) => command.run(self, out),
            Command::Tag(command) => command.run(self, out).await,
            Command::Release(command) => command.run(self, out).await,
            Command::Docs(command) => command.run(self, out).await,
            Command::Refresh(command) => command.run(self, out),
            Command::Sbom(command) => command.run(self, out).await,
            Command::Verify(command) => command.run(self, out).await,

            Command::Bench(command) => Ok(command.run(self, out).await?),
        }
    }
}
