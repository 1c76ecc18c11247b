//! How documents travel with an image in a registry: as OCI artifacts, each an image manifest
//! whose `subject` is the image's manifest and whose layers are the documents (OCI 1.1). A
//! registry with the referrers API (`GET /v2/<name>/referrers/<digest>`) lists them by the
//! image's digest; one without it (distribution 2.8, Docker Hub's older API) finds them under
//! the tag scheme cosign uses, `sha256-<hex>.sbom`, `.att` and `.sig`. Pure: the manifests and
//! tag names; `registry.rs` moves the bytes.

use serde_json::{json, Value};

use crate::registry::{digest_of, Manifest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI 1.1's empty configuration (`{}`), for artifacts that need none.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The configuration cosign gives signature manifests.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// What a provenance artifact is (its `artifactType`).
pub const PROVENANCE_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";

/// The kinds of documents attached to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The SBOM: CycloneDX, and SPDX beside it.
    Sbom,
    /// The provenance attestation (a DSSE envelope around an in-toto statement).
    Provenance,
    /// cosign's image signature.
    Signature,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Sbom, Kind::Provenance, Kind::Signature];

    /// The suffix of the tag scheme (cosign's).
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Sbom => "sbom",
            Kind::Provenance => "att",
            Kind::Signature => "sig",
        }
    }

    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Sbom => super::sbom::CYCLONEDX_MEDIA_TYPE,
            Kind::Provenance => PROVENANCE_ARTIFACT_TYPE,
            Kind::Signature => super::sign::SIMPLE_SIGNING_MEDIA_TYPE,
        }
    }

    /// The kind an artifact type names.
    pub fn of_artifact_type(artifact_type: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.artifact_type() == artifact_type)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Sbom => "sbom",
            Kind::Provenance => "provenance",
            Kind::Signature => "signature",
        }
    }
}

/// The tag an attachment of image `digest` has under the tag scheme: `sha256-<hex>.<suffix>`.
pub fn fallback_tag(digest: &str, kind: Kind) -> String {
    format!("{}.{}", digest.replacen(':', "-", 1), kind.suffix())
}

/// A blob: its media type, bytes and optional annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub annotations: Vec<(String, String)>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob { media_type: media_type.into(), bytes, annotations: vec![] }
    }

    pub fn digest(&self) -> String {
        digest_of(&self.bytes)
    }

    fn descriptor(&self) -> Value {
        let mut out = json!({"mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len()});
        if !self.annotations.is_empty() {
            let map: serde_json::Map<String, Value> =
                self.annotations.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            out["annotations"] = Value::Object(map);
        }
        out
    }
}

/// A document set to attach to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub kind: Kind,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

impl Artifact {
    /// An artifact with OCI 1.1's empty configuration.
    pub fn new(kind: Kind, layers: Vec<Blob>) -> Artifact {
        Artifact { kind, config: Blob::new(EMPTY_CONFIG_MEDIA_TYPE, b"{}".to_vec()), layers }
    }

    /// cosign's signature manifest: a minimal image configuration, one payload layer per signature.
    pub fn signature(layers: Vec<Blob>) -> Artifact {
        let diff_ids: Vec<String> = layers.iter().map(Blob::digest).collect();
        let config = json!({
            "architecture": "", "os": "", "config": {},
            "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = Blob::new(IMAGE_CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).unwrap_or_default());
        Artifact { kind: Kind::Signature, config, layers }
    }

    /// The artifact's manifest, referring to `subject` (the image's manifest).
    pub fn manifest(&self, subject: &Manifest) -> Manifest {
        let mut value = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": self.layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.bytes.len()},
        });
        if self.kind != Kind::Signature {
            value["artifactType"] = json!(self.kind.artifact_type());
        }
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        Manifest { media_type: OCI_MANIFEST.into(), digest: digest_of(&bytes), bytes }
    }
}

/// One layer of an artifact manifest read back: media type, digest, annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub annotations: serde_json::Map<String, Value>,
}

/// The layers of an artifact manifest, and the digest its `subject` names.
pub fn read_manifest(manifest: &Manifest) -> Option<(Vec<Layer>, Option<String>)> {
    let value: Value = serde_json::from_slice(&manifest.bytes).ok()?;
    let layers = value["layers"]
        .as_array()?
        .iter()
        .map(|layer| Layer {
            media_type: layer["mediaType"].as_str().unwrap_or_default().to_string(),
            digest: layer["digest"].as_str().unwrap_or_default().to_string(),
            annotations: layer["annotations"].as_object().cloned().unwrap_or_default(),
        })
        .collect();
    Some((layers, value["subject"]["digest"].as_str().map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Manifest {
        let bytes = br#"{"schemaVersion":2}"#.to_vec();
        Manifest { media_type: OCI_MANIFEST.into(), digest: digest_of(&bytes), bytes }
    }

    #[test]
    fn an_artifact_refers_to_its_image_and_lists_its_documents() {
        let sbom = Artifact::new(Kind::Sbom, vec![Blob::new(super::super::sbom::CYCLONEDX_MEDIA_TYPE, b"{}".to_vec())]);
        let manifest = sbom.manifest(&image());
        let value: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(value["artifactType"], "application/vnd.cyclonedx+json");
        assert_eq!(value["subject"]["digest"], image().digest);
        assert_eq!(value["config"]["mediaType"], EMPTY_CONFIG_MEDIA_TYPE);
        assert_eq!(value["config"]["digest"], digest_of(b"{}"));
        let (layers, subject) = read_manifest(&manifest).unwrap();
        assert_eq!(subject, Some(image().digest));
        assert_eq!(layers[0].digest, digest_of(b"{}"));
    }

    #[test]
    fn signatures_are_stored_as_cosign_stores_them() {
        let mut layer = Blob::new(super::super::sign::SIMPLE_SIGNING_MEDIA_TYPE, b"payload".to_vec());
        layer.annotations.push((super::super::sign::SIGNATURE_ANNOTATION.into(), "MEUC".into()));
        let manifest = Artifact::signature(vec![layer]).manifest(&image());
        let value: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert!(value.get("artifactType").is_none());
        assert_eq!(value["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        assert_eq!(value["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"], "MEUC");
        assert_eq!(fallback_tag("sha256:abc", Kind::Signature), "sha256-abc.sig");
        assert_eq!(fallback_tag("sha256:abc", Kind::Provenance), "sha256-abc.att");
    }
}
