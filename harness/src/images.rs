//! The images under test: built (with their ancestors) through the build engine before any
//! check runs, so a fresh clone's `cargo test` works; up-to-date images cost nothing, and with
//! the registry as cache (`stack.cache: registry`, or `STACK_CACHE=registry`) an image already
//! built elsewhere is pulled instead of built.

use std::sync::Arc;

use xtask::engine::Engine;

use crate::error::Error;
use xtask::graph::{ImageGraph, NodeId};
use xtask::progress::Reporter;
use xtask::spec::Spec;

/// Builds `nodes` and what they are built on, with progress on standard error and logs under
/// `target/xtask/logs/`; the error lists the images that failed.
pub async fn ensure_built(
    spec: &Arc<Spec>,
    graph: &ImageGraph,
    nodes: &[NodeId],
    engine: &Engine,
) -> Result<(), Error> {
    let tested = nodes.iter().map(|id| id.name.clone()).collect();
    let nodes = xtask::build::with_ancestors(graph, nodes);
    let reporter = Arc::new(Reporter::new(&xtask::paths::build_logs(spec)));
    // The images under test must be here: those up to date in the registry are pulled; their
    // ancestors stay where they are unless something builds on them.
    let options =
        xtask::build::BuildOptions { pull: tested, ..xtask::build::BuildOptions::for_spec(spec, None, &reporter) };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = xtask::build::build(spec.clone(), graph, &nodes, engine.clone(), options, reporter, rx)
        .await
        .map_err(|e| Error::Images(format!("the images under test cannot be built: {e}")))?;
    if report.failed() {
        return Err(Error::Images(format!(
            "the images under test did not build:\n{}",
            xtask::build::failures(&report)
        )));
    }
    Ok(())
}

/// The real stack's spec, built for `images` (`name` or `name@variant`) in their default
/// variant; returns the reference each is tested as. For Rust-level image tests.
pub async fn built(images: &[&str]) -> Result<Vec<String>, Error> {
    let spec = Arc::new(
        Spec::load(&xtask::paths::default_spec())
            .and_then(Spec::with_env_overrides)
            .map_err(|e| Error::Test(e.to_string()))?,
    );
    let graph = ImageGraph::new(&spec);
    let nodes: Vec<NodeId> = images
        .iter()
        .map(|name| {
            let (image, variant) = name.split_once('@').unwrap_or((name, spec.default_variant()));
            NodeId::new(&spec, image, variant)
        })
        .collect();
    let engine = Engine::connect().await?;
    ensure_built(&spec, &graph, &nodes, &engine).await?;
    Ok(nodes.iter().map(|node| xtask::build::build_reference(&spec, node)).collect())
}
