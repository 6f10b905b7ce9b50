//! The records of one `put`, as a sink connector sees them.
//!
//! A batch crosses the boundary in columns (one list per field, all keys
//! and values in one byte list: see `sink-batch` in `plugins/wit/sink.wit`
//! and ADR 0007). [`SinkBatch`] checks that layout once and hands out
//! [`SinkRecord`]s that borrow from it, so reading a record copies nothing.

use tributary_layout::{self as layout, NO_TIMESTAMP};

use crate::bindings::sink::exports::tributary::connector::sink_connector as wit;
use crate::{Header, TaskError};

/// One record consumed from Kafka, borrowed from its [`SinkBatch`].
#[derive(Clone, Copy, Debug)]
pub struct SinkRecord<'a> {
    /// The topic it was consumed from.
    pub topic: &'a str,
    pub partition: i32,
    /// Its offset in its Kafka partition.
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// `None`: a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// Milliseconds since the Unix epoch, if the record has one.
    pub timestamp: Option<i64>,
}

/// The records handed to one `put`, in the order they were consumed.
#[derive(Debug)]
pub struct SinkBatch {
    raw: wit::SinkBatch,
}

impl SinkBatch {
    /// Checks the worker's columns against the layout the contract gives.
    pub(crate) fn new(raw: wit::SinkBatch) -> Result<SinkBatch, TaskError> {
        let columns = layout::SinkColumns {
            topics: raw.topics.len(),
            topic: &raw.topic,
            partition: &raw.partition,
            offset: &raw.offset,
            timestamp: &raw.timestamp,
            payloads: layout::Payloads {
                data: &raw.data,
                spans: &raw.spans,
                headers: raw.headers.len(),
                header_records: &raw.header_records,
            },
        };
        if let Err(what) = layout::check_sink_batch(&columns) {
            return Err(TaskError::Fatal(format!(
                "the worker handed over a malformed batch ({what}): worker and SDK disagree on the contract"
            )));
        }
        Ok(SinkBatch { raw })
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.raw.topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.topic.is_empty()
    }

    /// The topics the records come from, each once.
    pub fn topics(&self) -> &[String] {
        &self.raw.topics
    }

    /// Where in [`SinkBatch::topics`] record `index`'s topic is: for
    /// per-topic state kept beside the batch.
    pub fn topic_index(&self, index: usize) -> usize {
        self.raw.topic[index] as usize
    }

    /// Record `index` (panics past the end, like a slice).
    pub fn get(&self, index: usize) -> SinkRecord<'_> {
        let raw = &self.raw;
        let [key, value] = layout::key_value(&raw.data, &raw.spans, index);
        let headers = &raw.headers[layout::header_range(&raw.header_records, index)];
        let timestamp = raw.timestamp[index];
        SinkRecord {
            topic: &raw.topics[raw.topic[index] as usize],
            partition: raw.partition[index],
            offset: raw.offset[index],
            key,
            value,
            headers,
            timestamp: (timestamp != NO_TIMESTAMP).then_some(timestamp),
        }
    }

    /// The records, in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = SinkRecord<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<'a> IntoIterator for &'a SinkBatch {
    type Item = SinkRecord<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = SinkRecord<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.records())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_layout::ABSENT;

    /// Three records as the contract lays them out: a key and a value; no
    /// key and an empty value with two headers; a tombstone without a
    /// timestamp, on a second topic, with one header.
    fn raw() -> wit::SinkBatch {
        wit::SinkBatch {
            topics: vec!["orders".into(), "users".into()],
            topic: vec![0, 0, 1],
            partition: vec![0, 3, 1],
            offset: vec![41, 7, 9],
            timestamp: vec![1_700_000_000_000, 5, NO_TIMESTAMP],
            data: b"k1v-onek2".to_vec(),
            spans: vec![0, 2, 2, 5, 0, ABSENT, 7, 0, 7, 2, 0, ABSENT],
            headers: vec![
                Header {
                    key: "a".into(),
                    value: Some(b"1".to_vec()),
                },
                Header {
                    key: "b".into(),
                    value: None,
                },
                Header {
                    key: "c".into(),
                    value: Some(Vec::new()),
                },
            ],
            header_records: vec![1, 1, 2],
        }
    }

    #[test]
    fn records_borrow_their_fields_from_the_columns() {
        let batch = SinkBatch::new(raw()).unwrap();
        assert_eq!(batch.len(), 3);
        let r: Vec<SinkRecord<'_>> = batch.records().collect();
        assert_eq!((r[0].topic, r[0].partition, r[0].offset), ("orders", 0, 41));
        assert_eq!(
            (r[0].key, r[0].value),
            (Some(&b"k1"[..]), Some(&b"v-one"[..]))
        );
        assert_eq!(r[0].timestamp, Some(1_700_000_000_000));
        assert!(r[0].headers.is_empty());
        assert_eq!((r[1].key, r[1].value), (None, Some(&b""[..])));
        let names: Vec<&str> = r[1].headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            (r[2].topic, r[2].offset, r[2].timestamp),
            ("users", 9, None)
        );
        assert_eq!((r[2].key, r[2].value), (Some(&b"k2"[..]), None));
        assert_eq!(r[2].headers.len(), 1);
        assert_eq!(r[2].headers[0].value.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn a_layout_that_breaks_the_contract_is_refused_with_what_is_wrong() {
        let fatal = |raw| match SinkBatch::new(raw) {
            Err(TaskError::Fatal(m)) => m,
            other => panic!("expected a fatal error, got {other:?}"),
        };
        let mut past_the_end = raw();
        past_the_end.spans[3] = 8;
        assert!(fatal(past_the_end).contains("record 0's value reaches byte 10 of 9"));
        let mut short_column = raw();
        short_column.offset.pop();
        assert!(fatal(short_column).contains("3 topic entries but 2 offset entries"));
        let mut no_such_topic = raw();
        no_such_topic.topic[1] = 2;
        assert!(
            fatal(no_such_topic).contains("record 1 has topic index 2, but the batch has 2 topics")
        );
        let mut unordered = raw();
        unordered.header_records = vec![2, 1, 1];
        assert!(fatal(unordered).contains("header-records out of order"));
    }
}
