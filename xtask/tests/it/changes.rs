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
    let request = PlanRequest {
        selection: Selection::Since(changes, None),
        images: Vec::new(),
        variants,
        platforms: xtask::plan::Platforms::Default,
    };
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
    let request = PlanRequest {
        selection: Selection::Since(changes, None),
        images: Vec::new(),
        variants: Variants::Default,
        platforms: xtask::plan::Platforms::Default,
    };
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
    stack.edit_spec("rebuild_all: [\"images/spec.yml\"]", "rebuild_all: [\"images/shared.sh\"]");
    stack.git_init();
    stack.write("images/shared.sh", "echo shared by every image\n");
    let plan = plan_since(&stack, Variants::Default);
    assert_eq!(plan.len(), 4);
    assert!(plan.iter().all(|line| line.contains("build [rebuild all: images/shared.sh")), "{plan:#?}");
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

/// `dir: ./tools/` is the folder `tools`: changes there rebuild the image, and the plan's JSON
/// names the context as git does.
#[test]
fn a_folder_written_with_dots_and_slashes_still_owns_its_files() {
    let stack = Stack::new();
    stack.edit_spec("  tools:\n    parent: debian\n", "  tools:\n    parent: debian\n    dir: ./tools/\n");
    stack.git_init();
    stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tools v2\n");
    assert_eq!(
        plan_since(&stack, Variants::Default),
        [
            "tools build [changed: images/tools/Dockerfile]",
            "app build [dependency rebuilt: tools]",
            "extra build [parent rebuilt: app]",
        ]
    );
    let json = since_json(&stack, &["--format", "json"]);
    assert_eq!(json["images"][0]["context"], "images/tools");
}

/// `plan --since main` run as users run it, as JSON.
fn since_json(stack: &Stack, args: &[&str]) -> serde_json::Value {
    let spec = stack.spec_file().display().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--spec", &spec, "plan", "--since", "main"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The JSON plan as `name action [reasons]` lines.
fn lines(json: &serde_json::Value) -> Vec<String> {
    let images = json["images"].as_array().unwrap();
    images
        .iter()
        .map(|image| {
            let reasons: Vec<&str> =
                image["reasons"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
            format!(
                "{} {} [{}]",
                image["name"].as_str().unwrap(),
                image["action"].as_str().unwrap(),
                reasons.join("; ")
            )
        })
        .collect()
}

/// An edit of the spec rebuilds the images whose definition it changes, saying which field,
/// not the whole stack.
#[rstest::rstest]
#[case::a_new_image(
    "doc_commands:\n  os-release",
    "  late:\n    parent: base\n    dir: tools\ndoc_commands:\n  os-release",
    &[],
    &["late build [spec changed: new image]"]
)]
#[case::an_image_build_arg(
    "    depends_on: [tools]\n",
    "    depends_on: [tools]\n    build_args: {FLAVOUR: \"2\"}\n",
    &[],
    &["app build [spec changed: build_args.FLAVOUR]", "extra build [parent rebuilt: app]"]
)]
#[case::a_variant_build_arg(
    "ACCELERATOR: cuda",
    "ACCELERATOR: rocm",
    &["--all-variants"],
    &[
        "base@gpu build [spec changed: build_args.ACCELERATOR]",
        "tools@gpu build [spec changed: build_args.ACCELERATOR]",
        "app@gpu build [spec changed: build_args.ACCELERATOR; parent rebuilt: base@gpu; dependency rebuilt: tools@gpu]",
    ]
)]
#[case::a_parent("    parent: app\n", "    parent: base\n", &[], &["extra build [spec changed: parent]"])]
#[case::a_size_budget(
    "    variants: [cpu]\n",
    "    variants: [cpu]\n    size_budget: 10 MB\n",
    &[],
    &["extra build [spec changed: size_budget]"]
)]
#[case::a_base_reference(
    "image: localhost/debian:bookworm",
    "image: localhost/debian:trixie",
    &[],
    &[
        "base build [spec changed: bases.debian.image]",
        "tools build [spec changed: bases.debian.image]",
        "app build [parent rebuilt: base; dependency rebuilt: tools]",
        "extra build [parent rebuilt: app]",
    ]
)]
#[case::only_a_description("  tools:\n", "  tools:\n    description: Tools for the app.\n", &[], &[])]
#[case::only_documentation("  os-release: cat /etc/os-release", "  os-release: cat /etc/issue", &[], &[])]
fn a_spec_edit_rebuilds_what_it_changes(
    #[case] from: &str,
    #[case] to: &str,
    #[case] args: &[&str],
    #[case] expected: &[&str],
) {
    let stack = Stack::new();
    let sh = stack.git_init();
    cmd!(sh, "git checkout -q -b feature").run().unwrap();
    stack.edit_spec(from, to);
    stack.commit(&sh, "edit the spec");
    let mut all = vec!["--format", "json"];
    all.extend(args);
    assert_eq!(lines(&since_json(&stack, &all)), expected);
}

/// A stack-wide build argument is in every image's definition: every image rebuilds, each
/// saying why.
#[test]
fn a_stack_build_arg_rebuilds_every_image() {
    let stack = Stack::new();
    stack.git_init();
    stack.edit_spec("GREETING: hello", "GREETING: bonjour");
    let plan = lines(&since_json(&stack, &["--format", "json"]));
    assert_eq!(plan.len(), 4, "{plan:#?}");
    assert!(plan.iter().all(|line| line.contains("build [spec changed: build_args.GREETING")), "{plan:#?}");
}

/// When the spec at the merge base cannot be read as a spec, the change rules decide, as for
/// any other file (here `rebuild_all`).
#[test]
fn an_invalid_spec_at_the_merge_base_falls_back_to_the_rules() {
    let stack = Stack::new();
    stack.edit_spec("    parent: base\n", "    parent: nowhere\n");
    let sh = stack.git_init();
    cmd!(sh, "git checkout -q -b fix").run().unwrap();
    stack.edit_spec("    parent: nowhere\n", "    parent: base\n");
    let plan = lines(&since_json(&stack, &["--format", "json"]));
    assert_eq!(plan.len(), 4, "{plan:#?}");
    assert!(plan.iter().all(|line| line.contains("build [rebuild all: images/spec.yml")), "{plan:#?}");
}
