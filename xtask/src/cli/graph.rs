//! `cargo xtask graph`: the whole stack as Graphviz dot or Mermaid.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::Cli;
use crate::graph::ImageGraph;
use crate::render;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub struct Graph {
    /// Output format
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
}

impl Graph {
    pub fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), crate::error::Error> {
        let spec = cli.load_spec()?;
        let graph = ImageGraph::new(&spec);
        let text = match self.format {
            GraphFormat::Mermaid => render::graph::mermaid(&spec, &graph),
            GraphFormat::Dot => render::graph::dot(&spec, &graph),
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}
