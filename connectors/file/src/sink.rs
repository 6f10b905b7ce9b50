//! `file-sink`: appends the value of every record to a file, one line per
//! record, like Kafka Connect's FileStreamSink.
//!
//! This module owns the sink's description, its single-task split, and the
//! task that buffers appends and makes them durable on `flush`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use tributary_sdk::log::counter_add;
use tributary_sdk::{
    debug, warn, Config, ConfigKey, ConfigType, ConnectorKind, Description, PutResult, Sink,
    SinkBatch, SinkTask, TaskError,
};

/// Appends are buffered in memory up to this many bytes between writes.
const WRITE_BUFFER: usize = 1 << 20;

/// The `file-sink` connector.
pub struct FileSink;

impl Sink for FileSink {
    type Task = FileSinkTask;

    fn describe() -> Description {
        Description {
            name: "file-sink".into(),
            version: crate::VERSION.into(),
            kind: ConnectorKind::Sink,
            summary: "Appends the value of every record to a file, one line per record.".into(),
            reads_headers: false, // values only
            config: vec![ConfigKey {
                name: "file".into(),
                type_: ConfigType::FileWrite,
                default: None,
                doc: "The file to append to; it is created if it does not exist.".into(),
                secret: false,
            }],
        }
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
        let path = config.require("file")?.to_owned();
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
