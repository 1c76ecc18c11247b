//! `cargo xtask plan` and `graph` run as users run them, on the fixture stack: outputs and exit
//! codes.

use std::process::{Command, Output};

use crate::common::{fixture_dir, Stack};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap()
}

fn fixture_spec() -> String {
    fixture_dir().join("images/spec.yml").display().to_string()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A text plan without its first line, which must name the spec given with `--spec`.
fn plan_body(output: &Output, spec: &str) -> String {
    let text = stdout(output);
    let (header, body) = text.split_once('\n').unwrap();
    assert_eq!(header, format!("spec: {spec} (--spec)"));
    body.to_string()
}

#[test]
fn help_lists_every_subcommand() {
    let help = stdout(&xtask(&["--help"]));
    for command in ["plan", "graph", "new", "build", "tag", "release", "docs", "refresh", "bench"] {
        assert!(help.lines().any(|line| line.trim_start().starts_with(command)), "{help}");
    }
}

#[test]
fn plan_text_groups_by_level_with_reasons() {
    let text = plan_body(&xtask(&["--spec", &fixture_spec(), "plan", "--all-variants"]), &fixture_spec());
    assert_eq!(
        text,
        "7 images to build in 3 levels, 0 to re-test only (all images; variants cpu, gpu)

level 0
  base       all
  tools      all
  base@gpu   all
  tools@gpu  all

level 1
  app        all
  app@gpu    all

level 2
  extra      all
"
    );
}

#[test]
fn plan_of_named_images_builds_only_those() {
    let text = plan_body(&xtask(&["--spec", &fixture_spec(), "plan", "app", "extra"]), &fixture_spec());
    assert!(text.starts_with("2 images to build in 2 levels"), "{text}");
    assert!(text.contains("level 0\n  app    requested\n\nlevel 1\n  extra  requested\n"), "{text}");
}

#[test]
fn plan_json_follows_the_schema() {
    let text = stdout(&xtask(&["--spec", &fixture_spec(), "plan", "--format", "json", "--variant", "gpu"]));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["schema"], "stack-plan/v1");
    assert_eq!(json["spec"], "images/spec.yml");
    assert_eq!(json["selection"]["mode"], "all");
    assert_eq!(json["variants"], serde_json::json!(["gpu"]));
    assert_eq!(json["levels"], serde_json::json!([["base@gpu", "tools@gpu"], ["app@gpu"]]));
    let app = &json["images"][2];
    assert_eq!(app["name"], "app@gpu");
    assert_eq!(app["action"], "build");
    assert_eq!(app["level"], 1);
    assert_eq!(app["repository"], "registry.example.org/fixture/app-gpu");
    assert_eq!(app["context"], "images/app");
    assert_eq!(app["dockerfile"], "images/app/Dockerfile");
    assert_eq!(app["parent"], serde_json::json!({"kind": "image", "name": "base"}));
    assert_eq!(app["depends_on"], serde_json::json!(["tools"]));
    assert_eq!(app["reasons"], serde_json::json!([{"kind": "all", "text": "all"}]));
}

#[test]
fn plan_github_matrix_is_one_line_of_include() {
    let text = stdout(&xtask(&["--spec", &fixture_spec(), "plan", "--format", "github-matrix", "tools"]));
    assert_eq!(text, "{\"include\":[{\"name\":\"tools\",\"image\":\"tools\",\"variant\":\"cpu\",\"action\":\"build\",\"level\":0}]}\n");
}

#[test]
fn plan_since_a_branch_in_a_real_repository() {
    let stack = Stack::new();
    let sh = stack.git_init();
    xshell::cmd!(sh, "git checkout -q -b feature").run().unwrap();
    stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo v2\n");
    stack.commit(&sh, "tools v2");
    let spec = stack.spec_file().display().to_string();
    let text = plan_body(&xtask(&["--spec", &spec, "plan", "--since", "main"]), &spec);
    assert!(
        text.starts_with("3 images to build in 3 levels, 0 to re-test only (changes since main (merge base "),
        "{text}"
    );
    assert!(text.contains("level 0\n  tools  changed: images/tools/Dockerfile\n"), "{text}");
    assert!(text.contains("level 1\n  app    dependency rebuilt: tools\n"), "{text}");
    assert!(text.contains("level 2\n  extra  parent rebuilt: app\n"), "{text}");
}

/// Without `--spec`, the spec is found from the current directory up to the repository's root,
/// and the plan says which it read; outside any stack, the compiled-in default, said so.
#[rstest::rstest]
#[case::at_the_root("", "images/spec.yml (found from the current directory)")]
#[case::in_an_image_folder("images/tools", "{root}/images/spec.yml (found from the current directory)")]
fn the_spec_is_found_from_the_current_directory(#[case] cwd: &str, #[case] header: &str) {
    let stack = Stack::new();
    stack.git_init();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["plan", "--all-variants"])
        .current_dir(stack.root().join(cwd))
        .output()
        .unwrap();
    let text = stdout(&output);
    let root = stack.root().display().to_string();
    assert!(text.starts_with(&format!("spec: {}\n7 images to build", header.replace("{root}", &root))), "{text}");
}

#[test]
fn outside_any_stack_the_default_spec_is_used_and_named() {
    let empty = Stack::empty();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["plan"]).current_dir(empty.root()).output().unwrap();
    let text = stdout(&output);
    let default = xtask::paths::project_root().join("images/spec.yml");
    let header = format!("spec: {} (the default of this xtask build: no images/spec.yml from the current directory up to its repository's root)\n", default.display());
    assert!(text.starts_with(&header), "{text}");
}

#[test]
fn graph_mermaid_draws_variants_bases_and_dependencies() {
    let text = stdout(&xtask(&["--spec", &fixture_spec(), "graph", "--format", "mermaid"]));
    assert_eq!(
        text,
        r#"flowchart TD
  base__debian[("debian<br/>localhost/debian:bookworm")]
  subgraph variant__cpu["variant cpu"]
    cpu__base["base"]
    cpu__tools["tools"]
    cpu__app["app"]
    cpu__extra["extra"]
  end
  subgraph variant__gpu["variant gpu (-gpu)"]
    gpu__base["base@gpu"]
    gpu__tools["tools@gpu"]
    gpu__app["app@gpu"]
  end
  base__debian --> cpu__base
  base__debian --> cpu__tools
  base__debian --> gpu__base
  base__debian --> gpu__tools
  cpu__base --> cpu__app
  cpu__tools -.-> cpu__app
  gpu__base --> gpu__app
  gpu__tools -.-> gpu__app
  cpu__app --> cpu__extra
"#
    );
}

#[test]
fn graph_dot_is_a_digraph_with_clusters() {
    let text = stdout(&xtask(&["--spec", &fixture_spec(), "graph", "--format", "dot"]));
    assert!(text.starts_with("digraph stack {\n"), "{text}");
    assert!(text.contains("  subgraph \"cluster_gpu\" {\n    label=\"variant gpu (-gpu)\";\n"), "{text}");
    assert!(text.contains("  \"cpu__tools\" -> \"cpu__app\" [style=dashed];\n"), "{text}");
    assert!(text.contains("  \"base__debian\" -> \"gpu__base\";\n"), "{text}");
    assert!(text.ends_with("}\n"));
}

#[test]
fn exit_codes_say_what_failed() {
    let bad = Stack::new();
    bad.edit_spec("    parent: base\n", "    parent: bsae\n");
    let output = xtask(&["--spec", &bad.spec_file().display().to_string(), "plan"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown parent `bsae`"));
    assert!(output.stdout.is_empty(), "nothing else is done");

    let output = xtask(&["--spec", &fixture_spec(), "plan", "nope"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown image `nope`"));

    let outside = Stack::new();
    let output = xtask(&["--spec", &outside.spec_file().display().to_string(), "plan", "--since", "main"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not inside a git repository"));

    let output = xtask(&["plan", "--since", "main", "--all"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn build_dry_run_prints_the_plan_and_touches_no_engine() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--spec", &fixture_spec(), "build", "--dry-run", "app"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.starts_with("1 image to build in 1 level"), "{text}");
    assert!(text.contains("and 2 ancestor images they need, rebuilt only if their inputs changed"), "{text}");
}

#[test]
fn build_against_an_unreachable_engine_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--spec", &fixture_spec(), "build", "app"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"), "{stderr}");
    assert!(stderr.contains("hint: start it"), "{stderr}");
}

#[test]
fn a_base_that_needs_debootstrap_without_it_says_how_to_fix_it() {
    let stack = Stack::new();
    stack.edit_spec("image: localhost/debian:bookworm", "image: localhost/xtask-absent/debian:never");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--spec", &stack.spec_file().display().to_string(), "build", "base"])
        // debootstrap lives in /usr/sbin: leave it out.
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    let expected = if std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false) {
        "base `debian`: `debootstrap` is not installed\n  hint: install it (`apt-get install debootstrap`)"
    } else {
        "base `debian`: making it with debootstrap needs root"
    };
    assert!(stderr.contains(expected), "{stderr}");
}

fn xtask_in(stack: &Stack, args: &[&str]) -> Output {
    let spec = stack.spec_file().display().to_string();
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(["--spec", &spec]).args(args).output().unwrap()
}

/// `new` adds the spec entry and the files; the stack then validates and plans the image.
#[rstest::rstest]
#[case::plain_parent(false, "# A step that downloads over HTTPS trusts the build's CA bundle")]
#[case::parent_with_the_pip_step(
    true,
    "    pip-install-pinned --requirement /tmp/requirements.txt --constraint /tmp/constraints.txt\n"
)]
fn new_adds_an_image_that_validates_and_plans(#[case] pip: bool, #[case] dockerfile_has: &str) {
    let stack = Stack::new();
    if pip {
        stack.write("images/base/bin/pip-install-pinned", "#!/bin/sh\n");
    }
    let text = stdout(&xtask_in(&stack, &["new", "late", "--parent", "app"]));
    assert!(text.starts_with("added `late` to "), "{text}");
    assert!(text.contains("\nnext:\n  1. "), "{text}");
    let dockerfile = std::fs::read_to_string(stack.root().join("images/late/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n") && dockerfile.contains(dockerfile_has),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("--mount=type=bind,source=.stack/ca-bundle.crt,target=/run/stack/ca-bundle.crt"),
        "{dockerfile}"
    );
    for file in ["README.md", "tests/late.yml"] {
        assert!(stack.root().join("images/late").join(file).is_file(), "{file}");
    }
    assert_eq!(stack.root().join("images/late/requirements.txt").is_file(), pip);
    let spec = xtask::spec::Spec::load(&stack.spec_file()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.images["late"].parents.values().next().map(|p| p.name()), Some("app"));
    assert_eq!(spec.images["late"].variants, ["cpu", "gpu"], "the parent's variants");
    let plan = plan_body(&xtask_in(&stack, &["plan", "late"]), &stack.spec_file().display().to_string());
    assert!(plan.contains("level 0\n  late  requested\n"), "{plan}");
}

#[test]
fn new_with_dry_run_writes_nothing() {
    let stack = Stack::new();
    let before = stack.spec_text();
    let text = stdout(&xtask_in(&stack, &["new", "late", "--parent", "extra", "--dry-run"]));
    assert!(text.contains("would add to ") && text.contains("  late:\n    description: TODO"), "{text}");
    assert!(text.contains("    parent: extra\n    variants: [cpu]\n"), "{text}");
    assert!(text.contains("would create ") && text.contains("late/Dockerfile:\n  | # late: TODO"), "{text}");
    assert_eq!(stack.spec_text(), before);
    assert!(!stack.root().join("images/late").exists());
}

/// Mistakes in the request are refused before anything is written, with exit code 3.
#[rstest::rstest]
#[case::taken_name(&["new", "tools", "--parent", "base"], "the stack already has an image or base named `tools`")]
#[case::existing_folder(&["new", "tests", "--parent", "base"], "images/tests already exists")]
#[case::invalid_name(&["new", "Late", "--parent", "base"], "image name `Late`")]
#[case::unknown_parent(&["new", "late", "--parent", "bsae"], "unknown parent `bsae`\n  hint: did you mean `base`?")]
#[case::unknown_variant(&["new", "late", "--parent", "base", "--variants", "cpx"], "unknown variant `cpx`")]
#[case::variant_the_parent_lacks(&["new", "late", "--parent", "extra", "--variants", "cpu,gpu"], "`extra` is not built in variant `gpu`")]
fn new_refuses_a_bad_request(#[case] args: &[&str], #[case] message: &str) {
    let stack = Stack::new();
    let before = stack.spec_text();
    let output = xtask_in(&stack, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    assert_eq!(stack.spec_text(), before);
    assert!(!stack.root().join("images/late").exists());
}
