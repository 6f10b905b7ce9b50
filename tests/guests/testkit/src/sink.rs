//! `testkit-sink`: a file sink that refuses some records, for testing the
//! worker's error policy (`errors.tolerance`, dead letter queue). It logs
//! the size of every `put`.
//!
//! Appends each record's value as a line to `file`, except records whose
//! value contains `reject`: those get `bad-record`. Records whose value
//! contains `retry` get `retriable` the first `retry.times` times they are
//! offered.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use tributary_sdk::{
    info, Config, Description, Key, PutResult, Sink, SinkBatch, SinkTask, TaskError,
};

/// The `testkit-sink` connector.
pub struct TestkitSink;

impl Sink for TestkitSink {
    type Task = TestkitSinkTask;

    fn describe() -> Description {
        Description::sink("testkit-sink", env!("CARGO_PKG_VERSION"))
            .summary("A test sink that refuses or delays chosen records.")
            .key(Key::file_write("file").doc("The file accepted values are appended to."))
            .key(
                Key::string("reject")
                    .default("REJECT")
                    .doc("Records whose value contains this are bad records."),
            )
            .key(
                Key::string("retry")
                    .default("RETRY")
                    .doc("Records whose value contains this are retriable at first."),
            )
            .key(
                Key::integer("retry.times")
                    .default("2")
                    .doc("How often such a record is retriable before it is accepted."),
            )
    }

    fn task_configs(config: &Config, _max_tasks: u32) -> Result<Vec<Config>, String> {
        Ok(vec![config.clone()])
    }
}

/// The one task of a `testkit-sink`.
pub struct TestkitSinkTask {
    out: BufWriter<File>,
    reject: String,
    retry: String,
    retry_times: u32,
    /// How often each (partition, offset) was offered as retriable.
    offered: HashMap<(i32, i64), u32>,
}

impl SinkTask for TestkitSinkTask {
    fn open(config: Config) -> Result<Self, TaskError> {
        let path: String = config.get("file")?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TaskError::Fatal(format!("cannot open {path}: {e}")))?;
        Ok(TestkitSinkTask {
            out: BufWriter::new(file),
            reject: config.get("reject")?,
            retry: config.get("retry")?,
            retry_times: config.get("retry.times")?,
            offered: HashMap::new(),
        })
    }

    fn put(&mut self, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError> {
        let bytes: usize = batch
            .records()
            .map(|r| r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len))
            .sum();
        info!("put of {} records, {bytes} bytes", batch.len());
        let mut results = Vec::with_capacity(batch.len());
        for r in batch {
            let value = String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned();
            if value.contains(&self.reject) {
                results.push(PutResult::BadRecord(format!(
                    "value contains {:?}",
                    self.reject
                )));
                continue;
            }
            if value.contains(&self.retry) {
                let n = self.offered.entry((r.partition, r.offset)).or_default();
                if *n < self.retry_times {
                    *n += 1;
                    results.push(PutResult::Retriable(format!("not yet ({n})")));
                    continue;
                }
            }
            self.out
                .write_all(value.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
                .map_err(|e| TaskError::Fatal(e.to_string()))?;
            results.push(PutResult::Ok);
        }
        Ok(results)
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .map_err(|e| TaskError::Retriable(e.to_string()))
    }
}
