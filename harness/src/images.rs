//! The images under test: built (with their ancestors) through the build engine before any
//! check runs, so a fresh clone's `cargo test` works; up-to-date images cost nothing.

use std::sync::Arc;

use xtask::engine::Engine;
use xtask::git::Repo;
use xtask::graph::{ImageGraph, NodeId};
use xtask::report::Reporter;
use xtask::spec::Spec;

/// Builds `nodes` and what they are built on, with progress on standard error and logs under
/// `target/xtask/logs/`; the error lists the images that failed.
pub async fn ensure_built(
    spec: &Arc<Spec>,
    graph: &ImageGraph,
    nodes: &[NodeId],
    engine: &Engine,
) -> Result<(), String> {
    let nodes = xtask::build::with_ancestors(graph, nodes);
    let reporter = Arc::new(Reporter::new(&xtask::cli::work_dir(spec).join("logs")));
    let repo = Repo::discover(&spec.dir).ok();
    let options = xtask::build::BuildOptions {
        jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
        ca_bundle: spec.stack.ca_bundle.clone().map(|p| spec.dir.join(p)).filter(|p| p.is_file()),
        // The same provenance labels as `cargo xtask build` gives.
        revision: repo.as_ref().and_then(Repo::revision),
        source: repo.as_ref().and_then(Repo::source),
        ..Default::default()
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = xtask::build::build(spec.clone(), graph, &nodes, engine.clone(), options, reporter, rx)
        .await
        .map_err(|e| e.to_string())?;
    if report.failed() {
        return Err(format!("the images under test did not build:\n{}", xtask::build::failures(&report)));
    }
    Ok(())
}

/// The real stack's spec, built for `images` (`name` or `name@variant`) in their default
/// variant; returns the reference each is tested as. For Rust-level image tests.
pub async fn built(images: &[&str]) -> Result<Vec<String>, String> {
    let spec = Arc::new(Spec::load(&xtask::cli::project_root().join("images/spec.yml")).map_err(|e| e.to_string())?);
    let graph = ImageGraph::new(&spec);
    let nodes: Vec<NodeId> = images
        .iter()
        .map(|name| {
            let (image, variant) = name.split_once('@').unwrap_or((name, spec.default_variant()));
            NodeId::new(&spec, image, variant)
        })
        .collect();
    let engine = Engine::connect().await.map_err(|e| e.to_string())?;
    ensure_built(&spec, &graph, &nodes, &engine).await?;
    Ok(nodes
        .iter()
        .map(|node| format!("{}:{}", spec.repository(&node.image, &node.variant), xtask::build::BUILD_TAG))
        .collect())
}
