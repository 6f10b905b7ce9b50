//! The contract's types on the host side, free of wasmtime and of rdkafka.
//!
//! `plugin` converts the generated bindings into these; `kafka` and `worker`
//! use only these. That keeps one module per job: nothing here knows how a
//! record got here or where it goes.

use std::fmt;

use tributary_layout::{self as layout, ABSENT, NO_TIMESTAMP};

// Source partitions and offsets: a crate of their own, which the offsets
// fuzz target builds without the worker.
pub use tributary_offsets::{
    json_map_from_value, json_map_to_value, JsonMap, PartitionOffset, Scalar,
};

/// A Kafka record header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// The keys, values and headers of a batch's records, laid out as the
/// contract's columns (ADR 0007): `data` holds keys and values back to
/// back, `spans` four numbers per record (start and length of its key, then
/// of its value; length `u32::MAX`: none), `headers` every record's headers
/// in record order with their record's index in `header_records`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Payloads {
    pub data: Vec<u8>,
    pub spans: Vec<u32>,
    pub headers: Vec<Header>,
    pub header_records: Vec<u32>,
}

impl Payloads {
    /// Appends the next record's key and value.
    fn push(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        for bytes in [key, value] {
            self.spans.push(self.data.len() as u32);
            match bytes {
                Some(b) => {
                    self.spans.push(b.len() as u32);
                    self.data.extend_from_slice(b);
                }
                None => self.spans.push(ABSENT),
            }
        }
    }

    fn push_header(&mut self, record: usize, key: &str, value: Option<&[u8]>) {
        self.headers.push(Header {
            key: key.to_owned(),
            value: value.map(<[u8]>::to_vec),
        });
        self.header_records.push(record as u32);
    }

    fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.headers.clear();
        self.header_records.clear();
    }

    /// Record `index`'s key and value.
    fn key_value(&self, index: usize) -> [Option<&[u8]>; 2] {
        layout::key_value(&self.data, &self.spans, index)
    }

    /// Record `index`'s headers.
    fn headers_of(&self, index: usize) -> &[Header] {
        &self.headers[layout::header_range(&self.header_records, index)]
    }

    /// These columns as the layout check sees them.
    fn columns(&self) -> layout::Payloads<'_> {
        layout::Payloads {
            data: &self.data,
            spans: &self.spans,
            headers: self.headers.len(),
            header_records: &self.header_records,
        }
    }
}

/// Records consumed from Kafka, bound for one `put`, in the columns the
/// contract hands them over in (`sink-batch` in `plugins/wit/sink.wit`):
/// per record a topic index, partition, offset and timestamp, and its key,
/// value and headers in `payloads`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkBatch {
    pub topics: Vec<String>,
    pub topic: Vec<u32>,
    pub partition: Vec<i32>,
    pub offset: Vec<i64>,
    pub timestamp: Vec<i64>,
    pub payloads: Payloads,
}

/// One record of a [`SinkBatch`], borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    pub timestamp: Option<i64>,
}

impl SinkBatch {
    /// Appends a copy of `record`, with its headers.
    pub fn push(&mut self, record: SinkRecord<'_>) {
        // Records come in runs of one topic: try the last one first.
        let t = match self.topic.last() {
            Some(&t) if self.topics[t as usize] == record.topic => t,
            _ => match self.topics.iter().position(|t| t == record.topic) {
                Some(t) => t as u32,
                None => {
                    self.topics.push(record.topic.to_owned());
                    self.topics.len() as u32 - 1
                }
            },
        };
        self.topic.push(t);
        self.partition.push(record.partition);
        self.offset.push(record.offset);
        self.timestamp
            .push(record.timestamp.unwrap_or(NO_TIMESTAMP));
        self.payloads.push(record.key, record.value);
        for h in record.headers {
            self.push_header(&h.key, h.value.as_deref());
        }
    }

    /// Empties the batch, keeping its allocations for the next one.
    pub fn clear(&mut self) {
        self.topics.clear();
        self.topic.clear();
        self.partition.clear();
        self.offset.clear();
        self.timestamp.clear();
        self.payloads.clear();
    }

    /// Adds a header to the record pushed last.
    pub fn push_header(&mut self, key: &str, value: Option<&[u8]>) {
        let record = self
            .len()
            .checked_sub(1)
            .expect("a record to add a header to");
        self.payloads.push_header(record, key, value);
    }

    pub fn len(&self) -> usize {
        self.topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topic.is_empty()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.payloads.data.len()
    }

    /// Record `index` (panics past the end, like a slice).
    pub fn get(&self, index: usize) -> SinkRecord<'_> {
        let [key, value] = self.payloads.key_value(index);
        let timestamp = self.timestamp[index];
        SinkRecord {
            topic: &self.topics[self.topic[index] as usize],
            partition: self.partition[index],
            offset: self.offset[index],
            key,
            value,
            headers: self.payloads.headers_of(index),
            timestamp: (timestamp != NO_TIMESTAMP).then_some(timestamp),
        }
    }

    /// The records, in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = SinkRecord<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// What one `poll` returned, in the contract's columns (`source-batch` in
/// `plugins/wit/source.wit`): per record a topic index, a source partition
/// index and a timestamp, its key, value and headers in `payloads`, and the
/// offsets the task gave, by record index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceBatch {
    pub topics: Vec<String>,
    pub partitions: Vec<JsonMap>,
    pub topic: Vec<u32>,
    pub partition: Vec<u32>,
    pub timestamp: Vec<i64>,
    pub payloads: Payloads,
    /// `(record index, offset)`, in record order.
    pub offsets: Vec<(u32, JsonMap)>,
}

/// One record of a [`SourceBatch`], borrowed from it, bound for Kafka.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceRecord<'a> {
    pub topic: &'a str,
    /// Index into [`SourceBatch::partitions`].
    pub partition: u32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// `None`: the time of production.
    pub timestamp: Option<i64>,
}

impl SourceBatch {
    pub fn len(&self) -> usize {
        self.topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topic.is_empty()
    }

    /// What is wrong with the batch a task returned, if anything, naming
    /// the record: the columns must agree, every index and span point at
    /// something (the contract's layout rules, `tributary_layout`), and
    /// every topic have a name.
    pub fn check(&self) -> Result<(), String> {
        layout::check_source_batch(layout::SourceColumns {
            topics: self.topics.len(),
            partitions: self.partitions.len(),
            topic: &self.topic,
            partition: &self.partition,
            timestamp: &self.timestamp,
            payloads: self.payloads.columns(),
            offset_records: self.offsets.iter().map(|(record, _)| *record),
        })
        .map_err(|e| e.to_string())?;
        match self.topics.iter().position(String::is_empty) {
            Some(i) => Err(format!("topic {i} of the batch is an empty name")),
            None => Ok(()),
        }
    }

    /// Record `index` (panics past the end, like a slice).
    pub fn get(&self, index: usize) -> SourceRecord<'_> {
        let [key, value] = self.payloads.key_value(index);
        let timestamp = self.timestamp[index];
        SourceRecord {
            topic: &self.topics[self.topic[index] as usize],
            partition: self.partition[index],
            key,
            value,
            headers: self.payloads.headers_of(index),
            timestamp: (timestamp != NO_TIMESTAMP).then_some(timestamp),
        }
    }

    /// The records, in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = SourceRecord<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
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

impl KeySpec {
    /// The default as listings show it: `required` when there is none,
    /// a secret's value never (only whether it is empty).
    pub fn shown_default(&self) -> String {
        match &self.default {
            None => "required".to_owned(),
            Some(v) if self.secret && v.is_empty() => "default: (empty)".to_owned(),
            Some(_) if self.secret => "default: (secret)".to_owned(),
            Some(v) => format!("default: {v:?}"),
        }
    }
}

/// What a connector says of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: ConnectorKind,
    pub summary: String,
    pub keys: Vec<KeySpec>,
    /// Sinks: `put` looks at headers (`reads-headers` in the contract).
    pub reads_headers: bool,
}

/// A problem `validate` found in one key.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_batch_gives_back_each_record_as_pushed() {
        let (k, v1, empty): (&[u8], &[u8], &[u8]) = (b"k", b"v1", b"");
        let record = |topic, partition, offset, key, value, timestamp| SinkRecord {
            topic,
            partition,
            offset,
            key,
            value,
            headers: &[],
            timestamp,
        };
        let mut batch = SinkBatch::default();
        batch.push(record("a", 0, 5, Some(k), Some(v1), Some(10)));
        batch.push(record("b", 2, 9, None, Some(empty), None));
        batch.push_header("h1", Some(b"x"));
        batch.push_header("h2", None);
        batch.push(record("a", 1, 7, Some(empty), None, Some(-1)));
        batch.push_header("h3", Some(empty));
        batch.push(record("b", 2, 10, None, None, None));
        assert_eq!(batch.topics, ["a", "b"]);
        assert_eq!(batch.topic, [0, 1, 0, 1]);
        assert_eq!(batch.payloads.data, b"kv1");
        assert_eq!(
            batch.payloads.spans,
            [0, 1, 1, 2, 3, ABSENT, 3, 0, 3, 0, 3, ABSENT, 3, ABSENT, 3, ABSENT]
        );
        assert_eq!(batch.payloads.header_records, [1, 1, 2]);
        let columns = layout::SinkColumns {
            topics: batch.topics.len(),
            topic: &batch.topic,
            partition: &batch.partition,
            offset: &batch.offset,
            timestamp: &batch.timestamp,
            payloads: batch.payloads.columns(),
        };
        assert_eq!(
            layout::check_sink_batch(&columns),
            Ok(()),
            "the SDK's check accepts what the worker builds"
        );
        let r: Vec<SinkRecord<'_>> = batch.records().collect();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[0],
            SinkRecord {
                topic: "a",
                partition: 0,
                offset: 5,
                key: Some(k),
                value: Some(v1),
                headers: &[],
                timestamp: Some(10),
            }
        );
        assert_eq!(
            (r[1].topic, r[1].key, r[1].value, r[1].timestamp),
            ("b", None, Some(&b""[..]), None)
        );
        let names: Vec<&str> = r[1].headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(names, ["h1", "h2"]);
        assert_eq!(r[1].headers[1].value, None);
        assert_eq!(
            (r[2].key, r[2].value, r[2].timestamp),
            (Some(&b""[..]), None, Some(-1))
        );
        assert_eq!(r[2].headers.len(), 1);
        assert!(r[3].headers.is_empty());
        let mut copy = SinkBatch::default();
        r.iter().for_each(|r| copy.push(*r));
        assert_eq!(copy, batch);
    }

    /// A source batch as a guest could return it: two records on topic 0,
    /// partition 0, keys absent, values "ab" and "c", the second with an
    /// offset.
    fn guest_batch() -> SourceBatch {
        SourceBatch {
            topics: vec!["t".into()],
            partitions: vec![JsonMap::new()],
            topic: vec![0, 0],
            partition: vec![0, 0],
            timestamp: vec![NO_TIMESTAMP; 2],
            payloads: Payloads {
                data: b"abc".to_vec(),
                spans: vec![0, ABSENT, 0, 2, 2, ABSENT, 2, 1],
                ..Payloads::default()
            },
            offsets: vec![(1, JsonMap::new())],
        }
    }

    #[test]
    fn a_source_batch_that_breaks_the_layout_is_refused_naming_the_record() {
        assert_eq!(guest_batch().check(), Ok(()));
        assert_eq!(guest_batch().get(1).value, Some(&b"c"[..]));
        let broken = |f: fn(&mut SourceBatch)| {
            let mut b = guest_batch();
            f(&mut b);
            b.check().unwrap_err()
        };
        assert_eq!(
            broken(|b| b.payloads.spans[7] = 2),
            "record 1's value reaches byte 4 of 3 in `data`"
        );
        assert_eq!(
            broken(|b| b.topic[1] = 1),
            "record 1 has topic index 1, but the batch has 1 topics"
        );
        assert_eq!(
            broken(|b| b.topics.push(String::new())),
            "topic 1 of the batch is an empty name"
        );
        assert_eq!(
            broken(|b| b.partition[0] = 3),
            "record 0 has partition index 3, but the batch has 1 partitions"
        );
        assert_eq!(
            broken(|b| b.timestamp.push(0)),
            "2 topic entries but 3 timestamp entries"
        );
        assert!(broken(|b| b.offsets.push((1, JsonMap::new()))).starts_with("offsets out of"));
        assert!(broken(|b| b.payloads.spans.truncate(4)).contains("spans"));
        assert!(broken(|b| {
            b.payloads.headers.push(Header {
                key: "h".into(),
                value: None,
            });
            b.payloads.header_records.push(2);
        })
        .starts_with("header-records"));
    }
}
