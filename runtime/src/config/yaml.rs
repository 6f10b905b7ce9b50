//! YAML files read into flat, dotted keys that remember their line.
//!
//! `producer: {linger.ms: 5}` and `producer.linger.ms: 5` mean the same, as
//! do nested maps and Kafka Connect's flat property names. JSON is YAML, so
//! a Kafka Connect connector JSON file loads as it is.

use super::{Problem, Problems};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::Event;
use std::collections::HashSet;
use std::path::Path;

/// A scalar or a list of scalars, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// The value as Kafka Connect would hold it: a string. Lists join with
    /// commas. `None` for null.
    pub fn to_config_string(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::List(items) => Some(
                items
                    .iter()
                    .filter_map(Value::to_config_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        }
    }
}

/// One key of a flattened document.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Dotted path: `producer.linger.ms`.
    pub key: String,
    pub value: Value,
    /// 1-based line of the value.
    pub line: usize,
}

/// Reads `file` and flattens its (single) document. A file that is not YAML
/// gives one problem with the parser's line.
pub fn load_flat(file: &Path) -> Result<Vec<Entry>, Problems> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Problems(vec![Problem::new(
            file,
            None,
            None,
            format!("cannot read: {e}"),
        )])
    })?;
    parse_flat(file, &text)
}

/// How deeply mappings and lists may nest in a config document. Real
/// configs nest two or three levels; the bound keeps a hostile document
/// from exhausting the stack of the thread that loads it.
pub const MAX_DEPTH: usize = 32;

/// How many keys a config document (a connector file, a REST body, the
/// worker's file) may hold, counted as flattened: `producer: {linger.ms: 5}`
/// is one key. Real connector configs hold tens of keys, the largest a few
/// hundred; the bound keeps a hostile document from tying up the worker.
pub const MAX_KEYS: usize = 10_000;

/// Flattens a YAML text; `file` is only used in problems.
pub fn parse_flat(file: &Path, text: &str) -> Result<Vec<Entry>, Problems> {
    check_events(file, text)?;
    load_and_flatten(file, text)
}

/// Loads a text that passed [`check_events`] and flattens it.
fn load_and_flatten(file: &Path, text: &str) -> Result<Vec<Entry>, Problems> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        Problems(vec![Problem::new(
            file,
            Some(e.marker().line()),
            None,
            format!("not valid YAML: {}", e.info()),
        )])
    })?;
    let mut flat = Flattener {
        file,
        out: Vec::new(),
        seen: HashSet::new(),
        problems: Problems::default(),
    };
    match docs.as_slice() {
        [] => {}
        [doc] => flat.flatten("", doc),
        [_, second, ..] => flat.problems.push(Problem::new(
            file,
            Some(second.span.start.line()),
            None,
            "holds more than one YAML document; use one file per config",
        )),
    }
    let Flattener {
        out: entries,
        mut problems,
        ..
    } = flat;
    if matches!(
        docs.first().map(|d| &d.data),
        Some(YamlData::Value(Scalar::Null)) | None
    ) {
        return problems.into_result(entries);
    }
    if let Some(doc) = docs.first() {
        if !matches!(doc.data, YamlData::Mapping(_)) {
            problems.push(Problem::new(
                file,
                Some(doc.span.start.line()),
                None,
                "must be a mapping of keys to values",
            ));
        }
    }
    problems.into_result(entries)
}

/// Where the event stream is: in a mapping (expecting a key or a value;
/// whether it has any entry yet) or in a list.
enum Frame {
    Mapping { key_next: bool, empty: bool },
    List,
}

/// Refuses, before the document is loaded, what loading would pay for or
/// what a config does not hold: nesting deeper than [`MAX_DEPTH`] (loading
/// into a tree recurses once per level), more than [`MAX_KEYS`] keys, and
/// anchors and aliases (`&name`, `*name`: a value written once and repeated
/// elsewhere, which a flat config has no use for). The parser's
/// event stream is read once, without recursion, and only as far as the
/// first refusal.
fn check_events(file: &Path, text: &str) -> Result<(), Problems> {
    let refuse = |line: usize, message: String| {
        Err(Problems(vec![Problem::new(
            file,
            Some(line),
            None,
            message,
        )]))
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut keys = 0usize;
    for event in saphyr_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            // Syntax errors are reported by the loader, with their line.
            return Ok(());
        };
        let line = span.start.line();
        let node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        if node {
            // A node in a mapping's value place is a key of the document,
            // unless it is a mapping (whose own keys count instead).
            if let Some(Frame::Mapping { key_next, empty }) = frames.last_mut() {
                *empty = false;
                *key_next = !*key_next;
                if *key_next && !matches!(event, Event::MappingStart(..)) {
                    keys += 1;
                }
            }
        }
        let anchored = match event {
            Event::Scalar(_, _, id, _)
            | Event::MappingStart(id, _)
            | Event::SequenceStart(id, _) => id > 0,
            _ => false,
        };
        if anchored {
            return refuse(
                line,
                "holds a YAML anchor (`&name`); anchors and aliases are not allowed in a config, write the value out".into(),
            );
        }
        match event {
            Event::Alias(..) => {
                return refuse(
                    line,
                    "holds a YAML alias (`*name`); anchors and aliases are not allowed in a config, write the value out".into(),
                );
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                frames.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        key_next: true,
                        empty: true,
                    }
                } else {
                    Frame::List
                });
                if frames.len() > MAX_DEPTH {
                    return refuse(
                        line,
                        format!("nested more than {MAX_DEPTH} levels deep (the limit for a config document)"),
                    );
                }
            }
            Event::MappingEnd => {
                // An empty mapping under a key is a key of its own.
                if let Some(Frame::Mapping { empty: true, .. }) = frames.pop() {
                    if matches!(frames.last(), Some(Frame::Mapping { .. })) {
                        keys += 1;
                    }
                }
            }
            Event::SequenceEnd => {
                frames.pop();
            }
            _ => {}
        }
        if keys > MAX_KEYS {
            return refuse(
                line,
                format!("holds more than {MAX_KEYS} keys (the limit for a config document)"),
            );
        }
    }
    Ok(())
}

/// Flattens a loaded document into `out`, each key once.
struct Flattener<'a> {
    file: &'a Path,
    out: Vec<Entry>,
    /// The keys in `out`, for the check that none is set twice.
    seen: HashSet<String>,
    problems: Problems,
}

impl Flattener<'_> {
    fn push(&mut self, key: &str, value: Value, line: usize) {
        self.seen.insert(key.to_owned());
        self.out.push(Entry {
            key: key.to_owned(),
            value,
            line,
        });
    }

    fn flatten(&mut self, prefix: &str, node: &MarkedYaml) {
        let file = self.file;
        let line = node.span.start.line();
        match &node.data {
            YamlData::Mapping(map) => {
                if !prefix.is_empty() && map.is_empty() {
                    self.push(prefix, Value::Null, line);
                }
                for (k, v) in map {
                    let Some(name) = scalar_key(k) else {
                        self.problems.push(Problem::new(
                            file,
                            Some(k.span.start.line()),
                            (!prefix.is_empty()).then_some(prefix),
                            "keys must be strings",
                        ));
                        continue;
                    };
                    let key = if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}.{name}")
                    };
                    if self.seen.contains(&key) {
                        self.problems.push(Problem::new(
                            file,
                            Some(k.span.start.line()),
                            Some(&key),
                            "is set twice (also as a nested or dotted key)",
                        ));
                        continue;
                    }
                    self.flatten(&key, v);
                }
            }
            YamlData::Sequence(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match scalar(item) {
                        Some(v) => values.push(v),
                        None => self.problems.push(Problem::new(
                            file,
                            Some(item.span.start.line()),
                            Some(prefix),
                            "list items must be plain values",
                        )),
                    }
                }
                self.push(prefix, Value::List(values), line);
            }
            _ => match scalar(node) {
                Some(value) => self.push(prefix, value, line),
                None => self.problems.push(Problem::new(
                    file,
                    Some(line),
                    Some(prefix),
                    "unsupported YAML value (tags are not allowed)",
                )),
            },
        }
    }
}

fn scalar(node: &MarkedYaml) -> Option<Value> {
    match &node.data {
        YamlData::Value(s) => Some(match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Int(*i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => Value::Str(s.to_string()),
        }),
        YamlData::Representation(s, _, _) => Some(Value::Str(s.to_string())),
        _ => None,
    }
}

fn scalar_key(node: &MarkedYaml) -> Option<String> {
    match scalar(node)? {
        Value::Str(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> Vec<(String, Value, usize)> {
        parse_flat(Path::new("t.yaml"), text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    /// `a:` nested `levels` deep in block style, one more space a level.
    fn block_nested(levels: usize) -> String {
        (0..levels)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect::<String>()
            + &" ".repeat(levels)
            + "x: 1\n"
    }

    #[test]
    fn deep_documents_are_refused_before_they_are_loaded() {
        // Deep enough to overflow a thread's stack if loaded as a tree.
        for (text, line) in [
            (block_nested(5_000), 33),
            ("- ".repeat(50_000) + "x\n", 1),
            ("[".repeat(40) + &"]".repeat(40), 1),
        ] {
            let p = parse_flat(Path::new("t.yaml"), &text).unwrap_err();
            let shown = p.to_string();
            assert!(shown.contains("nested more than 32 levels deep"), "{shown}");
            assert_eq!(p.0[0].line, Some(line), "{shown}");
        }
        // The scanner bounds flow collections itself.
        assert!(parse_flat(Path::new("t.yaml"), &"[".repeat(50_000)).is_err());
        // At the limit a document loads.
        let entries = flat(&block_nested(MAX_DEPTH - 1));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, format!("{}x", "a.".repeat(MAX_DEPTH - 1)));
    }

    /// `n` flat keys, one a line.
    fn flat_keys(n: usize) -> String {
        (0..n).map(|i| format!("key.number.{i}: {i}\n")).collect()
    }

    #[test]
    fn flattening_is_linear_in_the_number_of_keys() {
        // 100,000 keys: a check of each key against every earlier one
        // would make five billion comparisons and run for minutes.
        let n = 100_000;
        let text: String = (0..n).map(|i| format!("k{i}: 1\n")).collect();
        let entries = load_and_flatten(Path::new("t.yaml"), &text).unwrap();
        assert_eq!(entries.len(), n);
        assert_eq!(entries[n - 1].key, format!("k{}", n - 1));
        assert_eq!(entries[n - 1].line, n);
    }

    #[test]
    fn more_keys_than_the_limit_are_refused_before_loading() {
        assert_eq!(flat(&flat_keys(MAX_KEYS)).len(), MAX_KEYS);
        let err = parse_flat(Path::new("t.yaml"), &flat_keys(80_000)).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(
            err.0[0].to_string(),
            "t.yaml:10001: holds more than 10000 keys (the limit for a config document)"
        );
        // Counted as flattened: nesting, lists and empty mappings alike.
        let nested = format!(
            "config:\n{}  list: [a, b]\n  empty: {{}}\n",
            (0..MAX_KEYS - 2)
                .map(|i| format!("  k{i}: v\n"))
                .collect::<String>()
        );
        assert_eq!(flat(&nested).len(), MAX_KEYS);
        let over = nested + "other: {x: 1}\n";
        let err = parse_flat(Path::new("t.yaml"), &over).unwrap_err();
        assert!(err.to_string().contains("more than 10000 keys"), "{err}");
        // JSON alike.
        let json = format!(
            "{{{}}}",
            (0..MAX_KEYS + 1)
                .map(|i| format!("\"k{i}\": 1"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let err = parse_flat(Path::new("t.json"), &json).unwrap_err();
        assert!(err.to_string().contains("more than 10000 keys"), "{err}");
    }

    #[test]
    fn anchors_and_aliases_are_refused_with_their_line() {
        let err = parse_flat(Path::new("c.yaml"), "a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "c.yaml:1: holds a YAML anchor (`&name`); anchors and aliases are not allowed in a config, write the value out"
        );
        for (text, line) in [
            ("a: &x 1\nb: *x\n", 1),
            ("a: 1\nb: &x {c: 1}\n", 2),
            ("a: 1\nb: &x [1, 2]\n", 2),
            ("defaults: &d\n  x: 1\nconfig:\n  <<: *d\n", 1),
            ("{\"a\": 1,\n \"b\": &x 2, \"c\": *x}", 2),
        ] {
            let err = parse_flat(Path::new("c.yaml"), text).unwrap_err();
            assert_eq!(err.0.len(), 1, "{text}: {err}");
            assert_eq!(err.0[0].line, Some(line), "{text}: {err}");
            let shown = err.to_string();
            assert!(
                shown.contains("anchors and aliases are not allowed in a config"),
                "{shown}"
            );
        }
    }

    #[test]
    fn nested_and_dotted_keys_flatten_alike() {
        let got = flat("producer:\n  linger.ms: 5\nconsumer.fetch.min.bytes: 1\nlist: [a, b]\n");
        assert_eq!(
            got,
            vec![
                ("producer.linger.ms".into(), Value::Int(5), 2),
                ("consumer.fetch.min.bytes".into(), Value::Int(1), 3),
                (
                    "list".into(),
                    Value::List(vec![Value::Str("a".into()), Value::Str("b".into())]),
                    4
                ),
            ]
        );
    }

    #[test]
    fn json_loads_as_yaml() {
        let got = flat("{\"name\": \"x\", \"config\": {\"tasks.max\": \"2\"}}");
        assert_eq!(got[1].0, "config.tasks.max");
        assert_eq!(got[1].1, Value::Str("2".into()));
    }

    #[test]
    fn a_key_set_twice_is_a_problem_with_its_line() {
        let err = parse_flat(Path::new("w.yaml"), "a:\n  b: 1\na.b: 2\n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(
            err.0[0].to_string(),
            "w.yaml:3: `a.b`: is set twice (also as a nested or dotted key)"
        );
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let err = parse_flat(Path::new("w.yaml"), "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.0[0].line.is_some(), "{err}");
        assert!(err.to_string().contains("not valid YAML"), "{err}");
    }

    #[test]
    fn a_list_of_mappings_is_refused() {
        let err = parse_flat(Path::new("w.yaml"), "a:\n  - x: 1\n").unwrap_err();
        assert_eq!(err.0[0].key.as_deref(), Some("a"));
        assert_eq!(err.0[0].line, Some(2));
    }
}
