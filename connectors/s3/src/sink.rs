//! `s3-sink`: writes records into S3 objects, per topic partition, in
//! Confluent's layout, over the worker's `blob` capability (store
//! `default`).
//!
//! Records of one topic partition gather in an open object until it
//! rotates: after `flush.size` records, `rotate.bytes` bytes, when a
//! record's timestamp is `rotate.interval.ms` or more past the object's
//! first, or when a record's time-based directory (`path.format`) differs.
//! Rotation only depends on the records, so it cuts a replay at the same
//! places. Rotated objects are written at the next flush, named after
//! their first record's offset:
//! `<topics.dir>/<topic>/partition=<p>/[<time path>/]<topic>+<p>+<offset, 10 digits>.<ext>[.gz]`.
//!
//! Exactly once: an open object stays open across flushes, and each flush
//! returns, per partition with an open object, that object's first offset
//! as the commit limit (Kafka Connect's `preCommit`). The worker commits
//! the consumer offset no further, so a restart (or a rebalance) replays
//! from the first record of an object, and the replay rebuilds the same
//! objects with the same names and contents: an object written before a
//! crash is overwritten with itself, never overlapped. A record that
//! arrives with an offset not past the last one taken for its partition
//! means consumption was rewound (a rebalance in a running task): the open
//! object starts over. Only `rotate.schedule.interval.ms` (wall clock) and
//! `path.format` for records without a timestamp depend on more than the
//! records, and give that up (docs/connectors/s3.md, "Delivery").

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use tributary_sdk::blob::Store;
use tributary_sdk::log::counter_add;
use tributary_sdk::{
    config_key as key, debug, CommitLimit, Config, ConfigIssue, ConfigType, ConnectorKind,
    Description, PutResult, Sink, SinkBatch, SinkTask, TaskError,
};

use crate::format::{self, Envelope, Format};
use crate::path::PathFormat;

/// The store the sink writes to.
const STORE: &str = "default";

/// The `s3-sink` connector.
pub struct S3Sink;

impl Sink for S3Sink {
    type Task = S3SinkTask;

    fn describe() -> Description {
        Description {
            name: "s3-sink".into(),
            version: crate::VERSION.into(),
            kind: ConnectorKind::Sink,
            summary: "Writes records into S3 objects per topic partition (Confluent's layout): JSON lines, raw bytes or CSV, optionally gzipped.".into(),
            reads_headers: true, // `format: json` keeps them
            config: vec![
                key("format", ConfigType::String, Some("json"),
                    "`json` (a JSON envelope per line with topic, partition, offset, timestamp, key, value and headers; `s3-source` restores records from it), `bytes` (raw values, each followed by `format.bytearray.separator`) or `csv` (values that are flat JSON objects, under a header row)."),
                key("format.bytearray.separator", ConfigType::String, Some("\\n"),
                    "What follows each value in format `bytes`; `\\n`, `\\r`, `\\t` and `\\\\` are understood."),
                key("compression.type", ConfigType::String, Some("none"),
                    "`none` or `gzip` (objects get `.gz` appended)."),
                key("flush.size", ConfigType::Integer, Some("10000"),
                    "Most records in one object."),
                key("rotate.bytes", ConfigType::Integer, Some("67108864"),
                    "An object rotates when its content (before compression) reaches this many bytes."),
                key("rotate.interval.ms", ConfigType::Integer, Some("0"),
                    "An object rotates when a record's timestamp is this much or more past the timestamp of the object's first record; 0: never. Decided by the records alone, so a replay after a crash cuts objects at the same places."),
                key("rotate.schedule.interval.ms", ConfigType::Integer, Some("0"),
                    "An open object is written at the first flush after it has been open this long by the worker's clock, even if not full; 0: never (an open object waits for more records). Wall-clock time: a replay after a crash may cut objects elsewhere, so records can then be in S3 twice."),
                key("topics.dir", ConfigType::String, Some("topics"),
                    "The top-level prefix of the objects; empty: none."),
                key("path.format", ConfigType::String, Some(""),
                    "A time-based directory under `partition=<p>/` from the record timestamp (UTC), e.g. `'dt'=YYYY-MM-dd/'hour'=HH`; tokens YYYY, MM, dd, HH, mm, text in single quotes, and / = - _ . Empty: none."),
            ],
        }
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        Settings::parse(config).err().unwrap_or_default()
    }
}

/// The sink's config, checked.
#[derive(Clone, Debug)]
struct Settings {
    format: Format,
    separator: Vec<u8>,
    gzip: bool,
    flush_size: usize,
    rotate_bytes: usize,
    rotate_interval: i64,
    rotate_schedule: i64,
    topics_dir: String,
    path_format: Option<PathFormat>,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: key.into(),
                message,
            })
        };
        let format = config.get("format").unwrap_or("json");
        let format = Format::parse(format).unwrap_or_else(|| {
            issue(
                "format",
                format!("expects json, bytes or csv, got {format:?}"),
            );
            Format::Json
        });
        let gzip = match config.get("compression.type").unwrap_or("none").trim() {
            "none" => false,
            "gzip" => true,
            other => {
                issue(
                    "compression.type",
                    format!("expects none or gzip, got {other:?}"),
                );
                false
            }
        };
        let mut number = |name: &str, default: i64, min: i64| -> i64 {
            match config.get(name).map(|v| v.trim().parse::<i64>()) {
                None => default,
                Some(Ok(n)) if n >= min => n,
                Some(_) => {
                    issue(name, format!("expects an integer of at least {min}"));
                    default
                }
            }
        };
        let flush_size = number("flush.size", 10_000, 1) as usize;
        let rotate_bytes = number("rotate.bytes", 64 << 20, 1) as usize;
        let rotate_interval = number("rotate.interval.ms", 0, 0);
        let rotate_schedule = number("rotate.schedule.interval.ms", 0, 0);
        let path_format = match config.get("path.format").map(str::trim).unwrap_or("") {
            "" => None,
            f => match PathFormat::parse(f) {
                Ok(p) => Some(p),
                Err(e) => {
                    issues.push(ConfigIssue {
                        key: "path.format".into(),
                        message: e,
                    });
                    None
                }
            },
        };
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Settings {
            format,
            separator: format::unescape(config.get("format.bytearray.separator").unwrap_or("\\n")),
            gzip,
            flush_size,
            rotate_bytes,
            rotate_interval,
            rotate_schedule,
            topics_dir: config
                .get("topics.dir")
                .unwrap_or("topics")
                .trim()
                .trim_matches('/')
                .to_owned(),
            path_format,
        })
    }
}

/// An object being filled for one topic partition.
struct Open {
    topic: String,
    partition: i32,
    first_offset: i64,
    first_timestamp: Option<i64>,
    /// When the object took its first record, by the worker's clock
    /// (milliseconds since the epoch), for `rotate.schedule.interval.ms`.
    opened_at: i64,
    /// The time-based directory, when `path.format` is set.
    time_path: Option<String>,
    records: usize,
    data: Vec<u8>,
    /// CSV: the columns, from the first record.
    columns: Option<Vec<String>>,
}

/// One task: open objects by topic partition, rotated ones waiting for the
/// next flush.
pub struct S3SinkTask {
    settings: Settings,
    store: Store,
    open: BTreeMap<(String, i32), Open>,
    full: VecDeque<Open>,
    /// The offset of the last record taken per topic partition, to notice a
    /// rewind.
    last: BTreeMap<(String, i32), i64>,
}

impl S3SinkTask {
    /// The object key of `o`.
    fn object_key(&self, o: &Open) -> String {
        let mut key = String::new();
        if !self.settings.topics_dir.is_empty() {
            key.push_str(&self.settings.topics_dir);
            key.push('/');
        }
        key.push_str(&format!("{}/partition={}/", o.topic, o.partition));
        if let Some(p) = &o.time_path {
            key.push_str(p);
            key.push('/');
        }
        key.push_str(&format!(
            "{}+{}+{:010}.{}",
            o.topic,
            o.partition,
            o.first_offset,
            self.settings.format.extension()
        ));
        if self.settings.gzip {
            key.push_str(".gz");
        }
        key
    }

    /// Writes one object.
    fn write(&self, o: &Open) -> Result<(), TaskError> {
        let key = self.object_key(o);
        let body = if self.settings.gzip {
            let mut gz =
                GzEncoder::new(Vec::with_capacity(o.data.len() / 4), Compression::default());
            gz.write_all(&o.data)
                .and_then(|_| gz.finish())
                .map_err(|e| {
                    TaskError::Fatal(format!(
                        "cannot gzip s3://{}/{key}: {e}",
                        self.store.bucket()
                    ))
                })?
        } else {
            o.data.clone()
        };
        let bytes = body.len() as u64;
        self.store.put(&key, &body).map_err(|e| {
            let e: TaskError = e.into();
            match e {
                TaskError::Retriable(m) => {
                    TaskError::Retriable(format!("writing {} records: {m}", o.records))
                }
                TaskError::Fatal(m) => {
                    TaskError::Fatal(format!("writing {} records: {m}", o.records))
                }
            }
        })?;
        counter_add("objects_written", 1);
        counter_add("object_bytes_written", bytes);
        debug!(
            "wrote s3://{}/{key}: {} records, {bytes} bytes",
            self.store.bucket(),
            o.records
        );
        Ok(())
    }

    /// Consumption of `slot` went back to `offset` (after `last`): the
    /// worker's consumer resumed at the committed offset, which is the
    /// first offset of the open object, or of a rotated one not written
    /// yet. Those start over; the records come again.
    fn rewind(&mut self, slot: &(String, i32), offset: i64, last: i64) {
        debug!(
            "{}[{}]: records from offset {offset} come again (the last one taken was {last}); the objects from there start over",
            slot.0, slot.1
        );
        if self
            .open
            .get(slot)
            .is_some_and(|o| o.first_offset >= offset)
        {
            self.open.remove(slot);
        }
        self.full
            .retain(|o| !(o.topic == slot.0 && o.partition == slot.1 && o.first_offset >= offset));
    }

    /// Whether `o` must rotate before a record with this timestamp and
    /// directory joins it.
    fn must_rotate_before(
        &self,
        o: &Open,
        timestamp: Option<i64>,
        time_path: &Option<String>,
    ) -> bool {
        if &o.time_path != time_path {
            return true;
        }
        let interval = self.settings.rotate_interval;
        match (interval, o.first_timestamp, timestamp) {
            (i, Some(first), Some(t)) if i > 0 => t - first >= i,
            _ => false,
        }
    }
}

impl SinkTask for S3SinkTask {
    fn open(config: Config) -> Result<Self, TaskError> {
        let settings = Settings::parse(&config).map_err(|issues| {
            TaskError::Fatal(
                issues
                    .iter()
                    .map(|i| format!("{}: {}", i.key, i.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let store = Store::open(STORE).map_err(|e| TaskError::Fatal(e.text()))?;
        // Fail at start, not at the first flush, when the bucket is missing
        // or the credentials do not work.
        store.list("", None, None, 1).map_err(TaskError::from)?;
        Ok(S3SinkTask {
            settings,
            store,
            open: BTreeMap::new(),
            full: VecDeque::new(),
            last: BTreeMap::new(),
        })
    }

    fn put(&mut self, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError> {
        let mut results = Vec::with_capacity(batch.len());
        for r in batch {
            let topic = r.topic;
            let time_path = self.settings.path_format.as_ref().map(|f| {
                // A record without a timestamp goes by the current time.
                let t = r.timestamp.unwrap_or_else(now_millis);
                f.render(t)
            });
            let slot = (topic.to_owned(), r.partition);
            if let Some(last) = self.last.insert(slot.clone(), r.offset) {
                if r.offset <= last {
                    self.rewind(&slot, r.offset, last);
                }
            }
            if let Some(o) = self.open.get(&slot) {
                if self.must_rotate_before(o, r.timestamp, &time_path) {
                    let o = self.open.remove(&slot).expect("present");
                    self.full.push_back(o);
                }
            }
            let settings = &self.settings;
            let o = self.open.entry(slot.clone()).or_insert_with(|| Open {
                topic: topic.to_owned(),
                partition: r.partition,
                first_offset: r.offset,
                first_timestamp: r.timestamp,
                opened_at: now_millis(),
                time_path: time_path.clone(),
                records: 0,
                data: Vec::new(),
                columns: None,
            });
            let encoded = match settings.format {
                Format::Json => Ok(format::envelope_line(&Envelope {
                    topic: Some(topic.to_owned()),
                    partition: Some(r.partition as i64),
                    offset: Some(r.offset),
                    timestamp: r.timestamp,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    headers: r.headers.to_vec(),
                })
                .into_iter()
                .chain([b'\n'])
                .collect::<Vec<u8>>()),
                Format::Bytes => match r.value {
                    Some(v) => Ok([v, &settings.separator].concat()),
                    None => Err(
                        "a null value (tombstone) has no bytes to write in format `bytes`"
                            .to_string(),
                    ),
                },
                Format::Csv => match r.value {
                    None => Err("a null value (tombstone) has no row in format `csv`".to_string()),
                    Some(v) => match &o.columns {
                        Some(cols) => format::csv_row(v, cols),
                        None => format::csv_columns(v).and_then(|cols| {
                            let mut row = format::csv_header(&cols);
                            let first = format::csv_row(v, &cols)?;
                            row.extend(first);
                            o.columns = Some(cols);
                            Ok(row)
                        }),
                    },
                },
            };
            match encoded {
                Ok(bytes) => {
                    o.data.extend_from_slice(&bytes);
                    o.records += 1;
                    results.push(PutResult::Ok);
                }
                Err(why) => {
                    results.push(PutResult::BadRecord(format!(
                        "{topic}/{}@{}: {why}",
                        r.partition, r.offset
                    )));
                }
            }
            let full = o.records >= settings.flush_size || o.data.len() >= settings.rotate_bytes;
            if o.records == 0 {
                // Nothing went in (a bad first record): the next record
                // starts the object, with its own offset in the name.
                self.open.remove(&slot);
            } else if full {
                let o = self.open.remove(&slot).expect("present");
                self.full.push_back(o);
            }
        }
        Ok(results)
    }

    /// Writes the rotated objects, in order. An object leaves memory only
    /// once it is written, so a failed flush is retried from where it
    /// stopped. Open objects stay open.
    fn flush(&mut self) -> Result<(), TaskError> {
        while let Some(o) = self.full.front() {
            self.write(o)?;
            self.full.pop_front();
        }
        Ok(())
    }

    /// Rotates open objects past `rotate.schedule.interval.ms`, flushes,
    /// and holds every partition with an open object back at that object's
    /// first offset: the worker commits no further, so a replay starts
    /// with the object's first record and rebuilds it.
    fn pre_commit(&mut self) -> Result<Vec<CommitLimit>, TaskError> {
        let schedule = self.settings.rotate_schedule;
        if schedule > 0 {
            let now = now_millis();
            let due: Vec<(String, i32)> = self
                .open
                .iter()
                .filter(|(_, o)| now - o.opened_at >= schedule)
                .map(|(slot, _)| slot.clone())
                .collect();
            for slot in due {
                let o = self.open.remove(&slot).expect("present");
                self.full.push_back(o);
            }
        }
        self.flush()?;
        Ok(self
            .open
            .values()
            .map(|o| CommitLimit {
                topic: o.topic.clone(),
                partition: o.partition,
                offset: o.first_offset,
            })
            .collect())
    }
}

/// Milliseconds since the epoch, now.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
