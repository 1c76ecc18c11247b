//! Registry credentials, found where Docker users keep them: environment variables first
//! (`STACK_REGISTRY_USERNAME` / `STACK_REGISTRY_PASSWORD`, for CI), then the Docker config file
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a credential helper named for the
//! registry (`credHelpers`) or for all (`credsStore`), else `auths`. Secrets never reach a
//! message or a log: [`Credentials`] prints as the user name only.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use xshell::{cmd, Shell};

pub const USERNAME_VAR: &str = "STACK_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "STACK_REGISTRY_PASSWORD";

/// A user name and secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub registry: String,
    pub username: String,
    secret: String,
    /// Where they came from, for messages: `environment`, `config.json`, `helper pass`.
    pub origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}@{} from {}, secret hidden)", self.username, self.registry, self.origin)
    }
}

impl Credentials {
    pub fn new(registry: &str, username: &str, secret: &str, origin: &str) -> Credentials {
        Credentials {
            registry: registry.into(),
            username: username.into(),
            secret: secret.into(),
            origin: origin.into(),
        }
    }

    /// The secret, for the registry client's `Authorization` header and the engine's
    /// credentials only.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json")),
    }
}

/// Credentials for `registry` (a host, with its port), if any are configured.
pub fn lookup(registry: &str) -> Option<Credentials> {
    if let (Ok(username), Ok(secret)) = (std::env::var(USERNAME_VAR), std::env::var(PASSWORD_VAR)) {
        return Some(Credentials::new(registry, &username, &secret, "environment"));
    }
    let text = std::fs::read_to_string(config_path()?).ok()?;
    from_config(registry, &text, &|helper, registry| run_helper(helper, registry))
}

/// Runs a credential helper: `(helper name, registry)` to `(user name, secret)`.
pub type Helper<'a> = &'a dyn Fn(&str, &str) -> Option<(String, String)>;

/// Credentials for the registry an image reference lives in (Docker Hub for a bare name).
pub fn for_reference(reference: &str) -> Option<Credentials> {
    let parsed = crate::reference::parse(reference).ok()?;
    lookup(parsed.domain.as_deref().unwrap_or("docker.io"))
}

/// Credentials for `registry` from Docker config text; `helper(name, registry)` runs
/// `docker-credential-<name> get`.
pub fn from_config(registry: &str, text: &str, helper: Helper<'_>) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let named = config.get("credHelpers").and_then(|h| h.get(registry)).and_then(|v| v.as_str());
    let store = config.get("credsStore").and_then(|v| v.as_str());
    if let Some(name) = named.or(store) {
        if let Some((username, secret)) = helper(name, registry) {
            return Some(Credentials::new(registry, &username, &secret, &format!("helper {name}")));
        }
    }
    let auths = config.get("auths")?;
    let entry = auths.get(registry).or_else(|| auths.get(format!("https://{registry}")))?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, secret) = decoded.split_once(':')?;
    Some(Credentials::new(registry, username, secret, "config.json"))
}

fn run_helper(name: &str, registry: &str) -> Option<(String, String)> {
    let sh = Shell::new().ok()?;
    let program = format!("docker-credential-{name}");
    let output = cmd!(sh, "{program} get").stdin(registry).quiet().ignore_stderr().read().ok()?;
    let answer: serde_json::Value = serde_json::from_str(&output).ok()?;
    Some((answer.get("Username")?.as_str()?.to_string(), answer.get("Secret")?.as_str()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_helper(_: &str, _: &str) -> Option<(String, String)> {
        None
    }

    #[test]
    fn reads_auths_and_hides_the_secret() {
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret");
        let text = format!(r#"{{"auths": {{"localhost:5000": {{"auth": "{auth}"}}}}}}"#);
        let found = from_config("localhost:5000", &text, &no_helper).unwrap();
        assert_eq!((found.username.as_str(), found.secret()), ("ci", "s3cret"));
        assert!(!format!("{found:?}").contains("s3cret"));
        assert_eq!(from_config("other:5000", &text, &no_helper), None);
    }

    #[test]
    fn a_helper_wins_over_auths() {
        let text = r#"{"credHelpers": {"ghcr.io": "pass"}, "auths": {"ghcr.io": {"auth": "eDp5"}}}"#;
        let helper = |name: &str, registry: &str| {
            (name == "pass" && registry == "ghcr.io").then(|| ("bot".to_string(), "token".to_string()))
        };
        let found = from_config("ghcr.io", text, &helper).unwrap();
        assert_eq!((found.username.as_str(), found.origin.as_str()), ("bot", "helper pass"));
    }
}
