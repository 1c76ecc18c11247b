//! The fanned-out CI workflow (`.github/workflows/ci.yml`, docs/ci.md), played here on the
//! fixture stack: the plan job's levels, then one job per image, each its own process on its own
//! empty engine (a second `dockerd`), all sharing one real registry, then the release job with
//! no engine at all. It must give what one engine gives: the same pins, test results and tags,
//! no image built twice, and every job reading layers only of what its image is built on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use xtask::tags::TagRecord;

use crate::common::engine::EngineStack;
use crate::common::registry::Registry;
use crate::common::second_engine::SecondEngine;

fn xtask(spec: &Path, host: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("--spec").arg(spec).args(args).env("CI", "1").env("DOCKER_HOST", host);
    command.env_remove("STACK_CACHE").stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// The harness's `stack-test` binary (built once here: it belongs to another package).
fn stack_test() -> PathBuf {
    let status = Command::new("cargo").args(["build", "-q", "-p", "harness", "--bin", "stack-test"]).status().unwrap();
    assert!(status.success(), "cannot build stack-test");
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("stack-test")
}

#[track_caller]
fn succeeded(output: Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status.code());
    stdout.into_owned()
}

/// `name=value` lines of `$GITHUB_OUTPUT`: each level's nodes.
fn levels(output: &str) -> Vec<Vec<String>> {
    let mut levels = Vec::new();
    for line in output.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        if let Some(level) = key.strip_prefix("level").and_then(|n| n.parse::<usize>().ok()) {
            let matrix: serde_json::Value = serde_json::from_str(value).unwrap();
            let nodes = matrix["include"].as_array().unwrap().iter().map(|e| e["node"].as_str().unwrap().to_string());
            levels.resize_with(levels.len().max(level + 1), Vec::new);
            levels[level] = nodes.collect();
        }
    }
    levels
}

/// Rows of a build's summary: (node as the table writes it: image and variant, status).
fn statuses(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|line| !line.starts_with("IMAGE"))
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
            let node = if columns.get(1) == Some(&"cpu") {
                columns.first()?.to_string()
            } else {
                format!("{}@{}", columns.first()?, columns.get(1)?)
            };
            Some((node, columns.get(2)?.to_string()))
        })
        .collect()
}

/// Repositories (`<namespace>/<name>`) whose blobs the registry served since log line `from`.
fn blobs_read(registry: &Registry, from: usize) -> BTreeSet<String> {
    registry
        .access_log()
        .lines()
        .skip(from)
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/"))
        .filter_map(|line| Some(line.split("\"GET /v2/").nth(1)?.split("/blobs/").next()?.to_string()))
        .collect()
}

/// Passed, failed and skipped trials per node, from JUnit files.
fn results(files: &[PathBuf]) -> BTreeMap<String, xtask::release::Counts> {
    let cases =
        files.iter().flat_map(|file| xtask::release::parse_cases(&std::fs::read_to_string(file).unwrap()).unwrap());
    xtask::release::tally(cases)
}

fn tags_by_node(records: &[TagRecord]) -> BTreeMap<String, Vec<String>> {
    records.iter().flat_map(|r| r.images.iter().map(|i| (i.node.clone(), i.tags.clone()))).collect()
}

fn read_record(path: &Path) -> TagRecord {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_fanned_out_workflow_gives_what_one_engine_gives() {
    let registry = Registry::start(None);
    let mut stack = EngineStack::new();
    stack.use_registry(&registry.host);
    let spec = stack.stack.spec_file();
    let work = stack.stack.root().join("ci");
    let harness = stack_test();
    let here = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());

    // The plan job.
    let plan = succeeded(
        xtask(&spec, &here, &["plan", "--registry", "--all-variants", "--format", "github-levels"]).output().unwrap(),
    );
    let levels = levels(&plan);
    assert_eq!(levels.len(), 3, "{plan}");

    // One job per image, level by level, each on an empty engine of its own.
    let graph_spec = xtask::spec::Spec::load(&spec).unwrap();
    let graph = xtask::graph::ImageGraph::new(&graph_spec);
    let mut built_by_jobs: BTreeMap<String, usize> = BTreeMap::new();
    for node in levels.iter().flatten() {
        let engine = SecondEngine::start();
        let mark = registry.access_log().lines().count();
        let build = succeeded(xtask(&spec, &engine.host, &["build", node, "--registry", "--push"]).output().unwrap());
        for (name, status) in statuses(&build) {
            if status.starts_with("built") {
                *built_by_jobs.entry(name).or_default() += 1;
            }
        }
        let junit = work.join("junit").join(format!("{node}.xml"));
        std::fs::create_dir_all(junit.parent().unwrap()).unwrap();
        let tests = Command::new(&harness)
            .env("STACK_SPEC", &spec)
            .env("DOCKER_HOST", &engine.host)
            .env("STACK_TEST_NODES", node)
            .env("STACK_JUNIT", &junit)
            .env("STACK_CACHE", "registry")
            .output()
            .unwrap();
        succeeded(tests);
        let record = work.join("tags").join(format!("{node}.json"));
        let tag_args = ["tag", node.as_str(), "--branch", "main", "--record", record.to_str().unwrap()];
        succeeded(xtask(&spec, &engine.host, &tag_args).output().unwrap());
        // Its SBOMs and provenance, read inside the image here, for the release job.
        let sboms = work.join("sbom");
        let sbom_args = ["sbom", node.as_str(), "--out", sboms.to_str().unwrap()];
        succeeded(xtask(&spec, &engine.host, &sbom_args).output().unwrap());
        // What this job read: only what its image is built on.
        let id = graph.topological_order().find(|id| &id.name == node).unwrap().clone();
        let image = &graph_spec.images[&id.image];
        let allowed: BTreeSet<String> = image
            .parents
            .get(&id.variant)
            .map(|parent| parent.name().to_string())
            .into_iter()
            .chain(image.depends_on.iter().cloned())
            .map(|name| {
                let repository = if graph_spec.bases.contains_key(&name) {
                    graph_spec.base_repository(&name)
                } else {
                    graph_spec.repository(&name, &id.variant)
                };
                repository.split_once('/').unwrap().1.to_string()
            })
            .collect();
        let read = blobs_read(&registry, mark);
        assert!(read.is_subset(&allowed), "the job of {node} read layers of {read:?}; it is built on {allowed:?}");
    }
    let everything: Vec<String> = levels.iter().flatten().cloned().collect();
    assert!(built_by_jobs.values().all(|n| *n == 1), "an image was built twice: {built_by_jobs:?}");
    assert_eq!(built_by_jobs.keys().cloned().collect::<BTreeSet<_>>(), everything.iter().cloned().collect());

    // The release job, with no engine at all: the documents the jobs made are attached (small
    // uploads), and tags are manifest PUTs of pins already there.
    let mark = registry.access_log().lines().count();
    let release = xtask(
        &spec,
        "unix:///no/engine/here.sock",
        &[
            "release",
            "--tags",
            work.join("tags").to_str().unwrap(),
            "--results",
            work.join("junit").to_str().unwrap(),
            "--attestations",
            work.join("sbom").to_str().unwrap(),
            "--record",
            work.join("release.json").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let released = succeeded(release);
    assert!(!released.contains("pushing"), "{released}");
    let log: Vec<String> = registry.access_log().lines().skip(mark).map(str::to_string).collect();
    let layers = |line: &&String| (line.contains("\"GET ") && line.contains("/blobs/")) || line.contains("\"PATCH ");
    assert!(!log.iter().any(|line| layers(&line)), "the release read or pushed image layers:\n{}", log.join("\n"));

    // One engine, as today: the same pins, results and tags.
    let one = stack.stack.root().join("one");
    succeeded(xtask(&spec, &here, &["build", "--all-variants"]).output().unwrap());
    let junit = one.join("junit.xml");
    std::fs::create_dir_all(&one).unwrap();
    let tests = Command::new(&harness)
        .env("STACK_SPEC", &spec)
        .env("STACK_JUNIT", &junit)
        .env("DOCKER_HOST", &here)
        .output()
        .unwrap();
    succeeded(tests);
    let record = one.join("tags.json");
    succeeded(
        xtask(&spec, &here, &["tag", "--all-variants", "--branch", "main", "--record", record.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let fanned: Vec<PathBuf> = everything.iter().map(|n| work.join("junit").join(format!("{n}.xml"))).collect();
    assert_eq!(results(&fanned), results(&[junit]), "test results");
    let fanned_tags: Vec<TagRecord> =
        everything.iter().map(|n| read_record(&work.join("tags").join(format!("{n}.json")))).collect();
    let one_tags = read_record(&record);
    assert_eq!(tags_by_node(&fanned_tags), tags_by_node(std::slice::from_ref(&one_tags)), "tags");
    let pins = |records: &[TagRecord]| -> BTreeMap<String, String> {
        records.iter().flat_map(|r| r.images.iter().map(|i| (i.node.clone(), i.pin.clone()))).collect()
    };
    assert_eq!(pins(&fanned_tags), pins(&[one_tags]), "pins");
    let release_record: xtask::release::ReleaseRecord =
        serde_json::from_str(&std::fs::read_to_string(work.join("release.json")).unwrap()).unwrap();
    assert_eq!(release_record.images.len(), everything.len());
    assert!(release_record.images.iter().all(|image| image.status == "pushed"), "{release_record:?}");
    assert!(
        release_record.images.iter().all(|image| image.attachments.len() == 2),
        "every image has its SBOM and provenance: {release_record:?}"
    );
}
