//! The supply chain against the real engine and a real registry (Debian's distribution 2.8,
//! which has no referrers API, so the tag scheme is what is tested for real; the referrers path
//! is tested with fakes in `release::publish`): a release attaches each image's SBOM,
//! provenance and signature before its tags, the documents download and validate against their
//! published schemas, `verify` accepts the signature and refuses a tampered manifest and
//! another key, and a promotion keeps them reachable and re-attaches only what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::Value;
use xtask::plan::Variants;
use xtask::registry::Manifest;
use xtask::supply::attach::{fallback_tag, read_manifest, Kind};

use crate::release::{stderr, stdout, succeeded, Release};

/// `base` gets a tiny dpkg database (two installed packages, one removed with its
/// configuration left), a machine-readable copyright file and a Python distribution's metadata.
fn with_packages(release: &Release) {
    let files = &release.stack.stack;
    files.write(
        "images/base/rootfs/var/lib/dpkg/status",
        "Package: libdemo1\nStatus: install ok installed\nArchitecture: amd64\nSource: demo\nVersion: 1.0-1+deb12u1\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.1\n\nPackage: demo-tools\nStatus: install ok installed\nArchitecture: all\nVersion: 2:0.9-3\n",
    );
    files.write(
        "images/base/rootfs/usr/share/doc/libdemo1/copyright",
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n",
    );
    files.write(
        "images/base/rootfs/opt/venv/lib/python3.11/site-packages/demo_pkg-1.2.3.dist-info/METADATA",
        "Metadata-Version: 2.4\nName: demo_pkg\nVersion: 1.2.3\nLicense-Expression: MIT\n\nName: not-a-header\n",
    );
    files.write(
        "images/base/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY rootfs/ /\nRUN echo base > /base.txt && echo 3.11.2 > /python-version\n",
    );
}

/// Writes a P-256 key pair (a fixed test key) as PEM files: `(private, public)`.
fn key_pair(dir: &Path, name: &str, seed: u8) -> (PathBuf, PathBuf) {
    let key = SigningKey::from_slice(&[seed; 32]).unwrap();
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&private, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::write(&public, key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()).unwrap();
    (private, public)
}

/// Runs the published validator of `kind` on `text`; panics with its findings.
fn validate(kind: &str, text: &str) {
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let script = xtask::fixture::source_dir().join("../supply/validate.py");
    let output = Command::new("python3").arg(script).arg(kind).arg(file.path()).output().unwrap();
    assert!(
        output.status.success(),
        "the {kind} document does not validate (the validators come from PyPI: `pip install cyclonedx-python-lib[json-validation] spdx-tools`, as .ci/run does):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The artifact of `kind` attached to `digest` of `name`, and its layers' bytes.
fn artifact(release: &Release, name: &str, digest: &str, kind: Kind) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let client = release.client();
    let path = release.path(name);
    assert_eq!(client.referrers(&path, digest).unwrap(), None, "distribution 2.8 has no referrers API");
    let manifest = client.manifest(&path, &fallback_tag(digest, kind)).unwrap().unwrap_or_else(|| {
        panic!("{name}@{digest} has no {} attached", kind.name());
    });
    let (layers, subject) = read_manifest(&manifest).unwrap();
    assert_eq!(subject.as_deref(), Some(digest), "the artifact refers to the image");
    let blobs =
        layers.iter().map(|l| (l.media_type.clone(), client.blob(&path, &l.digest).unwrap().unwrap())).collect();
    (manifest, blobs)
}

/// Whether Python's `cryptography` verifies `signature` (base64 DER) over `payload` with the
/// PEM public key at `key`: `Err` with what it said otherwise.
fn python_verifies(key: &Path, payload: &[u8], signature: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payload"), payload).unwrap();
    let script = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
key.verify(base64.b64decode(sys.argv[3]), open(sys.argv[2], "rb").read(), ec.ECDSA(hashes.SHA256()))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(key)
        .arg(dir.path().join("payload"))
        .arg(signature)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn a_release_attaches_valid_sboms_provenance_and_a_signature_that_verify_checks() {
    let mut release = Release::new();
    with_packages(&release);
    release.build(Variants::Default).await;
    succeeded(&release.run(&["tag", "--branch", "main"]));
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = key_pair(keys.path(), "release", 7);
    let (_, other) = key_pair(keys.path(), "other", 8);
    // The security trials' report for base (as the harness writes it) goes into the record.
    let report = xtask::supply::security::Report {
        schema: xtask::supply::security::REPORT_SCHEMA.into(),
        node: "base".into(),
        image_id: release.tag_record().images[0].id.clone(),
        suite: Some("bookworm-security".into()),
        checked: "2026-11-22T05:00:00Z".into(),
        skipped: None,
        pending: vec![],
        scanners: vec![],
    };
    std::fs::create_dir_all(release.work("security")).unwrap();
    std::fs::write(release.work("security/base.json"), serde_json::to_string(&report).unwrap()).unwrap();
    let output = release.run(&["release", "--untested", "--sign-key", private.to_str().unwrap()]);
    succeeded(&output);
    assert!(
        stdout(&output).contains("base: 0 pending security update(s) (checked 2026-11-22T05:00:00Z)"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("tools: no security report"), "{}", stdout(&output));
    assert!(stdout(&output).contains("base: sbom attached"), "{}", stdout(&output));

    let record = release.release_record();
    let base = &record.images[0];
    assert_eq!(base.security.as_ref(), Some(&report));
    let digest = base.digest.clone().unwrap();
    let kinds: Vec<Kind> = base.attachments.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [Kind::Sbom, Kind::Provenance, Kind::Signature], "{record:?}");
    assert!(record.images.iter().all(|image| image.attachments.len() == 3), "every image: {record:?}");

    check_sbom(&release, &digest);
    check_provenance(&release, &digest, &public);
    check_signature(&release, &digest, &public, &other);
    check_verify(&mut release, &digest, &public, &other);
}

/// The SBOM: both formats, every package of the image and nothing else, valid.
fn check_sbom(release: &Release, digest: &str) {
    let (_, sbom) = artifact(release, "base", digest, Kind::Sbom);
    let types: Vec<&str> = sbom.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["application/vnd.cyclonedx+json", "application/spdx+json"]);
    let cdx = json(&sbom[0].1);
    assert_eq!(cdx["metadata"]["component"]["version"], digest);
    let mut packages: Vec<(String, String, String)> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["version"].as_str().unwrap().into(),
                c["purl"].as_str().unwrap().into(),
            )
        })
        .collect();
    packages.sort();
    assert_eq!(
        packages,
        [
            ("demo-tools".into(), "2:0.9-3".into(), "pkg:deb/debian/demo-tools@2%3A0.9-3?arch=all".into()),
            ("demo_pkg".into(), "1.2.3".into(), "pkg:pypi/demo-pkg@1.2.3".into()),
            (
                "libdemo1".into(),
                "1.0-1+deb12u1".into(),
                "pkg:deb/debian/libdemo1@1.0-1%2Bdeb12u1?arch=amd64&upstream=demo".into()
            ),
        ]
    );
    validate("cyclonedx", &String::from_utf8_lossy(&sbom[0].1));
    validate("spdx", &String::from_utf8_lossy(&sbom[1].1));
}

/// The provenance: a DSSE envelope signed with the release key around an in-toto statement.
fn check_provenance(release: &Release, digest: &str, public: &Path) {
    let (_, provenance) = artifact(release, "base", digest, Kind::Provenance);
    let envelope = json(&provenance[0].1);
    let key = xtask::supply::sign::verifying_key("release.pub", &std::fs::read_to_string(public).unwrap()).unwrap();
    let (payload, signed) = xtask::supply::sign::open_envelope(&envelope, &key).unwrap();
    assert!(signed, "the provenance is signed with the release key");
    let statement = json(&payload);
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.strip_prefix("sha256:").unwrap());
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["buildArgs"]["GREETING"], "hello");
    assert_eq!(definition["internalParameters"]["pin"], release.tag_record().images[0].pin.as_str());
    assert!(statement["predicate"]["runDetails"]["metadata"]["finishedOn"].is_string());
}

/// The signature as cosign checks it, by another implementation: Python's `cryptography`
/// verifies the base64 DER ECDSA-SHA256 signature over the payload with the public key.
fn check_signature(release: &Release, digest: &str, public: &Path, other: &Path) {
    let (_, signatures) = artifact(release, "base", digest, Kind::Signature);
    let sig_manifest =
        release.client().manifest(&release.path("base"), &fallback_tag(digest, Kind::Signature)).unwrap().unwrap();
    let (layers, _) = read_manifest(&sig_manifest).unwrap();
    let signature = layers[0].annotations["dev.cosignproject.cosign/signature"].as_str().unwrap();
    let payload = &signatures[0].1;
    assert_eq!(json(payload)["critical"]["image"]["docker-manifest-digest"], digest);
    python_verifies(public, payload, signature).unwrap();
    assert!(python_verifies(other, payload, signature).is_err(), "another key");
}

/// `verify`: the right key passes; another key, and a manifest changed under the tag, fail.
fn check_verify(release: &mut Release, digest: &str, public: &Path, other: &Path) {
    let pinned = format!("{}@{digest}", release.stack.repository("base"));
    let reference = format!("{}:1.0-main", release.stack.repository("base"));
    let good = release.run(&["verify", &reference, "--key", public.to_str().unwrap()]);
    succeeded(&good);
    assert!(stdout(&good).contains("1 signature(s) verified"), "{}", stdout(&good));
    assert!(stdout(&good).contains("the provenance is signed with the same key"), "{}", stdout(&good));
    let wrong = release.run(&["verify", &reference, "--key", other.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(11), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("verifies with the key") && stderr(&wrong).contains("another key"),
        "{}",
        stderr(&wrong)
    );
    let client = release.client();
    let original = client.manifest(&release.path("base"), "1.0-main").unwrap().unwrap();
    let mut changed = json(&original.bytes);
    changed["annotations"] = serde_json::json!({"tampered": "yes"});
    let bytes = serde_json::to_vec(&changed).unwrap();
    let tampered =
        Manifest { media_type: original.media_type.clone(), digest: xtask::registry::digest_of(&bytes), bytes };
    client.put_manifest(&release.path("base"), "1.0-main", &tampered).unwrap();
    let refused = release.run(&["verify", &reference, "--key", public.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(11), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("changed after signing"), "{}", stderr(&refused));
    succeeded(&release.run(&["verify", &pinned, "--key", public.to_str().unwrap()]));
}

#[tokio::test]
async fn promotion_keeps_the_documents_reachable_and_re_attaches_only_what_is_missing() {
    let mut release = Release::new();
    with_packages(&release);
    release.build(Variants::All).await;
    succeeded(&release.run(&["tag", "--all-variants", "--branch", "main"]));
    succeeded(&release.run(&["release", "--untested"]));
    let digest = release.release_record().images[0].digest.clone().unwrap();
    succeeded(&release.run(&["release", "--promote", "1.0-main", "--to", "stable"]));
    let promoted = release.digest("base", "stable").unwrap();
    assert_eq!(promoted, digest);
    let (sbom, _) = artifact(&release, "base", &promoted, Kind::Sbom);
    artifact(&release, "base", &promoted, Kind::Provenance);

    // The SBOM goes away; the files `sbom` writes where the image is bring it back on the next
    // promotion, and only it.
    release.client().delete_manifest(&release.path("base"), &sbom.digest).unwrap();
    let written = release.run(&["sbom", "base"]);
    succeeded(&written);
    assert!(stdout(&written).contains(&format!("(subject {digest})")), "{}", stdout(&written));
    let files = release.work("sbom");
    assert!(files.join("base.cdx.json").is_file() && files.join("base.provenance.json").is_file());
    // Without them (and without the image here), nothing moves.
    let elsewhere = tempfile::tempdir().unwrap();
    let refused = release.run(&[
        "release",
        "--promote",
        "1.0-main",
        "--to",
        "candidate",
        "--attestations",
        elsewhere.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(8), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("base: "), "{}", stderr(&refused));
    assert_eq!(release.digest("base", "candidate"), None);
    let output = release.run(&["release", "--promote", "1.0-main", "--to", "candidate"]);
    succeeded(&output);
    assert!(stdout(&output).contains("base: attached its sbom"), "{}", stdout(&output));
    assert!(!stdout(&output).contains("attached its provenance"), "{}", stdout(&output));
    let (_, back) = artifact(&release, "base", &digest, Kind::Sbom);
    assert_eq!(json(&back[0].1)["metadata"]["component"]["version"], digest.as_str());
}
