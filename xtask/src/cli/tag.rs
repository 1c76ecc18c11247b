//! `cargo xtask tag`: gives built images (`<repository>:build`) their branch, commit, date and
//! version tags, and writes the record `release` pushes from (`target/xtask/tags.json`). The
//! work is [`crate::tags::tag`]; this module reads the flags and prints.

use std::io::Write;

use clap::Args;

use super::plan::Selector;
use super::Cli;
use crate::engine::Engine;
use crate::error::Error;
use crate::graph::NodeId;
use crate::tags::{self, TagRunError};

#[derive(Debug, Args)]
pub struct Tag {
    #[command(flatten)]
    pub selector: Selector,
    /// The branch the `<prefix>-<branch>` tag names [default: the branch checked out, else
    /// $GITHUB_HEAD_REF or $GITHUB_REF_NAME]
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Compute and print the tags (version commands run in throwaway containers); move no tag
    /// and write no record
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the record `release` reads [default: target/xtask/tags.json]; a CI job
    /// per image writes one each (`target/tags/<image>.json`), and `release --tags target/tags`
    /// reads them all
    #[arg(long, value_name = "PATH")]
    pub record: Option<std::path::PathBuf>,
}

impl Tag {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let branch = tags::branch(self.branch.as_deref(), &spec)?;
        tags::branch_tag(&spec.stack.tag_prefix, &branch).map_err(TagRunError::from)?;
        let nodes: Vec<NodeId> = plan.images.iter().map(|planned| planned.id.clone()).collect();
        let engine = Engine::connect().await?;
        let tagged = tags::tag(&engine, &spec, &nodes, &branch, !self.dry_run).await?;
        for note in &tagged.notes {
            eprintln!("{note}");
        }
        for image in &tagged.record.images {
            writeln!(out, "{}  {}  {}", image.node, image.repository, image.tags.join(", "))?;
        }
        if self.dry_run {
            writeln!(out, "dry run: no tag was moved")?;
        } else {
            let path = self.record.clone().unwrap_or_else(|| crate::paths::work_dir(&spec).join("tags.json"));
            tags::write_record(&path, &tagged.record)?;
            writeln!(out, "record: {}", path.display())?;
        }
        if !tagged.failures.is_empty() {
            return Err(TagRunError::NotTagged { failures: tagged.failures }.into());
        }
        Ok(())
    }
}
