//! `cargo xtask build` against the real Docker engine, on the fixture stack (busybox-based, so
//! each build takes a second). Every test uses its own namespace and removes its images.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::engine::{remove_namespace, EngineStack};
use crate::common::registry::Registry;
use tokio::sync::watch;
use xtask::build::{self, BuildOptions, BuildReport, Status, BUILD_TAG};
use xtask::engine::Engine;
use xtask::labels;
use xtask::plan::Variants;
use xtask::scheduler::Outcome;

/// `(name, status)` for each row: `built`, `up to date`, `failed`, `skipped by X`, ...
fn statuses(report: &BuildReport) -> Vec<(String, String)> {
    report
        .rows
        .iter()
        .map(|row| {
            let status = match &row.outcome {
                Outcome::Done(built) if built.status == Status::Built => "built".to_string(),
                Outcome::Done(_) => "up to date".to_string(),
                Outcome::Failed(_) => "failed".to_string(),
                Outcome::Skipped { because } => format!("skipped by {because}"),
                Outcome::Cancelled => "cancelled".to_string(),
                Outcome::NotStarted => "not started".to_string(),
            };
            (row.id.name.clone(), status)
        })
        .collect()
}

fn all(report: &BuildReport, status: &str) -> bool {
    statuses(report).iter().all(|(_, s)| s == status)
}

/// The report's statuses are `expected`; else the failure shows them and why images failed.
#[track_caller]
fn expect_statuses(report: &BuildReport, expected: &[(&str, &str)]) {
    assert_eq!(statuses(report), pairs(expected), "{}", build::failures(report));
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn builds_in_graph_order_overlapping_independent_images_then_is_a_no_op() {
    let stack = EngineStack::new();
    let first = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(all(&first, "built"), "{:?}", statuses(&first));
    let names: Vec<&str> = first.rows.iter().map(|row| row.id.name.as_str()).collect();
    assert_eq!(names, ["base", "tools", "app", "extra"]);
    // Graph order: a child starts after its parents end.
    let span = |name: &str| {
        let row = first.rows.iter().find(|row| row.id.name == name).unwrap();
        let start = row.started.unwrap();
        (start, start + row.duration)
    };
    let (base, tools, app, extra) = (span("base"), span("tools"), span("app"), span("extra"));
    assert!(app.0 >= base.1 && app.0 >= tools.1 && extra.0 >= app.1);
    // base and tools are independent: they ran at the same time.
    assert!(base.0 < tools.1 && tools.0 < base.1, "base {base:?} and tools {tools:?} did not overlap");

    let second = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(all(&second, "up to date"), "{:?}", statuses(&second));
    for (a, b) in first.rows.iter().zip(&second.rows) {
        let (Outcome::Done(a), Outcome::Done(b)) = (&a.outcome, &b.outcome) else { unreachable!() };
        assert_eq!(a.id, b.id, "the same image, not a rebuild");
    }
}

#[tokio::test]
async fn a_change_rebuilds_that_image_and_its_descendants_only() {
    let stack = EngineStack::new();
    stack.build(Variants::Default, BuildOptions::default()).await;
    stack.stack.write("images/tools/data.txt", "new data\n");
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    expect_statuses(&report, &[("base", "up to date"), ("tools", "built"), ("app", "built"), ("extra", "built")]);
}

#[tokio::test]
async fn a_dockerignored_change_rebuilds_nothing() {
    let stack = EngineStack::new();
    stack.stack.write("images/base/.dockerignore", "*.log\n");
    rebuilds_nothing_after(&stack, &[("images/base/debug.log", "noise\n")]).await;
}

/// Builds the stack, writes `files`, builds again: every image must be up to date.
async fn rebuilds_nothing_after(stack: &EngineStack, files: &[(&str, &str)]) {
    stack.build(Variants::Default, BuildOptions::default()).await;
    for (path, text) in files {
        stack.stack.write(path, text);
    }
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(all(&report, "up to date"), "{:?}", statuses(&report));
}

#[tokio::test]
async fn a_failure_skips_descendants_while_a_sibling_branch_builds() {
    let stack = EngineStack::new();
    stack
        .stack
        .write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && false\n");
    let report = stack.build(Variants::All, BuildOptions::default()).await;
    assert_eq!(
        statuses(&report),
        pairs(&[
            ("base", "built"),
            ("tools", "failed"),
            ("base@gpu", "built"),
            ("tools@gpu", "failed"),
            ("app", "skipped by tools"),
            ("app@gpu", "skipped by tools@gpu"),
            ("extra", "skipped by tools"),
        ])
    );
    let Outcome::Failed(failure) = &report.rows[1].outcome else { unreachable!() };
    assert!(failure.step.as_deref().unwrap_or_default().contains("RUN echo about to fail && false"), "{failure:?}");
    assert!(failure.tail.iter().any(|line| line.contains("about to fail")), "{failure:?}");
    assert!(failure.log.is_file());
    let text = build::failures(&report);
    assert!(text.contains("tools failed at [2/2] RUN echo about to fail && false"), "{text}");
    // Nothing was tagged for the failed image.
    let engine = Engine::connect().await.unwrap();
    assert!(engine.image(&format!("{}:{BUILD_TAG}", stack.repository("tools"))).await.unwrap().is_none());
}

#[tokio::test]
async fn an_interrupt_cancels_the_build_and_leaves_no_container_and_no_tag() {
    let stack = EngineStack::new();
    stack.stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 60\n");
    let engine = Engine::connect().await.unwrap();
    let containers_before = engine.containers().await.unwrap();
    let (tx, rx) = watch::channel(false);
    let interrupter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tx.send(true).unwrap();
    });
    let started = std::time::Instant::now();
    let report = stack.build_with(Variants::Default, BuildOptions::default(), rx).await;
    interrupter.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "the build was not cancelled");
    let status: HashMap<String, String> = statuses(&report).into_iter().collect();
    assert_eq!(status["tools"], "cancelled");
    assert_eq!(status["app"], "not started");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(engine.containers().await.unwrap(), containers_before, "the interrupted build left containers");
    for image in ["tools", "app", "extra"] {
        for tag in [BUILD_TAG] {
            assert!(
                engine.image(&format!("{}:{tag}", stack.repository(image))).await.unwrap().is_none(),
                "{image}:{tag} was tagged"
            );
        }
    }
    let tools_tags: Vec<String> = engine
        .images_named(&stack.repository("tools"))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|image| image.repo_tags)
        .collect();
    assert!(tools_tags.is_empty(), "{tools_tags:?}");
}

#[tokio::test]
async fn labels_say_what_the_image_is_and_what_built_it() {
    let stack = EngineStack::new();
    let options = BuildOptions {
        revision: Some("abc123".into()),
        source: Some("https://example.org/stack.git".into()),
        ..Default::default()
    };
    let report = stack.build(Variants::All, options).await;
    assert!(all(&report, "built"), "{:?}", statuses(&report));
    let engine = Engine::connect().await.unwrap();
    let app = engine.image(&format!("{}:{BUILD_TAG}", stack.repository("app-gpu"))).await.unwrap().unwrap();
    let labels = app.config.unwrap().labels.unwrap();
    let base = report.rows.iter().find(|row| row.id.name == "base@gpu").unwrap();
    let Outcome::Done(base) = &base.outcome else { unreachable!() };
    let app_row = report.rows.iter().find(|row| row.id.name == "app@gpu").unwrap();
    let Outcome::Done(app_built) = &app_row.outcome else { unreachable!() };
    for (key, value) in [
        ("org.opencontainers.image.title", "app-gpu"),
        ("org.opencontainers.image.version", "1.0"),
        ("org.opencontainers.image.revision", "abc123"),
        ("org.opencontainers.image.source", "https://example.org/stack.git"),
        ("xtask.stack.image", "app"),
        ("xtask.stack.variant", "gpu"),
    ] {
        assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}: {labels:?}");
    }
    assert_eq!(labels[labels::INPUTS], app_built.digest);
    assert_eq!(labels[labels::PARENT], format!("{}@{}", base.pin, base.id));
    assert!(labels["org.opencontainers.image.created"].starts_with("20"), "{labels:?}");
}

#[tokio::test]
async fn the_ca_bundle_reaches_run_steps_but_no_layer() {
    let stack = EngineStack::new();
    stack.stack.write(
        "images/base/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,source=.stack/ca-bundle.crt,target=/run/ca.crt cat /run/ca.crt > /seen.txt\n",
    );
    let bundle = stack.stack.root().join("bundle.pem");
    std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\nfixture\n-----END CERTIFICATE-----\n").unwrap();
    let report = stack.build(Variants::Default, BuildOptions { ca_bundle: Some(bundle), ..Default::default() }).await;
    assert!(all(&report, "built"), "{:?}", statuses(&report));
    let engine = Engine::connect().await.unwrap();
    let history = engine.image(&format!("{}:{BUILD_TAG}", stack.repository("base"))).await.unwrap().unwrap();
    // The bundle file itself was never copied into the image: only RUN wrote /seen.txt.
    assert_eq!(history.root_fs.unwrap().layers.unwrap().len(), 2);
    let log = std::fs::read_to_string(stack.stack.root().join("target/logs/base.log")).unwrap();
    assert!(log.contains("RUN --mount=type=bind,source=.stack/ca-bundle.crt"), "{log}");
}

#[tokio::test]
async fn a_missing_base_is_made_by_its_recipe() {
    let base = format!("localhost/xtask-fixture/busybox:recipe-{}", std::process::id());
    let stack = EngineStack::with_base(&base);
    let engine = Engine::connect().await.unwrap();
    assert!(engine.image(&base).await.unwrap().is_none());
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    let made = engine.image(&base).await.unwrap();
    engine.remove_image(&base, true).await.unwrap();
    assert!(made.is_some(), "the recipe did not make {base}");
    assert!(all(&report, "built"), "{:?}", statuses(&report));
}

#[tokio::test]
async fn with_registry_an_image_found_there_is_not_built_and_pulled_only_when_wanted_here() {
    let registry = Registry::start(None);
    let mut stack = EngineStack::new();
    stack.use_registry(&registry.host);
    let first = stack.build(Variants::Default, BuildOptions { push: true, ..Default::default() }).await;
    assert!(all(&first, "built"), "{:?}", statuses(&first));
    let engine = Engine::connect().await.unwrap();
    // A fresh machine: none of the stack's images are on the engine.
    remove_namespace(&engine, &registry.host, &stack.namespace).await;
    let without = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(all(&without, "built"), "without --registry everything is built again: {:?}", statuses(&without));
    remove_namespace(&engine, &registry.host, &stack.namespace).await;
    let left = stack.build(Variants::Default, BuildOptions { registry: true, ..Default::default() }).await;
    let status_of = |report: &BuildReport| -> Vec<Status> {
        report
            .rows
            .iter()
            .map(|row| match &row.outcome {
                Outcome::Done(built) => built.status,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(status_of(&left), [Status::InRegistry; 4], "up to date in the registry, and left there");
    let wanted = ["app".to_string()].into();
    let pulled =
        stack.build(Variants::Default, BuildOptions { registry: true, pull: wanted, ..Default::default() }).await;
    assert_eq!(status_of(&pulled), [Status::InRegistry, Status::InRegistry, Status::Pulled, Status::InRegistry]);
    let (Outcome::Done(a), Outcome::Done(b)) = (&first.rows[2].outcome, &pulled.rows[2].outcome) else {
        unreachable!()
    };
    assert_eq!(a.id, b.id, "the pulled image is the one that was pushed");
    let here = engine.tags().await.unwrap();
    let mine: Vec<&String> = here.iter().filter(|tag| tag.contains(&format!("/{}/", stack.namespace))).collect();
    assert!(mine.iter().all(|tag| tag.contains("/app:")), "only app was pulled: {mine:?}");
}

#[tokio::test]
async fn test_and_ignored_files_are_not_sent_and_rebuild_nothing() {
    let stack = EngineStack::new();
    let files = [
        ("images/base/tests/more.yml", "commands:\n  more: {run: 'true'}\n"),
        ("images/app/README.md", "# app, documented better\n"),
        ("images/tools/tests/new-folder/deep.yml", "x\n"),
    ];
    rebuilds_nothing_after(&stack, &files).await;
}

#[tokio::test]
async fn an_image_over_its_size_budget_fails_with_the_figures_and_keeps_no_tag() {
    let stack = EngineStack::new();
    // tools writes 3 MB of zeros (busybox alone is about 2 MB); base stays small.
    stack.stack.write(
        "images/tools/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tools > /tools.txt && dd if=/dev/zero of=/zeros bs=1000 count=3000\n",
    );
    stack.stack.edit_spec("  tools:\n    parent: debian\n", "  tools:\n    parent: debian\n    size_budget: 4 MB\n");
    stack.stack.edit_spec(
        "    doc_commands: [os-release]\n",
        "    doc_commands: [os-release]\n    size_budget: {cpu: 4 MB}\n",
    );
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    assert_eq!(
        statuses(&report),
        pairs(&[("base", "built"), ("tools", "failed"), ("app", "skipped by tools"), ("extra", "skipped by tools")])
    );
    let text = build::failures(&report);
    assert!(text.contains("tools is 5."), "{text}");
    assert!(text.contains("over its size budget of 4.0 MB by 982.4 kB"), "{text}");
    assert!(text.contains("raise `images.tools.size_budget` in"), "{text}");
    let engine = Engine::connect().await.unwrap();
    let repository = stack.repository("tools");
    assert!(engine.image(&format!("{repository}:{BUILD_TAG}")).await.unwrap().is_none());
    assert!(engine.images_named(&repository).await.unwrap().is_empty(), "no tag of tools is left");
    // A larger budget: the same inputs build (from the layer cache) and pass.
    stack.stack.edit_spec("    size_budget: 4 MB\n", "    size_budget: 8 MB\n");
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    expect_statuses(&report, &[("base", "up to date"), ("tools", "built"), ("app", "built"), ("extra", "built")]);
    // A budget lowered later fails the image even though it is up to date.
    stack.stack.edit_spec("    size_budget: 8 MB\n", "    size_budget: 1 MB\n");
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    assert_eq!(statuses(&report)[1], ("tools".to_string(), "failed".to_string()));
}
