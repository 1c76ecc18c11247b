//! What an edit of the spec changes, image by image: `plan --since` compares the spec at the
//! merge base with the one checked out, so adding an image rebuilds that image, not the stack.
//!
//! An image's definition in a variant is what decides its build: its parent and dependencies
//! (with the references and recipes of the bases among them), its build arguments after merging,
//! the argument that carries the parent, its folder and Dockerfile, the repository it is
//! published to and its size budget. Descriptions, documentation commands, version tags and
//! change rules are not part of it: editing them rebuilds nothing. Pure.

use std::collections::BTreeMap;

use super::{Image, Parent, Spec};

/// How the spec changed since the merge base, node by node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDiff {
    /// The spec file, relative to the repository root: a change to it is explained by `nodes`
    /// instead of by the change rules.
    pub file: String,
    /// `(image, variant)` to the fields of its definition that changed.
    pub nodes: BTreeMap<(String, String), Vec<String>>,
}

/// What `spec` changes against `before`, its text at the merge base (`file` is the spec's path
/// from the repository root). `None` when there is no such text or it is not a valid spec:
/// the change rules then decide, as for any file.
pub fn against(spec: &Spec, file: String, before: Option<&str>) -> Option<SpecDiff> {
    let before = Spec::parse_alone(&spec.file, before?).ok()?;
    Some(SpecDiff { file, nodes: changed_nodes(&before, spec) })
}

/// The nodes whose definition differs, as `(image, variant)`, each with the fields that differ
/// (`build_args.PYTHON_VERSION`, `parent`, ...), or `new image` / `variants` for a node the
/// older spec does not have.
pub fn changed_nodes(before: &Spec, after: &Spec) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    for image in after.images.values() {
        for variant in &image.variants {
            let fields = match before.images.get(&image.name) {
                None => vec!["new image".to_string()],
                Some(old) if !old.variants.contains(variant) => vec!["variants".to_string()],
                Some(old) => changed_fields(&definition(before, old, variant), &definition(after, image, variant)),
            };
            if !fields.is_empty() {
                out.insert((image.name.clone(), variant.clone()), fields);
            }
        }
    }
    out
}

/// The keys whose values differ between two definitions, in order.
fn changed_fields(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|key| before.get(*key) != after.get(*key)).cloned().collect()
}

/// What decides the build of `image` in `variant`, field by field.
fn definition(spec: &Spec, image: &Image, variant: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(parent) = image.parents.get(variant) {
        out.insert("parent".to_string(), parent.name().to_string());
        if let Parent::Base(base) = parent {
            base_fields(spec, base, &mut out);
        }
    }
    out.insert("depends_on".to_string(), image.depends_on.join(", "));
    for dependency in image.depends_on.iter().filter(|name| spec.bases.contains_key(*name)) {
        base_fields(spec, dependency, &mut out);
    }
    for (name, value) in spec.build_args(image, variant) {
        out.insert(format!("build_args.{name}"), value);
    }
    out.insert("stack.parent_arg".to_string(), spec.stack.parent_arg.clone());
    out.insert("dir".to_string(), image.dir.to_string_lossy().into_owned());
    out.insert("dockerfile".to_string(), image.dockerfile.to_string_lossy().into_owned());
    out.insert("repository".to_string(), spec.repository(&image.name, variant));
    if let Some(budget) = image.size_budgets.get(variant) {
        out.insert("size_budget".to_string(), budget.to_string());
    }
    out
}

fn base_fields(spec: &Spec, name: &str, out: &mut BTreeMap<String, String>) {
    if let Some(base) = spec.bases.get(name) {
        out.insert(format!("bases.{name}.image"), base.reference.to_string());
        out.insert(format!("bases.{name}.recipe"), format!("{:?}", base.recipe));
    }
}
