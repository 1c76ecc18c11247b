//! Every kind of spec mistake gets its precise error: the code, the file:line:column and a
//! message that names what is wrong, plus a hint.

use crate::common::Stack;
use rstest::rstest;
use xtask::diagnostic::Code;
use xtask::spec::Spec;

/// Loads the stack and returns its single diagnostic as (code, "file:line:col" tail, text).
fn error_of(stack: &Stack) -> Vec<(Code, String, String)> {
    let diagnostics = Spec::load(&stack.spec_file()).expect_err("the spec should be refused");
    diagnostics
        .iter()
        .map(|d| {
            let location = d.location.as_ref().map(|l| {
                let file = l.file.strip_prefix(stack.root()).unwrap_or(&l.file).display().to_string();
                if l.line == 0 {
                    file
                } else {
                    format!("{file}:{}:{}", l.line, l.column)
                }
            });
            assert!(d.hint.is_some(), "every diagnostic has a hint: {d}");
            (d.code, location.unwrap_or_default(), d.to_string())
        })
        .collect()
}

#[test]
fn the_fixture_is_valid() {
    let stack = Stack::new();
    let spec = Spec::load(&stack.spec_file()).unwrap();
    assert_eq!(spec.images.len(), 4);
    assert_eq!(spec.default_variant(), "cpu");
}

#[rstest]
#[case::yaml_syntax(
    "  namespace: fixture\n",
    "  namespace: fixture: x\n",
    Code::Syntax,
    "images/spec.yml:3:21",
    "mapping values are not allowed"
)]
#[case::unknown_key(
    "    depends_on: [tools]",
    "    dependson: [tools]",
    Code::UnknownKey,
    "images/spec.yml:28:5",
    "images.app: unknown key `dependson`\n  hint: did you mean `depends_on`?"
)]
#[case::unknown_top_key(
    "doc_commands:\n",
    "doc_command:\n",
    Code::UnknownKey,
    "images/spec.yml:32:1",
    "did you mean `doc_commands`?"
)]
#[case::missing_key(
    "  tag_prefix: \"1.0\"\n",
    "",
    Code::InvalidValue,
    "images/spec.yml:2:3",
    "stack: missing key `tag_prefix`"
)]
#[case::wrong_type(
    "  GREETING: hello",
    "  GREETING: [a]",
    Code::InvalidValue,
    "images/spec.yml:6:13",
    "invalid type: sequence, expected a string"
)]
#[case::unknown_parent(
    "    parent: base\n",
    "    parent: bsae\n",
    Code::UnknownImage,
    "images/spec.yml:27:13",
    "unknown parent `bsae`\n  hint: did you mean `base`?"
)]
#[case::unknown_dependency(
    "depends_on: [tools]",
    "depends_on: [tolls]",
    Code::UnknownImage,
    "images/spec.yml:28:18",
    "unknown dependency `tolls`"
)]
#[case::duplicate_image(
    "  extra:\n",
    "  tools:\n",
    Code::DuplicateName,
    "images/spec.yml:29:3",
    "`tools` is declared twice in `images`\n  hint: the first is at "
)]
#[case::image_named_like_base(
    "    variants: [cpu]\n",
    "    variants: [cpu]\n  debian:\n    dir: tools\n    parent: base\n",
    Code::DuplicateName,
    "images/spec.yml:32:3",
    "`debian` names both an image and a base"
)]
#[case::invalid_base_reference(
    "image: localhost/debian:bookworm",
    "image: localhost/Debian:bookworm",
    Code::InvalidReference,
    "images/spec.yml:15:12",
    "`Debian` has uppercase letters"
)]
#[case::invalid_registry(
    "registry: registry.example.org",
    "registry: -registry.example.org",
    Code::InvalidReference,
    "images/spec.yml:2:13",
    "is not a registry host"
)]
#[case::invalid_tag_prefix(
    "tag_prefix: \"1.0\"",
    "tag_prefix: \".1\"",
    Code::InvalidReference,
    "images/spec.yml:4:15",
    "not a valid tag"
)]
#[case::unknown_variant(
    "    variants: [cpu]",
    "    variants: [cpx]",
    Code::UnknownVariant,
    "images/spec.yml:31:16",
    "unknown variant `cpx`\n  hint: did you mean `cpu`?"
)]
#[case::unknown_variant_in_parent(
    "    parent: app\n",
    "    parent: {cpu: app, tpu: app}\n",
    Code::UnknownVariant,
    "images/spec.yml:30:24",
    "unknown variant `tpu`"
)]
#[case::opted_out_parent(
    "    variants: [cpu]\n",
    "    variants: [cpu]\n  late:\n    parent: extra\n    dir: extra\n",
    Code::VariantOptOut,
    "images/spec.yml:33:13",
    "image `late` is built in variant `gpu`, but its parent `extra` opts out of that variant"
)]
#[case::reserved_build_arg(
    "  GREETING: hello",
    "  TOOLS_IMAGE: x",
    Code::ReservedBuildArg,
    "images/spec.yml:6:3",
    "build argument `TOOLS_IMAGE` is set by the build itself"
)]
#[case::unknown_doc_command(
    "doc_commands: [os-release]",
    "doc_commands: [os-relase]",
    Code::UnknownDocCommand,
    "images/spec.yml:23:20",
    "did you mean `os-release`?"
)]
#[case::bad_glob(
    "ignore: [\"**/*.md\"]",
    "ignore: [\"[*.md\"]",
    Code::InvalidGlob,
    "images/spec.yml:35:12",
    "`[*.md` is not a valid pattern"
)]
#[case::bad_cache_template(
    "  tag_prefix: \"1.0\"\n",
    "  tag_prefix: \"1.0\"\n  cache_from: [\"{repository}:{tag_prefix}-Stable!\"]\n",
    Code::InvalidReference,
    "images/spec.yml:5:16",
    "stack.cache_from `{repository}:{tag_prefix}-Stable!` gives `registry.example.org/fixture/base:1.0-Stable!`"
)]
#[case::bad_mirror(
    "mirror: http://deb.debian.org/debian",
    "mirror: deb.debian.org",
    Code::InvalidValue,
    "images/spec.yml:19:17",
    "is not an http(s) URL"
)]
#[case::bad_size_budget(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    size_budget: 2 gigs\n",
    Code::InvalidValue,
    "images/spec.yml:24:18",
    "`2 gigs` is not a size\n  hint: write a number and a unit, such as `1.5 GB`"
)]
#[case::size_budget_for_a_variant_opted_out(
    "    variants: [cpu]\n",
    "    variants: [cpu]\n    size_budget: {cpu: 1 GB, gpu: 2 GB}\n",
    Code::VariantOptOut,
    "images/spec.yml:32:30",
    "image `extra` has a size budget for variant `gpu` but is not built in it"
)]
fn refuses_bad_specs(
    #[case] from: &str,
    #[case] to: &str,
    #[case] code: Code,
    #[case] location: &str,
    #[case] message: &str,
) {
    let stack = Stack::new();
    stack.edit_spec(from, to);
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (found_code, found_location, text) = &errors[0];
    assert_eq!((*found_code, found_location.as_str()), (code, location), "{text}");
    assert!(text.contains(message), "{text}");
}

#[test]
fn prints_a_cycle_as_a_path() {
    let stack = Stack::new();
    stack.edit_spec("  base:\n    parent: debian\n", "  base:\n    parent: app\n");
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::Cycle, "images/spec.yml:27:13"));
    assert!(errors[0].2.contains("the images form a cycle: app -> base -> app"), "{}", errors[0].2);
}

#[test]
fn a_missing_directory_and_a_missing_dockerfile() {
    let stack = Stack::new();
    stack.remove("images/tools");
    stack.remove("images/extra/Dockerfile");
    let errors = error_of(&stack);
    let codes: Vec<_> = errors.iter().map(|(code, location, _)| (*code, location.as_str())).collect();
    assert_eq!(
        codes,
        [(Code::MissingDirectory, "images/spec.yml:24:3"), (Code::MissingDockerfile, "images/spec.yml:29:3")]
    );
    assert!(
        errors[0].2.contains("the directory") && errors[0].2.contains("images/tools does not exist"),
        "{}",
        errors[0].2
    );
}

#[test]
fn a_from_that_disagrees_with_the_spec_names_both() {
    let stack = Stack::new();
    stack.write("images/tools/Dockerfile", "FROM debian:bookworm\n");
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::FromMismatch, "images/tools/Dockerfile:1:6"));
    assert!(errors[0].2.contains("FROM debian:bookworm names an image the spec does not declare"), "{}", errors[0].2);
    assert!(errors[0].2.contains("images/spec.yml:25:13 declares its parent as `debian`"), "{}", errors[0].2);
}

#[test]
fn reports_every_mistake_at_once_in_file_order() {
    let stack = Stack::new();
    stack.edit_spec("    parent: base\n", "    parent: bsae\n");
    stack.edit_spec("doc_commands: [os-release]", "doc_commands: [nope]");
    let errors = error_of(&stack);
    let codes: Vec<_> = errors.iter().map(|(code, _, _)| *code).collect();
    assert_eq!(codes, [Code::UnknownDocCommand, Code::UnknownImage]);
}

#[test]
fn an_unreadable_spec_says_how_to_point_at_one() {
    let error = Spec::load(std::path::Path::new("/nonexistent/spec.yml")).unwrap_err();
    assert_eq!(error.0[0].code, Code::Io);
    assert!(error.to_string().contains("--spec"), "{error}");
}

#[test]
fn an_unknown_version_tag_is_placed_and_gets_a_suggestion() {
    let stack = Stack::new();
    stack.edit_spec(
        "doc_commands:\n  os-release",
        "version_tags:\n  python: python --version\ndoc_commands:\n  os-release",
    );
    stack.edit_spec("    doc_commands: [os-release]\n", "    doc_commands: [os-release]\n    version_tags: [pyhton]\n");
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (code, location, text) = &errors[0];
    assert_eq!((*code, location.as_str()), (Code::UnknownVersionTag, "images/spec.yml:24:20"), "{text}");
    assert!(text.contains("unknown version tag `pyhton`") && text.contains("did you mean `python`?"), "{text}");
}

#[test]
fn version_tags_are_inherited_along_the_parent_chain() {
    let stack = Stack::new();
    stack.edit_spec(
        "doc_commands:\n  os-release",
        "version_tags:\n  os: cat /os\n  app: cat /app\ndoc_commands:\n  os-release",
    );
    stack.edit_spec("    doc_commands: [os-release]\n", "    doc_commands: [os-release]\n    version_tags: [os]\n");
    stack.edit_spec("    depends_on: [tools]\n", "    depends_on: [tools]\n    version_tags: [app, os]\n");
    let spec = Spec::load(&stack.spec_file()).unwrap_or_else(|e| panic!("{e}"));
    let names = |image: &str, variant: &str| -> Vec<String> {
        spec.version_tags_of(image, variant).into_iter().map(|(name, _)| name.to_string()).collect()
    };
    assert_eq!(names("base", "cpu"), ["os"]);
    assert_eq!(names("app", "gpu"), ["os", "app"], "the parent's first, each once");
    assert_eq!(names("extra", "cpu"), ["os", "app"]);
    assert!(names("tools", "cpu").is_empty(), "tools is built on the base, not on `base`");
}
