//! The image graph: one node per (image, variant, platform), edges from what an image is built
//! on to the image (in the same variant, for the same platform). Topological order, levels (what can build at the same time), ancestors and
//! descendants. Built from a validated [`Spec`], so it is known to be acyclic; [`find_cycle`]
//! is what validation uses to refuse a spec that is not.
//!
//! Pure: no I/O.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::platform::Platform;
use crate::spec::{Parent, Spec};

/// One image in one variant, for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub image: String,
    pub variant: String,
    pub platform: Platform,
    /// `image` in the default variant, `image@variant` in the others, and `/<arch>` after it
    /// in a stack of several platforms (`scipy-notebook@gpu/amd64`): how users name a node in
    /// plans, test names and filters.
    pub name: String,
    /// The name without the platform (`image` or `image@variant`): what names the node's
    /// repository, and the image index its platforms share.
    pub image_variant: String,
}

impl NodeId {
    /// The node of `image` in `variant` for the spec's default platform (the host's when the
    /// stack builds for it).
    pub fn new(spec: &Spec, image: &str, variant: &str) -> NodeId {
        NodeId::on(spec, image, variant, spec.default_platform())
    }

    /// The node of `image` in `variant` for `platform`.
    pub fn on(spec: &Spec, image: &str, variant: &str, platform: &Platform) -> NodeId {
        let image_variant =
            if variant == spec.default_variant() { image.to_string() } else { format!("{image}@{variant}") };
        NodeId {
            image: image.to_string(),
            variant: variant.to_string(),
            platform: platform.clone(),
            name: spec.on_platform(&image_variant, platform),
            image_variant,
        }
    }

    /// The node of another image in this node's variant and platform (its parent, a
    /// dependency).
    pub fn sibling(&self, spec: &Spec, image: &str) -> NodeId {
        NodeId::on(spec, image, &self.variant, &self.platform)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why one node comes before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// The image is built on this one (`FROM ${BASE_IMAGE}`).
    Parent,
    /// The image reads from this one (`depends_on`, e.g. `COPY --from`).
    Dependency,
}

#[derive(Debug, Clone)]
pub struct ImageGraph {
    graph: DiGraph<NodeId, EdgeKind>,
    index: HashMap<NodeId, NodeIndex>,
    /// All nodes, level by level, each level in the spec's order.
    order: Vec<NodeIndex>,
    /// Each node's position in `order`.
    position: HashMap<NodeIndex, usize>,
    level: HashMap<NodeIndex, usize>,
}

impl ImageGraph {
    /// The graph of a validated spec.
    pub fn new(spec: &Spec) -> ImageGraph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        let by_variant = spec.images_by_variant();
        let mut nodes = Vec::new();
        for (variant, images) in &by_variant {
            for platform in &spec.stack.platforms {
                for image in images.iter().filter(|image| image.platforms_in(&variant.name).contains(platform)) {
                    let id = NodeId::on(spec, &image.name, &variant.name, platform);
                    index.insert(id.clone(), graph.add_node(id.clone()));
                    nodes.push((*image, id));
                }
            }
        }
        for (image, id) in &nodes {
            let to = index[id];
            if let Some(Parent::Image(parent)) = image.parents.get(&id.variant) {
                graph.add_edge(index[&id.sibling(spec, parent)], to, EdgeKind::Parent);
            }
            for dependency in image.depends_on.iter().filter(|name| spec.images.contains_key(*name)) {
                graph.add_edge(index[&id.sibling(spec, dependency)], to, EdgeKind::Dependency);
            }
        }
        let all: Vec<NodeIndex> = graph.node_indices().collect();
        let (order, level) = levels_of(&graph, &all);
        let position = order.iter().enumerate().map(|(i, index)| (*index, i)).collect();
        ImageGraph { graph, index, order, position, level }
    }

    pub fn get(&self, id: &NodeId) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    pub fn node(&self, index: NodeIndex) -> &NodeId {
        &self.graph[index]
    }

    /// Every node in topological order (level by level, each level in the spec's order).
    pub fn topological_order(&self) -> impl Iterator<Item = &NodeId> {
        self.order.iter().map(|index| &self.graph[*index])
    }

    /// The level of a node in the whole graph: 0 for roots, else one more than its deepest
    /// dependency.
    pub fn level(&self, id: &NodeId) -> Option<usize> {
        self.get(id).map(|index| self.level[&index])
    }

    /// What `id` is built on or reads from, with the kind of edge.
    pub fn dependencies(&self, id: &NodeId) -> Vec<(&NodeId, EdgeKind)> {
        self.neighbours(id, Direction::Incoming)
    }

    /// What is built on or reads from `id`.
    pub fn dependents(&self, id: &NodeId) -> Vec<(&NodeId, EdgeKind)> {
        self.neighbours(id, Direction::Outgoing)
    }

    fn neighbours(&self, id: &NodeId, direction: Direction) -> Vec<(&NodeId, EdgeKind)> {
        let Some(index) = self.get(id) else {
            return Vec::new();
        };
        let mut out: Vec<_> = self
            .graph
            .edges_directed(index, direction)
            .map(|edge| {
                let other = if direction == Direction::Incoming { edge.source() } else { edge.target() };
                (&self.graph[other], *edge.weight())
            })
            .collect();
        out.sort_by_key(|(node, kind)| (*kind, self.position(node)));
        out
    }

    fn position(&self, id: &NodeId) -> usize {
        self.position[&self.index[id]]
    }

    /// Everything `id` is built on, directly or not, in topological order.
    pub fn ancestors(&self, id: &NodeId) -> Vec<&NodeId> {
        self.reachable(id, Direction::Incoming)
    }

    /// Everything built on `id`, directly or not, in topological order.
    pub fn descendants(&self, id: &NodeId) -> Vec<&NodeId> {
        self.reachable(id, Direction::Outgoing)
    }

    fn reachable(&self, id: &NodeId, direction: Direction) -> Vec<&NodeId> {
        let Some(start) = self.get(id) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(index) = stack.pop() {
            for next in self.graph.neighbors_directed(index, direction) {
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        self.order.iter().filter(|index| seen.contains(index)).map(|index| &self.graph[*index]).collect()
    }

    /// Groups `selected` into levels: a node's level is one more than that of its deepest
    /// dependency that is also selected. Nodes of one level can build at the same time.
    pub fn levels(&self, selected: &BTreeSet<NodeId>) -> Vec<Vec<&NodeId>> {
        let indices: Vec<NodeIndex> =
            self.order.iter().copied().filter(|i| selected.contains(&self.graph[*i])).collect();
        let (order, level) = levels_of(&self.graph, &indices);
        let mut out: Vec<Vec<&NodeId>> = Vec::new();
        for index in order {
            let depth = level[&index];
            if out.len() <= depth {
                out.resize_with(depth + 1, Vec::new);
            }
            out[depth].push(&self.graph[index]);
        }
        out
    }
}

/// Levels of `nodes` within `graph` (edges to nodes outside `nodes` are ignored), and the nodes
/// sorted by level, keeping their given order within a level. The graph must be acyclic.
///
/// Kahn's algorithm: each node and edge is seen once, whatever order `nodes` come in.
fn levels_of(graph: &DiGraph<NodeId, EdgeKind>, nodes: &[NodeIndex]) -> (Vec<NodeIndex>, HashMap<NodeIndex, usize>) {
    let slot: HashMap<NodeIndex, usize> = nodes.iter().enumerate().map(|(slot, index)| (*index, slot)).collect();
    // Per node, how many of its dependencies (among `nodes`) have no level yet.
    let mut waiting: Vec<usize> = nodes
        .iter()
        .map(|index| graph.neighbors_directed(*index, Direction::Incoming).filter(|d| slot.contains_key(d)).count())
        .collect();
    let mut depth = vec![0usize; nodes.len()];
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|i| waiting[*i] == 0).collect();
    let mut settled = 0;
    while let Some(here) = ready.pop_front() {
        settled += 1;
        for next in graph.neighbors_directed(nodes[here], Direction::Outgoing) {
            if let Some(&there) = slot.get(&next) {
                depth[there] = depth[there].max(depth[here] + 1);
                waiting[there] -= 1;
                if waiting[there] == 0 {
                    ready.push_back(there);
                }
            }
        }
    }
    assert_eq!(settled, nodes.len(), "the image graph has a cycle; validation should have refused it");
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    // A stable sort: the given order within a level.
    order.sort_by_key(|i| depth[*i]);
    let level = nodes.iter().zip(&depth).map(|(index, depth)| (*index, *depth)).collect();
    (order.into_iter().map(|i| nodes[i]).collect(), level)
}

/// A cycle among `edges` (`(image, what it is built on)`), as the list of names along it, the
/// first repeated at the end: `[a, b, c, a]` reads "a is built on b, b on c, c on a". The cycle
/// starts at the smallest name that lies on any cycle and follows the smallest names, so the
/// answer is stable.
///
/// Nothing here recurses: strongly connected components come from petgraph's Kosaraju (its
/// depth-first searches keep their own stacks), and the walk along the cycle is a loop, so a
/// chain of any length fits in the stack.
pub fn find_cycle(edges: &[(String, String)]) -> Option<Vec<String>> {
    let mut names: Vec<&str> = edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect();
    names.sort_unstable();
    names.dedup();
    // Nodes are added in name order, so a smaller index is a smaller name.
    let mut graph: DiGraph<&str, ()> = DiGraph::with_capacity(names.len(), edges.len());
    let mut index: HashMap<&str, NodeIndex> = HashMap::with_capacity(names.len());
    for name in &names {
        index.insert(name, graph.add_node(name));
    }
    for (from, to) in edges {
        graph.add_edge(index[from.as_str()], index[to.as_str()], ());
    }
    let component = petgraph::algo::kosaraju_scc(&graph)
        .into_iter()
        .filter(|component| component.len() > 1 || graph.contains_edge(component[0], component[0]))
        .min_by_key(|component| component.iter().min().copied())?;
    let mut inside = vec![false; graph.node_count()];
    for node in &component {
        inside[node.index()] = true;
    }
    let start = component.into_iter().min()?;
    walk_back(&graph, &inside, start).map(|path| path.iter().map(|i| graph[*i].to_string()).collect())
}

/// A depth-first walk inside one strongly connected component (`inside`), smallest names first,
/// from `start` back to it: the path, `start` at both ends.
fn walk_back(graph: &DiGraph<&str, ()>, inside: &[bool], start: NodeIndex) -> Option<Vec<NodeIndex>> {
    let successors = |node: NodeIndex| {
        let mut next: Vec<NodeIndex> = graph.neighbors(node).filter(|n| inside[n.index()]).collect();
        next.sort_unstable();
        next.dedup();
        next
    };
    let mut visited = vec![false; graph.node_count()];
    visited[start.index()] = true;
    // The path so far, each node with the successors it has left to try (in reverse order).
    let mut path: Vec<(NodeIndex, Vec<NodeIndex>)> = vec![(start, reversed(successors(start)))];
    while let Some((_, left)) = path.last_mut() {
        match left.pop() {
            Some(next) if next == start => {
                let mut cycle: Vec<NodeIndex> = path.iter().map(|(node, _)| *node).collect();
                cycle.push(start);
                return Some(cycle);
            }
            Some(next) if !visited[next.index()] => {
                visited[next.index()] = true;
                path.push((next, reversed(successors(next))));
            }
            Some(_) => {}
            None => {
                path.pop();
            }
        }
    }
    None
}

fn reversed(mut list: Vec<NodeIndex>) -> Vec<NodeIndex> {
    list.reverse();
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn edges(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[rstest]
    #[case::none(&[("b", "a"), ("c", "b")], None)]
    #[case::self_loop(&[("a", "a")], Some("a a"))]
    #[case::three(&[("c", "a"), ("a", "b"), ("b", "c"), ("d", "a")], Some("a b c a"))]
    #[case::smallest_first(&[("y", "z"), ("z", "y"), ("b", "c"), ("c", "b")], Some("b c b"))]
    fn finds_cycles(#[case] list: &[(&str, &str)], #[case] expected: Option<&str>) {
        let found = find_cycle(&edges(list)).map(|cycle| cycle.join(" "));
        assert_eq!(found.as_deref(), expected);
    }

    /// `n-000000` built on `n-000001`, and so on: a depth-first search from the smallest name
    /// walks the whole chain, which overflowed the stack when the search recursed.
    fn long_chain(images: usize, closed: bool) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            (0..images - 1).map(|i| (format!("n-{i:06}"), format!("n-{:06}", i + 1))).collect();
        if closed {
            out.push((format!("n-{:06}", images - 1), "n-000000".to_string()));
        }
        out
    }

    #[rstest]
    #[case::open(false, None)]
    #[case::closed(true, Some(100_001))]
    fn a_hundred_thousand_images_in_a_line_need_no_recursion(#[case] closed: bool, #[case] length: Option<usize>) {
        let found = find_cycle(&long_chain(100_000, closed));
        assert_eq!(found.as_ref().map(Vec::len), length);
        if let Some(cycle) = found {
            assert_eq!((cycle[0].as_str(), cycle[1].as_str()), ("n-000000", "n-000001"));
            assert_eq!(cycle.last(), cycle.first());
        }
    }
}
