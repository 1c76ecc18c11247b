//! The registry's HTTP API (distribution v2), for what the engine cannot do: read a manifest by
//! tag or digest (and an image's configuration blob), and put a manifest under a tag: the same
//! one under another tag, or an image index over platform manifests. That is how `release`
//! moves tags only after everything they name is uploaded, and how promotion keeps the digest
//! identical.
//!
//! Blocking (ureq), so async callers run it on tokio's blocking pool. Handles Basic and Bearer
//! token authentication through `WWW-Authenticate` challenges, and retries transient failures
//! (connection errors, 429 and 5xx) with exponential backoff. Secrets never reach a message:
//! errors name the user and where the credentials came from, never the password or token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::credentials::Credentials;

/// The manifest formats `release` copies between tags, single-platform and multi-platform.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// How often a transient failure is tried again, and the first pause (doubled each time).
pub const RETRIES: u32 = 4;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry {registry}: {reason}\n  hint: check the address (`--registry` or `stack.registry`) and that the registry is up (transient failures were tried again)")]
    Unreachable { registry: String, reason: String },
    #[error("the registry {registry} refused {who}; nothing was pushed\n  hint: set STACK_REGISTRY_USERNAME and STACK_REGISTRY_PASSWORD, or `docker login {registry}` (credential helpers are used too)")]
    Unauthorized { registry: String, who: String },
    #[error("{operation} {target} on {registry}: HTTP {status}: {message}")]
    Failed { registry: String, operation: &'static str, target: String, status: u16, message: String },
}

/// A manifest exactly as the registry stored it: the bytes are what the digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// `sha256:...` of `bytes`.
    pub digest: String,
}

/// A client for one registry.
pub struct Registry {
    /// `host[:port]`, as image references name it.
    pub host: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    /// `Authorization` values by scope, once a challenge was answered.
    auth: Mutex<HashMap<String, String>>,
    /// How often a transient failure is tried again.
    retries: u32,
}

/// `http` for loopback registries (as the engine allows), `https` for the rest; an explicit
/// `http://` or `https://` wins. Returns `(host, base URL)`.
pub fn address(registry: &str) -> (String, String) {
    if let Some(host) = registry.strip_prefix("http://") {
        let host = host.trim_end_matches('/');
        return (host.to_string(), format!("http://{host}"));
    }
    if let Some(host) = registry.strip_prefix("https://") {
        let host = host.trim_end_matches('/');
        return (host.to_string(), format!("https://{host}"));
    }
    let host = registry.trim_end_matches('/');
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let loopback = name == "localhost" || name.starts_with("127.") || name == "[::1]";
    (host.to_string(), format!("{}://{host}", if loopback { "http" } else { "https" }))
}

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses `Bearer realm="https://auth",service="registry",scope="repository:a:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// One HTTP answer, read whole (manifests and tokens are small).
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

enum Method<'a> {
    Get,
    Head,
    Put { content_type: &'a str, body: &'a [u8] },
    Post,
    Delete,
}

impl Registry {
    pub fn new(registry: &str, credentials: Option<Credentials>) -> Registry {
        let (host, base) = address(registry);
        // The system's certificate authorities (as the engine trusts them), so a registry behind
        // a TLS-intercepting proxy whose CA the host trusts is reached as the engine reaches it.
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Registry { host, base, agent, credentials, auth: Mutex::new(HashMap::new()), retries: RETRIES }
    }

    /// The same client, trying transient failures again only `retries` times: for questions
    /// whose answer may be "no registry" (a build that can go on without one).
    pub fn with_retries(self, retries: u32) -> Registry {
        Registry { retries, ..self }
    }

    fn who(&self) -> String {
        match &self.credentials {
            Some(c) => format!("the credentials of `{}` (from {})", c.username, c.origin),
            None => "anonymous access (no credentials found for it)".into(),
        }
    }

    fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized { registry: self.host.clone(), who: self.who() }
    }

    /// One exchange, tried again on transient failures.
    fn exchange(
        &self,
        method: &Method<'_>,
        url: &str,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        let mut pause = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let result = self.once(method, url, accept, auth);
            let transient = match &result {
                Ok(answer) => matches!(answer.status, 429 | 500 | 502 | 503 | 504),
                Err(_) => true,
            };
            if !transient || attempt >= self.retries {
                return result.map_err(|reason| RegistryError::Unreachable { registry: self.host.clone(), reason });
            }
            attempt += 1;
            std::thread::sleep(pause);
            pause *= 2;
        }
    }

    fn once(&self, method: &Method<'_>, url: &str, accept: &str, auth: Option<&str>) -> Result<Answer, String> {
        let response = match method {
            Method::Get => {
                let mut request = self.agent.get(url).header("Accept", accept);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            Method::Head => {
                let mut request = self.agent.head(url).header("Accept", accept);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            Method::Post => {
                let mut request = self.agent.post(url);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.send_empty()
            }
            Method::Delete => {
                let mut request = self.agent.delete(url);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            Method::Put { content_type, body } => {
                let mut request = self.agent.put(url).header("Content-Type", *content_type);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.send(*body)
            }
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = if matches!(method, Method::Head | Method::Delete | Method::Post) {
            Vec::new()
        } else {
            response.body_mut().with_config().limit(64 << 20).read_to_vec().map_err(|e| e.to_string())?
        };
        Ok(Answer { status, headers, body })
    }

    /// An exchange under `scope`, answering an authentication challenge once.
    fn request(&self, method: Method<'_>, path: &str, scope: &str) -> Result<Answer, RegistryError> {
        let url = format!("{}{path}", self.base);
        let accept = MANIFEST_TYPES.join(", ");
        let cached = self.auth.lock().ok().and_then(|auth| auth.get(scope).cloned());
        let answer = self.exchange(&method, &url, &accept, cached.as_deref())?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let challenge = answer.headers.get("www-authenticate").and_then(|h| parse_challenge(h));
        let authorization = match challenge {
            Some(challenge) if challenge.scheme == "basic" => self.basic().ok_or_else(|| self.unauthorized())?,
            Some(challenge) if challenge.scheme == "bearer" => self.token(&challenge, scope)?,
            _ => return Err(self.unauthorized()),
        };
        let answer = self.exchange(&method, &url, &accept, Some(&authorization))?;
        if answer.status == 401 {
            return Err(self.unauthorized());
        }
        if let Ok(mut auth) = self.auth.lock() {
            auth.insert(scope.to_string(), authorization);
        }
        Ok(answer)
    }

    fn basic(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        let pair = format!("{}:{}", c.username, c.secret());
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
    }

    /// A Bearer token from the challenge's realm, for `scope`.
    fn token(&self, challenge: &Challenge, scope: &str) -> Result<String, RegistryError> {
        let realm = challenge.params.get("realm").ok_or_else(|| self.unauthorized())?;
        let mut url = format!("{realm}?");
        if let Some(service) = challenge.params.get("service") {
            url.push_str(&format!("service={}&", encode(service)));
        }
        if !scope.is_empty() {
            url.push_str(&format!("scope={}", encode(scope)));
        }
        let answer = self.exchange(&Method::Get, &url, "application/json", self.basic().as_deref())?;
        if answer.status == 401 || answer.status == 403 {
            return Err(self.unauthorized());
        }
        let json: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|_| self.unauthorized())?;
        let token = json.get("token").or_else(|| json.get("access_token")).and_then(|t| t.as_str());
        token.map(|t| format!("Bearer {t}")).ok_or_else(|| self.unauthorized())
    }

    fn failed(&self, operation: &'static str, target: &str, answer: &Answer) -> RegistryError {
        let message = String::from_utf8_lossy(&answer.body).chars().take(300).collect::<String>();
        RegistryError::Failed {
            registry: self.host.clone(),
            operation,
            target: target.to_string(),
            status: answer.status,
            message: message.trim().to_string(),
        }
    }

    /// Checks that the registry answers and accepts the credentials for pushing to
    /// `repository` (a path under the registry, `org/notebooks/base-notebook`).
    pub fn check_access(&self, repository: &str) -> Result<(), RegistryError> {
        let scope = format!("repository:{repository}:pull,push");
        let answer = self.request(Method::Get, "/v2/", &scope)?;
        match answer.status {
            200..=299 => Ok(()),
            401 | 403 => Err(self.unauthorized()),
            _ => Err(self.failed("checking access to", "/v2/", &answer)),
        }
    }

    /// The manifest `repository:reference` (a tag or a digest), if it exists.
    pub fn manifest(&self, repository: &str, reference: &str) -> Result<Option<Manifest>, RegistryError> {
        let scope = format!("repository:{repository}:pull,push");
        let path = format!("/v2/{repository}/manifests/{reference}");
        let answer = self.request(Method::Get, &path, &scope)?;
        match answer.status {
            200 => {
                let media_type =
                    answer.headers.get("content-type").cloned().unwrap_or_else(|| MANIFEST_TYPES[0].to_string());
                let digest = digest_of(&answer.body);
                Ok(Some(Manifest { media_type, bytes: answer.body, digest }))
            }
            404 => Ok(None),
            403 => Err(self.unauthorized()),
            _ => Err(self.failed("reading manifest", &format!("{repository}:{reference}"), &answer)),
        }
    }

    /// Whether the manifest `repository:reference` exists, asked with `HEAD` (no body comes
    /// back): how a build learns that an image is built without pulling anything. Returns the
    /// digest when the registry says it.
    pub fn manifest_exists(&self, repository: &str, reference: &str) -> Result<Option<String>, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("/v2/{repository}/manifests/{reference}");
        let answer = self.request(Method::Head, &path, &scope)?;
        match answer.status {
            200 => Ok(Some(answer.headers.get("docker-content-digest").cloned().unwrap_or_default())),
            404 => Ok(None),
            401 | 403 => Err(self.unauthorized()),
            _ => Err(self.failed("asking for manifest", &format!("{repository}:{reference}"), &answer)),
        }
    }

    /// Deletes manifest `digest` of `repository` (every tag naming it goes with it), for
    /// registries that allow deletes: benchmarks use it to make an image "not built yet".
    pub fn delete_manifest(&self, repository: &str, digest: &str) -> Result<(), RegistryError> {
        let scope = format!("repository:{repository}:delete");
        let path = format!("/v2/{repository}/manifests/{digest}");
        let answer = self.request(Method::Delete, &path, &scope)?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            401 | 403 => Err(self.unauthorized()),
            _ => Err(self.failed("deleting manifest", &format!("{repository}@{digest}"), &answer)),
        }
    }

    /// Whether blob `digest` of `repository` is stored.
    pub fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        let scope = format!("repository:{repository}:pull,push");
        let answer = self.request(Method::Head, &format!("/v2/{repository}/blobs/{digest}"), &scope)?;
        Ok(answer.status == 200)
    }

    /// Puts `manifest` under `repository:tag` (a tag, or its own digest to store it untagged);
    /// returns the digest the registry reports.
    pub fn put_manifest(&self, repository: &str, tag: &str, manifest: &Manifest) -> Result<String, RegistryError> {
        let scope = format!("repository:{repository}:pull,push");
        let path = format!("/v2/{repository}/manifests/{tag}");
        let method = Method::Put { content_type: &manifest.media_type, body: &manifest.bytes };
        let answer = self.request(method, &path, &scope)?;
        match answer.status {
            200..=299 => Ok(answer.headers.get("docker-content-digest").cloned().unwrap_or(manifest.digest.clone())),
            403 => Err(self.unauthorized()),
            _ => Err(self.failed("tagging", &format!("{repository}:{tag}"), &answer)),
        }
    }

    /// Uploads `bytes` as a blob of `repository` unless it is stored already (a monolithic
    /// upload: `POST` for a session, then one `PUT` with the digest); returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = digest_of(bytes);
        if self.has_blob(repository, &digest)? {
            return Ok(digest);
        }
        let scope = format!("repository:{repository}:pull,push");
        let started = self.request(Method::Post, &format!("/v2/{repository}/blobs/uploads/"), &scope)?;
        let location = match started.status {
            202 => started.headers.get("location").cloned().unwrap_or_default(),
            403 => return Err(self.unauthorized()),
            _ => return Err(self.failed("starting an upload to", repository, &started)),
        };
        // The location is absolute or relative to the registry; the digest joins its query.
        let path = match location.find("/v2/") {
            Some(start) => location[start..].to_string(),
            None => return Err(self.failed("starting an upload to", repository, &started)),
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{separator}digest={}", encode(&digest));
        let method = Method::Put { content_type: "application/octet-stream", body: bytes };
        let answer = self.request(method, &path, &scope)?;
        match answer.status {
            200..=299 => Ok(digest),
            403 => Err(self.unauthorized()),
            _ => Err(self.failed("uploading blob", &format!("{repository}@{digest}"), &answer)),
        }
    }

    /// Blob `digest` of `repository` (an image configuration, a document: small), if it is stored.
    pub fn blob(&self, repository: &str, digest: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let answer = self.request(Method::Get, &format!("/v2/{repository}/blobs/{digest}"), &scope)?;
        match answer.status {
            200 => Ok(Some(answer.body)),
            404 => Ok(None),
            401 | 403 => Err(self.unauthorized()),
            _ => Err(self.failed("reading blob", &format!("{repository}@{digest}"), &answer)),
        }
    }

    /// The manifests that refer to `digest` (OCI 1.1's referrers API), or `None` when the
    /// registry has no such API (distribution 2.8 answers 404): the caller then uses the tag
    /// scheme.
    pub fn referrers(&self, repository: &str, digest: &str) -> Result<Option<Vec<Referrer>>, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let answer = self.request(Method::Get, &format!("/v2/{repository}/referrers/{digest}"), &scope)?;
        match answer.status {
            200 => Ok(parse_referrers(&answer.body)),
            404 | 405 => Ok(None),
            401 | 403 => Err(self.unauthorized()),
            _ => Err(self.failed("listing the referrers of", &format!("{repository}@{digest}"), &answer)),
        }
    }
}

/// A manifest that refers to another (one entry of a referrers index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: String,
}

/// The entries of a referrers answer (an OCI image index); `None` when it is not one.
pub fn parse_referrers(body: &[u8]) -> Option<Vec<Referrer>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let manifests = value.get("manifests")?.as_array()?;
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    Some(
        manifests
            .iter()
            .map(|m| Referrer {
                digest: text(m, "digest"),
                media_type: text(m, "mediaType"),
                artifact_type: text(m, "artifactType"),
            })
            .collect(),
    )
}

/// `(host, path under it)` of a repository that names a registry
/// (`ghcr.io/org/notebooks/base` gives `ghcr.io` and `org/notebooks/base`); `None` for a
/// repository that names none (it lives on one engine only).
pub fn split_repository(repository: &str) -> Option<(String, String)> {
    let parsed = crate::reference::parse(repository).ok()?;
    Some((parsed.domain?, parsed.path))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::loopback("127.0.0.1:5000", "127.0.0.1:5000", "http://127.0.0.1:5000")]
    #[case::localhost("localhost:5000", "localhost:5000", "http://localhost:5000")]
    #[case::remote("ghcr.io", "ghcr.io", "https://ghcr.io")]
    #[case::explicit("http://registry.lan:5000/", "registry.lan:5000", "http://registry.lan:5000")]
    fn addresses(#[case] given: &str, #[case] host: &str, #[case] base: &str) {
        assert_eq!(address(given), (host.to_string(), base.to_string()));
    }

    #[test]
    fn parses_challenges() {
        let c =
            parse_challenge(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#)
                .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://ghcr.io/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull");
        let c = parse_challenge(r#"Basic realm="test""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.params["realm"].as_str()), ("basic", "test"));
    }

    #[test]
    fn reads_a_referrers_index() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":10,"artifactType":"application/vnd.cyclonedx+json"}]}"#;
        let found = parse_referrers(body).unwrap();
        assert_eq!(found[0].digest, "sha256:aa");
        assert_eq!(found[0].artifact_type, "application/vnd.cyclonedx+json");
        assert_eq!(parse_referrers(b"404 page not found"), None);
    }

    /// A registry that answers from a script: each request's `METHOD path` (query cut) is looked
    /// up in `answers`; what it was asked is returned when it stops.
    fn scripted(
        answers: Vec<(&'static str, u16, &'static str, &'static str)>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for _ in 0..answers.len() {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: Vec<&str> = line.split_whitespace().collect();
                let key = format!("{} {}", request[0], request[1].split('?').next().unwrap());
                asked.push(format!("{} {}", request[0], request[1]));
                let (_, status, headers, body) =
                    answers.iter().find(|(k, ..)| *k == key).copied().unwrap_or(("", 404, "", ""));
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
            asked
        });
        (host, handle)
    }

    #[test]
    fn lists_referrers_where_the_registry_has_the_api_and_says_none_where_it_has_not() {
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":3,"artifactType":"application/vnd.in-toto+json"}]}"#;
        let (host, server) = scripted(vec![
            (
                "GET /v2/ns/app/referrers/sha256:aa",
                200,
                "Content-Type: application/vnd.oci.image.index.v1+json\r\n",
                index,
            ),
            ("GET /v2/ns/old/referrers/sha256:aa", 404, "", "404 page not found"),
        ]);
        let client = Registry::new(&host, None).with_retries(0);
        let found = client.referrers("ns/app", "sha256:aa").unwrap().unwrap();
        assert_eq!(
            (found[0].digest.as_str(), found[0].artifact_type.as_str()),
            ("sha256:bb", "application/vnd.in-toto+json")
        );
        assert_eq!(client.referrers("ns/old", "sha256:aa").unwrap(), None);
        server.join().unwrap();
    }

    #[test]
    fn uploads_a_blob_in_one_put_to_the_location_the_registry_gives() {
        let (host, server) = scripted(vec![
            (
                "HEAD /v2/ns/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                404,
                "",
                "",
            ),
            ("POST /v2/ns/app/blobs/uploads/", 202, "Location: /v2/ns/app/blobs/uploads/u1?_state=s\r\n", ""),
            ("PUT /v2/ns/app/blobs/uploads/u1", 201, "", ""),
        ]);
        let client = Registry::new(&host, None).with_retries(0);
        assert_eq!(client.push_blob("ns/app", b"{}").unwrap(), digest_of(b"{}"));
        let asked = server.join().unwrap();
        assert_eq!(asked[2], format!("PUT /v2/ns/app/blobs/uploads/u1?_state=s&digest={}", encode(&digest_of(b"{}"))));
    }

    #[test]
    fn encodes_scopes() {
        assert_eq!(encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
