//! The only module that talks to the Docker engine (through bollard, never the CLI).
//!
//! Everything else asks it through plain async functions, and gets back [`EngineError`]s that
//! say which operation failed on which image and how to fix it. `DOCKER_HOST` (unix, tcp, ssh)
//! is honoured; the API version is negotiated, and engines older than API 1.41 are refused.

use std::collections::HashMap;

use bollard::models::{BuildInfo, BuildInfoAux};
pub use bollard::models::{ImageInspect, ImageSummary};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;

use crate::credentials::Credentials;
use crate::platform::Platform;
use futures_util::StreamExt;

/// The oldest Engine API this tool speaks (Debian 12's Docker 20.10).
pub const MIN_API: (u32, u32) = (1, 41);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {host}: {reason}\n  hint: start it (`dockerd`, or `systemctl start docker`), or point DOCKER_HOST at one (unix://, tcp://, ssh://)")]
    Unreachable { host: String, reason: String },
    #[error("the Docker engine at {host} speaks API {api}; this tool needs {}.{} or newer\n  hint: upgrade the engine (Debian 12's docker.io is enough)", MIN_API.0, MIN_API.1)]
    TooOld { host: String, api: String },
    #[error("{operation} {target}: {cause}{}", hint_for(&cause.to_string()).map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Failed { operation: &'static str, target: String, cause: Cause },
}

/// Why an engine operation failed, kept as the engine said it.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The API call itself failed: an HTTP status from the engine, or the transport.
    #[error("{0}")]
    Api(Box<bollard::errors::Error>),
    /// The engine reported an error inside a progress stream (pull, push, build, import), in
    /// its own words (often the registry's answer).
    #[error("{0}")]
    Reported(String),
    /// The engine answered, but not as this tool expects.
    #[error("{0}")]
    Unexpected(String),
}

impl From<bollard::errors::Error> for Cause {
    fn from(error: bollard::errors::Error) -> Cause {
        Cause::Api(Box::new(error))
    }
}

impl EngineError {
    fn failed(operation: &'static str, target: &str, cause: impl Into<Cause>) -> EngineError {
        EngineError::Failed { operation, target: target.to_string(), cause: cause.into() }
    }

    pub(crate) fn reported(operation: &'static str, target: &str, message: impl Into<String>) -> EngineError {
        EngineError::failed(operation, target, Cause::Reported(message.into()))
    }

    fn unexpected(operation: &'static str, target: &str, message: impl Into<String>) -> EngineError {
        EngineError::failed(operation, target, Cause::Unexpected(message.into()))
    }

    /// A pin a release expected in the registry is not there, and no engine was asked to push it.
    pub(crate) fn unexpected_missing(repository: &str, pin: &str) -> EngineError {
        EngineError::unexpected("pushing", &format!("{repository}:{pin}"), "no engine was connected to push it")
    }

    /// Whether trying again later may succeed: the engine or the registry behind it was
    /// unreachable, overloaded or cut off; not a refusal, a missing image or a bad request.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Unreachable { .. } => true,
            EngineError::TooOld { .. } => false,
            EngineError::Failed { cause, .. } => cause.is_transient(),
        }
    }
}

impl Cause {
    pub fn is_transient(&self) -> bool {
        use bollard::errors::Error as E;
        match self {
            Cause::Api(error) => match error.as_ref() {
                E::DockerResponseServerError { status_code, message } => match status_code {
                    429 | 502 | 503 | 504 => true,
                    // The engine wraps a registry's failure in a 500: its words decide.
                    500 => transient_message(message),
                    _ => false,
                },
                E::HyperResponseError { .. } | E::IOError { .. } | E::RequestTimeoutError => true,
                _ => false,
            },
            Cause::Reported(message) => transient_message(message),
            Cause::Unexpected(_) => false,
        }
    }
}

/// Whether an error message from the engine (often relaying a registry) describes a failure
/// that may pass on a later try. Matches whole phrases and HTTP status codes that follow the
/// word "status" or precede their reason phrase, never bare numbers (a digest may hold `500`).
pub fn transient_message(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    let refused = ["unauthorized", "denied", "forbidden", "manifest unknown", "not found", "invalid"];
    if refused.iter().any(|word| text.contains(word)) {
        return false;
    }
    let phrases = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "i/o timeout",
        "tls handshake timeout",
        "context deadline exceeded",
        "client.timeout exceeded",
        "unexpected eof",
        "too many requests",
        "toomanyrequests",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "internal server error",
    ];
    if phrases.iter().any(|phrase| text.contains(phrase)) {
        return true;
    }
    if text.trim_end().ends_with(": eof") || text.trim() == "eof" {
        return true;
    }
    // `status: 503`, `status code 502`, `HTTP status 429`.
    let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    words.iter().enumerate().any(|(i, word)| {
        *word == "status"
            && words[i + 1..]
                .iter()
                .take(2)
                .find(|w| w.chars().all(|c| c.is_ascii_digit()))
                .is_some_and(|code| matches!(*code, "429" | "500" | "502" | "503" | "504"))
    })
}

/// A fix for the engine errors people meet most.
fn hint_for(message: &str) -> Option<&'static str> {
    if message.contains("no space left on device") {
        Some("the engine's disk is full: free space with `docker system prune` (or `docker builder prune`) and retry")
    } else if message.contains("permission denied") && message.contains("docker.sock") {
        Some("add your user to the `docker` group, or run as root")
    } else {
        None
    }
}

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step started: `[2/5] RUN apt-get update`.
    Step(String),
    /// A line of output.
    Output(String),
}

/// One build, ready to send.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The context, as a tar archive.
    pub context: Vec<u8>,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub no_cache: bool,
    pub cache_from: Vec<String>,
    /// What the messages call this build (`base-notebook@gpu`).
    pub name: String,
    /// The platform to build for (`linux/arm64`); the engine's own when `None`.
    pub platform: Option<Platform>,
}

/// A container to create.
#[derive(Debug, Clone, Default)]
pub struct ContainerRequest {
    pub image: String,
    /// Replaces the image's entrypoint when given.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
    /// GPUs to request, and how.
    pub gpus: Option<GpuAccess>,
    /// Empty in-memory file systems: mount point and options (`uid=1000,mode=0755`).
    pub tmpfs: HashMap<String, String>,
    /// Turn the image's HEALTHCHECK off (for containers that do not run the image's command).
    pub no_healthcheck: bool,
}

/// A command to run in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
}

/// What an exec printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// `None` when the command ran past its timeout.
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// How containers get a GPU on this engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuAccess {
    None,
    /// The `nvidia` runtime: a device request with the `nvidia` driver (`--gpus all`).
    NvidiaRuntime,
    /// CDI: the device `nvidia.com/gpu=all`.
    Cdi,
}

/// What [`Engine::container_state`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub health: Option<String>,
    pub address: Option<String>,
}

/// A long-running process in a container with its standard input and output attached: the
/// harness runs many small commands through one instead of one exec each.
pub struct Session {
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
    >,
    buffer: Vec<u8>,
}

impl Session {
    /// Writes `bytes` to the process's standard input.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.input.write_all(bytes).await?;
        self.input.flush().await
    }

    /// Reads from standard output (and error) until `n` bytes are buffered; `None` at the end.
    async fn fill(&mut self, n: usize) -> Option<()> {
        while self.buffer.len() < n {
            let chunk = self.output.next().await?.ok()?;
            self.buffer.extend_from_slice(&chunk.into_bytes());
        }
        Some(())
    }

    /// The next line, without its newline; `None` when the process ended.
    pub async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=at).collect();
                return Some(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            let wanted = self.buffer.len() + 1;
            self.fill(wanted).await?;
        }
    }

    /// Exactly `n` bytes; `None` when the process ended first.
    pub async fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        self.fill(n).await?;
        Some(self.buffer.drain(..n).collect())
    }
}

/// The label on the short-lived containers [`Engine::run_in_image`] starts (value: the process
/// ID), so an interrupted run can remove them.
pub const PROBE_LABEL: &str = "xtask.stack.probe";

/// One layer of an image: the step that made it and its size (newest first as the engine
/// reports them; documentation snapshots keep them oldest first).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub created_by: String,
    pub size: i64,
}

/// The value of label `key` on `image`.
pub fn label<'a>(image: &'a ImageInspect, key: &str) -> Option<&'a str> {
    image.config.as_ref()?.labels.as_ref()?.get(key).map(String::as_str)
}

/// A digest the registry knows an image by, as the engine recorded it after a push or pull.
pub fn repo_digest(image: &ImageInspect, repository: &str) -> Option<String> {
    image.repo_digests.as_ref()?.iter().find_map(|entry| {
        let (name, digest) = entry.split_once('@')?;
        (name == repository).then(|| digest.to_string())
    })
}

/// A connection to the engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    pub host: String,
    pub api_version: String,
    pub server_version: String,
    /// The platform the engine runs natively (what it reports itself as).
    pub platform: Platform,
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

impl Engine {
    /// Connects to the engine `DOCKER_HOST` names (the local socket by default).
    pub async fn connect() -> Result<Engine, EngineError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        Engine::connect_to(&host).await
    }

    /// Connects to the engine at `host` (`unix://`, `tcp://`, `ssh://`).
    pub async fn connect_to(host: &str) -> Result<Engine, EngineError> {
        let host = host.to_string();
        let unreachable = |reason: String| EngineError::Unreachable { host: host.clone(), reason };
        let docker = Docker::connect_with_host(&host).map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(std::time::Duration::from_secs(30), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 30 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let version = docker.version().await.map_err(|e| unreachable(e.to_string()))?;
        let api_version = version.api_version.unwrap_or_default();
        let parsed: Vec<u32> = api_version.split('.').filter_map(|part| part.parse().ok()).collect();
        if parsed.len() < 2 || (parsed[0], parsed[1]) < MIN_API {
            return Err(EngineError::TooOld { host, api: api_version });
        }
        let platform = version.arch.as_deref().and_then(Platform::from_machine).unwrap_or_else(Platform::host);
        Ok(Engine { docker, host, api_version, server_version: version.version.unwrap_or_default(), platform })
    }

    /// Whether the engine runs on this machine (a unix socket): its binfmt handlers are this
    /// host's.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://")
    }

    /// How the engine can give containers an NVIDIA GPU, if it can: an `nvidia` runtime, or CDI
    /// device injection with an NVIDIA specification (looked for in the usual folders).
    pub async fn gpu_access(&self) -> Result<GpuAccess, EngineError> {
        let info =
            self.docker.info().await.map_err(|e| EngineError::failed("asking", "the engine for its runtimes", e))?;
        if info.runtimes.is_some_and(|runtimes| runtimes.contains_key("nvidia")) {
            return Ok(GpuAccess::NvidiaRuntime);
        }
        let nvidia_spec = |dir: &String| {
            std::fs::read_dir(dir)
                .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("nvidia")))
        };
        if info.cdi_spec_dirs.is_some_and(|dirs| dirs.iter().any(nvidia_spec)) {
            return Ok(GpuAccess::Cdi);
        }
        Ok(GpuAccess::None)
    }

    /// The image `reference` (a name, a tag or an ID), if the engine has it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInspect>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(image)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(EngineError::failed("inspecting image", reference, error)),
        }
    }

    /// Images whose name matches `pattern` (`registry.example.org/team/*`), with their tags.
    pub async fn images_named(&self, pattern: &str) -> Result<Vec<ImageSummary>, EngineError> {
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("reference".to_string(), vec![pattern.to_string()])]);
        let options = ListImagesOptionsBuilder::default().filters(&filters).build();
        self.docker
            .list_images(Some(options))
            .await
            .map_err(|e| EngineError::failed("listing images named", pattern, e))
    }

    /// Every tag of every image on the engine, sorted.
    pub async fn tags(&self) -> Result<Vec<String>, EngineError> {
        let images = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(|e| EngineError::failed("listing", "images", e))?;
        let mut tags: Vec<String> = images.into_iter().flat_map(|image| image.repo_tags).collect();
        tags.retain(|tag| tag != "<none>:<none>");
        tags.sort();
        Ok(tags)
    }

    /// The IDs of every container on the engine, running or not.
    pub async fn containers(&self) -> Result<Vec<String>, EngineError> {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::failed("listing", "containers", e))?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }

    /// Creates and starts a container; returns its ID. A container that fails to start is
    /// removed again.
    pub async fn start_container(&self, request: ContainerRequest) -> Result<String, EngineError> {
        let body = bollard::models::ContainerCreateBody {
            image: Some(request.image.clone()),
            entrypoint: request.entrypoint,
            cmd: request.cmd,
            env: Some(request.env),
            user: request.user,
            labels: Some(request.labels),
            healthcheck: request
                .no_healthcheck
                .then(|| bollard::models::HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() }),
            host_config: Some(bollard::models::HostConfig {
                device_requests: request.gpus.and_then(device_request).map(|device| vec![device]),
                tmpfs: (!request.tmpfs.is_empty()).then_some(request.tmpfs),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| EngineError::failed("creating a container of", &request.image, e))?;
        if let Err(error) = self.docker.start_container(&created.id, None).await {
            let _ = self.remove_container(&created.id).await;
            return Err(EngineError::failed("starting a container of", &request.image, error));
        }
        Ok(created.id)
    }

    /// Runs a command in a running container, waiting at most `timeout` for it.
    pub async fn exec(
        &self,
        container: &str,
        request: ExecRequest,
        timeout: std::time::Duration,
    ) -> Result<ExecOutput, EngineError> {
        let what = request.cmd.join(" ");
        let failed = |e: bollard::errors::Error| EngineError::failed("running", &what, e);
        let config = bollard::models::ExecConfig {
            cmd: Some(request.cmd.clone()),
            env: Some(request.env.clone()),
            user: request.user.clone(),
            working_dir: request.workdir.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.docker.create_exec(container, config).await.map_err(failed)?;
        let mut output = ExecOutput::default();
        let run = async {
            if let bollard::exec::StartExecResults::Attached { output: mut stream, .. } =
                self.docker.start_exec(&exec.id, None).await.map_err(failed)?
            {
                while let Some(item) = stream.next().await {
                    match item.map_err(failed)? {
                        bollard::container::LogOutput::StdErr { message } => {
                            output.stderr.push_str(&String::from_utf8_lossy(&message))
                        }
                        other => output.stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
                    }
                }
            }
            Ok::<(), EngineError>(())
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result?,
            Err(_) => return Ok(ExecOutput { exit_code: None, ..output }),
        }
        let inspected = self.docker.inspect_exec(&exec.id).await.map_err(failed)?;
        output.exit_code = inspected.exit_code;
        Ok(output)
    }

    /// Unpacks a tar archive into folder `path` of a container.
    pub async fn upload(&self, container: &str, path: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default().path(path).build();
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| EngineError::failed("copying files into container", container, e))
    }

    /// Everything a container has printed so far (standard output and error, in order).
    pub async fn logs(&self, container: &str) -> Result<String, EngineError> {
        let options = bollard::query_parameters::LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        let mut stream = self.docker.logs(container, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| EngineError::failed("reading the logs of container", container, e))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text)
    }

    /// A container's state: whether it runs, its exit code, its health (`healthy`, ...) and its
    /// address on the engine's default network.
    pub async fn container_state(&self, container: &str) -> Result<ContainerState, EngineError> {
        let inspected = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(|e| EngineError::failed("inspecting container", container, e))?;
        let state = inspected.state.unwrap_or_default();
        let address = inspected
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|networks| networks.values().filter_map(|n| n.ip_address.clone()).find(|ip| !ip.is_empty()));
        Ok(ContainerState {
            running: state.running.unwrap_or_default(),
            exit_code: state.exit_code,
            health: state.health.and_then(|h| h.status).map(|status| status.to_string()),
            address,
        })
    }

    /// Starts `cmd` in a running container with its standard input and output attached.
    pub async fn session(
        &self,
        container: &str,
        cmd: Vec<String>,
        user: Option<String>,
    ) -> Result<Session, EngineError> {
        let what = cmd.join(" ");
        let failed = |e: bollard::errors::Error| EngineError::failed("starting a session", &what, e);
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.clone()),
            user,
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.docker.create_exec(container, config).await.map_err(failed)?;
        match self.docker.start_exec(&exec.id, None).await.map_err(failed)? {
            bollard::exec::StartExecResults::Attached { output, input } => {
                Ok(Session { input, output, buffer: Vec::new() })
            }
            bollard::exec::StartExecResults::Detached => {
                Err(EngineError::unexpected("starting a session", &what, "the engine did not attach"))
            }
        }
    }

    /// Removes a container (running or not) and its anonymous volumes; one that is gone is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(EngineError::failed("removing container", id, error)),
        }
    }

    /// The value of label `key` on container `id`.
    pub async fn container_label(&self, id: &str, key: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_container(id, None).await {
            Ok(container) => Ok(container.config.and_then(|c| c.labels).and_then(|labels| labels.get(key).cloned())),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(EngineError::failed("inspecting container", id, error)),
        }
    }

    /// The IDs of containers carrying label `key` (with any value).
    pub async fn containers_labelled(&self, key: &str) -> Result<Vec<String>, EngineError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([("label".to_string(), vec![key.to_string()])]);
        let options =
            bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::failed("listing containers labelled", key, e))?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }

    /// The layers of `image`, newest first (`docker history`).
    pub async fn history(&self, image: &str) -> Result<Vec<Layer>, EngineError> {
        let items = self
            .docker
            .image_history(image)
            .await
            .map_err(|e| EngineError::failed("reading the history of", image, e))?;
        Ok(items.into_iter().map(|item| Layer { created_by: item.created_by, size: item.size }).collect())
    }

    /// Runs each shell command line of `commands` (`sh -c`) in one container of `image`, at most
    /// `timeout` each, as the image's own user with its environment (what users of the image
    /// see), and returns their outputs in order. The container carries
    /// [`PROBE_LABEL`] and is removed afterwards, whatever happened.
    pub async fn run_in_image(
        &self,
        image: &str,
        commands: &[String],
        timeout: std::time::Duration,
    ) -> Result<Vec<ExecOutput>, EngineError> {
        self.run_in_image_as(image, None, commands, timeout).await
    }

    /// [`Engine::run_in_image`] as `user` (`"0"` for root: reading every file, running apt).
    pub async fn run_in_image_as(
        &self,
        image: &str,
        user: Option<&str>,
        commands: &[String],
        timeout: std::time::Duration,
    ) -> Result<Vec<ExecOutput>, EngineError> {
        let request = ContainerRequest {
            image: image.to_string(),
            entrypoint: Some(vec!["sh".into(), "-c".into(), "sleep 3600".into()]),
            cmd: Some(vec![]),
            user: user.map(str::to_string),
            labels: HashMap::from([(PROBE_LABEL.to_string(), std::process::id().to_string())]),
            ..Default::default()
        };
        let container = self.start_container(request).await?;
        let mut outputs = Vec::new();
        let mut result = Ok(());
        for command in commands {
            let exec = ExecRequest { cmd: vec!["sh".into(), "-c".into(), command.clone()], ..Default::default() };
            match self.exec(&container, exec, timeout).await {
                Ok(output) => outputs.push(output),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        self.remove_container(&container).await?;
        result.map(|()| outputs)
    }

    /// Removes the containers this process started with [`Engine::run_in_image`] (after an
    /// interrupt).
    pub async fn remove_probes(&self) -> Result<(), EngineError> {
        let mine = std::process::id().to_string();
        for id in self.containers_labelled(PROBE_LABEL).await? {
            if self.container_label(&id, PROBE_LABEL).await?.as_deref() == Some(mine.as_str()) {
                self.remove_container(&id).await?;
            }
        }
        Ok(())
    }

    /// Points `repository:tag` at image `id`.
    pub async fn tag(&self, id: &str, repository: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default().repo(repository).tag(tag).build();
        self.docker
            .tag_image(id, Some(options))
            .await
            .map_err(|e| EngineError::failed("tagging", &format!("{id} as {repository}:{tag}"), e))
    }

    /// Removes a tag or an image (`force`: even when several tags name it); an image that is
    /// gone already is fine.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<(), EngineError> {
        let options = RemoveImageOptionsBuilder::default().noprune(false).force(force).build();
        match self.docker.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(EngineError::failed("removing image", reference, error)),
        }
    }

    /// Pulls `reference` from its registry, for `platform` when given (else the engine's own).
    pub async fn pull(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        platform: Option<&Platform>,
    ) -> Result<(), EngineError> {
        let mut options = CreateImageOptionsBuilder::default().from_image(reference);
        if let Some(platform) = platform {
            options = options.platform(&platform.to_string());
        }
        let options = options.build();
        let stream = self.docker.create_image(Some(options), None, credentials.map(for_engine));
        drain(stream, "pulling", reference, |info| info.error_detail.and_then(|d| d.message)).await
    }

    /// Pushes `repository:tag` to its registry.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<&Credentials>,
    ) -> Result<(), EngineError> {
        let options = bollard::query_parameters::PushImageOptionsBuilder::default().tag(tag).build();
        let stream = self.docker.push_image(repository, Some(options), credentials.map(for_engine));
        let target = format!("{repository}:{tag}");
        drain(stream, "pushing", &target, |info| info.error_detail.and_then(|d| d.message)).await
    }

    /// Imports a root file system (a tar archive) as image `repository:tag` (`docker import`).
    pub async fn import(&self, root_fs: Vec<u8>, repository: &str, tag: &str) -> Result<String, EngineError> {
        let target = format!("{repository}:{tag}");
        let options = CreateImageOptionsBuilder::default().from_src("-").repo(repository).tag(tag).build();
        let stream = self.docker.create_image(Some(options), Some(bollard::body_full(root_fs.into())), None);
        drain(stream, "importing", &target, |info| info.error_detail.and_then(|d| d.message)).await?;
        let image = self
            .image(&target)
            .await?
            .ok_or_else(|| EngineError::unexpected("importing", &target, "the engine did not keep the image"))?;
        Ok(image.id.unwrap_or_default())
    }

    /// Loads an image archive (`docker load`: `manifest.json`, configuration, layers) and
    /// returns the ID of `reference`, one of the tags it carries.
    pub async fn load(&self, archive: Vec<u8>, reference: &str) -> Result<String, EngineError> {
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
        let stream = self.docker.import_image(options, bollard::body_full(archive.into()), None);
        drain(stream, "loading", reference, |info| info.error_detail.and_then(|d| d.message)).await?;
        let image = self
            .image(reference)
            .await?
            .ok_or_else(|| EngineError::unexpected("loading", reference, "the engine did not keep the image"))?;
        Ok(image.id.unwrap_or_default())
    }

    /// Builds with BuildKit and returns the new image's ID. Tags nothing: the caller tags once
    /// the build has succeeded, so a failed or interrupted build leaves no tag behind. Dropping
    /// the returned future cancels the build on the engine.
    pub async fn build(
        &self,
        request: BuildRequest,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<String, EngineError> {
        let session = format!("xtask-{}-{}", std::process::id(), request.name.replace(['@', '/'], "-"));
        let platform = request.platform.as_ref().map(ToString::to_string).unwrap_or_default();
        let options = BuildImageOptionsBuilder::default()
            .platform(&platform)
            .dockerfile(&request.dockerfile)
            .buildargs(&request.build_args)
            .labels(&request.labels)
            .nocache(request.no_cache)
            .cachefrom(&request.cache_from)
            .rm(true)
            .forcerm(true)
            .version(BuilderVersion::BuilderBuildKit)
            .session(&session)
            .build();
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_full(request.context.into())));
        let mut id = None;
        let mut steps: HashMap<String, String> = HashMap::new();
        let mut cached: std::collections::HashSet<String> = std::collections::HashSet::new();
        while let Some(item) = stream.next().await {
            let info: BuildInfo = item.map_err(|e| EngineError::failed("building", &request.name, e))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::reported("building", &request.name, message));
            }
            if let Some(line) = info.stream {
                for line in line.lines().filter(|l| !l.trim().is_empty()) {
                    on_event(BuildEvent::Output(line.to_string()));
                }
            }
            match info.aux {
                Some(BuildInfoAux::Default(image)) => id = image.id.or(id),
                Some(BuildInfoAux::BuildKit(status)) => {
                    for vertex in status.vertexes {
                        if vertex.started.is_some() && !steps.contains_key(&vertex.digest) {
                            steps.insert(vertex.digest.clone(), vertex.name.clone());
                            on_event(BuildEvent::Step(vertex.name.clone()));
                        }
                        if vertex.cached && vertex.completed.is_some() && cached.insert(vertex.digest.clone()) {
                            on_event(BuildEvent::Output(format!("CACHED {}", vertex.name)));
                        }
                        if !vertex.error.is_empty() {
                            on_event(BuildEvent::Output(format!("ERROR {}: {}", vertex.name, vertex.error)));
                        }
                    }
                    for log in status.logs {
                        for line in String::from_utf8_lossy(&log.msg).lines().filter(|l| !l.trim().is_empty()) {
                            on_event(BuildEvent::Output(line.to_string()));
                        }
                    }
                }
                None => {}
            }
        }
        id.ok_or_else(|| EngineError::unexpected("building", &request.name, "the engine reported no image ID"))
    }
}

/// Credentials in the form the engine API takes.
fn for_engine(credentials: &Credentials) -> bollard::auth::DockerCredentials {
    bollard::auth::DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.secret().to_string()),
        serveraddress: Some(credentials.registry.clone()),
        ..Default::default()
    }
}

/// Reads a progress stream (pull, push, import) to its end; the first error the engine reports
/// in it, or the stream's own, fails `operation` on `target`.
async fn drain<T>(
    mut stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>> + Unpin,
    operation: &'static str,
    target: &str,
    reported: impl Fn(T) -> Option<String>,
) -> Result<(), EngineError> {
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| EngineError::failed(operation, target, e))?;
        if let Some(message) = reported(info) {
            return Err(EngineError::reported(operation, target, message));
        }
    }
    Ok(())
}

/// How a container asks for every GPU, given how the engine offers them.
fn device_request(access: GpuAccess) -> Option<bollard::models::DeviceRequest> {
    match access {
        GpuAccess::NvidiaRuntime => Some(bollard::models::DeviceRequest {
            driver: Some("nvidia".into()),
            count: Some(-1),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }),
        GpuAccess::Cdi => Some(bollard::models::DeviceRequest {
            driver: Some("cdi".into()),
            device_ids: Some(vec!["nvidia.com/gpu=all".into()]),
            ..Default::default()
        }),
        GpuAccess::None => None,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::refused_connection(
        "Put \"http://127.0.0.1:5000/v2/a/blobs/uploads/\": dial tcp 127.0.0.1:5000: connect: connection refused",
        true
    )]
    #[case::reset("read tcp 127.0.0.1:41234->127.0.0.1:5000: read: connection reset by peer", true)]
    #[case::eof("Patch \"http://127.0.0.1:5000/v2/a/blobs/uploads/x\": EOF", true)]
    #[case::unexpected_eof("unexpected EOF", true)]
    #[case::status("received unexpected HTTP status: 503 Service Unavailable", true)]
    #[case::status_code_word("error parsing HTTP 429 response body: status code 429", true)]
    #[case::rate_limit("toomanyrequests: You have reached your pull rate limit", true)]
    #[case::timeout("net/http: TLS handshake timeout", true)]
    #[case::unauthorized("unauthorized: authentication required", false)]
    #[case::denied("denied: requested access to the resource is denied", false)]
    #[case::unknown_manifest("manifest unknown: manifest unknown", false)]
    #[case::digest_with_500("blob upload invalid: sha256:5005000a: digest mismatch", false)]
    #[case::digest_alone("layer sha256:9f500502d4 already exists", false)]
    #[case::status_200_with_500_later("status 200 but size 500", false)]
    fn tells_transient_failures_from_refusals(#[case] message: &str, #[case] transient: bool) {
        assert_eq!(transient_message(message), transient, "{message}");
        assert_eq!(EngineError::reported("pushing", "x", message).is_transient(), transient, "{message}");
    }

    #[test]
    fn api_errors_keep_their_status_and_decide_by_it() {
        let error = |status_code: u16, message: &str| {
            EngineError::failed(
                "pushing",
                "x",
                bollard::errors::Error::DockerResponseServerError { status_code, message: message.into() },
            )
        };
        assert!(error(503, "busy").is_transient());
        assert!(!error(404, "no such image").is_transient());
        assert!(!error(500, "unauthorized: authentication required").is_transient());
        assert!(error(500, "Get \"https://registry/v2/\": dial tcp: connection refused").is_transient());
        let EngineError::Failed { cause: Cause::Api(api), .. } = error(409, "conflict") else { panic!("kept") };
        assert!(matches!(*api, bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }));
    }
}
