//! Which images to build or re-test, in what order, and why: the answer to "what will this
//! build do?".
//!
//! Pure: takes the spec, its graph and (for `--since`) the changed files git reported, and
//! returns a [`BuildPlan`]. Change rules apply in this order: `ignore` (never triggers),
//! `rebuild_all`, `test_only` (re-test, no rebuild), then the image whose folder holds the file.
//! A rebuild propagates to every descendant; a test change to every image that inherits the
//! tests (the descendants through `parent`).

use std::collections::{BTreeSet, HashMap};

use globset::Candidate;
use std::fmt;

use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::git::ChangeSet;
use crate::graph::{EdgeKind, ImageGraph, NodeId};
use crate::platform::Platform;
use crate::spec::diff::SpecDiff;
use crate::spec::Spec;

/// Which variants a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variants {
    /// The spec's first variant.
    Default,
    One(String),
    All,
}

/// Which platforms a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// The host's when the stack builds for it, else the stack's first.
    Default,
    Some(Vec<Platform>),
    All,
}

/// What decides the images in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every image (`--all`, or no image named and no `--since`).
    All,
    /// The images the caller named, and nothing else.
    Requested,
    /// What changed since a reference (`--since REF`), and what the changes to the spec change
    /// image by image (when the spec at the merge base could be read).
    Since(ChangeSet, Option<SpecDiff>),
}

/// What a plan was made from, as reported with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Requested,
    Since { since: String, merge_base: String, changed_files: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub selection: Selection,
    /// `image`, `image@variant`, `image/arch` or `image@variant/arch`; with `All`/`Since`,
    /// keeps only these.
    pub images: Vec<String>,
    pub variants: Variants,
    pub platforms: Platforms,
}

/// Why an image is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    All,
    Requested,
    /// A file of the image's build context changed.
    Changed {
        path: String,
    },
    /// A file listed under `changes.rebuild_all` changed.
    RebuildAll {
        path: String,
    },
    /// The image's definition in the spec changed: these fields.
    SpecChanged {
        fields: Vec<String>,
    },
    ParentRebuilt {
        parent: String,
    },
    DependencyRebuilt {
        dependency: String,
    },
    /// A test file of this image (or a common one) changed: re-test only.
    TestsChanged {
        path: String,
    },
    /// The parent's tests changed, and this image inherits them: re-test only.
    ParentTestsChanged {
        parent: String,
    },
    /// The image is built already: its pin exists (`place`: `registry` or `engine`), and
    /// nothing it is built on needs building. Re-test only.
    UpToDate {
        pin: String,
        place: String,
    },
}

impl Reason {
    /// Whether this reason needs a build (as opposed to a re-test of the existing image).
    pub fn rebuilds(&self) -> bool {
        !matches!(self, Reason::TestsChanged { .. } | Reason::ParentTestsChanged { .. } | Reason::UpToDate { .. })
    }

    /// The stable name used in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::All => "all",
            Reason::Requested => "requested",
            Reason::Changed { .. } => "changed",
            Reason::RebuildAll { .. } => "rebuild_all",
            Reason::SpecChanged { .. } => "spec_changed",
            Reason::ParentRebuilt { .. } => "parent_rebuilt",
            Reason::DependencyRebuilt { .. } => "dependency_rebuilt",
            Reason::TestsChanged { .. } => "tests_changed",
            Reason::ParentTestsChanged { .. } => "parent_tests_changed",
            Reason::UpToDate { .. } => "up_to_date",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::All => write!(f, "all"),
            Reason::Requested => write!(f, "requested"),
            Reason::Changed { path } => write!(f, "changed: {path}"),
            Reason::RebuildAll { path } => write!(f, "rebuild all: {path}"),
            Reason::SpecChanged { fields } => write!(f, "spec changed: {}", fields.join(", ")),
            Reason::ParentRebuilt { parent } => write!(f, "parent rebuilt: {parent}"),
            Reason::DependencyRebuilt { dependency } => {
                write!(f, "dependency rebuilt: {dependency}")
            }
            Reason::TestsChanged { path } => write!(f, "tests changed (re-test only): {path}"),
            Reason::ParentTestsChanged { parent } => {
                write!(f, "parent's tests changed (re-test only): {parent}")
            }
            Reason::UpToDate { pin, place } => write!(f, "up to date in {place} ({pin}): re-test only"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Build,
    /// Run the tests again on the image as it is.
    Test,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Build => "build",
            Action::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedImage {
    pub id: NodeId,
    pub action: Action,
    /// The build level among the images to build (0 first); `None` for re-test only.
    pub level: Option<usize>,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub scope: Scope,
    pub variants: Vec<String>,
    /// `linux/amd64`, ...: the platforms the plan covers, in the stack's order.
    pub platforms: Vec<String>,
    /// Images to build, then images to re-test, each group in topological order.
    pub images: Vec<PlannedImage>,
    /// The names of the images to build, level by level.
    pub levels: Vec<Vec<String>>,
    /// Changed files that the `ignore` rules excluded.
    pub ignored_files: Vec<String>,
    /// Changed files that no rule and no image covers.
    pub unmapped_files: Vec<String>,
}

impl BuildPlan {
    pub fn to_build(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images.iter().filter(|image| image.action == Action::Build)
    }

    pub fn to_test(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images.iter().filter(|image| image.action == Action::Test)
    }
}

/// Plans a build. `spec_dir` is the spec's directory relative to the repository root (`images`),
/// used to match changed files to image folders.
pub fn plan(spec: &Spec, graph: &ImageGraph, request: &PlanRequest, spec_dir: &str) -> Result<BuildPlan, Diagnostics> {
    let mut variants = select_variants(spec, &request.variants)?;
    let mut platforms = select_platforms(spec, &request.platforms)?;
    let named = resolve_images(spec, &request.images, &variants, &platforms)?;
    // `image@variant` brings its variant into the plan, `image/arch` its platform.
    for id in &named {
        if !variants.contains(&id.variant) {
            variants.push(id.variant.clone());
        }
        if !platforms.contains(&id.platform) {
            platforms.push(id.platform.clone());
        }
    }
    variants.sort_by_key(|name| spec.variants.iter().position(|v| &v.name == name));
    platforms.sort_by_key(|platform| spec.stack.platforms.iter().position(|p| p == platform));
    // Nodes in scope, in topological order; reasons are kept by position in this list.
    let in_scope: Vec<&NodeId> = graph
        .topological_order()
        .filter(|id| variants.contains(&id.variant) && platforms.contains(&id.platform))
        .collect();
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); in_scope.len()];
    let mut files = Files::default();
    let scope = match &request.selection {
        Selection::All => {
            reasons.iter_mut().for_each(|why| why.push(Reason::All));
            Scope::All
        }
        Selection::Requested => {
            for (why, id) in reasons.iter_mut().zip(&in_scope) {
                if named.contains(*id) {
                    why.push(Reason::Requested);
                }
            }
            Scope::Requested
        }
        Selection::Since(changes, spec_diff) => {
            files = since(spec, spec_dir, changes, spec_diff.as_ref(), &in_scope, &mut reasons);
            propagate(graph, &in_scope, &mut reasons);
            Scope::Since {
                since: changes.since.clone(),
                merge_base: changes.merge_base.clone(),
                changed_files: changes.files.len(),
            }
        }
    };
    // With images named next to `--all` or `--since`, keep only those.
    if !matches!(request.selection, Selection::Requested) && !request.images.is_empty() {
        for (why, id) in reasons.iter_mut().zip(&in_scope) {
            if !named.contains(*id) {
                why.clear();
            }
        }
    }
    let (images, levels) = assemble(graph, &in_scope, reasons);
    let platforms = platforms.iter().map(ToString::to_string).collect();
    Ok(BuildPlan {
        scope,
        variants,
        platforms,
        images,
        levels,
        ignored_files: files.ignored,
        unmapped_files: files.unmapped,
    })
}

/// Changed files that rebuild nothing.
#[derive(Default)]
struct Files {
    ignored: Vec<String>,
    unmapped: Vec<String>,
}

/// Gives each node in scope the reasons the changed files give it, by the change rules; a
/// change to the spec itself, when `spec_diff` explains it, only to the nodes whose definition
/// changed.
fn since(
    spec: &Spec,
    spec_dir: &str,
    changes: &ChangeSet,
    spec_diff: Option<&SpecDiff>,
    in_scope: &[&NodeId],
    reasons: &mut [Vec<Reason>],
) -> Files {
    let owners = Owners::new(spec, spec_dir, in_scope);
    let rules = &spec.changes;
    let mut files = Files::default();
    for path in &changes.files {
        if let Some(diff) = spec_diff.filter(|diff| diff.file == *path) {
            for (why, id) in reasons.iter_mut().zip(in_scope) {
                if let Some(fields) = diff.nodes.get(&(id.image.clone(), id.variant.clone())) {
                    why.push(Reason::SpecChanged { fields: fields.clone() });
                }
            }
            continue;
        }
        let candidate = Candidate::new(path);
        if rules.ignore.set.is_match_candidate(&candidate) {
            files.ignored.push(path.clone());
            continue;
        }
        if rules.rebuild_all.set.is_match_candidate(&candidate) {
            reasons.iter_mut().for_each(|why| why.push(Reason::RebuildAll { path: path.clone() }));
            continue;
        }
        let slots = owners.of(path);
        let test_only = rules.test_only.set.is_match_candidate(&candidate);
        let reason = if test_only {
            Reason::TestsChanged { path: path.clone() }
        } else {
            Reason::Changed { path: path.clone() }
        };
        match (slots.is_empty(), test_only) {
            (true, true) => reasons.iter_mut().for_each(|why| why.push(reason.clone())),
            (true, false) => files.unmapped.push(path.clone()),
            (false, _) => slots.into_iter().for_each(|slot| reasons[*slot].push(reason.clone())),
        }
    }
    files
}

/// The planned images (to build, level by level, then to re-test) and the names of each level.
fn assemble(
    graph: &ImageGraph,
    in_scope: &[&NodeId],
    mut reasons: Vec<Vec<Reason>>,
) -> (Vec<PlannedImage>, Vec<Vec<String>>) {
    let slot: HashMap<&NodeId, usize> = in_scope.iter().enumerate().map(|(slot, id)| (*id, slot)).collect();
    let build: BTreeSet<NodeId> = in_scope
        .iter()
        .zip(&reasons)
        .filter(|(_, why)| why.iter().any(Reason::rebuilds))
        .map(|(id, _)| (*id).clone())
        .collect();
    let levels = graph.levels(&build);
    let mut images = Vec::new();
    for (level, ids) in levels.iter().enumerate() {
        for id in ids {
            let mut why = std::mem::take(&mut reasons[slot[*id]]);
            why.retain(Reason::rebuilds);
            images.push(PlannedImage { id: (*id).clone(), action: Action::Build, level: Some(level), reasons: why });
        }
    }
    for (id, why) in in_scope.iter().zip(reasons) {
        if !why.is_empty() {
            images.push(PlannedImage { id: (*id).clone(), action: Action::Test, level: None, reasons: why });
        }
    }
    let names = levels.iter().map(|ids| ids.iter().map(|id| id.name.clone()).collect()).collect();
    (images, names)
}

/// The plan once the images that are built already are known: an image to build whose pin
/// `found` reports (with where) and none of whose ancestors still builds becomes re-test only,
/// with the reason; the levels are those of what still builds.
pub fn mark_up_to_date(
    plan: BuildPlan,
    graph: &ImageGraph,
    found: &dyn Fn(&NodeId) -> Option<(String, String)>,
) -> BuildPlan {
    let mut building: BTreeSet<NodeId> = BTreeSet::new();
    let mut fresh: HashMap<NodeId, Reason> = HashMap::new();
    for image in plan.images.iter().filter(|image| image.action == Action::Build) {
        let upstream_builds = graph.ancestors(&image.id).into_iter().any(|ancestor| building.contains(ancestor));
        match found(&image.id).filter(|_| !upstream_builds) {
            Some((pin, place)) => {
                fresh.insert(image.id.clone(), Reason::UpToDate { pin, place });
            }
            None => {
                building.insert(image.id.clone());
            }
        }
    }
    let levels = graph.levels(&building);
    let level_of: HashMap<&NodeId, usize> =
        levels.iter().enumerate().flat_map(|(level, ids)| ids.iter().map(move |id| (*id, level))).collect();
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    for mut image in plan.images {
        if let Some(reason) = fresh.remove(&image.id) {
            image.action = Action::Test;
            image.level = None;
            image.reasons = vec![reason];
        } else if let Some(level) = level_of.get(&image.id) {
            image.level = Some(*level);
        }
        match image.action {
            Action::Build => builds.push(image),
            Action::Test => tests.push(image),
        }
    }
    builds.sort_by_key(|image| image.level);
    let graph_order: HashMap<&NodeId, usize> = graph.topological_order().enumerate().map(|(i, id)| (id, i)).collect();
    tests.sort_by_key(|image| graph_order.get(&image.id).copied());
    BuildPlan {
        images: builds.into_iter().chain(tests).collect(),
        levels: levels.iter().map(|ids| ids.iter().map(|id| id.name.clone()).collect()).collect(),
        ..plan
    }
}

/// Adds `parent rebuilt` and `parent's tests changed` reasons, in topological order so they
/// reach every descendant.
fn propagate(graph: &ImageGraph, in_scope: &[&NodeId], reasons: &mut [Vec<Reason>]) {
    let slot: HashMap<&NodeId, usize> = in_scope.iter().enumerate().map(|(slot, id)| (*id, slot)).collect();
    for (here, id) in in_scope.iter().enumerate() {
        let mut added = Vec::new();
        for (dependency, kind) in graph.dependencies(id) {
            let Some(theirs) = slot.get(dependency).map(|s| &reasons[*s]) else {
                continue;
            };
            if theirs.iter().any(Reason::rebuilds) {
                added.push(match kind {
                    EdgeKind::Parent => Reason::ParentRebuilt { parent: dependency.name.clone() },
                    EdgeKind::Dependency => Reason::DependencyRebuilt { dependency: dependency.name.clone() },
                });
            } else if kind == EdgeKind::Parent && !theirs.is_empty() {
                added.push(Reason::ParentTestsChanged { parent: dependency.name.clone() });
            }
        }
        reasons[here].extend(added);
    }
}

/// Which nodes own a changed path: those whose image folder holds it.
struct Owners {
    /// Image folder (relative to the repository root, `/` separators) to node slots.
    by_dir: HashMap<String, Vec<usize>>,
    /// How many `/` the folders have, so each path needs one lookup per depth, not per parent.
    depths: BTreeSet<usize>,
    /// Nodes whose folder is the repository root (a spec at the root with `dir: .`): they own
    /// every path.
    everywhere: Vec<usize>,
}

impl Owners {
    fn new(spec: &Spec, spec_dir: &str, in_scope: &[&NodeId]) -> Self {
        let mut by_dir: HashMap<String, Vec<usize>> = HashMap::new();
        let mut everywhere = Vec::new();
        for (slot, id) in in_scope.iter().enumerate() {
            let full = Spec::repo_path(spec_dir, &spec.images[&id.image].dir);
            match full.trim_end_matches('/') {
                "" | "." => everywhere.push(slot),
                dir => by_dir.entry(dir.to_string()).or_default().push(slot),
            }
        }
        let depths = by_dir.keys().map(|dir| dir.matches('/').count()).collect();
        Owners { by_dir, depths, everywhere }
    }

    /// The slots of every node whose folder holds `path` (folders may nest).
    fn of(&self, path: &str) -> Vec<&usize> {
        let slashes: Vec<usize> = path.match_indices('/').map(|(at, _)| at).collect();
        let mut out: Vec<&usize> = self.everywhere.iter().collect();
        for depth in &self.depths {
            if let Some(end) = slashes.get(*depth) {
                out.extend(self.by_dir.get(&path[..*end]).map_or(&[][..], Vec::as_slice));
            }
        }
        out
    }
}

fn select_variants(spec: &Spec, choice: &Variants) -> Result<Vec<String>, Diagnostics> {
    let all: Vec<String> = spec.variants.iter().map(|v| v.name.clone()).collect();
    match choice {
        Variants::Default => Ok(vec![spec.default_variant().to_string()]),
        Variants::All => Ok(all),
        Variants::One(name) if all.contains(name) => Ok(vec![name.clone()]),
        Variants::One(name) => Err(Diagnostics::single(unknown_variant(name, &all))),
    }
}

/// The platforms `choice` names, each one the stack builds for (an unknown one is an error).
pub fn select_platforms(spec: &Spec, choice: &Platforms) -> Result<Vec<Platform>, Diagnostics> {
    match choice {
        Platforms::Default => Ok(vec![spec.default_platform().clone()]),
        Platforms::All => Ok(spec.stack.platforms.clone()),
        Platforms::Some(list) => {
            let unknown: Vec<Diagnostic> = list
                .iter()
                .filter(|p| !spec.stack.platforms.contains(p))
                .map(|p| unknown_platform(spec, &p.to_string()))
                .collect();
            if unknown.is_empty() {
                Ok(list.clone())
            } else {
                Err(Diagnostics(unknown))
            }
        }
    }
}

fn unknown_platform(spec: &Spec, name: &str) -> Diagnostic {
    let all: Vec<String> = spec.stack.platforms.iter().map(ToString::to_string).collect();
    Diagnostic::new(Code::UnknownPlatform, None, format!("the stack does not build for `{name}`")).with_hint(format!(
        "its platforms are: {} (`stack.platforms` in {})",
        all.join(", "),
        spec.file.display()
    ))
}

fn unknown_variant(name: &str, all: &[String]) -> Diagnostic {
    let mut hint = format!("the stack's variants are: {}", all.join(", "));
    if let Some(best) = did_you_mean(name, all.iter().map(String::as_str)) {
        hint = format!("did you mean `{best}`? {hint}");
    }
    Diagnostic::new(Code::UnknownVariant, None, format!("unknown variant `{name}`")).with_hint(hint)
}

/// Resolves `image[@variant][/arch]` arguments to nodes of the chosen variants and platforms.
fn resolve_images(
    spec: &Spec,
    names: &[String],
    variants: &[String],
    platforms: &[Platform],
) -> Result<BTreeSet<NodeId>, Diagnostics> {
    let mut out = BTreeSet::new();
    let mut errors = Vec::new();
    let all_variants: Vec<String> = spec.variants.iter().map(|v| v.name.clone()).collect();
    for argument in names {
        let (argument, platform) = match argument.rsplit_once('/') {
            Some((rest, suffix)) => match spec.platform_by_suffix(suffix) {
                Some(platform) => (rest, Some(platform)),
                None => {
                    errors.push(unknown_platform(spec, suffix));
                    continue;
                }
            },
            None => (argument.as_str(), None),
        };
        let (image_name, variant) = match argument.split_once('@') {
            Some((image, variant)) => (image, Some(variant)),
            None => (argument, None),
        };
        let Some(image) = spec.images.get(image_name) else {
            let mut hint = "`cargo xtask graph` lists the stack's images".to_string();
            if let Some(best) = did_you_mean(image_name, spec.images.keys().map(String::as_str)) {
                hint = format!("did you mean `{best}`? {hint}");
            }
            errors.push(
                Diagnostic::new(Code::UnknownImage, None, format!("unknown image `{image_name}`")).with_hint(hint),
            );
            continue;
        };
        let wanted: Vec<&String> = match variant {
            Some(variant) if !all_variants.iter().any(|v| v == variant) => {
                errors.push(unknown_variant(variant, &all_variants));
                continue;
            }
            Some(variant) => all_variants.iter().filter(|v| *v == variant).collect(),
            None => variants.iter().collect(),
        };
        let found: Vec<&String> = wanted.into_iter().filter(|v| image.variants.contains(v)).collect();
        if found.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::VariantOptOut,
                    None,
                    format!(
                        "image `{image_name}` is not built in {}",
                        variant.map_or_else(
                            || format!("the selected variants ({})", variants.join(", ")),
                            |v| format!("variant `{v}`")
                        )
                    ),
                )
                .with_hint(format!("it is built in: {}", image.variants.join(", "))),
            );
        }
        let wanted_platforms: Vec<&Platform> = platform.map_or_else(|| platforms.iter().collect(), |p| vec![p]);
        let nodes: Vec<NodeId> = found
            .iter()
            .flat_map(|variant| {
                let here = image.platforms_in(variant);
                wanted_platforms.iter().filter(|p| here.contains(p)).map(|p| NodeId::on(spec, image_name, variant, p))
            })
            .collect();
        if nodes.is_empty() && !found.is_empty() {
            let shown: Vec<String> = wanted_platforms.iter().map(ToString::to_string).collect();
            let built: Vec<String> = found.iter().map(|v| format!("{v}: {}", list(image.platforms_in(v)))).collect();
            errors.push(
                Diagnostic::new(
                    Code::PlatformOptOut,
                    None,
                    format!("image `{image_name}` is not built for {}", shown.join(", ")),
                )
                .with_hint(format!(
                    "it is built for ({}); choose one with `--platform`, or `--all-platforms`",
                    built.join("; ")
                )),
            );
        }
        out.extend(nodes);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

fn list(platforms: &[Platform]) -> String {
    platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
