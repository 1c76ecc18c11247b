//! `cargo xtask release`: pushes what `tag` tagged and the tests passed, pins first and tags
//! last; or, with `--promote`, moves a tested tag to another in the registry, digest unchanged.
//! Writes the JSON record (`target/xtask/release.json`) that CI jobs read. The work is in
//! [`crate::release`]; this module reads the flags and prints what happens.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::Cli;
use crate::credentials;
use crate::error::Error;
use crate::graph::ImageGraph;
use crate::paths::work_dir;
use crate::registry::{self, Registry};
use crate::release::{self, promote, Event, ReleaseError, ReleaseRecord, RELEASE_RECORD_SCHEMA};

#[derive(Debug, Args)]
pub struct Release {
    /// The registry to push to, `host[:port]` or an `http(s)://` URL [default: stack.registry]
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// The harness's JUnit report (`STACK_JUNIT=<path> cargo test`), or a folder of them (one per
    /// CI job; repeatable): images whose tests failed, and the images built on them, are not pushed
    #[arg(long, value_name = "JUNIT", conflicts_with = "promote")]
    pub results: Vec<PathBuf>,
    /// Push images that have no test result (without --results: push every tagged image)
    #[arg(long)]
    pub untested: bool,
    /// Push nothing when any image is held back
    #[arg(long)]
    pub all_or_nothing: bool,
    /// Write the image index of an image built for several platforms even when a platform is
    /// missing (held back, or never tagged), over the platforms there are [default: refuse]
    #[arg(long, conflicts_with = "promote")]
    pub partial: bool,
    /// The record `cargo xtask tag` wrote, or a folder of them (one per CI job; repeatable)
    /// [default: target/xtask/tags.json]
    #[arg(long, value_name = "PATH")]
    pub tags: Vec<PathBuf>,
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
    /// Sign each pushed manifest (and its provenance) with this PEM P-256 private key, as cosign
    /// does (`cargo xtask verify REF --key PUB` checks it)
    #[arg(long, value_name = "PATH", conflicts_with = "promote")]
    pub sign_key: Option<PathBuf>,
    /// Folders of SBOMs and provenance that `cargo xtask sbom` wrote (repeatable), for images not
    /// on this engine [default: target/xtask/sbom]
    #[arg(long, value_name = "DIR")]
    pub attestations: Vec<PathBuf>,
    /// Folders of the security trials' reports to list in the record (repeatable)
    /// [default: target/xtask/security]
    #[arg(long, value_name = "DIR", conflicts_with = "promote")]
    pub security: Vec<PathBuf>,
}

impl Release {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let spec = cli.load_spec()?;
        let graph = ImageGraph::new(&spec);
        let target = self.registry.clone().unwrap_or_else(|| spec.stack.registry.clone());
        if target.is_empty() {
            return Err(ReleaseError::NoRegistry { spec: spec.file.clone() }.into());
        }
        let (host, _) = registry::address(&target);
        let credentials = credentials::lookup(&host);
        let client = Arc::new(Registry::new(&target, credentials.clone()));
        let attestor = self.attestor(&spec)?;
        let record = match (&self.promote, &self.to) {
            (Some(from), Some(to)) => {
                let request = promote::Request { from, to, force: self.force, dry_run: self.dry_run, registry: &host };
                let promotions = release::promote_stack(&spec, &graph, client, &attestor, request).await?;
                for p in &promotions {
                    writeln!(out, "{}: {}:{} -> {} ({})", p.node, p.repository, p.to, p.digest, p.status)?;
                    for attached in &p.attached {
                        writeln!(out, "{}: attached its {} ({})", p.node, attached.kind.name(), attached.reference)?;
                    }
                }
                ReleaseRecord { schema: RELEASE_RECORD_SCHEMA.into(), registry: host, images: vec![], promotions }
            }
            _ => {
                let tags =
                    if self.tags.is_empty() { vec![work_dir(&spec).join("tags.json")] } else { self.tags.clone() };
                let request = release::Request {
                    tags,
                    results: self.results.clone(),
                    untested: self.untested,
                    all_or_nothing: self.all_or_nothing,
                    partial: self.partial,
                    host,
                };
                let Some(record) = self.push(&spec, client, credentials, attestor, &request, out).await? else {
                    return Ok(());
                };
                record
            }
        };
        if self.dry_run {
            writeln!(out, "dry run: nothing was pushed, no tag was moved, no record written")?;
            return Ok(());
        }
        let path = self.record.clone().unwrap_or_else(|| work_dir(&spec).join("release.json"));
        release::write_record(&path, &record)?;
        writeln!(out, "record: {}", path.display())?;
        Ok(())
    }

    /// Pushes what passed; `None` for a dry run (which prints what it would push).
    async fn push(
        &self,
        spec: &crate::spec::Spec,
        client: Arc<Registry>,
        credentials: Option<credentials::Credentials>,
        attestor: release::StackAttestor,
        request: &release::Request,
        out: &mut dyn Write,
    ) -> Result<Option<ReleaseRecord>, Error> {
        let prepared = release::prepare(spec, &ImageGraph::new(spec), request)?;
        if !prepared.held.is_empty() {
            writeln!(out, "held back:")?;
            for image in &prepared.held {
                writeln!(out, "  {}: {}", image.node, image.reason.as_deref().unwrap_or_default())?;
            }
        }
        if self.dry_run {
            for push in &prepared.pushes {
                writeln!(
                    out,
                    "{}: would push {} (unless the registry has it), attach its SBOM, provenance{}, then tag {}",
                    push.node,
                    push.pin_reference(),
                    if self.sign_key.is_some() { " and signature" } else { "" },
                    push.tags.join(", ")
                )?;
            }
            for index in &prepared.indexes {
                let platforms: Vec<String> = index.platforms.iter().map(|(p, _)| p.to_string()).collect();
                writeln!(
                    out,
                    "{}: would write the image index of {} over {}, then tag it {}",
                    index.node,
                    index.repository,
                    platforms.join(", "),
                    index.tags.join(", ")
                )?;
            }
            writeln!(out, "dry run: nothing was pushed, no tag was moved, no record written")?;
            return Ok(None);
        }
        if prepared.pushes.is_empty() {
            writeln!(out, "nothing to push")?;
        }
        for note in &prepared.notes {
            writeln!(out, "note: {note}")?;
        }
        let mut failed_write = None;
        let mut say = |line: String| {
            if let Err(error) = writeln!(out, "{line}") {
                failed_write.get_or_insert(error);
            }
        };
        let record = release::push(client, credentials, &prepared, attestor, &mut |event| match event {
            Event::Pushing { node, reference } => say(format!("{node}: pushing {reference}")),
            Event::Present { node, reference } => say(format!("{node}: {reference} is in the registry already")),
            Event::Retrying { reference, error, pause } => {
                eprintln!("{reference}: {error}; trying again in {} ms", pause.as_millis())
            }
            Event::Attached { node, attachments } => {
                for a in attachments {
                    say(format!("{node}: {} {} ({})", a.kind.name(), a.status, a.reference))
                }
            }
            Event::Indexed { node, reference, platforms } => {
                say(format!("{node}: image index {reference} over {}", platforms.join(", ")))
            }
            Event::Tagged { node, repository, digest, tags } => {
                say(format!("{node}: {repository}@{digest} tagged {}", tags.join(", ")))
            }
        })
        .await;
        if let Some(error) = failed_write {
            return Err(error.into());
        }
        if !prepared.untested_on_gpu.is_empty() {
            writeln!(
                out,
                "released untested on a GPU (no GPU runner ran their GPU trials): {}",
                prepared.untested_on_gpu.join(", ")
            )?;
        }
        let mut record = record?;
        let dirs = if self.security.is_empty() { vec![work_dir(spec).join("security")] } else { self.security.clone() };
        release::add_security_reports(spec, &ImageGraph::new(spec), &mut record, &prepared.pushes, &dirs);
        print_security(&record, out)?;
        Ok(Some(record))
    }

    /// What makes the documents: the folders `sbom` wrote, the key (read now: a bad key stops
    /// the release before anything is pushed); the engine is found when pushing.
    fn attestor(&self, spec: &crate::spec::Spec) -> Result<release::StackAttestor, Error> {
        let key = match &self.sign_key {
            Some(path) => {
                let shown = path.display().to_string();
                let pem = std::fs::read_to_string(path).map_err(|e| crate::supply::sign::KeyError::Unreadable {
                    path: shown.clone(),
                    reason: e.to_string(),
                    hint: "check the path",
                });
                let pem = pem.map_err(crate::supply::SupplyError::from)?;
                Some(crate::supply::sign::signing_key(&shown, &pem).map_err(crate::supply::SupplyError::from)?)
            }
            None => None,
        };
        let dirs =
            if self.attestations.is_empty() { vec![work_dir(spec).join("sbom")] } else { self.attestations.clone() };
        Ok(release::StackAttestor {
            spec: Arc::new(spec.clone()),
            graph: Arc::new(ImageGraph::new(spec)),
            engine: None,
            images: Default::default(),
            dirs,
            key,
        })
    }
}

/// One line per pushed image: its pending security updates, or that no report was found.
fn print_security(record: &ReleaseRecord, out: &mut dyn Write) -> std::io::Result<()> {
    for image in record.images.iter().filter(|i| i.status == "pushed") {
        match &image.security {
            Some(report) => writeln!(
                out,
                "{}: {} pending security update(s) (checked {})",
                image.node,
                report.pending.len(),
                report.checked
            )?,
            None => writeln!(out, "{}: no security report for this image (run its security trials)", image.node)?,
        }
    }
    Ok(())
}
