//! External base images: use the local one, else pull it, else make it from the spec's recipe
//! (debootstrap into a temporary folder, or a root file system tarball, imported as an image),
//! else one clear error naming the base and the fix. Runs host tools through xshell; reaches the engine through [`Engine`].

use std::path::Path;
use std::time::Duration;

use xshell::{cmd, Shell};

use crate::engine::{Engine, EngineError};
use crate::progress::Reporter;
use crate::spec::{Base, Debootstrap};

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base `{name}` ({reference}) is not on the engine and could not be pulled ({pull_error}); the spec has no recipe to make it\n  hint: load it (`docker load`, `docker pull` where a registry is reachable), or add a `recipe` to bases.{name} in the spec")]
    Unavailable { name: String, reference: String, pull_error: String },
    #[error("base `{name}`: making it with debootstrap needs root (it creates device files and sets owners)\n  hint: run as root, or load the image `{reference}` another way")]
    NotRoot { name: String, reference: String },
    #[error("base `{name}`: `debootstrap` is not installed\n  hint: install it (`apt-get install debootstrap`), or load the image `{reference}` another way")]
    NoDebootstrap { name: String, reference: String },
    #[error("base `{name}`: `{command}` failed: {reason}\n  hint: the full output is in {log}")]
    RecipeFailed { name: String, command: String, reason: String, log: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A base image present on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub reference: String,
    pub id: String,
}

/// Makes sure `base` is on the engine; returns its ID.
pub async fn ensure(
    engine: &Engine,
    base: &Base,
    spec_dir: &Path,
    reporter: &Reporter,
) -> Result<BaseImage, BaseError> {
    let reference = base.reference.to_string();
    if let Some(image) = engine.image(&reference).await? {
        return Ok(BaseImage { reference, id: image.id.unwrap_or_default() });
    }
    reporter.note(&format!("base {}: {reference} is not on the engine; pulling it", base.name));
    let pull_error = match tokio::time::timeout(
        Duration::from_secs(120),
        engine.pull(&reference, crate::credentials::for_reference(&reference).as_ref()),
    )
    .await
    {
        Ok(Ok(())) => {
            let image = engine.image(&reference).await?.ok_or_else(|| BaseError::Unavailable {
                name: base.name.clone(),
                reference: reference.clone(),
                pull_error: "the pull reported success but the image is absent".into(),
            })?;
            return Ok(BaseImage { reference, id: image.id.unwrap_or_default() });
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => "no answer within 120 s".to_string(),
    };
    let Some(recipe) = &base.recipe else {
        return Err(BaseError::Unavailable { name: base.name.clone(), reference, pull_error });
    };
    let root_fs = match (&recipe.debootstrap, &recipe.import) {
        (Some(debootstrap_recipe), _) => {
            reporter.note(&format!(
                "base {}: the pull failed ({}); making it with debootstrap",
                base.name,
                first_line(&pull_error)
            ));
            debootstrap(&base.name, &reference, debootstrap_recipe, reporter).await?
        }
        (None, Some(file)) => {
            let path = spec_dir.join(file);
            reporter.note(&format!(
                "base {}: the pull failed ({}); importing {}",
                base.name,
                first_line(&pull_error),
                path.display()
            ));
            tokio::fs::read(&path).await.map_err(|error| BaseError::RecipeFailed {
                name: base.name.clone(),
                command: format!("reading {}", path.display()),
                reason: error.to_string(),
                log: String::new(),
            })?
        }
        (None, None) => return Err(BaseError::Unavailable { name: base.name.clone(), reference, pull_error }),
    };
    let (repository, tag) = split_tag(&base.reference);
    reporter.note(&format!("base {}: importing {} MB as {reference}", base.name, root_fs.len() / 1_000_000));
    let id = engine.import(root_fs, &repository, &tag).await?;
    reporter.note(&format!("base {}: made {reference} ({})", base.name, &id[..id.len().min(19)]));
    Ok(BaseImage { reference, id })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn split_tag(reference: &crate::reference::Reference) -> (String, String) {
    (reference.repository(), reference.tag.clone().unwrap_or_else(|| "latest".into()))
}

/// Runs debootstrap into a temporary folder and returns the root file system as a tar archive.
async fn debootstrap(
    name: &str,
    reference: &str,
    recipe: &Debootstrap,
    reporter: &Reporter,
) -> Result<Vec<u8>, BaseError> {
    let name = name.to_string();
    let reference = reference.to_string();
    let recipe = recipe.clone();
    let log = reporter.log_path(&format!("base-{name}"));
    let log_text = log.display().to_string();
    if let Some(folder) = log.parent() {
        let _ = std::fs::create_dir_all(folder);
    }
    tokio::task::spawn_blocking(move || {
        let failed = |command: &str, reason: String| BaseError::RecipeFailed {
            name: name.clone(),
            command: command.into(),
            reason,
            log: log_text.clone(),
        };
        let sh = Shell::new().map_err(|e| failed("a shell", e.to_string()))?;
        let uid = cmd!(sh, "id -u").quiet().read().map_err(|e| failed("id -u", e.to_string()))?;
        if uid.trim() != "0" {
            return Err(BaseError::NotRoot { name, reference });
        }
        if cmd!(sh, "sh -c 'command -v debootstrap'").quiet().ignore_stdout().ignore_stderr().run().is_err() {
            return Err(BaseError::NoDebootstrap { name, reference });
        }
        let dir = tempfile::tempdir().map_err(|e| failed("a temporary folder", e.to_string()))?;
        let target = dir.path().join("rootfs");
        let mut args = vec![format!("--variant={}", recipe.variant)];
        if !recipe.include.is_empty() {
            args.push(format!("--include={}", recipe.include.join(",")));
        }
        if !recipe.components.is_empty() {
            args.push(format!("--components={}", recipe.components.join(",")));
        }
        let suite = &recipe.suite;
        let mirror = &recipe.mirror;
        let output = cmd!(sh, "debootstrap {args...} {suite} {target} {mirror}")
            .quiet()
            .ignore_status()
            .output()
            .map_err(|e| failed("debootstrap", e.to_string()))?;
        let _ = std::fs::write(&log, [output.stdout.as_slice(), output.stderr.as_slice()].concat());
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stderr);
            let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").to_string();
            return Err(failed("debootstrap", reason));
        }
        // Leave no apt lists or caches in the image.
        for folder in ["var/lib/apt/lists", "var/cache/apt/archives"] {
            let path = target.join(folder);
            if let Ok(entries) = std::fs::read_dir(&path) {
                for entry in entries.flatten() {
                    if entry.path().is_file() {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        let tar = cmd!(sh, "tar --numeric-owner -C {target} -c .")
            .quiet()
            .output()
            .map_err(|e| failed("tar", e.to_string()))?;
        Ok(tar.stdout)
    })
    .await
    .map_err(|e| BaseError::RecipeFailed {
        name: "?".into(),
        command: "debootstrap".into(),
        reason: e.to_string(),
        log: String::new(),
    })?
}
