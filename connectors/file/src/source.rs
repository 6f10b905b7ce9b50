//! `file-source`: follows a text file and produces one record per line, like
//! Kafka Connect's FileStreamSource.
//!
//! This module owns the source's description and validation, and the task
//! that reads lines, tracks its byte position (the committed offset), and
//! notices when the file is truncated or replaced under it.
//!
//! Offsets use Kafka Connect's key names: the source partition is
//! `{"filename": <path>}`, the offset `{"position": <byte just after the
//! line's newline>}`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use tributary_sdk::log::counter_add;
use tributary_sdk::{
    info, json_get, warn, Config, ConfigIssue, Description, JsonMap, Key, PartitionOffset, Scalar,
    Source, SourceBatch, SourceRecord, SourceTask, TaskError,
};

/// Source partition key: the file's path.
const FILENAME: &str = "filename";
/// Offset key: the byte position just after the last produced line.
const POSITION: &str = "position";
/// Reads go through a buffer this large.
const READ_BUFFER: usize = 1 << 20;
/// How many leading bytes identify a file (to notice it was replaced).
const FINGERPRINT_LEN: usize = 256;
/// At end of file, look for a replaced file at most this often.
const REPLACE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The `file-source` connector.
pub struct FileSource;

impl Source for FileSource {
    type Task = FileSourceTask;

    fn describe() -> Description {
        Description::source("file-source", crate::VERSION)
            .summary("Follows a text file and produces one record per line.")
            .key(
                Key::file_read("file")
                    .doc("The file to read; lines appended later are produced as they arrive."),
            )
            .key(Key::string("topic").doc("The Kafka topic the lines are produced to."))
            .key(
                Key::integer("batch.size")
                    .default("2000")
                    .doc("The most records one poll returns."),
            )
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for name in ["file", "topic"] {
            if config.raw(name).is_some_and(|v| v.trim().is_empty()) {
                issues.push(ConfigIssue::new(name, "must not be empty"));
            }
        }
        if let Err(issue) = batch_size(config) {
            issues.push(issue);
        }
        issues
    }

    /// Exactly one task: one file is read by one reader.
    fn task_configs(config: &Config, _max_tasks: u32) -> Result<Vec<Config>, String> {
        Ok(vec![config.clone()])
    }
}

/// `batch.size`, which must be between 1 and `u32::MAX`.
fn batch_size(config: &Config) -> Result<u32, ConfigIssue> {
    let n = config.get::<i64>("batch.size")?;
    if n < 1 {
        return Err(ConfigIssue::new(
            "batch.size",
            format!("must be at least 1, not {n}"),
        ));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The one task of a `file-source`: a follower of one file.
///
/// `commit` needs nothing: a file has no upstream to acknowledge, and the
/// worker stores the offsets.
pub struct FileSourceTask {
    /// The file as configured: opened again to look for a replacement.
    path: String,
    topic: String,
    batch_size: u32,
    /// `{"filename": path}`, the one source partition of every batch.
    partition: JsonMap,
    reader: BufReader<File>,
    /// Byte position just after the last complete line read.
    position: u64,
    /// Bytes read past `position`: the start of a line whose newline has not
    /// arrived yet. Between polls it holds at most that partial line.
    pending: Vec<u8>,
    /// The first bytes (up to [`FINGERPRINT_LEN`]) of the file being read.
    fingerprint: Vec<u8>,
    /// The last read stopped at the end of the file.
    at_eof: bool,
    /// When we last looked for a replaced file.
    last_replace_check: Option<Instant>,
}

impl SourceTask for FileSourceTask {
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
        let path: String = config.get("file")?;
        let topic: String = config.get("topic")?;
        let batch_size = batch_size(&config)
            .map_err(|i| TaskError::Fatal(format!("config key `{}`: {}", i.key, i.message)))?;

        let mut file = File::open(&path).map_err(|e| {
            TaskError::Fatal(if e.kind() == ErrorKind::NotFound {
                format!("{path} does not exist")
            } else {
                format!("cannot open {path}: {e}")
            })
        })?;
        let fingerprint = read_head(&mut file).map_err(|e| read_error(&path, e))?;
        let len = file.metadata().map_err(|e| read_error(&path, e))?.len();

        let mut position = resume_position(&path, &offsets);
        if position > len {
            warn!(
                "{path} is shorter ({len} bytes) than the committed position {position}: \
                 it was truncated, reading again from the start"
            );
            counter_add("file_truncated", 1);
            position = 0;
        }
        file.seek(SeekFrom::Start(position))
            .map_err(|e| read_error(&path, e))?;
        info!("reading {path} from byte {position}");

        Ok(FileSourceTask {
            partition: vec![(FILENAME.into(), Scalar::Text(path.clone()))],
            path,
            topic,
            batch_size,
            reader: BufReader::with_capacity(READ_BUFFER, file),
            position,
            pending: Vec::new(),
            fingerprint,
            at_eof: false,
            last_replace_check: None,
        })
    }

    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError> {
        let limit = self.batch_size.min(max_records) as usize;
        let mut batch = SourceBatch::new();
        batch.add_topic(&self.topic);
        batch.add_partition(self.partition.clone());
        if self.read_lines(limit, &mut batch)? && self.check_rotation()? && batch.is_empty() {
            // Started over on a truncated or new file: read it now rather
            // than a poll later.
            self.read_lines(limit, &mut batch)?;
        }
        Ok(batch)
    }
}

impl FileSourceTask {
    /// Appends complete lines to `batch` (topic 0, partition 0) until it
    /// holds `limit`, and sets the offset on the last one appended. True if
    /// it stopped at the end of the file.
    fn read_lines(&mut self, limit: usize, batch: &mut SourceBatch) -> Result<bool, TaskError> {
        if self.at_eof {
            // A WASI file read stream that reported the end stays at the end;
            // seeking (to where we are) opens a fresh one that sees appends.
            let read_position = self.read_position();
            self.reader
                .seek(SeekFrom::Start(read_position))
                .map_err(|e| read_error(&self.path, e))?;
            self.at_eof = false;
        }
        let first = batch.len();
        while batch.len() < limit {
            self.reader
                .read_until(b'\n', &mut self.pending)
                .map_err(|e| read_error(&self.path, e))?;
            if self.pending.last() != Some(&b'\n') {
                // The end of the file; a partial line stays in `pending`.
                self.at_eof = true;
                break;
            }
            self.position += self.pending.len() as u64;
            batch.push(SourceRecord {
                value: Some(strip_newline(&self.pending)),
                ..SourceRecord::default()
            });
            self.pending.clear();
        }
        if batch.len() > first {
            batch.set_offset(vec![(
                POSITION.into(),
                Scalar::Integer(i64::try_from(self.position).unwrap_or(i64::MAX)),
            )]);
        }
        Ok(self.at_eof)
    }

    /// Byte position the reader has consumed up to, partial line included.
    fn read_position(&self) -> u64 {
        self.position + self.pending.len() as u64
    }

    /// At end of file: starts over if the file was truncated below what we
    /// read, or (at most every [`REPLACE_CHECK_INTERVAL`]) if another file
    /// now has its path. True if it started over.
    fn check_rotation(&mut self) -> Result<bool, TaskError> {
        let len = self
            .reader
            .get_ref()
            .metadata()
            .map_err(|e| read_error(&self.path, e))?
            .len();
        if len < self.read_position() {
            warn!(
                "{} was truncated to {len} bytes, below position {} already read: \
                 reading again from the start",
                self.path,
                self.read_position()
            );
            counter_add("file_truncated", 1);
            self.reader
                .seek(SeekFrom::Start(0))
                .map_err(|e| read_error(&self.path, e))?;
            self.restart(Vec::new());
            return Ok(true);
        }
        if len > self.read_position() {
            // More arrived since we hit the end: read it before switching files.
            return Ok(false);
        }
        let now = Instant::now();
        if self
            .last_replace_check
            .is_some_and(|at| now.duration_since(at) < REPLACE_CHECK_INTERVAL)
        {
            return Ok(false);
        }
        self.last_replace_check = Some(now);

        let mut candidate = match File::open(&self.path) {
            Ok(file) => file,
            // Moved away and not replaced (yet): keep following what we have.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(read_error(&self.path, e)),
        };
        let head = read_head(&mut candidate).map_err(|e| read_error(&self.path, e))?;
        if self.fingerprint.len() < FINGERPRINT_LEN {
            // The file was short when we took its fingerprint; take it again
            // now (after reading `head`, so a same file can only have grown).
            // The read buffer is empty at end of file, so reading the file
            // underneath and seeking back loses nothing.
            let read_position = self.read_position();
            self.fingerprint =
                read_head(self.reader.get_mut()).map_err(|e| read_error(&self.path, e))?;
            self.reader
                .seek(SeekFrom::Start(read_position))
                .map_err(|e| read_error(&self.path, e))?;
        }
        if self.fingerprint.starts_with(&head) {
            // The same file, or an empty one that cannot be told apart yet.
            return Ok(false);
        }
        let dropped = self.pending.len();
        warn!(
            "{} was replaced by another file at position {}{}: reading the new file from the start",
            self.path,
            self.position,
            if dropped > 0 {
                format!(" (dropping an unterminated last line of {dropped} bytes)")
            } else {
                String::new()
            }
        );
        counter_add("file_replaced", 1);
        candidate
            .seek(SeekFrom::Start(0))
            .map_err(|e| read_error(&self.path, e))?;
        self.reader = BufReader::with_capacity(READ_BUFFER, candidate);
        self.restart(head);
        Ok(true)
    }

    /// Reading starts over at byte 0 of a file whose first bytes are
    /// `fingerprint`.
    fn restart(&mut self, fingerprint: Vec<u8>) {
        self.at_eof = false;
        self.position = 0;
        self.pending.clear();
        self.fingerprint = fingerprint;
    }
}

/// The committed position for `path` among `offsets`, or 0.
fn resume_position(path: &str, offsets: &[PartitionOffset]) -> u64 {
    offsets
        .iter()
        .find(|o| matches!(json_get(&o.partition, FILENAME), Some(Scalar::Text(f)) if f == path))
        .and_then(|o| match json_get(&o.offset, POSITION) {
            Some(Scalar::Integer(n)) => u64::try_from(*n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Reads the first (up to [`FINGERPRINT_LEN`]) bytes of `file`; leaves the
/// file's cursor where that read ended.
fn read_head(file: &mut File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(FINGERPRINT_LEN);
    file.take(FINGERPRINT_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// `line` without its trailing `\n` or `\r\n`.
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A failed read of `path`: the worker retries with backoff.
fn read_error(path: &str, e: io::Error) -> TaskError {
    TaskError::Retriable(format!("cannot read {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_line_endings() {
        assert_eq!(strip_newline(b"abc\n"), b"abc");
        assert_eq!(strip_newline(b"abc\r\n"), b"abc");
        assert_eq!(strip_newline(b"\n"), b"");
        assert_eq!(strip_newline(b"a\rb\n"), b"a\rb");
    }

    #[test]
    fn resumes_only_for_this_file() {
        let offsets = vec![
            PartitionOffset {
                partition: vec![(FILENAME.into(), Scalar::Text("/other".into()))],
                offset: vec![(POSITION.into(), Scalar::Integer(7))],
            },
            PartitionOffset {
                partition: vec![(FILENAME.into(), Scalar::Text("/data/in.txt".into()))],
                offset: vec![(POSITION.into(), Scalar::Integer(42))],
            },
        ];
        assert_eq!(resume_position("/data/in.txt", &offsets), 42);
        assert_eq!(resume_position("/missing", &offsets), 0);
    }

    #[test]
    fn file_source_keeps_the_contract() {
        use tributary_sdk::{acceptance, testing};
        acceptance::description(&FileSource::describe());
        let dir = std::env::temp_dir().join(format!("file-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("in.txt");
        let lines: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let path = file.to_str().unwrap();
        let config = testing::config(
            &FileSource::describe().keys,
            &[("file", path), ("topic", "lines"), ("batch.size", "3")],
        );
        let seen = acceptance::source_resumes(|o| FileSourceTask::open(config.clone(), o), 20, 5);
        let values: Vec<String> = seen.iter().map(|r| r.value_text()).collect();
        assert_eq!(values, lines);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
