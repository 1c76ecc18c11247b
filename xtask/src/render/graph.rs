//! The whole stack, variants included, as Graphviz dot or a Mermaid flowchart, for some of its
//! platforms (each node of a stack of several platforms carries its architecture). Solid arrows
//! go from a parent to the image built on it, dashed ones from a `depends_on` image to its
//! reader; bases are drawn once, outside the variants.

use crate::graph::{EdgeKind, ImageGraph, NodeId};
use crate::platform::Platform;
use crate::spec::{Parent, Spec};

fn node_key(id: &NodeId) -> String {
    if id.name.ends_with(&format!("/{}", id.platform.suffix())) {
        format!("{}__{}__{}", id.variant, id.image, id.platform.suffix())
    } else {
        format!("{}__{}", id.variant, id.image)
    }
}

/// The nodes to draw, in topological order.
fn drawn<'g>(graph: &'g ImageGraph, platforms: &'g [Platform]) -> impl Iterator<Item = &'g NodeId> + 'g {
    graph.topological_order().filter(move |id| platforms.contains(&id.platform))
}

fn base_key(name: &str) -> String {
    format!("base__{name}")
}

/// `name` made safe as a Mermaid identifier.
fn mermaid_id(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Edges into each node: from a base (parent) or from another node.
fn edges(spec: &Spec, graph: &ImageGraph, platforms: &[Platform]) -> Vec<(String, String, EdgeKind)> {
    let mut out = Vec::new();
    for id in drawn(graph, platforms) {
        let image = &spec.images[&id.image];
        if let Some(Parent::Base(base)) = image.parents.get(&id.variant) {
            out.push((base_key(base), node_key(id), EdgeKind::Parent));
        }
        for dependency in image.depends_on.iter().filter(|d| spec.bases.contains_key(*d)) {
            out.push((base_key(dependency), node_key(id), EdgeKind::Dependency));
        }
        for (from, kind) in graph.dependencies(id) {
            out.push((node_key(from), node_key(id), kind));
        }
    }
    out
}

fn variant_title(spec: &Spec, variant: &str) -> String {
    let suffix = spec.variant(variant).map(|v| v.suffix.as_str()).unwrap_or_default();
    if suffix.is_empty() {
        format!("variant {variant}")
    } else {
        format!("variant {variant} ({suffix})")
    }
}

pub fn mermaid(spec: &Spec, graph: &ImageGraph, platforms: &[Platform]) -> String {
    let mut out = String::from("flowchart TD\n");
    for base in spec.bases.values() {
        out.push_str(&format!("  {}[(\"{}<br/>{}\")]\n", mermaid_id(&base_key(&base.name)), base.name, base.reference));
    }
    let many = spec.variants.len() > 1;
    for variant in &spec.variants {
        let indent = if many { "    " } else { "  " };
        if many {
            out.push_str(&format!(
                "  subgraph {}[\"{}\"]\n",
                mermaid_id(&format!("variant__{}", variant.name)),
                variant_title(spec, &variant.name)
            ));
        }
        for id in drawn(graph, platforms).filter(|id| id.variant == variant.name) {
            out.push_str(&format!("{indent}{}[\"{}\"]\n", mermaid_id(&node_key(id)), id.name));
        }
        if many {
            out.push_str("  end\n");
        }
    }
    for (from, to, kind) in edges(spec, graph, platforms) {
        let arrow = if kind == EdgeKind::Parent { "-->" } else { "-.->" };
        out.push_str(&format!("  {} {arrow} {}\n", mermaid_id(&from), mermaid_id(&to)));
    }
    out
}

pub fn dot(spec: &Spec, graph: &ImageGraph, platforms: &[Platform]) -> String {
    let mut out = String::from("digraph stack {\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n");
    for base in spec.bases.values() {
        out.push_str(&format!(
            "  \"{}\" [shape=cylinder, label=\"{}\\n{}\"];\n",
            base_key(&base.name),
            base.name,
            base.reference
        ));
    }
    for variant in &spec.variants {
        out.push_str(&format!(
            "  subgraph \"cluster_{}\" {{\n    label=\"{}\";\n",
            variant.name,
            variant_title(spec, &variant.name)
        ));
        for id in drawn(graph, platforms).filter(|id| id.variant == variant.name) {
            out.push_str(&format!("    \"{}\" [label=\"{}\"];\n", node_key(id), id.name));
        }
        out.push_str("  }\n");
    }
    for (from, to, kind) in edges(spec, graph, platforms) {
        let style = if kind == EdgeKind::Parent { "" } else { " [style=dashed]" };
        out.push_str(&format!("  \"{from}\" -> \"{to}\"{style};\n"));
    }
    out.push_str("}\n");
    out
}
