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
use tributary_sdk::blob::{BlobCapability, Store};
use tributary_sdk::log::counter_add;
use tributary_sdk::{
    debug, CommitLimit, Config, ConfigIssue, Description, Key, PutResult, Sink, SinkBatch,
    SinkTask, TaskError,
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
        Description::sink("s3-sink", crate::VERSION)
            .summary("Writes records into S3 objects per topic partition (Confluent's layout): JSON lines, raw bytes or CSV, optionally gzipped.")
            .reads_headers(true) // `format: json` keeps them
            .key(Key::string("format").default("json").doc(
                "`json` (a JSON envelope per line with topic, partition, offset, timestamp, key, value and headers; `s3-source` restores records from it), `bytes` (raw values, each followed by `format.bytearray.separator`) or `csv` (values that are flat JSON objects, under a header row)."))
            .key(Key::string("format.bytearray.separator").default("\\n").doc(
                "What follows each value in format `bytes`; `\\n`, `\\r`, `\\t` and `\\\\` are understood."))
            .key(Key::string("compression.type").default("none").doc(
                "`none` or `gzip` (objects get `.gz` appended)."))
            .key(Key::integer("flush.size").default("10000").doc("Most records in one object."))
            .key(Key::integer("rotate.bytes").default("67108864").doc(
                "An object rotates when its content (before compression) reaches this many bytes."))
            .key(Key::integer("rotate.interval.ms").default("0").doc(
                "An object rotates when a record's timestamp is this much or more past the timestamp of the object's first record; 0: never. Decided by the records alone, so a replay after a crash cuts objects at the same places."))
            .key(Key::integer("rotate.schedule.interval.ms").default("0").doc(
                "An open object is written at the first flush after it has been open this long by the worker's clock, even if not full; 0: never (an open object waits for more records). Wall-clock time: a replay after a crash may cut objects elsewhere, so records can then be in S3 twice."))
            .key(Key::string("topics.dir").default("topics").doc(
                "The top-level prefix of the objects; empty: none."))
            .key(Key::string("path.format").default("").doc(
                "A time-based directory under `partition=<p>/` from the record timestamp (UTC), e.g. `'dt'=YYYY-MM-dd/'hour'=HH`; tokens YYYY, MM, dd, HH, mm, text in single quotes, and / = - _ . Empty: none."))
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
        let mut issue = |key: &str, message: String| issues.push(ConfigIssue::new(key, message));
        let format = config.get::<String>("format").unwrap_or_default();
        let format = Format::parse(&format).unwrap_or_else(|| {
            issue(
                "format",
                format!("expects json, bytes or csv, got {format:?}"),
            );
            Format::Json
        });
        let gzip = match config
            .get::<String>("compression.type")
            .unwrap_or_default()
            .trim()
        {
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
        let mut number = |name: &str, min: i64| -> i64 {
            match config.get::<i64>(name) {
                Ok(n) if n >= min => n,
                _ => {
                    issue(name, format!("expects an integer of at least {min}"));
                    min
                }
            }
        };
        let flush_size = number("flush.size", 1) as usize;
        let rotate_bytes = number("rotate.bytes", 1) as usize;
        let rotate_interval = number("rotate.interval.ms", 0);
        let rotate_schedule = number("rotate.schedule.interval.ms", 0);
        let path_format = match config
            .get::<String>("path.format")
            .unwrap_or_default()
            .trim()
        {
            "" => None,
            f => match PathFormat::parse(f) {
                Ok(p) => Some(p),
                Err(e) => {
                    issues.push(ConfigIssue::new("path.format", e));
                    None
                }
            },
        };
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Settings {
            format,
            separator: format::unescape(
                &config
                    .get::<String>("format.bytearray.separator")
                    .unwrap_or_default(),
            ),
            gzip,
            flush_size,
            rotate_bytes,
            rotate_interval,
            rotate_schedule,
            topics_dir: config
                .get::<String>("topics.dir")
                .unwrap_or_default()
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
/// next flush. It writes through `B`: the worker's store, or a fake in
/// unit tests.
pub struct S3SinkTask<B = Store> {
    settings: Settings,
    store: B,
    open: BTreeMap<(String, i32), Open>,
    full: VecDeque<Open>,
    /// The offset of the last record taken per topic partition, to notice a
    /// rewind.
    last: BTreeMap<(String, i32), i64>,
}

impl<B: BlobCapability> S3SinkTask<B> {
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

impl<B: BlobCapability + 'static> SinkTask for S3SinkTask<B> {
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
        let store = B::open(STORE).map_err(|e| TaskError::Fatal(e.text()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_sdk::acceptance;
    use tributary_sdk::blob::BlobError;
    use tributary_sdk::testing::{self, BlobCall, FakeBlob, Record};

    fn task(store: &FakeBlob, settings: &[(&str, &str)]) -> S3SinkTask<FakeBlob> {
        store.install("default");
        let config = testing::config(&S3Sink::describe().keys, settings);
        S3SinkTask::<FakeBlob>::open(config).expect("the task opens")
    }

    #[test]
    fn s3_sink_keeps_the_contract_and_holds_partitions_at_their_open_object() {
        acceptance::description(&S3Sink::describe());
        let store = FakeBlob::new("bucket");
        let mut task = task(&store, &[("format", "bytes"), ("flush.size", "2")]);
        let records: Vec<Record> = (0..5)
            .map(|i| Record::new("t", 10 + i).value(format!("v{i}")))
            .collect();
        let results = acceptance::put(&mut task, &testing::sink_batch(&records)).unwrap();
        assert!(results.iter().all(|r| *r == PutResult::Ok));
        let limits = task.pre_commit().unwrap();
        assert_eq!(
            limits,
            [CommitLimit {
                topic: "t".into(),
                partition: 0,
                offset: 14
            }],
            "the fifth record waits in the open object"
        );
        let objects = store.objects();
        let keys: Vec<&String> = objects.keys().collect();
        assert_eq!(
            keys,
            [
                "topics/t/partition=0/t+0+0000000010.bin",
                "topics/t/partition=0/t+0+0000000012.bin"
            ]
        );
        assert_eq!(objects[keys[0]], b"v0\nv1\n");
    }

    #[test]
    fn a_store_that_is_away_makes_the_flush_retriable_and_loses_nothing() {
        let store = FakeBlob::new("bucket");
        let mut task = task(&store, &[("format", "bytes"), ("flush.size", "1")]);
        let down = std::rc::Rc::new(std::cell::Cell::new(true));
        let flag = std::rc::Rc::clone(&down);
        store.fail(move |c| {
            (flag.get() && matches!(c, BlobCall::Put { .. }))
                .then(|| BlobError::Unavailable("503 SlowDown".into()))
        });
        let batch = testing::sink_batch(&[Record::new("t", 0).value("a")]);
        acceptance::put(&mut task, &batch).unwrap();
        assert!(matches!(task.flush(), Err(TaskError::Retriable(m)) if m.contains("503 SlowDown")));
        down.set(false);
        task.flush().unwrap();
        assert_eq!(store.objects().len(), 1);
    }
}
