//! OCI image indexes: one tag for the platforms of an image. Pure: the index over platform
//! manifests (in the stack's platform order, so the same manifests always make the same index
//! and digest), and what a platform manifest's configuration says it runs on, to check it
//! before the index claims it.

use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::registry::{digest_of, Manifest};

/// The media type of the index `release` writes.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: usize,
    platform: PlatformField<'a>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct PlatformField<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

/// The image index over `entries` (each platform with its manifest, as the registry stores it).
pub fn image_index(entries: &[(&Platform, &Manifest)]) -> Manifest {
    let manifests = entries
        .iter()
        .map(|(platform, manifest)| Descriptor {
            media_type: &manifest.media_type,
            digest: &manifest.digest,
            size: manifest.bytes.len(),
            platform: PlatformField {
                architecture: &platform.architecture,
                os: &platform.os,
                variant: platform.variant.as_deref(),
            },
        })
        .collect();
    let index = Index { schema_version: 2, media_type: INDEX_MEDIA_TYPE, manifests };
    let bytes = serde_json::to_vec(&index).expect("an index serializes");
    Manifest { media_type: INDEX_MEDIA_TYPE.to_string(), digest: digest_of(&bytes), bytes }
}

/// The digest of the configuration a single-platform manifest names.
pub fn config_digest(manifest: &Manifest) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(&manifest.bytes).ok()?;
    json.get("config")?.get("digest")?.as_str().map(str::to_string)
}

/// The platform an image configuration says it runs on (`linux/arm64`).
pub fn config_platform(config: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(config).ok()?;
    let field = |key: &str| json.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let mut text = format!("{}/{}", field("os")?, field("architecture")?);
    if let Some(variant) = field("variant") {
        text.push_str(&format!("/{variant}"));
    }
    Some(text)
}

/// The platforms an index lists, as `os/architecture[/variant]`, with their digests.
pub fn index_platforms(index: &[u8]) -> Vec<(String, String)> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(index) else { return Vec::new() };
    let manifests = json.get("manifests").and_then(|m| m.as_array()).cloned().unwrap_or_default();
    manifests
        .iter()
        .filter_map(|m| {
            let platform = config_platform(&serde_json::to_vec(m.get("platform")?).ok()?)?;
            Some((platform, m.get("digest")?.as_str()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MANIFEST_TYPES;

    fn manifest(config: &str) -> Manifest {
        let bytes = format!("{{\"schemaVersion\":2,\"config\":{{\"digest\":\"{config}\"}}}}").into_bytes();
        Manifest { media_type: MANIFEST_TYPES[0].into(), digest: digest_of(&bytes), bytes }
    }

    #[test]
    fn an_index_lists_each_platform_manifest_with_its_digest_size_and_platform() {
        let (amd64, arm64) = (Platform::parse("linux/amd64").unwrap(), Platform::parse("linux/arm64").unwrap());
        let (a, b) = (manifest("sha256:a"), manifest("sha256:b"));
        let index = image_index(&[(&amd64, &a), (&arm64, &b)]);
        assert_eq!(index.media_type, INDEX_MEDIA_TYPE);
        assert_eq!(index.digest, digest_of(&index.bytes));
        let json: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["manifests"][1]["digest"], b.digest.as_str());
        assert_eq!(json["manifests"][1]["size"], b.bytes.len());
        assert_eq!(json["manifests"][1]["mediaType"], MANIFEST_TYPES[0]);
        assert_eq!(
            index_platforms(&index.bytes),
            [("linux/amd64".to_string(), a.digest.clone()), ("linux/arm64".to_string(), b.digest.clone())]
        );
        assert_eq!(image_index(&[(&amd64, &a), (&arm64, &b)]), index, "the same manifests, the same index");
    }

    #[test]
    fn reads_what_a_configuration_says_it_runs_on() {
        assert_eq!(config_digest(&manifest("sha256:c")).as_deref(), Some("sha256:c"));
        assert_eq!(config_platform(br#"{"architecture":"arm64","os":"linux"}"#).as_deref(), Some("linux/arm64"));
        assert_eq!(
            config_platform(br#"{"architecture":"arm","os":"linux","variant":"v7"}"#).as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(config_platform(b"{}"), None);
    }
}
