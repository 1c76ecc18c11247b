//! The registry as the build cache of record, on the fixture stack: two engines (this machine's
//! and a second, empty `dockerd`) share one real registry. What one builds and pushes, the
//! other finds by manifest and does not build, nor pull; a change builds exactly the images it
//! touches, pulling only what they are built on; a killed run loses nothing it finished; a base
//! comes from the registry where its recipe cannot run; the previous image serves as layer
//! cache; and with no registry at all, builds still work, with a notice.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use xtask::graph::ImageGraph;
use xtask::identity::Identities;
use xtask::registry::Registry as Client;
use xtask::spec::Spec;

use crate::common::engine::EngineStack;
use crate::common::registry::Registry;
use crate::common::second_engine::SecondEngine;

/// `cargo xtask --spec <spec> <args>` on engine `host` (the default one when `None`).
fn xtask(spec: &Path, host: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("--spec").arg(spec).args(args).env("CI", "1").stdout(Stdio::piped()).stderr(Stdio::piped());
    command.env_remove("STACK_CACHE");
    if let Some(host) = host {
        command.env("DOCKER_HOST", host);
    }
    command
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status.code());
    format!("{stdout}{stderr}")
}

/// The status column of each image in a build's summary table.
fn statuses(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|line| !line.starts_with("IMAGE"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let columns: Vec<&str> = line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
            Some((columns.first()?.to_string(), columns.get(2)?.to_string()))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The registry's requests since line `from` of its access log that read a blob, as
/// `repository path` (`<namespace>/base`), one per request.
fn blob_reads(registry: &Registry, from: usize) -> Vec<String> {
    registry
        .access_log()
        .lines()
        .skip(from)
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/sha256:"))
        .filter_map(|line| {
            let path = line.split("\"GET /v2/").nth(1)?.split("/blobs/").next()?;
            Some(path.to_string())
        })
        .collect()
}

fn log_lines(registry: &Registry) -> usize {
    registry.access_log().lines().count()
}

/// A fixture stack published to `registry`.
fn stack_on(registry: &Registry) -> EngineStack {
    let mut stack = EngineStack::new();
    stack.use_registry(&registry.host);
    stack
}

fn identities(spec: &Path) -> Identities {
    let spec = Spec::load(spec).unwrap();
    let graph = ImageGraph::new(&spec);
    let nodes: Vec<_> = graph.topological_order().cloned().collect();
    xtask::identity::identities(&spec, &graph, &nodes).unwrap()
}

#[tokio::test]
async fn a_fresh_engine_builds_nothing_that_is_built_and_only_what_a_change_touches() {
    let registry = Registry::start(None);
    let stack = stack_on(&registry);
    let spec = stack.stack.spec_file();
    let first = succeeded(&xtask(&spec, None, &["build", "--push"]).output().unwrap());
    assert_eq!(
        statuses(&first),
        pairs(&[
            ("base", "built, pushed"),
            ("tools", "built, pushed"),
            ("app", "built, pushed"),
            ("extra", "built, pushed")
        ])
    );
    let other = SecondEngine::start();
    let mark = log_lines(&registry);
    let started = Instant::now();
    let fresh = succeeded(&xtask(&spec, Some(&other.host), &["build", "--registry"]).output().unwrap());
    let decided_in = started.elapsed();
    let in_registry = "up to date in registry";
    assert_eq!(
        statuses(&fresh),
        pairs(&[("base", in_registry), ("tools", in_registry), ("app", in_registry), ("extra", in_registry)])
    );
    assert_eq!(blob_reads(&registry, mark), Vec::<String>::new(), "deciding pulled layers");
    assert!(other.tags().await.is_empty(), "the fresh engine got images: {:?}", other.tags().await);
    eprintln!("a fresh engine decided that the fixture stack is built in {decided_in:?}");

    // One file of a mid-graph image changes: it and its descendant build, on what they are
    // built on, pulled now and only now.
    stack.stack.write("images/app/data.txt", "a change\n");
    let mark = log_lines(&registry);
    let changed = succeeded(&xtask(&spec, Some(&other.host), &["build", "--registry"]).output().unwrap());
    assert_eq!(
        statuses(&changed),
        pairs(&[("base", in_registry), ("tools", in_registry), ("app", "built"), ("extra", "built")])
    );
    let ns = &stack.namespace;
    let read: std::collections::BTreeSet<String> = blob_reads(&registry, mark).into_iter().collect();
    let allowed: std::collections::BTreeSet<String> = [format!("{ns}/base"), format!("{ns}/tools")].into();
    assert!(!read.is_empty() && read.is_subset(&allowed), "layers were read from {read:?}");
    drop(other);
    let docker0 = Command::new("ip").args(["link", "show", "docker0"]).output().unwrap();
    assert!(docker0.status.success(), "the second engine took the first one's bridge away");
}

#[tokio::test]
async fn a_run_killed_midway_loses_nothing_it_finished_and_another_engine_builds_the_rest() {
    let registry = Registry::start(None);
    let stack = stack_on(&registry);
    stack.stack.write(
        "images/app/Dockerfile",
        &format!(
            "{}RUN sleep 8 && echo slow > /slow.txt\n",
            std::fs::read_to_string(stack.stack.root().join("images/app/Dockerfile")).unwrap()
        ),
    );
    let spec = stack.stack.spec_file();
    let pins = identities(&spec);
    let client = Client::new(&registry.host, None);
    let pushed = |node: &str| {
        let pin = &pins.nodes[node];
        let (_, path) = xtask::registry::split_repository(&pin.repository).unwrap();
        client.manifest_exists(&path, &pin.tag()).unwrap().is_some()
    };
    let mut run = xtask(&spec, None, &["build", "--push"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(pushed("base") && pushed("tools")) {
        assert!(Instant::now() < deadline, "base and tools were never pushed");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(!pushed("app") && !pushed("extra"), "the run was killed too late to show anything");
    let other = SecondEngine::start();
    let rest = succeeded(&xtask(&spec, Some(&other.host), &["build", "--push"]).output().unwrap());
    let in_registry = "up to date in registry";
    assert_eq!(
        statuses(&rest),
        pairs(&[("base", in_registry), ("tools", in_registry), ("app", "built, pushed"), ("extra", "built, pushed")])
    );
    assert!(pushed("app") && pushed("extra"));
}

#[tokio::test]
async fn a_base_comes_from_the_registry_where_its_recipe_cannot_run() {
    let registry = Registry::start(None);
    let stack = stack_on(&registry);
    // The base's recipe is debootstrap, which the other machine does not have; this engine has
    // the base's image, so it pushes that as the base's pin.
    stack.stack.edit_spec(
        "    recipe:\n      import: busybox.tar\n",
        "    recipe:\n      debootstrap:\n        suite: bookworm\n        mirror: http://deb.debian.org/debian\n",
    );
    let spec = stack.stack.spec_file();
    succeeded(&xtask(&spec, None, &["build", "--push"]).output().unwrap());
    stack.stack.write("images/tools/data.txt", "tools change: they build on the base\n");
    let other = SecondEngine::start();
    let without_debootstrap = "/usr/bin:/bin";
    let local_only =
        xtask(&spec, Some(&other.host), &["build", "tools"]).env("PATH", without_debootstrap).output().unwrap();
    let said = String::from_utf8_lossy(&local_only.stderr);
    assert_eq!(local_only.status.code(), Some(6), "{said}");
    assert!(said.contains("`debootstrap` is not installed") && said.contains("--registry"), "{said}");
    let from_registry = succeeded(
        &xtask(&spec, Some(&other.host), &["build", "tools", "--registry"])
            .env("PATH", without_debootstrap)
            .output()
            .unwrap(),
    );
    assert!(from_registry.contains("from the stack's registry"), "{from_registry}");
    assert_eq!(statuses(&from_registry), pairs(&[("tools", "built")]));
}

#[tokio::test]
async fn the_previous_image_is_layer_cache_on_a_fresh_engine() {
    let registry = Registry::start(None);
    let stack = stack_on(&registry);
    let dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo slow step > /slow.txt\nRUN echo one > /last.txt\n";
    stack.stack.write("images/extra/Dockerfile", dockerfile);
    let spec = stack.stack.spec_file();
    succeeded(&xtask(&spec, None, &["build", "--push"]).output().unwrap());
    // What `release` does: the branch tag names the pushed pin.
    let pin = &identities(&spec).nodes["extra"];
    let (_, path) = xtask::registry::split_repository(&pin.repository).unwrap();
    let client = Client::new(&registry.host, None);
    let manifest = client.manifest(&path, &pin.tag()).unwrap().unwrap();
    client.put_manifest(&path, "1.0-main", &manifest).unwrap();
    stack.stack.write("images/extra/Dockerfile", &dockerfile.replace("echo one", "echo two"));
    let other = SecondEngine::start();
    let output = xtask(&spec, Some(&other.host), &["build", "extra", "--registry"])
        .env("GITHUB_REF_NAME", "main")
        .output()
        .unwrap();
    succeeded(&output);
    let log = std::fs::read_to_string(stack.stack.root().join("target/xtask/logs/extra.log")).unwrap();
    let cached: Vec<&str> = log.lines().filter(|line| line.starts_with("CACHED ")).collect();
    assert!(cached.iter().any(|line| line.contains("RUN echo slow step")), "the unchanged step ran again:\n{log}");
    assert!(!cached.iter().any(|line| line.contains("echo two")), "the changed step was not run:\n{log}");
}

#[tokio::test]
async fn with_no_registry_to_ask_builds_work_on_this_engine_with_a_notice() {
    let mut stack = EngineStack::new();
    stack.use_registry("127.0.0.1:9");
    let spec = stack.stack.spec_file();
    let output = succeeded(&xtask(&spec, None, &["build", "--registry"]).output().unwrap());
    assert!(output.contains("notice: the registry cannot be asked for built images"), "{output}");
    assert_eq!(statuses(&output).iter().filter(|(_, status)| status == "built").count(), 4, "{output}");
    let again = succeeded(&xtask(&spec, None, &["build", "--registry"]).output().unwrap());
    assert!(statuses(&again).iter().all(|(_, status)| status == "up to date"), "{again}");
}

#[tokio::test]
async fn plan_with_the_registry_says_what_is_built_already() {
    let registry = Registry::start(None);
    let stack = stack_on(&registry);
    let spec = stack.stack.spec_file();
    succeeded(&xtask(&spec, None, &["build", "--push"]).output().unwrap());
    stack.stack.write("images/app/data.txt", "a change\n");
    let text = succeeded(&xtask(&spec, None, &["plan", "--registry"]).output().unwrap());
    let text = text.split_once('\n').map_or(text.as_str(), |(spec_line, rest)| {
        assert!(spec_line.starts_with("spec: "), "{spec_line}");
        rest
    });
    let pins = identities(&spec);
    assert!(text.starts_with("2 images to build in 2 levels, 2 to re-test only"), "{text}");
    assert!(
        text.contains(&format!("base   up to date in registry ({}): re-test only", pins.nodes["base"].tag())),
        "{text}"
    );
    assert!(text.contains("level 0\n  app    parent") || text.contains("level 0\n  app "), "{text}");
    let json: serde_json::Value = serde_json::from_str(&succeeded(
        &xtask(&spec, None, &["plan", "--registry", "--format", "json"]).output().unwrap(),
    ))
    .unwrap();
    assert_eq!(json["levels"], serde_json::json!([["app"], ["extra"]]));
    let tools = json["images"].as_array().unwrap().iter().find(|image| image["name"] == "tools").unwrap();
    assert_eq!(tools["action"], "test");
    assert_eq!(tools["reasons"][0]["kind"], "up_to_date");
    assert_eq!(tools["reasons"][0]["pin"], pins.nodes["tools"].tag());
    assert_eq!(tools["reasons"][0]["place"], "registry");
    let plain = succeeded(&xtask(&spec, None, &["plan"]).output().unwrap());
    assert!(plain.contains("\n4 images to build"), "without --registry the plan asks nothing: {plain}");
}
