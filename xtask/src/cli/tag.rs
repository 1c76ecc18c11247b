//! `cargo xtask tag`: gives built images (`<repository>:build`) their branch, commit, date and
//! version tags, and writes the record `release` pushes from (`target/xtask/tags.json`).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;

use super::plan::Selector;
use super::{interrupted, work_dir, Cli, StepError};
use crate::build::BUILD_TAG;
use crate::engine::{Engine, ImageInspect};
use crate::git::Repo;
use crate::graph::NodeId;
use crate::spec::Spec;
use crate::tags::{self, TagRecord, TaggedImage, TAG_RECORD_SCHEMA};

/// How long a version command may run.
const VERSION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Args)]
pub struct Tag {
    #[command(flatten)]
    pub selector: Selector,
    /// The branch the `<prefix>-<branch>` tag names [default: the branch checked out, else
    /// $GITHUB_HEAD_REF or $GITHUB_REF_NAME]
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Compute and print the tags (version commands run in throwaway containers); move no tag
    /// and write no record
    #[arg(long)]
    pub dry_run: bool,
}

/// The branch to tag for: the flag, the checkout, or what CI says.
fn branch(flag: Option<&str>, spec: &Spec) -> Result<String, StepError> {
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
    Err(StepError::Refused(
        "no branch to tag for: HEAD is detached and neither GITHUB_HEAD_REF nor GITHUB_REF_NAME is set\n  hint: pass `--branch NAME`".into(),
    ))
}

/// The built image of each node, or one error naming every image that was never built and
/// the command that builds them.
pub(super) async fn built_images(
    engine: &Engine,
    spec: &Spec,
    nodes: &[NodeId],
) -> anyhow::Result<Vec<(NodeId, ImageInspect)>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in nodes {
        let reference = format!("{}:{BUILD_TAG}", spec.repository(&id.image, &id.variant));
        match engine.image(&reference).await? {
            Some(image) => found.push((id.clone(), image)),
            None => missing.push(id.name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(StepError::NotBuilt(format!(
            "never built on this engine: {} (no `:{BUILD_TAG}` tag)\n  hint: build them first: `cargo xtask build {}`",
            missing.join(", "),
            missing.join(" ")
        ))
        .into());
    }
    Ok(found)
}

fn label<'a>(image: &'a ImageInspect, key: &str) -> Option<&'a str> {
    image.config.as_ref()?.labels.as_ref()?.get(key).map(String::as_str)
}

/// The tags of one image: build tags, then version tags from commands run inside it.
async fn tags_of(
    engine: &Engine,
    spec: &Spec,
    id: &NodeId,
    image: &ImageInspect,
    branch_tag: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut tags, notes) = tags::build_tags(
        branch_tag,
        label(image, "org.opencontainers.image.revision"),
        label(image, "org.opencontainers.image.created"),
    );
    let versions = spec.version_tags_of(&id.image, &id.variant);
    if versions.is_empty() {
        return Ok((tags, notes));
    }
    let image_id = image.id.clone().unwrap_or_default();
    let commands: Vec<String> = versions.iter().map(|(_, command)| command.to_string()).collect();
    let outputs = engine.run_in_image(&image_id, &commands, VERSION_TIMEOUT).await?;
    for ((name, command), output) in versions.iter().zip(outputs) {
        match output.exit_code {
            Some(0) => tags.push(tags::version_tag(name, command, &output.stdout)?),
            Some(code) => {
                return Err(StepError::Refused(format!(
                    "{}: version tag `{name}`: `{command}` exited with {code}: {}\n  hint: fix the command under `version_tags` in {}, or the image",
                    id.name,
                    output.stderr.trim(),
                    spec.file.display()
                ))
                .into())
            }
            None => {
                return Err(StepError::Refused(format!(
                    "{}: version tag `{name}`: `{command}` did not finish within {} s",
                    id.name,
                    VERSION_TIMEOUT.as_secs()
                ))
                .into())
            }
        }
    }
    Ok((tags, notes))
}

impl Tag {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let branch = branch(self.branch.as_deref(), &spec)?;
        let branch_tag = tags::branch_tag(&spec.stack.tag_prefix, &branch)?;
        let nodes: Vec<NodeId> = plan.images.iter().map(|planned| planned.id.clone()).collect();
        let engine = Engine::connect().await?;
        let work = async {
            let images = built_images(&engine, &spec, &nodes).await?;
            let mut record = TagRecord { schema: TAG_RECORD_SCHEMA.into(), branch: branch.clone(), images: vec![] };
            let mut failures = Vec::new();
            // A few images at a time; results come back in the stack's order.
            let computed: Vec<_> = futures_util::stream::iter(images.iter())
                .map(|(id, image)| {
                    let (engine, spec, branch_tag) = (&engine, &spec, &branch_tag);
                    async move { (id, image, tags_of(engine, spec, id, image, branch_tag).await) }
                })
                .buffered(super::probe_jobs())
                .collect()
                .await;
            for (id, image, result) in computed {
                match result {
                    Ok((tags, notes)) => {
                        for note in notes {
                            eprintln!("{}: {note}", id.name);
                        }
                        let repository = spec.repository(&id.image, &id.variant);
                        let pin =
                            label(image, crate::build::LABEL_INPUTS).map(crate::build::pin_tag).unwrap_or_default();
                        record.images.push(TaggedImage {
                            node: id.name.clone(),
                            image: id.image.clone(),
                            variant: id.variant.clone(),
                            repository,
                            id: image.id.clone().unwrap_or_default(),
                            pin,
                            tags,
                        });
                    }
                    Err(error) => failures.push(format!("{error:#}")),
                }
            }
            Ok::<_, anyhow::Error>((record, failures))
        };
        let (record, failures) = tokio::select! {
            result = work => result?,
            _ = interrupted() => {
                engine.remove_probes().await?;
                return Err(StepError::Interrupted.into());
            }
        };
        for image in &record.images {
            if !self.dry_run {
                for tag in &image.tags {
                    engine.tag(&image.id, &image.repository, tag).await?;
                }
            }
            writeln!(out, "{}  {}  {}", image.node, image.repository, image.tags.join(", "))?;
        }
        if self.dry_run {
            writeln!(out, "dry run: no tag was moved")?;
        } else {
            let path = work_dir(&spec).join("tags.json");
            std::fs::create_dir_all(work_dir(&spec))?;
            std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")?;
            writeln!(out, "record: {}", path.display())?;
        }
        if !failures.is_empty() {
            return Err(StepError::Refused(format!(
                "{} image{} not tagged:\n{}",
                failures.len(),
                if failures.len() == 1 { " was" } else { "s were" },
                failures.join("\n")
            ))
            .into());
        }
        Ok(())
    }
}
