//! An image's documents as files: `<stem>.cdx.json`, `<stem>.spdx.json` and
//! `<stem>.provenance.json` in a folder (`target/xtask/sbom/` unless told otherwise), written by
//! `cargo xtask sbom` where the image is and read by `release` (and promotion) where it is not,
//! as the fanned-out CI hands them from the image's job to the release job.

use std::path::{Path, PathBuf};

use super::collect::Documents;
use super::sbom::Format;

const PROVENANCE: &str = "provenance.json";

/// The files of `stem` in `dir`, for `formats`, and the provenance.
pub fn paths(dir: &Path, stem: &str, formats: &[Format]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = formats.iter().map(|f| dir.join(format!("{stem}.{}", f.extension()))).collect();
    out.push(dir.join(format!("{stem}.{PROVENANCE}")));
    out
}

/// Writes the documents of `stem` into `dir`; returns the paths written.
pub fn write(
    dir: &Path,
    stem: &str,
    documents: &Documents,
    formats: &[Format],
) -> Result<Vec<PathBuf>, super::SupplyError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| super::SupplyError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    let mut written = Vec::new();
    for format in formats {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        std::fs::write(&path, documents.sbom(*format)).map_err(failed(&path))?;
        written.push(path);
    }
    let path = dir.join(format!("{stem}.{PROVENANCE}"));
    let text = serde_json::to_string_pretty(&documents.provenance).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(failed(&path))?;
    written.push(path);
    Ok(written)
}

/// The documents of `stem` from the first of `dirs` that has all three and whose subject is
/// `digest`.
pub fn read(dirs: &[PathBuf], stem: &str, digest: &str) -> Option<Documents> {
    dirs.iter().find_map(|dir| {
        let text = |name: String| std::fs::read_to_string(dir.join(name)).ok();
        let documents = Documents {
            cyclonedx: text(format!("{stem}.{}", Format::Cyclonedx.extension()))?,
            spdx: text(format!("{stem}.{}", Format::Spdx.extension()))?,
            provenance: serde_json::from_str(&text(format!("{stem}.{PROVENANCE}"))?).ok()?,
        };
        (documents.subject_digest().as_deref() == Some(digest)).then_some(documents)
    })
}
