//! `cargo xtask release`: pushes what `tag` tagged and the tests passed, pins first and tags
//! last; or, with `--promote`, moves a tested tag to another in the registry, digest unchanged.
//! Writes the JSON record (`target/xtask/release.json`) that CI jobs read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{work_dir, Cli, StepError};
use crate::credentials;
use crate::engine::{Engine, EngineError};
use crate::graph::{ImageGraph, NodeId};
use crate::registry::{self, Registry, RegistryError, FIRST_BACKOFF, RETRIES};
use crate::release::{self, Promotion, ReleaseRecord, ReleasedImage, RELEASE_RECORD_SCHEMA};
use crate::spec::Spec;
use crate::tags::TagRecord;

#[derive(Debug, Args)]
pub struct Release {
    /// The registry to push to, `host[:port]` or an `http(s)://` URL [default: stack.registry]
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// The harness's JUnit report (`STACK_JUNIT=<path> cargo test`): images whose tests failed,
    /// and the images built on them, are not pushed
    #[arg(long, value_name = "JUNIT", conflicts_with = "promote")]
    pub results: Option<PathBuf>,
    /// Push images that have no test result (without --results: push every tagged image)
    #[arg(long)]
    pub untested: bool,
    /// Push nothing when any image is held back
    #[arg(long)]
    pub all_or_nothing: bool,
    /// The record `cargo xtask tag` wrote [default: target/xtask/tags.json]
    #[arg(long, value_name = "PATH")]
    pub tags: Option<PathBuf>,
    /// Promote: the tag every image of the stack already has in the registry (`2026.11-main`)
    #[arg(long, value_name = "TAG", requires = "to")]
    pub promote: Option<String>,
    /// Promote: the tag to point at the same digests (`stable`, `2026.11-stable`)
    #[arg(long, value_name = "TAG", requires = "promote")]
    pub to: Option<String>,
    /// Promote: move the target tag even where it names another digest
    #[arg(long, requires = "promote")]
    pub force: bool,
    /// Where to write the JSON record [default: target/xtask/release.json]
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Say what would be pushed and moved, and push, move and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs blocking registry work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// An engine error that a later attempt may not meet (the registry went away, timed out).
fn transient(error: &EngineError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    let refused = ["unauthorized", "authentication required", "denied", "forbidden"];
    if refused.iter().any(|word| text.contains(word)) {
        return false;
    }
    let transient = [
        "connection refused",
        "connection reset",
        "eof",
        "timeout",
        "timed out",
        "broken pipe",
        "500",
        "502",
        "503",
        "504",
        "429",
        "too many requests",
    ];
    transient.iter().any(|word| text.contains(word))
}

/// Pushes `repository:tag` through the engine, trying transient failures again with backoff.
/// Blobs the registry already has are not uploaded again.
async fn push(
    engine: &Engine,
    repository: &str,
    tag: &str,
    credentials: Option<&credentials::Credentials>,
) -> Result<(), EngineError> {
    let mut pause = FIRST_BACKOFF;
    let mut attempt = 0;
    loop {
        match engine.push(repository, tag, credentials).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < RETRIES && transient(&error) => {
                eprintln!("{repository}:{tag}: {error}; trying again in {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The stack's repository of a node, on `host` instead of the spec's registry: `(full, path
/// under the registry)`.
fn repository(spec: &Spec, id: &NodeId, host: &str) -> (String, String) {
    let full = spec.repository(&id.image, &id.variant);
    let path = if spec.stack.registry.is_empty() {
        full.clone()
    } else {
        full.strip_prefix(&format!("{}/", spec.stack.registry)).unwrap_or(&full).to_string()
    };
    (format!("{host}/{path}"), path)
}

impl Release {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let spec = cli.load_spec()?;
        let graph = ImageGraph::new(&spec);
        let target = self.registry.clone().unwrap_or_else(|| spec.stack.registry.clone());
        if target.is_empty() {
            return Err(StepError::Refused(format!(
                "no registry to release to: {} sets `stack.registry: \"\"`\n  hint: pass `--registry HOST[:PORT]`, or set `stack.registry`",
                spec.file.display()
            ))
            .into());
        }
        let (host, _) = registry::address(&target);
        let credentials = credentials::lookup(&host);
        let client = Arc::new(Registry::new(&target, credentials.clone()));
        let mut record =
            ReleaseRecord { schema: RELEASE_RECORD_SCHEMA.into(), registry: host.clone(), ..Default::default() };
        match (&self.promote, &self.to) {
            (Some(from), Some(to)) => self.promote(&spec, &graph, client, from, to, &mut record, out).await?,
            _ => self.push(&spec, &graph, client, credentials.as_ref(), &mut record, out).await?,
        }
        if self.dry_run {
            writeln!(out, "dry run: nothing was pushed, no tag was moved, no record written")?;
            return Ok(());
        }
        let path = self.record.clone().unwrap_or_else(|| work_dir(&spec).join("release.json"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")?;
        writeln!(out, "record: {}", path.display())?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn push(
        &self,
        spec: &Spec,
        graph: &ImageGraph,
        client: Arc<Registry>,
        credentials: Option<&credentials::Credentials>,
        record: &mut ReleaseRecord,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let tags_path = self.tags.clone().unwrap_or_else(|| work_dir(spec).join("tags.json"));
        let text = std::fs::read_to_string(&tags_path).map_err(|error| {
            StepError::NotBuilt(format!(
                "no tag record at {}: {error}\n  hint: tag the built images first: `cargo xtask tag`",
                tags_path.display()
            ))
        })?;
        let tagged: TagRecord = serde_json::from_str(&text)
            .map_err(|e| StepError::Refused(format!("{} is not a tag record: {e}", tags_path.display())))?;
        let by_node: BTreeMap<&str, &crate::tags::TaggedImage> =
            tagged.images.iter().map(|image| (image.node.as_str(), image)).collect();
        let nodes: Vec<NodeId> =
            graph.topological_order().filter(|id| by_node.contains_key(id.name.as_str())).cloned().collect();
        for image in &tagged.images {
            if !nodes.iter().any(|id| id.name == image.node) {
                return Err(StepError::Refused(format!(
                    "{} names `{}`, which the spec does not have\n  hint: tag again: `cargo xtask tag`",
                    tags_path.display(),
                    image.node
                ))
                .into());
            }
        }
        let results = match &self.results {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| release::ResultsError {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                let parsed = release::parse_junit(&text)
                    .map_err(|reason| release::ResultsError { path: path.display().to_string(), reason })?;
                Some(parsed)
            }
            None if self.untested => None,
            None => {
                return Err(StepError::Refused(
                    "no test results: release pushes only what passed\n  hint: pass `--results <junit.xml>` (written by `STACK_JUNIT=<junit.xml> cargo test`), or `--untested` to push without them".into(),
                )
                .into())
            }
        };
        let decisions = release::decide(graph, &nodes, results.as_ref(), self.untested, self.all_or_nothing);
        let held: Vec<String> = decisions
            .iter()
            .filter_map(|(id, hold)| hold.as_ref().map(|hold| format!("  {}: {hold}", id.name)))
            .collect();
        if !held.is_empty() {
            writeln!(out, "held back:\n{}", held.join("\n"))?;
        }
        if self.all_or_nothing && !held.is_empty() {
            return Err(StepError::Refused(
                "nothing was pushed: --all-or-nothing and images were held back (above)".into(),
            )
            .into());
        }
        let engine = Engine::connect().await?;
        let mut pushes = Vec::new();
        let mut held_images = Vec::new();
        for (id, hold) in &decisions {
            let image = by_node[id.name.as_str()];
            let (full, path) = repository(spec, id, &client.host);
            if let Some(hold) = hold {
                held_images.push(ReleasedImage {
                    node: id.name.clone(),
                    repository: full,
                    status: "held".into(),
                    reason: Some(hold.to_string()),
                    digest: None,
                    tags: vec![],
                });
                continue;
            }
            if engine.image(&image.id).await?.is_none() {
                return Err(StepError::NotBuilt(format!(
                    "{}: image {} (tagged by `cargo xtask tag`) is no longer on this engine\n  hint: `cargo xtask build {} && cargo xtask tag {}`",
                    id.name, image.id, id.name, id.name
                ))
                .into());
            }
            pushes.push((id.clone(), image, full, path));
        }
        record.images = held_images;
        if self.dry_run {
            for (id, image, full, _) in &pushes {
                writeln!(out, "{}: would push {full}:{} then tag {}", id.name, image.pin, image.tags.join(", "))?;
            }
            return Ok(());
        }
        if pushes.is_empty() {
            writeln!(out, "nothing to push")?;
            return Ok(());
        }
        // Refused credentials stop the release before anything is uploaded.
        let first_path = pushes[0].3.clone();
        let check = client.clone();
        blocking(move || check.check_access(&first_path)).await??;
        // 1. Every pin: blobs, then the manifest, under a content-addressed tag.
        let mut manifests = Vec::new();
        for (id, image, full, path) in &pushes {
            if *full != image.repository {
                engine.tag(&image.id, full, &image.pin).await?;
            }
            writeln!(out, "{}: pushing {full}:{}", id.name, image.pin)?;
            push(&engine, full, &image.pin, credentials).await?;
            let (reader, path_owned, pin) = (client.clone(), path.clone(), image.pin.clone());
            let manifest =
                blocking(move || reader.manifest(&path_owned, &pin)).await??.ok_or_else(|| RegistryError::Failed {
                    registry: client.host.clone(),
                    operation: "reading back",
                    target: format!("{full}:{}", image.pin),
                    status: 404,
                    message: "the pushed manifest is not there".into(),
                })?;
            manifests.push(manifest);
        }
        // 2. Only now do the human tags move, each to a manifest whose blobs are all there.
        for ((id, image, full, path), manifest) in pushes.iter().zip(manifests) {
            for tag in &image.tags {
                let (writer, path, tag, manifest) = (client.clone(), path.clone(), tag.clone(), manifest.clone());
                blocking(move || writer.put_manifest(&path, &tag, &manifest)).await??;
            }
            writeln!(out, "{}: {full}@{} tagged {}", id.name, manifest.digest, image.tags.join(", "))?;
            let mut tags = vec![image.pin.clone()];
            tags.extend(image.tags.iter().cloned());
            record.images.push(ReleasedImage {
                node: id.name.clone(),
                repository: full.clone(),
                status: "pushed".into(),
                reason: None,
                digest: Some(manifest.digest.clone()),
                tags,
            });
        }
        // The record lists images in the stack's order, pushed and held alike.
        let order: BTreeMap<&str, usize> =
            decisions.iter().enumerate().map(|(i, (id, _))| (id.name.as_str(), i)).collect();
        record.images.sort_by_key(|image| order.get(image.node.as_str()).copied());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn promote(
        &self,
        spec: &Spec,
        graph: &ImageGraph,
        client: Arc<Registry>,
        from: &str,
        to: &str,
        record: &mut ReleaseRecord,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        for tag in [from, to] {
            if let Err(why) = crate::reference::check_tag(tag) {
                return Err(StepError::Refused(format!("`{tag}` is not a valid tag: {why}")).into());
            }
        }
        let nodes: Vec<NodeId> = graph.topological_order().cloned().collect();
        let reader = client.clone();
        let paths: Vec<(NodeId, String, String)> = nodes
            .iter()
            .map(|id| {
                let (full, path) = repository(spec, id, &client.host);
                (id.clone(), full, path)
            })
            .collect();
        let (from_owned, to_owned, wanted) = (from.to_string(), to.to_string(), paths.clone());
        let found = blocking(move || {
            let mut found = Vec::new();
            for (_, _, path) in &wanted {
                let source = reader.manifest(path, &from_owned)?;
                let target = reader.manifest(path, &to_owned)?;
                found.push((source, target));
            }
            Ok::<_, RegistryError>(found)
        })
        .await??;
        let missing: Vec<String> = paths
            .iter()
            .zip(&found)
            .filter(|(_, (source, _))| source.is_none())
            .map(|((id, ..), _)| id.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(StepError::Refused(format!(
                "cannot promote `{from}`: {} of {} images lack it in {}: {}; no tag was moved\n  hint: release them first (`cargo xtask tag && cargo xtask release --results ...`), or promote a tag every image has",
                missing.len(),
                paths.len(),
                client.host,
                missing.join(", ")
            ))
            .into());
        }
        let taken: Vec<String> = paths
            .iter()
            .zip(&found)
            .filter_map(|((id, ..), (source, target))| match (source, target) {
                (Some(source), Some(target)) if source.digest != target.digest => {
                    Some(format!("  {}: `{to}` is {}, `{from}` is {}", id.name, target.digest, source.digest))
                }
                _ => None,
            })
            .collect();
        if !taken.is_empty() && !self.force {
            return Err(StepError::Refused(format!(
                "`{to}` already names other images; no tag was moved:\n{}\n  hint: pass `--force` to move it anyway",
                taken.join("\n")
            ))
            .into());
        }
        for ((id, full, path), (source, target)) in paths.into_iter().zip(found) {
            let Some(source) = source else { continue };
            let already = target.as_ref().is_some_and(|t| t.digest == source.digest);
            let status = if already {
                "already there"
            } else if self.dry_run {
                "would move"
            } else {
                let (writer, path, to, manifest) = (client.clone(), path.clone(), to.to_string(), source.clone());
                blocking(move || writer.put_manifest(&path, &to, &manifest)).await??;
                "moved"
            };
            writeln!(out, "{}: {full}:{to} -> {} ({status})", id.name, source.digest)?;
            record.promotions.push(Promotion {
                node: id.name.clone(),
                repository: full,
                from: from.to_string(),
                to: to.to_string(),
                digest: source.digest.clone(),
                status: status.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_what_may_pass_later() {
        let error = |message: &str| EngineError::Failed {
            operation: "pushing",
            target: "x".into(),
            message: message.into(),
            hint: None,
        };
        assert!(transient(&error("Put \"http://127.0.0.1:5000/v2/\": dial tcp: connection refused")));
        assert!(transient(&error("received unexpected HTTP status: 503 Service Unavailable")));
        assert!(!transient(&error("unauthorized: authentication required")));
        assert!(!transient(&error("manifest invalid")));
    }
}
