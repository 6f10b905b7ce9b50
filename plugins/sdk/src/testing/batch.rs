//! Sink batches from records, and source batches back to records.

use crate::bindings::sink::exports::tributary::connector::sink_connector as wit;
use crate::{Header, JsonMap, SinkBatch, SourceBatch};
use tributary_layout as layout;

/// A record as a test writes it, for [`sink_batch`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
}

impl Record {
    /// A record of `topic`, partition 0, at `offset`, with neither key
    /// nor value.
    pub fn new(topic: &str, offset: i64) -> Record {
        Record {
            topic: topic.to_owned(),
            offset,
            ..Record::default()
        }
    }

    pub fn key(mut self, key: impl AsRef<[u8]>) -> Record {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    pub fn value(mut self, value: impl AsRef<[u8]>) -> Record {
        self.value = Some(value.as_ref().to_vec());
        self
    }

    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = partition;
        self
    }

    pub fn timestamp(mut self, millis: i64) -> Record {
        self.timestamp = Some(millis);
        self
    }

    pub fn header(mut self, key: &str, value: Option<&[u8]>) -> Record {
        self.headers.push(Header {
            key: key.to_owned(),
            value: value.map(<[u8]>::to_vec),
        });
        self
    }
}

/// Values of a topic as records at offsets 0, 1, 2, …: the batch a sink
/// gets for lines produced to `topic`.
pub fn values<'a>(topic: &str, values: impl IntoIterator<Item = &'a str>) -> Vec<Record> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(topic, i as i64).value(v))
        .collect()
}

/// The batch the worker would hand `put` for `records`, laid out in the
/// contract's columns.
pub fn sink_batch(records: &[Record]) -> SinkBatch {
    use layout::ABSENT;
    let mut raw = wit::SinkBatch {
        topics: Vec::new(),
        topic: Vec::new(),
        partition: Vec::new(),
        offset: Vec::new(),
        timestamp: Vec::new(),
        data: Vec::new(),
        spans: Vec::new(),
        headers: Vec::new(),
        header_records: Vec::new(),
    };
    for (i, r) in records.iter().enumerate() {
        let topic = match raw.topics.iter().position(|t| *t == r.topic) {
            Some(t) => t,
            None => {
                raw.topics.push(r.topic.clone());
                raw.topics.len() - 1
            }
        };
        raw.topic.push(topic as u32);
        raw.partition.push(r.partition);
        raw.offset.push(r.offset);
        raw.timestamp
            .push(r.timestamp.unwrap_or(layout::NO_TIMESTAMP));
        for bytes in [&r.key, &r.value] {
            raw.spans.push(raw.data.len() as u32);
            match bytes {
                Some(b) => {
                    raw.spans.push(b.len() as u32);
                    raw.data.extend_from_slice(b);
                }
                None => raw.spans.push(ABSENT),
            }
        }
        for h in &r.headers {
            raw.headers.push(h.clone());
            raw.header_records.push(i as u32);
        }
    }
    SinkBatch::new(raw).expect("a batch built from records keeps the contract's layout")
}

/// One record a source's `poll` returned, read back from its columns.
#[derive(Clone, Debug)]
pub struct Polled {
    pub topic: String,
    /// The source partition it comes from.
    pub partition: JsonMap,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp: Option<i64>,
    /// The offset it carries, if any.
    pub offset: Option<JsonMap>,
}

impl Polled {
    /// The value as UTF-8 text (lossy), or `""` for none.
    pub fn value_text(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
}

/// The records of a source batch, in order. Panics, naming the rule, when
/// the batch breaks a layout rule the worker checks (it would fail the task
/// with that message): what a connector returns is read as the worker
/// reads it.
pub fn polled(batch: SourceBatch) -> Vec<Polled> {
    let raw = batch.into_wit();
    let checked = layout::check_source_batch(layout::SourceColumns {
        topics: raw.topics.len(),
        partitions: raw.partitions.len(),
        topic: &raw.topic,
        partition: &raw.partition,
        timestamp: &raw.timestamp,
        payloads: layout::Payloads {
            data: &raw.data,
            spans: &raw.spans,
            headers: raw.headers.len(),
            header_records: &raw.header_records,
        },
        offset_records: raw.offsets.iter().map(|o| o.record),
    });
    if let Err(e) = checked {
        panic!("the worker would refuse this source batch: {e}");
    }
    if let Some(i) = raw.topics.iter().position(String::is_empty) {
        panic!("the worker would refuse this source batch: topic {i} is an empty name");
    }
    (0..raw.topic.len())
        .map(|i| {
            let [key, value] = layout::key_value(&raw.data, &raw.spans, i);
            Polled {
                topic: raw.topics[raw.topic[i] as usize].clone(),
                partition: raw.partitions[raw.partition[i] as usize].clone(),
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                headers: raw.headers[layout::header_range(&raw.header_records, i)].to_vec(),
                timestamp: Some(raw.timestamp[i]).filter(|t| *t != layout::NO_TIMESTAMP),
                offset: raw
                    .offsets
                    .iter()
                    .find(|o| o.record as usize == i)
                    .map(|o| o.offset.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scalar, SourceRecord};

    #[test]
    fn records_go_into_a_batch_and_come_out_the_same() {
        let batch = sink_batch(&[
            Record::new("a", 5).key("k").value("v").timestamp(9),
            Record::new("b", 6).partition(2).header("h", Some(b"x")),
        ]);
        let r: Vec<_> = batch.records().collect();
        assert_eq!(
            (r[0].topic, r[0].offset, r[0].key, r[0].value),
            ("a", 5, Some(&b"k"[..]), Some(&b"v"[..]))
        );
        assert_eq!(r[0].timestamp, Some(9));
        assert_eq!((r[1].topic, r[1].partition, r[1].value), ("b", 2, None));
        assert_eq!(r[1].headers[0].key, "h");
    }

    #[test]
    fn a_source_batch_reads_back_as_its_records() {
        let mut batch = SourceBatch::new();
        let t = batch.add_topic("lines");
        let p = batch.add_partition(vec![("file".into(), Scalar::Text("in".into()))]);
        for v in ["one", "two"] {
            batch.push(SourceRecord {
                topic: t,
                partition: p,
                value: Some(v.as_bytes()),
                ..SourceRecord::default()
            });
        }
        batch.set_offset(vec![("line".into(), Scalar::Integer(2))]);
        let records = polled(batch);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].value_text(), "two");
        assert!(records[0].offset.is_none());
        assert!(
            matches!(records[1].offset.as_deref(), Some([(k, Scalar::Integer(2))]) if k == "line")
        );
    }
}
