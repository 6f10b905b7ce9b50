//! The layout of a batch in columns (ADR 0007; `sink-batch` and
//! `source-batch` in `plugins/wit`): its rules, checked once, and the two
//! accessors that read a record out of a checked batch.
//!
//! A batch crosses the boundary as columns: per record a `topic` index and
//! a few scalars, the keys and values of all records back to back in
//! `data` with four `spans` entries per record, and the headers of all
//! records with `header-records` naming each one's record. Whoever receives
//! a batch from the other side checks it here before reading any of it:
//! the worker checks what a source's `poll` returned, the SDK what the
//! worker hands a sink's `put`. Once [`check_sink_batch`] or
//! [`check_source_batch`] accepted the columns, every column indexed by a
//! record below the record count, every index into `topics` or
//! `partitions`, and [`key_value`] and [`header_range`] stay in bounds (the
//! fuzz target `fuzz/fuzz_targets/columns.rs` holds the crate to that).
//!
//! This crate owns the rules and nothing else: it works on plain slices,
//! knows neither the generated bindings nor the worker's types, allocates
//! nothing, and a check never panics. Positions are added in `u64`, so the
//! rules hold on wasm32, where `usize` has 32 bits.

#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::Range;

/// A span length meaning "none": no key, or no value (a tombstone).
pub const ABSENT: u32 = u32::MAX;

/// The timestamp column's entry for a record without a timestamp.
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// The columns that hold a batch's keys, values and headers: the same in
/// a sink batch and in a source batch.
#[derive(Clone, Copy, Debug)]
pub struct Payloads<'a> {
    /// The keys and values of every record, back to back.
    pub data: &'a [u8],
    /// Four per record: the start of its key in `data` and the key's
    /// length, then the same for its value; a length of [`ABSENT`] is none.
    pub spans: &'a [u32],
    /// How many entries the `headers` column has.
    pub headers: usize,
    /// Per header: the index of its record, never decreasing.
    pub header_records: &'a [u32],
}

/// The columns of a `sink-batch` (the worker → a sink's `put`). The record
/// count is the length of `topic`.
#[derive(Clone, Copy, Debug)]
pub struct SinkColumns<'a> {
    /// How many entries the `topics` column has.
    pub topics: usize,
    pub topic: &'a [u32],
    pub partition: &'a [i32],
    pub offset: &'a [i64],
    pub timestamp: &'a [i64],
    pub payloads: Payloads<'a>,
}

/// The columns of a `source-batch` (a source's `poll` → the worker). The
/// record count is the length of `topic`.
#[derive(Clone, Debug)]
pub struct SourceColumns<'a, O> {
    /// How many entries the `topics` column has.
    pub topics: usize,
    /// How many entries the `partitions` column has.
    pub partitions: usize,
    pub topic: &'a [u32],
    pub partition: &'a [u32],
    pub timestamp: &'a [i64],
    pub payloads: Payloads<'a>,
    /// The record index of each `offsets` entry, in column order.
    pub offset_records: O,
}

/// A record's key or its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Key,
    Value,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Key => "key",
            Part::Value => "value",
        })
    }
}

/// What is wrong with a batch's columns, naming the column, and the record
/// or entry where there is one. Columns are named as in the WIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// A per-record column is not as long as `topic`.
    ColumnLength {
        column: &'static str,
        len: usize,
        records: usize,
    },
    /// `spans` does not have four entries per record.
    SpanCount { spans: usize, records: usize },
    /// A record's index into `topics` (`column` "topic") or `partitions`
    /// ("partition") points past its end, which is `len`.
    Index {
        record: usize,
        column: &'static str,
        index: u32,
        len: usize,
    },
    /// A record's key or value ends past the end of `data`.
    SpanPastData {
        record: usize,
        part: Part,
        end: u64,
        data: usize,
    },
    /// `headers` and `header-records` differ in length.
    HeaderCount {
        headers: usize,
        header_records: usize,
    },
    /// A header's record comes before the record of the header before it.
    HeaderOrder {
        header: usize,
        record: u32,
        previous: u32,
    },
    /// A header's record is past the last record.
    HeaderPastLastRecord {
        header: usize,
        record: u32,
        records: usize,
    },
    /// An `offsets` entry's record is not after the record of the entry
    /// before it.
    OffsetOrder {
        entry: usize,
        record: u32,
        previous: u32,
    },
    /// An `offsets` entry's record is past the last record.
    OffsetPastLastRecord {
        entry: usize,
        record: u32,
        records: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::ColumnLength {
                column,
                len,
                records,
            } => write!(f, "{records} topic entries but {len} {column} entries"),
            LayoutError::SpanCount { spans, records } => {
                write!(f, "{spans} spans for {records} records (4 each)")
            }
            LayoutError::Index {
                record,
                column,
                index,
                len,
            } => write!(
                f,
                "record {record} has {column} index {index}, but the batch has {len} {column}s"
            ),
            LayoutError::SpanPastData {
                record,
                part,
                end,
                data,
            } => write!(
                f,
                "record {record}'s {part} reaches byte {end} of {data} in `data`"
            ),
            LayoutError::HeaderCount {
                headers,
                header_records,
            } => write!(
                f,
                "{headers} headers but {header_records} header-records entries"
            ),
            LayoutError::HeaderOrder {
                header,
                record,
                previous,
            } => write!(
                f,
                "header-records out of order: header {header} belongs to record {record}, \
                 after a header of record {previous}"
            ),
            LayoutError::HeaderPastLastRecord {
                header,
                record,
                records,
            } => write!(
                f,
                "header-records past the last record: header {header} belongs to record \
                 {record}, but the batch has {records} records"
            ),
            LayoutError::OffsetOrder {
                entry,
                record,
                previous,
            } => write!(
                f,
                "offsets out of record order: entry {entry} is for record {record}, after \
                 one for record {previous} (at most one per record, in record order)"
            ),
            LayoutError::OffsetPastLastRecord {
                entry,
                record,
                records,
            } => write!(
                f,
                "offsets past the last record: entry {entry} is for record {record}, but \
                 the batch has {records} records"
            ),
        }
    }
}

impl core::error::Error for LayoutError {}

/// Checks a sink batch's columns: every per-record column as long as
/// `topic`, every topic index and span in range, headers in record order.
pub fn check_sink_batch(columns: &SinkColumns<'_>) -> Result<(), LayoutError> {
    let records = columns.topic.len();
    columns_agree(
        records,
        &[
            ("partition", columns.partition.len()),
            ("offset", columns.offset.len()),
            ("timestamp", columns.timestamp.len()),
        ],
    )?;
    span_count(records, columns.payloads.spans)?;
    indexes_in_range("topic", columns.topic, columns.topics)?;
    payloads(records, &columns.payloads)
}

/// Checks a source batch's columns: what [`check_sink_batch`] checks, and
/// partition indexes in range and `offsets` in record order, at most one
/// per record.
pub fn check_source_batch<O>(columns: SourceColumns<'_, O>) -> Result<(), LayoutError>
where
    O: IntoIterator<Item = u32>,
{
    let records = columns.topic.len();
    columns_agree(
        records,
        &[
            ("partition", columns.partition.len()),
            ("timestamp", columns.timestamp.len()),
        ],
    )?;
    span_count(records, columns.payloads.spans)?;
    indexes_in_range("topic", columns.topic, columns.topics)?;
    indexes_in_range("partition", columns.partition, columns.partitions)?;
    payloads(records, &columns.payloads)?;
    offsets_in_order(records, columns.offset_records)
}

/// Record `record`'s key and value, sliced out of `data` by its spans;
/// `None` where the length is [`ABSENT`].
///
/// On columns a check accepted, this is in bounds for every `record` below
/// the record count. Otherwise it panics, as slice indexing does, where
/// `record` is past the spans or a span reaches past `data`.
#[inline]
pub fn key_value<'a>(data: &'a [u8], spans: &[u32], record: usize) -> [Option<&'a [u8]>; 2] {
    let span = record
        .checked_mul(4)
        .and_then(|at| spans.get(at..)?.get(..4));
    let Some(&[key_start, key_len, value_start, value_len]) = span else {
        panic!(
            "record {record} is past the end of a batch of {} spans",
            spans.len()
        );
    };
    // Sliced twice rather than `start..start + len`: no addition to
    // overflow a 32-bit `usize`.
    let part =
        |start: u32, len: u32| (len != ABSENT).then(|| &data[start as usize..][..len as usize]);
    [part(key_start, key_len), part(value_start, value_len)]
}

/// Where record `record`'s headers are in the `headers` column: the run of
/// `header_records` entries that name it (empty when it has none).
///
/// Within `0..=header_records.len()` for any `record`; on columns a check
/// accepted, that is within the `headers` column.
#[inline]
pub fn header_range(header_records: &[u32], record: usize) -> Range<usize> {
    if header_records.is_empty() {
        return 0..0;
    }
    // `header_records` never decreases: the record's headers are one run.
    let from = header_records.partition_point(|r| (*r as usize) < record);
    let len = header_records[from..].partition_point(|r| (*r as usize) <= record);
    from..from + len
}

fn columns_agree(records: usize, columns: &[(&'static str, usize)]) -> Result<(), LayoutError> {
    match columns.iter().find(|(_, len)| *len != records) {
        Some(&(column, len)) => Err(LayoutError::ColumnLength {
            column,
            len,
            records,
        }),
        None => Ok(()),
    }
}

fn span_count(records: usize, spans: &[u32]) -> Result<(), LayoutError> {
    // Divided rather than `4 * records`, which can overflow on wasm32.
    if !spans.len().is_multiple_of(4) || spans.len() / 4 != records {
        return Err(LayoutError::SpanCount {
            spans: spans.len(),
            records,
        });
    }
    Ok(())
}

fn indexes_in_range(column: &'static str, indexes: &[u32], len: usize) -> Result<(), LayoutError> {
    match indexes.iter().position(|i| *i as usize >= len) {
        Some(record) => Err(LayoutError::Index {
            record,
            column,
            index: indexes[record],
            len,
        }),
        None => Ok(()),
    }
}

/// Spans within `data`, headers in record order; `spans` already has four
/// entries per record.
fn payloads(records: usize, columns: &Payloads<'_>) -> Result<(), LayoutError> {
    let data = columns.data.len();
    for (i, span) in columns.spans.chunks_exact(2).enumerate() {
        let (start, len) = (span[0], span[1]);
        let end = u64::from(start) + u64::from(len);
        if len != ABSENT && end > data as u64 {
            return Err(LayoutError::SpanPastData {
                record: i / 2,
                part: if i % 2 == 0 { Part::Key } else { Part::Value },
                end,
                data,
            });
        }
    }
    if columns.header_records.len() != columns.headers {
        return Err(LayoutError::HeaderCount {
            headers: columns.headers,
            header_records: columns.header_records.len(),
        });
    }
    let mut previous = 0;
    for (header, &record) in columns.header_records.iter().enumerate() {
        if record < previous {
            return Err(LayoutError::HeaderOrder {
                header,
                record,
                previous,
            });
        }
        if record as usize >= records {
            return Err(LayoutError::HeaderPastLastRecord {
                header,
                record,
                records,
            });
        }
        previous = record;
    }
    Ok(())
}

fn offsets_in_order(
    records: usize,
    offset_records: impl IntoIterator<Item = u32>,
) -> Result<(), LayoutError> {
    let mut previous = None;
    for (entry, record) in offset_records.into_iter().enumerate() {
        if let Some(previous) = previous.filter(|p| record <= *p) {
            return Err(LayoutError::OffsetOrder {
                entry,
                record,
                previous,
            });
        }
        if record as usize >= records {
            return Err(LayoutError::OffsetPastLastRecord {
                entry,
                record,
                records,
            });
        }
        previous = Some(record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const DATA: &[u8] = b"k1v-onek2";

    /// Three records: a key and a value; no key and an empty value, with
    /// two headers; a key and no value (a tombstone), with one header.
    fn sink() -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let topic = std::vec![0, 0, 1];
        let spans = std::vec![0, 2, 2, 5, 0, ABSENT, 7, 0, 7, 2, 0, ABSENT];
        let header_records = std::vec![1, 1, 2];
        (topic, spans, header_records)
    }

    fn check_sink(topic: &[u32], spans: &[u32], header_records: &[u32]) -> Result<(), LayoutError> {
        let n = topic.len();
        check_sink_batch(&SinkColumns {
            topics: 2,
            topic,
            partition: &[0; 3][..n.min(3)],
            offset: &[0; 3][..n.min(3)],
            timestamp: &[NO_TIMESTAMP; 3][..n.min(3)],
            payloads: Payloads {
                data: DATA,
                spans,
                headers: header_records.len(),
                header_records,
            },
        })
    }

    #[test]
    fn a_checked_sink_batch_reads_back_each_record() {
        let (topic, spans, header_records) = sink();
        assert_eq!(check_sink(&topic, &spans, &header_records), Ok(()));
        assert_eq!(
            key_value(DATA, &spans, 0),
            [Some(&b"k1"[..]), Some(&b"v-one"[..])]
        );
        assert_eq!(key_value(DATA, &spans, 1), [None, Some(&b""[..])]);
        assert_eq!(key_value(DATA, &spans, 2), [Some(&b"k2"[..]), None]);
        let ranges: Vec<Range<usize>> = (0..4).map(|r| header_range(&header_records, r)).collect();
        assert_eq!(ranges, [0..0, 0..2, 2..3, 3..3]);
        assert_eq!(header_range(&[], 5), 0..0);
    }

    #[test]
    fn each_broken_rule_is_named_with_its_record() {
        let broken = |f: fn(&mut Vec<u32>, &mut Vec<u32>, &mut Vec<u32>)| {
            let (mut topic, mut spans, mut header_records) = sink();
            f(&mut topic, &mut spans, &mut header_records);
            check_sink(&topic, &spans, &header_records)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            broken(|t, _, _| t.push(0)),
            "4 topic entries but 3 partition entries"
        );
        assert_eq!(
            broken(|_, s, _| s.truncate(10)),
            "10 spans for 3 records (4 each)"
        );
        assert_eq!(
            broken(|t, _, _| t[1] = 2),
            "record 1 has topic index 2, but the batch has 2 topics"
        );
        assert_eq!(
            broken(|_, s, _| s[3] = 8),
            "record 0's value reaches byte 10 of 9 in `data`"
        );
        assert_eq!(
            broken(|_, s, _| s[8] = 8),
            "record 2's key reaches byte 10 of 9 in `data`"
        );
        assert_eq!(
            broken(|_, _, h| h.reverse()),
            "header-records out of order: header 1 belongs to record 1, after a header of record 2"
        );
        assert_eq!(
            broken(|_, _, h| h[2] = 3),
            "header-records past the last record: header 2 belongs to record 3, but the batch \
             has 3 records"
        );
        let (topic, spans, header_records) = sink();
        let mut columns = SinkColumns {
            topics: 2,
            topic: &topic,
            partition: &[0; 3],
            offset: &[0; 3],
            timestamp: &[0; 3],
            payloads: Payloads {
                data: DATA,
                spans: &spans,
                headers: 2,
                header_records: &header_records,
            },
        };
        assert_eq!(
            check_sink_batch(&columns).unwrap_err().to_string(),
            "2 headers but 3 header-records entries"
        );
        columns.payloads.headers = 3;
        columns.timestamp = &[0; 2];
        assert_eq!(
            check_sink_batch(&columns).unwrap_err().to_string(),
            "3 topic entries but 2 timestamp entries"
        );
    }

    #[test]
    fn a_span_near_the_top_of_u32_does_not_wrap_around() {
        // On wasm32 `start + len` in `usize` would wrap to 3 and pass.
        let spans = [u32::MAX - 1, 5, 0, ABSENT];
        let err = check_sink_batch(&SinkColumns {
            topics: 1,
            topic: &[0],
            partition: &[0],
            offset: &[0],
            timestamp: &[0],
            payloads: Payloads {
                data: DATA,
                spans: &spans,
                headers: 0,
                header_records: &[],
            },
        })
        .unwrap_err();
        assert_eq!(
            err,
            LayoutError::SpanPastData {
                record: 0,
                part: Part::Key,
                end: 4_294_967_299,
                data: 9
            }
        );
    }

    #[test]
    fn an_absent_key_or_value_may_start_anywhere() {
        let spans = [u32::MAX, ABSENT, 7, ABSENT];
        let columns = SinkColumns {
            topics: 1,
            topic: &[0],
            partition: &[0],
            offset: &[0],
            timestamp: &[0],
            payloads: Payloads {
                data: &[],
                spans: &spans,
                headers: 0,
                header_records: &[],
            },
        };
        assert_eq!(check_sink_batch(&columns), Ok(()));
        assert_eq!(key_value(&[], &spans, 0), [None, None]);
    }

    fn check_source(partition: &[u32], offset_records: &[u32]) -> Result<(), LayoutError> {
        check_source_batch(SourceColumns {
            topics: 1,
            partitions: 2,
            topic: &[0, 0, 0],
            partition,
            timestamp: &[NO_TIMESTAMP; 3],
            payloads: Payloads {
                data: b"abc",
                spans: &[0, ABSENT, 0, 1, 0, ABSENT, 1, 1, 0, ABSENT, 2, 1],
                headers: 0,
                header_records: &[],
            },
            offset_records: offset_records.iter().copied(),
        })
    }

    #[test]
    fn a_source_batch_needs_partitions_in_range_and_offsets_in_record_order() {
        assert_eq!(check_source(&[0, 1, 0], &[0, 2]), Ok(()));
        let err = |partition, offsets| check_source(partition, offsets).unwrap_err().to_string();
        assert_eq!(err(&[0, 1], &[]), "3 topic entries but 2 partition entries");
        assert_eq!(
            err(&[0, 2, 0], &[]),
            "record 1 has partition index 2, but the batch has 2 partitions"
        );
        assert_eq!(
            err(&[0, 1, 0], &[1, 1]),
            "offsets out of record order: entry 1 is for record 1, after one for record 1 \
             (at most one per record, in record order)"
        );
        assert_eq!(
            err(&[0, 1, 0], &[0, 3]),
            "offsets past the last record: entry 1 is for record 3, but the batch has 3 records"
        );
    }
}
