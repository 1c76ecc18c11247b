//! `cargo xtask build`: builds what the plan names (and the ancestors it needs) through the
//! engine, with live progress, per-image logs and a summary table.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::sync::watch;

use super::plan::Selector;
use super::Cli;
use crate::build::{self, BuildOptions, BuildRunError};
use crate::engine::Engine;
use crate::error::Error;
use crate::graph::ImageGraph;
use crate::platform::Platform;
use crate::progress::Reporter;
use crate::render;

#[derive(Debug, Args)]
pub struct Build {
    #[command(flatten)]
    pub selector: Selector,
    /// Images built at the same time [default: the number of CPUs, at least 2]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop everything at the first failure (by default other branches go on)
    #[arg(long)]
    pub fail_fast: bool,
    /// Build without the layer cache (implies --force)
    #[arg(long)]
    pub no_cache: bool,
    /// Build even images whose inputs have not changed
    #[arg(long)]
    pub force: bool,
    /// Use this image's layers as cache (read from its registry by BuildKit, nothing is pulled;
    /// an image that does not exist is skipped)
    #[arg(long = "cache-from", value_name = "REF")]
    pub cache_from: Vec<String>,
    /// Look for each image's pin in the stack's registry too (by manifest: an up-to-date image
    /// is not pulled) [default: on when the spec says `stack.cache: registry`]
    #[arg(long)]
    pub registry: bool,
    /// Push each pin to the registry as soon as its image is built (tags stay the job of
    /// `release`); implies --registry
    #[arg(long)]
    pub push: bool,
    /// Pull the images that are up to date in the registry, so they are on this engine
    /// (to run or test them); by default they stay in the registry
    #[arg(long)]
    pub pull: bool,
    /// A CA bundle RUN steps may trust through a bind mount [default: stack.ca_bundle]
    #[arg(long, value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
    /// Build PLATFORM's images on the engine at HOST (`linux/arm64=ssh://arm-box`,
    /// `linux/arm64=unix:///run/arm.sock`; repeatable); other platforms build on DOCKER_HOST's
    #[arg(long = "engine", value_name = "PLATFORM=HOST", value_parser = engine_for_platform)]
    pub engines: Vec<(Platform, String)>,
    /// Print what would be built and why, and touch no engine
    #[arg(long)]
    pub dry_run: bool,
}

/// Reads `--engine PLATFORM=HOST`.
fn engine_for_platform(text: &str) -> Result<(Platform, String), String> {
    let (platform, host) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not PLATFORM=HOST, such as `linux/arm64=ssh://arm-box`"))?;
    if !["unix://", "tcp://", "ssh://", "http://", "https://"].iter().any(|scheme| host.starts_with(scheme)) {
        return Err(format!("`{host}` is not an engine address: write unix://, tcp:// or ssh://"));
    }
    Ok((Platform::parse(platform)?, host.to_string()))
}

/// Connects to each `--engine` (one that does not run its platform natively emulates it, as
/// the build checks and says).
async fn connect_engines(engines: &[(Platform, String)]) -> Result<Vec<(Platform, Engine)>, Error> {
    let mut out = Vec::new();
    for (platform, host) in engines {
        out.push((platform.clone(), Engine::connect_to(host).await?));
    }
    Ok(out)
}

/// Turns Ctrl-C and SIGTERM into `true` on the returned channel.
fn interrupts(reporter: Arc<Reporter>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let mut interrupts = crate::signals::Interrupts::listen();
    tokio::spawn(async move {
        interrupts.recv().await;
        reporter.note("interrupted: cancelling running builds, starting no new ones");
        let _ = tx.send(true);
    });
    rx
}

impl Build {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let graph = ImageGraph::new(&spec);
        let nodes = build::build_set(&graph, &plan);
        if self.dry_run {
            let uses_registry = self.registry || self.push || super::plan::asks_registry(false, &spec);
            let plan = if uses_registry { super::plan::mark_built(&spec, plan).await? } else { plan };
            out.write_all(render::plan::text(&plan).as_bytes())?;
            let extra = build::build_set(&graph, &plan).len() - plan.to_build().count();
            if extra > 0 {
                writeln!(
                    out,
                    "\nand {extra} ancestor image{} they need, rebuilt only if their inputs changed",
                    if extra == 1 { "" } else { "s" }
                )?;
            }
            return Ok(());
        }
        if nodes.is_empty() {
            out.write_all(render::plan::text(&plan).as_bytes())?;
            return Ok(());
        }
        let reporter = Arc::new(Reporter::new(&crate::paths::build_logs(&spec)));
        let engine = Engine::connect().await?;
        let defaults = BuildOptions::for_spec(&spec, self.ca_bundle.clone(), &reporter);
        reporter.note(&format!(
            "engine {} (API {}) at {}; {} image{} to check",
            engine.server_version,
            engine.api_version,
            engine.host,
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" }
        ));
        let options = BuildOptions {
            jobs: self.jobs.unwrap_or(defaults.jobs),
            fail_fast: self.fail_fast,
            no_cache: self.no_cache,
            force: self.force,
            cache_from: self.cache_from.clone(),
            registry: self.registry,
            push: self.push,
            pull: if self.pull {
                plan.to_build().map(|planned| planned.id.name.clone()).collect()
            } else {
                Default::default()
            },
            engines: connect_engines(&self.engines).await?,
            ..defaults
        };
        let interrupt = interrupts(reporter.clone());
        let watched = interrupt.clone();
        let report = build::build(Arc::new(spec), &graph, &nodes, engine, options, reporter, interrupt).await?;
        out.write_all(build::summary(&report).as_bytes())?;
        let failures = build::failures(&report);
        if !failures.is_empty() {
            eprint!("{failures}");
        }
        if *watched.borrow() {
            return Err(BuildRunError::Interrupted.into());
        }
        match report.error() {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}
