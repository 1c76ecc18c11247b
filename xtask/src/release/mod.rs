//! `cargo xtask release`, the library side: what may be pushed (`decide`, pure), the protocol
//! that pushes it (`publish`: pins first, then each image's documents (`attach`), tags last) and
//! promotion (`promote`), over narrow interfaces that the engine ([`EnginePusher`]), the
//! registry's API ([`RegistryStore`]) and the documents' maker ([`StackAttestor`]) implement
//! here. The CLI only reads flags and prints [`publish::Event`]s.

pub mod attach;
mod decide;
pub mod documents;
pub mod index;
pub mod promote;
pub mod publish;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use attach::{ArtifactStore, Attachment, Attestor};
pub use decide::{
    decide, parse_cases, parse_junit, tally, Case, Counts, Hold, IndexedPlatform, Promotion, ReleaseRecord,
    ReleasedImage, ResultsError, Verdict, GPU_SKIPPED, RELEASE_RECORD_SCHEMA,
};
pub use documents::StackAttestor;
pub use publish::{Backoff, Event, IndexPush, ManifestStore, PinPusher, Push};

use crate::credentials::Credentials;
use crate::engine::{Engine, EngineError};
use crate::error::ExitCode;
use crate::graph::{ImageGraph, NodeId};
use crate::platform::Platform;
use crate::registry::{Manifest, Referrer, Registry, RegistryError};
use crate::spec::Spec;
use crate::tags::TagRecord;

/// How a release or a promotion fails.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no registry to release to: {} sets `stack.registry: \"\"`\n  hint: pass `--registry HOST[:PORT]`, or set `stack.registry`", spec.display())]
    NoRegistry { spec: PathBuf },
    #[error("no tag record at {}: {source}\n  hint: tag the built images first: `cargo xtask tag`", path.display())]
    NoTagRecord { path: PathBuf, source: std::io::Error },
    #[error("{} is not a tag record: {reason}\n  hint: tag again: `cargo xtask tag`", path.display())]
    BadTagRecord { path: PathBuf, reason: String },
    #[error("{} names `{node}`, which the spec does not have\n  hint: tag again: `cargo xtask tag`", path.display())]
    UnknownNode { path: PathBuf, node: String },
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("no test results: release pushes only what passed\n  hint: pass `--results <junit.xml>` (written by `STACK_JUNIT=<junit.xml> cargo test`), or `--untested` to push without them")]
    NoResults,
    #[error("nothing was pushed: --all-or-nothing, and these images were held back:\n  {}", .held.join("\n  "))]
    AllOrNothing { held: Vec<String> },
    #[error("{node}: image {id} (tagged by `cargo xtask tag`) is no longer on this engine\n  hint: `cargo xtask build {node} && cargo xtask tag {node}`")]
    ImageGone { node: String, id: String },
    #[error("pushing {reference} failed{}: {source}", if source.is_transient() { " after retries" } else { "" })]
    Push { reference: String, source: EngineError },
    #[error("reading back {reference}: the pushed manifest is not in the registry; no tag was moved\n  hint: run the release again")]
    ReadBack { reference: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("`{tag}` is not a valid tag: {why}")]
    InvalidTag { tag: String, why: String },
    #[error("cannot promote `{from}`: {} of {total} images lack it in {registry}: {}; no tag was moved\n  hint: release them first (`cargo xtask tag && cargo xtask release --results ...`), or promote a tag every image has", .missing.len(), .missing.join(", "))]
    PromoteIncomplete { from: String, missing: Vec<String>, total: usize, registry: String },
    #[error("`{to}` already names other images; no tag was moved:\n  {}\n  hint: pass `--force` to move it anyway", .taken.join("\n  "))]
    PromoteTaken { to: String, taken: Vec<String> },
    #[error("cannot write the release record {}: {source}", path.display())]
    Record { path: PathBuf, source: std::io::Error },
    #[error("{node}: cannot make its SBOM and provenance: {reason}; no tag was moved\n  hint: run `cargo xtask sbom {node}` where the image is (it writes them for `release --attestations`), or release from the machine that built it")]
    Attest { node: String, reason: String },
    #[error("cannot promote: {} lack their SBOM or provenance in the registry, and none was found to attach; no tag was moved:\n  {}\n  hint: `cargo xtask sbom <image>` where the image is writes them (then promote again with `--attestations DIR`), or release the images again", .missing.len(), .missing.join("\n  "))]
    PromoteUnattached { missing: Vec<String> },
    #[error("{node}: the image index would lack {}; nothing was pushed, no index written and no tag moved\n  hint: release every platform of the image (its tag record, from `cargo xtask tag`, and its tests passed), or pass `--partial` to write an index of the platforms there are", .missing.join(", "))]
    PartialIndex { node: String, missing: Vec<String> },
    #[error("{node}: its platforms were tagged differently: {}; the index takes one set of tags, so nothing was pushed\n  hint: tag every platform from the same build (`cargo xtask tag {node} --all-platforms`), or find why the versions differ", .differences.join("; "))]
    PlatformTags { node: String, differences: Vec<String> },
    #[error("{reference}: its configuration says {found}, not {expected}; no index was written and no tag moved\n  hint: build it again for {expected} (`cargo xtask build --platform {expected}`); an image whose configuration names the wrong platform is a bug of the tool that made it")]
    WrongPlatform { reference: String, expected: String, found: String },
}

impl ReleaseError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ReleaseError::NoTagRecord { .. } | ReleaseError::ImageGone { .. } => ExitCode::NotBuilt,
            ReleaseError::NoRegistry { .. }
            | ReleaseError::BadTagRecord { .. }
            | ReleaseError::UnknownNode { .. }
            | ReleaseError::Results(_)
            | ReleaseError::NoResults
            | ReleaseError::AllOrNothing { .. }
            | ReleaseError::InvalidTag { .. }
            | ReleaseError::PromoteIncomplete { .. }
            | ReleaseError::PromoteTaken { .. }
            | ReleaseError::PromoteUnattached { .. }
            | ReleaseError::PartialIndex { .. }
            | ReleaseError::PlatformTags { .. }
            | ReleaseError::WrongPlatform { .. } => ExitCode::Refused,
            ReleaseError::Attest { .. } => ExitCode::NotBuilt,
            ReleaseError::Push { .. } | ReleaseError::ReadBack { .. } | ReleaseError::Registry(_) => ExitCode::Registry,
            ReleaseError::Engine(_) => ExitCode::Engine,
            ReleaseError::Record { .. } => ExitCode::Failure,
        }
    }
}

/// What `release` was asked to push.
#[derive(Debug, Clone)]
pub struct Request {
    /// The tag records `cargo xtask tag` wrote: files, or folders of them (one per CI job).
    pub tags: Vec<PathBuf>,
    /// The harness's JUnit reports: files, or folders of them; none means none given.
    pub results: Vec<PathBuf>,
    pub untested: bool,
    pub all_or_nothing: bool,
    /// Write the index of an image built for several platforms even when some platform is
    /// missing (held, or never tagged), over the platforms there are.
    pub partial: bool,
    /// `host[:port]` of the registry to push to.
    pub host: String,
}

/// What will be pushed, and what is held back and why.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub pushes: Vec<Push>,
    /// The image indexes over the platforms of images built for several.
    pub indexes: Vec<IndexPush>,
    /// What a reader must know about them (an index without a platform, tags that differ).
    pub notes: Vec<String>,
    pub held: Vec<ReleasedImage>,
    /// Every node of the record, in the stack's order (the record lists images that way).
    pub order: Vec<String>,
    /// Images pushed although their GPU trials never ran (no GPU runner).
    pub untested_on_gpu: Vec<String>,
}

/// Reads the tag records and the test results and decides, image by image. Reads files only.
pub fn prepare(spec: &Spec, graph: &ImageGraph, request: &Request) -> Result<Prepared, ReleaseError> {
    let tagged = read_tag_records(&request.tags)?;
    let by_node: BTreeMap<&str, &crate::tags::TaggedImage> =
        tagged.images.iter().map(|image| (image.node.as_str(), image)).collect();
    let nodes: Vec<NodeId> =
        graph.topological_order().filter(|id| by_node.contains_key(id.name.as_str())).cloned().collect();
    if let Some(unknown) = tagged.images.iter().find(|image| !nodes.iter().any(|id| id.name == image.node)) {
        let path = request.tags.first().cloned().unwrap_or_default();
        return Err(ReleaseError::UnknownNode { path, node: unknown.node.clone() });
    }
    let results = match &request.results[..] {
        [] if request.untested => None,
        [] => return Err(ReleaseError::NoResults),
        paths => Some(read_results(paths)?),
    };
    let decisions = decide(graph, &nodes, results.as_ref(), request.untested, request.all_or_nothing);
    let mut prepared = Prepared {
        pushes: vec![],
        indexes: vec![],
        notes: vec![],
        held: vec![],
        order: nodes.iter().map(|id| id.name.clone()).collect(),
        untested_on_gpu: vec![],
    };
    for (id, hold) in decisions {
        let image = by_node[id.name.as_str()];
        let (repository, path) = repository(spec, &id, &request.host);
        match hold {
            Some(hold) => prepared.held.push(ReleasedImage {
                node: id.name.clone(),
                repository,
                status: "held".into(),
                reason: Some(hold.to_string()),
                digest: None,
                tags: vec![],
                notes: vec![],
                attachments: vec![],
                security: None,
                platforms: vec![],
            }),
            None => {
                let gpu_skipped = results.as_ref().and_then(|r| r.get(&id.name)).is_some_and(|c| c.gpu_skipped > 0);
                if gpu_skipped {
                    prepared.untested_on_gpu.push(id.name.clone());
                }
                prepared.pushes.push(Push {
                    node: id.name.clone(),
                    image_id: image.id.clone(),
                    repository,
                    path,
                    pin: image.pin.clone(),
                    tags: image.tags.clone(),
                });
            }
        }
    }
    if request.all_or_nothing && !prepared.held.is_empty() {
        let consequence = Hold::AllOrNothing.to_string();
        let held = prepared
            .held
            .iter()
            .filter_map(|image| {
                image.reason.as_ref().filter(|r| **r != consequence).map(|r| format!("{}: {r}", image.node))
            })
            .collect();
        return Err(ReleaseError::AllOrNothing { held });
    }
    group_platforms(spec, &nodes, request.partial, &mut prepared)?;
    Ok(prepared)
}

/// Turns the pushes of each image built for several platforms into an image index over them,
/// carrying the tags (those of its first platform, in the stack's order). Refused, before
/// anything is pushed, when a platform is missing (held or never tagged; unless `partial`) or
/// when the platforms' version tags differ.
fn group_platforms(spec: &Spec, nodes: &[NodeId], partial: bool, prepared: &mut Prepared) -> Result<(), ReleaseError> {
    let mut groups: Vec<(&NodeId, Vec<usize>)> = Vec::new();
    for (i, push) in prepared.pushes.iter().enumerate() {
        let Some(id) = nodes.iter().find(|id| id.name == push.node) else { continue };
        match groups.iter_mut().find(|(first, _)| first.image_variant == id.image_variant) {
            Some((_, members)) => members.push(i),
            None => groups.push((id, vec![i])),
        }
    }
    for (id, members) in groups {
        let expected = spec.images[&id.image].platforms_in(&id.variant);
        if expected.len() < 2 {
            continue;
        }
        let platform_of =
            |i: &usize| nodes.iter().find(|n| n.name == prepared.pushes[*i].node).map(|n| n.platform.clone());
        let mut platforms: Vec<(Platform, usize)> =
            members.iter().filter_map(|i| Some((platform_of(i)?, *i))).collect();
        platforms.sort_by_key(|(platform, _)| expected.iter().position(|p| p == platform));
        let missing: Vec<String> = expected
            .iter()
            .filter(|p| !platforms.iter().any(|(q, _)| q == *p))
            .map(|p| missing_platform(spec, id, p, &prepared.held))
            .collect();
        if !missing.is_empty() && !partial {
            return Err(ReleaseError::PartialIndex { node: id.image_variant.clone(), missing });
        }
        if !missing.is_empty() {
            prepared.notes.push(format!("{}: the index lacks {} (--partial)", id.image_variant, missing.join(", ")));
        }
        let tags = shared_tags(spec, id, &platforms, prepared)?;
        for (_, i) in &platforms {
            prepared.pushes[*i].tags.clear();
        }
        let first = &prepared.pushes[platforms[0].1];
        let (repository, path) = (first.repository.clone(), first.path.clone());
        prepared.indexes.push(IndexPush { node: id.image_variant.clone(), repository, path, platforms, tags });
    }
    Ok(())
}

/// `linux/arm64 (held: 2 tests failed)`, or `(never tagged)`.
fn missing_platform(spec: &Spec, id: &NodeId, platform: &Platform, held: &[ReleasedImage]) -> String {
    let node = NodeId::on(spec, &id.image, &id.variant, platform).name;
    match held.iter().find(|image| image.node == node) {
        Some(image) => format!("{platform} (held: {})", image.reason.as_deref().unwrap_or("no reason")),
        None => format!("{platform} (no tag record names {node})"),
    }
}

/// The tags of an image's index: its first platform's. Version tags must be the same on every
/// platform (else the release is refused); other differences (a build date) are noted.
fn shared_tags(
    spec: &Spec,
    id: &NodeId,
    platforms: &[(Platform, usize)],
    prepared: &mut Prepared,
) -> Result<Vec<String>, ReleaseError> {
    let versions: Vec<String> =
        spec.version_tags_of(&id.image, &id.variant).iter().map(|(name, _)| format!("{name}-")).collect();
    let is_version = |tag: &String| versions.iter().any(|prefix| tag.starts_with(prefix));
    let first = &prepared.pushes[platforms[0].1];
    let mut differences = Vec::new();
    for (platform, i) in &platforms[1..] {
        let other = &prepared.pushes[*i];
        let mine: BTreeSet<&String> = first.tags.iter().filter(|t| is_version(t)).collect();
        let theirs: BTreeSet<&String> = other.tags.iter().filter(|t| is_version(t)).collect();
        if mine != theirs {
            let list = |set: &BTreeSet<&String>| set.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
            differences.push(format!("{} on {}, {} on {platform}", list(&mine), platforms[0].0, list(&theirs)));
        } else if first.tags != other.tags {
            prepared.notes.push(format!(
                "{}: {platform} was tagged {}; the index takes {}'s tags",
                id.image_variant,
                other.tags.join(", "),
                platforms[0].0
            ));
        }
    }
    if !differences.is_empty() {
        return Err(ReleaseError::PlatformTags { node: id.image_variant.clone(), differences });
    }
    Ok(prepared.pushes[platforms[0].1].tags.clone())
}

/// The files `paths` name: each file itself, each folder's files ending in `.{extension}`.
fn files_in(paths: &[PathBuf], extension: &str) -> Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| (path.clone(), e))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.extension().is_some_and(|e| e == extension))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// The tag records at `paths` (files or folders of them), as one: every record must be for the
/// same branch, and a node may appear in several only with the same tags.
fn read_tag_records(paths: &[PathBuf]) -> Result<TagRecord, ReleaseError> {
    let files = files_in(paths, "json").map_err(|(path, source)| ReleaseError::NoTagRecord { path, source })?;
    let mut merged: Option<TagRecord> = None;
    for file in &files {
        let record = read_tag_record(file)?;
        let Some(all) = merged.as_mut() else {
            merged = Some(record);
            continue;
        };
        if record.branch != all.branch {
            let reason = format!("it is for branch `{}`, the others for `{}`", record.branch, all.branch);
            return Err(ReleaseError::BadTagRecord { path: file.clone(), reason });
        }
        for image in record.images {
            match all.images.iter().find(|seen| seen.node == image.node) {
                Some(seen) if *seen == image => {}
                Some(_) => {
                    let reason = format!("`{}` is tagged differently in another record", image.node);
                    return Err(ReleaseError::BadTagRecord { path: file.clone(), reason });
                }
                None => all.images.push(image),
            }
        }
    }
    merged.ok_or_else(|| ReleaseError::NoTagRecord {
        path: paths.first().cloned().unwrap_or_default(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no tag record (*.json) there"),
    })
}

fn read_tag_record(path: &Path) -> Result<TagRecord, ReleaseError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ReleaseError::NoTagRecord { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| ReleaseError::BadTagRecord { path: path.to_path_buf(), reason: e.to_string() })
}

/// Every JUnit report at `paths` (files or folders of them), tallied together.
fn read_results(paths: &[PathBuf]) -> Result<BTreeMap<String, Counts>, ReleaseError> {
    let failed = |path: &Path, reason: String| ResultsError { path: path.display().to_string(), reason };
    let files = files_in(paths, "xml").map_err(|(path, e)| failed(&path, e.to_string()))?;
    if files.is_empty() {
        let path = paths.first().cloned().unwrap_or_default();
        return Err(failed(&path, "no JUnit report (*.xml) there".into()).into());
    }
    let mut cases = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| failed(file, e.to_string()))?;
        cases.extend(parse_cases(&text).map_err(|reason| failed(file, reason))?);
    }
    Ok(tally(cases))
}

/// The stack's repository of a node on `host` instead of the spec's registry: `(host/path,
/// path under the registry)`.
pub fn repository(spec: &Spec, id: &NodeId, host: &str) -> (String, String) {
    let full = spec.repository(&id.image, &id.variant);
    let path = if spec.stack.registry.is_empty() {
        full.clone()
    } else {
        full.strip_prefix(&format!("{}/", spec.stack.registry)).unwrap_or(&full).to_string()
    };
    (format!("{host}/{path}"), path)
}

/// Pushes what `prepared` says through the registry's API (and the engine, for pins the
/// registry lacks: the engine is connected only then, and those images must still be on it),
/// and returns the record: pushed and held images, in the stack's order. Refused credentials
/// stop it before anything is uploaded.
pub async fn push(
    registry: Arc<Registry>,
    credentials: Option<Credentials>,
    prepared: &Prepared,
    mut attestor: StackAttestor,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReleaseRecord, ReleaseError> {
    let mut record =
        ReleaseRecord { schema: RELEASE_RECORD_SCHEMA.into(), registry: registry.host.clone(), ..Default::default() };
    record.images = prepared.held.clone();
    if let Some(first) = prepared.pushes.first() {
        let (client, path) = (registry.clone(), first.path.clone());
        blocking(move || client.check_access(&path)).await??;
        let store = RegistryStore(registry);
        let mut missing = Vec::new();
        for push in &prepared.pushes {
            if store.manifest(&push.path, &push.pin).await?.is_none() {
                missing.push(push);
            }
        }
        let engine = if missing.is_empty() { None } else { Some(Engine::connect().await?) };
        if let Some(engine) = &engine {
            for push in missing {
                if engine.image(&push.image_id).await?.is_none() {
                    return Err(ReleaseError::ImageGone { node: push.node.clone(), id: push.image_id.clone() });
                }
            }
        }
        // Documents not written by `cargo xtask sbom` are made from the images on this engine.
        attestor.engine = match &engine {
            Some(engine) => Some(engine.clone()),
            None => Engine::connect().await.ok(),
        };
        attestor.images = prepared.pushes.iter().map(|p| (p.node.clone(), p.image_id.clone())).collect();
        let pusher = OptionalEngine { engine: engine.as_ref(), credentials };
        let published = publish::publish(
            &pusher,
            &store,
            &attestor,
            &prepared.pushes,
            &prepared.indexes,
            Backoff::default(),
            on_event,
        )
        .await?;
        record.images.extend(published.into_iter().map(|published| released(prepared, published)));
    }
    // In the stack's order; an index after its platforms.
    let order: BTreeMap<&str, usize> = prepared.order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    record.images.sort_by_key(|image| match image.platforms.last() {
        Some(last) => (order.get(last.node.as_str()).copied(), 1),
        None => (order.get(image.node.as_str()).copied(), 0),
    });
    Ok(record)
}

/// The record's entry for what was published.
fn released(prepared: &Prepared, published: publish::Published) -> ReleasedImage {
    let mut notes = Vec::new();
    if prepared.untested_on_gpu.contains(&published.node) {
        notes.push("released untested on a GPU: no GPU runner ran its GPU trials".to_string());
    }
    notes.extend(prepared.notes.iter().filter(|note| note.starts_with(&format!("{}: ", published.node))).cloned());
    ReleasedImage {
        node: published.node,
        repository: published.repository,
        status: "pushed".into(),
        reason: None,
        digest: Some(published.digest),
        tags: published.tags,
        notes,
        attachments: published.attachments,
        security: None,
        platforms: published
            .platforms
            .into_iter()
            .map(|(platform, node, digest)| IndexedPlatform { platform, node, digest })
            .collect(),
    }
}

/// The engine when this release needs it (some pin is not in the registry yet).
struct OptionalEngine<'a> {
    engine: Option<&'a Engine>,
    credentials: Option<Credentials>,
}

impl PinPusher for OptionalEngine<'_> {
    async fn push_pin(&self, image_id: &str, repository: &str, pin: &str) -> Result<(), EngineError> {
        match self.engine {
            Some(engine) => {
                let pusher = EnginePusher { engine, credentials: self.credentials.clone() };
                pusher.push_pin(image_id, repository, pin).await
            }
            None => Err(EngineError::unexpected_missing(repository, pin)),
        }
    }
}

/// Promotes `from` to `to` for every image of the stack, in every variant; documents an image
/// lacks are attached from `attestor` first.
pub async fn promote_stack(
    spec: &Spec,
    graph: &ImageGraph,
    registry: Arc<Registry>,
    attestor: &StackAttestor,
    request: promote::Request<'_>,
) -> Result<Vec<Promotion>, ReleaseError> {
    // One target per repository: the platforms of an image share it (and its index).
    let mut targets: Vec<promote::Target> = Vec::new();
    for id in graph.topological_order() {
        let (repository, path) = repository(spec, id, &registry.host);
        if !targets.iter().any(|target| target.repository == repository) {
            targets.push(promote::Target { node: id.image_variant.clone(), repository, path });
        }
    }
    promote::promote(&RegistryStore(registry), attestor, &targets, request).await
}

/// Adds to each pushed image of `record` the security report the harness wrote for that image
/// (same image ID) in one of `dirs` (`target/xtask/security/`, or the folders CI jobs handed over).
pub fn add_security_reports(
    spec: &Spec,
    graph: &ImageGraph,
    record: &mut ReleaseRecord,
    images: &[Push],
    dirs: &[PathBuf],
) {
    for image in record.images.iter_mut().filter(|i| i.status == "pushed") {
        let Some(id) = graph.topological_order().find(|id| id.name == image.node) else { continue };
        let Some(push) = images.iter().find(|p| p.node == image.node) else { continue };
        let stem = crate::docs::node_stem(spec, id);
        image.security = dirs.iter().find_map(|dir| crate::supply::security::read_report(dir, &stem, &push.image_id));
    }
}

/// Writes the release record for the CI jobs that follow.
pub fn write_record(path: &Path, record: &ReleaseRecord) -> Result<(), ReleaseError> {
    crate::paths::write_json(path, record).map_err(|source| ReleaseError::Record { path: path.to_path_buf(), source })
}

/// The engine as a [`PinPusher`]: tags the image under the target repository when that differs
/// from where it was built, then pushes the pin.
pub struct EnginePusher<'a> {
    pub engine: &'a Engine,
    pub credentials: Option<Credentials>,
}

impl PinPusher for EnginePusher<'_> {
    async fn push_pin(&self, image_id: &str, repository: &str, pin: &str) -> Result<(), EngineError> {
        let tagged = self.engine.image(&format!("{repository}:{pin}")).await?;
        if tagged.and_then(|image| image.id).as_deref() != Some(image_id) {
            self.engine.tag(image_id, repository, pin).await?;
        }
        self.engine.push(repository, pin, self.credentials.as_ref()).await
    }
}

/// The registry's HTTP API as a [`ManifestStore`] (blocking calls on tokio's blocking pool).
pub struct RegistryStore(pub Arc<Registry>);

impl ManifestStore for RegistryStore {
    async fn manifest(&self, path: &str, reference: &str) -> Result<Option<Manifest>, RegistryError> {
        let (client, path, reference) = (self.0.clone(), path.to_string(), reference.to_string());
        blocking(move || client.manifest(&path, &reference)).await?
    }

    async fn blob(&self, path: &str, digest: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        let (client, path, digest) = (self.0.clone(), path.to_string(), digest.to_string());
        blocking(move || client.blob(&path, &digest)).await?
    }

    async fn put_manifest(&self, path: &str, tag: &str, manifest: &Manifest) -> Result<String, RegistryError> {
        let (client, path, tag, manifest) = (self.0.clone(), path.to_string(), tag.to_string(), manifest.clone());
        blocking(move || client.put_manifest(&path, &tag, &manifest)).await?
    }
}

impl ArtifactStore for RegistryStore {
    async fn push_blob(&self, path: &str, bytes: &[u8]) -> Result<String, RegistryError> {
        let (client, path, bytes) = (self.0.clone(), path.to_string(), bytes.to_vec());
        blocking(move || client.push_blob(&path, &bytes)).await?
    }

    async fn referrers(&self, path: &str, digest: &str) -> Result<Option<Vec<Referrer>>, RegistryError> {
        let (client, path, digest) = (self.0.clone(), path.to_string(), digest.to_string());
        blocking(move || client.referrers(&path, &digest)).await?
    }
}

/// Runs blocking registry work on tokio's blocking pool; a panic there is the registry's
/// failure, reported as such.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| RegistryError::Unreachable { registry: "(blocking task)".into(), reason: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
stack: {registry: registry.example.org, namespace: ns, tag_prefix: "1.0", platforms: [linux/amd64, linux/arm64]}
bases: {debian: {image: "localhost/debian:12"}}
images:
  base: {parent: debian, version_tags: [python]}
  tool: {parent: debian, platforms: [linux/amd64]}
version_tags: {python: python --version}
"#;

    fn spec() -> (Spec, Vec<NodeId>) {
        let spec = Spec::parse_alone(Path::new("/nowhere/images/spec.yml"), SPEC).unwrap();
        let nodes = ImageGraph::new(&spec).topological_order().cloned().collect();
        (spec, nodes)
    }

    fn push(node: &str, tags: &[&str]) -> Push {
        let repository = format!("registry.example.org/ns/{}", node.split('/').next().unwrap());
        Push {
            node: node.into(),
            image_id: format!("sha256:{node}"),
            path: repository.split_once('/').unwrap().1.to_string(),
            repository,
            pin: "inputs-1".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn prepared(pushes: Vec<Push>, held: &[&str]) -> Prepared {
        let held = held
            .iter()
            .map(|node| ReleasedImage {
                node: node.to_string(),
                repository: String::new(),
                status: "held".into(),
                reason: Some("1 test failed".into()),
                digest: None,
                tags: vec![],
                notes: vec![],
                attachments: vec![],
                security: None,
                platforms: vec![],
            })
            .collect();
        Prepared { pushes, indexes: vec![], notes: vec![], held, order: vec![], untested_on_gpu: vec![] }
    }

    const TAGS: &[&str] = &["1.0-main", "python-3.11.2"];

    #[test]
    fn the_platforms_of_an_image_become_one_index_that_carries_their_tags() {
        let (spec, nodes) = spec();
        let mut prepared =
            prepared(vec![push("base/amd64", TAGS), push("base/arm64", TAGS), push("tool/amd64", TAGS)], &[]);
        group_platforms(&spec, &nodes, false, &mut prepared).unwrap();
        assert_eq!(prepared.indexes.len(), 1, "tool is built for one platform: its tags are plain");
        let index = &prepared.indexes[0];
        assert_eq!(
            (index.node.as_str(), index.tags.as_slice()),
            ("base", &["1.0-main".to_string(), "python-3.11.2".into()][..])
        );
        let platforms: Vec<(String, usize)> = index.platforms.iter().map(|(p, i)| (p.to_string(), *i)).collect();
        assert_eq!(platforms, [("linux/amd64".to_string(), 0), ("linux/arm64".to_string(), 1)]);
        assert!(prepared.pushes[0].tags.is_empty() && prepared.pushes[1].tags.is_empty());
        assert_eq!(prepared.pushes[2].tags, TAGS);
    }

    #[rstest::rstest]
    #[case::held(&["base/arm64"], "linux/arm64 (held: 1 test failed)")]
    #[case::never_tagged(&[], "linux/arm64 (no tag record names base/arm64)")]
    fn a_missing_platform_refuses_the_release_unless_told(#[case] held: &[&str], #[case] named: &str) {
        let (spec, nodes) = spec();
        let mut refused = prepared(vec![push("base/amd64", TAGS)], held);
        let error = group_platforms(&spec, &nodes, false, &mut refused).unwrap_err();
        assert!(
            matches!(&error, ReleaseError::PartialIndex { missing, .. } if missing == &[named.to_string()]),
            "{error}"
        );
        assert_eq!(error.exit_code(), ExitCode::Refused);
        assert!(error.to_string().contains("--partial"), "{error}");
        let mut partial = prepared(vec![push("base/amd64", TAGS)], held);
        group_platforms(&spec, &nodes, true, &mut partial).unwrap();
        assert_eq!(partial.indexes[0].platforms.len(), 1);
        assert_eq!(partial.notes, [format!("base: the index lacks {named} (--partial)")]);
    }

    #[test]
    fn platforms_whose_versions_differ_refuse_the_release() {
        let (spec, nodes) = spec();
        let mut prepared =
            prepared(vec![push("base/amd64", TAGS), push("base/arm64", &["1.0-main", "python-3.11.4"])], &[]);
        let error = group_platforms(&spec, &nodes, false, &mut prepared).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("python-3.11.2 on linux/amd64, python-3.11.4 on linux/arm64"), "{text}");
        let mut dated = self::prepared(
            vec![push("base/amd64", TAGS), push("base/arm64", &["1.0-main", "2026-11-21", "python-3.11.2"])],
            &[],
        );
        group_platforms(&spec, &nodes, false, &mut dated).unwrap();
        assert_eq!(dated.indexes[0].tags, TAGS, "the first platform's tags");
        assert!(dated.notes[0].starts_with("base: linux/arm64 was tagged 1.0-main, 2026-11-21"), "{:?}", dated.notes);
    }
}
