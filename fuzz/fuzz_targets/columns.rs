//! Arbitrary columns through the layout check (`tributary-layout`), as a
//! broken or hostile peer could send them.
//!
//! Whenever a check accepts a batch, every record is read the way the
//! worker (`contract::SinkBatch::get`, `SourceBatch::get`) and the SDK
//! (`SinkBatch::get`) read it, through the same accessors: that must stay
//! in bounds (a panic is a finding) and give back exactly what the spans
//! and `header-records` say. Whenever a check refuses a batch, a rule
//! written out plainly below must indeed be broken: the check is not
//! stricter than the contract.

#![no_main]

use std::hint::black_box;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tributary_layout::{
    check_sink_batch, check_source_batch, header_range, key_value, Payloads, SinkColumns,
    SourceColumns, ABSENT,
};

/// A batch's raw columns, as they cross the boundary.
#[derive(Debug, Default)]
struct Columns {
    /// Entries of `topics` and of `partitions`.
    topics: usize,
    partitions: usize,
    topic: Vec<u32>,
    partition: Vec<u32>,
    offset: Vec<i64>,
    timestamp: Vec<i64>,
    data: Vec<u8>,
    spans: Vec<u32>,
    /// Entries of `headers`.
    headers: usize,
    header_records: Vec<u32>,
    /// Source batches: the record index of each `offsets` entry.
    offset_records: Vec<u32>,
}

/// What the fuzzer chooses: records laid out as a correct peer would lay
/// them out, then edits that break the layout anywhere, so that both
/// accepted batches with many records and every near miss come up often
/// (raw columns of arbitrary numbers almost never agree with each other).
#[derive(Arbitrary, Debug)]
struct Input {
    topics: u8,
    partitions: u8,
    data: Vec<u8>,
    records: Vec<Record>,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
struct Record {
    topic: u8,
    partition: u8,
    timestamp: i64,
    /// Start and length, fitted into `data`; `None`: absent.
    key: Option<(u16, u16)>,
    value: Option<(u16, u16)>,
    headers: u8,
    offset: bool,
}

#[derive(Arbitrary, Debug)]
enum Column {
    Topic,
    Partition,
    Offset,
    Timestamp,
    Spans,
    HeaderRecords,
    OffsetRecords,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Sets the entry at `at` (modulo the column's length) to a value; the
    /// values of `offset` and `timestamp` do not matter, only their length.
    Set(Column, u16, Value),
    Push(Column, Value),
    Pop(Column),
    Topics(u8),
    Partitions(u8),
    Headers(u8),
    TruncateData(u16),
}

/// A number to put in a column: any, or one near a boundary, which the
/// fuzzer would rarely hit by chance.
#[derive(Arbitrary, Debug)]
enum Value {
    Any(u32),
    /// `u32::MAX - n`: where a start plus a length wraps in a 32-bit
    /// `usize` (0 gives `ABSENT`).
    BelowMax(u8),
    /// The length of `data`, plus `n`.
    AroundData(i8),
    /// The record count, plus `n`.
    AroundRecords(i8),
}

impl Value {
    fn resolve(&self, c: &Columns) -> u32 {
        let around = |len: usize, n: i8| (len as u32).wrapping_add_signed(i32::from(n));
        match *self {
            Value::Any(v) => v,
            Value::BelowMax(n) => u32::MAX - u32::from(n),
            Value::AroundData(n) => around(c.data.len(), n),
            Value::AroundRecords(n) => around(c.topic.len(), n),
        }
    }
}

impl Columns {
    fn column(&mut self, column: &Column) -> Option<&mut Vec<u32>> {
        match column {
            Column::Topic => Some(&mut self.topic),
            Column::Partition => Some(&mut self.partition),
            Column::Spans => Some(&mut self.spans),
            Column::HeaderRecords => Some(&mut self.header_records),
            Column::OffsetRecords => Some(&mut self.offset_records),
            Column::Offset | Column::Timestamp => None,
        }
    }

    fn wide_column(&mut self, column: &Column) -> Option<&mut Vec<i64>> {
        match column {
            Column::Offset => Some(&mut self.offset),
            Column::Timestamp => Some(&mut self.timestamp),
            _ => None,
        }
    }

    fn edit(&mut self, edit: Edit) {
        match edit {
            Edit::Set(column, at, value) => {
                let value = value.resolve(self);
                if let Some(column) = self.column(&column).filter(|c| !c.is_empty()) {
                    let at = usize::from(at) % column.len();
                    column[at] = value;
                }
            }
            Edit::Push(column, value) => {
                let value = value.resolve(self);
                match self.column(&column) {
                    Some(column) => column.push(value),
                    None => self.wide_column(&column).unwrap().push(value.into()),
                }
            }
            Edit::Pop(column) => match self.column(&column) {
                Some(column) => drop(column.pop()),
                None => drop(self.wide_column(&column).unwrap().pop()),
            },
            Edit::Topics(n) => self.topics = usize::from(n),
            Edit::Partitions(n) => self.partitions = usize::from(n),
            Edit::Headers(n) => self.headers = usize::from(n),
            Edit::TruncateData(n) => self.data.truncate(usize::from(n)),
        }
    }
}

impl From<Input> for Columns {
    fn from(input: Input) -> Columns {
        let topics = usize::from(input.topics).max(1);
        let partitions = usize::from(input.partitions).max(1);
        let mut c = Columns {
            topics,
            partitions,
            data: input.data,
            ..Columns::default()
        };
        let fit = |data: usize, part: Option<(u16, u16)>| match part {
            None => [0, ABSENT],
            Some((start, len)) => {
                let start = usize::from(start) % (data + 1);
                let len = usize::from(len) % (data - start + 1);
                [start as u32, len as u32]
            }
        };
        for (i, r) in input.records.iter().enumerate() {
            c.topic.push((usize::from(r.topic) % topics) as u32);
            c.partition
                .push((usize::from(r.partition) % partitions) as u32);
            c.offset.push(i as i64);
            c.timestamp.push(r.timestamp);
            c.spans.extend(fit(c.data.len(), r.key));
            c.spans.extend(fit(c.data.len(), r.value));
            for _ in 0..r.headers % 4 {
                c.header_records.push(i as u32);
            }
            if r.offset {
                c.offset_records.push(i as u32);
            }
        }
        c.headers = c.header_records.len();
        for edit in input.edits {
            c.edit(edit);
        }
        c
    }
}

fuzz_target!(|input: Input| {
    let c = Columns::from(input);
    let payloads = Payloads {
        data: &c.data,
        spans: &c.spans,
        headers: c.headers,
        header_records: &c.header_records,
    };
    // A sink's partitions are Kafka's (s32); the same bits serve.
    let partition: Vec<i32> = c.partition.iter().map(|p| *p as i32).collect();
    let sink = check_sink_batch(&SinkColumns {
        topics: c.topics,
        topic: &c.topic,
        partition: &partition,
        offset: &c.offset,
        timestamp: &c.timestamp,
        payloads,
    });
    let sink_rules = payload_rules_hold(&c)
        && [partition.len(), c.offset.len(), c.timestamp.len()]
            .iter()
            .all(|len| *len == c.topic.len())
        && c.topic.iter().all(|t| (*t as usize) < c.topics);
    assert_eq!(sink.is_ok(), sink_rules, "sink check: {sink:?}");
    if sink.is_ok() {
        read_every_record(&c, |r| (partition[r], c.offset[r]));
    }

    let source = check_source_batch(SourceColumns {
        topics: c.topics,
        partitions: c.partitions,
        topic: &c.topic,
        partition: &c.partition,
        timestamp: &c.timestamp,
        payloads,
        offset_records: c.offset_records.iter().copied(),
    });
    let n = c.topic.len();
    let source_rules = payload_rules_hold(&c)
        && [c.partition.len(), c.timestamp.len()]
            .iter()
            .all(|len| *len == n)
        && c.topic.iter().all(|t| (*t as usize) < c.topics)
        && c.partition.iter().all(|p| (*p as usize) < c.partitions)
        && c.offset_records.windows(2).all(|w| w[0] < w[1])
        && c.offset_records.iter().all(|r| (*r as usize) < n);
    assert_eq!(source.is_ok(), source_rules, "source check: {source:?}");
    if source.is_ok() {
        let partitions = vec![0u8; c.partitions];
        read_every_record(&c, |r| (partitions[c.partition[r] as usize], 0));
        for &r in &c.offset_records {
            black_box(c.topic[r as usize]);
        }
    }
});

/// The rules on `data`, `spans`, `headers` and `header-records`, in
/// arithmetic that cannot overflow.
fn payload_rules_hold(c: &Columns) -> bool {
    let n = c.topic.len() as u128;
    c.spans.len() as u128 == 4 * n
        && c.spans
            .chunks_exact(2)
            .all(|s| s[1] == ABSENT || u128::from(s[0]) + u128::from(s[1]) <= c.data.len() as u128)
        && c.header_records.len() == c.headers
        && c.header_records.windows(2).all(|w| w[0] <= w[1])
        && c.header_records.iter().all(|r| u128::from(*r) < n)
}

/// Reads each record of an accepted batch as the worker and the SDK do,
/// checking what comes back against the columns.
fn read_every_record<T>(c: &Columns, per_record: impl Fn(usize) -> T) {
    let topics = vec![0u8; c.topics];
    let headers = vec![0u8; c.headers];
    let mut next_header = 0;
    for r in 0..c.topic.len() {
        black_box((topics[c.topic[r] as usize], c.timestamp[r], per_record(r)));
        let [key, value] = key_value(&c.data, &c.spans, r);
        for (bytes, span) in [key, value].into_iter().zip(c.spans[4 * r..].chunks(2)) {
            match bytes {
                None => assert_eq!(span[1], ABSENT),
                Some(b) => {
                    let start = span[0] as usize;
                    assert_eq!(b, &c.data[start..start + span[1] as usize]);
                }
            }
        }
        let range = header_range(&c.header_records, r);
        black_box(&headers[range.clone()]);
        assert_eq!(
            range.start, next_header,
            "record {r}'s headers follow the last"
        );
        assert!(c.header_records[range.clone()]
            .iter()
            .all(|h| *h as usize == r));
        next_header = range.end;
    }
    assert_eq!(
        next_header,
        headers.len(),
        "every header belongs to a record"
    );
}
