//! `testkit-source`: a deliberately hostile source connector for tributary's
//! end-to-end tests and benchmarks; and `testkit-sink` (see `sink.rs`).
//!
//! This crate owns the test guest. Its `mode` says what `poll` does:
//!
//! - `generate`: produces `records` records of exactly `record.bytes` bytes,
//!   then empty batches forever. Every record carries its offset
//!   (`{"seq": n}`, the number of records produced through it), so a task
//!   resumes exactly after the last committed one.
//! - `spin`: loops forever; the worker must interrupt it by its deadline.
//! - `alloc`: allocates without bound; the worker's memory limit must stop it.
//! - `escape`: reads `path`, which the worker must not have granted; succeeds
//!   with the file's content as a record only if the sandbox leaks.
//! - `panic`: panics (the guest traps).
//!
//! In the hostile modes the task first behaves like `generate` for `after`
//! records, then misbehaves.

use std::hint::black_box;

use tributary_sdk::{
    json_get, Config, ConfigIssue, Description, JsonMap, Key, PartitionOffset, Scalar, Source,
    SourceBatch, SourceRecord, SourceTask, TaskError,
};

mod sink;

tributary_sdk::export_source!(crate::Testkit);
tributary_sdk::export_sink!(crate::sink::TestkitSink);

/// Offset key: how many records were produced through this one.
const SEQ: &str = "seq";
/// Every record's value starts with this, followed by its number.
const LABEL: &[u8] = b"record-";
/// The record number is zero-padded to at least this many digits.
const DIGITS: usize = 9;

/// What `poll` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Generate,
    Spin,
    Alloc,
    Escape,
    Panic,
}

impl Mode {
    const NAMES: &'static str = "generate, spin, alloc, escape, panic";

    fn parse(name: &str) -> Option<Mode> {
        Some(match name {
            "generate" => Mode::Generate,
            "spin" => Mode::Spin,
            "alloc" => Mode::Alloc,
            "escape" => Mode::Escape,
            "panic" => Mode::Panic,
            _ => return None,
        })
    }
}

/// The `testkit-source` connector.
pub struct Testkit;

impl Source for Testkit {
    type Task = TestkitTask;

    fn describe() -> Description {
        Description::source("testkit-source", env!("CARGO_PKG_VERSION"))
            .summary(
                "A hostile test source: generates records, spins, allocates, escapes or panics.",
            )
            .key(Key::string("mode").doc("What poll does: generate, spin, alloc, escape or panic."))
            .key(
                Key::string("topic")
                    .default("testkit")
                    .doc("The Kafka topic the records are produced to."),
            )
            .key(
                Key::integer("records")
                    .default("1000")
                    .doc("How many records generate mode produces in total."),
            )
            .key(
                Key::integer("record.bytes")
                    .default("100")
                    .doc("The size of every record's value in bytes."),
            )
            .key(
                Key::string("path")
                    .default("/etc/hostname")
                    .doc("The file escape mode tries to read."),
            )
            .key(
                Key::integer("after")
                    .default("0")
                    .doc("How many records a hostile mode produces normally before it misbehaves."),
            )
            .key(Key::boolean("offset.every.record").default("true").doc(
                "Put the offset on every record (true) or only on the last of a batch (false).",
            ))
            .key(
                Key::string("token")
                    .default("")
                    .doc("A secret nothing uses: tests check it is never shown.")
                    .secret(),
            )
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        match config.raw("mode") {
            Some(mode) if Mode::parse(mode).is_none() => issues.push(ConfigIssue::new(
                "mode",
                format!("unknown mode {mode:?}; use one of {}", Mode::NAMES),
            )),
            _ => {}
        }
        for name in ["records", "record.bytes", "after"] {
            if let Err(message) = non_negative(config, name) {
                issues.push(ConfigIssue::new(name, message));
            }
        }
        issues
    }
}

/// Integer config `name` (or its default); the error says why the value is
/// not a non-negative integer.
fn non_negative(config: &Config, name: &str) -> Result<u64, String> {
    let n = config.get::<i64>(name).map_err(|e| e.message)?;
    u64::try_from(n).map_err(|_| format!("must not be negative, not {n}"))
}

/// Like [`non_negative`], as the fatal error `open` returns.
fn non_negative_or_fatal(config: &Config, name: &str) -> Result<u64, TaskError> {
    non_negative(config, name)
        .map_err(|message| TaskError::Fatal(format!("config key `{name}`: {message}")))
}

/// The one task of a `testkit-source`.
pub struct TestkitTask {
    mode: Mode,
    topic: String,
    /// Records to produce normally: `records` in generate mode, `after` in
    /// the hostile ones.
    total: u64,
    /// The next record's number (0-based), which is also the count produced.
    next: u64,
    /// `record.bytes` of `x`: every value starts as a copy of this.
    padding: Vec<u8>,
    /// The file escape mode reads.
    path: String,
    /// `{"task": "0"}`, the one source partition.
    partition: JsonMap,
    /// What alloc mode holds on to.
    hoard: Vec<Vec<u8>>,
    /// Offsets on every record, or only on the last of a batch.
    offset_every_record: bool,
}

impl SourceTask for TestkitTask {
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
        let raw_mode: String = config.get("mode")?;
        let mode = Mode::parse(&raw_mode).ok_or_else(|| {
            TaskError::Fatal(format!(
                "unknown mode {raw_mode:?}; use one of {}",
                Mode::NAMES
            ))
        })?;
        let total = if mode == Mode::Generate {
            non_negative_or_fatal(&config, "records")?
        } else {
            non_negative_or_fatal(&config, "after")?
        };
        let record_bytes = usize::try_from(non_negative_or_fatal(&config, "record.bytes")?)
            .map_err(|_| TaskError::Fatal("config key `record.bytes` is too large".into()))?;
        let partition: JsonMap = vec![("task".into(), Scalar::Text("0".into()))];
        let next = offsets
            .iter()
            .find(|o| matches!(json_get(&o.partition, "task"), Some(Scalar::Text(t)) if t == "0"))
            .and_then(|o| match json_get(&o.offset, SEQ) {
                Some(Scalar::Integer(n)) => u64::try_from(*n).ok(),
                _ => None,
            })
            .unwrap_or(0);
        Ok(TestkitTask {
            mode,
            topic: config.get("topic")?,
            total,
            next,
            padding: vec![b'x'; record_bytes],
            path: config.get("path")?,
            partition,
            hoard: Vec::new(),
            offset_every_record: config.get("offset.every.record")?,
        })
    }

    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError> {
        if self.next < self.total {
            return Ok(self.generate(max_records));
        }
        match self.mode {
            Mode::Generate => Ok(SourceBatch::new()),
            Mode::Spin => spin(),
            Mode::Alloc => self.alloc(),
            Mode::Escape => self.escape(),
            Mode::Panic => panic!("testkit: deliberate panic"),
        }
    }
}

impl TestkitTask {
    /// Up to `max_records` of the records still to produce.
    fn generate(&mut self, max_records: u32) -> SourceBatch {
        let count = (self.total - self.next).min(u64::from(max_records));
        let end = self.next + count;
        let mut batch = self.batch();
        let mut value = Vec::with_capacity(self.padding.len());
        for n in self.next..end {
            value.clear();
            value.extend_from_slice(&self.padding);
            write_label(&mut value, n);
            self.push(
                &mut batch,
                &value,
                n + 1,
                self.offset_every_record || n + 1 == end,
            );
        }
        self.next += count;
        batch
    }

    /// A batch listing the task's topic and source partition.
    fn batch(&self) -> SourceBatch {
        let mut batch = SourceBatch::new();
        batch.add_topic(&self.topic);
        batch.add_partition(self.partition.clone());
        batch
    }

    /// Pushes a record with `value`, and offset `{"seq": seq}` if `offset`.
    fn push(&self, batch: &mut SourceBatch, value: &[u8], seq: u64, offset: bool) {
        batch.push(SourceRecord {
            value: Some(value),
            ..SourceRecord::default()
        });
        if offset {
            batch.set_offset(vec![(
                SEQ.into(),
                Scalar::Integer(i64::try_from(seq).unwrap_or(i64::MAX)),
            )]);
        }
    }

    /// Holds on to 1 MiB after 1 MiB until the worker's memory limit stops it.
    fn alloc(&mut self) -> ! {
        loop {
            self.hoard.push(vec![0xA5; 1 << 20]);
            black_box(&self.hoard);
        }
    }

    /// Reads `path`, which the sandbox must refuse.
    fn escape(&mut self) -> Result<SourceBatch, TaskError> {
        let content = std::fs::read(&self.path)
            .map_err(|e| TaskError::Fatal(format!("cannot read {}: {e}", self.path)))?;
        let mut batch = self.batch();
        self.push(&mut batch, &content, self.next, true);
        Ok(batch)
    }
}

/// Loops forever in a way the optimizer cannot remove.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Writes `record-<n>` (`n` zero-padded to [`DIGITS`] digits) over the start
/// of `value`, cut off at the value's length.
fn write_label(value: &mut [u8], n: u64) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = &digits[start.min(digits.len() - DIGITS)..];
    for (slot, byte) in value.iter_mut().zip(LABEL.iter().chain(digits)) {
        *slot = *byte;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(n: u64, len: usize) -> String {
        let mut value = vec![b'x'; len];
        write_label(&mut value, n);
        String::from_utf8(value).unwrap()
    }

    #[test]
    fn labels_are_padded_and_cut() {
        assert_eq!(label(42, 20), "record-000000042xxxx");
        assert_eq!(label(0, 16), "record-000000000");
        assert_eq!(label(1_234_567_890, 17), "record-1234567890");
        assert_eq!(label(42, 5), "recor");
        assert_eq!(label(u64::MAX, 27), format!("record-{}", u64::MAX));
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("spin"), Some(Mode::Spin));
        assert_eq!(Mode::parse("Spin"), None);
    }
}
