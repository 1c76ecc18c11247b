//! Benchmarks of the registry as the build cache of record, on the real stack:
//! `bench fresh` (what a fresh machine decides, and at what cost, next to the full rebuild it
//! did before) and `bench base-recipe` (whether the base recipe is reproducible).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use sha2::{Digest, Sha256};

use crate::build::{BuildOptions, BuildReport, Status};
use crate::engine::Engine;
use crate::fixture::engine::SecondEngine;
use crate::fixture::registry::Registry;
use crate::graph::ImageGraph;
use crate::plan::{PlanRequest, Selection, Variants};
use crate::progress::Reporter;
use crate::scheduler::Outcome;
use crate::spec::Spec;

#[derive(Debug, Args)]
pub struct FreshBench {
    /// Every variant (default: the default variant)
    #[arg(long)]
    pub all_variants: bool,
    /// Leave out the full rebuild on the fresh engine (the figure of before; the longest part)
    #[arg(long)]
    pub skip_rebuild: bool,
    /// Also play the fanned-out CI: one job per image, each building its image on an empty
    /// engine of its own from its parent's pin (bytes pulled, disk use, critical path)
    #[arg(long)]
    pub fan_out: bool,
}

#[derive(Debug, Args)]
pub struct RecipeBench {
    /// The base whose recipe to run twice [default: the first with a debootstrap recipe]
    pub base: Option<String>,
    /// The platform to make it for (`linux/arm64` runs debootstrap's second stage under QEMU
    /// on an amd64 host) [default: the host's]
    #[arg(long, value_name = "PLATFORM", value_parser = crate::platform::Platform::parse)]
    pub platform: Option<crate::platform::Platform>,
}

/// Builds every image of `spec` (the variants asked) on `engine`; returns the report and time.
async fn build_all(
    spec: &Spec,
    engine: Engine,
    variants: Variants,
    options: BuildOptions,
) -> anyhow::Result<(BuildReport, Duration)> {
    build_these(
        spec,
        engine,
        PlanRequest { selection: Selection::All, images: vec![], variants, platforms: crate::plan::Platforms::Default },
        options,
    )
    .await
}

/// Builds what `request` plans (and what it needs) on `engine`; returns the report and time.
async fn build_these(
    spec: &Spec,
    engine: Engine,
    request: PlanRequest,
    options: BuildOptions,
) -> anyhow::Result<(BuildReport, Duration)> {
    let graph = ImageGraph::new(spec);
    let plan = crate::plan::plan(spec, &graph, &request, "images")?;
    let nodes = crate::build::build_set(&graph, &plan);
    let logs = tempfile::tempdir()?;
    let reporter = Arc::new(Reporter::quiet(logs.path()));
    // As `cargo xtask build` does: the CA bundle (pip behind a TLS-intercepting proxy), labels.
    let defaults = BuildOptions::for_spec(spec, None, &reporter);
    let options =
        BuildOptions { ca_bundle: defaults.ca_bundle, revision: defaults.revision, source: defaults.source, ..options };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let report = crate::build::build(Arc::new(spec.clone()), &graph, &nodes, engine, options, reporter, rx).await?;
    if report.failed() {
        anyhow::bail!("the build failed:\n{}", crate::build::failures(&report));
    }
    Ok((report, started.elapsed()))
}

fn count(report: &BuildReport, status: Status) -> usize {
    report.rows.iter().filter(|row| matches!(&row.outcome, Outcome::Done(b) if b.status == status)).count()
}

/// Bytes under `dir`, as `du` counts them (hard links once).
fn disk_use(dir: &Path) -> u64 {
    let Ok(sh) = xshell::Shell::new() else { return 0 };
    let text = xshell::cmd!(sh, "du -sb {dir}").quiet().ignore_stderr().read().unwrap_or_default();
    text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Bytes of blobs the registry served since log line `from`.
fn blob_bytes(registry: &Registry, from: usize) -> u64 {
    registry
        .access_log()
        .lines()
        .skip(from)
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/"))
        .filter_map(|line| line.split("\" ").nth(1)?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

impl FreshBench {
    pub async fn run(&self, cli: &super::Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let registry = Registry::start(None);
        // The real stack, published to a registry of this machine.
        let copy = tempfile::tempdir()?;
        let source = cli.spec_path();
        let folder = source.parent().context("the spec has a folder")?;
        crate::fixture::copy_dir(folder, &copy.path().join("images"))?;
        let spec_path = copy.path().join("images").join(source.file_name().context("a spec file")?);
        let spec = Spec::load(&spec_path)?;
        let text = std::fs::read_to_string(&spec_path)?.replacen(
            &format!("registry: {}", spec.stack.registry),
            &format!("registry: {}", registry.host),
            1,
        );
        std::fs::write(&spec_path, text)?;
        let spec = Spec::load(&spec_path)?;
        let variants = if self.all_variants { Variants::All } else { Variants::Default };
        writeln!(out, "== the real stack ({}), registry {}", variants_name(&variants), registry.host)?;

        let here = Engine::connect().await?;
        let push = BuildOptions { push: true, jobs: crate::paths::parallelism(2), ..Default::default() };
        let (report, wall) = build_all(&spec, here, variants.clone(), push).await?;
        writeln!(
            out,
            "this engine: {} images ({} built, {} up to date), every pin pushed in {:.1} s; registry holds {:.2} GB",
            report.rows.len(),
            count(&report, Status::Built),
            count(&report, Status::UpToDate),
            wall.as_secs_f64(),
            disk_use(&registry.storage()) as f64 / 1e9
        )?;

        let fresh = SecondEngine::start_with_network();
        let engine = Engine::connect_to(&fresh.host).await?;
        let mark = registry.access_log().lines().count();
        let decide = BuildOptions { registry: true, jobs: crate::paths::parallelism(2), ..Default::default() };
        let (report, wall) = build_all(&spec, engine.clone(), variants.clone(), decide).await?;
        let log: Vec<String> = registry.access_log().lines().skip(mark).map(str::to_string).collect();
        let blobs = log.iter().filter(|line| line.contains("/blobs/")).count();
        writeln!(
            out,
            "(a) a fresh engine, the registry as cache: {} of {} images up to date in the registry, {} built, in {:.2} s; {} registry requests, {} blob downloads, {} images on the engine afterwards (target: under 2 s, 0 blobs)",
            count(&report, Status::InRegistry),
            report.rows.len(),
            count(&report, Status::Built),
            wall.as_secs_f64(),
            log.len(),
            blobs,
            engine.tags().await?.len()
        )?;
        if self.skip_rebuild {
            writeln!(out, "(b) the full rebuild of before: skipped (--skip-rebuild)")?;
        } else {
            let before = BuildOptions { local_only: true, jobs: crate::paths::parallelism(2), ..Default::default() };
            let (report, rebuilt) = build_all(&spec, engine, variants.clone(), before).await?;
            writeln!(
                out,
                "(b) the same fresh engine deciding alone, as before this change (no image ID matches across machines): {} built in {:.1} s; engine disk {:.2} GB",
                count(&report, Status::Built),
                rebuilt.as_secs_f64(),
                disk_use(&fresh.data_root) as f64 / 1e9
            )?;
            writeln!(out, "    ratio: {:.0}x", rebuilt.as_secs_f64() / wall.as_secs_f64().max(1e-9))?;
        }
        drop(fresh);
        if self.fan_out {
            fan_out(&spec, &registry, variants, out).await?;
        }
        Ok(())
    }
}

/// One CI job per image, as the fanned-out workflow runs them: each on an empty engine of its
/// own, building its image (its pin removed from the registry first, as if its inputs were new)
/// from the pins it is built on, then pushing it.
async fn fan_out(spec: &Spec, registry: &Registry, variants: Variants, out: &mut dyn Write) -> anyhow::Result<()> {
    let graph = ImageGraph::new(spec);
    let request =
        PlanRequest { selection: Selection::All, images: vec![], variants, platforms: crate::plan::Platforms::Default };
    let plan = crate::plan::plan(spec, &graph, &request, "images")?;
    let nodes = crate::build::build_set(&graph, &plan);
    let identities = crate::identity::identities(spec, &graph, &nodes)?;
    let client = crate::registry::Registry::new(&registry.host, None);
    writeln!(out, "(c) the fanned-out CI, one job per image on an empty engine of its own:")?;
    writeln!(out, "    {:28} {:>9} {:>12} {:>12}", "job", "time", "pulled", "disk at end")?;
    let mut finish: BTreeMap<String, Duration> = BTreeMap::new();
    let mut total = Duration::ZERO;
    for id in &nodes {
        let pin = &identities.nodes[&id.name];
        let (_, path) = crate::registry::split_repository(&pin.repository).context("the pin names the registry")?;
        if let Some(manifest) = client.manifest(&path, &pin.tag())? {
            client.delete_manifest(&path, &manifest.digest)?;
        }
        let engine = SecondEngine::start_with_network();
        let mark = registry.access_log().lines().count();
        let job = PlanRequest {
            selection: Selection::Requested,
            images: vec![id.name.clone()],
            variants: Variants::All,
            platforms: crate::plan::Platforms::Default,
        };
        let options = BuildOptions { registry: true, push: true, ..Default::default() };
        let (_, wall) = build_these(spec, Engine::connect_to(&engine.host).await?, job, options).await?;
        let before = graph.dependencies(id).into_iter().filter_map(|(dep, _)| finish.get(&dep.name)).max().copied();
        finish.insert(id.name.clone(), before.unwrap_or_default() + wall);
        total += wall;
        writeln!(
            out,
            "    {:28} {:>8.1}s {:>9.2} GB {:>9.2} GB",
            id.name,
            wall.as_secs_f64(),
            blob_bytes(registry, mark) as f64 / 1e9,
            disk_use(&engine.data_root) as f64 / 1e9
        )?;
    }
    let critical = finish.values().max().copied().unwrap_or_default();
    writeln!(
        out,
        "    critical path {:.1} s (the fanned-out run's wall time with a runner per job); runner time in all {:.1} s",
        critical.as_secs_f64(),
        total.as_secs_f64()
    )?;
    Ok(())
}

fn variants_name(variants: &Variants) -> &'static str {
    match variants {
        Variants::All => "every variant",
        _ => "default variant",
    }
}

/// Path, mode, owner, size and content digest of every entry of a tar archive.
fn entries(tar: &[u8]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let header = entry.header().clone();
        let mut contents = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut contents)?;
        let link = entry.link_name()?.map(|l| l.display().to_string()).unwrap_or_default();
        out.insert(
            entry.path()?.display().to_string(),
            format!(
                "mode {:o} owner {}:{} mtime {} size {} {link} sha256 {:x}",
                header.mode()?,
                header.uid()?,
                header.gid()?,
                header.mtime()?,
                contents.len(),
                Sha256::digest(&contents)
            ),
        );
    }
    Ok(out)
}

impl RecipeBench {
    pub async fn run(&self, cli: &super::Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        let spec = cli.load_spec()?;
        let base = match &self.base {
            Some(name) => spec.bases.get(name).with_context(|| format!("the spec has no base `{name}`"))?,
            None => spec
                .bases
                .values()
                .find(|b| b.recipe.as_ref().is_some_and(|r| r.debootstrap.is_some()))
                .context("no base has a debootstrap recipe")?,
        };
        let platform = self.platform.clone().unwrap_or_else(crate::platform::Platform::host);
        let digest = crate::identity::base_digest(base, &spec.dir, &platform)?;
        let pin = crate::identity::Pin::new(digest, spec.base_repository(&base.name));
        writeln!(out, "base `{}` for {platform}", base.name)?;
        let logs = tempfile::tempdir()?;
        let reporter = Reporter::quiet(logs.path());
        let mut runs = Vec::new();
        for round in 1..=2 {
            let started = Instant::now();
            let image = crate::bases::recipe_image(base, &pin, &platform, &spec.dir, &reporter).await?;
            let id = format!("sha256:{:x}", Sha256::digest(image.config()));
            writeln!(
                out,
                "run {round}: {:.1} s, {:.1} MB, image ID {id}",
                started.elapsed().as_secs_f64(),
                image.root_fs.len() as f64 / 1e6
            )?;
            runs.push((id, image));
        }
        if runs[0].0 == runs[1].0 {
            writeln!(out, "reproducible: both runs of the recipe of base `{}` give the same image ID", base.name)?;
            return Ok(());
        }
        let (a, b) = (entries(&runs[0].1.root_fs)?, entries(&runs[1].1.root_fs)?);
        let differ: Vec<&String> = a
            .keys()
            .chain(b.keys())
            .filter(|path| a.get(*path) != b.get(*path))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        writeln!(out, "NOT reproducible: {} of {} entries differ:", differ.len(), a.len())?;
        for path in differ.iter().take(40) {
            writeln!(
                out,
                "  {path}\n    run 1: {}\n    run 2: {}",
                a.get(*path).map_or("absent", String::as_str),
                b.get(*path).map_or("absent", String::as_str)
            )?;
        }
        Ok(())
    }
}
