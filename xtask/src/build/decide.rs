//! Which images a run builds, and which are up to date and where: pure, from what the engine
//! and the registry hold.
//!
//! An image is up to date when its pin exists (on this engine, or in the registry) **and** no
//! image it is built on is built in this run (a forced rebuild of a parent makes a new image,
//! and its children must be built on that one). Everything else is built, with the reason.

use std::collections::BTreeMap;
use std::fmt;

use crate::graph::{ImageGraph, NodeId};

/// Where an image's pin was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub engine: bool,
    pub registry: bool,
}

/// Where an up-to-date image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Engine,
    /// In the registry only: pulled when a build or the caller needs it, never just to look.
    Registry,
}

/// Why an image is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `--force` or `--no-cache`.
    Forced,
    /// Its pin is neither on this engine nor in the registry: its inputs are new.
    NewInputs,
    /// An image it is built on is built in this run.
    Upstream(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Forced => write!(f, "forced"),
            Why::NewInputs => write!(f, "new inputs"),
            Why::Upstream(name) => write!(f, "{name} is built in this run"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    UpToDate(Place),
    Build(Why),
}

impl Decision {
    pub fn builds(&self) -> bool {
        matches!(self, Decision::Build(_))
    }
}

/// Decides every node of `nodes` (topological order, ancestors included): `found` says where
/// each pin is; `force` builds everything.
pub fn decide(
    graph: &ImageGraph,
    nodes: &[NodeId],
    found: &BTreeMap<String, Found>,
    force: bool,
) -> BTreeMap<String, Decision> {
    let mut decided: BTreeMap<String, Decision> = BTreeMap::new();
    for id in nodes {
        let building = graph
            .dependencies(id)
            .into_iter()
            .map(|(upstream, _)| upstream)
            .find(|upstream| decided.get(&upstream.name).is_some_and(Decision::builds));
        let here = found.get(&id.name).copied().unwrap_or(Found { engine: false, registry: false });
        let decision = if force {
            Decision::Build(Why::Forced)
        } else if let Some(upstream) = building {
            Decision::Build(Why::Upstream(upstream.name.clone()))
        } else if here.engine {
            Decision::UpToDate(Place::Engine)
        } else if here.registry {
            Decision::UpToDate(Place::Registry)
        } else {
            Decision::Build(Why::NewInputs)
        };
        decided.insert(id.name.clone(), decision);
    }
    decided
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::spec::Spec;

    /// The fixture stack: base -> app -> extra, tools -> app (dependency), in cpu and gpu.
    fn fixture() -> (ImageGraph, Vec<NodeId>) {
        let spec = Spec::load(&crate::fixture::source_dir().join("images/spec.yml")).unwrap();
        let graph = ImageGraph::new(&spec);
        let nodes: Vec<NodeId> = graph.topological_order().filter(|id| id.variant == "cpu").cloned().collect();
        (graph, nodes)
    }

    fn found(engine: &[&str], registry: &[&str]) -> BTreeMap<String, Found> {
        ["base", "tools", "app", "extra"]
            .iter()
            .map(|n| (n.to_string(), Found { engine: engine.contains(n), registry: registry.contains(n) }))
            .collect()
    }

    fn short(decision: &Decision) -> String {
        match decision {
            Decision::UpToDate(Place::Engine) => "engine".into(),
            Decision::UpToDate(Place::Registry) => "registry".into(),
            Decision::Build(why) => format!("build ({why})"),
        }
    }

    #[rstest]
    #[case::all_local(&["base", "tools", "app", "extra"], &[], "engine engine engine engine")]
    #[case::all_in_registry(&[], &["base", "tools", "app", "extra"], "registry registry registry registry")]
    #[case::engine_wins(&["base"], &["base", "tools", "app", "extra"], "engine registry registry registry")]
    #[case::a_leaf_changed(&[], &["base", "tools", "app"], "registry registry registry build (new inputs)")]
    #[case::mid_graph_changed(
        &[],
        &["base", "tools", "extra"],
        "registry registry build (new inputs) build (app is built in this run)"
    )]
    #[case::nothing_anywhere(&[], &[], "build (new inputs) build (new inputs) build (base is built in this run) build (app is built in this run)")]
    fn up_to_date_means_pinned_and_nothing_upstream_builds(
        #[case] engine: &[&str],
        #[case] registry: &[&str],
        #[case] expected: &str,
    ) {
        let (graph, nodes) = fixture();
        let decided = decide(&graph, &nodes, &found(engine, registry), false);
        let order: Vec<&str> = nodes.iter().map(|id| id.name.as_str()).collect();
        assert_eq!(order, ["base", "tools", "app", "extra"]);
        let got: Vec<String> = nodes.iter().map(|id| short(&decided[&id.name])).collect();
        assert_eq!(got.join(" "), expected);
    }

    #[test]
    fn forcing_builds_everything_even_what_is_pinned() {
        let (graph, nodes) = fixture();
        let all = ["base", "tools", "app", "extra"];
        let decided = decide(&graph, &nodes, &found(&all, &all), true);
        assert!(decided.values().all(|d| *d == Decision::Build(Why::Forced)));
    }
}
