//! Where things are: the repository this tool was compiled in, the stack's default spec, and
//! the folder commands keep their records and logs in (`target/xtask/` next to the spec's
//! folder). Also how much work runs at once by default, and how the records there are written.

use std::path::{Path, PathBuf};

use crate::spec::Spec;

/// The repository this xtask was compiled in.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// The stack's spec in the repository this xtask was compiled in.
pub fn default_spec() -> PathBuf {
    project_root().join("images").join("spec.yml")
}

/// Where commands keep their records and logs: `target/xtask/` next to the spec's folder.
pub fn work_dir(spec: &Spec) -> PathBuf {
    spec.dir.parent().map(Path::to_path_buf).unwrap_or_default().join("target").join("xtask")
}

/// Per-image build logs.
pub fn build_logs(spec: &Spec) -> PathBuf {
    work_dir(spec).join("logs")
}

/// The number of CPUs, at least `min`: how many images build, or run commands, at once.
pub fn parallelism(min: usize) -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(min)
}

/// Writes `value` as pretty JSON (with a final newline) to `path`, making its folder first:
/// the records commands leave for the CI jobs that follow.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)? + "\n";
    std::fs::write(path, text)
}
