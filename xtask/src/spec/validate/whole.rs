//! The checks across the whole stack, once every image is read: published names, cycles (per
//! variant, placed at the declaration of the cycle's first edge) and every Dockerfile against
//! the spec.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;

use super::Validator;
use crate::diagnostic::{Code, Location};
use crate::dockerfile::{self, Dockerfile};
use crate::platform::Platform;
use crate::spec::input::{self, Subject};
use crate::spec::ARCH_PLACEHOLDER;
use crate::spec::{Image, Parent, Spec};
use crate::{graph, reference};

impl Validator<'_> {
    /// Every image's published name must be a valid reference in every variant, and so must
    /// every layer-cache template once filled in.
    pub(super) fn repositories(&mut self, spec: &Spec) {
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

    /// An image's parent and its `depends_on` images must be built for every platform the image
    /// is built for, in each variant; a base made by an `import` recipe for several platforms
    /// needs a file per platform (`{arch}` in its name).
    pub(super) fn platforms(&mut self, spec: &Spec) {
        let mut base_platforms: BTreeMap<&str, BTreeSet<&Platform>> = BTreeMap::new();
        for image in spec.images.values() {
            // By edge: the image it reads and how (`parent` or `dependency`).
            let mut missing: IndexMap<(&str, &str), MissingPlatforms> = IndexMap::new();
            for (variant, platforms) in &image.platforms {
                let parent = image
                    .parents
                    .get(variant)
                    .map(|p| (p.name(), "parent", vec!["parent".to_string(), variant.clone()]));
                let dependencies = image.depends_on.iter().enumerate().map(|(index, name)| {
                    (name.as_str(), "dependency", vec!["depends_on".to_string(), index.to_string()])
                });
                for (other, role, written) in parent.into_iter().chain(dependencies) {
                    let Some(theirs) = spec.images.get(other).map(|o| o.platforms_in(variant)) else {
                        base_platforms.entry(other).or_default().extend(platforms);
                        continue;
                    };
                    if theirs.is_empty() {
                        continue; // Not built in the variant at all: `variant-opt-out` says so.
                    }
                    for platform in platforms.iter().filter(|p| !theirs.contains(p)) {
                        let entry = missing
                            .entry((other, role))
                            .or_insert_with(|| MissingPlatforms { written: written.clone(), what: BTreeSet::new() });
                        entry.what.insert(format!("{platform} in variant `{variant}`"));
                    }
                }
            }
            for ((other, role), MissingPlatforms { written, what }) in missing {
                // The image's own `platforms` when it lists them (the other way to fix it), else
                // the edge: the `depends_on` entry, or the `parent` value (per variant or not).
                let at = |tail: &[String]| {
                    let path: Vec<&str> =
                        ["images", image.name.as_str()].into_iter().chain(tail.iter().map(String::as_str)).collect();
                    self.value_exact(&path)
                };
                let location = at(&["platforms".to_string()])
                    .or_else(|| at(&written))
                    .or_else(|| at(&written[..1]))
                    .or_else(|| self.key(&["images", &image.name]));
                let what: Vec<String> = what.into_iter().collect();
                self.error(
                    Code::PlatformOptOut,
                    location,
                    format!("image `{}` is built for {}, but its {role} `{other}` is not", image.name, what.join(", ")),
                    format!("add the platform to `{other}`'s `platforms` (or its variant's), or list only `{other}`'s platforms under `images.{}.platforms`", image.name),
                );
            }
        }
        for (name, platforms) in base_platforms.into_iter().filter(|(_, platforms)| platforms.len() > 1) {
            let Some(file) = spec.bases.get(name).and_then(|b| b.recipe.as_ref()).and_then(|r| r.import.as_ref())
            else {
                continue;
            };
            if !file.contains(ARCH_PLACEHOLDER) {
                let list: Vec<String> = platforms.iter().map(ToString::to_string).collect();
                self.error(
                    Code::InvalidValue,
                    self.value(&["bases", name, "recipe", "import"]),
                    format!("base `{name}`: `import: {file}` would give the same root file system to {}", list.join(" and ")),
                    format!("name one file per platform with `{ARCH_PLACEHOLDER}` in it, such as `rootfs-{ARCH_PLACEHOLDER}.tar` (read as rootfs-amd64.tar, rootfs-arm64.tar)"),
                );
            }
        }
    }

    /// One error per cycle, naming the variants it is in when it is not in all of them.
    pub(super) fn cycles(&mut self, spec: &Spec) {
        let mut found: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
        for (variant, images) in spec.images_by_variant() {
            let mut edges = Vec::new();
            for image in images {
                if let Some(Parent::Image(parent)) = image.parents.get(&variant.name) {
                    edges.push((image.name.clone(), parent.clone()));
                }
                for dependency in image.depends_on.iter().filter(|d| spec.images.contains_key(*d)) {
                    edges.push((image.name.clone(), dependency.clone()));
                }
            }
            if let Some(cycle) = graph::find_cycle(&edges) {
                found.entry(cycle).or_default().push(&variant.name);
            }
        }
        for (cycle, variants) in found {
            let within = match variants.as_slice() {
                _ if variants.len() == spec.variants.len() => String::new(),
                [one] => format!(" in variant `{one}`"),
                many => {
                    format!(" in variants {}", many.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
                }
            };
            let location = self.edge(spec, &cycle[0], &cycle[1], variants[0]);
            self.error(
                Code::Cycle,
                location,
                format!("the images form a cycle{within}: {}", path(&cycle)),
                format!("each arrow reads \"is built on\" (parent or depends_on){within}; break the cycle by changing one of them"),
            );
        }
    }

    /// Where the spec says that `from` is built on `to` in `variant`.
    fn edge(&self, spec: &Spec, from: &str, to: &str, variant: &str) -> Option<Location> {
        let image = &spec.images[from];
        if image.parents.get(variant) == Some(&Parent::Image(to.to_string())) {
            return self
                .value_exact(&["images", from, "parent", variant])
                .or_else(|| self.value(&["images", from, "parent"]));
        }
        match image.depends_on.iter().position(|d| d == to) {
            Some(i) => self.value(&["images", from, "depends_on", &i.to_string()]),
            None => self.key(&["images", from]),
        }
    }

    /// Every Dockerfile against the spec. Each file is read and parsed once, and checked once
    /// per kind of expectation (parent argument and dependencies): thousands of images sharing
    /// one large Dockerfile cost one pass over it, not thousands. When such a check fails, its
    /// errors are given for the first image, with one more naming the others.
    pub(super) fn dockerfiles(&mut self, spec: &Spec) {
        let mut parsed: HashMap<PathBuf, Option<Rc<Dockerfile>>> = HashMap::new();
        // By (Dockerfile, dependency arguments): `None` when it passed, else the images it
        // failed for, the first one's errors reported.
        let mut verdicts: IndexMap<(PathBuf, Vec<String>), Option<Vec<&str>>> = IndexMap::new();
        for image in spec.images.values() {
            let path = spec.dir.join(&image.dockerfile);
            let dockerfile = parsed.entry(path.clone()).or_insert_with(|| {
                match input::read(&path, Subject::Dockerfile { image: &image.name }) {
                    Ok(text) => Some(Rc::new(dockerfile::parse(&text))),
                    Err(diagnostic) => {
                        self.diagnostics.push(diagnostic);
                        None
                    }
                }
            });
            let Some(dockerfile) = dockerfile.clone() else { continue };
            let expected = expected(spec, image);
            let key = (path.clone(), expected.dependency_args.keys().cloned().collect());
            match verdicts.get_mut(&key) {
                Some(None) => {}
                Some(Some(failed)) => failed.push(&image.name),
                None if dockerfile::verify(&path, &dockerfile, &expected).is_empty() => {
                    verdicts.insert(key, None);
                }
                None => {
                    // Again, with the spec's location in the messages.
                    let parent_location = self.value(&["images", &image.name, "parent"]);
                    let expected = dockerfile::Expected { parent_location, ..expected };
                    self.diagnostics.extend(dockerfile::verify(&path, &dockerfile, &expected));
                    verdicts.insert(key, Some(vec![&image.name]));
                }
            }
        }
        for ((path, _), failed) in verdicts {
            if let Some([first, others @ ..]) = failed.as_deref().filter(|failed| failed.len() > 1) {
                self.shared_errors(&path, first, others);
            }
        }
    }

    /// One error for the images whose Dockerfile failed as `first`'s did.
    fn shared_errors(&mut self, path: &Path, first: &str, others: &[&str]) {
        const NAMED: usize = 5;
        let mut names = others.iter().take(NAMED).map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
        if others.len() > NAMED {
            names.push_str(&format!(" and {} more", others.len() - NAMED));
        }
        self.error(
            Code::FromMismatch,
            Some(Location::file_only(path)),
            format!("the errors of image `{first}` in this Dockerfile are also those of {names}, built from it with the same arguments"),
            "fix the Dockerfile once, for all of them".into(),
        );
    }
}

/// What the spec says `image`'s Dockerfile may build on.
fn expected<'s>(spec: &'s Spec, image: &'s Image) -> dockerfile::Expected<'s> {
    let distinct: BTreeSet<&Parent> = image.parents.values().collect();
    let parent = if distinct.len() == 1 {
        format!("`{}`", image.parents.values().next().map(Parent::name).unwrap_or_default())
    } else {
        image.parents.iter().map(|(v, p)| format!("`{}` ({v})", p.name())).collect::<Vec<_>>().join(", ")
    };
    dockerfile::Expected {
        image: &image.name,
        parent_arg: &spec.stack.parent_arg,
        parent,
        parent_location: None,
        dependency_args: image.depends_on.iter().map(|d| (Spec::dependency_arg(d), d.clone())).collect(),
    }
}

/// A cycle as `a -> b -> a`; a long one with its middle left out, so the message stays short.
fn path(cycle: &[String]) -> String {
    const SHOWN: usize = 5;
    if cycle.len() <= 3 * SHOWN {
        return cycle.join(" -> ");
    }
    let (head, tail) = (&cycle[..SHOWN], &cycle[cycle.len() - SHOWN..]);
    let left_out = cycle.len() - 2 * SHOWN;
    format!("{} -> ({left_out} more) -> {} ({} images)", head.join(" -> "), tail.join(" -> "), cycle.len() - 1)
}

/// The platforms an image is built for that one of the images it reads is not.
struct MissingPlatforms {
    /// Where the edge is written under `images.<name>` (the first variant's, for a parent given
    /// per variant): `parent`/`<variant>` or `depends_on`/`<index>`.
    written: Vec<String>,
    /// `<platform> in variant `<variant>``, sorted.
    what: BTreeSet<String>,
}
