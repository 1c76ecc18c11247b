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
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            unique_entries(map)
        }
    }
    deserializer.deserialize_map(Unique(PhantomData))
}

/// The entries of a mapping, refusing a key written twice.
fn unique_entries<'de, A: MapAccess<'de>, V: Deserialize<'de>>(mut map: A) -> Result<IndexMap<String, V>, A::Error> {
    let mut out = IndexMap::new();
    while let Some((key, value)) = map.next_entry::<String, V>()? {
        if out.contains_key(&key) {
            return Err(de::Error::custom(format!("{DUPLICATE_KEY} `{key}`")));
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn unique_args<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BuildArgs, D::Error> {
    Ok(unique::<D, String>(deserializer)?.into_iter().collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "the spec: a mapping with `stack`, `images` and the other keys of docs/spec.md")]
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
#[serde(expecting = "a mapping with `registry`, `namespace` and `tag_prefix`")]
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
    /// The platforms images are built for (`linux/amd64`, `linux/arm64`). Default: the host's.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a variant: a mapping with `suffix`, `description`, `build_args`, `gpu` or `platforms` (or `{}`)")]
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
    /// The platforms its images are built for, among the stack's. Default: the stack's.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a base: a mapping with `image` and optionally `description` and `recipe`")]
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
#[serde(expecting = "a recipe: `{debootstrap: {...}}` or `{import: rootfs.tar}`")]
pub struct RawRecipe {
    #[serde(default)]
    pub debootstrap: Option<Debootstrap>,
    #[serde(default)]
    pub import: Option<String>,
}

/// `debootstrap --variant=<variant> [--include=...] <suite> DIR <mirror>`, then `docker import`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `suite` and `mirror` (and optionally `variant`, `include`, `components`)")]
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
#[serde(expecting = "an image: a mapping with `parent` and the other image keys of docs/spec.md")]
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
    /// The platforms it is built for in every variant it is built in, among the stack's.
    /// Default: the variant's, else the stack's.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

/// One size budget for every variant, or one per variant.
#[derive(Debug)]
pub enum RawBudget {
    Same(RawSize),
    PerVariant(IndexMap<String, RawSize>),
}

/// A size as written: text such as `1.5 GB`, or a bare number, which `validate` refuses with the
/// unit it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSize(pub String);

/// One parent for every variant, or one per variant.
#[derive(Debug)]
pub enum RawParent {
    Same(String),
    PerVariant(IndexMap<String, String>),
}

/// The visitor of a value that is a scalar or a mapping, with what to make of each.
struct ScalarOrMap<T> {
    expecting: &'static str,
    scalar: fn(String) -> T,
    /// Whether a number is read as its text (else it is refused).
    numbers: bool,
    /// What a mapping makes; `None` refuses mappings.
    map: Option<fn(IndexMap<String, String>) -> T>,
}

impl<'de, T> Visitor<'de> for ScalarOrMap<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        Ok((self.scalar)(value.to_string()))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        self.number(value.to_string(), de::Unexpected::Unsigned(value))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        self.number(value.to_string(), de::Unexpected::Signed(value))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        self.number(value.to_string(), de::Unexpected::Float(value))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let Some(make) = self.map else {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        };
        Ok(make(unique_entries::<A, SizeOrName>(map)?.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

impl<T> ScalarOrMap<T> {
    fn number<E: de::Error>(self, text: String, unexpected: de::Unexpected<'_>) -> Result<T, E> {
        if self.numbers {
            Ok((self.scalar)(text))
        } else {
            Err(E::invalid_type(unexpected, &self))
        }
    }
}

/// A map value of a parent or budget: text, or a number kept as its text (a budget's `300` is
/// then refused for its missing unit; a parent's for not being a name).
struct SizeOrName(String);

impl<'de> Deserialize<'de> for SizeOrName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarOrMap {
            expecting: "a single value",
            scalar: SizeOrName,
            numbers: true,
            map: None,
        })
    }
}

impl<'de> Deserialize<'de> for RawBudget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarOrMap {
            expecting: "a size such as `1.5 GB`, or a map from variant to size",
            scalar: |text| RawBudget::Same(RawSize(text)),
            numbers: true,
            map: Some(|map| RawBudget::PerVariant(map.into_iter().map(|(k, v)| (k, RawSize(v))).collect())),
        })
    }
}

impl<'de> Deserialize<'de> for RawParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarOrMap {
            expecting: "a parent's name, or a map from variant to a parent's name",
            scalar: RawParent::Same,
            numbers: false,
            map: Some(RawParent::PerVariant),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `ignore`, `rebuild_all` or `test_only`")]
pub struct RawChanges {
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub rebuild_all: Vec<String>,
    #[serde(default)]
    pub test_only: Vec<String>,
}
