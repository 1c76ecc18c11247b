//! Setting bases' `refresh` keys in the spec's text, in place (`cargo xtask refresh`, which the
//! scheduled refresh workflow runs). The edit replaces the key's value, or adds a `refresh:`
//! line as the base's first key, and leaves every other byte as it was: comments, blank lines,
//! quoting and layout, so the change proposed for review is one line per base.
//!
//! Pure: text in, text out. Positions come from yaml-rust2's event parser; the result is
//! checked by parsing both texts, which must differ in the refresh keys and nowhere else.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Code, Diagnostic, Diagnostics, Location};

/// One base's refresh key, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub base: String,
    pub before: Option<String>,
    pub after: String,
    /// The line of the key in the edited text (counted from 1).
    pub line: usize,
}

impl Change {
    pub fn changed(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }
}

/// The edited text and what changed in it, one entry per base asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: String,
    pub changes: Vec<Change>,
}

/// Sets `bases.<name>.refresh` to `key` for each of `bases` in `text` (the spec at `file`, named
/// in errors only).
pub fn set_refresh(file: &Path, text: &str, bases: &[&str], key: &str) -> Result<Edit, Diagnostics> {
    let found = walk(text);
    let at = |line: usize, message: String| {
        Diagnostics::single(Diagnostic::new(Code::InvalidValue, Some(Location::new(file, line, 1)), message))
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut changes = Vec::new();
    for base in bases {
        let Some(node) = found.get(*base) else {
            let message = format!("the spec has no base `{base}` written as a mapping under `bases`");
            return Err(Diagnostics::single(Diagnostic::new(
                Code::UnknownImage,
                Some(Location::file_only(file)),
                message,
            )));
        };
        let key_line = node.refresh_key.map_or(1, |mark| mark.line());
        let change = match (&node.refresh, node.mapping) {
            (Some(Value::Scalar { mark, style, value }), _) => {
                let Some(end) = scalar_end(text, mark.index(), *style, value) else {
                    return Err(at(
                        key_line,
                        format!("`bases.{base}.refresh` spans lines; write it on one line to let `refresh` edit it"),
                    ));
                };
                if value != key {
                    edits.push((mark.index(), end, quoted(key)));
                }
                Change { base: base.to_string(), before: Some(value.clone()), after: key.into(), line: mark.line() }
            }
            (Some(Value::Other), _) => {
                return Err(at(
                    key_line,
                    format!("`bases.{base}.refresh` is not a plain value; write it as `refresh: \"{key}\"`"),
                ));
            }
            (None, Some(mapping)) => {
                let (at_char, line, insert) = insertion(text, mapping, node.first_key, key).ok_or_else(|| {
                    at(
                        mapping.line(),
                        format!("cannot add `refresh:` to base `{base}`: write its first key on a line of its own"),
                    )
                })?;
                edits.push((at_char, at_char, insert));
                Change { base: base.to_string(), before: None, after: key.into(), line }
            }
            (None, None) => {
                return Err(at(1, format!("base `{base}` is not a mapping; `refresh` cannot add a key to it")))
            }
        };
        changes.push(change);
    }
    let edited = apply(text, edits);
    verify(text, &edited, bases, key).map_err(|message| at(1, message))?;
    Ok(Edit { text: edited, changes })
}

/// A key as a YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quoted(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""))
}

/// Where a `refresh:` line goes and what it says: before the base's first key, indented as it
/// is, or right after the `{` of a flow mapping. Positions in characters.
fn insertion(text: &str, mapping: Marker, first_key: Option<Marker>, key: &str) -> Option<(usize, usize, String)> {
    let entry = format!("refresh: {}", quoted(key));
    if text.chars().nth(mapping.index()) == Some('{') {
        return Some((mapping.index() + 1, mapping.line(), format!("{entry}, ")));
    }
    let first = first_key?;
    let line_start = first.index() - first.col();
    let indent: String = text.chars().skip(line_start).take(first.col()).collect();
    if !indent.chars().all(|c| c == ' ') {
        return None;
    }
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    Some((line_start, first.line(), format!("{indent}{entry}{newline}")))
}

/// The character position just after a one-line scalar that starts at `start`; `None` when it
/// spans lines or is a block scalar.
fn scalar_end(text: &str, start: usize, style: TScalarStyle, value: &str) -> Option<usize> {
    let rest: Vec<char> = text.chars().skip(start).take_while(|c| *c != '\n' && *c != '\r').collect();
    let quote = match style {
        TScalarStyle::Plain => {
            let len = value.chars().count();
            return (rest.iter().take(len).copied().eq(value.chars())).then_some(start + len);
        }
        TScalarStyle::SingleQuoted => '\'',
        TScalarStyle::DoubleQuoted => '"',
        _ => return None,
    };
    let mut i = 1;
    while i < rest.len() {
        match rest[i] {
            '\\' if quote == '"' => i += 2,
            '\'' if quote == '\'' && rest.get(i + 1) == Some(&'\'') => i += 2,
            c if c == quote => return Some(start + i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Replaces character ranges of `text`; the ranges do not overlap.
fn apply(text: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    let offsets: Vec<usize> = text.char_indices().map(|(at, _)| at).chain([text.len()]).collect();
    edits.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    let mut out = text.to_string();
    for (start, end, replacement) in edits {
        out.replace_range(offsets[start]..offsets[end], &replacement);
    }
    out
}

/// The edited text must parse to the original with the refresh keys set, and to nothing else.
fn verify(before: &str, after: &str, bases: &[&str], key: &str) -> Result<(), String> {
    let parse = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| e.to_string());
    let mut expected = parse(before)?;
    for base in bases {
        let Some(serde_yaml::Value::Mapping(mapping)) = expected.get_mut("bases").and_then(|b| b.get_mut(*base)) else {
            return Err(format!("base `{base}` is not a mapping"));
        };
        mapping.insert("refresh".into(), key.into());
    }
    if parse(after)? == expected {
        Ok(())
    } else {
        Err("editing the refresh keys would change more than them; nothing was written (a bug: please report it)"
            .into())
    }
}

/// A `refresh` value as the parser saw it.
#[derive(Debug, Clone)]
enum Value {
    Scalar {
        mark: Marker,
        style: TScalarStyle,
        value: String,
    },
    /// An alias, a sequence or a mapping: nothing `refresh` edits.
    Other,
}

/// What the walk found about one base.
#[derive(Debug, Default)]
struct Base {
    /// Where the base's mapping starts (a `{`, or its first key).
    mapping: Option<Marker>,
    first_key: Option<Marker>,
    /// The `refresh` key, and its value.
    refresh_key: Option<Marker>,
    refresh: Option<Value>,
}

/// Every base under the top-level `bases` mapping, by name.
fn walk(text: &str) -> HashMap<String, Base> {
    let mut walker = Walker::default();
    if Parser::new_from_str(text).load(&mut walker, false).is_err() {
        return HashMap::new();
    }
    walker.bases
}

/// The path of keys to the node being read, and what was found under `bases`.
#[derive(Default)]
struct Walker {
    /// One entry per open mapping or sequence: its path, and the key read last (mappings only;
    /// a sequence's items get the segment `[]`).
    stack: Vec<(Vec<String>, Option<Option<String>>)>,
    bases: HashMap<String, Base>,
}

impl Walker {
    /// The path of the node that starts now, and whether it is a mapping key.
    fn next_node(&mut self, scalar: Option<&str>) -> (Vec<String>, bool) {
        match self.stack.last_mut() {
            None => (Vec::new(), false),
            Some((path, None)) => {
                let mut item_path = path.clone();
                item_path.push("[]".into());
                (item_path, false)
            }
            Some((path, Some(pending))) => match pending.take() {
                None => {
                    *pending = Some(scalar.unwrap_or_default().to_string());
                    let mut key_path = path.clone();
                    key_path.push(scalar.unwrap_or_default().to_string());
                    (key_path, true)
                }
                Some(key) => {
                    let mut value_path = path.clone();
                    value_path.push(key);
                    (value_path, false)
                }
            },
        }
    }

    fn base(&mut self, path: &[String]) -> Option<&mut Base> {
        match path {
            [bases, name, ..] if bases == "bases" => Some(self.bases.entry(name.clone()).or_default()),
            _ => None,
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let scalar = match &event {
            Event::Scalar(value, ..) => Some(value.clone()),
            _ => None,
        };
        let opens = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
        if matches!(event, Event::Scalar(..) | Event::Alias(..)) || opens {
            let (path, is_key) = self.next_node(scalar.as_deref());
            let depth = path.len();
            if let Some(base) = self.base(&path) {
                match (depth, is_key, &event) {
                    (2, false, Event::MappingStart(..)) => base.mapping = Some(mark),
                    (3, true, _) => {
                        base.first_key.get_or_insert(mark);
                        if path[2] == "refresh" {
                            base.refresh_key = Some(mark);
                        }
                    }
                    (3, false, Event::Scalar(value, style, ..)) if path[2] == "refresh" => {
                        base.refresh = Some(Value::Scalar { mark, style: *style, value: value.clone() });
                    }
                    (3, false, _) if path[2] == "refresh" => base.refresh = Some(Value::Other),
                    _ => {}
                }
            }
            if opens {
                let pending = matches!(event, Event::MappingStart(..)).then_some(None);
                self.stack.push((path, pending));
            }
        } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
            self.stack.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const SPEC: &str = "\
stack:
  namespace: org/notebooks   # where pins go
bases:
  debian:
    image: localhost/debian:bookworm
    # bumped weekly
    refresh: \"2026-11\"   # the key
    recipe:
      debootstrap: {suite: bookworm, mirror: http://deb.debian.org/debian}
  ubuntu:
    # no refresh yet
    image: localhost/ubuntu:noble
    recipe:
      import: ubuntu.tar
images: {}
";

    fn edit(text: &str, bases: &[&str], key: &str) -> Edit {
        set_refresh(Path::new("spec.yml"), text, bases, key).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The lines of `after` that differ from `before`'s, with `before` given as it was.
    fn changed_lines(before: &str, after: &str) -> Vec<String> {
        let old: Vec<&str> = before.lines().collect();
        after.lines().filter(|line| !old.contains(line)).map(str::to_string).collect()
    }

    #[rstest]
    #[case::double_quoted("refresh: \"2026-11\"   # the key", "refresh: \"2026-12-01\"   # the key")]
    #[case::single_quoted("refresh: '2026-11'", "refresh: \"2026-12-01\"")]
    #[case::plain("refresh: 2026-11 # the key", "refresh: \"2026-12-01\" # the key")]
    #[case::quote_inside("refresh: 'it''s'", "refresh: \"2026-12-01\"")]
    #[case::escape_inside("refresh: \"a\\\"b\"  # x", "refresh: \"2026-12-01\"  # x")]
    fn replaces_the_value_and_keeps_the_rest_of_the_line(#[case] line: &str, #[case] expected: &str) {
        let text = SPEC.replace("refresh: \"2026-11\"   # the key", line);
        let edited = edit(&text, &["debian"], "2026-12-01");
        assert_eq!(changed_lines(&text, &edited.text), vec![format!("    {expected}")]);
        assert_eq!(edited.changes[0].line, 7);
        assert!(edited.changes[0].changed());
    }

    #[test]
    fn adds_the_key_before_the_first_key_of_a_base_without_one() {
        let edited = edit(SPEC, &["ubuntu"], "2026-12-01");
        let expected = SPEC.replace(
            "    # no refresh yet\n    image: localhost/ubuntu",
            "    # no refresh yet\n    refresh: \"2026-12-01\"\n    image: localhost/ubuntu",
        );
        assert_eq!(edited.text, expected);
        assert_eq!(
            edited.changes,
            vec![Change { base: "ubuntu".into(), before: None, after: "2026-12-01".into(), line: 12 }]
        );
    }

    #[test]
    fn edits_only_the_bases_asked_for() {
        let edited = edit(SPEC, &["debian"], "2026-12-01");
        assert_eq!(changed_lines(SPEC, &edited.text), vec!["    refresh: \"2026-12-01\"   # the key"]);
        let both = edit(SPEC, &["debian", "ubuntu"], "2026-12-01");
        assert_eq!(changed_lines(SPEC, &both.text).len(), 2);
        assert_eq!(both.text.lines().count(), SPEC.lines().count() + 1);
    }

    #[test]
    fn the_same_key_changes_nothing() {
        let edited = edit(SPEC, &["debian"], "2026-11");
        assert_eq!(edited.text, SPEC);
        assert!(!edited.changes[0].changed());
    }

    #[test]
    fn a_flow_mapping_gets_the_key_after_its_brace() {
        let text = "bases:\n  debian: {image: localhost/debian:bookworm}\n";
        let edited = edit(text, &["debian"], "k1");
        assert_eq!(edited.text, "bases:\n  debian: {refresh: \"k1\", image: localhost/debian:bookworm}\n");
    }

    #[test]
    fn keeps_windows_line_endings_and_counts_characters_not_bytes() {
        let text = "# spécification\r\nbases:\r\n  débian:\r\n    image: x\r\n    refresh: \"é\"\r\n";
        let edited = edit(text, &["débian"], "k1");
        assert_eq!(edited.text, "# spécification\r\nbases:\r\n  débian:\r\n    image: x\r\n    refresh: \"k1\"\r\n");
        let added = edit("bases:\r\n  a:\r\n    image: x\r\n", &["a"], "k1");
        assert_eq!(added.text, "bases:\r\n  a:\r\n    refresh: \"k1\"\r\n    image: x\r\n");
    }

    #[rstest]
    #[case::block_scalar("refresh: |\n      2026-11\n", 7, "spans lines")]
    #[case::sequence("refresh: [a]\n", 7, "not a plain value")]
    fn refuses_values_it_cannot_edit_in_place(#[case] value: &str, #[case] line: usize, #[case] says: &str) {
        let text = SPEC.replace("refresh: \"2026-11\"   # the key\n", value);
        let error = set_refresh(Path::new("spec.yml"), &text, &["debian"], "k").unwrap_err().to_string();
        assert!(error.starts_with(&format!("spec.yml:{line}:1: error[invalid-value]")), "{error}");
        assert!(error.contains(says), "{error}");
    }

    #[test]
    fn refuses_a_base_the_text_does_not_have() {
        let error = set_refresh(Path::new("spec.yml"), SPEC, &["alpine"], "k").unwrap_err().to_string();
        assert!(error.contains("error[unknown-image]: the spec has no base `alpine`"), "{error}");
    }
}
