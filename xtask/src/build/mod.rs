//! `cargo xtask build`, the library side: builds a plan's images (and the ancestors they need)
//! through the engine, in graph order, independent branches at once.
//!
//! Each image's identity is its **inputs digest** ([`crate::identity`]), computed from the
//! repository alone; its pin tag `<repository>:inputs-<digest>` names exactly the image built
//! from those inputs. A run first asks where every pin is (this engine; with the registry as
//! cache, the registry too, by manifest only), then decides ([`decide`]): an image whose pin
//! exists and whose ancestors are not built in this run is up to date and is not built, and
//! not even pulled unless the caller needs it on this engine. Images that build pull only the
//! pins they are built on, when they are about to build, and with `push` push their own pin as
//! soon as they succeed, so a killed run loses nothing it finished and any machine picks up from
//! the registry. Tags are applied only after a build succeeds: a failed or interrupted build
//! leaves no tag behind.

pub mod decide;
mod one;
mod summary;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use decide::{Decision, Found, Place, Why};
pub use summary::{failures, over_budget, summary};

use crate::bases::{BaseError, BaseImage};
use crate::cache::RegistryCache;
use crate::engine::{Engine, EngineError};
use crate::error::ExitCode;
use crate::graph::{ImageGraph, NodeId};
use crate::identity::{Identities, IdentityError, Pin};
use crate::plan::BuildPlan;
use crate::platform::{Platform, Runs};
use crate::progress::Reporter;
use crate::scheduler::{self, Job, Outcome};
use crate::spec::{Cache, Spec};

pub use crate::identity::pin_tag;

/// The tag every built image carries: what tests and `cargo xtask tag` start from
/// (`build-<arch>` in a stack of several platforms: one engine may hold them all).
pub const BUILD_TAG: &str = "build";
/// Where the CA bundle for builds sits in every context (empty when none is configured).
pub const CA_BUNDLE: &str = ".stack/ca-bundle.crt";

/// The build tag of a node: `build`, or `build-arm64` in a stack of several platforms.
pub fn build_tag(spec: &Spec, id: &NodeId) -> String {
    if spec.multi_platform() {
        format!("{BUILD_TAG}-{}", id.platform.suffix())
    } else {
        BUILD_TAG.to_string()
    }
}

/// `<repository>:build` of a node (`:build-<arch>` in a stack of several platforms): the image
/// tests, `tag` and `docs` start from.
pub fn build_reference(spec: &Spec, id: &NodeId) -> String {
    format!("{}:{}", spec.repository(&id.image, &id.variant), build_tag(spec, id))
}

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
    /// Also look for pins in the stack's registry (also on when the spec says `cache: registry`).
    pub registry: bool,
    /// Push each pin to the registry as soon as its image is built (implies `registry`).
    pub push: bool,
    /// Decide on this engine alone, whatever the spec says (`STACK_CACHE=local` does the same).
    pub local_only: bool,
    /// Nodes that must be on this engine afterwards even when up to date in the registry
    /// (they are pulled); the others stay where they are.
    pub pull: BTreeSet<String>,
    /// A CA bundle that `RUN` steps may trust (mounted, never copied; see docs/building.md).
    pub ca_bundle: Option<PathBuf>,
    /// `org.opencontainers.image.revision` and `.source`.
    pub revision: Option<String>,
    pub source: Option<String>,
    /// The branch whose tag (`<prefix>-<branch>`) names the previous image, used as layer cache
    /// when the registry is the cache.
    pub branch: Option<String>,
    /// Engines for some platforms (`--engine linux/arm64=ssh://arm-box`); the others build on
    /// the engine the run is given.
    pub engines: Vec<(Platform, Engine)>,
}

impl BuildOptions {
    /// The options every build of `spec` starts from, for `cargo xtask build` and the test
    /// harness alike: as many images at once as there are CPUs (at least 2), the registry as
    /// cache when `STACK_CACHE=registry`, the CA bundle
    /// given (else `stack.ca_bundle` when that file exists here, with a notice when it does
    /// not), the provenance labels and the branch of the repository the spec is in.
    pub fn for_spec(spec: &Spec, ca_bundle: Option<PathBuf>, reporter: &Reporter) -> BuildOptions {
        let ca_bundle = ca_bundle.or_else(|| {
            let configured = spec.stack.ca_bundle.clone()?;
            let path = if configured.is_absolute() { configured } else { spec.dir.join(configured) };
            if path.is_file() {
                return Some(path);
            }
            reporter.note(&format!(
                "notice: stack.ca_bundle {} does not exist here; RUN steps get an empty bundle",
                path.display()
            ));
            None
        });
        let repo = crate::git::Repo::discover(&spec.dir).ok();
        let branch = repo.as_ref().and_then(crate::git::Repo::branch).or_else(|| {
            ["GITHUB_HEAD_REF", "GITHUB_REF_NAME"]
                .iter()
                .find_map(|var| std::env::var(var).ok().filter(|b| !b.is_empty()))
        });
        BuildOptions {
            jobs: crate::paths::parallelism(2),
            registry: std::env::var("STACK_CACHE").is_ok_and(|cache| cache == "registry"),
            ca_bundle,
            revision: repo.as_ref().and_then(crate::git::Repo::revision),
            source: repo.as_ref().and_then(crate::git::Repo::source),
            branch,
            ..Default::default()
        }
    }

    /// Whether pins are looked for in the registry: asked for, pushed, or the spec's default
    /// (which `STACK_CACHE=local` turns off).
    pub fn uses_registry(&self, spec: &Spec) -> bool {
        let local = self.local_only || std::env::var("STACK_CACHE").is_ok_and(|cache| cache == "local");
        self.registry || self.push || (spec.stack.cache == Cache::Registry && !local)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Built,
    /// Up to date on this engine.
    UpToDate,
    /// Up to date in the registry, and pulled because the caller needs it here.
    Pulled,
    /// Up to date in the registry, and left there.
    InRegistry,
}

/// An image that is ready: built now, or found up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub status: Status,
    /// The engine's image ID; empty for an image left in the registry.
    pub id: String,
    /// `<repository>:inputs-<digest>`: names exactly this image.
    pub pin: String,
    pub digest: String,
    pub repository: String,
    pub size: i64,
    /// The size of the image `<repository>:build` named before this build, if any.
    pub previous_size: Option<i64>,
    /// Its pin was pushed to the registry in this run.
    pub pushed: bool,
}

impl Built {
    /// `inputs-...`.
    pub fn pin_tag(&self) -> String {
        pin_tag(&self.digest)
    }
}

/// Why an image did not build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub step: Option<String>,
    pub tail: Vec<String>,
    pub log: PathBuf,
    /// The image built, but its pin could not be pushed.
    pub push: bool,
}

/// How a build run ended, when not well.
#[derive(Debug, thiserror::Error)]
pub enum BuildRunError {
    #[error("{failed} of {total} images did not build (see above)")]
    Failed { failed: usize, total: usize },
    #[error("{failed} of {total} images built but their pins could not be pushed (see above)")]
    PushFailed { failed: usize, total: usize },
    #[error("interrupted: running builds were cancelled; no tag was moved for them")]
    Interrupted,
}

impl BuildRunError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            BuildRunError::Failed { .. } => ExitCode::BuildFailed,
            BuildRunError::PushFailed { .. } => ExitCode::Registry,
            BuildRunError::Interrupted => ExitCode::Interrupted,
        }
    }
}

/// What stops a build run before any image builds.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot read the CA bundle {}: {source}\n  hint: point --ca-bundle (or stack.ca_bundle) at a PEM file", path.display())]
    CaBundle { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Platform(Box<PlatformUnavailable>),
}

impl BuildError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            BuildError::Base(_) | BuildError::Engine(_) | BuildError::Platform(_) => ExitCode::Engine,
            BuildError::Identity(_) => ExitCode::Failure,
            BuildError::CaBundle { .. } => ExitCode::Usage,
        }
    }
}

/// A platform that neither the engine nor QEMU on its host can build for.
#[derive(Debug, thiserror::Error)]
#[error("{nodes} must be built for {platform}, but the engine at {host} runs {engine_platform} and this host cannot run {platform} programs (no QEMU binfmt handler {handler})\n  hint: {how}")]
pub struct PlatformUnavailable {
    pub nodes: String,
    pub platform: Platform,
    pub host: String,
    pub engine_platform: Platform,
    pub handler: String,
    pub how: String,
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

    /// The error this run ends with, if it did not end well.
    pub fn error(&self) -> Option<BuildRunError> {
        let failures: Vec<&Failure> = self
            .rows
            .iter()
            .filter_map(|row| match &row.outcome {
                Outcome::Failed(failure) => Some(failure),
                _ => None,
            })
            .collect();
        let failed = self.rows.iter().filter(|row| !matches!(row.outcome, Outcome::Done(_))).count();
        let total = self.rows.len();
        if failed == 0 {
            None
        } else if !failures.is_empty() && failures.iter().all(|f| f.push) && failed == failures.len() {
            Some(BuildRunError::PushFailed { failed, total })
        } else {
            Some(BuildRunError::Failed { failed, total })
        }
    }
}

/// The images to build: the plan's, and every ancestor they need (found up to date unless
/// their inputs changed), in topological order.
pub fn build_set(graph: &ImageGraph, plan: &BuildPlan) -> Vec<NodeId> {
    with_ancestors(graph, plan.to_build().map(|planned| &planned.id))
}

/// `ids` and everything they are built on, in topological order.
pub fn with_ancestors<'a>(graph: &ImageGraph, ids: impl IntoIterator<Item = &'a NodeId>) -> Vec<NodeId> {
    let mut wanted: BTreeSet<NodeId> = BTreeSet::new();
    for id in ids {
        wanted.insert(id.clone());
        wanted.extend(graph.ancestors(id).into_iter().cloned());
    }
    graph.topological_order().filter(|id| wanted.contains(*id)).cloned().collect()
}

/// Everything one image job needs to know, shared by all of them.
struct Shared {
    spec: Arc<Spec>,
    /// The engine each platform builds on.
    engines: BTreeMap<Platform, Engine>,
    engine: Engine,
    identities: Identities,
    decisions: BTreeMap<String, Decision>,
    found: BTreeMap<String, Found>,
    bases: HashMap<String, BaseImage>,
    registry: RegistryCache,
    options: BuildOptions,
    /// Layer cache sources, by node.
    cache_from: HashMap<String, Vec<String>>,
    reporter: Arc<Reporter>,
    ca_bundle: Vec<u8>,
    created: String,
}

impl Shared {
    /// The engine node `id` is built on (and pulled to, tagged on, pushed from).
    fn engine_for(&self, id: &NodeId) -> &Engine {
        self.engines.get(&id.platform).unwrap_or(&self.engine)
    }

    /// The platform to ask the engine for: the node's, when the spec declares platforms (a
    /// stack that does not builds for each engine's own).
    fn platform_of<'a>(&self, id: &'a NodeId) -> Option<&'a Platform> {
        self.spec.stack.platforms_declared.then_some(&id.platform)
    }
}

/// The engine each platform of `nodes` uses: the one `--engine` names for it, else `engine`.
fn engines_for(nodes: &[NodeId], engine: &Engine, options: &BuildOptions) -> BTreeMap<Platform, Engine> {
    nodes
        .iter()
        .map(|id| {
            let chosen = options.engines.iter().find(|(p, _)| *p == id.platform).map_or(engine, |(_, e)| e);
            (id.platform.clone(), chosen.clone())
        })
        .collect()
}

/// Whether every platform that builds in this run can: natively on its engine, or under QEMU
/// on a local engine whose host has the binfmt handler (said once per platform, with how
/// slow it is); else the error names both ways to get there.
fn check_platforms(
    spec: &Spec,
    nodes: &[NodeId],
    decisions: &BTreeMap<String, Decision>,
    engines: &BTreeMap<Platform, Engine>,
    reporter: &Reporter,
) -> Result<(), BuildError> {
    if !spec.stack.platforms_declared {
        return Ok(());
    }
    for (platform, engine) in engines.iter().filter(|(platform, engine)| engine.platform != **platform) {
        let building: Vec<&str> = nodes
            .iter()
            .filter(|id| id.platform == *platform && decisions[&id.name].builds())
            .map(|id| id.name.as_str())
            .collect();
        if building.is_empty() {
            continue;
        }
        if !engine.is_local() {
            reporter.note(&format!("notice: the engine at {} runs {}; building {platform} there needs QEMU on its host (this tool cannot check it from here)", engine.host, engine.platform));
            continue;
        }
        match platform.host_runs() {
            Runs::Emulated { handler } => reporter.note(&format!(
                "notice: building {platform} under QEMU ({}) on the {} engine at {}: expect it to be several times slower than on a native {} engine (docs/building.md gives the figures; `--engine {platform}=ssh://HOST`, or a native runner, is faster)",
                handler.display(), engine.platform, engine.host, platform.architecture
            )),
            Runs::Native => {}
            Runs::No => {
                return Err(BuildError::Platform(Box::new(PlatformUnavailable {
                    nodes: building.join(", "),
                    platform: platform.clone(),
                    host: engine.host.clone(),
                    engine_platform: engine.platform.clone(),
                    handler: platform.binfmt_handler().display().to_string(),
                    how: platform.how_to_run(),
                })))
            }
        }
    }
    Ok(())
}

/// Builds `nodes` (topological order, ancestors included). `interrupt` turning true cancels
/// the run.
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
    let mut identities = crate::identity::identities(&spec, graph, nodes)?;
    let registry = registry_cache(&spec, &options, &reporter);
    let engines = engines_for(nodes, &engine, &options);
    let found = find(&spec, &engines, &registry, &mut identities, nodes, &options, &reporter).await?;
    let force = options.force || options.no_cache;
    let decisions = decide::decide(graph, nodes, &found, force);
    check_platforms(&spec, nodes, &decisions, &engines, &reporter)?;
    let bases = bases_for(&spec, &engines, &registry, &identities, nodes, &decisions, &options, &reporter).await?;
    let cache_from = cache_sources(&spec, nodes, &options, registry.is_on());
    let created =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let shared = Arc::new(Shared {
        spec,
        engines,
        engine,
        identities,
        decisions,
        found,
        bases,
        registry,
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
        async move { one::run(&shared, &id, inputs).await }
    })
    .await;
    let mut by_name = results;
    let rows = nodes
        .iter()
        .map(|id| {
            let finished = by_name.remove(&id.name).expect("the scheduler reports every job");
            Row { id: id.clone(), outcome: finished.outcome, duration: finished.duration, started: finished.started }
        })
        .collect();
    Ok(BuildReport { rows })
}

/// The registry to look for pins in, when this run uses one; a notice when it cannot.
fn registry_cache(spec: &Spec, options: &BuildOptions, reporter: &Reporter) -> RegistryCache {
    if !options.uses_registry(spec) {
        return RegistryCache::off();
    }
    RegistryCache::for_spec(spec).unwrap_or_else(|notice| {
        reporter.note(&notice);
        RegistryCache::off()
    })
}

/// Where each node's pin is: on the engine (unless the run rebuilds everything anyway), and in
/// the registry when it is not on the engine, or when pins are pushed. With a fallback
/// namespace (`STACK_NAMESPACE`), a pin missing from this run's namespace is looked for in the
/// spec's own, and an image found there is used from there (its pin in `identities` moves).
async fn find(
    spec: &Spec,
    engines: &BTreeMap<Platform, Engine>,
    registry: &RegistryCache,
    identities: &mut Identities,
    nodes: &[NodeId],
    options: &BuildOptions,
    reporter: &Reporter,
) -> Result<BTreeMap<String, Found>, EngineError> {
    let mut found = BTreeMap::new();
    let force = options.force || options.no_cache;
    for id in nodes {
        let pin = identities.nodes[&id.name].clone();
        let fallback =
            spec.fallback_repository(&pin.repository).map(|repository| Pin::new(pin.digest.clone(), repository));
        let mut here = Found { engine: false, registry: false };
        let engine = &engines[&id.platform];
        for candidate in std::iter::once(pin.clone()).chain(fallback) {
            here.engine = !force && crate::cache::on_engine(engine, &candidate).await?.is_some();
            if (!force && !here.engine) || (options.push && candidate == pin) {
                let (has, notice) = registry.has(&candidate).await;
                if let Some(notice) = notice {
                    reporter.note(&notice);
                }
                here.registry = has;
            }
            if here.engine || here.registry {
                identities.nodes.insert(id.name.clone(), candidate);
                break;
            }
        }
        found.insert(id.name.clone(), here);
    }
    Ok(found)
}

/// Makes sure every base an image that builds is built on is on the engine, under its pin.
#[allow(clippy::too_many_arguments)]
async fn bases_for(
    spec: &Spec,
    engines: &BTreeMap<Platform, Engine>,
    registry: &RegistryCache,
    identities: &Identities,
    nodes: &[NodeId],
    decisions: &BTreeMap<String, Decision>,
    options: &BuildOptions,
    reporter: &Reporter,
) -> Result<HashMap<String, BaseImage>, BuildError> {
    let mut bases = HashMap::new();
    for id in nodes.iter().filter(|id| decisions[&id.name].builds()) {
        for name in crate::identity::bases_of(spec, id) {
            let key = crate::identity::base_key(spec, name, &id.platform);
            if bases.contains_key(&key) {
                continue;
            }
            let pin = &identities.bases[&key];
            let fallback =
                spec.fallback_repository(&pin.repository).map(|repository| Pin::new(pin.digest.clone(), repository));
            let engine = &engines[&id.platform];
            // A stack that declares no platform builds for each engine's own.
            let platform = if spec.stack.platforms_declared { &id.platform } else { &engine.platform };
            let wanted = crate::bases::Wanted {
                base: &spec.bases[name],
                platform,
                pin,
                fallback: fallback.as_ref(),
                spec_dir: &spec.dir,
            };
            let base = crate::bases::ensure_pinned(engine, wanted, registry, options.push, reporter).await?;
            bases.insert(key, base);
        }
    }
    Ok(bases)
}

/// Layer cache sources per node: the command line's, the spec's templates, and, with the
/// registry as cache, the image its branch tag names (BuildKit reads the inline cache
/// metadata from the registry and fetches only the layers it reuses).
fn cache_sources(
    spec: &Spec,
    nodes: &[NodeId],
    options: &BuildOptions,
    registry: bool,
) -> HashMap<String, Vec<String>> {
    let branch_tag =
        options.branch.as_deref().and_then(|branch| crate::tags::branch_tag(&spec.stack.tag_prefix, branch).ok());
    nodes
        .iter()
        .map(|id| {
            let repository = spec.repository(&id.image, &id.variant);
            let mut refs = options.cache_from.clone();
            refs.extend(spec.stack.cache_from.iter().map(|template| {
                template.replace("{repository}", &repository).replace("{tag_prefix}", &spec.stack.tag_prefix)
            }));
            if let (true, Some(tag)) = (registry, &branch_tag) {
                refs.push(format!("{repository}:{tag}"));
            }
            refs.dedup();
            (id.name.clone(), refs)
        })
        .collect()
}
