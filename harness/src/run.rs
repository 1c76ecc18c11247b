//! Runs trials against real containers: one long-lived container per image, started on the
//! first trial that needs it and shared by all its checks through exec; every exec has a
//! timeout; every container carries [`CONTAINER_LABEL`] and is removed at the end, on Ctrl-C,
//! and, if a run crashed, by the next run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use xtask::engine::{ContainerRequest, Engine, ExecOutput, ExecRequest, GpuAccess};
use xtask::graph::NodeId;
use xtask::spec::Spec;

use crate::agent::{self, Agent};
use crate::discover::{Check, SecurityCheck, TrialSpec};
use crate::error::{Error, Result};
use crate::format::{
    check_text, Command, CommandCheck, FileCheck, Kind, MetadataCheck, ScriptCheck, ServiceCheck, TextCheck,
    SCRIPT_TIMEOUT,
};
use crate::service::{self, WaitFor};
use crate::{CONTAINER_LABEL, RUNNER_LABEL};

/// How long a check's command may run unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of output a failure message shows.
const TAIL: usize = 20;

/// An error of the harness's own making (an in-memory archive that cannot be written).
fn bug(error: impl std::fmt::Display) -> Error {
    Error::Bug(error.to_string())
}

/// Runners made by this process so far: each labels its containers as its own.
static RUNNERS: AtomicUsize = AtomicUsize::new(0);

/// Keeps the container's PID 1 alive until it is removed.
const IDLE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// A test container: its ID, and the agents that run checks in it by fork (as its default
/// user, and as root), each started on first use (`None`: the image cannot run one).
pub struct TestContainer {
    pub id: String,
    agent: OnceCell<Option<Agent>>,
    root_agent: OnceCell<Option<Agent>>,
}

/// A container started once, on first use, or why it could not start.
type Started = Arc<OnceCell<Result<Arc<TestContainer>>>>;

pub struct Runner {
    pub engine: Engine,
    spec: Arc<Spec>,
    /// How containers get a GPU here; `None`: GPU trials cannot run.
    gpu: GpuAccess,
    /// Run commands through in-container agents (the default) rather than one exec each.
    pub use_agents: bool,
    /// One container per image (node name), shared by its checks.
    containers: Mutex<HashMap<String, Started>>,
    /// Held for a whole cleanup, so a second one (Ctrl-C and the normal end racing) waits for
    /// the first to finish removing before the process may exit.
    cleaning: tokio::sync::Mutex<()>,
    /// Container creations in flight.
    starting: AtomicUsize,
    /// The value of [`RUNNER_LABEL`] on this runner's containers: `<pid>/<runner number>`.
    owner: String,
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL);
    lines[start..].iter().map(|line| format!("    | {line}")).collect::<Vec<_>>().join("\n")
}

/// What a command must give.
pub(crate) struct Outcome<'a> {
    pub exit_code: i64,
    pub stdout: Option<&'a TextCheck>,
    pub stderr: Option<&'a TextCheck>,
}

/// Compares what a command gave with what it must give; the error shows both.
pub(crate) fn judge(run: &Command, expected: &Outcome, output: &ExecOutput, timeout: Duration) -> Result<(), String> {
    let mut problems = Vec::new();
    match output.exit_code {
        None => problems.push(format!("did not finish within {} s", timeout.as_secs())),
        Some(code) if code != expected.exit_code => {
            problems.push(format!("exit code should be {}, but is {code}", expected.exit_code))
        }
        Some(_) => {}
    }
    if let Some(check) = expected.stdout {
        problems.extend(check_text("stdout", &output.stdout, check));
    }
    if let Some(check) = expected.stderr {
        problems.extend(check_text("stderr", &output.stderr, check));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "command `{}` failed its check:\n  - {}\n  exit code: {}\n  stdout:\n{}\n  stderr:\n{}",
        run.display(),
        problems.join("\n  - "),
        output.exit_code.map_or("none (timed out)".to_string(), |c| c.to_string()),
        tail(&output.stdout),
        tail(&output.stderr),
    ))
}

/// An HTTP answer.
/// Runs a check, turning a panic into that check's failure: the run goes on, and still removes
/// its containers at the end.
pub fn guarded(check: impl FnOnce() -> Result<()>) -> Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(result) => result,
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Error::Bug(text))
        }
    }
}

/// Removes harness containers whose run (the process that made them) is gone.
pub async fn sweep_leftovers(engine: &Engine) -> Result<usize> {
    let mut removed = 0;
    for id in engine.containers_labelled(CONTAINER_LABEL).await? {
        // The label's value is the owning process; a live one is another run in progress.
        let owner = engine.container_label(&id, CONTAINER_LABEL).await?;
        let alive = owner
            .as_deref()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            engine.remove_container(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Runner {
    /// A runner; `gpu` says how containers get a GPU (`GpuAccess::None`: GPU trials fail).
    pub fn new(engine: Engine, spec: Arc<Spec>, gpu: GpuAccess) -> Runner {
        Runner {
            engine,
            spec,
            gpu,
            use_agents: true,
            containers: Mutex::new(HashMap::new()),
            cleaning: Default::default(),
            starting: AtomicUsize::new(0),
            owner: format!("{}/{}", std::process::id(), RUNNERS.fetch_add(1, Ordering::SeqCst)),
        }
    }

    /// The image a node is tested as: what `cargo xtask build` tagged last.
    pub fn image_of(&self, node: &NodeId) -> String {
        xtask::build::build_reference(&self.spec, node)
    }

    /// A security trial: asks the archive (or the scanners) about the image, writes the report
    /// under `target/xtask/security/` for `release` and `docs`, and fails above the spec's
    /// thresholds.
    async fn security(&self, node: &NodeId, check: &SecurityCheck) -> Result<()> {
        use xtask::supply::{collect, security};
        let reference = self.image_of(node);
        let image_id = self.engine.image(&reference).await?.and_then(|i| i.id).unwrap_or_default();
        let dir = xtask::paths::work_dir(&self.spec).join("security");
        let stem = xtask::docs::node_stem(&self.spec, node);
        let (report_path, scanners_path) = security::report_paths(&dir, &stem);
        let write = |path: &std::path::Path, text: String| {
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(path, text)).map_err(bug)
        };
        match check {
            SecurityCheck::PendingUpdates(limits) => {
                let report = collect::security(&self.engine, &node.name, &image_id, &limits.archive).await?;
                write(&report_path, serde_json::to_string_pretty(&report).map_err(bug)? + "\n")?;
                if let Some(reason) = &report.skipped {
                    return Err(Error::Unsupported(format!("{}: the security check cannot run: {reason}", node.name)));
                }
                report
                    .verdict(&xtask::spec::Security { max_vulnerabilities: None, ..limits.clone() })
                    .map_err(Error::Failed)
            }
            SecurityCheck::Scanner(limits) => {
                let scanners = collect::scanners(&reference).await;
                write(&scanners_path, serde_json::to_string_pretty(&(&image_id, &scanners)).map_err(bug)? + "\n")?;
                if scanners.iter().all(|s| s.skipped.is_some()) {
                    let reasons: Vec<String> = scanners.iter().filter_map(|s| s.skipped.clone()).collect();
                    return Err(Error::Unsupported(reasons.join("; ")));
                }
                let report = security::Report {
                    schema: security::REPORT_SCHEMA.into(),
                    node: node.name.clone(),
                    image_id,
                    suite: None,
                    checked: String::new(),
                    skipped: None,
                    pending: vec![],
                    scanners,
                };
                report.verdict(limits).map_err(Error::Failed)
            }
        }
    }

    async fn container(&self, node: &NodeId) -> Result<Arc<TestContainer>> {
        let cell = self.containers.lock().expect("container map").entry(node.name.clone()).or_default().clone();
        cell.get_or_init(|| async {
            let request = ContainerRequest {
                image: self.image_of(node),
                entrypoint: Some(vec!["sh".into(), "-c".into(), IDLE.into()]),
                cmd: Some(vec![]),
                labels: self.labels(),
                gpus: Some(self.gpu),
                // No server runs here: a healthcheck would only spend CPU failing.
                no_healthcheck: true,
                ..Default::default()
            };
            let id = self.start(request).await?;
            Ok(Arc::new(TestContainer { id, agent: OnceCell::new(), root_agent: OnceCell::new() }))
        })
        .await
        .clone()
    }

    /// Runs one trial; the error says what was expected and what came out.
    pub async fn run(&self, trial: &TrialSpec) -> Result<()> {
        if trial.check.kind() == Kind::Gpu && self.gpu == GpuAccess::None {
            return Err(Error::Unsupported("this trial needs an NVIDIA GPU, and the engine offers none (no `nvidia` runtime, no NVIDIA CDI device): it cannot run here".into()));
        }
        let result = match &trial.check {
            Check::Metadata(check) => self.metadata(&trial.node, check).await,
            Check::Command(check) => self.command(&*self.container(&trial.node).await?, check).await,
            Check::File(check) => self.file(&*self.container(&trial.node).await?, check).await,
            Check::Script(check) => self.script(&*self.container(&trial.node).await?, check).await,
            Check::Service(check) => self.service(&trial.node, check).await,
            Check::Security(check) => self.security(&trial.node, check).await,
        };
        result.map_err(|error| match error {
            Error::Failed(problems) => Error::Failed(format!("{problems}\n  (from {})", trial.source.display())),
            other => other,
        })
    }

    /// Runs a command in the container: through an agent when one can serve the user, else
    /// through an engine exec.
    async fn exec(&self, container: &TestContainer, request: ExecRequest, timeout: Duration) -> Result<ExecOutput> {
        if self.use_agents && request.user.as_deref().is_none_or(|user| user == "0" || user == "root") {
            let cell = if request.user.is_none() { &container.agent } else { &container.root_agent };
            let agent = cell.get_or_init(|| Agent::start(&self.engine, &container.id, request.user.clone())).await;
            if let Some(agent) = agent {
                let script = agent::script(&request.cmd, &request.env, request.workdir.as_deref());
                if let Some(output) = agent.run(&script, timeout).await {
                    return Ok(output);
                }
            }
        }
        Ok(self.engine.exec(&container.id, request, timeout).await?)
    }

    async fn command(&self, container: &TestContainer, check: &CommandCheck) -> Result<()> {
        let timeout = check.timeout.map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
        let request = ExecRequest {
            cmd: check.run.argv(),
            env: check.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            user: check.user.clone(),
            workdir: check.workdir.clone(),
        };
        let output = self.exec(container, request, timeout).await?;
        let expected =
            Outcome { exit_code: check.exit_code, stdout: check.stdout.as_ref(), stderr: check.stderr.as_ref() };
        judge(&check.run, &expected, &output, timeout).map_err(Error::Failed)
    }

    async fn file(&self, container: &TestContainer, check: &FileCheck) -> Result<()> {
        let as_root = |cmd: Vec<String>| ExecRequest { cmd, user: Some("0".into()), ..Default::default() };
        let stat = vec!["stat".into(), "-c".into(), "%a|%u|%U|%g|%G|%F".into(), "--".into(), check.path.clone()];
        let output = self.exec(container, as_root(stat), DEFAULT_TIMEOUT).await?;
        let exists = output.exit_code == Some(0);
        let mut problems = Vec::new();
        if exists != check.exists {
            let detail = if exists { String::new() } else { format!(" (stat: {})", output.stderr.trim()) };
            problems.push(format!(
                "{} should {}exist, but {}{detail}",
                check.path,
                if check.exists { "" } else { "not " },
                if exists { "does" } else { "does not" }
            ));
        }
        if exists && check.exists {
            let fields: Vec<&str> = output.stdout.trim().split('|').collect();
            if let (Some(expected), Some(actual)) = (&check.mode, fields.first()) {
                let want = u32::from_str_radix(expected.trim_start_matches("0o"), 8);
                let have = u32::from_str_radix(actual, 8);
                if want.is_err() {
                    problems.push(format!("mode {expected:?} is not an octal mode such as \"0644\""));
                } else if want != have {
                    problems.push(format!("mode should be {expected}, but is {actual}"));
                }
            }
            for (expected, id, name, what) in [(&check.owner, 1, 2, "owner"), (&check.group, 3, 4, "group")] {
                if let Some(expected) = expected {
                    let (id, name) =
                        (fields.get(id).copied().unwrap_or_default(), fields.get(name).copied().unwrap_or_default());
                    if expected != id && expected != name {
                        problems.push(format!("{what} should be {expected}, but is {name} ({id})"));
                    }
                }
            }
            if let Some(contents) = &check.contents {
                let cat = self
                    .exec(container, as_root(vec!["cat".into(), "--".into(), check.path.clone()]), DEFAULT_TIMEOUT)
                    .await?;
                if cat.exit_code != Some(0) {
                    problems.push(format!("cannot read {}: {}", check.path, cat.stderr.trim()));
                } else {
                    problems.extend(check_text("contents", &cat.stdout, contents));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Failed(format!("file check on {} failed:\n  - {}", check.path, problems.join("\n  - "))))
        }
    }

    /// Starts the image's own command in a container of its own, waits until it is ready,
    /// checks its HTTP answers, and removes it, whatever happened.
    async fn service(&self, node: &NodeId, check: &ServiceCheck) -> Result<()> {
        let request = ContainerRequest {
            image: self.image_of(node),
            cmd: check.args.clone(),
            env: check.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            user: check.user.clone(),
            labels: self.labels(),
            gpus: Some(self.gpu),
            tmpfs: check.tmpfs.iter().map(|(path, options)| (path.clone(), options.clone())).collect(),
            ..Default::default()
        };
        let wait = WaitFor::new(&check.wait, check.port)?;
        let id = self.start(request).await?;
        let result = async {
            let address = wait.until_ready(&self.engine, &id).await?;
            let problems = service::check(&self.engine, &id, &address, check).await;
            if problems.is_empty() {
                Ok(())
            } else {
                Err(Error::Failed(format!("service check failed:\n  - {}", problems.join("\n  - "))))
            }
        }
        .await;
        let result = match result {
            Err(Error::Failed(problem)) => {
                let logs = self.engine.logs(&id).await.unwrap_or_default();
                Err(Error::Failed(format!("{problem}\n  container logs (last lines):\n{}", tail(&logs))))
            }
            other => other,
        };
        let _ = self.engine.remove_container(&id).await;
        result
    }

    /// Copies the script into its own folder of the container and runs it there.
    async fn script(&self, container: &TestContainer, check: &ScriptCheck) -> Result<()> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = check.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let contents = std::fs::read(&check.path).map_err(|e| Error::Test(format!("{}: {e}", check.path.display())))?;
        let folder = format!("tmp/xtask-tests/{}", NEXT.fetch_add(1, Ordering::SeqCst));
        let mut tar = tar::Builder::new(Vec::new());
        // /tmp too, with its usual mode: a minimal image may not have one.
        for dir in ["tmp".to_string(), "tmp/xtask-tests".to_string(), folder.clone()] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o1777);
            header.set_size(0);
            tar.append_data(&mut header, format!("{dir}/"), std::io::empty()).map_err(bug)?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_size(contents.len() as u64);
        tar.append_data(&mut header, format!("{folder}/{name}"), contents.as_slice()).map_err(bug)?;
        let tar = tar.into_inner().map_err(bug)?;
        self.engine.upload(&container.id, "/", tar).await?;
        let workdir = format!("/{folder}");
        let mut cmd = check.interpreter.clone();
        cmd.push(name.clone());
        let timeout = Duration::from_secs(SCRIPT_TIMEOUT);
        let output = self
            .exec(container, ExecRequest { cmd: cmd.clone(), workdir: Some(workdir), ..Default::default() }, timeout)
            .await?;
        if output.exit_code == Some(0) {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "script {name} (`{}`) {}:\n  stdout:\n{}\n  stderr:\n{}",
            cmd.join(" "),
            output
                .exit_code
                .map_or(format!("did not finish within {} s", timeout.as_secs()), |code| format!("exited with {code}")),
            tail(&output.stdout),
            tail(&output.stderr),
        )))
    }

    async fn metadata(&self, node: &NodeId, check: &MetadataCheck) -> Result<()> {
        let image = self.image_of(node);
        let inspected =
            self.engine.image(&image).await?.ok_or_else(|| Error::Images(format!("{image} is not on the engine")))?;
        let config = inspected.config.unwrap_or_default();
        let mut problems: Vec<String> = Vec::new();
        let differs = |what: &str, expected: String, actual: String| {
            (expected != actual).then(|| format!("{what} should be {expected:?}, but is {actual:?}"))
        };
        if let Some(user) = &check.user {
            problems.extend(differs("user", user.clone(), config.user.clone().unwrap_or_default()));
        }
        if let Some(workdir) = &check.workdir {
            problems.extend(differs("workdir", workdir.clone(), config.working_dir.clone().unwrap_or_default()));
        }
        let env: HashMap<String, String> = config
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (name, value) in &check.env {
            problems.extend(differs(&format!("env {name}"), value.clone(), env.get(name).cloned().unwrap_or_default()));
        }
        for (name, part) in &check.env_contains {
            let value = env.get(name).cloned().unwrap_or_default();
            if !value.contains(part.as_str()) {
                problems.push(format!("env {name} should contain {part:?}, but is {value:?}"));
            }
        }
        let labels = config.labels.clone().unwrap_or_default();
        for (name, expected) in &check.labels {
            match labels.get(name) {
                Some(value) => problems.extend(check_text(&format!("label {name}"), value, &expected.as_text_check())),
                None => problems.push(format!("label {name} should be set, but the image has no such label")),
            }
        }
        let exposed = config.exposed_ports.clone().unwrap_or_default();
        for port in &check.exposed_ports {
            if !exposed.contains(port) {
                problems.push(format!("port {port} should be exposed; exposed: {exposed:?}"));
            }
        }
        if let Some(entrypoint) = &check.entrypoint {
            problems.extend(differs(
                "entrypoint",
                format!("{entrypoint:?}"),
                format!("{:?}", config.entrypoint.clone().unwrap_or_default()),
            ));
        }
        if let Some(cmd) = &check.cmd {
            problems.extend(differs(
                "cmd",
                format!("{cmd:?}"),
                format!("{:?}", config.cmd.clone().unwrap_or_default()),
            ));
        }
        if let Some(wanted) = check.healthcheck {
            let test = config.healthcheck.as_ref().and_then(|h| h.test.clone()).unwrap_or_default();
            let has = !test.is_empty() && test.first().map(String::as_str) != Some("NONE");
            if has != wanted {
                problems.push(format!(
                    "the image should {}declare a HEALTHCHECK, but {}",
                    if wanted { "" } else { "not " },
                    if has { format!("has {test:?}") } else { "has none".into() }
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Failed(format!("metadata of {image} failed its check:\n  - {}", problems.join("\n  - "))))
        }
    }

    /// The containers started so far.
    pub fn started(&self) -> Vec<String> {
        let containers = self.containers.lock().expect("container map");
        containers
            .values()
            .filter_map(|cell| cell.get().and_then(|started| started.as_ref().ok()).map(|c| c.id.clone()))
            .collect()
    }

    /// The labels of this runner's containers: the process (what a later run's sweep reads, as
    /// every version of the harness has) and the runner (what this runner's cleanup reads).
    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (CONTAINER_LABEL.to_string(), std::process::id().to_string()),
            (RUNNER_LABEL.to_string(), self.owner.clone()),
        ])
    }

    /// Starts a container, counted while its creation is in flight, so that a cleanup waits
    /// for it instead of missing a container the engine is still making.
    async fn start(&self, request: ContainerRequest) -> Result<String> {
        self.starting.fetch_add(1, Ordering::SeqCst);
        let started = self.engine.start_container(request).await;
        self.starting.fetch_sub(1, Ordering::SeqCst);
        Ok(started?)
    }

    /// Removes every container this run started: those it knows, then (once no creation is in
    /// flight, for up to 30 s) every container that carries this process's label, which
    /// catches one that an interrupt caught between its creation and its registration.
    pub async fn cleanup(&self) {
        let _cleaning = self.cleaning.lock().await;
        let cells: Vec<_> = self.containers.lock().expect("container map").drain().map(|(_, cell)| cell).collect();
        for cell in cells {
            if let Some(Ok(container)) = cell.get() {
                let _ = self.engine.remove_container(&container.id).await;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.starting.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for id in self.engine.containers_labelled(RUNNER_LABEL).await.unwrap_or_default() {
            if self.engine.container_label(&id, RUNNER_LABEL).await.ok().flatten().as_deref()
                == Some(self.owner.as_str())
            {
                let _ = self.engine.remove_container(&id).await;
            }
        }
    }
}
