//! `cargo xtask release`, the library side: what may be pushed (`decide`, pure), the protocol
//! that pushes it (`publish`: pins first, then each image's documents (`attach`), tags last) and
//! promotion (`promote`), over narrow interfaces that the engine ([`EnginePusher`]), the
//! registry's API ([`RegistryStore`]) and the documents' maker ([`StackAttestor`]) implement
//! here. The CLI only reads flags and prints [`publish::Event`]s.

pub mod attach;
mod decide;
pub mod documents;
pub mod promote;
pub mod publish;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use attach::{ArtifactStore, Attachment, Attestor};
pub use decide::{
    decide, parse_cases, parse_junit, tally, Case, Counts, Hold, Promotion, ReleaseRecord, ReleasedImage, ResultsError,
    Verdict, GPU_SKIPPED, RELEASE_RECORD_SCHEMA,
};
pub use documents::StackAttestor;
pub use publish::{Backoff, Event, ManifestStore, PinPusher, Push};

use crate::credentials::Credentials;
use crate::engine::{Engine, EngineError};
use crate::error::ExitCode;
use crate::graph::{ImageGraph, NodeId};
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
            | ReleaseError::PromoteUnattached { .. } => ExitCode::Refused,
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
    /// `host[:port]` of the registry to push to.
    pub host: String,
}

/// What will be pushed, and what is held back and why.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub pushes: Vec<Push>,
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
    Ok(prepared)
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
        let published = publish::publish(&pusher, &store, &attestor, &prepared.pushes, Backoff::default(), on_event);
        for published in published.await? {
            let notes = if prepared.untested_on_gpu.contains(&published.node) {
                vec!["released untested on a GPU: no GPU runner ran its GPU trials".to_string()]
            } else {
                vec![]
            };
            record.images.push(ReleasedImage {
                node: published.node,
                repository: published.repository,
                status: "pushed".into(),
                reason: None,
                digest: Some(published.digest),
                tags: published.tags,
                notes,
                attachments: published.attachments,
                security: None,
            });
        }
    }
    let order: BTreeMap<&str, usize> = prepared.order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    record.images.sort_by_key(|image| order.get(image.node.as_str()).copied());
    Ok(record)
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
    let targets: Vec<promote::Target> = graph
        .topological_order()
        .map(|id| {
            let (repository, path) = repository(spec, id, &registry.host);
            promote::Target { node: id.name.clone(), repository, path }
        })
        .collect();
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
        let stem = crate::docs::file_stem(spec, &id.image, &id.variant);
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
