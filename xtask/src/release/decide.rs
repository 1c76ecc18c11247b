//! What `release` may push, and the record it leaves. Pure.
//!
//! Test results come from the harness's JUnit report (`STACK_JUNIT=<path> cargo test`): each
//! `testcase`'s `classname` is the node (`image` or `image@variant`). An image whose tests
//! failed is held back, and so is every image built on it; an image with no result (or only
//! skipped ones) is held back unless the caller accepts untested images. `--all-or-nothing`
//! turns any hold into "push nothing".

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::graph::{ImageGraph, NodeId};

/// The schema name of the release record (`target/xtask/release.json`).
pub const RELEASE_RECORD_SCHEMA: &str = "stack-release/v1";

#[derive(Debug, thiserror::Error)]
#[error("cannot read the test results {path}: {reason}\n  hint: pass the JUnit file the harness wrote (`STACK_JUNIT=<path> cargo test`)")]
pub struct ResultsError {
    pub path: String,
    pub reason: String,
}

/// The start of the message the harness gives a GPU trial it skips on a host without a GPU:
/// how a release tells "untested on a GPU" from other skips.
pub const GPU_SKIPPED: &str = "needs an NVIDIA GPU";

/// Test counts per node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Of the skipped, GPU trials skipped for want of a GPU.
    pub gpu_skipped: usize,
}

/// How one test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Skipped; `true` when it is a GPU trial on a host without a GPU.
    Skipped(bool),
    Passed,
    Failed,
}

/// One test case of a JUnit report: its node, its name, how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub node: String,
    pub name: String,
    pub verdict: Verdict,
}

/// Reads a JUnit report's test cases. The node is the `classname` of each `testcase` (else the
/// part of its name before the first `::`); `failure` and `error` count as failed.
pub fn parse_cases(xml: &str) -> Result<Vec<Case>, String> {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    let attribute = |e: &BytesStart<'_>, key: &str| -> Result<Option<String>, String> {
        match e.try_get_attribute(key).map_err(|e| e.to_string())? {
            Some(a) => Ok(Some(a.unescape_value().map_err(|e| e.to_string())?.into_owned())),
            None => Ok(None),
        }
    };
    let case_of = |e: &BytesStart<'_>| -> Result<Case, String> {
        let name = attribute(e, "name")?.unwrap_or_default();
        let node = match attribute(e, "classname")? {
            Some(class) if !class.is_empty() => class,
            _ => name.split("::").next().unwrap_or_default().to_string(),
        };
        Ok(Case { node, name, verdict: Verdict::Passed })
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) if e.name().as_ref() == b"testcase" => current = Some(case_of(&e)?),
            Event::Empty(e) if e.name().as_ref() == b"testcase" => out.push(case_of(&e)?),
            Event::Start(e) | Event::Empty(e) => {
                if let Some(case) = current.as_mut() {
                    match e.name().as_ref() {
                        b"failure" | b"error" => case.verdict = Verdict::Failed,
                        b"skipped" if case.verdict != Verdict::Failed => {
                            let message = attribute(&e, "message")?.unwrap_or_default();
                            case.verdict = Verdict::Skipped(message.starts_with(GPU_SKIPPED));
                        }
                        _ => {}
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => out.extend(current.take()),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Counts per node over the cases of several reports (the build jobs', the GPU job's): a case
/// reported more than once counts once, failed over passed over skipped.
pub fn tally(cases: impl IntoIterator<Item = Case>) -> BTreeMap<String, Counts> {
    let mut merged: BTreeMap<(String, String), Verdict> = BTreeMap::new();
    for case in cases {
        let slot = merged.entry((case.node, case.name)).or_insert(case.verdict);
        *slot = (*slot).max(case.verdict);
    }
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for ((node, _), verdict) in merged {
        let counts = out.entry(node).or_default();
        match verdict {
            Verdict::Failed => counts.failed += 1,
            Verdict::Passed => counts.passed += 1,
            Verdict::Skipped(gpu) => {
                counts.skipped += 1;
                counts.gpu_skipped += usize::from(gpu);
            }
        }
    }
    out
}

/// Reads one JUnit report into counts per node.
pub fn parse_junit(xml: &str) -> Result<BTreeMap<String, Counts>, String> {
    Ok(tally(parse_cases(xml)?))
}

/// Why an image is not pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Its own tests failed (how many).
    TestsFailed(usize),
    /// An image it is built on failed its tests.
    AncestorFailed(String),
    /// No test result names it.
    Untested,
    /// Another image was held, and the release is all-or-nothing.
    AllOrNothing,
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::TestsFailed(n) => write!(f, "{n} test{} failed", if *n == 1 { "" } else { "s" }),
            Hold::AncestorFailed(node) => write!(f, "built on {node}, whose tests failed"),
            Hold::Untested => write!(f, "no test result (pass --untested to push it anyway)"),
            Hold::AllOrNothing => write!(f, "another image was held back (--all-or-nothing)"),
        }
    }
}

/// Each of `nodes` (topological order) with `None` to push it or the reason it is held.
/// `results: None` means the caller accepts every image untested.
pub fn decide(
    graph: &ImageGraph,
    nodes: &[NodeId],
    results: Option<&BTreeMap<String, Counts>>,
    accept_untested: bool,
    all_or_nothing: bool,
) -> Vec<(NodeId, Option<Hold>)> {
    let failed: BTreeSet<&str> =
        results.map(|r| r.iter().filter(|(_, c)| c.failed > 0).map(|(n, _)| n.as_str()).collect()).unwrap_or_default();
    let mut out: Vec<(NodeId, Option<Hold>)> = nodes
        .iter()
        .map(|id| {
            // Only skipped tests (a GPU trial on a machine without one) is no test at all.
            let counts = results.and_then(|r| r.get(&id.name)).filter(|c| c.passed > 0 || c.failed > 0);
            let hold = if let Some(c) = counts.filter(|c| c.failed > 0) {
                Some(Hold::TestsFailed(c.failed))
            } else if let Some(ancestor) = graph.ancestors(id).into_iter().find(|a| failed.contains(a.name.as_str())) {
                Some(Hold::AncestorFailed(ancestor.name.clone()))
            } else if results.is_some() && counts.is_none() && !accept_untested {
                Some(Hold::Untested)
            } else {
                None
            };
            (id.clone(), hold)
        })
        .collect();
    if all_or_nothing && out.iter().any(|(_, hold)| hold.is_some()) {
        for (_, hold) in out.iter_mut().filter(|(_, hold)| hold.is_none()) {
            *hold = Some(Hold::AllOrNothing);
        }
    }
    out
}

/// What `release` did: schema `stack-release/v1`, for the CI jobs that follow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub schema: String,
    /// `host[:port]`.
    pub registry: String,
    pub images: Vec<ReleasedImage>,
    pub promotions: Vec<Promotion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedImage {
    pub node: String,
    /// `host/namespace/name`.
    pub repository: String,
    /// `pushed` or `held`.
    pub status: String,
    /// Why it was held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The manifest digest every tag below names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The pin first, then the tags moved to the same digest.
    pub tags: Vec<String>,
    /// What a reader must know, such as "released untested on a GPU".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Its documents in the registry (SBOM, provenance, signature), attached before its tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attach::Attachment>,
    /// The security trials' report for this image, when they ran for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<crate::supply::security::Report>,
    /// For the image index over an image's platforms (`node` is then `image[@variant]`):
    /// each platform's node and manifest digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<IndexedPlatform>,
}

/// One platform of a released image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedPlatform {
    /// `linux/arm64`.
    pub platform: String,
    /// `scipy-notebook/arm64`.
    pub node: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub node: String,
    pub repository: String,
    pub from: String,
    pub to: String,
    pub digest: String,
    /// `moved`, `already there`, or `would move` (dry run).
    pub status: String,
    /// Documents the image lacked and got before its tag moved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<super::attach::Attachment>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuites name="images" tests="5" failures="1" skipped="1">
  <testsuite name="base" tests="2" failures="0" skipped="0" time="0.1">
    <testcase classname="base" name="base::common/common::shell" time="0.001"/>
    <testcase classname="base" name="base::base/checks::file" time="0.001"></testcase>
  </testsuite>
  <testsuite name="tools" tests="2" failures="1" skipped="1" time="0.1">
    <testcase classname="tools" name="tools::tools/checks::x" time="0.001">
      <failure message="want &lt;1&gt;">want &lt;1&gt;</failure>
    </testcase>
    <testcase classname="tools" name="tools::tools/checks::gpu" time="0.0"><skipped message="no GPU"/></testcase>
  </testsuite>
  <testsuite name="base@gpu" tests="1" failures="0" skipped="0" time="0.1">
    <testcase name="base@gpu::common/common::shell" time="0.001"/>
  </testsuite>
</testsuites>"#;

    #[test]
    fn reports_of_several_jobs_add_up_and_a_run_gpu_trial_beats_a_skipped_one() {
        let report = |cases: &str| format!("<testsuites><testsuite name=\"x\">{cases}</testsuite></testsuites>");
        let build_job = report(
            r#"<testcase classname="app@gpu" name="a::x"/><testcase classname="app@gpu" name="a::cuda"><skipped message="needs an NVIDIA GPU; this host has none"/></testcase><testcase classname="base@gpu" name="b::cuda"><skipped message="needs an NVIDIA GPU; this host has none"/></testcase>"#,
        );
        let gpu_job = report(r#"<testcase classname="app@gpu" name="a::cuda"/>"#);
        let mut cases = parse_cases(&build_job).unwrap();
        let alone = tally(cases.clone());
        assert_eq!(alone["app@gpu"], Counts { passed: 1, skipped: 1, gpu_skipped: 1, ..Default::default() });
        cases.extend(parse_cases(&gpu_job).unwrap());
        let together = tally(cases.clone());
        assert_eq!(together["app@gpu"], Counts { passed: 2, ..Default::default() }, "the GPU job ran it");
        assert_eq!(together["base@gpu"], Counts { skipped: 1, gpu_skipped: 1, ..Default::default() });
        let failed = report(r#"<testcase classname="app@gpu" name="a::cuda"><failure message="no"/></testcase>"#);
        cases.extend(parse_cases(&failed).unwrap());
        assert_eq!(tally(cases)["app@gpu"].failed, 1, "a failure anywhere counts");
    }

    #[test]
    fn reads_junit_per_node() {
        let counts = parse_junit(JUNIT).unwrap();
        assert_eq!(counts["base"], Counts { passed: 2, ..Default::default() });
        assert_eq!(counts["tools"], Counts { failed: 1, skipped: 1, ..Default::default() });
        assert_eq!(counts["base@gpu"], Counts { passed: 1, ..Default::default() });
        assert!(parse_junit("<testsuites><testcase").is_err());
    }

    fn fixture() -> (Spec, ImageGraph) {
        let file = crate::fixture::source_dir().join("images/spec.yml");
        let spec = Spec::load(&file).unwrap();
        let graph = ImageGraph::new(&spec);
        (spec, graph)
    }

    fn holds(decisions: &[(NodeId, Option<Hold>)]) -> Vec<(String, Option<Hold>)> {
        decisions.iter().map(|(id, hold)| (id.name.clone(), hold.clone())).collect()
    }

    #[test]
    fn a_failure_holds_the_image_and_its_descendants_only() {
        let (_, graph) = fixture();
        let nodes: Vec<NodeId> = graph.topological_order().cloned().collect();
        let results = parse_junit(JUNIT).unwrap();
        let decided = holds(&decide(&graph, &nodes, Some(&results), true, false));
        let of = |name: &str| decided.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(of("base"), None);
        assert_eq!(of("tools"), Some(Hold::TestsFailed(1)));
        assert_eq!(of("app"), Some(Hold::AncestorFailed("tools".into())));
        assert_eq!(of("extra"), Some(Hold::AncestorFailed("tools".into())));
        assert_eq!(of("base@gpu"), None);
        assert_eq!(of("tools@gpu"), None, "untested, and accepted");
        let strict = holds(&decide(&graph, &nodes, Some(&results), false, false));
        assert_eq!(strict.iter().find(|(n, _)| n == "tools@gpu").unwrap().1, Some(Hold::Untested));
        let mut skipped_only = results.clone();
        skipped_only.insert("base".into(), Counts { skipped: 3, ..Default::default() });
        let strict = holds(&decide(&graph, &nodes, Some(&skipped_only), false, false));
        assert_eq!(strict[0], ("base".to_string(), Some(Hold::Untested)), "every test skipped is no test");
    }

    #[test]
    fn all_or_nothing_holds_everything_after_one_failure() {
        let (_, graph) = fixture();
        let nodes: Vec<NodeId> = graph.topological_order().cloned().collect();
        let results = parse_junit(JUNIT).unwrap();
        let decided = decide(&graph, &nodes, Some(&results), true, true);
        assert!(decided.iter().all(|(_, hold)| hold.is_some()));
        assert_eq!(decided[0].1, Some(Hold::AllOrNothing));
        let clean = decide(&graph, &nodes, None, true, true);
        assert!(clean.iter().all(|(_, hold)| hold.is_none()));
    }
}
