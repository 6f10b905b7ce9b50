//! The contract's types on the host side, free of wasmtime and of rdkafka.
//!
//! `plugin` converts the generated bindings into these; `kafka` and `worker`
//! use only these. That keeps one module per job: nothing here knows how a
//! record got here or where it goes.

use std::collections::BTreeMap;
use std::fmt;

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

/// A Kafka record header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// A record a source task produced, bound for Kafka.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    /// Index into [`SourceBatch::topics`].
    pub topic: u32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp: Option<i64>,
    /// Index into [`SourceBatch::partitions`].
    pub partition: u32,
    /// The partition's offset after this record, if the task said.
    pub offset: Option<JsonMap>,
}

/// What one poll returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceBatch {
    pub topics: Vec<String>,
    pub partitions: Vec<JsonMap>,
    pub records: Vec<SourceRecord>,
}

/// A source partition with its offset.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionOffset {
    pub partition: JsonMap,
    pub offset: JsonMap,
}

/// A record consumed from Kafka, bound for a sink task.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp: Option<i64>,
}

/// What became of one record a sink task was given.
#[derive(Clone, Debug, PartialEq)]
pub enum PutResult {
    Ok,
    Retriable(String),
    BadRecord(String),
}

/// Why a task call failed, as the guest said.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskError {
    Retriable(String),
    Fatal(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Retriable(m) => write!(f, "retriable: {m}"),
            TaskError::Fatal(m) => write!(f, "{m}"),
        }
    }
}

/// Source or sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Sink => "sink",
        })
    }
}

/// The type of a config value (the contract's `config-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    Integer,
    Float,
    Boolean,
    List,
    FileRead,
    FileWrite,
    DirRead,
    DirWrite,
}

impl KeyType {
    /// The name users see in `tributary plugins` and errors.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Integer => "integer",
            KeyType::Float => "float",
            KeyType::Boolean => "boolean",
            KeyType::List => "list",
            KeyType::FileRead => "file-read",
            KeyType::FileWrite => "file-write",
            KeyType::DirRead => "dir-read",
            KeyType::DirWrite => "dir-write",
        }
    }
}

/// One config key: a connector's (from its description) or the worker's.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySpec {
    pub name: String,
    pub ty: KeyType,
    /// `None`: required.
    pub default: Option<String>,
    pub doc: String,
    pub secret: bool,
}

/// What a connector says of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: ConnectorKind,
    pub summary: String,
    pub keys: Vec<KeySpec>,
}

/// A problem `validate` found in one key.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}
