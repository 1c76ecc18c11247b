//! The image acceptance-test harness: discovers the tests under `images/` and runs them
//! against real containers through libtest-mimic (`cargo test` at the workspace root).
//!
//! This crate is the home of that work (see ARCHITECTURE.md); today it only names where the
//! tests of each image live, so the layout is fixed before the runner arrives.

use std::path::{Path, PathBuf};

/// The folder holding an image's own tests: `<image dir>/tests`.
pub fn image_tests_dir(image_dir: &Path) -> PathBuf {
    image_dir.join("tests")
}

/// The folder holding the tests common to every image: `images/tests`.
pub fn common_tests_dir(spec_dir: &Path) -> PathBuf {
    spec_dir.join("tests")
}
