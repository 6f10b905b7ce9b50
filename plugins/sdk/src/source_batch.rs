//! Building what a source task's `poll` returns.
//!
//! A batch crosses the boundary in columns (see `source-batch` in
//! `plugins/wit/source.wit` and ADR 0007): [`SourceBatch`] lays records out
//! that way as they are pushed, so the worker takes the whole batch with
//! a handful of copies, whatever the number of records.

use tributary_layout::{ABSENT, NO_TIMESTAMP};

use crate::bindings::source::exports::tributary::connector::source_connector as wit;
use crate::{Header, JsonMap};

/// One record to produce, borrowed by [`SourceBatch::push`], which copies it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceRecord<'a> {
    /// Index returned by [`SourceBatch::add_topic`].
    pub topic: u32,
    /// Index returned by [`SourceBatch::add_partition`].
    pub partition: u32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// Milliseconds since the Unix epoch; `None`: the time of production.
    pub timestamp: Option<i64>,
}

/// What one `poll` returns: records in the order they are to be produced.
#[derive(Debug)]
pub struct SourceBatch {
    raw: wit::SourceBatch,
}

impl Default for SourceBatch {
    fn default() -> Self {
        SourceBatch {
            raw: wit::SourceBatch {
                topics: Vec::new(),
                partitions: Vec::new(),
                topic: Vec::new(),
                partition: Vec::new(),
                timestamp: Vec::new(),
                data: Vec::new(),
                spans: Vec::new(),
                headers: Vec::new(),
                header_records: Vec::new(),
                offsets: Vec::new(),
            },
        }
    }
}

impl SourceBatch {
    pub fn new() -> SourceBatch {
        SourceBatch::default()
    }

    /// Lists a topic records can go to; returns its index for
    /// [`SourceRecord::topic`]. A topic listed again gets its first index.
    pub fn add_topic(&mut self, topic: &str) -> u32 {
        match self.raw.topics.iter().position(|t| t == topic) {
            Some(i) => i as u32,
            None => {
                self.raw.topics.push(topic.to_owned());
                self.raw.topics.len() as u32 - 1
            }
        }
    }

    /// Lists a source partition (a file, a table) records come from;
    /// returns its index for [`SourceRecord::partition`].
    pub fn add_partition(&mut self, partition: JsonMap) -> u32 {
        self.raw.partitions.push(partition);
        self.raw.partitions.len() as u32 - 1
    }

    /// Appends a copy of `record`.
    pub fn push(&mut self, record: SourceRecord<'_>) {
        let raw = &mut self.raw;
        let index = raw.topic.len() as u32;
        raw.topic.push(record.topic);
        raw.partition.push(record.partition);
        raw.timestamp.push(record.timestamp.unwrap_or(NO_TIMESTAMP));
        for bytes in [record.key, record.value] {
            raw.spans.push(raw.data.len() as u32);
            match bytes {
                Some(b) => {
                    raw.spans.push(b.len() as u32);
                    raw.data.extend_from_slice(b);
                }
                None => raw.spans.push(ABSENT),
            }
        }
        for h in record.headers {
            raw.headers.push(h.clone());
            raw.header_records.push(index);
        }
    }

    /// Gives the record pushed last its offset: the position in its source
    /// partition just after it. Required on the last record of each
    /// partition in the batch; optional on the others.
    pub fn set_offset(&mut self, offset: JsonMap) {
        let Some(record) = self.raw.topic.len().checked_sub(1) else {
            panic!("set_offset before any record was pushed");
        };
        let record = record as u32;
        match self.raw.offsets.last_mut() {
            Some(last) if last.record == record => last.offset = offset,
            _ => self.raw.offsets.push(wit::RecordOffset { record, offset }),
        }
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.raw.topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.topic.is_empty()
    }

    pub(crate) fn into_wit(self) -> wit::SourceBatch {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scalar;

    #[test]
    fn pushed_records_are_laid_out_as_the_contract_says() {
        let mut batch = SourceBatch::new();
        let t = batch.add_topic("lines");
        assert_eq!(batch.add_topic("lines"), t, "a topic is listed once");
        let p = batch.add_partition(vec![("file".into(), Scalar::Text("/in".into()))]);
        let header = Header {
            key: "h".into(),
            value: None,
        };
        batch.push(SourceRecord {
            topic: t,
            partition: p,
            value: Some(b"one"),
            ..SourceRecord::default()
        });
        batch.push(SourceRecord {
            topic: t,
            partition: p,
            key: Some(b"k"),
            value: None,
            headers: std::slice::from_ref(&header),
            timestamp: Some(7),
        });
        batch.set_offset(vec![("line".into(), Scalar::Integer(1))]);
        batch.set_offset(vec![("line".into(), Scalar::Integer(2))]);
        assert_eq!(batch.len(), 2);
        let raw = batch.into_wit();
        assert_eq!(raw.topics, ["lines"]);
        assert_eq!((raw.topic, raw.partition), (vec![0, 0], vec![0, 0]));
        assert_eq!(raw.timestamp, [NO_TIMESTAMP, 7]);
        assert_eq!(raw.data, b"onek");
        assert_eq!(raw.spans, [0, ABSENT, 0, 3, 3, 1, 4, ABSENT]);
        assert_eq!(raw.header_records, [1]);
        assert_eq!(
            raw.offsets.len(),
            1,
            "a second offset for a record replaces the first"
        );
        assert_eq!(raw.offsets[0].record, 1);
        assert!(matches!(raw.offsets[0].offset[0].1, Scalar::Integer(2)));
    }
}
