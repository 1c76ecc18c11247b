//! Build contexts: the files of an image's folder that `.dockerignore` keeps, as a
//! deterministic tar archive (sorted entries, fixed times and owners, normalised modes), so
//! identical inputs give identical bytes, identical layers and an identical digest.
//!
//! `.dockerignore` follows Docker's rules: one pattern a line, `#` comments, `!` exceptions,
//! `**` for any number of folders, the last matching pattern wins, and a pattern that matches a
//! folder excludes everything under it. The Dockerfile and `.dockerignore` are always sent,
//! as Docker does. Reads files; talks to nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

/// Files the tool adds to every context, under this folder (never read from the image folder).
pub const GENERATED_DIR: &str = ".stack";

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{}: cannot read the build context: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: `{pattern}` is not a valid .dockerignore pattern: {reason}", path.display())]
    Pattern { path: PathBuf, line: usize, pattern: String, reason: String },
}

/// One `.dockerignore` rule.
#[derive(Debug, Clone)]
struct Rule {
    matcher: GlobMatcher,
    exclude: bool,
}

/// The rules of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// Parses `.dockerignore` text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<DockerIgnore, ContextError> {
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let cleaned = clean(pattern);
            let glob =
                GlobBuilder::new(&cleaned).literal_separator(true).backslash_escape(true).build().map_err(|error| {
                    ContextError::Pattern {
                        path: path.to_path_buf(),
                        line: index + 1,
                        pattern: pattern.to_string(),
                        reason: error.kind().to_string(),
                    }
                })?;
            rules.push(Rule { matcher: glob.compile_matcher(), exclude });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `relative` (with `/` separators) is left out of the context. A path is left out
    /// when the last rule matching it or one of its parent folders excludes it.
    pub fn excludes(&self, relative: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            let mut prefix_end = Some(relative.len());
            let mut matched = false;
            while let Some(end) = prefix_end {
                if rule.matcher.is_match(&relative[..end]) {
                    matched = true;
                    break;
                }
                prefix_end = relative[..end].rfind('/');
            }
            if matched {
                excluded = rule.exclude;
            }
        }
        excluded
    }
}

/// Docker's `filepath.Clean` of a pattern, without a leading `/` or `./`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// A build context ready to send.
#[derive(Debug, Clone)]
pub struct Context {
    pub tar: Vec<u8>,
    /// `sha256:<hex>` of the archive: the content of every file sent, with its path and mode.
    pub digest: String,
    /// Files in the archive (generated ones excluded).
    pub files: usize,
}

/// A file the tool adds to the context (for example the CA bundle), not from the image folder.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Path inside the context, under [`GENERATED_DIR`].
    pub path: String,
    pub contents: Vec<u8>,
}

/// The paths under `dir` that the context keeps, sorted, relative with `/` separators; folders
/// are listed before their contents.
/// `exclude` leaves out more paths (relative to `dir`), such as the stack's test folders.
pub fn files(
    dir: &Path,
    dockerfile: &str,
    exclude: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<(String, PathBuf)>, ContextError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContextError::Io { path, source }
    };
    let ignore_path = dir.join(".dockerignore");
    let ignore = match fs::read_to_string(&ignore_path) {
        Ok(text) => DockerIgnore::parse(&text, &ignore_path)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(error) => return Err(io(&ignore_path)(error)),
    };
    // With a `!` rule, something under an excluded folder may come back: look inside.
    let any_exception = ignore.rules.iter().any(|rule| !rule.exclude);
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, folder)) = stack.pop() {
        let mut entries: Vec<(String, PathBuf, bool)> = Vec::new();
        for entry in fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let is_dir = entry.file_type().map_err(io(&entry.path()))?.is_dir();
            let always = relative == dockerfile || relative == ".dockerignore";
            let ignored = ignore.excludes(&relative) && !(is_dir && any_exception);
            // A folder goes when its contents would: `images/*/tests/**` leaves no empty `tests/`.
            let excluded = exclude(&relative) || (is_dir && exclude(&format!("{relative}/.any-file")));
            if relative == GENERATED_DIR || (!always && (ignored || excluded)) {
                continue;
            }
            entries.push((relative, entry.path(), is_dir));
        }
        for (relative, path, is_dir) in entries {
            if is_dir {
                stack.push((relative.clone(), path.clone()));
            }
            out.push((relative, path));
        }
    }
    // Sorted by path: a folder comes before its contents, and the order never depends on the disk.
    out.sort();
    Ok(out)
}

/// One entry of a context, as sent: what the digest covers.
enum Entry {
    Dir,
    Link(PathBuf),
    File { mode: u32, contents: Vec<u8> },
}

/// Reads the entry at `path`.
fn read_entry(path: &Path) -> Result<Entry, ContextError> {
    let io = |source| ContextError::Io { path: path.to_path_buf(), source };
    let metadata = fs::symlink_metadata(path).map_err(io)?;
    Ok(if metadata.is_dir() {
        Entry::Dir
    } else if metadata.file_type().is_symlink() {
        Entry::Link(fs::read_link(path).map_err(io)?)
    } else {
        let mode = if executable(&metadata) { 0o755 } else { 0o644 };
        Entry::File { mode, contents: fs::read(path).map_err(io)? }
    })
}

/// Adds an entry to the context digest.
fn hash_entry(hasher: &mut Sha256, relative: &str, entry: &Entry) {
    match entry {
        Entry::Dir => hasher.update(format!("dir {relative}\n")),
        Entry::Link(target) => hasher.update(format!("link {relative} {}\n", target.display())),
        Entry::File { mode, contents } => {
            hasher.update(format!("file {relative} {mode:o} {}\n", contents.len()));
            hasher.update(contents);
        }
    }
}

/// The digest of the context of `dir` (what [`archive`] would report), without writing the
/// archive: how any machine computes an image's identity from the repository alone.
pub fn digest(dir: &Path, dockerfile: &str, exclude: &(dyn Fn(&str) -> bool + Sync)) -> Result<String, ContextError> {
    let mut hasher = Sha256::new();
    for (relative, path) in files(dir, dockerfile, exclude)? {
        hash_entry(&mut hasher, &relative, &read_entry(&path)?);
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// Writes the context of `dir` as a deterministic tar archive, with `generated` files added
/// under [`GENERATED_DIR`]. The digest covers the folder's files only: generated files (such as
/// a CA bundle) do not decide what an image is.
pub fn archive(
    dir: &Path,
    dockerfile: &str,
    generated: &[Generated],
    exclude: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Context, ContextError> {
    let entries = files(dir, dockerfile, exclude)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut hasher = Sha256::new();
    let mut count = 0;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContextError::Io { path, source }
    };
    for (relative, path) in &entries {
        let entry = read_entry(path)?;
        hash_entry(&mut hasher, relative, &entry);
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match &entry {
            Entry::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{relative}/"), io::empty()).map_err(io(path))?;
            }
            Entry::Link(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, relative, target).map_err(io(path))?;
            }
            Entry::File { mode, contents } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(contents.len() as u64);
                builder.append_data(&mut header, relative, contents.as_slice()).map_err(io(path))?;
                count += 1;
            }
        }
    }
    for file in generated {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_mode(0o644);
        header.set_size(file.contents.len() as u64);
        builder.append_data(&mut header, &file.path, file.contents.as_slice()).map_err(io(dir))?;
    }
    let tar = builder.into_inner().map_err(io(dir))?;
    Ok(Context { tar, digest: format!("sha256:{:x}", hasher.finalize()), files: count })
}

#[cfg(unix)]
fn executable(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_metadata: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn an_exclusion_leaves_out_paths_but_never_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), "tests/checks.yml", "x");
        write(dir.path(), "app.py", "x");
        let exclude = |path: &str| path.starts_with("tests/") || path == "Dockerfile";
        let names: Vec<String> =
            files(dir.path(), "Dockerfile", &exclude).unwrap().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["Dockerfile", "app.py"]);
    }

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    #[rstest]
    #[case("*.md", "README.md", true)]
    #[case("*.md", "docs/README.md", false)]
    #[case("**/*.md", "docs/README.md", true)]
    #[case("docs", "docs/a/b.txt", true)]
    #[case("/docs/", "docs/a.txt", true)]
    #[case("./build/*.o", "build/x.o", true)]
    #[case("*.md\n!KEEP.md", "KEEP.md", false)]
    #[case("!KEEP.md\n*.md", "KEEP.md", true)]
    #[case("# comment\n\n  tmp  ", "tmp", true)]
    #[case("data/**/*.csv", "data/x/y/z.csv", true)]
    #[case("data/**/*.csv", "data/z.txt", false)]
    fn dockerignore_rules(#[case] rules: &str, #[case] path: &str, #[case] excluded: bool) {
        assert_eq!(ignore(rules).excludes(path), excluded);
    }

    #[test]
    fn a_bad_pattern_says_where() {
        let error = DockerIgnore::parse("ok\n[bad", Path::new("images/x/.dockerignore")).unwrap_err();
        assert!(
            error.to_string().starts_with("images/x/.dockerignore:2: `[bad` is not a valid .dockerignore pattern"),
            "{error}"
        );
    }

    fn write(dir: &Path, relative: &str, text: &str) {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn archives_are_deterministic_and_honour_dockerignore() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        for (dir, order) in [(one.path(), ["b.txt", "a/c.txt"]), (two.path(), ["a/c.txt", "b.txt"])] {
            write(dir, "Dockerfile", "FROM x\n");
            write(dir, ".dockerignore", "*.log\nDockerfile\n");
            for file in order {
                write(dir, file, file);
            }
            write(dir, "debug.log", "noise");
        }
        // Different times on disk must not matter.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(two.path(), "b.txt", "b.txt");
        let a = archive(one.path(), "Dockerfile", &[], &none).unwrap();
        let b = archive(two.path(), "Dockerfile", &[], &none).unwrap();
        assert_eq!(a.tar, b.tar);
        assert_eq!(a.digest, b.digest);
        let names: Vec<String> =
            files(one.path(), "Dockerfile", &none).unwrap().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "a", "a/c.txt", "b.txt"]);
        // An ignored file changes nothing; a kept one changes the digest.
        write(one.path(), "debug.log", "other noise");
        assert_eq!(archive(one.path(), "Dockerfile", &[], &none).unwrap().digest, a.digest);
        write(one.path(), "b.txt", "changed");
        assert_ne!(archive(one.path(), "Dockerfile", &[], &none).unwrap().digest, a.digest);
    }

    #[test]
    fn generated_files_are_sent_but_not_digested() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        let plain = archive(dir.path(), "Dockerfile", &[], &none).unwrap();
        let generated = Generated { path: format!("{GENERATED_DIR}/ca.crt"), contents: b"cert".to_vec() };
        let with = archive(dir.path(), "Dockerfile", &[generated], &none).unwrap();
        assert_eq!(plain.digest, with.digest);
        let mut archive = tar::Archive::new(with.tar.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["Dockerfile", ".stack/ca.crt"]);
    }
}
