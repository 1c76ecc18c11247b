//! `cargo xtask tag`, the library side: finds each built image (`<repository>:build`), computes
//! its build tags from its labels and its version tags by running the spec's commands inside
//! it (a few images at a time, results in the stack's order), and moves the tags on the engine.
//! An interrupt removes the throwaway containers and moves no tag.
//!
//! The platforms of one image share its tags (they name the image index `release` writes): the
//! tags come from one platform's image, the engine's own when it is among them, and the version
//! commands run again in each other platform's image this engine can run (natively or under
//! QEMU), which must print the same versions; one that cannot run here is noted as unchecked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use super::{TagError, TagRecord, TaggedImage, TAG_RECORD_SCHEMA};
use crate::engine::{label, Engine, EngineError, ImageInspect};
use crate::error::{ExitCode, NotBuilt};
use crate::git::Repo;
use crate::graph::NodeId;
use crate::labels;
use crate::spec::Spec;

/// How long a version command may run.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(120);

/// How tagging fails.
#[derive(Debug, thiserror::Error)]
pub enum TagRunError {
    #[error("no branch to tag for: HEAD is detached and neither GITHUB_HEAD_REF nor GITHUB_REF_NAME is set\n  hint: pass `--branch NAME`")]
    NoBranch,
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error("{node}: {source}")]
    Version { node: String, source: TagError },
    #[error(transparent)]
    PlatformsDisagree(Box<PlatformsDisagree>),
    #[error(transparent)]
    VersionCommand(Box<VersionCommandFailed>),
    #[error("{} image{} not tagged:\n{}", .failures.len(), if .failures.len() == 1 { " was" } else { "s were" }, .failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"))]
    NotTagged { failures: Vec<TagRunError> },
    #[error(transparent)]
    NotBuilt(#[from] NotBuilt),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write the tag record {}: {source}", path.display())]
    Record { path: PathBuf, source: std::io::Error },
    #[error("interrupted: the containers this run started were removed; no tag was moved after the interrupt")]
    Interrupted,
}

/// A version that one platform of an image prints and another does not.
#[derive(Debug, thiserror::Error)]
#[error("{image}: version tag `{name}` differs between platforms: {first} on {first_platform}, {second} on {second_platform}; the platforms of an image share one set of tags, so none was given\n  hint: build every platform from the same inputs (the same package versions), or make `{name}` print what they share")]
pub struct PlatformsDisagree {
    pub image: String,
    pub name: String,
    pub first: String,
    pub first_platform: String,
    pub second: String,
    pub second_platform: String,
}

/// A version command that failed inside an image.
#[derive(Debug, thiserror::Error)]
#[error("{node}: version tag `{name}`: `{command}` {failure}: {stderr}\n  hint: fix the command under `version_tags` in {}, or the image", spec.display())]
pub struct VersionCommandFailed {
    pub node: String,
    pub name: String,
    pub command: String,
    /// `exited with 2`, `did not finish within 120 s`.
    pub failure: String,
    pub stderr: String,
    pub spec: PathBuf,
}

impl TagRunError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            TagRunError::NoBranch
            | TagRunError::Tag(_)
            | TagRunError::Version { .. }
            | TagRunError::PlatformsDisagree(_)
            | TagRunError::VersionCommand(_)
            | TagRunError::NotTagged { .. } => ExitCode::Refused,
            TagRunError::NotBuilt(_) => ExitCode::NotBuilt,
            TagRunError::Engine(_) => ExitCode::Engine,
            TagRunError::Record { .. } => ExitCode::Failure,
            TagRunError::Interrupted => ExitCode::Interrupted,
        }
    }
}

/// The branch to tag for: the flag, the checkout, or what CI says.
pub fn branch(flag: Option<&str>, spec: &Spec) -> Result<String, TagRunError> {
    if let Some(branch) = flag {
        return Ok(branch.to_string());
    }
    if let Some(branch) = Repo::discover(&spec.dir).ok().and_then(|repo| repo.branch()) {
        return Ok(branch);
    }
    for var in ["GITHUB_HEAD_REF", "GITHUB_REF_NAME"] {
        if let Some(branch) = std::env::var(var).ok().filter(|b| !b.is_empty()) {
            return Ok(branch);
        }
    }
    Err(TagRunError::NoBranch)
}

/// The built image (`:build`) of each node, or every node that was never built.
pub async fn built_images(
    engine: &Engine,
    spec: &Spec,
    nodes: &[NodeId],
) -> Result<Result<Vec<(NodeId, ImageInspect)>, NotBuilt>, EngineError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in nodes {
        match engine.image(&crate::build::build_reference(spec, id)).await? {
            Some(image) => found.push((id.clone(), image)),
            None => missing.push(id.name.clone()),
        }
    }
    Ok(if missing.is_empty() { Ok(found) } else { Err(NotBuilt { nodes: missing }) })
}

/// What tagging computed: the record (every image tagged, in the stack's order), notes about
/// tags left out, and the images that could not be tagged.
#[derive(Debug)]
pub struct Tagged {
    pub record: TagRecord,
    pub notes: Vec<String>,
    pub failures: Vec<TagRunError>,
    /// The nodes whose images get the tags on this engine: one per image (one tag names one
    /// image here; the other platforms get theirs through the index, in the registry).
    pub local: Vec<String>,
}

/// Computes the tags of every node's built image; with `apply`, moves them on the engine.
/// Ctrl-C or SIGTERM removes the throwaway containers and ends with `Interrupted`.
pub async fn tag(
    engine: &Engine,
    spec: &Spec,
    nodes: &[NodeId],
    branch: &str,
    apply: bool,
) -> Result<Tagged, TagRunError> {
    let branch_tag = super::branch_tag(&spec.stack.tag_prefix, branch)?;
    let work = compute(engine, spec, nodes, branch, &branch_tag);
    let tagged = tokio::select! {
        result = work => result?,
        _ = crate::signals::interrupted() => {
            engine.remove_probes().await?;
            return Err(TagRunError::Interrupted);
        }
    };
    if apply {
        for image in tagged.record.images.iter().filter(|image| tagged.local.contains(&image.node)) {
            for tag in &image.tags {
                engine.tag(&image.id, &image.repository, tag).await?;
            }
        }
    }
    Ok(tagged)
}

/// The built images grouped by image and variant (the platforms of one image), in the stack's
/// order; in each group, first the image the tags are read from: the engine's own platform
/// when it is there, else the stack's first.
fn by_image<'a>(images: &'a [(NodeId, ImageInspect)], engine: &Engine) -> Vec<Vec<&'a (NodeId, ImageInspect)>> {
    let mut groups: Vec<Vec<&(NodeId, ImageInspect)>> = Vec::new();
    for entry in images {
        match groups.iter_mut().find(|group| group[0].0.image_variant == entry.0.image_variant) {
            Some(group) => group.push(entry),
            None => groups.push(vec![entry]),
        }
    }
    for group in &mut groups {
        if let Some(native) = group.iter().position(|(id, _)| id.platform == engine.platform) {
            group.swap(0, native);
        }
    }
    groups
}

async fn compute(
    engine: &Engine,
    spec: &Spec,
    nodes: &[NodeId],
    branch: &str,
    branch_tag: &str,
) -> Result<Tagged, TagRunError> {
    let images = built_images(engine, spec, nodes).await??;
    let groups = by_image(&images, engine);
    let computed: Vec<_> = futures_util::stream::iter(groups.iter())
        .map(|group| async move { (group, tags_of_image(engine, spec, group, branch_tag).await) })
        .buffered(crate::paths::parallelism(1))
        .collect()
        .await;
    let mut tagged = Tagged {
        record: TagRecord { schema: TAG_RECORD_SCHEMA.into(), branch: branch.to_string(), images: vec![] },
        notes: vec![],
        failures: vec![],
        local: vec![],
    };
    for (group, result) in computed {
        let (tags, notes) = match result {
            Ok(found) => found,
            Err(error) => {
                tagged.failures.push(error);
                continue;
            }
        };
        tagged.notes.extend(notes);
        tagged.local.push(group[0].0.name.clone());
        for (id, image) in group {
            tagged.record.images.push(TaggedImage {
                node: id.name.clone(),
                image: id.image.clone(),
                variant: id.variant.clone(),
                repository: spec.repository(&id.image, &id.variant),
                id: image.id.clone().unwrap_or_default(),
                pin: label(image, labels::INPUTS).map(crate::build::pin_tag).unwrap_or_default(),
                tags: tags.clone(),
                platform: spec.multi_platform().then(|| id.platform.to_string()),
            });
        }
    }
    Ok(tagged)
}

/// The tags of one image's platforms (`group`, the image to read them from first), and notes:
/// those of the first, whose version commands then run in every other this engine can run,
/// and must print the same.
async fn tags_of_image(
    engine: &Engine,
    spec: &Spec,
    group: &[&(NodeId, ImageInspect)],
    branch_tag: &str,
) -> Result<(Vec<String>, Vec<String>), TagRunError> {
    let (id, image) = group[0];
    let (mut tags, notes) =
        super::build_tags(branch_tag, label(image, labels::REVISION), label(image, labels::CREATED));
    let mut notes: Vec<String> = notes.into_iter().map(|note| format!("{}: {note}", id.name)).collect();
    let versions = versions(engine, spec, id, image).await?;
    for (other, other_image) in &group[1..] {
        if versions.is_empty() {
            break;
        }
        let runs = other.platform == engine.platform
            || (engine.is_local() && other.platform.host_runs() != crate::platform::Runs::No);
        if !runs {
            notes.push(format!(
                "{}: version tags not checked on {}: this engine runs {} and cannot run it",
                other.name, other.platform, engine.platform
            ));
            continue;
        }
        let theirs = self::versions(engine, spec, other, other_image).await?;
        for ((name, mine), (_, their)) in versions.iter().zip(&theirs) {
            if mine != their {
                return Err(TagRunError::PlatformsDisagree(Box::new(PlatformsDisagree {
                    image: id.image_variant.clone(),
                    name: name.to_string(),
                    first: mine.clone(),
                    first_platform: id.platform.to_string(),
                    second: their.clone(),
                    second_platform: other.platform.to_string(),
                })));
            }
        }
    }
    tags.extend(versions.into_iter().map(|(_, tag)| tag));
    Ok((tags, notes))
}

/// The version tags of one image, by name, from commands run inside it.
async fn versions<'s>(
    engine: &Engine,
    spec: &'s Spec,
    id: &NodeId,
    image: &ImageInspect,
) -> Result<Vec<(&'s str, String)>, TagRunError> {
    let versions = spec.version_tags_of(&id.image, &id.variant);
    let mut tags = Vec::new();
    if versions.is_empty() {
        return Ok(tags);
    }
    let image_id = image.id.clone().unwrap_or_default();
    let commands: Vec<String> = versions.iter().map(|(_, command)| command.to_string()).collect();
    let outputs = engine.run_in_image(&image_id, &commands, VERSION_TIMEOUT).await?;
    for ((name, command), output) in versions.iter().zip(outputs) {
        let failure = match output.exit_code {
            Some(0) => {
                let tag = super::version_tag(name, command, &output.stdout)
                    .map_err(|source| TagRunError::Version { node: id.name.clone(), source })?;
                tags.push((*name, tag));
                continue;
            }
            Some(code) => format!("exited with {code}"),
            None => format!("did not finish within {} s", VERSION_TIMEOUT.as_secs()),
        };
        return Err(TagRunError::VersionCommand(Box::new(VersionCommandFailed {
            node: id.name.clone(),
            name: name.to_string(),
            command: command.to_string(),
            failure,
            stderr: output.stderr.trim().to_string(),
            spec: spec.file.clone(),
        })));
    }
    Ok(tags)
}

/// Writes the record `release` pushes from.
pub fn write_record(path: &Path, record: &TagRecord) -> Result<(), TagRunError> {
    crate::paths::write_json(path, record).map_err(|source| TagRunError::Record { path: path.to_path_buf(), source })
}
