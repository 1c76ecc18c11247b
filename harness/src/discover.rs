//! Finds every trial from the spec and the files under `images/`, without an engine: common
//! suites (`images/tests/*.yml`), each image's own (`<image dir>/tests/*.yml`) and those it
//! inherits from its ancestors through `parent`. Trials are named
//! `<image>[@<variant>]::<owner>/<suite>::<check>` and sorted. An image without any trial, a
//! suite without checks, or a file the harness cannot read is an error, never a silent pass.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use xtask::graph::{EdgeKind, ImageGraph, NodeId};
use xtask::spec::Spec;

use crate::format::{self, CommandCheck, FileCheck, Kind, MetadataCheck, ScriptCheck, ServiceCheck, TestFile};

/// The suites common to every image live here, under the spec's folder.
pub const COMMON_DIR: &str = "tests";

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Command(CommandCheck),
    File(FileCheck),
    Metadata(MetadataCheck),
    Script(ScriptCheck),
    Service(ServiceCheck),
    Security(SecurityCheck),
}

/// The security trials of an image (see docs/supply-chain.md), with the spec's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub enum SecurityCheck {
    /// Pending updates from the Debian security archive, by apt's simulation inside the image.
    PendingUpdates(xtask::spec::Security),
    /// A scanner's findings (trivy, grype), where one is installed with its database.
    Scanner(xtask::spec::Security),
}

/// The owner part of the security trials' names: `<node>::security/debian::pending-updates`.
pub const SECURITY_OWNER: &str = "security";

impl Check {
    pub fn kind(&self) -> Kind {
        match self {
            Check::Command(check) => check.kind,
            Check::File(check) => check.kind,
            Check::Metadata(_) => Kind::Acceptance,
            Check::Script(check) => check.kind,
            Check::Service(check) => check.kind,
            Check::Security(_) => Kind::Security,
        }
    }
}

/// One test of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSpec {
    pub name: String,
    pub node: NodeId,
    pub check: Check,
    /// The suite file it comes from.
    pub source: PathBuf,
}

/// A suite file (or a script) and the image that owns it (`None` for common suites).
#[derive(Debug, Clone)]
struct Suite {
    owner: Option<String>,
    stem: String,
    path: PathBuf,
    file: TestFile,
    /// Set for a script test; `file` is then empty.
    script: Option<ScriptCheck>,
}

impl Suite {
    /// The suite's checks by name: all of them for the image that owns it, those that are
    /// inherited for the images built on it.
    fn checks(&self, own_image: bool) -> Vec<(String, Check)> {
        let keep = |inherit: bool| own_image || inherit;
        let file = &self.file;
        let mut out: Vec<(String, Check)> = Vec::new();
        out.extend(
            file.commands.iter().filter(|(_, c)| keep(c.inherit)).map(|(n, c)| (n.clone(), Check::Command(c.clone()))),
        );
        out.extend(
            file.files.iter().filter(|(_, c)| keep(c.inherit)).map(|(n, c)| (n.clone(), Check::File(c.clone()))),
        );
        out.extend(
            file.services.iter().filter(|(_, c)| keep(c.inherit)).map(|(n, c)| (n.clone(), Check::Service(c.clone()))),
        );
        if let Some(script) = &self.script {
            let file_name = script.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((file_name, Check::Script(script.clone())));
        }
        if let Some(metadata) = file.metadata.as_ref().filter(|c| keep(c.inherit)) {
            out.push(("metadata".into(), Check::Metadata(metadata.clone())));
        }
        out
    }
}

fn suites_in(dir: &Path, owner: Option<&str>, errors: &mut Vec<String>) -> Vec<Suite> {
    let mut out = Vec::new();
    collect_suites(dir, owner, Kind::Acceptance, errors, &mut out);
    out
}

fn collect_suites(dir: &Path, owner: Option<&str>, kind: Kind, errors: &mut Vec<String>, out: &mut Vec<Suite>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            match format::kind_of_folder(&name) {
                Some(folder_kind) if kind == Kind::Acceptance => collect_suites(&path, owner, folder_kind, errors, out),
                _ => errors.push(format!("{}: test folders are `workflow`, `integration` and `gpu`", path.display())),
            }
            continue;
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if let Some(interpreter) = format::interpreter(extension) {
            let suite = if kind == Kind::Acceptance { "scripts".to_string() } else { kind.tag().to_string() };
            let file = TestFile { inherit: true, ..TestFile::default() };
            let script = ScriptCheck { path: path.clone(), kind, interpreter };
            out.push(Suite { owner: owner.map(str::to_string), stem: suite, path, file, script: Some(script) });
            continue;
        }
        if !matches!(extension, "yml" | "yaml") {
            errors.push(format!(
                "{}: not a test format this harness knows (YAML suites end in .yml; scripts in .sh, .py, .R or .ipynb)",
                path.display()
            ));
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        match format::parse(&path, &text) {
            Ok(file)
                if file.commands.is_empty()
                    && file.files.is_empty()
                    && file.metadata.is_none()
                    && file.services.is_empty() =>
            {
                errors.push(format!(
                    "{}: the suite has no checks (add `commands:`, `files:`, `metadata:` or `services:`)",
                    path.display()
                ));
            }
            Ok(file) => {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(Suite { owner: owner.map(str::to_string), stem, path, file, script: None });
            }
            Err(error) => errors.push(error),
        }
    }
}

/// Every trial of the stack, sorted by name, or every discovery error.
pub fn discover(spec: &Spec, graph: &ImageGraph) -> Result<Vec<TrialSpec>, Vec<String>> {
    discover_focused(spec, graph, None)
}

/// The trial named exactly `name` (what `--exact` asks for, and what cargo-nextest runs once
/// per process), reading only the folder of the suite it names; empty when no trial has that
/// name.
pub fn discover_exact(spec: &Spec, graph: &ImageGraph, name: &str) -> Result<Vec<TrialSpec>, Vec<String>> {
    let Some((node, rest)) = name.split_once("::") else { return Ok(Vec::new()) };
    let Some((owner, _)) = rest.split_once('/') else { return Ok(Vec::new()) };
    let focus = Focus { node, owner };
    let mut trials = discover_focused(spec, graph, Some(&focus))?;
    trials.retain(|trial| trial.name == name);
    Ok(trials)
}

/// Which trial a focused discovery is after.
struct Focus<'a> {
    node: &'a str,
    owner: &'a str,
}

fn discover_focused(spec: &Spec, graph: &ImageGraph, focus: Option<&Focus<'_>>) -> Result<Vec<TrialSpec>, Vec<String>> {
    let mut errors = Vec::new();
    let wanted = |owner: &str| focus.is_none_or(|focus| focus.owner == owner);
    let common = if wanted("common") { suites_in(&spec.dir.join(COMMON_DIR), None, &mut errors) } else { Vec::new() };
    let own: BTreeMap<&str, Vec<Suite>> = spec
        .images
        .values()
        .map(|image| {
            let suites = if wanted(&image.name) {
                suites_in(&spec.dir.join(&image.dir).join("tests"), Some(&image.name), &mut errors)
            } else {
                Vec::new()
            };
            (image.name.as_str(), suites)
        })
        .collect();
    for suite in common.iter().chain(own.values().flatten()) {
        for name in &suite.file.except {
            if !spec.images.contains_key(name) {
                errors.push(format!(
                    "{}: `except` names `{name}`, which is not an image of the stack",
                    suite.path.display()
                ));
            }
        }
    }
    let mut trials = Vec::new();
    for node in graph.topological_order().filter(|node| focus.is_none_or(|focus| focus.node == node.name)) {
        let before = trials.len();
        // The image's own suites, then its ancestors' (through parent only), then the common ones.
        let mut lineage = vec![(node.image.clone(), true)];
        let mut current = node.clone();
        while let Some((parent, _)) =
            graph.dependencies(&current).into_iter().find(|(_, kind)| *kind == EdgeKind::Parent)
        {
            lineage.push((parent.image.clone(), false));
            current = parent.clone();
        }
        let applicable = lineage
            .iter()
            .flat_map(|(image, own_image)| own[image.as_str()].iter().map(move |suite| (suite, *own_image)))
            .chain(common.iter().map(|suite| (suite, true)));
        for (suite, own_image) in applicable {
            if (!own_image && !suite.file.inherit) || suite.file.except.contains(&node.image) {
                continue;
            }
            let owner = suite.owner.as_deref().unwrap_or("common");
            for (check_name, check) in suite.checks(own_image) {
                let name = format!("{}::{owner}/{}::{check_name}", node.name, suite.stem);
                trials.push(TrialSpec { name, node: node.clone(), check, source: suite.path.clone() });
            }
        }
        if let Some(limits) = spec.security.as_ref().filter(|_| wanted(SECURITY_OWNER)) {
            for (suite, check, security) in [
                ("debian", "pending-updates", SecurityCheck::PendingUpdates(limits.clone())),
                ("scanner", "vulnerabilities", SecurityCheck::Scanner(limits.clone())),
            ] {
                trials.push(TrialSpec {
                    name: format!("{}::{SECURITY_OWNER}/{suite}::{check}", node.name),
                    node: node.clone(),
                    check: Check::Security(security),
                    source: spec.file.clone(),
                });
            }
        }
        if trials.len() == before && focus.is_none() {
            let image = &spec.images[&node.image];
            errors.push(format!(
                "image `{}` has no tests: add a suite such as {} (see docs/testing.md)",
                node.name,
                spec.dir.join(&image.dir).join("tests/basics.yml").display()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    trials.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(trials)
}
