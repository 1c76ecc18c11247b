//! Which tags an image gets, and the record `cargo xtask tag` leaves for `release`.
//!
//! Pure: branch names sanitised into tags (refusing the reserved ones), the build tags
//! (`<prefix>-<branch>`, the commit, the build date, all read from the image's labels), and version
//! tags made from what a command printed inside the image (`python-3.11.2`). Variants need no
//! tag scheme of their own: a variant's images live in their own repository (`<image><suffix>`,
//! `base-notebook-gpu`), so the same tags serve every variant; nor do platforms: they share one
//! repository, and their tags name the image index over them. Nothing in this file runs a
//! command or talks to an engine; `run` does that work (the `tag` command's library side).

mod run;

pub use run::{branch, built_images, tag, write_record, TagRunError, Tagged, VERSION_TIMEOUT};

use serde::{Deserialize, Serialize};

/// Tags that a branch must not produce: promotion targets and the build's own tags.
pub const RESERVED: &[&str] = &["stable", "latest", "build"];
/// The longest tag Docker accepts.
pub const MAX_TAG: usize = 128;
/// The schema name of the tag record (`target/xtask/tags.json`).
pub const TAG_RECORD_SCHEMA: &str = "stack-tags/v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("branch `{branch}` gives no usable tag\n  hint: name the branch with letters or digits, or pass `--branch NAME`")]
    EmptyBranch { branch: String },
    #[error("branch `{branch}` would make the tag `{tag}`, which is reserved (`{reserved}` is set by releases and builds, never by a branch)\n  hint: rename the branch, or tag from another one with `--branch NAME`")]
    ReservedBranch { branch: String, tag: String, reserved: String },
    #[error("version tag `{name}`: the command printed nothing\n  hint: make `{command}` print the version on standard output")]
    EmptyVersion { name: String, command: String },
    #[error("version tag `{name}`: the command printed {lines} lines, not one version\n  hint: make `{command}` print only the version, such as `3.11.2`")]
    ManyLines { name: String, command: String, lines: usize },
}

/// `text` as tag characters: `[A-Za-z0-9_.-]`, every other run of characters one `-`, no
/// leading `.` or `-`, lowercased, at most [`MAX_TAG`] long.
pub fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('-');
    trimmed.chars().take(MAX_TAG).collect()
}

/// The branch tag `<prefix>-<branch>` (`2026.11-feature-gpu`), refused when the branch is a
/// reserved name or a pin (`inputs-...`).
pub fn branch_tag(prefix: &str, branch: &str) -> Result<String, TagError> {
    let name = sanitize(branch.strip_prefix("refs/heads/").unwrap_or(branch));
    if name.is_empty() {
        return Err(TagError::EmptyBranch { branch: branch.to_string() });
    }
    let reserved = RESERVED.iter().find(|r| **r == name).map(|r| r.to_string());
    let reserved = reserved.or_else(|| name.starts_with("inputs-").then(|| "inputs-*".to_string()));
    let tag: String = format!("{prefix}-{name}").chars().take(MAX_TAG).collect();
    match reserved {
        Some(reserved) => Err(TagError::ReservedBranch { branch: branch.to_string(), tag, reserved }),
        None => Ok(tag),
    }
}

/// The version tag `<name>-<version>` from what the command printed (trimmed; one line).
pub fn version_tag(name: &str, command: &str, output: &str) -> Result<String, TagError> {
    let text = output.trim();
    let lines = text.lines().count();
    if text.is_empty() {
        return Err(TagError::EmptyVersion { name: name.into(), command: command.into() });
    }
    if lines > 1 {
        return Err(TagError::ManyLines { name: name.into(), command: command.into(), lines });
    }
    let version = sanitize(text);
    if version.is_empty() {
        return Err(TagError::EmptyVersion { name: name.into(), command: command.into() });
    }
    Ok(format!("{name}-{version}").chars().take(MAX_TAG).collect())
}

/// The tags that say which build an image is: the branch tag, the commit (12 hex digits, from
/// the `org.opencontainers.image.revision` label; none for a build of uncommitted changes) and
/// the build date (`YYYY-MM-DD`, from the `created` label). Returns the tags and a note for
/// each one left out.
pub fn build_tags(branch_tag: &str, revision: Option<&str>, created: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut tags = vec![branch_tag.to_string()];
    let mut notes = Vec::new();
    match revision {
        Some(revision) if revision.ends_with("-dirty") => {
            notes.push("no commit tag: the image was built from uncommitted changes".to_string())
        }
        Some(revision) if revision.len() >= 12 && revision.chars().all(|c| c.is_ascii_hexdigit()) => {
            tags.push(revision[..12].to_ascii_lowercase())
        }
        _ => notes.push("no commit tag: the image has no revision label (built outside git)".to_string()),
    }
    match created.and_then(|c| c.get(..10)) {
        Some(date) if date.chars().all(|c| c.is_ascii_digit() || c == '-') && date.len() == 10 => {
            tags.push(date.to_string())
        }
        _ => notes.push("no date tag: the image has no `created` label".to_string()),
    }
    (tags, notes)
}

/// What `cargo xtask tag` did, for `release` and CI jobs: schema `stack-tags/v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub schema: String,
    /// The branch the branch tags were made for.
    pub branch: String,
    pub images: Vec<TaggedImage>,
}

/// One image and the tags it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaggedImage {
    /// `image` or `image@variant`.
    pub node: String,
    pub image: String,
    pub variant: String,
    /// Where the tags live: `<registry>/<namespace>/<image><suffix>`.
    pub repository: String,
    /// The engine's image ID (the config digest).
    pub id: String,
    /// The content-addressed pin tag (`inputs-...`), pushed first by `release`.
    pub pin: String,
    /// Build tags first, then version tags.
    pub tags: Vec<String>,
    /// The platform (`linux/arm64`), in a stack of several: the platforms of one image share
    /// its tags, which `release` puts on their image index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("main", "2026.11-main")]
    #[case::slashes("feature/GPU support", "2026.11-feature-gpu-support")]
    #[case::refs("refs/heads/dependabot/pip/jupyterlab-4.2.5", "2026.11-dependabot-pip-jupyterlab-4.2.5")]
    #[case::leading_dots("..hidden--name", "2026.11-hidden--name")]
    #[case::unicode("café#1", "2026.11-caf-1")]
    fn sanitises_branches(#[case] branch: &str, #[case] expected: &str) {
        assert_eq!(branch_tag("2026.11", branch).as_deref(), Ok(expected));
    }

    #[rstest]
    #[case::stable("stable")]
    #[case::latest("Latest")]
    #[case::build("build")]
    #[case::pin("inputs-0123")]
    fn refuses_reserved_branches(#[case] branch: &str) {
        let error = branch_tag("1.0", branch).unwrap_err();
        assert!(matches!(error, TagError::ReservedBranch { .. }), "{error}");
        assert!(error.to_string().contains("--branch NAME"), "{error}");
    }

    #[test]
    fn refuses_empty_branches_and_caps_the_length() {
        assert!(matches!(branch_tag("1.0", "///"), Err(TagError::EmptyBranch { .. })));
        let long = "x".repeat(300);
        assert_eq!(branch_tag("1.0", &long).unwrap().len(), MAX_TAG);
    }

    #[rstest]
    #[case::python("python", "3.11.2\n", "python-3.11.2")]
    #[case::spaces("r", "  4.2.2 ", "r-4.2.2")]
    #[case::local_version("torch", "2.5.1+cu124", "torch-2.5.1-cu124")]
    fn makes_version_tags(#[case] name: &str, #[case] output: &str, #[case] expected: &str) {
        assert_eq!(version_tag(name, "cmd", output).as_deref(), Ok(expected));
    }

    #[rstest]
    #[case::empty("  \n")]
    #[case::many("Python 3.11\nmore\n")]
    #[case::punctuation("+++")]
    fn refuses_bad_version_output(#[case] output: &str) {
        assert!(version_tag("python", "python --version", output).is_err());
    }

    #[test]
    fn build_tags_come_from_labels() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let (tags, notes) = build_tags("1.0-main", Some(sha), Some("2026-11-21T21:50:00Z"));
        assert_eq!(tags, ["1.0-main", "0123456789ab", "2026-11-21"]);
        assert!(notes.is_empty());
        let (tags, notes) = build_tags("1.0-main", Some(&format!("{sha}-dirty")), None);
        assert_eq!(tags, ["1.0-main"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
    }
}
