//! `cargo xtask sbom`, the library side: for each built image, the digest its documents name
//! (its pin's manifest in the registry when it was pushed there, else the engine's record of a
//! push, else its image ID, said so), then its inventory read inside it, its SBOMs and its
//! provenance, written as files. An interrupt removes the throwaway containers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::collect;
use super::sbom::Format;
use super::SupplyError;
use crate::engine::{label, Engine, ImageInspect};
use crate::graph::{ImageGraph, NodeId};
use crate::labels;
use crate::registry::Registry;
use crate::spec::Spec;

/// What was written for one image.
#[derive(Debug, Clone)]
pub struct Written {
    pub node: String,
    /// What the documents name as their subject.
    pub digest: String,
    /// Set when the image is in no registry: the subject is its image ID.
    pub note: Option<String>,
    pub files: Vec<PathBuf>,
}

/// The manifest digest of `id`'s pin in `registry`, or where the engine pushed it, or its ID.
async fn subject_digest(
    spec: &Spec,
    id: &NodeId,
    image: &ImageInspect,
    registry: Option<Arc<Registry>>,
) -> (String, Option<String>) {
    let repository = spec.repository(&id.image, &id.variant);
    if let Some(registry) = registry {
        let (_, path) = crate::release::repository(spec, id, &registry.host);
        let pin = crate::identity::pin_tag(label(image, labels::INPUTS).unwrap_or_default());
        let asked = tokio::task::spawn_blocking(move || registry.manifest_exists(&path, &pin)).await;
        if let Ok(Ok(Some(digest))) = asked {
            if !digest.is_empty() {
                return (digest, None);
            }
        }
    }
    if let Some(digest) = crate::engine::repo_digest(image, &repository) {
        return (digest, None);
    }
    let id_digest = image.id.clone().unwrap_or_default();
    let note = format!(
        "{}: its pin is in no registry: the documents name its image ID; `release` makes them again with the digest it pushes",
        id.name
    );
    (id_digest, Some(note))
}

/// Writes the documents of every image in `images` into `dir`.
pub async fn write_all(
    engine: &Engine,
    spec: &Spec,
    graph: &ImageGraph,
    images: &[(NodeId, ImageInspect)],
    registry: Option<Arc<Registry>>,
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<Written>, SupplyError> {
    let work = async {
        let mut out = Vec::new();
        for (id, image) in images {
            let (digest, note) = subject_digest(spec, id, image, registry.clone()).await;
            let repository = spec.repository(&id.image, &id.variant);
            let documents = collect::documents(engine, spec, graph, id, image, &repository, &digest).await?;
            let stem = crate::docs::node_stem(spec, id);
            let files = super::files::write(dir, &stem, &documents, formats)?;
            out.push(Written { node: id.name.clone(), digest, note, files });
        }
        Ok::<_, SupplyError>(out)
    };
    tokio::select! {
        result = work => result,
        _ = crate::signals::interrupted() => {
            engine.remove_probes().await?;
            Err(SupplyError::Interrupted)
        }
    }
}
