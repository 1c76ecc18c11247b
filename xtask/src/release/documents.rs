//! The [`Attestor`] of a real release: an image's SBOM and provenance are read from the files
//! `cargo xtask sbom` wrote (when their subject is the digest just pushed), else made from the
//! image on this engine; its signature is made with the release key, when one is given.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use p256::ecdsa::SigningKey;

use super::attach::Attestor;
use super::ReleaseError;
use crate::engine::Engine;
use crate::graph::{ImageGraph, NodeId};
use crate::registry::Manifest;
use crate::spec::Spec;
use crate::supply::attach::{Artifact, Blob, Kind};
use crate::supply::collect::{self, Documents};
use crate::supply::{files, provenance, sbom, sign};

pub struct StackAttestor {
    pub spec: Arc<Spec>,
    pub graph: Arc<ImageGraph>,
    /// The engine, when this release has one (the images it pushes, or that `tag` tagged here).
    pub engine: Option<Engine>,
    /// Node to the image ID it releases.
    pub images: BTreeMap<String, String>,
    /// Folders of documents `cargo xtask sbom` wrote.
    pub dirs: Vec<PathBuf>,
    pub key: Option<SigningKey>,
}

impl StackAttestor {
    fn node(&self, name: &str) -> Option<NodeId> {
        self.graph.topological_order().find(|id| id.name == name).cloned()
    }

    async fn documents(&self, node: &str, repository: &str, image: &Manifest) -> Result<Documents, ReleaseError> {
        let failed = |reason: String| ReleaseError::Attest { node: node.into(), reason };
        let id = self.node(node).ok_or_else(|| failed("not a node of the stack".into()))?;
        let stem = crate::docs::node_stem(&self.spec, &id);
        if let Some(found) = files::read(&self.dirs, &stem, &image.digest) {
            return Ok(found);
        }
        let (Some(engine), Some(image_id)) = (&self.engine, self.images.get(node)) else {
            return Err(failed(format!(
                "no documents for {} in {} and the image is not on this engine",
                image.digest,
                self.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        };
        let inspect = engine
            .image(image_id)
            .await
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed(format!("image {image_id} is no longer on this engine")))?;
        collect::documents(engine, &self.spec, &self.graph, &id, &inspect, repository, &image.digest)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

impl Attestor for StackAttestor {
    fn kinds(&self) -> Vec<Kind> {
        let mut kinds = vec![Kind::Sbom, Kind::Provenance];
        if self.key.is_some() {
            kinds.push(Kind::Signature);
        }
        kinds
    }

    async fn artifacts(
        &self,
        node: &str,
        repository: &str,
        image: &Manifest,
        kinds: &[Kind],
    ) -> Result<Vec<Artifact>, ReleaseError> {
        let needs_documents = kinds.iter().any(|k| *k != Kind::Signature);
        let documents = if needs_documents { Some(self.documents(node, repository, image).await?) } else { None };
        let mut out = Vec::new();
        for kind in kinds {
            match (kind, &documents) {
                (Kind::Sbom, Some(d)) => out.push(Artifact::new(
                    Kind::Sbom,
                    vec![
                        Blob::new(sbom::CYCLONEDX_MEDIA_TYPE, d.cyclonedx.clone().into_bytes()),
                        Blob::new(sbom::SPDX_MEDIA_TYPE, d.spdx.clone().into_bytes()),
                    ],
                )),
                (Kind::Provenance, Some(d)) => {
                    let statement = serde_json::to_vec(&d.provenance).unwrap_or_default();
                    let envelope = sign::envelope(provenance::STATEMENT_MEDIA_TYPE, &statement, self.key.as_ref());
                    let mut blob = Blob::new(sign::DSSE_MEDIA_TYPE, serde_json::to_vec(&envelope).unwrap_or_default());
                    blob.annotations.push(("predicateType".into(), provenance::PREDICATE_TYPE.into()));
                    out.push(Artifact::new(Kind::Provenance, vec![blob]));
                }
                (Kind::Signature, _) => {
                    if let Some(key) = &self.key {
                        let payload = sign::payload(repository, &image.digest);
                        let mut blob = Blob::new(sign::SIMPLE_SIGNING_MEDIA_TYPE, payload.clone());
                        blob.annotations.push((sign::SIGNATURE_ANNOTATION.into(), sign::sign(key, &payload)));
                        out.push(Artifact::signature(vec![blob]));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}
