//! Turns plans and graphs into what people and machines read: text, JSON, a GitHub Actions
//! matrix, Graphviz dot and Mermaid. Pure: builds strings; the commands write them.

pub mod graph;
pub mod plan;
