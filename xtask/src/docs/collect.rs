//! `cargo xtask docs`, the library side: runs each image's documentation commands inside it
//! (a few images at a time, results in the stack's order), turns what they print into
//! snapshots, and renders every page, the index and the release notes as files in memory, so
//! that writing them and checking them (`--check`) compare the same bytes. An interrupt
//! removes the throwaway containers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Release, Section, Snapshot, SNAPSHOT_SCHEMA};
use crate::engine::{label, Engine, EngineError, ImageInspect};
use crate::error::{ExitCode, NotBuilt};
use crate::graph::{ImageGraph, NodeId};
use crate::labels;
use crate::spec::Spec;

/// How long one documentation command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How documenting fails.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error(transparent)]
    NotBuilt(#[from] NotBuilt),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{} documentation file{} out of date:\n{}\n  hint: regenerate them with `{command}`", .stale.len(), if .stale.len() == 1 { " is" } else { "s are" }, .stale.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    Stale { stale: Vec<PathBuf>, command: String },
    #[error("{count} documentation command{} failed (above); the pages say so, the other sections were written\n  hint: fix the command under `doc_commands` in {}, or the image", if *.count == 1 { "" } else { "s" }, spec.display())]
    CommandsFailed { count: usize, spec: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("interrupted: the containers this run started were removed")]
    Interrupted,
}

impl DocsError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DocsError::NotBuilt(_) => ExitCode::NotBuilt,
            DocsError::Engine(_) => ExitCode::Engine,
            DocsError::Stale { .. } | DocsError::CommandsFailed { .. } => ExitCode::Docs,
            DocsError::Write { .. } => ExitCode::Failure,
            DocsError::Interrupted => ExitCode::Interrupted,
        }
    }
}

/// Every file a run would write, by path, and the documentation commands that failed.
#[derive(Debug, Default)]
pub struct Generated {
    pub files: BTreeMap<PathBuf, String>,
    pub failures: Vec<String>,
}

/// Documents `nodes` into folder `dir`: their pages and snapshots (each diffed against the
/// snapshot committed there), the index and the release notes (over every documented image).
pub async fn generate(
    engine: &Engine,
    spec: &Spec,
    graph: &ImageGraph,
    nodes: &[NodeId],
    dir: &Path,
) -> Result<Generated, DocsError> {
    let work = async {
        let images = crate::tags::built_images(engine, spec, nodes).await??;
        let results: Vec<_> = futures_util::stream::iter(images.iter())
            .map(|(id, image)| current(engine, spec, id, image))
            .buffered(crate::paths::parallelism(1))
            .collect()
            .await;
        let mut snapshots = Vec::new();
        let mut failures = Vec::new();
        for ((id, _), result) in images.iter().zip(results) {
            let (snapshot, failed) = result?;
            failures.extend(failed);
            snapshots.push((id.clone(), snapshot));
        }
        Ok::<_, DocsError>((snapshots, failures))
    };
    let (current, failures) = tokio::select! {
        result = work => result?,
        _ = crate::signals::interrupted() => {
            engine.remove_probes().await?;
            return Err(DocsError::Interrupted);
        }
    };
    let mut files = BTreeMap::new();
    let mut snapshots: BTreeMap<String, Snapshot> = BTreeMap::new();
    for snapshot in one_per_image(spec, current) {
        let stem = super::file_stem(spec, &snapshot.image, &snapshot.variant);
        let committed = read_snapshot(&dir.join(format!("{stem}.json")));
        let next = super::next_snapshot(committed.as_ref(), snapshot);
        files.insert(dir.join(format!("{stem}.md")), super::page(&next));
        files.insert(dir.join(format!("{stem}.json")), snapshot_json(&next));
        snapshots.insert(stem, next);
    }
    // The index and notes cover every documented image, not only the ones regenerated now.
    let mut all: Vec<Snapshot> = Vec::new();
    for id in graph.topological_order() {
        let stem = super::file_stem(spec, &id.image, &id.variant);
        if all.iter().any(|s| super::file_stem(spec, &s.image, &s.variant) == stem) {
            continue; // another platform of an image already listed
        }
        if let Some(snapshot) =
            snapshots.get(&stem).cloned().or_else(|| read_snapshot(&dir.join(format!("{stem}.json"))))
        {
            all.push(snapshot);
        }
    }
    files.insert(dir.join("index.md"), super::index(spec, graph, &all));
    files.insert(dir.join("RELEASE_NOTES.md"), super::release_notes(&all));
    Ok(Generated { files, failures })
}

/// One snapshot per image: an image built for several platforms is documented from its first
/// documented platform (in the stack's order), named without a platform, with a table of every
/// platform it is built for against that one.
fn one_per_image(spec: &Spec, current: Vec<(NodeId, Snapshot)>) -> Vec<Snapshot> {
    let mut groups: Vec<Vec<(NodeId, Snapshot)>> = Vec::new();
    for (id, snapshot) in current {
        match groups.iter_mut().find(|group| group[0].0.image_variant == id.image_variant) {
            Some(group) => group.push((id, snapshot)),
            None => groups.push(vec![(id, snapshot)]),
        }
    }
    let mut out = Vec::new();
    for mut group in groups {
        group.sort_by_key(|(id, _)| spec.stack.platforms.iter().position(|p| *p == id.platform));
        let (id, mut main) = group.remove(0);
        let platforms = spec.images[&id.image].platforms_in(&id.variant);
        if platforms.len() > 1 {
            main.node = id.image_variant.clone();
            let others: Vec<&(NodeId, Snapshot)> = group.iter().collect();
            main.platforms = platforms
                .iter()
                .map(|platform| {
                    let other = if *platform == id.platform {
                        Some(&main)
                    } else {
                        others.iter().find(|(o, _)| o.platform == *platform).map(|(_, s)| s)
                    };
                    super::platform_doc(&main, &platform.to_string(), other)
                })
                .collect();
        }
        out.push(main);
    }
    out
}

fn snapshot_json(snapshot: &Snapshot) -> String {
    serde_json::to_string_pretty(snapshot).unwrap_or_default() + "\n"
}

/// The files whose contents on disk differ from what was generated.
pub fn stale(files: &BTreeMap<PathBuf, String>) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()))
        .map(|(path, _)| path.clone())
        .collect()
}

/// Writes the files that changed; returns their paths.
pub fn write(files: &BTreeMap<PathBuf, String>) -> Result<Vec<PathBuf>, DocsError> {
    let changed = stale(files);
    for path in &changed {
        let failed = |source| DocsError::Write { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        std::fs::write(path, &files[path]).map_err(failed)?;
    }
    Ok(changed)
}

/// What one image is now, with the outputs of its documentation commands; and the failures
/// among them, for the run's report.
async fn current(
    engine: &Engine,
    spec: &Spec,
    id: &NodeId,
    image: &ImageInspect,
) -> Result<(Snapshot, Vec<String>), EngineError> {
    let repository = spec.repository(&id.image, &id.variant);
    let image_id = image.id.clone().unwrap_or_default();
    let mut tags: Vec<String> = image
        .repo_tags
        .iter()
        .flatten()
        .filter_map(|reference| reference.strip_prefix(&format!("{repository}:")).map(str::to_string))
        .filter(|tag| *tag != crate::build::build_tag(spec, id) && !tag.starts_with("inputs-"))
        .collect();
    tags.sort();
    let mut layers = engine.history(&image_id).await?;
    layers.reverse();
    let names = &spec.images[&id.image].doc_commands;
    let commands: Vec<String> = names.iter().map(|name| spec.doc_commands[name].clone()).collect();
    let outputs =
        if commands.is_empty() { vec![] } else { engine.run_in_image(&image_id, &commands, COMMAND_TIMEOUT).await? };
    let mut sections = Vec::new();
    let mut failures = Vec::new();
    for ((name, command), output) in names.iter().zip(&commands).zip(outputs) {
        let failure = match output.exit_code {
            Some(0) => None,
            Some(code) => Some(format!("exit code {code}")),
            None => Some(format!("did not finish within {} s", COMMAND_TIMEOUT.as_secs())),
        };
        let mut text = output.stdout.clone();
        if let Some(failure) = &failure {
            failures.push(format!(
                "{}: documentation command `{name}` (`{command}`) failed inside the image: {failure}: {}",
                id.name,
                output.stderr.trim()
            ));
            text.push_str(&output.stderr);
        }
        let packages = if failure.is_none() { super::parse_packages(&output.stdout) } else { None };
        sections.push(Section { name: name.clone(), command: command.clone(), failure, output: text, packages });
    }
    let packages = sections.iter().filter_map(|s| s.packages.as_ref().map(|p| (s.name.clone(), p.clone()))).collect();
    let snapshot = Snapshot {
        schema: SNAPSHOT_SCHEMA.into(),
        node: id.name.clone(),
        image: id.image.clone(),
        variant: id.variant.clone(),
        repository: repository.clone(),
        description: spec.images[&id.image].description.clone(),
        parent: label(image, labels::PARENT).unwrap_or_default().to_string(),
        revision: label(image, labels::REVISION).map(str::to_string),
        digest: crate::engine::repo_digest(image, &repository),
        current: Release {
            id: image_id,
            created: label(image, labels::CREATED).unwrap_or_default().to_string(),
            size: image.size.unwrap_or_default(),
            tags,
            packages,
        },
        layers,
        sections,
        previous: None,
        history: vec![],
        security: crate::supply::security::read_report(
            &crate::paths::work_dir(spec).join("security"),
            &super::node_stem(spec, id),
            image.id.as_deref().unwrap_or_default(),
        ),
        platforms: vec![],
    };
    Ok((snapshot, failures))
}

fn read_snapshot(path: &Path) -> Option<Snapshot> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}
