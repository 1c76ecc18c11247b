//! `cargo xtask plan`: which images to build or re-test, grouped by level, with reasons.

use std::io::Write;
use std::path::Path;

use clap::{Args, ValueEnum};

use super::Cli;
use crate::git::{ChangeSet, Repo};
use crate::graph::ImageGraph;
use crate::plan::{self, PlanRequest, Selection, Variants};
use crate::render;
use crate::spec::diff::{self, SpecDiff};
use crate::spec::input::SPEC_MAX_BYTES;
use crate::spec::Spec;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    /// For people
    Text,
    /// Schema `stack-plan/v1` (docs/plan-json.md)
    Json,
    /// `{"include": [...]}` for a GitHub Actions `strategy.matrix`
    GithubMatrix,
}

/// What to plan: images by name, everything, or what changed since a git reference.
#[derive(Debug, Args, Clone)]
pub struct Selector {
    /// Images to plan (`name` or `name@variant`); with --since or --all, keep only these
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Plan what changed since the merge base of REF and HEAD, uncommitted and untracked files included
    #[arg(long, value_name = "REF", conflicts_with = "all")]
    pub since: Option<String>,
    /// Plan every image (the default when no image is named)
    #[arg(long)]
    pub all: bool,
    /// Plan this variant [default: the spec's first]
    #[arg(long, value_name = "V", conflicts_with = "all_variants")]
    pub variant: Option<String>,
    /// Plan every variant
    #[arg(long)]
    pub all_variants: bool,
}

#[derive(Debug, Args)]
pub struct Plan {
    #[command(flatten)]
    pub selector: Selector,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

impl Selector {
    /// Builds the plan this selector describes, running git for `--since`.
    pub fn plan(&self, cli: &Cli) -> anyhow::Result<(Spec, plan::BuildPlan, String)> {
        let spec = cli.load_spec()?;
        let graph = ImageGraph::new(&spec);
        let spec_dir = absolute(&spec.dir);
        let (selection, repo_spec_dir) = match &self.since {
            Some(reference) => {
                let repo = Repo::discover(&spec_dir)?;
                let changes = repo.changes_since(reference)?;
                let root = absolute(repo.root());
                let relative = spec_dir.strip_prefix(&root).unwrap_or(&spec_dir).to_string_lossy().replace('\\', "/");
                let diff = spec_diff(&repo, &changes, &spec, &relative)?;
                (Selection::Since(changes, diff), relative)
            }
            None if self.all || self.images.is_empty() => (Selection::All, spec.folder_name()),
            None => (Selection::Requested, spec.folder_name()),
        };
        let variants = match (&self.variant, self.all_variants) {
            (Some(variant), _) => Variants::One(variant.clone()),
            (None, true) => Variants::All,
            (None, false) => Variants::Default,
        };
        let request = PlanRequest { selection, images: self.images.clone(), variants };
        let plan = plan::plan(&spec, &graph, &request, &repo_spec_dir)?;
        Ok((spec, plan, repo_spec_dir))
    }
}

/// When the branch changed the spec: what that changes image by image, comparing the spec at
/// the merge base with this one ([`diff::against`]).
fn spec_diff(repo: &Repo, changes: &ChangeSet, spec: &Spec, spec_dir: &str) -> anyhow::Result<Option<SpecDiff>> {
    let file = spec.repo_file(spec_dir);
    if !changes.files.contains(&file) {
        return Ok(None);
    }
    let before = repo.file_at(&changes.merge_base, &file, SPEC_MAX_BYTES)?;
    Ok(diff::against(spec, file, before.as_deref()))
}

fn absolute(path: &Path) -> std::path::PathBuf {
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

impl Plan {
    pub fn run(&self, cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let (spec, plan, spec_dir) = self.selector.plan(cli)?;
        let text = match self.format {
            PlanFormat::Text => format!("spec: {}\n{}", cli.spec_source(), render::plan::text(&plan)),
            PlanFormat::Json => render::plan::json(&spec, &plan, &spec_dir),
            PlanFormat::GithubMatrix => render::plan::github_matrix(&plan),
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}
