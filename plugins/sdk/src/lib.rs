//! # tributary-sdk: write a tributary connector in Rust
//!
//! A connector is a WebAssembly component that the tributary worker loads.
//! This crate turns writing one into implementing a trait:
//!
//! - a source implements [`Source`] (what it is, how to split work) and
//!   [`SourceTask`] (`poll` batches of records, learn what was `commit`ted);
//! - a sink implements [`Sink`] and [`SinkTask`] (`put` batches, `flush`;
//!   `pre_commit` to hold partitions back at records not durable yet).
//!
//! Then one macro line exports it: [`export_source!`], [`export_sink!`], or
//! both in the same crate for a plugin that provides a source and a sink.
//! Build with `cargo build --target wasm32-wasip2 --release` and put the
//! `.wasm` file in the worker's `plugin.path`.
//!
//! The guest never opens a socket and never holds a credential: the worker
//! owns Kafka, offsets, database connections ([`sql`]) and object store
//! clients ([`blob`]). Files are visible only in the directories the connector's
//! config grants (keys of type `file-read`, `file-write`, `dir-read`,
//! `dir-write`). See `docs/plugins.md` for a complete example.

pub mod bindings;
pub mod blob;
mod config;
pub mod log;
mod sink_batch;
mod source_batch;
pub mod sql;

pub use config::Config;
pub use sink_batch::{SinkBatch, SinkRecord};
pub use source_batch::{SourceBatch, SourceRecord};

use bindings::sink::exports::tributary::connector::sink_connector as wit_sink;
use bindings::source::exports::tributary::connector::source_connector as wit_source;

pub use bindings::source::tributary::connector::types::{
    ConfigIssue, ConfigKey, ConfigType, ConnectorKind, Description, Header, Scalar, TaskError,
};
pub use wit_sink::{CommitLimit, PutResult};
pub use wit_source::PartitionOffset;

/// A config key for a connector's [`Description`]: not secret.
pub fn config_key(name: &str, type_: ConfigType, default: Option<&str>, doc: &str) -> ConfigKey {
    ConfigKey {
        name: name.into(),
        type_,
        default: default.map(Into::into),
        doc: doc.into(),
        secret: false,
    }
}

/// A problem with config key `key`, for `validate`.
pub fn config_issue(key: &str, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        key: key.into(),
        message: message.into(),
    }
}

/// A JSON object with primitive values: a source partition or offset.
pub type JsonMap = Vec<(String, Scalar)>;

/// Looks up `key` in a partition or offset map.
pub fn json_get<'a>(map: &'a JsonMap, key: &str) -> Option<&'a Scalar> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A source connector: describes itself and splits its work into tasks.
pub trait Source: 'static {
    /// The task type that does the reading.
    type Task: SourceTask;

    /// Name, version and config keys. Must be the same on every call.
    fn describe() -> Description;

    /// Checks the config beyond declared types; empty means valid.
    fn validate(_config: &Config) -> Vec<ConfigIssue> {
        Vec::new()
    }

    /// Splits the work into at most `max_tasks` task configs. The default
    /// runs one task with the connector's config.
    fn task_configs(config: &Config, _max_tasks: u32) -> Result<Vec<Config>, String> {
        Ok(vec![config.clone()])
    }
}

/// One source task. The worker calls it from one thread at a time.
pub trait SourceTask: Sized + 'static {
    /// Opens the task with its config and the last durable offsets.
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError>;

    /// Returns what is available now, at most `max_records`; never blocks.
    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError>;

    /// These offsets are durable now.
    fn commit(&mut self, _offsets: Vec<PartitionOffset>) {}

    /// Last call: release resources.
    fn close(&mut self) {}
}

/// A sink connector: describes itself and splits its work into tasks.
pub trait Sink: 'static {
    /// The task type that does the writing.
    type Task: SinkTask;

    /// Name, version and config keys. Must be the same on every call.
    fn describe() -> Description;

    /// Checks the config beyond declared types; empty means valid.
    fn validate(_config: &Config) -> Vec<ConfigIssue> {
        Vec::new()
    }

    /// Splits the work into at most `max_tasks` task configs. The default
    /// gives every task the connector's config (Kafka spreads partitions).
    fn task_configs(config: &Config, max_tasks: u32) -> Result<Vec<Config>, String> {
        Ok(vec![config.clone(); max_tasks.max(1) as usize])
    }
}

/// One sink task. The worker calls it from one thread at a time.
pub trait SinkTask: Sized + 'static {
    /// Opens the task with its config.
    fn open(config: Config) -> Result<Self, TaskError>;

    /// Takes a batch; returns one result per record, in order.
    fn put(&mut self, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError>;

    /// Makes every accepted record durable.
    fn flush(&mut self) -> Result<(), TaskError>;

    /// What the worker calls on every offset flush (Kafka Connect's
    /// `preCommit`): makes records durable and returns the partitions whose
    /// consumer offsets must not be committed past a limit — for each, the
    /// offset of its first accepted record that is not durable yet. The
    /// worker commits every other partition past everything accepted.
    ///
    /// The default calls [`SinkTask::flush`] and holds nothing back. A sink
    /// that keeps records in progress across flushes (an object it fills
    /// until it rotates, so that a replay after a crash rebuilds the same
    /// objects) overrides it; it then sees those records again after a
    /// restart or a rebalance (a record whose offset is not past the last
    /// one it took for that partition) and must start them over.
    fn pre_commit(&mut self) -> Result<Vec<CommitLimit>, TaskError> {
        self.flush().map(|()| Vec::new())
    }

    /// Last call: release resources.
    fn close(&mut self) {}
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    pub use wit_sink::Guest as SinkGuest;
    pub use wit_source::Guest as SourceGuest;

    /// Adapts a [`SourceTask`] (`&mut self`) to the resource trait (`&self`).
    pub struct SourceTaskCell<T>(RefCell<T>);

    impl<T: SourceTask> wit_source::GuestSourceTask for SourceTaskCell<T> {
        fn open(
            config: Vec<(String, String)>,
            offsets: Vec<PartitionOffset>,
        ) -> Result<wit_source::SourceTask, TaskError> {
            let task = T::open(Config::from(config), offsets)?;
            Ok(wit_source::SourceTask::new(SourceTaskCell(RefCell::new(
                task,
            ))))
        }
        fn poll(&self, max_records: u32) -> Result<wit_source::SourceBatch, TaskError> {
            self.0
                .borrow_mut()
                .poll(max_records)
                .map(SourceBatch::into_wit)
        }
        fn commit(&self, offsets: Vec<PartitionOffset>) {
            self.0.borrow_mut().commit(offsets)
        }
        fn close(&self) {
            self.0.borrow_mut().close()
        }
    }

    /// Adapts a [`SinkTask`] (`&mut self`) to the resource trait (`&self`).
    pub struct SinkTaskCell<T>(RefCell<T>);

    impl<T: SinkTask> wit_sink::GuestSinkTask for SinkTaskCell<T> {
        fn open(config: Vec<(String, String)>) -> Result<wit_sink::SinkTask, TaskError> {
            let task = T::open(Config::from(config))?;
            Ok(wit_sink::SinkTask::new(SinkTaskCell(RefCell::new(task))))
        }
        fn put(&self, batch: wit_sink::SinkBatch) -> Result<Vec<PutResult>, TaskError> {
            let batch = SinkBatch::new(batch)?;
            self.0.borrow_mut().put(&batch)
        }
        fn flush(&self) -> Result<Vec<CommitLimit>, TaskError> {
            self.0.borrow_mut().pre_commit()
        }
        fn close(&self) {
            self.0.borrow_mut().close()
        }
    }

    pub fn configs(
        configs: Result<Vec<Config>, String>,
    ) -> Result<Vec<Vec<(String, String)>>, String> {
        configs.map(|list| list.into_iter().map(Config::into_pairs).collect())
    }
}

/// Exports a [`Source`] implementation as this component's source connector.
///
/// ```ignore
/// tributary_sdk::export_source!(MySource);
/// ```
#[macro_export]
macro_rules! export_source {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __TributarySourceExport;

        impl $crate::__private::SourceGuest for __TributarySourceExport {
            type SourceTask = $crate::__private::SourceTaskCell<<$ty as $crate::Source>::Task>;
            fn describe() -> $crate::Description {
                <$ty as $crate::Source>::describe()
            }
            fn validate(config: ::std::vec::Vec<(String, String)>) -> ::std::vec::Vec<$crate::ConfigIssue> {
                <$ty as $crate::Source>::validate(&$crate::Config::from(config))
            }
            fn task_configs(
                config: ::std::vec::Vec<(String, String)>,
                max_tasks: u32,
            ) -> ::std::result::Result<::std::vec::Vec<::std::vec::Vec<(String, String)>>, String> {
                $crate::__private::configs(<$ty as $crate::Source>::task_configs(
                    &$crate::Config::from(config),
                    max_tasks,
                ))
            }
        }

        $crate::bindings::source::__export_source_world!(__TributarySourceExport with_types_in $crate::bindings::source);
    };
}

/// Exports a [`Sink`] implementation as this component's sink connector.
///
/// ```ignore
/// tributary_sdk::export_sink!(MySink);
/// ```
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __TributarySinkExport;

        impl $crate::__private::SinkGuest for __TributarySinkExport {
            type SinkTask = $crate::__private::SinkTaskCell<<$ty as $crate::Sink>::Task>;
            fn describe() -> $crate::Description {
                <$ty as $crate::Sink>::describe()
            }
            fn validate(config: ::std::vec::Vec<(String, String)>) -> ::std::vec::Vec<$crate::ConfigIssue> {
                <$ty as $crate::Sink>::validate(&$crate::Config::from(config))
            }
            fn task_configs(
                config: ::std::vec::Vec<(String, String)>,
                max_tasks: u32,
            ) -> ::std::result::Result<::std::vec::Vec<::std::vec::Vec<(String, String)>>, String> {
                $crate::__private::configs(<$ty as $crate::Sink>::task_configs(
                    &$crate::Config::from(config),
                    max_tasks,
                ))
            }
        }

        $crate::bindings::sink::__export_sink_world!(__TributarySinkExport with_types_in $crate::bindings::sink);
    };
}
