//! Helpers shared by the integration tests: a copy of the fixture stack in a temporary
//! directory, which a test may edit, and a real git repository around it.

#![allow(dead_code)]

pub mod engine;
pub mod registry;
pub mod second_engine;

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use xshell::{cmd, Shell};

pub fn fixture_dir() -> PathBuf {
    xtask::fixture::source_dir()
}

/// A copy of the fixture stack: `<tmp>/images/spec.yml` and its image folders.
pub struct Stack {
    pub dir: TempDir,
}

impl Stack {
    pub fn new() -> Stack {
        let stack = Stack::empty();
        xtask::fixture::copy_dir(&fixture_dir(), stack.root()).unwrap();
        stack
    }

    /// An empty temporary folder.
    pub fn empty() -> Stack {
        Stack { dir: tempfile::tempdir().unwrap() }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn spec_file(&self) -> PathBuf {
        self.root().join("images/spec.yml")
    }

    pub fn spec_text(&self) -> String {
        fs::read_to_string(self.spec_file()).unwrap()
    }

    /// Replaces `from` by `to` in the spec; `from` must occur.
    pub fn edit_spec(&self, from: &str, to: &str) {
        let text = self.spec_text();
        assert!(text.contains(from), "the fixture spec has no `{from}`");
        fs::write(self.spec_file(), text.replacen(from, to, 1)).unwrap();
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    pub fn remove(&self, relative: &str) {
        let path = self.root().join(relative);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }

    /// Makes the stack a git repository with one commit on `main`.
    pub fn git_init(&self) -> Shell {
        let sh = Shell::new().unwrap();
        sh.change_dir(self.root());
        cmd!(sh, "git init -q -b main").run().unwrap();
        cmd!(sh, "git config user.email test@example.org").run().unwrap();
        cmd!(sh, "git config user.name Test").run().unwrap();
        cmd!(sh, "git config commit.gpgsign false").run().unwrap();
        self.commit(&sh, "fixture stack");
        sh
    }

    pub fn commit(&self, sh: &Shell, message: &str) {
        cmd!(sh, "git add -A").quiet().run().unwrap();
        cmd!(sh, "git commit -q -m {message}").quiet().run().unwrap();
    }
}
