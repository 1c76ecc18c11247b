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

/// Test counts per node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Reads a JUnit report into counts per node (the `classname` of each `testcase`, else the part
/// of its name before the first `::`). `failure` and `error` count as failed.
pub fn parse_junit(xml: &str) -> Result<BTreeMap<String, Counts>, String> {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    let mut current: Option<(String, Counts)> = None;
    let node_of = |e: &BytesStart<'_>| -> Result<String, String> {
        let attribute = |key: &str| -> Result<Option<String>, String> {
            match e.try_get_attribute(key).map_err(|e| e.to_string())? {
                Some(a) => Ok(Some(a.unescape_value().map_err(|e| e.to_string())?.into_owned())),
                None => Ok(None),
            }
        };
        match attribute("classname")? {
            Some(class) if !class.is_empty() => Ok(class),
            _ => {
                let name = attribute("name")?.unwrap_or_default();
                Ok(name.split("::").next().unwrap_or_default().to_string())
            }
        }
    };
    let finish = |out: &mut BTreeMap<String, Counts>, (node, case): (String, Counts)| {
        let entry = out.entry(node).or_default();
        if case.failed > 0 {
            entry.failed += 1;
        } else if case.skipped > 0 {
            entry.skipped += 1;
        } else {
            entry.passed += 1;
        }
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) if e.name().as_ref() == b"testcase" => current = Some((node_of(&e)?, Counts::default())),
            Event::Empty(e) if e.name().as_ref() == b"testcase" => finish(&mut out, (node_of(&e)?, Counts::default())),
            Event::Start(e) | Event::Empty(e) => {
                if let Some((_, case)) = current.as_mut() {
                    match e.name().as_ref() {
                        b"failure" | b"error" => case.failed += 1,
                        b"skipped" => case.skipped += 1,
                        _ => {}
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some(case) = current.take() {
                    finish(&mut out, case);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
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
    fn reads_junit_per_node() {
        let counts = parse_junit(JUNIT).unwrap();
        assert_eq!(counts["base"], Counts { passed: 2, failed: 0, skipped: 0 });
        assert_eq!(counts["tools"], Counts { passed: 0, failed: 1, skipped: 1 });
        assert_eq!(counts["base@gpu"], Counts { passed: 1, failed: 0, skipped: 0 });
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
        skipped_only.insert("base".into(), Counts { passed: 0, failed: 0, skipped: 3 });
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
