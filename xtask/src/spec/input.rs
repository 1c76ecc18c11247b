//! Reading the stack's text files (the spec, Dockerfiles) within a size limit, as UTF-8, with an
//! error that names the cause: a missing file, a folder, permission denied, a symbolic link
//! loop, a file over the limit, a byte that is not UTF-8 (with its line and column).
//!
//! Reading stops one byte past the limit, so `--spec /dev/zero` costs a few megabytes, not all
//! the memory there is.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::diagnostic::{Code, Diagnostic, Location};

/// The largest spec read: four hundred times the real stack's, room for 8,000 images written as
/// the real ones are (60,000 in one line each), and a worst case that validates in a few seconds.
pub const SPEC_MAX_BYTES: usize = 2 * 1024 * 1024;
/// The largest Dockerfile read.
pub const DOCKERFILE_MAX_BYTES: usize = 1024 * 1024;

/// Which file is read, for the messages and their hints.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Spec,
    Dockerfile { image: &'a str },
}

impl Subject<'_> {
    fn what(&self) -> String {
        match self {
            Subject::Spec => "the spec".into(),
            Subject::Dockerfile { image } => format!("the Dockerfile of image `{image}`"),
        }
    }

    fn limit(&self) -> usize {
        match self {
            Subject::Spec => SPEC_MAX_BYTES,
            Subject::Dockerfile { .. } => DOCKERFILE_MAX_BYTES,
        }
    }
}

/// `bytes` as `2 MiB`.
pub fn human(bytes: usize) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Reads `path` whole, as text, or says why it cannot.
pub fn read(path: &Path, subject: Subject<'_>) -> Result<String, Diagnostic> {
    let file = Some(Location::file_only(path));
    let what = subject.what();
    let error = |error: std::io::Error| io_error(path, subject, &error);
    if path.is_dir() {
        let hint = match subject {
            Subject::Spec if path.join("spec.yml").is_file() => {
                format!("pass the file itself: `--spec {}`", path.join("spec.yml").display())
            }
            Subject::Spec => "pass the spec file itself, such as `--spec images/spec.yml`".into(),
            Subject::Dockerfile { .. } => "set `dockerfile:` to the file inside the image's folder".into(),
        };
        return Err(Diagnostic::new(Code::Io, file, format!("{what} {} is a folder, not a file", path.display()))
            .with_hint(hint));
    }
    let limit = subject.limit();
    let mut bytes = Vec::new();
    File::open(path).map_err(error)?.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(error)?;
    if bytes.len() > limit {
        return Err(Diagnostic::new(
            Code::Limit,
            file,
            format!("{what} {} is larger than {}, the most a stack's file may be", path.display(), human(limit)),
        )
        .with_hint(
            "check the path: this is not the file you meant, or it was generated wrong (docs/spec.md lists the limits)",
        ));
    }
    text(path, subject, bytes)
}

/// `bytes` as UTF-8, or an error at the first byte that is not.
pub fn text(path: &Path, subject: Subject<'_>, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let at = error.utf8_error().valid_up_to();
        // Everything before `at` is valid, so it can be counted in characters.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
        Diagnostic::new(
            Code::Encoding,
            Some(Location::new(path, line, column)),
            format!("{} is not valid UTF-8: byte 0x{:02X} at line {line}, column {column}", subject.what(), bytes[at]),
        )
        .with_hint(format!(
            "save the file as UTF-8 (a Latin-1 file converts with `iconv -f latin1 -t utf-8 {0} > {0}.new`), or replace the character",
            path.display()
        ))
    })
}

/// Why `path` could not be opened or read, with the fix for that cause.
fn io_error(path: &Path, subject: Subject<'_>, error: &std::io::Error) -> Diagnostic {
    let what = subject.what();
    let shown = path.display();
    let (message, hint) = match error.kind() {
        ErrorKind::NotFound => (
            format!("{what} {shown} does not exist"),
            match subject {
                Subject::Spec => "run from inside the stack's repository (its `images/spec.yml` is found from the current directory up), or pass `--spec PATH`".to_string(),
                Subject::Dockerfile { .. } => "add it, or set `dockerfile:` to its name inside the image's folder".to_string(),
            },
        ),
        ErrorKind::PermissionDenied => (
            format!("{what} {shown} cannot be read: permission denied"),
            format!("make it readable for this user (`chmod a+r {shown}`), or run as a user who can read it"),
        ),
        ErrorKind::NotADirectory => (
            format!("{what} {shown} cannot be read: a part of the path is a file, not a folder"),
            "check the path".to_string(),
        ),
        _ if error.raw_os_error() == Some(ELOOP) => (
            format!("{what} {shown} is a symbolic link that leads back to itself"),
            format!("point the link at a file (`ls -l {shown}` shows where it leads)"),
        ),
        _ => (format!("{what} {shown} cannot be read: {error}"), "check that the file exists and can be read".to_string()),
    };
    Diagnostic::new(Code::Io, Some(Location::file_only(path)), message).with_hint(hint)
}

/// "Too many levels of symbolic links" (the same number on Linux and the BSDs' 62 aside).
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn at(bytes: &[u8]) -> Diagnostic {
        text(Path::new("spec.yml"), Subject::Spec, bytes.to_vec()).unwrap_err()
    }

    #[rstest]
    #[case::first_byte(b"\xff", 1, 1, 0xff)]
    #[case::latin1_on_line_3(b"a: 1\nb: 2\nc: caf\xe9\n", 3, 7, 0xe9)]
    #[case::after_multibyte(b"d: \xc3\xa9t\xe9", 1, 6, 0xe9)]
    #[case::truncated_sequence(b"x\n\xe2\x82", 2, 1, 0xe2)]
    fn places_the_first_bad_byte(#[case] bytes: &[u8], #[case] line: usize, #[case] column: usize, #[case] byte: u8) {
        let diagnostic = at(bytes);
        assert_eq!(diagnostic.code, Code::Encoding);
        assert_eq!(diagnostic.location, Some(Location::new("spec.yml", line, column)));
        assert!(
            diagnostic.message.contains(&format!("byte 0x{byte:02X} at line {line}, column {column}")),
            "{diagnostic}"
        );
        assert!(diagnostic.hint.as_deref().unwrap_or_default().contains("iconv"), "{diagnostic}");
    }

    /// Each cause has its own message and fix (the files behind them are made in the
    /// integration tests, except permission denied, which root never meets).
    #[rstest]
    #[case::missing(ErrorKind::NotFound.into(), "does not exist", "--spec PATH")]
    #[case::permission_denied(ErrorKind::PermissionDenied.into(), "cannot be read: permission denied", "chmod a+r spec.yml")]
    #[case::a_file_for_a_folder(
        std::io::Error::from_raw_os_error(20),
        "a part of the path is a file",
        "check the path"
    )]
    #[case::a_link_loop(std::io::Error::from_raw_os_error(ELOOP), "leads back to itself", "ls -l spec.yml")]
    #[case::anything_else(
        std::io::Error::other("disk on fire"),
        "cannot be read: disk on fire",
        "exists and can be read"
    )]
    fn says_the_cause_and_its_fix(#[case] error: std::io::Error, #[case] message: &str, #[case] hint: &str) {
        let diagnostic = io_error(Path::new("spec.yml"), Subject::Spec, &error);
        assert_eq!(diagnostic.code, Code::Io);
        assert!(diagnostic.message.contains(message), "{diagnostic}");
        assert!(diagnostic.hint.as_deref().unwrap_or_default().contains(hint), "{diagnostic}");
    }

    #[test]
    fn valid_text_passes() {
        assert_eq!(text(Path::new("f"), Subject::Spec, "é\n".into()).unwrap(), "é\n");
    }
}
