//! Signatures that cosign makes and checks, made here with ECDSA P-256 (the `p256` crate)
//! rather than the `sigstore` crate (see ARCHITECTURE.md, decisions). An image signature is
//! cosign's *simple signing* payload (the repository and the manifest digest) signed with
//! SHA-256, as base64 DER; it is stored the way cosign stores it (`sha256-<hex>.sig`, one layer
//! per signature: the payload, with the signature in the annotation
//! `dev.cosignproject.cosign/signature`), so `cosign verify --key` accepts it. Attestations are
//! DSSE envelopes signed over DSSE's pre-authentication encoding, as `cosign attest` makes them.
//! Keys are PEM: a PKCS#8 (or SEC1) P-256 private key to sign, the SPKI public key (what
//! `cosign.pub` holds) to verify. Pure.

use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::{json, Value};

/// Where cosign keeps a signature's base64 DER.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a simple signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of a DSSE envelope (cosign's attestation layers).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key {path}: {reason}\n  hint: {hint}")]
    Unreadable { path: String, reason: String, hint: &'static str },
}

const PRIVATE_HINT: &str = "pass a PEM P-256 private key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out release.key`); docs/supply-chain.md says how to use it with cosign";
const PUBLIC_HINT: &str =
    "pass the PEM public key (`openssl pkey -in release.key -pubout -out release.pub`, or cosign's `cosign.pub`)";

/// Reads a PEM P-256 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
pub fn signing_key(path: &str, pem: &str) -> Result<SigningKey, KeyError> {
    if pem.contains("ENCRYPTED") {
        return Err(KeyError::Unreadable {
            path: path.into(),
            reason: "it is encrypted (cosign's own key format)".into(),
            hint: "export it unencrypted, or make a PEM key with openssl (docs/supply-chain.md)",
        });
    }
    SigningKey::from_pkcs8_pem(pem)
        .or_else(|_| p256::SecretKey::from_sec1_pem(pem).map(SigningKey::from))
        .map_err(|e| KeyError::Unreadable { path: path.into(), reason: e.to_string(), hint: PRIVATE_HINT })
}

/// Reads a PEM public key (`PUBLIC KEY`).
pub fn verifying_key(path: &str, pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Unreadable {
        path: path.into(),
        reason: e.to_string(),
        hint: PUBLIC_HINT,
    })
}

/// cosign's simple signing payload for `repository` (`host/path`) at `digest`.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let value = json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The base64 DER ECDSA-SHA256 signature of `message`.
pub fn sign(key: &SigningKey, message: &[u8]) -> String {
    let signature: DerSignature = key.sign(message);
    base64::engine::general_purpose::STANDARD.encode(signature.as_bytes())
}

/// Whether `signature` (base64 DER, or raw r||s) signs `message` with `key`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let parsed = Signature::from_der(&bytes).or_else(|_| Signature::from_slice(&bytes));
    parsed.is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

/// Why a signature payload does not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMismatch {
    NotJson,
    Digest(String),
    Reference(String),
}

/// Checks that a verified payload is about `repository` at `digest`.
pub fn check_payload(payload: &[u8], repository: &str, digest: &str) -> Result<(), PayloadMismatch> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| PayloadMismatch::NotJson)?;
    let critical = &value["critical"];
    let signed_digest = critical["image"]["docker-manifest-digest"].as_str().unwrap_or_default();
    if signed_digest != digest {
        return Err(PayloadMismatch::Digest(signed_digest.to_string()));
    }
    let reference = critical["identity"]["docker-reference"].as_str().unwrap_or_default();
    if reference != repository {
        return Err(PayloadMismatch::Reference(reference.to_string()));
    }
    Ok(())
}

/// DSSE's pre-authentication encoding of a payload: what an envelope's signatures sign.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope around `payload`, signed with `key` when there is one (an unsigned
/// envelope has no signatures).
pub fn envelope(payload_type: &str, payload: &[u8], key: Option<&SigningKey>) -> Value {
    let signatures: Vec<Value> =
        key.map(|key| json!({"keyid": "", "sig": sign(key, &pae(payload_type, payload))})).into_iter().collect();
    json!({
        "payloadType": payload_type,
        "payload": base64::engine::general_purpose::STANDARD.encode(payload),
        "signatures": signatures,
    })
}

/// The payload of a DSSE envelope and whether one of its signatures verifies with `key`.
pub fn open_envelope(envelope: &Value, key: &VerifyingKey) -> Option<(Vec<u8>, bool)> {
    let payload_type = envelope["payloadType"].as_str()?;
    let payload = base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str()?).ok()?;
    let message = pae(payload_type, &payload);
    let signed = envelope["signatures"]
        .as_array()
        .is_some_and(|all| all.iter().filter_map(|s| s["sig"].as_str()).any(|sig| verify(key, &message, sig)));
    Some((payload, signed))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    /// A fixed test key (never a release key).
    pub fn test_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    #[test]
    fn a_signature_verifies_with_its_key_only_and_only_for_its_message() {
        let key = test_key(7);
        let message = payload("reg/ns/app", "sha256:aa");
        let signature = sign(&key, &message);
        assert!(verify(key.verifying_key(), &message, &signature));
        assert!(!verify(test_key(8).verifying_key(), &message, &signature), "another key");
        assert!(!verify(key.verifying_key(), &payload("reg/ns/app", "sha256:ab"), &signature), "another digest");
        assert!(!verify(key.verifying_key(), &message, "not base64!"));
    }

    #[test]
    fn keys_are_read_from_pem_and_a_bad_one_says_what_to_pass() {
        let key = test_key(3);
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let read = signing_key("k.pem", &private).unwrap();
        assert_eq!(*read.verifying_key(), verifying_key("k.pub", &public).unwrap());
        let error = signing_key("k.pem", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n").unwrap_err();
        assert!(error.to_string().contains("encrypted"), "{error}");
        let error = verifying_key("k.pub", &private).unwrap_err();
        assert!(error.to_string().contains("k.pub") && error.to_string().contains("hint:"), "{error}");
    }

    #[test]
    fn the_payload_is_cosigns_simple_signing_and_is_checked_against_the_image() {
        let bytes = payload("reg/ns/app", "sha256:aa");
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["critical"]["type"], "cosign container image signature");
        assert_eq!(check_payload(&bytes, "reg/ns/app", "sha256:aa"), Ok(()));
        assert_eq!(check_payload(&bytes, "reg/ns/app", "sha256:bb"), Err(PayloadMismatch::Digest("sha256:aa".into())));
        assert_eq!(
            check_payload(&bytes, "reg/ns/x", "sha256:aa"),
            Err(PayloadMismatch::Reference("reg/ns/app".into()))
        );
    }

    #[test]
    fn dsse_envelopes_sign_the_pre_authentication_encoding() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
        let key = test_key(5);
        let signed = envelope("application/vnd.in-toto+json", b"{}", Some(&key));
        assert_eq!(open_envelope(&signed, key.verifying_key()), Some((b"{}".to_vec(), true)));
        assert_eq!(open_envelope(&signed, test_key(6).verifying_key()), Some((b"{}".to_vec(), false)));
        let unsigned = envelope("application/vnd.in-toto+json", b"{}", None);
        assert_eq!(unsigned["signatures"].as_array().unwrap().len(), 0);
    }
}
