//! The test binary's main: every trial under `images/` (see [`crate::discover`]) against
//! containers of the built images, through libtest-mimic. `tests/acceptance.rs` (what `cargo
//! test` runs) and the `stack-test` binary both call [`main`].
//!
//! Listing (`--list`, `--ignored`) touches no engine. Running builds what the selected trials
//! need first, through the build engine (DAG-aware, up-to-date images cost nothing), unless
//! `STACK_TEST_NO_BUILD=1` asks to test exactly what is there. GPU trials are ignored unless
//! the host has an NVIDIA GPU (`/dev/nvidiactl`, or `STACK_GPU=1`); forced with
//! `--include-ignored` on an engine without one, they fail with that reason. `STACK_SPEC` points
//! the harness at another spec. Each trial leaves a log under `target/xtask/test-logs/`;
//! `STACK_JUNIT=path` writes a JUnit XML report there too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::discover::{self, Check, SecurityCheck, TrialSpec};
use crate::error::Error;
use crate::format::Kind;
use crate::junit::{self, Record, Verdict};
use crate::run::{self, Runner};
use libtest_mimic::{Arguments, Failed, Trial};
use xtask::graph::{ImageGraph, NodeId};
use xtask::spec::Spec;

type Ready = Result<(tokio::runtime::Runtime, Arc<Runner>), Error>;

/// Set when Ctrl-C or SIGTERM arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

struct Shared {
    spec: Arc<Spec>,
    graph: ImageGraph,
    /// The images the selected trials test.
    nodes: Vec<NodeId>,
    ready: OnceLock<Ready>,
    /// Every trial that ran, for the logs and the JUnit report.
    records: Mutex<Vec<Record>>,
    logs: PathBuf,
}

fn host_has_gpu() -> bool {
    std::env::var_os("STACK_GPU").is_some_and(|v| v == "1") || std::path::Path::new("/dev/nvidiactl").exists()
}

/// Connects, sweeps a crashed run's containers, builds what is missing: once, on the first
/// trial that runs. From then on, Ctrl-C or SIGTERM (a cancelled CI job) removes the test
/// containers and stops the run with 130 (main does the same if it gets there first: trials
/// fail once their containers are gone); during the builds, it stops them and exits.
fn prepare(shared: &Shared) -> Ready {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Bug(format!("cannot start the async runtime: {e}")))?;
    let mut interrupts = {
        let _inside = runtime.enter();
        xtask::signals::Interrupts::listen()
    };
    let runner = runtime.block_on(async {
        tokio::select! {
            runner = runner_for(shared) => runner,
            _ = interrupts.recv() => {
                eprintln!("interrupted while preparing the images under test; no test container was started");
                std::process::exit(130);
            }
        }
    })?;
    let runner = Arc::new(runner);
    let on_interrupt = runner.clone();
    runtime.spawn(async move {
        interrupts.recv().await;
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("interrupted: removing the test containers");
        on_interrupt.cleanup().await;
        std::process::exit(130);
    });
    Ok((runtime, runner))
}

/// A runner on an engine with the images under test (built first unless
/// `STACK_TEST_NO_BUILD=1`).
async fn runner_for(shared: &Shared) -> Result<Runner, Error> {
    let engine = xtask::engine::Engine::connect().await?;
    let swept = run::sweep_leftovers(&engine).await?;
    if swept > 0 {
        eprintln!("note: removed {swept} container(s) left by an earlier, interrupted run");
    }
    let gpu = engine.gpu_access().await?;
    if std::env::var_os("STACK_TEST_NO_BUILD").is_some_and(|v| v == "1") {
        let runner = Runner::new(engine, shared.spec.clone(), gpu);
        for node in &shared.nodes {
            let image = runner.image_of(node);
            if runner.engine.image(&image).await?.is_none() {
                return Err(Error::Images(format!(
                    "{image} is not on the engine, and STACK_TEST_NO_BUILD=1 forbids building it; run `cargo xtask build {}` first",
                    node.name
                )));
            }
        }
        return Ok(runner);
    }
    crate::images::ensure_built(&shared.spec, &shared.graph, &shared.nodes, &engine).await?;
    Ok(Runner::new(engine, shared.spec.clone(), gpu))
}

fn trial(shared: Arc<Shared>, spec: TrialSpec, gpu_here: bool) -> Trial {
    let name = spec.name.clone();
    let labels = spec.clone();
    let trial = Trial::test(name, move || {
        let started = Instant::now();
        let result = match shared.ready.get_or_init(|| prepare(&shared)) {
            Ok((runtime, runner)) => run::guarded(|| runtime.block_on(runner.run(&spec))),
            Err(error) => Err(error.clone()),
        };
        let verdict = match &result {
            Ok(()) => Verdict::Passed,
            Err(error) => Verdict::Failed(error.to_string()),
        };
        let record = Record { name: spec.name.clone(), duration: started.elapsed(), verdict };
        let _ = std::fs::create_dir_all(&shared.logs);
        let _ = std::fs::write(junit::log_path(&shared.logs, &record.name), junit::log_text(&record));
        shared.records.lock().expect("records").push(record);
        result.map_err(|error| Failed::from(error.to_string()))
    });
    labelled(trial, &labels, gpu_here)
}

/// A trial's kind tag and ignored flag: GPU trials are ignored on a host without a GPU, scanner
/// trials where no scanner with its database is installed.
fn labelled(trial: Trial, spec: &TrialSpec, gpu_here: bool) -> Trial {
    let kind = spec.check.kind();
    trial.with_kind(kind.tag()).with_ignored_flag(ignored_because(spec, gpu_here).is_some())
}

/// Why each ignored trial is ignored, by name; with `say`, a note on the scanner trials.
fn ignored_reasons(specs: &[TrialSpec], gpu_here: bool, say: bool) -> std::collections::HashMap<String, String> {
    let reasons: std::collections::HashMap<String, String> =
        specs.iter().filter_map(|s| Some((s.name.clone(), ignored_because(s, gpu_here)?))).collect();
    let scanner = |s: &&TrialSpec| matches!(s.check, Check::Security(SecurityCheck::Scanner(_)));
    let ignored: Vec<&TrialSpec> = specs.iter().filter(scanner).filter(|s| reasons.contains_key(&s.name)).collect();
    if let (true, Some(first)) = (say, ignored.first()) {
        eprintln!("note: {} scanner trial(s) ignored: {}", ignored.len(), reasons[&first.name]);
    }
    reasons
}

/// Why a trial is ignored on this host, if it is.
fn ignored_because(spec: &TrialSpec, gpu_here: bool) -> Option<String> {
    match &spec.check {
        check if check.kind() == Kind::Gpu && !gpu_here => {
            Some(format!("{}; this host has none", xtask::release::GPU_SKIPPED))
        }
        Check::Security(SecurityCheck::Scanner(_)) => xtask::supply::collect::usable_scanner().err(),
        _ => None,
    }
}

/// The trials a CI job asks for: `STACK_TEST_NODES=a,b@gpu` keeps those images' trials (each
/// name must be a node of the stack), `STACK_TEST_KIND=gpu` (or `workflow`, `integration`,
/// `acceptance`) keeps trials of that kind.
fn select(specs: Vec<TrialSpec>, graph: &ImageGraph) -> Result<Vec<TrialSpec>, String> {
    let mut specs = specs;
    if let Some(nodes) = std::env::var("STACK_TEST_NODES").ok().filter(|v| !v.trim().is_empty()) {
        let wanted: Vec<&str> = nodes.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let known: Vec<&str> = graph.topological_order().map(|id| id.name.as_str()).collect();
        if let Some(unknown) = wanted.iter().find(|name| !known.contains(name)) {
            return Err(format!(
                "STACK_TEST_NODES names `{unknown}`, which the stack does not have\n  hint: use `image` or `image@variant`, one of: {}",
                known.join(", ")
            ));
        }
        specs.retain(|spec| wanted.contains(&spec.node.name.as_str()));
    }
    if let Some(kind) = std::env::var("STACK_TEST_KIND").ok().filter(|v| !v.trim().is_empty()) {
        let kinds = ["acceptance", "workflow", "integration", "gpu", "security"];
        if !kinds.contains(&kind.as_str()) {
            return Err(format!(
                "STACK_TEST_KIND `{kind}` is not a kind of trial\n  hint: one of {}",
                kinds.join(", ")
            ));
        }
        specs.retain(|spec| {
            let tag = spec.check.kind().tag();
            tag == kind || (tag.is_empty() && kind == "acceptance")
        });
    }
    Ok(specs)
}

/// Runs the image tests with the process's arguments (libtest's).
pub fn main() -> ExitCode {
    let args = Arguments::from_args();
    let spec_path = std::env::var_os("STACK_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::paths::project_root().join("images/spec.yml"));
    let spec = match Spec::load(&spec_path).and_then(Spec::with_env_overrides) {
        Ok(spec) => Arc::new(spec),
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let graph = ImageGraph::new(&spec);
    // `--exact NAME` (cargo-nextest runs one trial per process): read only that suite's folder.
    let exact = args.filter.as_deref().filter(|_| args.exact && args.skip.is_empty());
    let found = match exact {
        Some(name) => match discover::discover_exact(&spec, &graph, name) {
            Ok(trials) if !trials.is_empty() => Ok(trials),
            _ => discover::discover(&spec, &graph),
        },
        None => discover::discover(&spec, &graph),
    };
    let specs = match found.map(|specs| select(specs, &graph)) {
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        Ok(Ok(specs)) if specs.is_empty() && std::env::var_os("STACK_TEST_KIND").is_some() => {
            eprintln!(
                "note: no trial of kind {:?} for the selected images: nothing to run",
                std::env::var("STACK_TEST_KIND").unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        Ok(Ok(specs)) if !specs.is_empty() => specs,
        Ok(Ok(_)) => {
            eprintln!("error: no image test found under {}; a typo must not pass silently", spec.dir.display());
            return ExitCode::FAILURE;
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            return ExitCode::FAILURE;
        }
    };
    let gpu_here = host_has_gpu();
    // Which trials will run decides which images to build: filter as libtest-mimic will.
    let mut nodes: Vec<NodeId> = specs
        .iter()
        .filter(|spec| {
            let probe = labelled(Trial::test(spec.name.clone(), || Ok(())), spec, gpu_here);
            !args.is_filtered_out(&probe) && (!probe.has_ignored_flag() || args.ignored || args.include_ignored)
        })
        .map(|spec| spec.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    let logs = xtask::paths::work_dir(&spec).join("test-logs");
    let shared = Arc::new(Shared { spec, graph, nodes, ready: OnceLock::new(), records: Mutex::new(Vec::new()), logs });
    let ignored_gpu = specs.iter().filter(|s| s.check.kind() == Kind::Gpu).count();
    if ignored_gpu > 0 && !gpu_here && !args.list {
        eprintln!("note: {ignored_gpu} GPU trial(s) ignored: no NVIDIA GPU on this host (no /dev/nvidiactl, STACK_GPU unset); forced, they fail");
    }
    let trials: Vec<Trial> = specs.iter().map(|s| trial(shared.clone(), s.clone(), gpu_here)).collect();
    let reasons = ignored_reasons(&specs, gpu_here, !args.list);
    let selected: Vec<(String, Option<String>)> = trials
        .iter()
        .filter(|t| !args.is_filtered_out(t))
        .map(|t| {
            (t.name().to_string(), t.has_ignored_flag().then(|| reasons.get(t.name()).cloned().unwrap_or_default()))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(Ok((runtime, runner))) = shared.ready.get() {
        runtime.block_on(runner.cleanup());
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted: the test containers were removed");
        return ExitCode::from(130);
    }
    if let Some(path) = std::env::var_os("STACK_JUNIT").filter(|_| !args.list) {
        let mut records = shared.records.lock().expect("records").clone();
        for (name, ignored) in selected {
            if !records.iter().any(|r| r.name == name) {
                let reason = ignored.unwrap_or_else(|| "not run".into());
                records.push(Record { name, duration: Duration::ZERO, verdict: Verdict::Skipped(reason) });
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        if let Err(error) = std::fs::write(&path, junit::xml(&records)) {
            eprintln!("error: cannot write the JUnit report to {}: {error}", PathBuf::from(&path).display());
            return ExitCode::FAILURE;
        }
    }
    conclusion.exit_code()
}
