//! `cargo xtask new IMAGE --parent P [--variants V,...] [--dry-run]`: adds an image to the
//! stack in one step: its entry in the spec, a Dockerfile that follows the stack's conventions
//! (the pip step through `pip-install-pinned` with the build's CA bundle mounted, when the
//! parent has it), `requirements.txt` and `constraints.txt`, a README and a first test suite;
//! then prints what to edit. `--dry-run` prints all of it and writes nothing.
//!
//! The new spec is validated before anything is written, and again with the files in place;
//! if that fails, everything written is removed and the spec restored.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Cli;
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::reference;
use crate::spec::{Image, Parent, Spec};

#[derive(Debug, Args)]
pub struct New {
    /// The new image's name: lowercase letters, digits and `-`
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The image or base it is built on
    #[arg(long, value_name = "P")]
    pub parent: String,
    /// The variants it is built in [default: those of its parent]
    #[arg(long, value_name = "V", value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Print the spec entry and the files, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// What `new` writes.
#[derive(Debug)]
struct Scaffold {
    /// The image's folder.
    folder: PathBuf,
    /// Files, relative to the folder, with their text.
    files: Vec<(PathBuf, String)>,
    /// The spec with the new entry, the entry, and the line it starts on.
    spec_text: String,
    entry: String,
    line: usize,
    /// Whether the image installs Python packages the stack's way.
    pip: bool,
}

impl New {
    pub fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), crate::error::Error> {
        let spec = cli.load_spec()?;
        let scaffold = self.scaffold(&spec)?;
        if self.dry_run {
            writeln!(out, "would add to {} at line {}:\n{}", spec.file.display(), scaffold.line, scaffold.entry)?;
            for (file, text) in &scaffold.files {
                writeln!(out, "would create {}:", scaffold.folder.join(file).display())?;
                for line in text.lines() {
                    writeln!(out, "  | {line}")?;
                }
            }
            return Ok(());
        }
        let original = fs::read_to_string(&spec.file)?;
        if let Err(error) = write(&spec, &scaffold).and_then(|()| Ok(Spec::load(&spec.file)?)) {
            // Leave nothing half-done: the folder did not exist before.
            let _ = fs::remove_dir_all(&scaffold.folder);
            fs::write(&spec.file, original)?;
            return Err(error);
        }
        writeln!(out, "added `{}` to {} (line {})", self.image, spec.file.display(), scaffold.line)?;
        for (file, _) in &scaffold.files {
            writeln!(out, "created {}", scaffold.folder.join(file).display())?;
        }
        out.write_all(self.next_steps(&spec, &scaffold).as_bytes())?;
        Ok(())
    }

    /// Checks the request against the spec and prepares every file.
    fn scaffold(&self, spec: &Spec) -> Result<Scaffold, Diagnostics> {
        let name = self.image.as_str();
        check_name(spec, name)?;
        let parent = resolve_parent(spec, &self.parent)?;
        let variants = self.variants(spec, &parent)?;
        let pip = pip_owner(spec, &parent);
        let text = fs::read_to_string(&spec.file).map_err(|error| {
            Diagnostics::single(Diagnostic::new(Code::Io, None, error.to_string()).with_hint("check the spec's path"))
        })?;
        let entry = self.entry(spec, &parent, &variants, &text);
        let Some((spec_text, line)) = insert(&text, &entry) else {
            return Err(Diagnostics::single(
                Diagnostic::new(
                    Code::InvalidValue,
                    None,
                    "the spec's `images:` is not a block mapping this command can add to",
                )
                .with_hint(format!("add the entry by hand under `images:`:\n{entry}")),
            ));
        };
        // The new spec must parse and resolve before any file is written.
        Spec::parse_alone(&spec.file, &spec_text)?;
        let mut files = vec![(PathBuf::from("Dockerfile"), dockerfile(name, &self.parent, pip.as_deref()))];
        if pip.is_some() {
            files.push((PathBuf::from("requirements.txt"), requirements(name)));
            files.push((PathBuf::from("constraints.txt"), constraints(spec, name, &parent)));
        }
        files.push((PathBuf::from("README.md"), readme(spec, name, &parent, pip.is_some())));
        files.push((PathBuf::from("tests").join(format!("{name}.yml")), tests(name, &self.parent, pip.is_some())));
        Ok(Scaffold { folder: spec.dir.join(name), files, spec_text, entry, line, pip: pip.is_some() })
    }

    /// The variants asked for, each one the parent is built in; by default the parent's.
    fn variants(&self, spec: &Spec, parent: &Parent) -> Result<Vec<String>, Diagnostics> {
        let all: Vec<String> = spec.variants.iter().map(|v| v.name.clone()).collect();
        let parents: Vec<String> = match parent {
            Parent::Image(name) => spec.images[name].variants.clone(),
            Parent::Base(_) => all.clone(),
        };
        if self.variants.is_empty() {
            return Ok(parents);
        }
        let mut errors = Vec::new();
        for variant in &self.variants {
            if !all.contains(variant) {
                let hint = match did_you_mean(variant, all.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`? The stack's variants are: {}", all.join(", ")),
                    None => format!("the stack's variants are: {}", all.join(", ")),
                };
                errors.push(
                    Diagnostic::new(Code::UnknownVariant, None, format!("unknown variant `{variant}`")).with_hint(hint),
                );
            } else if !parents.contains(variant) {
                errors.push(
                    Diagnostic::new(
                        Code::VariantOptOut,
                        None,
                        format!("`{}` is not built in variant `{variant}`", self.parent),
                    )
                    .with_hint(format!("it is built in: {}", parents.join(", "))),
                );
            }
        }
        if !errors.is_empty() {
            return Err(Diagnostics(errors));
        }
        Ok(all.into_iter().filter(|v| self.variants.contains(v)).collect())
    }

    /// The spec entry, indented as the spec's other images are.
    fn entry(&self, spec: &Spec, parent: &Parent, variants: &[String], text: &str) -> String {
        let indent = image_indent(text);
        let field = indent.repeat(2);
        let mut entry = format!("{indent}{}:\n", self.image);
        writeln!(entry, "{field}description: TODO say in one line what it adds to {}.", self.parent).ok();
        if let Some(budget) = budget_of(spec, parent, variants) {
            writeln!(entry, "{field}size_budget: {budget}  # the parent's: set it 10-20% above the built size").ok();
        }
        writeln!(entry, "{field}parent: {}", self.parent).ok();
        if variants.len() != spec.variants.len() {
            writeln!(entry, "{field}variants: [{}]", variants.join(", ")).ok();
        }
        if let Parent::Image(name) = parent {
            let commands = &spec.images[name].doc_commands;
            if !commands.is_empty() {
                writeln!(entry, "{field}doc_commands: [{}]", commands.join(", ")).ok();
            }
        }
        entry
    }

    fn next_steps(&self, spec: &Spec, scaffold: &Scaffold) -> String {
        let folder = scaffold.folder.display();
        let name = &self.image;
        let repository = spec.repository(name, spec.default_variant());
        let mut steps = Vec::new();
        if scaffold.pip {
            steps.push(format!("{folder}/requirements.txt: the packages {name} promises, pinned (`polars==1.9.0`)"));
        } else {
            steps.push(format!("{folder}/Dockerfile: the steps that make {name}; a step that downloads over HTTPS mounts the CA bundle as the comment there shows"));
        }
        steps.push(format!("`cargo xtask build {name}`: builds it (and what it needs); the build's CA bundle is mounted for the pip step, so it works behind a TLS-intercepting proxy"));
        if scaffold.pip {
            steps.push(format!("{folder}/constraints.txt: pin everything with `docker run --rm {repository}:build pip freeze` (keep the comments), then build again"));
        }
        steps.push(format!(
            "{}: the `description`, and a `size_budget` 10-20% above the size the build printed",
            spec.file.display()
        ));
        steps.push(format!("{folder}/README.md and {folder}/tests/: say and check what {name} adds (docs/testing.md)"));
        steps
            .push(format!("`cargo test -p harness --test acceptance -- {name}`: runs its tests and those it inherits"));
        let mut out = String::from("\nnext:\n");
        for (i, step) in steps.iter().enumerate() {
            writeln!(out, "  {}. {step}", i + 1).ok();
        }
        out
    }
}

/// The name must be valid, unused, and its folder must not exist.
fn check_name(spec: &Spec, name: &str) -> Result<(), Diagnostics> {
    let refuse = |code: Code, message: String, hint: &str| {
        Err(Diagnostics::single(Diagnostic::new(code, None, message).with_hint(hint)))
    };
    if let Err(why) = reference::check_path_component(name) {
        return refuse(
            Code::InvalidReference,
            format!("image name `{name}`: {why}"),
            "image names become repository names: lowercase letters, digits and `-`, such as `polars-notebook`",
        );
    }
    if spec.images.contains_key(name) || spec.bases.contains_key(name) {
        return refuse(
            Code::DuplicateName,
            format!("the stack already has an image or base named `{name}`"),
            "pick another name",
        );
    }
    let folder = spec.dir.join(name);
    if folder.exists() {
        return refuse(
            Code::DuplicateName,
            format!("{} already exists", folder.display()),
            "pick another name, or move the folder away",
        );
    }
    Ok(())
}

fn resolve_parent(spec: &Spec, name: &str) -> Result<Parent, Diagnostics> {
    if spec.images.contains_key(name) {
        return Ok(Parent::Image(name.to_string()));
    }
    if spec.bases.contains_key(name) {
        return Ok(Parent::Base(name.to_string()));
    }
    let mut hint = "the parent must be an image or a base of the spec (`cargo xtask graph` draws them)".to_string();
    if let Some(best) = did_you_mean(name, spec.images.keys().chain(spec.bases.keys()).map(String::as_str)) {
        hint = format!("did you mean `{best}`? {hint}");
    }
    Err(Diagnostics::single(
        Diagnostic::new(Code::UnknownImage, None, format!("unknown parent `{name}`")).with_hint(hint),
    ))
}

/// `parent` and the images below it (through each one's parent in the default variant), nearest
/// first; empty for a base.
fn lineage<'s>(spec: &'s Spec, parent: &Parent) -> Vec<&'s Image> {
    let mut out = Vec::new();
    let mut current = match parent {
        Parent::Image(name) => spec.images.get(name),
        Parent::Base(_) => None,
    };
    // A validated spec has no cycle; the bound keeps this a loop of at most every image anyway.
    while let Some(image) = current.filter(|_| out.len() <= spec.images.len()) {
        out.push(image);
        current = match image.parents.get(spec.default_variant()).or_else(|| image.parents.values().next()) {
            Some(Parent::Image(next)) => spec.images.get(next),
            _ => None,
        };
    }
    out
}

/// The image that provides `pip-install-pinned` (in `bin/`), among `parent` and the images
/// below it: a Dockerfile built on it installs Python packages through it.
fn pip_owner(spec: &Spec, parent: &Parent) -> Option<String> {
    lineage(spec, parent)
        .into_iter()
        .find(|image| spec.dir.join(&image.dir).join("bin").join("pip-install-pinned").is_file())
        .map(|image| image.name.clone())
}

/// The parent's size budget in the first of `variants`, written as the spec writes sizes.
fn budget_of(spec: &Spec, parent: &Parent, variants: &[String]) -> Option<String> {
    let Parent::Image(name) = parent else { return None };
    Some(size_text(*spec.images[name].size_budgets.get(variants.first()?)?))
}

/// Bytes as `1.8 GB` or `700 MB`.
fn size_text(bytes: u64) -> String {
    let (value, unit) = if bytes >= 1_000_000_000 { (bytes as f64 / 1e9, "GB") } else { (bytes as f64 / 1e6, "MB") };
    let text = format!("{value:.2}");
    format!("{} {unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The indentation of the spec's image names (`  `), from its first image.
fn image_indent(text: &str) -> String {
    let mut lines = text.lines().skip_while(|line| *line != "images:").skip(1);
    let first = lines.find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
    let indent: String = first.unwrap_or("  ").chars().take_while(|c| *c == ' ').collect();
    if indent.is_empty() {
        "  ".to_string()
    } else {
        indent
    }
}

/// `text` with `entry` after the last image under the top-level `images:`, and the line the
/// entry starts on; `None` when `images:` is not a block mapping.
fn insert(text: &str, entry: &str) -> Option<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|line| line.trim_end() == "images:")?;
    let mut last = start;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let top_level = !line.is_empty() && !line.starts_with(' ') && !line.starts_with('#');
        if top_level {
            break;
        }
        if line.starts_with(' ') && !line.trim().is_empty() {
            last = i;
        }
    }
    let mut out = String::new();
    for line in &lines[..=last] {
        writeln!(out, "{line}").ok();
    }
    out.push_str(entry);
    for line in &lines[last + 1..] {
        writeln!(out, "{line}").ok();
    }
    Some((out, last + 2))
}

fn write(spec: &Spec, scaffold: &Scaffold) -> Result<(), crate::error::Error> {
    for (file, text) in &scaffold.files {
        let path = scaffold.folder.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, text)?;
    }
    fs::write(&spec.file, &scaffold.spec_text)?;
    Ok(())
}

/// The Dockerfile: the parent through `BASE_IMAGE`, then the stack's pip step (as
/// scipy-notebook's), or a commented step that mounts the CA bundle.
fn dockerfile(name: &str, parent: &str, pip_owner: Option<&str>) -> String {
    let head = format!("# {name}: TODO say what it adds to {parent}.\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n\n");
    match pip_owner {
        Some(owner) => format!(
            "{head}# The pip step of the stack ({owner}'s Dockerfile explains the mounts): the build's CA bundle\n# and pip's cache are mounted for this step only; requirements.txt lists what the image\n# promises, constraints.txt pins everything.\nRUN --mount=type=bind,source=.stack/ca-bundle.crt,target=/run/stack/ca-bundle.crt \\\n    --mount=type=cache,target=/var/cache/pip,uid=1000,gid=100 \\\n    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\\n    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \\\n    pip-install-pinned --requirement /tmp/requirements.txt --constraint /tmp/constraints.txt\n"
        ),
        None => format!(
            "{head}# A step that downloads over HTTPS trusts the build's CA bundle (docs/building.md) while it\n# runs, and keeps it out of the image:\n# RUN --mount=type=bind,source=.stack/ca-bundle.crt,target=/run/stack/ca-bundle.crt \\\n#     SSL_CERT_FILE=/run/stack/ca-bundle.crt curl -fsSLO https://example.org/tool.tar.gz\n"
        ),
    }
}

fn requirements(name: &str) -> String {
    format!("# What {name} promises, pinned (`polars==1.9.0`); constraints.txt pins everything they pull in.\n")
}

/// The parent's pins (the nearest ancestor's `constraints.txt`), so the new packages cannot
/// move what the parent installed.
fn constraints(spec: &Spec, name: &str, parent: &Parent) -> String {
    let mut out = format!("# Every Python package of {name}, pinned: the versions the image was built and tested with.\n# Refresh: `docker run --rm <image> pip freeze`, keep these comments, rebuild and re-test.\n");
    for image in lineage(spec, parent) {
        if let Ok(text) = fs::read_to_string(spec.dir.join(&image.dir).join("constraints.txt")) {
            writeln!(out, "# Until then, {}'s pins:", image.name).ok();
            text.lines().filter(|line| !line.starts_with('#')).for_each(|line| {
                writeln!(out, "{line}").ok();
            });
            break;
        }
    }
    out
}

fn readme(spec: &Spec, name: &str, parent: &Parent, pip: bool) -> String {
    let parent_link = match parent {
        Parent::Image(parent) => {
            let dir = Path::new("..").join(&spec.images[parent].dir).join("README.md");
            format!("[{parent}]({})", dir.display())
        }
        Parent::Base(base) => format!("`{base}`"),
    };
    let packages = if pip {
        "- TODO: the packages it adds, with their versions ([`requirements.txt`](requirements.txt); every\n  dependency pinned in [`constraints.txt`](constraints.txt)).\n"
    } else {
        "- TODO: what it adds.\n"
    };
    let repository = spec.repository(name, spec.default_variant());
    format!(
        "# {name}\n\nTODO: what {name} adds to {parent_link}, and for whom.\n\n## What is inside\n\n- Everything in {parent_link}.\n{packages}\n## Run it locally\n\nBuild it (and what it is built on) from the repository root, then start it:\n\n```sh\ncargo xtask build {name}\ndocker run --rm -p 8888:8888 {repository}:build\n```\n\n## Tests\n\n`cargo test -p harness --test acceptance -- {name}` runs them (docs/testing.md): TODO say what they check; the tests of the images below.\n"
    )
}

/// A first suite: a check that can fail from the first build, to grow with the image.
fn tests(name: &str, parent: &str, pip: bool) -> String {
    let head = format!("# Checks of {name} (docs/testing.md); it also runs the tests of {parent} and the images\n# below it. TODO: a check per thing {name} promises.\ncommands:\n");
    if pip {
        format!(
            "{head}  dependencies-consistent:\n    run: pip check\n    stdout: {{contains: No broken requirements}}\n"
        )
    } else {
        format!("{head}  shell-runs:\n    run: echo ok\n    stdout: {{equals: ok}}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const SPEC: &str = "stack: {registry: r, namespace: n, tag_prefix: \"1\"}\nimages:\n  a:\n    parent: debian\n\n  b:\n    parent: a\n\n# Commands that document an image.\ndoc_commands:\n  v: echo v\n";

    #[test]
    fn inserts_after_the_last_image_before_the_next_section() {
        let (text, line) = insert(SPEC, "  c:\n    parent: b\n").unwrap();
        assert_eq!(line, 8);
        assert!(
            text.contains(
                "  b:\n    parent: a\n  c:\n    parent: b\n\n# Commands that document an image.\ndoc_commands:\n"
            ),
            "{text}"
        );
    }

    #[rstest]
    #[case::flow_style("images: {a: {parent: x}}\n")]
    #[case::no_images("stack: {}\n")]
    fn refuses_what_it_cannot_extend(#[case] text: &str) {
        assert_eq!(insert(text, "  c: {}\n"), None);
    }

    #[rstest]
    #[case("images:\n    a:\n", "    ")]
    #[case("images:\n  # the first\n  a:\n", "  ")]
    #[case("images:\n", "  ")]
    fn follows_the_spec_indentation(#[case] text: &str, #[case] indent: &str) {
        assert_eq!(image_indent(text), indent);
    }

    #[rstest]
    #[case(1_800_000_000, "1.8 GB")]
    #[case(700_000_000, "700 MB")]
    #[case(7_500_000_000, "7.5 GB")]
    #[case(300_000_000, "300 MB")]
    fn writes_sizes_as_the_spec_does(#[case] bytes: u64, #[case] text: &str) {
        assert_eq!(size_text(bytes), text);
        assert_eq!(crate::spec::parse_size(text), Some(bytes));
    }
}
