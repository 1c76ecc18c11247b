//! What an edit of the spec changes, image by image: `plan --since` compares the spec at the
//! merge base with the one checked out, so adding an image rebuilds that image, not the stack.
//!
//! An image's definition in a variant is what decides its build: its parent and dependencies
//! (with the references and recipes of the bases among them), its build arguments after merging,
//! the argument that carries the parent, its folder and Dockerfile, the repository it is
//! published to, its platforms and its size budget. Descriptions, documentation commands, version tags and
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
    // A platform added builds the image for it (and re-tests the others, which stay up to date).
    let platforms: Vec<String> = image.platforms_in(variant).iter().map(ToString::to_string).collect();
    out.insert("platforms".to_string(), platforms.join(", "));
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::path::Path;

    const SPEC: &str = "stack: {registry: r.example.org, namespace: n, tag_prefix: \"1\"}
build_args: {A: \"1\"}
variants: {cpu: {}, gpu: {build_args: {G: \"1\"}}}
bases:
  debian: {image: localhost/debian:12, recipe: {debootstrap: {suite: bookworm, mirror: \"http://deb.debian.org/debian\"}}}
images:
  base: {parent: debian, description: the base, doc_commands: []}
  app: {parent: base, variants: [cpu]}
";

    fn changes(from: &str, to: &str) -> Vec<String> {
        let file = Path::new("images/spec.yml");
        let before = Spec::parse_alone(file, SPEC).unwrap();
        assert!(SPEC.contains(from), "{from}");
        let after = Spec::parse_alone(file, &SPEC.replacen(from, to, 1)).unwrap_or_else(|e| panic!("{e}"));
        changed_nodes(&before, &after)
            .into_iter()
            .map(|((image, variant), fields)| format!("{image}@{variant}: {}", fields.join(", ")))
            .collect()
    }

    #[rstest]
    #[case::nothing("the base", "the base", &[])]
    #[case::description("the base", "a better base", &[])]
    #[case::stack_arg("A: \"1\"", "A: \"2\"", &["app@cpu: build_args.A", "base@cpu: build_args.A", "base@gpu: build_args.A"])]
    #[case::variant_arg("G: \"1\"", "G: \"2\"", &["base@gpu: build_args.G"])]
    #[case::namespace("namespace: n", "namespace: m", &["app@cpu: repository", "base@cpu: repository", "base@gpu: repository"])]
    #[case::base_image("debian:12", "debian:13", &["base@cpu: bases.debian.image", "base@gpu: bases.debian.image"])]
    #[case::base_recipe("suite: bookworm", "suite: trixie", &["base@cpu: bases.debian.recipe", "base@gpu: bases.debian.recipe"])]
    #[case::folder("app: {parent: base,", "app: {parent: base, dir: base,", &["app@cpu: dir, dockerfile"])]
    #[case::new_variant("variants: [cpu]}", "variants: [cpu, gpu]}", &["app@gpu: variants"])]
    #[case::new_image("  app:", "  late: {parent: app, variants: [cpu]}\n  app:", &["late@cpu: new image"])]
    #[case::parent_arg("tag_prefix: \"1\"}", "tag_prefix: \"1\", parent_arg: PARENT}", &["app@cpu: stack.parent_arg", "base@cpu: stack.parent_arg", "base@gpu: stack.parent_arg"])]
    fn names_the_nodes_and_fields_that_changed(#[case] from: &str, #[case] to: &str, #[case] expected: &[&str]) {
        assert_eq!(changes(from, to), expected);
    }
}
