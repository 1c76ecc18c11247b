//! `cargo xtask verify REF --key PUB`: checks, through the registry's API alone (nothing is
//! pulled), that the manifest a reference names is signed with the key, as cosign stores
//! signatures (`sha256-<hex>.sig`): a signature must verify over its payload, and the payload
//! must name this repository and exactly this manifest's digest. Also says which documents the
//! image has (SBOM, provenance) and whether the provenance is signed with the same key.

use p256::ecdsa::VerifyingKey;

use super::attach::{fallback_tag, read_manifest, Kind};
use super::sign::{self, PayloadMismatch};
use crate::error::ExitCode;
use crate::registry::{Registry, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{reference}` is not an image reference in a registry: {why}\n  hint: name it as `host[:port]/path:tag` or `host[:port]/path@sha256:...`")]
    BadReference { reference: String, why: String },
    #[error("{reference}: no such manifest in the registry\n  hint: check the tag (`cargo xtask release` records what it pushed in target/xtask/release.json)")]
    NotFound { reference: String },
    #[error("{reference}: the registry served a manifest whose digest is {actual}, not {expected}: it was altered")]
    DigestMismatch { reference: String, expected: String, actual: String },
    #[error("{reference} ({digest}) has no signature (no `{tag}`): it was never signed, or its manifest was changed after signing\n  hint: release with `--sign-key`, and verify the digest `release.json` records")]
    NoSignature { reference: String, digest: String, tag: String },
    #[error("{reference} ({digest}): none of its {count} signature(s) verifies with the key {key}: it was signed with another key, or the signature was altered")]
    BadSignature { reference: String, digest: String, count: usize, key: String },
    #[error("{reference} ({digest}): a signature made with this key vouches for {signed} instead: the signature was copied from another image, or the manifest was replaced")]
    WrongImage { reference: String, digest: String, signed: String },
    #[error(transparent)]
    Key(#[from] sign::KeyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl VerifyError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            VerifyError::BadReference { .. } | VerifyError::Key(_) => ExitCode::Usage,
            VerifyError::Registry(_) => ExitCode::Registry,
            VerifyError::NotFound { .. }
            | VerifyError::DigestMismatch { .. }
            | VerifyError::NoSignature { .. }
            | VerifyError::BadSignature { .. }
            | VerifyError::WrongImage { .. } => ExitCode::Unverified,
        }
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `host/path`.
    pub repository: String,
    pub digest: String,
    /// Signatures that verify with the key.
    pub signatures: usize,
    /// The documents attached, with where they are.
    pub attachments: Vec<(Kind, String)>,
    /// Whether the provenance attestation is signed with the key (`None`: no provenance).
    pub provenance_signed: Option<bool>,
}

/// `(registry host, path, tag or digest)` of `reference`.
pub fn split(reference: &str) -> Result<(String, String, String), VerifyError> {
    let bad = |why: String| VerifyError::BadReference { reference: reference.into(), why };
    let parsed = crate::reference::parse(reference).map_err(|e| bad(e.0))?;
    let domain = parsed.domain.ok_or_else(|| bad("it names no registry".into()))?;
    let target = parsed.digest.or(parsed.tag).unwrap_or_else(|| "latest".into());
    Ok((domain, parsed.path, target))
}

/// Verifies `reference` (in `registry`) with `key` (read from `key_path`). Blocking.
pub fn verify(
    registry: &Registry,
    reference: &str,
    key: &VerifyingKey,
    key_path: &str,
) -> Result<Verified, VerifyError> {
    let (_, path, target) = split(reference)?;
    let repository = format!("{}/{path}", registry.host);
    let manifest =
        registry.manifest(&path, &target)?.ok_or_else(|| VerifyError::NotFound { reference: reference.into() })?;
    let digest = manifest.digest.clone();
    if target.starts_with("sha256:") && target != digest {
        return Err(VerifyError::DigestMismatch { reference: reference.into(), expected: target, actual: digest });
    }
    let tag = fallback_tag(&digest, Kind::Signature);
    let no_signature =
        || VerifyError::NoSignature { reference: reference.into(), digest: digest.clone(), tag: tag.clone() };
    let signatures = registry.manifest(&path, &tag)?.ok_or_else(no_signature)?;
    let (layers, _) = read_manifest(&signatures).ok_or_else(no_signature)?;
    let mut good = 0;
    let mut signed_other = None;
    for layer in &layers {
        let Some(signature) = layer.annotations.get(sign::SIGNATURE_ANNOTATION).and_then(|s| s.as_str()) else {
            continue;
        };
        let Some(payload) = registry.blob(&path, &layer.digest)? else { continue };
        if !sign::verify(key, &payload, signature) {
            continue;
        }
        match sign::check_payload(&payload, &repository, &digest) {
            Ok(()) => good += 1,
            Err(PayloadMismatch::Digest(other)) => signed_other = Some(other),
            Err(PayloadMismatch::Reference(other)) => signed_other = Some(other),
            Err(PayloadMismatch::NotJson) => {}
        }
    }
    if good == 0 {
        return Err(match signed_other {
            Some(signed) => VerifyError::WrongImage { reference: reference.into(), digest, signed },
            None => VerifyError::BadSignature {
                reference: reference.into(),
                digest,
                count: layers.len(),
                key: key_path.into(),
            },
        });
    }
    let (attachments, provenance_signed) = documents(registry, &path, &repository, &digest, key)?;
    Ok(Verified { repository, digest, signatures: good, attachments, provenance_signed })
}

/// The documents found (kind and where) and whether the provenance is signed with the key.
type Found = (Vec<(Kind, String)>, Option<bool>);

/// The SBOM and provenance of `digest`, by referrers or by tag, and whether the provenance's
/// envelope is signed with `key`.
fn documents(
    registry: &Registry,
    path: &str,
    repository: &str,
    digest: &str,
    key: &VerifyingKey,
) -> Result<Found, RegistryError> {
    let mut found = Vec::new();
    let referrers = registry.referrers(path, digest)?;
    for kind in [Kind::Sbom, Kind::Provenance] {
        let by_referrer = referrers.iter().flatten().find(|r| r.artifact_type == kind.artifact_type());
        let manifest = match by_referrer {
            Some(referrer) => {
                registry.manifest(path, &referrer.digest)?.map(|m| (m, format!("{repository}@{}", referrer.digest)))
            }
            None if referrers.is_none() => {
                let tag = fallback_tag(digest, kind);
                registry.manifest(path, &tag)?.map(|m| (m, format!("{repository}:{tag}")))
            }
            None => None,
        };
        if let Some(found_manifest) = manifest {
            found.push((kind, found_manifest.1, found_manifest.0));
        }
    }
    let mut provenance_signed = None;
    if let Some((_, _, manifest)) = found.iter().find(|(kind, _, _)| *kind == Kind::Provenance) {
        let layer = read_manifest(manifest).and_then(|(layers, _)| layers.into_iter().next());
        if let Some(envelope) = layer.map(|l| registry.blob(path, &l.digest)).transpose()?.flatten() {
            let value: serde_json::Value = serde_json::from_slice(&envelope).unwrap_or_default();
            provenance_signed = Some(sign::open_envelope(&value, key).is_some_and(|(_, signed)| signed));
        }
    }
    Ok((found.into_iter().map(|(kind, reference, _)| (kind, reference)).collect(), provenance_signed))
}
