//! The library behind `cargo xtask`: the image spec, the graph, change detection and planning
//! (a pure core), and the renderers and commands built on them: build, tag, release, docs.

pub mod bases;
pub mod build;
pub mod cache;
pub mod cli;
pub mod context;
pub mod credentials;
pub mod diagnostic;
pub mod dockerfile;
pub mod docs;
pub mod engine;
pub mod error;
pub mod fixture;
pub mod git;
pub mod graph;
pub mod hints;
pub mod identity;
pub mod labels;
pub mod paths;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod refresh;
pub mod registry;
pub mod release;
pub mod render;
pub mod scheduler;
pub mod signals;
pub mod spec;
pub mod supply;
pub mod tags;
