//! The spec file as written: serde types that mirror `images/spec.yml` key for key.
//!
//! Unknown keys are refused here (`deny_unknown_fields`); everything that needs more than one
//! value to check (names that must exist, cycles, Dockerfiles) is `validate`'s job. Nothing in
//! this module reads files.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Build arguments: names to values. Values are strings: quote numbers (`"3.10"`) so YAML keeps
/// them as written.
pub type BuildArgs = BTreeMap<String, String>;

/// How a duplicate-key error starts; `validate` then finds both places in the text.
pub const DUPLICATE_KEY: &str = "duplicate key";

/// A mapping whose keys must be unique (YAML parsers keep the last of two equal keys silently).
fn unique<'de, D: Deserializer<'de>, V: Deserialize<'de>>(deserializer: D) -> Result<IndexMap<String, V>, D::Error> {
    struct Unique<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
        type Value = IndexMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("{DUPLICATE_KEY} `{key}`")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique(PhantomData))
}

fn unique_args<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BuildArgs, D::Error> {
    Ok(unique::<D, String>(deserializer)?.into_iter().collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub stack: RawStack,
    #[serde(default, deserialize_with = "unique_args")]
    pub build_args: BuildArgs,
    #[serde(default, deserialize_with = "unique")]
    pub variants: IndexMap<String, RawVariant>,
    #[serde(default, deserialize_with = "unique")]
    pub bases: IndexMap<String, RawBase>,
    #[serde(deserialize_with = "unique")]
    pub images: IndexMap<String, RawImage>,
    #[serde(default, deserialize_with = "unique")]
    pub doc_commands: IndexMap<String, String>,
    /// Commands run inside an image whose output becomes a tag (`python` -> `python-3.11.2`).
    #[serde(default, deserialize_with = "unique")]
    pub version_tags: IndexMap<String, String>,
    #[serde(default)]
    pub changes: RawChanges,
    /// The pending security updates check (docs/supply-chain.md).
    #[serde(default)]
    pub security: Option<Security>,
}

/// The security check: which archive to ask, and how many pending updates fail an image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// The Debian security archive (`http://deb.debian.org/debian-security`); the suite is the
    /// image's own codename with `-security` (`bookworm-security`).
    #[serde(default = "default_security_archive")]
    pub archive: String,
    /// An image with more pending security updates than this fails its security trial.
    pub max_pending: usize,
    /// An image with more high or critical findings of a scanner (trivy, grype) than this fails.
    #[serde(default)]
    pub max_vulnerabilities: Option<usize>,
}

pub fn default_security_archive() -> String {
    "http://deb.debian.org/debian-security".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    pub registry: String,
    pub namespace: String,
    pub tag_prefix: String,
    #[serde(default)]
    pub parent_arg: Option<String>,
    /// A CA bundle on the build host that `RUN` steps may trust (relative to the spec's folder).
    #[serde(default)]
    pub ca_bundle: Option<String>,
    /// Layer cache sources for every image: `{repository}` and `{tag_prefix}` are filled in.
    #[serde(default)]
    pub cache_from: Vec<String>,
    /// Where builds look for images that are already built: `local` (this engine) or `registry`
    /// (this engine, then the stack's registry).
    #[serde(default)]
    pub cache: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "unique_args")]
    pub build_args: BuildArgs,
    /// Its images' GPU trials run on a GPU runner (the CI's GPU job lists them).
    #[serde(default)]
    pub gpu: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBase {
    pub image: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub recipe: Option<RawRecipe>,
    /// Part of the base's identity: bumping it (`2026-11` to `2026-12`) makes the base again and
    /// rebuilds everything on it, on purpose (security updates, point releases).
    #[serde(default)]
    pub refresh: Option<String>,
}

/// How to make a base image locally when it cannot be pulled: exactly one of `debootstrap`
/// (a Debian root file system made on the host) or `import` (a root file system tarball,
/// relative to the spec's folder).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipe {
    #[serde(default)]
    pub debootstrap: Option<Debootstrap>,
    #[serde(default)]
    pub import: Option<String>,
}

/// `debootstrap --variant=<variant> [--include=...] <suite> DIR <mirror>`, then `docker import`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debootstrap {
    pub suite: String,
    pub mirror: String,
    #[serde(default = "default_debootstrap_variant")]
    pub variant: String,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
}

fn default_debootstrap_variant() -> String {
    "minbase".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    #[serde(default)]
    pub description: Option<String>,
    /// The build context, relative to the spec's directory. Default: the image's name.
    #[serde(default)]
    pub dir: Option<String>,
    /// Relative to `dir`. Default: `Dockerfile`.
    #[serde(default)]
    pub dockerfile: Option<String>,
    pub parent: RawParent,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default, deserialize_with = "unique_args")]
    pub build_args: BuildArgs,
    /// The variants this image is built in. Default: all of the stack's variants.
    #[serde(default)]
    pub variants: Option<Vec<String>>,
    #[serde(default)]
    pub doc_commands: Vec<String>,
    /// The largest size the image may have, such as `1.5 GB`; or one per variant.
    #[serde(default)]
    pub size_budget: Option<RawBudget>,
    /// Version tags of this image, next to those it inherits from its parent.
    #[serde(default)]
    pub version_tags: Vec<String>,
}

/// One size budget for every variant, or one per variant.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBudget {
    Same(String),
    PerVariant(IndexMap<String, String>),
}

/// One parent for every variant, or one per variant.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawParent {
    Same(String),
    PerVariant(IndexMap<String, String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChanges {
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub rebuild_all: Vec<String>,
    #[serde(default)]
    pub test_only: Vec<String>,
}
