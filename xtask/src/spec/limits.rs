//! What a spec may cost, checked before serde_yaml sees it: its size, how deep it nests, how
//! large its aliases make it, and that it is one YAML document.
//!
//! serde_yaml (libyaml) takes time in the square of the nesting depth of `[` and `{`, and
//! expands every alias into a fresh copy: a 1 MiB string aliased a thousand times is a gigabyte.
//! This pass walks yaml-rust2's events, which cost linear time and no copies, and stops at the
//! first limit crossed, with its position. It finds no other mistakes: when yaml-rust2 cannot
//! parse the text, serde_yaml reports the syntax error, after a plain count of brackets has
//! made sure that costs little.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

use super::input::{human, SPEC_MAX_BYTES};
use crate::diagnostic::{Code, Diagnostic, Location};

/// The deepest a spec may nest mappings and sequences (the format itself needs six).
pub const MAX_DEPTH: usize = 32;
const DEPTH_HINT: &str = "the format nests six levels at most; look for unclosed `[` or `{`";
/// The most text a spec may hold once its aliases are expanded (scalar bytes, plus one per
/// node), which bounds the memory serde_yaml takes: four times the largest spec.
pub const MAX_EXPANDED: usize = 4 * SPEC_MAX_BYTES;

/// Checks `text` (read from `file`) against the limits.
pub fn check(file: &Path, text: &str) -> Result<(), Diagnostic> {
    if text.len() > SPEC_MAX_BYTES {
        return Err(Diagnostic::new(
            Code::Limit,
            Some(Location::file_only(file)),
            format!("the spec is larger than {}, the most a spec may be", human(SPEC_MAX_BYTES)),
        )
        .with_hint("docs/spec.md lists the limits"));
    }
    if plain(text) {
        return Ok(());
    }
    let mut walk = Walk::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((event, mark)) => {
                if let Some((code, message, hint)) = walk.event(event) {
                    let at = Location::new(file, mark.line(), mark.col() + 1);
                    return Err(Diagnostic::new(code, Some(at), message).with_hint(hint));
                }
            }
            Err(_) => return brackets(file, text),
        }
    }
}

/// Whether a plain look at the text shows it cannot cross a limit, so the walk is not needed
/// (most specs; it saves a fifth of a load): no anchor (`&`), so no alias to expand; no line
/// that starts a document or a directive (`---`, `...`, `%`); brackets nested at most 8 deep;
/// lines indented at most 16 columns with at most 3 `- `. What passes can still nest a little
/// past [`MAX_DEPTH`] in block style, which serde_yaml parses in linear time (and refuses past
/// 128 levels).
fn plain(text: &str) -> bool {
    let mut brackets = 0usize;
    for byte in text.bytes() {
        match byte {
            b'&' => return false,
            b'[' | b'{' => brackets += 1,
            b']' | b'}' => brackets = brackets.saturating_sub(1),
            _ => continue,
        }
        if brackets > 8 {
            return false;
        }
    }
    text.lines().all(|line| {
        let indent = line.len() - line.trim_start_matches(' ').len();
        !(line.starts_with("---") || line.starts_with("...") || line.starts_with('%'))
            && indent <= 16
            && line.matches("- ").count() <= 3
    })
}

/// The running state of the walk over a document's events.
#[derive(Default)]
struct Walk {
    documents: usize,
    /// The collections open, each with its anchor and the expanded size at its start.
    open: Vec<(usize, usize)>,
    /// The expanded size of each complete anchored node.
    anchors: HashMap<usize, usize>,
    expanded: usize,
}

impl Walk {
    /// Takes one event; the code, message and hint of what is wrong with it, if anything.
    fn event(&mut self, event: Event) -> Option<(Code, String, String)> {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Some((
                        Code::Syntax,
                        "the spec holds more than one YAML document: a second one starts here".into(),
                        "a spec is one document: remove this `---` and what follows it, or merge the two".into(),
                    ));
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.expanded += 1;
                self.open.push((anchor, self.expanded));
                if self.open.len() > MAX_DEPTH {
                    return Some((
                        Code::Limit,
                        format!("the spec nests more than {MAX_DEPTH} levels deep here"),
                        DEPTH_HINT.into(),
                    ));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((anchor, start)) = self.open.pop() {
                    if anchor > 0 {
                        self.anchors.insert(anchor, self.expanded - start + 1);
                    }
                }
            }
            Event::Scalar(value, _, anchor, _) => {
                self.expanded += value.len() + 1;
                if anchor > 0 {
                    self.anchors.insert(anchor, value.len() + 1);
                }
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some(size) => self.expanded += size,
                None => {
                    return Some((
                        Code::Syntax,
                        "this alias refers to the node it is in".into(),
                        "an alias must refer to a node that ends before it; remove the alias".into(),
                    ))
                }
            },
            _ => {}
        }
        (self.expanded > MAX_EXPANDED).then(|| {
            (
                Code::Limit,
                format!("the spec's aliases expand it past {}, the most a spec may hold", human(MAX_EXPANDED)),
                "aliases (`*name`) copy what their anchor names; repeat less through them".into(),
            )
        })
    }
}

/// For a text yaml-rust2 cannot parse (it refuses flow nesting past 255 levels before giving
/// any event): refuses one whose brackets nest deeper than [`MAX_DEPTH`], which serde_yaml
/// would take minutes to say. Brackets inside strings count too, which only matters when more
/// than [`MAX_DEPTH`] of them stay open.
fn brackets(file: &Path, text: &str) -> Result<(), Diagnostic> {
    // The document's top-level mapping is the first level, as in the walk over events.
    let mut depth = 1usize;
    for (offset, byte) in text.bytes().enumerate() {
        match byte {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1).max(1),
            _ => continue,
        }
        if depth > MAX_DEPTH {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
            return Err(Diagnostic::new(
                Code::Limit,
                Some(Location::new(file, line, column)),
                format!("the spec nests more than {MAX_DEPTH} levels deep here"),
            )
            .with_hint(DEPTH_HINT));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn limit(text: &str) -> Option<(usize, usize, String)> {
        check(Path::new("spec.yml"), text).err().map(|d| {
            let expected =
                if d.message.contains("nests") || d.message.contains("expand") { Code::Limit } else { Code::Syntax };
            assert_eq!(d.code, expected, "{d}");
            let location = d.location.clone().unwrap();
            (location.line, location.column, d.message)
        })
    }

    #[rstest]
    #[case::plain("a: {b: [1, 2]}\n")]
    #[case::explicit_start("---\na: 1\n...\n")]
    #[case::anchors_used_sparingly("x: &args {A: \"1\"}\ny: *args\nz: *args\n")]
    #[case::syntax_error_left_to_serde("a: b: c\n")]
    #[case::depth_at_the_limit(&format!("a: {}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1)))]
    fn accepts(#[case] text: &str) {
        assert_eq!(limit(text), None);
    }

    #[rstest]
    #[case::second_document("a: 1\n---\nb: 2\n", 2, 1, "more than one YAML document")]
    #[case::flow_depth_closed(&format!("a: {}{}", "[".repeat(40), "]".repeat(40)), 1, 3 + MAX_DEPTH, "nests more than 32 levels")]
    #[case::flow_depth_unclosed(&format!("a: {}", "[".repeat(100_000)), 1, 3 + MAX_DEPTH, "nests more than 32 levels")]
    #[case::block_depth(&format!("a:\n{}x\n", "- ".repeat(100_000)), 2, 2 * MAX_DEPTH - 1, "nests more than 32 levels")]
    #[case::mapping_depth(&format!("a: {}", "{a: ".repeat(100_000)), 1, 4 + 4 * (MAX_DEPTH - 1), "nests more than 32 levels")]
    #[case::self_reference("a: &x [*x]\n", 1, 8, "refers to the node it is in")]
    fn refuses(#[case] text: &str, #[case] line: usize, #[case] column: usize, #[case] message: &str) {
        let (found_line, found_column, found) = limit(text).expect("refused");
        assert!(found.contains(message), "{found}");
        assert_eq!((found_line, found_column), (line, column), "{found}");
    }

    /// The real stack's spec needs no walk; each feature that could cross a limit makes one.
    #[rstest]
    #[case::the_real_spec(&std::fs::read_to_string(crate::paths::project_root().join("images/spec.yml")).unwrap(), true)]
    #[case::an_anchor("a: &x 1\nb: *x\n", false)]
    #[case::a_document_start("---\na: 1\n", false)]
    #[case::a_document_end("a: 1\n...\n", false)]
    #[case::a_directive("%YAML 1.2\n---\na: 1\n", false)]
    #[case::deep_brackets("a: [[[[[[[[[1]]]]]]]]]\n", false)]
    #[case::deep_indentation(&format!("a:\n{}b: 1\n", " ".repeat(17)), false)]
    #[case::many_dashes("a:\n- - - - b\n", false)]
    fn walks_only_what_could_cross_a_limit(#[case] text: &str, #[case] is_plain: bool) {
        assert_eq!(plain(text), is_plain);
    }

    #[test]
    fn an_alias_bomb_stops_at_the_alias_that_crosses_the_limit() {
        // One 1 MiB string, then aliases to it: the 8th copy crosses 8 MiB.
        let mut text = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
        for i in 0..1000 {
            text.push_str(&format!("  c{i}: *big\n"));
        }
        let (line, column, message) = limit(&text).expect("refused");
        assert!(message.contains("aliases expand it past 8 MiB"), "{message}");
        assert_eq!((line, column), (2 + 7, 7));
    }

    #[test]
    fn nested_aliases_multiply() {
        // Each level doubles the one before: 2^30 nodes from 30 lines.
        let mut text = String::from("l0: &l0 [x, x]\n");
        for i in 1..30 {
            text.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        let (_, _, message) = limit(&text).expect("refused");
        assert!(message.contains("aliases expand it past"), "{message}");
    }

    #[test]
    fn deep_brackets_in_text_yaml_rust2_refuses_are_bounded_too() {
        // A tab where yaml-rust2 refuses one, then a bracket bomb for serde_yaml.
        let text = format!("a:\n\t- b\nc: {}", "[".repeat(100_000));
        let (line, _, message) = limit(&text).expect("refused");
        assert!(message.contains("nests more than 32 levels"), "{message}");
        assert_eq!(line, 3);
    }
}
