//! Service checks, in two parts as testcontainers' `WaitFor` separates them: a [`WaitFor`]
//! strategy (HTTP answers, a log line, a healthy healthcheck, or all three, within a deadline)
//! that says when the service is ready, and the checks made once it is (HTTP status, headers,
//! body and JSON fields; commands run inside the container; the service's output).

use std::time::Duration;

use xtask::engine::{ContainerState, Engine, ExecRequest};

use crate::error::{Error, Result};
use crate::format::{check_text, HttpCheck, Probe, ServiceCheck, TextCheck, Wait};
use crate::run::{judge, Outcome, DEFAULT_TIMEOUT};

/// How often readiness is asked while waiting.
const POLL: Duration = Duration::from_millis(250);

/// When a service counts as ready: every condition given holds at once.
pub struct WaitFor {
    http: Option<String>,
    log: Option<regex::Regex>,
    log_pattern: Option<String>,
    healthy: bool,
    port: u16,
    timeout: Duration,
}

impl WaitFor {
    /// The strategy a check's `wait:` describes; with none given, HTTP at `/`.
    pub fn new(wait: &Wait, port: u16) -> Result<WaitFor> {
        let log = match &wait.log {
            Some(pattern) => {
                Some(regex::Regex::new(pattern).map_err(|e| Error::Test(format!("wait.log /{pattern}/: {e}")))?)
            }
            None => None,
        };
        let http = wait.http.clone().or_else(|| (log.is_none() && !wait.healthy).then(|| "/".to_string()));
        Ok(WaitFor {
            http,
            log,
            log_pattern: wait.log.clone(),
            healthy: wait.healthy,
            port,
            timeout: Duration::from_secs(wait.timeout.unwrap_or(60)),
        })
    }

    /// Polls container `id` until it is ready; returns its address. Fails when it stops first
    /// or time runs out, saying what it waited for.
    pub async fn until_ready(&self, engine: &Engine, id: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let state = engine.container_state(id).await?;
            if !state.running {
                return Err(Error::Failed(format!(
                    "the service stopped before it was ready (exit code {})",
                    state.exit_code.unwrap_or(-1)
                )));
            }
            if let Some(address) = &state.address {
                if self.holds(engine, id, &state, address).await {
                    return Ok(address.clone());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Failed(format!(
                    "the service was not ready within {} s: waited for {}",
                    self.timeout.as_secs(),
                    self.describe(&state)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn holds(&self, engine: &Engine, id: &str, state: &ContainerState, address: &str) -> bool {
        if let Some(pattern) = &self.log {
            if !pattern.is_match(&engine.logs(id).await.unwrap_or_default()) {
                return false;
            }
        }
        if self.healthy && state.health.as_deref() != Some("healthy") {
            return false;
        }
        match &self.http {
            Some(path) => http_get(address, self.port, path).await.is_ok_and(|answer| answer.status < 500),
            None => true,
        }
    }

    fn describe(&self, state: &ContainerState) -> String {
        let mut what = Vec::new();
        if let Some(path) = &self.http {
            what.push(format!("HTTP on port {} at {path}", self.port));
        }
        if let Some(pattern) = &self.log_pattern {
            what.push(format!("a log line matching /{pattern}/"));
        }
        if self.healthy {
            what.push(format!("a healthy healthcheck (last: {})", state.health.as_deref().unwrap_or("none")));
        }
        what.join(" and ")
    }
}

/// Every check of a ready service at `address`; an empty list when all hold.
pub async fn check(engine: &Engine, id: &str, address: &str, check: &ServiceCheck) -> Vec<String> {
    let mut problems = Vec::new();
    for http in &check.http {
        problems.extend(http_expectations(address, check.port, http).await);
    }
    for (name, probe) in &check.exec {
        problems.extend(exec_probe(engine, id, name, probe).await);
    }
    if let Some(expected) = &check.logs {
        problems.extend(check_text("the service's output", &engine.logs(id).await.unwrap_or_default(), expected));
    }
    problems
}

/// One request and what its answer must hold.
async fn http_expectations(address: &str, port: u16, http: &HttpCheck) -> Vec<String> {
    let answer = match http_get(address, port, &http.path).await {
        Ok(answer) => answer,
        Err(error) => return vec![format!("GET {}: {error}", http.path)],
    };
    let mut problems = Vec::new();
    if answer.status != http.status {
        problems.push(format!("GET {} should answer {}, but answered {}", http.path, http.status, answer.status));
    }
    for (name, expected) in &http.headers {
        let value =
            answer.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("");
        problems.extend(check_text(&format!("GET {} header {name}", http.path), value, expected));
    }
    if let Some(expected) = &http.body {
        problems.extend(check_text(&format!("GET {} body", http.path), &answer.body, expected));
    }
    if !http.json.is_empty() {
        problems.extend(json_expectations(&http.path, &answer.body, &http.json));
    }
    problems
}

/// Fields of a JSON body and what their values must hold (strings as they are, other values
/// as JSON text).
fn json_expectations(path: &str, body: &str, fields: &indexmap::IndexMap<String, TextCheck>) -> Vec<String> {
    let json = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => json,
        Err(error) => return vec![format!("GET {path}: the body is not JSON ({error})")],
    };
    let mut problems = Vec::new();
    for (field, expected) in fields {
        let value = match json.get(field) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        problems.extend(check_text(&format!("GET {path} JSON field {field}"), &value, expected));
    }
    problems
}

/// A command run inside the service's container, judged like a command check.
async fn exec_probe(engine: &Engine, id: &str, name: &str, probe: &Probe) -> Vec<String> {
    let timeout = probe.timeout.map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
    let request = ExecRequest {
        cmd: probe.run.argv(),
        env: probe.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        user: probe.user.clone(),
        workdir: None,
    };
    let expected = Outcome { exit_code: probe.exit_code, stdout: probe.stdout.as_ref(), stderr: probe.stderr.as_ref() };
    match engine.exec(id, request, timeout).await {
        Ok(output) => judge(&probe.run, &expected, &output, timeout).err().map(|p| format!("exec {name}: {p}")),
        Err(error) => Some(format!("exec {name}: {error}")),
    }
    .into_iter()
    .collect()
}

/// An HTTP answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `GET http://<address>:<port><path>`, on a blocking thread, with a 5-second timeout.
pub async fn http_get(address: &str, port: u16, path: &str) -> std::result::Result<Answer, String> {
    let url = format!("http://{address}:{port}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok(Answer { status, headers, body })
    })
    .await
    .map_err(|e| e.to_string())?
}
