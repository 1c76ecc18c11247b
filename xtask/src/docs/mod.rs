//! The documentation pages of `cargo xtask docs`, and what changed between releases. Pure in
//! this file; `collect` runs the commands inside the images and writes the files.
//!
//! Each image (node) gets a [`Snapshot`]: build info from its labels, its layers, the output of
//! each documentation command, and the packages read from those outputs. The snapshot is kept
//! next to the page (`docs/images/<file>.json`); the next run reads it back as the previous
//! release when the image changed, so every page says what was added, removed, upgraded or
//! downgraded and how the size moved. Regenerating for the same image gives the same bytes
//! (no clock, no host), which is what `docs --check` relies on. An image built for several
//! platforms has one page, made from its first documented platform, with a table of every
//! platform: its image ID, size, and the packages present on one platform only or in another
//! version.

mod collect;

pub use collect::{generate, stale, write, DocsError, Generated, COMMAND_TIMEOUT};

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::ImageGraph;
use crate::progress::human_size;
use crate::spec::Spec;

pub const SNAPSHOT_SCHEMA: &str = "stack-image-doc/v1";
/// Outputs longer than this are folded in `<details>`.
pub const FOLD_LINES: usize = 20;
/// How many releases the history keeps per image.
pub const HISTORY: usize = 20;

/// Name to version.
pub type Packages = BTreeMap<String, String>;

/// One documentation command's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    pub command: String,
    /// `None` when it succeeded; else what went wrong (exit code, timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub output: String,
    /// Read from the output when every line is a `name version` pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Packages>,
}

/// One layer of an image (the engine's history, oldest first on a page).
pub use crate::engine::Layer;

/// What a release of an image was, as far as the next one compares with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub created: String,
    pub size: i64,
    pub tags: Vec<String>,
    /// Packages per documentation command.
    pub packages: BTreeMap<String, Packages>,
}

/// Everything a page shows, and what the next run compares with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema: String,
    pub node: String,
    pub image: String,
    pub variant: String,
    pub repository: String,
    pub description: Option<String>,
    /// The parent's pin and ID (`xtask.stack.parent`), or the base.
    pub parent: String,
    pub revision: Option<String>,
    /// The registry digest, once pushed or pulled.
    pub digest: Option<String>,
    pub current: Release,
    /// Oldest first.
    pub layers: Vec<Layer>,
    pub sections: Vec<Section>,
    /// The release before this one, if any was documented.
    pub previous: Option<Release>,
    /// Every documented release of this image, oldest first, this one last.
    pub history: Vec<HistoryEntry>,
    /// The security trials' last report for this image (`target/xtask/security/`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<crate::supply::security::Report>,
    /// Every platform of an image built for several, in the stack's order (the page's own among
    /// them); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDoc>,
}

/// One platform of an image built for several, against the platform its page is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformDoc {
    /// `linux/arm64`.
    pub platform: String,
    /// `None` when this run did not document that platform.
    pub id: Option<String>,
    pub size: Option<i64>,
    /// Per documentation command: packages only this platform has.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub only_here: BTreeMap<String, Packages>,
    /// Per documentation command: packages the page's platform has and this one lacks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lacks: BTreeMap<String, Packages>,
    /// Per documentation command: `(package, the page's version, this platform's)`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_versions: BTreeMap<String, Vec<(String, String, String)>>,
}

/// How `platform` (`other`, when this run documented it) differs from `main`, the snapshot of
/// the platform the page is made from.
pub fn platform_doc(main: &Snapshot, platform: &str, other: Option<&Snapshot>) -> PlatformDoc {
    let mut doc = PlatformDoc {
        platform: platform.to_string(),
        id: other.map(|o| o.current.id.clone()),
        size: other.map(|o| o.current.size),
        only_here: BTreeMap::new(),
        lacks: BTreeMap::new(),
        other_versions: BTreeMap::new(),
    };
    let Some(other) = other else { return doc };
    let empty = Packages::new();
    let mut sections: Vec<&String> = main.current.packages.keys().chain(other.current.packages.keys()).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        let (mine, theirs) = (
            main.current.packages.get(section).unwrap_or(&empty),
            other.current.packages.get(section).unwrap_or(&empty),
        );
        let change = diff(mine, theirs);
        let versions: Vec<(String, String, String)> =
            change.upgraded.into_iter().chain(change.downgraded).collect::<Vec<_>>();
        for (map, list) in [(&mut doc.only_here, change.added), (&mut doc.lacks, change.removed)] {
            if !list.is_empty() {
                map.insert(section.clone(), list.into_iter().collect());
            }
        }
        if !versions.is_empty() {
            doc.other_versions.insert(section.clone(), versions);
        }
    }
    doc
}

/// The platforms table of a page, and the packages that differ between platforms.
fn platforms_section(s: &Snapshot) -> String {
    let mut out = String::from("\n## Platforms\n\n| platform | image ID | size | packages on it only | packages it lacks | other versions |\n| --- | --- | --- | --- | --- | --- |\n");
    let count = |map: &BTreeMap<String, Packages>| map.values().map(BTreeMap::len).sum::<usize>();
    for p in &s.platforms {
        match (&p.id, p.size) {
            (Some(id), Some(size)) => out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} |\n",
                p.platform,
                short(id),
                human_size(size),
                count(&p.only_here),
                count(&p.lacks),
                p.other_versions.values().map(Vec::len).sum::<usize>()
            )),
            _ => out.push_str(&format!(
                "| {} | not documented in this run (`cargo xtask docs --platform {}`) | | | | |\n",
                p.platform, p.platform
            )),
        }
    }
    // The platform the page is made from: the one whose image is the page's.
    let main = s.platforms.iter().find(|p| p.id.as_ref() == Some(&s.current.id)).map_or("", |p| p.platform.as_str());
    for p in s.platforms.iter().filter(|p| p.platform != main) {
        let rows: Vec<String> = p
            .only_here
            .iter()
            .flat_map(|(section, packages)| {
                packages
                    .iter()
                    .map(move |(name, version)| format!("| {section} | {} | | {} |", cell(name), cell(version)))
            })
            .chain(p.lacks.iter().flat_map(|(section, packages)| {
                packages
                    .iter()
                    .map(move |(name, version)| format!("| {section} | {} | {} | |", cell(name), cell(version)))
            }))
            .chain(p.other_versions.iter().flat_map(|(section, list)| {
                list.iter()
                    .map(move |(name, a, b)| format!("| {section} | {} | {} | {} |", cell(name), cell(a), cell(b)))
            }))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n### {main} and {}\n\n| command | package | {main} | {} |\n| --- | --- | --- | --- |\n{}\n",
            p.platform,
            p.platform,
            rows.join("\n")
        ));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub created: String,
    pub size: i64,
    pub tags: Vec<String>,
}

/// Reads `name==version`, `name<TAB>version` or `name version` lines (pip freeze, dpkg-query,
/// R); `None` unless every non-empty line is one of them.
pub fn parse_packages(output: &str) -> Option<Packages> {
    let mut out = Packages::new();
    for line in output.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (name, version) = match line.split_once("==") {
            Some((name, version)) => (name.trim(), version.trim()),
            None => {
                let mut words = line.split_whitespace();
                let (Some(name), Some(version), None) = (words.next(), words.next(), words.next()) else {
                    return None;
                };
                (name, version)
            }
        };
        if name.is_empty() || version.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        out.insert(name.to_string(), version.to_string());
    }
    (!out.is_empty()).then_some(out)
}

/// Compares versions part by part, numbers as numbers (`1.10` after `1.9`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<String> {
        v.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()).map(str::to_string).collect()
    };
    let (a, b) = (parts(a), parts(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Packages added, removed, upgraded and downgraded between two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDiff {
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    /// `(name, old, new)`.
    pub upgraded: Vec<(String, String, String)>,
    pub downgraded: Vec<(String, String, String)>,
}

impl PackageDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.upgraded.is_empty() && self.downgraded.is_empty()
    }
}

pub fn diff(old: &Packages, new: &Packages) -> PackageDiff {
    let mut out = PackageDiff::default();
    for (name, version) in new {
        match old.get(name) {
            None => out.added.push((name.clone(), version.clone())),
            Some(before) if before != version => {
                let change = (name.clone(), before.clone(), version.clone());
                if compare_versions(version, before) == Ordering::Less {
                    out.downgraded.push(change);
                } else {
                    out.upgraded.push(change);
                }
            }
            Some(_) => {}
        }
    }
    for (name, version) in old {
        if !new.contains_key(name) {
            out.removed.push((name.clone(), version.clone()));
        }
    }
    out
}

/// The snapshot to write: `current` with its previous release and history taken from the
/// committed snapshot. The same image again keeps the committed comparison (so regenerating is
/// stable); a new image makes the committed one its previous release.
pub fn next_snapshot(committed: Option<&Snapshot>, mut current: Snapshot) -> Snapshot {
    let entry = HistoryEntry {
        id: current.current.id.clone(),
        created: current.current.created.clone(),
        size: current.current.size,
        tags: current.current.tags.clone(),
    };
    match committed {
        Some(old) if old.current.id == current.current.id => {
            current.previous = old.previous.clone();
            current.history = old.history.clone();
            if let Some(last) = current.history.last_mut() {
                *last = entry;
            }
        }
        Some(old) => {
            current.previous = Some(old.current.clone());
            current.history = old.history.clone();
            current.history.push(entry);
        }
        None => {
            current.previous = None;
            current.history = vec![entry];
        }
    }
    if current.history.len() > HISTORY {
        let extra = current.history.len() - HISTORY;
        current.history.drain(..extra);
    }
    current
}

/// The file name stem of a node's own files (SBOMs, security reports): its page's stem, with
/// `-<arch>` in a stack of several platforms (`scipy-notebook-arm64`), as each platform is an
/// image of its own.
pub fn node_stem(spec: &Spec, id: &crate::graph::NodeId) -> String {
    let stem = file_stem(spec, &id.image, &id.variant);
    if id.name == id.image_variant {
        stem
    } else {
        format!("{stem}-{}", id.platform.suffix())
    }
}

/// The page and snapshot file name of a node: `<image>` or `<image>-<variant>`.
pub fn file_stem(spec: &Spec, image: &str, variant: &str) -> String {
    if variant == spec.default_variant() {
        image.to_string()
    } else {
        format!("{image}-{variant}")
    }
}

/// The page's section on pending security updates (nothing when no report was made).
fn security_section(report: Option<&crate::supply::security::Report>) -> String {
    let Some(report) = report else { return String::new() };
    let mut out = String::from("\n## Pending security updates\n\n");
    if let Some(reason) = &report.skipped {
        out.push_str(&format!("Checked {}: the check could not run: {reason}\n", report.checked));
        return out;
    }
    let suite = report.suite.as_deref().unwrap_or("the security archive");
    let n = report.pending.len();
    out.push_str(&format!(
        "Checked {} against `{suite}`: {n} package{} with a newer version there.\n",
        report.checked,
        if n == 1 { "" } else { "s" }
    ));
    if n > 0 {
        out.push_str("\n| package | installed | security archive |\n| --- | --- | --- |\n");
        for p in &report.pending {
            out.push_str(&format!("| {} | {} | {} |\n", p.package, p.installed, p.available));
        }
    }
    for scanner in &report.scanners {
        match &scanner.skipped {
            Some(reason) => out.push_str(&format!("\n{}: not run ({reason}).\n", scanner.scanner)),
            None => out.push_str(&format!("\n{}: {} finding(s).\n", scanner.scanner, scanner.findings.len())),
        }
    }
    out
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn cell(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    if flat.chars().count() > 120 {
        format!("{}…", flat.chars().take(119).collect::<String>())
    } else {
        flat
    }
}

fn signed_size(delta: i64) -> String {
    match delta.cmp(&0) {
        Ordering::Greater => format!("+{}", human_size(delta)),
        Ordering::Less => human_size(delta),
        Ordering::Equal => "no change".into(),
    }
}

fn fence(text: &str) -> String {
    let body = text.trim_end();
    let ticks = if body.contains("```") { "~~~~" } else { "```" };
    let lines = body.lines().count();
    let block = format!("{ticks}text\n{body}\n{ticks}\n");
    if lines > FOLD_LINES {
        format!("<details><summary>{lines} lines</summary>\n\n{block}\n</details>\n")
    } else {
        block
    }
}

/// The changes of `snapshot` since its previous release, as Markdown (a heading level below `level`).
pub fn changes(snapshot: &Snapshot, level: &str) -> String {
    let Some(previous) = &snapshot.previous else {
        return "First documented release.\n".into();
    };
    let mut out = format!(
        "Since {} ({}{}): size {} → {} ({}).\n",
        short(&previous.id),
        previous.created.get(..10).unwrap_or(&previous.created),
        if previous.tags.is_empty() { String::new() } else { format!(", {}", previous.tags.join(", ")) },
        human_size(previous.size),
        human_size(snapshot.current.size),
        signed_size(snapshot.current.size - previous.size)
    );
    let mut names: Vec<&String> = previous.packages.keys().chain(snapshot.current.packages.keys()).collect();
    names.sort();
    names.dedup();
    let empty = Packages::new();
    for name in names {
        let old = previous.packages.get(name).unwrap_or(&empty);
        let new = snapshot.current.packages.get(name).unwrap_or(&empty);
        let change = diff(old, new);
        if change.is_empty() {
            out.push_str(&format!("\n{level} {name}\n\nNo package changed.\n"));
            continue;
        }
        out.push_str(&format!(
            "\n{level} {name}\n\n| change | package | before | after |\n| --- | --- | --- | --- |\n"
        ));
        for (package, version) in &change.added {
            out.push_str(&format!("| added | {} | | {} |\n", cell(package), cell(version)));
        }
        for (package, version) in &change.removed {
            out.push_str(&format!("| removed | {} | {} | |\n", cell(package), cell(version)));
        }
        for (kind, list) in [("upgraded", &change.upgraded), ("downgraded", &change.downgraded)] {
            for (package, before, after) in list {
                out.push_str(&format!("| {kind} | {} | {} | {} |\n", cell(package), cell(before), cell(after)));
            }
        }
    }
    out
}

/// One image's page.
pub fn page(snapshot: &Snapshot) -> String {
    let s = snapshot;
    let mut out = format!("# {}\n\n", s.node);
    out.push_str("<!-- Generated by `cargo xtask docs`; edit images/spec.yml or the image, not this file. -->\n\n");
    if let Some(description) = &s.description {
        out.push_str(&format!("{description}\n\n"));
    }
    out.push_str("## Build\n\n| | |\n| --- | --- |\n");
    let mut row = |key: &str, value: String| out.push_str(&format!("| {key} | {} |\n", cell(&value)));
    row("repository", format!("`{}`", s.repository));
    row("tags", s.current.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "));
    row("image ID", format!("`{}`", s.current.id));
    if let Some(digest) = &s.digest {
        row("digest", format!("`{digest}`"));
    }
    row("variant", s.variant.clone());
    row("parent", format!("`{}`", s.parent));
    row("size", human_size(s.current.size));
    row("created", s.current.created.clone());
    if let Some(revision) = &s.revision {
        row("commit", format!("`{revision}`"));
    }
    out.push_str(&security_section(s.security.as_ref()));
    if !s.platforms.is_empty() {
        out.push_str(&platforms_section(s));
    }
    out.push_str("\n## Changes since the previous release\n\n");
    out.push_str(&changes(s, "###"));
    out.push_str("\n## Layers\n\n| # | created by | size | cumulative |\n| --- | --- | --- | --- |\n");
    let mut total = 0;
    for (i, layer) in s.layers.iter().enumerate() {
        total += layer.size;
        let created_by = if layer.created_by.trim().is_empty() {
            "(imported root file system)".to_string()
        } else {
            format!("`{}`", cell(&layer.created_by).replace('`', "'"))
        };
        out.push_str(&format!("| {} | {created_by} | {} | {} |\n", i + 1, human_size(layer.size), human_size(total)));
    }
    for section in &s.sections {
        out.push_str(&format!("\n## {}\n\n`{}`", section.name, section.command.replace('`', "'")));
        if let Some(packages) = &section.packages {
            let n = packages.len();
            out.push_str(&format!(" ({n} package{})", if n == 1 { "" } else { "s" }));
        }
        out.push_str("\n\n");
        if let Some(failure) = &section.failure {
            out.push_str(&format!("**This command failed inside the image: {failure}.**\n\n"));
        }
        if section.output.trim().is_empty() {
            out.push_str("(no output)\n");
        } else {
            out.push_str(&fence(&section.output));
        }
    }
    out
}

/// The index: the stack's graph, every documented image and its release history.
pub fn index(spec: &Spec, graph: &ImageGraph, snapshots: &[Snapshot]) -> String {
    let mut out = String::from("# Images\n\n<!-- Generated by `cargo xtask docs`. -->\n\n");
    out.push_str("```mermaid\n");
    // The stack's first platform: a page depends on no host.
    out.push_str(&crate::render::graph::mermaid(spec, graph, &spec.stack.platforms[..1]));
    out.push_str("```\n\n| image | variant | size | tags | changes |\n| --- | --- | --- | --- | --- |\n");
    for s in snapshots {
        let stem = file_stem(spec, &s.image, &s.variant);
        let change = match &s.previous {
            None => "first release".to_string(),
            Some(previous) => signed_size(s.current.size - previous.size),
        };
        out.push_str(&format!(
            "| [{}]({stem}.md) | {} | {} | {} | {} |\n",
            s.node,
            s.variant,
            human_size(s.current.size),
            cell(&s.current.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")),
            change
        ));
    }
    out.push_str(
        "\n## Release history\n\n| image | image ID | created | size | tags |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in snapshots {
        for entry in s.history.iter().rev() {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} |\n",
                s.node,
                short(&entry.id),
                entry.created.get(..10).unwrap_or(&entry.created),
                human_size(entry.size),
                cell(&entry.tags.join(", "))
            ));
        }
    }
    out
}

/// The release notes: what changed in each image since its previous release.
pub fn release_notes(snapshots: &[Snapshot]) -> String {
    let mut out = String::from("# Release notes\n\n<!-- Generated by `cargo xtask docs`. -->\n");
    for s in snapshots {
        out.push_str(&format!("\n## {}\n\n", s.node));
        out.push_str(&changes(s, "###"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::pip("jupyterlab==4.2.5\nnumpy==2.1.0\n", Some(&[("jupyterlab", "4.2.5"), ("numpy", "2.1.0")][..]))]
    #[case::dpkg("bash\t5.2.15-2+b7\nlibc6\t2.36-9\n", Some(&[("bash", "5.2.15-2+b7"), ("libc6", "2.36-9")][..]))]
    #[case::r("base 4.2.2\nggplot2 3.5.1\n", Some(&[("base", "4.2.2"), ("ggplot2", "3.5.1")][..]))]
    #[case::prose("R version 4.2.2 (2022-10-31)\nCopyright\n", None)]
    #[case::empty("\n", None)]
    fn reads_package_lists(#[case] output: &str, #[case] expected: Option<&[(&str, &str)]>) {
        let expected = expected.map(|list| list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect());
        assert_eq!(parse_packages(output), expected);
    }

    #[rstest]
    #[case("1.10", "1.9", Ordering::Greater)]
    #[case("2.36-9", "2.36-10", Ordering::Less)]
    #[case("4.2.5", "4.2.5", Ordering::Equal)]
    #[case("1.0", "1.0.1", Ordering::Less)]
    fn compares_versions(#[case] a: &str, #[case] b: &str, #[case] expected: Ordering) {
        assert_eq!(compare_versions(a, b), expected);
    }

    fn packages(list: &[(&str, &str)]) -> Packages {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn diffs_package_lists() {
        let old = packages(&[("a", "1.0"), ("b", "2.0"), ("c", "1.10"), ("gone", "1")]);
        let new = packages(&[("a", "1.0"), ("b", "2.1"), ("c", "1.9"), ("new", "0.1")]);
        let change = diff(&old, &new);
        assert_eq!(change.added, [("new".to_string(), "0.1".to_string())]);
        assert_eq!(change.removed, [("gone".to_string(), "1".to_string())]);
        assert_eq!(change.upgraded, [("b".to_string(), "2.0".to_string(), "2.1".to_string())]);
        assert_eq!(change.downgraded, [("c".to_string(), "1.10".to_string(), "1.9".to_string())]);
        assert!(diff(&new, &new).is_empty());
    }

    fn snapshot(id: &str, size: i64, list: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            schema: SNAPSHOT_SCHEMA.into(),
            node: "base".into(),
            image: "base".into(),
            variant: "cpu".into(),
            repository: "r/base".into(),
            description: None,
            parent: "debian".into(),
            revision: None,
            digest: None,
            current: Release {
                id: id.into(),
                created: "2026-11-21T00:00:00Z".into(),
                size,
                tags: vec![],
                packages: BTreeMap::from([("pip".to_string(), packages(list))]),
            },
            layers: vec![],
            sections: vec![],
            previous: None,
            history: vec![],
            security: None,
            platforms: vec![],
        }
    }

    #[test]
    fn a_page_says_which_security_updates_are_pending() {
        let mut s = snapshot("sha256:1", 100, &[("a", "1")]);
        assert!(!page(&s).contains("## Pending security updates"), "no report, no section");
        s.security = Some(crate::supply::security::Report {
            schema: crate::supply::security::REPORT_SCHEMA.into(),
            node: "base".into(),
            image_id: "sha256:1".into(),
            suite: Some("bookworm-security".into()),
            checked: "2026-11-22T05:00:00Z".into(),
            skipped: None,
            pending: vec![crate::supply::security::Pending {
                package: "libssl3".into(),
                installed: "3.0.20".into(),
                available: "3.0.22".into(),
                archive: "Debian-Security:12/oldstable-security".into(),
            }],
            scanners: vec![],
        });
        let text = page(&s);
        assert!(
            text.contains(
                "## Pending security updates\n\nChecked 2026-11-22T05:00:00Z against `bookworm-security`: 1 package"
            ),
            "{text}"
        );
        assert!(text.contains("| libssl3 | 3.0.20 | 3.0.22 |"), "{text}");
    }

    #[test]
    fn the_previous_release_moves_only_when_the_image_changes() {
        let first = next_snapshot(None, snapshot("sha256:1", 100, &[("a", "1")]));
        assert_eq!((first.previous.is_none(), first.history.len()), (true, 1));
        let again = next_snapshot(Some(&first), snapshot("sha256:1", 100, &[("a", "1")]));
        assert_eq!(again, first, "regenerating for the same image changes nothing");
        let second = next_snapshot(Some(&first), snapshot("sha256:2", 150, &[("a", "1"), ("b", "2")]));
        assert_eq!(second.previous.as_ref().map(|p| p.id.as_str()), Some("sha256:1"));
        assert_eq!(second.history.len(), 2);
        let text = changes(&second, "###");
        assert!(text.contains("size 100 B → 150 B (+50 B)"), "{text}");
        assert!(text.contains("| added | b | | 2 |"), "{text}");
        assert_eq!(next_snapshot(Some(&second), snapshot("sha256:2", 150, &[("a", "1"), ("b", "2")])), second);
    }

    #[test]
    fn long_outputs_are_folded() {
        let long: String = (0..30).map(|i| format!("line {i}\n")).collect();
        assert!(fence(&long).starts_with("<details><summary>30 lines</summary>"));
        assert!(fence("short\n").starts_with("```text\nshort\n```"));
    }

    #[test]
    fn a_page_of_several_platforms_shows_each_with_its_size_and_the_packages_one_has_alone() {
        let mut main = snapshot("sha256:amd", 2_000_000, &[("numpy", "2.1.0"), ("only-amd", "1.0"), ("same", "1")]);
        let arm = snapshot("sha256:arm", 3_000_000, &[("numpy", "2.1.1"), ("only-arm", "0.5"), ("same", "1")]);
        main.platforms = vec![
            platform_doc(&main, "linux/amd64", Some(&main)),
            platform_doc(&main, "linux/arm64", Some(&arm)),
            platform_doc(&main, "linux/s390x", None),
        ];
        let arm_doc = &main.platforms[1];
        assert_eq!(arm_doc.only_here["pip"], packages(&[("only-arm", "0.5")]));
        assert_eq!(arm_doc.lacks["pip"], packages(&[("only-amd", "1.0")]));
        assert_eq!(arm_doc.other_versions["pip"], [("numpy".to_string(), "2.1.0".to_string(), "2.1.1".to_string())]);
        assert!(main.platforms[0].only_here.is_empty() && main.platforms[0].other_versions.is_empty());
        let page = page(&main);
        for line in [
            "## Platforms",
            "| linux/amd64 | `amd` | 2.0 MB | 0 | 0 | 0 |",
            "| linux/arm64 | `arm` | 3.0 MB | 1 | 1 | 1 |",
            "| linux/s390x | not documented in this run (`cargo xtask docs --platform linux/s390x`) | | | | |",
            "### linux/amd64 and linux/arm64",
            "| pip | only-arm | | 0.5 |",
            "| pip | only-amd | 1.0 | |",
            "| pip | numpy | 2.1.0 | 2.1.1 |",
        ] {
            assert!(page.contains(line), "{line}\n{page}");
        }
        assert!(!page.contains("### linux/amd64 and linux/s390x"), "{page}");
        assert!(!super::page(&snapshot("sha256:amd", 1, &[])).contains("## Platforms"), "one platform: no table");
    }
}
