//! The image spec (`images/spec.yml`): the one file that declares the whole stack.
//!
//! [`Spec::load`] reads, parses and validates it; what it returns is known to be consistent:
//! every name resolves, no cycle, every Dockerfile's `FROM` agrees with the declared parent.
//! The format is documented in `docs/spec.md`. This module and its children only read files;
//! they never run git or talk to an engine.

pub mod diff;
pub mod find;
pub mod input;
pub mod limits;
mod locate;
mod raw;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use globset::GlobSet;
use indexmap::IndexMap;

pub use raw::{BuildArgs, Debootstrap, RawRecipe as Recipe, Security};

use crate::diagnostic::Diagnostics;
use crate::platform::Platform;
use crate::reference::Reference;

/// The name of the implicit variant of a stack that declares none.
pub const DEFAULT_VARIANT: &str = "default";
/// Written in an `import` recipe's file name, it stands for the platform's suffix
/// (`rootfs-{arch}.tar` is `rootfs-arm64.tar` for `linux/arm64`).
pub const ARCH_PLACEHOLDER: &str = "{arch}";
/// The build argument that carries the parent image when the spec does not name another.
pub const DEFAULT_PARENT_ARG: &str = "BASE_IMAGE";

/// A validated image stack.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file, as it was given.
    pub file: PathBuf,
    /// The directory holding the spec file; image directories are relative to it.
    pub dir: PathBuf,
    pub stack: Stack,
    /// Build arguments for every image.
    pub build_args: BuildArgs,
    /// In declaration order; the first is the default variant.
    pub variants: Vec<Variant>,
    pub bases: IndexMap<String, Base>,
    pub images: IndexMap<String, Image>,
    /// Documentation commands by name: shell command lines run inside an image.
    pub doc_commands: IndexMap<String, String>,
    /// Version tag commands by name: their output, trimmed, makes the tag `<name>-<output>`.
    pub version_tags: IndexMap<String, String>,
    pub changes: ChangeRules,
    /// The pending security updates check; `None`: no security trial.
    pub security: Option<Security>,
}

/// Where the stack's images are published and how they are tagged.
#[derive(Debug, Clone)]
pub struct Stack {
    pub registry: String,
    pub namespace: String,
    pub tag_prefix: String,
    /// The build argument through which each image receives its parent (`ARG BASE_IMAGE`).
    pub parent_arg: String,
    /// A CA bundle on the build host that `RUN` steps may trust; used when the file exists.
    pub ca_bundle: Option<PathBuf>,
    /// Layer cache sources for every image, with `{repository}` and `{tag_prefix}` to fill in.
    pub cache_from: Vec<String>,
    /// Where builds look for images that are already built.
    pub cache: Cache,
    /// When `STACK_NAMESPACE` moved this run's images elsewhere (a pull request's namespace):
    /// the spec's own namespace, where built images are still looked for, never pushed to.
    pub fallback_namespace: Option<String>,
    /// The platforms images are built for, in the spec's order: those `stack.platforms`
    /// declares, else the host's alone.
    pub platforms: Vec<Platform>,
    /// Whether `stack.platforms` is written: builds then ask the engine for each node's platform.
    pub platforms_declared: bool,
}

/// Where builds look for an image whose pin they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// This engine only.
    Local,
    /// This engine, then the stack's registry (manifests only: nothing up to date is pulled).
    Registry,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    /// Appended to image names (`-gpu`); empty for the default variant unless the spec says.
    pub suffix: String,
    pub description: Option<String>,
    pub build_args: BuildArgs,
    /// Its images are tested on a GPU (CI runs their GPU trials on a GPU runner).
    pub gpu: bool,
    /// The platforms its images are built for, when it says (a subset of the stack's).
    pub platforms: Option<Vec<Platform>>,
}

/// An image from outside the stack, with a recipe to make it when it cannot be pulled.
#[derive(Debug, Clone)]
pub struct Base {
    pub name: String,
    pub reference: Reference,
    pub description: Option<String>,
    pub recipe: Option<Recipe>,
    /// Part of the base's identity; bumped to make the base again on purpose.
    pub refresh: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub description: Option<String>,
    /// The build context, relative to the spec's directory.
    pub dir: PathBuf,
    /// The Dockerfile, relative to the spec's directory.
    pub dockerfile: PathBuf,
    /// The parent in each variant the image is built in.
    pub parents: BTreeMap<String, Parent>,
    /// Further images (of the stack or bases) the build reads from, e.g. with `COPY --from`.
    pub depends_on: Vec<String>,
    pub build_args: BuildArgs,
    /// The variants this image is built in, in the stack's order.
    pub variants: Vec<String>,
    pub doc_commands: Vec<String>,
    /// The largest size, in bytes, the image may have in each variant that has a budget.
    pub size_budgets: BTreeMap<String, u64>,
    /// Version tags declared on this image; children inherit them (see [`Spec::version_tags_of`]).
    pub version_tags: Vec<String>,
    /// The platforms it is built for in each variant it is built in, in the stack's order: its
    /// own `platforms`, else the variant's, else the stack's.
    pub platforms: BTreeMap<String, Vec<Platform>>,
}

impl Image {
    /// The platforms it is built for in `variant` (none when it is not built in it).
    pub fn platforms_in(&self, variant: &str) -> &[Platform] {
        self.platforms.get(variant).map_or(&[], Vec::as_slice)
    }
}

/// What an image is built on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Parent {
    /// Another image of the stack (in the same variant).
    Image(String),
    /// An external base image declared under `bases`.
    Base(String),
}

impl Parent {
    pub fn name(&self) -> &str {
        match self {
            Parent::Image(name) | Parent::Base(name) => name,
        }
    }
}

/// Which changed paths never rebuild, rebuild everything, or only re-test.
#[derive(Debug, Clone)]
pub struct ChangeRules {
    pub ignore: Globs,
    pub rebuild_all: Globs,
    pub test_only: Globs,
}

/// Patterns, as written, compiled into one matcher. Paths are relative to the repository root.
#[derive(Debug, Clone)]
pub struct Globs {
    pub patterns: Vec<String>,
    pub set: GlobSet,
}

impl Globs {
    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

impl Spec {
    /// Reads and validates the spec at `file`; every mistake found is in the error.
    pub fn load(file: &Path) -> Result<Spec, Diagnostics> {
        validate::load(file)
    }

    /// Validates spec text as if it were read from `file` (whose directory holds the images).
    pub fn parse(file: &Path, text: &str) -> Result<Spec, Diagnostics> {
        validate::parse(file, text, validate::Files::Check)
    }

    /// Validates spec text without looking at the folders and Dockerfiles it names: for an older
    /// version of the spec, whose files may be gone (`plan --since` compares it with this one).
    pub fn parse_alone(file: &Path, text: &str) -> Result<Spec, Diagnostics> {
        validate::parse(file, text, validate::Files::Skip)
    }

    /// The name of the spec's folder (`images`): where change rules, which are relative to the
    /// repository root, expect image folders when git is not asked.
    pub fn folder_name(&self) -> String {
        let dir = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// `path` (relative to the spec's folder) as seen from the repository root, with `/`
    /// separators, given the spec folder's own path there (`images`; empty or `.` for the root).
    pub fn repo_path(spec_dir: &str, path: &Path) -> String {
        let path = path.to_string_lossy().replace('\\', "/");
        if spec_dir.is_empty() || spec_dir == "." {
            path
        } else if path.is_empty() {
            spec_dir.to_string()
        } else {
            format!("{spec_dir}/{path}")
        }
    }

    /// The spec file as seen from the repository root (`images/spec.yml`), given the spec
    /// folder's own path there.
    pub fn repo_file(&self, spec_dir: &str) -> String {
        let name = self.file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        Spec::repo_path(spec_dir, Path::new(&name))
    }

    /// Each variant, in the stack's order, with the images built in it, in the spec's order:
    /// one pass over the nodes, whatever the number of variants.
    pub fn images_by_variant(&self) -> Vec<(&Variant, Vec<&Image>)> {
        let position: HashMap<&str, usize> =
            self.variants.iter().enumerate().map(|(i, variant)| (variant.name.as_str(), i)).collect();
        let mut out: Vec<(&Variant, Vec<&Image>)> = self.variants.iter().map(|variant| (variant, Vec::new())).collect();
        for image in self.images.values() {
            for variant in &image.variants {
                if let Some(i) = position.get(variant.as_str()) {
                    out[*i].1.push(image);
                }
            }
        }
        out
    }

    /// Whether the stack builds for more than one platform: node names then carry the
    /// architecture (`scipy-notebook/arm64`).
    pub fn multi_platform(&self) -> bool {
        self.stack.platforms.len() > 1
    }

    /// The platform commands use when none is asked for: the host's when the stack builds for
    /// it, else the stack's first.
    pub fn default_platform(&self) -> &Platform {
        let host = Platform::host();
        self.stack.platforms.iter().find(|p| **p == host).unwrap_or(&self.stack.platforms[0])
    }

    /// `name` for `platform`: `name/arm64` in a stack of several platforms, `name` otherwise.
    pub fn on_platform(&self, name: &str, platform: &Platform) -> String {
        if self.multi_platform() {
            format!("{name}/{}", platform.suffix())
        } else {
            name.to_string()
        }
    }

    /// The stack's platform whose suffix (`arm64`) is `suffix`.
    pub fn platform_by_suffix(&self, suffix: &str) -> Option<&Platform> {
        self.stack.platforms.iter().find(|p| p.suffix() == suffix)
    }

    pub fn default_variant(&self) -> &str {
        &self.variants[0].name
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|variant| variant.name == name)
    }

    /// The build argument that carries dependency `name` into a build: `<NAME>_IMAGE`.
    pub fn dependency_arg(name: &str) -> String {
        let mut arg: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        arg.push_str("_IMAGE");
        arg
    }

    /// The repository an image is published to in a variant: `<registry>/<namespace>/<image><suffix>`.
    pub fn repository(&self, image: &str, variant: &str) -> String {
        let suffix = self.variant(variant).map_or("", |v| v.suffix.as_str());
        let mut parts: Vec<&str> = Vec::new();
        for part in [self.stack.registry.as_str(), self.stack.namespace.as_str()] {
            if !part.is_empty() {
                parts.push(part);
            }
        }
        let name = format!("{image}{suffix}");
        parts.push(&name);
        parts.join("/")
    }

    /// Applies `STACK_NAMESPACE` (the namespace this run pushes to, such as a pull request's):
    /// the spec's own namespace stays where built images are looked for. Refused, with the
    /// reason, when it is not a valid repository path.
    pub fn with_env_overrides(mut self) -> Result<Spec, Diagnostics> {
        let Some(namespace) = std::env::var("STACK_NAMESPACE").ok().filter(|v| !v.trim().is_empty()) else {
            return Ok(self);
        };
        for component in namespace.split('/') {
            if let Err(why) = crate::reference::check_path_component(component) {
                let diagnostic = crate::diagnostic::Diagnostic::new(
                    crate::diagnostic::Code::InvalidReference,
                    None,
                    format!("STACK_NAMESPACE `{namespace}`: {why}"),
                )
                .with_hint("set it to a repository path such as `my-org/notebooks/pr`");
                return Err(Diagnostics::single(diagnostic));
            }
        }
        if namespace != self.stack.namespace {
            self.stack.fallback_namespace = Some(std::mem::replace(&mut self.stack.namespace, namespace));
        }
        Ok(self)
    }

    /// Where `repository` (one of this stack's) is in the fallback namespace, if there is one.
    pub fn fallback_repository(&self, repository: &str) -> Option<String> {
        let fallback = self.stack.fallback_namespace.as_ref()?;
        let prefix = |namespace: &str| {
            [self.stack.registry.as_str(), namespace]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/")
        };
        let name = repository.strip_prefix(&format!("{}/", prefix(&self.stack.namespace)))?;
        Some(format!("{}/{name}", prefix(fallback)))
    }

    /// The repository a base is kept in, as a stack artifact: `<registry>/<namespace>/<base>`.
    pub fn base_repository(&self, base: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for part in [self.stack.registry.as_str(), self.stack.namespace.as_str(), base] {
            if !part.is_empty() {
                parts.push(part);
            }
        }
        parts.join("/")
    }

    /// The version tags of `image` in `variant`, as `(name, command)`: those of its ancestors
    /// along the parent chain first, then its own, each name once.
    pub fn version_tags_of(&self, image: &str, variant: &str) -> Vec<(&str, &str)> {
        let mut chain = Vec::new();
        let mut current = self.images.get(image);
        while let Some(found) = current {
            chain.push(found);
            current = match found.parents.get(variant) {
                Some(Parent::Image(parent)) if chain.len() <= self.images.len() => self.images.get(parent),
                _ => None,
            };
        }
        let mut out: Vec<(&str, &str)> = Vec::new();
        for found in chain.iter().rev() {
            for name in &found.version_tags {
                if let Some(command) = self.version_tags.get(name) {
                    if !out.iter().any(|(seen, _)| seen == name) {
                        out.push((name.as_str(), command.as_str()));
                    }
                }
            }
        }
        out
    }

    /// Build arguments for `image` in `variant`: stack-wide, then the variant's, then the image's.
    pub fn build_args(&self, image: &Image, variant: &str) -> BuildArgs {
        let mut args = self.build_args.clone();
        if let Some(variant) = self.variant(variant) {
            args.extend(variant.build_args.clone());
        }
        args.extend(image.build_args.clone());
        args
    }
}

/// Reads a size such as `1.5 GB`, `800MB` or `2 GiB` (decimal units as `docker images` shows
/// them, binary ones with `i`) as bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let factor: f64 = match unit.trim() {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::parse_size;

    #[rstest]
    #[case("800 MB", Some(800_000_000))]
    #[case("1.5GB", Some(1_500_000_000))]
    #[case("2 GiB", Some(2 * 1024 * 1024 * 1024))]
    #[case("512 KiB", Some(512 * 1024))]
    #[case("10 kB", Some(10_000))]
    #[case("42 B", Some(42))]
    #[case("2 gigs", None)]
    #[case("GB", None)]
    #[case("-1 GB", None)]
    #[case("1.2.3 GB", None)]
    fn reads_sizes(#[case] text: &str, #[case] bytes: Option<u64>) {
        assert_eq!(parse_size(text), bytes);
    }
}
