//! How records become lines of an object, and lines records again.
//!
//! - `json`: one JSON object per line, an envelope that holds everything a
//!   Kafka record has, so `s3-source` can restore it:
//!   `{"topic":…,"partition":…,"offset":…,"timestamp":…,"key":…,"value":…,"headers":[{"key":…,"value":…}]}`.
//!   Key, value and header values are JSON strings when they are UTF-8
//!   text, else base64 under `key_base64`, `value_base64` (headers:
//!   `value_base64`); null when absent.
//! - `bytes`: the raw value followed by a separator.
//! - `csv`: values that are flat JSON objects, one row each, under a header
//!   row of the first record's fields.

use base64::Engine;
use serde_json::{Map, Value as Json};
use tributary_sdk::Header;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Bytes,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim() {
            "json" => Some(Format::Json),
            "bytes" => Some(Format::Bytes),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The object name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Bytes => "bin",
            Format::Csv => "csv",
        }
    }
}

/// A record with everything the envelope holds.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub topic: Option<String>,
    pub partition: Option<i64>,
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

/// Puts `bytes` into `map` under `name` (text) or `name_base64`.
fn put_bytes(map: &mut Map<String, Json>, name: &str, bytes: &Option<Vec<u8>>) {
    match bytes {
        None => {
            map.insert(name.into(), Json::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                map.insert(name.into(), Json::String(text.into()));
            }
            Err(_) => {
                map.insert(format!("{name}_base64"), Json::String(B64.encode(b)));
            }
        },
    }
}

/// Reads what `put_bytes` wrote.
fn get_bytes(map: &Map<String, Json>, name: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(v) = map.get(&format!("{name}_base64")) {
        let s = v
            .as_str()
            .ok_or_else(|| format!("`{name}_base64` is not a string"))?;
        return B64
            .decode(s)
            .map(Some)
            .map_err(|e| format!("`{name}_base64` is not base64: {e}"));
    }
    match map.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone().into_bytes())),
        // A JSON value written by something else: keep it as JSON text.
        Some(other) => Ok(Some(other.to_string().into_bytes())),
    }
}

/// One envelope line (without the newline).
pub fn envelope_line(e: &Envelope) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("topic".into(), e.topic.clone().into());
    m.insert("partition".into(), e.partition.into());
    m.insert("offset".into(), e.offset.into());
    m.insert("timestamp".into(), e.timestamp.into());
    put_bytes(&mut m, "key", &e.key);
    put_bytes(&mut m, "value", &e.value);
    let headers: Vec<Json> = e
        .headers
        .iter()
        .map(|h| {
            let mut hm = Map::new();
            hm.insert("key".into(), Json::String(h.key.clone()));
            put_bytes(&mut hm, "value", &h.value);
            Json::Object(hm)
        })
        .collect();
    m.insert("headers".into(), Json::Array(headers));
    serde_json::to_vec(&Json::Object(m)).expect("a JSON value serializes")
}

/// Parses an envelope line.
pub fn parse_envelope(line: &[u8]) -> Result<Envelope, String> {
    let json: Json = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Json::Object(m) = json else {
        return Err("not a JSON object (the envelope of format `json`)".into());
    };
    let int = |name: &str| -> Result<Option<i64>, String> {
        match m.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("`{name}` is not an integer")),
        }
    };
    let headers = match m.get("headers") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(hs)) => hs
            .iter()
            .map(|h| {
                let Json::Object(hm) = h else {
                    return Err("a header is not an object".to_string());
                };
                let key = hm
                    .get("key")
                    .and_then(Json::as_str)
                    .ok_or("a header has no string `key`")?
                    .to_owned();
                Ok(Header {
                    key,
                    value: get_bytes(hm, "value")?,
                })
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("`headers` is not a list".into()),
    };
    Ok(Envelope {
        topic: m.get("topic").and_then(Json::as_str).map(str::to_owned),
        partition: int("partition")?,
        offset: int("offset")?,
        timestamp: int("timestamp")?,
        key: get_bytes(&m, "key")?,
        value: get_bytes(&m, "value")?,
        headers,
    })
}

/// Turns `\n`, `\r`, `\t` and `\\` in a config value into the characters.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out.into_bytes()
}

/// The columns of a CSV object: the first record's fields, in order.
pub fn csv_columns(value: &[u8]) -> Result<Vec<String>, String> {
    Ok(csv_object(value)?.keys().cloned().collect())
}

fn csv_object(value: &[u8]) -> Result<Map<String, Json>, String> {
    match serde_json::from_slice(value) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err("format `csv` needs a JSON object value".into()),
        Err(e) => Err(format!("format `csv` needs a JSON object value: {e}")),
    }
}

fn csv_cell(s: &str, out: &mut Vec<u8>) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// The header row, with its newline.
pub fn csv_header(columns: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(c, &mut out);
    }
    out.push(b'\n');
    out
}

/// One row, with its newline: the value's fields in `columns` order
/// (missing and null: empty). A nested value or a field not in `columns`
/// makes the record bad.
pub fn csv_row(value: &[u8], columns: &[String]) -> Result<Vec<u8>, String> {
    let m = csv_object(value)?;
    if let Some(extra) = m.keys().find(|k| !columns.contains(k)) {
        return Err(format!(
            "field `{extra}` is not a column of this object ({})",
            columns.join(", ")
        ));
    }
    let mut out = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match m.get(c) {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) => csv_cell(s, &mut out),
            Some(Json::Bool(b)) => out.extend_from_slice(b.to_string().as_bytes()),
            Some(Json::Number(n)) => out.extend_from_slice(n.to_string().as_bytes()),
            Some(_) => return Err(format!("field `{c}` is not flat (an object or a list)")),
        }
    }
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_text_binary_and_nulls() {
        let e = Envelope {
            topic: Some("t".into()),
            partition: Some(3),
            offset: Some(42),
            timestamp: Some(1_700_000_000_000),
            key: Some(vec![0xff, 0x00]),
            value: Some(b"{\"a\": 1}".to_vec()),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: Some(b"v".to_vec()),
                },
                Header {
                    key: "n".into(),
                    value: None,
                },
            ],
        };
        let line = envelope_line(&e);
        let back = parse_envelope(&line).unwrap();
        assert_eq!(envelope_line(&back), line);
        assert_eq!(back.key, e.key);
        assert_eq!(back.headers[1].value, None);
        assert!(parse_envelope(b"nope").is_err());
        assert!(parse_envelope(b"[1]").is_err());
    }

    #[test]
    fn csv_quotes_and_rejects_nested_values() {
        let cols = csv_columns(br#"{"id":1,"name":"a, b"}"#).unwrap();
        assert_eq!(csv_header(&cols), b"id,name\n");
        assert_eq!(
            csv_row(br#"{"id":2,"name":"say \"hi\""}"#, &cols).unwrap(),
            b"2,\"say \"\"hi\"\"\"\n"
        );
        assert!(csv_row(br#"{"id":{"x":1}}"#, &cols).is_err());
        assert!(csv_row(br#"{"other":1}"#, &cols).is_err());
        assert_eq!(unescape("\\r\\n"), b"\r\n");
    }
}
