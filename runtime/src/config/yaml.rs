//! YAML files read into flat, dotted keys that remember their line.
//!
//! `producer: {linger.ms: 5}` and `producer.linger.ms: 5` mean the same, as
//! do nested maps and Kafka Connect's flat property names. JSON is YAML, so
//! a Kafka Connect connector JSON file loads as it is.

use super::{Problem, Problems};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::Event;
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

/// Flattens a YAML text; `file` is only used in problems.
pub fn parse_flat(file: &Path, text: &str) -> Result<Vec<Entry>, Problems> {
    check_depth(file, text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        Problems(vec![Problem::new(
            file,
            Some(e.marker().line()),
            None,
            format!("not valid YAML: {}", e.info()),
        )])
    })?;
    let mut problems = Problems::default();
    let mut entries = Vec::new();
    match docs.as_slice() {
        [] => {}
        [doc] => flatten(file, "", doc, &mut entries, &mut problems),
        [_, second, ..] => problems.push(Problem::new(
            file,
            Some(second.span.start.line()),
            None,
            "holds more than one YAML document; use one file per config",
        )),
    }
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

/// Refuses a document nested deeper than [`MAX_DEPTH`], before it is
/// loaded. The parser's event stream is read without recursion; loading
/// the document into a tree recurses once per level.
fn check_depth(file: &Path, text: &str) -> Result<(), Problems> {
    let mut depth = 0usize;
    for event in saphyr_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            // Syntax errors are reported by the loader, with their line.
            return Ok(());
        };
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Problems(vec![Problem::new(
                        file,
                        Some(span.start.line()),
                        None,
                        format!("nested more than {MAX_DEPTH} levels deep (the limit for a config document)"),
                    )]));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn flatten(
    file: &Path,
    prefix: &str,
    node: &MarkedYaml,
    out: &mut Vec<Entry>,
    problems: &mut Problems,
) {
    let line = node.span.start.line();
    match &node.data {
        YamlData::Mapping(map) => {
            if !prefix.is_empty() && map.is_empty() {
                out.push(Entry {
                    key: prefix.to_owned(),
                    value: Value::Null,
                    line,
                });
            }
            for (k, v) in map {
                let Some(name) = scalar_key(k) else {
                    problems.push(Problem::new(
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
                if out.iter().any(|e| e.key == key) {
                    problems.push(Problem::new(
                        file,
                        Some(k.span.start.line()),
                        Some(&key),
                        "is set twice (also as a nested or dotted key)",
                    ));
                    continue;
                }
                flatten(file, &key, v, out, problems);
            }
        }
        YamlData::Sequence(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match scalar(item) {
                    Some(v) => values.push(v),
                    None => problems.push(Problem::new(
                        file,
                        Some(item.span.start.line()),
                        Some(prefix),
                        "list items must be plain values",
                    )),
                }
            }
            out.push(Entry {
                key: prefix.to_owned(),
                value: Value::List(values),
                line,
            });
        }
        _ => match scalar(node) {
            Some(value) => out.push(Entry {
                key: prefix.to_owned(),
                value,
                line,
            }),
            None => problems.push(Problem::new(
                file,
                Some(line),
                Some(prefix),
                "unsupported YAML value (tags and aliases are not allowed)",
            )),
        },
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
