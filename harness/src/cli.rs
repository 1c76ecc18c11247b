//! The test binary's main: every trial under `images/` (see [`crate::discover`]) against
//! containers of the built images, through libtest-mimic. `tests/acceptance.rs` (what `cargo
//! test` runs) and the `stack-test` binary both call [`main`].
//!
//! Listing (`--list`, `--ignored`) touches no engine. Running builds what the selected trials
//! need first, through the build engine (DAG-aware, up-to-date images cost nothing), unless
//! `STACK_TEST_NO_BUILD=1` asks to test exactly what is there. GPU trials are ignored unless
//! the host has an NVIDIA GPU (`/dev/nvidiactl`, or `STACK_GPU=1`); forced with
//! `--include-ignored` on an engine without one, they fail with that reason. In a stack of
//! several platforms, the trials of the host's platform run; `STACK_TEST_PLATFORMS` (`all`, or
//! `linux/arm64,...`) or a node named in `STACK_TEST_NODES` selects others, which run under QEMU
//! where a binfmt handler is registered; the rest are listed as ignored, with the reason.
//! `STACK_SPEC` points the harness at another spec. Each trial leaves a log under
//! `target/xtask/test-logs/`; `STACK_JUNIT=path` writes a JUnit XML report there too.

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
use xtask::platform::{Platform, Runs};
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

/// What this run can and may test: a GPU, and which platforms (selected, and runnable here).
struct Host {
    gpu: bool,
    /// Platforms selected by `STACK_TEST_PLATFORMS` (default: the spec's default one).
    platforms: Vec<Platform>,
    /// Nodes named by `STACK_TEST_NODES`: selected whatever their platform.
    named: Vec<String>,
    /// The vulnerability scanner the scanner trials use, or why there is none (they are then
    /// ignored with that reason).
    scanner: Result<(), String>,
}

impl Host {
    fn new(spec: &Spec) -> Result<Host, String> {
        let platforms = match std::env::var("STACK_TEST_PLATFORMS").ok().filter(|v| !v.trim().is_empty()) {
            None => vec![spec.default_platform().clone()],
            Some(all) if all.trim() == "all" => spec.stack.platforms.clone(),
            Some(list) => list
                .split(',')
                .map(|text| Platform::parse(text).map_err(|why| format!("STACK_TEST_PLATFORMS: {why}")))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let named = std::env::var("STACK_TEST_NODES")
            .map(|v| v.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default();
        let scanner = xtask::supply::collect::usable_scanner().map(|_| ());
        Ok(Host { gpu: host_has_gpu(), platforms, named, scanner })
    }

    /// Why a trial does not run here, if it does not.
    fn ignored(&self, spec: &TrialSpec) -> Option<String> {
        let platform = &spec.node.platform;
        if spec.check.kind() == Kind::Gpu && !self.gpu {
            return Some(format!("{}; this host has none", xtask::release::GPU_SKIPPED));
        }
        if !self.platforms.contains(platform) && !self.named.contains(&spec.node.name) {
            return Some(format!(
                "{platform} is not selected: set STACK_TEST_PLATFORMS={platform} (or all), or name the node in STACK_TEST_NODES"
            ));
        }
        if platform.host_runs() == Runs::No && !remote_engine() {
            return Some(format!("{platform} cannot run here: {}", platform.how_to_run()));
        }
        if let Check::Security(SecurityCheck::Scanner(_)) = &spec.check {
            return self.scanner.clone().err();
        }
        None
    }
}

/// Whether DOCKER_HOST names an engine elsewhere, whose platforms this host cannot tell.
fn remote_engine() -> bool {
    std::env::var("DOCKER_HOST").is_ok_and(|host| !host.is_empty() && !host.starts_with("unix://"))
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

fn trial(shared: Arc<Shared>, spec: TrialSpec, host: &Host) -> Trial {
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
    labelled(trial, &labels, host)
}

/// A trial's kind tag and ignored flag: GPU trials on a host without a GPU, and trials of a
/// platform that is not selected or cannot run here, are ignored.
fn labelled(trial: Trial, spec: &TrialSpec, host: &Host) -> Trial {
    trial.with_kind(spec.check.kind().tag()).with_ignored_flag(host.ignored(spec).is_some())
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
                "STACK_TEST_NODES names `{unknown}`, which the stack does not have\n  hint: use `image`, `image@variant` (and `/arch` in a stack of several platforms), one of: {}",
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

/// What the run says before the trials: GPU trials ignored, platforms not selected or not
/// runnable here, and the platforms tested under QEMU (slower).
fn notes(specs: &[TrialSpec], tested: &[NodeId], host: &Host) {
    let gpu = specs.iter().filter(|s| s.check.kind() == Kind::Gpu).count();
    if gpu > 0 && !host.gpu {
        eprintln!("note: {gpu} GPU trial(s) ignored: no NVIDIA GPU on this host (no /dev/nvidiactl, STACK_GPU unset); forced, they fail");
    }
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for spec in specs.iter().filter(|s| s.check.kind() != Kind::Gpu || host.gpu) {
        if let Some(reason) = host.ignored(spec) {
            *reasons.entry(reason).or_default() += 1;
        }
    }
    for (reason, count) in reasons {
        eprintln!("note: {count} trial(s) ignored: {reason}");
    }
    let mut emulated: Vec<&Platform> = tested.iter().map(|node| &node.platform).collect();
    emulated.sort();
    emulated.dedup();
    for platform in emulated {
        if let Runs::Emulated { handler } = platform.host_runs() {
            eprintln!(
                "note: the {platform} trials run under QEMU ({}): slower than on a native machine",
                handler.display()
            );
        }
    }
}

/// Runs the image tests with the process's arguments (libtest's).
/// The spec the harness tests (`STACK_SPEC`, else the repository's), its graph, and the trials
/// selected from it; `Err` with the exit code after saying why there is nothing to run.
fn trials_of(args: &Arguments) -> Result<(Arc<Spec>, ImageGraph, Vec<TrialSpec>), ExitCode> {
    let spec_path = std::env::var_os("STACK_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::paths::project_root().join("images/spec.yml"));
    let spec = match Spec::load(&spec_path).and_then(Spec::with_env_overrides) {
        Ok(spec) => Arc::new(spec),
        Err(error) => {
            eprintln!("{error}");
            return Err(ExitCode::FAILURE);
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
    match found.map(|specs| select(specs, &graph)) {
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            Err(ExitCode::FAILURE)
        }
        Ok(Ok(specs)) if specs.is_empty() && std::env::var_os("STACK_TEST_KIND").is_some() => {
            eprintln!(
                "note: no trial of kind {:?} for the selected images: nothing to run",
                std::env::var("STACK_TEST_KIND").unwrap_or_default()
            );
            Err(ExitCode::SUCCESS)
        }
        Ok(Ok(specs)) if !specs.is_empty() => Ok((spec, graph, specs)),
        Ok(Ok(_)) => {
            eprintln!("error: no image test found under {}; a typo must not pass silently", spec.dir.display());
            Err(ExitCode::FAILURE)
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            Err(ExitCode::FAILURE)
        }
    }
}

/// Writes the JUnit report of the trials that ran, and of those `selected` that did not (with
/// why they were ignored).
fn write_junit(
    path: &std::ffi::OsStr,
    shared: &Shared,
    selected: Vec<(String, Option<String>)>,
) -> Result<(), ExitCode> {
    let mut records = shared.records.lock().expect("records").clone();
    for (name, ignored) in selected {
        if !records.iter().any(|r| r.name == name) {
            let reason = ignored.unwrap_or_else(|| "not run".into());
            records.push(Record { name, duration: Duration::ZERO, verdict: Verdict::Skipped(reason) });
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    std::fs::write(path, junit::xml(&records)).map_err(|error| {
        eprintln!("error: cannot write the JUnit report to {}: {error}", PathBuf::from(path).display());
        ExitCode::FAILURE
    })
}

/// Runs the image tests with the process's arguments (libtest's).
pub fn main() -> ExitCode {
    let args = Arguments::from_args();
    let (spec, graph, specs) = match trials_of(&args) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let host = match Host::new(&spec) {
        Ok(host) => host,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Which trials will run decides which images to build: filter as libtest-mimic will.
    let mut nodes: Vec<NodeId> = specs
        .iter()
        .filter(|spec| {
            let probe = labelled(Trial::test(spec.name.clone(), || Ok(())), spec, &host);
            !args.is_filtered_out(&probe) && (!probe.has_ignored_flag() || args.ignored || args.include_ignored)
        })
        .map(|spec| spec.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    let logs = xtask::paths::work_dir(&spec).join("test-logs");
    let shared = Arc::new(Shared { spec, graph, nodes, ready: OnceLock::new(), records: Mutex::new(Vec::new()), logs });
    if !args.list {
        notes(&specs, &shared.nodes, &host);
    }
    let trials: Vec<Trial> = specs.iter().map(|s| trial(shared.clone(), s.clone(), &host)).collect();
    let selected: Vec<(String, Option<String>)> = specs
        .iter()
        .zip(&trials)
        .filter(|(_, t)| !args.is_filtered_out(t))
        .map(|(spec, t)| (t.name().to_string(), host.ignored(spec)))
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
        if let Err(code) = write_junit(&path, &shared, selected) {
            return code;
        }
    }
    conclusion.exit_code()
}
