//! What an image is, computed from the repository alone: its **inputs digest**, a Merkle digest
//! over its own inputs (the build context after `.dockerignore` and the change rules, the
//! Dockerfile, the build arguments, the variant, the platform) and the inputs digests of
//! everything it is built on (its parent, its `depends_on` images, its base). A base's digest
//! covers its reference as written (pinned by digest, ideally), its recipe, its `refresh` key
//! and its platform. `linux/amd64` is written as nothing, so the pins made before platforms
//! existed stay what they were; every other platform adds a line, so each platform of an image
//! has a pin of its own.
//!
//! Any machine computes the same digests for the same tree, with no engine and no registry, so
//! a fresh CI runner knows from the repository which pin (`<repository>:inputs-<digest>`) each
//! image must have, and asks the registry whether it exists. A change anywhere changes the
//! digest of that image and of everything built on it, and nothing else. Reads files; talks to
//! nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::context::{self, ContextError};
use crate::graph::{ImageGraph, NodeId};
use crate::platform::Platform;
use crate::spec::{Base, Image, Parent, Spec, ARCH_PLACEHOLDER};

/// The version of what the inputs digest covers; bump it when that changes.
pub const INPUTS_SCHEMA: &str = "xtask-stack-inputs/v2";
/// The version of what a base's digest covers.
pub const BASE_SCHEMA: &str = "xtask-stack-base/v1";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("base `{name}`: cannot read the root file system its recipe imports, {}: {source}\n  hint: make the file (it is part of the base's identity), or point `recipe.import` at it", path.display())]
    Import { name: String, path: PathBuf, source: std::io::Error },
}

/// An image's identity and the tag that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `sha256:...`: the inputs digest.
    pub digest: String,
    /// `<registry>/<namespace>/<name>`.
    pub repository: String,
}

impl Pin {
    pub fn new(digest: String, repository: String) -> Pin {
        Pin { digest, repository }
    }

    /// `inputs-` and the first 32 hex digits (128 bits) of the digest.
    pub fn tag(&self) -> String {
        pin_tag(&self.digest)
    }

    /// `<repository>:inputs-...`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag())
    }
}

/// The pin tag of a digest: `inputs-` and 32 hex digits (128 bits).
pub fn pin_tag(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("inputs-{}", &hex[..hex.len().min(32)])
}

/// The identities of a set of images and of the bases they are built on.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    /// By base name, and `/<arch>` in a stack of several platforms ([`base_key`]).
    pub bases: BTreeMap<String, Pin>,
    /// By node name (`image` or `image@variant`).
    pub nodes: BTreeMap<String, Pin>,
}

/// How a base is named among the identities: `debian`, or `debian/arm64` in a stack of several
/// platforms.
pub fn base_key(spec: &Spec, base: &str, platform: &Platform) -> String {
    spec.on_platform(base, platform)
}

/// The line a platform adds to a digest: none for `linux/amd64` (what every pin was before
/// platforms), `platform linux/arm64` for the others.
fn platform_line(platform: &Platform) -> String {
    if platform.to_string() == "linux/amd64" {
        String::new()
    } else {
        format!("platform {platform}\n")
    }
}

/// The file an `import` recipe reads for `platform`: `{arch}` replaced by the platform's suffix.
pub fn import_file(file: &str, platform: &Platform) -> String {
    file.replace(ARCH_PLACEHOLDER, &platform.suffix())
}

/// The digest of a base for `platform`: its reference as written, its recipe (the imported
/// file's contents for an `import` recipe), its refresh key and the platform.
pub fn base_digest(base: &Base, spec_dir: &Path, platform: &Platform) -> Result<String, IdentityError> {
    let mut hasher = Sha256::new();
    hasher.update(format!("{BASE_SCHEMA}\nreference {}\n", base.reference));
    hasher.update(platform_line(platform));
    if let Some(recipe) = &base.recipe {
        if let Some(d) = &recipe.debootstrap {
            hasher.update(format!(
                "debootstrap suite={} mirror={} variant={} include={} components={}\n",
                d.suite,
                d.mirror,
                d.variant,
                d.include.join(","),
                d.components.join(",")
            ));
        }
        if let Some(file) = &recipe.import {
            let file = import_file(file, platform);
            let path = spec_dir.join(&file);
            let contents = std::fs::read(&path).map_err(|source| IdentityError::Import {
                name: base.name.clone(),
                path: path.clone(),
                source,
            })?;
            hasher.update(format!("import {file} sha256:{:x}\n", Sha256::digest(&contents)));
        }
    }
    if let Some(refresh) = &base.refresh {
        hasher.update(format!("refresh {refresh}\n"));
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// The inputs digest of one image: everything that decides it, nothing that does not.
/// `upstream` holds `(build argument, inputs digest)` for its parent and dependencies.
pub fn inputs_digest(
    id: &NodeId,
    dockerfile: &str,
    context_digest: &str,
    args: &BTreeMap<String, String>,
    upstream: &[(String, String)],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{INPUTS_SCHEMA}\n"));
    hasher.update(format!(
        "image {}\nvariant {}\ndockerfile {dockerfile}\ncontext {context_digest}\n",
        id.image, id.variant
    ));
    hasher.update(platform_line(&id.platform));
    for (key, value) in args {
        hasher.update(format!("arg {key}={value}\n"));
    }
    for (role, digest) in upstream {
        hasher.update(format!("upstream {role} {digest}\n"));
    }
    format!("sha256:{:x}", hasher.finalize())
}

/// The Dockerfile's path inside the image's context, with `/` separators.
pub fn dockerfile_in_context(image: &Image) -> String {
    image.dockerfile.strip_prefix(&image.dir).unwrap_or(&image.dockerfile).to_string_lossy().replace('\\', "/")
}

/// What cannot trigger a rebuild cannot be in the image: the files the change rules ignore or
/// only re-test on (an image's `tests/`) are not sent, so they are not in the digest either.
/// Takes a path relative to the image's folder.
pub fn context_filter(spec: &Spec, image: &Image) -> impl Fn(&str) -> bool + Send + Sync + 'static {
    let rules = spec.changes.clone();
    let prefix = Spec::repo_path(&spec.folder_name(), &image.dir);
    move |relative: &str| {
        let path = format!("{prefix}/{relative}");
        rules.ignore.is_match(&path) || rules.test_only.is_match(&path)
    }
}

/// The bases `id` is built on directly: its parent when that is a base, and the bases among
/// its dependencies.
pub fn bases_of<'a>(spec: &'a Spec, id: &NodeId) -> impl Iterator<Item = &'a str> + 'a {
    let image = &spec.images[&id.image];
    let parent = match image.parents.get(&id.variant) {
        Some(Parent::Base(name)) => Some(name.as_str()),
        _ => None,
    };
    let dependencies = image.depends_on.iter().map(String::as_str).filter(|d| spec.bases.contains_key(*d));
    parent.into_iter().chain(dependencies)
}

/// The identities of `nodes`, of every image they are built on, and of their bases.
pub fn identities(spec: &Spec, graph: &ImageGraph, nodes: &[NodeId]) -> Result<Identities, IdentityError> {
    let nodes = crate::build::with_ancestors(graph, nodes);
    let mut out = Identities::default();
    for id in &nodes {
        for base in bases_of(spec, id) {
            if let std::collections::btree_map::Entry::Vacant(entry) =
                out.bases.entry(base_key(spec, base, &id.platform))
            {
                let digest = base_digest(&spec.bases[base], &spec.dir, &id.platform)?;
                entry.insert(Pin::new(digest, spec.base_repository(base)));
            }
        }
    }
    for id in &nodes {
        let image = &spec.images[&id.image];
        let upstream = upstream_digests(spec, id, &out);
        let dockerfile = dockerfile_in_context(image);
        let filter = context_filter(spec, image);
        let context = context::digest(&spec.dir.join(&image.dir), &dockerfile, &filter)?;
        let args = spec.build_args(image, &id.variant);
        let digest = inputs_digest(id, &dockerfile, &context, &args, &upstream);
        out.nodes.insert(id.name.clone(), Pin::new(digest, spec.repository(&id.image, &id.variant)));
    }
    Ok(out)
}

/// `(build argument, inputs digest)` of what `id` is built on, parent first.
pub fn upstream_digests(spec: &Spec, id: &NodeId, known: &Identities) -> Vec<(String, String)> {
    let image = &spec.images[&id.image];
    let digest_of = |name: &str| -> String {
        match known.bases.get(&base_key(spec, name, &id.platform)) {
            Some(base) if spec.bases.contains_key(name) => base.digest.clone(),
            _ => known.nodes.get(&id.sibling(spec, name).name).map(|pin| pin.digest.clone()).unwrap_or_default(),
        }
    };
    let mut upstream = Vec::new();
    if let Some(parent) = image.parents.get(&id.variant) {
        upstream.push((spec.stack.parent_arg.clone(), digest_of(parent.name())));
    }
    for dependency in &image.depends_on {
        upstream.push((Spec::dependency_arg(dependency), digest_of(dependency)));
    }
    upstream
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The fixture stack, copied to `dir`, and every node's pin there.
    fn pins_in(dir: &Path) -> BTreeMap<String, String> {
        crate::fixture::copy_dir(&crate::fixture::source_dir(), dir).unwrap();
        pins_of(dir)
    }

    fn pins_of(dir: &Path) -> BTreeMap<String, String> {
        let spec = Spec::load(&dir.join("images/spec.yml")).unwrap();
        let graph = ImageGraph::new(&spec);
        let nodes: Vec<NodeId> = graph.topological_order().cloned().collect();
        let identities = identities(&spec, &graph, &nodes).unwrap();
        let mut out: BTreeMap<String, String> =
            identities.nodes.into_iter().map(|(name, pin)| (name, pin.digest)).collect();
        out.extend(identities.bases.into_iter().map(|(name, pin)| (format!("base:{name}"), pin.digest)));
        out
    }

    fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
        before.keys().filter(|name| before[*name] != after[*name]).cloned().collect()
    }

    #[test]
    fn the_same_tree_in_two_folders_has_the_same_identities() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let nested = two.path().join("somewhere/else");
        assert_eq!(pins_in(one.path()), pins_in(&nested));
    }

    #[rstest::rstest]
    #[case::a_root("images/tools/data.txt", &["app", "app@gpu", "extra", "tools", "tools@gpu"])]
    #[case::mid_graph("images/app/data.txt", &["app", "app@gpu", "extra"])]
    #[case::a_leaf("images/extra/Dockerfile", &["extra"])]
    #[case::the_root_of_both_variants("images/base/data.txt", &["app", "app@gpu", "base", "base@gpu", "extra"])]
    #[case::a_test_file("images/app/tests/more.yml", &[])]
    #[case::a_readme("images/base/README.md", &[])]
    fn a_change_reaches_its_image_and_every_descendant_and_nothing_else(#[case] file: &str, #[case] expected: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let before = pins_in(dir.path());
        let path = dir.path().join(file);
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, format!("{old}# changed\n")).unwrap();
        let cpu_and_gpu: Vec<String> = changed(&before, &pins_of(dir.path()));
        assert_eq!(cpu_and_gpu, expected.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_base_refresh_rebuilds_everything_on_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let before = pins_in(dir.path());
        let spec = dir.path().join("images/spec.yml");
        let text = std::fs::read_to_string(&spec).unwrap();
        std::fs::write(
            &spec,
            text.replacen(
                "    image: localhost/debian:bookworm\n",
                "    image: localhost/debian:bookworm\n    refresh: 2026-12\n",
                1,
            ),
        )
        .unwrap();
        let after = pins_of(dir.path());
        assert_eq!(changed(&before, &after).len(), before.len(), "every image and the base: {after:?}");
    }

    #[test]
    fn the_pin_tag_is_128_bits_of_the_digest() {
        let pin = Pin::new(format!("sha256:{}", "ab".repeat(32)), "registry.example.org/ns/base".into());
        assert_eq!(pin.tag(), format!("inputs-{}", "ab".repeat(16)));
        assert_eq!(pin.reference(), format!("registry.example.org/ns/base:inputs-{}", "ab".repeat(16)));
    }

    #[test]
    fn a_context_digest_is_what_the_archive_sent_reports() {
        let dir = crate::fixture::source_dir().join("images/app");
        let none = |_: &str| false;
        let archived = context::archive(&dir, "Dockerfile", &[], &none).unwrap();
        assert_eq!(context::digest(&dir, "Dockerfile", &none).unwrap(), archived.digest);
    }
}
