//! The edge of the supply chain: reads an image's inventory and runs the security check in
//! throwaway containers of it (as root, labelled as probes and always removed), asks a scanner
//! on the host when one is installed, and gathers the facts a provenance statement needs from
//! the image's labels, the spec and the identities. Everything it learns goes through the pure
//! modules beside it.

use std::time::Duration;

use serde_json::Value;

use super::inventory::{self, Inventory};
use super::provenance::{self, Facts};
use super::sbom::{Format, SbomError, Subject};
use super::security::{self, Report, ScannerReport};
use crate::engine::{label, Engine, EngineError, ImageInspect};
use crate::graph::{ImageGraph, NodeId};
use crate::labels;
use crate::spec::Spec;

/// How long reading an inventory or asking the archive may take.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// Reads what is installed in `image` (an ID or reference).
pub async fn inventory(engine: &Engine, image: &str) -> Result<Inventory, EngineError> {
    let outputs = engine.run_in_image_as(image, Some("0"), &[inventory::COLLECT_SCRIPT.to_string()], TIMEOUT).await?;
    Ok(inventory::parse(&outputs.first().map(|o| o.stdout.clone()).unwrap_or_default()))
}

/// An image's documents: both SBOM formats and the provenance statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Documents {
    pub cyclonedx: String,
    pub spdx: String,
    pub provenance: Value,
}

impl Documents {
    pub fn sbom(&self, format: Format) -> &str {
        match format {
            Format::Cyclonedx => &self.cyclonedx,
            Format::Spdx => &self.spdx,
        }
    }

    /// The digest both SBOMs and the statement name as their subject (all three must agree).
    pub fn subject_digest(&self) -> Option<String> {
        let cdx: Value = serde_json::from_str(&self.cyclonedx).ok()?;
        let spdx: Value = serde_json::from_str(&self.spdx).ok()?;
        let digest = cdx["metadata"]["component"]["version"].as_str()?.to_string();
        let image = spdx["packages"].as_array()?.first()?["versionInfo"].as_str()?;
        let statement = self.provenance["subject"][0]["digest"]["sha256"].as_str()?;
        (image == digest && digest.strip_prefix("sha256:") == Some(statement)).then_some(digest)
    }
}

/// The documents of `node` (image `inspect`) pushed to `repository` with manifest `digest`.
pub async fn documents(
    engine: &Engine,
    spec: &Spec,
    graph: &ImageGraph,
    node: &NodeId,
    inspect: &ImageInspect,
    repository: &str,
    digest: &str,
) -> Result<Documents, DocumentsError> {
    let image_id = inspect.id.clone().unwrap_or_default();
    let found = inventory(engine, &image_id).await?;
    let subject = Subject {
        repository: repository.to_string(),
        digest: digest.to_string(),
        node: node.name.clone(),
        created: label(inspect, labels::CREATED).unwrap_or("1970-01-01T00:00:00Z").to_string(),
    };
    let facts = facts(spec, graph, node, inspect, repository, digest);
    Ok(Documents {
        cyclonedx: Format::Cyclonedx.render(&found, &subject)?,
        spdx: Format::Spdx.render(&found, &subject)?,
        provenance: provenance::statement(&facts),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Sbom(#[from] SbomError),
}

/// What the provenance of `node` says, from its labels, the spec and its identity.
pub fn facts(
    spec: &Spec,
    graph: &ImageGraph,
    node: &NodeId,
    inspect: &ImageInspect,
    repository: &str,
    digest: &str,
) -> Facts {
    let image = &spec.images[&node.image];
    let root = crate::paths::project_root();
    let dockerfile = spec.dir.join(&image.dir).join(&image.dockerfile);
    let dockerfile = dockerfile.strip_prefix(&root).unwrap_or(&dockerfile).display().to_string();
    let inputs = label(inspect, labels::INPUTS).unwrap_or_default().to_string();
    let upstream = match crate::identity::identities(spec, graph, std::slice::from_ref(node)) {
        Ok(known) => crate::identity::upstream_digests(spec, node, &known)
            .into_iter()
            .map(|(argument, digest)| {
                let pin = known.bases.values().chain(known.nodes.values()).find(|p| p.digest == digest);
                (argument, pin.map(|p| p.reference()).unwrap_or_default(), digest)
            })
            .collect(),
        Err(_) => vec![],
    };
    Facts {
        repository: repository.to_string(),
        digest: digest.to_string(),
        node: node.name.clone(),
        image: node.image.clone(),
        variant: node.variant.clone(),
        dockerfile,
        build_args: spec.build_args(image, &node.variant),
        pin: crate::identity::pin_tag(&inputs),
        inputs_digest: inputs,
        revision: label(inspect, labels::REVISION).map(str::to_string),
        source: label(inspect, labels::SOURCE).map(str::to_string),
        parent: label(inspect, labels::PARENT).map(str::to_string),
        upstream,
        builder: provenance::builder_id(),
        started: label(inspect, labels::CREATED).unwrap_or_default().to_string(),
        finished: inspect.created.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    }
}

/// The pending security updates of `node` (image `image_id`): apt's simulation inside the
/// image against the security archive. Scanners are [`scanners`]'s.
pub async fn security(engine: &Engine, node: &str, image_id: &str, archive: &str) -> Result<Report, EngineError> {
    let outputs = engine.run_in_image_as(image_id, Some("0"), &[security::script(archive)], TIMEOUT).await?;
    let output = outputs.first().cloned().unwrap_or_default();
    let text = if output.exit_code.is_none() {
        format!("@@@ update-failed\ndid not finish within {} s", TIMEOUT.as_secs())
    } else {
        format!("{}{}", output.stdout, output.stderr)
    };
    let (suite, pending, skipped) = match security::parse_simulation(&text) {
        Ok((suite, pending)) => (suite, pending, None),
        Err(reason) => (None, vec![], Some(reason)),
    };
    Ok(Report {
        schema: security::REPORT_SCHEMA.into(),
        node: node.to_string(),
        image_id: image_id.to_string(),
        suite,
        checked: now(),
        skipped,
        pending,
        scanners: vec![],
    })
}

/// The scanners this host could run, or why none can (none installed, or no database).
pub fn usable_scanner() -> Result<&'static str, String> {
    let mut reasons = Vec::new();
    for scanner in SCANNERS {
        if !on_path(scanner) {
            reasons.push(format!("{scanner} is not installed"));
        } else if !has_database(scanner) {
            reasons.push(format!("{scanner} has no vulnerability database (it cannot download one here)"));
        } else {
            return Ok(scanner);
        }
    }
    Err(reasons.join("; "))
}

const SCANNERS: [&str; 2] = ["trivy", "grype"];

/// Whether the scanner's database is in its default cache (neither may download one here).
fn has_database(scanner: &str) -> bool {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache")))
        .unwrap_or_default();
    match scanner {
        "trivy" => cache.join("trivy/db/trivy.db").is_file(),
        _ => std::fs::read_dir(cache.join("grype/db"))
            .is_ok_and(|entries| entries.flatten().any(|e| e.path().join("vulnerability.db").is_file())),
    }
}

/// Every installed scanner's findings on `image` (a reference the engine knows).
pub async fn scanners(image: &str) -> Vec<ScannerReport> {
    let mut out = Vec::new();
    for scanner in SCANNERS {
        out.push(scan(scanner, image).await);
    }
    out
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs a scanner on the image when it is installed, offline (no database download: this must
/// not depend on the scanner's own servers); its JSON read into findings.
async fn scan(scanner: &str, image: &str) -> ScannerReport {
    let skipped = |reason: String| ScannerReport { scanner: scanner.into(), skipped: Some(reason), findings: vec![] };
    if !on_path(scanner) {
        return skipped(format!("{scanner} is not installed"));
    }
    let image = image.to_string();
    let program = scanner.to_string();
    let ran = tokio::task::spawn_blocking(move || {
        let sh = xshell::Shell::new()?;
        let output = match program.as_str() {
            "trivy" => xshell::cmd!(sh, "trivy image --quiet --skip-db-update --offline-scan --format json {image}")
                .ignore_status()
                .output()?,
            _ => xshell::cmd!(sh, "grype --output json {image}")
                .env("GRYPE_DB_AUTO_UPDATE", "false")
                .ignore_status()
                .output()?,
        };
        Ok::<_, xshell::Error>(output)
    })
    .await;
    let output = match ran {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return skipped(format!("{scanner} could not run: {error}")),
        Err(error) => return skipped(format!("{scanner} could not run: {error}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().last().unwrap_or("no output").to_string();
        return skipped(format!("{scanner} has no usable vulnerability database or failed: {why}"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = if scanner == "trivy" { security::parse_trivy(&stdout) } else { security::parse_grype(&stdout) };
    match parsed {
        Ok(findings) => ScannerReport { scanner: scanner.into(), skipped: None, findings },
        Err(reason) => skipped(reason),
    }
}
