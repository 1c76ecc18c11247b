//! Turns the spec as written ([`super::raw`]) into a consistent [`Spec`], or into every
//! [`Diagnostic`] that explains why it is not one: what, where (file:line:column) and how to fix.
//!
//! Checks: YAML syntax, unknown keys (with "did you mean"), duplicate names, unknown parents,
//! dependencies, variants and documentation commands, cycles, missing directories and
//! Dockerfiles, Docker's reference grammar, and every Dockerfile's `FROM` against the spec.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSetBuilder};
use indexmap::IndexMap;

use super::locate::{Locations, Pos};
use super::raw::{BuildArgs, RawBudget, RawChanges, RawImage, RawParent, RawSpec, DUPLICATE_KEY};
use super::{
    parse_size, Base, Cache, ChangeRules, Globs, Image, Parent, Spec, Stack, Variant, DEFAULT_PARENT_ARG,
    DEFAULT_VARIANT,
};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics, Location};
use crate::{dockerfile, graph, reference};

pub fn load(file: &Path) -> Result<Spec, Diagnostics> {
    let text = fs::read_to_string(file).map_err(|error| {
        Diagnostics::single(
            Diagnostic::new(Code::Io, Some(Location::file_only(file)), format!("cannot read the spec: {error}"))
                .with_hint("run from the repository root, or pass `--spec PATH`"),
        )
    })?;
    parse(file, &text)
}

pub fn parse(file: &Path, text: &str) -> Result<Spec, Diagnostics> {
    let mut validator = Validator { file, text, locations: OnceCell::new(), diagnostics: Vec::new() };
    let raw: RawSpec = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(error) if error.to_string().contains(DUPLICATE_KEY) => {
            validator.duplicate_keys();
            if validator.diagnostics.is_empty() {
                return Err(Diagnostics::single(serde_error(file, &error)));
            }
            return Err(Diagnostics(validator.diagnostics));
        }
        Err(error) => return Err(Diagnostics::single(serde_error(file, &error))),
    };
    let spec = validator.check(raw);
    let mut diagnostics = validator.diagnostics;
    if diagnostics.is_empty() {
        return Ok(spec);
    }
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    diagnostics.dedup();
    Err(Diagnostics(diagnostics))
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
        let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut hint = String::new();
        if let Some(best) = did_you_mean(word, allowed.iter().copied()) {
            hint.push_str(&format!("did you mean `{best}`? "));
        }
        hint.push_str(&format!("allowed here: {}", allowed.join(", ")));
        return Diagnostic::new(Code::UnknownKey, location, format!("{path}unknown key `{word}`")).with_hint(hint);
    }
    if let Some(rest) = detail.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return Diagnostic::new(Code::InvalidValue, location, format!("{path}missing key `{key}`"))
            .with_hint(format!("add `{key}:`; docs/spec.md describes every key"));
    }
    if detail.contains("did not match any variant of untagged enum RawParent") {
        return Diagnostic::new(
            Code::InvalidValue,
            location,
            format!("{path}`parent` must be a name, or a map from variant to name"),
        )
        .with_hint("write `parent: base-notebook`, or `parent: {cpu: debian, gpu: cuda}`");
    }
    if detail.starts_with("invalid type") {
        let hint = if detail.contains("expected a string") {
            "write a single value here; quote it (`\"3.10\"`) if it could be read as something else"
        } else {
            "docs/spec.md shows the expected shape of each key"
        };
        return Diagnostic::new(Code::InvalidValue, location, message).with_hint(hint);
    }
    Diagnostic::new(Code::Syntax, location, message).with_hint("fix the YAML syntax at this position")
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    /// Indexed on the first error only: a valid spec never pays for it.
    locations: OnceCell<Locations>,
    diagnostics: Vec<Diagnostic>,
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

    fn key(&self, path: &[&str]) -> Option<Location> {
        let locations = self.locations();
        locations.key(path).or_else(|| locations.value(path)).map(|pos| at(pos, self.file))
    }

    fn error(&mut self, code: Code, location: Option<Location>, message: String, hint: String) {
        self.diagnostics.push(Diagnostic::new(code, location, message).with_hint(hint));
    }

    /// Reports every key written twice in one mapping (serde only says that one was).
    fn duplicate_keys(&mut self) {
        let duplicates = self.locations().duplicates.clone();
        for (path, first, second) in duplicates {
            let name = path.last().cloned().unwrap_or_default();
            let within = path[..path.len() - 1].join(".");
            self.error(
                Code::DuplicateName,
                Some(at(second, self.file)),
                format!(
                    "`{name}` is declared twice{}",
                    if within.is_empty() { String::new() } else { format!(" in `{within}`") }
                ),
                format!("the first is at {}; remove or rename one", at(first, self.file)),
            );
        }
    }

    fn check(&mut self, raw: RawSpec) -> Spec {
        let dir = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let stack = self.stack(&raw);
        let stack_valid = self.diagnostics.is_empty();
        let variants = self.variants(&raw);
        let variant_names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
        let bases = self.bases(&raw);
        let images = self.images(&raw, &dir, &stack, &variant_names, &bases);
        self.build_args(&["build_args"], &raw.build_args, &stack, &raw);
        for (name, variant) in &raw.variants {
            self.build_args(&["variants", name, "build_args"], &variant.build_args, &stack, &raw);
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
        if self.diagnostics.is_empty() {
            self.cycles(&spec);
        }
        if self.diagnostics.is_empty() {
            self.dockerfiles(&spec);
        }
        spec
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
        Stack {
            registry: stack.registry.clone(),
            namespace: stack.namespace.clone(),
            tag_prefix: stack.tag_prefix.clone(),
            parent_arg,
            ca_bundle: stack.ca_bundle.as_ref().map(PathBuf::from),
            cache_from: stack.cache_from.clone(),
            cache,
            fallback_namespace: None,
        }
    }

    fn variants(&mut self, raw: &RawSpec) -> Vec<Variant> {
        if raw.variants.is_empty() {
            return vec![Variant {
                name: DEFAULT_VARIANT.into(),
                suffix: String::new(),
                description: None,
                build_args: BuildArgs::new(),
                gpu: false,
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
            out.push(Variant {
                name: name.clone(),
                suffix,
                description: variant.description.clone(),
                build_args: variant.build_args.clone(),
                gpu: variant.gpu,
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

    /// Resolves a parent or dependency name against the stack's images and bases.
    fn resolve(&mut self, raw: &RawSpec, name: &str, path: &[&str], what: &str) -> Option<Parent> {
        if raw.images.contains_key(name) {
            return Some(Parent::Image(name.to_string()));
        }
        if raw.bases.contains_key(name) {
            return Some(Parent::Base(name.to_string()));
        }
        let candidates = raw.images.keys().chain(raw.bases.keys()).map(String::as_str);
        let hint = match did_you_mean(name, candidates) {
            Some(best) => format!("did you mean `{best}`? A {what} must be an image or a base declared in this file"),
            None => format!("a {what} must be an image under `images` or a base under `bases` in this file"),
        };
        self.error(Code::UnknownImage, self.value(path), format!("unknown {what} `{name}`"), hint);
        None
    }

    fn unknown_variant(&mut self, name: &str, location: Option<Location>, variants: &[String]) {
        let hint = match did_you_mean(name, variants.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`? The stack's variants are: {}", variants.join(", ")),
            None => format!("the stack's variants are: {} (declared under `variants`)", variants.join(", ")),
        };
        self.error(Code::UnknownVariant, location, format!("unknown variant `{name}`"), hint);
    }

    fn images(
        &mut self,
        raw: &RawSpec,
        dir: &Path,
        stack: &Stack,
        variants: &[String],
        bases: &IndexMap<String, Base>,
    ) -> IndexMap<String, Image> {
        if raw.images.is_empty() {
            self.error(
                Code::InvalidValue,
                self.key(&["images"]),
                "the spec declares no images".into(),
                "add at least one image under `images`".into(),
            );
        }
        let mut out = IndexMap::new();
        for (name, image) in &raw.images {
            let key = |field: &'static str| -> Vec<&str> { vec!["images", name.as_str(), field] };
            if let Err(why) = reference::check_path_component(name) {
                self.error(
                    Code::InvalidReference,
                    self.key(&["images", name]),
                    format!("image name `{name}`: {why}"),
                    "image names become repository names: lowercase, digits, `-`".into(),
                );
            }
            // Directory and Dockerfile.
            let image_dir = PathBuf::from(image.dir.clone().unwrap_or_else(|| name.clone()));
            let dockerfile = image_dir.join(image.dockerfile.as_deref().unwrap_or("Dockerfile"));
            if !dir.join(&image_dir).is_dir() {
                self.error(
                    Code::MissingDirectory,
                    if image.dir.is_some() { self.value(&key("dir")) } else { self.key(&["images", name]) },
                    format!("image `{name}`: the directory {} does not exist", dir.join(&image_dir).display()),
                    format!("create it with a Dockerfile, or set `dir:` to the image's folder under {}", dir.display()),
                );
            } else if !dir.join(&dockerfile).is_file() {
                self.error(
                    Code::MissingDockerfile,
                    if image.dockerfile.is_some() {
                        self.value(&key("dockerfile"))
                    } else {
                        self.key(&["images", name])
                    },
                    format!("image `{name}`: the Dockerfile {} does not exist", dir.join(&dockerfile).display()),
                    "add it, or set `dockerfile:` to its name inside the image's folder".into(),
                );
            }
            // Variants.
            let image_variants: Vec<String> = match &image.variants {
                None => variants.to_vec(),
                Some(list) => {
                    for (i, variant) in list.iter().enumerate() {
                        if !variants.contains(variant) {
                            let location = self.value(&["images", name, "variants", &i.to_string()]);
                            self.unknown_variant(variant, location, variants);
                        }
                    }
                    if list.is_empty() {
                        self.error(
                            Code::InvalidValue,
                            self.value(&key("variants")),
                            format!("image `{name}` is built in no variant"),
                            "list at least one variant, or remove the image".into(),
                        );
                    }
                    variants.iter().filter(|v| list.contains(v)).cloned().collect()
                }
            };
            // Parents, per variant.
            let mut parents = BTreeMap::new();
            match &image.parent {
                RawParent::Same(parent) => {
                    if let Some(resolved) = self.resolve(raw, parent, &key("parent"), "parent") {
                        for variant in &image_variants {
                            parents.insert(variant.clone(), resolved.clone());
                        }
                    }
                }
                RawParent::PerVariant(map) => {
                    for (variant, parent) in map {
                        if !variants.contains(variant) {
                            let location = self.key(&["images", name, "parent", variant]);
                            self.unknown_variant(variant, location, variants);
                            continue;
                        }
                        if !image_variants.contains(variant) {
                            self.error(
                                Code::VariantOptOut,
                                self.key(&["images", name, "parent", variant]),
                                format!(
                                    "image `{name}` declares a parent for variant `{variant}` but is not built in it"
                                ),
                                format!("remove the entry, or add `{variant}` to the image's `variants`"),
                            );
                            continue;
                        }
                        if let Some(resolved) =
                            self.resolve(raw, parent, &["images", name, "parent", variant], "parent")
                        {
                            parents.insert(variant.clone(), resolved);
                        }
                    }
                    for variant in image_variants.iter().filter(|v| !map.contains_key(*v)) {
                        self.error(
                            Code::InvalidValue,
                            self.value(&key("parent")),
                            format!("image `{name}` has no parent for variant `{variant}`"),
                            format!("add `{variant}: <image or base>` under `parent`, or leave `{variant}` out of the image's `variants`"),
                        );
                    }
                }
            }
            // Dependencies.
            let mut seen = BTreeSet::new();
            for (i, dependency) in image.depends_on.iter().enumerate() {
                let index = i.to_string();
                let path = ["images", name.as_str(), "depends_on", index.as_str()];
                if !seen.insert(dependency) {
                    self.error(
                        Code::DuplicateName,
                        self.value(&path),
                        format!("image `{name}` lists dependency `{dependency}` twice"),
                        "remove one".into(),
                    );
                    continue;
                }
                self.resolve(raw, dependency, &path, "dependency");
            }
            // Variant opt-outs: a parent or dependency of the stack must exist in each variant.
            for variant in &image_variants {
                let needed = parents.get(variant).into_iter().filter_map(|p| match p {
                    Parent::Image(parent) => Some((parent.clone(), "parent")),
                    Parent::Base(_) => None,
                });
                let needed: Vec<(String, &str)> = needed
                    .chain(
                        image
                            .depends_on
                            .iter()
                            .filter(|d| raw.images.contains_key(*d))
                            .map(|d| (d.clone(), "dependency")),
                    )
                    .collect();
                for (other, role) in needed {
                    let other_variants = raw.images[&other].variants.as_ref();
                    if other_variants.is_some_and(|list| !list.contains(variant)) {
                        self.error(
                            Code::VariantOptOut,
                            self.value(&key(if role == "parent" { "parent" } else { "depends_on" })),
                            format!("image `{name}` is built in variant `{variant}`, but its {role} `{other}` opts out of that variant"),
                            format!("add `{variant}` to `{other}`'s variants, or leave it out of `{name}`'s"),
                        );
                    }
                }
            }
            // Documentation commands and version tags.
            for (i, command) in image.doc_commands.iter().enumerate() {
                let path = ["images", name.as_str(), "doc_commands", &i.to_string()];
                self.declared(&raw.doc_commands, command, &path, Code::UnknownDocCommand, "doc_commands");
            }
            for (i, tag) in image.version_tags.iter().enumerate() {
                let path = ["images", name.as_str(), "version_tags", &i.to_string()];
                self.declared(&raw.version_tags, tag, &path, Code::UnknownVersionTag, "version_tags");
            }
            self.build_args(&key("build_args"), &image.build_args, stack, raw);
            let size_budgets = self.size_budgets(name, image, &image_variants, variants);
            out.insert(
                name.clone(),
                Image {
                    name: name.clone(),
                    description: image.description.clone(),
                    dir: image_dir,
                    dockerfile,
                    parents,
                    depends_on: image.depends_on.clone(),
                    build_args: image.build_args.clone(),
                    variants: image_variants,
                    doc_commands: image.doc_commands.clone(),
                    size_budgets,
                    version_tags: image.version_tags.clone(),
                },
            );
        }
        let _ = bases;
        out
    }

    /// An image's size budget per variant: one for all, or one per variant it is built in.
    fn size_budgets(
        &mut self,
        name: &str,
        image: &RawImage,
        image_variants: &[String],
        variants: &[String],
    ) -> BTreeMap<String, u64> {
        let mut budgets = BTreeMap::new();
        let read = |this: &mut Self, text: &str, path: &[&str]| {
            let size = parse_size(text);
            if size.is_none() {
                this.error(
                    Code::InvalidValue,
                    this.value(path),
                    format!("`{text}` is not a size"),
                    "write a number and a unit, such as `1.5 GB`, `800 MB` or `2 GiB`".into(),
                );
            }
            size
        };
        match &image.size_budget {
            None => {}
            Some(RawBudget::Same(text)) => {
                if let Some(size) = read(self, text, &["images", name, "size_budget"]) {
                    budgets.extend(image_variants.iter().map(|variant| (variant.clone(), size)));
                }
            }
            Some(RawBudget::PerVariant(map)) => {
                for (variant, text) in map {
                    let path = ["images", name, "size_budget", variant.as_str()];
                    if !variants.contains(variant) {
                        let location = self.key(&path);
                        self.unknown_variant(variant, location, variants);
                    } else if !image_variants.contains(variant) {
                        self.error(
                            Code::VariantOptOut,
                            self.key(&path),
                            format!("image `{name}` has a size budget for variant `{variant}` but is not built in it"),
                            format!("remove the entry, or add `{variant}` to the image's `variants`"),
                        );
                    } else if let Some(size) = read(self, text, &path) {
                        budgets.insert(variant.clone(), size);
                    }
                }
            }
        }
        budgets
    }

    /// `name` (listed by an image at `path`) must be declared under the top-level `section`.
    fn declared(&mut self, declared: &IndexMap<String, String>, name: &str, path: &[&str], code: Code, section: &str) {
        if declared.contains_key(name) {
            return;
        }
        let what = if code == Code::UnknownVersionTag { "version tag" } else { "documentation command" };
        let hint = match did_you_mean(name, declared.keys().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`? Declare {what}s under the top-level `{section}`"),
            None => format!("declare it under the top-level `{section}`"),
        };
        self.error(code, self.value(path), format!("unknown {what} `{name}`"), hint);
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
    fn build_args(&mut self, path: &[&str], args: &BuildArgs, stack: &Stack, raw: &RawSpec) {
        for name in args.keys() {
            let reserved = *name == stack.parent_arg
                || name.strip_suffix("_IMAGE").is_some_and(|_| {
                    raw.images.keys().chain(raw.bases.keys()).any(|n| Spec::dependency_arg(n) == *name)
                });
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

    /// Every image's published name must be a valid reference in every variant, and so must
    /// every layer-cache template once filled in.
    fn repositories(&mut self, spec: &Spec) {
        if let Some(image) = spec.images.values().next() {
            let repository = spec.repository(&image.name, spec.default_variant());
            for (i, template) in spec.stack.cache_from.iter().enumerate() {
                let filled =
                    template.replace("{repository}", &repository).replace("{tag_prefix}", &spec.stack.tag_prefix);
                if let Err(why) = reference::parse(&filled) {
                    let location = self.value(&["stack", "cache_from", &i.to_string()]);
                    self.error(
                        Code::InvalidReference,
                        location,
                        format!("stack.cache_from `{template}` gives `{filled}`, which is not a valid reference: {why}"),
                        "write a reference with `{repository}` and `{tag_prefix}` placeholders, such as `{repository}:{tag_prefix}-stable`".into(),
                    );
                }
            }
        }
        for image in spec.images.values() {
            for variant in &image.variants {
                let text = format!("{}:{}", spec.repository(&image.name, variant), spec.stack.tag_prefix);
                if let Err(why) = reference::parse(&text) {
                    let location = self.key(&["images", &image.name]);
                    self.error(
                        Code::InvalidReference,
                        location,
                        format!("image `{}` in variant `{variant}` would be published as `{text}`, which is not a valid reference: {why}", image.name),
                        "check `stack.registry`, `stack.namespace`, the variant's `suffix` and the image's name".into(),
                    );
                }
            }
        }
    }

    fn cycles(&mut self, spec: &Spec) {
        let mut reported = BTreeSet::new();
        for variant in &spec.variants {
            let mut edges = Vec::new();
            for image in spec.images.values().filter(|image| image.variants.contains(&variant.name)) {
                if let Some(Parent::Image(parent)) = image.parents.get(&variant.name) {
                    edges.push((image.name.clone(), parent.clone()));
                }
                for dependency in image.depends_on.iter().filter(|d| spec.images.contains_key(*d)) {
                    edges.push((image.name.clone(), dependency.clone()));
                }
            }
            if let Some(cycle) = graph::find_cycle(&edges) {
                let text = cycle.join(" -> ");
                if reported.insert(text.clone()) {
                    let location = self.value(&["images", &cycle[0], "parent"]);
                    self.error(
                        Code::Cycle,
                        location,
                        format!("the images form a cycle: {text}"),
                        "each arrow reads \"is built on\" (parent or depends_on); break the cycle by changing one of them".into(),
                    );
                }
            }
        }
    }

    fn dockerfiles(&mut self, spec: &Spec) {
        for image in spec.images.values() {
            let path = spec.dir.join(&image.dockerfile);
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) => {
                    self.error(
                        Code::Io,
                        Some(Location::file_only(&path)),
                        format!("cannot read {}: {error}", path.display()),
                        "check the file's permissions".into(),
                    );
                    continue;
                }
            };
            let distinct: BTreeSet<&Parent> = image.parents.values().collect();
            let parent = if distinct.len() == 1 {
                format!("`{}`", image.parents.values().next().map(Parent::name).unwrap_or_default())
            } else {
                image.parents.iter().map(|(v, p)| format!("`{}` ({v})", p.name())).collect::<Vec<_>>().join(", ")
            };
            let mut expected = dockerfile::Expected {
                image: &image.name,
                parent_arg: &spec.stack.parent_arg,
                parent,
                parent_location: None,
                dependency_args: image.depends_on.iter().map(|d| (Spec::dependency_arg(d), d.clone())).collect(),
            };
            if !dockerfile::check(&path, &text, &expected).is_empty() {
                // Again, with the spec's location in the messages.
                expected.parent_location = self.value(&["images", &image.name, "parent"]);
                self.diagnostics.extend(dockerfile::check(&path, &text, &expected));
            }
        }
    }
}
