//! The declarative test format: one YAML file per suite, `images/<image>/tests/<suite>.yml` for
//! an image (inherited by the images built on it) or `images/tests/<suite>.yml` for every
//! image. Documented with examples in `docs/testing.md`. Pure: parses text.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

/// A suite of checks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a test suite: a mapping with `commands`, `files`, `services`, `metadata` (docs/testing.md)")]
pub struct TestFile {
    /// Images built on this one run these checks too (docker-stacks' rule). Default: true.
    #[serde(default = "yes")]
    pub inherit: bool,
    /// Images (of those this file applies to) that skip it.
    #[serde(default)]
    pub except: Vec<String>,
    #[serde(default)]
    pub commands: IndexMap<String, CommandCheck>,
    #[serde(default)]
    pub files: IndexMap<String, FileCheck>,
    /// Checks on the image's configuration; one trial named `metadata`.
    #[serde(default)]
    pub metadata: Option<MetadataCheck>,
    /// The image's own command started in a container of its own, then spoken to over HTTP.
    #[serde(default)]
    pub services: IndexMap<String, ServiceCheck>,
    /// Ignored: a place for YAML anchors (`&name`) that checks share (`*name`).
    #[serde(default)]
    pub anchors: Option<serde_yaml::Value>,
}

fn yes() -> bool {
    true
}

/// What a check needs from the host it runs on.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[serde(expecting = "a kind: acceptance, workflow, integration or gpu")]
pub enum Kind {
    /// Runs anywhere.
    #[default]
    Acceptance,
    /// End-to-end work inside the image.
    Workflow,
    /// Needs a service running.
    Integration,
    /// Needs an NVIDIA GPU: ignored, with the reason, where the engine has none.
    Gpu,
    /// The supply chain's security check (pending security updates, a scanner), when the spec
    /// sets `security:`; never written in a suite.
    Security,
}

impl Kind {
    /// The tag shown next to a trial's name (`[gpu]`), empty for plain acceptance checks.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Acceptance => "",
            Kind::Workflow => "workflow",
            Kind::Integration => "integration",
            Kind::Gpu => "gpu",
            Kind::Security => "security",
        }
    }
}

/// A command: given as a string it runs through `sh -c`; as a list, as is.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
#[serde(expecting = "a command: a string (run by `sh -c`) or a list of arguments")]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

impl Command {
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
            Command::Argv(argv) => argv.clone(),
        }
    }

    pub fn display(&self) -> String {
        match self {
            Command::Shell(line) => line.clone(),
            Command::Argv(argv) => argv.join(" "),
        }
    }
}

/// Expectations on a text: every one given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "expectations: a mapping with `equals`, `contains`, `matches` or `not_contains`")]
pub struct TextCheck {
    pub equals: Option<String>,
    pub contains: Option<String>,
    /// A regular expression that must match somewhere in the text.
    pub matches: Option<String>,
    pub not_contains: Option<String>,
}

/// A value given exactly, or expectations on it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
#[serde(expecting = "a value, or expectations on it (`{contains: ...}`)")]
pub enum Expected {
    Exactly(String),
    Text(TextCheck),
}

impl Expected {
    /// The same expectation as a [`TextCheck`].
    pub fn as_text_check(&self) -> TextCheck {
        match self {
            Expected::Exactly(value) => TextCheck { equals: Some(value.clone()), ..Default::default() },
            Expected::Text(check) => check.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a command check: a mapping with `run` and optional expectations")]
pub struct CommandCheck {
    pub run: Command,
    #[serde(default)]
    pub kind: Kind,
    pub user: Option<String>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub workdir: Option<String>,
    /// Seconds. Default: 60.
    pub timeout: Option<u64>,
    /// Default: 0.
    #[serde(default)]
    pub exit_code: i64,
    pub stdout: Option<TextCheck>,
    pub stderr: Option<TextCheck>,
    /// Images built on this one do not run this check.
    #[serde(default = "yes")]
    pub inherit: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a file check: a mapping with `path` and optional expectations")]
pub struct FileCheck {
    pub path: String,
    #[serde(default)]
    pub kind: Kind,
    /// Default: true. `false` checks that the path is absent.
    #[serde(default = "yes")]
    pub exists: bool,
    /// Octal permission bits, such as `"0644"` or `"755"`.
    pub mode: Option<String>,
    /// A user name or a numeric ID.
    pub owner: Option<String>,
    pub group: Option<String>,
    pub contents: Option<TextCheck>,
    #[serde(default = "yes")]
    pub inherit: bool,
}

/// Expectations on the image's configuration (no container needed). Every key given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "metadata checks: a mapping with `user`, `workdir`, `env`, `labels`, ...")]
pub struct MetadataCheck {
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Variables that must have exactly these values.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Variables whose values must contain these texts (`PATH: /opt/venv/bin`).
    #[serde(default)]
    pub env_contains: IndexMap<String, String>,
    /// Labels: an exact value, or expectations on the value (`{matches: '^[0-9a-f]{40}$'}`).
    #[serde(default)]
    pub labels: IndexMap<String, Expected>,
    /// Ports that must be exposed, such as `8888/tcp`.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Whether the image declares a `HEALTHCHECK`.
    pub healthcheck: Option<bool>,
    #[serde(default = "yes")]
    pub inherit: bool,
}

/// Start the image as a service (its own entrypoint and command), wait until it is ready, then
/// check its HTTP answers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a service check: a mapping with `args`, `wait`, `http`, `exec`, ...")]
pub struct ServiceCheck {
    /// Default: `integration`.
    #[serde(default = "integration")]
    pub kind: Kind,
    /// Replaces the image's command (`CMD`); the entrypoint stays.
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub user: Option<String>,
    /// The port the service listens on inside the container. Default: 8888.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub wait: Wait,
    /// Requests made once the service is ready, in order.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// Empty in-memory folders mounted over the image's (an empty volume): path and mount
    /// options, such as `/home/jovyan: uid=1000,gid=100,mode=0755`.
    #[serde(default)]
    pub tmpfs: IndexMap<String, String>,
    /// Commands run inside the service's container once it is ready (after the requests).
    #[serde(default)]
    pub exec: IndexMap<String, Probe>,
    /// Checks on everything the service printed, once the requests are done.
    pub logs: Option<TextCheck>,
    #[serde(default = "yes")]
    pub inherit: bool,
}

fn integration() -> Kind {
    Kind::Integration
}

fn default_port() -> u16 {
    8888
}

/// A command run in a service's container, and what it must give.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "an exec probe: a mapping with `run` and optional expectations")]
pub struct Probe {
    pub run: Command,
    /// Default: the container's user.
    pub user: Option<String>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Seconds. Default: 60.
    pub timeout: Option<u64>,
    /// Default: 0.
    #[serde(default)]
    pub exit_code: i64,
    pub stdout: Option<TextCheck>,
    pub stderr: Option<TextCheck>,
}

/// What "ready" means; every condition given must hold. Default: the port answers HTTP.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a wait: a mapping with `http`, `log`, `healthy` or `timeout`")]
pub struct Wait {
    /// A path that must answer HTTP (any status below 500).
    pub http: Option<String>,
    /// A regular expression the container's output must match.
    pub log: Option<String>,
    /// The image's HEALTHCHECK must report `healthy`.
    #[serde(default)]
    pub healthy: bool,
    /// Seconds. Default: 60.
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "an HTTP check: a mapping with `path` and optional `status`, `headers`, `body`, `json`")]
pub struct HttpCheck {
    pub path: String,
    /// Default: 200.
    #[serde(default = "ok_status")]
    pub status: u16,
    /// Headers (names in any case) and what their values must hold.
    #[serde(default)]
    pub headers: IndexMap<String, TextCheck>,
    pub body: Option<TextCheck>,
    /// Top-level fields of a JSON body and what their values (as text) must hold.
    #[serde(default)]
    pub json: IndexMap<String, TextCheck>,
}

fn ok_status() -> u16 {
    200
}

/// A script test: a file copied into the container and run; exit 0 passes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCheck {
    /// The file on the host.
    pub path: std::path::PathBuf,
    pub kind: Kind,
    /// The program that runs it, before its path.
    pub interpreter: Vec<String>,
}

/// Seconds a script may run.
pub const SCRIPT_TIMEOUT: u64 = 600;

/// How a script file is run, by its extension; `None` for files that are not scripts.
pub fn interpreter(extension: &str) -> Option<Vec<String>> {
    let words: &[&str] = match extension {
        "sh" => &["sh"],
        "py" => &["python3"],
        "R" | "r" => &["Rscript"],
        // The executed copy goes next to it under another name: the original is read-only.
        "ipynb" => &[
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=600",
            "--output",
            "executed.ipynb",
            "--output-dir",
            ".",
        ],
        _ => return None,
    };
    Some(words.iter().map(|w| w.to_string()).collect())
}

/// The kind a script has from the folder it sits in under `tests/`.
pub fn kind_of_folder(name: &str) -> Option<Kind> {
    match name {
        "workflow" => Some(Kind::Workflow),
        "integration" => Some(Kind::Integration),
        "gpu" => Some(Kind::Gpu),
        _ => None,
    }
}

/// Parses a suite; errors carry the file, line and column.
pub fn parse(path: &Path, text: &str) -> Result<TestFile, String> {
    serde_yaml::from_str(text).map_err(|error| {
        let location = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        format!("{}{location}: {error}", path.display())
    })
}

/// Checks `text` against `check`; returns what did not hold (with the text itself when it is
/// short enough to read in a message).
pub fn check_text(what: &str, text: &str, check: &TextCheck) -> Vec<String> {
    let shown = text.trim_end_matches('\n');
    let actual = if shown.len() <= 120 { format!(", but is {shown:?}") } else { String::new() };
    let mut problems = Vec::new();
    if let Some(expected) = &check.equals {
        if text.trim_end_matches('\n') != expected.trim_end_matches('\n') {
            problems.push(format!("{what} should equal {expected:?}, but is {:?}", text.trim_end_matches('\n')));
        }
    }
    if let Some(expected) = &check.contains {
        if !text.contains(expected.as_str()) {
            problems.push(format!("{what} should contain {expected:?}{actual}"));
        }
    }
    if let Some(pattern) = &check.matches {
        match regex::Regex::new(pattern) {
            Ok(regex) if regex.is_match(text) => {}
            Ok(_) => problems.push(format!("{what} should match /{pattern}/{actual}")),
            Err(error) => problems.push(format!("/{pattern}/ is not a valid regular expression: {error}")),
        }
    }
    if let Some(unwanted) = &check.not_contains {
        if text.contains(unwanted.as_str()) {
            problems.push(format!("{what} should not contain {unwanted:?}{actual}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A value of the wrong shape is refused with what the format expects, never a Rust type.
    #[rstest]
    #[case::command("commands:\n  c:\n    run: {a: 1}\n", "a command: a string")]
    #[case::expectation("commands:\n  c:\n    run: x\n    stdout: [a]\n", "expectations: a mapping with `equals`")]
    #[case::label("metadata:\n  labels: {a: [x]}\n", "a value, or expectations on it")]
    #[case::check("commands:\n  c: 5\n", "a command check: a mapping")]
    #[case::suite("5\n", "a test suite: a mapping")]
    fn says_what_it_expects(#[case] text: &str, #[case] expected: &str) {
        let error = parse(Path::new("t.yml"), text).unwrap_err();
        assert!(error.contains(expected), "{error}");
        for word in ["untagged", "struct ", "enum ", "Command", "Expected", "CheckKind"] {
            assert!(!error.contains(word), "{error}");
        }
    }

    #[test]
    fn parses_a_suite() {
        let text = "commands:\n  python:\n    run: python --version\n    stdout: {contains: Python}\n  gpu:\n    run: [nvidia-smi]\n    kind: gpu\nfiles:\n  venv:\n    path: /opt/venv\n    owner: \"1000\"\n";
        let file = parse(Path::new("t.yml"), text).unwrap();
        assert!(file.inherit);
        assert_eq!(file.commands["python"].run.argv(), ["sh", "-c", "python --version"]);
        assert_eq!(file.commands["gpu"].kind, Kind::Gpu);
        assert_eq!(file.files["venv"].owner.as_deref(), Some("1000"));
    }

    #[test]
    fn parses_metadata() {
        let text = "metadata:\n  user: \"1000\"\n  env_contains: {PATH: /opt/venv/bin}\n  exposed_ports: [8888/tcp]\n  healthcheck: true\n";
        let metadata = parse(Path::new("m.yml"), text).unwrap().metadata.unwrap();
        assert_eq!(metadata.user.as_deref(), Some("1000"));
        assert_eq!(metadata.exposed_ports, ["8888/tcp"]);
        assert_eq!(metadata.healthcheck, Some(true));
    }

    #[test]
    fn unknown_keys_say_where() {
        let error = parse(Path::new("images/a/tests/t.yml"), "commands:\n  x:\n    runn: true\n").unwrap_err();
        assert!(error.starts_with("images/a/tests/t.yml:3:5: "), "{error}");
        assert!(error.contains("unknown field `runn`"), "{error}");
    }

    #[rstest]
    #[case(TextCheck { equals: Some("a".into()), ..Default::default() }, "a\n", 0)]
    #[case(TextCheck { equals: Some("a".into()), ..Default::default() }, "b", 1)]
    #[case(TextCheck { contains: Some("ell".into()), ..Default::default() }, "hello", 0)]
    #[case(TextCheck { contains: Some("x".into()), ..Default::default() }, "hello", 1)]
    #[case(TextCheck { matches: Some(r"^\d+\.\d+".into()), ..Default::default() }, "3.11", 0)]
    #[case(TextCheck { matches: Some(r"^\d+$".into()), ..Default::default() }, "3.11", 1)]
    #[case(TextCheck { not_contains: Some("error".into()), ..Default::default() }, "fine", 0)]
    #[case(TextCheck { not_contains: Some("error".into()), ..Default::default() }, "an error", 1)]
    fn text_checks_pass_and_fail(#[case] check: TextCheck, #[case] text: &str, #[case] problems: usize) {
        assert_eq!(check_text("stdout", text, &check).len(), problems);
    }
}
