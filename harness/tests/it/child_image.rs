//! A child image of base-notebook written as jupyter/docker-stacks' recipes write them (`pip
//! install`, then `fix-permissions "${CONDA_DIR}"` and `fix-permissions "/home/${NB_USER}"`):
//! it builds (fixture `tests/fixtures/child-stack`), the package works for the user, and what
//! the recipe installed stays writable for a user started with another uid in the group users.
//! The fixture's images are removed afterwards.

use std::path::Path;
use std::sync::Arc;

use testcontainers::core::{ExecCommand, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use xtask::engine::Engine;
use xtask::graph::{ImageGraph, NodeId};
use xtask::spec::Spec;

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Builds the fixture child image on base-notebook as built here; returns its reference.
async fn build_child(dir: &Path, engine: &Engine) -> String {
    let base = harness::images::built(&["base-notebook"]).await.unwrap_or_else(|e| panic!("{e}")).remove(0);
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/child-stack"), dir);
    let spec_path = dir.join("images/spec.yml");
    let text = std::fs::read_to_string(&spec_path).unwrap().replace("BASE_NOTEBOOK", &base);
    std::fs::write(&spec_path, text).unwrap();
    let spec = Arc::new(Spec::load(&spec_path).unwrap_or_else(|e| panic!("{e}")));
    let graph = ImageGraph::new(&spec);
    let node = NodeId::new(&spec, "pip-recipe", spec.default_variant());
    harness::images::ensure_built(&spec, &graph, std::slice::from_ref(&node), engine)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    format!("{}:{}", spec.repository(&node.image, &node.variant), xtask::build::BUILD_TAG)
}

/// Removes every tag of the fixture's repository.
async fn remove_child(engine: &Engine, repository: &str) {
    for image in engine.images_named(repository).await.unwrap_or_default() {
        for tag in image.repo_tags {
            let _ = engine.remove_image(&tag, true).await;
        }
    }
}

/// Runs `command` in `container` as `user`; returns its exit code and output.
async fn exec<I: testcontainers::Image>(
    container: &testcontainers::ContainerAsync<I>,
    user: &[&str],
    command: &str,
) -> (Option<i64>, String) {
    let argv: Vec<&str> = ["setpriv"].iter().chain(user).chain(&["--", "sh", "-c", command]).copied().collect();
    let mut result = container.exec(ExecCommand::new(argv)).await.unwrap();
    let mut output = String::from_utf8(result.stdout_to_vec().await.unwrap()).unwrap();
    output.push_str(&String::from_utf8(result.stderr_to_vec().await.unwrap()).unwrap());
    (result.exit_code().await.unwrap(), output)
}

#[tokio::test]
async fn a_docker_stacks_pip_recipe_builds_and_stays_writable() {
    let engine = Engine::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let reference = build_child(dir.path(), &engine).await;
    let (repository, tag) = reference.rsplit_once(':').unwrap();
    let container = GenericImage::new(repository, tag)
        .with_wait_for(WaitFor::Nothing)
        .with_entrypoint("sleep")
        .with_cmd(["300"])
        .with_user("root")
        .start()
        .await
        .unwrap();
    let as_jovyan: &[&str] = &["--reuid=1000", "--regid=100", "--init-groups"];
    let checks = [
        // The package works for the notebook user.
        (as_jovyan, "flake8 --version | head -1 | cut -d' ' -f1", "7.1.1"),
        // Everything in the environment and the home folder belongs to the group and is
        // writable by it (what fix-permissions does).
        (
            as_jovyan,
            "find /opt/venv /home/jovyan ! -type l \\( ! -group users -o ! -perm -g+rw \\) | head -3; echo clean",
            "clean",
        ),
        // So another uid in the group users can change what the recipe installed.
        (
            &["--reuid=1010", "--regid=100", "--clear-groups"],
            "touch /opt/venv/lib/python3.11/site-packages/flake8/x && echo written",
            "written",
        ),
        (as_jovyan, "test -d ~/work && echo work", "work"),
    ];
    let mut failures = Vec::new();
    for (user, command, expected) in checks {
        let (code, output) = exec(&container, user, command).await;
        if code != Some(0) || output.trim_end() != expected {
            failures.push(format!("`{command}` exited {code:?}, output: {output}"));
        }
    }
    drop(container);
    remove_child(&engine, repository).await;
    assert!(failures.is_empty(), "the child image does not behave:\n{}", failures.join("\n"));
}
