//! `cargo xtask docs` as users run it, on fixture images built by the real engine: pages with
//! build info, layers and command outputs; a failing documentation command reported while the
//! other images go on; `--check`; and the package diff between two builds that differ by one
//! package.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::engine::EngineStack;
use xtask::build::BuildOptions;
use xtask::docs::{self, Snapshot};
use xtask::plan::Variants;
use xtask::scheduler::Outcome;

/// `base` writes a package list; `app` (built on it) documents the same list. `base` also
/// keeps the fixture's `os-release` command, which fails on busybox (no /etc/os-release).
fn stack() -> EngineStack {
    let stack = EngineStack::new();
    let files = &stack.stack;
    files.edit_spec(
        "  os-release: cat /etc/os-release\n",
        "  os-release: cat /etc/os-release\n  packages: cat /packages.txt\n",
    );
    files.edit_spec("    doc_commands: [os-release]\n", "    doc_commands: [os-release, packages]\n");
    files.edit_spec("    depends_on: [tools]\n", "    depends_on: [tools]\n    doc_commands: [packages]\n");
    write_packages(&stack, &["alpha==1.0", "beta==2.0"]);
    stack
}

fn write_packages(stack: &EngineStack, packages: &[&str]) {
    let lines: Vec<String> = packages.iter().map(|p| format!("echo {p} >> /packages.txt")).collect();
    stack.stack.write(
        "images/base/Dockerfile",
        &format!("ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN {}\n", lines.join(" && ")),
    );
}

async fn build(stack: &EngineStack) {
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(report.rows.iter().all(|row| matches!(row.outcome, Outcome::Done(_))), "{report:?}");
}

fn out_dir(stack: &EngineStack) -> PathBuf {
    stack.stack.root().join("docs/images")
}

fn docs(stack: &EngineStack, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--spec")
        .arg(stack.stack.spec_file())
        .arg("docs")
        .args(extra)
        .output()
        .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn snapshot(stack: &EngineStack, stem: &str) -> Snapshot {
    serde_json::from_str(&read(&out_dir(stack).join(format!("{stem}.json")))).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn pages_say_what_is_inside_and_what_changed_by_exactly_one_package() {
    let stack = stack();
    let never = docs(&stack, &[]);
    assert_eq!(never.status.code(), Some(7), "{}", stderr(&never));
    assert!(stderr(&never).contains("`cargo xtask build base tools app extra`"), "{}", stderr(&never));
    build(&stack).await;

    // os-release fails inside base: the run says so and fails, every page is still written.
    let first = docs(&stack, &[]);
    assert_eq!(first.status.code(), Some(10), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("base: documentation command `os-release` (`cat /etc/os-release`) failed"),
        "{}",
        stderr(&first)
    );
    let dir = out_dir(&stack);
    for file in ["base.md", "tools.md", "app.md", "extra.md", "index.md", "RELEASE_NOTES.md", "base.json"] {
        assert!(dir.join(file).is_file(), "{file} was not written");
    }
    let base = read(&dir.join("base.md"));
    assert!(
        base.contains("## os-release") && base.contains("**This command failed inside the image: exit code 1.**"),
        "{base}"
    );
    assert!(base.contains("## packages\n\n`cat /packages.txt` (2 packages)"), "{base}");
    assert!(base.contains("alpha==1.0\nbeta==2.0"), "{base}");
    assert!(base.contains("| 2 | `RUN /bin/sh -c echo alpha==1.0"), "the layer table names the RUN step: {base}");
    assert!(base.contains(&format!("| repository | `{}` |", stack.repository("base"))), "{base}");
    assert!(base.contains("First documented release."), "{base}");
    let app = read(&dir.join("app.md"));
    assert!(app.contains("## packages") && app.contains("(2 packages)"), "{app}");
    let index = read(&dir.join("index.md"));
    assert!(index.contains("```mermaid\nflowchart TD\n"), "{index}");
    assert!(index.contains("| [extra](extra.md) | cpu |"), "{index}");

    // Nothing changed: --check passes, and a second run writes the same bytes.
    let check = docs(&stack, &["--check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let before = read(&dir.join("base.json"));
    docs(&stack, &[]);
    assert_eq!(read(&dir.join("base.json")), before, "regenerating changed the snapshot");

    // A second build that adds one package.
    write_packages(&stack, &["alpha==1.0", "beta==2.0", "gamma==0.1"]);
    build(&stack).await;
    let stale = docs(&stack, &["--check"]);
    assert_eq!(stale.status.code(), Some(10), "{}", stderr(&stale));
    let fix = format!("`cargo xtask --spec {} docs`", stack.stack.spec_file().display());
    assert!(stderr(&stale).contains(&fix), "{}", stderr(&stale));
    assert!(stderr(&stale).contains("base.md"), "{}", stderr(&stale));
    assert_eq!(read(&dir.join("base.json")), before, "--check wrote a file");

    docs(&stack, &[]);
    for stem in ["base", "app"] {
        let snapshot = snapshot(&stack, stem);
        let previous = snapshot.previous.as_ref().expect("the first build is the previous release");
        let change = docs::diff(&previous.packages["packages"], &snapshot.current.packages["packages"]);
        assert_eq!(change.added, [("gamma".to_string(), "0.1".to_string())], "{stem}");
        assert!(
            change.removed.is_empty() && change.upgraded.is_empty() && change.downgraded.is_empty(),
            "{stem}: {change:?}"
        );
        assert_eq!(snapshot.history.len(), 2, "{stem}");
        let page = read(&dir.join(format!("{stem}.md")));
        assert!(page.contains("### packages\n\n| change | package | before | after |\n| --- | --- | --- | --- |\n| added | gamma | | 0.1 |\n\n"), "{page}");
    }
    let tools = snapshot(&stack, "tools");
    assert!(tools.previous.is_none(), "tools did not change");
    let notes = read(&dir.join("RELEASE_NOTES.md"));
    assert!(notes.contains("## base\n\nSince ") && notes.contains("| added | gamma | | 0.1 |"), "{notes}");
    assert!(docs(&stack, &["--check"]).status.success());
}
