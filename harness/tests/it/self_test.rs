//! The harness's own tests, on the busybox fixture stack built against the real engine: every
//! check type passes and, with a wrong expectation, fails with what was expected and what came
//! out; inheritance and opt-outs; discovery errors; GPU trials; no container left behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use harness::discover::{discover, Check, TrialSpec};
use harness::format::{parse, Kind};
use harness::run::{sweep_leftovers, Runner};
use harness::CONTAINER_LABEL;
use tokio::sync::OnceCell;
use xtask::engine::{ContainerRequest, Engine, GpuAccess};
use xtask::graph::{ImageGraph, NodeId};
use xtask::spec::Spec;

/// The fixture stack, built once for the whole binary.
struct Fixture {
    _dir: tempfile::TempDir,
    spec: Arc<Spec>,
    graph: ImageGraph,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let dir = tempfile::tempdir().unwrap();
            // A fixed namespace: later runs find these images up to date instead of piling up new ones.
            let spec_path =
                xtask::fixture::prepare(dir.path(), "harness-selftest", xtask::fixture::BUSYBOX_BASE).unwrap();
            let spec = Arc::new(Spec::load(&spec_path).unwrap_or_else(|e| panic!("{e}")));
            let graph = ImageGraph::new(&spec);
            let nodes: Vec<NodeId> = graph.topological_order().cloned().collect();
            let engine = Engine::connect().await.unwrap();
            let reporter = Arc::new(xtask::progress::Reporter::quiet(&dir.path().join("logs")));
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let options = xtask::build::BuildOptions { jobs: 2, ..Default::default() };
            let report =
                xtask::build::build(spec.clone(), &graph, &nodes, engine, options, reporter, rx).await.unwrap();
            assert!(!report.failed(), "{}", xtask::build::failures(&report));
            Fixture { _dir: dir, spec, graph }
        })
        .await
}

fn node(spec: &Spec, name: &str) -> NodeId {
    NodeId::new(spec, name, spec.default_variant())
}

/// One trial of image `image` from a suite written inline.
fn trials_from(spec: &Spec, image: &str, suite: &str) -> Vec<TrialSpec> {
    let file = parse(Path::new("inline.yml"), suite).unwrap();
    let mut out = Vec::new();
    for (name, check) in file.commands {
        out.push(TrialSpec {
            name: name.clone(),
            node: node(spec, image),
            check: Check::Command(check),
            source: "inline.yml".into(),
        });
    }
    for (name, check) in file.files {
        out.push(TrialSpec {
            name: name.clone(),
            node: node(spec, image),
            check: Check::File(check),
            source: "inline.yml".into(),
        });
    }
    for (name, check) in file.services {
        out.push(TrialSpec {
            name,
            node: node(spec, image),
            check: Check::Service(check),
            source: "inline.yml".into(),
        });
    }
    if let Some(check) = file.metadata {
        let check = Check::Metadata(check);
        out.push(TrialSpec { name: "metadata".into(), node: node(spec, image), check, source: "inline.yml".into() });
    }
    out
}

/// Runs each check of `suite` on `image` as if the engine had no GPU:
/// `(name, Ok or the failure message)`.
async fn run_suite(image: &str, suite: &str) -> Vec<(String, Result<(), String>)> {
    run_suite_with(image, suite, true).await
}

/// Like `run_suite`; `agents: false` sends every command through an engine exec.
async fn run_suite_with(image: &str, suite: &str, agents: bool) -> Vec<(String, Result<(), String>)> {
    let fixture = fixture().await;
    let engine = Engine::connect().await.unwrap();
    let mut runner = Runner::new(engine, fixture.spec.clone(), GpuAccess::None);
    runner.use_agents = agents;
    let mut out = Vec::new();
    for trial in trials_from(&fixture.spec, image, suite) {
        out.push((trial.name.clone(), runner.run(&trial).await.map_err(|error| error.to_string())));
    }
    runner.cleanup().await;
    out
}

const PASSING: &str = r#"
commands:
  exit-zero: {run: "true"}
  exit-code: {run: "exit 3", exit_code: 3}
  stdout-equals: {run: "echo base", stdout: {equals: base}}
  stdout-contains: {run: "echo hello world", stdout: {contains: "lo wo"}}
  stdout-matches: {run: "echo v1.2.3", stdout: {matches: '^v\d+\.\d+'}}
  stdout-not-contains: {run: "echo fine", stdout: {not_contains: error}}
  stderr: {run: "echo oops >&2", stderr: {equals: oops}}
  env: {run: 'echo "$GREETING"', env: {GREETING: bonjour}, stdout: {equals: bonjour}}
  user: {run: [id, -u], user: "1234", stdout: {equals: "1234"}}
  workdir: {run: pwd, workdir: /bin, stdout: {equals: /bin}}
files:
  exists: {path: /base.txt, contents: {equals: base}}
  absent: {path: /nope, exists: false}
  mode: {path: /bin/busybox, mode: "0755", owner: root, group: "0"}
metadata:
  labels: {xtask.stack.image: base, xtask.stack.variant: cpu, xtask.stack.inputs: {matches: '^sha256:[0-9a-f]{64}$'}}
  env_contains: {PATH: /bin}
  healthcheck: false
  user: ""
"#;

const FAILING: &str = r#"
commands:
  exit-code: {run: "exit 3"}
  stdout-equals: {run: "echo base", stdout: {equals: other}}
  stdout-contains: {run: "echo hello", stdout: {contains: bye}}
  stdout-matches: {run: "echo v1", stdout: {matches: '^\d'}}
  stdout-not-contains: {run: "echo an error", stdout: {not_contains: error}}
  stderr: {run: "echo oops >&2", stderr: {equals: fine}}
  env: {run: 'echo "$GREETING"', stdout: {equals: bonjour}}
  user: {run: [id, -u], user: "1234", stdout: {equals: "0"}}
  workdir: {run: pwd, workdir: /bin, stdout: {equals: /}}
  timeout: {run: "sleep 30", timeout: 1}
files:
  exists: {path: /nope}
  absent: {path: /base.txt, exists: false}
  mode: {path: /bin/busybox, mode: "0644"}
  owner: {path: /bin/busybox, owner: "1000"}
  contents: {path: /base.txt, contents: {contains: tools}}
metadata:
  user: "1000"
  workdir: /home
  env: {GREETING: hello}
  labels: {xtask.stack.image: tools, xtask.stack.inputs: {matches: '^v'}, no.such.label: {contains: x}}
  exposed_ports: [8888/tcp]
  entrypoint: [tini]
  cmd: [start]
  healthcheck: true
"#;

#[rstest::rstest]
#[case::through_agents(true)]
#[case::through_exec(false)]
#[tokio::test]
async fn every_check_type_passes_when_it_should(#[case] agents: bool) {
    for (name, result) in run_suite_with("base", PASSING, agents).await {
        assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
    }
}

#[rstest::rstest]
#[case::through_agents(true)]
#[case::through_exec(false)]
#[tokio::test]
async fn every_check_type_fails_on_a_wrong_expectation_and_says_why(#[case] agents: bool) {
    let results = run_suite_with("base", FAILING, agents).await;
    assert_eq!(results.len(), 16);
    let expected = [
        ("exit-code", "exit code should be 0, but is 3"),
        ("stdout-equals", "stdout should equal \"other\", but is \"base\""),
        ("stdout-contains", "stdout should contain \"bye\""),
        ("stdout-matches", "stdout should match /^\\d/"),
        ("stdout-not-contains", "stdout should not contain \"error\""),
        ("stderr", "stderr should equal \"fine\", but is \"oops\""),
        ("env", "stdout should equal \"bonjour\", but is \"\""),
        ("user", "stdout should equal \"0\", but is \"1234\""),
        ("workdir", "stdout should equal \"/\", but is \"/bin\""),
        ("timeout", "did not finish within 1 s"),
        ("exists", "/nope should exist, but does not"),
        ("absent", "/base.txt should not exist, but does"),
        ("mode", "mode should be 0644, but is 755"),
        ("owner", "owner should be 1000, but is root (0)"),
        ("contents", "contents should contain \"tools\""),
        ("metadata", "user should be \"1000\", but is \"\""),
    ];
    for ((name, result), (expected_name, message)) in results.iter().zip(expected) {
        assert_eq!(name, expected_name);
        let error = result.as_ref().expect_err(name);
        assert!(error.contains(message), "{name}: {error}");
        assert!(error.contains("(from inline.yml)"), "{name}: {error}");
    }
    let metadata = results[15].1.as_ref().unwrap_err();
    for problem in [
        "workdir should be \"/home\"",
        "env GREETING should be \"hello\", but is \"\"",
        "label xtask.stack.image should equal \"tools\", but is \"base\"",
        "label xtask.stack.inputs should match /^v/",
        "label no.such.label should be set, but the image has no such label",
        "port 8888/tcp should be exposed",
        "entrypoint should be",
        "cmd should be",
        "the image should declare a HEALTHCHECK, but has none",
    ] {
        assert!(metadata.contains(problem), "{problem}: {metadata}");
    }
    let (_, command_failure) = &results[1];
    let text = command_failure.as_ref().unwrap_err();
    assert!(
        text.contains("command `echo base` failed its check")
            && text.contains("exit code: 0")
            && text.contains("    | base"),
        "{text}"
    );
}

#[tokio::test]
async fn a_gpu_trial_forced_without_a_gpu_fails_with_the_reason() {
    let results = run_suite("base", "commands:\n  smi: {run: nvidia-smi, kind: gpu}\n").await;
    let error = results[0].1.as_ref().unwrap_err();
    assert!(error.contains("needs an NVIDIA GPU") && error.contains("cannot run here"), "{error}");
    let file = parse(Path::new("x.yml"), "commands:\n  smi: {run: nvidia-smi, kind: gpu}\n").unwrap();
    assert_eq!(file.commands["smi"].kind, Kind::Gpu);
}

#[tokio::test]
async fn discovery_inherits_through_parents_only() {
    let fixture = fixture().await;
    let trials = discover(&fixture.spec, &fixture.graph).unwrap();
    let of = |image: &str| -> BTreeSet<String> {
        trials.iter().filter(|t| t.node.name == image).map(|t| t.name.split_once("::").unwrap().1.to_string()).collect()
    };
    assert_eq!(
        of("base"),
        BTreeSet::from(["base/checks::base-file".to_string(), "common/common::busybox".to_string()])
    );
    // app inherits base's (its parent), not tools' (a dependency).
    assert_eq!(
        of("app"),
        BTreeSet::from([
            "app/checks::copied-from-tools".to_string(),
            "base/checks::base-file".to_string(),
            "common/common::busybox".to_string()
        ])
    );
    assert!(of("extra").contains("base/checks::base-file") && of("extra").contains("app/checks::copied-from-tools"));
    assert!(of("app@gpu").contains("base/checks::base-file"));
    let names: Vec<&String> = trials.iter().map(|t| &t.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "trials are sorted");
}

/// A copy of the fixture's spec folder whose test files the test may change (no engine).
fn editable() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    xtask::fixture::copy_dir(&xtask::fixture::source_dir(), dir.path()).unwrap();
    let spec = dir.path().join("images/spec.yml");
    (dir, spec)
}

fn discover_at(spec_path: &Path) -> Result<Vec<TrialSpec>, Vec<String>> {
    let spec = Spec::load(spec_path).unwrap();
    discover(&spec, &ImageGraph::new(&spec))
}

#[test]
fn opting_out_of_inheritance() {
    let (dir, spec) = editable();
    let images = dir.path().join("images");
    std::fs::write(
        images.join("base/tests/checks.yml"),
        "inherit: false\ncommands:\n  base-file: {run: cat /base.txt}\n",
    )
    .unwrap();
    std::fs::write(
        images.join("app/tests/checks.yml"),
        "commands:\n  mine: {run: 'true', inherit: false}\n  shared: {run: 'true'}\n",
    )
    .unwrap();
    std::fs::write(images.join("tests/common.yml"), "except: [tools]\nfiles:\n  busybox: {path: /bin/busybox}\n")
        .unwrap();
    std::fs::write(images.join("tools/tests/meta.yml"), "metadata:\n  user: \"\"\n  inherit: false\n").unwrap();
    let trials = discover_at(&spec).unwrap();
    let names: BTreeSet<&str> = trials.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains("base::base/checks::base-file") && !names.contains("app::base/checks::base-file"));
    assert!(names.contains("app::app/checks::mine") && !names.contains("extra::app/checks::mine"));
    assert!(names.contains("extra::app/checks::shared"));
    assert!(!names.iter().any(|n| n.starts_with("tools::common/")));
    assert!(names.contains("tools::tools/meta::metadata"));
    assert!(!names.iter().any(|n| n.starts_with("app::tools/")), "tools is a dependency of app, not its parent");
}

#[test]
fn discovery_errors_are_errors_not_passes() {
    let (dir, spec) = editable();
    let images = dir.path().join("images");
    std::fs::remove_file(images.join("tests/common.yml")).unwrap();
    std::fs::write(images.join("tools/tests/checks.yml"), "inherit: true\n").unwrap();
    std::fs::write(images.join("extra/tests/notes.txt"), "true\n").unwrap();
    std::fs::write(images.join("app/tests/checks.yml"), "commands:\n  x: {runn: 'true'}\n").unwrap();
    let errors = discover_at(&spec).unwrap_err();
    let text = errors.join("\n");
    assert!(text.contains("tools/tests/checks.yml: the suite has no checks"), "{text}");
    assert!(text.contains("extra/tests/notes.txt: not a test format this harness knows"), "{text}");
    assert!(text.contains("app/tests/checks.yml:2:7: ") && text.contains("unknown field `runn`"), "{text}");
    assert!(text.contains("image `tools` has no tests"), "{text}");
}

#[tokio::test]
async fn containers_are_removed_and_a_crashed_runs_are_swept() {
    let fixture = fixture().await;
    let engine = Engine::connect().await.unwrap();
    let runner = Runner::new(engine.clone(), fixture.spec.clone(), GpuAccess::None);
    for trial in trials_from(&fixture.spec, "tools", "commands:\n  ok: {run: 'true'}\n  also: {run: 'true'}\n") {
        runner.run(&trial).await.unwrap();
    }
    let started = runner.started();
    assert_eq!(started.len(), 1, "one container served both checks");
    assert_eq!(
        engine.container_label(&started[0], CONTAINER_LABEL).await.unwrap(),
        Some(std::process::id().to_string())
    );
    runner.cleanup().await;
    assert!(!engine.containers().await.unwrap().contains(&started[0]), "cleanup left a container");
    // A container from a run whose process is gone (pid 0 is never a user process's).
    let image = runner.image_of(&node(&fixture.spec, "tools"));
    let orphan = engine
        .start_container(ContainerRequest {
            image,
            entrypoint: Some(vec!["sleep".into(), "300".into()]),
            labels: [(CONTAINER_LABEL.to_string(), "999999999".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sweep_leftovers(&engine).await.unwrap() >= 1);
    assert!(!engine.containers().await.unwrap().contains(&orphan));
}

#[tokio::test]
async fn scripts_run_inside_the_container_and_fail_with_their_output() {
    let fixture = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.sh");
    let bad = dir.path().join("bad.sh");
    std::fs::write(&good, "set -e\ntest -f /base.txt\necho written > out.txt\ncat out.txt\n").unwrap();
    std::fs::write(&bad, "echo about to fail\necho details >&2\nexit 4\n").unwrap();
    let engine = Engine::connect().await.unwrap();
    let runner = Runner::new(engine, fixture.spec.clone(), GpuAccess::None);
    let trial = |path: &Path| TrialSpec {
        name: "script".into(),
        node: node(&fixture.spec, "base"),
        check: Check::Script(harness::format::ScriptCheck {
            path: path.to_path_buf(),
            kind: Kind::Acceptance,
            interpreter: vec!["sh".into()],
        }),
        source: path.to_path_buf(),
    };
    let passed = runner.run(&trial(&good)).await;
    let failed = runner.run(&trial(&bad)).await;
    runner.cleanup().await;
    passed.unwrap();
    let error = failed.unwrap_err().to_string();
    assert!(error.contains("script bad.sh (`sh bad.sh`) exited with 4"), "{error}");
    assert!(error.contains("| about to fail") && error.contains("| details"), "{error}");
}

#[test]
fn scripts_are_discovered_with_the_kind_of_their_folder() {
    let (dir, spec) = editable();
    let tests = dir.path().join("images/base/tests");
    std::fs::write(tests.join("hello.sh"), "true\n").unwrap();
    std::fs::create_dir_all(tests.join("workflow")).unwrap();
    std::fs::write(tests.join("workflow/train.py"), "print(1)\n").unwrap();
    std::fs::create_dir_all(tests.join("gpu")).unwrap();
    std::fs::write(tests.join("gpu/cuda.py"), "print(1)\n").unwrap();
    let trials = discover_at(&spec).unwrap();
    let find = |name: &str| trials.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no trial {name}"));
    assert_eq!(find("base::base/scripts::hello.sh").check.kind(), Kind::Acceptance);
    assert_eq!(find("base::base/workflow::train.py").check.kind(), Kind::Workflow);
    assert_eq!(find("app::base/gpu::cuda.py").check.kind(), Kind::Gpu, "scripts are inherited too");
    std::fs::create_dir_all(tests.join("misc")).unwrap();
    let errors = discover_at(&spec).unwrap_err().join("\n");
    assert!(errors.contains("misc: test folders are `workflow`, `integration` and `gpu`"), "{errors}");
}

const SERVE: &str = r#"["sh", "-c", "echo '{\"version\": \"1.2\", \"n\": 3}' > /tmp/api.json && echo serving && exec httpd -f -v -p 8888 -h /tmp"]"#;

#[tokio::test]
async fn services_start_wait_and_answer() {
    let suite = format!(
        r#"
services:
  http-ready:
    args: {SERVE}
    wait: {{http: /api.json, timeout: 20}}
    http:
      - path: /api.json
        headers: {{Content-Length: {{matches: '^[0-9]+$'}}}}
        json: {{version: {{matches: '^1\.'}}, n: {{equals: "3"}}}}
      - {{path: /nope, status: 404}}
  log-ready:
    args: {SERVE}
    wait: {{log: serving, timeout: 20}}
    http: [{{path: /api.json, body: {{contains: version}}}}]
"#
    );
    for (name, result) in run_suite("base", &suite).await {
        assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
    }
}

#[tokio::test]
async fn services_fail_with_what_was_expected_and_the_container_logs() {
    let suite = format!(
        r#"
services:
  wrong-answers:
    args: {SERVE}
    wait: {{http: /api.json, timeout: 20}}
    http:
      - {{path: /api.json, status: 201, json: {{version: {{equals: "2.0"}}}}}}
      - {{path: /nope, body: {{contains: found}}}}
  never-ready:
    args: {SERVE}
    wait: {{log: 'never printed', timeout: 2}}
  exits-at-once:
    args: [sh, -c, 'echo bye; exit 3']
"#
    );
    let results = run_suite("base", &suite).await;
    let error = |i: usize| results[i].1.as_ref().unwrap_err().clone();
    let wrong = error(0);
    for part in [
        "GET /api.json should answer 201, but answered 200",
        "GET /api.json JSON field version should equal \"2.0\", but is \"1.2\"",
        "GET /nope should answer 200, but answered 404",
        "container logs (last lines)",
        "| serving",
    ] {
        assert!(wrong.contains(part), "{part}: {wrong}");
    }
    assert!(
        error(1).contains("the service was not ready within 2 s: waited for a log line matching /never printed/"),
        "{}",
        error(1)
    );
    assert!(
        error(2).contains("the service stopped before it was ready (exit code 3)") && error(2).contains("| bye"),
        "{}",
        error(2)
    );
}

#[tokio::test]
async fn services_run_commands_inside_once_ready_with_empty_folders_mounted() {
    let suite = format!(
        r#"
services:
  inside:
    args: {SERVE}
    user: "0"
    tmpfs: {{/srv/empty: "uid=1234,mode=0750"}}
    wait: {{http: /api.json, timeout: 20}}
    exec:
      pid-1: {{run: cat /proc/1/cmdline, stdout: {{contains: httpd}}}}
      empty-volume: {{run: 'stat -c "%u %a" /srv/empty && ls -A /srv/empty', stdout: {{equals: "1234 750"}}}}
      as-another-user: {{run: [id, -u], user: "42", stdout: {{equals: "42"}}}}
  wrong-inside:
    args: {SERVE}
    wait: {{http: /api.json, timeout: 20}}
    exec:
      fails: {{run: 'echo nope; exit 4', stdout: {{equals: yes}}}}
"#
    );
    let results = run_suite("base", &suite).await;
    assert!(results[0].1.is_ok(), "{}", results[0].1.as_ref().unwrap_err());
    let wrong = results[1].1.as_ref().unwrap_err();
    for part in [
        "exec fails: command `echo nope; exit 4` failed its check",
        "exit code should be 0, but is 4",
        "stdout should equal \"yes\", but is \"nope\"",
    ] {
        assert!(wrong.contains(part), "{part}: {wrong}");
    }
}

#[rstest::rstest]
#[case::ctrl_c("-INT")]
#[case::ci_cancel("-TERM")]
#[tokio::test]
async fn an_interrupted_run_removes_its_containers(#[case] signal: &str) {
    fixture().await;
    let dir = tempfile::tempdir().unwrap();
    // Same namespace as the shared fixture: its images are up to date, nothing is built.
    let spec = xtask::fixture::prepare(dir.path(), "harness-selftest", xtask::fixture::BUSYBOX_BASE).unwrap();
    std::fs::write(dir.path().join("images/base/tests/slow.yml"), "commands:\n  slow: {run: sleep 60, timeout: 120}\n")
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stack-test"))
        .args(["--exact", "base::base/slow::slow", "--test-threads", "1"])
        .env("STACK_SPEC", &spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let engine = Engine::connect().await.unwrap();
    let mine = || async {
        let mut out = Vec::new();
        for id in engine.containers_labelled(CONTAINER_LABEL).await.unwrap() {
            if engine.container_label(&id, CONTAINER_LABEL).await.unwrap().as_deref() == Some(pid.as_str()) {
                out.push(id);
            }
        }
        out
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while mine().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the run never started its container");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    std::process::Command::new("kill").args([signal, &pid]).status().unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("the run did not stop")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(mine().await.is_empty(), "the interrupted run left containers");
}

#[tokio::test]
async fn exact_resolves_one_trial_from_its_own_suite() {
    let fixture = fixture().await;
    let all = discover(&fixture.spec, &fixture.graph).unwrap();
    for name in ["extra::base/checks::base-file", "app@gpu::common/common::busybox", "tools::tools/checks::tools-file"]
    {
        let exact = harness::discover::discover_exact(&fixture.spec, &fixture.graph, name).unwrap();
        assert_eq!(exact.len(), 1, "{name}");
        assert_eq!(Some(&exact[0]), all.iter().find(|t| t.name == name), "{name}");
    }
    // Not inherited through a dependency, unknown, or malformed: nothing.
    for name in ["app::tools/checks::tools-file", "base::base/checks::nope", "nonsense"] {
        assert!(harness::discover::discover_exact(&fixture.spec, &fixture.graph, name).unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_panicking_check_fails_alone_and_the_container_is_still_removed() {
    let fixture = fixture().await;
    let engine = Engine::connect().await.unwrap();
    let runner = Runner::new(engine.clone(), fixture.spec.clone(), GpuAccess::None);
    for trial in trials_from(&fixture.spec, "extra", "commands:\n  ok: {run: 'true'}\n") {
        runner.run(&trial).await.unwrap();
    }
    let panicked = std::thread::spawn(|| harness::run::guarded(|| panic!("boom"))).join().unwrap();
    assert!(panicked.as_ref().unwrap_err().to_string().contains("boom"), "{panicked:?}");
    let started = runner.started();
    runner.cleanup().await;
    let left = engine.containers().await.unwrap();
    assert!(started.iter().all(|id| !left.contains(id)), "a container outlived the run");
}

#[test]
fn security_trials_come_with_the_spec_key_two_per_image() {
    let (_dir, spec_path) = editable();
    let without = discover_at(&spec_path).unwrap();
    assert!(!without.iter().any(|t| t.check.kind() == Kind::Security), "no `security:`, no security trial");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(&spec_path, format!("{text}security:\n  max_pending: 3\n")).unwrap();
    let trials = discover_at(&spec_path).unwrap();
    let spec = Spec::load(&spec_path).unwrap();
    let graph = ImageGraph::new(&spec);
    for node in graph.topological_order() {
        for name in [
            format!("{}::security/debian::pending-updates", node.name),
            format!("{}::security/scanner::vulnerabilities", node.name),
        ] {
            let trial = trials.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no trial {name}"));
            assert_eq!(trial.check.kind(), Kind::Security);
            let exact = harness::discover::discover_exact(&spec, &graph, &name).unwrap();
            assert_eq!(exact.len(), 1, "--exact finds {name}");
        }
    }
}

#[tokio::test]
async fn a_security_trial_that_cannot_ask_apt_fails_with_the_reason_and_never_passes() {
    let fixture = fixture().await;
    let engine = Engine::connect().await.unwrap();
    let runner = Runner::new(engine, fixture.spec.clone(), GpuAccess::None);
    let limits = xtask::spec::Security {
        archive: "http://deb.debian.org/debian-security".into(),
        max_pending: 0,
        max_vulnerabilities: None,
    };
    let trial = TrialSpec {
        name: "base::security/debian::pending-updates".into(),
        node: node(&fixture.spec, "base"),
        check: Check::Security(harness::discover::SecurityCheck::PendingUpdates(limits)),
        source: "spec.yml".into(),
    };
    let error = runner.run(&trial).await.unwrap_err().to_string();
    runner.cleanup().await;
    assert!(error.contains("cannot run") && error.contains("no apt-get"), "{error}");
}

/// Runs `stack-test` on the spec `spec` with `env` and `args`: its exit code, standard output
/// and standard error.
fn stack_test(spec: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stack-test"))
        .args(args)
        .env("STACK_SPEC", spec)
        .env_remove("STACK_TEST_PLATFORMS")
        .env_remove("STACK_TEST_NODES")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// How libtest's output says trial `name` ended (`ok`, `ignored`, `FAILED`).
fn outcome<'a>(stdout: &'a str, name: &str) -> Option<&'a str> {
    stdout.lines().find_map(|line| {
        let (trial, result) = line.strip_prefix("test ")?.split_once(" ... ")?;
        (trial.trim_end() == name).then(|| result.trim())
    })
}

/// A stack of two platforms: the arm64 trials run under QEMU when selected (`uname -m` says
/// `aarch64` there), carry the platform in their names and JUnit classnames, and are listed as
/// ignored, with the reason, when not selected.
#[test]
fn the_trials_of_each_platform_run_where_selected_and_are_ignored_with_the_reason_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed namespace: later runs find these images up to date.
    let spec = xtask::fixture::prepare_platforms(dir.path(), "harness-platforms", xtask::fixture::BUSYBOX_BASE)
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("images/base/tests/machine.yml"),
        "commands:\n  machine: {run: busybox uname -m, stdout: {equals: aarch64}}\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let env = [("STACK_TEST_PLATFORMS", "all"), ("STACK_JUNIT", junit.to_str().unwrap())];
    let (code, stdout, stderr) = stack_test(&spec, &env, &["base/arm64::", "--test-threads", "2"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(outcome(&stdout, "base/arm64::base/machine::machine"), Some("ok"), "{stdout}");
    assert_eq!(outcome(&stdout, "base/arm64::common/common::busybox"), Some("ok"), "{stdout}");
    assert!(stderr.contains("linux/arm64 trials run under QEMU"), "{stderr}");
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains(r#"classname="base/arm64""#), "{report}");

    let (code, stdout, stderr) = stack_test(&spec, &[], &["base/", "--skip", "machine"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(outcome(&stdout, "base/amd64::base/checks::base-file"), Some("ok"), "{stdout}");
    assert_eq!(outcome(&stdout, "base/arm64::base/checks::base-file"), Some("ignored"), "{stdout}");
    assert!(stderr.contains("trial(s) ignored: linux/arm64 is not selected: set STACK_TEST_PLATFORMS"), "{stderr}");
}
