//! `s3-source`: reads objects under one or more prefixes, in key order, a
//! record per line, over the worker's `blob` capability (store `default`).
//!
//! Each prefix is a source partition `{"prefix": <prefix>}`; its offset is
//! `{"key": <object key>, "position": <byte just after the line>, "line":
//! <number of the next line>}` (position and line count the uncompressed content). A
//! restarted task goes on in the middle of the object it was reading; new
//! objects are found by listing after the last key every
//! `poll.interval.ms`. Objects whose key ends in `.gz` are gunzipped.
//!
//! Format `json` reads the envelope `s3-sink` writes and restores key,
//! value, headers and timestamp (the topic too, unless `topic` is set);
//! `bytes` makes every line a value. A line that is not valid for the
//! format, or the rest of a broken gzip object, is logged with the object
//! key and line number, counted (`bad_records`) and skipped: a source has no
//! dead letter queue for input it cannot parse. The rest is still read.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use tributary_sdk::blob::{BlobCapability, BlobError, ByteRange, ObjectInfo, Store};
use tributary_sdk::log::counter_add;
use tributary_sdk::{
    info, json_get, warn, Config, ConfigIssue, Description, JsonMap, Key, PartitionOffset, Scalar,
    Source, SourceBatch, SourceRecord, SourceTask, TaskError,
};

use crate::format;

/// The store the source reads from.
const STORE: &str = "default";
const PREFIX: &str = "prefix";
const KEY: &str = "key";
const POSITION: &str = "position";
const LINE: &str = "line";

/// The `s3-source` connector.
pub struct S3Source;

impl Source for S3Source {
    type Task = S3SourceTask;

    fn describe() -> Description {
        Description::source("s3-source", crate::VERSION)
            .summary("Reads objects under S3 prefixes in key order, a record per line; restores records s3-sink wrote as JSON envelopes.")
            .key(Key::list("prefixes").doc(
                "The key prefixes to read, e.g. `topics/orders/partition=0/`; each is a source partition, read in key order. Spread over tasks."))
            .key(Key::string("topic").default("").doc(
                "The topic to produce to. Empty: format `json` takes each record's topic from its envelope; format `bytes` needs it."))
            .key(Key::string("format").default("json").doc(
                "`json` (the envelope `s3-sink` writes: key, value, headers and timestamp are restored) or `bytes` (each line is a value)."))
            .key(Key::integer("poll.interval.ms").default("5000").doc(
                "How often to list a prefix for new objects once everything listed is read."))
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        Settings::parse(config).err().unwrap_or_default()
    }

    fn task_configs(config: &Config, max_tasks: u32) -> Result<Vec<Config>, String> {
        let prefixes = prefixes(config);
        let n = (max_tasks.max(1) as usize).min(prefixes.len().max(1));
        Ok((0..n)
            .map(|i| {
                let mine: Vec<&str> = prefixes
                    .iter()
                    .skip(i)
                    .step_by(n)
                    .map(String::as_str)
                    .collect();
                let mut c = config.clone();
                c.set("prefixes", mine.join(","));
                c
            })
            .collect())
    }
}

fn prefixes(config: &Config) -> Vec<String> {
    config.get("prefixes").unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum LineFormat {
    Json,
    Bytes,
}

#[derive(Clone, Debug)]
struct Settings {
    prefixes: Vec<String>,
    topic: Option<String>,
    format: LineFormat,
    poll_interval: Duration,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, message: String| issues.push(ConfigIssue::new(key, message));
        let prefixes = prefixes(config);
        if prefixes.is_empty() {
            issue("prefixes", "names no prefix".into());
        }
        let format = match config.get::<String>("format").unwrap_or_default().trim() {
            "json" => LineFormat::Json,
            "bytes" => LineFormat::Bytes,
            other => {
                issue("format", format!("expects json or bytes, got {other:?}"));
                LineFormat::Json
            }
        };
        let topic = config
            .get::<String>("topic")
            .map(|t| t.trim().to_owned())
            .ok()
            .filter(|t| !t.is_empty());
        if topic.is_none() && format == LineFormat::Bytes {
            issue("topic", "format `bytes` needs a topic".into());
        }
        let poll_interval = match config.get::<u64>("poll.interval.ms") {
            Ok(n) => Duration::from_millis(n),
            Err(_) => {
                issue("poll.interval.ms", "expects a non-negative integer".into());
                Duration::ZERO
            }
        };
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Settings {
            prefixes,
            topic,
            format,
            poll_interval,
        })
    }
}

/// The object being read.
struct Reading {
    key: String,
    /// The content from `base` on (uncompressed).
    data: Vec<u8>,
    /// The content position of `data[0]`.
    base: u64,
    /// Index into `data` of the next line.
    cursor: usize,
    /// The number of the next line (1-based).
    line: u64,
}

/// One prefix: where it stands.
struct Prefix {
    prefix: String,
    partition: JsonMap,
    /// The last key taken from a listing (read or being read).
    last_key: Option<String>,
    /// Where to start in `last_key` when it is opened again (a resumed
    /// offset): position and line.
    resume: Option<(String, u64, u64)>,
    queue: VecDeque<ObjectInfo>,
    reading: Option<Reading>,
    listed_at: Option<Instant>,
}

/// One task: its prefixes, read in turn, through `B`: the worker's store,
/// or a fake in unit tests.
pub struct S3SourceTask<B = Store> {
    settings: Settings,
    store: B,
    prefixes: Vec<Prefix>,
    next: usize,
}

impl<B: BlobCapability> S3SourceTask<B> {
    /// Lists `p` after its last key, when the poll interval has passed.
    fn relist(store: &B, p: &mut Prefix, interval: Duration) -> Result<(), TaskError> {
        if p.listed_at.is_some_and(|t| t.elapsed() < interval) {
            return Ok(());
        }
        p.listed_at = Some(Instant::now());
        let after = p.last_key.clone();
        let mut token: Option<String> = None;
        loop {
            let page = store.list(&p.prefix, after.as_deref(), token.as_deref(), 1000)?;
            p.queue.extend(page.objects);
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        if let Some(o) = p.queue.back() {
            p.last_key = Some(o.key.clone());
        }
        Ok(())
    }

    /// Fetches the next object of `p`, from its resume position if any.
    fn open_next(store: &B, p: &mut Prefix) -> Result<bool, TaskError> {
        let Some(obj) = p.queue.pop_front() else {
            return Ok(false);
        };
        let (start, line) = match p.resume.take() {
            Some((key, pos, line)) if key == obj.key => (pos, line),
            Some(other) => {
                p.resume = Some(other);
                (0, 1)
            }
            None => (0, 1),
        };
        let at = format!("s3://{}/{}", store.bucket(), obj.key);
        let gz = obj.key.ends_with(".gz");
        let (data, base) = if gz {
            let raw = store.get(&obj.key, None)?;
            let mut out = Vec::new();
            if let Err(e) = MultiGzDecoder::new(&raw[..]).read_to_end(&mut out) {
                warn!("s3-source: {at} is not valid gzip after {} bytes of content ({e}); the rest of the object is skipped", out.len());
                counter_add("bad_records", 1);
            }
            let skip = (start as usize).min(out.len());
            out.drain(..skip);
            (out, start)
        } else {
            let range = (start > 0).then_some(ByteRange {
                start,
                length: None,
            });
            match store.get(&obj.key, range) {
                Ok(data) => (data, start),
                Err(BlobError::NotFound(m)) => {
                    warn!("s3-source: {at} is gone, skipped ({m})");
                    (Vec::new(), start)
                }
                Err(e) => return Err(e.into()),
            }
        };
        if start > 0 {
            info!("s3-source: resuming {at} at byte {start} (line {line})");
        }
        p.reading = Some(Reading {
            key: obj.key,
            data,
            base,
            cursor: 0,
            line,
        });
        Ok(true)
    }
}

impl<B: BlobCapability + 'static> SourceTask for S3SourceTask<B> {
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
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
        store.list("", None, None, 1).map_err(TaskError::from)?;
        let mut by_prefix: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
        for po in offsets {
            let Some(Scalar::Text(prefix)) = json_get(&po.partition, PREFIX) else {
                continue;
            };
            let (Some(Scalar::Text(key)), Some(Scalar::Integer(pos))) =
                (json_get(&po.offset, KEY), json_get(&po.offset, POSITION))
            else {
                warn!("s3-source: ignoring an offset of prefix {prefix} without key and position");
                continue;
            };
            let line = match json_get(&po.offset, LINE) {
                Some(Scalar::Integer(l)) => *l as u64,
                _ => 1,
            };
            by_prefix.insert(prefix.clone(), (key.clone(), *pos as u64, line));
        }
        let prefixes = settings
            .prefixes
            .iter()
            .map(|prefix| {
                let resume = by_prefix.remove(prefix);
                if let Some((key, pos, _)) = &resume {
                    info!(
                        "s3-source: prefix {prefix} resuming after s3://{}/{key} byte {pos}",
                        store.bucket()
                    );
                }
                // The object being read at the offset is opened first, from
                // its position; listings go on after it.
                let queue = resume
                    .iter()
                    .map(|(key, _, _)| ObjectInfo {
                        key: key.clone(),
                        size: 0,
                    })
                    .collect();
                Prefix {
                    prefix: prefix.clone(),
                    partition: vec![(PREFIX.into(), Scalar::Text(prefix.clone()))],
                    last_key: resume.as_ref().map(|(k, _, _)| k.clone()),
                    resume,
                    queue,
                    reading: None,
                    listed_at: None,
                }
            })
            .collect();
        Ok(S3SourceTask {
            settings,
            store,
            prefixes,
            next: 0,
        })
    }

    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError> {
        let max = max_records.max(1) as usize;
        let mut batch = SourceBatch::new();
        let n = self.prefixes.len();
        // Each prefix gets a turn; stop when the batch is full or every
        // prefix has nothing now.
        let mut idle = 0;
        while batch.len() < max && idle < n {
            let i = self.next % n;
            let p = &mut self.prefixes[i];
            if p.reading.is_none() {
                if p.queue.is_empty() {
                    Self::relist(&self.store, p, self.settings.poll_interval)?;
                }
                if !Self::open_next(&self.store, p)? {
                    self.next += 1;
                    idle += 1;
                    continue;
                }
            }
            idle = 0;
            // Listed with the first record that comes from it.
            let mut partition_index = None;
            let bucket = self.store.bucket();
            let r = p.reading.as_mut().expect("opened above");
            while batch.len() < max && r.cursor < r.data.len() {
                let rest = &r.data[r.cursor..];
                let (len, next) = match rest.iter().position(|b| *b == b'\n') {
                    Some(i) => (i, i + 1),
                    None => (rest.len(), rest.len()),
                };
                let mut line = &rest[..len];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                let number = r.line;
                r.cursor += next;
                r.line += 1;
                let position = r.base + r.cursor as u64;
                if line.is_empty() {
                    continue;
                }
                let parsed = match self.settings.format {
                    LineFormat::Bytes => Ok(format::Envelope {
                        topic: None,
                        partition: None,
                        offset: None,
                        timestamp: None,
                        key: None,
                        value: Some(line.to_vec()),
                        headers: Vec::new(),
                    }),
                    LineFormat::Json => format::parse_envelope(line),
                };
                let e = match parsed {
                    Ok(e) => e,
                    Err(why) => {
                        warn!(
                            "s3-source: skipping line {number} of s3://{bucket}/{}: {why}",
                            r.key
                        );
                        counter_add("bad_records", 1);
                        continue;
                    }
                };
                let Some(topic) = self.settings.topic.clone().or(e.topic) else {
                    warn!("s3-source: skipping line {number} of s3://{bucket}/{}: no topic in the envelope and none configured", r.key);
                    counter_add("bad_records", 1);
                    continue;
                };
                let topic = batch.add_topic(&topic);
                let partition = *partition_index
                    .get_or_insert_with(|| batch.add_partition(p.partition.clone()));
                batch.push(SourceRecord {
                    topic,
                    partition,
                    key: e.key.as_deref(),
                    value: e.value.as_deref(),
                    headers: &e.headers,
                    timestamp: e.timestamp,
                });
                batch.set_offset(vec![
                    (KEY.into(), Scalar::Text(r.key.clone())),
                    (POSITION.into(), Scalar::Integer(position as i64)),
                    (LINE.into(), Scalar::Integer(r.line as i64)),
                ]);
            }
            if r.cursor >= r.data.len() {
                p.reading = None;
                // The next prefix's turn.
                self.next += 1;
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_sdk::acceptance;
    use tributary_sdk::testing::{self, FakeBlob};

    #[test]
    fn s3_source_keeps_the_contract_and_resumes_inside_an_object() {
        acceptance::description(&S3Source::describe());
        let store = FakeBlob::new("bucket");
        store.install("default");
        let lines: Vec<String> = (0..12).map(|i| format!("line {i}")).collect();
        store.insert("in/a.txt", lines[..7].join("\n") + "\n");
        store.insert("in/b.txt", lines[7..].join("\n") + "\n");
        let config = testing::config(
            &S3Source::describe().keys,
            &[("prefixes", "in/"), ("topic", "t"), ("format", "bytes")],
        );
        let seen = acceptance::source_resumes(
            |offsets| S3SourceTask::<FakeBlob>::open(config.clone(), offsets),
            12,
            4,
        );
        let values: Vec<String> = seen.iter().map(|r| r.value_text()).collect();
        assert_eq!(values, lines);
    }
}
