//! Attachments in the release protocol: the documents of an image (SBOM, provenance,
//! signature) pushed as artifacts that refer to its manifest, **after its pin and before its
//! tags**, over two more narrow interfaces: [`ArtifactStore`] (the registry's blob uploads and
//! referrers API) and [`Attestor`] (what makes the documents once the image's digest is known).
//! Attaching is idempotent: what an image has already is not made or pushed again, which is
//! also how promotion re-attaches only what is missing.
//!
//! Where an artifact goes: with the referrers API, it is put by its own digest and the
//! registry lists it under the image; without it, under the tag scheme `sha256-<hex>.<suffix>`.
//! Signatures always go under the tag scheme, where cosign looks for them.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use super::publish::ManifestStore;
use super::ReleaseError;
use crate::registry::{Manifest, Referrer, RegistryError};
use crate::supply::attach::{fallback_tag, Artifact, Kind};

/// The registry's blobs and referrers.
pub trait ArtifactStore {
    /// Uploads a blob unless it is there; returns its digest.
    fn push_blob(&self, path: &str, bytes: &[u8]) -> impl Future<Output = Result<String, RegistryError>> + Send;
    /// The manifests that refer to `digest`, or `None` when the registry has no referrers API.
    fn referrers(
        &self,
        path: &str,
        digest: &str,
    ) -> impl Future<Output = Result<Option<Vec<Referrer>>, RegistryError>> + Send;
}

/// Makes an image's documents once its manifest is in the registry.
pub trait Attestor {
    /// The kinds this attestor makes (a signature only with a key).
    fn kinds(&self) -> Vec<Kind>;
    /// The artifacts of `node` (pushed to `repository`) whose manifest is `image`, of `kinds`.
    fn artifacts(
        &self,
        node: &str,
        repository: &str,
        image: &Manifest,
        kinds: &[Kind],
    ) -> impl Future<Output = Result<Vec<Artifact>, ReleaseError>> + Send;
}

/// One document set attached to an image, as the record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: Kind,
    /// Where it is: `host/path@sha256:...` (referrers) or `host/path:sha256-<hex>.<suffix>`.
    pub reference: String,
    /// The artifact manifest's digest.
    pub digest: String,
    /// The media types of its documents.
    pub media_types: Vec<String>,
    /// `attached` now, or `present` (it was there already).
    pub status: String,
}

/// Where artifacts of an image are found: by referrers, else by tag.
async fn where_attached(
    store: &(impl ManifestStore + ArtifactStore),
    path: &str,
    image: &str,
) -> Result<(bool, BTreeMap<Kind, String>), ReleaseError> {
    let mut found = BTreeMap::new();
    let referrers = store.referrers(path, image).await?;
    if let Some(referrers) = &referrers {
        for referrer in referrers {
            if let Some(kind) = Kind::of_artifact_type(&referrer.artifact_type) {
                found.insert(kind, referrer.digest.clone());
            }
        }
    }
    for kind in Kind::ALL {
        if found.contains_key(&kind) || (referrers.is_some() && kind != Kind::Signature) {
            continue;
        }
        if let Some(manifest) = store.manifest(path, &fallback_tag(image, kind)).await? {
            found.insert(kind, manifest.digest);
        }
    }
    Ok((referrers.is_some(), found))
}

/// The kinds of documents `image` has in the registry, with their artifact manifests' digests.
pub async fn attached(
    store: &(impl ManifestStore + ArtifactStore),
    path: &str,
    image: &str,
) -> Result<BTreeMap<Kind, String>, ReleaseError> {
    Ok(where_attached(store, path, image).await?.1)
}

/// Attaches what `attestor` makes and `image` lacks; lists every attachment of the kinds it makes.
pub async fn attach(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    node: &str,
    repository: &str,
    path: &str,
    image: &Manifest,
) -> Result<Vec<Attachment>, ReleaseError> {
    attach_kinds(store, attestor, node, repository, path, image, attestor.kinds()).await
}

/// Signs `image` (an image index, whose other documents are its platforms') when `attestor`
/// signs, unless it is signed already; lists its signature.
pub async fn sign(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    node: &str,
    repository: &str,
    path: &str,
    image: &Manifest,
) -> Result<Vec<Attachment>, ReleaseError> {
    let wanted: Vec<Kind> = attestor.kinds().into_iter().filter(|kind| *kind == Kind::Signature).collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    attach_kinds(store, attestor, node, repository, path, image, wanted).await
}

async fn attach_kinds(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    node: &str,
    repository: &str,
    path: &str,
    image: &Manifest,
    wanted: Vec<Kind>,
) -> Result<Vec<Attachment>, ReleaseError> {
    let (referrers_api, found) = where_attached(store, path, &image.digest).await?;
    let missing: Vec<Kind> = wanted.iter().copied().filter(|kind| !found.contains_key(kind)).collect();
    let made = if missing.is_empty() { vec![] } else { attestor.artifacts(node, repository, image, &missing).await? };
    let mut out = Vec::new();
    for kind in wanted {
        if let Some(digest) = found.get(&kind) {
            let reference = reference_of(repository, referrers_api, kind, &image.digest, digest);
            out.push(Attachment {
                kind,
                reference,
                digest: digest.clone(),
                media_types: vec![],
                status: "present".into(),
            });
        }
    }
    for artifact in made {
        store.push_blob(path, &artifact.config.bytes).await?;
        for layer in &artifact.layers {
            store.push_blob(path, &layer.bytes).await?;
        }
        let manifest = artifact.manifest(image);
        let by_digest = referrers_api && artifact.kind != Kind::Signature;
        let target = if by_digest { manifest.digest.clone() } else { fallback_tag(&image.digest, artifact.kind) };
        store.put_manifest(path, &target, &manifest).await?;
        out.push(Attachment {
            kind: artifact.kind,
            reference: reference_of(repository, referrers_api, artifact.kind, &image.digest, &manifest.digest),
            digest: manifest.digest,
            media_types: artifact.layers.iter().map(|l| l.media_type.clone()).collect(),
            status: "attached".into(),
        });
    }
    out.sort_by_key(|a| a.kind);
    Ok(out)
}

fn reference_of(repository: &str, referrers_api: bool, kind: Kind, image: &str, artifact: &str) -> String {
    if referrers_api && kind != Kind::Signature {
        format!("{repository}@{artifact}")
    } else {
        format!("{repository}:{}", fallback_tag(image, kind))
    }
}
