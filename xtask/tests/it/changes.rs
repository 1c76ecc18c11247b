//! Change detection against real git repositories: which images a branch's changes rebuild or
//! re-test, and why.

use crate::common::Stack;
use xshell::cmd;
use xtask::git::{GitError, Repo};
use xtask::graph::ImageGraph;
use xtask::plan::{plan, Action, PlanRequest, Selection, Variants};
use xtask::spec::Spec;

/// The plan for `--since main --variant cpu`, as `(name, action, reasons)` lines.
fn plan_since(stack: &Stack, variants: Variants) -> Vec<String> {
    let spec = Spec::load(&stack.spec_file()).unwrap();
    let graph = ImageGraph::new(&spec);
    let changes = Repo::discover(stack.root()).unwrap().changes_since("main").unwrap();
    let request = PlanRequest { selection: Selection::Since(changes), images: Vec::new(), variants };
    let plan = plan(&spec, &graph, &request, "images").unwrap();
    plan.images
        .iter()
        .map(|image| {
            let reasons: Vec<String> = image.reasons.iter().map(ToString::to_string).collect();
            let action = if image.action == Action::Build { "build" } else { "test" };
            format!("{} {action} [{}]", image.id.name, reasons.join("; "))
        })
        .collect()
}

#[test]
fn a_pull_request_of_several_commits_counts_whole() {
    let stack = Stack::new();
    let sh = stack.git_init();
    cmd!(sh, "git checkout -q -b feature").run().unwrap();
    stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tools v2\n");
    stack.commit(&sh, "first");
    stack.write("images/extra/setup.sh", "echo hi\n");
    stack.commit(&sh, "second");
    assert_eq!(
        plan_since(&stack, Variants::Default),
        [
            "tools build [changed: images/tools/Dockerfile]",
            "app build [dependency rebuilt: tools]",
            "extra build [changed: images/extra/setup.sh; parent rebuilt: app]",
        ]
    );
}

#[test]
fn uncommitted_and_untracked_files_count() {
    let stack = Stack::new();
    stack.git_init();
    stack.write("images/extra/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo edited\n");
    stack.write("images/tools/new-file.txt", "new\n");
    assert_eq!(
        plan_since(&stack, Variants::Default),
        [
            "tools build [changed: images/tools/new-file.txt]",
            "app build [dependency rebuilt: tools]",
            "extra build [changed: images/extra/Dockerfile; parent rebuilt: app]",
        ]
    );
}

#[test]
fn ignored_paths_rebuild_nothing() {
    let stack = Stack::new();
    stack.git_init();
    stack.write("images/base/README.md", "# base, better documented\n");
    stack.write("notes.txt", "outside every image\n");
    assert_eq!(plan_since(&stack, Variants::Default), Vec::<String>::new());
    let spec = Spec::load(&stack.spec_file()).unwrap();
    let changes = Repo::discover(stack.root()).unwrap().changes_since("main").unwrap();
    let request = PlanRequest { selection: Selection::Since(changes), images: Vec::new(), variants: Variants::Default };
    let plan = plan(&spec, &ImageGraph::new(&spec), &request, "images").unwrap();
    assert_eq!(plan.ignored_files, ["images/base/README.md"]);
    assert_eq!(plan.unmapped_files, ["notes.txt"]);
}

#[test]
fn a_test_change_only_re_tests_the_image_and_its_heirs() {
    let stack = Stack::new();
    stack.git_init();
    stack.write("images/app/tests/more.yml", "- command: false\n");
    assert_eq!(
        plan_since(&stack, Variants::Default),
        [
            "app test [tests changed (re-test only): images/app/tests/more.yml]",
            "extra test [parent's tests changed (re-test only): app]",
        ]
    );
}

#[test]
fn a_common_test_change_re_tests_everything() {
    let stack = Stack::new();
    stack.git_init();
    stack.write("images/tests/common.yml", "- command: false\n");
    let plan = plan_since(&stack, Variants::Default);
    assert_eq!(plan.len(), 4, "{plan:#?}");
    assert!(
        plan.iter().all(|line| line.contains(" test [tests changed (re-test only): images/tests/common.yml")),
        "{plan:#?}"
    );
}

#[test]
fn a_root_change_rebuilds_its_descendants_in_every_variant() {
    let stack = Stack::new();
    stack.git_init();
    stack.write("images/base/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo base v2\n");
    assert_eq!(
        plan_since(&stack, Variants::All),
        [
            "base build [changed: images/base/Dockerfile]",
            "base@gpu build [changed: images/base/Dockerfile]",
            "app build [parent rebuilt: base]",
            "app@gpu build [parent rebuilt: base@gpu]",
            "extra build [parent rebuilt: app]",
        ]
    );
}

#[test]
fn a_rebuild_all_path_rebuilds_everything() {
    let stack = Stack::new();
    stack.git_init();
    stack.edit_spec("GREETING: hello", "GREETING: bonjour");
    let plan = plan_since(&stack, Variants::Default);
    assert_eq!(plan.len(), 4);
    assert!(plan.iter().all(|line| line.contains("build [rebuild all: images/spec.yml")), "{plan:#?}");
}

#[test]
fn an_unknown_reference_is_a_clear_error() {
    let stack = Stack::new();
    stack.git_init();
    let error = Repo::discover(stack.root()).unwrap().changes_since("origin/nope").unwrap_err();
    assert!(matches!(error, GitError::UnknownRef { .. }), "{error}");
    assert!(
        error.to_string().contains("unknown git reference `origin/nope`")
            && error.to_string().contains("git fetch origin"),
        "{error}"
    );
}

#[test]
fn a_directory_outside_git_is_a_clear_error() {
    let stack = Stack::new();
    let error = Repo::discover(stack.root()).unwrap_err();
    assert!(matches!(error, GitError::NotARepository(_)), "{error}");
    assert!(error.to_string().contains("is not inside a git repository"), "{error}");
}
