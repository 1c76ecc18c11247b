//! A shell loop inside a test container that runs checks' commands by fork, instead of one
//! engine exec each (an exec costs about 70 ms on a small machine; a fork, a millisecond).
//! Requests and answers are framed by byte counts, so any output passes through intact. An
//! image without the few tools the loop needs (`sh`, `head`, `wc`, `cat`, `mkdir`), or an agent
//! that stopped answering, simply means checks go through exec again.

use std::time::Duration;

use tokio::sync::Mutex;
use xtask::engine::{Engine, ExecOutput, Session};

/// The loop: read a byte count, that many bytes of script, run it, answer
/// `<exit code> <stdout bytes> <stderr bytes>` and both outputs.
const LOOP: &str = r#"D="/tmp/.xtask-agent-$$"; mkdir -p "$D" || exit 1; echo ready; while read -r n; do head -c "$n" > "$D/req"; sh "$D/req" > "$D/out" 2> "$D/err" < /dev/null; rc=$?; echo "$rc $(wc -c < "$D/out") $(wc -c < "$D/err")"; cat "$D/out" "$D/err"; done"#;

pub struct Agent {
    /// `None` once the agent is known to be unusable.
    session: Mutex<Option<Session>>,
}

/// `text` as one single-quoted shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script that runs `argv` with `env` in `workdir`, as exec would.
pub fn script(argv: &[String], env: &[String], workdir: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(dir) = workdir {
        out.push_str(&format!("cd {} || exit 126\n", quote(dir)));
    }
    out.push_str("exec ");
    if !env.is_empty() {
        out.push_str("env ");
        for entry in env {
            out.push_str(&quote(entry));
            out.push(' ');
        }
    }
    let words: Vec<String> = argv.iter().map(|word| quote(word)).collect();
    out.push_str(&words.join(" "));
    out.push('\n');
    out
}

impl Agent {
    /// Starts the loop as `user` (the image's default user when `None`); `None` if the image
    /// cannot run it.
    pub async fn start(engine: &Engine, container: &str, user: Option<String>) -> Option<Agent> {
        let cmd = vec!["sh".to_string(), "-c".to_string(), LOOP.to_string()];
        let mut session = engine.session(container, cmd, user).await.ok()?;
        let ready = tokio::time::timeout(Duration::from_secs(10), session.read_line()).await.ok()??;
        if ready != "ready" {
            return None;
        }
        let agent = Agent { session: Mutex::new(Some(session)) };
        // A first round trip proves the tools are there.
        let probe = agent.run("echo probe\n", Duration::from_secs(10)).await?;
        (probe.exit_code == Some(0) && probe.stdout == "probe\n").then_some(agent)
    }

    /// Runs `script`; `None` when the agent cannot (the caller then uses exec). A script that
    /// runs past `timeout` is reported as such, and the agent is not used again.
    pub async fn run(&self, script: &str, timeout: Duration) -> Option<ExecOutput> {
        let mut guard = self.session.lock().await;
        let session = guard.as_mut()?;
        let exchange = async {
            session.send(format!("{}\n", script.len()).as_bytes()).await.ok()?;
            session.send(script.as_bytes()).await.ok()?;
            let header = session.read_line().await?;
            let numbers: Vec<i64> = header.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            let [code, out, err] = numbers[..] else { return None };
            let stdout = session.read_exact(out as usize).await?;
            let stderr = session.read_exact(err as usize).await?;
            Some(ExecOutput {
                exit_code: Some(code),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Some(output)) => Some(output),
            Ok(None) => {
                *guard = None;
                None
            }
            Err(_) => {
                *guard = None;
                Some(ExecOutput { exit_code: None, ..Default::default() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_every_word() {
        let argv = vec!["sh".to_string(), "-c".to_string(), "echo 'it''s' $HOME".to_string()];
        let text = script(&argv, &["A=b c".to_string()], Some("/tmp/x y"));
        assert_eq!(
            text,
            "cd '/tmp/x y' || exit 126\nexec env 'A=b c' 'sh' '-c' 'echo '\\''it'\\'''\\''s'\\'' $HOME'\n"
        );
    }
}
