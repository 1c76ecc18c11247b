//! Turns the spec as written ([`super::raw`]) into a consistent [`Spec`], or into every
//! [`Diagnostic`] that explains why it is not one: what, where (file:line:column) and how to fix.
//!
//! Checks: the limits ([`super::limits`]), YAML syntax, unknown keys (with "did you mean"),
//! duplicate names, unknown parents, dependencies, variants and documentation commands, paths
//! that leave the spec's folder, cycles (per variant), missing directories and Dockerfiles,
//! Docker's reference grammar, and every Dockerfile's `FROM` against the spec. The checks of one
//! image are in [`image`]; those across the whole stack in [`whole`].

mod image;
mod whole;

use std::cell::{Cell, OnceCell};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSetBuilder};
use indexmap::IndexMap;

use super::input::{self, Subject};
use super::limits;
use super::locate::{Locations, Pos};
use super::raw::{BuildArgs, RawChanges, RawSpec, DUPLICATE_KEY};
use super::{Base, Cache, ChangeRules, Globs, Spec, Stack, Variant, DEFAULT_PARENT_ARG, DEFAULT_VARIANT};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics, Location};
use crate::platform::Platform;
use crate::reference;

/// The most mistakes reported at once; the rest are counted.
pub const MAX_DIAGNOSTICS: usize = 100;
/// The most variants a stack may declare.
pub const MAX_VARIANTS: usize = 64;
/// The most platforms a stack may build for.
pub const MAX_PLATFORMS: usize = 16;
/// The most nodes (an image in a variant, for a platform) a stack may have.
pub const MAX_NODES: usize = 200_000;
/// The most edges (a parent or a dependency of a node) a stack may have.
pub const MAX_EDGES: usize = 1_000_000;
/// How many names "did you mean" may compare in one validation: a spec with twenty thousand
/// unknown parents must not cost twenty thousand searches over twenty thousand names.
const SUGGESTION_BUDGET: usize = 200_000;

/// Whether validation looks at the files the spec names (folders, Dockerfiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    Check,
    /// The spec alone: for an older version of it (`plan --since`), whose files are gone.
    Skip,
}

pub fn load(file: &Path) -> Result<Spec, Diagnostics> {
    let text = input::read(file, Subject::Spec).map_err(Diagnostics::single)?;
    parse(file, &text, Files::Check)
}

pub fn parse(file: &Path, text: &str, files: Files) -> Result<Spec, Diagnostics> {
    limits::check(file, text).map_err(Diagnostics::single)?;
    let mut validator = Validator {
        file,
        text,
        files,
        locations: OnceCell::new(),
        diagnostics: Vec::new(),
        dependency_args: BTreeSet::new(),
        suggestions: Cell::new(SUGGESTION_BUDGET),
    };
    let raw: RawSpec = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let message = error.to_string();
            if message.contains(DUPLICATE_KEY) || message.contains("duplicate field") {
                validator.duplicate_keys();
            }
            if validator.diagnostics.is_empty() {
                validator.diagnostics.push(serde_error(file, &error));
            }
            return Err(finish(validator.diagnostics));
        }
    };
    match validator.check(raw) {
        Some(spec) if validator.diagnostics.is_empty() => Ok(spec),
        _ => Err(finish(validator.diagnostics)),
    }
}

/// Every diagnostic once, in file order, at most [`MAX_DIAGNOSTICS`] of them.
fn finish(mut diagnostics: Vec<Diagnostic>) -> Diagnostics {
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    diagnostics.dedup();
    if diagnostics.len() > MAX_DIAGNOSTICS {
        let more = diagnostics.len() - MAX_DIAGNOSTICS;
        diagnostics.truncate(MAX_DIAGNOSTICS);
        diagnostics.push(
            Diagnostic::new(Code::Limit, None, format!("{more} more errors were found and are not shown"))
                .with_hint("fix the errors above and run again"),
        );
    }
    Diagnostics(diagnostics)
}

/// A serde_yaml error as a diagnostic, with its location and, for an unknown key, the closest
/// allowed one.
fn serde_error(file: &Path, error: &serde_yaml::Error) -> Diagnostic {
    let location = error.location().map(|l| Location::new(file, l.line(), l.column()));
    let full = error.to_string();
    let message = match full.find(" at line ") {
        Some(at) => full[..at].to_string(),
        None => full.clone(),
    };
    // serde_yaml puts the path first (`images.app: unknown field ...`); keep it, match the rest.
    let (path, detail) = match message.split_once(": ") {
        Some((path, detail)) if !path.contains(' ') => (format!("{path}: "), detail),
        _ => (String::new(), message.as_str()),
    };
    if let Some(rest) = detail.strip_prefix("unknown field `").or_else(|| detail.strip_prefix("unknown variant `")) {
        return unknown_key(location, &path, rest);
    }
    if let Some(rest) = detail.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return Diagnostic::new(Code::InvalidValue, location, format!("{path}missing key `{key}`"))
            .with_hint(format!("add `{key}:`; docs/spec.md describes every key"));
    }
    if detail.starts_with("invalid type") {
        let hint = if detail.contains("expected a string") {
            "write a single value here; quote it (`\"3.10\"`) if it could be read as something else"
        } else {
            "docs/spec.md shows the expected shape of each key"
        };
        return Diagnostic::new(Code::InvalidValue, location, message).with_hint(hint);
    }
    if detail.contains("more than one document") {
        return Diagnostic::new(Code::Syntax, location, "the spec holds more than one YAML document")
            .with_hint("a spec is one document: remove the second `---` and what follows it, or merge the two");
    }
    Diagnostic::new(Code::Syntax, location, message).with_hint("fix the YAML syntax at this position")
}

/// `unknown field `word`, expected one of `a`, `b``, as a diagnostic with "did you mean".
fn unknown_key(location: Option<Location>, path: &str, rest: &str) -> Diagnostic {
    let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
    let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let mut hint = String::new();
    if let Some(best) = did_you_mean(word, allowed.iter().copied()) {
        hint.push_str(&format!("did you mean `{best}`? "));
    }
    hint.push_str(&format!("allowed here: {}", allowed.join(", ")));
    Diagnostic::new(Code::UnknownKey, location, format!("{path}unknown key `{word}`")).with_hint(hint)
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    files: Files,
    /// Indexed on the first error only: a valid spec never pays for it.
    locations: OnceCell<Locations>,
    diagnostics: Vec<Diagnostic>,
    /// `<NAME>_IMAGE` of every image and base: the build sets them.
    dependency_args: BTreeSet<String>,
    /// Names "did you mean" may still compare.
    suggestions: Cell<usize>,
}

fn at(pos: Pos, file: &Path) -> Location {
    Location::new(file, pos.line, pos.column)
}

fn valid_arg_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_variant_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Validator<'_> {
    fn locations(&self) -> &Locations {
        self.locations.get_or_init(|| Locations::index(self.text))
    }

    fn value(&self, path: &[&str]) -> Option<Location> {
        self.locations().value(path).map(|pos| at(pos, self.file))
    }

    /// Where the value at `path` is, only when it is written (no fallback to an ancestor).
    fn value_exact(&self, path: &[&str]) -> Option<Location> {
        self.locations().value_exact(path).map(|pos| at(pos, self.file))
    }

    fn key(&self, path: &[&str]) -> Option<Location> {
        let locations = self.locations();
        locations.key(path).or_else(|| locations.value(path)).map(|pos| at(pos, self.file))
    }

    fn error(&mut self, code: Code, location: Option<Location>, message: String, hint: String) {
        self.diagnostics.push(Diagnostic::new(code, location, message).with_hint(hint));
    }

    /// The closest of the `count` `candidates` to `word`, while the [`SUGGESTION_BUDGET`] lasts.
    fn suggest<'n>(&self, word: &str, count: usize, candidates: impl IntoIterator<Item = &'n str>) -> Option<&'n str> {
        let left = self.suggestions.get().checked_sub(count)?;
        self.suggestions.set(left);
        did_you_mean(word, candidates)
    }

    /// Reports every key written twice in one mapping, at both places (serde says only that
    /// one was).
    fn duplicate_keys(&mut self) {
        let duplicates = self.locations().duplicates.clone();
        for (path, first, second) in duplicates {
            let name = path.last().cloned().unwrap_or_default();
            let within = path[..path.len() - 1].join(".");
            self.error(
                Code::DuplicateName,
                Some(at(second, self.file)),
                format!(
                    "`{name}` is declared twice{}, at lines {} and {}",
                    if within.is_empty() { String::new() } else { format!(" in `{within}`") },
                    first.line,
                    second.line
                ),
                format!("the first is at {}; remove or rename one", at(first, self.file)),
            );
        }
    }

    /// The spec, when its graph is within the limits (it may still have errors).
    fn check(&mut self, raw: RawSpec) -> Option<Spec> {
        if !self.graph_size(&raw) {
            return None;
        }
        let dir = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        self.dependency_args = raw.images.keys().chain(raw.bases.keys()).map(|n| Spec::dependency_arg(n)).collect();
        let stack = self.stack(&raw);
        let stack_valid = self.diagnostics.is_empty();
        let variants = self.variants(&raw, &stack);
        let bases = self.bases(&raw);
        let images = self.images(&raw, &dir, &stack, &variants);
        self.build_args(&["build_args"], &raw.build_args, &stack);
        for (name, variant) in &raw.variants {
            self.build_args(&["variants", name, "build_args"], &variant.build_args, &stack);
        }
        self.version_tag_names(&raw);
        let changes = self.changes(&raw.changes);
        let spec = Spec {
            file: self.file.to_path_buf(),
            dir,
            stack,
            build_args: raw.build_args,
            variants,
            bases,
            images,
            doc_commands: raw.doc_commands,
            version_tags: raw.version_tags,
            changes,
            security: raw.security,
        };
        if stack_valid {
            // Otherwise every image would repeat the stack's own error.
            self.repositories(&spec);
        }
        self.platforms(&spec);
        if self.diagnostics.is_empty() {
            self.cycles(&spec);
        }
        if self.diagnostics.is_empty() && self.files == Files::Check {
            self.dockerfiles(&spec);
        }
        Some(spec)
    }

    /// Whether the graph the spec declares is within [`MAX_VARIANTS`], [`MAX_NODES`] and
    /// [`MAX_EDGES`], counted before anything is built for it.
    fn graph_size(&mut self, raw: &RawSpec) -> bool {
        let variants = raw.variants.len().max(1);
        let platforms = raw.stack.platforms.as_ref().map_or(1, Vec::len).max(1);
        let mut nodes = 0usize;
        let mut edges = 0usize;
        for image in raw.images.values() {
            // Counted as if built for every platform: a bound, before platforms are read.
            let built_in = image.variants.as_ref().map_or(variants, Vec::len).saturating_mul(platforms);
            nodes = nodes.saturating_add(built_in);
            edges = edges.saturating_add(built_in.saturating_mul(1 + image.depends_on.len()));
        }
        let over = [
            (variants, MAX_VARIANTS, "variants", "variants"),
            (platforms, MAX_PLATFORMS, "platforms", "stack"),
            (nodes, MAX_NODES, "images in all their variants", "images"),
            (edges, MAX_EDGES, "parents and dependencies in all variants", "images"),
        ]
        .into_iter()
        .find(|(count, limit, ..)| count > limit);
        let Some((count, limit, what, key)) = over else {
            return true;
        };
        self.error(
            Code::Limit,
            self.key(&[key]),
            format!("the spec declares {count} {what}; the most is {limit}"),
            "docs/spec.md lists the limits; a stack this large is likely generated wrong".into(),
        );
        false
    }

    fn stack(&mut self, raw: &RawSpec) -> Stack {
        let stack = &raw.stack;
        if !stack.registry.is_empty() {
            let probe = format!("{}/probe", stack.registry);
            if !matches!(reference::parse(&probe), Ok(r) if r.domain.as_deref() == Some(stack.registry.as_str())) {
                self.error(
                    Code::InvalidReference,
                    self.value(&["stack", "registry"]),
                    format!("`{}` is not a registry host", stack.registry),
                    "write a host with an optional port, such as `ghcr.io` or `localhost:5000`".into(),
                );
            }
        }
        for component in stack.namespace.split('/').filter(|_| !stack.namespace.is_empty()) {
            if let Err(why) = reference::check_path_component(component) {
                self.error(
                    Code::InvalidReference,
                    self.value(&["stack", "namespace"]),
                    format!("stack.namespace: {why}"),
                    "write something like `my-org/notebooks`".into(),
                );
            }
        }
        if let Err(why) = reference::check_tag(&stack.tag_prefix) {
            self.error(
                Code::InvalidReference,
                self.value(&["stack", "tag_prefix"]),
                format!("stack.tag_prefix: {why}"),
                "write something like `2026.11`".into(),
            );
        }
        let parent_arg = stack.parent_arg.clone().unwrap_or_else(|| DEFAULT_PARENT_ARG.to_string());
        if !valid_arg_name(&parent_arg) {
            self.error(
                Code::InvalidValue,
                self.value(&["stack", "parent_arg"]),
                format!("`{parent_arg}` is not a valid build argument name"),
                format!("use letters, digits and `_`, such as `{DEFAULT_PARENT_ARG}`"),
            );
        }
        let cache = match stack.cache.as_deref() {
            None | Some("local") => Cache::Local,
            Some("registry") => Cache::Registry,
            Some(other) => {
                self.error(
                    Code::InvalidValue,
                    self.value(&["stack", "cache"]),
                    format!("stack.cache `{other}` is neither `local` nor `registry`"),
                    "write `cache: registry` to look for built images in the stack's registry too, or `cache: local`"
                        .into(),
                );
                Cache::Local
            }
        };
        let platforms = match &stack.platforms {
            Some(list) => self.platform_list(&["stack", "platforms"], list, None),
            None => vec![Platform::host()],
        };
        Stack {
            registry: stack.registry.clone(),
            namespace: stack.namespace.clone(),
            tag_prefix: stack.tag_prefix.clone(),
            parent_arg,
            ca_bundle: stack.ca_bundle.as_ref().map(PathBuf::from),
            cache_from: stack.cache_from.clone(),
            cache,
            fallback_namespace: None,
            platforms: if platforms.is_empty() { vec![Platform::host()] } else { platforms },
            platforms_declared: stack.platforms.is_some(),
        }
    }

    fn variants(&mut self, raw: &RawSpec, stack: &Stack) -> Vec<Variant> {
        if raw.variants.is_empty() {
            return vec![Variant {
                name: DEFAULT_VARIANT.into(),
                suffix: String::new(),
                description: None,
                build_args: BuildArgs::new(),
                gpu: false,
                platforms: None,
            }];
        }
        let mut out = Vec::new();
        for (position, (name, variant)) in raw.variants.iter().enumerate() {
            if !valid_variant_name(name) {
                self.error(
                    Code::InvalidValue,
                    self.key(&["variants", name]),
                    format!("`{name}` is not a valid variant name"),
                    "use lowercase letters, digits, `-` and `_`, such as `cpu` or `cuda12`".into(),
                );
            }
            let suffix =
                variant.suffix.clone().unwrap_or_else(
                    || {
                        if position == 0 {
                            String::new()
                        } else {
                            format!("-{name}")
                        }
                    },
                );
            let platforms = variant
                .platforms
                .as_ref()
                .map(|list| self.platform_list(&["variants", name, "platforms"], list, Some(&stack.platforms)));
            out.push(Variant {
                name: name.clone(),
                suffix,
                description: variant.description.clone(),
                build_args: variant.build_args.clone(),
                gpu: variant.gpu,
                platforms,
            });
        }
        out
    }

    fn bases(&mut self, raw: &RawSpec) -> IndexMap<String, Base> {
        let mut out = IndexMap::new();
        for (name, base) in &raw.bases {
            if let Err(why) = reference::check_path_component(name) {
                self.error(
                    Code::InvalidValue,
                    self.key(&["bases", name]),
                    format!("base name `{name}`: {why}"),
                    "name bases like images: lowercase, digits, `-`".into(),
                );
            }
            if raw.images.contains_key(name) {
                self.error(
                    Code::DuplicateName,
                    self.key(&["images", name]),
                    format!("`{name}` names both an image and a base"),
                    format!(
                        "the base is declared at {}; rename one of them",
                        self.key(&["bases", name]).map(|l| l.to_string()).unwrap_or_default()
                    ),
                );
            }
            let reference = match reference::parse(&base.image) {
                Ok(reference) => reference,
                Err(why) => {
                    self.error(
                        Code::InvalidReference,
                        self.value(&["bases", name, "image"]),
                        format!("base `{name}`: `{}` is not a valid image reference: {why}", base.image),
                        "write `[registry/]name[:tag][@digest]`, such as `localhost/debian:bookworm`".into(),
                    );
                    continue;
                }
            };
            if let Some(recipe) = &base.recipe {
                if recipe.debootstrap.is_some() == recipe.import.is_some() {
                    self.error(
                        Code::InvalidValue,
                        self.value(&["bases", name, "recipe"]),
                        format!("base `{name}`: a recipe needs exactly one of `debootstrap` and `import`"),
                        "write `recipe: {debootstrap: {suite: bookworm, mirror: ...}}` or `recipe: {import: rootfs.tar}`".into(),
                    );
                }
            }
            if let Some(recipe) = base.recipe.as_ref().and_then(|r| r.debootstrap.as_ref()) {
                if !(recipe.mirror.starts_with("http://") || recipe.mirror.starts_with("https://")) {
                    self.error(
                        Code::InvalidValue,
                        self.value(&["bases", name, "recipe", "debootstrap", "mirror"]),
                        format!("base `{name}`: the debootstrap mirror `{}` is not an http(s) URL", recipe.mirror),
                        "write a Debian mirror URL, such as `http://deb.debian.org/debian`".into(),
                    );
                }
            }
            out.insert(
                name.clone(),
                Base {
                    name: name.clone(),
                    reference,
                    description: base.description.clone(),
                    recipe: base.recipe.clone(),
                    refresh: base.refresh.clone(),
                },
            );
        }
        out
    }

    /// The platforms of the list at `path`, each once, in `allowed`'s order when given (the
    /// stack's: a variant or an image builds for some of them), else as written. Every entry
    /// that is not a platform, is written twice or is not allowed is an error here.
    pub(super) fn platform_list(
        &mut self,
        path: &[&str],
        list: &[String],
        allowed: Option<&[Platform]>,
    ) -> Vec<Platform> {
        let mut out: Vec<Platform> = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let mut at = path.to_vec();
            let index = i.to_string();
            at.push(&index);
            let platform = match Platform::parse(text) {
                Ok(platform) => platform,
                Err(why) => {
                    let hint = "write `linux/amd64` or `linux/arm64` (docs/spec.md, \"Platforms\")".into();
                    self.error(Code::InvalidValue, self.value(&at), why, hint);
                    continue;
                }
            };
            if out.contains(&platform) {
                self.error(
                    Code::DuplicateName,
                    self.value(&at),
                    format!("`{platform}` is listed twice"),
                    "remove one".into(),
                );
            } else if let Some(allowed) = allowed.filter(|allowed| !allowed.contains(&platform)) {
                let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                self.error(
                    Code::UnknownPlatform,
                    self.value(&at),
                    format!("the stack does not build for `{platform}`"),
                    format!(
                        "the stack's platforms are: {} (`stack.platforms`); add it there, or leave it out here",
                        names.join(", ")
                    ),
                );
            } else {
                out.push(platform);
            }
        }
        if list.is_empty() {
            self.error(
                Code::InvalidValue,
                self.value(path),
                format!("`{}` lists no platform", path.join(".")),
                "list at least one, such as `[linux/amd64]`, or remove the key".into(),
            );
        }
        if let Some(allowed) = allowed {
            out.sort_by_key(|p| allowed.iter().position(|a| a == p));
        }
        out
    }

    /// Version tag names start tags (`python` makes `python-3.11.2`): Docker's tag characters.
    fn version_tag_names(&mut self, raw: &RawSpec) {
        for (name, command) in &raw.version_tags {
            let valid = name.len() <= 64
                && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                self.error(
                    Code::InvalidValue,
                    self.key(&["version_tags", name]),
                    format!("`{name}` is not a valid version tag name"),
                    "version tag names start tags: letters, digits, `.`, `_` and `-`, such as `python` or `lab`".into(),
                );
            }
            if command.trim().is_empty() {
                self.error(
                    Code::InvalidValue,
                    self.value(&["version_tags", name]),
                    format!("version tag `{name}` has an empty command"),
                    "write a shell command that prints the version, such as `python -c 'import platform; print(platform.python_version())'`".into(),
                );
            }
        }
    }

    /// Build argument names must be valid and must not be the ones the build fills in itself.
    fn build_args(&mut self, path: &[&str], args: &BuildArgs, stack: &Stack) {
        for name in args.keys() {
            let reserved = *name == stack.parent_arg || self.dependency_args.contains(name);
            let mut key_path = path.to_vec();
            key_path.push(name);
            if !valid_arg_name(name) {
                self.error(
                    Code::InvalidValue,
                    self.key(&key_path),
                    format!("`{name}` is not a valid build argument name"),
                    "use letters, digits and `_`".into(),
                );
            } else if reserved {
                self.error(
                    Code::ReservedBuildArg,
                    self.key(&key_path),
                    format!("build argument `{name}` is set by the build itself"),
                    format!("`{}` carries the parent and `<NAME>_IMAGE` each dependency, as exact image IDs; declare the graph with `parent` and `depends_on` instead", stack.parent_arg),
                );
            }
        }
    }

    fn changes(&mut self, raw: &RawChanges) -> ChangeRules {
        let mut compile = |key: &str, patterns: &[String]| -> Globs {
            let mut builder = GlobSetBuilder::new();
            for (i, pattern) in patterns.iter().enumerate() {
                match GlobBuilder::new(pattern).literal_separator(true).build() {
                    Ok(glob) => {
                        builder.add(glob);
                    }
                    Err(error) => {
                        let location = self.value(&["changes", key, &i.to_string()]);
                        self.error(Code::InvalidGlob, location, format!("`{pattern}` is not a valid pattern: {}", error.kind()), "patterns are globs relative to the repository root, such as `**/*.md` or `images/*/tests/**`".into());
                    }
                }
            }
            let set = builder.build().unwrap_or_else(|_| globset::GlobSet::empty());
            Globs { patterns: patterns.to_vec(), set }
        };
        ChangeRules {
            ignore: compile("ignore", &raw.ignore),
            rebuild_all: compile("rebuild_all", &raw.rebuild_all),
            test_only: compile("test_only", &raw.test_only),
        }
    }
}
