//! `file-sink`: appends the value of every record to a file, one line per
//! record, like Kafka Connect's FileStreamSink.
//!
//! This module owns the sink's description, its single-task split, and the
//! task that buffers appends and makes them durable on `flush`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use tributary_sdk::log::counter_add;
use tributary_sdk::{
    debug, warn, Config, Description, Key, PutResult, Sink, SinkBatch, SinkTask, TaskError,
};

/// Appends are buffered in memory up to this many bytes between writes.
const WRITE_BUFFER: usize = 1 << 20;

/// The `file-sink` connector.
pub struct FileSink;

impl Sink for FileSink {
    type Task = FileSinkTask;

    fn describe() -> Description {
        Description::sink("file-sink", crate::VERSION)
            .summary("Appends the value of every record to a file, one line per record.")
            .key(
                Key::file_write("file")
                    .doc("The file to append to; it is created if it does not exist."),
            )
    }

    /// Exactly one task: several tasks appending to one file would interleave
    /// their lines.
    fn task_configs(config: &Config, _max_tasks: u32) -> Result<Vec<Config>, String> {
        Ok(vec![config.clone()])
    }
}

/// The one task of a `file-sink`: a buffered appender to the file.
pub struct FileSinkTask {
    /// The file as configured, for messages.
    path: String,
    writer: BufWriter<File>,
}

impl FileSinkTask {
    /// Writes buffered lines to the file and syncs it to storage.
    fn flush_and_sync(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_all()
    }
}

impl SinkTask for FileSinkTask {
    fn open(config: Config) -> Result<Self, TaskError> {
        let path: String = config.get("file")?;
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| TaskError::Fatal(format!("cannot open {path} for appending: {e}")))?;
        debug!("appending to {path}");
        Ok(FileSinkTask {
            path,
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
        })
    }

    fn put(&mut self, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError> {
        let mut tombstones = 0;
        for record in batch {
            let Some(value) = record.value else {
                tombstones += 1;
                continue;
            };
            self.writer
                .write_all(value)
                .and_then(|()| self.writer.write_all(b"\n"))
                .map_err(|e| TaskError::Retriable(format!("cannot write to {}: {e}", self.path)))?;
        }
        if tombstones > 0 {
            counter_add("tombstones_skipped", tombstones);
        }
        Ok(vec![PutResult::Ok; batch.len()])
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        self.flush_and_sync()
            .map_err(|e| TaskError::Retriable(format!("cannot flush {}: {e}", self.path)))
    }

    fn close(&mut self) {
        if let Err(e) = self.flush_and_sync() {
            warn!("closing {}: cannot flush: {e}", self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_sdk::acceptance;
    use tributary_sdk::testing::{self, Record};

    #[test]
    fn file_sink_keeps_the_contract_and_appends_values_as_lines() {
        acceptance::description(&FileSink::describe());
        let dir = std::env::temp_dir().join(format!("file-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out.txt");
        let config = testing::config(
            &FileSink::describe().keys,
            &[("file", file.to_str().unwrap())],
        );
        let mut task = FileSinkTask::open(config).unwrap();
        let batch = testing::sink_batch(&[
            Record::new("t", 0).value("one"),
            Record::new("t", 1),
            Record::new("t", 2).value("two"),
        ]);
        let results = acceptance::put(&mut task, &batch).unwrap();
        assert!(results.iter().all(|r| *r == PutResult::Ok));
        task.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one\ntwo\n");
        assert_eq!(testing::counter("tombstones_skipped"), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
