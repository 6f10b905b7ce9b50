//! The SDK's own types for what a task returns and receives across the
//! contract, and their conversions to and from the generated records.
//!
//! Connector code uses these, never the generated records: the contract
//! can then grow a field without breaking a connector's source. Only the
//! export glue (`lib.rs`) converts.

use std::fmt;

use crate::bindings::sink::exports::tributary::connector::sink_connector as wit_sink;
use crate::bindings::source::exports::tributary::connector::source_connector as wit_source;
use crate::bindings::source::tributary::connector::types as wit;
use crate::JsonMap;

/// Why a task call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// A transient condition (a file not there yet, a database away): the
    /// worker retries the call with backoff, within `errors.retry.timeout`.
    Retriable(String),
    /// The task cannot go on: the worker stops it and keeps the message as
    /// the task's failure reason.
    Fatal(String),
}

impl TaskError {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            TaskError::Retriable(m) | TaskError::Fatal(m) => m,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Retriable(m) => write!(f, "retriable: {m}"),
            TaskError::Fatal(m) => write!(f, "fatal: {m}"),
        }
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for wit::TaskError {
    fn from(e: TaskError) -> wit::TaskError {
        match e {
            TaskError::Retriable(m) => wit::TaskError::Retriable(m),
            TaskError::Fatal(m) => wit::TaskError::Fatal(m),
        }
    }
}

/// What became of one record handed to `put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutResult {
    /// Accepted: durable after the next successful flush.
    Ok,
    /// Not accepted now; the worker offers it again later.
    Retriable(String),
    /// Can never be written: the worker applies the error policy
    /// (`errors.tolerance`, dead letter queue) with this reason.
    BadRecord(String),
}

impl From<PutResult> for wit_sink::PutResult {
    fn from(r: PutResult) -> wit_sink::PutResult {
        match r {
            PutResult::Ok => wit_sink::PutResult::Ok,
            PutResult::Retriable(m) => wit_sink::PutResult::Retriable(m),
            PutResult::BadRecord(m) => wit_sink::PutResult::BadRecord(m),
        }
    }
}

/// How far the worker may commit one topic partition after a flush: no
/// further than `offset`, the first accepted record of the partition that
/// is not durable yet (Kafka Connect's `preCommit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitLimit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl From<CommitLimit> for wit_sink::CommitLimit {
    fn from(c: CommitLimit) -> wit_sink::CommitLimit {
        wit_sink::CommitLimit {
            topic: c.topic,
            partition: c.partition,
            offset: c.offset,
        }
    }
}

/// A source partition with its offset: what a source task resumes from
/// and learns is durable.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionOffset {
    pub partition: JsonMap,
    pub offset: JsonMap,
}

impl From<wit_source::PartitionOffset> for PartitionOffset {
    fn from(p: wit_source::PartitionOffset) -> PartitionOffset {
        PartitionOffset {
            partition: p.partition,
            offset: p.offset,
        }
    }
}

impl From<PartitionOffset> for wit_source::PartitionOffset {
    fn from(p: PartitionOffset) -> wit_source::PartitionOffset {
        wit_source::PartitionOffset {
            partition: p.partition,
            offset: p.offset,
        }
    }
}
