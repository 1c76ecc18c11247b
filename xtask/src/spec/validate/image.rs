//! The checks of one image: its name, folder and Dockerfile (inside the spec's folder), the
//! variants it is built in, its parents and dependencies (which must exist, in each of its
//! variants), the commands and tags it lists, its build arguments and its size budget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;

use super::{Files, Validator};
use crate::diagnostic::{Code, Location};
use crate::platform::Platform;
use crate::reference;
use crate::spec::raw::{RawBudget, RawImage, RawParent, RawSize, RawSpec};
use crate::spec::{parse_size, Image, Parent, Stack, Variant};

/// `path` without `.` and `..`, when it stays inside the folder it is relative to.
pub fn contained(path: &str) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir if out.pop() => {}
            Component::ParentDir => return Err("leaves"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute"),
        }
    }
    Ok(out)
}

impl Validator<'_> {
    pub(super) fn images(
        &mut self,
        raw: &RawSpec,
        dir: &Path,
        stack: &Stack,
        variants: &[Variant],
    ) -> IndexMap<String, Image> {
        if raw.images.is_empty() {
            self.error(
                Code::InvalidValue,
                self.key(&["images"]),
                "the spec declares no images".into(),
                "add at least one image under `images`".into(),
            );
        }
        let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
        let mut out = IndexMap::with_capacity(raw.images.len());
        for (name, image) in &raw.images {
            let mut built = self.image(raw, name, image, dir, stack, &names);
            built.platforms = self.image_platforms(name, image, &built.variants, stack, variants);
            out.insert(name.clone(), built);
        }
        out
    }

    /// The platforms an image is built for in each variant it is built in: its own list (each
    /// among the stack's), else the variant's, else the stack's.
    fn image_platforms(
        &mut self,
        name: &str,
        image: &RawImage,
        image_variants: &[String],
        stack: &Stack,
        variants: &[Variant],
    ) -> BTreeMap<String, Vec<Platform>> {
        let own = image
            .platforms
            .as_ref()
            .map(|list| self.platform_list(&["images", name, "platforms"], list, Some(&stack.platforms)));
        image_variants
            .iter()
            .map(|variant| {
                let of_variant = variants.iter().find(|v| &v.name == variant).and_then(|v| v.platforms.clone());
                let platforms = own.clone().or(of_variant).unwrap_or_else(|| stack.platforms.clone());
                (variant.clone(), platforms)
            })
            .collect()
    }

    fn image(
        &mut self,
        raw: &RawSpec,
        name: &str,
        image: &RawImage,
        dir: &Path,
        stack: &Stack,
        variants: &[String],
    ) -> Image {
        if let Err(why) = reference::check_path_component(name) {
            self.error(
                Code::InvalidReference,
                self.key(&["images", name]),
                format!("image name `{name}`: {why}"),
                "image names become repository names: lowercase, digits, `-`".into(),
            );
        }
        let (image_dir, dockerfile) = self.paths(name, image, dir);
        let image_variants = self.image_variants(name, image, variants);
        let parents = self.parents(raw, name, &image.parent, &image_variants, variants);
        self.dependencies(raw, name, image);
        self.variant_opt_outs(raw, name, image, &parents, &image_variants);
        for (i, command) in image.doc_commands.iter().enumerate() {
            let path = ["images", name, "doc_commands", &i.to_string()];
            self.declared(&raw.doc_commands, command, &path, Code::UnknownDocCommand, "doc_commands");
        }
        for (i, tag) in image.version_tags.iter().enumerate() {
            let path = ["images", name, "version_tags", &i.to_string()];
            self.declared(&raw.version_tags, tag, &path, Code::UnknownVersionTag, "version_tags");
        }
        self.build_args(&["images", name, "build_args"], &image.build_args, stack);
        let size_budgets = self.size_budgets(name, image, &image_variants, variants);
        Image {
            name: name.to_string(),
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
            platforms: BTreeMap::new(),
        }
    }

    /// The image's folder and Dockerfile, relative to the spec's folder and written plainly
    /// (`./app/` is `app`). The folder must stay inside the spec's folder: it is what a build
    /// sends and what `plan --since` maps changed files to, so a folder elsewhere would be
    /// built but never rebuilt. The Dockerfile must be inside the folder: Docker reads it from
    /// the build context.
    fn paths(&mut self, name: &str, image: &RawImage, dir: &Path) -> (PathBuf, PathBuf) {
        let written = image.dir.clone().unwrap_or_else(|| name.to_string());
        let image_dir = match contained(&written) {
            Ok(path) => path,
            Err(why) => {
                self.outside(name, "dir", &written, why, dir);
                return (PathBuf::from(name), PathBuf::from(name).join("Dockerfile"));
            }
        };
        let file = image.dockerfile.as_deref().unwrap_or("Dockerfile");
        let dockerfile = match contained(file) {
            Ok(path) if !path.as_os_str().is_empty() => image_dir.join(path),
            Ok(_) | Err(_) => {
                self.error(
                    Code::InvalidPath,
                    self.value(&["images", name, "dockerfile"]),
                    format!("image `{name}`: `dockerfile: {file}` is not a file inside the image's folder"),
                    "Docker reads the Dockerfile from the build context: keep it in the image's folder and name it relative to that folder, such as `dockerfile: Dockerfile.gpu`".into(),
                );
                return (image_dir.clone(), image_dir.join("Dockerfile"));
            }
        };
        if self.files == Files::Check {
            self.files_exist(name, image, dir, &image_dir, &dockerfile);
        }
        (image_dir, dockerfile)
    }

    fn outside(&mut self, name: &str, key: &str, written: &str, why: &str, dir: &Path) {
        let folder = dir.file_name().map_or_else(|| dir.display().to_string(), |f| f.to_string_lossy().into_owned());
        let problem = if why == "absolute" {
            "is an absolute path".to_string()
        } else {
            format!("leaves the spec's folder ({folder})")
        };
        self.error(
            Code::InvalidPath,
            self.value(&["images", name, key]),
            format!("image `{name}`: `{key}: {written}` {problem}"),
            format!("an image's folder must be inside the spec's folder: it is what a build sends and what `plan --since` maps changes to, so a folder elsewhere would never be rebuilt; move it under {folder}/ and write `{key}:` relative to it"),
        );
    }

    /// The folder and the Dockerfile exist, and no symbolic link on the way leads out of the
    /// spec's folder (git records a link, not what it points to).
    fn files_exist(&mut self, name: &str, image: &RawImage, dir: &Path, image_dir: &Path, dockerfile: &Path) {
        let full = dir.join(image_dir);
        if !full.is_dir() {
            self.error(
                Code::MissingDirectory,
                if image.dir.is_some() { self.value(&["images", name, "dir"]) } else { self.key(&["images", name]) },
                format!("image `{name}`: the directory {} does not exist", full.display()),
                format!("create it with a Dockerfile, or set `dir:` to the image's folder under {}", dir.display()),
            );
        } else if !dir.join(dockerfile).is_file() {
            self.error(
                Code::MissingDockerfile,
                if image.dockerfile.is_some() {
                    self.value(&["images", name, "dockerfile"])
                } else {
                    self.key(&["images", name])
                },
                format!("image `{name}`: the Dockerfile {} does not exist", dir.join(dockerfile).display()),
                "add it, or set `dockerfile:` to its name inside the image's folder".into(),
            );
        } else if let Some(link) = link_outside(dir, dockerfile) {
            self.error(
                Code::InvalidPath,
                if image.dir.is_some() { self.value(&["images", name, "dir"]) } else { self.key(&["images", name]) },
                format!("image `{name}`: {} is a symbolic link that leads out of the spec's folder", link.display()),
                "git records the link, not what it leads to, so changes there would never rebuild the image; move the files into the image's folder".into(),
            );
        }
    }

    /// The variants the image is built in, in the stack's order.
    fn image_variants(&mut self, name: &str, image: &RawImage, variants: &[String]) -> Vec<String> {
        let Some(list) = &image.variants else {
            return variants.to_vec();
        };
        for (i, variant) in list.iter().enumerate() {
            if !variants.contains(variant) {
                let location = self.value(&["images", name, "variants", &i.to_string()]);
                self.unknown_variant(variant, location, variants);
            }
        }
        if list.is_empty() {
            self.error(
                Code::InvalidValue,
                self.value(&["images", name, "variants"]),
                format!("image `{name}` is built in no variant"),
                "list at least one variant, or remove the image".into(),
            );
        }
        variants.iter().filter(|v| list.contains(v)).cloned().collect()
    }

    /// The parent in each variant the image is built in.
    fn parents(
        &mut self,
        raw: &RawSpec,
        name: &str,
        parent: &RawParent,
        image_variants: &[String],
        variants: &[String],
    ) -> BTreeMap<String, Parent> {
        let mut parents = BTreeMap::new();
        let map = match parent {
            RawParent::Same(parent) => {
                if let Some(resolved) = self.resolve(raw, parent, &["images", name, "parent"], "parent") {
                    parents.extend(image_variants.iter().map(|variant| (variant.clone(), resolved.clone())));
                }
                return parents;
            }
            RawParent::PerVariant(map) => map,
        };
        for (variant, parent) in map {
            let path = ["images", name, "parent", variant.as_str()];
            if !self.variant_entry(&path, "declares a parent", image_variants, variants) {
                continue;
            }
            if let Some(resolved) = self.resolve(raw, parent, &path, "parent") {
                parents.insert(variant.clone(), resolved);
            }
        }
        for variant in image_variants.iter().filter(|v| !map.contains_key(*v)) {
            self.error(
                Code::InvalidValue,
                self.value(&["images", name, "parent"]),
                format!("image `{name}` has no parent for variant `{variant}`"),
                format!("add `{variant}: <image or base>` under `parent`, or leave `{variant}` out of the image's `variants`"),
            );
        }
        parents
    }

    fn dependencies(&mut self, raw: &RawSpec, name: &str, image: &RawImage) {
        let mut seen = BTreeSet::new();
        for (i, dependency) in image.depends_on.iter().enumerate() {
            let index = i.to_string();
            let path = ["images", name, "depends_on", index.as_str()];
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
    }

    /// A parent or dependency of the stack must be built in each variant the image is.
    fn variant_opt_outs(
        &mut self,
        raw: &RawSpec,
        name: &str,
        image: &RawImage,
        parents: &BTreeMap<String, Parent>,
        image_variants: &[String],
    ) {
        for variant in image_variants {
            let parent = match parents.get(variant) {
                Some(Parent::Image(parent)) => Some((parent, "parent")),
                _ => None,
            };
            let dependencies =
                image.depends_on.iter().filter(|d| raw.images.contains_key(*d)).map(|d| (d, "dependency"));
            for (other, role) in parent.into_iter().chain(dependencies) {
                if raw.images[other].variants.as_ref().is_some_and(|list| !list.contains(variant)) {
                    let key = if role == "parent" { "parent" } else { "depends_on" };
                    self.error(
                        Code::VariantOptOut,
                        self.value(&["images", name, key]),
                        format!("image `{name}` is built in variant `{variant}`, but its {role} `{other}` opts out of that variant"),
                        format!("add `{variant}` to `{other}`'s variants, or leave it out of `{name}`'s"),
                    );
                }
            }
        }
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
        match &image.size_budget {
            None => {}
            Some(RawBudget::Same(size)) => {
                if let Some(size) = self.size(size, &["images", name, "size_budget"]) {
                    budgets.extend(image_variants.iter().map(|variant| (variant.clone(), size)));
                }
            }
            Some(RawBudget::PerVariant(map)) => {
                for (variant, size) in map {
                    let path = ["images", name, "size_budget", variant.as_str()];
                    if !self.variant_entry(&path, "has a size budget", image_variants, variants) {
                        continue;
                    }
                    if let Some(size) = self.size(size, &path) {
                        budgets.insert(variant.clone(), size);
                    }
                }
            }
        }
        budgets
    }

    /// Whether the entry at `path` (`images.<name>.<key>.<variant>`) of a per-variant map names a
    /// variant the image is built in; an error that says which otherwise. `what` says what the
    /// entry does: `declares a parent`.
    fn variant_entry(&mut self, path: &[&str; 4], what: &str, image_variants: &[String], variants: &[String]) -> bool {
        let [_, name, _, variant] = *path;
        if !variants.iter().any(|v| v == variant) {
            let location = self.key(path);
            self.unknown_variant(variant, location, variants);
            return false;
        }
        if !image_variants.iter().any(|v| v == variant) {
            self.error(
                Code::VariantOptOut,
                self.key(path),
                format!("image `{name}` {what} for variant `{variant}` but is not built in it"),
                format!("remove the entry, or add `{variant}` to the image's `variants`"),
            );
            return false;
        }
        true
    }

    /// A size in bytes, or an error at the value that says what a size looks like.
    fn size(&mut self, size: &RawSize, path: &[&str]) -> Option<u64> {
        let text = size.0.as_str();
        let bytes = parse_size(text);
        if bytes.is_none() {
            let (message, hint) = match text.trim().parse::<f64>() {
                Ok(_) => (
                    format!("`{text}` is a number without a unit"),
                    format!(
                        "write the unit, such as `{} MB`, `{} MiB` or `{} GB`",
                        text.trim(),
                        text.trim(),
                        text.trim()
                    ),
                ),
                Err(_) => (
                    format!("`{text}` is not a size"),
                    "write a number and a unit, such as `1.5 GB`, `800 MB` or `2 GiB`".to_string(),
                ),
            };
            self.error(Code::InvalidValue, self.value(path), message, hint);
        }
        bytes
    }

    /// Resolves a parent or dependency name against the stack's images and bases.
    fn resolve(&mut self, raw: &RawSpec, name: &str, path: &[&str], what: &str) -> Option<Parent> {
        if raw.images.contains_key(name) {
            return Some(Parent::Image(name.to_string()));
        }
        if raw.bases.contains_key(name) {
            return Some(Parent::Base(name.to_string()));
        }
        let count = raw.images.len() + raw.bases.len();
        let best = self.suggest(name, count, raw.images.keys().chain(raw.bases.keys()).map(String::as_str));
        let hint = match best {
            Some(best) => format!("did you mean `{best}`? A {what} must be an image or a base declared in this file"),
            None => format!("a {what} must be an image under `images` or a base under `bases` in this file"),
        };
        self.error(Code::UnknownImage, self.value(path), format!("unknown {what} `{name}`"), hint);
        None
    }

    pub(super) fn unknown_variant(&mut self, name: &str, location: Option<Location>, variants: &[String]) {
        let hint = match self.suggest(name, variants.len(), variants.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`? The stack's variants are: {}", variants.join(", ")),
            None => format!("the stack's variants are: {} (declared under `variants`)", variants.join(", ")),
        };
        self.error(Code::UnknownVariant, location, format!("unknown variant `{name}`"), hint);
    }

    /// `name` (listed by an image at `path`) must be declared under the top-level `section`.
    fn declared(&mut self, declared: &IndexMap<String, String>, name: &str, path: &[&str], code: Code, section: &str) {
        if declared.contains_key(name) {
            return;
        }
        let what = if code == Code::UnknownVersionTag { "version tag" } else { "documentation command" };
        let best = self.suggest(name, declared.len(), declared.keys().map(String::as_str));
        let hint = match best {
            Some(best) => format!("did you mean `{best}`? Declare {what}s under the top-level `{section}`"),
            None => format!("declare it under the top-level `{section}`"),
        };
        self.error(code, self.value(path), format!("unknown {what} `{name}`"), hint);
    }
}

/// The first symbolic link on the way from `dir` to `dir/path` that leads out of `dir`.
fn link_outside(dir: &Path, path: &Path) -> Option<PathBuf> {
    let mut here = dir.to_path_buf();
    let mut root: Option<PathBuf> = None;
    for part in path.components() {
        here.push(part);
        if !here.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        let root = root.get_or_insert_with(|| dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
        if !here.canonicalize().is_ok_and(|target| target.starts_with(&*root)) {
            return Some(here);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::contained;
    use rstest::rstest;

    #[rstest]
    #[case("app", Ok("app"))]
    #[case("./app/", Ok("app"))]
    #[case("shared/../app", Ok("app"))]
    #[case("a/b/./c", Ok("a/b/c"))]
    #[case(".", Ok(""))]
    #[case("../other/ctx", Err("leaves"))]
    #[case("app/../../x", Err("leaves"))]
    #[case("/srv/ctx", Err("absolute"))]
    fn keeps_paths_inside(#[case] path: &str, #[case] expected: Result<&str, &str>) {
        let found = contained(path).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(found.as_deref().map_err(|e| *e), expected);
    }
}
