//! `cargo xtask docs`: runs each image's documentation commands inside it, and writes a page
//! and a snapshot per image, the index and the release notes (`docs/images/`). `--check` writes
//! nothing and fails when the committed files differ from what it would write.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;

use super::plan::Selector;
use super::tag::built_images;
use super::{interrupted, Cli, StepError};
use crate::build::LABEL_PARENT;
use crate::docs::{self, Layer, Release, Section, Snapshot, SNAPSHOT_SCHEMA};
use crate::engine::{self, Engine, ImageInspect};
use crate::graph::{ImageGraph, NodeId};
use crate::spec::Spec;

/// How long one documentation command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Args)]
pub struct Docs {
    #[command(flatten)]
    pub selector: Selector,
    /// Where the pages go [default: docs/images next to the spec's folder]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write nothing; fail when the files there are not what this run would write
    #[arg(long)]
    pub check: bool,
}

fn label<'a>(image: &'a ImageInspect, key: &str) -> Option<&'a str> {
    image.config.as_ref()?.labels.as_ref()?.get(key).map(String::as_str)
}

/// What one image is now, with the outputs of its documentation commands; and the failures
/// among them, for the run's report.
async fn current(
    engine: &Engine,
    spec: &Spec,
    id: &NodeId,
    image: &ImageInspect,
) -> anyhow::Result<(Snapshot, Vec<String>)> {
    let repository = spec.repository(&id.image, &id.variant);
    let image_id = image.id.clone().unwrap_or_default();
    let mut tags: Vec<String> = image
        .repo_tags
        .iter()
        .flatten()
        .filter_map(|reference| reference.strip_prefix(&format!("{repository}:")).map(str::to_string))
        .filter(|tag| tag != crate::build::BUILD_TAG && !tag.starts_with("inputs-"))
        .collect();
    tags.sort();
    let mut layers: Vec<Layer> = engine
        .history(&image_id)
        .await?
        .into_iter()
        .map(|layer| Layer { created_by: layer.created_by, size: layer.size })
        .collect();
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
        let packages = if failure.is_none() { docs::parse_packages(&output.stdout) } else { None };
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
        parent: label(image, LABEL_PARENT).unwrap_or_default().to_string(),
        revision: label(image, "org.opencontainers.image.revision").map(str::to_string),
        digest: engine::repo_digest(image, &repository),
        current: Release {
            id: image_id,
            created: label(image, "org.opencontainers.image.created").unwrap_or_default().to_string(),
            size: image.size.unwrap_or_default(),
            tags,
            packages,
        },
        layers,
        sections,
        previous: None,
        history: vec![],
    };
    Ok((snapshot, failures))
}

fn read_snapshot(path: &Path) -> Option<Snapshot> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

impl Docs {
    /// The command that regenerates exactly these pages.
    fn fix_command(&self, cli: &Cli) -> String {
        let mut command = String::from("cargo xtask");
        if let Some(spec) = &cli.spec {
            command.push_str(&format!(" --spec {}", spec.display()));
        }
        command.push_str(" docs");
        for image in &self.selector.images {
            command.push_str(&format!(" {image}"));
        }
        if let Some(since) = &self.selector.since {
            command.push_str(&format!(" --since {since}"));
        }
        if let Some(variant) = &self.selector.variant {
            command.push_str(&format!(" --variant {variant}"));
        }
        if self.selector.all_variants {
            command.push_str(" --all-variants");
        }
        if let Some(out) = &self.out {
            command.push_str(&format!(" --out {}", out.display()));
        }
        command
    }

    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let graph = ImageGraph::new(&spec);
        let nodes: Vec<NodeId> = plan.images.iter().map(|planned| planned.id.clone()).collect();
        let dir = self.out.clone().unwrap_or_else(|| {
            spec.dir.parent().map(Path::to_path_buf).unwrap_or_default().join("docs").join("images")
        });
        let engine = Engine::connect().await?;
        let work = async {
            let mut generated = Vec::new();
            let mut failures = Vec::new();
            let images = built_images(&engine, &spec, &nodes).await?;
            // A few images at a time; results come back in the stack's order.
            let results: Vec<_> = futures_util::stream::iter(images.iter())
                .map(|(id, image)| current(&engine, &spec, id, image))
                .buffered(super::probe_jobs())
                .collect()
                .await;
            for ((id, _), result) in images.iter().zip(results) {
                let (snapshot, failed) = result?;
                failures.extend(failed);
                generated.push((id.clone(), snapshot));
            }
            Ok::<_, anyhow::Error>((generated, failures))
        };
        let (generated, failures) = tokio::select! {
            result = work => result?,
            _ = interrupted() => {
                engine.remove_probes().await?;
                return Err(StepError::Interrupted.into());
            }
        };
        let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut snapshots: BTreeMap<String, Snapshot> = BTreeMap::new();
        for (id, snapshot) in generated {
            let stem = docs::file_stem(&spec, &id.image, &id.variant);
            let committed = read_snapshot(&dir.join(format!("{stem}.json")));
            let next = docs::next_snapshot(committed.as_ref(), snapshot);
            files.insert(dir.join(format!("{stem}.md")), docs::page(&next));
            files.insert(dir.join(format!("{stem}.json")), serde_json::to_string_pretty(&next)? + "\n");
            snapshots.insert(id.name.clone(), next);
        }
        // The index and notes cover every documented image, not only the ones regenerated now.
        let all: Vec<Snapshot> = graph
            .topological_order()
            .filter_map(|id| {
                snapshots.get(&id.name).cloned().or_else(|| {
                    read_snapshot(&dir.join(format!("{}.json", docs::file_stem(&spec, &id.image, &id.variant))))
                })
            })
            .collect();
        files.insert(dir.join("index.md"), docs::index(&spec, &graph, &all));
        files.insert(dir.join("RELEASE_NOTES.md"), docs::release_notes(&all));
        for failure in &failures {
            eprintln!("{failure}");
        }
        if self.check {
            let stale: Vec<String> = files
                .iter()
                .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()))
                .map(|(path, _)| format!("  {}", path.display()))
                .collect();
            if !stale.is_empty() {
                return Err(StepError::Docs(format!(
                    "{} documentation file{} out of date:\n{}\n  hint: regenerate them with `{}`",
                    stale.len(),
                    if stale.len() == 1 { " is" } else { "s are" },
                    stale.join("\n"),
                    self.fix_command(cli)
                ))
                .into());
            }
            writeln!(out, "{} documentation files are up to date", files.len())?;
            return Ok(());
        }
        std::fs::create_dir_all(&dir)?;
        for (path, text) in &files {
            if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(path, text)?;
                writeln!(out, "wrote {}", path.display())?;
            }
        }
        if !failures.is_empty() {
            return Err(StepError::Docs(format!(
                "{} documentation command{} failed (above); the pages say so, the other sections were written\n  hint: fix the command under `doc_commands` in {}, or the image",
                failures.len(),
                if failures.len() == 1 { "" } else { "s" },
                spec.file.display()
            ))
            .into());
        }
        Ok(())
    }
}
