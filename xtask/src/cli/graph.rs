//! `cargo xtask graph`: the whole stack as Graphviz dot or Mermaid.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::Cli;
use crate::graph::ImageGraph;
use crate::platform::Platform;
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
    /// Draw this platform (`linux/arm64`; repeatable) [default: the host's, when the stack
    /// builds for it, else the stack's first]
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = Platform::parse, conflicts_with = "all_platforms")]
    pub platforms: Vec<Platform>,
    /// Draw every platform of the stack
    #[arg(long)]
    pub all_platforms: bool,
}

impl Graph {
    pub fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), crate::error::Error> {
        let spec = cli.load_spec()?;
        let graph = ImageGraph::new(&spec);
        let choice = super::plan::platforms_choice(&self.platforms, self.all_platforms);
        let platforms = crate::plan::select_platforms(&spec, &choice)?;
        let text = match self.format {
            GraphFormat::Mermaid => render::graph::mermaid(&spec, &graph, &platforms),
            GraphFormat::Dot => render::graph::dot(&spec, &graph, &platforms),
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}
