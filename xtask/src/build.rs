//! `cargo xtask build`, the library side: builds a plan's images (and the ancestors they need)
//! through the engine, in graph order, independent branches at once.
//!
//! Each image gets an **inputs digest** over everything that decides it: the build context
//! after `.dockerignore`, the Dockerfile, the build arguments, the variant, and the exact IDs
//! of its parent, dependencies and base. The image is tagged `<repository>:inputs-<digest>`
//! (its pin) and `<repository>:build`; an image whose pin already exists with that digest is
//! `up to date` and not rebuilt. Children receive their parent's pin as `BASE_IMAGE`, so they
//! are built on exactly the image that was just built. Tags are applied only after a build
//! succeeds: a failed or interrupted build leaves no tag behind.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::bases::{self, BaseError, BaseImage};
use crate::context::{self, Generated};
use crate::engine::{BuildEvent, BuildRequest, Engine, EngineError};
use crate::graph::{ImageGraph, NodeId};
use crate::plan::BuildPlan;
use crate::report::{human_duration, Reporter};
use crate::scheduler::{self, Job, Outcome};
use crate::spec::{Parent, Spec};

/// Labels the stack puts on every image it builds (next to the OCI ones).
pub const LABEL_IMAGE: &str = "xtask.stack.image";
pub const LABEL_VARIANT: &str = "xtask.stack.variant";
pub const LABEL_PARENT: &str = "xtask.stack.parent";
pub const LABEL_INPUTS: &str = "xtask.stack.inputs";
/// The tag every built image carries: what tests and `cargo xtask tag` start from.
pub const BUILD_TAG: &str = "build";
/// Where the CA bundle for builds sits in every context (empty when none is configured).
pub const CA_BUNDLE: &str = ".stack/ca-bundle.crt";

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Images built at the same time.
    pub jobs: usize,
    pub fail_fast: bool,
    /// Build without the layer cache (implies `force`).
    pub no_cache: bool,
    /// Build even when an image with the same inputs exists.
    pub force: bool,
    /// Images whose layers may serve as cache, for every image (next to `stack.cache_from`).
    pub cache_from: Vec<String>,
    /// Also look for an image's pin in its registry: pulled, it counts as up to date.
    pub registry: bool,
    /// A CA bundle that `RUN` steps may trust (mounted, never copied; see docs/building.md).
    pub ca_bundle: Option<PathBuf>,
    /// `org.opencontainers.image.revision` and `.source`.
    pub revision: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Built,
    UpToDate,
    /// Up to date in the registry (`--registry`), pulled instead of built.
    Pulled,
}

/// An image that is ready: built now, or found up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub status: Status,
    pub id: String,
    /// `<repository>:inputs-<digest>`: names exactly this image.
    pub pin: String,
    pub digest: String,
    pub repository: String,
    pub size: i64,
    /// The size of the image `<repository>:build` named before this build, if any.
    pub previous_size: Option<i64>,
}

/// Why an image did not build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub step: Option<String>,
    pub tail: Vec<String>,
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot read the CA bundle {}: {source}\n  hint: point --ca-bundle (or stack.ca_bundle) at a PEM file", path.display())]
    CaBundle { path: PathBuf, source: std::io::Error },
}

/// One image's line in the summary.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: NodeId,
    pub outcome: Outcome<Built, Failure>,
    pub duration: Duration,
    pub started: Option<std::time::Instant>,
}

/// What a build did, image by image, in topological order.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub rows: Vec<Row>,
}

impl BuildReport {
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|row| !matches!(row.outcome, Outcome::Done(_)))
    }
}

/// The images to build: the plan's, and every ancestor they need (found up to date unless
/// their inputs changed), in topological order.
pub fn build_set(graph: &ImageGraph, plan: &BuildPlan) -> Vec<NodeId> {
    with_ancestors(graph, plan.to_build().map(|planned| &planned.id))
}

/// `ids` and everything they are built on, in topological order.
pub fn with_ancestors<'a>(graph: &ImageGraph, ids: impl IntoIterator<Item = &'a NodeId>) -> Vec<NodeId> {
    let mut wanted: std::collections::BTreeSet<NodeId> = std::collections::BTreeSet::new();
    for id in ids {
        wanted.insert(id.clone());
        wanted.extend(graph.ancestors(id).into_iter().cloned());
    }
    graph.topological_order().filter(|id| wanted.contains(*id)).cloned().collect()
}

/// Everything one image build needs to know, shared by all of them.
struct Shared {
    spec: Arc<Spec>,
    engine: Engine,
    bases: HashMap<String, BaseImage>,
    options: BuildOptions,
    /// Usable layer cache sources, by image.
    cache_from: HashMap<String, Vec<String>>,
    reporter: Arc<Reporter>,
    ca_bundle: Vec<u8>,
    created: String,
}

/// Builds `nodes` (topological order). `interrupt` turning true cancels the run.
pub async fn build(
    spec: Arc<Spec>,
    graph: &ImageGraph,
    nodes: &[NodeId],
    engine: Engine,
    options: BuildOptions,
    reporter: Arc<Reporter>,
    interrupt: watch::Receiver<bool>,
) -> Result<BuildReport, BuildError> {
    let ca_bundle = match &options.ca_bundle {
        Some(path) => std::fs::read(path).map_err(|source| BuildError::CaBundle { path: path.clone(), source })?,
        None => Vec::new(),
    };
    // Bases first, once each.
    let mut bases = HashMap::new();
    for id in nodes {
        let image = &spec.images[&id.image];
        let parent = image.parents.get(&id.variant).into_iter().filter_map(|p| match p {
            Parent::Base(name) => Some(name.clone()),
            Parent::Image(_) => None,
        });
        let dependencies = image.depends_on.iter().filter(|d| spec.bases.contains_key(*d)).cloned();
        for name in parent.chain(dependencies) {
            if let std::collections::hash_map::Entry::Vacant(entry) = bases.entry(name) {
                let base = bases::ensure(&engine, &spec.bases[entry.key()], &spec.dir, &reporter).await?;
                entry.insert(base);
            }
        }
    }
    // Layer cache sources per image: the command line's, and the spec's templates.
    let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
    for id in nodes {
        let repository = spec.repository(&id.image, &id.variant);
        let mut refs = options.cache_from.clone();
        refs.extend(spec.stack.cache_from.iter().map(|template| {
            template.replace("{repository}", &repository).replace("{tag_prefix}", &spec.stack.tag_prefix)
        }));
        wanted.insert(id.name.clone(), refs);
    }
    let mut all_refs: Vec<String> = wanted.values().flatten().cloned().collect();
    all_refs.sort();
    all_refs.dedup();
    let usable = usable_cache(&engine, &all_refs, &reporter).await;
    let cache_from: HashMap<String, Vec<String>> = wanted
        .into_iter()
        .map(|(name, refs)| (name, refs.into_iter().filter(|r| usable.contains(r)).collect()))
        .collect();
    let created =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let shared = Arc::new(Shared {
        spec: spec.clone(),
        engine,
        bases,
        options: options.clone(),
        cache_from,
        reporter,
        ca_bundle,
        created,
    });
    let jobs: Vec<Job> = nodes
        .iter()
        .map(|id| Job {
            name: id.name.clone(),
            needs: graph.dependencies(id).into_iter().map(|(dep, _)| dep.name.clone()).collect(),
        })
        .collect();
    let by_name: Arc<HashMap<String, NodeId>> =
        Arc::new(nodes.iter().map(|id| (id.name.clone(), id.clone())).collect());
    let results = scheduler::run(&jobs, options.jobs.max(1), options.fail_fast, interrupt, move |name, inputs| {
        let shared = shared.clone();
        let id = by_name[&name].clone();
        async move { build_one(&shared, &id, inputs).await }
    })
    .await;
    let mut by_name: BTreeMap<String, scheduler::Finished<Built, Failure>> = results;
    let rows = nodes
        .iter()
        .map(|id| {
            let finished = by_name.remove(&id.name).expect("the scheduler reports every job");
            Row { id: id.clone(), outcome: finished.outcome, duration: finished.duration, started: finished.started }
        })
        .collect();
    Ok(BuildReport { rows })
}

/// The cache sources that exist locally or can be pulled; the others are dropped with a notice.
async fn usable_cache(engine: &Engine, references: &[String], reporter: &Reporter) -> Vec<String> {
    let mut out = Vec::new();
    for reference in references {
        if matches!(engine.image(reference).await, Ok(Some(_))) {
            out.push(reference.clone());
            continue;
        }
        match tokio::time::timeout(
            Duration::from_secs(60),
            engine.pull(reference, crate::credentials::for_reference(reference).as_ref()),
        )
        .await
        {
            Ok(Ok(())) => out.push(reference.clone()),
            Ok(Err(error)) => reporter.note(&format!(
                "notice: layer cache {reference} is not available, building without it ({})",
                error.to_string().lines().next().unwrap_or_default()
            )),
            Err(_) => reporter
                .note(&format!("notice: layer cache {reference} did not answer within 60 s, building without it")),
        }
    }
    out
}

/// The inputs digest: everything that decides an image, nothing that does not.
pub fn inputs_digest(
    id: &NodeId,
    dockerfile: &str,
    context_digest: &str,
    args: &BTreeMap<String, String>,
    upstream: &[(String, String)],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"xtask-stack-inputs/v1\n");
    hasher.update(format!(
        "image {}\nvariant {}\ndockerfile {dockerfile}\ncontext {context_digest}\n",
        id.image, id.variant
    ));
    for (key, value) in args {
        hasher.update(format!("arg {key}={value}\n"));
    }
    for (role, image_id) in upstream {
        hasher.update(format!("upstream {role} {image_id}\n"));
    }
    format!("sha256:{:x}", hasher.finalize())
}

/// The pin tag of a digest: `inputs-` and 32 hex digits (128 bits).
pub fn pin_tag(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("inputs-{}", &hex[..hex.len().min(32)])
}

/// The image `pin` names, when the engine has it and it was built from inputs `digest`.
async fn existing(
    engine: &Engine,
    pin: &str,
    digest: &str,
) -> Result<Option<crate::engine::ImageInspect>, EngineError> {
    let Some(image) = engine.image(pin).await? else { return Ok(None) };
    let labels = image.config.as_ref().and_then(|c| c.labels.as_ref());
    Ok((labels.and_then(|l| l.get(LABEL_INPUTS)).map(String::as_str) == Some(digest)).then_some(image))
}

async fn build_one(shared: &Shared, id: &NodeId, inputs: HashMap<String, Built>) -> Result<Built, Failure> {
    let reporter = &shared.reporter;
    let log = reporter.log_path(&id.name);
    let fail =
        |message: String, step: Option<String>, tail: Vec<String>| Failure { message, step, tail, log: log.clone() };
    let spec = &shared.spec;
    let image = &spec.images[&id.image];
    let repository = spec.repository(&id.image, &id.variant);
    // What the image is built on, as (build argument, reference, exact ID).
    let mut upstream: Vec<(String, String, String)> = Vec::new();
    let resolve = |name: &str| -> Option<(String, String)> {
        if let Some(base) = shared.bases.get(name) {
            return Some((base.reference.clone(), base.id.clone()));
        }
        let node = NodeId::new(spec, name, &id.variant);
        inputs.get(&node.name).map(|built| (built.pin.clone(), built.id.clone()))
    };
    if let Some(parent) = image.parents.get(&id.variant) {
        let (reference, image_id) = resolve(parent.name())
            .ok_or_else(|| fail(format!("parent `{}` is not available", parent.name()), None, vec![]))?;
        upstream.push((spec.stack.parent_arg.clone(), reference, image_id));
    }
    for dependency in &image.depends_on {
        let (reference, image_id) = resolve(dependency)
            .ok_or_else(|| fail(format!("dependency `{dependency}` is not available"), None, vec![]))?;
        upstream.push((Spec::dependency_arg(dependency), reference, image_id));
    }
    let dir = spec.dir.join(&image.dir);
    let dockerfile =
        image.dockerfile.strip_prefix(&image.dir).unwrap_or(&image.dockerfile).to_string_lossy().replace('\\', "/");
    let generated = vec![Generated { path: CA_BUNDLE.to_string(), contents: shared.ca_bundle.clone() }];
    let (context_dir, context_dockerfile) = (dir.clone(), dockerfile.clone());
    // What cannot trigger a rebuild cannot be in the image: files the change rules ignore or
    // only re-test on (an image's tests/) are not sent, so they are not in the digest either.
    let rules = spec.changes.clone();
    let prefix = Spec::repo_path(&spec.folder_name(), &image.dir);
    let exclude = move |relative: &str| {
        let path = format!("{prefix}/{relative}");
        rules.ignore.is_match(&path) || rules.test_only.is_match(&path)
    };
    let context =
        tokio::task::spawn_blocking(move || context::archive(&context_dir, &context_dockerfile, &generated, &exclude))
            .await
            .map_err(|e| fail(e.to_string(), None, vec![]))?
            .map_err(|e| fail(e.to_string(), None, vec![]))?;
    let args = spec.build_args(image, &id.variant);
    let upstream_ids: Vec<(String, String)> =
        upstream.iter().map(|(arg, _, image_id)| (arg.clone(), image_id.clone())).collect();
    let digest = inputs_digest(id, &dockerfile, &context.digest, &args, &upstream_ids);
    let pin = format!("{repository}:{}", pin_tag(&digest));
    let engine = &shared.engine;
    let engine_failure = |e: EngineError| fail(e.to_string(), None, vec![]);
    let previous = engine.image(&format!("{repository}:{BUILD_TAG}")).await.map_err(engine_failure)?;
    let previous_size = previous.as_ref().and_then(|image| image.size);
    let reuse = !shared.options.force && !shared.options.no_cache;
    // Up to date here, or (with --registry) in the registry: the pin names an image with this digest.
    let mut found = if reuse {
        existing(engine, &pin, &digest).await.map_err(engine_failure)?.map(|i| (i, Status::UpToDate))
    } else {
        None
    };
    if found.is_none() && reuse && shared.options.registry {
        let credentials = crate::credentials::for_reference(&pin);
        let pulled = tokio::time::timeout(Duration::from_secs(600), engine.pull(&pin, credentials.as_ref())).await;
        if let Ok(Ok(())) = pulled {
            found = existing(engine, &pin, &digest).await.map_err(engine_failure)?.map(|i| (i, Status::Pulled));
        }
    }
    if let Some((image, status)) = found {
        let image_id = image.id.clone().unwrap_or_default();
        let size = image.size.unwrap_or_default();
        if let Some(problem) = over_budget(spec, id, size) {
            return Err(fail(problem, None, vec![]));
        }
        if previous.as_ref().and_then(|p| p.id.as_ref()) != Some(&image_id) {
            engine.tag(&image_id, &repository, BUILD_TAG).await.map_err(engine_failure)?;
        }
        return Ok(Built { status, id: image_id, pin, digest, repository, size, previous_size });
    }
    let mut build_args: HashMap<String, String> = args.into_iter().collect();
    for (arg, reference, _) in &upstream {
        build_args.insert(arg.clone(), reference.clone());
    }
    let mut labels = HashMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            repository.rsplit('/').next().unwrap_or(&repository).to_string(),
        ),
        ("org.opencontainers.image.version".to_string(), spec.stack.tag_prefix.clone()),
        ("org.opencontainers.image.created".to_string(), shared.created.clone()),
        (LABEL_IMAGE.to_string(), id.image.clone()),
        (LABEL_VARIANT.to_string(), id.variant.clone()),
        (LABEL_INPUTS.to_string(), digest.clone()),
    ]);
    if let Some(description) = &image.description {
        labels.insert("org.opencontainers.image.description".into(), description.clone());
    }
    if let Some((_, reference, image_id)) = upstream.first().filter(|(arg, ..)| *arg == spec.stack.parent_arg) {
        labels.insert(LABEL_PARENT.into(), format!("{reference}@{image_id}"));
    }
    if let Some(revision) = &shared.options.revision {
        labels.insert("org.opencontainers.image.revision".into(), revision.clone());
    }
    if let Some(source) = &shared.options.source {
        labels.insert("org.opencontainers.image.source".into(), source.clone());
    }
    let request = BuildRequest {
        context: context.tar,
        dockerfile,
        build_args,
        labels,
        no_cache: shared.options.no_cache,
        cache_from: shared.cache_from.get(&id.name).cloned().unwrap_or_default(),
        name: id.name.clone(),
    };
    reporter.started(&id.name, &format!("building ({} files in context)", context.files));
    let result = engine
        .build(request, |event| match event {
            BuildEvent::Step(step) => reporter.step(&id.name, &step),
            BuildEvent::Output(line) => reporter.output(&id.name, &line),
        })
        .await;
    let new_id = match result {
        Ok(new_id) => new_id,
        Err(error) => {
            let (step, tail) = reporter.finished(&id.name, "failed");
            return Err(fail(error.to_string(), step, tail));
        }
    };
    // An image over its size budget is not kept: no tag moves, the next build tries again
    // (from the layer cache).
    let size = match engine.image(&new_id).await {
        Ok(image) => image.and_then(|i| i.size).unwrap_or_default(),
        Err(error) => {
            let (step, tail) = reporter.finished(&id.name, "failed");
            return Err(fail(error.to_string(), step, tail));
        }
    };
    if let Some(problem) = over_budget(spec, id, size) {
        let _ = engine.remove_image(&new_id, false).await;
        reporter.finished(&id.name, "over its size budget");
        return Err(fail(problem, None, vec![]));
    }
    // Only now do tags move: the pin first, then the build tag.
    let tagged = async {
        engine.tag(&new_id, &repository, &pin_tag(&digest)).await?;
        engine.tag(&new_id, &repository, BUILD_TAG).await
    }
    .await;
    if let Err(error) = tagged {
        let (step, tail) = reporter.finished(&id.name, "failed");
        return Err(fail(error.to_string(), step, tail));
    }
    reporter.finished(&id.name, "built");
    Ok(Built { status: Status::Built, id: new_id, pin, digest, repository, size, previous_size })
}

/// Why an image of `size` bytes breaks its size budget in the spec, if it does.
pub fn over_budget(spec: &Spec, id: &NodeId, size: i64) -> Option<String> {
    use crate::report::human_size;
    let budget = i64::try_from(*spec.images.get(&id.image)?.size_budgets.get(&id.variant)?).unwrap_or(i64::MAX);
    (size > budget).then(|| {
        format!(
            "{} is {} ({size} bytes), over its size budget of {} by {}; make the image smaller, or raise \
             `images.{}.size_budget` in {}",
            id.name,
            human_size(size),
            human_size(budget),
            human_size(size - budget),
            id.image,
            spec.file.display()
        )
    })
}

/// The summary table: image, variant, status, duration, size, size change.
pub fn summary(report: &BuildReport) -> String {
    use crate::report::human_size;
    let mut rows = vec![[
        "IMAGE".to_string(),
        "VARIANT".into(),
        "STATUS".into(),
        "DURATION".into(),
        "SIZE".into(),
        "CHANGE".into(),
    ]];
    for row in &report.rows {
        let (status, size, change) = match &row.outcome {
            Outcome::Done(built) => {
                let status = match built.status {
                    Status::Built => "built",
                    Status::UpToDate => "up to date",
                    Status::Pulled => "up to date (pulled)",
                };
                let change = match built.previous_size {
                    Some(previous) if previous != built.size => {
                        let delta = built.size - previous;
                        format!("{}{}", if delta > 0 { "+" } else { "" }, human_size(delta))
                    }
                    Some(_) => "=".to_string(),
                    None => "new".to_string(),
                };
                (status.to_string(), human_size(built.size), change)
            }
            Outcome::Failed(_) => ("FAILED".into(), String::new(), String::new()),
            Outcome::Skipped { because } => {
                (format!("skipped (parent failed: {because})"), String::new(), String::new())
            }
            Outcome::Cancelled => ("interrupted".into(), String::new(), String::new()),
            Outcome::NotStarted => ("not started".into(), String::new(), String::new()),
        };
        let duration = if row.started.is_some() { human_duration(row.duration) } else { String::new() };
        rows.push([row.id.image.clone(), row.id.variant.clone(), status, duration, size, change]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().enumerate().map(|(c, cell)| format!("{cell:w$}", w = widths[c])).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Each failure: the image, the failing step, its last lines of output and the log's path.
pub fn failures(report: &BuildReport) -> String {
    let mut out = String::new();
    for row in &report.rows {
        if let Outcome::Failed(failure) = &row.outcome {
            out.push_str(&format!("\n{} failed", row.id.name));
            if let Some(step) = &failure.step {
                out.push_str(&format!(" at {step}"));
            }
            out.push_str(&format!(":\n  {}\n", failure.message.replace('\n', "\n  ")));
            if !failure.tail.is_empty() {
                out.push_str("  last lines of output:\n");
                for line in &failure.tail {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
            if let Some(hint) = crate::hints::for_failed_step(&failure.message, &failure.tail) {
                out.push_str(&format!("  hint: {hint}\n"));
            }
            out.push_str(&format!("  full log: {}\n", failure.log.display()));
        }
    }
    out
}
