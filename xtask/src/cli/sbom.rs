//! `cargo xtask sbom`: writes each built image's SBOM (CycloneDX 1.5 and SPDX 2.3 JSON) and
//! provenance (in-toto, SLSA v1) into `target/xtask/sbom/`, read from inside the image. The
//! work is [`crate::supply::run`]; this module reads the flags and prints.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::plan::Selector;
use super::Cli;
use crate::engine::Engine;
use crate::error::Error;
use crate::graph::{ImageGraph, NodeId};
use crate::registry::Registry;
use crate::supply::sbom::Format;

#[derive(Debug, Args)]
pub struct Sbom {
    #[command(flatten)]
    pub selector: Selector,
    /// Only this format [default: both]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where the files go [default: target/xtask/sbom]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl Sbom {
    pub async fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let (spec, plan, _) = self.selector.plan(cli)?;
        let graph = ImageGraph::new(&spec);
        let nodes: Vec<NodeId> = plan.images.iter().map(|planned| planned.id.clone()).collect();
        let dir = self.out.clone().unwrap_or_else(|| crate::paths::work_dir(&spec).join("sbom"));
        let formats = match self.format {
            Some(format) => vec![format],
            None => vec![Format::Cyclonedx, Format::Spdx],
        };
        let engine = Engine::connect().await?;
        let images =
            crate::tags::built_images(&engine, &spec, &nodes).await?.map_err(crate::supply::SupplyError::from)?;
        let registry = (!spec.stack.registry.is_empty()).then(|| {
            let credentials = crate::credentials::lookup(&spec.stack.registry);
            Arc::new(Registry::new(&spec.stack.registry, credentials).with_retries(0))
        });
        let written = crate::supply::run::write_all(&engine, &spec, &graph, &images, registry, &dir, &formats).await?;
        for image in &written {
            if let Some(note) = &image.note {
                eprintln!("note: {note}");
            }
            for file in &image.files {
                writeln!(out, "{}: wrote {} (subject {})", image.node, file.display(), image.digest)?;
            }
        }
        Ok(())
    }
}
