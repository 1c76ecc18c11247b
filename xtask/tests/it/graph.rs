//! The image graph of the fixture stack: order, levels, ancestors and descendants, per variant.

use std::collections::BTreeSet;

use crate::common::fixture_dir;
use rstest::rstest;
use xtask::cli::bench::{generate_chain, Chain};
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

/// A chain of `images` images in one shared folder (see `bench plan`), validated.
fn chain(images: usize, children_first: bool, closed: bool) -> (tempfile::TempDir, Result<Spec, String>) {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain { images, children_first, closed, shared_folder: true };
    generate_chain(dir.path(), chain).unwrap();
    let spec = Spec::load(&dir.path().join("images/spec.yml")).map_err(|error| error.to_string());
    (dir, spec)
}

/// Ten thousand images in one chain, in either order: validated, graphed and planned without
/// recursion per image (a test thread's stack is 2 MiB) and in linear time (listed children
/// first, this took a minute in a debug build when levels were found by repeated passes).
/// `cargo xtask bench plan` measures twenty thousand.
#[rstest]
#[case::children_first(true)]
#[case::parents_first(false)]
fn a_deep_chain_in_either_order(#[case] children_first: bool) {
    use xtask::plan::{plan, PlanRequest, Selection, Variants};
    let images = 10_000;
    let (_dir, spec) = chain(images, children_first, false);
    let spec = spec.unwrap();
    let graph = ImageGraph::new(&spec);
    let order = names(graph.topological_order());
    assert_eq!(order.first().map(String::as_str), Some("c-09999"));
    assert_eq!(order.last().map(String::as_str), Some("c-00000"));
    let request = PlanRequest {
        selection: Selection::All,
        images: Vec::new(),
        variants: Variants::Default,
        platforms: xtask::plan::Platforms::Default,
    };
    let plan = plan(&spec, &graph, &request, "images").unwrap();
    assert_eq!(plan.levels.len(), images);
    assert_eq!(graph.level(&NodeId::new(&spec, "c-00000", "default")), Some(images - 1));
    assert_eq!(graph.descendants(&NodeId::new(&spec, "c-09999", "default")).len(), images - 1);
}

#[test]
fn a_cycle_through_ten_thousand_images_is_found_and_told_briefly() {
    let (_dir, spec) = chain(10_000, true, true);
    let error = spec.unwrap_err();
    assert!(error.contains("error[cycle]: the images form a cycle: c-00000 -> c-00001 -> c-00002 -> c-00003 -> c-00004 -> (9991 more) -> c-09996 -> c-09997 -> c-09998 -> c-09999 -> c-00000 (10000 images)"), "{error}");
}
