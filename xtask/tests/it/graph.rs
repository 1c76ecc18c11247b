//! The image graph of the fixture stack: order, levels, ancestors and descendants, per variant.

use std::collections::BTreeSet;

use crate::common::fixture_dir;
use rstest::rstest;
use xtask::graph::{EdgeKind, ImageGraph, NodeId};
use xtask::spec::Spec;

fn fixture() -> (Spec, ImageGraph) {
    let spec = Spec::load(&fixture_dir().join("images/spec.yml")).unwrap();
    let graph = ImageGraph::new(&spec);
    (spec, graph)
}

fn names<'a>(ids: impl IntoIterator<Item = &'a NodeId>) -> Vec<String> {
    ids.into_iter().map(|id| id.name.clone()).collect()
}

#[test]
fn one_node_per_image_and_variant_in_topological_order() {
    let (_, graph) = fixture();
    assert_eq!(names(graph.topological_order()), ["base", "tools", "base@gpu", "tools@gpu", "app", "app@gpu", "extra"]);
}

#[rstest]
#[case("app", "cpu", &["base", "tools"], &["extra"])]
#[case("app", "gpu", &["base@gpu", "tools@gpu"], &[])]
#[case("extra", "cpu", &["base", "tools", "app"], &[])]
#[case("tools", "cpu", &[], &["app", "extra"])]
fn ancestors_and_descendants(
    #[case] image: &str,
    #[case] variant: &str,
    #[case] ancestors: &[&str],
    #[case] descendants: &[&str],
) {
    let (spec, graph) = fixture();
    let id = NodeId::new(&spec, image, variant);
    assert_eq!(names(graph.ancestors(&id)), ancestors);
    assert_eq!(names(graph.descendants(&id)), descendants);
}

#[test]
fn edges_know_parents_from_dependencies() {
    let (spec, graph) = fixture();
    let app = NodeId::new(&spec, "app", "cpu");
    let dependencies: Vec<(String, EdgeKind)> =
        graph.dependencies(&app).into_iter().map(|(id, kind)| (id.name.clone(), kind)).collect();
    assert_eq!(dependencies, [("base".to_string(), EdgeKind::Parent), ("tools".to_string(), EdgeKind::Dependency)]);
    assert_eq!(graph.level(&app), Some(1));
}

#[test]
fn levels_of_a_subset_ignore_what_is_not_selected() {
    let (spec, graph) = fixture();
    let selected: BTreeSet<NodeId> = ["app", "extra"].iter().map(|image| NodeId::new(&spec, image, "cpu")).collect();
    let levels: Vec<Vec<String>> = graph.levels(&selected).into_iter().map(names).collect();
    assert_eq!(levels, [vec!["app".to_string()], vec!["extra".to_string()]]);
}
