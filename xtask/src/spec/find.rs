//! Which spec a command reads when `--spec` is not given: `images/spec.yml` in the current
//! directory or the nearest folder above it, up to the repository's root (the first folder
//! holding `.git`); else the one of the checkout this xtask was compiled in. Commands say which
//! one they read (`plan` in its first line), so a binary built in one checkout and run in
//! another never plans the wrong stack without a word.
//!
//! Looks at the file system only (no git).

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the spec's path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--spec PATH`.
    Given,
    /// Found from the current directory.
    Found,
    /// The compiled-in default: nothing found from the current directory.
    Default,
}

/// The spec a command reads, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub origin: Origin,
}

/// The spec to read: `given`, else the nearest `images/spec.yml` from `cwd` up to the
/// repository's root, else `default`.
pub fn locate(given: Option<&Path>, cwd: &Path, default: &Path) -> Located {
    if let Some(path) = given {
        return Located { path: path.to_path_buf(), origin: Origin::Given };
    }
    for dir in cwd.ancestors() {
        let candidate = dir.join("images").join("spec.yml");
        if candidate.is_file() {
            let path = candidate.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(candidate);
            return Located { path, origin: Origin::Found };
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    Located { path: default.to_path_buf(), origin: Origin::Default }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.origin {
            Origin::Given => "--spec",
            Origin::Found => "found from the current directory",
            Origin::Default => {
                "the default of this xtask build: no images/spec.yml from the current directory up to its repository's root"
            }
        };
        write!(f, "{} ({how})", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::fs;

    /// `repo/` (a repository with a spec), `outside/` (no spec), and `nested/inner/`: a repository
    /// of its own inside a folder that has a spec.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for folder in
            ["repo/.git", "repo/images/app", "repo/sub/deeper", "outside/images", "nested/images", "nested/inner/.git"]
        {
            fs::create_dir_all(dir.path().join(folder)).unwrap();
        }
        fs::write(dir.path().join("repo/images/spec.yml"), "").unwrap();
        fs::write(dir.path().join("nested/images/spec.yml"), "").unwrap();
        dir
    }

    #[rstest]
    #[case::at_the_root("repo", "images/spec.yml", Origin::Found)]
    #[case::in_the_images_folder("repo/images/app", "repo/images/spec.yml", Origin::Found)]
    #[case::in_a_subfolder("repo/sub/deeper", "repo/images/spec.yml", Origin::Found)]
    #[case::outside_any_stack("outside", "default/spec.yml", Origin::Default)]
    #[case::not_past_a_repository_root("nested/inner", "default/spec.yml", Origin::Default)]
    fn finds_the_nearest_spec(#[case] cwd: &str, #[case] expected: &str, #[case] origin: Origin) {
        let dir = tree();
        let default = Path::new("default/spec.yml");
        let found = locate(None, &dir.path().join(cwd), default);
        assert_eq!(found.origin, origin);
        let shown = found.path.strip_prefix(dir.path()).unwrap_or(&found.path);
        assert_eq!(shown, Path::new(expected));
    }

    #[test]
    fn a_given_path_wins() {
        let dir = tree();
        let found = locate(Some(Path::new("x.yml")), &dir.path().join("repo"), Path::new("d"));
        assert_eq!(found, Located { path: "x.yml".into(), origin: Origin::Given });
        assert_eq!(found.to_string(), "x.yml (--spec)");
    }
}
