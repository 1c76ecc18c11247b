//! `cargo xtask docs`: runs each image's documentation commands inside it, and writes a page
//! and a snapshot per image, the index and the release notes (`docs/images/`). `--check` writes
//! nothing and fails when the committed files differ from what it would write. The work is
//! [`crate::docs::generate`]; this module reads the flags and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::plan::Selector;
use super::Cli;
use crate::docs::{self, DocsError};
use crate::engine::Engine;
use crate::error::Error;
use crate::graph::{ImageGraph, NodeId};

#[derive(Debug, Args)]
pub struct Docs {
    #[command(flatten)]
    pub selector: Selector,
    /// Where the pages go [default: docs/images next to the spec's folder]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write nothing; fail when the files there are not what this run would write
    #[arg(long)]
    pub check: bool,
}

impl Docs {
    /// The command that regenerates exactly these pages.
    fn fix_command(&self, cli: &Cli) -> String {
        let mut command = String::from("cargo xtask");
        if let Some(spec) = &cli.spec {
            command.push_str(&format!(" --spec {}", spec.display()));
        }
        command.push_str(" docs");
        for image in &self.selector.images {
            command.push_str(&format!(" {image}"));
        }
        if let Some(since) = &self.selector.since {
            command.push_str(&format!(" --since {since}"));
        }
        if let Some(variant) = &self.selector.variant {
            command.push_str(&format!(" --variant {variant}"));
        }
        if self.selector.all_variants {
            command.push_str(" --all-variants");
        }
        for platform in &self.selector.platforms {
            command.push_str(&format!(" --platform {platform}"));
        }
        if self.selector.all_platforms {
            command.push_str(" --all-platforms");
        }
        if let Some(out) = &self.out {
            command.push_str(&format!(" --out {}", out.display()));
        }
        command
    }

    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let graph = ImageGraph::new(&spec);
        let nodes: Vec<NodeId> = plan.images.iter().map(|planned| planned.id.clone()).collect();
        let dir = self.out.clone().unwrap_or_else(|| {
            spec.dir.parent().map(Path::to_path_buf).unwrap_or_default().join("docs").join("images")
        });
        let engine = Engine::connect().await?;
        let generated = docs::generate(&engine, &spec, &graph, &nodes, &dir).await?;
        for failure in &generated.failures {
            eprintln!("{failure}");
        }
        if self.check {
            let stale = docs::stale(&generated.files);
            if !stale.is_empty() {
                return Err(DocsError::Stale { stale, command: self.fix_command(cli) }.into());
            }
            writeln!(out, "{} documentation files are up to date", generated.files.len())?;
            return Ok(());
        }
        for path in docs::write(&generated.files)? {
            writeln!(out, "wrote {}", path.display())?;
        }
        if !generated.failures.is_empty() {
            return Err(DocsError::CommandsFailed { count: generated.failures.len(), spec: spec.file.clone() }.into());
        }
        Ok(())
    }
}
