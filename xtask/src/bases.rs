//! External bases, as stack artifacts: each base has a pin (`<registry>/<namespace>/<base>:
//! inputs-<digest>`, its digest from the repository alone, see [`crate::identity`]). A base is
//! taken from the engine under its pin, else pulled by its pin from the stack's registry, else
//! had as the spec says (the local image, a pull of its reference, or its recipe) and tagged
//! under its pin, then pushed with the stack's pins when asked. So the first machine that makes
//! a base decides it, and every other machine (a fresh CI runner, Docker Desktop with no
//! debootstrap, a user who is not root) takes that one from the registry.
//!
//! Recipes are reproducible where they can be: the root file system is archived sorted, with
//! one time (`SOURCE_DATE_EPOCH`, from the base's refresh key) and numeric owners, without
//! logs, caches, machine-id or the ld.so cache, and loaded with an image configuration this
//! module writes (fixed creation time, the right architecture), not `docker import`'s. Host
//! tools run through xshell; the engine is reached through [`Engine`].

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::cache::RegistryCache;
use crate::engine::{Engine, EngineError, ImageInspect};
use crate::identity::Pin;
use crate::platform::{Platform, Runs};
use crate::progress::Reporter;
use crate::spec::{Base, Debootstrap};

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base `{name}` ({reference}) is not on the engine, not in the stack's registry under its pin, and could not be pulled ({pull_error}); the spec has no recipe to make it\n  hint: load it (`docker load`, `docker pull` where a registry is reachable), or add a `recipe` to bases.{name} in the spec")]
    Unavailable { name: String, reference: String, pull_error: String },
    #[error("base `{name}`: making it with debootstrap needs root (it creates device files and sets owners)\n  hint: run as root, or get the base from the stack's registry (`cargo xtask build --registry`, after a machine that can make it pushed it with `--push`), or load the image `{reference}` another way")]
    NotRoot { name: String, reference: String },
    #[error("base `{name}`: `debootstrap` is not installed\n  hint: install it (`apt-get install debootstrap`), or get the base from the stack's registry (`cargo xtask build --registry`, after a machine that can make it pushed it with `--push`), or load the image `{reference}` another way")]
    NoDebootstrap { name: String, reference: String },
    #[error("base `{name}`: `{command}` failed: {reason}\n  hint: the full output is in {log}")]
    RecipeFailed { name: String, command: String, reason: String, log: String },
    #[error("base `{name}`: pushing {reference} failed: {source}")]
    Push { name: String, reference: String, source: EngineError },
    #[error(transparent)]
    WrongArchitecture(Box<WrongArchitecture>),
    #[error("base `{name}`: its recipe must run {platform} programs (debootstrap's second stage), and this host can run them neither natively nor under QEMU\n  hint: {how}; or get the base from the stack's registry, pushed by a machine that can make it")]
    CannotRun { name: String, platform: String, how: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A base image for another platform than the one it is wanted for.
#[derive(Debug, thiserror::Error)]
#[error("base `{name}`: {reference} is for {found}, not {platform}\n  hint: {hint}")]
pub struct WrongArchitecture {
    pub name: String,
    pub reference: String,
    pub found: String,
    pub platform: Platform,
    pub hint: String,
}

/// A base image present on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// What children are built `FROM`: the base's pin.
    pub reference: String,
    pub id: String,
}

/// A base wanted for one platform, under its pin.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub base: &'a Base,
    pub platform: &'a Platform,
    pub pin: &'a Pin,
    /// The same pin in the spec's own namespace, when this run pushes elsewhere.
    pub fallback: Option<&'a Pin>,
    /// The spec's folder (import recipes are relative to it).
    pub spec_dir: &'a Path,
}

impl Wanted<'_> {
    /// `image` carries this platform's architecture (the engine reports the OCI names).
    fn fits(&self, image: &ImageInspect) -> bool {
        image.architecture.as_deref() == Some(self.platform.architecture.as_str())
            && (self.platform.variant.is_none() || image.variant == self.platform.variant)
    }

    fn wrong_architecture(&self, reference: &str, image: &ImageInspect, hint: &str) -> BaseError {
        BaseError::WrongArchitecture(Box::new(WrongArchitecture {
            name: self.base.name.clone(),
            reference: reference.to_string(),
            found: format!("{}/{}", image.os.as_deref().unwrap_or("?"), image.architecture.as_deref().unwrap_or("?")),
            platform: self.platform.clone(),
            hint: hint.to_string(),
        }))
    }
}

/// Makes sure the base is on the engine under its pin (or under the fallback); pushes the pin
/// when `push` and the registry lacks it.
pub async fn ensure_pinned(
    engine: &Engine,
    wanted: Wanted<'_>,
    registry: &RegistryCache,
    push: bool,
    reporter: &Reporter,
) -> Result<BaseImage, BaseError> {
    let (base, pin) = (wanted.base, wanted.pin);
    let mut pushed_already = false;
    for candidate in std::iter::once(pin).chain(wanted.fallback) {
        let reference = candidate.reference();
        let (in_registry, notice) = registry.has(candidate).await;
        if let Some(notice) = notice {
            reporter.note(&notice);
        }
        pushed_already |= in_registry && candidate == pin;
        if let Some(image) = engine.image(&reference).await? {
            if !wanted.fits(&image) {
                return Err(wanted.wrong_architecture(
                    &reference,
                    &image,
                    "remove that tag (`docker rmi`), and build again to make the base anew",
                ));
            }
            let id = image.id.unwrap_or_default();
            if push && candidate == pin && !in_registry && registry.is_on() {
                push_pin(engine, base, pin, &id, reporter).await?;
            }
            return Ok(BaseImage { reference, id });
        }
        if in_registry {
            reporter.note(&format!("base {}: pulling {reference} from the stack's registry", base.name));
            let credentials = crate::credentials::for_reference(&reference);
            match engine.pull(&reference, credentials.as_ref(), Some(wanted.platform)).await {
                Ok(()) => {
                    if let Some(image) = engine.image(&reference).await? {
                        return Ok(BaseImage { reference, id: image.id.unwrap_or_default() });
                    }
                }
                Err(error) => {
                    reporter.note(&format!("base {}: pulling {reference} failed ({error}); making it", base.name))
                }
            }
        }
    }
    let id = ensure(engine, wanted, reporter).await?;
    engine.tag(&id, &pin.repository, &pin.tag()).await?;
    if push && !pushed_already && registry.is_on() {
        push_pin(engine, base, pin, &id, reporter).await?;
    }
    Ok(BaseImage { reference: pin.reference(), id })
}

async fn push_pin(engine: &Engine, base: &Base, pin: &Pin, id: &str, reporter: &Reporter) -> Result<(), BaseError> {
    let reference = pin.reference();
    reporter.note(&format!("base {}: pushing {reference}", base.name));
    let pusher = crate::release::EnginePusher { engine, credentials: crate::credentials::for_reference(&reference) };
    let backoff = crate::release::Backoff::default();
    crate::release::publish::push_with_retries(&pusher, id, &pin.repository, &pin.tag(), backoff, &mut |_| {})
        .await
        .map_err(|source| BaseError::Push { name: base.name.clone(), reference, source })
}

/// Has the base the way the spec says: its reference on the engine (when it carries the
/// platform's architecture), else pulled for the platform, else made by its recipe; returns the
/// image ID. A reference that names another platform's image here is left as it is: neither
/// pulled over nor retagged.
async fn ensure(engine: &Engine, wanted: Wanted<'_>, reporter: &Reporter) -> Result<String, BaseError> {
    let base = wanted.base;
    let reference = base.reference.to_string();
    let here = engine.image(&reference).await?;
    let pull_error = match &here {
        Some(image) if wanted.fits(image) => return Ok(image.id.clone().unwrap_or_default()),
        Some(image) => format!(
            "{reference} here is for {}, and pulling it for {} would move that tag",
            image.architecture.as_deref().unwrap_or("another platform"),
            wanted.platform
        ),
        None => match pull_reference(engine, &wanted, &reference, reporter).await? {
            Ok(id) => return Ok(id),
            Err(pull_error) => pull_error,
        },
    };
    if base.recipe.is_none() {
        return Err(BaseError::Unavailable { name: base.name.clone(), reference, pull_error });
    }
    reporter.note(&format!(
        "base {} for {}: {}; making it by its recipe",
        base.name,
        wanted.platform,
        first_line(&pull_error)
    ));
    let image = recipe_image(base, wanted.pin, wanted.platform, wanted.spec_dir, reporter).await?;
    let pin_reference = wanted.pin.reference();
    let mut tags = vec![pin_reference.clone()];
    if here.is_none() {
        tags.push(reference.clone());
    }
    reporter.note(&format!(
        "base {}: loading {} MB as {}",
        base.name,
        image.root_fs.len() / 1_000_000,
        tags.join(", ")
    ));
    let id = engine.load(image.archive(&tags), &pin_reference).await?;
    let loaded = engine.image(&id).await?.unwrap_or_default();
    if !wanted.fits(&loaded) {
        return Err(wanted.wrong_architecture(&pin_reference, &loaded, "the image configuration the recipe wrote names the wrong architecture: this is a bug of the tool; please report it"));
    }
    reporter.note(&format!(
        "base {}: made {pin_reference} for {} ({})",
        base.name,
        wanted.platform,
        &id[..id.len().min(19)]
    ));
    Ok(id)
}

/// Pulls the base's reference for the platform: the image ID, or why it could not be had.
async fn pull_reference(
    engine: &Engine,
    wanted: &Wanted<'_>,
    reference: &str,
    reporter: &Reporter,
) -> Result<Result<String, String>, BaseError> {
    reporter.note(&format!("base {}: {reference} is not on the engine; pulling it", wanted.base.name));
    let credentials = crate::credentials::for_reference(reference);
    let pulled = tokio::time::timeout(
        Duration::from_secs(120),
        engine.pull(reference, credentials.as_ref(), Some(wanted.platform)),
    )
    .await;
    Ok(match pulled {
        Ok(Ok(())) => match engine.image(reference).await? {
            Some(image) if wanted.fits(&image) => Ok(image.id.unwrap_or_default()),
            Some(image) => Err(wanted.wrong_architecture(reference, &image, "").to_string()),
            None => Err("the pull reported success but the image is absent".to_string()),
        },
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 120 s".to_string()),
    })
}

/// Runs `base`'s recipe (debootstrap, or reading the tarball) and returns the image it makes,
/// not yet loaded: what `cargo xtask bench base-recipe` runs twice to compare.
pub async fn recipe_image(
    base: &Base,
    pin: &Pin,
    platform: &Platform,
    spec_dir: &Path,
    reporter: &Reporter,
) -> Result<RootFsImage, BaseError> {
    let reference = base.reference.to_string();
    let unavailable = || BaseError::Unavailable {
        name: base.name.clone(),
        reference: reference.clone(),
        pull_error: "not tried".into(),
    };
    let recipe = base.recipe.as_ref().ok_or_else(unavailable)?;
    let epoch = source_date_epoch(base.refresh.as_deref());
    let (root_fs, created_by) = match (&recipe.debootstrap, &recipe.import) {
        (Some(debootstrap_recipe), _) => {
            if platform.host_runs() == Runs::No {
                return Err(BaseError::CannotRun {
                    name: base.name.clone(),
                    platform: platform.to_string(),
                    how: platform.how_to_run(),
                });
            }
            let tar = debootstrap(&base.name, &reference, debootstrap_recipe, platform, epoch, reporter).await?;
            let (d, arch) = (debootstrap_recipe, platform.debian_architecture());
            (tar, format!("debootstrap --variant={} --arch={arch} {} {}", d.variant, d.suite, d.mirror))
        }
        (None, Some(file)) => {
            let file = &crate::identity::import_file(file, platform);
            let path = spec_dir.join(file);
            let failed = |reason: String| BaseError::RecipeFailed {
                name: base.name.clone(),
                command: format!("reading {}", path.display()),
                reason,
                log: String::new(),
            };
            let tar = tokio::fs::read(&path).await.map_err(|error| failed(error.to_string()))?;
            if tar.starts_with(&[0x1f, 0x8b]) {
                return Err(failed(format!(
                    "{} is compressed; an import recipe takes an uncompressed tar archive (`gunzip` it)",
                    path.display()
                )));
            }
            (tar, format!("import {file}"))
        }
        (None, None) => return Err(unavailable()),
    };
    Ok(RootFsImage { root_fs, epoch, platform: platform.clone(), created_by, inputs: pin.digest.clone() })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// `SOURCE_DATE_EPOCH` for a recipe: the first second of the refresh key's date (`2026-11` or
/// `2026-11-15`), else 0. Every file of the root file system gets this time.
pub fn source_date_epoch(refresh: Option<&str>) -> i64 {
    let Some(refresh) = refresh else { return 0 };
    let parts: Vec<&str> = refresh.trim().split('-').collect();
    let number = |i: usize, default: u8| parts.get(i).map_or(Some(default as u32), |p| p.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) =
        (parts.first().and_then(|y| y.parse::<i32>().ok()), number(1, 1), number(2, 1))
    else {
        return 0;
    };
    let Ok(month) = time::Month::try_from(month as u8) else { return 0 };
    time::Date::from_calendar_date(year, month, day as u8)
        .map(|date| date.midnight().assume_utc().unix_timestamp())
        .unwrap_or(0)
}

/// A root file system made into an image, with a configuration written here rather than by the
/// engine: the same files and the same epoch give the same image ID on every machine.
pub struct RootFsImage {
    /// An uncompressed tar archive.
    pub root_fs: Vec<u8>,
    pub epoch: i64,
    /// What the configuration says it runs on (`architecture`, `os`, `variant`).
    pub platform: Platform,
    pub created_by: String,
    /// The base's digest, kept as the `xtask.stack.inputs` label.
    pub inputs: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig<'a> {
    env: [&'a str; 1],
    cmd: [&'a str; 1],
    labels: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    created: String,
    config: ContainerConfig<'a>,
    rootfs: RootFs,
    history: [History<'a>; 1],
}

#[derive(Serialize)]
struct RootFs {
    r#type: &'static str,
    diff_ids: [String; 1],
}

#[derive(Serialize)]
struct History<'a> {
    created: String,
    created_by: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry<'a> {
    config: String,
    repo_tags: &'a [String],
    layers: [String; 1],
}

impl RootFsImage {
    /// The image configuration (its sha256 is the image ID).
    pub fn config(&self) -> Vec<u8> {
        let created = time::OffsetDateTime::from_unix_timestamp(self.epoch)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
        let config = ImageConfig {
            architecture: &self.platform.architecture,
            os: &self.platform.os,
            variant: self.platform.variant.as_deref(),
            created: created.clone(),
            config: ContainerConfig {
                env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                cmd: ["sh"],
                labels: [(crate::labels::INPUTS, self.inputs.as_str())].into_iter().collect(),
            },
            rootfs: RootFs { r#type: "layers", diff_ids: [format!("sha256:{:x}", Sha256::digest(&self.root_fs))] },
            history: [History { created, created_by: &self.created_by }],
        };
        serde_json::to_vec(&config).unwrap_or_default()
    }

    /// The image as `docker load` reads it (`manifest.json`, the configuration, the layer),
    /// tagged `tags`.
    pub fn archive(&self, tags: &[String]) -> Vec<u8> {
        let config = self.config();
        let config_name = format!("{:x}.json", Sha256::digest(&config));
        let layer_name = format!("{:x}/layer.tar", Sha256::digest(&self.root_fs));
        let manifest = serde_json::to_vec(&[ManifestEntry {
            config: config_name.clone(),
            repo_tags: tags,
            layers: [layer_name.clone()],
        }])
        .unwrap_or_default();
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in
            [("manifest.json", manifest.as_slice()), (&config_name, &config), (&layer_name, &self.root_fs)]
        {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            let _ = tar.append_data(&mut header, name, bytes);
        }
        tar.into_inner().unwrap_or_default()
    }
}

/// What debootstrap leaves that differs from run to run and belongs in no image.
const UNREPRODUCIBLE: &[&str] = &[
    "var/log",
    "var/cache/ldconfig/aux-cache",
    "var/cache/apt/archives",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/apt/lists",
    "var/lib/dbus/machine-id",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
];

/// Removes the files of `UNREPRODUCIBLE` (folders keep their place, empty), and empties the
/// files a container engine provides at run time.
fn scrub(root: &Path) {
    for relative in UNREPRODUCIBLE {
        let path = root.join(relative);
        if path.is_dir() {
            remove_files_under(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    for relative in ["etc/machine-id", "etc/hostname", "etc/resolv.conf"] {
        let path = root.join(relative);
        if path.is_file() {
            let _ = std::fs::write(&path, "");
        }
    }
}

fn remove_files_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => remove_files_under(&path),
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Runs debootstrap into a temporary folder and returns the root file system as a
/// reproducible tar archive.
async fn debootstrap(
    name: &str,
    reference: &str,
    recipe: &Debootstrap,
    platform: &Platform,
    epoch: i64,
    reporter: &Reporter,
) -> Result<Vec<u8>, BaseError> {
    let (name, reference, recipe) = (name.to_string(), reference.to_string(), recipe.clone());
    let arch = platform.debian_architecture();
    let log = reporter.log_path(&format!("base-{name}-{arch}"));
    let log_text = log.display().to_string();
    if let Some(folder) = log.parent() {
        let _ = std::fs::create_dir_all(folder);
    }
    let task_name = name.clone();
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
        // A foreign architecture runs its second stage through QEMU (a binfmt handler).
        let mut args = vec![format!("--variant={}", recipe.variant), format!("--arch={arch}")];
        if !recipe.include.is_empty() {
            args.push(format!("--include={}", recipe.include.join(",")));
        }
        if !recipe.components.is_empty() {
            args.push(format!("--components={}", recipe.components.join(",")));
        }
        let (suite, mirror, epoch_text) = (&recipe.suite, &recipe.mirror, epoch.to_string());
        let output = cmd!(sh, "debootstrap {args...} {suite} {target} {mirror}")
            .env("SOURCE_DATE_EPOCH", &epoch_text)
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
        scrub(&target);
        let mtime = format!("--mtime=@{epoch}");
        let tar = cmd!(sh, "tar --sort=name {mtime} --numeric-owner --format=gnu -C {target} -c .")
            .quiet()
            .output()
            .map_err(|e| failed("tar", e.to_string()))?;
        Ok(tar.stdout)
    })
    .await
    .map_err(|e| BaseError::RecipeFailed {
        name: task_name,
        command: "debootstrap".into(),
        reason: e.to_string(),
        log: String::new(),
    })?
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(None, 0)]
    #[case(Some("2026-11"), 1_793_491_200)]
    #[case(Some("2026-11-15"), 1_794_700_800)]
    #[case(Some("1970-01-01"), 0)]
    #[case(Some("weekly"), 0)]
    #[case(Some("2026-13"), 0)]
    fn the_epoch_comes_from_the_refresh_key(#[case] refresh: Option<&str>, #[case] epoch: i64) {
        assert_eq!(source_date_epoch(refresh), epoch);
    }

    #[test]
    fn the_same_files_make_the_same_image() {
        let image = |root_fs: &[u8]| RootFsImage {
            root_fs: root_fs.to_vec(),
            epoch: 1_793_491_200,
            platform: Platform::parse("linux/amd64").unwrap(),
            created_by: "test".into(),
            inputs: "sha256:1".into(),
        };
        assert_eq!(image(b"files").config(), image(b"files").config());
        assert_ne!(image(b"files").config(), image(b"other").config());
        let config: serde_json::Value = serde_json::from_slice(&image(b"files").config()).unwrap();
        assert_eq!(config["created"], "2026-11-01T00:00:00Z");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["Labels"]["xtask.stack.inputs"], "sha256:1");
        assert_eq!(image(b"files").archive(&["a:b".into()]), image(b"files").archive(&["a:b".into()]));
    }
}
