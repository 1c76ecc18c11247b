//! Errors a user can cause, with where they are and how to fix them.
//!
//! A [`Diagnostic`] says what went wrong (`message`), where (`location`: file, line, column) and
//! how to fix it (`hint`). Validation collects every diagnostic it finds, so one run shows all
//! the mistakes in a spec, not only the first. This module formats; it does not decide what is
//! an error.

use std::fmt;
use std::path::PathBuf;

/// A place in a file. Lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize) -> Self {
        Location { file: file.into(), line, column }
    }

    /// The location without its line and column, for errors about a whole file.
    pub fn file_only(file: impl Into<PathBuf>) -> Self {
        Location { file: file.into(), line: 0, column: 0 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

/// A stable name for each kind of mistake, used by tests and listed in `docs/spec.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    Io,
    /// A file that is not valid UTF-8.
    Encoding,
    /// An input over one of the limits that keep every run fast and small (docs/spec.md).
    Limit,
    Syntax,
    UnknownKey,
    InvalidValue,
    UnknownImage,
    DuplicateName,
    Cycle,
    MissingDirectory,
    MissingDockerfile,
    /// A `dir` or `dockerfile` that leaves the spec's folder (or the image's folder).
    InvalidPath,
    InvalidReference,
    UnknownVariant,
    VariantOptOut,
    /// A platform the stack does not build for.
    UnknownPlatform,
    /// An image built for a platform that its parent or dependency is not built for.
    PlatformOptOut,
    FromMismatch,
    ReservedBuildArg,
    UnknownDocCommand,
    UnknownVersionTag,
    InvalidGlob,
}

impl Code {
    /// Every code, in the order `docs/spec.md` lists them.
    pub const ALL: [Code; 22] = [
        Code::Io,
        Code::Encoding,
        Code::Limit,
        Code::Syntax,
        Code::UnknownKey,
        Code::InvalidValue,
        Code::UnknownImage,
        Code::DuplicateName,
        Code::Cycle,
        Code::MissingDirectory,
        Code::MissingDockerfile,
        Code::InvalidPath,
        Code::InvalidReference,
        Code::UnknownVariant,
        Code::VariantOptOut,
        Code::UnknownPlatform,
        Code::PlatformOptOut,
        Code::FromMismatch,
        Code::ReservedBuildArg,
        Code::UnknownDocCommand,
        Code::UnknownVersionTag,
        Code::InvalidGlob,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Io => "io",
            Code::Encoding => "encoding",
            Code::Limit => "limit",
            Code::Syntax => "syntax",
            Code::UnknownKey => "unknown-key",
            Code::InvalidValue => "invalid-value",
            Code::UnknownImage => "unknown-image",
            Code::DuplicateName => "duplicate-name",
            Code::Cycle => "cycle",
            Code::MissingDirectory => "missing-directory",
            Code::MissingDockerfile => "missing-dockerfile",
            Code::InvalidPath => "invalid-path",
            Code::InvalidReference => "invalid-reference",
            Code::UnknownVariant => "unknown-variant",
            Code::VariantOptOut => "variant-opt-out",
            Code::UnknownPlatform => "unknown-platform",
            Code::PlatformOptOut => "platform-opt-out",
            Code::FromMismatch => "from-mismatch",
            Code::ReservedBuildArg => "reserved-build-arg",
            Code::UnknownDocCommand => "unknown-doc-command",
            Code::UnknownVersionTag => "unknown-version-tag",
            Code::InvalidGlob => "invalid-glob",
        }
    }
}

/// One mistake: what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub location: Option<Location>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic { code, location, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "error[{}]: {}", self.code.as_str(), self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every mistake found in one pass, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn single(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
