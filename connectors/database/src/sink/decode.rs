//! Decoding records into rows: plain JSON objects or JsonConverter
//! envelopes, key columns from the record key or from value fields,
//! tombstones, and Kafka Connect's logical types.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Value as Json};
use tributary_sdk::sql::{SqlCapability, Value};
use tributary_sdk::SinkRecord;

use super::settings::PkMode;
use super::{DatabaseSinkTask, Op, PRIMITIVE_KEY_COLUMN};
use crate::dialect::{ColumnInfo, Kind};
use crate::json;

/// Kafka Connect's logical types, by schema name.
pub(super) const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub(super) const DATE: &str = "org.apache.kafka.connect.data.Date";
pub(super) const TIME: &str = "org.apache.kafka.connect.data.Time";
pub(super) const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

pub(super) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A record, decoded: its fields in column order and which of them form the
/// key, with the JsonConverter schemas it came with (for auto-create).
pub(super) struct Decoded {
    pub(super) op: Op,
    pub(super) fields: Vec<(String, Json)>,
    /// The names of the key fields (all among `fields`).
    pub(super) key: Vec<String>,
    pub(super) key_schema: Option<Json>,
    /// The key was a primitive (one column, `key_schema` is its schema).
    pub(super) primitive_key: bool,
    pub(super) value_schema: Option<Json>,
}

impl Decoded {
    /// The JsonConverter schema of field `name`, if the record had one.
    pub(super) fn schema_of(&self, name: &str) -> Option<&Json> {
        if self.key.iter().any(|k| k == name) {
            if self.primitive_key {
                return self.key_schema.as_ref();
            }
            if let Some(s) = self.key_schema.as_ref().and_then(|s| field_schema(s, name)) {
                return Some(s);
            }
        }
        self.value_schema
            .as_ref()
            .and_then(|s| field_schema(s, name))
    }
}

impl<D: SqlCapability> DatabaseSinkTask<D> {
    /// The row a record asks for; `None` for a tombstone to skip; `Err` with
    /// the reason for a bad record.
    pub(super) fn decode(&self, record: &SinkRecord) -> Result<Option<Decoded>, String> {
        let not_object = |v: &Json| format!("the value is {}, not a JSON object", json_kind(v));
        let (mut value, value_schema) = match &record.value {
            None => return self.decode_tombstone(record),
            Some(bytes) => match parse_document(bytes, "value")? {
                Document::Object(fields) if is_envelope(&fields) => {
                    let (payload, schema) = envelope_parts(fields);
                    match payload {
                        Json::Null => return self.decode_tombstone(record),
                        Json::Object(mut m) => {
                            apply_logical_types(&mut m, &schema);
                            (m.into_iter().collect::<Vec<_>>(), Some(schema))
                        }
                        other => return Err(not_object(&other)),
                    }
                }
                Document::Object(fields) => (fields, None),
                Document::Other(Json::Null) => return self.decode_tombstone(record),
                Document::Other(other) => return Err(not_object(&other)),
            },
        };
        let op = self.settings.write_op();
        let mut decoded = Decoded {
            op,
            fields: Vec::new(),
            key: Vec::new(),
            key_schema: None,
            primitive_key: false,
            value_schema,
        };
        match self.settings.pk_mode {
            PkMode::None => decoded.fields = value,
            PkMode::RecordValue => {
                decoded.key = self.value_key(&value)?;
                decoded.fields = value;
            }
            PkMode::RecordKey => {
                let (key_fields, key_schema, primitive) = self.record_key(record)?;
                decoded.key = key_fields.iter().map(|(n, _)| n.clone()).collect();
                value.retain(|(name, _)| !key_fields.iter().any(|(k, _)| k == name));
                decoded.fields = key_fields;
                decoded.fields.extend(value);
                decoded.key_schema = key_schema;
                decoded.primitive_key = primitive;
            }
        }
        Ok(Some(decoded))
    }

    /// A record with a null value: a delete by key, or skipped.
    pub(super) fn decode_tombstone(&self, record: &SinkRecord) -> Result<Option<Decoded>, String> {
        if !self.settings.delete_enabled {
            return Ok(None);
        }
        let (fields, key_schema, primitive) = self.record_key(record)?;
        Ok(Some(Decoded {
            op: Op::Delete,
            key: fields.iter().map(|(n, _)| n.clone()).collect(),
            fields,
            key_schema,
            primitive_key: primitive,
            value_schema: None,
        }))
    }

    /// The key columns of `pk.mode=record_value`: `pk.fields`, or every field.
    pub(super) fn value_key(&self, value: &[(String, Json)]) -> Result<Vec<String>, String> {
        if self.settings.pk_fields.is_empty() {
            return Ok(value.iter().map(|(n, _)| n.clone()).collect());
        }
        for f in &self.settings.pk_fields {
            match value.iter().find(|(n, _)| n == f).map(|(_, v)| v) {
                None => return Err(format!("the value has no field `{f}` (named in pk.fields)")),
                Some(Json::Null) => return Err(format!("key field `{f}` of the value is null")),
                Some(_) => {}
            }
        }
        Ok(self.settings.pk_fields.clone())
    }

    /// The key columns of `pk.mode=record_key`, with the key's schema and
    /// whether the key was a primitive.
    #[allow(clippy::type_complexity)]
    pub(super) fn record_key(
        &self,
        record: &SinkRecord,
    ) -> Result<(Vec<(String, Json)>, Option<Json>, bool), String> {
        let no_key = || "the record has no key (pk.mode=record_key needs one)".to_string();
        let bytes = record.key.as_ref().ok_or_else(no_key)?;
        let (payload, schema) = unwrap_envelope(parse(bytes, "key")?);
        let pk = &self.settings.pk_fields;
        match payload {
            Json::Null => Err(no_key()),
            Json::Object(mut map) => {
                if let Some(s) = &schema {
                    apply_logical_types(&mut map, s);
                }
                let fields: Vec<(String, Json)> = if pk.is_empty() {
                    map.into_iter().collect()
                } else {
                    let mut fields = Vec::with_capacity(pk.len());
                    for f in pk {
                        let v = map.remove(f).ok_or_else(|| {
                            format!("the key has no field `{f}` (named in pk.fields)")
                        })?;
                        fields.push((f.clone(), v));
                    }
                    fields
                };
                if fields.is_empty() {
                    return Err("the key is an empty JSON object".into());
                }
                if let Some((f, _)) = fields.iter().find(|(_, v)| v.is_null()) {
                    return Err(format!("key field `{f}` is null"));
                }
                Ok((fields, schema, false))
            }
            primitive => {
                if pk.len() > 1 {
                    return Err(format!(
                        "the key is a single {}, but pk.fields names {} columns",
                        json_kind(&primitive),
                        pk.len()
                    ));
                }
                let name = pk
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PRIMITIVE_KEY_COLUMN.into());
                let v = match &schema {
                    Some(s) => logical_value(primitive, s),
                    None => primitive,
                };
                Ok((vec![(name, v)], schema, true))
            }
        }
    }
}

/// Parses a key or value as JSON.
pub(super) fn parse(bytes: &[u8], what: &str) -> Result<Json, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
}

/// A value as the sink reads it: an object's fields in a list, in their
/// order (cheaper than a map for the few fields of a row); anything else
/// as it is.
pub(super) enum Document {
    Object(Vec<(String, Json)>),
    Other(Json),
}

/// The fields of a JSON object, in order; a repeated name keeps the place
/// of its first and the value of its last (as a map would).
pub(super) struct Fields(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields: Vec<(String, Json)> = Vec::with_capacity(8);
                while let Some(name) = map.next_key::<String>()? {
                    let value: Json = map.next_value()?;
                    fields.push((name, value));
                }
                Ok(Fields(without_repeats(fields)))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// `fields` with each repeated name once: in the place of its first, with
/// the value of its last.
pub(super) fn without_repeats(fields: Vec<(String, Json)>) -> Vec<(String, Json)> {
    let repeats = if fields.len() <= 16 {
        (1..fields.len()).any(|i| fields[..i].iter().any(|(n, _)| *n == fields[i].0))
    } else {
        let mut seen = HashSet::with_capacity(fields.len());
        !fields.iter().all(|(n, _)| seen.insert(n.as_str()))
    };
    if !repeats {
        return fields;
    }
    let mut map = Map::with_capacity(fields.len());
    for (n, v) in fields {
        map.insert(n, v);
    }
    map.into_iter().collect()
}

/// Parses a value: a JSON object into its fields, anything else as JSON.
pub(super) fn parse_document(bytes: &[u8], what: &str) -> Result<Document, String> {
    let object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    let not_json = |e: serde_json::Error| format!("the {what} is not JSON: {e}");
    if object {
        serde_json::from_slice::<Fields>(bytes)
            .map(|f| Document::Object(f.0))
            .map_err(not_json)
    } else {
        serde_json::from_slice(bytes)
            .map(Document::Other)
            .map_err(not_json)
    }
}

/// Whether the fields are a JsonConverter envelope (exactly `schema`, an
/// object with a `type`, and `payload`).
pub(super) fn is_envelope(fields: &[(String, Json)]) -> bool {
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    fields.len() == 2
        && get("payload").is_some()
        && get("schema")
            .and_then(Json::as_object)
            .is_some_and(|s| s.contains_key("type"))
}

/// The payload and schema of an envelope's fields.
pub(super) fn envelope_parts(fields: Vec<(String, Json)>) -> (Json, Json) {
    let (mut payload, mut schema) = (Json::Null, Json::Null);
    for (n, v) in fields {
        match n.as_str() {
            "payload" => payload = v,
            _ => schema = v,
        }
    }
    (payload, schema)
}

/// The payload and schema of a JsonConverter envelope (an object of exactly
/// `schema`, an object with a `type`, and `payload`); anything else as it is.
pub(super) fn unwrap_envelope(v: Json) -> (Json, Option<Json>) {
    let is_envelope = match &v {
        Json::Object(m) => {
            m.len() == 2
                && m.contains_key("payload")
                && m.get("schema")
                    .and_then(Json::as_object)
                    .is_some_and(|s| s.contains_key("type"))
        }
        _ => false,
    };
    match v {
        Json::Object(mut m) if is_envelope => {
            let schema = m.remove("schema");
            (m.remove("payload").unwrap_or(Json::Null), schema)
        }
        other => (other, None),
    }
}

/// The schema of field `name` of a struct schema.
pub(super) fn field_schema<'a>(schema: &'a Json, name: &str) -> Option<&'a Json> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Json::as_str) == Some(name))
}

/// Rewrites the fields of `value` that have a Kafka Connect logical type in
/// `schema` into the text forms the columns take.
pub(super) fn apply_logical_types(value: &mut Map<String, Json>, schema: &Json) {
    let Some(fields) = schema.get("fields").and_then(Json::as_array) else {
        return;
    };
    for f in fields {
        let Some(name) = f.get("field").and_then(Json::as_str) else {
            continue;
        };
        if let Some(v) = value.get_mut(name) {
            *v = logical_value(v.take(), f);
        }
    }
}

/// A value of a logical type as text: a Decimal's base64 unscaled integer
/// as a decimal number, Date (days), Time (milliseconds of the day) and
/// Timestamp (epoch milliseconds) numbers as ISO 8601. Anything else, and
/// anything that does not decode, is returned as it is.
pub(super) fn logical_value(v: Json, schema: &Json) -> Json {
    let kind = match schema.get("name").and_then(Json::as_str) {
        Some(DECIMAL) => {
            return match &v {
                Json::String(s) => decimal_from_base64(s, scale_of(schema))
                    .map(Json::String)
                    .unwrap_or(v),
                _ => v,
            }
        }
        Some(DATE) => Kind::Date,
        Some(TIME) => Kind::Time,
        Some(TIMESTAMP) => Kind::Timestamp,
        _ => return v,
    };
    if !v.is_number() {
        return v;
    }
    let column = ColumnInfo {
        name: String::new(),
        type_name: String::new(),
        kind,
    };
    match json::from_json(&v, &column) {
        Ok(Value::Date(s) | Value::Time(s) | Value::Timestamp(s)) => Json::String(s),
        _ => v,
    }
}

/// The `scale` parameter of a Decimal schema (Kafka Connect writes it as a
/// string).
pub(super) fn scale_of(schema: &Json) -> u32 {
    match schema.get("parameters").and_then(|p| p.get("scale")) {
        Some(Json::String(s)) => s.trim().parse().unwrap_or(0),
        Some(Json::Number(n)) => n.as_u64().unwrap_or(0) as u32,
        _ => 0,
    }
}

/// A Kafka Connect Decimal (big-endian two's complement unscaled integer,
/// base64) as decimal text; `None` if it is not base64 or over 16 bytes.
pub(super) fn decimal_from_base64(s: &str, scale: u32) -> Option<String> {
    let bytes = B64.decode(s.trim()).ok()?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(&bytes);
    let n = i128::from_be_bytes(buf);
    let digits = n.unsigned_abs().to_string();
    let scale = scale as usize;
    let text = if scale == 0 {
        digits
    } else {
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{int}.{frac}")
    };
    Some(if n < 0 { format!("-{text}") } else { text })
}

/// What kind of JSON value `v` is, for messages.
pub(super) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_decode_from_kafka_connect_bytes() {
        // 12345 = 0x3039, scale 2.
        assert_eq!(decimal_from_base64("MDk=", 2).as_deref(), Some("123.45"));
        // -1 = 0xff, scale 3.
        assert_eq!(decimal_from_base64("/w==", 3).as_deref(), Some("-0.001"));
        assert_eq!(decimal_from_base64("MDk=", 0).as_deref(), Some("12345"));
        assert_eq!(decimal_from_base64("not base64!", 0), None);
    }

    #[test]
    fn objects_keep_their_field_order_and_the_last_of_a_repeated_name() {
        let names = |bytes: &[u8]| match parse_document(bytes, "value").unwrap() {
            Document::Object(f) => f
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>(),
            Document::Other(v) => vec![format!("other {v}")],
        };
        assert_eq!(names(br#" {"b":1,"a":2,"c":3}"#), ["b=1", "a=2", "c=3"]);
        assert_eq!(names(br#"{"b":1,"a":2,"b":3}"#), ["b=3", "a=2"]);
        assert_eq!(names(b"[1]"), ["other [1]"]);
        assert_eq!(names(b"null"), ["other null"]);
        let wide: Vec<String> = (0..20).map(|i| format!("\"f{}\":{i}", i % 18)).collect();
        let wide = names(format!("{{{}}}", wide.join(",")).as_bytes());
        assert_eq!(wide.len(), 18);
        assert_eq!(wide[1], "f1=19");
        assert!(parse_document(br#"{"a":1"#, "value")
            .err()
            .unwrap()
            .starts_with("the value is not JSON"));
    }

    #[test]
    fn envelopes_are_recognised_by_their_two_keys() {
        let env: Json =
            serde_json::from_str(r#"{"schema":{"type":"struct","fields":[]},"payload":{"id":1}}"#)
                .unwrap();
        let (payload, schema) = unwrap_envelope(env);
        assert_eq!(payload, serde_json::json!({"id": 1}));
        assert!(schema.is_some());
        let plain = serde_json::json!({"schema": "public", "payload": 3});
        let (same, none) = unwrap_envelope(plain.clone());
        assert_eq!(same, plain);
        assert!(none.is_none());
    }
}
