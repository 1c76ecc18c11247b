//! The image graph: one node per (image, variant), edges from what an image is built on to the
//! image. Topological order, levels (what can build at the same time), ancestors and
//! descendants. Built from a validated [`Spec`], so it is known to be acyclic; [`find_cycle`]
//! is what validation uses to refuse a spec that is not.
//!
//! Pure: no I/O.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::spec::{Parent, Spec};

/// One image in one variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub image: String,
    pub variant: String,
    /// `image` in the default variant, `image@variant` in the others: how users name a node in
    /// plans, test names and filters.
    pub name: String,
}

impl NodeId {
    pub fn new(spec: &Spec, image: &str, variant: &str) -> NodeId {
        let name = if variant == spec.default_variant() { image.to_string() } else { format!("{image}@{variant}") };
        NodeId { image: image.to_string(), variant: variant.to_string(), name }
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
        for variant in &spec.variants {
            for image in spec.images.values().filter(|image| image.variants.contains(&variant.name)) {
                let id = NodeId::new(spec, &image.name, &variant.name);
                index.insert(id.clone(), graph.add_node(id));
            }
        }
        for variant in &spec.variants {
            for image in spec.images.values().filter(|image| image.variants.contains(&variant.name)) {
                let to = index[&NodeId::new(spec, &image.name, &variant.name)];
                if let Some(Parent::Image(parent)) = image.parents.get(&variant.name) {
                    graph.add_edge(index[&NodeId::new(spec, parent, &variant.name)], to, EdgeKind::Parent);
                }
                for dependency in image.depends_on.iter().filter(|name| spec.images.contains_key(*name)) {
                    graph.add_edge(index[&NodeId::new(spec, dependency, &variant.name)], to, EdgeKind::Dependency);
                }
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
fn levels_of(graph: &DiGraph<NodeId, EdgeKind>, nodes: &[NodeIndex]) -> (Vec<NodeIndex>, HashMap<NodeIndex, usize>) {
    let member: BTreeSet<NodeIndex> = nodes.iter().copied().collect();
    let mut level: HashMap<NodeIndex, usize> = HashMap::new();
    let mut remaining: Vec<NodeIndex> = nodes.to_vec();
    // Repeated passes keep the given order; each pass settles at least one node of an acyclic graph.
    while !remaining.is_empty() {
        let before = remaining.len();
        remaining.retain(|index| {
            let deps: Vec<NodeIndex> =
                graph.neighbors_directed(*index, Direction::Incoming).filter(|d| member.contains(d)).collect();
            if deps.iter().all(|d| level.contains_key(d)) {
                let depth = deps.iter().map(|d| level[d] + 1).max().unwrap_or(0);
                level.insert(*index, depth);
                false
            } else {
                true
            }
        });
        assert!(remaining.len() < before, "the image graph has a cycle; validation should have refused it");
    }
    let mut order: Vec<NodeIndex> = nodes.to_vec();
    order.sort_by_key(|index| level[index]);
    (order, level)
}

/// A cycle among `edges` (`(image, what it is built on)`), as the list of names along it, the
/// first repeated at the end: `[a, b, c, a]` reads "a is built on b, b on c, c on a". The cycle
/// found first goes through the smallest name, so the answer is stable.
pub fn find_cycle(edges: &[(String, String)]) -> Option<Vec<String>> {
    let mut graph: DiGraph<&str, ()> = DiGraph::new();
    let mut index: HashMap<&str, NodeIndex> = HashMap::new();
    let mut names: Vec<&str> = edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect();
    names.sort();
    names.dedup();
    for name in names {
        index.insert(name, graph.add_node(name));
    }
    for (from, to) in edges {
        graph.add_edge(index[from.as_str()], index[to.as_str()], ());
    }
    let mut components: Vec<Vec<NodeIndex>> = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|component| component.len() > 1 || graph.contains_edge(component[0], component[0]))
        .collect();
    for component in &mut components {
        component.sort_by_key(|i| graph[*i]);
    }
    components.sort_by_key(|component| graph[component[0]]);
    let component = components.first()?;
    let start = component[0];
    // Depth-first search inside the component, smallest names first, back to `start`.
    let mut path = vec![start];
    let mut visited = BTreeSet::from([start]);
    fn walk(
        graph: &DiGraph<&str, ()>,
        component: &[NodeIndex],
        start: NodeIndex,
        path: &mut Vec<NodeIndex>,
        visited: &mut BTreeSet<NodeIndex>,
    ) -> bool {
        let here = *path.last().expect("path starts non-empty");
        let mut next: Vec<NodeIndex> = graph.neighbors(here).filter(|n| component.contains(n)).collect();
        next.sort_by_key(|i| graph[*i]);
        next.dedup();
        for n in next {
            if n == start {
                path.push(n);
                return true;
            }
            if visited.insert(n) {
                path.push(n);
                if walk(graph, component, start, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(&graph, component, start, &mut path, &mut visited)
        .then(|| path.iter().map(|i| graph[*i].to_string()).collect())
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
}
