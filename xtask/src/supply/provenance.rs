//! Build provenance: an in-toto statement (v1) whose subject is the image (its repository and
//! manifest digest) and whose predicate is SLSA provenance v1: the build definition (the
//! image, variant, Dockerfile, build arguments, the source commit, the inputs digest) with what
//! went into it (the commit, the parent image by ID, every image and base it is built on by
//! pin), and the run (the builder, start and end). Pure: built from [`Facts`] that the caller
//! reads from the image's labels, the spec and the identities.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `buildDefinition.externalParameters` means (docs/supply-chain.md describes it).
pub const BUILD_TYPE: &str = "https://github.com/example-org/notebooks/blob/main/docs/supply-chain.md#build-type-v1";
/// The media type of the in-toto statement, and of the DSSE envelope that carries it.
pub const STATEMENT_MEDIA_TYPE: &str = "application/vnd.in-toto+json";

/// What a provenance statement says about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `host/path`.
    pub repository: String,
    /// The manifest digest (`sha256:...`).
    pub digest: String,
    pub node: String,
    pub image: String,
    pub variant: String,
    /// The Dockerfile, relative to the repository root.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    /// `sha256:...` (the `xtask.stack.inputs` label) and the pin tag.
    pub inputs_digest: String,
    pub pin: String,
    /// The commit and the repository URL (labels `org.opencontainers.image.revision`, `.source`).
    pub revision: Option<String>,
    pub source: Option<String>,
    /// `<reference>@<image ID>` of the parent (label `xtask.stack.parent`).
    pub parent: Option<String>,
    /// Every image and base it is built on: `(build argument, pin reference, inputs digest)`.
    pub upstream: Vec<(String, String, String)>,
    /// Who ran the build (`https://github.com/o/r/actions/runs/1`, or `cargo-xtask@host`).
    pub builder: String,
    /// When the build run started (label `org.opencontainers.image.created`) and the image was
    /// finished (its configuration's `Created`), RFC 3339.
    pub started: String,
    pub finished: Option<String>,
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The in-toto statement, as JSON.
pub fn statement(facts: &Facts) -> Value {
    let mut dependencies = Vec::new();
    if let Some(revision) = &facts.revision {
        // Without a source label the repository is unknown; the commit still names the tree.
        let source = facts.source.as_deref().unwrap_or("unknown");
        dependencies.push(json!({"uri": format!("git+{source}@{revision}"), "digest": {"gitCommit": revision}}));
    }
    if let Some((reference, id)) = facts.parent.as_ref().and_then(|p| p.rsplit_once('@')) {
        dependencies.push(json!({"name": "parent", "uri": reference, "digest": {"sha256": hex(id)}}));
    }
    for (argument, reference, inputs) in &facts.upstream {
        dependencies.push(json!({"name": argument, "uri": reference, "digest": {"xtaskInputs": hex(inputs)}}));
    }
    let mut metadata = json!({"invocationId": format!("{}@{}", facts.node, facts.started), "startedOn": facts.started});
    if let Some(finished) = &facts.finished {
        metadata["finishedOn"] = json!(finished);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.repository, "digest": {"sha256": hex(&facts.digest)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "image": facts.image,
                    "variant": facts.variant,
                    "dockerfile": facts.dockerfile,
                    "buildArgs": facts.build_args,
                    "source": {"uri": facts.source, "revision": facts.revision},
                },
                "internalParameters": {"node": facts.node, "inputsDigest": facts.inputs_digest, "pin": facts.pin},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": facts.builder},
                "metadata": metadata,
            },
        },
    })
}

/// Who runs this: the GitHub Actions run when there is one, else the tool on this host.
pub fn builder_id() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repository), Some(run)) =
        (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID"))
    {
        return format!("{server}/{repository}/actions/runs/{run}");
    }
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("cargo-xtask/{}@{}", env!("CARGO_PKG_VERSION"), if host.is_empty() { "localhost" } else { &host })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn facts() -> Facts {
        Facts {
            repository: "ghcr.io/org/nb/app".into(),
            digest: "sha256:aaaa".into(),
            node: "app".into(),
            image: "app".into(),
            variant: "cpu".into(),
            dockerfile: "images/app/Dockerfile".into(),
            build_args: BTreeMap::from([("GREETING".into(), "hello".into())]),
            inputs_digest: "sha256:bbbb".into(),
            pin: "inputs-bbbb".into(),
            revision: Some("0123".into()),
            source: Some("https://github.com/org/nb".into()),
            parent: Some("ghcr.io/org/nb/base:inputs-cccc@sha256:dddd".into()),
            upstream: vec![("BASE_IMAGE".into(), "ghcr.io/org/nb/base:inputs-cccc".into(), "sha256:cccc".into())],
            builder: "cargo-xtask/0.1.0@ci".into(),
            started: "2026-11-21T10:00:00Z".into(),
            finished: Some("2026-11-21T10:05:00Z".into()),
        }
    }

    #[test]
    fn a_statement_names_the_image_and_what_went_into_it() {
        let s = statement(&facts());
        assert_eq!(s["_type"], STATEMENT_TYPE);
        assert_eq!(s["predicateType"], PREDICATE_TYPE);
        assert_eq!(s["subject"][0]["digest"]["sha256"], "aaaa");
        let definition = &s["predicate"]["buildDefinition"];
        assert_eq!(definition["externalParameters"]["dockerfile"], "images/app/Dockerfile");
        assert_eq!(definition["externalParameters"]["buildArgs"]["GREETING"], "hello");
        assert_eq!(definition["internalParameters"]["inputsDigest"], "sha256:bbbb");
        let dependencies = definition["resolvedDependencies"].as_array().unwrap();
        assert_eq!(dependencies[0]["digest"]["gitCommit"], "0123");
        assert_eq!(dependencies[0]["uri"], "git+https://github.com/org/nb@0123");
        assert_eq!(dependencies[1]["uri"], "ghcr.io/org/nb/base:inputs-cccc");
        assert_eq!(dependencies[1]["digest"]["sha256"], "dddd");
        assert_eq!(dependencies[2]["name"], "BASE_IMAGE");
        let run = &s["predicate"]["runDetails"];
        assert_eq!(run["builder"]["id"], "cargo-xtask/0.1.0@ci");
        assert_eq!(run["metadata"]["startedOn"], "2026-11-21T10:00:00Z");
        assert_eq!(run["metadata"]["finishedOn"], "2026-11-21T10:05:00Z");
    }
}
