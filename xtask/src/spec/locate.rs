//! Where each key and value of a YAML file sits (line and column).
//!
//! serde_yaml says where a syntax or type error is, but a value that parsed fine (an unknown
//! parent, a bad reference) has no position once it is a Rust value. This module walks the same
//! text with yaml-rust2's event parser and records the position of every key and value by its
//! path (`["images", "base-notebook", "parent"]`), so later checks can still point at
//! file:line:col. It also notices keys that appear twice in one mapping. It never fails: text
//! that does not parse gives an empty index (serde_yaml reports the syntax error).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Positions of keys and values by path, and the keys found twice in one mapping.
#[derive(Debug, Default)]
pub struct Locations {
    /// By path, its segments joined with [`SEP`] (one allocation per entry, not one per segment).
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
    /// (path of the second occurrence as segments, position of the first, of the second).
    pub duplicates: Vec<(Vec<String>, Pos, Pos)>,
}

impl Locations {
    pub fn index(text: &str) -> Locations {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Locations::default();
        }
        builder.locations
    }

    /// Where the key at `path` is written (its last segment is the key).
    pub fn key(&self, path: &[&str]) -> Option<Pos> {
        self.keys.get(&joined(path)).copied()
    }

    /// Where the value at `path` starts, only when it is written.
    pub fn value_exact(&self, path: &[&str]) -> Option<Pos> {
        self.values.get(&joined(path)).copied()
    }

    /// Where the value at `path` starts; falls back to its key, then to the nearest ancestor.
    pub fn value(&self, path: &[&str]) -> Option<Pos> {
        let full = joined(path);
        if let Some(pos) = self.values.get(&full).or_else(|| self.keys.get(&full)) {
            return Some(*pos);
        }
        let mut path = full.as_str();
        loop {
            path = parent(path)?;
            if let Some(pos) = self.keys.get(path).or_else(|| self.values.get(path)) {
                return Some(*pos);
            }
        }
    }
}

/// Joins path segments; the unit separator does not occur in spec keys.
const SEP: char = '\u{1f}';

fn joined(path: &[&str]) -> String {
    let mut out = String::new();
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(segment);
    }
    out
}

fn child(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_string()
    } else {
        format!("{path}{SEP}{segment}")
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(SEP).map_or("", |at| &path[..at]))
}

enum Frame {
    Mapping { path: String, key: Option<String>, seen: HashMap<String, Pos> },
    Sequence { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    locations: Locations,
}

impl Builder {
    /// Records a node that starts at `pos` and says whether it was a key.
    fn node(&mut self, scalar: Option<&str>, pos: Pos) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key, seen }) => match key.take() {
                None => {
                    // A key. Non-scalar keys are not used by the spec; they get no position.
                    let name = scalar?.to_string();
                    let key_path = child(path, &name);
                    if let Some(first) = seen.insert(name.clone(), pos) {
                        let segments = key_path.split(SEP).map(str::to_string).collect();
                        self.locations.duplicates.push((segments, first, pos));
                    }
                    self.locations.keys.insert(key_path, pos);
                    *key = Some(name);
                    None
                }
                Some(name) => {
                    let value_path = child(path, &name);
                    self.locations.values.insert(value_path.clone(), pos);
                    Some(value_path)
                }
            },
            Some(Frame::Sequence { path, index }) => {
                let value_path = child(path, &index.to_string());
                *index += 1;
                self.locations.values.insert(value_path.clone(), pos);
                Some(value_path)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = Pos { line: mark.line(), column: mark.col() + 1 };
        match event {
            Event::Scalar(value, ..) => {
                self.node(Some(&value), pos);
            }
            Event::Alias(_) => {
                self.node(None, pos);
            }
            Event::MappingStart(..) => {
                let path = self.node(None, pos).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None, seen: HashMap::new() });
            }
            Event::SequenceStart(..) => {
                let path = self.node(None, pos).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "stack:\n  registry: ghcr.io\nimages:\n  a:\n    parent: b\n    depends_on: [c, d]\n  a: {}\n";

    #[test]
    fn finds_values_keys_and_sequence_items() {
        let locations = Locations::index(TEXT);
        assert_eq!(locations.value(&["stack", "registry"]), Some(Pos { line: 2, column: 13 }));
        assert_eq!(locations.key(&["images", "a", "parent"]), Some(Pos { line: 5, column: 5 }));
        assert_eq!(locations.value(&["images", "a", "parent"]), Some(Pos { line: 5, column: 13 }));
        assert_eq!(locations.value(&["images", "a", "depends_on", "1"]), Some(Pos { line: 6, column: 21 }));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let locations = Locations::index(TEXT);
        assert_eq!(locations.value(&["stack", "namespace"]), Some(Pos { line: 1, column: 1 }));
    }

    #[test]
    fn notices_duplicate_keys() {
        let locations = Locations::index(TEXT);
        assert_eq!(locations.duplicates.len(), 1);
        let (path, first, second) = &locations.duplicates[0];
        assert_eq!(path, &["images".to_string(), "a".to_string()]);
        assert_eq!((first.line, second.line), (4, 7));
    }
}
