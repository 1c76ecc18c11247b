//! How a command ends when it does not succeed: one [`Error`] at the command boundary that
//! holds each domain's own error (spec, git, build, engine, registry, tag, release, docs), and
//! the [`ExitCode`] each maps to through an exhaustive `match`, so a new kind of failure cannot
//! fall through to "a bug" unnoticed. The README's table of exit codes is this mapping.

use crate::build::{BuildError, BuildRunError};
use crate::diagnostic::Diagnostics;
use crate::docs::DocsError;
use crate::engine::EngineError;
use crate::git::GitError;
use crate::registry::RegistryError;
use crate::release::ReleaseError;
use crate::supply::verify::VerifyError;
use crate::supply::SupplyError;
use crate::tags::TagRunError;

/// Exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// Something unexpected: an I/O error, a bug.
    Failure = 1,
    /// The command line was not understood (clap's own code), or names a file that cannot be used.
    Usage = 2,
    /// The spec is invalid, or an argument names an image or variant it does not have.
    InvalidSpec = 3,
    /// git failed: not a repository, unknown reference.
    Git = 4,
    /// One or more images failed to build (or were skipped because a parent failed).
    BuildFailed = 5,
    /// The Docker engine cannot be reached, is too old, or refused an operation; or a base
    /// image cannot be had.
    Engine = 6,
    /// An image the command needs was never built (or, for `release`, never tagged).
    NotBuilt = 7,
    /// Refused on purpose: a reserved branch, a version command that failed, no or unreadable
    /// test results, held images with `--all-or-nothing`, a promotion whose source is
    /// incomplete, whose target is taken, or whose images lack documents that cannot be attached.
    Refused = 8,
    /// The registry cannot be reached, refused the credentials, or a push failed after retries.
    Registry = 9,
    /// `docs --check` found stale pages, or a documentation command failed inside an image.
    Docs = 10,
    /// `verify` found no signature made with the key for the image's manifest, or a manifest
    /// that is not the one signed.
    Unverified = 11,
    /// Ctrl-C or SIGTERM stopped the run.
    Interrupted = 130,
}

impl ExitCode {
    /// Every code, in the README's order.
    pub const ALL: [ExitCode; 13] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::InvalidSpec,
        ExitCode::Git,
        ExitCode::BuildFailed,
        ExitCode::Engine,
        ExitCode::NotBuilt,
        ExitCode::Refused,
        ExitCode::Registry,
        ExitCode::Docs,
        ExitCode::Unverified,
        ExitCode::Interrupted,
    ];
}

/// Every way a command can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] Diagnostics),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Build(#[from] BuildRunError),
    #[error(transparent)]
    BuildSetup(#[from] BuildError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Tag(#[from] TagRunError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Docs(#[from] DocsError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Supply(#[from] SupplyError),
    /// Writing the command's output or a record failed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// Anything else: a bug, or a benchmark's own failure.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::Io { what: "writing the output".into(), source }
    }
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Spec(_) => ExitCode::InvalidSpec,
            Error::Git(_) => ExitCode::Git,
            Error::Build(error) => error.exit_code(),
            Error::BuildSetup(error) => error.exit_code(),
            Error::Engine(_) => ExitCode::Engine,
            Error::Registry(_) => ExitCode::Registry,
            Error::Tag(error) => error.exit_code(),
            Error::Release(error) => error.exit_code(),
            Error::Docs(error) => error.exit_code(),
            Error::Verify(error) => error.exit_code(),
            Error::Supply(error) => error.exit_code(),
            Error::Io { .. } | Error::Other(_) => ExitCode::Failure,
        }
    }
}

/// Images a command needs that were never built on this engine (no `:build` tag), and the
/// command that builds them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("never built on this engine: {} (no `:{}` tag)\n  hint: build them first: `cargo xtask build {}`", .nodes.join(", "), crate::build::BUILD_TAG, .nodes.join(" "))]
pub struct NotBuilt {
    pub nodes: Vec<String>,
}
