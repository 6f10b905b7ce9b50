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
//! A connector says what it is with a [`Description`], declaring each config
//! [`Key`] once (type, default, doc), and reads its config typed:
//! `config.get::<u32>("batch.size")`. Then one macro line exports it:
//! [`export_source!`], [`export_sink!`], or both in the same crate for a
//! plugin that provides a source and a sink.
//!
//! Connector code uses the SDK's own types ([`Description`], [`Key`],
//! [`PutResult`], [`TaskError`], …), never the records generated from the
//! contract: those are converted at the boundary by the export macros.
//! On the host (a connector's unit tests), `testing` builds batches and
//! fakes the worker's capabilities, and `acceptance` checks a connector
//! against the contract's rules.
//! Build with `cargo build --target wasm32-wasip2 --release` and put the
//! `.wasm` file in the worker's `plugin.path`.
//!
//! The guest never opens a socket and never holds a credential: the worker
//! owns Kafka, offsets, database connections ([`sql`]) and object store
//! clients ([`blob`]). Files are visible only in the directories the connector's
//! config grants (keys of type `file-read`, `file-write`, `dir-read`,
//! `dir-write`). See `docs/plugins.md` and `examples/counter.rs` for a
//! complete example.

#[cfg(not(target_arch = "wasm32"))]
pub mod acceptance;
pub mod bindings;
pub mod blob;
mod config;
mod describe;
pub mod log;
mod sink_batch;
mod source_batch;
pub mod sql;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod types;

pub use config::{Config, ConfigError, ConfigIssue, ConfigValue};
pub use describe::{ConnectorKind, Description, Key, KeyType};
pub use sink_batch::{SinkBatch, SinkRecord};
pub use source_batch::{SourceBatch, SourceRecord};
pub use types::{CommitLimit, PartitionOffset, PutResult, TaskError};

use bindings::sink::exports::tributary::connector::sink_connector as wit_sink;
use bindings::source::exports::tributary::connector::source_connector as wit_source;
use bindings::source::tributary::connector::types as wit;

/// Data that crosses the contract as it is: a record header, and the
/// primitive values of source partitions and offsets.
pub use wit::{Header, Scalar};

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

    pub use crate::bindings::source::tributary::connector::types as wit;
    pub use wit_sink::Guest as SinkGuest;
    pub use wit_source::Guest as SourceGuest;

    /// Adapts the [`SourceTask`] of source `S` (`&mut self`) to the
    /// resource trait (`&self`).
    pub struct SourceTaskCell<S: Source>(RefCell<S::Task>);

    impl<S: Source> wit_source::GuestSourceTask for SourceTaskCell<S> {
        fn open(
            config: Vec<(String, String)>,
            offsets: Vec<wit_source::PartitionOffset>,
        ) -> Result<wit_source::SourceTask, wit::TaskError> {
            let config = Config::new(&S::describe().keys, config);
            let offsets = offsets.into_iter().map(PartitionOffset::from).collect();
            let task = S::Task::open(config, offsets)?;
            Ok(wit_source::SourceTask::new(SourceTaskCell::<S>(
                RefCell::new(task),
            )))
        }
        fn poll(&self, max_records: u32) -> Result<wit_source::SourceBatch, wit::TaskError> {
            Ok(self.0.borrow_mut().poll(max_records)?.into_wit())
        }
        fn commit(&self, offsets: Vec<wit_source::PartitionOffset>) {
            let offsets = offsets.into_iter().map(PartitionOffset::from).collect();
            self.0.borrow_mut().commit(offsets)
        }
        fn close(&self) {
            self.0.borrow_mut().close()
        }
    }

    /// Adapts the [`SinkTask`] of sink `S` (`&mut self`) to the resource
    /// trait (`&self`).
    pub struct SinkTaskCell<S: Sink>(RefCell<S::Task>);

    impl<S: Sink> wit_sink::GuestSinkTask for SinkTaskCell<S> {
        fn open(config: Vec<(String, String)>) -> Result<wit_sink::SinkTask, wit::TaskError> {
            let task = S::Task::open(Config::new(&S::describe().keys, config))?;
            Ok(wit_sink::SinkTask::new(SinkTaskCell::<S>(RefCell::new(
                task,
            ))))
        }
        fn put(
            &self,
            batch: wit_sink::SinkBatch,
        ) -> Result<Vec<wit_sink::PutResult>, wit::TaskError> {
            let batch = SinkBatch::new(batch)?;
            let results = self.0.borrow_mut().put(&batch)?;
            Ok(results.into_iter().map(Into::into).collect())
        }
        fn flush(&self) -> Result<Vec<wit_sink::CommitLimit>, wit::TaskError> {
            let limits = self.0.borrow_mut().pre_commit()?;
            Ok(limits.into_iter().map(Into::into).collect())
        }
        fn close(&self) {
            self.0.borrow_mut().close()
        }
    }

    pub fn describe(d: Description) -> wit::Description {
        d.into_wit()
    }

    /// What `validate` found, with the config read against `keys`.
    pub fn validate(
        keys: &[Key],
        pairs: Vec<(String, String)>,
        validate: fn(&Config) -> Vec<ConfigIssue>,
    ) -> Vec<wit::ConfigIssue> {
        validate(&Config::new(keys, pairs))
            .into_iter()
            .map(|i| wit::ConfigIssue {
                key: i.key,
                message: i.message,
            })
            .collect()
    }

    /// The task configs of `split`, from the config read against `keys`.
    pub fn task_configs(
        keys: &[Key],
        pairs: Vec<(String, String)>,
        max_tasks: u32,
        split: fn(&Config, u32) -> Result<Vec<Config>, String>,
    ) -> Result<Vec<Vec<(String, String)>>, String> {
        let configs = split(&Config::new(keys, pairs), max_tasks)?;
        Ok(configs.into_iter().map(Config::into_pairs).collect())
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
            type SourceTask = $crate::__private::SourceTaskCell<$ty>;
            fn describe() -> $crate::__private::wit::Description {
                $crate::__private::describe(<$ty as $crate::Source>::describe())
            }
            fn validate(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::vec::Vec<$crate::__private::wit::ConfigIssue> {
                $crate::__private::validate(
                    &<$ty as $crate::Source>::describe().keys,
                    config,
                    <$ty as $crate::Source>::validate,
                )
            }
            fn task_configs(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                max_tasks: u32,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::std::vec::Vec<(::std::string::String, ::std::string::String)>>,
                ::std::string::String,
            > {
                $crate::__private::task_configs(
                    &<$ty as $crate::Source>::describe().keys,
                    config,
                    max_tasks,
                    <$ty as $crate::Source>::task_configs,
                )
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
            type SinkTask = $crate::__private::SinkTaskCell<$ty>;
            fn describe() -> $crate::__private::wit::Description {
                $crate::__private::describe(<$ty as $crate::Sink>::describe())
            }
            fn validate(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::vec::Vec<$crate::__private::wit::ConfigIssue> {
                $crate::__private::validate(
                    &<$ty as $crate::Sink>::describe().keys,
                    config,
                    <$ty as $crate::Sink>::validate,
                )
            }
            fn task_configs(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                max_tasks: u32,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::std::vec::Vec<(::std::string::String, ::std::string::String)>>,
                ::std::string::String,
            > {
                $crate::__private::task_configs(
                    &<$ty as $crate::Sink>::describe().keys,
                    config,
                    max_tasks,
                    <$ty as $crate::Sink>::task_configs,
                )
            }
        }

        $crate::bindings::sink::__export_sink_world!(__TributarySinkExport with_types_in $crate::bindings::sink);
    };
}
