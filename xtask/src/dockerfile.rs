//! Reads what a Dockerfile builds on (`FROM`, `COPY --from`, `RUN --mount=...,from=`) and checks
//! it against the spec, so the graph is declared once: in the spec.
//!
//! The rule: every image a Dockerfile reads comes in through a build argument the build fills in
//! with an exact image ID: the parent through `ARG BASE_IMAGE` (the spec's `stack.parent_arg`),
//! each `depends_on` entry through `ARG <NAME>_IMAGE`; the final stage descends from the parent.
//! A literal image name (`FROM debian:bookworm`) would be a second, unchecked declaration of the
//! graph, so it is an error that names the Dockerfile line and the spec line. Pure: the caller
//! reads the file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::diagnostic::{Code, Diagnostic, Location};

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper case: `FROM`, `COPY`, ...
    pub keyword: String,
    /// The rest of the instruction, continuation lines joined with a space.
    pub args: String,
    pub line: usize,
    /// Column where `args` starts on `line`.
    pub column: usize,
}

/// A reference to an image or stage found in a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub text: String,
    pub line: usize,
    pub column: usize,
    /// `FROM`, `COPY --from` or `RUN --mount from=`.
    pub via: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: Source,
    pub name: Option<String>,
}

/// What a Dockerfile builds on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG`s declared before the first `FROM` (the only ones a `FROM` can use).
    pub global_args: Vec<String>,
    pub stages: Vec<Stage>,
    /// `COPY --from=` and `RUN --mount=...,from=` sources.
    pub copies: Vec<Source>,
}

/// Splits a Dockerfile into instructions, honouring the `escape` directive, comments, line
/// continuations and heredocs.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut directives_allowed = true;
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            if directives_allowed {
                if let Some(value) = directive(trimmed, "escape") {
                    escape = value.chars().next().unwrap_or('\\');
                }
            }
            continue;
        }
        directives_allowed = false;
        if trimmed.is_empty() {
            continue;
        }
        let keyword_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let keyword = trimmed[..keyword_end].to_ascii_uppercase();
        let first_args = trimmed[keyword_end..].trim_start();
        let column = line.len() - first_args.len() + 1;
        let mut args = String::new();
        let mut current = first_args.to_string();
        loop {
            let stripped = current.trim_end();
            match stripped.strip_suffix(escape) {
                Some(without) => {
                    args.push_str(without);
                    args.push(' ');
                    // Continue with the next line that is not a comment.
                    match lines.by_ref().find(|(_, next)| !next.trim_start().starts_with('#')) {
                        Some((_, next)) => current = next.to_string(),
                        None => break,
                    }
                }
                None => {
                    args.push_str(stripped);
                    break;
                }
            }
        }
        for terminator in heredoc_terminators(&args) {
            for (_, body) in lines.by_ref() {
                if body.trim() == terminator {
                    break;
                }
            }
        }
        out.push(Instruction { keyword, args: args.trim().to_string(), line: index + 1, column });
    }
    out
}

fn directive<'a>(comment: &'a str, name: &str) -> Option<&'a str> {
    let body = comment.trim_start_matches('#').trim();
    let (key, value) = body.split_once('=')?;
    key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
}

/// `<<EOF`, `<<-"EOF"` and `<<'EOF'` markers, in order.
fn heredoc_terminators(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(at) = rest.find("<<") {
        let after = rest[at + 2..].trim_start_matches('-');
        let word: String = after
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            out.push(word);
        }
        rest = &rest[at + 2..];
    }
    out
}

/// Reads the stages and image sources of a Dockerfile.
pub fn parse(text: &str) -> Dockerfile {
    let mut dockerfile = Dockerfile::default();
    for instruction in instructions(text) {
        match instruction.keyword.as_str() {
            "ARG" if dockerfile.stages.is_empty() => {
                for declaration in instruction.args.split_whitespace() {
                    let name = declaration.split('=').next().unwrap_or_default();
                    dockerfile.global_args.push(name.to_string());
                }
            }
            "FROM" => dockerfile.stages.push(parse_from(&instruction)),
            "COPY" | "RUN" => dockerfile.copies.extend(copy_sources(&instruction)),
            _ => {}
        }
    }
    dockerfile
}

/// Words with their columns, for an instruction's arguments on its first line.
fn words(instruction: &Instruction) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    instruction.args.split(' ').filter_map(move |word| {
        let column = instruction.column + offset;
        offset += word.len() + 1;
        (!word.is_empty()).then_some((column, word))
    })
}

fn parse_from(instruction: &Instruction) -> Stage {
    let mut words = words(instruction).filter(|(_, word)| !word.starts_with("--"));
    let (column, text) = words.next().unwrap_or((instruction.column, ""));
    let name = match (words.next(), words.next()) {
        (Some((_, as_)), Some((_, name))) if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
        _ => None,
    };
    Stage { from: Source { text: text.to_string(), line: instruction.line, column, via: "FROM" }, name }
}

fn copy_sources(instruction: &Instruction) -> Vec<Source> {
    let mut out = Vec::new();
    for (column, word) in words(instruction).take_while(|(_, word)| word.starts_with("--")) {
        if let Some(from) = word.strip_prefix("--from=") {
            out.push(Source { text: from.to_string(), line: instruction.line, column: column + 7, via: "COPY --from" });
        }
        if let Some(mount) = word.strip_prefix("--mount=") {
            let mut offset = 8;
            for option in mount.split(',') {
                if let Some(from) = option.strip_prefix("from=") {
                    let column = column + offset + 5;
                    out.push(Source {
                        text: from.to_string(),
                        line: instruction.line,
                        column,
                        via: "RUN --mount from=",
                    });
                }
                offset += option.len() + 1;
            }
        }
    }
    out
}

/// The variable a source names, when it is `$NAME`, `${NAME}` or `${NAME:-default}`.
pub fn variable(text: &str) -> Option<&str> {
    let name = text.strip_prefix('$')?;
    let name = match name.strip_prefix('{') {
        Some(braced) => {
            let inner = braced.strip_suffix('}')?;
            inner.split(':').next()?
        }
        None => name,
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// What the spec says an image's Dockerfile may build on.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub image: &'a str,
    /// The build argument carrying the parent (`BASE_IMAGE`).
    pub parent_arg: &'a str,
    /// How the spec names the parent, for messages: `base-notebook`, or `cpu: debian, gpu: cuda`.
    pub parent: String,
    /// Where the spec declares the parent.
    pub parent_location: Option<Location>,
    /// Build argument of each dependency, to its name.
    pub dependency_args: BTreeMap<String, String>,
}

/// Checks a Dockerfile against what the spec declares; returns every disagreement.
pub fn check(path: &Path, text: &str, expected: &Expected<'_>) -> Vec<Diagnostic> {
    verify(path, &parse(text), expected)
}

/// [`check`] for a Dockerfile already parsed (images may share one). Linear in its size.
pub fn verify(path: &Path, dockerfile: &Dockerfile, expected: &Expected<'_>) -> Vec<Diagnostic> {
    let checker = Checker { path, expected };
    if dockerfile.stages.is_empty() {
        return vec![Diagnostic::new(
            Code::FromMismatch,
            Some(Location::file_only(path)),
            format!("image '{}': the Dockerfile has no FROM", expected.image),
        )
        .with_hint(format!("start it with `ARG {0}` and `FROM ${{{0}}}`", expected.parent_arg))];
    }
    let globals: HashSet<&str> = dockerfile.global_args.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    // Stage names seen so far (lowercase), each to its first stage.
    let mut stages: HashMap<String, usize> = HashMap::new();
    for (index, stage) in dockerfile.stages.iter().enumerate() {
        out.extend(checker.source(&stage.from, &stages, &globals));
        if let Some(name) = &stage.name {
            stages.entry(name.to_ascii_lowercase()).or_insert(index);
        }
    }
    for source in &dockerfile.copies {
        out.extend(checker.source(source, &stages, &globals));
    }
    let root = final_root(dockerfile, &stages);
    if variable(&root.text) != Some(expected.parent_arg) && out.iter().all(|d| d.location != checker.at(root)) {
        out.push(checker.final_stage(root));
    }
    out
}

/// What the final stage is built on, following stage names back (`FROM base` where `base` is a
/// stage): each step is one lookup, and there are at most as many steps as stages.
fn final_root<'a>(dockerfile: &'a Dockerfile, stages: &HashMap<String, usize>) -> &'a Source {
    let mut root = &dockerfile.stages[dockerfile.stages.len() - 1].from;
    for _ in 0..dockerfile.stages.len() {
        match stages.get(&root.text.to_ascii_lowercase()) {
            Some(index) => root = &dockerfile.stages[*index].from,
            None => break,
        }
    }
    root
}

/// Checks sources of one Dockerfile against what the spec expects.
struct Checker<'a> {
    path: &'a Path,
    expected: &'a Expected<'a>,
}

impl Checker<'_> {
    fn at(&self, source: &Source) -> Option<Location> {
        Some(Location::new(self.path, source.line, source.column))
    }

    fn declared_at(&self) -> String {
        match &self.expected.parent_location {
            Some(location) => format!("{location}"),
            None => "the spec".to_string(),
        }
    }

    /// The build arguments a Dockerfile may read images from, as `${NAME}`.
    fn allowed(&self) -> String {
        let mut names = vec![format!("${{{}}}", self.expected.parent_arg)];
        names.extend(self.expected.dependency_args.keys().map(|arg| format!("${{{arg}}}")));
        names.join(", ")
    }

    /// What is wrong with one source (`FROM`, `COPY --from`, `RUN --mount from=`), if anything:
    /// an earlier stage, a stage number, `scratch` and the build arguments the spec fills in
    /// are fine.
    fn source(&self, source: &Source, stages: &HashMap<String, usize>, globals: &HashSet<&str>) -> Option<Diagnostic> {
        let expected = self.expected;
        let lower = source.text.to_ascii_lowercase();
        if stages.contains_key(&lower) || (source.via != "FROM" && source.text.parse::<usize>().is_ok()) {
            return None;
        }
        if let Some(name) = variable(&source.text) {
            return self.variable(source, name, globals);
        }
        if source.via == "FROM" && lower == "scratch" {
            return None;
        }
        Some(
            Diagnostic::new(
                Code::FromMismatch,
                self.at(source),
                format!(
                    "image '{}': {} {} names an image the spec does not declare; {} declares its parent as {}",
                    expected.image,
                    source.via,
                    source.text,
                    self.declared_at(),
                    expected.parent
                ),
            )
            .with_hint(format!(
                "declare the graph once, in the spec: build on the parent with `ARG {0}` and `FROM ${{{0}}}`, or list the image under `depends_on` (or `bases`) and use its argument",
                expected.parent_arg
            )),
        )
    }

    /// A source given as `${NAME}`: the parent's or a dependency's argument, declared before
    /// the first `FROM`.
    fn variable(&self, source: &Source, name: &str, globals: &HashSet<&str>) -> Option<Diagnostic> {
        let expected = self.expected;
        if name != expected.parent_arg && !expected.dependency_args.contains_key(name) {
            return Some(
                Diagnostic::new(
                    Code::FromMismatch,
                    self.at(source),
                    format!(
                        "image '{}': {} ${{{name}}} is neither the parent argument nor a dependency's",
                        expected.image, source.via
                    ),
                )
                .with_hint(format!(
                    "use one of {}; to read another image, add it to `depends_on` in the spec",
                    self.allowed()
                )),
            );
        }
        if globals.contains(name) {
            return None;
        }
        Some(
            Diagnostic::new(
                Code::FromMismatch,
                self.at(source),
                format!(
                    "image '{}': {} uses ${{{name}}}, which is not declared before the first FROM",
                    expected.image, source.via
                ),
            )
            .with_hint(format!("add `ARG {name}` at the top of the Dockerfile, before the first FROM")),
        )
    }

    fn final_stage(&self, root: &Source) -> Diagnostic {
        Diagnostic::new(
            Code::FromMismatch,
            self.at(root),
            format!(
                "image '{}': the final stage is built FROM {}, but {} declares its parent as {}",
                self.expected.image,
                root.text,
                self.declared_at(),
                self.expected.parent
            ),
        )
        .with_hint(format!("build the final stage on the parent: `FROM ${{{}}}`", self.expected.parent_arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn expected() -> Expected<'static> {
        Expected {
            image: "child",
            parent_arg: "BASE_IMAGE",
            parent: "'base'".into(),
            parent_location: Some(Location::new("images/spec.yml", 9, 13)),
            dependency_args: BTreeMap::from([("TOOLS_IMAGE".to_string(), "tools".to_string())]),
        }
    }

    #[test]
    fn joins_continuations_and_skips_comments_and_heredocs() {
        let text = "# escape=\\\nARG BASE_IMAGE\nRUN echo a \\\n  # comment\n  && echo b\nRUN <<EOF\nFROM not-an-instruction\nEOF\nfrom ${BASE_IMAGE} as final\n";
        let instructions = instructions(text);
        let keywords: Vec<_> = instructions.iter().map(|i| (i.keyword.as_str(), i.line)).collect();
        assert_eq!(keywords, [("ARG", 2), ("RUN", 3), ("RUN", 6), ("FROM", 9)]);
        assert_eq!(instructions[1].args, "echo a    && echo b");
        let parsed = parse(text);
        assert_eq!(parsed.stages.len(), 1);
        assert_eq!(parsed.stages[0].name.as_deref(), Some("final"));
        assert_eq!((parsed.stages[0].from.line, parsed.stages[0].from.column), (9, 6));
    }

    #[rstest]
    #[case::plain("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")]
    #[case::dollar("ARG BASE_IMAGE=x\nFROM $BASE_IMAGE\n")]
    #[case::multi_stage("ARG BASE_IMAGE\nARG TOOLS_IMAGE\nFROM ${TOOLS_IMAGE} AS tools\nFROM scratch AS empty\nFROM --platform=linux/amd64 ${BASE_IMAGE} AS base\nFROM base\nCOPY --from=tools /a /a\nCOPY --from=0 /b /b\nRUN --mount=type=bind,from=tools,target=/t true\n")]
    fn accepts(#[case] text: &str) {
        assert_eq!(check(Path::new("Dockerfile"), text, &expected()), vec![]);
    }

    #[rstest]
    #[case::literal_from("FROM debian:bookworm\n", 1, 6, "FROM debian:bookworm names an image the spec does not declare; images/spec.yml:9:13 declares its parent as 'base'")]
    #[case::unknown_arg(
        "ARG OTHER\nFROM ${OTHER}\n",
        2,
        6,
        "FROM ${OTHER} is neither the parent argument nor a dependency's"
    )]
    #[case::undeclared_arg(
        "FROM ${BASE_IMAGE}\n",
        1,
        6,
        "uses ${BASE_IMAGE}, which is not declared before the first FROM"
    )]
    #[case::final_not_parent(
        "ARG BASE_IMAGE\nARG TOOLS_IMAGE\nFROM ${BASE_IMAGE} AS a\nFROM ${TOOLS_IMAGE}\n",
        4,
        6,
        "the final stage is built FROM ${TOOLS_IMAGE}, but images/spec.yml:9:13 declares its parent as 'base'"
    )]
    #[case::copy_from_literal(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY --from=busybox:1 /bin/sh /sh\n",
        3,
        13,
        "COPY --from busybox:1 names an image the spec does not declare"
    )]
    #[case::mount_from_literal(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,from=alpine,target=/a true\n",
        3,
        28,
        "RUN --mount from= alpine names an image"
    )]
    fn refuses(#[case] text: &str, #[case] line: usize, #[case] column: usize, #[case] message: &str) {
        let diagnostics = check(Path::new("images/child/Dockerfile"), text, &expected());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let diagnostic = &diagnostics[0];
        assert_eq!(diagnostic.code, Code::FromMismatch);
        assert_eq!(diagnostic.location, Some(Location::new("images/child/Dockerfile", line, column)));
        assert!(diagnostic.message.contains(message), "{}", diagnostic.message);
        assert!(diagnostic.hint.is_some());
    }

    #[test]
    fn refuses_an_empty_dockerfile() {
        let diagnostics = check(Path::new("Dockerfile"), "# nothing\n", &expected());
        assert!(diagnostics[0].message.contains("has no FROM"));
    }

    #[rstest]
    #[case("$A", Some("A"))]
    #[case("${A_B}", Some("A_B"))]
    #[case("${A:-x}", Some("A"))]
    #[case("a", None)]
    #[case("${A", None)]
    fn reads_variables(#[case] text: &str, #[case] name: Option<&str>) {
        assert_eq!(variable(text), name);
    }
}
