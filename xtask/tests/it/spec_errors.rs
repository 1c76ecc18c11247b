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
    "`tools` is declared twice in `images`, at lines 24 and 29\n  hint: the first is at "
)]
#[case::duplicate_field_in_an_image(
    "    parent: base\n",
    "    parent: base\n    parent: tools\n",
    Code::DuplicateName,
    "images/spec.yml:28:5",
    "`parent` is declared twice in `images.app`, at lines 27 and 28"
)]
#[case::duplicate_field_in_the_stack(
    "  namespace: fixture\n",
    "  namespace: fixture\n  namespace: other\n",
    Code::DuplicateName,
    "images/spec.yml:4:3",
    "`namespace` is declared twice in `stack`, at lines 3 and 4"
)]
#[case::size_budget_without_a_unit(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    size_budget: 300\n",
    Code::InvalidValue,
    "images/spec.yml:24:18",
    "`300` is a number without a unit\n  hint: write the unit, such as `300 MB`"
)]
#[case::size_budget_fraction_without_a_unit(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    size_budget: 1.5\n",
    Code::InvalidValue,
    "images/spec.yml:24:18",
    "`1.5` is a number without a unit"
)]
#[case::size_budget_per_variant_without_a_unit(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    size_budget: {cpu: 1 GB, gpu: 2048}\n",
    Code::InvalidValue,
    "images/spec.yml:24:35",
    "`2048` is a number without a unit"
)]
#[case::size_budget_as_a_list(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    size_budget: [1 GB]\n",
    Code::InvalidValue,
    "images/spec.yml:24:18",
    "expected a size such as `1.5 GB`, or a map from variant to size"
)]
#[case::parent_as_a_number(
    "    parent: base\n",
    "    parent: 5\n",
    Code::InvalidValue,
    "images/spec.yml:27:13",
    "invalid type: integer `5`, expected a parent's name, or a map from variant to a parent's name"
)]
#[case::parent_as_a_list(
    "    parent: base\n",
    "    parent: [base]\n",
    Code::InvalidValue,
    "images/spec.yml:27:13",
    "expected a parent's name, or a map from variant to a parent's name"
)]
#[case::stack_as_a_string(
    "stack:\n  registry: registry.example.org\n  namespace: fixture\n  tag_prefix: \"1.0\"\n",
    "stack: ghcr.io\n",
    Code::InvalidValue,
    "images/spec.yml:1:8",
    "expected a mapping with `registry`, `namespace` and `tag_prefix`"
)]
#[case::dir_outside_the_spec_folder(
    "  tools:\n    parent: debian\n",
    "  tools:\n    parent: debian\n    dir: ../elsewhere/tools\n",
    Code::InvalidPath,
    "images/spec.yml:26:10",
    "image `tools`: `dir: ../elsewhere/tools` leaves the spec's folder (images)"
)]
#[case::dir_absolute(
    "  tools:\n    parent: debian\n",
    "  tools:\n    parent: debian\n    dir: /srv/tools\n",
    Code::InvalidPath,
    "images/spec.yml:26:10",
    "image `tools`: `dir: /srv/tools` is an absolute path"
)]
#[case::dockerfile_outside_the_image_folder(
    "  tools:\n    parent: debian\n",
    "  tools:\n    parent: debian\n    dockerfile: ../base/Dockerfile\n",
    Code::InvalidPath,
    "images/spec.yml:26:17",
    "image `tools`: `dockerfile: ../base/Dockerfile` is not a file inside the image's folder"
)]
#[case::two_documents(
    "  test_only: [\"images/*/tests/**\", \"images/tests/**\"]\n",
    "  test_only: [\"images/*/tests/**\", \"images/tests/**\"]\n---\nimages: {}\n",
    Code::Syntax,
    "images/spec.yml:38:1",
    "the spec holds more than one YAML document: a second one starts here"
)]
#[case::gpu_only_cycle(
    "    parent: base\n    depends_on: [tools]\n  extra:\n    parent: app\n    variants: [cpu]\n",
    "    parent: {cpu: base, gpu: extra}\n    depends_on: [tools]\n  extra:\n    parent: app\n",
    Code::Cycle,
    "images/spec.yml:27:30",
    "the images form a cycle in variant `gpu`: app -> extra -> app\n  hint: each arrow reads \"is built on\" (parent or depends_on) in variant `gpu`"
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
#[case::not_a_platform(
    "  tag_prefix: \"1.0\"\n",
    "  tag_prefix: \"1.0\"\n  platforms: [linux/amd64, arm64]\n",
    Code::InvalidValue,
    "images/spec.yml:5:28",
    "`arm64` is not a platform: write `os/architecture`, such as `linux/arm64`"
)]
#[case::a_platform_twice(
    "  tag_prefix: \"1.0\"\n",
    "  tag_prefix: \"1.0\"\n  platforms: [linux/arm64, linux/arm64]\n",
    Code::DuplicateName,
    "images/spec.yml:5:28",
    "`linux/arm64` is listed twice"
)]
#[case::a_variant_on_a_platform_the_stack_lacks(
    "    suffix: -gpu\n",
    "    suffix: -gpu\n    platforms: [linux/s390x]\n",
    Code::UnknownPlatform,
    "images/spec.yml:11:17",
    "the stack does not build for `linux/s390x`\n  hint: the stack's platforms are: linux/amd64"
)]
#[case::an_image_on_no_platform(
    "    doc_commands: [os-release]\n",
    "    doc_commands: [os-release]\n    platforms: []\n",
    Code::InvalidValue,
    "images/spec.yml:24:16",
    "`images.base.platforms` lists no platform"
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

/// A stack of two platforms whose `tools` is built for amd64 only: `app` reads it on arm64 too.
#[test]
fn a_dependency_missing_a_platform_of_its_reader_is_named_with_the_fix() {
    let stack = Stack::new();
    stack.edit_spec("  tag_prefix: \"1.0\"\n", "  tag_prefix: \"1.0\"\n  platforms: [linux/amd64, linux/arm64]\n");
    stack.edit_spec("  tools:\n    parent: debian\n", "  tools:\n    parent: debian\n    platforms: [linux/amd64]\n");
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::PlatformOptOut, "images/spec.yml:30:18"));
    assert!(
        errors[0].2.contains("image `app` is built for linux/arm64 in variant `cpu`, linux/arm64 in variant `gpu`, but its dependency `tools` is not\n  hint: add the platform to `tools`'s `platforms`"),
        "{}",
        errors[0].2
    );
}

/// The same mistake on the parent edge points at the reader's `parent`; a reader that lists its
/// own `platforms` is pointed there instead, as that is the other way to fix it.
#[rstest]
#[case::at_the_parent("  app:\n    parent: base\n", "  app:\n    parent: base\n", "images/spec.yml:29:13")]
#[case::at_the_parent_of_the_first_variant(
    "  app:\n    parent: base\n",
    "  app:\n    parent: {cpu: base, gpu: base}\n",
    "images/spec.yml:29:19"
)]
#[case::at_the_readers_platforms(
    "  app:\n    parent: base\n",
    "  app:\n    parent: base\n    platforms: [linux/amd64, linux/arm64]\n",
    "images/spec.yml:30:16"
)]
fn a_parent_missing_a_platform_of_its_child_is_named_with_the_fix(
    #[case] from: &str,
    #[case] to: &str,
    #[case] location: &str,
) {
    let stack = Stack::new();
    stack.edit_spec("  tag_prefix: \"1.0\"\n", "  tag_prefix: \"1.0\"\n  platforms: [linux/amd64, linux/arm64]\n");
    stack.edit_spec(
        "    parent: debian\n    doc_commands",
        "    parent: debian\n    platforms: [linux/amd64]\n    doc_commands",
    );
    stack.edit_spec(from, to);
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::PlatformOptOut, location));
    assert!(errors[0].2.contains("image `app` is built for linux/arm64 in variant `cpu`"), "{}", errors[0].2);
    assert!(errors[0].2.contains("but its parent `base` is not"), "{}", errors[0].2);
}

/// An `import` recipe serving two platforms must name a file per platform.
#[test]
fn an_import_for_several_platforms_needs_arch_in_its_name() {
    let stack = Stack::new();
    stack.edit_spec("  tag_prefix: \"1.0\"\n", "  tag_prefix: \"1.0\"\n  platforms: [linux/amd64, linux/arm64]\n");
    stack.edit_spec(
        "      debootstrap:\n        suite: bookworm\n        mirror: http://deb.debian.org/debian\n",
        "      import: rootfs.tar\n",
    );
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::InvalidValue, "images/spec.yml:18:15"));
    assert!(
        errors[0].2.contains("base `debian`: `import: rootfs.tar` would give the same root file system to linux/amd64 and linux/arm64\n  hint: name one file per platform with `{arch}` in it"),
        "{}",
        errors[0].2
    );
    stack.edit_spec("import: rootfs.tar", "import: rootfs-{arch}.tar");
    assert!(Spec::load(&stack.spec_file()).is_ok(), "with `{{arch}}` it is valid");
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

/// The one diagnostic of loading `path`: its code, its location (line and column, 0 for a whole
/// file), its text.
fn load_error(path: &std::path::Path) -> (Code, usize, usize, String) {
    let diagnostics = Spec::load(path).expect_err("the spec should be refused");
    assert_eq!(diagnostics.0.len(), 1, "{diagnostics}");
    let d = &diagnostics.0[0];
    assert!(d.hint.is_some(), "every diagnostic has a hint: {d}");
    let (line, column) = d.location.as_ref().map_or((0, 0), |l| (l.line, l.column));
    (d.code, line, column, d.to_string())
}

/// Each way a spec cannot be read gets its own cause and fix.
#[rstest]
#[case::missing("images/nope.yml", Code::Io, "does not exist\n  hint: run from inside the stack's repository")]
#[case::a_folder_holding_the_spec(
    "images",
    Code::Io,
    "is a folder, not a file\n  hint: pass the file itself: `--spec "
)]
#[case::a_folder("images/base", Code::Io, "is a folder, not a file\n  hint: pass the spec file itself")]
#[case::a_symlink_loop("loop.yml", Code::Io, "is a symbolic link that leads back to itself")]
#[case::a_file_for_a_folder("images/spec.yml/spec.yml", Code::Io, "a part of the path is a file, not a folder")]
fn an_unreadable_spec_says_why(#[case] relative: &str, #[case] code: Code, #[case] message: &str) {
    let stack = Stack::new();
    std::os::unix::fs::symlink(stack.root().join("loop.yml"), stack.root().join("loop.yml")).unwrap();
    let (found, _, _, text) = load_error(&stack.root().join(relative));
    assert_eq!(found, code, "{text}");
    assert!(text.contains(message), "{text}");
}

/// Bytes that are not UTF-8, in the spec or a Dockerfile, are placed at their line and column.
#[rstest]
#[case::in_the_spec("images/spec.yml", "  GREETING: hello", "  GREETING: caf\u{e9}", 6, 16)]
#[case::in_a_dockerfile("images/tools/Dockerfile", "RUN echo tools", "RUN echo t\u{f6}ols", 3, 11)]
fn a_byte_that_is_not_utf8_is_placed(
    #[case] relative: &str,
    #[case] from: &str,
    #[case] to: &str,
    #[case] line: usize,
    #[case] column: usize,
) {
    let stack = Stack::new();
    let path = stack.root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from));
    // Written as Latin-1: one byte per character.
    let latin1: Vec<u8> = text.replacen(from, to, 1).chars().map(|c| c as u32 as u8).collect();
    std::fs::write(&path, latin1).unwrap();
    let diagnostics = Spec::load(&stack.spec_file()).expect_err("refused");
    let d = &diagnostics.0[0];
    assert_eq!(d.code, Code::Encoding, "{diagnostics}");
    assert_eq!(d.location.as_ref().map(|l| (l.file.clone(), l.line, l.column)), Some((path, line, column)));
    assert!(
        d.to_string().contains(&format!("at line {line}, column {column}")) && d.to_string().contains("iconv"),
        "{d}"
    );
}

/// Inputs of any size fail fast, with a bounded amount of memory, and say which limit.
#[rstest]
#[case::endless_device(None, "/dev/zero", "is larger than 2 MiB")]
#[case::a_huge_spec(Some(huge_spec as fn() -> String), "images/spec.yml", "is larger than 2 MiB")]
#[case::deep_flow(Some(deep_flow as fn() -> String), "images/spec.yml", "nests more than 32 levels deep")]
#[case::deep_block(Some(deep_block as fn() -> String), "images/spec.yml", "nests more than 32 levels deep")]
#[case::alias_bomb(Some(alias_bomb as fn() -> String), "images/spec.yml", "aliases expand it past 8 MiB")]
#[case::nested_aliases(Some(nested_aliases as fn() -> String), "images/spec.yml", "aliases expand it past 8 MiB")]
#[case::many_variants(Some(many_variants as fn() -> String), "images/spec.yml", "the spec declares 65 variants; the most is 64")]
#[case::many_nodes(Some(many_nodes as fn() -> String), "images/spec.yml", "the spec declares 204800 images in all their variants; the most is 200000")]
#[case::many_edges(Some(many_edges as fn() -> String), "images/spec.yml", "the spec declares 1000064 parents and dependencies in all variants; the most is 1000000")]
fn oversized_inputs_are_refused_at_once(
    #[case] text: Option<fn() -> String>,
    #[case] relative: &str,
    #[case] message: &str,
) {
    let stack = Stack::new();
    let path = match text {
        Some(text) => {
            std::fs::write(stack.spec_file(), text()).unwrap();
            stack.root().join(relative)
        }
        None => std::path::PathBuf::from(relative),
    };
    let (code, _, _, text) = load_error(&path);
    assert_eq!(code, Code::Limit, "{text}");
    assert!(text.contains(message), "{text}");
}

fn fixture_text() -> String {
    std::fs::read_to_string(crate::common::fixture_dir().join("images/spec.yml")).unwrap()
}

fn huge_spec() -> String {
    let mut text = fixture_text();
    text.push_str(&format!("# {}\n", "x".repeat(2 * 1024 * 1024)));
    text
}

fn deep_flow() -> String {
    fixture_text().replace("GREETING: hello", &format!("GREETING: {}", "[".repeat(100_000)))
}

fn deep_block() -> String {
    format!("{}x:\n{}a\n", fixture_text(), "- ".repeat(100_000))
}

/// One 1 MiB string, used a thousand times: a 1 MiB file that serde_yaml would make 1 GB.
fn alias_bomb() -> String {
    let mut text = fixture_text().replace("GREETING: hello", &format!("GREETING: &big \"{}\"", "x".repeat(1 << 20)));
    text.push_str("x:\n");
    for i in 0..1000 {
        text.push_str(&format!("  - *big # {i}\n"));
    }
    text
}

/// Each level names the one before twice: 2^40 nodes from 40 lines.
fn nested_aliases() -> String {
    let mut text = fixture_text();
    text.push_str("x:\n  l0: &l0 [a, b]\n");
    for i in 1..40 {
        text.push_str(&format!("  l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
    }
    text
}

const SMALL_STACK: &str = "stack: {registry: r.example.org, namespace: n, tag_prefix: \"1\"}\nbases:\n  debian: {image: localhost/debian:12}\n";

fn many_variants() -> String {
    format!("{SMALL_STACK}variants: {}\nimages:\n  a: {{parent: debian}}\n", variants(65))
}

/// `{v0: {}, v1: {}, ...}`.
fn variants(count: usize) -> String {
    let variants: Vec<String> = (0..count).map(|i| format!("v{i}: {{}}")).collect();
    format!("{{{}}}", variants.join(", "))
}

/// 3,200 images in 64 variants.
fn many_nodes() -> String {
    let mut text = format!("{SMALL_STACK}variants: {}\nimages:\n", variants(64));
    for i in 0..3_200 {
        text.push_str(&format!("  i{i}: {{parent: debian}}\n"));
    }
    text
}

/// One image reading 15,624 others (the same, over and over) in 64 variants.
fn many_edges() -> String {
    let dependencies = vec!["b"; 15_624].join(",");
    format!("{SMALL_STACK}variants: {}\nimages:\n  b: {{parent: debian}}\n  a: {{parent: debian, depends_on: [{dependencies}]}}\n", variants(64))
}

#[test]
fn a_dockerfile_over_the_limit_is_refused() {
    let stack = Stack::new();
    let mut text = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n".to_string();
    text.push_str(&"# padding\n".repeat(120_000));
    stack.write("images/tools/Dockerfile", &text);
    let errors = error_of(&stack);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (Code::Limit, "images/tools/Dockerfile"));
    assert!(errors[0].2.contains("is larger than 1 MiB"), "{}", errors[0].2);
}

/// A spec with thousands of mistakes reports the first hundred and counts the rest,
/// without a "did you mean" search over every name for each (25 million comparisons here).
#[test]
fn thousands_of_mistakes_are_counted_not_all_shown() {
    let stack = Stack::new();
    let images = 5_000;
    let mut text = String::from("stack: {registry: r.example.org, namespace: n, tag_prefix: \"1\"}\nimages:\n");
    for i in 0..images {
        text.push_str(&format!("  gen-{i:05}: {{parent: missing-{i:05}, dir: tools}}\n"));
    }
    std::fs::write(stack.spec_file(), text).unwrap();
    let diagnostics = Spec::load(&stack.spec_file()).expect_err("refused");
    assert_eq!(diagnostics.0.len(), 101, "{}", diagnostics.0.len());
    assert!(diagnostics.0[..100].iter().all(|d| d.code == Code::UnknownImage));
    let last = diagnostics.0.last().unwrap();
    assert_eq!(last.code, Code::Limit);
    assert!(last.message.contains(&format!("{} more errors were found", images - 100)), "{last}");
}

/// Every key of the fixture (with a per-variant parent and budget added), given a value of each
/// other shape: whatever the error, it never names a Rust type.
#[test]
fn no_rust_type_name_reaches_a_user() {
    let fixture = crate::common::fixture_dir().join("images/spec.yml");
    let text = fixture_text().replacen(
        "    parent: base\n",
        "    parent: {cpu: base, gpu: base}\n    size_budget: {cpu: 1 GB, gpu: 2 GB}\n",
        1,
    );
    let document: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut paths = Vec::new();
    key_paths(&document, &mut Vec::new(), &mut paths);
    let shapes: Vec<serde_yaml::Value> = ["5", "-1.5", "text", "[a, b]", "{a: 1}", "~", "true", "[[a]]", "{a: {b: c}}"]
        .iter()
        .map(|shape| serde_yaml::from_str(shape).unwrap())
        .collect();
    let mut refused = 0;
    for path in &paths {
        for shape in &shapes {
            let mut edited = document.clone();
            *value_at(&mut edited, path) = shape.clone();
            let Err(diagnostics) = Spec::parse(&fixture, &serde_yaml::to_string(&edited).unwrap()) else {
                continue;
            };
            refused += 1;
            let shown = diagnostics.to_string();
            for word in ["Raw", "struct ", "enum ", "untagged", "IndexMap", "BTreeMap", "Vec<", "Option<", "String"] {
                assert!(!shown.contains(word), "{} = {shape:?} shows `{word}`:\n{shown}", path.join("."));
            }
        }
    }
    assert!(paths.len() > 40 && refused > 200, "{} paths, {refused} refused", paths.len());
}

/// The path of every value under a mapping key, depth first.
fn key_paths(value: &serde_yaml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let serde_yaml::Value::Mapping(map) = value {
        for (key, child) in map {
            path.push(key.as_str().unwrap().to_string());
            out.push(path.clone());
            key_paths(child, path, out);
            path.pop();
        }
    }
}

fn value_at<'a>(value: &'a mut serde_yaml::Value, path: &[String]) -> &'a mut serde_yaml::Value {
    path.iter().fold(value, |value, key| value.get_mut(key.as_str()).unwrap())
}

/// docs/spec.md lists every error code with an example message of that code.
#[test]
fn every_error_code_is_documented_with_an_example() {
    let docs = std::fs::read_to_string(xtask::paths::project_root().join("docs/spec.md")).unwrap();
    for code in Code::ALL {
        let name = code.as_str();
        let row = docs.lines().find(|line| line.starts_with(&format!("| `{name}` |")));
        let row = row.unwrap_or_else(|| panic!("docs/spec.md has no row for `{name}` in its table of errors"));
        assert!(row.contains(&format!("error[{name}]: ")), "the row of `{name}` has no example message: {row}");
    }
}

/// Thousands of images built from one large Dockerfile: it is read, parsed and checked once,
/// and when it is wrong, its errors are given once, each other image saying it shares them.
#[rstest]
#[case::valid(false)]
#[case::wrong(true)]
fn images_sharing_a_large_dockerfile_cost_one_check(#[case] wrong: bool) {
    let stack = Stack::new();
    let images = 5_000;
    let mut text = String::from("stack: {registry: r.example.org, namespace: n, tag_prefix: \"1\"}\nbases:\n  debian: {image: localhost/debian:12}\nimages:\n");
    for i in 0..images {
        text.push_str(&format!("  gen-{i:05}: {{parent: debian, dir: tools}}\n"));
    }
    std::fs::write(stack.spec_file(), text).unwrap();
    let mut dockerfile = "ARG BASE_IMAGE\n".to_string();
    for i in 0..25_000 {
        dockerfile.push_str(&format!("FROM ${{BASE_IMAGE}} AS s{i}\n"));
    }
    dockerfile.push_str(if wrong { "FROM debian:12\n" } else { "FROM s0\n" });
    stack.write("images/tools/Dockerfile", &dockerfile);
    let result = Spec::load(&stack.spec_file());
    if !wrong {
        assert_eq!(result.map(|spec| spec.images.len()).map_err(|e| e.to_string()), Ok(images));
        return;
    }
    let diagnostics = result.expect_err("refused").0;
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    let own = shown.iter().filter(|d| {
        d.contains("images/tools/Dockerfile:25002:6: error[from-mismatch]: image 'gen-00000': FROM debian:12")
    });
    assert_eq!(own.count(), 1, "{shown:#?}");
    let shared = shown.iter().filter(|d| {
        d.contains("images/tools/Dockerfile: error[from-mismatch]: the errors of image `gen-00000` in this Dockerfile are also those of `gen-00001`, `gen-00002`, `gen-00003`, `gen-00004`, `gen-00005` and 4994 more")
    });
    assert_eq!(shared.count(), 1, "{shown:#?}");
    assert_eq!(shown.len(), 2, "{shown:#?}");
}
