//! Source partitions and offsets, and the bytes that keep them: the keys
//! and values of Kafka Connect's offsets topic and the lines of its
//! standalone offset file.
//!
//! A key is the JSON `["<connector>",{<source partition>}]`, a value the
//! JSON offset map, both serialised canonically (sorted keys, no
//! whitespace) so one partition always gives the same key bytes. A line of
//! the offset file is `{"key":"<key>","value":"<value>"}`.
//!
//! Everything here reads bytes that come from outside (a topic anyone with
//! access can write to, a file anyone can edit): it never panics on them,
//! and a key it reads gives back the same partition once written again.
//! The fuzz target `offsets` holds it to that. It knows nothing of Kafka:
//! the worker's stores (`tributary::store`, `tributary::kafka`) move these
//! bytes.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

/// A primitive JSON value in a source partition or offset.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// A source partition or offset: string keys, primitive values, sorted by
/// key so one map always serialises to the same bytes.
pub type JsonMap = BTreeMap<String, Scalar>;

/// A source partition with its offset.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionOffset {
    pub partition: JsonMap,
    pub offset: JsonMap,
}

/// Serialises a map canonically: sorted keys, no whitespace.
pub fn json_map_to_value(map: &JsonMap) -> serde_json::Value {
    serde_json::Value::Object(
        map.iter()
            .map(|(k, v)| {
                let v = match v {
                    Scalar::Null => serde_json::Value::Null,
                    Scalar::Bool(b) => serde_json::Value::Bool(*b),
                    Scalar::Int(i) => serde_json::Value::from(*i),
                    Scalar::Float(f) => serde_json::Number::from_f64(*f)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    Scalar::Text(s) => serde_json::Value::String(s.clone()),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// Reads a JSON object with primitive values; `None` for anything else.
pub fn json_map_from_value(value: &serde_json::Value) -> Option<JsonMap> {
    let obj = value.as_object()?;
    let mut map = JsonMap::new();
    for (k, v) in obj {
        let s = match v {
            serde_json::Value::Null => Scalar::Null,
            serde_json::Value::Bool(b) => Scalar::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(n.as_f64()?),
            },
            serde_json::Value::String(s) => Scalar::Text(s.clone()),
            _ => return None,
        };
        map.insert(k.clone(), s);
    }
    Some(map)
}

/// The key bytes of a connector's partition: `["name",{"k":"v"}]`.
pub fn offset_key(connector: &str, partition: &JsonMap) -> String {
    serde_json::Value::Array(vec![
        serde_json::Value::String(connector.to_owned()),
        json_map_to_value(partition),
    ])
    .to_string()
}

/// The value bytes of an offset: `{"position":42}`.
pub fn offset_value(offset: &JsonMap) -> String {
    json_map_to_value(offset).to_string()
}

/// Parses a key into (connector, partition); `None` when it is not one.
pub fn parse_offset_key(key: &str) -> Option<(String, JsonMap)> {
    let value: serde_json::Value = serde_json::from_str(key).ok()?;
    match value.as_array()?.as_slice() {
        [serde_json::Value::String(name), partition] => {
            Some((name.clone(), json_map_from_value(partition)?))
        }
        _ => None,
    }
}

/// The canonical bytes of an offsets key, when it is one. Another writer
/// (Kafka Connect, a tool, a hand) may order a partition's fields
/// differently or add whitespace; the stores keep every key in this form,
/// so that one partition is one entry and the worker's next write or
/// tombstone replaces what it read.
pub fn canonical_offset_key(key: &str) -> Option<String> {
    parse_offset_key(key).map(|(name, partition)| offset_key(&name, &partition))
}

/// The value of an offsets record, when it is one: UTF-8 text holding a
/// JSON object (`{"position":42}`).
pub fn offset_record_value(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| serde_json::from_str::<serde_json::Value>(s).is_ok_and(|j| j.is_object()))
}

/// The offsets of `connector` among `entries` (canonical key bytes → value
/// bytes, see [`canonical_offset_key`]). Entries that are not a key and an
/// offset map are left out.
pub fn decode_offsets(connector: &str, entries: &BTreeMap<String, String>) -> Vec<PartitionOffset> {
    entries
        .iter()
        .filter_map(|(k, v)| {
            let (name, partition) = parse_offset_key(k)?;
            let offset = json_map_from_value(&serde_json::from_str(v).ok()?)?;
            (name == connector).then_some(PartitionOffset { partition, offset })
        })
        .collect()
}

/// A line of the offset file for a key and a value (without the newline).
pub fn offset_file_line(key: &str, value: &str) -> String {
    serde_json::json!({"key": key, "value": value}).to_string()
}

/// The entries of an offset file's text, by canonical key (a later line
/// for a partition replaces an earlier one), and the numbers (from 1) of
/// the lines skipped: not blank and not `{"key":"…","value":"…"}` with an
/// offsets key.
pub fn read_offset_file(text: &str) -> (BTreeMap<String, String>, Vec<usize>) {
    let mut entries = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = parse_offset_file_line(line)
            .and_then(|(key, value)| Some((canonical_offset_key(&key)?, value)));
        match entry {
            Some((key, value)) => {
                entries.insert(key, value);
            }
            None => skipped.push(i + 1),
        }
    }
    (entries, skipped)
}

/// The key and value of a line of the offset file; `None` when the line is
/// not `{"key":"…","value":"…"}`.
pub fn parse_offset_file_line(line: &str) -> Option<(String, String)> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    Some((
        v.get("key")?.as_str()?.to_owned(),
        v.get("value")?.as_str()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_read_gives_the_same_key_bytes_written_again() {
        for key in [
            r#"["c",{"filename":"/in.txt"}]"#,
            r#"[ "c" , { "b" : 1 , "a" : null } ]"#,
            r#"["c",{"big":18446744073709551615,"f":1.5,"t":true}]"#,
            r#"["c",{}]"#,
        ] {
            let (name, partition) = parse_offset_key(key).unwrap();
            let written = offset_key(&name, &partition);
            assert_eq!(parse_offset_key(&written), Some((name, partition)), "{key}");
            let (n, p) = parse_offset_key(&written).unwrap();
            assert_eq!(offset_key(&n, &p), written, "canonical: {key}");
        }
        for bad in [
            "",
            "[]",
            r#"["c"]"#,
            r#"[1,{}]"#,
            r#"["c",{},3]"#,
            r#"["c",[1]]"#,
            r#"["c",{"x":[1]}]"#,
        ] {
            assert_eq!(parse_offset_key(bad), None, "{bad}");
        }
    }

    /// Found by the fuzz target: without exact float parsing, this offset
    /// read back as a neighbouring float, so each write moved it.
    #[test]
    fn float_offsets_keep_their_bytes_through_a_read_and_a_write() {
        for text in [
            r#"{"{":5777777777777777777777777777777777777772}"#,
            r#"{"f":0.1}"#,
            r#"{"f":1.7976931348623157e308}"#,
        ] {
            let offset = json_map_from_value(&serde_json::from_str(text).unwrap()).unwrap();
            let written = offset_value(&offset);
            let again = json_map_from_value(&serde_json::from_str(&written).unwrap()).unwrap();
            assert_eq!(again, offset, "{text} → {written}");
            assert_eq!(offset_value(&again), written);
        }
    }

    #[test]
    fn offset_file_lines_read_back() {
        let line = offset_file_line(r#"["c",{"f":"a\"b"}]"#, r#"{"position":7}"#);
        assert_eq!(
            parse_offset_file_line(&line),
            Some((
                r#"["c",{"f":"a\"b"}]"#.to_owned(),
                r#"{"position":7}"#.to_owned()
            ))
        );
        for bad in [
            "",
            "{}",
            r#"{"key":1,"value":"v"}"#,
            r#"{"key":"k"}"#,
            "garbage",
        ] {
            assert_eq!(parse_offset_file_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_partition_written_two_ways_is_one_entry_the_later_line_wins() {
        let text = [
            offset_file_line(r#"["c",{"b":1,"a":2}]"#, r#"{"position":1}"#),
            "garbage".to_owned(),
            String::new(),
            offset_file_line(r#"[ "c", {"a":2, "b":1} ]"#, r#"{"position":2}"#),
            offset_file_line("not a key", r#"{"position":3}"#),
        ]
        .join("\n");
        let (entries, skipped) = read_offset_file(&text);
        assert_eq!(skipped, vec![2, 5]);
        assert_eq!(
            entries.into_iter().collect::<Vec<_>>(),
            vec![(
                r#"["c",{"a":2,"b":1}]"#.to_owned(),
                r#"{"position":2}"#.to_owned()
            )]
        );
    }
}
