//! What changed, according to git: the only module that runs git (through xshell, arguments
//! interpolated, never concatenated into a shell line).
//!
//! `--since REF` means "everything this branch changed": the merge base of REF and HEAD compared
//! with the working tree, so every commit of a pull request counts, and so do uncommitted edits
//! and untracked files (`.gitignore`d ones excepted).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git could not be run ({0}); install git and make sure it is on PATH")]
    Unavailable(String),
    #[error("{} is not inside a git repository; change detection (`--since`) needs one (use `--all` or name images instead)", .0.display())]
    NotARepository(PathBuf),
    #[error("unknown git reference `{reference}`: no branch, tag or commit has that name{hint}")]
    UnknownRef { reference: String, hint: String },
    #[error("`{reference}` and HEAD have no common ancestor, so there is no base to compare with; fetch more history (`git fetch --unshallow`) or pick another reference")]
    NoMergeBase { reference: String },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// A git work tree.
#[derive(Debug)]
pub struct Repo {
    sh: Shell,
    root: PathBuf,
}

/// The files a branch changed since it left `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub since: String,
    pub merge_base: String,
    /// Paths relative to the repository root, with `/` separators: committed since the merge
    /// base, staged, unstaged (deleted ones included) and untracked.
    pub files: BTreeSet<String>,
}

impl Repo {
    /// The repository that contains `dir`.
    pub fn discover(dir: &Path) -> Result<Repo, GitError> {
        let sh = Shell::new().map_err(|error| GitError::Unavailable(error.to_string()))?;
        sh.change_dir(dir);
        let output = cmd!(sh, "git rev-parse --show-toplevel")
            .quiet()
            .ignore_status()
            .output()
            .map_err(|error| GitError::Unavailable(error.to_string()))?;
        if !output.status.success() {
            return Err(GitError::NotARepository(dir.to_path_buf()));
        }
        let root = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        sh.change_dir(&root);
        Ok(Repo { sh, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs git with `args` in the repository root and returns its standard output.
    fn git(&self, args: &[&str]) -> Result<String, GitError> {
        let output = cmd!(self.sh, "git {args...}")
            .quiet()
            .ignore_status()
            .output()
            .map_err(|error| GitError::Unavailable(error.to_string()))?;
        if !output.status.success() {
            return Err(GitError::Failed {
                command: format!("git {}", args.join(" ")),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The commit checked out, with `-dirty` when the work tree has uncommitted changes.
    pub fn revision(&self) -> Option<String> {
        let head = self.git(&["rev-parse", "HEAD"]).ok()?.trim().to_string();
        let clean = self.git(&["status", "--porcelain", "--untracked-files=no"]).ok()?.trim().is_empty();
        Some(if clean { head } else { format!("{head}-dirty") })
    }

    /// The branch checked out; `None` on a detached HEAD.
    pub fn branch(&self) -> Option<String> {
        let name = self.git(&["rev-parse", "--abbrev-ref", "HEAD"]).ok()?.trim().to_string();
        (!name.is_empty() && name != "HEAD").then_some(name)
    }

    /// Where the repository comes from (`remote.origin.url`), credentials removed.
    pub fn source(&self) -> Option<String> {
        let url = self.git(&["config", "--get", "remote.origin.url"]).ok()?.trim().to_string();
        let url = match (url.find("://"), url.find('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}{}", &url[..scheme + 3], &url[at + 1..])
            }
            _ => url,
        };
        (!url.is_empty()).then_some(url)
    }

    /// The text of `path` (relative to the root, `/` separators) in `commit`; `None` when the
    /// commit has no such file or it holds more than `limit` bytes.
    pub fn file_at(&self, commit: &str, path: &str, limit: usize) -> Result<Option<String>, GitError> {
        let object = format!("{commit}:{path}");
        let Ok(size) = self.git(&["cat-file", "-s", &object]) else {
            return Ok(None);
        };
        if size.trim().parse::<usize>().map_or(true, |size| size > limit) {
            return Ok(None);
        }
        self.git(&["cat-file", "blob", &object]).map(Some)
    }

    /// Everything changed since the merge base of `reference` and HEAD.
    pub fn changes_since(&self, reference: &str) -> Result<ChangeSet, GitError> {
        let commit = format!("{reference}^{{commit}}");
        if self.git(&["rev-parse", "--verify", "--quiet", &commit]).is_err() {
            let hint = if reference.contains('/') {
                format!(
                    "; if it is a remote branch, fetch it first (`git fetch {}`)",
                    reference.split('/').next().unwrap_or("origin")
                )
            } else {
                String::new()
            };
            return Err(GitError::UnknownRef { reference: reference.to_string(), hint });
        }
        let merge_base = self
            .git(&["merge-base", reference, "HEAD"])
            .map_err(|_| GitError::NoMergeBase { reference: reference.to_string() })?
            .trim()
            .to_string();
        let mut files = BTreeSet::new();
        let tracked = self.git(&["diff", "--name-only", "--no-renames", "-z", &merge_base, "--"])?;
        let untracked = self.git(&["ls-files", "--others", "--exclude-standard", "-z"])?;
        for path in tracked.split('\0').chain(untracked.split('\0')) {
            if !path.is_empty() {
                files.insert(path.to_string());
            }
        }
        Ok(ChangeSet { since: reference.to_string(), merge_base, files })
    }
}
