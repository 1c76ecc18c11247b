//! `cargo xtask plan`: which images to build or re-test, grouped by level, with reasons.

use std::io::Write;
use std::path::Path;

use clap::{Args, ValueEnum};

use super::Cli;
use crate::git::{ChangeSet, Repo};
use crate::graph::ImageGraph;
use crate::plan::{self, PlanRequest, Platforms, Selection, Variants};
use crate::platform::Platform;
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
    /// `$GITHUB_OUTPUT` lines for a workflow with a job per level: `levels=`, `level0=`..., `test=`, `gpu=`
    GithubLevels,
}

/// What to plan: images by name, everything, or what changed since a git reference.
#[derive(Debug, Args, Clone)]
pub struct Selector {
    /// Images to plan (`name`, `name@variant`, `name/arch`, `name@variant/arch`); with --since
    /// or --all, keep only these
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
    /// Plan this platform (`linux/arm64`; repeatable) [default: the host's, when the stack
    /// builds for it, else the stack's first]
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = Platform::parse, conflicts_with = "all_platforms")]
    pub platforms: Vec<Platform>,
    /// Plan every platform of the stack
    #[arg(long)]
    pub all_platforms: bool,
}

#[derive(Debug, Args)]
pub struct Plan {
    #[command(flatten)]
    pub selector: Selector,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Ask the stack's registry which images are built already (by manifest, nothing is
    /// pulled): those become re-test only [default: on when the spec says `stack.cache: registry`]
    #[arg(long)]
    pub registry: bool,
}

/// `plan` with the images already built in the stack's registry marked up to date (re-test
/// only); notices go to standard error.
pub async fn mark_built(
    spec: &crate::spec::Spec,
    plan: plan::BuildPlan,
) -> Result<plan::BuildPlan, crate::error::Error> {
    let graph = ImageGraph::new(spec);
    let wanted: Vec<crate::graph::NodeId> = plan.to_build().map(|planned| planned.id.clone()).collect();
    let identities = crate::identity::identities(spec, &graph, &wanted).map_err(crate::build::BuildError::from)?;
    let registry = match crate::cache::RegistryCache::for_spec(spec) {
        Ok(registry) => registry,
        Err(notice) => {
            eprintln!("{notice}");
            return Ok(plan);
        }
    };
    let mut found = std::collections::HashMap::new();
    for id in &wanted {
        let pin = &identities.nodes[&id.name];
        let fallback = spec
            .fallback_repository(&pin.repository)
            .map(|repository| crate::identity::Pin::new(pin.digest.clone(), repository));
        for candidate in std::iter::once(pin.clone()).chain(fallback) {
            let (has, notice) = registry.has(&candidate).await;
            if let Some(notice) = notice {
                eprintln!("{notice}");
            }
            if has {
                found.insert(id.clone(), (candidate.tag(), "registry".to_string()));
                break;
            }
        }
    }
    Ok(plan::mark_up_to_date(plan, &graph, &|id| found.get(id).cloned()))
}

/// Whether the registry is asked: `--registry`, or the spec's default unless `STACK_CACHE=local`.
pub fn asks_registry(flag: bool, spec: &crate::spec::Spec) -> bool {
    let local = std::env::var("STACK_CACHE").is_ok_and(|cache| cache == "local");
    flag || std::env::var("STACK_CACHE").is_ok_and(|cache| cache == "registry")
        || (spec.stack.cache == crate::spec::Cache::Registry && !local)
}

impl Selector {
    /// Builds the plan this selector describes, running git for `--since`.
    pub fn plan(&self, cli: &Cli) -> Result<(Spec, plan::BuildPlan, String), crate::error::Error> {
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
        let platforms = platforms_choice(&self.platforms, self.all_platforms);
        let request = PlanRequest { selection, images: self.images.clone(), variants, platforms };
        let plan = plan::plan(&spec, &graph, &request, &repo_spec_dir)?;
        Ok((spec, plan, repo_spec_dir))
    }
}

/// The platforms `--platform` and `--all-platforms` ask for.
pub fn platforms_choice(listed: &[Platform], all: bool) -> Platforms {
    match (listed, all) {
        (_, true) => Platforms::All,
        ([], false) => Platforms::Default,
        (list, false) => Platforms::Some(list.to_vec()),
    }
}

/// When the branch changed the spec: what that changes image by image, comparing the spec at
/// the merge base with this one ([`diff::against`]).
fn spec_diff(
    repo: &Repo,
    changes: &ChangeSet,
    spec: &Spec,
    spec_dir: &str,
) -> Result<Option<SpecDiff>, crate::git::GitError> {
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
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), crate::error::Error> {
        let (spec, plan, spec_dir) = self.selector.plan(cli)?;
        let plan = if asks_registry(self.registry, &spec) { mark_built(&spec, plan).await? } else { plan };
        let text = match self.format {
            PlanFormat::Text => format!("spec: {}\n{}", cli.spec_source(), render::plan::text(&plan)),
            PlanFormat::Json => render::plan::json(&spec, &plan, &spec_dir),
            PlanFormat::GithubMatrix => render::plan::github_matrix(&plan),
            PlanFormat::GithubLevels => render::plan::github_levels(&spec, &plan),
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}
